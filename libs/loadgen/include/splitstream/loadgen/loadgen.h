// Load generator: drives an experiment with a known true effect through the HTTP API, as a
// client application would (create/start as admin, assign and track as client). Used by
// `splitstream loadgen` and scripts/demo.
//
// Not thread-safe: one Simulate() call at a time per process is the intended use.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/core/result.h"

namespace splitstream::loadgen {

struct Options {
  std::string url = "http://127.0.0.1:8080";
  std::string admin_token;
  std::string client_token;
  std::string experiment = "demo-checkout";
  int64_t users = 2000;
  double base_rate = 0.10;  // control conversion probability
  double lift = 0.20;       // relative lift of the treatment's conversion probability
  uint64_t seed = 42;
  int64_t batch = 1000;  // events per POST /v1/events
};

struct VariantSummary {
  std::string variant;
  int64_t users = 0;
  int64_t conversions = 0;
};

struct Summary {
  bool created = false;  // false when the experiment existed already
  std::vector<VariantSummary> variants;
  int64_t not_in_experiment = 0;
  int64_t events = 0;
  double seconds = 0;
};

// Creates the experiment (control/treatment 50/50 with a `checkout` conversion metric) when
// missing, starts it, assigns `users` users and posts an `exposure` event for each and a
// `checkout` event with the true probability of its variant. `progress` receives one line
// per thousand users.
Result<Summary> Simulate(const Options& options,
                         const std::function<void(std::string_view)>& progress);

}  // namespace splitstream::loadgen
