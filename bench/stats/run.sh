#!/usr/bin/env bash
# Builds and runs the statistics validation (docs/statistics.md, "Validation").
# Usage: bench/stats/run.sh [--experiments N]
# Environment: BUILD_DIR (default build-stats-bench). An optimised build without sanitizers:
# the run simulates about 110 000 experiments (about 20 s) and exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${BUILD_DIR:-build-stats-bench}"
mkdir -p "$build"
log="$build/stats_validation_build.log"
if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPLITSTREAM_BUILD_BENCH=ON \
         -DSPLITSTREAM_BUILD_TESTS=OFF &&
       cmake --build "$build" --target stats_validation -j2; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
"$build/bench/stats/stats_validation" "$@"
