-- W6 fan-in: 100 producers x 10,000 integers into one buffered channel of
-- 256; main receives and sums all 1,000,000. Figure: messages per second.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local P, M, CAP = 100, 10000, 256
local N = P * M
local ch = goroutine.chan(CAP)

local t0 = B.now()
for p = 0, P - 1 do
  goroutine.go(function(base)
    for i = base + 1, base + M do ch:send(i) end
  end, p * M)
end
local sum = 0
for _ = 1, N do sum = sum + ch:recv() end
local dt = B.now() - t0

B.check(sum == N * (N + 1) // 2, "sum is %d, want %d", sum, N * (N + 1) // 2)
B.report("W6", "msgs_per_s", N / dt, "1/s",
  { n = N, producers = P, cap = CAP, seconds = dt })
