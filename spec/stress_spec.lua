-- spec/stress_spec.lua — many producers and consumers on one small
-- buffered channel: every value arrives exactly once, each producer's values
-- in the order it sent them, and the sums are exact.
--
-- The same program runs in-process (under busted, on however many worker
-- threads the suite has) and as a subprocess with -p 1 and with -p 4. It
-- synchronises only through channels and wait groups.
local goroutine = require "goroutine"

-- busted runs this file with its own _ENV (a proxy, not the global table);
-- keep the busted names as locals and make everything below see _G.
local describe, it, assert = describe, it, assert
local support = require "support"
local _ENV = _G

local PRODUCERS, PER_PRODUCER, CONSUMERS, SLOTS = 8, 20000, 4, 64
local TOTAL = PRODUCERS * PER_PRODUCER

-- The program: returns one result line. Producer p sends the integers
-- (p-1)*PER+1 .. p*PER; each consumer returns its count, sum, the values it
-- saw (aggregated by main into one table), and how often a producer's
-- values came out of order.
local PROGRAM = ([[
local goroutine = require "goroutine"
local P, PER, C, SLOTS = %d, %d, %d, %d
local N = P * PER
local ch = goroutine.chan(SLOTS)
local results = goroutine.chan(C)
local producers = goroutine.waitgroup()

producers:add(P)
for p = 1, P do
  goroutine.go(function(out, wg, first, count)
    for v = first, first + count - 1 do out:send(v) end
    wg:done()
  end, ch, producers, (p - 1) * PER + 1, PER)
end

-- close the channel once every producer is done
goroutine.go(function(out, wg) wg:wait(); out:close() end, ch, producers)

for c = 1, C do
  goroutine.go(function(inp, res, per)
    local count, sum, disorder = 0, 0, 0
    local seen, last = {}, {}
    for v in inp:range() do
      count = count + 1
      sum = sum + v
      seen[#seen + 1] = v
      local p = (v - 1) // per + 1
      if last[p] and v <= last[p] then disorder = disorder + 1 end
      last[p] = v
    end
    res:send({ count = count, sum = sum, seen = seen, disorder = disorder })
  end, ch, results, PER)
end

local count, sum, disorder, dups, bad = 0, 0, 0, 0, 0
local seen = {}
for _ = 1, C do
  local r = results:recv()
  count = count + r.count
  sum = sum + r.sum
  disorder = disorder + r.disorder
  for _, v in ipairs(r.seen) do
    if math.type(v) ~= "integer" or v < 1 or v > N then bad = bad + 1
    elseif seen[v] then dups = dups + 1
    else seen[v] = true end
  end
end
local missing = 0
for v = 1, N do if not seen[v] then missing = missing + 1 end end
return ("count=%%d sum=%%d missing=%%d dups=%%d bad=%%d disorder=%%d")
  :format(count, sum, missing, dups, bad, disorder)
]]):format(PRODUCERS, PER_PRODUCER, CONSUMERS, SLOTS)

local EXPECTED = ("count=%d sum=%d missing=0 dups=0 bad=0 disorder=0")
  :format(TOTAL, TOTAL * (TOTAL + 1) // 2)

-- The program as a script that prints its result line.
local function subprocess(procs)
  return support.script("print((function()\n" .. PROGRAM .. "\nend)())\n",
                        { flags = { "-p", tostring(procs) }, env = "timeout 120" })
end

describe("a 64-slot channel between 8 producers and 4 consumers", function()
  it("delivers 160,000 integers exactly once, in each producer's order (in-process)", function()
    local program = assert(load(PROGRAM, "=stress", "t", _G))
    assert.equal(EXPECTED, program())
  end)

  it("delivers them exactly once on a single worker thread (-p 1)", function()
    local r = subprocess(1)
    assert.equal(0, r.status, r.stderr)
    assert.equal(EXPECTED .. "\n", r.stdout)
  end)

  it("delivers them exactly once on four worker threads (-p 4)", function()
    local r = subprocess(4)
    assert.equal(0, r.status, r.stderr)
    assert.equal(EXPECTED .. "\n", r.stdout)
  end)
end)
