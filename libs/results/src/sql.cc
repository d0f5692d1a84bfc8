#include "splitstream/results/sql.h"

#include <fmt/format.h>

#include <algorithm>

#include "splitstream/clickhouse/sql.h"
#include "splitstream/stats/inference.h"

namespace splitstream::results {
namespace {

using clickhouse::QuoteString;

constexpr int64_t kMicrosPerHour = int64_t{3600} * 1000 * 1000;

// Rows newer than the table's latest TRUNCATE (0 when it was never truncated: max() of no
// rows is 0 on every version).
std::string AfterTruncation(std::string_view table) {
  return fmt::format("_version > (SELECT max(version) FROM _truncations WHERE `table` = {})",
                     QuoteString(table));
}

// Events of `event_type` after the user's exposure and inside the metric's window.
std::string PostCondition(const std::string& event_type, const std::optional<int64_t>& window) {
  std::string c = fmt::format("event_type = {} AND ts_us >= exposed_us", QuoteString(event_type));
  if (window) c += fmt::format(" AND ts_us < exposed_us + {}", *window * kMicrosPerHour);
  return c;
}

// Events of `event_type` in the `hours` before the user's exposure.
std::string PreCondition(const std::string& event_type, int64_t hours) {
  return fmt::format("event_type = {} AND ts_us < exposed_us AND ts_us >= exposed_us - {}",
                     QuoteString(event_type), hours * kMicrosPerHour);
}

// The per-user value of a metric over the events matching `cond` (SQL on the joined rows).
std::string PerUserValue(stats::MetricKind kind, const std::string& cond, bool denominator) {
  switch (kind) {
    case stats::MetricKind::kConversion:
      return fmt::format("toFloat64(countIf({}) > 0)", cond);
    case stats::MetricKind::kCount:
      return fmt::format("toFloat64(countIf({}))", cond);
    case stats::MetricKind::kMean:
      // An event without a value adds nothing to a sum of values.
      return fmt::format("sumIf(ifNull(value, 0), {})", cond);
    case stats::MetricKind::kRatio:
      // An event without a value counts 1, so a ratio of value-less events is a ratio of
      // counts (clicks per page view).
      (void)denominator;
      return fmt::format("sumIf(ifNull(value, 1), {})", cond);
    case stats::MetricKind::kQuantile:
      // The number of values the quantile is over.
      return fmt::format("toFloat64(countIf({} AND isNotNull(value)))", cond);
  }
  return "0";
}

bool UseCuped(const ExperimentQuery& q, const MetricQuery& m) {
  return q.cuped_pre_window_hours > 0 && CupedApplies(m.kind);
}

Status Validate(const ExperimentQuery& q) {
  if (q.variant_ids.empty()) return Status::InvalidArgument("no variants", "variants");
  if (q.cuped_pre_window_hours < 0) {
    return Status::InvalidArgument("negative CUPED window", "cuped_pre_window_hours");
  }
  for (size_t i = 0; i < q.metrics.size(); ++i) {
    const MetricQuery& m = q.metrics[i];
    if (m.event_type.empty()) {
      return Status::InvalidArgument("empty event type", fmt::format("metrics[{}].event_type", i));
    }
    if (m.kind == stats::MetricKind::kRatio && m.denominator_event_type.empty()) {
      return Status::InvalidArgument("a ratio needs a denominator event type",
                                     fmt::format("metrics[{}].denominator_event_type", i));
    }
    if (m.window_hours && *m.window_hours <= 0) {
      return Status::InvalidArgument("window_hours must be positive",
                                     fmt::format("metrics[{}].window_hours", i));
    }
  }
  return Status::Ok();
}

std::vector<std::string> EventTypes(const ExperimentQuery& q) {
  std::vector<std::string> types;
  for (const MetricQuery& m : q.metrics) {
    types.push_back(m.event_type);
    if (m.kind == stats::MetricKind::kRatio) types.push_back(m.denominator_event_type);
  }
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  return types;
}

// Events joined to their user's exposure: uh, event_type, value, ts_us, v, exposed_us. Users
// are joined and grouped by uh = cityHash64(user_id): grouping 10 M rows by the 64-bit hash
// took 0.8 s against 3.2 s by the string (18.16, bench/results); two of 1 M users collide
// with probability about 3e-8.
//
// ALL INNER JOIN: the exposures have one row per user (the assignments key). ANY would be
// cheaper on 18.16 (0.2 s of 2.0 s on 10 M events) and give the same rows there, but current
// releases keep one left row per key in an ANY INNER JOIN: one event per user
// (clickhouse_current_test). The subqueries carry aliases, which current releases require.
std::string JoinedEvents(const ExperimentQuery& q, const std::vector<std::string>& types) {
  return fmt::format("({}) AS ev ALL INNER JOIN ({}) AS ex USING uh",
                     EventsSql(q.experiment_id, types, q.dedup),
                     ExposuresSql(q.experiment_id, q.dedup));
}

// The quantile metrics' distinct value conditions (event type and window): each is one array
// of values per variant, shared by the metrics with the same condition (p50 and p95 of the
// same events sort one array).
std::vector<std::string> QuantileConditions(const ExperimentQuery& q) {
  std::vector<std::string> conds;
  for (const MetricQuery& m : q.metrics) {
    if (m.kind != stats::MetricKind::kQuantile) continue;
    std::string c = PostCondition(m.event_type, m.window_hours) + " AND isNotNull(value)";
    if (std::find(conds.begin(), conds.end(), c) == conds.end()) conds.push_back(c);
  }
  return conds;
}

size_t QuantileConditionIndex(const ExperimentQuery& q, const MetricQuery& m) {
  std::vector<std::string> conds = QuantileConditions(q);
  std::string c = PostCondition(m.event_type, m.window_hours) + " AND isNotNull(value)";
  return std::find(conds.begin(), conds.end(), c) - conds.begin();
}

// Event types that only quantile metrics read: their rows are grouped per variant instead of
// per user (they add nothing to any per-user value), so collecting their values costs one
// hash-table entry per variant instead of a random access per user.
std::vector<std::string> QuantileOnlyTypes(const ExperimentQuery& q) {
  std::vector<std::string> other, out;
  for (const MetricQuery& m : q.metrics) {
    if (m.kind == stats::MetricKind::kQuantile) continue;
    other.push_back(m.event_type);
    if (m.kind == stats::MetricKind::kRatio) other.push_back(m.denominator_event_type);
  }
  for (const MetricQuery& m : q.metrics) {
    if (m.kind != stats::MetricKind::kQuantile) continue;
    if (std::find(other.begin(), other.end(), m.event_type) == other.end() &&
        std::find(out.begin(), out.end(), m.event_type) == out.end()) {
      out.push_back(m.event_type);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The 0-based rank quantileExact reads for `level` of n sorted values: floor(level * n),
// clamped to the last value (SQL over the per-variant n).
std::string RankSql(const std::string& level, const std::string& n) {
  return fmt::format("least(toUInt64(greatest({0}, 0) * {1}), {1} - 1)", level, n);
}

// The order-statistics column of a quantile metric from the variant's sorted values `s`:
// [n, then for each of the levels lower, p, upper (stats::LevelsForQuantile, the same double
// operations): the rank r and the values at ranks r - 1, r, r + 1]. The neighbours let the
// engine check the rank against its own and take the exact one.
std::string OrderStatisticsSql(const MetricQuery& m, const std::string& s, double alpha) {
  const double p = m.quantile;
  const std::string n = fmt::format("length({})", s);
  // n >= 1 for the ranks the engine reads; greatest(n, 1) keeps an empty array from dividing
  // by zero, which current releases refuse to convert to an integer rank (18.16 does not).
  const std::string d = fmt::format("{} * sqrt({} * (1 - {}) / greatest({}, 1))",
                                    stats::CriticalValue(alpha), p, p, n);
  std::string out = fmt::format("[toFloat64({})", n);
  for (const std::string& level :
       {fmt::format("{} - {}", p, d), fmt::format("{}", p), fmt::format("{} + {}", p, d)}) {
    std::string r = RankSql(level, n);
    out += fmt::format(", toFloat64({0}), {1}[{0}], {1}[{0} + 1], {1}[{0} + 2]", r, s);
  }
  return out + "]";
}

}  // namespace

bool CupedApplies(stats::MetricKind kind) {
  return kind == stats::MetricKind::kConversion || kind == stats::MetricKind::kMean ||
         kind == stats::MetricKind::kCount;
}

std::vector<std::string> MetricColumns(const MetricQuery& metric, bool cuped) {
  std::vector<std::string> cols;
  switch (metric.kind) {
    case stats::MetricKind::kConversion:
      cols = {"conversions"};
      break;
    case stats::MetricKind::kMean:
    case stats::MetricKind::kCount:
      cols = {"sum", "sum_sq"};
      break;
    case stats::MetricKind::kRatio:
      cols = {"sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy"};
      break;
    case stats::MetricKind::kQuantile:
      cols = {"order_stats"};
      break;
  }
  if (cuped && CupedApplies(metric.kind)) {
    cols.insert(cols.end(), {"pre_sum", "pre_sum_sq", "post_pre_sum"});
  }
  return cols;
}

std::string FreshnessSql(int64_t experiment_id) {
  return fmt::format(
      "greatest(greatest((SELECT max(_source_ts_ms) FROM assignments WHERE experiment_id = {0}), "
      "(SELECT max(_source_ts_ms) FROM events WHERE experiment_id = {0})), "
      "greatest((SELECT max(_source_ts_ms) FROM variants WHERE experiment_id = {0}), "
      "(SELECT max(_source_ts_ms) FROM experiments WHERE id = {0})))",
      experiment_id);
}

std::string ExposuresSql(int64_t experiment_id, Dedup dedup) {
  if (dedup == Dedup::kFinal) {
    // experiment_id is part of the key, so filtering it before the merge is safe.
    return fmt::format(
        "SELECT cityHash64(user_id) AS uh, variant_id AS v, assigned_at_us AS exposed_us FROM "
        "(SELECT user_id, variant_id, assigned_at_us, _deleted FROM assignments FINAL "
        "WHERE experiment_id = {} AND {}) WHERE _deleted = 0",
        experiment_id, AfterTruncation("assignments"));
  }
  // argMax over a tuple: a Nullable argument would make the aggregate skip NULLs, a tuple is
  // taken whole. The latest version decides, including its _deleted flag.
  return fmt::format(
      "SELECT cityHash64(user_id) AS uh, tupleElement(t, 1) AS v, tupleElement(t, 2) AS exposed_us "
      "FROM "
      "(SELECT user_id, argMax(tuple(variant_id, assigned_at_us, _deleted), _version) AS t "
      "FROM assignments WHERE experiment_id = {} AND {} GROUP BY user_id) "
      "WHERE tupleElement(t, 3) = 0",
      experiment_id, AfterTruncation("assignments"));
}

std::string EventsSql(int64_t experiment_id, const std::vector<std::string>& event_types,
                      Dedup dedup) {
  std::string types;
  for (const std::string& t : event_types) {
    if (!types.empty()) types += ", ";
    types += QuoteString(t);
  }
  std::string filter = fmt::format("experiment_id = {}", experiment_id);
  if (!types.empty()) filter += fmt::format(" AND event_type IN ({})", types);
  if (dedup == Dedup::kFinal) {
    // The inner filter may run before the merge (it keeps every delete marker, so the latest
    // row of each key survives it); the outer one runs after it.
    return fmt::format(
        "SELECT cityHash64(user_id) AS uh, event_type, value, ts_us FROM "
        "(SELECT user_id, event_type, value, ts_us, experiment_id, _deleted FROM events FINAL "
        "WHERE (({}) OR _deleted = 1) AND {}) WHERE experiment_id = {} AND _deleted = 0",
        filter, AfterTruncation("events"), experiment_id);
  }
  return fmt::format(
      "SELECT cityHash64(tupleElement(t, 1)) AS uh, tupleElement(t, 2) AS event_type, "
      "tupleElement(t, 3) AS value, ts_us FROM "
      "(SELECT event_id, ts_us, "
      "argMax(tuple(user_id, event_type, value, experiment_id, _deleted), _version) AS t "
      "FROM events WHERE (({}) OR _deleted = 1) AND {} GROUP BY event_id, ts_us) "
      "WHERE tupleElement(t, 4) = {} AND tupleElement(t, 5) = 0",
      filter, AfterTruncation("events"), experiment_id);
}

Result<std::string> BuildMainQuery(const ExperimentQuery& q) {
  SPLITSTREAM_RETURN_IF_ERROR(Validate(q));
  std::string ids;
  for (int64_t id : q.variant_ids) {
    if (!ids.empty()) ids += ", ";
    ids += fmt::format("toInt64({})", id);
  }
  const std::vector<std::string> quantile_conds = QuantileConditions(q);
  // Per user (users with at least one event of a metric's type): the value of each metric;
  // per variant: the sums, and the sorted values of each quantile condition.
  std::string per_user;
  std::string per_variant;
  std::string picks;  // the outermost select: sums by name, order statistics computed
  std::vector<std::string> outer;
  for (size_t g = 0; g < quantile_conds.size(); ++g) {
    per_user +=
        fmt::format(", groupArrayIf(assumeNotNull(value), {}) AS a{}", quantile_conds[g], g);
    per_variant += fmt::format(", arraySort(groupArrayArray(a{0})) AS s{0}", g);
  }
  for (size_t i = 0; i < q.metrics.size(); ++i) {
    const MetricQuery& m = q.metrics[i];
    std::vector<std::string> names = MetricColumns(m, q.cuped_pre_window_hours > 0);
    if (m.kind == stats::MetricKind::kQuantile) {
      std::string name = fmt::format("m{}_{}", i, names[0]);
      std::string s = fmt::format("s{}", QuantileConditionIndex(q, m));
      picks += fmt::format(", {} AS {}", OrderStatisticsSql(m, s, q.alpha), name);
      outer.push_back(name);
      continue;
    }
    std::string post = PostCondition(m.event_type, m.window_hours);
    per_user += fmt::format(", {} AS x{}", PerUserValue(m.kind, post, false), i);
    std::vector<std::string> aggs;
    switch (m.kind) {
      case stats::MetricKind::kConversion:
      case stats::MetricKind::kQuantile:
        aggs = {fmt::format("sum(x{})", i)};
        break;
      case stats::MetricKind::kMean:
      case stats::MetricKind::kCount:
        aggs = {fmt::format("sum(x{})", i), fmt::format("sum(x{0} * x{0})", i)};
        break;
      case stats::MetricKind::kRatio: {
        std::string den = PostCondition(m.denominator_event_type, m.window_hours);
        per_user += fmt::format(", {} AS y{}", PerUserValue(m.kind, den, true), i);
        aggs = {fmt::format("sum(x{})", i), fmt::format("sum(y{})", i),
                fmt::format("sum(x{0} * x{0})", i), fmt::format("sum(y{0} * y{0})", i),
                fmt::format("sum(x{0} * y{0})", i)};
        break;
      }
    }
    if (UseCuped(q, m)) {
      std::string pre = PreCondition(m.event_type, q.cuped_pre_window_hours);
      per_user += fmt::format(", {} AS p{}", PerUserValue(m.kind, pre, false), i);
      aggs.push_back(fmt::format("sum(p{})", i));
      aggs.push_back(fmt::format("sum(p{0} * p{0})", i));
      aggs.push_back(fmt::format("sum(x{0} * p{0})", i));
    }
    for (size_t j = 0; j < aggs.size(); ++j) {
      std::string name = fmt::format("m{}_{}", i, names[j]);
      per_variant += fmt::format(", {} AS {}", aggs[j], name);
      picks += ", " + name;
      outer.push_back(name);
    }
  }
  const std::string fresh = FreshnessSql(q.experiment_id);
  std::string counts = fmt::format(
      "SELECT variant_id, users FROM (SELECT arrayJoin([{}]) AS variant_id) AS ids ANY LEFT JOIN "
      "(SELECT v AS variant_id, count() AS users FROM ({}) GROUP BY v) AS exposed USING "
      "variant_id",
      ids, ExposuresSql(q.experiment_id, q.dedup));
  std::string columns;
  for (const std::string& c : outer) columns += ", " + c;
  if (q.metrics.empty()) {
    return fmt::format("SELECT variant_id, users, {} AS fresh_ms FROM ({})", fresh, counts);
  }
  // Rows of event types that only quantile metrics read are grouped under their variant
  // (key = the variant id; a user's key is the 64-bit hash of the id, which equals a variant
  // id with probability about 2^-64) instead of under their user.
  std::string key = "uh";
  const std::vector<std::string> routed = QuantileOnlyTypes(q);
  if (!routed.empty()) {
    std::string types;
    for (const std::string& t : routed) types += (types.empty() ? "" : ", ") + QuoteString(t);
    key = fmt::format("if(event_type IN ({}), toUInt64(v), uh)", types);
  }
  return fmt::format(
      "SELECT variant_id, users{}, {} AS fresh_ms FROM ({}) AS counts ANY LEFT JOIN "
      "(SELECT variant_id{} FROM (SELECT v AS variant_id{} FROM "
      "(SELECT k, any(v) AS v{} FROM (SELECT {} AS k, event_type, value, ts_us, v, exposed_us "
      "FROM {}) GROUP BY k) GROUP BY v)) AS sums USING variant_id",
      columns, fresh, counts, picks, per_variant, per_user, key, JoinedEvents(q, EventTypes(q)));
}

std::vector<double> PickOrderStatistics(const std::vector<double>& column,
                                        const std::vector<double>& levels,
                                        const std::vector<size_t>& sql_levels) {
  if (column.size() != 13 || levels.size() != sql_levels.size() || !(column[0] >= 1)) return {};
  const int64_t n = static_cast<int64_t>(column[0]);
  std::vector<double> out;
  for (size_t k = 0; k < levels.size(); ++k) {
    if (sql_levels[k] > 2 || !(levels[k] >= 0 && levels[k] < 1)) return {};
    // The rank quantileExact reads for a level below 1.
    const int64_t rank = static_cast<int64_t>(levels[k] * static_cast<double>(n));
    const double* slot = &column[1 + 4 * sql_levels[k]];  // r, v(r - 1), v(r), v(r + 1)
    const int64_t sql_rank = static_cast<int64_t>(slot[0]);
    if (rank < sql_rank - 1 || rank > sql_rank + 1 || rank >= n) return {};
    out.push_back(slot[2 + (rank - sql_rank)]);
  }
  return out;
}

Result<std::string> BuildQuantileQuery(const ExperimentQuery& q,
                                       const std::vector<QuantileRequest>& requests) {
  SPLITSTREAM_RETURN_IF_ERROR(Validate(q));
  if (requests.empty()) return Status::InvalidArgument("no quantiles requested");
  std::string select;
  for (size_t r = 0; r < requests.size(); ++r) {
    const QuantileRequest& req = requests[r];
    if (req.metric_index >= q.metrics.size() ||
        q.metrics[req.metric_index].kind != stats::MetricKind::kQuantile) {
      return Status::InvalidArgument("not a quantile metric", "metric_index");
    }
    if (req.levels.empty()) return Status::InvalidArgument("no levels", "levels");
    std::string levels;
    for (double l : req.levels) {
      if (!(l >= 0 && l <= 1)) return Status::InvalidArgument("level outside [0, 1]", "levels");
      if (!levels.empty()) levels += ", ";
      // Shortest round-trip text: ClickHouse reads back the same double stats computed.
      levels += fmt::format("{}", l);
    }
    const MetricQuery& m = q.metrics[req.metric_index];
    if (!select.empty()) select += ", ";
    select += fmt::format(
        "quantilesExactIf({})(ifNull(value, 0), v = {} AND {} AND isNotNull(value)) AS q{}", levels,
        req.variant_id, PostCondition(m.event_type, m.window_hours), r);
  }
  std::vector<std::string> types;
  for (const QuantileRequest& req : requests)
    types.push_back(q.metrics[req.metric_index].event_type);
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  return fmt::format("SELECT {} FROM {}", select, JoinedEvents(q, types));
}

}  // namespace splitstream::results
