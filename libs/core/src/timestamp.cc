#include "splitstream/core/timestamp.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "splitstream/core/civil.h"
#include "splitstream/core/strings.h"

namespace splitstream {

Result<Timestamp> ParseTimestamp(std::string_view text) {
  size_t pos = 0;
  // `at`: the offending field's first character (0-based).
  auto bad = [](std::string_view what, size_t at) -> Status {
    return Status::InvalidArgument(fmt::format("{} at character {}", what, at + 1));
  };
  // Exactly `digits` ASCII digits.
  auto number = [&](size_t digits, int& out) {
    if (pos + digits > text.size()) return false;
    int v = 0;
    for (size_t i = 0; i < digits; ++i) {
      const char c = text[pos + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    out = v;
    pos += digits;
    return true;
  };
  auto consume = [&](std::string_view chars) {
    if (pos < text.size() && chars.find(text[pos]) != std::string_view::npos) {
      ++pos;
      return true;
    }
    return false;
  };

  Timestamp t;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  size_t at = pos;
  if (!number(4, year)) return bad("a 4-digit year expected", at);
  at = pos;
  if (!consume("-") || !number(2, month)) return bad("\"-MM\" expected", at);
  if (month < 1 || month > 12) return bad("no such month", at + 1);
  at = pos;
  if (!consume("-") || !number(2, day)) return bad("\"-DD\" expected", at);
  if (day < 1 || day > static_cast<int>(DaysInMonth(year, static_cast<unsigned>(month)))) {
    return bad("no such day in that month", at + 1);
  }
  int64_t frac_us = 0;
  if (consume("Tt ")) {
    t.has_time = true;
    at = pos;
    if (!number(2, hour) || hour > 23) return bad("an hour 00-23 expected", at);
    at = pos;
    if (!consume(":") || !number(2, minute) || minute > 59) return bad("\":MM\" expected", at);
    at = pos;
    if (!consume(":") || !number(2, second) || second > 59) return bad("\":SS\" expected", at);
    at = pos;
    if (consume(".")) {
      const size_t start = pos;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
      const size_t digits = pos - start;
      if (digits == 0 || digits > 9) return bad("1 to 9 fraction digits expected", at);
      for (size_t i = 0; i < 6; ++i)
        frac_us = frac_us * 10 + (i < digits ? text[start + i] - '0' : 0);
    }
  }
  int64_t offset_s = 0;
  at = pos;
  if (consume("Zz")) {
    t.has_zone = true;
  } else if (pos < text.size()) {
    if (text[pos] != '+' && text[pos] != '-') {
      return bad("'Z' or a UTC offset \"+HH:MM\" expected", at);
    }
    const int sign = text[pos++] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!number(2, oh) || oh > 23 || !consume(":") || !number(2, om) || om > 59) {
      return bad("a UTC offset \"+HH:MM\" expected", at);
    }
    offset_s = sign * (oh * 3600 + om * 60);
    t.has_zone = true;
  }
  if (pos != text.size()) return bad("unexpected characters", pos);
  const int64_t secs =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset_s;
  t.micros = secs * 1'000'000 + frac_us;
  return t;
}

Result<int64_t> ParseTimestampMillis(std::string_view text, const std::string& field) {
  auto t = ParseTimestamp(text);
  if (!t.ok()) {
    return Status::InvalidArgument(
        fmt::format("expected a timestamp like 2026-11-20T10:11:12Z, got \"{}\": {}",
                    SanitizeForMessage(text, 60), t.status().message()),
        field);
  }
  return FloorDiv(t->micros, 1000);
}

std::string FormatTimestamp(int64_t micros, const TimestampFormat& format) {
  constexpr int64_t kMicrosPerDay = int64_t{86400} * 1'000'000;
  constexpr int64_t kPow10[] = {1, 10, 100, 1'000, 10'000, 100'000, 1'000'000};
  const int64_t days = FloorDiv(micros, kMicrosPerDay);
  const int64_t in_day = micros - days * kMicrosPerDay;  // 0 .. kMicrosPerDay - 1
  const int64_t secs = in_day / 1'000'000;
  const CivilDate c = CivilFromDays(days);
  // One buffer for the whole text (an event batch formats up to 10 000 of these).
  fmt::memory_buffer out;
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}", c.year, c.month,
                 c.day, format.separator, secs / 3600, secs / 60 % 60, secs % 60);
  if (const int digits = std::clamp(format.fraction_digits, 0, 6); digits > 0) {
    fmt::format_to(std::back_inserter(out), ".{:0{}}", in_day % 1'000'000 / kPow10[6 - digits],
                   digits);
  }
  out.append(format.zone);
  return fmt::to_string(out);
}

}  // namespace splitstream
