// Keeps an ExperimentState up to date from ClickHouse (libs/results README, "Incremental
// results"): the first Update builds it from the deduplicated tables, later ones read only
// the rows of the batches written since (the `_batch` column the sink writes: writer id in the
// high 32 bits, a per-writer counter in the low 32, increasing per table).
#pragma once

#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "splitstream/clickhouse/client.h"
#include "splitstream/core/result.h"
#include "splitstream/results/state.h"

namespace splitstream::results {

class LiveExperiment {
 public:
  // `max_bytes`: a build that would need more (estimated from the experiment's row counts
  // before reading them) is refused.
  LiveExperiment(const ExperimentQuery& q, size_t max_bytes) : state_(q), max_bytes_(max_bytes) {}

  // Brings the state up to date. FailedPrecondition when `assignments` or `events` has no
  // `_batch` column (tables of an older sink), or when the state would need more than
  // `max_bytes`: the caller computes without a state; other errors are ClickHouse's. After an
  // error the state is unusable: drop it. `round_trips` is incremented per query.
  Status Update(clickhouse::Client& client, int* round_trips);

  ExperimentState& state() { return state_; }
  // Newest _source_ts_ms over the experiment's rows (the main query's fresh_ms), as of the
  // last Update; none when there are no rows.
  std::optional<int64_t> fresh_ms() const { return fresh_ms_; }
  // Whether the last Update built the state from scratch.
  bool rebuilt() const { return rebuilt_; }

 private:
  // Per table (0 assignments, 1 events): writer id → the highest batch read.
  using Marks = std::map<uint64_t, uint64_t>;
  // (event key, version) of the event rows of the batches at the marks that the state has
  // read: reading such a batch again applies only its rows not read yet. An older version of
  // an event that has since moved to another experiment would otherwise count again (the
  // state keeps no keys of other experiments).
  using Seen = absl::flat_hash_set<std::pair<uint64_t, uint64_t>>;

  Status Build(clickhouse::Client& client, int* round_trips);
  Status ReadNew(clickhouse::Client& client, int* round_trips);

  ExperimentState state_;
  size_t max_bytes_;
  bool built_ = false;
  bool rebuilt_ = false;
  uint64_t truncated_[2] = {0, 0};  // the tables' latest _truncations version when built
  Marks marks_[2];
  std::map<uint64_t, Seen> at_marks_;  // writer → rows of its marked events batch
  std::optional<int64_t> fresh_ms_;
};

}  // namespace splitstream::results
