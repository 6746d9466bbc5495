-- rate_limiter.lua — serve requests at most one per tick (goroutine.tick),
-- then a limiter that allows bursts: a buffered channel of tokens that a
-- ticker refills.
--
-- goroutine.tick(s) is a channel that receives the time every s seconds.
-- Its capacity is 1: ticks that nobody takes in time are dropped, not
-- queued, so a slow server never gets a burst of stale ticks. Closing the
-- channel stops the ticker. A tick never comes early, so the lower bounds
-- printed below hold on any machine.
local goroutine = require "goroutine"

local PERIOD = 0.02
local requests = goroutine.chan(5)
for i = 1, 5 do requests:send(i) end
requests:close()

-- 1. Steady: each request waits for the next tick.
local t0 = goroutine.now()                  -- before the ticker starts
local ticker = goroutine.tick(PERIOD)
for req in requests:range() do
  ticker:recv()                             -- one request per tick
  print("request " .. req)
end
ticker:close()                              -- stop the ticker
local elapsed = goroutine.now() - t0
print("5 requests took at least 5 ticks: " .. tostring(elapsed >= 5 * PERIOD - 1e-9))

-- 2. Bursty: up to 3 requests at once, then one per tick. A goroutine
-- moves ticks into the token bucket; when the bucket is full the tick is
-- dropped (a non-blocking send: select with default).
local bucket = goroutine.chan(3)
for _ = 1, 3 do bucket:send(true) end       -- start full: a burst of 3
t0 = goroutine.now()
local refill = goroutine.tick(PERIOD)
local refiller_done = goroutine.chan()
goroutine.go(function(ticks, b, d)
  for _ in ticks:range() do                 -- until refill is closed
    goroutine.select { { send = b, value = true }, default = true }
  end
  d:close()
end, refill, bucket, refiller_done)

for req = 1, 6 do
  bucket:recv()                             -- take a token
  print("bursty request " .. req)
end
elapsed = goroutine.now() - t0
refill:close()
refiller_done:recv()                        -- the refiller has stopped
-- Requests 1-3 used the initial tokens; 4-6 each waited for a tick.
print("6 requests took at least 3 ticks: " .. tostring(elapsed >= 3 * PERIOD - 1e-9))
