-- bench/codec/table_messages.lua — the "table messages" workload: 100,000
-- {id=i, name="item"..i, tags={"a","b","c"}, x=1.5} from a producer
-- goroutine to a consumer through a channel of 256, every one checked.
-- Beside it, the yardstick: the same records built, string.pack'ed,
-- string.unpack'ed, rebuilt and checked in one process, no goroutine.
-- Figure: messages per second, best of several runs.
--
--   build/goroutine-lua bench/codec/table_messages.lua [N]
local goroutine = require "goroutine"
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local N = tonumber(arg[1]) or 100000
local CAP = 256

local function check(m, i)
  return m.id == i and m.name == "item" .. i and m.x == 1.5 and #m.tags == 3 and
         m.tags[1] == "a" and m.tags[2] == "b" and m.tags[3] == "c"
end

local function channel_run()
  local ch = goroutine.chan(CAP)
  goroutine.go(function()
    for i = 1, N do
      ch:send { id = i, name = "item" .. i, tags = { "a", "b", "c" }, x = 1.5 }
    end
    ch:close()
  end)
  local count, bad = 0, 0
  for m in ch:range() do
    count = count + 1
    if not check(m, count) then bad = bad + 1 end
  end
  C.check(count == N and bad == 0, "got %d messages, %d wrong", count, bad)
end

local pack, unpack = string.pack, string.unpack
local FMT = "<js1s1s1s1n"

local function pack_run()
  local bad = 0
  for i = 1, N do
    local r = { id = i, name = "item" .. i, tags = { "a", "b", "c" }, x = 1.5 }
    local s = pack(FMT, r.id, r.name, r.tags[1], r.tags[2], r.tags[3], r.x)
    local id, name, a, b, c, x = unpack(FMT, s)
    local m = { id = id, name = name, tags = { a, b, c }, x = x }
    if not check(m, i) then bad = bad + 1 end
  end
  C.check(bad == 0, "%d wrong", bad)
end

local t_chan = C.time(channel_run, 1, 2)
local t_pack = C.time(pack_run, 1, 2)
C.print(string.format("table messages: %d records, channel of %d, %d procs",
                      N, CAP, goroutine.maxprocs()),
        { { "messages per second", N / t_chan, "/s", N / t_pack } })
