-- chan: producers send tables over an unbuffered and a buffered channel;
-- the consumer checks what it gets is what was sent, once each.
local goroutine = require "goroutine"

local function produce(id, ch, n, wg)
  for i = 1, n do ch:send({ id = id, i = i, s = ("x"):rep(i * 20) }) end
  wg:done()
end

local function consume(ch, nproducers, n)
  local seen, count = {}, 0
  while true do
    local v, ok = ch:recv()
    if not ok then break end
    assert(type(v) == "table" and v.id >= 1 and v.id <= nproducers
           and v.i >= 1 and v.i <= n and v.s == ("x"):rep(v.i * 20),
           "received a value never sent")
    local key = v.id * 1000 + v.i
    assert(not seen[key], "received twice: " .. key)
    seen[key], count = true, count + 1
  end
  return count
end

for _, cap in ipairs({ 0, 4 }) do
  local ch, wg = goroutine.chan(cap), goroutine.waitgroup()
  wg:add(2)
  go(produce, 1, ch, 8, wg)
  go(produce, 2, ch, 8, wg)
  go(function(wg, ch) wg:wait(); ch:close() end, wg, ch)
  local count = consume(ch, 2, 8)
  assert(count == 16, "lost values: " .. count)
  print("cap", cap, count)
end
print("ok")
