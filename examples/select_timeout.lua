-- select_timeout.lua — wait for a channel, but not forever: select on it and
-- on goroutine.after. Also a non-blocking receive (default) and one deadline
-- for a whole loop.
--
-- goroutine.after(s) is a channel that receives the time once, s seconds
-- from now; a select with it as a case gives up when it fires. A server
-- that never answers shows the timeout; one that answers at once shows the
-- reply winning. Neither depends on how fast the machine is.
local goroutine = require "goroutine"

-- Ask a server: it answers 'answer', or never when 'answer' is nil. The
-- reply channel is buffered, so a server answering after the asker gave up
-- is not left blocked.
local function ask(answer, timeout)
  local reply = goroutine.chan(1)
  goroutine.go(function(r, a)
    if a == nil then goroutine.select {} end   -- a stuck server: blocks forever
    r:send(a)
  end, reply, answer)
  return goroutine.select {
    { recv = reply, function(v) return "reply: " .. v end },
    { recv = goroutine.after(timeout), function() return ("timed out after %gs"):format(timeout) end },
  }
end

print(ask("pong", 10))          -- the reply comes first
print(ask(nil, 0.05))           -- nobody answers: the timeout fires

-- Non-blocking receive: default runs when no case is ready.
local inbox = goroutine.chan(1)
local function check()
  return goroutine.select {
    { recv = inbox, function(msg) return "message: " .. msg end },
    default = function() return "no message" end,
  }
end
print(check())
inbox:send("hello")
print(check())

-- One deadline for a whole loop: the after channel is made once, before
-- the loop. The producer sends three values, then stalls.
local values = goroutine.chan()
goroutine.go(function(v)
  for i = 1, 3 do v:send(i * 10) end
  goroutine.select {}                       -- stalls, never closing values
end, values)

local deadline = goroutine.after(0.2)
local got = {}
while true do
  local more = goroutine.select {
    { recv = values, function(v) got[#got + 1] = v; return true end },
    { recv = deadline, function() return false end },
  }
  if not more then break end
end
print("before the deadline: " .. table.concat(got, " "))
