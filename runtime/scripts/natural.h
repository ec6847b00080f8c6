/* natural.h - the natural form's fast tier: `self` scalarized by rewriting
 * the compiler's bytecode (natural.c). */
#ifndef LJS_RUNTIME_NATURAL_H
#define LJS_RUNTIME_NATURAL_H

#include "runtime/world/world.h"

#include <lua.h>
#include <stdint.h>

/* How one natural-form function (update or an on_<event> handler) is
 * called. Scalarized: f(id, <original parameters after self>, <touched
 * fields>) returning the written fields (the first `nwrites` of `ids`);
 * otherwise the table wrapper (script.c) runs it. Computed on the meta
 * worker, checked equal on every other worker. */
typedef struct ljs__natural_s {
    int scalar;
    uint32_t np;      /* parameters of the original function, self included */
    uint32_t n;       /* touched fields */
    uint32_t nwrites; /* written fields: ids[0..nwrites) */
    uint32_t *ids;    /* field ids, written first, each group in declaration order */
    char why[160];    /* why it fell back to the table, or empty */
} ljs__natural_t;

/* Try to scalarize the Lua function on top of L's stack for a script whose
 * declared fields are `field_ids[0..nfields)` (names in `world`). On
 * success the function on top is replaced by the rewritten one (its
 * upvalues joined to the original's) and *out describes the call; out->ids
 * is ljs__malloc'd (the caller ljs__frees it, also on a raise). Otherwise the stack
 * is unchanged, out->scalar is 0 and out->why says why. Thread:
 * same-worker. Lua: may raise (memory errors only). */
LJS_HIDDEN void ljs__natural_scalarize(lua_State *L, const ljs__world_t *world, const uint32_t *field_ids,
                                       uint32_t nfields, ljs__natural_t *out);

/* 1 if two layouts call the same way (every worker must agree). */
LJS_HIDDEN int ljs__natural_same(const ljs__natural_t *a, const ljs__natural_t *b);

#endif
