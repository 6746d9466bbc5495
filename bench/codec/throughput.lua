-- bench/codec/throughput.lua — codec throughput in MB/s, encoding and
-- decoding apart, for a 1 MB string and for a table of 100,000 small
-- records, each beside string.pack / string.unpack of the same data in the
-- same process (the yardstick).
--
-- The codec encodes in ch:send (into a buffered channel with room: no
-- goroutine switch) and decodes in the ch:recv that follows, so its
-- figures include one channel operation each, tiny next to a megabyte.  MB/s counts the bytes
-- of the string.pack form of the data: the same numerator for both.
--
--   build/goroutine-lua bench/codec/throughput.lua
local goroutine = require "goroutine"
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/lib.lua")

local pack, unpack = string.pack, string.unpack

-- Time encoding (a send) and decoding (the receive that follows) of v, R
-- times; returns the best round's seconds per call of each.  One message at
-- a time, as a producer and a consumer in step would have.
local function codec_times(v, R, verify)
  local ch = goroutine.chan(1)
  local tenc, tdec = math.huge, math.huge
  for _ = 1, 5 do
    collectgarbage()
    local e, d, got = 0, 0, nil
    for _ = 1, R do
      local t0 = C.now()
      ch:send(v)
      local t1 = C.now()
      got = ch:recv()
      local t2 = C.now()
      e, d = e + (t1 - t0), d + (t2 - t1)
    end
    tenc, tdec = math.min(tenc, e / R), math.min(tdec, d / R)
    C.check(verify(got), "codec copy differs")
  end
  return tenc, tdec
end

-- ------------------------------------------------------- a 1 MB string
local s = string.rep("0123456789abcdef", 65536)   -- 1 MiB
local s_packed = pack("s4", s)
local s_mb = #s_packed / 1e6
local enc_s, dec_s = codec_times(s, 200, function(g) return g == s end)
local penc_s = C.time(function() s_packed = pack("s4", s) end, 20)
local pdec_s = C.time(function() local _ = unpack("s4", s_packed) end, 20)
C.check(unpack("s4", s_packed) == s, "unpack differs")

-- ------------------------------------- a table of 100,000 small records
local NREC = 100000
local recs = {}
for i = 1, NREC do
  recs[i] = { id = i, name = "item" .. i, tags = { "a", "b", "c" }, x = i * 0.5 }
end
local FMT = "<js1s1s1s1n"

local function pack_recs(t)
  local parts = {}
  for i = 1, #t do
    local r = t[i]
    parts[i] = pack(FMT, r.id, r.name, r.tags[1], r.tags[2], r.tags[3], r.x)
  end
  return pack("<j", #t) .. table.concat(parts)
end

local function unpack_recs(p)
  local n, pos = unpack("<j", p)
  local t = {}
  for i = 1, n do
    local id, name, a, b, c, x
    id, name, a, b, c, x, pos = unpack(FMT, p, pos)
    t[i] = { id = id, name = name, tags = { a, b, c }, x = x }
  end
  return t
end

local function same_recs(t)
  if #t ~= NREC then return false end
  for i = 1, NREC, 997 do
    local r = t[i]
    if r.id ~= i or r.name ~= "item" .. i or r.x ~= i * 0.5 or r.tags[3] ~= "c" then
      return false
    end
  end
  return true
end

local r_packed = pack_recs(recs)
local r_mb = #r_packed / 1e6
local enc_r, dec_r = codec_times(recs, 3, same_recs)
local penc_r = C.time(function() r_packed = pack_recs(recs) end, 1)
local pdec_r = C.time(function() local _ = unpack_recs(r_packed) end, 1)
C.check(same_recs(unpack_recs(r_packed)), "unpack differs")

C.print(string.format("codec throughput (MB = 10^6 bytes of the string.pack form: "
                      .. "string %.2f MB, records %.2f MB)", s_mb, r_mb), {
  { "1 MB string: encode", s_mb / enc_s * 1e6, "B/s", s_mb / penc_s * 1e6 },
  { "1 MB string: decode", s_mb / dec_s * 1e6, "B/s", s_mb / pdec_s * 1e6 },
  { "100,000 records: encode", r_mb / enc_r * 1e6, "B/s", r_mb / penc_r * 1e6 },
  { "100,000 records: decode", r_mb / dec_r * 1e6, "B/s", r_mb / pdec_r * 1e6 },
  { "100,000 records: records/s encode", NREC / enc_r, "/s", NREC / penc_r },
  { "100,000 records: records/s decode", NREC / dec_r, "/s", NREC / pdec_r },
})
