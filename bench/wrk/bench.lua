-- wrk script for scripts/bench.sh. Configured through environment variables:
--   BENCH_PATH     request path (default /orders)
--   BENCH_BODY     fixed JSON body (default {"orderId":1})
--   BENCH_APP_ID   when set, sent as `dapr-app-id` (Dapr's HTTP proxying to that app)
--   BENCH_UNIQUE   when set, every request carries a new order for order-service:
--                  {"orderId":"<prefix>-<thread>-<n>","itemId":"item<k>","quantity":1}, with
--                  BENCH_PREFIX (default w) and BENCH_ITEMS items (default 1), round robin.
-- done() prints one line, `WRK_JSON {...}`, with the counts and latency percentiles in
-- microseconds (p50, p90, p99, p99.9, max), which wrk's own report lacks (no p99.9).

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/orders"
wrk.body = os.getenv("BENCH_BODY") or '{"orderId":1}'
wrk.headers["Content-Type"] = "application/json"
local app_id = os.getenv("BENCH_APP_ID")
if app_id and app_id ~= "" then
  wrk.headers["dapr-app-id"] = app_id
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

if os.getenv("BENCH_UNIQUE") then
  local prefix = os.getenv("BENCH_PREFIX") or "w"
  local items = tonumber(os.getenv("BENCH_ITEMS") or "1")
  local n = 0
  request = function()
    n = n + 1
    local body = string.format('{"orderId":"%s-%d-%d","itemId":"item%d","quantity":1}',
      prefix, tid, n, n % items)
    return wrk.format(nil, nil, nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p99.9":%d,"max":%d}',
      latency.min, latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max),
  }
  io.write("WRK_JSON {" .. table.concat(out, ",") .. "}\n")
end
