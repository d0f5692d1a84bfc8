// ClickHouseWriter: decoded change records (debezium::ChangeRecord) → rows of the ClickHouse
// analytics tables (design.md section 5; schema and version rule in libs/pipeline/README.md).
// Used by the sink (Kafka → ClickHouse) and by direct mode (CDC → ClickHouse).
//
// Each table holds the source columns, then `_version UInt64` (the change's position),
// `_deleted UInt8`, `_source_ts_ms Int64` and `_batch UInt64` (which write brought the row),
// on ReplacingMergeTree(_version) ordered by the source primary key; a timestamp column `c` is
// stored twice, as `c DateTime` and `c_us Int64` (microseconds). Replaying a change writes the
// same row (but for `_batch`) with the same version, so replays have no visible effect on the
// deduplicated state (DeduplicatedSelect below).
//
// Mapping of one record (Add):
//   - c/u/r: the `after` image, _deleted = 0; d: the `before` image (or, without one, the key)
//     with _deleted = 1; columns a delete does not carry get their default (NULL or zero).
//   - _version: the Debezium source.lsn; for CockroachDB changefeed records the `updated` HLC
//     wall time in nanoseconds (the logical counter is ignored). Zero → InvalidArgument.
//   - _source_ts_ms: source.ts_ms (changefeed: the HLC wall time in ms).
//   - _batch (when the table has the column; UInt64, else InvalidArgument): the id of the
//     segment the row is buffered in, `writer_id << 32 | n`, where writer_id is the writer's
//     (WriterOptions) and n counts the segments the writer opened, over all tables, from 1. A
//     segment is a table's rows between two flushes (a new column starts another). So per
//     table and writer a later segment has a higher id (ids are not consecutive); a part that
//     failed keeps its id when retried (the same bytes are sent again); rows of a table
//     without the column are written without it. Ids of different writers do not compare.
//   - A truncate (Kind kTruncate) becomes a `_truncations` row (table, version).
//   - Values: integer columns take JSON integers and booleans; Float columns integers, doubles
//     and numeric strings ("1.5", "NAN", "POSITIVE_INFINITY": Debezium's decimal string mode);
//     String columns strings and JSON text; DateTime + _us pairs ISO-8601 UTC strings
//     (timestamptz) or epoch numbers (µs; ms when the Connect schema says
//     org.apache.kafka.connect.data.Timestamp); Date columns days since the epoch.
//     Infinite timestamps clamp to the DateTime range and to INT64 max/min µs.
//   - A field the table does not have yet: when its type is determinable, ALTER TABLE ADD
//     COLUMN (Nullable) first. The Connect schema decides when the message had one (time
//     logical types → DateTime + _us, Date → Date, int* → Int64, float*/double → Float64,
//     boolean → UInt8, string/Json/Uuid/bytes → String; Decimal and VariableScaleDecimal
//     cannot be mapped); without a schema the JSON kind decides (bool → UInt8, integer →
//     Int64, number → Float64, string or object → String: an ISO timestamp string without a
//     schema stays a String). A null value for an unknown field is skipped: the column, once
//     added, is Nullable and reads NULL for that row anyway.
//
// Errors: Add returns InvalidArgument with the reason for a record that cannot be mapped
// (unknown table, value of the wrong kind, unmappable new column, no position); the buffers
// are unchanged then. Add and Flush return Unavailable (or ClickHouse's error) when ClickHouse
// fails; Flush keeps everything it could not insert, so calling it again later retries.
//
// Row order: each table batch is sent sorted by the table's ORDER BY key (equal keys in arrival
// order), so that ClickHouse skips its own sort of the block (README, "Rows in key order"); a
// key that is an expression, or of a type the writer does not encode, keeps the arrival order.
//
// Flushing: Flush writes everything buffered and waits. BeginFlush/FinishFlush split it so that
// the caller can go on adding rows while an INSERT runs: BeginFlush seals what is buffered (the
// rows a failed flush left, then the newer ones) and, with WriterOptions::insert_client, writes
// it on a background thread through that client; Add, buffered_rows and the other methods keep
// working on the next batch meanwhile. At most one flush runs at a time.
//
// Ownership and thread safety: the writer borrows `client` (and `insert_client`), which must
// outlive it; the caller uses one thread at a time. The background write touches only the
// sealed batch and `insert_client`; the destructor waits for it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "splitstream/clickhouse/client.h"
#include "splitstream/core/result.h"
#include "splitstream/core/status.h"
#include "splitstream/debezium/decoder.h"
#include "splitstream/pipeline/sink.h"

namespace splitstream::pipeline {

struct WriterOptions {
  std::string database = "experiments";
  // A second client for the INSERTs of BeginFlush, used on a background thread (a Client serves
  // one thread at a time, and Add may query ClickHouse meanwhile). nullptr: BeginFlush writes
  // synchronously with the main client.
  clickhouse::Client* insert_client = nullptr;
  // The high 32 bits of every `_batch` id this writer writes. 0: a random value in
  // [1, 2^32), drawn once from std::random_device when the writer is created (tests set it).
  uint32_t writer_id = 0;
};

// The sink's ChangeWriter (sink.h) for ClickHouse.
class ClickHouseWriter final : public ChangeWriter {
 public:
  // Reads the table definitions of `database` (system.columns, system.tables). Unavailable
  // when ClickHouse cannot be reached; NotFound when the database does not exist.
  static Result<std::unique_ptr<ClickHouseWriter>> Create(clickhouse::Client* client,
                                                          WriterOptions options);
  ~ClickHouseWriter() override;
  ClickHouseWriter(const ClickHouseWriter&) = delete;
  ClickHouseWriter& operator=(const ClickHouseWriter&) = delete;

  // Buffers one change (Kind kRow or kTruncate; other kinds are InvalidArgument).
  Status Add(const debezium::ChangeRecord& change) override;
  // Rows and bytes buffered and not being written (what the next flush writes).
  size_t buffered_rows() const override;
  size_t buffered_bytes() const override;
  // One RowBinary INSERT per table batch (in key order), then the truncations; waits for a flush in
  // flight first. On success nothing is buffered; on failure what was not inserted stays buffered.
  Status Flush() override;
  // Starts a flush of everything buffered (see above) and returns; does nothing while a flush
  // started earlier has not been collected by FinishFlush.
  void BeginFlush() override;
  // The result of the flush BeginFlush started, once it ended: waits up to `wait`
  // (milliseconds::max(): until it ends) and returns nullopt while it still runs, or when no
  // flush was started. After a failure the rows not inserted stay buffered (counted by
  // buffered_rows again) and the next flush writes them first.
  std::optional<Status> FinishFlush(std::chrono::milliseconds wait) override;
  // Rows inserted per table since creation (truncations under "_truncations").
  std::map<std::string, uint64_t> rows_written() const override;

  struct Impl;

 private:
  explicit ClickHouseWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Creates `database`, the tables of the four Splitstream source tables (experiments,
// variants, assignments, events) and `_truncations`, all IF NOT EXISTS, then adds `_batch
// UInt64` (after `_source_ts_ms`) to those of the four an older version created without it
// (system.columns; a concurrent migrate adding it first is fine). Idempotent. The DDL runs on
// ClickHouse 18.16 and current releases.
Status MigrateClickHouse(clickhouse::Client& client, const std::string& database);

// The CREATE statements MigrateClickHouse runs, in order (the database first).
std::vector<std::string> ClickHouseSchemaStatements(const std::string& database);

// A query (without surrounding parentheses) that yields the deduplicated state of `table`:
// for each ORDER BY key the row with the highest _version, without deleted rows and without
// rows at or below the table's latest truncation. `columns` are column names (quoted here);
// `key` (the ORDER BY columns) is unused by the FINAL form and kept for an argMax form.
// Reads `_deleted` outside the FINAL subquery: as a PREWHERE (before the merge) it would
// bring back superseded rows (measured on 18.16). Runs on 18.16 and current releases.
std::string DeduplicatedSelect(const std::string& database, const std::string& table,
                               const std::vector<std::string>& columns,
                               const std::vector<std::string>& key);

}  // namespace splitstream::pipeline
