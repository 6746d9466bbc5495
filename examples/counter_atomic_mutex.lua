-- counter_atomic_mutex.lua — counting from many goroutines: what does NOT
-- work (a captured local), and two ways that do (an atomic, a mutex).
local goroutine = require "goroutine"

local N, ADDS = 8, 1000
local wg = goroutine.waitgroup()

-- Run body() in N goroutines and wait for all of them.
local function fan_out(body)
  wg:add(N)
  for i = 1, N do
    goroutine.go(function() body(i); wg:done() end)
  end
  wg:wait()
end

-- 1. A captured local is a COPY. Each goroutine gets its own `counter`
-- (upvalues are copied like every value that crosses), so the main one
-- never changes. In Go this would be a data race; here it is simply a copy.
local counter = 0
fan_out(function()
  for _ = 1, ADDS do counter = counter + 1 end
end)
print("captured local:   " .. counter)

-- 2. An atomic is a handle: every goroutine sees the same integer.
local hits = goroutine.atomic(0)
fan_out(function()
  for _ = 1, ADDS do hits:add(1) end
end)
print("atomic add:       " .. hits:load())

-- compare-and-swap loop: keep the largest value any goroutine offers.
local max = goroutine.atomic(0)
fan_out(function(i)
  local offer = i * 10
  repeat
    local old = max:load()
  until old >= offer or max:cas(old, offer)
end)
print("atomic cas max:   " .. max:load())

-- 3. A mutex guards a compound operation. load-then-store is two steps;
-- without the lock another goroutine could store in between and an
-- increment would be lost. (A mutex cannot guard a Lua variable here —
-- each goroutine has its own variables — it guards shared things.)
local mu = goroutine.mutex()
local cell = goroutine.atomic(0)
fan_out(function()
  for _ = 1, ADDS do
    mu:lock()
    local v = cell:load()
    goroutine.yield()                     -- even if we are switched out here...
    cell:store(v + 1)                     -- ...nobody else stored in between
    mu:unlock()
  end
end)
print("mutex-guarded:    " .. cell:load())
