#include "errors.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace splitstream::api {
namespace {

struct Parsed {
  std::string code, message, field;
  bool has_field = false;
};

Parsed ParseBody(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(body);
  simdjson::dom::element error = root["error"];
  Parsed p;
  p.code = std::string(std::string_view(error["code"]));
  p.message = std::string(std::string_view(error["message"]));
  simdjson::dom::element field;
  if (error["field"].get(field) == simdjson::SUCCESS) {
    p.has_field = true;
    p.field = std::string(std::string_view(field));
  }
  return p;
}

struct Case {
  Status status;
  int http;
  std::string_view code;
};

TEST(MapStatus, EveryCodeHasItsHttpStatusAndStableCode) {
  const Case cases[] = {
      {Status::InvalidArgument("bad", "variants[1].weight"), 400, "invalid_argument"},
      {InvalidJson("TAPE_ERROR"), 400, "invalid_json"},
      {MethodNotAllowed("PUT", "/v1/assign"), 405, "method_not_allowed"},
      {Status::Unauthenticated("no token"), 401, "unauthenticated"},
      {Status::PermissionDenied("admin only"), 403, "forbidden"},
      {Status::NotFound("no experiment", "experiment"), 404, "not_found"},
      {Status::AlreadyExists("taken", "key"), 409, "already_exists"},
      {Status::Conflict("overlap", "layer_start"), 409, "conflict"},
      {Status::FailedPrecondition("stopped"), 409, "failed_precondition"},
      {Status::PayloadTooLarge("too big"), 413, "payload_too_large"},
      {Status::Unavailable("db down"), 503, "unavailable"},
      {Status::Internal("boom"), 500, "internal"},
      {Status::DataLoss("lost"), 500, "internal"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.status.ToString());
    ErrorReply r = MapStatus(c.status);
    EXPECT_EQ(r.http_status, c.http);
    EXPECT_EQ(r.code, c.code);
    EXPECT_EQ(ParseBody(r.body).code, c.code);
  }
}

TEST(MapStatus, FieldIsEchoedOnlyWhenMeaningful) {
  Parsed p = ParseBody(MapStatus(Status::InvalidArgument("bad", "events[17].user_id")).body);
  EXPECT_TRUE(p.has_field);
  EXPECT_EQ(p.field, "events[17].user_id");
  EXPECT_EQ(p.message, "bad");
  EXPECT_FALSE(ParseBody(MapStatus(InvalidJson("x")).body).has_field);
  EXPECT_FALSE(ParseBody(MapStatus(MethodNotAllowed("PUT", "/x")).body).has_field);
  EXPECT_FALSE(ParseBody(MapStatus(Status::NotFound("gone")).body).has_field);
}

TEST(MapStatus, InternalErrorsHideTheirMessage) {
  ErrorReply r = MapStatus(Status::Internal("relation secret_table: password=hunter2"));
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_EQ(r.body.find("hunter2"), std::string::npos);
}

TEST(MapStatus, StripsControlCharactersAndInvalidUtf8) {
  std::string evil = "user\n\x1b[31mred\x7f\xff\xfe";
  ErrorReply r = MapStatus(Status::NotFound("no user " + evil, "user\r\nid"));
  Parsed p = ParseBody(r.body);  // would throw on invalid UTF-8
  EXPECT_EQ(p.message, "no user user??[31mred???");
  EXPECT_EQ(p.field, "user??id");
  // Valid multi-byte UTF-8 is kept.
  EXPECT_EQ(ParseBody(MapStatus(Status::NotFound("é")).body).message, "é");
}

TEST(MapStatus, OkIsAnsweredAsInternalRatherThanCrashing) {
  EXPECT_EQ(MapStatus(Status::Ok()).http_status, 500);
}

}  // namespace
}  // namespace splitstream::api
