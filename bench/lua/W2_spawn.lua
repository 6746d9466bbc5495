-- W2 spawn: 100,000 goroutines each send their index to one unbuffered
-- channel; main sums. Figure: spawns per second (spawning and summing
-- timed together), peak RSS.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local N = 100000
local ch = goroutine.chan()

local t0 = B.now()
for i = 1, N do
  goroutine.go(function(k) ch:send(k) end, i)
end
local sum = 0
for _ = 1, N do sum = sum + ch:recv() end
local dt = B.now() - t0

B.check(sum == N * (N + 1) // 2, "sum is %d, want %d", sum, N * (N + 1) // 2)
B.report("W2", "spawns_per_s", N / dt, "1/s", { n = N, seconds = dt })
