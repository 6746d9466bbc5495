-- rwmutex_readers_writers.lua — many readers at once, or one writer alone.
--
-- Two accounts always hold 1000 between them. Writers move money from one
-- to the other in two steps (take, then give) under the write lock; readers
-- read both balances under the read lock. No reader ever sees a transfer
-- half done, and no writer ever runs while a reader is inside.
local goroutine = require "goroutine"

local TOTAL = 1000
local READERS, READS = 6, 200
local WRITERS, WRITES = 2, 100

local rw = goroutine.rwmutex()
local a, b = goroutine.atomic(600), goroutine.atomic(400)   -- the shared "accounts"
local inside = goroutine.atomic(0)       -- readers holding the read lock now
local reads, torn, crowded = goroutine.atomic(0), goroutine.atomic(0), goroutine.atomic(0)
local wg = goroutine.waitgroup()

-- Writer w moves money one way if w is odd, back if w is even, so the
-- balances end where they started.
local function writer(w)
  local from, to = a, b
  if w % 2 == 0 then from, to = b, a end
  for i = 1, WRITES do
    rw:lock()                             -- exclusive: no reader, no other writer
    if inside:load() ~= 0 then crowded:add(1) end
    local amount = i % 7 + 1
    from:add(-amount)
    goroutine.yield()                     -- switched out mid-transfer: still nobody sees it
    to:add(amount)
    rw:unlock()
  end
  wg:done()
end

local function reader()
  for _ = 1, READS do
    rw:rlock()                            -- shared: other readers may be inside too
    inside:add(1)
    local x = a:load()
    goroutine.yield()
    local y = b:load()
    inside:add(-1)
    rw:runlock()
    if x + y ~= TOTAL then torn:add(1) end
    reads:add(1)
  end
  wg:done()
end

wg:add(READERS + WRITERS)
for w = 1, WRITERS do goroutine.go(writer, w) end
for _ = 1, READERS do goroutine.go(reader) end
wg:wait()

print(("%d reads, %d saw a half-done transfer"):format(reads:load(), torn:load()))
print(("%d writes, %d found a reader inside"):format(WRITERS * WRITES, crowded:load()))
print(("balances: a = %d, b = %d, total = %d"):format(a:load(), b:load(), a:load() + b:load()))
