// Sink: Kafka change topics → a batching target (ClickHouse, or hourly JSON-lines files), the
// engine of `splitstream sink` (design.md section 5).
//
// The loop polls a group consumer and hands each message to a SinkTarget. A batch becomes due
// when it holds `batch_rows` rows or `batch_bytes` bytes, or its oldest message is
// `flush_interval` old; a due batch is flushed in the background (SinkTarget::BeginFlush)
// while the loop goes on decoding into the next one. One flush runs at a time: a batch that
// becomes due while its predecessor is still being written starts as soon as that write ends,
// and until then keeps taking messages, up to `max_batch_rows` rows or `batch_bytes` bytes
// (then the loop stops taking messages until the write ends).
//
// Catching up. When a batch reaches `batch_rows` while at least `batch_rows` more messages
// wait behind it (polled and not yet in a batch, plus what the consumer knows to be in Kafka
// beyond its position from the last fetch response: Consumer::CachedLag, no network call), the
// sink is behind (a replay, a restart after downtime, a burst). From then until a batch starts
// with nothing waiting behind it, a batch is due when it holds
//   - twice the rows of the batch before it (at least `batch_rows`): the INSERTs grow
//     geometrically from `batch_rows`, each overlapping the decoding of the next, or
//   - at least `batch_rows` rows and at least as many rows as still wait behind it, so the last
//     INSERTs of a backlog shrink again instead of ending with a large one, or
//   - any rows at all when nothing waits behind it (the rest of the backlog is written at once
//     rather than after the flush interval);
// and, as always, at `max_batch_rows` rows or `batch_bytes` bytes. A catch-up batch of at least
// `batch_rows` rows is due by age when its oldest message is `catch_up_flush_interval` old
// (5 s; never less than `flush_interval`): every row of a backlog is late by the backlog
// anyway, and with the shorter interval a backlog landed as a run of equal ~1 s batches that
// ClickHouse then spent about as much CPU merging as on inserting them (bench/sink/README.md,
// round 3). A backlog thus lands in few large INSERTs of growing sizes. A batch below
// `batch_rows` waits for what the lag promises at most until `flush_interval`, as it would
// without a backlog (a lag that never drains, e.g. offsets Poll
// never returns such as transaction markers, changes nothing else). Full batches are due at
// once, and while a failed write is retried (partitions paused) every retry writes all it has.
//
// So a batch is larger than `batch_rows` only when the previous INSERT was still running or
// the sink was behind by at least `batch_rows` messages; with traffic the sink keeps up with,
// a batch is due at `batch_rows` rows, `batch_bytes` bytes or `flush_interval` as before, and
// the `flush_interval` bound holds up to the duration of one INSERT; while catching up, the
// `catch_up_flush_interval` bound does.
//
// Kafka offsets are committed only after the target accepted the batch (the next offset of
// every partition that had a message in it), batch after batch in order, so a crash at any
// point re-reads from the last commit; targets must make replays invisible (ClickHouse:
// ReplacingMergeTree on the source position).
//
// A message the target rejects with InvalidArgument (cannot be decoded or mapped) goes to the
// dead-letter topic with its original key and value and the headers `error`, `source.topic`,
// `source.partition`, `source.offset`; its offset is committed with the batch only after the
// dead-letter produce was acknowledged.
//
// A failing flush (any other error) is retried with exponential backoff (initial_backoff …
// max_backoff), together with the batch that filled meanwhile; the assigned partitions are
// paused meanwhile (memory stays bounded to what was already fetched) and nothing is
// committed; they resume when a flush succeeds. On partition revocation the sink waits for the
// flush in flight, flushes and commits first; when that fails, the revoked partitions' offsets
// are dropped (their next owner re-reads them; the rows still buffered here may be written
// twice, which the target's versioning makes invisible).
//
// Thread safety: Run/RunOnce/Shutdown on one thread (the consumer's); Metrics() from any
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "splitstream/core/clock.h"
#include "splitstream/core/result.h"
#include "splitstream/core/status.h"
#include "splitstream/debezium/decoder.h"
#include "splitstream/kafka/kafka.h"

namespace splitstream::pipeline {

// Where the sink writes. Not thread-safe; used by the sink's thread only.
//
// Flushing comes in two forms. Flush writes everything buffered and waits. BeginFlush /
// FinishFlush let the sink go on adding messages while a batch is written: BeginFlush seals
// what is buffered and starts writing it; Add then fills the next batch; FinishFlush reports
// the write's result once it ended. At most one flush is in flight: the sink calls BeginFlush
// again only after FinishFlush returned a Status. buffered_rows/bytes count what is buffered
// and not being written. A target that cannot write in the background keeps the defaults,
// which run Flush inside BeginFlush.
class SinkTarget {
 public:
  virtual ~SinkTarget() = default;
  // Buffers one message. InvalidArgument: the message can never be written (it goes to the
  // dead-letter topic). Unavailable (e.g. a schema change that needs ClickHouse): retried like
  // a failed flush, offering the same message again, in order. Any other error stops the sink.
  virtual Status Add(const kafka::Message& message) = 0;
  virtual size_t buffered_rows() const = 0;
  virtual size_t buffered_bytes() const = 0;
  // Writes everything buffered (after waiting for a flush in flight). On failure the buffers
  // are kept for a retry.
  virtual Status Flush() = 0;
  // Starts writing everything buffered; see above.
  virtual void BeginFlush() { finished_ = Flush(); }
  // The result of the flush BeginFlush started: waits up to `wait` (milliseconds::max(): until
  // it ends); nullopt while it runs or when none was started. On failure the rows of that
  // flush stay buffered and the next flush writes them first.
  virtual std::optional<Status> FinishFlush(std::chrono::milliseconds /*wait*/) {
    return std::exchange(finished_, std::nullopt);
  }
  // Rows written so far, by table (or topic).
  virtual std::map<std::string, uint64_t> rows_written() const = 0;

  // Decode-ahead (optional). The sink announces the messages it will Add next, in that order; a
  // target may start preparing them (decoding) on other threads, and returns how many of them
  // (a prefix) it took; the default takes none. Announced messages stay alive and unchanged
  // until SettlePrepared returns, after which the target holds no reference to them. Add of the
  // next announced message uses what was prepared; Add of any other message (the sink dropped
  // announced ones, e.g. on a partition revocation) discards everything prepared.
  virtual size_t Prepare(std::span<const kafka::Message* const> /*upcoming*/) { return 0; }
  virtual void SettlePrepared() {}

 private:
  std::optional<Status> finished_;  // the default BeginFlush's result
};

// The ClickHouse side of a ChangeTarget: implemented by pipeline::ClickHouseWriter, an interface
// so that the sink is testable with a fake. Same contract as ClickHouseWriter (including BeginFlush
// / FinishFlush): Add returns InvalidArgument for a change that cannot be mapped.
class ChangeWriter {
 public:
  virtual ~ChangeWriter() = default;
  virtual Status Add(const debezium::ChangeRecord& change) = 0;
  virtual size_t buffered_rows() const = 0;
  virtual size_t buffered_bytes() const = 0;
  virtual Status Flush() = 0;
  virtual void BeginFlush() = 0;
  virtual std::optional<Status> FinishFlush(std::chrono::milliseconds wait) = 0;
  virtual std::map<std::string, uint64_t> rows_written() const = 0;
};

class DecodeAhead;  // src/decode_ahead.h

// A SinkTarget that decodes Debezium / CockroachDB changefeed messages (debezium::Decoder) and
// hands row changes and truncates to a ChangeWriter. Tombstones, changefeed `resolved`
// messages and logical messages write nothing. A message that does not decode is
// InvalidArgument ("decode: ..."). Does not own `writer`. The Kafka key is decoded only for
// records without an `after` image (debezium::KeyDecoding::kUnlessAfter): the writer reads it
// only for a delete without `before`, so a malformed key on an insert or update is not an error.
//
// With `decode_ahead` (the default), messages the sink announces (Prepare) are decoded by a
// worker thread while the sink's thread encodes the ones before them (src/decode_ahead.h): the
// decoding is more than half of the sink's CPU per message, and it was its one busy thread.
class ChangeTarget final : public SinkTarget {
 public:
  explicit ChangeTarget(ChangeWriter* writer, bool decode_ahead = true);
  ~ChangeTarget() override;
  Status Add(const kafka::Message& message) override;
  size_t buffered_rows() const override { return writer_->buffered_rows(); }
  size_t buffered_bytes() const override { return writer_->buffered_bytes(); }
  Status Flush() override { return writer_->Flush(); }
  void BeginFlush() override { writer_->BeginFlush(); }
  std::optional<Status> FinishFlush(std::chrono::milliseconds wait) override {
    return writer_->FinishFlush(wait);
  }
  std::map<std::string, uint64_t> rows_written() const override { return writer_->rows_written(); }
  size_t Prepare(std::span<const kafka::Message* const> upcoming) override;
  void SettlePrepared() override;

  // How every decoder of a ChangeTarget decodes.
  static constexpr debezium::DecoderOptions kDecoderOptions{
      .key = debezium::KeyDecoding::kUnlessAfter};

 private:
  Status Write(const debezium::ChangeRecord& change);

  ChangeWriter* writer_;
  debezium::Decoder decoder_;  // this thread's: messages not announced, and its share of those
  std::unique_ptr<DecodeAhead> ahead_;  // uses decoder_; declared after it
  debezium::ChangeRecord change_;       // reused for every message not decoded ahead
};

// The `--to files:DIR` target: hourly JSON-lines files DIR/{topic}/{YYYY-MM-DD}/{HH}.jsonl, one
// line {"topic","partition","offset","timestamp_ms","key","value"} per message, fsynced on
// Flush (see src/file_archive.h for the exact format and the restart caveat). `clock` must
// outlive the target.
std::unique_ptr<SinkTarget> MakeFileArchive(std::string dir, Clock* clock);

struct SinkOptions {
  std::string dlq_topic;  // "{prefix}.dlq"; empty: poison messages fail the sink instead
  size_t batch_rows = 10000;
  size_t batch_bytes = 64 << 20;
  std::chrono::milliseconds flush_interval{1000};
  // The age at which a catch-up batch of at least batch_rows rows is due (top of this file).
  std::chrono::milliseconds catch_up_flush_interval{5000};
  // How far a batch may grow while the previous one is still being written or while catching
  // up (see the top of this file). 1 000 000 stays below ClickHouse's max_insert_block_size
  // (1 048 576), so one batch of a table is one block, inserted atomically.
  size_t max_batch_rows = 1000000;
  size_t poll_max_messages = 10000;
  std::chrono::milliseconds poll_timeout{100};
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10000};
  // How long the DLQ producer may take to acknowledge before the flush counts as failed.
  std::chrono::milliseconds dlq_timeout{10000};
  // Consumer lag is refreshed for the metrics this often (it asks the brokers).
  std::chrono::milliseconds lag_interval{5000};
  // On SIGTERM: the bound of Shutdown as a whole. The flush and its retries get the first
  // three quarters (or all but 5 s), the consumer's close the rest; the consumer's waits for
  // the group coordinator are capped by what is left (Consumer::CapWaits). When the flush does
  // not succeed in time nothing more is committed: the next run re-reads. 15 s, with the
  // commit that may be running when the stop is asked for (`splitstream sink` gives it 5 s),
  // stays under Kubernetes' default grace period of 30 s.
  std::chrono::milliseconds shutdown_timeout{15000};
  kafka::ResetPolicy reset = kafka::ResetPolicy::kNone;
  int64_t reset_timestamp_ms = 0;
};

// Histogram buckets of the flush latency, in seconds (Prometheus `le`).
inline constexpr double kFlushLatencyBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,    2.5,   5,    10};

// Histogram buckets of a record's age when the sink polls it, in seconds: fine below 0.1 s,
// where a live stream's records are (the Kafka hop), coarse above, where a backlog's are.
inline constexpr double kRecordAgeBuckets[] = {0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
                                               0.02,  0.03,  0.05,  0.075, 0.1,    0.2,  0.5,
                                               1,     2,     5,     10,    30,     60,   300};

// Counts per bucket (not cumulative; the last is the overflow above the last bound) and the
// sum of the samples, for a Prometheus histogram over fixed bounds.
struct Histogram {
  explicit Histogram(std::span<const double> bounds) : bounds(bounds), counts(bounds.size() + 1) {}
  void Add(double value);
  std::span<const double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
};

struct SinkMetrics {
  std::map<std::string, uint64_t> rows_by_table;  // rows written (counter)
  uint64_t messages = 0;                          // messages consumed
  uint64_t dlq_messages = 0;
  uint64_t flushes = 0;
  uint64_t flush_failures = 0;  // = retries
  uint64_t commits = 0;
  bool paused = false;  // partitions paused while a flush is being retried
  std::vector<kafka::PartitionLag> lag;
  Histogram flush_latency{kFlushLatencyBuckets};  // seconds per successful flush
  // Seconds from a record's Kafka timestamp (by default CreateTime: when the producer was
  // handed it) to the poll that returned it; records without a timestamp are not counted.
  Histogram record_age{kRecordAgeBuckets};
};

// Prometheus text with the given metric name prefix (e.g. "splitstream_sink"):
//   {p}_rows_total{table}  counter (rate() gives rows/s by table)
//   {p}_messages_total, {p}_dlq_messages_total, {p}_flushes_total, {p}_retries_total,
//   {p}_commits_total      counters
//   {p}_paused             gauge: 1 while a failing flush is retried
//   {p}_consumer_lag{topic,partition}  gauge
//   {p}_flush_seconds      histogram
//   {p}_record_age_seconds histogram: Kafka timestamp → polled (the Kafka hop, live)
std::string RenderPrometheus(const SinkMetrics& m, std::string_view prefix);

// Builders for the Kafka handles, so that tests can pass fakes. The consumer factory gets the
// partition callbacks the sink needs; the producer factory its delivery callback.
using ConsumerFactory = std::function<Result<std::unique_ptr<kafka::Consumer>>(
    kafka::PartitionsCallback on_assigned, kafka::PartitionsCallback on_revoked)>;
using ProducerFactory = std::function<Result<std::unique_ptr<kafka::Producer>>(
    kafka::Producer::DeliveryCallback on_delivery)>;

class Sink {
 public:
  // `target` and `clock` must outlive the Sink. `make_producer` may be empty when
  // options.dlq_topic is empty. Errors: InvalidArgument for a zero batch size or a
  // non-positive interval (a zero batch size would flush forever); whatever the factories
  // return.
  static Result<std::unique_ptr<Sink>> Create(SinkOptions options, SinkTarget* target,
                                              const ConsumerFactory& make_consumer,
                                              const ProducerFactory& make_producer, Clock* clock);
  virtual ~Sink() = default;

  // RunOnce until `stop`, then Shutdown. OK after a clean stop; an error when the consumer
  // fails fatally, a poison message cannot be dead-lettered (no DLQ topic configured) or a
  // final flush never succeeded.
  virtual Status Run(const std::atomic<bool>& stop) = 0;
  // One step: poll once, hand messages to the target, flush (or retry a failed flush) when due,
  // commit after a successful flush.
  virtual Status RunOnce() = 0;
  // Flushes (retrying), commits and closes the consumer, within shutdown_timeout, except that
  // a write to the target runs to its own timeout once started (ClickHouse's request timeout;
  // `splitstream sink` bounds the process as a whole).
  virtual Status Shutdown() = 0;
  virtual SinkMetrics Metrics() const = 0;
};

}  // namespace splitstream::pipeline
