// A ClickHouse client over the HTTP interface, for Debian's ClickHouse 18.16 and current
// releases. This library is the only one that speaks ClickHouse HTTP; libcurl does not leak
// through this header.
//
// Requests: a statement is POSTed as the body (Execute, Query) or, for Insert, the
// "INSERT ... FORMAT f" statement goes in the `query` URL parameter and the data is the body.
// Settings travel as URL parameters (18.16 has no sessions, so SET does not work over HTTP).
//
// Errors (see error.h): connection refused, timeouts, a broken connection and 5xx answers
// without a ClickHouse error → Unavailable (retrying may help). A ClickHouse exception → a
// Status whose message carries ClickHouse's code and message, and whose code follows
// StatusCodeForClickHouseError; ClickHouseErrorCode(status) returns the number. An insert that
// failed with Unavailable may or may not have been applied: tables must deduplicate replays
// (18.16 has no insert deduplication for plain MergeTree). Messages never hold credentials.
//
// Thread safety: a Client holds one keep-alive connection (a curl easy handle) and is used by
// one thread at a time; create one per thread. libcurl is initialised once, on the first
// Create. Signals: libcurl runs with CURLOPT_NOSIGNAL; plain http sends with MSG_NOSIGNAL, but
// for https the process should ignore SIGPIPE (servers usually do).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "splitstream/clickhouse/error.h"
#include "splitstream/clickhouse/row_binary.h"
#include "splitstream/clickhouse/sql.h"
#include "splitstream/core/result.h"
#include "splitstream/core/status.h"

namespace splitstream::clickhouse {

// Query-level settings, sent as URL parameters: {"max_threads", "1"}. Names must be plain
// ([A-Za-z_][A-Za-z0-9_]*); an unknown name fails the request with UNKNOWN_SETTING (115).
// A "database" entry overrides ClientOptions::database for that request.
using Settings = std::vector<std::pair<std::string, std::string>>;

struct ClientOptions {
  std::string url = "http://127.0.0.1:58123";
  // Default database for unqualified table names (URL parameter database=); "" for the
  // server's default. It must exist.
  std::string database = "experiments";
  // Sent as X-ClickHouse-User / X-ClickHouse-Key headers when user is not empty. Never
  // logged or put in messages.
  std::string user, password;
  std::chrono::milliseconds connect_timeout{2000}, request_timeout{60000};
  // gzip request bodies of at least compress_min_bytes (Content-Encoding: gzip, accepted
  // by 18.16 and current releases). Off by default: on loopback it cut RowBinary insert
  // throughput by 30-45 % (bench/clickhouse); turn it on when the network, not the CPU, is
  // the limit (it shrinks `events` batches about 4.5x).
  bool compress_requests = false;
  size_t compress_min_bytes = 4096;
  // zlib level 1..9; 1 is several times faster than 6 for a slightly larger body.
  int compression_level = 1;
  // Ask for gzip responses (enable_http_compression=1 and Accept-Encoding: gzip).
  bool compress_responses = true;
  // Execute/Query: ask ClickHouse to buffer the whole result before answering
  // (wait_end_of_query=1), so an error while producing rows becomes a non-200 status instead
  // of text appended to a 200 body. Costs server memory (or temporary files) for big results.
  bool wait_end_of_query = true;
};

// Counters since the Client was created.
struct ClientStats {
  int64_t requests = 0;        // HTTP requests sent, including Ping
  int64_t connects = 0;        // TCP connections opened (CURLINFO_NUM_CONNECTS)
  int64_t body_bytes = 0;      // request bodies before compression
  int64_t uploaded_bytes = 0;  // request bodies as sent (after compression)
  int64_t compressed_requests = 0;
};

class Client {
 public:
  virtual ~Client() = default;

  // Validates the options and prepares the connection; connects lazily on the first
  // request. InvalidArgument for an unusable URL or option.
  static Result<std::unique_ptr<Client>> Create(ClientOptions options);

  // Runs a statement that returns no rows (DDL, ALTER, INSERT ... SELECT, OPTIMIZE).
  virtual Status Execute(std::string_view sql, const Settings& settings = {}) = 0;
  // Runs a query and returns the raw response body in whatever FORMAT the SQL names
  // (TabSeparated when it names none).
  virtual Result<std::string> Query(std::string_view sql, const Settings& settings = {}) = 0;
  // Runs a query and hands its answer to `on_bytes` as it arrives, in pieces of any size
  // (the SQL names the FORMAT; RowBinaryRows in row_binary.h cuts RowBinary into rows), so
  // a large answer is never held whole. The server computes the whole answer before sending
  // it (wait_end_of_query; beyond 1 MiB it buffers on its own disk), so an error of the
  // query comes back as a status, never as bytes handed over. A non-OK status returned by
  // `on_bytes` stops the transfer and is returned. The default implementation (for test
  // doubles) runs Query and hands over the whole body at once.
  virtual Status QueryStream(std::string_view sql,
                             const std::function<Status(std::string_view)>& on_bytes,
                             const Settings& settings = {});
  // Convenience over Query: rows of TabSeparated output split into fields with escapes
  // undone. A NULL field comes back as the two characters "\N" (indistinguishable from the
  // string "\N"); use QueryNullableRows when that matters. The SQL must not name a FORMAT.
  virtual Result<std::vector<std::vector<std::string>>> QueryRows(
      std::string_view sql, const Settings& settings = {}) = 0;
  // Like QueryRows with NULL as std::nullopt.
  virtual Result<std::vector<NullableRow>> QueryNullableRows(std::string_view sql,
                                                             const Settings& settings = {}) = 0;
  // INSERT INTO table (columns...) FORMAT format, with `body` as the data. `table` is SQL
  // text used as is (a plain name, db.table, or built with QuoteIdentifier); each column is
  // quoted with QuoteIdentifier; no columns means all of the table's, in its order. `format`
  // must be a plain name (RowBinary, TabSeparated, JSONEachRow, ...). The insert is one
  // block per max_insert_block_size rows (1 048 576 by default) and atomic per block.
  virtual Status Insert(std::string_view table, std::span<const std::string> columns,
                        std::string_view format, std::string_view body,
                        const Settings& settings = {}) = 0;
  // GET /ping: OK when the server answers "Ok.".
  virtual Status Ping() = 0;

  virtual ClientStats stats() const = 0;
  virtual const ClientOptions& options() const = 0;
};

}  // namespace splitstream::clickhouse
