-- W8 select: main selects over 4 unbuffered channels, each fed by its own
-- producer, 1,000,000 messages in all (250,000 a producer).
-- Figure: messages per second.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local P, N = 4, 1000000
local M = N // P
local chans, cases = {}, {}
for p = 1, P do
  chans[p] = goroutine.chan()
  cases[p] = { recv = chans[p] }        -- no handler: select returns index, v, ok
end

local t0 = B.now()
for p = 1, P do
  goroutine.go(function(ch, base)
    for i = base + 1, base + M do ch:send(i) end
  end, chans[p], (p - 1) * M)
end
local sum, per = 0, { 0, 0, 0, 0 }
local select = goroutine.select
for _ = 1, N do
  local idx, v = select(cases)
  sum = sum + v
  per[idx] = per[idx] + 1
end
local dt = B.now() - t0

B.check(sum == N * (N + 1) // 2, "sum is %d, want %d", sum, N * (N + 1) // 2)
for p = 1, P do B.check(per[p] == M, "channel %d delivered %d, want %d", p, per[p], M) end
B.report("W8", "msgs_per_s", N / dt, "1/s", { n = N, producers = P, seconds = dt })
