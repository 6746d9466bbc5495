-- spec/chaos_spec.lua — chaos scheduling: GOROUTINE_CHAOS=seed makes the
-- scheduler take at random the choices Go leaves open (run-queue order,
-- stealing, wake-up order, yields before channel and sync operations).
--
-- What is observed: the order in which goroutines that main starts first
-- run, on one worker thread (GOROUTINE_MAXPROCS=1), recorded through a
-- buffered channel.  Without chaos it is the order they were started; with
-- a seed it is a shuffle that the same seed repeats and other seeds change.
-- A failing run names its seed, so that it can be replayed.
--
-- Every case runs goroutine-lua in a subprocess under `timeout`, with the
-- environment it needs set explicitly (the CI runs this suite under chaos
-- seeds too).
local describe, it, assert = describe, it, assert
local support = require "support"

local N = 12

-- Main starts N goroutines; each first sends its number.  Prints the order.
local ORDER = ([[
local n = %d
local first = goroutine.chan(n)
for i = 1, n do go(function() first:send(i) end) end
local order = {}
for i = 1, n do order[i] = (first:recv()) end
print(table.concat(order, " "))
]]):format(N)

-- env: "" (chaos off) or a seed; procs: worker threads.
local function run(code, seed, procs)
  local env = "timeout 60 env -u GOROUTINE_CHAOS GOROUTINE_MAXPROCS=" .. (procs or 1)
  if seed then env = env .. " GOROUTINE_CHAOS=" .. support.quote(seed) end
  return support.script(code, { env = env })
end

local function order(seed)
  local r = run(ORDER, seed)
  assert.are.equal(0, r.status, r.stderr)
  assert.are.equal("", r.stderr)
  return (r.stdout:gsub("\n$", ""))
end

local IN_ORDER
do
  local t = {}
  for i = 1, N do t[i] = tostring(i) end
  IN_ORDER = table.concat(t, " ")
end

describe("without GOROUTINE_CHAOS", function()
  it("goroutines first run in the order they were started (one worker)", function()
    assert.are.equal(IN_ORDER, order(nil))
    assert.are.equal(IN_ORDER, order(""))      -- empty: off
    assert.are.equal(IN_ORDER, order("0"))     -- seed 0: off
  end)
end)

describe("GOROUTINE_CHAOS=seed", function()
  it("gives the same order for the same seed on one worker", function()
    for _, seed in ipairs({ "1", "42", "4294967295" }) do
      local first = order(seed)
      assert.are.equal(first, order(seed), "seed " .. seed)
      assert.are.equal(first, order(seed), "seed " .. seed)
    end
  end)

  it("shuffles the order, differently for different seeds", function()
    local seen, distinct, shuffled = {}, 0, 0
    for seed = 1, 6 do
      local o = order(tostring(seed))
      -- still every goroutine, once
      local nums = {}
      for k in o:gmatch("%d+") do nums[#nums + 1] = tonumber(k) end
      table.sort(nums)
      assert.are.equal(IN_ORDER, table.concat(nums, " "))
      if not seen[o] then seen[o] = true; distinct = distinct + 1 end
      if o ~= IN_ORDER then shuffled = shuffled + 1 end
    end
    assert.is_true(distinct >= 3, "distinct orders over 6 seeds: " .. distinct)
    assert.is_true(shuffled >= 5, "seeds whose order was shuffled: " .. shuffled)
  end)

  it("keeps the values of one sender in order, on 1, 2 and 4 workers", function()
    local code = [[
      local ch, done = goroutine.chan(3), goroutine.chan()
      go(function() for i = 1, 300 do ch:send(i) end ch:close() end)
      go(function()
        local want = 1
        for v in ch:range() do assert(v == want, "got " .. v .. ", want " .. want); want = want + 1 end
        done:send(want - 1)
      end)
      local m, wg, count = goroutine.mutex(), goroutine.waitgroup(), goroutine.atomic()
      for _ = 1, 8 do
        wg:add(1)
        go(function() for _ = 1, 50 do m:lock(); count:add(1); m:unlock() end wg:done() end)
      end
      wg:wait()
      print(done:recv(), count:load())
    ]]
    for seed = 1, 3 do
      for _, procs in ipairs({ 1, 2, 4 }) do
        local r = run(code, tostring(seed), procs)
        assert.are.equal("", r.stderr, "seed " .. seed .. ", procs " .. procs)
        assert.are.equal("300\t400\n", r.stdout, "seed " .. seed .. ", procs " .. procs)
      end
    end
  end)

  it("names the seed after an uncaught error in the main goroutine", function()
    local r = run("error('boom')", "42")
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("^goroutine%-lua: [^\n]*: boom\nstack traceback:\n"), r.stderr)
    assert.truthy(r.stderr:find("\ngoroutine%-lua: chaos seed 42\n$"), r.stderr)
  end)

  it("names the seed after an uncaught error in another goroutine", function()
    local r = run("go(function() error('boom') end) goroutine.chan():recv()", "7")
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("^goroutine 2 %[error%]:\n[^\n]*: boom\n"), r.stderr)
    assert.truthy(r.stderr:find("\ngoroutine%-lua: chaos seed 7\n$"), r.stderr)
  end)

  it("names the seed at the end of a deadlock report", function()
    local r = run("goroutine.chan():recv()", "7")
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("^fatal error: all goroutines are asleep %- deadlock!\n\ngoroutine 1 %[chan receive%]:\n"), r.stderr)
    assert.truthy(r.stderr:find("\n\ngoroutine%-lua: chaos seed 7\n$"), r.stderr)
  end)

  it("names no seed when chaos is off", function()
    local r = run("go(function() error('boom') end) goroutine.chan():recv()", nil)
    assert.are.equal(1, r.status)
    assert.falsy(r.stderr:find("chaos", 1, true), r.stderr)
    r = run("goroutine.chan():recv()", "0")
    assert.are.equal(2, r.status)
    assert.falsy(r.stderr:find("chaos", 1, true), r.stderr)
  end)

  it("rejects a value that is not a seed, before running anything", function()
    for _, bad in ipairs({ "abc", "-1", "1.5", "12x", "4294967296" }) do
      local r = run("print('ran')", bad)
      assert.are.equal(1, r.status, bad)
      assert.are.equal("", r.stdout, bad)
      assert.are.equal("goroutine-lua: GOROUTINE_CHAOS needs a seed (an integer from 0 to 4294967295), got '"
        .. bad .. "'\n", r.stderr)
    end
  end)
end)
