/*
** runtime.c — a runtime's life: configuration, start, and shutdown.
**
** A runtime is created by gr_attach on a host state, which becomes the
** main goroutine (id 1, "foreign": it keeps the host's thread and blocks
** it when it waits).  The runtime is anchored in that state's registry:
** closing the state stops every goroutine, joins every thread and closes
** every goroutine's state.
*/
#include <limits.h>
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

/* GOROUTINE_MEMLIMIT: bytes, or a number with a k, M or G suffix (KiB,
** MiB, GiB).  Sets *limit (0 if unset or 0: no limit); returns 0 if the
** value is malformed or too large. */
static int memlimit_from_env(size_t *limit) {
  const char *p = getenv("GOROUTINE_MEMLIMIT");
  size_t n = 0;
  unsigned shift = 0;
  *limit = 0;
  if (p == NULL || *p == '\0') return 1;
  if (*p < '0' || *p > '9') return 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    size_t d = (size_t)(*p - '0');
    if (n > (SIZE_MAX - d) / 10) return 0;
    n = n * 10 + d;
  }
  switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'M': shift = 20; p++; break;
    case 'G': shift = 30; p++; break;
  }
  if (*p != '\0' || n > (SIZE_MAX >> shift)) return 0;
  *limit = n << shift;
  return 1;
}

/* GOROUTINE_MAXTHREADS: a positive decimal integer (at most INT_MAX).
** Sets *n (GR_MAXTHREADS_DEFAULT if unset or empty); returns 0 if the value
** is malformed, 0 or too large. */
static int maxthreads_from_env(int *n) {
  const char *p = getenv("GOROUTINE_MAXTHREADS");
  long v = 0;
  *n = GR_MAXTHREADS_DEFAULT;
  if (p == NULL || *p == '\0') return 1;
  for (; *p >= '0' && *p <= '9'; p++) {
    v = v * 10 + (*p - '0');
    if (v > INT_MAX) return 0;
  }
  if (*p != '\0' || v == 0) return 0;
  *n = (int)v;
  return 1;
}

/* *out: cfg (NULL: every field 0), its memlimit from GOROUTINE_MEMLIMIT if
** 0 there, its maxthreads from GOROUTINE_MAXTHREADS if 0 or less.
** Returns NULL, or the name of the variable that is malformed. */
static const char *config_resolve(const gr_config *cfg, gr_config *out) {
  if (cfg) *out = *cfg; else memset(out, 0, sizeof *out);
  if (out->memlimit == 0 && !memlimit_from_env(&out->memlimit))
    return "GOROUTINE_MEMLIMIT";
  if (out->maxthreads <= 0 && !maxthreads_from_env(&out->maxthreads))
    return "GOROUTINE_MAXTHREADS";
  return NULL;
}

/* *copy: a copy of the string lib.field of L, or NULL if there is none.
** Returns 0 if there was one but no memory for the copy. */
static int field_copy(lua_State *L, const char *lib, const char *field, char **copy) {
  int ok = 1, top = lua_gettop(L);
  *copy = NULL;
  if (lua_getglobal(L, lib) == LUA_TTABLE &&
      lua_getfield(L, -1, field) == LUA_TSTRING)
    ok = (*copy = gr_strdup(lua_tostring(L, -1))) != NULL;
  lua_settop(L, top);
  return ok;
}

/* Stop everything, free everything.  Runs from the anchor's __gc while the
** host closes the main state. */
/* What runtime_new made besides threads and Gs: the state pool, the
** locks, the package paths. */
static void runtime_free_parts(gr_runtime *rt) {
  gr_pool_free(rt);
  gr_lock_destroy(&rt->sched);
  gr_lock_destroy(&rt->allglock);
  gr_free(rt->path);
  gr_free(rt->cpath);
  rt->path = rt->cpath = NULL;
}

static void runtime_close(gr_runtime *rt) {
  gr_sched_stop(rt);          /* no worker runs Lua code after this */
  gr_sysmon_stop(rt);
  gr_sched_free(rt);
  gr_timers_stop(rt);
  /* Every thread is joined: take the parked Gs' waiters out of the queues
  ** before any state goes (a select's live in its state), so a __gc that
  ** uses a channel meets no waiter of a closed state.  Then close every
  ** state, and free the Gs after. */
  gr_g *g;
  for (g = rt->allg; g; g = g->allnext)
    if (g != rt->main && atomic_load(&g->status) == GR_G_WAITING) gr_leave_waitqs(g, 0);
  for (g = rt->allg; g; g = g->allnext) {
    if (g != rt->main && g->L) {
      g->closing = 1;                   /* its finalizers must run (g.c) */
      lua_close(g->L);
      g->L = NULL;
    }
  }
  while ((g = rt->allg) != NULL) {
    rt->allg = g->allnext;
    gr_g_free(g);
  }
  runtime_free_parts(rt);
  atomic_store(&rt->closed, 1);
  gr_runtime_unpin(rt);
}

void gr_runtime_unpin(gr_runtime *rt) {
  if (atomic_fetch_sub(&rt->pins, 1) == 1) gr_free(rt);
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
  gr_runtime *rt = (gr_runtime *)gr_calloc(1, sizeof *rt);
  if (rt == NULL) return NULL;
  rt->cfg = *cfg;
  if (rt->cfg.chaos_seed == 0) rt->cfg.chaos_seed = gr_chaos_env();
  gr_lock_init(&rt->sched);
  gr_lock_init(&rt->allglock);
  atomic_init(&rt->nextid, 1);
  atomic_init(&rt->pins, 1);              /* gr_close's own */
  gr_g *main = NULL;
  if (L) {
    if (!field_copy(L, "package", "path", &rt->path) ||
        !field_copy(L, "package", "cpath", &rt->cpath) ||
        (main = gr_g_new(rt)) == NULL)           /* id 1 */
      goto nomem;
    main->L = L;
    main->foreign = 1;
    main->started = 1;
    atomic_store(&main->status, GR_G_RUNNING);
    rt->main = main;
  } else {
    atomic_store(&rt->nextid, 2);     /* ids as if a main goroutine ran */
  }
  gr_pool_new(rt);                   /* before any worker runs a G */
  if (!gr_sched_init(rt, rt->cfg.procs > 0 ? rt->cfg.procs : procs_from_env()))
    goto nomem;
  if (!gr_timers_start(rt)) {
    gr_sched_free(rt);
    goto nomem;
  }
  if (!gr_sysmon_start(rt)) {            /* no M runs yet: nothing to stop */
    gr_timers_stop(rt);
    gr_sched_free(rt);
    goto nomem;
  }
  return rt;
nomem:
  if (main) {
    gr_lock_acquire(&rt->allglock);      /* as g_unlink */
    rt->allg = NULL;
    gr_lock_release(&rt->allglock);
    gr_g_free(main);
  }
  runtime_free_parts(rt);
  gr_free(rt);
  return NULL;
}

gr_runtime *gr_open(const gr_config *cfg) {
  gr_config c;
  return config_resolve(cfg, &c) == NULL ? runtime_new(&c, NULL) : NULL;
}

void gr_close(gr_runtime *rt) {
  if (rt) runtime_close(rt);
}

/* The anchor is made first, so that once the runtime exists a Lua error
** (no memory) cannot lose it: the anchor's __gc closes it. */
gr_runtime *gr_attach(lua_State *L, const gr_config *cfg) {
  gr_config c;
  const char *bad = config_resolve(cfg, &c);
  if (bad != NULL)
    luaL_error(L, "%s: invalid value '%s' (want %s)", bad, getenv(bad),
               strcmp(bad, "GOROUTINE_MEMLIMIT") == 0
                 ? "a number of bytes, optionally with a k, M or G suffix"
                 : "a positive integer: the most OS threads the runtime may own");
  gr_runtime **box = (gr_runtime **)lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, anchor_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  gr_runtime *rt = runtime_new(&c, L);
  if (rt == NULL) {
    luaL_error(L, "not enough memory");
    return NULL;
  }
  *box = rt;
  lua_rawsetp(L, LUA_REGISTRYINDEX, &anchor_key);
  gr_g_register_foreign(rt, L, rt->main);

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
  gr_push_go(L);                     /* module.go, without filling it */
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
