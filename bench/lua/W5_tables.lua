-- W5 table messages: 100,000 {id=i, name="item"..i, tags={"a","b","c"},
-- x=1.5} from a producer to a consumer over a buffered channel of 256,
-- every one checked. Figure: messages per second.
local goroutine = require "goroutine"
local B = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local N, CAP = 100000, 256
local ch = goroutine.chan(CAP)

local t0 = B.now()
goroutine.go(function()
  for i = 1, N do
    ch:send { id = i, name = "item" .. i, tags = { "a", "b", "c" }, x = 1.5 }
  end
  ch:close()
end)
local count, bad = 0, 0
for m in ch:range() do
  count = count + 1
  if m.id ~= count or m.name ~= "item" .. count or m.x ~= 1.5 or #m.tags ~= 3
     or m.tags[1] ~= "a" or m.tags[2] ~= "b" or m.tags[3] ~= "c" then
    bad = bad + 1
  end
end
local dt = B.now() - t0

B.check(count == N and bad == 0, "got %d messages, %d wrong", count, bad)
B.report("W5", "msgs_per_s", N / dt, "1/s", { n = N, cap = CAP, seconds = dt })
