// SQL builders and renderings, without a server.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "splitstream/results/render.h"
#include "splitstream/results/results.h"
#include "splitstream/results/sql.h"
#include "splitstream/results/state.h"
#include "splitstream/stats/inference.h"

namespace splitstream::results {
namespace {

ExperimentQuery Query() {
  ExperimentQuery q;
  q.experiment_id = 7;
  q.variant_ids = {11, 12};
  q.metrics.push_back({"checkout", "purchase", stats::MetricKind::kConversion, "", 0.5, 72});
  q.metrics.push_back({"revenue", "purchase", stats::MetricKind::kMean, "", 0.5, std::nullopt});
  q.metrics.push_back({"ctr", "click", stats::MetricKind::kRatio, "view", 0.5, std::nullopt});
  q.metrics.push_back({"latency", "load", stats::MetricKind::kQuantile, "", 0.95, std::nullopt});
  return q;
}

size_t Count(const std::string& s, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) ++n;
  return n;
}

TEST(SqlTest, FinalFiltersAfterTheMerge) {
  auto sql = BuildMainQuery(Query());
  ASSERT_TRUE(sql.ok());
  EXPECT_NE(sql->find("FROM events FINAL WHERE ((experiment_id = 7 AND event_type IN"),
            std::string::npos);
  EXPECT_NE(sql->find(") OR _deleted = 1) AND _version > (SELECT max(version) FROM _truncations "
                      "WHERE `table` = 'events')) WHERE experiment_id = 7 AND _deleted = 0"),
            std::string::npos)
      << *sql;
  EXPECT_NE(sql->find("FROM assignments FINAL WHERE experiment_id = 7"), std::string::npos);
  EXPECT_EQ(sql->find("argMax"), std::string::npos);
}

TEST(SqlTest, MainQueryReadsDeduplicatedState) {
  ExperimentQuery argmax = Query();
  argmax.dedup = Dedup::kArgMax;
  auto sql = BuildMainQuery(argmax);
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  // Latest version per key, deletes and truncated rows excluded, for both fact tables.
  EXPECT_NE(sql->find("argMax(tuple(variant_id, assigned_at_us, _deleted), _version)"),
            std::string::npos);
  EXPECT_NE(sql->find("GROUP BY event_id, ts_us"), std::string::npos);
  EXPECT_NE(sql->find("WHERE `table` = 'assignments'"), std::string::npos);
  EXPECT_NE(sql->find("WHERE `table` = 'events'"), std::string::npos);
  EXPECT_NE(sql->find("tupleElement(t, 5) = 0"), std::string::npos);
  // Deletes of any experiment take part in the grouping (they may carry only the key).
  EXPECT_NE(sql->find("OR _deleted = 1"), std::string::npos);
  // Every variant gets a row, in one statement without FORMAT or ';'.
  EXPECT_NE(sql->find("arrayJoin([toInt64(11), toInt64(12)])"), std::string::npos);
  EXPECT_EQ(sql->find(';'), std::string::npos);
  EXPECT_EQ(sql->find("FORMAT"), std::string::npos);
  // The event types are filtered once, deduplicated and quoted.
  EXPECT_NE(sql->find("event_type IN ('click', 'load', 'purchase', 'view')"), std::string::npos);
}

TEST(SqlTest, WindowAndCupedConditions) {
  ExperimentQuery q = Query();
  q.cuped_pre_window_hours = 24;
  auto sql = BuildMainQuery(q);
  ASSERT_TRUE(sql.ok());
  EXPECT_NE(sql->find("event_type = 'purchase' AND ts_us >= exposed_us AND ts_us < exposed_us + "
                      "259200000000"),
            std::string::npos);
  EXPECT_NE(sql->find("ts_us < exposed_us AND ts_us >= exposed_us - 86400000000"),
            std::string::npos);
  // CUPED sums for conversion and mean only (ratio and quantile take none).
  EXPECT_EQ(Count(*sql, "AS p"), 2u);
  EXPECT_NE(sql->find("sum(x0 * p0) AS m0_post_pre_sum"), std::string::npos);
  EXPECT_NE(sql->find("sum(x2 * y2) AS m2_sum_xy"), std::string::npos);
  q.cuped_pre_window_hours = 0;
  sql = BuildMainQuery(q);
  ASSERT_TRUE(sql.ok());
  EXPECT_EQ(sql->find("exposed_us -"), std::string::npos);
}

TEST(SqlTest, ColumnsMatchTheQuery) {
  for (bool cuped : {false, true}) {
    ExperimentQuery q = Query();
    q.cuped_pre_window_hours = cuped ? 1 : 0;
    auto sql = BuildMainQuery(q);
    ASSERT_TRUE(sql.ok());
    for (size_t i = 0; i < q.metrics.size(); ++i) {
      for (const std::string& c : MetricColumns(q.metrics[i], cuped)) {
        EXPECT_NE(sql->find(" AS m" + std::to_string(i) + "_" + c), std::string::npos) << c;
      }
    }
  }
  EXPECT_EQ(MetricColumns(Query().metrics[2], true).size(), 5u);
  EXPECT_EQ(MetricColumns(Query().metrics[0], true).size(), 4u);
}

TEST(SqlTest, HostileStringsAreQuoted) {
  ExperimentQuery q = Query();
  q.metrics[0].event_type = "x') OR 1=1 --\\";
  auto sql = BuildMainQuery(q);
  ASSERT_TRUE(sql.ok());
  EXPECT_NE(sql->find("'x\\') OR 1=1 --\\\\'"), std::string::npos);
}

TEST(SqlTest, InvalidDefinitions) {
  ExperimentQuery q = Query();
  q.variant_ids.clear();
  EXPECT_EQ(BuildMainQuery(q).status().field(), "variants");
  q = Query();
  q.metrics[2].denominator_event_type.clear();
  EXPECT_EQ(BuildMainQuery(q).status().field(), "metrics[2].denominator_event_type");
  q = Query();
  q.metrics[1].event_type.clear();
  EXPECT_EQ(BuildMainQuery(q).status().field(), "metrics[1].event_type");
  q = Query();
  q.metrics.clear();
  auto sql = BuildMainQuery(q);
  ASSERT_TRUE(sql.ok());
  EXPECT_EQ(sql->find("JOIN (SELECT tupleElement"), std::string::npos);
}

TEST(SqlTest, QuantilesInTheMainQuery) {
  ExperimentQuery q = Query();
  q.metrics.push_back({"p50", "load", stats::MetricKind::kQuantile, "", 0.5, std::nullopt});
  q.metrics.push_back({"rev_p90", "purchase", stats::MetricKind::kQuantile, "", 0.9, 24});
  auto sql = BuildMainQuery(q);
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  // 'load' feeds only quantiles: its rows are grouped per variant; 'purchase' also feeds
  // per-user values, so its rows stay with their user.
  EXPECT_NE(sql->find("if(event_type IN ('load'), toUInt64(v), uh) AS k"), std::string::npos)
      << *sql;
  // One sorted array per distinct condition: p95 and p50 of 'load' share s0.
  EXPECT_EQ(Count(*sql, "groupArrayIf("), 2u);
  EXPECT_NE(sql->find("groupArrayIf(assumeNotNull(value), event_type = 'load' AND ts_us >= "
                      "exposed_us AND isNotNull(value)) AS a0"),
            std::string::npos);
  EXPECT_NE(
      sql->find("groupArrayIf(assumeNotNull(value), event_type = 'purchase' AND ts_us >= "
                "exposed_us AND ts_us < exposed_us + 86400000000 AND isNotNull(value)) AS a1"),
      std::string::npos);
  EXPECT_NE(sql->find("arraySort(groupArrayArray(a0)) AS s0"), std::string::npos);
  // The levels of stats::LevelsForQuantile, with the same critical value and operations (n at
  // least 1: an empty array must not divide by zero, which current releases refuse).
  std::string d = fmt::format("{} * sqrt(0.95 * (1 - 0.95) / greatest(length(s0), 1))",
                              stats::CriticalValue(0.05));
  EXPECT_NE(sql->find("least(toUInt64(greatest(0.95 - " + d +
                      ", 0) * length(s0)), "
                      "length(s0) - 1)"),
            std::string::npos)
      << *sql;
  EXPECT_NE(sql->find("0.5 + " + fmt::format("{}", stats::CriticalValue(0.05)) +
                      " * sqrt(0.5 * (1 - 0.5) / greatest(length(s0), 1))"),
            std::string::npos);
  EXPECT_NE(sql->find("length(s1)"), std::string::npos);
  // Current releases keep one event per user in an ANY INNER JOIN and want joined subqueries
  // named (tests/compat/clickhouse_current_test.py runs the query on both).
  EXPECT_NE(sql->find(") AS ev ALL INNER JOIN ("), std::string::npos);
  EXPECT_EQ(sql->find("ANY INNER JOIN"), std::string::npos);
  // Quantile metrics add nothing per user.
  EXPECT_EQ(sql->find("AS x3"), std::string::npos);
  // No quantile metric: no arrays, users keyed by their hash alone.
  q = Query();
  q.metrics.pop_back();
  sql = BuildMainQuery(q);
  ASSERT_TRUE(sql.ok());
  EXPECT_EQ(sql->find("groupArray"), std::string::npos);
  EXPECT_NE(sql->find("SELECT uh AS k"), std::string::npos);
}

TEST(SqlTest, PickOrderStatistics) {
  // n = 10 values v(i) = 10 i; SQL's ranks 2, 5, 7 for lower, p, upper.
  auto column = [](double r_lo, double r_p, double r_hi) {
    std::vector<double> c = {10};
    for (double r : {r_lo, r_p, r_hi}) {
      c.push_back(r);
      for (double i : {r - 1, r, r + 1}) c.push_back(i >= 0 && i < 10 ? 10 * i : 0);
    }
    return c;
  };
  EXPECT_EQ(PickOrderStatistics(column(2, 5, 7), {0.25, 0.5, 0.75}, {0, 1, 2}),
            (std::vector<double>{20, 50, 70}));
  // SQL one rank off either way: the neighbour is the exact value.
  EXPECT_EQ(PickOrderStatistics(column(3, 4, 6), {0.25, 0.5, 0.75}, {0, 1, 2}),
            (std::vector<double>{20, 50, 70}));
  // The estimate alone (sample too small for an interval) reads the p slot.
  EXPECT_EQ(PickOrderStatistics(column(0, 5, 9), {0.5}, {1}), (std::vector<double>{50}));
  // Two ranks off, malformed or empty: nothing (the engine asks quantilesExact instead).
  EXPECT_TRUE(PickOrderStatistics(column(0, 5, 7), {0.25, 0.5, 0.75}, {0, 1, 2}).empty());
  EXPECT_TRUE(PickOrderStatistics({}, {0.5}, {1}).empty());
  EXPECT_TRUE(PickOrderStatistics({10, 5, 40, 50}, {0.5}, {1}).empty());
}

TEST(SqlTest, QuantileQuery) {
  ExperimentQuery q = Query();
  auto sql = BuildQuantileQuery(q, {{3, 11, {0.9, 0.95, 0.99}}, {3, 12, {0.95}}});
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  EXPECT_NE(sql->find("quantilesExactIf(0.9, 0.95, 0.99)(ifNull(value, 0), v = 11 AND "
                      "event_type = 'load' AND ts_us >= exposed_us AND isNotNull(value)) AS q0"),
            std::string::npos);
  EXPECT_NE(sql->find("quantilesExactIf(0.95)(ifNull(value, 0), v = 12"), std::string::npos);
  // Only the requested metrics' events are read.
  EXPECT_NE(sql->find("event_type IN ('load')"), std::string::npos) << *sql;
  EXPECT_FALSE(BuildQuantileQuery(q, {}).ok());
  EXPECT_FALSE(BuildQuantileQuery(q, {{0, 11, {0.5}}}).ok());  // not a quantile metric
  EXPECT_FALSE(BuildQuantileQuery(q, {{3, 11, {1.5}}}).ok());
}

ExperimentResults Sample() {
  ExperimentResults r;
  r.key = "exp";
  r.name = "Exp, \"quoted\"";
  r.status = "running";
  r.variants = {{1, "control", 1, 1000}, {2, "b", 1, 1000}};
  r.srm = stats::SrmResult{0, 1, false};
  r.newest_change_ms = 1714564800123;  // 2024-05-01T12:00:00.123Z
  r.computed_at_us = (1714564800123 + 2500) * 1000;
  MetricResult m;
  m.spec.key = "checkout";
  m.spec.event_type = "purchase";
  stats::VariantData c, t;
  c.key = "control";
  c.conversions = *stats::ProportionState::FromCounts(1000, 100);
  t.key = "b";
  t.conversions = *stats::ProportionState::FromCounts(1000, 150);
  stats::MetricSpec spec{"checkout"};
  std::vector<stats::VariantData> data = {c, t};
  m.analysis = *stats::AnalyzeMetric(spec, data);
  r.metrics.push_back(m);
  MetricResult bad;
  bad.spec.key = "broken";
  bad.error = "invalid_argument: inconsistent sums";
  r.metrics.push_back(bad);
  return r;
}

TEST(RenderTest, Json) {
  ExperimentResults r = Sample();
  std::string json = RenderJson(r);
  EXPECT_NE(json.find(R"("newest_change":"2024-05-01T12:00:00.123Z","age_seconds":2.5)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("variants":[{"key":"control","weight":1.0,"users":1000})"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("name":"Exp, \"quoted\"")"), std::string::npos);
  const stats::ComparisonResult& cmp = r.metrics[0].analysis->comparisons[0];
  EXPECT_NE(json.find(R"("verdict":")" + cmp.verdict + "\""), std::string::npos) << json;
  EXPECT_NE(json.find(R"("error":"invalid_argument: inconsistent sums")"), std::string::npos);
  // Control has no relative lift of itself: its summary has no comparison; undefined → null.
  EXPECT_NE(json.find(R"("denominator":null)"), std::string::npos);
  EXPECT_EQ(json.find("nan"), std::string::npos);
  EXPECT_EQ(json.find("inf"), std::string::npos);
}

TEST(RenderTest, TableAndCsv) {
  ExperimentResults r = Sample();
  std::string table = RenderTable(r);
  EXPECT_NE(table.find("=> " + r.metrics[0].analysis->comparisons[0].verdict), std::string::npos)
      << table;
  EXPECT_NE(table.find("Data as of 2024-05-01T12:00:00.123Z (2 s ago)"), std::string::npos)
      << table;
  EXPECT_NE(table.find("+50.00%"), std::string::npos) << table;
  std::string csv = RenderCsv(r);
  // Header + two variants of one metric + one error row.
  EXPECT_EQ(Count(csv, "\n"), 4u) << csv;
  EXPECT_NE(csv.find("exp,checkout,conversion,b,1000,150,,0.15,"), std::string::npos) << csv;
  r.newest_change_ms.reset();
  EXPECT_NE(RenderTable(r).find("nothing in ClickHouse yet"), std::string::npos);
  EXPECT_NE(RenderJson(r).find(R"("newest_change":null,"age_seconds":null)"), std::string::npos);
}

TEST(EngineTest, MetricKinds) {
  EXPECT_EQ(*ParseMetricKind("ratio"), stats::MetricKind::kRatio);
  EXPECT_FALSE(ParseMetricKind("median").ok());
}

// ExperimentState (state.h): rows applied as ReplacingMergeTree(_version) keeps them.
constexpr int64_t kH = int64_t{3600} * 1000000;

ExperimentQuery StateQuery() {
  ExperimentQuery q;
  q.experiment_id = 7;
  q.variant_ids = {1, 2};
  q.cuped_pre_window_hours = 24;
  q.metrics = {{"rev", "buy", stats::MetricKind::kMean, "", 0.5, std::nullopt},
               {"p50", "buy", stats::MetricKind::kQuantile, "", 0.5, int64_t{48}}};
  return q;
}

EventRow Buy(uint64_t key, uint64_t version, uint64_t user, double value, int64_t ts) {
  EventRow e;
  e.key = key;
  e.version = version;
  e.experiment_id = 7;
  e.user = user;
  e.event_type = "buy";
  e.value = value;
  e.ts_us = ts;
  return e;
}

TEST(StateTest, CopiesOlderVersionsAndTombstones) {
  ExperimentState s(StateQuery());
  s.ApplyExposure({100, 1, false, 1, 0});
  s.ApplyEvent(Buy(1, 5, 100, 10, kH));
  s.ApplyEvent(Buy(1, 5, 100, 10, kH));  // a copy
  s.ApplyEvent(Buy(1, 4, 100, 99, kH));  // an older version
  s.ApplyEvent(Buy(2, 5, 100, 1, -kH));  // before exposure: CUPED's pre-period only
  s.Settle();
  Aggregates a = s.Gather(0.05);
  ASSERT_EQ(a.variants.at(1).users, 1);
  // mean: sum, sum_sq, pre_sum, pre_sum_sq, post_pre_sum
  EXPECT_EQ(a.variants.at(1).metrics[0], (std::vector<double>{10, 100, 1, 1, 10}));
  EXPECT_EQ(a.variants.at(1).metrics[1], (std::vector<double>{1}));
  EXPECT_EQ(a.quantiles.at({1, 1}), (std::vector<double>{10}));

  EventRow del;  // a delete carries only the key
  del.key = 1;
  del.version = 6;
  del.deleted = true;
  s.ApplyEvent(del);
  s.ApplyEvent(Buy(1, 5, 100, 10, kH));  // the copy again, after the delete: still gone
  EventRow unknown = del;                // a delete of a key never seen, then an older copy
  unknown.key = 3;
  s.ApplyEvent(unknown);
  s.ApplyEvent(Buy(3, 5, 100, 50, kH));
  s.Settle();
  a = s.Gather(0.05);
  EXPECT_EQ(a.variants.at(1).metrics[0], (std::vector<double>{0, 0, 1, 1, 0}));
  EXPECT_EQ(a.variants.at(1).metrics[1], (std::vector<double>{0}));
  EXPECT_EQ(a.quantiles.count({1, 1}), 0u);
}

TEST(StateTest, ExposuresMoveContributions) {
  ExperimentState s(StateQuery());
  // Events before the exposure arrives count once it does.
  s.ApplyEvent(Buy(1, 5, 100, 10, kH));
  s.ApplyEvent(Buy(2, 5, 100, 30, 100 * kH));  // outside p50's 48 h window, in the mean
  s.Settle();
  EXPECT_EQ(s.Gather(0.05).variants.at(1).users, 0);
  s.ApplyExposure({100, 1, false, 1, 0});
  s.Settle();
  Aggregates a = s.Gather(0.05);
  EXPECT_EQ(a.variants.at(1).metrics[0][0], 40);
  EXPECT_EQ(a.quantiles.at({1, 1}), (std::vector<double>{10}));
  // Another variant (a newer version): everything moves; an older one changes nothing.
  s.ApplyExposure({100, 3, false, 2, 0});
  s.ApplyExposure({100, 2, false, 1, 0});
  s.Settle();
  a = s.Gather(0.05);
  EXPECT_EQ(a.variants.at(1).users, 0);
  EXPECT_EQ(a.variants.at(1).metrics[0][0], 0);
  EXPECT_EQ(a.quantiles.count({1, 1}), 0u);
  EXPECT_EQ(a.variants.at(2).metrics[0][0], 40);
  EXPECT_EQ(a.quantiles.at({1, 2}), (std::vector<double>{10}));
  // An update moves an event to another user; then the exposure is deleted.
  s.ApplyExposure({200, 1, false, 2, 0});
  EventRow moved = Buy(1, 6, 200, 20, kH);
  s.ApplyEvent(moved);
  s.Settle();
  a = s.Gather(0.05);
  EXPECT_EQ(a.variants.at(2).users, 2);
  EXPECT_EQ(a.variants.at(2).metrics[0][0], 50);
  EXPECT_EQ(a.variants.at(2).metrics[0][1], 20 * 20 + 30 * 30);
  EXPECT_EQ(a.quantiles.at({1, 2}), (std::vector<double>{20}));
  s.ApplyExposure({200, 2, true, 0, 0});
  s.Settle();
  a = s.Gather(0.05);
  EXPECT_EQ(a.variants.at(2).users, 1);
  EXPECT_EQ(a.variants.at(2).metrics[0][0], 30);
  EXPECT_EQ(a.quantiles.count({1, 2}), 0u);
}

TEST(StateTest, QuantileLevelsFollowTheSampleSize) {
  ExperimentState s(StateQuery());
  for (uint64_t u = 1; u <= 400; ++u) {
    s.ApplyExposure({u, 1, false, 1, 0});
    s.ApplyEvent(Buy(u, 1, u, static_cast<double>(u), kH));
  }
  s.Settle();
  Aggregates a = s.Gather(0.05);
  auto levels = stats::LevelsForQuantile(0.5, 400, 0.05);
  ASSERT_TRUE(levels.ok());
  // Values 1..400: rank floor(level * n) holds the value rank + 1.
  auto at = [](double level) { return std::floor(level * 400) + 1; };
  EXPECT_EQ(a.quantiles.at({1, 1}),
            (std::vector<double>{at(levels->lower), at(levels->p), at(levels->upper)}));
  EXPECT_EQ(a.variants.at(1).metrics[1][0], 400);
  // A changed value and a deleted event move the order statistics.
  s.ApplyEvent(Buy(1, 2, 1, 1000, kH));
  EventRow del;
  del.key = 400;
  del.version = 2;
  del.deleted = true;
  s.ApplyEvent(del);
  s.Settle();
  a = s.Gather(0.05);
  EXPECT_EQ(a.variants.at(1).metrics[1][0], 399);  // 1 replaced by 1000, 400 gone
  std::vector<double> values;
  for (int v = 2; v <= 399; ++v) values.push_back(v);
  values.push_back(1000);
  levels = stats::LevelsForQuantile(0.5, 399, 0.05);
  auto pick = [&](double level) { return values[static_cast<size_t>(level * 399)]; };
  EXPECT_EQ(a.quantiles.at({1, 1}),
            (std::vector<double>{pick(levels->lower), pick(levels->p), pick(levels->upper)}));
}

TEST(StateTest, ServesTheSameDefinitionOnly) {
  ExperimentState s(StateQuery());
  ExperimentQuery q = StateQuery();
  q.alpha = 0.1;
  EXPECT_TRUE(s.Serves(q));
  q.metrics[0].window_hours = 24;
  EXPECT_FALSE(s.Serves(q));
  q = StateQuery();
  q.cuped_pre_window_hours = 0;
  EXPECT_FALSE(s.Serves(q));
}

}  // namespace
}  // namespace splitstream::results
