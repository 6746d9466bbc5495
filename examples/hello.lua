-- hello.lua — three goroutines and a channel: the first example of the README.
--
-- Each goroutine is its own Lua state. It gets a copy of the function and of
-- what the function captures (here `name`); the channel crosses by reference,
-- so all of them send on the same one.
local goroutine = require "goroutine"

local greetings = goroutine.chan()        -- unbuffered: send waits for a receiver

for _, name in ipairs { "Ada", "Grace", "Ken" } do
  goroutine.go(function()
    greetings:send("hello, " .. name)
  end)
end

local got = {}
for i = 1, 3 do
  got[i] = greetings:recv()               -- blocks until some goroutine sends
end
table.sort(got)                           -- arrival order depends on scheduling
print(table.concat(got, "\n"))
