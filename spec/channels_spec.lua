-- spec/channels_spec.lua — goroutine.chan: unbuffered and buffered
-- channels, close, trysend/tryrecv, range, errors, handles, and the values
-- that cross a channel (copied, with their shape) or do not.
--
-- Synchronisation is by channels and wait groups only. Where a case shows
-- that something has NOT happened yet (a sender still blocked), it first
-- gives the other goroutine every chance to run (goroutine.yield in a loop):
-- a correct runtime passes regardless of scheduling.
local goroutine = require "goroutine"
local support = require "support"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local _ENV = _G

local has = support.has

local let_others_run = support.let_others_run

-- Send v to a goroutine and back: the value as it arrives after two copies.
local function roundtrip(v)
  local to, from = goroutine.chan(), goroutine.chan()
  goroutine.go(function(i, o)
    local x = i:recv()
    o:send(x)
  end, to, from)
  to:send(v)
  return (from:recv())
end

-- Everything recv returns, packed (to check trailing nils and counts).
local function pack(...) return { n = select("#", ...), ... } end

describe("an unbuffered channel", function()
  it("has capacity 0 and never buffers a value", function()
    local ch = goroutine.chan()
    assert.equal(0, ch:cap())
    assert.equal(0, ch:len())
    assert.equal(0, #ch)
    assert.equal(0, goroutine.chan(0):cap())
    assert.is_false(ch:trysend("nobody is receiving"))
    assert.equal(0, ch:len())
  end)

  it("blocks the sender until a receiver takes the value", function()
    local ch, events = goroutine.chan(), goroutine.chan(10)
    goroutine.go(function(c, e)
      e:send("sending")
      c:send("v")
      e:send("send returned")
    end, ch, events)
    assert.equal("sending", events:recv())
    let_others_run()
    assert.same(pack(nil, false), pack(events:tryrecv()))   -- still blocked
    assert.equal("v", ch:recv())
    assert.equal("send returned", events:recv())
  end)

  it("blocks the receiver until a sender comes", function()
    local ch, events = goroutine.chan(), goroutine.chan(10)
    goroutine.go(function(c, e)
      e:send("receiving")
      local v = c:recv()
      e:send(v)
    end, ch, events)
    assert.equal("receiving", events:recv())
    let_others_run()
    assert.same(pack(nil, false), pack(events:tryrecv()))   -- still blocked
    ch:send("hello")
    assert.equal("hello", events:recv())
  end)

  it("delivers the values of one sender in the order they were sent", function()
    local ch = goroutine.chan()
    goroutine.go(function(c) for i = 1, 200 do c:send(i) end end, ch)
    for i = 1, 200 do assert.equal(i, ch:recv()) end
  end)

  it("can carry nil, received as nil, true", function()
    local ch = goroutine.chan()
    goroutine.go(function(c) c:send(nil); c:send() end, ch)
    assert.same(pack(nil, true), pack(ch:recv()))
    assert.same(pack(nil, true), pack(ch:recv()))
  end)
end)

describe("a buffered channel", function()
  it("reports its length and capacity through len, cap and #", function()
    local ch = goroutine.chan(3)
    assert.equal(3, ch:cap())
    assert.equal(0, ch:len())
    ch:send("a")
    ch:send("b")
    assert.equal(2, ch:len())
    assert.equal(2, #ch)
    assert.equal(3, ch:cap())
    ch:recv()
    assert.equal(1, #ch)
  end)

  it("delivers in FIFO order", function()
    local ch = goroutine.chan(10)
    for i = 1, 10 do ch:send(i * i) end
    for i = 1, 10 do assert.equal(i * i, ch:recv()) end
  end)

  it("does not block the sender while there is room", function()
    local ch = goroutine.chan(2)
    ch:send(1)
    ch:send(2)    -- would hang the suite if it blocked
    assert.equal(2, ch:len())
  end)

  it("blocks the sender when full, until a receive makes room", function()
    local ch, events = goroutine.chan(2), goroutine.chan(10)
    ch:send(1)
    ch:send(2)
    goroutine.go(function(c, e)
      e:send("sending")
      c:send(3)
      e:send("send returned")
    end, ch, events)
    assert.equal("sending", events:recv())
    let_others_run()
    assert.same(pack(nil, false), pack(events:tryrecv()))   -- still blocked
    assert.equal(2, ch:len())
    assert.equal(1, ch:recv())
    assert.equal("send returned", events:recv())
    assert.equal(2, ch:len())
    assert.equal(2, ch:recv())
    assert.equal(3, ch:recv())
  end)
end)

describe("closing a channel", function()
  it("lets receivers drain what is buffered, then gives nil, false", function()
    local ch = goroutine.chan(3)
    ch:send("x")
    ch:send("y")
    ch:close()
    assert.same(pack("x", true), pack(ch:recv()))
    assert.same(pack("y", true), pack(ch:recv()))
    assert.same(pack(nil, false), pack(ch:recv()))
    assert.same(pack(nil, false), pack(ch:recv()))
    assert.equal(0, ch:len())
  end)

  it("wakes every blocked receiver with nil, false", function()
    local n = 8
    local ch, ready, results = goroutine.chan(), goroutine.chan(n), goroutine.chan(n)
    for _ = 1, n do
      goroutine.go(function(c, r, res)
        r:send(true)
        local v, ok = c:recv()
        res:send({ v = v, ok = ok })
      end, ch, ready, results)
    end
    for _ = 1, n do ready:recv() end
    let_others_run()
    ch:close()
    for _ = 1, n do assert.same({ ok = false }, results:recv()) end
  end)

  it("makes every blocked sender raise 'send on closed channel'", function()
    local n = 8
    local ch, ready, results = goroutine.chan(), goroutine.chan(n), goroutine.chan(n)
    for i = 1, n do
      goroutine.go(function(c, r, res, k)
        r:send(true)
        local ok, err = pcall(c.send, c, k)
        res:send({ ok = ok, err = err })
      end, ch, ready, results, i)
    end
    for _ = 1, n do ready:recv() end
    let_others_run()
    ch:close()
    for _ = 1, n do
      local r = results:recv()
      assert.is_false(r.ok)
      assert.is_true(has(r.err, "send on closed channel"), r.err)
    end
    assert.same(pack(nil, false), pack(ch:recv()))   -- none of them got in
  end)

  it("a second time raises 'close of closed channel'", function()
    local ch = goroutine.chan()
    ch:close()
    local ok, err = pcall(ch.close, ch)
    assert.is_false(ok)
    assert.is_true(has(err, "close of closed channel"), err)
  end)

  it("makes send raise 'send on closed channel'", function()
    for _, cap in ipairs({ 0, 4 }) do
      local ch = goroutine.chan(cap)
      ch:close()
      local ok, err = pcall(ch.send, ch, 1)
      assert.is_false(ok)
      assert.is_true(has(err, "send on closed channel"), err)
      assert.equal(0, ch:len())
    end
  end)
end)

describe("trysend", function()
  it("returns true when there is room in the buffer", function()
    local ch = goroutine.chan(1)
    assert.is_true(ch:trysend("a"))
    assert.equal("a", ch:recv())
  end)

  it("returns false, sending nothing, when the buffer is full", function()
    local ch = goroutine.chan(1)
    assert.is_true(ch:trysend("a"))
    assert.is_false(ch:trysend("b"))
    assert.equal(1, ch:len())
    assert.equal("a", ch:recv())
    assert.same(pack(nil, false), pack(ch:tryrecv()))
  end)

  it("hands the value to a receiver blocked on an unbuffered channel", function()
    local ch, out = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, o) o:send(c:recv()) end, ch, out)
    local sent, tries = false, 0
    while not sent and tries < 100000 do   -- until the receiver is parked
      sent = ch:trysend("direct")
      tries = tries + 1
      if not sent then goroutine.yield() end
    end
    assert.is_true(sent)
    assert.equal("direct", out:recv())
  end)

  it("raises 'send on closed channel' on a closed channel", function()
    local ch = goroutine.chan(1)
    ch:close()
    local ok, err = pcall(ch.trysend, ch, 1)
    assert.is_false(ok)
    assert.is_true(has(err, "send on closed channel"), err)
  end)
end)

describe("tryrecv", function()
  it("returns exactly nil, false when a receive would block", function()
    assert.same(pack(nil, false), pack(goroutine.chan():tryrecv()))
    assert.same(pack(nil, false), pack(goroutine.chan(2):tryrecv()))
  end)

  it("returns v, true for a buffered value", function()
    local ch = goroutine.chan(2)
    ch:send(false)
    assert.same(pack(false, true), pack(ch:tryrecv()))
  end)

  it("takes the value of a sender blocked on an unbuffered channel", function()
    local ch, done = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, d) c:send("from sender"); d:send(true) end, ch, done)
    local got, tries = pack(ch:tryrecv()), 0
    while not got[2] and tries < 100000 do   -- until the sender is parked
      goroutine.yield()
      got = pack(ch:tryrecv())
      tries = tries + 1
    end
    assert.same(pack("from sender", true), got)
    assert.is_true(done:recv())
  end)

  it("returns nil, false, 'closed' once the channel is closed and drained", function()
    local ch = goroutine.chan(1)
    ch:send(7)
    ch:close()
    assert.same(pack(7, true), pack(ch:tryrecv()))
    assert.same(pack(nil, false, "closed"), pack(ch:tryrecv()))
  end)
end)

describe("range", function()
  it("iterates over received values until the channel is closed", function()
    local ch = goroutine.chan()
    goroutine.go(function(c)
      for i = 1, 20 do c:send(i) end
      c:close()
    end, ch)
    local got = {}
    for v in ch:range() do got[#got + 1] = v end
    local want = {}
    for i = 1, 20 do want[i] = i end
    assert.same(want, got)
  end)

  it("drains what a closed buffered channel still holds", function()
    local ch = goroutine.chan(3)
    ch:send("a"); ch:send("b")
    ch:close()
    local got = {}
    for v in ch:range() do got[#got + 1] = v end
    assert.same({ "a", "b" }, got)
  end)
end)

describe("goroutine.chan", function()
  it("refuses a negative capacity with 'makechan: size out of range'", function()
    local ok, err = pcall(goroutine.chan, -1)
    assert.is_false(ok)
    assert.is_true(has(err, "makechan: size out of range"), err)
  end)

  it("refuses a non-integer capacity with 'makechan: size out of range'", function()
    local ok, err = pcall(goroutine.chan, 1.5)
    assert.is_false(ok)
    assert.is_true(has(err, "makechan: size out of range"), err)
  end)

  it("refuses a capacity that is not a number with a bad-argument error", function()
    local ok, err = pcall(function() return goroutine.chan("x") end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'chan'"), err)
  end)
end)

describe("a channel handle", function()
  it("prints as 'channel: 0x...', the same text in every goroutine", function()
    local ch, other, out = goroutine.chan(), goroutine.chan(), goroutine.chan()
    assert.matches("^channel: 0x%x+$", tostring(ch))
    assert.are_not.equal(tostring(ch), tostring(other))
    goroutine.go(function(c, o) o:send(tostring(c)) end, ch, out)
    assert.equal(tostring(ch), out:recv())
    assert.equal("userdata", type(ch))
  end)

  it("is the same Lua value each time the same channel arrives", function()
    local ch, carrier = goroutine.chan(), goroutine.chan(4)
    carrier:send(ch)
    carrier:send({ inner = ch })
    local a = carrier:recv()
    local b = carrier:recv().inner
    assert.is_true(rawequal(ch, a))
    assert.is_true(rawequal(a, b))
    local t = { [a] = "found" }
    assert.equal("found", t[b])
  end)

  it("is the same Lua value inside a goroutine that receives it twice", function()
    local ch, carrier, out = goroutine.chan(), goroutine.chan(2), goroutine.chan()
    goroutine.go(function(c, o)
      local a, b = c:recv(), c:recv()
      local t = { [a] = "found" }
      o:send({ same = rawequal(a, b), key = t[b] })
    end, carrier, out)
    carrier:send(ch)
    carrier:send(ch)
    assert.same({ same = true, key = "found" }, out:recv())
  end)

  it("can travel inside a channel and be used on the other side", function()
    local requests = goroutine.chan()
    goroutine.go(function(req)
      for r in req:range() do r.reply:send(r.x * 2) end
    end, requests)
    for i = 1, 5 do
      local reply = goroutine.chan()
      requests:send({ x = i, reply = reply })
      assert.equal(i * 2, reply:recv())
    end
    requests:close()
  end)

  it("checks its receiver: a method called with the wrong self is a clear error", function()
    local ch = goroutine.chan()
    local ok, err = pcall(function() ch.send(5) end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'send' (channel expected, got number)"), err)
    ok, err = pcall(function() ch.recv({}) end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'recv' (channel expected, got table)"), err)
    ok, err = pcall(function() ch.close(goroutine.mutex()) end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'close' (channel expected, got mutex)"), err)
  end)
end)

describe("a value sent on a channel", function()
  it("keeps the integer subtype", function()
    for _, n in ipairs({ 0, 3, -7, math.maxinteger, math.mininteger }) do
      local v = roundtrip(n)
      assert.equal("integer", math.type(v))
      assert.equal(n, v)
    end
  end)

  it("keeps the float subtype", function()
    for _, x in ipairs({ 3.0, 0.1, -2.5, 1e300, math.huge, -math.huge }) do
      local v = roundtrip(x)
      assert.equal("float", math.type(v))
      assert.equal(x, v)
    end
    local nan = roundtrip(0 / 0)
    assert.is_true(nan ~= nan)
  end)

  it("keeps booleans", function()
    assert.is_true(roundtrip(true))
    assert.is_false(roundtrip(false))
  end)

  it("keeps every byte of a string, embedded zeros included", function()
    local s = "a\0b\0\0c\255\n"
    local v = roundtrip(s)
    assert.equal(#s, #v)
    assert.equal(s, v)
    local long = string.rep("0123456789\0", 20000)
    assert.equal(long, roundtrip(long))
    assert.equal("", roundtrip(""))
  end)

  it("copies nested tables deeply", function()
    local t = { 1, 2, { 3, { 4, x = "y" } }, name = "n", [2.5] = "float key", [true] = "bool key" }
    local v = roundtrip(t)
    assert.same(t, v)
    assert.is_false(rawequal(t, v))
  end)

  it("keeps a cycle inside a table", function()
    local t = { name = "root" }
    t.self = t
    t.child = { parent = t }
    local v = roundtrip(t)
    assert.equal("root", v.name)
    assert.is_true(rawequal(v, v.self))
    assert.is_true(rawequal(v, v.child.parent))
  end)

  it("keeps a shared subtable shared", function()
    local shared = { 1, 2, 3 }
    local v = roundtrip({ a = shared, b = shared, list = { shared } })
    assert.is_true(rawequal(v.a, v.b))
    assert.is_true(rawequal(v.a, v.list[1]))
    v.a[1] = 99
    assert.equal(99, v.b[1])
    assert.equal(1, shared[1])
  end)

  it("brings its metatable along", function()
    local mt = { __index = { greet = function(self) return "hi " .. self.name end } }
    local v = roundtrip(setmetatable({ name = "ann" }, mt))
    assert.is_table(getmetatable(v))
    assert.equal("hi ann", v:greet())
  end)

  it("is a copy: changing it on one side does not change the other", function()
    local ch, out = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, o)
      local t = c:recv()
      t.x = "changed by receiver"
      o:send(t.x)
    end, ch, out)
    local t = { x = "original" }
    ch:send(t)
    assert.equal("changed by receiver", out:recv())
    assert.equal("original", t.x)
  end)

  it("may be a function with upvalues that works in the receiver", function()
    local k, prefix = 10, "n="
    local function f(x) return prefix .. (x + k) end
    local ch, out = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, o)
      local g = c:recv()
      o:send(g(5))
    end, ch, out)
    ch:send(f)
    assert.equal("n=15", out:recv())
  end)

  it("may be a function whose captured counter changes only in the copy", function()
    local counter = 0
    local function bump() counter = counter + 1; return counter end
    local ch, out = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, o)
      local b = c:recv()
      for _ = 1, 9 do b() end
      o:send(b())
    end, ch, out)
    ch:send(bump)
    assert.equal(10, out:recv())
    assert.equal(0, counter)
    assert.equal(1, bump())
  end)

  it("is refused when it holds a file, naming 'userdata (FILE*)' and the path", function()
    local ch = goroutine.chan(1)
    local ok, err = pcall(ch.send, ch, { log = io.stdout })
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send userdata (FILE*)"), err)
    assert.is_true(has(err, "value.log"), err)
    ok, err = pcall(ch.send, ch, io.stdout)
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send userdata (FILE*)"), err)
  end)

  it("is refused when it is a coroutine", function()
    local ch = goroutine.chan(1)
    local ok, err = pcall(ch.send, ch, coroutine.create(function() end))
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send"), err)
    assert.is_true(has(err, "thread"), err)
    ok, err = pcall(ch.trysend, ch, { co = coroutine.create(function() end) })
    assert.is_false(ok)
    assert.is_true(has(err, "cannot send"), err)
  end)

  it("is never half-sent: after a refused send the channel is still empty", function()
    local ch = goroutine.chan(4)
    local ok = pcall(ch.send, ch, { 1, 2, 3, good = "yes", bad = io.stderr })
    assert.is_false(ok)
    ok = pcall(ch.trysend, ch, { first = "fine", io.stdout })
    assert.is_false(ok)
    assert.equal(0, ch:len())
    assert.same(pack(nil, false), pack(ch:tryrecv()))
    -- and the channel still works
    ch:send("after")
    assert.equal("after", ch:recv())
  end)

  it("is never half-sent to a waiting receiver either", function()
    local ch, out = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, o) o:send(pack(c:recv())) end, ch, out)
    local ok = pcall(ch.send, ch, { bad = io.stdout })
    assert.is_false(ok)
    ch:send("the real one")
    assert.same(pack("the real one", true), out:recv())
  end)
end)
