// How the long-running commands (serve, cdc, sink) stop: SIGTERM or SIGINT asks them to finish
// their work and stop; the same signal again (Ctrl-C twice), or the grace period running out
// first, ends the process at once. The other signal meanwhile is only logged: a script whose
// Ctrl-C reached its background children too, and which then stops them with SIGTERM, gets
// the graceful stop it asked for. Ending at once loses nothing: what a command had not confirmed
// (Kafka offsets, the PostgreSQL LSN) is read again by its next run, as after a crash.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace splitstream::process {

// How long after a command's own stop budget (e.g. the sink's shutdown timeout) the process
// is ended: the grace passed to StopSignals is the budget plus this. It covers what the budget
// cannot: the wait already running when the signal came (e.g. the sink's commit, at most 5 s)
// and what does not end by itself. With the default budgets (15 s) a command ends at most 25 s
// after SIGTERM, within Kubernetes' default grace period of 30 s.
inline constexpr std::chrono::milliseconds kStopSlack{10000};

class StopSignals {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread (threads started afterwards inherit that)
  // and starts the thread that waits for them. Create it before any other thread. `name`
  // prefixes the log lines; `grace` is counted from the first signal.
  StopSignals(std::string name, std::chrono::milliseconds grace);
  ~StopSignals();  // Release()
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Set by the first signal.
  const std::atomic<bool>& stop() const { return stop_; }
  // Blocks until the first signal.
  void Wait();
  // The command has ended (stopped or failed): no forced exit from now on. Idempotent.
  void Release();

 private:
  void Watch();

  const std::string name_;
  const std::chrono::milliseconds grace_;
  sigset_t signals_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> released_{false};
  std::mutex mu_;
  std::condition_variable stopped_;
  std::thread watcher_;
};

}  // namespace splitstream::process
