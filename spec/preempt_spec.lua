-- spec/preempt_spec.lua — fairness on one worker thread (-p 1): a goroutine
-- running a pure Lua loop is preempted, so it does not starve the others;
-- a goroutine blocked in a slow C call (os.execute, io.read) does not stop
-- them either, because its worker slot is handed to another thread.
--
-- Every case is a program run with -p 1 in a subprocess under `timeout`: a
-- starved program fails the case (status 124) instead of hanging the suite.
-- The blocking-call cases measure the subprocess's whole run: it must end
-- well before the blocked call would have returned, which it can only do if
-- the ping-pong ran while the call was blocked (the program exits when main
-- returns, whatever the other goroutines are doing).
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- Keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

-- goroutine-lua -p 1 on a script, killed after 'seconds' (default 60).
-- Returns support.sh's result with r.elapsed, the seconds the run took.
local function script1(code, seconds)
  local t0 = goroutine.now()
  local r = support.script(code, { flags = { "-p", "1" }, env = "timeout " .. (seconds or 60) })
  r.elapsed = goroutine.now() - t0
  return r
end

-- A ping-pong of n round trips between two goroutines; main waits for the
-- end and prints the count. Appended to each program below.
local PINGPONG = [[
local ping, pong, done = goroutine.chan(), goroutine.chan(), goroutine.chan()
goroutine.go(function(a, b)
  while true do
    local v = a:recv()
    b:send(v + 1)
  end
end, ping, pong)
goroutine.go(function(a, b, d, n)
  local v = 0
  for _ = 1, n do a:send(v); v = b:recv() end
  d:send(v)
end, ping, pong, done, 1000)
print("round trips", (done:recv()))
]]

describe("with one worker thread (-p 1)", function()
  it("a goroutine looping in pure Lua does not starve a ping-pong", function()
    local r = script1([[
      local goroutine = require "goroutine"
      goroutine.go(function() while true do end end)
    ]] .. PINGPONG)
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: starved)")
    assert.equal("round trips\t1000\n", r.stdout)
  end)

  it("several busy loops do not starve it either", function()
    local r = script1([[
      local goroutine = require "goroutine"
      for _ = 1, 4 do
        goroutine.go(function() local x = 0; while true do x = x + 1 end end)
      end
    ]] .. PINGPONG)
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: starved)")
    assert.equal("round trips\t1000\n", r.stdout)
  end)

  it("busy goroutines each get their turn: two loops both finish, with exact results", function()
    -- Each loop runs for several time slices; preempted and resumed, it
    -- must carry on where it was (its locals intact).
    local r = script1([[
      local goroutine = require "goroutine"
      local out = goroutine.chan()
      for id = 1, 2 do
        goroutine.go(function(o, n)
          local sum = 0
          for i = 1, n do sum = sum + i end
          o:send(sum)
        end, out, 20000000)
      end
      print((out:recv()), (out:recv()))
    ]])
    assert.equal("", r.stderr)
    assert.equal(0, r.status)
    assert.equal("200000010000000\t200000010000000\n", r.stdout)
  end)

  it("a loop inside pcall is preempted too", function()
    local r = script1([[
      local goroutine = require "goroutine"
      goroutine.go(function() pcall(function() while true do end end) end)
    ]] .. PINGPONG)
    assert.equal(0, r.status, "status (124: starved)")
    assert.equal("round trips\t1000\n", r.stdout)
  end)

  it("a goroutine blocked in os.execute('sleep 2') does not stop a ping-pong main waits for", function()
    local r = script1([[
      local goroutine = require "goroutine"
      local started = goroutine.chan()
      goroutine.go(function(s)
        s:send(true)
        os.execute("sleep 2")
      end, started)
      started:recv()
    ]] .. PINGPONG)
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: starved)")
    assert.equal("round trips\t1000\n", r.stdout)
    assert.is_true(r.elapsed < 2, ("took %.2f s: the ping-pong waited for the sleep"):format(r.elapsed))
  end)

  it("a goroutine blocked in io.read() on a pipe without data does not stop a ping-pong", function()
    -- stdin is a pipe whose writer (sleep 5) never writes; the writer is
    -- killed once goroutine-lua has ended.
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "wb"))
    f:write([[
      local goroutine = require "goroutine"
      local started = goroutine.chan()
      goroutine.go(function(s)
        s:send(true)
        io.read()
        print("io.read returned")
      end, started)
      started:recv()
    ]] .. PINGPONG)
    f:close()
    local fifo = os.tmpname()
    os.remove(fifo)
    local q = support.quote
    local sh = table.concat({
      "mkfifo " .. q(fifo),
      "sleep 5 > " .. q(fifo) .. " & writer=$!",
      q(support.bin) .. " -p 1 " .. q(path) .. " < " .. q(fifo),
      "status=$?",
      "kill $writer 2>/dev/null; rm -f " .. q(fifo),
      "exit $status",
    }, "\n")
    local t0 = goroutine.now()
    local r = support.sh("timeout 60 sh -c " .. q(sh))
    local elapsed = goroutine.now() - t0
    os.remove(path)
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: starved)")
    assert.equal("round trips\t1000\n", r.stdout)
    assert.is_true(elapsed < 2.5, ("took %.2f s: the ping-pong waited for the pipe"):format(elapsed))
  end)

  it("main keeps running while a goroutine is blocked in a C call", function()
    local r = script1([[
      local goroutine = require "goroutine"
      local started = goroutine.chan()
      goroutine.go(function(s)
        s:send(true)
        os.execute("sleep 2")
      end, started)
      started:recv()
      local out = goroutine.chan()
      goroutine.go(function(o) o:send("from a goroutine") end, out)
      print((out:recv()))
    ]])
    assert.equal(0, r.status)
    assert.equal("from a goroutine\n", r.stdout)
    assert.is_true(r.elapsed < 2, ("took %.2f s"):format(r.elapsed))
  end)

  -- Preemption reaches the coroutine the Lua code runs in, not only the
  -- goroutine's body: here the loop runs inside a coroutine.wrap.
  it("a loop inside a user coroutine does not starve a ping-pong", function()
    local r = script1([[
      local goroutine = require "goroutine"
      goroutine.go(function() coroutine.wrap(function() while true do end end)() end)
    ]] .. PINGPONG)
    assert.equal(0, r.status, "status (124: starved)")
    assert.equal("round trips\t1000\n", r.stdout)
  end)

  it("lua_close stops a goroutine looping inside coroutine.resume (module mode)", function()
    local r = support.module_script([[
      local goroutine = require "goroutine"
      local started = goroutine.chan()
      goroutine.go(function(s)
        s:send(true)
        coroutine.resume(coroutine.create(function() while true do end end))
      end, started)
      started:recv()
      print("main returns")
    ]], 30)
    assert.equal(0, r.status, "status (124: lua_close waited for the loop)")
    assert.equal("main returns\n", r.stdout)
  end)

  it("Ctrl-C (SIGINT) interrupts the main goroutine inside a coroutine", function()
    local r = support.script([[
      local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
      io.popen("kill -INT " .. pid):close()
      coroutine.wrap(function() while true do end end)()
    ]], { env = "timeout 30" })
    assert.equal(1, r.status, "status (124: the interrupt never arrived)")
    assert.truthy(r.stderr:find("interrupted!", 1, true), r.stderr)
  end)
end)
