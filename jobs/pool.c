/* pool.c - per-worker job descriptor free lists: slow paths.
 *
 * Invariants (see pool.h): the free list and chunk list are owner-only; the
 * return stack is push-any / take-all-by-owner, hence free of ABA.
 */
#include "jobs/pool.h"

#include "jobs/mem.h"

#include <errno.h>
#include <stdlib.h>

/* 63 descriptors plus the chunk header: 4 KiB per chunk. */
#define POOL_CHUNK_JOBS 63

typedef struct chunk_s {
    _Alignas(64) struct chunk_s *next;
    ljs__job_t jobs[POOL_CHUNK_JOBS];
} chunk_t;

static int grow(ljs__pool_t *p)
{
    chunk_t *c = ljs__aligned_alloc(_Alignof(chunk_t), sizeof *c);
    if (!c)
        return -ENOMEM;
    c->next = p->chunks;
    p->chunks = c;
    for (uint32_t i = 0; i < POOL_CHUNK_JOBS; i++) {
        c->jobs[i].home = p->home;
        ljs__pool_free_local(p, &c->jobs[i]);
    }
    return 0;
}

int ljs__pool_init(ljs__pool_t *p, uint32_t home)
{
    p->free = NULL;
    p->chunks = NULL;
    p->home = home;
    atomic_init(&p->returned, NULL);
    return grow(p);
}

void ljs__pool_fini(ljs__pool_t *p)
{
    chunk_t *c = p->chunks;
    while (c) {
        chunk_t *next = c->next;
        ljs__free(c);
        c = next;
    }
    p->chunks = NULL;
    p->free = NULL;
    atomic_store_explicit(&p->returned, NULL, memory_order_relaxed);
}

ljs__job_t *ljs__pool_refill(ljs__pool_t *p)
{
    /* Cheap relaxed peek first so an empty return stack costs no RMW. */
    ljs__job_t *j = atomic_load_explicit(&p->returned, memory_order_relaxed);
    if (j) {
        /* acquire: pairs with the release CAS in ljs__pool_return, making
         * every pusher's write of `next` visible before we walk the list. */
        j = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    }
    if (!j) {
        if (grow(p) != 0)
            return NULL;
        j = p->free;
    }
    p->free = j->next;
    return j;
}

void ljs__pool_return(ljs__pool_t *home, ljs__job_t *j)
{
    /* relaxed: only a starting guess; the CAS validates it. */
    ljs__job_t *head = atomic_load_explicit(&home->returned, memory_order_relaxed);
    do {
        j->next = head;
        /* release on success: publishes j->next (and our last use of the
         * descriptor) to the owner's acquire exchange. relaxed on failure:
         * we just retry with the fresh head. */
    } while (!atomic_compare_exchange_weak_explicit(&home->returned, &head, j, memory_order_release,
                                                    memory_order_relaxed));
}
