/*
** obj.c — reference-counted runtime objects and their per-state handles.
*/
#include <stdio.h>
#include <string.h>
#include "obj.h"

typedef struct gr_handle { gr_obj *obj; } gr_handle;

static const char handles_key = 'h';   /* registry: weak table obj -> handle */
static const char TYPE_FIELD[] = "__goroutine_type";

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
  if (lua_getfield(L, -1, TYPE_FIELD) == LUA_TLIGHTUSERDATA)
    o = h->obj;
  lua_pop(L, 2);
  return o;
}

gr_obj *gr_obj_check(lua_State *L, int idx, const gr_objtype *type) {
  gr_handle *h = (gr_handle *)luaL_testudata(L, idx, type->tname);
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

/* Push the metatable for handles of 'type', creating it on first use.  The
** methods live in the metatable itself (__index is the metatable): one
** table per type per state, since every goroutine state has its own. */
static void push_metatable(lua_State *L, const gr_objtype *type) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, type->tname) != LUA_TNIL) return;
  lua_pop(L, 1);
  int n = 0;
  for (const luaL_Reg *r = type->methods; r->name; r++) n++;
  for (const luaL_Reg *r = type->metamethods; r && r->name; r++) n++;
  lua_createtable(L, 0, n + 5);
  luaL_setfuncs(L, type->methods, 0);
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
  lua_setfield(L, -2, TYPE_FIELD);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, type->tname);
}

/* Push the registry's weak table object -> handle. */
static void push_handles(lua_State *L) {
  luaL_checkstack(L, 4, NULL);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &handles_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &handles_key);
  }
}

void gr_obj_pushnew(lua_State *L, const gr_objtype *type) {
  gr_handle *h = (gr_handle *)lua_newuserdatauv(L, sizeof *h, 0);
  h->obj = NULL;                      /* its __gc does nothing yet */
  push_metatable(L, type);
  lua_setmetatable(L, -2);
}

void gr_obj_adopt(lua_State *L, gr_obj *o) {
  gr_handle *h = (gr_handle *)lua_touserdata(L, -1);
  gr_obj_retain(o);
  h->obj = o;
  push_handles(L);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, o);
  lua_pop(L, 1);
}

void gr_obj_push(lua_State *L, gr_obj *o) {
  push_handles(L);
  if (lua_rawgetp(L, -1, o) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 2);
  gr_obj_pushnew(L, o->type);
  gr_obj_adopt(L, o);
}
