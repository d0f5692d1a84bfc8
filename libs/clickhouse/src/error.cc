#include "splitstream/clickhouse/error.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <string>

#include "splitstream/core/strings.h"

namespace splitstream::clickhouse {
namespace {

constexpr std::string_view kMarker = "ClickHouse error ";
constexpr size_t kMaxMessage = 1000;

struct KnownError {
  int code;
  std::string_view name;
  StatusCode status;
};

// Codes from ClickHouse's src/Common/ErrorCodes.cpp that callers can act on differently.
constexpr std::array kKnownErrors = {
    KnownError{3, "UNEXPECTED_END_OF_FILE", StatusCode::kUnavailable},  // body cut short
    KnownError{6, "CANNOT_PARSE_TEXT", StatusCode::kInvalidArgument},
    KnownError{8, "THERE_IS_NO_COLUMN", StatusCode::kInvalidArgument},
    KnownError{10, "NOT_FOUND_COLUMN_IN_BLOCK", StatusCode::kInvalidArgument},
    KnownError{16, "NO_SUCH_COLUMN_IN_TABLE", StatusCode::kNotFound},
    KnownError{20, "NUMBER_OF_COLUMNS_DOESNT_MATCH", StatusCode::kInvalidArgument},
    KnownError{26, "CANNOT_PARSE_QUOTED_STRING", StatusCode::kInvalidArgument},
    KnownError{27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", StatusCode::kInvalidArgument},
    KnownError{32, "ATTEMPT_TO_READ_AFTER_EOF", StatusCode::kInvalidArgument},
    KnownError{33, "CANNOT_READ_ALL_DATA", StatusCode::kInvalidArgument},
    KnownError{36, "BAD_ARGUMENTS", StatusCode::kInvalidArgument},
    KnownError{38, "CANNOT_PARSE_DATE", StatusCode::kInvalidArgument},
    KnownError{41, "CANNOT_PARSE_DATETIME", StatusCode::kInvalidArgument},
    KnownError{42, "NUMBER_OF_ARGUMENTS_DOESNT_MATCH", StatusCode::kInvalidArgument},
    KnownError{43, "ILLEGAL_TYPE_OF_ARGUMENT", StatusCode::kInvalidArgument},
    KnownError{44, "ILLEGAL_COLUMN", StatusCode::kInvalidArgument},
    KnownError{46, "UNKNOWN_FUNCTION", StatusCode::kInvalidArgument},
    KnownError{47, "UNKNOWN_IDENTIFIER", StatusCode::kInvalidArgument},
    KnownError{48, "NOT_IMPLEMENTED", StatusCode::kInvalidArgument},
    KnownError{49, "LOGICAL_ERROR", StatusCode::kInternal},
    KnownError{50, "UNKNOWN_TYPE", StatusCode::kInvalidArgument},
    KnownError{53, "TYPE_MISMATCH", StatusCode::kInvalidArgument},
    KnownError{57, "TABLE_ALREADY_EXISTS", StatusCode::kAlreadyExists},
    KnownError{60, "UNKNOWN_TABLE", StatusCode::kNotFound},
    KnownError{62, "SYNTAX_ERROR", StatusCode::kInvalidArgument},
    KnownError{69, "ARGUMENT_OUT_OF_BOUND", StatusCode::kInvalidArgument},
    KnownError{70, "CANNOT_CONVERT_TYPE", StatusCode::kInvalidArgument},
    KnownError{72, "CANNOT_PARSE_NUMBER", StatusCode::kInvalidArgument},
    KnownError{73, "UNKNOWN_FORMAT", StatusCode::kInvalidArgument},
    KnownError{76, "CANNOT_OPEN_FILE", StatusCode::kInternal},
    KnownError{81, "UNKNOWN_DATABASE", StatusCode::kNotFound},
    KnownError{82, "DATABASE_ALREADY_EXISTS", StatusCode::kAlreadyExists},
    KnownError{115, "UNKNOWN_SETTING", StatusCode::kInvalidArgument},
    KnownError{117, "INCORRECT_DATA", StatusCode::kInvalidArgument},
    KnownError{130, "CANNOT_READ_ARRAY_FROM_TEXT", StatusCode::kInvalidArgument},
    KnownError{159, "TIMEOUT_EXCEEDED", StatusCode::kUnavailable},
    KnownError{164, "READONLY", StatusCode::kPermissionDenied},
    KnownError{181, "ILLEGAL_FINAL", StatusCode::kInvalidArgument},
    KnownError{184, "ILLEGAL_AGGREGATION", StatusCode::kInvalidArgument},
    KnownError{192, "UNKNOWN_USER", StatusCode::kUnauthenticated},
    KnownError{193, "WRONG_PASSWORD", StatusCode::kUnauthenticated},
    KnownError{194, "REQUIRED_PASSWORD", StatusCode::kUnauthenticated},
    KnownError{195, "IP_ADDRESS_NOT_ALLOWED", StatusCode::kUnauthenticated},
    KnownError{202, "TOO_MANY_SIMULTANEOUS_QUERIES", StatusCode::kUnavailable},
    KnownError{203, "NO_FREE_CONNECTION", StatusCode::kUnavailable},
    KnownError{209, "SOCKET_TIMEOUT", StatusCode::kUnavailable},
    KnownError{210, "NETWORK_ERROR", StatusCode::kUnavailable},
    KnownError{215, "NOT_AN_AGGREGATE", StatusCode::kInvalidArgument},
    KnownError{225, "NO_ZOOKEEPER", StatusCode::kUnavailable},
    KnownError{236, "ABORTED", StatusCode::kUnavailable},
    KnownError{241, "MEMORY_LIMIT_EXCEEDED", StatusCode::kUnavailable},
    KnownError{242, "TABLE_IS_READ_ONLY", StatusCode::kUnavailable},
    KnownError{252, "TOO_MANY_PARTS", StatusCode::kUnavailable},
    KnownError{279, "ALL_CONNECTION_TRIES_FAILED", StatusCode::kUnavailable},
    KnownError{285, "TOO_FEW_LIVE_REPLICAS", StatusCode::kUnavailable},
    KnownError{319, "UNKNOWN_STATUS_OF_INSERT", StatusCode::kUnavailable},
    KnownError{341, "UNFINISHED", StatusCode::kUnavailable},
    KnownError{394, "QUERY_WAS_CANCELLED", StatusCode::kUnavailable},
    KnownError{395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO", StatusCode::kInvalidArgument},
    KnownError{425, "SYSTEM_ERROR", StatusCode::kUnavailable},
    KnownError{473, "DEADLOCK_AVOIDED", StatusCode::kUnavailable},
    KnownError{497, "ACCESS_DENIED", StatusCode::kPermissionDenied},
    KnownError{516, "AUTHENTICATION_FAILED", StatusCode::kUnauthenticated},
    KnownError{1000, "POCO_EXCEPTION", StatusCode::kUnavailable},
};

const KnownError* FindKnown(int code) {
  for (const KnownError& e : kKnownErrors) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

// Parses the decimal number at the start of `text`; -1 when there is none.
int LeadingNumber(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data() || value < 0) return -1;
  return value;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Cuts `s` at the first occurrence of `marker`, when present.
std::string_view CutAt(std::string_view s, std::string_view marker) {
  size_t pos = s.find(marker);
  return pos == std::string_view::npos ? s : s.substr(0, pos);
}

// ClickHouse's own message, without the "Code: N" frame (repeated when an exception was
// rethrown), the exception class, the version suffix and any stack trace.
std::string_view ExtractMessage(std::string_view body) {
  std::string_view msg = body;
  if (size_t pos = msg.find("e.displayText() = "); pos != std::string_view::npos) {
    msg = CutAt(msg.substr(pos + 18), ", e.what() = ");  // 18.16
  }
  for (;;) {
    msg = Trim(msg);
    if (msg.starts_with("DB::Exception: ")) {
      msg.remove_prefix(15);
    } else if (msg.starts_with("Code: ")) {
      size_t sep = msg.find_first_of(".,");
      msg = sep == std::string_view::npos ? std::string_view() : msg.substr(sep + 1);
    } else {
      break;
    }
  }
  msg = CutAt(msg, "Stack trace");
  msg = CutAt(msg, " (version ");
  return Trim(msg);
}

}  // namespace

StatusCode StatusCodeForClickHouseError(int clickhouse_code) {
  const KnownError* known = FindKnown(clickhouse_code);
  return known ? known->status : StatusCode::kInternal;
}

std::string_view ClickHouseErrorName(int clickhouse_code) {
  const KnownError* known = FindKnown(clickhouse_code);
  return known ? known->name : std::string_view();
}

Status ErrorFromResponse(long http_status, std::string_view body,
                         std::string_view exception_code_header) {
  int code = LeadingNumber(Trim(exception_code_header));
  if (size_t pos = body.find("Code: "); pos != std::string_view::npos && code < 0) {
    code = LeadingNumber(body.substr(pos + 6));
  }
  if (code < 0) {
    std::string msg = "ClickHouse answered HTTP " + std::to_string(http_status);
    if (!Trim(body).empty()) msg += ": " + SanitizeForMessage(Trim(body), kMaxMessage);
    if (http_status >= 500) return Status::Unavailable(std::move(msg));
    if (http_status == 401) return Status::Unauthenticated(std::move(msg));
    if (http_status == 403) return Status::PermissionDenied(std::move(msg));
    return Status::Internal(std::move(msg));
  }
  std::string text(ExtractMessage(body));
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::string msg(kMarker);
  msg += std::to_string(code);
  if (std::string_view name = ClickHouseErrorName(code); !name.empty()) {
    msg += " (";
    msg += name;
    msg += ")";
  }
  msg += ": ";
  msg += SanitizeForMessage(text, kMaxMessage);
  return Status(StatusCodeForClickHouseError(code), std::move(msg));
}

int ClickHouseErrorCode(const Status& status) {
  if (status.ok()) return 0;
  std::string_view msg = status.message();
  size_t pos = msg.find(kMarker);
  if (pos == std::string_view::npos) return 0;
  int code = LeadingNumber(msg.substr(pos + kMarker.size()));
  return code < 0 ? 0 : code;
}

}  // namespace splitstream::clickhouse
