// splitstream: one binary, one subcommand per process role. Flags and wiring only.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "splitstream/config/config.h"
#include "splitstream/core/log.h"

namespace {

// Options every subcommand shares; each maps onto a setting of libs/config.
struct CommonFlags {
  std::string config_path;
  std::map<std::string, std::string> values;
};

void AddSettingFlag(CLI::App* cmd, CommonFlags& flags, const std::string& flag,
                    const std::string& setting, const std::string& help) {
  cmd->add_option_function<std::string>(
      flag, [&flags, setting](const std::string& v) { flags.values[setting] = v; }, help);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Splitstream: experimentation on a change-data-capture pipeline.\n"
      "Configuration: flags > SPLITSTREAM_* environment > --config TOML > defaults."};
  app.require_subcommand(1);
  CommonFlags flags;
  app.add_option("--config", flags.config_path, "TOML configuration file")
      ->check(CLI::ExistingFile);
  AddSettingFlag(&app, flags, "--log-level", "log_level",
                 "trace|debug|info|warn|error|critical|off");
  AddSettingFlag(&app, flags, "--pg-dsn", "pg_dsn", "libpq conninfo of the source database");

  auto* serve = app.add_subcommand("serve", "HTTP API: experiments, assignment, events");
  AddSettingFlag(serve, flags, "--http-addr", "http_addr", "listen address host:port");
  AddSettingFlag(serve, flags, "--pg-pool-size", "pg_pool_size", "PostgreSQL connections");
  AddSettingFlag(serve, flags, "--http-threads", "http_threads", "worker threads (0: cores)");
  AddSettingFlag(serve, flags, "--http-blocking-threads", "http_blocking_threads",
                 "threads for requests that wait on a database");
  AddSettingFlag(serve, flags, "--max-body-bytes", "max_body_bytes", "request body limit");
  AddSettingFlag(serve, flags, "--results-intervals", "results_intervals",
                 "fixed|sequential: the results' intervals and p-values (sequential: always "
                 "valid, for looking as often as the dashboard refreshes)");
  splitstream::app::ServeCommandOptions serve_opts;
  serve
      ->add_option("--shutdown-timeout-ms", serve_opts.shutdown_timeout_ms,
                   "on SIGTERM: requests in flight get this long to finish; the process ends "
                   "15 s later at the latest, or when the signal comes again")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();

  splitstream::app::MigrateOptions migrate_opts;
  auto* migrate = app.add_subcommand("migrate", "apply database migrations and partitions");
  migrate
      ->add_option("--months-ahead", migrate_opts.months_ahead,
                   "monthly partitions of events to create ahead")
      ->capture_default_str();
  migrate
      ->add_option("--retention-months", migrate_opts.retention_months,
                   "drop partitions of events older than this many months (0: keep all)")
      ->capture_default_str();
  migrate
      ->add_option("--only", migrate_opts.only,
                   "migrate one side only: postgres (the service alone needs no ClickHouse) or "
                   "clickhouse")
      ->check(CLI::IsMember({"postgres", "clickhouse"}));

  splitstream::app::CdcCommandOptions cdc_opts;
  auto* cdc =
      app.add_subcommand("cdc", "stream PostgreSQL changes to Kafka as Debezium change events");
  AddSettingFlag(cdc, flags, "--kafka-brokers", "kafka_brokers", "Kafka bootstrap servers");
  AddSettingFlag(cdc, flags, "--topic-prefix", "topic_prefix", "Debezium topic.prefix");
  cdc->add_option("--slot", cdc_opts.slot, "logical replication slot")->capture_default_str();
  cdc->add_option("--publication", cdc_opts.publication, "publication (created when missing)")
      ->capture_default_str();
  cdc->add_option("--table", cdc_opts.tables,
                  "schema.table to publish when creating the publication (repeatable; default: "
                  "the Splitstream tables)");
  cdc->add_option("--snapshot-mode", cdc_opts.snapshot_mode, "initial|never|always")
      ->check(CLI::IsMember({"initial", "never", "always"}))
      ->capture_default_str();
  cdc->add_option("--heartbeat-interval-ms", cdc_opts.heartbeat_interval_ms,
                  "pg_logical_emit_message heartbeats so an idle slot advances (0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();
  cdc->add_option("--slot-wait-ms", cdc_opts.slot_wait_ms,
                  "how long a slot held by another consumer is waited for before failing")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();
  cdc->add_option("--max-in-flight", cdc_opts.max_in_flight,
                  "pause reading the slot while this many records are unacknowledged")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  cdc->add_option("--tombstones-on-delete", cdc_opts.tombstones_on_delete,
                  "a null-value record after every delete")
      ->capture_default_str();
  cdc->add_flag("--transaction-metadata", cdc_opts.transaction_metadata,
                "BEGIN/END records on {prefix}.transaction");
  cdc->add_flag("--schemas-enable", cdc_opts.schemas_enable,
                "write {schema, payload} envelopes (JsonConverter schemas.enable=true)");
  cdc->add_option("--decimal-handling-mode", cdc_opts.decimal_handling_mode,
                  "numeric columns: precise|string|double")
      ->check(CLI::IsMember({"precise", "string", "double"}))
      ->capture_default_str();
  cdc->add_option("--metrics-addr", cdc_opts.metrics_addr, "host:port of /metrics (port 0: any)")
      ->capture_default_str();
  cdc->add_option("--kafka-property", cdc_opts.kafka_properties,
                  "librdkafka producer property KEY=VALUE over the defaults (repeatable), e.g. "
                  "compression.type=zstd");

  splitstream::app::SinkCommandOptions sink_opts;
  auto* sink = app.add_subcommand(
      "sink", "consume the change topics into ClickHouse, or archive them as JSON-lines files");
  AddSettingFlag(sink, flags, "--kafka-brokers", "kafka_brokers", "Kafka bootstrap servers");
  AddSettingFlag(sink, flags, "--topic-prefix", "topic_prefix", "Debezium topic.prefix");
  AddSettingFlag(sink, flags, "--clickhouse-url", "clickhouse_url", "ClickHouse HTTP endpoint");
  AddSettingFlag(sink, flags, "--clickhouse-database", "clickhouse_database", "analytics database");
  sink->add_option("--to", sink_opts.to, "clickhouse, or files:DIR for hourly JSON-lines files")
      ->capture_default_str();
  sink->add_option("--group", sink_opts.group,
                   "consumer group (default clickhouse-consumer; files-archive for files:DIR)");
  sink->add_option("--topics", sink_opts.topics,
                   "topic names or ^regex patterns (repeatable; default ^{prefix}\\.public\\..*)");
  sink->add_option("--batch-rows", sink_opts.batch_rows,
                   "flush at this many buffered rows (more: see --max-batch-rows)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  sink->add_option("--batch-bytes", sink_opts.batch_bytes, "flush at this many buffered bytes")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 34))
      ->capture_default_str();
  sink->add_option("--flush-ms", sink_opts.flush_ms, "flush a batch at most this old")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}))
      ->capture_default_str();
  sink->add_option("--catch-up-flush-ms", sink_opts.catch_up_flush_ms,
                   "while catching up a backlog, flush a batch of at least --batch-rows rows at "
                   "most this old (at least --flush-ms)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();
  sink->add_option("--max-batch-rows", sink_opts.max_batch_rows,
                   "how far a batch may grow past --batch-rows: while the previous INSERT runs, "
                   "and while catching up (when a batch reached --batch-rows, at least "
                   "--batch-rows more messages waited behind it)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  sink->add_option("--reset-offsets", sink_opts.reset_offsets,
                   "reprocess from earliest or from a time: 2026-11-20, 2026-11-20T10:00:00Z, "
                   "...+01:00 (no zone: UTC; results unchanged)");
  sink->add_option("--dlq-topic", sink_opts.dlq_topic, "dead-letter topic (default {prefix}.dlq)");
  sink->add_option("--metrics-addr", sink_opts.metrics_addr, "host:port of /metrics (port 0: any)")
      ->capture_default_str();
  sink->add_option("--shutdown-timeout-ms", sink_opts.shutdown_timeout_ms,
                   "on SIGTERM: flush, commit and leave the group within this; the process "
                   "ends 10 s later at the latest, or when the signal comes again")
      ->check(CLI::Range(int64_t{1000}, int64_t{3600000}))
      ->capture_default_str();
  sink->add_option("--kafka-property", sink_opts.kafka_properties,
                   "librdkafka consumer property KEY=VALUE over the defaults (repeatable), e.g. "
                   "queued.max.messages.kbytes=65536");

  splitstream::app::ResultsCommandOptions results_opts;
  auto* results = app.add_subcommand(
      "results", "print an experiment's results (definition: PostgreSQL, data: ClickHouse)");
  AddSettingFlag(results, flags, "--clickhouse-url", "clickhouse_url", "ClickHouse HTTP endpoint");
  AddSettingFlag(results, flags, "--clickhouse-database", "clickhouse_database",
                 "analytics database");
  results->add_option("experiment", results_opts.experiment, "experiment key")->required();
  results->add_option("--format", results_opts.format, "table|json|csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  results
      ->add_option("--cuped-hours", results_opts.cuped_hours,
                   "CUPED pre-exposure window in hours (0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{24 * 366}))
      ->capture_default_str();
  results->add_flag("--sequential", results_opts.sequential,
                    "always-valid (sequential) intervals and p-values (also when "
                    "SPLITSTREAM_RESULTS_INTERVALS=sequential)");

  splitstream::app::UpOptions up_opts;
  auto* up = app.add_subcommand(
      "up",
      "everything at once: migrate, then serve, cdc and (with Kafka brokers) sink, supervised");
  AddSettingFlag(up, flags, "--http-addr", "http_addr", "API listen address host:port");
  AddSettingFlag(up, flags, "--kafka-brokers", "kafka_brokers",
                 "Kafka bootstrap servers (empty: direct mode, no sink)");
  AddSettingFlag(up, flags, "--topic-prefix", "topic_prefix", "Debezium topic.prefix");
  AddSettingFlag(up, flags, "--clickhouse-url", "clickhouse_url", "ClickHouse HTTP endpoint");
  AddSettingFlag(up, flags, "--clickhouse-database", "clickhouse_database", "analytics database");
  AddSettingFlag(up, flags, "--results-intervals", "results_intervals",
                 "fixed|sequential: the intervals of serve's results");
  up->add_option("--slot", up_opts.slot, "cdc's logical replication slot")->capture_default_str();
  up->add_option("--group", up_opts.group, "sink's consumer group (default clickhouse-consumer)");
  up->add_option("--cdc-metrics-addr", up_opts.cdc_metrics_addr, "host:port of cdc's /metrics")
      ->capture_default_str();
  up->add_option("--sink-metrics-addr", up_opts.sink_metrics_addr, "host:port of sink's /metrics")
      ->capture_default_str();

  splitstream::app::LoadgenOptions loadgen_opts;
  auto* loadgen = app.add_subcommand(
      "loadgen", "simulate an experiment with a known true effect through the HTTP API");
  loadgen->add_option("--url", loadgen_opts.url, "API base URL")->capture_default_str();
  loadgen->add_option("--experiment", loadgen_opts.experiment, "experiment key")
      ->capture_default_str();
  loadgen->add_option("--users", loadgen_opts.users, "simulated users")->capture_default_str();
  loadgen->add_option("--base-rate", loadgen_opts.base_rate, "control conversion rate")
      ->capture_default_str();
  loadgen->add_option("--lift", loadgen_opts.lift, "true relative lift of the treatment")
      ->capture_default_str();
  loadgen->add_option("--seed", loadgen_opts.seed, "random seed")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  auto cfg =
      splitstream::config::Load(flags.config_path, flags.values, splitstream::config::ProcessEnv());
  if (!cfg.ok()) {
    std::fprintf(stderr, "splitstream: configuration error: %s\n", cfg.status().ToString().c_str());
    return 2;
  }
  splitstream::InitLogging(cfg->log_level);
  if (spdlog::should_log(spdlog::level::debug)) {
    const std::string settings = cfg->Redacted();  // a line per setting, each ending in \n
    spdlog::debug("configuration (secrets hidden):\n{}", settings.substr(0, settings.size() - 1));
  }

  splitstream::Status st;
  if (serve->parsed()) {
    st = splitstream::app::RunServe(*cfg, serve_opts);
  } else if (migrate->parsed()) {
    st = splitstream::app::RunMigrate(*cfg, migrate_opts);
  } else if (cdc->parsed()) {
    st = splitstream::app::RunCdc(*cfg, cdc_opts);
  } else if (sink->parsed()) {
    st = splitstream::app::RunSink(*cfg, sink_opts);
  } else if (results->parsed()) {
    st = splitstream::app::RunResults(*cfg, results_opts);
  } else if (up->parsed()) {
    st = splitstream::app::RunUp(*cfg, up_opts);
  } else if (loadgen->parsed()) {
    st = splitstream::app::RunLoadgen(*cfg, loadgen_opts);
  }
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }
  return 0;
}
