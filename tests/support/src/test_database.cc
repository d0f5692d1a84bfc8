#include "splitstream/testing/test_database.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

#include "splitstream/experiments/migrations.h"
#include "splitstream/pg/pg.h"

namespace splitstream::testing {

std::string BaseDsn() {
  const char* dsn = std::getenv("SPLITSTREAM_PG_DSN");
  return dsn ? dsn : "";
}

namespace {

Result<std::unique_ptr<TestDatabase>> MakeDatabase(
    bool migrate, std::unique_ptr<TestDatabase> (*wrap)(std::string, std::string)) {
  std::string base = BaseDsn();
  if (base.empty()) {
    return Status::FailedPrecondition(
        "SPLITSTREAM_PG_DSN is not set: run the tests through scripts/test, or "
        "eval \"$(scripts/stack env)\" first");
  }
  static std::atomic<int> counter{0};
  std::random_device rd;
  std::string name = "splitstream_test_" + std::to_string(getpid()) + "_" +
                     std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
  SPLITSTREAM_ASSIGN_OR_RETURN(auto admin, pg::Connection::Open(base));
  SPLITSTREAM_RETURN_IF_ERROR(admin->ExecScript("CREATE DATABASE " + name));
  // In a libpq conninfo string a repeated keyword takes its last value.
  std::string dsn = base + " dbname=" + name;
  auto db = wrap(name, dsn);
  if (migrate) {
    SPLITSTREAM_ASSIGN_OR_RETURN(auto conn, pg::Connection::Open(dsn));
    auto report = experiments::Migrate(*conn);
    if (!report.ok()) return report.status().WithContext("migrating " + name);
  }
  return db;
}

}  // namespace

Result<std::unique_ptr<TestDatabase>> TestDatabase::Create() {
  return MakeDatabase(true, [](std::string n, std::string d) {
    return std::unique_ptr<TestDatabase>(new TestDatabase(std::move(n), std::move(d)));
  });
}

Result<std::unique_ptr<TestDatabase>> TestDatabase::CreateEmpty() {
  return MakeDatabase(false, [](std::string n, std::string d) {
    return std::unique_ptr<TestDatabase>(new TestDatabase(std::move(n), std::move(d)));
  });
}

TestDatabase::~TestDatabase() {
  auto admin = pg::Connection::Open(BaseDsn());
  if (!admin.ok()) return;
  // Logical slots keep a database alive: end their walsenders and drop them first.
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto slots = (*admin)->Exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 "
        "AND active_pid IS NOT NULL",
        {name_});
    auto dropped = (*admin)->Exec(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 "
        "AND NOT active",
        {name_});
    auto left = (*admin)->Exec("SELECT 1 FROM pg_replication_slots WHERE database = $1", {name_});
    if (left.ok() && left->empty()) break;
    usleep(100000);
  }
  (void)(*admin)->ExecScript("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

}  // namespace splitstream::testing
