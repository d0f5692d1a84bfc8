#include "router.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <future>

#include "fake_service.h"

namespace splitstream::api {
namespace {

constexpr std::string_view kAdmin = "admin-secret-token";
constexpr std::string_view kClient = "client-secret-token";

class RouterTest : public ::testing::Test {
 protected:
  RouterTest()
      : router_({std::string(kAdmin), std::string(kClient)}, &service_, nullptr, &metrics_) {}

  // Runs one request and waits for its answer, which may come from the fake's batcher.
  HttpResponse Call(std::string method, std::string target, std::string body = "",
                    std::string_view token = kAdmin) {
    HttpRequest req;
    req.method = std::move(method);
    req.target = std::move(target);
    if (!token.empty()) req.authorization = "Bearer " + std::string(token);
    req.body = std::move(body);
    auto promise = std::make_shared<std::promise<HttpResponse>>();
    std::future<HttpResponse> answer = promise->get_future();
    auto calls = std::make_shared<std::atomic<int>>(0);
    router_.Handle(std::move(req), [promise, calls](HttpResponse r) {
      if (calls->fetch_add(1) == 0)
        promise->set_value(std::move(r));
      else
        ADD_FAILURE() << "responder called twice";
    });
    EXPECT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return answer.get();
  }

  static std::string Code(const HttpResponse& r) {
    simdjson::dom::parser parser;
    std::string_view code;
    if (parser.parse(r.body)["error"]["code"].get(code)) return "<no error code>";
    return std::string(code);
  }
  static std::string Field(const HttpResponse& r) {
    simdjson::dom::parser parser;
    std::string_view field;
    if (parser.parse(r.body)["error"]["field"].get(field)) return "";
    return std::string(field);
  }

  void CreateExperiment(std::string key = "exp") {
    HttpResponse r =
        Call("POST", "/v1/experiments",
             R"({"key":")" + key +
                 R"(","variants":[{"key":"control","weight":1},{"key":"treatment","weight":1}]})");
    ASSERT_EQ(r.status, 201) << r.body;
  }

  testing::FakeService service_;
  Metrics metrics_;
  Router router_;
};

TEST_F(RouterTest, UnknownRouteIs404AndWrongMethod405) {
  HttpResponse r = Call("GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "not_found");
  EXPECT_EQ(r.route, Route::kUnmatched);
  EXPECT_EQ(Call("GET", "/v1/experiments/").status, 404);
  EXPECT_EQ(Call("GET", "/v1/experiments/a/b/c").status, 404);
  EXPECT_EQ(Call("GET", "relative").status, 404);
  r = Call("DELETE", "/v1/experiments/x");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Code(r), "method_not_allowed");
  EXPECT_EQ(r.allow, "GET, PATCH");
  EXPECT_EQ(Call("GET", "/v1/assign").status, 405);
  EXPECT_EQ(Call("POST", "/healthz").status, 405);
}

TEST(RouterMayBlockTest, OnlyRoutesThatWaitOnADatabaseLeaveTheEventLoop) {
  for (const char* target :
       {"/v1/events", "/v1/experiments", "/v1/experiments/k", "/v1/experiments/k/start",
        "/v1/experiments/k/stop", "/v1/experiments/k/results", "/v1/users/u/assignments", "/readyz",
        "/readyz?x=1"}) {
    EXPECT_TRUE(Router::MayBlock(target)) << target;
  }
  for (const char* target : {"/v1/assign", "/healthz", "/metrics", "/", "/nope", "/v1/assign?x"}) {
    EXPECT_FALSE(Router::MayBlock(target)) << target;
  }
}

TEST_F(RouterTest, TheDashboardNeedsNoTokenAndOnlyGet) {
  for (std::string_view target : {"/", "/?x=1", "/dashboard.js", "/dashboard.css"}) {
    HttpResponse r = Call("GET", std::string(target), "", "");
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_TRUE(r.page) << target;
    EXPECT_EQ(r.route, Route::kDashboard) << target;
    EXPECT_FALSE(r.body.empty()) << target;
  }
  EXPECT_EQ(Call("GET", "/").content_type, "text/html; charset=utf-8");
  EXPECT_EQ(Call("GET", "/dashboard.js").content_type, "text/javascript; charset=utf-8");
  HttpResponse r = Call("POST", "/", "", "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET");
  EXPECT_FALSE(r.page);
  EXPECT_EQ(Call("GET", "/dashboard.map", "", "").status, 404);
  EXPECT_EQ(Call("GET", "/index.html", "", "").status, 404);
  EXPECT_FALSE(Call("GET", "/healthz", "", "").page);
}

TEST_F(RouterTest, AuthRules) {
  // Missing, malformed and unknown tokens: 401 with a challenge and no echo of the token.
  HttpResponse r = Call("GET", "/v1/experiments", "", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Code(r), "unauthenticated");
  EXPECT_TRUE(r.bearer_challenge);
  r = Call("GET", "/v1/experiments", "", "wrong-token-value");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body.find("wrong-token-value"), std::string::npos);
  HttpRequest basic{"GET", "/v1/experiments", "Basic " + std::string(kAdmin), ""};
  HttpResponse got;
  router_.Handle(basic, [&](HttpResponse x) { got = std::move(x); });
  EXPECT_EQ(got.status, 401);
  // A prefix of the admin token is not the admin token.
  EXPECT_EQ(Call("GET", "/v1/experiments", "", kAdmin.substr(0, 5)).status, 401);
  // Client token on an admin route: 403.
  r = Call("GET", "/v1/experiments", "", kClient);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Code(r), "forbidden");
  EXPECT_EQ(Call("POST", "/v1/experiments/x/start", "", kClient).status, 403);
  // Admin may do client things; the scheme is case-insensitive.
  CreateExperiment();
  EXPECT_EQ(Call("POST", "/v1/assign", R"({"user_id":"u","experiment":"exp"})", kAdmin).status,
            200);
  HttpRequest lower{"POST", "/v1/assign", "bearer " + std::string(kClient),
                    R"({"user_id":"u","experiment":"exp"})"};
  std::promise<HttpResponse> p;
  router_.Handle(lower, [&](HttpResponse x) { p.set_value(std::move(x)); });
  EXPECT_EQ(p.get_future().get().status, 200);
  // No token needed for health, readiness and metrics.
  EXPECT_EQ(Call("GET", "/healthz", "", "").status, 200);
  EXPECT_EQ(Call("GET", "/readyz", "", "").status, 200);
  EXPECT_EQ(Call("GET", "/metrics", "", "").status, 200);
  // Auth is checked before the body: nothing reaches the service.
  int writes = service_.writes;
  EXPECT_EQ(Call("POST", "/v1/experiments", "{not json", kClient).status, 403);
  EXPECT_EQ(service_.writes, writes);
}

TEST_F(RouterTest, EmptyConfiguredTokenAcceptsNothing) {
  Router open({"", ""}, &service_, nullptr, &metrics_);
  HttpResponse got;
  open.Handle({"GET", "/v1/experiments", "Bearer ", ""}, [&](HttpResponse r) { got = r; });
  EXPECT_EQ(got.status, 401);
}

TEST_F(RouterTest, ExperimentLifecycle) {
  HttpResponse r = Call("POST", "/v1/experiments",
                        R"({"key":"exp","variants":[{"key":"control","weight":1},
                            {"key":"treatment","weight":3}],"traffic":0.5})");
  ASSERT_EQ(r.status, 201);
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(r.body);
  EXPECT_EQ(std::string_view(e["key"]), "exp");
  EXPECT_EQ(std::string_view(e["status"]), "draft");
  EXPECT_EQ(std::string_view(e["variants"].at(1)["key"]), "treatment");
  EXPECT_EQ(double(e["traffic"]), 0.5);
  EXPECT_TRUE(e["layer"].is_null());
  EXPECT_EQ(std::string_view(e["created_at"]), "2024-05-01T12:00:00.000000Z");

  r = Call("POST", "/v1/experiments",
           R"({"key":"exp","variants":[{"key":"a","weight":1},{"key":"b","weight":1}]})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "already_exists");
  EXPECT_EQ(Field(r), "key");

  r = Call("GET", "/v1/experiments");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(parser.parse(r.body)["experiments"].get_array().size(), 1u);
  EXPECT_EQ(Call("GET", "/v1/experiments/exp").status, 200);
  r = Call("GET", "/v1/experiments/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "not_found");

  r = Call("POST", "/v1/experiments/exp/start");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(std::string_view(parser.parse(r.body)["status"]), "running");
  r = Call("POST", "/v1/experiments/exp/stop");
  EXPECT_EQ(std::string_view(parser.parse(r.body)["status"]), "stopped");
  r = Call("POST", "/v1/experiments/exp/start");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "failed_precondition");
}

TEST_F(RouterTest, PatchChecksVariantKeysInOrder) {
  CreateExperiment();
  int writes = service_.writes;
  HttpResponse r =
      Call("PATCH", "/v1/experiments/exp",
           R"({"variants":[{"key":"treatment","weight":1},{"key":"control","weight":1}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Field(r), "variants[0].key");
  r = Call("PATCH", "/v1/experiments/exp", R"({"variants":[{"key":"control","weight":1}]})");
  EXPECT_EQ(Field(r), "variants");
  r = Call("PATCH", "/v1/experiments/exp", R"({"traffic":"half"})");
  EXPECT_EQ(Field(r), "traffic");
  EXPECT_EQ(Call("PATCH", "/v1/experiments/nope", R"({"traffic":0.5})").status, 404);
  EXPECT_EQ(service_.writes, writes + 1);  // only the 404 reached UpdateAllocation
  r = Call(
      "PATCH", "/v1/experiments/exp",
      R"({"traffic":0.25,"variants":[{"key":"control","weight":1},{"key":"treatment","weight":4}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(r.body);
  EXPECT_EQ(double(e["traffic"]), 0.25);
  EXPECT_EQ(double(e["variants"].at(1)["weight"]), 4.0);
}

TEST_F(RouterTest, AssignIsAnsweredFromTheBatcherThread) {
  CreateExperiment();
  HttpResponse r = Call("POST", "/v1/assign", R"({"user_id":"alice","experiment":"exp"})", kClient);
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  simdjson::dom::element a = parser.parse(r.body);
  EXPECT_EQ(std::string_view(a["user_id"]), "alice");
  EXPECT_TRUE(bool(a["in_experiment"]));
  EXPECT_EQ(std::string_view(a["reason"]), "assigned");
  EXPECT_FALSE(bool(a["stored"]));
  std::string_view variant = a["variant"];
  EXPECT_TRUE(variant == "control" || variant == "treatment");
  r = Call("POST", "/v1/assign", R"({"user_id":"alice","experiment":"nope"})", kClient);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Field(r), "experiment");
  int assigns = service_.assigns;
  r = Call("POST", "/v1/assign", R"({"user_id":"alice"})", kClient);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Field(r), "experiment");
  EXPECT_EQ(Code(Call("POST", "/v1/assign", "{", kClient)), "invalid_json");
  EXPECT_EQ(service_.assigns, assigns);
}

TEST_F(RouterTest, UserAssignmentsDecodeTheUserId) {
  HttpResponse r = Call("GET", "/v1/users/a%20b%2Fc/assignments?x=1", "", kClient);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(service_.last_user_id, "a b/c");
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(r.body);
  EXPECT_EQ(std::string_view(e["user_id"]), "a b/c");
  EXPECT_EQ(std::string_view(e["assignments"].at(0)["variant"]), "control");
  EXPECT_EQ(std::string_view(e["assignments"].at(0)["assigned_at"]), "2024-05-01T12:00:00.000000Z");
  r = Call("GET", "/v1/users/%ZZ/assignments", "", kClient);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Field(r), "user_id");
}

TEST_F(RouterTest, EventsRejectedWholeStoreNothing) {
  std::string good = R"({"experiment":"exp","user_id":"u","type":"click"})";
  std::string bad = R"({"experiment":"exp","user_id":"u","type":"click","ts":"soon"})";
  HttpResponse r = Call("POST", "/v1/events", R"({"events":[)" + good + "," + bad + "]}", kClient);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Field(r), "events[1].ts");
  EXPECT_EQ(service_.writes, 0);
  r = Call("POST", "/v1/events", R"({"events":[)" + good + "," + good + "]}", kClient);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":2})");
  EXPECT_EQ(service_.tracked.size(), 2u);
  EXPECT_EQ(Call("POST", "/v1/events", R"({"events":[]})", kClient).body, R"({"accepted":0})");
}

TEST_F(RouterTest, ReadinessFollowsTheService) {
  EXPECT_EQ(Call("GET", "/readyz", "", "").status, 200);
  service_.ready = false;
  HttpResponse r = Call("GET", "/readyz", "", "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Code(r), "unavailable");
  EXPECT_EQ(Call("GET", "/healthz", "", "").status, 200);
}

TEST_F(RouterTest, ExceptionsEndOneRequestWithAGeneric500) {
  service_.throw_on_list = true;
  HttpResponse r = Call("GET", "/v1/experiments");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(Code(r), "internal");
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
}

TEST_F(RouterTest, MetricsUseRoutePatternsNotRawPaths) {
  metrics_.Record(Route::kExperiment, "GET", 200, std::chrono::milliseconds(3));
  metrics_.Record(Route::kExperiment, "BREW", 418, std::chrono::milliseconds(1));
  metrics_.Record(Route::kAssign, "POST", 200, std::chrono::microseconds(50));
  HttpResponse r = Call("GET", "/metrics", "", "");
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = r.body;
  EXPECT_NE(
      m.find(
          R"(splitstream_http_requests_total{route="/v1/experiments/{key}",method="GET",status="200"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find(
          R"(splitstream_http_requests_total{route="/v1/experiments/{key}",method="OTHER",status="418"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find(
          R"(splitstream_http_request_duration_seconds_bucket{route="/v1/assign",le="0.0001"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find(
          R"(splitstream_http_request_duration_seconds_bucket{route="/v1/experiments/{key}",le="0.001"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find(R"(splitstream_http_request_duration_seconds_count{route="/v1/experiments/{key}"} 2)"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("splitstream_assign_batches_total 3\n"), std::string::npos);
  EXPECT_NE(m.find("splitstream_assign_rows_total 7\n"), std::string::npos);
  EXPECT_EQ(m.find("splitstream_pg_pool_connections"), std::string::npos);  // no pool here
}

}  // namespace
}  // namespace splitstream::api

namespace splitstream::api {
namespace {

class FakeResults : public ResultsProvider {
 public:
  Result<std::string> ResultsJson(const std::string& key) override {
    if (key != "known") return Status::NotFound("experiment \"" + key + "\" not found", "key");
    return std::string(R"({"experiment":"known"})");
  }
};

TEST(RouterResultsTest, ResultsRoute) {
  testing::FakeService service;
  Metrics metrics;
  FakeResults results;
  Router without({"admin", "client"}, &service, nullptr, &metrics);
  Router with({"admin", "client", &results}, &service, nullptr, &metrics);
  auto call = [](const Router& router, std::string method, std::string target,
                 std::string token = "admin") {
    HttpRequest req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.authorization = "Bearer " + token;
    HttpResponse out;
    router.Handle(std::move(req), [&out](HttpResponse r) { out = std::move(r); });
    return out;
  };
  HttpResponse r = call(without, "GET", "/v1/experiments/known/results");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("results need ClickHouse"), std::string::npos) << r.body;
  r = call(with, "GET", "/v1/experiments/known/results");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"experiment":"known"})");
  EXPECT_EQ(r.route, Route::kExperimentResults);
  r = call(with, "GET", "/v1/experiments/other/results");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("field":"key")"), std::string::npos) << r.body;
  EXPECT_EQ(call(with, "POST", "/v1/experiments/known/results").status, 405);
  EXPECT_EQ(call(with, "GET", "/v1/experiments/known/results", "client").status, 403);
  EXPECT_EQ(RoutePattern(Route::kExperimentResults), "/v1/experiments/{key}/results");
}

}  // namespace
}  // namespace splitstream::api
