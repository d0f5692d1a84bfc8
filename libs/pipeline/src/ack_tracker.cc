#include "splitstream/pipeline/ack_tracker.h"

#include <algorithm>

namespace splitstream::pipeline {

uint64_t AckTracker::Assign() { return next_.fetch_add(1, std::memory_order_acq_rel); }

void AckTracker::Ack(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq < prefix_ || seq >= next_.load(std::memory_order_acquire)) return;
  if (seq == prefix_ && done_.empty() && !failure_) {
    ++prefix_;  // the usual case: acknowledgements in order
  } else {
    const uint64_t index = seq - prefix_;
    if (index >= done_.size()) done_.resize(index + 1, false);
    if (done_[index]) return;
    done_[index] = true;
    ++acked_count_;
    if (failure_) return;  // the prefix stops at the first failure
    while (!done_.empty() && done_.front()) {
      done_.pop_front();
      ++prefix_;
      --acked_count_;
    }
  }
  while (!boundaries_.empty() && boundaries_.front().end_seq <= prefix_) {
    confirmable_ = std::max(confirmable_, boundaries_.front().lsn);
    boundaries_.pop_front();
  }
}

void AckTracker::Fail(uint64_t seq, Status why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq < prefix_ || seq >= next_.load(std::memory_order_acquire)) return;
  if (!failure_) failure_ = std::move(why);
}

void AckTracker::Commit(Lsn lsn) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t next = next_.load(std::memory_order_acquire);
  if (boundaries_.empty() && prefix_ == next && !failure_) {
    confirmable_ = std::max(confirmable_, lsn);
    return;
  }
  boundaries_.push_back(Boundary{next, lsn});
}

void AckTracker::Idle(Lsn lsn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (boundaries_.empty() && prefix_ == next_.load(std::memory_order_acquire) && !failure_) {
    confirmable_ = std::max(confirmable_, lsn);
  }
}

void AckTracker::Restart() {
  std::lock_guard<std::mutex> lock(mu_);
  prefix_ = next_.load(std::memory_order_acquire);
  done_.clear();
  acked_count_ = 0;
  boundaries_.clear();
  failure_.reset();
}

Lsn AckTracker::Confirmable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return confirmable_;
}

uint64_t AckTracker::InFlight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_.load(std::memory_order_acquire) - prefix_ - acked_count_;
}

std::optional<Status> AckTracker::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

}  // namespace splitstream::pipeline
