// The HTTP API end to end: the real Server and experiments::Service on a fresh migrated
// PostgreSQL database (TestDatabase), driven over sockets, with the stored rows checked in
// PostgreSQL directly. Needs SPLITSTREAM_PG_DSN; fails without it.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <future>
#include <map>
#include <thread>

#include "http_client.h"
#include "splitstream/api/server.h"
#include "splitstream/experiments/service.h"
#include "splitstream/pg/pg.h"
#include "splitstream/testing/test_database.h"

namespace splitstream::api {
namespace {

namespace http = boost::beast::http;
using testing::Response;

const std::string kAdmin = "integration-admin-token";
const std::string kClient = "integration-client-token";

std::string Json(std::string_view body, std::string_view path) {
  simdjson::dom::parser parser;
  simdjson::dom::element root, e;
  simdjson::padded_string padded(body);
  if (parser.parse(padded).get(root)) return "<not JSON>";
  if (root.at_pointer(path).get(e)) return "<missing " + std::string(path) + ">";
  std::string_view s;
  if (e.get(s) == simdjson::SUCCESS) return std::string(s);
  return simdjson::minify(e);
}

class ApiIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = splitstream::testing::TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    auto pool = pg::Pool::Create(db_->dsn(), 8);
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    pool_ = std::move(*pool);
    auto conn = pg::Connection::Open(db_->dsn());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    sql_ = std::move(*conn);
    ASSERT_NO_FATAL_FAILURE(StartStack());
  }

  void TearDown() override { StopStack(); }

  void StartStack() {
    experiments::ServiceOptions so;
    so.conninfo = db_->dsn();
    auto service = experiments::Service::Create(pool_.get(), so);
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(*service);
    ServerOptions opts;
    opts.port = 0;
    opts.threads = 2;
    opts.admin_token = kAdmin;
    opts.client_token = kClient;
    auto server = Server::Start(opts, service_.get(), pool_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  // The documented order: server first (in-flight answers), then the service.
  void StopStack() {
    if (server_) server_->Shutdown();
    server_.reset();
    if (service_) service_->Shutdown();
    service_.reset();
  }

  testing::Client Admin() { return testing::Client(server_->port(), kAdmin); }
  testing::Client ClientApp() { return testing::Client(server_->port(), kClient); }

  int64_t Count(const std::string& sql) {
    auto rows = sql_->Exec(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok() || rows->empty()) return -1;
    return std::stoll(std::string(rows->text(0, 0)));
  }

  std::map<std::string, int64_t> CountAll() {
    std::map<std::string, int64_t> out;
    for (const char* t : {"experiments", "variants", "assignments", "events"}) {
      out[t] = Count(std::string("SELECT count(*) FROM ") + t);
    }
    return out;
  }

  void CreateAndStart(const std::string& body, const std::string& key) {
    testing::Client c = Admin();
    Response r = c.Send(http::verb::post, "/v1/experiments", body);
    ASSERT_EQ(r.result_int(), 201) << r.body();
    r = c.Send(http::verb::post, "/v1/experiments/" + key + "/start");
    ASSERT_EQ(r.result_int(), 200) << r.body();
    ASSERT_EQ(Json(r.body(), "/status"), "running");
  }

  // variant of each user ("" when not in the experiment), over one keep-alive connection.
  std::map<std::string, std::string> AssignAll(
      const std::string& experiment, int from, int to,
      std::map<std::string, std::string>* reasons = nullptr) {
    testing::Client c = ClientApp();
    std::map<std::string, std::string> out;
    for (int i = from; i < to; ++i) {
      std::string user = "user-" + std::to_string(i);
      Response r = c.Send(http::verb::post, "/v1/assign",
                          R"({"user_id":")" + user + R"(","experiment":")" + experiment + R"("})");
      EXPECT_EQ(r.result_int(), 200) << r.body();
      out[user] = Json(r.body(), "/in_experiment") == "true" ? Json(r.body(), "/variant") : "";
      if (reasons) (*reasons)[user] = Json(r.body(), "/reason");
    }
    return out;
  }

  std::unique_ptr<splitstream::testing::TestDatabase> db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<pg::Connection> sql_;
  std::unique_ptr<experiments::Service> service_;
  std::unique_ptr<Server> server_;
};

constexpr std::string_view kTwoVariants =
    R"({"key":"checkout","name":"Checkout flow","variants":[{"key":"control","weight":1},)"
    R"({"key":"treatment","weight":1}]})";

TEST_F(ApiIntegrationTest, ExperimentLifecycle) {
  testing::Client c = Admin();
  Response r = c.Send(http::verb::post, "/v1/experiments", std::string(kTwoVariants));
  ASSERT_EQ(r.result_int(), 201) << r.body();
  EXPECT_EQ(Json(r.body(), "/status"), "draft");
  EXPECT_EQ(Json(r.body(), "/name"), "Checkout flow");
  EXPECT_EQ(Json(r.body(), "/seed"), "checkout");
  EXPECT_EQ(Json(r.body(), "/variants/1/key"), "treatment");
  EXPECT_EQ(Count("SELECT count(*) FROM experiments WHERE key = 'checkout'"), 1);

  r = c.Send(http::verb::get, "/v1/experiments/checkout");
  EXPECT_EQ(r.result_int(), 200);
  r = c.Send(http::verb::get, "/v1/experiments");
  EXPECT_EQ(Json(r.body(), "/experiments/0/key"), "checkout");
  r = c.Send(http::verb::post, "/v1/experiments/checkout/start");
  EXPECT_EQ(Json(r.body(), "/status"), "running");
  EXPECT_NE(Json(r.body(), "/started_at"), "null");
  EXPECT_EQ(Count("SELECT count(*) FROM experiments WHERE status = 'running'"), 1);
  r = c.Send(http::verb::post, "/v1/experiments/checkout/stop");
  EXPECT_EQ(Json(r.body(), "/status"), "stopped");
  r = c.Send(http::verb::post, "/v1/experiments/checkout/start");
  EXPECT_EQ(r.result_int(), 409);
  EXPECT_EQ(Json(r.body(), "/error/code"), "failed_precondition");
  EXPECT_EQ(Count("SELECT count(*) FROM experiments WHERE status = 'stopped'"), 1);
  // Assigning in a stopped experiment answers not_running.
  testing::Client app = ClientApp();
  r = app.Send(http::verb::post, "/v1/assign", R"({"user_id":"u","experiment":"checkout"})");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(Json(r.body(), "/reason"), "not_running");
  EXPECT_EQ(Json(r.body(), "/in_experiment"), "false");
}

TEST_F(ApiIntegrationTest, AssignIsDeterministicAndStickyAcrossRestartAndWeightChange) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(std::string(kTwoVariants), "checkout"));
  std::map<std::string, std::string> reasons;
  auto first = AssignAll("checkout", 0, 200, &reasons);
  int treatment = 0;
  for (auto& [user, variant] : first) {
    ASSERT_TRUE(variant == "control" || variant == "treatment") << user;
    EXPECT_EQ(reasons[user], "assigned");
    treatment += variant == "treatment";
  }
  EXPECT_GT(treatment, 60);  // 50/50 of 200: far from 0 or 200
  EXPECT_LT(treatment, 140);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 200);
  // Same answers again, now from the stored rows.
  EXPECT_EQ(AssignAll("checkout", 0, 200, &reasons), first);
  EXPECT_EQ(reasons["user-7"], "stored");

  // Restart: a new service and server on the same database.
  StopStack();
  ASSERT_NO_FATAL_FAILURE(StartStack());
  EXPECT_EQ(AssignAll("checkout", 0, 200), first);

  // Move almost all weight to treatment: stored users keep their variant; new ones follow.
  testing::Client c = Admin();
  Response r =
      c.Send(http::verb::patch, "/v1/experiments/checkout",
             R"({"variants":[{"key":"control","weight":1},{"key":"treatment","weight":99}]})");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(Json(r.body(), "/variants/1/weight"), "99.0");
  EXPECT_EQ(AssignAll("checkout", 0, 200), first);
  auto fresh = AssignAll("checkout", 1000, 1200);
  int fresh_treatment = 0;
  for (auto& [user, variant] : fresh) fresh_treatment += variant == "treatment";
  EXPECT_GT(fresh_treatment, 180);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 400);
  // The stored rows agree with the answers.
  auto rows = sql_->Exec(
      "SELECT a.user_id, v.key FROM assignments a JOIN variants v ON v.id = a.variant_id "
      "WHERE a.user_id = 'user-42'");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->text(0, 1), first["user-42"]);
  // Wrong variant order in a PATCH is refused and changes nothing.
  r = c.Send(http::verb::patch, "/v1/experiments/checkout",
             R"({"variants":[{"key":"treatment","weight":1},{"key":"control","weight":1}]})");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(Json(r.body(), "/error/field"), "variants[0].key");
  EXPECT_EQ(Count("SELECT count(*) FROM variants WHERE key = 'treatment' AND weight = 99"), 1);
  // So is a weight that is not positive, and the error names it as the body does.
  r = c.Send(http::verb::patch, "/v1/experiments/checkout",
             R"({"variants":[{"key":"control","weight":1},{"key":"treatment","weight":0}]})");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(Json(r.body(), "/error/field"), "variants[1].weight") << r.body();
  // And a list of another length.
  r = c.Send(http::verb::patch, "/v1/experiments/checkout",
             R"({"variants":[{"key":"control","weight":1}]})");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(Json(r.body(), "/error/field"), "variants") << r.body();
  EXPECT_EQ(Count("SELECT count(*) FROM variants WHERE key = 'treatment' AND weight = 99"), 1);
}

TEST_F(ApiIntegrationTest, LayerMakesExperimentsMutuallyExclusive) {
  ASSERT_NO_FATAL_FAILURE(
      CreateAndStart(R"({"key":"a","layer":"checkout-layer","layer_start":0,"layer_end":0.5,)"
                     R"("variants":[{"key":"control","weight":1},{"key":"b1","weight":1}]})",
                     "a"));
  ASSERT_NO_FATAL_FAILURE(
      CreateAndStart(R"({"key":"b","layer":"checkout-layer","layer_start":0.5,"layer_end":1,)"
                     R"("variants":[{"key":"control","weight":1},{"key":"b2","weight":1}]})",
                     "b"));
  // An overlapping share is refused.
  testing::Client c = Admin();
  Response r = c.Send(http::verb::post, "/v1/experiments",
                      R"({"key":"c","layer":"checkout-layer","layer_start":0.4,"layer_end":0.6,)"
                      R"("variants":[{"key":"x","weight":1},{"key":"y","weight":1}]})");
  EXPECT_EQ(r.result_int(), 409) << r.body();
  EXPECT_EQ(Json(r.body(), "/error/code"), "conflict");

  std::map<std::string, std::string> reasons_a, reasons_b;
  auto in_a = AssignAll("a", 0, 300, &reasons_a);
  auto in_b = AssignAll("b", 0, 300, &reasons_b);
  int only_a = 0, only_b = 0;
  for (int i = 0; i < 300; ++i) {
    std::string user = "user-" + std::to_string(i);
    bool a = !in_a[user].empty(), b = !in_b[user].empty();
    EXPECT_FALSE(a && b) << user << " is in both experiments";
    EXPECT_TRUE(a || b) << user << " is in neither (the shares cover the layer)";
    if (!a) {
      EXPECT_EQ(reasons_a[user], "not_in_layer");
    }
    only_a += a;
    only_b += b;
  }
  EXPECT_GT(only_a, 90);
  EXPECT_GT(only_b, 90);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments x JOIN assignments y USING (user_id) "
                  "JOIN experiments ex ON ex.id = x.experiment_id JOIN experiments ey ON "
                  "ey.id = y.experiment_id WHERE ex.key = 'a' AND ey.key = 'b'"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 300);
  // The user's assignments list holds exactly one of the two.
  testing::Client app = ClientApp();
  r = app.Send(http::verb::get, "/v1/users/user-1/assignments");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(Json(r.body(), "/user_id"), "user-1");
  EXPECT_EQ(Json(r.body(), "/assignments/0/user_id"), "user-1");
  EXPECT_EQ(Json(r.body(), "/assignments/1"), "<missing /assignments/1>");
}

TEST_F(ApiIntegrationTest, EventsAreStoredWithTheAssignedVariant) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(std::string(kTwoVariants), "checkout"));
  auto variants = AssignAll("checkout", 0, 50);
  std::string body = R"({"events":[)";
  for (int i = 0; i < 50; ++i) {
    if (i) body += ',';
    body += R"({"experiment":"checkout","user_id":"user-)" + std::to_string(i) +
            R"(","type":"purchase","value":)" + std::to_string(i) +
            R"(,"properties":{"plan":"pro","n":[1,2]}})";
  }
  body += R"(,{"experiment":"checkout","user_id":"user-1","type":"visit",)"
          R"("ts":"2026-11-20T10:11:12.345Z","event_id":"0B9E4F5A-1C2D-4E3F-8A9B-0C1D2E3F4A5B"})";
  body += "]}";
  // The stack's timestamp window follows the wall clock: keep the explicit ts recent.
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now - std::chrono::hours(1));
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
  body.replace(body.find("2026-11-20T10:11:12"), 19, ts);

  testing::Client app = ClientApp();
  Response r = app.Send(http::verb::post, "/v1/events", body);
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r.body(), R"({"accepted":51})");
  auto rows = sql_->Exec(
      "SELECT e.user_id, v.key, e.value, e.properties->>'plan' FROM events e "
      "JOIN variants v ON v.id = e.variant_id WHERE e.event_type = 'purchase' ORDER BY "
      "e.user_id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 50u);
  for (size_t i = 0; i < rows->size(); ++i) {
    std::string user(rows->text(i, 0));
    EXPECT_EQ(rows->text(i, 1), variants[user]) << user;
    EXPECT_EQ(rows->text(i, 3), "pro");
  }
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE event_id = "
                  "'0b9e4f5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b' AND event_type = 'visit' AND "
                  "user_id = 'user-1' AND to_char(ts AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS.MS') = '" +
                  std::string(ts) + ".345'"),
            1);
}

TEST_F(ApiIntegrationTest, EveryBadInputGetsItsErrorAndStoresNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(std::string(kTwoVariants), "checkout"));
  AssignAll("checkout", 0, 5);
  const auto before = CountAll();

  std::string good_event = R"({"experiment":"checkout","user_id":"user-1","type":"t"})";
  auto events = [&](size_t n, std::string_view last) {
    std::string b = R"({"events":[)";
    for (size_t i = 0; i + 1 < n; ++i) b += good_event + ",";
    return b + std::string(last) + "]}";
  };
  struct Case {
    http::verb method;
    std::string target;
    std::string body;
    std::string token;
    int status;
    std::string code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {http::verb::post, "/v1/experiments", R"({"key":"x",)", kAdmin, 400, "invalid_json", ""},
      {http::verb::post, "/v1/experiments", "\xff\xfe", kAdmin, 400, "invalid_json", ""},
      {http::verb::post, "/v1/experiments", R"({"key":"x"})", kAdmin, 400, "invalid_argument",
       "variants"},
      {http::verb::post, "/v1/experiments",
       R"({"key":"x","variants":[{"key":"a","weight":1},{"key":"b","weight":"2"}]})", kAdmin, 400,
       "invalid_argument", "variants[1].weight"},
      {http::verb::post, "/v1/experiments",
       R"({"key":"x","variants":[{"key":"a","weight":1},{"key":"b","weight":-2}]})", kAdmin, 400,
       "invalid_argument", "variants[1].weight"},
      {http::verb::post, "/v1/experiments",
       R"({"key":"Bad Key!","variants":[{"key":"a","weight":1},{"key":"b","weight":1}]})", kAdmin,
       400, "invalid_argument", "key"},
      {http::verb::post, "/v1/experiments", std::string(kTwoVariants), kAdmin, 409,
       "already_exists", "key"},
      {http::verb::post, "/v1/experiments", std::string(kTwoVariants), kClient, 403, "forbidden",
       ""},
      {http::verb::post, "/v1/experiments", std::string(kTwoVariants), "", 401, "unauthenticated",
       ""},
      {http::verb::post, "/v1/experiments", std::string(kTwoVariants), "guess", 401,
       "unauthenticated", ""},
      {http::verb::post, "/v1/experiments/nope/start", "", kAdmin, 404, "not_found", ""},
      {http::verb::patch, "/v1/experiments/checkout", R"({"traffic":2})", kAdmin, 400,
       "invalid_argument", "traffic"},
      {http::verb::post, "/v1/assign", R"({"user_id":"new-user","experiment":"nope"})", kClient,
       404, "not_found", "experiment"},
      {http::verb::post, "/v1/assign", R"({"user_id":5,"experiment":"checkout"})", kClient, 400,
       "invalid_argument", "user_id"},
      {http::verb::post, "/v1/assign", R"({"experiment":"checkout"})", kClient, 400,
       "invalid_argument", "user_id"},
      {http::verb::post, "/v1/assign", R"({"user_id":"new-user","experiment":"checkout"})", "", 401,
       "unauthenticated", ""},
      {http::verb::post, "/v1/events", events(3, R"({"experiment":"checkout","type":"t"})"),
       kClient, 400, "invalid_argument", "events[2].user_id"},
      {http::verb::post, "/v1/events",
       events(18, R"({"experiment":"checkout","user_id":"never-assigned","type":"t"})"), kClient,
       400, "invalid_argument", "events[17].user_id"},
      {http::verb::post, "/v1/events",
       events(2, R"({"experiment":"nope","user_id":"user-1","type":"t"})"), kClient, 404,
       "not_found", "events[1].experiment"},
      {http::verb::post, "/v1/events",
       events(2, R"({"experiment":"checkout","user_id":"user-1","type":"t","event_id":"x"})"),
       kClient, 400, "invalid_argument", "events[1].event_id"},
      {http::verb::post, "/v1/events",
       events(2, R"({"experiment":"checkout","user_id":"user-1","type":"t","ts":"noon"})"), kClient,
       400, "invalid_argument", "events[1].ts"},
      {http::verb::post, "/v1/events",
       events(2, R"({"experiment":"checkout","user_id":"user-1","type":"t","ts":0})"), kClient, 400,
       "invalid_argument", "events[1].ts"},
      {http::verb::post, "/v1/events",
       events(2, R"({"experiment":"checkout","user_id":"user-1","type":"t","properties":[]})"),
       kClient, 400, "invalid_argument", "events[1].properties"},
      {http::verb::post, "/v1/events", events(10001, good_event), kClient, 400, "invalid_argument",
       "events"},
      {http::verb::post, "/v1/events", R"({"events":)" + std::string(9 << 20, ' ') + "[]}", kClient,
       413, "payload_too_large", ""},
      {http::verb::post, "/v1/events", events(2, good_event), kAdmin.substr(1), 401,
       "unauthenticated", ""},
      {http::verb::get, "/v1/experiments/nope", "", kAdmin, 404, "not_found", ""},
      {http::verb::get, "/v1/nothing-here", "", kAdmin, 404, "not_found", ""},
      {http::verb::delete_, "/v1/experiments/checkout", "", kAdmin, 405, "method_not_allowed", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(http::to_string(c.method)) + " " + c.target + " " +
                 c.body.substr(0, 120));
    testing::Client client(server_->port(), c.token);
    Response r = client.Send(c.method, c.target, c.body);
    EXPECT_EQ(r.result_int(), c.status) << r.body();
    EXPECT_EQ(Json(r.body(), "/error/code"), c.code) << r.body();
    if (!c.field.empty()) {
      EXPECT_EQ(Json(r.body(), "/error/field"), c.field) << r.body();
    }
    if (!c.token.empty()) {
      EXPECT_EQ(r.body().find(c.token), std::string::npos);
    }
    EXPECT_EQ(CountAll(), before);
  }
  // And the same batch without the bad event is accepted.
  testing::Client app = ClientApp();
  Response r = app.Send(http::verb::post, "/v1/events", events(3, good_event));
  EXPECT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(Count("SELECT count(*) FROM events"), before.at("events") + 3);
}

TEST_F(ApiIntegrationTest, ShutdownLetsRequestsInFlightFinish) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(std::string(kTwoVariants), "checkout"));
  AssignAll("checkout", 0, 3);
  // Hold both tables so that an events insert and an assignment batch wait in PostgreSQL.
  auto locker = pg::Connection::Open(db_->dsn());
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE(
      (*locker)->ExecScript("BEGIN; LOCK TABLE events, assignments IN EXCLUSIVE MODE").ok());

  testing::Client events_client = ClientApp();
  testing::Client assign_client = ClientApp();
  auto events_answer = std::async(std::launch::async, [&] {
    return events_client.Send(
        http::verb::post, "/v1/events",
        R"({"events":[{"experiment":"checkout","user_id":"user-1","type":"late"}]})");
  });
  auto assign_answer = std::async(std::launch::async, [&] {
    return assign_client.Send(http::verb::post, "/v1/assign",
                              R"({"user_id":"late-user","experiment":"checkout"})");
  });
  // Both requests are in flight once two backends wait for the lock.
  int waiting = 0;
  for (int i = 0; i < 500 && waiting < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    waiting = static_cast<int>(
        Count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
              "datname = current_database()"));
  }
  ASSERT_EQ(waiting, 2);
  auto stopped = std::async(std::launch::async, [&] { server_->Shutdown(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  EXPECT_ANY_THROW(ClientApp().Send(http::verb::get, "/healthz"));  // no longer accepting
  ASSERT_TRUE((*locker)->ExecScript("COMMIT").ok());

  Response ev = events_answer.get();
  EXPECT_EQ(ev.result_int(), 200) << ev.body();
  EXPECT_EQ(ev.body(), R"({"accepted":1})");
  EXPECT_FALSE(ev.keep_alive());
  Response as = assign_answer.get();
  EXPECT_EQ(as.result_int(), 200) << as.body();
  EXPECT_EQ(Json(as.body(), "/user_id"), "late-user");
  stopped.get();
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE event_type = 'late'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments WHERE user_id = 'late-user'"), 1);
}

TEST_F(ApiIntegrationTest, KeepAliveHealthReadinessAndMetrics) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(std::string(kTwoVariants), "checkout"));
  testing::Client c = ClientApp();
  for (int i = 0; i < 300; ++i) {
    Response r = c.Send(http::verb::post, "/v1/assign",
                        R"({"user_id":"ka-)" + std::to_string(i) + R"(","experiment":"checkout"})");
    ASSERT_EQ(r.result_int(), 200) << r.body();
    ASSERT_TRUE(r.keep_alive());
  }
  EXPECT_EQ(c.Send(http::verb::get, "/healthz").result_int(), 200);
  Response ready = c.Send(http::verb::get, "/readyz");
  EXPECT_EQ(ready.result_int(), 200) << ready.body();
  Response m = c.Send(http::verb::get, "/metrics");
  ASSERT_EQ(m.result_int(), 200);
  const std::string& text = m.body();
  EXPECT_NE(
      text.find(
          R"(splitstream_http_requests_total{route="/v1/assign",method="POST",status="200"} 300)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(splitstream_pg_pool_connections{state="total"} 8)"), std::string::npos);
  EXPECT_NE(text.find(R"(splitstream_pg_pool_connections{state="in_use"} )"), std::string::npos);
  EXPECT_EQ(text.find("splitstream_assign_rows_total 0\n"), std::string::npos);  // rows stored
  EXPECT_NE(text.find("splitstream_assign_rows_total "), std::string::npos);
  EXPECT_EQ(text.find("ka-1"), std::string::npos);  // no raw paths or ids in labels
}

}  // namespace
}  // namespace splitstream::api
