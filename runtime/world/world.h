/* world.h - entities, tags and C-side typed fields (structure of arrays).
 *
 * Invariants:
 * - Slot i's handle is (gen[i] << 32) | i; gen starts at 1, so 0 is never a
 *   handle. Destroying bumps gen, so stale handles are refused.
 * - Every field column has `cap` slots. Columns are reallocated only by the
 *   owner thread outside script phases (structural changes are deferred
 *   during a frame), so workers may read them without locks.
 * - Double buffer: during a frame an entity's own reads and writes use
 *   `work`; reads of other entities use `cur` (the last committed frame).
 *   Commit copies `work` to `cur` for every field written this frame. Host
 *   writes between frames update both.
 */
#ifndef LJS_RUNTIME_WORLD_H
#define LJS_RUNTIME_WORLD_H

#include "jobs/sched.h"
#include "runtime/world/strings.h"

#include <ljs.h>
#include <stdatomic.h>
#include <stdint.h>

#define LJS_MAX_TAGS 64
#define LJS_MAX_FIELDS 4096

/* One field value. i holds integers, booleans as 0/1, entity handles (0:
 * none), string ids (strings.h) and a list's length. */
typedef union ljs__value_u {
    double n;
    int64_t i;
} ljs__value_t;

/* A field's type: scalar types, or a list of `elem` of at most `maxlen`. */
typedef struct ljs__ftype_s {
    ljs_type_t type;
    ljs_type_t elem;
    uint32_t maxlen;
} ljs__ftype_t;

typedef struct ljs__field_s {
    char *name;
    ljs_type_t type;
    ljs_type_t elem; /* lists: the element type */
    uint32_t maxlen; /* lists: at most this many elements */
    ljs__value_t *cur;
    ljs__value_t *work;
    /* Lists: `maxlen` elements per slot, committed and working copies
     * (cur/work above hold the lengths). NULL for other types. */
    ljs__value_t *lcur;
    ljs__value_t *lwork;
    uint8_t *present;
    atomic_int dirty; /* set by any worker that wrote the column this frame */
} ljs__field_t;

static inline ljs__ftype_t ljs__field_ftype(const ljs__field_t *f)
{
    ljs__ftype_t t = {f->type, f->elem, f->maxlen};
    return t;
}

/* "number", "list of string (max 8)"... into buf. Thread: any. */
LJS_HIDDEN const char *ljs__ftype_name(ljs__ftype_t t, char *buf, size_t size);
LJS_HIDDEN const char *ljs__type_name(ljs_type_t t);

/* Per-entity counters for the current frame: event/command sequence and
 * rand() draws. Reset lazily when `frame` is not the current frame, so no
 * per-frame pass over every entity is needed. Written only by calls of
 * their own entity, which never run concurrently. */
typedef struct ljs__ectr_s {
    uint64_t frame;
    uint32_t seq;
    uint32_t rng;
} ljs__ectr_t;

/* One structural change, for the query cache: slot `slot` went from
 * (old_alive, old_tags) to (new_alive, new_tags). */
typedef struct ljs__tagchange_s {
    uint32_t slot;
    uint8_t old_alive, new_alive;
    uint64_t old_tags, new_tags;
} ljs__tagchange_t;

/* Scripts attached to one entity, in attach order. */
typedef struct ljs__escripts_s {
    uint32_t *ids;
    uint32_t n, cap;
} ljs__escripts_t;

typedef struct ljs__world_s {
    uint32_t cap;    /* slots allocated per column */
    uint32_t nslots; /* slots ever handed out */
    uint32_t live;
    uint32_t *gen;
    uint8_t *alive;
    uint64_t *tags;
    ljs__escripts_t *escripts;
    ljs__ectr_t *ectr;
    uint32_t *free_slots; /* LIFO, so reuse order is deterministic */
    uint32_t nfree;
    char *tag_names[LJS_MAX_TAGS];
    uint32_t ntags;
    ljs__field_t *fields;
    uint32_t nfields, fields_cap;
    /* Structural changes since the query cache last caught up. */
    ljs__tagchange_t *changes;
    uint32_t nchanges, changes_cap;
    int changes_lost;       /* out of memory, or a world load: caches must rescan */
    ljs__strings_t strings; /* string fields' and lists' interned strings */
} ljs__world_t;

static inline uint32_t ljs__world_index(uint64_t id)
{
    return (uint32_t)id;
}

static inline uint64_t ljs__world_handle(const ljs__world_t *w, uint32_t i)
{
    return ((uint64_t)w->gen[i] << 32) | i;
}

/* Slot of a live handle, or -1. Thread: any (columns are stable in frames). */
static inline int64_t ljs__world_slot(const ljs__world_t *w, uint64_t id)
{
    uint32_t i = ljs__world_index(id);
    if (i >= w->nslots || !w->alive[i] || w->gen[i] != (uint32_t)(id >> 32))
        return -1;
    return i;
}

/* Returns LJS_OK or LJS_ENOMEM. */
LJS_HIDDEN int ljs__world_init(ljs__world_t *w);
LJS_HIDDEN void ljs__world_fini(ljs__world_t *w);

/* Thread: owner, outside script phases. */
LJS_HIDDEN int ljs__world_create(ljs__world_t *w, uint64_t *out);
LJS_HIDDEN int ljs__world_destroy(ljs__world_t *w, uint64_t id);

/* Set a live slot's tags, logging the change. Thread: owner, outside
 * script phases. */
LJS_HIDDEN void ljs__world_set_tags(ljs__world_t *w, uint32_t slot, uint64_t tags);

/* Tag bit for a name, registering it if `add`; -1 if unknown / full. */
LJS_HIDDEN int ljs__world_tag_bit(ljs__world_t *w, const char *name, int add);

/* Field id for a name, or -1. Thread: any. */
LJS_HIDDEN int ljs__world_field_find(const ljs__world_t *w, const char *name);

/* Declare (or find) a field of `type`. Returns its id (>= 0) or LJS_ETYPE,
 * LJS_ENOMEM, LJS_EFULL. Thread: owner, outside script phases. */
LJS_HIDDEN int ljs__world_field_declare(ljs__world_t *w, const char *name, ljs_type_t type);
LJS_HIDDEN int ljs__world_field_declare_t(ljs__world_t *w, const char *name, ljs__ftype_t type);

/* An entity field's value as scripts see it: the handle while its target
 * lives, else 0 (generation-checked). Thread: any (slots are stable
 * during phases). */
static inline uint64_t ljs__world_live_ref(const ljs__world_t *w, int64_t h)
{
    return h != 0 && ljs__world_slot(w, (uint64_t)h) >= 0 ? (uint64_t)h : 0;
}

/* Host write of a list: n elements (n <= maxlen) to both buffers. Thread:
 * owner. */
LJS_HIDDEN void ljs__world_list_put(ljs__world_t *w, uint32_t f, uint32_t slot, const ljs__value_t *v,
                                    uint32_t n);

/* Mark every string id the fields hold (strings.h's sweep). Thread:
 * owner, outside phases. */
LJS_HIDDEN void ljs__world_mark_strings(ljs__world_t *w);

/* Host write of a field value to both buffers. Thread: owner. */
LJS_HIDDEN void ljs__world_field_put(ljs__world_t *w, uint32_t f, uint32_t slot, ljs__value_t v);

/* Copy work to cur over slots [begin, end) for every dirty field (ranges
 * may run in parallel), then clear the dirty flags once all are done.
 * Thread: worker (range), owner (done), after the script phases. */
LJS_HIDDEN void ljs__world_commit_range(ljs__world_t *w, uint32_t begin, uint32_t end);
LJS_HIDDEN void ljs__world_commit_done(ljs__world_t *w);

/* Replace every slot with a saved layout (world snapshots): `nslots`
 * slots with these generations and liveness, this free list; live slots
 * start with no tags, scripts or fields. The caller validated the layout
 * (free slots dead and unique, every dead slot free). Thread: owner,
 * outside frames. Returns LJS_OK or LJS_ENOMEM (nothing changed). */
LJS_HIDDEN int ljs__world_restore_slots(ljs__world_t *w, uint32_t nslots, const uint32_t *gen,
                                        const uint8_t *alive, const uint32_t *free_slots, uint32_t nfree);

/* Forget the fields and tags declared after there were `nfields` and
 * `ntags` (a refused script's, which no entity holds yet), so its
 * declarations cannot make a later script refused. Thread: owner, outside
 * phases. */
LJS_HIDDEN void ljs__world_forget_since(ljs__world_t *w, uint32_t nfields, uint32_t ntags);

/* Copy this frame's field writes to the committed buffer, sliced over the
 * workers. Thread: owner, outside phases. */
LJS_HIDDEN void ljs__world_commit(ljs__world_t *w, ljs__sched_t *sched);

LJS_HIDDEN uint64_t ljs__world_digest(const ljs__world_t *w);

#endif
