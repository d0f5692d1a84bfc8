#!/usr/bin/env bash
# CDC benchmark (issue 3, "Benchmark"): `splitstream cdc` against PostgreSQL's own ceiling, on
# a Release build and a throwaway stack of its own (scripts/stack up --free-ports in a mktemp
# directory, down --purge at the end).
#
#   bench/cdc/run.sh [--doc FILE] [--command TEXT]
#
# 1. Throughput. A fresh database migrated by `splitstream migrate`, one experiment and one
#    variant, publication `splitstream` (experiments, variants, assignments, events,
#    publish_via_partition_root), two pgoutput slots made before the inserts: `ceiling` and
#    `splitstream`; then $ROWS inserts into events in $TXN_ROWS-row transactions, END =
#    pg_current_wal_lsn().
#    - ceiling: pg_recvlogical --start --endpos=END (pgoutput v1) to /dev/null, timed;
#    - ours: from starting `splitstream cdc --snapshot-mode never` until the slot's
#      confirmed_flush_lsn >= END (polled every 50 ms): every change acknowledged by Kafka
#      (acks=all) and confirmed. Also from the first change produced (/metrics changes > 0).
#    CPU seconds of cdc, of its walsender and of the Kafka broker over that run, and VmHWM.
# 2. Latency. $LATENCY_RATE transactions/s of $LATENCY_TXN_ROWS rows for $LATENCY_SECONDS s
#    (pgbench -R) while cdc streams; per event: the broker's append time (the topic is created
#    beforehand with message.timestamp.type=LogAppendTime) minus source.ts_ms (commit time).
# 3. Writes (replaces) the "## CDC" section of FILE (default docs/benchmarks.md) with the
#    machine, the date, the command (TEXT, default `bench/cdc/run.sh`) and the figures.
#
# Output: key=value lines on stdout; progress on stderr.
# Environment: BUILD (build-bench), ROWS (1000000), TXN_ROWS (10000), LATENCY_RATE (100),
# LATENCY_TXN_ROWS (100), LATENCY_SECONDS (20), LATENCY_CLIENTS (4).
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
doc=$root/docs/benchmarks.md
command_text='bench/cdc/run.sh'
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
      sed -n '2,27p' "$0" >&2
      exit 2
      ;;
  esac
done
build=${BUILD:-$root/build-bench}
ROWS=${ROWS:-1000000}
TXN_ROWS=${TXN_ROWS:-10000}
LATENCY_RATE=${LATENCY_RATE:-100}
LATENCY_TXN_ROWS=${LATENCY_TXN_ROWS:-100}
LATENCY_SECONDS=${LATENCY_SECONDS:-20}
LATENCY_CLIENTS=${LATENCY_CLIENTS:-4}
PREFIX=cdcbench
TOPIC=$PREFIX.public.events

step() { printf '\n== cdc: %s\n' "$*" >&2; }
die() {
  echo "bench/cdc: $*" >&2
  exit 1
}
for tool in pg_recvlogical pgbench psql python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

step "release build ($build)"
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPLITSTREAM_BUILD_TESTS=OFF \
    -DSPLITSTREAM_BUILD_BENCH=ON >/dev/null
fi
ninja -C "$build" splitstream cdc_probe >&2
splitstream=$build/splitstream
probe=$build/bench/cdc/cdc_probe

step "throwaway stack"
work=$(mktemp -d /tmp/splitstream-cdcbench.XXXXXX)
stack_dir=$work/stack
mkdir -p "$stack_dir"
chmod 755 "$work" "$stack_dir"
cdc_pid=
cleanup() {
  if [[ -n $cdc_pid ]]; then
    kill -TERM "$cdc_pid" 2>/dev/null || true
    wait "$cdc_pid" 2>/dev/null || true
  fi
  scripts/stack down --purge --dir "$stack_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
scripts/stack up --free-ports --dir "$stack_dir" >&2
eval "$(scripts/stack env --dir "$stack_dir")"
dsn=$SPLITSTREAM_PG_DSN
brokers=$SPLITSTREAM_KAFKA_BROKERS

sql() { psql "$dsn" -XAtq -v ON_ERROR_STOP=1 "$@"; }
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

measure() {
echo "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
step "schema, publication, slots, topic"
"$splitstream" migrate >&2
ids=$(sql -F ' ' <<'SQL'
INSERT INTO experiments (key, name, seed) VALUES ('cdc-bench', 'CDC benchmark', 'cdc-bench');
INSERT INTO variants (experiment_id, key, weight, position)
  SELECT id, 'control', 1, 0 FROM experiments WHERE key = 'cdc-bench';
SELECT e.id, v.id FROM experiments e JOIN variants v ON v.experiment_id = e.id
  WHERE e.key = 'cdc-bench';
SQL
)
read -r exp_id var_id <<<"$ids"
sql >/dev/null <<'SQL'
CREATE PUBLICATION splitstream FOR TABLE experiments, variants, assignments, events
  WITH (publish_via_partition_root = true);
SELECT pg_create_logical_replication_slot('ceiling', 'pgoutput');
SELECT pg_create_logical_replication_slot('splitstream', 'pgoutput');
SQL
"$probe" create-topic "$brokers" "$TOPIC" >&2

step "$ROWS inserts in $TXN_ROWS-row transactions"
insert_start=$(now_ns)
for ((done_rows = 0; done_rows < ROWS; done_rows += TXN_ROWS)); do
  printf "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value,
  properties, ts) SELECT gen_random_uuid(), %s, %s, 'u' || (g %% 100000), 'purchase', g %% 97,
  jsonb_build_object('plan', 'pro', 'page', g %% 13), now()
  FROM generate_series(%s, %s) g;\n" "$exp_id" "$var_id" "$done_rows" \
    "$((done_rows + TXN_ROWS - 1))"
done | sql >/dev/null
insert_end=$(now_ns)
end_lsn=$(sql -c 'SELECT pg_current_wal_lsn()')
committed=$(sql -c 'SELECT count(*) FROM events')
[[ $committed == "$ROWS" ]] || die "expected $ROWS rows in events, found $committed"
echo "rows=$ROWS"
echo "txn_rows=$TXN_ROWS"
echo "end_lsn=$end_lsn"
echo "wal_bytes=$(sql -c "SELECT pg_wal_lsn_diff('$end_lsn', confirmed_flush_lsn)
  FROM pg_replication_slots WHERE slot_name = 'splitstream'")"
python3 -c "print('insert_rows_per_s=%.0f' % ($ROWS / (($insert_end - $insert_start) / 1e9)))"

step "ceiling: pg_recvlogical (pgoutput v1) to /dev/null up to $end_lsn"
# The walsender's CPU: sampled every 20 ms while it lives (it exits with its client).
walsender_sampler() {
  local ws='' v
  while [[ -z $ws && ! -f $work/recv_done ]]; do
    ws=$(sql -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'ceiling'")
    [[ -n $ws ]] || sleep 0.01
  done
  [[ -n $ws ]] || return 0
  while [[ -r /proc/$ws/stat ]]; do
    v=$(cpu_s "$ws")
    if [[ $v != 0 ]]; then
      echo "$v" >"$work/ceiling_walsender_cpu.tmp"
      mv -f "$work/ceiling_walsender_cpu.tmp" "$work/ceiling_walsender_cpu"
    fi
    sleep 0.02
  done
}
echo 0 >"$work/ceiling_walsender_cpu"
busy_before=$(machine_busy_s)
walsender_sampler &
sampler_pid=$!
TIMEFORMAT='%3U %3S'
start=$(now_ns)
{ time pg_recvlogical -d "$dsn" --slot ceiling --start -o proto_version=1 \
  -o publication_names=splitstream --endpos="$end_lsn" --no-loop -f /dev/null; } 2>"$work/recv_time"
end=$(now_ns)
busy_after=$(machine_busy_s)
touch "$work/recv_done"
wait "$sampler_pid"
read -r recv_user recv_sys <"$work/recv_time"
python3 -c "
s = ($end - $start) / 1e9
print('ceiling_seconds=%.2f' % s)
print('ceiling_rows_per_s=%.0f' % ($ROWS / s))
print('ceiling_client_cpu_seconds=%.2f' % ($recv_user + $recv_sys))
print('ceiling_walsender_cpu_seconds=%.2f' % $(cat "$work/ceiling_walsender_cpu"))
print('ceiling_machine_busy_seconds=%.2f' % ($busy_after - $busy_before))"

step "ours: splitstream cdc until the slot confirms $end_lsn"
metrics_port=$(free_port)
kafka_cpu_before=$(cpu_s "$kafka_pid")
busy_before=$(machine_busy_s)
start=$(now_ns)
"$splitstream" cdc --snapshot-mode never --slot splitstream --publication splitstream \
  --topic-prefix "$PREFIX" --metrics-addr "127.0.0.1:$metrics_port" 2>"$work/cdc.log" &
cdc_pid=$!
if ! "$probe" watch "$dsn" splitstream "$end_lsn" "http://127.0.0.1:$metrics_port/metrics" \
  "$cdc_pid" 600 >"$work/watch.txt"; then
  tail -n 30 "$work/cdc.log" >&2
  die "cdc did not confirm $end_lsn"
fi
walsender_pid=$(sql -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'splitstream'")
cdc_cpu=$(cpu_s "$cdc_pid")
walsender_cpu=$(cpu_s "$walsender_pid")
kafka_cpu_after=$(cpu_s "$kafka_pid")
busy_after=$(machine_busy_s)
cat "$work/watch.txt"
python3 - "$work/watch.txt" "$start" "$ROWS" <<'PY'
import sys
w = dict(line.strip().split('=', 1) for line in open(sys.argv[1]) if '=' in line)
start, rows = int(sys.argv[2]), int(sys.argv[3])
total = (int(w['confirmed_ns']) - start) / 1e9
streaming = (int(w['confirmed_ns']) - int(w['first_change_ns'])) / 1e9
print('ours_seconds=%.2f' % total)
print('ours_rows_per_s=%.0f' % (rows / total))
print('ours_startup_seconds=%.2f' % (total - streaming))
print('ours_streaming_seconds=%.2f' % streaming)
print('ours_streaming_rows_per_s=%.0f' % (rows / streaming))
PY
echo "ours_cdc_cpu_seconds=$cdc_cpu"
echo "ours_walsender_cpu_seconds=$walsender_cpu"
python3 -c "print('ours_kafka_cpu_seconds=%.2f' % ($kafka_cpu_after - $kafka_cpu_before))"
python3 -c "print('ours_machine_busy_seconds=%.2f' % ($busy_after - $busy_before))"

step "latency: $LATENCY_RATE tx/s of $LATENCY_TXN_ROWS rows for ${LATENCY_SECONDS}s"
start_offset=$("$probe" high-watermark "$brokers" "$TOPIC" | sed -n 's/^high_watermark=//p')
cat >"$work/latency.sql" <<SQL
INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, properties, ts)
  SELECT gen_random_uuid(), $exp_id, $var_id, 'lat' || g, 'latency', g, '{}', now()
  FROM generate_series(1, $LATENCY_TXN_ROWS) g;
SQL
pgbench -n -R "$LATENCY_RATE" -T "$LATENCY_SECONDS" -c "$LATENCY_CLIENTS" \
  -j "$((LATENCY_CLIENTS < 2 ? LATENCY_CLIENTS : 2))" -f "$work/latency.sql" "$dsn" \
  >"$work/pgbench.txt" 2>&1 || {
  cat "$work/pgbench.txt" >&2
  die "pgbench failed"
}
grep -E '^(tps|latency|number of transactions actually)' "$work/pgbench.txt" >&2 || true
latency_rows=$(sql -c "SELECT count(*) FROM events WHERE event_type = 'latency'")
latency_end=$(sql -c 'SELECT pg_current_wal_lsn()')
"$probe" watch "$dsn" splitstream "$latency_end" "http://127.0.0.1:$metrics_port/metrics" \
  "$cdc_pid" 120 >"$work/watch2.txt" || die "cdc did not confirm the latency rows"
echo "latency_rows=$latency_rows"
echo "latency_txn_rows=$LATENCY_TXN_ROWS"
python3 -c "print('latency_rows_per_s=%.0f' % ($latency_rows / $LATENCY_SECONDS))"
echo "latency_pgbench=pgbench -n -R $LATENCY_RATE -T $LATENCY_SECONDS -c $LATENCY_CLIENTS"
"$probe" latency "$brokers" "$TOPIC" "$start_offset" "$latency_rows" 120
echo "final_vmhwm_kb=$(sed -n 's/^vmhwm_kb=//p' "$work/watch2.txt")"

step "stopping cdc"
kill -TERM "$cdc_pid"
cdc_status=0
wait "$cdc_pid" || cdc_status=$?
cdc_pid=
echo "cdc_exit_status=$cdc_status"
}

measure >"$work/results.txt"
cat "$work/results.txt"

step "writing the CDC section of $doc"
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
ratio = f('ours_rows_per_s') / f('ceiling_rows_per_s')
ratio_streaming = f('ours_streaming_rows_per_s') / f('ceiling_rows_per_s')
p99 = f('commit_to_ack_p99_ms')
cores = os.cpu_count()
def per_m(*keys):
    return f'{sum(f(k) for k in keys) * 1e6 / rows:.1f}'
def n(k):
    return f'{f(k):,.0f}'.replace(',', ' ')
lines = [
    '## CDC (`splitstream cdc`: PostgreSQL → Kafka)', '',
    f'- Date: {datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}',
    f'- Machine: {machine}; PostgreSQL 15, Kafka 3.9.1 (one KRaft node, 512 MiB heap) and',
    '  ClickHouse of a throwaway `scripts/stack` on the same cores as the measured processes.',
    f'- Load average when the run started: {r["loadavg_at_start"]} (other work on the same machine',
    '  competes with the measured processes; see the CPU rows below)',
    f'- Command: `{command}` (the CDC part is `bench/cdc/run.sh`; Release build in `build-bench`)',
    '',
    f'Throughput: {rows:,} rows committed into `events` in {txn:,}-row transactions before'
    .replace(',', ' '),
    'either reader starts; both read the same WAL through their own pgoutput slot made before',
    'the inserts. The ceiling is `pg_recvlogical --start -o proto_version=1 -o',
    f'publication_names=splitstream --endpos=<END> -f /dev/null` (END = {r["end_lsn"]},',
    f'{f("wal_bytes") / 2**20:.0f} MiB of WAL). Ours is `splitstream cdc --snapshot-mode never`',
    'timed from its start until the slot\'s `confirmed_flush_lsn` >= END (polled every 50 ms),',
    'that is every change encoded as a Debezium event, acknowledged by Kafka (acks=all,',
    'idempotent producer) and confirmed to PostgreSQL.', '',
    '| measure | value | target |', '|---|---|---|',
    f'| ceiling: `pg_recvlogical` pgoutput v1 → /dev/null, rows/s | {n("ceiling_rows_per_s")} ({f("ceiling_seconds"):.2f} s) | |',
    f'| ours: start of `splitstream cdc` → last change confirmed, rows/s | {n("ours_rows_per_s")} ({f("ours_seconds"):.2f} s) | |',
    f'| ours over the ceiling | {ratio:.0%} | ≥ 80 % |',
    f'| ours excluding process start (first change on /metrics → confirmed; start took {f("ours_startup_seconds"):.2f} s), rows/s | {n("ours_streaming_rows_per_s")} ({ratio_streaming:.0%} of the ceiling) | |',
    f'| peak memory of the cdc process (VmHWM) after the 1 M rows / at the end | {f("vmhwm_kb") / 1024:.0f} MiB / {f("final_vmhwm_kb") / 1024:.0f} MiB | |',
    f'| CPU seconds, ceiling: walsender / pg_recvlogical ({per_m("ceiling_walsender_cpu_seconds", "ceiling_client_cpu_seconds")} CPU-s per 1 M rows) | {f("ceiling_walsender_cpu_seconds"):.1f} / {f("ceiling_client_cpu_seconds"):.1f} | |',
    f'| CPU seconds, ours: walsender / cdc / Kafka broker ({per_m("ours_walsender_cpu_seconds", "ours_cdc_cpu_seconds", "ours_kafka_cpu_seconds")} CPU-s per 1 M rows) | {f("ours_walsender_cpu_seconds"):.1f} / {f("ours_cdc_cpu_seconds"):.1f} / {f("ours_kafka_cpu_seconds"):.1f} | |',
    f'| CPU seconds used by every process of the machine during the ceiling / ours (capacity: nproc × wall time) | {f("ceiling_machine_busy_seconds"):.1f} of {cores * f("ceiling_seconds"):.1f} / {f("ours_machine_busy_seconds"):.1f} of {cores * f("ours_seconds"):.1f} | |',
    f'| commit → Kafka append latency at {n("latency_rows_per_s")} rows/s, p50 | {f("commit_to_ack_p50_ms"):.0f} ms | |',
    f'| commit → Kafka append latency, p99 (p99.9, max) | {p99:.0f} ms ({f("commit_to_ack_p999_ms"):.0f}, {f("commit_to_ack_max_ms"):.0f} ms) | < 100 ms |',
    f'| of which commit → event encoded by cdc (envelope `ts_ms`), p50 / p99 | {f("commit_to_encode_p50_ms"):.0f} / {f("commit_to_encode_p99_ms"):.0f} ms | |',
    '',
    f'Latency: `{r["latency_pgbench"]} -f <script>` with {r.get("latency_rows", "?")} rows in',
    f'transactions of {r["latency_txn_rows"]} rows',
    'while cdc streams; per event, the broker\'s append time (the topic is created beforehand',
    'with `message.timestamp.type=LogAppendTime`, so the record timestamp is when the leader',
    'appended it, i.e. just before it acknowledges acks=all on one node) minus `source.ts_ms`',
    '(the commit time PostgreSQL reports). Both clocks are the same machine\'s; the resolution',
    'is 1 ms.',
    '']
if r.get('not_log_append_time', '0') != '0':
    lines += [f'Warning: {r["not_log_append_time"]} records did not carry LogAppendTime.', '']
lines += [
    'Against the targets of this run:', '',
    f'- throughput ≥ 80 % of the pg_recvlogical ceiling: {"met" if ratio >= 0.8 else "NOT met"} ({ratio:.0%})',
    f'- p99 commit → Kafka-ack < 100 ms at 10 000 rows/s: {"met" if p99 < 100 else "NOT met"} ({p99:.0f} ms)',
    '',
    'For comparison (reported by others, not measured by us): Debezium Server ~20 000 events/s',
    'on 16 vCPUs and Sequin ~50 000 events/s. Where the time goes: `bench/cdc/README.md`.', '']
section = '\n'.join(lines)
text = open(doc).read() if os.path.exists(doc) else '# Benchmarks\n'
# Replace an existing CDC section (up to the next "## " heading) or append one.
m = re.search(r'^## CDC\b.*?(?=^## |\Z)', text, flags=re.S | re.M)
if m:
    text = text[:m.start()] + section + ('\n' if m.end() < len(text) else '') + text[m.end():]
else:
    text = text.rstrip('\n') + '\n\n' + section
open(doc, 'w').write(text)
print(section, file=sys.stderr)
PY
