// The sink's own CPU per message, without Kafka or ClickHouse: ChangeTarget::Add (Debezium
// decoding + ClickHouseWriter's RowBinary encoding) of `events` change events shaped like the
// ones bench/sink/run.sh consumes (schema-less envelope, ~690-byte value, ~85-byte key), with a
// flush into a client that drops the bytes every 10 000 rows.
// Run: build-bench/bench/sink/sink_decode_bench (Release).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "splitstream/clickhouse/client.h"
#include "splitstream/kafka/kafka.h"
#include "splitstream/pipeline/clickhouse_writer.h"
#include "splitstream/pipeline/sink.h"

namespace splitstream::pipeline {
namespace {

// Knows the `events` table of the ClickHouse schema (MigrateClickHouse) and drops inserts.
class NullClient final : public clickhouse::Client {
 public:
  Status Execute(std::string_view, const clickhouse::Settings&) override { return Status::Ok(); }
  Result<std::string> Query(std::string_view, const clickhouse::Settings&) override {
    return std::string();
  }
  Result<std::vector<std::vector<std::string>>> QueryRows(std::string_view sql,
                                                          const clickhouse::Settings&) override {
    if (sql.find("system.tables") != std::string_view::npos) {
      return std::vector<std::vector<std::string>>{{"events", "event_id, ts_us"}};
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, type] :
         std::vector<std::pair<std::string, std::string>>{{"event_id", "String"},
                                                          {"experiment_id", "Int64"},
                                                          {"variant_id", "Int64"},
                                                          {"user_id", "String"},
                                                          {"event_type", "String"},
                                                          {"value", "Nullable(Float64)"},
                                                          {"properties", "String"},
                                                          {"ts", "DateTime"},
                                                          {"ts_us", "Int64"},
                                                          {"received_at", "DateTime"},
                                                          {"received_at_us", "Int64"},
                                                          {"_version", "UInt64"},
                                                          {"_deleted", "UInt8"},
                                                          {"_source_ts_ms", "Int64"},
                                                          {"_batch", "UInt64"}}) {
      rows.push_back({"events", name, type});
    }
    return rows;
  }
  Result<std::vector<clickhouse::NullableRow>> QueryNullableRows(
      std::string_view, const clickhouse::Settings&) override {
    return std::vector<clickhouse::NullableRow>{};
  }
  Status Insert(std::string_view, std::span<const std::string>, std::string_view,
                std::string_view body, const clickhouse::Settings&) override {
    bytes += body.size();
    return Status::Ok();
  }
  Status Ping() override { return Status::Ok(); }
  clickhouse::ClientStats stats() const override { return {}; }
  const clickhouse::ClientOptions& options() const override { return options_; }

  size_t bytes = 0;

 private:
  clickhouse::ClientOptions options_;
};

// Messages as `splitstream cdc` writes them for the benchmark's INSERT ... generate_series.
// The event ids start with 32 pseudo-random bits, like gen_random_uuid()'s, so that the
// writer's sort into key order (libs/pipeline README, "Rows in key order") does real work.
std::vector<kafka::Message> EventMessages(int n) {
  std::vector<kafka::Message> out;
  out.reserve(n);
  for (int g = 0; g < n; ++g) {
    uint64_t z = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(g + 1);  // splitmix64's mixer
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::string uuid =
        fmt::format("{:08x}-93b9-4842-9f2d-{:012x}", z & 0xffffffffu, 0xd64442fff9baull + g);
    std::string ts = fmt::format("2026-12-06T05:29:{:02}.{:06}Z", g % 60, (g * 7919) % 1000000);
    std::string key = fmt::format(R"({{"event_id":"{}","ts":"{}"}})", uuid, ts);
    int64_t lsn = 26770016 + 312LL * g;
    std::string value = fmt::format(
        R"({{"before":null,"after":{{"event_id":"{0}","experiment_id":1,"variant_id":1,)"
        R"("user_id":"u{1}","event_type":"purchase","value":{2}.0,)"
        R"("properties":"{{\"page\": {3}, \"plan\": \"pro\"}}","ts":"{4}","received_at":"{4}"}},)"
        R"("source":{{"version":"3.1.3.Final","connector":"postgresql","name":"sinkbench",)"
        R"("ts_ms":1796534957283,"snapshot":"false","db":"splitstream",)"
        R"("sequence":"[null,\"{5}\"]","ts_us":1796534957283142,"ts_ns":1796534957283142000,)"
        R"("schema":"public","table":"events","txId":735,"lsn":{5},"xmin":null}},)"
        R"("transaction":null,"op":"c","ts_ms":1796535014988,"ts_us":1796535014988442,)"
        R"("ts_ns":1796535014988442000}})",
        uuid, g % 100000, g % 97, g % 13, ts, lsn);
    out.push_back(kafka::Message::Make("sinkbench.public.events", 0, g, key, value));
  }
  return out;
}

void BM_SinkAddEventsMessage(benchmark::State& state) {
  NullClient client;
  auto writer = ClickHouseWriter::Create(&client, {.database = "experiments"});
  if (!writer.ok()) {
    state.SkipWithError(writer.status().ToString().c_str());
    return;
  }
  ChangeTarget target(writer->get(), /*decode_ahead=*/false);
  const std::vector<kafka::Message> messages = EventMessages(10000);
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    const kafka::Message& m = messages[i];
    Status st = target.Add(m);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
    bytes += static_cast<int64_t>(m.value()->size() + m.key()->size());
    if (++i == messages.size()) {
      i = 0;
      (void)target.Flush();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_SinkAddEventsMessage);

// The same with decode-ahead as the sink's Drain uses it: 512 to 1 024 messages announced ahead
// and decoded by ChangeTarget's worker while this thread encodes; wall time per message.
void BM_SinkAddEventsMessageDecodeAhead(benchmark::State& state) {
  NullClient client;
  auto writer = ClickHouseWriter::Create(&client, {.database = "experiments"});
  if (!writer.ok()) {
    state.SkipWithError(writer.status().ToString().c_str());
    return;
  }
  ChangeTarget target(writer->get(), /*decode_ahead=*/true);
  const std::vector<kafka::Message> messages = EventMessages(10000);
  std::vector<const kafka::Message*> upcoming;
  size_t i = 0, announced = 0;
  for (auto _ : state) {
    if (announced < 512) {
      upcoming.clear();
      for (size_t k = i + announced; k < messages.size() && k < i + announced + 512; ++k) {
        upcoming.push_back(&messages[k]);
      }
      announced += target.Prepare(upcoming);
    }
    Status st = target.Add(messages[i]);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
    if (announced > 0) --announced;
    if (++i == messages.size()) {
      target.SettlePrepared();
      i = 0;
      (void)target.Flush();
    }
  }
  target.SettlePrepared();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SinkAddEventsMessageDecodeAhead)->UseRealTime();

}  // namespace
}  // namespace splitstream::pipeline

BENCHMARK_MAIN();
