#include <gtest/gtest.h>

#include "splitstream/core/lsn.h"
#include "splitstream/core/result.h"
#include "splitstream/core/status.h"
#include "splitstream/core/strings.h"

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

}  // namespace
}  // namespace splitstream
