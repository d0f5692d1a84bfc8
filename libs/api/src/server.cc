// The transport: Boost.Beast HTTP/1.1 over Asio. This is the only translation unit of the
// library that includes Beast (it is slow to compile); everything it does with a request
// is in Router.
//
// Threading model: `threads` workers run one io_context. Each connection is a Session on
// its own strand, so its handlers never run concurrently. A request is read, handed to the
// Router, and the Router's answer is dispatched back to the strand — inline for routes
// that answer before Handle() returns, posted for /v1/assign, whose answer comes from the
// service's batcher thread. Answers from other threads are coalesced (ServerImpl::Deliver):
// the first of a burst (a group-commit batch answers dozens of requests at once) posts one
// drain to the io_context, and the worker that runs it hands each answer to its session's
// strand, inline when that strand is idle: one wake-up per burst instead of one per answer.
// The next request on a keep-alive connection is read only after the response was written.
//
// Lifetime: sessions are held by the server's registry until they finish, so a response
// that arrives later from another thread finds them through a weak_ptr. Such callbacks pass
// through a Gate that the destructor closes before the io_context goes away; a callback
// after that is dropped.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "errors.h"
#include "metrics.h"
#include "router.h"
#include "splitstream/api/server.h"
#include "splitstream/core/strings.h"

namespace splitstream::api {

Server::~Server() = default;

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

// Reading a request (and waiting for it on an idle keep-alive connection).
constexpr auto kReadTimeout = std::chrono::seconds(60);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
// After a 413 or a malformed request: how long the rest of the client's bytes are read and
// dropped before closing, so that closing does not reset the connection before the client
// has read the error response.
constexpr auto kDrainTimeout = std::chrono::seconds(2);
constexpr uint32_t kHeaderLimit = 16 * 1024;

beast::string_view Sv(std::string_view s) { return beast::string_view(s.data(), s.size()); }

// Callbacks from threads outside the io_context take the lock shared; the destructor takes
// it exclusively to close the gate before destroying the io_context.
struct Gate {
  std::shared_mutex mu;
  bool open = true;  // GUARDED_BY(mu)
};

class ServerImpl;
class Session;

// The session whose request this thread is handing to the Router right now, if any.
thread_local Session* t_handling = nullptr;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerImpl* server) : stream_(std::move(socket)), server_(server) {}

  void Start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::ReadRequest, shared_from_this()));
  }

  // Runs on the strand: closes an idle connection now, a busy one after its response.
  void OnShutdown() {
    stopping_ = true;
    if (!busy_) Close();
  }

  net::any_io_executor executor() { return stream_.get_executor(); }
  // On the strand: the answer to the request in flight, from ServerImpl::Deliver.
  void Answer(HttpResponse r) { Respond(std::move(r), false, false); }

 private:
  void ReadRequest();
  void OnRead(beast::error_code ec, size_t bytes);
  Responder MakeResponder();
  void Respond(HttpResponse r, bool close, bool drain);
  void OnWrite(bool close, bool drain, beast::error_code ec, size_t bytes);
  void DrainAndClose();
  void DrainSome();
  void Close();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;  // lives until its write completes
  std::array<char, 16384> drain_buf_;
  ServerImpl* server_;
  // Strand-only state.
  bool busy_ = false;      // a request is being handled or its response written
  bool stopping_ = false;  // the server is shutting down: no further requests
  bool closed_ = false;
  bool keep_alive_ = true;
  std::string method_;
  std::string target_;
  SteadyClock::time_point started_;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(ServerOptions options, experiments::Service* service, pg::Pool* pool)
      : options_(std::move(options)),
        router_(RouterOptions{options_.admin_token, options_.client_token, options_.results},
                service, pool, &metrics_),
        acceptor_(net::make_strand(ioc_)) {}

  ~ServerImpl() override {
    Shutdown();
    {
      std::unique_lock<std::shared_mutex> lock(gate_->mu);
      gate_->open = false;
    }
    std::unordered_map<Session*, std::shared_ptr<Session>> sessions;
    std::vector<std::pair<std::shared_ptr<Session>, HttpResponse>> undelivered;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sessions.swap(sessions_);
    }
    {
      std::lock_guard<std::mutex> lock(outbox_mu_);
      undelivered.swap(outbox_);
    }
    sessions.clear();  // while the io_context still exists
    undelivered.clear();
  }

  Status Listen() {
    if (options_.max_body_bytes == 0) {
      return Status::InvalidArgument("max_body_bytes must be positive", "max_body_bytes");
    }
    if (options_.threads < 0) {
      return Status::InvalidArgument("threads must not be negative", "threads");
    }
    beast::error_code ec;
    net::ip::address address = net::ip::make_address(options_.host, ec);
    if (ec) {
      return Status::InvalidArgument(
          "host must be an IP address: " + SanitizeForMessage(options_.host), "host");
    }
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable(
          fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message()));
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return Status::Ok();
  }

  void Run() {
    work_.emplace(net::make_work_guard(ioc_));
    Accept();
    int n = options_.threads > 0
                ? options_.threads
                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          try {
            ioc_.run();
            return;
          } catch (const std::exception& e) {
            spdlog::error("http worker: unexpected exception: {}", e.what());
          }
        }
      });
    }
    spdlog::info("http: listening on {}:{} with {} threads", options_.host, port_, n);
  }

  uint16_t port() const override { return port_; }

  void Shutdown() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (shutdown_started_) {
        cv_.wait(lock, [&] { return stopped_; });
        return;
      }
      shutdown_started_ = true;
      stopping_.store(true);
      for (auto& [ptr, session] : sessions_) {
        net::post(session->executor(), [s = session] { s->OnShutdown(); });
      }
    }
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, options_.shutdown_grace, [&] { return sessions_.empty(); })) {
        spdlog::warn("http: {} connections still busy after {} ms; stopping anyway",
                     sessions_.size(), options_.shutdown_grace.count());
      }
    }
    work_.reset();
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    spdlog::info("http: stopped");
  }

  void Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopped_; });
  }

  // For sessions.
  const Router& router() const { return router_; }
  Metrics& metrics() { return metrics_; }
  const std::shared_ptr<Gate>& gate() const { return gate_; }
  size_t max_body_bytes() const { return options_.max_body_bytes; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  // An answer from a thread outside the io_context (see the top of this file). The caller
  // holds the gate open.
  void Deliver(std::shared_ptr<Session> session, HttpResponse response) {
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(outbox_mu_);
      post = outbox_.empty();  // else the drain posted by the first answer is still due
      outbox_.emplace_back(std::move(session), std::move(response));
    }
    if (post) net::post(ioc_, [this] { DrainOutbox(); });
  }

  void Unregister(Session* session) {
    std::shared_ptr<Session> keep;  // destroyed outside the lock
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sessions_.find(session);
      if (it == sessions_.end()) return;
      keep = std::move(it->second);
      sessions_.erase(it);
    }
    cv_.notify_all();
  }

 private:
  // On a worker: each answer to its session's strand (inline when the strand is idle).
  void DrainOutbox() {
    std::vector<std::pair<std::shared_ptr<Session>, HttpResponse>> answers;
    {
      std::lock_guard<std::mutex> lock(outbox_mu_);
      answers.swap(outbox_);
    }
    for (auto& [session, response] : answers) {
      net::any_io_executor ex = session->executor();
      net::dispatch(ex, [s = std::move(session), r = std::move(response)]() mutable {
        s->Answer(std::move(r));
      });
    }
  }

  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&ServerImpl::OnAccept, this));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Typically EMFILE: keep accepting; the failed connection is gone.
      spdlog::warn("http: accept failed: {}", ec.message());
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto session = std::make_shared<Session>(std::move(socket), this);
      bool registered = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!shutdown_started_) {
          sessions_.emplace(session.get(), session);
          registered = true;
        }
      }
      if (registered) session->Start();
    }
    if (!stopping()) Accept();
  }

  ServerOptions options_;
  Metrics metrics_;
  Router router_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  // Declared before everything holding sockets so that it is destroyed after them.
  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;  // used on its strand only
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};

  std::mutex outbox_mu_;
  // Answers waiting for the drain; not empty exactly while a drain is posted and not yet run.
  std::vector<std::pair<std::shared_ptr<Session>, HttpResponse>> outbox_;  // GUARDED_BY(outbox_mu_)

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;  // GUARDED_BY(mu_)
  bool shutdown_started_ = false;                                    // GUARDED_BY(mu_)
  bool stopped_ = false;                                             // GUARDED_BY(mu_)
};

void Session::ReadRequest() {
  if (stopping_ || server_->stopping()) return Close();
  parser_.emplace();
  parser_->body_limit(server_->max_body_bytes());
  parser_->header_limit(kHeaderLimit);
  stream_.expires_after(kReadTimeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void Session::OnRead(beast::error_code ec, size_t) {
  if (closed_) return;
  if (ec) {
    if (ec == http::error::body_limit) {
      busy_ = true;
      method_ = std::string(parser_->get().method_string());
      started_ = SteadyClock::now();
      return Respond(Router::Error(Status::PayloadTooLarge(fmt::format(
                         "the request body exceeds {} bytes", server_->max_body_bytes()))),
                     /*close=*/true, /*drain=*/true);
    }
    if (ec == http::error::header_limit) {
      busy_ = true;
      started_ = SteadyClock::now();
      return Respond(Router::Error(Status::PayloadTooLarge(
                         fmt::format("the request headers exceed {} bytes", kHeaderLimit))),
                     true, true);
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      busy_ = true;
      started_ = SteadyClock::now();
      return Respond(
          Router::Error(Status::InvalidArgument("malformed HTTP request: " + ec.message())), true,
          true);
    }
    // End of stream, timeout, reset, or cancelled by shutdown: nobody to answer.
    return Close();
  }
  http::request<http::string_body>& req = parser_->get();
  busy_ = true;
  started_ = SteadyClock::now();
  keep_alive_ = req.keep_alive();
  method_ = std::string(req.method_string());
  HttpRequest request;
  request.method = method_;
  request.target = std::string(req.target());
  target_ = request.target;  // for the access log; sanitized only when a line is written
  auto auth = req.find(http::field::authorization);
  if (auth != req.end()) request.authorization = std::string(auth->value());
  request.body = std::move(req.body());
  stream_.expires_never();
  t_handling = this;
  server_->router().Handle(std::move(request), MakeResponder());
  t_handling = nullptr;
}

Responder Session::MakeResponder() {
  return [raw = this, weak = weak_from_this(), gate = server_->gate()](HttpResponse r) {
    // Fast path: answered inside Handle() on this session's own strand, where the server
    // is certainly alive and no other handler of the session can run.
    if (t_handling == raw) return raw->Respond(std::move(r), false, false);
    std::shared_lock<std::shared_mutex> lock(gate->mu);
    if (!gate->open) return;  // the server is being destroyed
    std::shared_ptr<Session> self = weak.lock();
    if (!self) return;
    ServerImpl* server = self->server_;
    server->Deliver(std::move(self), std::move(r));
  };
}

void Session::Respond(HttpResponse r, bool close, bool drain) {
  if (closed_ || !busy_) return;  // a second answer to one request is a bug; drop it
  SteadyClock::duration elapsed = SteadyClock::now() - started_;
  server_->metrics().Record(r.route, method_, r.status, elapsed);
  auto level = r.status >= 500 ? spdlog::level::warn : spdlog::level::debug;
  if (spdlog::should_log(level)) {
    std::string_view target = target_;
    std::string path = SanitizeForMessage(target.substr(0, target.find('?')));  // no query
    spdlog::log(level, "http {} {} {} {:.3f}ms route={}", method_, path, r.status,
                std::chrono::duration<double, std::milli>(elapsed).count(), RoutePattern(r.route));
  }
  res_ = {};
  res_.version(11);
  res_.result(static_cast<http::status>(r.status));
  res_.set(http::field::content_type, Sv(r.content_type));
  if (!r.allow.empty()) res_.set(http::field::allow, Sv(r.allow));
  if (r.bearer_challenge) res_.set(http::field::www_authenticate, "Bearer");
  if (r.page) {
    // The dashboard runs only its own files, talks only to this server, and is never framed.
    res_.set("Content-Security-Policy",
             "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
             "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    res_.set("X-Content-Type-Options", "nosniff");
    res_.set("Referrer-Policy", "no-referrer");
    res_.set(http::field::cache_control, "no-cache");
  }
  res_.body() = std::move(r.body);
  res_.keep_alive(keep_alive_ && !close && !stopping_ && !server_->stopping());
  res_.prepare_payload();
  bool will_close = !res_.keep_alive();
  stream_.expires_after(kWriteTimeout);
  http::async_write(
      stream_, res_,
      beast::bind_front_handler(&Session::OnWrite, shared_from_this(), will_close, drain));
}

void Session::OnWrite(bool close, bool drain, beast::error_code ec, size_t) {
  busy_ = false;
  if (ec) return Close();
  if (close) return drain ? DrainAndClose() : Close();
  ReadRequest();
}

void Session::DrainAndClose() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  // One deadline for the whole drain: it stays in force for every read below.
  stream_.expires_after(kDrainTimeout);
  DrainSome();
}

void Session::DrainSome() {
  stream_.async_read_some(net::buffer(drain_buf_),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec || self->closed_) return self->Close();
                            self->DrainSome();
                          });
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  server_->Unregister(this);
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, experiments::Service* service,
                                              pg::Pool* pool) {
  if (service == nullptr) return Status::InvalidArgument("no experiments service", "service");
  auto server = std::make_unique<ServerImpl>(std::move(options), service, pool);
  SPLITSTREAM_RETURN_IF_ERROR(server->Listen());
  server->Run();
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace splitstream::api
