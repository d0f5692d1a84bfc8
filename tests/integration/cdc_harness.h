// Shared pieces of the CDC integration tests: a fresh database, the real `splitstream cdc`
// process with unique slot and topic prefix, and a Kafka reader that collects its records.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "splitstream/kafka/kafka.h"
#include "splitstream/pg/pg.h"
#include "splitstream/testing/process.h"
#include "splitstream/testing/test_database.h"

namespace splitstream::testing {

struct Record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;  // nullopt: tombstone
};

inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// A TCP port on 127.0.0.1 that was free a moment ago.
inline uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  close(fd);
  return port;
}

inline std::string UniqueName(std::string_view stem) {
  static std::atomic<int> counter{0};
  return std::string(stem) + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++) +
         "_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
}

// Reads every topic starting with `prefix.` from the beginning, with its own group. A rebalance
// (a new topic joins the pattern) restarts the partitions from the beginning, as nothing is
// committed: a record already read is not collected twice, so counts are the topic's own.
class KafkaReader {
 public:
  explicit KafkaReader(const std::string& prefix) {
    kafka::ConsumerOptions opts;
    opts.brokers = Env("SPLITSTREAM_KAFKA_BROKERS");
    opts.group_id = UniqueName("reader");
    // Topic names are escaped in the pattern: the prefix may hold regex metacharacters.
    opts.subscriptions = {"^" + prefix + "\\..*"};
    opts.overrides["topic.metadata.refresh.interval.ms"] = "500";
    auto c = kafka::Consumer::Create(opts);
    if (!c.ok()) {
      ADD_FAILURE() << c.status().ToString();
      return;
    }
    consumer_ = std::move(*c);
  }

  // Polls until `done(records)` or the timeout; returns whether done.
  bool ReadUntil(const std::function<bool(const std::vector<Record>&)>& done,
                 std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(records_)) return true;
      if (!consumer_) return false;
      auto batch = consumer_->Poll(10000, std::chrono::milliseconds(200));
      if (!batch.ok()) continue;
      for (auto& m : *batch) {
        if (!seen_.emplace(std::string(m.topic()), m.partition(), m.offset()).second) continue;
        Record r;
        r.topic = std::string(m.topic());
        r.partition = m.partition();
        r.offset = m.offset();
        if (m.key()) r.key = std::string(*m.key());
        if (m.value()) r.value = std::string(*m.value());
        records_.push_back(std::move(r));
      }
    }
    return done(records_);
  }
  const std::vector<Record>& records() const { return records_; }

 private:
  std::unique_ptr<kafka::Consumer> consumer_;
  std::vector<Record> records_;
  std::set<std::tuple<std::string, int32_t, int64_t>> seen_;
};

inline std::string BinaryPath() { return SPLITSTREAM_BINARY; }

class CdcFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Env("SPLITSTREAM_KAFKA_BROKERS").empty())
        << "SPLITSTREAM_KAFKA_BROKERS is not set: run through scripts/test";
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    auto conn = pg::Connection::Open(db_->dsn());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    sql_ = std::move(*conn);
    prefix_ = UniqueName("cdc");
    slot_ = UniqueName("slot");
    log_ = "/tmp/" + prefix_ + ".log";
  }

  void TearDown() override {
    if (::testing::Test::HasFailure()) {
      std::string log = ReadFile(log_);
      if (log.size() > 6000) log = "..." + log.substr(log.size() - 6000);
      std::fprintf(stderr, "---- splitstream cdc log (%s) ----\n%s\n", log_.c_str(), log.c_str());
    }
    cdc_.reset();
    sql_.reset();
    db_.reset();
  }

  void StartCdc(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {BinaryPath(),
                                     "cdc",
                                     "--slot",
                                     slot_,
                                     "--metrics-addr",
                                     "127.0.0.1:0",
                                     "--heartbeat-interval-ms",
                                     "500"};
    for (auto& a : extra) argv.push_back(a);
    std::map<std::string, std::string> env = {
        {"SPLITSTREAM_PG_DSN", db_->dsn()},
        {"SPLITSTREAM_TOPIC_PREFIX", prefix_},
        {"SPLITSTREAM_LOG_LEVEL", "info"},
    };
    auto p = Process::Start(argv, env, log_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    cdc_ = std::make_unique<Process>(std::move(*p));
  }

  // Stops the CDC process with SIGTERM and returns its exit code.
  int StopCdc() {
    cdc_->Signal(SIGTERM);
    auto code = cdc_->Wait(std::chrono::seconds(60));
    return code.value_or(-1);
  }

  void Exec(const std::string& sql) {
    auto st = sql_->ExecScript(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << sql;
  }

  std::string Topic(const std::string& table) const { return prefix_ + ".public." + table; }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<pg::Connection> sql_;
  std::unique_ptr<Process> cdc_;
  std::string prefix_, slot_, log_;
};

// A JSON document parsed once, with helpers that make assertions read like the format.
class Json {
 public:
  explicit Json(std::string_view text) : padded_(text) {
    ok_ = parser_.parse(padded_).get(root_) == simdjson::SUCCESS;
  }
  bool ok() const { return ok_; }
  // The value at a JSON pointer as minified JSON text ("<missing>" when absent).
  std::string At(std::string_view pointer) const {
    simdjson::dom::element e;
    if (!ok_ || root_.at_pointer(pointer).get(e)) return "<missing>";
    return simdjson::minify(e);
  }
  std::string Str(std::string_view pointer) const {
    simdjson::dom::element e;
    std::string_view s;
    if (!ok_ || root_.at_pointer(pointer).get(e) || e.get(s)) return "<not a string>";
    return std::string(s);
  }
  // Keys of the object at `pointer`, in document order.
  std::vector<std::string> Keys(std::string_view pointer) const {
    std::vector<std::string> keys;
    simdjson::dom::element e;
    simdjson::dom::object o;
    if (!ok_ || root_.at_pointer(pointer).get(e) || e.get(o)) return keys;
    for (auto field : o) keys.emplace_back(field.key);
    return keys;
  }

 private:
  simdjson::padded_string padded_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  bool ok_ = false;
};

}  // namespace splitstream::testing
