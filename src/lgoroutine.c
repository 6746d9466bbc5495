/*
** lgoroutine.c — the Lua binding: the `goroutine` module.
**
** The same module is opened in the main state and in every goroutine's
** state; its functions find their goroutine (and runtime) through the
** state's registry (gr_getg).
*/
#include <lauxlib.h>
#include "runtime.h"

/* goroutine.go(f, ...) -> id */
static int l_go(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  gr_g *g = gr_getg(L);
  gr_msg start;
  gr_encode(L, 1, lua_gettop(L), GR_ENCODE_GOCALL, &start);
  int64_t id = gr_spawn(g->rt, &start, NULL);
  if (id < 0) return luaL_error(L, "not enough memory");
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

void gr_push_go(lua_State *L) {
  lua_pushcfunction(L, l_go);
}

static int l_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)gr_getg(L)->id);
  return 1;
}

static int l_yield(lua_State *L) {
  return gr_gosched(L);
}

static int l_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)atomic_load(&gr_getg(L)->rt->ngoroutines));
  return 1;
}

/* goroutine.maxprocs([n]): as GOMAXPROCS, n < 1 only reads the count. */
static int l_maxprocs(lua_State *L) {
  gr_runtime *rt = gr_getg(L)->rt;
  lua_Integer n = luaL_optinteger(L, 1, 0);
  if (n < 1) {
    lua_pushinteger(L, atomic_load(&rt->nprocs));
    return 1;
  }
  int old = gr_setprocs(rt, n > GR_MAXPROCS ? GR_MAXPROCS : (int)n);
  if (old < 0) return luaL_error(L, "not enough memory");
  lua_pushinteger(L, old);
  return 1;
}

static int l_sleep(lua_State *L) {
  return gr_sleep(L, luaL_checknumber(L, 1));
}

static int l_after(lua_State *L) {
  return gr_after(L, luaL_checknumber(L, 1));
}

static int l_tick(lua_State *L) {
  return gr_tick(L, luaL_checknumber(L, 1));
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, gr_now());
  return 1;
}

static const luaL_Reg module_funcs[] = {
  {"go", l_go},
  {"id", l_id},
  {"yield", l_yield},
  {"count", l_count},
  {"maxprocs", l_maxprocs},
  {"sleep", l_sleep},
  {"now", l_now},
  {"after", l_after},
  {"tick", l_tick},
  {"register", gr_codec_register},
  {NULL, NULL}
};

/* Fill the module table at the top of L and drop its lazy metatable. */
static void module_fill(lua_State *L) {
  luaL_setfuncs(L, module_funcs, 0);
  gr_chan_open(L);
  gr_sync_open(L);
  lua_pushnil(L);
  lua_setmetatable(L, -2);
}

/* __index of a module not filled yet: fill it, then look again. */
static int module_index(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 1);
  module_fill(L);
  lua_pop(L, 1);
  lua_rawget(L, 1);
  return 1;
}

static int module_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

/* __pairs: fill it, then iterate as next would. */
static int module_pairs(lua_State *L) {
  lua_settop(L, 1);
  lua_getmetatable(L, 1);                /* still lazy? */
  if (!lua_isnil(L, -1)) {
    lua_pushvalue(L, 1);
    module_fill(L);
  }
  lua_settop(L, 1);
  lua_pushcfunction(L, module_next);
  lua_insert(L, 1);
  lua_pushnil(L);
  return 3;
}

/*
** Push a new module table.  Its functions enter it on first use (all of
** them, at the first name looked up, or at pairs): most goroutines get the
** module as an upvalue or a global and many never call it, and filling it
** costs a spawn about a tenth.  rawget and next see a name only once the
** module has been used.
*/
void gr_open_module(lua_State *L) {
  lua_createtable(L, 0, 24);
  lua_pushliteral(L, GR_VERSION);
  lua_setfield(L, -2, "version");
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, module_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, module_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_setmetatable(L, -2);
}
