// Timestamps typed by people (command-line options), as milliseconds since the epoch (UTC).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "splitstream/core/result.h"

namespace splitstream {

// "YYYY-MM-DD", optionally followed by 'T' or ' ' and "HH:MM:SS" with an optional fraction
// of 1–9 digits (below milliseconds it is dropped), then optionally 'Z' or "±HH:MM"; without
// a zone the time is UTC. Examples: "2026-11-20", "2026-11-20T10:11:12Z",
// "2026-11-20 10:11:12.345+01:00". Errors: InvalidArgument naming `field`, the text, and what
// is wrong at which character; a date that does not exist (February 30) is an error, not the
// next month.
Result<int64_t> ParseTimestampMillis(std::string_view text, const std::string& field);

}  // namespace splitstream
