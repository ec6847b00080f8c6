/* query.h - cached entity queries: "entities with all of these tags and
 * none of those".
 *
 * Each cached signature (all-mask, none-mask) holds its result, the handles
 * of matching entities sorted by slot. Structural changes are logged by the
 * world (world.h: changes); at each sync the owner routes every change to
 * the signatures it can affect and patches their results by one merge pass
 * (a delta), falling back to a full scan only when the log was lost or a
 * delta is larger than the result. During a frame the cache is read-only:
 * workers look results up without locks; a miss scans into a private
 * result and asks the owner to cache that signature at the next sync. */
#ifndef LJS_RUNTIME_QUERY_H
#define LJS_RUNTIME_QUERY_H

#include "runtime/world/world.h"

#include <stdatomic.h>

typedef struct ljs__qentry_s {
    int used;
    uint64_t all, none;
    uint64_t *ids; /* sorted by slot (the low 32 bits) */
    uint32_t n, cap;
    uint64_t *spare; /* the other buffer of the delta merge */
    uint32_t spare_cap;
    uint32_t *touched; /* slots changed since the last sync */
    uint32_t ntouched, tcap;
    atomic_uint_fast64_t last_used; /* frame of the last lookup (LRU) */
} ljs__qentry_t;

typedef struct ljs__qcache_s {
    ljs__qentry_t *e;
    uint32_t cap;
    uint64_t hits_host, misses_host, recomputes, deltas, evictions;
} ljs__qcache_t;

struct ljs_runtime_s;

LJS_HIDDEN int ljs__query_init(ljs__qcache_t *q, uint32_t cap);
LJS_HIDDEN void ljs__query_fini(ljs__qcache_t *q);

/* Bring every cached result up to date with the world's change log and
 * cache the signatures workers missed. Thread: owner, outside phases. */
LJS_HIDDEN void ljs__query_sync(struct ljs_runtime_s *rt);

/* Cached result for a signature, or NULL. Thread: any (read-only during a
 * frame; the owner mutates the cache only outside phases). */
LJS_HIDDEN const ljs__qentry_t *ljs__query_find(const ljs__qcache_t *q, uint64_t all, uint64_t none,
                                                uint64_t frame);

/* Does a live entity with `tags` match? */
static inline int ljs__query_match(uint64_t all, uint64_t none, int alive, uint64_t tags)
{
    return alive && (tags & all) == all && (tags & none) == 0;
}

#endif
