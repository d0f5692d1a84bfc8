#include "splitstream/process/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>

extern char** environ;

namespace splitstream::process {
namespace {

// Reaps `c` if it has exited, without waiting; true when it has.
bool Collect(Child& c) {
  int status = 0;
  if (waitpid(c.pid, &status, WNOHANG) != c.pid) return false;
  c.running = false;
  c.exit_code = ExitCode(status);
  return true;
}

// SIGKILL, and the child is reaped.
void Kill(Child& c) {
  kill(c.pid, SIGKILL);
  int status = 0;
  waitpid(c.pid, &status, 0);
  c.running = false;
  c.exit_code = ExitCode(status);
}

}  // namespace

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

Result<pid_t> Spawn(const std::string& exe, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env) {
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string_view::npos && env.contains(std::string(entry.substr(0, eq)))) continue;
    vars.emplace_back(entry);
  }
  for (const auto& [name, value] : env) vars.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_storage = {exe};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, exe.c_str(), nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Status::Internal(fmt::format("cannot start {} {}: {}", exe, args.front(), strerror(rc)));
  }
  return pid;
}

void Reap(std::vector<Child>& children) {
  for (Child& c : children) {
    if (c.running) Collect(c);
  }
}

void StopAll(std::string_view name, std::vector<Child>& children, int first,
             const sigset_t& signals, std::chrono::seconds grace) {
  for (Child& c : children) {
    if (!c.running) continue;
    spdlog::info("{}: stopping {} (pid {})", name, c.role, c.pid);
    kill(c.pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Collect(c)) break;
      const timespec poll{0, 50 * 1000 * 1000};
      const int sig = sigtimedwait(&signals, nullptr, &poll);
      if (sig == SIGINT || sig == SIGTERM) {
        if (sig == first) {
          std::string roles;
          for (const Child& r : children) {
            if (r.running) roles += (roles.empty() ? "" : ", ") + r.role;
          }
          spdlog::warn(
              "{}: {} again: killing {} now (what they had not confirmed is read again on the "
              "next start)",
              name, strsignal(sig), roles);
          for (Child& r : children) {
            if (r.running) Kill(r);
          }
          return;
        }
        spdlog::info("{}: {} received while stopping; already stopping ({} again stops at once)",
                     name, strsignal(sig), first != 0 ? strsignal(first) : "the same signal");
        if (first == 0) first = sig;
      }
    }
    if (!c.running) continue;
    spdlog::error("{}: {} (pid {}) did not stop within {} s; killing it", name, c.role, c.pid,
                  grace.count());
    Kill(c);
  }
}

bool Accepts(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  const std::string target = host.empty() || host == "0.0.0.0" ? "127.0.0.1"
                             : host == "::"                    ? "::1"
                                                               : host;
  addrinfo* found = nullptr;
  if (getaddrinfo(target.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return false;
  bool ok = false;
  for (addrinfo* a = found; a != nullptr && !ok; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
  }
  freeaddrinfo(found);
  return ok;
}

Result<std::string> RandomToken() {
  unsigned char bytes[16];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Internal(fmt::format("open /dev/urandom: {}", strerror(errno)));
  ssize_t n = read(fd, bytes, sizeof bytes);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof bytes)) return Status::Internal("read /dev/urandom");
  std::string token;
  for (unsigned char b : bytes) token += fmt::format("{:02x}", b);
  return token;
}

Result<std::string> SelfExecutable() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return Status::Internal(fmt::format("readlink /proc/self/exe: {}", strerror(errno)));
  return std::string(path, static_cast<size_t>(n));
}

}  // namespace splitstream::process
