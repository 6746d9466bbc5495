-- sync: a mutex-guarded counter (checked against an atomic), a rwmutex,
-- a once, a cond with broadcast, all joined by a waitgroup.
local goroutine = require "goroutine"

local mu, rw, once = goroutine.mutex(), goroutine.rwmutex(), goroutine.once()
local cv = goroutine.cond(mu)
local count, inits, ready = goroutine.atomic(0), goroutine.atomic(0), goroutine.atomic(0)
local wg = goroutine.waitgroup()
local n, rounds = 4, 5
wg:add(n)
for w = 1, n do
  go(function()
    once:call(function() inits:add(1) end)
    for _ = 1, rounds do
      mu:lock()
      local v = count:load()
      goroutine.yield()
      count:store(v + 1)
      mu:unlock()
      rw:rlock(); assert(count:load() >= 1); rw:runlock()
    end
    rw:lock(); rw:unlock()
    mu:lock()
    ready:add(1)
    while ready:load() < n do cv:wait() end
    cv:broadcast()
    mu:unlock()
    wg:done()
  end)
end
wg:wait()
assert(count:load() == n * rounds, "lost updates: " .. count:load())
assert(inits:load() == 1, "once ran " .. inits:load() .. " times")
print("ok", count:load())
