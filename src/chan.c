/*
** chan.c — channels.
**
** A channel is a refcounted object (obj.h) holding encoded messages
** (codec.h): values never cross as Lua values, only as bytes.
**
** Invariants (checked against runtime/chan.go):
** - At least one of recvq and sendq is empty.
** - Buffered channel: count > 0 implies recvq is empty; count < cap
**   implies sendq is empty.
** - Unbuffered channel: count == 0 always; a value moves straight from a
**   waiting sender's waiter to the receiver, or from the sender to a
**   waiting receiver's waiter.
** - Once closed, a channel is never reopened; sendq is empty (close wakes
**   every sender, which then raise), recvq is empty after close.
** - A waiter is owned by its channel while queued; the goroutine that
**   dequeues it (under the lock) fills in msg/ok and then readies it.
** - A select queues one waiter per case, all sharing one gr_select.  A
**   waker may take a select waiter only after winning the CAS on its
**   sel->done (dequeue), so exactly one case fires; the select's owner
**   removes its other waiters, under each channel's lock, after it wakes.
**   While it enqueues, the owner holds the locks of all its channels,
**   taken in address order (one global order: no lock-order cycle).
** - Lock order: a channel's lock is taken before any scheduler lock.
**   Messages are decoded (Lua allocation) and freed outside the lock.
**
** chan.pml models this wake-up protocol; make model checks it with spin.
** The comments below name the property of the model each part enforces:
** one_delivery (a value is delivered at most once, a select fires one
** case), no_lost_wakeup (a parked G whose operation became possible is
** woken), no_false_deadlock (only a deadlock the runtime reports: every G
** parked on a channel, never stuck on a lock), ready_parked (gr_ready only
** on a parked G, once per park).
*/
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "runtime.h"
#include "chaos.h"
#include "obj.h"

struct gr_chan {
  gr_obj obj;
  gr_runtime *rt;      /* the runtime it was made in */
  gr_lock lock;
  uint32_t cap;        /* buffer slots; 0 = unbuffered */
  uint32_t count;      /* buffered messages */
  uint32_t head;       /* index of the oldest buffered message */
  int closed;
  gr_msg *buf;
  gr_waitq recvq;      /* goroutines blocked in recv */
  gr_waitq sendq;      /* goroutines blocked in send, with their message */
};

static const gr_objtype chan_type;

/* One select call: a waiter per case, the channels to lock in order. */
enum { CASE_NONE, CASE_RECV, CASE_SEND };

typedef struct sel_case {
  gr_chan *c;          /* NULL: a nil channel, never ready */
  int dir;             /* CASE_RECV, CASE_SEND, CASE_NONE */
  gr_waiter w;         /* queued on c while the select blocks */
} sel_case;

struct gr_select {
  atomic_int done;     /* 0 until one case fires (CAS in dequeue) */
  int fired;           /* index of the case that fired */
  int ncases;
  int nlocks;
  gr_chan **locks;     /* distinct channels, in address order */
  sel_case cases[];
};

static void chan_destroy(gr_obj *o) {
  gr_chan *c = (gr_chan *)o;
  for (uint32_t i = 0; i < c->count; i++)
    gr_msg_free(&c->buf[(c->head + i) % c->cap]);
  gr_free(c->buf);
  gr_lock_destroy(&c->lock);
  gr_free(c);
}

static gr_chan *checkchan(lua_State *L) {
  return (gr_chan *)gr_obj_check(L, 1, &chan_type);
}

/* Push a received message's value and true; frees the message. */
static int push_received(lua_State *L, gr_msg *m) {
  gr_decode_free(L, m);            /* freed even if decoding raises */
  lua_pushboolean(L, 1);
  return 2;
}

static int push_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushboolean(L, 0);
  return 2;
}

/* Take the first waiter that may still be woken (under chaos, any one:
** Go promises no order among blocked goroutines); a select waiter counts
** only if this channel wins its select (sel->done). */
static inline __attribute__((always_inline)) gr_waiter *dequeue(gr_waitq *q) {
  gr_waiter *w;
  while ((w = gr_waitq_pick(q)) != NULL) {
    if (w->sel == NULL) return w;
    /* The claim (one_delivery, ready_parked): of the wakers racing for one
    ** select, on its different channels, only the CAS winner writes into
    ** its waiter and readies it.  A loser drops the waiter and tries the
    ** next one (no_lost_wakeup: stopping here would leave a live waiter
    ** behind a stale one). */
    int expected = 0;
    if (atomic_compare_exchange_strong(&w->sel->done, &expected, 1)) {
      w->sel->fired = w->caseindex;
      return w;
    }
  }
  return NULL;
}

/*
** Under c->lock: send *m now if a receiver waits or the buffer has room.
** Returns 1 (m taken; *wake: a receiver to ready after unlocking, or
** NULL), -1 if closed, 0 if it would block.
*/
static int send_locked(gr_chan *c, gr_msg *m, gr_g **wake) {
  *wake = NULL;
  if (c->closed) return -1;
  /* A parked receiver is served before the buffer (no_lost_wakeup: one
  ** queued means count == 0, so the value goes to it, not into a slot). */
  gr_waiter *w = dequeue(&c->recvq);
  if (w) {                       /* fast path: hand over to a parked receiver */
    w->msg = *m;
    w->ok = 1;
    *wake = w->g;
    return 1;
  }
  if (c->count < c->cap) {
    c->buf[(c->head + c->count) % c->cap] = *m;
    c->count++;
    return 1;
  }
  return 0;
}

/*
** Under c->lock: receive now if a value is buffered or a sender waits.
** Returns 1 (*m filled; *wake: a sender to ready, or NULL), -1 if closed
** and drained, 0 if it would block.
*/
static int recv_locked(gr_chan *c, gr_msg *m, gr_g **wake) {
  *wake = NULL;
  gr_waiter *w = dequeue(&c->sendq);
  if (w) {
    if (c->cap == 0) {           /* unbuffered: straight from the sender */
      *m = w->msg;
    } else {                     /* full buffer: take the head, the sender's
                                    value takes the freed slot at the tail
                                    (one_delivery: the woken sender was told
                                    its value is sent; no_lost_wakeup: the
                                    slot it waited for is its own) */
      *m = c->buf[c->head];
      c->buf[c->head] = w->msg;
      c->head = (c->head + 1) % c->cap;
    }
    w->msg = (gr_msg)GR_MSG_EMPTY;
    w->ok = 1;
    *wake = w->g;
    return 1;
  }
  if (c->count > 0) {
    *m = c->buf[c->head];
    c->head = (c->head + 1) % c->cap;
    c->count--;
    return 1;
  }
  return c->closed ? -1 : 0;
}

/* Called with c->lock held; releases it unless it returns 0 (would block).
** Raises, lock released and message freed, on a closed channel. */
static int send_now(lua_State *L, gr_chan *c, gr_msg *m) {
  gr_g *wake;
  int r = send_locked(c, m, &wake);
  if (r == 0) return 0;
  gr_lock_release(&c->lock);
  if (r < 0) {
    gr_msg_free(m);
    return luaL_error(L, "send on closed channel");
  }
  if (wake) gr_ready(wake);
  return 1;
}

/* Called with c->lock held; releases it unless it returns 0. */
static int recv_now(gr_chan *c, gr_msg *m) {
  gr_g *wake;
  int r = recv_locked(c, m, &wake);
  if (r == 0) return 0;
  gr_lock_release(&c->lock);
  if (wake) gr_ready(wake);
  return r;
}

int gr_chan_offer(gr_chan *c, gr_msg *m) {
  gr_g *wake;
  gr_lock_acquire(&c->lock);
  int r = send_locked(c, m, &wake);
  gr_lock_release(&c->lock);
  if (wake) gr_ready(wake);
  return r;
}

/* ------------------------------------------------------------------ send */

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  gr_g *g = (gr_g *)ctx;
  (void)status;
  if (!g->w.ok) return luaL_error(L, "send on closed channel");
  return 0;
}

static int chan_send(lua_State *L) {
  GR_CHAOS_YIELD(L, chan_send);
  gr_chan *c = checkchan(L);
  gr_msg m;
  lua_settop(L, 2);
  gr_encode(L, 2, 1, GR_ENCODE_VALUE, &m);
  gr_lock_acquire(&c->lock);
  if (send_now(L, c, &m)) return 0;
  gr_g *g = gr_getg(L);
  g->w.g = g;
  g->w.msg = m;
  g->w.ok = 0;
  gr_waitq_push(&c->sendq, &g->w);
  /* The lock is released only once the G has stopped (ready_parked); a
  ** waker needs it to find the waiter, so none can ready the G before. */
  return gr_park(L, "chan send", gr_unlock_lock, gr_cancel_waiter, &c->lock, send_k, (lua_KContext)g);
}

static int chan_trysend(lua_State *L) {
  GR_CHAOS_YIELD(L, chan_trysend);
  gr_chan *c = checkchan(L);
  gr_msg m;
  lua_settop(L, 2);
  gr_encode(L, 2, 1, GR_ENCODE_VALUE, &m);
  gr_lock_acquire(&c->lock);
  int sent = send_now(L, c, &m);
  if (!sent) {
    gr_lock_release(&c->lock);
    gr_msg_free(&m);
  }
  lua_pushboolean(L, sent);
  return 1;
}

/* --------------------------------------------------------------- receive */

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  gr_g *g = (gr_g *)ctx;
  (void)status;
  if (!g->w.ok) return push_closed(L);
  return push_received(L, &g->w.msg);
}

static int chan_recv(lua_State *L) {
  GR_CHAOS_YIELD(L, chan_recv);
  gr_chan *c = checkchan(L);
  gr_msg m;
  gr_lock_acquire(&c->lock);
  int r = recv_now(c, &m);
  if (r > 0) return push_received(L, &m);
  if (r < 0) return push_closed(L);
  gr_g *g = gr_getg(L);
  g->w.g = g;
  g->w.msg = (gr_msg)GR_MSG_EMPTY;
  g->w.ok = 0;
  gr_waitq_push(&c->recvq, &g->w);
  /* ready_parked, as in chan_send */
  return gr_park(L, "chan receive", gr_unlock_lock, gr_cancel_waiter, &c->lock, recv_k, (lua_KContext)g);
}

static int chan_tryrecv(lua_State *L) {
  GR_CHAOS_YIELD(L, chan_tryrecv);
  gr_chan *c = checkchan(L);
  gr_msg m;
  gr_lock_acquire(&c->lock);
  int r = recv_now(c, &m);
  if (r > 0) return push_received(L, &m);
  if (r < 0) {
    push_closed(L);
    lua_pushliteral(L, "closed");
    return 3;
  }
  gr_lock_release(&c->lock);
  return push_closed(L);
}

/* for v in ch:range() do ... end */
static int range_k(lua_State *L, int status, lua_KContext ctx) {
  gr_g *g = (gr_g *)ctx;
  (void)status;
  if (!g->w.ok) { lua_pushnil(L); return 1; }
  push_received(L, &g->w.msg);
  lua_pop(L, 1);
  return 1;
}

static int range_next(lua_State *L) {
  GR_CHAOS_YIELD(L, range_next);
  gr_chan *c = (gr_chan *)gr_obj_check(L, lua_upvalueindex(1), &chan_type);
  gr_msg m;
  gr_lock_acquire(&c->lock);
  int r = recv_now(c, &m);
  if (r > 0) { push_received(L, &m); lua_pop(L, 1); return 1; }
  if (r < 0) { lua_pushnil(L); return 1; }
  gr_g *g = gr_getg(L);
  g->w.g = g;
  g->w.msg = (gr_msg)GR_MSG_EMPTY;
  g->w.ok = 0;
  gr_waitq_push(&c->recvq, &g->w);
  return gr_park(L, "chan receive", gr_unlock_lock, gr_cancel_waiter, &c->lock, range_k, (lua_KContext)g);
}

static int chan_range(lua_State *L) {
  checkchan(L);
  lua_settop(L, 1);
  lua_pushcclosure(L, range_next, 1);
  return 1;
}

/* ----------------------------------------------------------------- close */

static int chan_close(lua_State *L) {
  /* Lua has no typed nil channel; ch.close(nil) is the nearest to Go's
  ** close(nilChan), and gets Go's words. */
  if (lua_isnoneornil(L, 1)) return luaL_error(L, "close of nil channel");
  GR_CHAOS_YIELD(L, chan_close);
  if (gr_chan_close(checkchan(L)) == GR_CLOSED)
    return luaL_error(L, "close of closed channel");
  return 0;
}

/* ------------------------------------------------------------ inspection */

static int chan_len(lua_State *L) {
  gr_chan *c = checkchan(L);
  gr_lock_acquire(&c->lock);
  lua_Integer n = c->count;
  gr_lock_release(&c->lock);
  lua_pushinteger(L, n);
  return 1;
}

static int chan_cap(lua_State *L) {
  gr_chan *c = checkchan(L);
  lua_pushinteger(L, c->cap);
  return 1;
}

gr_chan *gr_chan_new(gr_runtime *rt, uint32_t cap) {
  gr_chan *c = (gr_chan *)gr_calloc(1, sizeof *c);
  if (c && cap > 0 && !(c->buf = (gr_msg *)gr_malloc((size_t)cap * sizeof(gr_msg)))) {
    gr_free(c);
    return NULL;
  }
  if (c) {
    gr_obj_init(&c->obj, &chan_type);
    gr_lock_init(&c->lock);
    c->rt = rt;
    c->cap = cap;
  }
  return c;
}

void gr_chan_push(lua_State *L, gr_chan *c) { gr_obj_push(L, &c->obj); }
void gr_chan_pushnew(lua_State *L) { gr_obj_pushnew(L, &chan_type); }
void gr_chan_adopt(lua_State *L, gr_chan *c) { gr_obj_adopt(L, &c->obj); }
gr_runtime *gr_chan_runtime(gr_chan *c) { return c->rt; }
void gr_chan_retain(gr_chan *c) { gr_obj_retain(&c->obj); }
void gr_chan_release(gr_chan *c) { gr_obj_release(&c->obj); }
long gr_chan_refs(gr_chan *c) { return atomic_load(&c->obj.refs); }

/* goroutine.chan([cap]) */
static int chan_new(lua_State *L) {
  lua_Integer cap = 0;
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    luaL_checknumber(L, 1);
    cap = lua_tointegerx(L, 1, &isint);
    if (!isint || cap < 0 || cap > (lua_Integer)(UINT32_MAX / sizeof(gr_msg)))
      return luaL_error(L, "makechan: size out of range");
  }
  gr_obj_pushnew(L, &chan_type);
  gr_chan *c = gr_chan_new(gr_getg(L)->rt, (uint32_t)cap);
  if (c == NULL) return luaL_error(L, "not enough memory");
  gr_obj_adopt(L, &c->obj);
  return 1;
}

/* ========================================================== host threads */

/*
** A host thread is not a goroutine: it waits on a gr_g of its own making
** (host = 1: no deadlock accounting), parked on its condition variable.
** On a timeout it takes its waiter back out of the queue, unless a waker
** dequeued it first: then the operation happened, and it waits for the
** wake-up that is on its way.
*/
static gr_g *host_g(gr_chan *c) {
  gr_g *g = (gr_g *)gr_calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->rt = c->rt;
  g->host = g->foreign = 1;
  gr_lock_init(&g->tplock);
  gr_cond_init(&g->tpcond);
  g->w.g = g;
  return g;
}

static void host_g_free(gr_g *g) {
  gr_msg_free(&g->w.msg);
  gr_lock_destroy(&g->tplock);
  gr_cond_destroy(&g->tpcond);
  gr_free(g);
}

/* Called with c->lock held and g->w queued; returns 1 if a waker took the
** waiter, 0 on timeout (waiter removed).  Releases c->lock. */
static int host_wait(gr_chan *c, gr_g *g, double timeout) {
  atomic_store(&g->threadparked, 1);
  gr_lock_release(&c->lock);
  double deadline = gr_now() + timeout;
  gr_lock_acquire(&g->tplock);
  while (!g->woken) {
    if (timeout < 0) gr_cond_wait(&g->tpcond, &g->tplock);
    else if (!gr_cond_waituntil(&g->tpcond, &g->tplock, deadline)) break;
  }
  int woken = g->woken;
  gr_lock_release(&g->tplock);
  if (woken) return 1;
  gr_lock_acquire(&c->lock);
  int queued = g->w.q != NULL;
  if (queued) gr_waitq_remove(g->w.q, &g->w);
  gr_lock_release(&c->lock);
  if (queued) return 0;
  gr_lock_acquire(&g->tplock);          /* taken: its wake-up is coming */
  while (!g->woken) gr_cond_wait(&g->tpcond, &g->tplock);
  gr_lock_release(&g->tplock);
  return 1;
}

/* A host thread's send (CASE_SEND) or receive (CASE_RECV) of *m.  A value
** received, or one that was not sent, is left in *m for the caller. */
static int host_op(gr_chan *c, int dir, gr_msg *m, double timeout) {
  gr_g *wake;
  if (atomic_load(&c->rt->closed)) return GR_ERROR;   /* after gr_close */
  gr_lock_acquire(&c->lock);
  int r = dir == CASE_SEND ? send_locked(c, m, &wake) : recv_locked(c, m, &wake);
  if (r != 0 || timeout == 0) {
    gr_lock_release(&c->lock);
    if (wake) gr_ready(wake);
    if (r > 0 && dir == CASE_SEND) *m = (gr_msg)GR_MSG_EMPTY;   /* handed over */
    return r > 0 ? GR_OK : r < 0 ? GR_CLOSED : GR_TIMEOUT;
  }
  gr_g *g = host_g(c);
  if (g == NULL) { gr_lock_release(&c->lock); return GR_ERROR; }
  if (dir == CASE_SEND) g->w.msg = *m;
  gr_waitq_push(dir == CASE_SEND ? &c->sendq : &c->recvq, &g->w);
  int taken = host_wait(c, g, timeout);
  int result = !taken ? GR_TIMEOUT : g->w.ok ? GR_OK : GR_CLOSED;
  if (dir == CASE_SEND && result == GR_OK) *m = (gr_msg)GR_MSG_EMPTY;
  else { *m = g->w.msg; g->w.msg = (gr_msg)GR_MSG_EMPTY; }
  host_g_free(g);
  return result;
}

int gr_chan_host_send(gr_chan *c, gr_msg *m, double timeout) {
  return host_op(c, CASE_SEND, m, timeout);
}

int gr_chan_host_recv(gr_chan *c, gr_msg *m, double timeout) {
  return host_op(c, CASE_RECV, m, timeout);
}

/*
** The waiters taken are chained through w->next only: their w->q stays
** NULL, which tells a host thread whose wait times out meanwhile that its
** waiter was taken (host_wait).  Queued on a list here, a timed-out host
** waiter took itself off that list outside any lock shared with us,
** returned GR_TIMEOUT and freed itself before we readied it.
*/
int gr_chan_close(gr_chan *c) {
  gr_waiter *woken = NULL, **tail = &woken, *w;
  if (atomic_load(&c->rt->closed)) return GR_ERROR;   /* after gr_close */
  gr_lock_acquire(&c->lock);
  if (c->closed) {
    gr_lock_release(&c->lock);
    return GR_CLOSED;
  }
  c->closed = 1;
  /* Every waiter goes (no_lost_wakeup: a parked G's op on a closed channel
  ** is always possible), select waiters through the same claim as any
  ** waker (one_delivery). */
  while ((w = dequeue(&c->recvq)) != NULL) { w->ok = 0; *tail = w; tail = &w->next; }
  while ((w = dequeue(&c->sendq)) != NULL) { w->ok = 0; *tail = w; tail = &w->next; }
  gr_lock_release(&c->lock);
  /* Woken goroutine senders raise 'send on closed channel': free their
  ** values (a host sender gets its value back instead).  A host waiter is
  ** freed as soon as it is readied: read next first. */
  while ((w = woken) != NULL) {
    woken = w->next;
    w->next = NULL;
    if (!w->g->host) gr_msg_free(&w->msg);
    gr_ready(w->g);
  }
  return GR_OK;
}

/* ================================================================ select */

static _Thread_local uint64_t sel_rand;

static uint32_t sel_random(void) {
  if (gr_chaos_maybe() && gr_chaos_m != NULL) return gr_chaos_rand(gr_chaos_m);
  if (sel_rand == 0)
    sel_rand = (uint64_t)(uintptr_t)&sel_rand ^ (uint64_t)(gr_now() * 1e9) ^ 0x9E3779B97F4A7C15ull;
  sel_rand ^= sel_rand << 13;
  sel_rand ^= sel_rand >> 7;
  sel_rand ^= sel_rand << 17;
  return (uint32_t)(sel_rand >> 32);
}

/* All of a select's channels, in address order (no_false_deadlock: two
** selects never hold one lock each while waiting for the other's). */
static void sel_lock(gr_select *sel) {
  for (int i = 0; i < sel->nlocks; i++) gr_lock_acquire(&sel->locks[i]->lock);
}

static void sel_unlock(void *arg) {
  gr_select *sel = (gr_select *)arg;
  for (int i = sel->nlocks - 1; i >= 0; i--) gr_lock_release(&sel->locks[i]->lock);
}

/*
** A goroutine parked in a select that will not be woken (the runtime
** stops): take every case's waiter out of its channel's queue, so no queue
** keeps a waiter that lives in the select's userdata past its state.
** 'locked': the caller holds the select's channel locks.
*/
void gr_select_cancel(gr_select *sel, int locked) {
  if (!locked) sel_lock(sel);
  for (int i = 0; i < sel->ncases; i++) {
    sel_case *cs = &sel->cases[i];
    if (cs->c && cs->w.q) gr_waitq_remove(cs->w.q, &cs->w);
  }
  if (!locked) sel_unlock(sel);
  for (int i = 0; i < sel->ncases; i++) gr_msg_free(&sel->cases[i].w.msg);
}

/* gr_park's cancel for a blocked select: claim it as a waker would (the
** CAS on sel->done, one_delivery) and take out every waiter.  The values
** not sent stay in the select's userdata, which frees them. */
static int sel_cancel_park(gr_g *g, void *arg) {
  (void)g;
  gr_select *sel = (gr_select *)arg;
  int expected = 0;
  sel_lock(sel);
  int won = atomic_compare_exchange_strong(&sel->done, &expected, 1);
  if (won)
    for (int i = 0; i < sel->ncases; i++) {
      sel_case *cs = &sel->cases[i];
      if (cs->c && cs->w.q) gr_waitq_remove(cs->w.q, &cs->w);
    }
  sel_unlock(sel);
  return won;
}

/* The select's userdata: values not sent are freed with it. */
static int sel_gc(lua_State *L) {
  gr_select *sel = (gr_select *)lua_touserdata(L, 1);
  for (int i = 0; i < sel->ncases; i++) gr_msg_free(&sel->cases[i].w.msg);
  return 0;
}

static int sel_badcase(lua_State *L, int i, const char *what) {
  return luaL_error(L, "select: case #%d %s", i, what);
}

/* Read case i (at the top of the stack) into cs; encodes a send value. */
static void sel_parse_case(lua_State *L, int i, sel_case *cs) {
  int t = lua_gettop(L);
  if (!lua_istable(L, t)) sel_badcase(L, i, "is not a table");
  int has_recv = 0, has_send = 0, has_value = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      if (strcmp(k, "recv") == 0) { has_recv = 1; continue; }
      if (strcmp(k, "send") == 0) { has_send = 1; continue; }
      if (strcmp(k, "value") == 0) { has_value = 1; continue; }
      lua_pushfstring(L, "has an unknown key '%s'", k);
      sel_badcase(L, i, lua_tostring(L, -1));
    } else if (!(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 1)) {
      sel_badcase(L, i, "has a key other than recv, send, value and [1]");
    }
  }
  if (has_recv && has_send) sel_badcase(L, i, "has both recv and send");
  if (has_value && has_recv) sel_badcase(L, i, "is a receive with a value");
  int h = lua_rawgeti(L, t, 1);
  if (h != LUA_TNIL && h != LUA_TFUNCTION) sel_badcase(L, i, "has a handler that is not a function");
  lua_pop(L, 1);
  cs->dir = has_send || has_value ? CASE_SEND : has_recv ? CASE_RECV : CASE_NONE;
  lua_getfield(L, t, cs->dir == CASE_SEND ? "send" : "recv");
  if (!lua_isnil(L, -1)) {
    gr_obj *o = gr_obj_test(L, -1);
    if (o == NULL || o->type != &chan_type)
      sel_badcase(L, i, lua_pushfstring(L, "has a %s where a channel belongs",
                                        o ? o->type->name : luaL_typename(L, -1)));
    cs->c = (gr_chan *)o;
  }
  lua_pop(L, 1);
  if (cs->c == NULL) cs->dir = CASE_NONE;
  if (cs->dir == CASE_SEND) {
    lua_getfield(L, t, "value");
    gr_encode(L, lua_gettop(L), 1, GR_ENCODE_VALUE, &cs->w.msg);
    lua_pop(L, 1);
  }
}

static int sel_return_k(lua_State *L, int status, lua_KContext base) {
  (void)status;
  return lua_gettop(L) - (int)base;
}

/* Case i fired: recv results (r: 1 value in *m, -1 closed) or a send.
** Calls the handler, or returns the index form. */
static int sel_finish(lua_State *L, int i, int dir, int r, gr_msg *m) {
  int base = 2;                          /* 1: cases, 2: the select userdata */
  lua_settop(L, base);
  lua_rawgeti(L, 1, i + 1);
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
  int has_handler = lua_isfunction(L, -1);
  if (!has_handler) {
    lua_pop(L, 1);
    lua_pushinteger(L, i + 1);
  }
  int nargs = 0;
  if (dir == CASE_RECV) {
    nargs = 2;
    if (r > 0) {
      gr_decode_free(L, m);
      lua_pushboolean(L, 1);
    } else {
      lua_pushnil(L);
      lua_pushboolean(L, 0);
    }
  }
  if (!has_handler) return 1 + nargs;
  lua_callk(L, nargs, LUA_MULTRET, base, sel_return_k);
  return sel_return_k(L, LUA_OK, base);
}

/* The select blocked and case sel->fired woke it.  Its other waiters may
** still be queued (a waker that lost the claim dropped its own): they are
** taken out, under each one's channel lock, before the select's memory
** goes; any waker that meets one first drops it (the claim). */
static int sel_wake_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  gr_select *sel = (gr_select *)ctx;
  gr_getg(L)->sel = NULL;
  int fired = sel->fired;
  for (int i = 0; i < sel->ncases; i++) {
    sel_case *cs = &sel->cases[i];
    if (i == fired || cs->c == NULL) continue;
    gr_lock_acquire(&cs->c->lock);
    if (cs->w.q) gr_waitq_remove(cs->w.q, &cs->w);
    gr_lock_release(&cs->c->lock);
    gr_msg_free(&cs->w.msg);
  }
  sel_case *cs = &sel->cases[fired];
  if (cs->dir == CASE_SEND && !cs->w.ok) {
    gr_msg_free(&cs->w.msg);
    return luaL_error(L, "send on closed channel");
  }
  return sel_finish(L, fired, cs->dir, cs->w.ok ? 1 : -1, &cs->w.msg);
}

static int sel_never_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

/* goroutine.select { {recv = ch, f}, {send = ch, value = v, f}, default = f } */
static int l_select(lua_State *L) {
  GR_CHAOS_YIELD(L, l_select);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int n = (int)lua_rawlen(L, 1);
  int has_default = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "default") == 0)
      has_default = 1;
    else if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
      return luaL_error(L, "select: unknown key '%s' (cases are a list; "
                        "the only other key is 'default')", luaL_tolstring(L, -1, NULL));
  }
  if (has_default) {
    lua_getfield(L, 1, "default");
    if (!lua_isfunction(L, -1) && !(lua_isboolean(L, -1) && lua_toboolean(L, -1)))
      return luaL_error(L, "select: default must be a function or true");
    lua_pop(L, 1);
  }

  size_t size = sizeof(gr_select) + (size_t)n * (sizeof(sel_case) + sizeof(gr_chan *));
  gr_select *sel = (gr_select *)lua_newuserdatauv(L, size, 0);   /* slot 2 */
  memset(sel, 0, size);
  sel->locks = (gr_chan **)(void *)&sel->cases[n];
  if (luaL_newmetatable(L, "goroutine.select")) {
    lua_pushcfunction(L, sel_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, 2);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    sel_parse_case(L, i + 1, &sel->cases[i]);
    sel->ncases = i + 1;
    lua_settop(L, 2);
  }

  /* The distinct channels, in address order: the one global lock order. */
  for (int i = 0; i < n; i++) {
    gr_chan *c = sel->cases[i].c;
    if (c == NULL) continue;
    int j = sel->nlocks;
    while (j > 0 && (uintptr_t)sel->locks[j - 1] > (uintptr_t)c) j--;
    if (j > 0 && sel->locks[j - 1] == c) continue;
    memmove(&sel->locks[j + 1], &sel->locks[j], (size_t)(sel->nlocks - j) * sizeof *sel->locks);
    sel->locks[j] = c;
    sel->nlocks++;
  }

  /* Poll in a random order: the first ready case is a uniform choice. */
  int order[n > 0 ? n : 1];
  for (int i = 0; i < n; i++) {
    int j = (int)(sel_random() % (uint32_t)(i + 1));
    order[i] = order[j];
    order[j] = i;
  }
  sel_lock(sel);
  for (int k = 0; k < n; k++) {
    int i = order[k];
    sel_case *cs = &sel->cases[i];
    gr_g *wake = NULL;
    gr_msg m = GR_MSG_EMPTY;
    int r;
    if (cs->dir == CASE_RECV) r = recv_locked(cs->c, &m, &wake);
    else if (cs->dir == CASE_SEND) r = send_locked(cs->c, &cs->w.msg, &wake);
    else continue;
    if (r == 0) continue;
    sel_unlock(sel);
    if (wake) gr_ready(wake);
    if (cs->dir == CASE_SEND) {
      if (r < 0) return luaL_error(L, "send on closed channel");
      cs->w.msg = (gr_msg)GR_MSG_EMPTY;
    }
    return sel_finish(L, i, cs->dir, r, &m);
  }

  if (has_default) {
    sel_unlock(sel);
    lua_settop(L, 1);
    if (lua_getfield(L, 1, "default") != LUA_TFUNCTION) return 0;
    lua_callk(L, 0, LUA_MULTRET, 1, sel_return_k);
    return sel_return_k(L, LUA_OK, 1);
  }
  gr_g *g = gr_getg(L);
  if (sel->nlocks == 0)       /* no channel at all: block forever, as Go */
    return gr_park(L, "select (no cases)", NULL, gr_cancel_nothing, NULL,
                   sel_never_k, 0);
  /* Queue the waiters in the poll order too: a waker takes the first
  ** waiter of its queue, so where several cases share one channel, the
  ** one queued first would otherwise win every time. */
  for (int k = 0; k < n; k++) {
    int i = order[k];
    sel_case *cs = &sel->cases[i];
    if (cs->dir == CASE_NONE) continue;
    cs->w.g = g;
    cs->w.sel = sel;
    cs->w.caseindex = i;
    cs->w.ok = 0;
    gr_waitq_push(cs->dir == CASE_RECV ? &cs->c->recvq : &cs->c->sendq, &cs->w);
  }
  g->sel = sel;                  /* for gr_park, should the runtime stop */
  /* Every channel stays locked until the G has stopped (ready_parked), and
  ** since nothing was ready under those locks, no waker can have missed
  ** the waiters just queued (no_lost_wakeup). */
  return gr_park(L, "select", sel_unlock, sel_cancel_park, sel, sel_wake_k,
                 (lua_KContext)sel);
}

static const luaL_Reg chan_methods[] = {
  {"send", chan_send},
  {"recv", chan_recv},
  {"trysend", chan_trysend},
  {"tryrecv", chan_tryrecv},
  {"close", chan_close},
  {"range", chan_range},
  {"len", chan_len},
  {"cap", chan_cap},
  {NULL, NULL}
};

static const luaL_Reg chan_metamethods[] = {
  {"__len", chan_len},
  {NULL, NULL}
};

static const gr_objtype chan_type = {
  "channel", chan_methods, chan_metamethods, chan_destroy
};

void gr_chan_open(lua_State *L) {
  lua_pushcfunction(L, chan_new);
  lua_setfield(L, -2, "chan");
  lua_pushcfunction(L, l_select);
  lua_setfield(L, -2, "select");
}
