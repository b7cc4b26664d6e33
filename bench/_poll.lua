-- wrk script of the poll benchmark: GET /agent/job/{id} with one X-API-Key, the id
-- drawn at random from a file of that key's job ids.
-- Usage: wrk ... -s _poll.lua URL -- IDS_FILE API_KEY SEED
-- Requests are formatted once in init(), so that wrk spends as little CPU as possible
-- per request and the server, not wrk, is the bottleneck.
-- At the end it prints one line "BENCH {json}" for bench/poll.py to parse.

local requests = {}

function init(args)
  local headers = { ["X-API-Key"] = args[2] }
  for id in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("GET", "/agent/job/" .. id, headers)
  end
  math.randomseed(tonumber(args[3]))
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
