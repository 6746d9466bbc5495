/*
** codec.c — Lua values <-> bytes.
**
** A message never leaves the process, so numbers are stored in host byte
** order.  Layout of the len bytes of a message:
**
**   value value ... value | gr_obj *trailer[nobjs]
**
** The values fill the bytes before the trailer, one after another; the
** decoder pushes as many as it finds.  The trailer holds the handles the
** message keeps a reference to, so gr_msg_free can drop them without a
** lua_State.  A value is one tag byte and what the tag says follows:
**
**   0x80|i                     integer i, 0 <= i <= 127
**   0x40|n  byte[n]            string of n <= 31 bytes
**   NIL FALSE TRUE
**   INT8 i8, INT16 i16, INT32 i32, INT64 i64
**   FLOAT f64                  the 8 bytes of the double (NaN, -0.0 exact)
**   STR uvar(n) byte[n]
**   TABLE uvar(narr) uvar(nrec) value[narr] (key value)[nrec]
**   TABLEMT  as TABLE, then the metatable (a value: TABLE, TABLEMT or REF)
**   LFUNC u32(n) byte[n] upvalue[nups]    lua_dump bytecode, not stripped
**   CFUNC uvar(n) byte[n]      "lib.name" in package.loaded
**   REF uvar(id)               a table or function met before
**   HANDLE uvar(k)             trailer[k]
**
**   upvalue = value | GLOBALS  (the receiver's global table)
**                   | UPREF uvar(id) uvar(k)  (shares upvalue k of function id)
**
** uvar is an unsigned LEB128 varint.  Every TABLE, TABLEMT and LFUNC tag
** takes the next id (1, 2, ...) in the order the tags appear, on both sides,
** so REF keeps shared references and cycles.  value[narr] holds t[1..narr]
** (a NIL there is skipped) and the pairs hold the other keys, never NIL
** nor NaN.  The decoder preallocates lua_createtable(narr, nrec), fills the
** table with raw sets and sets the metatable last.  Nesting of tables and
** functions is at most GR_CODEC_MAXDEPTH deep, both ways.
**
** Encoding runs in two gears.  The fast path writes scalars (nil, booleans,
** numbers, strings) into a buffer on the C stack: a message of scalars costs
** no malloc (unless big) and no Lua allocation.  At the first table,
** function or userdata the rest is walked by a protected C function, so
** that every error, ours or Lua's, comes back to one place that frees the
** buffer and drops the handle references taken so far before re-raising.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "codec.h"
#include "obj.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT8, T_INT16, T_INT32, T_INT64, T_FLOAT,
  T_STR, T_TABLE, T_TABLEMT, T_LFUNC, T_CFUNC, T_REF, T_HANDLE, T_GLOBALS,
  T_UPREF
};
#define T_FIXSTR    0x40      /* 0x40..0x5f */
#define FIXSTR_MAX  31
#define T_FIXINT    0x80      /* 0x80..0xff */

#define PTRSIZE     sizeof(gr_obj *)
#define MAXLEN      ((size_t)UINT32_MAX)

#define STR_(x) #x
#define STR(x) STR_(x)

/* ================================================================ encoder */

#define STACKBUF    256       /* bytes encoded before the first malloc */
#define MAP_INLINE  32        /* identity-map slots before the first malloc */
#define OBJS_INLINE 4

/* One step of the path from a root to the value being encoded. */
enum { SEG_ROOT, SEG_FIELD, SEG_KEY, SEG_UPVALUE, SEG_METATABLE };
typedef struct seg {
  int kind;
  int idx;          /* FIELD, KEY: stack index of the key; UPVALUE: function */
  lua_Integer n;    /* ROOT: which root (0, 1, ...); UPVALUE: which upvalue */
} seg;

/* Identity map, keyed by the address of a live object: table or Lua
** closure -> its id; upvalue cell (lua_upvalueid) -> (id of the closure
** first seen with it, its index); handle userdata -> its trailer index. */
typedef struct ment {
  const void *key;
  uint32_t a, b;
} ment;

typedef struct enc {
  lua_State *L;
  gr_msg *m;
  unsigned char *buf;
  size_t len, cap;
  gr_obj **objs;
  uint32_t nobjs, objcap;
  ment *map;              /* NULL until the first table or function */
  uint32_t mapmask, mapcount;
  uint32_t nextid;
  int prot;               /* running inside the protected walk */
  int kind, nroots, start;
  int depth, npath;
  int cfslot;             /* stack slot for the C-function name map */
  const void *globals;    /* the sender's global table, once looked up */
  unsigned char stackbuf[STACKBUF];
  gr_obj *objinl[OBJS_INLINE];
  ment mapinl[MAP_INLINE];
  seg path[GR_CODEC_MAXDEPTH + 2];
} enc;

/* Undo everything: free the buffer, drop the references taken, empty *m. */
static void enc_abandon(enc *e) {
  uint32_t i;
  if (e->buf != e->stackbuf) free(e->buf);
  e->buf = e->stackbuf;
  e->len = 0;
  e->cap = STACKBUF;
  for (i = 0; i < e->nobjs; i++) gr_obj_release(e->objs[i]);
  e->nobjs = 0;
  if (e->objs != e->objinl) free(e->objs);
  e->objs = e->objinl;
  if (e->map != NULL && e->map != e->mapinl) free(e->map);
  e->map = NULL;
  e->m->len = 0;
  e->m->nobjs = 0;
}

/* Raise msg.  Outside the protected walk, clean up first (inside it the
** caller of lua_pcall does). */
static void enc_raise(enc *e, const char *msg) {
  if (!e->prot) enc_abandon(e);
  lua_pushstring(e->L, msg);
  lua_error(e->L);
}

static int enc_trygrow(enc *e, size_t need) {
  size_t want = e->len + need, cap;
  unsigned char *nb;
  if (want < e->len || want > MAXLEN) return 0;
  cap = e->cap * 2;
  if (cap < want) cap = want;
  if (e->buf == e->stackbuf) {
    nb = (unsigned char *)malloc(cap);
    if (nb != NULL) memcpy(nb, e->buf, e->len);
  } else {
    nb = (unsigned char *)realloc(e->buf, cap);
  }
  if (nb == NULL) return 0;
  e->buf = nb;
  e->cap = cap;
  return 1;
}

static void enc_grow(enc *e, size_t need) {
  if (!enc_trygrow(e, need))
    enc_raise(e, e->len + need > MAXLEN || e->len + need < e->len
                 ? "cannot send value: message too large"
                 : "not enough memory");
}

#define enc_reserve(e, n) \
  do { if ((e)->cap - (e)->len < (size_t)(n)) enc_grow((e), (n)); } while (0)

static inline void put_byte(enc *e, unsigned char c) {
  enc_reserve(e, 1);
  e->buf[e->len++] = c;
}

static inline int uvar_write(unsigned char *p, uint64_t v) {
  int n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

static inline void put_uvar(enc *e, uint64_t v) {
  enc_reserve(e, 10);
  e->len += (size_t)uvar_write(e->buf + e->len, v);
}

static inline void put_tagged(enc *e, unsigned char tag, uint64_t v) {
  enc_reserve(e, 11);
  e->buf[e->len++] = tag;
  e->len += (size_t)uvar_write(e->buf + e->len, v);
}

static void enc_integer(enc *e, lua_Integer i) {
  unsigned char *p;
  enc_reserve(e, 9);
  p = e->buf + e->len;
  if ((lua_Unsigned)i <= 127) {
    p[0] = (unsigned char)(T_FIXINT | i);
    e->len += 1;
  } else if (i >= INT8_MIN && i <= INT8_MAX) {
    int8_t v = (int8_t)i;
    p[0] = T_INT8; memcpy(p + 1, &v, 1); e->len += 2;
  } else if (i >= INT16_MIN && i <= INT16_MAX) {
    int16_t v = (int16_t)i;
    p[0] = T_INT16; memcpy(p + 1, &v, 2); e->len += 3;
  } else if (i >= INT32_MIN && i <= INT32_MAX) {
    int32_t v = (int32_t)i;
    p[0] = T_INT32; memcpy(p + 1, &v, 4); e->len += 5;
  } else {
    int64_t v = (int64_t)i;
    p[0] = T_INT64; memcpy(p + 1, &v, 8); e->len += 9;
  }
}

static void enc_float(enc *e, lua_Number x) {
  double d = (double)x;
  enc_reserve(e, 9);
  e->buf[e->len] = T_FLOAT;
  memcpy(e->buf + e->len + 1, &d, 8);
  e->len += 9;
}

static void enc_string(enc *e, const char *s, size_t n) {
  if (n > MAXLEN) enc_raise(e, "cannot send value: message too large");
  enc_reserve(e, n + 11);
  if (n <= FIXSTR_MAX) {
    e->buf[e->len++] = (unsigned char)(T_FIXSTR | n);
  } else {
    e->buf[e->len++] = T_STR;
    e->len += (size_t)uvar_write(e->buf + e->len, n);
  }
  memcpy(e->buf + e->len, s, n);
  e->len += n;
}

/* Encode the value at idx if it is a scalar; 0 if it is not one. */
static inline int enc_scalar(enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      put_byte(e, T_NIL);
      return 1;
    case LUA_TBOOLEAN:
      put_byte(e, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
      return 1;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) enc_integer(e, lua_tointeger(L, idx));
      else enc_float(e, lua_tonumber(L, idx));
      return 1;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      enc_string(e, s, n);
      return 1;
    }
    default:
      return 0;
  }
}

/* -------------------------------------------------------- identity map */

static inline uint32_t ptr_hash(const void *p) {
  uint64_t h = (uint64_t)(uintptr_t)p * UINT64_C(0x9E3779B97F4A7C15);
  return (uint32_t)(h >> 32);
}

static ment *map_find(enc *e, const void *key) {
  uint32_t i;
  if (e->map == NULL) return NULL;
  for (i = ptr_hash(key) & e->mapmask; e->map[i].key != NULL;
       i = (i + 1) & e->mapmask)
    if (e->map[i].key == key) return &e->map[i];
  return NULL;
}

static void map_put(ment *map, uint32_t mask, const void *key,
                    uint32_t a, uint32_t b) {
  uint32_t i = ptr_hash(key) & mask;
  while (map[i].key != NULL) i = (i + 1) & mask;
  map[i].key = key;
  map[i].a = a;
  map[i].b = b;
}

/* Add key (known to be absent); the table is kept at most half full. */
static void map_add(enc *e, const void *key, uint32_t a, uint32_t b) {
  if (e->map == NULL) {
    memset(e->mapinl, 0, sizeof e->mapinl);
    e->map = e->mapinl;
    e->mapmask = MAP_INLINE - 1;
    e->mapcount = 0;
  } else if ((e->mapcount + 1) * 2 > e->mapmask + 1) {
    uint32_t ncap = (e->mapmask + 1) * 2, i;
    ment *nm = (ment *)calloc(ncap, sizeof *nm);
    if (nm == NULL) enc_raise(e, "not enough memory");
    for (i = 0; i <= e->mapmask; i++)
      if (e->map[i].key != NULL)
        map_put(nm, ncap - 1, e->map[i].key, e->map[i].a, e->map[i].b);
    if (e->map != e->mapinl) free(e->map);
    e->map = nm;
    e->mapmask = ncap - 1;
  }
  map_put(e->map, e->mapmask, key, a, b);
  e->mapcount++;
}

/* ------------------------------------------------------ error paths */

static const char *const reserved[] = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
  "true", "until", "while", NULL
};

static int is_name(const char *s, size_t n) {
  size_t i;
  int j;
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  for (j = 0; reserved[j] != NULL; j++)
    if (strlen(reserved[j]) == n && memcmp(reserved[j], s, n) == 0) return 0;
  return 1;
}

#define KEY_SHOWN 40   /* longer string keys are cut in error paths */

static void add_quoted(luaL_Buffer *b, const char *s, size_t n) {
  size_t i, shown = n > KEY_SHOWN ? KEY_SHOWN : n;
  luaL_addchar(b, '"');
  for (i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    switch (c) {
      case '"': luaL_addstring(b, "\\\""); break;
      case '\\': luaL_addstring(b, "\\\\"); break;
      case '\n': luaL_addstring(b, "\\n"); break;
      case '\r': luaL_addstring(b, "\\r"); break;
      case '\t': luaL_addstring(b, "\\t"); break;
      default:
        if (c < 32 || c == 127) {
          snprintf(esc, sizeof esc, "\\%03d", c);
          luaL_addstring(b, esc);
        } else {
          luaL_addchar(b, (char)c);
        }
    }
  }
  if (shown < n) luaL_addstring(b, "...");
  luaL_addchar(b, '"');
}

static void add_int(luaL_Buffer *b, lua_Integer i) {
  char s[32];
  snprintf(s, sizeof s, LUA_INTEGER_FMT, (LUAI_UACINT)i);
  luaL_addstring(b, s);
}

static void add_index(luaL_Buffer *b, lua_Integer i) {
  luaL_addchar(b, '[');
  add_int(b, i);
  luaL_addchar(b, ']');
}

static void add_key(lua_State *L, luaL_Buffer *b, int k) {
  if (lua_type(L, k) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, k, &n);
    if (n <= KEY_SHOWN && is_name(s, n)) {
      luaL_addchar(b, '.');
      luaL_addlstring(b, s, n);
    } else {
      luaL_addchar(b, '[');
      add_quoted(b, s, n);
      luaL_addchar(b, ']');
    }
  } else if (lua_isinteger(L, k)) {
    add_index(b, lua_tointeger(L, k));
  } else {
    luaL_addstring(b, "[?]");
  }
}

/*
** Push the path of the value being encoded, e.g. "argument #2.cb" or
** "upvalue 'log' of value.handler".  The path splits into groups, each
** starting at a root, an upvalue, a metatable or a key, and the groups are
** written innermost first, joined by " of ".
*/
static void push_path(enc *e) {
  lua_State *L = e->L;
  int base = lua_gettop(L), ngroups = 0, i = 0, g;
  luaL_checkstack(L, e->npath + 8, NULL);
  while (i < e->npath) {
    const seg *s = &e->path[i++];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    switch (s->kind) {
      case SEG_ROOT:
        if (e->kind == GR_ENCODE_GOCALL) {
          if (s->n == 0) luaL_addstring(&b, "function");
          else {
            luaL_addstring(&b, "argument #");
            add_int(&b, s->n);
          }
        } else {
          luaL_addstring(&b, "value");
          if (e->nroots > 1) {
            luaL_addstring(&b, " #");
            add_int(&b, s->n + 1);
          }
        }
        break;
      case SEG_UPVALUE: {
        const char *name = lua_getupvalue(L, s->idx, (int)s->n);
        lua_pop(L, 1);
        luaL_addstring(&b, "upvalue '");
        luaL_addstring(&b, name != NULL ? name : "?");
        luaL_addchar(&b, '\'');
        break;
      }
      case SEG_METATABLE: luaL_addstring(&b, "metatable"); break;
      case SEG_KEY: luaL_addstring(&b, "key"); break;
      case SEG_FIELD: add_key(L, &b, s->idx); break;
    }
    while (i < e->npath && e->path[i].kind == SEG_FIELD)
      add_key(L, &b, e->path[i++].idx);
    luaL_pushresult(&b);
    ngroups++;
  }
  {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (g = ngroups; g >= 1; g--) {
      size_t n;
      const char *gs = lua_tolstring(L, base + g, &n);
      luaL_addlstring(&b, gs, n);
      if (g > 1) luaL_addstring(&b, " of ");
    }
    luaL_pushresult(&b);
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
}

/* Raise "cannot send <what> at <path>" (inside the protected walk). */
static void raise_at(enc *e, const char *what) {
  lua_State *L = e->L;
  push_path(e);
  lua_pushfstring(L, "cannot send %s at %s", what, lua_tostring(L, -1));
  lua_error(L);
}

static inline seg *push_seg(enc *e, int kind) {
  seg *s = &e->path[e->npath++];
  s->kind = kind;
  return s;
}

static void enter(enc *e) {
  if (e->depth >= GR_CODEC_MAXDEPTH)
    raise_at(e, "value: nesting deeper than " STR(GR_CODEC_MAXDEPTH));
  e->depth++;
  luaL_checkstack(e->L, 8, NULL);
}

/* ------------------------------------------------------ C functions */

static const char cfmap_key = 'c';   /* registry: C function -> "lib.name" */

/* Libraries whose C functions cross by name, in order of preference. */
static const char *const cf_libs[] = {
  "goroutine", "string", "table", "math", "io", "os", "utf8", "coroutine",
  "debug", "package", NULL
};
/* From _G only the base library (any other global may be missing in the
** receiver). */
static const char *const cf_base[] = {
  "assert", "collectgarbage", "dofile", "error", "getmetatable", "ipairs",
  "load", "loadfile", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawlen", "rawset", "require", "select", "setmetatable", "tonumber",
  "tostring", "type", "warn", "xpcall", NULL
};

static void cfmap_add(lua_State *L, int map, const char *lib, int fn,
                      const char *name) {
  void *p = (void *)lua_tocfunction(L, fn);
  if (lua_rawgetp(L, map, p) == LUA_TNIL) {
    lua_pushfstring(L, "%s.%s", lib, name);
    lua_rawsetp(L, map, p);
  }
  lua_pop(L, 1);
}

/* Build the reverse map of L's library C functions; push it and cache it. */
static void cfmap_build(lua_State *L) {
  int map, loaded, i;
  luaL_checkstack(L, 6, NULL);
  lua_newtable(L);
  map = lua_gettop(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  loaded = lua_gettop(L);
  for (i = 0; cf_libs[i] != NULL; i++) {
    lua_pushstring(L, cf_libs[i]);
    if (lua_rawget(L, loaded) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1))
          cfmap_add(L, map, cf_libs[i], lua_gettop(L), lua_tostring(L, -2));
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_pushliteral(L, "_G");
  if (lua_rawget(L, loaded) == LUA_TTABLE) {
    for (i = 0; cf_base[i] != NULL; i++) {
      lua_pushstring(L, cf_base[i]);
      if (lua_rawget(L, -2) == LUA_TFUNCTION && lua_iscfunction(L, -1))
        cfmap_add(L, map, "_G", lua_gettop(L), cf_base[i]);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
  lua_pushvalue(L, map);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cfmap_key);
}

static void enc_cfunc(enc *e, int idx) {
  lua_State *L = e->L;
  void *p = (void *)lua_tocfunction(L, idx);
  int fresh = 0;
  size_t n;
  const char *name;
  if (lua_isnil(L, e->cfslot)) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cfmap_key) != LUA_TTABLE) {
      lua_pop(L, 1);
      cfmap_build(L);
      fresh = 1;
    }
    lua_replace(L, e->cfslot);
  }
  while (lua_rawgetp(L, e->cfslot, p) != LUA_TSTRING) {
    /* Not known: maybe loaded since the map was built. */
    lua_pop(L, 1);
    if (fresh) raise_at(e, "C function");
    cfmap_build(L);
    lua_replace(L, e->cfslot);
    fresh = 1;
  }
  name = lua_tolstring(L, -1, &n);
  put_tagged(e, T_CFUNC, n);
  enc_reserve(e, n);
  memcpy(e->buf + e->len, name, n);
  e->len += n;
  lua_pop(L, 1);
}

/* --------------------------------------------------------------- walk */

static void enc_value(enc *e, int idx);

/* Write v as a uvar into the byte reserved for it at 'at', making room if
** it needs more than one. */
static void patch_uvar(enc *e, size_t at, uint64_t v) {
  unsigned char tmp[10];
  int k;
  if (v < 0x80) {
    e->buf[at] = (unsigned char)v;
    return;
  }
  k = uvar_write(tmp, v);
  enc_reserve(e, (size_t)k - 1);
  memmove(e->buf + at + k, e->buf + at + 1, e->len - at - 1);
  memcpy(e->buf + at, tmp, (size_t)k);
  e->len += (size_t)k - 1;
}

static void enc_table(enc *e, int t) {
  lua_State *L = e->L;
  const void *p = lua_topointer(L, t);
  ment *me = map_find(e, p);
  lua_Integer narr = 0;
  uint64_t nrec = 0;
  size_t at;
  int hasmt;
  seg *s;
  if (me != NULL) {
    put_tagged(e, T_REF, me->a);
    return;
  }
  map_add(e, p, e->nextid++, 0);
  enter(e);
  hasmt = lua_getmetatable(L, t);
  if (hasmt) lua_pop(L, 1);
  put_byte(e, hasmt ? T_TABLEMT : T_TABLE);
  enc_reserve(e, 2);
  at = e->len;          /* narr and nrec, one byte each until patched */
  e->len += 2;
  /* One lua_next pass.  It yields the array part first, in order: the run
  ** of keys 1, 2, 3 ... it starts with is the array section (values only);
  ** every key after the run, integer or not, is written as a pair. */
  s = push_seg(e, SEG_FIELD);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int k = lua_gettop(L) - 1;
    s->idx = k;
    if (nrec == 0 && lua_isinteger(L, k) && lua_tointeger(L, k) == narr + 1) {
      narr++;
    } else {
      s->kind = SEG_KEY;
      enc_value(e, k);
      s->kind = SEG_FIELD;
      nrec++;
    }
    enc_value(e, k + 1);
    lua_pop(L, 1);
  }
  patch_uvar(e, at + 1, nrec);   /* the later one first */
  patch_uvar(e, at, (uint64_t)narr);
  if (hasmt) {
    s->kind = SEG_METATABLE;
    lua_getmetatable(L, t);
    enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
  }
  e->npath--;
  e->depth--;
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  enc *e = (enc *)ud;
  (void)L;
  if (e->cap - e->len < sz && !enc_trygrow(e, sz)) return 1;
  memcpy(e->buf + e->len, p, sz);
  e->len += sz;
  return 0;
}

static int is_globals(enc *e, int idx) {
  lua_State *L = e->L;
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (e->globals == NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    e->globals = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
  return lua_topointer(L, idx) == e->globals;
}

static void enc_lfunc(enc *e, int f) {
  lua_State *L = e->L;
  const void *p = lua_topointer(L, f);
  ment *me = map_find(e, p);
  lua_Debug ar;
  uint32_t id, len32;
  size_t at, len;
  int i, status;
  seg *s;
  if (me != NULL) {
    put_tagged(e, T_REF, me->a);
    return;
  }
  lua_pushvalue(L, f);
  lua_getinfo(L, ">Su", &ar);
  if (strcmp(ar.source, "=?") == 0)
    raise_at(e, "function without debug information (stripped)");
  id = e->nextid++;
  map_add(e, p, id, 0);
  enter(e);
  put_byte(e, T_LFUNC);
  enc_reserve(e, 4);
  at = e->len;
  e->len += 4;
  lua_pushvalue(L, f);
  status = lua_dump(L, dump_writer, e, 0);
  lua_pop(L, 1);
  if (status != 0) enc_raise(e, "not enough memory");
  len = e->len - at - 4;
  if (len > MAXLEN) enc_raise(e, "cannot send value: message too large");
  len32 = (uint32_t)len;
  memcpy(e->buf + at, &len32, 4);
  s = push_seg(e, SEG_UPVALUE);
  s->idx = f;
  for (i = 1; i <= ar.nups; i++) {
    void *uid = lua_upvalueid(L, f, i);
    const char *name;
    int v;
    me = map_find(e, uid);
    if (me != NULL) {   /* shared with a closure met before */
      put_tagged(e, T_UPREF, me->a);
      put_uvar(e, me->b);
      continue;
    }
    map_add(e, uid, id, (uint32_t)i);
    name = lua_getupvalue(L, f, i);
    v = lua_gettop(L);
    if (strcmp(name, "_ENV") == 0 && is_globals(e, v)) {
      put_byte(e, T_GLOBALS);
    } else {
      s->n = i;
      enc_value(e, v);
    }
    lua_pop(L, 1);
  }
  e->npath--;
  e->depth--;
}

static void enc_userdata(enc *e, int idx) {
  lua_State *L = e->L;
  gr_obj *o = gr_obj_test(L, idx);
  ment *me;
  uint32_t k;
  if (o == NULL) {
    const char *what = "userdata";
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
      what = lua_pushfstring(L, "userdata (%s)", lua_tostring(L, -1));
    raise_at(e, what);
  }
  me = map_find(e, lua_touserdata(L, idx));   /* one handle per object */
  if (me != NULL) {
    k = me->a;
  } else {
    if (e->nobjs == e->objcap) {
      uint32_t ncap = e->objcap * 2;
      gr_obj **no;
      if (e->objs == e->objinl) {
        no = (gr_obj **)malloc(ncap * sizeof *no);
        if (no != NULL) memcpy(no, e->objs, e->nobjs * sizeof *no);
      } else {
        no = (gr_obj **)realloc(e->objs, ncap * sizeof *no);
      }
      if (no == NULL) enc_raise(e, "not enough memory");
      e->objs = no;
      e->objcap = ncap;
    }
    k = e->nobjs;
    map_add(e, lua_touserdata(L, idx), k, 0);
    gr_obj_retain(o);
    e->objs[e->nobjs++] = o;
  }
  put_tagged(e, T_HANDLE, k);
}

static void enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  if (enc_scalar(e, idx)) return;
  switch (lua_type(L, idx)) {
    case LUA_TTABLE: enc_table(e, idx); break;
    case LUA_TFUNCTION:
      if (lua_iscfunction(L, idx)) enc_cfunc(e, idx);
      else enc_lfunc(e, idx);
      break;
    case LUA_TUSERDATA: enc_userdata(e, idx); break;
    case LUA_TLIGHTUSERDATA: raise_at(e, "light userdata"); break;
    default: raise_at(e, luaL_typename(L, idx)); break;
  }
}

/* The protected walk: 1 = the enc, 2.. = the values left to encode. */
static int enc_walk(lua_State *L) {
  enc *e = (enc *)lua_touserdata(L, 1);
  int nv = lua_gettop(L) - 1, j;
  lua_pushnil(L);
  e->cfslot = lua_gettop(L);
  luaL_checkstack(L, 8, NULL);
  e->npath = 1;
  e->path[0].kind = SEG_ROOT;
  for (j = 0; j < nv; j++) {
    e->path[0].n = e->start + j;
    enc_value(e, 2 + j);
  }
  return 0;
}

/* Move the bytes and the trailer into *m. */
static void enc_finish(enc *e) {
  gr_msg *m = e->m;
  size_t tlen = (size_t)e->nobjs * PTRSIZE;
  if (e->len + tlen > MAXLEN) enc_raise(e, "cannot send value: message too large");
  if (tlen > 0) {
    enc_reserve(e, tlen);
    memcpy(e->buf + e->len, e->objs, tlen);
    e->len += tlen;
  }
  if (e->len <= GR_MSG_INLINE) {
    memcpy(m->u.inl, e->buf, e->len);
    if (e->buf != e->stackbuf) free(e->buf);
  } else if (e->buf == e->stackbuf) {
    unsigned char *h = (unsigned char *)malloc(e->len);
    if (h == NULL) enc_raise(e, "not enough memory");
    memcpy(h, e->buf, e->len);
    m->u.heap = h;
  } else {
    if (e->cap - e->len > e->len / 4 + 256) {   /* do not keep much slack */
      unsigned char *h = (unsigned char *)realloc(e->buf, e->len);
      if (h != NULL) e->buf = h;
    }
    m->u.heap = e->buf;
  }
  m->len = (uint32_t)e->len;
  m->nobjs = e->nobjs;
  if (e->objs != e->objinl) free(e->objs);
  if (e->map != NULL && e->map != e->mapinl) free(e->map);
}

void gr_encode(lua_State *L, int first, int n, enum gr_encode_kind kind,
               gr_msg *m) {
  enc e;
  int i;
  e.L = L;
  e.m = m;
  e.buf = e.stackbuf;
  e.len = 0;
  e.cap = STACKBUF;
  e.objs = e.objinl;
  e.nobjs = 0;
  e.objcap = OBJS_INLINE;
  e.map = NULL;
  e.nextid = 1;
  e.prot = 0;
  e.kind = kind;
  e.nroots = n;
  e.depth = 0;
  e.npath = 0;
  e.globals = NULL;
  first = lua_absindex(L, first);
  /* fast path: scalars only, nothing to clean up if anything fails */
  for (i = 0; i < n; i++)
    if (!enc_scalar(&e, first + i)) break;
  if (i < n) {
    int j;
    if (!lua_checkstack(L, n - i + 4)) {
      enc_abandon(&e);
      luaL_error(L, "stack overflow (cannot send %d values)", n);
    }
    e.start = i;
    e.prot = 1;
    lua_pushcfunction(L, enc_walk);
    lua_pushlightuserdata(L, &e);
    for (j = i; j < n; j++) lua_pushvalue(L, first + j);
    if (lua_pcall(L, n - i + 1, 0, 0) != LUA_OK) {
      enc_abandon(&e);
      lua_error(L);
    }
    e.prot = 0;
  }
  enc_finish(&e);
}

void gr_msg_number(lua_Number x, gr_msg *m) {
  double d = (double)x;
  m->len = 9;
  m->nobjs = 0;
  m->u.inl[0] = T_FLOAT;
  memcpy(m->u.inl + 1, &d, 8);
}

void gr_msg_free(gr_msg *m) {
  if (m->nobjs > 0 && (size_t)m->nobjs * PTRSIZE <= m->len) {
    const unsigned char *t = gr_msg_bytes(m) + m->len - m->nobjs * PTRSIZE;
    uint32_t i;
    for (i = 0; i < m->nobjs; i++) {
      gr_obj *o;
      memcpy(&o, t + i * PTRSIZE, PTRSIZE);
      gr_obj_release(o);
    }
  }
  if (m->len > GR_MSG_INLINE) free(m->u.heap);
  m->len = 0;
  m->nobjs = 0;
}

/* ================================================================ decoder */

typedef struct dec {
  lua_State *L;
  const unsigned char *p, *end;   /* values: [p, end) */
  const unsigned char *objs;      /* trailer */
  uint32_t nobjs;
  int ids;                        /* stack slot of id -> value, 0 if none */
  lua_Integer nextid;
  int depth;
} dec;

static void corrupt(dec *d) __attribute__((noreturn));
static void corrupt(dec *d) {
  lua_pushliteral(d->L, "goroutine: corrupt message");
  lua_error(d->L);
  abort();   /* not reached */
}

static inline void need(dec *d, size_t n) {
  if ((size_t)(d->end - d->p) < n) corrupt(d);
}

static uint64_t get_uvar(dec *d) {
  uint64_t v = 0;
  int shift = 0;
  for (;;) {
    unsigned c;
    if (d->p >= d->end || shift > 63) corrupt(d);
    c = *d->p++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
    shift += 7;
  }
}

static void dec_enter(dec *d) {
  if (++d->depth > GR_CODEC_MAXDEPTH) corrupt(d);
  luaL_checkstack(d->L, 8, "goroutine: message too deep");
  if (d->ids == 0) {   /* the first table or function: only roots below */
    lua_createtable(d->L, 8, 0);
    d->ids = lua_gettop(d->L);
  }
}

/* Give the value on top the next id. */
static void dec_register(dec *d) {
  lua_pushvalue(d->L, -1);
  lua_rawseti(d->L, d->ids, d->nextid++);
}

static void dec_value(dec *d);

static void dec_table(dec *d, int hasmt) {
  lua_State *L = d->L;
  uint64_t narr = get_uvar(d), nrec = get_uvar(d), i;
  size_t left = (size_t)(d->end - d->p);
  int t;
  /* every value takes at least one byte: no huge table from a few bytes */
  if (narr > left || nrec > left / 2 || narr > INT_MAX || nrec > INT_MAX)
    corrupt(d);
  dec_enter(d);
  lua_createtable(L, (int)narr, (int)nrec);
  t = lua_gettop(L);
  dec_register(d);
  for (i = 1; i <= narr; i++) {
    dec_value(d);
    if (lua_isnil(L, -1)) lua_pop(L, 1);
    else lua_rawseti(L, t, (lua_Integer)i);
  }
  for (i = 0; i < nrec; i++) {
    dec_value(d);
    if (lua_isnil(L, -1) ||
        (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) &&
         lua_tonumber(L, -1) != lua_tonumber(L, -1)))
      corrupt(d);
    dec_value(d);
    lua_rawset(L, t);
  }
  if (hasmt) {
    dec_value(d);
    if (!lua_istable(L, -1)) corrupt(d);
    lua_setmetatable(L, t);
  }
  d->depth--;
}

typedef struct chunk { const char *p; size_t n; } chunk;

static const char *chunk_reader(lua_State *L, void *ud, size_t *size) {
  chunk *c = (chunk *)ud;
  (void)L;
  *size = c->n;
  c->n = 0;
  return *size > 0 ? c->p : NULL;
}

static void dec_lfunc(dec *d) {
  lua_State *L = d->L;
  uint32_t n;
  chunk c;
  lua_Debug ar;
  int f, i;
  need(d, 4);
  memcpy(&n, d->p, 4);
  d->p += 4;
  need(d, n);
  dec_enter(d);
  c.p = (const char *)d->p;
  c.n = n;
  d->p += n;
  if (lua_load(L, chunk_reader, &c, "=(goroutine message)", "b") != LUA_OK)
    corrupt(d);
  f = lua_gettop(L);
  dec_register(d);
  lua_pushvalue(L, f);
  lua_getinfo(L, ">u", &ar);
  for (i = 1; i <= ar.nups; i++) {
    if (d->p >= d->end) corrupt(d);
    if (*d->p == T_GLOBALS) {
      d->p++;
      lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      lua_setupvalue(L, f, i);
    } else if (*d->p == T_UPREF) {
      uint64_t id, k;
      d->p++;
      id = get_uvar(d);
      k = get_uvar(d);
      if (id < 1 || id >= (uint64_t)d->nextid || k < 1 || k > INT_MAX)
        corrupt(d);
      lua_rawgeti(L, d->ids, (lua_Integer)id);
      if (!lua_isfunction(L, -1) || lua_iscfunction(L, -1) ||
          lua_getupvalue(L, -1, (int)k) == NULL)
        corrupt(d);
      lua_pop(L, 1);
      lua_upvaluejoin(L, f, i, -1, (int)k);
      lua_pop(L, 1);
    } else {
      dec_value(d);
      lua_setupvalue(L, f, i);
    }
  }
  d->depth--;
}

static void dec_cfunc(dec *d) {
  lua_State *L = d->L;
  uint64_t n = get_uvar(d);
  const char *name, *dot;
  need(d, n);
  name = (const char *)d->p;
  d->p += n;
  dot = (const char *)memchr(name, '.', n);
  if (dot == NULL) corrupt(d);
  luaL_checkstack(L, 4, NULL);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushlstring(L, name, (size_t)(dot - name));
  if (lua_rawget(L, -2) == LUA_TNIL) {
    /* A library this goroutine has not opened yet: reading the global
    ** opens it (libs.c). */
    lua_pop(L, 1);
    lua_pushlstring(L, name, (size_t)(dot - name));
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_insert(L, -2);
    lua_gettable(L, -2);
    lua_remove(L, -2);
  }
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushlstring(L, dot + 1, (size_t)(name + n - dot - 1));
    lua_rawget(L, -2);
  } else {
    lua_pushnil(L);
  }
  if (!lua_iscfunction(L, -1)) {
    lua_pushlstring(L, name, (size_t)n);
    lua_pushfstring(L, "goroutine: cannot receive C function '%s': "
                       "not loaded in this goroutine", lua_tostring(L, -1));
    lua_error(L);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
}

static void dec_value(dec *d) {
  lua_State *L = d->L;
  unsigned t;
  if (d->p >= d->end) corrupt(d);
  t = *d->p++;
  if (t & T_FIXINT) {
    lua_pushinteger(L, (lua_Integer)(t & 0x7f));
    return;
  }
  if ((t & 0xe0) == T_FIXSTR) {
    size_t n = t & FIXSTR_MAX;
    need(d, n);
    lua_pushlstring(L, (const char *)d->p, n);
    d->p += n;
    return;
  }
  switch (t) {
    case T_NIL: lua_pushnil(L); return;
    case T_FALSE: lua_pushboolean(L, 0); return;
    case T_TRUE: lua_pushboolean(L, 1); return;
    case T_INT8: {
      int8_t v;
      need(d, 1); memcpy(&v, d->p, 1); d->p += 1;
      lua_pushinteger(L, v);
      return;
    }
    case T_INT16: {
      int16_t v;
      need(d, 2); memcpy(&v, d->p, 2); d->p += 2;
      lua_pushinteger(L, v);
      return;
    }
    case T_INT32: {
      int32_t v;
      need(d, 4); memcpy(&v, d->p, 4); d->p += 4;
      lua_pushinteger(L, v);
      return;
    }
    case T_INT64: {
      int64_t v;
      need(d, 8); memcpy(&v, d->p, 8); d->p += 8;
      lua_pushinteger(L, (lua_Integer)v);
      return;
    }
    case T_FLOAT: {
      double v;
      need(d, 8); memcpy(&v, d->p, 8); d->p += 8;
      lua_pushnumber(L, (lua_Number)v);
      return;
    }
    case T_STR: {
      uint64_t n = get_uvar(d);
      need(d, n);
      lua_pushlstring(L, (const char *)d->p, (size_t)n);
      d->p += n;
      return;
    }
    case T_TABLE: dec_table(d, 0); return;
    case T_TABLEMT: dec_table(d, 1); return;
    case T_LFUNC: dec_lfunc(d); return;
    case T_CFUNC: dec_cfunc(d); return;
    case T_REF: {
      uint64_t id = get_uvar(d);
      if (d->ids == 0 || id < 1 || id >= (uint64_t)d->nextid) corrupt(d);
      lua_rawgeti(L, d->ids, (lua_Integer)id);
      return;
    }
    case T_HANDLE: {
      uint64_t k = get_uvar(d);
      gr_obj *o;
      if (k >= d->nobjs) corrupt(d);
      memcpy(&o, d->objs + k * PTRSIZE, PTRSIZE);
      gr_obj_push(L, o);
      return;
    }
    default:
      corrupt(d);
  }
}

int gr_decode(lua_State *L, const gr_msg *m) {
  dec d;
  int n = 0;
  const unsigned char *b;
  if (m->len == 0) return 0;
  d.L = L;
  if ((size_t)m->nobjs * PTRSIZE > m->len) corrupt(&d);
  b = gr_msg_bytes(m);
  d.p = b;
  d.end = b + m->len - (size_t)m->nobjs * PTRSIZE;
  d.objs = d.end;
  d.nobjs = m->nobjs;
  d.ids = 0;
  d.nextid = 1;
  d.depth = 0;
  while (d.p < d.end) {
    luaL_checkstack(L, 8, "goroutine: too many values");
    dec_value(&d);
    n++;
  }
  if (d.ids != 0) lua_remove(L, d.ids);
  return n;
}
