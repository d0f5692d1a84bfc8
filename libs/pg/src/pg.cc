// libpq behind the interface of pg.h. See that header for the contract.
#include "splitstream/pg/pg.h"

#include <libpq-fe.h>
#include <poll.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "libpq_util.h"
#include "splitstream/core/strings.h"

namespace splitstream::pg {
namespace {

using internal::CheckResult;
using internal::PgResult;
using internal::Trim;

class ConnectionImpl final : public Connection {
 public:
  explicit ConnectionImpl(PGconn* conn) : conn_(conn) {}
  ~ConnectionImpl() override { PQfinish(conn_); }

  Result<Rows> Exec(std::string_view sql, const std::vector<Param>& params) override {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
    std::string query(sql);
    PgResult res(PQexecParams(conn_, query.c_str(), static_cast<int>(values.size()), nullptr,
                              values.data(), nullptr, nullptr, 0));
    SPLITSTREAM_RETURN_IF_ERROR(Check(res.get(), PGRES_TUPLES_OK, PGRES_COMMAND_OK));
    return Collect(res.get());
  }

  Result<Rows> ExecPrepared(std::string_view name, std::string_view sql,
                            const std::vector<Param>& params) override {
    std::string stmt(name);
    if (!prepared_.contains(stmt)) {
      std::string query(sql);
      PgResult prep(PQprepare(conn_, stmt.c_str(), query.c_str(), 0, nullptr));
      SPLITSTREAM_RETURN_IF_ERROR(Check(prep.get(), PGRES_COMMAND_OK, PGRES_COMMAND_OK));
      prepared_.insert(stmt);
    }
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
    PgResult res(PQexecPrepared(conn_, stmt.c_str(), static_cast<int>(values.size()), values.data(),
                                nullptr, nullptr, 0));
    SPLITSTREAM_RETURN_IF_ERROR(Check(res.get(), PGRES_TUPLES_OK, PGRES_COMMAND_OK));
    return Collect(res.get());
  }

  Status ExecScript(std::string_view sql) override {
    std::string query(sql);
    PgResult res(PQexec(conn_, query.c_str()));
    return Check(res.get(), PGRES_COMMAND_OK, PGRES_TUPLES_OK);
  }

  Result<int64_t> CopyIn(std::string_view copy_sql, std::string_view data) override {
    std::string query(copy_sql);
    PgResult res(PQexec(conn_, query.c_str()));
    SPLITSTREAM_RETURN_IF_ERROR(Check(res.get(), PGRES_COPY_IN, PGRES_COPY_IN));
    constexpr size_t kChunk = 1 << 20;
    const char* error = nullptr;
    for (size_t off = 0; off < data.size(); off += kChunk) {
      size_t n = std::min(kChunk, data.size() - off);
      if (PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) != 1) {
        error = "sending COPY data failed";
        break;
      }
    }
    if (PQputCopyEnd(conn_, error) != 1) {
      return Status::Unavailable(Trim(PQerrorMessage(conn_)));
    }
    PgResult end(PQgetResult(conn_));
    Status st = Check(end.get(), PGRES_COMMAND_OK, PGRES_COMMAND_OK);
    // Drain: a COPY yields exactly one final result, then NULL.
    while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
    if (!st.ok()) return st;
    return static_cast<int64_t>(std::strtoll(PQcmdTuples(end.get()), nullptr, 10));
  }

  Status Listen(std::string_view channel) override {
    char* ident = PQescapeIdentifier(conn_, channel.data(), channel.size());
    if (ident == nullptr) return Status::Internal(Trim(PQerrorMessage(conn_)));
    std::string sql = std::string("LISTEN ") + ident;
    PQfreemem(ident);
    return ExecScript(sql);
  }

  Result<std::optional<Notification>> WaitNotification(std::chrono::milliseconds timeout) override {
    auto take = [this]() -> std::optional<Notification> {
      PGnotify* n = PQnotifies(conn_);
      if (n == nullptr) return std::nullopt;
      Notification out{n->relname, n->extra ? n->extra : ""};
      PQfreemem(n);
      return out;
    };
    if (PQconsumeInput(conn_) != 1) return Status::Unavailable(Trim(PQerrorMessage(conn_)));
    if (auto n = take()) return n;
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    if (pfd.fd < 0) return Status::Unavailable("connection is closed");
    int rc = poll(&pfd, 1, static_cast<int>(timeout.count()));
    if (rc < 0 && errno != EINTR) return Status::Unavailable("poll failed");
    if (rc > 0) {
      if (PQconsumeInput(conn_) != 1) return Status::Unavailable(Trim(PQerrorMessage(conn_)));
      if (auto n = take()) return n;
    }
    return std::optional<Notification>();
  }

  bool Healthy() const override { return PQstatus(conn_) == CONNECTION_OK; }

  Status Reset() override {
    prepared_.clear();  // a new server session knows no prepared statements
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return Status::Unavailable(RedactSecrets(Trim(PQerrorMessage(conn_))));
    }
    return Status::Ok();
  }

  std::string LastSqlState() const override { return last_sqlstate_; }

  // Ends any transaction left open or failed by a caller, so a pooled connection starts
  // clean.
  void RollbackIfInTransaction() {
    PGTransactionStatusType ts = PQtransactionStatus(conn_);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
      PgResult r(PQexec(conn_, "ROLLBACK"));
    }
  }

 private:
  Status Check(PGresult* res, ExecStatusType ok1, ExecStatusType ok2) {
    return CheckResult(conn_, res, ok1, ok2, &last_sqlstate_);
  }

  static Rows Collect(PGresult* res) {
    int nrows = PQntuples(res);
    int ncols = PQnfields(res);
    std::vector<std::string> columns;
    columns.reserve(ncols);
    for (int c = 0; c < ncols; ++c) columns.emplace_back(PQfname(res, c));
    std::vector<std::vector<Param>> rows(nrows);
    for (int r = 0; r < nrows; ++r) {
      rows[r].reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) {
          rows[r].emplace_back(std::nullopt);
        } else {
          rows[r].emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
        }
      }
    }
    const char* tuples = PQcmdTuples(res);
    int64_t affected = (tuples && *tuples) ? std::strtoll(tuples, nullptr, 10) : nrows;
    return Rows(std::move(columns), std::move(rows), affected);
  }

  PGconn* conn_;
  std::string last_sqlstate_;
  std::unordered_set<std::string> prepared_;  // statement names prepared on this session
};

class PoolImpl final : public Pool {
 public:
  PoolImpl(std::string conninfo, int size) : conninfo_(std::move(conninfo)), size_(size) {}

  Status Init() {
    for (int i = 0; i < size_; ++i) {
      SPLITSTREAM_ASSIGN_OR_RETURN(auto conn, Connection::Open(conninfo_));
      idle_.push_back(std::move(conn));
    }
    return Status::Ok();
  }

  Result<Lease> Acquire(std::chrono::milliseconds timeout) override {
    std::unique_ptr<Connection> conn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, timeout, [this] { return !idle_.empty(); })) {
        return Status::Unavailable("no free PostgreSQL connection within the timeout");
      }
      conn = std::move(idle_.front());
      idle_.pop_front();
      ++in_use_;
    }
    if (!conn->Healthy()) {
      Status st = conn->Reset();
      if (!st.ok()) {
        Release(std::move(conn));
        return st.WithContext("PostgreSQL connection lost");
      }
    }
    return Lease(this, std::move(conn));
  }

  int size() const override { return size_; }
  int in_use() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return in_use_;
  }

 protected:
  void Release(std::unique_ptr<Connection> conn) override {
    if (conn->Healthy()) static_cast<ConnectionImpl*>(conn.get())->RollbackIfInTransaction();
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push_back(std::move(conn));
      --in_use_;
    }
    cv_.notify_one();
  }

 private:
  const std::string conninfo_;
  const int size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mu_)
  int in_use_ = 0;                                // GUARDED_BY(mu_)
};

}  // namespace

namespace internal {

StatusCode CodeForSqlState(std::string_view state) {
  if (state.size() != 5) return StatusCode::kUnavailable;
  std::string_view cls = state.substr(0, 2);
  if (cls == "08" || cls == "57" || cls == "53") return StatusCode::kUnavailable;
  if (state == kUniqueViolation) return StatusCode::kAlreadyExists;
  if (cls == "23" || cls == "40") return StatusCode::kConflict;
  if (cls == "22") return StatusCode::kInvalidArgument;
  return StatusCode::kInternal;
}

Status CheckResult(PGconn* conn, PGresult* res, ExecStatusType ok1, ExecStatusType ok2,
                   std::string* sqlstate) {
  if (sqlstate) sqlstate->clear();
  if (res == nullptr) return Status::Unavailable(RedactSecrets(Trim(PQerrorMessage(conn))));
  ExecStatusType st = PQresultStatus(res);
  if (st == ok1 || st == ok2) return Status::Ok();
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
  std::string code_text = state ? state : "";
  if (sqlstate) *sqlstate = code_text;
  std::string msg = primary ? primary : Trim(PQresultErrorMessage(res));
  if (msg.empty()) msg = Trim(PQerrorMessage(conn));
  if (detail) msg += std::string(" (") + detail + ")";
  if (!code_text.empty()) msg += " [SQLSTATE " + code_text + "]";
  StatusCode code =
      PQstatus(conn) != CONNECTION_OK ? StatusCode::kUnavailable : CodeForSqlState(code_text);
  return Status(code, std::move(msg));
}

}  // namespace internal

void AppendArrayElement(std::string& out, std::string_view value) {
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

std::string ArrayLiteral(const std::vector<Param>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    if (values[i]) {
      AppendArrayElement(out, *values[i]);
    } else {
      out += "NULL";
    }
  }
  out += '}';
  return out;
}

Status InTransaction(Connection& conn, const std::function<Status()>& body,
                     std::string_view begin_sql) {
  if (auto begin = conn.Exec(begin_sql); !begin.ok()) return begin.status();
  Status st = body();
  if (st.ok()) {
    auto commit = conn.Exec("COMMIT");
    if (commit.ok()) return Status::Ok();
    st = commit.status();
  }
  (void)conn.Exec("ROLLBACK");
  return st;
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Status::Internal("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = RedactSecrets(Trim(PQerrorMessage(conn)));
    PQfinish(conn);
    return Status::Unavailable("cannot connect to PostgreSQL: " + msg);
  }
  // Server notices (e.g. "table does not exist, skipping") go to the log, not to stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char* message) { spdlog::debug("postgres: {}", message); }, nullptr);
  return std::unique_ptr<Connection>(std::make_unique<ConnectionImpl>(conn));
}

Pool::Lease::~Lease() {
  if (conn_ && pool_) pool_->Release(std::move(conn_));
}

Result<std::unique_ptr<Pool>> Pool::Create(const std::string& conninfo, int size) {
  if (size < 1) return Status::InvalidArgument("pool size must be at least 1");
  auto pool = std::make_unique<PoolImpl>(conninfo, size);
  SPLITSTREAM_RETURN_IF_ERROR(pool->Init());
  return std::unique_ptr<Pool>(std::move(pool));
}

}  // namespace splitstream::pg
