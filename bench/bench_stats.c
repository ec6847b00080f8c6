/* bench_stats.c - case `stats`: what observability costs. The same scene
 * runs in three runtimes side by side in one process: LJS_STATS=0 (counters
 * only: the baseline), LJS_STATS=1 (the default: every batch timed and
 * attributed per script) and LJS_STATS=1 with LJS_TRACE on (a span per
 * batch, phase and GC job). Frames alternate between the runtimes in short
 * blocks so machine noise and drift hit all three alike; each figure is the
 * median frame time. Target: stats on within 2% of off.
 *
 * The scene is the worst case for per-batch costs: a light script (a few
 * field reads and writes per entity) over many small batches, plus a
 * handler per entity every few frames. */
#include "bench/bench.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char src[] = "return { fields = { x = 0.0, vx = 1.0, hits = 0 },\n"
                          "  reads = { 'x', 'vx' }, writes = { 'x' },\n"
                          "  update = function(self, dt, x, vx)\n"
                          "    if (self + frame()) % 8 == 0 then send(self, 'ping', 1) end\n"
                          "    return x + vx * dt\n"
                          "  end,\n"
                          "  on_ping = function(self) self.hits = self.hits + 1 end }\n";

#define NVARIANTS 3
#define BLOCK 10

/* bench_figure keeps the name pointer: literals only. */
static const char *const figure_names[NVARIANTS] = {"frame_ms_p50_stats_off", "frame_ms_p50_stats_on",
                                                    "frame_ms_p50_stats_on_traced"};

static ljs_runtime_t *make(const bench_ctx_t *ctx, const char *path, int variant, const char *trace, int n)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    ljs_script_t s;
    if (ljs_config_init(&cfg) != LJS_OK)
        return NULL;
    cfg.workers = ctx->workers;
    cfg.watch = 0;
    cfg.batch = 128;
    cfg.stats = variant != 0;
    if (variant == 2)
        snprintf(cfg.trace, sizeof cfg.trace, "%s", trace);
    if (ljs_runtime_create(&cfg, &rt) != LJS_OK)
        return NULL;
    int ok = ljs_script_load(rt, path, &s) == LJS_OK;
    for (int i = 0; i < n && ok; i++) {
        ljs_entity_t e;
        ok = ljs_entity_create(rt, &e) == LJS_OK && ljs_script_attach(rt, e, s) == LJS_OK;
    }
    if (!ok) {
        ljs_runtime_destroy(rt);
        return NULL;
    }
    return rt;
}

int bench_stats(const bench_ctx_t *ctx)
{
    char dir[64], path[128], trace[160];
    if (bench_tmpdir(dir, sizeof dir, "stats") != 0)
        return 1;
    snprintf(path, sizeof path, "%s/light.lua", dir);
    snprintf(trace, sizeof trace, "%s/trace.json", dir);
    if (bench_write(path, src, strlen(src)) != 0)
        return 1;
    int n = ctx->quick ? 2000 : 20000, blocks = ctx->quick ? 4 : 20 * ctx->reps, rc = 0;
    ljs_runtime_t *rt[NVARIANTS] = {NULL, NULL, NULL};
    for (int v = 0; v < NVARIANTS; v++)
        if ((rt[v] = make(ctx, path, v, trace, n)) == NULL)
            rc = 1;
    size_t cap = (size_t)blocks * BLOCK, nt = 0;
    double *times[NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++)
        times[v] = malloc(cap * sizeof(double));
    for (int v = 0; v < NVARIANTS && rc == 0; v++)
        for (int f = 0; f < 20 && rc == 0; f++) /* warm-up */
            rc = ljs_frame(rt[v], 1.0 / 60) != LJS_OK;
    for (int b = 0; b < blocks && rc == 0; b++) {
        for (int v = 0; v < NVARIANTS && rc == 0; v++)
            for (int f = 0; f < BLOCK && rc == 0; f++) {
                uint64_t t0 = bench_now_ns();
                rc = ljs_frame(rt[v], 1.0 / 60) != LJS_OK;
                times[v][nt + (size_t)f] = (double)(bench_now_ns() - t0) / 1e6;
            }
        nt += BLOCK;
    }
    ljs_stats_t st[NVARIANTS];
    for (int v = 0; v < NVARIANTS && rc == 0; v++) {
        ljs_stats_get(rt[v], &st[v]);
        if (st[v].script_errors || st[v].events_delivered != st[0].events_delivered)
            rc = 1; /* the three must have done the same work */
    }
    for (int v = 0; v < NVARIANTS; v++)
        ljs_runtime_destroy(rt[v]);
    unlink(trace);
    unlink(path);
    rmdir(dir);
    if (rc != 0) {
        fprintf(stderr, "bench stats: the scene failed\n");
        for (int v = 0; v < NVARIANTS; v++)
            free(times[v]);
        return 1;
    }
    bench_result_t res = {.name = "stats"};
    double med[NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++) {
        med[v] = bench_median(times[v], nt);
        bench_figure(&res, figure_names[v], med[v]);
        free(times[v]);
    }
    bench_figure(&res, "entities", n);
    bench_figure(&res, "frames_each", (double)nt);
    bench_figure(&res, "stats_overhead_pct", (med[1] / med[0] - 1.0) * 100.0);
    bench_figure(&res, "trace_overhead_pct", (med[2] / med[0] - 1.0) * 100.0);
    bench_ratio(&res, "frame_time_stats_off_vs_on", med[0] / med[1]);
    bench_ratio(&res, "frame_time_stats_off_vs_trace", med[0] / med[2]);
    bench_report(ctx, &res);
    return 0;
}
