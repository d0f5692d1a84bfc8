#include <spdlog/spdlog.h>

#include "commands.h"
#include "splitstream/api/server.h"
#include "splitstream/experiments/service.h"
#include "splitstream/pg/pg.h"
#include "splitstream/process/stop_signals.h"

namespace splitstream::app {

Status RunServe(const config::Config& cfg, const ServeCommandOptions& opts) {
  if (cfg.admin_token.empty() || cfg.client_token.empty()) {
    return Status::InvalidArgument(
        "SPLITSTREAM_ADMIN_TOKEN and SPLITSTREAM_CLIENT_TOKEN must both be set (scripts/demo "
        "generates them)");
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(auto host_port, cfg.HttpHostPort());

  // Before any thread starts; released by its destructor, after everything declared below is
  // destroyed. Requests in flight get --shutdown-timeout-ms (10 s) to finish (a results query
  // takes seconds), the service 5 s more to stop its batchers and its LISTEN connection.
  const std::chrono::milliseconds grace(opts.shutdown_timeout_ms);
  process::StopSignals signals("serve", grace + std::chrono::seconds(5) + process::kStopSlack);

  SPLITSTREAM_ASSIGN_OR_RETURN(auto pool,
                               pg::Pool::Create(cfg.pg_dsn, static_cast<int>(cfg.pg_pool_size)));
  experiments::ServiceOptions service_opts;
  service_opts.conninfo = cfg.pg_dsn;
  SPLITSTREAM_ASSIGN_OR_RETURN(auto service,
                               experiments::Service::Create(pool.get(), service_opts));
  // Results come from ClickHouse; the client connects lazily, so serve starts without it.
  SPLITSTREAM_ASSIGN_OR_RETURN(auto results, MakeResultsProvider(cfg, service.get()));
  api::ServerOptions server_opts;
  server_opts.host = host_port.first;
  server_opts.port = host_port.second;
  server_opts.threads = static_cast<int>(cfg.http_threads);
  server_opts.blocking_threads = static_cast<int>(cfg.http_blocking_threads);
  server_opts.max_body_bytes = static_cast<size_t>(cfg.max_body_bytes);
  server_opts.admin_token = cfg.admin_token;
  server_opts.client_token = cfg.client_token;
  server_opts.results = results.get();
  server_opts.shutdown_grace = grace;
  SPLITSTREAM_ASSIGN_OR_RETURN(auto server,
                               api::Server::Start(server_opts, service.get(), pool.get()));
  spdlog::info("serve: listening on http://{}:{} ({} PostgreSQL connections)", host_port.first,
               server->port(), pool->size());

  signals.Wait();
  spdlog::info("serve: finishing in-flight requests");
  server->Shutdown();
  server->Wait();
  service->Shutdown();
  spdlog::info("serve: stopped");
  return Status::Ok();
}

}  // namespace splitstream::app
