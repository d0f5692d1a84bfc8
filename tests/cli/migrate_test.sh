#!/usr/bin/env bash
# `splitstream migrate --only postgres|clickhouse` against the stack's real servers: each side
# is migrated alone, the other side's server is never contacted (it points at a port where
# nothing listens), and without --only an unreachable ClickHouse fails the command, naming
# ClickHouse and the way to leave it out.
#   tests/cli/migrate_test.sh PATH/TO/splitstream   (SPLITSTREAM_PG_DSN and
#   SPLITSTREAM_CLICKHOUSE_URL from `scripts/stack env`)
set -uo pipefail
bin=${1:?usage: migrate_test.sh PATH/TO/splitstream}
: "${SPLITSTREAM_PG_DSN:?SPLITSTREAM_PG_DSN is not set (run under scripts/test)}"
: "${SPLITSTREAM_CLICKHOUSE_URL:?SPLITSTREAM_CLICKHOUSE_URL is not set (run under scripts/test)}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
base_dsn=$SPLITSTREAM_PG_DSN
ch_url=$SPLITSTREAM_CLICKHOUSE_URL
nowhere_pg='host=127.0.0.1 port=1 dbname=none user=none connect_timeout=1'
nowhere_ch='http://127.0.0.1:1'
name=migrate_test_$$
db_dsn=$(sed -E "s/dbname=[^ ]+/dbname=$name/" <<<"$base_dsn")
failed=0
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}
ch() { curl -sS "$ch_url/" --data-binary "$1"; }
cleanup() {
  psql "$base_dsn" -Xqc "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1
  ch "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1
}
trap cleanup EXIT
psql "$base_dsn" -Xqc "CREATE DATABASE $name" >/dev/null || exit 1

# PostgreSQL alone, with no ClickHouse anywhere.
if ! out=$(SPLITSTREAM_PG_DSN=$db_dsn SPLITSTREAM_CLICKHOUSE_URL=$nowhere_ch \
  timeout 60 "$bin" migrate --only postgres 2>&1); then
  fail "migrate --only postgres: $out"
fi
tables=$(psql "$db_dsn" -XAtc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
  AND tablename IN ('experiments', 'variants', 'assignments', 'events', 'schema_migrations')")
[[ $tables == 5 ]] || fail "after migrate --only postgres: $tables of the 5 tables"

# Both sides (the default) with ClickHouse unreachable: refused, naming ClickHouse.
if out=$(SPLITSTREAM_PG_DSN=$db_dsn SPLITSTREAM_CLICKHOUSE_URL=$nowhere_ch \
  timeout 60 "$bin" migrate 2>&1); then
  fail "migrate with no ClickHouse succeeded"
elif [[ $out != *"ClickHouse"*"--only postgres"* ]]; then
  fail "migrate with no ClickHouse: the error does not name ClickHouse and --only: $out"
fi

# ClickHouse alone, with no PostgreSQL anywhere.
if ! out=$(SPLITSTREAM_PG_DSN=$nowhere_pg SPLITSTREAM_CLICKHOUSE_DATABASE=$name \
  timeout 60 "$bin" migrate --only clickhouse 2>&1); then
  fail "migrate --only clickhouse: $out"
fi
[[ $(ch "EXISTS TABLE $name.assignments") == 1 ]] ||
  fail "after migrate --only clickhouse: no table $name.assignments"

# A side that is not one of the two is refused before anything starts.
if out=$(timeout 20 "$bin" migrate --only kafka 2>&1) || [[ $out != *"--only"* ]]; then
  fail "migrate --only kafka was not refused by name: $out"
fi

if ((failed)); then
  echo "migrate_test: $failed check(s) failed"
  exit 1
fi
echo "migrate_test: all checks passed"
