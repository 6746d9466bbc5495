-- spec/sync_spec.lua — the sync handles: mutex, rwmutex, waitgroup, once,
-- cond and atomic; their errors (Go's words); and that their handles cross
-- between goroutines by reference.
--
-- Synchronisation is by channels and wait groups only. Where a case shows
-- that something has NOT happened yet (a goroutine still blocked), it first
-- gives the other goroutines every chance to run (goroutine.yield in a
-- loop): a correct runtime passes regardless of scheduling.
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

local function pack(...) return { n = select("#", ...), ... } end

-- Nothing is waiting in ch (after the others had their chance to run).
local function still_nothing(ch)
  let_others_run()
  local r = pack(ch:tryrecv())
  return r[2] == false, r[1]
end

-- pcall(f, ...) must fail with a message containing 'text'.
local function assert_raises(text, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error: " .. text)
  assert.is_true(has(err, text), "got: " .. tostring(err))
end

describe("a mutex", function()
  it("lets one goroutine at a time into the critical section", function()
    -- Each goroutine reads, yields, then writes: without mutual exclusion
    -- the others would overwrite each other's increments.
    local n, k = 8, 50
    local mu, total, inside, overlap = goroutine.mutex(), goroutine.atomic(), goroutine.atomic(), goroutine.atomic()
    local wg = goroutine.waitgroup()
    wg:add(n)
    for _ = 1, n do
      goroutine.go(function(m, t, ins, ov, w, times)
        for _ = 1, times do
          m:lock()
          if ins:add(1) ~= 1 then ov:add(1) end
          local v = t:load()
          goroutine.yield()
          t:store(v + 1)
          ins:add(-1)
          m:unlock()
        end
        w:done()
      end, mu, total, inside, overlap, wg, k)
    end
    wg:wait()
    assert.equal(0, overlap:load())
    assert.equal(n * k, total:load())
  end)

  it("blocks lock until the holder unlocks", function()
    local mu, events = goroutine.mutex(), goroutine.chan(10)
    mu:lock()
    goroutine.go(function(m, e)
      e:send("locking")
      m:lock()
      e:send("locked")
      m:unlock()
    end, mu, events)
    assert.equal("locking", events:recv())
    assert.is_true(still_nothing(events))
    mu:unlock()
    assert.equal("locked", events:recv())
  end)

  it("trylock takes a free mutex and fails on a held one", function()
    local mu = goroutine.mutex()
    assert.is_true(mu:trylock())
    assert.is_false(mu:trylock())
    mu:unlock()
    assert.is_true(mu:trylock())
    mu:unlock()
  end)

  it("raises 'sync: unlock of unlocked mutex', catchably", function()
    local mu = goroutine.mutex()
    assert_raises("sync: unlock of unlocked mutex", mu.unlock, mu)
    mu:lock()
    mu:unlock()
    assert_raises("sync: unlock of unlocked mutex", mu.unlock, mu)
    assert.is_true(mu:trylock())   -- still usable
    mu:unlock()
  end)

  it("is the same lock in every goroutine that holds its handle", function()
    local mu, events, release = goroutine.mutex(), goroutine.chan(), goroutine.chan()
    goroutine.go(function(m, e, r)
      m:lock()
      e:send("locked")
      r:recv()
      m:unlock()
      e:send("unlocked")
    end, mu, events, release)
    assert.equal("locked", events:recv())
    assert.is_false(mu:trylock())
    release:send(true)
    assert.equal("unlocked", events:recv())
    assert.is_true(mu:trylock())
    mu:unlock()
  end)

  it("may be unlocked by a goroutine other than the one that locked it", function()
    local mu, out = goroutine.mutex(), goroutine.chan()
    mu:lock()
    goroutine.go(function(m, o) o:send(pack(pcall(m.unlock, m))) end, mu, out)
    assert.same(pack(true), out:recv())
    assert.is_true(mu:trylock())
    mu:unlock()
  end)
end)

describe("a rwmutex", function()
  it("lets many readers hold it at once", function()
    local rw, events, release = goroutine.rwmutex(), goroutine.chan(4), goroutine.chan()
    rw:rlock()                       -- main is one reader
    for i = 1, 2 do
      goroutine.go(function(r, e, rel, id)
        r:rlock()
        e:send(id)                   -- holds the read lock now
        rel:recv()
        r:runlock()
        e:send(-id)
      end, rw, events, release, i)
    end
    local held = {}
    held[events:recv()] = true
    held[events:recv()] = true
    assert.same({ [1] = true, [2] = true }, held)   -- three readers at once
    assert.is_false(rw:trylock())
    release:close()
    events:recv(); events:recv()
    rw:runlock()
    assert.is_true(rw:trylock())
    rw:unlock()
  end)

  it("keeps readers out while a writer holds it", function()
    local rw, events = goroutine.rwmutex(), goroutine.chan(10)
    rw:lock()
    assert.is_false(rw:tryrlock())
    assert.is_false(rw:trylock())
    goroutine.go(function(r, e)
      e:send("rlocking")
      r:rlock()
      e:send("rlocked")
      r:runlock()
    end, rw, events)
    assert.equal("rlocking", events:recv())
    assert.is_true(still_nothing(events))
    rw:unlock()
    assert.equal("rlocked", events:recv())
  end)

  it("keeps a writer out while readers hold it", function()
    local rw, events = goroutine.rwmutex(), goroutine.chan(10)
    rw:rlock()
    rw:rlock()
    goroutine.go(function(r, e)
      e:send("locking")
      r:lock()
      e:send("locked")
      r:unlock()
    end, rw, events)
    assert.equal("locking", events:recv())
    assert.is_true(still_nothing(events))
    rw:runlock()
    assert.is_true(still_nothing(events))   -- one reader is still in
    rw:runlock()
    assert.equal("locked", events:recv())
  end)

  it("stops new readers while a writer waits (no writer starvation)", function()
    local rw, events = goroutine.rwmutex(), goroutine.chan(10)
    rw:rlock()                                   -- a reader holds it
    goroutine.go(function(r, e)
      r:lock()                                   -- the writer waits
      e:send("writer")
      r:unlock()
    end, rw, events)
    -- Until the writer is queued, a new reader still gets in; once it is,
    -- tryrlock fails although only a reader holds the lock.
    local queued = false
    for _ = 1, 100000 do
      if rw:tryrlock() then rw:runlock(); goroutine.yield()
      else queued = true; break end
    end
    assert.is_true(queued)
    goroutine.go(function(r, e)
      r:rlock()                                  -- a new reader, after the writer
      e:send("reader")
      r:runlock()
    end, rw, events)
    assert.is_true(still_nothing(events))        -- both wait for the first reader
    rw:runlock()
    assert.equal("writer", events:recv())        -- the writer goes first
    assert.equal("reader", events:recv())
  end)

  it("raises 'sync: RUnlock of unlocked RWMutex' without a read lock", function()
    local rw = goroutine.rwmutex()
    assert_raises("sync: RUnlock of unlocked RWMutex", rw.runlock, rw)
    rw:lock()
    assert_raises("sync: RUnlock of unlocked RWMutex", rw.runlock, rw)
    rw:unlock()
  end)

  it("raises 'sync: Unlock of unlocked RWMutex' without the write lock", function()
    local rw = goroutine.rwmutex()
    assert_raises("sync: Unlock of unlocked RWMutex", rw.unlock, rw)
    rw:rlock()
    assert_raises("sync: Unlock of unlocked RWMutex", rw.unlock, rw)
    rw:runlock()
    assert.is_true(rw:trylock())   -- still usable
    rw:unlock()
  end)
end)

describe("a waitgroup", function()
  it("releases wait only when the counter reaches zero", function()
    local wg, events = goroutine.waitgroup(), goroutine.chan(10)
    wg:add(3)
    goroutine.go(function(w, e)
      w:wait()
      e:send("wait returned")
    end, wg, events)
    assert.is_true(still_nothing(events))
    wg:done()
    wg:done()
    assert.is_true(still_nothing(events))
    wg:done()
    assert.equal("wait returned", events:recv())
  end)

  it("waits for goroutines that call done", function()
    local n = 20
    local wg, sum = goroutine.waitgroup(), goroutine.atomic()
    for i = 1, n do
      wg:add()                       -- add() is add(1)
      goroutine.go(function(w, s, k)
        for _ = 1, 10 do goroutine.yield() end
        s:add(k)
        w:done()
      end, wg, sum, i)
    end
    wg:wait()
    assert.equal(n * (n + 1) // 2, sum:load())
  end)

  it("releases every waiter at once", function()
    local wg, events = goroutine.waitgroup(), goroutine.chan(10)
    wg:add(1)
    for i = 1, 4 do
      goroutine.go(function(w, e, id) w:wait(); e:send(id) end, wg, events, i)
    end
    assert.is_true(still_nothing(events))
    wg:done()
    local seen = {}
    for _ = 1, 4 do seen[events:recv()] = true end
    assert.same({ true, true, true, true }, seen)
  end)

  it("returns from wait at once when the counter is zero", function()
    local wg = goroutine.waitgroup()
    wg:wait()                        -- would hang the suite if it blocked
    wg:add(2)
    wg:add(-2)
    wg:wait()
  end)

  it("can be reused after wait has returned", function()
    local wg = goroutine.waitgroup()
    for round = 1, 3 do
      local a = goroutine.atomic()
      wg:add(round)
      for _ = 1, round do
        goroutine.go(function(w, x) x:add(1); w:done() end, wg, a)
      end
      wg:wait()
      assert.equal(round, a:load())
    end
  end)

  it("raises 'sync: negative WaitGroup counter', leaving the counter as it was", function()
    local wg = goroutine.waitgroup()
    assert_raises("sync: negative WaitGroup counter", wg.done, wg)
    wg:add(1)
    assert_raises("sync: negative WaitGroup counter", wg.add, wg, -2)
    wg:done()                        -- the counter was still 1
    wg:wait()
    assert_raises("sync: negative WaitGroup counter", wg.add, wg, -1)
  end)
end)

describe("a once", function()
  it("runs f exactly once across 50 goroutines, the others waiting until it finished", function()
    local n = 50
    local once, runs, effect = goroutine.once(), goroutine.atomic(), goroutine.atomic()
    local seen, gate = goroutine.chan(n), goroutine.chan()
    for _ = 1, n do
      goroutine.go(function(o, r, e, s, g)
        g:recv()
        o:call(function(rr, ee)
          rr:add(1)
          for _ = 1, 100 do goroutine.yield() end   -- a slow initialisation
          ee:store(42)
        end, r, e)
        s:send(e:load())             -- every caller sees f's effect
      end, once, runs, effect, seen, gate)
    end
    gate:close()
    for _ = 1, n do assert.equal(42, seen:recv()) end
    assert.equal(1, runs:load())
  end)

  it("passes the arguments to f and returns nothing", function()
    local once = goroutine.once()
    local got
    local r = pack(once:call(function(a, b) got = { a, b } end, "x", 2))
    assert.same({ "x", 2 }, got)
    assert.equal(0, r.n)
    once:call(function() got = "again" end)
    assert.same({ "x", 2 }, got)
  end)

  it("passes an error of f to its caller and counts as done", function()
    local once = goroutine.once()
    local ok, err = pcall(once.call, once, function() error("init failed") end)
    assert.is_false(ok)
    assert.is_true(has(err, "init failed"), err)
    local ran = false
    once:call(function() ran = true end)
    assert.is_false(ran)
  end)

  it("releases the waiting callers when f raises", function()
    local once, events, proceed = goroutine.once(), goroutine.chan(10), goroutine.chan()
    goroutine.go(function(o, e, p)
      local ok = pcall(o.call, o, function()
        e:send("first is running f")
        p:recv()
        error("f failed")
      end)
      e:send(ok and "first: no error" or "first: error")
    end, once, events, proceed)
    assert.equal("first is running f", events:recv())
    goroutine.go(function(o, e)
      local ran = false
      o:call(function() ran = true end)
      e:send(ran and "second ran f" or "second returned")
    end, once, events)
    assert.is_true(still_nothing(events))    -- the second caller waits
    proceed:send(true)
    local got = { (events:recv()), (events:recv()) }
    table.sort(got)
    assert.same({ "first: error", "second returned" }, got)
  end)
end)

describe("a cond", function()
  -- Start n goroutines waiting on c; returns once all n are inside wait.
  local function start_waiters(mu, c, n, events)
    local waiting = goroutine.atomic()
    for i = 1, n do
      goroutine.go(function(m, cv, w, e, id)
        m:lock()
        w:add(1)
        cv:wait()
        m:unlock()
        e:send(id)
      end, mu, c, waiting, events, i)
    end
    -- A waiter counts itself with the mutex held and releases it only by
    -- waiting: holding the mutex with the count at n means all n wait.
    for _ = 1, 100000 do
      mu:lock()
      local k = waiting:load()
      mu:unlock()
      if k == n then return true end
      goroutine.yield()
    end
    return false
  end

  it("wakes one waiter on signal", function()
    local mu = goroutine.mutex()
    local c, events = goroutine.cond(mu), goroutine.chan(10)
    assert.is_true(start_waiters(mu, c, 3, events))
    c:signal()
    events:recv()
    assert.is_true(still_nothing(events))   -- only one
    c:signal()
    events:recv()
    assert.is_true(still_nothing(events))
    c:signal()
    events:recv()
  end)

  it("wakes every waiter on broadcast", function()
    local mu = goroutine.mutex()
    local c, events = goroutine.cond(mu), goroutine.chan(10)
    assert.is_true(start_waiters(mu, c, 5, events))
    c:broadcast()
    local seen = {}
    for _ = 1, 5 do seen[events:recv()] = true end
    assert.same({ true, true, true, true, true }, seen)
  end)

  it("returns from wait with the mutex locked again", function()
    local mu = goroutine.mutex()
    local c, events, release = goroutine.cond(mu), goroutine.chan(10), goroutine.chan()
    local waiting = goroutine.atomic()
    goroutine.go(function(m, cv, w, e, r)
      m:lock()
      w:add(1)
      cv:wait()
      e:send("woken")                -- holding m again
      r:recv()
      e:send(pack(pcall(m.unlock, m)))
    end, mu, c, waiting, events, release)
    repeat
      mu:lock()
      local k = waiting:load()
      mu:unlock()
      goroutine.yield()
    until k == 1
    c:signal()
    assert.equal("woken", events:recv())
    assert.is_false(mu:trylock())
    release:send(true)
    assert.same(pack(true), events:recv())
    assert.is_true(mu:trylock())
    mu:unlock()
  end)

  it("requires the mutex to be locked: 'sync: unlock of unlocked mutex'", function()
    local mu = goroutine.mutex()
    local c = goroutine.cond(mu)
    assert_raises("sync: unlock of unlocked mutex", c.wait, c)
    c:signal()                       -- no waiter was left behind
    c:broadcast()
    assert.is_true(mu:trylock())
    mu:unlock()
  end)

  it("must be made from a mutex", function()
    local ok, err = pcall(function() return goroutine.cond(goroutine.rwmutex()) end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'cond' (mutex expected, got rwmutex)"), err)
    ok, err = pcall(function() return goroutine.cond() end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'cond' (mutex expected, got no value)"), err)
  end)
end)

describe("an atomic", function()
  it("starts at 0 by default, or at the given integer", function()
    assert.equal(0, goroutine.atomic():load())
    local a = goroutine.atomic(-5)
    assert.equal(-5, a:load())
    assert.equal("integer", math.type(a:load()))
  end)

  it("stores and loads", function()
    local a = goroutine.atomic()
    assert.equal(0, select("#", a:store(17)))
    assert.equal(17, a:load())
  end)

  it("adds and returns the new value", function()
    local a = goroutine.atomic(10)
    assert.equal(15, a:add(5))
    assert.equal(12, a:add(-3))
    assert.equal(12, a:load())
  end)

  it("wraps around on overflow like Lua integers", function()
    local a = goroutine.atomic(math.maxinteger)
    assert.equal(math.mininteger, a:add(1))
  end)

  it("compares and swaps: true when the old value matches, false otherwise", function()
    local a = goroutine.atomic(1)
    assert.is_true(a:cas(1, 2))
    assert.equal(2, a:load())
    assert.is_false(a:cas(1, 3))
    assert.equal(2, a:load())
  end)

  it("counts exactly under concurrent adds", function()
    local n, k = 8, 2000
    local a, wg = goroutine.atomic(), goroutine.waitgroup()
    wg:add(n)
    for _ = 1, n do
      goroutine.go(function(x, w, times)
        for _ = 1, times do x:add(1) end
        w:done()
      end, a, wg, k)
    end
    wg:wait()
    assert.equal(n * k, a:load())
  end)

  it("supports lock-free read-modify-write with a cas loop", function()
    local n = 8
    local max, wg = goroutine.atomic(0), goroutine.waitgroup()
    wg:add(n)
    for i = 1, n do
      goroutine.go(function(m, w, v)
        repeat
          local old = m:load()
        until old >= v or m:cas(old, v)
        w:done()
      end, max, wg, i * 10)
    end
    wg:wait()
    assert.equal(n * 10, max:load())
  end)

  it("refuses arguments without an integer representation", function()
    local a = goroutine.atomic()
    local ok, err = pcall(function() a:add(1.5) end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'add' (number has no integer representation)"), err)
    ok, err = pcall(function() a:store("x") end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'store'"), err)
    ok = pcall(function() return goroutine.atomic(0.5) end)
    assert.is_false(ok)
    assert.equal(0, a:load())
  end)
end)

describe("sync handles", function()
  it("cross to another goroutine by reference", function()
    local a, wg, out = goroutine.atomic(), goroutine.waitgroup(), goroutine.chan()
    wg:add(1)
    goroutine.go(function(x, w, o)
      x:store(99)
      w:done()
      o:send(x:load())
    end, a, wg, out)
    wg:wait()
    assert.equal(99, a:load())
    assert.equal(99, out:recv())
  end)

  it("print as 'KIND: 0x...', the same text in every goroutine", function()
    local mu = goroutine.mutex()
    local handles = {
      mutex = mu, rwmutex = goroutine.rwmutex(), waitgroup = goroutine.waitgroup(),
      once = goroutine.once(), cond = goroutine.cond(mu), atomic = goroutine.atomic(),
    }
    local out = goroutine.chan()
    goroutine.go(function(h, o)
      local t = {}
      for k, v in pairs(h) do t[k] = tostring(v) end
      o:send(t)
    end, handles, out)
    local there = out:recv()
    for kind, h in pairs(handles) do
      assert.equal("userdata", type(h))
      assert.matches("^" .. kind .. ": 0x%x+$", tostring(h))
      assert.equal(tostring(h), there[kind])
    end
  end)

  it("check their receiver: a method called on the wrong handle is a clear error", function()
    local mu, wg = goroutine.mutex(), goroutine.waitgroup()
    local ok, err = pcall(function() mu.lock(wg) end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'lock' (mutex expected, got waitgroup)"), err)
    ok, err = pcall(function() wg.wait(42) end)
    assert.is_false(ok)
    assert.is_true(has(err, "bad argument #1 to 'wait' (waitgroup expected, got number)"), err)
  end)
end)
