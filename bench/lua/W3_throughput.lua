-- W3 throughput: one producer, one consumer, a buffered channel of 256,
-- 1,000,000 integers. Figure: messages per second.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local N, CAP = 1000000, 256
local ch = goroutine.chan(CAP)

local t0 = B.now()
goroutine.go(function()
  for i = 1, N do ch:send(i) end
  ch:close()
end)
local sum, count = 0, 0
for v in ch:range() do sum = sum + v; count = count + 1 end
local dt = B.now() - t0

B.check(count == N and sum == N * (N + 1) // 2, "got %d values summing to %d", count, sum)
B.report("W3", "msgs_per_s", N / dt, "1/s", { n = N, cap = CAP, seconds = dt })
