/*
** chan.pml — a Promela model of the wake-up protocol of chan.c (channels,
** select, close) and of the park/ready protocol it relies on (runtime.h,
** sched.c).  make model checks it with spin (spec/model.sh).
**
** What it models, as chan.c does it:
** - send_locked / recv_locked / dequeue: hand-over to a parked receiver,
**   straight from a parked sender (unbuffered) or through the buffer's
**   freed slot (buffered), the buffer, and "closed" results.
** - A goroutine that blocks queues its waiter under the channel lock and
**   parks; the lock is released only once it is parked (gr_park's unlockf,
**   run by the worker after the yield).  A waker fills in the waiter under
**   the lock and calls gr_ready after unlocking.
** - select: picks a random poll order, locks its channels in address
**   order, polls the cases, else queues one waiter per case, in the poll
**   order (all sharing sel->done) and parks.  A waker takes a select waiter only by winning
**   the CAS on sel->done; dequeue drops the waiters of selects already won
**   and goes on.  The woken owner takes its other waiter out of its queue,
**   under that channel's lock.
** - close: marks the channel, takes every waiter out of both queues (ok =
**   0; the same CAS for select waiters), unlocks, then readies them all.
**
** What it abstracts away:
** - Messages are small integers (1..NV); encoding, decoding and freeing
**   are not modelled, who holds each value is (see one_delivery).
** - A lock is a test-and-set flag.  One locked operation (lock, the work
**   under it, unlock, then gr_ready) is one atomic step: the work under the
**   lock is invisible to others, and it touches shared state the lock does
**   not guard in at most one place, the one successful sel->done CAS of a
**   dequeue (a failed CAS reads a done that never goes back to 0); the
**   gr_ready that follows touches only the G it claimed.  The
**   exceptions are kept apart: close may win several CASes, so each of
**   its dequeues is a step; a select's first lock is a step of its own
**   (a lock-order cycle needs a G holding one lock, waiting for another);
**   the woken select's clean-up takes its lock in a step after the wake.
** - The scheduler: a G is WAITING (parked) or RUNNABLE (readied) or
**   RUNNING; run queues, Ms, Ps and stealing are left out (spin's choice
**   of the next process to step stands for them; readied Gs do run).
**   Thread parking (g->threadparked, tplock) is the same handshake on a
**   condition variable and is not modelled apart.
** - Address order is channel index order (A < B).
** - Not modelled: host threads and their timeouts, trysend/tryrecv (the
**   same locked code without parking), range (a recv), gr_chan_offer,
**   select's default and nil cases, two cases on one channel, the runtime
**   stopping (gr_park's "runtime stopped" paths).  The queueing order is
**   modelled, but all of a select's waiters are queued in one step under
**   all its locks, so no property here depends on it: it decides only
**   which of two waiters on one channel a waker meets first, a fairness
**   question (Go's TestPseudoRandomSend) that select_spec.lua checks.
** - One scenario, every interleaving of it: six goroutines on channels A
**   and B, both unbuffered (CAP 0) or both with one slot (CAP 1):
**     g0: A <- 1            g1: B <- 2          g4: <-A
**     g2: select { <-A, <-B }
**     g3: select { <-B, A <- 3 }   (cases not in address order)
**     g5: close(B)
**
** Properties (one per spin run; chan.c's comments use these names):
** - one_delivery: a value is delivered at most once, and a select fires
**   exactly one case.  Whenever nothing can move (spin's timeout: all done
**   or deadlocked), each value sent is received exactly once, still
**   buffered, still in a parked sender's waiter, refused (send on closed
**   channel) or withdrawn (its select fired another case).
** - no_lost_wakeup: a parked G whose operation became possible is woken.
**   The model has no cycles, so "eventually" means "before nothing can
**   move": then every parked G's waiters are still queued (none was taken
**   without its G being readied), no parked G's channel is closed, and no
**   parked receiver faces a buffered value or a parked sender on its
**   channel (nor a parked sender a free slot or a parked receiver).
** - no_false_deadlock: the only stuck states are the ones the runtime
**   reports as a deadlock: every G not finished is parked on a channel
**   operation (end labels mark the park points only; spin's invalid end
**   state check), never stuck on a lock (a lock-order cycle).
** - ready_parked: gr_ready is called only on a parked G, once per park
**   (readying a G whose coroutine still runs would resume it twice).
**
** Mutations (make model checks that each is caught by its property):
** - MUT_NO_CLAIM: dequeue takes a select waiter without the CAS.
** - MUT_DEQUEUE_STOPS: dequeue gives up at a claimed select waiter instead
**   of skipping it.
** - MUT_CLOSE_NO_WAKE: close leaves the parked receivers queued.
** - MUT_LOCK_CASE_ORDER: select locks its channels in case order.
** - MUT_UNLOCK_BEFORE_PARK: the channel lock is released before the G is
**   parked.
** - MUT_BUF_NO_REFILL: a buffered receive that wakes a parked sender does
**   not move the sender's value into the freed slot.
*/

#ifndef CAP
#define CAP 0
#endif

#define A 0
#define B 1
#define NCHAN 2
#define NG 6            /* goroutines */
#define NW 12           /* waiters: goroutine g's case k is g*2+k */
#define NV 3            /* values sent: 1..NV; 0 is "no value" */
#define QMAX 3          /* waiters one queue can hold */
#define NONE 255

#define RECV 0
#define SEND 1
#define QI(c, dir) ((c) * 2 + (dir))     /* recvq and sendq of c */

/* send_locked / recv_locked results */
#define BLOCK 0
#define OK 1
#define CLOSED 2

/* G status */
#define RUNNING 0
#define WAITING 1
#define RUNNABLE 2
#define FINISHED 3

/* channels */
bit locked[NCHAN];
bit closed[NCHAN];
byte count[NCHAN];
byte bufv[NCHAN];               /* the one slot (CAP 1) */
byte q[NCHAN * 2 * QMAX];       /* FIFO wait queues, QI(c, dir) */
byte qlen[NCHAN * 2];

/* waiters (gr_waiter) */
byte wq[NW];                    /* w->q: the queue it is in, or NONE */
byte wmsg[NW];
bit wok[NW];
bit wsel[NW];                   /* w->sel != NULL */
byte wch[NW];                   /* its channel */

/* goroutines, and their select (gr_select) */
byte gstat[NG];
bit seldone[NG];                /* sel->done */
byte fired[NG];                 /* sel->fired */
byte ncases[NG];                /* waiters a parked G has queued */

/* value accounting (one_delivery) */
byte got[NV + 1];
bit refused[NV + 1];
bit withdrawn[NV + 1];
byte vowner[NV + 1];

inline lock(c) { locked[c] == 0 -> locked[c] = 1 }
inline unlock(c) { locked[c] = 0 }

/* Queue operations, under the queue's channel lock. */
inline qpush(qi, w) {
  assert(qlen[qi] < QMAX);
  q[qi * QMAX + qlen[qi]] = w;
  qlen[qi]++;
  wq[w] = qi
}

inline qremove(qi, w) {         /* gr_waitq_remove */
  i = 0;
  do
  :: q[qi * QMAX + i] == w -> break
  :: else -> i++
  od;
  do
  :: i + 1 < qlen[qi] -> q[qi * QMAX + i] = q[qi * QMAX + i + 1]; i++
  :: else -> break
  od;
  qlen[qi]--;
  q[qi * QMAX + qlen[qi]] = 0;
  wq[w] = NONE;
  i = 0
}

/* chan.c dequeue(): pop waiters until one may be woken; w = NONE if none.
** A select waiter counts only if this channel wins its select's CAS
** (one_delivery); one whose select another case won is dropped and the
** next one tried (no_lost_wakeup). */
inline dequeue(qi, w) {
  w = NONE;
  do
  :: qlen[qi] == 0 -> break
  :: else ->
     w = q[qi * QMAX];
     qremove(qi, w);
     if
     :: wsel[w] == 0 -> break
#ifdef MUT_NO_CLAIM
     :: else -> fired[w / 2] = w % 2; break
#else
     :: seldone[w / 2] == 0 -> seldone[w / 2] = 1; fired[w / 2] = w % 2; break
#ifdef MUT_DEQUEUE_STOPS
     :: else -> w = NONE; break
#else
     :: else -> w = NONE                /* another case won: skip it */
#endif
#endif
     fi
  od
}

/* gr_ready(g), called by a waker after its unlock. */
inline ready(gg) {
  if
  :: gg != NONE ->
#ifdef CHECK_ready_parked
     assert(gstat[gg] == WAITING);
#endif
     gstat[gg] = RUNNABLE
  :: else -> skip
  fi
}

/* A receiver got value v. */
inline deliver(v) {
#ifdef CHECK_one_delivery
  assert(v >= 1 && v <= NV && !refused[v] && !withdrawn[v]);
#endif
  got[v]++;
#ifdef CHECK_one_delivery
  assert(got[v] == 1)
#endif
}

/* chan.c send_locked(), under c's lock: r gets the result, wake the G to
** ready after unlocking. */
inline send_locked(c, v) {
  wake = NONE;
  if
  :: closed[c] -> r = CLOSED
  :: else ->
     dequeue(QI(c, RECV), w);
     if
     :: w != NONE ->                   /* hand over to a parked receiver */
        wmsg[w] = v; wok[w] = 1; wake = w / 2; r = OK
     :: else ->
        if
        :: count[c] < CAP -> bufv[c] = v; count[c]++; r = OK
        :: else -> r = BLOCK
        fi
     fi
  fi
}

/* chan.c recv_locked(): v gets the value. */
inline recv_locked(c, v) {
  wake = NONE;
  dequeue(QI(c, SEND), w);
  if
  :: w != NONE ->
     if
     :: CAP == 0 -> v = wmsg[w]        /* straight from the sender */
     :: else ->                        /* full buffer: take the head, the
                                          sender's value takes the slot */
        v = bufv[c];
#ifdef MUT_BUF_NO_REFILL
        bufv[c] = 0; count[c]--
#else
        bufv[c] = wmsg[w]
#endif
     fi;
     wmsg[w] = 0; wok[w] = 1; wake = w / 2; r = OK
  :: else ->
     if
     :: count[c] > 0 -> v = bufv[c]; bufv[c] = 0; count[c]--; r = OK
     :: else ->
        if
        :: closed[c] -> r = CLOSED
        :: else -> r = BLOCK
        fi
     fi
  fi
}

/* Queue g's single waiter, g*2, on queue dir of c. */
inline enqueue(g, c, dir, v) {
  w = g * 2;
  wmsg[w] = v; wok[w] = 0; wsel[w] = 0; wch[w] = c;
  qpush(QI(c, dir), w);
  ncases[g] = 1
}

/* gr_park: the G stops (WAITING), then its worker runs unlockf.  The park
** is split around the end of the locked step, so that the
** MUT_UNLOCK_BEFORE_PARK mutation can let others in between. */
#ifdef MUT_UNLOCK_BEFORE_PARK
#define PARK1(g) skip
#define PARK2(g) gstat[g] = WAITING;
#else
#define PARK1(g) gstat[g] = WAITING
#define PARK2(g)
#endif

/* The G's body has returned; its locals are cleared so that states that
** differ only in dead variables are one. */
#define FINISH gstat[g] = FINISHED; w = 0; wake = 0; r = 0; i = 0; parked = 0

/* chan_send */
proctype sender(byte g; byte c; byte v) {
  byte w, wake, r, i;
  bit parked;
  d_step {
    lock(c);
    send_locked(c, v);
    if
    :: r == OK -> unlock(c); ready(wake); FINISH
    :: r == CLOSED -> unlock(c); refused[v] = 1; FINISH   /* raises */
    :: r == BLOCK -> enqueue(g, c, SEND, v); PARK1(g); unlock(c); parked = 1
    fi
  }
  if
  :: parked ->
     PARK2(g)
end_send:
     d_step {
       gstat[g] == RUNNABLE -> gstat[g] = RUNNING;  /* send_k */
       if
       :: wok[g * 2] -> skip
       :: else -> refused[v] = 1                    /* closed: raises */
       fi;
       FINISH
     }
  :: else -> skip
  fi
}

/* chan_recv */
proctype receiver(byte g; byte c) {
  byte w, wake, r, i, v;
  bit parked;
  d_step {
    lock(c);
    recv_locked(c, v);
    if
    :: r == OK -> unlock(c); ready(wake); deliver(v); v = 0; FINISH
    :: r == CLOSED -> unlock(c); FINISH
    :: r == BLOCK -> enqueue(g, c, RECV, 0); PARK1(g); unlock(c); parked = 1
    fi
  }
  if
  :: parked ->
     PARK2(g)
end_recv:
     d_step {
       gstat[g] == RUNNABLE -> gstat[g] = RUNNING;  /* recv_k */
       if
       :: wok[g * 2] -> deliver(wmsg[g * 2])
       :: else -> skip                              /* closed */
       fi;
       FINISH
     }
  :: else -> skip
  fi
}

/* gr_chan_close.  Each dequeue (at most one claim) is a step of its own:
** a waker on another channel may race it for the same select. */
proctype closer(byte g; byte c) {
  byte w, wake, r, i, n, wl[NG];
  bit parked;
  d_step {
    lock(c);
    if
    :: closed[c] -> unlock(c); r = CLOSED            /* raises */
    :: else -> closed[c] = 1
    fi
  }
  do
  :: r == CLOSED -> break
#ifdef MUT_CLOSE_NO_WAKE
  :: r == BLOCK -> r = OK
#else
  :: r == BLOCK ->                                  /* the receivers */
     d_step {
       dequeue(QI(c, RECV), w);
       if
       :: w == NONE -> r = OK
       :: else -> wok[w] = 0; wl[n] = w / 2; n++
       fi
     }
#endif
  :: r == OK ->                                     /* the senders */
     d_step {
       dequeue(QI(c, SEND), w);
       if
       :: w == NONE ->
          unlock(c);
          i = 0;
          do
          :: i < n -> ready(wl[i]); wl[i] = 0; i++
          :: else -> break
          od;
          r = CLOSED
       :: else -> wok[w] = 0; wl[n] = w / 2; n++
       fi
     }
  od;
  atomic { FINISH; n = 0 }
}

/* One case of a select: poll it (under the locks). */
inline sel_poll(k) {
  if
  :: dir[k] == RECV -> recv_locked(ch[k], v)
  :: else -> send_locked(ch[k], val[k])
  fi
}

/* Case k fired (r: OK or CLOSED; v: the value received). */
inline sel_finish(k) {
  if
  :: dir[1 - k] == SEND -> withdrawn[val[1 - k]] = 1
  :: else -> skip
  fi;
  if
  :: dir[k] == RECV && r == OK -> deliver(v)
  :: dir[k] == SEND && r == CLOSED -> refused[val[k]] = 1   /* raises */
  :: else -> skip
  fi
}

/* l_select with two cases on two channels. */
proctype selector(byte g; byte dir0; byte ch0; byte val0; byte dir1; byte ch1; byte val1) {
  byte w, wake, r, i, v, k, qq, lo, hi, dir[2], ch[2], val[2];
  bit parked;
  assert(ch0 != ch1);
  /* poll order: random (chosen before locking, as in chan.c); the locks
  ** in address order */
  if
  :: k = 0
  :: k = 1
  fi;
#ifdef MUT_LOCK_CASE_ORDER
  lo = ch0; hi = ch1;
#else
  lo = (ch0 < ch1 -> ch0 : ch1); hi = (ch0 < ch1 -> ch1 : ch0);
#endif
  /* sel_lock; the first lock is a step of its own, so that a lock-order
  ** cycle would show */
  lock(lo);
  d_step {
    lock(hi);
    dir[0] = dir0; ch[0] = ch0; val[0] = val0;
    dir[1] = dir1; ch[1] = ch1; val[1] = val1;
    sel_poll(k);
    if
    :: r == BLOCK -> k = 1 - k; sel_poll(k)
    :: else -> skip
    fi;
    if
    :: r != BLOCK ->
       unlock(hi); unlock(lo);
       ready(wake);
       sel_finish(k);
       FINISH; v = 0; k = 0; lo = 0; hi = 0
    :: else ->                          /* a waiter per case, then park */
       seldone[g] = 0;
       /* queued in the poll order, as chan.c does: the case polled first
       ** (1 - k, since k moved on to the second) is queued first */
       i = 0;
       k = 1 - k;
       do
       :: i < 2 ->
          w = g * 2 + k;
          wsel[w] = 1; wok[w] = 0; wch[w] = ch[k];
          if :: dir[k] == SEND -> wmsg[w] = val[k] :: else -> wmsg[w] = 0 fi;
          qpush(QI(ch[k], dir[k]), w);
          k = 1 - k;
          i++
       :: else -> break
       od;
       i = 0; k = 0;
       ncases[g] = 2;
       PARK1(g);
       unlock(hi); unlock(lo);      /* sel_unlock */
       parked = 1
    fi
  }
  if
  :: parked ->
     PARK2(g)
end_select:
     d_step { gstat[g] == RUNNABLE -> gstat[g] = RUNNING; k = fired[g] }
     /* sel_wake_k: take the other case's waiter out of its queue */
     d_step {
       lock(ch[1 - k]);
       w = g * 2 + 1 - k;
       if
       :: wq[w] != NONE -> qq = wq[w]; qremove(qq, w); qq = 0
       :: else -> skip
       fi;
#ifdef CHECK_one_delivery
       assert(wok[w] == 0);             /* the other case did not fire */
#endif
       unlock(ch[1 - k]);
       w = g * 2 + k;
       r = (wok[w] -> OK : CLOSED);
       v = wmsg[w];
       sel_finish(k);
       FINISH; v = 0; k = 0; lo = 0; hi = 0
     }
  :: else -> skip
  fi
}

/* Is a waiter of a G other than g, one that may still be woken, queued on
** queue qi? */
inline live_other(qi, g, res) {
  res = 0;
  j = 0;
  do
  :: j < qlen[qi] ->
     x = q[qi * QMAX + j];
     if
     :: x / 2 != g && gstat[x / 2] == WAITING && (!wsel[x] || !seldone[x / 2]) -> res = 1
     :: else -> skip
     fi;
     j++
  :: else -> break
  od
}

#if defined(CHECK_no_lost_wakeup) || defined(CHECK_one_delivery)
/* Runs once nothing else can move: everything done, or a deadlock. */
active proctype stuck() {
  byte g, k, w, c, j, x, v, n;
  bit res;
  timeout ->
  d_step {
#ifdef CHECK_no_lost_wakeup
    g = 0;
    do
    :: g < NG ->
       if
       :: gstat[g] == WAITING ->
          k = 0;
          do
          :: k < ncases[g] ->
             w = g * 2 + k;
             c = wch[w];
             assert(wq[w] != NONE);          /* taken but never readied */
             assert(!closed[c]);
             if
             :: wq[w] == QI(c, RECV) ->
                assert(count[c] == 0);
                live_other(QI(c, SEND), g, res);
                assert(!res)
             :: else ->
                assert(count[c] == CAP);
                live_other(QI(c, RECV), g, res);
                assert(!res)
             fi;
             k++
          :: else -> break
          od
       :: else -> skip
       fi;
       g++
    :: else -> break
    od;
#endif
#ifdef CHECK_one_delivery
    v = 1;
    do
    :: v <= NV ->
       n = got[v] + refused[v] + withdrawn[v];
       c = 0;
       do
       :: c < NCHAN ->
          if :: count[c] > 0 && bufv[c] == v -> n++ :: else -> skip fi;
          j = 0;
          do
          :: j < qlen[QI(c, SEND)] ->
             x = q[QI(c, SEND) * QMAX + j];
             if :: wmsg[x] == v && gstat[x / 2] == WAITING -> n++ :: else -> skip fi;
             j++
          :: else -> break
          od;
          c++
       :: else -> break
       od;
       /* a sender stuck on a lock is no_false_deadlock's business */
       assert(n == 1 || gstat[vowner[v]] == RUNNING);
       v++
    :: else -> break
    od
#endif
  }
}
#endif

init {
  byte i;
  d_step {
    i = 0;
    do
    :: i < NW -> wq[i] = NONE; i++
    :: else -> break
    od;
    i = 0;
    vowner[1] = 0; vowner[2] = 1; vowner[3] = 3
  }
  atomic {
    run sender(0, A, 1);
    run sender(1, B, 2);
    run selector(2, RECV, A, 0, RECV, B, 0);
    run selector(3, RECV, B, 0, SEND, A, 3);
    run receiver(4, A);
    run closer(5, B)
  }
}
