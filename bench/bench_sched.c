/* bench_sched.c - the job scheduler against a mutex+condvar shared queue.
 *
 * Side by side in one process, each measurement repeated ctx->reps times
 * (medians reported):
 *  (a) empty jobs: scheduling overhead per job (submit + run + complete), for
 *      1 and 2 workers; ljs submit-then-wait, ljs parallel_for with grain 1,
 *      and the mutex queue with the same batches;
 *  (b) ~1 us jobs (a calibrated spin loop): throughput for 1 and 2 workers;
 *  (c) an imbalanced parallel-for (256 ranges, 12 consecutive ones 30x
 *      heavier): work stealing vs a static split into equal contiguous
 *      chunks, one per worker, over the same workers.
 * "N workers" always means N threads running jobs, the submitting (host)
 * thread included, for ljs and the baseline alike.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/sched.h"

#define BATCH 512       /* jobs submitted before each wait */
#define SPIN_POLLS 2000 /* the runtime's default LJS_SPIN */

/* ==== a calibrated ~1 us job =============================================== */

static uint64_t iters_per_us;

static uint64_t spin_iters(uint64_t n)
{
    uint64_t x = n;
    for (uint64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ __volatile__("" : "+r"(x)); /* keep the loop: no closed form */
    }
    return x;
}

static void calibrate(void)
{
    double per_iter[5];
    uint64_t n = 1u << 20;
    for (int r = 0; r < 5; r++) {
        uint64_t t0 = bench_now_ns();
        bench_sink(spin_iters(n));
        per_iter[r] = (double)(bench_now_ns() - t0) / (double)n;
    }
    double ns = bench_median(per_iter, 5);
    iters_per_us = ns > 0 ? (uint64_t)(1000.0 / ns) : 1000;
    if (iters_per_us == 0)
        iters_per_us = 1;
}

static void empty_job(void *arg, uint32_t worker)
{
    (void)arg;
    (void)worker;
}

static void us_job(void *arg, uint32_t worker)
{
    (void)arg;
    (void)worker;
    uint64_t x = spin_iters(iters_per_us);
    __asm__ __volatile__("" : : "r"(x));
}

static void empty_range(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    (void)arg;
    (void)begin;
    (void)end;
    (void)worker;
}

/* ==== baseline: one shared queue behind a mutex ============================ */

typedef struct mjob_s {
    ljs__job_fn fn;
    void *arg;
} mjob_t;

typedef struct mpool_s {
    pthread_mutex_t mtx;
    pthread_cond_t work_cv; /* queue non-empty or stop */
    pthread_cond_t done_cv; /* pending reached zero */
    mjob_t *ring;
    size_t cap, head, tail; /* head == tail: empty */
    size_t pending;         /* submitted, not finished */
    int idle;               /* threads waiting on work_cv */
    int stop;
    pthread_t *threads;
    unsigned nthreads;
} mpool_t;

/* Run one queued job; called with mtx held, returns with it held. */
static void mpool_run_one_locked(mpool_t *p)
{
    mjob_t j = p->ring[p->head++ % p->cap];
    pthread_mutex_unlock(&p->mtx);
    j.fn(j.arg, 0);
    pthread_mutex_lock(&p->mtx);
    if (--p->pending == 0)
        pthread_cond_broadcast(&p->done_cv);
}

static void *mpool_main(void *arg)
{
    mpool_t *p = arg;
    pthread_mutex_lock(&p->mtx);
    while (!p->stop) {
        if (p->head != p->tail) {
            mpool_run_one_locked(p);
            continue;
        }
        p->idle++;
        pthread_cond_wait(&p->work_cv, &p->mtx);
        p->idle--;
    }
    pthread_mutex_unlock(&p->mtx);
    return NULL;
}

/* `workers` counts the host thread, which helps in mpool_wait. */
static int mpool_init(mpool_t *p, unsigned workers, size_t cap)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mtx, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->cap = cap;
    p->ring = malloc(cap * sizeof *p->ring);
    p->threads = malloc((workers ? workers : 1) * sizeof *p->threads);
    if (!p->ring || !p->threads)
        return -1;
    for (unsigned i = 1; i < workers; i++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, mpool_main, p) != 0)
            return -1;
        p->nthreads++;
    }
    return 0;
}

static void mpool_fini(mpool_t *p)
{
    pthread_mutex_lock(&p->mtx);
    p->stop = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mtx);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p->ring);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mtx);
}

static void mpool_submit(mpool_t *p, ljs__job_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mtx);
    p->ring[p->tail++ % p->cap] = (mjob_t){fn, arg};
    p->pending++;
    if (p->idle)
        pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mtx);
}

/* Help until every submitted job finished. */
static void mpool_wait(mpool_t *p)
{
    pthread_mutex_lock(&p->mtx);
    while (p->pending) {
        if (p->head != p->tail)
            mpool_run_one_locked(p);
        else
            pthread_cond_wait(&p->done_cv, &p->mtx);
    }
    pthread_mutex_unlock(&p->mtx);
}

/* ==== timed runs =========================================================== */

/* ns per job for `jobs` jobs in batches of BATCH, ljs submit + wait. */
static double run_ljs_jobs(ljs__sched_t *s, ljs__job_fn fn, size_t jobs)
{
    uint64_t t0 = bench_now_ns();
    for (size_t done = 0; done < jobs; done += BATCH) {
        ljs__counter_t c = LJS__COUNTER_INIT;
        for (size_t i = 0; i < BATCH; i++)
            ljs__sched_submit(s, fn, NULL, &c);
        ljs__sched_wait(s, &c);
    }
    return (double)(bench_now_ns() - t0) / (double)jobs;
}

/* ns per index for parallel_for(BATCH, grain 1), repeated. */
static double run_ljs_pfor(ljs__sched_t *s, size_t jobs)
{
    uint64_t t0 = bench_now_ns();
    for (size_t done = 0; done < jobs; done += BATCH)
        ljs__sched_parallel_for(s, BATCH, 1, empty_range, NULL);
    return (double)(bench_now_ns() - t0) / (double)jobs;
}

static double run_mutex_jobs(mpool_t *p, ljs__job_fn fn, size_t jobs)
{
    uint64_t t0 = bench_now_ns();
    for (size_t done = 0; done < jobs; done += BATCH) {
        for (size_t i = 0; i < BATCH; i++)
            mpool_submit(p, fn, NULL);
        mpool_wait(p);
    }
    return (double)(bench_now_ns() - t0) / (double)jobs;
}

typedef struct sched_figs_s {
    double empty_ns, pfor_ns, us_ns, mutex_empty_ns, mutex_us_ns;
} sched_figs_t;

static ljs__sched_t *make_sched(unsigned workers)
{
    ljs__sched_opts_t opts = {.workers = workers, .spin = SPIN_POLLS};
    ljs__sched_t *s = NULL;
    return ljs__sched_create(&opts, &s) == 0 ? s : NULL;
}

/* All of (a) and (b) for one worker count; reps interleave ljs and mutex. */
static int measure_workers(const bench_ctx_t *ctx, unsigned workers, sched_figs_t *out)
{
    size_t empty_jobs = ctx->quick ? 20 * BATCH : 2000 * BATCH;
    size_t us_jobs = ctx->quick ? 4 * BATCH : 100 * BATCH;
    int reps = ctx->reps;
    double *v = calloc(5 * (size_t)reps, sizeof *v);
    ljs__sched_t *s = make_sched(workers);
    mpool_t p;
    memset(&p, 0, sizeof p);
    int rc = (!v || !s || mpool_init(&p, workers, BATCH) != 0) ? -1 : 0;
    if (rc == 0) {
        run_ljs_jobs(s, empty_job, empty_jobs / 4); /* warm up pools, threads */
        run_mutex_jobs(&p, empty_job, empty_jobs / 4);
        for (int r = 0; r < reps; r++) {
            v[0 * reps + r] = run_ljs_jobs(s, empty_job, empty_jobs);
            v[1 * reps + r] = run_ljs_pfor(s, empty_jobs);
            v[2 * reps + r] = run_mutex_jobs(&p, empty_job, empty_jobs);
            v[3 * reps + r] = run_ljs_jobs(s, us_job, us_jobs);
            v[4 * reps + r] = run_mutex_jobs(&p, us_job, us_jobs);
        }
        out->empty_ns = bench_median(v + (size_t)0 * (size_t)reps, (size_t)reps);
        out->pfor_ns = bench_median(v + (size_t)1 * (size_t)reps, (size_t)reps);
        out->mutex_empty_ns = bench_median(v + (size_t)2 * (size_t)reps, (size_t)reps);
        out->us_ns = bench_median(v + (size_t)3 * (size_t)reps, (size_t)reps);
        out->mutex_us_ns = bench_median(v + (size_t)4 * (size_t)reps, (size_t)reps);
    }
    if (s)
        ljs__sched_destroy(s);
    if (p.ring || p.threads)
        mpool_fini(&p);
    free(v);
    return rc;
}

/* ==== (c) imbalanced parallel-for ========================================== */

#define IMB_RANGES 256
#define IMB_HEAVY_FIRST 100
#define IMB_HEAVY_COUNT 12
#define IMB_HEAVY_FACTOR 30

typedef struct imb_s {
    uint64_t light_iters;
    unsigned workers;
} imb_t;

static void imb_range(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    const imb_t *m = arg;
    (void)worker;
    for (uint32_t i = begin; i < end; i++) {
        int heavy = i >= IMB_HEAVY_FIRST && i < IMB_HEAVY_FIRST + IMB_HEAVY_COUNT;
        uint64_t x = spin_iters(m->light_iters * (heavy ? IMB_HEAVY_FACTOR : 1));
        __asm__ __volatile__("" : : "r"(x));
    }
}

/* Static split: worker w runs the w-th contiguous chunk of equal count. */
static void imb_static_job(void *arg, uint32_t worker)
{
    const imb_t *m = arg;
    uint32_t begin = (uint32_t)((uint64_t)IMB_RANGES * worker / m->workers);
    uint32_t end = (uint32_t)((uint64_t)IMB_RANGES * (worker + 1) / m->workers);
    imb_range(arg, begin, end, worker);
}

static double run_steal(ljs__sched_t *s, imb_t *m, int inner)
{
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < inner; i++)
        ljs__sched_parallel_for(s, IMB_RANGES, 1, imb_range, m);
    return (double)(bench_now_ns() - t0) / inner / 1e6;
}

static double run_static(ljs__sched_t *s, imb_t *m, int inner)
{
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < inner; i++)
        ljs__sched_run_on_all(s, imb_static_job, m);
    return (double)(bench_now_ns() - t0) / inner / 1e6;
}

static int measure_imbalance(const bench_ctx_t *ctx, unsigned workers, double *steal_ms, double *static_ms)
{
    imb_t m = {.light_iters = iters_per_us * (ctx->quick ? 2 : 5), .workers = workers};
    int inner = ctx->quick ? 2 : 10, reps = ctx->reps;
    double *v = calloc(2 * (size_t)reps, sizeof *v);
    ljs__sched_t *s = make_sched(workers);
    if (!v || !s) {
        free(v);
        if (s)
            ljs__sched_destroy(s);
        return -1;
    }
    run_steal(s, &m, 1);
    for (int r = 0; r < reps; r++) {
        v[r] = run_steal(s, &m, inner);
        v[reps + r] = run_static(s, &m, inner);
    }
    *steal_ms = bench_median(v, (size_t)reps);
    *static_ms = bench_median(v + reps, (size_t)reps);
    ljs__sched_destroy(s);
    free(v);
    return 0;
}

/* ==== the case ============================================================= */

static void *noop_thread(void *arg)
{
    return arg;
}

/* glibc drops the lock prefix from mutex operations until a process starts
 * its first thread, which makes a 1-worker mutex pool look 3x cheaper than
 * it is in any engine (which always has threads). Start one, so both sides
 * run under the conditions of a real embedding. */
static void become_multithreaded(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, noop_thread, NULL) == 0)
        pthread_join(t, NULL);
}

int bench_sched(const bench_ctx_t *ctx)
{
    bench_result_t r = {.name = "sched"};
    sched_figs_t f1, f2;
    double steal_ms, static_ms;
    unsigned wimb = ctx->workers < 2 ? 2 : ctx->workers;
    become_multithreaded();
    calibrate();
    if (measure_workers(ctx, 1, &f1) || measure_workers(ctx, 2, &f2) ||
        measure_imbalance(ctx, wimb, &steal_ms, &static_ms))
        return 1;
    bench_figure(&r, "empty_ns_per_job_1w", f1.empty_ns);
    bench_figure(&r, "empty_ns_per_job_2w", f2.empty_ns);
    bench_figure(&r, "empty_ns_per_index_pfor_1w", f1.pfor_ns);
    bench_figure(&r, "empty_ns_per_index_pfor_2w", f2.pfor_ns);
    bench_figure(&r, "empty_ns_per_job_mutex_1w", f1.mutex_empty_ns);
    bench_figure(&r, "empty_ns_per_job_mutex_2w", f2.mutex_empty_ns);
    bench_figure(&r, "us_jobs_per_s_1w", 1e9 / f1.us_ns);
    bench_figure(&r, "us_jobs_per_s_2w", 1e9 / f2.us_ns);
    bench_figure(&r, "us_jobs_per_s_mutex_1w", 1e9 / f1.mutex_us_ns);
    bench_figure(&r, "us_jobs_per_s_mutex_2w", 1e9 / f2.mutex_us_ns);
    bench_figure(&r, "us_job_iters", (double)iters_per_us);
    bench_figure(&r, "imbalanced_workers", wimb);
    bench_figure(&r, "imbalanced_ms_steal", steal_ms);
    bench_figure(&r, "imbalanced_ms_static", static_ms);
    bench_ratio(&r, "empty_vs_mutex_1w", f1.mutex_empty_ns / f1.empty_ns);
    bench_ratio(&r, "empty_vs_mutex_2w", f2.mutex_empty_ns / f2.empty_ns);
    bench_ratio(&r, "us_vs_mutex_1w", f1.mutex_us_ns / f1.us_ns);
    bench_ratio(&r, "us_vs_mutex_2w", f2.mutex_us_ns / f2.us_ns);
    bench_ratio(&r, "us_2w_vs_1w", f1.us_ns / f2.us_ns);
    bench_ratio(&r, "steal_vs_static", static_ms / steal_ms);
    bench_report(ctx, &r);
    return 0;
}
