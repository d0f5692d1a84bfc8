// Configuration of every subcommand, resolved as: flags > environment > TOML file > defaults
// (design.md section 2).
//
// The TOML file holds flat keys named like the environment variables without the
// SPLITSTREAM_ prefix, in lower case (`pg_dsn = "..."`, `http_addr = "127.0.0.1:8080"`).
// Unknown keys and wrong types are errors naming the key and the file. Secrets (tokens, a
// password inside pg_dsn) never appear in error messages; use Redacted() for logging.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "splitstream/core/result.h"

namespace splitstream::config {

// "host:port" (a bracketed IPv6 host loses its brackets) as host and port; InvalidArgument
// naming `field` when the colon, the host or a port in 0..65535 is missing.
Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view addr,
                                                       std::string_view field);

// KEY=VALUE librdkafka properties from a repeatable flag (`field` names it in errors), later
// ones winning. InvalidArgument naming `field` for an entry without '=' or without a key, and
// for a key in `fixed` (settings a guarantee depends on), with `why` as the reason. Values may
// hold secrets (sasl.password): errors show keys only.
Result<std::map<std::string, std::string>> ParseKafkaProperties(
    const std::vector<std::string>& entries, const std::vector<std::string_view>& fixed,
    std::string_view why, std::string_view field);

struct Config {
  std::string pg_dsn = "host=127.0.0.1 port=54329 dbname=splitstream user=postgres";
  std::string kafka_brokers;  // empty: direct mode
  std::string clickhouse_url = "http://127.0.0.1:58123";
  std::string clickhouse_database = "experiments";
  std::string topic_prefix = "dbserver1";
  std::string http_addr = "127.0.0.1:8080";
  std::string admin_token;
  std::string client_token;
  std::string log_level = "info";
  // The intervals and p-values of the results `serve` computes (API and dashboard): "fixed"
  // (fixed-horizon, valid when read once at the planned end) or "sequential" (always valid:
  // safe to look at as often as the dashboard refreshes).
  std::string results_intervals = "fixed";
  int64_t pg_pool_size = 8;
  int64_t http_threads = 0;           // 0: hardware threads
  int64_t http_blocking_threads = 8;  // for requests that wait on a database
  int64_t max_body_bytes = 8 << 20;

  // host and port of http_addr; InvalidArgument naming http_addr when malformed.
  Result<std::pair<std::string, uint16_t>> HttpHostPort() const;
  // One line per setting with secrets replaced by ***.
  std::string Redacted() const;
  // Every setting as its environment variable (SPLITSTREAM_PG_DSN, ...) and value, secrets
  // included: what a child process needs to resolve the same configuration. Never log it.
  std::map<std::string, std::string> ToEnvironment() const;
};

// Source of environment variables (tests pass a map).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

// `flags` maps setting names (as in the TOML file, e.g. "pg_dsn") to values given on the
// command line. `toml_path` may be empty.
Result<Config> Load(const std::string& toml_path, const std::map<std::string, std::string>& flags,
                    const EnvLookup& env);

}  // namespace splitstream::config
