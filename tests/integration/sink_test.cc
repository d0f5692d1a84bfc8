// `splitstream cdc` and `splitstream sink` as processes against the real PostgreSQL, Kafka and
// ClickHouse of the test stack: after each scenario every ClickHouse table's deduplicated state
// equals its PostgreSQL table (row count and every column, compared as an order-independent
// multiset of rows rendered identically on both sides).
//
// Built twice: sink_integration_test (SINK_DISRUPTION undefined) and sink_disruption_test
// (SINK_DISRUPTION=1: stops the shared stack's ClickHouse, so it runs serially).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cdc_harness.h"
#include "clickhouse_harness.h"
#include "splitstream/clickhouse/client.h"
#include "splitstream/pipeline/clickhouse_writer.h"

namespace splitstream::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The Splitstream tables; with_extra: the `extra` column the test adds to each mid-stream.
std::vector<TableSpec> Tables(bool with_extra) {
  std::vector<TableSpec> t = SplitstreamTables();
  if (with_extra) {
    for (auto& s : t) {
      s.ch_columns.push_back("extra");
      s.compared.push_back(Plain("extra"));
    }
  }
  return t;
}

constexpr const char* kSeed = R"sql(
INSERT INTO experiments (id, key, name, seed, status, layer, started_at) VALUES
  (1, 'checkout', 'Checkout', 'checkout', 'running', NULL, '2026-11-20 10:00:00.123456+00'),
  (2, 'search', 'Search "quoted"', 's', 'draft', 'L1', NULL);
INSERT INTO variants (id, experiment_id, key, weight, position) VALUES
  (1, 1, 'control', 0.5, 0), (2, 1, 'b', 0.5, 1), (3, 2, 'control', 0.25, 0), (4, 2, 'x', 0.75, 1);
INSERT INTO assignments (experiment_id, user_id, variant_id, assigned_at) VALUES
  (1, 'u1', 1, '2026-11-20 10:11:12.345678+00'), (1, 'u2', 2, '2026-11-20 10:11:13+00'),
  (2, 'u1', 3, now());
INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, properties, ts) VALUES
  ('00000000-0000-0000-0000-000000000001', 1, 1, 'u1', 'purchase', 12.5, '{"sku": "a\"b"}', now()),
  ('00000000-0000-0000-0000-000000000002', 1, 2, 'u2', 'view', NULL, '{}', now()),
  ('00000000-0000-0000-0000-000000000003', 1, 2, 'u2', 'purchase', 0.1, '{"n": [1, 2]}', now());
)sql";

class SinkTest : public CdcFixture {
 protected:
  void SetUp() override {
    CdcFixture::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_FALSE(Env("SPLITSTREAM_CLICKHOUSE_URL").empty())
        << "SPLITSTREAM_CLICKHOUSE_URL is not set: run through scripts/test";
    ch_db_ = UniqueName("sinktest");
    ch_ = NewClickHouse("");
    ASSERT_TRUE(ch_);
    Status st = pipeline::MigrateClickHouse(*ch_, ch_db_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    group_ = UniqueName("sinkgroup");
    sink_log_ = "/tmp/" + prefix_ + ".sink.log";
    metrics_port_ = FreePort();
  }

  void TearDown() override {
    if (::testing::Test::HasFailure()) {
      std::string log = ReadFile(sink_log_);
      if (log.size() > 8000) log = "..." + log.substr(log.size() - 8000);
      std::fprintf(stderr, "---- splitstream sink log (%s) ----\n%s\n", sink_log_.c_str(),
                   log.c_str());
    }
    StopViewStream();
    sink_.reset();
    if (ch_) (void)ch_->Execute("DROP DATABASE IF EXISTS " + ch_db_);
    CdcFixture::TearDown();
  }

  void StartSink(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        BinaryPath(),     "sink",
        "--group",        group_,
        "--flush-ms",     sink_flush_ms_,
        "--metrics-addr", "127.0.0.1:" + std::to_string(metrics_port_)};
    for (auto& a : extra) argv.push_back(a);
    std::map<std::string, std::string> env = {
        {"SPLITSTREAM_TOPIC_PREFIX", prefix_},
        {"SPLITSTREAM_CLICKHOUSE_DATABASE", ch_db_},
        {"SPLITSTREAM_LOG_LEVEL", "info"},
    };
    auto p = Process::Start(argv, env, sink_log_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    sink_ = std::make_unique<Process>(std::move(*p));
  }
  int StopSink() {
    sink_->Signal(SIGTERM);
    return sink_->Wait(seconds(60)).value_or(-1);
  }

  // Seeds, starts cdc and a sink, waits until ClickHouse caught up, then inserts 'view'
  // events (200 every 100 ms) on a thread until StopViewStream.
  void StartViewStream() {
    Exec(kSeed);
    StartCdc();
    StartSink();
    ExpectEqual(false);
    streaming_ = true;
    stream_ = std::thread([this] {
      for (int i = 0; streaming_.load(); ++i) {
        InsertViews(i * 200, i * 200 + 199);
        std::this_thread::sleep_for(milliseconds(100));
      }
    });
  }
  void StopViewStream() {
    streaming_ = false;
    if (stream_.joinable()) stream_.join();
  }

  // Freezes `server` (SIGSTOP: connections stay open, nothing answers), then stops the sink
  // with `signals`, 1 s apart, and thaws the server once the sink ended or 120 s passed.
  // Returns the time from the first signal to the sink's end (nullopt: it did not end), and
  // reports it with the exit code.
  std::optional<milliseconds> StopWhileFrozen(pid_t server, std::vector<int> signals) {
    if (kill(server, SIGSTOP) != 0) {
      ADD_FAILURE() << "cannot freeze pid " << server;
      return std::nullopt;
    }
    std::this_thread::sleep_for(seconds(2));
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < signals.size(); ++i) {
      if (i > 0) std::this_thread::sleep_for(seconds(1));
      sink_->Signal(signals[i]);
    }
    const std::optional<int> code = sink_->Wait(seconds(120));
    EXPECT_EQ(kill(server, SIGCONT), 0);
    if (!code) return std::nullopt;
    const auto took =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
    std::fprintf(stderr, "sink stopped %lld ms after the first of %zu signal(s), exit code %d\n",
                 static_cast<long long>(took.count()), signals.size(), *code);
    return took;
  }

  // The PID scripts/stack recorded for `server` ("clickhouse", "kafka") of the shared test
  // stack in SPLITSTREAM_STACK_DIR; 0 when there is none.
  pid_t StackPid(const std::string& server) {
    const std::string stack = Env("SPLITSTREAM_STACK_DIR");
    if (stack.empty()) return 0;
    return static_cast<pid_t>(std::atoi(ReadFile(stack + "/run/" + server + ".pid").c_str()));
  }

  // 'view' events of users u<first> … u<last>, in one transaction.
  void InsertViews(int first, int last) {
    Exec(fmt::format(
        "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, "
        "ts) SELECT gen_random_uuid(), 1, 1, 'u' || g, 'view', g, now() FROM "
        "generate_series({}, {}) g",
        first, last));
  }

  // A counter of the sink's /metrics, -1 when unreadable.
  double Metric(const std::string& name) {
    std::string out = "/tmp/" + prefix_ + ".metrics";
    if (RunCommand(fmt::format("curl -sf http://127.0.0.1:{}/metrics > {}", metrics_port_, out)) !=
        0) {
      return -1;
    }
    std::istringstream in(ReadFile(out));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(name + " ", 0) == 0)
        return std::strtod(line.c_str() + name.size() + 1, nullptr);
    }
    return -1;
  }

  // Waits until every table's ClickHouse state equals PostgreSQL's; reports the differences.
  void ExpectEqual(bool with_extra, seconds timeout = seconds(120)) {
    ExpectEventuallyEqual(*sql_, *ch_, ch_db_, Tables(with_extra), timeout);
  }

  // Raw rows (all versions) of a ClickHouse table.
  int64_t ChRawCount(const std::string& table) {
    auto r = ch_->QueryRows(fmt::format("SELECT count() FROM {}.{}", ch_db_, table));
    return r.ok() && !r->empty() ? std::stoll((*r)[0][0]) : -1;
  }

  std::unique_ptr<clickhouse::Client> ch_;
  std::unique_ptr<Process> sink_;
  std::string sink_flush_ms_ = "300";   // StartSink's --flush-ms
  std::atomic<bool> streaming_{false};  // StartViewStream
  std::thread stream_;
  std::string ch_db_, group_, sink_log_;
  uint16_t metrics_port_ = 0;
};

// Streamed changes of every kind on all four tables, after the snapshot.
constexpr const char* kChanges = R"sql(
UPDATE experiments SET status = 'stopped', stopped_at = now(), traffic = 0.3 WHERE id = 1;
UPDATE variants SET weight = 0.6 WHERE id = 1;
INSERT INTO assignments (experiment_id, user_id, variant_id) VALUES (1, 'u3', 1), (1, 'u4', 2);
DELETE FROM assignments WHERE experiment_id = 1 AND user_id = 'u2';
UPDATE assignments SET user_id = 'u1-renamed' WHERE experiment_id = 1 AND user_id = 'u1';
UPDATE events SET value = 99.75 WHERE event_id = '00000000-0000-0000-0000-000000000001';
DELETE FROM events WHERE event_id = '00000000-0000-0000-0000-000000000002';
UPDATE events SET event_id = '00000000-0000-0000-0000-0000000000ff'
  WHERE event_id = '00000000-0000-0000-0000-000000000003';
UPDATE variants SET id = 40 WHERE id = 4;
INSERT INTO experiments (id, key, name, seed) VALUES (3, 'doomed', 'Doomed', 'd');
DELETE FROM experiments WHERE id = 3;
)sql";

constexpr const char* kTruncateAndAddColumns = R"sql(
TRUNCATE assignments, events;
INSERT INTO assignments (experiment_id, user_id, variant_id) VALUES (2, 'after-truncate', 3);
INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, ts) VALUES
  ('00000000-0000-0000-0000-000000000010', 2, 3, 'after-truncate', 'view', 1, now());
ALTER TABLE experiments ADD COLUMN extra text;
ALTER TABLE variants ADD COLUMN extra text;
ALTER TABLE assignments ADD COLUMN extra text;
ALTER TABLE events ADD COLUMN extra text;
UPDATE experiments SET extra = 'e' || id;
UPDATE variants SET extra = 'v' || id WHERE id = 1;
INSERT INTO assignments (experiment_id, user_id, variant_id, extra) VALUES (2, 'with-extra', 40, 'x');
INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, ts, extra) VALUES
  ('00000000-0000-0000-0000-000000000011', 2, 40, 'with-extra', 'click', now(), 'y');
)sql";

#ifndef SINK_DISRUPTION

TEST_F(SinkTest, FullPipelineInsertsUpdatesDeletesTruncatesKeyChangesAndAddedColumns) {
  Exec(kSeed);
  StartCdc();
  // A consumer property of the user's, passed to librdkafka (a smaller prefetch queue).
  StartSink({"--kafka-property", "queued.max.messages.kbytes=65536"});
  ExpectEqual(false);
  Exec(kChanges);
  ExpectEqual(false);
  Exec(kTruncateAndAddColumns);
  ExpectEqual(true);
  EXPECT_GT(Metric("splitstream_sink_flushes_total"), 0);
  EXPECT_EQ(Metric("splitstream_sink_dlq_messages_total"), 0);
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
}

// --kafka-property: the settings the offset guarantee rests on are refused, an unknown
// property is librdkafka's error; either way the sink stops before consuming, naming the key.
TEST_F(SinkTest, KafkaPropertiesThatWouldBreakTheGuaranteesOrDoNotExistAreRefused) {
  for (const auto& [property, expected] : std::vector<std::pair<std::string, std::string>>{
           {"enable.auto.commit=true", "enable.auto.commit cannot be set"},
           {"group.id=other", "group.id cannot be set"},
           {"no.such.property=1", "no.such.property"},
           {"queued.max.messages.kbytes", "kafka_property #1 must be KEY=VALUE"}}) {
    StartSink({"--kafka-property", property});
    const std::optional<int> code = sink_->Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << property << ": the sink did not stop";
    EXPECT_NE(*code, 0) << property;
    const std::string log = ReadFile(sink_log_);
    EXPECT_NE(log.find(expected), std::string::npos) << property << "\n" << log;
  }
}

TEST_F(SinkTest, KillNineInTheMiddleOf200kRowsThenRestartIsEqual) {
  Exec(kSeed);
  StartCdc();
  StartSink({"--batch-rows", "5000"});
  ExpectEqual(false);
  std::thread writer([&] {
    for (int i = 0; i < 20; ++i) {
      Exec(
          fmt::format("INSERT INTO events (event_id, experiment_id, variant_id, user_id, "
                      "event_type, value, ts) "
                      "SELECT gen_random_uuid(), 1, 1 + g % 2, 'user' || g, 'view', g * 0.5, now() "
                      "FROM generate_series({}, {}) g",
                      i * 10000, i * 10000 + 9999));
    }
  });
  // Kill once the sink has written part of the stream.
  auto deadline = std::chrono::steady_clock::now() + seconds(120);
  while (ChRawCount("events") < 30000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  int64_t at_kill = ChRawCount("events");
  sink_->Signal(SIGKILL);
  EXPECT_EQ(sink_->Wait(seconds(10)).value_or(-1), 128 + SIGKILL);
  writer.join();
  EXPECT_LT(at_kill, 200000) << "the kill should land mid-stream";
  StartSink({"--batch-rows", "5000"});
  ExpectEqual(false, seconds(240));
  auto rows = sql_->Exec("SELECT count(*) FROM events");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->text(0, 0), "200003");
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
}

TEST_F(SinkTest, ReplayFromEarliestWithTheSameGroupLeavesResultsUnchanged) {
  Exec(kSeed);
  StartCdc();
  StartSink();
  Exec(kChanges);
  ExpectEqual(false);
  double consumed = Metric("splitstream_sink_messages_total");
  int64_t raw_before = ChRawCount("events") + ChRawCount("assignments");
  ASSERT_GT(consumed, 0);
  EXPECT_EQ(StopSink(), 0);

  StartSink({"--reset-offsets", "earliest"});
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (Metric("splitstream_sink_messages_total") < consumed &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_GE(Metric("splitstream_sink_messages_total"), consumed) << "the replay re-read the topics";
  // The replay wrote every row again (raw rows grow, unless merged meanwhile) ...
  ExpectEqual(false);
  EXPECT_EQ(StopSink(), 0);
  std::fprintf(stderr, "raw rows before replay %lld, after %lld\n",
               static_cast<long long>(raw_before),
               static_cast<long long>(ChRawCount("events") + ChRawCount("assignments")));
  // ... and a replay from a timestamp in the future reads nothing and changes nothing.
  StartSink({"--reset-offsets", "2099-01-01T00:00:00Z"});
  std::this_thread::sleep_for(seconds(3));
  ExpectEqual(false);
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
}

// Reads `topic` from the beginning until `n` messages arrived.
std::vector<kafka::Message> ReadTopic(const std::string& topic, size_t n) {
  kafka::ConsumerOptions o;
  o.brokers = Env("SPLITSTREAM_KAFKA_BROKERS");
  o.group_id = UniqueName("dlqreader");
  o.subscriptions = {topic};
  std::vector<kafka::Message> out;
  auto c = kafka::Consumer::Create(o);
  if (!c.ok()) return out;
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*c)->Poll(100, milliseconds(200));
    if (!batch.ok()) continue;
    for (auto& m : *batch) out.push_back(std::move(m));
  }
  return out;
}

Status ProduceAll(const std::string& topic,
                  const std::vector<std::pair<std::optional<std::string>, std::string>>& msgs) {
  kafka::ProducerOptions o;
  o.brokers = Env("SPLITSTREAM_KAFKA_BROKERS");
  std::atomic<int> failed{0};
  auto p = kafka::Producer::Create(o, [&](const kafka::DeliveryReport& r) {
    if (!r.status.ok()) ++failed;
  });
  if (!p.ok()) return p.status();
  uint64_t cookie = 0;
  for (auto& [k, v] : msgs) {
    std::optional<std::string_view> key;
    if (k) key = *k;
    SPLITSTREAM_RETURN_IF_ERROR((*p)->Produce(topic, key, v, cookie++));
  }
  SPLITSTREAM_RETURN_IF_ERROR((*p)->Flush(seconds(30)));
  return failed == 0 ? Status::Ok() : Status::Unavailable("delivery failed");
}

TEST_F(SinkTest, PoisonMessagesLandInTheDeadLetterTopicWithHeadersAndTheSinkGoesOn) {
  Exec(kSeed);
  StartCdc();
  StartSink();
  ExpectEqual(false);
  std::string topic = Topic("events");
  ASSERT_TRUE(
      ProduceAll(
          topic,
          {{"{\"k\":1}", "this is not json"},
           {std::nullopt,
            R"({"before":null,"after":{"event_id":"x"},"source":{"connector":"postgresql","lsn":"oops"},"op":"c"})"}})
          .ok());
  Exec(
      "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, ts) VALUES "
      "('00000000-0000-0000-0000-000000000077', 1, 1, 'after-poison', 'view', now())");
  ExpectEqual(false);
  auto dlq = ReadTopic(prefix_ + ".dlq", 2);
  ASSERT_EQ(dlq.size(), 2u);
  std::set<std::string> values;
  for (auto& m : dlq) {
    std::map<std::string, std::string> h;
    for (auto& x : m.headers()) h[x.key] = x.value;
    EXPECT_EQ(h["source.topic"], topic);
    EXPECT_EQ(h["source.partition"], "0");
    EXPECT_FALSE(h["source.offset"].empty());
    EXPECT_NE(h["error"].find("decode"), std::string::npos) << h["error"];
    values.insert(std::string(m.value().value_or("")));
  }
  EXPECT_EQ(values.count("this is not json"), 1u);
  EXPECT_EQ(dlq[0].key().value_or("") == "{\"k\":1}" || dlq[1].key().value_or("") == "{\"k\":1}",
            true);
  EXPECT_EQ(Metric("splitstream_sink_dlq_messages_total"), 2);
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
}

std::string Fixture(const std::string& name, std::string* key) {
  std::ifstream in(std::string(DEBEZIUM_TESTDATA_DIR) + "/changefeed/" + name + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  Json doc(ss.str());
  std::string k = doc.At("/key");
  *key = k == "null" ? "" : doc.Str("/key");
  return doc.Str("/value");
}

TEST_F(SinkTest, CockroachDbChangefeedFixturesLandAsRows) {
  Status st = ch_->Execute(fmt::format(
      "CREATE TABLE {}.employees (id Int64, name String, office String, _version UInt64, "
      "_deleted UInt8, _source_ts_ms Int64) ENGINE = ReplacingMergeTree(_version) ORDER BY id",
      ch_db_));
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::vector<std::pair<std::optional<std::string>, std::string>> msgs;
  for (const char* name : {"updated", "diff_insert", "resolved"}) {
    std::string key;
    std::string value = Fixture(name, &key);
    ASSERT_FALSE(value.empty()) << name;
    msgs.emplace_back(key.empty() ? std::nullopt : std::optional<std::string>(key), value);
  }
  ASSERT_TRUE(ProduceAll(prefix_ + ".public.employees", msgs).ok());
  StartSink();
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto rows = ch_->QueryRows(
        fmt::format("SELECT id, name, office, _deleted FROM ({}) ORDER BY id",
                    pipeline::DeduplicatedSelect(ch_db_, "employees",
                                                 {"id", "name", "office", "_deleted"}, {"id"})));
    got.clear();
    if (rows.ok()) {
      for (auto& r : *rows) got += fmt::format("{}\n", fmt::join(r, ","));
    }
    if (got == "1,Terry,new york city,0\n3,Ash,london,0\n") break;
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_EQ(got, "1,Terry,new york city,0\n3,Ash,london,0\n");
  EXPECT_EQ(Metric("splitstream_sink_dlq_messages_total"), 0);
  EXPECT_EQ(StopSink(), 0);
}

TEST_F(SinkTest, FilesFanOutIsAnIndependentGroupWritingHourlyJsonLines) {
  Exec(kSeed);
  StartCdc();
  StartSink();
  std::string dir = "/tmp/" + prefix_ + "-archive";
  std::string log = "/tmp/" + prefix_ + ".archive.log";
  auto archive = Process::Start(
      {BinaryPath(), "sink", "--to", "files:" + dir, "--flush-ms", "200", "--metrics-addr",
       "127.0.0.1:0"},
      {{"SPLITSTREAM_TOPIC_PREFIX", prefix_}, {"SPLITSTREAM_LOG_LEVEL", "info"}}, log);
  ASSERT_TRUE(archive.ok());
  ExpectEqual(false);
  // Every message of the events topic (3 snapshot reads) appears as one line.
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  size_t lines = 0;
  std::string sample;
  while (std::chrono::steady_clock::now() < deadline) {
    lines = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir + "/" + Topic("events"), ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().extension() != ".jsonl") continue;
      std::istringstream in(ReadFile(it->path()));
      std::string line;
      while (std::getline(in, line)) {
        ++lines;
        sample = line;
      }
    }
    if (lines >= 3) break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(lines, 3u);
  Json j(sample);
  ASSERT_TRUE(j.ok()) << sample;
  EXPECT_EQ(j.Str("/topic"), Topic("events"));
  EXPECT_EQ(j.Str("/value/op"), "r");
  EXPECT_NE(j.At("/offset"), "<missing>");
  EXPECT_NE(j.At("/timestamp_ms"), "<missing>");
  archive->Signal(SIGTERM);
  EXPECT_EQ(archive->Wait(seconds(30)).value_or(-1), 0);
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
  std::filesystem::remove_all(dir);
}

#else  // SINK_DISRUPTION

// Kills the shared stack's ClickHouse in the middle of a stream, keeps it down for 20 s and
// restarts it with `scripts/stack up`: the sink retries with backoff (partitions paused,
// nothing committed) and catches up without loss or visible duplicates.
TEST_F(SinkTest, ClickHouseDownFor20sMidStreamIsEqualAfterwards) {
  const std::string stack = Env("SPLITSTREAM_STACK_DIR");
  const pid_t ch_pid = StackPid("clickhouse");
  ASSERT_GT(ch_pid, 0) << "no ClickHouse PID under SPLITSTREAM_STACK_DIR=" << stack;
  Exec(kSeed);
  StartCdc();
  StartSink();
  ExpectEqual(false);
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) {
      InsertViews(i * 1000, i * 1000 + 999);
      std::this_thread::sleep_for(milliseconds(1000));
    }
  });
  std::this_thread::sleep_for(seconds(5));
  ASSERT_EQ(kill(ch_pid, SIGKILL), 0);
  for (int i = 0; i < 100 && kill(ch_pid, 0) == 0; ++i)
    std::this_thread::sleep_for(milliseconds(100));
  std::this_thread::sleep_for(seconds(20));
  EXPECT_GT(Metric("splitstream_sink_retries_total"), 0) << "the outage was seen";
  EXPECT_EQ(Metric("splitstream_sink_paused"), 1) << "partitions paused while retrying";
  ASSERT_EQ(RunCommand(std::string(SPLITSTREAM_SOURCE_DIR) + "/scripts/stack up --dir " + stack +
                       " >/dev/null"),
            0)
      << "scripts/stack up could not restart ClickHouse";
  writer.join();
  ExpectEqual(false, seconds(180));
  EXPECT_EQ(Metric("splitstream_sink_paused"), 0);
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
}

// SIGTERM while the Kafka broker is frozen (SIGSTOP: connections open, nothing answers) in
// the middle of a stream, so a commit is waiting for the group coordinator: the sink caps each
// wait for the coordinator by what is left of its 15 s stop budget (librdkafka's synchronous
// commit and close waited for minutes here) and gives up leaving the group; the process ends
// 25 s after the signal at the latest (librdkafka 2.0.2 may still wait while releasing its
// handle), having committed nothing it had not written; a new sink in the group then carries
// on without loss.
TEST_F(SinkTest, StopWhileTheBrokerIsFrozenEndsInBoundedTime) {
  const pid_t kafka = StackPid("kafka");
  ASSERT_GT(kafka, 0) << "no Kafka PID under SPLITSTREAM_STACK_DIR="
                      << Env("SPLITSTREAM_STACK_DIR");
  // Batches due only every 10 s: when the broker freezes, the sink nearly always holds rows
  // whose commit the stop must attempt (with nothing to commit, even the old code stopped in
  // about 5 s).
  sink_flush_ms_ = "10000";
  StartViewStream();
  std::this_thread::sleep_for(seconds(3));
  const std::optional<milliseconds> took = StopWhileFrozen(kafka, {SIGTERM});
  StopViewStream();
  ASSERT_TRUE(took.has_value()) << "the sink did not stop within 120 s";
  EXPECT_LT(*took, seconds(28)) << ReadFile(sink_log_);
  std::fprintf(stderr, "a commit was pending at the stop: %s\n",
               ReadFile(sink_log_).find("commit failed") != std::string::npos ? "yes" : "no");

  StartSink();  // same group: carries on from the last commit
  ExpectEqual(false, seconds(240));
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
}

// SIGTERM while ClickHouse is frozen (SIGSTOP) in the middle of a stream: an INSERT sent to it
// would wait for its 60 s request timeout, and the flush would then be retried. The process
// ends 25 s after SIGTERM at the latest (the sink's 15 s stop budget and 10 s to spare), or at
// once when the first signal comes again (the other one meanwhile, as from a script stopping
// its background jobs after a Ctrl-C reached them, does not cut the stop short), committing
// nothing it had not written; a new sink carries on without
// loss either way.
TEST_F(SinkTest, StopWhileClickHouseIsFrozenEndsInBoundedTimeOrWhenTheSignalComesAgain) {
  const pid_t clickhouse = StackPid("clickhouse");
  ASSERT_GT(clickhouse, 0) << "no ClickHouse PID under SPLITSTREAM_STACK_DIR="
                           << Env("SPLITSTREAM_STACK_DIR");
  StartViewStream();
  std::this_thread::sleep_for(seconds(3));
  const std::optional<milliseconds> once = StopWhileFrozen(clickhouse, {SIGTERM});
  ASSERT_TRUE(once.has_value()) << "the sink did not stop within 120 s";
  EXPECT_LT(*once, seconds(28)) << ReadFile(sink_log_);

  StartSink();
  std::this_thread::sleep_for(seconds(5));
  const std::optional<milliseconds> repeated =
      StopWhileFrozen(clickhouse, {SIGINT, SIGTERM, SIGINT});
  StopViewStream();
  ASSERT_TRUE(repeated.has_value()) << "the sink did not stop within 120 s";
  EXPECT_LT(*repeated, seconds(8)) << ReadFile(sink_log_);
  EXPECT_NE(ReadFile(sink_log_).find("Terminated received while stopping"), std::string::npos);
  EXPECT_NE(ReadFile(sink_log_).find("Interrupt received again: exiting now"), std::string::npos);
  EXPECT_GT(*repeated, milliseconds(1900)) << "the SIGTERM after the SIGINT ended it";

  StartSink();
  ExpectEqual(false, seconds(240));
  EXPECT_EQ(StopSink(), 0);
  EXPECT_EQ(StopCdc(), 0);
}

#endif

}  // namespace
}  // namespace splitstream::testing
