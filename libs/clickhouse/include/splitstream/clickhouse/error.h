// ClickHouse errors as Status values. Pure functions, thread-safe.
//
// ClickHouse answers a failed HTTP request with a non-200 status and a text body:
//   18.16:   "Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist, e.what() =
//   DB::Exception" current: "Code: 60. DB::Exception: Table x.y does not exist. (UNKNOWN_TABLE)
//   (version 24.3.1.1)"
// (current releases also send the code in the X-ClickHouse-Exception-Code header).
// The Status message is "ClickHouse error <code> (<NAME>): <ClickHouse's message>", with
// control characters replaced and the length bounded; it never holds credentials because
// ClickHouse's messages do not echo them and the client never adds the URL's userinfo.
#pragma once

#include <string_view>

#include "splitstream/core/status.h"

namespace splitstream::clickhouse {

// Well-known ClickHouse error codes (ErrorCodes.cpp; stable across releases).
inline constexpr int kUnknownTable = 60;
inline constexpr int kUnknownDatabase = 81;
inline constexpr int kSyntaxError = 62;
inline constexpr int kTableAlreadyExists = 57;
inline constexpr int kDatabaseAlreadyExists = 82;
inline constexpr int kUnknownIdentifier = 47;
inline constexpr int kNoSuchColumnInTable = 16;
inline constexpr int kTimeoutExceeded = 159;
inline constexpr int kTooManySimultaneousQueries = 202;
inline constexpr int kMemoryLimitExceeded = 241;
inline constexpr int kTooManyParts = 252;

// The StatusCode for a ClickHouse error code: unknown table/database/column → NotFound;
// syntax, type, parse, argument and unknown-setting errors → InvalidArgument; exists →
// AlreadyExists; authentication → Unauthenticated; readonly/access → PermissionDenied;
// resource limits, timeouts, too many parts, network and replica errors → Unavailable
// (retrying later may succeed); anything else → Internal.
StatusCode StatusCodeForClickHouseError(int clickhouse_code);

// The symbolic name of a code ("UNKNOWN_TABLE"), or "" when this library does not know it.
std::string_view ClickHouseErrorName(int clickhouse_code);

// Builds the Status for an HTTP response that was not 200. `exception_code_header` is the
// X-ClickHouse-Exception-Code header value ("" when absent). A body without a ClickHouse
// error becomes Unavailable for 5xx (a proxy or a server going down), Unauthenticated for
// 401, PermissionDenied for 403 and Internal otherwise.
Status ErrorFromResponse(long http_status, std::string_view body,
                         std::string_view exception_code_header = {});

// The ClickHouse error code a Status from this library carries, 0 when it carries none
// (success, transport errors, statuses from elsewhere). Survives Status::WithContext.
int ClickHouseErrorCode(const Status& status);

}  // namespace splitstream::clickhouse
