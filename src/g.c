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
#include "arena.h"

/* registry of a host's state: lightuserdata gr_g* (a goroutine's state
** needs none: its allocator's user data is its G). */
static const char gkey = 'g';

gr_g *gr_getg(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) == gr_state_alloc) return (gr_g *)ud;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &gkey);
  gr_g *g = (gr_g *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (g == NULL) luaL_error(L, "goroutine: this Lua state has no runtime");
  return g;
}

int gr_hasruntime(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) == gr_state_alloc) return 1;
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
  gr_g *g = (gr_g *)gr_calloc(1, sizeof *g);
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
  gr_arena_free(g->arena);             /* its state is closed */
  gr_free(g);
}

/* ------------------------------------------------------------ the state */

/* Every goroutine's allocator: counts its bytes, enforces the limit; the
** blocks come from the G's arena (arena.c).  Only growing may fail: Lua
** relies on a block that shrinks staying put. */
void *gr_state_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  gr_g *g = (gr_g *)ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    gr_arena_realloc(g->arena, ptr, old, 0);
    g->mem -= old;
    return NULL;
  }
  if (nsize > old && !g->closing) {
    size_t limit = g->rt->cfg.memlimit;
    if (limit && !g->unlimited && g->mem + (nsize - old) > limit) return NULL;
    if (gr_fault_hit()) return NULL;
  }
  void *p = gr_arena_realloc(g->arena, ptr, old, nsize);
  if (p) g->mem += nsize - old;
  return p;
}

/* Open a new goroutine's state (runs protected: errors are out of memory). */
static int body(lua_State *L);

/* Returns the body coroutine, which stays on the state's own stack (its
** anchor: the main thread runs nothing else once this is done). */
static int state_setup(lua_State *L) {
  gr_g *g = (gr_g *)lua_touserdata(L, 1);
  gr_libs_setup(L);                 /* libraries open on first use */
  if (g->rt->cfg.on_state) g->rt->cfg.on_state(g->rt->cfg.ud, L);
  g->co = lua_newthread(L);
  gr_preempt_arm(g->co);
  lua_pushlightuserdata(g->co, g);
  lua_pushcclosure(g->co, body, 1);
  return 1;
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
** (anchored on the state's stack).  Returns 0 if it could not: then g->L is
** NULL (no memory even for a state) or holds the error on its stack.
*/
/*
** A new state's collector owes a debt from its first byte, so it would run
** a whole first cycle while the goroutine is still being set up (about a
** fifth of a spawn).  Instead: one collection of the bare state, which
** costs little, with a pause that lets the state grow to about
** FIRST_GC_PAUSE percent of it (some 16 KB) before the next; then Lua's
** usual pause (LUAI_GCPAUSE) from that cycle on.  Most goroutines finish,
** or park, before their collector ever runs.
*/
#define FIRST_GC_PAUSE 300

void gr_state_gc_reset(lua_State *L) {
  lua_gc(L, LUA_GCINC, FIRST_GC_PAUSE, 0, 0);
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCINC, LUA_GC_PAUSE, 0, 0);
}

static int g_makestate(gr_g *g) {
  lua_State *L;
  if (gr_pool_get(g)) {                /* a reset state (pool.c) */
    L = g->L;
  } else {
    if ((g->arena = gr_arena_new()) == NULL) return 0;
    if ((L = lua_newstate(gr_state_alloc, g)) == NULL) return 0;
    g->L = L;
    gr_state_gc_reset(L);
  }
  lua_pushcfunction(L, state_setup);
  lua_pushlightuserdata(L, g);
  return lua_pcall(L, 1, 1, 0) == LUA_OK;
}

/* ------------------------------------------------------- ending a G */

/* Calls the error object's __tostring (protected by meta_text). */
static int call_tostring(lua_State *L) {
  luaL_callmeta(L, 1, "__tostring");
  return 1;
}

/* If the value at idx has a __tostring that gives a string, push that
** string and return 1; else push nothing and return 0.  Error reports are
** made where nothing catches an error (g_fail on a worker), so the
** object's own __tostring runs protected: one that raises is ignored. */
static int meta_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL) return 0;
  lua_pop(L, 1);
  lua_pushcfunction(L, call_tostring);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) return 1;
  lua_pop(L, 1);
  return 0;
}

/* The error object at the top of L as text, as lua5.4 prints it. */
static const char *error_text(lua_State *L) {
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) return lua_tostring(L, -1);
  if (meta_text(L, -1)) return lua_tostring(L, -1);
  return lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
}

/* The G ended (with err for its host, if it failed): its state goes back
** to the pool when the body returned (reuse), else it is closed. */
static void g_finish(gr_g *g, const char *err, int reuse) {
  gr_done *done = g->done;
  char *copy = err ? gr_strdup(err) : NULL;
  atomic_store(&g->status, GR_G_DEAD);
  g_unlink(g->rt, g);
  /* Both may run __gc: no runtime lock is held here.  Neither may fail
  ** for memory (the limit, or an injected fault): a finalizer that Lua
  ** cannot call for want of memory is dropped, and a handle's reference
  ** with it. */
  g->closing = 1;
  if (g->L && !(reuse && gr_pool_put(g))) lua_close(g->L);
  gr_g_free(g);
  if (done) {
    gr_lock_acquire(&done->lock);
    done->err = copy;
    done->failed = err != NULL;
    done->finished = 1;
    gr_cond_signal(&done->cond);
    gr_lock_release(&done->lock);
  }
}

static void g_exit(gr_g *g) { g_finish(g, NULL, 1); }

static void g_report(gr_g *g, const char *report);

/* The first mistake at a goroutine: using a global of the state that
** started it.  Lua names it in the message ("attempt to index a nil value
** (global 'ch')"); the report adds a line that says why it is nil. */
static void push_global_hint(lua_State *L, const char *msg) {
  static const char mark[] = "a nil value (global '";
  const char *name = msg ? strstr(msg, mark) : NULL;
  if (name == NULL) return;
  name += sizeof mark - 1;
  const char *end = strchr(name, '\'');
  if (end == NULL) return;
  lua_pushfstring(L, "\nnote: '%s' is nil here because globals are not shared between "
                  "goroutines: pass it to go() as an argument, or capture it in a local",
                  lua_pushlstring(L, name, (size_t)(end - name)));
  lua_remove(L, -2);
  lua_concat(L, 2);
}

/* The report of the error object at 2: its text and the traceback of the
** thread at 1 (NULL: this one); 3: whether a global's nil is explained. */
static int make_report(lua_State *L) {
  lua_State *co = (lua_State *)lua_touserdata(L, 1);
  int hint = lua_toboolean(L, 3);
  lua_settop(L, 2);
  const char *msg = error_text(L);
  luaL_traceback(L, co ? co : L, msg, 0);
  if (hint) push_global_hint(L, msg);
  return 1;
}

/*
** An error no one caught: Go's panic.  It goes to the host waiting for this
** G (gr_dostring) or to the host's error handler, and the G ends; with
** neither, it is printed and ends the program.  The report is made past
** the memory limit (the error is often that limit, and the memory is still
** held by the dead body) and protected: with no memory at all, the error's
** own text, if it is a string, is all that is reported.
*/
static void g_fail(gr_g *g) {
  lua_State *L = g->L;
  if (g->co) lua_xmove(g->co, L, 1);   /* calls are not allowed on a dead coroutine */
  g->unlimited = 1;
  int err = lua_gettop(L);
  lua_pushcfunction(L, make_report);
  lua_pushlightuserdata(L, g->co);
  lua_pushvalue(L, err);
  lua_pushboolean(L, g != g->rt->main);
  const char *report = lua_pcall(L, 3, 1, 0) == LUA_OK ? lua_tostring(L, -1) : NULL;
  if (report == NULL) report = lua_type(L, err) == LUA_TSTRING ? lua_tostring(L, err)
                                                              : "not enough memory";
  g_report(g, report);
}

/* Send g's error report where it goes, and end g (or the program). */
static void g_report(gr_g *g, const char *report) {
  gr_runtime *rt = g->rt;
  if (g->done) {
    g_finish(g, report, 0);
  } else if (rt->cfg.on_error) {
    rt->cfg.on_error(rt->cfg.ud, (long long)g->id, report);
    g_finish(g, NULL, 0);
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
      atomic_store(&m->curg, NULL);      /* g ends here: sysmon must not see it */
      g->co = NULL;
      if (g->L) g_fail(g);               /* the error is on g->L's stack */
      else g_report(g, "not enough memory");   /* no state at all */
      return;
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

/* The host opened the main state's libraries itself: once, let its
** coroutine.resume/wrap keep g->running, as a goroutine's do (libs.c). */
static void track_main_coroutines(lua_State *L) {
  static const char trackedkey = 't';
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &trackedkey) == LUA_TNIL) {
    lua_pushboolean(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &trackedkey);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, LUA_COLIBNAME) == LUA_TTABLE)
      gr_libs_track_coroutines(L, -1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

int gr_pcall(lua_State *L, int nargs, int nresults) {
  gr_g *g = gr_getg(L);
  gr_runtime *rt = g->rt;
  if (g != rt->main || atomic_load(&rt->stopping))
    return lua_pcall(L, nargs, nresults, 0);
  track_main_coroutines(L);
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
        meta_text(L, errpos)) {
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

void gr_set_interactive(gr_runtime *rt, int on) {
  atomic_store(&rt->interactive, on != 0);
}
