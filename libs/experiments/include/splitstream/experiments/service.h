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

#include "splitstream/core/clock.h"
#include "splitstream/core/result.h"
#include "splitstream/experiments/model.h"

namespace splitstream::pg {
class Pool;
}

namespace splitstream::experiments {

struct ServiceOptions {
  // For the LISTEN connection that keeps the cache fresh when other servers change
  // experiments. Empty: no listener (the cache then follows only this server's writes).
  std::string conninfo;
  int max_assign_batch = 512;  // group commit: most assignments in one statement
  // Batcher threads; each holds a pooled connection only while writing a batch. One (the
  // default) keeps one batch statement in flight and lets the next batch collect meanwhile:
  // fewer, larger batches (30 rows against 17 with two threads through HTTP, and less
  // PostgreSQL CPU per assignment: libs/experiments/README.md).
  int assign_threads = 1;
  // Wall clock for event timestamps and their accepted window; nullptr: Clock::System().
  Clock* clock = nullptr;
  // Stored assignments kept in memory (they never change) so that returning users are
  // answered without a query; 0 disables. About 50 bytes an entry plus its user id.
  size_t stored_cache_entries = 1 << 20;
};

struct ServiceStats {
  uint64_t assign_batches = 0;
  uint64_t assign_rows = 0;
  uint64_t cache_reloads = 0;
  uint64_t stored_cache_hits = 0;  // assignments answered from memory
};

class Service {
 public:
  virtual ~Service() = default;

  // Ensures the event partitions (1 month back, 3 ahead), loads the cache and starts the
  // LISTEN thread and the assignment batcher. The schema must be migrated (Migrate()).
  // `pool` is borrowed and must outlive the service; give it at least assign_threads + 2
  // connections. The LISTEN thread reconnects with backoff (100 ms doubling to 5 s) and
  // reloads the whole cache after every (re)connection, so a notification missed while
  // disconnected cannot leave the cache stale; it also re-ensures partitions hourly.
  static Result<std::unique_ptr<Service>> Create(pg::Pool* pool, ServiceOptions options);

  // AlreadyExists (field "key") for a taken key, Conflict (field "layer_start") when the
  // layer share overlaps the share of a draft or running experiment in the same layer
  // (stopped experiments free their share), InvalidArgument (with field) for bad specs.
  // The overlap check runs under a transaction-level advisory lock on the layer name, so
  // concurrent creates cannot both take overlapping shares.
  virtual Result<Experiment> Create(ExperimentSpec spec) = 0;
  // Every experiment, ordered by id, from the cache.
  virtual Result<std::vector<Experiment>> List() = 0;
  // NotFound (field "key"). Served from the cache; a miss checks PostgreSQL once (another
  // server may have just created it) and reloads.
  virtual Result<Experiment> Get(const std::string& key) = 0;
  // draft -> running; running -> running is a no-op; stopped -> running is
  // FailedPrecondition.
  virtual Result<Experiment> Start(const std::string& key) = 0;
  // running|draft -> stopped; stopped -> stopped is a no-op.
  virtual Result<Experiment> Stop(const std::string& key) = 0;
  // Changes the traffic fraction and/or the variant weights (same variant keys, same
  // order). Stored assignments never move; lowering traffic never moves a user in.
  // InvalidArgument "traffic", "variants" (count differs) or "variants[i].weight", named as
  // the API's PATCH body names them; NotFound "key";
  // FailedPrecondition for a stopped experiment. Both absent: returns the experiment as is.
  virtual Result<Experiment> UpdateAllocation(const std::string& key, std::optional<double> traffic,
                                              std::optional<std::vector<double>> weights) = 0;

  // Assigns asynchronously. `done` runs on a service thread after the assignment is durable
  // (or immediately, on the calling thread, for errors and not-in-experiment answers).
  // NotFound (field "experiment") for an unknown experiment, InvalidArgument (field
  // "user_id") for an empty, over-long (kMaxUserIdLength) or non-UTF-8 user id, Unavailable
  // after Shutdown or when PostgreSQL fails. Every user of a non-running (draft or stopped)
  // experiment gets in_experiment=false, reason "not_running", stored or not (as GrowthBook
  // does for stopped experiments). A user already stored gets the stored variant (reason
  // "stored") even when the allocation changed since; other users outside the allocation
  // get "not_in_traffic" / "not_in_layer" and are not stored. The definition comes from the
  // cache: no read query.
  virtual void Assign(AssignRequest request, std::function<void(Result<Assignment>)> done) = 0;

  // Stored assignments of the user in every running experiment.
  virtual Result<std::vector<Assignment>> UserAssignments(const std::string& user_id) = 0;

  // Validates and stores the whole batch in one statement, or nothing. The variant of
  // each event comes from the stored assignment; an event of a user without one is an
  // InvalidArgument naming "events[i].user_id" (the first such i). Other errors name
  // "events" (empty or over kMaxEventsPerBatch), "events[i].experiment" (NotFound),
  // "events[i].type", "events[i].value" (not finite), "events[i].properties",
  // "events[i].event_id" (not a UUID) or "events[i].ts" (outside the accepted window: from
  // 00:00 UTC on the first day of the previous month to 24 h after now, or no partition).
  // An event whose (event_id, ts) is already stored is skipped and not counted. Returns the
  // number of rows stored.
  virtual Result<size_t> TrackEvents(std::vector<Event> events) = 0;

  // OK when PostgreSQL answers.
  virtual Status Ready() = 0;

  virtual ServiceStats stats() const = 0;

  // Stops the batcher (pending assignments finish) and the LISTEN thread. Idempotent; the
  // destructor calls it.
  virtual void Shutdown() = 0;
};

}  // namespace splitstream::experiments
