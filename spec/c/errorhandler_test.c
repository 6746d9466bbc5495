/*
** errorhandler_test.c — cfg.on_error: an error no goroutine catches goes to
** the host's handler with the goroutine's id and the message with its
** traceback, instead of ending the process; that goroutine ends, the others
** go on, and the runtime stays usable.
*/
#include "ctest.h"

enum { MAXERR = 256 };

typedef struct errlog {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int n;
  long long ids[MAXERR];
  char *msgs[MAXERR];
} errlog;

static void on_error(void *ud, long long id, const char *msg) {
  errlog *log = (errlog *)ud;
  pthread_mutex_lock(&log->lock);
  if (log->n < MAXERR) {
    log->ids[log->n] = id;
    log->msgs[log->n] = strdup(msg);
  }
  log->n++;
  pthread_cond_broadcast(&log->cond);
  pthread_mutex_unlock(&log->lock);
}

static void log_wait(errlog *log, int n) {
  pthread_mutex_lock(&log->lock);
  while (log->n < n) pthread_cond_wait(&log->cond, &log->lock);
  pthread_mutex_unlock(&log->lock);
}

static int log_count(errlog *log) {
  pthread_mutex_lock(&log->lock);
  int n = log->n;
  pthread_mutex_unlock(&log->lock);
  return n;
}

static void log_free(errlog *log) {
  for (int i = 0; i < log->n && i < MAXERR; i++) free(log->msgs[i]);
  pthread_mutex_destroy(&log->lock);
  pthread_cond_destroy(&log->cond);
}

static gr_runtime *open_logging(errlog *log) {
  memset(log, 0, sizeof *log);
  pthread_mutex_init(&log->lock, NULL);
  pthread_cond_init(&log->cond, NULL);
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  cfg.on_error = on_error;
  cfg.ud = log;
  return gr_open(&cfg);
}

static void handler_gets_id_message_and_traceback(void) {
  errlog log;
  gr_runtime *rt = open_logging(&log);
  char *err = NULL;
  long long id = gr_go(rt,
    "local function deeper() error('boom') end\n"
    "local function handler_test() deeper() end\n"
    "handler_test()\n", "=failing", NULL, 0, &err);
  CHECK(id > 1);
  log_wait(&log, 1);
  CHECKF(log.ids[0] == id, "id %lld, want %lld", log.ids[0], id);
  CHECKF(ct_contains(log.msgs[0], "failing:1: boom"), "msg: %s", ct_s(log.msgs[0]));
  CHECKF(ct_contains(log.msgs[0], "stack traceback:"), "msg: %s", ct_s(log.msgs[0]));
  CHECKF(ct_contains(log.msgs[0], "deeper"), "msg: %s", ct_s(log.msgs[0]));
  CHECKF(ct_contains(log.msgs[0], "handler_test"), "msg: %s", ct_s(log.msgs[0]));
  gr_close(rt);
  log_free(&log);
}

static void error_objects_that_are_not_strings(void) {
  errlog log;
  gr_runtime *rt = open_logging(&log);
  ct_go(rt, "error({})", NULL, 0);
  log_wait(&log, 1);
  ct_go(rt, "error(setmetatable({}, {__tostring = function() return 'my error object' end}))", NULL, 0);
  log_wait(&log, 2);
  ct_go(rt, "error(42)", NULL, 0);
  log_wait(&log, 3);
  CHECKF(ct_contains(log.msgs[0], "(error object is a table value)"), "msg: %s", ct_s(log.msgs[0]));
  CHECKF(ct_contains(log.msgs[1], "my error object"), "msg: %s", ct_s(log.msgs[1]));
  CHECKF(ct_contains(log.msgs[2], "42"), "msg: %s", ct_s(log.msgs[2]));
  gr_close(rt);
  log_free(&log);
}

/* An error in a goroutine that Lua started: its id is the one go()
** returned. */
static void goroutines_started_from_lua(void) {
  errlog log;
  gr_runtime *rt = open_logging(&log);
  gr_chan *ids = gr_chan_make(rt, 1);
  gr_value arg = ct_chan(ids);
  ct_go(rt, "local ids = ...\nids:send(go(function() error('child failed') end))", &arg, 1);
  gr_value v;
  CHECK(gr_chan_recv(ids, &v, -1) == GR_OK && v.type == GR_INTEGER);
  log_wait(&log, 1);
  CHECK(log.ids[0] == v.u.integer);
  CHECKF(ct_contains(log.msgs[0], "child failed"), "msg: %s", ct_s(log.msgs[0]));
  gr_chan_unref(ids);
  gr_close(rt);
  log_free(&log);
}

/* The failing goroutine ends; one that was running before keeps serving,
** new ones start, gr_dostring works, and the handler saw exactly one. */
static void the_others_go_on(void) {
  errlog log;
  gr_runtime *rt = open_logging(&log);
  gr_chan *in = gr_chan_make(rt, 0), *out = gr_chan_make(rt, 0);
  gr_value args[2] = { ct_chan(in), ct_chan(out) };
  ct_go(rt, "local inc, out = ...\nfor v in inc:range() do out:send(v * 2) end", args, 2);
  gr_value v = ct_int(1), got;
  CHECK(gr_chan_send(in, &v, -1) == GR_OK);
  CHECK(gr_chan_recv(out, &got, -1) == GR_OK && got.u.integer == 2);
  ct_go(rt, "error('one fails')", NULL, 0);
  log_wait(&log, 1);
  v = ct_int(21);
  CHECK(gr_chan_send(in, &v, -1) == GR_OK);
  CHECK(gr_chan_recv(out, &got, -1) == GR_OK && got.u.integer == 42);
  ct_go(rt, "local out = ...\nout:send(7)", args + 1, 1);
  CHECK(gr_chan_recv(out, &got, -1) == GR_OK && got.u.integer == 7);
  CHECK(gr_dostring(rt, "assert(goroutine.count() >= 1)", "=after", NULL) == GR_OK);
  CHECK(log_count(&log) == 1);
  gr_chan_close(in);
  gr_chan_unref(in);
  gr_chan_unref(out);
  gr_close(rt);
  log_free(&log);
}

/* Errors caught inside Lua, and gr_dostring's own error, never reach the
** handler. */
static void caught_errors_do_not_reach_it(void) {
  errlog log;
  gr_runtime *rt = open_logging(&log);
  char *err = NULL;
  CHECK(gr_dostring(rt,
    "local ok, e = pcall(error, 'caught')\n"
    "assert(not ok and e == 'caught')\n"
    "local wg = goroutine.waitgroup()\n"
    "wg:add()\n"
    "go(function() pcall(error, 'caught too'); wg:done() end)\n"
    "wg:wait()\n", "=caught", &err) == GR_OK);
  free(err);
  err = NULL;
  CHECK(gr_dostring(rt, "error('to the caller')", "=mine", &err) == GR_ERROR);
  CHECKF(ct_contains(err, "to the caller"), "err: %s", ct_s(err));
  free(err);
  CHECK(log_count(&log) == 0);
  gr_close(rt);
  log_free(&log);
}

/* Many goroutines failing at once: one call each, with its own id. */
static void many_at_once(void) {
  errlog log;
  gr_runtime *rt = open_logging(&log);
  enum { N = 100 };
  long long ids[N];
  for (int i = 0; i < N; i++) {
    gr_value v = ct_int(i);
    ids[i] = ct_go(rt, "local i = ...\nfor _ = 1, i % 7 do goroutine.yield() end\nerror('fail ' .. i)", &v, 1);
  }
  log_wait(&log, N);
  int matched = 0;
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < N; j++) {
      if (log.ids[j] != ids[i]) continue;
      char want[32];
      snprintf(want, sizeof want, "fail %d\n", i);
      if (ct_contains(log.msgs[j], want)) matched++;
    }
  }
  CHECKF(matched == N, "%d of %d errors matched their goroutine", matched, N);
  gr_close(rt);
  CHECK(log.n == N);
  log_free(&log);
}

int main(void) {
  ct_begin();
  RUN(handler_gets_id_message_and_traceback);
  RUN(error_objects_that_are_not_strings);
  RUN(goroutines_started_from_lua);
  RUN(the_others_go_on);
  RUN(caught_errors_do_not_reach_it);
  RUN(many_at_once);
  return ct_end();
}
