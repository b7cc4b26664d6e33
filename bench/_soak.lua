-- wrk script of the soak benchmark: one API key submits prompts and polls its jobs.
-- Usage: wrk ... -s _soak.lua URL -- EVERY
-- One request in EVERY is a submit (POST /agent/prompt, four prompts in turn); the others
-- poll one of the last 1,000 jobs this thread created (GET /agent/job/{id}). A thread with
-- no job yet submits. At the end it prints one line "BENCH {json}" for bench/soak.py.

local prompts = {
  "What is the price of ETH?",
  "Swap 10 USDC for ETH on Base",
  "Analyze the top holders of DEGEN",
  "Send 5 USDC to 0x1111111111111111111111111111111111111111",
}
local headers = { ["X-API-Key"] = "bk_soak", ["Content-Type"] = "application/json" }
local submits = {}
local ids = {}
local kept = 0
local next_slot = 1
local sent = 0
local every = 10

function init(args)
  every = tonumber(args[1])
  for i, prompt in ipairs(prompts) do
    submits[i] = wrk.format("POST", "/agent/prompt", headers, '{"prompt": "' .. prompt .. '"}')
  end
end

function request()
  sent = sent + 1
  if kept == 0 or sent % every == 0 then
    return submits[(sent % #submits) + 1]
  end
  return wrk.format("GET", "/agent/job/" .. ids[math.random(kept)], headers)
end

function response(status, headers, body)
  if status == 202 then
    local id = body:match('"jobId":"(job_%w+)"')
    if id then
      ids[next_slot] = id  -- a ring of the last 1,000 ids
      next_slot = next_slot % 1000 + 1
      if kept < 1000 then kept = kept + 1 end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
