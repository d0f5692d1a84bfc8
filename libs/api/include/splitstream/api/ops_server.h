// OpsServer: the small HTTP endpoint of the pipeline processes (`splitstream cdc`, `sink`):
// GET /metrics (Prometheus text from a callback), GET /healthz (200 while the process runs)
// and GET /readyz (200 when the readiness callback says OK, else 503 with the reason).
// Scrapes are rare, so one thread serves connections one at a time.
//
// Thread safety: the callbacks run on the server's thread. Shutdown() from any other thread;
// the destructor shuts down.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "splitstream/core/result.h"

namespace splitstream::api {

struct OpsServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = ephemeral; see port()
  std::function<std::string()> metrics;
  std::function<Status()> ready;  // may be empty: always ready
};

class OpsServer {
 public:
  // Unavailable when the address cannot be bound.
  static Result<std::unique_ptr<OpsServer>> Start(OpsServerOptions options);
  virtual ~OpsServer() = default;
  virtual uint16_t port() const = 0;
  virtual void Shutdown() = 0;
};

}  // namespace splitstream::api
