// Clock: the one way code reads time, so that retries, batching and timeouts can be tested
// with a FakeClock (after leveldb's Env). SystemClock is thread-safe; FakeClock is
// thread-safe too and only moves when told.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace splitstream {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time for durations.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall-clock time in microseconds since the Unix epoch.
  virtual int64_t WallMicros() const = 0;
  // The process-wide real clock.
  static Clock& System();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_micros = 0) : micros_(wall_micros) {}
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::microseconds(micros_.load()));
  }
  int64_t WallMicros() const override { return micros_.load(); }
  void Advance(std::chrono::microseconds d) { micros_ += d.count(); }

 private:
  std::atomic<int64_t> micros_;
};

}  // namespace splitstream
