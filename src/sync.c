/*
** sync.c — mutex, rwmutex, waitgroup, once, cond and atomic: Go's sync
** package.  Each is a refcounted object (obj.h) whose handles cross
** between goroutines by reference; waiting parks the goroutine (gr_park),
** never a worker thread.
**
** Invariants:
** - Mutex: locked == 0 implies waiters is empty.  Unlock with waiters
**   hands the lock straight to the first waiter (locked stays 1), so a
**   woken goroutine never has to compete again (FIFO, no starvation).
** - RWMutex: writer and readers > 0 never hold at once.  While a writer
**   waits (wwait non-empty) no new reader gets in; when the last reader
**   leaves, the first waiting writer gets the lock; when a writer leaves,
**   every waiting reader gets in first, then writers.  Neither side starves.
** - "First waiter" is the head of the queue, except under chaos scheduling
**   (chaos.h), where it is any waiter: Go promises no order.  Handing over
**   is unchanged.
** - WaitGroup: counter >= 0; waiters is empty while counter == 0.
** - Once: state goes NEW -> RUNNING -> DONE, never back; waiters wait only
**   while RUNNING.
** - Cond: a waiter is queued on the cond before its mutex is unlocked, so
**   a signal that follows the unlock cannot be lost.
** Lock order: cond lock -> mutex lock.
*/
#include <stdlib.h>
#include <lauxlib.h>
#include "runtime.h"
#include "chaos.h"
#include "obj.h"

/* A new object, its handle pushed (and owning nothing until the caller,
** done setting it up, calls gr_obj_adopt). */
static void *new_object(lua_State *L, size_t size, const gr_objtype *type) {
  gr_obj_pushnew(L, type);
  gr_obj *o = (gr_obj *)gr_calloc(1, size);
  if (o == NULL) luaL_error(L, "not enough memory");
  gr_obj_init(o, type);
  return o;
}

/* Queue the running G's waiter on q and park it (lock released after). */
static int wait_on(lua_State *L, gr_waitq *q, gr_lock *lock,
                   const char *reason, lua_KFunction k) {
  gr_g *g = gr_getg(L);
  g->w.g = g;
  g->w.ok = 0;
  gr_waitq_push(q, &g->w);
  return gr_park(L, reason, gr_unlock_lock, gr_cancel_waiter, lock, k, (lua_KContext)g);
}

static int done_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

/* ================================================================ Mutex */

typedef struct gr_mutex {
  gr_obj obj;
  gr_lock lock;
  int locked;
  gr_waitq waiters;
} gr_mutex;

static const gr_objtype mutex_type;

static void mutex_destroy(gr_obj *o) {
  gr_mutex *mu = (gr_mutex *)o;
  gr_lock_destroy(&mu->lock);
  gr_free(mu);
}

/* Acquire mu for the running G; 'k' runs once it holds the lock. */
static int mutex_acquire(lua_State *L, gr_mutex *mu, lua_KFunction k,
                         lua_KContext ctx) {
  gr_lock_acquire(&mu->lock);
  if (!mu->locked) {
    mu->locked = 1;
    gr_lock_release(&mu->lock);
    return k(L, LUA_OK, ctx);
  }
  gr_g *g = gr_getg(L);
  g->w.g = g;
  gr_waitq_push(&mu->waiters, &g->w);
  return gr_park(L, "sync.Mutex.Lock", gr_unlock_lock, gr_cancel_waiter, &mu->lock, k, ctx);
}

/* Returns 0 if mu was not locked (the caller raises). */
static int mutex_release(gr_mutex *mu) {
  gr_lock_acquire(&mu->lock);
  if (!mu->locked) {
    gr_lock_release(&mu->lock);
    return 0;
  }
  gr_waiter *w = gr_waitq_pick(&mu->waiters);
  if (w == NULL) mu->locked = 0;     /* else: ownership passes to w */
  gr_lock_release(&mu->lock);
  if (w) gr_ready(w->g);
  return 1;
}

static int mutex_lock(lua_State *L) {
  GR_CHAOS_YIELD(L, mutex_lock);
  gr_mutex *mu = (gr_mutex *)gr_obj_check(L, 1, &mutex_type);
  return mutex_acquire(L, mu, done_k, 0);
}

static int mutex_unlock(lua_State *L) {
  GR_CHAOS_YIELD(L, mutex_unlock);
  gr_mutex *mu = (gr_mutex *)gr_obj_check(L, 1, &mutex_type);
  if (!mutex_release(mu)) return luaL_error(L, "sync: unlock of unlocked mutex");
  return 0;
}

static int mutex_trylock(lua_State *L) {
  GR_CHAOS_YIELD(L, mutex_trylock);
  gr_mutex *mu = (gr_mutex *)gr_obj_check(L, 1, &mutex_type);
  gr_lock_acquire(&mu->lock);
  int got = !mu->locked;
  mu->locked = 1;
  gr_lock_release(&mu->lock);
  lua_pushboolean(L, got);
  return 1;
}

static int mutex_new(lua_State *L) {
  gr_mutex *mu = (gr_mutex *)new_object(L, sizeof *mu, &mutex_type);
  gr_lock_init(&mu->lock);
  gr_obj_adopt(L, &mu->obj);
  return 1;
}

static const luaL_Reg mutex_methods[] = {
  {"lock", mutex_lock}, {"unlock", mutex_unlock}, {"trylock", mutex_trylock},
  {NULL, NULL}
};
static const gr_objtype mutex_type = {
  "mutex", mutex_methods, NULL, mutex_destroy
};

/* ============================================================== RWMutex */

typedef struct gr_rwmutex {
  gr_obj obj;
  gr_lock lock;
  int writer;          /* a writer holds the lock */
  long readers;        /* readers holding the lock */
  gr_waitq rwait;      /* readers waiting */
  gr_waitq wwait;      /* writers waiting */
} gr_rwmutex;

static const gr_objtype rwmutex_type;

static void rwmutex_destroy(gr_obj *o) {
  gr_rwmutex *rw = (gr_rwmutex *)o;
  gr_lock_destroy(&rw->lock);
  gr_free(rw);
}

static gr_rwmutex *checkrw(lua_State *L) {
  return (gr_rwmutex *)gr_obj_check(L, 1, &rwmutex_type);
}

static int rw_rlock(lua_State *L) {
  GR_CHAOS_YIELD(L, rw_rlock);
  gr_rwmutex *rw = checkrw(L);
  gr_lock_acquire(&rw->lock);
  if (!rw->writer && rw->wwait.head == NULL) {
    rw->readers++;
    gr_lock_release(&rw->lock);
    return 0;
  }
  return wait_on(L, &rw->rwait, &rw->lock, "sync.RWMutex.RLock", done_k);
}

static int rw_runlock(lua_State *L) {
  GR_CHAOS_YIELD(L, rw_runlock);
  gr_rwmutex *rw = checkrw(L);
  gr_waiter *w = NULL;
  gr_lock_acquire(&rw->lock);
  if (rw->readers == 0) {
    gr_lock_release(&rw->lock);
    return luaL_error(L, "sync: RUnlock of unlocked RWMutex");
  }
  if (--rw->readers == 0 && (w = gr_waitq_pick(&rw->wwait)) != NULL)
    rw->writer = 1;                      /* the lock passes to w */
  gr_lock_release(&rw->lock);
  if (w) gr_ready(w->g);
  return 0;
}

static int rw_lock(lua_State *L) {
  GR_CHAOS_YIELD(L, rw_lock);
  gr_rwmutex *rw = checkrw(L);
  gr_lock_acquire(&rw->lock);
  if (!rw->writer && rw->readers == 0) {
    rw->writer = 1;
    gr_lock_release(&rw->lock);
    return 0;
  }
  return wait_on(L, &rw->wwait, &rw->lock, "sync.RWMutex.Lock", done_k);
}

static int rw_unlock(lua_State *L) {
  GR_CHAOS_YIELD(L, rw_unlock);
  gr_rwmutex *rw = checkrw(L);
  gr_waitq woken = {NULL, NULL};
  gr_waiter *w;
  gr_lock_acquire(&rw->lock);
  if (!rw->writer) {
    gr_lock_release(&rw->lock);
    return luaL_error(L, "sync: Unlock of unlocked RWMutex");
  }
  rw->writer = 0;
  if (rw->rwait.head) {                  /* waiting readers go first */
    while ((w = gr_waitq_pick(&rw->rwait)) != NULL) {
      rw->readers++;
      gr_waitq_push(&woken, w);
    }
  } else if ((w = gr_waitq_pick(&rw->wwait)) != NULL) {
    rw->writer = 1;
    gr_waitq_push(&woken, w);
  }
  gr_lock_release(&rw->lock);
  while ((w = gr_waitq_pop(&woken)) != NULL) gr_ready(w->g);
  return 0;
}

static int rw_trylock(lua_State *L) {
  GR_CHAOS_YIELD(L, rw_trylock);
  gr_rwmutex *rw = checkrw(L);
  gr_lock_acquire(&rw->lock);
  int got = !rw->writer && rw->readers == 0;
  if (got) rw->writer = 1;
  gr_lock_release(&rw->lock);
  lua_pushboolean(L, got);
  return 1;
}

static int rw_tryrlock(lua_State *L) {
  GR_CHAOS_YIELD(L, rw_tryrlock);
  gr_rwmutex *rw = checkrw(L);
  gr_lock_acquire(&rw->lock);
  int got = !rw->writer && rw->wwait.head == NULL;
  if (got) rw->readers++;
  gr_lock_release(&rw->lock);
  lua_pushboolean(L, got);
  return 1;
}

static int rwmutex_new(lua_State *L) {
  gr_rwmutex *rw = (gr_rwmutex *)new_object(L, sizeof *rw, &rwmutex_type);
  gr_lock_init(&rw->lock);
  gr_obj_adopt(L, &rw->obj);
  return 1;
}

static const luaL_Reg rwmutex_methods[] = {
  {"lock", rw_lock}, {"unlock", rw_unlock}, {"rlock", rw_rlock},
  {"runlock", rw_runlock}, {"trylock", rw_trylock}, {"tryrlock", rw_tryrlock},
  {NULL, NULL}
};
static const gr_objtype rwmutex_type = {
  "rwmutex", rwmutex_methods, NULL, rwmutex_destroy
};

/* ============================================================ WaitGroup */

typedef struct gr_waitgroup {
  gr_obj obj;
  gr_lock lock;
  lua_Integer counter;
  gr_waitq waiters;
} gr_waitgroup;

static const gr_objtype waitgroup_type;

static void waitgroup_destroy(gr_obj *o) {
  gr_waitgroup *wg = (gr_waitgroup *)o;
  gr_lock_destroy(&wg->lock);
  gr_free(wg);
}

static int wg_add_delta(lua_State *L, lua_Integer delta) {
  gr_waitgroup *wg = (gr_waitgroup *)gr_obj_check(L, 1, &waitgroup_type);
  gr_waiter *woken = NULL;
  gr_lock_acquire(&wg->lock);
  /* The sum is checked before it is made: a signed overflow (add of
  ** math.maxinteger twice) is undefined behaviour in C. */
  if (delta > 0 && wg->counter > LUA_MAXINTEGER - delta) {
    gr_lock_release(&wg->lock);
    return luaL_error(L, "sync: WaitGroup counter overflow");
  }
  if (wg->counter + delta < 0) {
    gr_lock_release(&wg->lock);
    return luaL_error(L, "sync: negative WaitGroup counter");
  }
  wg->counter += delta;
  if (wg->counter == 0) woken = gr_waitq_takeall(&wg->waiters);
  gr_lock_release(&wg->lock);
  gr_waitq_readyall(woken);
  return 0;
}

static int wg_add(lua_State *L) {
  GR_CHAOS_YIELD(L, wg_add);
  return wg_add_delta(L, luaL_optinteger(L, 2, 1));
}

static int wg_done(lua_State *L) {
  GR_CHAOS_YIELD(L, wg_done);
  return wg_add_delta(L, -1);
}

static int wg_wait(lua_State *L) {
  GR_CHAOS_YIELD(L, wg_wait);
  gr_waitgroup *wg = (gr_waitgroup *)gr_obj_check(L, 1, &waitgroup_type);
  gr_lock_acquire(&wg->lock);
  if (wg->counter == 0) {
    gr_lock_release(&wg->lock);
    return 0;
  }
  return wait_on(L, &wg->waiters, &wg->lock, "sync.WaitGroup.Wait", done_k);
}

static int waitgroup_new(lua_State *L) {
  gr_waitgroup *wg = (gr_waitgroup *)new_object(L, sizeof *wg, &waitgroup_type);
  gr_lock_init(&wg->lock);
  gr_obj_adopt(L, &wg->obj);
  return 1;
}

static const luaL_Reg waitgroup_methods[] = {
  {"add", wg_add}, {"done", wg_done}, {"wait", wg_wait}, {NULL, NULL}
};
static const gr_objtype waitgroup_type = {
  "waitgroup", waitgroup_methods, NULL, waitgroup_destroy
};

/* ================================================================= Once */

enum { ONCE_NEW, ONCE_RUNNING, ONCE_DONE };

typedef struct gr_once {
  gr_obj obj;
  gr_lock lock;
  int state;
  gr_waitq waiters;
} gr_once;

static const gr_objtype once_type;

static void once_destroy(gr_obj *o) {
  gr_once *once = (gr_once *)o;
  gr_lock_destroy(&once->lock);
  gr_free(once);
}

/* f has returned or raised: mark done, wake the waiters, pass on an error. */
static int once_finish(lua_State *L, int status, lua_KContext ctx) {
  gr_once *once = (gr_once *)ctx;
  gr_lock_acquire(&once->lock);
  once->state = ONCE_DONE;
  gr_waiter *woken = gr_waitq_takeall(&once->waiters);
  gr_lock_release(&once->lock);
  gr_waitq_readyall(woken);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return 0;
}

static int once_call(lua_State *L) {
  GR_CHAOS_YIELD(L, once_call);
  gr_once *once = (gr_once *)gr_obj_check(L, 1, &once_type);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  gr_lock_acquire(&once->lock);
  if (once->state == ONCE_DONE) {
    gr_lock_release(&once->lock);
    return 0;
  }
  if (once->state == ONCE_RUNNING)
    return wait_on(L, &once->waiters, &once->lock, "sync.Once", done_k);
  once->state = ONCE_RUNNING;
  gr_lock_release(&once->lock);
  /* The handle (slot 1) stays on the stack, keeping 'once' alive. */
  int status = lua_pcallk(L, lua_gettop(L) - 2, 0, 0, (lua_KContext)once, once_finish);
  return once_finish(L, status, (lua_KContext)once);
}

static int once_new(lua_State *L) {
  gr_once *once = (gr_once *)new_object(L, sizeof *once, &once_type);
  gr_lock_init(&once->lock);
  gr_obj_adopt(L, &once->obj);
  return 1;
}

static const luaL_Reg once_methods[] = { {"call", once_call}, {NULL, NULL} };
static const gr_objtype once_type = {
  "once", once_methods, NULL, once_destroy
};

/* ================================================================= Cond */

typedef struct gr_condvar {
  gr_obj obj;
  gr_lock lock;
  gr_mutex *mu;        /* holds a reference */
  gr_waitq waiters;
} gr_condvar;

static const gr_objtype cond_type;

static void cond_destroy(gr_obj *o) {
  gr_condvar *cv = (gr_condvar *)o;
  gr_obj_release(&cv->mu->obj);
  gr_lock_destroy(&cv->lock);
  gr_free(cv);
}

/* Signalled: take the mutex back before returning from wait(). */
static int cond_relock_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  gr_condvar *cv = (gr_condvar *)ctx;
  return mutex_acquire(L, cv->mu, done_k, 0);
}

static int cond_wait(lua_State *L) {
  GR_CHAOS_YIELD(L, cond_wait);
  gr_condvar *cv = (gr_condvar *)gr_obj_check(L, 1, &cond_type);
  gr_g *g = gr_getg(L);
  gr_lock_acquire(&cv->lock);
  g->w.g = g;
  gr_waitq_push(&cv->waiters, &g->w);
  if (!mutex_release(cv->mu)) {
    gr_waitq_remove(&cv->waiters, &g->w);
    gr_lock_release(&cv->lock);
    return luaL_error(L, "sync: unlock of unlocked mutex");
  }
  return gr_park(L, "sync.Cond.Wait", gr_unlock_lock, gr_cancel_waiter, &cv->lock,
                 cond_relock_k, (lua_KContext)cv);
}

static int cond_wake(lua_State *L, int all) {
  gr_condvar *cv = (gr_condvar *)gr_obj_check(L, 1, &cond_type);
  gr_waitq woken = {NULL, NULL};
  gr_waiter *w;
  gr_lock_acquire(&cv->lock);
  while ((w = gr_waitq_pick(&cv->waiters)) != NULL) {
    gr_waitq_push(&woken, w);
    if (!all) break;
  }
  gr_lock_release(&cv->lock);
  while ((w = gr_waitq_pop(&woken)) != NULL) gr_ready(w->g);
  return 0;
}

static int cond_signal(lua_State *L) { return cond_wake(L, 0); }
static int cond_broadcast(lua_State *L) { return cond_wake(L, 1); }

static int cond_new(lua_State *L) {
  gr_mutex *mu = (gr_mutex *)gr_obj_check(L, 1, &mutex_type);
  gr_condvar *cv = (gr_condvar *)new_object(L, sizeof *cv, &cond_type);
  gr_lock_init(&cv->lock);
  gr_obj_retain(&mu->obj);
  cv->mu = mu;
  gr_obj_adopt(L, &cv->obj);
  return 1;
}

static const luaL_Reg cond_methods[] = {
  {"wait", cond_wait}, {"signal", cond_signal}, {"broadcast", cond_broadcast},
  {NULL, NULL}
};
static const gr_objtype cond_type = {
  "cond", cond_methods, NULL, cond_destroy
};

/* =============================================================== Atomic */

typedef struct gr_atomic {
  gr_obj obj;
  _Atomic long long value;
} gr_atomic;

static const gr_objtype atomic_type;

static void atomic_destroy(gr_obj *o) { gr_free(o); }

static gr_atomic *checkatomic(lua_State *L) {
  return (gr_atomic *)gr_obj_check(L, 1, &atomic_type);
}

static int atomic_load_m(lua_State *L) {
  GR_CHAOS_YIELD(L, atomic_load_m);
  lua_pushinteger(L, (lua_Integer)atomic_load(&checkatomic(L)->value));
  return 1;
}

static int atomic_store_m(lua_State *L) {
  GR_CHAOS_YIELD(L, atomic_store_m);
  gr_atomic *a = checkatomic(L);
  atomic_store(&a->value, (long long)luaL_checkinteger(L, 2));
  return 0;
}

static int atomic_add_m(lua_State *L) {
  GR_CHAOS_YIELD(L, atomic_add_m);
  gr_atomic *a = checkatomic(L);
  long long d = (long long)luaL_checkinteger(L, 2);
  /* wraps around like Go's atomic.AddInt64 */
  unsigned long long old = (unsigned long long)atomic_fetch_add(&a->value, d);
  lua_pushinteger(L, (lua_Integer)(long long)(old + (unsigned long long)d));
  return 1;
}

static int atomic_cas_m(lua_State *L) {
  GR_CHAOS_YIELD(L, atomic_cas_m);
  gr_atomic *a = checkatomic(L);
  long long expected = (long long)luaL_checkinteger(L, 2);
  long long desired = (long long)luaL_checkinteger(L, 3);
  lua_pushboolean(L, atomic_compare_exchange_strong(&a->value, &expected, desired));
  return 1;
}

static int atomic_new(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 0);
  gr_atomic *a = (gr_atomic *)new_object(L, sizeof *a, &atomic_type);
  atomic_init(&a->value, (long long)n);
  gr_obj_adopt(L, &a->obj);
  return 1;
}

static const luaL_Reg atomic_methods[] = {
  {"load", atomic_load_m}, {"store", atomic_store_m}, {"add", atomic_add_m},
  {"cas", atomic_cas_m}, {NULL, NULL}
};
static const gr_objtype atomic_type = {
  "atomic", atomic_methods, NULL, atomic_destroy
};

/* ============================================================== module */

void gr_sync_open(lua_State *L) {
  static const luaL_Reg constructors[] = {
    {"mutex", mutex_new}, {"rwmutex", rwmutex_new}, {"waitgroup", waitgroup_new},
    {"once", once_new}, {"cond", cond_new}, {"atomic", atomic_new},
    {NULL, NULL}
  };
  luaL_setfuncs(L, constructors, 0);
}
