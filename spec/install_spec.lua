-- spec/install_spec.lua — make install into a temporary DESTDIR: every
-- file in its place, a shared library with a soname that exports the API
-- and nothing else, the embedding example and the README's hello.c built
-- against the INSTALLED copy through pkg-config and run, the module loaded
-- by a stock lua5.4, the command run, and make uninstall leaving nothing.
--
-- It installs the plain build, so it runs under make test, not under the
-- sanitizer suites (an instrumented library cannot be linked into a plain
-- program).
local support = require "support"

local build_dir = support.bin:match("^(.*)/[^/]*$") or "."
local q = support.quote

local slurp = support.read_file

local function sh(cmd) return support.sh(cmd) end

-- A make run of its own: not a part of the make that runs the specs.
local function make(args)
  return sh("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s " .. args
            .. " BUILD=" .. q(build_dir))
end

local version = slurp("src/goroutine.h"):match('#define GR_VERSION "([^"]+)"')

-- The functions goroutine.h declares.
local function api_functions()
  local names = {}
  for line in slurp("src/goroutine.h"):gmatch("[^\n]+") do
    if line:match("^GR_API ") then names[#names + 1] = line:match("([%w_]+)%s*%(") end
  end
  table.sort(names)
  return names
end

describe("make install", function()
  if os.getenv("SANITIZER") then
    it("installs the plain build: checked by make test", function()
      pending("not under SANITIZER=" .. os.getenv("SANITIZER"))
    end)
    return
  end

  local tmp, root, prefix
  local function at(path) return root .. prefix .. "/" .. path end

  lazy_setup(function()
    tmp = assert(io.popen("mktemp -d")):read("l")
    root = tmp .. "/root"
    prefix = "/usr/local"
    local r = make("install DESTDIR=" .. q(root))
    assert(r.status == 0, "make install failed:\n" .. r.stdout .. r.stderr)
  end)

  lazy_teardown(function()
    if tmp then os.execute("rm -rf " .. q(tmp)) end
  end)

  it("puts the command, module, libraries, header, pkg-config file and man page under PREFIX", function()
    for _, path in ipairs {
      "bin/goroutine-lua", "lib/lua/5.4/goroutine.so", "lib/libgoroutine.a",
      "lib/libgoroutine.so." .. version, "include/goroutine.h",
      "lib/pkgconfig/goroutine-lua.pc", "share/man/man1/goroutine-lua.1",
    } do
      assert.is_truthy(slurp(at(path)), "missing " .. prefix .. "/" .. path)
    end
    assert.are.equal(0, sh("test -x " .. q(at("bin/goroutine-lua"))).status)
    assert.are.equal(slurp("src/goroutine.h"), slurp(at("include/goroutine.h")))
    -- libgoroutine.so -> libgoroutine.so.0 -> libgoroutine.so.VERSION
    assert.are.equal("libgoroutine.so.0\n", sh("readlink " .. q(at("lib/libgoroutine.so"))).stdout)
    assert.are.equal("libgoroutine.so." .. version .. "\n",
                     sh("readlink " .. q(at("lib/libgoroutine.so.0"))).stdout)
  end)

  it("gives the shared library its soname, liblua5.4 as a dependency, and exports the API only", function()
    local so = at("lib/libgoroutine.so." .. version)
    local dyn = sh("readelf -d " .. q(so)).stdout
    assert.matches("%(SONAME%)%s+Library soname: %[libgoroutine%.so%.0%]", dyn)
    assert.matches("%(NEEDED%)%s+Shared library: %[liblua5%.4%.so", dyn)
    local exported = {}
    for name in sh("nm -D --defined-only " .. q(so)).stdout:gmatch("%x+ T ([%w_]+)") do
      exported[#exported + 1] = name
    end
    table.sort(exported)
    assert.are.same(api_functions(), exported)
  end)

  it("writes a pkg-config file that works from the DESTDIR", function()
    local pc = "PKG_CONFIG_PATH=" .. q(at("lib/pkgconfig")) .. " pkg-config "
    assert.are.equal(version .. "\n", sh(pc .. "--modversion goroutine-lua").stdout)
    local flags = sh(pc .. "--cflags --libs goroutine-lua").stdout
    assert.matches("-lgoroutine", flags, 1, true)
    assert.matches("-pthread", flags, 1, true)
    assert.matches("-llua5.4", flags, 1, true)       -- Requires: lua5.4
    assert.matches(root, flags, 1, true)
  end)

  -- Build a C file against the installed copy; returns the program's path.
  local function build_installed(source, name)
    local exe = tmp .. "/" .. name
    local r = sh(("cc -Wall -Wextra -Werror %s -o %s $(PKG_CONFIG_PATH=%s pkg-config --cflags --libs goroutine-lua)")
                 :format(q(source), q(exe), q(at("lib/pkgconfig"))))
    assert(r.status == 0, "cc failed:\n" .. r.stdout .. r.stderr)
    return exe
  end

  local function run_installed(exe, args)
    return sh(("LD_LIBRARY_PATH=%s timeout 120 %s %s"):format(q(at("lib")), q(exe), args or ""))
  end

  it("builds the embedding example against the installed copy with pkg-config, and runs it", function()
    local exe = build_installed("examples/embed/host.c", "embed-example")
    -- It is linked to the installed shared library, not to the build's.
    local ldd = sh(("LD_LIBRARY_PATH=%s ldd %s"):format(q(at("lib")), q(exe))).stdout
    assert.matches("libgoroutine.so.0 => " .. at("lib/libgoroutine.so.0"), ldd, 1, true)
    local r = run_installed(exe, "examples/embed/worker.lua")
    assert.are.equal(slurp("examples/embed/host.expected"), r.stdout)
    assert.are.equal(0, r.status, r.stderr)
  end)

  it("builds the README's hello.c the same way, which says hello from goroutine 2", function()
    local r = run_installed(build_installed("examples/embed/hello.c", "hello"))
    assert.are.equal("hello from goroutine 2\n", r.stdout)
    assert.are.equal(0, r.status, r.stderr)
  end)

  it("installs a module stock lua5.4 loads, a command that runs, and a man page", function()
    local r = sh(("LUA_CPATH=%s lua5.4 -e %s"):format(q(at("lib/lua/5.4/?.so")), q(
      "local g = require 'goroutine'; local c = g.chan(); g.go(function() c:send(g.id()) end); print(c:recv())")))
    assert.are.equal("2\ttrue\n", r.stdout, r.stderr)
    r = sh(q(at("bin/goroutine-lua")) .. " -e " .. q("print(goroutine.id(), type(go))"))
    assert.are.equal("1\tfunction\n", r.stdout, r.stderr)
    local man = slurp(at("share/man/man1/goroutine-lua.1"))
    assert.matches('^[^\n]*\n.-%.TH GOROUTINE%-LUA 1', man)
    for _, section in ipairs { "OPTIONS", "ENVIRONMENT", "EXIT STATUS" } do
      assert.matches("\n.SH " .. section .. "\n", man, 1, true)
    end
  end)

  it("puts the module in Lua 5.4's own C module directory for PREFIX=/usr", function()
    local cmod = sh("pkg-config --variable=INSTALL_CMOD lua5.4").stdout:match("[^\n]+")
    if not cmod then pending("pkg-config knows no INSTALL_CMOD for lua5.4") return end
    local usr = tmp .. "/usr-root"
    local r = make("install PREFIX=/usr DESTDIR=" .. q(usr))
    assert(r.status == 0, r.stderr)
    assert.is_truthy(slurp(usr .. cmod .. "/goroutine.so"), "no module in " .. cmod)
    assert.is_truthy(slurp(usr .. "/usr/lib/libgoroutine.a"))
    r = make("uninstall PREFIX=/usr DESTDIR=" .. q(usr))
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("", sh("find " .. q(usr) .. " -type f -o -type l").stdout)
  end)

  it("make uninstall removes every file install put there, and nothing else", function()
    local other = at("lib/not-ours.txt")
    assert(io.open(other, "w")):close()
    local r = make("uninstall DESTDIR=" .. q(root))
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(at("lib/not-ours.txt") .. "\n",
                     sh("find " .. q(root) .. " -type f -o -type l").stdout)
  end)
end)
