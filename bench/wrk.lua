-- Requests for wrk from a file written by bench/wrk.py: each record is a line "METHOD PATH NHEADERS BODYLEN",
-- NHEADERS header lines, then BODYLEN bytes of body and a newline. Each wrk thread takes every n-th record, so
-- no two threads send the same one; with WRK_ONCE=1 a thread stops once it has had an answer to each of its
-- records (distinct callbacks must not turn into duplicates), otherwise it cycles. A thread that stops early
-- records when (CLOCK_MONOTONIC), so `done` can report the time the requests really took: wrk's own duration is
-- never shorter than -d, which would cap the rate of a server faster than records / duration.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } photobot_timespec;
int clock_gettime(int clk_id, photobot_timespec *tp);
]]
local function now_us()
  local ts = ffi.new("photobot_timespec")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  once = os.getenv("WRK_ONCE") == "1"
  local f = assert(io.open(os.getenv("WRK_SPEC"), "rb"))
  reqs = {}
  local i = 0
  while true do
    local line = f:read("*l")
    if not line or line == "" then break end
    local method, path, nh, blen = line:match("^(%S+) (%S+) (%d+) (%d+)$")
    local headers = {}
    for _ = 1, tonumber(nh) do
      local h = f:read("*l")
      local name, value = h:match("^([^:]+): (.*)$")
      headers[name] = value
    end
    local body = nil
    if tonumber(blen) > 0 then body = f:read(tonumber(blen)) end
    f:read("*l")
    if i % nthreads == tid then
      reqs[#reqs + 1] = wrk.format(method, path, headers, body)
    end
    i = i + 1
  end
  f:close()
  idx = 0
  answered = 0
  started_us = now_us()
  stopped_us = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then idx = 1 end
  return reqs[idx]
end

function response(status, headers, body)
  answered = answered + 1
  if once and answered >= #reqs then
    stopped_us = now_us()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  -- every thread stopped early: the span from the first start to the last stop, else wrk's own duration
  local first, last = nil, 0
  for _, t in ipairs(threads) do
    local s, f = tonumber(t:get("started_us")), tonumber(t:get("stopped_us"))
    if not s or not f or f == 0 then last = nil break end
    if not first or s < first then first = s end
    if f > last then last = f end
  end
  local active = summary.duration
  if first and last and last > first and last - first < active then active = last - first end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "active_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "non_2xx_3xx": %d, ' ..
    '"timeouts": %d}\n',
    summary.requests, summary.duration, active, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
