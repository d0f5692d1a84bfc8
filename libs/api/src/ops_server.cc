// A synchronous Beast server on one thread: enough for Prometheus scrapes and health checks.
#include "splitstream/api/ops_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <thread>

namespace splitstream::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class OpsServerImpl final : public OpsServer {
 public:
  explicit OpsServerImpl(OpsServerOptions options) : options_(std::move(options)) {}
  ~OpsServerImpl() override { Shutdown(); }

  Status Bind() {
    beast::error_code ec;
    auto address = net::ip::make_address(options_.host, ec);
    if (ec) return Status::InvalidArgument("bad listen address " + options_.host, "http_addr");
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(16, ec);
    if (ec) {
      return Status::Unavailable(
          fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  void Shutdown() override {
    if (stopping_.exchange(true)) return;
    beast::error_code ec;
    acceptor_.cancel(ec);
    acceptor_.close(ec);
    // A blocking accept() is woken by connecting to ourselves.
    tcp::socket poke(io_);
    poke.connect(tcp::endpoint(net::ip::make_address(options_.host, ec), port_), ec);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Serve() {
    while (!stopping_.load()) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_.load()) return;
      if (ec) continue;
      HandleConnection(socket);
    }
  }

  void HandleConnection(tcp::socket& socket) {
    beast::error_code ec;
    struct timeval tv {
      5, 0
    };
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(false);
    const std::string target(req.target());
    if (req.method() != http::verb::get) {
      res.result(http::status::method_not_allowed);
      res.body() = "only GET\n";
    } else if (target == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = options_.metrics ? options_.metrics() : "";
    } else if (target == "/healthz") {
      res.result(http::status::ok);
      res.body() = "ok\n";
    } else if (target == "/readyz") {
      Status st = options_.ready ? options_.ready() : Status::Ok();
      res.result(st.ok() ? http::status::ok : http::status::service_unavailable);
      res.body() = st.ok() ? "ready\n" : st.ToString() + "\n";
    } else {
      res.result(http::status::not_found);
      res.body() = "not found\n";
    }
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  OpsServerOptions options_;
  net::io_context io_;
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<OpsServer>> OpsServer::Start(OpsServerOptions options) {
  auto server = std::make_unique<OpsServerImpl>(std::move(options));
  SPLITSTREAM_RETURN_IF_ERROR(server->Bind());
  return std::unique_ptr<OpsServer>(std::move(server));
}

}  // namespace splitstream::api
