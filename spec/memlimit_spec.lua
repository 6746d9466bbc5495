-- spec/memlimit_spec.lua — GOROUTINE_MEMLIMIT: the bytes each goroutine's
-- state may allocate (gr_config.memlimit for the command and the module).
local support = require "support"

local LUA = os.getenv("LUA") or "lua5.4"
local BUILD = (os.getenv("GOROUTINE_LUA") or "build/goroutine-lua"):match("^(.*)/[^/]*$") or "build"

-- Lua that keeps about 'kb' KiB alive in a table, returned.
local function grow(kb)
  return ("(function() local t = {} for i = 1, %d do t[i] = ('x'):rep(1024 - 32) .. i end return t end)()"):format(kb)
end

local function limited(limit, code)
  return support.script(code, { env = "GOROUTINE_MEMLIMIT=" .. limit })
end

-- The same script under stock lua5.4 with require "goroutine".
local function module_run(limit, code)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "wb"))
  f:write('local goroutine = require "goroutine"\nlocal go = goroutine.go\n', code)
  f:close()
  local r = support.sh(("GOROUTINE_MEMLIMIT=%s LUA_CPATH=%s %s %s"):format(
    support.quote(limit), support.quote(BUILD .. "/?.so;;"), LUA, support.quote(path)))
  os.remove(path)
  return r
end

-- One goroutine goes past the limit and catches it, collects and carries
-- on; another, under the limit, is not disturbed; the program completes.
local CAUGHT = [==[
local results = goroutine.chan()
go(function(results)
  local ok, e = pcall(function() return ]==] .. grow(4096) .. [==[ end)
  results:send({ "over", ok, e })
  collectgarbage()
  local t = ]==] .. grow(256) .. [==[
  results:send({ "after", #t })
end, results)
go(function(results) results:send({ "under", #]==] .. grow(512) .. [==[ }) end, results)
local got = {}
for _ = 1, 3 do local v = results:recv(); got[v[1]] = v end
assert(got.over[2] == false, "4 MiB allocated under a 1 MiB limit")
assert(got.over[3]:find("not enough memory", 1, true), got.over[3])
assert(got.after[2] == 256, "the goroutine did not carry on")
assert(got.under[2] == 512, "the other goroutine was disturbed")
print("completed")
]==]

describe("GOROUTINE_MEMLIMIT", function()
  it("gives a goroutine past it a catchable 'not enough memory' error; it carries on, the others too", function()
    local r = limited("1M", CAUGHT)
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("completed\n", r.stdout)
  end)

  it("uncaught, ends the program as any uncaught goroutine error: status 1, the error on stderr", function()
    local r = limited("1M", [[
      local done = goroutine.chan()
      go(function() local t = ]] .. grow(4096) .. [[ end)
      done:recv()
      print("not reached")
    ]])
    assert.are.equal(1, r.status)
    assert.are.equal("", r.stdout)
    assert.truthy(r.stderr:find("goroutine 2 [error]:\nnot enough memory\nstack traceback:", 1, true), r.stderr)
  end)

  it("limits each goroutine alone: three goroutines of 600 KiB each live under a 1 MiB limit", function()
    local r = limited("1M", [[
      local ready, hold = goroutine.chan(), goroutine.chan()
      for i = 1, 3 do
        go(function(ready, hold)
          local t = ]] .. grow(600) .. [[
          ready:send(#t)
          hold:recv()                     -- keep t alive until all three have theirs
        end, ready, hold)
      end
      local total = 0
      for _ = 1, 3 do total = total + ready:recv() end
      hold:close()
      print(total)
    ]])
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("1800\n", r.stdout)
  end)

  it("does not limit the main goroutine (its state is the host's)", function()
    local r = limited("1M", "local t = " .. grow(4096) .. " print(#t)")
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("4096\n", r.stdout)
  end)

  it("takes bytes, or k, M or G (powers of 1024); 0 or empty is no limit", function()
    local probe = [[
      local r = goroutine.chan()
      go(function(r) r:send((pcall(function() return ]] .. grow(2048) .. [[ end))) end, r)
      print((r:recv()))
    ]]
    for _, limit in ipairs({ "1048576", "1024k", "1024K", "1M" }) do
      local r = limited(limit, probe)
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("false\n", r.stdout, "2 MiB under " .. limit)
    end
    for _, limit in ipairs({ "1G", "4M", "0", "''" }) do
      local r = limited(limit, probe)
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("true\n", r.stdout, "2 MiB under " .. limit)
    end
  end)

  it("rejects a malformed value with a clear error, before running anything", function()
    for _, bad in ipairs({ "abc", "1X", "-1", "1.5M", "1MB", " 1", "99999999999999999999G" }) do
      local r = limited(support.quote(bad), "print('ran')")
      assert.are.equal(1, r.status, bad)
      assert.are.equal("", r.stdout, bad)
      assert.truthy(r.stderr:find("GOROUTINE_MEMLIMIT: invalid value '" .. bad .. "'", 1, true), r.stderr)
    end
  end)

  describe("with require \"goroutine\" from lua5.4", function()
    it("limits the goroutines as well", function()
      local r = module_run("1M", CAUGHT)
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("completed\n", r.stdout)
    end)

    it("makes require raise on a malformed value", function()
      local r = module_run("12Q", "print('ran')")
      assert.are.equal(1, r.status)
      assert.are.equal("", r.stdout)
      assert.truthy(r.stderr:find("GOROUTINE_MEMLIMIT: invalid value '12Q'", 1, true), r.stderr)
    end)
  end)
end)
