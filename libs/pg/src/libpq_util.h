// Helpers shared by the libpq adapters of this library (private).
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>

#include "splitstream/core/status.h"

namespace splitstream::pg::internal {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Maps a SQLSTATE class to a status code: connection trouble is retryable (Unavailable),
// data and constraint errors are the caller's (InvalidArgument / Conflict), the rest Internal.
StatusCode CodeForSqlState(std::string_view state);

// OK when `res` has status ok1 or ok2; otherwise PostgreSQL's primary message, detail and
// SQLSTATE (also stored in *sqlstate when given) as a Status. A null `res` or a broken
// connection is Unavailable.
Status CheckResult(PGconn* conn, PGresult* res, ExecStatusType ok1, ExecStatusType ok2,
                   std::string* sqlstate = nullptr);

}  // namespace splitstream::pg::internal
