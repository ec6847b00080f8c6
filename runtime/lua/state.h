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

/* Seal a sandboxed state once the script API is in its globals: frozen
 * libraries and globals (see state.c). A lua_CFunction: run it under
 * lua_pcall. Thread: same-worker. */
LJS_HIDDEN int ljs__state_seal(lua_State *L);

/* Push a frozen proxy of the table at `idx`: reads go to it, writes,
 * rawset and setmetatable are errors naming `what`. Lua: may raise. */
LJS_HIDDEN void ljs__state_push_frozen(lua_State *L, int idx, const char *what);

/* The same for a module's value: tables inside it come out frozen too.
 * Lua: may raise. */
LJS_HIDDEN void ljs__state_push_frozen_deep(lua_State *L, int idx, const char *what);

/* 1 if the value at `idx` is a frozen proxy or environment. */
LJS_HIDDEN int ljs__state_is_frozen(lua_State *L, int idx);

/* Push a new script environment (needs a sealed state): new globals are
 * the script's own until ljs__state_env_seal, then every global assignment
 * is an error. Lua: may raise. */
LJS_HIDDEN void ljs__state_env_push(lua_State *L);
LJS_HIDDEN void ljs__state_env_seal(lua_State *L, int idx);

#endif
