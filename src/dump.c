/*
** dump.c — goroutine dumps: what every goroutine is doing and where, for
** the fatal errors (deadlock, thread exhaustion) and for SIGQUIT, in the
** manner of Go's traceback.
**
** A dump reads other goroutines' stacks from the monitor thread (or, for
** thread exhaustion, the thread that wanted one more), so it is taken
** only of goroutines that cannot run meanwhile: parked ones (all of them,
** when deadlocked) and runnable ones while the scheduler is frozen.
** The acquire load of a G's status pairs with the release store made when
** it parked, so its stack as it left it is visible here.  Under chaos
** scheduling the dump ends with the seed, which replays the schedule.
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include "runtime.h"

#define MAX_FRAMES 24

static void print_frame(FILE *out, lua_Debug *ar) {
  const char *where;
  char buf[128];
  if (ar->name && *ar->name) {
    snprintf(buf, sizeof buf, "function '%s'", ar->name);
    where = buf;
  } else if (*ar->what == 'm') {
    where = "main chunk";
  } else if (*ar->what == 'C') {
    where = "?";
  } else {
    snprintf(buf, sizeof buf, "function <%s:%d>", ar->short_src, ar->linedefined);
    where = buf;
  }
  if (ar->currentline > 0)
    fprintf(out, "\t%s:%d: in %s\n", ar->short_src, ar->currentline, where);
  else
    fprintf(out, "\t[C]: in %s\n", where);
}

static void print_stack(FILE *out, lua_State *L) {
  lua_Debug ar;
  int level = 0;
  while (lua_getstack(L, level, &ar)) {
    if (level == MAX_FRAMES) { fprintf(out, "\t...\n"); break; }
    if (lua_getinfo(L, "Sln", &ar)) print_frame(out, &ar);
    level++;
  }
}

static int by_id(const void *a, const void *b) {
  int64_t x = (*(gr_g *const *)a)->id, y = (*(gr_g *const *)b)->id;
  return (x > y) - (x < y);
}

void gr_dump_goroutines(gr_runtime *rt, FILE *out) {
  gr_lock_acquire(&rt->allglock);
  size_t n = 0, i;
  gr_g *g;
  for (g = rt->allg; g; g = g->allnext) n++;
  gr_g **all = (gr_g **)gr_malloc((n ? n : 1) * sizeof *all);
  if (all == NULL) {
    gr_lock_release(&rt->allglock);
    fprintf(out, "(no memory to list the goroutines)\n");
    fflush(out);
    return;
  }
  for (g = rt->allg, i = 0; g; g = g->allnext) all[i++] = g;
  qsort(all, n, sizeof *all, by_id);
  for (i = 0; i < n; i++) {
    g = all[i];
    int status = atomic_load_explicit(&g->status, memory_order_acquire);
    const char *state = status == GR_G_WAITING ? g->waitreason
                      : status == GR_G_RUNNABLE ? "runnable" : "running";
    fprintf(out, "goroutine %lld [%s]:\n", (long long)g->id, state ? state : "waiting");
    if (status == GR_G_WAITING && g->parkL)
      print_stack(out, g->parkL);
    else if (status == GR_G_RUNNABLE && g->started && g->co)
      print_stack(out, g->co);
    else if (status == GR_G_RUNNABLE)
      fprintf(out, "\t(not started)\n");
    fprintf(out, "\n");
  }
  gr_lock_release(&rt->allglock);
  gr_free(all);
  if (rt->cfg.chaos_seed)        /* what reproduces this schedule */
    fprintf(out, "goroutine-lua: chaos seed %u\n", rt->cfg.chaos_seed);
  fflush(out);
}

/* Go's throw: the first fatal error freezes the scheduler and reports;
** a second one (another thread, the same moment) waits for the exit. */
void gr_fatal(gr_runtime *rt, const char *preface, const char *headline) {
  if (atomic_exchange(&rt->frozen, 1))
    for (;;) pause();
  fflush(stdout);
  if (preface) fprintf(stderr, "%s\n", preface);
  fprintf(stderr, "%s\n\n", headline);
  gr_dump_goroutines(rt, stderr);
  _exit(2);
}
