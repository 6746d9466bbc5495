-- spec/go_chan_spec.lua — Go's own channel programs, translated: test/chan
-- (select, select2 to select7, doubleselect, fifo, goroutines, nonblock,
-- sieve1, sieve2, powser1, sendstmt, zerosize), test/closedchan.go and
-- test/chancap.go, from Go 1.19 (Debian's golang-go, /usr/lib/go-1.19/test).
-- Each `it` names the program it translates.
--
-- Go to Lua: make(chan T, n) is goroutine.chan(n); c <- v is c:send(v);
-- v, ok := <-c is c:recv(); a select with default is goroutine.select with
-- default (or trysend/tryrecv); a nil channel is a select case with
-- recv = nil or send = nil; Go's zero value from a closed channel is nil;
-- a panic is a Lua error, caught with pcall.  Goroutines cannot call
-- busted's assert (it does not cross), so what goes wrong in one is sent on
-- a channel and asserted empty by the spec (support.drain).
--
-- Where Go waits with time.Sleep to show that something blocks, the spec
-- either gives the other goroutines every chance to run and checks that
-- nothing happened (a correct runtime passes whatever the schedule), or,
-- for what must block forever, runs it as a program of its own and expects
-- the deadlock report: "blocks forever" exactly.  Programs whose
-- goroutines Go leaves running when main returns (sieve1, sieve2, powser1)
-- run as programs of their own too, so that nothing outlives its case;
-- every goroutine started in-process ends before its case does.
--
-- Iteration counts are scaled down from Go's (they are noted where they
-- differ) so that the file runs in a few seconds, sanitizers included.
--
-- Not translated, or translated otherwise, and why:
-- - select2's runtime.MemStats: the footprint is measured instead on the
--   Lua heap of the goroutine that selects (collectgarbage "count"), where
--   a select's waiters live.
-- - select3's sends and receives on a nil channel outside select: Lua has
--   no typed nil channel; the select forms (recv = nil, send = nil) are
--   translated.  The 10 ms / 10 s sleeps become the deadlock report (for
--   "always blocks") and a plain call (for "never blocks").
-- - select5's assignment forms (*f() = <-c, m[k] = <-c, i.(int),
--   **(**int)(nil) = <-c) are Go syntax; each becomes a handler form (or
--   the index form) that stores the value its own way, and the generated
--   programs are generated and run in Lua, one path of the same choice tree
--   after another.
-- - select8.go tests break statements inside select (Go syntax) and
--   perm.go compile-time errors: nothing for the runtime.  powser2.go is
--   powser1 over interfaces: the same program in Lua.
-- - chancap's 32-bit branch (unsafe.Sizeof): the 64-bit one is translated.
-- - nonblock's sleep() between tries (a 10 us ticker) becomes
--   goroutine.yield(); maxTries stays as a bound against hanging.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

local has = support.has
local drain = support.drain
local let_others_run = support.let_others_run

local function pack(...) return { n = select("#", ...), ... } end

-- The error message of f(...), which must fail.
local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- A program of its own (support.program) must end with status 0 and print
-- exactly 'expected'.
local function assert_program(code, expected)
  local r = support.program(code)
  assert.are.equal(0, r.status, r.stderr)
  assert.are.equal(expected, r.stdout)
end

-- ======================================================= test/closedchan.go

-- The three ways closedchan.go reaches a channel: direct operations,
-- one-case selects, and selects with a dummy case that never fires.
local dummy = goroutine.chan()

local function dummy_fired() error("dummy case fired") end

local XChan = {
  impl = "(<- operator)",
  send = function(c, x) c:send(x) end,
  nbsend = function(c, x) return c:trysend(x) end,
  recv = function(c) return (c:recv()) end,
  nbrecv = function(c)
    local x, ok, closed = c:tryrecv()
    return x, ok or closed == "closed"
  end,
  recv2 = function(c) return c:recv() end,
  nbrecv2 = function(c)
    local x, ok, closed = c:tryrecv()
    return x, ok, ok or closed == "closed"
  end,
}

local SChan = {
  impl = "(select)",
  send = function(c, x) goroutine.select { { send = c, value = x } } end,
  nbsend = function(c, x)
    return goroutine.select {
      default = function() return false end,
      { send = c, value = x, function() return true end },
    }
  end,
  recv = function(c)
    return goroutine.select { { recv = c, function(x) return x end } }
  end,
  nbrecv = function(c)
    return goroutine.select {
      default = function() return nil, false end,
      { recv = c, function(x) return x, true end },
    }
  end,
  recv2 = function(c)
    local _, x, ok = goroutine.select { { recv = c } }   -- the index form
    return x, ok
  end,
  nbrecv2 = function(c)
    return goroutine.select {
      default = function() return nil, false, false end,
      { recv = c, function(x, ok) return x, ok, true end },
    }
  end,
}

local SSChan = {
  impl = "(select with a dummy case)",
  send = function(c, x)
    goroutine.select { { send = c, value = x }, { recv = dummy, dummy_fired } }
  end,
  nbsend = function(c, x)
    return goroutine.select {
      default = function() return false end,
      { recv = dummy, dummy_fired },
      { send = c, value = x, function() return true end },
    }
  end,
  recv = function(c)
    return goroutine.select {
      { recv = dummy, dummy_fired },
      { recv = c, function(x) return x end },
    }
  end,
  nbrecv = function(c)
    return goroutine.select {
      { recv = dummy, dummy_fired },
      default = function() return nil, false end,
      { recv = c, function(x) return x, true end },
    }
  end,
  recv2 = function(c)
    return goroutine.select {
      { recv = dummy, dummy_fired },
      { recv = c, function(x, ok) return x, ok end },
    }
  end,
  nbrecv2 = function(c)
    return goroutine.select {
      { recv = dummy, dummy_fired },
      default = function() return nil, false, false end,
      { recv = c, function(x, ok) return x, ok, true end },
    }
  end,
}

local closed_kinds = { XChan, SChan, SSChan }

-- closedchan.go's test1 on a closed, drained channel; failures go to 'failed'.
local function test1(ch, c, failed)
  local function fail(what, ...)
    local t = pack(...)
    for i = 1, t.n do t[i] = tostring(t[i]) end
    failed[#failed + 1] = what .. ": " .. table.concat(t, " ", 1, t.n) .. " " .. ch.impl
  end
  for _ = 1, 3 do
    -- recv a close signal (a zero value)
    local x = ch.recv(c)
    if x ~= nil then fail("test1: recv on closed", x) end
    local x2, ok = ch.recv2(c)
    if x2 ~= nil or ok then fail("test1: recv2 on closed", x2, ok) end
    -- should work with select: received a value without blocking
    local x3, selected = ch.nbrecv(c)
    if x3 ~= nil or not selected then fail("test1: recv on closed nb", x3, selected) end
    local x4, ok4, selected4 = ch.nbrecv2(c)
    if x4 ~= nil or ok4 or not selected4 then
      fail("test1: recv2 on closed nb", x4, ok4, selected4)
    end
  end
  -- a send on a closed channel panics, blocking or not ...
  local okn, errn = pcall(ch.nbsend, c, 1)
  if okn or not has(errn, "send on closed channel") then fail("test1: nbsend did not panic", errn) end
  -- ... and the value is discarded
  local x = ch.recv(c)
  if x ~= nil then fail("test1: recv on closed got a value after send on closed", x) end
  local oks, errs = pcall(ch.send, c, 2)
  if oks or not has(errs, "send on closed channel") then fail("test1: send did not panic", errs) end
  x = ch.recv(c)
  if x ~= nil then fail("test1: recv on closed got a value after send on closed", x) end
end

local function closedsync()
  local c = goroutine.chan()
  c:close()
  return c
end

local function closedasync()
  local c = goroutine.chan(2)
  c:send(1)
  c:close()
  return c
end

-- testasync1..4: the last buffered value, by each receive, then test1.
local testasyncs = {
  function(ch, c, fail)
    local x = ch.recv(c)
    if x ~= 1 then fail("testasync1: Recv did not get 1", x) end
  end,
  function(ch, c, fail)
    local x, ok = ch.recv2(c)
    if x ~= 1 or not ok then fail("testasync2: Recv2 did not get 1, true", x, ok) end
  end,
  function(ch, c, fail)
    local x, selected = ch.nbrecv(c)
    if x ~= 1 or not selected then fail("testasync3: Nbrecv did not get 1, true", x, selected) end
  end,
  function(ch, c, fail)
    local x, ok, selected = ch.nbrecv2(c)
    if x ~= 1 or not ok or not selected then
      fail("testasync4: Nbrecv2 did not get 1, true, true", x, ok, selected)
    end
  end,
}

describe("test/closedchan.go", function()
  it("test1: a closed channel gives nil, false to every receive, blocking or not, and panics every send", function()
    local failed = {}
    for _, ch in ipairs(closed_kinds) do test1(ch, closedsync(), failed) end
    assert.are.same({}, failed)
  end)

  it("testasync1-4: a closed buffered channel first gives its last value to every kind of receive", function()
    local failed = {}
    for k, testasync in ipairs(testasyncs) do
      for _, ch in ipairs(closed_kinds) do
        local c = closedasync()
        testasync(ch, c, function(what, ...)
          failed[#failed + 1] = ("%s (%d): %s %s"):format(what, k, tostring((...)), ch.impl)
        end)
        test1(ch, c, failed)
      end
    end
    assert.are.same({}, failed)
  end)

  it("close of a nil channel and of a closed channel panic", function()
    local close = goroutine.chan().close
    assert.is_true(has(error_of(close, nil), "close of nil channel"))
    local ch = goroutine.chan()
    ch:close()
    assert.is_true(has(error_of(ch.close, ch), "close of closed channel"))
  end)
end)

-- ========================================================== test/chancap.go

describe("test/chancap.go", function()
  it("len and cap of a buffered and an unbuffered channel", function()
    local c = goroutine.chan(10)
    assert.are.same({ 0, 10 }, { c:len(), c:cap() })
    for i = 0, 2 do c:send(i) end
    assert.are.same({ 3, 10 }, { c:len(), c:cap() })
    c = goroutine.chan()
    assert.are.same({ 0, 0 }, { c:len(), c:cap() })
  end)

  it("make with a negative or a too large size panics: makechan: size out of range", function()
    local n = -1
    for _, size in ipairs({ n, 1 << 59, math.maxinteger }) do
      assert.is_true(has(error_of(goroutine.chan, size), "makechan: size out of range"), tostring(size))
    end
  end)
end)

-- ======================================================== test/chan/fifo.go

describe("test/chan/fifo.go", function()
  local N = 10

  it("AsynchFifo: a buffered channel gives its values back in order", function()
    local ch = goroutine.chan(N)
    for i = 0, N - 1 do ch:send(i) end
    for i = 0, N - 1 do assert.are.equal(i, (ch:recv())) end
  end)

  it("SynchFifo: a daisy chain of receivers on one unbuffered channel reads the values in sequence", function()
    local ch, errs = goroutine.chan(), goroutine.chan(N)
    local function chain(ch, val, input, out, errs)
      input:recv()
      local v = ch:recv()
      if v ~= val then errs:send(("chain %d got %s"):format(val, tostring(v))) end
      out:send(1)
    end
    local input = goroutine.chan()
    local start = input
    for i = 0, N - 1 do
      local out = goroutine.chan()
      goroutine.go(chain, ch, i, input, out, errs)
      input = out
    end
    start:send(0)
    for i = 0, N - 1 do ch:send(i) end
    input:recv()
    assert.are.same({}, drain(errs))
  end)
end)

-- ==================================================== test/chan/nonblock.go

describe("test/chan/nonblock.go", function()
  it("non-blocking sends and receives succeed exactly when the other side is ready, buffered or not", function()
    -- One pass per Go type: the value the receiver expects, and the value
    -- the sender sends (int32, int64, bool, string).
    local kinds = {
      { "i32", 123, 234 }, { "i64", 123456, 234567 },
      { "b", true, true }, { "s", "hello", "hello again" },
    }
    local maxTries = 100000     -- yields; a bound against hanging
    local sync, errs = goroutine.chan(), goroutine.chan(16)
    local function receiver(c, strobe, want, errs, name)
      local v = c:recv()
      if v ~= want then errs:send(name .. " value: " .. tostring(v)) end
      strobe:send(true)
    end
    local function sender(c, strobe, v)
      c:send(v)
      strobe:send(true)
    end
    local function nbsend(c, v)
      return goroutine.select {
        { send = c, value = v, function() return true end },
        default = function() return false end,
      }
    end
    local function nbrecv(c)
      return goroutine.select {
        { recv = c, function(v) return true, v end },
        default = function() return false end,
      }
    end
    for buffer = 0, 1 do
      for _, k in ipairs(kinds) do
        local name, want, sent = k[1], k[2], k[3]
        local c = goroutine.chan(buffer)
        assert.is_false(nbrecv(c), "blocked " .. name .. "sender")

        goroutine.go(receiver, c, sync, want, errs, name)
        local try = 0
        while not nbsend(c, want) do
          try = try + 1
          assert.is_true(try <= maxTries, name .. "receiver buffer=" .. buffer)
          goroutine.yield()
        end
        sync:recv()

        goroutine.go(sender, c, sync, sent)
        if buffer > 0 then sync:recv() end
        try = 0
        local got, v
        repeat
          got, v = nbrecv(c)
          if not got then
            try = try + 1
            assert.is_true(try <= maxTries, name .. "sender buffer=" .. buffer)
            goroutine.yield()
          end
        until got
        assert.are.equal(sent, v, name .. "sender value")
        if buffer == 0 then sync:recv() end
      end
    end
    assert.are.same({}, drain(errs))
  end)
end)

-- ====================================================== test/chan/select.go

describe("test/chan/select.go", function()
  it("every send value of a select is evaluated each time, nil channel or not", function()
    local counter, shift = 0, 0
    local function GetValue()
      counter = counter + 1
      return 1 << shift
    end
    local function Send(a, b)
      local i = 0
      while true do
        local more = goroutine.select {
          { send = a, value = GetValue(), function() i = i + 1; a = nil; return true end },
          { send = b, value = GetValue(), function() i = i + 1; b = nil; return true end },
          default = function() return false end,
        }
        if not more then break end
        shift = shift + 1
      end
      return i
    end
    local a, b = goroutine.chan(1), goroutine.chan(1)
    assert.are.equal(2, Send(a, b))
    local av, bv = a:recv(), b:recv()
    assert.are.equal(3, av | bv)
    assert.are.equal(1, Send(a, nil))
    assert.are.equal(10, counter)
  end)
end)

-- ===================================================== test/chan/select2.go

describe("test/chan/select2.go", function()
  it("a second run of 20,000 selects does not grow the selecting goroutine's heap", function()
    -- Go: 100,000 selects twice, the heap by runtime.MemStats; here the
    -- Lua heap of the goroutine that selects, after a full collection.
    local N = 20000
    local c, dummy, res = goroutine.chan(), goroutine.chan(), goroutine.chan(2)
    local function sender(c, n)
      for _ = 1, n do c:send(1) end
    end
    goroutine.go(function(c, dummy, res, n)
      local fired = 0
      local function receiver()
        for _ = 1, n do
          goroutine.select {
            { recv = c },
            { recv = dummy, function() fired = fired + 1 end },
          }
        end
      end
      goroutine.go(sender, c, n)          -- warm up
      receiver()
      collectgarbage("collect")
      local alloc = collectgarbage("count")
      goroutine.go(sender, c, n)          -- the second time
      receiver()
      collectgarbage("collect")
      res:send({ grew = (collectgarbage("count") - alloc) * 1024, fired = fired })
    end, c, dummy, res, N, sender)
    local r = res:recv()
    assert.are.equal(0, r.fired)
    -- Go allows 1.1e5 bytes for 100,000 selects; a select that kept as
    -- little as its userdata (over 100 bytes) would grow it by 2 MB.
    assert.is_true(r.grew < 64 * 1024, ("grew by %d bytes"):format(r.grew))
  end)
end)

-- ===================================================== test/chan/select3.go

describe("test/chan/select3.go", function()
  it("testBlock(always): nil channels, empty and non-ready channels, select {} and a select that sees itself block forever", function()
    -- Each blocking form runs in its own goroutine; one that returns prints
    -- so.  All of them blocked, with main waiting for them, the program
    -- must end in the deadlock report, one goroutine per form.
    local forms = {
      "goroutine.select { { send = nil, value = 7 } }",             -- nilch <- 7
      "goroutine.select { { recv = nil } }",                        -- <-nilch
      "local ch = goroutine.chan(); ch:recv()",                     -- <-ch
      "goroutine.select {}",                                        -- select {}
      "goroutine.select { { recv = nil, unreachable } }",
      "goroutine.select { { send = nil, value = 7, unreachable } }",
      "goroutine.select { { recv = nil, unreachable }, { send = nil, value = 7, unreachable } }",
      "local ch = goroutine.chan(); goroutine.select { { recv = ch, unreachable } }",
      -- select should not get confused if it sees itself
      "local c = goroutine.chan(); goroutine.select { { send = c, value = 1 }, { recv = c } }",
    }
    local code = { 'local goroutine = require "goroutine"',
                   'local function unreachable() print("unreachable ran") end',
                   'local wg = goroutine.waitgroup()' }
    for i, form in ipairs(forms) do
      code[#code + 1] = ("wg:add(1); goroutine.go(function() %s; print('form %d did not block'); wg:done() end)")
        :format(form, i)
    end
    code[#code + 1] = "wg:wait()"
    local r = support.program(table.concat(code, "\n"))
    assert.are.equal("", r.stdout)
    assert.are.equal(2, r.status, r.stderr)
    assert.is_true(has(r.stderr, "all goroutines are asleep - deadlock!"), r.stderr)
    local blocked = 0
    for _ in r.stderr:gmatch("goroutine %d+ %[") do blocked = blocked + 1 end
    assert.are.equal(#forms + 1, blocked, r.stderr)      -- and main
  end)

  it("testBlock(never): a free buffer, a closed channel, default and ready cases never block", function()
    local closedch = goroutine.chan()
    closedch:close()
    local function unreachable() error("control flow shouldn't reach here") end
    -- sending to an async channel with free buffer space never blocks
    goroutine.chan(1):send(7)
    -- receiving from a closed channel never blocks
    for _ = 1, 10 do
      assert.is_nil((closedch:recv()))
      assert.are.same(pack(nil, false), pack(closedch:recv()))
    end
    -- selects with default cases don't block
    goroutine.select { default = true }
    goroutine.select { { recv = nil, unreachable }, default = true }
    goroutine.select { { send = nil, value = 7, unreachable }, default = true }
    -- selects with ready channels don't block
    local ch = goroutine.chan(1)
    goroutine.select { { send = ch, value = 7 }, default = unreachable }
    ch = goroutine.chan(1)
    ch:send(7)
    goroutine.select { { recv = ch }, default = unreachable }
    -- selects with closed channels behave like ordinary operations
    goroutine.select { { recv = closedch } }
    assert.are.same(pack(1, nil, false), pack(goroutine.select { { recv = closedch } }))
    goroutine.select { { recv = closedch, function(x, ok) assert.is_nil(x); assert.is_false(ok) end } }
  end)

  it("testPanic: a nil channel case never panics; a send to a closed channel always does", function()
    local closedch = goroutine.chan()
    closedch:close()
    local function unreachable() error("control flow shouldn't reach here") end
    assert.is_true(pcall(goroutine.select, { { send = nil, value = 7, unreachable }, default = true }))
    assert.is_true(pcall(goroutine.select, { { recv = nil, unreachable }, default = true }))
    assert.is_true(has(error_of(closedch.send, closedch, 7), "send on closed channel"))
    assert.is_true(has(error_of(goroutine.select, { { send = closedch, value = 7 } }),
                       "send on closed channel"))
  end)
end)

-- ===================================================== test/chan/select4.go

describe("test/chan/select4.go", function()
  it("the receive of a case that is not chosen is never evaluated", function()
    local calledf = false
    local x = { a = 0 }
    local c, c1 = goroutine.chan(1), goroutine.chan()
    c:send(42)
    goroutine.select {
      { recv = c1, function(v) calledf = true; x.a = v end },   -- *f() = <-c1
      { recv = c, function(v) x.a = v end },                    -- x.a = <-c
    }
    assert.is_false(calledf, "BUG: called f")
    assert.are.equal(42, x.a)
  end)
end)

-- ===================================================== test/chan/select5.go

-- select5.go's enumeration of every path through some logic: choose(n)
-- returns 0 .. n-1 on successive runs, maybe() true then false; next()
-- moves to the next run (as select5.go's choose, maybe and next).
local function chooser()
  local choices, cp = {}, -1
  local self = {}
  local function choose(n)
    if cp >= #choices then       -- never asked this before: start with 0
      choices[#choices + 1] = { i = 0, n = n }
      cp = #choices
      return 0
    end
    local c = choices[cp + 1]    -- otherwise give the recorded answer
    if n ~= c.n then error("inconsistent choices") end
    cp = cp + 1
    return c.i
  end
  local function maybe() return choose(2) == 0 end
  function self.next()
    if cp < 0 then cp = 0; return true end          -- start a new round
    cp = #choices - 1                               -- increment the last choice
    while cp >= 0 and choices[cp + 1].i == choices[cp + 1].n - 1 do cp = cp - 1 end
    if cp < 0 then choices = {}; return false end
    choices[cp + 1].i = choices[cp + 1].i + 1
    for j = #choices, cp + 2, -1 do choices[j] = nil end
    cp = 0
    return true
  end
  -- the template's arg: Maybe, MaybeDefault, MustDefault, reset
  local def = false
  function self.Maybe() return maybe() end
  function self.MaybeDefault()
    if def then return false end
    def = maybe()
    return def
  end
  function self.MustDefault() return not def end
  function self.reset() def = false end
  return self
end

-- The state select5.go's generated program shares between its cases.
local function select5_state()
  local st = {
    c = goroutine.chan(1),      -- buffered: the test is single-goroutine
    nilch = nil,
    dummy = goroutine.chan(),
    n = 1, x = 0, m = {}, box = { 0 }, order = 0, problems = {},
  }
  function st.panic(what) return function() error(what, 0) end end
  -- successive calls to checkorder must have increasing o values
  function st.checkorder(o)
    if o <= st.order then error(("invalid order %d after %d"):format(o, st.order), 0) end
    st.order = o
  end
  function st.fc(c, o) st.checkorder(o); return c end
  function st.fp(p, o) st.checkorder(o); return p end
  function st.fn(n, o) st.checkorder(o); return n end
  function st.check()
    if st.x ~= st.n then error(("have %s want %d"):format(tostring(st.x), st.n), 0) end
    st.n = st.n + 1
  end
  return st
end

-- The select5.go templates.  Each makes its choices (a.Maybe ...) in the
-- order its Go template does, building the select's cases, then runs it.
local select5_templates = {}

-- Send n, receive it one way or another into x, check that they match.
function select5_templates.recv(a, st)
  st.c:send(st.n)
  if a.Maybe() then
    st.x = st.c:recv()
  else
    local cases = {}
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    -- receive from c: by handler, index form, handler result, box, map
    local how
    if a.Maybe() then
      cases[#cases + 1] = { recv = st.c, function(v) st.x = v end }
    elseif a.Maybe() then
      cases[#cases + 1] = { recv = st.c }; how = "index"
    elseif a.Maybe() then
      cases[#cases + 1] = { recv = st.c, function(y) return "result", y end }; how = "result"
    elseif a.Maybe() then
      cases[#cases + 1] = { recv = st.c, function(v) st.box[1] = v end }; how = "box"
    else
      cases[#cases + 1] = { recv = st.c, function(v) st.m[13] = v end }; how = "map"
    end
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    if a.Maybe() then cases[#cases + 1] = { send = st.dummy, value = 1, st.panic("dummy send") } end
    if a.Maybe() then cases[#cases + 1] = { recv = st.dummy, st.panic("dummy receive") } end
    if a.Maybe() then cases[#cases + 1] = { send = st.nilch, value = 1, st.panic("nilch send") } end
    if a.Maybe() then cases[#cases + 1] = { recv = st.nilch, st.panic("nilch recv") } end
    local r1, r2 = goroutine.select(cases)
    if how == "index" then
      if r1 ~= 1 then error("index " .. tostring(r1), 0) end
      st.x = r2
    elseif how == "result" then
      if r1 ~= "result" then error("result " .. tostring(r1), 0) end
      st.x = r2
    elseif how == "box" then
      st.x = st.box[1]
    elseif how == "map" then
      st.x = st.m[13]
    end
  end
  st.check()
end

-- The same, checking the order of evaluation along the way: a select's
-- channels and values in the order written, and a receive's destination
-- only once its case is chosen (so after all of them).
function select5_templates.recvOrder(a, st)
  st.order = 0
  st.c:send(st.n)
  local fc, fp, fn = st.fc, st.fp, st.fn
  if a.Maybe() then
    -- outside of select, the left-to-right rule applies
    fp(st.box, 1)[1] = fc(st.c, 2):recv()
    st.x = st.box[1]
  elseif a.Maybe() then
    st.m[fn(13, 1)] = fc(st.c, 2):recv()
    st.x = st.m[13]
  else
    local cases = {}
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    if a.Maybe() then
      cases[#cases + 1] = { recv = fc(st.c, 1), function(v) fp(st.box, 100)[1] = v; st.x = st.box[1] end }
    elseif a.Maybe() then
      cases[#cases + 1] = { recv = fc(st.c, 1), function(y) st.x = y end }
    elseif a.Maybe() then
      cases[#cases + 1] = { recv = fc(st.c, 1), function(i) st.x = i end }
    else
      cases[#cases + 1] = { recv = fc(st.c, 1), function(v) st.m[fn(13, 100)] = v; st.x = st.m[13] end }
    end
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    if a.Maybe() then
      cases[#cases + 1] = { send = fc(st.dummy, 2), value = fn(1, 3), st.panic("dummy send") }
    end
    if a.Maybe() then cases[#cases + 1] = { recv = fc(st.dummy, 4), st.panic("dummy receive") } end
    if a.Maybe() then
      cases[#cases + 1] = { send = fc(st.nilch, 5), value = fn(1, 6), st.panic("nilch send") }
    end
    if a.Maybe() then cases[#cases + 1] = { recv = fc(st.nilch, 7), st.panic("nilch recv") } end
    goroutine.select(cases)
  end
  st.check()
end

-- Send n one way or another, receive it into x, check that they match.
function select5_templates.send(a, st)
  if a.Maybe() then
    st.c:send(st.n)
  else
    local cases = {}
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    cases[#cases + 1] = { send = st.c, value = st.n }
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    if a.Maybe() then cases[#cases + 1] = { send = st.dummy, value = 1, st.panic("dummy send") } end
    if a.Maybe() then cases[#cases + 1] = { recv = st.dummy, st.panic("dummy receive") } end
    if a.Maybe() then cases[#cases + 1] = { send = st.nilch, value = 1, st.panic("nilch send") } end
    if a.Maybe() then cases[#cases + 1] = { recv = st.nilch, st.panic("nilch recv") } end
    local i = goroutine.select(cases)
    if i ~= 1 then error("send case index " .. tostring(i), 0) end
  end
  st.x = st.c:recv()
  st.check()
end

-- The same, checking the order of evaluation.
function select5_templates.sendOrder(a, st)
  st.order = 0
  local fc, fn = st.fc, st.fn
  if a.Maybe() then
    fc(st.c, 1):send(fn(st.n, 2))
  else
    local cases = {}
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    cases[#cases + 1] = { send = fc(st.c, 1), value = fn(st.n, 2) }
    if a.MaybeDefault() then cases.default = st.panic("nonblock") end
    if a.Maybe() then
      cases[#cases + 1] = { send = fc(st.dummy, 3), value = fn(1, 4), st.panic("dummy send") }
    end
    if a.Maybe() then cases[#cases + 1] = { recv = fc(st.dummy, 5), st.panic("dummy receive") } end
    if a.Maybe() then
      cases[#cases + 1] = { send = fc(st.nilch, 6), value = fn(1, 7), st.panic("nilch send") }
    end
    if a.Maybe() then cases[#cases + 1] = { recv = fc(st.nilch, 8), st.panic("nilch recv") } end
    goroutine.select(cases)
  end
  st.x = st.c:recv()
  st.check()
end

-- Various combinations of non-blocking operations: none is ready, default
-- runs, and no receive's destination is touched.
function select5_templates.nonblock(a, st)
  st.x = st.n
  local cases = {}
  local function touch() st.x = "touched" end
  if a.MaybeDefault() then cases.default = true end
  if a.Maybe() then cases[#cases + 1] = { send = st.dummy, value = 1, st.panic("dummy <- 1") } end
  if a.Maybe() then cases[#cases + 1] = { send = st.nilch, value = 1, st.panic("nilch <- 1") } end
  if a.Maybe() then cases[#cases + 1] = { recv = st.dummy, st.panic("<-dummy") } end
  if a.Maybe() then cases[#cases + 1] = { recv = st.dummy, touch } end
  if a.Maybe() then cases[#cases + 1] = { recv = st.dummy, st.panic("<-dummy (and didn't crash saving result!)") } end
  if a.Maybe() then cases[#cases + 1] = { recv = st.nilch, st.panic("<-nilch") } end
  if a.Maybe() then cases[#cases + 1] = { recv = st.nilch, touch } end
  if a.Maybe() then cases[#cases + 1] = { recv = st.nilch, st.panic("<-nilch (and didn't crash saving result!)") } end
  if a.MustDefault() then cases.default = true end
  goroutine.select(cases)
  st.check()
end

describe("test/chan/select5.go", function()
  -- How many programs select5.go generates from each template (its
  -- "// 1045 cases", counted per template).
  local expected = { recv = 241, send = 49, recvOrder = 194, sendOrder = 49, nonblock = 512 }
  for _, name in ipairs({ "recv", "send", "recvOrder", "sendOrder", "nonblock" }) do
    it(name .. ": every generated select picks the right case, evaluating in the right order ("
       .. expected[name] .. " cases)", function()
      local a, st, count, failures = chooser(), select5_state(), 0, {}
      while a.next() do
        count = count + 1
        local ok, err = pcall(select5_templates[name], a, st)
        if not ok then
          failures[#failures + 1] = ("case %d: %s"):format(count, tostring(err))
          -- start the next case clean: c empty, n in step
          st.c:tryrecv()
          st.n = st.n + 1
        end
        a.reset()
      end
      assert.are.same({}, failures)
      assert.are.equal(expected[name], count)
    end)
  end
end)

-- ===================================================== test/chan/select6.go

describe("test/chan/select6.go", function()
  it("a select woken by one channel leaves no waiter on the other (issue 2075)", function()
    local c1, c2, c3 = goroutine.chan(), goroutine.chan(), goroutine.chan()
    local errs, done = goroutine.chan(4), goroutine.waitgroup()
    done:add(3)
    goroutine.go(function() c1:recv(); done:done() end)
    goroutine.go(function()
      goroutine.select {
        { recv = c1, function() errs:send("dummy") end },
        { recv = c2, function() c3:send(true) end },
      }
      c1:recv()
      done:done()
    end)
    goroutine.go(function() c2:send(true); done:done() end)
    c3:recv()
    c1:send(true)
    c1:send(true)
    done:wait()
    assert.are.same({}, drain(errs))
  end)
end)

-- ===================================================== test/chan/select7.go

describe("test/chan/select7.go", function()
  it("every pairing of send, one-case select send and two-case select send with the three receive forms completes", function()
    local function recv1(c) c:recv() end
    local function recv2(c) goroutine.select { { recv = c } } end
    local function recv3(c)
      local c2 = goroutine.chan()
      goroutine.select { { recv = c }, { recv = c2 } }
    end
    local function send1(recv)
      local c = goroutine.chan()
      goroutine.go(recv, c)
      goroutine.yield()
      c:send(1)
    end
    local function send2(recv)
      local c = goroutine.chan()
      goroutine.go(recv, c)
      goroutine.yield()
      goroutine.select { { send = c, value = 1 } }
    end
    local function send3(recv)
      local c = goroutine.chan()
      goroutine.go(recv, c)
      goroutine.yield()
      local c2 = goroutine.chan()
      goroutine.select { { send = c, value = 1 }, { send = c2, value = 1 } }
    end
    local done = 0
    for _, recv in ipairs({ recv1, recv2, recv3 }) do
      for _, send in ipairs({ send1, send2, send3 }) do
        send(recv)
        done = done + 1
      end
    end
    assert.are.equal(9, done)
  end)
end)

-- ================================================ test/chan/doubleselect.go

describe("test/chan/doubleselect.go", function()
  it("a select over four sends sends each value on one channel only (20,000 values)", function()
    local iterations = 20000           -- Go: 100,000
    local c1, c2, c3, c4 = goroutine.chan(), goroutine.chan(), goroutine.chan(), goroutine.chan()
    local done, cmux = goroutine.chan(), goroutine.chan()
    goroutine.go(function(n, c1, c2, c3, c4)
      for i = 0, n - 1 do
        goroutine.select {
          { send = c1, value = i }, { send = c2, value = i },
          { send = c3, value = i }, { send = c4, value = i },
        }
      end
      c4:close(); c3:close(); c2:close(); c1:close()
    end, iterations, c1, c2, c3, c4)
    local function mux(out, input, done)
      for v in input:range() do out:send(v) end
      done:send(true)
    end
    for _, c in ipairs({ c1, c2, c3, c4 }) do goroutine.go(mux, cmux, c, done) end
    goroutine.go(function()
      for _ = 1, 4 do done:recv() end
      cmux:close()
    end)
    local seen, dups, count = {}, {}, 0
    for v in cmux:range() do
      if seen[v] then dups[#dups + 1] = v end
      seen[v] = true
      count = count + 1
    end
    assert.are.same({}, dups)
    assert.are.equal(iterations, count)
  end)
end)

-- ================================================== test/chan/goroutines.go

describe("test/chan/goroutines.go", function()
  it("a chain of 1,000 goroutines passes one value down and tears down cleanly", function()
    local n = 1000                     -- Go: 10,000
    local function f(left, right) left:send((right:recv())) end
    local leftmost = goroutine.chan()
    local left, right = leftmost, leftmost
    for _ = 1, n do
      right = goroutine.chan()
      goroutine.go(f, left, right)
      left = right
    end
    goroutine.go(function(c) c:send(1) end, right)
    assert.are.equal(1, (leftmost:recv()))
  end)
end)

-- ==================================================== test/chan/sendstmt.go

describe("test/chan/sendstmt.go", function()
  it("chanchan: a channel received from a channel of channels is sent on, in a select", function()
    local cc, c = goroutine.chan(1), goroutine.chan(1)
    cc:send(c)
    goroutine.select {
      { send = (cc:recv()), value = 2 },                 -- case <-cc <- 2
      default = function() error("nonblock") end,
    }
    assert.are.equal(2, (c:recv()))
  end)

  it("sendprec: c <- false || true sends true", function()
    local c = goroutine.chan(1)
    c:send(false or true)
    assert.is_true((c:recv()))
  end)
end)

-- ==================================================== test/chan/zerosize.go

describe("test/chan/zerosize.go", function()
  it("channels of zero-size values, buffered or not, carry them", function()
    -- Go's [0]byte and struct{}: nil and the empty table
    for _, cap in ipairs({ 0, 1 }) do
      for _, zero in ipairs({ false, true }) do
        local c = goroutine.chan(cap)
        local v = zero and {} or nil
        goroutine.go(function(c, v) c:send(v) end, c, v)
        local got, ok = c:recv()
        assert.is_true(ok)
        if zero then assert.are.same({}, got) else assert.is_nil(got) end
      end
    end
  end)
end)

-- ============================================ test/chan/sieve1.go, sieve2.go

local PRIMES = "2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97\n"

describe("test/chan/sieve1.go", function()
  it("the concurrent prime sieve: a daisy chain of filter goroutines gives the first 25 primes", function()
    assert_program([[
local goroutine = require "goroutine"
-- Send the sequence 2, 3, 4, ... to channel 'ch'.
local function Generate(ch)
  local i = 2
  while true do ch:send(i); i = i + 1 end
end
-- Copy the values from channel 'input' to channel 'out',
-- removing those divisible by 'prime'.
local function Filter(input, out, prime)
  for i in input:range() do
    if i % prime ~= 0 then out:send(i) end
  end
end
-- The prime sieve: Daisy-chain Filter processes together.
local function Sieve(primes)
  local ch = goroutine.chan()
  goroutine.go(Generate, ch)
  while true do
    local prime = ch:recv()
    primes:send(prime)
    local ch1 = goroutine.chan()
    goroutine.go(Filter, ch, ch1, prime)
    ch = ch1
  end
end
local primes = goroutine.chan()
goroutine.go(Sieve, primes)
local a = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97 }
local got = {}
for i = 1, #a do
  local x = primes:recv()
  if x ~= a[i] then error(x .. " != " .. a[i]) end
  got[i] = x
end
print(table.concat(got, " "))
]], PRIMES)
  end)
end)

describe("test/chan/sieve2.go", function()
  it("the sieve with a heap of channels of multiples and a growing send proxy gives the first 25 primes", function()
    assert_program([[
local goroutine = require "goroutine"
-- Return a chan of odd numbers, starting from 5.
local function odds()
  local out = goroutine.chan(50)
  goroutine.go(function()
    local n = 5
    while true do out:send(n); n = n + 2 end
  end)
  return out
end
-- Return a chan of odd multiples of the prime number p, starting from p*p.
local function multiples(p)
  local out = goroutine.chan(10)
  goroutine.go(function()
    local n = p * p
    while true do out:send(n); n = n + 2 * p end
  end)
  return out
end
-- A heap of PeekCh {head, ch}, by head (container/heap).
local heap = {}
function heap.push(h, v)
  h[#h + 1] = v
  local j = #h
  while j > 1 do
    local i = j // 2
    if not (h[j].head < h[i].head) then break end
    h[i], h[j] = h[j], h[i]
    j = i
  end
end
function heap.pop(h)
  local n = #h
  h[1], h[n] = h[n], h[1]
  local i = 1
  while true do
    local j = 2 * i
    if j >= n then break end
    if j + 1 < n and h[j + 1].head < h[j].head then j = j + 1 end
    if not (h[j].head < h[i].head) then break end
    h[i], h[j] = h[j], h[i]
    i = j
  end
  local v = h[n]
  h[n] = nil
  return v
end
-- Return a channel to serve as a sending proxy to 'out'.  A goroutine
-- receives from it and stores the values in an expanding buffer, so that
-- sending to 'out' never blocks (container/ring: a queue that grows).
local function sendproxy(out)
  local proxy = goroutine.chan(10)
  goroutine.go(function()
    local q, first, last = {}, 1, 1    -- q[first .. last-1]
    while true do
      local c, e = out, nil
      if first == last then c = nil    -- buffer empty: disable output
      else e = q[first] end
      goroutine.select {
        { recv = proxy, function(v) q[last] = v; last = last + 1 end },
        { send = c, value = e, function() q[first] = nil; first = first + 1 end },
      }
    end
  end)
  return proxy
end
-- Return a chan of primes.
local function Sieve()
  -- The output values.
  local out = goroutine.chan(10)
  out:send(2)
  out:send(3)
  -- The channel of all composites to be eliminated in increasing order.
  local composites = goroutine.chan(50)
  -- The feedback loop.
  local primes = goroutine.chan(10)
  primes:send(3)
  -- Merge channels of multiples of 'primes' into 'composites'.
  goroutine.go(function()
    local h = {}
    local min = 15
    while true do
      local m = multiples((primes:recv()))
      local head = m:recv()
      while min < head do
        composites:send(min)
        local minchan = heap.pop(h)
        min = minchan.head
        minchan.head = minchan.ch:recv()
        heap.push(h, minchan)
      end
      while min == head do
        local minchan = heap.pop(h)
        min = minchan.head
        minchan.head = minchan.ch:recv()
        heap.push(h, minchan)
      end
      composites:send(head)
      heap.push(h, { head = (m:recv()), ch = m })
    end
  end)
  -- Sieve out 'composites' from 'candidates'.
  goroutine.go(function()
    -- The merging goroutine receives from 'primes' much slower than this
    -- one sends to it: a proxy buffers them, or the two would deadlock.
    local primes = sendproxy(primes)
    local candidates = odds()
    local p = candidates:recv()
    while true do
      local c = composites:recv()
      while p < c do
        primes:send(p)
        out:send(p)
        p = candidates:recv()
      end
      if p == c then p = candidates:recv() end
    end
  end)
  return out
end
local primes = Sieve()
local a = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97 }
local got = {}
for i = 1, #a do
  local x = primes:recv()
  if x ~= a[i] then error(x .. " != " .. a[i]) end
  got[i] = x
end
print(table.concat(got, " "))
]], PRIMES)
  end)
end)

-- ==================================================== test/chan/powser1.go

-- powser1.go, line for line: power series as demand channels (a request
-- channel and a data channel per series), every operator a goroutine.
-- Go's integer / and % truncate; Lua's // and % floor: quo and rem are
-- Go's.  A *dch2 is shared by the generations of a split; a table copied
-- to each new generation when it starts behaves the same, since a
-- generation swaps out[0] and out[1] only after every older one is done
-- with them, and before it starts the next.
local POWSER1 = [==[
local goroutine = require "goroutine"

local function quo(a, b)
  local q = a // b
  if a % b ~= 0 and (a < 0) ~= (b < 0) then q = q + 1 end
  return q
end
local function rem(a, b) return a - quo(a, b) * b end

local out = {}
local function print_(...) for _, s in ipairs({ ... }) do out[#out + 1] = tostring(s) end end

local function rat(num, den) return { num = num, den = den } end
local function pr(u)
  if u.den == 1 then print_(u.num) else print_(u.num, "/", u.den) end
  print_(" ")
end
local function eq(u, c) return u.num == c.num and u.den == c.den end

local chnames, chnameserial, seqno

local function mkdch()
  local c = chnameserial % #chnames
  chnameserial = chnameserial + 1
  return { req = goroutine.chan(), dat = goroutine.chan(), nam = c }
end

local function mkdch2() return { mkdch(), mkdch() } end

-- split reads a single demand channel and replicates its output onto two,
-- which may be read at different rates.  A process is created at first
-- demand for a rat and dies after the rat has been sent to both outputs.
-- When multiple generations of split exist, the newest will service
-- requests on one channel, which is always renamed to be out[1]; the
-- oldest will service requests on the other channel, out[2].  All
-- generations but the newest hold queued data that has already been sent
-- to out[1].  When data has finally been sent to out[2], a signal on the
-- release-wait channel tells the next newer generation to begin servicing
-- out[2].
local dosplit
function dosplit(input, out, wait)
  local both = false   -- do not service both channels
  goroutine.select {
    { recv = out[1].req },
    { recv = wait, function()
        both = true
        goroutine.select {
          { recv = out[1].req },
          { recv = out[2].req, function() out[1], out[2] = out[2], out[1] end },
        }
      end },
  }
  seqno = seqno + 1
  input.req:send(seqno)
  local release = goroutine.chan()
  goroutine.go(dosplit, input, out, release)
  local dat = input.dat:recv()
  out[1].dat:send(dat)
  if not both then wait:recv() end
  out[2].req:recv()
  out[2].dat:send(dat)
  release:send(0)
end

local function split(input, out)
  local release = goroutine.chan()
  goroutine.go(dosplit, input, out, release)
  release:send(0)
end

local function put(dat, out)
  out.req:recv()
  out.dat:send(dat)
end

local function get(input)
  seqno = seqno + 1
  input.req:send(seqno)
  return (input.dat:recv())
end

-- Get one rat from each of n demand channels
local function getn(input)
  local n = #input
  if n ~= 2 then error("bad n in getn") end
  local req, dat = {}, {}
  local out = {}
  for i = 1, n do
    req[i] = input[i].req
    dat[i] = nil
  end
  n = 2 * n
  while n > 0 do
    seqno = seqno + 1
    goroutine.select {
      { send = req[1], value = seqno, function() dat[1] = input[1].dat; req[1] = nil end },
      { send = req[2], value = seqno, function() dat[2] = input[2].dat; req[2] = nil end },
      { recv = dat[1], function(it) out[1] = it; dat[1] = nil end },
      { recv = dat[2], function(it) out[2] = it; dat[2] = nil end },
    }
    n = n - 1
  end
  return out
end

-- Get one rat from each of 2 demand channels
local function get2(in0, in1) return getn({ in0, in1 }) end

local function copy(input, out)
  while true do
    out.req:recv()
    out.dat:send(get(input))
  end
end

local function repeat_(dat, out)
  while true do put(dat, out) end
end

local Ones, Twos
local mkPS, mkPS2 = mkdch, mkdch2

-- Integer gcd; needed for rational arithmetic
local function gcd(u, v)
  if u < 0 then return gcd(-u, v) end
  if u == 0 then return v end
  return gcd(rem(v, u), u)
end

-- Make a rational from two ints and from one int
local function i2tor(u, v)
  local g = gcd(u, v)
  if v > 0 then return rat(quo(u, g), quo(v, g)) end
  return rat(quo(-u, g), quo(-v, g))
end
local function itor(u) return i2tor(u, 1) end

local zero, one
-- End mark and end test
local finis
local function end_(u) if u.den == 0 then return 1 end return 0 end

-- Operations on rationals
local function add(u, v)
  local g = gcd(u.den, v.den)
  return i2tor(u.num * quo(v.den, g) + v.num * quo(u.den, g), u.den * quo(v.den, g))
end
local function mul(u, v)
  local g1 = gcd(u.num, v.den)
  local g2 = gcd(u.den, v.num)
  return rat(quo(u.num, g1) * quo(v.num, g2), quo(u.den, g2) * quo(v.den, g1))
end
local function neg(u) return i2tor(-u.num, u.den) end
local function sub(u, v) return add(u, neg(v)) end
local function inv(u)   -- invert a rat
  if u.num == 0 then error("zero divide in inv") end
  return i2tor(u.den, u.num)
end

-- Print n terms of a power series
local function printn(U, n)
  local done = false
  while not done and n > 0 do
    local u = get(U)
    if end_(u) ~= 0 then done = true else pr(u) end
    n = n - 1
  end
  print_("\n")
end

-- Power-series constructors return channels on which power series flow.
-- They start an encapsulated generator that puts the terms of the series
-- on the channel.

-- Make a pair of power series identical to a given power series
local function Split(U)
  local UU = mkdch2()
  goroutine.go(split, U, UU)
  return UU
end

-- Add two power series
local function Add(U, V)
  local Z = mkPS()
  goroutine.go(function()
    while true do
      Z.req:recv()
      local uv = get2(U, V)
      local e = end_(uv[1]) + 2 * end_(uv[2])
      if e == 0 then Z.dat:send(add(uv[1], uv[2]))
      elseif e == 1 then Z.dat:send(uv[2]); copy(V, Z)
      elseif e == 2 then Z.dat:send(uv[1]); copy(U, Z)
      else Z.dat:send(finis) end
    end
  end)
  return Z
end

-- Multiply a power series by a constant
local function Cmul(c, U)
  local Z = mkPS()
  goroutine.go(function()
    local done = false
    while not done do
      Z.req:recv()
      local u = get(U)
      if end_(u) ~= 0 then done = true else Z.dat:send(mul(c, u)) end
    end
    Z.dat:send(finis)
  end)
  return Z
end

-- Subtract
local function Sub(U, V) return Add(U, Cmul(neg(one), V)) end

-- Multiply a power series by the monomial x^n
local function Monmul(U, n)
  local Z = mkPS()
  goroutine.go(function()
    while n > 0 do put(zero, Z); n = n - 1 end
    copy(U, Z)
  end)
  return Z
end

-- Multiply by x
local function Xmul(U) return Monmul(U, 1) end

local function Rep(c)
  local Z = mkPS()
  goroutine.go(repeat_, c, Z)
  return Z
end

-- Monomial c*x^n
local function Mon(c, n)
  local Z = mkPS()
  goroutine.go(function()
    if c.num ~= 0 then
      while n > 0 do put(zero, Z); n = n - 1 end
      put(c, Z)
    end
    put(finis, Z)
  end)
  return Z
end

local function Shift(c, U)
  local Z = mkPS()
  goroutine.go(function()
    put(c, Z)
    copy(U, Z)
  end)
  return Z
end

-- Multiply. The algorithm is
--   let U = u + x*UU
--   let V = v + x*VV
--   then UV = u*v + x*(u*VV+v*UU) + x*x*UU*VV
local Mul
function Mul(U, V)
  local Z = mkPS()
  goroutine.go(function()
    Z.req:recv()
    local uv = get2(U, V)
    if end_(uv[1]) ~= 0 or end_(uv[2]) ~= 0 then
      Z.dat:send(finis)
    else
      Z.dat:send(mul(uv[1], uv[2]))
      local UU = Split(U)
      local VV = Split(V)
      local W = Add(Cmul(uv[1], VV[1]), Cmul(uv[2], UU[1]))
      Z.req:recv()
      Z.dat:send(get(W))
      copy(Add(W, Mul(UU[2], VV[2])), Z)
    end
  end)
  return Z
end

-- Differentiate
local function Diff(U)
  local Z = mkPS()
  goroutine.go(function()
    Z.req:recv()
    local u = get(U)
    if end_(u) == 0 then
      local done, i = false, 1
      while not done do
        u = get(U)
        if end_(u) ~= 0 then
          done = true
        else
          Z.dat:send(mul(itor(i), u))
          Z.req:recv()
        end
        i = i + 1
      end
    end
    Z.dat:send(finis)
  end)
  return Z
end

-- Integrate, with const of integration
local function Integ(c, U)
  local Z = mkPS()
  goroutine.go(function()
    put(c, Z)
    local done, i = false, 1
    while not done do
      Z.req:recv()
      local u = get(U)
      if end_(u) ~= 0 then done = true end
      Z.dat:send(mul(i2tor(1, i), u))
      i = i + 1
    end
    Z.dat:send(finis)
  end)
  return Z
end

-- Binomial theorem (1+x)^c
local function Binom(c)
  local Z = mkPS()
  goroutine.go(function()
    local n = 1
    local t = itor(1)
    while c.num ~= 0 do
      put(t, Z)
      t = mul(mul(t, c), i2tor(1, n))
      c = sub(c, one)
      n = n + 1
    end
    put(finis, Z)
  end)
  return Z
end

-- Reciprocal of a power series
--   let U = u + x*UU
--   let Z = z + x*ZZ
--   (u+x*UU)*(z+x*ZZ) = 1
--   z = 1/u
--   u*ZZ + z*UU +x*UU*ZZ = 0
--   ZZ = -UU*(z+x*ZZ)/u
local function Recip(U)
  local Z = mkPS()
  goroutine.go(function()
    local ZZ = mkPS2()
    Z.req:recv()
    local z = inv(get(U))
    Z.dat:send(z)
    split(Mul(Cmul(neg(z), U), Shift(z, ZZ[1])), ZZ)
    copy(ZZ[2], Z)
  end)
  return Z
end

-- Exponential of a power series with constant term 0
-- (nonzero constant term would make nonrational coefficients)
-- bug: the constant term is simply ignored
--   Z = exp(U)
--   DZ = Z*DU
--   integrate to get Z
local function Exp(U)
  local ZZ = mkPS2()
  split(Integ(one, Mul(ZZ[1], Diff(U))), ZZ)
  return ZZ[2]
end

-- Substitute V for x in U, where the leading term of V is zero
--   let U = u + x*UU
--   let V = v + x*VV
--   then S(U,V) = u + VV*S(V,UU)
-- bug: a nonzero constant term is ignored
local Subst
function Subst(U, V)
  local Z = mkPS()
  goroutine.go(function()
    local VV = Split(V)
    Z.req:recv()
    local u = get(U)
    Z.dat:send(u)
    if end_(u) == 0 then
      if end_(get(VV[1])) ~= 0 then
        put(finis, Z)
      else
        copy(Mul(VV[1], Subst(U, VV[2])), Z)
      end
    end
  end)
  return Z
end

-- Monomial Substitution: U(c x^n)
-- Each Ui is multiplied by c^i and followed by n-1 zeros
local function MonSubst(U, c0, n)
  local Z = mkPS()
  goroutine.go(function()
    local c = one
    while true do
      Z.req:recv()
      local u = get(U)
      Z.dat:send(mul(u, c))
      c = mul(c, c0)
      if end_(u) ~= 0 then
        Z.dat:send(finis)
        break
      end
      for _ = 1, n - 1 do
        Z.req:recv()
        Z.dat:send(zero)
      end
    end
  end)
  return Z
end

local function Init()
  chnameserial = -1
  seqno = 0
  chnames = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
  zero = itor(0)
  one = itor(1)
  finis = i2tor(1, 0)
  Ones = Rep(one)
  Twos = Rep(itor(2))
end

local function check(U, c, count, str)
  for _ = 1, count do
    local r = get(U)
    if not eq(r, c) then
      print_("got: "); pr(r); print_("should get "); pr(c); print_("\n")
      io.write(table.concat(out))
      error(str)
    end
  end
end

local N = 10
local function checka(U, a, str)
  for i = 1, N do check(U, a[i], 1, str) end
end

Init()
if PRINT then
  print_("Ones: "); printn(Ones, 10)
  print_("Twos: "); printn(Twos, 10)
  print_("Add: "); printn(Add(Ones, Twos), 10)
  print_("Diff: "); printn(Diff(Ones), 10)
  print_("Integ: "); printn(Integ(zero, Ones), 10)
  print_("CMul: "); printn(Cmul(neg(one), Ones), 10)
  print_("Sub: "); printn(Sub(Ones, Twos), 10)
  print_("Mul: "); printn(Mul(Ones, Ones), 10)
  print_("Exp: "); printn(Exp(Ones), 15)
  print_("MonSubst: "); printn(MonSubst(Ones, neg(one), 2), 10)
  print_("ATan: "); printn(Integ(zero, MonSubst(Ones, neg(one), 2)), 10)
  io.write(table.concat(out))
  return
end
check(Ones, one, 5, "Ones")
check(Add(Ones, Ones), itor(2), 0, "Add Ones Ones")   -- 1 1 1 1 1
check(Add(Ones, Twos), itor(3), 0, "Add Ones Twos")   -- 3 3 3 3 3
local a = {}
local d = Diff(Ones)
for i = 1, N do a[i] = itor(i) end
checka(d, a, "Diff")                                  -- 1 2 3 4 5
local integ = Integ(zero, Ones)
a[1] = zero                                           -- integration constant
for i = 2, N do a[i] = i2tor(1, i - 1) end
checka(integ, a, "Integ")                             -- 0 1 1/2 1/3 1/4 1/5
check(Cmul(neg(one), Twos), itor(-2), 10, "CMul")     -- -1 -1 -1 -1 -1
check(Sub(Ones, Twos), itor(-1), 0, "Sub Ones Twos")  -- -1 -1 -1 -1 -1
local m = Mul(Ones, Ones)
for i = 1, N do a[i] = itor(i) end
checka(m, a, "Mul")                                   -- 1 2 3 4 5
local e = Exp(Ones)
a[1] = itor(1)
a[2] = itor(1)
a[3] = i2tor(3, 2)
a[4] = i2tor(13, 6)
a[5] = i2tor(73, 24)
a[6] = i2tor(167, 40)
a[7] = i2tor(4051, 720)
a[8] = i2tor(37633, 5040)
a[9] = i2tor(43817, 4480)
a[10] = i2tor(4596553, 362880)
checka(e, a, "Exp")                                   -- 1 1 3/2 13/6 73/24
local at = Integ(zero, MonSubst(Ones, neg(one), 2))
local c = 1
for i = 0, N - 1 do
  if i % 2 == 0 then
    a[i + 1] = zero
  else
    a[i + 1] = i2tor(c, i)
    c = -c
  end
end
checka(at, a, "ATan")                                 -- 0 -1 0 -1/3 0 -1/5
print("ok")
]==]

-- What `go run powser1.go print` prints (Go 1.19).
local POWSER1_PRINTED = [[
Ones: 1 1 1 1 1 1 1 1 1 1 
Twos: 2 2 2 2 2 2 2 2 2 2 
Add: 3 3 3 3 3 3 3 3 3 3 
Diff: 1 2 3 4 5 6 7 8 9 10 
Integ: 0 1 1/2 1/3 1/4 1/5 1/6 1/7 1/8 1/9 
CMul: -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 
Sub: -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 
Mul: 1 2 3 4 5 6 7 8 9 10 
Exp: 1 1 3/2 13/6 73/24 167/40 4051/720 37633/5040 43817/4480 4596553/362880 58941091/3628800 274691047/13305600 12470162233/479001600 202976401213/6227020800 1178339174801/29059430400 
MonSubst: 1 0 -1 0 1 0 -1 0 1 0 
ATan: 0 1 0 -1/3 0 1/5 0 -1/7 0 1/9 
]]

describe("test/chan/powser1.go", function()
  it("rational power series as goroutines: Ones, Add, Diff, Integ, Cmul, Sub, Mul, Exp and ATan pass Go's checks", function()
    assert_program("local PRINT = false\n" .. POWSER1, "ok\n")
  end)

  it("print mode: every series prints the terms Go prints, 15 of Exp", function()
    assert_program("local PRINT = true\n" .. POWSER1, POWSER1_PRINTED)
  end)
end)
