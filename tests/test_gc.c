/* test_gc.c - per-state GC policy: the managed collector keeps a garbage-
 * heavy scene's memory bounded within its budget, full collections are
 * spread so two states never collect fully in the same frame, and Lua's
 * own modes can be chosen instead. */
#include "tests/support.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *garbage_src = "return { fields = { v = 0.0 },\n"
                                 "  update = function(self)\n"
                                 "    local t = {}\n"
                                 "    for i = 1, 20 do t[i] = { i, tostring(i) } end\n"
                                 "    self.v = self.v + #t\n"
                                 "  end }\n";

/* LJS_GC_BUDGET_US for the next scene_make (0: the default). */
static uint32_t scene_budget_us;

typedef struct scene_s {
    char dir[64];
    ljs_runtime_t *rt;
} scene_t;

static void scene_make(scene_t *sc, const char *mode, uint32_t full_mb, uint32_t workers, int entities)
{
    ljs_config_t cfg;
    char path[128];
    strcpy(sc->dir, "/tmp/ljs-gc-XXXXXX");
    assert_non_null(mkdtemp(sc->dir));
    snprintf(path, sizeof path, "%s/garbage.lua", sc->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(garbage_src, f);
    fclose(f);
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = workers;
    cfg.watch = 0;
    snprintf(cfg.gc_mode, sizeof cfg.gc_mode, "%s", mode);
    cfg.gc_full_mb = full_mb;
    cfg.gc_full_s = 0;
    if (scene_budget_us)
        cfg.gc_budget_us = scene_budget_us;
    assert_int_equal(ljs_runtime_create(&cfg, &sc->rt), LJS_OK);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(sc->rt, path, &s), LJS_OK);
    for (int i = 0; i < entities; i++) {
        ljs_entity_t e;
        assert_int_equal(ljs_entity_create(sc->rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(sc->rt, e, s), LJS_OK);
    }
    unlink(path);
    rmdir(sc->dir);
}

static uint64_t lua_bytes(ljs_runtime_t *rt, uint32_t w)
{
    ljs_state_memory_t m;
    assert_int_equal(ljs_state_memory(rt, w, &m), LJS_OK);
    return m.current_bytes;
}

/* 500 entities x 20 small tables per frame (~1 MB of garbage a frame): the
 * managed collector keeps every state within a bound, step by step. */
static void test_gc_managed_keeps_memory_bounded_within_budget(void **state)
{
    scene_t sc;
    scene_make(&sc, "managed", 0, 2, 500);
    uint64_t early[2] = {0, 0}, peak[2] = {0, 0};
    const int frames = 400 / LJS_TEST_SCALE;
    for (int f = 0; f < frames; f++) {
        assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
        for (uint32_t w = 0; w < 2; w++) {
            uint64_t b = lua_bytes(sc.rt, w);
            if (f == 20)
                early[w] = b;
            if (f > 20 && b > peak[w])
                peak[w] = b;
        }
    }
    for (uint32_t w = 0; w < 2; w++) {
        ljs_gc_stats_t st;
        assert_int_equal(ljs_gc_stats(sc.rt, w, &st), LJS_OK);
        assert_true(st.steps > 0 && st.cycles > 0);
        assert_true(st.freed_bytes > 0);
        /* Bounded: no runaway growth after warm-up (a stopped collector
         * would grow by ~1 MB a frame). */
        if (!(peak[w] < early[w] * 4 + (4u << 20)))
            fail_msg("worker %u: %llu bytes at frame 20, peak %llu", w, (unsigned long long)early[w],
                     (unsigned long long)peak[w]);
        /* The bound on one frame's GC time (8x the budget plus Lua's atomic
         * phase) is wall time, which a loaded machine stretches at will
         * (seen: over 57 ms under ASan at load 16): it is measured by
         * `ljs-bench gc`, not asserted here. */
    }
    ljs_runtime_destroy(sc.rt);
}

/* Full collections past LJS_GC_FULL_MB, at most one state per frame. */
static void find_budget_warning(void *ud, const ljs_log_line_t *line)
{
    if (line->severity == LJS_LOG_WARN && strstr(line->text, "LJS_GC_BUDGET_US") != NULL)
        *(int *)ud = 1;
}

/* A budget far too small for the garbage rate: the collector cannot keep
 * up even at 8x, and a stat and one warning say so; frames keep running. */
static void test_gc_starved_budget_is_reported(void **state)
{
    (void)state;
    scene_t sc;
    scene_budget_us = 10;
    scene_make(&sc, "managed", 0, 2, 500);
    scene_budget_us = 0;
    for (int f = 0; f < 100; f++)
        assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
    uint64_t behind = 0;
    for (uint32_t w = 0; w < 2; w++) {
        ljs_gc_stats_t st;
        assert_int_equal(ljs_gc_stats(sc.rt, w, &st), LJS_OK);
        behind += st.behind;
    }
    assert_true(behind > 0);
    int warned = 0;
    ljs_console_drain(sc.rt, find_budget_warning, &warned);
    assert_true(warned);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(sc.rt, &st), LJS_OK);
    assert_int_equal(st.script_errors, 0);
    ljs_runtime_destroy(sc.rt);
}

/* Two states never collect fully in the same frame. Background GC runs
 * between frames and its counters lag, so the test checks the frame each
 * full collection names, not how many were seen after each ljs_frame,
 * and runs until 8 were seen however the scheduler spreads the jobs. */
static void test_gc_full_collections_are_spread_over_frames(void **state)
{
    (void)state;
    enum { WORKERS = 4, MAX_FRAMES = 2000 };
    scene_t sc;
    scene_make(&sc, "managed", 1, WORKERS, 4000);
    static uint32_t owner[MAX_FRAMES + 2]; /* worker + 1 that collected fully in a frame */
    memset(owner, 0, sizeof owner);
    uint64_t seen[WORKERS] = {0};
    uint64_t total = 0;
    for (int f = 0; f < MAX_FRAMES && total < 8; f++) {
        assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
        total = 0;
        for (uint32_t w = 0; w < WORKERS; w++) {
            ljs_gc_stats_t st;
            assert_int_equal(ljs_gc_stats(sc.rt, w, &st), LJS_OK);
            if (st.full != seen[w]) {
                assert_true(st.last_full_frame > 0 && st.last_full_frame <= MAX_FRAMES + 1);
                uint32_t *o = &owner[st.last_full_frame];
                if (*o != 0 && *o != w + 1)
                    fail_msg("workers %u and %u both collected fully in frame %llu", *o - 1, w,
                             (unsigned long long)st.last_full_frame);
                *o = w + 1;
                seen[w] = st.full;
            }
            total += seen[w];
        }
    }
    assert_true(total >= 8);
    ljs_runtime_destroy(sc.rt);
}

static void test_gc_lua_modes_can_be_chosen(void **state)
{
    static const char *const modes[] = {"generational", "incremental"};
    for (int m = 0; m < 2; m++) {
        scene_t sc;
        scene_make(&sc, modes[m], 0, 2, 500);
        for (int f = 0; f < 50; f++)
            assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
        ljs_gc_stats_t st;
        assert_int_equal(ljs_gc_stats(sc.rt, 0, &st), LJS_OK);
        assert_int_equal(st.steps, 0); /* Lua's own collector did the work */
        assert_true(lua_bytes(sc.rt, 0) < (64u << 20));
        ljs_runtime_destroy(sc.rt);
    }
}

/* Load n unpinned scripts, bind one entity each, run, unbind, wait out the
 * grace period, collect fully. Returns worker 0's Lua bytes afterwards. */
static uint64_t unload_cycle(ljs_runtime_t *rt, const char *dir, int n, int round)
{
    char path[160];
    ljs_entity_t *e = calloc((size_t)n, sizeof *e);
    assert_non_null(e);
    for (int i = 0; i < n; i++) {
        ljs_script_t s;
        snprintf(path, sizeof path, "%s/r%d_%04d.lua", dir, round, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f,
                "local big = {} for i = 1, 50 do big[i] = 'script %d row ' .. i end\n"
                "return { fields = { v%d = 0 }, update = function(self) self.v%d = #big end,\n"
                "  on_ping = function(self) end }\n",
                i, i, i);
        fclose(f);
        assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
        assert_int_equal(ljs_script_pin(rt, s, 0), LJS_OK);
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], s), LJS_OK);
        unlink(path);
    }
    for (int f = 0; f < 3; f++)
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    assert_true(lua_bytes(rt, 0) > 1000u * (uint64_t)n); /* they are loaded */
    for (int i = 0; i < n; i++)
        assert_int_equal(ljs_entity_destroy(rt, e[i]), LJS_OK);
    for (int f = 0; f < 8; f++) /* past LJS_UNLOAD_GRACE = 5 */
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    ljs_script_t gone;
    snprintf(path, sizeof path, "r%d_0000", round);
    assert_int_equal(ljs_script_find(rt, path, &gone), LJS_ENOENT);
    assert_int_equal(ljs_gc_collect(rt), LJS_OK);
    free(e);
    return lua_bytes(rt, 0);
}

/* 1,000 scripts loaded, bound and unbound, twice: once they sat unused for
 * the grace period they are unloaded everywhere. After the first round a
 * state keeps only its registry's array at its peak size (Lua never shrinks
 * a table's array part: 16 bytes per reference, 2 per script here); the
 * second round returns to within 5% of the first: nothing accumulates. */
/* One entity's update is slow, so with batch 1 one worker runs it while
 * the other has nothing left to do: that worker must step its own GC
 * instead of parking, within the same per-frame budget. */
static void test_gc_idle_workers_step_their_own_state(void **state)
{
    (void)state;
    static const char *src = "return { fields = { slow = false, v = 0.0 },\n"
                             "  update = function(self)\n"
                             "    if self.slow then local x = 0; for i = 1, 3000000 do x = x + i end end\n"
                             "    local t = {}\n"
                             "    for i = 1, 50 do t[i] = { i, tostring(i) } end\n"
                             "    self.v = self.v + #t\n"
                             "  end }\n";
    char dir[] = "/tmp/ljs-gcidle-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/slow.lua", dir);
    ljs_test_write(path, src);
    ljs_test_clear_env();
    ljs_config_t cfg;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.batch = 1;
    cfg.watch = 0;
    cfg.gc_budget_us = 2000;
    ljs_runtime_t *rt;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    for (int i = 0; i < 64; i++) {
        ljs_entity_t e;
        assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
        if (i == 0)
            assert_int_equal(ljs_field_set_boolean(rt, e, "slow", 1), LJS_OK);
    }
    uint64_t idle_steps = 0;
    for (int f = 0; f < 60; f++)
        assert_int_equal(ljs_frame(rt, 1.0 / 60), LJS_OK);
    for (uint32_t w = 0; w < 2; w++) {
        ljs_gc_stats_t st;
        assert_int_equal(ljs_gc_stats(rt, w, &st), LJS_OK);
        idle_steps += st.idle_steps;
        assert_true(st.idle_ms <= st.total_ms);
        /* Within the 2 ms per-frame budget, plus the one step that may start
         * just under it (slow and preemptible under sanitizers and load). */
        assert_true(st.idle_ms <= 60 * 2.0 * (LJS_TEST_SCALE > 1 ? 10.0 : 1.5));
    }
    assert_true(idle_steps > 0);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
    assert_int_equal(st.script_errors, 0);
    assert_int_equal(st.updates, 60 * 64);
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

static void test_gc_unused_scripts_unload_and_memory_returns(void **state)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    char dir[] = "/tmp/ljs-unload-XXXXXX";
    const int n = 1000 / LJS_TEST_SCALE;
    assert_non_null(mkdtemp(dir));
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.watch = 0;
    cfg.unload_grace = 5;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    assert_int_equal(ljs_gc_collect(rt), LJS_OK);
    uint64_t base = lua_bytes(rt, 0);
    uint64_t first = unload_cycle(rt, dir, n, 1);
    uint64_t second = unload_cycle(rt, dir, n, 2);
    /* Instance functions live in a table dropped with its last ref, so no
     * per-script residue stays behind (it was ~48 B/script in the registry). */
    if (first > base + 8u * (uint64_t)n + 4096 || second > first + first / 20)
        fail_msg("Lua bytes: %llu at the start, %llu after one round, %llu after two",
                 (unsigned long long)base, (unsigned long long)first, (unsigned long long)second);
    ljs_runtime_destroy(rt);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_managed_keeps_memory_bounded_within_budget),
        cmocka_unit_test(test_gc_full_collections_are_spread_over_frames),
        cmocka_unit_test(test_gc_lua_modes_can_be_chosen),
        cmocka_unit_test(test_gc_unused_scripts_unload_and_memory_returns),
        cmocka_unit_test(test_gc_idle_workers_step_their_own_state),
        cmocka_unit_test(test_gc_starved_budget_is_reported),
    };
    return cmocka_run_group_tests_name("gc", tests, NULL, NULL);
}
