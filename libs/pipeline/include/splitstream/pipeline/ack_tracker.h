// AckTracker: which PostgreSQL position the CDC process may confirm.
//
// Every record handed downstream (a Kafka message, a row in a ClickHouse batch) gets a
// sequence number from Assign(), in stream order. Commit(lsn) marks a transaction boundary:
// every record assigned so far belongs to transactions that commit at or before `lsn`.
// Downstream acknowledgements arrive in any order (Kafka delivery reports do); Confirmable()
// is the highest boundary whose records, and all earlier ones, are acknowledged: the
// contiguous prefix. A failed record stops the prefix for good: nothing after it is ever
// confirmable, so a restart replays it (duplicates allowed, loss never).
//
// Thread safety: all methods may be called from any thread (delivery reports arrive on the
// producer's poller thread); a mutex guards the state, except that Assign only bumps an atomic
// counter (it runs once per record on the CDC thread, and must not wait for the poller).
// Commit and Restart must be called by the thread that assigns, so that they see every
// number it assigned.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include "splitstream/core/lsn.h"
#include "splitstream/core/status.h"

namespace splitstream::pipeline {

class AckTracker {
 public:
  // A new sequence number for one downstream record.
  uint64_t Assign();
  // The record `seq` is durable downstream. Unknown or repeated numbers are ignored.
  void Ack(uint64_t seq);
  // The record `seq` could not be delivered; the first failure is kept.
  void Fail(uint64_t seq, Status why);
  // A transaction (or a position with no pending transaction, such as a heartbeat message)
  // ends at `lsn`: confirmable once everything assigned so far is acknowledged.
  void Commit(Lsn lsn);
  // The position of a keepalive while no transaction is open: confirmable at once when
  // nothing is in flight and no boundary is waiting (PostgreSQL may then recycle WAL of an
  // idle database); otherwise ignored.
  void Idle(Lsn lsn);

  // Forgets every record in flight and the failure, keeping the confirmed position: the CDC
  // process calls it before replaying the stream from that position after a failed delivery.
  // Acknowledgements of forgotten records that arrive later are ignored.
  void Restart();

  Lsn Confirmable() const;
  // Records assigned and not yet acknowledged (failed ones count as in flight).
  uint64_t InFlight() const;
  std::optional<Status> failure() const;

 private:
  mutable std::mutex mu_;
  std::atomic<uint64_t> next_{0};  // next sequence number to assign
  uint64_t prefix_ = 0;            // GUARDED_BY(mu_): every seq < prefix_ is acknowledged
  // GUARDED_BY(mu_): done_[i] says whether seq prefix_ + i is acknowledged; only as long as
  // the highest out-of-order acknowledgement needs (in-order acks never touch it).
  std::deque<bool> done_;
  uint64_t acked_count_ = 0;  // GUARDED_BY(mu_): acknowledged seqs >= prefix_
  struct Boundary {
    uint64_t end_seq;  // records < end_seq belong to this or earlier transactions
    Lsn lsn;
  };
  std::deque<Boundary> boundaries_;  // GUARDED_BY(mu_)
  Lsn confirmable_;                  // GUARDED_BY(mu_)
  std::optional<Status> failure_;    // GUARDED_BY(mu_)
};

}  // namespace splitstream::pipeline
