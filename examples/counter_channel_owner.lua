-- counter_channel_owner.lua — one goroutine owns the counter; the others
-- send it requests. "Do not communicate by sharing memory; instead, share
-- memory by communicating."
local goroutine = require "goroutine"

local requests = goroutine.chan()

-- The owner: the only goroutine that can see `count`. It handles one
-- request at a time, so no lock is needed.
goroutine.go(function()
  local count = 0
  for req in requests:range() do          -- until requests is closed
    if req.op == "add" then
      count = count + req.n
    elseif req.op == "get" then
      req.reply:send(count)               -- a channel inside a message is still the same channel
    end
  end
end)

local WORKERS, ADDS = 8, 1000
local wg = goroutine.waitgroup()
wg:add(WORKERS)
for _ = 1, WORKERS do
  goroutine.go(function()
    for _ = 1, ADDS do
      requests:send { op = "add", n = 1 } -- the table is copied; the owner gets its own
    end
    wg:done()
  end)
end
wg:wait()       -- every add has been received; the owner applies each before its next receive

-- Ask the owner for the value: send a reply channel along with the request.
local reply = goroutine.chan()
requests:send { op = "get", reply = reply }
print(("count = %d (%d workers x %d adds)"):format(reply:recv(), WORKERS, ADDS))

requests:close()                          -- the owner's range loop ends
