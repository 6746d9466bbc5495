-- timers: sleep, after, tick and a select with a timeout.
local goroutine = require "goroutine"

local results = goroutine.chan(3)
go(function(r) goroutine.sleep(0.002); r:send("slept") end, results)
go(function(r) local t = goroutine.after(0.001); t:recv(); r:send("after") end, results)
go(function(r)
  local tick = goroutine.tick(0.001)
  for _ = 1, 3 do tick:recv() end
  r:send("ticked")
end, results)
local seen = {}
for _ = 1, 3 do
  local v = results:recv()
  assert(v == "slept" or v == "after" or v == "ticked", "received a value never sent")
  assert(not seen[v], "received twice: " .. v)
  seen[v] = true
end
local i = goroutine.select { { recv = results }, { recv = goroutine.after(0.001) } }
assert(i == 2, "a fourth value")
print("ok")
