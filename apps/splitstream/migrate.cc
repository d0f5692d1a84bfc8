#include <spdlog/spdlog.h>

#include "commands.h"
#include "splitstream/clickhouse/client.h"
#include "splitstream/core/strings.h"
#include "splitstream/experiments/migrations.h"
#include "splitstream/pg/pg.h"
#include "splitstream/pipeline/clickhouse_writer.h"

namespace splitstream::app {

namespace {

Status MigratePostgres(const config::Config& cfg, const MigrateOptions& opts) {
  SPLITSTREAM_ASSIGN_OR_RETURN(auto conn, pg::Connection::Open(cfg.pg_dsn));
  SPLITSTREAM_ASSIGN_OR_RETURN(auto report, experiments::Migrate(*conn));
  for (const auto& name : report.applied) spdlog::info("migrate: applied {}", name);
  spdlog::info("migrate: PostgreSQL schema at version {} ({} applied now)", report.current_version,
               report.applied.size());
  int months_back = opts.retention_months > 0 ? opts.retention_months : 1;
  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto created, experiments::EnsureEventPartitions(*conn, months_back, opts.months_ahead));
  for (const auto& name : created) spdlog::info("migrate: created partition {}", name);
  if (opts.retention_months > 0) {
    SPLITSTREAM_ASSIGN_OR_RETURN(
        auto dropped, experiments::DropEventPartitionsOlderThan(*conn, opts.retention_months));
    for (const auto& name : dropped) spdlog::info("migrate: dropped partition {}", name);
  }
  return Status::Ok();
}

Status MigrateAnalytics(const config::Config& cfg) {
  // The analytics side: the ClickHouse database and one table per source table (idempotent).
  clickhouse::ClientOptions ch_opts;
  ch_opts.url = cfg.clickhouse_url;
  ch_opts.database = "";
  SPLITSTREAM_ASSIGN_OR_RETURN(auto ch, clickhouse::Client::Create(std::move(ch_opts)));
  SPLITSTREAM_RETURN_IF_ERROR(pipeline::MigrateClickHouse(*ch, cfg.clickhouse_database));
  spdlog::info("migrate: ClickHouse database {} ready", cfg.clickhouse_database);
  return Status::Ok();
}

}  // namespace

Status RunMigrate(const config::Config& cfg, const MigrateOptions& opts) {
  if (opts.months_ahead < 0 || opts.retention_months < 0) {
    return Status::InvalidArgument("--months-ahead and --retention-months must be >= 0");
  }
  if (opts.only != "clickhouse") SPLITSTREAM_RETURN_IF_ERROR(MigratePostgres(cfg, opts));
  if (opts.only != "postgres") {
    SPLITSTREAM_RETURN_IF_ERROR(
        MigrateAnalytics(cfg).WithContext("ClickHouse (`migrate --only postgres` leaves it out)"));
  }
  return Status::Ok();
}

}  // namespace splitstream::app
