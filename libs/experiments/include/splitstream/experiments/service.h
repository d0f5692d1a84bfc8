// The experiment service: experiments in PostgreSQL, an in-memory cache of definitions kept
// fresh by LISTEN/NOTIFY, sticky assignment with group commit, and event ingestion.
//
// Thread safety: every method may be called from any thread concurrently.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/experiments/model.h"

namespace splitstream::pg {
class Pool;
}

namespace splitstream::experiments {

struct ServiceOptions {
  std::string conninfo;   // for the LISTEN connection
  int max_assign_batch = 512;  // group commit: most assignments in one statement
};

struct ServiceStats {
  uint64_t assign_batches = 0;
  uint64_t assign_rows = 0;
  uint64_t cache_reloads = 0;
};

class Service {
 public:
  virtual ~Service() = default;

  // Loads the cache and starts the LISTEN thread and the assignment batcher.
  static Result<std::unique_ptr<Service>> Create(pg::Pool* pool, ServiceOptions options);

  // AlreadyExists for a taken key, Conflict when the layer share overlaps another
  // experiment's share in the same layer, InvalidArgument (with field) for bad specs.
  virtual Result<Experiment> Create(ExperimentSpec spec) = 0;
  virtual Result<std::vector<Experiment>> List() = 0;
  virtual Result<Experiment> Get(const std::string& key) = 0;
  // draft -> running; running -> running is a no-op; stopped -> running is
  // FailedPrecondition.
  virtual Result<Experiment> Start(const std::string& key) = 0;
  // running|draft -> stopped.
  virtual Result<Experiment> Stop(const std::string& key) = 0;
  // Changes the traffic fraction and/or the variant weights (same variant keys, same
  // order). Stored assignments never move; lowering traffic never moves a user in.
  virtual Result<Experiment> UpdateAllocation(const std::string& key,
                                              std::optional<double> traffic,
                                              std::optional<std::vector<double>> weights) = 0;

  // Assigns asynchronously. `done` runs on a service thread after the assignment is durable
  // (or immediately for errors and not-in-experiment answers). NotFound for an unknown
  // experiment. Users of a non-running experiment get in_experiment=false, reason
  // "not_running", unless already stored.
  virtual void Assign(AssignRequest request, std::function<void(Result<Assignment>)> done) = 0;

  // Stored assignments of the user in every running experiment.
  virtual Result<std::vector<Assignment>> UserAssignments(const std::string& user_id) = 0;

  // Validates and stores the whole batch in one transaction, or nothing. The variant of
  // each event comes from the stored assignment; an event of a user without one is an
  // InvalidArgument naming "events[i].user_id". Returns the number of rows stored.
  virtual Result<size_t> TrackEvents(std::vector<Event> events) = 0;

  // OK when PostgreSQL answers.
  virtual Status Ready() = 0;

  virtual ServiceStats stats() const = 0;

  // Stops the batcher (pending assignments finish) and the LISTEN thread.
  virtual void Shutdown() = 0;
};

}  // namespace splitstream::experiments
