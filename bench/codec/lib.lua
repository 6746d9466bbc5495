-- bench/codec/lib.lua — what the codec benchmarks share: a clock, a way to
-- time a function over enough runs, and the printed table.  Loaded with
-- dofile (not a module on package.path).
local goroutine = require "goroutine"

local C = {}

C.now = goroutine.now

-- Run f() 'reps' times per round until at least 'min_s' seconds have passed
-- (3 rounds at least); returns the best seconds per call.
function C.time(f, reps, min_s)
  reps, min_s = reps or 1, min_s or 0.5
  local best, spent, rounds = math.huge, 0, 0
  while rounds < 3 or spent < min_s do
    collectgarbage()
    local t0 = C.now()
    for _ = 1, reps do f() end
    local dt = C.now() - t0
    spent, rounds = spent + dt, rounds + 1
    if dt / reps < best then best = dt / reps end
  end
  return best
end

-- Exit non-zero (after saying why on stderr) when a result is wrong.
function C.check(ok, what, ...)
  if not ok then
    io.stderr:write("CHECK FAILED: ", string.format(what, ...), "\n")
    os.exit(3)
  end
end

local function si(x)
  if x >= 1e9 then return string.format("%.2f G", x / 1e9) end
  if x >= 1e6 then return string.format("%.2f M", x / 1e6) end
  if x >= 1e3 then return string.format("%.1f k", x / 1e3) end
  return string.format("%.1f ", x)
end
C.si = si

-- rows: { {name, value, unit, yardstick value}, ... }
function C.print(title, rows)
  print(title)
  print(string.format("  %-34s %14s %14s %8s", "", "goroutine", "string.pack", "ratio"))
  for _, r in ipairs(rows) do
    print(string.format("  %-34s %12s%-2s %12s%-2s %7.2fx", r[1], si(r[2]), r[3],
                        si(r[4]), r[3], r[2] / r[4]))
  end
end

return C
