// libpq's replication protocol behind replication.h. See that header for the contract.
#include "splitstream/pg/replication.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "libpq_util.h"
#include "splitstream/core/strings.h"

namespace splitstream::pg {
namespace {

using internal::CheckResult;
using internal::PgResult;
using internal::Trim;

// The receive buffer the kernel keeps for the walsender's stream: a large one lets the
// server keep sending while we encode and produce (pg_recvlogical relies on the default).
constexpr int kSocketBufferBytes = 4 << 20;

class ReplicationConnectionImpl final : public ReplicationConnection {
 public:
  explicit ReplicationConnectionImpl(PGconn* conn) : conn_(conn) {}
  ~ReplicationConnectionImpl() override {
    if (copy_buffer_) PQfreemem(copy_buffer_);
    PQfinish(conn_);
  }

  Result<SystemIdentity> IdentifySystem() override {
    PgResult res(PQexec(conn_, "IDENTIFY_SYSTEM"));
    SPLITSTREAM_RETURN_IF_ERROR(CheckResult(conn_, res.get(), PGRES_TUPLES_OK, PGRES_TUPLES_OK));
    if (PQntuples(res.get()) != 1 || PQnfields(res.get()) < 4) {
      return Status::Internal("IDENTIFY_SYSTEM returned an unexpected result");
    }
    SystemIdentity id;
    id.system_id = PQgetvalue(res.get(), 0, 0);
    id.timeline = std::atoi(PQgetvalue(res.get(), 0, 1));
    auto lsn = ParseLsn(PQgetvalue(res.get(), 0, 2));
    if (!lsn) return Status::Internal("IDENTIFY_SYSTEM returned an unreadable xlogpos");
    id.xlogpos = *lsn;
    if (!PQgetisnull(res.get(), 0, 3)) id.dbname = PQgetvalue(res.get(), 0, 3);
    return id;
  }

  Result<CreatedSlot> CreateSlot(std::string_view slot, bool export_snapshot) override {
    std::string sql =
        fmt::format("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {}", QuoteIdent(slot),
                    export_snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
    PgResult res(PQexec(conn_, sql.c_str()));
    std::string state;
    Status st = CheckResult(conn_, res.get(), PGRES_TUPLES_OK, PGRES_TUPLES_OK, &state);
    if (state == "42710") {
      return Status::AlreadyExists(fmt::format("replication slot {} already exists", slot));
    }
    SPLITSTREAM_RETURN_IF_ERROR(st);
    if (PQntuples(res.get()) != 1 || PQnfields(res.get()) < 3) {
      return Status::Internal("CREATE_REPLICATION_SLOT returned an unexpected result");
    }
    CreatedSlot created;
    auto lsn = ParseLsn(PQgetvalue(res.get(), 0, 1));
    if (!lsn) return Status::Internal("CREATE_REPLICATION_SLOT returned an unreadable LSN");
    created.consistent_point = *lsn;
    if (!PQgetisnull(res.get(), 0, 2)) created.snapshot_name = PQgetvalue(res.get(), 0, 2);
    return created;
  }

  Status DropSlot(std::string_view slot) override {
    std::string sql = fmt::format("DROP_REPLICATION_SLOT {} WAIT", QuoteIdent(slot));
    PgResult res(PQexec(conn_, sql.c_str()));
    return CheckResult(conn_, res.get(), PGRES_COMMAND_OK, PGRES_TUPLES_OK);
  }

  Status StartReplication(std::string_view slot, Lsn start,
                          const std::vector<std::string>& publications) override {
    std::string names;
    for (const std::string& p : publications) {
      if (!names.empty()) names += ',';
      names += QuoteIdent(p);
    }
    std::string sql = fmt::format(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {}, "
        "messages 'true')",
        QuoteIdent(slot), LsnToString(start), QuoteLiteral(names));
    PgResult res(PQexec(conn_, sql.c_str()));
    std::string state;
    Status st = CheckResult(conn_, res.get(), PGRES_COPY_BOTH, PGRES_COPY_BOTH, &state);
    if (!st.ok()) {
      if (state == "55006") {  // object_in_use: another walsender holds the slot
        return Status::FailedPrecondition(fmt::format(
            "replication slot {} is in use by another process; stop the other consumer or "
            "use a different --slot ({})",
            slot, st.message()));
      }
      return st.WithContext("START_REPLICATION");
    }
    if (PQsetnonblocking(conn_, 1) != 0) return Status::Internal("cannot make socket non-blocking");
    int size = kSocketBufferBytes;
    (void)setsockopt(PQsocket(conn_), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    return Status::Ok();
  }

  Result<std::optional<std::string_view>> Read(std::chrono::milliseconds timeout) override {
    if (copy_buffer_) {
      PQfreemem(copy_buffer_);
      copy_buffer_ = nullptr;
    }
    SPLITSTREAM_ASSIGN_OR_RETURN(bool got, NextBuffered());
    if (got) return Message();
    if (streaming_ && batch_wait_.count() > 0) {
      // The stream ran dry: let the server send a batch before looking again (see
      // SetBatchWait), then read whatever came. A shorter timeout only looks.
      if (timeout >= batch_wait_) {
        std::this_thread::sleep_for(batch_wait_);
        timeout -= std::chrono::duration_cast<std::chrono::milliseconds>(batch_wait_);
        streaming_ = false;  // unless something arrived meanwhile
      }
      if (PQconsumeInput(conn_) != 1) {
        return Status::Unavailable(RedactSecrets(Trim(PQerrorMessage(conn_))));
      }
      SPLITSTREAM_ASSIGN_OR_RETURN(got, NextBuffered());
      if (got || timeout.count() == 0) return got ? Message() : std::nullopt;
    }
    streaming_ = false;
    // Nothing buffered: wait for the socket, then read what arrived.
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    if (pfd.fd < 0) return Status::Unavailable("replication connection is closed");
    int rc = poll(&pfd, 1, static_cast<int>(timeout.count()));
    if (rc < 0 && errno != EINTR) return Status::Unavailable("poll on replication socket failed");
    if (rc <= 0) return std::optional<std::string_view>();
    if (PQconsumeInput(conn_) != 1) {
      return Status::Unavailable(RedactSecrets(Trim(PQerrorMessage(conn_))));
    }
    SPLITSTREAM_ASSIGN_OR_RETURN(got, NextBuffered());
    if (got) return Message();
    return std::optional<std::string_view>();
  }

  void SetBatchWait(std::chrono::microseconds wait) override { batch_wait_ = wait; }

  Status Send(std::string_view copy_data) override {
    if (PQputCopyData(conn_, copy_data.data(), static_cast<int>(copy_data.size())) != 1) {
      return Status::Unavailable(RedactSecrets(Trim(PQerrorMessage(conn_))));
    }
    // Non-blocking: flush may need several rounds; the message is small.
    for (int i = 0; i < 1000; ++i) {
      int rc = PQflush(conn_);
      if (rc == 0) return Status::Ok();
      if (rc < 0) return Status::Unavailable(RedactSecrets(Trim(PQerrorMessage(conn_))));
      pollfd pfd{PQsocket(conn_), POLLOUT, 0};
      (void)poll(&pfd, 1, 10);
    }
    return Status::Unavailable("could not send a standby status update within 10 s");
  }

 private:
  // The server ended COPY: fetch the final result to report why.
  Status EndOfStream() {
    PgResult res(PQgetResult(conn_));
    std::string state;
    Status st = CheckResult(conn_, res.get(), PGRES_COMMAND_OK, PGRES_COMMAND_OK, &state);
    while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
    if (!st.ok()) return Status::Unavailable("replication stream ended: " + st.message());
    return Status::Unavailable("the server ended the replication stream");
  }

  // A complete CopyData message already received into copy_buffer_ (length copy_length_):
  // true; none buffered: false.
  Result<bool> NextBuffered() {
    int n = PQgetCopyData(conn_, &copy_buffer_, 1);
    if (n > 0) {
      copy_length_ = static_cast<size_t>(n);
      streaming_ = true;
      return true;
    }
    if (n == -1) return EndOfStream();
    if (n < -1) return Status::Unavailable(RedactSecrets(Trim(PQerrorMessage(conn_))));
    return false;
  }
  std::optional<std::string_view> Message() const {
    return std::string_view(copy_buffer_, copy_length_);
  }

  PGconn* conn_;
  char* copy_buffer_ = nullptr;
  size_t copy_length_ = 0;
  std::chrono::microseconds batch_wait_{0};
  bool streaming_ = false;  // the last Read returned a message
};

}  // namespace

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string QuoteLiteral(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

Result<std::unique_ptr<ReplicationConnection>> ReplicationConnection::Open(
    const std::string& conninfo) {
  // dbname is expanded as a full conninfo; replication=database is set on top of it.
  const char* keys[] = {"dbname", "replication", nullptr};
  const char* values[] = {conninfo.c_str(), "database", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr) return Status::Internal("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = RedactSecrets(Trim(PQerrorMessage(conn)));
    PQfinish(conn);
    return Status::Unavailable("cannot open a replication connection to PostgreSQL: " + msg);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char* message) { spdlog::debug("postgres: {}", message); }, nullptr);
  return std::unique_ptr<ReplicationConnection>(std::make_unique<ReplicationConnectionImpl>(conn));
}

Result<SlotState> ReadSlotState(Connection& conn, std::string_view slot) {
  SPLITSTREAM_ASSIGN_OR_RETURN(
      Rows rows,
      conn.Exec("SELECT plugin, database, active, coalesce(active_pid, 0), "
                "coalesce(restart_lsn::text, '0/0'), coalesce(confirmed_flush_lsn::text, '0/0'), "
                "coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1",
                {std::string(slot)}));
  SlotState s;
  if (rows.empty()) return s;
  s.exists = true;
  s.plugin = rows.text(0, 0);
  s.database = rows.text(0, 1);
  s.active = rows.text(0, 2) == "t";
  s.active_pid = std::strtoll(std::string(rows.text(0, 3)).c_str(), nullptr, 10);
  s.restart_lsn = ParseLsn(rows.text(0, 4)).value_or(Lsn(0));
  s.confirmed_flush_lsn = ParseLsn(rows.text(0, 5)).value_or(Lsn(0));
  s.wal_status = rows.text(0, 6);
  return s;
}

}  // namespace splitstream::pg
