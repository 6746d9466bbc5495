-- spec/repl_spec.lua — the REPL survives what ends a script (API.md, Ways
-- to run it): a goroutine's uncaught error is reported and the prompt comes
-- back; a line that would deadlock fails with "all goroutines are asleep -
-- deadlock!"; Ctrl-C interrupts the line, computing or waiting, and the
-- interrupted operation did nothing (a value delivered or not sent, a lock
-- held or not). Driven through a pipe and, as a person uses it, on a real
-- terminal (tmux: send-keys, capture-pane).
--
-- Ctrl-C through a pipe is a SIGINT that a goroutine sends the process; it
-- may arrive before the main goroutine has blocked or after: either way the
-- line must fail with "interrupted!" having done nothing, which is what the
-- cases check. On the terminal, each step waits until the screen shows
-- what the step before produced (bounded by a deadline), never a fixed
-- time.
local describe, it, assert, pending = describe, it, assert, pending
local support = require "support"
local goroutine = require "goroutine"
local _ENV = _G

local has = support.has
local TIMEOUT = os.getenv("CLI_TIMEOUT") or "60"
local CLEAN_ENV = "env -u LUA_INIT -u LUA_INIT_5_4 -u LUA_PATH_5_4 -u LUA_CPATH_5_4"

-- goroutine-lua -i with 'input' on stdin.
local function repl(input)
  return support.sh(CLEAN_ENV .. " timeout " .. TIMEOUT .. " " ..
    support.quote(support.bin) .. " -i", { stdin = input })
end

-- A script, run with a deadline.
local function script(code)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "wb")); f:write(code); f:close()
  local r = support.sh(CLEAN_ENV .. " timeout " .. TIMEOUT .. " " ..
    support.quote(support.bin) .. " " .. support.quote(path))
  os.remove(path)
  return r
end

-- Lua source: a goroutine that sends SIGINT to this process (Ctrl-C).
local CTRL_C = [[go(function(pid) io.popen("kill -INT " .. pid):close() end, ]] ..
  [[io.open("/proc/self/stat"):read("l"):match("^%d+"))]]

local count = support.count

describe("the REPL, through a pipe", function()
  it("reports a goroutine's uncaught error as a script does, and goes on", function()
    local r = repl(table.concat({
      "done = goroutine.chan()",
      "go(function(d) d:close() error('boom') end, done)",
      "done:recv()",
      "goroutine.sleep(0.01)",           -- nothing waits for the report itself
      "print('still ' .. 'here')",
    }, "\n") .. "\n")
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stderr:find("goroutine %d+ %[error%]:\nstdin:1: boom\nstack traceback:\n"), r.stderr)
    assert.truthy(has(r.stdout, "\nstill here\n"), r.stdout)
  end)

  it("fails a line that would deadlock, and the goroutines stay as they were", function()
    local r = repl(table.concat({
      "c, blocked, out = goroutine.chan(), goroutine.chan(), goroutine.chan(1)",
      "go(function(b, o) o:send(b:recv() * 2) end, blocked, out)",
      "c:recv()",
      "print('after the deadlock')",
      "blocked:send(21)",
      "=out:recv()",
      "go(function(c) c:send('late') end, c)",
      "=c:recv()",
    }, "\n") .. "\n")
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stderr:find("^stdin:1: all goroutines are asleep %- deadlock!\nstack traceback:\n"), r.stderr)
    assert.is_false(has(r.stderr, "fatal error"), r.stderr)
    assert.truthy(has(r.stdout, "\nafter the deadlock\n"), r.stdout)
    assert.truthy(has(r.stdout, "\n42\ttrue\n"), r.stdout)
    assert.truthy(has(r.stdout, "\nlate\ttrue\n"), r.stdout)
  end)

  it("fails every kind of wait that would deadlock: select, lock, wait group, cond", function()
    local r = repl(table.concat({
      "a, b = goroutine.chan(), goroutine.chan()",
      "goroutine.select { { recv = a }, { send = b, value = 1 } }",
      "m = goroutine.mutex(); m:lock()",
      "m:lock()",
      "wg = goroutine.waitgroup(); wg:add(1)",
      "wg:wait()",
      "cv = goroutine.cond(m)",
      "cv:wait()",
      "goroutine.select {}",
      "print('survived ' .. 5)",
    }, "\n") .. "\n")
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(5, count(r.stderr, "all goroutines are asleep - deadlock!"), r.stderr)
    assert.truthy(has(r.stdout, "\nsurvived 5\n"), r.stdout)
  end)

  it("leaves a deadlocked send unsent: no receiver gets its value later", function()
    local r = repl(table.concat({
      "c = goroutine.chan()",
      "c:send('never')",
      "=c:tryrecv()",
    }, "\n") .. "\n")
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(has(r.stderr, "all goroutines are asleep - deadlock!"), r.stderr)
    assert.truthy(has(r.stdout, "\nnil\tfalse\n"), r.stdout)
  end)

  it("interrupts a line waiting on a channel (Ctrl-C) with 'interrupted!'", function()
    local r = repl(table.concat({
      "c = goroutine.chan(); go(function() goroutine.sleep(3600) end)",
      CTRL_C .. "; c:recv()",
      "print('back at ' .. 'the prompt')",
    }, "\n") .. "\n")
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stderr:find("^stdin:1: interrupted!\nstack traceback:\n"), r.stderr)
    assert.truthy(has(r.stdout, "\nback at the prompt\n"), r.stdout)
  end)

  it("says which global a goroutine found nil, and why", function()
    local r = repl(table.concat({
      "ch, done = goroutine.chan(1), goroutine.chan()",
      "go(function(d) d:close(); ch:send(1) end, done)",
      "done:recv(); goroutine.sleep(0.01)",
    }, "\n") .. "\n")
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(has(r.stderr, "attempt to index a nil value (global 'ch')"), r.stderr)
    assert.truthy(has(r.stderr, "\nnote: 'ch' is nil here because globals are not shared " ..
      "between goroutines: pass it to go() as an argument, or capture it in a local\n"), r.stderr)
  end)
end)

describe("Ctrl-C in a script", function()
  -- One Ctrl-C per run (lua5.4 kills at a second one while the first is
  -- pending): each case is its own script. 'wait' blocks the main
  -- goroutine; 'after' checks that the interrupted operation did nothing.
  local cases = {
    { "a receive, which takes nothing later", "c:recv()",
      "assert(c:trysend(1) == false, 'a receiver was left behind')" },
    { "a send, which sends nothing later", "c:send('never')",
      "assert(select(2, c:tryrecv()) == false, 'the value was delivered')" },
    { "a select, which leaves none of its cases behind",
      "goroutine.select { { recv = c }, { send = d, value = 'never' } }",
      "assert(c:trysend(1) == false); assert(select(2, d:tryrecv()) == false)" },
    { "a lock, which is then not held", "m:lock()",
      "release:send(true); released:recv(); assert(m:trylock(), 'the lock went to the interrupted wait')" },
    { "a wait group's wait", "wg:wait()",
      "wg:done(); wg:add(1); go(function(wg) wg:done() end, wg); wg:wait()" },
    { "a cond's wait, which returns without the lock", "cm:lock(); cv:wait()",
      "cv:signal(); assert(cm:trylock(), 'the mutex is held')" },
    { "a sleep", "goroutine.sleep(3600)", "" },
  }
  for _, case in ipairs(cases) do
    local what, wait, after = case[1], case[2], case[3]
    it("interrupts " .. what, function()
      local r = script([[
        c, d, m, wg = goroutine.chan(), goroutine.chan(), goroutine.mutex(), goroutine.waitgroup()
        cm = goroutine.mutex(); cv = goroutine.cond(cm)
        release, released = goroutine.chan(), goroutine.chan()
        go(function(m, release, released)            -- holds m until released
          m:lock(); released:send(true); release:recv(); m:unlock(); released:send(true)
        end, m, release, released)
        released:recv()
        wg:add(1)
        go(function() goroutine.sleep(3600) end)     -- a timer: no deadlock
        ]] .. CTRL_C .. [[

        local ok, err = pcall(function() ]] .. wait .. [[ end)
        assert(not ok and err:find("interrupted!", 1, true), "the wait returned: " .. tostring(err))
        ]] .. after .. [[

        print("interrupted, and nothing half-done")
      ]])
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("interrupted, and nothing half-done\n", r.stdout)
    end)
  end
end)

describe("the REPL on a terminal", function()
  local has_tmux = support.sh("command -v tmux").status == 0
  local test = has_tmux and it or pending

  -- A goroutine-lua REPL in a tmux pane of its own server.
  local function terminal()
    local sock = os.tmpname()
    os.remove(sock)
    local tmux = "tmux -S " .. support.quote(sock) .. " "
    local cmd = CLEAN_ENV .. " " .. support.quote(support.bin)
    local r = support.sh(tmux .. "new-session -d -x 160 -y 50 " .. support.quote(cmd) ..
      " \\; set-option -g remain-on-exit on")
    assert(r.status == 0, "tmux: " .. r.stderr)
    local t = {}
    function t.screen()
      return support.sh(tmux .. "capture-pane -p -N -S -500").stdout
    end
    -- Wait until the screen shows 'text' n times (default 1); returns it.
    function t.wait(text, n)
      local deadline = goroutine.now() + tonumber(TIMEOUT)
      local screen
      repeat
        screen = t.screen()
        if count(screen, text) >= (n or 1) then return screen end
        goroutine.sleep(0.02)
      until goroutine.now() > deadline
      error("the screen never showed " .. string.format("%q", text) .. ":\n" .. screen)
    end
    function t.type(text) support.sh(tmux .. "send-keys -l " .. support.quote(text)) end
    function t.key(k) support.sh(tmux .. "send-keys " .. k) end
    function t.line(text) t.type(text); t.key("Enter") end
    function t.alive()
      return support.sh(tmux .. "display-message -p '#{pane_dead}'").stdout == "0\n"
    end
    function t.close() support.sh(tmux .. "kill-server"); os.remove(sock) end
    t.wait("> ")
    return t
  end

  test("reports a goroutine's error, also while the user types, and keeps the typed line", function()
    local t = terminal()
    t.line("go(function() error('boom') end)")
    t.wait("stdin:1: boom")
    t.line("print('alive' .. 1)")
    t.wait("alive1")
    t.line("go(function() goroutine.sleep(0.2) error('late') end)")
    t.type("x = 'half typed")
    local screen = t.wait("stdin:1: late")
    t.wait("> x = 'half typed")             -- drawn again below the report
    t.type("'")
    t.key("Enter")
    t.line("=x")
    screen = t.wait("\nhalf typed\n")
    assert.truthy(screen:find("goroutine %d+ %[error%]:\nstdin:1: late\nstack traceback:"), screen)
    assert.is_true(t.alive())
    t.close()
  end)

  test("fails a line that would deadlock and gives the prompt back", function()
    local t = terminal()
    t.line("c = goroutine.chan()")
    t.line("c:recv()")
    t.wait("stdin:1: all goroutines are asleep - deadlock!")
    t.line("go(function(c) c:send('after') end, c)")
    t.line("=c:recv()")
    t.wait("\nafter   true\n")   -- the terminal expands the tab
    assert.is_true(t.alive())
    t.close()
  end)

  test("Ctrl-C interrupts a line that waits, then one that computes, and the prompt comes back", function()
    local t = terminal()
    t.line("c = goroutine.chan(); go(function() goroutine.sleep(3600) end)")
    t.line("print('wait' .. 'ing'); c:recv()")
    t.wait("\nwaiting\n")
    t.key("C-c")
    t.wait("interrupted!")
    t.line("print('loop' .. 'ing'); while true do end")
    t.wait("\nlooping\n")
    t.key("C-c")
    t.wait("interrupted!", 2)
    t.line("=c:tryrecv()")
    t.wait("\nnil     false\n")
    assert.is_true(t.alive())
    t.close()
  end)

  test("Ctrl-C at the prompt drops the line being typed; only end of input leaves", function()
    local t = terminal()
    t.type("dropped = 1")
    t.wait("> dropped = 1")
    t.key("C-c")
    t.wait("dropped = 1^C")
    t.line("=dropped")
    t.wait("\nnil\n")
    assert.is_true(t.alive())
    t.key("C-d")
    local deadline = goroutine.now() + tonumber(TIMEOUT)
    while t.alive() and goroutine.now() < deadline do goroutine.sleep(0.02) end
    assert.is_false(t.alive())
    t.close()
  end)
end)
