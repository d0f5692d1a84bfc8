#include "splitstream/pgoutput/pgoutput.h"

#include <fmt/format.h>

#include <limits>
#include <utility>

#include "reader.h"

namespace splitstream::pgoutput {
namespace {

// ---------------------------------------------------------------------------------------------
// Errors. Kept out of line: the hot path only tests booleans.

[[gnu::cold, gnu::noinline]] Status Truncated(std::string_view type, const Reader& r,
                                              std::string_view field) {
  return Status::InvalidArgument(
      fmt::format("pgoutput {} message truncated at byte {} ({})", type, r.offset(), field));
}

[[gnu::cold, gnu::noinline]] Status Malformed(std::string_view type, size_t offset,
                                              std::string_view what) {
  return Status::InvalidArgument(
      fmt::format("pgoutput {} message malformed at byte {}: {}", type, offset, what));
}

Status CheckEnd(std::string_view type, const Reader& r) {
  if (r.remaining() == 0) return Status::Ok();
  return Malformed(type, r.offset(), fmt::format("{} trailing bytes", r.remaining()));
}

// ---------------------------------------------------------------------------------------------
// Reusing *out. std::variant destroys the old alternative when another is emplaced; the
// vectors of tuple-bearing alternatives are parked here first and handed to the next
// alternative that needs them, so that the usual Begin, Insert..., Commit cycle stays
// allocation-free once warm.

struct Spares {
  std::vector<Value> values[3];
  int value_count = 0;
  std::vector<Column> columns;
  std::vector<uint32_t> oids;

  void ParkValues(std::vector<Value>* v) {
    if (v->capacity() == 0 || value_count == 3) return;
    values[value_count++] = std::move(*v);
  }
  void TakeValues(std::vector<Value>* v) {
    if (value_count > 0) *v = std::move(values[--value_count]);
  }
};
thread_local Spares spares;

void Park(Message* out) {
  if (auto* m = std::get_if<Insert>(out)) {
    spares.ParkValues(&m->new_tuple);
  } else if (auto* m = std::get_if<Update>(out)) {
    spares.ParkValues(&m->old_tuple);
    spares.ParkValues(&m->new_tuple);
  } else if (auto* m = std::get_if<Delete>(out)) {
    spares.ParkValues(&m->old_tuple);
  } else if (auto* m = std::get_if<Relation>(out)) {
    if (m->columns.capacity() > spares.columns.capacity()) spares.columns = std::move(m->columns);
  } else if (auto* m = std::get_if<Truncate>(out)) {
    if (m->relation_oids.capacity() > spares.oids.capacity()) {
      spares.oids = std::move(m->relation_oids);
    }
  }
}

void Unpark(Insert* m) { spares.TakeValues(&m->new_tuple); }
void Unpark(Update* m) {
  spares.TakeValues(&m->new_tuple);
  spares.TakeValues(&m->old_tuple);
}
void Unpark(Delete* m) { spares.TakeValues(&m->old_tuple); }
void Unpark(Relation* m) { m->columns = std::move(spares.columns); }
void Unpark(Truncate* m) { m->relation_oids = std::move(spares.oids); }
template <typename T>
void Unpark(T*) {}

template <typename T>
T& Reuse(Message* out) {
  if (auto* m = std::get_if<T>(out)) return *m;
  Park(out);
  T& m = out->template emplace<T>();
  Unpark(&m);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Message bodies. Each reader starts after the type byte.

Status ReadTuple(std::string_view type, Reader& r, std::vector<Value>* tuple) {
  uint16_t ncols;
  if (!r.U16(&ncols)) return Truncated(type, r, "column count");
  // Every column takes at least its kind byte: reject absurd counts before resizing.
  if (ncols > r.remaining()) {
    return Malformed(type, r.offset() - 2,
                     fmt::format("{} columns but {} bytes left", ncols, r.remaining()));
  }
  tuple->resize(ncols);
  for (Value& v : *tuple) {
    uint8_t kind;
    if (!r.U8(&kind)) return Truncated(type, r, "column kind");
    switch (kind) {
      case 'n':
        v = {ValueKind::kNull, {}};
        break;
      case 'u':
        v = {ValueKind::kUnchangedToast, {}};
        break;
      case 't':
      case 'b': {
        int32_t len;
        if (!r.I32(&len)) return Truncated(type, r, "value length");
        if (len < 0) return Malformed(type, r.offset() - 4, "negative value length");
        v.kind = kind == 't' ? ValueKind::kText : ValueKind::kBinary;
        if (!r.Bytes(static_cast<size_t>(len), &v.data)) return Truncated(type, r, "value");
        break;
      }
      default:
        return Malformed(type, r.offset() - 1, fmt::format("unknown column kind 0x{:02x}", kind));
    }
  }
  return Status::Ok();
}

Status ReadBegin(Reader& r, Begin* m) {
  uint64_t lsn;
  int64_t ts;
  if (!r.U64(&lsn)) return Truncated("Begin", r, "final_lsn");
  if (!r.I64(&ts)) return Truncated("Begin", r, "commit_time");
  if (!r.U32(&m->xid)) return Truncated("Begin", r, "xid");
  m->final_lsn = Lsn(lsn);
  m->commit_time_us = PgTimestampToUnixUs(ts);
  return CheckEnd("Begin", r);
}

Status ReadCommit(Reader& r, Commit* m) {
  uint64_t commit_lsn, end_lsn;
  int64_t ts;
  if (!r.U8(&m->flags)) return Truncated("Commit", r, "flags");
  if (!r.U64(&commit_lsn)) return Truncated("Commit", r, "commit_lsn");
  if (!r.U64(&end_lsn)) return Truncated("Commit", r, "end_lsn");
  if (!r.I64(&ts)) return Truncated("Commit", r, "commit_time");
  m->commit_lsn = Lsn(commit_lsn);
  m->end_lsn = Lsn(end_lsn);
  m->commit_time_us = PgTimestampToUnixUs(ts);
  return CheckEnd("Commit", r);
}

Status ReadOrigin(Reader& r, Origin* m) {
  uint64_t lsn;
  if (!r.U64(&lsn)) return Truncated("Origin", r, "commit_lsn");
  if (!r.CString(&m->name)) return Truncated("Origin", r, "name");
  m->commit_lsn = Lsn(lsn);
  return CheckEnd("Origin", r);
}

Status ReadRelation(Reader& r, Relation* m) {
  constexpr std::string_view kType = "Relation";
  uint8_t ri;
  uint16_t ncols;
  if (!r.U32(&m->oid)) return Truncated(kType, r, "oid");
  if (!r.CString(&m->ns)) return Truncated(kType, r, "namespace");
  if (!r.CString(&m->name)) return Truncated(kType, r, "name");
  if (!r.U8(&ri)) return Truncated(kType, r, "replica identity");
  if (!r.U16(&ncols)) return Truncated(kType, r, "column count");
  // A column takes at least 10 bytes (flags, empty name, type oid, modifier).
  if (ncols > r.remaining() / 10) {
    return Malformed(kType, r.offset() - 2,
                     fmt::format("{} columns but {} bytes left", ncols, r.remaining()));
  }
  m->replica_identity = static_cast<char>(ri);
  m->columns.resize(ncols);
  for (Column& c : m->columns) {
    uint8_t flags;
    if (!r.U8(&flags)) return Truncated(kType, r, "column flags");
    if (!r.CString(&c.name)) return Truncated(kType, r, "column name");
    if (!r.U32(&c.type_oid)) return Truncated(kType, r, "column type oid");
    if (!r.I32(&c.type_modifier)) return Truncated(kType, r, "column type modifier");
    c.key = (flags & 1) != 0;
  }
  return CheckEnd(kType, r);
}

Status ReadType(Reader& r, TypeMessage* m) {
  if (!r.U32(&m->oid)) return Truncated("Type", r, "oid");
  if (!r.CString(&m->ns)) return Truncated("Type", r, "namespace");
  if (!r.CString(&m->name)) return Truncated("Type", r, "name");
  return CheckEnd("Type", r);
}

// The tag byte before a tuple: 'N' (new), 'K' (key) or 'O' (old).
Status ReadTag(std::string_view type, Reader& r, uint8_t* tag) {
  if (!r.U8(tag)) return Truncated(type, r, "tuple tag");
  return Status::Ok();
}

Status ReadInsert(Reader& r, Insert* m) {
  uint8_t tag = 0;
  if (!r.U32(&m->relation_oid)) return Truncated("Insert", r, "relation oid");
  SPLITSTREAM_RETURN_IF_ERROR(ReadTag("Insert", r, &tag));
  if (tag != 'N') return Malformed("Insert", r.offset() - 1, "expected tuple tag 'N'");
  SPLITSTREAM_RETURN_IF_ERROR(ReadTuple("Insert", r, &m->new_tuple));
  return CheckEnd("Insert", r);
}

Status ReadUpdate(Reader& r, Update* m) {
  uint8_t tag = 0;
  if (!r.U32(&m->relation_oid)) return Truncated("Update", r, "relation oid");
  SPLITSTREAM_RETURN_IF_ERROR(ReadTag("Update", r, &tag));
  if (tag == 'K' || tag == 'O') {
    m->old_kind = static_cast<char>(tag);
    SPLITSTREAM_RETURN_IF_ERROR(ReadTuple("Update", r, &m->old_tuple));
    SPLITSTREAM_RETURN_IF_ERROR(ReadTag("Update", r, &tag));
  } else {
    m->old_kind = 0;
    m->old_tuple.clear();
  }
  if (tag != 'N') return Malformed("Update", r.offset() - 1, "expected tuple tag 'N'");
  SPLITSTREAM_RETURN_IF_ERROR(ReadTuple("Update", r, &m->new_tuple));
  return CheckEnd("Update", r);
}

Status ReadDelete(Reader& r, Delete* m) {
  uint8_t tag = 0;
  if (!r.U32(&m->relation_oid)) return Truncated("Delete", r, "relation oid");
  SPLITSTREAM_RETURN_IF_ERROR(ReadTag("Delete", r, &tag));
  if (tag != 'K' && tag != 'O') {
    return Malformed("Delete", r.offset() - 1, "expected tuple tag 'K' or 'O'");
  }
  m->old_kind = static_cast<char>(tag);
  SPLITSTREAM_RETURN_IF_ERROR(ReadTuple("Delete", r, &m->old_tuple));
  return CheckEnd("Delete", r);
}

Status ReadTruncate(Reader& r, Truncate* m) {
  uint32_t count;
  if (!r.U32(&count)) return Truncated("Truncate", r, "relation count");
  if (!r.U8(&m->options)) return Truncated("Truncate", r, "options");
  if (count > r.remaining() / 4) {
    return Malformed("Truncate", 1,
                     fmt::format("{} relations but {} bytes left", count, r.remaining()));
  }
  m->relation_oids.resize(count);
  for (uint32_t& oid : m->relation_oids) {
    if (!r.U32(&oid)) return Truncated("Truncate", r, "relation oid");  // unreachable
  }
  return CheckEnd("Truncate", r);
}

Status ReadMessage(Reader& r, LogicalMessage* m) {
  uint8_t flags;
  uint64_t lsn;
  int32_t len;
  if (!r.U8(&flags)) return Truncated("Message", r, "flags");
  if (!r.U64(&lsn)) return Truncated("Message", r, "lsn");
  if (!r.CString(&m->prefix)) return Truncated("Message", r, "prefix");
  if (!r.I32(&len)) return Truncated("Message", r, "content length");
  if (len < 0) return Malformed("Message", r.offset() - 4, "negative content length");
  if (!r.Bytes(static_cast<size_t>(len), &m->content)) return Truncated("Message", r, "content");
  m->transactional = (flags & 1) != 0;
  m->lsn = Lsn(lsn);
  return CheckEnd("Message", r);
}

[[gnu::cold, gnu::noinline]] Status UnsupportedType(uint8_t type) {
  std::string_view name;
  switch (type) {
    case 'S':
      name = "Stream Start";
      break;
    case 'E':
      name = "Stream Stop";
      break;
    case 'c':
      name = "Stream Commit";
      break;
    case 'A':
      name = "Stream Abort";
      break;
    case 'b':
      name = "Begin Prepare";
      break;
    case 'P':
      name = "Prepare";
      break;
    case 'K':
      name = "Commit Prepared";
      break;
    case 'r':
      name = "Rollback Prepared";
      break;
    case 'p':
      name = "Stream Prepare";
      break;
    default:
      return Status::InvalidArgument(
          fmt::format("unknown pgoutput message type 0x{:02x} at byte 0", type));
  }
  return Status::InvalidArgument(fmt::format(
      "pgoutput {} message ('{}') at byte 0 belongs to protocol version 2 or 3; this decoder "
      "speaks version 1 (proto_version '1', no streaming, no two_phase)",
      name, static_cast<char>(type)));
}

}  // namespace

int64_t PgTimestampToUnixUs(int64_t pg_us) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (pg_us > kMax - kPostgresEpochUnixUs) return kMax;
  return pg_us + kPostgresEpochUnixUs;
}

int64_t UnixUsToPgTimestamp(int64_t unix_us) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (unix_us < kMin + kPostgresEpochUnixUs) return kMin;
  return unix_us - kPostgresEpochUnixUs;
}

Status Decode(std::string_view bytes, Message* out) {
  if (bytes.empty()) return Status::InvalidArgument("empty pgoutput message");
  Reader r(bytes, 1);
  const auto type = static_cast<uint8_t>(bytes[0]);
  switch (type) {
    case 'B':
      return ReadBegin(r, &Reuse<Begin>(out));
    case 'C':
      return ReadCommit(r, &Reuse<Commit>(out));
    case 'O':
      return ReadOrigin(r, &Reuse<Origin>(out));
    case 'R':
      return ReadRelation(r, &Reuse<Relation>(out));
    case 'Y':
      return ReadType(r, &Reuse<TypeMessage>(out));
    case 'I':
      return ReadInsert(r, &Reuse<Insert>(out));
    case 'U':
      return ReadUpdate(r, &Reuse<Update>(out));
    case 'D':
      return ReadDelete(r, &Reuse<Delete>(out));
    case 'T':
      return ReadTruncate(r, &Reuse<Truncate>(out));
    case 'M':
      return ReadMessage(r, &Reuse<LogicalMessage>(out));
    default:
      return UnsupportedType(type);
  }
}

std::string_view MessageTypeName(const Message& message) {
  static constexpr std::string_view kNames[] = {"Begin",    "Commit", "Origin", "Relation",
                                                "Type",     "Insert", "Update", "Delete",
                                                "Truncate", "Message"};
  static_assert(std::size(kNames) == std::variant_size_v<Message>);
  return kNames[message.index()];
}

// ---------------------------------------------------------------------------------------------
// Stream framing.

Result<StreamMessage> DecodeStreamMessage(std::string_view copy_data) {
  if (copy_data.empty()) return Status::InvalidArgument("empty replication CopyData message");
  Reader r(copy_data, 1);
  uint64_t start, end;
  int64_t ts;
  switch (copy_data[0]) {
    case 'w': {
      if (!r.U64(&start)) return Truncated("XLogData", r, "wal_start");
      if (!r.U64(&end)) return Truncated("XLogData", r, "wal_end");
      if (!r.I64(&ts)) return Truncated("XLogData", r, "send_time");
      return StreamMessage(
          XLogData{Lsn(start), Lsn(end), PgTimestampToUnixUs(ts), copy_data.substr(r.offset())});
    }
    case 'k': {
      uint8_t reply;
      if (!r.U64(&end)) return Truncated("Keepalive", r, "wal_end");
      if (!r.I64(&ts)) return Truncated("Keepalive", r, "send_time");
      if (!r.U8(&reply)) return Truncated("Keepalive", r, "reply_requested");
      SPLITSTREAM_RETURN_IF_ERROR(CheckEnd("Keepalive", r));
      return StreamMessage(Keepalive{Lsn(end), PgTimestampToUnixUs(ts), reply != 0});
    }
    default:
      return Status::InvalidArgument(fmt::format(
          "unknown replication CopyData message type 0x{:02x} at byte 0 (expected 'w' or 'k')",
          static_cast<uint8_t>(copy_data[0])));
  }
}

std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t now_unix_us,
                                bool reply_requested) {
  std::string out;
  out.reserve(kStandbyStatusSize);
  out.push_back('r');
  AppendU64(&out, write.value());
  AppendU64(&out, flush.value());
  AppendU64(&out, apply.value());
  AppendU64(&out, static_cast<uint64_t>(UnixUsToPgTimestamp(now_unix_us)));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

}  // namespace splitstream::pgoutput
