// The CDC engine. See cdc.h for the contract; the comments here say why.
#include "splitstream/pipeline/cdc.h"

#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "splitstream/pg/pg.h"
#include "splitstream/pg/replication.h"
#include "splitstream/pgoutput/pgoutput.h"

namespace splitstream::pipeline {
namespace {

using std::chrono::milliseconds;
using Clk = std::chrono::steady_clock;

// Replication messages handled between two checks of the stop flag, the downstream state and
// the in-flight bound (which may therefore be exceeded by the records of one round).
constexpr int kMessagesPerRound = 256;

// Non-transactional logical messages with this prefix are our heartbeats.
constexpr std::string_view kHeartbeatPrefix = "splitstream_heartbeat";

// Records whether the initial snapshot of a slot completed; without it a crash during the
// snapshot would leave a slot that looks ready and a downstream missing rows.
constexpr std::string_view kStateTableDdl =
    "CREATE TABLE IF NOT EXISTS splitstream_cdc_state ("
    " slot_name text PRIMARY KEY,"
    " snapshot_lsn pg_lsn NOT NULL,"
    " snapshot_completed_at timestamptz NOT NULL DEFAULT now())";

debezium::Datum ToDatum(const pgoutput::Value& v) {
  switch (v.kind) {
    case pgoutput::ValueKind::kNull:
      return {debezium::DatumKind::kNull, {}};
    case pgoutput::ValueKind::kUnchangedToast:
      return {debezium::DatumKind::kUnchangedToast, {}};
    case pgoutput::ValueKind::kText:
    case pgoutput::ValueKind::kBinary:  // not requested (proto v1 sends text)
      return {debezium::DatumKind::kText, v.data};
  }
  return {debezium::DatumKind::kNull, {}};
}

class CdcImpl final : public Cdc {
 public:
  CdcImpl(CdcOptions options, Emitter* emitter, AckTracker* tracker, Clock* clock)
      : options_(std::move(options)), emitter_(emitter), tracker_(tracker), clock_(clock) {}

  Status Run(const std::atomic<bool>& stop) override;
  CdcMetrics Metrics() const override {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    CdcMetrics m = metrics_;
    for (const auto& [table, n] : change_counters_) {
      m.changes_by_table[table] = n->load(std::memory_order_relaxed);
    }
    m.in_flight = tracker_->InFlight();
    m.confirmed_lsn = tracker_->Confirmable();
    m.lag_bytes =
        m.received_lsn > m.confirmed_lsn ? m.received_lsn.value() - m.confirmed_lsn.value() : 0;
    return m;
  }

 private:
  Status Setup();
  Status PrepareSlotAndSnapshot(const std::atomic<bool>& stop);
  // Reads every table at `position` (the exported snapshot `snapshot_name`, or a new one when
  // empty). The records carry `record_lsn` as source.lsn: the slot's restart_lsn, below every
  // change the slot will stream, including the changes of a transaction that was open at the
  // snapshot and commits after it (those were written before `position`). ClickHouse keeps
  // the row with the highest position, so such a change must outrank the snapshot read.
  Status Snapshot(const std::string& snapshot_name, Lsn position, Lsn record_lsn,
                  const std::atomic<bool>& stop);
  Status WaitDelivered(std::string_view what);
  Status Stream(const std::atomic<bool>& stop);
  Status StreamSession(const std::atomic<bool>& stop);
  Status Handle(const pgoutput::XLogData& data);
  Status HandleChange(const TableInfo& table, debezium::Op op, Lsn lsn,
                      const std::vector<pgoutput::Value>* old_tuple,
                      const std::vector<pgoutput::Value>* new_tuple, bool full_old_row = false);
  Status SendStatus(bool reply_requested);
  Status EmitHeartbeatMessage();
  Result<std::unique_ptr<TableInfo>> LoadTableFromCatalog(const std::string& qualified);
  Result<std::unordered_set<std::string>> PrimaryKey(uint32_t oid);
  // Per row: a relaxed increment of the table's counter (the lookup by name happens when the
  // table changes, not on every row).
  void CountChange(const TableInfo& table, uint64_t n = 1) {
    if (table.id != counted_table_id_) {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      auto& counter = change_counters_[table.QualifiedName()];
      if (!counter) counter = std::make_unique<std::atomic<uint64_t>>(0);
      counted_ = counter.get();
      counted_table_id_ = table.id;
    }
    counted_->fetch_add(n, std::memory_order_relaxed);
  }
  bool SleepUnlessStopped(milliseconds d, const std::atomic<bool>& stop) {
    auto until = Clk::now() + d;
    while (Clk::now() < until) {
      if (stop.load()) return false;
      std::this_thread::sleep_for(std::min<milliseconds>(milliseconds(50), d));
    }
    return !stop.load();
  }

  const CdcOptions options_;
  Emitter* const emitter_;
  AckTracker* const tracker_;
  Clock* const clock_;

  std::unique_ptr<pg::Connection> sql_;
  std::unique_ptr<pg::ReplicationConnection> repl_;
  uint64_t next_table_id_ = 1;

  // Stream state (Run's thread only).
  pgoutput::Message msg_;
  pgoutput::RelationCache relations_;
  std::unordered_map<uint32_t, std::unique_ptr<TableInfo>> tables_;  // by relation oid
  std::unordered_map<uint32_t, std::string> custom_types_;
  bool in_tx_ = false;
  uint32_t xid_ = 0;
  int64_t commit_time_us_ = 0;
  Lsn last_commit_lsn_;
  Lsn received_;
  Lsn last_sent_flush_;
  std::vector<debezium::Datum> before_, after_;
  std::deque<std::pair<Lsn, int64_t>> unconfirmed_commits_;  // commit end LSN, commit time
  Clk::time_point next_status_;
  Clk::time_point last_status_;
  Clk::time_point next_heartbeat_;

  mutable std::mutex metrics_mu_;
  CdcMetrics metrics_;  // GUARDED_BY(metrics_mu_); changes_by_table stays empty
  // Rows emitted by table; the map is GUARDED_BY(metrics_mu_), the counters are atomics that
  // Run's thread increments without the lock.
  std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>> change_counters_;
  uint64_t counted_table_id_ = 0;  // TableInfo::id whose counter counted_ is (Run's thread)
  std::atomic<uint64_t>* counted_ = nullptr;
};

Status CdcImpl::Run(const std::atomic<bool>& stop) {
  SPLITSTREAM_RETURN_IF_ERROR(Setup());
  SPLITSTREAM_RETURN_IF_ERROR(PrepareSlotAndSnapshot(stop));
  return Stream(stop);
}

// Publication and state table, over an ordinary connection.
Status CdcImpl::Setup() {
  SPLITSTREAM_ASSIGN_OR_RETURN(sql_, pg::Connection::Open(options_.pg_dsn));
  SPLITSTREAM_RETURN_IF_ERROR(sql_->ExecScript(kStateTableDdl));
  SPLITSTREAM_ASSIGN_OR_RETURN(
      pg::Rows pub,
      sql_->Exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {options_.publication}));
  if (pub.empty()) {
    std::string list;
    for (const std::string& t : options_.tables) {
      auto dot = t.find('.');
      if (!list.empty()) list += ", ";
      list += dot == std::string::npos
                  ? pg::QuoteIdent(t)
                  : pg::QuoteIdent(t.substr(0, dot)) + "." + pg::QuoteIdent(t.substr(dot + 1));
    }
    std::string ddl =
        fmt::format("CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)",
                    pg::QuoteIdent(options_.publication), list);
    Status st = sql_->ExecScript(ddl);
    if (!st.ok()) return st.WithContext("creating publication " + options_.publication);
    spdlog::info("cdc: created publication {} for {}", options_.publication, list);
  }
  return Status::Ok();
}

Status CdcImpl::PrepareSlotAndSnapshot(const std::atomic<bool>& stop) {
  // A slot held by a walsender whose client just died is released when the server notices;
  // wait a little before calling it taken.
  pg::SlotState slot;
  const auto give_up = std::chrono::steady_clock::now() + options_.slot_wait;
  for (int attempt = 0;; ++attempt) {
    SPLITSTREAM_ASSIGN_OR_RETURN(slot, pg::ReadSlotState(*sql_, options_.slot));
    if (!slot.exists || !slot.active || std::chrono::steady_clock::now() >= give_up) break;
    if (attempt == 0) {
      spdlog::warn("cdc: slot {} is in use by PostgreSQL backend pid {}; waiting up to {} ms",
                   options_.slot, slot.active_pid, options_.slot_wait.count());
    }
    if (!SleepUnlessStopped(milliseconds(500), stop)) return Status::Ok();
  }
  if (slot.exists && slot.active) {
    return Status::FailedPrecondition(fmt::format(
        "replication slot {} is in use by another consumer (PostgreSQL backend pid {}); stop it "
        "or choose another slot with --slot",
        options_.slot, slot.active_pid));
  }
  if (slot.exists && slot.wal_status == "lost") {
    return Status::FailedPrecondition(fmt::format(
        "replication slot {} was invalidated by PostgreSQL (the WAL it needed was removed, see "
        "max_slot_wal_keep_size); changes since {} are gone. Drop it with SELECT "
        "pg_drop_replication_slot('{}') and restart: a new snapshot will be taken",
        options_.slot, LsnToString(slot.confirmed_flush_lsn), options_.slot));
  }
  if (slot.exists && slot.plugin != "pgoutput") {
    return Status::FailedPrecondition(fmt::format(
        "replication slot {} uses plugin {}, not pgoutput", options_.slot, slot.plugin));
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(repl_, pg::ReplicationConnection::Open(options_.pg_dsn));
  SPLITSTREAM_ASSIGN_OR_RETURN(pg::SystemIdentity id, repl_->IdentifySystem());
  spdlog::info("cdc: system {} timeline {} at {} (database {})", id.system_id, id.timeline,
               LsnToString(id.xlogpos), id.dbname);

  SPLITSTREAM_ASSIGN_OR_RETURN(
      pg::Rows state,
      sql_->Exec("SELECT 1 FROM splitstream_cdc_state WHERE slot_name = $1", {options_.slot}));
  const bool snapshot_done = !state.empty();

  switch (options_.snapshot_mode) {
    case SnapshotMode::kNever:
      if (!slot.exists) {
        SPLITSTREAM_ASSIGN_OR_RETURN(pg::CreatedSlot created,
                                     repl_->CreateSlot(options_.slot, false));
        spdlog::info("cdc: created slot {} at {} (snapshot.mode=never)", options_.slot,
                     LsnToString(created.consistent_point));
      }
      return Status::Ok();
    case SnapshotMode::kInitial:
      if (slot.exists && snapshot_done) return Status::Ok();
      if (slot.exists) {
        // The slot outlived an unfinished snapshot: start over so no row is missed.
        spdlog::warn("cdc: slot {} exists but its initial snapshot never completed; recreating it",
                     options_.slot);
        SPLITSTREAM_RETURN_IF_ERROR(repl_->DropSlot(options_.slot));
      } else if (snapshot_done) {
        spdlog::warn("cdc: slot {} is gone (dropped?); taking a new snapshot", options_.slot);
      }
      break;
    case SnapshotMode::kAlways:
      if (slot.exists) {
        // Snapshot now, then stream from the slot: changes between its position and the
        // snapshot arrive twice (duplicates allowed), none is missed.
        SPLITSTREAM_ASSIGN_OR_RETURN(pg::Rows pos, sql_->Exec("SELECT pg_current_wal_lsn()::text"));
        return Snapshot("", ParseLsn(pos.text(0, 0)).value_or(Lsn(0)), slot.restart_lsn, stop);
      }
      break;
  }
  SPLITSTREAM_RETURN_IF_ERROR(
      sql_->Exec("DELETE FROM splitstream_cdc_state WHERE slot_name = $1", {options_.slot})
          .status());
  SPLITSTREAM_ASSIGN_OR_RETURN(pg::CreatedSlot created, repl_->CreateSlot(options_.slot, true));
  spdlog::info("cdc: created slot {} at {}; snapshot {}", options_.slot,
               LsnToString(created.consistent_point), created.snapshot_name);
  SPLITSTREAM_ASSIGN_OR_RETURN(pg::SlotState made, pg::ReadSlotState(*sql_, options_.slot));
  return Snapshot(created.snapshot_name, created.consistent_point, made.restart_lsn, stop);
}

Result<std::unordered_set<std::string>> CdcImpl::PrimaryKey(uint32_t oid) {
  SPLITSTREAM_ASSIGN_OR_RETURN(
      pg::Rows rows,
      sql_->Exec("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                 "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::oid AND i.indisprimary",
                 {std::to_string(oid)}));
  std::unordered_set<std::string> key;
  for (size_t r = 0; r < rows.size(); ++r) key.insert(std::string(rows.text(r, 0)));
  return key;
}

Result<std::unique_ptr<TableInfo>> CdcImpl::LoadTableFromCatalog(const std::string& qualified) {
  SPLITSTREAM_ASSIGN_OR_RETURN(
      pg::Rows rel,
      sql_->Exec("SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON "
                 "n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                 {qualified}));
  if (rel.empty()) return Status::NotFound("table " + qualified + " does not exist");
  auto table = std::make_unique<TableInfo>();
  table->id = next_table_id_++;
  table->oid = static_cast<uint32_t>(std::stoul(std::string(rel.text(0, 0))));
  table->schema.schema = rel.text(0, 1);
  table->schema.table = rel.text(0, 2);
  SPLITSTREAM_ASSIGN_OR_RETURN(auto key, PrimaryKey(table->oid));
  SPLITSTREAM_ASSIGN_OR_RETURN(
      pg::Rows cols,
      sql_->Exec("SELECT a.attname, a.atttypid, a.atttypmod, t.typtype, t.typname FROM "
                 "pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1::oid "
                 "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                 {std::to_string(table->oid)}));
  for (size_t r = 0; r < cols.size(); ++r) {
    debezium::Column c;
    c.name = cols.text(r, 0);
    c.type_oid = static_cast<uint32_t>(std::stoul(std::string(cols.text(r, 1))));
    c.type_modifier = std::stoi(std::string(cols.text(r, 2)));
    c.key = key.contains(c.name);
    if (cols.text(r, 3) == "e") table->schema.custom_types[c.type_oid] = cols.text(r, 4);
    table->schema.columns.push_back(std::move(c));
  }
  return table;
}

Status CdcImpl::WaitDelivered(std::string_view what) {
  for (;;) {
    if (auto fatal = emitter_->Fatal()) return fatal->WithContext(what);
    if (auto failure = tracker_->failure()) return failure->WithContext(what);
    Status st = emitter_->Flush(milliseconds(5000));
    if (tracker_->InFlight() == 0 && !tracker_->failure()) return Status::Ok();
    spdlog::info("cdc: {}: waiting for {} records to be acknowledged ({})", what,
                 tracker_->InFlight(), st.ok() ? "flushing" : st.message());
  }
}

// Reads every table inside one REPEATABLE READ transaction on the slot's exported snapshot
// (or a fresh one), emitting op "r" records with Debezium's snapshot markers.
Status CdcImpl::Snapshot(const std::string& snapshot_name, Lsn position, Lsn record_lsn,
                         const std::atomic<bool>& stop) {
  {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    metrics_.snapshot_running = true;
  }
  SPLITSTREAM_RETURN_IF_ERROR(
      sql_->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").status());
  if (!snapshot_name.empty()) {
    SPLITSTREAM_RETURN_IF_ERROR(
        sql_->Exec("SET TRANSACTION SNAPSHOT " + pg::QuoteLiteral(snapshot_name)).status());
  }
  const int64_t started_us = clock_->WallMicros();
  std::vector<std::unique_ptr<TableInfo>> tables;
  std::vector<int64_t> estimates;
  int64_t total_estimate = 0;
  for (const std::string& name : options_.tables) {
    auto table = LoadTableFromCatalog(name);
    if (!table.ok()) {
      (void)sql_->Exec("ROLLBACK");
      return table.status();
    }
    auto est = sql_->Exec(
        "SELECT greatest(coalesce(sum(greatest(c.reltuples, 0)), 0), 0)::bigint FROM pg_class c "
        "WHERE c.oid = $1::oid OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = "
        "$1::oid)",
        {std::to_string((*table)->oid)});
    int64_t e = est.ok() && !est->empty() ? std::stoll(std::string(est->text(0, 0))) : 0;
    estimates.push_back(e);
    total_estimate += e;
    tables.push_back(std::move(*table));
  }

  // One row of lookahead decides the markers: "first" for the very first record,
  // "first_in_data_collection" / "last_in_data_collection" at table edges, "last" at the end.
  struct Pending {
    const TableInfo* table = nullptr;
    std::vector<std::optional<std::string>> values;
    bool first_overall = false;
    bool first_in_table = false;
    bool last_in_table = false;
  };
  std::optional<Pending> pending;
  uint64_t emitted = 0;
  auto emit_pending = [&](bool last_overall) -> Status {
    Pending& p = *pending;
    std::string_view marker = "true";
    if (last_overall) {
      marker = "last";
    } else if (p.first_overall) {
      marker = "first";
    } else if (p.last_in_table) {
      marker = "last_in_data_collection";
    } else if (p.first_in_table) {
      marker = "first_in_data_collection";
    }
    after_.clear();
    for (const auto& v : p.values) {
      after_.push_back(v ? debezium::Datum{debezium::DatumKind::kText, *v}
                         : debezium::Datum{debezium::DatumKind::kNull, {}});
    }
    RowChange change;
    change.table = p.table;
    change.op = debezium::Op::kRead;
    change.after = after_;
    change.source.commit_time_us = started_us;
    change.source.snapshot = marker;
    change.source.last_commit_lsn = Lsn(0);
    change.source.lsn = record_lsn;
    change.source.tx_id = 0;
    SPLITSTREAM_RETURN_IF_ERROR(emitter_->Emit(change));
    CountChange(*p.table);
    ++emitted;
    return Status::Ok();
  };

  auto last_progress = Clk::now();
  Status result;
  for (size_t ti = 0; ti < tables.size() && result.ok(); ++ti) {
    const TableInfo& table = *tables[ti];
    const std::string qualified =
        pg::QuoteIdent(table.schema.schema) + "." + pg::QuoteIdent(table.schema.table);
    result =
        sql_->Exec("DECLARE splitstream_snapshot NO SCROLL CURSOR FOR SELECT * FROM " + qualified)
            .status();
    bool first_in_table = true;
    uint64_t table_rows = 0;
    while (result.ok()) {
      if (stop.load()) {
        result = Status::Unavailable("stopped during the snapshot");
        break;
      }
      auto batch = sql_->Exec("FETCH " + std::to_string(options_.snapshot_fetch_rows) +
                              " FROM splitstream_snapshot");
      if (!batch.ok()) {
        result = batch.status();
        break;
      }
      if (batch->empty()) break;
      for (size_t r = 0; r < batch->size() && result.ok(); ++r) {
        if (pending) result = emit_pending(false);
        Pending next;
        next.table = &table;
        next.first_overall = emitted == 0 && !pending;
        next.first_in_table = first_in_table;
        first_in_table = false;
        next.values.reserve(batch->columns().size());
        for (size_t c = 0; c < batch->columns().size(); ++c) next.values.push_back(batch->at(r, c));
        pending = std::move(next);
        ++table_rows;
      }
      // Wait here while downstream is behind, so memory stays bounded.
      while (result.ok() && tracker_->InFlight() >= options_.max_in_flight) {
        SPLITSTREAM_RETURN_IF_ERROR(emitter_->Poll());
        if (auto fatal = emitter_->Fatal()) result = *fatal;
        std::this_thread::sleep_for(milliseconds(2));
      }
      if (Clk::now() - last_progress > std::chrono::seconds(2)) {
        last_progress = Clk::now();
        double secs = (clock_->WallMicros() - started_us) / 1e6;
        spdlog::info("cdc: snapshot {}: {} rows of ~{} ({:.0f} rows/s)", table.QualifiedName(),
                     emitted + 1, total_estimate, secs > 0 ? (emitted + 1) / secs : 0.0);
        std::lock_guard<std::mutex> lock(metrics_mu_);
        metrics_.snapshot_rows = emitted + 1;
      }
    }
    if (pending && pending->table == &table) pending->last_in_table = true;
    if (result.ok()) result = sql_->Exec("CLOSE splitstream_snapshot").status();
    spdlog::info("cdc: snapshot of {}: {} rows", table.QualifiedName(), table_rows);
  }
  if (result.ok() && pending) result = emit_pending(true);
  (void)sql_->Exec(result.ok() ? "COMMIT" : "ROLLBACK");
  SPLITSTREAM_RETURN_IF_ERROR(result.WithContext("snapshot"));
  SPLITSTREAM_RETURN_IF_ERROR(emitter_->Poll());
  SPLITSTREAM_RETURN_IF_ERROR(WaitDelivered("snapshot"));
  SPLITSTREAM_RETURN_IF_ERROR(
      sql_->Exec("INSERT INTO splitstream_cdc_state (slot_name, snapshot_lsn) VALUES ($1, "
                 "$2::pg_lsn) ON CONFLICT (slot_name) DO UPDATE SET snapshot_lsn = "
                 "excluded.snapshot_lsn, snapshot_completed_at = now()",
                 {options_.slot, LsnToString(position)})
          .status());
  double secs = (clock_->WallMicros() - started_us) / 1e6;
  spdlog::info("cdc: snapshot complete: {} rows in {:.1f} s at {}", emitted, secs,
               LsnToString(position));
  std::lock_guard<std::mutex> lock(metrics_mu_);
  metrics_.snapshot_running = false;
  metrics_.snapshot_rows = emitted;
  return Status::Ok();
}

Status CdcImpl::Stream(const std::atomic<bool>& stop) {
  milliseconds backoff(100);
  for (;;) {
    Status st = StreamSession(stop);
    if (stop.load() || st.ok()) break;
    if (auto fatal = emitter_->Fatal()) return *fatal;
    if (auto failure = tracker_->failure()) {
      // A record was not delivered (e.g. the broker lost a topic while restarting). Nothing
      // after it was confirmed: let what is in flight settle, forget it, and replay the
      // stream from the confirmed position (duplicates possible, no loss).
      spdlog::warn("cdc: {}; replaying from {}", failure->ToString(),
                   LsnToString(tracker_->Confirmable()));
      (void)emitter_->Flush(milliseconds(30000));
      tracker_->Restart();
      unconfirmed_commits_.clear();
      in_tx_ = false;
      st = Status::Unavailable("replaying after a failed delivery");
    }
    if (st.code() != StatusCode::kUnavailable) return st;
    // Connection lost: let downstream catch up (so the confirmed position is current), then
    // reconnect and resume from the slot.
    spdlog::warn("cdc: {}; reconnecting in {} ms", st.ToString(), backoff.count());
    repl_.reset();
    {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      ++metrics_.reconnects;
    }
    if (!SleepUnlessStopped(backoff, stop)) break;
    backoff = std::min(backoff * 2, milliseconds(10000));
    auto repl = pg::ReplicationConnection::Open(options_.pg_dsn);
    if (!repl.ok()) {
      spdlog::warn("cdc: {}", repl.status().ToString());
      continue;
    }
    repl_ = std::move(*repl);
    if (!sql_->Healthy()) (void)sql_->Reset();
    backoff = milliseconds(100);
  }
  // SIGTERM: stop reading, deliver what is in flight, confirm, exit.
  spdlog::info("cdc: stopping: flushing {} records in flight", tracker_->InFlight());
  Status flushed = emitter_->Flush(options_.shutdown_flush_timeout);
  if (!flushed.ok()) spdlog::warn("cdc: flush at shutdown: {}", flushed.ToString());
  if (repl_) {
    Status st = SendStatus(false);
    if (!st.ok()) spdlog::warn("cdc: final status update: {}", st.ToString());
  }
  spdlog::info("cdc: stopped; confirmed {}", LsnToString(tracker_->Confirmable()));
  if (auto fatal = emitter_->Fatal()) return *fatal;
  if (!flushed.ok()) {
    return Status::Unavailable(
        "stopped with changes undelivered (the next run sends them again "
        "from the confirmed position): " +
        flushed.ToString());
  }
  return Status::Ok();
}

Status CdcImpl::StreamSession(const std::atomic<bool>& stop) {
  if (!repl_) {
    SPLITSTREAM_ASSIGN_OR_RETURN(repl_, pg::ReplicationConnection::Open(options_.pg_dsn));
  }
  const Lsn start = tracker_->Confirmable();
  // After a reconnect the walsender of the previous connection may still hold the slot for
  // a moment.
  for (int attempt = 0;; ++attempt) {
    Status st = repl_->StartReplication(options_.slot, start, {options_.publication});
    if (st.ok()) break;
    if (st.code() != StatusCode::kFailedPrecondition || attempt >= 60) return st;
    if (!SleepUnlessStopped(milliseconds(500), stop)) return Status::Ok();
    SPLITSTREAM_ASSIGN_OR_RETURN(repl_, pg::ReplicationConnection::Open(options_.pg_dsn));
  }
  repl_->SetBatchWait(options_.read_batch_wait);
  spdlog::info("cdc: streaming from slot {} (requested {})", options_.slot, LsnToString(start));
  in_tx_ = false;
  next_status_ = Clk::now() + options_.status_interval;
  next_heartbeat_ = Clk::now() + options_.heartbeat_interval;
  while (!stop.load()) {
    if (auto fatal = emitter_->Fatal()) return *fatal;
    if (auto failure = tracker_->failure()) {
      return failure->WithContext("a change could not be delivered");
    }
    if (tracker_->InFlight() < options_.max_in_flight) {
      // Handle what has arrived, up to a round's worth, before the checks above and the
      // status below run again: they take locks, and would otherwise cost as much per
      // message as decoding it. Only the first read of a round waits.
      for (int i = 0; i < kMessagesPerRound; ++i) {
        SPLITSTREAM_ASSIGN_OR_RETURN(auto copy,
                                     repl_->Read(i == 0 ? milliseconds(100) : milliseconds(0)));
        if (!copy) break;
        SPLITSTREAM_ASSIGN_OR_RETURN(pgoutput::StreamMessage sm,
                                     pgoutput::DecodeStreamMessage(*copy));
        if (auto* data = std::get_if<pgoutput::XLogData>(&sm)) {
          received_ = std::max(received_, data->wal_end);
          SPLITSTREAM_RETURN_IF_ERROR(Handle(*data));
        } else {
          const auto& ka = std::get<pgoutput::Keepalive>(sm);
          received_ = std::max(received_, ka.wal_end);
          if (!in_tx_) tracker_->Idle(ka.wal_end);
          if (ka.reply_requested) SPLITSTREAM_RETURN_IF_ERROR(SendStatus(false));
        }
      }
    } else {
      // Downstream is behind: pause reading (the server's send buffer fills and it waits).
      std::this_thread::sleep_for(milliseconds(2));
    }
    SPLITSTREAM_RETURN_IF_ERROR(emitter_->Poll());
    const auto now = Clk::now();
    // Tell the server promptly when the confirmed position moved (it may then recycle WAL,
    // and a waiting pg_replication_slots reader sees it), but at most every 100 ms.
    if (now >= next_status_ ||
        (now >= last_status_ + milliseconds(100) && tracker_->Confirmable() != last_sent_flush_)) {
      SPLITSTREAM_RETURN_IF_ERROR(SendStatus(false));
    }
    if (options_.heartbeat_interval.count() > 0 && now >= next_heartbeat_) {
      next_heartbeat_ = now + options_.heartbeat_interval;
      Status st = EmitHeartbeatMessage();
      if (!st.ok()) spdlog::warn("cdc: heartbeat: {}", st.ToString());
    }
  }
  return Status::Ok();
}

Status CdcImpl::EmitHeartbeatMessage() {
  if (!sql_->Healthy()) SPLITSTREAM_RETURN_IF_ERROR(sql_->Reset());
  return sql_
      ->Exec("SELECT pg_logical_emit_message(false, $1, $2)",
             {std::string(kHeartbeatPrefix), std::to_string(clock_->WallMicros() / 1000)})
      .status();
}

Status CdcImpl::SendStatus(bool reply_requested) {
  const Lsn flush = tracker_->Confirmable();
  std::string msg = pgoutput::EncodeStandbyStatus(std::max(received_, flush), flush, flush,
                                                  clock_->WallMicros(), reply_requested);
  SPLITSTREAM_RETURN_IF_ERROR(repl_->Send(msg));
  last_status_ = Clk::now();
  next_status_ = last_status_ + options_.status_interval;
  if (flush != last_sent_flush_) {
    spdlog::debug("cdc: confirmed {}", LsnToString(flush));
    last_sent_flush_ = flush;
  }
  while (!unconfirmed_commits_.empty() && unconfirmed_commits_.front().first <= flush) {
    unconfirmed_commits_.pop_front();
  }
  std::lock_guard<std::mutex> lock(metrics_mu_);
  metrics_.received_lsn = received_;
  metrics_.lag_seconds = unconfirmed_commits_.empty()
                             ? 0.0
                             : (clock_->WallMicros() - unconfirmed_commits_.front().second) / 1e6;
  return Status::Ok();
}

Status CdcImpl::Handle(const pgoutput::XLogData& data) {
  SPLITSTREAM_RETURN_IF_ERROR(pgoutput::Decode(data.payload, &msg_));
  if (auto* m = std::get_if<pgoutput::Insert>(&msg_)) {
    auto it = tables_.find(m->relation_oid);
    if (it == tables_.end()) return Status::DataLoss("Insert for unknown relation");
    return HandleChange(*it->second, debezium::Op::kCreate, data.wal_start, nullptr, &m->new_tuple);
  }
  if (auto* m = std::get_if<pgoutput::Update>(&msg_)) {
    auto it = tables_.find(m->relation_oid);
    if (it == tables_.end()) return Status::DataLoss("Update for unknown relation");
    return HandleChange(*it->second, debezium::Op::kUpdate, data.wal_start,
                        m->old_kind ? &m->old_tuple : nullptr, &m->new_tuple, m->old_kind == 'O');
  }
  if (auto* m = std::get_if<pgoutput::Delete>(&msg_)) {
    auto it = tables_.find(m->relation_oid);
    if (it == tables_.end()) return Status::DataLoss("Delete for unknown relation");
    return HandleChange(*it->second, debezium::Op::kDelete, data.wal_start, &m->old_tuple, nullptr);
  }
  if (auto* m = std::get_if<pgoutput::Begin>(&msg_)) {
    in_tx_ = true;
    xid_ = m->xid;
    commit_time_us_ = m->commit_time_us;
    return emitter_->BeginTransaction(m->xid, m->final_lsn, m->commit_time_us);
  }
  if (auto* m = std::get_if<pgoutput::Commit>(&msg_)) {
    in_tx_ = false;
    SPLITSTREAM_RETURN_IF_ERROR(emitter_->EndTransaction(xid_, m->commit_lsn, m->commit_time_us));
    // The slot may skip this transaction on restart once its end position is confirmed.
    tracker_->Commit(m->end_lsn);
    unconfirmed_commits_.emplace_back(m->end_lsn, m->commit_time_us);
    last_commit_lsn_ = m->commit_lsn;
    std::lock_guard<std::mutex> lock(metrics_mu_);
    ++metrics_.transactions;
    return Status::Ok();
  }
  if (auto* m = std::get_if<pgoutput::Relation>(&msg_)) {
    const pgoutput::RelationInfo& rel = relations_.Apply(*m);
    SPLITSTREAM_ASSIGN_OR_RETURN(auto key, PrimaryKey(rel.oid));
    auto table = std::make_unique<TableInfo>();
    table->id = next_table_id_++;
    table->oid = rel.oid;
    table->schema.schema = rel.ns;
    table->schema.table = rel.name;
    table->schema.custom_types = custom_types_;
    for (const auto& c : rel.columns) {
      table->schema.columns.push_back(
          debezium::Column{c.name, c.type_oid, c.type_modifier, key.contains(c.name)});
    }
    tables_[rel.oid] = std::move(table);
    return Status::Ok();
  }
  if (auto* m = std::get_if<pgoutput::TypeMessage>(&msg_)) {
    custom_types_[m->oid] = std::string(m->name);
    return Status::Ok();
  }
  if (auto* m = std::get_if<pgoutput::Truncate>(&msg_)) {
    debezium::SourceInfo source{commit_time_us_, "false", last_commit_lsn_, data.wal_start, xid_};
    for (uint32_t oid : m->relation_oids) {
      auto it = tables_.find(oid);
      if (it == tables_.end()) return Status::DataLoss("Truncate of unknown relation");
      SPLITSTREAM_RETURN_IF_ERROR(emitter_->EmitTruncate(*it->second, source));
      CountChange(*it->second);
    }
    return Status::Ok();
  }
  if (auto* m = std::get_if<pgoutput::LogicalMessage>(&msg_)) {
    if (!m->transactional && m->prefix == kHeartbeatPrefix) {
      int64_t ts_ms = clock_->WallMicros() / 1000;
      SPLITSTREAM_RETURN_IF_ERROR(emitter_->EmitHeartbeat(ts_ms));
      // Nothing before this position is still to come once its records are delivered.
      if (!in_tx_) tracker_->Commit(m->lsn);
    }
    return Status::Ok();
  }
  return Status::Ok();  // Origin: nothing to emit
}

Status CdcImpl::HandleChange(const TableInfo& table, debezium::Op op, Lsn lsn,
                             const std::vector<pgoutput::Value>* old_tuple,
                             const std::vector<pgoutput::Value>* new_tuple, bool full_old_row) {
  before_.clear();
  after_.clear();
  if (old_tuple) {
    for (const auto& v : *old_tuple) before_.push_back(ToDatum(v));
  }
  if (new_tuple) {
    for (const auto& v : *new_tuple) after_.push_back(ToDatum(v));
  }
  const auto& cols = table.schema.columns;
  if ((!before_.empty() && before_.size() != cols.size()) ||
      (!after_.empty() && after_.size() != cols.size())) {
    return Status::DataLoss(
        fmt::format("{}: tuple has {} columns, relation has {}", table.QualifiedName(),
                    before_.empty() ? after_.size() : before_.size(), cols.size()));
  }
  if (full_old_row) {
    // REPLICA IDENTITY FULL: the old row carries every value, detoasted, so an unchanged
    // TOAST value of the new row is the old one (Debezium fills it the same way). Without
    // a full old row it stays the placeholder.
    for (size_t i = 0; i < after_.size(); ++i) {
      if (after_[i].kind == debezium::DatumKind::kUnchangedToast &&
          before_[i].kind != debezium::DatumKind::kUnchangedToast) {
        after_[i] = before_[i];
      }
    }
  }
  RowChange change;
  change.table = &table;
  change.source = debezium::SourceInfo{commit_time_us_, "false", last_commit_lsn_, lsn, xid_};
  if (op == debezium::Op::kUpdate && !before_.empty()) {
    // A changed primary key is a delete of the old key and a create of the new one, as
    // Debezium emits it.
    bool key_changed = false;
    for (size_t i = 0; i < cols.size(); ++i) {
      if (cols[i].key && before_[i].kind != debezium::DatumKind::kUnchangedToast &&
          (before_[i].kind != after_[i].kind || before_[i].text != after_[i].text)) {
        key_changed = true;
      }
    }
    if (key_changed) {
      change.op = debezium::Op::kDelete;
      change.before = before_;
      SPLITSTREAM_RETURN_IF_ERROR(emitter_->Emit(change));
      change.op = debezium::Op::kCreate;
      change.before = {};
      change.after = after_;
      SPLITSTREAM_RETURN_IF_ERROR(emitter_->Emit(change));
      CountChange(table, 2);
      return Status::Ok();
    }
  }
  change.op = op;
  change.before = before_;
  change.after = after_;
  SPLITSTREAM_RETURN_IF_ERROR(emitter_->Emit(change));
  CountChange(table);
  return Status::Ok();
}

}  // namespace

std::string RenderPrometheus(const CdcMetrics& m) {
  std::string out;
  out += "# HELP splitstream_cdc_changes_total Row changes emitted, by source table.\n";
  out += "# TYPE splitstream_cdc_changes_total counter\n";
  for (const auto& [table, n] : m.changes_by_table) {
    out += fmt::format("splitstream_cdc_changes_total{{table=\"{}\"}} {}\n", table, n);
  }
  auto gauge = [&out](std::string_view name, std::string_view type, std::string_view help,
                      auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  gauge("splitstream_cdc_transactions_total", "counter", "Transactions streamed.", m.transactions);
  gauge("splitstream_cdc_in_flight", "gauge", "Records handed downstream, not yet acknowledged.",
        m.in_flight);
  gauge("splitstream_cdc_confirmed_lsn", "gauge", "WAL position confirmed to PostgreSQL.",
        m.confirmed_lsn.value());
  gauge("splitstream_cdc_received_lsn", "gauge", "Highest WAL position the server reported.",
        m.received_lsn.value());
  gauge("splitstream_cdc_lag_bytes", "gauge", "Received minus confirmed WAL position.",
        m.lag_bytes);
  gauge("splitstream_cdc_lag_seconds", "gauge",
        "Age of the oldest commit not yet confirmed (0 when caught up).", m.lag_seconds);
  gauge("splitstream_cdc_snapshot_rows", "gauge", "Rows read by the current or last snapshot.",
        m.snapshot_rows);
  gauge("splitstream_cdc_snapshot_running", "gauge", "1 while a snapshot runs.",
        m.snapshot_running ? 1 : 0);
  gauge("splitstream_cdc_reconnects_total", "counter", "Replication connections re-established.",
        m.reconnects);
  return out;
}

Result<SnapshotMode> ParseSnapshotMode(std::string_view text) {
  if (text == "initial") return SnapshotMode::kInitial;
  if (text == "never") return SnapshotMode::kNever;
  if (text == "always") return SnapshotMode::kAlways;
  return Status::InvalidArgument(
      fmt::format("unknown snapshot mode \"{}\" (expected initial, never or always)", text),
      "snapshot_mode");
}

std::unique_ptr<Cdc> Cdc::Create(CdcOptions options, Emitter* emitter, AckTracker* tracker,
                                 Clock* clock) {
  return std::make_unique<CdcImpl>(std::move(options), emitter, tracker, clock);
}

}  // namespace splitstream::pipeline
