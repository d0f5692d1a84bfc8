// Measuring helpers of bench/sink/run.sh (the sink benchmark), one per subcommand:
//
//   sink_probe watch CH_URL DATABASE TARGET_ROWS BROKERS GROUP TOPIC END_OFFSET PID TIMEOUT_S
//       every 50 ms, until both hold: `SELECT count() FROM DATABASE.events` >= TARGET_ROWS,
//       and GROUP's committed offset of TOPIC partition 0 >= END_OFFSET (read with an
//       OffsetFetch of a consumer that never joins the group). Samples VmHWM of PID on every
//       round. Prints first_row_ns= (count > 0 first seen), count_ns=, committed_ns=
//       (CLOCK_REALTIME, as `date +%s%N`), committed_offset= and vmhwm_kb=. Fails when PID
//       exits or TIMEOUT_S passes first.
//   sink_probe latency CH_URL DATABASE TAG COUNT_FILE POLL_MS TIMEOUT_S [DUMP_FILE]
//       every POLL_MS selects the rows of DATABASE.events whose event_type is TAG and whose
//       value (a sequence number 1, 2, 3, ... given by PostgreSQL at insert time) is above the
//       highest number below which every row has been seen, and records, for each row seen for
//       the first time, the wall-clock time at which that poll started minus the row's
//       _source_ts_ms (the commit time PostgreSQL reported). Runs until it has seen N rows, N
//       being the number written into COUNT_FILE (by the script, once the load has ended),
//       and prints the distribution (ms) with the polling statistics. A row that became
//       visible during a poll interval is counted at the start of the next poll, so each value
//       over-estimates by at most one interval (POLL_MS + the query's own time). With
//       DUMP_FILE, also writes one "sequence commit_ms seen_ms" line per row there (to see
//       when the slow rows were committed).
//
// Output is key=value lines on stdout; errors go to stderr with exit status 1.
#include <librdkafka/rdkafka.h>
#include <signal.h>
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
#include <unordered_set>
#include <vector>

#include "splitstream/clickhouse/client.h"

namespace {

using namespace std::chrono_literals;
using splitstream::clickhouse::Client;
using splitstream::clickhouse::ClientOptions;

int Fail(const std::string& message) {
  std::fprintf(stderr, "sink_probe: %s\n", message.c_str());
  return 1;
}

int64_t RealtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<long> VmHwmKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

std::unique_ptr<Client> MakeClient(const std::string& url, const std::string& database) {
  ClientOptions options;
  options.url = url;
  options.database = database;
  options.compress_responses = false;  // loopback: gzip would only cost CPU
  options.wait_end_of_query = false;
  auto client = Client::Create(options);
  if (!client.ok()) {
    Fail(client.status().ToString());
    return nullptr;
  }
  return std::move(*client);
}

// A consumer handle of GROUP that never subscribes: rd_kafka_committed asks the group
// coordinator for the committed offsets without joining the group.
rd_kafka_t* OffsetReader(const std::string& brokers, const std::string& group) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof(err));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) Fail(std::string("rd_kafka_new: ") + err);
  return rk;
}

// Committed offset of topic/0; -1 when none yet (RD_KAFKA_OFFSET_INVALID) or on error.
int64_t Committed(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0);
  int64_t offset = -1;
  if (rd_kafka_committed(rk, parts, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
      parts->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && parts->elems[0].offset >= 0) {
    offset = parts->elems[0].offset;
  }
  rd_kafka_topic_partition_list_destroy(parts);
  return offset;
}

int Watch(const std::string& ch_url, const std::string& database, int64_t target_rows,
          const std::string& brokers, const std::string& group, const std::string& topic,
          int64_t end_offset, pid_t pid, int timeout_s) {
  auto client = MakeClient(ch_url, database);
  if (client == nullptr) return 1;
  rd_kafka_t* rk = OffsetReader(brokers, group);
  if (rk == nullptr) return 1;
  std::optional<int64_t> first_row_ns, count_ns, committed_ns;
  int64_t committed = -1;
  long hwm = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int exit_code = 1;
  while (true) {
    if (kill(pid, 0) != 0) {
      Fail("the sink process (pid " + std::to_string(pid) + ") is gone");
      break;
    }
    hwm = std::max(hwm, VmHwmKb(pid).value_or(-1));
    if (std::chrono::steady_clock::now() > deadline) {
      Fail("not done within " + std::to_string(timeout_s) + " s (rows reached: " +
           (count_ns ? "yes" : "no") + ", committed offset " + std::to_string(committed) + ")");
      break;
    }
    if (!count_ns) {
      auto rows = client->QueryRows("SELECT count() FROM events");
      if (!rows.ok()) {
        Fail(rows.status().ToString());
        break;
      }
      const int64_t count = std::stoll((*rows)[0][0]);
      const int64_t now = RealtimeNs();
      if (count > 0 && !first_row_ns) first_row_ns = now;
      if (count >= target_rows) count_ns = now;
    }
    if (!committed_ns) {
      committed = Committed(rk, topic);
      if (committed >= end_offset) committed_ns = RealtimeNs();
    }
    if (count_ns && committed_ns) {
      std::printf(
          "first_row_ns=%lld\ncount_ns=%lld\ncommitted_ns=%lld\ncommitted_offset=%lld\n"
          "vmhwm_kb=%ld\n",
          static_cast<long long>(*first_row_ns), static_cast<long long>(*count_ns),
          static_cast<long long>(*committed_ns), static_cast<long long>(committed), hwm);
      exit_code = 0;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  rd_kafka_destroy(rk);
  return exit_code;
}

double Quantile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  // Nearest rank.
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]);
}

// The number the script wrote into path, or nullopt while there is none.
std::optional<int64_t> ReadCount(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  if (in >> n) return n;
  return std::nullopt;
}

int Latency(const std::string& ch_url, const std::string& database, const std::string& tag,
            const std::string& count_file, int poll_ms, int timeout_s,
            const std::string& dump_file) {
  auto client = MakeClient(ch_url, database);
  if (client == nullptr) return 1;
  std::unordered_set<int64_t> seen;
  int64_t contiguous = 0;  // every sequence number 1..contiguous has been seen
  std::vector<int64_t> latencies;
  std::ofstream dump;
  if (!dump_file.empty()) dump.open(dump_file);
  int64_t polls = 0, query_ns = 0, fetched = 0;
  const int64_t start_ns = RealtimeNs();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::optional<int64_t> expected;
  auto next = std::chrono::steady_clock::now();
  while (true) {
    if (!expected) expected = ReadCount(count_file);
    if (expected && static_cast<int64_t>(seen.size()) >= *expected) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail("saw " + std::to_string(seen.size()) + " of " +
                  (expected ? std::to_string(*expected) : std::string("?")) + " rows of " + tag +
                  " within " + std::to_string(timeout_s) + " s");
    }
    std::this_thread::sleep_until(next);
    next += std::chrono::milliseconds(poll_ms);
    const int64_t poll_ns = RealtimeNs();
    auto rows =
        client->QueryRows("SELECT toInt64(value), _source_ts_ms FROM events WHERE event_type = '" +
                          tag + "' AND value > " + std::to_string(contiguous));
    query_ns += RealtimeNs() - poll_ns;
    ++polls;
    if (!rows.ok()) return Fail(rows.status().ToString());
    const int64_t poll_ms_now = poll_ns / 1000000;
    for (const auto& row : *rows) {
      ++fetched;
      const int64_t seq = std::stoll(row[0]);
      if (!seen.insert(seq).second) continue;
      const int64_t commit_ms = std::stoll(row[1]);
      latencies.push_back(poll_ms_now - commit_ms);
      if (dump.is_open()) dump << seq << ' ' << commit_ms << ' ' << poll_ms_now << '\n';
    }
    while (seen.count(contiguous + 1) != 0) ++contiguous;
    // Never fall behind by more than one round when a query took longer than the interval.
    next = std::max(next, std::chrono::steady_clock::now());
  }
  const double elapsed_ms = static_cast<double>(RealtimeNs() - start_ns) / 1e6;
  std::sort(latencies.begin(), latencies.end());
  double sum = 0;
  for (int64_t v : latencies) sum += static_cast<double>(v);
  const double n = static_cast<double>(std::max<size_t>(latencies.size(), 1));
  std::printf(
      "rows=%zu\npolls=%lld\npoll_interval_mean_ms=%.1f\npoll_query_mean_ms=%.2f\n"
      "rows_fetched=%lld\np50_ms=%.0f\np90_ms=%.0f\np99_ms=%.0f\np999_ms=%.0f\nmax_ms=%lld\n"
      "min_ms=%lld\nmean_ms=%.1f\n",
      latencies.size(), static_cast<long long>(polls),
      elapsed_ms / static_cast<double>(std::max<int64_t>(polls, 1)),
      static_cast<double>(query_ns) / 1e6 / static_cast<double>(std::max<int64_t>(polls, 1)),
      static_cast<long long>(fetched), Quantile(latencies, 0.5), Quantile(latencies, 0.9),
      Quantile(latencies, 0.99), Quantile(latencies, 0.999),
      static_cast<long long>(latencies.empty() ? 0 : latencies.back()),
      static_cast<long long>(latencies.empty() ? 0 : latencies.front()), sum / n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string cmd = args.empty() ? "" : args[0];
  try {
    if (cmd == "watch" && args.size() == 10) {
      return Watch(args[1], args[2], std::stoll(args[3]), args[4], args[5], args[6],
                   std::stoll(args[7]), static_cast<pid_t>(std::stol(args[8])), std::stoi(args[9]));
    }
    if (cmd == "latency" && (args.size() == 7 || args.size() == 8)) {
      return Latency(args[1], args[2], args[3], args[4], std::stoi(args[5]), std::stoi(args[6]),
                     args.size() == 8 ? args[7] : "");
    }
  } catch (const std::exception& e) {  // std::stoll on a malformed number or answer
    return Fail(std::string("bad number: ") + e.what());
  }
  std::fprintf(stderr,
               "usage: sink_probe watch CH_URL DATABASE TARGET_ROWS BROKERS GROUP TOPIC "
               "END_OFFSET PID TIMEOUT_S\n"
               "       sink_probe latency CH_URL DATABASE TAG COUNT_FILE POLL_MS TIMEOUT_S "
               "[DUMP_FILE]\n");
  return 2;
}
