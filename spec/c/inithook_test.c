/*
** inithook_test.c — cfg.on_state, the per-state init hook: it runs in
** every new goroutine state, on a worker thread, before the goroutine's
** function, with the host's ud; what it registers (a C library, a global,
** a preloaded module, a channel) is there for goroutines started from C
** and from Lua alike.
*/
#include <lauxlib.h>
#include <lualib.h>
#include "ctest.h"

typedef struct host {
  const char *tag;
  atomic_int states;         /* on_state calls */
  atomic_int offmain;        /* of which on a thread other than main's */
  atomic_int calls;          /* host.add calls */
  pthread_t main;
  gr_chan *shared;           /* pushed into every state as host.shared */
} host;

static int host_add(lua_State *L) {
  host *h = (host *)lua_touserdata(L, lua_upvalueindex(1));
  atomic_fetch_add(&h->calls, 1);
  lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
  return 1;
}

static int host_tag(lua_State *L) {
  host *h = (host *)lua_touserdata(L, lua_upvalueindex(1));
  lua_pushstring(L, h->tag);
  return 1;
}

static int open_hostlib(lua_State *L) {
  static const luaL_Reg fns[] = { {"add", host_add}, {"tag", host_tag}, {NULL, NULL} };
  luaL_newlibtable(L, fns);
  lua_pushvalue(L, lua_upvalueindex(1));
  luaL_setfuncs(L, fns, 1);
  return 1;
}

/* The hook: a global 'host' (also require "host"), and host.shared. */
static void on_state(void *ud, lua_State *L) {
  host *h = (host *)ud;
  atomic_fetch_add(&h->states, 1);
  if (!pthread_equal(pthread_self(), h->main)) atomic_fetch_add(&h->offmain, 1);
  lua_pushlightuserdata(L, h);
  lua_pushcclosure(L, open_hostlib, 1);
  lua_call(L, 0, 1);
  if (h->shared) {
    gr_chan_push(L, h->shared);
    lua_setfield(L, -2, "shared");
  }
  /* package.loaded.host, so require "host" finds it too. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "host");
  lua_pop(L, 1);
  lua_setglobal(L, "host");
}

static gr_runtime *open_with(host *h) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  cfg.on_state = on_state;
  cfg.ud = h;
  h->main = pthread_self();
  return gr_open(&cfg);
}

static void goroutines_from_c_see_the_hook(void) {
  host h = { .tag = "first" };
  gr_runtime *rt = open_with(&h);
  gr_chan *out = gr_chan_make(rt, 0);
  gr_value arg = ct_chan(out);
  enum { N = 10 };
  for (int i = 0; i < N; i++)
    ct_go(rt, "local out = ...\nout:send(host.tag() .. ' ' .. host.add(40, 2))", &arg, 1);
  for (int i = 0; i < N; i++) CHECK_RECV_STR(out, "first 42");
  CHECK(atomic_load(&h.calls) == N);
  /* Every state was made by the hook's runtime, on a worker thread. */
  CHECKF(atomic_load(&h.states) >= 1 && atomic_load(&h.states) <= N, "%d states", atomic_load(&h.states));
  CHECK(atomic_load(&h.offmain) == atomic_load(&h.states));
  gr_chan_unref(out);
  gr_close(rt);
}

static void goroutines_from_lua_see_the_hook(void) {
  host h = { .tag = "nested" };
  gr_runtime *rt = open_with(&h);
  char *err = NULL;
  /* go() from Lua: the function's _ENV is bound to the new goroutine's
  ** own globals, where the hook put 'host'; require finds it too. */
  int r = gr_dostring(rt,
    "assert(host.add(1, 2) == 3)\n"
    "local ch = goroutine.chan()\n"
    "for i = 1, 20 do\n"
    "  go(function() ch:send(host.add(i, 0) + require('host').add(0, 0)) end)\n"
    "end\n"
    "local sum = 0\n"
    "for i = 1, 20 do sum = sum + ch:recv() end\n"
    "assert(sum == 210, sum)\n"
    "go(function() go(function() ch:send(host.tag()) end) end)\n"
    "assert(ch:recv() == 'nested')\n", "=nested", &err);
  CHECKF(r == GR_OK, "%s", ct_s(err));
  free(err);
  CHECK(atomic_load(&h.calls) == 1 + 40);
  gr_close(rt);
}

/* A host channel put into every state by the hook: every goroutine can
** report to the host without being passed anything. */
static void the_hook_hands_a_channel_to_every_goroutine(void) {
  host h = { .tag = "chan" };
  gr_runtime *rt = open_with(&h);
  h.shared = gr_chan_make(rt, 0);
  for (int i = 0; i < 5; i++)
    ct_go(rt, "host.shared:send(goroutine.id())", NULL, 0);
  long long sum = 0;
  for (int i = 0; i < 5; i++) {
    gr_value v;
    CHECK(gr_chan_recv(h.shared, &v, -1) == GR_OK && v.type == GR_INTEGER);
    sum += v.u.integer;
  }
  CHECK(sum == 2 + 3 + 4 + 5 + 6);
  gr_chan_unref(h.shared);
  gr_close(rt);
}

/* The hook runs before the function: a goroutine that only reads a global
** the hook sets never finds it missing, however many start at once. */
static void on_state_order(void *ud, lua_State *L) {
  (void)ud;
  lua_pushboolean(L, 1);
  lua_setglobal(L, "READY");
}

static void the_hook_runs_before_the_function(void) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  cfg.on_state = on_state_order;
  gr_runtime *rt = gr_open(&cfg);
  char *err = NULL;
  int r = gr_dostring(rt,
    "assert(READY)\n"
    "local wg = goroutine.waitgroup()\n"
    "local bad = goroutine.atomic()\n"
    "for i = 1, 200 do wg:add(); go(function() if not READY then bad:add(1) end; wg:done() end) end\n"
    "wg:wait()\n"
    "assert(bad:load() == 0)\n", "=order", &err);
  CHECKF(r == GR_OK, "%s", ct_s(err));
  free(err);
  gr_close(rt);
}

/* Without a hook, no such global. */
static void no_hook_no_host(void) {
  gr_runtime *rt = gr_open(NULL);
  CHECK(gr_dostring(rt, "assert(host == nil)", "=nohook", NULL) == GR_OK);
  gr_close(rt);
}

/*
** A hook that raises: the goroutine cannot start, and its error goes where
** uncaught errors go (on_error here) with the hook's own message.
** (The hook runs inside state_setup's pcall, whose failure was once taken
** for an allocation failure; this test keeps the hook's message.)
*/
static void on_state_raises(void *ud, lua_State *L) {
  (void)ud;
  luaL_error(L, "the host library failed to open");
}

static ct_counter nerrors = CT_COUNTER_INIT;
static char *last_error;

static void record_error(void *ud, long long id, const char *msg) {
  (void)ud; (void)id;
  free(last_error);
  last_error = strdup(msg);
  ct_counter_add(&nerrors);
}

static void a_hook_that_raises_fails_the_goroutine(void) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  cfg.on_state = on_state_raises;
  cfg.on_error = record_error;
  gr_runtime *rt = gr_open(&cfg);
  ct_go(rt, "error('never runs')", NULL, 0);
  ct_counter_wait(&nerrors, 1);
  CHECKF(ct_contains(last_error, "the host library failed to open"), "on_error got: %s", ct_s(last_error));
  free(last_error);
  last_error = NULL;
  gr_close(rt);
}

int main(void) {
  ct_begin();
  RUN(goroutines_from_c_see_the_hook);
  RUN(goroutines_from_lua_see_the_hook);
  RUN(the_hook_hands_a_channel_to_every_goroutine);
  RUN(the_hook_runs_before_the_function);
  RUN(no_hook_no_host);
  RUN(a_hook_that_raises_fails_the_goroutine);
  return ct_end();
}
