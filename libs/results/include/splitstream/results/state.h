// The incremental results state of one experiment (libs/results README, "Incremental
// results"): the deduplicated rows of its assignments and events as the engine last read them,
// and per exposed user the sums its metrics are made of, so that a results request reads only
// the rows written since the previous one. Pure: the rows come from the caller (incremental.cc
// reads them from ClickHouse), nothing here does I/O.
//
// Rows are applied as ReplacingMergeTree(_version) deduplicates them: per key the row with the
// highest version wins, and a row whose version is not above the one applied is a copy (a
// replay or a retried INSERT) and changes nothing. A deleted row is kept as a tombstone (its
// key and version), so that an older copy arriving later cannot bring the row back. Users are
// identified by cityHash64(user_id) and events by cityHash64(event_id, ts_us), as ClickHouse
// computes them (two keys of 10 M collide with probability about 3e-6).
//
// Not thread-safe: the engine applies and gathers under its lock.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "splitstream/results/sql.h"

namespace splitstream::results {

// Per-variant inputs of the analysis, however they were computed (the main query or the
// state). `metrics[i]` holds metric i's sums in MetricColumns order (a quantile metric: {n},
// the number of values). `quantiles[{metric, variant id}]` are the values at the levels of
// stats::LevelsForQuantile(p, n, alpha) (lower, p, upper), or at p alone when n is too small
// for an interval; absent when the variant has no value.
struct VariantAggregates {
  int64_t users = 0;
  std::vector<std::vector<double>> metrics;
};
struct Aggregates {
  std::map<int64_t, VariantAggregates> variants;  // by variant id
  std::map<std::pair<size_t, int64_t>, std::vector<double>> quantiles;
  std::optional<int64_t> fresh_ms;  // newest _source_ts_ms; none when there are no rows
};

// One row of `assignments` of the experiment.
struct ExposureRow {
  uint64_t user = 0;  // cityHash64(user_id)
  uint64_t version = 0;
  bool deleted = false;
  int64_t variant_id = 0;
  int64_t exposed_us = 0;  // assigned_at_us
};

// One row of `events`, of any experiment (a delete carries only the key).
struct EventRow {
  uint64_t key = 0;  // cityHash64(event_id, ts_us)
  uint64_t version = 0;
  bool deleted = false;
  int64_t experiment_id = 0;
  uint64_t user = 0;  // cityHash64(user_id)
  std::string_view event_type;
  std::optional<double> value;
  int64_t ts_us = 0;
};

class ExperimentState {
 public:
  // `q` is validated by the caller (BuildMainQuery accepts it).
  explicit ExperimentState(ExperimentQuery q);

  // True when `q` asks for the same rows and per-user values (experiment, variants, metrics,
  // CUPED window); alpha and dedup do not matter to the state.
  bool Serves(const ExperimentQuery& q) const;
  const ExperimentQuery& query() const { return q_; }

  // Apply rows in any order; every row of one read, then Settle(). Rows of other experiments
  // matter only for keys the state knows (an update may move an event to another experiment);
  // the state keeps no others, so an older version of an event that has moved to another
  // experiment counts if it is applied after the state last saw the key (README, "Limits").
  void ApplyExposure(const ExposureRow& row);
  void ApplyEvent(const EventRow& row);
  // Room for about this many events and users (a hint: growing a 10 M-key table step by
  // step costs seconds and leaves it up to twice as large as needed).
  void Reserve(size_t events, size_t users);
  // Recomputes the users whose exposure or events changed since the last Settle.
  void Settle();

  // The per-variant sums and order statistics (Settle first). `alpha` picks the quantile
  // levels. fresh_ms is left empty (the caller knows it).
  Aggregates Gather(double alpha);

  size_t events() const { return event_index_.size(); }
  size_t users() const { return user_index_.size(); }
  // Approximate heap bytes held.
  size_t bytes() const;

 private:
  static constexpr uint32_t kNone = 0xFFFFFFFF;
  static constexpr uint8_t kOtherType = 0xFF;

  struct Event {
    uint64_t version = 0;
    int64_t ts_us = 0;
    double value = 0;
    uint32_t user = kNone;      // index into users_; kNone: a tombstone (deleted, or elsewhere)
    uint32_t next = kNone;      // the user's next event
    uint8_t type = kOtherType;  // index into types_
    bool has_value = false;
  };
  struct User {
    uint64_t version = 0;  // of the exposure applied; 0: none
    bool exposed = false;  // an exposure that is not deleted
    bool dirty = false;    // recompute at Settle
    int64_t variant_id = 0;
    int64_t exposed_us = 0;
    uint32_t head = kNone;  // first event
  };
  // What one event type feeds: accumulator slot and how (count or sum of value with default),
  // in the post- or pre-exposure window, or a quantile condition.
  struct Feed {
    enum Kind { kCount, kSum } kind = kCount;
    double missing = 0;  // the value of an event without one (kSum)
    bool pre = false;    // CUPED pre-exposure window instead of the post one
    size_t slot = 0;     // accumulator index, or the quantile condition
    bool quantile = false;
    std::optional<int64_t> window_us;  // post window
  };
  // The sorted values of one (quantile condition, variant), with the changes not merged yet.
  struct Values {
    std::vector<double> sorted, adds, removes;
  };

  uint32_t UserIndex(uint64_t user);
  uint8_t TypeIndex(std::string_view type) const;
  void Link(uint32_t user, uint32_t event);
  void Unlink(uint32_t user, uint32_t event);
  // Takes the user's quantile values out and marks it for Settle (once per Settle).
  void MarkDirty(uint32_t user);
  // Adds one event's contribution to an exposed user (accumulators and quantile values);
  // `removes` takes the values out instead (MarkDirty).
  void Contribute(const User& u, uint32_t user, const Event& e, bool removes);

  ExperimentQuery q_;
  std::vector<std::string> types_;        // distinct event types of the metrics
  std::vector<std::vector<Feed>> feeds_;  // per type index
  size_t slots_ = 0;                      // accumulators per user
  size_t conditions_ = 0;                 // distinct quantile conditions
  std::vector<size_t> metric_slot_;       // first accumulator (or condition) of each metric
  absl::flat_hash_map<uint64_t, uint32_t> user_index_;
  std::vector<User> users_;
  std::vector<double> acc_;  // users_.size() * slots_
  absl::flat_hash_map<uint64_t, uint32_t> event_index_;
  std::vector<Event> events_;
  std::vector<uint32_t> dirty_;
  std::vector<std::map<int64_t, Values>> values_;  // per condition, per variant id
};

}  // namespace splitstream::results
