#include "splitstream/experiments/migrations.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include "splitstream/pg/pg.h"
#include "sql_util.h"

namespace splitstream::experiments {

namespace {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Append-only: a released migration never changes; new schema goes into a new version.
constexpr Migration kMigrations[] = {
    {1, "experiments_and_variants", R"sql(
CREATE TABLE experiments (
  id                 bigserial PRIMARY KEY,
  key                text NOT NULL UNIQUE,
  name               text NOT NULL,
  description        text NOT NULL DEFAULT '',
  status             text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'running', 'stopped')),
  traffic            double precision NOT NULL DEFAULT 1 CHECK (traffic >= 0 AND traffic <= 1),
  layer              text NULL,
  layer_start        double precision NOT NULL DEFAULT 0,
  layer_end          double precision NOT NULL DEFAULT 1,
  seed               text NOT NULL,
  hash_version       integer NOT NULL DEFAULT 2 CHECK (hash_version IN (1, 2)),
  metrics            jsonb NOT NULL DEFAULT '[]',
  -- Bumped by every allocation change (traffic, weights): while it is 1 a user outside the
  -- allocation cannot have a stored assignment, so assignment needs no lookup for them.
  allocation_version integer NOT NULL DEFAULT 1,
  created_at         timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz NULL,
  stopped_at         timestamptz NULL,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (0 <= layer_start AND layer_start < layer_end AND layer_end <= 1)
);
CREATE INDEX experiments_layer_idx ON experiments (layer) WHERE layer IS NOT NULL;

CREATE TABLE variants (
  id            bigserial PRIMARY KEY,
  experiment_id bigint NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  key           text NOT NULL,
  weight        double precision NOT NULL CHECK (weight > 0),
  position      integer NOT NULL,
  UNIQUE (experiment_id, key),
  UNIQUE (experiment_id, position)
);
)sql"},
    {2, "assignments", R"sql(
CREATE TABLE assignments (
  experiment_id bigint NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
  user_id       text NOT NULL,
  variant_id    bigint NOT NULL REFERENCES variants (id),
  assigned_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (experiment_id, user_id)
);
)sql"},
    // No foreign key from events to assignments: the insert already joins assignments to
    // take the variant (an event without an assignment is rejected before it is written),
    // and the measured cost of the extra per-row check is in the README.
    {3, "events", R"sql(
CREATE TABLE events (
  event_id      uuid NOT NULL,
  experiment_id bigint NOT NULL REFERENCES experiments (id),
  variant_id    bigint NOT NULL REFERENCES variants (id),
  user_id       text NOT NULL,
  event_type    text NOT NULL,
  value         double precision NULL,
  properties    jsonb NOT NULL DEFAULT '{}',
  ts            timestamptz NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX events_properties_gin ON events USING gin (properties);
CREATE INDEX events_ts_brin ON events USING brin (ts);
)sql"},
    {4, "notify_experiment_changes", R"sql(
CREATE FUNCTION splitstream_notify_experiments() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- One notification per statement; PostgreSQL folds identical ones within a transaction.
  PERFORM pg_notify('splitstream_experiments', TG_TABLE_NAME);
  RETURN NULL;
END
$$;
CREATE TRIGGER experiments_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON experiments
  FOR EACH STATEMENT EXECUTE FUNCTION splitstream_notify_experiments();
CREATE TRIGGER variants_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON variants
  FOR EACH STATEMENT EXECUTE FUNCTION splitstream_notify_experiments();
)sql"},
    // Experiments are updated (start, stop) while their description and metrics may be
    // large enough to be TOASTed: with the full old row in the WAL, CDC carries those
    // unchanged values instead of Debezium's "__debezium_unavailable_value" placeholder.
    {5, "experiments_replica_identity_full", R"sql(
ALTER TABLE experiments REPLICA IDENTITY FULL;
)sql"},
    // An assignment's or event's variant must be one of its own experiment's variants (the
    // single-column keys let a row name another experiment's variant), and one key checked per
    // row instead of two: each check is a query PostgreSQL runs per inserted row, about a third
    // of its CPU per new assignment (libs/experiments/README.md). The experiment follows from
    // the variant (variants.experiment_id references experiments); deleting an experiment
    // still deletes its assignments (through its variants) and is still refused while it has
    // events.
    {6, "variant_of_its_experiment", R"sql(
ALTER TABLE variants ADD CONSTRAINT variants_experiment_id_id_key UNIQUE (experiment_id, id);
ALTER TABLE assignments
  DROP CONSTRAINT assignments_experiment_id_fkey,
  DROP CONSTRAINT assignments_variant_id_fkey,
  ADD CONSTRAINT assignments_variant_fkey FOREIGN KEY (experiment_id, variant_id)
    REFERENCES variants (experiment_id, id) ON DELETE CASCADE;
ALTER TABLE events
  DROP CONSTRAINT events_experiment_id_fkey,
  DROP CONSTRAINT events_variant_id_fkey,
  ADD CONSTRAINT events_variant_fkey FOREIGN KEY (experiment_id, variant_id)
    REFERENCES variants (experiment_id, id);
)sql"},
    // User ids are opaque identifiers: compared byte by byte (COLLATE "C") rather than through
    // the database's locale (strcoll under C.UTF-8, say). The primary key's comparisons are
    // part of every new assignment's cost: pgbench, 32-row batches into 500 000 rows, +7 %
    // rows/s (libs/experiments/README.md). In UTF-8, byte order is code-point order, so no
    // ordering changes. The type stays text: the rows are kept, the primary key is rebuilt.
    {7, "assignments_user_id_bytewise", R"sql(
ALTER TABLE assignments ALTER COLUMN user_id TYPE text COLLATE "C";
)sql"},
};

// Advisory lock keys (pg_advisory_xact_lock(bigint)): "splitstream" migrations / partitions.
constexpr std::string_view kMigrationLock = "SELECT pg_advisory_xact_lock(7311104201)";
constexpr std::string_view kPartitionLock = "SELECT pg_advisory_xact_lock(7311104202)";

}  // namespace

Result<MigrationReport> Migrate(pg::Connection& conn) {
  MigrationReport report;
  Status st = pg::InTransaction(conn, [&]() -> Status {
    SPLITSTREAM_ASSIGN_OR_RETURN(auto lock, conn.Exec(kMigrationLock));
    (void)lock;
    // Under the lock, so checking first cannot race (and IF NOT EXISTS would only NOTICE).
    SPLITSTREAM_ASSIGN_OR_RETURN(auto exists,
                                 conn.Exec("SELECT to_regclass('schema_migrations') IS NOT NULL"));
    if (exists.text(0, 0) == "t") return Status::Ok();
    return conn.ExecScript(R"sql(
CREATE TABLE schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))sql");
  });
  if (!st.ok()) return st.WithContext("migrate: schema_migrations");

  for (const Migration& m : kMigrations) {
    bool applied_now = false;
    st = pg::InTransaction(conn, [&]() -> Status {
      // Under the lock, a concurrent migrator has either committed this version or not
      // started it: the check below cannot race.
      SPLITSTREAM_ASSIGN_OR_RETURN(auto lock, conn.Exec(kMigrationLock));
      (void)lock;
      SPLITSTREAM_ASSIGN_OR_RETURN(auto done,
                                   conn.Exec("SELECT 1 FROM schema_migrations WHERE version = $1",
                                             {std::to_string(m.version)}));
      if (!done.empty()) return Status::Ok();
      SPLITSTREAM_RETURN_IF_ERROR(conn.ExecScript(m.sql));
      SPLITSTREAM_ASSIGN_OR_RETURN(
          auto record, conn.Exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                 {std::to_string(m.version), std::string(m.name)}));
      (void)record;
      applied_now = true;
      return Status::Ok();
    });
    if (!st.ok()) return st.WithContext(fmt::format("migration {} ({})", m.version, m.name));
    if (applied_now) report.applied.emplace_back(m.name);
  }

  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto version, conn.Exec("SELECT coalesce(max(version), 0) FROM schema_migrations"));
  SPLITSTREAM_ASSIGN_OR_RETURN(int64_t version_number, internal::ParseInt64(version.text(0, 0)));
  report.current_version = static_cast<int>(version_number);

  SPLITSTREAM_ASSIGN_OR_RETURN(auto created, EnsureEventPartitions(conn, 1, 3));
  (void)created;
  return report;
}

Result<std::vector<std::string>> EnsureEventPartitions(pg::Connection& conn, int months_back,
                                                       int months_ahead) {
  if (months_back < 0 || months_ahead < 0 || months_back > 1200 || months_ahead > 1200) {
    return Status::InvalidArgument("months_back and months_ahead must be in [0, 1200]");
  }
  std::vector<std::string> created;
  Status st = pg::InTransaction(conn, [&]() -> Status {
    SPLITSTREAM_ASSIGN_OR_RETURN(auto lock, conn.Exec(kPartitionLock));
    (void)lock;
    // Month boundaries are in UTC whatever the session's TimeZone is. Names and bounds are
    // computed by PostgreSQL from integers, never from user input.
    SPLITSTREAM_ASSIGN_OR_RETURN(
        auto months, conn.Exec(R"sql(
SELECT 'events_' || to_char(m, 'YYYY_MM'),
       to_char(m, 'YYYY-MM-DD'),
       to_char(m + interval '1 month', 'YYYY-MM-DD'),
       to_regclass('events_' || to_char(m, 'YYYY_MM')) IS NOT NULL
FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => $1),
                     date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => $2),
                     interval '1 month') AS m)sql",
                               {std::to_string(months_back), std::to_string(months_ahead)}));
    for (size_t i = 0; i < months.size(); ++i) {
      if (months.text(i, 3) == "t") continue;
      std::string name(months.text(i, 0));
      SPLITSTREAM_RETURN_IF_ERROR(conn.ExecScript(
          fmt::format("CREATE TABLE {} PARTITION OF events FOR VALUES FROM ('{} 00:00:00+00') TO "
                      "('{} 00:00:00+00')",
                      name, months.text(i, 1), months.text(i, 2))));
      created.push_back(std::move(name));
    }
    return Status::Ok();
  });
  if (!st.ok()) return st.WithContext("ensure event partitions");
  return created;
}

Result<std::vector<std::string>> DropEventPartitionsOlderThan(pg::Connection& conn,
                                                              int retention_months) {
  if (retention_months < 0 || retention_months > 1200) {
    return Status::InvalidArgument("retention_months must be in [0, 1200]");
  }
  std::vector<std::string> dropped;
  Status st = pg::InTransaction(conn, [&]() -> Status {
    SPLITSTREAM_ASSIGN_OR_RETURN(auto lock, conn.Exec(kPartitionLock));
    (void)lock;
    // Only partitions named by EnsureEventPartitions; events_YYYY_MM covers that month, so
    // it ends before the cutoff month starts exactly when its name sorts before the cutoff's.
    SPLITSTREAM_ASSIGN_OR_RETURN(auto old, conn.Exec(R"sql(
SELECT c.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass
  AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
  AND c.relname < 'events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')
                                       - make_interval(months => $1), 'YYYY_MM')
ORDER BY c.relname)sql",
                                                     {std::to_string(retention_months)}));
    for (size_t i = 0; i < old.size(); ++i) {
      std::string name(old.text(i, 0));
      SPLITSTREAM_RETURN_IF_ERROR(conn.ExecScript("DROP TABLE " + name));
      dropped.push_back(std::move(name));
    }
    return Status::Ok();
  });
  if (!st.ok()) return st.WithContext("drop event partitions");
  return dropped;
}

}  // namespace splitstream::experiments
