#include "rd_common.h"

#include <spdlog/spdlog.h>

#include <array>
#include <string>

namespace splitstream::kafka::internal {
namespace {

// librdkafka calls this from its own threads; spdlog's default logger is thread-safe.
void LogBridge(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  // syslog levels: 0..3 emerg/alert/crit/err, 4 warning, 5 notice, 6 info, 7 debug.
  spdlog::level::level_enum spd_level = level <= 3   ? spdlog::level::err
                                        : level == 4 ? spdlog::level::warn
                                        : level == 5 ? spdlog::level::info
                                                     : spdlog::level::debug;
  if (!spdlog::should_log(spd_level)) return;
  spdlog::log(spd_level, "rdkafka {}: {}: {}", rk ? rd_kafka_name(rk) : "-", facility, text);
}

}  // namespace

bool IsSecretProperty(std::string_view name) {
  // Every property librdkafka 2.0.2 marks sensitive, plus anything that looks like a secret.
  return name.find("password") != std::string_view::npos ||
         name.find("secret") != std::string_view::npos ||
         name.find("sasl.oauthbearer.config") != std::string_view::npos ||
         name.find("ssl.key.pem") != std::string_view::npos ||
         name.find("ssl_key") != std::string_view::npos ||
         name.find("ssl.keystore") != std::string_view::npos;
}

Status SetProperty(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  std::array<char, 512> errstr{};
  rd_kafka_conf_res_t res =
      rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr.data(), errstr.size());
  if (res == RD_KAFKA_CONF_OK) return Status::Ok();
  if (IsSecretProperty(name)) {
    return Status::InvalidArgument("invalid value for kafka property " + name, name);
  }
  return Status::InvalidArgument(std::string("kafka property ") + name + ": " + errstr.data(),
                                 name);
}

Status SetProperties(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& properties) {
  for (const auto& [name, value] : properties) {
    SPLITSTREAM_RETURN_IF_ERROR(SetProperty(conf, name, value));
  }
  return Status::Ok();
}

ConfPtr NewConf() {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), LogBridge);
  return conf;
}

Status ErrorToStatus(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  std::string message =
      std::string(context) + ": " + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) + ")";
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
      return Status::Unavailable(std::move(message));
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
      return Status::InvalidArgument(std::move(message));
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return Status::NotFound(std::move(message));
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return Status::AlreadyExists(std::move(message));
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return Status::PermissionDenied(std::move(message));
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return Status::Unauthenticated(std::move(message));
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
      return Status::FailedPrecondition(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

Status ErrorToStatus(rd_kafka_error_t* error, std::string_view context) {
  if (error == nullptr) return Status::Ok();
  rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  std::string message = std::string(context) + ": " + rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  Status mapped = ErrorToStatus(code, "");
  return Status(mapped.code(), message + " (" + rd_kafka_err2name(code) + ")");
}

Result<HandlePtr> NewHandle(rd_kafka_type_t type, ConfPtr conf) {
  std::array<char, 512> errstr{};
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr.data(), errstr.size());
  if (rk == nullptr) {
    // Failures here are configuration conflicts; librdkafka names properties, not values.
    return Status::InvalidArgument(std::string("kafka client: ") + errstr.data());
  }
  (void)conf.release();  // rd_kafka_new owns the configuration now
  return HandlePtr(rk);
}

}  // namespace splitstream::kafka::internal
