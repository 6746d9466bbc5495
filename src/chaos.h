/*
** chaos.h — chaos scheduling: with a seed (GOROUTINE_CHAOS=seed, or
** gr_config.chaos_seed) the runtime makes at random the scheduling choices
** that Go leaves open, so that a test meets interleavings a quiet machine
** never shows it.  Only choices Go does not promise are touched: values
** sent by one goroutine still arrive in the order sent, a buffer stays
** FIFO, a mutex handed over stays handed over.
**
** What a seed perturbs, on worker threads (a host thread is never
** perturbed: it has no worker and no random stream):
** - run queues: a readied G sometimes goes to the queue's tail instead of
**   runnext, a new G sometimes to runnext; a worker sometimes runs a G from
**   anywhere in its queue instead of the head, and polls the global queue
**   at random ticks too (sched.c);
** - stealing: victims in a random order, a random share of the victim's
**   queue, its runnext sometimes at once (sched.c);
** - wake-ups: which waiter of a channel, mutex, rwmutex or cond is woken
**   when several could be, and in which order several are readied
**   (gr_waitq_pick: chan.c, sync.c);
** - select draws its polling order from the same stream (chan.c);
** - before a channel or sync operation a goroutine sometimes yields to the
**   back of its worker's run queue first (GR_CHAOS_YIELD).
**
** Reproducing: every worker (M) has its own PRNG, seeded from the seed and
** the M's index (the order the Ms were started), and only that worker
** draws from it.  One worker's choices therefore repeat from run to run:
** with GOROUTINE_MAXPROCS=1 a program that does not depend on timing
** (timers, preemption, I/O) runs the same schedule for the same seed.
** With several workers, thread timing still decides who meets whom.  The
** seed ends every goroutine dump and every uncaught error the runtime
** prints (dump.c, g.c; goroutine-lua's own report: main.c).
**
** Cost when off (seed 0): each hook is one predictable branch on a value
** that is zero — m->chaos in the scheduler; in the channel and sync
** operations, which have no M at hand, gr_chaos_used, a process-wide hint
** that stays 0 until a runtime with a seed starts (a thread-local load
** costs more there).  Behind the hint, the thread's own M decides.
*/
#ifndef GR_CHAOS_H
#define GR_CHAOS_H

#include "runtime.h"

#define GR_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The worker running on this thread when its runtime has chaos on, else
** NULL (a host thread, the timer or monitor thread, chaos off). */
extern _Thread_local gr_m *gr_chaos_m;

/* Some runtime of this process has chaos on (never goes back to 0). */
extern atomic_int gr_chaos_used;

static inline int gr_chaos_maybe(void) {
  return GR_UNLIKELY(atomic_load_explicit(&gr_chaos_used, memory_order_relaxed));
}

/* GOROUTINE_CHAOS as a seed; 0 when unset, empty or not a valid seed. */
unsigned gr_chaos_env(void);

/* Parse a seed: a decimal integer from 0 to 4294967295.  Returns 1 and sets
** *seed, or 0 if s is not one. */
int gr_chaos_parse(const char *s, unsigned *seed);

/* Seed m's stream from the runtime's seed and m's index (under rt->sched,
** before its thread starts); m->chaos stays 0 when chaos is off.  A seed
** sets gr_chaos_used. */
void gr_chaos_seed_m(gr_m *m, unsigned seed, int index);

/* The next number of m's stream (only m's own thread calls it). */
static inline uint32_t gr_chaos_rand(gr_m *m) {
  uint64_t x = m->chaos;           /* xorshift64*: never 0 once seeded */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  m->chaos = x;
  return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

/* 1 with probability 1/n. */
static inline int gr_chaos_one_in(gr_m *m, uint32_t n) {
  return gr_chaos_rand(m) % n == 0;
}

/*
** A waiter to wake from q (removed from it): the head, or under chaos any
** of them.  For queues of goroutines that Go wakes in no promised order.
*/
__attribute__((cold)) gr_waiter *gr_chaos_waitq_take(gr_waitq *q);

static inline gr_waiter *gr_waitq_pick(gr_waitq *q) {
  if (gr_chaos_maybe()) return gr_chaos_waitq_take(q);
  return gr_waitq_pop(q);
}

/*
** First thing in a channel or sync operation 'op' (the lua_CFunction it is
** in): under chaos, sometimes yield the goroutine to the back of its
** worker's run queue; when it runs again, op starts over.  Does not return when it
** yields.  Where the goroutine cannot yield (inside a coroutine of its own,
** across a C call) it goes on at once.
*/
__attribute__((cold)) void gr_chaos_yield(lua_State *L, lua_CFunction op);

#define GR_CHAOS_YIELD(L, op) \
  do { if (gr_chaos_maybe()) gr_chaos_yield(L, op); } while (0)

#endif
