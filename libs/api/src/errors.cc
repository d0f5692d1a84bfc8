#include "errors.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "splitstream/core/strings.h"

namespace splitstream::api {
namespace {

// Echoed input must be safe in a JSON string and in a terminal: control characters become
// '?' (SanitizeForMessage), and a message that is not valid UTF-8 (a URL-decoded path can
// hold any byte) keeps only its ASCII.
std::string Clean(std::string_view text) {
  std::string out = SanitizeForMessage(text, 500);
  if (!simdjson::validate_utf8(out.data(), out.size())) {
    for (char& c : out) {
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    }
  }
  return out;
}

std::string Body(std::string_view code, std::string_view message, std::string_view field) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(code.data(), code.size());
  std::string msg = Clean(message);
  w.Key("message");
  w.String(msg.data(), msg.size());
  if (!field.empty()) {
    std::string f = Clean(field);
    w.Key("field");
    w.String(f.data(), f.size());
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

Status InvalidJson(std::string what) {
  return Status(StatusCode::kInvalidArgument, "malformed JSON: " + what,
                std::string(kInvalidJsonMarker));
}

Status MethodNotAllowed(std::string_view method, std::string_view path) {
  return Status(StatusCode::kInvalidArgument,
                "method " + std::string(method) + " is not allowed on " + std::string(path),
                std::string(kMethodNotAllowedMarker));
}

ErrorReply MapStatus(const Status& status) {
  int http = 500;
  std::string_view code = "internal";
  std::string_view field = status.field();
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      if (field == kInvalidJsonMarker) {
        http = 400;
        code = "invalid_json";
        field = {};
      } else if (field == kMethodNotAllowedMarker) {
        http = 405;
        code = "method_not_allowed";
        field = {};
      } else {
        http = 400;
        code = "invalid_argument";
      }
      break;
    case StatusCode::kUnauthenticated:
      http = 401;
      code = "unauthenticated";
      break;
    case StatusCode::kPermissionDenied:
      http = 403;
      code = "forbidden";
      break;
    case StatusCode::kNotFound:
      http = 404;
      code = "not_found";
      break;
    case StatusCode::kAlreadyExists:
      http = 409;
      code = "already_exists";
      break;
    case StatusCode::kConflict:
      http = 409;
      code = "conflict";
      break;
    case StatusCode::kFailedPrecondition:
      http = 409;
      code = "failed_precondition";
      break;
    case StatusCode::kPayloadTooLarge:
      http = 413;
      code = "payload_too_large";
      break;
    case StatusCode::kUnavailable:
      http = 503;
      code = "unavailable";
      break;
    case StatusCode::kOk:  // a caller bug; answer as an internal error rather than crash
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      // The message may name tables, SQL or hosts: it goes to the log, not to the client.
      spdlog::warn("internal error answered with 500: {}", Clean(status.ToString()));
      return {500, "internal", Body("internal", "internal error; see the server log", {})};
  }
  return {http, code, Body(code, status.message(), field)};
}

}  // namespace splitstream::api
