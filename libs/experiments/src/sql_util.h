// Private helpers of libs/experiments: text conversions to and from
// PostgreSQL's text format, UTC calendar arithmetic and UUIDs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "splitstream/core/result.h"
#include "splitstream/core/status.h"
#include "splitstream/pg/pg.h"

namespace splitstream::experiments::internal {

// Shortest text that PostgreSQL's float8 input reads back exactly.
std::string FormatDouble(double value);

Result<int64_t> ParseInt64(std::string_view text);
Result<double> ParseDouble(std::string_view text);
// NULL → std::nullopt.
Result<std::optional<int64_t>> ParseOptionalInt64(const pg::Param& value);

// Microseconds at 00:00 UTC of the first day of the month `months` months from the month
// holding `micros` (negative: earlier).
int64_t StartOfMonthUtc(int64_t micros, int months);
// "YYYY_MM" of the UTC month holding `micros`.
std::string MonthSuffixUtc(int64_t micros);

// A random (version 4) UUID in canonical lowercase form.
std::string NewUuidV4();
// True for 8-4-4-4-12 hexadecimal digits (any case), the form PostgreSQL prints.
bool IsCanonicalUuid(std::string_view text);

// `text` as a JSON string literal, quotes included.
std::string JsonString(std::string_view text);

}  // namespace splitstream::experiments::internal
