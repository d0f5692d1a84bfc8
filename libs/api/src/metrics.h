// Prometheus metrics of the HTTP layer, in the text exposition format 0.0.4:
//   splitstream_http_requests_total{route,method,status}           counter
//   splitstream_http_request_duration_seconds{route} (_bucket/_sum/_count) histogram
//   splitstream_pg_pool_connections{state="in_use"|"total"}      gauge
//   splitstream_assign_batches_total, splitstream_assign_rows_total,
//   splitstream_experiment_cache_reloads_total                     counters (service stats)
// Route labels are route patterns ("/v1/experiments/{key}"), never raw paths, so the label
// set is bounded.
//
// Thread safety: Record() and Render() may run concurrently from any thread; counters are
// relaxed atomics (a scrape may see one request's counter before its histogram sample).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "splitstream/experiments/service.h"

namespace splitstream::pg {
class Pool;
}

namespace splitstream::api {

enum class Route {
  kUnmatched,
  kExperiments,
  kExperiment,
  kExperimentStart,
  kExperimentStop,
  kAssign,
  kUserAssignments,
  kEvents,
  kHealthz,
  kReadyz,
  kMetrics,
  kExperimentResults,
  kDashboard,
};
inline constexpr size_t kRouteCount = 13;

// "/v1/experiments/{key}"; "unmatched" for kUnmatched.
std::string_view RoutePattern(Route route);

class Metrics {
 public:
  // Upper bounds of the latency histogram, in seconds.
  static constexpr std::array<double, 14> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

  void Record(Route route, std::string_view method, int status, std::chrono::nanoseconds latency);

  // `pool` may be null (no pool gauge then).
  std::string Render(const experiments::ServiceStats& stats, const pg::Pool* pool) const;

 private:
  static constexpr std::array<std::string_view, 8> kMethods = {
      "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "OTHER"};
  static constexpr std::array<int, 15> kStatuses = {200, 201, 204, 400, 401, 403, 404, 405,
                                                    408, 409, 413, 431, 500, 503, 0};

  struct RouteStats {
    std::array<std::array<std::atomic<uint64_t>, kStatuses.size()>, kMethods.size()> requests{};
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};  // last: +Inf only
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
  };

  std::array<RouteStats, kRouteCount> routes_;
  // Statuses outside kStatuses (rare): counted under a lock.
  mutable std::mutex other_mu_;
  std::map<std::tuple<size_t, size_t, int>, uint64_t> other_;  // GUARDED_BY(other_mu_)
};

}  // namespace splitstream::api
