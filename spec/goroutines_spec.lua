-- spec/goroutines_spec.lua — goroutine.go, id, yield and count; what a
-- goroutine's arguments are; how goroutines end (errors, os.exit, main
-- returning); and coroutines inside a goroutine.
--
-- Synchronisation is by channels and wait groups only. Whole-program
-- behaviour (exit statuses, stderr) runs in a subprocess under `timeout`, so
-- a hang fails the case instead of hanging the suite.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the few busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

-- goroutine-lua on a script (opts: flags=, env=), killed after 'seconds'
-- (default 60): a hang fails the case with status 124.
local function script(code, opts, seconds)
  opts = opts or {}
  local o = { flags = opts.flags, args = opts.args }
  o.env = (opts.env and (opts.env .. " ") or "") .. "timeout " .. (seconds or 60)
  return support.script(code, o)
end

local module_script = support.module_script

local has = support.has

-- Wait (yielding) until count() == n; gives up after 60 s and returns the
-- last count seen. A bound against hanging, not a timing assertion.
local function count_becomes(n)
  local deadline = goroutine.now() + 60
  while goroutine.count() ~= n and goroutine.now() < deadline do
    goroutine.yield()
  end
  return goroutine.count()
end

describe("goroutine.go", function()
  it("returns an integer id, increasing with each goroutine started", function()
    local done = goroutine.chan(3)
    local a = goroutine.go(function(c) c:send(true) end, done)
    local b = goroutine.go(function(c) c:send(true) end, done)
    local c = goroutine.go(function(ch) ch:send(true) end, done)
    for _ = 1, 3 do done:recv() end
    assert.equal("integer", math.type(a))
    assert.is_true(a > 1)
    assert.is_true(b > a)
    assert.is_true(c > b)
  end)

  it("runs the function with every argument, nil in the middle included", function()
    local out = goroutine.chan()
    goroutine.go(function(c, x, y, z, w)
      c:send({ n = select("#", x, y, z, w), x = x, y = y, z = z, w = w })
    end, out, "a", nil, 3, false)
    local got = out:recv()
    assert.same({ n = 4, x = "a", y = nil, z = 3, w = false }, got)
  end)

  it("passes trailing arguments through varargs, counting trailing nils", function()
    local out = goroutine.chan()
    goroutine.go(function(c, ...)
      c:send({ n = select("#", ...), ... })
    end, out, 1, nil, "three", nil)
    assert.same({ n = 4, 1, nil, "three", nil }, out:recv())
  end)

  it("refuses a non-function with a bad-argument error", function()
    local ok, err = pcall(function() goroutine.go(nil) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'go' %(function expected, got nil%)", err)
    local callable = setmetatable({}, { __call = function() end })
    ok, err = pcall(function() goroutine.go(callable) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'go' %(function expected, got table%)", err)
  end)
end)

describe("goroutine.id", function()
  it("is 1 in the main goroutine", function()
    assert.equal(1, goroutine.id())
    assert.equal("integer", math.type(goroutine.id()))
  end)

  it("is, inside a goroutine, the id that go returned", function()
    local out = goroutine.chan()
    local id = goroutine.go(function(c) c:send(goroutine.id()) end, out)
    assert.equal(id, out:recv())
  end)
end)

describe("goroutine.count", function()
  it("rises while goroutines are blocked and falls back when they end", function()
    local base = count_becomes(1)
    local n = 10
    local ready, gate, finished = goroutine.chan(n), goroutine.chan(), goroutine.chan(n)
    for _ = 1, n do
      goroutine.go(function(r, g, f)
        r:send(true)
        g:recv()          -- blocked until the gate closes
        f:send(true)
      end, ready, gate, finished)
    end
    for _ = 1, n do ready:recv() end
    assert.equal(base + n, goroutine.count())
    gate:close()
    for _ = 1, n do finished:recv() end
    assert.equal(base, count_becomes(base))
  end)
end)

describe("goroutine.yield", function()
  it("lets another goroutine run on a single worker thread", function()
    -- Both goroutines wait at a gate, then print and yield in turn. Without
    -- yield, one worker would run one loop to the end before the other.
    local r = script([[
      local goroutine = require "goroutine"
      local gate, wg = goroutine.chan(), goroutine.waitgroup()
      local function loop(name, g, w)
        g:recv()
        for i = 1, 50 do io.write(name); goroutine.yield() end
        w:done()
      end
      wg:add(2)
      goroutine.go(loop, "a", gate, wg)
      goroutine.go(loop, "b", gate, wg)
      gate:close()
      wg:wait()
      io.write("\n")
    ]], { flags = { "-p", "1" } })
    assert.equal(0, r.status, r.stderr)
    local line = r.stdout:match("^([ab]+)\n$")
    assert.is_truthy(line, r.stdout)
    assert.equal(100, #line)
    local runs = 1
    for i = 2, #line do
      if line:sub(i, i) ~= line:sub(i - 1, i - 1) then runs = runs + 1 end
    end
    assert.is_true(runs >= 10, "output not interleaved: " .. line)
  end)

  it("returns nothing and keeps the caller running", function()
    assert.equal(0, select("#", goroutine.yield()))
    local out = goroutine.chan()
    goroutine.go(function(c)
      local n = select("#", goroutine.yield())
      c:send(n)
    end, out)
    assert.equal(0, out:recv())
  end)
end)

describe("a goroutine blocked on a channel", function()
  it("does not stop other goroutines from running", function()
    -- More blocked goroutines than worker threads: each must have given its
    -- thread back, or the last goroutine could never report.
    local n = goroutine.maxprocs() + 4
    local ready, gate, done, out = goroutine.chan(n), goroutine.chan(), goroutine.chan(n), goroutine.chan()
    for _ = 1, n do
      goroutine.go(function(r, g, d) r:send(true); g:recv(); d:send(true) end, ready, gate, done)
    end
    for _ = 1, n do ready:recv() end
    goroutine.go(function(c) c:send("still running") end, out)
    assert.equal("still running", out:recv())
    gate:close()
    for _ = 1, n do done:recv() end
  end)
end)

describe("many goroutines", function()
  it("all run, each exactly once (2,000 of them)", function()
    local n = 2000
    local wg, sum, hits = goroutine.waitgroup(), goroutine.atomic(), goroutine.atomic()
    wg:add(n)
    for i = 1, n do
      goroutine.go(function(k, s, h, w)
        s:add(k); h:add(1); w:done()
      end, i, sum, hits, wg)
    end
    wg:wait()
    assert.equal(n, hits:load())
    assert.equal(n * (n + 1) // 2, sum:load())
  end)
end)

describe("an uncaught error in a goroutine", function()
  it("prints 'goroutine N [error]:', the message and a traceback, and exits 1", function()
    local r = script([[
      local goroutine = require "goroutine"
      local go_on = goroutine.chan()
      local id = goroutine.go(function(c) c:recv(); error("boom in goroutine") end, go_on)
      io.stderr:write("spawned ", id, "\n")
      go_on:send(true)
      goroutine.chan():recv()   -- the error ends the program first
    ]])
    assert.equal(1, r.status)
    local id = r.stderr:match("spawned (%d+)")
    assert.is_truthy(id, r.stderr)
    assert.is_true(has(r.stderr, "goroutine " .. id .. " [error]:"), r.stderr)
    assert.is_true(has(r.stderr, "boom in goroutine"), r.stderr)
    assert.is_true(has(r.stderr, "stack traceback"), r.stderr)
    -- the report comes in this order
    local a = r.stderr:find("[error]:", 1, true)
    local b = r.stderr:find("boom in goroutine", 1, true)
    local c = r.stderr:find("stack traceback", 1, true)
    assert.is_true(a < b and b < c, r.stderr)
  end)

  it("shows an error object through its __tostring", function()
    local r = script([[
      local goroutine = require "goroutine"
      goroutine.go(function()
        error(setmetatable({}, { __tostring = function() return "custom error object" end }))
      end)
      goroutine.chan():recv()
    ]])
    assert.equal(1, r.status)
    assert.is_true(has(r.stderr, "[error]:"), r.stderr)
    assert.is_true(has(r.stderr, "custom error object"), r.stderr)
  end)

  it("shows a table error without __tostring as lua5.4 does", function()
    local r = script([[
      local goroutine = require "goroutine"
      goroutine.go(function() error({ code = 7 }) end)
      goroutine.chan():recv()
    ]])
    assert.equal(1, r.status)
    assert.is_true(has(r.stderr, "[error]:"), r.stderr)
    assert.is_true(has(r.stderr, "(error object is a table value)"), r.stderr)
  end)

  -- lua5.4 prints a number error as the number ("lua5.4: 42").
  it("shows a number error as the number, as lua5.4 does", function()
    local r = script([[
      local goroutine = require "goroutine"
      goroutine.go(function() error(42) end)
      goroutine.chan():recv()
    ]])
    assert.equal(1, r.status)
    assert.is_true(has(r.stderr, "[error]:\n42\n"), r.stderr)
  end)

  it("can be caught with pcall inside the goroutine instead", function()
    local out = goroutine.chan()
    goroutine.go(function(c)
      local ok, err = pcall(error, "caught here", 0)
      c:send({ ok, err })
    end, out)
    assert.same({ false, "caught here" }, out:recv())
  end)
end)

describe("os.exit in a goroutine", function()
  it("exits the whole program with that status", function()
    local r = script([[
      local goroutine = require "goroutine"
      goroutine.go(function() os.exit(3) end)
      goroutine.chan():recv()
      print("not reached")
    ]])
    assert.equal(3, r.status)
    assert.is_false(has(r.stdout, "not reached"))
  end)
end)

describe("the main goroutine returning", function()
  local CODE = [[
    local goroutine = require "goroutine"
    local started = goroutine.chan(2)
    goroutine.go(function(s) s:send(1); goroutine.chan():recv() end, started)  -- blocked forever
    goroutine.go(function(s) s:send(1); while true do end end, started)        -- busy forever
    started:recv(); started:recv()
    print("main done")
  ]]

  -- "At once": a 20 s bound catches a runtime that waits for them.
  it("ends the program with status 0 while others are blocked or busy", function()
    local r = script(CODE, nil, 20)
    assert.equal(0, r.status, r.stderr)
    assert.equal("main done\n", r.stdout)
  end)

  it("ends the program with status 0 in module mode under lua5.4 too", function()
    local r = module_script(CODE, 20)
    assert.equal(0, r.status, r.stderr)
    assert.equal("main done\n", r.stdout)
  end)
end)

describe("coroutines in a goroutine", function()
  it("cannot yield the goroutine's top level: that is an uncaught error", function()
    local r = script([[
      local goroutine = require "goroutine"
      goroutine.go(function() coroutine.yield(1) end)
      goroutine.chan():recv()
    ]])
    assert.equal(1, r.status)
    assert.is_true(has(r.stderr, "[error]:"), r.stderr)
    assert.is_true(has(r.stderr, "attempt to yield from outside a coroutine"), r.stderr)
  end)

  it("work as usual inside a goroutine", function()
    local out = goroutine.chan()
    goroutine.go(function(c)
      local co = coroutine.create(function(a)
        local b = coroutine.yield(a + 1)
        local d = coroutine.yield(b * 2)
        return d .. "!"
      end)
      local r = {}
      r[1] = select(2, coroutine.resume(co, 1))
      r[2] = select(2, coroutine.resume(co, 10))
      r[3] = select(2, coroutine.resume(co, "end"))
      r[4] = coroutine.status(co)
      c:send(r)
    end, out)
    assert.same({ 2, 20, "end!", "dead" }, out:recv())
  end)

  it("may block on a channel inside a coroutine.wrap generator", function()
    -- The receive blocks the goroutine; it is not a coroutine.yield, so the
    -- generator's caller sees only the values it yields itself.
    local input, output = goroutine.chan(), goroutine.chan()
    goroutine.go(function(inp, outp)
      local gen = coroutine.wrap(function()
        while true do
          local v, ok = inp:recv()
          if not ok then return end
          coroutine.yield(v * 10)
        end
      end)
      for v in gen do outp:send(v) end
      outp:close()
    end, input, output)
    for i = 1, 5 do
      input:send(i)
      assert.same({ i * 10, true }, { output:recv() })
    end
    input:close()
    assert.same({ nil, false }, { output:recv() })
  end)

  it("may send on a channel from inside a coroutine while others keep running", function()
    local out, ack = goroutine.chan(), goroutine.chan()
    goroutine.go(function(o, a)
      local co = coroutine.create(function()
        for i = 1, 3 do o:send(i); a:recv() end
        return "done"
      end)
      local _, r = coroutine.resume(co)
      o:send(r)
    end, out, ack)
    for i = 1, 3 do
      assert.equal(i, out:recv())
      ack:send(true)
    end
    assert.equal("done", out:recv())
  end)
end)

-- A goroutine's coroutine.resume and coroutine.wrap are the runtime's own
-- (they track which coroutine runs, for preemption): they must behave
-- exactly as Lua's.  The probe runs in the spec's own state and in a
-- goroutine, under the same chunk name, and the transcripts must match.
describe("coroutines inside a goroutine", function()
  local PROBE = [[
    local out = {}
    local function log(...) out[#out + 1] = table.concat(table.pack(...), ",", 1, select("#", ...)) end
    local function show(...)
      local t = table.pack(...)
      for i = 1, t.n do t[i] = tostring(t[i]) end
      log(table.concat(t, " ", 1, t.n))
    end
    local co = coroutine.create(function(a, b)
      local c = coroutine.yield(a + b, "y")
      return c * 2, coroutine.isyieldable()
    end)
    show(coroutine.resume(co, 1, 2))
    show(coroutine.resume(co, 10))
    show(coroutine.resume(co))
    show(coroutine.resume(coroutine.create(function() error("boom") end)))
    log(type(select(2, coroutine.resume(coroutine.create(function() error({}) end)))))
    show(pcall(coroutine.resume, 42))
    local gen = coroutine.wrap(function(n) for i = 1, n do coroutine.yield(i) end return "end" end)
    show(gen(3), gen(), gen(), gen())
    show(pcall(gen))
    local bad = coroutine.wrap(function() error("inside") end)
    show(pcall(bad))
    local bad2 = coroutine.wrap(function() local x = nil; return x.y end)
    show(pcall(function() return bad2() end))
    show(pcall(coroutine.wrap, 1))
    local closed = {}
    local tbc = coroutine.wrap(function()
      local _ <close> = setmetatable({}, { __close = function() closed[1] = "closed" end })
      error("with a to-be-closed")
    end)
    show(pcall(tbc))
    show(closed[1])
    local nested = coroutine.wrap(function()
      local inner = coroutine.wrap(function() coroutine.yield("inner") end)
      coroutine.yield(inner())
      return "outer done"
    end)
    show(nested(), nested())
    return table.concat(out, "\n")
  ]]

  it("resume and wrap give the same results, yields and errors as Lua's", function()
    local mine = assert(load(PROBE, "=probe"))()
    local ch = goroutine.chan()
    goroutine.go(function(src, out) out:send(load(src, "=probe")()) end, PROBE, ch)
    local theirs = ch:recv()
    assert.equal(mine, theirs)
    -- and the transcript is the one Lua 5.4 gives
    assert.truthy(has(theirs, "true 3 y\ntrue 20 true\nfalse cannot resume dead coroutine\n"))
    assert.truthy(has(theirs, "false probe:15: boom\ntable\n"))
    assert.truthy(has(theirs, "1 2 3 end\n"))
    assert.truthy(has(theirs, "false cannot resume dead coroutine\n"))
    assert.truthy(has(theirs, "false probe:21: inside\n"))
    assert.truthy(theirs:find("false probe:24: probe:23: attempt to index a nil value", 1, true))
    assert.truthy(has(theirs, "false probe:29: with a to-be-closed\nclosed\n"))
    assert.truthy(has(theirs, "inner outer done"))
  end)
end)

-- A goroutine that ends normally leaves its state, reset, for a later one
-- (src/pool.c).  Nothing of the first may reach the next: the probe
-- pollutes every corner of its state, and later goroutines look for it.
describe("a reused goroutine state", function()
  it("carries nothing over, and finalizes what the last goroutine left", function()
    local ch = goroutine.chan(64)
    local finalized = goroutine.chan(1)
    local polluter = load([[
      local ch, finalized = ...
      leaked_global = "global"
      string.leaked = "string library"
      getmetatable("").__index = function() return "string metatable" end
      debug.setmetatable(0, { __index = function() return "number metatable" end })
      debug.setmetatable(nil, { __index = function() return "nil metatable" end })
      package.loaded.leaked = "module"
      debug.getregistry().leaked = "registry"
      debug.getregistry()[99] = "registry slot"
      collectgarbage("stop")
      collectgarbage("generational")
      debug.sethook(function() end, "l")
      local handle_mt = getmetatable(ch)
      handle_mt.leaked = "handle metatable"
      setmetatable({}, { __gc = function() finalized:send("finalized") end })
      ch:send(tostring(debug.getregistry()))
    ]])
    local checker = load([[
      local ch = ...
      local found = {}
      local function look(what, v) if v ~= nil then found[#found + 1] = what .. "=" .. tostring(v) end end
      look("global", rawget(_G, "leaked_global") or leaked_global)
      look("string", string.leaked)
      look("stringmt", ("x").leaked)
      look("number", debug.getmetatable(0))
      look("nil", debug.getmetatable(nil))
      look("module", package.loaded.leaked)
      look("registry", debug.getregistry().leaked)
      look("registry slot", debug.getregistry()[99])
      look("gc stopped", not collectgarbage("isrunning") or nil)
      -- (a hook of the runtime's own shows as "external hook": under
      -- ThreadSanitizer every goroutine carries one)
      local hook = debug.gethook()
      look("hook", type(hook) == "function" and hook or nil)
      look("handle metatable", getmetatable(ch).leaked)
      local mode = collectgarbage("incremental")
      look("gc mode", mode ~= "incremental" and mode or nil)
      ch:send({ tostring(debug.getregistry()), table.concat(found, ", ") })
    ]])
    -- The pool keeps at most 256 states, and earlier specs may have filled
    -- it: then the polluted state would be closed, not kept. Goroutines
    -- that hold a state each, all started and waiting, empty the pool
    -- first, so the polluted state is the one kept on top of it.
    local hold, started = goroutine.chan(), goroutine.chan(300)
    for _ = 1, 300 do
      goroutine.go(function(hold, started) started:send(true); hold:recv() end, hold, started)
    end
    for _ = 1, 300 do started:recv() end
    goroutine.go(polluter, ch, finalized)
    local first = ch:recv()
    assert.equal("finalized", finalized:recv())   -- its state was reset or closed
    local reused = false
    for _ = 1, 50 do
      goroutine.go(checker, ch)
      local got = ch:recv()
      local registry, found = got[1], got[2]
      assert.equal("", found)
      reused = reused or registry == first
    end
    hold:close()
    assert.is_true(reused, "no later goroutine got the polluted state: reuse is not tested")
  end)
end)
