-- spec/embed_spec.lua — the embedding example (examples/embed/host.c, built
-- by make as build/embed-example) runs and prints what host.expected says:
-- an init hook's C function (host.log) in every goroutine, a pool of Lua
-- goroutines started from C with channel arguments, jobs fed from a host
-- thread, results collected and checked, a clean shutdown.  And the ten
-- lines of C the README shows are examples/embed/hello.c, word for word
-- (spec/install_spec.lua builds and runs that file).
local support = require "support"

local build_dir = support.bin:match("^(.*)/[^/]*$") or "."
local example = build_dir .. "/embed-example"

local slurp = support.read_file

describe("the embedding example", function()
  it("runs its worker pool from C and prints exactly host.expected", function()
    assert.is_truthy(slurp(example), "no " .. example .. ": make builds it")
    local r = support.sh(("timeout 120 %s examples/embed/worker.lua"):format(support.quote(example)))
    assert.are.equal(slurp("examples/embed/host.expected"), r.stdout)
    assert.are.equal(0, r.status, r.stderr)
  end)

  it("logs through host.log from every worker goroutine, twice each", function()
    local r = support.sh(("timeout 120 %s examples/embed/worker.lua"):format(support.quote(example)))
    local starting, done = {}, {}
    for w in r.stderr:gmatch("host%.log: worker (%d) starting\n") do starting[#starting + 1] = w end
    for w in r.stderr:gmatch("host%.log: worker (%d) done after %d+ jobs?\n") do done[#done + 1] = w end
    table.sort(starting)
    table.sort(done)
    assert.are.same({ "1", "2", "3", "4" }, starting)
    assert.are.same({ "1", "2", "3", "4" }, done)
  end)

  it("reports a worker that cannot be read, with status 1", function()
    local r = support.sh(("timeout 120 %s /nonexistent/worker.lua"):format(support.quote(example)))
    assert.are.equal(1, r.status)
    assert.matches("cannot read /nonexistent/worker.lua", r.stderr, 1, true)
  end)
end)

describe("the README", function()
  it("shows examples/embed/hello.c as its ten lines of C", function()
    local readme, hello = slurp("README.md"), slurp("examples/embed/hello.c")
    assert.is_truthy(hello)
    assert.is_truthy(readme:find("```c\n" .. hello .. "```", 1, true),
      "README.md must show examples/embed/hello.c verbatim in a ```c block")
  end)
end)
