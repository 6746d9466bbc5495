/*
** shutdown_test.c — gr_close (and lua_close of an attached state) with
** goroutines still blocked everywhere they can block: channel send and
** receive, select, sleep, timers, mutexes, wait groups, cond, a busy loop
** (in plain code, in pcall, in a coroutine), goroutines not started yet,
** messages still buffered.  It returns promptly, and nothing leaks: run
** this program under valgrind --leak-check=full or LeakSanitizer.
*/
#include <sys/wait.h>
#include <lauxlib.h>
#include <lualib.h>
#include "ctest.h"

/* Each blocks for good after saying "ready" on the channel it is given. */
static const char *blockers[] = {
  /* channel receive and send, unbuffered and full */
  "local ready = ...\nlocal c = goroutine.chan()\nready:send(1)\nc:recv()",
  "local ready = ...\nlocal c = goroutine.chan()\nready:send(1)\nc:send({big = string.rep('x', 1000)})",
  "local ready = ...\nlocal c = goroutine.chan(1)\nc:send('kept')\nready:send(1)\nc:send('blocked')",
  /* select, with and without a timer */
  "local ready = ...\nlocal a, b = goroutine.chan(), goroutine.chan()\nready:send(1)\n"
  "goroutine.select { {recv = a}, {send = b, value = {1, 2, 3}}, {recv = goroutine.after(3600)} }",
  "local ready = ...\nready:send(1)\ngoroutine.select {}",
  /* timers */
  "local ready = ...\nready:send(1)\ngoroutine.sleep(3600)",
  "local ready = ...\nlocal t = goroutine.tick(3600)\nready:send(1)\nt:recv()",
  /* sync */
  "local ready = ...\nlocal m = goroutine.mutex()\nm:lock()\nready:send(1)\nm:lock()",
  "local ready = ...\nlocal wg = goroutine.waitgroup()\nwg:add(1)\nready:send(1)\nwg:wait()",
  "local ready = ...\nlocal m = goroutine.mutex()\nlocal c = goroutine.cond(m)\nm:lock()\nready:send(1)\nc:wait()",
  "local ready = ...\nlocal rw = goroutine.rwmutex()\nrw:rlock()\nready:send(1)\nrw:lock()",
  /* busy, never blocking */
  "local ready = ...\nready:send(1)\nwhile true do end",
  "local ready = ...\nready:send(1)\nlocal x = 0\nwhile true do x = x + 1 end",
  "local ready = ...\nready:send(1)\npcall(function() while true do end end)",
  "local ready = ...\nready:send(1)\nwhile true do goroutine.yield() end",
  "local ready = ...\nready:send(1)\ncoroutine.wrap(function() while true do end end)()",
  "local ready = ...\nready:send(1)\ncoroutine.resume(coroutine.create(function()\n"
  "  coroutine.wrap(function() pcall(function() while true do end end) end)() end))",
  /* a goroutine that spawns goroutines that block */
  "local ready = ...\nlocal c = goroutine.chan()\n"
  "for i = 1, 50 do go(function() c:recv() end) end\nready:send(1)\nc:recv()",
};
#define NBLOCKERS ((int)(sizeof blockers / sizeof *blockers))

/* Start every blocker, wait until each has said ready, close. */
static void close_with_everything_blocked(int procs) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = procs;
  gr_runtime *rt = gr_open(&cfg);
  gr_chan *ready = gr_chan_make(rt, NBLOCKERS);
  gr_value arg = ct_chan(ready);
  for (int i = 0; i < NBLOCKERS; i++) ct_go(rt, blockers[i], &arg, 1);
  for (int i = 0; i < NBLOCKERS; i++) {
    gr_value v;
    CHECK(gr_chan_recv(ready, &v, -1) == GR_OK);
  }
  /* A buffered channel still holding values (a table among them), and
  ** goroutines started but perhaps not yet run. */
  gr_chan *full = gr_chan_make(rt, 4);
  gr_value s = ct_str("left behind");
  CHECK(gr_chan_send(full, &s, 0) == GR_OK);
  gr_value farg = ct_chan(full);
  ct_go(rt, "local full = ...\nfull:send({1, 2, 3})", &farg, 1);
  for (int i = 0; i < 20; i++) ct_go(rt, "goroutine.sleep(3600)", NULL, 0);
  gr_chan_unref(full);
  gr_chan_unref(ready);
  double t0 = ct_now();
  gr_close(rt);
  double took = ct_now() - t0;
  CHECKF(took < 60, "gr_close took %.2f s (it waited for the sleeps)", took);
}

static void close_with_one_worker(void) { close_with_everything_blocked(1); }
static void close_with_two_workers(void) { close_with_everything_blocked(2); }
static void close_with_four_workers(void) { close_with_everything_blocked(4); }

/* gr_close at once after gr_go: the goroutine may never have run, and
** workers may still be starting (on 1 to 4 of them: gr_close once joined a
** worker whose thread handle pthread_create had not written yet). */
static void close_before_anything_ran(void) {
  for (int i = 0; i < 12; i++) {
    gr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.procs = 1 + i % 4;
    gr_runtime *rt = gr_open(&cfg);
    gr_value args[2] = { ct_str("an argument"), ct_int(i) };
    for (int j = 0; j < 10; j++) ct_go(rt, "local s, i = ...\nlocal t = {s, i}\ngoroutine.sleep(3600)", args, 2);
    gr_close(rt);
  }
}

/* The attached form: lua_close of the host state stops everything. */
static void lua_close_with_everything_blocked(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  gr_runtime *rt = gr_attach(L, &cfg);
  gr_chan *ready = gr_chan_make(rt, NBLOCKERS);
  gr_value arg = ct_chan(ready);
  for (int i = 0; i < NBLOCKERS; i++) ct_go(rt, blockers[i], &arg, 1);
  for (int i = 0; i < NBLOCKERS; i++) {
    gr_value v;
    CHECK(gr_chan_recv(ready, &v, -1) == GR_OK);
  }
  gr_chan_unref(ready);
  /* The main goroutine holds channels and handles of its own. */
  CHECK(luaL_dostring(L,
    "local g = require 'goroutine'\n"
    "kept = { g.chan(3), g.mutex(), g.waitgroup() }\n"
    "kept[1]:send({ 'buffered' })\n") == LUA_OK);
  double t0 = ct_now();
  lua_close(L);
  double took = ct_now() - t0;
  CHECKF(took < 60, "lua_close took %.2f s (it waited for the sleeps)", took);
}

/* Open and close, with work in between, many times over: nothing piles up
** (threads are joined: a leak of threads would show in valgrind and run
** the process out of them here). */
static void many_runtimes_in_turn(void) {
  for (int i = 0; i < 30; i++) {
    gr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.procs = 2;
    gr_runtime *rt = gr_open(&cfg);
    gr_chan *c = gr_chan_make(rt, 0);
    gr_value arg = ct_chan(c);
    ct_go(rt, "local c = ...\nc:send(goroutine.id())\nwhile true do end", &arg, 1);
    gr_value v;
    CHECK(gr_chan_recv(c, &v, -1) == GR_OK);
    gr_chan_unref(c);
    gr_close(rt);
  }
}

/* Run fn in a child process that must exit 0 within 'secs' seconds (a
** test of something that could hang or end the process). */
static void in_child(void (*fn)(void), unsigned secs) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL);             /* not the harness's watchdog */
    alarm(secs);
    fn();
    _exit(0);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child %s %d",
         WIFEXITED(status) ? "exited with status" : "was killed by signal",
         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/*
** A goroutine busy inside a coroutine of its own: the preemption hook must
** reach the coroutine the loop runs in (libs.c's coroutine.wrap keeps
** g->running), or gr_close waits for its worker forever.  In a child
** process, killed by SIGALRM after 20 s if it hangs.
*/
static void busy_in_a_coroutine_child(void) {
  gr_runtime *rt = gr_open(NULL);
  gr_chan *ready = gr_chan_make(rt, 1);
  gr_value arg = ct_chan(ready);
  gr_go(rt, "local ready = ...\nready:send(1)\ncoroutine.wrap(function() while true do end end)()",
        "=busy", &arg, 1, NULL);
  gr_value v;
  gr_chan_recv(ready, &v, -1);
  gr_chan_unref(ready);
  gr_close(rt);
}

static void close_with_a_busy_loop_inside_a_coroutine(void) {
  in_child(busy_in_a_coroutine_child, 20);
}

/*
** A host runs its own code while every goroutine waits: the runtime must
** not take the host's process down with a deadlock report (the host is
** the runtime's main goroutine: it can always start another goroutine or
** close the runtime).  Run in a child process, which would exit 2.
*/
static void parked_child(void) {
  gr_runtime *rt = gr_open(NULL);
  gr_go(rt, "goroutine.chan():recv()", "=stuck", NULL, 0, NULL);
  /* The host's own work, outside the runtime, for a while: the only
  ** wait in these tests that is about time itself. */
  struct timespec ts = { 0, 500 * 1000 * 1000 };
  nanosleep(&ts, NULL);
  gr_close(rt);
}

static void all_goroutines_parked_does_not_end_the_host(void) {
  in_child(parked_child, 30);
}

/*
** The host drops its channels only after gr_close: the runtime's record
** waits for them.  Calls on them in between give GR_ERROR, even on a
** channel whose wait queue still names a goroutine that was stopped.
*/
static void channels_dropped_after_close(void) {
  gr_runtime *rt = gr_open(NULL);
  gr_chan *kept = gr_chan_make(rt, 2);
  gr_chan *ready = gr_chan_make(rt, 1);
  gr_value s = ct_str("buffered");
  CHECK(gr_chan_send(kept, &s, 0) == GR_OK);
  gr_value arg = ct_chan(ready);
  ct_go(rt, "local ready = ...\nlocal mine = goroutine.chan()\nready:send(mine)\nmine:recv()", &arg, 1);
  gr_value theirs;
  CHECK(gr_chan_recv(ready, &theirs, -1) == GR_OK && theirs.type == GR_CHANNEL);
  gr_close(rt);
  gr_value x = ct_int(1), got;
  CHECK(gr_chan_send(kept, &x, 0) == GR_ERROR);
  CHECK(gr_chan_recv(kept, &got, -1) == GR_ERROR && got.type == GR_NIL);
  CHECK(gr_chan_close(kept) == GR_ERROR);
  if (theirs.type == GR_CHANNEL) {
    CHECK(gr_chan_send(theirs.u.channel, &x, -1) == GR_ERROR);
    CHECK(gr_chan_close(theirs.u.channel) == GR_ERROR);
  }
  gr_value_free(&theirs);
  gr_chan_unref(ready);
  gr_chan_unref(kept);                   /* the last: frees the runtime */
}

/*
** At close, one goroutine is parked in a select on x (its waiters live in
** its state), and another's state holds a value whose __gc sends on x.
** Whichever state closes first, the finalizer must not meet the select's
** waiters: they leave x's queue before any state closes (under make asan
** a waiter of a closed state would be a use after free).
*/
static void select_waiters_leave_before_states_close(void) {
  static const char *selector =
    "local x, ready = ...\nready:send(1)\ngoroutine.select { {recv = x}, {recv = goroutine.chan()} }";
  static const char *finalizer =
    "local x, ready = ...\n"
    "local keep = setmetatable({}, { __gc = function() x:trysend('from __gc') end })\n"
    "ready:send(1)\ngoroutine.chan():recv()\nreturn keep";
  for (int order = 0; order < 2; order++) {
    gr_runtime *rt = gr_open(NULL);
    gr_chan *x = gr_chan_make(rt, 0), *ready = gr_chan_make(rt, 2);
    gr_value args[2] = { ct_chan(x), ct_chan(ready) };
    ct_go(rt, order ? finalizer : selector, args, 2);
    ct_go(rt, order ? selector : finalizer, args, 2);
    gr_value v;
    CHECK(gr_chan_recv(ready, &v, -1) == GR_OK);
    CHECK(gr_chan_recv(ready, &v, -1) == GR_OK);
    gr_chan_unref(ready);
    gr_chan_unref(x);
    gr_close(rt);
  }
}

int main(void) {
  ct_begin();
  RUN(close_with_one_worker);
  RUN(close_with_two_workers);
  RUN(close_with_four_workers);
  RUN(close_before_anything_ran);
  RUN(lua_close_with_everything_blocked);
  RUN(many_runtimes_in_turn);
  RUN(close_with_a_busy_loop_inside_a_coroutine);
  RUN(all_goroutines_parked_does_not_end_the_host);
  RUN(channels_dropped_after_close);
  RUN(select_waiters_leave_before_states_close);
  return ct_end();
}
