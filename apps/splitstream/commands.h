// The subcommands of `splitstream`, each wiring libraries together for one process role.
#pragma once

#include <cstdint>
#include <string>

#include "splitstream/config/config.h"
#include "splitstream/core/status.h"

namespace splitstream::app {

struct MigrateOptions {
  int months_ahead = 3;
  int retention_months = 0;
};

struct LoadgenOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string experiment = "demo-checkout";
  int64_t users = 2000;
  double base_rate = 0.10;
  double lift = 0.20;
  uint64_t seed = 42;
};

// Serves the HTTP API until SIGTERM or SIGINT, then shuts down gracefully.
Status RunServe(const config::Config& cfg);
// Applies migrations and maintains the partitions of events.
Status RunMigrate(const config::Config& cfg, const MigrateOptions& opts);
// Creates (or reuses), starts and drives an experiment through the HTTP API.
Status RunLoadgen(const config::Config& cfg, const LoadgenOptions& opts);

}  // namespace splitstream::app
