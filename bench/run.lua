-- bench/run.lua — run every workload under goroutine-lua and its Go twin,
-- alternately, BENCH_RUNS times each with the same number of worker threads;
-- print a table of medians [min–max], the ratio goroutine-lua / Go and the
-- target of issue 5; write bench/results/latest.{json,md}.
--
-- Started by bench/run.sh (which builds the Go twins first), from the
-- repository root, under stock lua5.4.  Environment:
--   BENCH_RUNS      runs per workload and implementation (5)
--   BENCH_PROCS     worker threads / GOMAXPROCS (the online CPUs)
--   BENCH_ONLY      workloads to run, e.g. "W1,W7" (all)
--   BENCH_TIMEOUT   seconds one run may take before it counts as not
--                   completed (120)
--   BENCH_MEM_KB    address-space limit of one run, in kB (12 GiB, or 60%
--                   of the machine's memory if that is less), so a runaway
--                   workload fails alone instead of waking the OOM killer
--   BENCH_W7_LEAVES W7's scale (1000000); BENCH_W7_SMALL the scale W7 falls
--                   back to when the full one does not complete (100000)
--   BUILD, GO       the build directory (build) and the go command (go)
package.path = "bench/?.lua;" .. package.path
local json = require "json"

local function env(name, default) local v = os.getenv(name); return (v and v ~= "") and v or default end

local function sh(cmd)                       -- first line of a command's output
  local f = io.popen(cmd .. " 2>/dev/null")
  local out = f:read("a") or ""
  f:close()
  return (out:gsub("%s+$", ""))
end

local function readfile(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local BUILD = env("BUILD", "build")
local GL = BUILD .. "/goroutine-lua"
local GOBENCH = BUILD .. "/bench/gobench"
local RUNS = math.tointeger(tonumber(env("BENCH_RUNS", "5"))) or 5
local PROCS = math.tointeger(tonumber(env("BENCH_PROCS", sh("nproc")))) or 1
local TIMEOUT = math.tointeger(tonumber(env("BENCH_TIMEOUT", "120"))) or 120
local MEMTOTAL = tonumber((readfile("/proc/meminfo") or ""):match("MemTotal:%s*(%d+)")) or 0
local MEM_KB = math.tointeger(tonumber(env("BENCH_MEM_KB", "")))
  or math.min(12 * 1024 * 1024, MEMTOTAL * 6 // 10)
local W7_LEAVES = math.tointeger(tonumber(env("BENCH_W7_LEAVES", "1000000")))
local W7_SMALL = math.tointeger(tonumber(env("BENCH_W7_SMALL", "100000")))
local OUTDIR = env("BENCH_OUT", "bench/results")
local ONLY = {}
for id in env("BENCH_ONLY", ""):gmatch("[^,%s]+") do ONLY[id:upper():gsub("B$", "b")] = true end

-- ------------------------------------------------------------ workloads
-- Each workload is run once per run; each of its rows is a figure read from
-- the JSON line it prints.  A target is on the ratio goroutine-lua / Go
-- ("ratio") or on goroutine-lua's own figure ("abs").
local GB = 1e9
local WORKLOADS = {
  { id = "W1", file = "W1_pingpong.lua", name = "ping-pong, 200,000 round trips",
    rows = { { field = "value", figure = "ns per round trip", unit = "ns",
               target = { kind = "ratio", op = "<=", value = 2 } } } },
  { id = "W2", file = "W2_spawn.lua", name = "spawn 100,000, main sums",
    rows = { { field = "value", figure = "spawns per second", unit = "1/s",
               target = { kind = "ratio", op = ">=", value = 0.5 } },
             { field = "rss_kb", figure = "peak RSS", unit = "kB" } } },
  { id = "W2b", file = "W2b_parked.lua", name = "10,000 parked goroutines",
    rows = { { field = "value", figure = "bytes per parked goroutine", unit = "B",
               target = { kind = "abs", op = "<=", value = 8000 } } } },
  { id = "W3", file = "W3_throughput.lua", name = "1 producer, 1 consumer, cap 256, 10^6 ints",
    rows = { { field = "value", figure = "messages per second", unit = "1/s",
               target = { kind = "ratio", op = ">=", value = 0.3 } } } },
  { id = "W4", file = "W4_parallel.lua", name = "fib(32) x2, parallel vs sequential",
    rows = { { field = "value", figure = "speedup", unit = "x",
               target = { kind = "abs", op = ">=", value = 1.9 } } } },
  { id = "W5", file = "W5_tables.lua", name = "100,000 table messages, cap 256",
    rows = { { field = "value", figure = "messages per second", unit = "1/s",
               target = { kind = "ratio", op = ">=", value = 0.3 } } } },
  { id = "W6", file = "W6_fanin.lua", name = "fan-in 100 x 10,000, cap 256",
    rows = { { field = "value", figure = "messages per second", unit = "1/s",
               target = { kind = "ratio", op = ">=", value = 0.2 } } } },
  { id = "W7", file = "W7_skynet.lua", name = "skynet", leaves = W7_LEAVES,
    rows = { { field = "value", figure = "seconds", unit = "s",
               target = { kind = "ratio", op = "<=", value = 5 } },
             { field = "rss_kb", figure = "peak RSS", unit = "kB",
               target = { kind = "abs", op = "<=", value = 8 * GB / 1024 } } } },
  { id = "W8", file = "W8_select.lua", name = "select over 4 unbuffered channels, 10^6 msgs",
    rows = { { field = "value", figure = "messages per second", unit = "1/s",
               target = { kind = "ratio", op = ">=", value = 0.2 } } } },
}

-- ------------------------------------------------------------- one run
local ERRFILE = os.tmpname()

local function parse_line(out)
  for line in out:gmatch("[^\n]+") do
    if line:match("^%s*{") then
      local ok, obj = pcall(json.decode, line)
      if ok and type(obj) == "table" then return obj, line end
    end
  end
end

-- Run one implementation once; returns the parsed JSON object (ok = true),
-- or { ok = false, error = why, stderr = its last lines }.
local function run_once(w, impl, leaves)
  local prog
  if impl == "goroutine-lua" then
    prog = string.format("%s -p %d bench/lua/%s", GL, PROCS, w.file)
  else
    prog = string.format("%s -w %s -p %d", GOBENCH, w.id, PROCS)
  end
  local cmd = string.format(
    "ulimit -v %d 2>/dev/null; BENCH_W7_LEAVES=%d exec timeout -k 5 %d %s 2>%s",
    MEM_KB, leaves or W7_LEAVES, TIMEOUT, prog, ERRFILE)
  local t0 = os.time()
  local f = io.popen(cmd)
  local out = f:read("a") or ""
  local _, how, code = f:close()
  local stderr = readfile(ERRFILE) or ""
  local obj, line = parse_line(out)
  if how == "exit" and code == 0 and obj and obj.value then
    obj.ok = true
    obj.raw = line
    return obj
  end
  local why
  if how == "exit" and (code == 124 or code == 137) then
    why = string.format("timeout (%d s)", TIMEOUT)
  elseif stderr:find("memory") then
    why = string.format("out of memory (limit %.1f GB)", MEM_KB * 1024 / GB)
  elseif how == "exit" and code == 3 then
    why = "wrong result"
  elseif how == "signal" then
    why = "killed by signal " .. tostring(code)
  else
    why = "exit status " .. tostring(code) .. (obj and "" or ", no JSON line")
  end
  local tail = {}
  for l in stderr:gmatch("[^\n]+") do tail[#tail + 1] = l; if #tail > 20 then table.remove(tail, 1) end end
  return { ok = false, error = why, stderr = table.concat(tail, "\n"), command = prog,
           elapsed_s = os.time() - t0 }
end

-- ------------------------------------------------------------ statistics
local function stats(runs, field)
  local v = {}
  for _, r in ipairs(runs) do
    if r.ok and type(r[field]) == "number" then v[#v + 1] = r[field] end
  end
  if #v == 0 then return nil end
  table.sort(v)
  local n = #v
  local median = n % 2 == 1 and v[(n + 1) // 2] or (v[n // 2] + v[n // 2 + 1]) / 2
  return { median = median, min = v[1], max = v[n], n = n }
end

-- --------------------------------------------------------------- format
local function commas(n)
  local s = string.format("%.0f", n)
  local neg, digits = s:match("^(-?)(%d+)$")
  if not digits then return s end
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return neg .. digits
end

local function sig(x, n) -- n significant digits, no exponent
  if x == 0 then return "0" end
  local d = math.max(0, n - 1 - math.floor(math.log(math.abs(x), 10)))
  return string.format("%." .. d .. "f", x)
end

-- The divisor and suffix a figure is shown with, chosen from ref (the
-- median), so a median and its min–max read in one scale.
local function scale(ref, unit)
  if unit == "1/s" then
    if ref >= 1e6 then return 1e6, " M/s" elseif ref >= 1e3 then return 1e3, " k/s" end
    return 1, " /s"
  elseif unit == "s" then
    if ref < 1 then return 1e-3, " ms" end
    return 1, " s"
  elseif unit == "kB" then                       -- /proc's kB are KiB
    if ref * 1024 >= GB then return GB / 1024, " GB" end
    return 1e6 / 1024, " MB"
  end
end

-- value -> text with its unit; bare = the number alone; ref = the value
-- whose scale to use (x's own by default)
local function fmt(x, unit, bare, ref)
  local num, suffix
  if unit == "ns" or unit == "B" then num, suffix = commas(x), " " .. unit
  elseif unit == "x" then num, suffix = string.format("%.2f", x), "×"
  elseif scale(ref or x, unit) then
    local div
    div, suffix = scale(ref or x, unit)
    num = sig(x / div, 3)
  else num, suffix = sig(x, 3), " " .. unit end
  return bare and num or num .. suffix
end

local function fmt_range(s, unit)
  if not s then return nil end
  return string.format("%s [%s–%s]", fmt(s.median, unit), fmt(s.min, unit, true, s.median),
    fmt(s.max, unit, true, s.median))
end

local function target_text(t, unit)
  if not t then return "—" end
  local op = t.op == "<=" and "≤ " or "≥ "
  if t.kind == "ratio" then return op .. string.format("%g", t.value) .. "× Go" end
  if unit == "kB" then return op .. string.format("%g GB", t.value * 1024 / GB) end
  return op .. fmt(t.value, unit)
end

local function ratio_text(r)
  if not r then return "—" end
  if r >= 100 then return string.format("%.0f×", r) end
  return sig(r, 3) .. "×"
end

-- ------------------------------------------------------------------ main
local machine = {
  nproc = math.tointeger(tonumber(sh("nproc"))),
  cpu_model = ((readfile("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)")) or "unknown",
  mem_total_kb = MEMTOTAL,
  kernel = sh("uname -sr"),
  go_version = sh(env("GO", "go") .. " version"),
  goroutine_lua_version = sh(GL .. " -v"),
  lua_commit = sh("git rev-parse --short HEAD") .. (sh("git status --porcelain src lua") ~= "" and "+dirty" or ""),
  date = sh("date -u +%Y-%m-%dT%H:%M:%SZ"),
  loadavg_start = sh("cut -d' ' -f1-3 /proc/loadavg"),
}
local config = { runs = RUNS, procs = PROCS, timeout_s = TIMEOUT, mem_limit_kb = MEM_KB,
                 w7_leaves = W7_LEAVES, w7_small_leaves = W7_SMALL }

io.stderr:write(string.format(
  "bench: %d runs each, %d worker threads (GOMAXPROCS), timeout %d s, memory limit %.1f GB a run\n",
  RUNS, PROCS, TIMEOUT, MEM_KB * 1024 / GB))

local results, failed = {}, false

local function progress(w, impl, i, r, leaves)
  local scale = leaves and leaves ~= W7_LEAVES and string.format(" (%d leaves)", leaves) or ""
  if r.ok then
    io.stderr:write(string.format("  %-4s %-13s run %d/%d%s: %s\n", w.id, impl, i, RUNS, scale,
      fmt(r.value, w.rows[1].unit)))
  else
    io.stderr:write(string.format("  %-4s %-13s run %d/%d%s: FAILED, %s\n%s", w.id, impl, i, RUNS,
      scale, r.error, r.stderr ~= "" and ("    " .. r.stderr:gsub("\n", "\n    ") .. "\n") or ""))
  end
end

-- Run w's two implementations alternately; a timeout or memory failure of
-- one implementation stops its later runs (they would only fail again).
local function run_workload(w, leaves)
  local runs = { ["goroutine-lua"] = {}, go = {} }
  local gaveup = {}
  for i = 1, RUNS do
    for _, impl in ipairs { "goroutine-lua", "go" } do
      if not gaveup[impl] then
        local r = run_once(w, impl, leaves)
        r.run = i
        runs[impl][#runs[impl] + 1] = r
        progress(w, impl, i, r, leaves)
        if not r.ok and (r.error:find("^timeout") or r.error:find("^out of memory")) then
          gaveup[impl] = r.error
        end
      end
    end
  end
  return runs, gaveup
end

local function summarise(w, runs, leaves, gaveup)
  local entry = { id = w.id, name = w.name, file = "bench/lua/" .. w.file, leaves = leaves,
                  runs = runs, rows = {} }
  local errors = {}
  for _, impl in ipairs { "goroutine-lua", "go" } do
    for _, r in ipairs(runs[impl]) do
      if not r.ok then errors[impl] = errors[impl] or r.error end
    end
  end
  entry.not_completed = gaveup["goroutine-lua"]
  for _, row in ipairs(w.rows) do
    local gl, go = stats(runs["goroutine-lua"], row.field), stats(runs.go, row.field)
    local e = { figure = row.figure, unit = row.unit, field = row.field, target = row.target,
                ["goroutine-lua"] = gl, go = go }
    if gl and go and go.median ~= 0 then e.ratio = gl.median / go.median end
    local t = row.target
    if t then
      local x = t.kind == "ratio" and e.ratio or (gl and gl.median)
      if x then
        if t.op == "<=" then e.met = x <= t.value else e.met = x >= t.value end
      else
        e.met = false
      end
    end
    if next(errors) then e.error = errors end
    entry.rows[#entry.rows + 1] = e
  end
  return entry
end

for _, w in ipairs(WORKLOADS) do
  if next(ONLY) == nil or ONLY[w.id] then
    io.stderr:write(w.id, " ", w.name, "\n")
    local leaves = w.leaves
    local runs, gaveup = run_workload(w, leaves)
    local entry = summarise(w, runs, leaves, gaveup)
    results[#results + 1] = entry
    for _, impl in ipairs { "goroutine-lua", "go" } do
      for _, r in ipairs(runs[impl]) do
        -- A workload that cannot finish in time or memory is a figure
        -- ("not completed"); a crash or a wrong result is a failure.
        if not r.ok and not (w.id == "W7" and r.error == gaveup[impl]) then failed = true end
      end
    end
    if w.id == "W7" and gaveup["goroutine-lua"] and W7_SMALL < leaves then
      io.stderr:write(string.format("W7 at full scale did not complete (%s): again at %d leaves\n",
        gaveup["goroutine-lua"], W7_SMALL))
      local small = run_workload(w, W7_SMALL)
      local e = summarise(w, small, W7_SMALL, {})
      results[#results + 1] = e
      for _, impl in ipairs { "goroutine-lua", "go" } do
        for _, r in ipairs(small[impl]) do if not r.ok then failed = true end end
      end
    end
  end
end
machine.loadavg_end = sh("cut -d' ' -f1-3 /proc/loadavg")
os.remove(ERRFILE)

-- ----------------------------------------------------------------- table
local lines = {
  string.format("%d runs each, %d worker threads (GOMAXPROCS=%d), %s, %d CPUs online; %s; goroutine-lua %s; %s",
    RUNS, PROCS, PROCS, machine.cpu_model, machine.nproc or 0, machine.go_version,
    machine.lua_commit, machine.date),
  "",
  "| id | figure | goroutine-lua median [min–max] | Go median [min–max] | goroutine-lua / Go | target | met |",
  "| --- | --- | --- | --- | --- | --- | --- |",
}
local met_count, target_count = 0, 0
for _, e in ipairs(results) do
  for _, row in ipairs(e.rows) do
    local id = e.id
    if e.id == "W7" then id = string.format("W7 (%s leaves)", commas(e.leaves)) end
    local gl = fmt_range(row["goroutine-lua"], row.unit)
    local go = fmt_range(row.go, row.unit)
    if e.not_completed then gl = "not completed: " .. e.not_completed end
    local err = row.error or {}
    gl = gl or ("failed: " .. tostring(err["goroutine-lua"]))
    go = go or ("failed: " .. tostring(err.go))
    local met = "—"
    if row.target then
      target_count = target_count + 1
      if row.met then met_count = met_count + 1; met = "yes" else met = "**no**" end
    end
    lines[#lines + 1] = string.format("| %s | %s | %s | %s | %s | %s | %s |", id, row.figure, gl, go,
      ratio_text(row.ratio), target_text(row.target, row.unit), met)
  end
end
lines[#lines + 1] = ""
lines[#lines + 1] = string.format("%d of %d targets met. Load average %s at the start, %s at the end.",
  met_count, target_count, machine.loadavg_start, machine.loadavg_end)
local table_text = table.concat(lines, "\n") .. "\n"
io.write("\n", table_text)

os.execute("mkdir -p " .. OUTDIR)
local doc = { machine = machine, config = config, workloads = results, table_markdown = table_text,
              targets_met = met_count, targets = target_count }
local f = assert(io.open(OUTDIR .. "/latest.json", "w"))
f:write(json.encode(doc, true), "\n")
f:close()
f = assert(io.open(OUTDIR .. "/latest.md", "w"))
f:write(table_text)
f:close()
io.write("\nwrote ", OUTDIR, "/latest.json and ", OUTDIR, "/latest.md\n")
if failed then
  io.stderr:write("bench: some runs failed (see above and the runs in latest.json)\n")
  os.exit(1)
end
