// Against a real PostgreSQL: SPLITSTREAM_PG_DSN (scripts/stack env) must name a database.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <unistd.h>

#include "splitstream/pg/pg.h"
#include "splitstream/pg/replication.h"

namespace splitstream::pg {
namespace {

// ctest runs each test in its own process, in parallel: every process gets its own table.
std::string Table() { return "pg_test_" + std::to_string(getpid()); }

std::string Dsn() {
  const char* dsn = std::getenv("SPLITSTREAM_PG_DSN");
  return dsn ? dsn : "";
}

class PgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Dsn().empty()) << "SPLITSTREAM_PG_DSN is not set (run under scripts/test)";
    auto conn = Connection::Open(Dsn());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(conn).value();
    ASSERT_TRUE(
        conn_->ExecScript("CREATE TABLE " + Table() + " (id int PRIMARY KEY, s text)").ok());
  }
  void TearDown() override {
    if (conn_) (void)conn_->ExecScript("DROP TABLE IF EXISTS " + Table());
  }
  std::unique_ptr<Connection> conn_;
};

TEST_F(PgTest, ExecWithParametersAndNulls) {
  auto ins = conn_->Exec("INSERT INTO " + Table() + " VALUES ($1, $2), ($3, $4)",
                         {"1", "it's \"quoted\"", "2", std::nullopt});
  ASSERT_TRUE(ins.ok()) << ins.status().ToString();
  EXPECT_EQ(ins->affected(), 2);
  auto rows = conn_->Exec("SELECT id, s FROM " + Table() + " ORDER BY id");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->text(0, 1), "it's \"quoted\"");
  EXPECT_FALSE(rows->at(1, 1).has_value());
  EXPECT_EQ(rows->columns()[1], "s");
}

TEST_F(PgTest, PreparedStatementsSurviveAReset) {
  const std::string sql = "INSERT INTO " + Table() + " VALUES ($1, $2) RETURNING id";
  for (int i = 1; i <= 3; ++i) {
    auto r = conn_->ExecPrepared("ins", sql, {std::to_string(i), "x"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->text(0, 0), std::to_string(i));
  }
  auto dup = conn_->ExecPrepared("ins", sql, {"1", "again"});
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(conn_->Reset().ok());
  auto after = conn_->ExecPrepared("ins", sql, {"4", "y"});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  auto rows = conn_->Exec("SELECT count(*) FROM " + Table());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->text(0, 0), "4");
}

TEST_F(PgTest, ErrorsCarrySqlStateAndCode) {
  ASSERT_TRUE(conn_->Exec("INSERT INTO " + Table() + " VALUES (1, 'a')").ok());
  auto dup = conn_->Exec("INSERT INTO " + Table() + " VALUES (1, 'b')");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(conn_->LastSqlState(), kUniqueViolation);
  EXPECT_NE(dup.status().message().find("23505"), std::string::npos);
  auto bad = conn_->Exec("SELECT $1::int", {"not a number"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PgTest, ArrayParametersRoundTripThroughUnnest) {
  std::vector<Param> ids = {"1", "2", "3"};
  std::vector<Param> texts = {"a\"b", std::nullopt, "c\\d,{}"};
  auto ins = conn_->Exec("INSERT INTO " + Table() + " SELECT * FROM unnest($1::int[], $2::text[])",
                         {ArrayLiteral(ids), ArrayLiteral(texts)});
  ASSERT_TRUE(ins.ok()) << ins.status().ToString();
  auto rows = conn_->Exec("SELECT s FROM " + Table() + " ORDER BY id");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->text(0, 0), "a\"b");
  EXPECT_FALSE(rows->at(1, 0).has_value());
  EXPECT_EQ(rows->text(2, 0), "c\\d,{}");
}

TEST_F(PgTest, CopyIn) {
  auto n = conn_->CopyIn("COPY " + Table() + " (id, s) FROM STDIN", "1\tone\n2\t\\N\n3\tthree\n");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 3);
  auto bad = conn_->CopyIn("COPY " + Table() + " (id, s) FROM STDIN", "x\ty\n");
  EXPECT_FALSE(bad.ok());
  // The connection is usable after a failed COPY.
  auto rows = conn_->Exec("SELECT count(*) FROM " + Table());
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->text(0, 0), "3");
}

TEST_F(PgTest, ListenNotify) {
  ASSERT_TRUE(conn_->Listen("pg_test_channel_" + Table()).ok());
  auto other = Connection::Open(Dsn());
  ASSERT_TRUE(other.ok());
  auto none = conn_->WaitNotification(std::chrono::milliseconds(10));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(
      (*other)->Exec("SELECT pg_notify($2, $1)", {"hello", "pg_test_channel_" + Table()}).ok());
  auto got = conn_->WaitNotification(std::chrono::milliseconds(5000));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->payload, "hello");
}

// Reads CopyData messages until the pgoutput Commit of `commits` transactions; counts the
// Insert messages among them. XLogData is 'w' + three 8-byte fields + the pgoutput message.
int ReadInsertsUntilCommits(ReplicationConnection& repl, int commits) {
  int inserts = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (commits > 0 && std::chrono::steady_clock::now() < deadline) {
    auto copy = repl.Read(std::chrono::milliseconds(1000));
    if (!copy.ok()) {
      ADD_FAILURE() << copy.status().ToString();
      return inserts;
    }
    if (!*copy || (*copy)->size() < 26 || (**copy)[0] != 'w') continue;  // nothing, keepalive
    const char type = (**copy)[25];
    if (type == 'I') ++inserts;
    if (type == 'C') --commits;
  }
  return inserts;
}

// The batch wait (SetBatchWait) must not lose or hold back a message: once the stream ran dry
// after data, Read sleeps the wait and then returns what arrived meanwhile; a Read with a
// shorter timeout only looks.
TEST_F(PgTest, ReplicationReadWithABatchWaitDeliversEveryMessage) {
  const std::string slot = Table() + "_slot";
  const std::string publication = Table() + "_pub";
  ASSERT_TRUE(
      conn_->ExecScript("CREATE PUBLICATION " + publication + " FOR TABLE " + Table()).ok());
  auto repl = ReplicationConnection::Open(Dsn());
  ASSERT_TRUE(repl.ok()) << repl.status().ToString();
  ASSERT_TRUE((*repl)->CreateSlot(slot, false).ok());
  ASSERT_TRUE((*repl)->StartReplication(slot, Lsn(0), {publication}).ok());
  constexpr auto kWait = std::chrono::milliseconds(200);
  (*repl)->SetBatchWait(kWait);

  ASSERT_TRUE(
      conn_->ExecScript("INSERT INTO " + Table() + " VALUES (1, 'a'), (2, 'b'), (3, 'c')").ok());
  EXPECT_EQ(ReadInsertsUntilCommits(**repl, 1), 3);

  // The stream is dry now; the next transaction commits 50 ms into the wait.
  std::thread writer([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto other = Connection::Open(Dsn());
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE((*other)->ExecScript("INSERT INTO " + Table() + " VALUES (4, 'd')").ok());
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadInsertsUntilCommits(**repl, 1), 1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, kWait);
  writer.join();

  auto nothing = (*repl)->Read(std::chrono::milliseconds(0));
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value() && (**nothing)[0] == 'w');

  repl->reset();
  // The walsender releases the slot when it notices the connection is gone.
  Status dropped;
  for (int i = 0; i < 100; ++i) {
    dropped = conn_->Exec("SELECT pg_drop_replication_slot($1)", {slot}).status();
    if (dropped.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(dropped.ok()) << dropped.ToString();
  EXPECT_TRUE(conn_->ExecScript("DROP PUBLICATION " + publication).ok());
}

TEST(PgPool, LeasesBlockUntilReleasedAndRollBackOpenTransactions) {
  ASSERT_FALSE(Dsn().empty()) << "SPLITSTREAM_PG_DSN is not set";
  auto pool = Pool::Create(Dsn(), 1);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  {
    auto lease = (*pool)->Acquire();
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ((*pool)->in_use(), 1);
    auto second = (*pool)->Acquire(std::chrono::milliseconds(50));
    EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
    ASSERT_TRUE((*lease)->ExecScript("BEGIN; CREATE TEMP TABLE pool_tx (x int)").ok());
  }
  EXPECT_EQ((*pool)->in_use(), 0);
  auto lease = (*pool)->Acquire();
  ASSERT_TRUE(lease.ok());
  // The transaction of the previous holder was rolled back: the temp table is gone.
  auto rows = (*lease)->Exec("SELECT to_regclass('pg_temp.pool_tx') IS NULL");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->text(0, 0), "t");
}

TEST(PgPool, ConcurrentUse) {
  ASSERT_FALSE(Dsn().empty()) << "SPLITSTREAM_PG_DSN is not set";
  auto pool = Pool::Create(Dsn(), 3);
  ASSERT_TRUE(pool.ok());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto lease = (*pool)->Acquire();
        if (lease.ok() && (*lease)->Exec("SELECT 1").ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 160);
}

}  // namespace
}  // namespace splitstream::pg
