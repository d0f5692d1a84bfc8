#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>

#include "incremental.h"
#include "splitstream/results/results.h"
#include "splitstream/results/sql.h"

namespace splitstream::results {
namespace {

Result<double> ParseDouble(const std::string& text, std::string_view what) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) {
    return Status::Internal(fmt::format("ClickHouse returned \"{}\" for {}", text, what));
  }
  return v;
}

Result<int64_t> ParseCount(const std::string& text, std::string_view what) {
  SPLITSTREAM_ASSIGN_OR_RETURN(double v, ParseDouble(text, what));
  if (v < 0) return Status::Internal(fmt::format("negative {} from ClickHouse", what));
  return static_cast<int64_t>(std::llround(v));
}

// "[1,2.5,3]" (an Array(Float64) in TabSeparated) → values.
Result<std::vector<double>> ParseArray(const std::string& text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') {
    return Status::Internal("ClickHouse returned \"" + text + "\" for a quantile array");
  }
  std::vector<double> out;
  std::string_view body(text.data() + 1, text.size() - 2);
  while (!body.empty()) {
    size_t comma = body.find(',');
    std::string item(body.substr(0, comma));
    SPLITSTREAM_ASSIGN_OR_RETURN(double v, ParseDouble(item, "a quantile"));
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    body.remove_prefix(comma + 1);
  }
  return out;
}

// Per-variant aggregates of one metric, in MetricColumns order.
using Sums = std::vector<double>;

}  // namespace

Result<stats::MetricKind> ParseMetricKind(std::string_view kind) {
  if (kind == "conversion") return stats::MetricKind::kConversion;
  if (kind == "mean") return stats::MetricKind::kMean;
  if (kind == "count") return stats::MetricKind::kCount;
  if (kind == "ratio") return stats::MetricKind::kRatio;
  if (kind == "quantile") return stats::MetricKind::kQuantile;
  return Status::InvalidArgument(fmt::format("unknown metric kind \"{}\"", kind), "kind");
}

ResultsEngine::ResultsEngine(std::unique_ptr<clickhouse::Client> client, EngineOptions options)
    : client_(std::move(client)),
      options_(options),
      clock_(options.clock ? options.clock : &Clock::System()) {}

Result<std::unique_ptr<ResultsEngine>> ResultsEngine::Create(
    const clickhouse::ClientOptions& client_options, EngineOptions options) {
  clickhouse::ClientOptions co = client_options;
  co.compress_responses = false;  // a state's build reads 440 MB for 10 M events (README)
  SPLITSTREAM_ASSIGN_OR_RETURN(auto client, clickhouse::Client::Create(co));
  return std::make_unique<ResultsEngine>(std::move(client), options);
}

ResultsEngine::~ResultsEngine() = default;

Result<Aggregates> ResultsEngine::FromQuery(const ExperimentQuery& q, const std::string& main_sql,
                                            ExperimentResults* out) {
  Result<std::vector<std::vector<std::string>>> rows = client_->QueryRows(main_sql);
  ++out->round_trips;
  if (!rows.ok()) return rows.status().WithContext("results query");

  Aggregates agg;
  const bool cuped_cols = q.cuped_pre_window_hours > 0;
  size_t width = 3;
  for (const MetricQuery& m : q.metrics) width += MetricColumns(m, cuped_cols).size();
  // (metric index, variant id) → the quantile column of the main query (sql.h).
  std::map<std::pair<size_t, int64_t>, std::vector<double>> order_stats;
  for (const std::vector<std::string>& row : *rows) {
    if (row.size() != width) {
      return Status::Internal(
          fmt::format("results query returned {} columns, expected {}", row.size(), width));
    }
    char* end = nullptr;
    int64_t id = std::strtoll(row[0].c_str(), &end, 10);
    VariantAggregates va;
    SPLITSTREAM_ASSIGN_OR_RETURN(va.users, ParseCount(row[1], "users"));
    size_t col = 2;
    for (size_t i = 0; i < q.metrics.size(); ++i) {
      const MetricQuery& m = q.metrics[i];
      Sums s;
      if (m.kind == stats::MetricKind::kQuantile) {
        // [n, (r, v(r-1), v(r), v(r+1)) for lower, p, upper], or [] without values.
        SPLITSTREAM_ASSIGN_OR_RETURN(std::vector<double> os, ParseArray(row[col++]));
        if (!os.empty() && os.size() != 13) {
          return Status::Internal("results query returned malformed order statistics");
        }
        s.push_back(os.empty() ? 0 : os[0]);
        order_stats[{i, id}] = std::move(os);
      } else {
        for (size_t k = 0; k < MetricColumns(m, cuped_cols).size(); ++k) {
          SPLITSTREAM_ASSIGN_OR_RETURN(double v, ParseDouble(row[col++], "a sum"));
          s.push_back(v);
        }
      }
      va.metrics.push_back(std::move(s));
    }
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t fresh, ParseCount(row[col], "fresh_ms"));
    if (fresh > 0) agg.fresh_ms = fresh;
    agg.variants[id] = std::move(va);
  }

  // Quantiles: the levels depend on each variant's sample size n. The main query read the
  // values at the ranks it computed in SQL from n, with their neighbours; the exact rank of
  // each level is the one quantileExact reads (floor(level * n)). Should SQL's rank ever be
  // more than one off, a second round trip asks quantilesExact for the exact levels.
  std::vector<QuantileRequest> requests;
  for (size_t i = 0; i < q.metrics.size(); ++i) {
    if (q.metrics[i].kind != stats::MetricKind::kQuantile) continue;
    for (int64_t id : q.variant_ids) {
      auto it = agg.variants.find(id);
      if (it == agg.variants.end()) continue;
      int64_t n = static_cast<int64_t>(std::llround(it->second.metrics[i][0]));
      if (n == 0) continue;
      QuantileRequest r{i, id, {q.metrics[i].quantile}};
      std::vector<size_t> slots = {1};  // which of SQL's lower, p, upper each level is
      Result<stats::QuantileLevels> levels =
          stats::LevelsForQuantile(q.metrics[i].quantile, n, q.alpha);
      if (levels.ok()) {
        r.levels = {levels->lower, levels->p, levels->upper};
        slots = {0, 1, 2};
      }
      std::vector<double> values = PickOrderStatistics(order_stats[{i, id}], r.levels, slots);
      if (!values.empty()) {
        agg.quantiles[{i, id}] = std::move(values);
      } else {
        requests.push_back(std::move(r));
      }
    }
  }
  if (!requests.empty()) {
    SPLITSTREAM_ASSIGN_OR_RETURN(std::string qsql, BuildQuantileQuery(q, requests));
    Result<std::vector<std::vector<std::string>>> qrows = client_->QueryRows(qsql);
    ++out->round_trips;
    if (!qrows.ok()) return qrows.status().WithContext("quantile query");
    if (qrows->size() != 1 || (*qrows)[0].size() != requests.size()) {
      return Status::Internal("quantile query returned an unexpected shape");
    }
    for (size_t r = 0; r < requests.size(); ++r) {
      SPLITSTREAM_ASSIGN_OR_RETURN(std::vector<double> values, ParseArray((*qrows)[0][r]));
      if (values.size() != requests[r].levels.size()) {
        return Status::Internal("quantile query returned an unexpected number of levels");
      }
      agg.quantiles[{requests[r].metric_index, requests[r].variant_id}] = std::move(values);
    }
  }
  return agg;
}

Result<Aggregates> ResultsEngine::FromState(const ExperimentQuery& q, ExperimentResults* out) {
  // The experiment's state, most recently used first; a changed definition starts afresh.
  auto it = std::find_if(live_.begin(), live_.end(), [&](const auto& l) {
    return l->state().query().experiment_id == q.experiment_id;
  });
  if (it != live_.end() && !(*it)->state().Serves(q)) {
    live_.erase(it);
    it = live_.end();
  }
  if (it == live_.end()) {
    live_.push_front(std::make_unique<LiveExperiment>(q, options_.max_state_bytes));
    while (live_.size() > options_.cached_experiments) live_.pop_back();
  } else {
    live_.splice(live_.begin(), live_, it);
  }
  LiveExperiment& live = *live_.front();
  Status st = live.Update(*client_, &out->round_trips);
  if (!st.ok()) {
    live_.pop_front();
    return st;
  }
  size_t total = 0;
  for (const auto& l : live_) total += l->state().bytes();
  while (live_.size() > 1 && total > options_.max_state_bytes) {
    total -= live_.back()->state().bytes();
    live_.pop_back();
  }
  out->source = live.rebuilt() ? "state built" : "state refreshed";
  Aggregates agg = live.state().Gather(q.alpha);
  agg.fresh_ms = live.fresh_ms();
  return agg;
}

EngineStateStats ResultsEngine::state_stats() {
  std::lock_guard lock(mu_);
  EngineStateStats out;
  for (const auto& live : live_) {
    ++out.experiments;
    out.events += live->state().events();
    out.users += live->state().users();
    out.bytes += live->state().bytes();
  }
  return out;
}

Result<ExperimentResults> ResultsEngine::Compute(const experiments::Experiment& e) {
  const stats::AnalysisOptions& ao = options_.analysis;
  ExperimentResults out;
  out.experiment_id = e.id.value();
  out.key = e.spec.key;
  out.name = e.spec.name;
  out.status = std::string(experiments::StatusName(e.status));
  out.alpha = ao.alpha;
  out.sequential = ao.sequential;
  out.cuped = ao.use_cuped && options_.cuped_pre_window_hours > 0;

  ExperimentQuery q;
  q.experiment_id = e.id.value();
  q.cuped_pre_window_hours = out.cuped ? options_.cuped_pre_window_hours : 0;
  q.dedup = options_.dedup;
  q.alpha = ao.alpha;
  for (const experiments::Variant& v : e.variants) {
    q.variant_ids.push_back(v.id.value());
    out.variants.push_back({v.id.value(), v.key, v.weight, 0});
  }
  std::vector<stats::MetricSpec> specs;
  for (size_t i = 0; i < e.spec.metrics.size(); ++i) {
    const experiments::MetricSpec& m = e.spec.metrics[i];
    Result<stats::MetricKind> kind = ParseMetricKind(m.kind);
    if (!kind.ok()) {
      return Status::InvalidArgument(kind.status().message(), fmt::format("metrics[{}].kind", i));
    }
    MetricQuery mq;
    mq.key = m.key;
    mq.event_type = m.event_type;
    mq.kind = *kind;
    mq.denominator_event_type = m.denominator_event_type.value_or("");
    mq.quantile = m.quantile.value_or(0.5);
    mq.window_hours = m.window_hours;
    q.metrics.push_back(std::move(mq));
    stats::MetricSpec s;
    s.name = m.key;
    s.kind = *kind;
    s.higher_is_better = m.higher_is_better;
    s.guardrail = m.guardrail;
    s.quantile = m.quantile.value_or(0.5);
    specs.push_back(std::move(s));
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(std::string main_sql, BuildMainQuery(q));

  std::unique_lock lock(mu_);
  auto start = std::chrono::steady_clock::now();
  Result<Aggregates> gathered = Status::FailedPrecondition("");
  if (options_.incremental && options_.cached_experiments > 0) {
    gathered = FromState(q, &out);
  }
  if (!gathered.ok()) {
    if (gathered.status().code() != StatusCode::kFailedPrecondition) return gathered.status();
    // Incremental results off, or not for this experiment (the reason in `source`).
    const std::string why(gathered.status().message());
    gathered = FromQuery(q, main_sql, &out);
    if (!gathered.ok()) return gathered.status();
    out.source = why.empty() ? "query" : "query (" + why + ")";
  }
  out.query_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  lock.unlock();
  out.computed_at_us = clock_->WallMicros();
  Aggregates& agg = *gathered;
  out.newest_change_ms = agg.fresh_ms;
  const bool cuped_cols = q.cuped_pre_window_hours > 0;
  for (VariantResult& v : out.variants) {
    auto it = agg.variants.find(v.id);
    if (it != agg.variants.end()) v.users = it->second.users;
  }
  auto sums_of = [&](size_t variant, size_t metric) -> Sums {
    auto it = agg.variants.find(out.variants[variant].id);
    if (it == agg.variants.end()) {
      return Sums(MetricColumns(q.metrics[metric], cuped_cols).size(), 0.0);
    }
    return it->second.metrics[metric];
  };
  const auto& quantiles = agg.quantiles;

  std::vector<int64_t> counts;
  std::vector<double> weights;
  for (const VariantResult& v : out.variants) {
    counts.push_back(v.users);
    weights.push_back(v.weight);
  }
  Result<stats::SrmResult> srm =
      stats::SampleRatioMismatch(counts, weights, options_.srm_threshold);
  if (srm.ok()) out.srm = *srm;

  for (size_t i = 0; i < q.metrics.size(); ++i) {
    const MetricQuery& m = q.metrics[i];
    MetricResult mr;
    mr.spec = e.spec.metrics[i];
    std::vector<stats::VariantData> data;
    Status st;
    for (size_t v = 0; v < out.variants.size() && st.ok(); ++v) {
      const Sums s = sums_of(v, i);
      const int64_t n = out.variants[v].users;
      stats::VariantData d;
      d.key = out.variants[v].key;
      d.weight = out.variants[v].weight;
      auto fail = [&](const Status& bad) {
        st = Status::InvalidArgument(bad.message(), fmt::format("variants[{}]", v));
      };
      size_t pre = 0;  // index of the CUPED sums
      switch (m.kind) {
        case stats::MetricKind::kConversion: {
          auto p = stats::ProportionState::FromCounts(n, std::llround(s[0]));
          if (!p.ok())
            fail(p.status());
          else
            d.conversions = *p;
          pre = 1;
          break;
        }
        case stats::MetricKind::kMean:
        case stats::MetricKind::kCount: {
          auto mo = stats::Moments::FromSums(n, s[0], s[1]);
          if (!mo.ok())
            fail(mo.status());
          else
            d.values = *mo;
          pre = 2;
          break;
        }
        case stats::MetricKind::kRatio: {
          auto r = stats::RatioMoments::FromSums(n, s[0], s[1], s[2], s[3], s[4]);
          if (!r.ok())
            fail(r.status());
          else
            d.ratio = *r;
          break;
        }
        case stats::MetricKind::kQuantile: {
          d.quantile.n = std::llround(s[0]);
          d.quantile.p = m.quantile;
          auto it = quantiles.find({i, out.variants[v].id});
          if (it != quantiles.end()) {
            const std::vector<double>& qv = it->second;
            if (qv.size() == 3) {
              d.quantile.lower = qv[0];
              d.quantile.estimate = qv[1];
              d.quantile.upper = qv[2];
            } else {
              // Too few values for an interval: the estimate alone ("not enough data").
              d.quantile.lower = d.quantile.estimate = d.quantile.upper = qv[0];
            }
          }
          break;
        }
      }
      if (st.ok() && cuped_cols && CupedApplies(m.kind)) {
        // Post sums: conversions are 0/1, so sum of squares = sum.
        double post_sq = m.kind == stats::MetricKind::kConversion ? s[0] : s[1];
        auto c = stats::CupedMoments::FromSums(n, s[0], s[pre], post_sq, s[pre + 1], s[pre + 2]);
        if (!c.ok())
          fail(c.status());
        else
          d.cuped = *c;
      }
      data.push_back(std::move(d));
    }
    if (st.ok()) {
      Result<stats::MetricAnalysis> a = stats::AnalyzeMetric(specs[i], data, ao);
      if (a.ok()) {
        mr.analysis = std::move(*a);
      } else {
        st = a.status();
      }
    }
    if (!st.ok()) mr.error = st.ToString();
    out.metrics.push_back(std::move(mr));
  }
  return out;
}

Result<ExperimentResults> ComputeForKey(experiments::Service& service, ResultsEngine& engine,
                                        const std::string& key) {
  SPLITSTREAM_ASSIGN_OR_RETURN(experiments::Experiment e, service.Get(key));
  return engine.Compute(e);
}

}  // namespace splitstream::results
