// The librdkafka producer behind kafka::Producer.
//
// One poller thread calls rd_kafka_poll, which runs delivery reports and error callbacks. The
// in-flight count is ours (incremented by a successful Produce, decremented after the report
// ran), so Flush can wait on it without polling from the caller's thread: polling from two
// threads would run the owner's callback on the wrong one.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rd_common.h"
#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka {
namespace {

using internal::ErrorToStatus;

class ProducerImpl final : public Producer {
 public:
  explicit ProducerImpl(DeliveryCallback cb) : cb_(std::move(cb)) {}

  Status Init(const ProducerOptions& options) {
    internal::ConfPtr conf = internal::NewConf();
    std::map<std::string, std::string> props = {
        {"bootstrap.servers", options.brokers},
        {"client.id", options.client_id},
        {"compression.type", options.compression},
        {"linger.ms", std::to_string(options.linger_ms)},
        {"batch.size", std::to_string(options.batch_size_bytes)},
        {"queue.buffering.max.messages", std::to_string(options.max_in_flight_messages)},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        // The Java client's partitioner (murmur2 of the key), so keyed records land on the
        // partitions Debezium (Kafka Connect) would choose; librdkafka defaults to CRC32.
        {"partitioner", "murmur2_random"},
    };
    SPLITSTREAM_RETURN_IF_ERROR(internal::SetProperties(conf.get(), props));
    SPLITSTREAM_RETURN_IF_ERROR(internal::SetProperties(conf.get(), options.overrides));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &ProducerImpl::OnDelivery);
    rd_kafka_conf_set_error_cb(conf.get(), &ProducerImpl::OnError);
    SPLITSTREAM_ASSIGN_OR_RETURN(rk_, internal::NewHandle(RD_KAFKA_PRODUCER, std::move(conf)));
    poller_ = std::thread([this] { PollLoop(); });
    pthread_setname_np(poller_.native_handle(), "kafka-dr");  // shows in top -H and perf
    return Status::Ok();
  }

  ~ProducerImpl() override {
    if (rk_ != nullptr) {
      Status flushed = Flush(std::chrono::seconds(2));
      if (!flushed.ok()) spdlog::warn("kafka producer closing: {}", flushed.ToString());
    }
    stop_.store(true);
    if (poller_.joinable()) poller_.join();
    // No report may reach the owner after this destructor: the poller has stopped, and
    // destroying the handle purges what is left without serving the main queue.
    callbacks_enabled_.store(false);
    for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
    topics_.clear();
    rk_.reset();
  }

  Status Produce(std::string_view topic, std::optional<std::string_view> key,
                 std::optional<std::string_view> value, uint64_t cookie,
                 std::span<const Header> headers) override {
    SPLITSTREAM_ASSIGN_OR_RETURN(rd_kafka_topic_t * rkt, Topic(topic));
    if (auto fatal = FatalError()) {
      return Status::FailedPrecondition("kafka producer stopped after a fatal error: " +
                                        fatal->message());
    }
    constexpr size_t kInlineArgs = 16;
    rd_kafka_vu_t inline_vus[kInlineArgs];
    std::vector<rd_kafka_vu_t> heap_vus;
    rd_kafka_vu_t* vus = inline_vus;
    if (5 + headers.size() > kInlineArgs) {
      heap_vus.resize(5 + headers.size());
      vus = heap_vus.data();
    }
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_RKT;
    vus[n++].u.rkt = rkt;
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(cookie));
    // An empty, non-null view needs a non-null pointer: librdkafka reads NULL as "no value".
    static const char kEmpty = 0;
    if (key) {
      vus[n].vtype = RD_KAFKA_VTYPE_KEY;
      vus[n].u.mem.ptr = const_cast<char*>(key->empty() ? &kEmpty : key->data());
      vus[n++].u.mem.size = key->size();
    }
    if (value) {
      vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
      vus[n].u.mem.ptr = const_cast<char*>(value->empty() ? &kEmpty : value->data());
      vus[n++].u.mem.size = value->size();
    }
    for (const Header& h : headers) {  // Header::key is a std::string: already terminated
      vus[n].vtype = RD_KAFKA_VTYPE_HEADER;
      vus[n].u.header.name = h.key.c_str();
      vus[n].u.header.val = h.value.empty() ? &kEmpty : h.value.data();
      vus[n++].u.header.size = static_cast<ssize_t>(h.value.size());
    }
    // Count before enqueueing: the report may run on the poller before produceva returns.
    in_flight_.fetch_add(1);
    rd_kafka_error_t* error = rd_kafka_produceva(rk_.get(), vus, n);
    if (error == nullptr) return Status::Ok();
    DecrementInFlight();
    rd_kafka_resp_err_t code = rd_kafka_error_code(error);
    Status status = ErrorToStatus(error, "kafka produce to " + std::string(topic));
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      return Status::FailedPrecondition(status.message());
    }
    return status;
  }

  Status Flush(std::chrono::milliseconds timeout) override {
    // rd_kafka_flush would serve callbacks on this thread; wait for the poller to run them.
    std::unique_lock lock(mu_);
    bool done = drained_.wait_for(lock, timeout, [this] { return in_flight_.load() == 0; });
    if (done) return Status::Ok();
    return Status::Unavailable("kafka flush: " + std::to_string(in_flight_.load()) +
                               " message(s) still in flight after " +
                               std::to_string(timeout.count()) + " ms");
  }

  std::optional<Status> FatalError() const override {
    // Ask the handle itself: the error callback may not have run on the poller yet.
    char errstr[512];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk_.get(), errstr, sizeof(errstr));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
    return Status::FailedPrecondition(std::string("kafka producer fatal error: ") + errstr + " (" +
                                      rd_kafka_err2name(err) + ")");
  }

  size_t InFlight() const override { return in_flight_.load(); }

  void InjectFatalErrorForTesting(std::string_view reason) override {
    (void)rd_kafka_test_fatal_error(rk_.get(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                    std::string(reason).c_str());
  }

 private:
  // The topic handle of `name`, made on first use. Passing a handle instead of the name saves
  // librdkafka a lookup under its handle-wide write lock on every message (the CDC hot path).
  Result<rd_kafka_topic_t*> Topic(std::string_view name) {
    std::lock_guard lock(topics_mu_);
    auto it = topics_.find(name);
    if (it != topics_.end()) return it->second;
    if (!IsValidTopicName(name)) {
      return Status::InvalidArgument("invalid kafka topic name '" + std::string(name) + "'",
                                     "topic");
    }
    std::string owned(name);
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), owned.c_str(), nullptr);
    if (rkt == nullptr) {
      return ErrorToStatus(rd_kafka_last_error(), "kafka topic " + owned);
    }
    topics_.emplace(std::move(owned), rkt);
    return rkt;
  }

  void PollLoop() {
    while (!stop_.load()) rd_kafka_poll(rk_.get(), 50);
  }

  void DecrementInFlight() {
    if (in_flight_.fetch_sub(1) == 1) {
      std::lock_guard lock(mu_);  // pairs with the predicate check in Flush
      drained_.notify_all();
    }
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<ProducerImpl*>(opaque);
    if (self->callbacks_enabled_.load() && self->cb_) {
      DeliveryReport report{
          .cookie = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private)),
          .status = ErrorToStatus(msg->err, "kafka delivery"),
          .partition = msg->partition,
          .offset = msg->err ? -1 : msg->offset,
      };
      self->cb_(report);
    }
    self->DecrementInFlight();
  }

  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char errstr[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, errstr, sizeof(errstr));
      spdlog::error("kafka producer fatal error: {} ({})", errstr, rd_kafka_err2name(orig));
      return;
    }
    // Transport errors and "all brokers down" are retried by librdkafka; say so once each.
    spdlog::warn("kafka producer: {} ({})", reason,
                 rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
  }

  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  DeliveryCallback cb_;
  internal::HandlePtr rk_;
  std::mutex topics_mu_;
  // GUARDED_BY(topics_mu_); destroyed before the handle.
  std::unordered_map<std::string, rd_kafka_topic_t*, NameHash, std::equal_to<>> topics_;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> callbacks_enabled_{true};
  std::atomic<size_t> in_flight_{0};
  std::mutex mu_;
  std::condition_variable drained_;
};

}  // namespace

Result<std::unique_ptr<Producer>> Producer::Create(ProducerOptions options, DeliveryCallback cb) {
  if (options.brokers.empty()) {
    return Status::InvalidArgument("kafka producer needs bootstrap servers", "brokers");
  }
  auto producer = std::make_unique<ProducerImpl>(std::move(cb));
  SPLITSTREAM_RETURN_IF_ERROR(producer->Init(options));
  return std::unique_ptr<Producer>(std::move(producer));
}

bool IsValidTopicName(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace splitstream::kafka
