/*
** host.c — a C program that embeds goroutine-lua.
**
** It opens a runtime whose init hook gives every goroutine a C library of
** the host's ('host.log'), starts a pool of Lua goroutines (worker.lua)
** with channels as their arguments, feeds them jobs from a host thread,
** collects the results in main, checks them, and shuts down.
**
**   make build/embed-example && build/embed-example [path/to/worker.lua]
**
** or, against an installed goroutine-lua:
**
**   cc host.c $(pkg-config --cflags --libs goroutine-lua) -o embed-example
**
** What it prints on stdout does not depend on scheduling (host.expected);
** the workers' log lines go to stderr in whatever order they come.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <goroutine.h>

#define NWORKERS 4
#define NJOBS 100

/* ------------------------------------------------ the host's C library */

static atomic_int nlogs;

/* host.log(...): print the arguments on stderr, one line.  Goroutines run
** on several worker threads at once, so this must be thread-safe:
** stdio's own lock keeps each line whole. */
static int host_log(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  fprintf(stderr, "host.log: %s\n", lua_tostring(L, -1));
  atomic_fetch_add(&nlogs, 1);
  return 0;
}

/* The init hook: called in every new goroutine state, before its code. */
static void open_host(void *ud, lua_State *L) {
  static const luaL_Reg fns[] = { { "log", host_log }, { NULL, NULL } };
  (void)ud;
  luaL_newlib(L, fns);
  lua_setglobal(L, "host");
}

/* An error no goroutine caught: report it, and let the others go on. */
static atomic_int nerrors;

static void on_error(void *ud, long long id, const char *msg) {
  (void)ud;
  fprintf(stderr, "goroutine %lld failed:\n%s\n", id, msg);
  atomic_fetch_add(&nerrors, 1);
}

/* ---------------------------------------------------------- the feeder */

/* A host thread: sends the jobs 1..NJOBS, then closes the channel so the
** workers' range loops end. */
static void *feed(void *arg) {
  gr_chan *jobs = (gr_chan *)arg;
  for (int n = 1; n <= NJOBS; n++) {
    gr_value v = { .type = GR_INTEGER, .u.integer = n };
    if (gr_chan_send(jobs, &v, -1) != GR_OK) break;
  }
  gr_chan_close(jobs);
  return NULL;
}

/* ---------------------------------------------------------------- main */

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
  if (s) s[n] = '\0';
  fclose(f);
  return s;
}

/* t.name of the table on top of L, as an integer (0 if absent). */
static lua_Integer field(lua_State *L, const char *name) {
  lua_getfield(L, -1, name);
  lua_Integer i = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return i;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "examples/embed/worker.lua";
  char *worker = read_file(path);
  if (worker == NULL) { fprintf(stderr, "cannot read %s\n", path); return 1; }

  gr_config cfg = { 0 };
  cfg.on_state = open_host;
  cfg.on_error = on_error;
  cfg.memlimit = 64 << 20;                 /* 64 MiB a goroutine */
  gr_runtime *rt = gr_open(&cfg);
  if (rt == NULL) { fprintf(stderr, "gr_open failed\n"); return 1; }

  gr_chan *jobs = gr_chan_make(rt, 16);
  gr_chan *results = gr_chan_make(rt, 16);

  /* The pool: each worker gets both channels and its number as '...'. */
  for (int w = 1; w <= NWORKERS; w++) {
    gr_value args[3] = {
      { .type = GR_CHANNEL, .u.channel = jobs },
      { .type = GR_CHANNEL, .u.channel = results },
      { .type = GR_INTEGER, .u.integer = w },
    };
    char *err = NULL;
    if (gr_go(rt, worker, "@worker.lua", args, 3, &err) < 0) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
  }
  free(worker);

  pthread_t feeder;
  pthread_create(&feeder, NULL, feed, jobs);
  printf("%d workers, %d jobs fed from a host thread\n", NWORKERS, NJOBS);

  /* Results are tables: receive them as Lua values into a state of the
  ** host's own (a plain one: it needs no runtime). */
  lua_State *L = luaL_newstate();
  int seen[NJOBS + 1] = { 0 }, ok = 1, ndone = 0;
  long long sum = 0, counted = 0;
  while (ndone < NWORKERS) {
    if (gr_chan_recvlua(results, L, -1) != GR_OK || !lua_istable(L, -1)) { ok = 0; break; }
    lua_getfield(L, -1, "done");
    int done = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (done) {                            /* a worker's last word */
      ndone++;
      counted += field(L, "count");
    } else {
      lua_Integer job = field(L, "job"), square = field(L, "square");
      if (job < 1 || job > NJOBS || square != job * job) ok = 0;
      else seen[job]++;
      sum += square;
    }
    lua_pop(L, 1);
  }
  for (int n = 1; n <= NJOBS; n++) if (seen[n] != 1) ok = 0;
  printf("%d results: %s\n", NJOBS, ok ? "every job once, each squared" : "WRONG");
  printf("sum of squares 1..%d = %lld\n", NJOBS, sum);
  printf("%d workers done, %lld jobs between them\n", ndone, counted);

  /* Shut down: the feeder has closed jobs; drop our channels, then close
  ** the runtime (every goroutine stopped, every thread joined). */
  pthread_join(feeder, NULL);
  lua_close(L);
  gr_chan_unref(jobs);
  gr_chan_unref(results);
  gr_close(rt);
  printf("%d host.log calls\n", atomic_load(&nlogs));
  return ok && counted == NJOBS && atomic_load(&nerrors) == 0 ? 0 : 1;
}
