// Helpers shared by the producer, consumer and admin implementations: configuration building
// with secret-safe errors, librdkafka error → Status mapping and the spdlog log bridge.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "splitstream/core/result.h"
#include "splitstream/core/status.h"

namespace splitstream::kafka::internal {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const { rd_kafka_event_destroy(event); }
};
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

// Whether a property holds a secret whose value must never be logged or echoed.
bool IsSecretProperty(std::string_view name);

// Sets one property; the error names the property but echoes its value only when the property
// is not secret.
Status SetProperty(rd_kafka_conf_t* conf, const std::string& name, const std::string& value);

// Sets every property of `properties` in order.
Status SetProperties(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& properties);

// A new configuration with the log bridge installed (librdkafka logs → spdlog).
ConfPtr NewConf();

// "<context>: <librdkafka text> (<ERROR_NAME>)" with a code chosen by the kind of error.
Status ErrorToStatus(rd_kafka_resp_err_t err, std::string_view context);
// The same for an rd_kafka_error_t, which it destroys.
Status ErrorToStatus(rd_kafka_error_t* error, std::string_view context);

// Creates a handle of `type` from `conf` (consumed on success and on failure).
Result<HandlePtr> NewHandle(rd_kafka_type_t type, ConfPtr conf);

}  // namespace splitstream::kafka::internal
