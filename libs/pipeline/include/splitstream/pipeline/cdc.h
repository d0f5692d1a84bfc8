// Cdc: PostgreSQL logical replication → an Emitter (Kafka topics or ClickHouse), the engine of
// `splitstream cdc` (design.md section 5).
//
// Run() sets up the publication (publish_via_partition_root, so partitions report as their
// parent), the logical slot (pgoutput) and, per the snapshot mode, an initial snapshot that is
// consistent with the slot; then it streams. PostgreSQL is told a position only when the
// AckTracker says everything at or below it is durable downstream, so a crash or restart at
// any point replays (duplicates are possible) and never loses a change.
//
// Connection loss (PostgreSQL) is retried with backoff; downstream outages hold records in
// flight, and reading from the slot pauses while `max_in_flight` records are unacknowledged.
// Run() returns OK after `stop` was set (having flushed and confirmed what was delivered),
// Unavailable when what was in flight could not be delivered within shutdown_flush_timeout
// (nothing undelivered is confirmed: the next run sends it again), and an error for a
// misconfiguration (slot in use, slot invalidated, tables missing) or a fatal downstream error.
//
// Thread safety: Run() on one thread; Metrics() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "splitstream/core/clock.h"
#include "splitstream/core/lsn.h"
#include "splitstream/core/result.h"
#include "splitstream/pipeline/ack_tracker.h"
#include "splitstream/pipeline/emitter.h"

namespace splitstream::pipeline {

enum class SnapshotMode {
  kInitial,  // snapshot once, when the slot is created (or a previous snapshot never finished)
  kNever,    // stream only
  kAlways,   // snapshot on every start, then stream from the slot
};
Result<SnapshotMode> ParseSnapshotMode(std::string_view text);

struct CdcOptions {
  std::string pg_dsn;
  std::string slot = "splitstream";
  std::string publication = "splitstream";
  // Tables of the publication when it is created (schema-qualified).
  std::vector<std::string> tables = {"public.experiments", "public.variants", "public.assignments",
                                     "public.events"};
  SnapshotMode snapshot_mode = SnapshotMode::kInitial;
  // A slot that another walsender holds is waited for this long (its client may just have
  // died, and PostgreSQL releases the slot once it notices) before the start fails.
  std::chrono::milliseconds slot_wait{30000};
  // pg_logical_emit_message heartbeats, so an idle database's slot still advances; 0 = off.
  std::chrono::milliseconds heartbeat_interval{10000};
  // Standby status updates (confirmed position) at least this often.
  std::chrono::milliseconds status_interval{1000};
  // Reading from the slot pauses while this many records are unacknowledged (checked every
  // 256 replication messages, so it may be exceeded by their records).
  uint64_t max_in_flight = 200000;
  // While changes stream, a dry socket is read again after this pause instead of waking on
  // every message the server sends (pg::ReplicationConnection::SetBatchWait); adds at most
  // this much latency. 0: wake on every message.
  std::chrono::microseconds read_batch_wait{1000};
  size_t snapshot_fetch_rows = 10000;
  // On stop: how long what is in flight may take to be delivered (what is not is sent again by
  // the next run, from the confirmed LSN).
  std::chrono::milliseconds shutdown_flush_timeout{15000};
};

struct CdcMetrics {
  std::map<std::string, uint64_t> changes_by_table;  // rows emitted (snapshot + stream)
  uint64_t in_flight = 0;
  uint64_t transactions = 0;
  Lsn confirmed_lsn;
  Lsn received_lsn;  // highest position the server reported (XLogData or keepalive)
  uint64_t lag_bytes = 0;
  double lag_seconds = 0;  // age of the oldest commit not yet confirmed; 0 when caught up
  uint64_t snapshot_rows = 0;
  bool snapshot_running = false;
  uint64_t reconnects = 0;
};

// Prometheus text exposition of the metrics:
//   splitstream_cdc_changes_total{table}          counter (rate() gives changes/s by table)
//   splitstream_cdc_transactions_total             counter
//   splitstream_cdc_in_flight                      gauge: records not yet acknowledged
//   splitstream_cdc_confirmed_lsn / _received_lsn  gauges (WAL positions as numbers)
//   splitstream_cdc_lag_bytes, splitstream_cdc_lag_seconds
//   splitstream_cdc_snapshot_rows, splitstream_cdc_snapshot_running,
//   splitstream_cdc_reconnects_total
std::string RenderPrometheus(const CdcMetrics& m);

class Cdc {
 public:
  // `emitter`, `tracker` and `clock` must outlive the Cdc; the emitter must have been built
  // with `tracker`.
  static std::unique_ptr<Cdc> Create(CdcOptions options, Emitter* emitter, AckTracker* tracker,
                                     Clock* clock);
  virtual ~Cdc() = default;
  virtual Status Run(const std::atomic<bool>& stop) = 0;
  virtual CdcMetrics Metrics() const = 0;
};

}  // namespace splitstream::pipeline
