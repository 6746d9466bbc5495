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
** - Lock order: a channel's lock is taken before any scheduler lock.
**   Messages are decoded (Lua allocation) and freed outside the lock.
*/
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "runtime.h"
#include "obj.h"

typedef struct gr_chan {
  gr_obj obj;
  gr_lock lock;
  uint32_t cap;        /* buffer slots; 0 = unbuffered */
  uint32_t count;      /* buffered messages */
  uint32_t head;       /* index of the oldest buffered message */
  int closed;
  gr_msg *buf;
  gr_waitq recvq;      /* goroutines blocked in recv */
  gr_waitq sendq;      /* goroutines blocked in send, with their message */
} gr_chan;

static const gr_objtype chan_type;

static void chan_destroy(gr_obj *o) {
  gr_chan *c = (gr_chan *)o;
  for (uint32_t i = 0; i < c->count; i++)
    gr_msg_free(&c->buf[(c->head + i) % c->cap]);
  free(c->buf);
  gr_lock_destroy(&c->lock);
  free(c);
}

static gr_chan *checkchan(lua_State *L) {
  return (gr_chan *)gr_obj_check(L, 1, &chan_type);
}

/* Push a received message's value and true; frees the message. */
static int push_received(lua_State *L, gr_msg *m) {
  gr_msg local = *m;
  *m = (gr_msg)GR_MSG_EMPTY;
  gr_decode(L, &local);
  gr_msg_free(&local);
  lua_pushboolean(L, 1);
  return 2;
}

static int push_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushboolean(L, 0);
  return 2;
}

/* ------------------------------------------------------------------ send */

/*
** Deliver *m now if a receiver waits or the buffer has room.  Called with
** c->lock held; returns with it released iff it returns 1 (sent).  Raises
** (lock released, message freed) on a closed channel.
*/
static int send_now(lua_State *L, gr_chan *c, gr_msg *m) {
  if (c->closed) {
    gr_lock_release(&c->lock);
    gr_msg_free(m);
    return luaL_error(L, "send on closed channel");
  }
  gr_waiter *w = gr_waitq_pop(&c->recvq);
  if (w) {                       /* fast path: hand over to a parked receiver */
    w->msg = *m;
    w->ok = 1;
    gr_lock_release(&c->lock);
    gr_ready(w->g);
    return 1;
  }
  if (c->count < c->cap) {
    c->buf[(c->head + c->count) % c->cap] = *m;
    c->count++;
    gr_lock_release(&c->lock);
    return 1;
  }
  return 0;
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  gr_g *g = (gr_g *)ctx;
  (void)status;
  if (!g->w.ok) return luaL_error(L, "send on closed channel");
  return 0;
}

static int chan_send(lua_State *L) {
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
  return gr_park(L, "chan send", gr_unlock_lock, &c->lock, send_k, (lua_KContext)g);
}

static int chan_trysend(lua_State *L) {
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

/*
** Take a message now if one is buffered or a sender waits.  Called with
** c->lock held; returns 1 (lock released, *m filled) if received, -1
** (lock released) if closed and drained, 0 (lock held) if it would block.
*/
static int recv_now(gr_chan *c, gr_msg *m) {
  gr_waiter *w = gr_waitq_pop(&c->sendq);
  if (w) {
    if (c->cap == 0) {           /* unbuffered: straight from the sender */
      *m = w->msg;
    } else {                     /* full buffer: take the head, the sender's
                                    value takes the freed slot at the tail */
      *m = c->buf[c->head];
      c->buf[c->head] = w->msg;
      c->head = (c->head + 1) % c->cap;
    }
    w->msg = (gr_msg)GR_MSG_EMPTY;
    w->ok = 1;
    gr_lock_release(&c->lock);
    gr_ready(w->g);
    return 1;
  }
  if (c->count > 0) {
    *m = c->buf[c->head];
    c->head = (c->head + 1) % c->cap;
    c->count--;
    gr_lock_release(&c->lock);
    return 1;
  }
  if (c->closed) {
    gr_lock_release(&c->lock);
    return -1;
  }
  return 0;
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  gr_g *g = (gr_g *)ctx;
  (void)status;
  if (!g->w.ok) return push_closed(L);
  return push_received(L, &g->w.msg);
}

static int chan_recv(lua_State *L) {
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
  return gr_park(L, "chan receive", gr_unlock_lock, &c->lock, recv_k, (lua_KContext)g);
}

static int chan_tryrecv(lua_State *L) {
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
  return gr_park(L, "chan receive", gr_unlock_lock, &c->lock, range_k, (lua_KContext)g);
}

static int chan_range(lua_State *L) {
  checkchan(L);
  lua_settop(L, 1);
  lua_pushcclosure(L, range_next, 1);
  return 1;
}

/* ----------------------------------------------------------------- close */

static int chan_close(lua_State *L) {
  gr_chan *c = checkchan(L);
  gr_waitq woken = {NULL, NULL};
  gr_waiter *w;
  gr_lock_acquire(&c->lock);
  if (c->closed) {
    gr_lock_release(&c->lock);
    return luaL_error(L, "close of closed channel");
  }
  c->closed = 1;
  while ((w = gr_waitq_pop(&c->recvq)) != NULL) { w->ok = 0; gr_waitq_push(&woken, w); }
  while ((w = gr_waitq_pop(&c->sendq)) != NULL) { w->ok = 0; gr_waitq_push(&woken, w); }
  gr_lock_release(&c->lock);
  /* The woken senders raise 'send on closed channel'; their messages are
  ** theirs to free (gr_msg_free in their continuation's error path). */
  while ((w = gr_waitq_pop(&woken)) != NULL) {
    gr_msg_free(&w->msg);
    gr_ready(w->g);
  }
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
  gr_chan *c = (gr_chan *)calloc(1, sizeof *c);
  if (c && cap > 0 && !(c->buf = (gr_msg *)malloc((size_t)cap * sizeof(gr_msg)))) {
    free(c);
    c = NULL;
  }
  if (c == NULL) return luaL_error(L, "not enough memory");
  gr_obj_init(&c->obj, &chan_type);
  gr_lock_init(&c->lock);
  c->cap = (uint32_t)cap;
  gr_obj_push(L, &c->obj);
  return 1;
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
  "channel", "goroutine.channel", chan_methods, chan_metamethods, chan_destroy
};

void gr_chan_open(lua_State *L) {
  lua_pushcfunction(L, chan_new);
  lua_setfield(L, -2, "chan");
}
