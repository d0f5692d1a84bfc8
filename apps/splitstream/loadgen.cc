#include <spdlog/spdlog.h>

#include "commands.h"
#include "splitstream/loadgen/loadgen.h"

namespace splitstream::app {

Status RunLoadgen(const config::Config& cfg, const LoadgenOptions& opts) {
  loadgen::Options o;
  o.url = opts.url;
  o.admin_token = cfg.admin_token;
  o.client_token = cfg.client_token;
  o.experiment = opts.experiment;
  o.users = opts.users;
  o.base_rate = opts.base_rate;
  o.lift = opts.lift;
  o.seed = opts.seed;
  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto summary, loadgen::Simulate(o, [](std::string_view line) { spdlog::info("{}", line); }));
  std::printf("experiment %s (%s): %lld events in %.1f s\n", o.experiment.c_str(),
              summary.created ? "created" : "existing", static_cast<long long>(summary.events),
              summary.seconds);
  std::printf("%-12s %8s %12s %8s\n", "variant", "users", "conversions", "rate");
  for (const auto& v : summary.variants) {
    std::printf(
        "%-12s %8lld %12lld %7.2f%%\n", v.variant.c_str(), static_cast<long long>(v.users),
        static_cast<long long>(v.conversions),
        v.users ? 100.0 * static_cast<double>(v.conversions) / static_cast<double>(v.users) : 0.0);
  }
  if (summary.not_in_experiment) {
    std::printf("not in experiment: %lld\n", static_cast<long long>(summary.not_in_experiment));
  }
  return Status::Ok();
}

}  // namespace splitstream::app
