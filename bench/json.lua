-- bench/json.lua — the little JSON the runner and the plotter need: encode
-- Lua values (tables with only keys 1..n are arrays, other tables objects
-- with sorted keys, so the output is stable) and decode what it wrote.
local json = {}

local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function isarray(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do if t[i] == nil then return false end end
  return true, n
end

local function enc(v, indent, out)
  local t = type(v)
  if v == nil or v == json.null then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif math.type(v) == "integer" then out[#out + 1] = string.format("%d", v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    else
      local s = string.format("%.15g", v)          -- the shortest that reads back
      if tonumber(s) ~= v then s = string.format("%.17g", v) end
      if not s:find("[.eEn]") then s = s .. ".0" end
      out[#out + 1] = s
    end
  elseif t == "string" then out[#out + 1] = quote(v)
  elseif t == "table" then
    local inner = indent and indent .. "  "
    local nl = indent and "\n" .. inner or ""
    local arr, n = isarray(v)
    if arr and n == 0 and next(v) == nil and not getmetatable(v) then
      out[#out + 1] = "[]"
      return
    end
    if arr then
      out[#out + 1] = "["
      for i = 1, n do
        out[#out + 1] = (i > 1 and "," or "") .. nl
        enc(v[i], inner, out)
      end
      out[#out + 1] = (indent and "\n" .. indent or "") .. "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        out[#out + 1] = (i > 1 and "," or "") .. nl .. quote(k) .. (indent and ": " or ":")
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        enc(val, inner, out)
      end
      out[#out + 1] = (indent and "\n" .. indent or "") .. "}"
    end
  else
    error("json: cannot encode " .. t)
  end
end

-- pretty: indent nested values two spaces a level.
function json.encode(v, pretty)
  local out = {}
  enc(v, pretty and "" or nil, out)
  return table.concat(out)
end

json.null = setmetatable({}, { __tostring = function() return "null" end })

function json.decode(s)
  local pos = 1
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local function err(what) error(("json: %s at byte %d"):format(what, pos), 0) end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local a, b, chunk, stop = s:find('^([^"\\]*)(["\\])', pos)
      if not a then err("unterminated string") end
      out[#out + 1] = chunk
      pos = b + 1
      if stop == '"' then return table.concat(out) end
      local e = s:sub(pos, pos)
      if e == "u" then
        out[#out + 1] = utf8.char(tonumber(s:sub(pos + 1, pos + 4), 16))
        pos = pos + 5
      else
        out[#out + 1] = ({ b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" })[e] or e
        pos = pos + 1
      end
    end
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then err("expected a key") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then err("expected ':'") end
        pos = pos + 1
        t[k] = value()
        ws()
        c = s:sub(pos, pos); pos = pos + 1
        if c == "}" then return t end
        if c ~= "," then err("expected ',' or '}'") end
      end
    elseif c == "[" then
      local t = {}
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value()
        ws()
        c = s:sub(pos, pos); pos = pos + 1
        if c == "]" then return t end
        if c ~= "," then err("expected ',' or ']'") end
      end
    elseif c == '"' then return str()
    elseif s:find("^true", pos) then pos = pos + 4; return true
    elseif s:find("^false", pos) then pos = pos + 5; return false
    elseif s:find("^null", pos) then pos = pos + 4; return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then err("unexpected character") end
      pos = pos + #num
      if num:find("[.eE]") then return tonumber(num) + 0.0 end
      return math.tointeger(tonumber(num)) or tonumber(num)
    end
  end
  local v = value()
  ws()
  if pos <= #s then err("trailing characters") end
  return v
end

return json
