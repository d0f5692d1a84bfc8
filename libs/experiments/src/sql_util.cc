#include "sql_util.h"

#include <fmt/format.h>

#include <charconv>
#include <random>

#include "splitstream/core/civil.h"
#include "splitstream/core/strings.h"

namespace splitstream::experiments::internal {

namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;

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

int64_t StartOfMonthUtc(int64_t micros, int months) {
  const CivilDate c = CivilFromDays(FloorDiv(micros, kMicrosPerDay));
  const int64_t index = c.year * 12 + (c.month - 1) + months;
  const int64_t year = FloorDiv(index, 12);
  const unsigned month = static_cast<unsigned>(index - year * 12) + 1;
  return DaysFromCivil(year, month, 1) * kMicrosPerDay;
}

std::string MonthSuffixUtc(int64_t micros) {
  const CivilDate c = CivilFromDays(FloorDiv(micros, kMicrosPerDay));
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
