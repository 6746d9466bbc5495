-- spec/support.lua — shared helpers for the specs.
--
-- Specs that need a whole program (exit statuses, stderr, the REPL) run
-- goroutine-lua as a subprocess through these helpers.
local support = {}
local goroutine = require "goroutine"

-- The goroutine-lua binary under test (spec/run.sh sets GOROUTINE_LUA).
support.bin = os.getenv("GOROUTINE_LUA") or "build/goroutine-lua"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The contents of the file at path, or nil if it cannot be read.
function support.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Whether s is a string that contains sub, plainly.
function support.has(s, sub)
  return type(s) == "string" and s:find(sub, 1, true) ~= nil
end

-- How many times sub occurs in s, plainly, without overlaps.
function support.count(s, sub)
  local n, i = 0, 1
  while true do
    local j = s:find(sub, i, true)
    if not j then return n end
    n, i = n + 1, j + #sub
  end
end

-- Let every other runnable goroutine have a turn, many times over.
function support.let_others_run()
  for _ = 1, 200 do goroutine.yield() end
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
support.quote = shell_quote

-- Run a shell command line; returns a table {status=, stdout=, stderr=}.
-- opts.stdin: text fed to the command's standard input.
function support.sh(cmdline, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local input = "/dev/null"
  local infile
  if opts.stdin then
    infile = os.tmpname()
    local f = assert(io.open(infile, "wb")); f:write(opts.stdin); f:close()
    input = infile
  end
  local ok, how, code = os.execute(cmdline .. " <" .. input .. " >" .. out .. " 2>" .. err)
  local r = { stdout = slurp(out), stderr = slurp(err) }
  if how == "exit" then r.status = code else r.status = 128 + (code or 0) end
  r.ok = ok
  os.remove(out); os.remove(err)
  if infile then os.remove(infile) end
  return r
end

-- Run goroutine-lua with the given argument list (strings, quoted here).
function support.run(args, opts)
  local parts = { shell_quote(support.bin) }
  for _, a in ipairs(args or {}) do parts[#parts + 1] = shell_quote(a) end
  local env = (opts and opts.env) and (opts.env .. " ") or ""
  return support.sh(env .. table.concat(parts, " "), opts)
end

-- Write 'code' to a temporary script and run goroutine-lua on it.
-- opts.args: extra arguments after the script; opts.flags: before it.
function support.script(code, opts)
  opts = opts or {}
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "wb")); f:write(code); f:close()
  local args = {}
  for _, a in ipairs(opts.flags or {}) do args[#args + 1] = a end
  args[#args + 1] = path
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local r = support.run(args, opts)
  os.remove(path)
  r.path = path
  return r
end

-- Stock lua5.4 ($LUA) running 'code' as a script that does require
-- "goroutine" (module mode), killed after 'seconds' (default 60).
function support.module_script(code, seconds)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "wb")); f:write(code); f:close()
  local build_dir = support.bin:match("^(.*)/[^/]*$") or "."
  local lua = os.getenv("LUA") or "lua5.4"
  local r = support.sh("timeout " .. (seconds or 60)
    .. " env LUA_CPATH=" .. shell_quote(build_dir .. "/?.so;;")
    .. " " .. shell_quote(lua) .. " " .. shell_quote(path))
  os.remove(path)
  r.path = path
  return r
end

-- Whether the suite runs under goroutine-lua (command mode: the main
-- goroutine has the global `go`) rather than from stock lua5.4 with
-- require "goroutine" (module mode, which sets no global).
support.command_mode = rawget(_G, "go") ~= nil

-- Run 'code' as a program of its own, the way the suite itself runs: under
-- goroutine-lua in command mode, from stock lua5.4 in module mode (so the
-- code gets the module with require "goroutine").  Killed after 'seconds'
-- (default 120).  Returns what support.sh returns.
function support.program(code, seconds)
  seconds = seconds or 120
  if support.command_mode then
    return support.script(code, { env = "timeout " .. seconds })
  end
  return support.module_script(code, seconds)
end

-- Everything in ch now, received without blocking, as a list.  Goroutines
-- cannot use busted's assert: they send what went wrong on a channel, and
-- the spec asserts that what it drains from it is empty.
function support.drain(ch)
  local t = {}
  while true do
    local v, ok = ch:tryrecv()
    if not ok then return t end
    t[#t + 1] = v
  end
end

-- For X ~ Binomial(n, 1/2) (n fair coin flips), the least margin k such
-- that P(|X - n/2| >= k) < alpha, from the exact distribution: a test that
-- fails when |X - n/2| >= k fails a fair coin with probability < alpha.
-- By symmetry P(|X - n/2| >= n/2 - j) = 2 P(X <= j); j is the greatest
-- count whose doubled lower tail is still below alpha.
function support.binomial_margin(n, alpha)
  local logpmf, cdf = -n * math.log(2), {}
  local sum = 0
  for j = 0, n // 2 do
    sum = sum + math.exp(logpmf)
    cdf[j] = sum
    logpmf = logpmf + math.log(n - j) - math.log(j + 1)
  end
  local best = -1
  for j = 0, n // 2 do
    if 2 * cdf[j] < alpha then best = j else break end
  end
  return n / 2 - best
end

return support
