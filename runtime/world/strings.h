/* strings.h - the runtime's interned strings (string fields and list
 * elements).
 *
 * A string field holds a 32-bit id; equal bytes always get the same id, so
 * equal strings are stored once and compared by id. Id 0 is the empty
 * string and is never stored.
 *
 * Invariants:
 * - Interning is thread-safe: workers intern concurrently during a phase
 *   (lock-sharded hash table, 64 shards by hash; a new id is published to
 *   other threads through its shard's lock). Looking an id up is lock-free:
 *   an id's entry is written before the id is handed out and never changes
 *   until a sweep frees it.
 * - Reclamation is a mark-and-sweep on the owner thread between frames
 *   (ljs__strings_sweep_*): the caller marks every id a field, list or
 *   script default holds; everything else is freed. Events and commands
 *   carry string bytes, never ids, so they hold nothing here. A sweep bumps
 *   `epoch`: caches keyed by id (the workers' Lua string caches) must be
 *   dropped when it changes, since freed ids are reused.
 * - Sweeps are paced by growth (ljs__strings_want_sweep): at most about
 *   twice the strings live after the last sweep plus a constant, so string
 *   churn never grows memory without bound, and steady state costs
 *   nothing. */
#ifndef LJS_RUNTIME_STRINGS_H
#define LJS_RUNTIME_STRINGS_H

#include "jobs/sched.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ljs__str_s {
    uint64_t hash; /* of the bytes, the same in every process (digest, snapshots) */
    uint32_t len;
    uint32_t mark;
    char bytes[]; /* len bytes and a NUL */
} ljs__str_t;

#define LJS__STR_SHARDS 64
#define LJS__STR_PAGE_BITS 12
#define LJS__STR_PAGES 16384 /* ids below 2^26 */

typedef struct ljs__strshard_s {
    pthread_mutex_t lock;
    uint32_t *slots; /* open addressing over ids; 0 = empty */
    uint32_t cap, n;
} ljs__strshard_t;

typedef struct ljs__strings_s {
    /* id -> entry, in pages that never move once made. Each page pointer
     * is atomic: another worker may publish a new page while this one
     * reads an older one. */
    _Atomic(ljs__str_t **) pages[LJS__STR_PAGES];
    pthread_mutex_t id_lock; /* guards next_id, the free list, page creation */
    uint32_t next_id;
    uint32_t *free_ids;
    uint32_t nfree, free_cap;
    atomic_size_t count; /* strings stored */
    atomic_size_t bytes; /* their bytes, entries included */
    size_t live_after_sweep;
    uint64_t epoch; /* bumped by every sweep that freed ids (owner only) */
    uint64_t sweeps, freed;
    ljs__strshard_t shards[LJS__STR_SHARDS];
} ljs__strings_t;

LJS_HIDDEN int ljs__strings_init(ljs__strings_t *s);
LJS_HIDDEN void ljs__strings_fini(ljs__strings_t *s);

/* The deterministic hash of `len` bytes. Thread: any. */
LJS_HIDDEN uint64_t ljs__strings_hash(const char *p, size_t len);

/* Id of the `len` bytes at p (NULs included), interning them if new.
 * Returns the id (0 for ""), or -1 (out of memory, or 2^26 distinct
 * strings). The caller checks len <= LJS_STRING_MAX. Thread: any. Blocks:
 * briefly (one shard lock). */
LJS_HIDDEN int64_t ljs__strings_intern(ljs__strings_t *s, const char *p, size_t len);

/* The entry of a live id (not 0). Thread: any. */
static inline const ljs__str_t *ljs__strings_get(const ljs__strings_t *s, uint32_t id)
{
    /* acquire: pairs with the release that published the page. */
    ljs__str_t **page =
        atomic_load_explicit(&((ljs__strings_t *)s)->pages[id >> LJS__STR_PAGE_BITS], memory_order_acquire);
    return page[id & ((1u << LJS__STR_PAGE_BITS) - 1)];
}

/* Bytes and length of id (0 gives ""). Thread: any. */
static inline const char *ljs__strings_bytes(const ljs__strings_t *s, uint32_t id, size_t *len)
{
    if (id == 0) {
        *len = 0;
        return "";
    }
    const ljs__str_t *e = ljs__strings_get(s, id);
    *len = e->len;
    return e->bytes;
}

/* Content hash of id (0 for ""), for digests. Thread: any. */
static inline uint64_t ljs__strings_id_hash(const ljs__strings_t *s, uint32_t id)
{
    return id == 0 ? ljs__strings_hash("", 0) : ljs__strings_get(s, id)->hash;
}

/* 1 if enough strings were made since the last sweep to sweep now. */
LJS_HIDDEN int ljs__strings_want_sweep(const ljs__strings_t *s);

/* A sweep: begin clears the marks, mark marks one id (0 is ignored), end
 * frees every unmarked string. Thread: owner, outside phases. */
LJS_HIDDEN void ljs__strings_sweep_begin(ljs__strings_t *s);
static inline void ljs__strings_mark(ljs__strings_t *s, uint32_t id)
{
    if (id != 0)
        ((ljs__str_t *)ljs__strings_get(s, id))->mark = 1;
}
LJS_HIDDEN void ljs__strings_sweep_end(ljs__strings_t *s);

#endif
