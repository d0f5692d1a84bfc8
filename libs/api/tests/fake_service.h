// A test double of experiments::Service (our own interface): experiments in a map, and
// Assign answered from a separate "batcher" thread, optionally held back until Release(),
// like the real service's group commit. Counts every call that would store something so
// that tests can check that a rejected request stored nothing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "splitstream/experiments/service.h"

namespace splitstream::api::testing {

class FakeService final : public experiments::Service {
 public:
  FakeService() : thread_([this] { Run(); }) {}
  ~FakeService() override { Shutdown(); }

  Result<experiments::Experiment> Create(experiments::ExperimentSpec spec) override {
    ++writes;
    std::lock_guard<std::mutex> lock(mu_);
    if (spec.variants.size() < 2) {
      return Status::InvalidArgument("need 2..16 variants", "variants");
    }
    if (experiments_.count(spec.key)) return Status::AlreadyExists("taken", "key");
    experiments::Experiment e;
    e.id = ExperimentId(static_cast<int64_t>(experiments_.size() + 1));
    if (spec.name.empty()) spec.name = spec.key;
    if (spec.seed.empty()) spec.seed = spec.key;
    for (size_t i = 0; i < spec.variants.size(); ++i) {
      e.variants.push_back(
          {VariantId(static_cast<int64_t>(i + 1)), spec.variants[i].key, spec.variants[i].weight});
    }
    e.spec = std::move(spec);
    e.created_at_us = 1714564800000000;  // 2024-05-01T12:00:00Z
    experiments_[e.spec.key] = e;
    return e;
  }
  Result<std::vector<experiments::Experiment>> List() override {
    if (throw_on_list) throw std::runtime_error("secret table name in a bug");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<experiments::Experiment> out;
    for (auto& [k, e] : experiments_) out.push_back(e);
    return out;
  }
  Result<experiments::Experiment> Get(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = experiments_.find(key);
    if (it == experiments_.end()) return Status::NotFound("no experiment " + key, "key");
    return it->second;
  }
  Result<experiments::Experiment> Start(const std::string& key) override {
    ++writes;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = experiments_.find(key);
    if (it == experiments_.end()) return Status::NotFound("no experiment " + key, "key");
    if (it->second.status == experiments::ExperimentStatus::kStopped) {
      return Status::FailedPrecondition("stopped");
    }
    it->second.status = experiments::ExperimentStatus::kRunning;
    return it->second;
  }
  Result<experiments::Experiment> Stop(const std::string& key) override {
    ++writes;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = experiments_.find(key);
    if (it == experiments_.end()) return Status::NotFound("no experiment " + key, "key");
    it->second.status = experiments::ExperimentStatus::kStopped;
    return it->second;
  }
  Result<experiments::Experiment> UpdateAllocation(
      const std::string& key, std::optional<double> traffic,
      std::optional<std::vector<double>> weights) override {
    ++writes;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = experiments_.find(key);
    if (it == experiments_.end()) return Status::NotFound("no experiment " + key, "key");
    if (traffic) it->second.spec.traffic = *traffic;
    if (weights) {
      for (size_t i = 0; i < weights->size(); ++i) it->second.variants[i].weight = (*weights)[i];
    }
    return it->second;
  }

  void Assign(experiments::AssignRequest request,
              std::function<void(Result<experiments::Assignment>)> done) override {
    ++assigns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!experiments_.count(request.experiment)) {
        done(Status::NotFound("no experiment " + request.experiment, "experiment"));
        return;
      }
      queue_.push_back({std::move(request), std::move(done)});
    }
    cv_.notify_all();
  }

  Result<std::vector<experiments::Assignment>> UserAssignments(
      const std::string& user_id) override {
    last_user_id = user_id;
    experiments::Assignment a;
    a.experiment = "exp";
    a.user_id = user_id;
    a.in_experiment = true;
    a.variant = "control";
    a.reason = "stored";
    a.stored = true;
    a.assigned_at_us = 1714564800000000;
    return std::vector<experiments::Assignment>{a};
  }

  Result<size_t> TrackEvents(std::vector<experiments::Event> events) override {
    ++writes;
    std::unique_lock<std::mutex> lock(mu_);
    // A slow database: the call waits while events are held.
    ++events_waiting_;
    cv_.wait(lock, [&] { return !hold_events_ || stop_; });
    --events_waiting_;
    size_t n = events.size();
    for (auto& e : events) tracked.push_back(std::move(e));
    return n;
  }

  Status Ready() override { return ready ? Status::Ok() : Status::Unavailable("db down"); }
  experiments::ServiceStats stats() const override { return {3, 7, 1}; }

  void Shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
      hold_ = false;
      hold_events_ = false;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Holds assignments in the queue until Release().
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    cv_.notify_all();
  }
  // Holds TrackEvents calls (each waits in the calling thread) until ReleaseEvents().
  void HoldEvents() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_events_ = true;
  }
  void ReleaseEvents() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_events_ = false;
    }
    cv_.notify_all();
  }
  int EventsWaiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_waiting_;
  }
  size_t Queued() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }

  std::atomic<int> writes{0};
  std::atomic<int> assigns{0};
  std::atomic<bool> ready{true};
  std::atomic<bool> throw_on_list{false};
  std::string last_user_id;
  std::vector<experiments::Event> tracked;  // guarded by mu_ while the server runs

 private:
  struct Pending {
    experiments::AssignRequest request;
    std::function<void(Result<experiments::Assignment>)> done;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || (!hold_ && !queue_.empty()); });
      if (queue_.empty() && stop_) return;
      if (hold_) continue;
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      const experiments::Experiment& e = experiments_[p.request.experiment];
      experiments::Assignment a;
      a.experiment = p.request.experiment;
      a.user_id = p.request.user_id;
      a.in_experiment = true;
      a.variant = e.variants[std::hash<std::string>()(a.user_id) % e.variants.size()].key;
      a.reason = "assigned";
      lock.unlock();
      p.done(a);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, experiments::Experiment> experiments_;
  std::deque<Pending> queue_;
  bool hold_ = false;
  bool hold_events_ = false;
  int events_waiting_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace splitstream::api::testing
