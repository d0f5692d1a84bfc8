// Timestamps as people and JSON write them (an API's event times, a command-line option).
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "splitstream/core/result.h"

namespace splitstream {

struct Timestamp {
  int64_t micros = 0;     // since 1970-01-01T00:00:00Z; a time without a zone counts as UTC
  bool has_time = false;  // a time of day was given (else midnight)
  bool has_zone = false;  // 'Z' or an offset was given
};

// "YYYY-MM-DD", optionally followed by 'T', 't' or ' ' and "HH:MM:SS" with an optional
// fraction of 1–9 digits (kept to the microsecond), then optionally 'Z', 'z' or "±HH:MM".
// RFC 3339's date-time is the form with a time and a zone. A date that does not exist
// (February 30) is an error, not a day of the next month. Errors: InvalidArgument, "<what is
// wrong> at character N" (N counts from 1), naming no field.
Result<Timestamp> ParseTimestamp(std::string_view text);

// ParseTimestamp in milliseconds (the fraction below a millisecond dropped), for options such
// as "2026-11-20", "2026-11-20T10:11:12Z" or "2026-11-20 10:11:12.345+01:00". Errors name
// `field` and quote the text with an example.
Result<int64_t> ParseTimestampMillis(std::string_view text, const std::string& field);

// How FormatTimestamp writes an instant. Always in UTC; the zone is written as given.
struct TimestampFormat {
  char separator = 'T';         // between the date and the time of day
  int fraction_digits = 6;      // 0–6; the fraction is cut, not rounded (toward the past)
  std::string_view zone = "Z";  // written after the time
};
// RFC 3339 with microseconds, as the API answers: 2024-05-01T12:00:00.123456Z.
inline constexpr TimestampFormat kRfc3339Micros{};
// RFC 3339 with milliseconds, as JavaScript's Date.toISOString: 2024-05-01T12:00:00.123Z.
inline constexpr TimestampFormat kRfc3339Millis{'T', 3, "Z"};
// PostgreSQL's timestamptz text with TimeZone UTC: 2024-05-01 12:00:00.123456+00.
inline constexpr TimestampFormat kPostgresUtc{' ', 6, "+00"};

// `micros` since 1970-01-01T00:00:00Z in `format`; years 0–9999 (four digits; others are
// written with as many digits as they need).
std::string FormatTimestamp(int64_t micros, const TimestampFormat& format = kRfc3339Micros);

}  // namespace splitstream
