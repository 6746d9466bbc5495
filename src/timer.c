/*
** timer.c — the timer heap: goroutine.sleep, goroutine.after, goroutine.tick.
**
** One binary min-heap of deadlines per runtime, served by one timer
** thread that sleeps until the earliest deadline (never polls) and readies
** the goroutines whose time has come.  No thread per timer: 100,000
** sleeping goroutines cost 100,000 heap entries.
**
** Invariants: the heap is ordered by (when, seq), seq making equal
** deadlines first-in first-out; a G is in the heap at most once, while it
** is parked in sleep; the timer lock is released only after that G has
** yielded (gr_park's unlock), so it cannot be readied while running.  A
** channel timer (after, tick) holds a reference to its channel; a ticker
** stops when its channel is closed or when the timer's reference is the
** last one (nobody can receive its ticks any more).  Channels are sent to
** with the timer lock released.
*/
#include <stdlib.h>
#include <lauxlib.h>
#include "runtime.h"

typedef struct gr_timer {
  double when;
  uint64_t seq;
  gr_g *g;             /* sleep: the G to ready */
  gr_chan *c;          /* after, tick: the channel to send now() to */
  double period;       /* tick: seconds between sends; 0 otherwise */
} gr_timer;

typedef struct gr_timers {
  gr_lock lock;
  gr_cond cond;        /* the timer thread waits here */
  gr_timer *heap;
  size_t n, size;
  uint64_t seq;
  int stop;
  gr_thread thread;
} gr_timers;

static int before(const gr_timer *a, const gr_timer *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void sift_up(gr_timers *t, size_t i) {
  gr_timer x = t->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&x, &t->heap[parent])) break;
    t->heap[i] = t->heap[parent];
    i = parent;
  }
  t->heap[i] = x;
}

static void sift_down(gr_timers *t, size_t i) {
  gr_timer x = t->heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= t->n) break;
    if (child + 1 < t->n && before(&t->heap[child + 1], &t->heap[child])) child++;
    if (!before(&t->heap[child], &x)) break;
    t->heap[i] = t->heap[child];
    i = child;
  }
  t->heap[i] = x;
}

static gr_timer heap_pop(gr_timers *t) {
  gr_timer top = t->heap[0];
  t->heap[0] = t->heap[--t->n];
  if (t->n > 0) sift_down(t, 0);
  return top;
}

#define READY_BATCH 64

/* Drop the channel timers whose channel nobody else holds any more: no one
** can ever receive from it (an after() that lost its select, then was
** closed or collected).  Without this such a timer would keep its channel
** until its deadline: a loop of selects with after(60) timeouts would hold
** a minute's worth of channels (Go's time.After before Go 1.23).  The
** reference count cannot rise again once only the timer holds it. */
static void heap_sweep(gr_timers *t) {
  size_t kept = 0;
  for (size_t i = 0; i < t->n; i++) {
    gr_timer x = t->heap[i];
    if (x.c && gr_chan_refs(x.c) == 1) {
      gr_chan_release(x.c);       /* frees only the channel and its ticks */
      continue;
    }
    t->heap[kept++] = x;
  }
  if (kept == t->n) return;
  t->n = kept;
  for (size_t i = kept / 2; i-- > 0;) sift_down(t, i);   /* heapify */
}

/* Push x, making room first unless 'room' more entries fit: a heap short
** of room is swept, and grows unless that freed half of it, so at least
** half the heap's size in pushes comes between two O(n) sweeps.  A new
** timer asks for READY_BATCH + 1, so that the heap always has room for the
** tickers the timer thread took out to fire: putting them back never
** needs memory, and a ticker never stops for want of it. */
static int heap_push(gr_timers *t, gr_timer x, size_t room) {
  if (t->n + room > t->size) {
    heap_sweep(t);
    if (t->n + room > t->size || t->n > t->size / 2) {
      size_t size = t->size ? 2 * t->size : 2 * READY_BATCH;
      gr_timer *heap = (gr_timer *)gr_realloc(t->heap, size * sizeof *heap);
      if (heap == NULL) return 0;
      t->heap = heap;
      t->size = size;
    }
  }
  x.seq = t->seq++;
  t->heap[t->n] = x;
  sift_up(t, t->n++);
  return 1;
}

/* A channel timer fired (timer lock not held): send now(), and say
** whether a ticker goes on. */
static int fire_channel(gr_timer *x, double now) {
  gr_msg m;
  gr_msg_number(now, &m);
  int r = gr_chan_offer(x->c, &m);      /* a full buffer drops the tick */
  if (r != 1) gr_msg_free(&m);
  if (x->period > 0 && r >= 0 && gr_chan_refs(x->c) > 1) {
    x->when += x->period;
    if (x->when < now) x->when = now + x->period;   /* skip missed ticks */
    return 1;
  }
  gr_chan_release(x->c);
  return 0;
}

static void *timer_main(void *arg) {
  gr_timers *t = (gr_timers *)arg;
  gr_timer due[READY_BATCH];
  gr_lock_acquire(&t->lock);
  while (!t->stop) {
    if (t->n == 0) {
      gr_cond_wait(&t->cond, &t->lock);
      continue;
    }
    double now = gr_now();
    if (t->heap[0].when > now) {
      gr_cond_waituntil(&t->cond, &t->lock, t->heap[0].when);
      continue;
    }
    int ndue = 0;
    while (ndue < READY_BATCH && t->n > 0 && t->heap[0].when <= now)
      due[ndue++] = heap_pop(t);
    gr_lock_release(&t->lock);
    int again = 0;
    for (int i = 0; i < ndue; i++) {
      if (due[i].g) gr_ready(due[i].g);
      else if (fire_channel(&due[i], now)) due[again++] = due[i];
    }
    gr_lock_acquire(&t->lock);
    for (int i = 0; i < again; i++)
      if (!heap_push(t, due[i], 1)) gr_chan_release(due[i].c);   /* cannot fail */
  }
  gr_lock_release(&t->lock);
  return NULL;
}

int gr_timers_start(gr_runtime *rt) {
  gr_timers *t = (gr_timers *)gr_calloc(1, sizeof *t);
  if (t == NULL) return 0;
  gr_lock_init(&t->lock);
  gr_cond_init(&t->cond);
  rt->timers = t;
  if (gr_thread_start(&t->thread, timer_main, t) != 0) abort();
  return 1;
}

void gr_timers_stop(gr_runtime *rt) {
  gr_timers *t = rt->timers;
  gr_lock_acquire(&t->lock);
  t->stop = 1;
  gr_cond_signal(&t->cond);
  gr_lock_release(&t->lock);
  gr_thread_join(t->thread);
  for (size_t i = 0; i < t->n; i++)
    if (t->heap[i].c) gr_chan_release(t->heap[i].c);
  gr_cond_destroy(&t->cond);
  gr_lock_destroy(&t->lock);
  gr_free(t->heap);
  gr_free(t);
  rt->timers = NULL;
}

/* gr_park's cancel for a sleep: take g's timer out, unless it fired. */
static int sleep_cancel(gr_g *g, void *lock) {
  gr_timers *t = g->rt->timers;
  int found = 0;
  gr_lock_acquire((gr_lock *)lock);
  for (size_t i = 0; i < t->n; i++) {
    if (t->heap[i].g != g) continue;
    t->heap[i] = t->heap[--t->n];
    if (i < t->n) {
      sift_down(t, i);
      sift_up(t, i);
    }
    found = 1;
    break;
  }
  gr_lock_release((gr_lock *)lock);
  return found;
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

int gr_sleep(lua_State *L, double seconds) {
  if (!(seconds > 0)) return 0;          /* as time.Sleep(0): no wait */
  gr_g *g = gr_getg(L);
  gr_timers *t = g->rt->timers;
  double when = gr_now() + seconds;
  gr_lock_acquire(&t->lock);
  if (!heap_push(t, (gr_timer){when, 0, g, NULL, 0}, READY_BATCH + 1)) {
    gr_lock_release(&t->lock);
    return luaL_error(L, "not enough memory");
  }
  if (t->heap[0].g == g) gr_cond_signal(&t->cond);   /* new earliest */
  return gr_park(L, "sleep", gr_unlock_lock, sleep_cancel, &t->lock, sleep_k, 0);
}

/* goroutine.after(s) and goroutine.tick(s): a channel of capacity 1 that
** the timer thread sends goroutine.now() to. */
static int channel_timer(lua_State *L, double delay, double period) {
  gr_runtime *rt = gr_getg(L)->rt;
  gr_timers *t = rt->timers;
  gr_chan_pushnew(L);
  gr_chan *c = gr_chan_new(rt, 1);
  if (c == NULL) return luaL_error(L, "not enough memory");
  gr_chan_adopt(L, c);                   /* the handle's reference */
  gr_chan_retain(c);                     /* the timer's */
  gr_lock_acquire(&t->lock);
  double when = gr_now() + (delay > 0 ? delay : 0);
  int ok = heap_push(t, (gr_timer){when, 0, NULL, c, period}, READY_BATCH + 1);
  if (ok && t->heap[0].c == c) gr_cond_signal(&t->cond);
  gr_lock_release(&t->lock);
  if (!ok) {
    gr_chan_release(c);
    return luaL_error(L, "not enough memory");
  }
  return 1;
}

int gr_after(lua_State *L, double seconds) {
  return channel_timer(L, seconds, 0);
}

int gr_tick(lua_State *L, double seconds) {
  if (!(seconds > 0)) return luaL_error(L, "non-positive interval for goroutine.tick");
  return channel_timer(L, seconds, seconds);
}

size_t gr_timers_pending(gr_runtime *rt) {
  gr_timers *t = rt->timers;
  gr_lock_acquire(&t->lock);
  size_t n = t->n;
  gr_lock_release(&t->lock);
  return n;
}
