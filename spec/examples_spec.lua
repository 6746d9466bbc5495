-- spec/examples_spec.lua — every example program runs and prints exactly
-- what its .expected file says.
--
-- Each examples/NAME.lua that has an examples/NAME.expected is run as a
-- subprocess of goroutine-lua with the default worker count, with -p 1 and
-- with -p 4, and again from stock lua5.4 through require "goroutine". The
-- examples are written so that their output does not depend on scheduling,
-- so any difference is a bug.
local support = require "support"

-- A hung example must fail the suite, not hang it.
local TIMEOUT = os.getenv("EXAMPLES_TIMEOUT") or "300"

-- The examples the README and docs point at: each must be here and checked.
-- (examples/deadlock.lua exits with status 2 by design: it has no .expected
-- and spec/deadlock_spec.lua checks its report.)
local REQUIRED = {
  "cancellation", "counter_atomic_mutex", "counter_channel_owner",
  "goroutines_waitgroup", "hello", "pingpong", "prime_sieve",
  "producer_consumer", "rate_limiter", "rwmutex_readers_writers",
  "select_timeout", "worker_pool",
}

local slurp = support.read_file

-- { {name=, script=, expected=}, ... } in name order.
local function find_examples()
  local list = {}
  local ls = assert(io.popen("ls examples/*.lua 2>/dev/null"))
  for script in ls:lines() do
    local name = script:match("^examples/(.+)%.lua$")
    local expected = name and slurp("examples/" .. name .. ".expected")
    if expected then
      list[#list + 1] = { name = name, script = script, expected = expected }
    end
  end
  ls:close()
  return list
end

local function run_bin(args)
  local parts = { "timeout", TIMEOUT, support.quote(support.bin) }
  for _, a in ipairs(args) do parts[#parts + 1] = support.quote(a) end
  return support.sh(table.concat(parts, " "))
end

-- Stock lua5.4 loading build/goroutine.so from the directory of the binary.
local build_dir = support.bin:match("^(.*)/[^/]*$") or "."
local module_path = build_dir .. "/goroutine.so"
local lua = os.getenv("LUA") or "lua5.4"

local function run_stock(script, procs)
  return support.sh(("GOROUTINE_MAXPROCS=%s LUA_CPATH=%s timeout %s %s %s"):format(
    procs, support.quote(build_dir .. "/?.so;;"), TIMEOUT,
    support.quote(lua), support.quote(script)))
end

local function assert_clean_run(r, expected)
  assert.are.equal("", r.stderr)
  assert.are.equal(0, r.status, "exit status (124 means it timed out)")
  assert.are.equal(expected, r.stdout)
end

local examples = find_examples()

describe("the examples", function()
  it("include every lesson, each with its expected output", function()
    local have = {}
    for _, ex in ipairs(examples) do have[ex.name] = true end
    for _, name in ipairs(REQUIRED) do
      assert.is_true(have[name] == true, "examples/" .. name .. ".lua/.expected missing")
    end
  end)

  for _, ex in ipairs(examples) do
    describe(ex.name, function()
      it("prints its expected output under goroutine-lua", function()
        assert_clean_run(run_bin { ex.script }, ex.expected)
      end)

      it("prints the same with one worker thread (-p 1)", function()
        assert_clean_run(run_bin { "-p", "1", ex.script }, ex.expected)
      end)

      it("prints the same with four worker threads (-p 4)", function()
        assert_clean_run(run_bin { "-p", "4", ex.script }, ex.expected)
      end)

      -- Sanitizer builds cannot be loaded into an uninstrumented lua5.4.
      if os.getenv("SANITIZER") then return end
      for _, procs in ipairs { 1, 4 } do
        it("prints the same from stock lua5.4 with GOROUTINE_MAXPROCS=" .. procs, function()
          if not slurp(module_path) then
            pending("no " .. module_path .. " next to " .. support.bin)
            return
          end
          assert_clean_run(run_stock(ex.script, procs), ex.expected)
        end)
      end
    end)
  end
end)
