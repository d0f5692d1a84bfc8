#include "splitstream/debezium/encoder.h"

#include <charconv>
#include <cstring>
#include <limits>

#include "text_format.h"

namespace splitstream::debezium {
namespace {

using namespace std::string_view_literals;

using internal::AppendInt;
using internal::AppendJsonString;

// PostgreSQL builtin type oids (src/include/catalog/pg_type.dat).
enum : uint32_t {
  kBoolOid = 16,
  kByteaOid = 17,
  kCharOid = 18,
  kNameOid = 19,
  kInt8Oid = 20,
  kInt2Oid = 21,
  kInt4Oid = 23,
  kTextOid = 25,
  kOidOid = 26,
  kJsonOid = 114,
  kXmlOid = 142,
  kXmlArrayOid = 143,
  kJsonArrayOid = 199,
  kCidrOid = 650,
  kCidrArrayOid = 651,
  kFloat4Oid = 700,
  kFloat8Oid = 701,
  kMacaddr8Oid = 774,
  kMacaddr8ArrayOid = 775,
  kMoneyOid = 790,
  kMacaddrOid = 829,
  kInetOid = 869,
  kBoolArrayOid = 1000,
  kByteaArrayOid = 1001,
  kCharArrayOid = 1002,
  kNameArrayOid = 1003,
  kInt2ArrayOid = 1005,
  kInt4ArrayOid = 1007,
  kTextArrayOid = 1009,
  kBpcharArrayOid = 1014,
  kVarcharArrayOid = 1015,
  kInt8ArrayOid = 1016,
  kFloat4ArrayOid = 1021,
  kFloat8ArrayOid = 1022,
  kOidArrayOid = 1028,
  kMacaddrArrayOid = 1040,
  kInetArrayOid = 1041,
  kBpcharOid = 1042,
  kVarcharOid = 1043,
  kDateOid = 1082,
  kTimeOid = 1083,
  kTimestampOid = 1114,
  kTimestampArrayOid = 1115,
  kDateArrayOid = 1182,
  kTimeArrayOid = 1183,
  kTimestamptzOid = 1184,
  kTimestamptzArrayOid = 1185,
  kIntervalOid = 1186,
  kIntervalArrayOid = 1187,
  kNumericArrayOid = 1231,
  kTimetzOid = 1266,
  kTimetzArrayOid = 1270,
  kNumericOid = 1700,
  kUuidOid = 2950,
  kUuidArrayOid = 2951,
  kJsonbOid = 3802,
  kJsonbArrayOid = 3807,
};

enum class Kind : uint8_t {
  kInt16,
  kInt32,
  kInt64,
  kFloat32,
  kFloat64,
  kBool,
  kDecimalFixed,     // precise, numeric(p,s): Connect Decimal bytes
  kDecimalVariable,  // precise, numeric: io.debezium.data.VariableScaleDecimal
  kDecimalString,
  kDecimalDouble,
  kString,
  kJson,
  kUuid,
  kXml,
  kEnum,
  kTimestampTz,
  kMicroTimestamp,
  kTimestamp,  // milliseconds
  kDate,
  kMicroTime,
  kTime,  // milliseconds
  kTimeTz,
  kInterval,
  kBytes,
  kArray,
};

struct TypePlan {
  Kind kind = Kind::kString;
  int32_t precision = 0;
  int32_t scale = 0;
  bool rescale = false;               // numeric(p,s): setScale(s) before encoding
  int fraction_digits = 6;            // kTimestampTz
  std::unique_ptr<TypePlan> element;  // kArray
};

uint32_t ArrayElementOid(uint32_t oid) {
  switch (oid) {
    case kBoolArrayOid:
      return kBoolOid;
    case kByteaArrayOid:
      return kByteaOid;
    case kCharArrayOid:
      return kCharOid;
    case kNameArrayOid:
      return kNameOid;
    case kInt2ArrayOid:
      return kInt2Oid;
    case kInt4ArrayOid:
      return kInt4Oid;
    case kTextArrayOid:
      return kTextOid;
    case kBpcharArrayOid:
      return kBpcharOid;
    case kVarcharArrayOid:
      return kVarcharOid;
    case kInt8ArrayOid:
      return kInt8Oid;
    case kFloat4ArrayOid:
      return kFloat4Oid;
    case kFloat8ArrayOid:
      return kFloat8Oid;
    case kOidArrayOid:
      return kOidOid;
    case kTimestampArrayOid:
      return kTimestampOid;
    case kDateArrayOid:
      return kDateOid;
    case kTimeArrayOid:
      return kTimeOid;
    case kTimestamptzArrayOid:
      return kTimestamptzOid;
    case kIntervalArrayOid:
      return kIntervalOid;
    case kNumericArrayOid:
      return kNumericOid;
    case kTimetzArrayOid:
      return kTimetzOid;
    case kUuidArrayOid:
      return kUuidOid;
    case kJsonArrayOid:
      return kJsonOid;
    case kJsonbArrayOid:
      return kJsonbOid;
    case kXmlArrayOid:
      return kXmlOid;
    case kInetArrayOid:
      return kInetOid;
    case kCidrArrayOid:
      return kCidrOid;
    case kMacaddrArrayOid:
      return kMacaddrOid;
    case kMacaddr8ArrayOid:
      return kMacaddr8Oid;
    default:
      return 0;
  }
}

// Temporal typmod: the fractional-second precision, -1 meaning the default 6.
int TemporalPrecision(int32_t typmod) { return typmod < 0 || typmod > 6 ? 6 : typmod; }

TypePlan ResolveType(uint32_t oid, int32_t typmod, const TableSchema& schema, DecimalMode mode) {
  TypePlan p;
  switch (oid) {
    case kInt2Oid:
      p.kind = Kind::kInt16;
      return p;
    case kInt4Oid:
      p.kind = Kind::kInt32;
      return p;
    case kInt8Oid:
    case kOidOid:
      p.kind = Kind::kInt64;
      return p;
    case kFloat4Oid:
      p.kind = Kind::kFloat32;
      return p;
    case kFloat8Oid:
      p.kind = Kind::kFloat64;
      return p;
    case kBoolOid:
      p.kind = Kind::kBool;
      return p;
    case kNumericOid: {
      bool fixed = internal::NumericTypmod(typmod, &p.precision, &p.scale);
      switch (mode) {
        case DecimalMode::kPrecise:
          p.kind = fixed ? Kind::kDecimalFixed : Kind::kDecimalVariable;
          break;
        case DecimalMode::kString:
          p.kind = Kind::kDecimalString;
          break;
        case DecimalMode::kDouble:
          p.kind = Kind::kDecimalDouble;
          break;
      }
      p.rescale = fixed;
      return p;
    }
    case kJsonOid:
    case kJsonbOid:
      p.kind = Kind::kJson;
      return p;
    case kUuidOid:
      p.kind = Kind::kUuid;
      return p;
    case kXmlOid:
      p.kind = Kind::kXml;
      return p;
    case kTimestamptzOid:
      p.kind = Kind::kTimestampTz;
      p.fraction_digits = TemporalPrecision(typmod);
      return p;
    case kTimestampOid:
      p.kind = TemporalPrecision(typmod) <= 3 ? Kind::kTimestamp : Kind::kMicroTimestamp;
      return p;
    case kDateOid:
      p.kind = Kind::kDate;
      return p;
    case kTimeOid:
      p.kind = TemporalPrecision(typmod) <= 3 ? Kind::kTime : Kind::kMicroTime;
      return p;
    case kTimetzOid:
      p.kind = Kind::kTimeTz;
      return p;
    case kIntervalOid:
      p.kind = Kind::kInterval;
      return p;
    case kByteaOid:
      p.kind = Kind::kBytes;
      return p;
    default:
      break;
  }
  if (uint32_t element = ArrayElementOid(oid); element != 0) {
    p.kind = Kind::kArray;
    p.element = std::make_unique<TypePlan>(ResolveType(element, typmod, schema, mode));
    return p;
  }
  if (auto it = schema.custom_types.find(oid); it != schema.custom_types.end()) {
    // pgoutput names an array type "_elem": an array of enum labels.
    if (!it->second.empty() && it->second[0] == '_') {
      p.kind = Kind::kArray;
      p.element = std::make_unique<TypePlan>();
      p.element->kind = Kind::kEnum;
    } else {
      p.kind = Kind::kEnum;
    }
    return p;
  }
  p.kind = Kind::kString;  // text, varchar, bpchar, name, char, inet, ranges, unknown types
  return p;
}

// The Connect schema of one type as Kafka's JsonConverter writes it, without the closing brace
// (the caller adds ,"field":"name" for struct fields).
void AppendTypeSchema(const TypePlan& p, bool optional, std::string* out) {
  auto simple = [&](std::string_view type, std::string_view name) {
    out->append("{\"type\":\""sv);
    out->append(type);
    out->append("\",\"optional\":"sv);
    out->append(optional ? "true" : "false");
    if (!name.empty()) {
      out->append(",\"name\":\""sv);
      out->append(name);
      out->append("\",\"version\":1"sv);
    }
  };
  switch (p.kind) {
    case Kind::kInt16:
      simple("int16", "");
      return;
    case Kind::kInt32:
      simple("int32", "");
      return;
    case Kind::kInt64:
      simple("int64", "");
      return;
    case Kind::kFloat32:
      simple("float", "");
      return;
    case Kind::kFloat64:
    case Kind::kDecimalDouble:
      simple("double", "");
      return;
    case Kind::kBool:
      simple("boolean", "");
      return;
    case Kind::kDecimalString:
    case Kind::kString:
      simple("string", "");
      return;
    case Kind::kDecimalFixed:
      simple("bytes", "org.apache.kafka.connect.data.Decimal");
      out->append(",\"parameters\":{\"scale\":\""sv);
      AppendInt(out, p.scale);
      out->append("\",\"connect.decimal.precision\":\""sv);
      AppendInt(out, p.precision);
      out->append("\"}"sv);
      return;
    case Kind::kDecimalVariable:
      out->append(
          "{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"optional\":false,\"field\":"
          "\"scale\"},{\"type\":\"bytes\",\"optional\":false,\"field\":\"value\"}],\"optional\":");
      out->append(optional ? "true" : "false");
      out->append(
          ",\"name\":\"io.debezium.data.VariableScaleDecimal\",\"version\":1,\"doc\":\"Variable "
          "scaled decimal\"");
      return;
    case Kind::kJson:
      simple("string", "io.debezium.data.Json");
      return;
    case Kind::kUuid:
      simple("string", "io.debezium.data.Uuid");
      return;
    case Kind::kXml:
      simple("string", "io.debezium.data.Xml");
      return;
    case Kind::kEnum:
      simple("string", "io.debezium.data.Enum");
      return;
    case Kind::kTimestampTz:
      simple("string", "io.debezium.time.ZonedTimestamp");
      return;
    case Kind::kMicroTimestamp:
      simple("int64", "io.debezium.time.MicroTimestamp");
      return;
    case Kind::kTimestamp:
      simple("int64", "io.debezium.time.Timestamp");
      return;
    case Kind::kDate:
      simple("int32", "io.debezium.time.Date");
      return;
    case Kind::kMicroTime:
      simple("int64", "io.debezium.time.MicroTime");
      return;
    case Kind::kTime:
      simple("int32", "io.debezium.time.Time");
      return;
    case Kind::kTimeTz:
      simple("string", "io.debezium.time.ZonedTime");
      return;
    case Kind::kInterval:
      simple("int64", "io.debezium.time.MicroDuration");
      return;
    case Kind::kBytes:
      simple("bytes", "");
      return;
    case Kind::kArray:
      out->append("{\"type\":\"array\",\"items\":"sv);
      AppendTypeSchema(*p.element, true, out);
      out->append("},\"optional\":"sv);
      out->append(optional ? "true" : "false");
      return;
  }
}

bool IsStringLike(Kind k) {
  return k == Kind::kString || k == Kind::kJson || k == Kind::kUuid || k == Kind::kXml ||
         k == Kind::kEnum || k == Kind::kTimeTz || k == Kind::kDecimalString;
}

// Epoch values of PostgreSQL's +/-infinity, as the Debezium documentation states for TIMESTAMP
// ("mimics the standard behavior of the PostgreSQL JDBC driver", PGStatement.DATE_*_INFINITY).
constexpr int64_t kPositiveInfinityTimestamp = 9223372036825200000;
constexpr int64_t kNegativeInfinityTimestamp = -9223372036832400000;

const char* AppendScalar(const TypePlan& p, std::string_view text, std::string* out);

// PostgreSQL array literal: [dims=]{elem,elem,...}, elements unquoted (NULL is null) or
// double-quoted with backslash escapes; nested braces for more dimensions.
const char* AppendArray(const TypePlan& element, std::string_view text, size_t* pos,
                        std::string* out) {
  thread_local std::string unescaped;
  if (*pos >= text.size() || text[*pos] != '{') return "expected '{' in array";
  ++*pos;
  out->push_back('[');
  bool first = true;
  while (true) {
    if (*pos >= text.size()) return "unterminated array";
    if (text[*pos] == '}' && first) {
      ++*pos;
      break;
    }
    if (!first) out->push_back(',');
    first = false;
    char c = text[*pos];
    if (c == '{') {
      if (const char* err = AppendArray(element, text, pos, out)) return err;
    } else if (c == '"') {
      ++*pos;
      unescaped.clear();
      while (true) {
        if (*pos >= text.size()) return "unterminated quoted array element";
        char q = text[(*pos)++];
        if (q == '"') break;
        if (q == '\\') {
          if (*pos >= text.size()) return "unterminated quoted array element";
          q = text[(*pos)++];
        }
        unescaped.push_back(q);
      }
      // AppendScalar never touches `unescaped`, so the view stays valid.
      if (const char* err = AppendScalar(element, unescaped, out)) return err;
    } else {
      size_t start = *pos;
      while (*pos < text.size() && text[*pos] != ',' && text[*pos] != '}') ++*pos;
      std::string_view item = text.substr(start, *pos - start);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      if (item.empty()) return "empty array element";
      if (item.size() == 4 && (item[0] == 'N' || item[0] == 'n') &&
          (item[1] == 'U' || item[1] == 'u') && (item[2] == 'L' || item[2] == 'l') &&
          (item[3] == 'L' || item[3] == 'l')) {
        out->append("null"sv);
      } else if (const char* err = AppendScalar(element, item, out)) {
        return err;
      }
    }
    if (*pos >= text.size()) return "unterminated array";
    if (text[*pos] == ',') {
      ++*pos;
      continue;
    }
    if (text[*pos] == '}') {
      ++*pos;
      break;
    }
    return "expected ',' or '}' in array";
  }
  out->push_back(']');
  return nullptr;
}

// Appends the JSON value of one non-null datum; returns an error reason or nullptr.
const char* AppendScalar(const TypePlan& p, std::string_view text, std::string* out) {
  switch (p.kind) {
    case Kind::kInt16:
    case Kind::kInt32:
    case Kind::kInt64: {
      int64_t v;
      if (!internal::ParseInt64(text, &v)) return "expected an integer";
      if (p.kind == Kind::kInt16 && (v < -32768 || v > 32767)) return "int2 out of range";
      if (p.kind == Kind::kInt32 &&
          (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())) {
        return "int4 out of range";
      }
      AppendInt(out, v);
      return nullptr;
    }
    case Kind::kFloat32:
    case Kind::kFloat64: {
      double v;
      if (!internal::ParseDouble(text, &v)) return "expected a floating-point number";
      if (p.kind == Kind::kFloat32) {
        internal::AppendJavaFloat(out, static_cast<float>(v));
      } else {
        internal::AppendJavaDouble(out, v);
      }
      return nullptr;
    }
    case Kind::kBool:
      if (text == "t") {
        out->append("true"sv);
      } else if (text == "f") {
        out->append("false"sv);
      } else {
        return "expected 't' or 'f'";
      }
      return nullptr;
    case Kind::kDecimalFixed:
    case Kind::kDecimalVariable:
    case Kind::kDecimalString:
    case Kind::kDecimalDouble: {
      thread_local internal::Decimal d;
      internal::NumericSpecial special;
      if (!internal::ParseNumeric(text, &d, &special)) return "expected a numeric";
      if (special != internal::NumericSpecial::kNone) {
        // SpecialValueDecimal.fromLogical: only string and double modes can carry them.
        if (p.kind == Kind::kDecimalString) {
          out->append(special == internal::NumericSpecial::kNaN ? "\"NAN\""
                      : special == internal::NumericSpecial::kPositiveInfinity
                          ? "\"POSITIVE_INFINITY\""
                          : "\"NEGATIVE_INFINITY\"");
          return nullptr;
        }
        if (p.kind == Kind::kDecimalDouble) {
          out->append(special == internal::NumericSpecial::kNaN                ? "\"NaN\""
                      : special == internal::NumericSpecial::kPositiveInfinity ? "\"Infinity\""
                                                                               : "\"-Infinity\"");
          return nullptr;
        }
        return "NaN/Infinity numeric needs decimal.handling.mode string or double";
      }
      if (p.rescale && !internal::Rescale(&d, p.scale))
        return "numeric has more digits than its scale";
      switch (p.kind) {
        case Kind::kDecimalFixed:
          out->push_back('"');
          internal::AppendUnscaledBase64(out, d);
          out->push_back('"');
          break;
        case Kind::kDecimalVariable:
          internal::StripTrailingZeros(&d);
          out->append("{\"scale\":"sv);
          AppendInt(out, d.scale);
          out->append(",\"value\":\""sv);
          internal::AppendUnscaledBase64(out, d);
          out->append("\"}"sv);
          break;
        case Kind::kDecimalString:
          out->push_back('"');
          internal::AppendJavaBigDecimal(out, d);
          out->push_back('"');
          break;
        default: {
          double v;
          if (!internal::ParseDouble(text, &v)) return "numeric out of double range";
          internal::AppendJavaDouble(out, v);
          break;
        }
      }
      return nullptr;
    }
    case Kind::kString:
    case Kind::kJson:
    case Kind::kUuid:
    case Kind::kXml:
    case Kind::kEnum:
      AppendJsonString(out, text);
      return nullptr;
    case Kind::kTimestampTz: {
      char iso[internal::kMaxUtcTimestampTzIso + 2];
      if (size_t n = internal::FormatUtcTimestampTzIso(text, p.fraction_digits, iso + 1)) {
        iso[0] = '"';
        iso[n + 1] = '"';
        out->append(iso, n + 2);
        return nullptr;
      }
      int64_t micros;
      int infinity;
      if (!internal::ParseTimestampTz(text, &micros, &infinity)) return "expected a timestamptz";
      if (infinity != 0) {
        out->append(infinity > 0 ? "\"infinity\"" : "\"-infinity\"");
        return nullptr;
      }
      out->push_back('"');
      internal::AppendIsoInstant(out, micros, p.fraction_digits);
      out->push_back('"');
      return nullptr;
    }
    case Kind::kMicroTimestamp:
    case Kind::kTimestamp: {
      int64_t micros;
      int infinity;
      if (!internal::ParseTimestamp(text, &micros, &infinity)) return "expected a timestamp";
      if (infinity != 0) {
        AppendInt(out, infinity > 0 ? kPositiveInfinityTimestamp : kNegativeInfinityTimestamp);
      } else if (p.kind == Kind::kTimestamp) {
        AppendInt(out, micros >= 0 ? micros / 1000 : -((-micros + 999) / 1000));
      } else {
        AppendInt(out, micros);
      }
      return nullptr;
    }
    case Kind::kDate: {
      int64_t days;
      int infinity;
      if (!internal::ParseDate(text, &days, &infinity)) return "expected a date";
      if (infinity != 0) {
        // pgjdbc maps date +/-infinity to LocalDate -5877611-06-21 / -5877611-06-22.
        days = DaysFromCivil(-5877611, 6, infinity > 0 ? 21 : 22);
      }
      AppendInt(out, days);
      return nullptr;
    }
    case Kind::kMicroTime:
    case Kind::kTime: {
      int64_t micros;
      if (!internal::ParseTime(text, &micros)) return "expected a time";
      AppendInt(out, p.kind == Kind::kTime ? micros / 1000 : micros);
      return nullptr;
    }
    case Kind::kTimeTz: {
      int64_t micros;
      if (!internal::ParseTimeTz(text, &micros)) return "expected a timetz";
      out->push_back('"');
      internal::AppendIsoTimeUtc(out, micros);
      out->push_back('"');
      return nullptr;
    }
    case Kind::kInterval: {
      int64_t micros;
      if (!internal::ParseIntervalMicros(text, &micros)) return "expected an interval";
      AppendInt(out, micros);
      return nullptr;
    }
    case Kind::kBytes:
      out->push_back('"');
      if (!internal::AppendByteaHexAsBase64(out, text)) return "expected bytea hex output";
      out->push_back('"');
      return nullptr;
    case Kind::kArray: {
      size_t pos = 0;
      if (!text.empty() && text[0] == '[') {  // explicit bounds "[0:2]={...}"
        size_t eq = text.find('=');
        if (eq == std::string_view::npos) return "malformed array bounds";
        pos = eq + 1;
      }
      if (const char* err = AppendArray(*p.element, text, &pos, out)) return err;
      if (pos != text.size()) return "trailing characters after array";
      return nullptr;
    }
  }
  return "unsupported type";
}

void AppendUnavailable(const TypePlan& p, std::string* out) {
  if (p.kind == Kind::kBytes) {
    out->push_back('"');
    internal::AppendBase64(out, kUnavailableValuePlaceholder);
    out->push_back('"');
  } else if (p.kind == Kind::kArray && IsStringLike(p.element->kind)) {
    out->push_back('[');
    AppendJsonString(out, kUnavailableValuePlaceholder);
    out->push_back(']');
  } else {
    AppendJsonString(out, kUnavailableValuePlaceholder);
  }
}

constexpr std::string_view kSourceSchema =
    "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":"
    "\"version\"},{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},{\"type\":"
    "\"string\",\"optional\":false,\"field\":\"name\"},{\"type\":\"int64\",\"optional\":false,"
    "\"field\":\"ts_ms\"},{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data."
    "Enum\",\"version\":1,\"parameters\":{\"allowed\":\"true,first,first_in_data_collection,"
    "last_in_data_collection,last,false,incremental\"},\"default\":\"false\",\"field\":"
    "\"snapshot\"},{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},{\"type\":"
    "\"string\",\"optional\":true,\"field\":\"sequence\"},{\"type\":\"int64\",\"optional\":"
    "true,\"field\":\"ts_us\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},{"
    "\"type\":\"string\",\"optional\":false,\"field\":\"schema\"},{\"type\":\"string\","
    "\"optional\":false,\"field\":\"table\"},{\"type\":\"int64\",\"optional\":true,\"field\":"
    "\"txId\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"lsn\"},{\"type\":\"int64\","
    "\"optional\":true,\"field\":\"xmin\"}],\"optional\":false,\"name\":\"io.debezium."
    "connector.postgresql.Source\",\"version\":1,\"field\":\"source\"}";

constexpr std::string_view kEnvelopeTailSchema =
    "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"
    "{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},{\"type\":\"int64\","
    "\"optional\":false,\"field\":\"data_collection_order\"}],\"optional\":true,\"name\":"
    "\"event.block\",\"version\":1,\"field\":\"transaction\"},{\"type\":\"string\","
    "\"optional\":false,\"field\":\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":"
    "\"ts_ms\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},{\"type\":\"int64\","
    "\"optional\":true,\"field\":\"ts_ns\"}]";

// The decimal text of `v` (as AppendInt writes it), in `buf`.
std::string_view Digits(int64_t v, char (&buf)[21]) {
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return {buf, static_cast<size_t>(r.ptr - buf)};
}

// ,"ts_ms":..,"ts_us":..,"ts_ns":.. of one instant in nanoseconds. For instants after
// 1970-01-01 00:00:00.001 the milli- and microsecond texts are prefixes of the nanosecond
// text, so one number is formatted instead of three.
void AppendTimesOfNanos(std::string* out, int64_t ts_ns) {
  if (ts_ns < 1'000'000) {
    out->append(",\"ts_ms\":"sv);
    AppendInt(out, FloorDiv(ts_ns, 1'000'000));
    out->append(",\"ts_us\":"sv);
    AppendInt(out, FloorDiv(ts_ns, 1000));
    out->append(",\"ts_ns\":"sv);
    AppendInt(out, ts_ns);
    return;
  }
  char buf[21];
  const std::string_view ns = Digits(ts_ns, buf);
  out->append(",\"ts_ms\":"sv);
  out->append(ns.substr(0, ns.size() - 6));
  out->append(",\"ts_us\":"sv);
  out->append(ns.substr(0, ns.size() - 3));
  out->append(",\"ts_ns\":"sv);
  out->append(ns);
}

std::string TransactionId(uint32_t tx_id, Lsn lsn) {
  return std::to_string(tx_id) + ":" + std::to_string(lsn.value());
}

}  // namespace

struct TableEncoding::Impl {
  struct ColumnPlan {
    TypePlan type;
    std::string json_key;   // "\"name\":"
    std::string qualified;  // schema.table.column, for error messages
    bool key = false;
  };
  std::vector<ColumnPlan> columns;
  std::string source_tail;      // ,"schema":"s","table":"t","txId":
  std::string key_schema;       // schema-enabled key schema
  std::string envelope_schema;  // schema-enabled value schema
  size_t key_count = 0;
};

TableEncoding::TableEncoding(TableSchema schema, std::string topic)
    : schema_(std::move(schema)), topic_(std::move(topic)), impl_(std::make_unique<Impl>()) {}
TableEncoding::~TableEncoding() = default;

Encoder::Encoder(EncoderOptions options) : options_(std::move(options)) {
  AppendJsonString(&escaped_server_name_, options_.server_name);
  AppendJsonString(&escaped_database_, options_.database);
  AppendJsonString(&escaped_version_, options_.version);
}

std::shared_ptr<const TableEncoding> Encoder::Prepare(TableSchema schema) const {
  std::string topic = options_.server_name + "." + schema.schema + "." + schema.table;
  auto table = std::shared_ptr<TableEncoding>(new TableEncoding(std::move(schema), topic));
  TableEncoding::Impl& impl = *table->impl_;
  const TableSchema& s = table->schema_;
  std::string prefix = options_.server_name + "." + s.schema + "." + s.table;
  std::string value_fields, key_fields;
  for (const Column& c : s.columns) {
    TableEncoding::Impl::ColumnPlan plan;
    plan.type = ResolveType(c.type_oid, c.type_modifier, s, options_.decimal_mode);
    AppendJsonString(&plan.json_key, c.name);
    plan.json_key.push_back(':');
    plan.qualified = s.schema + "." + s.table + "." + c.name;
    plan.key = c.key;
    if (c.key) ++impl.key_count;
    std::string field_tail = ",\"field\":";
    AppendJsonString(&field_tail, c.name);
    field_tail.push_back('}');
    if (!value_fields.empty()) value_fields.push_back(',');
    AppendTypeSchema(plan.type, !(c.key || c.not_null), &value_fields);
    value_fields += field_tail;
    if (c.key) {
      if (!key_fields.empty()) key_fields.push_back(',');
      AppendTypeSchema(plan.type, false, &key_fields);
      key_fields += field_tail;
    }
    impl.columns.push_back(std::move(plan));
  }
  table->has_key_ = impl.key_count > 0;
  impl.source_tail = ",\"schema\":";
  AppendJsonString(&impl.source_tail, s.schema);
  impl.source_tail += ",\"table\":";
  AppendJsonString(&impl.source_tail, s.table);
  impl.source_tail += ",\"txId\":";

  std::string row_schema_head =
      "{\"type\":\"struct\",\"fields\":[" + value_fields + "],\"optional\":true,\"name\":";
  AppendJsonString(&row_schema_head, prefix + ".Value");
  std::string& e = impl.envelope_schema;
  e = "{\"type\":\"struct\",\"fields\":[";
  e += row_schema_head + ",\"field\":\"before\"},";
  e += row_schema_head + ",\"field\":\"after\"},";
  e += kSourceSchema;
  e.push_back(',');
  e += kEnvelopeTailSchema;
  e += ",\"optional\":false,\"name\":";
  AppendJsonString(&e, prefix + ".Envelope");
  e += ",\"version\":2}";

  impl.key_schema =
      "{\"type\":\"struct\",\"fields\":[" + key_fields + "],\"optional\":false,\"name\":";
  AppendJsonString(&impl.key_schema, prefix + ".Key");
  impl.key_schema.push_back('}');
  return table;
}

std::string TableTopicsPattern(std::string_view server_name, std::string_view schema) {
  std::string out = "^";
  auto literal = [&out](std::string_view name) {
    for (char c : name) {
      if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out += '\\';
      out += c;
    }
  };
  literal(server_name);
  out += "\\.";
  literal(schema);
  out += "\\..*";
  return out;
}

std::string Encoder::Topic(const TableEncoding& table) const { return table.topic(); }

bool Encoder::EncodeKey(const TableEncoding& table, std::span<const Datum> row,
                        std::string* out) const {
  out->clear();
  const TableEncoding::Impl& impl = *table.impl_;
  if (impl.key_count == 0) return false;
  if (options_.schemas_enable) {
    out->append("{\"schema\":"sv);
    out->append(impl.key_schema);
    out->append(",\"payload\":"sv);
  }
  out->push_back('{');
  if (row.size() == impl.columns.size()) {
    bool first = true;
    for (size_t i = 0; i < row.size(); ++i) {
      const auto& plan = impl.columns[i];
      if (!plan.key) continue;
      if (!first) out->push_back(',');
      first = false;
      out->append(plan.json_key);
      const Datum& d = row[i];
      if (d.kind == DatumKind::kNull) {
        out->append("null"sv);
      } else if (d.kind == DatumKind::kUnchangedToast) {
        AppendUnavailable(plan.type, out);
      } else if (AppendScalar(plan.type, d.text, out) != nullptr) {
        // Keys come from the same row the value encoder validates; a malformed key value is
        // reported there. Keep the key well-formed JSON meanwhile.
        AppendJsonString(out, d.text);
      }
    }
  }
  out->push_back('}');
  if (options_.schemas_enable) out->push_back('}');
  return true;
}

Status Encoder::AppendRow(const TableEncoding& table, std::span<const Datum> row, std::string* out,
                          KeySpans* keys) const {
  const TableEncoding::Impl& impl = *table.impl_;
  if (row.size() != impl.columns.size()) {
    return Status::InvalidArgument("row has " + std::to_string(row.size()) + " values, table has " +
                                       std::to_string(impl.columns.size()) + " columns",
                                   table.schema().schema + "." + table.schema().table);
  }
  out->push_back('{');
  for (size_t i = 0; i < row.size(); ++i) {
    const auto& plan = impl.columns[i];
    if (i > 0) out->push_back(',');
    out->append(plan.json_key);
    const Datum& d = row[i];
    const size_t begin = out->size();
    switch (d.kind) {
      case DatumKind::kNull:
        out->append("null"sv);
        break;
      case DatumKind::kUnchangedToast:
        AppendUnavailable(plan.type, out);
        break;
      case DatumKind::kText:
        if (const char* err = AppendScalar(plan.type, d.text, out)) {
          return Status::InvalidArgument(plan.qualified + ": " + err, plan.qualified);
        }
        break;
    }
    if (keys != nullptr && plan.key) keys->spans[keys->count++] = {begin, out->size()};
  }
  out->push_back('}');
  return Status::Ok();
}

void Encoder::AppendSource(const TableEncoding& table, const SourceInfo& source,
                           std::string* out) const {
  // Each number is formatted once: the commit time's ts_ms/ts_us/ts_ns share digits, and the
  // change's LSN appears in `sequence` and in `lsn`.
  const int64_t us = source.commit_time_us;
  const bool plain_time = us >= 1000 && us <= std::numeric_limits<int64_t>::max() / 1000;
  char time_buf[21];
  const std::string_view us_text = plain_time ? Digits(us, time_buf) : ""sv;
  char lsn_buf[21];
  const std::string_view lsn_text = source.lsn.value() == 0
                                        ? "null"sv
                                        : Digits(static_cast<int64_t>(source.lsn.value()), lsn_buf);
  out->append("{\"version\":"sv);
  out->append(escaped_version_);
  out->append(",\"connector\":\"postgresql\",\"name\":"sv);
  out->append(escaped_server_name_);
  out->append(",\"ts_ms\":"sv);
  if (plain_time) {
    out->append(us_text.substr(0, us_text.size() - 3));
  } else {
    AppendInt(out, FloorDiv(us, 1000));
  }
  out->append(",\"snapshot\":"sv);
  if (source.snapshot.empty() || source.snapshot == "false") {
    out->append("\"false\""sv);
  } else {
    AppendJsonString(out, source.snapshot);
  }
  out->append(",\"db\":"sv);
  out->append(escaped_database_);
  // sequence: a string holding a JSON array of the last commit LSN and the current LSN.
  out->append(",\"sequence\":\"["sv);
  if (source.last_commit_lsn.value() == 0) {
    out->append("null"sv);
  } else {
    out->append("\\\""sv);
    AppendInt(out, static_cast<int64_t>(source.last_commit_lsn.value()));
    out->append("\\\""sv);
  }
  out->push_back(',');
  if (source.lsn.value() == 0) {
    out->append("null"sv);
  } else {
    out->append("\\\""sv);
    out->append(lsn_text);
    out->append("\\\""sv);
  }
  out->append("]\",\"ts_us\":"sv);
  if (plain_time) {
    out->append(us_text);
    out->append(",\"ts_ns\":"sv);
    out->append(us_text);
    out->append("000"sv);
  } else {
    AppendInt(out, us);
    out->append(",\"ts_ns\":"sv);
    AppendInt(out, us * 1000);
  }
  out->append(table.impl_->source_tail);
  if (source.tx_id == 0) {
    out->append("null"sv);
  } else {
    AppendInt(out, source.tx_id);
  }
  out->append(",\"lsn\":"sv);
  out->append(lsn_text);
  out->append(",\"xmin\":null}"sv);
}

Status Encoder::EncodeValue(const TableEncoding& table, Op op, std::span<const Datum> before,
                            std::span<const Datum> after, const SourceInfo& source,
                            int64_t processed_time_ns, std::string* out,
                            const TransactionInfo* transaction) const {
  out->clear();
  if (op == Op::kMessage || op == Op::kTruncate) {
    return Status::InvalidArgument(op == Op::kTruncate ? "use EncodeTruncate for op t"
                                                       : "op m (logical message) is not supported",
                                   "op");
  }
  return EncodeEnvelope(table, op, before, after, source, processed_time_ns, out, transaction);
}

Status Encoder::EncodeKeyAndValue(const TableEncoding& table, Op op, std::span<const Datum> before,
                                  std::span<const Datum> after, const SourceInfo& source,
                                  int64_t processed_time_ns, std::string* key, bool* has_key,
                                  std::string* value, const TransactionInfo* transaction) const {
  value->clear();
  if (op == Op::kMessage || op == Op::kTruncate) {
    return EncodeValue(table, op, before, after, source, processed_time_ns, value, transaction);
  }
  const TableEncoding::Impl& impl = *table.impl_;
  const bool key_from_after = !after.empty();
  const std::span<const Datum> key_row = key_from_after ? after : before;
  if (impl.key_count == 0 || impl.key_count > KeySpans::kMax ||
      key_row.size() != impl.columns.size()) {
    // Nothing to share (no key, an unusual key, or a key row EncodeKey writes as {}).
    *has_key = EncodeKey(table, key_row, key);
    return EncodeEnvelope(table, op, before, after, source, processed_time_ns, value, transaction);
  }
  KeySpans spans;
  SPLITSTREAM_RETURN_IF_ERROR(EncodeEnvelope(table, op, before, after, source, processed_time_ns,
                                             value, transaction, key_from_after ? nullptr : &spans,
                                             key_from_after ? &spans : nullptr));
  key->clear();
  *has_key = true;
  if (options_.schemas_enable) {
    key->append("{\"schema\":"sv);
    key->append(impl.key_schema);
    key->append(",\"payload\":"sv);
  }
  key->push_back('{');
  size_t k = 0;
  for (const auto& plan : impl.columns) {
    if (!plan.key) continue;
    if (k > 0) key->push_back(',');
    key->append(plan.json_key);
    const auto [begin, end] = spans.spans[k++];
    key->append(*value, begin, end - begin);
  }
  key->push_back('}');
  if (options_.schemas_enable) key->push_back('}');
  return Status::Ok();
}

Status Encoder::EncodeEnvelope(const TableEncoding& table, Op op, std::span<const Datum> before,
                               std::span<const Datum> after, const SourceInfo& source,
                               int64_t processed_time_ns, std::string* out,
                               const TransactionInfo* transaction, KeySpans* before_keys,
                               KeySpans* after_keys) const {
  out->clear();
  const TableEncoding::Impl& impl = *table.impl_;
  size_t text_bytes = 0;
  for (const Datum& d : before) text_bytes += d.text.size();
  for (const Datum& d : after) text_bytes += d.text.size();
  out->reserve(512 + text_bytes * 2 + impl.columns.size() * 24 +
               (options_.schemas_enable ? impl.envelope_schema.size() + 16 : 0));
  if (options_.schemas_enable) {
    out->append("{\"schema\":"sv);
    out->append(impl.envelope_schema);
    out->append(",\"payload\":"sv);
  }
  out->append("{\"before\":"sv);
  if (before.empty()) {
    out->append("null"sv);
  } else {
    SPLITSTREAM_RETURN_IF_ERROR(AppendRow(table, before, out, before_keys));
  }
  out->append(",\"after\":"sv);
  if (after.empty()) {
    out->append("null"sv);
  } else {
    SPLITSTREAM_RETURN_IF_ERROR(AppendRow(table, after, out, after_keys));
  }
  out->append(",\"source\":"sv);
  AppendSource(table, source, out);
  out->append(",\"transaction\":"sv);
  if (transaction == nullptr) {
    out->append("null"sv);
  } else {
    out->append("{\"id\":\""sv);
    out->append(TransactionId(transaction->tx_id, transaction->lsn));
    out->append("\",\"total_order\":"sv);
    AppendInt(out, transaction->total_order);
    out->append(",\"data_collection_order\":"sv);
    AppendInt(out, transaction->data_collection_order);
    out->push_back('}');
  }
  out->append(",\"op\":\""sv);
  out->push_back(static_cast<char>(op));
  out->push_back('"');
  AppendTimesOfNanos(out, processed_time_ns);
  out->push_back('}');
  if (options_.schemas_enable) out->push_back('}');
  return Status::Ok();
}

Status Encoder::EncodeTruncate(const TableEncoding& table, const SourceInfo& source,
                               int64_t processed_time_ns, std::string* out,
                               const TransactionInfo* transaction) const {
  // The truncate envelope is the change envelope with both row images null.
  return EncodeEnvelope(table, Op::kTruncate, {}, {}, source, processed_time_ns, out, transaction);
}

std::string Encoder::HeartbeatTopic() const {
  return "__debezium-heartbeat." + options_.server_name;
}

std::string Encoder::EncodeHeartbeatKey() const {
  std::string payload = "{\"serverName\":" + escaped_server_name_ + "}";
  if (!options_.schemas_enable) return payload;
  return "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,"
         "\"field\":\"serverName\"}],\"optional\":false,\"name\":\"io.debezium.connector.common."
         "ServerNameKey\",\"version\":1},\"payload\":" +
         payload + "}";
}

std::string Encoder::EncodeHeartbeatValue(int64_t ts_ms) const {
  std::string payload = "{\"ts_ms\":" + std::to_string(ts_ms) + "}";
  if (!options_.schemas_enable) return payload;
  return "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"int64\",\"optional\":false,"
         "\"field\":\"ts_ms\"}],\"optional\":false,\"name\":\"io.debezium.connector.common."
         "Heartbeat\",\"version\":1},\"payload\":" +
         payload + "}";
}

std::string Encoder::TransactionTopic() const { return options_.server_name + ".transaction"; }

std::string Encoder::EncodeTransactionKey(uint32_t tx_id, Lsn lsn) const {
  std::string payload = "{\"id\":\"" + TransactionId(tx_id, lsn) + "\"}";
  if (!options_.schemas_enable) return payload;
  return "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,"
         "\"field\":\"id\"}],\"optional\":false,\"name\":\"io.debezium.connector.common."
         "TransactionMetadataKey\",\"version\":1},\"payload\":" +
         payload + "}";
}

namespace {

constexpr std::string_view kTransactionValueSchema =
    "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":"
    "\"status\"},{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},{\"type\":\"int64\","
    "\"optional\":true,\"field\":\"event_count\"},{\"type\":\"array\",\"items\":{\"type\":"
    "\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":"
    "\"data_collection\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"event_count\"}],"
    "\"optional\":true,\"name\":\"event.collection\",\"version\":1},\"optional\":true,"
    "\"field\":\"data_collections\"},{\"type\":\"int64\",\"optional\":false,\"field\":"
    "\"ts_ms\"}],\"optional\":false,\"name\":\"io.debezium.connector.common."
    "TransactionMetadataValue\",\"version\":1}";

std::string WrapTransactionValue(bool schemas_enable, std::string payload) {
  if (!schemas_enable) return payload;
  std::string out = "{\"schema\":";
  out += kTransactionValueSchema;
  out += ",\"payload\":";
  out += payload;
  out += "}";
  return out;
}

}  // namespace

std::string Encoder::EncodeTransactionBegin(uint32_t tx_id, Lsn lsn, int64_t ts_ms) const {
  std::string p =
      "{\"status\":\"BEGIN\",\"id\":\"" + TransactionId(tx_id, lsn) +
      "\",\"event_count\":null,\"data_collections\":null,\"ts_ms\":" + std::to_string(ts_ms) + "}";
  return WrapTransactionValue(options_.schemas_enable, std::move(p));
}

std::string Encoder::EncodeTransactionEnd(
    uint32_t tx_id, Lsn lsn, int64_t ts_ms, int64_t event_count,
    std::span<const std::pair<std::string, int64_t>> per_table_counts) const {
  std::string p = "{\"status\":\"END\",\"id\":\"" + TransactionId(tx_id, lsn) +
                  "\",\"event_count\":" + std::to_string(event_count) + ",\"data_collections\":[";
  for (size_t i = 0; i < per_table_counts.size(); ++i) {
    if (i > 0) p.push_back(',');
    p += "{\"data_collection\":";
    AppendJsonString(&p, per_table_counts[i].first);
    p += ",\"event_count\":" + std::to_string(per_table_counts[i].second) + "}";
  }
  p += "],\"ts_ms\":" + std::to_string(ts_ms) + "}";
  return WrapTransactionValue(options_.schemas_enable, std::move(p));
}

}  // namespace splitstream::debezium
