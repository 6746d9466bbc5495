/*
** sysmon.c — the monitor thread: preempts goroutines that run too long,
** reports a deadlock, and dumps the goroutines on SIGQUIT.
**
** Every tick the monitor looks at each worker (M).  One that has been
** executing the same G for longer than a time slice gets SIGURG; the
** handler, on that worker's own thread, sets a one-shot count hook on the
** running G's coroutine (lua_sethook is safe to call from a signal, as
** lua.c does for Ctrl-C), and the hook yields the G back to its worker,
** which puts it at the back of the global queue.  No hook is installed
** the rest of the time, so Lua code runs at full speed.
**
** While the runtime stops, the monitor signals every running G each tick;
** the hook then yields (or, where the G cannot yield, raises) so the
** workers can be joined.
**
** Deadlock: every goroutine is parked (nwaiting == ngoroutines), no timer
** is pending, the host holds no channel (it could still send), and no
** goroutine was readied between two looks a tick apart (nreadies
** unchanged): nothing is left that could wake any of them.
*/
#include <signal.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "runtime.h"

#define TIME_SLICE 0.010        /* seconds, as Go's forcePreemptNS */
#define BLOCKED_AFTER 0.020     /* in one C call this long: hand its P off */
#define TICK 0.005
#define IDLE_TICK 0.100         /* when no G is running */

/* What sysmon asks of a running G (m->preempt, a bit set). */
#define PREEMPT_YIELD 1
#define PREEMPT_INTERRUPT 2

typedef struct gr_sysmon {
  gr_lock lock;
  gr_cond cond;
  int stop;
  gr_thread thread;
  int suspect;                  /* all parked at the last look */
  unsigned long suspect_readies;
} gr_sysmon;

static atomic_int sigquit_pending;   /* signals are per process; lock-free */

static void on_sigquit(int sig) {
  (void)sig;
  atomic_store(&sigquit_pending, 1);
}

/* Stop starting goroutines, print them all, end the program with status 2. */
static void dump_and_exit(gr_runtime *rt, const char *headline) {
  gr_fatal(rt, NULL, headline);
}

/* The main goroutine's line deadlocked in the REPL (gr_set_interactive):
** fail that line instead of the program; the others stay as they are. */
#define DEADLOCK "all goroutines are asleep - deadlock!"

static void check_deadlock(gr_runtime *rt, gr_sysmon *s) {
  long ng = atomic_load(&rt->ngoroutines);
  long nw = atomic_load(&rt->nwaiting);
  /* A runtime of gr_open has no main goroutine: its host may start more
  ** goroutines at any time, so nothing there is ever a deadlock. */
  if (rt->main == NULL || ng == 0 || nw < ng || atomic_load(&rt->stopping) ||
      atomic_load(&rt->nhostrefs) > 0 || gr_timers_pending(rt) > 0) {
    s->suspect = 0;
    return;
  }
  unsigned long readies = atomic_load(&rt->nreadies);
  if (!s->suspect || readies != s->suspect_readies) {
    s->suspect = 1;
    s->suspect_readies = readies;
    return;
  }
  s->suspect = 0;
  if (atomic_load(&rt->interactive) && gr_park_abort(rt->main, DEADLOCK))
    return;
  dump_and_exit(rt, "fatal error: " DEADLOCK);
}

/*
** ThreadSanitizer delivers a signal only when the thread next enters its
** runtime, which a Lua loop in an uninstrumented liblua never does: under
** TSan every goroutine instead carries a count hook that polls for the
** request (slower, but the suite behaves the same).
*/
#if defined(__SANITIZE_THREAD__)
#define POLL_PREEMPT 1
#define POLL_COUNT 1000
#else
#define POLL_PREEMPT 0
#define POLL_COUNT 0
#endif

static void preempt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  gr_m *m = gr_curm();
  if (!POLL_PREEMPT) lua_sethook(L, NULL, 0, 0);
  int why = m ? atomic_exchange(&m->preempt, 0) : 0;
  if (why == 0) return;
  gr_g *g = gr_getg(L);
  if (why & PREEMPT_INTERRUPT) {         /* Ctrl-C in the main goroutine */
    lua_sethook(L, NULL, 0, 0);
    gr_preempt_arm(L);
    luaL_where(L, 0);                    /* in a hook, level 0 is the code */
    lua_pushliteral(L, "interrupted!");
    lua_concat(L, 2);
    lua_error(L);
  }
  if (L == g->co && lua_isyieldable(L)) {
    g->yieldwhy = GR_YIELD_PREEMPT;
    lua_yield(L, 0);
    return;
  }
  if (atomic_load(&g->rt->stopping))
    luaL_error(L, "goroutine: runtime stopped");
  /* Cannot yield here (inside a C call boundary): leave the request
  ** standing, so sysmon hands this M's P to another M instead. */
  atomic_fetch_or(&m->preempt, why);
}

void gr_preempt_arm(lua_State *co) {
  if (POLL_PREEMPT) lua_sethook(co, preempt_hook, LUA_MASKCOUNT, POLL_COUNT);
}

static void on_sigurg(int sig) {
  (void)sig;
  gr_m *m = gr_curm();
  if (m == NULL || POLL_PREEMPT) return;
  gr_g *g = atomic_load_explicit(&m->curg, memory_order_relaxed);
  if (g == NULL || g->co == NULL) return;
  lua_State *L = atomic_load_explicit(&g->running, memory_order_relaxed);
  if (L == NULL) L = g->co;
  /* lua_sethook walks every call frame of L (ldebug.c's settraps), so it
  ** costs time in proportion to the depth of the stack: some 10 ms at a
  ** million frames, more than sysmon's tick.  Sysmon asks again every
  ** tick until the hook has run; a handler that armed the hook again each
  ** time would still be walking when the next request came, and the G
  ** would never run another instruction.  One armed hook is enough. */
  if (lua_gethook(L) == preempt_hook) return;
  lua_sethook(L, preempt_hook, LUA_MASKCOUNT, 1);
}

static void install_handlers(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigurg;
  sa.sa_flags = SA_RESTART;      /* a preempted read() just goes on */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, NULL);
  /* SIGQUIT dumps the goroutines, as in Go, unless the host handles it
  ** (a shell's background job starts with it ignored: Go catches it too). */
  if (sigaction(SIGQUIT, NULL, &old) == 0 &&
      (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
    sa.sa_handler = on_sigquit;
    sigaction(SIGQUIT, &sa, NULL);
  }
}

/*
** Ctrl-C while the main goroutine waits (channel, select, lock, sleep):
** call its park off, so its operation raises "interrupted!" having done
** nothing.  If its waker won the race, the operation completed: the
** request stands and is delivered once the main G runs.  (Outside the
** scheduler lock: a cancel takes the lock of the object waited on.)
*/
static void interrupt_parked_main(gr_runtime *rt) {
  gr_g *g = rt->main;
  if (g == NULL || atomic_load(&g->status) != GR_G_WAITING) return;
  if (gr_park_abort(g, "interrupted!")) atomic_store(&rt->interrupt, 0);
}

/*
** One look at every M; returns whether any was running a G.  An M whose G
** has run a time slice is asked to yield.  If it was asked at the last look
** and its hook has still not run, the G is not executing Lua: it sits in a
** C call (io.read, os.execute, a C module), and its P goes to another M so
** the other goroutines keep running (Go's sysmon retake of a P in syscall).
*/
static int check_workers(gr_runtime *rt, double now) {
  int busy = 0;
  int stopping = atomic_load(&rt->stopping);
  gr_p *handoff[8];
  int nhandoff = 0;
  int interrupt = atomic_load(&rt->interrupt);
  gr_lock_acquire(&rt->sched);
  for (gr_m *m = rt->allm; m; m = m->allnext) {
    unsigned long execs = atomic_load_explicit(&m->execs, memory_order_relaxed);
    gr_g *curg = atomic_load_explicit(&m->curg, memory_order_relaxed);
    int running = curg != NULL;
    busy |= running;
    if (interrupt && curg == rt->main) {
      atomic_store(&rt->interrupt, 0);
      interrupt = 0;
      atomic_fetch_or(&m->preempt, PREEMPT_INTERRUPT);
      pthread_kill(m->thread, SIGURG);
      continue;
    }
    if (execs != m->seen_execs || !running) {
      m->seen_execs = execs;
      m->seen_at = now;
      m->asked_at = 0;
      continue;
    }
    if (m->asked_at > 0 && atomic_load(&m->preempt) && !stopping &&
        now - m->seen_at >= BLOCKED_AFTER && nhandoff < 8) {
      gr_p *p = gr_sched_takep(rt, m);
      if (p) handoff[nhandoff++] = p;
    }
    if (stopping || now - m->seen_at >= TIME_SLICE) {
      atomic_fetch_or(&m->preempt, PREEMPT_YIELD);
      pthread_kill(m->thread, SIGURG);
      m->asked_at = now;
    }
  }
  gr_lock_release(&rt->sched);
  for (int i = 0; i < nhandoff; i++) gr_sched_handoff(rt, handoff[i]);
  if (interrupt) interrupt_parked_main(rt);
  return busy;
}

static void *sysmon_main(void *arg) {
  gr_runtime *rt = (gr_runtime *)arg;
  gr_sysmon *s = rt->sysmon;
  double tick = TICK;
  gr_lock_acquire(&s->lock);
  while (!s->stop) {
    gr_cond_waituntil(&s->cond, &s->lock, gr_now() + tick);
    if (s->stop) break;
    gr_lock_release(&s->lock);
    if (atomic_load(&sigquit_pending)) dump_and_exit(rt, "SIGQUIT: quit");
    tick = check_workers(rt, gr_now()) || atomic_load(&rt->stopping) ||
           atomic_load(&rt->interrupt) ? TICK : IDLE_TICK;
    gr_sched_reap(rt);
    check_deadlock(rt, s);
    gr_lock_acquire(&s->lock);
  }
  gr_lock_release(&s->lock);
  return NULL;
}

int gr_sysmon_start(gr_runtime *rt) {
  gr_sysmon *s = (gr_sysmon *)gr_calloc(1, sizeof *s);
  if (s == NULL) return 0;
  gr_lock_init(&s->lock);
  gr_cond_init(&s->cond);
  rt->sysmon = s;
  install_handlers();
  if (gr_thread_start(&s->thread, sysmon_main, rt) != 0) abort();
  return 1;
}

void gr_sysmon_poke(gr_runtime *rt) {
  gr_sysmon *s = rt->sysmon;
  gr_lock_acquire(&s->lock);
  gr_cond_signal(&s->cond);
  gr_lock_release(&s->lock);
}

void gr_sysmon_stop(gr_runtime *rt) {
  gr_sysmon *s = rt->sysmon;
  gr_lock_acquire(&s->lock);
  s->stop = 1;
  gr_cond_signal(&s->cond);
  gr_lock_release(&s->lock);
  gr_thread_join(s->thread);
  gr_cond_destroy(&s->cond);
  gr_lock_destroy(&s->lock);
  gr_free(s);
  rt->sysmon = NULL;
}
