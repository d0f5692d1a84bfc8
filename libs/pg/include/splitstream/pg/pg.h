// PostgreSQL access: connections, a fixed-size pool, parameterised statements, COPY and
// LISTEN/NOTIFY. This library is the only one that includes libpq-fe.h; nothing of libpq
// leaks through this header.
//
// Every statement takes user input only as parameters (text format, NULL as std::nullopt).
// Errors come back as Status with PostgreSQL's message and SQLSTATE in the message; a
// connection that broke is reset before it returns to the pool.
//
// Thread safety: a Connection is used by one thread at a time. Pool is thread-safe; a Lease
// is owned by one thread and returns its connection to the pool when destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/core/status.h"

namespace splitstream::pg {

using Param = std::optional<std::string>;

// SQLSTATE codes callers branch on.
inline constexpr std::string_view kUniqueViolation = "23505";
inline constexpr std::string_view kForeignKeyViolation = "23503";
inline constexpr std::string_view kExclusionViolation = "23P01";
inline constexpr std::string_view kCheckViolation = "23514";

// A fully fetched result set. Values are in PostgreSQL's text format.
class Rows {
 public:
  Rows() = default;
  Rows(std::vector<std::string> columns, std::vector<std::vector<Param>> rows, int64_t affected)
      : columns_(std::move(columns)), rows_(std::move(rows)), affected_(affected) {}

  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  const std::vector<std::string>& columns() const { return columns_; }
  // The value at (row, col); std::nullopt for SQL NULL. Out-of-range indexes abort.
  const Param& at(size_t row, size_t col) const { return rows_.at(row).at(col); }
  // The text at (row, col), or "" for NULL.
  std::string_view text(size_t row, size_t col) const {
    const Param& p = at(row, col);
    return p ? std::string_view(*p) : std::string_view();
  }
  // Rows affected by INSERT/UPDATE/DELETE/COPY (PQcmdTuples), or the row count.
  int64_t affected() const { return affected_; }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<Param>> rows_;
  int64_t affected_ = 0;
};

struct Notification {
  std::string channel;
  std::string payload;
};

// Quotes `value` as an element of a PostgreSQL array literal ("..." with \ and " escaped),
// for passing many values as one text[] parameter to unnest().
void AppendArrayElement(std::string& out, std::string_view value);
// Builds '{"a","b"}' from values; std::nullopt elements become NULL.
std::string ArrayLiteral(const std::vector<Param>& values);

class Connection {
 public:
  virtual ~Connection() = default;

  // Opens a connection; the error names the host but never the password.
  static Result<std::unique_ptr<Connection>> Open(const std::string& conninfo);

  // Runs one statement with text parameters ($1, $2, ...).
  virtual Result<Rows> Exec(std::string_view sql, const std::vector<Param>& params = {}) = 0;
  // Like Exec, for a statement run often: prepared once per connection under `name` (the
  // first call with a name fixes its SQL) and executed by name afterwards, so PostgreSQL
  // neither parses nor plans it again. Re-prepared after a Reset().
  virtual Result<Rows> ExecPrepared(std::string_view name, std::string_view sql,
                                    const std::vector<Param>& params) = 0;
  // Runs a script of several statements without parameters (migrations).
  virtual Status ExecScript(std::string_view sql) = 0;
  // COPY ... FROM STDIN with `data` in the COPY text format; returns rows copied.
  virtual Result<int64_t> CopyIn(std::string_view copy_sql, std::string_view data) = 0;
  // LISTEN on a channel (the name is quoted as an identifier).
  virtual Status Listen(std::string_view channel) = 0;
  // Waits up to `timeout` for a notification; std::nullopt on timeout.
  virtual Result<std::optional<Notification>> WaitNotification(
      std::chrono::milliseconds timeout) = 0;
  // True while the socket is usable.
  virtual bool Healthy() const = 0;
  // Re-establishes a broken connection.
  virtual Status Reset() = 0;
  // SQLSTATE of the last failed statement, "" when none.
  virtual std::string LastSqlState() const = 0;
};

// Runs `body` between `begin_sql` (BEGIN, or e.g. "BEGIN ISOLATION LEVEL REPEATABLE READ")
// and COMMIT on `conn`. Rolls back when the body or the commit fails and returns that
// failure.
Status InTransaction(Connection& conn, const std::function<Status()>& body,
                     std::string_view begin_sql = "BEGIN");

class Pool {
 public:
  // A borrowed connection; returns to the pool on destruction.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease();
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  virtual ~Pool() = default;
  // Opens `size` connections eagerly; fails when the first cannot be opened.
  static Result<std::unique_ptr<Pool>> Create(const std::string& conninfo, int size);

  // Waits up to `timeout` for a free connection; Unavailable on timeout or when the
  // database cannot be reached.
  virtual Result<Lease> Acquire(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) = 0;
  virtual int size() const = 0;
  virtual int in_use() const = 0;

 protected:
  friend class Lease;
  virtual void Release(std::unique_ptr<Connection> conn) = 0;
};

}  // namespace splitstream::pg
