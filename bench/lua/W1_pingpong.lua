-- W1 ping-pong: one integer bounced between two goroutines over two
-- unbuffered channels, 200,000 round trips. Figure: ns per round trip.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local N = tonumber(os.getenv("W1_N")) or 200000
local ping, pong = goroutine.chan(), goroutine.chan()

local t0 = B.now()
goroutine.go(function()
  for _ = 1, N do pong:send(ping:recv() + 1) end
end)
local x = 0
for _ = 1, N do
  ping:send(x)
  x = pong:recv()
end
local dt = B.now() - t0

B.check(x == N, "ball is %s, want %d", tostring(x), N)
B.report("W1", "ns_per_roundtrip", dt / N * 1e9, "ns", { n = N, seconds = dt })
