/* state.h - a worker's sandboxed Lua state. */
#ifndef LJS_RUNTIME_STATE_H
#define LJS_RUNTIME_STATE_H

#include "runtime/lua/alloc.h"

#include <lua.h>

/* Create a Lua state allocating through `a`, with the sandboxed standard
 * libraries opened (base without dofile/loadfile and with text-only load,
 * string, table, math, utf8, coroutine). Runs Lua code only under
 * lua_pcall. Thread: same-worker. Returns the state or NULL (out of memory). */
LJS_HIDDEN lua_State *ljs__state_create(ljs__alloc_t *a);

/* Create a trusted state (all standard libraries) on the same allocator, for
 * tools (`ljs-run --exec`). Thread: same-worker. */
LJS_HIDDEN lua_State *ljs__state_create_trusted(ljs__alloc_t *a);

/* Message handler for lua_pcall: appends a traceback to the error.
 * Lua: may raise (only on memory errors, which Lua handles). */
LJS_HIDDEN int ljs__state_traceback(lua_State *L);

#endif
