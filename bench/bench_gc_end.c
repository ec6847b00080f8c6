/* bench_gc_end.c - is GC off the frame's critical path? The owner's time
 * from the commit to ljs_frame's return (the end phase: spawns, unloads,
 * queueing every worker's background GC) and the frame time, under the
 * managed policy, on a scene that makes garbage on every worker:
 *  - quiet;
 *  - beside 4 CPU-burning processes (started by this bench, same run): a
 *    worker preempted by the OS must not make the frame wait for it;
 *  - with a host that spends 8 ms of CPU between frames (its render),
 *    the time the workers' background GC runs in.
 * Lua's incremental mode (no GC work after the commit) is the baseline of
 * each condition: end_vs_incremental near 1 means GC adds nothing to the
 * end phase. Memory is checked too: the background GC must keep up (peak
 * over the condition vs the quiet run's). */
#include "bench/bench.h"

#include <ljs.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char src_fmt[] = "local N, G = %u, %u\n"
                              "local cache = {}\n"
                              "for i = 1, N do cache[i] = { i, tostring(i), { x = i } } end\n"
                              "return { fields = { acc = 0, tick = 0 },\n"
                              "  update = function(self)\n"
                              "    local tick = self.tick + 1\n"
                              "    self.tick = tick\n"
                              "    local parts = {}\n"
                              "    for k = 1, G do\n"
                              "      local e = cache[(self.id * 31 + tick * 7 + k * 1009) %% N + 1]\n"
                              "      parts[k] = { k, e[2] .. ':' .. tick, pos = { x = e[3].x } }\n"
                              "    end\n"
                              "    self.acc = self.acc + #parts[G][2]\n"
                              "  end }\n";

enum { C_QUIET, C_BURN, C_HOST, NCOND };
static const char *const cond_names[NCOND] = {"quiet", "burn4", "host8ms"};
enum { M_MANAGED, M_INC, NMODES };
static const char *const mode_names[NMODES] = {"managed", "incremental"};

#define MAX_REPS 32
#define HOST_MS 8.0
#define DT (1.0 / 60.0)

typedef struct run_s {
    double end_mean, end_p99, frame_p99, peak_mb;
} run_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    return sorted[(k > n ? n : k) - 1];
}

/* The host's own work between frames: CPU, not sleep, as a render is. */
static void host_work(double ms)
{
    uint64_t end = bench_now_ns() + (uint64_t)(ms * 1e6);
    uint64_t x = 0;
    while (bench_now_ns() < end)
        x++;
    bench_sink(x);
}

static double summed_mb(const ljs_runtime_t *rt, unsigned workers)
{
    uint64_t sum = 0;
    ljs_state_memory_t m;
    for (uint32_t w = 0; w < workers; w++)
        if (ljs_state_memory(rt, w, &m) == LJS_OK)
            sum += m.current_bytes;
    return (double)sum / (1024.0 * 1024.0);
}

static int run_one(const bench_ctx_t *ctx, const char *path, int mode, int cond, uint32_t entities,
                   uint32_t frames, double *end_ms, double *frame_ms, run_t *out)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt = NULL;
    ljs_script_t s;
    int rc = ljs_config_init(&cfg);
    if (rc == LJS_OK) {
        cfg.workers = ctx->workers;
        cfg.watch = 0;
        snprintf(cfg.gc_mode, sizeof cfg.gc_mode, "%s", mode_names[mode]);
        rc = ljs_runtime_create(&cfg, &rt);
    }
    if (rc == LJS_OK)
        rc = ljs_script_load(rt, path, &s);
    for (uint32_t i = 0; i < entities && rc == LJS_OK; i++) {
        ljs_entity_t e;
        if ((rc = ljs_entity_create(rt, &e)) == LJS_OK)
            rc = ljs_script_attach(rt, e, s);
    }
    for (int f = 0; f < 20 && rc == LJS_OK; f++)
        rc = ljs_frame(rt, DT);
    bench_burners_t burn = {.n = 0};
    if (rc == LJS_OK && cond == C_BURN && bench_burners_start(&burn, 4) != 0)
        rc = LJS_EINVAL;
    double peak = 0.0, end_sum = 0.0;
    for (uint32_t f = 0; f < frames && rc == LJS_OK; f++) {
        if (cond == C_HOST)
            host_work(HOST_MS);
        uint64_t t0 = bench_now_ns();
        rc = ljs_frame(rt, DT);
        frame_ms[f] = (double)(bench_now_ns() - t0) * 1e-6;
        ljs_stats_t st = {0};
        if (rc == LJS_OK)
            rc = ljs_stats_get(rt, &st);
        end_ms[f] = st.last_end_ms;
        end_sum += st.last_end_ms;
        double mb = summed_mb(rt, ctx->workers);
        peak = mb > peak ? mb : peak;
    }
    bench_burners_stop(&burn);
    if (rc != LJS_OK)
        fprintf(stderr, "bench gc_end: %s/%s: %s: %s\n", mode_names[mode], cond_names[cond], ljs_errname(rc),
                ljs_last_error());
    if (rt != NULL)
        ljs_runtime_destroy(rt);
    if (rc != LJS_OK)
        return -1;
    qsort(end_ms, frames, sizeof *end_ms, cmp_double);
    qsort(frame_ms, frames, sizeof *frame_ms, cmp_double);
    out->end_mean = end_sum / frames;
    out->end_p99 = percentile(end_ms, frames, 0.99);
    out->frame_p99 = percentile(frame_ms, frames, 0.99);
    out->peak_mb = peak;
    return 0;
}

static char name_pool[64][48];
static size_t name_used;

static const char *name_of(const char *what, int mode, int cond)
{
    if (name_used == sizeof name_pool / sizeof name_pool[0])
        return "overflow";
    char *s = name_pool[name_used++];
    snprintf(s, sizeof name_pool[0], "%s_%s_%s", what, mode_names[mode], cond_names[cond]);
    return s;
}

static double med_of(run_t (*runs)[NMODES][NCOND], int reps, int mode, int cond, size_t off)
{
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++)
        memcpy(&v[r], (const char *)&runs[r][mode][cond] + off, sizeof v[r]);
    return bench_median(v, (size_t)reps);
}

int bench_gc_end(const bench_ctx_t *ctx)
{
    const uint32_t cache_n = ctx->quick ? 20000 : 60000, garbage = 3;
    const uint32_t entities = ctx->quick ? 1000 : 3000, frames = ctx->quick ? 60 : 300;
    int reps = ctx->reps < MAX_REPS ? ctx->reps : MAX_REPS;
    char dir[64], path[512], src[sizeof src_fmt + 64];
    if (bench_tmpdir(dir, sizeof dir, "gcend") != 0)
        return 1;
    snprintf(path, sizeof path, "%s/garbage.lua", dir);
    snprintf(src, sizeof src, src_fmt, cache_n, garbage);
    int rc = bench_write(path, src, strlen(src)) == 0 ? 0 : 1;
    double *end_ms = malloc(sizeof *end_ms * frames), *frame_ms = malloc(sizeof *frame_ms * frames);
    run_t(*runs)[NMODES][NCOND] = calloc((size_t)reps, sizeof *runs);
    if (end_ms == NULL || frame_ms == NULL || runs == NULL)
        rc = 1;
    /* Conditions and modes alternate within each repetition, so a slow
     * spell of the machine does not land on one of them only. */
    for (int r = 0; r < reps && rc == 0; r++)
        for (int c = 0; c < NCOND && rc == 0; c++)
            for (int m = 0; m < NMODES && rc == 0; m++)
                if (run_one(ctx, path, m, c, entities, frames, end_ms, frame_ms, &runs[r][m][c]) != 0)
                    rc = 1;
    if (rc == 0) {
        bench_result_t res = {.name = "gc_end"};
        name_used = 0;
        for (int c = 0; c < NCOND; c++)
            for (int m = 0; m < NMODES; m++) {
                bench_figure(&res, name_of("end_mean_ms", m, c),
                             med_of(runs, reps, m, c, offsetof(run_t, end_mean)));
                bench_figure(&res, name_of("end_p99_ms", m, c),
                             med_of(runs, reps, m, c, offsetof(run_t, end_p99)));
                bench_figure(&res, name_of("frame_p99_ms", m, c),
                             med_of(runs, reps, m, c, offsetof(run_t, frame_p99)));
                bench_figure(&res, name_of("peak_mb", m, c),
                             med_of(runs, reps, m, c, offsetof(run_t, peak_mb)));
            }
        /* The targets' names: the managed end phase's p99 per condition. */
        bench_figure(&res, "end_p99_ms_quiet",
                     med_of(runs, reps, M_MANAGED, C_QUIET, offsetof(run_t, end_p99)));
        bench_figure(&res, "end_p99_ms_burn4",
                     med_of(runs, reps, M_MANAGED, C_BURN, offsetof(run_t, end_p99)));
        bench_figure(&res, "end_p99_ms_host8ms",
                     med_of(runs, reps, M_MANAGED, C_HOST, offsetof(run_t, end_p99)));
        bench_figure(&res, "workers", (double)ctx->workers);
        bench_figure(&res, "frames", (double)frames);
        for (int c = 0; c < NCOND; c++) {
            double inc = med_of(runs, reps, M_INC, c, offsetof(run_t, frame_p99));
            double man = med_of(runs, reps, M_MANAGED, c, offsetof(run_t, frame_p99));
            char *n = name_pool[name_used < 63 ? name_used++ : 63];
            snprintf(n, sizeof name_pool[0], "frame_p99_incremental_vs_managed_%s", cond_names[c]);
            bench_ratio(&res, n, man > 0.0 ? inc / man : 0.0);
        }
        bench_report(ctx, &res);
    }
    free(end_ms);
    free(frame_ms);
    free(runs);
    unlink(path);
    rmdir(dir);
    return rc;
}
