// TestDatabase: a fresh, migrated PostgreSQL database for one test, dropped afterwards.
//
// Reads SPLITSTREAM_PG_DSN (printed by `scripts/stack env`); a test that needs it fails,
// never skips, when it is missing. Database names are unique per process and call, so
// tests may run in parallel.
#pragma once

#include <memory>
#include <string>

#include "splitstream/core/result.h"

namespace splitstream::testing {

// The value of SPLITSTREAM_PG_DSN, or "" when unset.
std::string BaseDsn();

class TestDatabase {
 public:
  // Creates the database and applies every migration (experiments::Migrate).
  static Result<std::unique_ptr<TestDatabase>> Create();
  // Creates the database without migrations.
  static Result<std::unique_ptr<TestDatabase>> CreateEmpty();
  ~TestDatabase();

  // conninfo of the new database (the base DSN with dbname replaced).
  const std::string& dsn() const { return dsn_; }
  const std::string& name() const { return name_; }

 private:
  TestDatabase(std::string name, std::string dsn) : name_(std::move(name)), dsn_(std::move(dsn)) {}
  std::string name_;
  std::string dsn_;
};

}  // namespace splitstream::testing
