#include "text_format.h"

#include <gtest/gtest.h>

#include <cmath>
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

TEST(TextFormatTest, DaysFromCivil) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
  EXPECT_EQ(DaysFromCivil(1600, 1, 1), -135140);
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

}  // namespace
}  // namespace splitstream::debezium::internal
