// Status: the outcome of an operation that can fail in an expected way.
//
// A Status is either OK or carries a code, a human-readable message and, for bad input,
// the path of the offending field (for example "variants[2].weight"). Expected failures
// are returned as values; exceptions are reserved for bugs and end at most one request.
// Status is a cheap value type; it is not thread-safe to mutate one from two threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace splitstream {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // malformed or semantically invalid input (HTTP 400/422)
  kNotFound,            // a named thing does not exist (404)
  kAlreadyExists,       // a key is taken (409)
  kConflict,            // the request conflicts with current state (409)
  kFailedPrecondition,  // the operation is not allowed in the current state (409)
  kUnauthenticated,     // missing or unknown credentials (401)
  kPermissionDenied,    // valid credentials without the right (403)
  kPayloadTooLarge,     // request body over the limit (413)
  kUnavailable,         // a dependency is down; retrying may help (503)
  kDataLoss,            // an invariant on stored data is broken
  kInternal,            // a bug or an unexpected dependency answer (500)
};

// The stable lowercase name of a code ("invalid_argument", ...), used as the API error code.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string field = {})
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg, std::string field = {}) {
    return {StatusCode::kInvalidArgument, std::move(msg), std::move(field)};
  }
  static Status NotFound(std::string msg, std::string field = {}) {
    return {StatusCode::kNotFound, std::move(msg), std::move(field)};
  }
  static Status AlreadyExists(std::string msg, std::string field = {}) {
    return {StatusCode::kAlreadyExists, std::move(msg), std::move(field)};
  }
  static Status Conflict(std::string msg, std::string field = {}) {
    return {StatusCode::kConflict, std::move(msg), std::move(field)};
  }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status Unauthenticated(std::string msg) {
    return {StatusCode::kUnauthenticated, std::move(msg)};
  }
  static Status PermissionDenied(std::string msg) {
    return {StatusCode::kPermissionDenied, std::move(msg)};
  }
  static Status PayloadTooLarge(std::string msg) {
    return {StatusCode::kPayloadTooLarge, std::move(msg)};
  }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status DataLoss(std::string msg) { return {StatusCode::kDataLoss, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& field() const { return field_; }

  // "invalid_argument: weight must be positive (field variants[1].weight)"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;

  bool operator==(const Status& other) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

}  // namespace splitstream

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define SPLITSTREAM_RETURN_IF_ERROR(expr) \
  do {                                    \
    ::splitstream::Status _st = (expr);   \
    if (!_st.ok()) return _st;            \
  } while (0)
