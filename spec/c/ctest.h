/*
** ctest.h — the small harness the API tests of spec/c/ share.
**
** Each *_test.c is one program about one feature of goroutine.h.  Its
** main() calls ct_begin(), then RUN(test) for each test function, then
** returns ct_end(), which prints "N passed, N failed" (the line spec/run.sh
** reads) and gives a non-zero exit status when a test failed.
**
** CHECK(cond) records a failure (file:line and the condition) and goes on;
** a test passes when none of its checks failed.  Checks may be made from
** any thread.  RUN_BUG(test, "why") marks a test that shows a known bug of
** the implementation: it is skipped (and said so) unless GR_KNOWN_BUGS=1 is
** in the environment, which is how its reproducer runs.
**
** A watchdog ends a test program that hangs (a lost wake-up must fail the
** suite, not stall it): CTEST_TIMEOUT seconds, 300 by default, generous
** enough for valgrind.  Tests never sleep to synchronise: they wait on
** channels, joins and condition variables.
*/
#ifndef CTEST_H
#define CTEST_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "goroutine.h"

#define CT_API static __attribute__((unused))

static atomic_int ct_npassed, ct_nfailed, ct_nskipped, ct_curfailed;

CT_API void ct_fail(const char *file, int line, const char *what) {
  atomic_fetch_add(&ct_curfailed, 1);
  fprintf(stdout, "  %s:%d: check failed: %s\n", file, line, what);
  fflush(stdout);
}

#define CHECK(cond) \
  do { if (!(cond)) ct_fail(__FILE__, __LINE__, #cond); } while (0)

/* CHECK with a printf-style note, for values worth seeing on failure. */
#define CHECKF(cond, ...) \
  do { if (!(cond)) { ct_fail(__FILE__, __LINE__, #cond); \
       printf("    "); printf(__VA_ARGS__); printf("\n"); fflush(stdout); } } while (0)

CT_API void ct_run(const char *name, void (*fn)(void)) {
  atomic_store(&ct_curfailed, 0);
  fn();
  if (atomic_load(&ct_curfailed)) {
    atomic_fetch_add(&ct_nfailed, 1);
    printf("FAIL %s\n", name);
  } else {
    atomic_fetch_add(&ct_npassed, 1);
    printf("ok   %s\n", name);
  }
  fflush(stdout);
}

CT_API void ct_run_bug(const char *name, void (*fn)(void), const char *why) {
  const char *on = getenv("GR_KNOWN_BUGS");
  if (on && strcmp(on, "1") == 0) { ct_run(name, fn); return; }
  atomic_fetch_add(&ct_nskipped, 1);
  printf("skip %s (known bug: %s; GR_KNOWN_BUGS=1 runs it)\n", name, why);
  fflush(stdout);
}

#define RUN(fn) ct_run(#fn, fn)
#define RUN_BUG(fn, why) ct_run_bug(#fn, fn, why)

CT_API void ct_timeout(int sig) {
  static const char msg[] = "\ntimed out (CTEST_TIMEOUT): a test hangs\n0 passed, 1 failed\n";
  (void)sig;
  if (write(1, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
  _exit(1);
}

CT_API void ct_begin(void) {
  const char *s = getenv("CTEST_TIMEOUT");
  int secs = s && atoi(s) > 0 ? atoi(s) : 300;
  signal(SIGALRM, ct_timeout);
  alarm((unsigned)secs);
  setvbuf(stdout, NULL, _IOLBF, 0);
}

CT_API int ct_end(void) {
  alarm(0);
  if (atomic_load(&ct_nskipped))
    printf("(%d skipped: known bugs)\n", atomic_load(&ct_nskipped));
  printf("%d passed, %d failed\n", atomic_load(&ct_npassed), atomic_load(&ct_nfailed));
  return atomic_load(&ct_nfailed) ? 1 : 0;
}

/* ------------------------------------------------------------ helpers */

CT_API double ct_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* s, or "(null)": for printing what may be missing. */
CT_API const char *ct_s(const char *s) { return s ? s : "(null)"; }

CT_API int ct_contains(const char *s, const char *part) {
  return s != NULL && strstr(s, part) != NULL;
}

CT_API gr_value ct_nil(void) { gr_value v; v.type = GR_NIL; return v; }
CT_API gr_value ct_bool(int b) { gr_value v; v.type = GR_BOOLEAN; v.u.boolean = b; return v; }
CT_API gr_value ct_int(long long i) { gr_value v; v.type = GR_INTEGER; v.u.integer = i; return v; }
CT_API gr_value ct_num(double d) { gr_value v; v.type = GR_NUMBER; v.u.number = d; return v; }
CT_API gr_value ct_lstr(const char *s, size_t len) {
  gr_value v;
  v.type = GR_STRING;
  v.u.string.ptr = (char *)s;
  v.u.string.len = len;
  return v;
}
CT_API gr_value ct_str(const char *s) { return ct_lstr(s, strlen(s)); }
CT_API gr_value ct_chan(gr_chan *c) { gr_value v; v.type = GR_CHANNEL; v.u.channel = c; return v; }

/* Receive (blocking) and expect a string: returns it (malloc'd, the
** caller frees) or NULL, failing the current test. */
CT_API char *ct_recv_str(gr_chan *c) {
  gr_value v;
  int r = gr_chan_recv(c, &v, -1);
  if (r != GR_OK || v.type != GR_STRING) {
    printf("  expected a string, got result %d type %d\n", r, r == GR_OK ? (int)v.type : -1);
    atomic_fetch_add(&ct_curfailed, 1);
    if (r == GR_OK) gr_value_free(&v);
    return NULL;
  }
  return v.u.string.ptr;
}

/* Receive (blocking) and expect the string 'want'. */
#define CHECK_RECV_STR(c, want) \
  do { char *got_ = ct_recv_str(c); \
       CHECKF(got_ && strcmp(got_, (want)) == 0, "got %s, want %s", got_ ? got_ : "(none)", (want)); \
       free(got_); } while (0)

/* Start code as a goroutine; fail the test (printing why) if it does not
** start. */
CT_API long long ct_go(gr_runtime *rt, const char *code, const gr_value *args, int nargs) {
  char *err = NULL;
  long long id = gr_go(rt, code, "=test", args, nargs, &err);
  if (id < 0) {
    printf("  gr_go failed: %s\n", err ? err : "(no message)");
    atomic_fetch_add(&ct_curfailed, 1);
  }
  free(err);
  return id;
}

/* A counter threads can bump and wait for. */
typedef struct ct_counter {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int n;
} ct_counter;

#define CT_COUNTER_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 }

CT_API void ct_counter_add(ct_counter *c) {
  pthread_mutex_lock(&c->lock);
  c->n++;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->lock);
}

/* Wait until the counter reaches n (the watchdog bounds the wait). */
CT_API void ct_counter_wait(ct_counter *c, int n) {
  pthread_mutex_lock(&c->lock);
  while (c->n < n) pthread_cond_wait(&c->cond, &c->lock);
  pthread_mutex_unlock(&c->lock);
}

CT_API int ct_counter_get(ct_counter *c) {
  pthread_mutex_lock(&c->lock);
  int n = c->n;
  pthread_mutex_unlock(&c->lock);
  return n;
}

#endif
