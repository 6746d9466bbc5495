-- spec/soak/soak.lua — the soak test: many goroutines and channel
-- operations over minutes, every sum checked exactly, and memory that does
-- not grow.  Run by `make soak` under goroutine-lua with 4 worker threads
-- (GOROUTINE_MAXPROCS=4).  It lives in spec/ because it is a test (it
-- passes or fails), not a measurement: bench/ holds timings.
--
-- The work comes in waves.  A wave spawns WAVE goroutines; goroutine i
-- sends the values i*K+1 .. i*K+K into relay channel i % RELAYS, by plain
-- sends and by select with a timeout case (goroutine.after), one in 100
-- after a goroutine.sleep.  RELAYS long-lived relay goroutines, one per
-- relay channel, move each value on to the sink channel, in a select that
-- also serves a goroutine.tick; main receives every value from the sink.
-- All of goroutine i's values pass through one relay, so per-channel FIFO
-- order brings them to main in the order i sent them.  A value counts as 4
-- channel operations (its send and receive on its relay channel, its send
-- and receive on sink).  After each wave main checks the number and the sum
-- of the values received, each goroutine's order, that no select timed
-- out and no sleep was short, and that the goroutine count is back where
-- it was.  At the end: what the relays moved, and that no ticker ticked
-- more often than its period allows.
--
-- The run is driven by counts, with the time as a budget: the targets are
-- 1,000,000 goroutines and 10,000,000 channel operations per 10 minutes
-- of SOAK_MINUTES (SOAK_MINUTES=2: 200,000 and 2,000,000).  The soak stops
-- when both are reached; if SOAK_MINUTES runs out first it stops after the
-- wave in progress, and the count check fails.
--
-- Memory: resident set size (VmRSS of /proc/self/status), after a full
-- garbage collection, after the first wave and at the end; the end may
-- exceed the first wave by at most 10%.  make soak sets MALLOC_ARENA_MAX=1
-- (see the Makefile): glibc's per-thread arenas would otherwise let RSS
-- creep toward (threads x peak) with no leak at all.
--
-- Output: one line per wave, the figures, then "N passed, N failed" (one
-- check per wave, and the final checks).

-- The goroutine functions use the global `goroutine` (goroutine-lua sets it
-- in every goroutine): an upvalue would copy the module into each one.
assert(goroutine, "run spec/soak/soak.lua under goroutine-lua")

local MINUTES = tonumber(os.getenv("SOAK_MINUTES") or "10") or 10
local BUDGET = MINUTES * 60
local WAVE = tonumber(os.getenv("SOAK_WAVE") or "10000")
local K = 3                        -- values per goroutine
local RELAYS = 8
local TARGET_G = math.floor(1000000 * MINUTES / 10)
local TARGET_OPS = math.floor(10000000 * MINUTES / 10)
local MAX_DRIFT = 0.10

local passed, failed = 0, 0
local function check(ok, what)
  if ok then passed = passed + 1 else failed = failed + 1; print("FAILED: " .. what) end
  return ok
end

local function rss_kb()
  collectgarbage(); collectgarbage()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- ---------------------------------------------------------- the relays
-- Each relay moves values from 'relay' to 'sink' until 'relay' is closed;
-- its select also takes the ticks of its own ticker.  It reports how many
-- values it moved, their sum and the ticks it saw.
local relays = {}
local sink = goroutine.chan(256)
local reports = goroutine.chan(RELAYS)
local TICK = 0.05

for r = 1, RELAYS do
  relays[r] = goroutine.chan(64)
  goroutine.go(function(inp, out, rep, period)
    local ticker = goroutine.tick(period)
    local started = goroutine.now()
    local moved, sum, ticks, open = 0, 0, 0, true
    while open do
      goroutine.select {
        { recv = inp, function(v, ok)
            if not ok then open = false; return end
            out:send(v)
            moved = moved + 1
            sum = sum + v[2]
          end },
        { recv = ticker, function() ticks = ticks + 1 end },
      }
    end
    ticker:close()
    rep:send({ moved = moved, sum = sum, ticks = ticks, elapsed = goroutine.now() - started, period = period })
  end, relays[r], sink, reports, TICK * r)
end

-- ------------------------------------------------------------ a wave
-- Goroutine i of a wave sends {i, v} for v = i*K+1 .. i*K+K.  One in 100
-- sleeps first (and checks it slept at least that long); one in 3 sends by
-- select with an after() timeout (a timeout is a failure: the relays are
-- always draining).
local function wave_goroutine(out, wg, bad, i, k)
  if i % 100 == 0 then
    local t0 = goroutine.now()
    goroutine.sleep(0.001)
    if goroutine.now() - t0 < 0.001 then bad:add(1) end
  end
  for v = i * k + 1, i * k + k do
    if i % 3 == 0 then
      local timeout = goroutine.after(60)
      local r = goroutine.select {
        { send = out, value = { i, v } },
        { recv = timeout },
      }
      if r ~= 1 then bad:add(1) end
      timeout:close()
    else
      out:send({ i, v })
    end
  end
  wg:done()
end

local function run_wave(w, first_id)
  local wg, bad = goroutine.waitgroup(), goroutine.atomic()
  wg:add(WAVE)
  local base = goroutine.count()
  for n = 1, WAVE do
    local i = first_id + n
    goroutine.go(wave_goroutine, relays[i % RELAYS + 1], wg, bad, i, K)
  end
  -- receive every value; check count, sum and per-goroutine order
  local count, sum, disorder = 0, 0, 0
  local last = {}
  for _ = 1, WAVE * K do
    local m = sink:recv()
    local i, v = m[1], m[2]
    count = count + 1
    sum = sum + v
    if (last[i] or i * K) ~= v - 1 then disorder = disorder + 1 end
    last[i] = v
  end
  wg:wait()
  -- the goroutines have called done; let them finish returning
  local deadline = goroutine.now() + 30
  while goroutine.count() > base and goroutine.now() < deadline do goroutine.yield() end
  local lo, hi = first_id + 1, first_id + WAVE
  -- sum over i in lo..hi of (i*K+1 + ... + i*K+K) = K^2 * sum(i) + WAVE*K*(K+1)/2
  local expected = K * K * ((lo + hi) * WAVE // 2) + WAVE * (K * (K + 1) // 2)
  return check(count == WAVE * K and sum == expected and disorder == 0
               and bad:load() == 0 and goroutine.count() <= base,
    string.format("wave %d: %d values (want %d), sum %d (want %d), %d out of order, %d timer/select faults, %d goroutines (want <= %d)",
      w, count, WAVE * K, sum, expected, disorder, bad:load(), goroutine.count(), base))
end

-- ------------------------------------------------------------- the run
local t0 = goroutine.now()
print(string.format("soak: %d worker threads, budget %.1f min, targets %d goroutines and %d channel ops (waves of %d)",
  goroutine.maxprocs(), MINUTES, TARGET_G, TARGET_OPS, WAVE))
local spawned, ops, w = 0, 0, 0
local rss_first, rss_end
local why
while true do
  w = w + 1
  local ok = run_wave(w, spawned)
  spawned = spawned + WAVE
  ops = ops + WAVE * K * 4
  local rss = rss_kb()
  if w == 1 then rss_first = rss end
  print(string.format("wave %d: %s  %d goroutines, %d chan ops, rss %.1f MB (%+.1f%%), %.1f s",
    w, ok and "ok" or "FAILED", spawned, ops, rss / 1024, (rss - rss_first) * 100 / rss_first, goroutine.now() - t0))
  io.stdout:flush()
  if spawned >= TARGET_G and ops >= TARGET_OPS then why = "counts reached"; break end
  if goroutine.now() - t0 >= BUDGET then why = "time budget spent"; break end
end

-- stop the relays and check what they moved
for r = 1, RELAYS do relays[r]:close() end
local moved, msum, ticks_ok = 0, 0, true
for _ = 1, RELAYS do
  local r = reports:recv()
  moved = moved + r.moved
  msum = msum + r.sum
  -- a ticker drops ticks a slow receiver misses, never makes extra ones
  if r.ticks > r.elapsed / r.period + 1 then ticks_ok = false end
end
local total_values = spawned * K
local total_sum = K * K * (spawned * (spawned + 1) // 2) + spawned * (K * (K + 1) // 2)
check(moved == total_values and msum == total_sum,
  string.format("relays moved %d values (want %d), sum %d (want %d)", moved, total_values, msum, total_sum))
check(ticks_ok, "a ticker delivered more ticks than its period allows")
check(spawned >= TARGET_G and ops >= TARGET_OPS,
  string.format("reached %d goroutines and %d chan ops of %d and %d before the budget", spawned, ops, TARGET_G, TARGET_OPS))
check(w >= 2, "at least two waves (the memory check compares the first with the end)")

rss_end = rss_kb()
local drift = (rss_end - rss_first) / rss_first
check(drift <= MAX_DRIFT, string.format("RSS grew %.1f%% (limit %.0f%%)", drift * 100, MAX_DRIFT * 100))

print(string.format("soak: stopped: %s after %.1f s; %d goroutines spawned, %d channel ops, %d waves",
  why, goroutine.now() - t0, spawned, ops, w))
print(string.format("soak: RSS after the first wave %.1f MB, at the end %.1f MB, drift %+.1f%%",
  rss_first / 1024, rss_end / 1024, drift * 100))
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
