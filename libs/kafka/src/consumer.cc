// The librdkafka group consumer behind kafka::Consumer.
//
// The main queue is forwarded to the consumer queue (rd_kafka_poll_set_consumer), so rebalance,
// error and commit callbacks all run inside Poll/Close on the owner's thread.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "rd_common.h"
#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka {

using internal::ErrorToStatus;
using internal::PartitionListPtr;

namespace {

constexpr std::chrono::milliseconds kOffsetsForTimesTimeout{10'000};
constexpr std::chrono::milliseconds kStartOffsetTimeout{5'000};

PartitionListPtr ToList(std::span<const TopicPartition> partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const TopicPartition& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

std::vector<TopicPartition> FromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  out.reserve(list->cnt);
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

// The first per-partition error of a list, as a Status.
Status FirstPartitionError(const rd_kafka_topic_partition_list_t* list, std::string_view what) {
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return ErrorToStatus(
          e.err, std::string(what) + " " + e.topic + "[" + std::to_string(e.partition) + "]");
    }
  }
  return Status::Ok();
}

}  // namespace

class ConsumerImpl final : public Consumer {
 public:
  explicit ConsumerImpl(ConsumerOptions options) : options_(std::move(options)) {}

  Status Init() {
    internal::ConfPtr conf = internal::NewConf();
    // Defaults for a sink; the README explains each choice. Overrides are applied after.
    std::map<std::string, std::string> props = {
        {"bootstrap.servers", options_.brokers},
        {"group.id", options_.group_id},
        {"auto.offset.reset", options_.auto_offset_reset},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "20"},
        {"queued.min.messages", "1000000"},
        {"queued.max.messages.kbytes", "262144"},
        {"max.partition.fetch.bytes", "16777216"},
    };
    SPLITSTREAM_RETURN_IF_ERROR(internal::SetProperties(conf.get(), props));
    SPLITSTREAM_RETURN_IF_ERROR(internal::SetProperties(conf.get(), options_.overrides));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &ConsumerImpl::OnRebalance);
    rd_kafka_conf_set_error_cb(conf.get(), &ConsumerImpl::OnError);
    SPLITSTREAM_ASSIGN_OR_RETURN(internal::HandlePtr rk,
                                 internal::NewHandle(RD_KAFKA_CONSUMER, std::move(conf)));
    // Shared with every Message: the handle is destroyed when the last of them is. After a
    // Close that gave up (abandon_group_), destroying it must not try to leave the group again.
    rk_ = std::shared_ptr<rd_kafka_t>(rk.release(), [abandon = abandon_group_](rd_kafka_t* h) {
      rd_kafka_destroy_flags(h, abandon->load() ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
    });
    SPLITSTREAM_RETURN_IF_ERROR(
        ErrorToStatus(rd_kafka_poll_set_consumer(rk_.get()), "kafka consumer queue"));

    PartitionListPtr topics(
        rd_kafka_topic_partition_list_new(static_cast<int>(options_.subscriptions.size())));
    for (const std::string& s : options_.subscriptions) {
      rd_kafka_topic_partition_list_add(topics.get(), s.c_str(), RD_KAFKA_PARTITION_UA);
    }
    return ErrorToStatus(rd_kafka_subscribe(rk_.get(), topics.get()), "kafka subscribe");
  }

  ~ConsumerImpl() override {
    if (rk_ != nullptr && !closed_) {
      Status st = Close();
      if (!st.ok()) spdlog::warn("{}", st.ToString());
    }
  }

  Result<std::vector<Message>> Poll(size_t max_messages,
                                    std::chrono::milliseconds timeout) override {
    SPLITSTREAM_RETURN_IF_ERROR(CheckUsable());
    std::vector<Message> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < max_messages) {
      int wait_ms = 0;
      if (out.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), wait_ms);
      if (m == nullptr) {
        if (out.empty() && std::chrono::steady_clock::now() < deadline) continue;
        break;
      }
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        out.push_back(Message::Wrap(m, rk_));
        continue;
      }
      rd_kafka_resp_err_t err = m->err;
      if (err != RD_KAFKA_RESP_ERR__PARTITION_EOF && err != RD_KAFKA_RESP_ERR__FATAL) {
        // librdkafka retries these itself (broker down, topic not there yet, ...).
        spdlog::warn("kafka consumer {}: {} ({})", options_.group_id, rd_kafka_message_errstr(m),
                     rd_kafka_err2name(err));
      }
      rd_kafka_message_destroy(m);
      if (err == RD_KAFKA_RESP_ERR__FATAL) break;
    }
    SPLITSTREAM_RETURN_IF_ERROR(CheckFatal());
    return out;
  }

  Status Commit(std::span<const std::pair<TopicPartition, int64_t>> next_offsets) override {
    SPLITSTREAM_RETURN_IF_ERROR(CheckUsable());
    if (next_offsets.empty()) return Status::Ok();
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size())));
    for (const auto& [tp, offset] : next_offsets) {
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset =
          offset;
    }
    // rd_kafka_commit(async=0) would wait for an unreachable coordinator about as long as the
    // session timeout; the answer is awaited on a queue of our own, for commit_timeout. A
    // commit given up on may still land later: it only ever holds offsets the owner had
    // finished with.
    internal::QueuePtr queue(rd_kafka_queue_new(rk_.get()));
    SPLITSTREAM_RETURN_IF_ERROR(
        ErrorToStatus(rd_kafka_commit_queue(rk_.get(), list.get(), queue.get(), nullptr, nullptr),
                      "kafka commit"));
    const std::chrono::milliseconds wait = Capped(options_.commit_timeout);
    internal::EventPtr answer(rd_kafka_queue_poll(queue.get(), static_cast<int>(wait.count())));
    if (answer == nullptr) {
      return Status::Unavailable(fmt::format(
          "kafka commit: no answer from the group coordinator within {} ms", wait.count()));
    }
    SPLITSTREAM_RETURN_IF_ERROR(ErrorToStatus(rd_kafka_event_error(answer.get()), "kafka commit"));
    const rd_kafka_topic_partition_list_t* committed =
        rd_kafka_event_topic_partition_list(answer.get());
    return committed == nullptr ? Status::Ok() : FirstPartitionError(committed, "kafka commit");
  }

  Status Pause(std::span<const TopicPartition> partitions) override {
    return ApplyToPartitions(partitions, rd_kafka_pause_partitions, "kafka pause");
  }

  Status Resume(std::span<const TopicPartition> partitions) override {
    return ApplyToPartitions(partitions, rd_kafka_resume_partitions, "kafka resume");
  }

  void SetResetOnAssign(ResetPolicy policy, int64_t timestamp_ms) override {
    reset_policy_ = policy;
    reset_timestamp_ms_ = timestamp_ms;
    reset_done_.clear();
    if (policy == ResetPolicy::kNone || closed_) return;
    // Partitions assigned already are rewound now, by seeking.
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    PartitionListPtr current(raw);
    if (current->cnt == 0) return;
    ApplyReset(current.get());
    rd_kafka_error_t* error = rd_kafka_seek_partitions(
        rk_.get(), current.get(), static_cast<int>(kOffsetsForTimesTimeout.count()));
    Status st = ErrorToStatus(error, "kafka seek for reset");
    if (st.ok()) st = FirstPartitionError(current.get(), "kafka seek for reset");
    if (!st.ok()) spdlog::error("{}", st.ToString());
  }

  std::vector<TopicPartition> Assignment() override {
    if (closed_) return {};
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    PartitionListPtr list(raw);
    std::vector<TopicPartition> out = FromList(list.get());
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::vector<PartitionLag>> Lag(std::chrono::milliseconds timeout) override {
    SPLITSTREAM_RETURN_IF_ERROR(CheckUsable());
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto left_ms = [&] {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      return static_cast<int>(std::max<int64_t>(1, left.count()));
    };
    std::vector<TopicPartition> assigned = Assignment();
    PartitionListPtr committed = ToList(assigned);
    SPLITSTREAM_RETURN_IF_ERROR(ErrorToStatus(
        rd_kafka_committed(rk_.get(), committed.get(), left_ms()), "kafka committed offsets"));
    PartitionListPtr position = ToList(assigned);
    SPLITSTREAM_RETURN_IF_ERROR(
        ErrorToStatus(rd_kafka_position(rk_.get(), position.get()), "kafka position"));
    std::vector<PartitionLag> out;
    out.reserve(assigned.size());
    for (size_t i = 0; i < assigned.size(); ++i) {
      int64_t low = 0;
      int64_t high = 0;
      SPLITSTREAM_RETURN_IF_ERROR(ErrorToStatus(
          rd_kafka_query_watermark_offsets(rk_.get(), assigned[i].topic.c_str(),
                                           assigned[i].partition, &low, &high, left_ms()),
          "kafka watermarks of " + assigned[i].topic));
      int64_t c = committed->elems[i].offset >= 0 ? committed->elems[i].offset : -1;
      int64_t p = position->elems[i].offset >= 0 ? position->elems[i].offset : -1;
      out.push_back({assigned[i], c, p, high, c >= 0 ? high - c : high - low});
    }
    return out;
  }

  int64_t CachedLag() override {
    if (closed_) return 0;
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    PartitionListPtr list(raw);
    if (rd_kafka_position(rk_.get(), list.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    int64_t lag = 0;
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& e = list->elems[i];
      if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR || e.offset < 0) continue;  // nothing returned yet
      int64_t low = 0;
      int64_t high = 0;
      if (rd_kafka_get_watermark_offsets(rk_.get(), e.topic, e.partition, &low, &high) !=
              RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;  // no fetch response yet
      }
      lag += std::max<int64_t>(0, high - e.offset);
    }
    return lag;
  }

  Status Close() override {
    if (closed_) return Status::Ok();
    // rd_kafka_consumer_close would wait for an unreachable group coordinator about as long
    // as the session timeout: the close runs on the consumer queue, served here (on_revoked
    // runs in it and may still Commit, so closed_ is set afterwards) for close_timeout. Given
    // up, the group is left to expire this member after its session timeout, and nothing
    // more is committed: the partitions' next owner re-reads from the last commit.
    internal::QueuePtr queue(rd_kafka_queue_get_consumer(rk_.get()));
    Status st = ErrorToStatus(rd_kafka_consumer_close_queue(rk_.get(), queue.get()),
                              "kafka consumer close");
    const std::chrono::milliseconds wait = Capped(options_.close_timeout);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (st.ok() && rd_kafka_consumer_closed(rk_.get()) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        abandon_group_->store(true);
        st = Status::Unavailable(
            fmt::format("kafka consumer close: the group coordinator did not answer within {} "
                        "ms; the group drops this member after its session timeout",
                        wait.count()));
        break;
      }
      // Serves the rebalance callback; messages fetched before the close are dropped (a
      // queue served for callbacks only would trip librdkafka's assertion on them).
      rd_kafka_message_t* left = rd_kafka_consumer_poll(rk_.get(), 100);
      if (left != nullptr) rd_kafka_message_destroy(left);
    }
    closed_ = true;
    return st;
  }

  void CapWaits(std::chrono::milliseconds limit) override {
    wait_cap_ = std::max(limit, std::chrono::milliseconds(1));
  }

 private:
  std::chrono::milliseconds Capped(std::chrono::milliseconds timeout) const {
    return wait_cap_ ? std::min(timeout, *wait_cap_) : timeout;
  }

  Status CheckUsable() const {
    if (closed_) return Status::FailedPrecondition("kafka consumer is closed");
    return CheckFatal();
  }

  // Runs rd_kafka_pause_partitions or rd_kafka_resume_partitions on `partitions`.
  Status ApplyToPartitions(std::span<const TopicPartition> partitions,
                           rd_kafka_resp_err_t (*op)(rd_kafka_t*, rd_kafka_topic_partition_list_t*),
                           std::string_view what) {
    SPLITSTREAM_RETURN_IF_ERROR(CheckUsable());
    PartitionListPtr list = ToList(partitions);
    SPLITSTREAM_RETURN_IF_ERROR(ErrorToStatus(op(rk_.get(), list.get()), what));
    return FirstPartitionError(list.get(), what);
  }

  Status CheckFatal() const {
    char errstr[512];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk_.get(), errstr, sizeof(errstr));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
    return Status::FailedPrecondition(std::string("kafka consumer fatal error: ") + errstr + " (" +
                                      rd_kafka_err2name(err) + ")");
  }

  // Sets the start offset of every partition of `list` that the reset policy has not rewound
  // yet; the others keep their offset (the committed one, unless set).
  void ApplyReset(rd_kafka_topic_partition_list_t* list) {
    if (reset_policy_ == ResetPolicy::kNone) return;
    PartitionListPtr by_time(rd_kafka_topic_partition_list_new(list->cnt));
    std::vector<rd_kafka_topic_partition_t*> targets;
    for (int i = 0; i < list->cnt; ++i) {
      rd_kafka_topic_partition_t* e = &list->elems[i];
      if (!reset_done_.insert({e->topic, e->partition}).second) continue;
      if (reset_policy_ == ResetPolicy::kEarliest) {
        e->offset = RD_KAFKA_OFFSET_BEGINNING;
      } else {
        rd_kafka_topic_partition_list_add(by_time.get(), e->topic, e->partition)->offset =
            reset_timestamp_ms_;
        targets.push_back(e);
      }
    }
    if (targets.empty()) return;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(
        rk_.get(), by_time.get(), static_cast<int>(kOffsetsForTimesTimeout.count()));
    for (size_t i = 0; i < targets.size(); ++i) {
      const rd_kafka_topic_partition_t& r = by_time->elems[i];
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && r.err == RD_KAFKA_RESP_ERR_NO_ERROR &&
          r.offset >= 0) {
        targets[i]->offset = r.offset;
      } else if (err == RD_KAFKA_RESP_ERR_NO_ERROR && r.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        targets[i]->offset = RD_KAFKA_OFFSET_END;  // nothing at or after the timestamp
      } else {
        // Rewinding too far is safe (the sink deduplicates); skipping data is not.
        spdlog::error("kafka offsetsForTimes {}[{}] failed ({}); rewinding to the beginning",
                      r.topic, r.partition,
                      rd_kafka_err2name(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : r.err));
        targets[i]->offset = RD_KAFKA_OFFSET_BEGINNING;
      }
    }
  }

  // Sets the start offset of every partition of `list` to its committed offset, or, where the
  // group has none, to auto.offset.reset's beginning or end. librdkafka would find the same
  // offsets itself, but for a partition without a committed offset (a new group, a new topic)
  // librdkafka 2.0.2 backs its offset query off by 100 ms first (rd_kafka_offset_reset with
  // _NO_OFFSET). On any error, or with auto.offset.reset=error, the offsets stay unset and
  // librdkafka's own path decides, as before.
  void StartAtCommitted(rd_kafka_topic_partition_list_t* list) {
    if (list->cnt == 0) return;
    PartitionListPtr committed(rd_kafka_topic_partition_list_copy(list));
    for (int i = 0; i < committed->cnt; ++i) committed->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), committed.get(),
                                                 static_cast<int>(kOffsetsForTimesTimeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka consumer {}: committed offsets: {}; librdkafka looks them up itself",
                   options_.group_id, rd_kafka_err2name(err));
      return;
    }
    const int64_t none = OffsetWithoutCommit();
    for (int i = 0; i < list->cnt; ++i) {
      rd_kafka_topic_partition_t* e = &list->elems[i];
      const rd_kafka_topic_partition_t* c =
          rd_kafka_topic_partition_list_find(committed.get(), e->topic, e->partition);
      if (c == nullptr || c->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      if (c->offset >= 0) {
        e->offset = c->offset;
      } else if (c->offset == RD_KAFKA_OFFSET_INVALID && none != RD_KAFKA_OFFSET_INVALID) {
        e->offset = none;
      }
    }
    MakeConcrete(list);
  }

  // Replaces each logical RD_KAFKA_OFFSET_BEGINNING or _END of `list` by the partition's
  // current low or high watermark: one ListOffsets request per partition leader for all of
  // them (rd_kafka_offsets_for_times with the protocol's special timestamps, -2 earliest and
  // -1 latest, which are those two constants). Where the lookup fails the logical offset stays.
  // Assigning a logical offset makes librdkafka 2.0.2 look the offset up when the fetch
  // starts; when that happens before the partition's broker thread has taken the partition
  // over, it finds "no current leader" and retries only after a fixed 500 ms
  // (bench/sink/README.md, round 5: the sink's first fetch came 500 ms after the assignment in
  // 2 of 9 debug-logged starts). With a concrete offset the fetch starts as soon as that
  // thread has the partition. Should the offset fall out of the log meanwhile (retention),
  // auto.offset.reset applies as usual.
  void MakeConcrete(rd_kafka_topic_partition_list_t* list) {
    PartitionListPtr query(rd_kafka_topic_partition_list_new(list->cnt));
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& e = list->elems[i];
      if (e.offset == RD_KAFKA_OFFSET_BEGINNING || e.offset == RD_KAFKA_OFFSET_END) {
        rd_kafka_topic_partition_list_add(query.get(), e.topic, e.partition)->offset = e.offset;
      }
    }
    if (query->cnt == 0) return;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(
        rk_.get(), query.get(), static_cast<int>(kStartOffsetTimeout.count()));
    for (int i = 0; i < query->cnt; ++i) {
      const rd_kafka_topic_partition_t& r = query->elems[i];
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR || r.err != RD_KAFKA_RESP_ERR_NO_ERROR ||
          r.offset < 0) {
        spdlog::warn("kafka consumer {}: start offset of {}[{}]: {}; librdkafka looks it up",
                     options_.group_id, r.topic, r.partition,
                     rd_kafka_err2name(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : r.err));
        continue;
      }
      rd_kafka_topic_partition_list_find(list, r.topic, r.partition)->offset = r.offset;
    }
  }

  // Where auto.offset.reset starts a partition that has no committed offset:
  // RD_KAFKA_OFFSET_BEGINNING, RD_KAFKA_OFFSET_END, or RD_KAFKA_OFFSET_INVALID for `error`.
  int64_t OffsetWithoutCommit() const {
    char value[64];
    size_t size = sizeof(value);
    if (rd_kafka_conf_get(rd_kafka_conf(rk_.get()), "auto.offset.reset", value, &size) !=
        RD_KAFKA_CONF_OK) {
      return RD_KAFKA_OFFSET_INVALID;
    }
    const std::string_view v(value);
    if (v == "smallest" || v == "earliest" || v == "beginning") return RD_KAFKA_OFFSET_BEGINNING;
    if (v == "largest" || v == "latest" || v == "end") return RD_KAFKA_OFFSET_END;
    return RD_KAFKA_OFFSET_INVALID;
  }

  void HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
    const bool cooperative =
        std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
    std::vector<TopicPartition> tps = FromList(partitions);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (reset_policy_ == ResetPolicy::kNone) StartAtCommitted(partitions);
      ApplyReset(partitions);
      Status st = cooperative
                      ? ErrorToStatus(rd_kafka_incremental_assign(rk_.get(), partitions),
                                      "kafka incremental assign")
                      : ErrorToStatus(rd_kafka_assign(rk_.get(), partitions), "kafka assign");
      if (!st.ok()) spdlog::error("{}", st.ToString());
      spdlog::info("kafka consumer {}: assigned {} partition(s) ({})", options_.group_id,
                   tps.size(), cooperative ? "cooperative" : "eager");
      if (options_.on_assigned) options_.on_assigned(tps);
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      const bool lost = rd_kafka_assignment_lost(rk_.get()) != 0;
      spdlog::info("kafka consumer {}: {} {} partition(s)", options_.group_id,
                   lost ? "lost" : "revoked", tps.size());
      if (options_.on_revoked) options_.on_revoked(tps);
      Status st = cooperative
                      ? ErrorToStatus(rd_kafka_incremental_unassign(rk_.get(), partitions),
                                      "kafka incremental unassign")
                      : ErrorToStatus(rd_kafka_assign(rk_.get(), nullptr), "kafka unassign");
      if (!st.ok()) spdlog::error("{}", st.ToString());
      return;
    }
    spdlog::error("kafka consumer {}: rebalance error {}", options_.group_id,
                  rd_kafka_err2name(err));
    if (options_.on_revoked) options_.on_revoked(Assignment());
    (void)rd_kafka_assign(rk_.get(), nullptr);
  }

  static void OnRebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    static_cast<ConsumerImpl*>(opaque)->HandleRebalance(err, partitions);
  }

  // Uses no opaque: the handle may outlive this object (see Message).
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void*) {
    auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      spdlog::error("kafka consumer {}: fatal: {}", rd_kafka_name(rk), reason);
    } else {
      spdlog::warn("kafka consumer {}: {} ({})", rd_kafka_name(rk), reason,
                   rd_kafka_err2name(code));
    }
  }

  ConsumerOptions options_;
  std::shared_ptr<std::atomic<bool>> abandon_group_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<rd_kafka_t> rk_;
  bool closed_ = false;
  std::optional<std::chrono::milliseconds> wait_cap_;  // CapWaits
  ResetPolicy reset_policy_ = ResetPolicy::kNone;
  int64_t reset_timestamp_ms_ = 0;
  std::set<TopicPartition> reset_done_;
};

Result<std::unique_ptr<Consumer>> Consumer::Create(ConsumerOptions options) {
  if (options.brokers.empty()) {
    return Status::InvalidArgument("kafka consumer needs bootstrap servers", "brokers");
  }
  if (options.subscriptions.empty()) {
    return Status::InvalidArgument("kafka consumer needs at least one subscription",
                                   "subscriptions");
  }
  if (options.commit_timeout.count() <= 0) {
    return Status::InvalidArgument("kafka consumer commit timeout must be positive",
                                   "commit_timeout");
  }
  if (options.close_timeout.count() <= 0) {
    return Status::InvalidArgument("kafka consumer close timeout must be positive",
                                   "close_timeout");
  }
  auto consumer = std::make_unique<ConsumerImpl>(std::move(options));
  SPLITSTREAM_RETURN_IF_ERROR(consumer->Init());
  return std::unique_ptr<Consumer>(std::move(consumer));
}

}  // namespace splitstream::kafka
