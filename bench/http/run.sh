#!/usr/bin/env bash
# HTTP API benchmark against a running `splitstream serve`.
#
#   bench/http/run.sh URL ADMIN_TOKEN CLIENT_TOKEN [PG_DSN]
#
# 1. creates and starts a fresh experiment (bench-<time>, 50/50, all traffic);
# 1b. GET /healthz with the same wrk settings: the HTTP layer's own ceiling (healthz_rps);
# 2. POST /v1/assign with wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, a new user id
#    on every request (assign.lua), $ASSIGN_RUNS times: the medians, and each run;
#    2b. the same for returning (already stored) users;
# 3. POST /v1/events with $BATCH-event batches for users assigned in step 2 (events.lua),
#    wrk -t$THREADS -c$EVENT_CONNECTIONS -d$DURATION;
# 4. with PG_DSN: COPY of $COPY_ROWS rows of the same shape into the same `events` table
#    with psql \copy, timed in the same run, as the ceiling for step 3.
#
# Output: machine-readable key=value lines (assign_rps, assign_p50_ms, assign_p99_ms,
# assign_runs, events_rows_per_s, copy_rows_per_s, ...) on stdout; wrk's own report on
# stderr. Environment: DURATION (10s), THREADS (2), CONNECTIONS (64), EVENT_CONNECTIONS (8),
# BATCH (1000), COPY_ROWS (200000), ASSIGN_RUNS (3); SERVE_PID and PG_POSTMASTER_PID
# (optional, both or neither): where the CPU of step 2 goes (all its runs), in µs per
# request for wrk, the server and PostgreSQL (the postmaster and its children), and the
# machine's idle share (assign_cpu_us_wrk, assign_cpu_us_serve, assign_cpu_us_postgres,
# assign_idle_pct).
set -euo pipefail

if [[ $# -lt 3 ]]; then
  sed -n '2,23p' "$0" >&2
  exit 2
fi
URL=${1%/}
ADMIN_TOKEN=$2
CLIENT_TOKEN=$3
PG_DSN=${4:-}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
EVENT_CONNECTIONS=${EVENT_CONNECTIONS:-8}
BATCH=${BATCH:-1000}
COPY_ROWS=${COPY_ROWS:-200000}
ASSIGN_RUNS=${ASSIGN_RUNS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "bench/http: $tool is not installed" >&2; exit 1; }
done

api() {  # api METHOD PATH [BODY]: prints the body, fails on a non-2xx status
  local out status
  out=$(curl -sS -o "$WORK/body" -w '%{http_code}' -X "$1" "$URL$2" \
    -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data "$3"})
  status=$out
  if [[ $status != 2* ]]; then
    echo "bench/http: $1 $2 -> $status $(cat "$WORK/body")" >&2
    return 1
  fi
  cat "$WORK/body"
}

EXPERIMENT="bench-$(date +%s)-$$"
PREFIX="b$$-"
api POST /v1/experiments "{\"key\":\"$EXPERIMENT\",\"variants\":[{\"key\":\"control\",\"weight\":1},{\"key\":\"treatment\",\"weight\":1}],\"traffic\":1}" >/dev/null
api POST "/v1/experiments/$EXPERIMENT/start" >/dev/null
echo "experiment=$EXPERIMENT"

# 1b. the transport alone (no service call, no database): compare with field-notes' nginx.
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$URL/healthz" >"$WORK/healthz.out"
echo "healthz_rps=$(sed -n 's/^Requests\/sec: *//p' "$WORK/healthz.out")"

echo "assign_wrk=wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"

# CPU accounting (clock ticks): user + system time of a process, of the postmaster and its
# children (a backend started during the run counts from 0), and the machine's idle time.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
declare -A pg_start=()
pg_snapshot() {  # fills pg_start, or prints the ticks used since
  local total=0 p t
  for p in "$PG_POSTMASTER_PID" $(pgrep -P "$PG_POSTMASTER_PID"); do
    t=$(ticks "$p")
    if [[ ${1:-} == start ]]; then pg_start[$p]=$t; else total=$((total + t - ${pg_start[$p]:-0})); fi
  done
  [[ ${1:-} == start ]] || echo "$total"
}
machine() { awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
account=${SERVE_PID:+${PG_POSTMASTER_PID:+yes}}

# 2. assign, ASSIGN_RUNS times, each with users of its own (the first with PREFIX, which
#    steps 2b, 3 and 4 use): on a shared machine one window can be slowed by a neighbour,
#    so the figures are the medians of the runs, and every run is listed (assign_runs).
#    wrk's CPU: the subshell's waited-for children, fields cutime + cstime.
if [[ -n $account ]]; then
  serve0=$(ticks "$SERVE_PID")
  pg_snapshot start
  read -r idle0 all0 < <(machine)
fi
assigned_all=0
for ((run = 1; run <= ASSIGN_RUNS; run++)); do
  prefix=$PREFIX
  ((run == 1)) || prefix="${PREFIX}r$run-"
  (
    EXPERIMENT=$EXPERIMENT PREFIX=$prefix TOKEN=$CLIENT_TOKEN WRK_THREADS=$THREADS \
      wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/assign.lua" "$URL" \
      >"$WORK/assign.$run.out"
    awk '{print $16 + $17}' "/proc/$BASHPID/stat" >"$WORK/wrk.$run.ticks"
  )
  grep -v '=' "$WORK/assign.$run.out" >&2 || true
  n=$(sed -n 's/^assign_requests=//p' "$WORK/assign.$run.out")
  ((run == 1)) && assigned=$n
  assigned_all=$((assigned_all + n))
done
python3 - "$WORK" "$ASSIGN_RUNS" <<'PY'
import statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
values = []
for run in range(1, runs + 1):
    kv = dict(line.strip().split("=", 1) for line in open(f"{work}/assign.{run}.out") if "=" in line)
    values.append({k: float(kv[k]) for k in ("assign_rps", "assign_p50_ms", "assign_p99_ms")})
for key in ("assign_rps", "assign_p50_ms", "assign_p99_ms"):
    print(f"{key}={statistics.median(v[key] for v in values):.3f}")
print("assign_runs=" + " ".join(f"{v['assign_rps']:.0f}/{v['assign_p99_ms']:.2f}" for v in values))
PY
wrk_ticks=$(cat "$WORK"/wrk.*.ticks | awk '{t += $1} END {print t}')
if [[ -n $account ]]; then
  serve_ticks=$(($(ticks "$SERVE_PID") - serve0))
  pg_ticks=$(pg_snapshot)
  read -r idle1 all1 < <(machine)
  python3 - "$assigned_all" "$(getconf CLK_TCK)" "$wrk_ticks" "$serve_ticks" \
    "$pg_ticks" "$((idle1 - idle0))" "$((all1 - all0))" <<'PY'
import sys
n, hz, wrk, serve, pg, idle, total = (int(a) for a in sys.argv[1:])
us = lambda ticks: ticks / hz * 1e6 / max(n, 1)
print(f"assign_cpu_us_wrk={us(wrk):.1f}")
print(f"assign_cpu_us_serve={us(serve):.1f}")
print(f"assign_cpu_us_postgres={us(pg):.1f}")
print(f"assign_idle_pct={100 * idle / max(total, 1):.0f}")
PY
fi

# 2b. returning users: the same assign calls for users stored in step 2 (a page view of a
#     known user), the common case in production.
RETURNING=$(( assigned < 20000 ? assigned : 20000 ))
EXPERIMENT=$EXPERIMENT PREFIX=$PREFIX TOKEN=$CLIENT_TOKEN WRK_THREADS=$THREADS RETURNING=$RETURNING \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/assign.lua" "$URL" \
  >"$WORK/returning.out"
grep -v '=' "$WORK/returning.out" >&2 || true
grep '=' "$WORK/returning.out"

# 3. events, for users OFFSET..OFFSET+USERS-1, which every wrk thread assigned early on.
USERS=1000
OFFSET=64
if (( assigned < (USERS + OFFSET) * 2 )); then
  echo "bench/http: only $assigned assignments; not enough users for the events run" >&2
  exit 1
fi
echo "events_wrk=wrk -t$THREADS -c$EVENT_CONNECTIONS -d$DURATION --latency batch=$BATCH"
EXPERIMENT=$EXPERIMENT PREFIX=$PREFIX TOKEN=$CLIENT_TOKEN BATCH=$BATCH USERS=$USERS OFFSET=$OFFSET \
  wrk -t"$THREADS" -c"$EVENT_CONNECTIONS" -d"$DURATION" --latency -s "$HERE/events.lua" "$URL" \
  >"$WORK/events.out"
grep -v '=' "$WORK/events.out" >&2 || true
grep '=' "$WORK/events.out"
events_rps=$(sed -n 's/^events_rows_per_s=//p' "$WORK/events.out")

# 4. COPY ceiling: the same columns the service writes, for the same experiment and users.
if [[ -z $PG_DSN ]]; then
  echo "copy_rows_per_s=skipped"
  exit 0
fi
command -v psql >/dev/null || { echo "bench/http: psql is not installed" >&2; exit 1; }
ids=$(psql "$PG_DSN" -XAtq -F ' ' -c "SELECT e.id, min(v.id), max(v.id) FROM experiments e
  JOIN variants v ON v.experiment_id = e.id WHERE e.key = '$EXPERIMENT' GROUP BY e.id")
read -r exp_id v1 v2 <<<"$ids"
python3 - "$COPY_ROWS" "$exp_id" "$v1" "$v2" "$PREFIX" >"$WORK/rows.tsv" <<'PY'
import sys, uuid, datetime
n, exp_id, v1, v2, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ts = datetime.datetime.now(datetime.timezone.utc).isoformat()
out = sys.stdout
for i in range(n):
    out.write(f"{uuid.uuid4()}\t{exp_id}\t{v1 if i % 2 else v2}\t{prefix}{64 + i % 1000}\tpurchase\t"
              f"{i % 97}\t{{\"plan\": \"pro\", \"page\": {i % 13}}}\t{ts}\n")
PY
start=$(date +%s.%N)
psql "$PG_DSN" -Xq -v ON_ERROR_STOP=1 -c "\copy events (event_id, experiment_id, variant_id, user_id, event_type, value, properties, ts) FROM '$WORK/rows.tsv'"
end=$(date +%s.%N)
copy_rps=$(python3 -c "print(round($COPY_ROWS / ($end - $start)))")
echo "copy_rows=$COPY_ROWS"
echo "copy_rows_per_s=$copy_rps"
python3 -c "print('events_vs_copy=%.2f' % (${events_rps:-0} / $copy_rps))"
