/*
** runtime.c — a runtime's life: configuration, start, and shutdown.
**
** A runtime is created by gr_attach on a host state, which becomes the
** main goroutine (id 1, "foreign": it keeps the host's thread and blocks
** it when it waits).  The runtime is anchored in that state's registry:
** closing the state stops every goroutine, joins every thread and closes
** every goroutine's state.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include "runtime.h"
#include "chaos.h"

static const char anchor_key = 'a';   /* registry: the runtime's anchor */

static int procs_from_env(void) {
  const char *s = getenv("GOROUTINE_MAXPROCS");
  if (s && *s) {
    char *end;
    long n = strtol(s, &end, 10);
    if (*end == '\0' && n > 0) return n > GR_MAXPROCS ? GR_MAXPROCS : (int)n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static char *field_copy(lua_State *L, const char *lib, const char *field) {
  char *copy = NULL;
  int top = lua_gettop(L);
  if (lua_getglobal(L, lib) == LUA_TTABLE &&
      lua_getfield(L, -1, field) == LUA_TSTRING)
    copy = strdup(lua_tostring(L, -1));
  lua_settop(L, top);
  return copy;
}

/* Stop everything, free everything.  Runs from the anchor's __gc while the
** host closes the main state. */
static void runtime_close(gr_runtime *rt) {
  gr_sched_stop(rt);          /* no worker runs Lua code after this */
  gr_sysmon_stop(rt);
  gr_sched_free(rt);
  gr_timers_stop(rt);
  /* Close every state first, free the Gs after: a __gc running now may
  ** still touch a waiter that another G left in some wait queue. */
  gr_g *g;
  for (g = rt->allg; g; g = g->allnext) {
    if (g != rt->main && g->L) { lua_close(g->L); g->L = NULL; }
  }
  while ((g = rt->allg) != NULL) {
    rt->allg = g->allnext;
    gr_g_free(g);
  }
  gr_lock_destroy(&rt->sched);
  gr_lock_destroy(&rt->allglock);
  free(rt->path);
  free(rt->cpath);
  free(rt);
}

static int anchor_gc(lua_State *L) {
  gr_runtime **box = (gr_runtime **)lua_touserdata(L, 1);
  if (*box) {
    runtime_close(*box);
    *box = NULL;
  }
  return 0;
}

/* A runtime with its threads started.  With a host state L, L becomes the
** main goroutine (id 1) first: the threads see rt->main from their start. */
static gr_runtime *runtime_new(const gr_config *cfg, lua_State *L) {
  gr_runtime *rt = (gr_runtime *)calloc(1, sizeof *rt);
  if (rt == NULL) return NULL;
  if (cfg) rt->cfg = *cfg;
  if (rt->cfg.chaos_seed == 0) rt->cfg.chaos_seed = gr_chaos_env();
  gr_lock_init(&rt->sched);
  gr_lock_init(&rt->allglock);
  atomic_init(&rt->nextid, 1);
  if (L) {
    rt->path = field_copy(L, "package", "path");
    rt->cpath = field_copy(L, "package", "cpath");
    gr_g *main = gr_g_new(rt);        /* id 1 */
    if (main == NULL) { free(rt); return NULL; }
    main->L = L;
    main->foreign = 1;
    main->started = 1;
    atomic_store(&main->status, GR_G_RUNNING);
    rt->main = main;
    gr_g_register_foreign(rt, L, main);
  } else {
    atomic_store(&rt->nextid, 2);     /* ids as if a main goroutine ran */
  }
  gr_sched_init(rt, rt->cfg.procs > 0 ? rt->cfg.procs : procs_from_env());
  gr_timers_start(rt);
  gr_sysmon_start(rt);
  return rt;
}

gr_runtime *gr_open(const gr_config *cfg) {
  return runtime_new(cfg, NULL);
}

void gr_close(gr_runtime *rt) {
  if (rt) runtime_close(rt);
}

gr_runtime *gr_attach(lua_State *L, const gr_config *cfg) {
  gr_runtime *rt = runtime_new(cfg, L);
  if (rt == NULL) {
    luaL_error(L, "not enough memory");
    return NULL;
  }
  gr_runtime **box = (gr_runtime **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = rt;
  lua_newtable(L);
  lua_pushcfunction(L, anchor_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &anchor_key);

  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  gr_open_module(L);
  lua_setfield(L, -2, "goroutine");
  lua_pop(L, 1);
  return rt;
}

void gr_setglobals(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "goroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    gr_open_module(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "goroutine");
  }
  lua_getfield(L, -1, "go");
  lua_setglobal(L, "go");
  lua_setglobal(L, "goroutine");
  lua_pop(L, 1);
}

int luaopen_goroutine(lua_State *L) {
  if (!gr_hasruntime(L)) gr_attach(L, NULL);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "goroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    gr_open_module(L);
  }
  return 1;
}
