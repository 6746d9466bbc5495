-- bench/lua/lib.lua — what every workload shares: the clock, /proc/self/status
-- readings, the result check and the one line of JSON a workload prints.
-- Loaded by the workloads with dofile (it is not a module on package.path).
local goroutine = require "goroutine"

local B = {}

B.now = goroutine.now
B.procs = goroutine.maxprocs()

-- A field of /proc/self/status in kB (VmHWM = peak RSS, VmRSS = RSS now).
function B.status_kb(field)
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local kb = text:match(field .. ":%s*(%d+)%s*kB")
  return kb and tonumber(kb) or nil
end

-- Exit non-zero (after saying why on stderr) when a result is wrong.
function B.check(ok, what, ...)
  if not ok then
    io.stderr:write("CHECK FAILED: ", string.format(what, ...), "\n")
    os.exit(3)
  end
end

local function encode(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if type(v) == "number" then return string.format("%.6g", v) end
  if type(v) == "boolean" then return tostring(v) end
  return string.format("%q", tostring(v))
end

-- Print one JSON line: the id, figure, value and unit first, then the extras
-- in name order, then procs and peak RSS (rss_kb) read at the very end.
function B.report(id, figure, value, unit, extra)
  extra = extra or {}
  extra.procs = B.procs
  extra.rss_kb = extra.rss_kb or B.status_kb("VmHWM")
  local parts = {
    '"id":' .. encode(id), '"figure":' .. encode(figure),
    '"value":' .. encode(value), '"unit":' .. encode(unit),
    '"impl":"goroutine-lua"',
  }
  local keys = {}
  for k in pairs(extra) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = encode(k) .. ":" .. encode(extra[k]) end
  io.write("{", table.concat(parts, ","), "}\n")
  io.stdout:flush()
end

return B
