-- spec/values_property_spec.lua — the codec against API.md "Values that
-- cross": what values_spec and channels_spec leave out (-0.0, every key
-- type, handles of every kind, 100 MB strings, 10 million elements, 100,000
-- levels, user types), then the property: 10,000 random values, each sent
-- to a goroutine and back, equal to the original in every part, the shape
-- of shared references and cycles included.
--
-- Synchronisation is by channels only.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the busted names as locals and make everything below see _G.
local describe, it, pending, assert = describe, it, pending, assert
local support = require "support"
local _ENV = _G

-- The big cases need memory and time the sanitizers do not have.
local heavy_it = os.getenv("SANITIZER") and pending or it

local has = support.has

-- Send v to a goroutine and back: the value as it arrives after two copies.
local function roundtrip(v)
  local to, from = goroutine.chan(), goroutine.chan()
  goroutine.go(function(i, o) o:send((i:recv())) end, to, from)
  to:send(v)
  return (from:recv())
end

-- Run f(out, ...) in a goroutine; returns what it sends on out.
local function in_goroutine(f, ...)
  local out = goroutine.chan()
  goroutine.go(f, out, ...)
  return (out:recv())
end

describe("numbers that cross", function()
  it("keep -0.0, the infinities and NaN, each a float", function()
    local t = roundtrip({ -0.0, 1 / 0, -1 / 0, 0 / 0, 0.0 })
    assert.equal(-math.huge, 1 / t[1])
    assert.equal(math.huge, t[2])
    assert.equal(-math.huge, t[3])
    assert.is_true(t[4] ~= t[4])
    assert.equal(math.huge, 1 / t[5])
    for i = 1, 5 do assert.equal("float", math.type(t[i])) end
  end)

  it("keep integers at every size boundary, as integers", function()
    local ints = { 127, 128, -128, -129, 32767, -32769, 2147483647, -2147483649,
                   math.maxinteger, math.mininteger }
    local got = roundtrip(ints)
    for i, n in ipairs(ints) do
      assert.equal(n, got[i])
      assert.equal("integer", math.type(got[i]))
    end
  end)
end)

describe("tables that cross", function()
  it("keep keys of every transferable type", function()
    local tk, fk, ch, mu = { "table key" }, function() return "function key" end,
                           goroutine.chan(), goroutine.mutex()
    local t = { [1] = "one", [-5] = "neg", [0] = "zero", [math.maxinteger] = "max",
                [2.5] = "float", [true] = "true", [false] = "false", [""] = "empty",
                ["a\0b"] = "binary", [tk] = "by table", [fk] = "by function",
                [string.format] = "by C function", [ch] = "by channel",
                [mu] = "by mutex" }
    local got = in_goroutine(function(o, v)
      local r = {}
      for k, x in pairs(v) do
        local what = type(k)
        if what == "table" then r.tk = k[1] .. "/" .. x
        elseif what == "function" and k == string.format then r.cf = x
        elseif what == "function" then r.fk = k() .. "/" .. x
        elseif what == "userdata" then r[tostring(k):match("^%a+")] = x
        else r[#r + 1] = tostring(k) end
      end
      table.sort(r)
      o:send(r)
    end, t)
    assert.same({ "", "-5", "0", "1", "2.5", "9223372036854775807", "a\0b", "false", "true",
                  tk = "table key/by table", fk = "function key/by function",
                  cf = "by C function", channel = "by channel", mutex = "by mutex" }, got)
  end)

  it("cross 100,000 levels deep", function()
    local root = {}
    local c = root
    for i = 1, 99999 do c.next = { level = i }; c = c.next end
    local got = in_goroutine(function(o, v)
      local d, x = 0, v
      while x.next do d = d + 1; x = x.next end
      o:send({ depth = d, level = x.level })
    end, root)
    assert.same({ depth = 99999, level = 99999 }, got)
  end)

  it("nested past " .. 200000 .. " levels are refused in the sender, naming the limit", function()
    local root = {}
    local c = root
    for _ = 1, 200000 do c[1] = {}; c = c[1] end
    local ch = goroutine.chan(1)
    local ok, err = pcall(ch.send, ch, { x = root })
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send value: nesting deeper than 200000 at value.x[1][1]"), err)
    assert.equal(0, ch:len())
  end)

  it("copy each metatable once per value, shared by the tables that had it", function()
    local mt = { __index = { kind = "shared" } }
    local other = { __index = mt.__index }
    local got = roundtrip({ setmetatable({}, mt), setmetatable({}, mt), setmetatable({}, other) })
    assert.equal("shared", got[1].kind)
    assert.is_true(rawequal(getmetatable(got[1]), getmetatable(got[2])))
    assert.is_false(rawequal(getmetatable(got[1]), getmetatable(got[3])))
    assert.is_true(rawequal(getmetatable(got[1]).__index, getmetatable(got[3]).__index))
    assert.is_false(rawequal(getmetatable(got[1]), mt))
  end)

  heavy_it("cross a list of 10 million elements", function()
    local n = 10000000
    local list = {}
    for i = 1, n do list[i] = i end
    local got = in_goroutine(function(o, l)
      local bad = 0
      for i = 1, #l, 9973 do if l[i] ~= i then bad = bad + 1 end end
      o:send({ len = #l, last = l[#l], bad = bad })
    end, list)
    assert.same({ len = n, last = n, bad = 0 }, got)
  end)
end)

describe("strings that cross", function()
  heavy_it("may be 100 MB, every byte in place", function()
    local s = "BEGIN" .. string.rep("0123456789abcdef", 100 * 2 ^ 20 // 16) .. "END"
    local got = in_goroutine(function(o, v)
      o:send({ len = #v, head = v:sub(1, 21), tail = v:sub(-19), mid = v:sub(50 * 2 ^ 20, 50 * 2 ^ 20 + 4) })
    end, s)
    assert.same({ len = #s, head = s:sub(1, 21), tail = s:sub(-19),
                  mid = s:sub(50 * 2 ^ 20, 50 * 2 ^ 20 + 4) }, got)
  end)
end)

describe("functions that cross", function()
  it("may be nested closures, each level's upvalues copied", function()
    local a = { "outer" }
    local function outer(b)
      return function(c) return a[1] .. "/" .. b .. "/" .. c end
    end
    local f = outer("middle")
    local got = in_goroutine(function(o, g, mk) o:send({ g("inner"), mk("m2")("i2") }) end, f, outer)
    assert.same({ "outer/middle/inner", "outer/m2/i2" }, got)
  end)

  it("may take varargs", function()
    local tag = "n="
    local function count(...) return tag .. select("#", ...), ... end
    local got = in_goroutine(function(o, f) o:send({ f(1, nil, 3, nil) }) end, count)
    assert.same({ "n=4", 1, nil, 3 }, got)
  end)

  it("share one value with everything else one go() sends: the function and every argument", function()
    local shared = { n = 0 }
    local function f(o, a, b)
      shared.n = shared.n + 1
      o:send({ rawequal(shared, a), rawequal(shared, b.inner), rawequal(a, b.inner), shared.n, a.n })
    end
    local got = in_goroutine(f, shared, { inner = shared })
    assert.same({ true, true, true, 1, 1 }, got)
    assert.equal(0, shared.n)
  end)
end)

describe("handles that cross", function()
  it("are the same object, one Lua value per goroutine, back home the original", function()
    local hs = { chan = goroutine.chan(1), mutex = goroutine.mutex(), rw = goroutine.rwmutex(),
                 wg = goroutine.waitgroup(), once = goroutine.once(), atomic = goroutine.atomic(5) }
    hs.cond = goroutine.cond(hs.mutex)
    local back, carrier = goroutine.chan(), goroutine.chan(2)
    goroutine.go(function(c, o)
      local first, second = c:recv(), c:recv()
      local same = true
      for k, h in pairs(first) do same = same and rawequal(h, second[k]) end
      first.atomic:add(1)
      o:send({ first = first, same = same, keyed = ({ [first.chan] = "found" })[second.chan] })
    end, carrier, back)
    carrier:send(hs)
    carrier:send(hs)
    local got = back:recv()
    assert.is_true(got.same)
    assert.equal("found", got.keyed)
    for k, h in pairs(hs) do assert.is_true(rawequal(h, got.first[k]), k) end
    assert.equal(6, hs.atomic:load())
  end)
end)

describe("user types", function()
  -- A point crosses as {x, y}; each goroutine rebuilds it with its own
  -- Point class, registered with goroutine.register.
  local function point_class()
    local Point = { __name = "point" }
    Point.__index = Point
    function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
    function Point:len2() return self.x * self.x + self.y * self.y end
    function Point:__goroutine_encode() return { self.x, self.y } end
    return Point
  end

  it("cross as their encoding, rebuilt by the decoder the receiver registered", function()
    local Point = point_class()
    goroutine.register("point", function(t) return Point.new(t[1], t[2]) end)
    local p = Point.new(3, 4)
    local c = goroutine.chan(1)
    c:send({ p, { p, p } })
    local got = in_goroutine(function(o, mk, ch)
      local P = mk()
      local calls = 0
      goroutine.register("point", function(t) calls = calls + 1; return P.new(t[1], t[2]) end)
      local w = ch:recv()
      o:send({ len2 = w[1]:len2(), shared = rawequal(w[1], w[2][1]) and rawequal(w[1], w[2][2]),
               own = getmetatable(w[1]) == P, calls = calls, back = w[1] })
    end, point_class, c)
    assert.equal(25, got.len2)
    assert.is_true(got.shared)
    assert.is_true(got.own)
    assert.equal(1, got.calls)
    assert.equal(Point, getmetatable(got.back))   -- rebuilt here by this state's decoder
    assert.equal(25, got.back:len2())
    goroutine.register("point", nil)
  end)

  it("as go() arguments fail in the new goroutine, which has no decoder yet", function()
    local r = support.script([[
      local goroutine = require "goroutine"
      local P = { __name = "point", __goroutine_encode = function(p) return p.x end }
      goroutine.register("point", function(x) return setmetatable({ x = x }, P) end)
      goroutine.go(function(p) end, setmetatable({ x = 1 }, P))
      goroutine.chan():recv()
    ]], { env = "timeout 60" })
    assert.equal(1, r.status)
    assert.is_true(has(r.stderr, "cannot receive a value of type 'point': no decoder registered"), r.stderr)
  end)

  it("may be userdata", function()
    local f = io.tmpfile()
    debug.setmetatable(f, { __name = "tmpname", __goroutine_encode = function() return "the name" end })
    local c = goroutine.chan(1)
    c:send(f)
    local got = in_goroutine(function(o, ch)
      goroutine.register("tmpname", function(s) return { rebuilt = s } end)
      o:send(ch:recv())
    end, c)
    assert.same({ rebuilt = "the name" }, got)
  end)

  it("without a decoder in the receiver are an error there, naming the type", function()
    local Point = point_class()
    local got = in_goroutine(function(o, c)
      local ok, err = pcall(c.recv, c)
      o:send({ ok = ok, err = err })
    end, (function() local c = goroutine.chan(1); c:send(Point.new(1, 2)); return c end)())
    assert.is_false(got.ok)
    assert.is_true(has(got.err, "cannot receive a value of type 'point': no decoder registered"), got.err)
  end)

  it("need a __name, and are refused in the sender without one", function()
    local ch = goroutine.chan(1)
    local ok, err = pcall(ch.send, ch, { p = setmetatable({}, { __goroutine_encode = function() return 1 end }) })
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send table (its metatable has __goroutine_encode but no __name) at value.p"), err)
    assert.equal(0, ch:len())
  end)
end)

describe("a value that cannot cross", function()
  it("names the path through lists, 'value.conns[3]'", function()
    local ch = goroutine.chan(1)
    local ok, err = pcall(ch.send, ch, { conns = { 1, 2, io.stdout } })
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send userdata (FILE*) at value.conns[3]"), err)
  end)

  it("names the upvalue, 'upvalue 'log' of function'", function()
    local log = io.stderr
    local ok, err = pcall(goroutine.go, function() log:write("x") end)
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send userdata (FILE*) at upvalue 'log' of function"), err)
  end)

  it("inside what a __goroutine_encode returned is named there, nothing half-sent", function()
    local Conn = { __name = "conn", __goroutine_encode = function(c) return { fd = c.fd } end }
    local ch = goroutine.chan(1)
    local ok, err = pcall(ch.send, ch, { conns = { setmetatable({ fd = 1 }, Conn),
                                                   setmetatable({ fd = io.stdout }, Conn) } })
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send userdata (FILE*) at encoded conn.fd of value.conns[2]"), err)
    assert.equal(0, ch:len())
  end)
end)

-- ---------------------------------------------------------------- property

local N = 10000
local random = math.random

local specials = {
  0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, -32768, -32769, 65535,
  2147483647, -2147483648, 1 << 40, math.maxinteger, math.mininteger,
  0.0, -0.0, 1.5, -2.25, 1 / 0, -1 / 0, 0 / 0, math.pi, 2 ^ 53, 2 ^ 63, 5e-324, 1e308,
  true, false, "", "a", string.rep("x", 31), string.rep("y", 32),
}

local function rstring()
  local n = random(4) == 1 and random(0, 300) or random(0, 12)
  local b = {}
  for i = 1, n do b[i] = random(0, 255) end
  return string.char(table.unpack(b))
end

local function scalar()
  local r = random(10)
  if r <= 3 then return specials[random(#specials)] end
  if r <= 5 then return random(math.mininteger, math.maxinteger) end
  if r <= 6 then return (random() - 0.5) * 10.0 ^ random(-300, 300) end
  return rstring()
end

-- Closures of every shape, with how to call them to see their upvalues.
local closures = {
  { call = function(f) return f() end,
    make = function(a, b) return function() return a, b end end },
  { call = function(f) return f(1, nil, 3) end,                   -- varargs
    make = function(a) return function(...) return select("#", ...), a, ... end end },
  { call = function(f) return f(3) end,                           -- recursive
    make = function(a)
      local function rec(n) if n <= 0 then return a end return rec(n - 1) end
      return rec
    end },
  { call = function(f) return f()() end,                          -- nested
    make = function(a, b) return function() return function() return a, b end end end },
}
local cfunctions = { string.format, math.max, table.concat, select, goroutine.yield }

local handles = { goroutine.chan(1), goroutine.mutex(), goroutine.atomic() }

-- A random value: scalars, tables (array, hash and table keys, holes,
-- metatables from a pool), shared references and cycles (a table of the
-- pool again), Lua closures of every shape, pairs of closures sharing an
-- upvalue, C functions, handles.
local function value(ctx, depth)
  local r = random(100)
  if depth <= 0 or r <= 35 then return scalar() end
  if r <= 45 and #ctx.pool > 0 then return ctx.pool[random(#ctx.pool)] end
  if r <= 52 then
    local c = closures[random(#closures)]
    local f = c.make(value(ctx, depth - 1), value(ctx, depth - 1))
    ctx.call[f] = c.call
    return f
  end
  if r <= 55 then                              -- two closures, one upvalue
    local v = value(ctx, depth - 1)
    local pair = { get = function() return v end, set = function(x) v = x end }
    ctx.call[pair.get] = function(f) return f() end
    ctx.pairs[#ctx.pairs + 1] = pair
    return pair
  end
  if r <= 57 then return cfunctions[random(#cfunctions)] end
  if r <= 59 then return handles[random(#handles)] end
  local t = {}
  ctx.pool[#ctx.pool + 1] = t
  for i = 1, random(0, 6) do
    if random(8) > 1 then t[i] = value(ctx, depth - 1) end   -- else a hole
  end
  for _ = 1, random(0, 4) do
    local k
    if random(6) == 1 then
      ctx.kid = ctx.kid + 1
      k = { kid = ctx.kid }                    -- table keys carry an id
      ctx.pool[#ctx.pool + 1] = k
    else
      k = scalar()
    end
    if k == k then t[k] = value(ctx, depth - 1) end   -- no NaN keys
  end
  if random(6) == 1 then setmetatable(t, ctx.mts[random(#ctx.mts)]) end
  return t
end

local function new_value()
  local shared = { __index = { kind = "shared mt" } }
  local ctx = { pool = {}, call = {}, pairs = {}, kid = 0,
                mts = { shared, shared, { __index = shared.__index }, {} } }
  return value(ctx, random(1, 5)), ctx
end

-- nil if b is a copy of a (same shape of shared references), else why not.
local function differs(a, b, ctx)
  local map, rmap, work, top = {}, {}, { a, b, "value" }, 3   -- triples; nil is a value
  local function push(p, q, w)
    work[top + 1], work[top + 2], work[top + 3] = p, q, w
    top = top + 3
  end
  while top > 0 do
    local x, y, where = work[top - 2], work[top - 1], work[top]
    top = top - 3
    local tx = type(x)
    if tx ~= type(y) then
      return where .. ": " .. tx .. " became " .. type(y) .. " (" .. tostring(x) .. " / " .. tostring(y) .. ")"
    end
    if tx == "number" then
      if math.type(x) ~= math.type(y) then return where .. ": subtype" end
      if x ~= y and not (x ~= x and y ~= y) then return where .. ": " .. x .. " became " .. y end
      if x == 0 and math.type(x) == "float" and 1 / x ~= 1 / y then return where .. ": -0.0" end
    elseif tx == "table" or (tx == "function" and debug.getinfo(x, "S").what ~= "C") then
      if map[x] ~= nil or rmap[y] ~= nil then
        if map[x] ~= y then return where .. ": shared reference not kept" end
      else
        map[x], rmap[y] = y, x
        if tx == "function" then       -- called if it has a recipe
          local call = ctx.call[x] or function() end
          local rx, ry = table.pack(call(x)), table.pack(call(y))
          if rx.n ~= ry.n then return where .. ": results" end
          for i = 1, rx.n do push(rx[i], ry[i], where .. "()[" .. i .. "]") end
        else
          local mx, my = getmetatable(x), getmetatable(y)
          if (mx == nil) ~= (my == nil) then return where .. ": metatable" end
          if mx then push(mx, my, where .. "<mt>") end
          local bykid, nx, ny = {}, 0, 0
          for k in next, y do
            ny = ny + 1
            if type(k) == "table" then bykid[k.kid] = k end
          end
          for k, v in next, x do
            nx = nx + 1
            local ky = k
            if type(k) == "table" then
              ky = bykid[k.kid]
              if ky == nil then return where .. ": table key lost" end
              push(k, ky, where .. "<key>")
            end
            local w = rawget(y, ky)
            if w == nil then return where .. ": key " .. tostring(k) .. " lost" end
            push(v, w, where .. "." .. tostring(k))
          end
          if nx ~= ny then return where .. ": " .. nx .. " keys became " .. ny end
        end
      end
    elseif not rawequal(x, y) then
      return where .. ": " .. tostring(x) .. " became " .. tostring(y)
    end
  end
  -- closures sharing an upvalue still share it in the copy, and only there
  for _, p in ipairs(ctx.pairs) do
    local q = map[p]
    if q then
      local before = p.get()
      local mark = {}
      q.set(mark)
      if not rawequal(q.get(), mark) then return "shared upvalue not shared" end
      local now = p.get()
      if not rawequal(now, before) and not (now ~= now and before ~= before) then
        return "shared upvalue changed in the sender"
      end
    end
  end
end

describe("the property", function()
  it(N .. " random values sent to a goroutine and back equal the originals, shape included", function()
    math.randomseed(20240611)
    local to, from = goroutine.chan(64), goroutine.chan(64)
    goroutine.go(function(i, o)
      while true do
        local v, ok = i:recv()
        if not ok then break end
        o:send(v)
      end
    end, to, from)
    for n = 1, N do
      local v, ctx = new_value()
      to:send(v)
      local why = differs(v, from:recv(), ctx)
      if why then error(("value %d of %d: %s"):format(n, N, why)) end
    end
    to:close()
  end)
end)
