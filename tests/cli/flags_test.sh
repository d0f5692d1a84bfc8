#!/usr/bin/env bash
# Bad command-line values are refused before anything starts: each invocation below must exit
# non-zero at once and name the flag (or the rule) it broke. No server is needed: the
# environment points at ports where nothing listens, so a value that slipped through would
# fail later with a connection error instead of the expected message.
#   tests/cli/flags_test.sh PATH/TO/splitstream
set -uo pipefail
bin=${1:?usage: flags_test.sh PATH/TO/splitstream}
export SPLITSTREAM_PG_DSN='host=127.0.0.1 port=1 dbname=none user=none connect_timeout=1'
export SPLITSTREAM_CLICKHOUSE_URL='http://127.0.0.1:1'
export SPLITSTREAM_KAFKA_BROKERS='127.0.0.1:1'
export SPLITSTREAM_ADMIN_TOKEN=a SPLITSTREAM_CLIENT_TOKEN=b
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
passed=0 failed=0

# expect_refused "what the message must contain" args...
expect_refused() {
  local want=$1 out code
  shift
  out=$(timeout 20 "$bin" "$@" 2>&1)
  code=$?
  if ((code != 0 && code != 124)) && [[ $out == *"$want"* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: splitstream $* exited $code; expected a refusal mentioning \"$want\", got:"
    echo "$out" | head -5
  fi
}

expect_refused "--slot-wait-ms: Value -5 not in range" cdc --slot-wait-ms -5
expect_refused "--heartbeat-interval-ms: Value -1 not in range" cdc --heartbeat-interval-ms -1
expect_refused "--max-in-flight: Value 0 not in range" cdc --max-in-flight 0
expect_refused "--snapshot-mode: sometimes not in" cdc --snapshot-mode sometimes
expect_refused "--batch-rows: Value 0 not in range" sink --batch-rows 0
expect_refused "--batch-bytes: Value 10 not in range" sink --batch-bytes 10
expect_refused "--flush-ms: Value 0 not in range" sink --flush-ms 0
expect_refused "--catch-up-flush-ms: Value -1 not in range" sink --catch-up-flush-ms -1
expect_refused "--max-batch-rows: Value 0 not in range" sink --max-batch-rows 0
expect_refused "--shutdown-timeout-ms: Value 5 not in range" sink --shutdown-timeout-ms 5
expect_refused "--reset-offsets (earliest or a time): expected a timestamp like" sink --reset-offsets yesterday
expect_refused "no such day in that month" sink --reset-offsets 2026-02-30
expect_refused "--shutdown-timeout-ms: Value -1 not in range" serve --shutdown-timeout-ms -1
expect_refused "--format: xml not in" results checkout --format xml
expect_refused "--months-ahead and --retention-months must be >= 0" migrate --months-ahead -1
expect_refused "http_blocking_threads must be between 1 and 1000" serve --http-blocking-threads 0
expect_refused "users >= 1" loadgen --users 0
expect_refused "treatment -0.4 = base rate x (1 + lift)" loadgen --base-rate 0.1 --lift -5
expect_refused "--cuped-hours: Value -5 not in range" results checkout --cuped-hours -5
expect_refused "The following argument was not expected: --no-such-flag" serve --no-such-flag
expect_refused "log_level must be one of trace, debug, info, warn, error, critical, off; got \"verbose\"" \
  --log-level verbose serve
expect_refused "results_intervals must be fixed or sequential" serve --results-intervals always

# At debug level a command logs the configuration it resolved, secrets hidden. It then fails to
# reach PostgreSQL (port 1), which is not what is checked here.
out=$(SPLITSTREAM_ADMIN_TOKEN=admin-secret-4711 SPLITSTREAM_CLIENT_TOKEN=client-secret-4712 \
  SPLITSTREAM_PG_DSN='host=127.0.0.1 port=1 dbname=none user=none password=pg-secret-4713 connect_timeout=1' \
  timeout 20 "$bin" --log-level debug results checkout 2>&1)
if [[ $out == *"configuration (secrets hidden)"* && $out == *"results_intervals = fixed"* &&
  $out == *"admin_token = ***"* && $out != *secret-471* ]]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAIL: --log-level debug did not log the configuration with its secrets hidden:"
  echo "$out" | head -20
fi

echo "flags_test: $passed passed, $failed failed"
((failed == 0))
