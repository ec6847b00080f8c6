/* bench_host.c - case `host`: what calling the engine costs (issue 15).
 *
 * In one process, per call, a loop of `s = s + f(i, 2)`:
 * - a plain Lua function (the floor);
 * - a raw lua_CFunction (lua_tonumber x2, lua_pushnumber) in a single
 *   lua_State: what any Lua embedding pays;
 * - an ljs parallel host function (ljs_arg_number x2, ljs_ret_number),
 *   called from an entity's update on one worker.
 * Targets: parallel <= 2x the raw lua_CFunction. And a deferred call
 * (`audio.play(i)`), amortised over the frame including the owner-side
 * sort and dispatch: <= 150 ns. Each figure is the median of ctx->reps.
 *
 * The profiler hooks' price when unset is one branch per batch: the
 * frame time of a many-small-batches scene with hooks unset vs set (to
 * hooks that do nothing) shows it is lost in the noise. */
#include "bench/bench.h"

#include <lauxlib.h>
#include <ljs.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALLS_PER_ENTITY 20000

static int raw_add(lua_State *L)
{
    lua_pushnumber(L, lua_tonumber(L, 1) + lua_tonumber(L, 2));
    return 1;
}

static int host_add(ljs_call_t *c, void *ud)
{
    (void)ud;
    double a, b;
    if (ljs_arg_number(c, 1, &a) != LJS_OK || ljs_arg_number(c, 2, &b) != LJS_OK)
        return LJS_ETYPE;
    return ljs_ret_number(c, a + b);
}

static uint64_t played;
static int host_play(ljs_call_t *c, void *ud)
{
    (void)ud;
    int64_t i;
    if (ljs_arg_integer(c, 1, &i) != LJS_OK)
        return LJS_ETYPE;
    played += (uint64_t)i;
    return LJS_OK;
}

static const char loop_src[] = "local f = ...\n"
                               "local s = 0\n"
                               "for i = 1, %d do s = s + f(i, 2) end\n"
                               "return s\n";

/* ns per call of `f` (a Lua function when lua_f, else raw_add) in one
 * plain lua_State. */
static double single_state(int lua_f, int n)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return -1;
    luaL_openlibs(L);
    char src[256];
    snprintf(src, sizeof src, loop_src, n);
    double ns = -1;
    if (luaL_loadstring(L, src) == LUA_OK) {
        if (lua_f)
            (void)luaL_dostring(L, "return function(a, b) return a + b end");
        else
            lua_pushcfunction(L, raw_add);
        uint64_t t0 = bench_now_ns();
        if (lua_pcall(L, 1, 1, 0) == LUA_OK)
            ns = (double)(bench_now_ns() - t0) / n;
        bench_sink((uint64_t)lua_tonumber(L, -1));
    }
    lua_close(L);
    return ns;
}

typedef struct host_rt_s {
    ljs_runtime_t *rt;
    int entities;
} host_rt_t;

static int make(const bench_ctx_t *ctx, const char *path, unsigned workers, int entities, host_rt_t *out)
{
    (void)ctx;
    ljs_config_t cfg;
    ljs_script_t s;
    if (ljs_config_init(&cfg) != LJS_OK)
        return -1;
    cfg.workers = workers;
    cfg.watch = 0;
    cfg.batch = 1;
    if (ljs_runtime_create(&cfg, &out->rt) != LJS_OK)
        return -1;
    ljs_host_def_t add = {"phys.add", LJS_PARALLEL, host_add, NULL, NULL};
    ljs_host_def_t play = {"audio.play", LJS_DEFERRED, host_play, NULL, NULL};
    int rc = ljs_host_register(out->rt, &add) == LJS_OK && ljs_host_register(out->rt, &play) == LJS_OK &&
                     ljs_script_load(out->rt, path, &s) == LJS_OK
                 ? 0
                 : -1;
    for (int i = 0; i < entities && rc == 0; i++) {
        ljs_entity_t e;
        rc = ljs_entity_create(out->rt, &e) == LJS_OK && ljs_script_attach(out->rt, e, s) == LJS_OK ? 0 : -1;
    }
    out->entities = entities;
    if (rc != 0)
        fprintf(stderr, "bench host: %s\n", ljs_last_error());
    return rc;
}

/* ns per call over one frame (the frame's own cost included). */
static double frame_ns(host_rt_t *h, double calls)
{
    uint64_t t0 = bench_now_ns();
    if (ljs_frame(h->rt, 0.0) != LJS_OK)
        return -1;
    return (double)(bench_now_ns() - t0) / calls;
}

static void noop_batch(void *ud, uint32_t w, ljs_batch_kind_t k, const char *s, uint32_t n)
{
    (void)ud;
    (void)w;
    (void)k;
    (void)s;
    (void)n;
}

static void noop_end(void *ud, uint32_t w)
{
    (void)ud;
    (void)w;
}

int bench_host(const bench_ctx_t *ctx)
{
    char dir[64], par_path[128], def_path[128], empty_path[128], src[512];
    if (bench_tmpdir(dir, sizeof dir, "host") != 0)
        return 1;
    int n = ctx->quick ? CALLS_PER_ENTITY / 10 : CALLS_PER_ENTITY;
    snprintf(par_path, sizeof par_path, "%s/par.lua", dir);
    snprintf(def_path, sizeof def_path, "%s/def.lua", dir);
    snprintf(empty_path, sizeof empty_path, "%s/empty.lua", dir);
    snprintf(src, sizeof src,
             "return { fields = { s = 0.0 }, update = function(self)\n"
             "  local f, s = phys.add, 0\n"
             "  for i = 1, %d do s = s + f(i, 2) end\n"
             "  self.s = s end }\n",
             n);
    int rc = bench_write(par_path, src, strlen(src));
    snprintf(src, sizeof src,
             "return { fields = { s = 0.0 }, update = function(self)\n"
             "  local play = audio.play\n"
             "  for i = 1, %d do play(i) end end }\n",
             n);
    rc |= bench_write(def_path, src, strlen(src));
    snprintf(src, sizeof src,
             "return { fields = { x = 0.0 }, update = function(self) self.x = self.x + 1 end }\n");
    rc |= bench_write(empty_path, src, strlen(src));
    int reps = ctx->reps < 16 ? ctx->reps : 16;
    int ents = ctx->quick ? 4 : 20;
    double lua_ns[16], raw_ns[16], par_ns[16], def_ns[16], unset_ms[16], set_ms[16];
    host_rt_t par = {0}, def = {0}, pr = {0};
    if (rc == 0)
        rc = make(ctx, par_path, 1, ents, &par);
    if (rc == 0)
        rc = make(ctx, def_path, ctx->workers, ents, &def);
    if (rc == 0)
        rc = make(ctx, empty_path, ctx->workers, ctx->quick ? 20000 : 100000, &pr);
    for (int w = 0; w < 3 && rc == 0; w++) /* warm-up: buffers grow to size */
        rc = frame_ns(&par, 1) < 0 || frame_ns(&def, 1) < 0 || frame_ns(&pr, 1) < 0 ? -1 : 0;
    ljs_profiler_t hooks = {NULL, NULL, noop_batch, noop_end, NULL, NULL, NULL, NULL, NULL};
    for (int r = 0; r < reps && rc == 0; r++) {
        lua_ns[r] = single_state(1, n * ents);
        raw_ns[r] = single_state(0, n * ents);
        par_ns[r] = frame_ns(&par, (double)n * ents);
        def_ns[r] = frame_ns(&def, (double)n * ents);
        /* Frames alternate so drift hits both alike. */
        double a = 0, b = 0;
        for (int k = 0; k < 4 && rc == 0; k++) {
            a += frame_ns(&pr, 1e6);
            rc = ljs_profiler_set(pr.rt, &hooks) == LJS_OK ? 0 : -1;
            b += frame_ns(&pr, 1e6);
            rc |= ljs_profiler_set(pr.rt, NULL) == LJS_OK ? 0 : -1;
        }
        unset_ms[r] = a / 4;
        set_ms[r] = b / 4;
        if (lua_ns[r] < 0 || raw_ns[r] < 0 || par_ns[r] < 0 || def_ns[r] < 0)
            rc = -1;
    }
    ljs_stats_t st;
    if (rc == 0 && (ljs_stats_get(par.rt, &st) != LJS_OK || st.script_errors != 0 ||
                    ljs_stats_get(def.rt, &st) != LJS_OK || st.script_errors != 0 || played == 0))
        rc = -1;
    ljs_runtime_destroy(par.rt);
    ljs_runtime_destroy(def.rt);
    ljs_runtime_destroy(pr.rt);
    unlink(par_path);
    unlink(def_path);
    unlink(empty_path);
    rmdir(dir);
    if (rc != 0) {
        fprintf(stderr, "bench host: the scene failed\n");
        return 1;
    }
    bench_result_t res = {.name = "host"};
    double l = bench_median(lua_ns, (size_t)reps), rw = bench_median(raw_ns, (size_t)reps);
    double p = bench_median(par_ns, (size_t)reps), d = bench_median(def_ns, (size_t)reps);
    double u = bench_median(unset_ms, (size_t)reps), s = bench_median(set_ms, (size_t)reps);
    bench_figure(&res, "lua_function_ns", l);
    bench_figure(&res, "raw_cfunction_ns", rw);
    bench_figure(&res, "parallel_call_ns", p);
    bench_figure(&res, "deferred_call_ns", d);
    bench_figure(&res, "parallel_over_raw", rw > 0 ? p / rw : 0);
    bench_figure(&res, "frame_ms_hooks_unset", u);
    bench_figure(&res, "frame_ms_hooks_set", s);
    bench_ratio(&res, "raw_vs_parallel", p > 0 ? rw / p : 0);
    bench_ratio(&res, "lua_vs_parallel", p > 0 ? l / p : 0);
    bench_ratio(&res, "hooks_set_vs_unset", u > 0 ? s / u : 0);
    bench_report(ctx, &res);
    return 0;
}
