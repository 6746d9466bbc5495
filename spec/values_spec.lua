-- spec/values_spec.lua — what crosses between goroutines and how: go
-- arguments and upvalues follow the same rules as channel messages; _ENV
-- is rebound to the receiver's globals; standard C functions cross by name;
-- closures keep their shared upvalues; and what cannot cross is refused in
-- the sender, naming the type and the place.
--
-- Synchronisation is by channels and wait groups only.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

local has = support.has

local let_others_run = support.let_others_run

-- Run f(out, ...) in a goroutine; returns what it sends on out.
local function in_goroutine(f, ...)
  local out = goroutine.chan()
  goroutine.go(f, out, ...)
  return (out:recv())
end

-- pcall(f, ...) must fail with a message containing every string in 'parts'.
local function assert_refused(parts, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected 'cannot send'")
  for _, p in ipairs(parts) do
    assert.is_true(has(err, p), ("missing %q in: %s"):format(p, tostring(err)))
  end
  return err
end

describe("go arguments", function()
  it("keep number subtypes, strings and table shape", function()
    local shared = { "s" }
    local got = in_goroutine(function(o, i, f, s, t, a, b)
      o:send({
        i = math.type(i), f = math.type(f), s = s, len = #s,
        cycle = rawequal(t, t.self), shared = rawequal(a, b), inner = a[1],
      })
    end, 3, 3.0, "x\0y", (function() local t = {}; t.self = t; return t end)(), shared, shared)
    assert.same({ i = "integer", f = "float", s = "x\0y", len = 3, cycle = true,
                  shared = true, inner = "s" }, got)
  end)

  it("and upvalues are one value: a table passed both ways arrives as one table", function()
    local t = { n = 1 }
    local same = in_goroutine(function(o, arg) o:send(rawequal(arg, t)) end, t)
    assert.is_true(same)
  end)

  it("are copies: changes in the goroutine do not reach the caller", function()
    local t = { n = 1 }
    local n = in_goroutine(function(o, arg) arg.n = arg.n + 100; o:send(arg.n) end, t)
    assert.equal(101, n)
    assert.equal(1, t.n)
  end)
end)

describe("upvalues", function()
  it("are copied along with the function", function()
    local greeting, list = "hello", { 1, 2, 3 }
    local got = in_goroutine(function(o) o:send(greeting .. " " .. #list) end)
    assert.equal("hello 3", got)
  end)

  it("are the goroutine's own copy: a captured counter changes only there", function()
    local counter = 0
    local wg = goroutine.waitgroup()
    local results = goroutine.chan(10)
    for _ = 1, 10 do
      wg:add(1)
      goroutine.go(function()
        counter = counter + 1
        results:send(counter)
        wg:done()
      end)
    end
    wg:wait()
    for _ = 1, 10 do assert.equal(1, results:recv()) end
    assert.equal(0, counter)
  end)

  it("stay shared between two closures sent together", function()
    local n = 0
    local function inc() n = n + 1 end
    local function get() return n end
    -- as upvalues of the goroutine's function
    local got = in_goroutine(function(o) inc(); inc(); o:send(get()) end)
    assert.equal(2, got)
    -- as one channel message
    got = in_goroutine(function(o, fns) fns.inc(); fns.inc(); fns.inc(); o:send(fns.get()) end,
                       { inc = inc, get = get })
    assert.equal(3, got)
    assert.equal(0, n)
  end)

  it("may be a recursive local function", function()
    local function fact(k) if k <= 1 then return 1 end return k * fact(k - 1) end
    assert.equal(3628800, in_goroutine(function(o) o:send(fact(10)) end))
    assert.equal(720, in_goroutine(function(o, f) o:send(f(6)) end, fact))
  end)
end)

describe("the _ENV of a function that crosses", function()
  it("is the receiving goroutine's own globals when it was the sender's globals", function()
    local got = in_goroutine(function(o)
      o:send({
        fmt = string.format("%03d", 7),
        print = type(print),
        env_is_G = rawequal(_ENV, _G),
        id = goroutine.id() == _G.goroutine.id(),
      })
    end)
    assert.same({ fmt = "007", print = "function", env_is_G = true, id = true }, got)
  end)

  it("is not shared: a global set in a goroutine is not seen in main", function()
    local got = in_goroutine(function(o)
      spec_values_global = "set in goroutine"
      o:send(spec_values_global)
    end)
    assert.equal("set in goroutine", got)
    assert.is_nil(rawget(_G, "spec_values_global"))
  end)

  it("is not shared: a global set in main is not seen in a goroutine", function()
    _G.spec_values_main = "set in main"
    local got = in_goroutine(function(o) o:send(spec_values_main == nil) end)
    _G.spec_values_main = nil
    assert.is_true(got)
  end)

  it("follows a function back to main: there it reads main's globals", function()
    _G.spec_values_marker = "main"
    local f = in_goroutine(function(o)
      spec_values_marker = "goroutine"
      o:send(function() return spec_values_marker end)
    end)
    local seen = f()
    _G.spec_values_marker = nil
    assert.equal("main", seen)
  end)

  it("is copied like a table when it is some other table", function()
    local function make()
      local _ENV = { x = 5, y = "own env" }
      return function() return x, y end
    end
    local got = in_goroutine(function(o, f) o:send({ f() }) end, make())
    assert.same({ 5, "own env" }, got)
  end)
end)

describe("C functions of the standard library and of this module", function()
  -- A goroutine opens most standard libraries on first use: the functions
  -- must arrive even where the receiver has not touched math or table yet.
  -- The receive is protected, so a failure is reported, not fatal.
  it("cross by name in a message and work on the other side", function()
    local ch, out = goroutine.chan(), goroutine.chan()
    goroutine.go(function(o, c)
      local ok, fns = pcall(c.recv, c)
      if not ok then o:send({ error = fns }); return end
      o:send({
        fmt = fns.format("%s-%d", "a", 1),
        floor = fns.floor(2.7),
        concat = fns.concat({ "x", "y" }, ","),
        len = fns.len("h\u{e9}"),
        id = fns.id() == goroutine.id(),
        same_format = rawequal(fns.format, string.format),
        same_floor = rawequal(fns.floor, math.floor),
        print = rawequal(fns.print, print),
      })
    end, out, ch)
    ch:send({ format = string.format, floor = math.floor, concat = table.concat,
              len = utf8.len, id = goroutine.id, print = print })
    local got = out:recv()
    assert.same({ fmt = "a-1", floor = 2, concat = "x,y", len = 2, id = true,
                  same_format = true, same_floor = true, print = true }, got)
  end)

  it("cross by name as go arguments, into a goroutine that has opened nothing", function()
    local r = support.script([[
      local goroutine = require "goroutine"
      local out = goroutine.chan()
      goroutine.go(function(o, floor, concat, time, write)
        o:send(floor(2.7) .. concat({ "", "y" }, ",") .. math.type(time()) .. type(write))
      end, out, math.floor, table.concat, os.time, io.write)
      print((out:recv()))
    ]], { env = "timeout 60" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("2,yintegerfunction\n", r.stdout)
  end)

  it("come back to main as main's own functions", function()
    local fns = in_goroutine(function(o)
      o:send({ print = print, format = string.format, id = goroutine.id, sleep = goroutine.sleep })
    end)
    assert.is_true(rawequal(print, fns.print))
    assert.is_true(rawequal(string.format, fns.format))
    assert.equal(1, fns.id())
    assert.equal(goroutine.id, fns.id)
  end)

  it("can be started directly by go", function()
    assert.equal("integer", math.type(goroutine.go(string.rep, "x", 3)))
    assert.equal("integer", math.type(goroutine.go(goroutine.sleep, 0)))
  end)

  it("include this module's constructors", function()
    local ch = in_goroutine(function(o, mk) o:send(mk(1)) end, goroutine.chan)
    ch:send("works")
    assert.equal("works", ch:recv())
  end)

  it("the module table itself crosses as the receiver's own module", function()
    local g = goroutine
    local got = in_goroutine(function(o, mod)
      -- an upvalue and an argument, both the sender's module
      o:send({ up = rawequal(g, goroutine), arg = rawequal(mod, goroutine),
               go = rawequal(go, goroutine.go), chan = type(g.chan) })
    end, goroutine)
    assert.same({ up = true, arg = true, go = true, chan = "function" }, got)
    -- and back: main's own module
    local back = in_goroutine(function(o) o:send({ goroutine, go }) end)
    assert.is_true(rawequal(back[1], goroutine))
    assert.is_true(rawequal(back[2], goroutine.go))
  end)

  it("the module lists every function to pairs, even before its first use", function()
    local names = in_goroutine(function(o)
      local seen = {}
      for k, v in pairs(goroutine) do seen[#seen + 1] = k .. ":" .. type(v) end
      table.sort(seen)
      o:send(table.concat(seen, " "))
    end)
    local mine = {}
    for k, v in pairs(goroutine) do mine[#mine + 1] = k .. ":" .. type(v) end
    table.sort(mine)
    assert.equal(table.concat(mine, " "), names)
    assert.truthy(names:find("go:function", 1, true))
    assert.truthy(names:find("waitgroup:function", 1, true))
  end)

  it("other C functions are refused", function()
    local ch = goroutine.chan(1)
    local iter = string.gmatch("a b", "%a")     -- a C closure of no library
    assert_refused({ "cannot send", "function" }, ch.send, ch, iter)
    assert.equal(0, ch:len())
  end)
end)

describe("a value that cannot cross", function()
  it("is refused in a message, naming 'userdata (FILE*)' and the path 'value.log'", function()
    local ch = goroutine.chan(1)
    local err = assert_refused({ "cannot send userdata (FILE*)", "value.log" },
                               ch.send, ch, { log = io.stdout })
    assert.equal("cannot send userdata (FILE*) at value.log", err:match("cannot send.*$"))
  end)

  it("is refused deep inside a message, naming every key on the way", function()
    local ch = goroutine.chan(1)
    assert_refused({ "cannot send userdata (FILE*)", "config", "out" },
                   ch.send, ch, { config = { out = io.stderr } })
    assert_refused({ "cannot send userdata (FILE*)", "[2]" }, ch.send, ch, { "ok", io.stderr })
    assert.equal(0, ch:len())
  end)

  -- The paths below are docs/api.md's examples: arguments are numbered
  -- from the first one after the function.
  it("is refused as a go argument, naming the argument", function()
    assert_refused({ "cannot send userdata (FILE*)", "argument #2" },
                   goroutine.go, function() end, 1, io.stdout)
    assert_refused({ "cannot send userdata (FILE*) at argument #1.a.b" },
                   goroutine.go, print, { a = { b = io.stdout } })
  end)

  it("is refused as an upvalue, naming the upvalue", function()
    local f = io.stdout
    assert_refused({ "cannot send userdata (FILE*) at upvalue 'f' of function" },
                   goroutine.go, function() return f end)
    local ch = goroutine.chan(1)
    assert_refused({ "cannot send userdata (FILE*)", "upvalue 'f'" },
                   ch.send, ch, { handler = function() return f end })
  end)

  it("is refused when it is a coroutine, naming its type", function()
    local co = coroutine.create(function() end)
    local ch = goroutine.chan(1)
    assert_refused({ "cannot send", "thread" }, ch.send, ch, co)
    assert_refused({ "cannot send", "thread", "upvalue 'co'" }, goroutine.go, function() return co end)
  end)

  it("starts nothing when refused by go", function()
    local ch = goroutine.chan(1)
    local ok = pcall(goroutine.go, function(c) c:send("started") end, ch, io.stdout)
    assert.is_false(ok)
    let_others_run()
    assert.same({ n = 2, nil, false }, table.pack(ch:tryrecv()))
  end)

  it("is a stripped function (no debug information)", function()
    local function f() return 42 end
    local stripped = assert(load(string.dump(f, true), "=stripped", "b"))
    local ch = goroutine.chan(1)
    assert_refused({ "cannot send", "function" }, ch.send, ch, stripped)
    assert_refused({ "cannot send", "function" }, goroutine.go, stripped)
    -- the same function with its debug information crosses
    local whole = assert(load(string.dump(f), "=whole", "b"))
    ch:send(whole)
    assert.equal(42, ch:recv()())
  end)
end)

describe("deeply nested tables", function()
  local function nest(depth)
    local root = {}
    local t = root
    for i = 1, depth do t.next = { level = i }; t = t.next end
    return root
  end
  local function depth_of(t)
    local d = 0
    while t.next do d = d + 1; t = t.next end
    return d
  end

  it("cross intact at moderate depth", function()
    assert.equal(150, in_goroutine(function(o, t, count) o:send(count(t)) end, nest(150), depth_of))
  end)

  it("either cross intact or are refused in the sender, never crash", function()
    local ch = goroutine.chan(1)
    local ok, err = pcall(ch.send, ch, nest(100000))
    if ok then
      assert.equal(100000, depth_of(ch:recv()))
    else
      assert.is_true(has(err, "cannot send"), err)
      assert.equal(0, ch:len())
    end
  end)
end)
