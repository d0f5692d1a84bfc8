#include "splitstream/debezium/decoder.h"

#include <charconv>
#include <limits>

#include <simdjson.h>

namespace splitstream::debezium {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

Status Bad(const std::string& path, std::string_view what) {
  return Status::InvalidArgument(path + ": " + std::string(what), path);
}

// The member `name` of `obj`, or a null element_result when absent.
bool Member(const object& obj, std::string_view name, element* out) {
  return obj.at_key(name).get(*out) == simdjson::SUCCESS;
}

bool IsNull(const element& e) { return e.type() == element_type::NULL_VALUE; }

Status ToField(const element& e, std::string_view name, Field* f) {
  if (f->name != name) f->name.assign(name.data(), name.size());
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
      std::string_view s = std::string_view(e);
      f->s.assign(s.data(), s.size());
      break;
    }
    case element_type::ARRAY:
    case element_type::OBJECT:
      f->kind = FieldKind::kJson;
      f->s = simdjson::minify(e);
      break;
  }
  return Status::Ok();
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

// An object (row image) or null; anything else is an error at `path`. Reuses the storage of
// *out (or `spare`): the fields keep their strings' capacity from one message to the next.
Status ToRowImage(const element& e, const std::string& path, std::optional<RowImage>* out,
                  RowImage* spare) {
  if (IsNull(e)) {
    Disengage(out, spare);
    return Status::Ok();
  }
  object obj;
  if (e.get(obj) != simdjson::SUCCESS) return Bad(path, "expected object or null");
  RowImage& row = Engage(out, spare);
  size_t n = 0;
  for (auto [k, v] : obj) {
    if (n == row.fields.size()) row.fields.emplace_back();
    SPLITSTREAM_RETURN_IF_ERROR(ToField(v, k, &row.fields[n]));
    ++n;
  }
  row.fields.resize(n);
  return Status::Ok();
}

// A changefeed key: a JSON array of primary-key values, named by position.
Status ArrayToRowImage(const element& e, const std::string& path, std::optional<RowImage>* out,
                       RowImage* spare) {
  simdjson::dom::array arr;
  if (e.get(arr) != simdjson::SUCCESS) return Bad(path, "expected array");
  RowImage& row = Engage(out, spare);
  row.fields.clear();
  size_t i = 0;
  for (element v : arr) {
    row.fields.emplace_back();
    SPLITSTREAM_RETURN_IF_ERROR(ToField(v, std::to_string(i++), &row.fields.back()));
  }
  return Status::Ok();
}

Status OptionalString(const object& obj, std::string_view name, const std::string& path,
                      std::string* out, bool* present = nullptr) {
  element e;
  if (present) *present = false;
  if (!Member(obj, name, &e) || IsNull(e)) return Status::Ok();
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) return Bad(path + "." + std::string(name), "expected string");
  out->assign(s.data(), s.size());
  if (present) *present = true;
  return Status::Ok();
}

Status OptionalInt(const object& obj, std::string_view name, const std::string& path,
                   int64_t* out) {
  element e;
  if (!Member(obj, name, &e) || IsNull(e)) return Status::Ok();
  if (e.get(*out) != simdjson::SUCCESS) {
    return Bad(path + "." + std::string(name), "expected integer");
  }
  return Status::Ok();
}

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
  simdjson::dom::parser value_parser;
  simdjson::dom::parser key_parser;
  // Storage of absent row images, kept for the next record that has one (DecodeInto).
  RowImage spare_key, spare_before, spare_after;

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
    std::string path = "key";
    if (Unwrap(doc, &payload, &schema)) {
      doc = payload;
      path = "key.payload";
    }
    return ToRowImage(doc, path, &rec->key, &spare_key);
  }

  Status DecodeChangefeedKey(std::optional<std::string_view> key, ChangeRecord* rec) {
    if (!key) return Status::Ok();
    element doc;
    if (auto err = key_parser.parse(key->data(), key->size()).get(doc)) {
      return Bad("key", std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    return ArrayToRowImage(doc, "key", &rec->key, &spare_key);
  }

  Status DebeziumPayload(const element& payload, const element* schema, const std::string& path,
                         ChangeRecord* rec) {
    rec->format = SourceFormat::kDebezium;
    object obj;
    if (payload.get(obj) != simdjson::SUCCESS) return Bad(path, "expected object");
    std::string op;
    bool has_op = false;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(obj, "op", path, &op, &has_op));
    if (!has_op) return Bad(path + ".op", "missing");
    if (op.size() != 1) return Bad(path + ".op", "unknown operation '" + op + "'");
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
        return Bad(path + ".op", "unknown operation '" + op + "'");
    }
    rec->op = static_cast<Op>(op[0]);

    element source_el;
    object source;
    std::string spath = path + ".source";
    if (!Member(obj, "source", &source_el)) return Bad(spath, "missing");
    if (source_el.get(source) != simdjson::SUCCESS) return Bad(spath, "expected object");
    bool has_schema = false, has_table = false;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(source, "schema", spath, &rec->schema, &has_schema));
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(source, "table", spath, &rec->table, &has_table));
    if (rec->kind != ChangeRecord::Kind::kMessage) {
      if (!has_schema) return Bad(spath + ".schema", "missing");
      if (!has_table) return Bad(spath + ".table", "missing");
    }
    int64_t lsn = 0, ts_ms = 0, tx_id = 0;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalInt(source, "lsn", spath, &lsn));
    SPLITSTREAM_RETURN_IF_ERROR(OptionalInt(source, "ts_ms", spath, &ts_ms));
    SPLITSTREAM_RETURN_IF_ERROR(OptionalInt(source, "txId", spath, &tx_id));
    if (lsn < 0) return Bad(spath + ".lsn", "negative");
    if (tx_id < 0 || tx_id > std::numeric_limits<uint32_t>::max()) {
      return Bad(spath + ".txId", "out of range");
    }
    rec->lsn = Lsn(static_cast<uint64_t>(lsn));
    rec->source_ts_ms = ts_ms;
    rec->tx_id = static_cast<uint32_t>(tx_id);
    element e;
    if (Member(source, "snapshot", &e) && !IsNull(e)) {
      std::string_view s;
      bool b;
      if (e.get(s) == simdjson::SUCCESS) {
        rec->snapshot.assign(s.data(), s.size());
      } else if (e.get(b) == simdjson::SUCCESS) {  // Debezium before 1.x wrote a boolean
        rec->snapshot = b ? "true" : "false";
      } else {
        return Bad(spath + ".snapshot", "expected string");
      }
    }
    std::string sequence;
    bool has_sequence = false;
    SPLITSTREAM_RETURN_IF_ERROR(
        OptionalString(source, "sequence", spath, &sequence, &has_sequence));
    if (has_sequence) {
      uint64_t commit = 0, current = 0;
      if (!ParseSequence(sequence, &commit, &current)) {
        return Bad(spath + ".sequence", "expected a JSON array of two LSN strings");
      }
      rec->commit_lsn = Lsn(commit);
    }

    if (Member(obj, "before", &e)) {
      SPLITSTREAM_RETURN_IF_ERROR(ToRowImage(e, path + ".before", &rec->before, &spare_before));
    }
    if (Member(obj, "after", &e)) {
      SPLITSTREAM_RETURN_IF_ERROR(ToRowImage(e, path + ".after", &rec->after, &spare_after));
    }
    if (rec->kind == ChangeRecord::Kind::kRow && rec->op != Op::kDelete && !rec->after) {
      return Bad(path + ".after", "expected object for op " + op);
    }
    if (schema != nullptr) ReadAfterSchema(*schema, &rec->after_schema);
    return Status::Ok();
  }

  Status ChangefeedPayload(const element& payload, const std::string& path, ChangeRecord* rec) {
    rec->format = SourceFormat::kChangefeed;
    object obj;
    if (payload.get(obj) != simdjson::SUCCESS) return Bad(path, "expected object");
    element e;
    if (Member(obj, "resolved", &e)) {
      std::string_view s;
      if (e.get(s) != simdjson::SUCCESS) return Bad(path + ".resolved", "expected string");
      if (!ParseHlc(s, &rec->hlc_wall_ns, &rec->hlc_logical)) {
        return Bad(path + ".resolved", "expected \"<wall nanos>.<logical>\"");
      }
      rec->kind = ChangeRecord::Kind::kResolved;
      rec->resolved.assign(s.data(), s.size());
      return Status::Ok();
    }
    rec->kind = ChangeRecord::Kind::kRow;
    if (!Member(obj, "after", &e)) return Bad(path + ".after", "missing");
    SPLITSTREAM_RETURN_IF_ERROR(ToRowImage(e, path + ".after", &rec->after, &spare_after));
    bool has_before = Member(obj, "before", &e);
    if (has_before) {
      SPLITSTREAM_RETURN_IF_ERROR(ToRowImage(e, path + ".before", &rec->before, &spare_before));
    }
    std::string op;
    bool has_op = false;
    SPLITSTREAM_RETURN_IF_ERROR(OptionalString(obj, "op", path, &op, &has_op));
    if (has_op) {  // enriched envelope
      if (op != "c" && op != "u" && op != "d") {
        return Bad(path + ".op", "unknown operation '" + op + "'");
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
        return Bad(path + ".updated", "expected \"<wall nanos>.<logical>\"");
      }
      rec->source_ts_ms = rec->hlc_wall_ns / 1'000'000;
    }
    if (Member(obj, "key", &e)) {  // key_in_value
      SPLITSTREAM_RETURN_IF_ERROR(ArrayToRowImage(e, path + ".key", &rec->key, &spare_key));
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
    element payload = doc, schema;
    std::string path = "value";
    bool wrapped = Unwrap(doc, &payload, &schema);
    if (wrapped) path = "value.payload";
    bool debezium = hint == 1;
    if (hint == 0) {
      object obj, source;
      element src, connector;
      debezium = payload.get(obj) == simdjson::SUCCESS && Member(obj, "source", &src) &&
                 src.get(source) == simdjson::SUCCESS && Member(source, "connector", &connector);
    }
    if (debezium) {
      if (wrapped && IsNull(payload)) {  // schema-enabled tombstone written as a null payload
        return Decode(1, topic, key, std::nullopt, out);
      }
      SPLITSTREAM_RETURN_IF_ERROR(
          DebeziumPayload(payload, wrapped ? &schema : nullptr, path, &rec));
      if (rec.kind != ChangeRecord::Kind::kTruncate) {
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
    if (rec.kind == ChangeRecord::Kind::kRow && key) {  // the Kafka key wins over key_in_value
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

Decoder::Decoder() : impl_(std::make_unique<Impl>()) {}
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
