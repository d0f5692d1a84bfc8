-- wrk script: POST /v1/assign with a different user id on every request.
-- Environment: EXPERIMENT (key), TOKEN (client token), PREFIX (user id prefix, default "u"),
-- RETURNING (optional: cycle over the first RETURNING user ids, users already assigned, and
-- report as returning_assign_*).
-- User ids are PREFIX..n with n = thread_index + threads * k, so the first threads*k users
-- are all assigned after k requests per thread (bench/http/events.lua relies on that).
local next_tid = 0
local counter = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  experiment = os.getenv("EXPERIMENT")
  prefix = os.getenv("PREFIX") or "u"
  nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  returning = tonumber(os.getenv("RETURNING") or "0")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
  -- The request line and the headers (wrk has set Host) are formatted once: request() only
  -- adds the Content-Length and the body. wrk.format on every request (a table, a
  -- string.format per header, a concat) costs the load client, which shares the cores with
  -- the server and PostgreSQL, more CPU than necessary; the bytes sent are the same.
  local lines = {"POST /v1/assign HTTP/1.1"}
  for name, value in pairs(wrk.headers) do
    if name ~= "Content-Length" then lines[#lines + 1] = name .. ": " .. value end
  end
  head = table.concat(lines, "\r\n") .. "\r\nContent-Length: "
  body_start = '{"user_id":"' .. prefix
  body_end = '","experiment":"' .. experiment .. '"}'
  body_fixed = #body_start + #body_end
end

function request()
  -- Modulo: the thread numbering seen here has started at 1 on some wrk builds.
  local n = (tid % nthreads) + nthreads * counter
  counter = counter + 1
  if returning > 0 then n = n % returning end
  local id = string.format("%d", n)
  return head .. (body_fixed + #id) .. "\r\n\r\n" .. body_start .. id .. body_end
end

function done(summary, latency, requests)
  local key = "assign"
  if tonumber(os.getenv("RETURNING") or "0") > 0 then key = "returning_assign" end
  local seconds = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read +
              summary.errors.write + summary.errors.timeout
  io.write(string.format(key .. "_requests=%d\n", summary.requests))
  io.write(string.format(key .. "_rps=%.0f\n", summary.requests / seconds))
  io.write(string.format(key .. "_p50_ms=%.3f\n", latency:percentile(50) / 1000))
  io.write(string.format(key .. "_p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format(key .. "_errors=%d\n", bad))
end
