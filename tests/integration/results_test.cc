// The results engine against the real ClickHouse: known rows inserted straight into the
// analytics tables (with superseded versions, replays, deletes and truncations that must not
// count), results checked against figures computed here from the intended data. The last
// test drives GET /v1/experiments/{key}/results through the real server and service on a
// fresh PostgreSQL database. Every test runs twice: on the test stack's ClickHouse 18.16
// and on a current release (chdb_server.h). Needs SPLITSTREAM_CLICKHOUSE_URL,
// SPLITSTREAM_CHDB_PYTHON and SPLITSTREAM_PG_DSN; fails without them.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>

#include "chdb_server.h"
#include "http_client.h"
#include "splitstream/api/server.h"
#include "splitstream/clickhouse/client.h"
#include "splitstream/experiments/service.h"
#include "splitstream/pg/pg.h"
#include "splitstream/results/render.h"
#include "splitstream/results/results.h"
#include "splitstream/testing/test_database.h"

namespace splitstream::results {
namespace {

// The shared analytics schema (libs/pipeline creates it in production).
const char* const kDdl[] = {
    "CREATE TABLE experiments (id Int64, key String, name String, description String, status "
    "String, traffic Float64, layer Nullable(String), layer_start Float64, layer_end Float64, "
    "seed String, hash_version Int64, metrics String, allocation_version Int64, created_at "
    "DateTime, created_at_us Int64, started_at Nullable(DateTime), started_at_us "
    "Nullable(Int64), stopped_at Nullable(DateTime), stopped_at_us Nullable(Int64), updated_at "
    "DateTime, updated_at_us Int64, _version UInt64, _deleted UInt8, _source_ts_ms Int64) "
    "ENGINE = ReplacingMergeTree(_version) ORDER BY id",
    "CREATE TABLE variants (id Int64, experiment_id Int64, key String, weight Float64, position "
    "Int64, _version UInt64, _deleted UInt8, _source_ts_ms Int64) ENGINE = "
    "ReplacingMergeTree(_version) ORDER BY id",
    "CREATE TABLE assignments (experiment_id Int64, user_id String, variant_id Int64, "
    "assigned_at DateTime, assigned_at_us Int64, _version UInt64, _deleted UInt8, _source_ts_ms "
    "Int64, _batch UInt64) ENGINE = ReplacingMergeTree(_version) ORDER BY (experiment_id, user_id)",
    "CREATE TABLE events (event_id String, experiment_id Int64, variant_id Int64, user_id "
    "String, event_type String, value Nullable(Float64), properties String, ts DateTime, ts_us "
    "Int64, received_at DateTime, received_at_us Int64, _version UInt64, _deleted UInt8, "
    "_source_ts_ms Int64, _batch UInt64) ENGINE = ReplacingMergeTree(_version) PARTITION BY "
    "toYYYYMM(ts) ORDER "
    "BY (event_id, ts_us)",
    "CREATE TABLE _truncations (`table` String, version UInt64) ENGINE = ReplacingMergeTree "
    "ORDER BY (`table`, version)",
};

constexpr int64_t kHour = int64_t{3600} * 1000000;
constexpr int64_t kBase = int64_t{1714564800} * 1000000;  // 2024-05-01T12:00:00Z
constexpr int64_t kExp = 7, kControl = 11, kTreatment = 12;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string DateTimeText(int64_t us) {
  std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// Rows to insert, as TabSeparated lines.
struct Rows {
  std::string assignments, events, truncations;
  int64_t max_ts_ms = 0;
  int event_seq = 0;
  uint64_t batch = uint64_t{1} << 32 | 1;  // _batch of the rows added next (the sink's)

  void Assign(int64_t exp, const std::string& user, int64_t variant, int64_t at_us,
              uint64_t version, int deleted = 0, int64_t ts_ms = 1714564800000) {
    assignments += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", exp, user, variant,
                               DateTimeText(at_us), at_us, version, deleted, ts_ms, batch);
    max_ts_ms = std::max(max_ts_ms, ts_ms);
  }
  // Returns the event id.
  std::string Event(int64_t exp, const std::string& user, int64_t variant, const std::string& type,
                    std::optional<double> value, int64_t ts_us, uint64_t version, int deleted = 0,
                    int64_t ts_ms = 1714564800000, std::string id = "") {
    if (id.empty()) id = fmt::format("00000000-0000-4000-8000-{:012}", ++event_seq);
    events += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{{}}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", id, exp,
                          variant, user, type, value ? fmt::format("{}", *value) : "\\N",
                          DateTimeText(ts_us), ts_us, DateTimeText(ts_us), ts_us, version, deleted,
                          ts_ms, batch);
    max_ts_ms = std::max(max_ts_ms, ts_ms);
    return id;
  }
};

// The parameter: "18.16" (the test stack's ClickHouse) or "current" (chdb).
class ResultsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url = Env("SPLITSTREAM_CLICKHOUSE_URL");
    ASSERT_FALSE(url.empty()) << "SPLITSTREAM_CLICKHOUSE_URL is not set (scripts/stack env)";
    if (GetParam() == "current") {
      ASSERT_NO_FATAL_FAILURE(chdb_.Start(
          fmt::format("results_test_chdb_{}_{}", ::getpid(), std::random_device{}() % 1000000)));
      url = chdb_.url();
    }
    database_ = fmt::format("results_test_{}_{}", ::getpid(), std::random_device{}() % 1000000);
    clickhouse::ClientOptions admin;
    admin.url = url;
    admin.database = "";
    auto c = clickhouse::Client::Create(admin);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    admin_ = std::move(*c);
    ASSERT_TRUE(admin_->Execute("CREATE DATABASE " + database_).ok());
    options_.url = url;
    options_.database = database_;
    auto d = clickhouse::Client::Create(options_);
    ASSERT_TRUE(d.ok());
    ch_ = std::move(*d);
    for (const char* ddl : kDdl) ASSERT_TRUE(ch_->Execute(ddl).ok()) << ddl;
  }
  void TearDown() override {
    if (admin_) (void)admin_->Execute("DROP DATABASE IF EXISTS " + database_);
  }

  void Insert(const Rows& rows) {
    if (!rows.assignments.empty()) {
      std::vector<std::string> cols = {"experiment_id", "user_id",        "variant_id",
                                       "assigned_at",   "assigned_at_us", "_version",
                                       "_deleted",      "_source_ts_ms",  "_batch"};
      ASSERT_TRUE(ch_->Insert("assignments", cols, "TabSeparated", rows.assignments).ok());
    }
    if (!rows.events.empty()) {
      auto st = ch_->Insert("events", {}, "TabSeparated", rows.events);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    if (!rows.truncations.empty()) {
      ASSERT_TRUE(ch_->Insert("_truncations", {}, "TabSeparated", rows.truncations).ok());
    }
  }

  std::unique_ptr<ResultsEngine> Engine(int64_t cuped_hours = 0) {
    EngineOptions eo;
    eo.cuped_pre_window_hours = cuped_hours;
    eo.dedup = dedup_;
    eo.incremental = incremental_;
    auto engine = ResultsEngine::Create(options_, eo);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return engine.ok() ? std::move(*engine) : nullptr;
  }

  static experiments::Experiment Definition(std::vector<experiments::MetricSpec> metrics) {
    experiments::Experiment e;
    e.id = ExperimentId(kExp);
    e.spec.key = "checkout-test";
    e.spec.name = "Checkout test";
    e.spec.metrics = std::move(metrics);
    e.variants = {{VariantId(kControl), "control", 1}, {VariantId(kTreatment), "b", 1}};
    e.status = experiments::ExperimentStatus::kRunning;
    return e;
  }

  void CheckConversionMeanAndQuantile();

  testing::ChdbServer chdb_;  // declared first: stopped after the clients
  Dedup dedup_ = Dedup::kFinal;
  bool incremental_ = true;  // the engine's default: an ExperimentState (state.h)
  std::string database_;
  clickhouse::ClientOptions options_;
  std::unique_ptr<clickhouse::Client> admin_, ch_;
};

experiments::MetricSpec Metric(std::string key, std::string type, std::string kind) {
  experiments::MetricSpec m;
  m.key = std::move(key);
  m.event_type = std::move(type);
  m.kind = std::move(kind);
  return m;
}

// 1000 users per arm of experiment `exp`; control converts for i % 10 == 0, treatment for
// i % 7 == 0; purchases carry value (i % 13) + 1. Around them: rows that must not count.
// Called again with the same `rows` for another experiment, it adds new event ids.
struct Truth {
  std::map<int64_t, std::vector<double>> revenue;  // per-user sums, by variant
  std::map<int64_t, int64_t> conversions;
  std::map<int64_t, std::vector<double>> latencies;  // every "load" value after exposure
  std::map<int64_t, std::vector<double>> purchases;  // every purchase value in [exposure, +72 h)
};

Truth Populate(Rows& rows, int64_t exp = kExp) {
  Truth truth;
  rows.truncations = "assignments\t100\nevents\t100\nassignments\t50\n";
  for (int64_t variant : {kControl, kTreatment}) {
    for (int i = 0; i < 1000; ++i) {
      std::string user = fmt::format("{}-{}", variant == kControl ? "c" : "t", i);
      int64_t exposed = kBase + i * 1000000;
      uint64_t v = 1000 + i;
      if (i == 5) {
        // An older version of the assignment in the other variant: superseded.
        rows.Assign(exp, user, variant == kControl ? kTreatment : kControl, exposed, v - 500);
      }
      rows.Assign(exp, user, variant, exposed, v);
      if (i % 3 == 0) rows.Assign(exp, user, variant, exposed, v);  // a replay
      bool converts = variant == kControl ? i % 10 == 0 : i % 7 == 0;
      double sum = 0;
      if (converts) {
        double value = (i % 13) + 1;
        rows.Event(exp, user, variant, "purchase", value, exposed + kHour, v);
        sum += value;
        truth.purchases[variant].push_back(value);
        ++truth.conversions[variant];
        if (i % 4 == 0) {
          // A second purchase 100 h later: in the mean, outside checkout's 72 h window.
          rows.Event(exp, user, variant, "purchase", 2.5, exposed + 100 * kHour, v);
          sum += 2.5;
        }
      }
      // Before exposure: not in the metric (CUPED pre-period only).
      if (i % 11 == 0) rows.Event(exp, user, variant, "purchase", 40, exposed - kHour, v);
      truth.revenue[variant].push_back(sum);
      // Latency: values for the quantile metric, and an event without a value.
      for (int k = 0; k < 3; ++k) {
        double latency = (variant == kControl ? 100 : 90) + ((i * 7 + k * 13) % 50);
        rows.Event(exp, user, variant, "load", latency, exposed + k * 1000, v);
        truth.latencies[variant].push_back(latency);
      }
      if (i % 50 == 0) rows.Event(exp, user, variant, "load", std::nullopt, exposed + 5, v);
    }
  }
  // Deleted: an assignment and its event, the event's delete carrying only its key columns.
  rows.Assign(exp, "gone", kTreatment, kBase, 3000);
  rows.Assign(exp, "gone", kTreatment, kBase, 3001, 1);
  std::string id = rows.Event(exp, "c-1", kControl, "purchase", 1000, kBase + 1000000 + 10, 3000);
  rows.Event(0, "", 0, "", std::nullopt, kBase + 1000000 + 10, 3001, 1, 1714564800000, id);
  // Truncated: rows at or below the table's latest truncation (100).
  rows.Assign(exp, "truncated", kControl, kBase, 99);
  rows.Event(exp, "c-2", kControl, "purchase", 500, kBase + 2000000 + 10, 99);
  // Another experiment: the same users, not counted here.
  rows.Assign(8, "c-3", kControl, kBase, 2000);
  rows.Event(8, "c-3", kControl, "purchase", 700, kBase + kHour, 2000);
  // The newest change.
  rows.Event(exp, "t-9", kTreatment, "view", std::nullopt, kBase, 4000, 0, 1714564999999);
  return truth;
}

stats::SampleSummary Summarize(const std::vector<double>& xs) {
  double mean = 0;
  for (double x : xs) mean += x;
  mean /= static_cast<double>(xs.size());
  double ss = 0;
  for (double x : xs) ss += (x - mean) * (x - mean);
  return {static_cast<int64_t>(xs.size()), mean, ss / static_cast<double>(xs.size() - 1)};
}

void ExpectNear(double actual, double expected, double rel = 1e-9) {
  EXPECT_NEAR(actual, expected, rel * std::max(1.0, std::abs(expected)));
}

TEST_P(ResultsTest, ConversionMeanAndQuantileMatchIndependentFigures) {
  CheckConversionMeanAndQuantile();
}

TEST_P(ResultsTest, ConversionMeanAndQuantileWithTheQuery) {
  incremental_ = false;
  CheckConversionMeanAndQuantile();
}

TEST_P(ResultsTest, ConversionMeanAndQuantileWithArgMaxDedup) {
  incremental_ = false;
  dedup_ = Dedup::kArgMax;
  CheckConversionMeanAndQuantile();
}

void ResultsTest::CheckConversionMeanAndQuantile() {
  Rows rows;
  Truth truth = Populate(rows);
  ASSERT_NO_FATAL_FAILURE(Insert(rows));
  experiments::MetricSpec checkout = Metric("checkout", "purchase", "conversion");
  checkout.window_hours = 72;
  experiments::MetricSpec latency = Metric("latency_p50", "load", "quantile");
  latency.quantile = 0.5;
  latency.higher_is_better = false;
  // A quantile of an event type that per-user metrics read too (its values are collected per
  // user, not per variant), with a window.
  experiments::MetricSpec purchase_p90 = Metric("purchase_p90", "purchase", "quantile");
  purchase_p90.quantile = 0.9;
  purchase_p90.window_hours = 72;
  auto engine = Engine();
  ASSERT_TRUE(engine);
  auto r = engine->Compute(
      Definition({checkout, Metric("revenue", "purchase", "mean"), latency, purchase_p90}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The quantile levels depend on the sample sizes; the main query reads them in SQL. A
  // state's build: the truncations, the batches, the rows of the last batches, the
  // assignments, the events.
  EXPECT_EQ(r->round_trips, incremental_ ? 5 : 1);
  EXPECT_EQ(r->source, incremental_ ? "state built" : "query");

  ASSERT_EQ(r->variants.size(), 2u);
  EXPECT_EQ(r->variants[0].users, 1000);
  EXPECT_EQ(r->variants[1].users, 1000);
  ASSERT_TRUE(r->srm);
  EXPECT_NEAR(r->srm->p_value, 1.0, 1e-12);
  ASSERT_TRUE(r->newest_change_ms);
  EXPECT_EQ(*r->newest_change_ms, rows.max_ts_ms);

  // Conversion: the z-test p-value from the counts.
  ASSERT_EQ(r->metrics.size(), 4u);
  const MetricResult& conv = r->metrics[0];
  ASSERT_TRUE(conv.analysis) << conv.error;
  EXPECT_EQ(*conv.analysis->variants[0].value, truth.conversions[kControl]);
  EXPECT_EQ(*conv.analysis->variants[1].value, truth.conversions[kTreatment]);
  auto z = stats::TwoProportionZTest(
      *stats::ProportionState::FromCounts(1000, truth.conversions[kControl]),
      *stats::ProportionState::FromCounts(1000, truth.conversions[kTreatment]), 0.05);
  ASSERT_TRUE(z.ok());
  ASSERT_TRUE(conv.analysis->comparisons[0].p_value);
  ExpectNear(*conv.analysis->comparisons[0].p_value, z->p_value, 1e-12);

  // Mean: per-user sums (users without purchases count 0), mean and variance computed here.
  const MetricResult& rev = r->metrics[1];
  ASSERT_TRUE(rev.analysis) << rev.error;
  for (size_t v = 0; v < 2; ++v) {
    stats::SampleSummary s = Summarize(truth.revenue[r->variants[v].id]);
    ExpectNear(*rev.analysis->variants[v].mean, s.mean);
    ExpectNear(*rev.analysis->variants[v].variance, s.variance);
  }
  auto welch = stats::WelchTTest(Summarize(truth.revenue[kControl]),
                                 Summarize(truth.revenue[kTreatment]), 0.05);
  ExpectNear(*rev.analysis->comparisons[0].p_value, welch->p_value, 1e-9);

  // Quantiles: order statistics of the values, at the levels stats asks for.
  auto check_quantile = [&](const MetricResult& m, double p,
                            std::map<int64_t, std::vector<double>>& values) {
    ASSERT_TRUE(m.analysis) << m.error;
    for (size_t v = 0; v < 2; ++v) {
      std::vector<double> xs = values[r->variants[v].id];
      std::sort(xs.begin(), xs.end());
      EXPECT_EQ(m.analysis->variants[v].users, static_cast<int64_t>(xs.size()));
      auto levels = stats::LevelsForQuantile(p, static_cast<int64_t>(xs.size()), 0.05);
      ASSERT_TRUE(levels.ok());
      auto at = [&](double level) { return xs[static_cast<size_t>(level * xs.size())]; };
      EXPECT_EQ(*m.analysis->variants[v].mean, at(p)) << m.spec.key;
      stats::QuantileSample qs{static_cast<int64_t>(xs.size()), p, at(p), at(levels->lower),
                               at(levels->upper)};
      ExpectNear(*m.analysis->variants[v].std_error, std::sqrt(*stats::QuantileVariance(qs, 0.05)));
    }
  };
  const MetricResult& lat = r->metrics[2];
  check_quantile(lat, 0.5, truth.latencies);
  check_quantile(r->metrics[3], 0.9, truth.purchases);

  // The fallback second query (used only if a rank computed in SQL were more than one off)
  // reads the same order statistics.
  ExperimentQuery q;
  q.experiment_id = kExp;
  q.variant_ids = {kControl, kTreatment};
  q.dedup = dedup_;
  q.metrics.push_back({"latency_p50", "load", stats::MetricKind::kQuantile, "", 0.5, {}});
  std::vector<QuantileRequest> requests;
  std::vector<std::vector<double>> expected;
  for (int64_t variant : {kControl, kTreatment}) {
    std::vector<double> xs = truth.latencies[variant];
    std::sort(xs.begin(), xs.end());
    auto levels = stats::LevelsForQuantile(0.5, static_cast<int64_t>(xs.size()), 0.05);
    ASSERT_TRUE(levels.ok());
    requests.push_back({0, variant, {levels->lower, levels->p, levels->upper}});
    expected.emplace_back();
    for (double level : requests.back().levels) {
      expected.back().push_back(xs[static_cast<size_t>(level * xs.size())]);
    }
  }
  auto sql = BuildQuantileQuery(q, requests);
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  auto qrows = ch_->QueryRows(*sql);
  ASSERT_TRUE(qrows.ok()) << qrows.status().ToString();
  ASSERT_EQ(qrows->size(), 1u);
  ASSERT_EQ((*qrows)[0].size(), 2u);
  for (size_t v = 0; v < 2; ++v) {
    EXPECT_EQ((*qrows)[0][v],
              fmt::format("[{},{},{}]", expected[v][0], expected[v][1], expected[v][2]));
  }
  EXPECT_EQ(lat.analysis->comparisons[0].direction, stats::Direction::kBetter)
      << lat.analysis->comparisons[0].verdict;
  // The JSON carries the verdicts.
  std::string json = RenderJson(*r);
  EXPECT_NE(json.find(conv.analysis->comparisons[0].verdict), std::string::npos);
}

TEST_P(ResultsTest, RatioAndCuped) {
  Rows rows;
  std::vector<stats::BivariateMoments> ratio(2), cuped(2);
  for (int64_t variant : {kControl, kTreatment}) {
    size_t vi = variant == kControl ? 0 : 1;
    for (int i = 0; i < 400; ++i) {
      std::string user = fmt::format("u{}-{}", variant, i);
      int64_t exposed = kBase + i * 1000000;
      rows.Assign(kExp, user, variant, exposed, 1000 + i);
      int views = 1 + i % 5;
      int clicks = (i * (variant == kControl ? 3 : 4)) % (views + 1);
      for (int k = 0; k < views; ++k)
        rows.Event(kExp, user, variant, "view", std::nullopt, exposed + k, 1000);
      for (int k = 0; k < clicks; ++k)
        rows.Event(kExp, user, variant, "click", std::nullopt, exposed + 10 + k, 1000);
      ratio[vi].Update(clicks, views);
      // Orders before (pre) and after exposure, correlated; one pre order outside the window.
      double pre = i % 6, post = pre * 0.8 + (i % 4) + (variant == kTreatment ? 0.5 : 0);
      if (pre > 0) rows.Event(kExp, user, variant, "order", pre, exposed - 2 * kHour, 1000);
      rows.Event(kExp, user, variant, "order", 100, exposed - 30 * kHour, 1000);  // outside 24 h
      if (post > 0) rows.Event(kExp, user, variant, "order", post, exposed + kHour, 1000);
      cuped[vi].Update(post, pre);
    }
  }
  ASSERT_NO_FATAL_FAILURE(Insert(rows));
  experiments::MetricSpec ctr = Metric("ctr", "click", "ratio");
  ctr.denominator_event_type = "view";
  for (bool incremental : {true, false}) {
    SCOPED_TRACE(incremental ? "state" : "query");
    incremental_ = incremental;
    auto engine = Engine(/*cuped_hours=*/24);
    ASSERT_TRUE(engine);
    auto r = engine->Compute(Definition({ctr, Metric("order_value", "order", "mean")}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->round_trips, incremental ? 5 : 1);
    ASSERT_TRUE(r->metrics[0].analysis) << r->metrics[0].error;
    ASSERT_TRUE(r->metrics[1].analysis) << r->metrics[1].error;
    for (size_t v = 0; v < 2; ++v) {
      const stats::VariantSummary& s = r->metrics[0].analysis->variants[v];
      ExpectNear(*s.value, ratio[v].SumX());
      ExpectNear(*s.denominator, ratio[v].SumY());
      ExpectNear(*s.mean, ratio[v].MeanX() / ratio[v].MeanY());
    }
    const stats::ComparisonResult& c = r->metrics[1].analysis->comparisons[0];
    EXPECT_TRUE(c.cuped_applied);
    ASSERT_TRUE(c.cuped_theta);
    ExpectNear(*c.cuped_theta, stats::CupedTheta(cuped), 1e-9);
    stats::BivariateMoments pooled = cuped[0];
    pooled.Combine(cuped[1]);
    stats::SampleSummary adj = stats::CupedAdjust(cuped[1], *c.cuped_theta, pooled.MeanY());
    ExpectNear(*r->metrics[1].analysis->variants[1].cuped_mean, adj.mean, 1e-9);
  }
}

// The state against the query through random changes: rounds of new events, updates (to
// another user, type, value or experiment), deletes that carry only the key, replays (copies),
// stale versions, exposures that arrive after their events, change variant or are deleted,
// from two writers in several batches per round, with merges (OPTIMIZE ... FINAL) removing
// the versions the state applied earlier, and a truncation. After every round the engine that
// keeps its state and an engine that runs the query must give the same results, figure for
// figure (values are multiples of 0.5, so every sum is exact in any order).
TEST_P(ResultsTest, IncrementalStateMatchesTheQueryThroughChanges) {
  experiments::MetricSpec checkout = Metric("checkout", "purchase", "conversion");
  checkout.window_hours = 48;
  experiments::MetricSpec ctr = Metric("ctr", "click", "ratio");
  ctr.denominator_event_type = "view";
  experiments::MetricSpec p50 = Metric("load_p50", "load", "quantile");
  experiments::MetricSpec p90 = Metric("purchase_p90", "purchase", "quantile");
  p90.quantile = 0.9;
  p90.window_hours = 48;
  const experiments::Experiment e = Definition({checkout, Metric("revenue", "purchase", "mean"),
                                                Metric("views", "view", "count"), ctr, p50, p90});
  auto state_engine = Engine(/*cuped_hours=*/24);
  incremental_ = false;
  auto query_engine = Engine(/*cuped_hours=*/24);
  ASSERT_TRUE(state_engine && query_engine);

  // SPLITSTREAM_RESULTS_SEED replays another sequence.
  const std::string seed = Env("SPLITSTREAM_RESULTS_SEED");
  std::mt19937_64 rng(!seed.empty() ? std::stoull(seed) : GetParam() == "current" ? 7 : 5);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const std::vector<std::string> types = {"purchase", "view", "click", "load", "other"};
  struct Event {
    std::string id;
    int64_t exp = kExp, variant = kControl, ts_us = 0;
    std::string user, type;
    std::optional<double> value;
    uint64_t version = 0;
    bool deleted = false;
  };
  std::vector<Event> events;  // the latest version of each key written
  struct Exposure {
    int64_t variant = 0, at = 0;
    uint64_t version = 0;
  };
  std::map<std::string, Exposure> exposures;  // the latest live exposure of each user
  uint64_t version = 1000;
  uint64_t counters[2] = {0, 0};  // per writer
  int id_seq = 0;
  auto user_name = [&] { return fmt::format("u{}", pick(120)); };
  auto write_event = [&](Rows& rows, const Event& ev) {
    if (ev.deleted) {
      rows.Event(0, "", 0, "", std::nullopt, ev.ts_us, ev.version, 1, 1714564800000, ev.id);
    } else {
      rows.Event(ev.exp, ev.user, ev.variant, ev.type, ev.value, ev.ts_us, ev.version, 0,
                 1714564800000 + static_cast<int64_t>(ev.version), ev.id);
    }
  };
  for (int round = 0; round < 12; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    // Each round: up to three INSERTs, each a batch of writer 1 or 2.
    std::vector<Rows> batches(1 + static_cast<size_t>(pick(3)));
    for (Rows& b : batches) {
      int writer = pick(2);
      b.batch = (uint64_t(writer + 1) << 32) | ++counters[writer];
    }
    for (int k = 0; k < 150; ++k) {
      Rows& rows = batches[static_cast<size_t>(pick(static_cast<int>(batches.size())))];
      int op = pick(100);
      if (op < 55 || events.empty()) {  // a new event
        Event ev;
        ev.id = fmt::format("e{}", ++id_seq);
        ev.exp = pick(10) == 0 ? 8 : kExp;
        ev.user = user_name();
        ev.type = types[static_cast<size_t>(pick(5))];
        if (pick(5) != 0) ev.value = pick(40) * 0.5;
        ev.ts_us = kBase + (pick(160) - 40) * kHour + pick(1000);
        ev.version = ++version;
        write_event(rows, ev);
        events.push_back(ev);
      } else if (op < 67) {  // an update of a live event
        Event& ev = events[static_cast<size_t>(pick(static_cast<int>(events.size())))];
        if (ev.deleted) continue;
        switch (pick(4)) {
          case 0:
            ev.user = user_name();
            break;
          case 1:
            ev.type = types[static_cast<size_t>(pick(5))];
            break;
          case 2:
            ev.value = pick(40) * 0.5;
            break;
          default:
            ev.exp = ev.exp == kExp ? 8 : kExp;
            break;
        }
        ev.version = ++version;
        write_event(rows, ev);
      } else if (op < 72) {  // a delete
        Event& ev = events[static_cast<size_t>(pick(static_cast<int>(events.size())))];
        ev.deleted = true;
        ev.version = ++version;
        write_event(rows, ev);
      } else if (op < 80) {  // a copy of the latest version (a replay, a retried INSERT)
        write_event(rows, events[static_cast<size_t>(pick(static_cast<int>(events.size())))]);
      } else if (op < 84) {  // a stale version: older than the one written, never visible
        Event ev = events[static_cast<size_t>(pick(static_cast<int>(events.size())))];
        // Not of an event whose latest version is another experiment's: the state keeps no
        // keys of other experiments, so it would count this one (README, "Limits"; a replay
        // writes the newer versions again after it, which this does not).
        if (ev.exp != kExp) continue;
        ev.deleted = false;
        ev.exp = kExp;
        ev.user = user_name();
        ev.type = "purchase";
        ev.value = 99;
        ev.version -= 1;
        write_event(rows, ev);
      } else {  // an exposure: new, another variant, deleted, or a copy
        std::string user = user_name();
        auto it = exposures.find(user);
        int64_t variant = pick(2) == 0 ? kControl : kTreatment;
        int64_t at = kBase + (user.size() + static_cast<size_t>(pick(10))) * kHour;
        if (it != exposures.end() && pick(4) == 0) {
          const Exposure& x = it->second;
          rows.Assign(kExp, user, x.variant, x.at, x.version);  // a copy
        } else if (it != exposures.end() && pick(3) == 0) {
          rows.Assign(kExp, user, variant, at, ++version, /*deleted=*/1);
          exposures.erase(it);
        } else {
          rows.Assign(kExp, user, variant, at, ++version);
          exposures[user] = {variant, at, version};
        }
      }
    }
    for (const Rows& b : batches) ASSERT_NO_FATAL_FAILURE(Insert(b));
    if (round % 4 == 3) {
      // Merges remove the versions the state applied earlier.
      ASSERT_TRUE(ch_->Execute("OPTIMIZE TABLE events FINAL").ok());
      ASSERT_TRUE(ch_->Execute("OPTIMIZE TABLE assignments FINAL").ok());
    }
    if (round == 8) {
      // A truncation of events: everything so far disappears; the state is built again.
      Rows t;
      t.truncations = fmt::format("events\t{}\n", version);
      ASSERT_NO_FATAL_FAILURE(Insert(t));
      for (Event& ev : events) ev.deleted = true;
    }
    auto from_state = state_engine->Compute(e);
    auto from_query = query_engine->Compute(e);
    ASSERT_TRUE(from_state.ok()) << from_state.status().ToString();
    ASSERT_TRUE(from_query.ok()) << from_query.status().ToString();
    EXPECT_EQ(from_state->source, round == 0 || round == 8 ? "state built" : "state refreshed");
    EXPECT_EQ(from_query->source, "query");
    from_state->computed_at_us = from_query->computed_at_us = 0;
    EXPECT_EQ(RenderJson(*from_state), RenderJson(*from_query));
    EXPECT_GT(from_state->variants[0].users + from_state->variants[1].users, 0);
  }
}

// A state that would not fit in max_state_bytes is not built: the query answers, with the
// same figures.
TEST_P(ResultsTest, AStateTooLargeForItsMemoryLeavesItToTheQuery) {
  Rows rows;
  Populate(rows);
  ASSERT_NO_FATAL_FAILURE(Insert(rows));
  const experiments::Experiment e = Definition({Metric("checkout", "purchase", "conversion")});
  EngineOptions eo;
  eo.cuped_pre_window_hours = 0;  // as Engine()
  eo.max_state_bytes = 64 << 10;  // the 2 000 users and their events need about 1 MB
  auto small = ResultsEngine::Create(options_, eo);
  ASSERT_TRUE(small.ok());
  auto r = (*small)->Compute(e);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->source.starts_with("query (its state would take about")) << r->source;
  EXPECT_NE(r->source.find("more than the 0.1 MB allowed"), std::string::npos) << r->source;
  EXPECT_EQ((*small)->state_stats().experiments, 0u);
  auto engine = Engine();
  ASSERT_TRUE(engine);
  auto from_state = engine->Compute(e);
  ASSERT_TRUE(from_state.ok()) << from_state.status().ToString();
  EXPECT_EQ(from_state->source, "state built");
  EXPECT_EQ(engine->state_stats().experiments, 1u);
  r->computed_at_us = from_state->computed_at_us = 0;
  EXPECT_EQ(RenderJson(*r), RenderJson(*from_state));
}

// States that do not fit in max_state_bytes together are dropped, least recently used first,
// and built again when asked for.
TEST_P(ResultsTest, StatesThatDoNotFitTogetherAreDroppedLeastRecentlyUsedFirst) {
  Rows rows;
  std::vector<experiments::Experiment> exps;
  for (int64_t id : {101, 102, 103}) {
    Populate(rows, id);
    experiments::Experiment e = Definition({Metric("checkout", "purchase", "conversion")});
    e.id = ExperimentId(id);
    e.spec.key = fmt::format("exp-{}", id);
    exps.push_back(std::move(e));
  }
  ASSERT_NO_FATAL_FAILURE(Insert(rows));
  // A state's size, from an engine with room for all: the three are alike.
  auto roomy = Engine();
  ASSERT_TRUE(roomy);
  ASSERT_TRUE(roomy->Compute(exps[0]).ok());
  const size_t one = roomy->state_stats().bytes;
  ASSERT_GT(one, 0u);

  EngineOptions eo;
  eo.cuped_pre_window_hours = 0;     // as Engine()
  eo.max_state_bytes = one * 5 / 2;  // room for two states, not three
  auto tight = ResultsEngine::Create(options_, eo);
  ASSERT_TRUE(tight.ok()) << tight.status().ToString();
  auto source = [&](int i) {
    auto r = (*tight)->Compute(exps[i]);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->source : "error";
  };
  EXPECT_EQ(source(0), "state built");
  EXPECT_EQ(source(1), "state built");
  EXPECT_EQ((*tight)->state_stats().experiments, 2u);
  EXPECT_EQ(source(0), "state refreshed");  // now 1 is the least recently used
  EXPECT_EQ(source(2), "state built");      // 1 is dropped
  EXPECT_EQ((*tight)->state_stats().experiments, 2u);
  EXPECT_LE((*tight)->state_stats().bytes, eo.max_state_bytes);
  EXPECT_EQ(source(0), "state refreshed");
  EXPECT_EQ(source(2), "state refreshed");
  EXPECT_EQ(source(1), "state built");  // built again; 0 goes
  EXPECT_EQ(source(2), "state refreshed");
  EXPECT_EQ(source(0), "state built");
}

TEST_P(ResultsTest, EmptyExperimentAndMissingTables) {
  auto engine = Engine(24);
  ASSERT_TRUE(engine);
  experiments::MetricSpec p95 = Metric("p95", "load", "quantile");
  p95.quantile = 0.95;
  auto r = engine->Compute(Definition({Metric("checkout", "purchase", "conversion"), p95}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->variants[0].users, 0);
  EXPECT_FALSE(r->newest_change_ms);
  ASSERT_TRUE(r->metrics[0].analysis);
  EXPECT_EQ(r->metrics[0].analysis->comparisons[0].direction, stats::Direction::kUndefined);
  std::string json = RenderJson(*r);
  EXPECT_NE(json.find(R"("newest_change":null)"), std::string::npos);

  ASSERT_TRUE(ch_->Execute("DROP TABLE events").ok());
  auto missing = engine->Compute(Definition({}));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
}

// GET /v1/experiments/{key}/results through the real server and service (PostgreSQL holds the
// definition, ClickHouse the data).
class EngineProvider : public api::ResultsProvider {
 public:
  EngineProvider(experiments::Service* service, ResultsEngine* engine)
      : service_(service), engine_(engine) {}
  Result<std::string> ResultsJson(const std::string& key) override {
    SPLITSTREAM_ASSIGN_OR_RETURN(ExperimentResults r, ComputeForKey(*service_, *engine_, key));
    return RenderJson(r);
  }

 private:
  experiments::Service* service_;
  ResultsEngine* engine_;
};

std::string JsonAt(std::string_view body, std::string_view pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element root, e;
  simdjson::padded_string padded(body);
  if (parser.parse(padded).get(root)) return "<not JSON>";
  if (root.at_pointer(pointer).get(e)) return "<missing>";
  std::string_view s;
  if (e.get(s) == simdjson::SUCCESS) return std::string(s);
  return simdjson::minify(e);
}

TEST_P(ResultsTest, ApiRoute) {
  auto db = splitstream::testing::TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto pool = pg::Pool::Create((*db)->dsn(), 4);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  auto service = experiments::Service::Create(pool->get(), {});
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  experiments::ExperimentSpec spec;
  spec.key = "api-results";
  spec.variants = {{"control", 1}, {"b", 3}};
  spec.metrics = {Metric("checkout", "purchase", "conversion")};
  auto created = (*service)->Create(spec);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const int64_t exp = created->id.value();
  Rows rows;
  for (size_t v = 0; v < 2; ++v) {
    int64_t vid = created->variants[v].id.value();
    for (int i = 0; i < 100 * (v == 0 ? 1 : 3); ++i) {
      std::string user = fmt::format("{}-{}", v, i);
      rows.Assign(exp, user, vid, kBase, 10);
      if (i % 4 == 0) rows.Event(exp, user, vid, "purchase", 1, kBase + 1, 10);
    }
  }
  ASSERT_NO_FATAL_FAILURE(Insert(rows));

  auto engine = Engine();
  ASSERT_TRUE(engine);
  EngineProvider provider(service->get(), engine.get());
  api::ServerOptions opts;
  opts.port = 0;
  opts.threads = 2;
  opts.admin_token = "admin-token";
  opts.client_token = "client-token";
  opts.results = &provider;
  auto server = api::Server::Start(opts, service->get(), pool->get());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  {
    api::testing::Client admin((*server)->port(), "admin-token");
    auto r = admin.Send(boost::beast::http::verb::get, "/v1/experiments/api-results/results");
    EXPECT_EQ(r.result_int(), 200) << r.body();
    EXPECT_EQ(JsonAt(r.body(), "/variants/0/users"), "100");
    EXPECT_EQ(JsonAt(r.body(), "/variants/1/users"), "300");
    EXPECT_EQ(JsonAt(r.body(), "/variants/1/weight"), "3.0");
    EXPECT_EQ(JsonAt(r.body(), "/srm/mismatch"), "false");
    EXPECT_EQ(JsonAt(r.body(), "/metrics/0/variants/1/value"), "75.0");
    EXPECT_EQ(JsonAt(r.body(), "/metrics/0/comparisons/0/direction"), "no_difference");
    r = admin.Send(boost::beast::http::verb::get, "/v1/experiments/nope/results");
    EXPECT_EQ(r.result_int(), 404) << r.body();
    api::testing::Client client((*server)->port(), "client-token");
    r = client.Send(boost::beast::http::verb::get, "/v1/experiments/api-results/results");
    EXPECT_EQ(r.result_int(), 403) << r.body();
  }
  (*server)->Shutdown();
  server->reset();
  (*service)->Shutdown();
}

INSTANTIATE_TEST_SUITE_P(ClickHouse, ResultsTest, ::testing::Values("18.16", "current"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "current" ? std::string("Current")
                                                          : std::string("Debian18_16");
                         });

}  // namespace
}  // namespace splitstream::results
