#include "splitstream/pipeline/ack_tracker.h"

#include <algorithm>

namespace splitstream::pipeline {

uint64_t AckTracker::Assign() {
  std::lock_guard<std::mutex> lock(mu_);
  done_.push_back(false);
  return next_++;
}

void AckTracker::Ack(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq < prefix_ || seq >= next_) return;
  bool& slot = done_[seq - prefix_];
  if (slot) return;
  slot = true;
  ++acked_count_;
  if (failure_) return;  // the prefix stops at the first failure
  while (!done_.empty() && done_.front()) {
    done_.pop_front();
    ++prefix_;
    --acked_count_;
  }
  while (!boundaries_.empty() && boundaries_.front().end_seq <= prefix_) {
    confirmable_ = std::max(confirmable_, boundaries_.front().lsn);
    boundaries_.pop_front();
  }
}

void AckTracker::Fail(uint64_t seq, Status why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq < prefix_ || seq >= next_) return;
  if (!failure_) failure_ = std::move(why);
}

void AckTracker::Commit(Lsn lsn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (boundaries_.empty() && prefix_ == next_ && !failure_) {
    confirmable_ = std::max(confirmable_, lsn);
    return;
  }
  boundaries_.push_back(Boundary{next_, lsn});
}

void AckTracker::Idle(Lsn lsn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (boundaries_.empty() && prefix_ == next_ && !failure_) {
    confirmable_ = std::max(confirmable_, lsn);
  }
}

void AckTracker::Restart() {
  std::lock_guard<std::mutex> lock(mu_);
  prefix_ = next_;
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
  return next_ - prefix_ - acked_count_;
}

std::optional<Status> AckTracker::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

}  // namespace splitstream::pipeline
