/*
** alloc.c — the fault injection build's allocation counter (see alloc.h).
** Empty in a normal build.
*/
#include "alloc.h"

#ifdef GR_FAULT_INJECTION
#include <stdatomic.h>
#include <stdio.h>
#include <pthread.h>

static atomic_long count;      /* counted allocations so far */
static long fail_at = -1;      /* GR_FAIL_AT; 0: count only; -1: unset */
static long fail_count = 1;    /* GR_FAIL_COUNT: how many fail from there */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void report(void) {
  fprintf(stderr, "gr-faults: %ld allocations\n", atomic_load(&count));
}

static void setup(void) {
  const char *s = getenv("GR_FAIL_AT");
  if (s == NULL || *s == '\0') return;
  fail_at = strtol(s, NULL, 10);
  if (fail_at == 0) atexit(report);
  s = getenv("GR_FAIL_COUNT");
  if (s && *s) fail_count = strtol(s, NULL, 10);
}

int gr_fault_hit(void) {
  pthread_once(&once, setup);
  if (fail_at < 0) return 0;
  long n = atomic_fetch_add(&count, 1) + 1;
  return fail_at > 0 && n >= fail_at && n - fail_at < fail_count;
}
#else
typedef int gr_alloc_unused;   /* ISO C wants something in a translation unit */
#endif
