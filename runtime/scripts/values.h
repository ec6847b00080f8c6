/* values.h - field values of the second-wave types as Lua sees them:
 * strings (interned ids, world/strings.h), entities (generation-checked
 * handles) and lists (bounded arrays read through a no-copy view).
 *
 * exec.c's push_fields / convert / store_results and api.c's get/set hand
 * every string, entity and list value to the functions here, so both
 * update forms, handlers, on_reload and get() share one implementation.
 *
 * Per worker (only its own thread touches it):
 * - a direct-mapped cache id -> Lua string, so pushing an unchanged string
 *   field is one registry read and allocates nothing in the state; and a
 *   cache Lua string -> id, so writing back the string a call read (or a
 *   constant it assigns every frame) takes no lock. Both hold their Lua
 *   strings through fixed registry slots and are dropped whenever the
 *   string store's sweep epoch changes (freed ids are reused).
 * - the call serial that stamps views of the calling entity's own lists
 *   (values.c: a view is a light userdata, so reading `self.list`
 *   allocates nothing), and a scratch buffer where a call's list
 *   assignments wait until the call returns. */
#ifndef LJS_RUNTIME_VALUES_H
#define LJS_RUNTIME_VALUES_H

#include "runtime/world/world.h"

#include <lua.h>

#define LJS__SCACHE 256 /* entries per cache (a power of two) */

typedef struct ljs__vcache_s {
    uint64_t epoch; /* strings.epoch the caches were filled under */
    int ready;      /* registry slots allocated */
    struct {
        uint32_t id;
        const char *p; /* the Lua string's bytes (anchored by `ref`) */
        int ref;
    } push[LJS__SCACHE];
    struct {
        const char *p;
        uint32_t id;
        int ref;
    } conv[LJS__SCACHE];
    uint64_t serial;       /* calls begun on this worker: stamps own list views */
    ljs__value_t *scratch; /* list elements waiting for their call to return */
    size_t nscratch, scratch_cap;
} ljs__vcache_t;

/* Create the `ljs` table (ljs.entity, ljs.list) and the metatables.
 * Runs inside ljs__api_open. Lua: may raise (memory). */
LJS_HIDDEN void ljs__values_open(lua_State *L);

/* Free a worker's cache (its Lua side dies with the state). */
LJS_HIDDEN void ljs__values_fini(ljs__vcache_t *vc);

/* The field type a `fields` default declares: a number, integer, boolean,
 * string, ljs.entity or ljs.list(elem, maxlen). *def gets the default
 * (strings interned into `strings`). Returns 0, or -1 if the value is not
 * a declaration. Thread: owner (loading). Lua: may raise (a string default
 * past LJS_STRING_MAX, out of memory). */
LJS_HIDDEN int ljs__values_decl(lua_State *L, int idx, ljs__strings_t *strings, const char *name,
                                ljs__ftype_t *t, ljs__value_t *def);

/* Push a string, entity or list value of field `fd` at `slot` (own: the
 * working value; else the committed one). The field is present. Thread:
 * worker. Lua: may raise (memory). */
LJS_HIDDEN void ljs__values_push(lua_State *L, const ljs__field_t *fd, uint32_t slot, int own);

/* Convert the value at idx for a string, entity or list field into *v
 * (lists: elements wait in the worker's scratch until ljs__values_store).
 * nil keeps the current value when `nil_keeps` (an entity field takes nil
 * as "no entity" otherwise). Returns 1, or 0 on a plain type mismatch (the
 * caller raises its usual message); raises itself for the other errors
 * (too long, wrong element type, out of memory). Lua: may raise. */
LJS_HIDDEN int ljs__values_convert(lua_State *L, const ljs__field_t *fd, uint32_t slot, int idx,
                                   int nil_keeps, ljs__value_t *v);

/* Store a converted value into the working buffer. Thread: worker. */
LJS_HIDDEN void ljs__values_store(ljs__field_t *fd, uint32_t slot, ljs__value_t v, const ljs__vcache_t *vc);

/* A call begins: its list scratch starts empty. Thread: same-worker. */
static inline void ljs__values_begin_call(ljs__vcache_t *vc)
{
    vc->nscratch = 0;
    vc->serial++;
}

/* If the value at idx is a list view, replace it by a plain array table of
 * its elements (send() payloads). Lua: may raise. */
LJS_HIDDEN void ljs__values_view_to_table(lua_State *L, int idx);

#endif
