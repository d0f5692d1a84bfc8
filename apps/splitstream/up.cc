// `splitstream up`: a single-machine deployment under one command. Applies the migrations
// (PostgreSQL and ClickHouse), then runs `serve`, `cdc` and, when Kafka brokers are
// configured, `sink` as child processes of this same binary with this process's resolved
// configuration, says "running" once they accept connections, and supervises them:
// SIGTERM/SIGINT stops them in order (serve, cdc, sink), each gracefully, and the same signal
// again kills them at once; a child that exits on its own stops the others and `up` fails
// naming it.
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"

extern char** environ;

namespace splitstream::app {
namespace {

struct Child {
  std::string role;
  pid_t pid = -1;
  bool running = true;
  int exit_code = 0;  // 128 + signal when killed
};

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// 32 hex digits from the kernel's random source.
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

// Starts `exe args...` with this process's environment, the variables of `env` replacing
// any of the same name, and no blocked signals, in a process group of its own: a Ctrl-C at
// the terminal reaches `up` alone, which stops the children in order (it would otherwise
// reach them all at once).
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

// True when something accepts a TCP connection at host:port (a wildcard host: on loopback).
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

// The role of the first endpoint (role, "host:port") that does not accept connections yet;
// "" when all do. An empty address or port 0 (chosen by the child) is not waited for.
std::string FirstNotAccepting(const std::vector<std::pair<std::string, std::string>>& endpoints) {
  for (const auto& [role, addr] : endpoints) {
    auto host_port = config::SplitHostPort(addr, role);
    if (!host_port.ok() || host_port->second == 0) continue;
    if (!Accepts(host_port->first, host_port->second)) return role;
  }
  return "";
}

// Collects every child that has exited, without waiting.
void Reap(std::vector<Child>& children) {
  for (Child& c : children) {
    if (!c.running) continue;
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.running = false;
      c.exit_code = ExitCode(status);
    }
  }
}

// SIGKILL, and the child is reaped.
void Kill(Child& c) {
  kill(c.pid, SIGKILL);
  int status = 0;
  waitpid(c.pid, &status, 0);
  c.running = false;
  c.exit_code = ExitCode(status);
}

// Stops the children in order: SIGTERM, then up to `grace` for the child to finish (each
// command's own stop ends within 25 s), then SIGKILL. `first` is the signal that started the
// stop (0: a child exited on its own); the same signal again (a second Ctrl-C) kills every
// child still running at once, as it would a single command. Another signal is only logged:
// a script's trap often follows the terminal's SIGINT with a SIGTERM of its own.
// `signals` (SIGTERM, SIGINT, SIGCHLD) are blocked in this thread.
void StopAll(std::vector<Child>& children, int first, const sigset_t& signals,
             std::chrono::seconds grace) {
  for (Child& c : children) {
    if (!c.running) continue;
    spdlog::info("up: stopping {} (pid {})", c.role, c.pid);
    kill(c.pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (c.running && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.running = false;
        c.exit_code = ExitCode(status);
        break;
      }
      const timespec poll{0, 50 * 1000 * 1000};
      const int sig = sigtimedwait(&signals, nullptr, &poll);
      if (sig == SIGINT || sig == SIGTERM) {
        if (sig == first) {
          std::string roles;
          for (const Child& r : children) {
            if (r.running) roles += (roles.empty() ? "" : ", ") + r.role;
          }
          spdlog::warn(
              "up: {} again: killing {} now (what they had not confirmed is read again on the "
              "next start)",
              strsignal(sig), roles);
          for (Child& r : children) {
            if (r.running) Kill(r);
          }
          return;
        }
        spdlog::info("up: {} received while stopping; already stopping ({} again stops at once)",
                     strsignal(sig), first != 0 ? strsignal(first) : "the same signal");
        if (first == 0) first = sig;
      }
    }
    if (!c.running) continue;
    spdlog::error("up: {} (pid {}) did not stop within {} s; killing it", c.role, c.pid,
                  grace.count());
    Kill(c);
  }
}

}  // namespace

Status RunUp(const config::Config& base, const UpOptions& opts) {
  config::Config cfg = base;
  bool generated_tokens = false;
  if (cfg.admin_token.empty()) {
    SPLITSTREAM_ASSIGN_OR_RETURN(cfg.admin_token, RandomToken());
    generated_tokens = true;
  }
  if (cfg.client_token.empty()) {
    SPLITSTREAM_ASSIGN_OR_RETURN(cfg.client_token, RandomToken());
    generated_tokens = true;
  }
  SPLITSTREAM_RETURN_IF_ERROR(RunMigrate(cfg, MigrateOptions{}).WithContext("up: migrate"));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::string exe, SelfExecutable());

  // Block the signals this process waits for before any child exists, so none is missed.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const bool kafka_mode = !cfg.kafka_brokers.empty();
  std::vector<std::pair<std::string, std::vector<std::string>>> roles = {
      {"serve", {"serve"}},
      {"cdc", {"cdc", "--slot", opts.slot, "--metrics-addr", opts.cdc_metrics_addr}},
  };
  if (kafka_mode) {
    std::vector<std::string> sink = {"sink", "--metrics-addr", opts.sink_metrics_addr};
    if (!opts.group.empty()) {
      sink.push_back("--group");
      sink.push_back(opts.group);
    }
    roles.emplace_back("sink", std::move(sink));
  }
  const auto env = cfg.ToEnvironment();
  std::vector<Child> children;
  Status failure;
  int stop_signal = 0;  // the signal that stopped `up`; 0 when a child exited on its own
  for (const auto& [role, args] : roles) {
    auto pid = Spawn(exe, args, env);
    if (!pid.ok()) {
      failure = pid.status();
      break;
    }
    children.push_back(Child{role, *pid});
  }

  if (failure.ok()) {
    std::printf("splitstream up: API and dashboard on http://%s/ (serve, pid %d)\n",
                cfg.http_addr.c_str(), children[0].pid);
    std::printf("splitstream up: cdc (pid %d) streams PostgreSQL to %s; /metrics on %s\n",
                children[1].pid,
                kafka_mode ? ("Kafka " + cfg.kafka_brokers).c_str()
                           : ("ClickHouse " + cfg.clickhouse_url + " (direct mode)").c_str(),
                opts.cdc_metrics_addr.c_str());
    if (kafka_mode) {
      std::printf("splitstream up: sink (pid %d) writes Kafka to ClickHouse %s; /metrics on %s\n",
                  children[2].pid, cfg.clickhouse_url.c_str(), opts.sink_metrics_addr.c_str());
    }
    if (generated_tokens) {
      // Printed once, on stdout for the operator; the children get them by environment and
      // never log them.
      std::printf("splitstream up: admin token  %s\n", cfg.admin_token.c_str());
      std::printf("splitstream up: client token %s\n", cfg.client_token.c_str());
      // The fragment (after '#') stays in the browser; the page removes it from the address.
      std::printf("splitstream up: dashboard    http://%s/#token=%s\n", cfg.http_addr.c_str(),
                  cfg.admin_token.c_str());
    }
    std::fflush(stdout);

    // "running" only once every child accepts connections on its address (serve's API, the
    // metrics of cdc and sink), so that a script may use the API the moment it reads it.
    std::vector<std::pair<std::string, std::string>> endpoints = {{"serve", cfg.http_addr},
                                                                  {"cdc", opts.cdc_metrics_addr}};
    if (kafka_mode) endpoints.emplace_back("sink", opts.sink_metrics_addr);
    const auto waiting_since = std::chrono::steady_clock::now();
    auto next_progress = waiting_since + std::chrono::seconds(10);
    bool announced = false;
    for (;;) {
      int sig = 0;
      if (announced) {
        sigwait(&signals, &sig);
      } else {
        const timespec tick{0, 100 * 1000 * 1000};
        sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig < 0) {  // no signal within the tick: are they all accepting yet?
          std::string waiting = FirstNotAccepting(endpoints);
          if (waiting.empty()) {
            std::printf("splitstream up: running; SIGTERM or Ctrl-C stops everything\n");
            std::fflush(stdout);
            announced = true;
          } else if (std::chrono::steady_clock::now() >= next_progress) {
            spdlog::info("up: waiting {} s so far for {} to accept connections",
                         std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::steady_clock::now() - waiting_since)
                             .count(),
                         waiting);
            next_progress += std::chrono::seconds(10);
          }
          continue;
        }
      }
      if (sig != SIGCHLD) {
        spdlog::info("up: {} received, stopping ({} again stops at once)", strsignal(sig),
                     strsignal(sig));
        stop_signal = sig;
        break;
      }
      Reap(children);
      auto gone =
          std::find_if(children.begin(), children.end(), [](const Child& c) { return !c.running; });
      if (gone != children.end()) {
        failure = Status::Unavailable(
            fmt::format("up: {} (pid {}) exited with code {}; stopped the others (its log is "
                        "above)",
                        gone->role, gone->pid, gone->exit_code));
        spdlog::error("{}", failure.message());
        break;
      }
    }
  }
  // Stop in dependency order: no new writes (serve), then capture drains (cdc), then the sink.
  StopAll(children, stop_signal, signals, std::chrono::seconds(30));
  if (!failure.ok()) return failure;
  std::string bad;
  for (const Child& c : children) {
    if (c.exit_code != 0) bad += fmt::format(" {} exited with code {};", c.role, c.exit_code);
  }
  if (!bad.empty()) return Status::Internal("up: on shutdown" + bad);
  spdlog::info("up: everything stopped");
  return Status::Ok();
}

}  // namespace splitstream::app
