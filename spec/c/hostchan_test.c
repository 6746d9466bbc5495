/*
** hostchan_test.c — channels from host threads: gr_chan_make, send and
** receive of every gr_value type (strings with zero bytes, channels),
** blocking, non-blocking and timed operations from several pthreads at once
** (exact sums: nothing lost, nothing twice), close, whole Lua values through
** a host lua_State (gr_chan_sendlua/recvlua), values that cannot cross,
** channels handed to Lua (gr_chan_push, gr_go arguments) and taken back
** (gr_chan_get).
*/
#include <float.h>
#include <limits.h>
#include <math.h>
#include <lauxlib.h>
#include <lualib.h>
#include "ctest.h"

static gr_runtime *rt;     /* one runtime for every test here */

/* ------------------------------------------------------------- making */

static void make_buffered_and_unbuffered(void) {
  gr_chan *u = gr_chan_make(rt, 0);
  gr_chan *b = gr_chan_make(rt, 3);
  CHECK(u != NULL && b != NULL);
  gr_value one = ct_int(1);
  CHECK(gr_chan_send(u, &one, 0) == GR_TIMEOUT);     /* no receiver */
  for (int i = 0; i < 3; i++) CHECK(gr_chan_send(b, &one, 0) == GR_OK);
  CHECK(gr_chan_send(b, &one, 0) == GR_TIMEOUT);     /* full */
  gr_chan_unref(u);
  gr_chan_unref(b);                                  /* with 3 values in it */
  CHECK(gr_chan_make(rt, (size_t)1 << 62) == NULL);  /* no such capacity */
}

/* ---------------------------------------------------- every value type */

/* Send v and receive it back through the buffered channel c. */
static gr_value roundtrip(gr_chan *c, gr_value v) {
  gr_value got;
  got.type = GR_NIL;
  CHECK(gr_chan_send(c, &v, 0) == GR_OK);
  CHECK(gr_chan_recv(c, &got, 0) == GR_OK);
  return got;
}

static void every_value_type_from_c_to_c(void) {
  gr_chan *c = gr_chan_make(rt, 1);
  gr_value v;

  v = roundtrip(c, ct_nil());
  CHECK(v.type == GR_NIL);
  v = roundtrip(c, ct_bool(1));
  CHECK(v.type == GR_BOOLEAN && v.u.boolean);
  v = roundtrip(c, ct_bool(0));
  CHECK(v.type == GR_BOOLEAN && !v.u.boolean);
  long long ints[] = { 0, -1, 42, LLONG_MAX, LLONG_MIN };
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    v = roundtrip(c, ct_int(ints[i]));
    CHECKF(v.type == GR_INTEGER && v.u.integer == ints[i], "%lld", ints[i]);
  }
  double nums[] = { 3.0, -0.5, DBL_MAX, DBL_MIN, INFINITY, -INFINITY };
  for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
    v = roundtrip(c, ct_num(nums[i]));             /* 3.0 stays a float */
    CHECKF(v.type == GR_NUMBER && v.u.number == nums[i], "%g", nums[i]);
  }
  v = roundtrip(c, ct_num(NAN));
  CHECK(v.type == GR_NUMBER && isnan(v.u.number));
  v = roundtrip(c, ct_num(-0.0));
  CHECK(v.type == GR_NUMBER && v.u.number == 0 && signbit(v.u.number));

  v = roundtrip(c, ct_lstr("a\0b\0\0c", 6));        /* zero bytes are bytes */
  CHECK(v.type == GR_STRING && v.u.string.len == 6 && memcmp(v.u.string.ptr, "a\0b\0\0c", 6) == 0);
  CHECK(v.type == GR_STRING && v.u.string.ptr[6] == '\0');   /* and terminated */
  gr_value_free(&v);
  CHECK(v.type == GR_NIL);
  v = roundtrip(c, ct_lstr("", 0));
  CHECK(v.type == GR_STRING && v.u.string.len == 0 && v.u.string.ptr != NULL);
  gr_value_free(&v);
  gr_value_free(NULL);                               /* a no-op */
  gr_chan_unref(c);
}

/*
** A send that does not wait (room in the buffer, or a receiver already
** parked) hands the message over: the caller must not free it then (a
** message too long to live inline, over 40 bytes, would be freed while
** the channel holds it).  This was a bug; the test keeps it fixed.
*/
static void send_that_does_not_wait_keeps_its_message(void) {
  gr_chan *c = gr_chan_make(rt, 1);
  char text[100];
  memset(text, 'x', sizeof text);
  gr_value v = ct_lstr(text, sizeof text), got;
  CHECK(gr_chan_send(c, &v, 0) == GR_OK);            /* into the buffer */
  CHECK(gr_chan_recv(c, &got, 0) == GR_OK);
  CHECK(got.type == GR_STRING && got.u.string.len == sizeof text &&
        memcmp(got.u.string.ptr, text, sizeof text) == 0);
  gr_value_free(&got);
  gr_chan_unref(c);
}

/* Long strings, and channels (by reference), from C to C. */
static void long_strings_and_channels_from_c_to_c(void) {
  gr_chan *c = gr_chan_make(rt, 1);
  gr_value v;
  size_t big = 1 << 20;
  char *s = (char *)malloc(big);
  for (size_t i = 0; i < big; i++) s[i] = (char)(i * 7);
  v = roundtrip(c, ct_lstr(s, big));
  CHECK(v.type == GR_STRING && v.u.string.len == big && memcmp(v.u.string.ptr, s, big) == 0);
  gr_value_free(&v);
  free(s);

  /* A channel crosses by reference: the one received is the same channel. */
  gr_chan *inner = gr_chan_make(rt, 1);
  v = roundtrip(c, ct_chan(inner));
  CHECK(v.type == GR_CHANNEL);
  if (v.type == GR_CHANNEL) {
    gr_value x = ct_str("through the copy"), y;
    CHECK(gr_chan_send(v.u.channel, &x, 0) == GR_OK);
    CHECK(gr_chan_recv(inner, &y, 0) == GR_OK);
    CHECK(y.type == GR_STRING && strcmp(y.u.string.ptr, "through the copy") == 0);
    gr_value_free(&y);
  }
  gr_value_free(&v);                                 /* drops its reference */
  gr_chan_unref(inner);
  gr_chan_unref(c);
}

/* A goroutine that describes and echoes back everything it receives. */
static const char *describe_code =
  "local inbox, out = ...\n"
  "while true do\n"
  "  local v, ok = inbox:recv()\n"
  "  if not ok then break end\n"
  "  local d = type(v)\n"
  "  if math.type(v) == 'integer' then d = 'integer ' .. tostring(v)\n"
  "  elseif d == 'number' then d = 'float ' .. string.format('%.17g', v)\n"
  "  elseif d == 'string' then d = 'string ' .. #v .. ' ' .. v:gsub('\\0', '0')\n"
  "  elseif d == 'userdata' then d = tostring(v):match('^(%a+):')\n"
  "  else d = d .. ' ' .. tostring(v) end\n"
  "  out:send(d)\n"
  "  out:send(v)\n"
  "end\n";

static void to_lua_and_back(int with_channel) {
  gr_chan *inbox = gr_chan_make(rt, 0), *out = gr_chan_make(rt, 0);
  gr_chan *other = gr_chan_make(rt, 1);
  gr_value args[2] = { ct_chan(inbox), ct_chan(out) };
  ct_go(rt, describe_code, args, 2);
  struct { gr_value v; const char *desc; } cases[] = {
    { ct_nil(), "nil nil" },
    { ct_bool(1), "boolean true" },
    { ct_bool(0), "boolean false" },
    { ct_int(LLONG_MIN), "integer -9223372036854775808" },
    { ct_num(3.0), "float 3" },
    { ct_num(0.1), "float 0.10000000000000001" },
    { ct_lstr("x\0y\0", 4), "string 4 x0y0" },
    { ct_chan(other), "channel" },
  };
  size_t ncases = sizeof cases / sizeof *cases - !with_channel;
  for (size_t i = 0; i < ncases; i++) {
    CHECK(gr_chan_send(inbox, &cases[i].v, -1) == GR_OK);
    CHECK_RECV_STR(out, cases[i].desc);
    gr_value back;
    CHECK(gr_chan_recv(out, &back, -1) == GR_OK);
    CHECKF(back.type == cases[i].v.type, "case %zu: type %d", i, (int)back.type);
    switch (back.type) {
      case GR_BOOLEAN: CHECK(back.u.boolean == cases[i].v.u.boolean); break;
      case GR_INTEGER: CHECK(back.u.integer == cases[i].v.u.integer); break;
      case GR_NUMBER: CHECK(back.u.number == cases[i].v.u.number); break;
      case GR_STRING:
        CHECK(back.u.string.len == 4 && memcmp(back.u.string.ptr, "x\0y\0", 4) == 0);
        break;
      case GR_CHANNEL: CHECK(back.u.channel == other); break;   /* the same object */
      default: break;
    }
    gr_value_free(&back);
  }
  CHECK(gr_chan_close(inbox) == GR_OK);
  gr_chan_unref(inbox);
  gr_chan_unref(out);
  gr_chan_unref(other);
}

static void every_value_type_to_lua_and_back(void) { to_lua_and_back(0); }
static void channels_to_lua_and_back(void) { to_lua_and_back(1); }

/* A table sent by Lua is not a C-level value: gr_chan_recv drops it. */
static void recv_of_a_table_is_an_error(void) {
  gr_chan *c = gr_chan_make(rt, 2);
  gr_value arg = ct_chan(c);
  ct_go(rt, "local c = ...\nc:send({1, 2, 3})\nc:send('after')", &arg, 1);
  gr_value v;
  CHECK(gr_chan_recv(c, &v, -1) == GR_ERROR);
  CHECK(v.type == GR_NIL);
  CHECK_RECV_STR(c, "after");                        /* the next one is fine */
  gr_chan_unref(c);
}

/* -------------------------------------------------- timeouts, try ops */

static void nonblocking_never_waits(void) {
  gr_chan *c = gr_chan_make(rt, 0);
  gr_value v = ct_int(1), got;
  CHECK(gr_chan_recv(c, &got, 0) == GR_TIMEOUT);
  CHECK(got.type == GR_NIL);
  CHECK(gr_chan_send(c, &v, 0) == GR_TIMEOUT);
  gr_chan_unref(c);
}

static void timeout_expires(void) {
  gr_chan *c = gr_chan_make(rt, 0);
  gr_value v = ct_int(1), got;
  double t0 = ct_now();
  CHECK(gr_chan_recv(c, &got, 0.05) == GR_TIMEOUT);
  double took = ct_now() - t0;
  CHECKF(took >= 0.049 && took < 60, "recv timeout took %.3f s", took);
  t0 = ct_now();
  CHECK(gr_chan_send(c, &v, 0.05) == GR_TIMEOUT);
  took = ct_now() - t0;
  CHECKF(took >= 0.049 && took < 60, "send timeout took %.3f s", took);
  /* The timed-out send left nothing behind in the channel. */
  CHECK(gr_chan_recv(c, &got, 0) == GR_TIMEOUT);
  gr_chan_unref(c);
}

/* A goroutine that, told to, sends; a timed receive gets it in time. */
static void timed_recv_gets_a_value(void) {
  gr_chan *c = gr_chan_make(rt, 0), *go = gr_chan_make(rt, 0);
  gr_value args[2] = { ct_chan(c), ct_chan(go) };
  ct_go(rt, "local c, go = ...\ngo:recv()\nc:send('in time')", args, 2);
  gr_value t = ct_bool(1), got;
  CHECK(gr_chan_send(go, &t, -1) == GR_OK);
  CHECK(gr_chan_recv(c, &got, 30) == GR_OK);
  CHECK(got.type == GR_STRING && strcmp(got.u.string.ptr, "in time") == 0);
  gr_value_free(&got);
  gr_chan_unref(c);
  gr_chan_unref(go);
}

/* --------------------------------------------- many host threads at once */

enum { NTHREADS = 4, PERTHREAD = 2000 };

typedef struct worker {
  pthread_t t;
  gr_chan *c;
  int first;             /* sends first .. first + PERTHREAD - 1 */
  double timeout;        /* <0 blocking, 0 polling, >0 timed */
  long long sum, count;
} worker;

static void *producer(void *arg) {
  worker *w = (worker *)arg;
  for (int i = 0; i < PERTHREAD; i++) {
    gr_value v = ct_int(w->first + i);
    int r;
    while ((r = gr_chan_send(w->c, &v, w->timeout)) == GR_TIMEOUT)
      if (w->timeout == 0) sched_yield();
    CHECK(r == GR_OK);
  }
  return NULL;
}

static void *consumer(void *arg) {
  worker *w = (worker *)arg;
  for (;;) {
    gr_value v;
    int r = gr_chan_recv(w->c, &v, w->timeout);
    if (r == GR_TIMEOUT) { if (w->timeout == 0) sched_yield(); continue; }
    if (r == GR_CLOSED) break;
    CHECK(r == GR_OK && v.type == GR_INTEGER);
    w->sum += v.u.integer;
    w->count++;
  }
  return NULL;
}

/* NTHREADS producers and NTHREADS consumers on c, with a Lua relay between
** them when relay is set; returns after checking the sums. */
static void threads_exchange(size_t cap, double timeout, int relay) {
  gr_chan *in = gr_chan_make(rt, cap);
  gr_chan *out = relay ? gr_chan_make(rt, cap) : in;
  gr_chan *done = NULL;
  if (relay) {
    /* Two Lua goroutines move values from in to out; the last one to
    ** finish closes out. */
    done = gr_chan_make(rt, 2);
    gr_value args[3] = { ct_chan(in), ct_chan(out), ct_chan(done) };
    for (int i = 0; i < 2; i++)
      ct_go(rt, "local inc, out, done = ...\n"
                "for v in inc:range() do out:send(v) end\n"
                "done:send(true)\n", args, 3);
  }
  worker prod[NTHREADS], cons[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    prod[i] = (worker){ .c = in, .first = 1 + i * PERTHREAD, .timeout = timeout };
    cons[i] = (worker){ .c = out, .timeout = timeout };
    pthread_create(&cons[i].t, NULL, consumer, &cons[i]);
    pthread_create(&prod[i].t, NULL, producer, &prod[i]);
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(prod[i].t, NULL);
  CHECK(gr_chan_close(in) == GR_OK);
  if (relay) {
    gr_value v;
    for (int i = 0; i < 2; i++) CHECK(gr_chan_recv(done, &v, -1) == GR_OK);
    CHECK(gr_chan_close(out) == GR_OK);
  }
  long long sum = 0, count = 0, n = (long long)NTHREADS * PERTHREAD;
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(cons[i].t, NULL);
    sum += cons[i].sum;
    count += cons[i].count;
  }
  CHECKF(count == n, "received %lld values, sent %lld", count, n);
  CHECKF(sum == n * (n + 1) / 2, "sum %lld, want %lld", sum, n * (n + 1) / 2);
  gr_chan_unref(in);
  if (relay) { gr_chan_unref(out); gr_chan_unref(done); }
}

static void threads_blocking_unbuffered(void) { threads_exchange(0, -1, 0); }
static void threads_blocking_buffered(void) { threads_exchange(16, -1, 0); }
static void threads_polling(void) { threads_exchange(4, 0, 0); }
/* Short timeouts that often expire: a timed-out waiter must neither lose
** a value nor take one twice. */
static void threads_timed(void) { threads_exchange(0, 0.0005, 0); }
static void threads_through_lua_goroutines(void) { threads_exchange(0, -1, 1); }
static void threads_through_lua_timed(void) { threads_exchange(2, 0.001, 1); }

/* ---------------------------------------------------------------- close */

static void close_semantics(void) {
  gr_chan *c = gr_chan_make(rt, 2);
  gr_value a = ct_str("a"), b = ct_int(2), got;
  CHECK(gr_chan_send(c, &a, 0) == GR_OK);
  CHECK(gr_chan_send(c, &b, 0) == GR_OK);
  CHECK(gr_chan_close(c) == GR_OK);
  CHECK(gr_chan_close(c) == GR_CLOSED);              /* already closed */
  CHECK(gr_chan_send(c, &b, -1) == GR_CLOSED);       /* never blocks */
  CHECK(gr_chan_send(c, &b, 0) == GR_CLOSED);
  /* Buffered values drain first, then GR_CLOSED, as often as asked. */
  CHECK(gr_chan_recv(c, &got, -1) == GR_OK && got.type == GR_STRING);
  gr_value_free(&got);
  CHECK(gr_chan_recv(c, &got, -1) == GR_OK && got.type == GR_INTEGER && got.u.integer == 2);
  CHECK(gr_chan_recv(c, &got, -1) == GR_CLOSED);
  CHECK(gr_chan_recv(c, &got, 0) == GR_CLOSED);
  CHECK(gr_chan_recv(c, &got, 1) == GR_CLOSED);
  gr_chan_unref(c);
}

typedef struct blocked { pthread_t t; gr_chan *c; int send; int result; } blocked;

static void *block_on(void *arg) {
  blocked *b = (blocked *)arg;
  gr_value v = ct_str("a value that never goes");
  if (b->send) b->result = gr_chan_send(b->c, &v, -1);
  else { b->result = gr_chan_recv(b->c, &v, -1); gr_value_free(&v); }
  return NULL;
}

/* Host threads blocked in send and recv are released by a close, with
** GR_CLOSED (the unsent value is not leaked: LeakSanitizer). */
static void close_releases_blocked_host_threads(void) {
  gr_chan *r = gr_chan_make(rt, 0), *s = gr_chan_make(rt, 0);
  blocked b[4] = { { .c = r }, { .c = r }, { .c = s, .send = 1 }, { .c = s, .send = 1 } };
  for (int i = 0; i < 4; i++) pthread_create(&b[i].t, NULL, block_on, &b[i]);
  /* Nothing tells when a host thread has blocked (waiters are not
  ** visible), and a test must not sleep: close now.  The threads that
  ** have blocked are woken, the others find the channel closed; every one
  ** must get GR_CLOSED, and each blocked sender its value back (freed). */
  CHECK(gr_chan_close(r) == GR_OK);
  CHECK(gr_chan_close(s) == GR_OK);
  for (int i = 0; i < 4; i++) {
    pthread_join(b[i].t, NULL);
    CHECKF(b[i].result == GR_CLOSED, "thread %d: %d", i, b[i].result);
  }
  gr_chan_unref(r);
  gr_chan_unref(s);
}

/* Host threads whose short timed waits keep expiring while the channel
** is closed.  A waiter that close has taken must end with GR_CLOSED: once
** one timed out, took itself off close's list (no lock shared) and freed
** itself before close readied it (TSan saw the race, under chaos). */
typedef struct timed {
  pthread_t t;
  gr_chan *c;
  int send;
  atomic_int *started;
  int closed, other;       /* results: GR_CLOSED seen; anything but a timeout */
} timed;

static void *wait_until_closed(void *arg) {
  timed *w = (timed *)arg;
  atomic_fetch_add(w->started, 1);
  for (;;) {
    gr_value v = ct_int(1);
    int r = w->send ? gr_chan_send(w->c, &v, 0.0001) : gr_chan_recv(w->c, &v, 0.0001);
    if (r == GR_CLOSED) { w->closed = 1; return NULL; }
    if (r != GR_TIMEOUT) { w->other++; if (r == GR_OK && !w->send) gr_value_free(&v); }
  }
}

static void close_races_timed_waiters(void) {
  enum { ROUNDS = 200, NW = 4 };
  for (int round = 0; round < ROUNDS; round++) {
    gr_chan *r = gr_chan_make(rt, 0), *s = gr_chan_make(rt, 0);
    atomic_int started = 0;
    timed w[NW];
    for (int i = 0; i < NW; i++) {
      w[i] = (timed){ .c = i % 2 ? s : r, .send = i % 2, .started = &started };
      pthread_create(&w[i].t, NULL, wait_until_closed, &w[i]);
    }
    while (atomic_load(&started) < NW) sched_yield();
    CHECK(gr_chan_close(r) == GR_OK);
    CHECK(gr_chan_close(s) == GR_OK);
    for (int i = 0; i < NW; i++) {
      pthread_join(w[i].t, NULL);
      CHECKF(w[i].closed && w[i].other == 0, "round %d, thread %d: closed %d, other results %d",
             round, i, w[i].closed, w[i].other);
    }
    gr_chan_unref(r);
    gr_chan_unref(s);
  }
}

/* Closed from C while Lua waits on it, and from Lua while C waits. */
static void close_crosses_to_and_from_lua(void) {
  gr_chan *c = gr_chan_make(rt, 0), *out = gr_chan_make(rt, 1);
  gr_value args[2] = { ct_chan(c), ct_chan(out) };
  ct_go(rt, "local c, out = ...\nlocal v, ok = c:recv()\nout:send(tostring(v) .. ' ' .. tostring(ok))", args, 2);
  CHECK(gr_chan_close(c) == GR_OK);
  CHECK_RECV_STR(out, "nil false");
  gr_chan *d = gr_chan_make(rt, 0);
  gr_value arg = ct_chan(d);
  ct_go(rt, "local d = ...\nd:send(1)\nd:close()", &arg, 1);
  gr_value v;
  CHECK(gr_chan_recv(d, &v, -1) == GR_OK && v.type == GR_INTEGER && v.u.integer == 1);
  CHECK(gr_chan_recv(d, &v, -1) == GR_CLOSED);
  CHECK(gr_chan_close(d) == GR_CLOSED);
  gr_chan_unref(c);
  gr_chan_unref(d);
  gr_chan_unref(out);
}

/* --------------------------------------------- whole Lua values from C */

static void sendlua_recvlua_tables(void) {
  lua_State *A = luaL_newstate(), *B = luaL_newstate();
  luaL_openlibs(A);
  luaL_openlibs(B);
  gr_chan *c = gr_chan_make(rt, 1);
  CHECK(luaL_dostring(A,
    "local t = {1, 2.5, 'three', nested = {deep = {true}}, [false] = 'no'}\n"
    "t.self = t\n"
    "t.f = function(x) return x * 2 end\n"
    "return t") == LUA_OK);
  CHECK(lua_gettop(A) == 1);
  CHECK(gr_chan_sendlua(c, A, -1, 0) == GR_OK);
  CHECK(lua_gettop(A) == 1);                         /* the value stays */
  CHECK(gr_chan_recvlua(c, B, 0) == GR_OK);
  CHECK(lua_gettop(B) == 1 && lua_istable(B, 1));
  lua_setglobal(B, "t");
  CHECK(luaL_dostring(B,
    "assert(t[1] == 1 and math.type(t[1]) == 'integer')\n"
    "assert(t[2] == 2.5 and t[3] == 'three')\n"
    "assert(t.nested.deep[1] == true and t[false] == 'no')\n"
    "assert(t.self == t)\n"                          /* the cycle kept its shape */
    "assert(t.f(21) == 42)\n") == LUA_OK);
  /* Nothing pushed unless GR_OK. */
  CHECK(gr_chan_recvlua(c, B, 0) == GR_TIMEOUT);
  CHECK(lua_gettop(B) == 0);
  lua_close(A);
  lua_close(B);
  gr_chan_unref(c);
}

/* A table from a host state to a goroutine, which answers with one. */
static void sendlua_to_a_goroutine(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  gr_chan *c = gr_chan_make(rt, 0);
  gr_value arg = ct_chan(c);
  ct_go(rt,
    "local c = ...\n"
    "local t = c:recv()\n"
    "local sum = 0\n"
    "for _, v in ipairs(t.values) do sum = sum + v end\n"
    "c:send({name = t.name, sum = sum, reply = c})\n", &arg, 1);
  CHECK(luaL_dostring(L, "return {name = 'job', values = {1, 2, 3, 4}}") == LUA_OK);
  CHECK(gr_chan_sendlua(c, L, 1, -1) == GR_OK);
  lua_settop(L, 0);
  CHECK(gr_chan_recvlua(c, L, -1) == GR_OK);
  CHECK(lua_getfield(L, 1, "name") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "job") == 0);
  CHECK(lua_getfield(L, 1, "sum") == LUA_TNUMBER && lua_tointeger(L, -1) == 10);
  /* The channel inside the table is the same channel, in a host state
  ** the runtime is not attached to. */
  lua_getfield(L, 1, "reply");
  gr_chan *same = gr_chan_get(L, -1);
  CHECK(same == c);
  gr_chan_unref(same);
  lua_close(L);                                      /* drops its handle */
  gr_chan_unref(c);
}

static void values_that_cannot_cross(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  gr_chan *c = gr_chan_make(rt, 1);
  CHECK(luaL_dostring(L, "return {log = io.stdout}") == LUA_OK);
  CHECK(gr_chan_sendlua(c, L, 1, 0) == GR_ERROR);
  CHECK(lua_gettop(L) == 2);                         /* the value and the reason */
  const char *why = lua_tostring(L, -1);
  CHECKF(ct_contains(why, "cannot send userdata (FILE*) at value.log"), "reason: %s", ct_s(why));
  lua_settop(L, 0);
  lua_newthread(L);
  CHECK(gr_chan_sendlua(c, L, -1, 0) == GR_ERROR);
  CHECKF(ct_contains(lua_tostring(L, -1), "thread"), "reason: %s", ct_s(lua_tostring(L, -1)));
  lua_settop(L, 0);
  lua_pushcfunction(L, luaopen_base);                /* a C function of the host */
  CHECK(gr_chan_sendlua(c, L, -1, 0) == GR_ERROR);
  lua_settop(L, 0);
  /* Nothing half-sent: the channel is still empty, and usable. */
  gr_value v;
  CHECK(gr_chan_recv(c, &v, 0) == GR_TIMEOUT);
  lua_pushinteger(L, 5);
  CHECK(gr_chan_sendlua(c, L, -1, 0) == GR_OK);
  CHECK(gr_chan_recv(c, &v, 0) == GR_OK && v.type == GR_INTEGER && v.u.integer == 5);
  lua_close(L);
  gr_chan_unref(c);
}

/* --------------------------------------------- channels handed to Lua */

/* gr_chan_push onto a state of the runtime: a goroutine's, through the
** init hook (inithook_test.c) or an attached host state (below). */
static void push_and_get_on_an_attached_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  gr_runtime *art = gr_attach(L, &cfg);
  gr_chan *c = gr_chan_make(art, 0);
  gr_chan_push(L, c);
  gr_chan_push(L, c);
  CHECK(lua_rawequal(L, -1, -2));                    /* one handle per state */
  lua_pop(L, 1);
  lua_setglobal(L, "hostchan");
  CHECK(luaL_dostring(L,
    "local g = require 'goroutine'\n"
    "assert(tostring(hostchan):match('^channel: '))\n"
    "g.go(function(c) c:send('from a goroutine') end, hostchan)\n"
    "return g.chan(3)") == LUA_OK);
  CHECK_RECV_STR(c, "from a goroutine");
  /* A channel made by Lua, used from C. */
  gr_chan *lc = gr_chan_get(L, -1);
  CHECK(lc != NULL);
  gr_value v = ct_int(99);
  CHECK(gr_chan_send(lc, &v, 0) == GR_OK);
  CHECK(luaL_loadstring(L, "local c = ...; return c:recv()") == LUA_OK);
  lua_pushvalue(L, -2);
  CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK && lua_tointeger(L, -1) == 99);
  lua_pop(L, 1);
  /* gr_chan_get on what is not a channel. */
  lua_pushinteger(L, 1);
  CHECK(gr_chan_get(L, -1) == NULL);
  lua_newtable(L);
  CHECK(gr_chan_get(L, -1) == NULL);
  CHECK(luaL_dostring(L, "return require('goroutine').mutex()") == LUA_OK);
  CHECK(gr_chan_get(L, -1) == NULL);                 /* a handle, not a channel */
  CHECK(luaL_dostring(L, "return io.stdout") == LUA_OK);
  CHECK(gr_chan_get(L, -1) == NULL);
  lua_settop(L, 0);
  gr_chan_unref(lc);
  gr_chan_unref(c);
  lua_close(L);
}

/* The reference gr_chan_get gives keeps the channel alive after every
** Lua handle to it is gone. */
static void get_keeps_the_channel_alive(void) {
  gr_chan *out = gr_chan_make(rt, 1);
  gr_value arg = ct_chan(out);
  ct_go(rt, "local out = ...\nlocal c = goroutine.chan(1)\nc:send('kept')\nout:send(c)", &arg, 1);
  gr_value v;
  CHECK(gr_chan_recv(out, &v, -1) == GR_OK && v.type == GR_CHANNEL);
  /* The goroutine has ended and its state is closed: v holds the only
  ** reference now. */
  CHECK(gr_dostring(rt, "collectgarbage()", "=gc", NULL) == GR_OK);
  if (v.type == GR_CHANNEL) CHECK_RECV_STR(v.u.channel, "kept");
  gr_value_free(&v);
  gr_chan_unref(out);
}


int main(void) {
  ct_begin();
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  rt = gr_open(&cfg);
  if (rt == NULL) { printf("gr_open failed\n0 passed, 1 failed\n"); return 1; }
  RUN(make_buffered_and_unbuffered);
  RUN(every_value_type_from_c_to_c);
  RUN(send_that_does_not_wait_keeps_its_message);
  RUN(long_strings_and_channels_from_c_to_c);
  RUN(every_value_type_to_lua_and_back);
  RUN(channels_to_lua_and_back);
  RUN(recv_of_a_table_is_an_error);
  RUN(nonblocking_never_waits);
  RUN(timeout_expires);
  RUN(timed_recv_gets_a_value);
  RUN(threads_blocking_unbuffered);
  RUN(threads_blocking_buffered);
  RUN(threads_polling);
  RUN(threads_timed);
  RUN(threads_through_lua_goroutines);
  RUN(threads_through_lua_timed);
  RUN(close_semantics);
  RUN(close_releases_blocked_host_threads);
  RUN(close_races_timed_waiters);
  RUN(close_crosses_to_and_from_lua);
  RUN(sendlua_recvlua_tables);
  RUN(sendlua_to_a_goroutine);
  RUN(values_that_cannot_cross);
  RUN(push_and_get_on_an_attached_state);
  RUN(get_keeps_the_channel_alive);
  gr_close(rt);
  return ct_end();
}
