// The real Server over real sockets (port 0) with the fake service: keep-alive, limits,
// asynchronous answers and graceful shutdown.
#include "splitstream/api/server.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "fake_service.h"
#include "http_client.h"

namespace splitstream::api {
namespace {

namespace http = boost::beast::http;

constexpr std::string_view kAdmin = "admin-token-for-tests";
constexpr std::string_view kClient = "client-token-for-tests";

// Client with the admin token by default; Send(method, target, body, token) picks another.
class Client : public testing::Client {
 public:
  explicit Client(uint16_t port) : testing::Client(port, std::string(kAdmin)) {}
  using testing::Client::Send;
  testing::Response Send(http::verb method, std::string target, std::string body,
                         std::string_view token) {
    return SendWith(method, std::move(target), std::move(body), token);
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(size_t max_body = 8 << 20,
                   std::chrono::milliseconds shutdown_grace = std::chrono::seconds(10),
                   std::chrono::milliseconds read_timeout = std::chrono::seconds(60)) {
    ServerOptions opts;
    opts.port = 0;
    opts.threads = 2;
    opts.max_body_bytes = max_body;
    opts.shutdown_grace = shutdown_grace;
    opts.read_timeout = read_timeout;
    opts.admin_token = std::string(kAdmin);
    opts.client_token = std::string(kClient);
    Result<std::unique_ptr<Server>> s = Server::Start(opts, &service_, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    ASSERT_NE(server_->port(), 0);
  }

  void CreateRunningExperiment() {
    Client c(server_->port());
    auto r = c.Send(http::verb::post, "/v1/experiments",
                    R"({"key":"exp","variants":[{"key":"a","weight":1},{"key":"b","weight":1}]})");
    ASSERT_EQ(r.result_int(), 201) << r.body();
    ASSERT_EQ(c.Send(http::verb::post, "/v1/experiments/exp/start").result_int(), 200);
  }

  testing::FakeService service_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, StartRejectsBadOptions) {
  ServerOptions opts;
  opts.host = "localhost.invalid";
  Result<std::unique_ptr<Server>> s = Server::Start(opts, &service_, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "host");
  opts.host = "127.0.0.1";
  opts.port = 0;
  opts.max_body_bytes = 0;
  EXPECT_FALSE(Server::Start(opts, &service_, nullptr).ok());
  opts.max_body_bytes = 1024;
  opts.read_timeout = std::chrono::milliseconds(0);
  s = Server::Start(opts, &service_, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "read_timeout");
  EXPECT_FALSE(Server::Start(ServerOptions{}, nullptr, nullptr).ok());
}

TEST_F(ServerTest, PortInUseIsUnavailable) {
  StartServer();
  ServerOptions opts;
  opts.port = server_->port();
  Result<std::unique_ptr<Server>> s = Server::Start(opts, &service_, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
}

TEST_F(ServerTest, ManyRequestsOnOneKeepAliveConnection) {
  StartServer();
  CreateRunningExperiment();
  Client c(server_->port());
  for (int i = 0; i < 200; ++i) {
    auto r =
        c.Send(http::verb::post, "/v1/assign",
               R"({"user_id":"user-)" + std::to_string(i) + R"(","experiment":"exp"})", kClient);
    ASSERT_EQ(r.result_int(), 200) << r.body();
    ASSERT_TRUE(r.keep_alive());
    ASSERT_EQ(r[http::field::content_type], "application/json");
  }
  auto h = c.Send(http::verb::get, "/healthz", "", "");
  EXPECT_EQ(h.result_int(), 200);
  EXPECT_EQ(h.body(), R"({"status":"ok"})");
  EXPECT_EQ(service_.assigns, 200);
  // The requests were counted under their route pattern.
  auto m = c.Send(http::verb::get, "/metrics", "", "");
  EXPECT_NE(m.body().find(R"(route="/v1/assign",method="POST",status="200"} 200)"),
            std::string::npos)
      << m.body();
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  Client c(server_->port());
  c.WriteRaw(
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.Read().result_int(), 200);
  EXPECT_EQ(c.Read().result_int(), 404);
  EXPECT_EQ(c.Read().body(), R"({"status":"ready"})");
}

TEST_F(ServerTest, OversizeBodyIs413AndClosesTheConnection) {
  StartServer(/*max_body=*/1024);
  Client c(server_->port());
  auto ok = c.Send(http::verb::post, "/v1/events", R"({"events":[]})", kClient);
  EXPECT_EQ(ok.result_int(), 200);
  std::string big = R"({"events":[)" + std::string(4000, ' ') + "]}";
  auto r = c.Send(http::verb::post, "/v1/events", big, kClient);
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_NE(r.body().find(R"("code":"payload_too_large")"), std::string::npos);
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(c.ClosedByServer());
  EXPECT_EQ(service_.writes, 0);
}

TEST_F(ServerTest, OversizeBodyWithoutAuthIsStill413) {
  // The body limit is enforced while reading, before routing or auth.
  StartServer(1024);
  Client c(server_->port());
  auto r = c.Send(http::verb::post, "/v1/experiments", std::string(100000, 'x'), "");
  EXPECT_EQ(r.result_int(), 413);
}

TEST_F(ServerTest, MalformedHttpIs400) {
  StartServer();
  Client c(server_->port());
  c.WriteRaw("GARBAGE\x01 / HTTP/1.1\r\n\r\n");
  auto r = c.Read();
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_NE(r.body().find("invalid_argument"), std::string::npos);
}

TEST_F(ServerTest, HugeHeadersAreRejected) {
  StartServer();
  Client c(server_->port());
  c.WriteRaw("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_EQ(c.Read().result_int(), 413);
}

TEST_F(ServerTest, IdleAndStalledConnectionsAreClosedAfterTheReadTimeout) {
  StartServer(8 << 20, std::chrono::seconds(10), std::chrono::milliseconds(500));
  Client idle(server_->port());  // answered, then idle on a keep-alive connection
  EXPECT_EQ(idle.Send(http::verb::get, "/healthz", "", "").result_int(), 200);
  Client stalled(server_->port());  // half a request, never finished
  stalled.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  Client busy(server_->port());  // kept busy: each request renews its deadline
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_EQ(busy.Send(http::verb::get, "/healthz", "", "").result_int(), 200) << i;
  }
  // 1.5 s later: the others' deadline (0.5 s) and a sweep (every second) have passed.
  EXPECT_TRUE(idle.ClosedByServerWithin(std::chrono::seconds(2)));
  EXPECT_TRUE(stalled.ClosedByServerWithin(std::chrono::seconds(2)));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(busy.Send(http::verb::get, "/healthz", "", "").result_int(), 200);
}

TEST_F(ServerTest, AuthOverTheWire) {
  StartServer();
  Client c(server_->port());
  auto r = c.Send(http::verb::get, "/v1/experiments", "", "");
  EXPECT_EQ(r.result_int(), 401);
  EXPECT_EQ(r[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(c.Send(http::verb::get, "/v1/experiments", "", kClient).result_int(), 403);
  EXPECT_EQ(c.Send(http::verb::get, "/v1/experiments", "", kAdmin).result_int(), 200);
  r = c.Send(http::verb::put, "/v1/experiments", "", kAdmin);
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[http::field::allow], "GET, POST");
}

// The dashboard's files come without a token and with the headers that keep a browser from
// running anything but them; API answers carry none of those headers.
TEST_F(ServerTest, TheDashboardIsServedWithBrowserSecurityHeaders) {
  StartServer();
  Client c(server_->port());
  auto r = c.Send(http::verb::get, "/", "", "");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(r.body().find("<script type=\"module\" src=\"/dashboard.js\">"), std::string::npos);
  std::string csp(r["Content-Security-Policy"]);
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(r["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(r["Referrer-Policy"], "no-referrer");
  r = c.Send(http::verb::get, "/dashboard.js", "", "");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_NE(r.body().find("textContent"), std::string::npos);
  r = c.Send(http::verb::get, "/dashboard.css", "", "");
  EXPECT_EQ(r[http::field::content_type], "text/css; charset=utf-8");
  r = c.Send(http::verb::get, "/healthz", "", "");
  EXPECT_EQ(r["Content-Security-Policy"], "");
}

// A burst of answers from the batcher's answering thread (one group commit answers many requests at
// once) is delivered together, each to the connection that asked.
TEST_F(ServerTest, ABurstOfAnswersFromTheBatcherReachesEachItsOwnConnection) {
  StartServer();
  CreateRunningExperiment();
  service_.Hold();
  constexpr int kClients = 40;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::future<testing::Response>> answers;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(server_->port()));
    Client* c = clients.back().get();
    answers.push_back(std::async(std::launch::async, [c, i] {
      return c->Send(http::verb::post, "/v1/assign",
                     R"({"user_id":"burst-)" + std::to_string(i) + R"(","experiment":"exp"})",
                     kClient);
    }));
  }
  for (int i = 0; i < 500 && service_.Queued() < kClients; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(service_.Queued(), static_cast<size_t>(kClients));
  service_.Release();
  for (int i = 0; i < kClients; ++i) {
    testing::Response r = answers[i].get();
    EXPECT_EQ(r.result_int(), 200) << r.body();
    EXPECT_NE(r.body().find(R"("user_id":"burst-)" + std::to_string(i) + R"(")"), std::string::npos)
        << "connection " << i << " got " << r.body();
    EXPECT_TRUE(r.keep_alive());
  }
  // The connections stay usable.
  EXPECT_EQ(clients[0]->Send(http::verb::get, "/healthz", "", "").result_int(), 200);
}

// A request that waits on the database runs off the event loop: with one event-loop
// thread, other connections are still served meanwhile.
TEST_F(ServerTest, ARequestWaitingOnTheDatabaseHoldsUpNoOtherConnection) {
  ServerOptions opts;
  opts.port = 0;
  opts.threads = 1;
  opts.client_token = std::string(kClient);
  auto s = Server::Start(opts, &service_, nullptr);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  server_ = std::move(*s);
  service_.HoldEvents();
  Client slow(server_->port());
  auto events = std::async(std::launch::async, [&] {
    return slow.Send(http::verb::post, "/v1/events",
                     R"({"events":[{"experiment":"exp","user_id":"u","type":"view"}]})", kClient);
  });
  for (int i = 0; i < 500 && service_.EventsWaiting() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(service_.EventsWaiting(), 1);
  // Answered while the events request waits (a blocked event loop would never answer).
  Client other(server_->port());
  auto health = std::async(std::launch::async,
                           [&] { return other.Send(http::verb::get, "/healthz", "", ""); });
  const std::future_status health_status = health.wait_for(std::chrono::seconds(5));
  const std::future_status events_status = events.wait_for(std::chrono::milliseconds(0));
  service_.ReleaseEvents();  // before any check can end the test with both still waiting
  EXPECT_EQ(health_status, std::future_status::ready);
  EXPECT_EQ(events_status, std::future_status::timeout);
  EXPECT_EQ(health.get().result_int(), 200);
  EXPECT_EQ(events.get().result_int(), 200);
}

TEST_F(ServerTest, ShutdownLetsARequestInFlightFinish) {
  StartServer();
  CreateRunningExperiment();
  Client idle(server_->port());  // an idle keep-alive connection must not delay shutdown
  EXPECT_EQ(idle.Send(http::verb::get, "/healthz", "", "").result_int(), 200);

  service_.Hold();
  Client c(server_->port());
  std::future<testing::Response> answer = std::async(std::launch::async, [&] {
    return c.Send(http::verb::post, "/v1/assign", R"({"user_id":"late","experiment":"exp"})",
                  kClient);
  });
  // Wait until the assignment is queued in the "batcher".
  for (int i = 0; i < 500 && service_.Queued() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(service_.Queued(), 1u);
  auto started = std::chrono::steady_clock::now();
  std::thread stopper([&] { server_->Shutdown(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // New connections are refused once shutdown started.
  EXPECT_ANY_THROW(Client(server_->port()).Send(http::verb::get, "/healthz", "", ""));
  EXPECT_TRUE(idle.ClosedByServer());
  service_.Release();
  auto r = answer.get();
  EXPECT_EQ(r.result_int(), 200) << r.body();
  EXPECT_NE(r.body().find(R"("user_id":"late")"), std::string::npos);
  EXPECT_FALSE(r.keep_alive());
  stopper.join();
  server_->Wait();  // returns at once: already stopped
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(ServerTest, DestroyingTheServerDropsLateAnswers) {
  StartServer(8 << 20, std::chrono::milliseconds(500));
  CreateRunningExperiment();
  service_.Hold();
  auto c = std::make_unique<Client>(server_->port());
  std::thread sender([&] {
    try {
      c->Send(http::verb::post, "/v1/assign", R"({"user_id":"x","experiment":"exp"})", kClient);
    } catch (const std::exception&) {
      // The connection is closed without an answer: expected.
    }
  });
  for (int i = 0; i < 500 && service_.Queued() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(service_.Queued(), 1u);
  // The destructor shuts down, waits out the grace period for the held assignment (0.5 s here),
  // and closes the gate; the callback is released only after the server is gone.
  const auto started = std::chrono::steady_clock::now();
  std::thread destroyer([&] { server_.reset(); });
  destroyer.join();
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, std::chrono::milliseconds(500));
  EXPECT_LT(took, std::chrono::seconds(5)) << "the shutdown grace was not the one configured";
  service_.Release();  // the callback now finds the gate closed: no crash, no answer
  service_.Shutdown();
  sender.join();
}

}  // namespace
}  // namespace splitstream::api
