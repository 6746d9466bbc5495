-- spec/misuse_spec.lua — bad input, end to end.
--
-- A table of misuse cases: each is a snippet that misuses the API and the
-- error it must raise (a plain substring, in Go's words where Go has them).
-- After every case the runtime must still work: a goroutine round trip
-- over a channel, a mutex and a wait group (runtime_works below).
--
-- Misuse that ends a program (an uncaught error, the main goroutine
-- returning while others are mid-send, a deadlock) runs in a subprocess:
-- the process must end with the documented status and a clear report, never
-- a signal.
--
-- The suite runs in both modes (spec/run.sh): under goroutine-lua and with
-- require "goroutine" from stock lua5.4.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

local has = support.has

-- The runtime still works: a value goes to a new goroutine and back, a
-- mutex locks and unlocks, a wait group counts to zero.
local function runtime_works()
  local ch, back = goroutine.chan(), goroutine.chan()
  local wg = goroutine.waitgroup()
  local mu = goroutine.mutex()
  wg:add(1)
  goroutine.go(function(inp, out, w, m)
    local v = inp:recv()
    m:lock()
    out:send({ v[1] * 2, v.tag .. "!" })
    m:unlock()
    w:done()
  end, ch, back, wg, mu)
  ch:send({ 21, tag = "ok" })
  local r = back:recv()
  wg:wait()
  assert.are.same({ 42, "ok!" }, r)
  assert.is_true(mu:trylock())
  mu:unlock()
end

-- pcall(f) must fail with an error containing 'text'; then the runtime
-- must still work.
local function assert_misuse(text, f)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error: " .. text)
  assert.is_true(has(err, text), "expected '" .. text .. "', got: " .. tostring(err))
  runtime_works()
end

-- ===================================================== the misuse table
-- Handles of every kind, made fresh for each case.
local function handles()
  local mu = goroutine.mutex()
  return {
    channel = goroutine.chan(1), mutex = mu, rwmutex = goroutine.rwmutex(),
    waitgroup = goroutine.waitgroup(), once = goroutine.once(),
    cond = goroutine.cond(mu), atomic = goroutine.atomic(),
  }
end

-- { name, snippet, expected error }
local CASES = {
  -- goroutine.go
  { "go without a function", function() goroutine.go() end, "bad argument #1 to 'go' (function expected, got no value)" },
  { "go with nil", function() goroutine.go(nil) end, "bad argument #1 to 'go' (function expected, got nil)" },
  { "go with a number", function() goroutine.go(1) end, "bad argument #1 to 'go' (function expected, got number)" },
  { "go with a table", function() goroutine.go({}) end, "bad argument #1 to 'go' (function expected, got table)" },
  { "go with a handle", function() goroutine.go(goroutine.mutex()) end, "(function expected, got mutex)" },
  { "go with a coroutine argument", function() goroutine.go(print, coroutine.create(print)) end, "cannot send thread at argument #1" },
  { "go with a FILE* argument deep inside", function() goroutine.go(print, { a = { io.stdout } }) end, "cannot send userdata (FILE*) at argument #1.a[1]" },
  { "go with a coroutine upvalue", function()
      local co = coroutine.create(print)
      goroutine.go(function() return co end)
    end, "cannot send thread at upvalue 'co'" },
  { "go with a stripped function", function() goroutine.go(load(string.dump(function() end, true))) end,
    "cannot send function without debug information (stripped)" },
  -- goroutine.chan
  { "chan with a string", function() goroutine.chan("x") end, "bad argument #1 to 'chan' (number expected, got string)" },
  { "chan with a table", function() goroutine.chan({}) end, "(number expected, got table)" },
  { "chan with a negative size", function() goroutine.chan(-1) end, "makechan: size out of range" },
  { "chan with a fractional size", function() goroutine.chan(1.5) end, "makechan: size out of range" },
  { "chan with a huge size", function() goroutine.chan(math.maxinteger) end, "makechan: size out of range" },
  { "chan with nan", function() goroutine.chan(0 / 0) end, "makechan: size out of range" },
  -- time
  { "sleep without seconds", function() goroutine.sleep() end, "bad argument #1 to 'sleep' (number expected, got no value)" },
  { "sleep with a string", function() goroutine.sleep("x") end, "bad argument #1 to 'sleep' (number expected, got string)" },
  { "after without seconds", function() goroutine.after() end, "bad argument #1 to 'after' (number expected, got no value)" },
  { "after with a table", function() goroutine.after({}) end, "bad argument #1 to 'after' (number expected, got table)" },
  { "tick without seconds", function() goroutine.tick() end, "bad argument #1 to 'tick' (number expected, got no value)" },
  { "tick with a boolean", function() goroutine.tick(true) end, "bad argument #1 to 'tick' (number expected, got boolean)" },
  { "tick of zero", function() goroutine.tick(0) end, "non-positive interval for goroutine.tick" },
  { "tick of a negative interval", function() goroutine.tick(-1) end, "non-positive interval for goroutine.tick" },
  { "tick of nan", function() goroutine.tick(0 / 0) end, "non-positive interval for goroutine.tick" },
  -- maxprocs, register
  { "maxprocs with a string", function() goroutine.maxprocs("x") end, "bad argument #1 to 'maxprocs' (number expected, got string)" },
  { "maxprocs with a fraction", function() goroutine.maxprocs(1.5) end, "number has no integer representation" },
  { "register without a name", function() goroutine.register() end, "bad argument #1 to 'register' (string expected, got no value)" },
  { "register with a table name", function() goroutine.register({}) end, "bad argument #1 to 'register' (string expected, got table)" },
  { "register with a number decoder", function() goroutine.register("x", 2) end, "bad argument #2 to 'register' (function expected, got number)" },
  -- sync constructors
  { "cond without a mutex", function() goroutine.cond() end, "bad argument #1 to 'cond' (mutex expected, got no value)" },
  { "cond with a channel", function() goroutine.cond(goroutine.chan()) end, "bad argument #1 to 'cond' (mutex expected, got channel)" },
  { "cond with an rwmutex", function() goroutine.cond(goroutine.rwmutex()) end, "(mutex expected, got rwmutex)" },
  { "atomic with a string", function() goroutine.atomic("x") end, "bad argument #1 to 'atomic' (number expected, got string)" },
  { "atomic with a fraction", function() goroutine.atomic(1.5) end, "number has no integer representation" },
  -- select
  { "select without cases", function() goroutine.select() end, "bad argument #1 to 'select' (table expected, got no value)" },
  { "select with a number", function() goroutine.select(1) end, "(table expected, got number)" },
  { "select with a case that is not a table", function() goroutine.select({ 1 }) end, "select: case #1 is not a table" },
  { "select with a misspelt key", function() goroutine.select({ { recieve = goroutine.chan() } }) end, "select: case #1 has an unknown key 'recieve'" },
  { "select with recv and send", function()
      local ch = goroutine.chan(1)
      goroutine.select({ { recv = ch, send = ch } })
    end, "select: case #1 has both recv and send" },
  { "select with a receive with a value", function() goroutine.select({ { recv = goroutine.chan(), value = 1 } }) end,
    "select: case #1 is a receive with a value" },
  { "select with a handler that is not a function", function() goroutine.select({ { recv = goroutine.chan(), 5 } }) end,
    "select: case #1 has a handler that is not a function" },
  { "select with a mutex where a channel belongs", function() goroutine.select({ { recv = goroutine.mutex() } }) end,
    "select: case #1 has a mutex where a channel belongs" },
  { "select with a string where a channel belongs", function() goroutine.select({ { send = "ch", value = 1 } }) end,
    "select: case #1 has a string where a channel belongs" },
  { "select with a bad default", function() goroutine.select({ default = 1 }) end, "select: default must be a function or true" },
  { "select with an unknown key", function() goroutine.select({ defualt = true }) end, "select: unknown key 'defualt'" },
  { "select with a hole in its cases", function() goroutine.select({ [2] = {}, default = true }) end, "select: unknown key '2'" },
  { "select sending a coroutine", function()
      goroutine.select({ { send = goroutine.chan(1), value = coroutine.create(print) }, default = true })
    end, "cannot send thread at value" },
  -- methods: arguments after self
  { "waitgroup add with a string", function() goroutine.waitgroup():add("x") end, "bad argument #1 to 'add' (number expected, got string)" },
  { "waitgroup add with a fraction", function() goroutine.waitgroup():add(1.5) end, "number has no integer representation" },
  { "once call without a function", function() goroutine.once():call() end, "bad argument #1 to 'call' (function expected, got no value)" },
  { "once call with a table", function() goroutine.once():call({}) end, "bad argument #1 to 'call' (function expected, got table)" },
  { "atomic store without a value", function() goroutine.atomic():store() end, "bad argument #1 to 'store' (number expected, got no value)" },
  { "atomic store with a fraction", function() goroutine.atomic():store(0.5) end, "number has no integer representation" },
  { "atomic add with a string", function() goroutine.atomic():add("x") end, "bad argument #1 to 'add' (number expected, got string)" },
  { "atomic cas without new", function() goroutine.atomic():cas(0) end, "bad argument #2 to 'cas' (number expected, got no value)" },
  { "length of a mutex", function() return #goroutine.mutex() end, "attempt to get length of a mutex value" },
  -- Go's words
  { "send on a closed channel", function() local ch = goroutine.chan(1); ch:close(); ch:send(1) end, "send on closed channel" },
  { "trysend on a closed channel", function() local ch = goroutine.chan(1); ch:close(); ch:trysend(1) end, "send on closed channel" },
  { "select send on a closed channel", function()
      local ch = goroutine.chan(1); ch:close()
      goroutine.select({ { send = ch, value = 1 } })
    end, "send on closed channel" },
  { "close of a closed channel", function() local ch = goroutine.chan(); ch:close(); ch:close() end, "close of closed channel" },
  { "close of a nil channel", function() local ch = goroutine.chan(); ch.close(nil) end, "close of nil channel" },
  { "unlock of an unlocked mutex", function() goroutine.mutex():unlock() end, "sync: unlock of unlocked mutex" },
  { "cond wait without its mutex locked", function() goroutine.cond(goroutine.mutex()):wait() end, "sync: unlock of unlocked mutex" },
  { "runlock of an unlocked rwmutex", function() goroutine.rwmutex():runlock() end, "sync: RUnlock of unlocked RWMutex" },
  { "unlock of an unlocked rwmutex", function() goroutine.rwmutex():unlock() end, "sync: Unlock of unlocked RWMutex" },
  { "unlock of a read-locked rwmutex", function() local rw = goroutine.rwmutex(); rw:rlock(); rw:unlock() end, "sync: Unlock of unlocked RWMutex" },
  { "waitgroup add below zero", function() goroutine.waitgroup():add(-1) end, "sync: negative WaitGroup counter" },
  { "waitgroup done below zero", function() local wg = goroutine.waitgroup(); wg:add(1); wg:done(); wg:done() end,
    "sync: negative WaitGroup counter" },
  { "waitgroup counter overflow", function()
      local wg = goroutine.waitgroup(); wg:add(math.maxinteger); wg:add(math.maxinteger)
    end, "sync: WaitGroup counter overflow" },
  { "an error inside once", function() goroutine.once():call(error, "inside once") end, "inside once" },
  -- values that cannot cross: nothing half-sent (checked below too)
  { "send of a coroutine", function() goroutine.chan(1):send(coroutine.create(print)) end, "cannot send thread at value" },
  { "send of a FILE*", function() goroutine.chan(1):send(io.stdout) end, "cannot send userdata (FILE*) at value" },
  { "send of a foreign C function", function() goroutine.chan(1):send(string.gmatch("a", "a")) end, "cannot send C function at value" },
  { "send of a table that hides a FILE*", function() goroutine.chan(1):send({ 1, { log = io.stderr } }) end,
    "cannot send userdata (FILE*) at value[2].log" },
  { "send of a metatable that hides a FILE*", function() goroutine.chan(1):send(setmetatable({}, { __index = io.stdout })) end,
    "cannot send userdata (FILE*) at metatable.__index of value" },
  { "send of a user type without __name", function()
      goroutine.chan(1):send(setmetatable({}, { __goroutine_encode = function() return 1 end }))
    end, "its metatable has __goroutine_encode but no __name" },
  { "send of a user type whose encoder raises", function()
      goroutine.chan(1):send(setmetatable({}, { __name = "Bad", __goroutine_encode = function() error("encoder failed") end }))
    end, "encoder failed" },
  { "send of a value nested too deep", function()
      local deep = {}
      local cur = deep
      for _ = 1, 250000 do cur[1] = {}; cur = cur[1] end
      goroutine.chan(1):send(deep)
    end, "cannot send value: nesting deeper than 200000" },
}

describe("misuse of the API", function()
  for _, case in ipairs(CASES) do
    it("raises a clear error: " .. case[1], function()
      assert_misuse(case[3], case[2])
    end)
  end
end)

-- Every method of every handle type, called with a self that is not its
-- own handle: another kind of handle, nil, a number, a plain table.
describe("a method called on the wrong handle", function()
  local METHODS = {
    channel = { "send", "recv", "trysend", "tryrecv", "close", "range", "len", "cap" },
    mutex = { "lock", "unlock", "trylock" },
    rwmutex = { "lock", "unlock", "rlock", "runlock", "trylock", "tryrlock" },
    waitgroup = { "add", "done", "wait" },
    once = { "call" },
    cond = { "wait", "signal", "broadcast" },
    atomic = { "load", "store", "add", "cas" },
  }
  local TYPES = { "channel", "mutex", "rwmutex", "waitgroup", "once", "cond", "atomic" }

  it("names the method and both types, for every method of every type", function()
    local h = handles()
    local checked = 0
    for _, tname in ipairs(TYPES) do
      for _, mname in ipairs(METHODS[tname]) do
        local method = h[tname][mname]
        assert.is_function(method, tname .. ":" .. mname)
        local wrong = { { "nil", nil }, { "number", 1 }, { "table", {} } }
        for _, other in ipairs(TYPES) do
          if other ~= tname then wrong[#wrong + 1] = { other, h[other] } end
        end
        for _, w in ipairs(wrong) do
          local ok, err = pcall(function() return method(w[2], 1, 1) end)
          assert.is_false(ok, tname .. ":" .. mname .. " on a " .. w[1])
          -- ch.close(nil) is Go's close of a nil channel
          local want = (tname == "channel" and mname == "close" and w[1] == "nil")
            and "close of nil channel"
            or ("bad argument #1 to 'method' (" .. tname .. " expected, got " .. w[1] .. ")")
          assert.is_true(has(err, want), tname .. ":" .. mname .. " on a " .. w[1] .. ": " .. tostring(err))
          checked = checked + 1
        end
      end
    end
    assert.are.equal(28 * 9, checked)   -- 28 methods, 9 wrong selves each
    runtime_works()
  end)

  it("leaves the handle it was called on unchanged", function()
    local h = handles()
    pcall(function() return h.mutex.unlock(h.rwmutex) end)
    pcall(function() return h.waitgroup.add(h.atomic, 5) end)
    pcall(function() return h.channel.close(h.mutex) end)
    assert.is_true(h.mutex:trylock())
    assert.are.equal(0, h.atomic:load())
    assert.is_true(h.channel:trysend(1))
    assert.are.same({ 1, true }, { h.channel:recv() })
    runtime_works()
  end)
end)

describe("functions without parameters", function()
  it("ignore extra arguments, as Lua functions do", function()
    assert.are.equal(goroutine.id(), goroutine.id("x", {}))
    assert.is_number(goroutine.count(1, 2))
    assert.is_number(goroutine.now("x"))
    goroutine.yield("x")
    assert.are.equal("mutex", tostring(goroutine.mutex(1)):match("^%a+"))
    runtime_works()
  end)
end)

-- ================================================= handles used after close
describe("a closed channel", function()
  it("gives the zero value and false to every receive form, after draining", function()
    local ch = goroutine.chan(2)
    ch:send("a")
    ch:close()
    assert.are.same({ "a", true }, { ch:recv() })
    assert.are.same({ nil, false }, { ch:recv() })
    local r = { ch:tryrecv() }
    assert.are.same({ nil, false, "closed" }, { r[1], r[2], r[3] })
    local n = 0
    for _ in ch:range() do n = n + 1 end
    assert.are.equal(0, n)
    assert.are.same({ 2, nil, false }, { goroutine.select({ { recv = goroutine.chan() }, { recv = ch } }) })
    assert.are.equal(0, #ch)
    assert.are.equal(2, ch:cap())
    runtime_works()
  end)

  it("wakes a blocked receiver with the zero value and false", function()
    local ch, res = goroutine.chan(), goroutine.chan(1)
    goroutine.go(function(c, out) out:send({ c:recv() }) end, ch, res)
    ch:close()
    assert.are.same({ nil, false }, res:recv())
    runtime_works()
  end)

  it("makes a blocked sender raise send on closed channel, in its own goroutine only", function()
    local ch, res = goroutine.chan(), goroutine.chan(1)
    local started = goroutine.chan()
    goroutine.go(function(c, out, s)
      s:send(true)
      out:send({ pcall(c.send, c, "x") })
    end, ch, res, started)
    started:recv()
    -- the sender is blocked on ch, or about to be: either way close wins
    ch:close()
    local r = res:recv()
    assert.is_false(r[1])
    assert.is_true(has(r[2], "send on closed channel"))
    runtime_works()
  end)

  it("stops a timer channel: after and tick closed before they fire", function()
    local a, t = goroutine.after(0), goroutine.tick(0.001)
    a:close()
    t:close()
    assert.has_error(function() t:close() end)
    runtime_works()
  end)
end)

-- ===================================================== inside a goroutine
describe("a goroutine", function()
  it("starts with 10,000 arguments, all of them there", function()
    local args = {}
    for i = 1, 10000 do args[i] = i end
    local out = goroutine.chan(1)
    goroutine.go(function(o, ...)
      local s = 0
      for i = 1, select("#", ...) do s = s + select(i, ...) end
      o:send({ select("#", ...), s })
    end, out, table.unpack(args))
    assert.are.same({ 10000, 10000 * 10001 // 2 }, out:recv())
    runtime_works()
  end)

  it("catches its own stack overflow, and goes on", function()
    local out = goroutine.chan(1)
    goroutine.go(function(o)
      local function down(n) return 1 + down(n + 1) end
      local ok, err = pcall(down, 1)
      -- the goroutine is still usable after the overflow
      local t = {}
      for i = 1, 1000 do t[i] = i end
      o:send({ ok, err, #t })
    end, out)
    local r = out:recv()
    assert.is_false(r[1])
    assert.is_true(has(r[2], "stack overflow"), tostring(r[2]))
    assert.are.equal(1000, r[3])
    runtime_works()
  end)

  it("catches an error object that is a table or nil", function()
    local out = goroutine.chan(1)
    goroutine.go(function(o)
      local ok1, e1 = pcall(error, { code = 7 })
      local ok2, e2 = pcall(error, nil)
      local ok3, e3 = pcall(error)
      o:send({ ok1, e1.code, ok2, e2 == nil, ok3, e3 == nil })
    end, out)
    assert.are.same({ false, 7, false, true, false, true }, out:recv())
    runtime_works()
  end)
end)

-- =========================================== values that cannot cross
describe("a value that cannot cross", function()
  it("is not half-sent: the channel holds nothing and still works", function()
    local ch = goroutine.chan(4)
    for _, bad in ipairs({
      { 1, 2, { 3, io.stdout } },
      { ok = "fine", co = coroutine.create(print) },
      { f = string.gmatch("a", "a") },
    }) do
      local ok = pcall(ch.send, ch, bad)
      assert.is_false(ok)
      assert.are.equal(0, #ch)
      assert.is_false(pcall(ch.trysend, ch, bad))
      assert.are.equal(0, #ch)
    end
    ch:send("good")
    assert.are.same({ "good", true }, { ch:recv() })
    runtime_works()
  end)

  it("is not half-sent to a waiting receiver: it keeps waiting for a good value", function()
    local ch, res = goroutine.chan(), goroutine.chan(1)
    goroutine.go(function(c, out) out:send({ c:recv() }) end, ch, res)
    for _ = 1, 100 do goroutine.yield() end    -- let the receiver park
    assert.is_false(pcall(ch.send, ch, { io.stdout }))
    assert.is_false(pcall(goroutine.select, { { send = ch, value = coroutine.create(print) } }))
    assert.are.same({ nil, false }, { res:tryrecv() })
    ch:send("good")
    assert.are.same({ "good", true }, res:recv())
    runtime_works()
  end)

  it("of a user type with no decoder fails at the receiver, who can go on", function()
    local ch = goroutine.chan(2)
    local T = setmetatable({ x = 1 }, { __name = "misuse.NoDecoder", __goroutine_encode = function(s) return { s.x } end })
    ch:send(T)
    ch:send("next")
    local ok, err = pcall(ch.recv, ch)
    assert.is_false(ok)
    assert.is_true(has(err, "no decoder registered"), err)
    assert.are.same({ "next", true }, { ch:recv() })     -- the bad message is consumed, once
    runtime_works()
  end)

  it("of a user type whose decoder raises fails at the receiver, who can go on", function()
    goroutine.register("misuse.Raises", function() error("decoder failed") end)
    local ch = goroutine.chan(2)
    ch:send(setmetatable({}, { __name = "misuse.Raises", __goroutine_encode = function() return 0 end }))
    ch:send("next")
    local ok, err = pcall(ch.recv, ch)
    assert.is_false(ok)
    assert.is_true(has(err, "decoder failed"), err)
    assert.are.same({ "next", true }, { ch:recv() })
    runtime_works()
  end)

  it("with cycles crosses with its shape", function()
    local t = { name = "cyclic" }
    t.self = t
    t[t] = t
    local ch = goroutine.chan(1)
    ch:send(t)
    local r = ch:recv()
    assert.are.equal(r, r.self)
    assert.are.equal(r, r[r])
    assert.are.equal("cyclic", r.name)
    runtime_works()
  end)
end)

-- ============================================ programs that end (subprocess)
local LUA = os.getenv("LUA") or "lua5.4"

-- Run 'code' under goroutine-lua (mode "command") or stock lua5.4 with
-- require "goroutine" (mode "module").
local function program(mode, code, seconds)
  local env = "timeout " .. (seconds or 60)
  if mode == "command" then
    return support.script(code, { env = env })
  end
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "wb")); f:write(code); f:close()
  local build = (os.getenv("GOROUTINE_LUA") or "build/goroutine-lua"):match("^(.*)/[^/]*$") or "build"
  local r = support.sh("LUA_CPATH=" .. support.quote(build .. "/?.so;;") .. " " .. env .. " "
    .. support.quote(LUA) .. " " .. support.quote(path))
  os.remove(path)
  return r
end

-- A goroutine dies with an uncaught error object of this body.
local function uncaught(body)
  return program("command", [[
local wg = goroutine.waitgroup()
wg:add(1)
goroutine.go(function() ]] .. body .. [[ end)
wg:wait()
]])
end

describe("an uncaught error in a goroutine", function()
  local REPORTS = {
    { "a table", "error({ code = 7 })", "(error object is a table value)" },
    { "nil", "error(nil)", "(error object is a nil value)" },
    { "a table whose __tostring raises",
      "error(setmetatable({}, { __tostring = function() error('again') end }))", "(error object is a table value)" },
    { "a table whose __tostring gives a number",
      "error(setmetatable({}, { __tostring = function() return 42 end }))", "(error object is a table value)" },
    { "a table whose __tostring gives text",
      "error(setmetatable({}, { __tostring = function() return 'described' end }))", "described" },
    { "a stack overflow", "local function down() return 1 + down() end down()", "stack overflow" },
  }
  for _, c in ipairs(REPORTS) do
    it("is reported clearly when it is " .. c[1] .. " (status 1, no crash)", function()
      local r = uncaught(c[2])
      assert.are.equal(1, r.status, r.stderr)
      assert.are.equal("goroutine 2 [error]:\n", r.stderr:sub(1, 21))
      local first = r.stderr:match("^[^\n]*\n([^\n]*)")
      assert.is_true(has(first, c[3]), r.stderr)
      assert.is_true(has(r.stderr, "stack traceback:"), r.stderr)
    end)
  end

  it("in the main script, with a __tostring that gives a number, is reported as lua5.4 does", function()
    local r = program("command", "error(setmetatable({}, { __tostring = function() return 42 end }))")
    assert.are.equal(1, r.status, r.stderr)
    assert.is_true(has(r.stderr, "(error object is a table value)"), r.stderr)
  end)
end)

-- ================================================= stack overflows
-- Lua's two limits, reached inside a goroutine: the Lua stack (LUAI_MAXSTACK,
-- a million slots) and the C stack (LUAI_MAXCCALLS, 200 nested C calls:
-- pcall, metamethods, callbacks of C functions, coroutine resumes, each
-- nesting frames on the worker thread's own stack).  Either must give
-- Lua's own error, caught or uncaught, never a crash, a hang or a spin.
-- Each case runs as a program under `timeout`: a hang fails the case.
local OVERFLOWS = {
  { "Lua calls a million frames deep", "local function down() return 1 + down() end down()",
    "stack overflow" },
  { "Lua calls a million frames deep inside a string.gsub callback (where the goroutine cannot yield)",
    "string.gsub('x', '.', function() local function down() return 1 + down() end return down() end)",
    "stack overflow" },
  { "Lua calls a million frames deep inside a coroutine.wrap",
    "coroutine.wrap(function() local function down() return 1 + down() end down() end)()",
    "stack overflow" },
  { "string.gsub callbacks calling string.gsub",
    "local function f() return string.gsub('x', '.', f) end f()", "C stack overflow" },
  { "nested coroutine.wrap", "local function f() return coroutine.wrap(f)() end f()",
    "C stack overflow" },
  { "nested coroutine.resume",
    "local function f() local _, e = coroutine.resume(coroutine.create(f)) error(e, 0) end f()",
    "C stack overflow" },
  { "pcall calling pcall", "local function f() local _, e = pcall(f) error(e, 0) end f()",
    "C stack overflow" },
  { "__index metamethods indexing",
    "local mt = {} mt.__index = function(_, k) return setmetatable({}, mt)[k] end local _ = setmetatable({}, mt).x",
    "C stack overflow" },
  { "table.sort comparators sorting",
    "local function lt(a, b) table.sort({ 3, 1, 2 }, lt) return a < b end table.sort({ 3, 1, 2 }, lt)",
    "C stack overflow" },
  { "a message handler that overflows itself",
    "local function down() return 1 + down() end local _, e = xpcall(down, function() return down() end) error(e, 0)",
    "error in error handling" },
}

-- The program in which a goroutine catches the overflow of 'body' under
-- pcall, then goes on: it starts another goroutine and takes a value from
-- it over a channel, and locks a mutex.  It prints the error and "goes on".
local function caught(body)
  return [[
local goroutine = require "goroutine"
local out = goroutine.chan()
goroutine.go(function(o)
  local ok, err = pcall(function() ]] .. body .. [[ end)
  local ch, mu = goroutine.chan(), goroutine.mutex()
  goroutine.go(function(c) c:send(42) end, ch)
  mu:lock()
  local v = ch:recv()
  mu:unlock()
  o:send({ ok, tostring(err), v })
end, out)
local r = out:recv()
print(r[1], r[2])
print(r[3] == 42 and "goes on" or "stopped")
]]
end

-- The mode of this run of the suite: the cases that only start
-- goroutine-lua subprocesses run once, in the goroutine-lua run.
local MODE = ((arg and arg[-1]) or ""):match("goroutine%-lua$") and "command" or "module"
local once = MODE == "command" and it or function() end

describe("a stack overflow in a goroutine", function()
  for _, c in ipairs(OVERFLOWS) do
    once("of " .. c[1] .. ", uncaught, is reported as goroutine 2 [error]: with status 1", function()
      local r = uncaught(c[2])
      assert.are.equal(1, r.status, "status (124: it hung) " .. r.stderr)
      assert.are.equal("goroutine 2 [error]:\n", r.stderr:sub(1, 21))
      local first = r.stderr:match("^[^\n]*\n([^\n]*)")
      assert.is_true(has(first, c[3]), r.stderr)
      assert.is_true(has(r.stderr, "stack traceback:"), r.stderr)
    end)

    it("of " .. c[1] .. ", caught under pcall, lets the goroutine go on (" .. MODE .. " mode)", function()
      local r = program(MODE, caught(c[2]))
      assert.are.equal(0, r.status, "status (124: it hung) " .. r.stderr)
      local line1, line2 = r.stdout:match("^([^\n]*)\n([^\n]*)\n$")
      assert.is_true(has(line1, "false\t"), r.stdout)
      assert.is_true(has(line1, c[3]), r.stdout)
      assert.are.equal("goes on", line2)
    end)
  end

  -- sysmon asks a goroutine that ran a time slice to yield, and asks again
  -- every tick until it does; arming the preemption hook walks the whole
  -- Lua stack.  At a million frames that walk outlasted the tick, and a
  -- handler that armed the hook on each request never let the goroutine
  -- run again: the overflow spun for minutes (on a slower machine, or a
  -- loaded one; on a fast idle one often not).  So: every worker count,
  -- chaos seeds, both in a goroutine and in the main script.
  once("of a million frames is reported every time, on 1, 2 and 4 workers and under chaos seeds", function()
    local down = "local function down() return 1 + down() end down()"
    for _, procs in ipairs({ 1, 2, 4 }) do
      for _, seed in ipairs({ "", "GOROUTINE_CHAOS=" .. procs }) do
        local env = "timeout 60 env -u GOROUTINE_CHAOS GOROUTINE_MAXPROCS=" .. procs .. " " .. seed
        local r = support.script("local wg = goroutine.waitgroup() wg:add(1) goroutine.go(function() "
          .. down .. " end) wg:wait()", { env = env })
        local how = ("-p %d %s: "):format(procs, seed)
        assert.are.equal(1, r.status, how .. "status (124: it spun) " .. r.stderr)
        assert.is_true(has(r.stderr, "stack overflow"), how .. r.stderr)
        r = support.script("print(pcall(function() " .. down .. " end))", { env = env })
        assert.are.equal(0, r.status, how .. "status (124: it spun) " .. r.stderr)
        assert.is_true(has(r.stdout, "false\t") and has(r.stdout, "stack overflow"), how .. r.stdout)
      end
    end
  end)
end)

for _, mode in ipairs({ "command", "module" }) do
  describe("a program in " .. mode .. " mode", function()
    it("exits with status 0 when main returns while goroutines are mid-send", function()
      -- 50 senders blocked on or entering ch:send, a receiver taking some,
      -- a busy loop: main returns in the middle of it all.
      for _ = 1, 5 do
        local r = program(mode, [[
local goroutine = require "goroutine"
local ch, started = goroutine.chan(), goroutine.chan()
for i = 1, 50 do
  goroutine.go(function(c, s, i)
    s:send(true)
    while true do c:send({ i, string.rep("x", 100) }) end
  end, ch, started, i)
  started:recv()
end
goroutine.go(function(c) while true do c:recv() end end, ch)
goroutine.go(function() while true do end end)
for _ = 1, 100 do ch:recv() end
print("main done")
]])
        assert.are.equal(0, r.status, r.stderr)
        assert.are.equal("main done\n", r.stdout)
        assert.are.equal("", r.stderr)
      end
    end)

    -- The deadlock exit (status 2) is goroutine-lua's: a module host is
    -- told through its own error path.
    if mode == "command" then
    it("reports a deadlock in Go's words when main locks a mutex twice", function()
      local r = program(mode, [[
local mu = goroutine.mutex()
mu:lock()
mu:lock()
]])
      assert.are.equal(2, r.status, r.stderr)
      assert.is_true(has(r.stderr, "fatal error: all goroutines are asleep - deadlock!"), r.stderr)
    end)

    it("reports a deadlock when once:call calls itself (as Go)", function()
      local r = program(mode, [[
local once = goroutine.once()
once:call(function() once:call(print) end)
]])
      assert.are.equal(2, r.status, r.stderr)
      assert.is_true(has(r.stderr, "all goroutines are asleep - deadlock!"), r.stderr)
    end)
    end
  end)
end
