/*
** chaos_test.c — gr_config.chaos_seed: a seed shuffles the order in which
** goroutines first run, the same seed on one worker gives the same order
** in every runtime, 0 leaves the choice to GOROUTINE_CHAOS (a value that
** is not a seed is ignored there), and without a seed goroutines run in
** the order they were started.
**
** The order is observed on one worker: a goroutine starts N goroutines,
** each first sends its number on a buffered channel, and the host receives
** the order as one string.
*/
#include "ctest.h"

enum { N = 12 };

static const char order_code[] =
  "local out, n = ...\n"
  "local first = goroutine.chan(n)\n"
  "for i = 1, n do goroutine.go(function() first:send(i) end) end\n"
  "local order = {}\n"
  "for i = 1, n do order[i] = (first:recv()) end\n"
  "out:send(table.concat(order, ' '))\n";

static const char in_order[] = "1 2 3 4 5 6 7 8 9 10 11 12";

/* The order seen in a new one-worker runtime with this seed (malloc'd). */
static char *order_with(unsigned seed) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 1;
  cfg.chaos_seed = seed;
  gr_runtime *rt = gr_open(&cfg);
  gr_chan *out = gr_chan_make(rt, 1);
  gr_value args[2] = { ct_chan(out), ct_int(N) };
  char *err = NULL;
  CHECKF(gr_go(rt, order_code, "=order", args, 2, &err) > 0, "%s", ct_s(err));
  free(err);
  char *order = ct_recv_str(out);
  gr_chan_unref(out);
  gr_close(rt);
  return order;
}

/* Every number 1..N once. */
static int is_permutation(const char *order) {
  int seen[N + 1] = {0}, count = 0;
  for (const char *s = order; s && *s; ) {
    char *end;
    long k = strtol(s, &end, 10);
    if (end == s || k < 1 || k > N || seen[k]++) return 0;
    count++;
    s = *end ? end + 1 : end;
  }
  return count == N;
}

static void no_seed_runs_in_start_order(void) {
  unsetenv("GOROUTINE_CHAOS");
  char *order = order_with(0);
  CHECKF(order && strcmp(order, in_order) == 0, "order: %s", ct_s(order));
  free(order);
}

static void same_seed_same_order(void) {
  unsetenv("GOROUTINE_CHAOS");
  char *a = order_with(42), *b = order_with(42), *c = order_with(7);
  CHECKF(a && is_permutation(a), "seed 42: %s", ct_s(a));
  CHECKF(a && b && strcmp(a, b) == 0, "seed 42 twice: %s / %s", ct_s(a), ct_s(b));
  CHECKF(a && strcmp(a, in_order) != 0, "seed 42 did not shuffle: %s", ct_s(a));
  CHECKF(a && c && strcmp(a, c) != 0, "seeds 42 and 7 agree: %s", ct_s(a));
  free(a); free(b); free(c);
}

static void zero_takes_the_environment(void) {
  unsetenv("GOROUTINE_CHAOS");
  char *configured = order_with(42);
  setenv("GOROUTINE_CHAOS", "42", 1);
  char *from_env = order_with(0);
  CHECKF(configured && from_env && strcmp(configured, from_env) == 0,
         "config 42: %s, GOROUTINE_CHAOS=42: %s", ct_s(configured), ct_s(from_env));
  setenv("GOROUTINE_CHAOS", "7", 1);       /* a seed in the config wins */
  char *config_wins = order_with(42);
  CHECKF(configured && config_wins && strcmp(configured, config_wins) == 0,
         "config 42 under GOROUTINE_CHAOS=7: %s", ct_s(config_wins));
  unsetenv("GOROUTINE_CHAOS");
  free(configured); free(from_env); free(config_wins);
}

static void invalid_environment_is_ignored(void) {
  static const char *const bad[] = { "abc", "-1", "4294967296", "12x", "" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("GOROUTINE_CHAOS", bad[i], 1);
    char *order = order_with(0);
    CHECKF(order && strcmp(order, in_order) == 0, "GOROUTINE_CHAOS='%s': %s", bad[i], ct_s(order));
    free(order);
  }
  unsetenv("GOROUTINE_CHAOS");
}

int main(void) {
  ct_begin();
  RUN(no_seed_runs_in_start_order);
  RUN(same_seed_same_order);
  RUN(zero_takes_the_environment);
  RUN(invalid_environment_is_ignored);
  return ct_end();
}
