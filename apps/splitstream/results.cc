// `splitstream results EXPERIMENT`: the results of one experiment as a table, JSON or CSV, and
// the provider of the API's results route. Wiring only: the engine is libs/results.
#include <cstdio>

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
  EngineResultsProvider(experiments::Service* service,
                        std::unique_ptr<results::ResultsEngine> engine)
      : service_(service), engine_(std::move(engine)) {}

  Result<std::string> ResultsJson(const std::string& key) override {
    SPLITSTREAM_ASSIGN_OR_RETURN(results::ExperimentResults r,
                                 results::ComputeForKey(*service_, *engine_, key));
    return results::RenderJson(r);
  }

 private:
  experiments::Service* service_;
  std::unique_ptr<results::ResultsEngine> engine_;  // thread-safe (one client under a mutex)
};

}  // namespace

Result<std::unique_ptr<api::ResultsProvider>> MakeResultsProvider(const config::Config& cfg,
                                                                  experiments::Service* service) {
  SPLITSTREAM_ASSIGN_OR_RETURN(auto engine, results::ResultsEngine::Create(ClickHouseOptions(cfg)));
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
  engine_opts.cuped_pre_window_hours = opts.cuped_hours;
  engine_opts.analysis.sequential = opts.sequential;
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
