// The writer's own cost of sending a batch in key order (libs/pipeline/src/row_order.h):
// SortRows on `events` rows as ClickHouseWriter encodes them (bench/sink/run.sh's shape:
// gen_random_uuid() event ids, one experiment and variant), in arrival order, for the batch
// sizes of the sink while catching up (200 000 rows) and at its largest (1 000 000 rows).
// Run: build-bench/bench/sink/row_order_bench (Release).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <random>
#include <string>

#include "row_order.h"
#include "splitstream/clickhouse/row_binary.h"

namespace splitstream::pipeline {
namespace {

using Kind = RowColumn::Kind;

// The `events` table of MigrateClickHouse, ORDER BY (event_id, ts_us).
RowLayout EventsLayout() {
  const RowColumn str{Kind::kString, 0, false}, i64{Kind::kSigned, 8, false},
      u64{Kind::kUnsigned, 8, false}, u32{Kind::kUnsigned, 4, false}, u8{Kind::kUnsigned, 1, false},
      nf64{Kind::kFloat, 8, true};
  return {{str, i64, i64, str, str, nf64, str, u32, i64, u32, i64, u64, u8, i64, u64}, {0, 8}};
}

std::string EventsRows(int64_t n) {
  std::mt19937_64 rng(1);
  clickhouse::RowBinaryWriter w;
  for (int64_t g = 0; g < n; ++g) {
    const uint64_t a = rng(), b = rng();
    w.String(fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff,
                         a & 0xfff, b >> 48, b & 0xffffffffffffull));
    w.Int64(1);
    w.Int64(1);
    w.String(fmt::format("u{}", g % 100000));
    w.String("purchase");
    w.NullMarker(false);
    w.Float64(static_cast<double>(g % 97));
    w.String(fmt::format(R"({{"page": {}, "plan": "pro"}})", g % 13));
    const int64_t us = 1796534957283142 + g * 10;
    w.DateTime(static_cast<uint32_t>(us / 1000000));
    w.Int64(us);
    w.DateTime(static_cast<uint32_t>(us / 1000000));
    w.Int64(us);
    w.UInt64(static_cast<uint64_t>(26770016 + 312 * g));
    w.UInt8(0);
    w.Int64(1796534957283);
    w.UInt64(uint64_t{0x5eed} << 32 | 1);  // _batch
  }
  return w.buffer();
}

void BM_SortEventsRows(benchmark::State& state) {
  const int64_t n = state.range(0);
  const RowLayout layout = EventsLayout();
  const std::string input = EventsRows(n);
  std::string rows, spare;
  for (auto _ : state) {
    state.PauseTiming();
    rows = input;
    state.ResumeTiming();
    if (!SortRows(layout, static_cast<size_t>(n), rows, spare)) {
      state.SkipWithError("SortRows refused the rows");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.size()));
}
BENCHMARK(BM_SortEventsRows)->Arg(200000)->Arg(1000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace splitstream::pipeline

BENCHMARK_MAIN();
