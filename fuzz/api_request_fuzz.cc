// Fuzzes what a client sends the API before anything reaches the service: the request bodies
// (libs/api request.h), the path segments and the timestamps (libs/core timestamp.h). The first
// byte picks the parser, the rest is its input. Beyond not crashing, reading out of bounds or
// hitting undefined behaviour, what is accepted must keep the parsers' promises:
//   - strings handed on are what PostgreSQL text can hold (UTF-8, no NUL);
//   - an event's properties are a JSON object;
//   - an accepted timestamp, formatted again, reads back as the same instant.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "request.h"
#include "splitstream/core/timestamp.h"
#include "splitstream/experiments/model.h"

namespace api = splitstream::api;
namespace ex = splitstream::experiments;

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

void Text(std::string_view s) { Require(ex::IsValidText(s)); }

void Spec(std::string_view body) {
  auto spec = api::ParseExperimentSpec(body);
  if (!spec.ok()) return;
  Text(spec->key);
  for (const ex::VariantSpec& v : spec->variants) Text(v.key);
  for (const ex::MetricSpec& m : spec->metrics) Text(m.event_type);
  (void)ex::ValidateAndNormalize(*spec);  // the service's rules on whatever parsed
}

void Patch(std::string_view body) {
  auto patch = api::ParseAllocationPatch(body);
  if (!patch.ok()) return;
  Require(patch->traffic || patch->variants);
  if (patch->variants) {
    for (const ex::VariantSpec& v : *patch->variants) Text(v.key);
  }
}

void Assign(std::string_view body) {
  auto request = api::ParseAssignRequest(body);
  if (!request.ok()) return;
  Text(request->user_id);
  Text(request->experiment);
}

void Events(std::string_view body) {
  auto events = api::ParseEvents(body);
  if (!events.ok()) return;
  Require(events->size() <= ex::kMaxEventsPerBatch);
  static simdjson::dom::parser parser;
  for (const ex::Event& e : *events) {
    Text(e.experiment);
    Text(e.user_id);
    Text(e.type);
    Text(e.properties_json);
    simdjson::dom::element props;
    Require(parser.parse(e.properties_json).get(props) == simdjson::SUCCESS);
    Require(props.is_object());
    if (e.event_id) Require(api::IsUuid(*e.event_id));
  }
}

void Times(std::string_view text) {
  if (auto micros = api::ParseRfc3339Micros(text); micros.ok()) {
    auto again = api::ParseRfc3339Micros(splitstream::FormatTimestamp(*micros));
    Require(again.ok() && *again == *micros);
  }
  if (auto t = splitstream::ParseTimestamp(text); t.ok()) {
    auto again = splitstream::ParseTimestamp(splitstream::FormatTimestamp(t->micros));
    Require(again.ok() && again->micros == t->micros && again->has_time && again->has_zone);
  }
  (void)splitstream::ParseTimestampMillis(text, "ts");
}

void Path(std::string_view segment) {
  auto decoded = api::DecodePathSegment(segment, "key");
  if (!decoded.ok()) return;
  Require(!decoded->empty());
  Text(*decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // A copy of exactly the input: a parser must not read past the bytes it is given (simdjson
  // pads its own copy).
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      Spec(rest);
      break;
    case 1:
      Patch(rest);
      break;
    case 2:
      Assign(rest);
      break;
    case 3:
      Events(rest);
      break;
    case 4:
      Times(rest);
      break;
    default:
      Path(rest);
      break;
  }
  return 0;
}
