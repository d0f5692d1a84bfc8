#include <gtest/gtest.h>

#include <set>
#include <string>

#include "splitstream/core/civil.h"
#include "splitstream/core/lsn.h"
#include "splitstream/core/result.h"
#include "splitstream/core/status.h"
#include "splitstream/core/strings.h"
#include "splitstream/core/timestamp.h"

namespace splitstream {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd", "x");
  return x / 2;
}

Result<int> Quarter(int x) {
  SPLITSTREAM_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, ToStringNamesCodeAndField) {
  EXPECT_EQ(Status().ToString(), "ok");
  EXPECT_EQ(Status::InvalidArgument("bad weight", "variants[1].weight").ToString(),
            "invalid_argument: bad weight (field variants[1].weight)");
  EXPECT_EQ(Status::NotFound("x").WithContext("load").message(), "load: x");
}

TEST(Result, PropagatesErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(6).status().field(), "x");
}

TEST(Strings, SanitizeStripsControlCharactersAndTruncates) {
  EXPECT_EQ(SanitizeForMessage("a\nb\x01"), "a?b?");
  EXPECT_EQ(SanitizeForMessage("abcdef", 3), "abc...");
}

TEST(Strings, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", ""));  // an empty token never authenticates
}

TEST(Strings, RedactSecrets) {
  EXPECT_EQ(RedactSecrets("host=x password=hunter2 user=y"), "host=x password=*** user=y");
  EXPECT_EQ(RedactSecrets("password='a b' x=1"), "password=*** x=1");
  EXPECT_EQ(RedactSecrets("http://user:pw@host:1/"), "http://user:***@host:1/");
}

TEST(Lsn, PrintsAndParsesPostgresForm) {
  EXPECT_EQ(LsnToString(Lsn(0x16B374D848ull)), "16/B374D848");
  EXPECT_EQ(LsnToString(Lsn(0)), "0/0");
  EXPECT_EQ(ParseLsn("16/B374D848"), Lsn(0x16B374D848ull));
  EXPECT_EQ(ParseLsn("0/0"), Lsn(0));
  EXPECT_EQ(ParseLsn("FFFFFFFF/FFFFFFFF"), Lsn(~0ull));
  EXPECT_FALSE(ParseLsn(""));
  EXPECT_FALSE(ParseLsn("16B374D848"));
  EXPECT_FALSE(ParseLsn("1/"));
  EXPECT_FALSE(ParseLsn("1/G"));
  EXPECT_FALSE(ParseLsn("123456789/0"));
}

// Day counts that PostgreSQL 15 computes (`SELECT 'D'::date - '1970-01-01'::date`), down to its
// first and up to its last date.
TEST(Civil, DaysFromCivilAgreesWithPostgres) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(DaysFromCivil(1600, 1, 1), -135140);
  EXPECT_EQ(DaysFromCivil(2400, 2, 29), 157113);
  EXPECT_EQ(DaysFromCivil(1, 1, 1), -719162);
  EXPECT_EQ(DaysFromCivil(0, 12, 31), -719163);       // 1 BC
  EXPECT_EQ(DaysFromCivil(-4713, 11, 24), -2440588);  // 4714-11-24 BC
  EXPECT_EQ(DaysFromCivil(5874897, 12, 31), 2145042905);
  static_assert(DaysFromCivil(1970, 1, 2) == 1);
}

// Every day from 4714 BC to 5874897 AD in steps, and every single day of 800 years around
// 1970: CivilFromDays inverts DaysFromCivil, and the day after a date is the next day of its
// month, or the first of the next month (of the next year).
TEST(Civil, CivilFromDaysIsTheInverseAndWalksTheCalendar) {
  CivilDate prev = CivilFromDays(-146097 * 2 - 1);
  for (int64_t days = -146097 * 2; days <= 146097 * 2; ++days) {
    const CivilDate c = CivilFromDays(days);
    ASSERT_EQ(DaysFromCivil(c.year, c.month, c.day), days);
    ASSERT_GE(c.month, 1u);
    ASSERT_LE(c.month, 12u);
    ASSERT_GE(c.day, 1u);
    ASSERT_LE(c.day, DaysInMonth(c.year, c.month));
    if (prev.day < DaysInMonth(prev.year, prev.month)) {
      ASSERT_TRUE(c.year == prev.year && c.month == prev.month && c.day == prev.day + 1) << days;
    } else if (prev.month < 12) {
      ASSERT_TRUE(c.year == prev.year && c.month == prev.month + 1 && c.day == 1) << days;
    } else {
      ASSERT_TRUE(c.year == prev.year + 1 && c.month == 1 && c.day == 1) << days;
    }
    prev = c;
  }
  for (int64_t days = -2440588; days <= 2145042905; days += 9973) {
    const CivilDate c = CivilFromDays(days);
    ASSERT_EQ(DaysFromCivil(c.year, c.month, c.day), days);
  }
  const CivilDate last = CivilFromDays(2145042905);
  EXPECT_TRUE(last.year == 5874897 && last.month == 12 && last.day == 31);
}

TEST(Civil, LeapYearsAndMonthLengths) {
  EXPECT_TRUE(IsLeapYear(2000));
  EXPECT_TRUE(IsLeapYear(2024));
  EXPECT_TRUE(IsLeapYear(0));   // 1 BC
  EXPECT_TRUE(IsLeapYear(-4));  // 5 BC
  EXPECT_FALSE(IsLeapYear(1900));
  EXPECT_FALSE(IsLeapYear(2023));
  EXPECT_FALSE(IsLeapYear(-1));
  EXPECT_EQ(DaysInMonth(2024, 2), 29u);
  EXPECT_EQ(DaysInMonth(2100, 2), 28u);
  EXPECT_EQ(DaysInMonth(2023, 4), 30u);
  EXPECT_EQ(DaysInMonth(2023, 12), 31u);
}

TEST(Civil, FloorDivRoundsTowardNegativeInfinity) {
  EXPECT_EQ(FloorDiv(999, 1000), 0);
  EXPECT_EQ(FloorDiv(1000, 1000), 1);
  EXPECT_EQ(FloorDiv(-1, 1000), -1);
  EXPECT_EQ(FloorDiv(-1000, 1000), -1);
  EXPECT_EQ(FloorDiv(-1001, 1000), -2);
  EXPECT_EQ(FloorDiv(5, -2), -3);
  EXPECT_EQ(FloorDiv(-5, -2), 2);
}

TEST(Timestamp, ParsesDatesTimesFractionsAndZones) {
  auto ms = [](std::string_view text) {
    auto r = ParseTimestampMillis(text, "at");
    EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    return r.ok() ? *r : -1;
  };
  // Expected values from Python's datetime(..., tzinfo=timezone.utc).timestamp().
  EXPECT_EQ(ms("2026-11-20"), 1795132800000);
  EXPECT_EQ(ms("2026-11-20T10:11:12Z"), 1795169472000);
  EXPECT_EQ(ms("2026-11-20T10:11:12"), 1795169472000);  // no zone: UTC
  EXPECT_EQ(ms("2026-11-20 10:11:12Z"), 1795169472000);
  EXPECT_EQ(ms("2026-11-20T10:11:12.345Z"), 1795169472345);
  EXPECT_EQ(ms("2026-11-20T10:11:12.3456789Z"), 1795169472345);  // below a millisecond: dropped
  EXPECT_EQ(ms("2026-11-20T10:11:12.5"), 1795169472500);
  EXPECT_EQ(ms("2026-11-20T11:41:12.345+01:30"), 1795169472345);
  EXPECT_EQ(ms("2026-11-20T09:11:12-01:00"), 1795169472000);
  EXPECT_EQ(ms("2024-02-29T23:59:59Z"), 1709251199000);
  EXPECT_EQ(ms("1969-12-31T23:00:00Z"), -3600000);
}

TEST(Timestamp, SaysWhetherATimeAndAZoneWereGivenAndKeepsMicroseconds) {
  auto date = ParseTimestamp("2026-11-20");
  ASSERT_TRUE(date.ok());
  EXPECT_FALSE(date->has_time);
  EXPECT_FALSE(date->has_zone);
  EXPECT_EQ(date->micros, 1795132800000000);
  auto local = ParseTimestamp("2026-11-20t10:11:12.1234567");
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE(local->has_time);
  EXPECT_FALSE(local->has_zone);
  EXPECT_EQ(local->micros, 1795169472123456);
  auto zoned = ParseTimestamp("2026-11-20T10:11:12z");
  ASSERT_TRUE(zoned.ok());
  EXPECT_TRUE(zoned->has_time && zoned->has_zone);
  auto offset = ParseTimestamp("2026-11-20T10:11:12-00:30");
  ASSERT_TRUE(offset.ok());
  EXPECT_TRUE(offset->has_zone);
  EXPECT_EQ(offset->micros, 1795171272000000);
}

TEST(Timestamp, FormatsInUtcAndCutsTheFraction) {
  EXPECT_EQ(FormatTimestamp(1714564800123456), "2024-05-01T12:00:00.123456Z");
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59.999999Z");  // toward the past
  EXPECT_EQ(FormatTimestamp(1709210096789012, kPostgresUtc), "2024-02-29 12:34:56.789012+00");
  EXPECT_EQ(FormatTimestamp(1709210096789912, kRfc3339Millis), "2024-02-29T12:34:56.789Z");
  EXPECT_EQ(FormatTimestamp(-1000, kRfc3339Millis), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatTimestamp(-1, kRfc3339Millis), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatTimestamp(4102444799999999, {'T', 0, "Z"}), "2099-12-31T23:59:59Z");
  EXPECT_EQ(FormatTimestamp(1500, {' ', 1, ""}), "1970-01-01 00:00:00.0");
  // RFC 3339 with microseconds reads back as the same instant, years 0001 to 9999.
  for (int64_t t : {int64_t{0}, int64_t{-1}, int64_t{951782400000000}, int64_t{1709210096789012},
                    int64_t{-62135596800000000}, int64_t{253402300799999999}}) {
    auto back = ParseTimestamp(FormatTimestamp(t));
    ASSERT_TRUE(back.ok()) << FormatTimestamp(t);
    EXPECT_EQ(back->micros, t) << FormatTimestamp(t);
  }
}

TEST(Timestamp, EveryPrefixOfAValidInputIsRefusedUnlessItIsOneItself) {
  const std::string full = "2026-11-20T10:11:12.345+01:00";
  const std::set<size_t> valid = {10, 19, 21, 22, 23, full.size()};  // date, time, fractions
  for (size_t n = 0; n <= full.size(); ++n) {
    EXPECT_EQ(ParseTimestampMillis(full.substr(0, n), "at").ok(), valid.contains(n))
        << full.substr(0, n);
  }
}

TEST(Timestamp, BadInputIsAnErrorThatSaysWhatAndWhere) {
  auto error = [](std::string_view text) {
    auto r = ParseTimestampMillis(text, "reset_offsets");
    EXPECT_FALSE(r.ok()) << text;
    if (r.ok()) return std::string();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().field(), "reset_offsets");
    return r.status().message();
  };
  EXPECT_NE(error("2026-02-30").find("no such day in that month at character 9"), std::string::npos)
      << error("2026-02-30");
  EXPECT_NE(error("2023-02-29").find("no such day"), std::string::npos);
  EXPECT_NE(error("2026-13-01").find("no such month"), std::string::npos);
  EXPECT_NE(error("2026-1-05").find("\"-MM\" expected"), std::string::npos);
  EXPECT_NE(error("yesterday").find("got \"yesterday\""), std::string::npos);
  EXPECT_NE(error("2026-11-20T24:00:00Z").find("an hour 00-23"), std::string::npos);
  EXPECT_NE(error("2026-11-20T10:60:00Z").find("\":MM\""), std::string::npos);
  EXPECT_NE(error("2026-11-20T10:11:12.Z").find("fraction"), std::string::npos);
  EXPECT_NE(error("2026-11-20T10:11:12.1234567890Z").find("fraction"), std::string::npos);
  EXPECT_NE(error("2026-11-20T10:11:12+0100").find("UTC offset"), std::string::npos);
  EXPECT_NE(error("2026-11-20T10:11:12 UTC")
                .find("'Z' or a UTC offset \"+HH:MM\" expected at character 20"),
            std::string::npos);
  EXPECT_NE(error("2026-11-20Z ").find("unexpected characters"), std::string::npos);
  EXPECT_NE(error(" 2026-11-20").find("4-digit year"), std::string::npos);
  EXPECT_NE(error("2026-11-20\n").find("got \"2026-11-20?\""), std::string::npos);  // sanitized
}

}  // namespace
}  // namespace splitstream
