-- W2b parked: 10,000 goroutines alive, all blocked on one receive.
-- Figure: (VmRSS after - VmRSS before) / 10,000, in bytes per goroutine.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local N = 10000
local gate = goroutine.chan()
local started, finished = goroutine.waitgroup(), goroutine.waitgroup()

collectgarbage()
local before = B.status_kb("VmRSS")
started:add(N)
finished:add(N)
for _ = 1, N do
  goroutine.go(function()
    started:done()
    gate:recv()            -- every one parks here
    finished:done()
  end)
end
started:wait()
goroutine.sleep(0.2)       -- let the last ones reach their receive
local alive = goroutine.count()
local after = B.status_kb("VmRSS")

gate:close()               -- wake them all; each must finish
finished:wait()

B.check(alive == N + 1, "%d goroutines alive while parked, want %d", alive, N + 1)
local bpg = (after - before) * 1024 / N
B.report("W2b", "bytes_per_goroutine", bpg, "B",
  { n = N, rss_before_kb = before, rss_after_kb = after })
