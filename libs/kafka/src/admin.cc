// Admin helpers: a short-lived producer handle carries the Admin API and metadata requests.
#include <algorithm>

#include "rd_common.h"
#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka {
namespace {

using internal::ErrorToStatus;

Result<internal::HandlePtr> AdminHandle(const std::string& brokers,
                                        const std::map<std::string, std::string>& overrides) {
  if (brokers.empty()) return Status::InvalidArgument("kafka admin needs bootstrap servers");
  internal::ConfPtr conf = internal::NewConf();
  SPLITSTREAM_RETURN_IF_ERROR(internal::SetProperty(conf.get(), "bootstrap.servers", brokers));
  SPLITSTREAM_RETURN_IF_ERROR(internal::SetProperty(conf.get(), "client.id", "splitstream-admin"));
  SPLITSTREAM_RETURN_IF_ERROR(internal::SetProperties(conf.get(), overrides));
  return internal::NewHandle(RD_KAFKA_PRODUCER, std::move(conf));
}

struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};

}  // namespace

Status CreateTopics(const std::string& brokers, const std::map<std::string, std::string>& overrides,
                    std::span<const std::string> topics, int partitions, int replication_factor,
                    std::chrono::milliseconds timeout) {
  if (topics.empty()) return Status::Ok();
  for (const std::string& t : topics) {
    if (!IsValidTopicName(t)) {
      return Status::InvalidArgument("invalid kafka topic name '" + t + "'", "topics");
    }
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(internal::HandlePtr rk, AdminHandle(brokers, overrides));
  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const std::string& t : topics) {
    char errstr[512];
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(t.c_str(), partitions, replication_factor, errstr, sizeof(errstr));
    if (nt == nullptr) {
      return Status::InvalidArgument(std::string("kafka create topic ") + t + ": " + errstr);
    }
    owned.emplace_back(nt);
    raw.push_back(nt);
  }
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  char errstr[512];
  if (rd_kafka_AdminOptions_set_operation_timeout(options.get(), static_cast<int>(timeout.count()),
                                                  errstr, sizeof(errstr)) ||
      rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout.count()),
                                                errstr, sizeof(errstr))) {
    return Status::InvalidArgument(std::string("kafka create topics: ") + errstr);
  }
  internal::QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  // The request timeout bounds the answer; a little slack covers the local queueing.
  internal::EventPtr event(
      rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000));
  if (!event) return Status::Unavailable("kafka create topics: no answer in time");
  SPLITSTREAM_RETURN_IF_ERROR(
      ErrorToStatus(rd_kafka_event_error(event.get()), "kafka create topics"));
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  if (result == nullptr) return Status::Internal("kafka create topics: unexpected answer");
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      continue;
    }
    const char* detail = rd_kafka_topic_result_error_string(results[i]);
    Status mapped = ErrorToStatus(err, "");
    return Status(mapped.code(), std::string("kafka create topic ") +
                                     rd_kafka_topic_result_name(results[i]) + ": " +
                                     (detail ? detail : rd_kafka_err2str(err)) + " (" +
                                     rd_kafka_err2name(err) + ")");
  }
  return Status::Ok();
}

Status CreateTopics(const std::string& brokers, std::span<const std::string> topics, int partitions,
                    int replication_factor, std::chrono::milliseconds timeout) {
  return CreateTopics(brokers, {}, topics, partitions, replication_factor, timeout);
}

Result<std::vector<std::string>> ListTopics(const std::string& brokers,
                                            const std::map<std::string, std::string>& overrides,
                                            std::chrono::milliseconds timeout) {
  SPLITSTREAM_ASSIGN_OR_RETURN(internal::HandlePtr rk, AdminHandle(brokers, overrides));
  const rd_kafka_metadata_t* md = nullptr;
  SPLITSTREAM_RETURN_IF_ERROR(
      ErrorToStatus(rd_kafka_metadata(rk.get(), /*all_topics=*/1, nullptr, &md,
                                      static_cast<int>(timeout.count())),
                    "kafka list topics"));
  std::vector<std::string> names;
  names.reserve(md->topic_cnt);
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) names.emplace_back(md->topics[i].topic);
  }
  rd_kafka_metadata_destroy(md);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<std::string>> ListTopics(const std::string& brokers,
                                            std::chrono::milliseconds timeout) {
  return ListTopics(brokers, {}, timeout);
}

}  // namespace splitstream::kafka
