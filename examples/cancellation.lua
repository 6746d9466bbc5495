-- cancellation.lua — stop goroutines by closing a `done` channel.
--
-- A receive from a closed channel never blocks, so every goroutine that
-- has `{ recv = done }` among its select cases sees the close at once:
-- one close cancels any number of goroutines (Go's done channel, the idea
-- behind context.Context).
local goroutine = require "goroutine"

-- 1. A generator that runs until cancelled: it offers the next square on
-- out, or stops when done is closed, whichever comes first.
local function squares(done, out, stopped)
  local n = 1
  while true do
    local cancelled = goroutine.select {
      { send = out, value = n * n, function() n = n + 1 end },
      { recv = done, function() return true end },
    }
    if cancelled then break end
  end
  stopped:send(n - 1)                       -- how many squares it sent
end

local done, out, stopped = goroutine.chan(), goroutine.chan(), goroutine.chan()
goroutine.go(squares, done, out, stopped)
local first = {}
for i = 1, 5 do first[i] = out:recv() end
print("first squares: " .. table.concat(first, " "))
done:close()                                -- cancel the generator
print("generator stopped after sending " .. stopped:recv())

-- 2. Workers that process jobs until cancelled. Each sends results until
-- done is closed; a worker blocked on a send is woken by the close too.
local WORKERS, WANTED = 3, 10
local results = goroutine.chan()
local cancel = goroutine.chan()
local sent = goroutine.chan(WORKERS)
local wg = goroutine.waitgroup()

local function worker(id, cancel, results, sent, wg)
  local count = 0
  while true do
    local stop = goroutine.select {
      { send = results, value = { worker = id, job = count + 1 }, function() count = count + 1 end },
      { recv = cancel, function() return true end },
    }
    if stop then break end
  end
  sent:send(count)
  wg:done()
end

wg:add(WORKERS)
for id = 1, WORKERS do goroutine.go(worker, id, cancel, results, sent, wg) end

local per_worker = {}
for _ = 1, WANTED do
  local r = results:recv()                  -- from any worker, in any order
  per_worker[r.worker] = (per_worker[r.worker] or 0) + 1
end
local got = 0
for _, n in pairs(per_worker) do got = got + n end
print("received " .. got .. " results")
cancel:close()                              -- one close stops every worker
wg:wait()
local total = 0
for _ = 1, WORKERS do total = total + sent:recv() end
print(WORKERS .. " workers stopped; they sent " .. total .. " results in all")
