/* deque.h - Chase-Lev work-stealing deque of job pointers (internal).
 *
 * One owner thread pushes and pops at the bottom (LIFO: the most recently
 * pushed job is the hottest in cache); any number of thieves steal at the top
 * (FIFO: the oldest job, which for a split parallel-for is the biggest range).
 *
 * Algorithm: Le, Pop, Cohen, Zappa Nardelli, "Correct and Efficient
 * Work-Stealing for Weak Memory Models" (PPoPP 2013), with the orderings put
 * on the operations instead of standalone fences so ThreadSanitizer (which
 * does not model atomic_thread_fence) sees every happens-before edge. See
 * deque.c for the ordering argument.
 *
 * Invariants:
 *  - top only ever grows (thieves and the owner's last-item pop CAS it up);
 *  - bottom is written only by the owner;
 *  - the live items are the slots [top, bottom) modulo the capacity, and
 *    bottom - top <= capacity;
 *  - the capacity is fixed (a power of two). The buffer never grows: when
 *    ljs__deque_push finds the deque full it returns 0 and the caller (the
 *    scheduler) runs that job inline instead. A full deque means thieves have
 *    plenty to take already, so nothing is lost by not queueing one more.
 */
#ifndef LJS_JOBS_DEQUE_H
#define LJS_JOBS_DEQUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/sched.h" /* LJS_HIDDEN */

/* top and bottom sit on their own cache lines: thieves hammer top with CAS,
 * the owner writes bottom on every push and pop. */
typedef struct ljs__deque_s {
    _Alignas(64) _Atomic int64_t top;
    _Alignas(64) _Atomic int64_t bottom;
    _Alignas(64) _Atomic(void *) *buf; /* read-only after init */
    int64_t mask;                      /* capacity - 1 */
    int64_t top_cache;                 /* owner only: a past value of top */
} ljs__deque_t;

/* ljs__deque_steal results. */
enum {
    LJS__DEQUE_EMPTY = 0, /* nothing to steal */
    LJS__DEQUE_OK = 1,    /* *out holds the stolen item */
    LJS__DEQUE_ABORT = -1 /* lost a race with another thief or the owner; retry later */
};

/* Initialise caller-owned storage with room for `capacity` items (rounded up
 * to a power of two, at least 2). Returns 0 or -ENOMEM.
 * Thread: any (before sharing). Blocks: no. */
LJS_HIDDEN int ljs__deque_init(ljs__deque_t *d, uint32_t capacity);

/* Free the buffer. The deque must no longer be shared. Thread: any. */
LJS_HIDDEN void ljs__deque_fini(ljs__deque_t *d);

/* Push `item` (non-NULL) at the bottom. Returns 1, or 0 if the deque is full
 * (the item was not pushed; the caller runs it itself).
 * Thread: same-worker (the owner). Blocks: no. */
LJS_HIDDEN int ljs__deque_push(ljs__deque_t *d, void *item);

/* Pop the most recently pushed item, or NULL if empty.
 * Thread: same-worker (the owner). Blocks: no. */
LJS_HIDDEN void *ljs__deque_pop(ljs__deque_t *d);

/* Steal the oldest item into *out. Returns LJS__DEQUE_OK, LJS__DEQUE_EMPTY or
 * LJS__DEQUE_ABORT. Thread: any. Blocks: no. */
LJS_HIDDEN int ljs__deque_steal(ljs__deque_t *d, void **out);

/* Whether the deque looked non-empty at some instant during the call. Uses
 * seq_cst loads so a parking worker's check pairs with a submitter's seq_cst
 * fence (see sched.c, parking). Thread: any. Blocks: no. */
static inline int ljs__deque_looks_nonempty(ljs__deque_t *d)
{
    /* seq_cst: these loads must not be satisfied before the parker's
     * seq_cst announcement that it is going to sleep (sched.c). */
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    return b > t;
}

#endif
