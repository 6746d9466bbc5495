-- spec/go_sync_spec.lua — Go's sync tests, translated: the Test functions
-- of src/sync/mutex_test.go, rwmutex_test.go, waitgroup_test.go,
-- once_test.go and cond_test.go (Go 1.19, Debian's golang-go,
-- /usr/lib/go-1.19/src/sync).  Each `it` names its test.
--
-- Go to Lua: sync.Mutex is goroutine.mutex(), RWMutex goroutine.rwmutex()
-- (TryLock and TryRLock are its trylock and tryrlock), WaitGroup
-- goroutine.waitgroup(), Once goroutine.once() (Do is call), NewCond(&m)
-- goroutine.cond(m); runtime.Gosched is goroutine.yield and GOMAXPROCS is
-- goroutine.maxprocs.  Variables Go's goroutines share (activity, x, exit,
-- done, the once's counter) become goroutine.atomic values: goroutines here
-- share nothing else.  A panic is a Lua error, caught with pcall.
-- Goroutines cannot call busted's assert: they count or send what went
-- wrong, and the spec asserts on that.
--
-- Where Go checks at once that a goroutine has not gone on (select with
-- default), the spec first gives the others every chance to run
-- (support.let_others_run): a correct runtime passes whatever the
-- schedule, and a wrong one has more time to show it.  Every goroutine
-- started here ends before its case does.
--
-- Iteration counts are scaled down from Go's (noted where they differ) so
-- that the file runs in a few seconds, sanitizers included.
--
-- Not translated, and why:
-- - TestSemaphore: Runtime_Semacquire and Runtime_Semrelease are runtime
--   internals with no counterpart in the API.
-- - TestMutexMisuse runs each misuse in a child process because Go's are
--   fatal throws; here they are catchable errors (API.md), checked in
--   process with pcall for the same words ("unlocked").
-- - TestCondCopy: copying a sync.Cond by value (through reflect) must
--   panic; a cond here is a handle, and every copy is the same cond.
-- - The Benchmark functions belong in bench/.
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

-- After the others have had every chance to run, nothing is in ch.
local function still_empty(ch)
  let_others_run()
  local _, ok = ch:tryrecv()
  return not ok
end

-- Run f with the worker count set to n, then put the count back.
local function with_maxprocs(n, f, ...)
  local old = goroutine.maxprocs(n)
  local ok, err = pcall(f, ...)
  goroutine.maxprocs(old)
  if not ok then error(err, 0) end
end

-- ============================================================ mutex_test.go

local function HammerMutex(m, loops, cdone)
  for i = 0, loops - 1 do
    if i % 3 == 0 then
      if m:trylock() then m:unlock() end
    else
      m:lock()
      m:unlock()
    end
  end
  cdone:send(true)
end

describe("src/sync/mutex_test.go", function()
  it("TestMutex: trylock fails on a locked mutex and succeeds on an unlocked one; 10 goroutines hammer it", function()
    local m = goroutine.mutex()
    m:lock()
    assert.is_false(m:trylock(), "TryLock succeeded with mutex locked")
    m:unlock()
    assert.is_true(m:trylock(), "TryLock failed with mutex unlocked")
    m:unlock()
    local c = goroutine.chan()
    for _ = 1, 10 do goroutine.go(HammerMutex, m, 1000, c) end
    for _ = 1, 10 do c:recv() end
  end)

  it("TestMutexMisuse: each unlock of an unlocked Mutex or RWMutex fails with a message about 'unlocked'", function()
    local misuse = {
      { "Mutex.Unlock", function()
          local mu = goroutine.mutex()
          mu:unlock()
        end },
      { "Mutex.Unlock2", function()
          local mu = goroutine.mutex()
          mu:lock()
          mu:unlock()
          mu:unlock()
        end },
      { "RWMutex.Unlock", function()
          local mu = goroutine.rwmutex()
          mu:unlock()
        end },
      { "RWMutex.Unlock2", function()
          local mu = goroutine.rwmutex()
          mu:rlock()
          mu:unlock()
        end },
      { "RWMutex.Unlock3", function()
          local mu = goroutine.rwmutex()
          mu:lock()
          mu:unlock()
          mu:unlock()
        end },
      { "RWMutex.RUnlock", function()
          local mu = goroutine.rwmutex()
          mu:runlock()
        end },
      { "RWMutex.RUnlock2", function()
          local mu = goroutine.rwmutex()
          mu:lock()
          mu:runlock()
        end },
      { "RWMutex.RUnlock3", function()
          local mu = goroutine.rwmutex()
          mu:rlock()
          mu:runlock()
          mu:runlock()
        end },
    }
    local words = {
      ["Mutex"] = "sync: unlock of unlocked mutex",
      ["RWMutex.Unlock"] = "sync: Unlock of unlocked RWMutex",
      ["RWMutex.RUnlock"] = "sync: RUnlock of unlocked RWMutex",
    }
    for _, test in ipairs(misuse) do
      local name, f = test[1], test[2]
      local ok, err = pcall(f)
      assert.is_false(ok, name .. ": did not fail")
      assert.is_true(has(err, "unlocked"), name .. ": " .. tostring(err))
      local want = words[name:match("^(RWMutex%.R?Unlock)")] or words.Mutex
      assert.is_true(has(err, want), name .. ": " .. tostring(err))
    end
  end)

  it("TestMutexFairness: a goroutine that locks now and then gets the mutex from one that holds it nearly always", function()
    local mu = goroutine.mutex()
    local stop, done = goroutine.chan(), goroutine.chan(1)
    local wg = goroutine.waitgroup()
    wg:add(1)
    goroutine.go(function()
      while true do
        mu:lock()
        goroutine.sleep(100e-6)
        mu:unlock()
        if goroutine.select { { recv = stop, function() return true end }, default = true } then break end
      end
      wg:done()
    end)
    goroutine.go(function()
      for _ = 1, 10 do
        goroutine.sleep(100e-6)
        mu:lock()
        mu:unlock()
      end
      done:send(true)
    end)
    -- Go gives up after 10 s; this bound is only against hanging.  A
    -- ticker, not after(), so that no timer outlives the case (a pending
    -- timer would hold off the deadlock report of every case after it).
    local guard = goroutine.tick(60)
    local got = goroutine.select {
      { recv = done, function() return true end },
      { recv = guard, function() return false end },
    }
    guard:close()
    stop:close()
    wg:wait()
    assert.is_true(got, "can't acquire Mutex in 60 seconds")
  end)
end)

-- ========================================================== rwmutex_test.go

local function parallelReader(m, clocked, cunlock, cdone)
  m:rlock()
  clocked:send(true)
  cunlock:recv()
  m:runlock()
  cdone:send(true)
end

local function doTestParallelReaders(numReaders, gomaxprocs)
  with_maxprocs(gomaxprocs, function()
    local m = goroutine.rwmutex()
    local clocked, cunlock, cdone = goroutine.chan(), goroutine.chan(), goroutine.chan()
    for _ = 1, numReaders do goroutine.go(parallelReader, m, clocked, cunlock, cdone) end
    -- Wait for all parallel RLock()s to succeed.
    for _ = 1, numReaders do clocked:recv() end
    for _ = 1, numReaders do cunlock:send(true) end
    -- Wait for the goroutines to finish.
    for _ = 1, numReaders do cdone:recv() end
  end)
end

-- Number of active readers + 10000 * number of active writers, in activity.
local function reader(rwm, num_iterations, activity, cdone, errs)
  for _ = 1, num_iterations do
    rwm:rlock()
    local n = activity:add(1)
    if n < 1 or n >= 10000 then
      rwm:runlock()
      errs:trysend(("wlock(%d)"):format(n))
      break
    end
    for _ = 1, 100 do end
    activity:add(-1)
    rwm:runlock()
  end
  cdone:send(true)
end

local function writer(rwm, num_iterations, activity, cdone, errs)
  for _ = 1, num_iterations do
    rwm:lock()
    local n = activity:add(10000)
    if n ~= 10000 then
      rwm:unlock()
      errs:trysend(("wlock(%d)"):format(n))
      break
    end
    for _ = 1, 100 do end
    activity:add(-10000)
    rwm:unlock()
  end
  cdone:send(true)
end

local function HammerRWMutex(gomaxprocs, numReaders, num_iterations)
  local errs = goroutine.chan(16)
  with_maxprocs(gomaxprocs, function()
    local activity, rwm, cdone = goroutine.atomic(0), goroutine.rwmutex(), goroutine.chan()
    goroutine.go(writer, rwm, num_iterations, activity, cdone, errs)
    local i = 0
    while i < numReaders // 2 do
      goroutine.go(reader, rwm, num_iterations, activity, cdone, errs)
      i = i + 1
    end
    goroutine.go(writer, rwm, num_iterations, activity, cdone, errs)
    while i < numReaders do
      goroutine.go(reader, rwm, num_iterations, activity, cdone, errs)
      i = i + 1
    end
    -- Wait for the 2 writers and all readers to finish.
    for _ = 1, 2 + numReaders do cdone:recv() end
  end)
  return drain(errs)
end

describe("src/sync/rwmutex_test.go", function()
  it("TestParallelReaders: readers hold the read lock all at once, on 4 and on 2 workers", function()
    doTestParallelReaders(1, 4)
    doTestParallelReaders(3, 4)
    doTestParallelReaders(4, 2)
  end)

  it("TestRWMutex: trylock and tryrlock against each other; readers and writers hammer it on 1, 4 and 10 workers", function()
    local m = goroutine.rwmutex()
    m:lock()
    assert.is_false(m:trylock(), "TryLock succeeded with mutex locked")
    assert.is_false(m:tryrlock(), "TryRLock succeeded with mutex locked")
    m:unlock()
    assert.is_true(m:trylock(), "TryLock failed with mutex unlocked")
    m:unlock()
    assert.is_true(m:tryrlock(), "TryRLock failed with mutex unlocked")
    assert.is_true(m:tryrlock(), "TryRLock failed with mutex rlocked")
    assert.is_false(m:trylock(), "TryLock succeeded with mutex rlocked")
    m:runlock()
    m:runlock()

    local n = 300         -- Go: 1,000 (5 with -short)
    for _, run in ipairs({ { 1, 1 }, { 1, 3 }, { 1, 10 }, { 4, 1 }, { 4, 3 }, { 4, 10 },
                           { 10, 1 }, { 10, 3 }, { 10, 10 }, { 10, 5 } }) do
      assert.are.same({}, HammerRWMutex(run[1], run[2], n),
        ("HammerRWMutex(%d, %d, %d)"):format(run[1], run[2], n))
    end
  end)

  it("TestRLocker: the read locker read-locks, and respects the write lock", function()
    local wl = goroutine.rwmutex()
    local wlocked, rlocked = goroutine.chan(1), goroutine.chan(1)
    local n = 10
    goroutine.go(function()
      for _ = 1, n do
        wl:rlock()        -- rl.Lock()
        wl:rlock()        -- rl.Lock()
        rlocked:send(true)
        wl:lock()
        wlocked:send(true)
      end
    end)
    for _ = 1, n do
      rlocked:recv()
      wl:runlock()        -- rl.Unlock()
      assert.is_true(still_empty(wlocked), "RLocker() didn't read-lock it")
      wl:runlock()        -- rl.Unlock()
      wlocked:recv()
      assert.is_true(still_empty(rlocked), "RLocker() didn't respect the write lock")
      wl:unlock()
    end
  end)
end)

-- ======================================================== waitgroup_test.go

local function testWaitGroup(wg1, wg2)
  local n = 16
  wg1:add(n)
  wg2:add(n)
  local exited = goroutine.chan(n)
  for _ = 1, n do
    goroutine.go(function()
      wg1:done()
      wg2:wait()
      exited:send(true)
    end)
  end
  wg1:wait()
  for _ = 1, n do
    assert.is_true(still_empty(exited), "WaitGroup released group too soon")
    wg2:done()
  end
  for _ = 1, n do
    exited:recv()   -- will block if barrier fails to unlock someone
  end
end

describe("src/sync/waitgroup_test.go", function()
  it("TestWaitGroup: two wait groups make a barrier that releases no one too soon, eight times over", function()
    local wg1, wg2 = goroutine.waitgroup(), goroutine.waitgroup()
    -- run the same test a few times to ensure barrier is in a proper state
    for _ = 1, 8 do testWaitGroup(wg1, wg2) end
  end)

  it("TestWaitGroupMisuse: done below zero panics with 'sync: negative WaitGroup counter'", function()
    local wg = goroutine.waitgroup()
    wg:add(1)
    wg:done()
    local ok, err = pcall(wg.done, wg)
    assert.is_false(ok, "Should panic")
    assert.are.equal("sync: negative WaitGroup counter", err)
  end)

  it("TestWaitGroupRace: wait returns only after both goroutines are done (1,000 times)", function()
    local spurious = 0
    for _ = 1, 1000 do
      local wg, n = goroutine.waitgroup(), goroutine.atomic(0)
      -- spawn goroutine 1
      wg:add(1)
      goroutine.go(function()
        n:add(1)
        wg:done()
      end)
      -- spawn goroutine 2
      wg:add(1)
      goroutine.go(function()
        n:add(1)
        wg:done()
      end)
      -- wait for goroutine 1 and 2
      wg:wait()
      if n:load() ~= 2 then spurious = spurious + 1 end
    end
    assert.are.equal(0, spurious, "Spurious wakeup from Wait")
  end)

  it("TestWaitGroupAlign: a wait group inside a table a goroutine gets a copy of is still the same wait group", function()
    local x = { x = 1, wg = goroutine.waitgroup() }
    x.wg:add(1)
    goroutine.go(function(x) x.wg:done() end, x)
    x.wg:wait()
  end)
end)

-- ============================================================= once_test.go

local function run(once, o, c)
  once:call(function() o:add(1) end)
  local v = o:load()
  c:send(v == 1 or ("once failed inside run: %d is not 1"):format(v))
end

describe("src/sync/once_test.go", function()
  it("TestOnce: ten goroutines call it, the function runs once, and each sees it done", function()
    local o, once, c = goroutine.atomic(0), goroutine.once(), goroutine.chan()
    local N = 10
    for _ = 1, N do goroutine.go(run, once, o, c) end
    local failed = {}
    for _ = 1, N do
      local r = c:recv()
      if r ~= true then failed[#failed + 1] = r end
    end
    assert.are.same({}, failed)
    assert.are.equal(1, o:load(), "once failed outside run")
  end)

  it("TestOncePanic: a function that panics still counts as done", function()
    local once = goroutine.once()
    local ok, err = pcall(once.call, once, function() error("failed") end)
    assert.is_false(ok, "Once.Do did not panic")
    assert.is_true(has(err, "failed"))
    local twice = false
    once:call(function() twice = true end)
    assert.is_false(twice, "Once.Do called twice")
  end)
end)

-- ============================================================= cond_test.go

describe("src/sync/cond_test.go", function()
  it("TestCondSignal: each signal wakes exactly one of the waiting goroutines", function()
    local m = goroutine.mutex()
    local c = goroutine.cond(m)
    local n = 2
    local running, awake = goroutine.chan(n), goroutine.chan(n)
    for _ = 1, n do
      goroutine.go(function()
        m:lock()
        running:send(true)
        c:wait()
        awake:send(true)
        m:unlock()
      end)
    end
    for _ = 1, n do running:recv() end   -- wait for everyone to run
    while n > 0 do
      assert.is_true(still_empty(awake), "goroutine not asleep")
      m:lock()
      c:signal()
      m:unlock()
      awake:recv()   -- will deadlock if no goroutine wakes up
      assert.is_true(still_empty(awake), "too many goroutines awake")
      n = n - 1
    end
    c:signal()
  end)

  it("TestCondSignalGenerations: signals wake the goroutines in the order they waited (100 goroutines)", function()
    local m = goroutine.mutex()
    local c = goroutine.cond(m)
    local n = 100
    local running, awake = goroutine.chan(n), goroutine.chan(n)
    for i = 0, n - 1 do
      goroutine.go(function(i)
        m:lock()
        running:send(true)
        c:wait()
        awake:send(i)
        m:unlock()
      end, i)
      if i > 0 then
        local a = awake:recv()
        assert.are.equal(i - 1, a, "wrong goroutine woke up")
      end
      running:recv()
      m:lock()
      c:signal()
      m:unlock()
    end
    assert.are.equal(n - 1, (awake:recv()))
  end)

  it("TestCondBroadcast: each broadcast wakes every waiting goroutine once (100 goroutines, 100 rounds)", function()
    local m = goroutine.mutex()
    local c = goroutine.cond(m)
    local n = 100         -- Go: 200
    local running, awake = goroutine.chan(n), goroutine.chan(n)
    local exit, wg = goroutine.atomic(0), goroutine.waitgroup()
    wg:add(n)
    for i = 0, n - 1 do
      goroutine.go(function(g)
        m:lock()
        while exit:load() == 0 do
          running:send(g)
          c:wait()
          awake:send(g)
        end
        m:unlock()
        wg:done()
      end, i)
    end
    for i = 0, n - 1 do
      for _ = 1, n do running:recv() end   -- will deadlock unless n are running
      if i == n - 1 then
        m:lock()
        exit:store(1)
        m:unlock()
      end
      assert.is_true(still_empty(awake), "goroutine not asleep")
      m:lock()
      c:broadcast()
      m:unlock()
      local seen = {}
      for _ = 1, n do
        local g = awake:recv()
        assert.is_nil(seen[g], "goroutine woke up twice")
        seen[g] = true
      end
    end
    wg:wait()
    assert.is_true(still_empty(running), "goroutine did not exit")
    c:broadcast()
  end)

  it("TestRace: a signal passes from one goroutine to the next as x goes 1, 2, 3", function()
    local x = goroutine.atomic(0)
    local L = goroutine.mutex()   -- c.L
    local c = goroutine.cond(L)
    local done, errs = goroutine.chan(), goroutine.chan(4)
    goroutine.go(function()
      L:lock()
      x:store(1)
      c:wait()
      if x:load() ~= 2 then errs:send("want 2") end
      x:store(3)
      c:signal()
      L:unlock()
      done:send(true)
    end)
    goroutine.go(function()
      L:lock()
      while true do
        if x:load() == 1 then
          x:store(2)
          c:signal()
          break
        end
        L:unlock()
        goroutine.yield()
        L:lock()
      end
      L:unlock()
      done:send(true)
    end)
    goroutine.go(function()
      L:lock()
      while true do
        if x:load() == 2 then
          c:wait()
          if x:load() ~= 3 then errs:send("want 3") end
          break
        end
        if x:load() == 3 then break end
        L:unlock()
        goroutine.yield()
        L:lock()
      end
      L:unlock()
      done:send(true)
    end)
    for _ = 1, 3 do done:recv() end
    assert.are.same({}, drain(errs))
  end)

  it("TestCondSignalStealing: a broadcast wakes the goroutine already waiting, whatever a new waiter does (500 times)", function()
    for _ = 1, 500 do     -- Go: 1,000
      local m = goroutine.mutex()
      local cond = goroutine.cond(m)
      -- Start a waiter.
      local ch, second = goroutine.chan(), goroutine.chan(1)
      goroutine.go(function()
        m:lock()
        ch:send(true)
        cond:wait()
        m:unlock()
        ch:send(true)
      end)
      ch:recv()
      m:lock()
      m:unlock()
      -- The waiter is in cond:wait(): we synchronised with it, then took
      -- and released the mutex it held.  Start two goroutines that race:
      -- one broadcasts, the other waits.  The new waiter may or may not be
      -- notified, but the first one has to be.
      local done = goroutine.atomic(0)
      goroutine.go(function() cond:broadcast() end)
      goroutine.go(function()
        m:lock()
        while done:load() == 0 do cond:wait() end
        m:unlock()
        second:send(true)
      end)
      -- Check that the first waiter does get signalled (Go gives up after
      -- 2 s; a missed wake-up here is the deadlock report).
      ch:recv()
      -- Release the second waiter in case it didn't get the broadcast.
      m:lock()
      done:store(1)
      m:unlock()
      cond:broadcast()
      second:recv()
    end
  end)
end)
