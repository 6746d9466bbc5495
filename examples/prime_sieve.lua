-- prime_sieve.lua — Go's concurrent prime sieve: a chain of goroutines,
-- each filtering out the multiples of one prime.
--
--   generate -> filter(2) -> filter(3) -> filter(5) -> ... -> main
local goroutine = require "goroutine"

-- Send 2, 3, 4, ... to ch, forever.
local function generate(ch)
  local i = 2
  while true do
    ch:send(i)
    i = i + 1
  end
end

-- Copy the values from input to output, leaving out multiples of prime.
local function filter(input, output, prime)
  while true do
    local i = input:recv()
    if i % prime ~= 0 then output:send(i) end
  end
end

local ch = goroutine.chan()
goroutine.go(generate, ch)
for _ = 1, 20 do
  local prime = ch:recv()                 -- the first number through the chain is prime
  print(prime)
  local next_ch = goroutine.chan()
  goroutine.go(filter, ch, next_ch, prime)
  ch = next_ch                            -- main now reads from the end of the chain
end
-- Main returns: the program exits and the filter goroutines stop with it.
