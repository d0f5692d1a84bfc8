// Test helper shared by the kafka tests: collects delivery reports from the producer's poller
// thread.
#pragma once

#include <mutex>
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

}  // namespace splitstream::kafka::testing
