// `splitstream up`: a single-machine deployment under one command. Applies the migrations
// (PostgreSQL and ClickHouse), then runs `serve`, `cdc` and, when Kafka brokers are
// configured, `sink` as child processes of this same binary with this process's resolved
// configuration, says "running" once they accept connections, and supervises them:
// SIGTERM/SIGINT stops them in order (serve, cdc, sink), each gracefully, and the same signal
// again kills them at once; a child that exits on its own stops the others and `up` fails
// naming it.
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "splitstream/process/process.h"

namespace splitstream::app {
namespace {

// The role of the first endpoint (role, "host:port") that does not accept connections yet;
// "" when all do. An empty address or port 0 (chosen by the child) is not waited for.
std::string FirstNotAccepting(const std::vector<std::pair<std::string, std::string>>& endpoints) {
  for (const auto& [role, addr] : endpoints) {
    auto host_port = config::SplitHostPort(addr, role);
    if (!host_port.ok() || host_port->second == 0) continue;
    if (!process::Accepts(host_port->first, host_port->second)) return role;
  }
  return "";
}

}  // namespace

Status RunUp(const config::Config& base, const UpOptions& opts) {
  config::Config cfg = base;
  bool generated_tokens = false;
  if (cfg.admin_token.empty()) {
    SPLITSTREAM_ASSIGN_OR_RETURN(cfg.admin_token, process::RandomToken());
    generated_tokens = true;
  }
  if (cfg.client_token.empty()) {
    SPLITSTREAM_ASSIGN_OR_RETURN(cfg.client_token, process::RandomToken());
    generated_tokens = true;
  }
  SPLITSTREAM_RETURN_IF_ERROR(RunMigrate(cfg, MigrateOptions{}).WithContext("up: migrate"));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::string exe, process::SelfExecutable());

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
  std::vector<process::Child> children;
  Status failure;
  int stop_signal = 0;  // the signal that stopped `up`; 0 when a child exited on its own
  for (const auto& [role, args] : roles) {
    auto pid = process::Spawn(exe, args, env);
    if (!pid.ok()) {
      failure = pid.status();
      break;
    }
    children.push_back(process::Child{role, *pid});
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
      process::Reap(children);
      auto gone = std::find_if(children.begin(), children.end(),
                               [](const process::Child& c) { return !c.running; });
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
  // Each command's own stop ends within 25 s, so 30 s each before SIGKILL.
  process::StopAll("up", children, stop_signal, signals, std::chrono::seconds(30));
  if (!failure.ok()) return failure;
  std::string bad;
  for (const process::Child& c : children) {
    if (c.exit_code != 0) bad += fmt::format(" {} exited with code {};", c.role, c.exit_code);
  }
  if (!bad.empty()) return Status::Internal("up: on shutdown" + bad);
  spdlog::info("up: everything stopped");
  return Status::Ok();
}

}  // namespace splitstream::app
