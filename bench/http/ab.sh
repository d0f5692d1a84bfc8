#!/usr/bin/env bash
# A/B of two `splitstream` binaries on the HTTP benchmark: for each of ROUNDS rounds, each
# binary (order alternating) migrates a fresh database of the running stack, serves it, and
# bench/http/run.sh measures it; prints one line per run (new-user and returning-user
# assign requests/s and p99, CPU µs per request of wrk / the server / PostgreSQL, idle %).
# Needs a stack (`eval "$(scripts/stack env --dir DIR)"`) and DIR for PostgreSQL's PID:
#   bench/http/ab.sh STACK_DIR BINARY_A BINARY_B [ROUNDS]
# Run it on a quiet machine (e.g. under `flock -o -x /tmp/splitstream-cpu.lock`): compare
# the pairs, not runs far apart. run.sh's environment applies (ASSIGN_RUNS=1: one new-user
# window a run instead of three).
set -uo pipefail
shopt -s extglob
if [[ $# -lt 3 ]]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
stack_dir=$1
declare -A binary=([A]=$2 [B]=$3)
rounds=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
: "${SPLITSTREAM_PG_DSN:?run eval \"\$(scripts/stack env --dir $stack_dir)\" first}"
base_dsn=$SPLITSTREAM_PG_DSN
export SPLITSTREAM_ADMIN_TOKEN=ab-admin-$RANDOM SPLITSTREAM_CLIENT_TOKEN=ab-client-$RANDOM
postmaster=$(head -1 "$stack_dir/postgres/data/postmaster.pid")
for r in $(seq 1 "$rounds"); do
  if ((r % 2)); then order="A B"; else order="B A"; fi
  for v in $order; do
    db=http_ab_${r}_${v,,}_$$
    psql "$base_dsn" -qc "CREATE DATABASE $db" >/dev/null
    export SPLITSTREAM_PG_DSN="${base_dsn/dbname=+([^ ])/dbname=$db}"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export SPLITSTREAM_HTTP_ADDR=127.0.0.1:$port
    # PostgreSQL only (a stack without ClickHouse); builds older than `migrate --only` do both.
    "${binary[$v]}" migrate --only postgres >/dev/null 2>&1 ||
      "${binary[$v]}" migrate >/dev/null 2>&1
    "${binary[$v]}" serve 2>/dev/null &
    pid=$!
    for _ in $(seq 1 100); do
      curl -fsS "http://$SPLITSTREAM_HTTP_ADDR/readyz" >/dev/null 2>&1 && break
      sleep 0.2
    done
    out=$(SERVE_PID=$pid PG_POSTMASTER_PID=$postmaster "$here/run.sh" \
      "http://$SPLITSTREAM_HTTP_ADDR" "$SPLITSTREAM_ADMIN_TOKEN" "$SPLITSTREAM_CLIENT_TOKEN" \
      "$SPLITSTREAM_PG_DSN" 2>/dev/null)
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    get() { grep "^$1=" <<<"$out" | cut -d= -f2; }
    echo "round $r $v: load $(cut -d' ' -f1 /proc/loadavg)" \
      "assign $(get assign_rps) req/s p99 $(get assign_p99_ms) ms" \
      "cpu us wrk/serve/pg $(get assign_cpu_us_wrk)/$(get assign_cpu_us_serve)/$(get assign_cpu_us_postgres)" \
      "idle $(get assign_idle_pct) %; returning $(get returning_assign_rps) req/s p99 $(get returning_assign_p99_ms) ms"
    psql "$base_dsn" -qc "DROP DATABASE $db" >/dev/null 2>&1
  done
done
