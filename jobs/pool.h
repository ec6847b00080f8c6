/* pool.h - per-worker free lists of job descriptors (internal).
 *
 * Every worker owns one pool. The owner allocates from its private free list
 * and frees the descriptors it ran itself back onto it: no atomics on that
 * path. A descriptor run (and so freed) by another worker goes back to its
 * home pool's return stack, a lock-free Treiber stack that any thread pushes
 * onto and only the owner empties, all at once, with one atomic exchange.
 * Since nobody ever pops a single node from it, there is no ABA problem.
 *
 * The pool grows by whole chunks, and only when both the free list and the
 * return stack are empty, so in steady state no job allocates heap memory.
 * Chunks are freed only by ljs__pool_fini.
 *
 * Invariants: `free` and `chunks` are touched only by the owner thread;
 * every descriptor's `home` is the index of the pool that allocated it.
 */
#ifndef LJS_JOBS_POOL_H
#define LJS_JOBS_POOL_H

#include <stdatomic.h>
#include <stdint.h>

#include "jobs/sched.h"

/* A job descriptor: one cache line, so two workers touching neighbouring
 * descriptors never share a line. */
typedef struct ljs__job_s {
    _Alignas(64) struct ljs__job_s *next; /* free list / return stack / affine queue link */
    ljs__job_fn fn;                       /* plain job body, or NULL for a range */
    ljs__range_fn range_fn;               /* parallel-for body, or NULL */
    void *arg;
    ljs__counter_t *counter;    /* may be NULL (plain jobs) */
    uint32_t begin, end, grain; /* parallel-for range [begin, end) */
    uint32_t home;              /* worker whose pool owns this descriptor */
} ljs__job_t;

typedef struct ljs__pool_s {
    ljs__job_t *free; /* owner only */
    void *chunks;     /* owner only: allocated chunks, freed by fini */
    uint32_t home;
    /* Written by other workers: its own cache line. */
    _Alignas(64) _Atomic(ljs__job_t *) returned;
} ljs__pool_t;

/* Initialise caller-owned storage for worker `home` and preallocate one
 * chunk. Returns 0 or -ENOMEM. Thread: any (before sharing). */
LJS_HIDDEN int ljs__pool_init(ljs__pool_t *p, uint32_t home);

/* Free every chunk. No descriptor may be in use or in flight to the return
 * stack. Thread: any (after the workers stopped). */
LJS_HIDDEN void ljs__pool_fini(ljs__pool_t *p);

/* Slow path of ljs__pool_alloc: take the return stack, else grow by a chunk.
 * Returns NULL only when out of memory. Thread: same-worker. */
LJS_HIDDEN ljs__job_t *ljs__pool_refill(ljs__pool_t *p);

/* Give a descriptor back to its (other worker's) home pool. Thread: any. */
LJS_HIDDEN void ljs__pool_return(ljs__pool_t *home, ljs__job_t *j);

/* Allocate a descriptor; NULL only when out of memory.
 * Thread: same-worker. Blocks: no. */
static inline ljs__job_t *ljs__pool_alloc(ljs__pool_t *p)
{
    ljs__job_t *j = p->free;
    if (!j)
        return ljs__pool_refill(p);
    p->free = j->next;
    return j;
}

/* Free a descriptor allocated by this same pool. Thread: same-worker. */
static inline void ljs__pool_free_local(ljs__pool_t *p, ljs__job_t *j)
{
    j->next = p->free;
    p->free = j;
}

#endif
