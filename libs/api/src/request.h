// Request bodies and path parameters of the API, parsed and type-checked before anything
// reaches the service (a rejected request stores nothing). Syntax errors come back as
// InvalidJson() (400 invalid_json); wrong types, missing, unknown or duplicate fields as
// InvalidArgument naming the field path ("variants[1].weight", "events[17].user_id").
// Domain rules (key syntax, weight ranges, layer overlaps) are the service's.
//
// Strictness, documented in libs/api/README.md and docs/openapi.yaml: every object must
// hold only its documented fields (unknown or duplicated fields are 400, so a typo such as
// "trafic" cannot be silently ignored); null is the same as an absent optional field;
// strings may not contain NUL characters (PostgreSQL text and jsonb cannot store them).
// `properties` of an event is free-form inside that rule.
//
// Pure functions, thread-safe (each thread parses with its own simdjson parser).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/experiments/model.h"

namespace splitstream::api {

// POST /v1/experiments.
Result<experiments::ExperimentSpec> ParseExperimentSpec(std::string_view body);

// PATCH /v1/experiments/{key}: {traffic?, variants?: [{key, weight}]}. At least one of the
// two is required.
struct AllocationPatch {
  std::optional<double> traffic;
  std::optional<std::vector<experiments::VariantSpec>> variants;
};
Result<AllocationPatch> ParseAllocationPatch(std::string_view body);

// POST /v1/assign: {user_id, experiment}.
Result<experiments::AssignRequest> ParseAssignRequest(std::string_view body);

// POST /v1/events: {events: [...]}, at most experiments::kMaxEventsPerBatch events. `ts` is
// an RFC 3339 string or a number of milliseconds since the Unix epoch; `event_id` a UUID
// (returned lower-case); `properties` an object, re-serialised compactly.
Result<std::vector<experiments::Event>> ParseEvents(std::string_view body);

// "2024-05-01T12:00:00.123456Z", "2024-05-01t12:00:00+02:00": microseconds since the Unix
// epoch. Years 1970..9999; at most 9 fraction digits (beyond microseconds truncated); no
// leap seconds.
Result<int64_t> ParseRfc3339Micros(std::string_view text);

// 8-4-4-4-12 hexadecimal digits.
bool IsUuid(std::string_view text);

// Decodes %XX escapes of one path segment ('+' is literal). InvalidArgument naming `field`
// for a malformed escape, an empty result, a NUL or invalid UTF-8.
Result<std::string> DecodePathSegment(std::string_view segment, std::string_view field);

}  // namespace splitstream::api
