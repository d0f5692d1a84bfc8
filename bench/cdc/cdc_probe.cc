// Measuring helpers of bench/cdc/run.sh (the CDC benchmark), one per subcommand:
//
//   cdc_probe create-topic BROKERS TOPIC
//       creates TOPIC (1 partition, replication factor 1) with
//       message.timestamp.type=LogAppendTime, so every record's timestamp is the broker's
//       append time. Fails when the topic exists already.
//   cdc_probe watch DSN SLOT END_LSN METRICS_URL PID TIMEOUT_S
//       every 50 ms: reads METRICS_URL (the cdc process's /metrics) until the sum of
//       splitstream_cdc_changes_total is > 0, and asks PostgreSQL whether SLOT's
//       confirmed_flush_lsn >= END_LSN. When it is, reads VmHWM of PID and prints
//       first_change_ns=, confirmed_ns= (CLOCK_REALTIME, as `date +%s%N`) and vmhwm_kb=.
//       Fails when PID exits or TIMEOUT_S passes first.
//   cdc_probe high-watermark BROKERS TOPIC
//       prints the high watermark of partition 0.
//   cdc_probe latency BROKERS TOPIC START_OFFSET COUNT TIMEOUT_S
//       reads COUNT change events (tombstones are skipped) of partition 0 from START_OFFSET and
//       prints, as key=value lines, the distribution of the record timestamp minus the
//       change's source.ts_ms (commit time) in ms, and of the event's own ts_ms (when cdc
//       encoded it) minus source.ts_ms, with the timestamp type the broker reported.
//
// Output is key=value lines on stdout; errors go to stderr with exit status 1.
#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "splitstream/pg/pg.h"

namespace {

using namespace std::chrono_literals;

int Fail(const std::string& message) {
  std::fprintf(stderr, "cdc_probe: %s\n", message.c_str());
  return 1;
}

int64_t RealtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

rd_kafka_conf_t* BaseConf(const std::string& brokers) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  return conf;
}

int CreateTopic(const std::string& brokers, const std::string& topic) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, BaseConf(brokers), err, sizeof(err));
  if (rk == nullptr) return Fail(std::string("rd_kafka_new: ") + err);
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), 1, 1, err, sizeof(err));
  if (nt == nullptr) {
    rd_kafka_destroy(rk);
    return Fail(std::string("NewTopic: ") + err);
  }
  rd_kafka_NewTopic_set_config(nt, "message.timestamp.type", "LogAppendTime");
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof(err));
  rd_kafka_CreateTopics(rk, &nt, 1, options, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 60000);
  std::string error;
  if (ev == nullptr) {
    error = "CreateTopics: no answer within 60 s";
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = std::string("CreateTopics: ") + rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        error = std::string("CreateTopics ") + rd_kafka_topic_result_name(results[i]) + ": " +
                rd_kafka_topic_result_error_string(results[i]);
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(queue);
  rd_kafka_destroy(rk);
  if (!error.empty()) return Fail(error);
  std::printf("created_topic=%s\nmessage.timestamp.type=LogAppendTime\n", topic.c_str());
  return 0;
}

size_t AppendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// Sum of splitstream_cdc_changes_total over tables; nullopt when /metrics does not answer yet.
std::optional<double> ChangesTotal(CURL* curl, const std::string& url) {
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 1000L);
  if (curl_easy_perform(curl) != CURLE_OK) return std::nullopt;
  double total = 0;
  size_t pos = 0;
  const std::string name = "splitstream_cdc_changes_total{";
  while ((pos = body.find(name, pos)) != std::string::npos) {
    size_t space = body.find("} ", pos);
    if (space == std::string::npos) break;
    total += std::strtod(body.c_str() + space + 2, nullptr);
    pos = space;
  }
  return total;
}

std::optional<long> VmHwmKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

int Watch(const std::string& dsn, const std::string& slot, const std::string& end_lsn,
          const std::string& metrics_url, pid_t pid, int timeout_s) {
  auto conn = splitstream::pg::Connection::Open(dsn);
  if (!conn.ok()) return Fail(conn.status().ToString());
  CURL* curl = curl_easy_init();
  std::optional<int64_t> first_change_ns;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int exit_code = 1;
  while (true) {
    if (kill(pid, 0) != 0) {
      Fail("the cdc process (pid " + std::to_string(pid) + ") is gone");
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      Fail("slot " + slot + " did not confirm " + end_lsn + " within " + std::to_string(timeout_s) +
           " s");
      break;
    }
    if (!first_change_ns) {
      auto changes = ChangesTotal(curl, metrics_url);
      if (changes && *changes > 0) first_change_ns = RealtimeNs();
    }
    auto rows = (*conn)->ExecPrepared(
        "confirmed",
        "SELECT confirmed_flush_lsn >= $1::pg_lsn, confirmed_flush_lsn::text FROM "
        "pg_replication_slots WHERE slot_name = $2",
        {end_lsn, slot});
    if (!rows.ok()) {
      Fail(rows.status().ToString());
      break;
    }
    if (rows->empty()) {
      Fail("no slot " + slot);
      break;
    }
    if (rows->text(0, 0) == "t") {
      const int64_t confirmed_ns = RealtimeNs();
      auto hwm = VmHwmKb(pid);
      std::printf("first_change_ns=%lld\nconfirmed_ns=%lld\nconfirmed_lsn=%s\nvmhwm_kb=%ld\n",
                  static_cast<long long>(first_change_ns.value_or(confirmed_ns)),
                  static_cast<long long>(confirmed_ns), std::string(rows->text(0, 1)).c_str(),
                  hwm.value_or(-1));
      exit_code = 0;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  curl_easy_cleanup(curl);
  return exit_code;
}

int HighWatermark(const std::string& brokers, const std::string& topic) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, BaseConf(brokers), err, sizeof(err));
  if (rk == nullptr) return Fail(std::string("rd_kafka_new: ") + err);
  int64_t low = -1, high = -1;
  rd_kafka_resp_err_t e =
      rd_kafka_query_watermark_offsets(rk, topic.c_str(), 0, &low, &high, 30000);
  rd_kafka_destroy(rk);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Fail(std::string("query_watermark_offsets: ") + rd_kafka_err2str(e));
  }
  std::printf("high_watermark=%lld\n", static_cast<long long>(high));
  return 0;
}

double Quantile(std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  // Nearest rank.
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]);
}

void PrintDistribution(const std::string& name, std::vector<int64_t>& values) {
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (int64_t v : values) sum += static_cast<double>(v);
  std::printf("%s_p50_ms=%.0f\n%s_p99_ms=%.0f\n%s_p999_ms=%.0f\n%s_max_ms=%lld\n%s_mean_ms=%.1f\n",
              name.c_str(), Quantile(values, 0.5), name.c_str(), Quantile(values, 0.99),
              name.c_str(), Quantile(values, 0.999), name.c_str(),
              static_cast<long long>(values.empty() ? 0 : values.back()), name.c_str(),
              values.empty() ? 0.0 : sum / static_cast<double>(values.size()));
}

int Latency(const std::string& brokers, const std::string& topic, int64_t start_offset,
            int64_t count, int timeout_s) {
  char err[512];
  rd_kafka_conf_t* conf = BaseConf(brokers);
  rd_kafka_conf_set(conf, "group.id", "cdc-bench-latency", err, sizeof(err));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
  rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) return Fail(std::string("rd_kafka_new: ") + err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = start_offset;
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);

  simdjson::ondemand::parser parser;
  std::vector<int64_t> to_append, to_encode;
  to_append.reserve(static_cast<size_t>(count));
  to_encode.reserve(static_cast<size_t>(count));
  int64_t not_append_time = 0, unparsed = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string error;
  while (static_cast<int64_t>(to_append.size()) < count) {
    if (std::chrono::steady_clock::now() > deadline) {
      error = "read only " + std::to_string(to_append.size()) + " of " + std::to_string(count) +
              " events within " + std::to_string(timeout_s) + " s";
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        error = std::string("consume: ") + rd_kafka_message_errstr(m);
      }
      rd_kafka_message_destroy(m);
      if (!error.empty()) break;
      continue;
    }
    if (m->payload == nullptr) {  // tombstone
      rd_kafka_message_destroy(m);
      continue;
    }
    rd_kafka_timestamp_type_t type;
    const int64_t ts = rd_kafka_message_timestamp(m, &type);
    if (type != RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) ++not_append_time;
    simdjson::padded_string value(static_cast<const char*>(m->payload), m->len);
    rd_kafka_message_destroy(m);
    auto doc = parser.iterate(value);
    int64_t commit_ms = 0, encoded_ms = 0;
    // Field order of the envelope: before, after, source, op, ts_ms.
    if (doc.error() != simdjson::SUCCESS ||
        doc["source"]["ts_ms"].get_int64().get(commit_ms) != simdjson::SUCCESS ||
        doc["ts_ms"].get_int64().get(encoded_ms) != simdjson::SUCCESS) {
      ++unparsed;
      continue;
    }
    to_append.push_back(ts - commit_ms);
    to_encode.push_back(encoded_ms - commit_ms);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!error.empty()) return Fail(error);
  std::printf("latency_events=%zu\nnot_log_append_time=%lld\nunparsed=%lld\n", to_append.size(),
              static_cast<long long>(not_append_time), static_cast<long long>(unparsed));
  PrintDistribution("commit_to_ack", to_append);
  PrintDistribution("commit_to_encode", to_encode);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string cmd = args.empty() ? "" : args[0];
  try {
    if (cmd == "create-topic" && args.size() == 3) return CreateTopic(args[1], args[2]);
    if (cmd == "watch" && args.size() == 7) {
      return Watch(args[1], args[2], args[3], args[4], static_cast<pid_t>(std::stol(args[5])),
                   std::stoi(args[6]));
    }
    if (cmd == "high-watermark" && args.size() == 3) return HighWatermark(args[1], args[2]);
    if (cmd == "latency" && args.size() == 6) {
      return Latency(args[1], args[2], std::stoll(args[3]), std::stoll(args[4]),
                     std::stoi(args[5]));
    }
  } catch (const std::exception& e) {  // std::stol on a malformed number
    return Fail(std::string("bad argument: ") + e.what());
  }
  std::fprintf(stderr,
               "usage: cdc_probe create-topic BROKERS TOPIC\n"
               "       cdc_probe watch DSN SLOT END_LSN METRICS_URL PID TIMEOUT_S\n"
               "       cdc_probe high-watermark BROKERS TOPIC\n"
               "       cdc_probe latency BROKERS TOPIC START_OFFSET COUNT TIMEOUT_S\n");
  return 2;
}
