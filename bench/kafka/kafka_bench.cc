// Producer throughput into librdkafka's in-process mock cluster (300-byte values, acks=all,
// idempotent; second argument: 0 no compression, 1 lz4 as in ProducerOptions' default) and consumer
// throughput from the real broker of scripts/stack with librdkafka's default prefetch queue versus
// libs/kafka's defaults. Run: build/bench/kafka/kafka_bench (RelWithDebInfo, no sanitizers); the
// consumer benchmark needs SPLITSTREAM_KAFKA_BROKERS (scripts/stack env) and is skipped without it.
#include <benchmark/benchmark.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka {
namespace {

using namespace std::chrono_literals;

constexpr size_t kValueBytes = 300;

std::string Value(int i) {
  std::string v = "{\"op\":\"c\",\"after\":{\"id\":" + std::to_string(i) + ",\"pad\":\"";
  v.resize(kValueBytes - 3, 'x');
  v += "\"}}";
  return v;
}

void BM_ProduceToMockCluster(benchmark::State& state) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[256];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, 1);
  // The mock keeps only a few MiB per partition; many partitions keep it from truncating.
  rd_kafka_mock_topic_create(mc, "bench", 16, 1);
  ProducerOptions options;
  options.brokers = rd_kafka_mock_cluster_bootstraps(mc);
  options.compression = state.range(1) ? "lz4" : "none";
  std::atomic<int64_t> failed{0};
  {
    auto producer = Producer::Create(options, [&](const DeliveryReport& r) {
      if (!r.status.ok()) failed.fetch_add(1);
    });
    if (!producer.ok()) {
      state.SkipWithError(producer.status().ToString().c_str());
      return;
    }
    const int64_t per_iteration = state.range(0);
    std::vector<std::string> keys, values;
    for (int i = 0; i < 1000; ++i) {
      keys.push_back("{\"id\":" + std::to_string(i) + "}");
      values.push_back(Value(i));
    }
    int64_t total = 0;
    for (auto _ : state) {
      for (int64_t i = 0; i < per_iteration; ++i) {
        Status st;
        while ((st = (*producer)->Produce("bench", keys[i % 1000], values[i % 1000], i)).code() ==
               StatusCode::kUnavailable) {
          std::this_thread::sleep_for(100us);
        }
        if (!st.ok()) state.SkipWithError(st.ToString().c_str());
      }
      Status flushed = (*producer)->Flush(60s);
      if (!flushed.ok()) state.SkipWithError(flushed.ToString().c_str());
      total += per_iteration;
    }
    state.SetItemsProcessed(total);
    state.SetBytesProcessed(total * static_cast<int64_t>(kValueBytes));
    state.counters["failed"] = static_cast<double>(failed.load());
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
}
BENCHMARK(BM_ProduceToMockCluster)
    ->Args({500'000, 0})
    ->Args({500'000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Fills a topic on the real broker once per process.
std::string FilledTopic(const std::string& brokers, int64_t count) {
  static std::string topic;
  if (!topic.empty()) return topic;
  topic = "kafka_bench_" + std::to_string(getpid());
  const std::vector<std::string> topics = {topic};
  if (!CreateTopics(brokers, topics, 4, 1, 10s).ok()) return "";
  ProducerOptions options;
  options.brokers = brokers;
  auto producer = Producer::Create(options, nullptr);
  if (!producer.ok()) return "";
  std::string value = Value(1);
  for (int64_t i = 0; i < count; ++i) {
    std::string key = std::to_string(i);
    while ((*producer)->Produce(topic, key, value, i).code() == StatusCode::kUnavailable) {
      std::this_thread::sleep_for(100us);
    }
  }
  if (!(*producer)->Flush(120s).ok()) return "";
  return topic;
}

// Arg 0: librdkafka's prefetch defaults (queued.min.messages=100000,
// queued.max.messages.kbytes=65536, fetch.wait.max.ms=500, max.partition.fetch.bytes=1048576);
// arg 1: libs/kafka's defaults.
void BM_ConsumeFromBroker(benchmark::State& state) {
  const char* brokers = std::getenv("SPLITSTREAM_KAFKA_BROKERS");
  if (brokers == nullptr || *brokers == 0) {
    state.SkipWithError("SPLITSTREAM_KAFKA_BROKERS is not set");
    return;
  }
  constexpr int64_t kCount = 1'000'000;
  std::string topic = FilledTopic(brokers, kCount);
  if (topic.empty()) {
    state.SkipWithError("could not fill the topic");
    return;
  }
  int64_t total = 0;
  int run = 0;
  for (auto _ : state) {
    ConsumerOptions options;
    options.brokers = brokers;
    options.group_id = topic + "_g" + std::to_string(state.range(0)) + "_" + std::to_string(run++);
    options.subscriptions = {topic};
    if (state.range(0) == 0) {
      options.overrides = {{"queued.min.messages", "100000"},
                           {"queued.max.messages.kbytes", "65536"},
                           {"fetch.wait.max.ms", "500"},
                           {"max.partition.fetch.bytes", "1048576"}};
    }
    auto consumer = Consumer::Create(options);
    if (!consumer.ok()) {
      state.SkipWithError(consumer.status().ToString().c_str());
      return;
    }
    int64_t got = 0;
    while (got < kCount) {
      auto batch = (*consumer)->Poll(10'000, 5s);
      if (!batch.ok() || batch->empty()) {
        state.SkipWithError("consumer stalled");
        return;
      }
      for (const Message& m : *batch) benchmark::DoNotOptimize(m.value());
      got += static_cast<int64_t>(batch->size());
    }
    total += got;
    (void)(*consumer)->Close();
  }
  state.SetItemsProcessed(total);
}
BENCHMARK(BM_ConsumeFromBroker)
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace splitstream::kafka

BENCHMARK_MAIN();
