-- spec/preempt_spec.lua — fairness on one worker thread (-p 1): a goroutine
-- running a pure Lua loop is preempted, so it does not starve the others;
-- a goroutine blocked in a slow C call (os.execute, io.read) does not stop
-- them either, because its worker slot is handed to another thread.
--
-- Every case is a program run with -p 1 in a subprocess under `timeout`: a
-- starved program fails the case (status 124) instead of hanging the suite.
-- In the blocking-call cases the blocked call can only return after the
-- ping-pong is done: it waits on a FIFO that main writes to once the
-- ping-pong has finished.  Had the ping-pong waited for the call, neither
-- would ever finish.  No case measures time.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- Keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

-- goroutine-lua -p 1 on a script, killed after 'seconds' (default 60).
-- Extra arguments go to the script (its ...).
local function script1(code, seconds, args)
  return support.script(code, { flags = { "-p", "1" }, args = args, env = "timeout " .. (seconds or 60) })
end

-- A new FIFO's path; removed by the caller.
local function fifo()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkfifo " .. support.quote(path)))
  return path
end

-- Lua that lets the blocked call return: a line into the FIFO at 'var'.
local function release(var)
  return "local f = assert(io.open(" .. var .. ", 'w')); f:write('go\\n'); f:close()\n"
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

  it("a goroutine blocked in os.execute does not stop a ping-pong main waits for", function()
    -- The shell blocks until main writes to the FIFO, after the ping-pong.
    local gate = fifo()
    local r = script1([[
      local goroutine = require "goroutine"
      local gate = ...
      local started, back = goroutine.chan(), goroutine.chan()
      goroutine.go(function(s, b, path)
        s:send(true)
        b:send((os.execute("read line < '" .. path .. "'")))
      end, started, back, gate)
      started:recv()
    ]] .. PINGPONG .. release("gate") .. [[
      print("os.execute returned", (back:recv()))
    ]], nil, { gate })
    os.remove(gate)
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: the ping-pong waited for the blocked call)")
    assert.equal("round trips\t1000\nos.execute returned\ttrue\n", r.stdout)
  end)

  it("a goroutine blocked in io.read() on a pipe without data does not stop a ping-pong", function()
    -- stdin is a FIFO whose writer writes a line only once main has
    -- finished the ping-pong and written to a second FIFO, the gate.
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "wb"))
    f:write([[
      local goroutine = require "goroutine"
      local gate = ...
      local started, back = goroutine.chan(), goroutine.chan()
      goroutine.go(function(s, b)
        s:send(true)
        b:send(io.read())
      end, started, back)
      started:recv()
    ]] .. PINGPONG .. release("gate") .. [[
      print("io.read returned", (back:recv()))
    ]])
    f:close()
    local input, gate = fifo(), fifo()
    local q = support.quote
    local sh = table.concat({
      "(read line < " .. q(gate) .. "; echo data) > " .. q(input) .. " & writer=$!",
      q(support.bin) .. " -p 1 " .. q(path) .. " " .. q(gate) .. " < " .. q(input),
      "status=$?",
      "kill $writer 2>/dev/null",
      "exit $status",
    }, "\n")
    local r = support.sh("timeout 60 sh -c " .. q(sh))
    os.remove(path); os.remove(input); os.remove(gate)
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: the ping-pong waited for the pipe)")
    assert.equal("round trips\t1000\nio.read returned\tdata\n", r.stdout)
  end)

  it("main keeps running while a goroutine is blocked in a C call", function()
    local gate = fifo()
    local r = script1([[
      local goroutine = require "goroutine"
      local gate = ...
      local started, back = goroutine.chan(), goroutine.chan()
      goroutine.go(function(s, b, path)
        s:send(true)
        b:send((os.execute("read line < '" .. path .. "'")))
      end, started, back, gate)
      started:recv()
      local out = goroutine.chan()
      goroutine.go(function(o) o:send("from a goroutine") end, out)
      print((out:recv()))
    ]] .. release("gate") .. [[
      print("os.execute returned", (back:recv()))
    ]], nil, { gate })
    os.remove(gate)
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: main waited for the blocked call)")
    assert.equal("from a goroutine\nos.execute returned\ttrue\n", r.stdout)
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
