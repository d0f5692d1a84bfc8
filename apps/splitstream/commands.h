// The subcommands of `splitstream`, each wiring libraries together for one process role.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "splitstream/config/config.h"
#include "splitstream/core/result.h"
#include "splitstream/core/status.h"

namespace splitstream::api {
class ResultsProvider;
}
namespace splitstream::experiments {
class Service;
}

namespace splitstream::app {

struct MigrateOptions {
  int months_ahead = 3;
  int retention_months = 0;
  std::string only;  // "postgres" or "clickhouse"; empty: both
};

struct LoadgenOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string experiment = "demo-checkout";
  int64_t users = 2000;
  double base_rate = 0.10;
  double lift = 0.20;
  uint64_t seed = 42;
};

struct CdcCommandOptions {
  std::string slot = "splitstream";
  std::string publication = "splitstream";
  std::vector<std::string> tables;  // empty: the four Splitstream tables
  std::string snapshot_mode = "initial";
  int64_t heartbeat_interval_ms = 10000;
  int64_t slot_wait_ms = 30000;
  uint64_t max_in_flight = 200000;
  bool tombstones_on_delete = true;
  bool transaction_metadata = false;
  bool schemas_enable = false;
  std::string decimal_handling_mode = "precise";
  std::string metrics_addr = "127.0.0.1:9187";
  // librdkafka producer properties (KEY=VALUE), applied over the defaults; idempotence and
  // acks=all cannot be turned off.
  std::vector<std::string> kafka_properties;
};

struct SinkCommandOptions {
  std::string to = "clickhouse";    // clickhouse | files:DIR
  std::string group;                // empty: clickhouse-consumer, or files-archive for files:DIR
  std::vector<std::string> topics;  // empty: ^{prefix}\.public\..*
  uint64_t batch_rows = 10000;
  uint64_t batch_bytes = 64ull << 20;
  int64_t flush_ms = 1000;
  int64_t catch_up_flush_ms = 5000;   // the same while catching up a backlog
  uint64_t max_batch_rows = 1000000;  // growth limit while the previous INSERT runs
  std::string reset_offsets;          // "", earliest or an ISO-8601 timestamp
  std::string dlq_topic;              // empty: {prefix}.dlq
  std::string metrics_addr = "127.0.0.1:9188";
  int64_t shutdown_timeout_ms = 15000;  // the stop's budget; the process ends 10 s after at most
  // librdkafka consumer properties (KEY=VALUE), applied over the defaults; the group and
  // offset settings the sink's guarantees rest on cannot be changed.
  std::vector<std::string> kafka_properties;
};

struct UpOptions {
  std::string slot = "splitstream";  // cdc's replication slot
  std::string group;                 // sink's consumer group; empty: the sink's default
  std::string cdc_metrics_addr = "127.0.0.1:9187";
  std::string sink_metrics_addr = "127.0.0.1:9188";
};

struct ResultsCommandOptions {
  std::string experiment;
  std::string format = "table";   // table | json | csv
  int64_t cuped_hours = 14 * 24;  // CUPED pre-exposure window; 0: off
  bool sequential = false;        // always-valid intervals and p-values
};

// Prints the results of one experiment (definition from PostgreSQL, data from ClickHouse).
Status RunResults(const config::Config& cfg, const ResultsCommandOptions& opts);
// The provider of GET /v1/experiments/{key}/results for `serve`: definitions from `service`
// (borrowed), data from ClickHouse at cfg.clickhouse_url / clickhouse_database. Connects
// lazily: without ClickHouse the route answers 503.
Result<std::unique_ptr<api::ResultsProvider>> MakeResultsProvider(const config::Config& cfg,
                                                                  experiments::Service* service);

// Serves the HTTP API until SIGTERM or SIGINT, then shuts down gracefully.
struct ServeCommandOptions {
  // On SIGTERM: how long requests in flight may take to finish.
  int64_t shutdown_timeout_ms = 10000;
};
Status RunServe(const config::Config& cfg, const ServeCommandOptions& opts);
// Applies migrations and maintains the partitions of events.
Status RunMigrate(const config::Config& cfg, const MigrateOptions& opts);
// Streams PostgreSQL changes to Kafka as Debezium change events until SIGTERM or SIGINT.
Status RunCdc(const config::Config& cfg, const CdcCommandOptions& opts);
// Consumes the change topics into ClickHouse (or hourly JSON-lines files) until SIGTERM or
// SIGINT, committing Kafka offsets only after the rows are written.
Status RunSink(const config::Config& cfg, const SinkCommandOptions& opts);
// Migrates, then runs serve, cdc and (with Kafka brokers) sink as supervised child processes
// until SIGTERM or SIGINT; generates and prints the API tokens when none are configured.
Status RunUp(const config::Config& cfg, const UpOptions& opts);
// Creates (or reuses), starts and drives an experiment through the HTTP API.
Status RunLoadgen(const config::Config& cfg, const LoadgenOptions& opts);

}  // namespace splitstream::app
