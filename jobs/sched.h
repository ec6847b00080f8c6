/* sched.h - the work-stealing job scheduler (internal to libljs).
 *
 * Knows nothing of Lua. Worker 0 is the thread that created the scheduler
 * (the host thread); it has no OS thread of its own and runs jobs only while
 * it waits inside ljs__sched_wait() / ljs__sched_parallel_for(). Workers
 * 1..n-1 are threads owned by the scheduler; an idle one spins briefly, then
 * parks (0% CPU when idle).
 *
 * Every worker owns a Chase-Lev deque (deque.h) for stealable jobs and an
 * affine queue for jobs that must run on it (never stolen). Job descriptors
 * come from per-worker free lists (pool.h): no heap allocation per job in
 * steady state.
 *
 * Completion is tracked by ljs__counter_t: submit increments it, the job's
 * end decrements it, wait helps (runs other jobs) until it reaches zero.
 */
#ifndef LJS_JOBS_SCHED_H
#define LJS_JOBS_SCHED_H

#include <stdatomic.h>
#include <stdint.h>

#define LJS_HIDDEN __attribute__((visibility("hidden")))

#define LJS_SCHED_MAX_WORKERS 256

typedef struct ljs__sched_s ljs__sched_t;

/* A job body. `worker` is the index of the worker running it (0..n-1). */
typedef void (*ljs__job_fn)(void *arg, uint32_t worker);

/* A parallel-for body over the index range [begin, end). */
typedef void (*ljs__range_fn)(void *arg, uint32_t begin, uint32_t end, uint32_t worker);

/* Called on a worker's own thread: on_start before it runs any job (for
 * workers 1..n-1, on the new thread; for worker 0, on the creating thread
 * inside ljs__sched_create), on_stop just before that thread ends (worker 0:
 * inside ljs__sched_destroy). A non-zero return from on_start makes
 * ljs__sched_create fail (after stopping the workers already started) and
 * return that value. */
typedef int (*ljs__worker_start_fn)(void *ud, uint32_t worker);
typedef void (*ljs__worker_stop_fn)(void *ud, uint32_t worker);

/* Called on a worker's own thread when it finds no job, before it spins or
 * parks (worker 0: while it waits in ljs__sched_wait). Returns non-zero if
 * it did some work, so the worker looks for jobs again instead of parking.
 * It must be short: a job published meanwhile waits for it. */
typedef int (*ljs__worker_idle_fn)(void *ud, uint32_t worker);

/* Called on a worker's own thread around its sleep (begin = 1 before, 0
 * after), only when it really goes to sleep: profilers show parked time. */
typedef void (*ljs__worker_park_fn)(void *ud, uint32_t worker, int begin);

typedef struct ljs__sched_opts_s {
    uint32_t workers;              /* 1..LJS_SCHED_MAX_WORKERS, including worker 0 */
    uint32_t spin;                 /* idle polls before parking (0 = park at once) */
    ljs__worker_start_fn on_start; /* may be NULL */
    ljs__worker_stop_fn on_stop;   /* may be NULL */
    ljs__worker_idle_fn on_idle;   /* may be NULL */
    ljs__worker_park_fn on_park;   /* may be NULL */
    void *ud;
} ljs__sched_opts_t;

/* Completion counter. Zero-initialise (LJS__COUNTER_INIT) before first use. */
typedef struct ljs__counter_s {
    atomic_uint pending;
} ljs__counter_t;
#define LJS__COUNTER_INIT \
    {                     \
        0                 \
    }

/* Per-worker counters, cumulative since create. Read by the owner thread
 * between frames (relaxed loads; values may lag by a few jobs). */
typedef struct ljs__sched_worker_stats_s {
    uint64_t jobs;    /* jobs run by this worker */
    uint64_t steals;  /* jobs this worker stole from another deque */
    uint64_t parks;   /* times this worker went to sleep */
    uint64_t busy_ns; /* time spent inside job bodies */
} ljs__sched_worker_stats_t;

/* Create the scheduler and start workers 1..n-1.
 * Thread: the future owner (becomes worker 0). Blocks: until every worker ran
 * on_start. Returns 0, -ENOMEM, -EAGAIN (thread start failed) or on_start's
 * non-zero value. */
LJS_HIDDEN int ljs__sched_create(const ljs__sched_opts_t *opts, ljs__sched_t **out);

/* Stop and join every worker (each runs on_stop on its own thread), then run
 * on_stop for worker 0 on the calling thread. No job may be pending.
 * Thread: owner. Blocks: yes. */
LJS_HIDDEN void ljs__sched_destroy(ljs__sched_t *s);

LJS_HIDDEN uint32_t ljs__sched_workers(const ljs__sched_t *s);

/* Index of the calling thread's worker in the scheduler it belongs to, or -1
 * on a thread that is not a worker. Thread: any. */
LJS_HIDDEN int ljs__sched_self(void);

/* Submit a stealable job; `c` (may be NULL) is incremented now and
 * decremented when the job has finished. Thread: owner or worker (nested
 * submission from inside a job is allowed). Blocks: no. */
LJS_HIDDEN void ljs__sched_submit(ljs__sched_t *s, ljs__job_fn fn, void *arg, ljs__counter_t *c);

/* Submit a job that runs only on worker `worker` (never stolen). Worker 0's
 * affine jobs run while the owner thread waits. Thread: owner or worker.
 * Blocks: no. */
LJS_HIDDEN void ljs__sched_submit_affine(ljs__sched_t *s, uint32_t worker, ljs__job_fn fn, void *arg,
                                         ljs__counter_t *c);

/* Like ljs__sched_submit_affine, but the caller never blocks on the
 * target: a parked target is woken only if its park lock is free at once;
 * one in the middle of parking runs the job when it is next woken (by any
 * submission to it, or ljs__sched_wake). For background work queued from
 * a latency-critical path. Thread: owner or worker. Blocks: no. */
LJS_HIDDEN void ljs__sched_submit_affine_nowait(ljs__sched_t *s, uint32_t worker, ljs__job_fn fn, void *arg,
                                                ljs__counter_t *c);

/* Wake worker `worker` if it is parked (before waiting for jobs queued
 * with ljs__sched_submit_affine_nowait). Thread: any. Blocks: briefly. */
LJS_HIDDEN void ljs__sched_wake(ljs__sched_t *s, uint32_t worker);

/* Wait until `c` reaches zero, running jobs (own affine queue, own deque,
 * then stealing) meanwhile. Thread: owner or worker. Blocks: yes (helping). */
LJS_HIDDEN void ljs__sched_wait(ljs__sched_t *s, ljs__counter_t *c);

/* Run fn over [0, n) cut into ranges of at most `grain` indices, spread over
 * all workers by stealing, and return when every range is done. Nested calls
 * from inside a job are allowed. Thread: owner or worker. Blocks: yes (helping). */
LJS_HIDDEN void ljs__sched_parallel_for(ljs__sched_t *s, uint32_t n, uint32_t grain, ljs__range_fn fn,
                                        void *arg);

/* Run fn once on every worker (affine), and wait. Thread: owner. */
LJS_HIDDEN void ljs__sched_run_on_all(ljs__sched_t *s, ljs__job_fn fn, void *arg);

/* Copy worker `w`'s counters. Thread: any (relaxed snapshot). */
LJS_HIDDEN void ljs__sched_worker_stats(const ljs__sched_t *s, uint32_t w, ljs__sched_worker_stats_t *out);

#endif
