#include "splitstream/pipeline/clickhouse_emitter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "splitstream/debezium/decoder.h"
#include "splitstream/pipeline/clickhouse_writer.h"

namespace splitstream::pipeline {

using std::chrono::milliseconds;

struct ClickHouseEmitter::Impl {
  ClickHouseEmitterOptions options;
  std::unique_ptr<clickhouse::Client> client;
  AckTracker* tracker;
  Clock* clock;
  debezium::Encoder encoder;
  debezium::Decoder decoder;
  std::unique_ptr<ClickHouseWriter> writer;
  std::unordered_map<uint64_t, std::shared_ptr<const debezium::TableEncoding>> tables;
  std::string key_buf, value_buf;

  // Sequence numbers of everything buffered in the writer (and heartbeats after them), in
  // order; acknowledged together once a flush succeeds.
  std::vector<uint64_t> pending;
  std::chrono::steady_clock::time_point oldest;  // when the first pending record arrived
  std::chrono::steady_clock::time_point retry_at;
  milliseconds backoff{0};

  Impl(ClickHouseEmitterOptions opts, std::unique_ptr<clickhouse::Client> c, AckTracker* t,
       Clock* k)
      : options(std::move(opts)),
        client(std::move(c)),
        tracker(t),
        clock(k),
        encoder(EncoderFor(options.encoder)) {}

  static debezium::EncoderOptions EncoderFor(debezium::EncoderOptions o) {
    o.schemas_enable = true;
    if (o.decimal_mode == debezium::DecimalMode::kPrecise)
      o.decimal_mode = debezium::DecimalMode::kDouble;
    return o;
  }

  const debezium::TableEncoding& Prepare(const TableInfo& table) {
    auto it = tables.find(table.id);
    if (it == tables.end()) it = tables.emplace(table.id, encoder.Prepare(table.schema)).first;
    return *it->second;
  }

  int64_t NowNanos() const { return clock->WallMicros() * 1000; }

  // Decodes the envelope in value_buf (and key_buf) and hands it to the writer under a new
  // sequence number.
  Status Write(const debezium::TableEncoding& enc, bool has_key) {
    const uint64_t seq = tracker->Assign();
    std::optional<std::string_view> key;
    if (has_key) key = key_buf;
    auto rec = decoder.DecodeDebezium(enc.topic(), key, value_buf);
    Status st = rec.ok() ? AddWithRetry(*rec) : rec.status();
    if (!st.ok()) {
      tracker->Fail(seq, st);
      return st.WithContext("direct mode: " + enc.schema().schema + "." + enc.schema().table);
    }
    if (pending.empty()) oldest = clock->Now();
    pending.push_back(seq);
    if (writer->buffered_rows() >= options.flush_rows) TryFlush();
    return Status::Ok();
  }

  // Add only talks to ClickHouse for a new table or column (ALTER TABLE): retry outages a
  // while before giving up.
  Status AddWithRetry(const debezium::ChangeRecord& rec) {
    milliseconds wait{100};
    const auto deadline = clock->Now() + milliseconds(60000);
    for (;;) {
      Status st = writer->Add(rec);
      if (st.ok() || st.code() == StatusCode::kInvalidArgument || clock->Now() >= deadline) {
        return st;
      }
      spdlog::warn("direct mode: {}; retrying in {} ms", st.ToString(), wait.count());
      std::this_thread::sleep_for(wait);
      wait = std::min(wait * 2, options.max_backoff);
    }
  }

  // One flush attempt unless backing off. Returns whether everything pending is acknowledged.
  bool TryFlush() {
    if (pending.empty()) return true;
    const auto now = clock->Now();
    if (backoff.count() > 0 && now < retry_at) return false;
    Status st = writer->Flush();
    if (!st.ok()) {
      backoff =
          backoff.count() == 0 ? milliseconds(100) : std::min(backoff * 2, options.max_backoff);
      retry_at = now + backoff;
      spdlog::warn("direct mode: flush of {} rows failed: {}; retrying in {} ms", pending.size(),
                   st.ToString(), backoff.count());
      return false;
    }
    backoff = milliseconds(0);
    for (uint64_t seq : pending) tracker->Ack(seq);
    pending.clear();
    return true;
  }
};

ClickHouseEmitter::ClickHouseEmitter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClickHouseEmitter::~ClickHouseEmitter() = default;

Result<std::unique_ptr<ClickHouseEmitter>> ClickHouseEmitter::Create(
    ClickHouseEmitterOptions options, std::unique_ptr<clickhouse::Client> client,
    AckTracker* tracker, Clock* clock) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(client), tracker, clock);
  WriterOptions wopts;
  wopts.database = impl->options.database;
  SPLITSTREAM_ASSIGN_OR_RETURN(impl->writer,
                               ClickHouseWriter::Create(impl->client.get(), std::move(wopts)));
  return std::unique_ptr<ClickHouseEmitter>(new ClickHouseEmitter(std::move(impl)));
}

Status ClickHouseEmitter::BeginTransaction(uint32_t, Lsn, int64_t) { return Status::Ok(); }
Status ClickHouseEmitter::EndTransaction(uint32_t, Lsn, int64_t) { return Status::Ok(); }

Status ClickHouseEmitter::Emit(const RowChange& change) {
  Impl& d = *impl_;
  const debezium::TableEncoding& enc = d.Prepare(*change.table);
  const auto& key_row = change.after.empty() ? change.before : change.after;
  const bool has_key = d.encoder.EncodeKey(enc, key_row, &d.key_buf);
  Status st = d.encoder.EncodeValue(enc, change.op, change.before, change.after, change.source,
                                    d.NowNanos(), &d.value_buf);
  if (!st.ok()) {
    d.tracker->Fail(d.tracker->Assign(), st);
    return st;
  }
  return d.Write(enc, has_key);
}

Status ClickHouseEmitter::EmitTruncate(const TableInfo& table, const debezium::SourceInfo& source) {
  Impl& d = *impl_;
  const debezium::TableEncoding& enc = d.Prepare(table);
  Status st = d.encoder.EncodeTruncate(enc, source, d.NowNanos(), &d.value_buf);
  if (!st.ok()) {
    d.tracker->Fail(d.tracker->Assign(), st);
    return st;
  }
  return d.Write(enc, false);
}

Status ClickHouseEmitter::EmitHeartbeat(int64_t) {
  Impl& d = *impl_;
  // Nothing to write: acknowledged with the rows before it (or at once when there are none).
  const uint64_t seq = d.tracker->Assign();
  if (d.pending.empty()) {
    d.tracker->Ack(seq);
  } else {
    d.pending.push_back(seq);
  }
  return Status::Ok();
}

Status ClickHouseEmitter::Poll() {
  Impl& d = *impl_;
  if (d.pending.empty()) return Status::Ok();
  if (d.writer->buffered_rows() >= d.options.flush_rows ||
      d.clock->Now() - d.oldest >= d.options.flush_interval) {
    d.TryFlush();
  }
  return Status::Ok();
}

Status ClickHouseEmitter::Flush(std::chrono::milliseconds timeout) {
  Impl& d = *impl_;
  const auto deadline = d.clock->Now() + timeout;
  for (;;) {
    if (d.TryFlush()) return Status::Ok();
    const auto now = d.clock->Now();
    if (now >= deadline) {
      return Status::Unavailable(
          fmt::format("direct mode: {} records not yet in ClickHouse", d.pending.size()));
    }
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::max<std::chrono::steady_clock::duration>(d.retry_at - now, milliseconds(1)),
        deadline - now));
  }
}

std::optional<Status> ClickHouseEmitter::Fatal() const { return std::nullopt; }

std::map<std::string, uint64_t> ClickHouseEmitter::rows_written() const {
  return impl_->writer->rows_written();
}

}  // namespace splitstream::pipeline
