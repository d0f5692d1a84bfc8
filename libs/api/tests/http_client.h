// A blocking HTTP/1.1 test client on one keep-alive connection (Beast), shared by the unit
// tests of the server and the integration tests.
#pragma once

#include <poll.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <string_view>

namespace splitstream::api::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Response = http::response<http::string_body>;

class Client {
 public:
  Client(uint16_t port, std::string default_token)
      : token_(std::move(default_token)), stream_(ioc_) {
    stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    stream_.expires_after(std::chrono::seconds(60));
  }

  // Throws on a transport error (connection refused or closed).
  Response Send(http::verb method, std::string target, std::string body = "") {
    return SendWith(method, std::move(target), std::move(body), token_);
  }

  Response SendWith(http::verb method, std::string target, std::string body,
                    std::string_view token) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + std::string(token));
    if (!body.empty() || method == http::verb::post || method == http::verb::patch) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
    }
    http::write(stream_, req);
    return Read();
  }

  Response Read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream_, buffer_, parser);
    return parser.release();
  }

  void WriteRaw(std::string_view bytes) { net::write(stream_.socket(), net::buffer(bytes)); }

  // True when the server closed the connection (EOF or reset on the next read).
  bool ClosedByServer() {
    beast::error_code ec;
    char c;
    stream_.socket().read_some(net::buffer(&c, 1), ec);
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

  // As ClosedByServer, but false when nothing arrives within `wait` instead of blocking.
  bool ClosedByServerWithin(std::chrono::milliseconds wait) {
    pollfd p{stream_.socket().native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    return ClosedByServer();
  }

 private:
  std::string token_;
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

}  // namespace splitstream::api::testing
