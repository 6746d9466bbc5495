/*
** alloc.h — the runtime's own allocations: codec buffers, channels and
** their slots, goroutine records, sync objects, timers, and (through g.c's
** allocator) every goroutine's lua_State.
**
** In a normal build these are the libc calls, inlined.  In the fault
** injection build (make faults: -DGR_FAULT_INJECTION) each allocation is
** counted, and GR_FAIL_AT=N makes the N-th fail (return NULL) so that
** spec/faults/ can check that every call site copes: a Lua error "not
** enough memory" where a Lua caller exists, an error status from the C API,
** never a crash, a leak or a hang.  GR_FAIL_AT=0 only counts, and prints
** "gr-faults: N allocations" on stderr at exit.  GR_FAIL_COUNT=k fails k
** allocations in a row from the N-th (default 1; 2 defeats Lua's retry
** after an emergency collection, so Lua's own allocations fail too).
*/
#ifndef GR_ALLOC_H
#define GR_ALLOC_H

#include <stdlib.h>
#include <string.h>

#ifdef GR_FAULT_INJECTION
/* 1 if this allocation is the one to fail (alloc.c). */
int gr_fault_hit(void);
#else
static inline int gr_fault_hit(void) { return 0; }
#endif

static inline void *gr_malloc(size_t n) {
  return gr_fault_hit() ? NULL : malloc(n);
}

static inline void *gr_calloc(size_t n, size_t size) {
  return gr_fault_hit() ? NULL : calloc(n, size);
}

static inline void *gr_realloc(void *p, size_t n) {
  return gr_fault_hit() ? NULL : realloc(p, n);
}

static inline char *gr_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = (char *)gr_malloc(n);
  if (copy != NULL) memcpy(copy, s, n);
  return copy;
}

static inline void gr_free(void *p) { free(p); }

/* lauxlib's allocator for the states the runtime makes for itself (the C
** API's scratch states; the command's main state in the faults build),
** counted: only growing can fail, as Lua expects. */
static inline void *gr_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) { free(ptr); return NULL; }
  if (nsize > (ptr ? osize : 0) && gr_fault_hit()) return NULL;
  return realloc(ptr, nsize);
}

#endif
