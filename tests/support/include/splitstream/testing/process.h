// Process: a child process for tests that drive the real binary (`splitstream cdc`, ...):
// started with extra environment variables, its output appended to a log file, stopped by
// the PID it was started with (never by name).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "splitstream/core/result.h"

namespace splitstream::testing {

class Process {
 public:
  // Starts argv[0] with `env` added to (and overriding) this process's environment; stdout
  // and stderr go to `log_path` (appended).
  static Result<Process> Start(const std::vector<std::string>& argv,
                               const std::map<std::string, std::string>& env,
                               const std::string& log_path);
  Process(Process&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  Process& operator=(Process&& other) noexcept;
  // Kills (SIGKILL) and reaps a child still running.
  ~Process();

  pid_t pid() const { return pid_; }
  void Signal(int sig) const;
  // The exit code (128 + signal number when killed), or nullopt when still running after
  // `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// The whole content of a file ("" when missing).
std::string ReadFile(const std::string& path);

// Runs a shell command, returning its exit code.
int RunCommand(const std::string& command);

}  // namespace splitstream::testing
