-- spec/deadlock_spec.lua — the deadlock report and the SIGQUIT dump.
--
-- When every goroutine is parked and no timer is pending, goroutine-lua
-- prints "fatal error: all goroutines are asleep - deadlock!", a blank line,
-- then a block per goroutine ("goroutine N [state]:" and its frames, the
-- script's file:line among them) and exits with status 2. A pending timer
-- or a goroutine inside a C call can still wake someone: no report then.
-- SIGQUIT prints "SIGQUIT: quit" and the same blocks, and exits 2.
--
-- Every case is a whole program run in a subprocess under `timeout`, so a
-- missed deadlock fails the case (status 124) instead of hanging the suite.
-- The SIGQUIT cases wait, in the shell, for a file the script writes and
-- for its threads to be asleep; nothing sleeps in Lua to synchronise.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- Keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

local HEADLINE = "fatal error: all goroutines are asleep - deadlock!\n\n"

local has = support.has
local function starts(s, prefix) return s:sub(1, #prefix) == prefix end

-- goroutine-lua on a script, killed after 'seconds' (default 60).
local function script(code, opts, seconds)
  opts = opts or {}
  return support.script(code, {
    flags = opts.flags, args = opts.args,
    env = "timeout " .. (seconds or 60),
  })
end

local module_script = support.module_script
local build_dir = support.bin:match("^(.*)/[^/]*$") or "."

-- The number of the line of 'code' that contains 'marker'.
local function line_of(code, marker)
  local at = assert(code:find(marker, 1, true), "no marker " .. marker)
  local _, n = code:sub(1, at):gsub("\n", "")
  return n + 1
end

local function basename(path) return path:match("[^/]*$") end

-- The block of goroutine 'id' in a dump: its state and its frames (blocks
-- are separated by a blank line; a running goroutine's has no frames).
local function block_of(dump, id)
  for blk in (dump .. "\n\n"):gmatch("(.-)\n\n") do
    local n, state, frames = blk:match("^goroutine (%d+) %[(.-)%]:\n?(.*)$")
    if n and tonumber(n) == id then return state, frames end
  end
end

-- Goroutine 'id' is shown in 'state', blocked at path:line.
local function assert_blocked(dump, id, state, path, line)
  local got, frames = block_of(dump, id)
  assert.are.equal(state, got, "state of goroutine " .. id .. " in:\n" .. dump)
  local at = basename(path) .. ":" .. line .. ":"
  assert.is_true(has(frames, at), "no frame at " .. at .. " for goroutine " .. id .. " in:\n" .. dump)
  -- Frames are tab-indented, as in a Lua traceback.
  for frame in frames:gmatch("[^\n]+") do
    assert.is_true(frame:sub(1, 1) == "\t", "frame not indented: " .. frame)
  end
end

local function assert_deadlock(r)
  assert.are.equal(2, r.status, "exit status (124: no deadlock reported); stderr:\n" .. r.stderr)
  assert.is_true(starts(r.stderr, HEADLINE), r.stderr)
end

-- Programs whose main goroutine blocks at the line marked HERE. (The
-- detector looks twice, a tenth of a second apart when all is idle, so each
-- program costs that much: the other states are in one program below.)
local MAIN_STATES = {
  { state = "chan receive", code = [[
local goroutine = require "goroutine"
local ch = goroutine.chan()
ch:recv()                                    -- HERE
]] },
  { state = "chan send", code = [[
local goroutine = require "goroutine"
local ch = goroutine.chan(1)
ch:send(1)
ch:send(2)                                   -- HERE
]] },
  { state = "select", code = [[
local goroutine = require "goroutine"
local a, b = goroutine.chan(), goroutine.chan()
goroutine.select { { recv = a }, { send = b, value = 1 } }   -- HERE
]] },
  { state = "select (no cases)", code = [[
local goroutine = require "goroutine"
goroutine.select { { recv = nil }, { send = nil, value = 1 } }   -- HERE
]] },
  { state = "sync.Once", code = [[
local goroutine = require "goroutine"
local once = goroutine.once()
once:call(function()
  once:call(print)                           -- HERE
end)
]] },
}

-- One program with a goroutine blocked in each state, in id order from 2;
-- main waits at the end. Each marker "-- [m]" is where goroutine k blocks,
-- ALL_STATES[k - 1] = { m, the state shown }.
local ALL_STATES = {
  { "chan receive", "chan receive" }, { "chan receive (range)", "chan receive" },
  { "chan send", "chan send" }, { "select", "select" },
  { "select (no cases)", "select (no cases)" }, { "sync.Mutex.Lock", "sync.Mutex.Lock" },
  { "sync.RWMutex.RLock", "sync.RWMutex.RLock" }, { "sync.RWMutex.Lock", "sync.RWMutex.Lock" },
  { "sync.WaitGroup.Wait", "sync.WaitGroup.Wait" }, { "sync.Cond.Wait", "sync.Cond.Wait" },
  { "sync.Once", "sync.Once" }, { "chan receive (coroutine)", "chan receive" },
}
local ALL_CODE = [[
local goroutine = require "goroutine"
local go = goroutine.go
local started = goroutine.chan()
local mu, rw1, rw2 = goroutine.mutex(), goroutine.rwmutex(), goroutine.rwmutex()
local wg = goroutine.waitgroup()
mu:lock(); rw1:lock(); rw2:rlock(); wg:add(1)
local function start(f, ...) go(f, started, ...); started:recv() end
start(function(s) s:send(1)
  goroutine.chan():recv()                    -- [chan receive]
end)
start(function(s) s:send(1)
  for _ in goroutine.chan():range() do end   -- [chan receive (range)]
end)
start(function(s) s:send(1)
  goroutine.chan():send(1)                   -- [chan send]
end)
start(function(s) s:send(1)
  goroutine.select { { recv = goroutine.chan() }, { recv = goroutine.chan() } }   -- [select]
end)
start(function(s) s:send(1)
  goroutine.select {}                        -- [select (no cases)]
end)
start(function(s, m) s:send(1)
  m:lock()                                   -- [sync.Mutex.Lock]
end, mu)
start(function(s, rw) s:send(1)
  rw:rlock()                                 -- [sync.RWMutex.RLock]
end, rw1)
start(function(s, rw) s:send(1)
  rw:lock()                                  -- [sync.RWMutex.Lock]
end, rw2)
start(function(s, w) s:send(1)
  w:wait()                                   -- [sync.WaitGroup.Wait]
end, wg)
start(function(s) s:send(1)
  local m = goroutine.mutex()
  local c = goroutine.cond(m)
  m:lock()
  c:wait()                                   -- [sync.Cond.Wait]
end)
start(function(s) s:send(1)
  local once = goroutine.once()
  once:call(function()
    once:call(print)                         -- [sync.Once]
  end)
end)
start(function(s) s:send(1)
  local co = coroutine.wrap(function()
    goroutine.chan():recv()                  -- [chan receive (coroutine)]
  end)
  co()
end)
print(goroutine.count())
goroutine.chan():recv()                      -- HERE
]]

describe("a deadlock", function()
  for _, case in ipairs(MAIN_STATES) do
    it(("is reported with goroutine 1 [%s]: and the line it waits at"):format(case.state), function()
      local r = script(case.code)
      assert_deadlock(r)
      assert.equal("", r.stdout)
      assert_blocked(r.stderr, 1, case.state, r.path, line_of(case.code, "-- HERE"))
    end)
  end

  it("is reported with every goroutine in its blocking state, at its line", function()
    local r = script(ALL_CODE)
    assert_deadlock(r)
    assert.equal(#ALL_STATES + 1 .. "\n", r.stdout)
    assert_blocked(r.stderr, 1, "chan receive", r.path, line_of(ALL_CODE, "-- HERE"))
    for k, case in ipairs(ALL_STATES) do
      assert_blocked(r.stderr, k + 1, case[2], r.path, line_of(ALL_CODE, "-- [" .. case[1] .. "]"))
    end
  end)

  it("lists every goroutine, in id order, each with its state and line", function()
    local code = [[
local goroutine = require "goroutine"
local mu, wg = goroutine.mutex(), goroutine.waitgroup()
local full = goroutine.chan(1)
full:send(0)
mu:lock()
wg:add(1)
goroutine.go(function(c)
  c:send(1)                                  -- SEND
end, full)
goroutine.go(function(m)
  m:lock()                                   -- LOCK
end, mu)
goroutine.go(function(c)
  for _ in c:range() do end                  -- RANGE
end, goroutine.chan())
print("waiting")
wg:wait()                                    -- WAIT
]]
    local r = script(code)
    assert_deadlock(r)
    assert.equal("waiting\n", r.stdout)
    assert_blocked(r.stderr, 1, "sync.WaitGroup.Wait", r.path, line_of(code, "-- WAIT"))
    assert_blocked(r.stderr, 2, "chan send", r.path, line_of(code, "-- SEND"))
    assert_blocked(r.stderr, 3, "sync.Mutex.Lock", r.path, line_of(code, "-- LOCK"))
    assert_blocked(r.stderr, 4, "chan receive", r.path, line_of(code, "-- RANGE"))
    local ids = {}
    for n in r.stderr:gmatch("\ngoroutine (%d+) %[") do ids[#ids + 1] = tonumber(n) end
    assert.same({ 1, 2, 3, 4 }, ids)
  end)

  it("shows the frames as a Lua traceback does, C functions included", function()
    local code = [[
local goroutine = require "goroutine"
local function wait_for(ch)
  return ch:recv()                           -- HERE
end
wait_for(goroutine.chan())
]]
    local r = script(code)
    assert_deadlock(r)
    local _, frames = block_of(r.stderr, 1)
    local name = basename(r.path)
    assert.is_true(has(frames, "\t[C]: in function 'recv'"), frames)
    assert.is_true(has(frames, name .. ":3: in "), frames)
    assert.is_true(has(frames, name .. ":5: in main chunk"), frames)
  end)

  it("is reported after output the program printed before it", function()
    local r = script([[
      local goroutine = require "goroutine"
      io.write("partial line")
      print(" and a whole one")
      goroutine.chan():recv()
    ]])
    assert_deadlock(r)
    assert.equal("partial line and a whole one\n", r.stdout)
  end)

  it("is reported in module mode, from stock lua5.4 (the host thread counts as parked)", function()
    local code = [[
local goroutine = require "goroutine"
local ch = goroutine.chan()
goroutine.go(function(c) c:send(1); c:send(2) end, ch)   -- SEND
print((ch:recv()))
local never = goroutine.chan()
never:recv()                                 -- HERE
]]
    local r = module_script(code)
    assert_deadlock(r)
    assert.equal("1\n", r.stdout)
    assert_blocked(r.stderr, 1, "chan receive", r.path, line_of(code, "-- HERE"))
    assert_blocked(r.stderr, 2, "chan send", r.path, line_of(code, "-- SEND"))
  end)

  it("is reported for examples/deadlock.lua: main waits on the workers, they on a channel never closed", function()
    local f = assert(io.open("examples/deadlock.lua", "rb"))
    local code = f:read("a")
    f:close()
    local r = support.sh("timeout 60 " .. support.quote(support.bin) .. " examples/deadlock.lua")
    assert_deadlock(r)
    assert.equal("queued 5 jobs\n", r.stdout)
    local wait_line = line_of(code, "\nwg:wait()")
    local range_line = line_of(code, "jobs:range()")
    assert_blocked(r.stderr, 1, "sync.WaitGroup.Wait", "examples/deadlock.lua", wait_line)
    for id = 2, 4 do
      assert_blocked(r.stderr, id, "chan receive", "examples/deadlock.lua", range_line)
    end
  end)
end)

describe("no deadlock is reported", function()
  it("while a sleep is pending: only once it is over and everyone is stuck", function()
    local r = script([[
      local goroutine = require "goroutine"
      goroutine.go(function()
        goroutine.sleep(0.3)
        print("woke")                        -- printed before any report
        goroutine.chan():recv()
      end)
      goroutine.chan():recv()
    ]])
    assert_deadlock(r)
    assert.equal("woke\n", r.stdout)
    assert.equal("chan receive", (block_of(r.stderr, 2)))
  end)

  -- The program is killed a second after it has printed "blocking" (the
  -- shell waits for that line, however long the start takes): sysmon looks
  -- every 0.1 s, so a wrong report would have come by then.
  it("while a ticker nobody stops is running (the program runs until killed)", function()
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "wb"))
    f:write([[
      local goroutine = require "goroutine"
      local ticker = goroutine.tick(0.01)
      goroutine.go(function() goroutine.chan():recv() end)
      print("blocking")
      io.stdout:flush()
      goroutine.chan():recv()
    ]])
    f:close()
    local out = os.tmpname()
    local q = support.quote
    local sh = table.concat({
      q(support.bin) .. " " .. q(path) .. " > " .. q(out) .. " & pid=$!",
      "until grep -q blocking " .. q(out) .. " || ! kill -0 $pid 2>/dev/null; do sleep 0.01; done",
      "sleep 1",
      "kill $pid 2>/dev/null && echo killed",
      "{ wait $pid; } 2>/dev/null; echo status=$?",   -- no 'Terminated' from the shell
      "cat " .. q(out),
    }, "\n")
    local r = support.sh("timeout 60 sh -c " .. q(sh))
    os.remove(path); os.remove(out)
    assert.equal("", r.stderr)
    assert.equal("killed\nstatus=143\nblocking\n", r.stdout, "(still running when killed)")
  end)

  it("once a dropped ticker's channel is collected: the ticker stops", function()
    local r = script([[
      local goroutine = require "goroutine"
      do local ticker = goroutine.tick(0.01) end
      collectgarbage(); collectgarbage()
      goroutine.chan():recv()
    ]])
    assert_deadlock(r)
  end)

  -- The spare thread started for the others while os.execute blocks
  -- retires once the call returns; sysmon joins it (once, TSan reported it
  -- as a thread leak at exit: this case keeps that fixed under make tsan).
  it("while a goroutine sits in a C call (os.execute) that main waits for", function()
    local r = script([[
      local goroutine = require "goroutine"
      local done = goroutine.chan()
      goroutine.go(function(d)
        os.execute("sleep 0.5")
        d:send("slept")
      end, done)
      print((done:recv()))
    ]], { flags = { "-p", "1" } })
    assert.equal("", r.stderr)
    assert.equal(0, r.status)
    assert.equal("slept\n", r.stdout)
  end)

  it("while main runs Lua code and the others wait for it", function()
    local r = script([[
      local goroutine = require "goroutine"
      local ch = goroutine.chan()
      goroutine.go(function(c) c:recv() end, ch)
      local t0, n = goroutine.now(), 0
      while goroutine.now() - t0 < 0.3 do n = n + 1 end
      ch:send(n)
      print("ok")
    ]])
    assert.equal("", r.stderr)
    assert.equal(0, r.status)
    assert.equal("ok\n", r.stdout)
  end)
end)

-- Run 'code' in the background with a file path as its argument; once the
-- script has created the file and the process's threads are asleep (all of
-- them, or only the main thread when 'main_only'), send it SIGQUIT.
-- Returns support.sh's result; stdout ends with "status=N".
local function sigquit(code, main_only, cmd)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "wb")); f:write(code); f:close()
  local ready = os.tmpname()
  os.remove(ready)
  local states = main_only and "/proc/$pid/stat" or "/proc/$pid/task/*/stat"
  local sh = table.concat({
    (cmd or support.quote(support.bin)) .. " " .. support.quote(path) .. " " .. support.quote(ready) .. " & pid=$!",
    -- the file first, however long the start takes (timeout bounds it)
    "until [ -e " .. support.quote(ready) .. " ]; do sleep 0.005; done",
    "n=0",
    "while [ $n -lt 2000 ]; do",
    -- the state is the field after the command name in parentheses
    "  awake=$(cat " .. states .. " 2>/dev/null | sed 's/.*) //' | cut -d' ' -f1 | grep -vc S)",
    "  [ \"$awake\" = 0 ] && break",
    "  n=$((n+1)); sleep 0.005",
    "done",
    "kill -QUIT $pid; wait $pid; echo status=$?",
  }, "\n")
  local r = support.sh("timeout 60 sh -c " .. support.quote(sh))
  os.remove(path); os.remove(ready)
  r.path = path
  return r
end

-- The SIGQUIT handler and the monitor thread share an atomic flag (a
-- volatile one was a data race under ThreadSanitizer; these cases keep it
-- fixed under make tsan).
describe("SIGQUIT", function()
  it("prints 'SIGQUIT: quit' and every goroutine where it waits, and exits 2", function()
    local code = [[
local goroutine = require "goroutine"
local ready = ...
local mu = goroutine.mutex()
mu:lock()
goroutine.go(function()
  goroutine.sleep(600)                       -- SLEEP
end)
goroutine.go(function(m)
  m:lock()                                   -- LOCK
end, mu)
local f = assert(io.open(ready, "w")); f:close()
goroutine.chan():recv()                      -- HERE
]]
    local r = sigquit(code)
    assert.is_true(has(r.stdout, "status=2\n"), r.stdout .. r.stderr)
    assert.is_true(starts(r.stderr, "SIGQUIT: quit\n\n"), r.stderr)
    assert_blocked(r.stderr, 1, "chan receive", r.path, line_of(code, "-- HERE"))
    assert_blocked(r.stderr, 2, "sleep", r.path, line_of(code, "-- SLEEP"))
    assert_blocked(r.stderr, 3, "sync.Mutex.Lock", r.path, line_of(code, "-- LOCK"))
  end)

  it("shows a goroutine that is running, without frames", function()
    local code = [[
local goroutine = require "goroutine"
local ready = ...
goroutine.go(function(path)
  local f = assert(io.open(path, "w")); f:close()
  while true do end
end, ready)
goroutine.chan():recv()                      -- HERE
]]
    local r = sigquit(code, true)
    assert.is_true(has(r.stdout, "status=2\n"), r.stdout .. r.stderr)
    assert.is_true(starts(r.stderr, "SIGQUIT: quit\n\n"), r.stderr)
    -- Nothing orders main's receive before the file is written: under chaos
    -- scheduling main may yield just before it, and wait in a run queue
    -- behind the loop for a time slice, stopped at the same line.
    local main_state = block_of(r.stderr, 1) == "runnable" and "runnable" or "chan receive"
    assert_blocked(r.stderr, 1, main_state, r.path, line_of(code, "-- HERE"))
    -- Caught between two time slices, it may be waiting in a run queue.
    local state, frames = block_of(r.stderr, 2)
    assert.is_true(state == "running" or state == "runnable", r.stderr)
    if state == "running" then assert.equal("", frames) end
  end)

  it("works in module mode, from stock lua5.4", function()
    local code = [[
local goroutine = require "goroutine"
local ready = ...
local f = assert(io.open(ready, "w")); f:close()
goroutine.chan():recv()                      -- HERE
]]
    local lua = os.getenv("LUA") or "lua5.4"
    local r = sigquit(code, false, "env LUA_CPATH=" .. support.quote(build_dir .. "/?.so;;")
                                   .. " " .. support.quote(lua))
    assert.is_true(has(r.stdout, "status=2\n"), r.stdout .. r.stderr)
    assert.is_true(starts(r.stderr, "SIGQUIT: quit\n\n"), r.stderr)
    assert_blocked(r.stderr, 1, "chan receive", r.path, line_of(code, "-- HERE"))
  end)
end)
