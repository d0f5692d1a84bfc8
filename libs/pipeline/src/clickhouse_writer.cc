#include "splitstream/pipeline/clickhouse_writer.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <future>
#include <limits>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>

#include "row_order.h"
#include "splitstream/clickhouse/row_binary.h"
#include "splitstream/clickhouse/sql.h"
#include "splitstream/core/civil.h"
#include "splitstream/core/strings.h"

namespace splitstream::pipeline {
namespace {

using clickhouse::QuoteIdentifier;
using clickhouse::QuoteString;
using clickhouse::RowBinaryWriter;
using debezium::ChangeRecord;
using debezium::Field;
using debezium::FieldKind;

enum class Base {
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kFloat32,
  kFloat64,
  kString,
  kDateTime,
  kDate,
  kUnsupported,
};

struct ColumnType {
  Base base = Base::kUnsupported;
  bool nullable = false;
};

bool StripWrapper(std::string_view* t, std::string_view name) {
  if (t->size() > name.size() + 2 && t->substr(0, name.size()) == name &&
      (*t)[name.size()] == '(' && t->back() == ')') {
    *t = t->substr(name.size() + 1, t->size() - name.size() - 2);
    return true;
  }
  return false;
}

// A ClickHouse type name as system.columns prints it ("Nullable(Int64)", "DateTime('UTC')").
ColumnType ParseColumnType(std::string_view t) {
  ColumnType out;
  StripWrapper(&t, "LowCardinality");
  out.nullable = StripWrapper(&t, "Nullable");
  static const std::pair<std::string_view, Base> kNames[] = {
      {"Int8", Base::kInt8},        {"Int16", Base::kInt16},   {"Int32", Base::kInt32},
      {"Int64", Base::kInt64},      {"UInt8", Base::kUInt8},   {"UInt16", Base::kUInt16},
      {"UInt32", Base::kUInt32},    {"UInt64", Base::kUInt64}, {"Float32", Base::kFloat32},
      {"Float64", Base::kFloat64},  {"String", Base::kString}, {"Date", Base::kDate},
      {"DateTime", Base::kDateTime}};
  for (const auto& [name, base] : kNames) {
    if (t == name) out.base = base;
  }
  if (t.starts_with("DateTime(")) out.base = Base::kDateTime;  // a time zone argument
  return out;
}

// Where a ClickHouse column's value comes from.
enum class Origin { kField, kMicros, kVersion, kDeleted, kSourceTs, kBatch };

struct Col {
  std::string name;
  ColumnType type;
  Origin origin = Origin::kField;
  std::string field;  // the source field (kField, kMicros)
  // Where `field` was in the last row image: rows of a table usually list their fields in the
  // same order, so this is where to look first.
  mutable size_t hint = 0;
};

struct Segment {
  uint64_t schema_version = 0;
  uint64_t batch = 0;  // the `_batch` of its rows: writer id << 32 | the writer's counter
  std::vector<std::string> columns;
  RowLayout layout;  // of `columns`, for SortRows
  RowBinaryWriter rows;
  size_t count = 0;
};

// One INSERT of a batch being written: a table's segment, sealed.
struct Part {
  std::string table;
  uint64_t batch = 0;  // its segment's: a retry resends the same bytes, so the same id
  std::vector<std::string> columns;
  RowLayout layout;
  RowBinaryWriter rows;
  size_t count = 0;
  bool ordered = false;  // SortRows ran (a retry sends the same bytes without sorting again)
};

struct Table {
  std::string name;
  std::vector<Col> cols;
  std::vector<std::string> key_fields;  // source fields of the ORDER BY key, in order
  RowLayout layout;  // the RowBinary row and its ORDER BY key (empty key: keep the rows' order)
  uint64_t schema_version = 0;
  std::vector<Segment> segments;  // in arrival order; a schema change starts a new one
};

struct Truncation {
  std::string table;
  uint64_t version;
};

// What one flush writes: the parts in order, then the truncations. The write removes each part
// (and finally the truncations) once ClickHouse accepted it, so after a failure the batch holds
// exactly what is left to write.
struct Batch {
  std::vector<Part> parts;
  std::vector<Truncation> truncations;
  // Filled by the write, read back on the caller's thread: rows accepted per table, and the
  // buffers of the accepted parts (kept for reuse).
  std::vector<std::pair<std::string, uint64_t>> accepted;
  std::vector<std::string> spent;
  // The write's own buffer for SortRows to copy into; after a sort it holds the part's
  // unsorted bytes, whose capacity the next sort reuses.
  std::string sort_spare;

  bool empty() const { return parts.empty() && truncations.empty(); }
  size_t rows() const {
    size_t n = truncations.size();
    for (const Part& p : parts) n += p.count;
    return n;
  }
  size_t bytes() const {
    size_t n = 0;
    for (const Truncation& t : truncations) n += t.table.size() + 9;
    for (const Part& p : parts) n += p.rows.size();
    return n;
  }
};

// Writes `batch` with `client` (any thread; the caller owns both for the duration).
Status WriteBatch(clickhouse::Client& client, const std::string& database,
                  const clickhouse::Settings& settings, Batch& batch) {
  auto qualified = [&](std::string_view table) {
    return QuoteIdentifier(database) + "." + QuoteIdentifier(table);
  };
  size_t done = 0;
  Status st;
  for (; done < batch.parts.size(); ++done) {
    Part& p = batch.parts[done];
    if (!p.ordered) {
      // In key order ClickHouse skips its own sort of the block (README, "Rows in key order").
      (void)SortRows(p.layout, p.count, p.rows.buffer(), batch.sort_spare);
      p.ordered = true;
    }
    st = client.Insert(qualified(p.table), p.columns, "RowBinary", p.rows.buffer(), settings);
    if (!st.ok()) {
      st = st.WithContext("insert into " + p.table);
      break;
    }
    batch.accepted.emplace_back(p.table, p.count);
    batch.spent.push_back(std::move(p.rows.buffer()));
  }
  batch.parts.erase(batch.parts.begin(), batch.parts.begin() + static_cast<ptrdiff_t>(done));
  if (!st.ok()) return st;
  if (!batch.truncations.empty()) {
    RowBinaryWriter w;
    for (const Truncation& tr : batch.truncations) {
      w.String(tr.table);
      w.UInt64(tr.version);
    }
    static const std::vector<std::string> kColumns = {"table", "version"};
    st = client.Insert(qualified("_truncations"), kColumns, "RowBinary", w.buffer(), settings);
    if (!st.ok()) return st.WithContext("insert into _truncations");
    batch.accepted.emplace_back("_truncations", batch.truncations.size());
    batch.truncations.clear();
  }
  return Status::Ok();
}

// The timestamp unit of an epoch number, from the Connect schema's logical name.
int64_t EpochUnitsPerSecond(std::string_view logical) {
  if (logical == "org.apache.kafka.connect.data.Timestamp" ||
      logical == "io.debezium.time.Timestamp") {
    return 1000;
  }
  if (logical == "io.debezium.time.NanoTimestamp") return 1'000'000'000;
  return 1'000'000;
}

bool ParseDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01, or nullopt for a month or day that does not exist.
std::optional<int64_t> ValidDaysFromCivil(int y, int m, int d) {
  if (m < 1 || m > 12 || d < 1 || d > static_cast<int>(DaysInMonth(y, static_cast<unsigned>(m)))) {
    return std::nullopt;
  }
  return DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

// The two ASCII digits at p as a number, or -1.
int TwoDigits(const char* p) {
  const unsigned hi = static_cast<unsigned char>(p[0]) - unsigned{'0'};
  const unsigned lo = static_cast<unsigned char>(p[1]) - unsigned{'0'};
  return hi < 10 && lo < 10 ? static_cast<int>(hi * 10 + lo) : -1;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// "YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}](Z|±HH:MM)" → µs since the epoch (UTC); Debezium's
// ZonedTimestamp. "infinity"/"-infinity" clamp to the int64 range. Every timestamp of every
// row goes through here: the fixed-position fields are read two digits at a time.
std::optional<int64_t> ParseIsoMicros(std::string_view s) {
  if (s == "infinity") return std::numeric_limits<int64_t>::max();
  if (s == "-infinity") return std::numeric_limits<int64_t>::min();
  if (s.size() < 20) return std::nullopt;  // 19 characters and a zone at least
  const char* p = s.data();
  const int y_hi = TwoDigits(p), y_lo = TwoDigits(p + 2), mo = TwoDigits(p + 5),
            d = TwoDigits(p + 8), h = TwoDigits(p + 11), mi = TwoDigits(p + 14),
            sec = TwoDigits(p + 17);
  if ((y_hi | y_lo | mo | d | h | mi | sec) < 0 || p[4] != '-' || p[7] != '-' ||
      (p[10] != 'T' && p[10] != ' ') || p[13] != ':' || p[16] != ':' || h > 23 || mi > 59 ||
      sec > 60) {
    return std::nullopt;
  }
  auto days = ValidDaysFromCivil(y_hi * 100 + y_lo, mo, d);
  if (!days) return std::nullopt;
  size_t pos = 19;
  int64_t frac_us = 0;
  if (s[pos] == '.') {
    const size_t start = ++pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    const size_t digits = pos - start;
    if (digits == 0 || digits > 9) return std::nullopt;
    for (size_t i = 0; i < 6; ++i) frac_us = frac_us * 10 + (i < digits ? s[start + i] - '0' : 0);
  }
  int64_t offset_s = 0;
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    if (pos + 6 > s.size() || s[pos + 3] != ':') return std::nullopt;
    const int oh = TwoDigits(p + pos + 1), om = TwoDigits(p + pos + 4);
    if ((oh | om) < 0) return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;  // no zone: not a UTC instant
  }
  if (pos != s.size()) return std::nullopt;
  int64_t secs = *days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1'000'000 + frac_us;
}

std::optional<double> ParseDouble(std::string_view s) {
  if (s == "NAN" || s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "POSITIVE_INFINITY" || s == "Infinity") return std::numeric_limits<double>::infinity();
  if (s == "NEGATIVE_INFINITY" || s == "-Infinity") {
    return -std::numeric_limits<double>::infinity();
  }
  if (s.empty() || s.size() > 400) return std::nullopt;
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return v;
}

const char* KindName(FieldKind k) {
  switch (k) {
    case FieldKind::kNull:
      return "null";
    case FieldKind::kBool:
      return "boolean";
    case FieldKind::kInt:
      return "integer";
    case FieldKind::kDouble:
      return "number";
    case FieldKind::kString:
      return "string";
    case FieldKind::kJson:
      return "JSON object/array";
  }
  return "?";
}

// The ClickHouse base type for a field the table does not have yet, or nullopt when it
// cannot be determined (see the header).
std::optional<Base> NewColumnBase(const Field& f, std::string_view schema_type) {
  if (!schema_type.empty()) {
    if (schema_type == "io.debezium.time.ZonedTimestamp" ||
        schema_type == "io.debezium.time.MicroTimestamp" ||
        schema_type == "io.debezium.time.Timestamp" ||
        schema_type == "io.debezium.time.NanoTimestamp" ||
        schema_type == "org.apache.kafka.connect.data.Timestamp") {
      return Base::kDateTime;
    }
    if (schema_type == "io.debezium.time.Date" ||
        schema_type == "org.apache.kafka.connect.data.Date") {
      return Base::kDate;
    }
    if (schema_type == "org.apache.kafka.connect.data.Decimal" ||
        schema_type == "io.debezium.data.VariableScaleDecimal") {
      return std::nullopt;  // precise decimals: base64 bytes, not a number we can store
    }
    if (schema_type == "int8" || schema_type == "int16" || schema_type == "int32" ||
        schema_type == "int64") {
      return Base::kInt64;
    }
    if (schema_type == "float32" || schema_type == "float64" || schema_type == "double") {
      return Base::kFloat64;
    }
    if (schema_type == "boolean") return Base::kUInt8;
    if (schema_type == "string" || schema_type == "bytes" ||
        schema_type == "io.debezium.data.Json" || schema_type == "io.debezium.data.Uuid" ||
        schema_type == "io.debezium.data.Xml" || schema_type == "io.debezium.data.Enum") {
      return Base::kString;
    }
    // Another logical type (times, intervals, ...): its JSON kind decides, below.
  }
  switch (f.kind) {
    case FieldKind::kBool:
      return Base::kUInt8;
    case FieldKind::kInt:
      return Base::kInt64;
    case FieldKind::kDouble:
      return Base::kFloat64;
    case FieldKind::kString:
    case FieldKind::kJson:
      return Base::kString;
    case FieldKind::kNull:
      return std::nullopt;
  }
  return std::nullopt;
}

const char* BaseName(Base b) {
  switch (b) {
    case Base::kInt8:
      return "Int8";
    case Base::kInt16:
      return "Int16";
    case Base::kInt32:
      return "Int32";
    case Base::kInt64:
      return "Int64";
    case Base::kUInt8:
      return "UInt8";
    case Base::kUInt16:
      return "UInt16";
    case Base::kUInt32:
      return "UInt32";
    case Base::kUInt64:
      return "UInt64";
    case Base::kFloat32:
      return "Float32";
    case Base::kFloat64:
      return "Float64";
    case Base::kString:
      return "String";
    case Base::kDateTime:
      return "DateTime";
    case Base::kDate:
      return "Date";
    case Base::kUnsupported:
      return "?";
  }
  return "?";
}

template <typename T>
bool InRange(int64_t v) {
  if constexpr (std::is_signed_v<T>) {
    return v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
  } else {
    return v >= 0 && static_cast<uint64_t>(v) <= std::numeric_limits<T>::max();
  }
}

// One row being encoded: the image, how to read it, and the row's metadata.
struct RowContext {
  const debezium::RowImage* image = nullptr;
  const std::vector<std::pair<std::string, std::string>>* schema = nullptr;
  bool deleted = false;
  uint64_t version = 0;
  int64_t source_ts_ms = 0;
  uint64_t batch = 0;  // the segment's id, for a `_batch` column
  // Changefeed keys name fields "0", "1", ...: the source field names they stand for.
  const std::vector<std::string>* positional_names = nullptr;

  // Bit i: image->fields[i] was found by a column (FindFor), for the first 64 fields.
  mutable uint64_t matched = 0;

  const Field* Find(std::string_view name) const {
    if (positional_names != nullptr) {
      for (size_t i = 0; i < positional_names->size() && i < image->fields.size(); ++i) {
        if ((*positional_names)[i] == name) return &image->fields[i];
      }
      return nullptr;
    }
    return image->Find(name);
  }
  // The field of column `c`: Find, starting at the column's hint.
  const Field* FindFor(const Col& c) const {
    if (positional_names != nullptr) return Find(c.field);
    const std::vector<Field>& fields = image->fields;
    size_t i = c.hint;
    if (i >= fields.size() || fields[i].name != c.field) {
      for (i = 0; i < fields.size() && fields[i].name != c.field; ++i) {
      }
      if (i == fields.size()) return nullptr;
      c.hint = i;
    }
    if (i < 64) matched |= uint64_t{1} << i;
    return &fields[i];
  }
  // Whether every field of the image belongs to a column found by FindFor.
  bool AllFieldsMatched() const {
    const size_t n = image->fields.size();
    if (positional_names != nullptr) return true;
    if (n > 64) return false;
    return matched == (n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1);
  }
  std::string_view SchemaType(std::string_view name) const {
    if (schema == nullptr) return {};
    for (const auto& [n, t] : *schema) {
      if (n == name) return t;
    }
    return {};
  }
};

Status Bad(const Table& t, const Col& c, std::string why) {
  return Status::InvalidArgument(fmt::format("{}.{}: {}", t.name, c.name, why));
}

// A field's value as µs since the epoch (timestamp columns).
Result<int64_t> TimestampMicros(const Table& t, const Col& c, const Field& f,
                                std::string_view schema_type) {
  if (f.kind == FieldKind::kString) {
    auto us = ParseIsoMicros(f.s);
    if (!us) {
      return Bad(t, c,
                 "expected an ISO-8601 UTC timestamp, got \"" + SanitizeForMessage(f.s, 40) + "\"");
    }
    return *us;
  }
  if (f.kind == FieldKind::kInt) {
    const int64_t per_second = EpochUnitsPerSecond(schema_type);
    if (per_second == 1000) {
      if (f.i > std::numeric_limits<int64_t>::max() / 1000)
        return std::numeric_limits<int64_t>::max();
      if (f.i < std::numeric_limits<int64_t>::min() / 1000)
        return std::numeric_limits<int64_t>::min();
      return f.i * 1000;
    }
    if (per_second == 1'000'000'000) return FloorDiv(f.i, 1000);
    return f.i;
  }
  return Bad(
      t, c, fmt::format("expected a timestamp (string or epoch number), got {}", KindName(f.kind)));
}

uint32_t DateTimeFromMicros(int64_t us) {
  int64_t s = FloorDiv(us, 1'000'000);
  if (s < 0) return 0;
  if (s > std::numeric_limits<uint32_t>::max()) return std::numeric_limits<uint32_t>::max();
  return static_cast<uint32_t>(s);
}

void WriteDefault(Base b, RowBinaryWriter& w) {
  switch (b) {
    case Base::kInt8:
    case Base::kUInt8:
      w.UInt8(0);
      break;
    case Base::kInt16:
    case Base::kUInt16:
    case Base::kDate:
      w.UInt16(0);
      break;
    case Base::kInt32:
    case Base::kUInt32:
    case Base::kDateTime:
      w.UInt32(0);
      break;
    case Base::kInt64:
    case Base::kUInt64:
      w.UInt64(0);
      break;
    case Base::kFloat32:
      w.Float32(0);
      break;
    case Base::kFloat64:
      w.Float64(0);
      break;
    case Base::kString:
    case Base::kUnsupported:
      w.String("");
      break;
  }
}

Status WriteInteger(const Table& t, const Col& c, int64_t v, RowBinaryWriter& w) {
  auto range = [&] {
    return Bad(t, c, fmt::format("{} is out of range for {}", v, BaseName(c.type.base)));
  };
  switch (c.type.base) {
    case Base::kInt8:
      if (!InRange<int8_t>(v)) return range();
      w.Int8(static_cast<int8_t>(v));
      break;
    case Base::kInt16:
      if (!InRange<int16_t>(v)) return range();
      w.Int16(static_cast<int16_t>(v));
      break;
    case Base::kInt32:
      if (!InRange<int32_t>(v)) return range();
      w.Int32(static_cast<int32_t>(v));
      break;
    case Base::kInt64:
      w.Int64(v);
      break;
    case Base::kUInt8:
      if (!InRange<uint8_t>(v)) return range();
      w.UInt8(static_cast<uint8_t>(v));
      break;
    case Base::kUInt16:
      if (!InRange<uint16_t>(v)) return range();
      w.UInt16(static_cast<uint16_t>(v));
      break;
    case Base::kUInt32:
      if (!InRange<uint32_t>(v)) return range();
      w.UInt32(static_cast<uint32_t>(v));
      break;
    case Base::kUInt64:
      if (v < 0) return range();
      w.UInt64(static_cast<uint64_t>(v));
      break;
    default:
      return Status::Internal("not an integer column");
  }
  return Status::Ok();
}

bool IsInteger(Base b) {
  return b == Base::kInt8 || b == Base::kInt16 || b == Base::kInt32 || b == Base::kInt64 ||
         b == Base::kUInt8 || b == Base::kUInt16 || b == Base::kUInt32 || b == Base::kUInt64;
}

// The last timestamp parsed in a row: a timestamp field feeds two columns (c and c_us).
struct TimestampCache {
  const Field* field = nullptr;
  int64_t us = 0;
};

Result<int64_t> CachedTimestampMicros(const Table& t, const Col& c, const Field& f,
                                      std::string_view schema_type, TimestampCache& cache) {
  if (cache.field == &f) return cache.us;
  SPLITSTREAM_ASSIGN_OR_RETURN(int64_t us, TimestampMicros(t, c, f, schema_type));
  cache = {&f, us};
  return us;
}

// Encodes the non-null value `f` into column `c`.
Status WriteValue(const Table& t, const Col& c, const Field& f, std::string_view schema_type,
                  RowBinaryWriter& w, TimestampCache& ts) {
  const Base b = c.type.base;
  if (c.origin == Origin::kMicros) {
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t us, CachedTimestampMicros(t, c, f, schema_type, ts));
    return WriteInteger(t, c, us, w);
  }
  if (IsInteger(b)) {
    if (f.kind == FieldKind::kInt) return WriteInteger(t, c, f.i, w);
    if (f.kind == FieldKind::kBool) return WriteInteger(t, c, f.b ? 1 : 0, w);
    return Bad(t, c, fmt::format("expected an integer, got {}", KindName(f.kind)));
  }
  switch (b) {
    case Base::kFloat32:
    case Base::kFloat64: {
      double v = 0;
      if (f.kind == FieldKind::kDouble) {
        v = f.d;
      } else if (f.kind == FieldKind::kInt) {
        v = static_cast<double>(f.i);
      } else if (f.kind == FieldKind::kString) {
        auto parsed = ParseDouble(f.s);
        if (!parsed) {
          return Bad(t, c,
                     "expected a number, got the string \"" + SanitizeForMessage(f.s, 40) +
                         "\" (precise decimals cannot be stored: use "
                         "decimal.handling.mode double or string)");
        }
        v = *parsed;
      } else {
        return Bad(t, c, fmt::format("expected a number, got {}", KindName(f.kind)));
      }
      if (b == Base::kFloat32) {
        w.Float32(static_cast<float>(v));
      } else {
        w.Float64(v);
      }
      return Status::Ok();
    }
    case Base::kString:
      if (f.kind == FieldKind::kString || f.kind == FieldKind::kJson) {
        w.String(f.s);
        return Status::Ok();
      }
      return Bad(t, c, fmt::format("expected a string, got {}", KindName(f.kind)));
    case Base::kDateTime: {
      SPLITSTREAM_ASSIGN_OR_RETURN(int64_t us, CachedTimestampMicros(t, c, f, schema_type, ts));
      w.DateTime(DateTimeFromMicros(us));
      return Status::Ok();
    }
    case Base::kDate: {
      int64_t days = 0;
      if (f.kind == FieldKind::kInt) {
        days = f.i;
      } else if (f.kind == FieldKind::kString) {
        int y, m, d;
        std::optional<int64_t> parsed;
        if (f.s.size() == 10 && ParseDigits(f.s, 0, 4, &y) && f.s[4] == '-' &&
            ParseDigits(f.s, 5, 2, &m) && f.s[7] == '-' && ParseDigits(f.s, 8, 2, &d)) {
          parsed = ValidDaysFromCivil(y, m, d);
        }
        if (!parsed)
          return Bad(t, c, "expected a date, got \"" + SanitizeForMessage(f.s, 40) + "\"");
        days = *parsed;
      } else {
        return Bad(t, c, fmt::format("expected a date, got {}", KindName(f.kind)));
      }
      w.Date(static_cast<uint16_t>(std::clamp<int64_t>(days, 0, 65535)));
      return Status::Ok();
    }
    default:
      return Bad(t, c, "column type is not supported by the writer");
  }
}

Status EncodeRow(const Table& t, const RowContext& row, RowBinaryWriter& w) {
  TimestampCache ts;
  row.matched = 0;
  for (const Col& c : t.cols) {
    switch (c.origin) {
      case Origin::kVersion:
        if (c.type.nullable) w.NullMarker(false);
        if (c.type.base != Base::kUInt64) return Bad(t, c, "_version must be UInt64");
        w.UInt64(row.version);
        continue;
      case Origin::kDeleted:
        if (c.type.nullable) w.NullMarker(false);
        if (c.type.base != Base::kUInt8) return Bad(t, c, "_deleted must be UInt8");
        w.UInt8(row.deleted ? 1 : 0);
        continue;
      case Origin::kSourceTs:
        if (c.type.nullable) w.NullMarker(false);
        if (c.type.base != Base::kInt64) return Bad(t, c, "_source_ts_ms must be Int64");
        w.Int64(row.source_ts_ms);
        continue;
      case Origin::kBatch:
        if (c.type.nullable) w.NullMarker(false);
        if (c.type.base != Base::kUInt64) return Bad(t, c, "_batch must be UInt64");
        w.UInt64(row.batch);
        continue;
      case Origin::kField:
      case Origin::kMicros:
        break;
    }
    const Field* f = row.FindFor(c);
    if (f == nullptr || f->kind == FieldKind::kNull) {
      if (c.type.nullable) {
        w.NullMarker(true);
      } else if (f == nullptr || row.deleted) {
        // A column the change does not carry (added later, or a delete's non-key column).
        WriteDefault(c.type.base, w);
      } else {
        return Bad(t, c, "null for a column that is not Nullable");
      }
      continue;
    }
    if (c.type.nullable) w.NullMarker(false);
    // The most common pairs inline (no Status on the way); WriteValue does the same for them.
    if (c.origin == Origin::kField) {
      if (c.type.base == Base::kString &&
          (f->kind == FieldKind::kString || f->kind == FieldKind::kJson)) {
        w.String(f->s);
        continue;
      }
      if (c.type.base == Base::kInt64 && f->kind == FieldKind::kInt) {
        w.Int64(f->i);
        continue;
      }
    }
    SPLITSTREAM_RETURN_IF_ERROR(WriteValue(t, c, *f, row.SchemaType(c.field), w, ts));
  }
  return Status::Ok();
}

// The RowBinary layout EncodeRow writes for `cols`, with `key` (indexes into `cols`) as the
// ORDER BY key; the key is dropped (the rows keep their order) when a column's type is one
// SortRows cannot step over or a key column's order is not exactly ClickHouse's.
RowLayout RowLayoutOf(const std::vector<Col>& cols, std::vector<size_t> key) {
  using Kind = RowColumn::Kind;
  RowLayout layout;
  for (const Col& c : cols) {
    RowColumn rc;
    switch (c.type.base) {
      case Base::kInt8:
        rc = {Kind::kSigned, 1};
        break;
      case Base::kInt16:
        rc = {Kind::kSigned, 2};
        break;
      case Base::kInt32:
        rc = {Kind::kSigned, 4};
        break;
      case Base::kInt64:
        rc = {Kind::kSigned, 8};
        break;
      case Base::kUInt8:
        rc = {Kind::kUnsigned, 1};
        break;
      case Base::kUInt16:
      case Base::kDate:
        rc = {Kind::kUnsigned, 2};
        break;
      case Base::kUInt32:
      case Base::kDateTime:
        rc = {Kind::kUnsigned, 4};
        break;
      case Base::kUInt64:
        rc = {Kind::kUnsigned, 8};
        break;
      case Base::kFloat32:
        rc = {Kind::kFloat, 4};
        break;
      case Base::kFloat64:
        rc = {Kind::kFloat, 8};
        break;
      case Base::kString:
        rc = {Kind::kString, 0};
        break;
      case Base::kUnsupported:
        return {};
    }
    rc.nullable = c.type.nullable;
    layout.columns.push_back(rc);
  }
  layout.key = std::move(key);
  return layout;
}

bool HasField(const Table& t, std::string_view field) {
  for (const Col& c : t.cols) {
    if ((c.origin == Origin::kField || c.origin == Origin::kMicros) && c.field == field)
      return true;
  }
  return false;
}

}  // namespace

struct ClickHouseWriter::Impl {
  clickhouse::Client* client;
  WriterOptions options;
  clickhouse::Settings settings;
  std::unordered_map<std::string, Table> tables;
  std::vector<Truncation> truncations;
  std::map<std::string, uint64_t> written;
  // The flush: `sealed` is what the last flush left unwritten (after a failure) plus, while a
  // flush runs, what it is writing; `running` is set while a background write owns `sealed`.
  Batch sealed;
  std::optional<std::future<Status>> running;
  std::optional<Status> finished;          // a synchronous BeginFlush's result, for FinishFlush
  std::vector<std::string> spare_buffers;  // emptied RowBinary buffers, reused by new segments
  // `_batch` ids: writer_id << 32 | the number of segments opened so far (any table).
  uint32_t writer_id = 0;
  uint32_t segments_opened = 0;

  // Moves the open segments and truncations behind what `sealed` still holds.
  void Seal() {
    for (auto& [name, t] : tables) {
      for (Segment& seg : t.segments) {
        Part p;
        p.table = name;
        p.batch = seg.batch;
        p.columns = std::move(seg.columns);
        p.layout = std::move(seg.layout);
        p.rows = std::move(seg.rows);
        p.count = seg.count;
        sealed.parts.push_back(std::move(p));
      }
      t.segments.clear();
    }
    for (Truncation& tr : truncations) sealed.truncations.push_back(std::move(tr));
    truncations.clear();
  }

  // Books the accepted parts of `sealed` after a write ended (on the caller's thread).
  void Account() {
    for (const auto& [table, n] : sealed.accepted) written[table] += n;
    sealed.accepted.clear();
    for (std::string& b : sealed.spent) {
      if (spare_buffers.size() >= 4) break;
      b.clear();
      spare_buffers.push_back(std::move(b));
    }
    sealed.spent.clear();
  }

  Segment NewSegment(const Table& t) {
    Segment s;
    s.schema_version = t.schema_version;
    // Increasing per writer, so per table too (a table's segments are written in the order
    // they were opened). 2^32 - 1 segments last a writer 3.4 years at 40 a second (10 000-row
    // batches at 400 000 rows/s), 136 years at one a second.
    s.batch = uint64_t{writer_id} << 32 | ++segments_opened;
    for (const Col& c : t.cols) s.columns.push_back(c.name);
    s.layout = t.layout;
    if (!spare_buffers.empty()) {
      s.rows.buffer() = std::move(spare_buffers.back());
      spare_buffers.pop_back();
    }
    return s;
  }

  std::string Qualified(std::string_view table) const {
    return QuoteIdentifier(options.database) + "." + QuoteIdentifier(table);
  }

  // (Re)reads the definitions of every table, or of `only` when given.
  Status Load(std::optional<std::string> only) {
    const std::string db = "database = " + QuoteString(options.database);
    SPLITSTREAM_ASSIGN_OR_RETURN(
        auto key_rows, client->QueryRows("SELECT name, sorting_key FROM system.tables WHERE " + db +
                                             (only ? " AND name = " + QuoteString(*only) : ""),
                                         settings));
    SPLITSTREAM_ASSIGN_OR_RETURN(
        auto col_rows,
        client->QueryRows("SELECT table, name, type FROM system.columns WHERE " + db +
                              (only ? " AND table = " + QuoteString(*only) : ""),
                          settings));
    std::map<std::string, Table> loaded;
    for (const auto& r : col_rows) {
      if (r.size() != 3) return Status::Internal("system.columns: unexpected row width");
      Table& t = loaded[r[0]];
      t.name = r[0];
      Col c;
      c.name = r[1];
      c.type = ParseColumnType(r[2]);
      t.cols.push_back(std::move(c));
    }
    for (auto& [name, t] : loaded) {
      for (Col& c : t.cols) {
        if (c.name == "_version") {
          c.origin = Origin::kVersion;
        } else if (c.name == "_deleted") {
          c.origin = Origin::kDeleted;
        } else if (c.name == "_source_ts_ms") {
          c.origin = Origin::kSourceTs;
        } else if (c.name == "_batch") {
          c.origin = Origin::kBatch;
        } else {
          c.origin = Origin::kField;
          c.field = c.name;
          if (c.name.size() > 3 && c.name.ends_with("_us")) {
            std::string base = c.name.substr(0, c.name.size() - 3);
            for (const Col& other : t.cols) {
              if (other.name == base && other.type.base == Base::kDateTime) {
                c.origin = Origin::kMicros;
                c.field = base;
              }
            }
          }
        }
      }
      for (const auto& r : key_rows) {
        if (r.size() != 2 || r[0] != name) continue;
        // sorting_key: "id" or "event_id, ts_us"; expressions are not source fields.
        std::string_view key = r[1];
        std::vector<size_t> key_columns;
        bool plain_columns = !key.empty();  // every part names a column: SortRows may order
        while (!key.empty()) {
          size_t comma = key.find(',');
          std::string_view part = key.substr(0, comma);
          while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
          while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
          if (part.size() >= 2 && part.front() == '`' && part.back() == '`') {
            part = part.substr(1, part.size() - 2);
          }
          bool found = false;
          for (size_t i = 0; i < t.cols.size(); ++i) {
            const Col& c = t.cols[i];
            if (c.name != part) continue;
            found = true;
            key_columns.push_back(i);
            if (c.origin != Origin::kVersion) t.key_fields.push_back(c.field);
          }
          plain_columns = plain_columns && found;
          if (comma == std::string_view::npos) break;
          key.remove_prefix(comma + 1);
        }
        t.layout = RowLayoutOf(t.cols, plain_columns ? key_columns : std::vector<size_t>{});
      }
    }
    if (!only) {
      for (auto& [name, t] : loaded) tables[name] = std::move(t);
      return Status::Ok();
    }
    auto it = loaded.find(*only);
    if (it == loaded.end()) return Status::Ok();
    auto existing = tables.find(*only);
    if (existing == tables.end()) {
      tables[*only] = std::move(it->second);
    } else {
      existing->second.cols = std::move(it->second.cols);
      existing->second.key_fields = std::move(it->second.key_fields);
      existing->second.layout = std::move(it->second.layout);
      ++existing->second.schema_version;
    }
    return Status::Ok();
  }

  Result<Table*> FindTable(const ChangeRecord& rec) {
    if (!rec.schema.empty() && rec.schema != "public") {
      return Status::InvalidArgument(
          fmt::format("schema \"{}\" is not mapped to ClickHouse (only public)",
                      SanitizeForMessage(rec.schema, 60)));
    }
    auto it = tables.find(rec.table);
    if (it == tables.end()) {
      // Created since we looked (splitstream migrate ran later)?
      SPLITSTREAM_RETURN_IF_ERROR(Load(rec.table));
      it = tables.find(rec.table);
    }
    if (it == tables.end() || rec.table.starts_with("_")) {
      return Status::InvalidArgument(fmt::format("table \"{}\" does not exist in ClickHouse {}",
                                                 SanitizeForMessage(rec.table, 60),
                                                 options.database));
    }
    return &it->second;
  }

  Status AddColumns(Table& t, const std::vector<std::pair<std::string, Base>>& add) {
    std::string actions;
    for (const auto& [name, base] : add) {
      if (!actions.empty()) actions += ", ";
      actions += fmt::format("ADD COLUMN {} Nullable({})", QuoteIdentifier(name), BaseName(base));
      if (base == Base::kDateTime) {
        actions += fmt::format(", ADD COLUMN {} Nullable(Int64)", QuoteIdentifier(name + "_us"));
      }
    }
    Status st = client->Execute("ALTER TABLE " + Qualified(t.name) + " " + actions, settings);
    // Another writer may have added them first: what counts is whether they exist now.
    SPLITSTREAM_RETURN_IF_ERROR(Load(t.name));
    for (const auto& [name, base] : add) {
      if (!HasField(t, name)) {
        return st.ok() ? Status::Internal("column " + name + " missing after ALTER TABLE") : st;
      }
    }
    return Status::Ok();
  }
};

ClickHouseWriter::ClickHouseWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClickHouseWriter::~ClickHouseWriter() = default;

Result<std::unique_ptr<ClickHouseWriter>> ClickHouseWriter::Create(clickhouse::Client* client,
                                                                   WriterOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->client = client;
  impl->options = std::move(options);
  impl->settings = {{"database", impl->options.database}};
  impl->writer_id = impl->options.writer_id;
  if (impl->writer_id == 0) {
    std::random_device random;
    impl->writer_id =
        std::uniform_int_distribution<uint32_t>(1, std::numeric_limits<uint32_t>::max())(random);
  }
  SPLITSTREAM_RETURN_IF_ERROR(impl->Load(std::nullopt).WithContext("read ClickHouse schema"));
  return std::unique_ptr<ClickHouseWriter>(new ClickHouseWriter(std::move(impl)));
}

Status ClickHouseWriter::Add(const ChangeRecord& rec) {
  Impl& d = *impl_;
  if (rec.kind != ChangeRecord::Kind::kRow && rec.kind != ChangeRecord::Kind::kTruncate) {
    return Status::InvalidArgument("only row and truncate records are written to ClickHouse");
  }
  uint64_t version = rec.lsn.value();
  int64_t source_ts_ms = rec.source_ts_ms;
  if (rec.format == debezium::SourceFormat::kChangefeed) {
    version = rec.hlc_wall_ns > 0 ? static_cast<uint64_t>(rec.hlc_wall_ns) : 0;
    if (source_ts_ms == 0) source_ts_ms = rec.hlc_wall_ns / 1'000'000;
  }
  if (version == 0) {
    return Status::InvalidArgument(fmt::format(
        "{}: the change has no position (Debezium source.lsn, or a changefeed's `updated`)",
        SanitizeForMessage(rec.table, 60)));
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(Table * t, d.FindTable(rec));
  if (rec.kind == ChangeRecord::Kind::kTruncate) {
    d.truncations.push_back({t->name, version});
    return Status::Ok();
  }

  RowContext row;
  row.version = version;
  row.source_ts_ms = source_ts_ms;
  row.schema = rec.after_schema.empty() ? nullptr : &rec.after_schema;
  row.deleted = rec.op == debezium::Op::kDelete;
  if (row.deleted) {
    if (rec.before) {
      row.image = &*rec.before;
    } else if (rec.key) {
      row.image = &*rec.key;
      if (rec.format == debezium::SourceFormat::kChangefeed) row.positional_names = &t->key_fields;
    }
    if (row.image == nullptr) {
      return Status::InvalidArgument(t->name + ": a delete without `before` or key");
    }
    for (const std::string& k : t->key_fields) {
      const Field* f = row.Find(k);
      if (f == nullptr || f->kind == FieldKind::kNull) {
        return Status::InvalidArgument(
            fmt::format("{}: the delete does not carry the key column {}", t->name, k));
      }
    }
  } else {
    if (!rec.after) return Status::InvalidArgument(t->name + ": a change without `after`");
    row.image = &*rec.after;
  }

  // Encode straight into the table's open segment. A row that fails validation, or that
  // carries fields the table does not have yet, is cut back off (the buffers stay as they
  // were) before anything else happens.
  if (t->segments.empty() || t->segments.back().schema_version != t->schema_version) {
    t->segments.push_back(d.NewSegment(*t));
  }
  row.batch = t->segments.back().batch;
  const size_t before = t->segments.back().rows.size();
  auto cut = [&] {
    Segment& seg = t->segments.back();
    seg.rows.buffer().resize(before);
    if (seg.count == 0) {
      d.spare_buffers.push_back(std::move(seg.rows.buffer()));
      t->segments.pop_back();
    }
  };
  Status st = EncodeRow(*t, row, t->segments.back().rows);
  if (!st.ok()) {
    cut();
    return st;
  }
  if (row.AllFieldsMatched()) {
    ++t->segments.back().count;
    return Status::Ok();
  }
  // Fields the table does not have yet.
  std::vector<std::pair<std::string, Base>> add;
  for (const Field& f : row.image->fields) {
    if (HasField(*t, f.name)) continue;
    std::string_view schema_type = row.SchemaType(f.name);
    if (f.kind == FieldKind::kNull && schema_type.empty()) continue;  // NULL once added
    auto base = NewColumnBase(f, schema_type);
    if (!base) {
      cut();
      return Status::InvalidArgument(
          fmt::format("{}.{}: new column whose ClickHouse type cannot be determined ({}{})",
                      t->name, SanitizeForMessage(f.name, 60), KindName(f.kind),
                      schema_type.empty() ? "" : ", schema " + std::string(schema_type)));
    }
    add.emplace_back(f.name, *base);
  }
  if (add.empty()) {
    ++t->segments.back().count;
    return Status::Ok();
  }
  cut();
  SPLITSTREAM_RETURN_IF_ERROR(d.AddColumns(*t, add));
  // The table's schema version moved on: the row starts a new segment with the new columns.
  t->segments.push_back(d.NewSegment(*t));
  row.batch = t->segments.back().batch;
  st = EncodeRow(*t, row, t->segments.back().rows);
  if (!st.ok()) {
    d.spare_buffers.push_back(std::move(t->segments.back().rows.buffer()));
    t->segments.pop_back();
    return st;
  }
  ++t->segments.back().count;
  return Status::Ok();
}

size_t ClickHouseWriter::buffered_rows() const {
  size_t n = impl_->truncations.size();
  for (const auto& [name, t] : impl_->tables) {
    for (const Segment& s : t.segments) n += s.count;
  }
  if (!impl_->running) n += impl_->sealed.rows();
  return n;
}

size_t ClickHouseWriter::buffered_bytes() const {
  size_t n = 0;
  for (const auto& tr : impl_->truncations) n += tr.table.size() + 9;
  for (const auto& [name, t] : impl_->tables) {
    for (const Segment& s : t.segments) n += s.rows.size();
  }
  if (!impl_->running) n += impl_->sealed.bytes();
  return n;
}

void ClickHouseWriter::BeginFlush() {
  Impl& d = *impl_;
  if (d.running || d.finished) return;  // one flush at a time; FinishFlush first
  d.Seal();
  if (d.options.insert_client == nullptr) {
    d.finished = WriteBatch(*d.client, d.options.database, d.settings, d.sealed);
    return;
  }
  d.running = std::async(std::launch::async, [&d] {
    return WriteBatch(*d.options.insert_client, d.options.database, d.settings, d.sealed);
  });
}

std::optional<Status> ClickHouseWriter::FinishFlush(std::chrono::milliseconds wait) {
  Impl& d = *impl_;
  std::optional<Status> result;
  if (d.running) {
    if (wait == std::chrono::milliseconds::max()) {
      d.running->wait();
    } else if (d.running->wait_for(wait) != std::future_status::ready) {
      return std::nullopt;
    }
    result = d.running->get();
    d.running.reset();
  } else if (d.finished) {
    result = std::move(d.finished);
    d.finished.reset();
  } else {
    return std::nullopt;
  }
  d.Account();
  return result;
}

Status ClickHouseWriter::Flush() {
  Impl& d = *impl_;
  // A flush in flight ends first; whatever it failed to write is still in `sealed`, and the
  // write below retries it ahead of the newer rows.
  if (d.running || d.finished) (void)FinishFlush(std::chrono::milliseconds::max());
  d.Seal();
  Status st = WriteBatch(*d.client, d.options.database, d.settings, d.sealed);
  d.Account();
  return st;
}

std::map<std::string, uint64_t> ClickHouseWriter::rows_written() const { return impl_->written; }

}  // namespace splitstream::pipeline
