// Conversions between PostgreSQL's text output format and the JSON values Debezium writes
// (through Kafka Connect's JSON converter, i.e. Jackson). Internal to libs/debezium.
//
// Every Parse* function reads the whole view and returns false on anything it does not
// recognise; none reads past the end of its input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "splitstream/core/civil.h"

namespace splitstream::debezium::internal {

// Appends `s` as a JSON string literal, quotes included, escaping as Jackson does: \" \\ \b \f
// \n \r \t, other control characters as \u00XX (upper-case hex); UTF-8 passes through.
void AppendJsonString(std::string* out, std::string_view s);

// Standard base64 with padding (java.util.Base64 / Jackson's default variant).
void AppendBase64(std::string* out, std::string_view bytes);
// PostgreSQL bytea hex output "\x0a1b..." re-encoded as base64 without an intermediate buffer.
bool AppendByteaHexAsBase64(std::string* out, std::string_view pg_text);

void AppendInt(std::string* out, int64_t v);
// Integer text of PostgreSQL int2/int4/int8/oid output: optional '-', digits, in range.
bool ParseInt64(std::string_view text, int64_t* v);

// Java's Double.toString / Float.toString (shortest digits; plain for 1e-3 <= |v| < 1e7, else
// "1.0E10"), and Jackson's quoted "NaN", "Infinity", "-Infinity".
void AppendJavaDouble(std::string* out, double v);
void AppendJavaFloat(std::string* out, float v);
// PostgreSQL float4/float8 text, including "NaN", "Infinity", "-Infinity".
bool ParseDouble(std::string_view text, double* v);

// A finite numeric value as BigDecimal sees it: sign, unscaled digits without leading zeros
// (empty for zero) and scale (digits after the point; may be negative after rescaling).
struct Decimal {
  bool negative = false;
  std::string digits;
  int32_t scale = 0;
};
enum class NumericSpecial { kNone, kNaN, kPositiveInfinity, kNegativeInfinity };
bool ParseNumeric(std::string_view text, Decimal* out, NumericSpecial* special);
// BigDecimal.setScale(scale) without rounding: false when digits would be lost.
bool Rescale(Decimal* d, int32_t scale);
// BigDecimal.stripTrailingZeros() followed by setScale(0) when the scale went negative.
void StripTrailingZeros(Decimal* d);
// Base64 of BigInteger.toByteArray() of the unscaled value (big-endian two's complement).
void AppendUnscaledBase64(std::string* out, const Decimal& d);
// BigDecimal.toString() (scientific notation when the exponent is below -6).
void AppendJavaBigDecimal(std::string* out, const Decimal& d);

// PostgreSQL numeric typmod ((precision << 16) | scale) + 4; false for -1 (unconstrained).
bool NumericTypmod(int32_t typmod, int32_t* precision, int32_t* scale);

// PostgreSQL DateStyle ISO output. `infinity` is set for "infinity"/"-infinity" (+1/-1).
bool ParseDate(std::string_view text, int64_t* days, int* infinity);
// timestamp without time zone: microseconds since the epoch of the wall-clock value.
bool ParseTimestamp(std::string_view text, int64_t* micros, int* infinity);
// timestamp with time zone ("... +05:30"): microseconds since the epoch (UTC).
bool ParseTimestampTz(std::string_view text, int64_t* micros, int* infinity);
// time: microseconds past midnight (24:00:00 allowed).
bool ParseTime(std::string_view text, int64_t* micros);
// time with time zone: microseconds past midnight in UTC, wrapped into [0, 24h).
bool ParseTimeTz(std::string_view text, int64_t* utc_micros);
// interval (IntervalStyle postgres) as Debezium's MicroDuration: months of 365.25/12 days,
// computed in double precision exactly as io.debezium.time.MicroDuration does.
bool ParseIntervalMicros(std::string_view text, int64_t* micros);

// ISO-8601 UTC instant as java.time's ISO_OFFSET_DATE_TIME writes it ("...T10:11:12.345678Z"):
// `fraction_digits` 1..9 prints exactly that many digits; 0 prints the shortest fraction
// (none when the sub-second part is zero).
void AppendIsoInstant(std::string* out, int64_t epoch_micros, int fraction_digits);
// The usual timestamptz text of a UTC session, "YYYY-MM-DD HH:MM:SS[.f]+00" (4-digit year,
// 1..6 fraction digits), written into `buf` exactly as ParseTimestampTz + AppendIsoInstant
// would write it, by moving characters instead of computing the instant (it is the hottest
// conversion of the CDC path: every events row carries two). Returns the length written, or
// 0 (nothing usable in `buf`) for any other text — other offsets, BC, infinity, longer
// years, 24:00:00, leap seconds, days past the month's end — which the general path handles.
// `buf` holds at least kMaxUtcTimestampTzIso bytes.
inline constexpr size_t kMaxUtcTimestampTzIso = 32;
size_t FormatUtcTimestampTzIso(std::string_view text, int fraction_digits, char* buf);
// ISO_OFFSET_TIME in UTC: "10:11:12Z", "10:11:12.5Z".
void AppendIsoTimeUtc(std::string* out, int64_t micros_of_day);

}  // namespace splitstream::debezium::internal
