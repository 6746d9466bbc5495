/*
** pool.c — goroutine states kept for reuse.
**
** Making a Lua state (lua_newstate: its string table, the names of the
** metamethods and reserved words, the registry) and closing it again are
** about half the cost of a goroutine that does little.  So a goroutine that
** ends normally leaves its state here, reset, for a later goroutine, as Go
** keeps dead Gs and their stacks.
**
** Reset gives the next goroutine what a new state would: a new, empty
** globals table (libraries open on first use again, libs.c), a registry
** with nothing but the main thread and those globals (so no loaded module,
** no reference, no handle and no handle metatable of the last goroutine
** survives), no metatables for strings or other basic types, no hook, the
** collector in its default mode; then one full collection, which finalizes
** what the last goroutine left (as lua_close would have).  Nothing the last
** goroutine made is reachable any more.
**
** Invariants:
** - A pooled state has run no code since its reset; its allocator is
**   pooled_alloc over its arena (no G owns it), its stack is empty.
** - A state that ended in an error, whose reset failed, or whose arena grew
**   past POOL_KEEP_BYTES is closed, never pooled.
** - Hosts with an on_state hook get new states only: the hook was promised
**   a new state each time.
*/
#include <stdlib.h>
#include <lauxlib.h>
#include "runtime.h"
#include "alloc.h"
#include "arena.h"

#define POOL_MAX 256             /* states kept, per runtime */
#define POOL_KEEP_BYTES 16384    /* a state whose arena grew past this closes */

typedef struct pooled { lua_State *L; gr_arena *arena; size_t mem; } pooled;

struct gr_pool {
  gr_lock lock;
  atomic_int n;                  /* written under lock; read outside as a hint */
  pooled states[POOL_MAX];
};

/* The allocator of a pooled state: its arena, no G to count for. */
static void *pooled_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  return gr_arena_realloc((gr_arena *)ud, ptr, ptr ? osize : 0, nsize);
}

static int reset(lua_State *L);

/* Push a value of each basic type whose metatable a goroutine could set
** (debug.setmetatable) and remove that metatable. */
static void clear_basic_metatables(lua_State *L) {
  lua_pushnil(L);
  lua_pushboolean(L, 0);
  lua_pushlightuserdata(L, NULL);
  lua_pushinteger(L, 0);
  lua_pushliteral(L, "");
  lua_pushcfunction(L, reset);
  lua_pushthread(L);
  for (int i = 1; i <= 7; i++) {
    lua_pushnil(L);
    lua_setmetatable(L, -1 - i);
  }
  lua_pop(L, 7);
}

/* Run protected, on the state's main thread with an empty stack. */
static int reset(lua_State *L) {
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) == LUA_RIDX_MAINTHREAD)
      continue;
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, LUA_REGISTRYINDEX);   /* clearing a field keeps lua_next going */
  }
  lua_newtable(L);
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  clear_basic_metatables(L);
  lua_sethook(L, NULL, 0, 0);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCINC, 0, LUA_GC_STEPMUL, LUA_GC_STEPSIZE);
  gr_state_gc_reset(L);
  return 0;
}

int gr_pool_put(gr_g *g) {
  gr_runtime *rt = g->rt;
  gr_pool *pool = rt->pool;
  lua_State *L = g->L;
  if (pool == NULL || rt->cfg.on_state ||
      atomic_load_explicit(&pool->n, memory_order_relaxed) >= POOL_MAX)
    return 0;                          /* full: do not reset it for nothing */
  lua_settop(L, 0);
  lua_pushcfunction(L, reset);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK ||
      gr_arena_chunkbytes(g->arena) > POOL_KEEP_BYTES)
    return 0;
  lua_setallocf(L, pooled_alloc, g->arena);
  gr_lock_acquire(&pool->lock);
  int n = atomic_load_explicit(&pool->n, memory_order_relaxed);
  int kept = n < POOL_MAX;
  if (kept) {
    pool->states[n] = (pooled){ L, g->arena, g->mem };
    atomic_store_explicit(&pool->n, n + 1, memory_order_relaxed);
  }
  gr_lock_release(&pool->lock);
  if (!kept) {
    lua_setallocf(L, gr_state_alloc, g);   /* the caller closes it */
    return 0;
  }
  g->L = NULL;
  g->arena = NULL;
  return 1;
}

int gr_pool_get(gr_g *g) {
  gr_pool *pool = g->rt->pool;
  if (pool == NULL || g->rt->cfg.on_state) return 0;
  gr_lock_acquire(&pool->lock);
  pooled s = { NULL, NULL, 0 };
  int n = atomic_load_explicit(&pool->n, memory_order_relaxed);
  if (n > 0) {
    s = pool->states[n - 1];
    atomic_store_explicit(&pool->n, n - 1, memory_order_relaxed);
  }
  gr_lock_release(&pool->lock);
  if (s.L == NULL) return 0;
  g->L = s.L;
  g->arena = s.arena;
  g->mem = s.mem;
  lua_setallocf(s.L, gr_state_alloc, g);
  return 1;
}

void gr_pool_new(gr_runtime *rt) {
  gr_pool *pool = (gr_pool *)gr_calloc(1, sizeof *pool);
  if (pool == NULL) return;            /* runs without reuse */
  gr_lock_init(&pool->lock);
  rt->pool = pool;
}

void gr_pool_free(gr_runtime *rt) {
  gr_pool *pool = rt->pool;
  if (pool == NULL) return;
  for (int i = 0; i < atomic_load(&pool->n); i++) {
    lua_close(pool->states[i].L);
    gr_arena_free(pool->states[i].arena);
  }
  gr_lock_destroy(&pool->lock);
  gr_free(pool);
  rt->pool = NULL;
}
