#include "splitstream/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace splitstream {

void InitLogging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("splitstream");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; an unknown name should not silence the process.
  spdlog::set_level(parsed == spdlog::level::off && level != "off" ? spdlog::level::info : parsed);
}

}  // namespace splitstream
