/*
** goroutine.h — the public embedding API of goroutine-lua.
**
** Go's concurrency model for Lua 5.4: goroutines (each its own lua_State)
** run on a pool of worker threads and talk through channels that copy the
** values that cross them.  This is the only header a host program
** includes; every type in it is opaque.
*/
#ifndef GOROUTINE_H
#define GOROUTINE_H

#include <lua.h>

#define GR_VERSION "0.1.0"

#ifndef GR_API
#define GR_API __attribute__((visibility("default")))
#endif

typedef struct gr_runtime gr_runtime;

typedef struct gr_config {
  int procs;   /* worker threads; 0: GOROUTINE_MAXPROCS, else online CPUs */
} gr_config;

/*
** Make the host state L the main goroutine (id 1) of a new runtime, start
** its worker threads and open the module in L as package.loaded.goroutine
** (no global is set).  L keeps running on the host's thread; when it blocks
** on a channel or a lock, that thread waits.  Closing L stops every
** goroutine and joins every thread.  cfg may be NULL.
*/
GR_API gr_runtime *gr_attach(lua_State *L, const gr_config *cfg);

/* Set the globals 'goroutine' (the module) and 'go' in L, as goroutine-lua
** does for its main state and every goroutine. */
GR_API void gr_setglobals(lua_State *L);

/* The Lua module: require "goroutine". */
GR_API int luaopen_goroutine(lua_State *L);

#endif
