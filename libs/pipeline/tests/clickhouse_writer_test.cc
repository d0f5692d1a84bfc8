// ClickHouseWriter and ClickHouseEmitter against a fake ClickHouse client: the exact RowBinary
// rows a change becomes, the errors that leave the buffers unchanged, ALTER TABLE for new
// fields, retained batches after a failed flush, and acknowledgements only after a flush.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "splitstream/clickhouse/client.h"
#include "splitstream/debezium/decoder.h"
#include "splitstream/pipeline/clickhouse_emitter.h"
#include "splitstream/pipeline/clickhouse_writer.h"

namespace splitstream::pipeline {
namespace {

using clickhouse::RowBinaryWriter;
using debezium::ChangeRecord;

// A ClickHouse that knows table definitions (system.tables / system.columns), applies
// ALTER TABLE ... ADD COLUMN, and records inserts. `fail_inserts` makes the next N inserts
// fail with Unavailable.
class FakeClient final : public clickhouse::Client {
 public:
  struct Insert {
    std::string table;
    std::vector<std::string> columns;
    std::string body;
  };
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> columns;  // table→
  std::map<std::string, std::string> sorting_key;
  std::vector<std::string> executed;
  std::vector<Insert> inserts;
  int fail_inserts = 0;
  std::vector<std::string> failed_bodies;  // bodies of the inserts made to fail
  int queries = 0;

  Status Execute(std::string_view sql, const clickhouse::Settings&) override {
    executed.emplace_back(sql);
    // "ALTER TABLE `db`.`t` ADD COLUMN `c` T, ADD COLUMN `d` T"
    const std::string s(sql);
    const std::string head = "ALTER TABLE `db`.`";
    if (s.starts_with(head)) {
      const std::string table = s.substr(head.size(), s.find('`', head.size()) - head.size());
      const std::string add = "ADD COLUMN `";
      for (size_t pos = s.find(add); pos != std::string::npos; pos = s.find(add, pos + 1)) {
        const size_t name_end = s.find('`', pos + add.size());
        const size_t type_end = std::min(s.find(',', name_end), s.size());
        columns[table].emplace_back(s.substr(pos + add.size(), name_end - pos - add.size()),
                                    s.substr(name_end + 2, type_end - name_end - 2));
      }
    }
    return Status::Ok();
  }
  Result<std::string> Query(std::string_view, const clickhouse::Settings&) override {
    return Status::Internal("not used");
  }
  Result<std::vector<std::vector<std::string>>> QueryRows(std::string_view sql,
                                                          const clickhouse::Settings&) override {
    ++queries;
    std::vector<std::vector<std::string>> rows;
    std::string s(sql);
    if (s.find("system.tables") != std::string::npos) {
      for (const auto& [t, key] : sorting_key) {
        if (Selected(s, t)) rows.push_back({t, key});
      }
    } else {
      for (const auto& [t, cols] : columns) {
        if (!Selected(s, t)) continue;
        for (const auto& [name, type] : cols) rows.push_back({t, name, type});
      }
    }
    return rows;
  }
  Result<std::vector<clickhouse::NullableRow>> QueryNullableRows(
      std::string_view, const clickhouse::Settings&) override {
    return Status::Internal("not used");
  }
  Status Insert(std::string_view table, std::span<const std::string> cols, std::string_view,
                std::string_view body, const clickhouse::Settings&) override {
    if (fail_inserts > 0) {
      --fail_inserts;
      failed_bodies.emplace_back(body);
      return Status::Unavailable("connection refused");
    }
    inserts.push_back({std::string(table), {cols.begin(), cols.end()}, std::string(body)});
    return Status::Ok();
  }
  Status Ping() override { return Status::Ok(); }
  clickhouse::ClientStats stats() const override { return {}; }
  const clickhouse::ClientOptions& options() const override { return options_; }

 private:
  static bool Selected(const std::string& sql, const std::string& table) {
    // A query for one table names it as a string literal; a query for all does not.
    if (sql.find(" AND ") == std::string::npos) return true;
    return sql.find("'" + table + "'") != std::string::npos;
  }
  clickhouse::ClientOptions options_;
};

void AddAssignments(FakeClient& ch) {
  ch.columns["assignments"] = {{"experiment_id", "Int64"},  {"user_id", "String"},
                               {"variant_id", "Int64"},     {"assigned_at", "DateTime"},
                               {"assigned_at_us", "Int64"}, {"_version", "UInt64"},
                               {"_deleted", "UInt8"},       {"_source_ts_ms", "Int64"}};
  ch.sorting_key["assignments"] = "experiment_id, user_id";
  ch.columns["experiments"] = {{"id", "Int64"},
                               {"layer", "Nullable(String)"},
                               {"traffic", "Float64"},
                               {"started_at", "Nullable(DateTime)"},
                               {"started_at_us", "Nullable(Int64)"},
                               {"_version", "UInt64"},
                               {"_deleted", "UInt8"},
                               {"_source_ts_ms", "Int64"}};
  ch.sorting_key["experiments"] = "id";
}

std::string Envelope(std::string_view table, std::string_view op, std::string_view before,
                     std::string_view after, uint64_t lsn, int64_t ts_ms = 1763633472000) {
  return "{\"before\":" + std::string(before) + ",\"after\":" + std::string(after) +
         ",\"source\":{\"version\":\"3.1.3.Final\",\"connector\":\"postgresql\",\"name\":"
         "\"dbserver1\",\"ts_ms\":" +
         std::to_string(ts_ms) +
         ",\"snapshot\":\"false\",\"db\":\"app\",\"sequence\":null,"
         "\"schema\":\"public\",\"table\":\"" +
         std::string(table) + "\",\"txId\":7,\"lsn\":" + std::to_string(lsn) +
         ",\"xmin\":null},\"transaction\":null,\"op\":\"" + std::string(op) + "\",\"ts_ms\":1}";
}

ChangeRecord Decode(std::string_view table, const std::string& value) {
  debezium::Decoder decoder;
  auto rec = decoder.DecodeDebezium("dbserver1.public." + std::string(table), std::nullopt, value);
  EXPECT_TRUE(rec.ok()) << rec.status().ToString() << "\n" << value;
  return rec.ok() ? *rec : ChangeRecord{};
}

std::unique_ptr<ClickHouseWriter> NewWriter(FakeClient& ch) {
  auto w = ClickHouseWriter::Create(&ch, WriterOptions{"db"});
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? std::move(*w) : nullptr;
}

TEST(ClickHouseWriterTest, InsertBecomesOneRowBinaryRowWithBothTimestampColumns) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  ASSERT_TRUE(
      w->Add(Decode("assignments", Envelope("assignments", "c", "null",
                                            R"({"experiment_id":1,"user_id":"u1","variant_id":2,)"
                                            R"("assigned_at":"2026-11-20T10:11:12.345678Z"})",
                                            4242)))
          .ok());
  EXPECT_EQ(w->buffered_rows(), 1u);
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(w->buffered_rows(), 0u);
  ASSERT_EQ(ch.inserts.size(), 1u);
  EXPECT_EQ(ch.inserts[0].table, "`db`.`assignments`");
  EXPECT_EQ(ch.inserts[0].columns,
            (std::vector<std::string>{"experiment_id", "user_id", "variant_id", "assigned_at",
                                      "assigned_at_us", "_version", "_deleted", "_source_ts_ms"}));
  // 2026-11-20T10:11:12Z is 1795169472 s after the epoch (date -u -d ... +%s).
  RowBinaryWriter want;
  want.Int64(1);
  want.String("u1");
  want.Int64(2);
  want.DateTime(1795169472);
  want.Int64(1795169472345678);
  want.UInt64(4242);
  want.UInt8(0);
  want.Int64(1763633472000);
  EXPECT_EQ(ch.inserts[0].body, want.buffer());
  EXPECT_EQ(w->rows_written().at("assignments"), 1u);
}

// ISO-8601 timestamps (Debezium's ZonedTimestamp) → the DateTime and _us columns. Expected
// seconds from Python's datetime.fromisoformat(...).timestamp().
TEST(ClickHouseWriterTest, IsoTimestampForms) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  struct Case {
    std::string ts;
    std::optional<int64_t> us;  // nullopt: rejected
  };
  const Case cases[] = {
      {"2026-11-20T10:11:12Z", 1795169472000000},
      {"2026-11-20 10:11:12Z", 1795169472000000},
      {"2026-11-20T10:11:12.5Z", 1795169472500000},
      {"2026-11-20T10:11:12.000001Z", 1795169472000001},
      {"2026-11-20T10:11:12.123456789Z", 1795169472123456},  // truncated to µs
      {"2026-11-20T12:11:12+02:00", 1795169472000000},
      {"2026-11-20T08:41:12.25-01:30", 1795169472250000},
      {"2024-02-29T00:00:00Z", 1709164800000000},
      {"2000-02-29T00:00:00Z", 951782400000000},
      {"1900-02-29T00:00:00Z", std::nullopt},
      {"2026-04-31T00:00:00Z", std::nullopt},
      {"2026-11-00T00:00:00Z", std::nullopt},
      {"2026-00-10T00:00:00Z", std::nullopt},
      {"2016-12-31T23:59:60Z", 1483228800000000},  // a leap second
      {"1969-12-31T23:59:59.5Z", -500000},
      {"0001-01-01T00:00:00Z", -62135596800000000},
      {"9999-12-31T23:59:59.999999Z", 253402300799999999},
      {"infinity", kMax},
      {"-infinity", std::numeric_limits<int64_t>::min()},
      {"2026-11-20T10:11:12.1234567890Z", std::nullopt},  // more than 9 fraction digits
      {"2026-11-20T10:11:12.Z", std::nullopt},
      {"2026-11-20T10:11:12", std::nullopt},  // no zone
      {"2026-11-20T10:11:12Zx", std::nullopt},
      {"2026-11-20T10:11:12+02", std::nullopt},
      {"2026-11-20T10:11:12+0200", std::nullopt},
      {"2026-02-29T00:00:00Z", std::nullopt},
      {"2026-13-01T00:00:00Z", std::nullopt},
      {"2026-11-20T24:00:00Z", std::nullopt},
      {"2026-11-20T10:60:00Z", std::nullopt},
      {"2026-11-20T10:11:61Z", std::nullopt},
      {"2026-11-2aT10:11:12Z", std::nullopt},
      {"2026/11/20T10:11:12Z", std::nullopt},
      {"2026-11-20X10:11:12Z", std::nullopt},
      {"+2026-11-20T10:11:12Z", std::nullopt},
      {"2026-11-20T10:11:1", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ts);
    FakeClient ch;
    AddAssignments(ch);
    auto w = NewWriter(ch);
    ASSERT_TRUE(w);
    Status st = w->Add(Decode("assignments", Envelope("assignments", "c", "null",
                                                      R"({"experiment_id":1,"user_id":"u1",)"
                                                      R"("variant_id":2,"assigned_at":")" +
                                                          c.ts + "\"}",
                                                      4242)));
    if (!c.us) {
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(st.message().find("expected an ISO-8601 UTC timestamp"), std::string::npos)
          << st.message();
      continue;
    }
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(w->Flush().ok());
    ASSERT_EQ(ch.inserts.size(), 1u);
    int64_t s = *c.us / 1000000;  // floor
    if (*c.us % 1000000 < 0) --s;
    RowBinaryWriter want;
    want.Int64(1);
    want.String("u1");
    want.Int64(2);
    want.DateTime(s < 0 ? 0 : s > 0xffffffffLL ? 0xffffffffu : static_cast<uint32_t>(s));
    want.Int64(*c.us);
    want.UInt64(4242);
    want.UInt8(0);
    want.Int64(1763633472000);
    EXPECT_EQ(ch.inserts[0].body, want.buffer());
  }
}

TEST(ClickHouseWriterTest, DeleteWritesKeyDefaultsAndTheDeletedFlag) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  // REPLICA IDENTITY DEFAULT: before holds the key and nulls.
  ASSERT_TRUE(w->Add(Decode("assignments",
                            Envelope("assignments", "d",
                                     R"({"experiment_id":1,"user_id":"u1","variant_id":null,)"
                                     R"("assigned_at":null})",
                                     "null", 5000)))
                  .ok());
  ASSERT_TRUE(w->Flush().ok());
  RowBinaryWriter want;
  want.Int64(1);
  want.String("u1");
  want.Int64(0);
  want.DateTime(0);
  want.Int64(0);
  want.UInt64(5000);
  want.UInt8(1);
  want.Int64(1763633472000);
  ASSERT_EQ(ch.inserts.size(), 1u);
  EXPECT_EQ(ch.inserts[0].body, want.buffer());
}

TEST(ClickHouseWriterTest, NullableAndNumericStringsAndInfinity) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Add(Decode("experiments", Envelope("experiments", "u", "null",
                                                    R"({"id":3,"layer":null,"traffic":"0.25",)"
                                                    R"("started_at":"infinity"})",
                                                    77)))
                  .ok());
  ASSERT_TRUE(w->Flush().ok());
  RowBinaryWriter want;
  want.Int64(3);
  want.NullMarker(true);
  want.Float64(0.25);
  want.NullMarker(false);
  want.DateTime(4294967295u);
  want.NullMarker(false);
  want.Int64(std::numeric_limits<int64_t>::max());
  want.UInt64(77);
  want.UInt8(0);
  want.Int64(1763633472000);
  ASSERT_EQ(ch.inserts.size(), 1u);
  EXPECT_EQ(ch.inserts[0].body, want.buffer());
}

TEST(ClickHouseWriterTest, UnmappableChangesAreInvalidArgumentAndLeaveBuffersUnchanged) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  const std::string good = R"({"experiment_id":1,"user_id":"u1","variant_id":2,)"
                           R"("assigned_at":"2026-11-20T10:11:12Z"})";
  ASSERT_TRUE(w->Add(Decode("assignments", Envelope("assignments", "c", "null", good, 10))).ok());
  const size_t bytes = w->buffered_bytes();
  struct Case {
    std::string name, table, op, before, after;
    uint64_t lsn;
    std::string reason;
  };
  const Case cases[] = {
      {"wrong kind", "assignments", "c", "null",
       R"({"experiment_id":"x","user_id":"u","variant_id":2,"assigned_at":"2026-11-20T10:11:12Z"})",
       11, "assignments.experiment_id: expected an integer, got string"},
      {"bad timestamp", "assignments", "c", "null",
       R"({"experiment_id":1,"user_id":"u","variant_id":2,"assigned_at":"yesterday"})", 11,
       "assignments.assigned_at: expected an ISO-8601 UTC timestamp"},
      {"null in a non-Nullable column", "assignments", "c", "null",
       R"({"experiment_id":1,"user_id":null,"variant_id":2,"assigned_at":"2026-11-20T10:11:12Z"})",
       11, "assignments.user_id: null for a column that is not Nullable"},
      {"unknown table", "nope", "c", "null", R"({"id":1})", 11,
       "table \"nope\" does not exist in ClickHouse db"},
      {"no position", "assignments", "c", "null", good, 0, "has no position"},
      {"delete without key", "assignments", "d", R"({"experiment_id":1,"user_id":null})", "null",
       11, "does not carry the key column user_id"},
      {"unmappable new column", "experiments", "c", "null", R"({"id":1,"traffic":1,"tags":[1]})",
       11, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ChangeRecord rec = Decode(c.table, Envelope(c.table, c.op, c.before, c.after, c.lsn));
    Status st = w->Add(rec);
    if (c.reason.empty()) {
      // A JSON array is kept as text: a String column, not an error.
      EXPECT_TRUE(st.ok()) << st.ToString();
      continue;
    }
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find(c.reason), std::string::npos) << st.message();
    EXPECT_EQ(w->buffered_rows(), 1u);
    EXPECT_EQ(w->buffered_bytes(), bytes);
  }
}

TEST(ClickHouseWriterTest, NewFieldsAddNullableColumnsAndStartANewBatch) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Add(Decode("experiments",
                            Envelope("experiments", "c", "null", R"({"id":1,"traffic":1})", 5)))
                  .ok());
  // Schema-less: an integer → Int64, an ISO string stays a String, a null is skipped.
  ASSERT_TRUE(w->Add(Decode("experiments", Envelope("experiments", "c", "null",
                                                    R"({"id":2,"traffic":0.5,"score":7,)"
                                                    R"("seen":"2026-11-20T10:11:12Z","gone":null})",
                                                    6)))
                  .ok());
  ASSERT_EQ(ch.executed.size(), 1u);
  EXPECT_EQ(ch.executed[0],
            "ALTER TABLE `db`.`experiments` ADD COLUMN `score` Nullable(Int64), ADD COLUMN "
            "`seen` Nullable(String)");
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_EQ(ch.inserts.size(), 2u);
  EXPECT_EQ(ch.inserts[0].columns.size(), 8u);
  EXPECT_EQ(ch.inserts[1].columns.size(), 10u);
  EXPECT_EQ(ch.inserts[1].columns[8], "score");
  RowBinaryWriter tail;
  tail.NullMarker(false);
  tail.Int64(7);
  tail.NullMarker(false);
  tail.String("2026-11-20T10:11:12Z");
  EXPECT_TRUE(ch.inserts[1].body.ends_with(tail.buffer()));
}

TEST(ClickHouseWriterTest, ConnectSchemaTypesNewTimestampColumns) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  ChangeRecord rec = Decode("experiments", Envelope("experiments", "c", "null",
                                                    R"({"id":1,"traffic":1,"ended_at":null})", 5));
  rec.after_schema = {
      {"id", "int64"}, {"traffic", "double"}, {"ended_at", "io.debezium.time.ZonedTimestamp"}};
  ASSERT_TRUE(w->Add(rec).ok());
  ASSERT_EQ(ch.executed.size(), 1u);
  EXPECT_EQ(ch.executed[0],
            "ALTER TABLE `db`.`experiments` ADD COLUMN `ended_at` Nullable(DateTime), ADD COLUMN "
            "`ended_at_us` Nullable(Int64)");
  rec.after_schema.back().second = "org.apache.kafka.connect.data.Decimal";
  rec.after->fields.push_back({"price", debezium::FieldKind::kString, false, 0, 0, "AQ=="});
  rec.after_schema.push_back({"price", "org.apache.kafka.connect.data.Decimal"});
  Status st = w->Add(rec);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("experiments.price: new column whose ClickHouse type cannot be"),
            std::string::npos)
      << st.message();
}

TEST(ClickHouseWriterTest, FailedFlushKeepsRowsAndRetrySendsThemOnce) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  for (uint64_t lsn = 1; lsn <= 3; ++lsn) {
    ASSERT_TRUE(
        w->Add(Decode("experiments",
                      Envelope("experiments", "c", "null",
                               R"({"id":)" + std::to_string(lsn) + R"(,"traffic":1})", lsn)))
            .ok());
  }
  ChangeRecord trunc = Decode("experiments", Envelope("experiments", "t", "null", "null", 9));
  ASSERT_EQ(trunc.kind, ChangeRecord::Kind::kTruncate);
  ASSERT_TRUE(w->Add(trunc).ok());
  EXPECT_EQ(w->buffered_rows(), 4u);
  ch.fail_inserts = 1;
  EXPECT_EQ(w->Flush().code(), StatusCode::kUnavailable);
  EXPECT_EQ(w->buffered_rows(), 4u);
  EXPECT_TRUE(ch.inserts.empty());
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(w->buffered_rows(), 0u);
  ASSERT_EQ(ch.inserts.size(), 2u);
  EXPECT_EQ(ch.inserts[1].table, "`db`.`_truncations`");
  RowBinaryWriter want;
  want.String("experiments");
  want.UInt64(9);
  EXPECT_EQ(ch.inserts[1].body, want.buffer());
  EXPECT_EQ(w->rows_written().at("experiments"), 3u);
  // Nothing left to send.
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(ch.inserts.size(), 2u);
}

// An insert client whose INSERTs wait until the test opens the gate (a write in flight).
class GatedClient final : public clickhouse::Client {
 public:
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  Status Insert(std::string_view table, std::span<const std::string> cols, std::string_view,
                std::string_view body, const clickhouse::Settings&) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
    if (fail_next) {
      fail_next = false;
      return Status::Unavailable("connection refused");
    }
    inserts.push_back({std::string(table), {cols.begin(), cols.end()}, std::string(body)});
    return Status::Ok();
  }
  Status Execute(std::string_view, const clickhouse::Settings&) override { return Unused(); }
  Result<std::string> Query(std::string_view, const clickhouse::Settings&) override {
    return Unused();
  }
  Result<std::vector<std::vector<std::string>>> QueryRows(std::string_view,
                                                          const clickhouse::Settings&) override {
    return Unused();
  }
  Result<std::vector<clickhouse::NullableRow>> QueryNullableRows(
      std::string_view, const clickhouse::Settings&) override {
    return Unused();
  }
  Status Ping() override { return Unused(); }
  clickhouse::ClientStats stats() const override { return {}; }
  const clickhouse::ClientOptions& options() const override { return options_; }

  std::vector<struct FakeClient::Insert> inserts;  // read after FinishFlush returned
  bool fail_next = false;                          // set while no write runs

 private:
  static Status Unused() { return Status::Internal("the insert client only inserts"); }
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  clickhouse::ClientOptions options_;
};

std::string ExperimentRow(int64_t id) {
  RowBinaryWriter w;
  w.Int64(id);
  w.NullMarker(true);  // layer
  w.Float64(1);
  w.NullMarker(true);  // started_at
  w.NullMarker(true);  // started_at_us
  w.UInt64(static_cast<uint64_t>(id));
  w.UInt8(0);
  w.Int64(1763633472000);
  return w.buffer();
}

Status AddExperiment(ClickHouseWriter& w, int64_t id) {
  return w.Add(
      Decode("experiments", Envelope("experiments", "c", "null",
                                     R"({"id":)" + std::to_string(id) + R"(,"traffic":1})", id)));
}

TEST(ClickHouseWriterTest, BeginFlushWritesInTheBackgroundWhileAddFillsTheNextBatch) {
  FakeClient ch;
  AddAssignments(ch);
  GatedClient gate;
  auto created = ClickHouseWriter::Create(&ch, WriterOptions{"db", &gate});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ClickHouseWriter& w = **created;
  ASSERT_TRUE(AddExperiment(w, 1).ok());
  ASSERT_TRUE(AddExperiment(w, 2).ok());
  EXPECT_FALSE(w.FinishFlush(std::chrono::milliseconds(0))) << "no flush was started";
  w.BeginFlush();
  EXPECT_FALSE(w.FinishFlush(std::chrono::milliseconds(20))) << "the INSERT waits at the gate";
  EXPECT_EQ(w.buffered_rows(), 0u) << "rows being written are not buffered rows";
  ASSERT_TRUE(AddExperiment(w, 3).ok());
  EXPECT_EQ(w.buffered_rows(), 1u);
  w.BeginFlush();  // ignored: the first flush has not been collected
  gate.Open();
  std::optional<Status> done = w.FinishFlush(std::chrono::milliseconds::max());
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->ok()) << done->ToString();
  ASSERT_EQ(gate.inserts.size(), 1u);
  EXPECT_EQ(gate.inserts[0].table, "`db`.`experiments`");
  EXPECT_EQ(gate.inserts[0].body, ExperimentRow(1) + ExperimentRow(2));
  EXPECT_TRUE(ch.inserts.empty()) << "the INSERT went through the insert client";
  EXPECT_EQ(w.rows_written().at("experiments"), 2u);
  EXPECT_EQ(w.buffered_rows(), 1u);

  // A failed background write keeps its rows, and the next flush writes them first.
  gate.fail_next = true;
  w.BeginFlush();
  done = w.FinishFlush(std::chrono::milliseconds::max());
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->code(), StatusCode::kUnavailable);
  EXPECT_EQ(w.buffered_rows(), 1u);
  ASSERT_TRUE(AddExperiment(w, 4).ok());
  EXPECT_EQ(w.buffered_rows(), 2u);
  w.BeginFlush();
  done = w.FinishFlush(std::chrono::milliseconds::max());
  ASSERT_TRUE(done.has_value() && done->ok());
  ASSERT_EQ(gate.inserts.size(), 3u);
  EXPECT_EQ(gate.inserts[1].body, ExperimentRow(3));
  EXPECT_EQ(gate.inserts[2].body, ExperimentRow(4));
  EXPECT_EQ(w.rows_written().at("experiments"), 4u);
  EXPECT_EQ(w.buffered_rows(), 0u);
}

TEST(ClickHouseWriterTest, RowsGoOutInKeyOrderAndARetrySendsTheSameBytes) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  for (int64_t id : {3, 1, 2}) ASSERT_TRUE(AddExperiment(*w, id).ok());
  ch.fail_inserts = 1;
  EXPECT_EQ(w->Flush().code(), StatusCode::kUnavailable);
  EXPECT_EQ(w->buffered_rows(), 3u);
  EXPECT_EQ(w->buffered_bytes(), 3 * ExperimentRow(1).size());
  ASSERT_TRUE(AddExperiment(*w, 4).ok());  // a newer batch: its own INSERT, after the retry
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_EQ(ch.inserts.size(), 2u);
  EXPECT_EQ(ch.inserts[0].body, ExperimentRow(1) + ExperimentRow(2) + ExperimentRow(3));
  ASSERT_EQ(ch.failed_bodies.size(), 1u);
  EXPECT_EQ(ch.failed_bodies[0], ch.inserts[0].body);
  EXPECT_EQ(ch.inserts[1].body, ExperimentRow(4));
  EXPECT_EQ(w->rows_written().at("experiments"), 4u);
}

TEST(ClickHouseWriterTest, AKeyThatIsAnExpressionKeepsTheArrivalOrder) {
  FakeClient ch;
  AddAssignments(ch);
  ch.sorting_key["experiments"] = "intHash32(id), id";
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  for (int64_t id : {3, 1, 2}) ASSERT_TRUE(AddExperiment(*w, id).ok());
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_EQ(ch.inserts.size(), 1u);
  EXPECT_EQ(ch.inserts[0].body, ExperimentRow(3) + ExperimentRow(1) + ExperimentRow(2));
}

TEST(ClickHouseWriterTest, ChangefeedDeleteUsesThePositionalKeyAndHlcVersion) {
  FakeClient ch;
  AddAssignments(ch);
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  debezium::Decoder decoder;
  auto rec =
      decoder.DecodeChangefeed("assignments", R"([1, "u9"])",
                               R"({"after": null, "updated": "1763633472123456789.0000000002"})");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_TRUE(w->Add(*rec).ok());
  ASSERT_TRUE(w->Flush().ok());
  RowBinaryWriter want;
  want.Int64(1);
  want.String("u9");
  want.Int64(0);
  want.DateTime(0);
  want.Int64(0);
  want.UInt64(1763633472123456789u);
  want.UInt8(1);
  want.Int64(1763633472123);
  ASSERT_EQ(ch.inserts.size(), 1u);
  EXPECT_EQ(ch.inserts[0].body, want.buffer());
}

// `_batch`: writer_id << 32 | the number of the segment (a table's rows between flushes).
void AddVariantsWithBatch(FakeClient& ch, std::string batch_type = "UInt64") {
  ch.columns["variants"] = {
      {"id", "Int64"},       {"key", "String"},          {"_version", "UInt64"},
      {"_deleted", "UInt8"}, {"_source_ts_ms", "Int64"}, {"_batch", std::move(batch_type)}};
  ch.sorting_key["variants"] = "id";
}

ChangeRecord Variant(int id, uint64_t lsn) {
  return Decode("variants", Envelope("variants", "c", "null",
                                     R"({"id":)" + std::to_string(id) + R"(,"key":"k"})", lsn));
}

// The `_batch` values in the body of an insert into variants (rows of id, key "k", 17 bytes of
// metadata, then _batch).
std::vector<uint64_t> VariantBatches(const std::string& body) {
  constexpr size_t kRow = 8 + 2 + 8 + 1 + 8 + 8;
  std::vector<uint64_t> out;
  for (size_t at = 0; at + kRow <= body.size(); at += kRow) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
      v = v << 8 | static_cast<unsigned char>(body[at + kRow - 8 + static_cast<size_t>(i)]);
    }
    out.push_back(v);
  }
  return out;
}

TEST(ClickHouseWriterTest, BatchIdsCarryTheWriterIdAndGrowFromFlushToFlush) {
  FakeClient ch;
  AddVariantsWithBatch(ch);
  auto created = ClickHouseWriter::Create(&ch, WriterOptions{"db", nullptr, 0xABCD0123u});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto& w = *created;
  ASSERT_TRUE(w->Add(Variant(1, 10)).ok());
  ASSERT_TRUE(w->Add(Variant(2, 11)).ok());
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_TRUE(w->Add(Variant(3, 12)).ok());
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_EQ(ch.inserts.size(), 2u);
  EXPECT_EQ(ch.inserts[0].columns, (std::vector<std::string>{"id", "key", "_version", "_deleted",
                                                             "_source_ts_ms", "_batch"}));
  constexpr uint64_t kWriter = uint64_t{0xABCD0123u} << 32;
  EXPECT_EQ(VariantBatches(ch.inserts[0].body), (std::vector<uint64_t>{kWriter | 1, kWriter | 1}));
  EXPECT_EQ(VariantBatches(ch.inserts[1].body), (std::vector<uint64_t>{kWriter | 2}));
  // The exact bytes of the second flush's row.
  RowBinaryWriter want;
  want.Int64(3);
  want.String("k");
  want.UInt64(12);
  want.UInt8(0);
  want.Int64(1763633472000);
  want.UInt64(kWriter | 2);
  EXPECT_EQ(ch.inserts[1].body, want.buffer());
}

TEST(ClickHouseWriterTest, AnUnsetWriterIdIsRandomNonZeroAndFixedPerWriter) {
  FakeClient ch;
  AddVariantsWithBatch(ch);
  std::set<uint64_t> writer_ids;
  for (int writer = 0; writer < 2; ++writer) {
    auto w = NewWriter(ch);
    ASSERT_TRUE(w);
    for (int flush = 0; flush < 2; ++flush) {
      ASSERT_TRUE(w->Add(Variant(flush, 10)).ok());
      ASSERT_TRUE(w->Flush().ok());
      const uint64_t id = VariantBatches(ch.inserts.back().body).at(0);
      EXPECT_EQ(id & 0xFFFFFFFFu, static_cast<uint64_t>(flush + 1));
      EXPECT_NE(id >> 32, 0u);
      writer_ids.insert(id >> 32);
    }
  }
  // One id per writer (two writers drawing the same 32-bit id: once in 4 billion runs).
  EXPECT_EQ(writer_ids.size(), 2u);
}

// One counter for every table: segments of other tables in between still leave a table's
// later segment with a higher id. A table without `_batch` is written as before.
TEST(ClickHouseWriterTest, OneCounterForAllTablesAndTablesWithoutBatchUnchanged) {
  FakeClient ch;
  AddAssignments(ch);  // no _batch
  AddVariantsWithBatch(ch);
  auto created = ClickHouseWriter::Create(&ch, WriterOptions{"db", nullptr, 5});
  ASSERT_TRUE(created.ok());
  auto& w = *created;
  ASSERT_TRUE(w->Add(Decode("experiments",
                            Envelope("experiments", "c", "null", R"({"id":1,"traffic":1})", 20)))
                  .ok());
  ASSERT_TRUE(w->Add(Variant(1, 21)).ok());
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_TRUE(w->Add(Variant(2, 22)).ok());
  ASSERT_TRUE(w->Flush().ok());
  std::vector<uint64_t> variant_ids;
  for (const auto& insert : ch.inserts) {
    if (insert.table == "`db`.`experiments`") {
      EXPECT_EQ(std::count(insert.columns.begin(), insert.columns.end(), "_batch"), 0);
      RowBinaryWriter want;
      want.Int64(1);
      want.NullMarker(true);
      want.Float64(1);
      want.NullMarker(true);
      want.NullMarker(true);
      want.UInt64(20);
      want.UInt8(0);
      want.Int64(1763633472000);
      EXPECT_EQ(insert.body, want.buffer());
    } else {
      for (uint64_t id : VariantBatches(insert.body)) variant_ids.push_back(id);
    }
  }
  ASSERT_EQ(variant_ids.size(), 2u);
  EXPECT_EQ(variant_ids[0] >> 32, 5u);
  EXPECT_EQ(variant_ids[1] >> 32, 5u);
  EXPECT_GT(variant_ids[1], variant_ids[0]);
  EXPECT_EQ(w->rows_written().at("experiments"), 1u);
}

// A part that failed is retried with the same bytes, so with the same `_batch`; rows added
// meanwhile go in a later segment with a higher id, written after it.
TEST(ClickHouseWriterTest, ARetriedPartKeepsItsBatchId) {
  FakeClient ch;
  AddVariantsWithBatch(ch);
  auto created = ClickHouseWriter::Create(&ch, WriterOptions{"db", nullptr, 9});
  ASSERT_TRUE(created.ok());
  auto& w = *created;
  ASSERT_TRUE(w->Add(Variant(1, 30)).ok());
  ch.fail_inserts = 1;
  EXPECT_EQ(w->Flush().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(w->Add(Variant(2, 31)).ok());
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_EQ(ch.failed_bodies.size(), 1u);
  ASSERT_EQ(ch.inserts.size(), 2u);
  EXPECT_EQ(ch.inserts[0].body, ch.failed_bodies[0]);
  EXPECT_EQ(VariantBatches(ch.inserts[0].body), (std::vector<uint64_t>{uint64_t{9} << 32 | 1}));
  EXPECT_EQ(VariantBatches(ch.inserts[1].body), (std::vector<uint64_t>{uint64_t{9} << 32 | 2}));
}

TEST(ClickHouseWriterTest, ABatchColumnOfAnotherTypeIsInvalidArgument) {
  FakeClient ch;
  AddVariantsWithBatch(ch, "Int64");
  auto w = NewWriter(ch);
  ASSERT_TRUE(w);
  Status st = w->Add(Variant(1, 40));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.ToString().find("variants._batch: _batch must be UInt64"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(w->buffered_rows(), 0u);
  EXPECT_EQ(w->buffered_bytes(), 0u);
}

TEST(ClickHouseSchemaTest, StatementsCreateEveryTableIdempotently) {
  auto sql = ClickHouseSchemaStatements("experiments");
  ASSERT_EQ(sql.size(), 6u);
  EXPECT_EQ(sql[0], "CREATE DATABASE IF NOT EXISTS `experiments`");
  for (const auto& s : sql) EXPECT_NE(s.find("IF NOT EXISTS"), std::string::npos) << s;
  EXPECT_NE(sql[4].find("PARTITION BY toYYYYMM(ts) ORDER BY (event_id, ts_us)"), std::string::npos);
  EXPECT_NE(sql[1].find("ReplacingMergeTree(_version)"), std::string::npos);
  // Every analytics table ends its columns with the metadata, `_batch` last; not _truncations.
  for (size_t i = 1; i <= 4; ++i) {
    EXPECT_NE(sql[i].find("_source_ts_ms Int64, _batch UInt64)"), std::string::npos) << sql[i];
  }
  EXPECT_EQ(sql[5].find("_batch"), std::string::npos) << sql[5];
}

TEST(ClickHouseSchemaTest, DeduplicatedSelectFiltersDeletedRowsAfterFinal) {
  EXPECT_EQ(DeduplicatedSelect("db", "variants", {"id", "key"}, {"id"}),
            "SELECT `id`, `key` FROM (SELECT `id`, `key`, _deleted FROM `db`.`variants` FINAL "
            "WHERE _version > (SELECT max(version) FROM `db`._truncations WHERE `table` = "
            "'variants')) WHERE _deleted = 0");
  // Asking for _deleted does not select it twice.
  EXPECT_EQ(DeduplicatedSelect("db", "t", {"id", "_deleted"}, {"id"}).find("_deleted, _deleted"),
            std::string::npos);
}

// The emitter: rows are acknowledged only after ClickHouse accepted them.
class EmitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ch = std::make_unique<FakeClient>();
    AddAssignments(*ch);
    ch_ = ch.get();
    ClickHouseEmitterOptions opts;
    opts.database = "db";
    opts.flush_rows = 3;
    auto e = ClickHouseEmitter::Create(opts, std::move(ch), &tracker_, &clock_);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    emitter_ = std::move(*e);
    table_.id = 1;
    table_.schema.schema = "public";
    table_.schema.table = "experiments";
    // int8, text, float8, timestamptz (PostgreSQL type oids).
    table_.schema.columns = {{"id", 20, -1, true},
                             {"layer", 25, -1, false},
                             {"traffic", 701, -1, false},
                             {"started_at", 1184, -1, false}};
  }

  Status Insert(int64_t id, uint64_t lsn) {
    ids_.push_back(std::to_string(id));
    row_ = {debezium::Datum{debezium::DatumKind::kText, ids_.back()},
            debezium::Datum{debezium::DatumKind::kNull, {}},
            debezium::Datum{debezium::DatumKind::kText, "0.5"},
            debezium::Datum{debezium::DatumKind::kText, "2026-11-20 10:11:12.5+00"}};
    RowChange c;
    c.table = &table_;
    c.op = debezium::Op::kCreate;
    c.after = row_;
    c.source = {1763633472000000, "false", Lsn(0), Lsn(lsn), 7};
    return emitter_->Emit(c);
  }

  FakeClock clock_{1763633472000000};
  AckTracker tracker_;
  FakeClient* ch_ = nullptr;
  std::unique_ptr<ClickHouseEmitter> emitter_;
  TableInfo table_;
  std::deque<std::string> ids_;
  std::vector<debezium::Datum> row_;
};

TEST_F(EmitterTest, AcksOnlyAfterTheTimedFlush) {
  ASSERT_TRUE(Insert(1, 100).ok());
  ASSERT_TRUE(emitter_->EmitHeartbeat(0).ok());
  tracker_.Commit(Lsn(200));
  ASSERT_TRUE(emitter_->Poll().ok());
  EXPECT_EQ(tracker_.InFlight(), 2u);
  EXPECT_TRUE(ch_->inserts.empty());
  clock_.Advance(std::chrono::milliseconds(1000));
  ASSERT_TRUE(emitter_->Poll().ok());
  EXPECT_EQ(tracker_.InFlight(), 0u);
  EXPECT_EQ(tracker_.Confirmable(), Lsn(200));
  ASSERT_EQ(ch_->inserts.size(), 1u);
  // The row as the writer encodes it: timestamptz → DateTime and µs.
  RowBinaryWriter want;
  want.Int64(1);
  want.NullMarker(true);
  want.Float64(0.5);
  want.NullMarker(false);
  want.DateTime(1795169472);
  want.NullMarker(false);
  want.Int64(1795169472500000);
  want.UInt64(100);
  want.UInt8(0);
  want.Int64(1763633472000);
  EXPECT_EQ(ch_->inserts[0].body, want.buffer());
  // A heartbeat with nothing pending is acknowledged at once.
  ASSERT_TRUE(emitter_->EmitHeartbeat(0).ok());
  EXPECT_EQ(tracker_.InFlight(), 0u);
}

TEST_F(EmitterTest, FlushesAtTheRowLimitAndRetriesWithBackoff) {
  ch_->fail_inserts = 2;
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(Insert(i, 100 + i).ok());
  // The third row reached flush_rows: one attempt failed, the rows are still in flight.
  EXPECT_EQ(tracker_.InFlight(), 3u);
  ASSERT_TRUE(emitter_->Poll().ok());  // backing off: no attempt yet
  EXPECT_EQ(ch_->fail_inserts, 1);
  clock_.Advance(std::chrono::milliseconds(100));
  ASSERT_TRUE(emitter_->Poll().ok());  // second attempt fails, backoff 200 ms
  EXPECT_EQ(ch_->fail_inserts, 0);
  EXPECT_EQ(tracker_.InFlight(), 3u);
  clock_.Advance(std::chrono::milliseconds(150));
  ASSERT_TRUE(emitter_->Poll().ok());
  EXPECT_TRUE(ch_->inserts.empty());
  clock_.Advance(std::chrono::milliseconds(50));
  ASSERT_TRUE(emitter_->Poll().ok());
  EXPECT_EQ(tracker_.InFlight(), 0u);
  ASSERT_EQ(ch_->inserts.size(), 1u);
  EXPECT_EQ(emitter_->rows_written().at("experiments"), 3u);
}

TEST_F(EmitterTest, UnmappableChangeFailsItsRecordAndIsReturned) {
  table_.schema.columns[1].type_oid = 20;  // layer as int8: a number for a String column
  table_.id = 2;
  ids_.push_back("5");
  row_ = {debezium::Datum{debezium::DatumKind::kText, "1"},
          debezium::Datum{debezium::DatumKind::kText, ids_.back()},
          debezium::Datum{debezium::DatumKind::kText, "0.5"},
          debezium::Datum{debezium::DatumKind::kNull, {}}};
  RowChange c;
  c.table = &table_;
  c.op = debezium::Op::kCreate;
  c.after = row_;
  c.source = {1763633472000000, "false", Lsn(0), Lsn(10), 7};
  Status st = emitter_->Emit(c);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("experiments.layer: expected a string, got integer"),
            std::string::npos)
      << st.message();
  ASSERT_TRUE(tracker_.failure().has_value());
}

}  // namespace
}  // namespace splitstream::pipeline
