#include "sql_util.h"

#include <fmt/format.h>

#include <charconv>
#include <random>

#include "splitstream/core/strings.h"

namespace splitstream::experiments::internal {

namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, UTC).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

std::string FormatDouble(double value) { return fmt::format("{}", value); }

Result<int64_t> ParseInt64(std::string_view text) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::Internal("unexpected integer from PostgreSQL: " + SanitizeForMessage(text));
  }
  return value;
}

Result<double> ParseDouble(std::string_view text) {
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::Internal("unexpected number from PostgreSQL: " + SanitizeForMessage(text));
  }
  return value;
}

Result<std::optional<int64_t>> ParseOptionalInt64(const pg::Param& value) {
  if (!value) return std::optional<int64_t>();
  SPLITSTREAM_ASSIGN_OR_RETURN(int64_t v, ParseInt64(*value));
  return std::optional<int64_t>(v);
}

std::string FormatTimestampUtc(int64_t micros) {
  const int64_t days = FloorDiv(micros, kMicrosPerDay);
  const int64_t in_day = micros - days * kMicrosPerDay;
  const Civil c = CivilFromDays(days);
  const int64_t secs = in_day / 1'000'000;
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", c.year, c.month, c.day,
                     secs / 3600, secs / 60 % 60, secs % 60, in_day % 1'000'000);
}

int64_t StartOfMonthUtc(int64_t micros, int months) {
  const Civil c = CivilFromDays(FloorDiv(micros, kMicrosPerDay));
  const int64_t index = c.year * 12 + (c.month - 1) + months;
  const int64_t year = FloorDiv(index, 12);
  const unsigned month = static_cast<unsigned>(index - year * 12) + 1;
  return DaysFromCivil(year, month, 1) * kMicrosPerDay;
}

std::string MonthSuffixUtc(int64_t micros) {
  const Civil c = CivilFromDays(FloorDiv(micros, kMicrosPerDay));
  return fmt::format("{:04}_{:02}", c.year, c.month);
}

std::string NewUuidV4() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10xx
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                     hi & 0xffff, lo >> 48, lo & 0xffffffffffffULL);
}

bool IsCanonicalUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace splitstream::experiments::internal
