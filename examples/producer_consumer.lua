-- producer_consumer.lua — a buffered channel between a producer and a
-- consumer; close says "no more", range drains what is left.
local goroutine = require "goroutine"

local queue = goroutine.chan(4)           -- the producer may run up to 4 items ahead
local done = goroutine.chan()

goroutine.go(function()                   -- producer
  for i = 1, 10 do
    queue:send(i * i)                     -- blocks only while the buffer is full
  end
  queue:close()                           -- no more values; buffered ones still arrive
end)

goroutine.go(function()                   -- consumer
  local items, sum = {}, 0
  for v in queue:range() do               -- ends once queue is closed AND drained
    items[#items + 1] = v
    sum = sum + v
  end
  done:send { items = items, sum = sum }  -- a table crosses as a copy
end)

local report = done:recv()
-- One sender, so values arrive in the order they were sent.
print("received: " .. table.concat(report.items, " "))
print("sum:      " .. report.sum)

-- A closed, drained channel: recv returns nil, false; send raises.
local v, ok = queue:recv()
print("after close: recv -> " .. tostring(v) .. ", " .. tostring(ok))
local sent, err = pcall(queue.send, queue, 1)
print("after close: send -> " .. tostring(sent) .. ", "
      .. (err:match("send on closed channel") or err))
print("capacity " .. queue:cap() .. ", buffered " .. queue:len())
