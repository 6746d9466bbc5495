/*
** memlimit_test.c — cfg.memlimit, the bytes one goroutine's state may
** allocate: past it the goroutine gets a catchable "not enough memory"
** (pcall reports it, the goroutine goes on); uncaught, it goes to on_error
** like any error.  The limit is per goroutine: the others are unaffected.
*/
#include "ctest.h"

#define LIMIT (2u << 20)    /* 2 MiB a goroutine */

static ct_counter nerrors = CT_COUNTER_INIT;
static pthread_mutex_t errlock = PTHREAD_MUTEX_INITIALIZER;
static char *last_error;
static long long last_id;

static void on_error(void *ud, long long id, const char *msg) {
  (void)ud;
  pthread_mutex_lock(&errlock);
  free(last_error);
  last_error = strdup(msg);
  last_id = id;
  pthread_mutex_unlock(&errlock);
  ct_counter_add(&nerrors);
}

static gr_runtime *open_limited(size_t limit) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  cfg.memlimit = limit;
  cfg.on_error = on_error;
  return gr_open(&cfg);
}

/* Lua that allocates about 'mb' MiB, kept alive in a table. */
#define GROW(mb) \
  "local t = {}\n" \
  "for i = 1, " #mb " * 16 do t[i] = string.rep('x', 65536 - 32) .. i end\n"

static void past_the_limit_is_a_catchable_error(void) {
  gr_runtime *rt = open_limited(LIMIT);
  char *err = NULL;
  int r = gr_dostring(rt,
    "local ok, e = pcall(function()\n" GROW(8) "end)\n"
    "assert(not ok, 'allocated 8 MiB under a 2 MiB limit')\n"
    "assert(e == 'not enough memory', e)\n"
    /* the garbage goes, and the goroutine carries on allocating */
    "collectgarbage()\n"
    "local ok2 = pcall(function()\n" GROW(1) "end)\n"
    "assert(ok2, 'a 1 MiB table after the failure')\n", "=limit", &err);
  CHECKF(r == GR_OK, "%s", ct_s(err));
  free(err);
  gr_close(rt);
}

static void uncaught_it_goes_to_on_error(void) {
  int before = ct_counter_get(&nerrors);
  gr_runtime *rt = open_limited(LIMIT);
  long long id = ct_go(rt, GROW(8), NULL, 0);
  ct_counter_wait(&nerrors, before + 1);
  pthread_mutex_lock(&errlock);
  CHECK(last_id == id);
  CHECKF(ct_contains(last_error, "not enough memory"), "on_error got: %s", ct_s(last_error));
  pthread_mutex_unlock(&errlock);
  /* And gr_dostring gets it as its error. */
  char *err = NULL;
  CHECK(gr_dostring(rt, GROW(8), "=big", &err) == GR_ERROR);
  CHECKF(ct_contains(err, "not enough memory"), "err: %s", ct_s(err));
  free(err);
  gr_close(rt);
}

/* Three goroutines of 1.5 MiB each (4.5 MiB together) under a 2 MiB
** limit, beside one that fails: the limit counts each goroutine alone. */
static void the_limit_is_per_goroutine(void) {
  int before = ct_counter_get(&nerrors);
  gr_runtime *rt = open_limited(LIMIT);
  gr_chan *done = gr_chan_make(rt, 0), *hold = gr_chan_make(rt, 0);
  gr_value args[2] = { ct_chan(done), ct_chan(hold) };
  for (int i = 0; i < 3; i++)
    ct_go(rt,
      "local done, hold = ...\n"
      "local t = {}\n"
      "for i = 1, 24 do t[i] = string.rep('y', 65536 - 32) .. i end\n"
      "done:send(#t)\n"
      "hold:recv()\n"          /* keep it all until the host says so */
      "done:send(#t[24])\n", args, 2);
  for (int i = 0; i < 3; i++) {
    gr_value v;
    CHECK(gr_chan_recv(done, &v, -1) == GR_OK && v.type == GR_INTEGER && v.u.integer == 24);
  }
  /* All three hold their 1.5 MiB now; one more goroutine fails alone. */
  ct_go(rt, GROW(8), NULL, 0);
  ct_counter_wait(&nerrors, before + 1);
  CHECK(gr_chan_close(hold) == GR_OK);
  for (int i = 0; i < 3; i++) {
    gr_value v;
    CHECK(gr_chan_recv(done, &v, -1) == GR_OK && v.type == GR_INTEGER && v.u.integer == 65536 - 30);
  }
  CHECK(ct_counter_get(&nerrors) == before + 1);
  gr_chan_unref(done);
  gr_chan_unref(hold);
  gr_close(rt);
}

/*
** A message bigger than the receiver may hold: its receive fails with a
** catchable "not enough memory", and the receiver goes on; under
** LeakSanitizer nothing leaks (the message whose decode raised is freed).
*/
static void a_message_too_big_for_the_receiver(void) {
  gr_runtime *rt = open_limited(LIMIT);
  gr_chan *c = gr_chan_make(rt, 0), *out = gr_chan_make(rt, 0);
  gr_value args[2] = { ct_chan(c), ct_chan(out) };
  ct_go(rt,
    "local c, out = ...\n"
    "local ok, e = pcall(c.recv, c)\n"
    "out:send(tostring(ok) .. ' ' .. tostring(e))\n"
    "out:send(c:recv())\n", args, 2);
  size_t big = 4u << 20;
  char *s = (char *)malloc(big);
  memset(s, 'z', big);
  gr_value v = ct_lstr(s, big);
  CHECK(gr_chan_send(c, &v, -1) == GR_OK);
  CHECK_RECV_STR(out, "false not enough memory");
  v = ct_str("small");
  CHECK(gr_chan_send(c, &v, -1) == GR_OK);
  CHECK_RECV_STR(out, "small");
  free(s);
  gr_chan_unref(c);
  gr_chan_unref(out);
  gr_close(rt);
}

/* memlimit 0: no limit. */
static void zero_is_no_limit(void) {
  gr_runtime *rt = open_limited(0);
  char *err = NULL;
  CHECK(gr_dostring(rt, GROW(16), "=nolimit", &err) == GR_OK);
  CHECKF(err == NULL, "%s", ct_s(err));
  free(err);
  gr_close(rt);
}

/* A limit too small for a state to exist at all: the goroutine fails with
** "not enough memory" through on_error; nothing crashes or hangs. */
static void a_limit_too_small_for_a_state(void) {
  int before = ct_counter_get(&nerrors);
  gr_runtime *rt = open_limited(512);
  long long id = ct_go(rt, "error('never runs')", NULL, 0);
  ct_counter_wait(&nerrors, before + 1);
  pthread_mutex_lock(&errlock);
  CHECK(last_id == id);
  CHECKF(ct_contains(last_error, "not enough memory"), "on_error got: %s", ct_s(last_error));
  pthread_mutex_unlock(&errlock);
  gr_close(rt);
}

int main(void) {
  ct_begin();
  RUN(past_the_limit_is_a_catchable_error);
  RUN(uncaught_it_goes_to_on_error);
  RUN(the_limit_is_per_goroutine);
  RUN(a_message_too_big_for_the_receiver);
  RUN(zero_is_no_limit);
  RUN(a_limit_too_small_for_a_state);
  free(last_error);
  return ct_end();
}
