#include "splitstream/pipeline/sink.h"

#include "decode_ahead.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <set>

namespace splitstream::pipeline {

ChangeTarget::ChangeTarget(ChangeWriter* writer, bool decode_ahead)
    : writer_(writer), decoder_(kDecoderOptions) {
  if (decode_ahead) ahead_ = std::make_unique<DecodeAhead>(kDecoderOptions, &decoder_);
}

ChangeTarget::~ChangeTarget() = default;

Status ChangeTarget::Add(const kafka::Message& message) {
  if (ahead_) {
    if (DecodeAhead::Slot* slot = ahead_->Front(message)) {
      Status st = slot->status.ok() ? Write(slot->record) : slot->status;
      // Unavailable: the sink offers the same message again.
      if (st.code() != StatusCode::kUnavailable) ahead_->PopFront();
      return st;
    }
  }
  SPLITSTREAM_RETURN_IF_ERROR(DecodeMessage(decoder_, message, &change_));
  return Write(change_);
}

Status ChangeTarget::Write(const debezium::ChangeRecord& change) {
  switch (change.kind) {
    case debezium::ChangeRecord::Kind::kRow:
    case debezium::ChangeRecord::Kind::kTruncate:
      return writer_->Add(change);
    case debezium::ChangeRecord::Kind::kTombstone:
    case debezium::ChangeRecord::Kind::kResolved:
    case debezium::ChangeRecord::Kind::kMessage:
      return Status::Ok();
  }
  return Status::Ok();
}

size_t ChangeTarget::Prepare(std::span<const kafka::Message* const> upcoming) {
  return ahead_ ? ahead_->Announce(upcoming) : 0;
}

void ChangeTarget::SettlePrepared() {
  if (ahead_) ahead_->Settle();
}

std::string RenderPrometheus(const SinkMetrics& m, std::string_view p) {
  std::string out;
  out += fmt::format("# HELP {}_rows_total Rows written, by table.\n# TYPE {}_rows_total counter\n",
                     p, p);
  for (const auto& [table, n] : m.rows_by_table) {
    out += fmt::format("{}_rows_total{{table=\"{}\"}} {}\n", p, table, n);
  }
  auto one = [&](std::string_view name, std::string_view type, std::string_view help, auto v) {
    out += fmt::format("# HELP {0}_{1} {2}\n# TYPE {0}_{1} {3}\n{0}_{1} {4}\n", p, name, help, type,
                       v);
  };
  one("messages_total", "counter", "Kafka messages consumed.", m.messages);
  one("dlq_messages_total", "counter", "Messages sent to the dead-letter topic.", m.dlq_messages);
  one("flushes_total", "counter", "Successful batch flushes.", m.flushes);
  one("retries_total", "counter", "Failed flushes (each is retried with backoff).",
      m.flush_failures);
  one("commits_total", "counter", "Offset commits.", m.commits);
  one("paused", "gauge", "1 while partitions are paused because a flush is being retried.",
      m.paused ? 1 : 0);
  out += fmt::format(
      "# HELP {0}_consumer_lag Messages not yet committed, per partition.\n"
      "# TYPE {0}_consumer_lag gauge\n",
      p);
  for (const auto& l : m.lag) {
    out += fmt::format("{}_consumer_lag{{topic=\"{}\",partition=\"{}\"}} {}\n", p, l.tp.topic,
                       l.tp.partition, l.lag);
  }
  auto histogram = [&](std::string_view name, std::string_view help, const Histogram& h) {
    out += fmt::format("# HELP {0}_{1} {2}\n# TYPE {0}_{1} histogram\n", p, name, help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      out += fmt::format("{}_{}_bucket{{le=\"{}\"}} {}\n", p, name, h.bounds[i], cumulative);
    }
    cumulative += h.counts.back();
    out += fmt::format("{0}_{1}_bucket{{le=\"+Inf\"}} {2}\n{0}_{1}_sum {3}\n{0}_{1}_count {2}\n", p,
                       name, cumulative, h.sum);
  };
  histogram("flush_seconds", "Batch flush latency (target write, dead-letter acks).",
            m.flush_latency);
  histogram("record_age_seconds",
            "Age of each record when polled: its Kafka timestamp to the poll (the Kafka hop).",
            m.record_age);
  return out;
}

void Histogram::Add(double value) {
  ++counts[std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin()];
  sum += value;
}

namespace {

using std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;
using Offsets = std::map<kafka::TopicPartition, int64_t>;  // next offset per partition

// Poll timeout while a write is in flight (its end does not wake Poll).
constexpr milliseconds kInFlightPollTimeout{5};
// Shutdown: the most of its budget kept for the consumer's close.
constexpr milliseconds kMaxCloseShare{5000};

// Drain keeps between kAnnounceAhead and 2 * kAnnounceAhead messages announced to the target
// (decoded ahead by ChangeTarget's worker).
constexpr size_t kAnnounceAhead = 512;

// A batch being written: the offsets to commit once it is accepted.
struct InFlight {
  Offsets offsets;
  std::chrono::steady_clock::time_point start;
  bool retry = false;  // started by the retry of a failed flush
};

struct DlqEntry {
  std::string topic;
  std::optional<std::string> key, value;
  std::vector<kafka::Header> headers;
};

class SinkImpl final : public Sink {
 public:
  SinkImpl(SinkOptions options, SinkTarget* target, Clock* clock)
      : options_(std::move(options)), target_(target), clock_(clock) {}

  Status Init(const ConsumerFactory& make_consumer, const ProducerFactory& make_producer) {
    if (options_.batch_rows == 0 || options_.batch_bytes == 0 || options_.max_batch_rows == 0) {
      return Status::InvalidArgument("batch_rows, batch_bytes and max_batch_rows must be positive",
                                     "batch_rows");
    }
    if (options_.flush_interval.count() <= 0 || options_.catch_up_flush_interval.count() < 0 ||
        options_.shutdown_timeout.count() <= 0) {
      return Status::InvalidArgument(
          "flush_interval and shutdown_timeout must be positive, catch_up_flush_interval not "
          "negative",
          "flush_interval");
    }
    if (!options_.dlq_topic.empty()) {
      if (!make_producer) return Status::InvalidArgument("a DLQ topic needs a producer");
      SPLITSTREAM_ASSIGN_OR_RETURN(
          producer_, make_producer([this](const kafka::DeliveryReport& r) { OnDelivery(r); }));
    }
    SPLITSTREAM_ASSIGN_OR_RETURN(
        consumer_,
        make_consumer([this](std::span<const kafka::TopicPartition> tps) { OnAssigned(tps); },
                      [this](std::span<const kafka::TopicPartition> tps) { OnRevoked(tps); }));
    if (options_.reset != kafka::ResetPolicy::kNone) {
      consumer_->SetResetOnAssign(options_.reset, options_.reset_timestamp_ms);
    }
    last_lag_ = clock_->Now();
    return Status::Ok();
  }

  Status Run(const std::atomic<bool>& stop) override {
    while (!stop.load()) {
      Status st = RunOnce();
      if (!st.ok()) {
        // Nothing more is committed: a restart re-reads from the last commit.
        Status closed = consumer_->Close();
        if (!closed.ok()) spdlog::warn("sink: close after error: {}", closed.ToString());
        return st;
      }
    }
    return Shutdown();
  }

  Status RunOnce() override {
    TimePoint now = clock_->Now();
    if (!backlog_.empty() && in_flight_ && !retrying_) {
      // The next batch is full while the previous one is being written: wait for that write
      // instead of fetching more.
      SPLITSTREAM_RETURN_IF_ERROR(Collect(options_.poll_timeout));
    } else {
      milliseconds timeout = options_.poll_timeout;
      if (retrying_) {
        timeout = std::min(timeout, Until(next_attempt_, now));
      } else if (batch_start_) {
        timeout = std::min(timeout, Until(*batch_start_ + FlushInterval(), now));
      }
      // A write in flight ends without waking Poll: look for its end often.
      if (in_flight_) timeout = std::min(timeout, kInFlightPollTimeout);
      SPLITSTREAM_ASSIGN_OR_RETURN(auto messages,
                                   consumer_->Poll(options_.poll_max_messages, timeout));
      {
        const int64_t now_ms = clock_->WallMicros() / 1000;
        std::lock_guard lock(mu_);
        metrics_.messages += messages.size();
        for (const kafka::Message& m : messages) {
          if (m.timestamp_ms() < 0) continue;
          metrics_.record_age.Add(
              static_cast<double>(std::max<int64_t>(0, now_ms - m.timestamp_ms())) / 1000.0);
        }
      }
      for (auto& m : messages) backlog_.push_back(std::move(m));
      lag_at_poll_ = consumer_->CachedLag();
    }
    if (producer_) {
      if (auto fatal = producer_->FatalError()) {
        return Status::FailedPrecondition("dead-letter producer: " + fatal->ToString());
      }
    }
    SPLITSTREAM_RETURN_IF_ERROR(Pump());
    MaybeRefreshLag(clock_->Now());
    return Status::Ok();
  }

  Status Shutdown() override {
    // One budget for the whole stop. The consumer's waits for the group coordinator are capped
    // by what is left of it, so an unreachable Kafka cannot stretch the stop; the close gets
    // the last quarter (at most 5 s), the flush and its retries the rest.
    const TimePoint start = clock_->Now();
    const TimePoint deadline = start + options_.shutdown_timeout;
    const milliseconds close_share = std::min(options_.shutdown_timeout / 4, kMaxCloseShare);
    const TimePoint flush_deadline = deadline - close_share;
    Status last;
    while (true) {
      consumer_->CapWaits(Until(flush_deadline, clock_->Now()));
      last = FlushEverything(Until(flush_deadline, clock_->Now()));
      if (last.ok() && !pending_.empty()) last = Status::Unavailable("offset commit failed");
      if (last.ok() || last.code() == StatusCode::kFailedPrecondition) break;
      if (clock_->Now() >= flush_deadline) break;
      OnFlushFailed(last);
      auto messages = consumer_->Poll(options_.poll_max_messages,
                                      std::min(backoff_, Until(flush_deadline, clock_->Now())));
      if (!messages.ok()) {
        last = messages.status();
        break;
      }
      for (auto& m : *messages) backlog_.push_back(std::move(m));
    }
    if (!last.ok()) {
      spdlog::error("sink: final flush failed, nothing more committed (a restart re-reads): {}",
                    last.ToString());
    }
    closing_ = true;
    consumer_->CapWaits(std::max(Until(deadline, clock_->Now()), close_share));
    Status closed = consumer_->Close();
    if (!closed.ok()) spdlog::warn("sink: consumer close: {}", closed.ToString());
    return last;
  }

  SinkMetrics Metrics() const override {
    std::lock_guard lock(mu_);
    return metrics_;
  }

 private:
  static milliseconds Until(TimePoint t, TimePoint now) {
    if (t <= now) return milliseconds(0);
    return std::chrono::ceil<milliseconds>(t - now);
  }

  // Messages waiting behind the open batch: polled and not yet handed to the target, plus
  // those the consumer knew to be in Kafka beyond its position at the last poll.
  uint64_t Waiting() const {
    return backlog_.size() + static_cast<uint64_t>(std::max<int64_t>(0, lag_at_poll_));
  }

  // Whether the open batch is due by its size (the rules are at the top of sink.h). Enters
  // catch-up when a batch reaches batch_rows with at least batch_rows messages behind it.
  bool DueBySize() {
    const size_t rows = target_->buffered_rows();
    if (Full()) return true;
    if (rows < options_.batch_rows) return catching_up_ && rows > 0 && Waiting() == 0;
    const uint64_t waiting = Waiting();
    if (!catching_up_) {
      if (waiting < options_.batch_rows) return true;
      catching_up_ = true;
    }
    return rows >= std::max(options_.batch_rows, 2 * last_batch_rows_) || rows >= waiting;
  }

  bool FlushDue(TimePoint now) {
    return DueBySize() || (batch_start_ && now >= *batch_start_ + FlushInterval());
  }

  // The age at which the open batch is due: catch_up_flush_interval for a catch-up batch of at
  // least batch_rows rows, flush_interval otherwise.
  milliseconds FlushInterval() const {
    if (catching_up_ && target_->buffered_rows() >= options_.batch_rows) {
      return std::max(options_.flush_interval, options_.catch_up_flush_interval);
    }
    return options_.flush_interval;
  }

  // The open batch may take no more messages (while a write is in flight, or while catching
  // up).
  bool Full() const {
    return target_->buffered_rows() >= std::max(options_.max_batch_rows, options_.batch_rows) ||
           target_->buffered_bytes() >= options_.batch_bytes;
  }

  // Does what is due without waiting: collects a finished write (commit, or retry mode),
  // hands the backlog to the target, starts a write when the open batch is due and none is in
  // flight, and goes on filling the next batch behind it.
  Status Pump() {
    for (;;) {
      SPLITSTREAM_RETURN_IF_ERROR(Collect(milliseconds(0)));
      const TimePoint now = clock_->Now();
      if (retrying_) {
        if (in_flight_ || now < next_attempt_) return Status::Ok();
        Status st = Drain(DrainUntil::kEnd);
        if (st.ok()) st = StartFlush();
        if (!st.ok()) {
          if (st.code() == StatusCode::kFailedPrecondition) return st;
          OnFlushFailed(st);
          return Status::Ok();
        }
        if (!in_flight_) return Status::Ok();  // there was nothing to write
        continue;                              // a synchronous target is done already
      }
      Status st = Drain(in_flight_ ? DrainUntil::kFull : DrainUntil::kDue);
      if (!st.ok()) {
        if (st.code() != StatusCode::kUnavailable) return st;
        OnFlushFailed(st);
        return Status::Ok();
      }
      if (in_flight_ || !FlushDue(now)) return Status::Ok();
      st = StartFlush();
      if (!st.ok()) {
        if (st.code() == StatusCode::kFailedPrecondition) return st;
        OnFlushFailed(st);
        return Status::Ok();
      }
    }
  }

  enum class DrainUntil {
    kEnd,   // the backlog is empty
    kDue,   // ... or the open batch is due by size (no write in flight: start one)
    kFull,  // ... or the open batch is full (a write in flight)
  };

  // Hands the backlog to the target in order, until `until`. Stops at the first message the
  // target fails on with anything but InvalidArgument (that message stays first in the
  // backlog). Announces the messages ahead to the target (SinkTarget::Prepare), and settles
  // them before returning: between drains the backlog may change (OnRevoked).
  Status Drain(DrainUntil until) {
    Status st = DrainBacklog(until);
    target_->SettlePrepared();
    return st;
  }

  Status DrainBacklog(DrainUntil until) {
    while (!backlog_.empty()) {
      if (until == DrainUntil::kDue && DueBySize()) break;
      if (until == DrainUntil::kFull && Full()) break;
      if (announced_ < kAnnounceAhead) Announce();
      kafka::Message& m = backlog_.front();
      Status st = target_->Add(m);
      if (!st.ok()) {
        if (st.code() != StatusCode::kInvalidArgument) return st;
        SPLITSTREAM_RETURN_IF_ERROR(DeadLetter(m, st));
      }
      pending_tp_.topic.assign(m.topic());
      pending_tp_.partition = m.partition();
      pending_[pending_tp_] = m.offset() + 1;
      if (!batch_start_) batch_start_ = clock_->Now();
      backlog_.pop_front();
      if (announced_ > 0) --announced_;
    }
    return Status::Ok();
  }

  // Announces up to kAnnounceAhead more messages of the backlog to the target.
  void Announce() {
    const size_t end = std::min(backlog_.size(), announced_ + kAnnounceAhead);
    if (announced_ >= end) return;
    upcoming_.clear();
    for (size_t i = announced_; i < end; ++i) upcoming_.push_back(&backlog_[i]);
    announced_ += target_->Prepare(upcoming_);
  }

  // Starts writing the open batch (and what a failed write left) once the dead-letter
  // messages among it are acknowledged. Errors: the DLQ's (FailedPrecondition: stop).
  Status StartFlush() {
    if (pending_.empty() && target_->buffered_rows() == 0) {
      batch_start_.reset();
      if (retrying_) OnFlushSucceeded();
      return Status::Ok();
    }
    SPLITSTREAM_RETURN_IF_ERROR(AwaitDeadLetters());
    last_batch_rows_ = target_->buffered_rows();
    spdlog::debug("sink: writing {} rows ({} bytes), {} waiting{}", last_batch_rows_,
                  target_->buffered_bytes(), Waiting(), catching_up_ ? ", catching up" : "");
    if (Waiting() == 0) catching_up_ = false;
    in_flight_ = InFlight{std::move(pending_), clock_->Now(), retrying_};
    pending_.clear();
    batch_start_.reset();
    target_->BeginFlush();
    return Status::Ok();
  }

  // Collects the write in flight when it ended within `wait`: commits its offsets, or (on
  // failure) gives them back to the open batch and enters retry mode. FailedPrecondition when
  // the sink must stop.
  Status Collect(milliseconds wait) {
    if (!in_flight_) return Status::Ok();
    std::optional<Status> result = target_->FinishFlush(wait);
    if (!result) return Status::Ok();
    InFlight done = std::move(*in_flight_);
    in_flight_.reset();
    if (!result->ok()) {
      GiveBack(done.offsets);
      if (result->code() == StatusCode::kFailedPrecondition) return *result;
      OnFlushFailed(*result);
      return Status::Ok();
    }
    RecordFlush(done.start);
    spdlog::debug("sink: write done in {} ms",
                  std::chrono::duration_cast<milliseconds>(clock_->Now() - done.start).count());
    if (done.retry && retrying_) OnFlushSucceeded();
    CommitOffsets(std::move(done.offsets));
    return Status::Ok();
  }

  // Synchronously: waits for the write in flight (at most `in_flight_wait`: Unavailable when it
  // is still running), then writes everything else (the backlog included) and commits. OK when
  // everything was written (pending_ still holds offsets whose commit failed with Unavailable); the
  // target's or DLQ's error otherwise.
  Status FlushEverything(milliseconds in_flight_wait = milliseconds::max()) {
    if (in_flight_) {
      std::optional<Status> result = target_->FinishFlush(in_flight_wait);
      if (!result) {
        return Status::Unavailable(
            fmt::format("the write in flight did not end within {} ms", in_flight_wait.count()));
      }
      InFlight done = std::move(*in_flight_);
      in_flight_.reset();
      if (result && result->ok()) {
        RecordFlush(done.start);
        CommitOffsets(std::move(done.offsets));
      } else {
        GiveBack(done.offsets);  // the target kept the rows: the flush below writes them
      }
    }
    SPLITSTREAM_RETURN_IF_ERROR(Drain(DrainUntil::kEnd));
    if (pending_.empty() && target_->buffered_rows() == 0) return Status::Ok();
    const TimePoint start = clock_->Now();
    SPLITSTREAM_RETURN_IF_ERROR(AwaitDeadLetters());
    SPLITSTREAM_RETURN_IF_ERROR(target_->Flush());
    RecordFlush(start);
    batch_start_.reset();
    Offsets offsets = std::move(pending_);
    pending_.clear();
    CommitOffsets(std::move(offsets));
    return Status::Ok();
  }

  void RecordFlush(TimePoint start) {
    double seconds = std::chrono::duration<double>(clock_->Now() - start).count();
    auto written = target_->rows_written();
    std::lock_guard lock(mu_);
    ++metrics_.flushes;
    metrics_.rows_by_table = written;
    metrics_.flush_latency.Add(seconds);
  }

  // Offsets of a batch that is not committed after all go back to the open batch, whose own
  // offsets (when it has some for the partition) are newer and cover them once written.
  void GiveBack(const Offsets& offsets) {
    for (const auto& [tp, next] : offsets) pending_.emplace(tp, next);
    if (!offsets.empty() && !batch_start_) batch_start_ = clock_->Now();
  }

  // Commits the offsets of a written batch. A commit that fails because the coordinator is
  // unreachable gives them back for the next flush (the rows are written; re-reading them would
  // be invisible anyway); FailedPrecondition (partitions revoked) drops them.
  void CommitOffsets(Offsets offsets) {
    if (offsets.empty()) return;
    std::vector<std::pair<kafka::TopicPartition, int64_t>> list(offsets.begin(), offsets.end());
    Status st = consumer_->Commit(list);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      ++metrics_.commits;
    } else if (st.code() == StatusCode::kFailedPrecondition) {
      spdlog::warn("sink: commit refused (partitions reassigned), dropping offsets: {}",
                   st.ToString());
    } else {
      spdlog::warn("sink: commit failed, retried with the next flush: {}", st.ToString());
      GiveBack(offsets);
    }
  }

  // Produces the rejected message to the DLQ. FailedPrecondition when there is no DLQ topic or
  // the producer refuses the message for good (the sink must stop, not skip it).
  Status DeadLetter(const kafka::Message& m, const Status& why) {
    if (!producer_) {
      return Status::FailedPrecondition(
          fmt::format("{}[{}]@{} cannot be written and no dead-letter topic is configured: {}",
                      m.topic(), m.partition(), m.offset(), why.message()));
    }
    spdlog::warn("sink: {}[{}]@{} → {}: {}", m.topic(), m.partition(), m.offset(),
                 options_.dlq_topic, why.message());
    DlqEntry e;
    e.topic = options_.dlq_topic;
    if (m.key()) e.key = std::string(*m.key());
    if (m.value()) e.value = std::string(*m.value());
    e.headers = {{"error", why.message()},
                 {"source.topic", std::string(m.topic())},
                 {"source.partition", std::to_string(m.partition())},
                 {"source.offset", std::to_string(m.offset())}};
    uint64_t cookie = next_cookie_++;
    {
      std::lock_guard lock(dlq_mu_);
      dlq_in_flight_[cookie] = e;
    }
    SPLITSTREAM_RETURN_IF_ERROR(Produce(cookie, e));
    std::lock_guard lock(mu_);
    ++metrics_.dlq_messages;
    return Status::Ok();
  }

  Status Produce(uint64_t cookie, const DlqEntry& e) {
    for (int attempt = 0;; ++attempt) {
      Status st = producer_->Produce(e.topic, e.key, e.value, cookie, e.headers);
      if (st.ok()) return st;
      if (st.code() != StatusCode::kUnavailable || attempt >= 50) {
        {
          std::lock_guard lock(dlq_mu_);
          dlq_in_flight_.erase(cookie);
        }
        return Status::FailedPrecondition("dead-letter produce: " + st.ToString());
      }
      // Local queue full: let deliveries drain.
      (void)producer_->Flush(milliseconds(100));
    }
  }

  void OnDelivery(const kafka::DeliveryReport& r) {
    std::lock_guard lock(dlq_mu_);
    if (r.status.ok()) {
      dlq_in_flight_.erase(r.cookie);
    } else {
      dlq_failed_.push_back(r.cookie);
      dlq_last_error_ = r.status.ToString();
    }
  }

  // Waits until every dead-letter message is acknowledged. Failed deliveries are produced
  // again and the wait counts as failed (Unavailable), so the batch is retried.
  Status AwaitDeadLetters() {
    if (!producer_) return Status::Ok();
    {
      std::lock_guard lock(dlq_mu_);
      if (dlq_in_flight_.empty()) return Status::Ok();
    }
    Status flushed = producer_->Flush(options_.dlq_timeout);
    std::vector<std::pair<uint64_t, DlqEntry>> again;
    std::string error;
    size_t in_flight = 0;
    {
      std::lock_guard lock(dlq_mu_);
      for (uint64_t cookie : dlq_failed_) {
        auto it = dlq_in_flight_.find(cookie);
        if (it != dlq_in_flight_.end()) again.emplace_back(cookie, it->second);
      }
      dlq_failed_.clear();
      error = dlq_last_error_;
      in_flight = dlq_in_flight_.size();
    }
    for (const auto& [cookie, e] : again) SPLITSTREAM_RETURN_IF_ERROR(Produce(cookie, e));
    if (!again.empty()) {
      return Status::Unavailable(
          fmt::format("{} dead-letter message(s) not delivered: {}", again.size(), error));
    }
    if (!flushed.ok()) return flushed;
    if (in_flight > 0) {
      return Status::Unavailable(
          fmt::format("{} dead-letter message(s) unacknowledged", in_flight));
    }
    return Status::Ok();
  }

  void OnFlushFailed(const Status& st) {
    if (!retrying_) {
      retrying_ = true;
      backoff_ = options_.initial_backoff;
      PauseAll();
    } else {
      backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    }
    next_attempt_ = clock_->Now() + backoff_;
    spdlog::warn("sink: flush failed, partitions paused, retry in {} ms: {}", backoff_.count(),
                 st.ToString());
    std::lock_guard lock(mu_);
    ++metrics_.flush_failures;
    metrics_.paused = true;
  }

  void OnFlushSucceeded() {
    retrying_ = false;
    std::vector<kafka::TopicPartition> all = consumer_->Assignment();
    Status st = consumer_->Resume(all);
    if (!st.ok()) spdlog::warn("sink: resume: {}", st.ToString());
    spdlog::info("sink: flush succeeded after retries, {} partitions resumed", all.size());
    std::lock_guard lock(mu_);
    metrics_.paused = false;
  }

  void PauseAll() {
    std::vector<kafka::TopicPartition> all = consumer_->Assignment();
    Status st = consumer_->Pause(all);
    if (!st.ok()) spdlog::warn("sink: pause: {}", st.ToString());
  }

  void OnAssigned(std::span<const kafka::TopicPartition> tps) {
    spdlog::info("sink: {} partition(s) assigned", tps.size());
    if (retrying_ && !tps.empty()) {
      Status st = consumer_->Pause(tps);
      if (!st.ok()) spdlog::warn("sink: pause: {}", st.ToString());
    }
  }

  void OnRevoked(std::span<const kafka::TopicPartition> tps) {
    spdlog::info("sink: {} partition(s) revoked", tps.size());
    std::set<kafka::TopicPartition> revoked(tps.begin(), tps.end());
    // Messages of revoked partitions not yet handed to the target are re-read by their next
    // owner; handing them over now could only add work.
    std::erase_if(backlog_,
                  [&](const kafka::Message& m) { return revoked.count(m.topic_partition()) > 0; });
    announced_ = 0;  // the target discards what it prepared when the next Add differs
    auto affects = [&](const Offsets& offsets) {
      return std::any_of(offsets.begin(), offsets.end(),
                         [&](const auto& kv) { return revoked.count(kv.first) > 0; });
    };
    if (!affects(pending_) && !(in_flight_ && affects(in_flight_->offsets))) return;
    if (!closing_ || !retrying_) {
      Status st = FlushEverything();
      if (st.ok() && !affects(pending_)) return;
      if (!st.ok()) spdlog::warn("sink: flush before revocation failed: {}", st.ToString());
    }
    std::erase_if(pending_, [&](const auto& kv) { return revoked.count(kv.first) > 0; });
    if (in_flight_) {
      std::erase_if(in_flight_->offsets,
                    [&](const auto& kv) { return revoked.count(kv.first) > 0; });
    }
  }

  void MaybeRefreshLag(TimePoint now) {
    if (now < last_lag_ + options_.lag_interval) return;
    last_lag_ = now;
    auto lag = consumer_->Lag(milliseconds(500));
    if (!lag.ok()) return;
    std::lock_guard lock(mu_);
    metrics_.lag = std::move(*lag);
  }

  SinkOptions options_;
  SinkTarget* target_;
  Clock* clock_;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::Consumer> consumer_;

  std::deque<kafka::Message> backlog_;  // polled, not yet accepted by the target
  size_t announced_ = 0;  // messages at the front of backlog_ announced to the target (Prepare)
  std::vector<const kafka::Message*> upcoming_;  // Announce's
  kafka::TopicPartition pending_tp_;             // Drain's key into pending_ (keeps its capacity)
  Offsets pending_;                              // next offsets of the open batch
  std::optional<InFlight> in_flight_;            // the batch being written
  std::optional<TimePoint> batch_start_;
  bool retrying_ = false;
  bool closing_ = false;
  milliseconds backoff_{0};
  TimePoint next_attempt_{};
  TimePoint last_lag_{};
  int64_t lag_at_poll_ = 0;  // consumer_->CachedLag() after the last Poll
  bool catching_up_ = false;
  size_t last_batch_rows_ = 0;  // rows of the last batch whose write started
  uint64_t next_cookie_ = 1;

  mutable std::mutex dlq_mu_;
  std::map<uint64_t, DlqEntry> dlq_in_flight_;
  std::vector<uint64_t> dlq_failed_;
  std::string dlq_last_error_;

  mutable std::mutex mu_;
  SinkMetrics metrics_;
};

}  // namespace

Result<std::unique_ptr<Sink>> Sink::Create(SinkOptions options, SinkTarget* target,
                                           const ConsumerFactory& make_consumer,
                                           const ProducerFactory& make_producer, Clock* clock) {
  auto sink = std::make_unique<SinkImpl>(std::move(options), target, clock);
  SPLITSTREAM_RETURN_IF_ERROR(sink->Init(make_consumer, make_producer));
  return std::unique_ptr<Sink>(std::move(sink));
}

}  // namespace splitstream::pipeline
