// The one mapping from a Status to an HTTP status, a stable API error code and the JSON
// error body {"error": {"code", "message", "field"?}} (after redpanda's pandaproxy/error.h).
//
// Two conditions that the HTTP layer detects itself have no StatusCode of their own; they
// travel as a Status whose field is one of the reserved markers below (they start with a
// control character, so no real field path can collide with them) and MapStatus() turns
// them into their own codes without echoing the marker.
#pragma once

#include <string>
#include <string_view>

#include "splitstream/core/status.h"

namespace splitstream::api {

inline constexpr std::string_view kInvalidJsonMarker = "\x01invalid_json";
inline constexpr std::string_view kMethodNotAllowedMarker = "\x01method_not_allowed";

// A body that is not JSON (syntax, invalid UTF-8, too deep): 400 invalid_json.
Status InvalidJson(std::string what);
// A known path with an unsupported method: 405 method_not_allowed.
Status MethodNotAllowed(std::string_view method, std::string_view path);

struct ErrorReply {
  int http_status = 500;
  std::string_view code;  // stable: invalid_json, invalid_argument, unauthenticated, ...
  std::string body;       // {"error": {...}}
};

// Maps `status` (not OK) to its reply:
//   InvalidArgument 400 invalid_argument (invalid_json for kInvalidJsonMarker; 405
//   method_not_allowed for kMethodNotAllowedMarker), Unauthenticated 401 unauthenticated,
//   PermissionDenied 403 forbidden, NotFound 404 not_found, AlreadyExists 409
//   already_exists, Conflict 409 conflict, FailedPrecondition 409 failed_precondition,
//   PayloadTooLarge 413 payload_too_large, Unavailable 503 unavailable, Internal and
//   DataLoss 500 internal (logged at warn; the body carries a generic message only).
// The message and field are stripped of control characters and invalid UTF-8.
ErrorReply MapStatus(const Status& status);

}  // namespace splitstream::api
