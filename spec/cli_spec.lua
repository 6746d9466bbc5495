-- spec/cli_spec.lua — the goroutine-lua command: options, arg, environment,
-- exit statuses, error reports and the REPL, checked against lua5.4.
--
-- Every case runs goroutine-lua as a subprocess (spec/support.lua) under
-- `timeout`, so a hang fails the case instead of hanging the suite. Nothing
-- here sleeps to synchronise.
local support = require "support"

local TIMEOUT = os.getenv("CLI_TIMEOUT") or "60"
local LUA = os.getenv("LUA") or "lua5.4"

-- Variables from the caller's environment that would change what the
-- interpreters print are unset (GOROUTINE_CHAOS adds the seed to every
-- error report: spec/chaos_spec.lua checks that); opts.env sets what a
-- case needs.
local CLEAN_ENV = "env -u LUA_INIT -u LUA_INIT_5_4 -u LUA_PATH_5_4 -u LUA_CPATH_5_4"
  .. " -u GOROUTINE_MAXPROCS -u GOROUTINE_CHAOS"

local function with_timeout(opts, seconds)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.env = CLEAN_ENV .. " " .. (opts.env and (opts.env .. " ") or "")
    .. "timeout " .. (seconds or TIMEOUT)
  return o
end

-- goroutine-lua with these arguments; opts: stdin=, env= (as support.run).
local function run(args, opts, seconds)
  return support.run(args, with_timeout(opts, seconds))
end

-- goroutine-lua on a temporary script; opts: flags=, args=, stdin=, env=.
local function script(code, opts, seconds)
  return support.script(code, with_timeout(opts, seconds))
end

-- Stock lua5.4 with these arguments (for comparisons).
local function run_lua(args, opts)
  opts = opts or {}
  local parts = { CLEAN_ENV, opts.env or "", "timeout", TIMEOUT, support.quote(LUA) }
  for _, a in ipairs(args) do parts[#parts + 1] = support.quote(a) end
  return support.sh(table.concat(parts, " "), opts)
end

local have_lua = support.sh("command -v " .. support.quote(LUA)).status == 0

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function lines(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

local function plain_find(s, sub) return s:find(sub, 1, true) ~= nil end

local count = support.count

-- A temporary directory, removed at the end.
local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir " .. support.quote(tmpdir)))

teardown(function()
  os.execute("rm -rf " .. support.quote(tmpdir))
end)

-- A module for -l and require, found through LUA_PATH.
write(tmpdir .. "/clitestmod.lua",
  'return { answer = 42, loaded_as = ..., pid = tostring(goroutine and goroutine.id()) }\n')
local MODPATH = "LUA_PATH=" .. support.quote(tmpdir .. "/?.lua;;")

-- Prints arg (the interpreter, at the lowest index, as <interp>) and ...
local DUMP = [[
local lo = 0
while arg[lo - 1] ~= nil do lo = lo - 1 end
local t = {}
for i = lo, #arg do t[#t + 1] = i .. "=" .. (i == lo and "<interp>" or arg[i]) end
t[#t + 1] = "n=" .. select("#", ...)
for i = 1, select("#", ...) do t[#t + 1] = "..." .. i .. "=" .. select(i, ...) end
print(table.concat(t, " "))
]]
local DUMP_PATH = tmpdir .. "/dump.lua"
write(DUMP_PATH, DUMP)

-- The line of output that DUMP printed.
local function dump_line(out)
  for _, l in ipairs(lines(out)) do
    if plain_find(l, "<interp>") then return l end
  end
  return nil
end

describe("goroutine-lua command line", function()

  describe("runs a script", function()
    it("with its arguments in ... and arg", function()
      local r = script('print(select("#", ...), ...) print(arg[0] ~= nil, arg[1], arg[2])',
        { args = { "a", "b c" } })
      assert.are.equal(0, r.status)
      assert.are.equal("2\ta\tb c\ntrue\ta\tb c\n", r.stdout)
      assert.are.equal("", r.stderr)
    end)

    it("with the goroutine module as globals and from require", function()
      local r = script([[
        assert(type(goroutine) == "table" and type(go) == "function")
        assert(require("goroutine") == goroutine)
        assert(go == goroutine.go)
        print(goroutine.id())
      ]])
      assert.are.equal("", r.stderr)
      assert.are.equal(0, r.status)
      assert.are.equal("1\n", r.stdout)
    end)

    it("from stdin when there is no script and stdin is not a terminal", function()
      local r = run({}, { stdin = 'print("from stdin", select("#", ...))' })
      assert.are.equal(0, r.status)
      assert.are.equal("from stdin\t0\n", r.stdout)
    end)

    it("from stdin with '-', passing the arguments", function()
      local r = run({ "-", "x", "y" }, { stdin = "print(...)" })
      assert.are.equal(0, r.status)
      assert.are.equal("x\ty\n", r.stdout)
    end)

    it("a file named '-' after '--'", function()
      local r = run({ "--", "-" }, { stdin = "print('no')" })
      assert.are.equal(1, r.status)
      assert.are.equal("", r.stdout)
      assert.truthy(plain_find(r.stderr, "cannot open -"))
    end)
  end)

  describe("sets arg and ... exactly as lua5.4", function()
    local cases = {
      { "SCRIPT" },
      { "SCRIPT", "a", "b c", "" },
      { "-e", "x=1", "SCRIPT", "a" },
      { "-ex=1", "SCRIPT", "-e", "y" },
      { "--", "SCRIPT", "-x" },
      { "-E", "-W", "SCRIPT", "--", "-i" },
      { "-W", "--", "SCRIPT" },
      { "-", "a", "b" },
      { "-W", "-" },
      { "-e", DUMP },
      { "-e", DUMP, "--" },
      { "-E", "-e", DUMP, "-W" },
      {},
      { "--" },
      { "-i", "SCRIPT", "a" },
    }
    for _, case in ipairs(cases) do
      local label = #case == 0 and "(no arguments)" or table.concat(case, " "):gsub("\n.*", "...")
      local stdin
      local args = {}
      for i, a in ipairs(case) do
        args[i] = a == "SCRIPT" and DUMP_PATH or a
        if a == "-" then stdin = DUMP end
      end
      if #case == 0 or case[#case] == "--" and case[1] == "--" then stdin = DUMP end
      if case[1] == "-i" then stdin = "" end
      local test = have_lua and it or pending
      test(label, function()
        local mine = run(args, { stdin = stdin })
        local theirs = run_lua(args, { stdin = stdin })
        assert.are.equal(theirs.status, mine.status)
        assert.are.equal(0, mine.status)
        assert.is_not_nil(dump_line(theirs.stdout))
        assert.are.equal(dump_line(theirs.stdout), dump_line(mine.stdout))
      end)
    end

    it("with -p N among the interpreter's options", function()
      local r = run({ "-p", "2", DUMP_PATH, "a" })
      assert.are.equal(0, r.status)
      assert.are.equal("-3=<interp> -2=-p -1=2 0=" .. DUMP_PATH .. " 1=a n=1 ...1=a",
        dump_line(r.stdout))
    end)
  end)

  describe("options", function()
    it("-e runs statements in order, before the script", function()
      local r = script("print('script', x)",
        { flags = { "-e", "x = 1", "-e", "x = x + 1; print('e', x)" } })
      assert.are.equal(0, r.status)
      assert.are.equal("e\t2\nscript\t2\n", r.stdout)
    end)

    it("-e alone does not read stdin", function()
      local r = run({ "-e", "print('only e')" }, { stdin = "print('stdin ran')" })
      assert.are.equal(0, r.status)
      assert.are.equal("only e\n", r.stdout)
    end)

    it("-l mod requires a module into the global 'mod'", function()
      local r = run({ "-l", "clitestmod", "-e", "print(clitestmod.answer, clitestmod.loaded_as)" },
        { env = MODPATH })
      assert.are.equal("", r.stderr)
      assert.are.equal(0, r.status)
      assert.are.equal("42\tclitestmod\n", r.stdout)
    end)

    it("-lmod (glued) works too", function()
      local r = run({ "-lclitestmod", "-e", "print(clitestmod.answer)" }, { env = MODPATH })
      assert.are.equal(0, r.status)
      assert.are.equal("42\n", r.stdout)
    end)

    it("-l g=mod requires a module into the global 'g'", function()
      local r = run({ "-l", "m=clitestmod", "-e", "print(m.answer, clitestmod, package.loaded.clitestmod == m)" },
        { env = MODPATH })
      assert.are.equal("", r.stderr)
      assert.are.equal(0, r.status)
      assert.are.equal("42\tnil\ttrue\n", r.stdout)
    end)

    it("-l runs after the runtime is attached", function()
      local r = run({ "-l", "clitestmod", "-e", "print(clitestmod.pid)" }, { env = MODPATH })
      assert.are.equal(0, r.status)
      assert.are.equal("1\n", r.stdout)
    end)

    it("-l of a missing module fails with status 1 and stops", function()
      local r = run({ "-l", "no_such_module_xyz", "-e", "print('ran')" })
      assert.are.equal(1, r.status)
      assert.are.equal("", r.stdout)
      assert.truthy(r.stderr:find("^goroutine%-lua: module 'no_such_module_xyz' not found"))
    end)

    it("-v prints the Lua version and the goroutine-lua version", function()
      local r = run({ "-v" })
      assert.are.equal(0, r.status)
      local l = lines(r.stdout)
      assert.are.equal(2, #l)
      assert.truthy(l[1]:find("^Lua 5%.4"))
      assert.are.equal("goroutine-lua 0.1.0", l[2])
      if have_lua then
        assert.are.equal(run_lua({ "-v" }).stdout, l[1] .. "\n")
      end
    end)

    it("-v with a script runs it after the version", function()
      local r = script("print('ran')", { flags = { "-v" } })
      assert.are.equal(0, r.status)
      local l = lines(r.stdout)
      assert.are.equal("goroutine-lua 0.1.0", l[2])
      assert.are.equal("ran", l[3])
    end)

    it("-W turns warnings on", function()
      local on = run({ "-W", "-e", "warn('careful')" })
      assert.are.equal(0, on.status)
      assert.are.equal("Lua warning: careful\n", on.stderr)
      local off = run({ "-e", "warn('careful')" })
      assert.are.equal(0, off.status)
      assert.are.equal("", off.stderr)
    end)

    it("-- stops handling options", function()
      local r = script("print(...)", { flags = { "--" }, args = { "-e", "x" } })
      assert.are.equal(0, r.status)
      assert.are.equal("-e\tx\n", r.stdout)
    end)

    it("options after the script are the script's arguments", function()
      local r = script("print(...)", { args = { "-v", "-p", "0" } })
      assert.are.equal(0, r.status)
      assert.are.equal("-v\t-p\t0\n", r.stdout)
    end)

    it("-h and --help print every option on stdout and exit 0", function()
      for _, flag in ipairs({ "-h", "--help" }) do
        local r = run({ flag, "-e", "print('not run')" })
        assert.are.equal(0, r.status)
        assert.are.equal("", r.stderr)
        assert.truthy(r.stdout:find("^usage: goroutine%-lua %[options%] %[script %[args%]%]\n"))
        for _, opt in ipairs({ "-e stat", "-i", "-l mod", "-l g=mod", "-v", "-E", "-W",
                               "-p N", "--procs N", "-h", "--help", "--", "-  " }) do
          assert.truthy(plain_find(r.stdout, opt), opt .. " missing from the help")
        end
        assert.is_false(plain_find(r.stdout, "not run"))
      end
    end)

    describe("-p N / --procs N", function()
      for _, flags in ipairs({ { "-p", "3" }, { "-p3" }, { "--procs", "3" }, { "--procs=3" } }) do
        it("sets the worker threads: " .. table.concat(flags, " "), function()
          local args = {}
          for i, f in ipairs(flags) do args[i] = f end
          args[#args + 1] = "-e"
          args[#args + 1] = "print(goroutine.maxprocs())"
          local r = run(args)
          assert.are.equal("", r.stderr)
          assert.are.equal(0, r.status)
          assert.are.equal("3\n", r.stdout)
        end)
      end

      it("overrides GOROUTINE_MAXPROCS, which is the default", function()
        local r = run({ "-e", "print(goroutine.maxprocs())" }, { env = "GOROUTINE_MAXPROCS=5" })
        assert.are.equal(0, r.status)
        assert.are.equal("5\n", r.stdout)
        r = run({ "-p", "2", "-e", "print(goroutine.maxprocs())" }, { env = "GOROUTINE_MAXPROCS=5" })
        assert.are.equal(0, r.status)
        assert.are.equal("2\n", r.stdout)
      end)

      it("runs goroutines with -p 1", function()
        local r = script([[
          local ch = goroutine.chan()
          for i = 1, 3 do go(function(c, n) c:send(n * 10) end, ch, i) end
          local sum = 0
          for _ = 1, 3 do sum = sum + ch:recv() end
          print(sum)
        ]], { flags = { "-p", "1" } })
        assert.are.equal("", r.stderr)
        assert.are.equal(0, r.status)
        assert.are.equal("60\n", r.stdout)
      end)

      for _, bad in ipairs({ { "-p", "0" }, { "-p", "x" }, { "-p", "-1" }, { "-p" },
                             { "-p", "2.5" }, { "--procs=0" }, { "--procs=" }, { "--procs" },
                             { "-p", "99999999999999999999" } }) do
        it("rejects " .. table.concat(bad, " ") .. " with a usage message", function()
          local args = {}
          for i, f in ipairs(bad) do args[i] = f end
          args[#args + 1] = "-e"
          args[#args + 1] = "print('ran')"
          local r = run(args)
          assert.are.equal(1, r.status)
          assert.are.equal("", r.stdout)
          assert.truthy(r.stderr:find("^goroutine%-lua: '%-%-?p"))
          assert.truthy(plain_find(r.stderr, "usage: goroutine-lua [options] [script [args]]"))
        end)
      end
    end)

    describe("bad usage prints the usage message on stderr, status 1", function()
      for _, bad in ipairs({ { "-x" }, { "-e", "x=1", "-q" }, { "--x" }, { "-vx" }, { "-Ex" },
                             { "-e" }, { "-l" }, { "-e", "-x" }, { "-hx" } }) do
        it(table.concat(bad, " "), function()
          local r = run(bad, { stdin = "print('stdin ran')" })
          assert.are.equal(1, r.status)
          assert.are.equal("", r.stdout)
          assert.truthy(plain_find(r.stderr, "usage: goroutine-lua [options] [script [args]]"))
          if have_lua then
            -- the first line names the same problem as lua5.4
            local theirs = run_lua(bad, { stdin = "print('stdin ran')" })
            assert.are.equal(1, theirs.status)
            local what = lines(theirs.stderr)[1]:gsub("^[^:]*: ", "")
            assert.are.equal("goroutine-lua: " .. what, lines(r.stderr)[1])
          end
        end)
      end
    end)
  end)

  describe("environment", function()
    it("runs LUA_INIT before -e and the script", function()
      local r = script("print('script', x)",
        { env = "LUA_INIT='x = 7 print(\"init\")'", flags = { "-e", "print('e', x)" } })
      assert.are.equal(0, r.status)
      assert.are.equal("init\ne\t7\nscript\t7\n", r.stdout)
    end)

    it("prefers LUA_INIT_5_4 to LUA_INIT", function()
      local r = run({ "-e", "" }, { env = "LUA_INIT_5_4='print(54)' LUA_INIT='print(0)'" })
      assert.are.equal(0, r.status)
      assert.are.equal("54\n", r.stdout)
    end)

    it("runs LUA_INIT=@file as a file", function()
      local init = tmpdir .. "/init.lua"
      write(init, "print('init file', goroutine.id())\n")
      local r = run({ "-e", "" }, { env = "LUA_INIT=" .. support.quote("@" .. init) })
      assert.are.equal(0, r.status)
      assert.are.equal("init file\t1\n", r.stdout)
    end)

    it("stops with status 1 when LUA_INIT fails", function()
      local r = run({ "-e", "print('ran')" }, { env = "LUA_INIT='error(\"bad init\")'" })
      assert.are.equal(1, r.status)
      assert.are.equal("", r.stdout)
      assert.truthy(r.stderr:find("^goroutine%-lua: LUA_INIT:1: bad init\nstack traceback:\n"))
    end)

    it("honours LUA_PATH_5_4 over LUA_PATH, and LUA_CPATH", function()
      local r = run({ "-e", "print(require('clitestmod').answer) print(package.cpath)" },
        { env = "LUA_PATH=/nowhere/?.lua LUA_PATH_5_4=" .. support.quote(tmpdir .. "/?.lua")
                .. " LUA_CPATH=/somewhere/?.so" })
      assert.are.equal("", r.stderr)
      assert.are.equal(0, r.status)
      assert.are.equal("42\n/somewhere/?.so\n", r.stdout)
    end)

    it("-E ignores LUA_INIT and LUA_PATH", function()
      local r = run({ "-E", "-e", "print(package.path:find(" .. ("%q"):format(tmpdir) ..
                      ", 1, true) == nil, debug.getregistry().LUA_NOENV)" },
        { env = "LUA_INIT='print(\"init ran\")' " .. MODPATH })
      assert.are.equal("", r.stderr)
      assert.are.equal(0, r.status)
      assert.are.equal("true\ttrue\n", r.stdout)
      r = run({ "-E", "-l", "clitestmod" }, { env = MODPATH })
      assert.are.equal(1, r.status)
      assert.truthy(plain_find(r.stderr, "module 'clitestmod' not found"))
      r = run({ "-l", "clitestmod" }, { env = MODPATH })
      assert.are.equal(0, r.status)
    end)
  end)

  describe("exit statuses", function()
    it("0 when the script ends", function()
      assert.are.equal(0, script("local x = 1").status)
    end)

    it("1 for an uncaught error", function()
      local r = script("error('boom')")
      assert.are.equal(1, r.status)
    end)

    it("1 for an error that a goroutine does not catch", function()
      local r = script([[
        go(function() error("goroutine boom") end)
        goroutine.chan():recv()
      ]])
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("goroutine %d+ %[error%]:\n[^\n]*goroutine boom"))
    end)

    it("1 for a syntax error", function()
      local r = script("x = = 1")
      assert.are.equal(1, r.status)
      assert.are.equal("", r.stdout)
      assert.truthy(r.stderr:find("^goroutine%-lua: [^\n]*:1: unexpected symbol near '='\n$"))
    end)

    it("1 for a missing script", function()
      local r = run({ tmpdir .. "/no/such/script.lua" })
      assert.are.equal(1, r.status)
      assert.are.equal("goroutine-lua: cannot open " .. tmpdir .. "/no/such/script.lua\n",
        (r.stderr:gsub(": No such file or directory", "")))
    end)

    it("1 for an error in -e, and the script does not run", function()
      local r = script("print('script ran')", { flags = { "-e", "error('in e')" } })
      assert.are.equal(1, r.status)
      assert.are.equal("", r.stdout)
      assert.truthy(r.stderr:find("^goroutine%-lua: %(command line%):1: in e\n"))
    end)

    it("n from os.exit(n)", function()
      assert.are.equal(3, script("os.exit(3)").status)
      assert.are.equal(0, script("os.exit(true)").status)
      assert.are.equal(1, script("os.exit(false)").status)
      assert.are.equal(3, run({ "-e", "os.exit(3)" }).status)
    end)

    it("output written before os.exit is not lost", function()
      local r = script("io.write('partial line') os.exit(4)")
      assert.are.equal(4, r.status)
      assert.are.equal("partial line", r.stdout)
    end)

    it("0 at once when main returns while a goroutine loops forever", function()
      local r = script([[
        local started = goroutine.chan()
        go(function(c) c:send(true) while true do end end, started)
        started:recv()
        io.write("main done\n")
      ]], nil, 20)
      assert.are.equal("", r.stderr)
      assert.are.equal(0, r.status)          -- 124 would be the timeout
      assert.are.equal("main done\n", r.stdout)
    end)

    it("0 at once with -p 1 and goroutines blocked forever", function()
      local r = script([[
        local never = goroutine.chan()
        go(function(c) c:recv() end, never)
        go(function() while true do end end)
        goroutine.yield()
      ]], { flags = { "-p", "1" } }, 20)
      assert.are.equal(0, r.status)
    end)
  end)

  describe("error report for the main script", function()
    local code = "local function f()\n  error('boom')\nend\nf()\n"

    it("is the message and a traceback, as lua5.4 reports it", function()
      local r = script(code)
      assert.are.equal(1, r.status)
      assert.are.equal("", r.stdout)
      local path = r.path
      assert.truthy(plain_find(r.stderr, "goroutine-lua: " .. path .. ":2: boom\nstack traceback:\n"))
      assert.truthy(r.stderr:find("^goroutine%-lua: "))
      assert.truthy(plain_find(r.stderr, "in local 'f'"))
      assert.truthy(plain_find(r.stderr, "in main chunk"))
    end)

    local test = have_lua and it or pending
    test("matches lua5.4's report word for word", function()
      local path = tmpdir .. "/boom.lua"
      write(path, code)
      local mine = run({ path })
      local theirs = run_lua({ path })
      assert.are.equal(theirs.status, mine.status)
      assert.are.equal(theirs.stderr:gsub("^[^:]*: ", ""), (mine.stderr:gsub("^goroutine%-lua: ", "")))
    end)

    it("describes non-string error objects", function()
      local r = run({ "-e", "error({})" })
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("^goroutine%-lua: %(error object is a table value%)\nstack traceback:\n"))
      r = run({ "-e", "error(setmetatable({}, {__tostring = function() return 'custom' end}))" })
      assert.are.equal(1, r.status)
      assert.are.equal("goroutine-lua: custom\n", r.stderr)
    end)

    it("reports an interrupt (SIGINT) as 'interrupted!'", function()
      local r = run({ "-e", [[
        local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
        io.popen("kill -INT " .. pid):close()
        while true do end
      ]] }, nil, 20)
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("^goroutine%-lua: %(command line%):%d+: interrupted!\nstack traceback:\n"))
    end)
  end)

  describe("REPL (-i, driven through stdin)", function()
    local function repl(input, flags, seconds)
      local args = {}
      for i, f in ipairs(flags or {}) do args[i] = f end
      args[#args + 1] = "-i"
      return run(args, { stdin = input }, seconds)
    end

    it("prints the version, then evaluates lines", function()
      local r = repl("x = 20\nx + 1\n=x * 2\nreturn 1, nil, 'three'\n")
      assert.are.equal(0, r.status)
      local l = lines(r.stdout)
      assert.truthy(l[1]:find("^Lua 5%.4"))
      assert.are.equal("goroutine-lua 0.1.0", l[2])
      assert.truthy(plain_find(r.stdout, "\n21\n"))
      assert.truthy(plain_find(r.stdout, "\n40\n"))
      assert.truthy(plain_find(r.stdout, "\n1\tnil\tthree\n"))
    end)

    it("continues incomplete statements with the >> prompt", function()
      local r = repl("for i = 1, 3 do\nprint(i * 11)\nend\nlocal t = {\n1,\n2 }\n")
      assert.are.equal(0, r.status)
      assert.are.equal("", r.stderr)
      assert.truthy(plain_find(r.stdout, ">> "))
      assert.truthy(plain_find(r.stdout, "\n11\n22\n33\n"))
    end)

    it("honours _PROMPT and _PROMPT2", function()
      local r = repl("_PROMPT = 'one$ '\n_PROMPT2 = 'two$ '\nif true then\nend\n")
      assert.are.equal(0, r.status)
      assert.truthy(plain_find(r.stdout, "one$ "))
      assert.truthy(plain_find(r.stdout, "two$ "))
    end)

    it("reports errors without the program name and goes on", function()
      local r = repl("error('oops')\nx = = 1\nprint('still here')\n")
      assert.are.equal(0, r.status)
      assert.truthy(r.stderr:find("^stdin:1: oops\nstack traceback:\n"))
      assert.truthy(plain_find(r.stderr, "\nstdin:1: unexpected symbol near '='\n"))
      assert.truthy(plain_find(r.stdout, "still here\n"))
    end)

    it("runs after the script, with its globals", function()
      local r = script("answer = 6 * 7", { flags = { "-i" }, stdin = "=answer\n" })
      assert.are.equal(0, r.status)
      assert.truthy(plain_find(r.stdout, "\n42\n"))
    end)

    local test = have_lua and it or pending
    test("prints what lua5.4's REPL prints", function()
      local input = table.concat({
        "x = 1", "x + 1", "=x, 'y'", "for i = 1, 2 do", "print(i)", "end",
        "error('e')", "local a =", "", "3", "_PROMPT = 'P '", "_PROMPT2 = 'Q '",
        "if x then", "end", "return", "print(nil)", "",
      }, "\n")
      local mine = run({ "-i" }, { stdin = input })
      local theirs = run_lua({ "-i" }, { stdin = input })
      assert.are.equal(theirs.status, mine.status)
      assert.are.equal("goroutine-lua 0.1.0", lines(mine.stdout)[2])
      assert.are.equal(theirs.stdout, (mine.stdout:gsub("\ngoroutine%-lua 0%.1%.0\n", "\n", 1)))
      assert.are.equal(theirs.stderr, mine.stderr)
    end)

    it("keeps goroutines running between prompts", function()
      local r = repl(table.concat({
        "ch = goroutine.chan()",
        "go(function(c) c:send('hello from ' .. goroutine.id()) end, ch)",
        "x = 1",
        "=ch:recv()",
        "done = goroutine.chan(1)",
        "go(function(c) local s = 0 for i = 1, 1000 do s = s + i end c:send(s) end, done)",
        "print('waiting')",
        "=done:recv()",
      }, "\n") .. "\n")
      assert.are.equal("", r.stderr)
      assert.are.equal(0, r.status)
      local id = r.stdout:match("\nhello from (%d+)\ttrue\n")
      assert.is_not_nil(id)
      assert.are_not.equal("1", id)
      assert.truthy(plain_find(r.stdout, "\nwaiting\n"))
      assert.truthy(plain_find(r.stdout, "\n500500\ttrue\n"))
    end)

    it("exits 0 at end of input even with a goroutine looping forever", function()
      local r = repl("started = goroutine.chan()\n" ..
        "go(function(c) c:send('looping') while true do end end, started)\n" ..
        "=started:recv()\n", nil, 20)
      assert.are.equal(0, r.status)
      assert.truthy(plain_find(r.stdout, "\nlooping\ttrue\n"))
    end)

    -- Needs util-linux script(1) for a pseudo-terminal; pending without it.
    local has_script = support.sh("script -qc true /dev/null").status == 0
    local tty_test = has_script and it or pending
    tty_test("is entered with no script when stdin is a terminal, and uses readline", function()
      -- Ctrl-A (beginning-of-line) and Ctrl-P (previous-history) are readline
      -- editing commands: without readline the first line is a syntax error.
      local input = '"A".."B")\1print(\n\16\nos.exit(0)\n'
      local r = support.sh(CLEAN_ENV .. " timeout " .. TIMEOUT .. " script -qc " ..
        support.quote(support.quote(support.bin)) .. " /dev/null", { stdin = input })
      assert.are.equal(0, r.status)
      assert.truthy(plain_find(r.stdout, "goroutine-lua 0.1.0"))
      assert.are.equal(2, count(r.stdout, "AB"))
    end)
  end)
end)
