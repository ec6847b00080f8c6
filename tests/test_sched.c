/* test_sched.c - the work-stealing scheduler: coverage of parallel-for,
 * nesting, affinity, worker lifecycle hooks, create failure, parking, stats. */
#include "support.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/sched.h"

static const uint32_t worker_counts[] = {1, 2, 4, 8, 64};
#define NCOUNTS (sizeof worker_counts / sizeof worker_counts[0])

static ljs__sched_t *make(uint32_t workers, uint32_t spin)
{
    ljs__sched_opts_t opts = {.workers = workers, .spin = spin};
    ljs__sched_t *s = NULL;
    assert_int_equal(ljs__sched_create(&opts, &s), 0);
    assert_non_null(s);
    assert_int_equal(ljs__sched_workers(s), workers);
    return s;
}

static void spin_ns(uint64_t ns)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)(b.tv_nsec - a.tv_nsec) < ns);
}

/* ---- parallel for ------------------------------------------------------- */

typedef struct cover_s {
    atomic_uint *hits;
    atomic_ullong sum;
    atomic_int bad_range;
    uint32_t grain;
    uint32_t nworkers;
} cover_t;

static void cover_range(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    cover_t *c = arg;
    /* Leaves are whole grains from 0 (the last one may be short). */
    if (end <= begin || end - begin > c->grain || begin % c->grain || worker >= c->nworkers ||
        ljs__sched_self() != (int)worker)
        atomic_store(&c->bad_range, 1);
    uint64_t sum = 0;
    for (uint32_t i = begin; i < end; i++) {
        atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
        sum += i;
    }
    atomic_fetch_add_explicit(&c->sum, sum, memory_order_relaxed);
}

static void check_cover(ljs__sched_t *s, uint32_t n, uint32_t grain)
{
    cover_t c = {.grain = grain ? grain : 1, .nworkers = ljs__sched_workers(s)};
    c.hits = calloc(n ? n : 1, sizeof *c.hits);
    assert_non_null(c.hits);
    ljs__sched_parallel_for(s, n, grain, cover_range, &c);
    uint32_t bad = 0;
    for (uint32_t i = 0; i < n; i++)
        bad += atomic_load(&c.hits[i]) != 1;
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&c.sum), (uint64_t)n * (n ? n - 1 : 0) / 2);
    assert_int_equal(atomic_load(&c.bad_range), 0);
    free(c.hits);
}

static void test_sched_parallel_for_covers_every_index_once(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{0, 4},    {1, 1},       {5, 0},        {100, 1},
                                        {1000, 7}, {100000, 64}, {100003, 1000}};
    for (size_t k = 0; k < NCOUNTS; k++) {
        ljs__sched_t *s = make(worker_counts[k], 100);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            check_cover(s, sizes[i][0], sizes[i][1]);
        for (int rep = 0; rep < 20 / LJS_TEST_SCALE + 2; rep++)
            check_cover(s, 20000, 3);
        ljs__sched_destroy(s);
    }
}

typedef struct nested_s {
    ljs__sched_t *s;
    atomic_uint hits[64 * 300];
} nested_t;

static void inner_range(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    atomic_uint *row = arg;
    for (uint32_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&row[i], 1, memory_order_relaxed);
}

static void outer_range(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    nested_t *t = arg;
    for (uint32_t i = begin; i < end; i++)
        ljs__sched_parallel_for(t->s, 300, 7, inner_range, &t->hits[i * 300]);
}

static void test_sched_nested_parallel_for_covers_every_index_once(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCOUNTS; k++) {
        nested_t *t = calloc(1, sizeof *t);
        assert_non_null(t);
        t->s = make(worker_counts[k], 100);
        ljs__sched_parallel_for(t->s, 64, 1, outer_range, t);
        for (size_t i = 0; i < 64 * 300; i++)
            assert_int_equal(atomic_load(&t->hits[i]), 1);
        ljs__sched_destroy(t->s);
        free(t);
    }
}

/* ---- submit / wait ------------------------------------------------------ */

typedef struct count_s {
    ljs__sched_t *s;
    ljs__counter_t *c;
    atomic_uint runs;
} count_t;

static void count_job(void *arg, uint32_t worker)
{
    count_t *k = arg;
    atomic_fetch_add_explicit(&k->runs, 1, memory_order_relaxed);
}

/* A job that submits children to the same counter from inside a job. */
static void spawn_job(void *arg, uint32_t worker)
{
    count_t *k = arg;
    for (int i = 0; i < 10; i++)
        ljs__sched_submit(k->s, count_job, k, k->c);
    atomic_fetch_add_explicit(&k->runs, 1, memory_order_relaxed);
}

static uint64_t total_jobs(ljs__sched_t *s)
{
    uint64_t jobs = 0;
    for (uint32_t w = 0; w < ljs__sched_workers(s); w++) {
        ljs__sched_worker_stats_t st;
        ljs__sched_worker_stats(s, w, &st);
        jobs += st.jobs;
    }
    return jobs;
}

static void test_sched_wait_runs_every_submitted_job_including_nested_ones(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCOUNTS; k++) {
        ljs__sched_t *s = make(worker_counts[k], 100);
        ljs__counter_t c = LJS__COUNTER_INIT;
        count_t cnt = {.s = s, .c = &c};
        /* More than a deque holds: the overflow runs inline. */
        for (int i = 0; i < 3000; i++)
            ljs__sched_submit(s, count_job, &cnt, &c);
        for (int i = 0; i < 100; i++)
            ljs__sched_submit(s, spawn_job, &cnt, &c);
        ljs__sched_wait(s, &c);
        assert_int_equal(atomic_load(&c.pending), 0);
        assert_int_equal(atomic_load(&cnt.runs), 3000 + 100 * 11);
        assert_int_equal(total_jobs(s), 3000 + 100 * 11);
        ljs__sched_destroy(s);
    }
}

/* ---- affinity ----------------------------------------------------------- */

typedef struct affine_s {
    ljs__sched_t *s;
    ljs__counter_t *c;
    uint32_t want;
    atomic_int wrong;
    atomic_uint runs;
    atomic_uint per_worker[64];
} affine_t;

static void affine_job(void *arg, uint32_t worker)
{
    affine_t *a = arg;
    if (worker != a->want || ljs__sched_self() != (int)worker)
        atomic_store(&a->wrong, 1);
    atomic_fetch_add(&a->runs, 1);
}

/* Runs on some worker and sends an affine job to worker 0, which must run it
 * while the host waits (no deadlock). */
static void forward_to_host_job(void *arg, uint32_t worker)
{
    affine_t *a = arg;
    ljs__sched_submit_affine(a->s, 0, affine_job, a, a->c);
}

static void test_sched_affine_jobs_run_on_their_worker(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCOUNTS; k++) {
        uint32_t n = worker_counts[k];
        ljs__sched_t *s = make(n, 100);
        for (uint32_t w = 0; w < n; w++) {
            ljs__counter_t c = LJS__COUNTER_INIT;
            affine_t a = {.s = s, .c = &c, .want = w};
            for (int i = 0; i < 50; i++)
                ljs__sched_submit_affine(s, w, affine_job, &a, &c);
            ljs__sched_wait(s, &c);
            assert_int_equal(atomic_load(&a.wrong), 0);
            assert_int_equal(atomic_load(&a.runs), 50);
        }
        ljs__counter_t c = LJS__COUNTER_INIT;
        affine_t a = {.s = s, .c = &c, .want = 0};
        for (int i = 0; i < 20; i++)
            ljs__sched_submit(s, forward_to_host_job, &a, &c);
        ljs__sched_wait(s, &c);
        assert_int_equal(atomic_load(&a.wrong), 0);
        assert_int_equal(atomic_load(&a.runs), 20);
        ljs__sched_destroy(s);
    }
}

static void on_all_job(void *arg, uint32_t worker)
{
    affine_t *a = arg;
    if (ljs__sched_self() != (int)worker)
        atomic_store(&a->wrong, 1);
    atomic_fetch_add(&a->per_worker[worker], 1);
}

static void test_sched_run_on_all_runs_once_on_every_worker(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCOUNTS; k++) {
        uint32_t n = worker_counts[k];
        ljs__sched_t *s = make(n, 0);
        affine_t a = {.s = s};
        for (int rep = 0; rep < 3; rep++)
            ljs__sched_run_on_all(s, on_all_job, &a);
        assert_int_equal(atomic_load(&a.wrong), 0);
        for (uint32_t w = 0; w < n; w++)
            assert_int_equal(atomic_load(&a.per_worker[w]), 3);
        ljs__sched_destroy(s);
    }
}

/* ---- lifecycle hooks ---------------------------------------------------- */

#define HOOK_MAX 64

typedef struct hooks_s {
    int fail_worker; /* on_start fails for this worker, -1: never */
    atomic_int starts[HOOK_MAX], stops[HOOK_MAX];
    pthread_t start_thread[HOOK_MAX];
    atomic_int wrong;
    pthread_t main_thread;
} hooks_t;

static int hook_start(void *ud, uint32_t w)
{
    hooks_t *h = ud;
    if (ljs__sched_self() != (int)w)
        atomic_store(&h->wrong, 1);
    if (w == 0 && !pthread_equal(pthread_self(), h->main_thread))
        atomic_store(&h->wrong, 2);
    h->start_thread[w] = pthread_self();
    atomic_fetch_add(&h->starts[w], 1);
    if (w >= 1 && (int)w != h->fail_worker)
        spin_ns(200000); /* give a failing sibling time to report first */
    return (int)w == h->fail_worker ? -42 : 0;
}

static void hook_stop(void *ud, uint32_t w)
{
    hooks_t *h = ud;
    if (ljs__sched_self() != (int)w || !pthread_equal(pthread_self(), h->start_thread[w]))
        atomic_store(&h->wrong, 3);
    atomic_fetch_add(&h->stops[w], 1);
}

static void thread_check_job(void *arg, uint32_t worker)
{
    hooks_t *h = arg;
    if (!pthread_equal(pthread_self(), h->start_thread[worker]))
        atomic_store(&h->wrong, 4);
}

static void test_sched_on_start_and_on_stop_run_once_per_worker_on_its_thread(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCOUNTS; k++) {
        uint32_t n = worker_counts[k];
        hooks_t *h = calloc(1, sizeof *h);
        h->fail_worker = -1;
        h->main_thread = pthread_self();
        ljs__sched_opts_t opts = {
            .workers = n, .spin = 10, .on_start = hook_start, .on_stop = hook_stop, .ud = h};
        ljs__sched_t *s = NULL;
        assert_int_equal(ljs__sched_self(), -1);
        assert_int_equal(ljs__sched_create(&opts, &s), 0);
        assert_int_equal(ljs__sched_self(), 0);
        for (uint32_t w = 0; w < n; w++) /* create blocks until all started */
            assert_int_equal(atomic_load(&h->starts[w]), 1);
        ljs__sched_run_on_all(s, thread_check_job, h);
        ljs__sched_destroy(s);
        assert_int_equal(ljs__sched_self(), -1);
        for (uint32_t w = 0; w < n; w++) {
            assert_int_equal(atomic_load(&h->starts[w]), 1);
            assert_int_equal(atomic_load(&h->stops[w]), 1);
        }
        assert_int_equal(atomic_load(&h->wrong), 0);
        free(h);
    }
}

static void test_sched_create_fails_and_unwinds_when_a_worker_fails_to_start(void **state)
{
    (void)state;
    static const int fail_at[] = {0, 1, 3, 7};
    for (size_t f = 0; f < sizeof fail_at / sizeof fail_at[0]; f++) {
        hooks_t *h = calloc(1, sizeof *h);
        h->fail_worker = fail_at[f];
        h->main_thread = pthread_self();
        ljs__sched_opts_t opts = {
            .workers = 8, .spin = 10, .on_start = hook_start, .on_stop = hook_stop, .ud = h};
        ljs__sched_t *s = (ljs__sched_t *)&opts; /* must be reset to NULL */
        assert_int_equal(ljs__sched_create(&opts, &s), -42);
        assert_null(s);
        assert_int_equal(ljs__sched_self(), -1);
        /* Every worker that started was stopped, on its own thread; the
         * failing one was not; none started twice. */
        for (uint32_t w = 0; w < 8; w++) {
            int started = atomic_load(&h->starts[w]);
            assert_true(started <= 1);
            assert_int_equal(atomic_load(&h->stops[w]), started && (int)w != h->fail_worker);
        }
        if (fail_at[f] == 0) /* nothing else was started */
            for (uint32_t w = 1; w < 8; w++)
                assert_int_equal(atomic_load(&h->starts[w]), 0);
        assert_int_equal(atomic_load(&h->wrong), 0);
        free(h);
    }
}

static void test_sched_create_rejects_bad_worker_counts(void **state)
{
    (void)state;
    ljs__sched_t *s = NULL;
    ljs__sched_opts_t opts = {.workers = 0};
    assert_int_equal(ljs__sched_create(&opts, &s), -EINVAL);
    opts.workers = LJS_SCHED_MAX_WORKERS + 1;
    assert_int_equal(ljs__sched_create(&opts, &s), -EINVAL);
    assert_null(s);
}

static void test_sched_max_workers_start_run_and_stop(void **state)
{
    (void)state;
    ljs__sched_t *s = make(LJS_SCHED_MAX_WORKERS, 10);
    check_cover(s, 50000, 16);
    ljs__sched_destroy(s);
}

/* ---- parking and stats --------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Each job records the thread it ran on; affine jobs pin one per worker. */
typedef struct thread_log_s {
    pthread_t threads[4];
    int self[4];
} thread_log_t;

static void log_thread(void *arg, uint32_t worker)
{
    thread_log_t *l = arg;
    l->threads[worker] = pthread_self();
    l->self[worker] = ljs__sched_self();
}

/* Every worker of s runs on its own thread, and worker 0 is the caller. */
static void check_own_threads(ljs__sched_t *s)
{
    thread_log_t l;
    memset(&l, 0, sizeof l);
    ljs__sched_run_on_all(s, log_thread, &l);
    assert_true(pthread_equal(l.threads[0], pthread_self()));
    assert_false(pthread_equal(l.threads[1], pthread_self()));
    assert_int_equal(l.self[0], 0);
    assert_int_equal(l.self[1], 1);
    ljs__counter_t c = LJS__COUNTER_INIT;
    memset(&l, 0, sizeof l);
    ljs__sched_submit_affine(s, 1, log_thread, &l, &c);
    ljs__sched_wait(s, &c);
    assert_false(pthread_equal(l.threads[1], pthread_self()));
}

/* One thread may own several schedulers (several runtimes), created and
 * destroyed in any order: each keeps its own worker threads. */
static void test_sched_one_thread_owns_several_schedulers_in_any_order(void **state)
{
    ljs__sched_t *a = make(2, 100), *b = make(2, 100), *c;
    check_own_threads(a);
    check_own_threads(b);
    ljs__sched_destroy(a);
    check_own_threads(b);
    c = make(2, 100);
    ljs__sched_destroy(b);
    check_own_threads(c);
    ljs__sched_destroy(c);
    assert_int_equal(ljs__sched_self(), -1);
}

static void test_sched_idle_workers_park_and_use_no_cpu(void **state)
{
    (void)state;
    ljs__sched_t *s = make(4, 1000);
    check_cover(s, 100000, 10);
    sleep_ms(100); /* let the spinning end */
    uint64_t before = cpu_ns();
    sleep_ms(1000);
    uint64_t used = cpu_ns() - before;
    print_message("idle scheduler used %.3f ms of CPU in 1 s\n", used / 1e6);
    assert_true(used < 50 * 1000000ull);
    uint64_t parks = 0;
    for (uint32_t w = 1; w < 4; w++) {
        ljs__sched_worker_stats_t st;
        ljs__sched_worker_stats(s, w, &st);
        parks += st.parks;
    }
    assert_true(parks >= 3);
    /* Parked workers wake up for new work, stealable or affine. */
    check_cover(s, 100000, 10);
    sleep_ms(50);
    affine_t a = {.s = s};
    ljs__sched_run_on_all(s, on_all_job, &a);
    for (uint32_t w = 0; w < 4; w++)
        assert_int_equal(atomic_load(&a.per_worker[w]), 1);
    ljs__sched_destroy(s);
}

/* Jobs queued without blocking on their target (ljs__sched_submit_affine_
 * nowait) run on that worker, once each, whether it was parked, parking
 * or awake when they came, once it is woken (ljs__sched_wake here): many
 * rounds against workers that park at once, to hit every parking state. */
static void test_sched_nowait_affine_jobs_run_on_their_worker_once_woken(void **state)
{
    (void)state;
    for (size_t k = 0; k < 4; k++) {
        uint32_t n = worker_counts[k];
        ljs__sched_t *s = make(n, 0);
        affine_t a = {.s = s};
        const int rounds = 300;
        for (int r = 0; r < rounds; r++) {
            ljs__counter_t c = LJS__COUNTER_INIT;
            for (uint32_t w = 0; w < n; w++)
                ljs__sched_submit_affine_nowait(s, w, on_all_job, &a, &c);
            for (uint32_t w = 1; w < n; w++)
                ljs__sched_wake(s, w);
            ljs__sched_wait(s, &c);
        }
        assert_int_equal(atomic_load(&a.wrong), 0);
        for (uint32_t w = 0; w < n; w++)
            assert_int_equal(atomic_load(&a.per_worker[w]), rounds);
        ljs__sched_destroy(s);
    }
}

static void busy_job(void *arg, uint32_t worker)
{
    spin_ns(20000);
    count_job(arg, worker);
}

static void test_sched_stats_count_every_job_and_plausible_busy_time(void **state)
{
    (void)state;
    ljs__sched_t *s = make(4, 100);
    ljs__counter_t c = LJS__COUNTER_INIT;
    count_t cnt = {.s = s, .c = &c};
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 400; i++)
        ljs__sched_submit(s, busy_job, &cnt, &c);
    ljs__sched_wait(s, &c);
    uint64_t wall = clock_ns(CLOCK_MONOTONIC) - t0;
    uint64_t jobs = 0, steals = 0, busy = 0;
    for (uint32_t w = 0; w < 4; w++) {
        ljs__sched_worker_stats_t st;
        ljs__sched_worker_stats(s, w, &st);
        jobs += st.jobs;
        steals += st.steals;
        busy += st.busy_ns;
        assert_true(st.steals <= st.jobs);
    }
    assert_int_equal(jobs, 400);
    assert_true(steals <= 400);
    /* 400 x 20 us of spinning: at least that much busy time was recorded.
     * Busy time is wall time inside jobs (a preempted job still counts, so
     * on a loaded machine it can exceed the CPU time used), but no worker
     * can be busy for longer than the whole run: at most 4 x its length. */
    assert_true(busy >= 400 * 20000ull);
    assert_true(busy <= wall * 4 + 1000000ull);
    ljs__sched_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sched_parallel_for_covers_every_index_once),
        cmocka_unit_test(test_sched_nested_parallel_for_covers_every_index_once),
        cmocka_unit_test(test_sched_wait_runs_every_submitted_job_including_nested_ones),
        cmocka_unit_test(test_sched_affine_jobs_run_on_their_worker),
        cmocka_unit_test(test_sched_nowait_affine_jobs_run_on_their_worker_once_woken),
        cmocka_unit_test(test_sched_run_on_all_runs_once_on_every_worker),
        cmocka_unit_test(test_sched_on_start_and_on_stop_run_once_per_worker_on_its_thread),
        cmocka_unit_test(test_sched_create_fails_and_unwinds_when_a_worker_fails_to_start),
        cmocka_unit_test(test_sched_create_rejects_bad_worker_counts),
        cmocka_unit_test(test_sched_max_workers_start_run_and_stop),
        cmocka_unit_test(test_sched_one_thread_owns_several_schedulers_in_any_order),
        cmocka_unit_test(test_sched_idle_workers_park_and_use_no_cpu),
        cmocka_unit_test(test_sched_stats_count_every_job_and_plausible_busy_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
