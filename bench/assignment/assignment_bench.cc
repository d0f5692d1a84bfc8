// ns per Allocation::Assign() for 2 and 10 variants, with and without a layer. User ids
// vary per iteration (a precomputed vector, so id formatting is not measured).
#include <benchmark/benchmark.h>

#include <optional>
#include <string>
#include <vector>

#include "splitstream/assignment/assignment.h"

namespace splitstream::assignment {
namespace {

const std::vector<std::string>& UserIds() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> v;
    constexpr int kIds = 1 << 16;
    v.reserve(kIds);
    for (int i = 0; i < kIds; ++i) v.push_back("user-" + std::to_string(1000003LL * i));
    return v;
  }();
  return ids;
}

void BM_Assign(benchmark::State& state) {
  const int variants = static_cast<int>(state.range(0));
  const bool with_layer = state.range(1) != 0;
  std::optional<LayerShare> layer;
  if (with_layer) layer = LayerShare{"checkout-layer", 0, 1};  // everybody passes the layer
  const Allocation allocation("checkout-button-color", 2, 1.0,
                              std::vector<double>(variants, 1.0 / variants), layer);
  const auto& ids = UserIds();
  const size_t mask = ids.size() - 1;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(allocation.Assign(ids[i++ & mask]));
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Assign)
    ->ArgNames({"variants", "layer"})
    ->Args({2, 0})
    ->Args({10, 0})
    ->Args({2, 1})
    ->Args({10, 1});

}  // namespace
}  // namespace splitstream::assignment

BENCHMARK_MAIN();
