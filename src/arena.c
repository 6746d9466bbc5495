/*
** arena.c — the allocator behind every goroutine's state.
**
** Lua tells its allocator the size of each block it frees or resizes, so a
** small block needs no header of its own: it is carved from chunks the
** state owns and kept, when freed, on a free list of its size class.  A
** parked goroutine's state holds about a hundred objects, mostly 24-64
** bytes (interned names, closures, table nodes), where malloc spends 8-16
** bytes of header and rounding on each; and a spawn makes them with a bump
** of a pointer instead of a hundred malloc calls.  Blocks over ARENA_SMALL
** bytes (the state itself, stacks, the string table) go to malloc.
**
** Invariants:
** - Only the thread running the state uses its arena (a state runs on one
**   thread at a time, and is closed by one): no locks.
** - A small block of class c (c * ARENA_GRAIN bytes) is either in use by
**   Lua or on free[c]; it never moves to another class.
** - Every chunk is on the chunk list and is freed by gr_arena_free, after
**   lua_close: Lua has given every block back by then.
** - The arena record lives at the start of the first chunk.
*/
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "arena.h"

/* Under AddressSanitizer, what Lua does not hold is poisoned: a use of a
** freed block, or of a chunk's untouched rest, is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_GRAIN 8          /* Lua needs no more alignment (LUAI_MAXALIGN) */
#define ARENA_SMALL 256        /* larger blocks come from malloc */
#define ARENA_CLASSES (ARENA_SMALL / ARENA_GRAIN + 1)
#define ARENA_CHUNK (1024 - 16) /* bytes asked of malloc at a time: with
                                   ** malloc's header, one 1 KB block */

typedef struct chunk { struct chunk *next; } chunk;
#define CHUNK_HEAD ((sizeof(chunk) + ARENA_GRAIN - 1) / ARENA_GRAIN * ARENA_GRAIN)

struct gr_arena {
  void *free[ARENA_CLASSES];   /* freed blocks of each class, linked */
  char *bump, *end;            /* the untouched rest of the newest chunk */
  chunk *chunks;               /* every chunk, newest first */
  size_t nchunks;
};

static size_t class_of(size_t n) { return (n + ARENA_GRAIN - 1) / ARENA_GRAIN; }

gr_arena *gr_arena_new(void) {
  char *c = (char *)gr_malloc(ARENA_CHUNK);        /* counted: a new state */
  if (c == NULL) return NULL;
  ((chunk *)c)->next = NULL;
  gr_arena *a = (gr_arena *)(c + CHUNK_HEAD);
  memset(a, 0, sizeof *a);
  a->chunks = (chunk *)c;
  a->nchunks = 1;
  a->bump = c + CHUNK_HEAD + (sizeof *a + ARENA_GRAIN - 1) / ARENA_GRAIN * ARENA_GRAIN;
  a->end = c + ARENA_CHUNK;
  POISON(a->bump, (size_t)(a->end - a->bump));
  return a;
}

size_t gr_arena_chunkbytes(const gr_arena *a) {
  return a->nchunks * ARENA_CHUNK;
}

void gr_arena_free(gr_arena *a) {
  if (a == NULL) return;
  chunk *c = a->chunks;        /* the last one holds a itself */
  while (c) {
    chunk *next = c->next;
    UNPOISON(c, ARENA_CHUNK);
    free(c);
    c = next;
  }
}

static void *small_alloc(gr_arena *a, size_t cls) {
  void *p = a->free[cls];
  if (p) {
    UNPOISON(p, cls * ARENA_GRAIN);
    a->free[cls] = *(void **)p;
    return p;
  }
  size_t size = cls * ARENA_GRAIN;
  if ((size_t)(a->end - a->bump) < size) {
    char *c = (char *)malloc(ARENA_CHUNK);
    if (c == NULL) return NULL;
    /* The old chunk's tail is too short for this class: give it to the
    ** class that fits it, so nothing is lost. */
    size_t rest = (size_t)(a->end - a->bump) / ARENA_GRAIN;
    if (rest > 0) {
      UNPOISON(a->bump, sizeof(void *));
      *(void **)a->bump = a->free[rest];
      a->free[rest] = a->bump;
      POISON(a->bump, rest * ARENA_GRAIN);
    }
    ((chunk *)c)->next = a->chunks;
    a->chunks = (chunk *)c;
    a->nchunks++;
    a->bump = c + CHUNK_HEAD;
    a->end = c + ARENA_CHUNK;
    POISON(a->bump, (size_t)(a->end - a->bump));
  }
  p = a->bump;
  a->bump += size;
  UNPOISON(p, size);
  return p;
}

static void small_free(gr_arena *a, void *p, size_t cls) {
  *(void **)p = a->free[cls];
  a->free[cls] = p;
  POISON(p, cls * ARENA_GRAIN);
}

/* A small block for a shrink that found no memory: the large block it
** shrinks from becomes a chunk of the arena, holding it.  NULL if it is
** too short for the chunk's link as well (never, with glibc's rounding). */
static void *adopt_chunk(gr_arena *a, void *big, size_t cls) {
  size_t size = cls * ARENA_GRAIN;
  unsigned char keep[ARENA_SMALL];
  if (malloc_usable_size(big) < CHUNK_HEAD + size) return NULL;
  memcpy(keep, big, size);
  char *c = (char *)big;
  ((chunk *)c)->next = a->chunks->next;      /* behind the newest: its */
  a->chunks->next = (chunk *)c;              /* rest stays the bump area */
  a->nchunks++;
  memcpy(c + CHUNK_HEAD, keep, size);
  return c + CHUNK_HEAD;
}

/* lua_Alloc's contract, with osize the block's size when ptr is not NULL. */
void *gr_arena_realloc(gr_arena *a, void *ptr, size_t osize, size_t nsize) {
  size_t oc = ptr ? class_of(osize) : 0;
  size_t nc = class_of(nsize);
  int osmall = ptr && osize <= ARENA_SMALL, nsmall = nsize <= ARENA_SMALL;
  if (nsize == 0) {
    if (osmall) small_free(a, ptr, oc); else free(ptr);
    return NULL;
  }
  if (ptr == NULL) return nsmall ? small_alloc(a, nc) : malloc(nsize);
  if (!osmall && !nsmall) return realloc(ptr, nsize);
  if (osmall && nsmall && oc == nc) return ptr;
  void *p = nsmall ? small_alloc(a, nc) : malloc(nsize);
  if (p == NULL) {
    if (nsize > osize) return NULL;      /* Lua keeps the old block */
    /* A shrink must not fail (Lua counts on it): a small block keeps its
    ** place, and is freed later into its new, smaller class; a large one
    ** becomes a chunk. */
    return osmall ? ptr : adopt_chunk(a, ptr, nc);
  }
  memcpy(p, ptr, osize < nsize ? osize : nsize);
  if (osmall) small_free(a, ptr, oc); else free(ptr);
  return p;
}
