/*
** spec/faults/host.c — the C API under the allocation failure sweep
** (run.sh runs it as it runs the scripts).  A host opens a runtime, runs a
** chunk, sends strings and a table into a channel, and a goroutine passes
** them on to another that the host drains; then it closes everything.
** With any allocation failing, every call must return its error status
** (and a goroutine's error must be "not enough memory", to on_error), what
** the host receives must be a subset of what it sent, once each, and
** nothing may leak (LeakSanitizer): it prints "ok" and exits 0.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "goroutine.h"

#define NSTR 3

static gr_chan *out;   /* what the goroutine passes on; on_error closes it */
static int bad;

static void check(int ok, const char *what) {
  if (!ok) { fprintf(stderr, "check failed: %s\n", what); bad = 1; }
}

static int is_oom(const char *msg) {
  return msg == NULL || strstr(msg, "not enough memory") != NULL;
}

static void on_error(void *ud, long long id, const char *msg) {
  (void)ud; (void)id;
  check(is_oom(msg), msg);
  if (out) gr_chan_close(out);   /* the goroutine will not close it */
}

int main(void) {
  gr_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.procs = 2;
  cfg.on_error = on_error;
  gr_runtime *rt = gr_open(&cfg);
  if (rt == NULL) { puts("ok (no runtime)"); return 0; }
  char *err = NULL;
  int r = gr_dostring(rt, "local t = {} for i = 1, 100 do t[i] = i end return #t", "=chunk", &err);
  check(r == GR_OK || (r == GR_ERROR && is_oom(err)), err ? err : "gr_dostring");
  free(err);

  lua_State *H = luaL_newstate();
  gr_chan *in = gr_chan_make(rt, NSTR + 1);
  out = gr_chan_make(rt, NSTR + 1);
  int sent[NSTR + 1] = {0}, got[NSTR + 1] = {0};
  if (H && in && out) {
    for (int i = 0; i < NSTR; i++) {
      char s[16];
      snprintf(s, sizeof s, "v%d", i);
      gr_value v = { .type = GR_STRING, .u.string = { s, strlen(s) } };
      r = gr_chan_send(in, &v, -1);
      check(r == GR_OK || r == GR_ERROR, "gr_chan_send");
      sent[i] = r == GR_OK;
    }
    lua_createtable(H, 3, 0);
    for (int i = 1; i <= 3; i++) { lua_pushinteger(H, i); lua_rawseti(H, -2, i); }
    r = gr_chan_sendlua(in, H, -1, -1);
    check(r == GR_OK || r == GR_ERROR, "gr_chan_sendlua");
    sent[NSTR] = r == GR_OK;
    lua_settop(H, 0);
    gr_chan_close(in);
    gr_value args[2] = { { .type = GR_CHANNEL, .u.channel = in },
                         { .type = GR_CHANNEL, .u.channel = out } };
    long long id = gr_go(rt, "local i, o = ... for v in i:range() do o:send(v) end o:close()",
                         "=relay", args, 2, &err);
    check(id >= 0 || is_oom(err), err ? err : "gr_go");
    free(err);
    if (id < 0) gr_chan_close(out);
    for (;;) {                              /* until closed (by the relay or on_error) */
      r = gr_chan_recvlua(out, H, -1);
      if (r == GR_CLOSED) break;
      if (r == GR_ERROR) { lua_settop(H, 0); continue; }   /* lost to no memory */
      int k = -1;
      if (lua_type(H, -1) == LUA_TSTRING && sscanf(lua_tostring(H, -1), "v%d", &k) == 1) {
      } else if (lua_type(H, -1) == LUA_TTABLE && luaL_len(H, -1) == 3) {
        k = NSTR;
      }
      check(k >= 0 && k <= NSTR && sent[k], "received a value never sent");
      check(k < 0 || !got[k], "received twice");
      if (k >= 0 && k <= NSTR) got[k] = 1;
      lua_settop(H, 0);
    }
  }
  gr_chan_unref(in);
  gr_chan_unref(out);
  gr_close(rt);
  if (H) lua_close(H);
  if (bad) return 1;
  puts("ok");
  return 0;
}
