/*
** platform.h — the few OS primitives the runtime uses: atomics, locks,
** condition variables, threads, a clock.  The scheduler and the objects
** call these, never pthreads directly, so porting touches one file.
*/
#ifndef GR_PLATFORM_H
#define GR_PLATFORM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <errno.h>

/* ---------------------------------------------------------------- locks */

typedef pthread_mutex_t gr_lock;

static inline void gr_lock_init(gr_lock *l) { pthread_mutex_init(l, NULL); }
static inline void gr_lock_destroy(gr_lock *l) { pthread_mutex_destroy(l); }
static inline void gr_lock_acquire(gr_lock *l) { pthread_mutex_lock(l); }
static inline void gr_lock_release(gr_lock *l) { pthread_mutex_unlock(l); }

/* ------------------------------------------------------ condition variables */

typedef pthread_cond_t gr_cond;

static inline void gr_cond_init(gr_cond *c) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
}
static inline void gr_cond_destroy(gr_cond *c) { pthread_cond_destroy(c); }
static inline void gr_cond_wait(gr_cond *c, gr_lock *l) { pthread_cond_wait(c, l); }
static inline void gr_cond_signal(gr_cond *c) { pthread_cond_signal(c); }
static inline void gr_cond_broadcast(gr_cond *c) { pthread_cond_broadcast(c); }

/* Wait until the monotonic time 'deadline' (seconds); returns 0 on timeout. */
static inline int gr_cond_waituntil(gr_cond *c, gr_lock *l, double deadline) {
  struct timespec ts;
  ts.tv_sec = (time_t)deadline;
  ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
  if (ts.tv_nsec < 0) ts.tv_nsec = 0;
  return pthread_cond_timedwait(c, l, &ts) != ETIMEDOUT;
}

/* ---------------------------------------------------------------- threads */

typedef pthread_t gr_thread;

static inline int gr_thread_start(gr_thread *t, void *(*fn)(void *), void *arg) {
  return pthread_create(t, NULL, fn, arg);
}
static inline void gr_thread_join(gr_thread t) { pthread_join(t, NULL); }

/* ------------------------------------------------------------------ clock */

/* Monotonic seconds. */
static inline double gr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- atomics */

#define gr_atomic_load(p)        atomic_load_explicit((p), memory_order_acquire)
#define gr_atomic_store(p, v)    atomic_store_explicit((p), (v), memory_order_release)
#define gr_atomic_add(p, v)      atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define gr_atomic_relaxed(p)     atomic_load_explicit((p), memory_order_relaxed)

#endif
