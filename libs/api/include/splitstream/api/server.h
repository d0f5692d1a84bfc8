// The HTTP API of `splitstream serve` (design.md section 3): experiments, assignment, event
// tracking, health, readiness and Prometheus metrics, as JSON over HTTP/1.1.
//
// Start() binds, listens and returns a running server whose worker threads serve requests
// until Shutdown(). Errors from Start(): InvalidArgument for a bad host or option,
// Unavailable when the address cannot be bound.
//
// Ownership: the server borrows `service` and `pool`; both must outlive the Server object.
// Shut the server down (Shutdown() or the destructor) before shutting down the service, so
// that assignments still waiting in the service's batcher are answered; a callback the
// service runs after the server is gone is dropped safely.
//
// Thread safety: port() may be called from any thread. Shutdown() and Wait() may be called
// from any thread except the server's own workers (that would wait for itself), and any
// number of times.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "splitstream/core/result.h"

namespace splitstream::experiments {
class Service;
}
namespace splitstream::pg {
class Pool;
}

namespace splitstream::api {

// Results of an experiment as the JSON body of GET /v1/experiments/{key}/results. The API
// does not compute them (they come from ClickHouse, libs/results); the app passes an
// implementation. Errors map as every Status does: NotFound (field "key") → 404,
// Unavailable → 503. Called from server workers concurrently: must be thread-safe.
class ResultsProvider {
 public:
  virtual ~ResultsProvider() = default;
  virtual Result<std::string> ResultsJson(const std::string& key) = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // an IP address (v4 or v6) to listen on
  uint16_t port = 8080;            // 0 = ephemeral; see Server::port()
  int threads = 0;                 // event-loop threads; 0 = hardware threads
  // Threads for the requests that wait on a database (events, experiments, users'
  // assignments, results, readiness), so that the event loops never wait; at most this many
  // such requests run at once, the others queue.
  int blocking_threads = 8;
  size_t max_body_bytes = 8 << 20;  // larger bodies get 413 and the connection is closed
  // How long a request may take to arrive, and how long a keep-alive connection may stay idle,
  // before the connection is closed (checked once a second).
  std::chrono::milliseconds read_timeout{60000};
  std::string admin_token;   // Bearer token for every route; empty = none accepted
  std::string client_token;  // Bearer token for assign, user assignments, events
  // Borrowed, must outlive the server; null: the results route answers 503 "results need
  // ClickHouse".
  ResultsProvider* results = nullptr;
  // Shutdown(): how long requests in flight may take to finish before the workers stop.
  std::chrono::milliseconds shutdown_grace{10000};
};

class Server {
 public:
  // `pool` feeds the splitstream_pg_pool_connections gauge and may be null.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, experiments::Service* service,
                                               pg::Pool* pool);

  Server() = default;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Shuts down (as Shutdown()) when still running.
  virtual ~Server();

  // The bound port (the ephemeral one when options.port was 0).
  virtual uint16_t port() const = 0;

  // Graceful stop: stops accepting, closes idle keep-alive connections, lets requests in
  // flight finish and their responses be written (waiting at most options.shutdown_grace),
  // then stops the workers. Returns when the workers have stopped.
  virtual void Shutdown() = 0;

  // Blocks until the server has stopped (after Shutdown() from another thread).
  virtual void Wait() = 0;
};

}  // namespace splitstream::api
