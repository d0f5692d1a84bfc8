// Group commit of sticky assignments. Assign calls enqueue; a few batcher threads each take
// up to `max_batch` queued requests and write them in ONE statement on a pooled connection,
// so N concurrent assignments cost one round trip and one fsync instead of N (fsync is
// ~180 µs here, see field-notes.md). While one batch is in flight the next accumulates.
// A written batch goes to the answering thread, which runs its callbacks (answers are
// rendered there) and fills the cache of stored assignments, while the batcher writes the
// next batch at once.
//
// Thread safety: Submit may be called from any thread; callbacks run on the answering
// thread, in the order the batches were written, after their statement committed (the
// assignment is durable).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "definitions.h"
#include "splitstream/core/result.h"
#include "splitstream/experiments/model.h"
#include "stored_cache.h"

namespace splitstream::pg {
class Pool;
}

namespace splitstream::experiments::internal {

struct PendingAssign {
  std::shared_ptr<const Definition> def;
  std::string user_id;
  // The variant to store when no assignment exists yet; std::nullopt for a user outside
  // the current allocation who may still have a stored one (lookup only).
  std::optional<int> variant;
  std::string reason_if_absent;  // lookup only: the not-in-experiment reason
  std::function<void(Result<Assignment>)> done;
};

// What a batch statement found for one request.
struct AssignOutcome {
  std::optional<int64_t> variant_id;  // none: no stored assignment (lookups only)
  int64_t assigned_at_us = 0;
  bool inserted = false;  // stored by this batch
};

class AssignBatcher {
 public:
  // `stored` (may be null) receives every assignment read back from a committed batch.
  AssignBatcher(pg::Pool* pool, int max_batch, int threads, StoredAssignmentCache* stored);
  ~AssignBatcher();  // Shutdown()

  // False (and `p` untouched) once Shutdown has begun.
  bool Submit(PendingAssign& p);

  // Stops accepting, writes and answers everything queued, joins the threads. Idempotent.
  void Shutdown();

  uint64_t batches() const { return batches_.load(); }
  uint64_t rows() const { return rows_.load(); }

 private:
  struct Written {
    std::vector<PendingAssign> batch;
    Status status;                        // of the statement
    std::vector<AssignOutcome> outcomes;  // one per request when status is ok
  };
  void Run();
  void Process(std::vector<PendingAssign>& batch);
  void Answer();  // the answering thread
  void AnswerBatch(Written& written);

  pg::Pool* pool_;
  const size_t max_batch_;
  StoredAssignmentCache* stored_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PendingAssign> queue_;  // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::vector<std::thread> threads_;

  std::mutex written_mu_;
  std::condition_variable written_cv_;
  std::deque<Written> written_;  // guarded by written_mu_
  bool writers_done_ = false;    // guarded by written_mu_: no batch will be added
  std::thread answerer_;

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> rows_{0};
};

}  // namespace splitstream::experiments::internal
