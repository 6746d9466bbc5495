/*
** obj.h — reference-counted runtime objects (channels, mutexes, wait
** groups, ...) and their Lua handles.
**
** Invariants:
** - An object lives while its reference count is positive.  Every Lua
**   handle (a full userdata, in any goroutine's state) holds one reference,
**   dropped by its __gc; every message in flight that names the object
**   holds one more, dropped by gr_msg_free.
** - Inside one lua_State there is at most one handle per object, found
**   through a weak table in the registry, so the same object is always the
**   same Lua value there (== and table keys work).
*/
#ifndef GR_OBJ_H
#define GR_OBJ_H

#include <lua.h>
#include <lauxlib.h>
#include "platform.h"

typedef struct gr_obj gr_obj;

typedef struct gr_objtype {
  const char *name;            /* user-visible type name: "channel", "mutex" */
  const luaL_Reg *methods;     /* __index methods (looked up on first use) */
  const luaL_Reg *metamethods; /* extra metamethods (__len, ...), may be NULL */
  void (*destroy)(gr_obj *o);  /* frees the object when its count reaches 0 */
} gr_objtype;

struct gr_obj {
  const gr_objtype *type;
  atomic_long refs;
};

void gr_obj_init(gr_obj *o, const gr_objtype *type);   /* count = 0 */
void gr_obj_retain(gr_obj *o);
void gr_obj_release(gr_obj *o);

/* The object behind the handle at idx, or NULL if idx is not a handle. */
gr_obj *gr_obj_test(lua_State *L, int idx);
/* The object behind the handle at idx; raises the usual 'bad argument'
** error if it is not a handle of that type. */
gr_obj *gr_obj_check(lua_State *L, int idx, const gr_objtype *type);
/* Push L's handle for o, making it (and taking a reference) if L has none. */
void gr_obj_push(lua_State *L, gr_obj *o);

/* A new object (count 0) would leak if pushing its handle raised (no
** memory): push the handle first, empty, with gr_obj_pushnew, then make
** the object and give it to that handle (top of the stack) with
** gr_obj_adopt.  From then on the handle's __gc frees it, error or not. */
void gr_obj_pushnew(lua_State *L, const gr_objtype *type);
void gr_obj_adopt(lua_State *L, gr_obj *o);

#endif
