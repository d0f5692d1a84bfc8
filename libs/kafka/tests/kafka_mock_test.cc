// Unit tests against librdkafka's in-process mock cluster (no external server): per-request
// error injection on the produce path, and the consumer's commit / pause / resume.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "reports.h"
#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka {
namespace {

using namespace std::chrono_literals;

constexpr int16_t kApiKeyProduce = 0;  // Kafka protocol ApiKey of ProduceRequest

// A mock cluster owned by a bare producer handle (the mock needs one to live in).
class MockCluster {
 public:
  explicit MockCluster(int brokers = 1) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    mc_ = rd_kafka_mock_cluster_new(rk_, brokers);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(rk_);
  }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(mc_); }
  rd_kafka_mock_cluster_t* get() { return mc_; }
  void CreateTopic(const std::string& name, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(mc_, name.c_str(), partitions, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* mc_ = nullptr;
};

using testing::Reports;

ProducerOptions MockProducerOptions(const MockCluster& cluster) {
  ProducerOptions options;
  options.brokers = cluster.bootstraps();
  options.linger_ms = 1;
  return options;
}

// Reads every message of `topics` from the beginning with a fresh group until `expected`
// arrived or 20 s passed.
std::vector<Message> ReadAll(const MockCluster& cluster, const std::string& topic,
                             size_t expected) {
  ConsumerOptions options;
  options.brokers = cluster.bootstraps();
  options.group_id = "reader-" + topic;
  options.subscriptions = {topic};
  auto consumer = Consumer::Create(options);
  EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
  std::vector<Message> out;
  if (!consumer.ok()) return out;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (out.size() < expected && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->Poll(1000, 200ms);
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok()) break;
    for (Message& m : *batch) out.push_back(std::move(m));
  }
  // Anything beyond `expected` would be a duplicate: give it a moment to show up.
  auto extra = (*consumer)->Poll(1000, 300ms);
  if (extra.ok()) {
    for (Message& m : *extra) out.push_back(std::move(m));
  }
  EXPECT_TRUE((*consumer)->Close().ok());
  return out;
}

TEST(KafkaMockTest, ProducesKeysTombstonesAndHeadersThatReadBackUnchanged) {
  MockCluster cluster;
  cluster.CreateTopic("basic", 3);
  Reports reports;
  auto producer = Producer::Create(MockProducerOptions(cluster), reports.Callback());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  const std::vector<Header> headers = {{"h1", "v1"}, {"empty", ""}};
  for (int i = 0; i < 30; ++i) {
    std::string key = "{\"id\":" + std::to_string(i) + "}";
    std::optional<std::string> value;
    if (i % 10 != 9) value = "value-" + std::to_string(i);  // every tenth is a tombstone
    if (i == 4) value = "";                                 // empty, not null
    ASSERT_TRUE((*producer)
                    ->Produce("basic", key,
                              value ? std::optional<std::string_view>(*value) : std::nullopt,
                              /*cookie=*/1000 + i, headers)
                    .ok());
  }
  ASSERT_TRUE((*producer)->Produce("basic", std::nullopt, "no key", 2000).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  EXPECT_EQ((*producer)->InFlight(), 0u);

  std::vector<DeliveryReport> got = reports.Get();
  ASSERT_EQ(got.size(), 31u);
  std::set<uint64_t> cookies;
  for (const DeliveryReport& r : got) {
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_GE(r.partition, 0);
    EXPECT_GE(r.offset, 0);
    cookies.insert(r.cookie);
  }
  EXPECT_EQ(cookies.size(), 31u);
  EXPECT_TRUE(cookies.count(1000) && cookies.count(1029) && cookies.count(2000));

  std::vector<Message> messages = ReadAll(cluster, "basic", 31);
  ASSERT_EQ(messages.size(), 31u);
  std::map<std::string, const Message*> by_key;
  std::map<std::string, int32_t> partition_of_key;
  for (const Message& m : messages) {
    EXPECT_EQ(m.topic(), "basic");
    EXPECT_GT(m.timestamp_ms(), 0);
    if (!m.key()) {
      EXPECT_EQ(m.value(), "no key");
      EXPECT_TRUE(m.headers().empty());
      continue;
    }
    by_key[std::string(*m.key())] = &m;
  }
  ASSERT_EQ(by_key.size(), 30u);
  EXPECT_FALSE(by_key["{\"id\":9}"]->value().has_value());
  EXPECT_FALSE(by_key["{\"id\":19}"]->value().has_value());
  ASSERT_TRUE(by_key["{\"id\":4}"]->value().has_value());
  EXPECT_EQ(*by_key["{\"id\":4}"]->value(), "");
  EXPECT_EQ(*by_key["{\"id\":7}"]->value(), "value-7");
  EXPECT_EQ(by_key["{\"id\":7}"]->headers(), headers);
  // The report of each message names the partition and offset it was read back from.
  for (const DeliveryReport& r : got) {
    if (r.cookie == 2000) continue;
    const Message* m = by_key["{\"id\":" + std::to_string(r.cookie - 1000) + "}"];
    EXPECT_EQ(m->partition(), r.partition);
    EXPECT_EQ(m->offset(), r.offset);
  }
}

TEST(KafkaMockTest, RetriableProduceErrorsEndInExactlyOnceInOrderDelivery) {
  MockCluster cluster;
  cluster.CreateTopic("retry", 1);
  Reports reports;
  ProducerOptions options = MockProducerOptions(cluster);
  options.overrides["retry.backoff.ms"] = "10";
  auto producer = Producer::Create(options, reports.Callback());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  // Warm up so that the producer id is acquired and the leader known.
  ASSERT_TRUE((*producer)->Produce("retry", "k", "warm-up", 0).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());

  rd_kafka_mock_push_request_errors(
      cluster.get(), kApiKeyProduce, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
  constexpr int kCount = 2000;
  for (int i = 1; i <= kCount; ++i) {
    ASSERT_TRUE((*producer)->Produce("retry", "k", "m" + std::to_string(i), i).ok());
    if (i % 200 == 0) std::this_thread::sleep_for(2ms);  // several produce requests
  }
  ASSERT_TRUE((*producer)->Flush(30s).ok());
  std::vector<DeliveryReport> got = reports.Get();
  ASSERT_EQ(got.size(), static_cast<size_t>(kCount) + 1);
  for (const DeliveryReport& r : got) ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE((*producer)->FatalError().has_value());

  std::vector<Message> messages = ReadAll(cluster, "retry", kCount + 1);
  ASSERT_EQ(messages.size(), static_cast<size_t>(kCount) + 1);  // no loss, no duplicate
  for (int i = 0; i <= kCount; ++i) {
    EXPECT_EQ(messages[i].offset(), i);
    if (i > 0) {
      EXPECT_EQ(*messages[i].value(), "m" + std::to_string(i));  // in order
    }
  }
}

TEST(KafkaMockTest, NonRetriableProduceErrorFailsTheDeliveryReport) {
  MockCluster cluster;
  cluster.CreateTopic("denied", 1);
  Reports reports;
  auto producer = Producer::Create(MockProducerOptions(cluster), reports.Callback());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE((*producer)->Produce("denied", "k", "ok-before", 1).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());

  rd_kafka_mock_push_request_errors(cluster.get(), kApiKeyProduce, 1,
                                    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  ASSERT_TRUE((*producer)->Produce("denied", "k", "refused", 2).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  Status after = (*producer)->Produce("denied", "k", "ok-after", 3);
  ASSERT_TRUE(after.ok()) << after.ToString();
  ASSERT_TRUE((*producer)->Flush(10s).ok());

  std::vector<DeliveryReport> got = reports.Get();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].status.ok());
  EXPECT_EQ(got[1].cookie, 2u);
  EXPECT_EQ(got[1].status.code(), StatusCode::kInvalidArgument) << got[1].status.ToString();
  EXPECT_NE(got[1].status.message().find("MSG_SIZE_TOO_LARGE"), std::string::npos);
  EXPECT_EQ(got[1].offset, -1);
  EXPECT_TRUE(got[2].status.ok()) << got[2].status.ToString();
  EXPECT_FALSE((*producer)->FatalError().has_value());
}

TEST(KafkaMockTest, FatalErrorIsStickyAndProduceRefusesAfterIt) {
  MockCluster cluster;
  cluster.CreateTopic("fatal", 1);
  Reports reports;
  auto producer = Producer::Create(MockProducerOptions(cluster), reports.Callback());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE((*producer)->Produce("fatal", "k", "before", 1).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  EXPECT_FALSE((*producer)->FatalError().has_value());

  (*producer)->InjectFatalErrorForTesting("sequence broken");
  std::optional<Status> fatal = (*producer)->FatalError();
  ASSERT_TRUE(fatal.has_value());
  EXPECT_EQ(fatal->code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(fatal->message().find("OUT_OF_ORDER_SEQUENCE_NUMBER"), std::string::npos)
      << fatal->message();
  Status refused = (*producer)->Produce("fatal", "k", "after", 2);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  EXPECT_TRUE((*producer)->FatalError().has_value());  // sticky
  EXPECT_EQ((*producer)->InFlight(), 0u);
  ASSERT_EQ(reports.Get().size(), 1u);  // no report for the refused message
}

TEST(KafkaMockTest, OutOfOrderSequenceFromTheBrokerIsFatal) {
  MockCluster cluster;
  cluster.CreateTopic("oos", 1);
  Reports reports;
  auto producer = Producer::Create(MockProducerOptions(cluster), reports.Callback());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE((*producer)->Produce("oos", "k", "before", 1).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());

  rd_kafka_mock_push_request_errors(cluster.get(), kApiKeyProduce, 1,
                                    RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  ASSERT_TRUE((*producer)->Produce("oos", "k", "broken", 2).ok());
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  std::vector<DeliveryReport> got = reports.Get();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].cookie, 2u);
  EXPECT_FALSE(got[1].status.ok());
  std::optional<Status> fatal = (*producer)->FatalError();
  ASSERT_TRUE(fatal.has_value());
  EXPECT_NE(fatal->message().find("sequence desynchronization"), std::string::npos)
      << fatal->message();
  EXPECT_EQ((*producer)->Produce("oos", "k", "after", 3).code(), StatusCode::kFailedPrecondition);
}

TEST(KafkaMockTest, FullLocalQueueIsUnavailable) {
  MockCluster cluster;
  cluster.CreateTopic("full", 1);
  ProducerOptions options = MockProducerOptions(cluster);
  options.max_in_flight_messages = 10;
  options.linger_ms = 1000;  // keep everything in the local queue
  Reports reports;
  auto producer = Producer::Create(options, reports.Callback());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*producer)->Produce("full", "k", "v", i).ok());
  EXPECT_EQ((*producer)->InFlight(), 10u);
  Status full = (*producer)->Produce("full", "k", "v", 10);
  EXPECT_EQ(full.code(), StatusCode::kUnavailable) << full.ToString();
  EXPECT_EQ((*producer)->InFlight(), 10u);
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  EXPECT_EQ(reports.Get().size(), 10u);
}

TEST(KafkaMockTest, DestroyingWithUndeliveredMessagesIsBoundedAndSilent) {
  MockCluster cluster;
  cluster.CreateTopic("down", 1);
  std::atomic<bool> destroyed{false};
  std::atomic<int> late_reports{0};
  auto producer = Producer::Create(MockProducerOptions(cluster), [&](const DeliveryReport&) {
    if (destroyed.load()) late_reports.fetch_add(1);
  });
  ASSERT_TRUE(producer.ok());
  ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster.get(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*producer)->Produce("down", "k", "v", i).ok());
  EXPECT_EQ((*producer)->Flush(200ms).code(), StatusCode::kUnavailable);
  EXPECT_EQ((*producer)->InFlight(), 100u);
  auto start = std::chrono::steady_clock::now();
  producer = Status::Internal("destroyed");  // ~Producer: flushes up to 2 s, then destroys
  destroyed.store(true);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(late_reports.load(), 0);
}

TEST(KafkaMockTest, BadTopicNamesAndPropertiesAreInvalidArguments) {
  MockCluster cluster;
  auto producer = Producer::Create(MockProducerOptions(cluster), nullptr);
  ASSERT_TRUE(producer.ok());
  EXPECT_EQ((*producer)->Produce("bad topic", "k", "v", 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*producer)->Produce("", "k", "v", 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*producer)->Produce(std::string(250, 'a'), "k", "v", 1).code(),
            StatusCode::kInvalidArgument);

  ProducerOptions bad = MockProducerOptions(cluster);
  bad.compression = "brotli";
  auto r = Producer::Create(bad, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), "compression.type");

  ProducerOptions secret = MockProducerOptions(cluster);
  secret.overrides["sasl.password"] = "hunter2";
  secret.overrides["security.protocol"] = "sasl_bogus";
  auto s = Producer::Create(secret, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().find("hunter2"), std::string::npos);

  ConsumerOptions no_topics;
  no_topics.brokers = cluster.bootstraps();
  EXPECT_EQ(Consumer::Create(no_topics).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsValidTopicName("dbserver1.public.events"));
  EXPECT_TRUE(IsValidTopicName("__debezium-heartbeat.dbserver1"));
  EXPECT_FALSE(IsValidTopicName(".."));
}

TEST(KafkaMockTest, ConsumerCommitsPausesAndResumes) {
  MockCluster cluster;
  cluster.CreateTopic("orders", 2);
  Reports reports;
  auto producer = Producer::Create(MockProducerOptions(cluster), reports.Callback());
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(
        (*producer)->Produce("orders", "key-" + std::to_string(i), std::to_string(i), i).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());
  std::map<int32_t, int64_t> end_offset;  // per partition: one past the last offset
  for (const DeliveryReport& r : reports.Get()) {
    end_offset[r.partition] = std::max(end_offset[r.partition], r.offset + 1);
  }
  ASSERT_EQ(end_offset.size(), 2u);

  ConsumerOptions options;
  options.brokers = cluster.bootstraps();
  options.group_id = "mock-group";
  options.subscriptions = {"^ord.*"};
  // The mock coordinator lets a rebalance wait for the session timeout of its members.
  options.overrides["session.timeout.ms"] = "3000";
  options.overrides["heartbeat.interval.ms"] = "500";
  std::vector<TopicPartition> assigned_seen;
  options.on_assigned = [&](std::span<const TopicPartition> tps) {
    assigned_seen.insert(assigned_seen.end(), tps.begin(), tps.end());
  };
  auto consumer = Consumer::Create(options);
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();

  // Read everything once, pause partition 0 as soon as it is assigned.
  const TopicPartition p0{"orders", 0};
  const TopicPartition p1{"orders", 1};
  std::map<int32_t, int64_t> next;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  bool paused = false;
  while (next[1] < end_offset[1] && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->Poll(100, 100ms);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (!paused && (*consumer)->Assignment().size() == 2) {
      ASSERT_TRUE((*consumer)->Pause(std::span(&p0, 1)).ok());
      paused = true;
    }
    for (const Message& m : *batch) next[m.partition()] = m.offset() + 1;
  }
  ASSERT_TRUE(paused);
  EXPECT_EQ((*consumer)->Assignment(), (std::vector<TopicPartition>{p0, p1}));
  EXPECT_EQ(assigned_seen.size(), 2u);
  EXPECT_EQ(next[1], end_offset[1]);
  // Paused: partition 0 delivers nothing beyond what was fetched before the pause.
  const int64_t p0_before = next[0];
  for (int i = 0; i < 5; ++i) {
    auto batch = (*consumer)->Poll(100, 100ms);
    ASSERT_TRUE(batch.ok());
    for (const Message& m : *batch) next[m.partition()] = m.offset() + 1;
  }
  if (p0_before == 0) {
    EXPECT_EQ(next[0], 0);
  }
  ASSERT_TRUE((*consumer)->Resume(std::span(&p0, 1)).ok());
  deadline = std::chrono::steady_clock::now() + 20s;
  while (next[0] < end_offset[0] && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->Poll(100, 100ms);
    ASSERT_TRUE(batch.ok());
    for (const Message& m : *batch) next[m.partition()] = m.offset() + 1;
  }
  EXPECT_EQ(next[0], end_offset[0]);

  // Commit only part of partition 0 and all of partition 1, then a new member resumes there.
  const int64_t p0_commit = end_offset[0] / 2;
  std::vector<std::pair<TopicPartition, int64_t>> commits = {{p0, p0_commit}, {p1, end_offset[1]}};
  ASSERT_TRUE((*consumer)->Commit(commits).ok());
  auto lag = (*consumer)->Lag(5s);
  ASSERT_TRUE(lag.ok()) << lag.status().ToString();
  ASSERT_EQ(lag->size(), 2u);
  EXPECT_EQ((*lag)[0].committed, p0_commit);
  EXPECT_EQ((*lag)[0].high_watermark, end_offset[0]);
  EXPECT_EQ((*lag)[0].lag, end_offset[0] - p0_commit);
  EXPECT_EQ((*lag)[0].position, end_offset[0]);
  EXPECT_EQ((*lag)[1].lag, 0);
  ASSERT_TRUE((*consumer)->Close().ok());
  EXPECT_EQ((*consumer)->Poll(1, 1ms).status().code(), StatusCode::kFailedPrecondition);
  consumer = Status::Internal("closed");  // destroy the first member

  options.on_assigned = [](std::span<const TopicPartition> tps) {
    std::cerr << "again assigned " << tps.size() << "\n";
  };
  auto again = Consumer::Create(options);
  ASSERT_TRUE(again.ok());
  std::vector<int64_t> offsets0;
  size_t from_p1 = 0;
  deadline = std::chrono::steady_clock::now() + 20s;
  while (offsets0.size() < static_cast<size_t>(end_offset[0] - p0_commit) &&
         std::chrono::steady_clock::now() < deadline) {
    auto batch = (*again)->Poll(100, 100ms);
    ASSERT_TRUE(batch.ok());
    for (const Message& m : *batch) {
      if (m.partition() == 0) offsets0.push_back(m.offset());
      if (m.partition() == 1) ++from_p1;
    }
  }
  ASSERT_FALSE(offsets0.empty());
  EXPECT_EQ(offsets0.front(), p0_commit);
  EXPECT_EQ(offsets0.back(), end_offset[0] - 1);
  EXPECT_EQ(from_p1, 0u);
}

// Five messages in topic "down" of `cluster`, and a member of group "down-group" (`options`
// with brokers, group and subscription filled in) that has read the first three, one Poll
// each (the others are fetched and wait in its queue).
std::unique_ptr<Consumer> MemberThatReadThree(MockCluster& cluster, ConsumerOptions options) {
  cluster.CreateTopic("down", 1);
  Reports reports;
  auto producer = Producer::Create(MockProducerOptions(cluster), reports.Callback());
  EXPECT_TRUE(producer.ok());
  if (!producer.ok()) return nullptr;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE((*producer)->Produce("down", "k", "v", i).ok());
  EXPECT_TRUE((*producer)->Flush(10s).ok());
  options.brokers = cluster.bootstraps();
  options.group_id = "down-group";
  options.subscriptions = {"down"};
  auto consumer = Consumer::Create(options);
  EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
  if (!consumer.ok()) return nullptr;
  size_t read = 0;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (read < 3 && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->Poll(1, 100ms);
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok()) return nullptr;
    read += batch->size();
  }
  EXPECT_EQ(read, 3u);
  return std::move(*consumer);
}

// With the group coordinator unreachable, librdkafka's synchronous commit waits for it about
// as long as the session timeout (45 s by default); Commit gives up after
// ConsumerOptions::commit_timeout instead, so a sink stopping while Kafka is down stops in
// bounded time. The offsets are committed once the coordinator is back.
TEST(KafkaMockTest, CommitGivesUpAfterItsTimeoutWhileTheCoordinatorIsDown) {
  MockCluster cluster;
  ConsumerOptions options;
  options.commit_timeout = 1s;
  std::unique_ptr<Consumer> consumer = MemberThatReadThree(cluster, options);
  ASSERT_NE(consumer, nullptr);
  const TopicPartition tp{"down", 0};
  std::vector<std::pair<TopicPartition, int64_t>> first = {{tp, 2}};
  ASSERT_TRUE(consumer->Commit(first).ok());

  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  std::vector<std::pair<TopicPartition, int64_t>> all = {{tp, 3}};
  const auto start = std::chrono::steady_clock::now();
  Status st = consumer->Commit(all);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.ToString().find("no answer"), std::string::npos) << st.ToString();
  EXPECT_LT(took, 10s);

  rd_kafka_mock_broker_set_up(cluster.get(), 1);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  Status again = Status::Unavailable("not tried");
  while (!again.ok() && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(consumer->Poll(100, 100ms).ok());
    again = consumer->Commit(all);
  }
  EXPECT_TRUE(again.ok()) << again.ToString();
  auto lag = consumer->Lag(5s);
  ASSERT_TRUE(lag.ok()) << lag.status().ToString();
  ASSERT_EQ(lag->size(), 1u);
  EXPECT_EQ((*lag)[0].committed, 3);
  EXPECT_TRUE(consumer->Close().ok());
}

// Closing while the coordinator is down, after a commit it never answered: librdkafka's close
// would wait about as long as the session timeout (45 s by default); Close serves the
// revocation (dropping the messages still queued), then gives up after
// ConsumerOptions::close_timeout. Destroying the handle may still wait for the group to
// terminate (librdkafka 2.0.2), which this test does not time.
TEST(KafkaMockTest, CloseGivesUpAfterItsTimeoutWhileTheCoordinatorIsDown) {
  MockCluster cluster;
  ConsumerOptions options;
  options.commit_timeout = 1s;
  options.close_timeout = 2s;
  int revoked = 0;
  options.on_revoked = [&](std::span<const TopicPartition> tps) {
    revoked += static_cast<int>(tps.size());
  };
  std::unique_ptr<Consumer> consumer = MemberThatReadThree(cluster, options);
  ASSERT_NE(consumer, nullptr);

  // A commit given up on stays queued for the coordinator, and the close waits for it.
  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<TopicPartition, int64_t>> all = {{{"down", 0}, 3}};
  EXPECT_EQ(consumer->Commit(all).code(), StatusCode::kUnavailable);
  Status st = consumer->Close();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);  // 1 s + 2 s, and slack
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(revoked, 1);
}

// A caller with a deadline (a stopping sink) caps both waits below the configured timeouts.
TEST(KafkaMockTest, CapWaitsShortensCommitAndCloseWhileTheCoordinatorIsDown) {
  MockCluster cluster;
  ConsumerOptions options;
  options.commit_timeout = 60s;
  options.close_timeout = 60s;
  std::unique_ptr<Consumer> consumer = MemberThatReadThree(cluster, options);
  ASSERT_NE(consumer, nullptr);

  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  const auto start = std::chrono::steady_clock::now();
  consumer->CapWaits(1500ms);
  std::vector<std::pair<TopicPartition, int64_t>> all = {{{"down", 0}, 3}};
  Status committed = consumer->Commit(all);
  EXPECT_EQ(committed.code(), StatusCode::kUnavailable) << committed.ToString();
  EXPECT_NE(committed.ToString().find("within 1500 ms"), std::string::npos) << committed.ToString();
  consumer->CapWaits(0ms);  // what is left of an exhausted deadline: counts as 1 ms
  Status closed = consumer->Close();
  EXPECT_EQ(closed.code(), StatusCode::kUnavailable) << closed.ToString();
  EXPECT_NE(closed.ToString().find("within 1 ms"), std::string::npos) << closed.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);  // 1.5 s + 1 ms, and slack
}

TEST(KafkaMockTest, CachedLagCountsWhatPollHasNotReturnedYet) {
  MockCluster cluster;
  cluster.CreateTopic("backlog", 1);
  Reports reports;
  auto producer = Producer::Create(MockProducerOptions(cluster), reports.Callback());
  ASSERT_TRUE(producer.ok());
  constexpr int kMessages = 50;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE((*producer)->Produce("backlog", "k", std::to_string(i), i).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10s).ok());

  ConsumerOptions options;
  options.brokers = cluster.bootstraps();
  options.group_id = "lag-group";
  options.subscriptions = {"backlog"};
  auto consumer = Consumer::Create(options);
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  EXPECT_EQ((*consumer)->CachedLag(), 0) << "nothing assigned or fetched yet";
  std::vector<Message> got;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->Poll(10, 100ms);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (Message& m : *batch) got.push_back(std::move(m));
  }
  ASSERT_FALSE(got.empty());
  EXPECT_EQ((*consumer)->CachedLag(), kMessages - (got.back().offset() + 1))
      << "high watermark of the fetch response minus the position";
  while (got.size() < kMessages && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->Poll(100, 100ms);
    ASSERT_TRUE(batch.ok());
    for (Message& m : *batch) got.push_back(std::move(m));
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ((*consumer)->CachedLag(), 0);
  ASSERT_TRUE((*consumer)->Close().ok());
  EXPECT_EQ((*consumer)->CachedLag(), 0) << "closed";
}

TEST(KafkaMockTest, LibrdkafkaLogsReachSpdlogWithoutSecrets) {
  MockCluster cluster;
  std::string text;
  {
    testing::CapturedLog captured;
    ProducerOptions options = MockProducerOptions(cluster);
    options.overrides = {{"debug", "conf,generic"},
                         {"security.protocol", "sasl_plaintext"},
                         {"sasl.mechanisms", "PLAIN"},
                         {"sasl.username", "splitstream"},
                         {"sasl.password", "hunter2-secret"}};
    auto producer = Producer::Create(options, nullptr);
    ASSERT_TRUE(producer.ok()) << producer.status().ToString();
    std::this_thread::sleep_for(200ms);
    text = captured.Text();
  }
  EXPECT_NE(text.find("rdkafka splitstream-cdc#producer"), std::string::npos) << text;
  EXPECT_NE(text.find("sasl.password = [redacted]"), std::string::npos);  // librdkafka redacts
  EXPECT_EQ(text.find("hunter2"), std::string::npos);
}

TEST(KafkaMessageTest, MadeMessagesOwnTheirBytesAcrossMoves) {
  Message m = Message::Make("t", 3, 42, std::string("k"), std::nullopt, 7, {{"a", "b"}});
  std::vector<Message> v;
  v.push_back(std::move(m));
  v.reserve(100);  // moves again
  EXPECT_EQ(v[0].topic(), "t");
  EXPECT_EQ(v[0].partition(), 3);
  EXPECT_EQ(v[0].offset(), 42);
  EXPECT_EQ(v[0].key(), "k");
  EXPECT_FALSE(v[0].value().has_value());
  EXPECT_EQ(v[0].timestamp_ms(), 7);
  EXPECT_EQ(v[0].headers(), (std::vector<Header>{{"a", "b"}}));
  EXPECT_EQ(v[0].topic_partition(), (TopicPartition{"t", 3}));
}

}  // namespace
}  // namespace splitstream::kafka
