// The in-memory cache of experiment definitions: an immutable snapshot of every experiment
// with its precomputed Allocation, loaded from PostgreSQL in one consistent read. A
// snapshot is shared (shared_ptr<const>) and never mutated, so readers need no lock beyond
// copying the pointer.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "splitstream/assignment/assignment.h"
#include "splitstream/core/result.h"
#include "splitstream/experiments/model.h"

namespace splitstream::pg {
class Connection;
}

namespace splitstream::experiments::internal {

struct Definition {
  Definition(Experiment e, int allocation_version_in);

  Experiment experiment;
  // Bumped by every UpdateAllocation; 1 means the allocation never changed, so a user
  // outside it cannot have a stored assignment.
  int allocation_version;
  assignment::Allocation allocation;

  // Index into experiment.variants of a variant id, or -1.
  int VariantIndex(VariantId id) const;
};

struct Snapshot {
  std::unordered_map<std::string, std::shared_ptr<const Definition>> by_key;
  std::unordered_map<int64_t, std::shared_ptr<const Definition>> by_id;
  std::vector<std::shared_ptr<const Definition>> ordered;  // by id

  std::shared_ptr<const Definition> Find(const std::string& key) const;
};

// Reads every experiment, variant and metric in one REPEATABLE READ transaction.
Result<std::shared_ptr<const Snapshot>> LoadSnapshot(pg::Connection& conn);

// The metrics as the JSON array stored in experiments.metrics (read back by LoadSnapshot
// with jsonb_to_recordset).
std::string MetricsToJson(const std::vector<MetricSpec>& metrics);

}  // namespace splitstream::experiments::internal
