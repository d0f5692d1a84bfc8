// `splitstream results EXPERIMENT`: the results of one experiment as a table, JSON or CSV, and
// the provider of the API's results route. Wiring only: the engine is libs/results.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <stop_token>
#include <thread>

#include "commands.h"
#include "splitstream/api/server.h"
#include "splitstream/experiments/service.h"
#include "splitstream/pg/pg.h"
#include "splitstream/results/render.h"
#include "splitstream/results/results.h"

namespace splitstream::app {
namespace {

clickhouse::ClientOptions ClickHouseOptions(const config::Config& cfg) {
  clickhouse::ClientOptions o;
  o.url = cfg.clickhouse_url;
  o.database = cfg.clickhouse_database;
  return o;
}

class EngineResultsProvider final : public api::ResultsProvider {
 public:
  // Starts building, in the background, the states of the running experiments (see Warm).
  EngineResultsProvider(experiments::Service* service,
                        std::unique_ptr<results::ResultsEngine> engine)
      : service_(service), engine_(std::move(engine)) {
    warm_ = std::jthread([this](std::stop_token stop) { Warm(stop); });
  }

  Result<std::string> ResultsJson(const std::string& key) override {
    SPLITSTREAM_ASSIGN_OR_RETURN(results::ExperimentResults r,
                                 results::ComputeForKey(*service_, *engine_, key));
    return results::RenderJson(r);
  }

 private:
  // The first results request of an experiment builds its state (libs/results README,
  // "Incremental results": seconds for millions of events); doing it for the running
  // experiments at start makes their first request as fast as the later ones. Stops at the
  // first ClickHouse error (serve runs without ClickHouse too) and between experiments when
  // serve stops.
  void Warm(std::stop_token stop) {
    Result<std::vector<experiments::Experiment>> list = service_->List();
    if (!list.ok()) return;
    size_t built = 0;
    for (const experiments::Experiment& e : *list) {
      if (stop.stop_requested() || built >= engine_->options().cached_experiments) return;
      if (e.status != experiments::ExperimentStatus::kRunning) continue;
      ++built;
      spdlog::info("results: reading the data of running experiment {}", e.spec.key);
      const auto start = std::chrono::steady_clock::now();
      Result<results::ExperimentResults> r = engine_->Compute(e);
      if (!r.ok()) {
        spdlog::warn("results: {} not prepared ({}); its first request will read it", e.spec.key,
                     r.status().ToString());
        return;
      }
      int64_t users = 0;
      for (const results::VariantResult& v : r->variants) users += v.users;
      spdlog::info("results: {} ready ({} users) in {:.1f} s", e.spec.key, users,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }

  experiments::Service* service_;
  std::unique_ptr<results::ResultsEngine> engine_;  // thread-safe (one client under a mutex)
  std::jthread warm_;  // declared last: stopped and joined before the engine goes
};

}  // namespace

Result<std::unique_ptr<api::ResultsProvider>> MakeResultsProvider(const config::Config& cfg,
                                                                  experiments::Service* service) {
  results::EngineOptions engine_opts;
  engine_opts.analysis.sequential = cfg.results_intervals == "sequential";
  SPLITSTREAM_ASSIGN_OR_RETURN(auto engine,
                               results::ResultsEngine::Create(ClickHouseOptions(cfg), engine_opts));
  return std::unique_ptr<api::ResultsProvider>(
      std::make_unique<EngineResultsProvider>(service, std::move(engine)));
}

Status RunResults(const config::Config& cfg, const ResultsCommandOptions& opts) {
  SPLITSTREAM_ASSIGN_OR_RETURN(auto pool, pg::Pool::Create(cfg.pg_dsn, 2));
  experiments::ServiceOptions service_opts;
  service_opts.conninfo = cfg.pg_dsn;
  service_opts.assign_threads = 1;
  SPLITSTREAM_ASSIGN_OR_RETURN(auto service,
                               experiments::Service::Create(pool.get(), service_opts));
  results::EngineOptions engine_opts;
  // One request, then the process ends: the query (6.7 s for 1 M users and 10 M events)
  // beats building a state that would serve no second request (8.5 s; docs/benchmarks.md).
  engine_opts.incremental = false;
  engine_opts.cuped_pre_window_hours = opts.cuped_hours;
  engine_opts.analysis.sequential = opts.sequential || cfg.results_intervals == "sequential";
  SPLITSTREAM_ASSIGN_OR_RETURN(auto engine,
                               results::ResultsEngine::Create(ClickHouseOptions(cfg), engine_opts));
  Result<results::ExperimentResults> r = results::ComputeForKey(*service, *engine, opts.experiment);
  service->Shutdown();
  if (!r.ok()) return r.status();
  std::string text = opts.format == "json"  ? results::RenderJson(*r) + "\n"
                     : opts.format == "csv" ? results::RenderCsv(*r)
                                            : results::RenderTable(*r);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return Status::Ok();
}

}  // namespace splitstream::app
