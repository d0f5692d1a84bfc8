// `splitstream up` end to end against the real PostgreSQL, Kafka and ClickHouse of the test
// stack: one command migrates both databases and runs serve, cdc and sink; an experiment
// driven through its API with the tokens it generated lands in ClickHouse; SIGTERM stops
// every child and exits 0; a child that dies takes `up` down with an error naming it.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>

#include "cdc_harness.h"
#include "clickhouse_harness.h"

namespace splitstream::testing {
namespace {

using std::chrono::seconds;

class UpTest : public CdcFixture {
 protected:
  void SetUp() override {
    CdcFixture::SetUp();
    ch_database_ = UniqueName("up");
    http_addr_ = fmt::format("127.0.0.1:{}", FreePort());
    group_ = UniqueName("up_group");
    ch_ = NewClickHouse("");
    ASSERT_TRUE(ch_);
  }
  void TearDown() override {
    if (up_ && up_->Running()) {
      up_->Signal(SIGTERM);
      up_->Wait(seconds(90));
    }
    if (::testing::Test::HasFailure()) {
      std::string log = ReadFile(log_);
      if (log.size() > 8000) log = "..." + log.substr(log.size() - 8000);
      std::fprintf(stderr, "---- splitstream up log ----\n%s\n", log.c_str());
    }
    up_.reset();
    if (ch_)
      (void)ch_->Execute("DROP DATABASE IF EXISTS " + clickhouse::QuoteIdentifier(ch_database_));
    CdcFixture::TearDown();
  }

  std::map<std::string, std::string> Environment() const {
    return {{"SPLITSTREAM_PG_DSN", db_->dsn()},
            {"SPLITSTREAM_TOPIC_PREFIX", prefix_},
            {"SPLITSTREAM_CLICKHOUSE_DATABASE", ch_database_},
            {"SPLITSTREAM_HTTP_ADDR", http_addr_},
            {"SPLITSTREAM_ADMIN_TOKEN", ""},
            {"SPLITSTREAM_CLIENT_TOKEN", ""},
            {"SPLITSTREAM_LOG_LEVEL", "info"}};
  }

  void StartUp() {
    auto p =
        Process::Start({BinaryPath(), "up", "--slot", slot_, "--group", group_,
                        "--cdc-metrics-addr", "127.0.0.1:0", "--sink-metrics-addr", "127.0.0.1:0"},
                       Environment(), log_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    up_ = std::make_unique<Process>(std::move(*p));
  }

  // The word printed after "splitstream up: <label>" once `up` printed it ("" after the
  // timeout).
  std::string AwaitPrinted(const std::string& label) {
    const std::string marker = "splitstream up: " + label;
    for (int i = 0; i < 600; ++i) {
      const std::string log = ReadFile(log_);
      size_t at = log.find(marker);
      if (at != std::string::npos) {
        size_t begin = log.find_first_not_of(' ', at + marker.size());
        size_t end = log.find_first_of(" )\n", begin);
        if (begin != std::string::npos && end != std::string::npos) {
          return log.substr(begin, end - begin);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "";
  }

  // The PID `up` printed for its child `role` (0 when none was printed).
  pid_t ChildPid(const std::string& role) {
    const std::string word = AwaitPrinted(role + " (pid");
    return word.empty() ? 0 : static_cast<pid_t>(std::stol(word));
  }

  std::unique_ptr<clickhouse::Client> ch_;
  std::unique_ptr<Process> up_;
  std::string ch_database_, http_addr_, group_;
};

TEST_F(UpTest, OneCommandRunsThePipelineAndStopsCleanly) {
  StartUp();
  const std::string admin = AwaitPrinted("admin token");
  const std::string client = AwaitPrinted("client token");
  ASSERT_EQ(admin.size(), 32u) << "no generated admin token printed";
  ASSERT_EQ(client.size(), 32u);
  EXPECT_NE(admin, client);
  ASSERT_FALSE(AwaitPrinted("running;").empty());

  // An experiment through the API of `serve`, with the generated tokens.
  std::map<std::string, std::string> env = Environment();
  env["SPLITSTREAM_ADMIN_TOKEN"] = admin;
  env["SPLITSTREAM_CLIENT_TOKEN"] = client;
  bool ready = false;
  for (int i = 0; i < 300 && !ready; ++i) {
    ready = RunCommand("curl -fsS -o /dev/null http://" + http_addr_ + "/readyz") == 0;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(ready) << "serve never became ready";
  auto loadgen = Process::Start({BinaryPath(), "loadgen", "--url", "http://" + http_addr_,
                                 "--experiment", "up-checkout", "--users", "300"},
                                env, log_ + ".loadgen");
  ASSERT_TRUE(loadgen.ok());
  ASSERT_EQ(loadgen->Wait(seconds(120)).value_or(-1), 0) << ReadFile(log_ + ".loadgen");

  auto rows =
      sql_->Exec("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM assignments)");
  ASSERT_TRUE(rows.ok());
  const int64_t events = std::stoll(std::string(rows->text(0, 0)));
  const int64_t assignments = std::stoll(std::string(rows->text(0, 1)));
  ASSERT_GE(assignments, 300);
  ASSERT_GT(events, 0);
  // Every table, row for row, as `up` left it through cdc → Kafka → sink.
  ExpectEventuallyEqual(*sql_, *ch_, ch_database_, SplitstreamTables(), seconds(60));

  up_->Signal(SIGTERM);
  EXPECT_EQ(up_->Wait(seconds(90)).value_or(-1), 0);
  // Every child is gone: the API port is closed and the slot has no consumer.
  EXPECT_NE(RunCommand("curl -fsS -o /dev/null --max-time 2 http://" + http_addr_ + "/healthz"), 0);
  auto active = sql_->Exec("SELECT active FROM pg_replication_slots WHERE slot_name = $1", {slot_});
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ(active->text(0, 0), "f");
  const std::string log = ReadFile(log_);
  EXPECT_NE(log.find("up: everything stopped"), std::string::npos);
  // The tokens appear once each (printed by up), never in a child's log line.
  EXPECT_EQ(log.find(admin), log.rfind(admin));
}

TEST_F(UpTest, AChildThatDiesStopsEverythingWithAnErrorNamingIt) {
  StartUp();
  const pid_t cdc_pid = ChildPid("cdc");
  ASSERT_GT(cdc_pid, 1) << "no cdc pid printed";
  ASSERT_FALSE(AwaitPrinted("running;").empty());
  kill(cdc_pid, SIGKILL);
  auto code = up_->Wait(seconds(90));
  ASSERT_TRUE(code.has_value()) << "up kept running after its cdc died";
  EXPECT_NE(*code, 0);
  const std::string log = ReadFile(log_);
  EXPECT_NE(log.find(fmt::format("cdc (pid {}) exited with code 137", cdc_pid)), std::string::npos);
  EXPECT_NE(RunCommand("curl -fsS -o /dev/null --max-time 2 http://" + http_addr_ + "/healthz"), 0)
      << "serve outlived up";
}

// A second Ctrl-C stops everything at once, as it does a single command; a SIGTERM after
// the Ctrl-C (what a script's trap adds) does not cut the graceful stop short.
TEST_F(UpTest, TheSameSignalAgainStopsAtOnceAnotherOneDoesNot) {
  StartUp();
  const pid_t sink_pid = ChildPid("sink");
  ASSERT_GT(sink_pid, 1) << "no sink pid printed";
  ASSERT_FALSE(AwaitPrinted("running;").empty());
  // A sink that does not answer: its graceful stop would last the whole 30 s grace period.
  ASSERT_EQ(kill(sink_pid, SIGSTOP), 0);
  up_->Signal(SIGINT);
  for (int i = 0; i < 300 && ReadFile(log_).find("up: stopping sink") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(ReadFile(log_).find("up: stopping sink"), std::string::npos) << "serve or cdc hung";
  up_->Signal(SIGTERM);
  std::this_thread::sleep_for(seconds(2));
  EXPECT_TRUE(up_->Running()) << "a SIGTERM after the SIGINT cut the stop short";
  EXPECT_NE(ReadFile(log_).find("already stopping"), std::string::npos);

  const auto second = std::chrono::steady_clock::now();
  up_->Signal(SIGINT);
  auto code = up_->Wait(seconds(10));
  ASSERT_TRUE(code.has_value()) << "up still waits for its sink 10 s after the second Ctrl-C";
  EXPECT_NE(*code, 0);
  std::fprintf(stderr, "up ended %.1f s after the second SIGINT\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - second).count());
  EXPECT_NE(ReadFile(log_).find("again: killing sink now"), std::string::npos);
  EXPECT_NE(kill(sink_pid, 0), 0) << "the sink outlived up";
}

}  // namespace
}  // namespace splitstream::testing
