-- deadlock.lua — a deadlock the runtime reports, instead of hanging.
--
-- Three workers range over a jobs channel until it is closed. Main queues
-- five jobs, forgets to close the channel, and waits for the workers. Once
-- the jobs are done every goroutine waits for something no goroutine can
-- do any more: the workers for a job or a close, main for the workers.
-- goroutine-lua sees that nothing can wake any of them (no timer is
-- pending either) and ends the program with status 2, printing on stderr
--
--   fatal error: all goroutines are asleep - deadlock!
--
--   goroutine 1 [sync.WaitGroup.Wait]:
--   	[C]: in function 'wait'
--   	examples/deadlock.lua:45: in main chunk
--   	[C]: in ?
--
--   goroutine 2 [chan receive]:
--   	[C]: in function 'for iterator'
--   	examples/deadlock.lua:33: in function <examples/deadlock.lua:32>
--   	[C]: in ?
--
--   (and the same for goroutines 3 and 4)
--
-- The fix is the commented-out line: close jobs when the last job is sent.
local goroutine = require "goroutine"

local WORKERS, JOBS = 3, 5
local jobs = goroutine.chan(JOBS)
local done = goroutine.atomic()
local wg = goroutine.waitgroup()

local function worker()
  for job in jobs:range() do              -- waits here for a job or a close
    done:add(job)
  end
  wg:done()
end

wg:add(WORKERS)
for _ = 1, WORKERS do goroutine.go(worker) end

for job = 1, JOBS do jobs:send(job) end
-- jobs:close()                           -- the fix
print("queued " .. JOBS .. " jobs")
wg:wait()                                 -- deadlock: the workers never return
print("all done")                         -- never reached
