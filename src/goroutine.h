/*
** goroutine.h — the public embedding API of goroutine-lua.
**
** Go's concurrency model for Lua 5.4: goroutines (each its own lua_State)
** run on a pool of worker threads and talk through channels that copy the
** values that cross them.  This is the only header a host program
** includes; every type in it is opaque.  docs/embedding.md is the guide.
**
** Threads: every function here may be called from any host thread, except
** those taking a lua_State, which follow Lua's rule (one thread at a time
** per state).  Nothing here is process-global: runtimes are independent.
*/
#ifndef GOROUTINE_H
#define GOROUTINE_H

#include <stddef.h>
#include <lua.h>

#define GR_VERSION "0.1.0"

#ifndef GR_API
#define GR_API __attribute__((visibility("default")))
#endif

typedef struct gr_runtime gr_runtime;
typedef struct gr_chan gr_chan;

/* ------------------------------------------------------------ runtimes */

typedef struct gr_config {
  /* Worker threads; 0: GOROUTINE_MAXPROCS, else the online CPUs. */
  int procs;
  /* Bytes one goroutine's state may allocate; 0: GOROUTINE_MEMLIMIT, else
  ** no limit.  Past it the goroutine gets a catchable "not enough memory"
  ** error.  The states the runtime makes are limited, not the host's
  ** (gr_attach's L, the main goroutine). */
  size_t memlimit;
  /* An error no goroutine caught.  msg holds the message and a traceback;
  ** the goroutine ends, the others go on.  NULL: print it as
  ** "goroutine N [error]:" on stderr and exit(1), as goroutine-lua does.
  ** Called on the worker thread that ran the goroutine; msg lives only
  ** during the call. */
  void (*on_error)(void *ud, long long id, const char *msg);
  /* Called in every new goroutine state before its function runs (on a
  ** worker thread): open the host's own C libraries there.  It runs in
  ** protected mode: an error it raises fails that goroutine. */
  void (*on_state)(void *ud, lua_State *L);
  void *ud;
  /* Chaos scheduling, for tests: a seed makes the scheduler take at random
  ** the choices Go leaves open (run-queue and wake-up order, stealing,
  ** yields before channel and sync operations); the same seed on one
  ** worker thread gives the same schedule.  0: GOROUTINE_CHAOS (a seed
  ** from 0 to 4294967295; anything else is ignored), else off.  The seed
  ** in effect is printed with goroutine dumps and uncaught errors. */
  unsigned chaos_seed;
  /* The OS threads the runtime may own at once (Go's debug.SetMaxThreads):
  ** its workers, the spare workers it starts while goroutines sit in
  ** blocking C calls, the monitor and the timer thread; not the host's
  ** own threads.  Starting one past it is fatal: "runtime: program
  ** exceeds N-thread limit", "fatal error: thread exhaustion", the
  ** goroutine dump on stderr and exit status 2, as Go does.  0 (or less):
  ** GOROUTINE_MAXTHREADS, else 10000. */
  int maxthreads;
} gr_config;

/* A runtime of its own, with no host state.  cfg may be NULL (it is
** copied).  Returns NULL if memory cannot be had, or if the config leaves
** a limit to GOROUTINE_MEMLIMIT or GOROUTINE_MAXTHREADS and that is
** malformed.  Goroutine ids start at
** 2; such a runtime never reports a deadlock (its host can always start
** another goroutine or close it). */
GR_API gr_runtime *gr_open(const gr_config *cfg);

/* Stop every goroutine, join every thread, close every state, free the
** runtime.  For runtimes made by gr_open; NULL does nothing.  First let
** every host call on its channels return.  Channel references the host
** still holds stay valid for gr_chan_unref and gr_value_free (the last of
** them frees what is left); any other call on them gives GR_ERROR.  Never
** from inside the
** runtime (a hook, a handler, a C function a goroutine calls).  A
** goroutine inside a blocking C call delays it until that call returns. */
GR_API void gr_close(gr_runtime *rt);

/*
** Make the host state L the main goroutine (id 1) of a new runtime, start
** its worker threads and open the module in L as package.loaded.goroutine
** (no global is set).  L keeps running on the host's thread; when it blocks
** on a channel or a lock, that thread waits.  Closing L stops every
** goroutine and joins every thread.  cfg may be NULL.  Once per state; on
** failure (no memory, a malformed GOROUTINE_MEMLIMIT or
** GOROUTINE_MAXTHREADS) raises a Lua error in L.
*/
GR_API gr_runtime *gr_attach(lua_State *L, const gr_config *cfg);

/* Set the globals 'goroutine' (the module) and 'go' in L, as goroutine-lua
** does for its main state and every goroutine. */
GR_API void gr_setglobals(lua_State *L);

/*
** Like lua_pcall, for L the state gr_attach made the main goroutine: the
** function runs as the main goroutine's body on the worker threads (a G
** like the others, so its channel operations cost what theirs do) while
** the calling thread waits.  On an error the message, followed by a
** traceback, is on L.  goroutine-lua runs scripts and REPL lines this way.
*/
GR_API int gr_pcall(lua_State *L, int nargs, int nresults);

/* From a signal handler: raise "interrupted!" in the main goroutine while
** it runs in gr_pcall (Ctrl-C, as lua5.4 does), whether it computes or
** waits (channel, select, lock, sleep).  An interrupted wait did nothing:
** a value is either delivered or not sent, a lock either held or not. */
GR_API void gr_interrupt(gr_runtime *rt);

/* The REPL's rule, while on is non-zero: a main goroutine whose gr_pcall
** would deadlock fails that call with "all goroutines are asleep -
** deadlock!" (its wait undone, as for Ctrl-C) instead of ending the
** program; every other goroutine stays as it was. */
GR_API void gr_set_interactive(gr_runtime *rt, int on);

/* The Lua module: require "goroutine". */
GR_API int luaopen_goroutine(lua_State *L);

/* ------------------------------------------------------------- values */

/* A C-level value: what crosses a channel to and from C without a state,
** and what gr_go passes as arguments.  A channel crosses by reference. */
typedef enum {
  GR_NIL, GR_BOOLEAN, GR_INTEGER, GR_NUMBER, GR_STRING, GR_CHANNEL
} gr_type;

typedef struct gr_value {
  gr_type type;
  union {
    int boolean;
    long long integer;
    double number;
    struct { char *ptr; size_t len; } string;   /* any bytes */
    gr_chan *channel;
  } u;
} gr_value;

/* Frees what gr_chan_recv returned: a string's bytes, a channel's
** reference (gr_chan_unref); nothing for other types. */
GR_API void gr_value_free(gr_value *v);

/* Results of the operations below. */
enum {
  GR_OK = 0,
  GR_TIMEOUT = 1,   /* nothing happened before the timeout */
  GR_CLOSED = 2,    /* send: channel closed; recv: closed and drained */
  GR_ERROR = 3      /* a value that cannot cross, or no memory */
};

/* -------------------------------------------------------- running Lua */

/*
** Run a chunk (code, named name as in luaL_loadbuffer; NULL: "=(host)") or
** a file (path) as a new goroutine and wait for it to end.  Returns GR_OK, or GR_ERROR with *err (if err is not NULL) set to a
** malloc'd message with a traceback, which the caller frees.  The
** goroutine's error is returned here instead of going to on_error.
*/
GR_API int gr_dostring(gr_runtime *rt, const char *code, const char *name, char **err);
GR_API int gr_dofile(gr_runtime *rt, const char *path, char **err);

/* Start a chunk as a goroutine with arguments (... in the chunk) and
** return at once.  Returns its id, or -1 (syntax error: *err as above). */
GR_API long long gr_go(gr_runtime *rt, const char *code, const char *name,
                       const gr_value *args, int nargs, char **err);

/* ----------------------------------------------------------- channels */

/*
** A channel made from C, with one reference owned by the caller; drop it
** with gr_chan_unref (before or after gr_close).  NULL if cap is too large or memory
** runs out.  While the host holds a channel the runtime never reports a
** deadlock: a host thread may still send or receive.
*/
GR_API gr_chan *gr_chan_make(gr_runtime *rt, size_t cap);
GR_API void gr_chan_unref(gr_chan *c);

/* Push a handle to c onto L (a goroutine's state, or a host state the
** runtime is attached to): hand a channel to Lua.  The handle holds a
** reference of its own; the caller keeps its reference. */
GR_API void gr_chan_push(lua_State *L, gr_chan *c);

/* The channel whose handle is at idx of L, with a new reference for the
** caller; NULL if it is not a channel. */
GR_API gr_chan *gr_chan_get(lua_State *L, int idx);

/*
** Send and receive from any host thread.  timeout: < 0 waits as long as it
** takes, 0 never waits, > 0 waits at most that many seconds.  gr_chan_recv
** stores a C-level value in *v (free a string with gr_value_free); a
** value of another type (a table, say) is dropped and gives GR_ERROR:
** receive those with gr_chan_recvlua.  On anything but GR_OK, *v is GR_NIL.
** What is sent is copied: the caller keeps its string and its reference.
*/
GR_API int gr_chan_send(gr_chan *c, const gr_value *v, double timeout);
GR_API int gr_chan_recv(gr_chan *c, gr_value *v, double timeout);

/* The same for whole Lua values, through a host state L: sendlua copies
** the value at idx; recvlua pushes the value received (nothing unless
** GR_OK).  A value that cannot cross gives GR_ERROR with the reason
** pushed onto L. */
GR_API int gr_chan_sendlua(gr_chan *c, lua_State *L, int idx, double timeout);
GR_API int gr_chan_recvlua(gr_chan *c, lua_State *L, double timeout);

/* Close c: GR_OK, or GR_CLOSED if it was closed already.  Send, receive
** and close give GR_ERROR once the channel's runtime is closed. */
GR_API int gr_chan_close(gr_chan *c);

#endif
