// The transport: Boost.Beast's HTTP/1.1 parser over Asio sockets. This is the only
// translation unit of the library that includes Beast (it is slow to compile); everything it
// does with a request is in Router.
//
// Threading model (the one of nginx's workers): `threads` workers, each running its own
// io_context on its own thread. The acceptor runs on worker 0 and hands each new connection
// to the next worker in turn; a connection's Session lives on that worker for good, so its
// handlers never run concurrently and need no strand, and no handler moves between threads.
// An event loop must never wait, or every connection on it waits too: a request is read,
// and the Router handles it inline when it cannot block (assignment, health, metrics, the
// dashboard's files); the others (Router::MayBlock: events, experiments, results, ...) go to
// the blocking pool (`blocking_threads`). Answers from other threads — the pool's, and the
// service's for /v1/assign (its batcher's answering thread) — are coalesced per worker
// (ServerImpl::Deliver): the first of a burst (a group-commit batch answers dozens of
// requests at once) posts one drain to the worker, which then writes each answer: one
// wake-up per burst and worker, not per answer. The next request on a keep-alive connection
// is read only after the response was written.
//
// Timeouts: each Session keeps one deadline (reading a request, writing a response, draining
// after an error; none while the service works on a request), and each worker's sweep closes
// the sessions past theirs once a second. A timer per operation (beast::tcp_stream) costs two
// timer-queue updates and an extra handler per request.
//
// Responses are formatted by Session::Respond into one header buffer and sent with the body
// in one gathered write.
//
// Lifetime: sessions are held by the server's registry until they finish, so a response
// that arrives later from another thread finds them through a weak_ptr. Such callbacks pass
// through a Gate that the destructor closes before the io_contexts go away; a callback
// after that is dropped.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
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

// Writing a response.
constexpr auto kWriteTimeout = std::chrono::seconds(30);
// After a 413 or a malformed request: how long the rest of the client's bytes are read and
// dropped before closing, so that closing does not reset the connection before the client
// has read the error response.
constexpr auto kDrainTimeout = std::chrono::seconds(2);
// How often each worker looks for sessions past their deadline.
constexpr auto kSweepInterval = std::chrono::seconds(1);
constexpr uint32_t kHeaderLimit = 16 * 1024;

// Callbacks from threads outside the workers take the lock shared; the destructor takes it
// exclusively to close the gate before destroying the io_contexts.
struct Gate {
  std::shared_mutex mu;
  bool open = true;  // GUARDED_BY(mu)
};

class ServerImpl;
class Session;

using Answers = std::vector<std::pair<std::shared_ptr<Session>, HttpResponse>>;

// One thread with its own io_context. `sessions` is touched on that thread only.
struct Worker {
  net::io_context ioc{1};  // one thread: handlers it posts itself skip the shared queue
  net::steady_timer sweep{ioc};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::thread thread;
  std::unordered_set<Session*> sessions;  // open sessions, for the sweep

  std::mutex outbox_mu;
  // Answers waiting for the drain; not empty exactly while a drain is posted and not yet run.
  Answers outbox;  // GUARDED_BY(outbox_mu)
};

// The session whose request this thread is handing to the Router right now, if any.
thread_local Session* t_handling = nullptr;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerImpl* server, Worker* worker)
      : socket_(std::move(socket)), server_(server), worker_(worker) {}

  // From the acceptor's thread: the session starts on its own worker.
  void Start() {
    net::post(worker_->ioc, [self = shared_from_this()] {
      if (self->closed_) return;  // shut down before it started
      self->worker_->sessions.insert(self.get());
      self->ReadRequest();
    });
  }

  // Closes an idle connection now, a busy one after its response.
  void OnShutdown() {
    stopping_ = true;
    if (!busy_) Close();
  }

  Worker* worker() const { return worker_; }
  // The answer to the request in flight, from ServerImpl's drain of the worker's outbox.
  void Answer(HttpResponse r) { Respond(std::move(r), false, false); }
  // From the worker's sweep.
  bool Expired(SteadyClock::time_point now) const { return now >= deadline_; }
  void Close();

 private:
  void ReadRequest();
  void ParseRequest();
  void OnRead(beast::error_code ec, size_t bytes);
  Responder MakeResponder();
  void Respond(HttpResponse r, bool close, bool drain);
  void OnWrite(bool close, bool drain, beast::error_code ec, size_t bytes);
  void DrainAndClose();
  void DrainSome();

  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;  // the status line and headers being written
  std::string body_;  // the body being written
  std::array<char, 16384> drain_buf_;
  ServerImpl* server_;
  Worker* worker_;
  // Worker-thread state.
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
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
                service, pool, &metrics_) {}

  ~ServerImpl() override {
    Shutdown();
    {
      std::unique_lock<std::shared_mutex> lock(gate_->mu);
      gate_->open = false;
    }
    std::unordered_map<Session*, std::shared_ptr<Session>> sessions;
    std::vector<Answers> undelivered;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sessions.swap(sessions_);
    }
    for (auto& w : workers_) {
      std::lock_guard<std::mutex> lock(w->outbox_mu);
      undelivered.push_back(std::move(w->outbox));
      w->outbox.clear();
    }
    sessions.clear();  // while the io_contexts still exist
    undelivered.clear();
  }

  Status Listen() {
    if (options_.max_body_bytes == 0) {
      return Status::InvalidArgument("max_body_bytes must be positive", "max_body_bytes");
    }
    if (options_.threads < 0) {
      return Status::InvalidArgument("threads must not be negative", "threads");
    }
    if (options_.blocking_threads < 1) {
      return Status::InvalidArgument("blocking_threads must be positive", "blocking_threads");
    }
    if (options_.read_timeout <= std::chrono::milliseconds::zero()) {
      return Status::InvalidArgument("read_timeout must be positive", "read_timeout");
    }
    beast::error_code ec;
    net::ip::address address = net::ip::make_address(options_.host, ec);
    if (ec) {
      return Status::InvalidArgument(
          "host must be an IP address: " + SanitizeForMessage(options_.host), "host");
    }
    int n = options_.threads > 0
                ? options_.threads
                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
    acceptor_.emplace(workers_[0]->ioc);
    tcp::endpoint endpoint(address, options_.port);
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable(
          fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message()));
    }
    port_ = acceptor_->local_endpoint(ec).port();
    return Status::Ok();
  }

  void Run() {
    blocking_.emplace(static_cast<size_t>(options_.blocking_threads));
    for (auto& w : workers_) {
      w->work.emplace(net::make_work_guard(w->ioc));
      Sweep(*w);
    }
    Accept();
    for (auto& w : workers_) {
      w->thread = std::thread([&ioc = w->ioc] {
        for (;;) {
          try {
            ioc.run();
            return;
          } catch (const std::exception& e) {
            spdlog::error("http worker: unexpected exception: {}", e.what());
          }
        }
      });
    }
    spdlog::info("http: listening on {}:{} with {} threads", options_.host, port_, workers_.size());
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
        net::post(session->worker()->ioc, [s = session] { s->OnShutdown(); });
      }
    }
    if (acceptor_) {
      net::post(workers_[0]->ioc, [this] {
        beast::error_code ec;
        acceptor_->close(ec);
      });
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, options_.shutdown_grace, [&] { return sessions_.empty(); })) {
        spdlog::warn("http: {} connections still busy after {} ms; stopping anyway",
                     sessions_.size(), options_.shutdown_grace.count());
      }
    }
    for (auto& w : workers_) {
      w->work.reset();
      w->ioc.stop();
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
    if (blocking_) {
      blocking_->stop();  // requests not started yet are dropped; running ones finish
      blocking_->join();
    }
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
  SteadyClock::duration read_timeout() const { return options_.read_timeout; }
  net::thread_pool& blocking() { return *blocking_; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  // An answer from a thread outside the workers (see the top of this file). The caller holds
  // the gate open.
  void Deliver(std::shared_ptr<Session> session, HttpResponse response) {
    Worker* w = session->worker();
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(w->outbox_mu);
      post = w->outbox.empty();  // else the drain posted by the first answer is still due
      w->outbox.emplace_back(std::move(session), std::move(response));
    }
    if (post) net::post(w->ioc, [w] { DrainOutbox(*w); });
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
  // On the worker: each answer to its session.
  static void DrainOutbox(Worker& w) {
    Answers answers;
    {
      std::lock_guard<std::mutex> lock(w.outbox_mu);
      answers.swap(w.outbox);
    }
    for (auto& [session, response] : answers) session->Answer(std::move(response));
  }

  // On the worker, once a second: closes the sessions past their deadline.
  void Sweep(Worker& w) {
    w.sweep.expires_after(kSweepInterval);
    w.sweep.async_wait([this, &w](beast::error_code ec) {
      if (ec) return;
      const SteadyClock::time_point now = SteadyClock::now();
      std::vector<std::shared_ptr<Session>> expired;
      for (Session* s : w.sessions) {
        if (s->Expired(now)) expired.push_back(s->shared_from_this());
      }
      for (const std::shared_ptr<Session>& s : expired) s->Close();
      Sweep(w);
    });
  }

  // On worker 0. Connections go to the workers in turn.
  void Accept() {
    Worker* w = workers_[next_worker_].get();
    next_worker_ = (next_worker_ + 1) % workers_.size();
    acceptor_->async_accept(w->ioc, [this, w](beast::error_code ec, tcp::socket socket) {
      OnAccept(ec, std::move(socket), w);
    });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket, Worker* worker) {
    if (ec == net::error::operation_aborted || !acceptor_->is_open()) return;
    if (ec) {
      // Typically EMFILE: keep accepting; the failed connection is gone.
      spdlog::warn("http: accept failed: {}", ec.message());
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto session = std::make_shared<Session>(std::move(socket), this, worker);
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
  // Declared before everything holding sockets so that they are destroyed after them.
  std::vector<std::unique_ptr<Worker>> workers_;
  std::optional<tcp::acceptor> acceptor_;     // used on worker 0 only
  std::optional<net::thread_pool> blocking_;  // requests that may wait on a database
  size_t next_worker_ = 0;                    // worker 0 only
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};

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
  deadline_ = SteadyClock::now() + server_->read_timeout();
  if (buffer_.size() > 0) return ParseRequest();  // pipelined: already here
  // Wait until the socket is readable, then read: Asio would otherwise try a read at once,
  // and right after a response the client's next request is hardly ever there yet (one
  // failed recv per request).
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->OnRead(ec, 0);
    self->ParseRequest();
  });
}

void Session::ParseRequest() {
  if (closed_) return;
  http::async_read(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t bytes) { self->OnRead(ec, bytes); });
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
    // End of stream, reset, or closed by the sweep or by shutdown: nobody to answer.
    return Close();
  }
  http::request<http::string_body>& req = parser_->get();
  busy_ = true;
  started_ = SteadyClock::now();
  deadline_ = SteadyClock::time_point::max();  // the service takes the time it takes
  keep_alive_ = req.keep_alive();
  method_ = std::string(req.method_string());
  HttpRequest request;
  request.method = method_;
  request.target = std::string(req.target());
  target_ = request.target;  // for the access log; sanitized only when a line is written
  auto auth = req.find(http::field::authorization);
  if (auth != req.end()) request.authorization = std::string(auth->value());
  request.body = std::move(req.body());
  if (Router::MayBlock(request.target)) {
    // Off the event loop; the answer comes back through ServerImpl::Deliver.
    net::post(server_->blocking(),
              [server = server_, request = std::move(request), done = MakeResponder()]() mutable {
                server->router().Handle(std::move(request), std::move(done));
              });
    return;
  }
  t_handling = this;
  server_->router().Handle(std::move(request), MakeResponder());
  t_handling = nullptr;
}

Responder Session::MakeResponder() {
  return [raw = this, weak = weak_from_this(), gate = server_->gate()](HttpResponse r) {
    // Fast path: answered inside Handle() on this session's own worker, where the server is
    // certainly alive and no other handler of the session can run.
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
  const bool keep_alive = keep_alive_ && !close && !stopping_ && !server_->stopping();
  const beast::string_view reason = http::obsolete_reason(static_cast<http::status>(r.status));
  head_.clear();  // keeps its capacity: no allocation after the first response
  auto out = std::back_inserter(head_);
  fmt::format_to(out, "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", r.status,
                 std::string_view(reason.data(), reason.size()), r.content_type, r.body.size());
  if (!r.allow.empty()) fmt::format_to(out, "Allow: {}\r\n", r.allow);
  if (r.bearer_challenge) head_ += "WWW-Authenticate: Bearer\r\n";
  if (r.page) {
    // The dashboard runs only its own files, talks only to this server, and is never framed.
    head_ +=
        "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "Cache-Control: no-cache\r\n";
  }
  if (!keep_alive) head_ += "Connection: close\r\n";
  head_ += "\r\n";
  body_ = std::move(r.body);
  deadline_ = SteadyClock::now() + kWriteTimeout;
  const std::array<net::const_buffer, 2> buffers{net::buffer(head_), net::buffer(body_)};
  net::async_write(
      socket_, buffers,
      [self = shared_from_this(), close = !keep_alive, drain](beast::error_code ec, size_t bytes) {
        self->OnWrite(close, drain, ec, bytes);
      });
}

void Session::OnWrite(bool close, bool drain, beast::error_code ec, size_t) {
  busy_ = false;
  if (ec) return Close();
  if (close) return drain ? DrainAndClose() : Close();
  ReadRequest();
}

void Session::DrainAndClose() {
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  // One deadline for the whole drain: it stays in force for every read below.
  deadline_ = SteadyClock::now() + kDrainTimeout;
  DrainSome();
}

void Session::DrainSome() {
  socket_.async_read_some(net::buffer(drain_buf_),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec || self->closed_) return self->Close();
                            self->DrainSome();
                          });
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  worker_->sessions.erase(this);
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
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
