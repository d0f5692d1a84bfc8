#include "splitstream/process/stop_signals.h"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace splitstream::process {

StopSignals::StopSignals(std::string name, std::chrono::milliseconds grace)
    : name_(std::move(name)), grace_(grace) {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  watcher_ = std::thread([this] { Watch(); });
}

StopSignals::~StopSignals() { Release(); }

void StopSignals::Wait() {
  std::unique_lock lock(mu_);
  stopped_.wait(lock, [this] { return stop_.load(); });
}

void StopSignals::Release() {
  if (released_.exchange(true)) return;
  // Wakes the watcher, which sees released_ and ends (a signal that arrives meanwhile is
  // taken for this one).
  pthread_kill(watcher_.native_handle(), SIGTERM);
  watcher_.join();
}

void StopSignals::Watch() {
  int sig = 0;
  sigwait(&signals_, &sig);
  if (released_.load()) return;
  spdlog::info("{}: {} received, stopping (at most {} s; the same signal again ends it now)", name_,
               strsignal(sig), std::chrono::ceil<std::chrono::seconds>(grace_).count());
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  stopped_.notify_all();

  const auto deadline = std::chrono::steady_clock::now() + grace_;
  std::string why;
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      why = fmt::format("still stopping after {} ms", grace_.count());
      break;
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec wait{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    siginfo_t info;
    const int got = sigtimedwait(&signals_, &info, &wait);
    if (released_.load()) return;
    if (got == sig) {
      why = fmt::format("{} received again", strsignal(got));
      break;
    }
    if (got > 0) {
      spdlog::info("{}: {} received while stopping (send {} again to end now)", name_,
                   strsignal(got), sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    // EAGAIN: the deadline; EINTR: look again.
  }
  spdlog::error("{}: {}: exiting now; what was not confirmed yet is read again by the next run",
                name_, why);
  spdlog::default_logger()->flush();
  _exit(1);
}

}  // namespace splitstream::process
