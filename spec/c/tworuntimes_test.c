/*
** tworuntimes_test.c — nothing in goroutine.h is process-global: two
** runtimes side by side in one process, each with its own config,
** goroutines, ids and channels, driven at once from two host threads; and
** closing one leaves the other working.
*/
#include <lauxlib.h>
#include <lualib.h>
#include "ctest.h"

typedef struct side {
  const char *name;
  gr_runtime *rt;
  atomic_int states;
  pthread_t t;
  long long sum;            /* what the round found */
  int bad;                  /* results tagged with the other runtime's name */
} side;

/* Each runtime's hook stamps its own name into every state. */
static void on_state(void *ud, lua_State *L) {
  side *s = (side *)ud;
  atomic_fetch_add(&s->states, 1);
  lua_pushstring(L, s->name);
  lua_setglobal(L, "RUNTIME");
}

static gr_runtime *open_side(side *s, int procs) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = procs;
  cfg.on_state = on_state;
  cfg.ud = s;
  return s->rt = gr_open(&cfg);
}

enum { NJOBS = 2000, NWORKERS = 4 };

/* Feeds 1..NJOBS into jobs (blocking), then closes it. */
static void *feed(void *arg) {
  gr_chan *jobs = (gr_chan *)arg;
  for (int i = 1; i <= NJOBS; i++) {
    gr_value v = ct_int(i);
    CHECK(gr_chan_send(jobs, &v, -1) == GR_OK);
  }
  CHECK(gr_chan_close(jobs) == GR_OK);
  return NULL;
}

/* One round on one runtime, from its own host thread: NWORKERS goroutines
** square NJOBS numbers and tag them with RUNTIME; a feeder thread sends
** the jobs, this thread collects, then checks the sum and the tags. */
static void *round_trip(void *arg) {
  side *s = (side *)arg;
  gr_chan *jobs = gr_chan_make(s->rt, 8), *results = gr_chan_make(s->rt, 8);
  gr_value args[2] = { ct_chan(jobs), ct_chan(results) };
  for (int i = 0; i < NWORKERS; i++)
    ct_go(s->rt,
      "local jobs, results = ...\n"
      "for n in jobs:range() do results:send(RUNTIME .. ' ' .. n * n) end\n", args, 2);
  pthread_t feeder;
  pthread_create(&feeder, NULL, feed, jobs);
  s->sum = 0;
  s->bad = 0;
  size_t namelen = strlen(s->name);
  for (int got = 0; got < NJOBS; got++) {
    gr_value r;
    CHECK(gr_chan_recv(results, &r, -1) == GR_OK);
    if (r.type == GR_STRING && strncmp(r.u.string.ptr, s->name, namelen) == 0 &&
        r.u.string.ptr[namelen] == ' ')
      s->sum += atoll(r.u.string.ptr + namelen + 1);
    else
      s->bad++;
    gr_value_free(&r);
  }
  pthread_join(feeder, NULL);
  gr_chan_unref(jobs);
  gr_chan_unref(results);
  return NULL;
}

static long long sum_of_squares(long long n) { return n * (n + 1) * (2 * n + 1) / 6; }

static void check_round(side *s) {
  CHECKF(s->sum == sum_of_squares(NJOBS), "%s: sum %lld, want %lld", s->name, s->sum, sum_of_squares(NJOBS));
  CHECKF(s->bad == 0, "%s: %d results from elsewhere", s->name, s->bad);
}

static void two_runtimes_at_once(void) {
  side a = { .name = "A" }, b = { .name = "B" };
  CHECK(open_side(&a, 2) != NULL);
  CHECK(open_side(&b, 3) != NULL);
  /* Their own worker counts and ids. */
  CHECK(gr_dostring(a.rt, "assert(goroutine.maxprocs() == 2 and RUNTIME == 'A')", "=a", NULL) == GR_OK);
  CHECK(gr_dostring(b.rt, "assert(goroutine.maxprocs() == 3 and RUNTIME == 'B')", "=b", NULL) == GR_OK);
  /* Each runtime numbers its goroutines from the same start. */
  long long ida = gr_go(a.rt, "", "=a", NULL, 0, NULL);
  long long idb = gr_go(b.rt, "", "=b", NULL, 0, NULL);
  CHECKF(ida == idb, "ids %lld and %lld", ida, idb);
  pthread_create(&a.t, NULL, round_trip, &a);
  pthread_create(&b.t, NULL, round_trip, &b);
  pthread_join(a.t, NULL);
  pthread_join(b.t, NULL);
  check_round(&a);
  check_round(&b);
  CHECK(atomic_load(&a.states) > 0 && atomic_load(&b.states) > 0);
  /* Close A while B works: B's round goes on undisturbed. */
  pthread_create(&b.t, NULL, round_trip, &b);
  gr_close(a.rt);
  pthread_join(b.t, NULL);
  check_round(&b);
  CHECK(gr_dostring(b.rt, "assert(RUNTIME == 'B')", "=b", NULL) == GR_OK);
  gr_close(b.rt);
}

/* Two host states, each attached to a runtime of its own, run by two
** threads at once. */
static void *attached_round(void *arg) {
  const char *code =
    "local g = require 'goroutine'\n"
    "local ch = g.chan()\n"
    "for i = 1, 100 do g.go(function() ch:send(i) end) end\n"
    "local sum = 0\n"
    "for i = 1, 100 do sum = sum + ch:recv() end\n"
    "return sum + g.count()";
  int *result = (int *)arg;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  gr_attach(L, &cfg);
  *result = luaL_dostring(L, code) == LUA_OK ? (int)lua_tointeger(L, -1) : -1;
  lua_close(L);
  return NULL;
}

static void two_attached_states_at_once(void) {
  pthread_t t1, t2;
  int r1 = 0, r2 = 0;
  pthread_create(&t1, NULL, attached_round, &r1);
  pthread_create(&t2, NULL, attached_round, &r2);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  /* 5050, plus the goroutines alive then: main, and the senders that have
  ** not ended yet (at most the 100 of this runtime, none of the other's). */
  CHECKF(r1 >= 5051 && r1 <= 5150, "r1 = %d", r1);
  CHECKF(r2 >= 5051 && r2 <= 5150, "r2 = %d", r2);
}

/* goroutine.count() counts one runtime's goroutines only. */
static void counts_are_per_runtime(void) {
  side a = { .name = "A" }, b = { .name = "B" };
  open_side(&a, 1);
  open_side(&b, 1);
  gr_chan *hold = gr_chan_make(a.rt, 0);
  gr_value arg = ct_chan(hold);
  for (int i = 0; i < 10; i++) ct_go(a.rt, "local hold = ...\nhold:recv()", &arg, 1);
  char *err = NULL;
  /* In B: only the dostring goroutine itself. */
  CHECK(gr_dostring(b.rt, "assert(goroutine.count() == 1, goroutine.count())", "=b", &err) == GR_OK);
  CHECKF(err == NULL, "%s", ct_s(err));
  free(err);
  gr_chan_close(hold);
  gr_chan_unref(hold);
  gr_close(a.rt);
  gr_close(b.rt);
}

int main(void) {
  ct_begin();
  RUN(two_runtimes_at_once);
  RUN(two_attached_states_at_once);
  RUN(counts_are_per_runtime);
  return ct_end();
}
