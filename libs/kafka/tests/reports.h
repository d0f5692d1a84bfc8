// Test helpers shared by the kafka tests: delivery reports collected from the producer's poller
// thread, and spdlog's output (librdkafka's log lines included) captured while in scope.
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka::testing {

class Reports {
 public:
  Producer::DeliveryCallback Callback() {
    return [this](const DeliveryReport& r) {
      std::lock_guard lock(mu_);
      reports_.push_back(r);
    };
  }
  std::vector<DeliveryReport> Get() {
    std::lock_guard lock(mu_);
    return reports_;
  }

 private:
  std::mutex mu_;
  std::vector<DeliveryReport> reports_;
};

// Routes spdlog's default logger, at debug level, into a string until destroyed.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(text_));
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string Text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace splitstream::kafka::testing
