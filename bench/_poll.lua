-- wrk script of the poll benchmark: GET /agent/job/{id} with one X-API-Key, the id
-- drawn at random from a file of that key's job ids.
-- Usage: wrk ... -s _poll.lua URL -- IDS_FILE API_KEY SEED
-- At the end it prints one line "BENCH {json}" for bench/poll.py to parse.

local ids = {}
local headers = {}

function init(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  headers["X-API-Key"] = args[2]
  math.randomseed(tonumber(args[3]))
end

function request()
  return wrk.format("GET", "/agent/job/" .. ids[math.random(#ids)], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
