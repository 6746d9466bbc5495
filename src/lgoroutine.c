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

void gr_open_module(lua_State *L) {
  static const luaL_Reg funcs[] = {
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
  luaL_newlib(L, funcs);
  gr_chan_open(L);
  gr_sync_open(L);
  lua_pushliteral(L, GR_VERSION);
  lua_setfield(L, -2, "version");
}
