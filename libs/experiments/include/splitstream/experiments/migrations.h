// PostgreSQL schema of the product (design.md section 4) as versioned migrations, applied
// idempotently and recorded in `schema_migrations`, and the maintenance of the monthly
// partitions of `events`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/core/status.h"

namespace splitstream::pg {
class Connection;
}

namespace splitstream::experiments {

struct MigrationReport {
  std::vector<std::string> applied;  // names of migrations applied by this call
  int current_version = 0;
};

// Applies every migration not yet recorded, each in its own transaction, under an advisory
// lock so that concurrent callers do not race. Safe to run any number of times.
Result<MigrationReport> Migrate(pg::Connection& conn);

// Creates the monthly partitions of `events` from `months_back` months before the current
// month to `months_ahead` months after it, when missing. Returns the names created.
Result<std::vector<std::string>> EnsureEventPartitions(pg::Connection& conn, int months_back,
                                                       int months_ahead);

// Drops partitions of `events` whose whole range ends before the first day of the month
// `retention_months` months before the current month. Returns the names dropped.
Result<std::vector<std::string>> DropEventPartitionsOlderThan(pg::Connection& conn,
                                                              int retention_months);

}  // namespace splitstream::experiments
