/* api.h - the ljs functions scripts call (get, set, send, query, log, rand,
 * frame, spawn, destroy). */
#ifndef LJS_RUNTIME_API_H
#define LJS_RUNTIME_API_H

#include "runtime/core.h"

/* Install the API as globals of a worker's state, plus the registry values
 * the loader needs. Runs under lua_pcall. Lua: may raise (memory). */
LJS_HIDDEN int ljs__api_open(lua_State *L);

/* Push field `f` of `slot` (own entity: this frame's value; others: the
 * committed one). Thread: worker. */
LJS_HIDDEN void ljs__api_push_field(lua_State *L, const ljs__field_t *fd, uint32_t slot, int own);

/* Store the value at `idx` into field `f` of `slot` (work buffer), raising a
 * script error that names the field on a type mismatch. The entity must
 * hold the field already (presence is fixed during a frame). nil keeps the old
 * value when `nil_keeps`. Lua: may raise. */
LJS_HIDDEN void ljs__api_store_field(lua_State *L, ljs__world_t *w, uint32_t f, uint32_t slot, int idx,
                                     int nil_keeps, const char *script);

/* Land the call's set() writes (after it returned without error).
 * Thread: same-worker. */
LJS_HIDDEN void ljs__api_apply_sets(ljs__worker_t *w);

#endif
