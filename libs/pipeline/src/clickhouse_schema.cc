// The ClickHouse analytics schema (libs/pipeline/README.md, "ClickHouse schema"): one table per
// source table, deduplicated by ReplacingMergeTree(_version), and the dedup query.
#include <fmt/format.h>

#include "splitstream/clickhouse/sql.h"
#include "splitstream/pipeline/clickhouse_writer.h"

namespace splitstream::pipeline {
namespace {

using clickhouse::QuoteIdentifier;
using clickhouse::QuoteString;

// Source columns of each table, in PostgreSQL's order (libs/experiments/src/migrations.cc),
// after the type rules: integers Int64, double Float64, text/uuid/jsonb String, timestamptz
// `c DateTime` + `c_us Int64`, a nullable source Nullable(...).
struct TableDdl {
  const char* name;
  const char* columns;
  const char* partition;  // "" for none
  const char* order_by;
};

constexpr const char* kMeta = "_version UInt64, _deleted UInt8, _source_ts_ms Int64, _batch UInt64";

constexpr TableDdl kTables[] = {
    {"experiments",
     "id Int64, key String, name String, description String, status String, traffic Float64, "
     "layer Nullable(String), layer_start Float64, layer_end Float64, seed String, "
     "hash_version Int64, metrics String, allocation_version Int64, created_at DateTime, "
     "created_at_us Int64, started_at Nullable(DateTime), started_at_us Nullable(Int64), "
     "stopped_at Nullable(DateTime), stopped_at_us Nullable(Int64), updated_at DateTime, "
     "updated_at_us Int64",
     "", "id"},
    {"variants", "id Int64, experiment_id Int64, key String, weight Float64, position Int64", "",
     "id"},
    {"assignments",
     "experiment_id Int64, user_id String, variant_id Int64, assigned_at DateTime, "
     "assigned_at_us Int64",
     "", "(experiment_id, user_id)"},
    {"events",
     "event_id String, experiment_id Int64, variant_id Int64, user_id String, "
     "event_type String, value Nullable(Float64), properties String, ts DateTime, ts_us Int64, "
     "received_at DateTime, received_at_us Int64",
     "toYYYYMM(ts)", "(event_id, ts_us)"},
};

}  // namespace

std::vector<std::string> ClickHouseSchemaStatements(const std::string& database) {
  const std::string db = QuoteIdentifier(database);
  std::vector<std::string> out;
  out.push_back("CREATE DATABASE IF NOT EXISTS " + db);
  for (const TableDdl& t : kTables) {
    std::string partition =
        t.partition[0] != '\0' ? fmt::format(" PARTITION BY {}", t.partition) : "";
    out.push_back(fmt::format(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}, {}) ENGINE = ReplacingMergeTree(_version){} "
        "ORDER BY {}",
        db, QuoteIdentifier(t.name), t.columns, kMeta, partition, t.order_by));
  }
  out.push_back(
      fmt::format("CREATE TABLE IF NOT EXISTS {}._truncations (`table` String, version UInt64) "
                  "ENGINE = ReplacingMergeTree ORDER BY (`table`, version)",
                  db));
  return out;
}

namespace {

// The analytics tables of `database` that lack `_batch` (created by an older version), and
// whether each has `_source_ts_ms` to put it after.
Result<std::vector<std::pair<std::string, bool>>> TablesWithoutBatch(
    clickhouse::Client& client, const std::string& database, const clickhouse::Settings& settings) {
  std::string names;
  for (const TableDdl& t : kTables) {
    names += (names.empty() ? "" : ", ") + QuoteString(t.name);
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto rows,
      client.QueryRows(fmt::format("SELECT table, countIf(name = '_batch'), "
                                   "countIf(name = '_source_ts_ms') FROM system.columns WHERE "
                                   "database = {} AND table IN ({}) GROUP BY table ORDER BY table",
                                   QuoteString(database), names),
                       settings));
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& r : rows) {
    if (r.size() != 3) return Status::Internal("system.columns: unexpected row width");
    if (r[1] == "0") out.emplace_back(r[0], r[2] != "0");
  }
  return out;
}

}  // namespace

Status MigrateClickHouse(clickhouse::Client& client, const std::string& database) {
  // The database may not exist yet: run the DDL with the server's default database.
  clickhouse::Settings settings = {{"database", "default"}};
  for (const std::string& sql : ClickHouseSchemaStatements(database)) {
    Status st = client.Execute(sql, settings);
    if (!st.ok()) return st.WithContext("migrate ClickHouse");
  }
  // Tables an older version created have no `_batch`: add it (rows already there read 0).
  // ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, so look first; a migrate running at the
  // same time may add it between the look and the ALTER, which then fails: what counts is
  // that the column exists afterwards, so look again.
  auto missing = TablesWithoutBatch(client, database, settings);
  if (!missing.ok()) return missing.status().WithContext("migrate ClickHouse");
  if (missing->empty()) return Status::Ok();
  Status altered;
  for (const auto& [table, has_source_ts] : *missing) {
    Status st = client.Execute(
        fmt::format("ALTER TABLE {}.{} ADD COLUMN _batch UInt64{}", QuoteIdentifier(database),
                    QuoteIdentifier(table), has_source_ts ? " AFTER _source_ts_ms" : ""),
        settings);
    if (!st.ok() && altered.ok()) altered = st.WithContext("add _batch to " + table);
  }
  if (altered.ok()) return Status::Ok();
  auto still = TablesWithoutBatch(client, database, settings);
  if (!still.ok()) return still.status().WithContext("migrate ClickHouse");
  if (!still->empty()) return altered.WithContext("migrate ClickHouse");
  return Status::Ok();
}

std::string DeduplicatedSelect(const std::string& database, const std::string& table,
                               const std::vector<std::string>& columns,
                               const std::vector<std::string>& /*key*/) {
  const std::string qualified = QuoteIdentifier(database) + "." + QuoteIdentifier(table);
  std::string list;
  bool has_deleted = false;
  for (const std::string& c : columns) {
    if (!list.empty()) list += ", ";
    list += QuoteIdentifier(c);
    has_deleted = has_deleted || c == "_deleted";
  }
  // FINAL keeps the highest _version per ORDER BY key (4x faster than argMax grouping on
  // 2.5 M rows, README). Rows at or below the latest truncation never count, so that filter
  // may run before the merge; the deleted flag must be the surviving row's, so it is read
  // outside the FINAL subquery (as PREWHERE, before the merge, it would resurrect older rows).
  return fmt::format(
      "SELECT {0} FROM (SELECT {0}{1} FROM {2} FINAL WHERE _version > (SELECT "
      "max(version) FROM {3}._truncations WHERE `table` = {4})) WHERE _deleted = 0",
      list, has_deleted ? "" : ", _deleted", qualified, QuoteIdentifier(database),
      QuoteString(table));
}

}  // namespace splitstream::pipeline
