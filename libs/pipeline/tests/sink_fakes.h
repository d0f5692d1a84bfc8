// Fakes of the sink's collaborators: a group consumer fed from a queue, a ChangeWriter whose
// flush can be made to fail, and a DLQ producer whose acknowledgements the test controls.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "splitstream/core/clock.h"
#include "splitstream/kafka/kafka.h"
#include "splitstream/pipeline/sink.h"

namespace splitstream::pipeline::testing {

using kafka::Message;
using kafka::TopicPartition;
using Offsets = std::vector<std::pair<TopicPartition, int64_t>>;

// A Debezium envelope (schemas.enable=false) of an insert into public.{table} at `lsn`.
inline std::string DebeziumInsert(const std::string& table, int64_t id, int64_t lsn) {
  return fmt::format(
      R"({{"before":null,"after":{{"id":{}}},"source":{{"version":"3.1.3","connector":"postgresql",)"
      R"("name":"p","ts_ms":1700000000000,"snapshot":"false","db":"d","sequence":"[null,\"{}\"]",)"
      R"("schema":"public","table":"{}","txId":7,"lsn":{},"xmin":null}},"op":"c","ts_ms":1700000000001}})",
      id, lsn, table, lsn);
}

class FakeConsumer final : public kafka::Consumer {
 public:
  FakeConsumer(FakeClock* clock, kafka::PartitionsCallback on_assigned,
               kafka::PartitionsCallback on_revoked)
      : clock_(clock), on_assigned_(std::move(on_assigned)), on_revoked_(std::move(on_revoked)) {}

  // Test controls.
  void Assign(std::vector<TopicPartition> tps) {
    for (auto& tp : tps) assignment_.insert(tp);
    on_assigned_(tps);
  }
  void Revoke(std::vector<TopicPartition> tps) {
    on_revoked_(tps);
    for (auto& tp : tps) {
      assignment_.erase(tp);
      paused_.erase(tp);
    }
  }
  void Feed(Message m) { queue_.push_back(std::move(m)); }

  // Paused partitions' messages stay queued (not fetched); time passes by the timeout when
  // nothing is returned.
  Result<std::vector<Message>> Poll(size_t max_messages,
                                    std::chrono::milliseconds timeout) override {
    ++polls;
    std::vector<Message> out;
    for (auto it = queue_.begin(); it != queue_.end() && out.size() < max_messages;) {
      if (paused_.count(it->topic_partition())) {
        ++it;
        continue;
      }
      out.push_back(std::move(*it));
      it = queue_.erase(it);
    }
    if (out.empty()) clock_->Advance(timeout);
    return out;
  }
  Status Commit(std::span<const std::pair<TopicPartition, int64_t>> next_offsets) override {
    if (coordinator_down) {
      clock_->Advance(Capped(kCommitTimeout));
      return Status::Unavailable("no answer from the group coordinator");
    }
    if (!commit_status.ok()) return commit_status;
    commits.emplace_back(next_offsets.begin(), next_offsets.end());
    return Status::Ok();
  }
  Status Pause(std::span<const TopicPartition> tps) override {
    for (auto& tp : tps) paused_.insert(tp);
    return Status::Ok();
  }
  Status Resume(std::span<const TopicPartition> tps) override {
    for (auto& tp : tps) paused_.erase(tp);
    return Status::Ok();
  }
  void SetResetOnAssign(kafka::ResetPolicy policy, int64_t timestamp_ms) override {
    reset = policy;
    reset_ts = timestamp_ms;
  }
  std::vector<TopicPartition> Assignment() override {
    return {assignment_.begin(), assignment_.end()};
  }
  Result<std::vector<kafka::PartitionLag>> Lag(std::chrono::milliseconds) override {
    std::vector<kafka::PartitionLag> out;
    for (auto& tp : assignment_) out.push_back({tp, 0, 0, 5, 5});
    return out;
  }
  // Messages fed and not returned yet (paused partitions' included) plus `unreturnable_lag`,
  // when the test says the fake knows the high watermarks (`knows_watermarks`); 0 otherwise, as
  // before the first fetch response.
  int64_t CachedLag() override {
    return knows_watermarks ? static_cast<int64_t>(queue_.size()) + unreturnable_lag : 0;
  }
  Status Close() override {
    if (closed) return Status::FailedPrecondition("closed");
    if (coordinator_down) {
      clock_->Advance(Capped(kCloseTimeout));
      closed = true;
      return Status::Unavailable("the group coordinator did not answer");
    }
    Revoke(Assignment());
    closed = true;
    return Status::Ok();
  }
  void CapWaits(std::chrono::milliseconds limit) override {
    wait_cap = std::max(limit, std::chrono::milliseconds(1));
  }

  const std::set<TopicPartition>& paused() const { return paused_; }

  std::vector<Offsets> commits;
  Status commit_status;
  // Commit and Close wait for an answer that never comes (as long as the real consumer's
  // default timeouts, or the cap), then fail with Unavailable.
  bool coordinator_down = false;
  std::optional<std::chrono::milliseconds> wait_cap;  // the last CapWaits
  kafka::ResetPolicy reset = kafka::ResetPolicy::kNone;
  int64_t reset_ts = 0;
  int polls = 0;
  bool closed = false;
  bool knows_watermarks = false;  // see CachedLag
  // Offsets below the high watermark that Poll never returns (e.g. transaction markers).
  int64_t unreturnable_lag = 0;

 private:
  static constexpr std::chrono::milliseconds kCommitTimeout{10000}, kCloseTimeout{10000};
  std::chrono::milliseconds Capped(std::chrono::milliseconds timeout) const {
    return wait_cap ? std::min(timeout, *wait_cap) : timeout;
  }

  FakeClock* clock_;
  kafka::PartitionsCallback on_assigned_, on_revoked_;
  std::set<TopicPartition> assignment_, paused_;
  std::deque<Message> queue_;
};

// Flushes synchronously unless `hold` is set: then BeginFlush seals the buffered changes and
// FinishFlush reports nothing until the test clears `hold` (a write in flight).
class FakeWriter final : public ChangeWriter {
 public:
  Status Add(const debezium::ChangeRecord& change) override {
    if (!add_status.ok()) return add_status;
    if (change.table == "unmappable") return Status::InvalidArgument("no such table");
    buffered.push_back(change);
    return Status::Ok();
  }
  size_t buffered_rows() const override { return buffered.size() + (writing ? 0 : sealed.size()); }
  size_t buffered_bytes() const override { return buffered_rows() * 100; }
  Status Flush() override {
    if (writing) (void)FinishFlush(std::chrono::milliseconds::max());
    BeginFlush();
    return Write();
  }
  void BeginFlush() override {
    ++begin_calls;
    batches.push_back(sealed.size() + buffered.size());
    for (auto& c : buffered) sealed.push_back(std::move(c));
    buffered.clear();
    writing = true;
  }
  std::optional<Status> FinishFlush(std::chrono::milliseconds) override {
    if (!writing || hold) return std::nullopt;
    return Write();
  }
  std::map<std::string, uint64_t> rows_written() const override { return written; }

  std::vector<debezium::ChangeRecord> buffered, flushed;
  std::vector<debezium::ChangeRecord> sealed;  // being written, or left by a failed write
  std::vector<size_t> batches;                 // rows of each flush started
  std::map<std::string, uint64_t> written;
  Status flush_status, add_status;
  int flush_calls = 0;  // writes that ended (failed or not)
  int begin_calls = 0;
  bool hold = false;
  bool writing = false;

 private:
  Status Write() {
    writing = false;
    ++flush_calls;
    if (!flush_status.ok()) return flush_status;
    for (auto& c : sealed) {
      ++written[c.kind == debezium::ChangeRecord::Kind::kTruncate ? "_truncations" : c.table];
      flushed.push_back(std::move(c));
    }
    sealed.clear();
    return Status::Ok();
  }
};

struct Produced {
  std::string topic;
  std::optional<std::string> key, value;
  std::vector<kafka::Header> headers;
  uint64_t cookie;
};

// Delivery reports run inside Flush, with `deliver_status`.
class FakeProducer final : public kafka::Producer {
 public:
  explicit FakeProducer(DeliveryCallback cb) : cb_(std::move(cb)) {}
  Status Produce(std::string_view topic, std::optional<std::string_view> key,
                 std::optional<std::string_view> value, uint64_t cookie,
                 std::span<const kafka::Header> headers) override {
    Produced p{std::string(topic), {}, {}, {headers.begin(), headers.end()}, cookie};
    if (key) p.key = std::string(*key);
    if (value) p.value = std::string(*value);
    produced.push_back(p);
    in_flight_.push_back(cookie);
    return Status::Ok();
  }
  Status Flush(std::chrono::milliseconds) override {
    ++flushes;
    if (hold) return Status::Unavailable("still in flight");
    auto pending = std::move(in_flight_);
    in_flight_.clear();
    for (uint64_t c : pending) cb_({c, deliver_status, 0, 0});
    return Status::Ok();
  }
  std::optional<Status> FatalError() const override { return std::nullopt; }
  size_t InFlight() const override { return in_flight_.size(); }
  void InjectFatalErrorForTesting(std::string_view) override {}

  std::vector<Produced> produced;
  Status deliver_status;
  bool hold = false;  // Flush acknowledges nothing
  int flushes = 0;

 private:
  DeliveryCallback cb_;
  std::vector<uint64_t> in_flight_;
};

}  // namespace splitstream::pipeline::testing
