#include "splitstream/core/timestamp.h"

#include <fmt/format.h>

#include "splitstream/core/civil.h"
#include "splitstream/core/strings.h"

namespace splitstream {

Result<int64_t> ParseTimestampMillis(std::string_view text, const std::string& field) {
  size_t pos = 0;
  // `at`: the offending field's first character (0-based).
  auto bad = [&](std::string_view what, size_t at) -> Status {
    return Status::InvalidArgument(
        fmt::format(
            "expected a timestamp like 2026-11-20T10:11:12Z, got \"{}\": {} at character {}",
            SanitizeForMessage(text, 60), what, at + 1),
        field);
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
  int64_t millis = 0;
  if (consume("T ")) {
    at = pos;
    if (!number(2, hour) || hour > 23) return bad("an hour 00-23 expected", at);
    at = pos;
    if (!consume(":") || !number(2, minute) || minute > 59) return bad("\":MM\" expected", at);
    at = pos;
    if (!consume(":") || !number(2, second) || second > 59) return bad("\":SS\" expected", at);
    at = pos;
    if (consume(".")) {
      const size_t start = pos;
      int64_t scale = 100;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        millis += (text[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start || pos - start > 9) return bad("1 to 9 fraction digits expected", at);
    }
  }
  int64_t offset_s = 0;
  at = pos;
  if (!consume("Z") && pos < text.size()) {
    if (text[pos] != '+' && text[pos] != '-') {
      return bad("'Z' or a UTC offset \"+HH:MM\" expected", at);
    }
    const int sign = text[pos++] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!number(2, oh) || oh > 23 || !consume(":") || !number(2, om) || om > 59) {
      return bad("a UTC offset \"+HH:MM\" expected", at);
    }
    offset_s = sign * (oh * 3600 + om * 60);
  }
  if (pos != text.size()) return bad("unexpected characters", pos);
  const int64_t secs =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset_s;
  return secs * 1000 + millis;
}

}  // namespace splitstream
