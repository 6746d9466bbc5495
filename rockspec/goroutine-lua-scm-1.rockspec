-- goroutine-lua-scm-1.rockspec: the Lua module, require "goroutine".
--
-- Built from a checkout (no network): in the top directory,
--
--   luarocks --lua-version 5.4 make --local rockspec/goroutine-lua-scm-1.rockspec
--
-- (Debian's luarocks defaults to Lua 5.1: give --lua-version 5.4, or set it
-- once with `luarocks config --scope user lua_version 5.4`.)  The Makefile
-- builds the module, so the rock always has every source file of src/; it
-- builds in build/rock and installs goroutine.so into the rock tree.
rockspec_format = "3.0"
package = "goroutine-lua"
version = "scm-1"

source = {
  url = "git+file://.",     -- luarocks make builds the checkout it runs in
}

description = {
  summary = "Go's concurrency model for Lua 5.4: goroutines, channels, select, sync",
  detailed = [[
Goroutines are cheap and many; each one is its own lua_State, so nothing is
shared. A multi-threaded scheduler written in C runs them on all cores
(M:N) and preempts busy ones. Goroutines talk through channels that copy the
values that cross, and coordinate with mutexes, read-write mutexes, wait
groups, once, cond and atomics, with Go's names, rules and error messages.
]],
  labels = { "concurrency", "goroutine", "channel", "threads" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

build = {
  type = "make",
  build_target = "build/rock/goroutine.so",
  build_variables = {
    BUILD = "build/rock",
    CC = "$(CC)",
    OPT = "$(CFLAGS)",
    LUA_CFLAGS = "-I$(LUA_INCDIR)",
  },
  install_pass = false,
  install = {
    lib = { goroutine = "build/rock/goroutine.so" },
  },
}
