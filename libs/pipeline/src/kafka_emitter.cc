#include "splitstream/pipeline/kafka_emitter.h"

#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "splitstream/kafka/kafka.h"

namespace splitstream::pipeline {

struct KafkaEmitter::Impl {
  KafkaEmitterOptions options;
  AckTracker* tracker;
  Clock* clock;
  debezium::Encoder encoder;
  std::unique_ptr<kafka::Producer> producer;

  struct Prepared {
    std::shared_ptr<const debezium::TableEncoding> encoding;
    std::string topic;
  };
  std::unordered_map<uint64_t, Prepared> tables;  // by TableInfo::id
  std::string key_buf, value_buf;
  // Transaction metadata: records per table in the open transaction.
  std::vector<std::pair<std::string, int64_t>> tx_counts;
  int64_t tx_events = 0;

  Impl(KafkaEmitterOptions opts, AckTracker* t, Clock* c)
      : options(std::move(opts)), tracker(t), clock(c), encoder(options.encoder) {}

  const Prepared& Prepare(const TableInfo& table) {
    auto it = tables.find(table.id);
    if (it != tables.end()) return it->second;
    Prepared p;
    p.encoding = encoder.Prepare(table.schema);
    p.topic = encoder.Topic(*p.encoding);
    return tables.emplace(table.id, std::move(p)).first->second;
  }

  int64_t NowNanos() const { return clock->WallMicros() * 1000; }

  // Produces one record, waiting while the local queue is full.
  Status Produce(std::string_view topic, std::optional<std::string_view> key,
                 std::optional<std::string_view> value) {
    const uint64_t seq = tracker->Assign();
    for (;;) {
      Status st = producer->Produce(topic, key, value, seq);
      if (st.ok()) return st;
      if (st.code() != StatusCode::kUnavailable) {
        tracker->Fail(seq, st);
        return st;
      }
      // Queue full: the poller thread drains delivery reports; wait a little.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  void Count(const TableInfo& table) {
    if (!options.transaction_metadata) return;
    ++tx_events;
    const std::string name = table.QualifiedName();
    for (auto& [n, c] : tx_counts) {
      if (n == name) {
        ++c;
        return;
      }
    }
    tx_counts.emplace_back(name, 1);
  }
};

KafkaEmitter::KafkaEmitter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaEmitter::~KafkaEmitter() = default;

Result<std::unique_ptr<KafkaEmitter>> KafkaEmitter::Create(KafkaEmitterOptions options,
                                                           AckTracker* tracker, Clock* clock) {
  auto impl = std::make_unique<Impl>(std::move(options), tracker, clock);
  kafka::ProducerOptions popts;
  popts.brokers = impl->options.brokers;
  popts.compression = impl->options.compression;
  popts.linger_ms = impl->options.linger_ms;
  popts.overrides = impl->options.producer_overrides;
  AckTracker* t = tracker;
  auto producer = kafka::Producer::Create(std::move(popts), [t](const kafka::DeliveryReport& r) {
    if (r.status.ok()) {
      t->Ack(r.cookie);
    } else {
      t->Fail(r.cookie, r.status);
    }
  });
  if (!producer.ok()) return producer.status();
  impl->producer = std::move(*producer);
  return std::unique_ptr<KafkaEmitter>(new KafkaEmitter(std::move(impl)));
}

Status KafkaEmitter::BeginTransaction(uint32_t xid, Lsn lsn, int64_t commit_time_us) {
  Impl& d = *impl_;
  if (!d.options.transaction_metadata) return Status::Ok();
  d.tx_counts.clear();
  d.tx_events = 0;
  std::string key = d.encoder.EncodeTransactionKey(xid, lsn);
  std::string value = d.encoder.EncodeTransactionBegin(xid, lsn, commit_time_us / 1000);
  return d.Produce(d.encoder.TransactionTopic(), key, value);
}

Status KafkaEmitter::EndTransaction(uint32_t xid, Lsn commit_lsn, int64_t commit_time_us) {
  Impl& d = *impl_;
  if (!d.options.transaction_metadata) return Status::Ok();
  std::string value = d.encoder.EncodeTransactionEnd(xid, commit_lsn, commit_time_us / 1000,
                                                     d.tx_events, d.tx_counts);
  std::string key = d.encoder.EncodeTransactionKey(xid, commit_lsn);
  return d.Produce(d.encoder.TransactionTopic(), key, value);
}

Status KafkaEmitter::Emit(const RowChange& change) {
  Impl& d = *impl_;
  const Impl::Prepared& p = d.Prepare(*change.table);
  bool has_key = false;
  SPLITSTREAM_RETURN_IF_ERROR(d.encoder.EncodeKeyAndValue(*p.encoding, change.op, change.before,
                                                          change.after, change.source, d.NowNanos(),
                                                          &d.key_buf, &has_key, &d.value_buf));
  std::optional<std::string_view> key;
  if (has_key) key = d.key_buf;
  SPLITSTREAM_RETURN_IF_ERROR(d.Produce(p.topic, key, d.value_buf));
  d.Count(*change.table);
  if (change.op == debezium::Op::kDelete && d.options.tombstones_on_delete && has_key) {
    SPLITSTREAM_RETURN_IF_ERROR(d.Produce(p.topic, key, std::nullopt));
  }
  return Status::Ok();
}

Status KafkaEmitter::EmitTruncate(const TableInfo& table, const debezium::SourceInfo& source) {
  Impl& d = *impl_;
  const Impl::Prepared& p = d.Prepare(table);
  SPLITSTREAM_RETURN_IF_ERROR(
      d.encoder.EncodeTruncate(*p.encoding, source, d.NowNanos(), &d.value_buf));
  d.Count(table);
  return d.Produce(p.topic, std::nullopt, d.value_buf);
}

Status KafkaEmitter::EmitHeartbeat(int64_t ts_ms) {
  Impl& d = *impl_;
  std::string key = d.encoder.EncodeHeartbeatKey();
  std::string value = d.encoder.EncodeHeartbeatValue(ts_ms);
  return d.Produce(d.encoder.HeartbeatTopic(), key, value);
}

Status KafkaEmitter::Poll() { return Status::Ok(); }

Status KafkaEmitter::Flush(std::chrono::milliseconds timeout) {
  return impl_->producer->Flush(timeout);
}

std::optional<Status> KafkaEmitter::Fatal() const { return impl_->producer->FatalError(); }

}  // namespace splitstream::pipeline
