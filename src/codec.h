/*
** codec.h — Lua values <-> bytes.  The only way values cross between
** goroutines: go() arguments, upvalues and channel messages are encoded in
** the sender's state and decoded in the receiver's.
**
** A message is one value graph: references shared between its parts (the
** function and all arguments of one go(), say) stay shared in the copy.
** Small messages live inline in the gr_msg itself, so scalars and short
** strings cross without malloc.
**
** Messages are made only by gr_encode, inside this process: gr_decode
** trusts the Lua bytecode and the handle pointers a message carries.  Bytes
** from anywhere else go through gr_decode_data, which refuses both.
*/
#ifndef GR_CODEC_H
#define GR_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#define GR_MSG_INLINE 40

/* Tables, functions and user values nested deeper than this are refused
** ("cannot send value: nesting deeper than 200000 at ..."): the codec walks
** with an explicit stack, so this bounds the Lua stack a walk takes (two
** slots a level), never a C stack. */
#define GR_CODEC_MAXDEPTH 200000

typedef struct gr_msg {
  uint32_t len;       /* bytes used */
  uint32_t nobjs;     /* handles referenced (each holds one reference) */
  union {
    unsigned char inl[GR_MSG_INLINE];   /* when len <= GR_MSG_INLINE */
    unsigned char *heap;                /* otherwise, malloc'd */
  } u;
} gr_msg;

#define gr_msg_bytes(m) \
  ((m)->len <= GR_MSG_INLINE ? (const unsigned char *)(m)->u.inl : (m)->u.heap)

/* How the roots of an encoded message are named in error paths. */
enum gr_encode_kind {
  GR_ENCODE_VALUE,   /* one channel message: "value" */
  GR_ENCODE_GOCALL   /* go(f, ...): "function", "argument #1", ... */
};

/*
** Encode the n values at stack slots first .. first+n-1 of L into *m.
** On an untransferable value raises a Lua error in L, e.g.
** "cannot send userdata (FILE*) at value.log", with *m left empty and no
** reference held: nothing is half-sent.  Running out of memory is a Lua
** error too, with the same guarantee.
*/
void gr_encode(lua_State *L, int first, int n, enum gr_encode_kind kind,
               gr_msg *m);

/*
** Push the values of m onto L; returns how many.  Does not free m or drop
** its references (gr_msg_free does).  Raises a Lua error on malformed bytes,
** on a user type with no decoder registered in L, on an error of such a
** decoder and when memory runs out; m is then left to the caller to free.
*/
int gr_decode(lua_State *L, const gr_msg *m);

/*
** As gr_decode, and m is freed in every case: empty when this returns,
** and freed before any error is re-raised.  The way a receiver takes a
** message it owns.
*/
int gr_decode_free(lua_State *L, gr_msg *m);

/*
** As gr_decode, for bytes not made by gr_encode in this process (a fuzzer's,
** say): refuses Lua functions (Lua's bytecode loader does not survive
** crafted bytecode) and handles (m->nobjs must be 0: no pointer is taken
** from the bytes).  Any input gives values or a Lua error.
*/
int gr_decode_data(lua_State *L, const gr_msg *m);

/* A message of one float, made without a Lua state (timers send these). */
void gr_msg_number(lua_Number x, gr_msg *m);

/* Free m's buffer and drop the references it holds; m becomes empty. */
void gr_msg_free(gr_msg *m);

/* An empty message (zero values). */
#define GR_MSG_EMPTY {0, 0, {{0}}}

/*
** goroutine.register(name, decode): in the calling state, values of the
** user type 'name' (a table or userdata whose metatable has __name = name
** and __goroutine_encode) are rebuilt by decode(encoded).  decode = nil
** removes the decoder.
*/
int gr_codec_register(lua_State *L);

#endif
