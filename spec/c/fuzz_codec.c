/*
** fuzz_codec.c — libFuzzer target for the codec's decoder.
**
**   make fuzz FUZZ_SECONDS=60      build with clang and run (Makefile)
**   make fuzz-corpus               regenerate spec/fuzz/corpus (any cc)
**
** Each input is a message's bytes, wrapped in a gr_msg with nobjs = 0 and
** decoded with gr_decode_data in a fresh Lua state:
**
** - Handles: the trailer of gr_obj pointers lies outside the bytes (nobjs =
**   0), so every HANDLE tag names an index past the trailer and is refused;
**   gr_decode_data also refuses any message with nobjs > 0.  No pointer is
**   ever taken from fuzz bytes.
** - Lua functions: lua_load does not survive crafted bytecode, so
**   gr_decode_data refuses LFUNC.  Messages are made only by gr_encode in
**   the process that decodes them, so real bytecode is never untrusted.
**
** Whatever decodes must round-trip: encoded again and decoded again, the
** copy must equal the first decode (types, integer/float subtypes, NaN,
** -0.0, strings, table shape with shared references and cycles, metatables).
** Table-valued keys are matched when their counterpart is known through
** another path, and otherwise only counted; values whose metatable has a
** __goroutine_encode other than the one this target registers are opaque
** (their encoding is whatever that function returns).  An encode error is
** fine (decoded data may carry a metatable with a broken __goroutine_encode);
** a failed second decode or a difference aborts.
**
** The state has the base, string, table, math and utf8 libraries, without
** print, dofile and loadfile (and no io, os, package or debug): decoded C
** functions may end up as __gc metamethods, and none of these may reach
** outside the process.  Its
** allocator refuses to grow past 64 MB, so out-of-memory paths run too.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "codec.h"

#define MEM_LIMIT ((size_t)64 << 20)

static size_t mem_used;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t old = ptr != NULL ? osize : 0;
  void *np;
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    mem_used -= old;
    return NULL;
  }
  if (nsize > old && mem_used + (nsize - old) > MEM_LIMIT) return NULL;
  np = realloc(ptr, nsize);
  if (np != NULL) mem_used += nsize - old;
  return np;
}

/* The user type "pt": crosses as its field v. */
static const char prelude[] =
  "local dgetmt = debug.getmetatable\n"
  "PT = {__name = 'pt', __goroutine_encode = function(p) return p.v end}\n"
  "register('pt', function(v) return setmetatable({v = v}, PT) end)\n"
  "local function opaque(x)\n"
  "  local mt = dgetmt(x)\n"
  "  return mt ~= nil and mt ~= PT and rawget(mt, '__goroutine_encode') ~= nil\n"
  "end\n"
  /* same(a, b): b, the second decode, is a copy of a; nil or why not */
  "function same(a, b)\n"
  "  local map, rmap, work = {}, {}, {a, b}\n"
  "  while #work > 0 do\n"
  "    local y = table.remove(work) local x = table.remove(work)\n"
  "    local tx = type(x)\n"
  "    if tx ~= type(y) then return 'type ' .. tx .. ' / ' .. type(y) end\n"
  "    if tx == 'number' then\n"
  "      if math.type(x) ~= math.type(y) then return 'subtype' end\n"
  "      if x ~= y and not (x ~= x and y ~= y) then return 'number' end\n"
  "      if x == 0 and math.type(x) == 'float' and 1/x ~= 1/y then return '-0.0' end\n"
  "    elseif tx == 'table' then\n"
  "      if map[x] ~= nil or rmap[y] ~= nil then\n"
  "        if map[x] ~= y then return 'shared reference' end\n"
  "      elseif not opaque(x) then\n"
  "        map[x], rmap[y] = y, x\n"
  "        local mx, my = dgetmt(x), dgetmt(y)\n"
  "        if (mx == nil) ~= (my == nil) then return 'metatable' end\n"
  "        if mx ~= nil then work[#work + 1] = mx work[#work + 1] = my end\n"
  "        local nx, ny, tkx, tky = 0, 0, 0, 0\n"
  "        for k, v in next, x do\n"
  "          nx = nx + 1\n"
  "          if type(k) == 'table' then\n"
  "            tkx = tkx + 1\n"
  "            if map[k] ~= nil then\n"
  "              local w = rawget(y, map[k])\n"
  "              if w == nil then return 'table key' end\n"
  "              work[#work + 1] = v work[#work + 1] = w\n"
  "            end\n"
  "          else\n"
  "            local w = rawget(y, k)\n"
  "            if w == nil then return 'key ' .. tostring(k) end\n"
  "            work[#work + 1] = v work[#work + 1] = w\n"
  "          end\n"
  "        end\n"
  "        for k in next, y do\n"
  "          ny = ny + 1 if type(k) == 'table' then tky = tky + 1 end\n"
  "        end\n"
  "        if nx ~= ny or tkx ~= tky then return 'key count' end\n"
  "      end\n"
  "    elseif x ~= y then\n"
  "      return tx .. ' differs'\n"
  "    end\n"
  "  end\n"
  "end\n";

static int l_register(lua_State *L) { return gr_codec_register(L); }

static lua_State *new_state(void) {
  static const luaL_Reg libs[] = {
    {LUA_GNAME, luaopen_base}, {LUA_STRLIBNAME, luaopen_string},
    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_DBLIBNAME, luaopen_debug},
    {NULL, NULL}
  };
  static const char *const drop[] = {"print", "dofile", "loadfile", "debug",
                                     NULL};
  const char *const *name;
  const luaL_Reg *lib;
  lua_State *L;
  mem_used = 0;
  L = lua_newstate(limited_alloc, NULL);
  if (L == NULL) abort();
  for (lib = libs; lib->func != NULL; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  lua_register(L, "register", l_register);
  if (luaL_dostring(L, prelude) != LUA_OK) {
    fprintf(stderr, "prelude: %s\n", lua_tostring(L, -1));
    abort();
  }
  /* the prelude keeps debug.getmetatable; nothing else of debug stays */
  for (name = drop; *name != NULL; name++) {
    lua_pushnil(L);
    lua_setglobal(L, *name);
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  lua_setfield(L, -2, LUA_DBLIBNAME);
  lua_pop(L, 1);
  return L;
}

#ifndef FUZZ_CORPUS_MAIN

static const gr_msg *input;
static gr_msg copy;

static int decode_input(lua_State *L) {
  lua_settop(L, 0);
  return gr_decode_data(L, input);
}

static int encode_all(lua_State *L) {
  gr_encode(L, 1, lua_gettop(L), GR_ENCODE_VALUE, &copy);
  return 0;
}

static int decode_copy(lua_State *L) {
  lua_settop(L, 0);
  return gr_decode_data(L, &copy);
}

/* Run f on the values at 1..n of L (kept); the results are pushed above
** them.  Returns the status. */
static int call_on(lua_State *L, lua_CFunction f, int n) {
  int i;
  luaL_checkstack(L, n + 2, NULL);
  lua_pushcfunction(L, f);
  for (i = 1; i <= n; i++) lua_pushvalue(L, i);
  return lua_pcall(L, n, LUA_MULTRET, 0);
}

static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gr_msg m;
  int n, n2, i;
  if (size > UINT32_MAX) return 0;
  copy = (gr_msg)GR_MSG_EMPTY;
  if (L == NULL) L = new_state();
  m.len = (uint32_t)size;
  m.nobjs = 0;
  if (size <= GR_MSG_INLINE) {
    memcpy(m.u.inl, data, size);
  } else {
    m.u.heap = (unsigned char *)malloc(size);   /* exact: reads past it show */
    if (m.u.heap == NULL) abort();
    memcpy(m.u.heap, data, size);
  }
  input = &m;
  lua_pushcfunction(L, decode_input);
  if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
    if (lua_type(L, -1) != LUA_TSTRING) abort();   /* our errors are strings */
    goto done;
  }
  n = lua_gettop(L);
  /* round trip */
  if (call_on(L, encode_all, n) != LUA_OK) goto done;
  lua_settop(L, n);
  if (call_on(L, decode_copy, 0) != LUA_OK) {
    fprintf(stderr, "re-encoded message does not decode: %s\n",
            lua_tostring(L, -1));
    abort();
  }
  gr_msg_free(&copy);
  n2 = lua_gettop(L) - n;
  if (n2 != n) {
    fprintf(stderr, "round trip: %d values, then %d\n", n, n2);
    abort();
  }
  for (i = 1; i <= n; i++) {
    lua_getglobal(L, "same");
    lua_pushvalue(L, i);
    lua_pushvalue(L, n + i);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
      /* out of memory in the comparison: nothing to conclude */
      if (strcmp(lua_tostring(L, -1), "not enough memory") == 0) break;
      fprintf(stderr, "compare: %s\n", lua_tostring(L, -1));
      abort();
    }
    if (!lua_isnil(L, -1)) {
      fprintf(stderr, "round trip: value #%d differs: %s\n", i,
              lua_tostring(L, -1));
      abort();
    }
    lua_pop(L, 1);
  }
done:
  gr_msg_free(&copy);
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);   /* this input's finalizers run now */
  gr_msg_free(&m);
  return 0;
}

#else   /* FUZZ_CORPUS_MAIN: write the seed corpus */

/* Representative values, each one message (several roots where it says
** so).  No Lua functions and no handles: the target refuses both. */
static const char *const seeds[] = {
  "return nil", "return true", "return false", "return 0", "return 127",
  "return 128", "return -1", "return -129", "return 32767, -32769",
  "return 2^31 | 0, -(2^31 | 0) - 1", "return math.maxinteger, math.mininteger",
  "return 1.5, -0.0, 0/0, math.huge, -math.huge, 3.0",
  "return '', 'a', string.rep('x', 31), string.rep('y', 32)",
  "local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end "
  "return table.concat(t)",
  "return 1, 'two', {3}, nil",
  "return {}",
  "return {1, 2, 3}",
  "return {x = 1, y = 'why', z = 2.5}",
  "return {1, nil, 3, nil, 5}",
  "return {1, 2, 3, x = 'x', [1.5] = 'f', [true] = 't', [false] = 'F', "
  "[-1] = 'neg', [0] = 0, [100] = 'far', [math.mininteger] = 'min'}",
  "return {a = {b = {c = {d = 'deep'}}}, list = {{1}, {2}, {3}}}",
  "local s = {v = 1} return {s, s, x = s, [s] = s}, s",
  "local t = {name = 't'} t.self = t t[1] = t return t",
  "local a, b = {}, {} a.b = b b.a = a return a",
  "local k = {} return {[k] = k, [{}] = 1}",
  "local mt = {__index = {kind = 'base'}} "
  "return {setmetatable({1}, mt), setmetatable({2}, mt)}",
  "local mt = {} mt.__index = mt mt.__metatable = 'locked' "
  "return setmetatable({v = 1}, mt)",
  "local base = {__index = {k = 1}} local mt = setmetatable({}, base) "
  "return setmetatable({}, mt)",
  "local t = {} local c = t for i = 1, 60 do c.a = {} c = c.a end return t",
  "local t = {} for i = 1, 200 do t[i] = i * 3 end return t",
  "local t = {} for i = 1, 100 do t['k' .. i] = i end return t",
  "local t = {} for i = 1, 300 do t[i] = {id = i, name = 'n' .. i} end return t",
  "return string.format, math.max, {tostring, table.concat, pairs}",
  "return {f = string.rep, g = utf8.char, h = select}",
  "return setmetatable({v = {1, 2}}, PT)",
  "local p = setmetatable({v = 'shared'}, PT) return {p, p}",
  "return setmetatable({v = setmetatable({v = 1}, PT)}, PT)",
  "return setmetatable({}, PT)",
  "return {[setmetatable({v = 'k'}, PT)] = true}",
  "local t = setmetatable({}, {__gc = tostring}) return t",
  "return string.rep('z', 1000)",
};

int main(int argc, char **argv) {
  size_t i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    lua_State *L = new_state();
    gr_msg m;
    char path[4096];
    FILE *f;
    if (luaL_dostring(L, seeds[i]) != LUA_OK) {
      fprintf(stderr, "seed %zu: %s\n", i, lua_tostring(L, -1));
      return 1;
    }
    gr_encode(L, 1, lua_gettop(L), GR_ENCODE_VALUE, &m);
    snprintf(path, sizeof path, "%s/seed-%02zu", argv[1], i);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(gr_msg_bytes(&m), 1, m.len, f) != m.len ||
        fclose(f) != 0) {
      perror(path);
      return 1;
    }
    gr_msg_free(&m);
    lua_close(L);
  }
  printf("%zu seeds in %s\n", i, argv[1]);
  return 0;
}

#endif
