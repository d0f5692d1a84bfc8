#include "metrics.h"

#include <fmt/format.h>

#include "splitstream/pg/pg.h"

namespace splitstream::api {

std::string_view RoutePattern(Route route) {
  switch (route) {
    case Route::kUnmatched:
      return "unmatched";
    case Route::kExperiments:
      return "/v1/experiments";
    case Route::kExperiment:
      return "/v1/experiments/{key}";
    case Route::kExperimentStart:
      return "/v1/experiments/{key}/start";
    case Route::kExperimentStop:
      return "/v1/experiments/{key}/stop";
    case Route::kAssign:
      return "/v1/assign";
    case Route::kUserAssignments:
      return "/v1/users/{user_id}/assignments";
    case Route::kEvents:
      return "/v1/events";
    case Route::kHealthz:
      return "/healthz";
    case Route::kReadyz:
      return "/readyz";
    case Route::kMetrics:
      return "/metrics";
    case Route::kExperimentResults:
      return "/v1/experiments/{key}/results";
    case Route::kDashboard:
      return "/";
  }
  return "unmatched";
}

void Metrics::Record(Route route, std::string_view method, int status,
                     std::chrono::nanoseconds latency) {
  size_t r = static_cast<size_t>(route);
  if (r >= kRouteCount) r = 0;
  size_t m = kMethods.size() - 1;
  for (size_t i = 0; i < kMethods.size() - 1; ++i) {
    if (kMethods[i] == method) {
      m = i;
      break;
    }
  }
  RouteStats& rs = routes_[r];
  size_t s = 0;
  while (s < kStatuses.size() - 1 && kStatuses[s] != status) ++s;
  if (s < kStatuses.size() - 1) {
    rs.requests[m][s].fetch_add(1, std::memory_order_relaxed);
  } else {
    std::lock_guard<std::mutex> lock(other_mu_);
    ++other_[{r, m, status}];
  }
  double seconds = std::chrono::duration<double>(latency).count();
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  rs.buckets[b].fetch_add(1, std::memory_order_relaxed);
  rs.count.fetch_add(1, std::memory_order_relaxed);
  rs.sum_ns.fetch_add(static_cast<uint64_t>(latency.count() > 0 ? latency.count() : 0),
                      std::memory_order_relaxed);
}

std::string Metrics::Render(const experiments::ServiceStats& stats, const pg::Pool* pool) const {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "# HELP splitstream_http_requests_total HTTP requests by route pattern, "
                 "method and status.\n"
                 "# TYPE splitstream_http_requests_total counter\n");
  for (size_t r = 0; r < kRouteCount; ++r) {
    std::string_view route = RoutePattern(static_cast<Route>(r));
    for (size_t m = 0; m < kMethods.size(); ++m) {
      for (size_t s = 0; s + 1 < kStatuses.size(); ++s) {
        uint64_t n = routes_[r].requests[m][s].load(std::memory_order_relaxed);
        if (n == 0) continue;
        fmt::format_to(it,
                       "splitstream_http_requests_total{{route=\"{}\",method=\"{}\","
                       "status=\"{}\"}} {}\n",
                       route, kMethods[m], kStatuses[s], n);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(other_mu_);
    for (const auto& [key, n] : other_) {
      fmt::format_to(it,
                     "splitstream_http_requests_total{{route=\"{}\",method=\"{}\","
                     "status=\"{}\"}} {}\n",
                     RoutePattern(static_cast<Route>(std::get<0>(key))), kMethods[std::get<1>(key)],
                     std::get<2>(key), n);
    }
  }
  fmt::format_to(it,
                 "# HELP splitstream_http_request_duration_seconds Time from a request read "
                 "to its response ready, by route pattern.\n"
                 "# TYPE splitstream_http_request_duration_seconds histogram\n");
  for (size_t r = 0; r < kRouteCount; ++r) {
    const RouteStats& rs = routes_[r];
    uint64_t count = rs.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    std::string_view route = RoutePattern(static_cast<Route>(r));
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      cumulative += rs.buckets[b].load(std::memory_order_relaxed);
      fmt::format_to(it,
                     "splitstream_http_request_duration_seconds_bucket{{route=\"{}\","
                     "le=\"{}\"}} {}\n",
                     route, kBuckets[b], cumulative);
    }
    cumulative += rs.buckets[kBuckets.size()].load(std::memory_order_relaxed);
    fmt::format_to(it,
                   "splitstream_http_request_duration_seconds_bucket{{route=\"{}\","
                   "le=\"+Inf\"}} {}\n",
                   route, cumulative);
    fmt::format_to(it, "splitstream_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route,
                   static_cast<double>(rs.sum_ns.load(std::memory_order_relaxed)) / 1e9);
    fmt::format_to(it, "splitstream_http_request_duration_seconds_count{{route=\"{}\"}} {}\n",
                   route, cumulative);
  }
  if (pool != nullptr) {
    fmt::format_to(it,
                   "# HELP splitstream_pg_pool_connections PostgreSQL pool connections.\n"
                   "# TYPE splitstream_pg_pool_connections gauge\n"
                   "splitstream_pg_pool_connections{{state=\"in_use\"}} {}\n"
                   "splitstream_pg_pool_connections{{state=\"total\"}} {}\n",
                   pool->in_use(), pool->size());
  }
  fmt::format_to(
      it,
      "# HELP splitstream_assign_batches_total Group-commit batches of new "
      "assignments.\n"
      "# TYPE splitstream_assign_batches_total counter\n"
      "splitstream_assign_batches_total {}\n"
      "# HELP splitstream_assign_rows_total Assignments written or read back by those batches.\n"
      "# TYPE splitstream_assign_rows_total counter\n"
      "splitstream_assign_rows_total {}\n"
      "# HELP splitstream_experiment_cache_reloads_total Reloads of the cached "
      "experiment definitions.\n"
      "# TYPE splitstream_experiment_cache_reloads_total counter\n"
      "splitstream_experiment_cache_reloads_total {}\n"
      "# HELP splitstream_assign_stored_cache_hits_total Assignments of returning "
      "users answered from memory.\n"
      "# TYPE splitstream_assign_stored_cache_hits_total counter\n"
      "splitstream_assign_stored_cache_hits_total {}\n",
      stats.assign_batches, stats.assign_rows, stats.cache_reloads, stats.stored_cache_hits);
  return fmt::to_string(out);
}

}  // namespace splitstream::api
