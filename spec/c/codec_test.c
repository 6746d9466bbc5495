/*
** codec_test.c — round trips through the codec between two lua_States.
**
**   gcc -std=gnu11 -O2 -g -Wall -Wextra -pthread -I src \
**       src/codec.c src/obj.c spec/c/codec_test.c \
**       $(pkg-config --cflags --libs lua5.4) -lm -o build/codec_test
**
** Built without a sanitizer it also checks that small messages cost no
** malloc in the codec, and that a malloc failing is a clean Lua error.
**
** State A is the sender, B the receiver.  Both have the standard libraries,
** a small package.loaded.goroutine (a light C function and a C closure whose
** upvalue names its state) and these globals:
**   send(...)    encode the arguments as one channel message (queued)
**   gosend(...)  the same as a go() call: "function", "argument #1", ...
**   recv()       decode the oldest queued message, free it, return its values
**                (gr_decode_free: freed even when decoding raises)
**   msglen()     len and nobjs of the newest queued message
**   pending()    messages queued
**   newobj()     a new dummy handle (h:refs() is its reference count)
**   live()       dummy objects alive
**   allocs(), mallocs()   Lua allocations in A, codec mallocs (-1: not counted)
**   failmalloc(n) the n-th malloc from now fails (0: none; false if not
**                counted)
**   memlimit(n)  this state's allocator fails past n more bytes (nil: none)
**   goroutine.register  gr_codec_register
** Each test runs a chunk in A, then one in B; a test passes when both run
** without error and no message is left in the queue.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../../src/codec.h"
#include "../../src/obj.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* ------------------------------------------------------- malloc counting */

/* Without a sanitizer (which owns malloc), this program's own malloc,
** calloc and realloc count the calls and can be told to fail; the two Lua
** states allocate through glibc's entry points, so what is counted is the
** codec's. */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
static long nmallocs = 0;
static long failat = 0;      /* > 0: the failat-th call from now fails */
static int fail_now(void) {
  nmallocs++;
  return failat > 0 && --failat == 0;
}
void *malloc(size_t n) { return fail_now() ? NULL : __libc_malloc(n); }
void *calloc(size_t n, size_t m) { return fail_now() ? NULL : __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { return fail_now() ? NULL : __libc_realloc(p, n); }
#define sys_realloc __libc_realloc
#else
static long nmallocs = -1;
static long failat = 0;
#define sys_realloc realloc
#endif

/* The states' allocator: counts allocations, and refuses to go past a limit
** of bytes in use (0: none). */
typedef struct mem { long allocs; size_t used, limit; } mem;
static mem mem_a, mem_b;

static void *state_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mem *m = (mem *)ud;
  size_t old = ptr != NULL ? osize : 0;
  void *np;
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (m->limit > 0 && nsize > old && m->used + (nsize - old) > m->limit)
    return NULL;
  np = sys_realloc(ptr, nsize);
  if (np != NULL) {
    m->allocs++;
    m->used += nsize - old;
  }
  return np;
}

/* ------------------------------------------------------------ dummy objs */

static int nlive;

static void dummy_destroy(gr_obj *o) {
  nlive--;
  free(o);
}

static const gr_objtype dummy_type;

static int dummy_refs(lua_State *L) {
  gr_obj *o = gr_obj_check(L, 1, &dummy_type);
  lua_pushinteger(L, atomic_load(&o->refs));
  return 1;
}

static const luaL_Reg dummy_methods[] = {{"refs", dummy_refs}, {NULL, NULL}};
static const gr_objtype dummy_type = {
  "dummy", dummy_methods, NULL, dummy_destroy
};

static int l_newobj(lua_State *L) {
  gr_obj *o = (gr_obj *)malloc(sizeof *o);
  gr_obj_init(o, &dummy_type);
  nlive++;
  gr_obj_push(L, o);
  return 1;
}

static int l_live(lua_State *L) { lua_pushinteger(L, nlive); return 1; }

/* -------------------------------------------------------------- messages */

#define QMAX 1024
static gr_msg queue[QMAX];
static int qhead, qtail;

static int do_send(lua_State *L, enum gr_encode_kind kind) {
  gr_msg *m;
  if (qtail == QMAX) return luaL_error(L, "queue full");
  m = &queue[qtail];
  m->len = 99;     /* must be reset on failure */
  m->nobjs = 99;
  gr_encode(L, 1, lua_gettop(L), kind, m);
  qtail++;
  lua_pushinteger(L, m->len);
  lua_pushinteger(L, m->nobjs);
  return 2;
}

static int l_send(lua_State *L) { return do_send(L, GR_ENCODE_VALUE); }
static int l_gosend(lua_State *L) { return do_send(L, GR_ENCODE_GOCALL); }

static int l_recv(lua_State *L) {
  gr_msg *m;
  int n;
  if (qhead == qtail) return luaL_error(L, "queue empty");
  m = &queue[qhead++];
  if (qhead == qtail) qhead = qtail = 0;
  lua_settop(L, 0);
  n = gr_decode_free(L, m);
  if (m->len != 0 || m->nobjs != 0) return luaL_error(L, "message not emptied");
  return n;
}

static int l_msglen(lua_State *L) {
  if (qhead == qtail) return luaL_error(L, "queue empty");
  lua_pushinteger(L, queue[qtail - 1].len);
  lua_pushinteger(L, queue[qtail - 1].nobjs);
  return 2;
}

static int l_pending(lua_State *L) {
  lua_pushinteger(L, qtail - qhead);
  return 1;
}

static int l_allocs(lua_State *L) { lua_pushinteger(L, mem_a.allocs); return 1; }
static int l_mallocs(lua_State *L) { lua_pushinteger(L, nmallocs); return 1; }

static int l_failmalloc(lua_State *L) {
  failat = (long)luaL_checkinteger(L, 1);
  lua_pushboolean(L, nmallocs >= 0);
  return 1;
}

static int l_memlimit(lua_State *L) {
  void *ud;
  mem *m;
  lua_getallocf(L, &ud);
  m = (mem *)ud;
  m->limit = lua_isnoneornil(L, 1) ? 0 : m->used + (size_t)luaL_checkinteger(L, 1);
  return 0;
}

static int l_lightud(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&nlive);
  return 1;
}

static int l_plainud(lua_State *L) {
  lua_newuserdatauv(L, 8, 0);
  return 1;
}

static int l_extra(lua_State *L) { lua_pushliteral(L, "extra"); return 1; }

/* the minimal goroutine module */
static int g_id(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "codec_test.state");
  return 1;
}

static int g_tag(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

static void drain_queue(void) {
  while (qhead < qtail) gr_msg_free(&queue[qhead++]);
  qhead = qtail = 0;
}

static const char prelude[] =
  "function eq(a, b, what)\n"
  "  if a ~= b and not (a ~= a and b ~= b) then\n"
  "    error((what or 'value') .. ': expected ' .. tostring(b) ..\n"
  "          ', got ' .. tostring(a), 2)\n"
  "  end\n"
  "end\n"
  "function errmsg(f, ...)\n"
  "  local ok, e = pcall(f, ...)\n"
  "  if ok then error('no error', 2) end\n"
  "  return e\n"
  "end\n"
  /* a deterministic structure, built the same way in both states */
  "function build(n, w)\n"
  "  local t = {}\n"
  "  for i = 1, n do\n"
  "    local r = {id = i, name = 'n' .. i, [i * 1.5] = i % 3 == 0}\n"
  "    for j = 1, w do r['k' .. j] = j * i end\n"
  "    t['key' .. i] = r\n"
  "    t[i] = -i\n"
  "  end\n"
  "  return t\n"
  "end\n"
  "function deepeq(a, b, seen)\n"
  "  if type(a) ~= 'table' or type(b) ~= 'table' then\n"
  "    return a == b or (a ~= a and b ~= b)\n"
  "  end\n"
  "  seen = seen or {}\n"
  "  if seen[a] then return seen[a] == b end\n"
  "  seen[a] = b\n"
  "  for k, v in pairs(a) do\n"
  "    if type(k) == 'table' then return false end\n"
  "    if not deepeq(v, rawget(b, k), seen) then return false end\n"
  "  end\n"
  "  for k in pairs(b) do if rawget(a, k) == nil then return false end end\n"
  "  return true\n"
  "end\n";

static lua_State *new_state(const char *name, mem *m) {
  lua_State *L = lua_newstate(state_alloc, m);
  static const luaL_Reg globals[] = {
    {"send", l_send}, {"gosend", l_gosend}, {"recv", l_recv},
    {"msglen", l_msglen}, {"pending", l_pending}, {"newobj", l_newobj},
    {"live", l_live}, {"allocs", l_allocs}, {"mallocs", l_mallocs},
    {"lightud", l_lightud}, {"plainud", l_plainud}, {"extra", l_extra},
    {"failmalloc", l_failmalloc}, {"memlimit", l_memlimit},
    {NULL, NULL}
  };
  int i;
  luaL_openlibs(L);
  lua_pushstring(L, name);
  lua_setfield(L, LUA_REGISTRYINDEX, "codec_test.state");
  for (i = 0; globals[i].name != NULL; i++) {
    lua_pushcfunction(L, globals[i].func);
    lua_setglobal(L, globals[i].name);
  }
  /* package.loaded.goroutine */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_newtable(L);
  lua_pushcfunction(L, g_id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, name);
  lua_pushcclosure(L, g_tag, 1);
  lua_setfield(L, -2, "tag");
  lua_pushcfunction(L, gr_codec_register);
  lua_setfield(L, -2, "register");
  lua_pushvalue(L, -1);
  lua_setglobal(L, "goroutine");
  lua_setfield(L, -2, "goroutine");
  lua_pop(L, 1);
  if (luaL_dostring(L, prelude) != LUA_OK) {
    fprintf(stderr, "prelude: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  return L;
}

/* ----------------------------------------------------------------- runner */

static lua_State *A, *B;
static int npassed, nfailed;

static void fail(const char *name, const char *why) {
  nfailed++;
  printf("FAIL %s: %s\n", name, why);
}

static int run_chunk(lua_State *L, const char *name, const char *which,
                     const char *src) {
  char msg[512];
  if (src == NULL) return 1;
  if (luaL_loadbuffer(L, src, strlen(src), which) != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK) {
    snprintf(msg, sizeof msg, "[%s] %s", which,
             lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    fail(name, msg);
    lua_settop(L, 0);
    return 0;
  }
  lua_settop(L, 0);
  return 1;
}

static void test(const char *name, const char *a_src, const char *b_src) {
  if (!run_chunk(A, name, "=A", a_src) || !run_chunk(B, name, "=B", b_src)) {
    drain_queue();
    return;
  }
  if (qhead != qtail) {
    drain_queue();
    fail(name, "messages left in the queue");
    return;
  }
  npassed++;
}

static void check(const char *name, int ok, const char *why) {
  if (ok) npassed++;
  else fail(name, why);
}

/* ------------------------------------------------------- C-level checks */

static const gr_msg *decoding;
static int decoding_data;   /* decode with gr_decode_data */

static int l_decode(lua_State *L) {
  return decoding_data ? gr_decode_data(L, decoding) : gr_decode(L, decoding);
}

/* Decode m in B under pcall: LUA_OK or the error status.  On error, the
** message text is copied to err (if not NULL).  Leaves B's stack empty. */
static int decode_in_b(const gr_msg *m, char *err, size_t errsize) {
  int st;
  lua_settop(B, 0);
  decoding = m;
  lua_pushcfunction(B, l_decode);
  st = lua_pcall(B, 0, LUA_MULTRET, 0);
  if (st != LUA_OK && err != NULL)
    snprintf(err, errsize, "%s", lua_tostring(B, -1) ? lua_tostring(B, -1) : "?");
  lua_settop(B, 0);
  return st;
}

/* A message with the given bytes: inline if short, else exactly sized on
** the heap so that the sanitizers see any read past the end. */
static void make_msg(gr_msg *m, const void *bytes, size_t len) {
  m->len = (uint32_t)len;
  m->nobjs = 0;
  if (len <= GR_MSG_INLINE) {
    memcpy(m->u.inl, bytes, len);
  } else {
    m->u.heap = (unsigned char *)malloc(len);
    memcpy(m->u.heap, bytes, len);
  }
}

/* Encode the results of running src in A (kind VALUE); returns 0 on error. */
static int encode_in_a(const char *src, gr_msg *m) {
  if (luaL_dostring(A, src) != LUA_OK) {
    printf("encode_in_a: %s\n", lua_tostring(A, -1));
    lua_settop(A, 0);
    return 0;
  }
  gr_encode(A, 1, lua_gettop(A), GR_ENCODE_VALUE, m);
  lua_settop(A, 0);
  return 1;
}

static void corrupt_case(const char *name, const char *bytes, size_t len) {
  gr_msg m;
  char err[256];
  int st;
  make_msg(&m, bytes, len);
  st = decode_in_b(&m, err, sizeof err);
  if (st == LUA_OK) fail(name, "decoded");
  else if (strcmp(err, "goroutine: corrupt message") != 0) fail(name, err);
  else npassed++;
  gr_msg_free(&m);
}

static void corrupt_tests(void) {
  (void)luaL_dostring(B, "goroutine.register('p', function(v) return {v} end)");
  corrupt_case("corrupt: unknown tag", "\x20", 1);
  corrupt_case("corrupt: unknown tag 0x7f", "\x7f", 1);
  corrupt_case("corrupt: string past the end", "\x45" "ab", 3);
  corrupt_case("corrupt: long string past the end", "\x08\x80\x01" "abc", 6);
  corrupt_case("corrupt: varint past the end", "\x08\x80", 2);
  corrupt_case("corrupt: endless varint",
               "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13);
  corrupt_case("corrupt: int16 cut", "\x04\x01", 2);
  corrupt_case("corrupt: int64 cut", "\x06\x01\x02\x03", 4);
  corrupt_case("corrupt: float cut", "\x07\x01\x02\x03\x04\x05\x06\x07", 8);
  corrupt_case("corrupt: ref with no table", "\x0d\x01", 2);
  corrupt_case("corrupt: ref ahead", "\x12\x01\x02\x09\x00\x01\x81\x0d\x02", 9);
  corrupt_case("corrupt: ref zero", "\x12\x01\x01\x09\x01\x00\x0d\x00", 8);
  corrupt_case("corrupt: ref to an id not shared", "\x09\x01\x00\x0d\x01", 5);
  corrupt_case("corrupt: ref to an id not shared, another one is",
               "\x12\x01\x02\x09\x02\x00\x09\x00\x00\x0d\x01", 11);
  corrupt_case("corrupt: shared list empty", "\x12\x00\x81", 3);
  corrupt_case("corrupt: shared list past the end", "\x12\x03\x01\x01", 4);
  corrupt_case("corrupt: shared id zero", "\x12\x01\x00\x09\x00\x00", 6);
  corrupt_case("corrupt: shared id huge", "\x12\x01\xff\xff\xff\xff\x0f\x81", 8);
  corrupt_case("corrupt: shared list not first", "\x81\x12\x01\x01\x09\x00\x00", 7);
  corrupt_case("corrupt: ref to a user value being decoded",
               "\x12\x01\x01\x11\x01p\x0d\x01", 8);
  corrupt_case("corrupt: table narr too big", "\x09\xff\xff\xff\xff\x0f\x00", 7);
  corrupt_case("corrupt: table nrec too big", "\x09\x00\x7f\x81\x81", 5);
  corrupt_case("corrupt: table cut", "\x09\x02\x00\x81", 4);
  corrupt_case("corrupt: nil key", "\x09\x00\x01\x00\x81", 5);
  corrupt_case("corrupt: NaN key",
               "\x09\x00\x01\x07\x00\x00\x00\x00\x00\x00\xf8\x7f\x81", 13);
  corrupt_case("corrupt: metatable not a table", "\x0a\x00\x00\x81", 4);
  corrupt_case("corrupt: metatable missing", "\x0a\x00\x00", 3);
  corrupt_case("corrupt: handle without trailer", "\x0e\x00", 2);
  corrupt_case("corrupt: globals outside a function", "\x0f", 1);
  corrupt_case("corrupt: upref outside a function", "\x10\x01\x01", 3);
  corrupt_case("corrupt: C function name without dot", "\x0c\x05print", 7);
  corrupt_case("corrupt: C function name cut", "\x0c\x09_G.pr", 6);
  corrupt_case("corrupt: function length past the end",
               "\x0b\xff\x00\x00\x00\x1bLua", 9);
  corrupt_case("corrupt: function not bytecode",
               "\x0b\x08\x00\x00\x00return 1", 13);
  corrupt_case("corrupt: function bytecode cut",
               "\x0b\x04\x00\x00\x00\x1bLua", 9);
  {
    /* nested deeper than the limit (decoded without C recursion) */
    size_t n = GR_CODEC_MAXDEPTH + 1, i;
    char *b = (char *)malloc(3 * n);
    for (i = 0; i < n; i++) { b[3*i] = 0x09; b[3*i+1] = 1; b[3*i+2] = 0; }
    b[3 * n - 1] = 0x00; b[3 * n - 2] = 0x00;   /* innermost: empty table */
    corrupt_case("corrupt: nesting deeper than the limit", b, 3 * n);
    /* at the limit it decodes */
    {
      gr_msg m;
      make_msg(&m, b + 3, 3 * (n - 1));
      check("decode: nesting at the limit", decode_in_b(&m, NULL, 0) == LUA_OK,
            "did not decode");
      gr_msg_free(&m);
    }
    free(b);
  }
  {
    /* trailer longer than the message */
    gr_msg m;
    char err[256];
    make_msg(&m, "\x81", 1);
    m.nobjs = 1;
    check("corrupt: trailer longer than the message",
          decode_in_b(&m, err, sizeof err) != LUA_OK &&
          strcmp(err, "goroutine: corrupt message") == 0, "decoded");
    m.nobjs = 0;
    gr_msg_free(&m);
  }
  {
    /* unknown C function name: a clear error, not "corrupt" */
    gr_msg m;
    char err[256];
    make_msg(&m, "\x0c\x0bstring.nope", 13);
    check("decode: unknown C function name",
          decode_in_b(&m, err, sizeof err) != LUA_OK &&
          strstr(err, "'string.nope'") != NULL, err);
    gr_msg_free(&m);
  }
}

/* Every prefix of a valid message and many random mutations decode or fail
** cleanly.  (Messages with functions are left out: Lua itself does not
** claim to survive malicious bytecode.) */
static void fuzz_tests(void) {
  static const char *const sources[] = {
    "return 1, -1, 300, -70000, 2^40, 1.5, 0/0, 'abc', true, false, nil",
    "return string.rep('x', 100), string.rep('y', 200)",
    "local t = {1, 2, 3, x = {y = {z = 'deep'}}, [1.5] = 'f', [true] = 1}"
    "  t.self = t; t[4] = t.x; return t, t.x",
    "local mt = {__index = {a = 1}}; local s = {}"
    "  return setmetatable({s, s, {1, 2, {}}}, mt), setmetatable({}, mt)",
    "return build(40, 4)",
    "local t = {} for i = 1, 200 do t['k' .. i] = {i} end return t",
  };
  size_t si;
  unsigned long seed = 12345;
  long ok = 0, bad = 0;
  int crashed = 0;
  for (si = 0; si < sizeof sources / sizeof sources[0]; si++) {
    gr_msg src;
    const unsigned char *b;
    unsigned char *copy;
    size_t len, cut;
    int iter;
    if (!encode_in_a(sources[si], &src)) { crashed = 1; continue; }
    b = gr_msg_bytes(&src);
    len = src.len;
    copy = (unsigned char *)malloc(len + 1);
    for (cut = 0; cut < len; cut++) {
      gr_msg m;
      make_msg(&m, b, cut);
      if (decode_in_b(&m, NULL, 0) == LUA_OK) ok++; else bad++;
      gr_msg_free(&m);
    }
    for (iter = 0; iter < 3000; iter++) {
      gr_msg m;
      int flips = 1 + iter % 4, f;
      memcpy(copy, b, len);
      for (f = 0; f < flips; f++) {
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        copy[(seed >> 33) % len] = (unsigned char)(seed >> 17);
      }
      make_msg(&m, copy, len);
      if (decode_in_b(&m, NULL, 0) == LUA_OK) ok++; else bad++;
      gr_msg_free(&m);
    }
    free(copy);
    {
      /* the original still decodes */
      check("fuzz: original decodes", decode_in_b(&src, NULL, 0) == LUA_OK,
            sources[si]);
    }
    gr_msg_free(&src);
  }
  lua_gc(B, LUA_GCCOLLECT, 0);
  check("fuzz: prefixes and mutations decode or fail cleanly", !crashed,
        "encode failed");
  printf("  (fuzz: %ld decoded, %ld rejected)\n", ok, bad);
}

static gr_msg failing;

static int l_encode_failing(lua_State *L) {
  failing.len = 99;
  failing.nobjs = 99;
  gr_encode(L, 1, lua_gettop(L), GR_ENCODE_VALUE, &failing);
  return 0;
}

/* A few things only C can see. */
static void c_tests(void) {
  gr_msg m;
  /* a failed encode leaves the message empty */
  lua_settop(A, 0);
  lua_pushcfunction(A, l_encode_failing);
  l_newobj(A);
  lua_getglobal(A, "io");
  lua_getfield(A, -1, "stdout");
  lua_remove(A, -2);
  check("a failed encode raises", lua_pcall(A, 2, 0, 0) != LUA_OK, "no error");
  check("a failed encode leaves the message empty",
        failing.len == 0 && failing.nobjs == 0, "not empty");
  lua_settop(A, 0);
  lua_gc(A, LUA_GCCOLLECT, 0);
  lua_gc(A, LUA_GCCOLLECT, 0);
  check("a failed encode holds no reference", nlive == 0, "object alive");
  /* an empty message */
  {
    gr_msg e = GR_MSG_EMPTY;
    lua_settop(B, 0);
    check("empty message decodes to nothing", gr_decode(B, &e) == 0 &&
          lua_gettop(B) == 0, "values pushed");
    gr_msg_free(&e);
  }
  /* encode from a negative index, below other values */
  lua_settop(A, 0);
  lua_pushinteger(A, 1);
  lua_pushstring(A, "two");
  lua_pushinteger(A, 3);
  lua_pushboolean(A, 0);
  gr_encode(A, -3, 2, GR_ENCODE_VALUE, &m);
  check("encode at a negative index leaves the stack alone",
        lua_gettop(A) == 4, "stack changed");
  lua_settop(A, 0);
  lua_settop(B, 0);
  check("encode at a negative index",
        gr_decode(B, &m) == 2 && strcmp(lua_tostring(B, 1), "two") == 0 &&
        lua_tointeger(B, 2) == 3, "wrong values");
  lua_settop(B, 0);
  gr_msg_free(&m);
  check("gr_msg_free empties the message", m.len == 0 && m.nobjs == 0,
        "not empty");
  /* a message with handles can be decoded twice; only free drops refs */
  {
    gr_obj *o;
    lua_settop(A, 0);
    l_newobj(A);
    o = gr_obj_test(A, 1);
    lua_newtable(A);
    lua_pushvalue(A, 1);
    lua_rawseti(A, -2, 1);
    gr_encode(A, 1, 2, GR_ENCODE_VALUE, &m);
    check("a handle message holds one reference per handle",
          m.nobjs == 1 && atomic_load(&o->refs) == 2, "wrong count");
    lua_settop(B, 0);
    gr_decode(B, &m);
    gr_decode(B, &m);
    check("decoding twice gives the same handle and drops nothing",
          lua_rawequal(B, 1, 3) && atomic_load(&o->refs) == 3, "refs wrong");
    lua_rawgeti(B, 2, 1);
    check("a handle shared by two roots is one value", lua_rawequal(B, 1, -1),
          "not the same");
    gr_msg_free(&m);
    check("gr_msg_free drops the message's reference",
          atomic_load(&o->refs) == 2, "refs wrong");
    lua_settop(B, 0);
    lua_gc(B, LUA_GCCOLLECT, 0);
    lua_gc(B, LUA_GCCOLLECT, 0);
    check("the receiver's handle drops its reference when collected",
          atomic_load(&o->refs) == 1, "refs wrong");
    lua_settop(A, 0);
    lua_gc(A, LUA_GCCOLLECT, 0);
    lua_gc(A, LUA_GCCOLLECT, 0);
    check("the object dies with its last reference", nlive == 0, "alive");
  }
  /* gr_decode_data: no bytecode, no handles */
  {
    char err[256];
    int st;
    lua_settop(B, 0);
    encode_in_a("return 1, {2, 'three'}", &m);
    check("decode_data: plain values decode",
          gr_decode_data(B, &m) == 2 && lua_istable(B, 2), "wrong values");
    lua_settop(B, 0);
    gr_msg_free(&m);
    encode_in_a("return {f = function() return 1 end}", &m);
    decoding_data = 1;
    st = decode_in_b(&m, err, sizeof err);
    check("decode_data: a Lua function is refused",
          st != LUA_OK && strcmp(err, "goroutine: corrupt message") == 0, err);
    decoding_data = 0;
    check("... which gr_decode takes", decode_in_b(&m, NULL, 0) == LUA_OK,
          "not decoded");
    gr_msg_free(&m);
    lua_settop(A, 0);
    l_newobj(A);
    gr_encode(A, 1, 1, GR_ENCODE_VALUE, &m);
    lua_settop(A, 0);
    decoding_data = 1;
    st = decode_in_b(&m, err, sizeof err);
    decoding_data = 0;
    check("decode_data: a message with handles is refused",
          st != LUA_OK && strcmp(err, "goroutine: corrupt message") == 0, err);
    gr_msg_free(&m);
    lua_gc(A, LUA_GCCOLLECT, 0);
    check("... and its object is freed", nlive == 0, "alive");
  }
  /* gr_decode_free on an inline message, and on a failing one */
  {
    lua_settop(A, 0);
    lua_pushinteger(A, 7);
    gr_encode(A, 1, 1, GR_ENCODE_VALUE, &m);
    lua_settop(A, 0);
    lua_settop(B, 0);
    check("decode_free: an inline message",
          gr_decode_free(B, &m) == 1 && lua_tointeger(B, 1) == 7 &&
          m.len == 0 && m.nobjs == 0, "wrong");
    lua_settop(B, 0);
  }
  printf("  (malloc counting %s)\n",
         nmallocs >= 0 ? "on" : "off: a sanitizer owns malloc");
}

/* ------------------------------------------------------------------ tests */

static void lua_tests(void);

int main(void) {
  A = new_state("A", &mem_a);
  B = new_state("B", &mem_b);
  lua_tests();
  c_tests();
  corrupt_tests();
  fuzz_tests();
  drain_queue();
  lua_close(A);
  lua_close(B);
  check("every dummy object freed after both states closed", nlive == 0,
        "objects leaked");
  printf("%d passed, %d failed\n", npassed, nfailed);
  return nfailed == 0 ? 0 : 1;
}

static void lua_tests(void) {
  /* ---------------------------------------------------------- scalars */
  test("nil, booleans and the count of values",
       "send(nil) send(true) send(false) send() send(nil, 1, nil)",
       "eq(select('#', recv()), 1)\n"
       "eq(recv(), true) eq(recv(), false)\n"
       "eq(select('#', recv()), 0)\n"
       "local a, b, c = recv() eq(select('#', a, b, c), 3) eq(b, 1) eq(c, nil)");
  test("integers keep their value and subtype",
       "ints = {0, 1, 127, 128, 255, 256, -1, -127, -128, -129, 32767, 32768,\n"
       "  -32768, -32769, 65535, 2147483647, 2147483648, -2147483648,\n"
       "  -2147483649, 1 << 40, -(1 << 40), math.maxinteger, math.mininteger}\n"
       "for _, i in ipairs(ints) do send(i) end",
       "for _, i in ipairs({0, 1, 127, 128, 255, 256, -1, -127, -128, -129,\n"
       "  32767, 32768, -32768, -32769, 65535, 2147483647, 2147483648,\n"
       "  -2147483648, -2147483649, 1 << 40, -(1 << 40), math.maxinteger,\n"
       "  math.mininteger}) do\n"
       "  local v = recv() eq(v, i) eq(math.type(v), 'integer', tostring(i))\n"
       "end");
  test("floats keep their subtype, NaN, infinities and -0.0",
       "for _, x in ipairs({3.0, 0.0, 0.1, -2.5, math.pi, 2^53, 2^63, 1e308,\n"
       "  5e-324, math.huge, -math.huge}) do send(x) end\n"
       "send(0/0) send(-0.0)",
       "for _, x in ipairs({3.0, 0.0, 0.1, -2.5, math.pi, 2^53, 2^63, 1e308,\n"
       "  5e-324, math.huge, -math.huge}) do\n"
       "  local v = recv() eq(v, x) eq(math.type(v), 'float', tostring(x))\n"
       "end\n"
       "local nan = recv() assert(nan ~= nan, 'NaN')\n"
       "local z = recv() eq(z, 0.0) eq(1/z, -math.huge, '-0.0')");
  test("strings of any bytes and lengths",
       "local all = {} for i = 0, 255 do all[#all+1] = string.char(i) end\n"
       "for _, s in ipairs({'', 'a', '\\0', 'a\\0b', string.rep('x', 31),\n"
       "  string.rep('y', 32), string.rep('z', 127), string.rep('w', 128),\n"
       "  table.concat(all), string.rep(table.concat(all), 4096)}) do\n"
       "  send(s)\n"
       "end",
       "local all = {} for i = 0, 255 do all[#all+1] = string.char(i) end\n"
       "for _, s in ipairs({'', 'a', '\\0', 'a\\0b', string.rep('x', 31),\n"
       "  string.rep('y', 32), string.rep('z', 127), string.rep('w', 128),\n"
       "  table.concat(all), string.rep(table.concat(all), 4096)}) do\n"
       "  eq(recv(), s, 'string of ' .. #s)\n"
       "end");
  test("a 16 MiB string",
       "send(string.rep('0123456789abcdef', 1 << 20))",
       "local s = recv() eq(#s, 16 << 20) eq(s:sub(-16), '0123456789abcdef')");
  test("small scalars are compact and inline",
       "eq(send(5), 1) eq(send(-5), 2) eq(send(1000), 3) eq(send(1000000), 5)\n"
       "eq(send(1 << 40), 9) eq(send(1.5), 9) eq(send('hello'), 6)\n"
       "eq(send(true), 1) eq(send(nil), 1)\n"
       "eq(send(string.rep('a', 31)), 32) eq(send(string.rep('a', 32)), 34)\n"
       "eq(send(1, 2.5, 'abc', true), 15)\n"
       "for i = 1, 12 do recv() end",
       NULL);
  test("a scalar message costs no Lua allocation and no malloc",
       "send(1) recv()\n"
       "local a, m = allocs(), mallocs()\n"
       "for i = 1, 100 do send(i, 'short string', 2.5, true) recv() end\n"
       "eq(allocs(), a, 'Lua allocations')\n"
       "if m >= 0 then eq(mallocs(), m, 'mallocs') end",
       NULL);
  test("a small table message costs no malloc in the codec",
       "local t = {1, 2, x = 3}\n"
       "send(t) recv()\n"
       "local a, m = allocs(), mallocs()\n"
       "for i = 1, 100 do send(t) end\n"
       "if m >= 0 then eq(mallocs(), m, 'mallocs') end\n"
       "eq(allocs(), a, 'Lua allocations')\n"
       "for i = 1, 100 do recv() end",
       NULL);
  test("a big message spills to the heap",
       "local n = send(string.rep('x', 41)) assert(n > 40)\n"
       "n = send({string.rep('x', 300), string.rep('y', 300)}) assert(n > 600)\n"
       "local m = mallocs() send(string.rep('z', 300))\n"
       "if m >= 0 then assert(mallocs() > m, 'mallocs not counted') end\n"
       "recv() recv() eq(recv(), string.rep('z', 300))\n"
       "send(string.rep('x', 41), {string.rep('x', 300), string.rep('y', 300)})",
       "local s, t = recv() eq(s, string.rep('x', 41))\n"
       "eq(t[2], string.rep('y', 300))");

  /* ----------------------------------------------------------- tables */
  test("tables with every kind of key",
       "send({1, 2, 3, x = 'x', [1.5] = 'f', [true] = 't', [false] = 'F',\n"
       "  [-1] = 'neg', [0] = 'zero', [100] = 'far', ['a b'] = 'sp',\n"
       "  [math.mininteger] = 'min', [1e300] = 'big', [''] = 'empty'})",
       "local t = recv()\n"
       "eq(t[1], 1) eq(t[3], 3) eq(t.x, 'x') eq(t[1.5], 'f') eq(t[true], 't')\n"
       "eq(t[false], 'F') eq(t[-1], 'neg') eq(t[0], 'zero') eq(t[100], 'far')\n"
       "eq(t['a b'], 'sp') eq(t[math.mininteger], 'min') eq(t[1e300], 'big')\n"
       "eq(t[''], 'empty')\n"
       "local n = 0 for _ in pairs(t) do n = n + 1 end eq(n, 14)");
  test("arrays with holes keep their holes",
       "send({1, nil, 3, nil, 5}) send({nil, nil, 3})",
       "local t = recv() eq(t[1], 1) eq(t[2], nil) eq(t[5], 5)\n"
       "local n = 0 for _ in pairs(t) do n = n + 1 end eq(n, 3)\n"
       "t = recv() eq(t[3], 3) eq(t[1], nil)");
  test("array keys in any order or place keep their values",
       "function shapes()\n"
       "  local a = {} a[3] = 3 a[2] = 2 a[1] = 1\n"
       "  local b = {1, 2, 3, 4} b[6] = 6 b[5] = 5 b.x = 'x' b[8] = 8\n"
       "  local c = {} for i = 10, 1, -1 do c[i] = i end c.y = 'y'\n"
       "  local d = {1, 2, 3} for i = 4, 300 do d[i] = i end d[150] = nil\n"
       "  local e = {n = 1, 10, 20, [4] = 40, [3] = 30}\n"
       "  return {a, b, c, d, e}\n"
       "end\n"
       "send(shapes())",
       "function shapes()\n"
       "  local a = {} a[3] = 3 a[2] = 2 a[1] = 1\n"
       "  local b = {1, 2, 3, 4} b[6] = 6 b[5] = 5 b.x = 'x' b[8] = 8\n"
       "  local c = {} for i = 10, 1, -1 do c[i] = i end c.y = 'y'\n"
       "  local d = {1, 2, 3} for i = 4, 300 do d[i] = i end d[150] = nil\n"
       "  local e = {n = 1, 10, 20, [4] = 40, [3] = 30}\n"
       "  return {a, b, c, d, e}\n"
       "end\n"
       "local got, want = recv(), shapes()\n"
       "for i = 1, 5 do assert(deepeq(got[i], want[i]), 'shape ' .. i .. ' differs') end");
  test("a sparse table stays small (no padding up to its border)",
       "local t = {} for i = 0, 62 do t[1 << i] = i end\n"
       "local n = send(t) assert(n < 1000, 'message of ' .. n .. ' bytes')",
       "local t = recv() for i = 0, 62 do eq(t[1 << i], i) end");
  test("nested tables",
       "send({a = {b = {c = {d = 'deep'}}}, list = {{1}, {2}, {3}}})",
       "local t = recv() eq(t.a.b.c.d, 'deep') eq(t.list[3][1], 3)");
  test("big tables: 100000 array items, 100000 fields, big nested hashes",
       "local a, h = {}, {}\n"
       "for i = 1, 100000 do a[i] = i * 2; h['k' .. i] = i end\n"
       "send(a, h, build(300, 200))",
       "local a, h, b = recv()\n"
       "eq(#a, 100000) eq(a[77777], 155554)\n"
       "local n = 0 for k, v in pairs(h) do n = n + 1; eq(h['k' .. v], v) end\n"
       "eq(n, 100000)\n"
       "assert(deepeq(b, build(300, 200)), 'big nested hash differs')");
  test("a cycle keeps its shape",
       "local t = {name = 't'} t.self = t t[1] = t\n"
       "local a, b = {}, {} a.b = b b.a = a\n"
       "send(t, a)",
       "local t, a = recv()\n"
       "assert(t.self == t and t[1] == t, 'self cycle') eq(t.name, 't')\n"
       "assert(a.b.a == a, 'two-table cycle')");
  test("shared references stay shared, across roots too",
       "local s = {v = 1}\n"
       "send({s, s, x = s, [s] = s}, s)",
       "local t, s = recv()\n"
       "assert(t[1] == t[2] and t[1] == t.x and t[s] == s and t[1] == s,\n"
       "  'not shared')\n"
       "eq(s.v, 1)");
  test("a table key is the same table as its value",
       "local k = {} send({[k] = k})",
       "local t = recv() local k, v = next(t) assert(k == v, 'not the same')");
  test("copies are copies: changing one changes not the other",
       "orig = {n = 1} send(orig)",
       "local t = recv() t.n = 2");
  test("... (the sender's table is unchanged)", "eq(orig.n, 1)", NULL);
  test("metatables are copied along, shared once, set after filling",
       "local mt = {__index = {greet = function(self) return 'hi ' .. self.n end},\n"
       "  __newindex = function() error('__newindex fired') end,\n"
       "  __tostring = function(self) return 'obj ' .. self.n end}\n"
       "local a = setmetatable({}, mt) rawset(a, 'n', 'a')\n"
       "local b = setmetatable({}, mt) rawset(b, 'n', 'b')\n"
       "for i = 1, 10 do rawset(a, i, i) end\n"
       "send({a, b}, mt)",
       "local t, mt = recv()\n"
       "eq(t[1]:greet(), 'hi a') eq(tostring(t[2]), 'obj b') eq(t[1][10], 10)\n"
       "assert(getmetatable(t[1]) == getmetatable(t[2]), 'mt not shared')\n"
       "assert(getmetatable(t[1]) == mt, 'mt not the root')");
  test("no metamethod fires while encoding or decoding",
       "local t = setmetatable({1, 2, x = 1}, {\n"
       "  __index = function() error('__index fired') end,\n"
       "  __newindex = function() error('__newindex fired') end,\n"
       "  __len = function() error('__len fired') end,\n"
       "  __pairs = function() error('__pairs fired') end,\n"
       "  __eq = function() error('__eq fired') end})\n"
       "send(t)",
       "local t = recv() eq(rawget(t, 2), 2) eq(rawget(t, 'x'), 1)");
  test("a metatable that is its own __index, and a protected metatable",
       "local mt = {v = 'in mt'} mt.__index = mt mt.__metatable = 'locked'\n"
       "send(setmetatable({}, mt))",
       "local t = recv() eq(t.v, 'in mt') eq(getmetatable(t), 'locked')\n"
       "local mt = debug.getmetatable(t) assert(mt.__index == mt)");
  test("a metatable with a metatable",
       "local base = {__index = {kind = 'base'}}\n"
       "local mt = setmetatable({}, base) mt.__index = mt\n"
       "send(setmetatable({}, mt))",
       "eq(recv().kind, 'base')");
  test("nesting 100,000 deep crosses, through fields, keys, metatables",
       "local t = {} local c = t\n"
       "for i = 2, 100000 do c.a = {} c = c.a end c.v = 'bottom'\n"
       "local k = {} c = k\n"
       "for i = 2, 100000 do c[1] = {} c = c[1] end c[1] = 'key bottom'\n"
       "local m = {} c = m\n"
       "for i = 2, 100000 do local n = {} setmetatable(c, {__index = n}) c = n end\n"
       "c.v = 'mt bottom'\n"
       "send(t, {[k] = true}, m)",
       "local t, kt, m = recv()\n"
       "local c = t for i = 2, 100000 do c = c.a end eq(c.v, 'bottom')\n"
       "c = next(kt) for i = 2, 100000 do c = c[1] end eq(c[1], 'key bottom')\n"
       "c = m for i = 2, 100000 do c = getmetatable(c).__index end\n"
       "eq(c.v, 'mt bottom')");
  test("the limit of " STR(GR_CODEC_MAXDEPTH) " levels holds both ways",
       "local t = {} local c = t\n"
       "for i = 2, " STR(GR_CODEC_MAXDEPTH) " do c.a = {} c = c.a end c.v = 'bottom'\n"
       "send(t)\n"
       "c.a = {}\n"
       "local e = errmsg(send, t)\n"
       "assert(e:find('^cannot send value: nesting deeper than " STR(GR_CODEC_MAXDEPTH)
       " at value' .. string.rep('%.a', 100)), e)\n"
       "assert(#e < 400 and e:sub(-3) == '...', 'path not cut: ' .. #e)\n"
       "eq(pending(), 1)\n"
       "local deep = {} c = deep for i = 1, 300000 do c[1] = {} c = c[1] end\n"
       "e = errmsg(send, {x = deep})\n"
       "assert(e:find('^cannot send value: nesting deeper than " STR(GR_CODEC_MAXDEPTH)
       " at value.x%[1%]%[1%]'), e)\n"
       "eq(pending(), 1)",
       "local c = recv() for i = 2, " STR(GR_CODEC_MAXDEPTH) " do c = c.a end\n"
       "eq(c.v, 'bottom')");
  test("functions nested through upvalues: deep ones cross, too deep ones are refused",
       "local f = function() return 0 end\n"
       "for i = 1, 5000 do local g = f; f = function() return g() + 1 end end\n"
       "send(f)\n"
       "local t = {}\n"
       "local h = function() return t end\n"
       "for i = 1, " STR(GR_CODEC_MAXDEPTH) " do local g = h; h = function() return g end end\n"
       "local e = errmsg(send, h)\n"
       "assert(e:find(\"^cannot send value: nesting deeper than " STR(GR_CODEC_MAXDEPTH)
       " at upvalue 'g' of upvalue 'g' of\"), e)\n"
       "eq(pending(), 1)",
       "local f = recv() eq(f(), 5000)");

  /* -------------------------------------------------------- functions */
  test("a Lua function with upvalues",
       "local n, s = 5, 'x'\n"
       "send(function(a) return a + n, s end)",
       "local f = recv() local a, b = f(1) eq(a, 6) eq(b, 'x')");
  test("upvalues are copies: the sender's stays",
       "counter = 0\n"
       "local c = 0\n"
       "getc = function() return c end\n"
       "send(function() c = c + 1 return c end)",
       "local inc = recv() eq(inc(), 1) eq(inc(), 2)");
  test("... (sender's upvalue unchanged)", "eq(getc(), 0)", NULL);
  test("two closures sharing an upvalue still share it",
       "local n = 0\n"
       "local function inc() n = n + 1 return n end\n"
       "local function get() return n end\n"
       "send({inc = inc, get = get})\n"
       "gosend(inc, get, {inc})",
       "local t = recv() t.inc() t.inc() eq(t.get(), 2)\n"
       "local inc, get, l = recv() inc() eq(get(), 1) l[1]() eq(get(), 2)\n"
       "assert(l[1] == inc, 'function not shared')");
  test("a shared upvalue reached inside the value of another upvalue",
       "local n = 10\n"
       "local holder = {}\n"
       "local function f() n = n + 1 return holder, n end\n"
       "holder.g = function() return n end\n"
       "send(f)",
       "local f = recv() local h, n = f() eq(n, 11) eq(h.g(), 11)");
  test("a recursive local function",
       "local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end\n"
       "send(fact)",
       "local fact = recv() eq(fact(10), 3628800)");
  test("a closure factory and its closures",
       "local function counter(start)\n"
       "  local n = start\n"
       "  return function() n = n + 1 return n end\n"
       "end\n"
       "send(counter, counter(41))",
       "local counter, c = recv() eq(c(), 42) local d = counter(0) eq(d(), 1)");
  test("a function keeps its debug information",
       "send(load('local x = ...\\nerror(\"boom\")', '@script.lua'))",
       "local f = recv() local info = debug.getinfo(f, 'S')\n"
       "eq(info.source, '@script.lua')\n"
       "local ok, e = pcall(f) eq(e, 'script.lua:2: boom')");
  test("_ENV that is the sender's globals is the receiver's globals",
       "x = 'A'\n"
       "send(function() return x end, {function() y = 'set' end,\n"
       "  function() return y end})",
       "x = 'B'\n"
       "local f, t = recv() eq(f(), 'B') t[1]() eq(y, 'set') eq(t[2](), 'set')");
  test("any other _ENV is copied like a table",
       "local function mk() local _ENV = {x = 'mine'} return function() return x end end\n"
       "send(mk(), load('return x', '=c', 't', {x = 'E'}))",
       "local f, g = recv() eq(f(), 'mine') eq(g(), 'E')");
  test("a function shared between roots of one go() is one function",
       "local s = {} local function f() return s end\n"
       "gosend(f, s, f)",
       "local f, s, g = recv() assert(f() == s and f == g, 'not shared')");
  test("a table shared by an upvalue and an argument is one table",
       "local t = {v = 1} gosend(function() return t end, t)",
       "local f, t = recv() assert(f() == t, 'not shared') t.v = 2 eq(f().v, 2)");
  test("functions as keys and methods",
       "local obj = {n = 3}\n"
       "function obj:twice() return self.n * 2 end\n"
       "send({[obj.twice] = 'method'}, obj)",
       "local t, obj = recv() eq(obj:twice(), 6) eq(t[obj.twice], 'method')");
  test("a stripped function is refused",
       "local f = load(string.dump(function() return 1 end, true))\n"
       "eq(errmsg(send, {f = f}), 'cannot send function without debug ' ..\n"
       "  'information (stripped) at value.f')\n"
       "eq(pending(), 0)",
       NULL);

  /* ------------------------------------------------------ C functions */
  test("C functions of the standard library cross by name",
       "send({print, string.format, math.max, table.concat, io.write,\n"
       "  os.time, utf8.char, coroutine.wrap, debug.traceback, select,\n"
       "  require, package.searchpath, string.gsub})",
       "local t = recv()\n"
       "assert(t[1] == print and t[2] == string.format and t[3] == math.max and\n"
       "  t[4] == table.concat and t[5] == io.write and t[6] == os.time and\n"
       "  t[7] == utf8.char and t[8] == coroutine.wrap and\n"
       "  t[9] == debug.traceback and t[10] == select and t[11] == require and\n"
       "  t[12] == package.searchpath, 'not the receiver\\'s functions')\n"
       "eq(t[2]('%d', 7), '7') eq(t[13]('aa', 'a', 'b'), 'bb')");
  test("C functions of the goroutine module cross by name; closures are the receiver's",
       "send(goroutine.id, goroutine.tag)",
       "local id, tag = recv() eq(id(), 'B') eq(tag(), 'B')\n"
       "assert(tag == goroutine.tag, 'not the receiver\\'s closure')");
  test("a function that uses C functions as upvalues",
       "local fmt, concat = string.format, table.concat\n"
       "send(function(...) return fmt('%s!', concat({...}, ',')) end)",
       "eq(recv()(1, 2, 3), '1,2,3!')");
  test("a C function loaded after the first send is found",
       "send(print) package.loaded.goroutine.extra = extra send(goroutine.extra)",
       "recv() package.loaded.goroutine.extra = extra\n"
       "local f = recv() eq(f(), 'extra') assert(f == extra)");
  test("an unknown C function is refused, with its path",
       "eq(errmsg(send, string.gmatch('a', 'a')), 'cannot send C function at value')\n"
       "eq(errmsg(gosend, print, 1, {cb = coroutine.wrap(function() end)}),\n"
       "  'cannot send C function at argument #2.cb')\n"
       "eq(pending(), 0)",
       NULL);

  /* -------------------------------------------------- untransferable */
  test("untransferable values name their type and path",
       "local co = coroutine.create(function() end)\n"
       "eq(errmsg(send, {log = io.stdout}), 'cannot send userdata (FILE*) at value.log')\n"
       "eq(errmsg(send, {co = {1, co}}), 'cannot send thread at value.co[2]')\n"
       "eq(errmsg(send, co), 'cannot send thread at value')\n"
       "eq(errmsg(send, 1, co), 'cannot send thread at value #2')\n"
       "eq(errmsg(send, {p = lightud()}), 'cannot send light userdata at value.p')\n"
       "eq(errmsg(send, {plainud()}), 'cannot send userdata at value[1]')\n"
       "eq(errmsg(gosend, print, 1, {x = {co}}), 'cannot send thread at argument #2.x[1]')\n"
       "eq(errmsg(gosend, co), 'cannot send thread at function')\n"
       "eq(pending(), 0)",
       NULL);
  test("path segments: odd keys are quoted, others are [?]",
       "local co = coroutine.create(function() end)\n"
       "eq(errmsg(send, {['a b'] = {co}}), 'cannot send thread at value[\"a b\"][1]')\n"
       "eq(errmsg(send, {['end'] = co}), 'cannot send thread at value[\"end\"]')\n"
       "eq(errmsg(send, {['a\\n\"\\\\'] = co}), 'cannot send thread at value[\"a\\\\n\\\\\"\\\\\\\\\"]')\n"
       "eq(errmsg(send, {['1x'] = co}), 'cannot send thread at value[\"1x\"]')\n"
       "eq(errmsg(send, {_ok9 = co}), 'cannot send thread at value._ok9')\n"
       "eq(errmsg(send, {[string.rep('i', 41)] = co}),\n"
       "  'cannot send thread at value[\"' .. string.rep('i', 40) .. '...\"]')\n"
       "eq(errmsg(send, {[true] = co}), 'cannot send thread at value[?]')\n"
       "eq(errmsg(send, {[1.5] = co}), 'cannot send thread at value[?]')\n"
       "eq(errmsg(send, {[-7] = co}), 'cannot send thread at value[-7]')\n"
       "eq(errmsg(send, {[{}] = co}), 'cannot send thread at value[?]')\n"
       "eq(errmsg(send, {[string.rep('k', 50)] = co}),\n"
       "  'cannot send thread at value[\"' .. string.rep('k', 40) .. '...\"]')\n"
       "eq(pending(), 0)",
       NULL);
  test("paths through keys, upvalues and metatables",
       "local co = coroutine.create(function() end)\n"
       "eq(errmsg(send, {t = {[co] = 1}}), 'cannot send thread at key of value.t')\n"
       "eq(errmsg(send, {[{x = co}] = 1}), 'cannot send thread at key.x of value')\n"
       "local log = io.stderr\n"
       "local function handler() log:write('x') end\n"
       "eq(errmsg(send, {handler = handler}),\n"
       "  'cannot send userdata (FILE*) at upvalue \\'log\\' of value.handler')\n"
       "local cfg = {out = {io.stdout}}\n"
       "local function h2() return cfg end\n"
       "eq(errmsg(gosend, h2), 'cannot send userdata (FILE*) at upvalue \\'cfg\\'.out[1] of function')\n"
       "local function h3() return h2 end\n"
       "eq(errmsg(gosend, print, h3),\n"
       "  'cannot send userdata (FILE*) at upvalue \\'cfg\\'.out[1] of upvalue \\'h2\\' of argument #1')\n"
       "eq(errmsg(send, {t = setmetatable({}, {__index = io.stdout})}),\n"
       "  'cannot send userdata (FILE*) at metatable.__index of value.t')\n"
       "local G = _G\n"
       "local e = errmsg(send, function() return G end)\n"
       "assert(e:find(\"^cannot send [^\\n]* at upvalue 'G'%.\"), e)\n"
       "eq(pending(), 0)",
       NULL);

  /* ---------------------------------------------------------- handles */
  test("a handle crosses by reference and holds a reference",
       "h = newobj() eq(h:refs(), 1)\n"
       "local len, nobjs = send(h) assert(len <= 40, 'not inline') eq(nobjs, 1)\n"
       "eq(h:refs(), 2)\n"
       "send({h, h, k = h}) eq(select(2, msglen()), 1) eq(h:refs(), 3)",
       "r = recv() eq(r:refs(), 3)\n"
       "local t = recv() assert(t[1] == r and t[2] == r and t.k == r, 'not one value')\n"
       "eq(r:refs(), 2)");
  test("... refs drop as the handles are collected",
       NULL,
       "r = nil collectgarbage() collectgarbage()");
  test("... down to the sender's own",
       "eq(h:refs(), 1) h = nil collectgarbage() collectgarbage() eq(live(), 0)",
       NULL);
  test("many handles in one message",
       "local hs = {} for i = 1, 20 do hs[i] = newobj() end\n"
       "local _, n = send(hs) eq(n, 20)\n"
       "for i = 1, 20 do eq(hs[i]:refs(), 2) end\n"
       "hs = nil collectgarbage() collectgarbage() eq(live(), 20)",
       "local hs = recv() eq(#hs, 20) eq(hs[20]:refs(), 1)\n"
       "hs = nil collectgarbage() collectgarbage() eq(live(), 0)");
  test("nothing half-sent: a failed message holds no reference",
       "local hs = {} for i = 1, 10 do hs[i] = newobj() end\n"
       "hs[11] = string.rep('x', 5000) hs[12] = io.stdout\n"
       "eq(errmsg(send, hs), 'cannot send userdata (FILE*) at value[12]')\n"
       "eq(errmsg(gosend, hs[1], hs[2], {hs[3], {coroutine.create(print)}}),\n"
       "  'cannot send thread at argument #2[2][1]')\n"
       "for i = 1, 10 do eq(hs[i]:refs(), 1) end\n"
       "eq(pending(), 0)\n"
       "hs = nil collectgarbage() collectgarbage() eq(live(), 0)",
       NULL);
  test("the whole of _G does not cross",
       "local e = errmsg(send, _G)\n"
       "assert(e:find('^cannot send [^\\n]* at value%.'), e)",
       NULL);

  /* ------------------------------------------------------- user types */
  test("a user table crosses as its encoding, rebuilt by the receiver's decoder",
       "Point = {__name = 'point'}\n"
       "Point.__goroutine_encode = function(p) return {p.x, p.y} end\n"
       "local p = setmetatable({x = 1, y = 2.5}, Point)\n"
       "send(p, {p, p, [p] = 'key'})",
       "local Pt = {__name = 'point'} Pt.__index = Pt\n"
       "function Pt.sum(p) return p.x + p.y end\n"
       "calls = 0\n"
       "goroutine.register('point', function(t)\n"
       "  calls = calls + 1 return setmetatable({x = t[1], y = t[2]}, Pt) end)\n"
       "local p, t = recv()\n"
       "eq(calls, 1, 'decoder calls') eq(getmetatable(p), Pt) eq(p:sum(), 3.5)\n"
       "assert(t[1] == p and t[2] == p and t[p] == 'key', 'not one value')");
  test("a user userdata crosses; user values nest and share",
       "local U = {__name = 'blob', __goroutine_encode = function(u) return 'bytes' end}\n"
       "local u = debug.setmetatable(plainud(), U)\n"
       "local inner = setmetatable({}, {__name = 'box',\n"
       "  __goroutine_encode = function() return {u, u} end})\n"
       "send(setmetatable({}, {__name = 'box',\n"
       "  __goroutine_encode = function() return {inner, u} end}))",
       "goroutine.register('blob', function(s) return {blob = s} end)\n"
       "goroutine.register('box', function(t) return {box = t} end)\n"
       "local b = recv()\n"
       "eq(b.box[2].blob, 'bytes')\n"
       "assert(b.box[1].box[1] == b.box[2] and b.box[1].box[2] == b.box[2],\n"
       "  'shared user value not shared')");
  test("an encoding of nil, a decoder returning nil, a value referenced twice",
       "local N = {__name = 'none', __goroutine_encode = function() return nil end}\n"
       "local n = setmetatable({}, N)\n"
       "send({n, n, after = 1})",
       "goroutine.register('none', function(v) assert(v == nil) return nil end)\n"
       "local t = recv() eq(t[1], nil) eq(t[2], nil) eq(t.after, 1)");
  test("decoders are per state: registering in A does not reach B",
       "goroutine.register('only_a', function() return 'A' end)\n"
       "send(setmetatable({}, {__name = 'only_a',\n"
       "  __goroutine_encode = function() return 1 end}))",
       "local e = errmsg(recv)\n"
       "eq(e, \"goroutine: cannot receive a value of type 'only_a': no decoder \" ..\n"
       "  'registered in this goroutine (goroutine.register)')");
  test("register(name, nil) removes a decoder; its arguments are checked",
       NULL,
       "goroutine.register('gone', function() return 1 end)\n"
       "goroutine.register('gone', nil)\n"
       "local e = errmsg(goroutine.register)\n"
       "assert(e:find(\"^bad argument #1 to '[%w.]*register' %(string expected, \" ..\n"
       "  'got no value%)$'), e)\n"
       "e = errmsg(goroutine.register, 'x', 5)\n"
       "assert(e:find(\"^bad argument #2 to '[%w.]*register' %(function expected, \" ..\n"
       "  'got number%)$'), e)");
  test("... and a removed decoder is an error in the receiver",
       "send(setmetatable({}, {__name = 'gone', __goroutine_encode = function() return 1 end}))",
       "assert(errmsg(recv):find(\"type 'gone': no decoder\"))");
  test("a user type needs __name and a function __goroutine_encode",
       "local co = coroutine.create(print)\n"
       "eq(errmsg(send, {p = setmetatable({}, {__goroutine_encode = function() end})}),\n"
       "  'cannot send table (its metatable has __goroutine_encode but no __name) ' ..\n"
       "  'at value.p')\n"
       "eq(errmsg(send, {debug.setmetatable(plainud(), {__name = 'u',\n"
       "  __goroutine_encode = true})}),\n"
       "  'cannot send userdata (its __goroutine_encode is not a function) at value[1]')\n"
       "eq(pending(), 0)",
       NULL);
  test("what an encoding holds follows the rules, with its path",
       "local co = coroutine.create(print)\n"
       "local P = {__name = 'conn', __goroutine_encode = function(c) return {fd = c.fd} end}\n"
       "local h = newobj()\n"
       "local conns = {setmetatable({fd = 1}, P), setmetatable({fd = 2}, P),\n"
       "  setmetatable({fd = co}, P)}\n"
       "eq(errmsg(send, {h, conns = conns}), 'cannot send thread at encoded conn.fd ' ..\n"
       "  'of value.conns[3]')\n"
       "local S = {__name = 'selfish', __goroutine_encode = function(s) return {me = s} end}\n"
       "eq(errmsg(send, setmetatable({}, S)), 'cannot send user value inside what its ' ..\n"
       "  'own __goroutine_encode returned at encoded selfish.me of value')\n"
       "local E = {__name = 'err', __goroutine_encode = function() error('no way', 0) end}\n"
       "eq(errmsg(send, {h, setmetatable({}, E)}), 'no way')\n"
       "eq(pending(), 0) eq(h:refs(), 1)",
       NULL);
  test("a decoder's error is the receiver's error, and the message is freed",
       "hd = newobj()\n"
       "send({hd, string.rep('x', 100), setmetatable({}, {__name = 'bad',\n"
       "  __goroutine_encode = function() return 1 end})})\n"
       "eq(hd:refs(), 2)",
       "goroutine.register('bad', function() error('cannot rebuild', 0) end)\n"
       "eq(errmsg(recv), 'cannot rebuild')\n"
       "collectgarbage() collectgarbage()");
  test("... (the message's reference is dropped)",
       "eq(hd:refs(), 1) hd = nil collectgarbage() collectgarbage() eq(live(), 0)",
       NULL);

  /* -------------------------------------------------- out of memory */
  test("running out of memory while decoding is an error; the message is freed",
       "hm = newobj()\n"
       "send({hm, string.rep('x', 1 << 20)})\n"
       "local big = {} for i = 1, 100000 do big[i] = {i} end\n"
       "send(big)",
       "memlimit(100000)\n"
       "eq(errmsg(recv), 'not enough memory')\n"
       "eq(errmsg(recv), 'not enough memory')\n"
       "memlimit(nil) collectgarbage()");
  test("... (the reference the message held is dropped)",
       "eq(hm:refs(), 1) hm = nil collectgarbage() collectgarbage() eq(live(), 0)",
       NULL);
  test("running out of memory while encoding is an error; nothing is half-sent",
       "local h = newobj()\n"
       "local deep = {h} local c = deep for i = 1, 20000 do c[2] = {} c = c[2] end\n"
       "collectgarbage() memlimit(1000)\n"
       "local e = errmsg(send, deep)\n"
       "memlimit(nil)\n"
       "assert(e == 'not enough memory' or e:find('^stack overflow'), e)\n"
       "eq(pending(), 0) eq(h:refs(), 1)\n"
       "local t = {h} for i = 2, 1000 do t[i] = {i, tostring(i)} end\n"
       "if failmalloc(1) then\n"
       "  eq(errmsg(send, string.rep('x', 1000)), 'not enough memory')\n"
       "  for n = 1, 6 do\n"
       "    failmalloc(n)\n"
       "    local ok, e = pcall(send, t)\n"
       "    failmalloc(0)\n"
       "    if ok then recv() else eq(e, 'not enough memory') end\n"
       "    eq(pending(), 0) eq(h:refs(), 1)\n"
       "  end\n"
       "end\n"
       "failmalloc(0)",
       NULL);
}
