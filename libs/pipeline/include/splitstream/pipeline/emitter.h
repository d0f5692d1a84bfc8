// Emitter: where the CDC process hands decoded changes — Kafka (Debezium topics) or, in
// direct mode, ClickHouse. Each downstream record takes a sequence number from the
// AckTracker the emitter was built with, and is acknowledged (or failed) there once it is
// durable downstream; the CDC process confirms PostgreSQL positions from that tracker only.
//
// Thread safety: the CDC thread calls every method; acknowledgements may arrive on other
// threads (they only touch the tracker).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "splitstream/core/lsn.h"
#include "splitstream/core/status.h"
#include "splitstream/debezium/encoder.h"

namespace splitstream::pipeline {

// A source table as the CDC process knows it at one point of the stream. A schema change
// creates a new TableInfo with a new `id`, so emitters may cache per-table state by id.
struct TableInfo {
  uint64_t id = 0;
  uint32_t oid = 0;
  debezium::TableSchema schema;  // schema, table, columns (key = primary-key column)
  std::string QualifiedName() const { return schema.schema + "." + schema.table; }
};

struct RowChange {
  const TableInfo* table = nullptr;
  debezium::Op op = debezium::Op::kCreate;
  std::span<const debezium::Datum> before;  // empty: none (JSON null)
  std::span<const debezium::Datum> after;   // empty for deletes
  debezium::SourceInfo source;
};

class Emitter {
 public:
  virtual ~Emitter() = default;
  // A transaction begins / ends (commit_lsn is the commit record's position). Records of
  // one transaction are emitted between the two calls.
  virtual Status BeginTransaction(uint32_t xid, Lsn lsn, int64_t commit_time_us) = 0;
  virtual Status EndTransaction(uint32_t xid, Lsn commit_lsn, int64_t commit_time_us) = 0;
  // One row change (snapshot read, insert, update, delete).
  virtual Status Emit(const RowChange& change) = 0;
  // A TRUNCATE of `table`.
  virtual Status EmitTruncate(const TableInfo& table, const debezium::SourceInfo& source) = 0;
  // A heartbeat the CDC process emitted through PostgreSQL came back through the stream.
  virtual Status EmitHeartbeat(int64_t ts_ms) = 0;
  // Called from the CDC loop often (at least every 100 ms): time-based flushing.
  virtual Status Poll() = 0;
  // Sends everything buffered and waits until each record is acknowledged or failed, at most
  // `timeout`. Unavailable on timeout.
  virtual Status Flush(std::chrono::milliseconds timeout) = 0;
  // A downstream error after which nothing more can be delivered (e.g. Kafka's fatal
  // idempotence errors); the CDC process stops and confirms nothing beyond what was acked.
  virtual std::optional<Status> Fatal() const = 0;
};

}  // namespace splitstream::pipeline
