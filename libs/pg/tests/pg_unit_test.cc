#include <gtest/gtest.h>

#include "splitstream/pg/pg.h"

namespace splitstream::pg {
namespace {

TEST(ArrayLiteral, QuotesAndEscapes) {
  EXPECT_EQ(ArrayLiteral({}), "{}");
  EXPECT_EQ(ArrayLiteral({"a", std::nullopt, "b\"c", "d\\e", "{x,y}"}),
            R"({"a",NULL,"b\"c","d\\e","{x,y}"})");
}

TEST(Connection, OpenFailureNamesNoPassword) {
  auto conn = Connection::Open(
      "host=127.0.0.1 port=1 dbname=x user=y password=hunter2 "
      "connect_timeout=2");
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(conn.status().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace splitstream::pg
