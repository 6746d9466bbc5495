-- select: the main goroutine selects over receives from two producers and
-- sends each value on to a consumer with a select send case; every value
-- arrives once.
local goroutine = require "goroutine"

local a, b, out, done = goroutine.chan(), goroutine.chan(2), goroutine.chan(), goroutine.chan()
go(function(a) for i = 1, 6 do a:send("a" .. i) end a:close() end, a)
go(function(b) for i = 1, 6 do b:send("b" .. i) end b:close() end, b)
go(function(out, done)
  local seen, count = {}, 0
  while true do
    local v, ok = out:recv()
    if not ok then break end
    assert(v:match("^[ab][1-6]$"), "received a value never sent: " .. v)
    assert(not seen[v], "received twice: " .. v)
    seen[v], count = true, count + 1
  end
  done:send(count)
end, out, done)

while a or b do
  local i, v, ok = goroutine.select { { recv = a }, { recv = b } }
  if ok then
    goroutine.select { { send = out, value = v } }
  elseif i == 1 then a = nil else b = nil end
end
out:close()
local i, n = goroutine.select { { recv = done }, default = true }
if i == nil then n = done:recv() end
assert(n == 12, "lost values: " .. tostring(n))
print("ok", n)
