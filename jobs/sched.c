/* sched.c - the work-stealing job scheduler (implements sched.h).
 *
 * Worker 0 is the creating (host) thread: it runs jobs only inside
 * ljs__sched_wait / ljs__sched_parallel_for. Workers 1..n-1 are pthreads that
 * loop: own affine jobs, own deque (LIFO), steal from random victims (FIFO),
 * spin `opts->spin` polls, then park.
 *
 * Invariants:
 *  - a worker's deque is pushed and popped only on its own thread (the
 *    thread-local worker index tells which one that is);
 *  - affine jobs go to the target's inbox (an MPSC Treiber stack) and are run
 *    only by the target, in submission order per submitting thread;
 *  - a job descriptor is freed (back to its home pool) before its counter is
 *    decremented, so when a wait returns no thread touches that job any more
 *    and ljs__sched_destroy may free the pools;
 *  - counter decrements are batched per worker: finished jobs of the same
 *    counter add up in done_c/done_k, published by one release fetch_sub
 *    when the worker runs out of work, enters a wait, or is about to run a
 *    job of another counter (or of none). While a decrement is deferred the
 *    worker only runs jobs of that same counter, all of which its waiter
 *    needs anyway, so deferring never delays a waiter past work it is not
 *    already waiting for, and cannot deadlock. This saves one contended
 *    cache-line transfer per stolen job (the submitter's increment and the
 *    thief's decrement otherwise bounce the counter's line every job);
 *  - parking never loses a wake-up: a worker announces itself in sleep_mask
 *    (seq_cst) and then re-checks every queue (seq_cst loads); a submitter
 *    publishes its job, issues a seq_cst fence, then reads sleep_mask. In the
 *    seq_cst order one of the two sees the other (store-buffering pattern).
 *    The wake itself is an event count per worker (`gen`, bumped under the
 *    worker's mutex): the parker reads gen before its last check and sleeps
 *    only while it is unchanged. A submitter syscalls only when some worker
 *    is actually in sleep_mask, so a busy runtime pays one fence per job.
 *
 * Lock order: start_mtx and the per-worker park_mtx are leaves; no thread
 * holds two of them, and no lock is held while running a job.
 */
#include "jobs/sched.h"

#include "jobs/mem.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/deque.h"
#include "jobs/pool.h"

#ifdef LJS_DEBUG
#include <assert.h>
#define SCHED_ASSERT(x) assert(x)
#else
#define SCHED_ASSERT(x) ((void)0)
#endif

/* Per-worker deque capacity. A submit that finds it full runs the job inline
 * (see deque.h); 1024 pending stealable jobs per worker is plenty to keep
 * every thief busy. */
#define DEQUE_CAPACITY 1024

/* Waiting (helping) backoff: polls with a CPU pause before yielding. */
#define WAIT_SPIN_POLLS 64
/* Idle workers yield every this many polls so oversubscribed workers let the
 * busy ones run. */
#define IDLE_YIELD_EVERY 32

#define MASK_WORDS (LJS_SCHED_MAX_WORKERS / 64)

/* ==== data ================================================================= */

typedef struct worker_s {
    ljs__deque_t deque; /* stealable jobs; own cache lines */
    ljs__pool_t pool;   /* job descriptors */

    /* Owner-only state. */
    _Alignas(64) ljs__job_t *affine; /* affine jobs taken from the inbox, FIFO */
    uint64_t rng;                    /* xorshift64 state for victim choice */
    uint64_t busy_since;             /* start of the current busy period, 0 = idle */
    uint32_t depth;                  /* jobs running on this thread's stack */
    ljs__counter_t *done_c;          /* counter with deferred decrements */
    uint32_t done_k;                 /* how many */
    uint32_t index;
    struct ljs__sched_s *sched;
    pthread_t thread;
    int start_rc; /* on_start's result, guarded by start_mtx */
    int reported; /* on_start returned, guarded by start_mtx */

    /* Stats: written only by the owner (load + store, no RMW needed), read
     * by any thread with relaxed loads. */
    _Atomic uint64_t jobs, steals, parks, busy_ns;

    /* Affine inbox: any thread pushes, the owner takes it all at once. */
    _Alignas(64) _Atomic(ljs__job_t *) inbox;

    /* Parking. gen is bumped only with park_mtx held; read without it as
     * the "before the last check" snapshot. */
    _Alignas(64) pthread_mutex_t park_mtx;
    pthread_cond_t park_cv;
    atomic_uint gen;
} worker_t;

struct ljs__sched_s {
    uint32_t n;
    uint32_t spin;
    uint32_t mask_words; /* words of sleep_mask in use */
    ljs__worker_start_fn on_start;
    ljs__worker_stop_fn on_stop;
    ljs__worker_idle_fn on_idle;
    ljs__worker_park_fn on_park;
    void *ud;
    worker_t *workers;

    /* The creating thread, worker 0. It is recognised by thread id rather
     * than thread-local state, because one thread may own several
     * schedulers (several runtimes), created and destroyed in any order. */
    pthread_t owner;

    /* Startup handshake (leaf lock). */
    pthread_mutex_t start_mtx;
    pthread_cond_t start_cv;

    _Alignas(64) atomic_int stop;
    /* Bit w set: worker w is parked or about to park. */
    _Alignas(64) _Atomic uint64_t sleep_mask[MASK_WORDS];
};

/* The calling thread's worker identity, for workers 1..n-1 (a worker thread
 * belongs to exactly one scheduler), and how many schedulers this thread
 * owns as worker 0. */
static _Thread_local struct ljs__sched_s *tls_sched;
static _Thread_local uint32_t tls_index;
static _Thread_local uint32_t tls_owned;

/* ==== small helpers ======================================================== */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Owner-only counter bump: relaxed load + store, since only this thread
 * writes it; readers just want a recent value. */
static inline void stat_add(_Atomic uint64_t *v, uint64_t d)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + d, memory_order_relaxed);
}

static inline uint32_t rand_below(worker_t *w, uint32_t n)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (uint32_t)(((x >> 32) * (uint64_t)n) >> 32);
}

static inline worker_t *self_worker(ljs__sched_t *s)
{
    if (tls_sched == s)
        return &s->workers[tls_index];
    return pthread_equal(pthread_self(), s->owner) ? &s->workers[0] : NULL;
}

static inline void begin_busy(worker_t *w)
{
    if (!w->busy_since)
        w->busy_since = now_ns();
}

/* Close the busy period when this thread runs no job any more. Busy time is
 * measured per run of consecutive jobs, not per job: a clock read costs
 * ~20 ns, as much as scheduling an empty job. */
static inline void end_busy(worker_t *w)
{
    if (w->busy_since && w->depth == 0) {
        stat_add(&w->busy_ns, now_ns() - w->busy_since);
        w->busy_since = 0;
    }
}

/* Publish this worker's deferred decrements (see top comment). */
static inline void flush_done(worker_t *w)
{
    if (w->done_c) {
        /* release: the jobs' effects happen before the waiter's acquire
         * load that sees the count reach zero (RMWs extend the release
         * sequence, so that load syncs with every finished job). */
        atomic_fetch_sub_explicit(&w->done_c->pending, w->done_k, memory_order_release);
        w->done_c = NULL;
        w->done_k = 0;
    }
}

/* k units of counter c are finished: defer the decrement. */
static inline void counter_done(worker_t *w, ljs__counter_t *c, uint32_t k)
{
    if (!c)
        return;
    if (c != w->done_c) {
        flush_done(w);
        w->done_c = c;
    }
    w->done_k += k;
}

static inline void free_job(ljs__sched_t *s, worker_t *w, ljs__job_t *j)
{
    if (j->home == w->index)
        ljs__pool_free_local(&w->pool, j);
    else
        ljs__pool_return(&s->workers[j->home].pool, j);
}

/* ==== parking ============================================================== */

static void wake_worker(worker_t *w)
{
    pthread_mutex_lock(&w->park_mtx);
    /* relaxed: the mutex orders this with the parker's re-check. */
    atomic_fetch_add_explicit(&w->gen, 1, memory_order_relaxed);
    pthread_cond_signal(&w->park_cv);
    pthread_mutex_unlock(&w->park_mtx);
}

/* Claim sleeper `i` (clear its bit) and wake it if we were the one to clear
 * it. acq_rel: orders our claim after the parker's announcement. */
static int claim_and_wake(ljs__sched_t *s, uint32_t i)
{
    uint64_t bit = 1ull << (i % 64);
    if (!(atomic_fetch_and_explicit(&s->sleep_mask[i / 64], ~bit, memory_order_acq_rel) & bit))
        return 0;
    wake_worker(&s->workers[i]);
    return 1;
}

/* After publishing a stealable job: wake one parked worker, if any. */
static void wake_one(ljs__sched_t *s)
{
    if (s->n == 1)
        return;
    /* seq_cst fence: our job's publication (deque bottom store) must not be
     * reordered after the sleep_mask loads below (store-load). Pairs with the
     * parker's seq_cst fetch_or and seq_cst queue re-check. No data flows
     * through this edge, so TSan not modelling the fence costs nothing. */
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t k = 0; k < s->mask_words; k++) {
        /* seq_cst: the load half of the store-buffering pattern above. */
        uint64_t m = atomic_load_explicit(&s->sleep_mask[k], memory_order_seq_cst);
        while (m) {
            uint32_t i = k * 64 + (uint32_t)__builtin_ctzll(m);
            if (claim_and_wake(s, i))
                return;
            m = atomic_load_explicit(&s->sleep_mask[k], memory_order_seq_cst);
        }
    }
}

/* After publishing an affine job for worker i: wake it if it is parked. */
static void wake_target(ljs__sched_t *s, uint32_t i)
{
    /* seq_cst fence: as in wake_one, the inbox push must precede our read
     * of the target's sleep bit. */
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t bit = 1ull << (i % 64);
    if (atomic_load_explicit(&s->sleep_mask[i / 64], memory_order_seq_cst) & bit)
        claim_and_wake(s, i);
}

/* wake_target that never blocks: with the target's park lock taken (it is
 * between announcing itself and sleeping, or just woke), leave its sleep
 * bit set and go: it sleeps with the job queued until the next wake. */
static void try_wake_target(ljs__sched_t *s, uint32_t i)
{
    atomic_thread_fence(memory_order_seq_cst); /* as in wake_target */
    uint64_t bit = 1ull << (i % 64);
    if (!(atomic_load_explicit(&s->sleep_mask[i / 64], memory_order_seq_cst) & bit))
        return;
    worker_t *w = &s->workers[i];
    if (pthread_mutex_trylock(&w->park_mtx) != 0)
        return;
    /* acq_rel: as in claim_and_wake; the mutex orders the gen bump with
     * the parker's re-check, as in wake_worker. */
    if (atomic_fetch_and_explicit(&s->sleep_mask[i / 64], ~bit, memory_order_acq_rel) & bit) {
        atomic_fetch_add_explicit(&w->gen, 1, memory_order_relaxed);
        pthread_cond_signal(&w->park_cv);
    }
    pthread_mutex_unlock(&w->park_mtx);
}

/* Whether any job is visible to worker w: its affine jobs, or any deque.
 * seq_cst loads: the re-check half of the parking protocol. */
static int has_work(ljs__sched_t *s, worker_t *w)
{
    if (w->affine || atomic_load_explicit(&w->inbox, memory_order_seq_cst))
        return 1;
    for (uint32_t i = 0; i < s->n; i++)
        if (ljs__deque_looks_nonempty(&s->workers[i].deque))
            return 1;
    return 0;
}

static void park(ljs__sched_t *s, worker_t *w)
{
    uint32_t word = w->index / 64;
    uint64_t bit = 1ull << (w->index % 64);
    /* relaxed: the snapshot is ordered before the fetch_or below by program
     * order plus that RMW's release; a waker that clears our bit (acq_rel)
     * therefore bumps gen strictly after this read. */
    unsigned g = atomic_load_explicit(&w->gen, memory_order_relaxed);
    /* seq_cst: the store half of the store-buffering pattern (see top). */
    atomic_fetch_or_explicit(&s->sleep_mask[word], bit, memory_order_seq_cst);
    if (!has_work(s, w) && !atomic_load_explicit(&s->stop, memory_order_acquire)) {
        if (s->on_park)
            s->on_park(s->ud, w->index, 1);
        pthread_mutex_lock(&w->park_mtx);
        if (atomic_load_explicit(&w->gen, memory_order_relaxed) == g &&
            !atomic_load_explicit(&s->stop, memory_order_acquire))
            stat_add(&w->parks, 1);
        /* relaxed loads: gen and stop are written under (gen) or before
         * (stop, then a gen bump under) this mutex. */
        while (atomic_load_explicit(&w->gen, memory_order_relaxed) == g &&
               !atomic_load_explicit(&s->stop, memory_order_relaxed))
            pthread_cond_wait(&w->park_cv, &w->park_mtx);
        pthread_mutex_unlock(&w->park_mtx);
        if (s->on_park)
            s->on_park(s->ud, w->index, 0);
    }
    /* relaxed: clearing our own announcement orders nothing; a waker that
     * already cleared it has bumped gen, which only makes the next park
     * re-snapshot. */
    atomic_fetch_and_explicit(&s->sleep_mask[word], ~bit, memory_order_relaxed);
}

/* ==== finding and running jobs ============================================ */

static ljs__job_t *take_affine(worker_t *w)
{
    ljs__job_t *j = w->affine;
    if (!j) {
        /* relaxed peek: an empty inbox costs no RMW. */
        if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
            return NULL;
        /* acquire: pairs with the submitters' release CAS, so each job's
         * fields and `next` link are visible. */
        ljs__job_t *list = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
        while (list) { /* the stack is newest-first: reverse into FIFO */
            ljs__job_t *next = list->next;
            list->next = j;
            j = list;
            list = next;
        }
        if (!j) /* only this worker empties its inbox; kept for the analyzer */
            return NULL;
    }
    w->affine = j->next;
    return j;
}

static ljs__job_t *steal(ljs__sched_t *s, worker_t *w)
{
    uint32_t n = s->n;
    if (n == 1)
        return NULL;
    uint32_t start = rand_below(w, n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t v = start + k < n ? start + k : start + k - n;
        void *item;
        if (v != w->index && ljs__deque_steal(&s->workers[v].deque, &item) == LJS__DEQUE_OK) {
            stat_add(&w->steals, 1);
            return item;
        }
    }
    return NULL;
}

static ljs__job_t *find_work(ljs__sched_t *s, worker_t *w)
{
    ljs__job_t *j = take_affine(w);
    if (!j)
        j = ljs__deque_pop(&w->deque);
    if (!j)
        j = steal(s, w);
    return j;
}

static void run_range(ljs__sched_t *s, worker_t *w, ljs__range_fn fn, void *arg, uint32_t begin, uint32_t end,
                      uint32_t grain, ljs__counter_t *c);

static void run_job(ljs__sched_t *s, worker_t *w, ljs__job_t *j)
{
    begin_busy(w);
    w->depth++;
    /* Copy out and free the descriptor first: it goes back to the pool hot,
     * and it is no longer ours once the counter drops (see top comment). */
    ljs__job_t copy = *j;
    free_job(s, w, j);
    if (copy.counter != w->done_c || !copy.counter)
        flush_done(w); /* only same-counter jobs may run while deferring */
    if (copy.range_fn) {
        run_range(s, w, copy.range_fn, copy.arg, copy.begin, copy.end, copy.grain, copy.counter);
    } else {
        copy.fn(copy.arg, w->index);
        counter_done(w, copy.counter, 1);
    }
    w->depth--;
    stat_add(&w->jobs, 1);
}

/* ==== parallel for ========================================================= */

/* Push [begin, end) as a stealable range job. Returns 0 if it could not
 * (deque full or out of memory): the caller runs the range itself. */
static int push_range(ljs__sched_t *s, worker_t *w, ljs__range_fn fn, void *arg, uint32_t begin, uint32_t end,
                      uint32_t grain, ljs__counter_t *c)
{
    ljs__job_t *j = ljs__pool_alloc(&w->pool);
    if (!j)
        return 0;
    j->fn = NULL;
    j->range_fn = fn;
    j->arg = arg;
    j->counter = c;
    j->begin = begin;
    j->end = end;
    j->grain = grain;
    if (!ljs__deque_push(&w->deque, j)) {
        ljs__pool_free_local(&w->pool, j);
        return 0;
    }
    wake_one(s);
    return 1;
}

/* Lazy binary splitting: keep the lower half, push the upper half, until one
 * grain is left. Split points are multiples of `grain` from the original
 * begin, so the leaf ranges are the same for any worker count. A thief takes
 * the oldest, i.e. biggest, pushed half. The counter counts indices. */
static void run_range(ljs__sched_t *s, worker_t *w, ljs__range_fn fn, void *arg, uint32_t begin, uint32_t end,
                      uint32_t grain, ljs__counter_t *c)
{
    while (end - begin > grain) {
        uint32_t chunks = (uint32_t)(((uint64_t)end - begin + grain - 1) / grain);
        uint32_t mid = begin + chunks / 2 * grain;
        if (!push_range(s, w, fn, arg, mid, end, grain, c))
            break;
        end = mid;
    }
    /* One grain, or several if a push failed. */
    for (uint32_t b = begin; b < end;) {
        uint32_t e = end - b > grain ? b + grain : end;
        fn(arg, b, e, w->index);
        b = e;
    }
    counter_done(w, c, end - begin);
}

/* ==== public: jobs ========================================================= */

int ljs__sched_self(void)
{
    if (tls_sched)
        return (int)tls_index;
    return tls_owned ? 0 : -1;
}

uint32_t ljs__sched_workers(const ljs__sched_t *s)
{
    return s->n;
}

/* Fill a fresh descriptor, or run the job inline and return NULL when that
 * is impossible (out of memory, or a thread that is not a worker, which
 * breaks the contract but must not crash). */
static ljs__job_t *new_job(ljs__sched_t *s, worker_t *w, ljs__job_fn fn, void *arg, ljs__counter_t *c)
{
    ljs__job_t *j = w ? ljs__pool_alloc(&w->pool) : NULL;
    if (!j) {
        SCHED_ASSERT(w != NULL);
        fn(arg, w ? w->index : 0);
        return NULL;
    }
    /* relaxed: the job is published to other threads by the deque's
     * release store or the inbox's release CAS, which orders this too. */
    if (c)
        atomic_fetch_add_explicit(&c->pending, 1, memory_order_relaxed);
    j->fn = fn;
    j->range_fn = NULL;
    j->arg = arg;
    j->counter = c;
    return j;
}

void ljs__sched_submit(ljs__sched_t *s, ljs__job_fn fn, void *arg, ljs__counter_t *c)
{
    worker_t *w = self_worker(s);
    ljs__job_t *j = new_job(s, w, fn, arg, c);
    if (!j)
        return;
    if (!ljs__deque_push(&w->deque, j)) {
        run_job(s, w, j); /* deque full: run it here (see deque.h) */
        return;
    }
    wake_one(s);
}

/* Push a job onto `worker`'s inbox; 1 if the caller should wake it (it is
 * not the calling worker), 0 if not or when no job could be made. */
static int push_affine(ljs__sched_t *s, uint32_t worker, ljs__job_fn fn, void *arg, ljs__counter_t *c)
{
    SCHED_ASSERT(worker < s->n);
    worker_t *t = &s->workers[worker];
    ljs__job_t *j = new_job(s, self_worker(s), fn, arg, c);
    if (!j)
        return 0;
    /* relaxed: only a starting guess for the CAS. */
    ljs__job_t *head = atomic_load_explicit(&t->inbox, memory_order_relaxed);
    do {
        j->next = head;
        /* release on success: publishes the job's fields to the target's
         * acquire exchange; relaxed on failure: retry with the new head. */
    } while (!atomic_compare_exchange_weak_explicit(&t->inbox, &head, j, memory_order_release,
                                                    memory_order_relaxed));
    worker_t *me = self_worker(s);
    return me == NULL || me->index != worker;
}

void ljs__sched_submit_affine(ljs__sched_t *s, uint32_t worker, ljs__job_fn fn, void *arg, ljs__counter_t *c)
{
    if (push_affine(s, worker, fn, arg, c))
        wake_target(s, worker);
}

void ljs__sched_submit_affine_nowait(ljs__sched_t *s, uint32_t worker, ljs__job_fn fn, void *arg,
                                     ljs__counter_t *c)
{
    if (push_affine(s, worker, fn, arg, c))
        try_wake_target(s, worker);
}

void ljs__sched_wake(ljs__sched_t *s, uint32_t worker)
{
    SCHED_ASSERT(worker < s->n);
    wake_target(s, worker);
}

static void wait_backoff(uint32_t *idle)
{
    if (++*idle < WAIT_SPIN_POLLS)
        cpu_relax();
    else
        sched_yield(); /* let oversubscribed workers run the jobs we wait for */
}

void ljs__sched_wait(ljs__sched_t *s, ljs__counter_t *c)
{
    worker_t *w = self_worker(s);
    uint32_t idle = 0;
    SCHED_ASSERT(w != NULL);
    if (w)
        flush_done(w); /* a job waiting on another counter: publish first */
    /* acquire: pairs with flush_done's release, so every finished job's
     * effects are visible once we see zero. */
    while (atomic_load_explicit(&c->pending, memory_order_acquire) != 0) {
        ljs__job_t *j = w ? find_work(s, w) : NULL;
        if (j) {
            run_job(s, w, j);
            idle = 0;
            continue;
        }
        if (w) {
            if (w->done_c) { /* maybe our own deferred jobs are all it lacks */
                flush_done(w);
                continue;
            }
            end_busy(w);
            if (s->on_idle && s->on_idle(s->ud, w->index)) {
                idle = 0;
                continue;
            }
        }
        wait_backoff(&idle);
    }
    if (w) {
        /* Jobs of other counters run while helping: publish them before the
         * caller goes on, maybe for long. */
        flush_done(w);
        end_busy(w);
    }
}

void ljs__sched_parallel_for(ljs__sched_t *s, uint32_t n, uint32_t grain, ljs__range_fn fn, void *arg)
{
    worker_t *w = self_worker(s);
    if (n == 0)
        return;
    if (grain == 0)
        grain = 1;
    if (!w) { /* not a worker (contract violation): run it all here */
        SCHED_ASSERT(w != NULL);
        for (uint32_t b = 0; b<n; b = n - b> grain ? b + grain : n)
            fn(arg, b, n - b > grain ? b + grain : n, 0);
        return;
    }
    ljs__counter_t c;
    /* The counter counts indices; set before any range is published. */
    atomic_init(&c.pending, n);
    begin_busy(w);
    w->depth++;
    run_range(s, w, fn, arg, 0, n, grain, &c);
    w->depth--;
    ljs__sched_wait(s, &c);
}

void ljs__sched_run_on_all(ljs__sched_t *s, ljs__job_fn fn, void *arg)
{
    ljs__counter_t c = LJS__COUNTER_INIT;
    for (uint32_t i = 0; i < s->n; i++)
        ljs__sched_submit_affine(s, i, fn, arg, &c);
    ljs__sched_wait(s, &c);
}

void ljs__sched_worker_stats(const ljs__sched_t *s, uint32_t w, ljs__sched_worker_stats_t *out)
{
    const worker_t *k = &s->workers[w];
    /* relaxed: a snapshot; each counter is written by one thread only. */
    out->jobs = atomic_load_explicit(&k->jobs, memory_order_relaxed);
    out->steals = atomic_load_explicit(&k->steals, memory_order_relaxed);
    out->parks = atomic_load_explicit(&k->parks, memory_order_relaxed);
    out->busy_ns = atomic_load_explicit(&k->busy_ns, memory_order_relaxed);
}

/* ==== worker threads ======================================================= */

static void worker_loop(ljs__sched_t *s, worker_t *w)
{
    uint32_t idle = 0;
    /* acquire: the worker's on_stop runs right after this loop and must see
     * everything the owner did before it set stop (free on x86). */
    while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
        ljs__job_t *j = find_work(s, w);
        if (j) {
            run_job(s, w, j);
            idle = 0;
            continue;
        }
        flush_done(w);
        end_busy(w);
        if (s->on_idle && s->on_idle(s->ud, w->index)) {
            idle = 0;
            continue;
        }
        if (idle < s->spin) {
            idle++;
            if (idle % IDLE_YIELD_EVERY == 0)
                sched_yield();
            else
                cpu_relax();
            continue;
        }
        park(s, w);
        idle = 0;
    }
    end_busy(w);
}

static void report_started(ljs__sched_t *s, worker_t *w, int rc)
{
    pthread_mutex_lock(&s->start_mtx);
    w->start_rc = rc;
    w->reported = 1;
    pthread_cond_broadcast(&s->start_cv);
    pthread_mutex_unlock(&s->start_mtx);
}

static void *worker_main(void *p)
{
    worker_t *w = p;
    ljs__sched_t *s = w->sched;
    tls_sched = s;
    tls_index = w->index;
    int rc = s->on_start ? s->on_start(s->ud, w->index) : 0;
    report_started(s, w, rc);
    if (rc == 0) {
        worker_loop(s, w);
        if (s->on_stop)
            s->on_stop(s->ud, w->index);
    }
    tls_sched = NULL;
    return NULL;
}

/* Wait until workers 1..count have run on_start; return the first failure
 * (lowest index) or 0. */
static int await_started(ljs__sched_t *s, uint32_t count)
{
    int rc = 0;
    pthread_mutex_lock(&s->start_mtx);
    for (uint32_t i = 1; i <= count; i++) {
        while (!s->workers[i].reported)
            pthread_cond_wait(&s->start_cv, &s->start_mtx);
        if (!rc)
            rc = s->workers[i].start_rc;
    }
    pthread_mutex_unlock(&s->start_mtx);
    return rc;
}

/* Stop and join workers 1..count (each runs its on_stop on its way out). */
static void stop_workers(ljs__sched_t *s, uint32_t count)
{
    /* release: a worker that sees stop also sees everything before it. */
    atomic_store_explicit(&s->stop, 1, memory_order_release);
    for (uint32_t i = 1; i <= count; i++)
        wake_worker(&s->workers[i]);
    for (uint32_t i = 1; i <= count; i++)
        pthread_join(s->workers[i].thread, NULL);
}

/* ==== create / destroy ===================================================== */

static void free_sched(ljs__sched_t *s, uint32_t ninit)
{
    for (uint32_t i = 0; i < ninit; i++) {
        worker_t *w = &s->workers[i];
        pthread_cond_destroy(&w->park_cv);
        pthread_mutex_destroy(&w->park_mtx);
        ljs__pool_fini(&w->pool);
        ljs__deque_fini(&w->deque);
    }
    ljs__free(s->workers);
    pthread_cond_destroy(&s->start_cv);
    pthread_mutex_destroy(&s->start_mtx);
    ljs__free(s);
}

static int init_worker(ljs__sched_t *s, worker_t *w, uint32_t i)
{
    w->index = i;
    w->sched = s;
    w->rng = 0x9E3779B97F4A7C15ull * (i + 1); /* distinct non-zero seeds */
    atomic_init(&w->inbox, NULL);
    atomic_init(&w->gen, 0);
    atomic_init(&w->jobs, 0);
    atomic_init(&w->steals, 0);
    atomic_init(&w->parks, 0);
    atomic_init(&w->busy_ns, 0);
    if (ljs__deque_init(&w->deque, DEQUE_CAPACITY) != 0)
        return -ENOMEM;
    if (ljs__pool_init(&w->pool, i) != 0) {
        ljs__deque_fini(&w->deque);
        return -ENOMEM;
    }
    pthread_mutex_init(&w->park_mtx, NULL);
    pthread_cond_init(&w->park_cv, NULL);
    return 0;
}

static ljs__sched_t *alloc_sched(const ljs__sched_opts_t *opts)
{
    ljs__sched_t *s = ljs__aligned_alloc(_Alignof(ljs__sched_t), sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    size_t bytes = (size_t)opts->workers * sizeof(worker_t);
    s->workers = ljs__aligned_alloc(_Alignof(worker_t), bytes);
    if (!s->workers) {
        ljs__free(s);
        return NULL;
    }
    memset(s->workers, 0, bytes);
    s->n = opts->workers;
    s->spin = opts->spin;
    s->mask_words = (opts->workers + 63) / 64;
    s->on_start = opts->on_start;
    s->on_stop = opts->on_stop;
    s->on_idle = opts->on_idle;
    s->on_park = opts->on_park;
    s->ud = opts->ud;
    atomic_init(&s->stop, 0);
    for (uint32_t k = 0; k < MASK_WORDS; k++)
        atomic_init(&s->sleep_mask[k], 0);
    pthread_mutex_init(&s->start_mtx, NULL);
    pthread_cond_init(&s->start_cv, NULL);
    return s;
}

/* Start workers 1..n-1. Returns 0 or an error; *started = threads created. */
static int start_threads(ljs__sched_t *s, uint32_t *started)
{
    *started = 0;
    for (uint32_t i = 1; i < s->n; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
            return -EAGAIN;
        *started = i;
    }
    return 0;
}

int ljs__sched_create(const ljs__sched_opts_t *opts, ljs__sched_t **out)
{
    if (!opts || !out || opts->workers < 1 || opts->workers > LJS_SCHED_MAX_WORKERS)
        return -EINVAL;
    *out = NULL;
    ljs__sched_t *s = alloc_sched(opts);
    if (!s)
        return -ENOMEM;
    uint32_t ninit = 0, started = 0;
    int rc = 0;
    for (; ninit < s->n; ninit++)
        if ((rc = init_worker(s, &s->workers[ninit], ninit)) != 0)
            goto fail_init;
    /* Worker 0 is this thread. */
    s->owner = pthread_self();
    tls_owned++;
    if (s->on_start && (rc = s->on_start(s->ud, 0)) != 0)
        goto fail_start0;
    rc = start_threads(s, &started);
    int start_rc = await_started(s, started);
    if (!rc)
        rc = start_rc;
    if (rc)
        goto fail_threads;
    *out = s;
    return 0;

fail_threads:
    stop_workers(s, started);
    if (s->on_stop)
        s->on_stop(s->ud, 0);
fail_start0:
    tls_owned--;
fail_init:
    free_sched(s, ninit);
    return rc;
}

void ljs__sched_destroy(ljs__sched_t *s)
{
    if (!s)
        return;
    stop_workers(s, s->n - 1);
    if (s->on_stop)
        s->on_stop(s->ud, 0);
    tls_owned--;
    free_sched(s, s->n);
}
