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
**   USER uvar(n) byte[n] value a user type: its __name, then what its
**                              __goroutine_encode returned
**   REF uvar(id)               a table, function or user value met before
**   HANDLE uvar(k)             trailer[k]
**   MODULE                     the goroutine module: the receiver's own
**
**   upvalue = value | GLOBALS  (the receiver's global table)
**                   | UPREF uvar(id) uvar(k)  (shares upvalue k of function id)
**
** and, only as the first bytes of a message that has REF or UPREF tags:
**
**   SHARED uvar(n) uvar(id1) uvar(id2 - id1) ... (n ids, increasing)
**
** uvar is an unsigned LEB128 varint.  Every TABLE, TABLEMT, LFUNC and USER
** tag takes the next id (1, 2, ...) in the order the tags appear, on both
** sides; REF and UPREF name an id met before, which keeps shared references
** and cycles.  SHARED lists the ids that REF and UPREF name, so that the
** decoder keeps those values only: a tree costs it no id table at all.  The
** encoder learns them as it goes and puts the list in front at the end (a
** memmove of the bytes, only when there is something shared).  value[narr] holds
** t[1..narr] (a NIL there is skipped) and the pairs hold the other keys,
** never NIL nor NaN.  The decoder preallocates lua_createtable(narr, nrec),
** fills the table with raw sets and sets the metatable last.  A USER value
** is rebuilt by the decoder registered under its name in the receiver
** (goroutine.register); its id names the rebuilt value.
**
** Encoding runs in two gears.  The fast path writes scalars (nil, booleans,
** numbers, strings) into a buffer on the C stack: a message of scalars costs
** no malloc (unless big) and no Lua allocation.  At the first table,
** function or userdata the rest is walked by a protected C function, so
** that every error, ours or Lua's (out of memory included), comes back to
** one place that frees the buffer and drops the handle references taken so
** far before re-raising.
**
** Both walks use an explicit stack of frames, one per table, function or
** user value being written or read, never C recursion: nesting is bounded
** only by GR_CODEC_MAXDEPTH (and the Lua stack, two slots a level).
**
** Decoding checks every tag and length against the bytes left, and never
** preallocates more than the bytes left can fill (every value takes at
** least one byte), so any bytes give values or a Lua error.  Two things it
** does trust, and only gr_decode_data refuses: Lua bytecode (lua_load does
** not survive crafted bytecode) and the handle pointers of the trailer.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "codec.h"
#include "obj.h"
#include "alloc.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT8, T_INT16, T_INT32, T_INT64, T_FLOAT,
  T_STR, T_TABLE, T_TABLEMT, T_LFUNC, T_CFUNC, T_REF, T_HANDLE, T_GLOBALS,
  T_UPREF, T_USER, T_SHARED, T_MODULE
};
#define T_FIXSTR    0x40      /* 0x40..0x5f */
#define FIXSTR_MAX  31
#define T_FIXINT    0x80      /* 0x80..0xff */

#define PTRSIZE     sizeof(gr_obj *)
#define MAXLEN      ((size_t)UINT32_MAX)

#define STR_(x) #x
#define STR(x) STR_(x)

#define ENCODE_FIELD "__goroutine_encode"

static const char decoders_key = 'd';  /* registry: name -> decode function */

/* ================================================================ encoder */

#define STACKBUF      256     /* bytes encoded before the first malloc */
#define MAP_INLINE    16      /* identity-map entries before the first malloc */
#define OBJS_INLINE   4
#define FRAMES_INLINE 16
#define REFD_INLINE   8

/* Frames of the walk, and the path segment each adds to an error path. */
enum { FR_ROOTS, FR_TABLE, FR_FUNC, FR_USER };
enum { ST_FIELD, ST_KEY, ST_MT };    /* what a table frame is writing */
enum { SEG_ROOT, SEG_FIELD, SEG_KEY, SEG_UPVALUE, SEG_METATABLE, SEG_ENCODED };

/*
** Stack layout above a frame's base (the top when it opened):
**   ROOTS  the roots are at slot .. slot+n-1
**   TABLE  base+1 the key of lua_next, base+2 its value (or the metatable
**          at base+1)
**   FUNC   base+1 the upvalue being written
**   USER   base+1 the __name, base+2 what __goroutine_encode returned
*/
typedef struct eframe {
  unsigned char kind, step, hasmt;
  int slot;           /* the table, function or user value */
  int base;
  int i, n;           /* FUNC: upvalue written last, nups; ROOTS: next root, count */
  uint32_t id;        /* FUNC: its id */
  size_t at;          /* TABLE: offset of its two counts */
  lua_Integer narr;
  uint64_t nrec;
} eframe;

/* Identity map, keyed by the address of a live object: table, Lua closure
** or user value -> its id (b: flags USER_BUSY while its encoding is being
** written, REFERRED once a REF named it);
** upvalue cell (lua_upvalueid) -> (id of the closure first seen with it, its
** index); handle userdata -> its trailer index.  Linear while it fits in
** mapinl, then a hash table kept at most half full. */
typedef struct ment {
  const void *key;
  uint32_t a, b;
} ment;

#define USER_BUSY 1   /* b flags of an object's entry */
#define REFERRED  2   /* its id is in refd */

typedef struct enc {
  lua_State *L;
  gr_msg *m;
  unsigned char *buf;
  size_t len, cap;
  gr_obj **objs;
  uint32_t nobjs, objcap;
  ment *map;              /* mapinl (linear) or a malloc'd hash */
  uint32_t mapmask;       /* 0 while linear */
  uint32_t mapcount;
  uint32_t nextid;
  uint32_t *refd;         /* ids REF and UPREF name (duplicates possible) */
  uint32_t nrefd, refdcap;
  eframe *fr;
  int nfr, frcap;
  int prot;               /* running inside the protected walk */
  int kind, nroots, start;
  int cfslot;             /* stack slot for the C-function name map */
  const void *globals;    /* the sender's global table, once looked up */
  const void *module;     /* its package.loaded.goroutine, once looked up */
  unsigned char stackbuf[STACKBUF];
  gr_obj *objinl[OBJS_INLINE];
  ment mapinl[MAP_INLINE];
  uint32_t refdinl[REFD_INLINE];
  eframe frinl[FRAMES_INLINE];
} enc;

/* Undo everything: free the buffer, drop the references taken, empty *m. */
static void enc_abandon(enc *e) {
  uint32_t i;
  if (e->buf != e->stackbuf) gr_free(e->buf);
  e->buf = e->stackbuf;
  e->len = 0;
  e->cap = STACKBUF;
  for (i = 0; i < e->nobjs; i++) gr_obj_release(e->objs[i]);
  e->nobjs = 0;
  if (e->objs != e->objinl) gr_free(e->objs);
  e->objs = e->objinl;
  if (e->map != e->mapinl) gr_free(e->map);
  e->map = e->mapinl;
  e->mapmask = e->mapcount = 0;
  if (e->fr != e->frinl) gr_free(e->fr);
  e->fr = e->frinl;
  e->nfr = 0;
  if (e->refd != e->refdinl) gr_free(e->refd);
  e->refd = e->refdinl;
  e->nrefd = 0;
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
    nb = (unsigned char *)gr_malloc(cap);
    if (nb != NULL) memcpy(nb, e->buf, e->len);
  } else {
    nb = (unsigned char *)gr_realloc(e->buf, cap);
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

static void put_bytes(enc *e, const void *p, size_t n) {
  enc_reserve(e, n);
  memcpy(e->buf + e->len, p, n);
  e->len += n;
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
  if (e->mapmask == 0) {
    for (i = 0; i < e->mapcount; i++)
      if (e->map[i].key == key) return &e->map[i];
    return NULL;
  }
  for (i = ptr_hash(key) & e->mapmask; e->map[i].key != NULL;
       i = (i + 1) & e->mapmask)
    if (e->map[i].key == key) return &e->map[i];
  return NULL;
}

static void map_put(ment *map, uint32_t mask, const ment *m) {
  uint32_t i = ptr_hash(m->key) & mask;
  while (map[i].key != NULL) i = (i + 1) & mask;
  map[i] = *m;
}

/* Move the entries into a hash of ncap (a power of 2) entries. */
static void map_rehash(enc *e, uint32_t ncap) {
  ment *nm = (ment *)gr_calloc(ncap, sizeof *nm);
  uint32_t i, n = e->mapmask == 0 ? e->mapcount : e->mapmask + 1;
  if (nm == NULL) enc_raise(e, "not enough memory");
  for (i = 0; i < n; i++)
    if (e->map[i].key != NULL) map_put(nm, ncap - 1, &e->map[i]);
  if (e->map != e->mapinl) gr_free(e->map);
  e->map = nm;
  e->mapmask = ncap - 1;
}

/* Add key (known to be absent). */
static void map_add(enc *e, const void *key, uint32_t a, uint32_t b) {
  ment m;
  m.key = key;
  m.a = a;
  m.b = b;
  if (e->mapmask == 0) {
    if (e->mapcount < MAP_INLINE) {
      e->map[e->mapcount++] = m;
      return;
    }
    map_rehash(e, MAP_INLINE * 4);
  } else if ((e->mapcount + 1) * 2 > e->mapmask + 1) {
    if (e->mapmask + 1 > UINT32_MAX / 2) enc_raise(e, "not enough memory");
    map_rehash(e, (e->mapmask + 1) * 2);
  }
  map_put(e->map, e->mapmask, &m);
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

/* The segment frame k adds to the path of the value being written. */
static int seg_kind(const enc *e, int k) {
  const eframe *f = &e->fr[k];
  switch (f->kind) {
    case FR_ROOTS: return SEG_ROOT;
    case FR_FUNC: return SEG_UPVALUE;
    case FR_USER: return SEG_ENCODED;
    default:
      return f->step == ST_KEY ? SEG_KEY
           : f->step == ST_MT ? SEG_METATABLE : SEG_FIELD;
  }
}

#define PATH_SHOWN 300   /* longer paths are cut */

/* Add the segments of frames [from, to) to b; 0 once the path is too long. */
static int add_segs(enc *e, luaL_Buffer *b, int from, int to) {
  lua_State *L = e->L;
  int k;
  for (k = from; k < to; k++) {
    const eframe *f = &e->fr[k];
    switch (seg_kind(e, k)) {
      case SEG_ROOT: {
        int n = e->start + f->i - 1;
        if (e->kind == GR_ENCODE_GOCALL) {
          if (n == 0) luaL_addstring(b, "function");
          else {
            luaL_addstring(b, "argument #");
            add_int(b, n);
          }
        } else {
          luaL_addstring(b, "value");
          if (e->nroots > 1) {
            luaL_addstring(b, " #");
            add_int(b, n + 1);
          }
        }
        break;
      }
      case SEG_UPVALUE: {
        const char *name = lua_getupvalue(L, f->slot, f->i);
        if (name != NULL) lua_pop(L, 1);
        luaL_addstring(b, "upvalue '");
        luaL_addstring(b, name != NULL ? name : "?");
        luaL_addchar(b, '\'');
        break;
      }
      case SEG_ENCODED:
        luaL_addstring(b, "encoded ");
        luaL_addstring(b, lua_tostring(L, f->base + 1));
        break;
      case SEG_METATABLE: luaL_addstring(b, "metatable"); break;
      case SEG_KEY: luaL_addstring(b, "key"); break;
      case SEG_FIELD: add_key(L, b, f->base + 1); break;
    }
    if (luaL_bufflen(b) > PATH_SHOWN) {
      luaL_addstring(b, "...");
      return 0;
    }
  }
  return 1;
}

/*
** Push the path of the value being written, e.g. "argument #2.cb" or
** "upvalue 'log' of value.handler".  The path splits into groups, each
** starting at a root, an upvalue, a metatable, a key or an encoded user
** value, and the groups are written innermost first, joined by " of ".
*/
static void push_path(enc *e) {
  lua_State *L = e->L;
  luaL_Buffer b;
  int to = e->nfr, from;
  luaL_checkstack(L, 8, NULL);
  luaL_buffinit(L, &b);
  while (to > 0) {
    for (from = to - 1; from > 0 && seg_kind(e, from) == SEG_FIELD; from--) {}
    if (!add_segs(e, &b, from, to)) break;
    to = from;
    if (to > 0) luaL_addstring(&b, " of ");
  }
  luaL_pushresult(&b);
}

/* Raise "cannot send <what> at <path>" (inside the protected walk). */
static void raise_at(enc *e, const char *what) {
  lua_State *L = e->L;
  lua_pushstring(L, what);   /* what may live in a buffer push_path reuses */
  push_path(e);
  lua_pushfstring(L, "cannot send %s at %s", lua_tostring(L, -2),
                  lua_tostring(L, -1));
  lua_error(L);
}

/* Push a frame for the value at slot, the stack top being base. */
static eframe *enc_open(enc *e, int kind, int slot, int base) {
  eframe *f;
  if (e->nfr > GR_CODEC_MAXDEPTH)
    raise_at(e, "value: nesting deeper than " STR(GR_CODEC_MAXDEPTH));
  if (e->nfr == e->frcap) {
    int ncap = e->frcap * 2;
    eframe *nf;
    if (e->fr == e->frinl) {
      nf = (eframe *)gr_malloc((size_t)ncap * sizeof *nf);
      if (nf != NULL) memcpy(nf, e->fr, (size_t)e->nfr * sizeof *nf);
    } else {
      nf = (eframe *)gr_realloc(e->fr, (size_t)ncap * sizeof *nf);
    }
    if (nf == NULL) enc_raise(e, "not enough memory");
    e->fr = nf;
    e->frcap = ncap;
  }
  luaL_checkstack(e->L, 8, "message too deep");
  f = &e->fr[e->nfr++];
  f->kind = (unsigned char)kind;
  f->step = ST_FIELD;
  f->hasmt = 0;
  f->slot = slot;
  f->base = base;
  f->i = f->n = 0;
  return f;
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
      /* This module fills itself at its first lookup (lgoroutine.c). */
      lua_getfield(L, -1, "go");
      lua_pop(L, 1);
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
  put_bytes(e, name, n);
  lua_pop(L, 1);
}

/* --------------------------------------------------------------- walk */

/*
** enc_value writes the value at idx.  A scalar, a C function, a handle or
** a reference to a value met before is written at once (returns 0).  A
** table, Lua function or user value met for the first time gets its head
** written and a frame pushed (returns 1): the walk writes its contents
** next, and comes back to the frame below when that frame is done.
*/
static int enc_value(enc *e, int idx);

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

/* Note that REF or UPREF names id. */
static void refd_add(enc *e, uint32_t id) {
  if (e->nrefd == e->refdcap) {
    uint32_t ncap = e->refdcap * 2, *nr;
    if (ncap < e->refdcap) enc_raise(e, "not enough memory");
    if (e->refd == e->refdinl) {
      nr = (uint32_t *)gr_malloc(ncap * sizeof *nr);
      if (nr != NULL) memcpy(nr, e->refd, e->nrefd * sizeof *nr);
    } else {
      nr = (uint32_t *)gr_realloc(e->refd, ncap * sizeof *nr);
    }
    if (nr == NULL) enc_raise(e, "not enough memory");
    e->refd = nr;
    e->refdcap = ncap;
  }
  e->refd[e->nrefd++] = id;
}

static int enc_ref(enc *e, ment *me) {
  if (me->b & USER_BUSY)
    raise_at(e, "user value inside what its own __goroutine_encode returned");
  if (!(me->b & REFERRED)) {
    me->b |= REFERRED;
    refd_add(e, me->a);
  }
  put_tagged(e, T_REF, me->a);
  return 0;
}

/* A user value at v, met for the first time: its metatable and the
** metatable's __goroutine_encode are on top of the stack. */
static int enc_user(enc *e, int v, const void *p) {
  lua_State *L = e->L;
  int base = lua_gettop(L) - 2;     /* base+1 metatable, base+2 encode */
  const char *name;
  size_t n;
  if (lua_type(L, base + 2) != LUA_TFUNCTION)
    raise_at(e, lua_pushfstring(L, "%s (its " ENCODE_FIELD " is not a function)",
                                luaL_typename(L, v)));
  lua_pushliteral(L, "__name");
  if (lua_rawget(L, base + 1) != LUA_TSTRING)
    raise_at(e, lua_pushfstring(L, "%s (its metatable has " ENCODE_FIELD
                                " but no __name)", luaL_typename(L, v)));
  lua_replace(L, base + 1);         /* base+1 the name */
  enc_open(e, FR_USER, v, base);
  map_add(e, p, e->nextid++, USER_BUSY);
  name = lua_tolstring(L, base + 1, &n);
  put_tagged(e, T_USER, n);
  put_bytes(e, name, n);
  lua_pushvalue(L, v);
  lua_call(L, 1, 1);                /* base+2 the encoded value */
  return 1;
}

static int enc_user_step(enc *e, eframe *f) {
  if (f->step == ST_FIELD) {
    f->step = ST_KEY;               /* (the encoded value is written) */
    if (enc_value(e, f->base + 2)) return 1;
  }
  map_find(e, lua_topointer(e->L, f->slot))->b &= ~USER_BUSY;   /* REF may name it */
  return 0;
}

/* Whether the table at t is the sender's goroutine module, which crosses
** by name as its C functions do (nearly every goroutine's upvalue). */
static int is_module(enc *e, int t) {
  lua_State *L = e->L;
  if (e->module == NULL) {
    int top = lua_gettop(L);
    luaL_checkstack(L, 2, NULL);
    e->module = &e->module;              /* none: a pointer no table has */
    if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) == LUA_TTABLE &&
        lua_getfield(L, -1, "goroutine") == LUA_TTABLE)
      e->module = lua_topointer(L, -1);
    lua_settop(L, top);
  }
  return lua_topointer(L, t) == e->module;
}

static int enc_table(enc *e, int t) {
  lua_State *L = e->L;
  const void *p = lua_topointer(L, t);
  ment *me;
  eframe *f;
  int hasmt = 0;
  if (is_module(e, t)) {
    put_byte(e, T_MODULE);
    return 0;
  }
  me = map_find(e, p);
  if (me != NULL) return enc_ref(e, me);
  if (lua_getmetatable(L, t)) {
    lua_pushliteral(L, ENCODE_FIELD);
    if (lua_rawget(L, -2) != LUA_TNIL) return enc_user(e, t, p);
    lua_pop(L, 2);
    hasmt = 1;
  }
  f = enc_open(e, FR_TABLE, t, lua_gettop(L));
  f->hasmt = (unsigned char)hasmt;
  f->narr = 0;
  f->nrec = 0;
  map_add(e, p, e->nextid++, 0);
  enc_reserve(e, 3);
  e->buf[e->len] = hasmt ? T_TABLEMT : T_TABLE;
  f->at = e->len + 1;    /* narr and nrec, one byte each until patched */
  e->len += 3;
  lua_pushnil(L);        /* the first key */
  return 1;
}

/*
** One lua_next pass.  It yields the array part first, in order: the run of
** keys 1, 2, 3 ... it starts with is the array section (values only); every
** key after the run, integer or not, is written as a pair.
*/
static int enc_table_step(enc *e, eframe *f) {
  lua_State *L = e->L;
  int t = f->slot, k = f->base + 1;
  if (f->step == ST_KEY) {        /* the key is written: now its value */
    f->step = ST_FIELD;
    if (enc_value(e, k + 1)) return 1;
  } else if (f->step == ST_MT) {  /* the metatable is written */
    return 0;
  }
  for (;;) {
    lua_settop(L, k);
    if (!lua_next(L, t)) break;
    if (f->nrec == 0 && lua_isinteger(L, k) && lua_tointeger(L, k) == f->narr + 1) {
      f->narr++;
    } else {
      f->nrec++;
      f->step = ST_KEY;
      if (enc_value(e, k)) return 1;
      f->step = ST_FIELD;
    }
    if (enc_value(e, k + 1)) return 1;
  }
  patch_uvar(e, f->at + 1, f->nrec);   /* the later one first */
  patch_uvar(e, f->at, (uint64_t)f->narr);
  if (f->hasmt) {
    f->step = ST_MT;
    lua_getmetatable(L, t);
    return enc_value(e, k);
  }
  return 0;
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

static int enc_lfunc(enc *e, int fi) {
  lua_State *L = e->L;
  const void *p = lua_topointer(L, fi);
  ment *me = map_find(e, p);
  lua_Debug ar;
  eframe *f;
  uint32_t len32;
  size_t at, len;
  int status;
  if (me != NULL) return enc_ref(e, me);
  lua_pushvalue(L, fi);
  lua_getinfo(L, ">Su", &ar);
  if (strcmp(ar.source, "=?") == 0)
    raise_at(e, "function without debug information (stripped)");
  f = enc_open(e, FR_FUNC, fi, lua_gettop(L));
  f->n = ar.nups;
  f->id = e->nextid++;
  map_add(e, p, f->id, 0);
  enc_reserve(e, 5);
  e->buf[e->len] = T_LFUNC;
  at = e->len + 1;
  e->len += 5;
  lua_pushvalue(L, fi);
  status = lua_dump(L, dump_writer, e, 0);
  lua_pop(L, 1);
  if (status != 0) enc_raise(e, "not enough memory");
  len = e->len - at - 4;
  if (len > MAXLEN) enc_raise(e, "cannot send value: message too large");
  len32 = (uint32_t)len;
  memcpy(e->buf + at, &len32, 4);
  return 1;
}

static int enc_func_step(enc *e, eframe *f) {
  lua_State *L = e->L;
  int fi = f->slot, v = f->base + 1;
  while (f->i < f->n) {
    int i = ++f->i;
    void *uid = lua_upvalueid(L, fi, i);
    ment *me = map_find(e, uid);
    const char *name;
    lua_settop(L, f->base);
    if (me != NULL) {   /* shared with a closure met before */
      refd_add(e, me->a);
      put_tagged(e, T_UPREF, me->a);
      put_uvar(e, me->b);
      continue;
    }
    map_add(e, uid, f->id, (uint32_t)i);
    name = lua_getupvalue(L, fi, i);
    if (strcmp(name, "_ENV") == 0 && is_globals(e, v)) {
      put_byte(e, T_GLOBALS);
      continue;
    }
    if (enc_value(e, v)) return 1;
  }
  return 0;
}

static int enc_userdata(enc *e, int idx) {
  lua_State *L = e->L;
  gr_obj *o = gr_obj_test(L, idx);
  const void *p = lua_topointer(L, idx);
  ment *me = map_find(e, p);
  uint32_t k;
  if (o == NULL) {
    const char *what = "userdata";
    if (me != NULL) return enc_ref(e, me);
    if (lua_getmetatable(L, idx)) {
      lua_pushliteral(L, ENCODE_FIELD);
      if (lua_rawget(L, -2) != LUA_TNIL) return enc_user(e, idx, p);
      lua_pop(L, 2);
    }
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
      what = lua_pushfstring(L, "userdata (%s)", lua_tostring(L, -1));
    raise_at(e, what);
  }
  if (me != NULL) {     /* one trailer entry per object */
    k = me->a;
  } else {
    if (e->nobjs == e->objcap) {
      uint32_t ncap = e->objcap * 2;
      gr_obj **no;
      if (e->objs == e->objinl) {
        no = (gr_obj **)gr_malloc(ncap * sizeof *no);
        if (no != NULL) memcpy(no, e->objs, e->nobjs * sizeof *no);
      } else {
        no = (gr_obj **)gr_realloc(e->objs, ncap * sizeof *no);
      }
      if (no == NULL) enc_raise(e, "not enough memory");
      e->objs = no;
      e->objcap = ncap;
    }
    k = e->nobjs;
    map_add(e, p, k, 0);
    gr_obj_retain(o);
    e->objs[e->nobjs++] = o;
  }
  put_tagged(e, T_HANDLE, k);
  return 0;
}

static int enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  if (enc_scalar(e, idx)) return 0;
  switch (lua_type(L, idx)) {
    case LUA_TTABLE: return enc_table(e, idx);
    case LUA_TFUNCTION:
      if (!lua_iscfunction(L, idx)) return enc_lfunc(e, idx);
      enc_cfunc(e, idx);
      return 0;
    case LUA_TUSERDATA: return enc_userdata(e, idx);
    case LUA_TLIGHTUSERDATA: raise_at(e, "light userdata"); return 0;
    default: raise_at(e, luaL_typename(L, idx)); return 0;
  }
}

static int enc_roots_step(enc *e, eframe *f) {
  while (f->i < f->n)
    if (enc_value(e, f->slot + f->i++)) return 1;
  return 0;
}

/* The protected walk: 1 = the enc, 2.. = the values left to encode. */
static int enc_walk(lua_State *L) {
  enc *e = (enc *)lua_touserdata(L, 1);
  int nv = lua_gettop(L) - 1;
  eframe *f;
  luaL_checkstack(L, 8, NULL);
  lua_pushnil(L);
  e->cfslot = lua_gettop(L);
  f = &e->fr[e->nfr++];
  f->kind = FR_ROOTS;
  f->slot = 2;
  f->base = lua_gettop(L);
  f->i = 0;
  f->n = nv;
  while (e->nfr > 0) {
    int more;
    f = &e->fr[e->nfr - 1];
    switch (f->kind) {
      case FR_TABLE: more = enc_table_step(e, f); break;
      case FR_FUNC: more = enc_func_step(e, f); break;
      case FR_USER: more = enc_user_step(e, f); break;
      default: more = enc_roots_step(e, f); break;
    }
    if (!more) {          /* f is done (and still valid: nothing was pushed) */
      lua_settop(L, f->base);
      e->nfr--;
    }
  }
  return 0;
}

static int cmp_id(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Put the SHARED list in front of the values. */
static void enc_shared(enc *e) {
  unsigned char head[1 + 10];
  uint32_t i, n = 0, prev = 0;
  size_t hlen = 0, at;
  qsort(e->refd, e->nrefd, sizeof *e->refd, cmp_id);
  for (i = 0; i < e->nrefd; i++)       /* dedupe, and size the list */
    if (i == 0 || e->refd[i] != e->refd[i - 1]) {
      hlen += (size_t)uvar_write(head, e->refd[i] - prev);
      prev = e->refd[i];
      e->refd[n++] = prev;
    }
  head[0] = T_SHARED;
  at = 1 + (size_t)uvar_write(head + 1, n);
  hlen += at;
  enc_reserve(e, hlen);
  memmove(e->buf + hlen, e->buf, e->len);
  memcpy(e->buf, head, at);
  for (i = 0, prev = 0; i < n; prev = e->refd[i++])
    at += (size_t)uvar_write(e->buf + at, e->refd[i] - prev);
  e->len += hlen;
}

/* Move the bytes and the trailer into *m. */
static void enc_finish(enc *e) {
  gr_msg *m = e->m;
  size_t tlen = (size_t)e->nobjs * PTRSIZE;
  if (e->nrefd > 0) enc_shared(e);
  if (e->len + tlen > MAXLEN) enc_raise(e, "cannot send value: message too large");
  if (tlen > 0) put_bytes(e, e->objs, tlen);
  if (e->len <= GR_MSG_INLINE) {
    memcpy(m->u.inl, e->buf, e->len);
    if (e->buf != e->stackbuf) gr_free(e->buf);
  } else if (e->buf == e->stackbuf) {
    unsigned char *h = (unsigned char *)gr_malloc(e->len);
    if (h == NULL) enc_raise(e, "not enough memory");
    memcpy(h, e->buf, e->len);
    m->u.heap = h;
  } else {
    if (e->cap - e->len > e->len / 4 + 256) {   /* do not keep much slack */
      unsigned char *h = (unsigned char *)gr_realloc(e->buf, e->len);
      if (h != NULL) e->buf = h;
    }
    m->u.heap = e->buf;
  }
  m->len = (uint32_t)e->len;
  m->nobjs = e->nobjs;
  if (e->objs != e->objinl) gr_free(e->objs);
  if (e->map != e->mapinl) gr_free(e->map);
  if (e->fr != e->frinl) gr_free(e->fr);
  if (e->refd != e->refdinl) gr_free(e->refd);
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
  e.map = e.mapinl;
  e.mapmask = e.mapcount = 0;
  e.nextid = 1;
  e.refd = e.refdinl;
  e.nrefd = 0;
  e.refdcap = REFD_INLINE;
  e.fr = e.frinl;
  e.nfr = 0;
  e.frcap = FRAMES_INLINE;
  e.prot = 0;
  e.kind = kind;
  e.nroots = n;
  e.globals = NULL;
  e.module = NULL;
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
  if (m->len > GR_MSG_INLINE) gr_free(m->u.heap);
  m->len = 0;
  m->nobjs = 0;
}

/* ================================================================ decoder */

#define DFRAMES_INLINE 24

/*
** A frame per table, function or user value being filled.  Its value sits
** at slot; above it the value just read (and, in a table's pairs section,
** the key read before it).  left counts the values it still waits for.
*/
typedef struct dframe {
  unsigned char kind, hasmt;
  int slot;              /* TABLE, FUNC: the value; USER: its decoder */
  uint32_t id;           /* USER: the id its rebuilt value takes */
  uint64_t i;            /* TABLE: array items read; FUNC: upvalues set */
  uint64_t narr;         /* TABLE */
  uint64_t left;
} dframe;

typedef struct dec {
  lua_State *L;
  const unsigned char *p, *end;   /* values: [p, end) */
  const unsigned char *objs;      /* trailer */
  uint32_t nobjs;
  int nocode;                     /* refuse LFUNC (gr_decode_data) */
  int base;                       /* stack top when decoding began */
  int ids;                        /* 0, or base+1: the aux table */
  lua_Integer nextid;
  const unsigned char *shp;       /* the SHARED ids not reached yet */
  uint64_t nsh;                   /* how many */
  lua_Integer nextsh;             /* the next one (0: none) */
  uint64_t owed;                  /* values the open frames wait for, not begun */
  dframe *fr;                     /* frinl, or a userdata at ids[0] */
  int nfr, frcap;
  dframe frinl[DFRAMES_INLINE];
} dec;

/* ids[id] of a user value whose decoder has not run yet / returned nil */
static const char busy_mark = 'b', nil_mark = 'n';

static void corrupt(dec *d) __attribute__((noreturn));
static void corrupt(dec *d) {
  lua_pushliteral(d->L, "goroutine: corrupt message");
  lua_error(d->L);
  abort();   /* not reached */
}

static inline void need(dec *d, uint64_t n) {
  if ((uint64_t)(d->end - d->p) < n) corrupt(d);
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

/* At every table, function or user value: check the depth, make room. */
static void dec_check(dec *d) {
  if (d->nfr > GR_CODEC_MAXDEPTH) corrupt(d);   /* as deep as the encoder's */
  luaL_checkstack(d->L, 8, "goroutine: message too deep");
}

/*
** The aux table, made when first needed: shared id -> value, and [0] the
** frames once they outgrow frinl.  It goes in below everything decoding
** has pushed (so its slot stays put), which moves the open frames' values
** up one slot.
*/
static void dec_aux(dec *d) {
  lua_State *L = d->L;
  int k;
  if (d->ids != 0) return;
  lua_createtable(L, 0, (int)(d->nsh < 255 ? d->nsh + 2 : 256));
  lua_insert(L, d->base + 1);
  d->ids = d->base + 1;
  for (k = 1; k < d->nfr; k++) d->fr[k].slot++;
}

/* A uvar of the SHARED list (checked whole before decoding began). */
static uint64_t uvar_at(const unsigned char **pp) {
  uint64_t v = 0;
  int shift = 0;
  unsigned c;
  do {
    c = *(*pp)++;
    v |= (uint64_t)(c & 0x7f) << shift;
    shift += 7;
  } while (c & 0x80);
  return v;
}

static lua_Integer next_shared(dec *d) {
  if (d->nsh == 0) return 0;
  d->nsh--;
  return d->nextsh + (lua_Integer)uvar_at(&d->shp);
}

/* The next id: 1 if REF or UPREF will name it (then the aux table is
** there for it). */
static int dec_newid(dec *d, lua_Integer *id) {
  *id = d->nextid++;
  if (*id != d->nextsh) return 0;
  d->nextsh = next_shared(d);
  dec_aux(d);
  return 1;
}

/* Keep the value on top as shared id. */
static void dec_keep(dec *d, lua_Integer id) {
  lua_pushvalue(d->L, -1);
  lua_rawseti(d->L, d->ids, id);
}

/* Push a frame waiting for 'left' values, each at least one byte ahead. */
static dframe *dec_open(dec *d, int kind, uint64_t left) {
  uint64_t avail = (uint64_t)(d->end - d->p);
  dframe *f;
  if (d->owed > avail || left > avail - d->owed) corrupt(d);
  if (d->nfr == d->frcap) {
    lua_State *L = d->L;
    int ncap = d->frcap * 2;
    dframe *nf;
    dec_aux(d);
    nf = (dframe *)lua_newuserdatauv(L, (size_t)ncap * sizeof *nf, 0);
    memcpy(nf, d->fr, (size_t)d->nfr * sizeof *nf);
    lua_rawseti(L, d->ids, 0);    /* anchored; the old one is garbage */
    d->fr = nf;
    d->frcap = ncap;
  }
  d->owed += left;
  f = &d->fr[d->nfr++];
  f->kind = (unsigned char)kind;
  f->hasmt = 0;
  f->i = 0;
  f->left = left;
  return f;
}

enum { DF_ROOTS, DF_TABLE, DF_FUNC, DF_USER };

static int dec_table(dec *d, int hasmt) {
  lua_State *L = d->L;
  uint64_t narr = get_uvar(d), nrec = get_uvar(d), left;
  lua_Integer id;
  int shared;
  dframe *f;
  if (narr > INT_MAX || nrec > INT_MAX) corrupt(d);
  left = narr + 2 * nrec + (uint64_t)hasmt;
  dec_check(d);
  shared = dec_newid(d, &id);
  if (left == 0) {
    lua_createtable(L, 0, 0);
    if (shared) dec_keep(d, id);
    return 0;
  }
  f = dec_open(d, DF_TABLE, left);
  f->hasmt = (unsigned char)hasmt;
  f->narr = narr;
  lua_createtable(L, (int)narr, (int)nrec);
  f->slot = lua_gettop(L);
  if (shared) dec_keep(d, id);
  return 1;
}

typedef struct chunk { const char *p; size_t n; } chunk;

static const char *chunk_reader(lua_State *L, void *ud, size_t *size) {
  chunk *c = (chunk *)ud;
  (void)L;
  *size = c->n;
  c->n = 0;
  return *size > 0 ? c->p : NULL;
}

static int dec_lfunc(dec *d) {
  lua_State *L = d->L;
  uint32_t n;
  chunk c;
  lua_Debug ar;
  lua_Integer id;
  int shared;
  dframe *f;
  if (d->nocode) corrupt(d);
  need(d, 4);
  memcpy(&n, d->p, 4);
  d->p += 4;
  need(d, n);
  dec_check(d);
  c.p = (const char *)d->p;
  c.n = n;
  d->p += n;
  shared = dec_newid(d, &id);
  int status = lua_load(L, chunk_reader, &c, "=(goroutine message)", "b");
  if (status == LUA_ERRMEM) lua_error(L);   /* no memory is not a corrupt message */
  if (status != LUA_OK) corrupt(d);
  if (shared) dec_keep(d, id);
  lua_pushvalue(L, -1);
  lua_getinfo(L, ">u", &ar);
  if (ar.nups == 0) return 0;
  f = dec_open(d, DF_FUNC, ar.nups);
  f->slot = lua_gettop(L);
  return 1;
}

/* The upvalue tags only a function frame takes. */
static void dec_upvalue_tag(dec *d, dframe *f) {
  lua_State *L = d->L;
  int i = (int)++f->i;
  f->left--;
  if (*d->p++ == T_GLOBALS) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_setupvalue(L, f->slot, i);
  } else {
    uint64_t id = get_uvar(d), k = get_uvar(d);
    if (d->ids == 0 || id < 1 || id >= (uint64_t)d->nextid || k < 1 ||
        k > INT_MAX)
      corrupt(d);
    lua_rawgeti(L, d->ids, (lua_Integer)id);   /* nil if not shared */
    if (lua_type(L, -1) != LUA_TFUNCTION || lua_iscfunction(L, -1) ||
        lua_getupvalue(L, -1, (int)k) == NULL)   /* checks k */
      corrupt(d);
    lua_pop(L, 1);
    lua_upvaluejoin(L, f->slot, i, -1, (int)k);
    lua_pop(L, 1);
  }
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
    lua_gettable(L, -2);                 /* this module fills on first use */
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

/* The receiver's goroutine module; reading the global opens it in a
** goroutine that has not used it yet (libs.c). */
static void dec_module(dec *d) {
  lua_State *L = d->L;
  luaL_checkstack(L, 3, NULL);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "goroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_getfield(L, -1, "goroutine");
    lua_remove(L, -2);
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "goroutine: cannot receive the goroutine module: "
                  "not loaded in this goroutine");
  lua_remove(L, -2);
}

static int dec_user(dec *d) {
  lua_State *L = d->L;
  uint64_t n = get_uvar(d);
  const char *name;
  lua_Integer id;
  int shared;
  dframe *f;
  need(d, n);
  name = (const char *)d->p;
  d->p += n;
  dec_check(d);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &decoders_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_pushlstring(L, name, (size_t)n);
  if (lua_rawget(L, -2) != LUA_TFUNCTION) {
    lua_pushlstring(L, name, (size_t)n);
    lua_pushfstring(L, "goroutine: cannot receive a value of type '%s': no "
                       "decoder registered in this goroutine "
                       "(goroutine.register)", lua_tostring(L, -1));
    lua_error(L);
  }
  lua_remove(L, -2);
  shared = dec_newid(d, &id);
  f = dec_open(d, DF_USER, 1);
  f->slot = lua_gettop(L);
  f->id = 0;
  if (shared) {
    f->id = (uint32_t)id;
    lua_pushlightuserdata(L, (void *)&busy_mark);
    lua_rawseti(L, d->ids, id);
  }
  return 1;
}

/* Push the value at p, or open a frame for it (returns 1): its contents
** come next. */
static int dec_value(dec *d) {
  lua_State *L = d->L;
  unsigned t;
  if (d->p >= d->end) corrupt(d);
  t = *d->p++;
  if (t & T_FIXINT) {
    lua_pushinteger(L, (lua_Integer)(t & 0x7f));
    return 0;
  }
  if ((t & 0xe0) == T_FIXSTR) {
    size_t n = t & FIXSTR_MAX;
    need(d, n);
    lua_pushlstring(L, (const char *)d->p, n);
    d->p += n;
    return 0;
  }
  switch (t) {
    case T_NIL: lua_pushnil(L); return 0;
    case T_FALSE: lua_pushboolean(L, 0); return 0;
    case T_TRUE: lua_pushboolean(L, 1); return 0;
    case T_INT8: {
      int8_t v;
      need(d, 1); memcpy(&v, d->p, 1); d->p += 1;
      lua_pushinteger(L, v);
      return 0;
    }
    case T_INT16: {
      int16_t v;
      need(d, 2); memcpy(&v, d->p, 2); d->p += 2;
      lua_pushinteger(L, v);
      return 0;
    }
    case T_INT32: {
      int32_t v;
      need(d, 4); memcpy(&v, d->p, 4); d->p += 4;
      lua_pushinteger(L, v);
      return 0;
    }
    case T_INT64: {
      int64_t v;
      need(d, 8); memcpy(&v, d->p, 8); d->p += 8;
      lua_pushinteger(L, (lua_Integer)v);
      return 0;
    }
    case T_FLOAT: {
      double v;
      need(d, 8); memcpy(&v, d->p, 8); d->p += 8;
      lua_pushnumber(L, (lua_Number)v);
      return 0;
    }
    case T_STR: {
      uint64_t n = get_uvar(d);
      need(d, n);
      lua_pushlstring(L, (const char *)d->p, (size_t)n);
      d->p += n;
      return 0;
    }
    case T_TABLE: return dec_table(d, 0);
    case T_TABLEMT: return dec_table(d, 1);
    case T_LFUNC: return dec_lfunc(d);
    case T_USER: return dec_user(d);
    case T_CFUNC: dec_cfunc(d); return 0;
    case T_MODULE: dec_module(d); return 0;
    case T_REF: {
      uint64_t id = get_uvar(d);
      int tt;
      if (d->ids == 0 || id < 1 || id >= (uint64_t)d->nextid) corrupt(d);
      tt = lua_rawgeti(L, d->ids, (lua_Integer)id);
      if (tt == LUA_TNIL) corrupt(d);     /* not in SHARED */
      if (tt == LUA_TLIGHTUSERDATA) {
        const void *p = lua_touserdata(L, -1);
        if (p == &busy_mark) corrupt(d);
        if (p == &nil_mark) {
          lua_pop(L, 1);
          lua_pushnil(L);
        }
      }
      return 0;
    }
    case T_HANDLE: {
      uint64_t k = get_uvar(d);
      gr_obj *o;
      if (k >= d->nobjs) corrupt(d);
      memcpy(&o, d->objs + k * PTRSIZE, PTRSIZE);
      gr_obj_push(L, o);
      return 0;
    }
    default:
      corrupt(d);
  }
}

/* The value on top is the next one f waits for. */
static void dec_put(dec *d, dframe *f) {
  lua_State *L = d->L;
  f->left--;
  switch (f->kind) {
    case DF_TABLE:
      if (f->i < f->narr) {
        f->i++;
        if (lua_type(L, -1) == LUA_TNIL) lua_pop(L, 1);
        else lua_rawseti(L, f->slot, (lua_Integer)f->i);
      } else if (f->left >= f->hasmt) {       /* the pairs */
        if ((f->left - f->hasmt) & 1) {       /* a key: keep it for its value */
          int tt = lua_type(L, -1);
          if (tt == LUA_TNIL ||
              (tt == LUA_TNUMBER && !lua_isinteger(L, -1) &&
               lua_tonumber(L, -1) != lua_tonumber(L, -1)))
            corrupt(d);
        } else {
          lua_rawset(L, f->slot);
        }
      } else {                                /* the metatable, last */
        if (!lua_istable(L, -1)) corrupt(d);
        lua_setmetatable(L, f->slot);
      }
      return;
    case DF_FUNC:
      lua_setupvalue(L, f->slot, (int)++f->i);
      return;
    default:    /* DF_USER: the encoded value waits on top for the decoder */
      return;
  }
}

/* f has all its values: leave its value on top, where f->slot is. */
static void dec_close(dec *d, dframe *f) {
  lua_State *L = d->L;
  if (f->kind == DF_USER) {
    uint32_t id = f->id;
    lua_call(L, 1, 1);    /* decode(encoded) */
    if (id == 0) return;
    if (lua_isnil(L, -1)) lua_pushlightuserdata(L, (void *)&nil_mark);
    else lua_pushvalue(L, -1);
    lua_rawseti(L, d->ids, id);
  }
}

static int dec_run(dec *d) {
  lua_State *L = d->L;
  int n = 0;
  for (;;) {
    dframe *f = &d->fr[d->nfr - 1];
    if (f->kind == DF_ROOTS) {
      if (d->p >= d->end) break;
      luaL_checkstack(L, 8, "goroutine: too many values");
      if (!dec_value(d)) n++;
      continue;
    }
    if (f->left == 0) {
      dec_close(d, f);
      d->nfr--;
      f = &d->fr[d->nfr - 1];
      if (f->kind == DF_ROOTS) n++;
      else dec_put(d, f);
      continue;
    }
    d->owed--;
    if (f->kind == DF_FUNC && d->p < d->end &&
        (*d->p == T_GLOBALS || *d->p == T_UPREF)) {
      dec_upvalue_tag(d, f);
      continue;
    }
    if (!dec_value(d)) dec_put(d, f);
  }
  return n;
}

static int dec_msg(lua_State *L, const gr_msg *m, int nocode) {
  dec d;
  int n;
  const unsigned char *b;
  if (m->len == 0) return 0;
  d.L = L;
  if ((size_t)m->nobjs * PTRSIZE > m->len || (nocode && m->nobjs > 0))
    corrupt(&d);
  b = gr_msg_bytes(m);
  d.p = b;
  d.end = b + m->len - (size_t)m->nobjs * PTRSIZE;
  d.objs = d.end;
  d.nobjs = m->nobjs;
  d.nocode = nocode;
  d.base = lua_gettop(L);
  d.ids = 0;
  d.nextid = 1;
  d.nsh = 0;
  d.nextsh = 0;
  d.owed = 0;
  d.fr = d.frinl;
  d.nfr = 1;
  d.frcap = DFRAMES_INLINE;
  d.fr[0].kind = DF_ROOTS;
  if (d.p < d.end && *d.p == T_SHARED) {   /* check the list whole */
    uint64_t i, sum = 0;
    d.p++;
    d.nsh = get_uvar(&d);
    if (d.nsh == 0 || d.nsh > (uint64_t)(d.end - d.p)) corrupt(&d);
    d.shp = d.p;
    for (i = 0; i < d.nsh; i++) {
      uint64_t delta = get_uvar(&d);
      if (delta == 0 || delta > m->len || (sum += delta) > m->len) corrupt(&d);
    }
    d.nextsh = next_shared(&d);
  }
  n = dec_run(&d);
  if (d.ids != 0) lua_remove(L, d.ids);
  return n;
}

int gr_decode(lua_State *L, const gr_msg *m) {
  return dec_msg(L, m, 0);
}

int gr_decode_data(lua_State *L, const gr_msg *m) {
  return dec_msg(L, m, 1);
}

static int dec_protected(lua_State *L) {
  const gr_msg *m = (const gr_msg *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  return dec_msg(L, m, 0);
}

int gr_decode_free(lua_State *L, gr_msg *m) {
  gr_msg local = *m;
  int top, status;
  *m = (gr_msg)GR_MSG_EMPTY;
  if (local.len <= GR_MSG_INLINE && local.nobjs == 0)   /* nothing to free */
    return dec_msg(L, &local, 0);
  top = lua_gettop(L);
  if (!lua_checkstack(L, 2)) {
    gr_msg_free(&local);
    luaL_error(L, "stack overflow (receiving a message)");
  }
  lua_pushcfunction(L, dec_protected);
  lua_pushlightuserdata(L, &local);
  status = lua_pcall(L, 1, LUA_MULTRET, 0);
  gr_msg_free(&local);
  if (status != LUA_OK) lua_error(L);
  return lua_gettop(L) - top;
}

/* ============================================================ user types */

int gr_codec_register(lua_State *L) {
  luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &decoders_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &decoders_key);
  }
  lua_insert(L, 1);
  lua_rawset(L, 1);
  return 0;
}
