// The results engine: per-variant sufficient statistics of every metric of an experiment from
// ClickHouse (sql.h), the analysis of libs/stats per metric, and the sample-ratio-mismatch test
// per experiment.
//
// Errors: Compute() passes ClickHouse errors on (Unavailable when the server is unreachable,
// NotFound for a missing table or database) and returns InvalidArgument for a definition the
// engine cannot compute (an unknown metric kind, a ratio without a denominator). A metric
// whose analysis fails (stats InvalidArgument, e.g. inconsistent sums) does not fail the
// experiment: its MetricResult carries the error text.
//
// Thread safety: Compute() may be called from any thread; the engine owns one ClickHouse
// client guarded by a mutex, so concurrent calls run one after the other.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "splitstream/clickhouse/client.h"
#include "splitstream/core/clock.h"
#include "splitstream/core/result.h"
#include "splitstream/experiments/model.h"
#include "splitstream/experiments/service.h"
#include "splitstream/results/sql.h"
#include "splitstream/results/state.h"
#include "splitstream/stats/analysis.h"

namespace splitstream::results {

class LiveExperiment;  // incremental.h

struct EngineOptions {
  stats::AnalysisOptions analysis;  // alpha, correction, sequential, priors, use_cuped
  // CUPED pre-exposure window in hours for conversion, mean and count metrics; 0 turns CUPED
  // off (and the pre-period aggregates are not computed at all).
  int64_t cuped_pre_window_hours = 14 * 24;
  double srm_threshold = 0.001;
  Dedup dedup = Dedup::kFinal;  // how the query deduplicates (sql.h)
  // Keep each experiment's state in memory and read only the rows written since the previous
  // request (state.h; README "Incremental results"), for up to `cached_experiments`
  // experiments, least recently used dropped first. Off (or 0): every request runs the main
  // query. Tables without the sink's `_batch` column are computed with the query.
  bool incremental = true;
  size_t cached_experiments = 4;
  // Memory for the states together: an experiment whose state would not fit alone is
  // computed with the query; others are dropped, least recently used first, to make room.
  size_t max_state_bytes = size_t{4} << 30;
  Clock* clock = nullptr;  // for the data age; nullptr: Clock::System()
};

struct VariantResult {
  int64_t id = 0;
  std::string key;
  double weight = 0;
  int64_t users = 0;  // exposed users (deduplicated assignments)
};

struct MetricResult {
  experiments::MetricSpec spec;
  std::optional<stats::MetricAnalysis> analysis;  // absent when `error` is set
  std::string error;
};

struct ExperimentResults {
  int64_t experiment_id = 0;
  std::string key;
  std::string name;
  std::string status;                   // draft | running | stopped
  std::vector<VariantResult> variants;  // control first
  std::optional<stats::SrmResult> srm;  // absent when it cannot be computed
  std::vector<MetricResult> metrics;    // in the experiment's order
  double alpha = 0.05;
  bool sequential = false;
  bool cuped = false;
  // Newest _source_ts_ms (commit time in PostgreSQL) over the experiment's rows in ClickHouse;
  // absent when ClickHouse has none yet.
  std::optional<int64_t> newest_change_ms;
  int64_t computed_at_us = 0;  // wall clock when computed
  int round_trips = 0;         // ClickHouse queries run
  double query_seconds = 0;    // time spent in them (and in updating the state)
  // How the figures were computed: "query" (the main query; "query (REASON)" when the
  // incremental state could not serve: tables without _batch, a state larger than
  // max_state_bytes), "state built" (the incremental state read whole) or "state refreshed"
  // (only the rows written since the last request).
  std::string source;
};

// The stats kind of a metric ("conversion" → kConversion ...); InvalidArgument otherwise.
Result<stats::MetricKind> ParseMetricKind(std::string_view kind);

// What the incremental states of an engine hold (EngineOptions::incremental).
struct EngineStateStats {
  size_t experiments = 0;  // states kept
  size_t events = 0;       // event keys (tombstones included)
  size_t users = 0;
  size_t bytes = 0;  // approximate heap bytes
};

class ResultsEngine {
 public:
  // Borrows nothing: the client is owned. `client` must not be null.
  // The client should not ask for compressed responses (ClientOptions::compress_responses):
  // building a state reads every event of the experiment, and gzip of that costs ClickHouse
  // more than the read (Create turns it off).
  ResultsEngine(std::unique_ptr<clickhouse::Client> client, EngineOptions options);
  ~ResultsEngine();
  // Creates a client with `client_options`.
  static Result<std::unique_ptr<ResultsEngine>> Create(
      const clickhouse::ClientOptions& client_options, EngineOptions options = {});

  // Results of `experiment` (its variants, weights and metrics come from the definition,
  // the data from ClickHouse). With `incremental`, from the experiment's state brought up to
  // date (three queries reading what was written since the last request; five to build it on
  // the first request or after a truncation); else one query (a
  // second one only if a quantile rank computed in SQL were ever more than one off the exact
  // one, see sql.h).
  Result<ExperimentResults> Compute(const experiments::Experiment& experiment);

  const EngineOptions& options() const { return options_; }
  EngineStateStats state_stats();

 private:
  Result<Aggregates> FromQuery(const ExperimentQuery& q, const std::string& main_sql,
                               ExperimentResults* out);
  Result<Aggregates> FromState(const ExperimentQuery& q, ExperimentResults* out);

  std::mutex mu_;
  std::unique_ptr<clickhouse::Client> client_;       // guarded by mu_
  std::list<std::unique_ptr<LiveExperiment>> live_;  // guarded by mu_; most recent first
  EngineOptions options_;
  Clock* clock_;
};

// Looks the experiment up in `service` (NotFound, field "key", for an unknown key) and
// computes its results. Both are borrowed.
Result<ExperimentResults> ComputeForKey(experiments::Service& service, ResultsEngine& engine,
                                        const std::string& key);

}  // namespace splitstream::results
