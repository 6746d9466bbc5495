-- bench/plot.lua — draw bench/results/latest.json as one self-contained
-- HTML page (inline SVG, no scripts, no external files):
--   lua5.4 bench/plot.lua [bench/results/latest.json [bench/results/latest.html]]
-- One bar per figure that has a target, on a log scale of "share of the
-- target": the measured ratio goroutine-lua / Go (or goroutine-lua's own
-- figure, for an absolute target) divided by the target, inverted where
-- lower is better, so 1 is the target line and a bar that crosses it meets it.
package.path = "bench/?.lua;" .. package.path
local json = require "json"

local input = arg[1] or "bench/results/latest.json"
local output = arg[2] or input:gsub("%.json$", "") .. ".html"
local f = assert(io.open(input, "r"))
local doc = json.decode(f:read("a"))
f:close()

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function sig(x, n)
  if x == 0 then return "0" end
  local d = math.max(0, n - 1 - math.floor(math.log(math.abs(x), 10)))
  return string.format("%." .. d .. "f", x)
end

local function commas(n)
  local s = string.format("%.0f", n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- --------------------------------------------------------- bars to draw
local bars = {}
for _, w in ipairs(doc.workloads) do
  for _, row in ipairs(w.rows) do
    local t = row.target
    if t then
      local gl = row["goroutine-lua"]
      local x = t.kind == "ratio" and row.ratio or (gl and gl.median)
      local share
      if x and x > 0 then share = t.op == ">=" and x / t.value or t.value / x end
      local label = w.id
      if w.id == "W7" then label = string.format("W7 %s", w.leaves >= 1e6 and "10⁶" or sig(w.leaves, 1)) end
      local what
      if t.kind == "ratio" then
        what = x and string.format("%s× Go, target %s %g×", sig(x, 3), t.op == "<=" and "≤" or "≥", t.value)
      elseif row.unit == "kB" then
        what = x and string.format("%s GB, target ≤ %g GB", sig(x * 1024 / 1e9, 3), t.value * 1024 / 1e9)
      elseif row.unit == "x" then
        what = x and string.format("%.2f×, target %s %g×", x, t.op == "<=" and "≤" or "≥", t.value)
      else
        what = x and string.format("%s %s, target %s %s %s", commas(x), row.unit,
          t.op == "<=" and "≤" or "≥", commas(t.value), row.unit)
      end
      if w.not_completed then what = "not completed: " .. w.not_completed; share = nil end
      bars[#bars + 1] = { label = label .. " " .. row.figure, share = share, met = row.met,
                          text = what or "no figure" }
    end
  end
end

-- ------------------------------------------------------------------ svg
local LEFT, WIDTH, ROW, TOP = 260, 420, 26, 30
local LO, HI = -3, 1                         -- log10 range: 0.001 .. 10
local function xpos(share)
  local l = math.log(math.max(math.min(share, 10 ^ HI), 10 ^ LO), 10)
  return LEFT + (l - LO) / (HI - LO) * WIDTH
end
local H = TOP + #bars * ROW + 30
local svg = { string.format(
  '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">',
  LEFT + WIDTH + 330, H) }
local function add(fmt, ...) svg[#svg + 1] = string.format(fmt, ...) end
for e = LO, HI do
  local x = xpos(10 ^ e)
  add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>', x, TOP - 8, x, H - 24)
  add('<text x="%.1f" y="%d" text-anchor="middle" fill="#666">%s</text>', x, H - 8,
    e >= 0 and string.format("%g×", 10 ^ e) or string.format("1/%d", math.floor(10 ^ -e + 0.5)))
end
for i, b in ipairs(bars) do
  local y = TOP + (i - 1) * ROW
  add('<text x="%d" y="%d" text-anchor="end">%s</text>', LEFT - 8, y + 15, esc(b.label))
  if b.share then
    local color = b.met and "#2e8b57" or "#c0392b"
    add('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>',
      LEFT, y + 3, xpos(b.share) - LEFT, ROW - 8, color, esc(b.text))
  end
  add('<text x="%d" y="%d" fill="#333">%s</text>', LEFT + WIDTH + 10, y + 15,
    esc((b.met and "✔ " or "✘ ") .. b.text))
end
local t1 = xpos(1)
add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-width="2" stroke-dasharray="4 3"/>',
  t1, TOP - 12, t1, H - 24)
add('<text x="%.1f" y="%d" text-anchor="middle">target</text>', t1, TOP - 16)
svg[#svg + 1] = "</svg>"

-- --------------------------------------------------------------- table
local function md_table(md)
  local out, header, intable = {}, true, false
  for line in md:gmatch("[^\n]+") do
    if line:match("^|") then
      if not intable then out[#out + 1] = "<table>"; intable = true end
      if not line:match("^| %-%-%-") then
        local cells = {}
        for cell in line:gmatch("|%s*([^|]-)%s*%f[|]") do
          cells[#cells + 1] = (esc(cell):gsub("%*%*(.-)%*%*", "<b>%1</b>"))
        end
        local tag = header and "th" or "td"
        out[#out + 1] = "<tr><" .. tag .. ">" .. table.concat(cells, "</" .. tag .. "><" .. tag .. ">")
          .. "</" .. tag .. "></tr>"
        header = false
      end
    else
      if intable then out[#out + 1] = "</table>"; intable = false end
      if line ~= "" then out[#out + 1] = "<p>" .. esc(line) .. "</p>" end
    end
  end
  if intable then out[#out + 1] = "</table>" end
  return table.concat(out, "\n")
end

local m = doc.machine
local page = {
  "<!DOCTYPE html>",
  '<html lang="en"><head><meta charset="utf-8"><title>goroutine-lua benchmarks</title>',
  "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}" ..
  "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}th{background:#f4f4f4}" ..
  ".meta{color:#555;font-size:13px}</style></head><body>",
  "<h1>goroutine-lua against Go</h1>",
  string.format('<p class="meta">%s · %s CPUs online · %d worker threads (GOMAXPROCS) · %d runs each · %s · goroutine-lua %s · %s</p>',
    esc(m.cpu_model), esc(m.nproc), doc.config.procs, doc.config.runs, esc(m.go_version),
    esc(m.lua_commit), esc(m.date)),
  string.format("<h2>Share of the target (issue 5): %d of %d met</h2>", doc.targets_met, doc.targets),
  '<p class="meta">Each bar is the figure divided by its target (inverted where lower is better), on a log scale: ' ..
  "a bar that reaches the dashed line meets its target. Ratios are goroutine-lua / Go, medians of the runs.</p>",
  table.concat(svg, "\n"),
  "<h2>Figures</h2>",
  md_table(doc.table_markdown),
  "</body></html>",
}
f = assert(io.open(output, "w"))
f:write(table.concat(page, "\n"), "\n")
f:close()
print("wrote " .. output)
