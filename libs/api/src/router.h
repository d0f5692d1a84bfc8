// Routing, authentication and the handlers of every route, free of any HTTP library: the
// transport (server.cc) hands over an HttpRequest and writes the HttpResponse it gets back.
//
// Order of checks: route (404 not_found), method (405 method_not_allowed), token (401
// unauthenticated, 403 forbidden), body and path parameters (400), then the service. Every
// error body is built by MapStatus().
//
// Threading: Handle() runs on a server worker. Every route but /v1/assign answers before
// Handle() returns (the service call may block the worker briefly on a pooled connection);
// /v1/assign answers from a service thread (the batcher's answering thread) once the
// assignment is durable.
// The responder may therefore run on any thread and must be thread-safe; it is called
// exactly once. Router itself is immutable after construction and thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "metrics.h"
#include "splitstream/api/server.h"
#include "splitstream/experiments/service.h"

namespace splitstream::pg {
class Pool;
}

namespace splitstream::api {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // origin-form: path and optional query
  std::string authorization;  // the Authorization header, "" when absent
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::string_view allow;         // the Allow header of a 405, "" otherwise
  bool bearer_challenge = false;  // send WWW-Authenticate: Bearer (401)
  bool page = false;              // a dashboard file: send the browser security headers
  Route route = Route::kUnmatched;
};

using Responder = std::function<void(HttpResponse)>;

struct RouterOptions {
  std::string admin_token;
  std::string client_token;
  ResultsProvider* results = nullptr;  // borrowed; null: the results route answers 503
};

class Router {
 public:
  // Borrows everything; `pool` may be null.
  Router(RouterOptions options, experiments::Service* service, pg::Pool* pool,
         const Metrics* metrics);

  void Handle(HttpRequest request, Responder done) const;

  // Whether Handle() may wait on PostgreSQL or ClickHouse for `target` (a path with an
  // optional query): every route but assignment (answered by the service's threads), health,
  // metrics and the dashboard's files. The transport hands those to threads of their own, so
  // that a slow query never holds up its event loops.
  static bool MayBlock(std::string_view target);

  // An error response for `status` (used by the transport for 413 and malformed HTTP).
  static HttpResponse Error(const Status& status, Route route = Route::kUnmatched);

 private:
  enum class Role { kNone, kClient, kAdmin };
  Role Authenticate(std::string_view authorization) const;
  void Dispatch(Route route, const std::string& param, HttpRequest& request, Responder& done) const;

  RouterOptions options_;
  experiments::Service* service_;
  pg::Pool* pool_;
  const Metrics* metrics_;
};

}  // namespace splitstream::api
