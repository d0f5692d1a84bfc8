#include "text_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>

namespace splitstream::debezium::internal {
namespace {

std::string Double(double v) {
  std::string s;
  AppendJavaDouble(&s, v);
  return s;
}

// Expected strings are what java.lang.Double.toString prints for these values.
TEST(TextFormatTest, JavaDoubleToString) {
  EXPECT_EQ(Double(1.0), "1.0");
  EXPECT_EQ(Double(0.5), "0.5");
  EXPECT_EQ(Double(1e7), "1.0E7");
  EXPECT_EQ(Double(9999999.0), "9999999.0");
  EXPECT_EQ(Double(0.001), "0.001");
  EXPECT_EQ(Double(0.0001), "1.0E-4");
  EXPECT_EQ(Double(123456.789), "123456.789");
  EXPECT_EQ(Double(-1.5e-10), "-1.5E-10");
  EXPECT_EQ(Double(1.7976931348623157e308), "1.7976931348623157E308");
  EXPECT_EQ(Double(4.9e-324), "4.9E-324");
  EXPECT_EQ(Double(1e23), "1.0E23");
  EXPECT_EQ(Double(2.0), "2.0");
  EXPECT_EQ(Double(NAN), "\"NaN\"");
}

TEST(TextFormatTest, JsonStringEscapes) {
  std::string s;
  AppendJsonString(&s, std::string("a\"b\\c\x1f\x7f\xc3\xa9/", 10));
  EXPECT_EQ(s, "\"a\\\"b\\\\c\\u001F\x7f\xc3\xa9/\"");
}

// The 8-bytes-at-a-time skip must not change a byte of the output: random strings (plain text,
// every escape, valid and broken UTF-8, at every alignment) against byte-at-a-time escaping.
TEST(TextFormatTest, JsonStringFastSkipMatchesByteByByteEscaping) {
  auto reference = [](std::string_view s) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size(); ++i) {
      std::string one;
      AppendJsonString(&one, s.substr(i, 1));  // a single byte never takes the fast skip
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        out += one.substr(1, one.size() - 2);
        continue;
      }
      // Multi-byte sequences: escape the longest well-formed prefix as one piece.
      size_t n = 1;
      std::string piece;
      for (size_t len = 4; len >= 2; --len) {
        if (i + len > s.size()) continue;
        std::string p;
        AppendJsonString(&p, s.substr(i, len));
        if (p == "\"" + std::string(s.substr(i, len)) + "\"") {
          n = len;
          break;
        }
      }
      if (n == 1) {
        out += "\xEF\xBF\xBD";
      } else {
        out += s.substr(i, n);
        i += n - 1;
      }
    }
    return out + "\"";
  };
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a",
                                  "Z",
                                  " ",
                                  "~",
                                  "\"",
                                  "\\",
                                  "\n",
                                  std::string(1, '\0'),
                                  "\x1f",
                                  "\x7f",
                                  "\xc3\xa9",
                                  "\xe2\x82\xac",
                                  "\xf0\x9f\x98\x80",
                                  "\xc3",
                                  "\xff",
                                  "\xed\xa0\x80"};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int len = std::uniform_int_distribution<int>(0, 40)(rng);
    const bool mostly_plain = i % 2 == 0;
    for (int k = 0; k < len; ++k) {
      int pick = std::uniform_int_distribution<int>(0, 15)(rng);
      if (mostly_plain && pick > 3) pick %= 4;
      s += alphabet[pick];
    }
    std::string fast;
    AppendJsonString(&fast, s);
    ASSERT_EQ(fast, reference(s)) << testing::PrintToString(s);
  }
}

// Malformed UTF-8 (possible from a SQL_ASCII database) becomes U+FFFD, as Java's decoder does.
TEST(TextFormatTest, JsonStringReplacesMalformedUtf8) {
  std::string s;
  AppendJsonString(&s, "a\xba\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\xa0\x80\xc3");
  EXPECT_EQ(s,
            "\"a\xEF\xBF\xBD\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xEF\xBF\xBD\xEF\xBF\xBD"
            "\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

TEST(TextFormatTest, Base64) {
  std::string s;
  AppendBase64(&s, "f");
  AppendBase64(&s, "fo");
  AppendBase64(&s, "foo");
  AppendBase64(&s, "foob");
  EXPECT_EQ(s, "Zg==Zm8=Zm9vZm9vYg==");
  std::string h;
  EXPECT_TRUE(AppendByteaHexAsBase64(&h, "\\x666f6f62"));
  EXPECT_EQ(h, "Zm9vYg==");
  EXPECT_FALSE(AppendByteaHexAsBase64(&h, "\\x6g"));
}

// Found by debezium_fuzz: a year far beyond PostgreSQL's range overflowed the microseconds.
TEST(TextFormatTest, TimestampsBeyondSixtyFourBitMicrosecondsAreRejected) {
  int64_t micros = 0;
  int infinity = 0;
  EXPECT_FALSE(ParseTimestampTz("2021046-11-20 10:11:12+00", &micros, &infinity));
  EXPECT_FALSE(ParseTimestamp("2021046-11-20 10:11:12", &micros, &infinity));
  ASSERT_TRUE(ParseTimestampTz("2021-11-20 10:11:12+01", &micros, &infinity));
  EXPECT_EQ(micros, 1637399472000000);
  // PostgreSQL's last year, 294276, is just past int64 microseconds since 1970 (PostgreSQL
  // counts from 2000); year 200000 still fits.
  EXPECT_FALSE(ParseTimestamp("294276-12-31 23:59:59", &micros, &infinity));
  ASSERT_TRUE(ParseTimestamp("200000-01-01 00:00:00", &micros, &infinity));
  EXPECT_GT(micros, 6'000'000'000'000'000'000);
}

TEST(TextFormatTest, IsoInstant) {
  std::string s;
  AppendIsoInstant(&s, 0, 0);
  EXPECT_EQ(s, "1970-01-01T00:00:00Z");
  s.clear();
  AppendIsoInstant(&s, 1'500'000, 0);
  EXPECT_EQ(s, "1970-01-01T00:00:01.5Z");
  s.clear();
  AppendIsoInstant(&s, 253402300800000000, 6);  // year 10000
  EXPECT_EQ(s, "+10000-01-01T00:00:00.000000Z");
}

// The fast path for UTC timestamptz text must write exactly what the general path writes, and
// decline everything else. Random texts around the fast shape: every field from in range to
// just out of it, fractions of 0..9 digits, other offsets, BC, 5-digit years.
TEST(TextFormatTest, UtcTimestampTzFastPathMatchesTheGeneralPath) {
  auto general = [](std::string_view text, int fraction_digits) -> std::optional<std::string> {
    int64_t micros = 0;
    int infinity = 0;
    if (!ParseTimestampTz(text, &micros, &infinity) || infinity != 0) return std::nullopt;
    std::string out;
    AppendIsoInstant(&out, micros, fraction_digits);
    return out;
  };
  auto fast = [](std::string_view text, int fraction_digits) -> std::optional<std::string> {
    char buf[kMaxUtcTimestampTzIso];
    size_t n = FormatUtcTimestampTzIso(text, fraction_digits, buf);
    if (n == 0) return std::nullopt;
    return std::string(buf, n);
  };
  std::mt19937 rng(20261206);
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int fast_hits = 0;
  for (int i = 0; i < 200000; ++i) {
    char text[64];
    const int year = pick(0, 3) == 0 ? pick(0, 99999) : pick(1, 9999);
    const char* suffixes[] = {"+00", "+00", "+00", "+01", "-05:30", "+00 BC", "+0", "+000", ""};
    std::string fraction;
    const int fraction_len = pick(-3, 9);
    if (fraction_len > 0) {
      fraction = ".";
      for (int k = 0; k < fraction_len; ++k)
        fraction.push_back(static_cast<char>('0' + pick(0, 9)));
    } else if (fraction_len == 0) {
      fraction = ".";
    }
    std::snprintf(text, sizeof(text), "%0*d-%02d-%02d %02d:%02d:%02d%s%s", pick(0, 5) == 0 ? 3 : 4,
                  year, pick(0, 13), pick(0, 32), pick(0, 25), pick(0, 60), pick(0, 61),
                  fraction.c_str(), suffixes[pick(0, 8)]);
    for (int digits = 0; digits <= 6; ++digits) {
      auto f = fast(text, digits);
      if (!f) continue;
      ++fast_hits;
      auto g = general(text, digits);
      ASSERT_TRUE(g.has_value()) << text;
      ASSERT_EQ(*f, *g) << text << " with " << digits << " fraction digits";
    }
  }
  EXPECT_GT(fast_hits, 10000);  // the shape PostgreSQL prints does take the fast path
  EXPECT_EQ(fast("2026-11-20 10:11:12.345678+00", 6), "2026-11-20T10:11:12.345678Z");
  EXPECT_EQ(fast("2024-02-29 23:59:59+00", 0), "2024-02-29T23:59:59Z");
  EXPECT_EQ(fast("2026-11-20 10:11:12.5+00", 3), "2026-11-20T10:11:12.500Z");
  EXPECT_FALSE(fast("2023-02-29 00:00:00+00", 6));  // no such day: the general path decides
  EXPECT_FALSE(fast("2026-11-20 24:00:00+00", 6));
  EXPECT_FALSE(fast("2026-11-20 10:11:12+01", 6));
}

}  // namespace
}  // namespace splitstream::debezium::internal
