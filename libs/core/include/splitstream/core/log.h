// Logging: spdlog to stderr with one format for every subcommand. Never log secrets; use
// RedactSecrets() for anything that may hold a DSN or URL.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace splitstream {

// Sets the global level from a name ("trace", "debug", "info", "warn", "error") and the
// pattern. Unknown names fall back to "info". Call once, early in main.
void InitLogging(std::string_view level);

}  // namespace splitstream
