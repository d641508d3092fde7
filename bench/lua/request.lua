-- wrk script for the scenarios whose every request is the same (client_credentials, introspection,
-- userinfo, discovery, JWKS, password login). bench/run.py fills these from bench/lib's prepare():
--   BENCH_NAME     scenario name (echoed in the result line)
--   BENCH_METHOD   GET or POST
--   BENCH_BODY     request body (may be empty)
--   BENCH_HEADERS  "Name: value" lines separated by newlines
-- At the end one line "BENCH_RESULT {json}" is printed: requests, rps, latency percentiles (ms)
-- and errors (wrk counts HTTP statuses > 399 under "status").

local name = os.getenv("BENCH_NAME") or "?"
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
end
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local k, v = line:match("^([^:]+):%s*(.*)$")
  if k then
    wrk.headers[k] = v
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local function ms(p) return latency:percentile(p) / 1000 end
  io.write(string.format(
    'BENCH_RESULT {"name":"%s","tool":"wrk","requests":%d,"seconds":%.3f,"rps":%.1f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"errors":%d,"error_kinds":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\n',
    name, summary.requests, secs, summary.requests / secs,
    ms(50), ms(90), ms(99), latency.max / 1000,
    e.connect + e.read + e.write + e.timeout + e.status,
    e.connect, e.read, e.write, e.timeout, e.status))
end
