-- worker_pool.lua — N workers take jobs from one channel and send results
-- on another; a wait group tells when to close the results.
local goroutine = require "goroutine"

local JOBS, WORKERS = 20, 4
local jobs = goroutine.chan(JOBS)         -- all jobs fit: queueing never blocks
local results = goroutine.chan()
local wg = goroutine.waitgroup()

-- The "work": how many Collatz steps take n to 1.
local function collatz(n)
  local steps = 0
  while n ~= 1 do
    if n % 2 == 0 then n = n // 2 else n = 3 * n + 1 end
    steps = steps + 1
  end
  return steps
end

local function worker(id)
  for n in jobs:range() do                -- until jobs is closed and drained
    results:send { job = n, steps = collatz(n), worker = id }
  end
  wg:done()
end

wg:add(WORKERS)
for id = 1, WORKERS do goroutine.go(worker, id) end

for n = 1, JOBS do jobs:send(n) end
jobs:close()                              -- workers finish what is queued, then stop

-- Close results once every worker is done, so the range below ends.
goroutine.go(function()
  wg:wait()
  results:close()
end)

local steps, total, count = {}, 0, 0
for r in results:range() do               -- results arrive in any order...
  steps[r.job] = r.steps
  total = total + r.steps
  count = count + 1
end
for n = 1, JOBS do                        -- ...so print them by job
  print(("job %2d: %3d steps"):format(n, steps[n]))
end
print(("%d results, %d steps in all"):format(count, total))
