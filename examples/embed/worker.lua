-- worker.lua — one goroutine of the pool that examples/embed/host.c starts.
--
-- Its arguments (the ... of the chunk) come from gr_go in C: the jobs
-- channel, the results channel and this worker's number.  'host' is the
-- library the host's init hook opened in every goroutine state.
local jobs, results, me = ...

host.log("worker " .. me .. " starting")
local count = 0
for n in jobs:range() do                      -- until the host closes jobs
  results:send({ job = n, square = n * n, worker = me })
  count = count + 1
end
host.log(("worker %d done after %d job%s"):format(me, count, count == 1 and "" or "s"))
results:send({ done = true, worker = me, count = count })
