-- W7 skynet: every goroutine spawns 10 children down 6 levels (1,000,000
-- leaves, 1,111,111 goroutines); leaves send their number up an unbuffered
-- channel, parents sum. Figure: seconds, peak RSS.
-- BENCH_W7_LEAVES (a power of 10, default 1000000) runs it smaller.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local LEAVES = math.tointeger(tonumber(os.getenv("BENCH_W7_LEAVES") or "1000000"))
local DIV = 10
do
  local n = LEAVES
  while n and n > 1 and n % DIV == 0 do n = n // DIV end
  B.check(n == 1, "BENCH_W7_LEAVES must be a power of 10, not %s", tostring(LEAVES))
end

local function skynet(c, num, size, div)
  if size == 1 then
    c:send(num)
    return
  end
  local rc = goroutine.chan()
  local step = size // div
  for i = 0, div - 1 do
    goroutine.go(skynet, rc, num + i * step, step, div)
  end
  local sum = 0
  for _ = 1, div do sum = sum + rc:recv() end
  c:send(sum)
end

local t0 = B.now()
local c = goroutine.chan()
goroutine.go(skynet, c, 0, LEAVES, DIV)
local sum = c:recv()
local dt = B.now() - t0

local want = LEAVES * (LEAVES - 1) // 2
B.check(sum == want, "sum is %d, want %d", sum, want)
B.report("W7", "seconds", dt, "s", { leaves = LEAVES })
