/*
** libs.c — the libraries of a goroutine's state, opened on first use.
**
** Opening every standard library costs a new state about 15 µs and 9 KB,
** more than the rest of a spawn together, and most goroutines use few of
** them.  So a goroutine's _G starts empty but for a metatable whose
** __index opens what a name asks for: any base function opens the base
** library; 'require' or 'package' the package library; 'goroutine' or
** 'go' this module; 'string', 'table', 'math', ... their library (which
** also lands in package.loaded and, for require, in package.preload).
** Strings get a metatable whose __index opens the string library, so
** ("x"):upper() works from the start.  After its first use a name is an
** ordinary field of _G.
**
** What a Lua program can see: pairs(_G) and rawget(_G, name) show a
** library only once it has been used, and a goroutine that replaces _G's
** metatable (a strict-globals module, say) should touch the libraries it
** needs first.
**
** coroutine.resume and coroutine.wrap are our own (same behaviour as
** Lua's): they note in g->running the coroutine the goroutine executes,
** so that a preemption request reaches a loop inside a user coroutine
** too (sysmon's hook goes where the Lua code runs, not only on the body).
*/
#include <string.h>
#include <lualib.h>
#include <lauxlib.h>
#include "runtime.h"

static int open_coroutine(lua_State *L);

static const luaL_Reg lazy_libs[] = {
  {LUA_STRLIBNAME, luaopen_string}, {LUA_TABLIBNAME, luaopen_table},
  {LUA_MATHLIBNAME, luaopen_math}, {LUA_IOLIBNAME, luaopen_io},
  {LUA_OSLIBNAME, luaopen_os}, {LUA_COLIBNAME, open_coroutine},
  {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_DBLIBNAME, luaopen_debug},
  {NULL, NULL}
};

/*
** Resume co with the top narg values of L; as Lua's own auxresume: returns
** the number of results moved onto L, or -1 with an error message on L.
** lua_resume never raises, so g->running is always put back.
*/
static int resume_tracked(lua_State *L, gr_g *g, lua_State *co, int narg) {
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  lua_State *outer = atomic_load_explicit(&g->running, memory_order_relaxed);
  atomic_store_explicit(&g->running, co, memory_order_relaxed);
  int nres;
  int status = lua_resume(co, L, narg, &nres);
  atomic_store_explicit(&g->running, outer, memory_order_relaxed);
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_xmove(co, L, 1);                  /* the error object */
    return -1;
  }
  if (!lua_checkstack(L, nres + 1)) {
    lua_pop(co, nres);
    lua_pushliteral(L, "too many results to resume");
    return -1;
  }
  lua_xmove(co, L, nres);
  return nres;
}

static gr_g *upvalue_g(lua_State *L, int i) {
  return (gr_g *)lua_touserdata(L, lua_upvalueindex(i));
}

static int co_resume(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);       /* Lua's own words */
  lua_State *co = lua_tothread(L, 1);
  int n = resume_tracked(L, upvalue_g(L, 1), co, lua_gettop(L) - 1);
  lua_pushboolean(L, n >= 0);
  if (n < 0) n = 1;                       /* false, message */
  lua_insert(L, -(n + 1));
  return n + 1;
}

/* The function coroutine.wrap returns: upvalues g, co. */
static int co_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(2));
  int n = resume_tracked(L, upvalue_g(L, 1), co, lua_gettop(L));
  if (n >= 0) return n;
  int status = lua_status(co);
  if (status != LUA_OK && status != LUA_YIELD) {  /* it died: close it */
#if LUA_VERSION_RELEASE_NUM >= 50406
    status = lua_closethread(co, L);
#else
    status = lua_resetthread(co);
#endif
    lua_xmove(co, L, 1);
  }
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);                     /* where the wrapper was called */
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, co_wrapped, 2);
  return 1;
}

void gr_libs_track_coroutines(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushlightuserdata(L, gr_getg(L));
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, co_resume, 1);
  lua_setfield(L, idx, "resume");
  lua_pushcclosure(L, co_wrap, 1);
  lua_setfield(L, idx, "wrap");
}

static int open_coroutine(lua_State *L) {
  luaopen_coroutine(L);
  gr_libs_track_coroutines(L, -1);
  return 1;
}

static const char base_key = 'b';   /* registry: the base library is open */

static void open_package(lua_State *L) {
  gr_runtime *rt = gr_getg(L)->rt;
  if (rt->path || rt->cpath) {
    /* The paths come from the main state: skip package's getenv calls. */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 1);
  if (rt->path) { lua_pushstring(L, rt->path); lua_setfield(L, -2, "path"); }
  if (rt->cpath) { lua_pushstring(L, rt->cpath); lua_setfield(L, -2, "cpath"); }
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *lib = lazy_libs; lib->name; lib++) {
    lua_pushcfunction(L, lib->func);
    lua_setfield(L, -2, lib->name);
  }
  lua_pop(L, 1);
}

/* __index of _G: open the library that provides 'name', then look again. */
static int global_index(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  const char *name = lua_tostring(L, 2);
  /* This module first: a goroutine that only uses it (through an upvalue,
  ** say) never pays for the base library. */
  if (strcmp(name, "goroutine") == 0 || strcmp(name, "go") == 0) {
    gr_setglobals(L);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &base_key) == LUA_TNIL) {
    lua_pushboolean(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &base_key);
    luaL_requiref(L, LUA_GNAME, luaopen_base, 0);
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, 1) != LUA_TNIL) return 1;
  }
  lua_settop(L, 2);
  if (strcmp(name, "require") == 0 || strcmp(name, LUA_LOADLIBNAME) == 0) {
    open_package(L);
  } else {
    for (const luaL_Reg *lib = lazy_libs; lib->name; lib++) {
      if (strcmp(lib->name, name) == 0) {
        luaL_requiref(L, lib->name, lib->func, 1);   /* sets the global */
        return 1;
      }
    }
    return 0;
  }
  lua_rawget(L, 1);
  return 1;
}

/* __index of strings until the string library is open. */
static int string_index(lua_State *L) {
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);  /* sets the real one */
  lua_pushvalue(L, 2);
  lua_gettable(L, -2);
  return 1;
}

void gr_libs_setup(lua_State *L) {
  lua_pushglobaltable(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, global_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, string_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
}
