/*
** chaos.c — chaos scheduling's random streams, seeds, and the two hooks
** that are functions (chaos.h says what chaos perturbs and why).
*/
#include <stdlib.h>
#include <lauxlib.h>
#include "chaos.h"

#define YIELD_ONE_IN 8     /* chance of a yield before an operation */
#define PICK_WINDOW 16     /* a waiter is drawn from the first this many */

_Thread_local gr_m *gr_chaos_m;
atomic_int gr_chaos_used;

int gr_chaos_parse(const char *s, unsigned *seed) {
  unsigned long long n = 0;
  if (s == NULL || *s == '\0') return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    n = n * 10 + (unsigned)(*s - '0');
    if (n > 0xFFFFFFFFull) return 0;
  }
  *seed = (unsigned)n;
  return 1;
}

unsigned gr_chaos_env(void) {
  unsigned seed;
  return gr_chaos_parse(getenv("GOROUTINE_CHAOS"), &seed) ? seed : 0;
}

/* splitmix64: spreads seed and index over the whole state, so that
** neighbouring seeds and workers get unrelated streams. */
static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void gr_chaos_seed_m(gr_m *m, unsigned seed, int index) {
  if (seed == 0) { m->chaos = 0; return; }
  atomic_store_explicit(&gr_chaos_used, 1, memory_order_relaxed);
  m->chaos = splitmix64(((uint64_t)seed << 32) ^ (uint64_t)(unsigned)index) | 1;
  m->rand = splitmix64(m->chaos) | 1;   /* steal order, reproducible too */
}

gr_waiter *gr_chaos_waitq_take(gr_waitq *q) {
  gr_m *m = gr_chaos_m;
  gr_waiter *w = q->head;
  if (m == NULL || w == NULL) return gr_waitq_pop(q);
  uint32_t n = 0;
  for (gr_waiter *x = w; x && n < PICK_WINDOW; x = x->next) n++;
  for (uint32_t i = gr_chaos_rand(m) % n; i > 0; i--) w = w->next;
  gr_waitq_remove(q, w);
  return w;
}

/* The operation starts over: its arguments are still on the stack. */
static int run_again(lua_State *L, int status, lua_KContext op) {
  (void)status;
  return ((lua_CFunction)op)(L);
}

void gr_chaos_yield(lua_State *L, lua_CFunction op) {
  gr_m *m = gr_chaos_m;
  if (m == NULL || !gr_chaos_one_in(m, YIELD_ONE_IN) || !lua_isyieldable(L)) return;
  gr_g *g = gr_getg(L);
  if (L != g->co) return;     /* a coroutine of the goroutine's own */
  g->yieldwhy = GR_YIELD_CHAOS;
  lua_yieldk(L, 0, (lua_KContext)op, run_again);
}
