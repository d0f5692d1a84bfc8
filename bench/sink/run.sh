#!/usr/bin/env bash
# Sink benchmark (issue 4, "Benchmark"): `splitstream sink` against ClickHouse's own ceiling,
# and commit → visible-in-ClickHouse latency in Kafka mode beside direct mode, on a Release
# build and a throwaway stack of its own (scripts/stack up --free-ports in a mktemp directory
# /tmp/sinkbench-run.*, down --purge at the end).
#
#   bench/sink/run.sh [--doc FILE] [--command TEXT]
#
# 1. Throughput. A fresh database migrated by `splitstream migrate`, one experiment and one
#    variant, publication and slot `splitstream`; $ROWS inserts into events in $TXN_ROWS-row
#    transactions; `splitstream cdc` (Kafka mode) carries them into the topic
#    $PREFIX.public.events and is stopped once the slot confirmed them all. Then $PAIRS pairs,
#    interleaved on the same topic (ours 1, ceiling 1, ours 2, ceiling 2, ...), because the
#    ceiling of this shared machine swings 2x between runs: one pair's ratio is noise-prone,
#    the median of the per-pair ratios is the figure, every pair is reported.
#    - ours i: from starting `splitstream sink` (fresh group sinkbench-i, default batch
#      settings, into experiments.events emptied by TRUNCATE after the merges of the step
#      before ended) until `SELECT count() FROM experiments.events` reaches $ROWS (polled
#      every 50 ms), and until the group's committed offset reaches the topic's end. The sink
#      of the previous pair is stopped first; the last one stays for the latency part.
#    - ceiling i: the first sink's result exported with `SELECT * FROM experiments.events
#      FORMAT RowBinary` to a file (in primary-key order, the order of the table's parts),
#      which curl then POSTs in one `INSERT ... FORMAT RowBinary` into a fresh table of the
#      same DDL. This is the ceiling of the target. After the pairs, once more with
#      max_insert_block_size=10000 (the sink's batch size, so the server writes 10 000-row
#      parts as small inserts do).
#    - topic-order ceiling i: the same rows exported `ORDER BY _version` (the order of the
#      topic) and POSTed the same way. ClickHouse sorts every inserted block by the table's
#      key, which costs it about twice the CPU on rows in arrival order (random event_ids)
#      as on presorted ones, so this is what the same INSERT costs on the rows as they come.
#    - with BASELINE set (another build's `splitstream`, e.g. main's), each pair also runs
#      that binary's sink like ours i, after ceiling i (group sinkbench-base-i).
#    CPU seconds of the sink, of ClickHouse and of the Kafka broker, and VmHWM of the sink.
# 2. Latency. For each rate of $LATENCY_RATES rows/s: $LATENCY_TXN_PER_S transactions/s
#    (pgbench -R) for $LATENCY_SECONDS s, first in Kafka mode (cdc → Kafka → sink), then in
#    direct mode (cdc with empty kafka_brokers). bench/sink/sink_probe polls ClickHouse every
#    $POLL_MS ms for the rows that appeared and records poll time − _source_ts_ms per row.
# 3. Writes (replaces) the "## Sink" section of FILE (default docs/benchmarks.md) with the
#    machine, the date, the command (TEXT, default `bench/sink/run.sh`) and the figures.
#
# Output: key=value lines on stdout; progress on stderr.
# Environment: BUILD (build-bench), ROWS (2000000), TXN_ROWS (10000), PAIRS (5), BASELINE
# (unset), LATENCY_RATES
# ("1000 10000"), LATENCY_TXN_PER_S (100), LATENCY_SECONDS (20), LATENCY_CLIENTS (4),
# POLL_MS (20), SINK_FLAGS (extra flags of `splitstream sink`, e.g. "--batch-rows 100000";
# none by default, and the doc names them when set).
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
doc=$root/docs/benchmarks.md
command_text='bench/sink/run.sh'
while (($#)); do
  case $1 in
    --doc)
      doc=$2
      shift 2
      ;;
    --command)
      command_text=$2
      shift 2
      ;;
    *)
      sed -n '2,46p' "$0" >&2
      exit 2
      ;;
  esac
done
build=${BUILD:-$root/build-bench}
ROWS=${ROWS:-2000000}
TXN_ROWS=${TXN_ROWS:-10000}
PAIRS=${PAIRS:-5}
BASELINE=${BASELINE:-}
LATENCY_RATES=${LATENCY_RATES:-1000 10000}
LATENCY_TXN_PER_S=${LATENCY_TXN_PER_S:-100}
LATENCY_SECONDS=${LATENCY_SECONDS:-20}
LATENCY_CLIENTS=${LATENCY_CLIENTS:-4}
POLL_MS=${POLL_MS:-20}
PREFIX=sinkbench
TOPIC=$PREFIX.public.events

step() { printf '\n== sink: %s\n' "$*" >&2; }
die() {
  echo "bench/sink: $*" >&2
  exit 1
}
for tool in curl pgbench psql python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

step "release build ($build)"
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPLITSTREAM_BUILD_TESTS=OFF \
    -DSPLITSTREAM_BUILD_BENCH=ON >/dev/null
fi
ninja -C "$build" splitstream cdc_probe sink_probe >&2
[[ -z $BASELINE || -x $BASELINE ]] || die "BASELINE=$BASELINE is not an executable"
splitstream=$build/splitstream
cdc_probe=$build/bench/cdc/cdc_probe
probe=$build/bench/sink/sink_probe

step "throwaway stack"
work=$(mktemp -d /tmp/sinkbench-run.XXXXXX)
stack_dir=$work/stack
mkdir -p "$stack_dir"
chmod 755 "$work" "$stack_dir"
cdc_pid=
sink_pid=
poller_pid=
stop_pid() { # pid: SIGTERM, then wait for it
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  for pid in $poller_pid $sink_pid $cdc_pid; do stop_pid "$pid"; done
  scripts/stack down --purge --dir "$stack_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
scripts/stack up --free-ports --dir "$stack_dir" >&2
eval "$(scripts/stack env --dir "$stack_dir")"
dsn=$SPLITSTREAM_PG_DSN
brokers=$SPLITSTREAM_KAFKA_BROKERS
ch=$SPLITSTREAM_CLICKHOUSE_URL
db=${SPLITSTREAM_CLICKHOUSE_DATABASE:-experiments}

sql() { psql "$dsn" -XAtq -v ON_ERROR_STOP=1 "$@"; }
chq() { curl -fsS "$ch/" --data-binary "$1"; }
now_ns() { date +%s%N; }
# CPU seconds (user + system) a process has used so far; 0 when it is gone.
cpu_s() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
    echo 0
    return
  }
  stat=${stat##*) }
  awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / tck }' <<<"$stat"
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# CPU seconds all processes of the machine have used so far (user, nice, system, irq,
# softirq, steal of /proc/stat).
machine_busy_s() {
  awk -v tck="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / tck }' /proc/stat
}
kafka_pid=$(head -n1 "$stack_dir/run/kafka.pid")
ch_pid=$(head -n1 "$stack_dir/run/clickhouse.pid")
# Waits (up to 120 s) until ClickHouse has run no merge for one second (merges are scheduled
# in the background a little after an insert), so background work of an earlier step does not
# bill the next one.
wait_merges() {
  local i quiet=0
  for ((i = 0; i < 1200; ++i)); do
    if [[ $(chq 'SELECT count() FROM system.merges') == 0 ]]; then
      ((++quiet >= 10)) && return 0
    else
      quiet=0
    fi
    sleep 0.1
  done
  echo "bench/sink: merges still running after 120 s" >&2
}
# Rows ClickHouse has rewritten in merges since it started (system.events MergedRows).
merged_rows() {
  local n
  n=$(chq "SELECT sum(value) FROM system.events WHERE event = 'MergedRows'")
  echo "${n:-0}"
}
start_cdc() { # extra environment assignments, e.g. SPLITSTREAM_KAFKA_BROKERS=
  cdc_metrics=$(free_port)
  env "$@" "$splitstream" cdc --snapshot-mode never --slot splitstream --publication splitstream \
    --topic-prefix "$PREFIX" --metrics-addr "127.0.0.1:$cdc_metrics" 2>>"$work/cdc.log" &
  cdc_pid=$!
}
# Waits until cdc streams from the slot (the slot is active), plus one second, so the latency
# runs do not count cdc's start-up.
wait_cdc_streaming() {
  local i
  for ((i = 0; i < 600; ++i)); do
    if [[ $(sql -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'splitstream'") == t ]]; then
      sleep 1
      return 0
    fi
    kill -0 "$cdc_pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 30 "$work/cdc.log" >&2
  die "cdc does not stream"
}
# Waits until the slot confirmed everything committed so far, then stops cdc.
drain_and_stop_cdc() {
  local end
  end=$(sql -c 'SELECT pg_current_wal_lsn()')
  if ! "$cdc_probe" watch "$dsn" splitstream "$end" "http://127.0.0.1:$cdc_metrics/metrics" \
    "$cdc_pid" 600 >"$work/cdc_watch.txt"; then
    tail -n 30 "$work/cdc.log" >&2
    die "cdc did not confirm $end"
  fi
  stop_pid "$cdc_pid"
  cdc_pid=
}

measure() {
echo "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
step "schema, publication, slot"
"$splitstream" migrate >&2
ids=$(sql -F ' ' <<'SQL'
INSERT INTO experiments (key, name, seed) VALUES ('sink-bench', 'Sink benchmark', 'sink-bench');
INSERT INTO variants (experiment_id, key, weight, position)
  SELECT id, 'control', 1, 0 FROM experiments WHERE key = 'sink-bench';
SELECT e.id, v.id FROM experiments e JOIN variants v ON v.experiment_id = e.id
  WHERE e.key = 'sink-bench';
SQL
)
read -r exp_id var_id <<<"$ids"
sql >/dev/null <<'SQL'
CREATE PUBLICATION splitstream FOR TABLE experiments, variants, assignments, events
  WITH (publish_via_partition_root = true);
SELECT pg_create_logical_replication_slot('splitstream', 'pgoutput');
CREATE SEQUENCE sinkbench_seq;
SQL

step "$ROWS inserts in $TXN_ROWS-row transactions"
for ((done_rows = 0; done_rows < ROWS; done_rows += TXN_ROWS)); do
  printf "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value,
  properties, ts) SELECT gen_random_uuid(), %s, %s, 'u' || (g %% 100000), 'purchase', g %% 97,
  jsonb_build_object('plan', 'pro', 'page', g %% 13), now()
  FROM generate_series(%s, %s) g;\n" "$exp_id" "$var_id" "$done_rows" \
    "$((done_rows + TXN_ROWS - 1))"
done | sql >/dev/null
committed=$(sql -c 'SELECT count(*) FROM events')
[[ $committed == "$ROWS" ]] || die "expected $ROWS rows in events, found $committed"
echo "rows=$ROWS"
echo "txn_rows=$TXN_ROWS"
echo "sink_flags=${SINK_FLAGS:-}"

step "splitstream cdc (Kafka mode) fills $TOPIC, then stops"
start=$(now_ns)
start_cdc
drain_and_stop_cdc
python3 -c "print('fill_seconds=%.2f' % (($(now_ns) - $start) / 1e9))"
end_offset=$("$cdc_probe" high-watermark "$brokers" "$TOPIC" | sed -n 's/^high_watermark=//p')
[[ $end_offset == "$ROWS" ]] || die "expected $ROWS messages in $TOPIC, found $end_offset"
echo "topic=$TOPIC"
echo "topic_messages=$end_offset"
[[ $(chq "SELECT count() FROM $db.events") == 0 ]] || die "$db.events is not empty"

echo "pairs=$PAIRS"
echo "baseline=${BASELINE:+yes}"
# One sink run over the whole topic into an empty experiments.events: prints ours_* lines
# (and the probe's first_row_ns, count_ns, committed_ns, vmhwm_kb). Leaves the sink running.
ours_run() { # binary group
  local bin=$1 group=$2
  if [[ -n $sink_pid ]]; then
    stop_pid "$sink_pid"
    sink_pid=
  fi
  chq "TRUNCATE TABLE $db.events"
  wait_merges
  [[ $(chq "SELECT count() FROM $db.events") == 0 ]] || die "$db.events is not empty"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
sink_metrics=$(free_port)
kafka_cpu_before=$(cpu_s "$kafka_pid")
ch_cpu_before=$(cpu_s "$ch_pid")
merged_before=$(merged_rows)
busy_before=$(machine_busy_s)
start=$(now_ns)
# shellcheck disable=SC2086 # SINK_FLAGS is a list of flags
"$bin" sink --topic-prefix "$PREFIX" --group "$group" --metrics-addr "127.0.0.1:$sink_metrics" \
  ${SINK_FLAGS:-} 2>"$work/sink.log" &
sink_pid=$!
if ! "$probe" watch "$ch" "$db" "$ROWS" "$brokers" "$group" "$TOPIC" "$end_offset" "$sink_pid" \
  600 >"$work/watch.txt"; then
  tail -n 30 "$work/sink.log" >&2
  die "the sink did not write $ROWS rows and commit offset $end_offset"
fi
sink_cpu=$(cpu_s "$sink_pid")
ch_cpu_after=$(cpu_s "$ch_pid")
kafka_cpu_after=$(cpu_s "$kafka_pid")
busy_after=$(machine_busy_s)
merged_after=$(merged_rows)
cat "$work/watch.txt"
curl -fsS "http://127.0.0.1:$sink_metrics/metrics" >"$work/sink_metrics.txt"
python3 - "$work/watch.txt" "$work/sink_metrics.txt" "$start" "$ROWS" <<'PY'
import re, sys
w = dict(line.strip().split('=', 1) for line in open(sys.argv[1]) if '=' in line)
m = {}
for line in open(sys.argv[2]):
    g = re.match(r'^splitstream_sink_(\w+)(\{[^}]*\})? (\S+)$', line.strip())
    if g and not g.group(2):
        m[g.group(1)] = float(g.group(3))
start, rows = int(sys.argv[3]), int(sys.argv[4])
total = (int(w['count_ns']) - start) / 1e9
print('ours_seconds=%.2f' % total)
print('ours_rows_per_s=%.0f' % (rows / total))
print('ours_startup_seconds=%.2f' % ((int(w['first_row_ns']) - start) / 1e9))
print('ours_committed_seconds=%.2f' % ((int(w['committed_ns']) - start) / 1e9))
print('ours_flushes=%.0f' % m.get('flushes_total', 0))
print('ours_rows_per_flush=%.0f' % (rows / max(m.get('flushes_total', 1), 1)))
print('ours_flush_seconds_sum=%.2f' % m.get('flush_seconds_sum', 0))
print('ours_commits=%.0f' % m.get('commits_total', 0))
print('ours_dlq_messages=%.0f' % m.get('dlq_messages_total', 0))
PY
echo "ours_sink_cpu_seconds=$sink_cpu"
python3 -c "print('ours_clickhouse_cpu_seconds=%.2f' % ($ch_cpu_after - $ch_cpu_before))"
python3 -c "print('ours_kafka_cpu_seconds=%.2f' % ($kafka_cpu_after - $kafka_cpu_before))"
python3 -c "print('ours_machine_busy_seconds=%.2f' % ($busy_after - $busy_before))"
# ClickHouse's background merges of the inserted parts, until none runs.
echo "ours_merged_rows=$((merged_after - merged_before))"
wait_merges
python3 -c "print('ours_clickhouse_cpu_with_merges_seconds=%.2f' % ($(cpu_s "$ch_pid") - $ch_cpu_before))"
echo "ours_merged_rows_with_merges=$(($(merged_rows) - merged_before))"
}
ceiling() { # name, RowBinary file, extra URL parameters
  local name=$1 file=$2 params=$3 ch_before ch_after start end
  chq "DROP TABLE IF EXISTS $db.events_ceiling"
  chq "CREATE TABLE $db.events_ceiling AS $db.events"
  wait_merges
  # Page the file in first, so the ceiling does not pay for a disk read the sink never made.
  cat "$file" >/dev/null
  ch_before=$(cpu_s "$ch_pid")
  local merged_start
  merged_start=$(merged_rows)
  TIMEFORMAT='%3U %3S'
  start=$(now_ns)
  { time curl -fsS -X POST -T "$file" \
    "$ch/?query=INSERT%20INTO%20$db.events_ceiling%20FORMAT%20RowBinary$params"; } \
    2>"$work/curl_time"
  end=$(now_ns)
  ch_after=$(cpu_s "$ch_pid")
  local n
  n=$(chq "SELECT count() FROM $db.events_ceiling")
  [[ $n == "$ROWS" ]] || die "the ceiling table holds $n rows, expected $ROWS"
  read -r curl_user curl_sys <"$work/curl_time"
  echo "${name}_merged_rows=$(($(merged_rows) - merged_start))"
  echo "${name}_active_parts=$(chq "SELECT count() FROM system.parts
    WHERE database = '$db' AND table = 'events_ceiling' AND active")"
  wait_merges
  ch_merged=$(cpu_s "$ch_pid")
  echo "${name}_merged_rows_with_merges=$(($(merged_rows) - merged_start))"
  python3 -c "
s = ($end - $start) / 1e9
print('${name}_seconds=%.2f' % s)
print('${name}_rows_per_s=%.0f' % ($ROWS / s))
print('${name}_clickhouse_cpu_seconds=%.2f' % ($ch_after - $ch_before))
print('${name}_curl_cpu_seconds=%.2f' % ($curl_user + $curl_sys))
print('${name}_clickhouse_cpu_with_merges_seconds=%.2f' % ($ch_merged - $ch_before))"
  chq "DROP TABLE $db.events_ceiling"
}
for ((pair = 1; pair <= PAIRS; ++pair)); do
  step "pair $pair of $PAIRS, ours: splitstream sink until $ROWS rows are visible and the offsets committed"
  ours_run "$splitstream" "sinkbench-$pair" >"$work/run.txt"
  sed "s/^/p${pair}_/" "$work/run.txt"
  if ((pair == 1)); then
    step "the sink's result as a RowBinary file"
    wait_merges
    cols=$(chq "SELECT arrayStringConcat(groupArray(name), ', ') FROM (SELECT name FROM system.columns
      WHERE database = '$db' AND table = 'events')")
    chq "SELECT $cols FROM $db.events FORMAT RowBinary" >"$work/events.rowbinary"
    chq "SELECT $cols FROM $db.events ORDER BY _version FORMAT RowBinary" \
      >"$work/events_topic_order.rowbinary"
    echo "rowbinary_bytes=$(stat -c %s "$work/events.rowbinary")"
  fi
  step "pair $pair of $PAIRS, ceiling: the same rows as one RowBinary file POSTed by curl"
  echo "p${pair}_ceiling_loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  ceiling "p${pair}_ceiling" "$work/events.rowbinary" ''
  step "pair $pair of $PAIRS, topic-order ceiling: the same file in the topic's order"
  ceiling "p${pair}_topicceiling" "$work/events_topic_order.rowbinary" ''
  if [[ -n $BASELINE ]]; then
    step "pair $pair of $PAIRS, baseline: $BASELINE sink"
    ours_run "$BASELINE" "sinkbench-base-$pair" >"$work/run.txt"
    sed "s/^/p${pair}_base_/" "$work/run.txt"
  fi
done
# The sink still running for the latency part is the last ours.
if [[ -n $BASELINE ]]; then
  step "ours again for the latency part"
  ours_run "$splitstream" "sinkbench-latency" >/dev/null
fi
step "ceiling with 10 000-row blocks"
# min_insert_block_size_* = 0: otherwise the server squashes the 10 000-row blocks back into
# ~1 M-row ones before writing parts.
ceiling ceiling10k "$work/events.rowbinary" \
  '&max_insert_block_size=10000&min_insert_block_size_rows=0&min_insert_block_size_bytes=0'
rm -f "$work/events.rowbinary" "$work/events_topic_order.rowbinary"

step "latency: commit → visible in ClickHouse"
chq "TRUNCATE TABLE $db.events"
wait_merges
# The sink's record_age_seconds histogram: "le cumulative-count" lines.
record_ages() {
  curl -fsS "http://127.0.0.1:$sink_metrics/metrics" |
    sed -n 's/^splitstream_sink_record_age_seconds_bucket{le="\([^"]*\)"} /\1 /p'
}
latency_run() { # mode rate
  local mode=$1 rate=$2 tag txn_rows n
  tag=lat-$mode-$rate
  txn_rows=$((rate / LATENCY_TXN_PER_S))
  step "latency: $mode mode, $rate rows/s ($LATENCY_TXN_PER_S tx/s of $txn_rows rows) for ${LATENCY_SECONDS}s"
  cat >"$work/latency.sql" <<SQL
INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, properties, ts)
  SELECT gen_random_uuid(), $exp_id, $var_id, 'lat' || g, '$tag', nextval('sinkbench_seq'), '{}', now()
  FROM generate_series(1, $txn_rows) g;
SQL
  sql -c 'ALTER SEQUENCE sinkbench_seq RESTART WITH 1'
  local start_offset=0
  if [[ $mode == kafka ]]; then
    start_offset=$("$cdc_probe" high-watermark "$brokers" "$TOPIC" | sed -n 's/^high_watermark=//p')
    record_ages >"$work/ages_before.txt"
  fi
  rm -f "$work/count"
  "$probe" latency "$ch" "$db" "$tag" "$work/count" "$POLL_MS" "$((LATENCY_SECONDS + 120))" \
    "$work/latency.rows" >"$work/latency.txt" &
  poller_pid=$!
  pgbench -n -R "$LATENCY_TXN_PER_S" -T "$LATENCY_SECONDS" -c "$LATENCY_CLIENTS" \
    -j "$((LATENCY_CLIENTS < 2 ? LATENCY_CLIENTS : 2))" -f "$work/latency.sql" "$dsn" \
    >"$work/pgbench.txt" 2>&1 || {
    cat "$work/pgbench.txt" >&2
    die "pgbench failed"
  }
  grep -E '^(tps|latency|number of transactions actually)' "$work/pgbench.txt" >&2 || true
  n=$(sql -c "SELECT count(*) FROM events WHERE event_type = '$tag'")
  echo "$n" >"$work/count"
  wait "$poller_pid" || die "the latency poller failed ($mode, $rate rows/s)"
  poller_pid=
  echo "${mode}_${rate}_committed_rows=$n"
  python3 -c "print('${mode}_${rate}_rows_per_s=%.0f' % ($n / $LATENCY_SECONDS))"
  sed "s/^/${mode}_${rate}_/" "$work/latency.txt"
  if [[ $mode == kafka ]]; then
    # The first half of the hop: commit → the record's timestamp (CreateTime: when cdc handed
    # it to its producer) and commit → cdc's encoding (envelope ts_ms), read back from Kafka.
    "$cdc_probe" latency "$brokers" "$TOPIC" "$start_offset" "$n" 120 |
      sed -n "s/^commit_to_\(ack\|encode\)_\(p50\|p99\|max\)/${mode}_${rate}_cdc_commit_to_\1_\2/p" |
      sed 's/_cdc_commit_to_ack_/_cdc_commit_to_produce_/'
    # The second half: the record's timestamp → the sink's poll that returned it, from the
    # sink's record_age histogram (the run's samples: after minus before).
    record_ages >"$work/ages_after.txt"
    python3 - "$work/ages_before.txt" "$work/ages_after.txt" "${mode}_${rate}_" <<'PY'
import sys
def load(path):
    return {le: float(n) for le, n in (line.split() for line in open(path))}
before, after = load(sys.argv[1]), load(sys.argv[2])
bounds = sorted((float(le), le) for le in after if le != '+Inf')
cum = [(b, after[le] - before.get(le, 0)) for b, le in bounds]  # cumulative counts
total = after['+Inf'] - before.get('+Inf', 0)
def quantile(q):
    # Linear within the bucket that holds the q-th sample, as Prometheus' histogram_quantile.
    want, lo, below = q * total, 0.0, 0.0
    for b, c in cum:
        if c >= want:
            return lo + (b - lo) * ((want - below) / (c - below) if c > below else 1.0)
        lo, below = b, c
    return cum[-1][0]
print('%srecord_age_samples=%d' % (sys.argv[3], total))
for name, q in (('p50', 0.5), ('p99', 0.99)):
    print('%srecord_age_%s_ms=%.1f' % (sys.argv[3], name, 1000 * quantile(q)))
PY
  fi
  # The rows slower than the flush interval + 100 ms, and in which seconds of the run (counted
  # from the first commit) they were committed.
  python3 - "$work/latency.rows" "${mode}_${rate}_" <<'PY'
import sys
rows = [tuple(map(int, line.split())) for line in open(sys.argv[1])]
first = min(c for _, c, _ in rows)
slow = sorted({(c - first) // 1000 for _, c, seen in rows if seen - c > 1100})
print('%sslow_rows=%d' % (sys.argv[2], sum(1 for _, c, seen in rows if seen - c > 1100)))
print('%sslow_commit_seconds=%s' % (sys.argv[2], ' '.join(map(str, slow)) or '-'))
PY
}
# One row committed after cdc started streaming, and how long until ClickHouse shows it: the
# latency runs start only after that, so they measure the steady state.
warm_up() { # mode
  local tag=warmup-$1 start i
  start=$(now_ns)
  sql -c "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value,
    properties, ts) VALUES (gen_random_uuid(), $exp_id, $var_id, 'warm', '$tag', 0, '{}', now())"
  for ((i = 0; i < 3000; ++i)); do
    if [[ $(chq "SELECT count() FROM $db.events WHERE event_type = '$tag'") != 0 ]]; then
      python3 -c "print('${1}_first_change_visible_ms=%.0f' % (($(now_ns) - $start) / 1e6))"
      return 0
    fi
    sleep 0.01
  done
  die "the warm-up row of $1 mode did not reach ClickHouse within 30 s"
}
echo "latency_rates=$LATENCY_RATES"
echo "latency_seconds=$LATENCY_SECONDS"
echo "latency_txn_per_s=$LATENCY_TXN_PER_S"
echo "latency_pgbench=pgbench -n -R $LATENCY_TXN_PER_S -T $LATENCY_SECONDS -c $LATENCY_CLIENTS"
echo "poll_ms=$POLL_MS"
# Kafka mode: cdc → Kafka, and the sink (still running, same group) → ClickHouse.
start_cdc
wait_cdc_streaming
warm_up kafka
for rate in $LATENCY_RATES; do latency_run kafka "$rate"; done
drain_and_stop_cdc
curl -fsS "http://127.0.0.1:$sink_metrics/metrics" |
  sed -n 's/^splitstream_sink_\(retries_total\|flushes_total\) /sink_final_\1=/p'
grep -E ' (warn|warning|error) ' "$work/sink.log" | tail -n 5 >&2 || true
echo "sink_final_vmhwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$sink_pid/status")"
stop_pid "$sink_pid"
sink_pid=
# Direct mode: cdc writes to ClickHouse itself.
start_cdc SPLITSTREAM_KAFKA_BROKERS=
wait_cdc_streaming
warm_up direct
for rate in $LATENCY_RATES; do latency_run direct "$rate"; done
drain_and_stop_cdc
}

measure >"$work/results.txt"
cat "$work/results.txt"

step "writing the Sink section of $doc"
python3 - "$work/results.txt" "$doc" "$command_text" <<'PY'
import datetime, os, platform, re, sys
results, doc, command = sys.argv[1], sys.argv[2], sys.argv[3]
r = dict(line.rstrip('\n').split('=', 1) for line in open(results) if '=' in line)
def cpu():
    for line in open('/proc/cpuinfo'):
        if line.startswith('model name'):
            return line.split(':', 1)[1].strip()
    return platform.processor()
mem = int(open('/proc/meminfo').readline().split()[1]) // (1024 * 1024)
machine = f'{cpu()}, nproc {os.cpu_count()}, {mem} GiB RAM, Linux {platform.release()}'
f = lambda k: float(r[k])
rows, txn = int(r['rows']), int(r['txn_rows'])
cores = os.cpu_count()
# The pairs (ours i, ceiling i): the figure is the median of the per-pair ratios; the detailed
# rows below are the median pair's.
pairs = int(r['pairs'])
baseline = r.get('baseline') == 'yes'
ratios = [f(f'p{i}_ours_rows_per_s') / f(f'p{i}_ceiling_rows_per_s') for i in range(1, pairs + 1)]
topic_ratios = [f(f'p{i}_ours_rows_per_s') / f(f'p{i}_topicceiling_rows_per_s') for i in range(1, pairs + 1)]
def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
topic_ratio = median(topic_ratios)
by_ratio = sorted(range(1, pairs + 1), key=lambda i: ratios[i - 1])
med = by_ratio[(pairs - 1) // 2]  # the lower middle one when PAIRS is even
ratio = sorted(ratios)[pairs // 2] if pairs % 2 else (sorted(ratios)[pairs // 2 - 1] + sorted(ratios)[pairs // 2]) / 2
for k in list(r):
    if k.startswith(f'p{med}_ours_'):
        r[k[len(f'p{med}_'):]] = r[k]
    elif k.startswith(f'p{med}_ceiling_'):
        r['ceiling_' + k[len(f'p{med}_ceiling_'):]] = r[k]
    elif k.startswith(f'p{med}_topicceiling_'):
        r['topicceiling_' + k[len(f'p{med}_topicceiling_'):]] = r[k]
for k in ('vmhwm_kb', 'loadavg'):
    r[k] = r[f'p{med}_{k}']
def per_m(*keys):
    return f'{sum(f(k) for k in keys) * 1e6 / rows:.1f}'
def n(k):
    return f'{f(k):,.0f}'.replace(',', ' ')
def mr(p):
    return (f'{int(r[p + "_merged_rows"]):,} / {int(r[p + "_merged_rows_with_merges"]):,}').replace(',', ' ')
rates = r['latency_rates'].split()
tps = int(r['latency_txn_per_s'])
def hop_of(k):  # commit → cdc's producer p50 + producer → the sink's poll p50, ms
    return f(k + 'cdc_commit_to_produce_p50_ms') + f(k + 'record_age_p50_ms')
lines = [
    '## Sink (`splitstream sink`: Kafka → ClickHouse; direct mode)', '',
    f'- Date: {datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}',
    f'- Machine: {machine}; PostgreSQL 15, Kafka 3.9.1 (one KRaft node, 512 MiB heap) and',
    '  ClickHouse 18.16 of a throwaway `scripts/stack` on the same cores as the measured processes.',
    f'- Load average when the run started: {r["loadavg_at_start"]} (other work on the same machine',
    '  competes with the measured processes; see the CPU rows below)',
    f'- Command: `{command}` (the sink part is `bench/sink/run.sh`; Release build)',
    '',
    f'Method: {pairs} pairs interleaved on the same topic (ours 1, ceiling 1'
    + (', baseline 1' if baseline else '') + ', ours 2, ...): ours is',
    'measured with a fresh consumer group into the emptied table, the ceiling into a fresh table;',
    'the ceiling of this shared machine swings up to 2x between runs, so the figure is the median',
    'of the per-pair ratios and every pair is listed; the detailed rows after the pairs are those',
    f'of the median pair ({med}).',
    '',
    f'Throughput: {rows:,} rows inserted into PostgreSQL `events` in {txn:,}-row transactions and'
    .replace(',', ' '),
    f'carried by `splitstream cdc` (Kafka mode, then stopped) into `{r["topic"]}`',
    f'({int(r["topic_messages"]):,}'.replace(',', ' ') + ' Debezium events, one partition). Ours is `splitstream sink` with a',
    'fresh consumer group and the default batches (10 000 rows / 64 MiB / 1 s; a batch grows past',
    '10 000 rows only while the previous INSERT still runs or while catching up a backlog, up to',
    '1 000 000 rows or 64 MiB, due by age at 5 s while catching up)'
    + (f' plus `{r["sink_flags"]}`' if r.get('sink_flags') else '') + ', timed from process',
    'start until `SELECT count() FROM experiments.events` reaches the row count (polled every',
    '50 ms). The ceiling is the sink\'s result exported as RowBinary and POSTed by `curl -T` in',
    'one `INSERT INTO <fresh table, same DDL> FORMAT RowBinary`',
    f'({f("rowbinary_bytes") / 2**20:.0f} MiB); the ceiling with 10 000-row blocks (once, after',
    'the pairs) is the same file with `max_insert_block_size=10000` and',
    '`min_insert_block_size_rows/bytes=0`, so the server writes 10 000-row parts like small inserts.',
    'The exported file is in primary-key order (the order of the table\'s parts), which spares',
    'ClickHouse most of the sort it runs on every inserted block; the topic-order ceiling (after',
    'each ceiling) POSTs the same rows exported `ORDER BY _version`, the order of the topic, and',
    'shows what that sort costs. The target is judged against the higher, primary-key-order one.',
    '',
    '| pair | load average before ours | ceiling, rows/s | ours, rows/s | ours / ceiling | topic-order ceiling, rows/s (ours over it) | ours: rows per flush | ours: sink VmHWM'
    + (' | baseline (BASELINE) rows/s, over the ceiling, rows per flush, VmHWM' if baseline else '') + ' |',
    '|---|---|---|---|---|---|---|---' + ('|---' if baseline else '') + '|',
] + [
    f'| {i} | {r[f"p{i}_loadavg"]} | {n(f"p{i}_ceiling_rows_per_s")} | {n(f"p{i}_ours_rows_per_s")} | {ratios[i - 1]:.0%} | {n(f"p{i}_topicceiling_rows_per_s")} ({topic_ratios[i - 1]:.0%}) | {n(f"p{i}_ours_rows_per_flush")} | {f(f"p{i}_vmhwm_kb") / 1024:.0f} MiB'
    + (f' | {n(f"p{i}_base_ours_rows_per_s")}, {f(f"p{i}_base_ours_rows_per_s") / f(f"p{i}_ceiling_rows_per_s"):.0%}, {n(f"p{i}_base_ours_rows_per_flush")}, {f(f"p{i}_base_vmhwm_kb") / 1024:.0f} MiB' if baseline else '') + ' |'
    for i in range(1, pairs + 1)
] + [
    '',
    '| measure | value | target |', '|---|---|---|',
    f'| ceiling: one RowBinary INSERT over HTTP, rows/s | {n("ceiling_rows_per_s")} ({f("ceiling_seconds"):.2f} s, {r["ceiling_active_parts"]} parts) | |',
    f'| topic-order ceiling: the same rows in the topic\'s order, one INSERT, rows/s | {n("topicceiling_rows_per_s")} ({f("topicceiling_seconds"):.2f} s, ClickHouse {f("topicceiling_clickhouse_cpu_seconds"):.1f} CPU-s) | |',
    f'| ceiling with 10 000-row blocks, rows/s | {n("ceiling10k_rows_per_s")} ({f("ceiling10k_seconds"):.2f} s, {r["ceiling10k_active_parts"]} parts right after the insert) | |',
    f'| ours: start of `splitstream sink` → all rows visible, rows/s | {n("ours_rows_per_s")} ({f("ours_seconds"):.2f} s) | |',
    f'| ours over the ceiling: median of the {pairs} pairs (min … max) | {ratio:.0%} ({min(ratios):.0%} … {max(ratios):.0%}) | ≥ 50 % |',
    f'| ours over the topic-order ceiling: median of the {pairs} pairs (min … max) | {topic_ratio:.0%} ({min(topic_ratios):.0%} … {max(topic_ratios):.0%}) | |',
    f'| ours over the 10 000-row-block ceiling | {f("ours_rows_per_s") / f("ceiling10k_rows_per_s"):.0%} | |',
    f'| ours from the first rows visible (start-up of {f("ours_startup_seconds"):.2f} s excluded), rows/s | '
    + f'{rows / max(f("ours_seconds") - f("ours_startup_seconds"), 0.01):,.0f}'.replace(',', ' ')
    + f' ({rows / max(f("ours_seconds") - f("ours_startup_seconds"), 0.01) / f("ceiling_rows_per_s"):.0%} of the ceiling) | |',
    f'| start → offsets committed to the end of the topic | {f("ours_committed_seconds"):.2f} s | |',
    f'| flushes (rows per flush), time inside flushes | {n("ours_flushes")} ({n("ours_rows_per_flush")}), {f("ours_flush_seconds_sum"):.1f} s | |',
    f'| peak memory of the sink (VmHWM) after the {rows:,} rows / at the end'.replace(',', ' ')
    + f' | {f("vmhwm_kb") / 1024:.0f} MiB / {f("sink_final_vmhwm_kb") / 1024:.0f} MiB | |',
    f'| CPU seconds, ours: sink / ClickHouse / Kafka broker ({per_m("ours_sink_cpu_seconds", "ours_clickhouse_cpu_seconds", "ours_kafka_cpu_seconds")} CPU-s per 1 M rows) | {f("ours_sink_cpu_seconds"):.1f} / {f("ours_clickhouse_cpu_seconds"):.1f} / {f("ours_kafka_cpu_seconds"):.1f} | |',
    f'| CPU seconds, ceiling: ClickHouse / curl ({per_m("ceiling_clickhouse_cpu_seconds", "ceiling_curl_cpu_seconds")} CPU-s per 1 M rows); with 10 000-row blocks: ClickHouse | {f("ceiling_clickhouse_cpu_seconds"):.1f} / {f("ceiling_curl_cpu_seconds"):.1f}; {f("ceiling10k_clickhouse_cpu_seconds"):.1f} | |',
    f'| ClickHouse CPU seconds including the background merges until none ran for 1 s, ours / ceiling / ceiling with 10 000-row blocks | {f("ours_clickhouse_cpu_with_merges_seconds"):.1f} / {f("ceiling_clickhouse_cpu_with_merges_seconds"):.1f} / {f("ceiling10k_clickhouse_cpu_with_merges_seconds"):.1f} | |',
    f'| rows rewritten by merges (system.events MergedRows) during the measured interval / including the merges that followed: ours; ceiling; 10 000-row blocks | {mr("ours")}; {mr("ceiling")}; {mr("ceiling10k")} | |',
    f'| CPU seconds used by every process of the machine during ours (capacity: nproc × wall time) | {f("ours_machine_busy_seconds"):.1f} of {cores * f("ours_seconds"):.1f} | |',
]
verdicts = [f'- sink ≥ 50 % of the ClickHouse ceiling (median of {pairs} pairs): {"met" if ratio >= 0.5 else "NOT met"} ({ratio:.0%}; pairs: {", ".join(f"{x:.0%}" for x in ratios)}; over the topic-order ceiling: {topic_ratio:.0%})']
for rate in rates:
    k, d = f'kafka_{rate}_', f'direct_{rate}_'
    lines += [
        f'| latency at {n(k + "rows_per_s")} rows/s, Kafka mode: p50 / p90 / p99 (max) | {f(k + "p50_ms"):.0f} / {f(k + "p90_ms"):.0f} / {f(k + "p99_ms"):.0f} ms ({f(k + "max_ms"):.0f}) | p99 < 1 500 ms |',
        f'| latency at {n(d + "rows_per_s")} rows/s, direct mode: p50 / p90 / p99 (max) | {f(d + "p50_ms"):.0f} / {f(d + "p90_ms"):.0f} / {f(d + "p99_ms"):.0f} ms ({f(d + "max_ms"):.0f}) | p99 < 1 500 ms |',
        f'| Kafka hop at {rate} rows/s: p50 Kafka mode − p50 direct mode (mean − mean; min − min) | {f(k + "p50_ms") - f(d + "p50_ms"):.0f} ms ({f(k + "mean_ms") - f(d + "mean_ms"):.0f}; {f(k + "min_ms") - f(d + "min_ms"):.0f} ms) | < 50 ms |',
        f'| Kafka hop at {rate} rows/s, measured per record: commit → cdc\'s producer p50 + producer → the sink\'s poll p50 ({r[k + "record_age_samples"]} records) | {f(k + "cdc_commit_to_produce_p50_ms"):.0f} + {f(k + "record_age_p50_ms"):.1f} = {hop_of(k):.0f} ms | < 50 ms |',
        f'| of the Kafka mode at {rate} rows/s: commit → record handed to cdc\'s producer (CreateTime), p50 / p99 / max | {f(k + "cdc_commit_to_produce_p50_ms"):.0f} / {f(k + "cdc_commit_to_produce_p99_ms"):.0f} / {f(k + "cdc_commit_to_produce_max_ms"):.0f} ms | |',
        f'| of the Kafka mode at {rate} rows/s: CreateTime → polled by the sink (`record_age_seconds`), p50 / p99 | {f(k + "record_age_p50_ms"):.1f} / {f(k + "record_age_p99_ms"):.1f} ms | |',
        f'| rows slower than 1.1 s at {rate} rows/s, Kafka / direct mode (committed in which second of the run) | {r[k + "slow_rows"]} ({r[k + "slow_commit_seconds"]}) / {r[d + "slow_rows"]} ({r[d + "slow_commit_seconds"]}) | |',
    ]
    for mode, key in (('Kafka', k), ('direct', d)):
        p99 = f(key + 'p99_ms')
        verdicts.append(f'- p99 < 1.5 s at {rate} rows/s, {mode} mode: {"met" if p99 < 1500 else "NOT met"} ({p99:.0f} ms)')
    hop, diff = hop_of(k), f(k + 'p50_ms') - f(d + 'p50_ms')
    verdicts.append(f'- Kafka hop < 50 ms at p50, {rate} rows/s, measured per record: {"met" if hop < 50 else "NOT met"} ({hop:.0f} ms; p50 Kafka mode − p50 direct mode: {diff:.0f} ms)')
poll = ', '.join(f'{f(f"{m}_{rate}_poll_interval_mean_ms"):.0f}' for m in ('kafka', 'direct') for rate in rates)
lines += [
    '',
    f'Latency: `{r["latency_pgbench"]} -f <script>` inserting {" and ".join(rates)} rows/s',
    f'({" and ".join(str(int(x) // tps) for x in rates)}-row transactions at {tps} tx/s), first in',
    'Kafka mode (`splitstream cdc` → Kafka → `splitstream sink`, both with default settings: 20 ms',
    'producer linger, 1 s flush), then in direct mode (`splitstream cdc` with empty `kafka_brokers`:',
    '10 000 rows or 1 s per flush). `bench/sink/sink_probe latency` polls ClickHouse every',
    f'{r["poll_ms"]} ms for the rows that appeared since the last poll and records, per row, the poll\'s',
    'start time minus `_source_ts_ms` (the commit time PostgreSQL reports, ms). Resolution: the',
    'commit time is in whole ms, and a row is counted at the start of the first poll that sees it,',
    f'so each value over-estimates by up to one poll interval (measured mean intervals: {poll} ms).',
    'Both clocks are the same machine\'s. Before each mode\'s runs, one row is committed after',
    'cdc started streaming and the runs wait until ClickHouse shows it (time from that commit:',
    f'{f("kafka_first_change_visible_ms"):.0f} ms in Kafka mode, {f("direct_first_change_visible_ms"):.0f} ms in direct mode), so start-up is not counted',
    '(in Kafka mode cdc\'s first record after a start reaches the broker about 1 s late; see',
    '`bench/sink/README.md`).',
    '',
    'The Kafka hop is what the records spend between the two halves of the Kafka mode, measured',
    'per record: commit → the record handed to cdc\'s producer (its CreateTime, read back from the',
    'topic) plus CreateTime → the sink\'s poll that returned it (the sink\'s',
    '`splitstream_sink_record_age_seconds` histogram, scraped before and after the run, p50',
    'interpolated within its bucket; ms resolution). The first half is there in direct mode as',
    'well (the same decoding), so the sum over-states the hop a little. The difference of the two',
    'modes\' end-to-end p50 is shown beside it, but it also holds each mode\'s flush phase: at',
    '10 000 rows/s, the default `--batch-rows`, a batch flushes by size or by the 1 s timer as',
    'pgbench\'s rate jitters, and between runs of the same code it moved from −25 to +52 ms.',
    '',
    'Against the targets of this run:', '',
] + verdicts + ['', 'Where the time goes: `bench/sink/README.md`.', '']
section = '\n'.join(lines)
text = open(doc).read() if os.path.exists(doc) else '# Benchmarks\n'
# Replace an existing Sink section (up to the next "## " heading) or append one.
m = re.search(r'^## Sink\b.*?(?=^## |\Z)', text, flags=re.S | re.M)
if m:
    text = text[:m.start()] + section + ('\n' if m.end() < len(text) else '') + text[m.end():]
else:
    text = text.rstrip('\n') + '\n\n' + section
open(doc, 'w').write(text)
print(section, file=sys.stderr)
PY
