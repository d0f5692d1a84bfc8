// The ClickHouse SQL of the results engine, built as text so that it can be tested without a
// server. Pure functions, thread-safe. The queries are explained in ../../README.md.
//
// Every query reads the deduplicated state of the analytics tables (the schema shared with the
// sink): per ORDER BY key the row with the highest _version (argMax grouping), without
// _deleted rows and without rows at or below the table's latest truncation in _truncations.
// The SQL runs on ClickHouse 18.16 and current releases (no window functions, no DateTime64,
// no JSONExtract, one JOIN per SELECT).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/stats/analysis.h"

namespace splitstream::results {

// One metric as the queries need it (from experiments::MetricSpec).
struct MetricQuery {
  std::string key;
  std::string event_type;
  stats::MetricKind kind = stats::MetricKind::kConversion;
  std::string denominator_event_type;   // kRatio only
  double quantile = 0.5;                // kQuantile only
  std::optional<int64_t> window_hours;  // window after exposure; none: no end

  bool operator==(const MetricQuery&) const = default;
};

enum class Dedup { kFinal, kArgMax };

struct ExperimentQuery {
  int64_t experiment_id = 0;
  std::vector<int64_t> variant_ids;  // control first
  std::vector<MetricQuery> metrics;
  // CUPED: also compute each conversion/mean/count metric in this many hours before the
  // user's exposure. 0 disables.
  int64_t cuped_pre_window_hours = 0;
  // How the latest version per key is found: FINAL (the default: about 4x faster on 18.16,
  // bench/results) or argMax grouping.
  Dedup dedup = Dedup::kFinal;
  // Significance level of the analysis: the quantile metrics' order statistics are read at
  // stats::LevelsForQuantile(p, n, alpha).
  double alpha = 0.05;
};

// Which aggregates the main query returns for a metric, in column order after `variant_id`
// and `users`. The names are for readers of the SQL; the parser goes by position.
std::vector<std::string> MetricColumns(const MetricQuery& metric, bool cuped);
// True when the metric kind takes CUPED data (conversion, mean, count).
bool CupedApplies(stats::MetricKind kind);

// The newest _source_ts_ms over the experiment's rows in experiments, variants, assignments
// and events (0 when there are none): a scalar SQL expression.
std::string FreshnessSql(int64_t experiment_id);

// The subquery of exposures: uh (cityHash64 of user_id), v (variant id), exposed_us
// (assigned_at_us), from the
// deduplicated assignments of the experiment.
std::string ExposuresSql(int64_t experiment_id, Dedup dedup = Dedup::kFinal);
// The subquery of the experiment's live events of the given types: uh, event_type,
// value, ts_us. Deduplicated per (event_id, ts_us). Rows with _deleted = 1 of any experiment
// enter the grouping, because a delete may carry only the key columns.
// With FINAL, the experiment and _deleted filters are applied after the merge (outside the
// FINAL subquery): a PREWHERE before the merge would drop a delete marker and resurrect the row.
std::string EventsSql(int64_t experiment_id, const std::vector<std::string>& event_types,
                      Dedup dedup = Dedup::kFinal);

// The main query (the only one unless a quantile rank disagrees, see below): one row per
// variant id of `q` (variants without exposures too):
//   variant_id, users, MetricColumns(metric 0)..., MetricColumns(metric n-1)..., fresh_ms
// where fresh_ms is the newest _source_ts_ms over the experiment's rows in experiments,
// variants, assignments and events (0 when there are none). A quantile metric's one column is
// an Array(Float64): [] when the variant has no row, else [n, then for each of the levels
// lower, p, upper of stats::LevelsForQuantile(p, n, alpha), computed in SQL with the same
// double operations: r, v(r - 1), v(r), v(r + 1)] where v(i) is the value of 0-based rank i
// among the variant's n sorted values (0 outside [0, n)) and r = min(floor(max(level, 0) * n),
// n - 1), the rank quantileExact reads. The caller checks r against its own rank (and falls
// back to BuildQuantileQuery if it were ever more than one off). InvalidArgument for no
// variants, a metric with an empty event type, or a ratio without a denominator event type.
Result<std::string> BuildMainQuery(const ExperimentQuery& q);

// The values at `levels` (quantileExact's ranks floor(level * n), n = column[0]) from a
// quantile metric's column of the main query (BuildMainQuery); `sql_levels` says which of the
// column's lower (0), p (1), upper (2) slots each level is. Empty when a rank is more than
// one off the rank SQL computed (the caller then asks BuildQuantileQuery) or the column is
// malformed.
std::vector<double> PickOrderStatistics(const std::vector<double>& column,
                                        const std::vector<double>& levels,
                                        const std::vector<size_t>& sql_levels);

// The levels of quantilesExact for one (metric, variant): {p} alone when the sample is too
// small for an interval, else {lower, p, upper} from stats::LevelsForQuantile.
struct QuantileRequest {
  size_t metric_index = 0;  // index into ExperimentQuery::metrics
  int64_t variant_id = 0;
  std::vector<double> levels;
};

// The fallback second round trip for quantile metrics: one row, one Array(Float64) column per
// request, in order: quantilesExact(levels)(value) over the variant's events of the metric
// (after exposure, in the window, with a value). InvalidArgument for an empty list, a
// request for a metric that is not kQuantile or levels outside [0, 1].
Result<std::string> BuildQuantileQuery(const ExperimentQuery& q,
                                       const std::vector<QuantileRequest>& requests);

}  // namespace splitstream::results
