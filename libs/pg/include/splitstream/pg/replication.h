// A logical replication connection (libpq with replication=database): IDENTIFY_SYSTEM,
// slot management, START_REPLICATION and the CopyBoth stream. It moves bytes only; the
// pgoutput messages inside are decoded by libs/pgoutput.
//
// Errors: Unavailable when the connection is lost or cannot be opened (retrying may help),
// FailedPrecondition for a slot that is in use by another process or was invalidated (the
// message says which and what to do), Internal for unexpected server answers. Messages carry
// PostgreSQL's text and SQLSTATE and never the password.
//
// Thread safety: one thread uses a ReplicationConnection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/core/lsn.h"
#include "splitstream/core/result.h"
#include "splitstream/pg/pg.h"

namespace splitstream::pg {

struct SystemIdentity {
  std::string system_id;
  int timeline = 0;
  Lsn xlogpos;
  std::string dbname;
};

struct CreatedSlot {
  Lsn consistent_point;       // streaming from here follows the exported snapshot exactly
  std::string snapshot_name;  // for SET TRANSACTION SNAPSHOT, valid until the next command
};

class ReplicationConnection {
 public:
  virtual ~ReplicationConnection() = default;

  // Opens `conninfo` (key=value or URI) as a replication=database connection.
  static Result<std::unique_ptr<ReplicationConnection>> Open(const std::string& conninfo);

  virtual Result<SystemIdentity> IdentifySystem() = 0;
  // CREATE_REPLICATION_SLOT name LOGICAL pgoutput, exporting a snapshot when asked.
  // AlreadyExists when a slot of that name exists.
  virtual Result<CreatedSlot> CreateSlot(std::string_view slot, bool export_snapshot) = 0;
  virtual Status DropSlot(std::string_view slot) = 0;
  // START_REPLICATION SLOT slot LOGICAL start (proto_version '1', publication_names,
  // messages 'true'). The server starts at the later of `start` and the slot's confirmed
  // position.
  virtual Status StartReplication(std::string_view slot, Lsn start,
                                  const std::vector<std::string>& publications) = 0;
  // The next CopyData message of the stream, or std::nullopt when none arrived within
  // `timeout`. The view stays valid until the next call of Read(). Unavailable when the
  // connection broke or the server ended the stream.
  virtual Result<std::optional<std::string_view>> Read(std::chrono::milliseconds timeout) = 0;
  // When the stream runs dry right after a Read that returned a message, and `timeout` is at
  // least `wait`, Read first sleeps `wait` without watching the socket and then reads what
  // arrived meanwhile; only if nothing did does it wait on the socket (for the rest of
  // `timeout`). While changes stream, the server then sends without waking this process for
  // every message (one send per row on its side): on a virtual machine each such wake-up
  // from another CPU costs both processes more than the row itself. 0 (the default) waits on
  // the socket at once.
  virtual void SetBatchWait(std::chrono::microseconds wait) = 0;
  // Sends one CopyData message (a standby status update) and flushes it.
  virtual Status Send(std::string_view copy_data) = 0;
};

// Slot state as pg_replication_slots reports it (read over an ordinary connection).
struct SlotState {
  bool exists = false;
  std::string plugin;
  std::string database;
  bool active = false;
  int64_t active_pid = 0;
  Lsn restart_lsn;
  Lsn confirmed_flush_lsn;
  std::string wal_status;  // "reserved", "extended", "unreserved" or "lost" (invalidated)
};
Result<SlotState> ReadSlotState(Connection& conn, std::string_view slot);

// Quotes an identifier for SQL or replication commands ("a""b").
std::string QuoteIdent(std::string_view name);
// Quotes a string literal ('it''s').
std::string QuoteLiteral(std::string_view value);

}  // namespace splitstream::pg
