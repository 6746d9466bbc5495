/*
** embed.c — the host side of the public API (goroutine.h): running Lua
** code as goroutines from C, and channels used from host threads.
**
** A host thread has no lua_State of the runtime's, yet values cross only
** as codec messages, which are made and read by a state.  Each call that
** needs one makes a small scratch state for the moment (a bare state costs
** about 2 µs), so host calls share nothing and any thread may make them.
*/
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include <lauxlib.h>
#include "runtime.h"
#include "obj.h"

/* ------------------------------------------------------------- values */

void gr_value_free(gr_value *v) {
  if (v == NULL) return;
  if (v->type == GR_STRING) gr_free(v->u.string.ptr);
  if (v->type == GR_CHANNEL) gr_chan_unref(v->u.channel);
  v->type = GR_NIL;
}

static void push_value(lua_State *L, const gr_value *v) {
  switch (v ? v->type : GR_NIL) {
    case GR_BOOLEAN: lua_pushboolean(L, v->u.boolean); break;
    case GR_INTEGER: lua_pushinteger(L, (lua_Integer)v->u.integer); break;
    case GR_NUMBER: lua_pushnumber(L, (lua_Number)v->u.number); break;
    case GR_STRING: lua_pushlstring(L, v->u.string.ptr, v->u.string.len); break;
    case GR_CHANNEL: gr_chan_push(L, v->u.channel); break;
    default: lua_pushnil(L); break;
  }
}

/* The value at the top of L as a C-level value; 0 if it is none. */
static int to_value(lua_State *L, gr_value *v) {
  switch (lua_type(L, -1)) {
    case LUA_TNIL: v->type = GR_NIL; return 1;
    case LUA_TBOOLEAN: v->type = GR_BOOLEAN; v->u.boolean = lua_toboolean(L, -1); return 1;
    case LUA_TNUMBER:
      if (lua_isinteger(L, -1)) {
        v->type = GR_INTEGER;
        v->u.integer = (long long)lua_tointeger(L, -1);
      } else {
        v->type = GR_NUMBER;
        v->u.number = (double)lua_tonumber(L, -1);
      }
      return 1;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      char *copy = (char *)gr_malloc(len + 1);
      if (copy == NULL) return 0;
      memcpy(copy, s, len + 1);
      v->type = GR_STRING;
      v->u.string.ptr = copy;
      v->u.string.len = len;
      return 1;
    }
    case LUA_TUSERDATA:
      if ((v->u.channel = gr_chan_get(L, -1)) == NULL) return 0;
      v->type = GR_CHANNEL;
      return 1;
    default: return 0;
  }
}

/* ------------------------------------------------------ scratch states */

static int encode_value_call(lua_State *L) {
  gr_encode(L, 2, 1, GR_ENCODE_VALUE, (gr_msg *)lua_touserdata(L, 1));
  return 0;
}

/* A scratch state.  Everything that may allocate in it runs protected: an
** error outside would be a panic. */
static lua_State *scratch_state(void) {
  lua_State *S = luaL_newstate();
  if (S) lua_setallocf(S, gr_lua_alloc, NULL);   /* counted (alloc.h) */
  return S;
}

/* What an encode_call makes into one message *m: the chunk (code, or the
** file at path) if there is one, then the C values. */
typedef struct encode_job {
  gr_msg *m;
  enum gr_encode_kind kind;
  const char *code, *name, *path;
  const gr_value *vals;
  int nvals;
} encode_job;

static int encode_call(lua_State *L) {
  encode_job *j = (encode_job *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  if (j->path || j->code) {
    int status = j->path ? luaL_loadfile(L, j->path)
                         : luaL_loadbuffer(L, j->code, strlen(j->code), j->name ? j->name : "=(host)");
    if (status != LUA_OK) return lua_error(L);
  }
  luaL_checkstack(L, j->nvals, "too many values");
  for (int i = 0; i < j->nvals; i++) push_value(L, &j->vals[i]);
  gr_encode(L, 1, lua_gettop(L), j->kind, j->m);
  return 0;
}

/* Run j in S; on failure returns 0 with the error message on S. */
static int encode_protected(lua_State *S, encode_job *j) {
  lua_pushcfunction(S, encode_call);
  lua_pushlightuserdata(S, j);
  return lua_pcall(S, 1, 0, 0) == LUA_OK;
}

/* Encode the value at the top of L (the host's state) as one message:
** protected, the value stays.  On failure returns 0 with the error message
** pushed. */
static int encode_value(lua_State *L, gr_msg *m) {
  lua_pushcfunction(L, encode_value_call);
  lua_pushlightuserdata(L, m);
  lua_pushvalue(L, -3);
  return lua_pcall(L, 2, 0, 0) == LUA_OK;
}

static int decode_call(lua_State *L) {
  gr_msg *m = (gr_msg *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  return gr_decode_free(L, m);
}

/* Push the value of m onto L (m is freed); 0 with the error on top. */
static int decode_protected(lua_State *L, gr_msg *m) {
  lua_pushcfunction(L, decode_call);
  lua_pushlightuserdata(L, m);
  int ok = lua_pcall(L, 1, 1, 0) == LUA_OK;
  gr_msg_free(m);
  return ok;
}

static char *copy_error(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  return gr_strdup(msg ? msg : "(error object is not a string)");
}

/* ---------------------------------------------------------- running Lua */

/* Compile code (or the file at path) in a scratch state and start it. */
static long long start_chunk(gr_runtime *rt, const char *code, const char *name,
                             const char *path, const gr_value *args, int nargs,
                             gr_done *done, char **err) {
  if (err) *err = NULL;
  lua_State *S = scratch_state();
  if (S == NULL) {
    if (err) *err = gr_strdup("not enough memory");
    return -1;
  }
  gr_msg start = GR_MSG_EMPTY;
  encode_job job = { &start, GR_ENCODE_GOCALL, code, name, path, args, nargs };
  if (!encode_protected(S, &job)) {
    if (err) *err = copy_error(S);
    lua_close(S);
    return -1;
  }
  lua_close(S);
  long long id = (long long)gr_spawn(rt, &start, done);
  if (id < 0 && err) *err = gr_strdup("not enough memory");
  return id;
}

static int run_and_wait(gr_runtime *rt, const char *code, const char *name,
                        const char *path, char **err) {
  gr_done done;
  memset(&done, 0, sizeof done);
  gr_lock_init(&done.lock);
  gr_cond_init(&done.cond);
  int result = GR_ERROR;
  if (start_chunk(rt, code, name, path, NULL, 0, &done, err) >= 0) {
    gr_lock_acquire(&done.lock);
    while (!done.finished) gr_cond_wait(&done.cond, &done.lock);
    gr_lock_release(&done.lock);
    result = done.failed ? GR_ERROR : GR_OK;
    if (done.failed && done.err == NULL) done.err = gr_strdup("not enough memory");
    if (err) *err = done.err; else gr_free(done.err);
  }
  gr_cond_destroy(&done.cond);
  gr_lock_destroy(&done.lock);
  return result;
}

int gr_dostring(gr_runtime *rt, const char *code, const char *name, char **err) {
  return run_and_wait(rt, code, name, NULL, err);
}

int gr_dofile(gr_runtime *rt, const char *path, char **err) {
  return run_and_wait(rt, NULL, NULL, path, err);
}

long long gr_go(gr_runtime *rt, const char *code, const char *name,
                const gr_value *args, int nargs, char **err) {
  return start_chunk(rt, code, name, NULL, args, nargs, NULL, err);
}

/* ------------------------------------------------------------ channels */

/* The host takes a reference to c: it pins the runtime record too. */
static void host_retain(gr_chan *c) {
  gr_runtime *rt = gr_chan_runtime(c);
  gr_chan_retain(c);
  atomic_fetch_add(&rt->pins, 1);
  atomic_fetch_add(&rt->nhostrefs, 1);
}

gr_chan *gr_chan_make(gr_runtime *rt, size_t cap) {
  if (cap > UINT32_MAX / sizeof(gr_msg)) return NULL;
  gr_chan *c = gr_chan_new(rt, (uint32_t)cap);
  if (c) host_retain(c);
  return c;
}

gr_chan *gr_chan_get(lua_State *L, int idx) {
  gr_obj *o = gr_obj_test(L, idx);
  if (o == NULL || strcmp(o->type->name, "channel") != 0) return NULL;
  gr_chan *c = (gr_chan *)o;
  host_retain(c);
  return c;
}

void gr_chan_unref(gr_chan *c) {
  if (c == NULL) return;
  gr_runtime *rt = gr_chan_runtime(c);
  atomic_fetch_sub(&rt->nhostrefs, 1);
  gr_chan_release(c);
  gr_runtime_unpin(rt);                  /* after gr_close, maybe the last */
}

int gr_chan_send(gr_chan *c, const gr_value *v, double timeout) {
  lua_State *S = scratch_state();
  if (S == NULL) return GR_ERROR;
  gr_msg m = GR_MSG_EMPTY;
  encode_job job = { &m, GR_ENCODE_VALUE, NULL, NULL, NULL, v, 1 };
  int ok = encode_protected(S, &job);
  lua_close(S);
  if (!ok) return GR_ERROR;
  int r = gr_chan_host_send(c, &m, timeout);
  gr_msg_free(&m);               /* empty unless it was not sent */
  return r;
}

int gr_chan_recv(gr_chan *c, gr_value *v, double timeout) {
  gr_msg m = GR_MSG_EMPTY;
  v->type = GR_NIL;
  int r = gr_chan_host_recv(c, &m, timeout);
  if (r != GR_OK) return r;
  lua_State *S = scratch_state();
  if (S == NULL) { gr_msg_free(&m); return GR_ERROR; }
  int ok = decode_protected(S, &m) && to_value(S, v);
  lua_close(S);
  return ok ? GR_OK : GR_ERROR;
}

int gr_chan_sendlua(gr_chan *c, lua_State *L, int idx, double timeout) {
  gr_msg m = GR_MSG_EMPTY;
  lua_pushvalue(L, idx);
  int ok = encode_value(L, &m);
  lua_remove(L, ok ? -1 : -2);       /* the copy; the reason stays on L */
  if (!ok) return GR_ERROR;
  int r = gr_chan_host_send(c, &m, timeout);
  gr_msg_free(&m);
  return r;
}

int gr_chan_recvlua(gr_chan *c, lua_State *L, double timeout) {
  gr_msg m = GR_MSG_EMPTY;
  int r = gr_chan_host_recv(c, &m, timeout);
  if (r != GR_OK) return r;
  return decode_protected(L, &m) ? GR_OK : GR_ERROR;
}
