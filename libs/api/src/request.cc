#include "request.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "errors.h"
#include "splitstream/core/timestamp.h"

namespace splitstream::api {
namespace {

namespace dom = simdjson::dom;
using experiments::Event;
using experiments::ExperimentSpec;
using experiments::MetricSpec;
using experiments::VariantSpec;
using Names = std::initializer_list<std::string_view>;

// One parser per thread: it keeps its buffers between requests, and the elements it returns
// live until its next parse, which is always after the calling function has copied them.
dom::parser& ThreadParser() {
  thread_local dom::parser parser;
  return parser;
}

Result<dom::element> ParseDocument(std::string_view body) {
  dom::element root;
  // simdjson needs SIMDJSON_PADDING readable bytes after the input; realloc_if_needed copies
  // the body into a padded buffer.
  if (auto err = ThreadParser().parse(body.data(), body.size(), true).get(root)) {
    return InvalidJson(simdjson::error_message(err));
  }
  return root;
}

std::string Join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string Index(std::string_view path, size_t i) { return fmt::format("{}[{}]", path, i); }

Status TypeError(const std::string& path, std::string_view what) {
  return Status::InvalidArgument(fmt::format("{} must be {}", path, what), path);
}

// Checks that `e` is an object holding only fields named in `known`, none twice.
Result<dom::object> AsObject(dom::element e, const std::string& path, Names known) {
  dom::object obj;
  if (e.get(obj) != simdjson::SUCCESS) {
    if (path.empty()) return Status::InvalidArgument("the body must be a JSON object");
    return TypeError(path, "an object");
  }
  uint64_t seen = 0;
  for (dom::key_value_pair field : obj) {
    size_t i = 0;
    for (std::string_view name : known) {
      if (name == field.key) break;
      ++i;
    }
    if (i == known.size()) {
      return Status::InvalidArgument("unknown field", Join(path, field.key));
    }
    if (seen & (uint64_t{1} << i)) {
      return Status::InvalidArgument("duplicate field", Join(path, field.key));
    }
    seen |= uint64_t{1} << i;
  }
  return obj;
}

// Absent and null both read as "not given".
std::optional<dom::element> Lookup(dom::object obj, std::string_view key) {
  dom::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  return e;
}

Status Missing(const std::string& path) {
  return Status::InvalidArgument(fmt::format("{} is required", path), path);
}

// A string field: no NUL, 1..max_len bytes when max_len > 0 (empty allowed when allow_empty).
Result<std::optional<std::string>> OptString(dom::object obj, std::string_view key,
                                             std::string_view prefix, size_t max_len = 0,
                                             bool allow_empty = true) {
  std::optional<dom::element> e = Lookup(obj, key);
  if (!e) return std::optional<std::string>();
  std::string path = Join(prefix, key);
  std::string_view s;
  if (e->get(s) != simdjson::SUCCESS) return TypeError(path, "a string");
  if (s.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(path + " must not contain NUL characters", path);
  }
  if (!allow_empty && s.empty()) {
    return Status::InvalidArgument(path + " must not be empty", path);
  }
  if (max_len > 0 && s.size() > max_len) {
    return Status::InvalidArgument(fmt::format("{} is longer than {} bytes", path, max_len), path);
  }
  return std::optional<std::string>(std::string(s));
}

Result<std::string> ReqString(dom::object obj, std::string_view key, std::string_view prefix,
                              size_t max_len = 0) {
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<std::string> s,
                               OptString(obj, key, prefix, max_len, /*allow_empty=*/false));
  if (!s) return Missing(Join(prefix, key));
  return std::move(*s);
}

Result<std::optional<double>> OptNumber(dom::object obj, std::string_view key,
                                        std::string_view prefix) {
  std::optional<dom::element> e = Lookup(obj, key);
  if (!e) return std::optional<double>();
  double d = 0;
  // get_double also converts integers; simdjson rejects numbers outside double's range.
  if (e->get(d) != simdjson::SUCCESS || !std::isfinite(d)) {
    return TypeError(Join(prefix, key), "a number");
  }
  return std::optional<double>(d);
}

Result<double> ReqNumber(dom::object obj, std::string_view key, std::string_view prefix) {
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<double> d, OptNumber(obj, key, prefix));
  if (!d) return Missing(Join(prefix, key));
  return *d;
}

Result<std::optional<int64_t>> OptInt(dom::object obj, std::string_view key,
                                      std::string_view prefix) {
  std::optional<dom::element> e = Lookup(obj, key);
  if (!e) return std::optional<int64_t>();
  int64_t v = 0;
  if (e->get(v) != simdjson::SUCCESS) return TypeError(Join(prefix, key), "an integer");
  return std::optional<int64_t>(v);
}

Result<std::optional<bool>> OptBool(dom::object obj, std::string_view key,
                                    std::string_view prefix) {
  std::optional<dom::element> e = Lookup(obj, key);
  if (!e) return std::optional<bool>();
  bool v = false;
  if (e->get(v) != simdjson::SUCCESS) return TypeError(Join(prefix, key), "a boolean");
  return std::optional<bool>(v);
}

Result<std::optional<dom::array>> OptArray(dom::object obj, std::string_view key,
                                           std::string_view prefix) {
  std::optional<dom::element> e = Lookup(obj, key);
  if (!e) return std::optional<dom::array>();
  dom::array a;
  if (e->get(a) != simdjson::SUCCESS) return TypeError(Join(prefix, key), "an array");
  return std::optional<dom::array>(a);
}

Result<std::vector<VariantSpec>> ParseVariants(dom::array arr, const std::string& path) {
  std::vector<VariantSpec> out;
  size_t i = 0;
  for (dom::element e : arr) {
    std::string at = Index(path, i++);
    SPLITSTREAM_ASSIGN_OR_RETURN(dom::object v, AsObject(e, at, {"key", "weight"}));
    VariantSpec spec;
    SPLITSTREAM_ASSIGN_OR_RETURN(spec.key, ReqString(v, "key", at));
    SPLITSTREAM_ASSIGN_OR_RETURN(spec.weight, ReqNumber(v, "weight", at));
    out.push_back(std::move(spec));
  }
  return out;
}

Result<MetricSpec> ParseMetric(dom::element e, const std::string& at) {
  SPLITSTREAM_ASSIGN_OR_RETURN(
      dom::object m, AsObject(e, at,
                              {"key", "event_type", "kind", "denominator_event_type", "quantile",
                               "window_hours", "higher_is_better", "guardrail"}));
  MetricSpec metric;
  SPLITSTREAM_ASSIGN_OR_RETURN(metric.key, ReqString(m, "key", at));
  SPLITSTREAM_ASSIGN_OR_RETURN(metric.event_type, ReqString(m, "event_type", at));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<std::string> kind, OptString(m, "kind", at));
  if (kind) metric.kind = std::move(*kind);
  SPLITSTREAM_ASSIGN_OR_RETURN(metric.denominator_event_type,
                               OptString(m, "denominator_event_type", at));
  SPLITSTREAM_ASSIGN_OR_RETURN(metric.quantile, OptNumber(m, "quantile", at));
  SPLITSTREAM_ASSIGN_OR_RETURN(metric.window_hours, OptInt(m, "window_hours", at));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<bool> higher, OptBool(m, "higher_is_better", at));
  if (higher) metric.higher_is_better = *higher;
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<bool> guardrail, OptBool(m, "guardrail", at));
  if (guardrail) metric.guardrail = *guardrail;
  return metric;
}

bool HasNul(dom::element e) {
  std::string_view s;
  dom::array a;
  dom::object o;
  if (e.get(s) == simdjson::SUCCESS) return s.find('\0') != std::string_view::npos;
  if (e.get(a) == simdjson::SUCCESS) {
    for (dom::element c : a) {
      if (HasNul(c)) return true;
    }
  } else if (e.get(o) == simdjson::SUCCESS) {
    for (dom::key_value_pair f : o) {
      if (f.key.find('\0') != std::string_view::npos || HasNul(f.value)) return true;
    }
  }
  return false;
}

constexpr int64_t kMaxMicros = 253402300799999999;  // 9999-12-31T23:59:59.999999Z

Result<int64_t> ParseTs(dom::element e, const std::string& path) {
  std::string_view s;
  if (e.get(s) == simdjson::SUCCESS) {
    Result<int64_t> micros = ParseRfc3339Micros(s);
    if (!micros.ok()) {
      return Status::InvalidArgument(path + ": " + micros.status().message(), path);
    }
    return *micros;
  }
  int64_t ms = 0;
  double dms = 0;
  if (e.get(ms) == simdjson::SUCCESS) {
    if (ms >= 0 && ms <= kMaxMicros / 1000) return ms * 1000;
  } else if (e.get(dms) == simdjson::SUCCESS) {
    if (dms >= 0 && dms <= static_cast<double>(kMaxMicros / 1000)) {
      return static_cast<int64_t>(std::llround(dms * 1000));
    }
  } else {
    return TypeError(path, "an RFC 3339 string or a number of milliseconds since the epoch");
  }
  return Status::InvalidArgument(path + " is outside 1970..9999", path);
}

Result<Event> ParseEvent(dom::element e, const std::string& at) {
  SPLITSTREAM_ASSIGN_OR_RETURN(
      dom::object o,
      AsObject(e, at, {"experiment", "user_id", "type", "value", "properties", "ts", "event_id"}));
  Event ev;
  SPLITSTREAM_ASSIGN_OR_RETURN(ev.experiment, ReqString(o, "experiment", at));
  SPLITSTREAM_ASSIGN_OR_RETURN(ev.user_id,
                               ReqString(o, "user_id", at, experiments::kMaxUserIdLength));
  SPLITSTREAM_ASSIGN_OR_RETURN(ev.type, ReqString(o, "type", at, experiments::kMaxEventTypeLength));
  SPLITSTREAM_ASSIGN_OR_RETURN(ev.value, OptNumber(o, "value", at));
  if (std::optional<dom::element> props = Lookup(o, "properties")) {
    std::string path = Join(at, "properties");
    if (!props->is_object()) return TypeError(path, "an object");
    if (HasNul(*props)) {
      return Status::InvalidArgument(path + " must not contain NUL characters", path);
    }
    ev.properties_json = simdjson::minify(*props);
  }
  if (std::optional<dom::element> ts = Lookup(o, "ts")) {
    SPLITSTREAM_ASSIGN_OR_RETURN(ev.ts_us, ParseTs(*ts, Join(at, "ts")));
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<std::string> id, OptString(o, "event_id", at));
  if (id) {
    if (!IsUuid(*id)) {
      std::string path = Join(at, "event_id");
      return Status::InvalidArgument(path + " must be a UUID (8-4-4-4-12 hex digits)", path);
    }
    for (char& c : *id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ev.event_id = std::move(*id);
  }
  return ev;
}

}  // namespace

Result<ExperimentSpec> ParseExperimentSpec(std::string_view body) {
  SPLITSTREAM_ASSIGN_OR_RETURN(dom::element root, ParseDocument(body));
  SPLITSTREAM_ASSIGN_OR_RETURN(
      dom::object o, AsObject(root, "",
                              {"key", "name", "description", "variants", "traffic", "layer",
                               "layer_start", "layer_end", "seed", "hash_version", "metrics"}));
  ExperimentSpec spec;
  SPLITSTREAM_ASSIGN_OR_RETURN(spec.key, ReqString(o, "key", ""));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<std::string> name, OptString(o, "name", ""));
  if (name) spec.name = std::move(*name);
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<std::string> description,
                               OptString(o, "description", ""));
  if (description) spec.description = std::move(*description);
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<dom::array> variants, OptArray(o, "variants", ""));
  if (!variants) return Missing("variants");
  SPLITSTREAM_ASSIGN_OR_RETURN(spec.variants, ParseVariants(*variants, "variants"));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<double> traffic, OptNumber(o, "traffic", ""));
  if (traffic) spec.traffic = *traffic;
  SPLITSTREAM_ASSIGN_OR_RETURN(spec.layer, OptString(o, "layer", ""));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<double> start, OptNumber(o, "layer_start", ""));
  if (start) spec.layer_start = *start;
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<double> end, OptNumber(o, "layer_end", ""));
  if (end) spec.layer_end = *end;
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<std::string> seed, OptString(o, "seed", ""));
  if (seed) spec.seed = std::move(*seed);
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<int64_t> version, OptInt(o, "hash_version", ""));
  if (version) {
    if (*version < 0 || *version > 1000) {
      return Status::InvalidArgument("hash_version must be 1 or 2", "hash_version");
    }
    spec.hash_version = static_cast<int>(*version);
  }
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<dom::array> metrics, OptArray(o, "metrics", ""));
  if (metrics) {
    size_t i = 0;
    for (dom::element m : *metrics) {
      SPLITSTREAM_ASSIGN_OR_RETURN(MetricSpec metric, ParseMetric(m, Index("metrics", i++)));
      spec.metrics.push_back(std::move(metric));
    }
  }
  return spec;
}

Result<AllocationPatch> ParseAllocationPatch(std::string_view body) {
  SPLITSTREAM_ASSIGN_OR_RETURN(dom::element root, ParseDocument(body));
  SPLITSTREAM_ASSIGN_OR_RETURN(dom::object o, AsObject(root, "", {"traffic", "variants"}));
  AllocationPatch patch;
  SPLITSTREAM_ASSIGN_OR_RETURN(patch.traffic, OptNumber(o, "traffic", ""));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<dom::array> variants, OptArray(o, "variants", ""));
  if (variants) {
    SPLITSTREAM_ASSIGN_OR_RETURN(patch.variants, ParseVariants(*variants, "variants"));
  }
  if (!patch.traffic && !patch.variants) {
    return Status::InvalidArgument("give traffic, variants or both");
  }
  return patch;
}

Result<experiments::AssignRequest> ParseAssignRequest(std::string_view body) {
  SPLITSTREAM_ASSIGN_OR_RETURN(dom::element root, ParseDocument(body));
  SPLITSTREAM_ASSIGN_OR_RETURN(dom::object o, AsObject(root, "", {"user_id", "experiment"}));
  experiments::AssignRequest req;
  SPLITSTREAM_ASSIGN_OR_RETURN(req.user_id,
                               ReqString(o, "user_id", "", experiments::kMaxUserIdLength));
  SPLITSTREAM_ASSIGN_OR_RETURN(req.experiment, ReqString(o, "experiment", ""));
  return req;
}

Result<std::vector<Event>> ParseEvents(std::string_view body) {
  SPLITSTREAM_ASSIGN_OR_RETURN(dom::element root, ParseDocument(body));
  SPLITSTREAM_ASSIGN_OR_RETURN(dom::object o, AsObject(root, "", {"events"}));
  SPLITSTREAM_ASSIGN_OR_RETURN(std::optional<dom::array> events, OptArray(o, "events", ""));
  if (!events) return Missing("events");
  size_t n = events->size();
  if (n > experiments::kMaxEventsPerBatch) {
    return Status::InvalidArgument(fmt::format("events holds {} events; at most {} per request", n,
                                               experiments::kMaxEventsPerBatch),
                                   "events");
  }
  std::vector<Event> out;
  out.reserve(n);
  size_t i = 0;
  for (dom::element e : *events) {
    SPLITSTREAM_ASSIGN_OR_RETURN(Event ev, ParseEvent(e, Index("events", i++)));
    out.push_back(std::move(ev));
  }
  return out;
}

Result<int64_t> ParseRfc3339Micros(std::string_view s) {
  auto bad = [](std::string_view why) {
    return Status::InvalidArgument(
        fmt::format("not an RFC 3339 timestamp ({}); expected e.g. 2024-05-01T12:00:00Z", why));
  };
  Result<Timestamp> t = ParseTimestamp(s);
  if (!t.ok()) return bad(t.status().message());
  if (!t->has_time) return bad("no time of day");
  if (!t->has_zone) return bad("no time zone: Z or an offset such as +02:00");
  if (t->micros < 0) return bad("before 1970");
  return t->micros;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

Result<std::string> DecodePathSegment(std::string_view segment, std::string_view field) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format("{} in the path {}", field, why),
                                   std::string(field));
  };
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(segment.size());
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out += segment[i];
      continue;
    }
    if (i + 2 >= segment.size()) return bad("has a truncated %-escape");
    int hi = hex(segment[i + 1]);
    int lo = hex(segment[i + 2]);
    if (hi < 0 || lo < 0) return bad("has a malformed %-escape");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (out.empty()) return bad("is empty");
  if (out.find('\0') != std::string::npos) return bad("contains a NUL character");
  if (!simdjson::validate_utf8(out.data(), out.size())) return bad("is not valid UTF-8");
  return out;
}

}  // namespace splitstream::api
