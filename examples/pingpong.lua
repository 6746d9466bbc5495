-- pingpong.lua — two goroutines bounce a ball over two unbuffered channels.
--
-- An unbuffered send completes only when the other side receives, so the
-- players strictly alternate and the output order is fixed. The ball is a
-- table: every send copies it, and each player hits its own copy.
local goroutine = require "goroutine"

local HITS = 10
local ping, pong = goroutine.chan(), goroutine.chan()
local done = goroutine.chan()

-- One function, two goroutines: go(player, ...) copies it and its arguments.
local function player(name, from, to)
  while true do
    local ball = from:recv()
    ball.hits = ball.hits + 1
    print(("%s %2d"):format(name, ball.hits))
    if ball.hits == HITS then
      done:send(ball)                     -- game over: hand the ball to main
      return
    end
    to:send(ball)
  end
end

goroutine.go(player, "ping", ping, pong)
goroutine.go(player, "pong", pong, ping)

ping:send { hits = 0 }                    -- serve
local ball = done:recv()
print(("ball hit %d times"):format(ball.hits))
-- The other player is still waiting on its channel; when main returns the
-- program exits and stops it, as in Go.
