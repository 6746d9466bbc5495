/*
** arena.h — the allocator behind every goroutine's state (arena.c): small
** blocks without headers, carved from chunks the state owns.
*/
#ifndef GR_ARENA_H
#define GR_ARENA_H

#include <stddef.h>

typedef struct gr_arena gr_arena;

gr_arena *gr_arena_new(void);      /* NULL if there is no memory */
/* lua_Alloc's contract: osize is the block's size when ptr is not NULL. */
void *gr_arena_realloc(gr_arena *a, void *ptr, size_t osize, size_t nsize);
/* Bytes held in chunks: what the small blocks cost, in use or free. */
size_t gr_arena_chunkbytes(const gr_arena *a);
/* Free the chunks, and with them every small block; the large ones must be
** freed already (lua_close gives every block back first). */
void gr_arena_free(gr_arena *a);

#endif
