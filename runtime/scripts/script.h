/* script.h - loaded scripts: the host-side record (metadata, bindings) and
 * each worker's instance of it (registry references in that worker's state).
 *
 * Invariants: a script slot's metadata and bindings change only on the owner
 * thread outside frames; workers read them during phases without locks.
 * Every worker holds an instance of every loaded script, so any batch can
 * run on any worker. */
#ifndef LJS_RUNTIME_SCRIPT_H
#define LJS_RUNTIME_SCRIPT_H

#include "runtime/cache/cache.h"
#include "runtime/scripts/natural.h"
#include "runtime/world/world.h"

#include <lua.h>

/* The natural wrapper takes 3 + nfields parameters and returns nfields
 * values, all in registers at once: Lua allows 255 registers per function
 * (and 200 locals), so past about 125 fields it cannot be compiled. 120
 * leaves room and is what the README documents and the tests check at
 * the limit and one past it. */
#define LJS__MAX_SCRIPT_FIELDS 120

typedef struct ljs__script_s {
    int used;
    int pinned;           /* never unloaded for lack of entities */
    uint32_t idle_frames; /* frames in a row with no entity */
    char *path;
    char *name;
    char *source;
    size_t source_len;
    ljs__source_id_t version; /* size, mtime, hash of `source` */
    /* Declared fields, sorted by name (never by pairs() order). */
    uint32_t nfields;
    uint32_t *field_ids;
    ljs__value_t *defaults;
    uint64_t tag_mask;
    int has_update;
    int fast; /* reads/writes form */
    uint32_t nreads, nwrites;
    uint32_t *reads, *writes; /* field ids */
    /* Event handlers on_<name>, sorted by name. */
    uint32_t nhandlers;
    char **handlers;
    /* Natural form: how update and each handler are called (natural.h);
     * the layout is the meta worker's, every worker checked equal. */
    ljs__natural_t nat_update;
    ljs__natural_t *nat_handlers; /* script->handlers order */
    uint32_t nat_np;              /* most parameters of a scalarized call */
    uint32_t *ev_dirty;           /* fields the handlers may write */
    uint32_t nev_dirty;
    /* Module files this script require()s, directly or not (paths). */
    char **deps;
    uint32_t ndeps;
    /* Bound entities (slot indices), sorted before each frame if dirty. */
    uint32_t *ents;
    uint32_t nents, ents_cap;
    int ents_dirty;
    uint32_t trace_name; /* interned in the LJS_TRACE recorder, or UINT32_MAX */
} ljs__script_t;

typedef struct ljs__inst_s {
    int update_ref;    /* natural: generated wrapper or scalarized function; fast: the function */
    int reload_ref;    /* wrapper of on_reload(self), or LUA_NOREF */
    int *handler_refs; /* wrappers or scalarized functions, script->handlers order */
    uint32_t nhandlers;
} ljs__inst_t;

typedef struct ljs__sstat_s {
    uint64_t calls;
    uint64_t errors;
    uint64_t time_ns;     /* in batches (LJS_STATS=1 or tracing) */
    uint64_t alloc_bytes; /* Lua bytes allocated while its code ran */
} ljs__sstat_t;

struct ljs_runtime_s;
struct ljs__worker_s;

/* Load the script into worker `w`'s state (instance `id`), extracting the
 * metadata too when `meta` is set (worker 0, first). On failure the message
 * is in w->errmsg. Thread: same-worker. Returns LJS_OK or an error code. */
LJS_HIDDEN int ljs__script_instantiate(struct ljs__worker_s *w, uint32_t id, int meta);

/* Push the instance function `ref` (see script.c: refs live in a per-state
 * table, not in the registry). Thread: same-worker. */
LJS_HIDDEN void ljs__script_push_ref(lua_State *L, int ref);

/* Drop worker `w`'s instance `id`. Thread: same-worker. */
LJS_HIDDEN void ljs__script_release(struct ljs__worker_s *w, uint32_t id);

/* Read a script or module file and its version (size, mtime, hash). Sets
 * ljs_last_error on failure. Thread: owner. Returns LJS_OK, LJS_ENOENT,
 * LJS_ENOMEM. */
LJS_HIDDEN int ljs__script_read_source(const char *path, char **out, size_t *len, ljs__source_id_t *id);

/* Free a host record's memory. Thread: owner. */
LJS_HIDDEN void ljs__script_free(ljs__script_t *s);

/* Index of handler `name` in s->handlers, or -1. Thread: any. */
LJS_HIDDEN int ljs__script_handler(const ljs__script_t *s, const char *name);

/* 1 if slot `slot` has script `id` attached. Thread: any. */
LJS_HIDDEN int ljs__script_bound(const ljs__world_t *w, uint32_t slot, uint32_t id);

/* How the natural-form functions of `s` run: "update: scalarized (touches
 * 2 of 24 fields, writes 1); on_hit: table (self passed to a function
 * (CALL) at line 7)" into buf (truncated to size), and how many run each
 * way. Thread: owner. */
LJS_HIDDEN void ljs__script_natural_summary(const ljs__script_t *s, char *buf, size_t size, uint32_t *scalar,
                                            uint32_t *table);

/* 1 if a call of `s` returns field `f` itself (natural form: any of its
 * fields; fast form: its writes). */
LJS_HIDDEN int ljs__script_returns_field(const ljs__script_t *s, uint32_t f);

#endif
