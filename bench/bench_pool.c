/* bench_pool.c - case `pool`: event delivery with payload tables from a
 * per-state pool (LJS_POOL=1) vs a new table per event (LJS_POOL=0): Lua
 * bytes allocated per delivered event and events per second, same scene,
 * same process. */
#include "bench/bench.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char src[] = "return { fields = { hp = 0.0, got = 0 },\n"
                          "  update = function(self)\n"
                          "    for k = 1, 4 do\n"
                          "      local t = self.id - 1 + rand(self, 0, 2)\n"
                          "      send(t, 'hit', { damage = 1.5, kind = 'fire', crit = false })\n"
                          "    end\n"
                          "  end,\n"
                          "  on_hit = function(self, p, sender)\n"
                          "    if p.kind == 'fire' then self.hp = self.hp + p.damage end\n"
                          "    self.got = self.got + 1\n"
                          "  end }\n";

typedef struct out_s {
    double bytes_per_event, events_per_s, hp_sum;
} out_t;

static int run(const bench_ctx_t *ctx, const char *path, int pool, int entities, int frames, out_t *o)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    ljs_script_t s;
    if (ljs_config_init(&cfg) != LJS_OK)
        return -1;
    cfg.workers = ctx->workers;
    cfg.pool = (uint32_t)pool;
    cfg.watch = 0;
    if (ljs_runtime_create(&cfg, &rt) != LJS_OK)
        return -1;
    ljs_entity_t *e = malloc(sizeof *e * (size_t)entities);
    int rc = e != NULL && ljs_script_load(rt, path, &s) == LJS_OK ? 0 : -1;
    for (int i = 0; i < entities && rc == 0; i++)
        if (ljs_entity_create(rt, &e[i]) != LJS_OK || ljs_script_attach(rt, e[i], s) != LJS_OK)
            rc = -1;
    for (int f = 0; f < 10 && rc == 0; f++) /* warm-up: pools and buffers fill */
        rc = ljs_frame(rt, 0.0) == LJS_OK ? 0 : -1;
    ljs_stats_t st0, st1;
    uint64_t a0 = 0, a1 = 0;
    ljs_state_memory_t m;
    ljs_stats_get(rt, &st0);
    for (uint32_t w = 0; w < cfg.workers; w++)
        a0 += ljs_state_memory(rt, w, &m) == LJS_OK ? m.allocated_bytes : 0;
    uint64_t t0 = bench_now_ns();
    for (int f = 0; f < frames && rc == 0; f++)
        rc = ljs_frame(rt, 0.0) == LJS_OK ? 0 : -1;
    double secs = (double)(bench_now_ns() - t0) * 1e-9;
    ljs_stats_get(rt, &st1);
    for (uint32_t w = 0; w < cfg.workers; w++)
        a1 += ljs_state_memory(rt, w, &m) == LJS_OK ? m.allocated_bytes : 0;
    double events = (double)(st1.events_delivered - st0.events_delivered);
    o->bytes_per_event = events > 0 ? (double)(a1 - a0) / events : 0;
    o->events_per_s = secs > 0 ? events / secs : 0;
    o->hp_sum = 0;
    for (int i = 0; i < entities && rc == 0; i++) {
        double hp = 0;
        ljs_field_get_number(rt, e[i], "hp", &hp);
        o->hp_sum += hp;
    }
    if (st1.script_errors != 0)
        rc = -1;
    free(e);
    ljs_runtime_destroy(rt);
    return rc;
}

int bench_pool(const bench_ctx_t *ctx)
{
    char dir[64], path[128];
    if (bench_tmpdir(dir, sizeof dir, "pool") != 0)
        return 1;
    snprintf(path, sizeof path, "%s/hitter.lua", dir);
    if (bench_write(path, src, strlen(src)) != 0)
        return 1;
    int entities = ctx->quick ? 500 : 5000, frames = ctx->quick ? 20 : 100, rc = 0;
    double bpe[2][16], eps[2][16];
    int reps = ctx->reps < 16 ? ctx->reps : 16;
    for (int r = 0; r < reps && rc == 0; r++) {
        out_t o[2] = {{0, 0, 0}, {0, 0, 0}};
        for (int pool = 0; pool <= 1 && rc == 0; pool++) {
            rc = run(ctx, path, pool, entities, frames, &o[pool]);
            bpe[pool][r] = o[pool].bytes_per_event;
            eps[pool][r] = o[pool].events_per_s;
        }
        if (rc == 0 && o[0].hp_sum != o[1].hp_sum) {
            fprintf(stderr, "bench pool: pooled and unpooled scenes differ\n");
            rc = 1;
        }
    }
    unlink(path);
    rmdir(dir);
    if (rc != 0) {
        fprintf(stderr, "bench pool: the scene failed\n");
        return 1;
    }
    bench_result_t res = {.name = "pool"};
    double b0 = bench_median(bpe[0], (size_t)reps), b1 = bench_median(bpe[1], (size_t)reps);
    double e0 = bench_median(eps[0], (size_t)reps), e1 = bench_median(eps[1], (size_t)reps);
    bench_figure(&res, "lua_bytes_per_event_new_table", b0);
    bench_figure(&res, "lua_bytes_per_event_pooled", b1);
    bench_figure(&res, "events_per_s_new_table", e0);
    bench_figure(&res, "events_per_s_pooled", e1);
    bench_ratio(&res, "bytes_new_vs_pooled", b1 > 0 ? b0 / b1 : 0);
    bench_ratio(&res, "events_per_s_pooled_vs_new", e0 > 0 ? e1 / e0 : 0);
    bench_report(ctx, &res);
    return 0;
}
