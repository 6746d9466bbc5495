/*
** runtime.h — the runtime's internal types: goroutines (G), worker threads
** (M), processor slots (P), the runtime itself, and the park/ready
** protocol every blocking object (channels, sync, timers) is built on.
**
** Names follow Go's runtime (runtime/proc.go, runtime/runtime2.go).
*/
#ifndef GR_RUNTIME_H
#define GR_RUNTIME_H

#include <stdint.h>
#include <stdio.h>
#include <lua.h>
#include "goroutine.h"
#include "platform.h"
#include "codec.h"
#include "alloc.h"

typedef struct gr_g gr_g;
typedef struct gr_m gr_m;
typedef struct gr_p gr_p;
typedef struct gr_waiter gr_waiter;
typedef struct gr_select gr_select;

/* ------------------------------------------------------------- waiters */

/*
** A goroutine waiting on one object (a channel, a mutex, a timer...).  It
** lives inside its gr_g (a select has one per case), because the C stack
** of a parked goroutine is gone: everything the waker hands over (a
** message, a success flag) is written here, under the object's lock.
*/
typedef struct gr_waitq { gr_waiter *head, *tail; } gr_waitq;

struct gr_waiter {
  gr_g *g;
  gr_waiter *next, *prev;     /* links in one object's wait queue */
  gr_waitq *q;                /* the queue it is in, NULL when in none */
  gr_msg msg;                 /* send: the value; recv: the value delivered */
  int ok;                     /* set by the waker: 1 delivered, 0 closed */
  gr_select *sel;             /* the select this waiter is a case of, or NULL */
  int caseindex;              /* which case (0-based) */
};

static inline void gr_waitq_push(gr_waitq *q, gr_waiter *w) {
  w->q = q;
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail) q->tail->next = w; else q->head = w;
  q->tail = w;
}

static inline void gr_waitq_remove(gr_waitq *q, gr_waiter *w) {
  if (w->prev) w->prev->next = w->next; else q->head = w->next;
  if (w->next) w->next->prev = w->prev; else q->tail = w->prev;
  w->next = w->prev = NULL;
  w->q = NULL;
}

static inline gr_waiter *gr_waitq_pop(gr_waitq *q) {
  gr_waiter *w = q->head;
  if (w) gr_waitq_remove(q, w);
  return w;
}

/* Take every waiter off q (under its object's lock): returns them chained
** through next, each in no queue (q NULL), for the caller to ready after
** unlocking.  A waiter is queued exactly while its q names the queue. */
static inline gr_waiter *gr_waitq_takeall(gr_waitq *q) {
  gr_waiter *all = q->head;
  for (gr_waiter *w = all; w; w = w->next) w->q = NULL;
  q->head = q->tail = NULL;
  return all;
}

/* Ready every waiter of a list gr_waitq_takeall returned. */
static inline void gr_waitq_readyall(gr_waiter *all);

/* ---------------------------------------------------------- goroutines */

/*
** A park's cancel: under the lock of the object g waits on, take g's
** waiter(s) out if no waker has claimed them yet.  Returns 1 if it did
** (the operation did not happen and nobody will ready g), 0 if a waker got
** there first (the operation happened; the waker readies g).  arg is the
** park's unlockf argument.
*/
typedef int (*gr_cancelf)(gr_g *g, void *arg);

/* A G's abort state: an abort in progress defers gr_ready (gr_park_abort). */
enum gr_abortstate { GR_ABORT_IDLE, GR_ABORT_BUSY, GR_ABORT_WOKEN };

enum gr_gstatus {
  GR_G_RUNNABLE,   /* in a run queue */
  GR_G_RUNNING,    /* on a worker (or on its host thread) */
  GR_G_WAITING,    /* parked on an object; some waiter will ready it */
  GR_G_DEAD
};

/* Why the body coroutine yielded back to its worker. */
enum gr_yieldwhy {
  GR_YIELD_NONE, GR_YIELD_PARK, GR_YIELD_GOSCHED, GR_YIELD_PREEMPT,
  GR_YIELD_CHAOS   /* chaos scheduling: to the back of its worker's queue */
};

struct gr_g {
  int64_t id;
  gr_runtime *rt;
  lua_State *L;           /* the goroutine's own state (the host's, foreign) */
  lua_State *co;          /* coroutine running the body; NULL when foreign */
  /* The coroutine whose Lua code runs now when it is not co: one the body
  ** resumed (libs.c's coroutine.resume/wrap keep it), else NULL.  Written
  ** and read (by the SIGURG handler) on the G's own thread only. */
  _Atomic(lua_State *) running;
  atomic_int status;      /* enum gr_gstatus */
  int foreign;            /* runs on a host thread, never on a worker */
  int host;               /* not a goroutine: a host thread in a C API call */
  size_t mem;             /* bytes its state has allocated */
  struct gr_arena *arena; /* where its state's blocks come from (arena.c) */
  int unlimited;          /* failing: its report is made past the limit */
  int closing;            /* its state is being reset or closed: no
                          ** allocation fails (its finalizers must run) */
  struct gr_done *done;   /* a host waits for this G's end, or NULL */
  int nargs;              /* arguments for the first resume (gr_pcall) */
  int started;            /* body has been resumed once */
  int yieldwhy;           /* enum gr_yieldwhy, set just before yielding */
  const char *waitreason; /* "chan receive", "sync.Mutex.Lock", ... */
  lua_State *parkL;       /* the thread (coroutine) that parked, for dumps */
  gr_g *schedlink;        /* next in a run queue */
  gr_g *allnext, *allprev;/* links in rt->allg */
  gr_msg start;           /* function and arguments, until the first run */
  gr_waiter w;            /* the waiter for single-object waits */
  gr_select *sel;         /* the select it is parked in, or NULL */

  /* Releasing the object's lock is deferred until the body has yielded
  ** (no one may ready the G while its coroutine is still running). */
  void (*unlockf)(void *);
  void *unlockarg;
  /* Calling the park off from outside (gr_park_abort): its cancel
  ** function (with unlockarg), the queue g->w was in when it parked, and
  ** for the main G its continuation, which main_park_k wraps. */
  gr_cancelf cancelf;
  gr_waitq *parkq;
  lua_KFunction parkk;
  lua_KContext parkctx;
  atomic_int abort;       /* enum gr_abortstate */
  const char *abortmsg;   /* set by a successful abort: raised where it parked */

  /* Thread parking, for a G that cannot yield (a foreign G, or one
  ** blocking inside a C call boundary or a user coroutine). */
  atomic_int threadparked;
  int woken;
  gr_lock tplock;
  gr_cond tpcond;
};

/* ---------------------------------------------------- processors, workers */

/* A P's state: who may touch its scheduling fields.  While RUNNING the
** status word also names the M (gr_p_running): see sched.c. */
enum gr_pstatus {
  GR_P_IDLE,      /* in rt->pidle */
  GR_P_SCHED,     /* held by an M in the scheduler */
  GR_P_RUNNING    /* held by an M executing a G: sysmon may hand it off */
};

struct gr_p {
  int id;
  atomic_uint status;     /* enum gr_pstatus; RUNNING: | its M (gr_p_running) */
  gr_lock lock;           /* guards the run queue and runnext */
  gr_g *runnext;          /* readied by the running G: runs next */
  gr_g *qhead, *qtail;    /* local run queue */
  int qlen;
  gr_p *link;             /* next in rt->pidle */
  gr_m *m;                /* the worker holding this P, or NULL */
  uint32_t schedtick;     /* Gs run, to poll the global queue fairly */
  atomic_int retired;     /* id >= nprocs after maxprocs shrank */
  int off;                /* retired and put down, or new: held by no M and
                             on no list (under rt->sched) */
};

struct gr_m {
  gr_runtime *rt;
  gr_thread thread;
  gr_p *p;                /* held P, NULL when idle or in a blocking wait */
  gr_p *nextp;            /* P handed over by wakep, under sched lock */
  gr_m *link;             /* next in rt->midle */
  gr_m *allnext;          /* all Ms, for joining */
  _Atomic(gr_g *) curg;   /* G being executed (read by its signal handler) */
  atomic_ulong execs;     /* Gs executed so far, watched by sysmon */
  atomic_int preempt;     /* sysmon asks the running G to yield */
  unsigned long seen_execs; /* sysmon's last reading of execs */
  double seen_at;         /* and when it changed */
  double asked_at;        /* when sysmon last asked its G to yield */
  gr_cond park;           /* idle M waits here for nextp */
  int spinning;
  int joining;             /* someone has joined or is joining its thread */
  int retired;             /* a spare M that found itself idle: exiting */
  uint64_t rand;          /* steal order */
  int index;              /* Ms started before this one: seeds its chaos */
  uint64_t chaos;         /* chaos PRNG state; 0: chaos is off (chaos.h) */
};

#define GR_MAXPROCS 256
/* The OS threads a runtime may own (gr_config.maxthreads), by default as
** Go's; sysmon.c's monitor and timer.c's thread count with the Ms. */
#define GR_MAXTHREADS_DEFAULT 10000
#define GR_SYSTEM_THREADS 2

struct gr_runtime {
  gr_lock sched;          /* global queue, idle lists, allm, P changes */
  gr_p *allp[GR_MAXPROCS];
  atomic_int nprocs;      /* Ps in use (maxprocs) */
  gr_g *gqhead, *gqtail;  /* global run queue */
  atomic_int gqlen;
  gr_p *pidle;            /* idle Ps */
  atomic_int npidle;
  gr_m *midle;            /* idle Ms */
  int nmidle;
  int nm;                 /* Ms started (spare ones included) */
  int mstarted;           /* Ms ever started: the next M's index */
  gr_m *allm;
  atomic_int nmspinning;
  int npwaiters;          /* Ms back from a blocking wait, needing a P */
  gr_cond pwait;
  atomic_int stopping;

  gr_lock allglock;       /* allg list */
  gr_g *allg;
  atomic_long ngoroutines;
  atomic_long nwaiting;   /* Gs parked (WAITING): deadlock when all are */
  atomic_ulong nreadies;  /* gr_ready calls: progress, for deadlock checks */
  atomic_int frozen;      /* a dump is in progress: start no G */
  atomic_int interrupt;   /* Ctrl-C: raise "interrupted!" in the main G */
  atomic_int interactive; /* the REPL: a deadlock fails the main G's line */
  atomic_long nextid;
  gr_g *main;             /* the main goroutine (id 1) */

  char *path, *cpath;     /* package.path/cpath given to new goroutines */
  gr_config cfg;          /* memlimit, on_error, on_state, chaos_seed (the
                          ** one in effect: 0 when chaos is off),
                          ** maxthreads (in effect: > 0) */
  atomic_long nhostrefs;  /* channel references held by the host */
  /* A host may drop its channels after gr_close: the runtime record stays
  ** until then.  gr_close and each host channel reference pin it; the last
  ** unpin frees it.  Once closed, host calls on a channel give GR_ERROR
  ** (its wait queues may still name the freed goroutines' waiters). */
  atomic_long pins;
  atomic_int closed;

  struct gr_timers *timers;
  struct gr_sysmon *sysmon;
  struct gr_pool *pool;   /* states kept for reuse (pool.c), or NULL */
};

/* ------------------------------------------------------------ protocol */

/* The G that owns state L (any thread of it). */
gr_g *gr_getg(lua_State *L);
/* Whether L is a goroutine's state (or a runtime's main state). */
int gr_hasruntime(lua_State *L);
/* Drop a pin on rt (rt->pins); the last frees the record. */
void gr_runtime_unpin(gr_runtime *rt);

/*
** Park the goroutine running in L until some waker calls gr_ready on it.
** The caller has queued g->w (or its own waiters) on an object whose lock
** it holds; unlockf(arg) releases that lock once the G has stopped.
** Always used as `return gr_park(L, reason, unlockf, arg, k, ctx);` the
** continuation k produces the C function's results when the G resumes.
*/
int gr_park(lua_State *L, const char *reason, void (*unlockf)(void *),
            gr_cancelf cancelf, void *arg, lua_KFunction k, lua_KContext ctx);

/* Cancels for gr_park: g->w queued on the queue it parked on, under the
** lock arg (wait queues of channels and sync objects); a park with nothing
** queued (always cancelled). */
int gr_cancel_waiter(gr_g *g, void *lock);
int gr_cancel_nothing(gr_g *g, void *arg);

/*
** Call off the park of g, a G parked in gr_park, from another thread (the
** REPL's Ctrl-C, a deadlock in the REPL): if its cancel wins, g is readied
** to raise msg (a static string) where it parked, as if its operation had
** raised, and nothing of the operation happened; returns 1.  Returns 0 if g
** is not parked or its waker won (the operation completes as usual).
** Only the main G is ever aborted (its parks keep their continuation).
*/
int gr_park_abort(gr_g *g, const char *msg);

void gr_set_waiting(gr_g *g);
/* A G that will not be woken leaves every wait queue (sched.c); select's
** part of it (chan.c). */
void gr_leave_waitqs(gr_g *g, int locked);
void gr_select_cancel(gr_select *sel, int locked);

/* Make a parked G runnable (or wake its thread).  Any thread, no lock. */
void gr_ready(gr_g *g);

static inline void gr_waitq_readyall(gr_waiter *all) {
  gr_waiter *w;
  while ((w = all) != NULL) {
    all = w->next;
    w->next = w->prev = NULL;
    gr_ready(w->g);
  }
}

/* goroutine.yield(): let others run. */
int gr_gosched(lua_State *L);

/* Unlock helper for gr_park: arg is a gr_lock. */
void gr_unlock_lock(void *lock);

/* How a G ended, for a host waiting in gr_dostring. */
typedef struct gr_done {
  gr_lock lock;
  gr_cond cond;
  int finished;
  int status;             /* gr_pcall: how the body's resume ended */
  int failed;             /* the G ended with an error */
  char *err;              /* its malloc'd message and traceback (NULL if
                          ** there was no memory for the copy) */
} gr_done;

/* Start a new goroutine running the message 'start' (function + args);
** done (or NULL) learns of its end.  Returns its id, -1 without memory. */
int64_t gr_spawn(gr_runtime *rt, gr_msg *start, gr_done *done);

/* The scheduler's side (sched.c). */
int gr_sched_init(gr_runtime *rt, int nprocs);    /* 0: no memory */
void gr_sched_stop(gr_runtime *rt);        /* stop and join every worker */
void gr_sched_free(gr_runtime *rt);        /* then free them */
void gr_sched_reap(gr_runtime *rt);        /* join retired spare Ms */
/* sysmon: m has been inside one C call too long; give its P to another
** M so the other goroutines keep running.  Under rt->sched. */
gr_p *gr_sched_takep(gr_runtime *rt, gr_m *m);
void gr_sched_handoff(gr_runtime *rt, gr_p *p);
void gr_runqput(gr_runtime *rt, gr_g *g, int next);
int gr_setprocs(gr_runtime *rt, int n);    /* the previous count; -1: no memory */

/* Goroutines (g.c). */
gr_g *gr_g_new(gr_runtime *rt);
void gr_g_free(gr_g *g);
void gr_g_execute(gr_m *m, gr_g *g);
void gr_g_register_foreign(gr_runtime *rt, lua_State *L, gr_g *g);

/* A goroutine state's allocator (g.c): counts for its G, from its arena. */
void *gr_state_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Lua's default collector settings (lgc.h), which a reset state gets back. */
#define LUA_GC_PAUSE 200
#define LUA_GC_STEPMUL 100
#define LUA_GC_STEPSIZE 13
/* One full collection that leaves the next well ahead (g.c). */
void gr_state_gc_reset(lua_State *L);

/* States kept for reuse (pool.c).  put: reset g's state and keep it (then
** g->L and g->arena are NULL); 0 if it must be closed instead.  get: give
** g a kept state, if there is one. */
typedef struct gr_pool gr_pool;
void gr_pool_new(gr_runtime *rt);
int gr_pool_put(gr_g *g);
int gr_pool_get(gr_g *g);
void gr_pool_free(gr_runtime *rt);

/* A new goroutine state's libraries, opened on first use (libs.c). */
void gr_libs_setup(lua_State *L);
/* Replace resume and wrap in the coroutine table at idx with versions that
** keep g->running (preemption reaches loops inside user coroutines). */
void gr_libs_track_coroutines(lua_State *L, int idx);

/* The module (lgoroutine.c): open it in L, push the module table. */
void gr_open_module(lua_State *L);
void gr_push_go(lua_State *L);           /* the module's go function */

/* The monitor thread (sysmon.c): preemption of long-running Gs. */
int gr_sysmon_start(gr_runtime *rt);       /* 0: no memory */
void gr_sysmon_stop(gr_runtime *rt);
void gr_sysmon_poke(gr_runtime *rt);      /* something may need a look */
gr_m *gr_curm(void);                      /* this thread's M, or NULL */
void gr_preempt_arm(lua_State *co);       /* a new G's body coroutine */

/* Goroutine dumps (dump.c): deadlock reports and SIGQUIT. */
void gr_dump_goroutines(gr_runtime *rt, FILE *out);
/* A fatal error: stop starting goroutines; print preface (lines, or
** NULL), headline, a blank line and every goroutine on stderr; end the
** process with status 2.  Any thread; no scheduler lock held. */
_Noreturn void gr_fatal(gr_runtime *rt, const char *preface, const char *headline);

/* Timers (timer.c). */
size_t gr_timers_pending(gr_runtime *rt);
int gr_timers_start(gr_runtime *rt);       /* 0: no memory */
void gr_timers_stop(gr_runtime *rt);
int gr_sleep(lua_State *L, double seconds);
int gr_after(lua_State *L, double seconds);
int gr_tick(lua_State *L, double seconds);

/* Objects (chan.c, sync.c): push constructors into the module table. */
void gr_chan_open(lua_State *L);
gr_chan *gr_chan_new(gr_runtime *rt, uint32_t cap);   /* NULL: no memory */
/* A new channel's handle: push it empty first, then adopt the channel (obj.h). */
void gr_chan_pushnew(lua_State *L);
void gr_chan_adopt(lua_State *L, gr_chan *c);
/* Send without blocking from C: 1 sent (m taken), 0 full, -1 closed. */
int gr_chan_offer(gr_chan *c, gr_msg *m);
/* A host thread's blocking send/recv (embed.c): GR_OK, GR_TIMEOUT, GR_CLOSED. */
int gr_chan_host_send(gr_chan *c, gr_msg *m, double timeout);
int gr_chan_host_recv(gr_chan *c, gr_msg *m, double timeout);
gr_runtime *gr_chan_runtime(gr_chan *c);
void gr_chan_retain(gr_chan *c);
void gr_chan_release(gr_chan *c);
long gr_chan_refs(gr_chan *c);
void gr_sync_open(lua_State *L);

#endif
