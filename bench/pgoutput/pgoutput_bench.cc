// Decoding throughput of the pgoutput decoder on messages captured from PostgreSQL 15
// (libs/pgoutput/testdata/pgoutput_v1.test). Reports ns per message (items_per_second).
//   build/bench/pgoutput/pgoutput_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "golden.h"
#include "splitstream/pgoutput/pgoutput.h"

namespace splitstream::pgoutput {
namespace {

const testing::GoldenFile& Golden() {
  static const testing::GoldenFile file =
      testing::ReadGoldenFile(std::string(SPLITSTREAM_PGOUTPUT_TESTDATA) + "/pgoutput_v1.test");
  return file;
}

std::vector<std::string> GoldenOfType(char type) {
  std::vector<std::string> out;
  for (const auto& s : Golden().scenarios) {
    for (const auto& m : s.messages) {
      if (m.bytes[0] == type) out.push_back(m.bytes);
    }
  }
  return out;
}

// Every captured Insert (4 users rows, an audit row, a row with a 6 400-byte TOASTed text).
void BM_DecodeInsert(benchmark::State& state) {
  const std::vector<std::string> inserts = GoldenOfType('I');
  Message message;
  size_t i = 0;
  for (auto _ : state) {
    if (!Decode(inserts[i], &message).ok()) std::abort();
    benchmark::DoNotOptimize(message);
    if (++i == inserts.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeInsert);

// The one-row transaction of the hot path: XLogData framing + Begin, Insert, Commit.
void BM_DecodeFramedTransaction(benchmark::State& state) {
  std::vector<std::string> frames;
  for (char type : {'B', 'I', 'C'}) {
    std::string frame(25, '\0');  // 'w', wal_start, wal_end, send_time
    frame[0] = 'w';
    frame += GoldenOfType(type)[0];
    frames.push_back(std::move(frame));
  }
  Message message;
  for (auto _ : state) {
    for (const std::string& frame : frames) {
      auto stream = DecodeStreamMessage(frame);
      if (!stream.ok()) std::abort();
      if (!Decode(std::get<XLogData>(*stream).payload, &message).ok()) std::abort();
      benchmark::DoNotOptimize(message);
    }
  }
  state.SetItemsProcessed(state.iterations() * frames.size());
}
BENCHMARK(BM_DecodeFramedTransaction);

}  // namespace
}  // namespace splitstream::pgoutput

BENCHMARK_MAIN();
