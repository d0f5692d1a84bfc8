#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "commands.h"
#include "splitstream/api/ops_server.h"
#include "splitstream/clickhouse/client.h"
#include "splitstream/core/timestamp.h"
#include "splitstream/debezium/encoder.h"
#include "splitstream/kafka/kafka.h"
#include "splitstream/pipeline/clickhouse_writer.h"
#include "splitstream/pipeline/sink.h"
#include "splitstream/process/stop_signals.h"

namespace splitstream::app {
Status RunSink(const config::Config& cfg, const SinkCommandOptions& opts) {
  if (cfg.kafka_brokers.empty()) {
    return Status::FailedPrecondition(
        "SPLITSTREAM_KAFKA_BROKERS is empty: the sink reads Kafka (in direct mode `splitstream "
        "cdc` writes to ClickHouse itself)");
  }
  const bool to_files = opts.to.rfind("files:", 0) == 0;
  if (!to_files && opts.to != "clickhouse") {
    return Status::InvalidArgument("expected clickhouse or files:DIR, got \"" + opts.to + "\"",
                                   "to");
  }
  pipeline::SinkOptions sink_opts;
  sink_opts.batch_rows = opts.batch_rows;
  sink_opts.batch_bytes = opts.batch_bytes;
  sink_opts.flush_interval = std::chrono::milliseconds(opts.flush_ms);
  sink_opts.catch_up_flush_interval = std::chrono::milliseconds(opts.catch_up_flush_ms);
  sink_opts.max_batch_rows = opts.max_batch_rows;
  if (opts.reset_offsets == "earliest") {
    sink_opts.reset = kafka::ResetPolicy::kEarliest;
  } else if (!opts.reset_offsets.empty()) {
    auto millis = ParseTimestampMillis(opts.reset_offsets, "reset_offsets");
    if (!millis.ok()) return millis.status().WithContext("--reset-offsets (earliest or a time)");
    sink_opts.reset_timestamp_ms = *millis;
    sink_opts.reset = kafka::ResetPolicy::kTimestamp;
  }
  if (!to_files)
    sink_opts.dlq_topic = opts.dlq_topic.empty() ? cfg.topic_prefix + ".dlq" : opts.dlq_topic;
  SPLITSTREAM_ASSIGN_OR_RETURN(auto metrics_addr,
                               config::SplitHostPort(opts.metrics_addr, "metrics_addr"));

  kafka::ConsumerOptions consumer_opts;
  consumer_opts.brokers = cfg.kafka_brokers;
  consumer_opts.group_id = !opts.group.empty() ? opts.group
                           : to_files          ? "files-archive"
                                               : "clickhouse-consumer";
  consumer_opts.subscriptions = opts.topics;
  // A commit that gets no answer is retried with the next flush anyway; a short wait keeps a
  // stop that comes during one within its bound (StopSignals below).
  consumer_opts.commit_timeout = std::chrono::milliseconds(5000);
  if (consumer_opts.subscriptions.empty()) {
    consumer_opts.subscriptions = {debezium::TableTopicsPattern(cfg.topic_prefix, "public")};
  }
  // New topics matching the pattern (a table's first change) are found on metadata refresh.
  consumer_opts.overrides["topic.metadata.refresh.interval.ms"] = "2000";
  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto consumer_properties,
      config::ParseKafkaProperties(
          opts.kafka_properties,
          {"group.id", "enable.auto.commit", "enable.auto.offset.store", "auto.offset.reset"},
          "the sink commits offsets itself, only after the target accepted the rows (use "
          "--group and --reset-offsets)",
          "kafka_property"));
  for (auto& [key, value] : consumer_properties) consumer_opts.overrides[key] = value;

  sink_opts.shutdown_timeout = std::chrono::milliseconds(opts.shutdown_timeout_ms);
  // The process ends at the latest kStopSlack after the sink's own stop budget: that covers
  // what the budget cannot (the commit running when the signal came; an INSERT already sent to
  // a ClickHouse that hangs runs to its request timeout; librdkafka's release of a handle whose
  // close gave up).
  process::StopSignals signals("sink", sink_opts.shutdown_timeout + process::kStopSlack);
  // Released by its destructor, after everything declared below is destroyed.
  const std::atomic<bool>& stop = signals.stop();

  std::unique_ptr<clickhouse::Client> client, insert_client;
  std::unique_ptr<pipeline::ClickHouseWriter> change_writer;
  std::unique_ptr<pipeline::SinkTarget> target;
  if (to_files) {
    target = pipeline::MakeFileArchive(opts.to.substr(6), &Clock::System());
  } else {
    clickhouse::ClientOptions ch;
    ch.url = cfg.clickhouse_url;
    ch.database = "";
    // The INSERTs run on the writer's background thread, with a client of their own.
    auto c = clickhouse::Client::Create(ch);
    auto ic = clickhouse::Client::Create(ch);
    if (!c.ok() || !ic.ok()) return c.ok() ? ic.status() : c.status();
    client = std::move(*c);
    insert_client = std::move(*ic);
    // ClickHouse may still be starting: wait for it rather than fail.
    auto backoff = std::chrono::milliseconds(100);
    while (true) {
      auto w = pipeline::ClickHouseWriter::Create(
          client.get(),
          {.database = cfg.clickhouse_database, .insert_client = insert_client.get()});
      if (w.ok()) {
        change_writer = std::move(*w);
        break;
      }
      if (w.status().code() != StatusCode::kUnavailable || stop.load()) {
        return w.status();
      }
      spdlog::warn("sink: ClickHouse not reachable, retrying in {} ms: {}", backoff.count(),
                   w.status().ToString());
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
    }
    target = std::make_unique<pipeline::ChangeTarget>(change_writer.get());
    std::vector<std::string> dlq = {sink_opts.dlq_topic};
    Status created = kafka::CreateTopics(cfg.kafka_brokers, dlq, 1, 1, std::chrono::seconds(10));
    if (!created.ok()) spdlog::warn("sink: creating {}: {}", dlq[0], created.ToString());
  }

  auto make_consumer = [&](kafka::PartitionsCallback on_assigned,
                           kafka::PartitionsCallback on_revoked) {
    kafka::ConsumerOptions o = consumer_opts;
    o.on_assigned = std::move(on_assigned);
    o.on_revoked = std::move(on_revoked);
    return kafka::Consumer::Create(std::move(o));
  };
  auto make_producer = [&](kafka::Producer::DeliveryCallback cb) {
    kafka::ProducerOptions o;
    o.brokers = cfg.kafka_brokers;
    o.client_id = "splitstream-sink-dlq";
    return kafka::Producer::Create(std::move(o), std::move(cb));
  };
  auto sink = pipeline::Sink::Create(sink_opts, target.get(), make_consumer, make_producer,
                                     &Clock::System());
  if (!sink.ok()) return sink.status();

  api::OpsServerOptions ops;
  ops.host = metrics_addr.first;
  ops.port = metrics_addr.second;
  const std::string metric_prefix = to_files ? "splitstream_archive" : "splitstream_sink";
  ops.metrics = [&sink, &metric_prefix] {
    return pipeline::RenderPrometheus((*sink)->Metrics(), metric_prefix);
  };
  auto ops_server = api::OpsServer::Start(ops);
  if (!ops_server.ok()) return ops_server.status();
  spdlog::info("sink: metrics on http://{}:{}/metrics; group {} reading {} into {}",
               metrics_addr.first, (*ops_server)->port(), consumer_opts.group_id,
               consumer_opts.subscriptions[0], to_files ? opts.to : cfg.clickhouse_database);

  Status st = (*sink)->Run(stop);
  (*ops_server)->Shutdown();
  spdlog::info("sink: stopped; releasing the Kafka and ClickHouse clients");
  return st;
}

}  // namespace splitstream::app
