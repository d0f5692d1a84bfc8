// splitstream: one binary, one subcommand per process role. Flags and wiring only.
#include <CLI/CLI.hpp>

#include "splitstream/core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"Splitstream: experimentation on a change-data-capture pipeline"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  app.add_subcommand("serve", "HTTP API: experiments, assignment, events");
  app.add_subcommand("migrate", "apply database migrations");
  CLI11_PARSE(app, argc, argv);
  splitstream::InitLogging(log_level);
  return 0;
}
