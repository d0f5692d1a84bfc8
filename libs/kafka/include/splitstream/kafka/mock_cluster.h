// MockCluster: librdkafka's in-process mock cluster, for tests that inject per-request errors
// into code that produces through libs/kafka (for example the CDC emitter) without including
// rdkafka.h. Not a broker for volume or replay: it keeps little data (see field-notes.md).
//
// Thread safety: configure it from one thread; producers may use it from any.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "splitstream/core/result.h"

namespace splitstream::kafka {

class MockCluster {
 public:
  static Result<std::unique_ptr<MockCluster>> Create(int brokers = 1);
  virtual ~MockCluster() = default;
  // Bootstrap servers to give a producer or consumer.
  virtual std::string bootstraps() const = 0;
  virtual Status CreateTopic(const std::string& name, int partitions) = 0;
  // The next ProduceRequests (one per error, in order) fail with these Kafka error codes
  // (e.g. 6 NOT_LEADER_FOR_PARTITION, 7 REQUEST_TIMED_OUT: retriable; 10 MESSAGE_TOO_LARGE:
  // not retriable).
  virtual void PushProduceErrors(const std::vector<int>& kafka_error_codes) = 0;
};

}  // namespace splitstream::kafka
