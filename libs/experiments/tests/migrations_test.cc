// Against a real PostgreSQL (SPLITSTREAM_PG_DSN): migrations and event partitions.
#include "splitstream/experiments/migrations.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "splitstream/pg/pg.h"
#include "splitstream/testing/test_database.h"

namespace splitstream::experiments {
namespace {

class MigrationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = testing::TestDatabase::CreateEmpty();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto conn = pg::Connection::Open(db_->dsn());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(conn).value();
  }

  std::vector<std::string> Partitions() {
    auto rows = conn_->Exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass ORDER BY 1");
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<std::string> out;
    if (!rows.ok()) return out;
    for (size_t r = 0; r < rows->size(); ++r) out.emplace_back(rows->text(r, 0));
    return out;
  }

  std::string MonthName(int offset) {
    auto rows = conn_->Exec(
        "SELECT 'events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + "
        "make_interval(months => $1), 'YYYY_MM')",
        {std::to_string(offset)});
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? std::string(rows->text(0, 0)) : "";
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<pg::Connection> conn_;
};

TEST_F(MigrationsTest, SecondRunAppliesNothing) {
  auto first = Migrate(*conn_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->applied.size(), 7u);
  EXPECT_EQ(first->current_version, 7);

  auto second = Migrate(*conn_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->current_version, 7);

  auto versions = conn_->Exec("SELECT version, name FROM schema_migrations ORDER BY version");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 7u);
  EXPECT_EQ(versions->text(0, 0), "1");
  EXPECT_EQ(versions->text(0, 1), "experiments_and_variants");
  EXPECT_EQ(versions->text(4, 0), "5");
  EXPECT_EQ(versions->text(5, 1), "variant_of_its_experiment");
  EXPECT_EQ(versions->text(6, 1), "assignments_user_id_bytewise");
  auto collation = conn_->Exec(
      "SELECT collation_name, data_type FROM information_schema.columns "
      "WHERE table_name = 'assignments' AND column_name = 'user_id'");
  ASSERT_TRUE(collation.ok());
  EXPECT_EQ(collation->text(0, 0), "C");
  EXPECT_EQ(collation->text(0, 1), "text");
  auto identity =
      conn_->Exec("SELECT relreplident FROM pg_class WHERE oid = 'experiments'::regclass");
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->text(0, 0), "f");  // REPLICA IDENTITY FULL

  for (const char* table : {"experiments", "variants", "assignments", "events"}) {
    auto exists = conn_->Exec("SELECT to_regclass($1) IS NOT NULL", {std::string(table)});
    ASSERT_TRUE(exists.ok());
    EXPECT_EQ(exists->text(0, 0), "t") << table;
  }
  // The GIN index on properties and the BRIN index on ts.
  auto indexes = conn_->Exec(
      "SELECT string_agg(indexdef, ' | ' ORDER BY indexname) FROM pg_indexes "
      "WHERE tablename = 'events'");
  ASSERT_TRUE(indexes.ok());
  EXPECT_NE(indexes->text(0, 0).find("USING gin (properties)"), std::string::npos);
  EXPECT_NE(indexes->text(0, 0).find("USING brin (ts)"), std::string::npos);
}

TEST_F(MigrationsTest, ConcurrentMigrationsDoNotRace) {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  std::vector<size_t> applied(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto conn = pg::Connection::Open(db_->dsn());
      if (!conn.ok()) {
        results[t] = conn.status();
        return;
      }
      auto report = Migrate(**conn);
      results[t] = report.status();
      if (report.ok()) applied[t] = report->applied.size();
    });
  }
  for (auto& t : threads) t.join();
  size_t total = 0;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(results[t].ok()) << results[t].ToString();
    total += applied[t];
  }
  EXPECT_EQ(total, 7u);  // every migration applied exactly once
}

TEST_F(MigrationsTest, MigrateCreatesPartitionsAroundNow) {
  ASSERT_TRUE(Migrate(*conn_).ok());
  std::vector<std::string> expected;
  for (int m = -1; m <= 3; ++m) expected.push_back(MonthName(m));
  EXPECT_EQ(Partitions(), expected);

  // A row in the current month lands in its partition; no partition → rejected.
  auto ok = conn_->ExecScript(
      "INSERT INTO experiments (key, name, seed) VALUES ('e', 'e', 'e');"
      "INSERT INTO variants (experiment_id, key, weight, position) VALUES (1, 'a', 1, 0);"
      "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, ts) "
      "VALUES (gen_random_uuid(), 1, 1, 'u', 'click', now())");
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  auto bad = conn_->Exec(
      "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, ts) "
      "VALUES (gen_random_uuid(), 1, 1, 'u', 'click', now() - interval '3 years')");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(conn_->LastSqlState(), pg::kCheckViolation);
}

// Migration 6 on a database that already holds rows (migrated up to 5 by an older build):
// the rows stay, and from then on a row naming another experiment's variant is refused.
TEST_F(MigrationsTest, VariantMustBelongToTheRowsExperiment) {
  ASSERT_TRUE(Migrate(*conn_).ok());
  auto setup = conn_->ExecScript(
      "INSERT INTO experiments (key, name, seed) VALUES ('e1', 'e1', 'e1'), ('e2', 'e2', 'e2');"
      "INSERT INTO variants (experiment_id, key, weight, position) VALUES "
      "  (1, 'a', 1, 0), (2, 'a', 1, 0);"
      "INSERT INTO assignments (experiment_id, user_id, variant_id) VALUES (1, 'old', 1);"
      "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, ts) "
      "  VALUES (gen_random_uuid(), 1, 1, 'old', 'click', now());"
      // Back to version 5: the two single-column keys of migrations 2 and 3.
      "ALTER TABLE assignments DROP CONSTRAINT assignments_variant_fkey,"
      "  ADD FOREIGN KEY (experiment_id) REFERENCES experiments (id) ON DELETE CASCADE,"
      "  ADD FOREIGN KEY (variant_id) REFERENCES variants (id);"
      "ALTER TABLE events DROP CONSTRAINT events_variant_fkey,"
      "  ADD FOREIGN KEY (experiment_id) REFERENCES experiments (id),"
      "  ADD FOREIGN KEY (variant_id) REFERENCES variants (id);"
      "ALTER TABLE variants DROP CONSTRAINT variants_experiment_id_id_key;"
      "DELETE FROM schema_migrations WHERE version = 6;"
      // Allowed by the old keys: experiment 1 with experiment 2's variant.
      "INSERT INTO assignments (experiment_id, user_id, variant_id) VALUES (1, 'before', 2);");
  ASSERT_TRUE(setup.ok()) << setup.ToString();
  auto refused = Migrate(*conn_);
  ASSERT_FALSE(refused.ok()) << "migration 6 must not accept the existing mismatched row";
  EXPECT_NE(refused.status().ToString().find("variant_of_its_experiment"), std::string::npos)
      << refused.status().ToString();
  ASSERT_TRUE(conn_->Exec("DELETE FROM assignments WHERE user_id = 'before'").ok());

  auto report = Migrate(*conn_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->applied, std::vector<std::string>{"variant_of_its_experiment"});
  auto kept =
      conn_->Exec("SELECT (SELECT count(*) FROM assignments), (SELECT count(*) FROM events)");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->text(0, 0), "1");
  EXPECT_EQ(kept->text(0, 1), "1");

  auto assignment = conn_->Exec(
      "INSERT INTO assignments (experiment_id, user_id, variant_id) VALUES (1, 'u', 2)");
  EXPECT_FALSE(assignment.ok());
  EXPECT_EQ(conn_->LastSqlState(), pg::kForeignKeyViolation);
  auto event = conn_->Exec(
      "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, ts) "
      "VALUES (gen_random_uuid(), 2, 1, 'u', 'click', now())");
  EXPECT_FALSE(event.ok());
  EXPECT_EQ(conn_->LastSqlState(), pg::kForeignKeyViolation);
  auto unknown = conn_->Exec(
      "INSERT INTO assignments (experiment_id, user_id, variant_id) VALUES (3, 'u', 1)");
  EXPECT_FALSE(unknown.ok());
  EXPECT_EQ(conn_->LastSqlState(), pg::kForeignKeyViolation);
  EXPECT_TRUE(conn_
                  ->Exec("INSERT INTO assignments (experiment_id, user_id, variant_id) "
                         "VALUES (2, 'u', 2)")
                  .ok());

  // Deleting an experiment is refused while it has events, and takes its assignments
  // (through its variants) once it has none.
  EXPECT_FALSE(conn_->Exec("DELETE FROM experiments WHERE id = 1").ok());
  ASSERT_TRUE(conn_->Exec("DELETE FROM experiments WHERE id = 2").ok());
  auto left = conn_->Exec("SELECT count(*) FROM assignments WHERE experiment_id = 2");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->text(0, 0), "0");
}

TEST_F(MigrationsTest, EnsureIsIdempotentAndDropHonoursRetention) {
  ASSERT_TRUE(Migrate(*conn_).ok());
  auto more = EnsureEventPartitions(*conn_, 6, 3);
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  std::vector<std::string> expected_new;
  for (int m = -6; m <= -2; ++m) expected_new.push_back(MonthName(m));
  EXPECT_EQ(*more, expected_new);
  EXPECT_EQ(Partitions().size(), 10u);

  auto again = EnsureEventPartitions(*conn_, 6, 3);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());

  // Keep the current month and two before it.
  auto dropped = DropEventPartitionsOlderThan(*conn_, 2);
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  std::vector<std::string> expected_dropped;
  for (int m = -6; m <= -3; ++m) expected_dropped.push_back(MonthName(m));
  EXPECT_EQ(*dropped, expected_dropped);
  auto left = Partitions();
  EXPECT_EQ(left.size(), 6u);
  EXPECT_EQ(left.front(), MonthName(-2));
  EXPECT_EQ(left.back(), MonthName(3));

  auto none = DropEventPartitionsOlderThan(*conn_, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(EnsureEventPartitions(*conn_, -1, 3).ok());
}

}  // namespace
}  // namespace splitstream::experiments
