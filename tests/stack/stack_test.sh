#!/usr/bin/env bash
# Integration test of scripts/stack: a throwaway stack on free ports in a temporary directory.
# Checks that every server answers (PostgreSQL with wal_level=logical and the splitstream
# database, ClickHouse over HTTP and native TCP, Kafka by producing and consuming a message on
# an auto-created topic), that a second `up` leaves the running servers alone, that `down`
# stops exactly the recorded processes, and that `up --only postgres` starts that one alone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK=$ROOT/scripts/stack
dir=$(mktemp -d "${TMPDIR:-/tmp}/splitstream-stack-test.XXXXXX")

cleanup() {
  "$STACK" down --purge --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  "$STACK" status --dir "$dir" >&2 || true
  exit 1
}
step() { echo "--- $*"; }

# True while process $1 exists and has not exited (a zombie awaiting its parent has exited).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != [ZX] ]]
}

# Prints "name pid" for every running server, from `status`.
pids_of() {
  "$STACK" status --dir "$dir" | sed -n 's/^\([a-z]*\) *running (pid \([0-9]*\),.*/\1 \2/p'
}

step "up --free-ports --dir $dir"
start=$(date +%s)
"$STACK" up --free-ports --dir "$dir" || fail "up failed"
echo "up took $(($(date +%s) - start)) s"
"$STACK" status --dir "$dir" || fail "status after up exited $?"

eval "$("$STACK" env --dir "$dir")"
for v in SPLITSTREAM_PG_DSN SPLITSTREAM_PG_PORT SPLITSTREAM_CLICKHOUSE_URL SPLITSTREAM_CH_HTTP_PORT \
  SPLITSTREAM_CH_TCP_PORT SPLITSTREAM_KAFKA_BROKERS SPLITSTREAM_KAFKA_PORT; do
  [[ -n ${!v:-} ]] || fail "env does not set $v"
done

step "PostgreSQL"
[[ $(psql "$SPLITSTREAM_PG_DSN" -X -tAc 'select 1') == 1 ]] || fail "psql select 1"
[[ $(psql "$SPLITSTREAM_PG_DSN" -X -tAc 'show wal_level') == logical ]] || fail "wal_level is not logical"
[[ $(psql "$SPLITSTREAM_PG_DSN" -X -tAc 'select current_database()') == splitstream ]] ||
  fail "not connected to the splitstream database"

step "ClickHouse"
[[ $(curl -fsS "$SPLITSTREAM_CLICKHOUSE_URL/ping") == "Ok." ]] || fail "ClickHouse /ping"
[[ $(curl -fsS --data-binary 'SELECT 1' "$SPLITSTREAM_CLICKHOUSE_URL/") == 1 ]] || fail "ClickHouse HTTP SELECT 1"
if command -v clickhouse-client >/dev/null; then
  [[ $(clickhouse-client --host 127.0.0.1 --port "$SPLITSTREAM_CH_TCP_PORT" -q 'SELECT 1') == 1 ]] ||
    fail "ClickHouse native SELECT 1"
fi

step "Kafka"
topic=stack_test_$RANDOM$RANDOM
msg="hello from stack_test $$"
printf '%s\n' "$msg" | timeout 60 kcat -P -b "$SPLITSTREAM_KAFKA_BROKERS" -t "$topic" ||
  fail "kcat could not produce to $topic"
got=$(timeout 60 kcat -C -b "$SPLITSTREAM_KAFKA_BROKERS" -t "$topic" -o beginning -c 1 -e -q) ||
  fail "kcat could not consume from $topic"
[[ $got == "$msg" ]] || fail "consumed '$got', expected '$msg'"

step "up again is idempotent"
before=$(pids_of)
[[ $(wc -l <<<"$before") == 3 ]] || fail "expected 3 running servers, got: $before"
"$STACK" up --free-ports --dir "$dir" || fail "second up failed"
after=$(pids_of)
[[ $before == "$after" ]] || fail "PIDs changed: before '$before', after '$after'"

step "down"
"$STACK" down --dir "$dir" || fail "down failed"
while read -r name pid; do
  if alive "$pid"; then
    fail "$name (pid $pid) still runs after down"
  fi
done <<<"$before"
rc=0
"$STACK" status --dir "$dir" || rc=$?
[[ $rc == 3 ]] || fail "status after down exited $rc, expected 3"

step "up --only postgres starts PostgreSQL alone"
"$STACK" up --free-ports --only postgres --dir "$dir" || fail "up --only postgres failed"
running=$(pids_of | cut -d' ' -f1 || true)  # status exits 3: not all servers run
[[ $running == postgres ]] || fail "expected postgres alone to run, got: $running"
eval "$("$STACK" env --dir "$dir")"
[[ $(psql "$SPLITSTREAM_PG_DSN" -X -tAc 'select 1') == 1 ]] || fail "psql select 1 after --only"
if out=$("$STACK" up --only mysql --dir "$dir" 2>&1); then fail "up --only mysql succeeded"; fi
[[ $out == *"--only takes postgres, clickhouse or kafka, not 'mysql'"* ]] ||
  fail "unexpected message for --only mysql: $out"
"$STACK" down --dir "$dir" || fail "down after --only failed"
running=$(pids_of || true)
[[ -z $running ]] || fail "servers still run after down: $running"

echo "PASS: stack_test"
