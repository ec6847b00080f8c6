/* bench_watch.c - hot reload: what watching costs while nothing changes, and
 * how soon a save runs.
 *
 * Side by side in one process, medians over ctx->reps repetitions, with N =
 * 100, 1,000 and 10,000 watched files (quick: 100): N scripts (each a
 * trivial update, no entities) written to one mkdtemp directory, of which
 * min(N, LOAD_MAX) are loaded into the runtimes (loaded_scripts_N says how
 * many). Why the cap: with watching on, every ljs_script_load rescans the
 * whole directory tree (runtime/scripts/watch.c: watch_tree -> add_tree_locked does
 * readdir + stat of every entry even when the directory is already
 * watched), so loading N scripts costs O(N^2) stats: 1,000 loads took 1.2 s
 * against 40 ms with watching off, and 10,000 took 158 s against 1.2 s.
 * What idle watching costs does not depend on how many of the files are
 * loaded: inotify watches directories, and the watcher thread sleeps in
 * poll() until an event comes; the poller, the old way, stats all N files
 * as if all were loaded (that is what it would do with N loaded scripts).
 *  (1) idle CPU: process CPU time (CLOCK_PROCESS_CPUTIME_ID: every thread,
 *      the watcher's included) over a fixed wall time (1 s; quick 0.2 s)
 *      while the host runs frames at 60 Hz (sleeping between frames) and no
 *      file changes:
 *        frames  - LJS_WATCH=0 runtime, frames only: the floor both share;
 *        poll    - the same runtime, plus the old way: the host stat()s every
 *                  one of the N files each frame and compares size/mtime;
 *        inotify - LJS_WATCH=1 runtime (the watcher thread blocks on inotify
 *                  over the one directory), frames only.
 *      Figures are ms of CPU per second of wall time, totals (frames
 *      included); *_net_* subtract the frames-only floor of the same rep,
 *      which is the cost of watching itself (noise can make it negative).
 *      Ratios: poll total / inotify total (> 1: inotify is cheaper).
 *      Also the load time of the loaded scripts with watching off and on
 *      (load_ms_watch_*_N), since the watcher does work per loaded script.
 *  (2) reload latency (N = 100 runtime, LJS_WATCH=1, reload_debounce_ms = 0):
 *      the host runs frames at 60 Hz; between two frames, at a random phase,
 *      an atomic save (write a temp file, rename it over) gives one loaded
 *      script a new version; latency is from rename() returning to the end of
 *      the first frame whose update wrote the new version into an entity's
 *      field (the moment the host can see it), so it includes the wait for
 *      the next frame tick (up to 16.7 ms), the reload and that frame.
 *      Repeated 20 times (quick 5): p50, p99 (the max at these counts) and
 *      the most frame ticks any change waited (1 = always the next frame).
 * Targets (issue 5): inotify < 1 ms CPU per second net; p99 <= 16.7 ms.
 */
#include "bench/bench.h"

#include <ljs.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS 64
#define MAX_TRIALS 64
#define FRAME_NS 16666667ull /* 60 Hz */
#define NSIZES 3
#define LOAD_MAX 1000u /* see the header: loads with watching on are O(N^2) */

typedef enum variant_e { V_FRAMES, V_POLL, V_INOTIFY, NVARIANTS } variant_t;

static const unsigned sizes[NSIZES] = {100, 1000, 10000};

/* Figure names must outlive the report: one static table per size. */
static const char *const idle_fig[NSIZES][NVARIANTS] = {
    {"idle_cpu_ms_per_s_frames_100", "idle_cpu_ms_per_s_poll_100", "idle_cpu_ms_per_s_inotify_100"},
    {"idle_cpu_ms_per_s_frames_1000", "idle_cpu_ms_per_s_poll_1000", "idle_cpu_ms_per_s_inotify_1000"},
    {"idle_cpu_ms_per_s_frames_10000", "idle_cpu_ms_per_s_poll_10000", "idle_cpu_ms_per_s_inotify_10000"}};
static const char *const net_fig[NSIZES][2] = {
    {"idle_cpu_ms_per_s_poll_net_100", "idle_cpu_ms_per_s_inotify_net_100"},
    {"idle_cpu_ms_per_s_poll_net_1000", "idle_cpu_ms_per_s_inotify_net_1000"},
    {"idle_cpu_ms_per_s_poll_net_10000", "idle_cpu_ms_per_s_inotify_net_10000"}};
static const char *const load_fig[NSIZES][2] = {{"load_ms_watch_off_100", "load_ms_watch_on_100"},
                                                {"load_ms_watch_off_1000", "load_ms_watch_on_1000"},
                                                {"load_ms_watch_off_10000", "load_ms_watch_on_10000"}};
static const char *const loaded_fig[NSIZES] = {"loaded_scripts_100", "loaded_scripts_1000",
                                               "loaded_scripts_10000"};
static const char *const ratio_name[NSIZES] = {"idle_poll_vs_inotify_100", "idle_poll_vs_inotify_1000",
                                               "idle_poll_vs_inotify_10000"};

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* ========================================================================
 * Files
 * ======================================================================== */

typedef struct file_s {
    char path[96];
    int64_t size, mtime_ns; /* the poller's last seen values */
} file_t;

typedef struct files_s {
    char dir[64];
    unsigned n;
    file_t *f;
} files_t;

static int write_text(const char *path, const char *src)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    size_t len = strlen(src), put = fwrite(src, 1, len, f);
    return fclose(f) != 0 || put != len ? -1 : 0;
}

static void script_src(char *buf, size_t n, long version)
{
    snprintf(buf, n, "return { fields = { ver = 0 }, update = function(self, dt) self.ver = %ld end }\n",
             version);
}

static int files_create(files_t *fs, unsigned n)
{
    char src[160];
    if (bench_tmpdir(fs->dir, sizeof fs->dir, "watch") != 0)
        return -1;
    fs->n = 0;
    fs->f = calloc(n, sizeof *fs->f);
    if (fs->f == NULL) {
        fprintf(stderr, "bench watch: out of memory\n");
        return -1;
    }
    script_src(src, sizeof src, 0);
    for (unsigned i = 0; i < n; i++) {
        snprintf(fs->f[i].path, sizeof fs->f[i].path, "%s/w%05u.lua", fs->dir, i);
        if (write_text(fs->f[i].path, src) != 0) {
            fprintf(stderr, "bench watch: cannot write %s: %s\n", fs->f[i].path, strerror(errno));
            return -1;
        }
        fs->n = i + 1;
    }
    return 0;
}

static void files_remove(files_t *fs)
{
    char tmp[112];
    for (unsigned i = 0; i < fs->n; i++)
        unlink(fs->f[i].path);
    if (fs->n > 0) {
        snprintf(tmp, sizeof tmp, "%s.tmp", fs->f[0].path);
        unlink(tmp);
    }
    if (fs->dir[0])
        rmdir(fs->dir);
    free(fs->f);
    memset(fs, 0, sizeof *fs);
}

/* The old way, once per frame: stat() every watched file and compare. */
static unsigned poll_files(files_t *fs)
{
    unsigned changed = 0;
    for (unsigned i = 0; i < fs->n; i++) {
        struct stat st;
        int64_t size = -1, mtime = -1;
        if (stat(fs->f[i].path, &st) == 0) {
            size = st.st_size;
            mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        }
        changed += size != fs->f[i].size || mtime != fs->f[i].mtime_ns;
        fs->f[i].size = size;
        fs->f[i].mtime_ns = mtime;
    }
    return changed;
}

/* ========================================================================
 * Runtimes
 * ======================================================================== */

static int runtime_new(const bench_ctx_t *ctx, uint32_t watch, ljs_runtime_t **out)
{
    ljs_config_t cfg;
    if (ljs_config_init(&cfg) != LJS_OK) {
        fprintf(stderr, "bench watch: %s\n", cfg.error);
        return -1;
    }
    cfg.workers = ctx->workers;
    cfg.watch = watch;
    cfg.reload_debounce_ms = 0; /* latency: reload at the first frame after the event */
    if (ljs_runtime_create(&cfg, out) != LJS_OK) {
        fprintf(stderr, "bench watch: ljs_runtime_create: %s\n", ljs_last_error());
        return -1;
    }
    if (watch != 0) {
        ljs_stats_t st;
        if (ljs_stats_get(*out, &st) != LJS_OK || st.watch_mode != watch) {
            fprintf(stderr, "bench watch: the runtime is not watching with inotify (mode %u)\n",
                    st.watch_mode);
            ljs_runtime_destroy(*out);
            return -1;
        }
    }
    return 0;
}

static unsigned nloaded(const files_t *fs)
{
    return fs->n < LOAD_MAX ? fs->n : LOAD_MAX;
}

static int load_all(ljs_runtime_t *rt, const files_t *fs, double *ms)
{
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < nloaded(fs); i++)
        if (ljs_script_load(rt, fs->f[i].path, NULL) != LJS_OK) {
            fprintf(stderr, "bench watch: loading %s: %s\n", fs->f[i].path, ljs_last_error());
            return -1;
        }
    *ms = (double)(bench_now_ns() - t0) * 1e-6;
    return 0;
}

/* Frames at 60 Hz for `wall_s`, polling `fs` each frame if not NULL.
 * Returns ms of process CPU per second of wall time, or -1. */
static double idle_run(ljs_runtime_t *rt, files_t *fs, double wall_s)
{
    uint64_t frames = (uint64_t)(wall_s * 60.0 + 0.5);
    unsigned changed = 0;
    if (fs != NULL)
        poll_files(fs); /* baseline values: the first poll is not a change */
    uint64_t w0 = bench_now_ns(), c0 = cpu_ns();
    for (uint64_t k = 0; k < frames; k++) {
        if (fs != NULL)
            changed += poll_files(fs);
        if (ljs_frame(rt, 1.0 / 60.0) != LJS_OK) {
            fprintf(stderr, "bench watch: ljs_frame: %s\n", ljs_last_error());
            return -1;
        }
        sleep_until_ns(w0 + (k + 1) * FRAME_NS);
    }
    uint64_t c1 = cpu_ns(), w1 = bench_now_ns();
    if (changed != 0) {
        fprintf(stderr, "bench watch: %u files changed while nothing should have\n", changed);
        return -1;
    }
    return (double)(c1 - c0) * 1e-6 / ((double)(w1 - w0) * 1e-9);
}

/* ========================================================================
 * (1) Idle cost
 * ======================================================================== */

static int run_idle(const bench_ctx_t *ctx, int si, files_t *fs, ljs_runtime_t **keep, bench_result_t *res)
{
    int reps = ctx->reps < MAX_REPS ? ctx->reps : MAX_REPS;
    double wall_s = ctx->quick ? 0.2 : 1.0;
    double cpu[NVARIANTS][MAX_REPS], net[2][MAX_REPS], load_ms[2] = {0};
    ljs_runtime_t *rt = NULL;
    /* Watching off: the frames-only floor and the poller, alternating so a
     * drift in machine load hits both. */
    if (runtime_new(ctx, 0, &rt) != 0 || load_all(rt, fs, &load_ms[0]) != 0) {
        ljs_runtime_destroy(rt);
        return -1;
    }
    for (int r = 0; r < reps; r++) {
        cpu[V_FRAMES][r] = idle_run(rt, NULL, wall_s);
        cpu[V_POLL][r] = idle_run(rt, fs, wall_s);
        if (cpu[V_FRAMES][r] < 0 || cpu[V_POLL][r] < 0) {
            ljs_runtime_destroy(rt);
            return -1;
        }
        net[0][r] = cpu[V_POLL][r] - cpu[V_FRAMES][r];
    }
    ljs_runtime_destroy(rt);
    rt = NULL;
    /* Watching on: one runtime at a time, so no other runtime's threads are
     * in the process CPU figure. */
    ljs_stats_t before, after;
    if (runtime_new(ctx, 1, &rt) != 0 || load_all(rt, fs, &load_ms[1]) != 0) {
        ljs_runtime_destroy(rt);
        return -1;
    }
    ljs_frame(rt, 0.0);
    ljs_stats_get(rt, &before);
    for (int r = 0; r < reps; r++) {
        cpu[V_INOTIFY][r] = idle_run(rt, NULL, wall_s);
        if (cpu[V_INOTIFY][r] < 0) {
            ljs_runtime_destroy(rt);
            return -1;
        }
        net[1][r] = cpu[V_INOTIFY][r] - cpu[V_FRAMES][r];
    }
    ljs_stats_get(rt, &after);
    if (after.watch_events != before.watch_events || after.reloads != before.reloads) {
        fprintf(stderr, "bench watch: the watcher reported %llu changes while nothing changed\n",
                (unsigned long long)(after.watch_events - before.watch_events));
        ljs_runtime_destroy(rt);
        return -1;
    }
    double m[NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++) {
        m[v] = bench_median(cpu[v], (size_t)reps);
        bench_figure(res, idle_fig[si][v], m[v]);
    }
    bench_figure(res, net_fig[si][0], bench_median(net[0], (size_t)reps));
    bench_figure(res, net_fig[si][1], bench_median(net[1], (size_t)reps));
    bench_figure(res, loaded_fig[si], (double)nloaded(fs));
    bench_figure(res, load_fig[si][0], load_ms[0]);
    bench_figure(res, load_fig[si][1], load_ms[1]);
    bench_ratio(res, ratio_name[si], m[V_INOTIFY] > 0 ? m[V_POLL] / m[V_INOTIFY] : 0.0);
    if (keep != NULL)
        *keep = rt; /* the latency part reuses the watching runtime */
    else
        ljs_runtime_destroy(rt);
    return 0;
}

/* ========================================================================
 * (2) Reload latency
 * ======================================================================== */

static double percentile(double *v, int n, double p)
{
    bench_median(v, (size_t)n); /* sorts */
    int k = (int)ceil(p * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static int run_latency(const bench_ctx_t *ctx, ljs_runtime_t *rt, const files_t *fs, bench_result_t *res)
{
    int trials = ctx->quick ? 5 : 20;
    double lat[MAX_TRIALS];
    uint64_t max_ticks = 0, rng = 0x5eedull;
    ljs_script_t s;
    ljs_entity_t e;
    char src[160], tmp[112], name[16];
    snprintf(name, sizeof name, "w%05u", 0u);
    if (ljs_script_find(rt, name, &s) != LJS_OK || ljs_entity_create(rt, &e) != LJS_OK ||
        ljs_script_attach(rt, e, s) != LJS_OK) {
        fprintf(stderr, "bench watch: latency setup: %s\n", ljs_last_error());
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", fs->f[0].path); /* not .lua: the watcher ignores it */
    uint64_t tick = bench_now_ns();
    for (int t = 0; t < trials; t++) {
        /* A frame, then the save at a random phase before the next tick. */
        if (ljs_frame(rt, 1.0 / 60.0) != LJS_OK)
            return -1;
        tick += FRAME_NS;
        sleep_until_ns(tick - FRAME_NS + bench_rng(&rng) % FRAME_NS);
        script_src(src, sizeof src, t + 1);
        if (write_text(tmp, src) != 0 || rename(tmp, fs->f[0].path) != 0) {
            fprintf(stderr, "bench watch: cannot save %s: %s\n", fs->f[0].path, strerror(errno));
            return -1;
        }
        uint64_t saved = bench_now_ns();
        int64_t ver = -1;
        for (uint64_t k = 1; ver != t + 1; k++) {
            if (k > 120) {
                fprintf(stderr, "bench watch: version %d did not run within 2 s of the save\n", t + 1);
                return -1;
            }
            sleep_until_ns(tick);
            tick += FRAME_NS;
            if (ljs_frame(rt, 1.0 / 60.0) != LJS_OK || ljs_field_get_integer(rt, e, "ver", &ver) != LJS_OK) {
                fprintf(stderr, "bench watch: latency frame: %s\n", ljs_last_error());
                return -1;
            }
            if (ver == t + 1) {
                lat[t] = (double)(bench_now_ns() - saved) * 1e-6;
                max_ticks = k > max_ticks ? k : max_ticks;
            }
        }
        sleep_until_ns(tick);
    }
    bench_figure(res, "reload_debounce_ms", 0.0);
    bench_figure(res, "reload_latency_trials", (double)trials);
    bench_figure(res, "reload_latency_p50_ms", percentile(lat, trials, 0.50));
    bench_figure(res, "reload_latency_p99_ms", percentile(lat, trials, 0.99));
    bench_figure(res, "reload_latency_max_frame_ticks", (double)max_ticks);
    return 0;
}

/* ========================================================================
 * The case
 * ======================================================================== */

int bench_watch(const bench_ctx_t *ctx)
{
    bench_result_t res = {.name = "watch"};
    int nsizes = ctx->quick ? 1 : NSIZES;
    for (int si = 0; si < nsizes; si++) {
        files_t fs = {0};
        ljs_runtime_t *rt = NULL;
        int rc = files_create(&fs, sizes[si]);
        if (rc == 0)
            rc = run_idle(ctx, si, &fs, si == 0 ? &rt : NULL, &res);
        if (rc == 0 && si == 0)
            rc = run_latency(ctx, rt, &fs, &res);
        ljs_runtime_destroy(rt);
        files_remove(&fs);
        if (rc != 0)
            return 1;
    }
    bench_figure(&res, "workers", (double)ctx->workers);
    bench_figure(&res, "idle_wall_s", ctx->quick ? 0.2 : 1.0);
    bench_report(ctx, &res);
    return 0;
}
