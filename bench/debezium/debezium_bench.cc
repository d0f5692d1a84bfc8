// Cost of one `events` row (its real columns and primary key) through the Debezium encoder
// and the sink's decoder.
// Run: build/bench/debezium/debezium_bench (RelWithDebInfo, no sanitizers).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "splitstream/debezium/decoder.h"
#include "splitstream/debezium/encoder.h"

namespace splitstream::debezium {
namespace {

TableSchema EventsSchema() {
  return {"public",
          "events",
          {{"event_id", 2950, -1, true},
           {"experiment_id", 20, -1, false},
           {"variant_id", 20, -1, false},
           {"user_id", 25, -1, false},
           {"event_type", 25, -1, false},
           {"value", 701, -1, false},
           {"properties", 3802, -1, false},
           {"ts", 1184, -1, true},
           {"received_at", 1184, -1, false}},
          {}};
}

const std::vector<Datum> kRow = {
    {DatumKind::kText, "0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69"},
    {DatumKind::kText, "1234567"},
    {DatumKind::kText, "7654321"},
    {DatumKind::kText, "user-000123456"},
    {DatumKind::kText, "conversion"},
    {DatumKind::kText, "19.99"},
    {DatumKind::kText, R"({"sku": "A-1", "page": "/checkout", "device": "mobile"})"},
    {DatumKind::kText, "2026-11-20 10:11:12.345678+00"},
    {DatumKind::kText, "2026-11-20 10:11:12.4+00"}};

const SourceInfo kSource{1795169472345678, "false", Lsn(24023119), Lsn(24023128), 555};

void BM_EncodeEventsValue(benchmark::State& state) {
  EncoderOptions o;
  o.database = "splitstream";
  o.schemas_enable = state.range(0) != 0;
  Encoder enc(o);
  auto table = enc.Prepare(EventsSchema());
  std::string out;
  int64_t bytes = 0;
  for (auto _ : state) {
    Status st = enc.EncodeValue(*table, Op::kCreate, {}, kRow, kSource, 1795169472400001002, &out);
    benchmark::DoNotOptimize(st);
    bytes += static_cast<int64_t>(out.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_EncodeEventsValue)->Arg(0)->Arg(1);

void BM_EncodeEventsKeyAndValue(benchmark::State& state) {
  EncoderOptions o;
  o.database = "splitstream";
  Encoder enc(o);
  auto table = enc.Prepare(EventsSchema());
  std::string key, value;
  for (auto _ : state) {
    enc.EncodeKey(*table, kRow, &key);
    Status st =
        enc.EncodeValue(*table, Op::kCreate, {}, kRow, kSource, 1795169472400001002, &value);
    benchmark::DoNotOptimize(st);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeEventsKeyAndValue);

// What KafkaEmitter does: key and value in one pass.
void BM_EncodeEventsKeyAndValueOnePass(benchmark::State& state) {
  EncoderOptions o;
  o.database = "splitstream";
  Encoder enc(o);
  auto table = enc.Prepare(EventsSchema());
  std::string key, value;
  bool has_key = false;
  for (auto _ : state) {
    Status st = enc.EncodeKeyAndValue(*table, Op::kCreate, {}, kRow, kSource, 1795169472400001002,
                                      &key, &has_key, &value);
    benchmark::DoNotOptimize(st);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeEventsKeyAndValueOnePass);

void BM_DecodeEventsValue(benchmark::State& state) {
  EncoderOptions o;
  o.database = "splitstream";
  o.schemas_enable = state.range(0) != 0;
  Encoder enc(o);
  auto table = enc.Prepare(EventsSchema());
  std::string key, value;
  enc.EncodeKey(*table, kRow, &key);
  (void)enc.EncodeValue(*table, Op::kCreate, {}, kRow, kSource, 1795169472400001002, &value);
  Decoder dec;
  for (auto _ : state) {
    auto rec = dec.Decode("dbserver1.public.events", key, value);
    benchmark::DoNotOptimize(rec);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(value.size()));
}
BENCHMARK(BM_DecodeEventsValue)->Arg(0)->Arg(1);

}  // namespace
}  // namespace splitstream::debezium

BENCHMARK_MAIN();
