/* deque.c - Chase-Lev work-stealing deque (Le et al., PPoPP 2013).
 *
 * Invariants (see deque.h): top never decreases; only the owner writes
 * bottom; live items are [top, bottom); bottom - top <= capacity.
 *
 * Orderings. The paper's C11 version uses relaxed accesses plus two seq_cst
 * fences (in take and steal) and one release fence (in push). ThreadSanitizer
 * ignores standalone fences, so each one is moved onto the neighbouring
 * operation:
 *  - push: the release fence becomes a release store of bottom; a thief's
 *    acquire (seq_cst) load of bottom then sees the slot and everything the
 *    owner wrote into the job before pushing it.
 *  - pop: the seq_cst fence between "bottom = b - 1" and "read top" becomes a
 *    seq_cst exchange of bottom followed by a seq_cst load of top.
 *  - steal: the seq_cst fence between "read top" and "read bottom" becomes
 *    seq_cst loads of both.
 * In the single total order S of seq_cst operations, either the owner's
 * bottom update precedes the thief's bottom load (the thief sees the item
 * gone, or both race for the last item through the CAS on top), or the
 * thief's top load precedes the owner's top load (the owner sees the thief's
 * claim). Those are exactly the two cases the fences distinguish in the paper.
 *
 * Every store to bottom is at least release, including the "restore" stores
 * in pop, so whichever bottom value a thief reads, it synchronises with the
 * owner's pushes of the items below it. Buffer slots are relaxed atomics: a
 * thief may read a slot the owner is about to overwrite, but then its CAS on
 * top fails and the value is discarded.
 */
#include "jobs/deque.h"

#include "jobs/mem.h"

#include <errno.h>
#include <stdlib.h>

int ljs__deque_init(ljs__deque_t *d, uint32_t capacity)
{
    uint64_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    d->buf = ljs__calloc(cap, sizeof *d->buf);
    if (!d->buf)
        return -ENOMEM;
    d->mask = (int64_t)cap - 1;
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&d->buf[i], NULL);
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    d->top_cache = 0;
    return 0;
}

void ljs__deque_fini(ljs__deque_t *d)
{
    ljs__free(d->buf);
    d->buf = NULL;
}

int ljs__deque_push(ljs__deque_t *d, void *item)
{
    /* relaxed: only this thread writes bottom. */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    /* Owner-side cache of top: top only grows, so a stale value can only
     * make the deque look fuller than it is. Re-read the shared line (which
     * thieves keep writing) only when the cached value says full. */
    if (b - d->top_cache > d->mask) {
        /* acquire: pairs with the thieves' CAS on top, so a thief's read of
         * the slot we are about to reuse happens before our overwrite. */
        d->top_cache = atomic_load_explicit(&d->top, memory_order_acquire);
        if (b - d->top_cache > d->mask)
            return 0; /* full (t may still be stale: we only say full early) */
    }
    /* relaxed: published by the release store of bottom below. */
    atomic_store_explicit(&d->buf[b & d->mask], item, memory_order_relaxed);
    /* release: makes the slot and the job's contents visible to a thief that
     * reads this bottom (the paper's release fence). */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return 1;
}

void *ljs__deque_pop(ljs__deque_t *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    /* relaxed peek: top never decreases, so a stale (smaller) top can only
     * make an empty deque look non-empty, never the reverse. Lets an idle
     * owner poll its empty deque without the seq_cst exchange below. */
    if (b <= atomic_load_explicit(&d->top, memory_order_relaxed))
        return NULL;
    b--;
    /* seq_cst (an exchange: on x86 one xchg, cheaper than mov + mfence):
     * reserves slot b before we read top; must not be reordered with the
     * load of top below (store-load), the paper's seq_cst fence. */
    atomic_exchange_explicit(&d->bottom, b, memory_order_seq_cst);
    /* seq_cst: second half of the store-load pair above. */
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    if (t > b) {
        /* Empty. release: every bottom store is release (see top comment). */
        atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
        return NULL;
    }
    /* relaxed: we wrote this slot ourselves. */
    void *item = atomic_load_explicit(&d->buf[b & d->mask], memory_order_relaxed);
    if (t == b) {
        /* Last item: race the thieves for it by claiming top. seq_cst as in
         * the paper (orders the claim against the thieves' top loads);
         * relaxed on failure: we only learn we lost. */
        if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                     memory_order_relaxed))
            item = NULL;
        /* release: restore bottom == top (empty), see top comment. */
        atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    }
    return item;
}

int ljs__deque_steal(ljs__deque_t *d, void **out)
{
    /* seq_cst (implies acquire): acquire syncs with the CAS of the thief or
     * owner that last advanced top; seq_cst keeps this load ordered before the
     * load of bottom below (the paper's seq_cst fence). */
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    /* seq_cst (implies acquire): acquire syncs with the owner's release store
     * of bottom, making the slot and the job's contents visible. */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    if (t >= b)
        return LJS__DEQUE_EMPTY;
    /* relaxed: visibility comes from the bottom load; a stale value is
     * discarded by the failing CAS below. */
    void *item = atomic_load_explicit(&d->buf[t & d->mask], memory_order_relaxed);
    /* seq_cst: claims index t against other thieves and the owner's
     * last-item CAS (release part: lets the owner's later push, which loads
     * top with acquire, reuse the slot only after our read of it). */
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return LJS__DEQUE_ABORT;
    *out = item;
    return LJS__DEQUE_OK;
}
