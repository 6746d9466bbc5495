-- W4 parallel CPU: recursive fib(32) twice in sequence, then twice at once
-- in two goroutines. Figure: speedup (sequential time / parallel time).
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local K, WANT = 32, 2178309

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

local t0 = B.now()
local a, b = fib(K), fib(K)
local seq = B.now() - t0
B.check(a == WANT and b == WANT, "sequential fib(%d) = %d, %d", K, a, b)

local results = goroutine.chan(2)
t0 = B.now()
for _ = 1, 2 do goroutine.go(function() results:send(fib(K)) end) end
a, b = results:recv(), results:recv()
local par = B.now() - t0
B.check(a == WANT and b == WANT, "parallel fib(%d) = %d, %d", K, a, b)

B.report("W4", "speedup", seq / par, "x", { fib = K, seq_s = seq, par_s = par })
