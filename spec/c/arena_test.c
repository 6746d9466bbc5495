/*
** arena_test.c — the allocator behind goroutine states (src/arena.c):
** blocks keep their contents across every kind of resize (small to small,
** small to large and back), blocks in use never overlap, freed blocks are
** reused, and nothing is left once the blocks and the arena are freed
** (LeakSanitizer under make asan).  The whole spec suite exercises it through Lua as well.
*/
#include "ctest.h"
#include "../../src/arena.h"

#define NBLOCKS 512

typedef struct { unsigned char *p; size_t size; unsigned char tag; } block;

static void fill(block *b) { memset(b->p, b->tag, b->size); }

static int intact(const block *b, size_t upto) {
  for (size_t i = 0; i < upto; i++) if (b->p[i] != b->tag) return 0;
  return 1;
}

/* A random walk of allocations, resizes and frees, as Lua makes them. */
static void random_walk(void) {
  gr_arena *a = gr_arena_new();
  CHECK(a != NULL);
  block b[NBLOCKS];
  memset(b, 0, sizeof b);
  unsigned seed = 12345;
  int bad = 0;
  for (int step = 0; step < 200000 && !bad; step++) {
    seed = seed * 1103515245u + 12345u;
    block *x = &b[(seed >> 8) % NBLOCKS];
    size_t size = (seed >> 4) % 7 == 0 ? 257 + (seed >> 12) % 2000   /* large */
                                       : 1 + (seed >> 12) % 256;      /* small */
    if (x->p == NULL) {
      x->p = (unsigned char *)gr_arena_realloc(a, NULL, 0, size);
      x->size = size;
      x->tag = (unsigned char)(seed >> 16);
      fill(x);
    } else if ((seed >> 20) % 3 == 0) {
      if (!intact(x, x->size)) bad = 1;
      CHECK(gr_arena_realloc(a, x->p, x->size, 0) == NULL);
      x->p = NULL;
    } else {
      if (!intact(x, x->size)) bad = 1;
      size_t keep = x->size < size ? x->size : size;
      x->p = (unsigned char *)gr_arena_realloc(a, x->p, x->size, size);
      if (!intact(x, keep)) bad = 1;     /* the old contents moved along */
      x->size = size;
      fill(x);
    }
  }
  CHECKF(!bad, "a block's contents changed: blocks overlap or a resize lost data");
  for (int i = 0; i < NBLOCKS; i++) {  /* every block back, as lua_close does */
    if (b[i].p == NULL) continue;
    CHECK(intact(&b[i], b[i].size));
    gr_arena_realloc(a, b[i].p, b[i].size, 0);
  }
  gr_arena_free(a);
}

/* A freed small block is handed out again for its class. */
static void freed_blocks_are_reused(void) {
  gr_arena *a = gr_arena_new();
  void *p = gr_arena_realloc(a, NULL, 0, 40);
  void *q = gr_arena_realloc(a, NULL, 0, 40);
  CHECK(p != q);
  gr_arena_realloc(a, p, 40, 0);
  CHECK(gr_arena_realloc(a, NULL, 0, 33) == p);   /* same class: 33..40 */
  /* growing within the class keeps the block */
  CHECK(gr_arena_realloc(a, q, 34, 40) == q);
  gr_arena_free(a);
}

/* Many small blocks: the arena takes more chunks, and blocks stay apart. */
static void many_chunks(void) {
  gr_arena *a = gr_arena_new();
  enum { N = 5000 };
  static unsigned char *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = (unsigned char *)gr_arena_realloc(a, NULL, 0, 24);
    memset(p[i], i & 0xff, 24);
  }
  int bad = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < 24; j++) if (p[i][j] != (i & 0xff)) bad = 1;
  CHECK(!bad);
  gr_arena_free(a);                      /* small blocks go with their chunks */
}

int main(void) {
  ct_begin();
  RUN(random_walk);
  RUN(freed_blocks_are_reused);
  RUN(many_chunks);
  return ct_end();
}
