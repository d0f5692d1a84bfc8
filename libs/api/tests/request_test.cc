#include "request.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "errors.h"
#include "splitstream/core/timestamp.h"

namespace splitstream::api {
namespace {

// The API error code and field a parse failure maps to.
template <typename T>
std::pair<std::string, std::string> Err(const Result<T>& r) {
  if (r.ok()) return {"ok", ""};
  ErrorReply reply = MapStatus(r.status());
  std::string field = r.status().field();
  if (reply.code != "invalid_argument") field.clear();
  return {std::string(reply.code), field};
}

using P = std::pair<std::string, std::string>;

constexpr std::string_view kSpec = R"({"key":"checkout","name":"Checkout","description":"d",
  "variants":[{"key":"control","weight":0.5},{"key":"treatment","weight":0.5}],
  "traffic":0.8,"layer":"l1","layer_start":0,"layer_end":0.5,"seed":"s","hash_version":1,
  "metrics":[{"key":"conv","event_type":"purchase","kind":"ratio",
  "denominator_event_type":"visit","window_hours":24,"higher_is_better":false,
  "guardrail":true}]})";

TEST(ParseExperimentSpec, ReadsEveryField) {
  Result<experiments::ExperimentSpec> r = ParseExperimentSpec(kSpec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->key, "checkout");
  EXPECT_EQ(r->name, "Checkout");
  ASSERT_EQ(r->variants.size(), 2u);
  EXPECT_EQ(r->variants[1].key, "treatment");
  EXPECT_DOUBLE_EQ(r->variants[1].weight, 0.5);
  EXPECT_DOUBLE_EQ(r->traffic, 0.8);
  EXPECT_EQ(r->layer, "l1");
  EXPECT_DOUBLE_EQ(r->layer_end, 0.5);
  EXPECT_EQ(r->seed, "s");
  EXPECT_EQ(r->hash_version, 1);
  ASSERT_EQ(r->metrics.size(), 1u);
  EXPECT_EQ(r->metrics[0].kind, "ratio");
  EXPECT_EQ(r->metrics[0].denominator_event_type, "visit");
  EXPECT_EQ(r->metrics[0].window_hours, 24);
  EXPECT_FALSE(r->metrics[0].higher_is_better);
  EXPECT_TRUE(r->metrics[0].guardrail);
}

TEST(ParseExperimentSpec, DefaultsAndNulls) {
  Result<experiments::ExperimentSpec> r = ParseExperimentSpec(
      R"({"key":"k","layer":null,"variants":[{"key":"a","weight":1},{"key":"b","weight":2}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->layer.has_value());
  EXPECT_DOUBLE_EQ(r->traffic, 1.0);
  EXPECT_EQ(r->hash_version, 2);
}

TEST(ParseExperimentSpec, BadInputNamesTheField) {
  const std::pair<std::string_view, P> cases[] = {
      {"", {"invalid_json", ""}},
      {"{", {"invalid_json", ""}},
      {R"({"key":"k",})", {"invalid_json", ""}},
      {"[1,2]", {"invalid_argument", ""}},
      {R"({"variants":[]})", {"invalid_argument", "key"}},
      {R"({"key":"k"})", {"invalid_argument", "variants"}},
      {R"({"key":7,"variants":[]})", {"invalid_argument", "key"}},
      {R"({"key":"","variants":[]})", {"invalid_argument", "key"}},
      {R"({"key":"k","variants":{}})", {"invalid_argument", "variants"}},
      {R"({"key":"k","variants":[{"key":"a","weight":1},{"key":"b","weight":"1"}]})",
       {"invalid_argument", "variants[1].weight"}},
      {R"({"key":"k","variants":[{"key":"a","weight":1},{"weight":1}]})",
       {"invalid_argument", "variants[1].key"}},
      {R"({"key":"k","variants":[{"key":"a","weight":1},7]})", {"invalid_argument", "variants[1]"}},
      {R"({"key":"k","variants":[{"key":"a","weight":1,"colour":"red"}]})",
       {"invalid_argument", "variants[0].colour"}},
      {R"({"key":"k","trafic":0.5,"variants":[]})", {"invalid_argument", "trafic"}},
      {R"({"key":"k","key":"j","variants":[]})", {"invalid_argument", "key"}},
      {R"({"key":"k","variants":[],"traffic":"all"})", {"invalid_argument", "traffic"}},
      {R"({"key":"k","variants":[],"hash_version":2.5})", {"invalid_argument", "hash_version"}},
      {R"({"key":"k","variants":[],"layer":5})", {"invalid_argument", "layer"}},
      {R"({"key":"k","variants":[],"metrics":[{"key":"m"}]})",
       {"invalid_argument", "metrics[0].event_type"}},
      {R"({"key":"k","variants":[],"metrics":[{"key":"m","event_type":"e","guardrail":1}]})",
       {"invalid_argument", "metrics[0].guardrail"}},
      {"{\"key\":\"k\\u0000\",\"variants\":[]}", {"invalid_argument", "key"}},
      {"{\"key\":\"\xff\",\"variants\":[]}", {"invalid_json", ""}},
  };
  for (const auto& [body, expected] : cases) {
    SCOPED_TRACE(body);
    EXPECT_EQ(Err(ParseExperimentSpec(body)), expected);
  }
}

TEST(ParseExperimentSpec, EveryPrefixOfAValidBodyIsRejectedCleanly) {
  std::string body(kSpec);
  for (size_t n = 0; n < body.size(); ++n) {
    Result<experiments::ExperimentSpec> r = ParseExperimentSpec(body.substr(0, n));
    EXPECT_FALSE(r.ok()) << n;
  }
  EXPECT_TRUE(ParseExperimentSpec(body).ok());
}

TEST(ParseAllocationPatch, TrafficVariantsOrBoth) {
  Result<AllocationPatch> r = ParseAllocationPatch(R"({"traffic":0.3})");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(*r->traffic, 0.3);
  EXPECT_FALSE(r->variants.has_value());
  r = ParseAllocationPatch(R"({"variants":[{"key":"a","weight":1},{"key":"b","weight":3}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->variants->size(), 2u);
  EXPECT_EQ(Err(ParseAllocationPatch("{}")), P("invalid_argument", ""));
  EXPECT_EQ(Err(ParseAllocationPatch(R"({"traffic":null})")), P("invalid_argument", ""));
  EXPECT_EQ(Err(ParseAllocationPatch(R"({"traffic":true})")), P("invalid_argument", "traffic"));
  EXPECT_EQ(Err(ParseAllocationPatch(R"({"variants":[{"key":"a","weight":[]}]})")),
            P("invalid_argument", "variants[0].weight"));
  EXPECT_EQ(Err(ParseAllocationPatch(R"({"name":"x"})")), P("invalid_argument", "name"));
}

TEST(ParseAssignRequest, GoodAndBad) {
  Result<experiments::AssignRequest> r =
      ParseAssignRequest(R"({"user_id":"u-1","experiment":"checkout"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->user_id, "u-1");
  EXPECT_EQ(r->experiment, "checkout");
  std::string long_id(experiments::kMaxUserIdLength + 1, 'x');
  const std::pair<std::string, P> cases[] = {
      {R"({"user_id":"u"})", {"invalid_argument", "experiment"}},
      {R"({"experiment":"e"})", {"invalid_argument", "user_id"}},
      {R"({"user_id":12,"experiment":"e"})", {"invalid_argument", "user_id"}},
      {R"({"user_id":"","experiment":"e"})", {"invalid_argument", "user_id"}},
      {R"({"user_id":"u","experiment":["e"]})", {"invalid_argument", "experiment"}},
      {R"({"user_id":")" + long_id + R"(","experiment":"e"})", {"invalid_argument", "user_id"}},
      {R"({"user_id":"u","experiment":"e","extra":1})", {"invalid_argument", "extra"}},
      {R"({"user_id":"u","experiment":"e"} x)", {"invalid_json", ""}},
      {R"("just a string")", {"invalid_argument", ""}},
  };
  for (const auto& [body, expected] : cases) {
    SCOPED_TRACE(body);
    EXPECT_EQ(Err(ParseAssignRequest(body)), expected);
  }
}

std::string Events(size_t n, std::string_view event) {
  std::string body = R"({"events":[)";
  for (size_t i = 0; i < n; ++i) {
    if (i) body += ',';
    body += event;
  }
  return body + "]}";
}

constexpr std::string_view kEvent = R"({"experiment":"e","user_id":"u","type":"purchase"})";

TEST(ParseEvents, ReadsEveryField) {
  Result<std::vector<experiments::Event>> r = ParseEvents(
      R"({"events":[{"experiment":"e","user_id":"u","type":"purchase","value":12.5,
      "properties":{"b":[1, 2],"a":{"x":null}},"ts":"2024-05-01T12:00:00.5+02:00",
      "event_id":"0B9E4F5A-1C2D-4E3F-8A9B-0C1D2E3F4A5B"},
      {"experiment":"e","user_id":"v","type":"visit","ts":1714564800123,"value":null}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  const experiments::Event& a = (*r)[0];
  EXPECT_EQ(a.type, "purchase");
  EXPECT_DOUBLE_EQ(*a.value, 12.5);
  EXPECT_EQ(a.properties_json, R"({"b":[1,2],"a":{"x":null}})");
  EXPECT_EQ(*a.ts_us, 1714557600500000);  // 10:00:00.5 UTC
  EXPECT_EQ(*a.event_id, "0b9e4f5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b");
  const experiments::Event& b = (*r)[1];
  EXPECT_EQ(*b.ts_us, 1714564800123000);
  EXPECT_FALSE(b.value.has_value());
  EXPECT_EQ(b.properties_json, "{}");
  EXPECT_FALSE(b.event_id.has_value());
}

TEST(ParseEvents, BatchLimit) {
  EXPECT_TRUE(ParseEvents(Events(experiments::kMaxEventsPerBatch, kEvent)).ok());
  Result<std::vector<experiments::Event>> r =
      ParseEvents(Events(experiments::kMaxEventsPerBatch + 1, kEvent));
  EXPECT_EQ(Err(r), P("invalid_argument", "events"));
  EXPECT_NE(r.status().message().find("10001"), std::string::npos);
  EXPECT_TRUE(ParseEvents(R"({"events":[]})")->empty());
}

TEST(ParseEvents, BadEventNamesItsIndexAndField) {
  auto at17 = [](std::string_view bad) {
    std::string body = R"({"events":[)";
    for (int i = 0; i < 20; ++i) {
      if (i) body += ',';
      body += i == 17 ? bad : kEvent;
    }
    return body + "]}";
  };
  const std::pair<std::string_view, P> cases[] = {
      {R"({"experiment":"e","type":"t"})", {"invalid_argument", "events[17].user_id"}},
      {R"({"experiment":"e","user_id":7,"type":"t"})", {"invalid_argument", "events[17].user_id"}},
      {R"({"user_id":"u","type":"t"})", {"invalid_argument", "events[17].experiment"}},
      {R"({"experiment":"e","user_id":"u"})", {"invalid_argument", "events[17].type"}},
      {R"({"experiment":"e","user_id":"u","type":"t","value":"1"})",
       {"invalid_argument", "events[17].value"}},
      {R"({"experiment":"e","user_id":"u","type":"t","properties":[1]})",
       {"invalid_argument", "events[17].properties"}},
      {R"({"experiment":"e","user_id":"u","type":"t","properties":"{}"})",
       {"invalid_argument", "events[17].properties"}},
      {R"({"experiment":"e","user_id":"u","type":"t","properties":{"a":"\u0000"}})",
       {"invalid_argument", "events[17].properties"}},
      {R"({"experiment":"e","user_id":"u","type":"t","event_id":"not-a-uuid"})",
       {"invalid_argument", "events[17].event_id"}},
      {R"({"experiment":"e","user_id":"u","type":"t","event_id":"0b9e4f5a1c2d4e3f8a9b0c1d2e3f4a5b"})",
       {"invalid_argument", "events[17].event_id"}},
      {R"({"experiment":"e","user_id":"u","type":"t","event_id":7})",
       {"invalid_argument", "events[17].event_id"}},
      {R"({"experiment":"e","user_id":"u","type":"t","ts":"yesterday"})",
       {"invalid_argument", "events[17].ts"}},
      {R"({"experiment":"e","user_id":"u","type":"t","ts":"2024-02-30T00:00:00Z"})",
       {"invalid_argument", "events[17].ts"}},
      {R"({"experiment":"e","user_id":"u","type":"t","ts":"2024-05-01T12:00:00"})",
       {"invalid_argument", "events[17].ts"}},
      {R"({"experiment":"e","user_id":"u","type":"t","ts":-5})",
       {"invalid_argument", "events[17].ts"}},
      {R"({"experiment":"e","user_id":"u","type":"t","ts":true})",
       {"invalid_argument", "events[17].ts"}},
      {R"({"experiment":"e","user_id":"u","type":"t","when":1})",
       {"invalid_argument", "events[17].when"}},
      {R"("event")", {"invalid_argument", "events[17]"}},
  };
  for (const auto& [bad, expected] : cases) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(Err(ParseEvents(at17(bad))), expected);
  }
  EXPECT_EQ(Err(ParseEvents(R"({})")), P("invalid_argument", "events"));
  EXPECT_EQ(Err(ParseEvents(R"({"events":{}})")), P("invalid_argument", "events"));
  EXPECT_EQ(Err(ParseEvents(R"({"events":[)")), P("invalid_json", ""));
  std::string long_type(experiments::kMaxEventTypeLength + 1, 't');
  EXPECT_EQ(Err(ParseEvents(fmt::format(R"({{"events":[{{"experiment":"e","user_id":"u",)"
                                        R"("type":"{}"}}]}})",
                                        long_type))),
            P("invalid_argument", "events[0].type"));
}

TEST(ParseEvents, EveryPrefixIsRejectedCleanly) {
  std::string body =
      R"({"events":[{"experiment":"e","user_id":"u","type":"t","value":1.5,"properties":{"k":[true]},"ts":"2024-05-01T00:00:00Z"}]})";
  for (size_t n = 0; n < body.size(); ++n) EXPECT_FALSE(ParseEvents(body.substr(0, n)).ok()) << n;
  EXPECT_TRUE(ParseEvents(body).ok());
}

TEST(Rfc3339, ParsesAndFormats) {
  EXPECT_EQ(*ParseRfc3339Micros("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseRfc3339Micros("2024-05-01T12:00:00Z"), 1714564800000000);
  EXPECT_EQ(*ParseRfc3339Micros("2024-05-01t12:00:00.123456789z"), 1714564800123456);
  EXPECT_EQ(*ParseRfc3339Micros("2024-05-01 14:30:00.1+02:30"), 1714564800100000);
  EXPECT_EQ(*ParseRfc3339Micros("2024-02-29T00:00:00-01:00"), 1709168400000000);
  for (std::string_view bad :
       {"", "2024-05-01", "2024-05-01T12:00Z", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
        "2024-05-01T24:00:00Z", "2024-05-01T12:00:60Z", "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00.1234567890Z", "2024-05-01T12:00:00+0200", "1969-12-31T23:59:59Z",
        "2024-05-01T12:00:00Zjunk", "24-05-01T12:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339Micros(bad).ok()) << bad;
  }
  // A time and a zone are required; the instant, not the local date, must be in 1970 or later.
  EXPECT_EQ(*ParseRfc3339Micros("1969-12-31T23:30:00-01:00"), 1800000000);
  EXPECT_NE(ParseRfc3339Micros("2024-05-01T12:00:00").status().message().find("no time zone"),
            std::string::npos);
  EXPECT_NE(ParseRfc3339Micros("2024-02-30T00:00:00Z")
                .status()
                .message()
                .find("no such day in that month at character 9"),
            std::string::npos);
  // What the API answers reads back as the same instant.
  for (int64_t t : {int64_t{951782400000000}, int64_t{4102444799999999}, int64_t{1}}) {
    EXPECT_EQ(*ParseRfc3339Micros(FormatTimestamp(t)), t);
  }
}

TEST(DecodePathSegment, DecodesAndRejects) {
  EXPECT_EQ(*DecodePathSegment("a%20b%2Fc+d", "user_id"), "a b/c+d");
  EXPECT_EQ(*DecodePathSegment("%C3%A9", "user_id"), "é");
  for (std::string_view bad : {"", "%", "%4", "%zz", "a%00b", "%FF"}) {
    Result<std::string> r = DecodePathSegment(bad, "user_id");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().field(), "user_id");
  }
}

TEST(IsUuid, Shapes) {
  EXPECT_TRUE(IsUuid("0b9e4f5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"));
  EXPECT_FALSE(IsUuid("0b9e4f5a-1c2d-4e3f-8a9b-0c1d2e3f4a5"));
  EXPECT_FALSE(IsUuid("0b9e4f5a-1c2d-4e3f-8a9b-0c1d2e3f4a5g"));
  EXPECT_FALSE(IsUuid("0b9e4f5a11c2d-4e3f-8a9b-0c1d2e3f4a5b"));
}

}  // namespace
}  // namespace splitstream::api
