#include "splitstream/debezium/decoder.h"

#include <charconv>
#include <cstring>
#include <limits>

#include <simdjson.h>

namespace splitstream::debezium {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

Status Bad(std::string_view path, std::string_view what) {
  std::string p(path);
  return Status::InvalidArgument(p + ": " + std::string(what), p);
}

// `path` + "." + `member`, built only for an error message.
std::string Join(std::string_view path, std::string_view member) {
  std::string p;
  p.reserve(path.size() + 1 + member.size());
  p.append(path).append(".").append(member);
  return p;
}

// The path of an object ("value.source"), kept as its parts on the hot path and joined only
// for an error message.
struct ObjectPath {
  std::string_view base, member;  // member empty: the object is at `base`
  std::string Str() const { return member.empty() ? std::string(base) : Join(base, member); }
  std::string Str(std::string_view name) const { return Join(Str(), name); }
};

// The member `name` of `obj`, or a null element_result when absent.
bool Member(const object& obj, std::string_view name, element* out) {
  return obj.at_key(name).get(*out) == simdjson::SUCCESS;
}

bool IsNull(const element& e) { return e.type() == element_type::NULL_VALUE; }

// *out = s, reusing out's capacity (leaner than assign's general replace).
void Assign(std::string_view s, std::string* out) {
  out->clear();
  out->append(s.data(), s.size());
}

void ToField(const element& e, std::string_view name, Field* f) {
  // Rows of a table repeat their field names: usually the name is already there.
  if (f->name.size() != name.size() || std::memcmp(f->name.data(), name.data(), name.size()) != 0) {
    Assign(name, &f->name);
  }
  f->s.clear();
  f->b = false;
  f->i = 0;
  f->d = 0;
  switch (e.type()) {
    case element_type::NULL_VALUE:
      f->kind = FieldKind::kNull;
      break;
    case element_type::BOOL:
      f->kind = FieldKind::kBool;
      f->b = bool(e);
      break;
    case element_type::INT64:
      f->kind = FieldKind::kInt;
      f->i = int64_t(e);
      break;
    case element_type::UINT64:  // above int64's range
      f->kind = FieldKind::kDouble;
      f->d = static_cast<double>(uint64_t(e));
      break;
    case element_type::DOUBLE:
      f->kind = FieldKind::kDouble;
      f->d = double(e);
      break;
    case element_type::STRING: {
      f->kind = FieldKind::kString;
      Assign(std::string_view(e), &f->s);
      break;
    }
    case element_type::ARRAY:
    case element_type::OBJECT:
      f->kind = FieldKind::kJson;
      f->s = simdjson::minify(e);
      break;
  }
}

// Engages *out reusing `spare`'s storage (fields and their strings keep their capacity), or
// moves out's storage into `spare` when the image is absent.
RowImage& Engage(std::optional<RowImage>* out, RowImage* spare) {
  if (!out->has_value()) out->emplace(std::move(*spare));
  return **out;
}
void Disengage(std::optional<RowImage>* out, RowImage* spare) {
  if (out->has_value()) {
    *spare = std::move(**out);
    out->reset();
  }
}

// An object (row image) or null; anything else is an error at `path` (+ "." + `member` when
// given). Reuses the storage of *out (or `spare`): the fields keep their strings' capacity from
// one message to the next.
Status ToRowImage(const element& e, std::string_view path, std::string_view member,
                  std::optional<RowImage>* out, RowImage* spare) {
  if (IsNull(e)) {
    Disengage(out, spare);
    return Status::Ok();
  }
  object obj;
  if (e.get(obj) != simdjson::SUCCESS) {
    return Bad(member.empty() ? std::string(path) : Join(path, member), "expected object or null");
  }
  RowImage& row = Engage(out, spare);
  size_t n = 0;
  for (auto [k, v] : obj) {
    if (n == row.fields.size()) row.fields.emplace_back();
    ToField(v, k, &row.fields[n]);
    ++n;
  }
  row.fields.resize(n);
  return Status::Ok();
}

// A changefeed key: a JSON array of primary-key values, named by position.
Status ArrayToRowImage(const element& e, std::string_view path, std::optional<RowImage>* out,
                       RowImage* spare) {
  simdjson::dom::array arr;
  if (e.get(arr) != simdjson::SUCCESS) return Bad(path, "expected array");
  RowImage& row = Engage(out, spare);
  row.fields.clear();
  size_t i = 0;
  for (element v : arr) {
    row.fields.emplace_back();
    ToField(v, std::to_string(i++), &row.fields.back());
  }
  return Status::Ok();
}

// A member found by a one-pass scan of an object (first occurrence wins, as object::at_key).
// An optional rather than an element and a flag: the scanners' structs are built for every
// message, and this way nothing but the flags is initialized.
struct Slot {
  std::optional<element> e;
  bool found() const { return e.has_value(); }
  void Set(const element& v) {
    if (!e) e = v;
  }
  // Present and not null.
  bool Valued() const { return e && !IsNull(*e); }
};

// The string member `name` of the object at `path` when present and not null (*present
// then), an error when it is not a string.
Status OptionalString(const Slot& m, const ObjectPath& path, std::string_view name,
                      std::string_view* out, bool* present) {
  *present = false;
  if (!m.Valued()) return Status::Ok();
  if (m.e->get(*out) != simdjson::SUCCESS) return Bad(path.Str(name), "expected string");
  *present = true;
  return Status::Ok();
}

Status OptionalString(const Slot& m, const ObjectPath& path, std::string_view name,
                      std::string* out, bool* present) {
  std::string_view s;
  SPLITSTREAM_RETURN_IF_ERROR(OptionalString(m, path, name, &s, present));
  if (*present) out->assign(s.data(), s.size());
  return Status::Ok();
}

Status OptionalString(const object& obj, std::string_view name, std::string_view path,
                      std::string* out, bool* present) {
  Slot m;
  element e;
  if (Member(obj, name, &e)) m.Set(e);
  return OptionalString(m, ObjectPath{path, {}}, name, out, present);
}

Status OptionalInt(const Slot& m, const ObjectPath& path, std::string_view name, int64_t* out) {
  if (!m.Valued()) return Status::Ok();
  if (m.e->get(*out) != simdjson::SUCCESS) return Bad(path.Str(name), "expected integer");
  return Status::Ok();
}

// k == lit, for a key whose size the caller already matched to the literal's: a fixed-size
// compare the compiler inlines.
template <size_t N>
bool SameKey(std::string_view k, const char (&lit)[N]) {
  return std::memcmp(k.data(), lit, N - 1) == 0;
}

// The members of a Debezium envelope (or of the JSON converter's wrapper: payload, schema)
// that the decoder reads, in one pass instead of one object::at_key scan each.
struct EnvelopeMembers {
  Slot payload, schema, op, source, before, after;

  void Scan(const object& obj) {
    for (auto [k, v] : obj) {
      switch (k.size()) {
        case 2:
          if (SameKey(k, "op")) op.Set(v);
          break;
        case 5:
          if (SameKey(k, "after")) after.Set(v);
          break;
        case 6:
          if (SameKey(k, "source")) {
            source.Set(v);
          } else if (SameKey(k, "before")) {
            before.Set(v);
          } else if (SameKey(k, "schema")) {
            schema.Set(v);
          }
          break;
        case 7:
          if (SameKey(k, "payload")) payload.Set(v);
          break;
      }
    }
  }
};

// The members of a Debezium `source` block that the decoder reads.
struct SourceMembers {
  Slot connector, schema, table, lsn, ts_ms, tx_id, snapshot, sequence;

  void Scan(const object& obj) {
    for (auto [k, v] : obj) {
      switch (k.size()) {
        case 3:
          if (SameKey(k, "lsn")) lsn.Set(v);
          break;
        case 4:
          if (SameKey(k, "txId")) tx_id.Set(v);
          break;
        case 5:
          if (SameKey(k, "ts_ms")) {
            ts_ms.Set(v);
          } else if (SameKey(k, "table")) {
            table.Set(v);
          }
          break;
        case 6:
          if (SameKey(k, "schema")) schema.Set(v);
          break;
        case 8:
          if (SameKey(k, "sequence")) {
            sequence.Set(v);
          } else if (SameKey(k, "snapshot")) {
            snapshot.Set(v);
          }
          break;
        case 9:
          if (SameKey(k, "connector")) connector.Set(v);
          break;
      }
    }
  }
};

bool ParseUint64(std::string_view s, uint64_t* v) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Debezium's source.sequence: a string holding ["<last commit lsn>"|null,"<lsn>"|null].
bool ParseSequence(std::string_view s, uint64_t* first, uint64_t* second) {
  uint64_t* slots[2] = {first, second};
  size_t pos = 0;
  auto eat = [&](char c) {
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  };
  if (!eat('[')) return false;
  for (int i = 0; i < 2; ++i) {
    if (i == 1 && !eat(',')) return false;
    *slots[i] = 0;
    if (s.substr(pos, 4) == "null") {
      pos += 4;
      continue;
    }
    if (!eat('"')) return false;
    size_t end = s.find('"', pos);
    if (end == std::string_view::npos || !ParseUint64(s.substr(pos, end - pos), slots[i])) {
      return false;
    }
    pos = end + 1;
  }
  return eat(']') && pos == s.size();
}

// CockroachDB HLC timestamp "<wall nanos>.<logical>".
bool ParseHlc(std::string_view s, int64_t* wall, int32_t* logical) {
  size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= s.size()) return false;
  std::string_view w = s.substr(0, dot), l = s.substr(dot + 1);
  auto r1 = std::from_chars(w.data(), w.data() + w.size(), *wall);
  auto r2 = std::from_chars(l.data(), l.data() + l.size(), *logical);
  return r1.ec == std::errc() && r1.ptr == w.data() + w.size() && r2.ec == std::errc() &&
         r2.ptr == l.data() + l.size() && *wall >= 0 && *logical >= 0;
}

// Splits "<prefix>.<schema>.<table>" (Debezium) keeping the last two parts.
bool TopicSchemaTable(std::string_view topic, std::string* schema, std::string* table) {
  size_t last = topic.rfind('.');
  if (last == std::string_view::npos || last == 0 || last + 1 >= topic.size()) return false;
  size_t prev = topic.rfind('.', last - 1);
  if (prev == std::string_view::npos) return false;
  schema->assign(topic.substr(prev + 1, last - prev - 1));
  table->assign(topic.substr(last + 1));
  return !schema->empty();
}

// The JSON converter's {"schema": ..., "payload": ...} wrapper, when present.
bool Unwrap(const element& doc, element* payload, element* schema) {
  object obj;
  if (doc.get(obj) != simdjson::SUCCESS) return false;
  element p, s;
  if (Member(obj, "payload", &p) && Member(obj, "schema", &s)) {
    *payload = p;
    *schema = s;
    return true;
  }
  return false;
}

// Field name -> logical name or Connect type of the `after` struct of an envelope schema.
void ReadAfterSchema(const element& schema, std::vector<std::pair<std::string, std::string>>* out) {
  simdjson::dom::array fields;
  if (schema["fields"].get(fields) != simdjson::SUCCESS) return;
  for (element f : fields) {
    std::string_view name;
    if (f["field"].get(name) != simdjson::SUCCESS || name != "after") continue;
    simdjson::dom::array cols;
    if (f["fields"].get(cols) != simdjson::SUCCESS) return;
    for (element c : cols) {
      std::string_view col, type;
      if (c["field"].get(col) != simdjson::SUCCESS) continue;
      if (c["name"].get(type) != simdjson::SUCCESS && c["type"].get(type) != simdjson::SUCCESS) {
        continue;
      }
      out->emplace_back(std::string(col), std::string(type));
    }
    return;
  }
}

}  // namespace

const Field* RowImage::Find(std::string_view name) const {
  for (const Field& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

struct Decoder::Impl {
  DecoderOptions options;
  simdjson::dom::parser value_parser;
  simdjson::dom::parser key_parser;
  // Storage of absent row images, kept for the next record that has one (DecodeInto).
  RowImage spare_key, spare_before, spare_after;

  // Whether the key of *rec's message is to be decoded (DecoderOptions::key), once its value
  // was.
  bool WantKey(const ChangeRecord& rec) const {
    return options.key == KeyDecoding::kAlways || !rec.after.has_value() || rec.op == Op::kDelete;
  }

  // Clears *rec for a new message, keeping the storage of its strings and row images.
  void Reset(ChangeRecord* rec) {
    rec->kind = ChangeRecord::Kind::kRow;
    rec->format = SourceFormat::kDebezium;
    rec->op = Op::kCreate;
    rec->schema.clear();
    rec->table.clear();
    Disengage(&rec->key, &spare_key);
    Disengage(&rec->before, &spare_before);
    Disengage(&rec->after, &spare_after);
    rec->lsn = Lsn();
    rec->commit_lsn = Lsn();
    rec->source_ts_ms = 0;
    rec->snapshot.clear();
    rec->tx_id = 0;
    rec->resolved.clear();
    rec->hlc_wall_ns = 0;
    rec->hlc_logical = 0;
    rec->after_schema.clear();
  }

  // Debezium key: a JSON object (optionally schema-wrapped) or null.
  Status DecodeDebeziumKey(std::optional<std::string_view> key, ChangeRecord* rec) {
    if (!key) return Status::Ok();
    element doc;
    if (auto err = key_parser.parse(key->data(), key->size()).get(doc)) {
      return Bad("key", std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    element payload, schema;
    std::string_view path = "key";
    if (Unwrap(doc, &payload, &schema)) {
      doc = payload;
      path = "key.payload";
    }
    return ToRowImage(doc, path, {}, &rec->key, &spare_key);
  }

  Status DecodeChangefeedKey(std::optional<std::string_view> key, ChangeRecord* rec) {
    if (!key) return Status::Ok();
    element doc;
    if (auto err = key_parser.parse(key->data(), key->size()).get(doc)) {
      return Bad("key", std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    return ArrayToRowImage(doc, "key", &rec->key, &spare_key);
  }

  // `m`: the members of the payload (when it is an object), `src`: those of its `source`
  // (when that is an object).
  Status DebeziumPayload(const element& payload, const EnvelopeMembers& m, const SourceMembers& src,
                         const element* schema, std::string_view path, ChangeRecord* rec) {
    rec->format = SourceFormat::kDebezium;
    if (payload.type() != element_type::OBJECT) return Bad(path, "expected object");
    std::string_view op;
    bool has_op = false;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(m.op, ObjectPath{path, {}}, "op", &op, &has_op));
    if (!has_op) return Bad(Join(path, "op"), "missing");
    auto unknown_op = [&] {
      return Bad(Join(path, "op"), "unknown operation '" + std::string(op) + "'");
    };
    if (op.size() != 1) return unknown_op();
    switch (op[0]) {
      case 'c':
      case 'u':
      case 'd':
      case 'r':
        rec->kind = ChangeRecord::Kind::kRow;
        break;
      case 't':
        rec->kind = ChangeRecord::Kind::kTruncate;
        break;
      case 'm':
        rec->kind = ChangeRecord::Kind::kMessage;
        break;
      default:
        return unknown_op();
    }
    rec->op = static_cast<Op>(op[0]);

    if (!m.source.found()) return Bad(Join(path, "source"), "missing");
    if (m.source.e->type() != element_type::OBJECT)
      return Bad(Join(path, "source"), "expected object");
    const ObjectPath spath{path, "source"};
    bool has_schema = false, has_table = false;
    SPLITSTREAM_RETURN_IF_ERROR(
        OptionalString(src.schema, spath, "schema", &rec->schema, &has_schema));
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(src.table, spath, "table", &rec->table, &has_table));
    if (rec->kind != ChangeRecord::Kind::kMessage) {
      if (!has_schema) return Bad(spath.Str("schema"), "missing");
      if (!has_table) return Bad(spath.Str("table"), "missing");
    }
    int64_t lsn = 0, ts_ms = 0, tx_id = 0;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalInt(src.lsn, spath, "lsn", &lsn));
    SPLITSTREAM_RETURN_IF_ERROR(OptionalInt(src.ts_ms, spath, "ts_ms", &ts_ms));
    SPLITSTREAM_RETURN_IF_ERROR(OptionalInt(src.tx_id, spath, "txId", &tx_id));
    if (lsn < 0) return Bad(spath.Str("lsn"), "negative");
    if (tx_id < 0 || tx_id > std::numeric_limits<uint32_t>::max()) {
      return Bad(spath.Str("txId"), "out of range");
    }
    rec->lsn = Lsn(static_cast<uint64_t>(lsn));
    rec->source_ts_ms = ts_ms;
    rec->tx_id = static_cast<uint32_t>(tx_id);
    if (src.snapshot.Valued()) {
      std::string_view s;
      bool b;
      if (src.snapshot.e->get(s) == simdjson::SUCCESS) {
        rec->snapshot.assign(s.data(), s.size());
      } else if (src.snapshot.e->get(b) == simdjson::SUCCESS) {  // Debezium before 1.x: a boolean
        rec->snapshot = b ? "true" : "false";
      } else {
        return Bad(spath.Str("snapshot"), "expected string");
      }
    }
    std::string_view sequence;
    bool has_sequence = false;
    SPLITSTREAM_RETURN_IF_ERROR(
        OptionalString(src.sequence, spath, "sequence", &sequence, &has_sequence));
    if (has_sequence) {
      uint64_t commit = 0, current = 0;
      if (!ParseSequence(sequence, &commit, &current)) {
        return Bad(spath.Str("sequence"), "expected a JSON array of two LSN strings");
      }
      rec->commit_lsn = Lsn(commit);
    }

    if (m.before.found()) {
      SPLITSTREAM_RETURN_IF_ERROR(
          ToRowImage(*m.before.e, path, "before", &rec->before, &spare_before));
    }
    if (m.after.found()) {
      SPLITSTREAM_RETURN_IF_ERROR(ToRowImage(*m.after.e, path, "after", &rec->after, &spare_after));
    }
    if (rec->kind == ChangeRecord::Kind::kRow && rec->op != Op::kDelete && !rec->after) {
      return Bad(Join(path, "after"), "expected object for op " + std::string(op));
    }
    if (schema != nullptr) ReadAfterSchema(*schema, &rec->after_schema);
    return Status::Ok();
  }

  Status ChangefeedPayload(const element& payload, std::string_view path, ChangeRecord* rec) {
    rec->format = SourceFormat::kChangefeed;
    object obj;
    if (payload.get(obj) != simdjson::SUCCESS) return Bad(path, "expected object");
    element e;
    if (Member(obj, "resolved", &e)) {
      std::string_view s;
      if (e.get(s) != simdjson::SUCCESS) return Bad(Join(path, "resolved"), "expected string");
      if (!ParseHlc(s, &rec->hlc_wall_ns, &rec->hlc_logical)) {
        return Bad(Join(path, "resolved"), "expected \"<wall nanos>.<logical>\"");
      }
      rec->kind = ChangeRecord::Kind::kResolved;
      rec->resolved.assign(s.data(), s.size());
      return Status::Ok();
    }
    rec->kind = ChangeRecord::Kind::kRow;
    if (!Member(obj, "after", &e)) return Bad(Join(path, "after"), "missing");
    SPLITSTREAM_RETURN_IF_ERROR(ToRowImage(e, path, "after", &rec->after, &spare_after));
    bool has_before = Member(obj, "before", &e);
    if (has_before) {
      SPLITSTREAM_RETURN_IF_ERROR(ToRowImage(e, path, "before", &rec->before, &spare_before));
    }
    std::string op;
    bool has_op = false;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(obj, "op", path, &op, &has_op));
    if (has_op) {  // enriched envelope
      if (op != "c" && op != "u" && op != "d") {
        return Bad(Join(path, "op"), "unknown operation '" + op + "'");
      }
      rec->op = static_cast<Op>(op[0]);
    } else if (!rec->after) {
      rec->op = Op::kDelete;
    } else if (has_before && !rec->before) {
      rec->op = Op::kCreate;
    } else {
      rec->op = Op::kUpdate;
    }
    bool has_updated = false;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(obj, "updated", path, &rec->resolved, &has_updated));
    if (has_updated) {
      if (!ParseHlc(rec->resolved, &rec->hlc_wall_ns, &rec->hlc_logical)) {
        return Bad(Join(path, "updated"), "expected \"<wall nanos>.<logical>\"");
      }
      rec->source_ts_ms = rec->hlc_wall_ns / 1'000'000;
    }
    if (WantKey(*rec) && Member(obj, "key", &e)) {  // key_in_value
      SPLITSTREAM_RETURN_IF_ERROR(ArrayToRowImage(e, Join(path, "key"), &rec->key, &spare_key));
    }
    return Status::Ok();
  }

  // hint: 0 guess, 1 Debezium, 2 changefeed.
  Status Decode(int hint, std::string_view topic, std::optional<std::string_view> key,
                std::optional<std::string_view> value, ChangeRecord* out) {
    ChangeRecord& rec = *out;
    Reset(&rec);
    if (!value) {
      if (hint == 2) return Bad("value", "a changefeed message is never null");
      rec.kind = ChangeRecord::Kind::kTombstone;
      rec.op = Op::kDelete;
      if (!TopicSchemaTable(topic, &rec.schema, &rec.table)) {
        return Bad("topic", "expected <prefix>.<schema>.<table>");
      }
      return DecodeDebeziumKey(key, &rec);
    }
    element doc;
    if (auto err = value_parser.parse(value->data(), value->size()).get(doc)) {
      return Bad("value", std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    // One pass over the top-level object finds both the JSON converter's wrapper members and,
    // when there is no wrapper, the envelope's; a wrapped payload gets its own pass.
    EnvelopeMembers m;
    object obj;
    if (doc.get(obj) == simdjson::SUCCESS) m.Scan(obj);
    element payload = doc, schema;
    std::string_view path = "value";
    const bool wrapped = m.payload.found() && m.schema.found();
    if (wrapped) {
      payload = *m.payload.e;
      schema = *m.schema.e;
      path = "value.payload";
      m = EnvelopeMembers();
      if (payload.get(obj) == simdjson::SUCCESS) m.Scan(obj);
    }
    SourceMembers src;
    object source;
    const bool has_source = hint != 2 && payload.type() == element_type::OBJECT &&
                            m.source.found() && m.source.e->get(source) == simdjson::SUCCESS;
    if (has_source) src.Scan(source);
    const bool debezium = hint == 1 || (hint == 0 && has_source && src.connector.found());
    if (debezium) {
      if (wrapped && IsNull(payload)) {  // schema-enabled tombstone written as a null payload
        return Decode(1, topic, key, std::nullopt, out);
      }
      SPLITSTREAM_RETURN_IF_ERROR(
          DebeziumPayload(payload, m, src, wrapped ? &schema : nullptr, path, &rec));
      if (rec.kind != ChangeRecord::Kind::kTruncate && WantKey(rec)) {
        SPLITSTREAM_RETURN_IF_ERROR(DecodeDebeziumKey(key, &rec));
      }
      return Status::Ok();
    }
    std::string_view t = topic;
    size_t last = t.rfind('.');
    if (last == std::string_view::npos) {
      rec.table.assign(t);
    } else {
      rec.table.assign(t.substr(last + 1));
      size_t prev = last == 0 ? std::string_view::npos : t.rfind('.', last - 1);
      rec.schema.assign(t.substr(prev == std::string_view::npos ? 0 : prev + 1,
                                 prev == std::string_view::npos ? last : last - prev - 1));
    }
    SPLITSTREAM_RETURN_IF_ERROR(ChangefeedPayload(payload, path, &rec));
    // The Kafka key wins over key_in_value.
    if (rec.kind == ChangeRecord::Kind::kRow && key && WantKey(rec)) {
      Disengage(&rec.key, &spare_key);
      SPLITSTREAM_RETURN_IF_ERROR(DecodeChangefeedKey(key, &rec));
    }
    return Status::Ok();
  }

  Result<ChangeRecord> Decode(int hint, std::string_view topic, std::optional<std::string_view> key,
                              std::optional<std::string_view> value) {
    ChangeRecord rec;
    SPLITSTREAM_RETURN_IF_ERROR(Decode(hint, topic, key, value, &rec));
    return rec;
  }
};

Decoder::Decoder(DecoderOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}
Decoder::~Decoder() = default;

Result<ChangeRecord> Decoder::DecodeDebezium(std::string_view topic,
                                             std::optional<std::string_view> key,
                                             std::optional<std::string_view> value) {
  return impl_->Decode(1, topic, key, value);
}

Result<ChangeRecord> Decoder::DecodeChangefeed(std::string_view topic,
                                               std::optional<std::string_view> key,
                                               std::optional<std::string_view> value) {
  return impl_->Decode(2, topic, key, value);
}

Result<ChangeRecord> Decoder::Decode(std::string_view topic, std::optional<std::string_view> key,
                                     std::optional<std::string_view> value) {
  return impl_->Decode(0, topic, key, value);
}

Status Decoder::DecodeInto(std::string_view topic, std::optional<std::string_view> key,
                           std::optional<std::string_view> value, ChangeRecord* out) {
  return impl_->Decode(0, topic, key, value, out);
}

}  // namespace splitstream::debezium
