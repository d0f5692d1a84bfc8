// ClickHouseEmitter: direct mode, `splitstream cdc` without Kafka. Changes go through the same
// ClickHouseWriter as the sink's: each RowChange is encoded as the Debezium envelope the Kafka
// pipeline would carry (schema-enabled, so new columns have a known type) and decoded back into
// the ChangeRecord the sink would see, so both modes write identical rows (libs/pipeline/README.md,
// "Direct mode").
//
// Every change (and truncate, and heartbeat) takes one sequence number from the AckTracker in
// stream order; the numbers of the buffered rows are acknowledged only once ClickHouse accepted
// the INSERTs that hold them, so the CDC process confirms an LSN to PostgreSQL only after its
// rows are in ClickHouse. Batches are flushed at `flush_rows` buffered rows or when the oldest
// buffered row is `flush_interval` old (in Poll/Emit); a failed flush keeps the rows and is
// retried from Poll with exponential backoff (100 ms doubling to `max_backoff`), while the CDC
// process stops reading once max_in_flight records are unacknowledged.
//
// Errors: a change the writer cannot map (InvalidArgument) fails its record in the tracker and
// is returned from Emit, which stops the CDC process (there is no dead-letter topic in direct
// mode; nothing after it is confirmed, so fixing the table and restarting replays it).
//
// Thread safety: one thread (the CDC thread) calls every method.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "splitstream/clickhouse/client.h"
#include "splitstream/core/clock.h"
#include "splitstream/core/result.h"
#include "splitstream/debezium/encoder.h"
#include "splitstream/pipeline/ack_tracker.h"
#include "splitstream/pipeline/emitter.h"

namespace splitstream::pipeline {

struct ClickHouseEmitterOptions {
  std::string database = "experiments";  // the analytics database (MigrateClickHouse)
  // server_name and database as for Kafka mode (they only appear inside the intermediate
  // envelope); schemas_enable is forced on. decimal_mode kPrecise is replaced by kDouble:
  // precise decimals (base64) have no ClickHouse column type in this schema.
  debezium::EncoderOptions encoder;
  size_t flush_rows = 10000;
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds max_backoff{10000};
};

class ClickHouseEmitter final : public Emitter {
 public:
  // Takes `client`; `tracker` and `clock` must outlive the emitter. Reads the ClickHouse schema
  // (ClickHouseWriter::Create): Unavailable when ClickHouse cannot be reached, NotFound when the
  // database does not exist (run `splitstream migrate`).
  static Result<std::unique_ptr<ClickHouseEmitter>> Create(
      ClickHouseEmitterOptions options, std::unique_ptr<clickhouse::Client> client,
      AckTracker* tracker, Clock* clock);
  ~ClickHouseEmitter() override;

  Status BeginTransaction(uint32_t xid, Lsn lsn, int64_t commit_time_us) override;
  Status EndTransaction(uint32_t xid, Lsn commit_lsn, int64_t commit_time_us) override;
  Status Emit(const RowChange& change) override;
  Status EmitTruncate(const TableInfo& table, const debezium::SourceInfo& source) override;
  Status EmitHeartbeat(int64_t ts_ms) override;
  Status Poll() override;
  Status Flush(std::chrono::milliseconds timeout) override;
  std::optional<Status> Fatal() const override;

  // Rows inserted per ClickHouse table since creation.
  std::map<std::string, uint64_t> rows_written() const;

  struct Impl;

 private:
  explicit ClickHouseEmitter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitstream::pipeline
