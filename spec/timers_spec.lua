-- spec/timers_spec.lua — goroutine.after and goroutine.tick: channels of
-- capacity 1 that the timer thread sends goroutine.now() to; timeouts in
-- select; a ticker dropping the ticks a slow receiver misses and stopping
-- when its channel is closed; many pending timers at once.
--
-- Time passing is what is under test here, so the cases wait on timer
-- channels; they never sleep to let another goroutine catch up. Bounds on
-- elapsed time are lower bounds only (a timer never fires early); "soon"
-- is shown by order (a timer fires before one set far later) and a hang
-- by `timeout`, never by an upper bound a slow machine could exceed.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table).
-- A function passed to goroutine.go copies its upvalues, _ENV included, and
-- only the real global table is rebound to the goroutine's own globals; so
-- keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

local EPS = 1e-9

local function pack(...) return { n = select("#", ...), ... } end

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- goroutine-lua on a script, killed after 60 s (status 124).
local function script(code, opts)
  opts = opts or {}
  return support.script(code, { flags = opts.flags, env = "timeout 60" })
end

describe("goroutine.after", function()
  it("returns a channel of capacity 1", function()
    local ch = goroutine.after(10)
    assert.equal(1, ch:cap())
    assert.equal(0, ch:len())
    assert.is_true(tostring(ch):match("^channel: ") ~= nil)
  end)

  it("receives goroutine.now(), a float, once, no sooner than s seconds later", function()
    local t0 = goroutine.now()
    local ch = goroutine.after(0.02)
    local v, ok = ch:recv()
    local t1 = goroutine.now()
    assert.is_true(ok)
    assert.equal("float", math.type(v))
    assert.is_true(v >= t0 + 0.02 - EPS, ("fired %.4f s after the call"):format(v - t0))
    assert.is_true(v <= t1)
    -- Once: nothing more comes, and the channel is not closed.
    local i = goroutine.select { { recv = ch }, { recv = goroutine.after(0.05) } }
    assert.equal(2, i)
    assert.same(pack(nil, false), pack(ch:tryrecv()))
  end)

  it("fires at once for 0 and for a negative duration: before a timer set far later", function()
    for _, s in ipairs { 0, -1, 0.0 } do
      local t0 = goroutine.now()
      local now = goroutine.after(s)
      local i, v, ok = goroutine.select { { recv = now }, { recv = goroutine.after(3600) } }
      assert.equal(1, i, "after(" .. s .. ") did not fire")
      assert.is_true(ok)
      assert.is_true(v >= t0 - EPS)
    end
  end)

  it("keeps its value until someone receives it", function()
    local ch = goroutine.after(0)
    local fired = ch:recv()
    ch = goroutine.after(0.01)
    -- Wait past its deadline on another timer, then find the value waiting.
    goroutine.after(0.05):recv()
    assert.equal(1, ch:len())
    assert.is_true(ch:recv() > fired)
  end)

  it("works from a goroutine", function()
    local out = goroutine.chan()
    goroutine.go(function(o)
      local t0 = goroutine.now()
      local v = goroutine.after(0.02):recv()
      o:send(v - t0)
    end, out)
    assert.is_true(out:recv() >= 0.02 - EPS)
  end)

  it("refuses a duration that is not a number", function()
    local err = error_of(goroutine.after, "soon")
    assert.is_true(err:find("number expected, got string", 1, true) ~= nil, err)
  end)
end)

describe("a select with an after case", function()
  it("times out on the after case when nothing else is ready", function()
    local never = goroutine.chan()
    local t0 = goroutine.now()
    local r = goroutine.select {
      { recv = never, function() return "value" end },
      { recv = goroutine.after(0.03), function() return "timeout" end },
    }
    assert.equal("timeout", r)
    assert.is_true(goroutine.now() - t0 >= 0.03 - EPS)
  end)

  it("takes the other case when it is ready before the timeout", function()
    local ch = goroutine.chan()
    goroutine.go(function(c) c:send("in time") end, ch)
    local i, v = goroutine.select { { recv = ch }, { recv = goroutine.after(30) } }
    assert.equal(1, i)
    assert.equal("in time", v)
  end)

  it("times out in a goroutine too", function()
    local out = goroutine.chan()
    goroutine.go(function(o)
      o:send((goroutine.select {
        { recv = goroutine.chan() },
        { recv = goroutine.after(0.01), function() return "timeout" end },
      }))
    end, out)
    assert.equal("timeout", out:recv())
  end)
end)

describe("goroutine.tick", function()
  it("returns a channel of capacity 1", function()
    local t = goroutine.tick(10)
    assert.equal(1, t:cap())
    t:close()
  end)

  it("delivers goroutine.now() again and again, a period apart", function()
    local period = 0.01
    local t0 = goroutine.now()
    local t = goroutine.tick(period)
    local last = t0
    for k = 1, 5 do
      local v, ok = t:recv()
      assert.is_true(ok)
      assert.equal("float", math.type(v))
      assert.is_true(v > last)
      assert.is_true(v >= t0 + k * period - EPS, ("tick %d at %.4f s"):format(k, v - t0))
      last = v
    end
    t:close()
  end)

  it("drops the ticks a slow receiver misses, keeping one", function()
    local period = 0.02
    local t = goroutine.tick(period)
    local t0 = goroutine.now()
    goroutine.sleep(5 * period)           -- a slow receiver: five periods
    local woke = goroutine.now()
    assert.is_true(#t <= 1)
    -- The one tick kept: sent while the receiver slept (how long before it
    -- woke depends on how busy the machine is).
    local first = t:recv()
    assert.is_true(first >= t0 + period - EPS)
    assert.is_true(first <= woke)
    -- The ticks missed meanwhile are gone, not queued: the next one comes
    -- from after the receiver woke.
    local nxt = t:recv()
    assert.is_true(nxt >= woke - period / 2, ("next tick %.4f s before waking"):format(woke - nxt))
    t:close()
  end)

  it("stops when its channel is closed: a range over it ends", function()
    local t, events = goroutine.tick(0.005), goroutine.chan(10)
    goroutine.go(function(t, e)
      local n = 0
      for _ in t:range() do
        n = n + 1
        if n == 3 then e:send("three ticks") end
      end
      e:send(n)
    end, t, events)
    assert.equal("three ticks", events:recv())
    t:close()
    assert.is_true(events:recv() >= 3)
  end)

  it("sends nothing more, and raises nothing, once closed", function()
    local t = goroutine.tick(0.005)
    t:recv()
    t:close()
    goroutine.after(0.03):recv()          -- several periods go by
    local v, ok, closed = t:tryrecv()
    if ok then v, ok, closed = t:tryrecv() end   -- one tick may have been buffered
    assert.same(pack(nil, false, "closed"), pack(v, ok, closed))
  end)

  it("refuses a zero, negative or NaN interval", function()
    for _, s in ipairs { 0, -1, 0.0, -0.5, 0 / 0 } do
      assert.equal("non-positive interval for goroutine.tick", error_of(goroutine.tick, s))
    end
  end)

  it("refuses an interval that is not a number", function()
    local err = error_of(goroutine.tick, "often")
    assert.is_true(err:find("number expected, got string", 1, true) ~= nil, err)
  end)

  it("closed in a program: the program goes on and ends normally", function()
    local r = script([[
      local goroutine = require "goroutine"
      local t = goroutine.tick(0.002)
      t:recv()
      t:close()
      goroutine.sleep(0.05)
      print("still here")
    ]])
    assert.equal("", r.stderr)
    assert.equal(0, r.status)
    assert.equal("still here\n", r.stdout)
  end)
end)

describe("many timers", function()
  -- The timers are due in an hour; the program is killed after a minute
  -- (status 124) if its end waits for them.
  it("100,000 pending after(3600) channels, dropped: the program still ends, without waiting for them", function()
    local r = script([[
      local goroutine = require "goroutine"
      for _ = 1, 100000 do goroutine.after(3600) end
      collectgarbage()
      print("created")
    ]])
    assert.equal("", r.stderr)
    assert.equal(0, r.status, "status (124: the end waited for the timers)")
    assert.equal("created\n", r.stdout)
  end)

  -- Waited for one after another, the timeouts would take n * 0.05 s
  -- (500 s; 100 s for the 2,000 of a sanitizer build): a minute bounds a
  -- hang and that, far above what a loaded machine takes (about 0.1 s).
  it("10,000 goroutines each selecting on an after(0.05) all time out, together", function()
    local n = os.getenv("SANITIZER") and 2000 or 10000
    local timeouts, wg = goroutine.atomic(), goroutine.waitgroup()
    local never = goroutine.chan()
    wg:add(n)
    local t0 = goroutine.now()
    for _ = 1, n do
      goroutine.go(function(nv, a, w)
        goroutine.select {
          { recv = nv },
          { recv = goroutine.after(0.05), function() a:add(1) end },
        }
        w:done()
      end, never, timeouts, wg)
    end
    wg:wait()
    local elapsed = goroutine.now() - t0
    assert.equal(n, timeouts:load())
    assert.is_true(elapsed >= 0.05 - EPS)
    assert.is_true(elapsed < 60, ("took %.2f s: the timeouts ran one after another"):format(elapsed))
  end)
end)
