// Kafka access: an idempotent producer, a manually committing group consumer and two admin
// helpers. This library is the only one that includes rdkafka.h (librdkafka 2.0.2); nothing of
// librdkafka leaks through this header.
//
// Errors are Status values whose message names librdkafka's error (for example
// "unavailable: produce: Local: Queue full (_QUEUE_FULL)"). Configuration values of secret
// properties (sasl.password, ssl.key.password, ...) never appear in errors or logs.
//
// librdkafka's own log lines go to spdlog ("rdkafka <client>: <facility>: <text>"):
// its emerg..err levels at error, warning at warn, notice at info, info and debug at debug.
//
// Producer and Consumer are interfaces so that pipelines can be tested with fakes; Create()
// returns the librdkafka implementation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/core/status.h"

namespace splitstream::kafka {

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Producer

struct ProducerOptions {
  std::string brokers;  // bootstrap.servers
  std::string client_id = "splitstream-cdc";
  std::string compression = "lz4";  // none|gzip|snappy|lz4|zstd
  int linger_ms = 5;
  int batch_size_bytes = 1 << 20;
  size_t max_in_flight_messages = 500'000;  // queue.buffering.max.messages
  // Any librdkafka property, applied last (they win over the fields above and over the
  // idempotence settings, so do not override enable.idempotence or acks).
  std::map<std::string, std::string> overrides;
};

// The outcome of one produced message. status is OK when the broker acknowledged it (acks=all);
// otherwise partition and offset may be -1.
struct DeliveryReport {
  uint64_t cookie;
  Status status;
  int32_t partition;
  int64_t offset;
};

// Idempotent producer (enable.idempotence=true, acks=all): retries after retriable errors
// neither duplicate nor reorder messages of a partition. Owns one poller thread that serves
// delivery reports; the callback runs on that thread and must be quick (it must not call
// Flush or destroy the producer). Produce, Flush, FatalError and InFlight are thread-safe.
class Producer {
 public:
  using DeliveryCallback = std::function<void(const DeliveryReport&)>;

  // Connects lazily: a wrong broker address shows up as delivery failures after
  // message.timeout.ms, not here. InvalidArgument for an unknown property or bad value.
  static Result<std::unique_ptr<Producer>> Create(ProducerOptions options, DeliveryCallback cb);

  // Enqueues one message (key, value and headers are copied). value nullopt = tombstone (null
  // value); key nullopt = null key; an empty string is an empty, non-null value. The partition
  // comes from the key (librdkafka's default murmur2_random partitioner: the Java client's
  // murmur2 for keyed messages). Exactly one DeliveryReport with `cookie` follows an OK return;
  // none follows an error.
  // Errors: Unavailable when the local queue is full (the caller waits and retries),
  // FailedPrecondition once a fatal error happened (see FatalError), InvalidArgument for bad
  // topic names or a message over message.max.bytes. Never blocks.
  virtual Status Produce(std::string_view topic, std::optional<std::string_view> key,
                         std::optional<std::string_view> value, uint64_t cookie,
                         std::span<const Header> headers = {}) = 0;

  // Waits until every enqueued message has had its delivery report run, or the timeout
  // passes (Unavailable, naming how many are still in flight).
  virtual Status Flush(std::chrono::milliseconds timeout) = 0;

  // A fatal error (rd_kafka_fatal_error: e.g. the idempotence sequence broke) is sticky: after
  // it the producer refuses new messages and the owner must stop without acknowledging
  // anything not reported delivered. nullopt while there was none.
  virtual std::optional<Status> FatalError() const = 0;

  // Messages enqueued whose delivery report has not run yet.
  virtual size_t InFlight() const = 0;

  // Raises a fatal error as if the broker had broken the idempotence sequence
  // (rd_kafka_test_fatal_error). For tests of the owner's fatal-error handling only.
  virtual void InjectFatalErrorForTesting(std::string_view reason) = 0;

  // Flushes for up to 2 s, then destroys the handle; callbacks never run after it returns.
  // Messages still in flight then get no report: the owner must not treat them as delivered.
  virtual ~Producer() = default;
};

// ---------------------------------------------------------------------------------------------
// Consumer

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// Partition changes, reported on the thread that calls Poll (or Close). on_assigned runs
// before the consumer reads the new partitions; on_revoked runs before it gives partitions up,
// so the owner may still Commit them from inside the callback (unless they were lost: then the
// commit fails). A sink drops buffered, uncommitted rows of revoked partitions or flushes and
// commits them; their next owner re-reads from the last committed offset.
using PartitionsCallback = std::function<void(std::span<const TopicPartition>)>;

struct ConsumerOptions {
  std::string brokers;
  std::string group_id = "clickhouse-consumer";
  std::vector<std::string> subscriptions;  // topic names or "^regex" patterns
  std::string auto_offset_reset = "earliest";
  // Any librdkafka property, applied last; e.g. partition.assignment.strategy=cooperative-sticky.
  std::map<std::string, std::string> overrides;
  PartitionsCallback on_assigned;  // optional
  PartitionsCallback on_revoked;   // optional; also for partitions lost without a revoke
  // How long Commit waits for the group coordinator's answer, and Close for the group to be
  // left, before they report Unavailable (librdkafka alone would wait for an unreachable
  // coordinator about as long as the session timeout, 45 s).
  std::chrono::milliseconds commit_timeout{10'000};
  std::chrono::milliseconds close_timeout{10'000};
};

// One consumed message. Owns its bytes (wraps librdkafka's message and destroys it with
// itself); the views stay valid as long as the Message lives, also after its Consumer was
// destroyed (librdkafka's handle is released when the last of its messages is). Movable, not
// copyable.
class Message {
 public:
  // A message that owns copies of the given fields, for fakes and tests of consumers' owners.
  static Message Make(std::string topic, int32_t partition, int64_t offset,
                      std::optional<std::string> key, std::optional<std::string> value,
                      int64_t timestamp_ms = 0, std::vector<Header> headers = {});

  Message(Message&& other) noexcept;
  Message& operator=(Message&& other) noexcept;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message();

  std::string_view topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  int64_t offset() const { return offset_; }
  TopicPartition topic_partition() const { return {std::string(topic_), partition_}; }
  std::optional<std::string_view> key() const { return key_; }
  std::optional<std::string_view> value() const { return value_; }  // nullopt: tombstone
  int64_t timestamp_ms() const { return timestamp_ms_; }            // -1 when the broker has none
  std::vector<Header> headers() const;  // in produce order; a null header value reads as ""

 private:
  struct Owned;
  Message() = default;
  // Takes ownership of an rd_kafka_message_t without an error; `handle` keeps the rd_kafka_t
  // alive (librdkafka cannot destroy a handle while its messages live).
  static Message Wrap(void* rd_message, std::shared_ptr<void> handle);
  void Reset();

  std::string_view topic_;
  int32_t partition_ = -1;
  int64_t offset_ = -1;
  std::optional<std::string_view> key_;
  std::optional<std::string_view> value_;
  int64_t timestamp_ms_ = -1;
  void* rd_message_ = nullptr;  // rd_kafka_message_t*, or nullptr when owned_ holds the bytes
  Owned* owned_ = nullptr;
  std::shared_ptr<void> handle_;

  friend class ConsumerImpl;
};

// Offsets of one assigned partition. committed and position are -1 when unknown.
// lag = high_watermark - committed, or high_watermark - low watermark when nothing was
// committed yet (every retained message is still to be processed).
struct PartitionLag {
  TopicPartition tp;
  int64_t committed;
  int64_t position;
  int64_t high_watermark;
  int64_t lag;
};

enum class ResetPolicy { kNone, kEarliest, kTimestamp };

// A group consumer with manual commits only (enable.auto.commit=false,
// enable.auto.offset.store=false): an offset is committed only by Commit. Handles both the
// eager and the cooperative rebalance protocol. Not thread-safe: one thread uses a Consumer
// (it owns the handle and polls it); callbacks run on that thread.
//
// Defaults chosen for a sink (see README): fetch.wait.max.ms=20, queued.min.messages=1000000,
// queued.max.messages.kbytes=262144, max.partition.fetch.bytes=16777216,
// enable.partition.eof=false.
class Consumer {
 public:
  // Subscribes immediately; the group is joined during the first Polls.
  // InvalidArgument for an unknown property, a bad value or no subscriptions.
  static Result<std::unique_ptr<Consumer>> Create(ConsumerOptions options);

  // Up to max_messages, waiting at most timeout for the first; later ones only if already
  // fetched. Empty after the timeout. Partition EOF is not an error. A fatal consumer error
  // (e.g. a fenced static member) returns FailedPrecondition; transient ones (broker down,
  // unknown topic) are logged and retried by librdkafka.
  virtual Result<std::vector<Message>> Poll(size_t max_messages,
                                            std::chrono::milliseconds timeout) = 0;

  // Commits "next offset to read" per partition, synchronously. Unavailable when the group
  // coordinator cannot be reached; FailedPrecondition when the partition is no longer
  // assigned to this member (a rebalance happened: its new owner re-reads from the last
  // committed offset).
  virtual Status Commit(std::span<const std::pair<TopicPartition, int64_t>> next_offsets) = 0;

  // Stops / restarts fetching the partitions; messages already fetched are still returned.
  // A rebalance that revokes and re-assigns a partition un-pauses it.
  virtual Status Pause(std::span<const TopicPartition> partitions) = 0;
  virtual Status Resume(std::span<const TopicPartition> partitions) = 0;

  // Rewinds every partition this consumer gets assigned (now and on later rebalances, once per
  // partition) to the earliest offset or to the first offset at/after timestamp_ms
  // (offsetsForTimes; the end of the partition when nothing is that recent). Used by
  // `splitstream sink --reset-offsets`. kNone stops further rewinds.
  virtual void SetResetOnAssign(ResetPolicy policy, int64_t timestamp_ms = 0) = 0;

  virtual std::vector<TopicPartition> Assignment() = 0;

  // Committed offset, position and high watermark of every assigned partition (asks the
  // group coordinator and the partition leaders).
  virtual Result<std::vector<PartitionLag>> Lag(std::chrono::milliseconds timeout) = 0;

  // Messages of the assigned partitions that Poll has not returned yet, as far as this client
  // knows without asking anyone: per partition, the high watermark carried by the last fetch
  // response (rd_kafka_get_watermark_offsets) minus the position (the offset after the last
  // message Poll returned), summed. A partition without a fetch response or without a returned
  // message yet counts 0. Cheap (no network call); used by the sink to tell a backlog from
  // steady traffic.
  virtual int64_t CachedLag() = 0;

  // Leaves the group cleanly (revokes the assignment, on_revoked runs). Later calls other
  // than Close fail with FailedPrecondition. The destructor closes when Close was not called.
  virtual Status Close() = 0;

  // From now on, Commit and Close each wait at most `limit` (and at most their own
  // ConsumerOptions timeouts) for the group coordinator: a caller with a deadline, such as a
  // sink stopping, passes what is left of it before each. A limit below 1 ms counts as 1 ms.
  virtual void CapWaits(std::chrono::milliseconds limit) = 0;

  virtual ~Consumer() = default;
};

// ---------------------------------------------------------------------------------------------
// Admin helpers (each opens and closes its own short-lived client).

// Creates the topics that do not exist yet; existing topics are fine (their partition count is
// left as it is). A new topic may take a moment longer to appear in ListTopics (the broker's
// metadata trails the controller's answer); producers and consumers wait for it themselves.
Status CreateTopics(const std::string& brokers, std::span<const std::string> topics, int partitions,
                    int replication_factor, std::chrono::milliseconds timeout);

// Every topic name in the cluster, internal ones (__consumer_offsets) included, sorted.
Result<std::vector<std::string>> ListTopics(const std::string& brokers,
                                            std::chrono::milliseconds timeout);

// Extra librdkafka properties for the admin helpers (security settings); used by both.
// Not needed for a PLAINTEXT cluster.
Status CreateTopics(const std::string& brokers, const std::map<std::string, std::string>& overrides,
                    std::span<const std::string> topics, int partitions, int replication_factor,
                    std::chrono::milliseconds timeout);
Result<std::vector<std::string>> ListTopics(const std::string& brokers,
                                            const std::map<std::string, std::string>& overrides,
                                            std::chrono::milliseconds timeout);

// Whether `name` is a legal Kafka topic name: 1..249 of [a-zA-Z0-9._-], not "." or "..".
bool IsValidTopicName(std::string_view name);

}  // namespace splitstream::kafka
