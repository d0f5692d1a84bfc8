// splitstream: one binary, one subcommand per process role. Flags and wiring only.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "splitstream/config/config.h"
#include "splitstream/core/log.h"

namespace {

// Options every subcommand shares; each maps onto a setting of libs/config.
struct CommonFlags {
  std::string config_path;
  std::map<std::string, std::string> values;
};

void AddSettingFlag(CLI::App* cmd, CommonFlags& flags, const std::string& flag,
                    const std::string& setting, const std::string& help) {
  cmd->add_option_function<std::string>(
      flag, [&flags, setting](const std::string& v) { flags.values[setting] = v; }, help);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Splitstream: experimentation on a change-data-capture pipeline.\n"
      "Configuration: flags > SPLITSTREAM_* environment > --config TOML > defaults."};
  app.require_subcommand(1);
  CommonFlags flags;
  app.add_option("--config", flags.config_path, "TOML configuration file")
      ->check(CLI::ExistingFile);
  AddSettingFlag(&app, flags, "--log-level", "log_level", "trace|debug|info|warn|error");
  AddSettingFlag(&app, flags, "--pg-dsn", "pg_dsn", "libpq conninfo of the source database");

  auto* serve = app.add_subcommand("serve", "HTTP API: experiments, assignment, events");
  AddSettingFlag(serve, flags, "--http-addr", "http_addr", "listen address host:port");
  AddSettingFlag(serve, flags, "--pg-pool-size", "pg_pool_size", "PostgreSQL connections");
  AddSettingFlag(serve, flags, "--http-threads", "http_threads", "worker threads (0: cores)");
  AddSettingFlag(serve, flags, "--max-body-bytes", "max_body_bytes", "request body limit");

  splitstream::app::MigrateOptions migrate_opts;
  auto* migrate = app.add_subcommand("migrate", "apply database migrations and partitions");
  migrate
      ->add_option("--months-ahead", migrate_opts.months_ahead,
                   "monthly partitions of events to create ahead")
      ->capture_default_str();
  migrate
      ->add_option("--retention-months", migrate_opts.retention_months,
                   "drop partitions of events older than this many months (0: keep all)")
      ->capture_default_str();

  splitstream::app::LoadgenOptions loadgen_opts;
  auto* loadgen = app.add_subcommand(
      "loadgen", "simulate an experiment with a known true effect through the HTTP API");
  loadgen->add_option("--url", loadgen_opts.url, "API base URL")->capture_default_str();
  loadgen->add_option("--experiment", loadgen_opts.experiment, "experiment key")
      ->capture_default_str();
  loadgen->add_option("--users", loadgen_opts.users, "simulated users")->capture_default_str();
  loadgen->add_option("--base-rate", loadgen_opts.base_rate, "control conversion rate")
      ->capture_default_str();
  loadgen->add_option("--lift", loadgen_opts.lift, "true relative lift of the treatment")
      ->capture_default_str();
  loadgen->add_option("--seed", loadgen_opts.seed, "random seed")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  auto cfg =
      splitstream::config::Load(flags.config_path, flags.values, splitstream::config::ProcessEnv());
  if (!cfg.ok()) {
    std::fprintf(stderr, "splitstream: configuration error: %s\n", cfg.status().ToString().c_str());
    return 2;
  }
  splitstream::InitLogging(cfg->log_level);

  splitstream::Status st;
  if (serve->parsed()) {
    st = splitstream::app::RunServe(*cfg);
  } else if (migrate->parsed()) {
    st = splitstream::app::RunMigrate(*cfg, migrate_opts);
  } else if (loadgen->parsed()) {
    st = splitstream::app::RunLoadgen(*cfg, loadgen_opts);
  }
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }
  return 0;
}
