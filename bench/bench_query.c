/* bench_query.c - case `query`: 50 entity queries per frame, uncached scans
 * (the old way: LJS_QUERY_CACHE=0) vs the cache kept current by deltas, at
 * 10k, 100k and 1M entities with 0%, 1% and 10% of them changing a tag per
 * frame. Both run the same churn through the same host API in the same
 * process; results are checked equal frame by frame. */
#include "bench/bench.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTAGS 8
#define NQUERIES 50

static const char *const tag_names[NTAGS] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"};
/* Share of entities holding each tag, in 1/1000: selective to broad. */
static const unsigned tag_share[NTAGS] = {500, 250, 100, 50, 20, 10, 300, 600};

typedef struct sig_s {
    const char *all[3];
    size_t nall;
    const char *none[2];
    size_t nnone;
} sig_t;

/* 50 signatures: one to three all-of tags, zero to two none-of tags. */
static void make_sigs(sig_t *sigs)
{
    uint64_t seed = 42;
    for (int i = 0; i < NQUERIES; i++) {
        sig_t *s = &sigs[i];
        memset(s, 0, sizeof *s);
        s->nall = 1 + bench_rng(&seed) % 3;
        for (size_t k = 0; k < s->nall; k++)
            s->all[k] = tag_names[bench_rng(&seed) % NTAGS];
        s->nnone = bench_rng(&seed) % 3;
        for (size_t k = 0; k < s->nnone; k++)
            s->none[k] = tag_names[bench_rng(&seed) % NTAGS];
    }
}

typedef struct world_s {
    ljs_runtime_t *rt;
    ljs_entity_t *e;
    uint8_t *bits; /* the bench's own copy of each entity's tags */
    uint32_t n;
    uint64_t seed;
} world_t;

static int world_make(world_t *w, uint32_t n, uint32_t cache)
{
    ljs_config_t cfg;
    memset(w, 0, sizeof *w);
    if (ljs_config_init(&cfg) != LJS_OK)
        return -1;
    cfg.workers = 1; /* host-side queries: the workers are not involved */
    cfg.query_cache = cache;
    cfg.watch = 0;
    if (ljs_runtime_create(&cfg, &w->rt) != LJS_OK)
        return -1;
    w->e = malloc(sizeof *w->e * n);
    w->bits = calloc(n, 1);
    if (w->e == NULL || w->bits == NULL)
        return -1;
    w->n = n;
    w->seed = 7; /* the same world and churn for both sides */
    for (uint32_t i = 0; i < n; i++) {
        if (ljs_entity_create(w->rt, &w->e[i]) != LJS_OK)
            return -1;
        for (int t = 0; t < NTAGS; t++)
            if (bench_rng(&w->seed) % 1000 < tag_share[t]) {
                ljs_entity_tag(w->rt, w->e[i], tag_names[t], 1);
                w->bits[i] |= (uint8_t)(1u << t);
            }
    }
    return 0;
}

static void world_free(world_t *w)
{
    ljs_runtime_destroy(w->rt);
    free(w->e);
    free(w->bits);
}

/* One frame: churn, then the 50 queries. Returns a checksum of results. */
static uint64_t frame(world_t *w, const sig_t *sigs, uint32_t churn)
{
    for (uint32_t c = 0; c < churn; c++) {
        uint64_t r = bench_rng(&w->seed);
        uint32_t i = (uint32_t)(r % w->n), t = (uint32_t)((r >> 32) % NTAGS);
        w->bits[i] ^= (uint8_t)(1u << t);
        ljs_entity_tag(w->rt, w->e[i], tag_names[t], (w->bits[i] >> t) & 1);
    }
    uint64_t sum = 0;
    for (int q = 0; q < NQUERIES; q++) {
        ljs_query_t qq = {sigs[q].all, sigs[q].nall, sigs[q].none, sigs[q].nnone};
        const ljs_entity_t *res;
        size_t n;
        if (ljs_query(w->rt, &qq, &res, &n) != LJS_OK)
            return 0;
        sum = sum * 31 + n + (n ? res[n / 2].id : 0);
    }
    return sum;
}

/* ms per frame over `frames` frames after two warm-up frames; the checksum
 * of every frame's results goes into *check. */
static double run(world_t *w, const sig_t *sigs, uint32_t churn, int frames, uint64_t *check)
{
    uint64_t warm = frame(w, sigs, churn); /* two warm-up frames */
    *check = warm * 31 + frame(w, sigs, churn);
    uint64_t t0 = bench_now_ns();
    for (int f = 0; f < frames; f++)
        *check = *check * 1000003 + frame(w, sigs, churn);
    return (double)(bench_now_ns() - t0) * 1e-6 / frames;
}

int bench_query(const bench_ctx_t *ctx)
{
    static const uint32_t sizes[] = {10000, 100000, 1000000};
    static const char *const size_names[] = {"10k", "100k", "1m"};
    static const unsigned churn_pm[] = {0, 10, 100}; /* per mille */
    static const char *const churn_names[] = {"0pct", "1pct", "10pct"};
    static char names[64][48];
    int used = 0, rc = 0;
    sig_t sigs[NQUERIES];
    bench_result_t res = {.name = "query"};
    make_sigs(sigs);
    size_t nsizes = ctx->quick ? 1 : 3;
    for (size_t si = 0; si < nsizes && rc == 0; si++) {
        int frames = sizes[si] >= 1000000 ? 3 : 20;
        for (size_t ci = 0; ci < 3 && rc == 0; ci++) {
            uint32_t churn = (uint32_t)((uint64_t)sizes[si] * churn_pm[ci] / 1000);
            double scan[16], cached[16];
            int reps = ctx->reps < 16 ? ctx->reps : 16;
            if (sizes[si] >= 1000000 && reps > 3)
                reps = 3;
            for (int r = 0; r < reps && rc == 0; r++) {
                world_t a, b;
                uint64_t ca = 0, cb = 0;
                memset(&b, 0, sizeof b);
                if (world_make(&a, sizes[si], 0) != 0 || world_make(&b, sizes[si], 128) != 0) {
                    fprintf(stderr, "bench query: cannot build the world\n");
                    world_free(&a);
                    world_free(&b);
                    return 1;
                }
                scan[r] = run(&a, sigs, churn, frames, &ca);
                cached[r] = run(&b, sigs, churn, frames, &cb);
                if (ca != cb) {
                    fprintf(stderr, "bench query: cached results differ from the scan (%s, %s)\n",
                            size_names[si], churn_names[ci]);
                    rc = 1;
                }
                world_free(&a);
                world_free(&b);
            }
            if (rc != 0)
                break;
            double ms_scan = bench_median(scan, (size_t)reps), ms_cached = bench_median(cached, (size_t)reps);
            snprintf(names[used], sizeof names[used], "scan_ms_%s_%s", size_names[si], churn_names[ci]);
            bench_figure(&res, names[used++], ms_scan);
            snprintf(names[used], sizeof names[used], "cached_ms_%s_%s", size_names[si], churn_names[ci]);
            bench_figure(&res, names[used++], ms_cached);
            snprintf(names[used], sizeof names[used], "cached_vs_scan_%s_%s", size_names[si],
                     churn_names[ci]);
            bench_ratio(&res, names[used++], ms_cached > 0 ? ms_scan / ms_cached : 0);
        }
    }
    bench_report(ctx, &res);
    return rc;
}
