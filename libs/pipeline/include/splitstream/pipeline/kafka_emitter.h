// KafkaEmitter: changes as Debezium change events on Kafka topics {prefix}.{schema}.{table}
// (design.md section 5), produced idempotently with acks=all. A record is acknowledged to the
// AckTracker when its delivery report says the broker has it; a failed delivery fails it
// (nothing after it is ever confirmed to PostgreSQL).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "splitstream/core/clock.h"
#include "splitstream/core/result.h"
#include "splitstream/debezium/encoder.h"
#include "splitstream/pipeline/ack_tracker.h"
#include "splitstream/pipeline/emitter.h"

namespace splitstream::pipeline {

struct KafkaEmitterOptions {
  std::string brokers;
  debezium::EncoderOptions encoder;
  bool tombstones_on_delete = true;   // Debezium's tombstones.on.delete
  bool transaction_metadata = false;  // BEGIN/END records on {prefix}.transaction
  // lz4: the cheapest in total here (producer plus broker CPU; `none` ships 8x the bytes).
  std::string compression = "lz4";
  // Batches fill (batch.size 1 MiB) at high rates instead of being sent every 5 ms: fewer,
  // larger produce requests cost the client and the broker less; at most 20 ms of latency.
  int linger_ms = 20;
  std::map<std::string, std::string> producer_overrides;  // librdkafka properties
};

class KafkaEmitter final : public Emitter {
 public:
  // `tracker` and `clock` must outlive the emitter. Unavailable when the producer cannot be
  // created (bad broker list or properties give InvalidArgument).
  static Result<std::unique_ptr<KafkaEmitter>> Create(KafkaEmitterOptions options,
                                                      AckTracker* tracker, Clock* clock);
  ~KafkaEmitter() override;

  Status BeginTransaction(uint32_t xid, Lsn lsn, int64_t commit_time_us) override;
  Status EndTransaction(uint32_t xid, Lsn commit_lsn, int64_t commit_time_us) override;
  Status Emit(const RowChange& change) override;
  Status EmitTruncate(const TableInfo& table, const debezium::SourceInfo& source) override;
  Status EmitHeartbeat(int64_t ts_ms) override;
  Status Poll() override;
  Status Flush(std::chrono::milliseconds timeout) override;
  std::optional<Status> Fatal() const override;

  struct Impl;

 private:
  explicit KafkaEmitter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitstream::pipeline
