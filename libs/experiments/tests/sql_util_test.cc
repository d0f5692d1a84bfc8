#include "sql_util.h"

#include <gtest/gtest.h>

#include <set>

#include "splitstream/core/timestamp.h"

namespace splitstream::experiments::internal {
namespace {

constexpr int64_t kSecond = 1'000'000;

TEST(StartOfMonthUtc, StepsAcrossYears) {
  const int64_t t = 1709210096789012;  // 2024-02-29
  EXPECT_EQ(FormatTimestamp(StartOfMonthUtc(t, 0), kPostgresUtc), "2024-02-01 00:00:00.000000+00");
  EXPECT_EQ(FormatTimestamp(StartOfMonthUtc(t, -1), kPostgresUtc), "2024-01-01 00:00:00.000000+00");
  EXPECT_EQ(FormatTimestamp(StartOfMonthUtc(t, -2), kPostgresUtc), "2023-12-01 00:00:00.000000+00");
  EXPECT_EQ(FormatTimestamp(StartOfMonthUtc(t, 11), kPostgresUtc), "2025-01-01 00:00:00.000000+00");
  EXPECT_EQ(StartOfMonthUtc(0, 0), 0);
  EXPECT_EQ(StartOfMonthUtc(31 * 86400 * kSecond - 1, 0), 0);
  EXPECT_EQ(MonthSuffixUtc(t), "2024_02");
  EXPECT_EQ(MonthSuffixUtc(-1), "1969_12");
}

TEST(Uuid, V4IsCanonicalAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUuidV4();
    ASSERT_TRUE(IsCanonicalUuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second);
  }
  EXPECT_TRUE(IsCanonicalUuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"));
  EXPECT_FALSE(IsCanonicalUuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"));
  EXPECT_FALSE(IsCanonicalUuid("a0eebc999c0b-4ef8-bb6d-6bb9bd380a11-"));
  EXPECT_FALSE(IsCanonicalUuid("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  EXPECT_FALSE(IsCanonicalUuid(""));
}

TEST(JsonString, Escapes) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString(std::string("\n\x01", 2)), "\"\\u000a\\u0001\"");
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

TEST(FormatDouble, RoundTrips) {
  for (double d : {0.1, 1.0 / 3, 1e-9, 0.95, 1.0, 123456.789}) {
    EXPECT_EQ(ParseDouble(FormatDouble(d)).value(), d);
  }
  EXPECT_FALSE(ParseDouble("1.5x").ok());
  EXPECT_FALSE(ParseInt64("").ok());
  EXPECT_EQ(ParseInt64("-42").value(), -42);
}

}  // namespace
}  // namespace splitstream::experiments::internal
