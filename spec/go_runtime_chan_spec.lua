-- spec/go_runtime_chan_spec.lua — Go's runtime channel tests, translated:
-- the Test functions of src/runtime/chan_test.go (Go 1.19, Debian's
-- golang-go, /usr/lib/go-1.19/src/runtime).  Each `it` names its test.
--
-- Go to Lua as in spec/go_chan_spec.lua: goroutine.chan, send, recv,
-- select (a nil channel is a case with recv = nil or send = nil), Go's zero
-- value from a closed channel is nil, runtime.Gosched is goroutine.yield,
-- and shared variables (Go's closures share them; goroutines here share
-- nothing) become goroutine.atomic values or results sent on channels.
-- Goroutines cannot call busted's assert: they count or send what went
-- wrong, and the spec asserts on that.
--
-- Where Go sleeps (time.Sleep(time.Millisecond)) to let goroutines block
-- before it checks that they have not gone on, the spec gives them every
-- chance to run (support.let_others_run) and checks the same: a correct
-- runtime passes whatever the schedule.  Every goroutine started here ends
-- before its case does.
--
-- Iteration counts are scaled down from Go's (noted where they differ) so
-- that the file runs in a few seconds, sanitizers included.  The two
-- statistical cases fail a correct runtime with probability below 1e-6
-- (the bound is worked out at each).
--
-- Not translated, and why:
-- - TestNoShrinkStackWhileParking: a race between the garbage collector
--   shrinking a goroutine's stack and that goroutine parking.  Each
--   goroutine here is a Lua state of its own, collected only by itself, so
--   nothing can touch its stack while it parks.  TestShrinkStackDuringBlockedSend
--   and TestSelectStackAdjust are translated as far as that allows: a
--   goroutine that blocks with a deep stack, and collects (shrinking it)
--   between operations.
-- - TestSelectStackAdjust's pointer checks (cx == &val): Lua has no
--   pointers; its select with duplicate cases on the same channels is
--   translated.
-- - The Benchmark functions belong in bench/.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

local drain = support.drain
local let_others_run = support.let_others_run

local function pack(...) return { n = select("#", ...), ... } end

-- A non-blocking receive through select: "received" or "default".
local function nbrecv_select(c)
  return goroutine.select {
    { recv = c, function() return "received" end },
    default = function() return "default" end,
  }
end

-- A non-blocking send through select: "sent" or "default".
local function nbsend_select(c, v)
  return goroutine.select {
    { send = c, value = v, function() return "sent" end },
    default = function() return "default" end,
  }
end

-- Use lots of Lua stack, briefly (Go's stackGrowthRecursive): i nested
-- calls, each holding 256 values in its frame; f runs at the deepest one.
local PAD = {}
for i = 1, 256 do PAD[i] = i end
local function stack_growth_recursive(i, f, ...)
  if i == 0 then
    if f then return f() end
    return select("#", ...)
  end
  local r = stack_growth_recursive(i - 1, f, table.unpack(PAD))
  if select("#", ...) ~= 0 and select("#", ...) ~= #PAD then error("frame lost its values") end
  return r
end

describe("src/runtime/chan_test.go", function()
  it("TestChan: on capacities 0 to 19, operations block exactly when they must and values arrive whole and in order", function()
    local N = 20          -- capacities 0 .. N-1 (Go: 200; 20 with -short)
    local L = 1000        -- values per goroutine in the 4-by-4 part
    for chanCap = 0, N - 1 do
      local where = ("chan[%d]: "):format(chanCap)
      do
        -- Ensure that receive from empty chan blocks.
        local c, events = goroutine.chan(chanCap), goroutine.chan(2)
        goroutine.go(function() c:recv(); events:send("recv1") end)
        goroutine.go(function() local _, _ = c:recv(); events:send("recv2") end)
        let_others_run()
        assert.are.same({}, drain(events), where .. "receive from empty chan")
        -- Ensure that non-blocking receive does not block.
        assert.are.equal("default", nbrecv_select(c), where .. "receive from empty chan")
        assert.are.same(pack(nil, false), pack(c:tryrecv()), where .. "receive from empty chan")
        c:send(0)
        c:send(0)
        events:recv()
        events:recv()
      end

      do
        -- Ensure that send to full chan blocks.
        local c = goroutine.chan(chanCap)
        for i = 0, chanCap - 1 do c:send(i) end
        local sent, finished = goroutine.atomic(0), goroutine.chan(1)
        goroutine.go(function()
          c:send(0)
          sent:store(1)
          finished:send(true)
        end)
        let_others_run()
        assert.are.equal(0, sent:load(), where .. "send to full chan")
        -- Ensure that non-blocking send does not block.
        assert.are.equal("default", nbsend_select(c, 0), where .. "send to full chan")
        assert.is_false(c:trysend(0), where .. "send to full chan")
        c:recv()
        finished:recv()
      end

      do
        -- Ensure that we receive 0 (nil) from closed chan.
        local c = goroutine.chan(chanCap)
        for i = 0, chanCap - 1 do c:send(i) end
        c:close()
        for i = 0, chanCap - 1 do
          assert.are.equal(i, (c:recv()), where .. "received, expected " .. i)
        end
        assert.is_nil((c:recv()), where .. "received non-nil from closed chan")
        assert.are.same(pack(nil, false), pack(c:recv()), where .. "expected nil/false")
      end

      do
        -- Ensure that close unblocks receive.
        local c, done = goroutine.chan(chanCap), goroutine.chan()
        goroutine.go(function()
          local v, ok = c:recv()
          done:send(v == nil and ok == false)
        end)
        let_others_run()
        c:close()
        assert.is_true((done:recv()), where .. "received non-nil from closed chan")
      end

      do
        -- Send 100 integers, ensure that we receive them non-corrupted in
        -- FIFO order; the same using recv's ok.
        local c = goroutine.chan(chanCap)
        goroutine.go(function() for i = 0, 99 do c:send(i) end end)
        for i = 0, 99 do
          local v = c:recv()
          if v ~= i then assert.are.equal(i, v, where .. "received out of order") end
        end
        goroutine.go(function() for i = 0, 99 do c:send(i) end end)
        for i = 0, 99 do
          local v, ok = c:recv()
          if not ok or v ~= i then
            assert.are.same({ i, true }, { v, ok }, where .. "receive failed or out of order")
          end
        end

        -- Send L integers in 4 goroutines, ensure that we receive what we send.
        local P = 4
        for _ = 1, P do
          goroutine.go(function() for i = 0, L - 1 do c:send(i) end end)
        end
        local done = goroutine.chan()
        for _ = 1, P do
          goroutine.go(function()
            local recv = {}
            for _ = 1, L do
              local v = c:recv()
              recv[v] = (recv[v] or 0) + 1
            end
            done:send(recv)
          end)
        end
        local recv = {}
        for _ = 1, P do
          for k, v in pairs(done:recv()) do recv[k] = (recv[k] or 0) + v end
        end
        local distinct, wrong = 0, {}
        for k, v in pairs(recv) do
          distinct = distinct + 1
          if v ~= P then wrong[#wrong + 1] = ("%s x%d"):format(tostring(k), v) end
        end
        assert.are.equal(L, distinct, where .. "received values, expected")
        assert.are.same({}, wrong, where .. "values received other than " .. P .. " times")
      end

      do
        -- Test len/cap.
        local c = goroutine.chan(chanCap)
        assert.are.same({ 0, chanCap }, { c:len(), c:cap() }, where .. "bad len/cap")
        for i = 0, chanCap - 1 do c:send(i) end
        assert.are.same({ chanCap, chanCap }, { c:len(), c:cap() }, where .. "bad len/cap")
      end
    end
  end)

  it("TestNonblockRecvRace: a non-blocking receive on a channel that is ready, then closed, never takes default (5,000 times)", function()
    local n = 5000        -- Go: 10,000
    local notready, wg = goroutine.atomic(0), goroutine.waitgroup()
    for _ = 1, n do
      local c = goroutine.chan(1)
      c:send(1)
      wg:add(1)
      goroutine.go(function()
        goroutine.select { { recv = c }, default = function() notready:add(1) end }
        wg:done()
      end)
      c:close()
      c:recv()
    end
    wg:wait()
    assert.are.equal(0, notready:load(), "chan is not ready")
  end)

  -- One goroutine makes c1 ready, starts a second, makes c2 ready, then
  -- makes c1 no longer ready if it can: from the second goroutine's start
  -- one of them is always ready, so its non-blocking select must take one.
  it("TestNonblockSelectRace: select acts on the channels at one moment, never on a smeared window (10,000 times)", function()
    local n = 10000       -- Go: 100,000 (1,000 with -short)
    local done = goroutine.chan(1)
    local defaults = 0
    for _ = 1, n do
      local c1, c2 = goroutine.chan(1), goroutine.chan(1)
      c1:send(1)
      goroutine.go(function()
        done:send(goroutine.select {
          { recv = c1, function() return true end },
          { recv = c2, function() return true end },
          default = function() return false end,
        })
      end)
      c2:send(1)
      goroutine.select { { recv = c1 }, default = true }
      if not done:recv() then defaults = defaults + 1 end
    end
    assert.are.equal(0, defaults, "no chan is ready")
  end)

  it("TestNonblockSelectRace2: the same with close(c2) for c2 <- 1 (10,000 times)", function()
    local n = 10000       -- Go: 100,000 (1,000 with -short)
    local done = goroutine.chan(1)
    local defaults = 0
    for _ = 1, n do
      local c1, c2 = goroutine.chan(1), goroutine.chan()
      c1:send(1)
      goroutine.go(function()
        done:send(goroutine.select {
          { recv = c1, function() return true end },
          { recv = c2, function() return true end },
          default = function() return false end,
        })
      end)
      c2:close()
      goroutine.select { { recv = c1 }, default = true }
      if not done:recv() then defaults = defaults + 1 end
    end
    assert.are.equal(0, defaults, "no chan is ready")
  end)

  it("TestSelfSelect: selects that send and receive on the same channel neither crash, deadlock nor receive their own value", function()
    for _, chanCap in ipairs({ 0, 10 }) do
      local wg, selfrecv = goroutine.waitgroup(), goroutine.atomic(0)
      wg:add(2)
      local c = goroutine.chan(chanCap)
      for p = 0, 1 do
        goroutine.go(function()
          for i = 0, 999 do
            local function got(v)
              if chanCap == 0 and v == p then selfrecv:add(1) end
            end
            if p == 0 or i % 2 == 0 then
              goroutine.select { { send = c, value = p }, { recv = c, got } }
            else
              goroutine.select { { recv = c, got }, { send = c, value = p } }
            end
          end
          wg:done()
        end)
      end
      wg:wait()
      assert.are.equal(0, selfrecv:load(), "self receive, cap " .. chanCap)
    end
  end)

  it("TestSelectStress: sends, receives and selects over four channels interact chaotically without deadlock", function()
    local N = 10000       -- Go: 100,000 (10,000 with -short)
    local c = { goroutine.chan(), goroutine.chan(), goroutine.chan(2), goroutine.chan(3) }
    -- 4 goroutines send N values on each of the chans, 4 receive N values
    -- on each, 1 sends N values on each in a single select, 1 receives N
    -- values on each in a single select.
    local wg, counts = goroutine.waitgroup(), goroutine.chan(2)
    wg:add(10)
    for k = 1, 4 do
      goroutine.go(function(ck) for _ = 1, N do ck:send(0) end; wg:done() end, c[k])
      goroutine.go(function(ck) for _ = 1, N do ck:recv() end; wg:done() end, c[k])
    end
    -- the channels in the order of each select's cases in Go
    local function selecting(dir, order)
      local n, c1 = { 0, 0, 0, 0 }, { c[1], c[2], c[3], c[4] }
      for _ = 1, 4 * N do
        local cases = {}
        for j, k in ipairs(order) do
          cases[j] = dir == "send" and { send = c1[k], value = 0 } or { recv = c1[k] }
        end
        local k = order[goroutine.select(cases)]
        n[k] = n[k] + 1
        if n[k] == N then c1[k] = nil end
      end
      counts:send({ dir, n })
      wg:done()
    end
    goroutine.go(selecting, "send", { 4, 3, 1, 2 })
    goroutine.go(selecting, "recv", { 1, 2, 3, 4 })
    wg:wait()
    local got = {}
    for _, r in ipairs(drain(counts)) do got[r[1]] = r[2] end
    assert.are.same({ send = { N, N, N, N }, recv = { N, N, N, N } }, got)
  end)

  it("TestSelectFairness: a select over two always-ready channels picks each half the time (10,000 trials)", function()
    local trials = 10000
    local c1, c2 = goroutine.chan(trials + 1), goroutine.chan(trials + 1)
    for _ = 1, trials + 1 do
      c1:send(1)
      c2:send(2)
    end
    local c3, c4 = goroutine.chan(), goroutine.chan()
    local out, done = goroutine.chan(), goroutine.chan()
    local wg = goroutine.waitgroup()
    wg:add(1)
    goroutine.go(function()
      while true do
        local _, b = goroutine.select { { recv = c3 }, { recv = c4 }, { recv = c1 }, { recv = c2 } }
        local stop = goroutine.select {
          { send = out, value = b, function() return false end },
          { recv = done, function() return true end },
        }
        if stop then break end
      end
      wg:done()
    end)
    local cnt1, cnt2, unexpected = 0, 0, {}
    for _ = 1, trials do
      local b = out:recv()
      if b == 1 then cnt1 = cnt1 + 1
      elseif b == 2 then cnt2 = cnt2 + 1
      else unexpected[#unexpected + 1] = tostring(b) end
    end
    done:close()
    wg:wait()
    assert.are.same({}, unexpected, "unexpected value on channel")
    -- If the select is fair, cnt1 is Binomial(trials, 1/2).  Go allows
    -- |cnt1/trials - 1/2| <= 4.891676 / (2 sqrt(trials)), a margin of
    -- 244.6 at 10,000 trials, from the normal approximation at six nines.
    -- Exactly: P(|cnt1 - 5000| >= 246) < 1e-6 (binomial_margin), so a fair
    -- select fails this with probability below one in a million.
    local margin = support.binomial_margin(trials, 1e-6)
    assert.are.equal(246, margin)
    assert.is_true(math.abs(cnt1 - trials / 2) < margin,
      ("unfair select: in %d trials, results were %d, %d"):format(trials, cnt1, cnt2))
  end)

  it("TestChanSendInterface: a table sent, and a select with two sends and default on a full channel", function()
    local m = {}
    local c = goroutine.chan(1)
    c:send(m)
    goroutine.select { { send = c, value = m }, default = true }
    goroutine.select { { send = c, value = m }, { send = c, value = {} }, default = true }
    assert.are.equal(1, c:len())
    assert.are.same({}, (c:recv()))
  end)

  -- A blocked select's cases are queued in a random order (Go's pollorder
  -- for its sends and receives), so the receiver, taking the first waiter,
  -- takes either case.  A fair choice fails the n/10 bound with
  -- probability 2 P(X <= 10) = 3.1e-17 for X ~ Binomial(100, 1/2).
  it("TestPseudoRandomSend: a blocked select of two sends on one channel is woken on either case", function()
    local n = 100
    for _, chanCap in ipairs({ 0, n }) do
      local c, result = goroutine.chan(chanCap), goroutine.chan(1)
      local m = goroutine.mutex()
      m:lock()
      goroutine.go(function()
        local l = {}
        for i = 1, n do
          goroutine.yield()
          l[i] = c:recv()
        end
        result:send(l)
        m:unlock()
      end)
      for _ = 1, n do
        goroutine.select { { send = c, value = 1 }, { send = c, value = 0 } }
      end
      m:lock()   -- wait
      m:unlock()
      local n0, n1 = 0, 0
      for _, i in ipairs(result:recv()) do
        n0 = n0 + (i + 1) % 2
        n1 = n1 + i
      end
      assert.is_true(n0 > n // 10 and n1 > n // 10,
        ("Want pseudorandom, got %d zeros and %d ones (chan cap %d)"):format(n0, n1, chanCap))
    end
  end)

  -- The receive form of the same (not in chan_test.go): two receive cases
  -- on one channel, the select blocked when a sender comes.  Same bound.
  it("TestPseudoRandomSend, receive form: a blocked select of two receives on one channel is woken on either case", function()
    local n = 100
    for _, chanCap in ipairs({ 0, n }) do
      local c = goroutine.chan(chanCap)
      goroutine.go(function()
        for i = 1, n do
          goroutine.yield()
          c:send(i)
        end
      end)
      local hits = { 0, 0 }
      for _ = 1, n do
        local k = goroutine.select { { recv = c }, { recv = c } }
        hits[k] = hits[k] + 1
      end
      assert.is_true(hits[1] > n // 10 and hits[2] > n // 10,
        ("Want pseudorandom, got %d on case 1 and %d on case 2 (chan cap %d)")
          :format(hits[1], hits[2], chanCap))
    end
  end)

  it("TestMultiConsumer: 23 workers ranging over one channel pass on every value exactly once (50,000 values)", function()
    local nwork = 23
    local niter = 50000   -- Go: 271,828
    local pn = { 2, 3, 7, 11, 13, 17, 19, 23, 27, 31 }
    local q, r = goroutine.chan(nwork * 3), goroutine.chan(nwork * 3)
    local expected = goroutine.chan(1)
    -- workers
    local wg = goroutine.waitgroup()
    for i = 0, nwork - 1 do
      wg:add(1)
      goroutine.go(function(w)
        for v in q:range() do
          -- mess with the fifo-ish nature of range
          if pn[w % #pn + 1] == v then goroutine.yield() end
          r:send(v)
        end
        wg:done()
      end, i)
    end
    -- feeder & closer
    goroutine.go(function()
      local expect = 0
      for i = 0, niter - 1 do
        local v = pn[i % #pn + 1]
        expect = expect + v
        q:send(v)
      end
      expected:send(expect)
      q:close()   -- no more work
      wg:wait()   -- workers done
      r:close()   -- ... so there can be no more results
    end)
    -- consume & check
    local n, s = 0, 0
    for v in r:range() do
      n = n + 1
      s = s + v
    end
    local expect = expected:recv()
    assert.are.same({ niter, expect }, { n, s })
  end)

  it("TestShrinkStackDuringBlockedSend, as far as it goes: a sender that blocks with a deep stack and shrinks it between sends", function()
    local n = 10
    local c, done = goroutine.chan(), goroutine.chan()
    goroutine.go(function()
      for i = 0, n - 1 do
        stack_growth_recursive(20, function() c:send(i) end)   -- block deep
        stack_growth_recursive(20)                              -- use lots of stack, briefly
        collectgarbage()                                        -- which shrinks it
      end
      done:send(true)
    end)
    for i = 0, n - 1 do
      local x = c:recv()
      assert.are.equal(i, x, "bad channel read")
      -- let the sender finish using lots of stack and block in send
      let_others_run()
      collectgarbage()
    end
    done:recv()
  end)

  it("TestSelectDuplicateChannel: a select queued twice on one channel, woken by another, leaves that channel's queue sound", function()
    local c, d, e = goroutine.chan(), goroutine.chan(), goroutine.chan()
    local finished = goroutine.chan(2)
    -- goroutine A
    goroutine.go(function()
      local i = goroutine.select { { recv = c }, { recv = c }, { recv = d } }
      e:send(i)
      finished:send("A")
    end)
    let_others_run()   -- A gets queued first on c
    -- goroutine B
    goroutine.go(function()
      local v = c:recv()
      finished:send(v)
    end)
    let_others_run()   -- B gets queued on c before continuing
    d:send(7)          -- wake up A, it dequeues itself from c
    assert.are.equal(3, (e:recv()))   -- A tells us it's done, by d
    c:send(8)          -- wake up B (a corrupted c.recvq woke A again)
    local got = { (finished:recv()), (finished:recv()) }
    table.sort(got, function(a, b) return tostring(a) < tostring(b) end)
    assert.are.same({ 8, "A" }, got)
  end)

  it("TestSelectStackAdjust, as far as it goes: selects with duplicate cases, blocked with a deep stack, are woken by close on a duplicated channel", function()
    local c, d = goroutine.chan(), goroutine.chan()
    local ready1, ready2 = goroutine.chan(), goroutine.chan()
    local function f(ready, dup)
      stack_growth_recursive(40)      -- temporarily grow the stack
      ready:send(true)                -- ready for collection and shrinking
      local val = 42
      local cx = val
      local c2, d2
      if dup then c2, d2 = c, d end
      -- receive from d; cx is not affected
      local i = stack_growth_recursive(10, function()
        return goroutine.select {
          { recv = c, function(v) cx = v; return 1 end },
          { recv = c2, function() return 2 end },
          { recv = d, function() return 3 end },
          { recv = d2, function() return 4 end },
        }
      end)
      collectgarbage()
      if (i == 3 or i == 4) and cx == 42 and val == 42 then
        ready:send(true)
      else
        ready:send(("case %s, cx %s, val %s"):format(tostring(i), tostring(cx), tostring(val)))
      end
    end
    goroutine.go(f, ready1, false)
    goroutine.go(f, ready2, true)
    -- let the goroutines get into the select
    ready1:recv()
    ready2:recv()
    let_others_run()
    collectgarbage()
    -- wake the selects
    d:close()
    assert.is_true(ready1:recv())
    assert.is_true(ready2:recv())
  end)
end)
