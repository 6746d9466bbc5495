-- spec/select_spec.lua — goroutine.select: blocking until a case is ready,
-- the index and handler forms, default, nil-channel cases, the uniform
-- choice, values copied when select is called, closed channels, strict
-- case keys and their error texts, and the waiters a finished select leaves
-- behind (none).
--
-- Synchronisation is by channels and wait groups only. Where a case shows
-- that something has NOT happened yet (a select still blocked), it first
-- gives the other goroutine every chance to run (goroutine.yield in a loop):
-- a correct runtime passes regardless of scheduling. Every goroutine started
-- here ends before its case does.
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

-- Everything a call returns, packed (to check trailing nils and counts).
local function pack(...) return { n = select("#", ...), ... } end

-- The error message of f(...), which must fail.
local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("goroutine.select", function()
  it("blocks a goroutine until one of its cases is ready", function()
    local a, b, events = goroutine.chan(), goroutine.chan(), goroutine.chan(10)
    goroutine.go(function(a, b, e)
      e:send("selecting")
      local i, v, ok = goroutine.select { { recv = a }, { recv = b } }
      e:send({ i, v, ok })
    end, a, b, events)
    assert.equal("selecting", events:recv())
    let_others_run()
    assert.same(pack(nil, false), pack(events:tryrecv()))   -- still blocked
    b:send("from b")
    assert.same({ 2, "from b", true }, events:recv())
  end)

  it("blocks the main goroutine until a goroutine makes a case ready", function()
    local a, b = goroutine.chan(), goroutine.chan()
    goroutine.go(function(b) b:send("late") end, b)
    assert.same(pack(2, "late", true), pack(goroutine.select { { recv = a }, { recv = b } }))
  end)

  it("blocks on a send case until a receiver comes", function()
    local out, events = goroutine.chan(), goroutine.chan(10)
    goroutine.go(function(o, e)
      e:send("selecting")
      local r = pack(goroutine.select { { send = o, value = "v" } })
      e:send(r)
    end, out, events)
    assert.equal("selecting", events:recv())
    let_others_run()
    assert.same(pack(nil, false), pack(events:tryrecv()))   -- still blocked
    assert.same(pack("v", true), pack(out:recv()))
    assert.same(pack(1), events:recv())                     -- the index alone
  end)

  it("proceeds at once when a case is ready", function()
    local a, b = goroutine.chan(1), goroutine.chan(1)
    a:send("ready")
    assert.same(pack(1, "ready", true), pack(goroutine.select { { recv = a }, { recv = b } }))
    assert.same(pack(2), pack(goroutine.select { { recv = a }, { send = b, value = 1 } }))
    assert.equal(1, b:len())
  end)

  it("can send nil: a send case without a value", function()
    local ch = goroutine.chan(1)
    assert.same(pack(1), pack(goroutine.select { { send = ch } }))
    assert.same(pack(nil, true), pack(ch:recv()))
  end)
end)

describe("select's results", function()
  it("are the index, then v, ok, for a receive case without a handler", function()
    local a, b = goroutine.chan(1), goroutine.chan(1)
    b:send(false)
    assert.same(pack(2, false, true), pack(goroutine.select { { recv = a }, { recv = b } }))
    b:send(nil)
    assert.same(pack(2, nil, true), pack(goroutine.select { { recv = a }, { recv = b } }))
  end)

  it("are the index alone for a send case without a handler", function()
    local a, b = goroutine.chan(), goroutine.chan(1)
    assert.same(pack(2), pack(goroutine.select { { recv = a }, { send = b, value = "x" } }))
  end)

  it("are the chosen handler's results, all of them, nils included", function()
    local ch = goroutine.chan(1)
    ch:send(7)
    local r = pack(goroutine.select {
      { recv = goroutine.chan(), function() return "wrong" end },
      { recv = ch, function(v, ok) return "got", v, ok, nil end },
    })
    assert.same(pack("got", 7, true, nil), r)
    local none = pack(goroutine.select { { send = ch, value = 1, function() end } })
    assert.equal(0, none.n)
  end)

  it("gives a receive handler v, ok and a send handler nothing", function()
    local ch = goroutine.chan(1)
    local got = goroutine.select { { send = ch, value = "x", function(...) return pack(...) end } }
    assert.same(pack(), got)
    got = goroutine.select { { recv = ch, function(...) return pack(...) end } }
    assert.same(pack("x", true), got)
  end)

  it("come from a handler that itself blocks", function()
    local ch, reply = goroutine.chan(1), goroutine.chan()
    ch:send("question")
    goroutine.go(function(r) r:send("answer") end, reply)
    local q, a = goroutine.select {
      { recv = ch, function(v) return v, reply:recv() end },
    }
    assert.equal("question", q)
    assert.equal("answer", a)
  end)

  it("pass a handler's error to the caller", function()
    local ch = goroutine.chan(1)
    ch:send(1)
    local err = error_of(goroutine.select, { { recv = ch, function() error("boom", 0) end } })
    assert.equal("boom", err)
  end)
end)

describe("select's default", function()
  it("runs when no case is ready, and select returns its results", function()
    local a, b = goroutine.chan(), goroutine.chan()
    local r = pack(goroutine.select {
      { recv = a }, { send = b, value = 1 },
      default = function() return "nothing ready", nil end,
    })
    assert.same(pack("nothing ready", nil), r)
  end)

  it("never blocks, however often it is used", function()
    local a = goroutine.chan()
    local n = 0
    for _ = 1, 1000 do
      goroutine.select { { recv = a }, default = function() n = n + 1 end }
    end
    assert.equal(1000, n)
  end)

  it("= true returns nothing", function()
    local r = pack(goroutine.select { { recv = goroutine.chan() }, default = true })
    assert.equal(0, r.n)
  end)

  it("does not run when a case is ready", function()
    local ch = goroutine.chan(1)
    ch:send("v")
    for _ = 1, 100 do
      assert.same(pack(1, "v", true),
                  pack(goroutine.select { { recv = ch }, default = function() return "default" end }))
      ch:send("v")
    end
  end)

  it("is all there is when every case has a nil channel", function()
    assert.equal("d", goroutine.select { { recv = nil }, { send = nil, value = 1 },
                                         default = function() return "d" end })
    assert.equal("d", goroutine.select { default = function() return "d" end })
  end)
end)

describe("a select case with a nil channel", function()
  it("never fires, for a receive or a send", function()
    local ch = goroutine.chan(1)
    for _ = 1, 200 do
      ch:send("v")
      local i = goroutine.select { { recv = nil }, { recv = ch }, { send = nil, value = "x" } }
      assert.equal(2, i)
    end
  end)

  it("keeps its index: later cases are still numbered by their place", function()
    local ch = goroutine.chan(1)
    ch:send(1)
    assert.same(pack(3, 1, true), pack(goroutine.select { {}, { recv = nil }, { recv = ch } }))
  end)

  it("alone, without default, blocks forever", function()
    local r = support.sh("timeout 60 " .. support.quote(support.bin) .. " -e " .. support.quote([[
      local goroutine = require "goroutine"
      local events = goroutine.chan(10)
      goroutine.go(function(e)
        e:send("selecting")
        goroutine.select { { recv = nil } }
        e:send("returned")
      end, events)
      goroutine.go(function(e)
        goroutine.select {}
        e:send("returned")
      end, events)
      assert(events:recv() == "selecting")
      for _ = 1, 1000 do goroutine.yield() end
      print(events:tryrecv())
    ]]))
    assert.equal(0, r.status, r.stderr)
    assert.equal("nil\tfalse\n", r.stdout)
  end)
end)

describe("select's choice among ready cases", function()
  it("is uniformly random (each of two always-ready cases 35% to 65% of 2,000)", function()
    local a, b = goroutine.chan(1), goroutine.chan(1)
    a:send("a"); b:send("b")
    local count = { 0, 0 }
    for _ = 1, 2000 do
      local i, v = goroutine.select { { recv = a }, { recv = b } }
      count[i] = count[i] + 1
      if i == 1 then a:send(v) else b:send(v) end
    end
    assert.is_true(count[1] >= 700 and count[1] <= 1300, "case 1 chosen " .. count[1] .. " times")
    assert.is_true(count[2] >= 700 and count[2] <= 1300, "case 2 chosen " .. count[2] .. " times")
  end)

  it("is uniform between a ready send and a ready receive too", function()
    local a, b = goroutine.chan(1), goroutine.chan(1)
    a:send("a")
    local count = { 0, 0 }
    for _ = 1, 2000 do
      local i = goroutine.select { { recv = a }, { send = b, value = "b" } }
      count[i] = count[i] + 1
      if i == 1 then a:send("a") else b:recv() end
    end
    assert.is_true(count[1] >= 700 and count[1] <= 1300, "case 1 chosen " .. count[1] .. " times")
  end)

  -- Go's TestPseudoRandomSend.  The waker takes the first waiter of its
  -- channel's queue, so a blocked select whose cases share one channel
  -- fires the case it queued first: which one must be random too.  Each
  -- time, the other goroutine yields before acting, so the select has
  -- blocked (always, on one worker).  A fair coin gives 10 or fewer of 100
  -- with probability below 2e-17.
  it("is random when a blocked select's send cases share one channel (TestPseudoRandomSend)", function()
    local c, done = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, done)
      local got = { [0] = 0, [1] = 0 }
      for _ = 1, 100 do
        for _ = 1, 5 do goroutine.yield() end
        local v = c:recv()
        got[v] = got[v] + 1
      end
      done:send(got)
    end, c, done)
    for _ = 1, 100 do
      goroutine.select { { send = c, value = 1 }, { send = c, value = 0 } }
    end
    local got = done:recv()
    assert.is_true(got[0] > 10 and got[1] > 10, "ones " .. got[1] .. ", zeros " .. got[0])
  end)

  it("is random when a blocked select's receive cases share one channel", function()
    local c, done = goroutine.chan(), goroutine.chan()
    goroutine.go(function(c, done)
      local got = { 0, 0 }
      for _ = 1, 100 do
        local i = goroutine.select { { recv = c }, { recv = c } }
        got[i] = got[i] + 1
      end
      done:send(got)
    end, c, done)
    for k = 1, 100 do
      for _ = 1, 5 do goroutine.yield() end
      c:send(k)
    end
    local got = done:recv()
    assert.is_true(got[1] > 10 and got[2] > 10, "case 1 " .. got[1] .. ", case 2 " .. got[2])
  end)
end)

describe("a select send value", function()
  it("is copied when select is called: later changes to the table do not travel", function()
    local ch = goroutine.chan(1)
    local t = { n = 1, inner = { "a" } }
    goroutine.select { { send = ch, value = t } }
    t.n = 2
    t.inner[1] = "changed"
    local got = ch:recv()
    assert.same({ n = 1, inner = { "a" } }, got)
    assert.are_not.equal(t, got)
  end)

  it("is copied even when its case is not chosen: a refusal raises at select time", function()
    local ready, idle = goroutine.chan(1), goroutine.chan()
    ready:send("keep")
    local err = error_of(goroutine.select, {
      { recv = ready },
      { send = idle, value = { log = io.stdout } },
    })
    assert.is_true(has(err, "cannot send userdata (FILE*)"), err)
    assert.equal(1, ready:len())            -- nothing was received
    assert.equal("keep", ready:recv())
  end)

  it("is refused before anything is sent by another case", function()
    local out, idle = goroutine.chan(1), goroutine.chan()
    local err = error_of(goroutine.select, {
      { send = out, value = "would go" },
      { send = idle, value = coroutine.create(print) },
    })
    assert.is_true(has(err, "cannot send thread"), err)
    assert.equal(0, out:len())
  end)
end)

describe("select on closed channels", function()
  it("finds a closed channel ready to receive: nil, false", function()
    local ch, idle = goroutine.chan(), goroutine.chan()
    ch:close()
    assert.same(pack(2, nil, false), pack(goroutine.select { { recv = idle }, { recv = ch } }))
    assert.same(pack(nil, false), pack(goroutine.select { { recv = ch, function(v, ok) return v, ok end } }))
  end)

  it("drains a closed buffered channel before reporting it closed", function()
    local ch = goroutine.chan(2)
    ch:send(1); ch:send(2); ch:close()
    assert.same(pack(1, 1, true), pack(goroutine.select { { recv = ch } }))
    assert.same(pack(1, 2, true), pack(goroutine.select { { recv = ch } }))
    assert.same(pack(1, nil, false), pack(goroutine.select { { recv = ch } }))
  end)

  it("wakes a blocked select when a channel is closed", function()
    local a, b, events = goroutine.chan(), goroutine.chan(), goroutine.chan(10)
    goroutine.go(function(a, b, e)
      e:send("selecting")
      e:send(pack(goroutine.select { { recv = a }, { recv = b } }))
    end, a, b, events)
    assert.equal("selecting", events:recv())
    let_others_run()
    b:close()
    assert.same(pack(2, nil, false), events:recv())
  end)

  it("raises 'send on closed channel' when a send case on a closed channel is chosen", function()
    local ch = goroutine.chan(1)
    ch:close()
    assert.equal("send on closed channel", error_of(goroutine.select, { { send = ch, value = 1 } }))
    assert.equal("send on closed channel",
                 error_of(goroutine.select, { { send = ch, value = 1 }, default = true }))
  end)

  it("raises 'send on closed channel' in a select blocked sending when the channel is closed", function()
    local ch, idle, events = goroutine.chan(), goroutine.chan(), goroutine.chan(10)
    goroutine.go(function(c, i, e)
      e:send("selecting")
      local ok, err = pcall(goroutine.select, { { recv = i }, { send = c, value = 1 } })
      e:send({ ok, err })
    end, ch, idle, events)
    assert.equal("selecting", events:recv())
    let_others_run()
    ch:close()
    assert.same({ false, "send on closed channel" }, events:recv())
  end)
end)

describe("select with a send and a receive on the same channel", function()
  it("takes whichever the buffer allows", function()
    local ch = goroutine.chan(1)
    assert.same(pack(1), pack(goroutine.select { { send = ch, value = "x" }, { recv = ch } }))
    assert.same(pack(2, "x", true), pack(goroutine.select { { send = ch, value = "y" }, { recv = ch } }))
  end)

  it("never pairs with itself on an unbuffered channel", function()
    local ch = goroutine.chan()
    for _ = 1, 100 do
      assert.equal("default", goroutine.select {
        { send = ch, value = "x" }, { recv = ch }, default = function() return "default" end,
      })
    end
  end)

  it("pairs two goroutines selecting alike: one sends, the other receives", function()
    for _ = 1, 50 do
      local ch, results = goroutine.chan(), goroutine.chan(2)
      for id = 1, 2 do
        goroutine.go(function(c, r, me)
          local i, v = goroutine.select { { send = c, value = me }, { recv = c } }
          r:send({ me = me, sent = i == 1, got = v })
        end, ch, results, id)
      end
      local x, y = results:recv(), results:recv()
      if x.sent then x, y = y, x end            -- x received, y sent
      assert.is_false(x.sent)
      assert.is_true(y.sent)
      assert.equal(y.me, x.got)
    end
  end)
end)

describe("many selects", function()
  it("50 goroutines selecting over two channels get every value exactly once", function()
    local N = 2000
    local a, b, out = goroutine.chan(), goroutine.chan(4), goroutine.chan(N)
    local wg = goroutine.waitgroup()
    -- Two producers: odd numbers on a (unbuffered), even numbers on b.
    goroutine.go(function(c) for v = 1, N, 2 do c:send(v) end c:close() end, a)
    goroutine.go(function(c) for v = 2, N, 2 do c:send(v) end c:close() end, b)
    for _ = 1, 50 do
      wg:add(1)
      goroutine.go(function(a, b, o, w)
        -- A closed channel is set to nil: its case then never fires.
        while a or b do
          goroutine.select {
            { recv = a, function(v, ok) if ok then o:send(v) else a = nil end end },
            { recv = b, function(v, ok) if ok then o:send(v) else b = nil end end },
          }
        end
        w:done()
      end, a, b, out, wg)
    end
    wg:wait()
    assert.equal(N, out:len())
    local seen = {}
    for _ = 1, N do
      local v = out:recv()
      assert.is_nil(seen[v], "value " .. tostring(v) .. " delivered twice")
      seen[v] = true
    end
    for v = 1, N do assert.is_true(seen[v], "value " .. v .. " lost") end
  end)
end)

describe("a select that has finished", function()
  it("leaves no receiver on the channels it did not choose", function()
    for _ = 1, 100 do
      local a, b, events = goroutine.chan(), goroutine.chan(), goroutine.chan(10)
      goroutine.go(function(a, b, e)
        e:send("selecting")
        e:send(pack(goroutine.select { { recv = a }, { recv = b } }))
      end, a, b, events)
      assert.equal("selecting", events:recv())
      a:send("chosen")
      assert.same(pack(1, "chosen", true), events:recv())
      -- Nobody waits on b any more: a send would block.
      assert.is_false(b:trysend("lost?"))
      -- A later receiver gets the next value sent on b.
      goroutine.go(function(b, e) e:send((b:recv())) end, b, events)
      b:send("later")
      assert.equal("later", events:recv())
    end
  end)

  it("leaves no sender on the channels it did not choose", function()
    for _ = 1, 100 do
      local a, b, events = goroutine.chan(), goroutine.chan(), goroutine.chan(10)
      goroutine.go(function(a, b, e)
        e:send("selecting")
        e:send(pack(goroutine.select { { recv = a }, { send = b, value = "stale" } }))
      end, a, b, events)
      assert.equal("selecting", events:recv())
      a:send("chosen")
      assert.same(pack(1, "chosen", true), events:recv())
      assert.same(pack(nil, false), pack(b:tryrecv()))
      goroutine.go(function(b) b:send("fresh") end, b)
      assert.equal("fresh", b:recv())
    end
  end)
end)

describe("select's argument", function()
  it("must be a table", function()
    assert.is_true(has(error_of(goroutine.select, nil), "table expected, got nil"))
  end)

  it("refuses a case with both recv and send", function()
    local ch = goroutine.chan()
    assert.equal("select: case #1 has both recv and send",
                 error_of(goroutine.select, { { recv = ch, send = ch } }))
  end)

  it("refuses a case with an unknown key, naming the case and the key", function()
    local ch = goroutine.chan(1)
    assert.equal("select: case #1 has an unknown key 'vlaue'",
                 error_of(goroutine.select, { { send = ch, vlaue = 1 } }))
    assert.equal("select: case #2 has an unknown key 'revc'",
                 error_of(goroutine.select, { { recv = ch }, { revc = ch } }))
    assert.equal(0, ch:len())               -- the first case did not fire
  end)

  it("refuses an unknown key beside the cases ('defualt')", function()
    local err = error_of(goroutine.select, { { recv = goroutine.chan() }, defualt = true })
    assert.equal("select: unknown key 'defualt' (cases are a list; the only other key is 'default')", err)
  end)

  it("refuses a default that is neither a function nor true", function()
    for _, d in ipairs { 1, "f", {} } do
      assert.equal("select: default must be a function or true",
                   error_of(goroutine.select, { default = d }))
    end
    assert.equal("select: default must be a function or true",
                 error_of(goroutine.select, { default = false }))
  end)

  it("refuses a receive case with a value", function()
    assert.equal("select: case #1 is a receive with a value",
                 error_of(goroutine.select, { { recv = goroutine.chan(), value = 1 } }))
  end)

  it("refuses a handler that is not a function", function()
    assert.equal("select: case #1 has a handler that is not a function",
                 error_of(goroutine.select, { { recv = goroutine.chan(), "h" } }))
  end)

  it("refuses a case that is not a table, or a channel that is not a channel", function()
    assert.equal("select: case #1 is not a table", error_of(goroutine.select, { "x" }))
    assert.equal("select: case #1 has a number where a channel belongs",
                 error_of(goroutine.select, { { recv = 3 } }))
    assert.equal("select: case #1 has a mutex where a channel belongs",
                 error_of(goroutine.select, { { send = goroutine.mutex(), value = 1 } }))
  end)
end)
