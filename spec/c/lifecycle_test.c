/*
** lifecycle_test.c — a runtime's life through goroutine.h: gr_open and
** gr_close (again and again), running chunks and files as goroutines and
** waiting for them (gr_dostring, gr_dofile) with their errors and
** tracebacks, gr_go and the ids it returns, and gr_attach on a host state
** that lua_close later stops.
*/
#include <lauxlib.h>
#include <lualib.h>
#include "ctest.h"

static gr_config config(int procs) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = procs;
  return cfg;
}

/* A temporary file holding code; the caller removes and frees the path. */
static char *temp_script(const char *code) {
  char *path = strdup("/tmp/gr_lifecycle_XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) { free(path); return NULL; }
  size_t n = strlen(code);
  if (write(fd, code, n) != (ssize_t)n) { close(fd); unlink(path); free(path); return NULL; }
  close(fd);
  return path;
}

/* ------------------------------------------------------- open and close */

static void open_close_again_and_again(void) {
  for (int i = 0; i < 20; i++) {
    gr_config cfg = config(1 + i % 3);
    gr_runtime *rt = gr_open(&cfg);
    CHECK(rt != NULL);
    if (rt == NULL) return;
    if (i % 2) CHECK(gr_dostring(rt, "local x = 1 + 1", NULL, NULL) == GR_OK);
    gr_close(rt);
  }
}

static void open_with_null_config(void) {
  gr_runtime *rt = gr_open(NULL);
  CHECK(rt != NULL);
  CHECK(gr_dostring(rt, "assert(goroutine.maxprocs() >= 1)", "=null", NULL) == GR_OK);
  gr_close(rt);
  gr_close(NULL);                         /* a no-op, as free(NULL) */
}

static void procs_sets_the_worker_count(void) {
  gr_config cfg = config(3);
  gr_runtime *rt = gr_open(&cfg);
  char *err = NULL;
  CHECK(gr_dostring(rt, "assert(goroutine.maxprocs() == 3, goroutine.maxprocs())", "=procs", &err) == GR_OK);
  CHECKF(err == NULL, "%s", ct_s(err));
  free(err);
  gr_close(rt);
}

/* ------------------------------------------------------------ dostring */

static void dostring_runs_a_chunk_as_a_goroutine(void) {
  gr_config cfg = config(2);
  gr_runtime *rt = gr_open(&cfg);
  char *err = (char *)"untouched";
  int r = gr_dostring(rt,
    "assert(goroutine.id() > 1)\n"
    "local wg = goroutine.waitgroup()\n"
    "local sum = goroutine.atomic()\n"
    "for i = 1, 10 do wg:add(); go(function() sum:add(i); wg:done() end) end\n"
    "wg:wait()\n"
    "assert(sum:load() == 55)\n", "=ok", &err);
  CHECK(r == GR_OK);
  CHECKF(err == NULL, "err = %s", ct_s(err));
  gr_close(rt);
}

static void dostring_waits_for_the_chunk_to_end(void) {
  gr_config cfg = config(2);
  gr_runtime *rt = gr_open(&cfg);
  char *err = NULL;
  /* The error comes only after 1000 switches: returning it proves the
  ** call waited for the end. */
  int r = gr_dostring(rt,
    "for i = 1, 1000 do goroutine.yield() end\n"
    "error('late')\n", "=late", &err);
  CHECK(r == GR_ERROR);
  CHECKF(ct_contains(err, "late:2: late"), "err = %s", ct_s(err));
  free(err);
  gr_close(rt);
}

static void dostring_error_has_message_and_traceback(void) {
  gr_config cfg = config(2);
  gr_runtime *rt = gr_open(&cfg);
  char *err = NULL;
  int r = gr_dostring(rt,
    "local function inner() error('boom') end\n"
    "local function outer() inner() end\n"
    "outer()\n", "=chunky", &err);
  CHECK(r == GR_ERROR);
  CHECKF(ct_contains(err, "chunky:1: boom"), "err = %s", ct_s(err));
  CHECKF(ct_contains(err, "stack traceback:"), "err = %s", ct_s(err));
  CHECKF(ct_contains(err, "inner"), "err = %s", ct_s(err));
  CHECKF(ct_contains(err, "outer"), "err = %s", ct_s(err));
  free(err);
  /* A NULL err: the message is dropped, the status stays. */
  CHECK(gr_dostring(rt, "error('dropped')", "=x", NULL) == GR_ERROR);
  /* The runtime is still usable. */
  CHECK(gr_dostring(rt, "return 1", "=after", NULL) == GR_OK);
  gr_close(rt);
}

static void dostring_syntax_error(void) {
  gr_config cfg = config(1);
  gr_runtime *rt = gr_open(&cfg);
  char *err = NULL;
  CHECK(gr_dostring(rt, "local = 1", "=syntax", &err) == GR_ERROR);
  CHECKF(ct_contains(err, "syntax:1:"), "err = %s", ct_s(err));
  free(err);
  err = NULL;
  /* The default chunk name. */
  CHECK(gr_dostring(rt, "x x", NULL, &err) == GR_ERROR);
  CHECKF(err != NULL && strstr(err, ":1:") != NULL, "err = %s", ct_s(err));
  free(err);
  gr_close(rt);
}

static void dostring_error_objects(void) {
  gr_config cfg = config(1);
  gr_runtime *rt = gr_open(&cfg);
  char *err = NULL;
  CHECK(gr_dostring(rt, "error({})", "=t", &err) == GR_ERROR);
  CHECKF(ct_contains(err, "(error object is a table value)"), "err = %s", ct_s(err));
  free(err);
  err = NULL;
  CHECK(gr_dostring(rt, "error(setmetatable({}, {__tostring = function() return 'described' end}))",
                    "=t", &err) == GR_ERROR);
  CHECKF(ct_contains(err, "described"), "err = %s", ct_s(err));
  free(err);
  gr_close(rt);
}

/* -------------------------------------------------------------- dofile */

static void dofile_ok_and_error(void) {
  gr_config cfg = config(2);
  gr_runtime *rt = gr_open(&cfg);
  char *ok = temp_script("local t = {}\nfor i = 1, 100 do t[i] = i end\nassert(#t == 100)\n");
  char *bad = temp_script("local x = 1\nerror('in the file')\n");
  CHECK(ok != NULL && bad != NULL);
  char *err = NULL;
  CHECK(gr_dofile(rt, ok, &err) == GR_OK);
  CHECKF(err == NULL, "err = %s", ct_s(err));
  free(err);
  err = NULL;
  CHECK(gr_dofile(rt, bad, &err) == GR_ERROR);
  char where[64];
  snprintf(where, sizeof where, "%s:2: in the file", bad);
  CHECKF(ct_contains(err, where), "err = %s", ct_s(err));
  CHECKF(ct_contains(err, "stack traceback:"), "err = %s", ct_s(err));
  free(err);
  err = NULL;
  CHECK(gr_dofile(rt, "/nonexistent/script.lua", &err) == GR_ERROR);
  CHECKF(ct_contains(err, "cannot open /nonexistent/script.lua"), "err = %s", ct_s(err));
  free(err);
  unlink(ok);
  unlink(bad);
  free(ok);
  free(bad);
  gr_close(rt);
}

/* ---------------------------------------------------------------- gr_go */

static void go_returns_increasing_ids(void) {
  gr_config cfg = config(2);
  gr_runtime *rt = gr_open(&cfg);
  gr_chan *ids = gr_chan_make(rt, 8);
  gr_value arg = ct_chan(ids);
  long long got[8];
  for (int i = 0; i < 8; i++) {
    got[i] = ct_go(rt, "local ids = ...\nids:send(goroutine.id())", &arg, 1);
    if (i == 0) CHECKF(got[0] == 2, "first id %lld: ids start at 2, as if a main goroutine ran", got[0]);
    else CHECKF(got[i] == got[i - 1] + 1, "id %lld after %lld", got[i], got[i - 1]);
  }
  /* Each goroutine reports the id gr_go returned for it. */
  int seen = 0;
  for (int i = 0; i < 8; i++) {
    gr_value v;
    CHECK(gr_chan_recv(ids, &v, -1) == GR_OK && v.type == GR_INTEGER);
    for (int j = 0; j < 8; j++)
      if (v.type == GR_INTEGER && v.u.integer == got[j]) seen |= 1 << j;
  }
  CHECKF(seen == 0xff, "seen mask %x", seen);
  gr_chan_unref(ids);
  gr_close(rt);
}

static void go_passes_arguments_and_returns_at_once(void) {
  gr_config cfg = config(2);
  gr_runtime *rt = gr_open(&cfg);
  gr_chan *out = gr_chan_make(rt, 0);
  gr_value args[5] = { ct_chan(out), ct_int(40), ct_num(2.5), ct_str("x"), ct_bool(1) };
  /* Unbuffered: the goroutine blocks on send until we receive, so gr_go
  ** must have returned without waiting for it. */
  long long id = ct_go(rt,
    "local out, i, f, s, b = ...\n"
    "out:send(string.format('%s %s %s %s %s %d', math.type(i), i + 2, f, s, b, select('#', ...)))",
    args, 5);
  CHECK(id > 1);
  CHECK_RECV_STR(out, "integer 42 2.5 x true 5");
  gr_chan_unref(out);
  gr_close(rt);
}

static void go_syntax_error(void) {
  gr_config cfg = config(1);
  gr_runtime *rt = gr_open(&cfg);
  char *err = NULL;
  CHECK(gr_go(rt, "this is not lua", "=bad", NULL, 0, &err) == -1);
  CHECKF(ct_contains(err, "bad:1:"), "err = %s", ct_s(err));
  free(err);
  CHECK(gr_go(rt, "(", "=bad", NULL, 0, NULL) == -1);     /* err may be NULL */
  gr_close(rt);
}

/* ------------------------------------------------------------ gr_attach */

static void attach_to_a_host_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  gr_config cfg = config(2);
  gr_runtime *rt = gr_attach(L, &cfg);
  CHECK(rt != NULL);
  /* The module is in package.loaded, no global is set... */
  CHECK(lua_getglobal(L, "goroutine") == LUA_TNIL);
  lua_pop(L, 1);
  CHECK(luaL_dostring(L, "return package.loaded.goroutine.id()") == LUA_OK);
  CHECK(lua_tointeger(L, -1) == 1);              /* L is the main goroutine */
  lua_pop(L, 1);
  /* ...until gr_setglobals. */
  gr_setglobals(L);
  CHECK(lua_getglobal(L, "goroutine") == LUA_TTABLE);
  CHECK(lua_getglobal(L, "go") == LUA_TFUNCTION);
  lua_pop(L, 2);
  /* The host thread runs L; goroutines run on the workers. */
  int r = luaL_dostring(L,
    "local ch = goroutine.chan()\n"
    "for i = 1, 10 do go(function() ch:send(i * i) end) end\n"
    "local sum = 0\n"
    "for i = 1, 10 do sum = sum + ch:recv() end\n"
    "assert(sum == 385, sum)\n"
    "return sum");
  CHECKF(r == LUA_OK, "%s", lua_tostring(L, -1));
  lua_settop(L, 0);
  /* The host's own channel, pushed onto L. */
  gr_chan *c = gr_chan_make(rt, 1);
  gr_value seven = ct_int(7);
  CHECK(gr_chan_send(c, &seven, 0) == GR_OK);
  gr_chan_push(L, c);
  lua_setglobal(L, "hostchan");
  CHECK(luaL_dostring(L, "assert(hostchan:recv() == 7); hostchan:send('back')") == LUA_OK);
  CHECK_RECV_STR(c, "back");
  gr_chan_unref(c);
  /* Goroutines left blocked: lua_close stops them all and joins every
  ** thread (valgrind and LeakSanitizer see the rest). */
  r = luaL_dostring(L,
    "local never = goroutine.chan()\n"
    "for i = 1, 20 do go(function() never:recv() end) end\n"
    "go(function() goroutine.sleep(3600) end)\n"
    "go(function() while true do end end)\n");
  CHECK(r == LUA_OK);
  double t0 = ct_now();
  lua_close(L);
  CHECKF(ct_now() - t0 < 60, "lua_close took %.2f s (it waited for the sleep)", ct_now() - t0);
}

static void attach_pcall_runs_on_the_workers(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  gr_config cfg = config(2);
  CHECK(gr_attach(L, &cfg) != NULL);
  gr_setglobals(L);
  /* gr_pcall: the function's results come back as lua_pcall's would. */
  CHECK(luaL_loadstring(L, "local a, b = ...; return a + b, goroutine.id()") == LUA_OK);
  lua_pushinteger(L, 20);
  lua_pushinteger(L, 22);
  CHECK(gr_pcall(L, 2, 2) == LUA_OK);
  CHECK(lua_tointeger(L, -2) == 42);
  CHECK(lua_tointeger(L, -1) == 1);              /* still the main goroutine */
  lua_settop(L, 0);
  /* An error: the message and a traceback on L. */
  const char *code = "local function f() error('pcall boom') end\nf()";
  CHECK(luaL_loadbuffer(L, code, strlen(code), "=pc") == LUA_OK);
  CHECK(gr_pcall(L, 0, 0) == LUA_ERRRUN);
  const char *msg = lua_tostring(L, -1);
  CHECKF(ct_contains(msg, "pc:1: pcall boom"), "msg = %s", ct_s(msg));
  CHECKF(ct_contains(msg, "stack traceback:"), "msg = %s", ct_s(msg));
  CHECK(lua_gettop(L) == 1);
  lua_close(L);
}

static void attach_twice_in_turn(void) {
  for (int i = 0; i < 5; i++) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    gr_config cfg = config(2);
    CHECK(gr_attach(L, &cfg) != NULL);
    CHECK(luaL_dostring(L,
      "local g = require 'goroutine'\n"
      "local ch = g.chan()\n"
      "g.go(function() ch:send(g.id()) end)\n"
      "assert(ch:recv() == 2)") == LUA_OK);
    lua_close(L);
  }
}

int main(void) {
  ct_begin();
  RUN(open_close_again_and_again);
  RUN(open_with_null_config);
  RUN(procs_sets_the_worker_count);
  RUN(dostring_runs_a_chunk_as_a_goroutine);
  RUN(dostring_waits_for_the_chunk_to_end);
  RUN(dostring_error_has_message_and_traceback);
  RUN(dostring_syntax_error);
  RUN(dostring_error_objects);
  RUN(dofile_ok_and_error);
  RUN(go_returns_increasing_ids);
  RUN(go_passes_arguments_and_returns_at_once);
  RUN(go_syntax_error);
  RUN(attach_to_a_host_state);
  RUN(attach_pcall_runs_on_the_workers);
  RUN(attach_twice_in_turn);
  return ct_end();
}
