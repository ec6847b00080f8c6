/* bench_runaway.c - case `runaway`: what the runaway protection costs on
 * the frame bench's light scripts. The same scene runs in two runtimes side
 * by side in one process: protection off (LJS_SCRIPT_TIMEOUT_MS=0, no
 * budget: the baseline) and on (the default: the watchdog thread polling,
 * a call counter bumped per call, ljs's own library functions). Frames
 * alternate between the runtimes in short blocks so machine noise and drift
 * hit both alike; each figure is the median frame time. Target: on within 2%
 * of off.
 *
 * The scene is the frame bench's light movement script, natural and fast
 * form (the per-call cost is largest against the cheapest calls), plus a
 * script using the functions ljs replaces (pcall, coroutine.wrap, string.find,
 * table.concat) in every call. */
#include "bench/bench.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char light_natural_src[] = "return {\n"
                                        "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0 },\n"
                                        "  update = function(self, dt)\n"
                                        "    local x = self.x + self.vx * dt\n"
                                        "    local y = self.y + self.vy * dt\n"
                                        "    if x < 0.0 then x = -x; self.vx = -self.vx\n"
                                        "    elseif x > 1000.0 then x = 2000.0 - x; self.vx = -self.vx end\n"
                                        "    if y < 0.0 then y = -y; self.vy = -self.vy\n"
                                        "    elseif y > 1000.0 then y = 2000.0 - y; self.vy = -self.vy end\n"
                                        "    self.x = x\n"
                                        "    self.y = y\n"
                                        "  end,\n"
                                        "}\n";

static const char light_fast_src[] = "return {\n"
                                     "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0 },\n"
                                     "  reads = { 'x', 'y', 'vx', 'vy' },\n"
                                     "  writes = { 'x', 'y', 'vx', 'vy' },\n"
                                     "  update = function(id, dt, x, y, vx, vy)\n"
                                     "    x = x + vx * dt\n"
                                     "    y = y + vy * dt\n"
                                     "    if x < 0.0 then x = -x; vx = -vx\n"
                                     "    elseif x > 1000.0 then x = 2000.0 - x; vx = -vx end\n"
                                     "    if y < 0.0 then y = -y; vy = -vy\n"
                                     "    elseif y > 1000.0 then y = 2000.0 - y; vy = -vy end\n"
                                     "    return x, y, vx, vy\n"
                                     "  end,\n"
                                     "}\n";

static const char lib_src[] = "local words = { 'alpha', 'beta', 'gamma' }\n"
                              "return { fields = { n = 0 }, update = function(self)\n"
                              "  local ok, v = pcall(string.find, 'key=value', '(%w+)=(%w+)')\n"
                              "  local co = coroutine.wrap(function() coroutine.yield(1) end)\n"
                              "  self.n = self.n + v + co() + #table.concat(words, ',')\n"
                              "end }\n";

#define NVARIANTS 2
#define BLOCK 10

static const char *const srcs[] = {light_natural_src, light_fast_src, lib_src};
static const char *const files[] = {"natural.lua", "fast.lua", "lib.lua"};
#define NSCRIPTS 3

static ljs_runtime_t *make(const bench_ctx_t *ctx, const char *dir, int on, int n)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    if (ljs_config_init(&cfg) != LJS_OK)
        return NULL;
    cfg.workers = ctx->workers;
    cfg.watch = 0;
    cfg.script_budget = 0;
    cfg.script_timeout_ms = on ? 1000 : 0;
    if (ljs_runtime_create(&cfg, &rt) != LJS_OK)
        return NULL;
    int ok = 1;
    for (int k = 0; k < NSCRIPTS && ok; k++) {
        char path[160];
        ljs_script_t s;
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        ok = ljs_script_load(rt, path, &s) == LJS_OK;
        /* Most entities move; a tenth use the replaced library functions. */
        int count = k == 2 ? n / 10 : n / 2;
        for (int i = 0; i < count && ok; i++) {
            ljs_entity_t e;
            ok = ljs_entity_create(rt, &e) == LJS_OK && ljs_script_attach(rt, e, s) == LJS_OK;
            if (ok && k < 2) {
                ljs_field_set_number(rt, e, "vx", (double)(i % 17) - 8.0);
                ljs_field_set_number(rt, e, "vy", (double)(i % 13) - 6.0);
            }
        }
    }
    if (!ok) {
        fprintf(stderr, "bench runaway: %s\n", ljs_last_error());
        ljs_runtime_destroy(rt);
        return NULL;
    }
    return rt;
}

int bench_runaway(const bench_ctx_t *ctx)
{
    char dir[64];
    if (bench_tmpdir(dir, sizeof dir, "runaway") != 0)
        return 1;
    for (int k = 0; k < NSCRIPTS; k++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        if (bench_write(path, srcs[k], strlen(srcs[k])) != 0)
            return 1;
    }
    int n = ctx->quick ? 20000 : 100000, blocks = ctx->quick ? 10 : 20 * ctx->reps, rc = 0;
    ljs_runtime_t *rt[NVARIANTS] = {NULL, NULL};
    for (int v = 0; v < NVARIANTS; v++)
        if ((rt[v] = make(ctx, dir, v, n)) == NULL)
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
        if (st[v].script_errors || st[v].updates != st[0].updates)
            rc = 1; /* both must have done the same work */
    }
    for (int v = 0; v < NVARIANTS; v++)
        ljs_runtime_destroy(rt[v]);
    for (int k = 0; k < NSCRIPTS; k++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        unlink(path);
    }
    rmdir(dir);
    if (rc != 0) {
        fprintf(stderr, "bench runaway: the scene failed\n");
        for (int v = 0; v < NVARIANTS; v++)
            free(times[v]);
        return 1;
    }
    bench_result_t res = {.name = "runaway"};
    double med[NVARIANTS];
    med[0] = bench_median(times[0], nt);
    med[1] = bench_median(times[1], nt);
    bench_figure(&res, "frame_ms_p50_protection_off", med[0]);
    bench_figure(&res, "frame_ms_p50_protection_on", med[1]);
    free(times[0]);
    free(times[1]);
    int entities = n / 2 * 2 + n / 10;
    bench_figure(&res, "entities", (double)entities);
    bench_figure(&res, "frames_each", (double)nt);
    bench_figure(&res, "protection_overhead_pct", (med[1] / med[0] - 1.0) * 100.0);
    bench_ratio(&res, "frame_time_protection_off_vs_on", med[0] / med[1]);
    bench_report(ctx, &res);
    return 0;
}
