// Pure decoder of PostgreSQL's logical replication stream: the framing of START_REPLICATION
// (XLogData, primary keepalive, standby status update) and the messages of the pgoutput
// plugin, protocol version 1 (PostgreSQL 15). No I/O; the byte layout is written down in
// libs/pgoutput/WIRE.md.
//
// Errors: truncated or malformed input yields InvalidArgument naming the message type and the
// byte offset of the problem. The decoder never reads past the end of its input.
// Ownership: decoded messages hold string_views into the caller's bytes; the caller keeps
// those bytes alive (and unchanged) while it uses the message.
// Thread safety: the free functions are thread-safe (Decode keeps its spare buffers per
// thread); a RelationCache is not (one owner, or external locking).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "splitstream/core/lsn.h"
#include "splitstream/core/result.h"
#include "splitstream/core/status.h"

namespace splitstream::pgoutput {

// PostgreSQL's epoch (2000-01-01 00:00:00 UTC) in microseconds since the Unix epoch.
inline constexpr int64_t kPostgresEpochUnixUs = 946'684'800'000'000;

// Wire timestamps (microseconds since 2000-01-01) to microseconds since the Unix epoch and
// back; both saturate at the int64 limits instead of overflowing.
int64_t PgTimestampToUnixUs(int64_t pg_us);
int64_t UnixUsToPgTimestamp(int64_t unix_us);

// ---------------------------------------------------------------------------------------------
// Replication stream framing: the payload of each CopyData message of START_REPLICATION.

// 'w': WAL data; `payload` is one pgoutput message (a view into the CopyData bytes).
struct XLogData {
  Lsn wal_start;
  Lsn wal_end;
  int64_t send_time_us;  // Unix epoch
  std::string_view payload;
};
// 'k': the server's keepalive; when reply_requested the client must answer with a standby
// status update soon or be disconnected after wal_sender_timeout.
struct Keepalive {
  Lsn wal_end;
  int64_t send_time_us;  // Unix epoch
  bool reply_requested;
};
using StreamMessage = std::variant<XLogData, Keepalive>;

// Decodes the payload of one CopyData message ('w' or 'k'). Other types and wrong sizes are
// InvalidArgument. XLogData::payload points into `copy_data`.
Result<StreamMessage> DecodeStreamMessage(std::string_view copy_data);

// The standby status update ('r', 34 bytes) the client sends back: `flush` is the position up
// to which the server may discard WAL for this slot. `now_unix_us` is converted to the wire's
// 2000-01-01 epoch.
inline constexpr size_t kStandbyStatusSize = 34;
std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t now_unix_us,
                                bool reply_requested);

// ---------------------------------------------------------------------------------------------
// pgoutput messages (protocol version 1). All *_us fields are microseconds since the Unix
// epoch.

struct Begin {    // 'B'
  Lsn final_lsn;  // LSN of the transaction's commit record
  int64_t commit_time_us;
  uint32_t xid;
};
struct Commit {    // 'C'
  uint8_t flags;   // currently unused (0)
  Lsn commit_lsn;  // LSN of the commit record (== Begin::final_lsn)
  Lsn end_lsn;     // end of the transaction's commit record: the position to confirm
  int64_t commit_time_us;
};
struct Origin {    // 'O': the transaction came from another node (a replication origin)
  Lsn commit_lsn;  // the commit LSN on the origin server
  std::string_view name;
};
struct Column {
  bool key;  // part of the replica identity
  std::string_view name;
  uint32_t type_oid;
  int32_t type_modifier;  // atttypmod, -1 when none
};
struct Relation {  // 'R': sent before the first change of a relation in a session and after
                   // every schema change
  uint32_t oid;
  std::string_view ns;  // schema; empty for pg_catalog
  std::string_view name;
  char replica_identity;  // 'd' default, 'n' nothing, 'f' full, 'i' index
  std::vector<Column> columns;
};
struct TypeMessage {  // 'Y': a non-built-in type used by a following Relation
  uint32_t oid;
  std::string_view ns;
  std::string_view name;
};
enum class ValueKind : uint8_t { kNull, kUnchangedToast, kText, kBinary };
struct Value {
  ValueKind kind;
  std::string_view data;  // the value's text (or binary) form; empty for kNull/kUnchangedToast
};
struct Insert {  // 'I'
  uint32_t relation_oid;
  std::vector<Value> new_tuple;
};
struct Update {  // 'U'
  uint32_t relation_oid;
  char old_kind;  // 0 (no old tuple), 'K' (replica identity columns only), 'O' (old row)
  std::vector<Value> old_tuple;  // empty when old_kind == 0
  std::vector<Value> new_tuple;
};
struct Delete {  // 'D'
  uint32_t relation_oid;
  char old_kind;  // 'K' or 'O'
  std::vector<Value> old_tuple;
};
inline constexpr uint8_t kTruncateCascade = 1;
inline constexpr uint8_t kTruncateRestartIdentity = 2;
struct Truncate {   // 'T'
  uint8_t options;  // kTruncateCascade | kTruncateRestartIdentity
  std::vector<uint32_t> relation_oids;
};
struct LogicalMessage {  // 'M': pg_logical_emit_message (needs the 'messages' option)
  bool transactional;
  Lsn lsn;
  std::string_view prefix;
  std::string_view content;
};
using Message = std::variant<Begin, Commit, Origin, Relation, TypeMessage, Insert, Update, Delete,
                             Truncate, LogicalMessage>;

// Decodes one pgoutput message (an XLogData payload). Views in *out point into `bytes`. *out
// is reused across calls: when it already holds the decoded alternative its vectors keep
// their capacity, and vectors of a replaced alternative are parked in per-thread spares, so a
// warm decoder does not allocate per message. Truncated or malformed input (including
// trailing bytes and the streaming / two-phase messages of protocol versions 2 and 3) returns
// InvalidArgument naming the message type and byte offset; *out is then unspecified.
Status Decode(std::string_view bytes, Message* out);

// "Begin", "Insert", ...: the name of the message's type, for logs and errors.
std::string_view MessageTypeName(const Message& message);

// ---------------------------------------------------------------------------------------------
// Relations seen in the stream, owned (Relation messages only hold views).

struct ColumnInfo {
  bool key;
  std::string name;
  uint32_t type_oid;
  int32_t type_modifier;
  bool operator==(const ColumnInfo&) const = default;
};
struct RelationInfo {
  uint32_t oid;
  std::string ns;
  std::string name;
  char replica_identity;
  std::vector<ColumnInfo> columns;
  uint64_t version;  // 1 when first seen; bumps whenever a Relation message changes anything
};

// Owned copy of the relations of a stream, updated on every Relation message (schema changes
// arrive as a new Relation message before the first change that uses them). Not thread-safe.
class RelationCache {
 public:
  // Records `relation` and returns its entry. The reference stays valid for the cache's
  // lifetime (later Apply calls for the same oid update it in place). A message identical to
  // the cached entry leaves `version` unchanged.
  const RelationInfo& Apply(const Relation& relation);
  // The entry for `oid`, or nullptr when no Relation message named it yet.
  const RelationInfo* Find(uint32_t oid) const;
  size_t size() const { return relations_.size(); }

 private:
  std::unordered_map<uint32_t, RelationInfo> relations_;
};

}  // namespace splitstream::pgoutput
