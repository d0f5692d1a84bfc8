#include <spdlog/spdlog.h>

#include <atomic>

#include "commands.h"
#include "splitstream/api/ops_server.h"
#include "splitstream/clickhouse/client.h"
#include "splitstream/pg/pg.h"
#include "splitstream/pipeline/ack_tracker.h"
#include "splitstream/pipeline/cdc.h"
#include "splitstream/pipeline/clickhouse_emitter.h"
#include "splitstream/pipeline/kafka_emitter.h"
#include "splitstream/process/stop_signals.h"

namespace splitstream::app {
namespace {

Result<debezium::DecimalMode> ParseDecimalMode(const std::string& s) {
  if (s == "precise") return debezium::DecimalMode::kPrecise;
  if (s == "string") return debezium::DecimalMode::kString;
  if (s == "double") return debezium::DecimalMode::kDouble;
  return Status::InvalidArgument("expected precise, string or double, got \"" + s + "\"",
                                 "decimal_handling_mode");
}

}  // namespace

Status RunCdc(const config::Config& cfg, const CdcCommandOptions& opts) {
  pipeline::CdcOptions cdc_opts;
  cdc_opts.pg_dsn = cfg.pg_dsn;
  cdc_opts.slot = opts.slot;
  cdc_opts.publication = opts.publication;
  if (!opts.tables.empty()) cdc_opts.tables = opts.tables;
  SPLITSTREAM_ASSIGN_OR_RETURN(cdc_opts.snapshot_mode,
                               pipeline::ParseSnapshotMode(opts.snapshot_mode));
  cdc_opts.heartbeat_interval = std::chrono::milliseconds(opts.heartbeat_interval_ms);
  cdc_opts.slot_wait = std::chrono::milliseconds(opts.slot_wait_ms);
  cdc_opts.max_in_flight = opts.max_in_flight;

  pipeline::KafkaEmitterOptions emit_opts;
  emit_opts.brokers = cfg.kafka_brokers;
  emit_opts.encoder.server_name = cfg.topic_prefix;
  emit_opts.encoder.schemas_enable = opts.schemas_enable;
  SPLITSTREAM_ASSIGN_OR_RETURN(emit_opts.encoder.decimal_mode,
                               ParseDecimalMode(opts.decimal_handling_mode));
  emit_opts.tombstones_on_delete = opts.tombstones_on_delete;
  emit_opts.transaction_metadata = opts.transaction_metadata;
  SPLITSTREAM_ASSIGN_OR_RETURN(
      emit_opts.producer_overrides,
      config::ParseKafkaProperties(opts.kafka_properties,
                                   {"enable.idempotence", "acks", "request.required.acks"},
                                   "changes are confirmed to PostgreSQL only once every replica "
                                   "has them, without duplicates",
                                   "kafka_property"));
  SPLITSTREAM_ASSIGN_OR_RETURN(auto metrics_addr,
                               config::SplitHostPort(opts.metrics_addr, "metrics_addr"));

  // Before any thread starts. The process ends at the latest kStopSlack after the stop's own
  // budget (the flush of what is in flight); released by its destructor, after everything
  // declared below is destroyed.
  process::StopSignals signals("cdc", cdc_opts.shutdown_flush_timeout + process::kStopSlack);

  pipeline::AckTracker tracker;
  // The database name for source.db comes from the server.
  SPLITSTREAM_ASSIGN_OR_RETURN(auto conn, pg::Connection::Open(cfg.pg_dsn));
  SPLITSTREAM_ASSIGN_OR_RETURN(pg::Rows db, conn->Exec("SELECT current_database()"));
  emit_opts.encoder.database = std::string(db.text(0, 0));
  conn.reset();
  std::unique_ptr<pipeline::Emitter> emitter;
  if (cfg.kafka_brokers.empty()) {
    // Direct mode: the same rows the sink would write, straight into ClickHouse.
    clickhouse::ClientOptions ch_opts;
    ch_opts.url = cfg.clickhouse_url;
    ch_opts.database = cfg.clickhouse_database;
    SPLITSTREAM_ASSIGN_OR_RETURN(auto client, clickhouse::Client::Create(std::move(ch_opts)));
    pipeline::ClickHouseEmitterOptions ch_emit;
    ch_emit.database = cfg.clickhouse_database;
    ch_emit.encoder = emit_opts.encoder;
    SPLITSTREAM_ASSIGN_OR_RETURN(
        emitter, pipeline::ClickHouseEmitter::Create(std::move(ch_emit), std::move(client),
                                                     &tracker, &Clock::System()));
  } else {
    SPLITSTREAM_ASSIGN_OR_RETURN(
        emitter, pipeline::KafkaEmitter::Create(std::move(emit_opts), &tracker, &Clock::System()));
  }
  auto cdc = pipeline::Cdc::Create(cdc_opts, emitter.get(), &tracker, &Clock::System());

  api::OpsServerOptions ops;
  ops.host = metrics_addr.first;
  ops.port = metrics_addr.second;
  ops.metrics = [&cdc] { return pipeline::RenderPrometheus(cdc->Metrics()); };
  SPLITSTREAM_ASSIGN_OR_RETURN(auto ops_server, api::OpsServer::Start(ops));
  if (cfg.kafka_brokers.empty()) {
    spdlog::info(
        "cdc: metrics on http://{}:{}/metrics; direct mode: writing to ClickHouse "
        "database {}",
        metrics_addr.first, ops_server->port(), cfg.clickhouse_database);
  } else {
    spdlog::info("cdc: metrics on http://{}:{}/metrics; producing to {} with prefix {}",
                 metrics_addr.first, ops_server->port(), cfg.kafka_brokers, cfg.topic_prefix);
  }

  Status st = cdc->Run(signals.stop());
  ops_server->Shutdown();
  return st;
}

}  // namespace splitstream::app
