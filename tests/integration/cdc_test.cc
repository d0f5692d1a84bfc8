// `splitstream cdc` end to end against the real PostgreSQL and Kafka of the test stack:
// snapshot then streaming on the four Splitstream tables with every envelope checked field by
// field against Debezium's format, clean restarts, and a kill -9 in the middle of 200 000
// inserts after which every row is in Kafka (at least once).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <csignal>

#include "cdc_harness.h"

namespace splitstream::testing {
namespace {

using std::chrono::seconds;

std::vector<const Record*> Of(const std::vector<Record>& all, const std::string& topic) {
  std::vector<const Record*> out;
  for (const auto& r : all) {
    if (r.topic == topic) out.push_back(&r);
  }
  return out;
}

size_t CountOp(const std::vector<Record>& all, const std::string& topic, std::string_view op) {
  size_t n = 0;
  for (const Record* r : Of(all, topic)) {
    if (r->value && Json(*r->value).Str("/op") == op) ++n;
  }
  return n;
}

class CdcTest : public CdcFixture {};

constexpr const char* kSeed = R"sql(
INSERT INTO experiments (id, key, name, seed, status) VALUES (1, 'checkout', 'Checkout', 'checkout', 'running');
INSERT INTO variants (id, experiment_id, key, weight, position) VALUES (1, 1, 'control', 0.5, 0), (2, 1, 'b', 0.5, 1);
INSERT INTO assignments (experiment_id, user_id, variant_id, assigned_at) VALUES
  (1, 'u1', 1, '2026-11-20 10:11:12.345678+00'), (1, 'u2', 2, '2026-11-20 10:11:13+00');
INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, properties, ts) VALUES
  ('00000000-0000-0000-0000-000000000001', 1, 1, 'u1', 'purchase', 12.5, '{"sku": "a\"b"}', now()),
  ('00000000-0000-0000-0000-000000000002', 1, 2, 'u2', 'view', NULL, '{}', now());
)sql";

TEST_F(CdcTest, SnapshotThenStreamingOnAllTablesInDebeziumFormat) {
  Exec(kSeed);
  StartCdc();
  KafkaReader reader(prefix_);
  auto snapshot_done = [&](const std::vector<Record>& rs) {
    return CountOp(rs, Topic("experiments"), "r") == 1 &&
           CountOp(rs, Topic("variants"), "r") == 2 &&
           CountOp(rs, Topic("assignments"), "r") == 2 && CountOp(rs, Topic("events"), "r") == 2;
  };
  ASSERT_TRUE(reader.ReadUntil(snapshot_done, seconds(60))) << "snapshot records missing";

  // Snapshot markers: exactly one "first" and one "last" across the whole snapshot.
  std::multiset<std::string> markers;
  for (const auto& r : reader.records()) {
    if (r.value && Json(*r.value).Str("/op") == "r") {
      markers.insert(Json(*r.value).Str("/source/snapshot"));
    }
  }
  EXPECT_EQ(markers.count("first"), 1u);
  EXPECT_EQ(markers.count("last"), 1u);

  // A snapshot record of events, field by field.
  for (const Record* r : Of(reader.records(), Topic("events"))) {
    Json v(*r->value);
    if (v.Str("/after/event_id") != "00000000-0000-0000-0000-000000000001") continue;
    EXPECT_EQ(v.Keys(""), (std::vector<std::string>{"before", "after", "source", "transaction",
                                                    "op", "ts_ms", "ts_us", "ts_ns"}));
    EXPECT_EQ(v.At("/before"), "null");
    EXPECT_EQ(v.At("/after/experiment_id"), "1");
    EXPECT_EQ(v.At("/after/value"), "12.5");
    EXPECT_EQ(v.Str("/after/properties"), R"({"sku": "a\"b"})");
    EXPECT_EQ(v.Str("/after/event_type"), "purchase");
    EXPECT_EQ(v.Str("/source/connector"), "postgresql");
    EXPECT_EQ(v.Str("/source/name"), prefix_);
    EXPECT_EQ(v.Str("/source/db"), db_->name());
    EXPECT_EQ(v.Str("/source/schema"), "public");
    EXPECT_EQ(v.Str("/source/table"), "events");
    Json key(*r->key);
    EXPECT_EQ(key.Keys(""), (std::vector<std::string>{"event_id", "ts"}));
    EXPECT_EQ(key.Str("/event_id"), "00000000-0000-0000-0000-000000000001");
  }
  for (const Record* r : Of(reader.records(), Topic("assignments"))) {
    Json v(*r->value);
    if (v.Str("/after/user_id") != "u1") continue;
    // timestamptz: ISO-8601 in UTC with microseconds (Debezium's ZonedTimestamp).
    EXPECT_EQ(v.Str("/after/assigned_at"), "2026-11-20T10:11:12.345678Z");
    EXPECT_EQ(Json(*r->key).At(""), R"({"experiment_id":1,"user_id":"u1"})");
  }

  // Streaming: inserts, updates, deletes, a primary-key change and truncates.
  Exec(R"sql(
INSERT INTO experiments (id, key, name, seed) VALUES (2, 'search', 'Search', 'search');
INSERT INTO variants (id, experiment_id, key, weight, position) VALUES (3, 2, 'control', 1, 0);
INSERT INTO assignments (experiment_id, user_id, variant_id) VALUES (2, 'u3', 3);
INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, ts) VALUES
  ('00000000-0000-0000-0000-000000000003', 2, 3, 'u3', 'click', 1, now());
UPDATE experiments SET name = 'Checkout v2' WHERE id = 1;
UPDATE variants SET weight = 0.6 WHERE id = 1;
DELETE FROM events WHERE event_id = '00000000-0000-0000-0000-000000000002';
UPDATE assignments SET user_id = 'u9' WHERE experiment_id = 1 AND user_id = 'u1';
)sql");
  auto streamed = [&](const std::vector<Record>& rs) {
    return CountOp(rs, Topic("experiments"), "u") == 1 &&
           CountOp(rs, Topic("variants"), "u") == 1 && CountOp(rs, Topic("events"), "d") == 1 &&
           CountOp(rs, Topic("assignments"), "d") == 1 &&
           CountOp(rs, Topic("assignments"), "c") == 2 && CountOp(rs, Topic("events"), "c") == 1;
  };
  ASSERT_TRUE(reader.ReadUntil(streamed, seconds(60))) << "streamed records missing";

  const auto& rs = reader.records();
  for (const Record* r : Of(rs, Topic("experiments"))) {
    if (!r->value) continue;
    Json v(*r->value);
    if (v.Str("/op") == "c") {
      EXPECT_EQ(v.Str("/after/key"), "search");
      EXPECT_EQ(v.Str("/source/snapshot"), "false");
      EXPECT_EQ(v.Keys("/source"),
                (std::vector<std::string>{"version", "connector", "name", "ts_ms", "snapshot", "db",
                                          "sequence", "ts_us", "ts_ns", "schema", "table", "txId",
                                          "lsn", "xmin"}));
      EXPECT_NE(v.At("/source/txId"), "null");
      EXPECT_GT(std::stoll(v.At("/source/lsn")), 0);
      // sequence: a string holding a JSON array of two strings.
      Json seq(v.Str("/source/sequence"));
      ASSERT_TRUE(seq.ok()) << v.At("/source/sequence");
      EXPECT_EQ(seq.Str("/1"), v.At("/source/lsn"));
    }
    if (v.Str("/op") == "u") {
      // experiments has REPLICA IDENTITY FULL (migration 5): the whole old row.
      EXPECT_EQ(v.Str("/before/name"), "Checkout");
      EXPECT_EQ(v.Str("/before/seed"), "checkout");
      EXPECT_EQ(v.Str("/after/name"), "Checkout v2");
      EXPECT_EQ(v.At("/after/id"), "1");
    }
  }
  // The deleted event: key columns in before, then a tombstone with the same key.
  {
    auto ev = Of(rs, Topic("events"));
    for (size_t i = 0; i < ev.size(); ++i) {
      if (!ev[i]->value || Json(*ev[i]->value).Str("/op") != "d") continue;
      Json v(*ev[i]->value);
      EXPECT_EQ(v.Str("/before/event_id"), "00000000-0000-0000-0000-000000000002");
      EXPECT_EQ(v.At("/before/user_id"), "null");
      EXPECT_EQ(v.At("/after"), "null");
      ASSERT_LT(i + 1, ev.size());
      EXPECT_FALSE(ev[i + 1]->value.has_value()) << "no tombstone after the delete";
      EXPECT_EQ(ev[i + 1]->key, ev[i]->key);
    }
  }
  // The primary-key change: delete of u1 (+ tombstone) then create of u9.
  {
    auto as = Of(rs, Topic("assignments"));
    std::vector<std::string> seen;
    for (const Record* r : as) {
      if (!r->value) {
        seen.push_back("tombstone");
        continue;
      }
      Json v(*r->value);
      std::string op = v.Str("/op");
      if (op == "d") seen.push_back("d:" + v.Str("/before/user_id"));
      if (op == "c") seen.push_back("c:" + v.Str("/after/user_id"));
    }
    const std::vector<std::string> want = {"d:u1", "tombstone", "c:u9"};
    auto pos = std::search(seen.begin(), seen.end(), want.begin(), want.end());
    EXPECT_NE(pos, seen.end()) << ::testing::PrintToString(seen);
  }

  Exec("TRUNCATE assignments; TRUNCATE events;");
  auto truncated = [&](const std::vector<Record>& rs2) {
    return CountOp(rs2, Topic("assignments"), "t") == 1 && CountOp(rs2, Topic("events"), "t") == 1;
  };
  ASSERT_TRUE(reader.ReadUntil(truncated, seconds(60))) << "truncate records missing";
  for (const Record* r : Of(reader.records(), Topic("events"))) {
    if (r->value && Json(*r->value).Str("/op") == "t") {
      EXPECT_FALSE(r->key.has_value());
      EXPECT_EQ(Json(*r->value).At("/after"), "null");
    }
  }

  // SIGTERM: flush, confirm, exit 0; the slot's confirmed position covers the last change.
  auto before_stop = sql_->Exec("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
  ASSERT_TRUE(before_stop.ok());
  const int64_t wal_at_stop = std::stoll(std::string(before_stop->text(0, 0)));
  EXPECT_EQ(StopCdc(), 0);
  auto slot = sql_->Exec(
      "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
      {slot_});
  ASSERT_TRUE(slot.ok() && slot->size() == 1);
  // The truncates committed before wal_at_stop was read; their commit ends are confirmed.
  EXPECT_GE(std::stoll(std::string(slot->text(0, 0))), wal_at_stop - 4096);

  // A restart takes no second snapshot and streams what was committed while it was down.
  const size_t before_restart = reader.records().size();
  Exec("INSERT INTO experiments (id, key, name, seed) VALUES (3, 'later', 'Later', 'later')");
  StartCdc();
  auto later = [&](const std::vector<Record>& rs2) {
    for (size_t i = before_restart; i < rs2.size(); ++i) {
      if (rs2[i].value && Json(*rs2[i].value).Str("/after/key") == "later") return true;
    }
    return false;
  };
  ASSERT_TRUE(reader.ReadUntil(later, seconds(60)));
  for (size_t i = before_restart; i < reader.records().size(); ++i) {
    const auto& r = reader.records()[i];
    if (r.value) {
      EXPECT_NE(Json(*r.value).Str("/op"), "r") << "snapshot taken again";
    }
  }
  EXPECT_EQ(StopCdc(), 0);
}

// A transaction that starts while the slot is being created and commits after its consistent
// point is not in the snapshot but is streamed, with change records written before that point.
// ClickHouse keeps the highest `source.lsn` of a row (ReplacingMergeTree on _version), so the
// snapshot read of the row must carry a lower position than the streamed change, or the stale
// snapshot row would win for good. The transactions are staged on the walsender's own waits
// (pg_locks): slot creation waits for every transaction running when it starts (X1), then for
// those running when it has a full snapshot (X2); X3 begins after that and stays open.
TEST_F(CdcTest, ATransactionStraddlingSlotCreationOutranksTheSnapshotRow) {
  Exec(kSeed);
  auto open = [&]() {
    auto c = pg::Connection::Open(db_->dsn());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  };
  auto tx1 = open(), tx2 = open(), tx3 = open();
  ASSERT_TRUE(tx1 && tx2 && tx3);
  auto xid_of = [](pg::Connection& c) {
    auto rows = c.Exec("SELECT txid_current()::text");
    return rows.ok() ? std::string(rows->text(0, 0)) : std::string("?");
  };
  // Slot creation waits for every transaction of the cluster in turn, other tests' too: allow
  // two minutes before calling the wait missing.
  auto walsender_waits_on = [&](const std::string& xid) {
    for (int i = 0; i < 2400; ++i) {
      auto rows = sql_->Exec(
          "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE "
          "a.backend_type = 'walsender' AND a.datname = current_database() AND l.locktype = "
          "'transactionid' AND NOT l.granted AND "
          "l.transactionid::text = $1",
          {xid});
      if (rows.ok() && rows->text(0, 0) != "0") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  ASSERT_TRUE(tx1->ExecScript("BEGIN").ok());
  const std::string x1 = xid_of(*tx1);
  StartCdc();
  ASSERT_TRUE(walsender_waits_on(x1)) << "slot creation never waited for transaction " << x1;
  ASSERT_TRUE(tx2->ExecScript("BEGIN").ok());
  const std::string x2 = xid_of(*tx2);
  ASSERT_TRUE(tx1->ExecScript("COMMIT").ok());
  ASSERT_TRUE(walsender_waits_on(x2)) << "slot creation never waited for transaction " << x2;
  ASSERT_TRUE(
      tx3->ExecScript("BEGIN; UPDATE experiments SET name = 'straddler' WHERE id = 1").ok());
  ASSERT_TRUE(tx2->ExecScript("COMMIT").ok());

  KafkaReader reader(prefix_);
  auto snapshot_read = [&](const std::vector<Record>& rs) {
    return CountOp(rs, Topic("experiments"), "r") == 1;
  };
  ASSERT_TRUE(reader.ReadUntil(snapshot_read, seconds(60)));
  ASSERT_TRUE(tx3->ExecScript("COMMIT").ok());
  ASSERT_TRUE(reader.ReadUntil(
      [&](const std::vector<Record>& rs) { return CountOp(rs, Topic("experiments"), "u") == 1; },
      seconds(60)));
  uint64_t snapshot_lsn = 0, update_lsn = 0;
  for (const Record* r : Of(reader.records(), Topic("experiments"))) {
    Json v(*r->value);
    const uint64_t lsn = std::stoull(v.At("/source/lsn"));
    if (v.Str("/op") == "r") {
      // The straddling transaction is not in the snapshot: the scenario really happened.
      EXPECT_EQ(v.Str("/after/name"), "Checkout");
      snapshot_lsn = lsn;
    } else {
      EXPECT_EQ(v.Str("/after/name"), "straddler");
      update_lsn = lsn;
    }
  }
  EXPECT_LT(snapshot_lsn, update_lsn)
      << "the snapshot row would outrank the later change in ClickHouse";
  EXPECT_EQ(StopCdc(), 0);
}

// An update that leaves a TOASTed value alone sends it as "unchanged" in the new row. With
// REPLICA IDENTITY FULL the old row holds it and the event carries the value, as Debezium's;
// with the default identity there is nothing to fill it from: Debezium's placeholder.
TEST_F(CdcTest, UnchangedToastValuesAreFilledFromAFullOldRowElsePlaceholders) {
  Exec(R"sql(
CREATE TABLE docs_full (id int PRIMARY KEY, body text, n int);
ALTER TABLE docs_full REPLICA IDENTITY FULL;
CREATE TABLE docs_default (id int PRIMARY KEY, body text, n int);
)sql");
  StartCdc({"--table", "public.docs_full", "--table", "public.docs_default", "--snapshot-mode",
            "never"});
  KafkaReader reader(prefix_);
  // Wait for the slot, so the inserts below are streamed. Slot creation waits for every
  // transaction running in the cluster, other tests' too: allow it two minutes.
  bool slot_ready = false;
  for (int i = 0; i < 2400 && !slot_ready; ++i) {
    auto rows = sql_->Exec(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND "
        "confirmed_flush_lsn IS NOT NULL",
        {slot_});
    slot_ready = rows.ok() && rows->text(0, 0) == "1";
    if (!slot_ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(slot_ready) << "slot " << slot_ << " never reached its consistent point";
  // 12 800 characters of md5 hex: too big to stay inline even compressed.
  const std::string big = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)";
  Exec("INSERT INTO docs_full VALUES (1, " + big + ", 0); INSERT INTO docs_default VALUES (1, " +
       big + ", 0);");
  Exec("UPDATE docs_full SET n = 1; UPDATE docs_default SET n = 1;");
  auto rows = sql_->Exec("SELECT body FROM docs_full");
  ASSERT_TRUE(rows.ok());
  const std::string body(rows->text(0, 0));
  ASSERT_EQ(body.size(), 12800u);
  auto updates = [&](const std::vector<Record>& rs) {
    return CountOp(rs, Topic("docs_full"), "u") == 1 &&
           CountOp(rs, Topic("docs_default"), "u") == 1;
  };
  ASSERT_TRUE(reader.ReadUntil(updates, seconds(60)));
  for (const Record& r : reader.records()) {
    if (!r.value || Json(*r.value).Str("/op") != "u") continue;
    Json v(*r.value);
    EXPECT_EQ(v.At("/after/n"), "1");
    if (r.topic == Topic("docs_full")) {
      EXPECT_EQ(v.Str("/after/body"), body);
      EXPECT_EQ(v.Str("/before/body"), body);
    } else {
      EXPECT_EQ(v.Str("/after/body"), "__debezium_unavailable_value");
    }
  }
  EXPECT_EQ(StopCdc(), 0);
}

TEST_F(CdcTest, HeartbeatsAdvanceTheSlotOfAnIdleDatabase) {
  StartCdc();
  KafkaReader reader("__debezium-heartbeat");
  // The heartbeat topic is __debezium-heartbeat.<prefix>.
  auto beat = [&](const std::vector<Record>& rs) {
    for (const auto& r : rs) {
      if (r.topic == "__debezium-heartbeat." + prefix_ && r.value) return true;
    }
    return false;
  };
  ASSERT_TRUE(reader.ReadUntil(beat, seconds(60)));
  for (const auto& r : reader.records()) {
    if (r.topic != "__debezium-heartbeat." + prefix_) continue;
    EXPECT_EQ(Json(*r.key).Str("/serverName"), prefix_);
    EXPECT_NE(Json(*r.value).At("/ts_ms"), "<missing>");
  }
  auto lsn = [&]() {
    auto rows = sql_->Exec(
        "SELECT coalesce(confirmed_flush_lsn - '0/0'::pg_lsn, 0) FROM pg_replication_slots WHERE "
        "slot_name = $1",
        {slot_});
    return rows.ok() && rows->size() == 1 ? std::stoll(std::string(rows->text(0, 0))) : -1;
  };
  const int64_t first = lsn();
  bool advanced = false;
  for (int i = 0; i < 100 && !advanced; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    advanced = lsn() > first;
  }
  EXPECT_TRUE(advanced) << "confirmed_flush_lsn stayed at " << first;
  EXPECT_EQ(StopCdc(), 0);
}

TEST_F(CdcTest, ErrorsAreClearWhenTheSlotIsTaken) {
  StartCdc();
  KafkaReader reader(prefix_);
  Exec(kSeed);
  ASSERT_TRUE(reader.ReadUntil(
      [&](const std::vector<Record>& rs) {
        return CountOp(rs, Topic("events"), "c") + CountOp(rs, Topic("events"), "r") == 2;
      },
      seconds(60)));
  // A second process on the same slot waits as long as it is told, then reports the slot as
  // taken.
  std::string second_log = log_ + ".second";
  const auto started = std::chrono::steady_clock::now();
  auto second = Process::Start(
      {BinaryPath(), "cdc", "--slot", slot_, "--metrics-addr", "127.0.0.1:0", "--slot-wait-ms",
       "3000"},
      {{"SPLITSTREAM_PG_DSN", db_->dsn()}, {"SPLITSTREAM_TOPIC_PREFIX", prefix_}}, second_log);
  ASSERT_TRUE(second.ok());
  auto code = second->Wait(seconds(90));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_NE(ReadFile(second_log).find("in use by another consumer"), std::string::npos)
      << ReadFile(second_log);
  EXPECT_NE(ReadFile(second_log).find("waiting up to 3000 ms"), std::string::npos)
      << ReadFile(second_log);
  EXPECT_GE(waited, seconds(3));
  EXPECT_LT(waited, seconds(25)) << "the default 30 s wait was used";
  EXPECT_EQ(StopCdc(), 0);
}

TEST_F(CdcTest, KillNineInTheMiddleOf200000InsertsLosesNothing) {
  Exec(kSeed);
  StartCdc();
  KafkaReader reader(prefix_);
  constexpr int kRows = 200000;
  constexpr int kPerTx = 10000;
  std::atomic<bool> insert_failed{false};
  std::thread writer([&] {
    auto conn = pg::Connection::Open(db_->dsn());
    if (!conn.ok()) {
      insert_failed = true;
      return;
    }
    for (int start = 0; start < kRows; start += kPerTx) {
      std::string sql = fmt::format(
          "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, "
          "ts) SELECT md5('bulk' || i)::uuid, 1, 1, 'bulk' || i, 'view', i, now() FROM "
          "generate_series({}, {}) i",
          start, start + kPerTx - 1);
      if (!(*conn)->ExecScript(sql).ok()) insert_failed = true;
    }
  });
  std::set<std::string> users;
  size_t scanned = 0;
  auto collect = [&](const std::vector<Record>& rs, size_t want) {
    for (; scanned < rs.size(); ++scanned) {
      const Record& r = rs[scanned];
      if (r.topic != Topic("events") || !r.value) continue;
      Json v(*r.value);
      std::string u = v.Str("/after/user_id");
      // Rows committed before the slot existed arrive as snapshot reads.
      const std::string op = v.Str("/op");
      if ((op == "c" || op == "r") && u.rfind("bulk", 0) == 0) users.insert(u);
    }
    return users.size() >= want;
  };
  ASSERT_TRUE(reader.ReadUntil([&](const auto& rs) { return collect(rs, 30000); }, seconds(120)))
      << "only " << users.size() << " rows before the kill";
  cdc_->Signal(SIGKILL);
  ASSERT_EQ(cdc_->Wait(seconds(30)).value_or(-1), 128 + SIGKILL);
  const size_t at_kill = users.size();
  StartCdc();
  writer.join();
  ASSERT_FALSE(insert_failed.load());
  EXPECT_TRUE(reader.ReadUntil([&](const auto& rs) { return collect(rs, kRows); }, seconds(240)))
      << "missing rows: saw " << users.size() << " of " << kRows;
  size_t creates = 0;
  for (const auto& r : reader.records()) {
    if (r.topic == Topic("events") && r.value && Json(*r.value).Str("/op") != "d") ++creates;
  }
  std::fprintf(stderr, "kill -9 after %zu rows; %zu create records for %zu rows (%zu duplicates)\n",
               at_kill, creates, users.size(), creates - users.size());
  EXPECT_EQ(StopCdc(), 0);
}

}  // namespace
}  // namespace splitstream::testing
