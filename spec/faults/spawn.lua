-- spawn: goroutines started (go may fail: caught), each sends one result.
local goroutine = require "goroutine"
local function oom(e)   -- the only error allowed: no memory
  if not tostring(e):find("not enough memory", 1, true) then error(e, 0) end
end

local n = 16
local results = goroutine.chan(n)
local wg = goroutine.waitgroup()
local started = {}
local function worker(i, results, wg)
  results:send(i * i)
  wg:done()
end
for i = 1, n do
  wg:add(1)
  local ok, e = pcall(goroutine.go, worker, i, results, wg)
  if ok then started[i * i] = true else oom(e); wg:done() end
end
wg:wait()
results:close()
local seen, count = {}, 0
while true do
  local v, ok = results:recv()
  if not ok then break end
  assert(started[v], "received a value never sent: " .. tostring(v))
  assert(not seen[v], "received twice: " .. tostring(v))
  seen[v], count = true, count + 1
end
for v in pairs(started) do assert(seen[v], "lost: " .. v) end
print("ok", count)
