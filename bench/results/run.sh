#!/usr/bin/env bash
# Builds results_bench (Release) and runs it against the ClickHouse of SPLITSTREAM_CLICKHOUSE_URL
# (default: the local stack, scripts/stack env). Extra arguments go to results_bench, e.g.
#   bench/results/run.sh --users 1000000 --events 10000000 --runs 3
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
if [[ -z "${SPLITSTREAM_CLICKHOUSE_URL:-}" ]]; then eval "$("$root/scripts/stack" env)"; fi
[[ -f "$build/CMakeCache.txt" ]] || cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPLITSTREAM_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target results_bench
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ClickHouse: $(curl -s "$SPLITSTREAM_CLICKHOUSE_URL/?query=SELECT%20version()")"
"$build/bench/results/results_bench" "$@"
