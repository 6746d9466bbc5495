-- goroutines_waitgroup.lua — start N goroutines, wait for all of them.
--
-- Go:
--   var wg sync.WaitGroup
--   for i := 1; i <= n; i++ { wg.Add(1); go func(i int) { defer wg.Done(); work(i) }(i) }
--   wg.Wait()
local goroutine = require "goroutine"

local N = 10
local wg = goroutine.waitgroup()
local results = goroutine.chan(N)         -- room for every result: no send blocks

local function work(n)                    -- 1² + 2² + ... + n²
  local sum = 0
  for k = 1, n do sum = sum + k * k end
  return sum
end

for i = 1, N do
  wg:add(1)                               -- add BEFORE go, never inside the goroutine
  -- go(f, i): f (with its upvalue `work`) and i are copied into the new
  -- goroutine; wg and results are handles and cross by reference.
  goroutine.go(function(n)
    results:send(string.format("%2d -> %3d", n, work(n)))
    wg:done()
  end, i)
end

wg:wait()                                 -- every goroutine has called done
results:close()                           -- nothing more will be sent

local lines = {}
for line in results:range() do lines[#lines + 1] = line end  -- drains the buffer
table.sort(lines)                         -- goroutines finish in any order
for _, line in ipairs(lines) do print(line) end
print(#lines .. " goroutines done")
