#!/usr/bin/env bash
# Builds results_bench (Release) and runs it against the ClickHouse of SPLITSTREAM_CLICKHOUSE_URL
# (default: the local stack, scripts/stack env). Arguments go to results_bench, except
# --doc FILE, which also writes (replaces) the "## Results" section of FILE (e.g.
# docs/benchmarks.md) with this run's figures and leaves every other section alone:
#   bench/results/run.sh --users 1000000 --events 10000000 --runs 3 --keep --doc docs/benchmarks.md
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
doc=""
args=()
while [[ $# -gt 0 ]]; do
  if [[ $1 == --doc ]]; then
    doc=${2:?--doc needs a file}
    shift 2
  else
    args+=("$1")
    shift
  fi
done
if [[ -z "${SPLITSTREAM_CLICKHOUSE_URL:-}" ]]; then eval "$("$root/scripts/stack" env)"; fi
[[ -f "$build/CMakeCache.txt" ]] || cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPLITSTREAM_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target results_bench
out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
  echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "ClickHouse: $(curl -s "$SPLITSTREAM_CLICKHOUSE_URL/?query=SELECT%20version()")"
  "$build/bench/results/results_bench" "${args[@]}"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
[[ -z $doc ]] && exit 0
python3 - "$out" "$doc" "BUILD_DIR=${build#"$root"/} bench/results/run.sh ${args[*]} --doc $doc" <<'PY'
import os, re, sys
out, doc, command = sys.argv[1], sys.argv[2], sys.argv[3]
text_out = open(out).read()
def find(pattern, default='?'):
    m = re.search(pattern, text_out, flags=re.M)
    return m.group(1) if m else default
machine = find(r'^machine: (.*)$')
version = find(r'^ClickHouse: (.*)$')
load_after = find(r'^load after: (.*)$')
final = find(r'^results \(FINAL, .*round trips\): median ([0-9.]+) s')
trips = find(r'^results \(FINAL, .*CUPED on, (\d+) round trips\)')
argmax = find(r'^results \(argMax, .*: median ([0-9.]+) s')
bare = find(r'^bare aggregation .*: median ([0-9.]+) s')
build = find(r'^state build .*: ([0-9.]+) s$')
build_events = find(r'^state build \(first request: (\d+) events')
build_users = find(r'^state build .* events, (\d+) users kept')
build_mb = find(r'^state build .* users kept, (\d+) MB\)')
refresh = find(r'^state refresh .*: median ([0-9.]+) s')
refresh_trips = find(r'^state refresh .*, (\d+) round trips\)')
agree = find(r'^state against the query after the refreshes: (.*)$')
rows = find(r'^bare aggregation .*no dedup, (\d+) rows\)')
users = find(r'--users (\d+)', '1000000') if '--users' in command else '1000000'
runs = re.search(r'--runs (\d+)', command)
met = refresh != '?' and float(refresh) < 1.0
lines = [
    f'## Results (`ResultsEngine::Compute`, target < 1 s for 1 M users / 10 M events) — target {"met" if met else "NOT met"} by the incremental engine\'s requests after the first',
    '',
    f'`{command}` (Release) against a throwaway',
    f'stack\'s ClickHouse {version}: {int(users):,} users (half per variant, every 17th with a superseded',
    f'older assignment) and {int(rows):,} events generated with `INSERT ... SELECT FROM numbers()`, an',
    'experiment with 6 metrics (conversion with a 48 h window, mean, count, ratio, p50, p95), CUPED',
    f'on (14-day pre-period), medians of {runs.group(1) if runs else 3} runs. Machine: {machine}, after: {load_after}',
    '(the 2 cores are shared with other builds; ClickHouse runs this query shape on one core).',
    '',
    '| what | median |',
    '|---|---|',
    f'| **results, incremental engine (the default), a request after 10 000 new events, 100 updated, 100 deleted and 1 000 newly exposed users ({refresh_trips} round trips)** | **{refresh} s** |',
    f'| results, incremental engine, the first request: its state built ({build_events} event keys, {build_users} users, about {build_mb} MB) | {build} s |',
    f'| results, the query (`incremental = false`), FINAL deduplication ({trips} round trip{"s" if trips != "1" else ""}) | {final} s |',
    f'| results, the query, argMax deduplication (same query shape) | {argmax} s |',
    f'| bare aggregation in the same run: `count(), avg(value), quantiles(0.5, 0.95)(value)` by variant, no dedup | {bare} s |',
    '',
    f'After the refreshes, the state\'s figures against the query\'s on the same data: {agree} (the',
    'benchmark fails above 1e-9; the sums of non-integer values are added in another order).',
    '',
    'Where the query\'s time goes (server CPU seconds of the pieces, replayed by hand on the same data):',
    '`events FINAL` alone 1.2-1.4 s (0.35 s without FINAL: the merge is single-threaded in 18.16);',
    'the join onto the exposures +0.6 s; grouping 10 M joined rows per user with one aggregate',
    '+0.8 s and about +0.2 s for every further per-user aggregate (a random access into a 1 M-entry',
    'hash table per row and aggregate; the benchmark\'s metrics need 9); sorting the quantile',
    'values (2 × 3 M) 0.9 s; exposure counts and freshness 0.25 s. Before (2 round trips, both',
    'paying FINAL + join + grouping) and after, interleaved on the same data: 8.8 s and 6.6 s',
    '(medians of 3; 8.9 s and 6.7 s of ClickHouse server CPU, which the load does not inflate).',
    'Measured and dropped: K = 2, 4 slices of `events FINAL` by a key hash `UNION ALL`-ed',
    '(slower: every slice reads and decompresses all rows, and the 2 cores are busy), per-user',
    '`sumForEach` of one array, per-user `groupArray`s, integer event-type codes, a fixed 1001-level',
    '`quantilesExact` grid with bracketing (slower than the sort). Details and the query:',
    '`libs/results/README.md`.',
    '']
section = '\n'.join(lines)
text = open(doc).read() if os.path.exists(doc) else '# Benchmarks\n'
# Replace an existing Results section (up to the next "## " heading) or append one.
m = re.search(r'^## Results\b.*?(?=^## |\Z)', text, flags=re.S | re.M)
if m:
    text = text[:m.start()] + section + ('\n' if m.end() < len(text) else '') + text[m.end():]
else:
    text = text.rstrip('\n') + '\n\n' + section
open(doc, 'w').write(text)
PY
