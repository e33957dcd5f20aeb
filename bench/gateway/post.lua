-- SPDX-License-Identifier: Apache-2.0
-- wrk script: each request submits a new referral (unique id per thread and request) to
-- signpost-gateway's JSON route. SIGNPOST_BENCH_DELAY_MS paces each connection (0: flat out);
-- SIGNPOST_BENCH_PREFIX keeps runs apart.
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  n = 0
  prefix = os.getenv("SIGNPOST_BENCH_PREFIX") or "bench"
  pause = tonumber(os.getenv("SIGNPOST_BENCH_DELAY_MS") or "0")
  wrk.method = "POST"
  wrk.path = "/v1/referrals"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer demo-gp-token"
end

function request()
  n = n + 1
  local id = prefix .. "-" .. tid .. "-" .. n
  local body = '{"referral_id":"' .. id .. '","client_ref":"c-' .. id ..
    '","source":"SOURCE_GP_PRACTICE","needs":[{"code":"food"}],"urgency":"URGENCY_ROUTINE",' ..
    '"postcode_outward":"BA2","birth_year":1948,"consent":["CONSENT_SCOPE_SHARE_WITH_PODS"]}'
  return wrk.format(nil, nil, nil, body)
end

function delay()
  return pause
end

function done(summary, latency, requests)
  io.write(string.format("summary: %d requests in %.2f s = %.0f/s, errors %d, non-2xx %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
  io.write(string.format("latency_ms: p50 %.2f p90 %.2f p99 %.2f p999 %.2f max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
