/* bench_fields.c - case `fields`: what a fast-form read of a string, an
 * entity or a list field costs against a number read, in the same process.
 *
 * Four scripts differ only in the type of the field `v` their update reads
 * (reads = {'v', 'n'}, writes = {'n'}): a number, a string (an unchanged
 * interned string: the worker's cache hands out the same Lua string), an
 * entity (generation-checked on every read) and a list (a view; the script
 * takes its length). One worker, 100k entities (10k with --quick), the
 * median of ctx->reps runs of ns per entity-update. The ratios are the
 * whole update's cost against the number script's (the target is <= 1.5);
 * every run's `n` is checked, so a broken read cannot pass as a fast one. */
#include "bench/bench.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct kind_s {
    const char *name, *decl, *test;
} kind_t;

static const kind_t kinds[] = {
    {"number", "1.5", "v > 1"},
    {"string", "'patrol'", "v == 'patrol'"},
    {"entity", "ljs.entity", "v"},
    {"list", "ljs.list('number', 4)", "#v == 2"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static int run(const bench_ctx_t *ctx, const char *dir, const kind_t *k, uint32_t n, uint32_t frames,
               double *ns)
{
    char path[256], src[512];
    int len = snprintf(src, sizeof src,
                       "return { fields = { v = %s, n = 0 }, reads = { 'v', 'n' }, writes = { 'n' },\n"
                       "  update = function(e, dt, v, n) if %s then return n + 1 end return n end }\n",
                       k->decl, k->test);
    snprintf(path, sizeof path, "%s/read_%s.lua", dir, k->name);
    ljs_runtime_t *rt;
    ljs_script_t s;
    (void)ctx;
    if (bench_runtime(path, src, (size_t)len, 1, &rt, &s) != 0)
        return -1;
    int rc = 0;
    ljs_entity_t first = {0}, e = {0};
    ljs_value_t two[2] = {{LJS_TNUMBER, {.n = 1}}, {LJS_TNUMBER, {.n = 2}}};
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        rc = ljs_entity_create(rt, &e) == LJS_OK && ljs_script_attach(rt, e, s) == LJS_OK ? 0 : -1;
        if (i == 0)
            first = e;
        if (rc == 0 && !strcmp(k->name, "entity"))
            rc = ljs_field_set_entity(rt, e, "v", first) == LJS_OK ? 0 : -1;
        if (rc == 0 && !strcmp(k->name, "list"))
            rc = ljs_field_set_list(rt, e, "v", two, 2) == LJS_OK ? 0 : -1;
    }
    for (int w = 0; w < 3 && rc == 0; w++) /* warm: caches, the GC's pace */
        rc = ljs_frame(rt, 0.016) == LJS_OK ? 0 : -1;
    uint64_t t0 = bench_now_ns();
    for (uint32_t f = 0; f < frames && rc == 0; f++)
        rc = ljs_frame(rt, 0.016) == LJS_OK ? 0 : -1;
    uint64_t t1 = bench_now_ns();
    int64_t got = 0;
    if (rc == 0 && (ljs_field_get_integer(rt, e, "n", &got) != LJS_OK || got != (int64_t)frames + 3)) {
        fprintf(stderr, "bench fields: %s read: n = %lld, want %u\n", k->name, (long long)got, frames + 3);
        rc = -1;
    }
    if (rc != 0)
        fprintf(stderr, "bench fields: %s: %s\n", k->name, ljs_last_error());
    ljs_runtime_destroy(rt);
    *ns = (double)(t1 - t0) / ((double)n * frames);
    return rc;
}

int bench_fields(const bench_ctx_t *ctx)
{
    char dir[64];
    if (bench_tmpdir(dir, sizeof dir, "fields") != 0)
        return -1;
    uint32_t n = ctx->quick ? 10000 : 100000, frames = ctx->quick ? 20 : 40;
    double t[NKINDS][32];
    int reps = ctx->reps > 32 ? 32 : ctx->reps, rc = 0;
    /* Interleaved, so load on the machine hits every kind alike. */
    for (int r = 0; r < reps && rc == 0; r++)
        for (size_t k = 0; k < NKINDS && rc == 0; k++)
            rc = run(ctx, dir, &kinds[k], n, frames, &t[k][r]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench fields: cannot remove %s\n", dir);
    if (rc != 0)
        return -1;
    bench_result_t res = {.name = "fields"};
    double med[NKINDS];
    static char names[NKINDS][2][48];
    for (size_t k = 0; k < NKINDS; k++) {
        med[k] = bench_median(t[k], (size_t)reps);
        snprintf(names[k][0], sizeof names[k][0], "%s_read_ns", kinds[k].name);
        bench_figure(&res, names[k][0], med[k]);
    }
    for (size_t k = 1; k < NKINDS; k++) {
        snprintf(names[k][1], sizeof names[k][1], "%s_read_vs_number", kinds[k].name);
        bench_ratio(&res, names[k][1], med[k] / med[0]);
    }
    bench_report(ctx, &res);
    return 0;
}
