// `splitstream up` end to end against the real PostgreSQL, Kafka and ClickHouse of the test
// stack: one command migrates both databases and runs serve, cdc and sink; an experiment
// driven through its API with the tokens it generated lands in ClickHouse; SIGTERM stops
// every child and exits 0; a child that dies takes `up` down with an error naming it.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>

#include "up_harness.h"

namespace splitstream::testing {
namespace {

using std::chrono::seconds;

class UpTest : public UpFixture {};

TEST_F(UpTest, OneCommandRunsThePipelineAndStopsCleanly) {
  StartUp();
  const std::string admin = AwaitPrinted("admin token");
  const std::string client = AwaitPrinted("client token");
  ASSERT_EQ(admin.size(), 32u) << "no generated admin token printed";
  ASSERT_EQ(client.size(), 32u);
  EXPECT_NE(admin, client);
  ASSERT_FALSE(AwaitPrinted("running;").empty());
  // `up` says "running" only once serve accepts connections: the API answers at once.
  EXPECT_EQ(RunCommand("curl -fsS -o /dev/null --max-time 5 http://" + http_addr_ + "/readyz"), 0)
      << "serve did not answer when up said it was running";

  // An experiment through the API of `serve`, with the generated tokens.
  std::map<std::string, std::string> env = Environment();
  env["SPLITSTREAM_ADMIN_TOKEN"] = admin;
  env["SPLITSTREAM_CLIENT_TOKEN"] = client;
  ASSERT_TRUE(AwaitServeReady()) << "serve never became ready";
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
  // The tokens appear only on up's own lines (the admin token also in the dashboard's
  // address), never in a child's log line.
  std::vector<std::string> with_admin, with_client;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(admin) != std::string::npos) with_admin.push_back(line);
    if (line.find(client) != std::string::npos) with_client.push_back(line);
  }
  EXPECT_EQ(with_admin, (std::vector<std::string>{"splitstream up: admin token  " + admin,
                                                  "splitstream up: dashboard    http://" +
                                                      http_addr_ + "/#token=" + admin}));
  EXPECT_EQ(with_client, std::vector<std::string>{"splitstream up: client token " + client});

  // Started again, serve prepares the results of the running experiment at once (the state of
  // libs/results, from the rows the sink wrote with their _batch), and they count every user
  // the experiment assigned. This time with sequential intervals, which `up` hands to serve.
  log_ += ".again";
  env_["SPLITSTREAM_RESULTS_INTERVALS"] = "sequential";
  StartUp();
  const std::string admin_again = AwaitPrinted("admin token");
  ASSERT_EQ(admin_again.size(), 32u);
  std::string ready;
  for (int i = 0; i < 600 && ready.empty() && up_->Running(); ++i) {
    const std::string again = ReadFile(log_);
    size_t at = again.find("results: up-checkout ready (");
    if (at != std::string::npos) ready = again.substr(at, again.find('\n', at) - at);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ready.substr(0, ready.find(" in ")),
            fmt::format("results: up-checkout ready ({} users)", assignments));
  ASSERT_EQ(RunCommand(fmt::format("curl -fsS -o {}.results -H 'Authorization: Bearer {}' "
                                   "http://{}/v1/experiments/up-checkout/results",
                                   log_, admin_again, http_addr_)),
            0);
  const std::string body = ReadFile(log_ + ".results");
  EXPECT_NE(body.find("\"experiment\":\"up-checkout\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"sequential\":true"), std::string::npos) << body;
  up_->Signal(SIGTERM);
  EXPECT_EQ(up_->Wait(seconds(90)).value_or(-1), 0);
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
  // Only once the children handle signals (a child signalled before would die at once, the
  // stopped sink too): the sink logs this after, the others earlier in their start.
  for (int i = 0; i < 600 && ReadFile(log_).find("sink: metrics on") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(ReadFile(log_).find("sink: metrics on"), std::string::npos) << "the sink never started";
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
