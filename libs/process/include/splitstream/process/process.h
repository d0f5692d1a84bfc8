// Child processes for `splitstream up`, which runs serve, cdc and sink as children of one
// command: starting a child, collecting its exit, stopping several in order, telling when a
// server accepts connections, and the two values `up` needs from the system (a random token,
// its own executable). Not thread-safe: one supervising thread calls these.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/core/result.h"

namespace splitstream::process {

struct Child {
  std::string role;  // names the child in logs and errors
  pid_t pid = -1;
  bool running = true;
  int exit_code = 0;  // its exit status, or 128 + the signal that killed it
};

// A `waitpid` status as a shell reports it: the exit status, or 128 + the signal.
int ExitCode(int wait_status);

// Starts `exe args...` with this process's environment, the variables of `env` replacing any
// of the same name, and no blocked signals, in a process group of its own: a Ctrl-C at the
// terminal reaches the supervisor alone, which stops its children in order (it would
// otherwise reach them all at once). `args` is not empty (its first element names the child
// in errors). Errors: Internal, naming `exe`, when the program cannot be started.
Result<pid_t> Spawn(const std::string& exe, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env);

// Collects every running child that has exited (its `running` and `exit_code`), without
// waiting.
void Reap(std::vector<Child>& children);

// Stops the children in order: SIGTERM, then up to `grace` for the child to finish, then
// SIGKILL; each is reaped. `first` is the signal that started the stop (0: a child exited on
// its own); the same signal again (a second Ctrl-C) kills every child still running at once,
// as it would a single command. Another SIGTERM or SIGINT is only logged: a script's trap
// often follows the terminal's SIGINT with a SIGTERM of its own. The caller has blocked
// `signals` (which holds SIGTERM and SIGINT) in this thread. `name` prefixes the log lines.
void StopAll(std::string_view name, std::vector<Child>& children, int first,
             const sigset_t& signals, std::chrono::seconds grace);

// True when something accepts a TCP connection at host:port. A wildcard host ("", "0.0.0.0",
// "::") is tried on loopback.
bool Accepts(const std::string& host, uint16_t port);

// 32 lowercase hex digits from the kernel's random source.
Result<std::string> RandomToken();

// The absolute path of this process's executable.
Result<std::string> SelfExecutable();

}  // namespace splitstream::process
