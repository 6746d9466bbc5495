/*
** sched.c — the M:N scheduler: run queues, work stealing, parking idle
** workers, and the park/ready protocol.
**
** Invariants:
** - A G is in at most one run queue (a P's runnext, a P's local queue, or
**   the global queue), and only while its status is RUNNABLE.
** - A P is held by exactly one M, or is in rt->pidle (idle), or is off
**   (p->off: held by none and on no list).  A P is off only while retired
**   (id >= nprocs) or before it is first used; rt->pidle never holds a
**   retired P.  A P retired while held (by an M, or on its way to one) is
**   put down as off by its holder, so growing maxprocs again puts exactly
**   the off Ps on rt->pidle.  Only the M holding a P pops from its local
**   queue without stealing; any M may steal under the P's lock.
** - A G's coroutine is resumed only by the M that took it from a run queue.
**   A G that parks by yielding has its object lock released (unlockf) only
**   after lua_resume has returned, so no waker can ready it while its Lua
**   stack is live.
** - No Lua code and no __gc runs while a scheduler lock (rt->sched, a P's
**   lock) is held: those locks guard queues only.
** - A P running a G has the status GR_P_RUNNING tagged with that M's index
**   (p_running).  Two Ms race to end that state: sysmon taking the P from
**   an M stuck in a C call, and the M itself when its G stops.  Each does a
**   compare-and-swap from p_running(m); the tag keeps the M from winning
**   once sysmon has given the P to another M that is running a G on it
**   (with a bare RUNNING the old M took the P back from under the new one,
**   and both went on scheduling on it).
** - Lost wake-ups are prevented Dekker-style: a waker publishes work and
**   then reads npidle/nmspinning; an M going idle publishes npidle (and
**   drops nmspinning) and then re-reads every queue.  Both sides fence.
**
** Lock order: an object's lock (channel, mutex...) -> rt->sched -> a P's lock
** (never two P locks at once).  g->tplock is a leaf.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <lauxlib.h>
#include "runtime.h"
#include "chaos.h"

static _Thread_local gr_m *tls_m;   /* the worker running on this thread */

gr_m *gr_curm(void) { return tls_m; }

#define SPIN_ROUNDS 64
#define GLOBAL_POLL_TICKS 61

static void startm(gr_runtime *rt, gr_p *p, int spinning);

/* The status of a P that m is running a G on (Ms get distinct indexes). */
static inline unsigned p_running(const gr_m *m) {
  return GR_P_RUNNING | (unsigned)m->index << 2;
}

/* A full barrier (an RMW on a private word: ThreadSanitizer models that,
** not atomic_thread_fence). */
static atomic_int fence_word;
static inline void fence(void) { atomic_fetch_add(&fence_word, 0); }

static uint32_t fastrand(gr_m *m) {
  m->rand ^= m->rand << 13;
  m->rand ^= m->rand >> 7;
  m->rand ^= m->rand << 17;
  return (uint32_t)(m->rand >> 16);
}

/* ---------------------------------------------------------- run queues */

static void localq_push(gr_p *p, gr_g *g) {
  g->schedlink = NULL;
  if (p->qtail) p->qtail->schedlink = g; else p->qhead = g;
  p->qtail = g;
  p->qlen++;
}

static gr_g *localq_pop(gr_p *p) {
  gr_g *g = p->qhead;
  if (g) {
    p->qhead = g->schedlink;
    if (!p->qhead) p->qtail = NULL;
    g->schedlink = NULL;
    p->qlen--;
  }
  return g;
}

/* Chaos: take the i-th G of the local queue (i < qlen). */
static gr_g *localq_take(gr_p *p, int i) {
  gr_g **link = &p->qhead, *prev = NULL;
  while (i-- > 0) { prev = *link; link = &prev->schedlink; }
  gr_g *g = *link;
  *link = g->schedlink;
  if (p->qtail == g) p->qtail = prev;
  g->schedlink = NULL;
  p->qlen--;
  return g;
}

static int p_haswork(gr_p *p) {
  gr_lock_acquire(&p->lock);
  int has = p->qlen > 0 || p->runnext != NULL;
  gr_lock_release(&p->lock);
  return has;
}

/* Under rt->sched. */
static void globq_push(gr_runtime *rt, gr_g *g) {
  g->schedlink = NULL;
  if (rt->gqtail) rt->gqtail->schedlink = g; else rt->gqhead = g;
  rt->gqtail = g;
  atomic_fetch_add(&rt->gqlen, 1);
}

/* Under rt->sched: take one G, and move a fair share more to p. */
static gr_g *globq_get(gr_runtime *rt, gr_p *p) {
  gr_g *g = rt->gqhead;
  if (!g) return NULL;
  int n = atomic_load(&rt->gqlen) / atomic_load(&rt->nprocs) + 1;
  if (n > 64) n = 64;
  rt->gqhead = g->schedlink;
  int taken = 1;
  if (p) {
    gr_lock_acquire(&p->lock);
    while (taken < n && rt->gqhead) {
      gr_g *x = rt->gqhead;
      rt->gqhead = x->schedlink;
      localq_push(p, x);
      taken++;
    }
    gr_lock_release(&p->lock);
  }
  if (!rt->gqhead) rt->gqtail = NULL;
  atomic_fetch_sub(&rt->gqlen, taken);
  g->schedlink = NULL;
  return g;
}

/* Chaos, before findrunnable's usual order: sometimes a G from the global
** queue, sometimes any G of the local queue; NULL: take the usual one. */
static __attribute__((cold, noinline)) gr_g *chaos_runqget(gr_m *m, gr_p *p) {
  gr_runtime *rt = m->rt;
  gr_g *g = NULL;
  if (gr_chaos_one_in(m, 32) && atomic_load(&rt->gqlen) > 0) {
    gr_lock_acquire(&rt->sched);
    g = globq_get(rt, p);
    gr_lock_release(&rt->sched);
    if (g) return g;
  }
  gr_lock_acquire(&p->lock);
  if (p->qlen > 0 && gr_chaos_one_in(m, 2))
    g = localq_take(p, (int)(gr_chaos_rand(m) % (uint32_t)p->qlen));
  gr_lock_release(&p->lock);
  return g;
}

/* Wake an idle M with an idle P when there may be work for it. */
static void wakep(gr_runtime *rt) {
  fence();
  if (atomic_load(&rt->npidle) == 0 || atomic_load(&rt->nmspinning) != 0)
    return;
  int zero = 0;
  if (!atomic_compare_exchange_strong(&rt->nmspinning, &zero, 1))
    return;   /* someone else is starting a spinner */
  gr_lock_acquire(&rt->sched);
  gr_p *p = rt->pidle;
  if (p == NULL || atomic_load(&rt->stopping)) {
    gr_lock_release(&rt->sched);
    atomic_fetch_sub(&rt->nmspinning, 1);
    return;
  }
  rt->pidle = p->link;
  atomic_fetch_sub(&rt->npidle, 1);
  atomic_store(&p->status, GR_P_SCHED);
  gr_m *m = rt->midle;
  if (m) {
    rt->midle = m->link;
    rt->nmidle--;
    p->m = m;
    m->nextp = p;
    m->spinning = 1;
    gr_cond_signal(&m->park);
    gr_lock_release(&rt->sched);
  } else {
    gr_lock_release(&rt->sched);
    startm(rt, p, 1);
  }
}

void gr_runqput(gr_runtime *rt, gr_g *g, int next) {
  gr_m *m = tls_m;
  atomic_store_explicit(&g->status, GR_G_RUNNABLE, memory_order_relaxed);
  if (m && m->rt == rt && m->p) {
    gr_p *p = m->p;
    gr_g *kicked = NULL;
    if (GR_UNLIKELY(m->chaos)) next = gr_chaos_rand(m) & 1;
    gr_lock_acquire(&p->lock);
    if (next) {
      kicked = p->runnext;
      p->runnext = g;
      if (kicked) localq_push(p, kicked);
    } else {
      localq_push(p, g);
    }
    gr_lock_release(&p->lock);
    /* A G in runnext runs as soon as the current one blocks: waking a
    ** thread for it would only bounce it between cores. */
    if (!next || kicked) wakep(rt);
  } else {
    gr_lock_acquire(&rt->sched);
    globq_push(rt, g);
    gr_lock_release(&rt->sched);
    wakep(rt);
  }
}

/* Take half of victim's queue into m's P (under chaos, a random share);
** returns one G to run, or NULL.  Never holds two P locks at once (two Ms
** may steal from each other). */
static gr_g *runq_steal(gr_m *m, gr_p *victim, int take_runnext) {
  gr_p *p = m->p;
  gr_g *g = NULL, *batch = NULL, **tail = &batch;
  gr_lock_acquire(&victim->lock);
  int n = victim->qlen - victim->qlen / 2;
  if (GR_UNLIKELY(m->chaos)) {
    if (victim->qlen > 0) n = 1 + (int)(gr_chaos_rand(m) % (uint32_t)victim->qlen);
    take_runnext |= gr_chaos_one_in(m, 4);
  }
  if (n > 0) {
    g = localq_pop(victim);
    while (--n > 0) {
      *tail = localq_pop(victim);
      tail = &(*tail)->schedlink;
    }
  } else if (take_runnext && victim->runnext) {
    g = victim->runnext;
    victim->runnext = NULL;
  }
  gr_lock_release(&victim->lock);
  if (batch) {
    gr_lock_acquire(&p->lock);
    while (batch) {
      gr_g *next = batch->schedlink;
      localq_push(p, batch);
      batch = next;
    }
    gr_lock_release(&p->lock);
  }
  return g;
}

static uint32_t gcd(uint32_t a, uint32_t b) {
  while (b) { uint32_t t = a % b; a = b; b = t; }
  return a;
}

static gr_g *steal_work(gr_m *m, int take_runnext) {
  gr_runtime *rt = m->rt;
  int n = atomic_load(&rt->nprocs);
  uint32_t start = fastrand(m), stride = 1;
  if (GR_UNLIKELY(m->chaos))      /* any stride coprime to n: a random order */
    for (stride = 1 + gr_chaos_rand(m) % (uint32_t)n; gcd(stride, (uint32_t)n) != 1; )
      stride = stride % (uint32_t)n + 1;
  for (int i = 0; i < n; i++) {
    gr_p *victim = rt->allp[(start + (uint32_t)i * stride) % (uint32_t)n];
    if (victim == m->p || victim == NULL) continue;
    gr_g *g = runq_steal(m, victim, take_runnext);
    if (g) return g;
  }
  return NULL;
}

/* ------------------------------------------------------------- workers */

static void stop_spinning(gr_m *m) {
  if (m->spinning) {
    m->spinning = 0;
    atomic_fetch_sub(&m->rt->nmspinning, 1);
  }
}

/* A spinning M found work.  If it was the last spinner, start another:
** there may be more work than this M can take (Go's resetspinning). */
static void found_work(gr_m *m) {
  if (m->spinning) {
    m->spinning = 0;
    if (atomic_fetch_sub(&m->rt->nmspinning, 1) == 1) wakep(m->rt);
  }
}

/* Under rt->sched: put p on the idle list, or hand it to an M that came
** back from a blocking wait and needs one. */
static void pidle_put(gr_runtime *rt, gr_p *p) {
  p->m = NULL;
  atomic_store(&p->status, GR_P_IDLE);
  /* Retired while it was held (maxprocs shrank meanwhile): it goes off,
  ** not on the list, where a later grow would queue it a second time. */
  if ((p->off = atomic_load(&p->retired) != 0)) return;
  p->link = rt->pidle;
  rt->pidle = p;
  atomic_fetch_add(&rt->npidle, 1);
  if (rt->npwaiters > 0) gr_cond_signal(&rt->pwait);
}

/* Under rt->sched: a retired P gives its queue to the global queue. */
static void retire_p(gr_runtime *rt, gr_p *p) {
  gr_lock_acquire(&p->lock);
  gr_g *g;
  if (p->runnext) { globq_push(rt, p->runnext); p->runnext = NULL; }
  while ((g = localq_pop(p)) != NULL) globq_push(rt, g);
  gr_lock_release(&p->lock);
  p->m = NULL;
  p->off = 1;
}

static int any_local_work(gr_runtime *rt) {
  int n = atomic_load(&rt->nprocs);
  for (int i = 0; i < n; i++)
    if (rt->allp[i] && p_haswork(rt->allp[i])) return 1;
  return 0;
}

/* Find a G to run, parking the M while there is none.  NULL: stop. */
static gr_g *findrunnable(gr_m *m) {
  gr_runtime *rt = m->rt;
  gr_g *g;
top:
  if (atomic_load(&rt->stopping)) return NULL;
  while (atomic_load(&rt->frozen)) sched_yield();   /* a dump, then exit */
  gr_p *p = m->p;
  if (p == NULL) {               /* sysmon gave it away during a long C call */
    gr_lock_acquire(&rt->sched);
    goto idle;
  }
  if (p->retired) {
    gr_lock_acquire(&rt->sched);
    retire_p(rt, p);
    m->p = NULL;
    goto idle;
  }
  if (GR_UNLIKELY(m->chaos) && (g = chaos_runqget(m, p)) != NULL) return g;
  p->schedtick++;
  if (p->schedtick % GLOBAL_POLL_TICKS == 0 && atomic_load(&rt->gqlen) > 0) {
    gr_lock_acquire(&rt->sched);
    g = globq_get(rt, p);
    gr_lock_release(&rt->sched);
    if (g) return g;
  }
  gr_lock_acquire(&p->lock);
  g = p->runnext;
  if (g) p->runnext = NULL; else g = localq_pop(p);
  gr_lock_release(&p->lock);
  if (g) return g;
  for (int round = 0; round < SPIN_ROUNDS; round++) {
    if (atomic_load(&rt->gqlen) > 0) {
      gr_lock_acquire(&rt->sched);
      g = globq_get(rt, p);
      gr_lock_release(&rt->sched);
      if (g) { found_work(m); return g; }
    }
    if (!m->spinning) {
      m->spinning = 1;
      atomic_fetch_add(&rt->nmspinning, 1);
    }
    g = steal_work(m, round == SPIN_ROUNDS - 1);
    if (g) { found_work(m); return g; }
    if (atomic_load(&rt->stopping)) return NULL;
    sched_yield();
  }

  /* Nothing anywhere: give the P back and park. */
  gr_lock_acquire(&rt->sched);
  if (atomic_load(&rt->gqlen) > 0) {
    g = globq_get(rt, p);
    gr_lock_release(&rt->sched);
    found_work(m);
    return g;
  }
  pidle_put(rt, p);
  m->p = NULL;
idle:
  /* here rt->sched is held and m has no P */
  stop_spinning(m);
  gr_lock_release(&rt->sched);
  fence();
  if (any_local_work(rt) || atomic_load(&rt->gqlen) > 0) {
    gr_lock_acquire(&rt->sched);
    gr_p *q = rt->pidle;
    if (q) {
      rt->pidle = q->link;
      atomic_fetch_sub(&rt->npidle, 1);
      atomic_store(&q->status, GR_P_SCHED);
      q->m = m;
      m->p = q;
      gr_lock_release(&rt->sched);
      goto top;
    }
    gr_lock_release(&rt->sched);
  }
  gr_lock_acquire(&rt->sched);
  if (rt->nmidle >= atomic_load(&rt->nprocs)) {   /* enough idle: retire */
    m->retired = 1;
    rt->nm--;
    gr_lock_release(&rt->sched);
    return NULL;
  }
  m->link = rt->midle;
  rt->midle = m;
  rt->nmidle++;
  while (m->nextp == NULL && !atomic_load(&rt->stopping))
    gr_cond_wait(&m->park, &rt->sched);
  if (m->nextp == NULL) {          /* stopping */
    gr_lock_release(&rt->sched);
    return NULL;
  }
  m->p = m->nextp;
  m->nextp = NULL;
  gr_lock_release(&rt->sched);
  goto top;
}

static void *m_main(void *arg) {
  gr_m *m = (gr_m *)arg;
  tls_m = m;
  gr_chaos_m = m->chaos ? m : NULL;
  gr_g *g;
  while ((g = findrunnable(m)) != NULL) {
    found_work(m);
    atomic_store(&m->preempt, 0);
    atomic_store(&m->p->status, p_running(m));
    gr_g_execute(m, g);
    /* Back in the scheduler: the P is ours again, unless sysmon handed
    ** it to another M while the G sat in a long C call. */
    unsigned running = p_running(m);
    if (m->p && !atomic_compare_exchange_strong(&m->p->status, &running, GR_P_SCHED))
      m->p = NULL;
  }
  gr_lock_acquire(&m->rt->sched);
  if (m->p) { pidle_put(m->rt, m->p); m->p = NULL; }
  gr_lock_release(&m->rt->sched);
  tls_m = NULL;
  gr_chaos_m = NULL;
  return NULL;
}

/* Start a new M holding p.  Its thread is created under rt->sched: an M
** on rt->allm always has its thread handle, which gr_sched_stop may join
** at any moment (it did join a handle pthread_create had not yet written,
** when gr_close followed a wakep closely). */
static void startm(gr_runtime *rt, gr_p *p, int spinning) {
  /* Not gr_calloc: like the thread it comes with, an M that cannot be had
  ** is fatal (the runtime cannot go on without workers). */
  gr_m *m = (gr_m *)calloc(1, sizeof *m);
  if (m == NULL) abort();
  m->rt = rt;
  m->p = p;
  m->spinning = spinning;
  m->rand = (uint64_t)(uintptr_t)m * 0x9E3779B97F4A7C15ull | 1;
  gr_cond_init(&m->park);
  gr_lock_acquire(&rt->sched);
  /* gr_sched_stop joins the Ms on allm under this lock after setting
  ** stopping: an M started after that would never be joined. */
  if (atomic_load(&rt->stopping)) {
    pidle_put(rt, p);
    gr_lock_release(&rt->sched);
    if (spinning) atomic_fetch_sub(&rt->nmspinning, 1);   /* as wakep's own bail-out */
    gr_cond_destroy(&m->park);
    free(m);
    return;
  }
  /* Go's checkmcount: one thread past the limit is fatal, never a wait
  ** (the threads that hold the others may be waiting for this one). */
  if (rt->nm + GR_SYSTEM_THREADS >= rt->cfg.maxthreads) {
    char line[64];
    snprintf(line, sizeof line, "runtime: program exceeds %d-thread limit",
             rt->cfg.maxthreads);
    gr_lock_release(&rt->sched);
    gr_fatal(rt, line, "fatal error: thread exhaustion");
  }
  p->m = m;
  atomic_store(&p->status, GR_P_SCHED);
  m->allnext = rt->allm;
  rt->allm = m;
  rt->nm++;
  m->index = rt->mstarted++;
  gr_chaos_seed_m(m, rt->cfg.chaos_seed, m->index);
  /* The thread starts before the lock is released: once m is on allm,
  ** gr_sched_stop may join m->thread, which must be set by then (it was
  ** still 0 when a runtime closed as a worker started another: TSan's
  ** CHECK failed in pthread_join, in shutdown_test's
  ** close_before_anything_ran).  m_main waits for the lock if it needs it. */
  int err = gr_thread_start(&m->thread, m_main, m);
  if (err != 0) {                   /* as Go's newosproc: fatal, said so */
    char lines[192];
    rt->allm = m->allnext;          /* no thread to signal or join */
    rt->nm--;
    snprintf(lines, sizeof lines,
             "runtime: failed to create new OS thread (have %d already; errno=%d)%s",
             rt->nm + GR_SYSTEM_THREADS, err,
             err == EAGAIN ? "\nruntime: may need to increase max user processes (ulimit -u)" : "");
    gr_lock_release(&rt->sched);
    gr_fatal(rt, lines, "fatal error: newosproc");
  }
  gr_lock_release(&rt->sched);
}

static gr_p *p_new(int id) {
  gr_p *p = (gr_p *)gr_calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->id = id;
  p->off = 1;            /* until pidle_put */
  gr_lock_init(&p->lock);
  return p;
}

int gr_sched_init(gr_runtime *rt, int nprocs) {
  if (nprocs < 1) nprocs = 1;
  if (nprocs > GR_MAXPROCS) nprocs = GR_MAXPROCS;
  atomic_store(&rt->nprocs, nprocs);
  gr_cond_init(&rt->pwait);
  for (int i = 0; i < nprocs; i++) {
    if ((rt->allp[i] = p_new(i)) == NULL) {
      gr_sched_free(rt);
      return 0;
    }
  }
  /* Every P starts idle; wakep hands them to Ms as work appears. */
  gr_lock_acquire(&rt->sched);
  for (int i = nprocs - 1; i >= 0; i--) pidle_put(rt, rt->allp[i]);
  gr_lock_release(&rt->sched);
  return 1;
}

int gr_setprocs(gr_runtime *rt, int n) {
  if (n > GR_MAXPROCS) n = GR_MAXPROCS;
  gr_lock_acquire(&rt->sched);
  int old = atomic_load(&rt->nprocs);
  if (n == old) { gr_lock_release(&rt->sched); return old; }
  if (n > old) {
    for (int i = old; i < n; i++) {      /* every P first: all or nothing */
      if (rt->allp[i] == NULL && (rt->allp[i] = p_new(i)) == NULL) {
        gr_lock_release(&rt->sched);
        return -1;
      }
    }
    /* A P that is off (put down while retired, or new) goes idle; one
    ** still held, or on its way to an M, just stays with its holder. */
    for (int i = old; i < n; i++) {
      gr_p *p = rt->allp[i];
      p->retired = 0;
      if (p->off) pidle_put(rt, p);
    }
  } else {
    for (int i = n; i < old; i++) rt->allp[i]->retired = 1;
    gr_p **pp = &rt->pidle;           /* idle retired Ps leave the list */
    while (*pp) {
      if ((*pp)->retired) {
        (*pp)->off = 1;
        *pp = (*pp)->link;
        atomic_fetch_sub(&rt->npidle, 1);
      } else {
        pp = &(*pp)->link;
      }
    }
  }
  atomic_store(&rt->nprocs, n);
  gr_lock_release(&rt->sched);
  wakep(rt);
  return old;
}

void gr_sched_stop(gr_runtime *rt) {
  atomic_store(&rt->stopping, 1);
  gr_sysmon_poke(rt);     /* it preempts the Gs still running */
  gr_lock_acquire(&rt->allglock);   /* and Gs blocked on their thread wake */
  for (gr_g *g = rt->allg; g; g = g->allnext) {
    if (g->foreign) continue;
    gr_lock_acquire(&g->tplock);
    if (g->threadparked && !g->woken) {
      g->woken = 2;
      gr_cond_signal(&g->tpcond);
    }
    gr_lock_release(&g->tplock);
  }
  gr_lock_release(&rt->allglock);
  gr_lock_acquire(&rt->sched);
  for (gr_m *m = rt->allm; m; m = m->allnext) gr_cond_signal(&m->park);
  gr_cond_broadcast(&rt->pwait);
  /* Join every M; the list stays intact for sysmon, which keeps
  ** preempting the Gs still running until they have all stopped. */
  for (;;) {
    gr_m *m = rt->allm;
    while (m && m->joining) m = m->allnext;
    if (m == NULL) break;
    m->joining = 1;
    gr_lock_release(&rt->sched);
    gr_thread_join(m->thread);
    gr_lock_acquire(&rt->sched);
  }
  gr_lock_release(&rt->sched);
}

/* sysmon: join the spare Ms that retired and free them, so that allm
** holds the Ms that exist, not every M ever started (a program that keeps
** blocking in C calls starts spare Ms all its life).  Nothing outside
** rt->sched keeps a pointer to another M: gr_sched_stop joins only Ms
** that no one else joins (m->joining), and a retired M is on no list but
** allm. */
void gr_sched_reap(gr_runtime *rt) {
  gr_m *done[8];
  int n = 0;
  gr_lock_acquire(&rt->sched);
  for (gr_m *m = rt->allm; m && n < 8; m = m->allnext) {
    if (m->retired && !m->joining) {
      m->joining = 1;
      done[n++] = m;
    }
  }
  gr_lock_release(&rt->sched);
  if (n == 0) return;
  for (int i = 0; i < n; i++) gr_thread_join(done[i]->thread);
  gr_lock_acquire(&rt->sched);
  for (gr_m **link = &rt->allm; *link; ) {
    gr_m *m = *link;
    int i = 0;
    while (i < n && done[i] != m) i++;
    if (i < n) *link = m->allnext; else link = &m->allnext;
  }
  gr_lock_release(&rt->sched);
  for (int i = 0; i < n; i++) {
    gr_cond_destroy(&done[i]->park);
    free(done[i]);
  }
}

/* After gr_sched_stop and the monitor's end: free Ms and Ps. */
void gr_sched_free(gr_runtime *rt) {
  gr_m *m = rt->allm;
  rt->allm = NULL;
  while (m) {
    gr_m *next = m->allnext;
    gr_cond_destroy(&m->park);
    gr_free(m);
    m = next;
  }
  for (int i = 0; i < GR_MAXPROCS; i++) {
    if (rt->allp[i]) {
      gr_lock_destroy(&rt->allp[i]->lock);
      gr_free(rt->allp[i]);
      rt->allp[i] = NULL;
    }
  }
  gr_cond_destroy(&rt->pwait);
}

gr_p *gr_sched_takep(gr_runtime *rt, gr_m *m) {
  for (int i = 0; i < GR_MAXPROCS && rt->allp[i]; i++) {
    gr_p *p = rt->allp[i];
    unsigned running = p_running(m);
    if (p->m == m && atomic_compare_exchange_strong(&p->status, &running, GR_P_SCHED)) {
      p->m = NULL;
      return p;
    }
  }
  return NULL;
}

/* ------------------------------------------------------- park / ready */

void gr_unlock_lock(void *lock) { gr_lock_release((gr_lock *)lock); }

/* Give up this M's P for a thread-blocking wait (Go's handoffp). */
static void handoffp(gr_m *m) {
  gr_p *p = m->p;
  m->p = NULL;
  stop_spinning(m);
  unsigned running = p_running(m);
  if (atomic_compare_exchange_strong(&p->status, &running, GR_P_SCHED))
    gr_sched_handoff(m->rt, p);   /* else sysmon has handed it off already */
}

/* Give p (held, not running anything) to an M if there is work for it,
** else to the idle list. */
void gr_sched_handoff(gr_runtime *rt, gr_p *p) {
  if (p_haswork(p) || atomic_load(&rt->gqlen) > 0) {
    gr_lock_acquire(&rt->sched);
    gr_m *idle = rt->midle;
    if (idle) {
      rt->midle = idle->link;
      rt->nmidle--;
      idle->nextp = p;
      p->m = idle;
      gr_cond_signal(&idle->park);
      gr_lock_release(&rt->sched);
    } else {
      gr_lock_release(&rt->sched);
      startm(rt, p, 0);
    }
  } else {
    gr_lock_acquire(&rt->sched);
    pidle_put(rt, p);
    gr_lock_release(&rt->sched);
    wakep(rt);
  }
}

/* After a thread-blocking wait: wait for an idle P (Go's exitsyscall). */
static void acquirep(gr_m *m) {
  gr_runtime *rt = m->rt;
  gr_lock_acquire(&rt->sched);
  while (rt->pidle == NULL && !atomic_load(&rt->stopping)) {
    rt->npwaiters++;
    gr_cond_wait(&rt->pwait, &rt->sched);
    rt->npwaiters--;
  }
  gr_p *p = rt->pidle;
  if (p) {
    rt->pidle = p->link;
    atomic_fetch_sub(&rt->npidle, 1);
    atomic_store(&p->status, p_running(m));   /* its G goes on running */
    p->m = m;
  }
  m->p = p;
  gr_lock_release(&rt->sched);
  /* With no P (stopping) the M finishes its G and exits: findrunnable
  ** checks 'stopping' before touching m->p. */
}

/* Block this thread until g is readied; returns 0 if woken because the
** runtime is stopping instead. */
static int park_thread(gr_g *g) {
  gr_m *m = tls_m;
  gr_g *curg = NULL;
  if (m && m->rt == g->rt) {
    /* Blocked in C: nothing for sysmon to preempt. */
    curg = atomic_exchange(&m->curg, NULL);
    if (m->p) handoffp(m);
  }
  gr_lock_acquire(&g->tplock);
  while (!g->woken) gr_cond_wait(&g->tpcond, &g->tplock);
  int readied = g->woken == 1;
  g->woken = 0;
  g->threadparked = 0;
  gr_lock_release(&g->tplock);
  if (m && m->rt == g->rt) {
    acquirep(m);
    atomic_store(&m->curg, curg);
  }
  return readied;
}

/* The main G's parks resume here: an abort (gr_park_abort) raises its
** message where the G parked, else the park's own continuation runs. */
static int main_park_k(lua_State *L, int status, lua_KContext ctx) {
  gr_g *g = (gr_g *)ctx;
  const char *abort = g->abortmsg;
  if (abort != NULL) {
    g->abortmsg = NULL;
    return luaL_error(L, "%s", abort);
  }
  return g->parkk(L, status, g->parkctx);
}

int gr_park(lua_State *L, const char *reason, void (*unlockf)(void *),
            gr_cancelf cancelf, void *arg, lua_KFunction k, lua_KContext ctx) {
  gr_g *g = gr_getg(L);
  if (atomic_load(&g->rt->stopping)) {
    /* The runtime is shutting down: nobody would ever wake us. */
    gr_leave_waitqs(g, 1);
    if (unlockf) unlockf(arg);
    return luaL_error(L, "goroutine: runtime stopped");
  }
  g->waitreason = reason;
  g->cancelf = cancelf;
  g->unlockarg = arg;
  g->parkq = g->w.q;
  if (g == g->rt->main) {        /* abortable: keep the continuation */
    g->parkk = k;
    g->parkctx = ctx;
    k = main_park_k;
    ctx = (lua_KContext)g;
  }
  if (L == g->co && lua_isyieldable(L)) {
    g->parkL = L;
    g->yieldwhy = GR_YIELD_PARK;
    g->unlockf = unlockf;
    return lua_yieldk(L, 0, ctx, k);
  }
  /* Cannot yield here: block this thread instead. */
  g->threadparked = 1;
  g->parkL = L;
  gr_set_waiting(g);
  if (unlockf) unlockf(arg);
  int readied = park_thread(g);
  atomic_store_explicit(&g->status, GR_G_RUNNING, memory_order_relaxed);
  if (!readied) {                /* stopping: leave the wait queue */
    if (g->sel) {
      gr_leave_waitqs(g, 0);
    } else {
      if (unlockf == gr_unlock_lock) gr_lock_acquire((gr_lock *)arg);
      gr_leave_waitqs(g, 1);
      if (unlockf == gr_unlock_lock) gr_lock_release((gr_lock *)arg);
    }
    return luaL_error(L, "goroutine: runtime stopped");
  }
  return k(L, LUA_YIELD, ctx);
}

/* A G that will not be woken takes its waiters out of every queue: its own
** (g->w) or its select's cases.  'locked': the caller holds the lock of that
** queue (of every channel of the select). */
void gr_leave_waitqs(gr_g *g, int locked) {
  if (g->sel) {
    gr_select_cancel(g->sel, locked);
    g->sel = NULL;
    return;
  }
  if (g->w.q) gr_waitq_remove(g->w.q, &g->w);
  gr_msg_free(&g->w.msg);
}

/* A G stops running until gr_ready: counted for deadlock detection.  The
** release store publishes its stack to a goroutine dump. */
void gr_set_waiting(gr_g *g) {
  atomic_fetch_add(&g->rt->nwaiting, 1);
  atomic_store_explicit(&g->status, GR_G_WAITING, memory_order_release);
}

/* Put a readied G back to work: its thread, or a run queue. */
static void ready_now(gr_g *g) {
  if (g->threadparked) {
    gr_lock_acquire(&g->tplock);
    g->woken = 1;
    gr_cond_signal(&g->tpcond);
    gr_lock_release(&g->tplock);
    return;
  }
  gr_runqput(g->rt, g, 1);
}

void gr_ready(gr_g *g) {
  if (!g->host) {
    atomic_fetch_sub(&g->rt->nwaiting, 1);
    atomic_fetch_add_explicit(&g->rt->nreadies, 1, memory_order_relaxed);
  }
  /* An abort is deciding g's park: it readies g itself when done (its
  ** cancel may still read the object g waits on, which g, running again,
  ** could free). */
  int a = atomic_load_explicit(&g->abort, memory_order_acquire);
  while (a == GR_ABORT_BUSY)
    if (atomic_compare_exchange_weak(&g->abort, &a, GR_ABORT_WOKEN)) return;
  ready_now(g);
}

int gr_cancel_waiter(gr_g *g, void *lock) {
  gr_lock_acquire((gr_lock *)lock);
  int queued = g->w.q != NULL && g->w.q == g->parkq;
  if (queued) gr_waitq_remove(g->w.q, &g->w);
  gr_lock_release((gr_lock *)lock);
  return queued;
}

int gr_cancel_nothing(gr_g *g, void *arg) {
  (void)g; (void)arg;
  return 1;
}

/*
** While the abort is BUSY, gr_ready on g only records the wake-up (WOKEN),
** so g stays parked and its park's fields and object stay as they were:
** its cancel runs against the park it was made for.  A cancel that wins
** took g out of every queue, so no gr_ready can come after it; one that
** loses leaves the wake-up to its waker, or to us if it came while BUSY.
*/
int gr_park_abort(gr_g *g, const char *msg) {
  int idle = GR_ABORT_IDLE;
  if (!atomic_compare_exchange_strong(&g->abort, &idle, GR_ABORT_BUSY)) return 0;
  int cancelled = 0;
  if (atomic_load_explicit(&g->status, memory_order_acquire) == GR_G_WAITING &&
      g->cancelf != NULL)
    cancelled = g->cancelf(g, g->unlockarg);
  if (cancelled) {
    g->sel = NULL;
    gr_msg_free(&g->w.msg);          /* a send's value, never sent */
    g->abortmsg = msg;
    atomic_store(&g->abort, GR_ABORT_IDLE);
    gr_ready(g);
    return 1;
  }
  int busy = GR_ABORT_BUSY;
  if (!atomic_compare_exchange_strong(&g->abort, &busy, GR_ABORT_IDLE)) {
    atomic_store(&g->abort, GR_ABORT_IDLE);    /* WOKEN: ours to deliver */
    ready_now(g);
  }
  return 0;
}

int gr_gosched(lua_State *L) {
  gr_g *g = gr_getg(L);
  if (L == g->co && lua_isyieldable(L)) {
    g->yieldwhy = GR_YIELD_GOSCHED;
    return lua_yield(L, 0);
  }
  sched_yield();
  return 0;
}

/* Called by the worker after the body yielded (g.c). */
void gr_sched_afteryield(gr_m *m, gr_g *g);
void gr_sched_afteryield(gr_m *m, gr_g *g) {
  int why = g->yieldwhy;
  g->yieldwhy = GR_YIELD_NONE;
  if (why == GR_YIELD_PARK) {
    void (*unlockf)(void *) = g->unlockf;
    g->unlockf = NULL;
    gr_set_waiting(g);
    if (unlockf) unlockf(g->unlockarg);
  } else if (why == GR_YIELD_CHAOS && m->p) {
    /* To the back of the local queue: the global one, behind busy
    ** goroutines that each run a time slice, would make every chaos
    ** yield cost a slice per busy goroutine. */
    atomic_store_explicit(&g->status, GR_G_RUNNABLE, memory_order_relaxed);
    gr_lock_acquire(&m->p->lock);
    localq_push(m->p, g);
    gr_lock_release(&m->p->lock);
  } else {  /* GOSCHED, PREEMPT: to the back of the global queue, as Go */
    gr_runtime *rt = m->rt;
    atomic_store_explicit(&g->status, GR_G_RUNNABLE, memory_order_relaxed);
    gr_lock_acquire(&rt->sched);
    globq_push(rt, g);
    gr_lock_release(&rt->sched);
    wakep(rt);
  }
}
