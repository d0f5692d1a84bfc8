-- wrk script: POST /v1/events with BATCH events a request, for users already assigned by
-- bench/http/assign.lua (PREFIX..OFFSET .. PREFIX..OFFSET+USERS-1; the first few ids are
-- skipped because wrk may call request() once per thread without sending it).
-- Environment: EXPERIMENT, TOKEN, PREFIX, BATCH (default 1000), USERS (default 1000),
-- OFFSET (default 64).
function init(args)
  local experiment = os.getenv("EXPERIMENT")
  local prefix = os.getenv("PREFIX") or "u"
  local batch = tonumber(os.getenv("BATCH") or "1000")
  local users = tonumber(os.getenv("USERS") or "1000")
  local offset = tonumber(os.getenv("OFFSET") or "64")
  local parts = {}
  for i = 0, batch - 1 do
    parts[#parts + 1] = '{"experiment":"' .. experiment .. '","user_id":"' .. prefix ..
        (offset + i % users) .. '","type":"purchase","value":' .. (i % 97) ..
        ',"properties":{"plan":"pro","page":' .. (i % 13) .. '}}'
  end
  -- The server gives every event a fresh event_id and the current time: each request
  -- stores BATCH new rows.
  wrk.method = "POST"
  wrk.path = "/v1/events"
  wrk.body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
  batch_size = batch
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read +
              summary.errors.write + summary.errors.timeout
  local batch = tonumber(os.getenv("BATCH") or "1000")
  local ok = summary.requests - bad
  io.write(string.format("events_requests=%d\n", summary.requests))
  io.write(string.format("events_rows_per_s=%.0f\n", ok * batch / seconds))
  io.write(string.format("events_p50_ms=%.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("events_p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("events_errors=%d\n", bad))
end
