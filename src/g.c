/*
** g.c — a goroutine: its own lua_State, the coroutine its body runs in,
** how a worker runs it, and how it ends.
**
** A G's state is made lazily, by the worker that first runs it, so a spawn
** costs the spawner only the encoding of the function and its arguments.
** The body runs as the coroutine g->co; a blocking operation yields it
** back to the worker (gr_park), and whoever readies the G makes some
** worker resume it.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include <lauxlib.h>
#include "runtime.h"

static const char gkey = 'g';   /* registry: lightuserdata gr_g* of the state */
static const char cokey = 'c';  /* registry: the body coroutine */

gr_g *gr_getg(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &gkey);
  gr_g *g = (gr_g *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (g == NULL) luaL_error(L, "goroutine: this Lua state has no runtime");
  return g;
}

int gr_hasruntime(lua_State *L) {
  int has = lua_rawgetp(L, LUA_REGISTRYINDEX, &gkey) != LUA_TNIL;
  lua_pop(L, 1);
  return has;
}

static void g_link(gr_runtime *rt, gr_g *g) {
  gr_lock_acquire(&rt->allglock);
  g->allprev = NULL;
  g->allnext = rt->allg;
  if (rt->allg) rt->allg->allprev = g;
  rt->allg = g;
  gr_lock_release(&rt->allglock);
  atomic_fetch_add(&rt->ngoroutines, 1);
}

static void g_unlink(gr_runtime *rt, gr_g *g) {
  gr_lock_acquire(&rt->allglock);
  if (g->allprev) g->allprev->allnext = g->allnext; else rt->allg = g->allnext;
  if (g->allnext) g->allnext->allprev = g->allprev;
  gr_lock_release(&rt->allglock);
  atomic_fetch_sub(&rt->ngoroutines, 1);
}

static gr_g *g_alloc(gr_runtime *rt) {
  gr_g *g = (gr_g *)calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->rt = rt;
  g->id = atomic_fetch_add(&rt->nextid, 1);
  atomic_init(&g->status, GR_G_RUNNABLE);
  gr_lock_init(&g->tplock);
  gr_cond_init(&g->tpcond);
  return g;
}

gr_g *gr_g_new(gr_runtime *rt) {
  gr_g *g = g_alloc(rt);
  if (g) g_link(rt, g);
  return g;
}

void gr_g_register_foreign(gr_runtime *rt, lua_State *L, gr_g *g) {
  (void)rt;
  lua_pushlightuserdata(L, g);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &gkey);
}

/* Free a G's C side (its state is closed, or is the host's). */
void gr_g_free(gr_g *g) {
  gr_msg_free(&g->start);
  gr_msg_free(&g->w.msg);
  gr_lock_destroy(&g->tplock);
  gr_cond_destroy(&g->tpcond);
  free(g);
}

/* ------------------------------------------------------------ the state */

/* Every goroutine's allocator: counts its bytes, enforces the limit. */
static void *state_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  gr_g *g = (gr_g *)ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    g->mem -= old;
    return NULL;
  }
  size_t limit = g->rt->cfg.memlimit;
  if (limit && nsize > old && g->mem + (nsize - old) > limit) return NULL;
  void *p = realloc(ptr, nsize);
  if (p) g->mem += nsize - old;
  return p;
}

/* Open a new goroutine's state (runs protected: errors are out of memory). */
static int body(lua_State *L);

static int state_setup(lua_State *L) {
  gr_g *g = (gr_g *)lua_touserdata(L, 1);
  lua_pushlightuserdata(L, g);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &gkey);
  gr_libs_setup(L);                 /* libraries open on first use */
  if (g->rt->cfg.on_state) g->rt->cfg.on_state(g->rt->cfg.ud, L);
  g->co = lua_newthread(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cokey);   /* anchored */
  gr_preempt_arm(g->co);
  lua_pushlightuserdata(g->co, g);
  lua_pushcclosure(g->co, body, 1);
  return 0;
}

/* The base function of every body coroutine: decode the start message
** (function and arguments), then call the function. */
static int body_done(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L);
}

static int body(lua_State *L) {
  gr_g *g = (gr_g *)lua_touserdata(L, lua_upvalueindex(1));
  int n = gr_decode_free(L, &g->start);
  lua_callk(L, n - 1, LUA_MULTRET, 0, body_done);
  return body_done(L, LUA_OK, 0);
}

/*
** Make g's state: its libraries, the host's hook, and the body coroutine
** (anchored in the registry).  Returns 0 if it could not: then g->L is
** NULL (no memory even for a state) or holds the error on its stack.
*/
static int g_makestate(gr_g *g) {
  lua_State *L = lua_newstate(state_alloc, g);
  if (L == NULL) return 0;
  g->L = L;
  lua_pushcfunction(L, state_setup);
  lua_pushlightuserdata(L, g);
  return lua_pcall(L, 1, 0, 0) == LUA_OK;
}

/* ------------------------------------------------------- ending a G */

/* The error object at the top of L as text, as lua5.4 prints it. */
static const char *error_text(lua_State *L) {
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) return lua_tostring(L, -1);
  if (luaL_callmeta(L, -1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return lua_tostring(L, -1);
  return lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
}

static void g_finish(gr_g *g, const char *err) {
  gr_done *done = g->done;
  char *copy = err ? strdup(err) : NULL;
  atomic_store(&g->status, GR_G_DEAD);
  g_unlink(g->rt, g);
  if (g->L) lua_close(g->L);   /* may run __gc: no runtime lock is held here */
  gr_g_free(g);
  if (done) {
    gr_lock_acquire(&done->lock);
    done->err = copy;
    done->finished = 1;
    gr_cond_signal(&done->cond);
    gr_lock_release(&done->lock);
  }
}

static void g_exit(gr_g *g) { g_finish(g, NULL); }

/*
** An error no one caught: Go's panic.  It goes to the host waiting for this
** G (gr_dostring) or to the host's error handler, and the G ends; with
** neither, it is printed and ends the program.
*/
static void g_fail(gr_g *g) {
  lua_State *L = g->L;
  if (g->co) lua_xmove(g->co, L, 1);   /* calls are not allowed on a dead coroutine */
  const char *msg = error_text(L);
  luaL_traceback(L, g->co ? g->co : L, msg, 0);
  const char *report = lua_tostring(L, -1);
  gr_runtime *rt = g->rt;
  if (g->done) {
    g_finish(g, report);
  } else if (rt->cfg.on_error) {
    rt->cfg.on_error(rt->cfg.ud, (long long)g->id, report);
    g_finish(g, NULL);
  } else {
    fflush(stdout);
    fprintf(stderr, "goroutine %lld [error]:\n%s\n", (long long)g->id, report);
    if (rt->cfg.chaos_seed)
      fprintf(stderr, "goroutine-lua: chaos seed %u\n", rt->cfg.chaos_seed);
    fflush(stderr);
    exit(1);
  }
}

void gr_sched_afteryield(gr_m *m, gr_g *g);

/* The main goroutine's gr_pcall body ended: hand back to the host thread,
** which takes the results (or the error) from g->co.  After the signal
** this worker touches neither g nor its state again. */
static void main_body_done(gr_g *g, int status) {
  gr_done *done = g->done;
  if (status == LUA_YIELD) lua_pushliteral(g->co, "attempt to yield from outside a coroutine");
  gr_lock_acquire(&done->lock);
  done->status = status;
  done->finished = 1;
  gr_cond_signal(&done->cond);
  gr_lock_release(&done->lock);
}

void gr_g_execute(gr_m *m, gr_g *g) {
  int nres = 0;
  atomic_store(&m->curg, g);
  atomic_fetch_add_explicit(&m->execs, 1, memory_order_relaxed);
  atomic_store_explicit(&g->status, GR_G_RUNNING, memory_order_relaxed);
  if (!g->started) {
    g->started = 1;
    if (g->L == NULL && !g_makestate(g)) {
      g->co = NULL;                      /* the error is on g->L's stack */
      if (g->L == NULL && (g->L = luaL_newstate()) != NULL)
        lua_pushliteral(g->L, "not enough memory");
      if (g->L) { g_fail(g); return; }
      fprintf(stderr, "goroutine %lld [error]:\nnot enough memory\n", (long long)g->id);
      exit(1);
    }
  }
  g->yieldwhy = GR_YIELD_NONE;
  int nargs = g->nargs;
  g->nargs = 0;
  int status = lua_resume(g->co, NULL, nargs, &nres);
  atomic_store(&m->curg, NULL);
  if (status != LUA_OK && status != LUA_YIELD && atomic_load(&g->rt->stopping))
    return;   /* stopped during shutdown: runtime_close frees it */
  if (g == g->rt->main && (status != LUA_YIELD || g->yieldwhy == GR_YIELD_NONE)) {
    main_body_done(g, status == LUA_YIELD ? LUA_ERRRUN : status);
    return;
  }
  if (status == LUA_YIELD) {
    if (g->yieldwhy == GR_YIELD_NONE) {   /* coroutine.yield() in the body */
      lua_pushliteral(g->co, "attempt to yield from outside a coroutine");
      g_fail(g);
      return;
    }
    gr_sched_afteryield(m, g);
  } else if (status == LUA_OK) {
    g_exit(g);
  } else {
    g_fail(g);
  }
}

/* ------------------------------------------------------------ spawning */

int64_t gr_spawn(gr_runtime *rt, gr_msg *start, gr_done *done) {
  gr_g *g = gr_g_new(rt);
  if (g == NULL) { gr_msg_free(start); return -1; }
  g->done = done;
  g->start = *start;
  *start = (gr_msg)GR_MSG_EMPTY;
  int64_t id = g->id;
  gr_runqput(rt, g, 0);
  return id;
}

/* ----------------------------------------------------- the main body */

int gr_pcall(lua_State *L, int nargs, int nresults) {
  gr_g *g = gr_getg(L);
  gr_runtime *rt = g->rt;
  if (g != rt->main || atomic_load(&rt->stopping))
    return lua_pcall(L, nargs, nresults, 0);
  int base = lua_gettop(L) - nargs;          /* the function */
  lua_State *co = lua_newthread(L);
  lua_insert(L, base);                       /* anchored below the call */
  lua_xmove(L, co, nargs + 1);
  gr_done done;
  memset(&done, 0, sizeof done);
  gr_lock_init(&done.lock);
  gr_cond_init(&done.cond);
  gr_preempt_arm(co);
  atomic_store(&rt->interrupt, 0);
  g->co = co;
  g->nargs = nargs;
  g->done = &done;
  g->foreign = 0;                            /* now a G like the others */
  gr_runqput(rt, g, 0);
  gr_lock_acquire(&done.lock);
  while (!done.finished) gr_cond_wait(&done.cond, &done.lock);
  gr_lock_release(&done.lock);
  gr_cond_destroy(&done.cond);
  gr_lock_destroy(&done.lock);
  g->foreign = 1;                            /* back on the host's thread */
  g->done = NULL;
  g->co = NULL;
  atomic_store(&g->status, GR_G_RUNNING);
  int status = done.status;
  if (status == LUA_OK) {
    int n = lua_gettop(co);
    if (nresults != LUA_MULTRET) {
      lua_settop(co, nresults);
      n = nresults;
    }
    lua_xmove(co, L, n);
  } else {                                   /* message + traceback, as lua.c */
    lua_xmove(co, L, 1);
    int errpos = lua_gettop(L);
    int t = lua_type(L, errpos);
    if (t != LUA_TSTRING && t != LUA_TNUMBER &&
        luaL_callmeta(L, errpos, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      /* an object that describes itself: its text, no traceback */
    } else {
      const char *msg = error_text(L);
      luaL_traceback(L, co, msg, 0);
      lua_pushliteral(L, "\n\t[C]: in ?");    /* the caller, gr_pcall */
      lua_concat(L, 2);
    }
    lua_replace(L, errpos);
    lua_settop(L, errpos);
  }
  lua_remove(L, base);                       /* the thread */
  return status;
}

void gr_interrupt(gr_runtime *rt) {
  atomic_store(&rt->interrupt, 1);
}
