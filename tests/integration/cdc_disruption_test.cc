// `splitstream cdc` through outages of the servers it depends on: the Kafka broker frozen
// (SIGSTOP) for 10 s then killed and restarted, and PostgreSQL restarted mid-stream. These
// tests stop servers of the shared test stack (found by the PIDs scripts/stack recorded in
// SPLITSTREAM_STACK_DIR) and restart them with `scripts/stack up`, so they run serially.
#include <gtest/gtest.h>
#include <signal.h>

#include <fmt/format.h>

#include <csignal>
#include <fstream>

#include "cdc_harness.h"

namespace splitstream::testing {
namespace {

using std::chrono::seconds;

pid_t RecordedPid(const std::string& server) {
  std::ifstream in(Env("SPLITSTREAM_STACK_DIR") + "/run/" + server + ".pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

bool WaitGone(pid_t pid, seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

int StackUp() {
  return RunCommand(std::string(SPLITSTREAM_SOURCE_DIR) + "/scripts/stack up --dir " +
                    Env("SPLITSTREAM_STACK_DIR") + " >/dev/null");
}

class CdcDisruptionTest : public CdcFixture {
 protected:
  void SetUp() override {
    CdcFixture::SetUp();
    ASSERT_FALSE(Env("SPLITSTREAM_STACK_DIR").empty())
        << "SPLITSTREAM_STACK_DIR is not set: run through scripts/test";
    Exec(
        "INSERT INTO experiments (id, key, name, seed) VALUES (1, 'e', 'E', 'e');"
        "INSERT INTO variants (id, experiment_id, key, weight, position) VALUES (1, 1, 'c', 1, "
        "0);");
  }

  // Inserts rows [from, to) of events in transactions of 1 000, retrying a transaction whose
  // connection broke (PostgreSQL restarting).
  void InsertRange(int from, int to) {
    for (int start = from; start < to; start += 1000) {
      std::string sql = fmt::format(
          "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, ts) "
          "SELECT md5('r' || i)::uuid, 1, 1, 'r' || i, 'view', now() FROM generate_series({}, "
          "{}) i ON CONFLICT DO NOTHING",
          start, std::min(start + 1000, to) - 1);
      for (int attempt = 0;; ++attempt) {
        auto conn = pg::Connection::Open(db_->dsn());
        if (conn.ok() && (*conn)->ExecScript(sql).ok()) break;
        ASSERT_LT(attempt, 300) << "cannot insert rows from " << start;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  }

  // Reads until every row r<from>..r<to-1> was seen as a create.
  bool SawAll(KafkaReader& reader, int rows, seconds timeout) {
    std::set<std::string> users;
    size_t scanned = 0;
    return reader.ReadUntil(
        [&](const std::vector<Record>& rs) {
          for (; scanned < rs.size(); ++scanned) {
            const Record& r = rs[scanned];
            if (r.topic != Topic("events") || !r.value) continue;
            Json v(*r.value);
            const std::string op = v.Str("/op");  // early rows may be snapshot reads
            if (op == "c" || op == "r") users.insert(v.Str("/after/user_id"));
          }
          return users.size() >= static_cast<size_t>(rows);
        },
        timeout);
  }

  // Streams rows [0, before) and waits until `reader` saw them, then freezes the broker
  // (SIGSTOP: connections open, nothing answers) and commits rows [before, during) in
  // PostgreSQL. Returns the broker's PID, 0 after a failure.
  pid_t FreezeKafkaMidStream(KafkaReader& reader, int before, int during) {
    InsertRange(0, before);
    if (!SawAll(reader, before, seconds(120))) {
      ADD_FAILURE() << "the first " << before << " rows did not reach Kafka";
      return 0;
    }
    const pid_t kafka = RecordedPid("kafka");
    if (kafka <= 0 || kill(kafka, SIGSTOP) != 0) {
      ADD_FAILURE() << "cannot freeze the broker (pid " << kafka << ")";
      return 0;
    }
    InsertRange(before, during);
    return kafka;
  }
};

TEST_F(CdcDisruptionTest, KafkaFrozenThenKilledAndRestartedLosesNothing) {
  StartCdc();
  KafkaReader reader(prefix_);
  const pid_t kafka = FreezeKafkaMidStream(reader, 5000, 10000);
  ASSERT_GT(kafka, 0);
  std::this_thread::sleep_for(seconds(10));
  ASSERT_EQ(kill(kafka, SIGKILL), 0);
  ASSERT_TRUE(WaitGone(kafka, seconds(30)));
  ASSERT_EQ(StackUp(), 0) << "scripts/stack up could not restart Kafka";
  InsertRange(10000, 12000);

  EXPECT_TRUE(SawAll(reader, 12000, seconds(180))) << "rows lost across the broker outage";
  EXPECT_TRUE(cdc_->Running()) << "cdc exited during the broker outage";
  EXPECT_EQ(StopCdc(), 0);
}

// SIGTERM while the broker is frozen (SIGSTOP: connections open, nothing answers) with
// changes in flight: cdc gives their delivery 15 s, and the process ends 25 s after the signal
// at the latest (it took the 30 s of its former flush timeout and more), non-zero, confirming
// nothing undelivered to PostgreSQL; the next run sends those changes again.
TEST_F(CdcDisruptionTest, StopWhileKafkaIsFrozenEndsInBoundedTimeAndLosesNothing) {
  StartCdc();
  KafkaReader reader(prefix_);
  const pid_t kafka = FreezeKafkaMidStream(reader, 2000, 4000);  // the last 2 000 undeliverable
  ASSERT_GT(kafka, 0);
  std::this_thread::sleep_for(seconds(2));
  const auto start = std::chrono::steady_clock::now();
  cdc_->Signal(SIGTERM);
  const std::optional<int> code = cdc_->Wait(seconds(120));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(kill(kafka, SIGCONT), 0);
  ASSERT_TRUE(code.has_value()) << "cdc did not stop within 120 s";
  std::fprintf(
      stderr, "cdc stopped %lld ms after SIGTERM, exit code %d\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
      *code);
  EXPECT_LT(took, seconds(28));
  EXPECT_NE(*code, 0) << "changes were left undelivered";

  StartCdc();  // the same slot: resumes from the confirmed position
  EXPECT_TRUE(SawAll(reader, 4000, seconds(180))) << "changes in flight at the stop were lost";
  EXPECT_EQ(StopCdc(), 0);
}

TEST_F(CdcDisruptionTest, PostgresRestartMidStreamLosesNothing) {
  StartCdc();
  KafkaReader reader(prefix_);
  InsertRange(0, 5000);
  ASSERT_TRUE(SawAll(reader, 5000, seconds(120)));

  const pid_t postmaster = RecordedPid("postgres");
  ASSERT_GT(postmaster, 0);
  sql_.reset();
  ASSERT_EQ(kill(postmaster, SIGINT), 0);  // fast shutdown
  ASSERT_TRUE(WaitGone(postmaster, seconds(60)));
  ASSERT_EQ(StackUp(), 0) << "scripts/stack up could not restart PostgreSQL";
  InsertRange(5000, 10000);

  EXPECT_TRUE(SawAll(reader, 10000, seconds(180))) << "rows lost across the restart";
  EXPECT_TRUE(cdc_->Running()) << "cdc exited when PostgreSQL restarted";
  EXPECT_EQ(StopCdc(), 0);
}

}  // namespace
}  // namespace splitstream::testing
