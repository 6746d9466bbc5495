/*
** obj.c — reference-counted runtime objects and their per-state handles.
*/
#include <stdio.h>
#include <string.h>
#include "obj.h"

typedef struct gr_handle { gr_obj *obj; } gr_handle;

/* registry[&handles_key]: a table with weak values, one per state, that
** maps each object (its address) to its handle, each type to its handle
** metatable, and &resolver_key to those metatables' own metatable.  Weak
** is right for all three: a metatable or resolver no handle uses any more
** is made again when one is needed.  One registry entry, made once. */
static const char handles_key = 'h';
static const char resolver_key = 'r';
/* A handle metatable's [1] is its type (a light userdata): only this file
** makes such a value, so it tells our handles from any other userdata. */
#define TYPE_INDEX 1

void gr_obj_init(gr_obj *o, const gr_objtype *type) {
  o->type = type;
  atomic_init(&o->refs, 0);
}

void gr_obj_retain(gr_obj *o) {
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void gr_obj_release(gr_obj *o) {
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
    o->type->destroy(o);
}

gr_obj *gr_obj_test(lua_State *L, int idx) {
  gr_handle *h = (gr_handle *)lua_touserdata(L, idx);
  gr_obj *o = NULL;
  if (h == NULL || lua_islightuserdata(L, idx) || !lua_getmetatable(L, idx))
    return NULL;
  int mt = lua_gettop(L);
  /* Any userdata's metatable may hold a light userdata at [1]: ours is the
  ** metatable the state keeps for that type. */
  if (lua_rawgeti(L, mt, TYPE_INDEX) == LUA_TLIGHTUSERDATA &&
      lua_rawgetp(L, LUA_REGISTRYINDEX, &handles_key) == LUA_TTABLE) {
    lua_rawgetp(L, -1, lua_touserdata(L, mt + 1));
    if (lua_rawequal(L, -1, mt)) o = h->obj;
  }
  lua_settop(L, mt - 1);
  return o;
}

/* The handle at idx if it is one of 'type' (its metatable's [1] says). */
static gr_handle *test_type(lua_State *L, int idx, const gr_objtype *type) {
  gr_handle *h = (gr_handle *)lua_touserdata(L, idx);
  if (h == NULL || lua_islightuserdata(L, idx) || !lua_getmetatable(L, idx))
    return NULL;
  lua_rawgeti(L, -1, TYPE_INDEX);
  int same = lua_touserdata(L, -1) == (void *)type;
  lua_pop(L, 2);
  return same ? h : NULL;
}

gr_obj *gr_obj_check(lua_State *L, int idx, const gr_objtype *type) {
  gr_handle *h = test_type(L, idx, type);
  if (h == NULL) {
    const char *got = luaL_typename(L, idx);
    gr_obj *o = gr_obj_test(L, idx);
    if (o != NULL) got = o->type->name;
    luaL_argerror(L, idx, lua_pushfstring(L, "%s expected, got %s",
                                          type->name, got));
  }
  return h->obj;
}

static int handle_gc(lua_State *L) {
  gr_handle *h = (gr_handle *)lua_touserdata(L, 1);
  if (h->obj != NULL) {
    gr_obj_release(h->obj);
    h->obj = NULL;
  }
  return 0;
}

static int handle_tostring(lua_State *L) {
  gr_handle *h = (gr_handle *)lua_touserdata(L, 1);
  lua_pushfstring(L, "%s: %p", h->obj->type->name, (void *)h->obj);
  return 1;
}

/*
** __index of every handle metatable's own metatable: a method not yet in
** the handle metatable is looked up in its type's list and stored there,
** so it costs a C call once per state and a table hit after that.
*/
static int resolve_method(lua_State *L) {
  const char *name = lua_tostring(L, 2);
  if (name == NULL || lua_type(L, 2) != LUA_TSTRING) return 0;
  lua_rawgeti(L, 1, TYPE_INDEX);
  const gr_objtype *type = (const gr_objtype *)lua_touserdata(L, -1);
  if (type == NULL) return 0;
  for (const luaL_Reg *r = type->methods; r->name; r++) {
    if (strcmp(r->name, name) == 0) {
      lua_pushcfunction(L, r->func);
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -2);
      lua_rawset(L, 1);
      return 1;
    }
  }
  return 0;
}

/*
** Push the metatable for handles of 'type', kept in the handles table at
** index 'handles', creating it on first use: one per type per state, since
** every goroutine has its own state.  The methods live in the metatable
** itself (__index is the metatable), each added on its first use
** (resolve_method): a goroutine that only sends pays neither time nor
** memory for the other methods.
*/
static void push_metatable(lua_State *L, int handles, const gr_objtype *type) {
  if (lua_rawgetp(L, handles, type) != LUA_TNIL) return;
  lua_pop(L, 1);
  lua_createtable(L, 1, 8);
  if (type->metamethods) luaL_setfuncs(L, type->metamethods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, handle_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, handle_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, type->name);
  lua_setfield(L, -2, "__name");
  lua_pushlightuserdata(L, (void *)type);
  lua_rawseti(L, -2, TYPE_INDEX);
  if (lua_rawgetp(L, handles, &resolver_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, resolve_method);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, handles, &resolver_key);
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, handles, type);
}

/* Push the state's handles table (see handles_key), making it on first
** use; returns its index. */
static int push_handles(lua_State *L) {
  luaL_checkstack(L, 6, NULL);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &handles_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);           /* a handle, its metatable, resolver */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &handles_key);
  }
  return lua_gettop(L);
}

/* A handle of 'type' with no object yet, on top; handles is the index of
** the handles table. */
static void push_empty(lua_State *L, int handles, const gr_objtype *type) {
  gr_handle *h = (gr_handle *)lua_newuserdatauv(L, sizeof *h, 0);
  h->obj = NULL;                      /* its __gc does nothing yet */
  push_metatable(L, handles, type);
  lua_setmetatable(L, -2);
}

/* Give o to the handle on top, and note it as o's handle in this state. */
static void adopt(lua_State *L, int handles, gr_obj *o) {
  gr_handle *h = (gr_handle *)lua_touserdata(L, -1);
  gr_obj_retain(o);
  h->obj = o;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, handles, o);
}

void gr_obj_pushnew(lua_State *L, const gr_objtype *type) {
  int handles = push_handles(L);
  push_empty(L, handles, type);
  lua_remove(L, handles);
}

void gr_obj_adopt(lua_State *L, gr_obj *o) {
  int handles = push_handles(L);
  lua_pushvalue(L, -2);
  adopt(L, handles, o);
  lua_settop(L, handles - 1);
}

void gr_obj_push(lua_State *L, gr_obj *o) {
  int handles = push_handles(L);
  if (lua_rawgetp(L, handles, o) == LUA_TUSERDATA) {
    lua_remove(L, handles);
    return;
  }
  lua_pop(L, 1);
  push_empty(L, handles, o->type);
  adopt(L, handles, o);
  lua_remove(L, handles);
}
