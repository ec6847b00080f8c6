/* test_gc_policy.c - GC off the frame's critical path (the owner never
 * waits for a worker's GC step, and a worker never runs a batch inside
 * one), managed memory bounded by allocation rather than time (with CPU
 * burners beside it), scripts' collectgarbage unable to change the policy
 * from any place script code runs, and frames' results independent of the
 * GC mode and the worker count. */
#include "tests/support.h"

#include <ljs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- CPU burners: threads that spin beside timing-sensitive tests ---- */

typedef struct burners_s {
    pthread_t t[4];
    int n;
    atomic_int stop;
} burners_t;

static void *burn(void *p)
{
    burners_t *b = p;
    volatile uint64_t x = 0;
    while (!atomic_load_explicit(&b->stop, memory_order_relaxed))
        x++;
    return NULL;
}

static void burners_start(burners_t *b, int n)
{
    atomic_init(&b->stop, 0);
    b->n = n;
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&b->t[i], NULL, burn, b), 0);
}

static void burners_stop(burners_t *b)
{
    atomic_store(&b->stop, 1);
    for (int i = 0; i < b->n; i++)
        pthread_join(b->t[i], NULL);
}

/* ---- scene: a live cache per state and garbage per entity per frame ---- */

static const char garbage_fmt[] =
    "local N, G = %u, %u\n"
    "local cache = {}\n"
    "for i = 1, N do cache[i] = { i, tostring(i) } end\n"
    "return { fields = { acc = 0 },\n"
    "  update = function(self)\n"
    "    local t = {}\n"
    "    for i = 1, G do t[i] = { i, cache[(self.id * 7 + i) %% N + 1][2] .. i } end\n"
    "    self.acc = self.acc + #t[G][2]\n"
    "  end }\n";

typedef struct scene_s {
    char dir[64];
    ljs_runtime_t *rt;
    ljs_script_t s;
} scene_t;

static void scene_make(scene_t *sc, const ljs_config_t *cfg, uint32_t cache_n, uint32_t garbage, int entities)
{
    char path[128], src[sizeof garbage_fmt + 32];
    ljs_test_tmpdir(sc->dir, sizeof sc->dir, "gcpol");
    snprintf(path, sizeof path, "%s/garbage.lua", sc->dir);
    snprintf(src, sizeof src, garbage_fmt, cache_n, garbage);
    ljs_test_write(path, src);
    sc->rt = ljs_test_runtime(cfg);
    assert_int_equal(ljs_script_load(sc->rt, path, &sc->s), LJS_OK);
    for (int i = 0; i < entities; i++) {
        ljs_entity_t e;
        assert_int_equal(ljs_entity_create(sc->rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(sc->rt, e, sc->s), LJS_OK);
    }
}

static void scene_free(scene_t *sc)
{
    ljs_runtime_destroy(sc->rt);
    ljs_test_rmtree(sc->dir);
}

static uint64_t state_bytes(ljs_runtime_t *rt, uint32_t w, int peak)
{
    ljs_state_memory_t m;
    assert_int_equal(ljs_state_memory(rt, w, &m), LJS_OK);
    return peak ? m.peak_bytes : m.current_bytes;
}

/* ---- the owner never waits for a worker's GC ---- */

#define MAXW 8

/* Profiler hooks: block the victim worker's next GC step until released,
 * and catch any batch that begins on a worker inside its own GC step. */
typedef struct probe_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t victim;
    int armed, blocked, release;
    int in_gc[MAXW];
    int batch_in_gc;
    uint64_t victim_batches;
} probe_t;

static void p_gc_begin(void *ud, uint32_t w)
{
    probe_t *p = ud;
    pthread_mutex_lock(&p->mu);
    p->in_gc[w] = 1;
    if (w == p->victim && p->armed) {
        p->armed = 0;
        p->blocked = 1;
        pthread_cond_broadcast(&p->cv);
        while (!p->release)
            pthread_cond_wait(&p->cv, &p->mu);
        p->blocked = 0;
    }
    pthread_mutex_unlock(&p->mu);
}

static void p_gc_end(void *ud, uint32_t w)
{
    probe_t *p = ud;
    pthread_mutex_lock(&p->mu);
    p->in_gc[w] = 0;
    pthread_mutex_unlock(&p->mu);
}

static void p_batch_begin(void *ud, uint32_t w, ljs_batch_kind_t kind, const char *script, uint32_t count)
{
    (void)kind;
    (void)script;
    (void)count;
    probe_t *p = ud;
    pthread_mutex_lock(&p->mu);
    if (p->in_gc[w])
        p->batch_in_gc++;
    if (w == p->victim)
        p->victim_batches++;
    pthread_mutex_unlock(&p->mu);
}

static void owner_does_not_wait(uint32_t workers, int nburners)
{
    burners_t b;
    probe_t p = {.victim = workers - 1};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.watch = 0;
    cfg.batch = 16; /* many batches: the victim steals some whenever it runs */
    scene_t sc;
    scene_make(&sc, &cfg, 2000, 8, 600);
    ljs_profiler_t prof = {
        .gc_begin = p_gc_begin, .gc_end = p_gc_end, .batch_begin = p_batch_begin, .ud = &p};
    assert_int_equal(ljs_profiler_set(sc.rt, &prof), LJS_OK);
    burners_start(&b, nburners);
    for (int f = 0; f < 5; f++)
        assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
    pthread_mutex_lock(&p.mu);
    p.armed = 1;
    pthread_mutex_unlock(&p.mu);
    /* The frame queues the victim's background GC job (or the victim steps
     * while idle in it): either way it reaches gc_begin and blocks. */
    assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
    pthread_mutex_lock(&p.mu);
    while (!p.blocked)
        pthread_cond_wait(&p.cv, &p.mu);
    uint64_t batches0 = p.victim_batches;
    pthread_mutex_unlock(&p.mu);
    /* Frames go on while the victim sits in its GC step: were ljs_frame to
     * wait for it, this would hang (the test's TIMEOUT). */
    for (int f = 0; f < 10; f++)
        assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
    pthread_mutex_lock(&p.mu);
    assert_int_equal(p.blocked, 1);
    assert_int_equal(p.victim_batches, batches0); /* no batch on the victim inside its step */
    p.release = 1;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    for (int f = 0; f < 20; f++)
        assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
    burners_stop(&b);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(sc.rt, &st), LJS_OK);
    assert_int_equal(st.script_errors, 0);
    assert_int_equal(st.updates, 36u * 600u);
    pthread_mutex_lock(&p.mu);
    assert_int_equal(p.batch_in_gc, 0);
    pthread_mutex_unlock(&p.mu);
    scene_free(&sc);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
}

static void test_gc_owner_never_waits_for_a_workers_gc(void **state)
{
    (void)state;
    owner_does_not_wait(2, 0);
    owner_does_not_wait(4, 0);
    owner_does_not_wait(2, 2); /* with CPU burners beside it */
}

/* ---- managed memory is bounded by allocation, not by time ---- */

/* A budget of 10 us buys nothing on a heap of a few MB (a cycle takes
 * milliseconds), and the burners take the CPU the workers would use:
 * work paced by time would let memory grow by the garbage rate (~1 MB a
 * frame here) for ever. Paced by allocation, every state stays within a
 * few times its live heap. */
static void test_gc_managed_memory_bounded_by_debt_under_burners(void **state)
{
    (void)state;
    burners_t b;
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    cfg.watch = 0;
    cfg.gc_budget_us = 10;
    cfg.gc_full_s = 0;
    scene_t sc;
    scene_make(&sc, &cfg, 30000, 10, 1000);
    assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
    assert_int_equal(ljs_gc_collect(sc.rt), LJS_OK);
    uint64_t live[2], peak[2] = {0, 0};
    for (uint32_t w = 0; w < 2; w++)
        live[w] = state_bytes(sc.rt, w, 0);
    burners_start(&b, 2);
    const int frames = 300 / LJS_TEST_SCALE + 30;
    for (int f = 0; f < frames; f++) {
        assert_int_equal(ljs_frame(sc.rt, 0.0), LJS_OK);
        for (uint32_t w = 0; w < 2; w++) {
            uint64_t cur = state_bytes(sc.rt, w, 0);
            peak[w] = cur > peak[w] ? cur : peak[w];
        }
    }
    burners_stop(&b);
    for (uint32_t w = 0; w < 2; w++) {
        ljs_gc_stats_t st;
        assert_int_equal(ljs_gc_stats(sc.rt, w, &st), LJS_OK);
        print_message("worker %u: live %llu KiB, peak %llu KiB, %llu cycles, %llu steps, behind %llu\n", w,
                      (unsigned long long)(live[w] >> 10), (unsigned long long)(peak[w] >> 10),
                      (unsigned long long)st.cycles, (unsigned long long)st.steps,
                      (unsigned long long)st.behind);
        if (!(peak[w] < live[w] * 4 + (2u << 20)))
            fail_msg("worker %u: live %llu bytes, peak %llu over %d frames (cycles %llu, steps %llu)", w,
                     (unsigned long long)live[w], (unsigned long long)peak[w], frames,
                     (unsigned long long)st.cycles, (unsigned long long)st.steps);
    }
    uint64_t behind = 0;
    for (uint32_t w = 0; w < 2; w++) {
        ljs_gc_stats_t st;
        assert_int_equal(ljs_gc_stats(sc.rt, w, &st), LJS_OK);
        behind += st.behind;
    }
    assert_true(behind > 0); /* 10 us cannot pay the debt: counted (and warned) */
    scene_free(&sc);
}

/* ---- collectgarbage reads, never steers ---- */

/* probe() runs every option and returns 0 when each did what README says
 * (a no-op returning its documented value), else which one did not. */
static const char probe_fmt[] =
    "local MODE, MANAGED = '%s', %d\n"
    "local function calls()\n"
    "  return collectgarbage(), collectgarbage('collect'), collectgarbage('step', 1 << 30),\n"
    "    collectgarbage('stop'), collectgarbage('restart'), collectgarbage('setpause', 1000),\n"
    "    collectgarbage('setstepmul', 1), collectgarbage('generational', 10, 50),\n"
    "    collectgarbage('incremental', 100, 100, 13), collectgarbage('isrunning')\n"
    "end\n"
    "local function probe()\n"
    "  calls() -- the stack grows here if it must, not between a and b\n"
    "  local t = {} for i = 1, 2000 do t[i] = {} end t = nil\n"
    "  local a = collectgarbage('count')\n"
    "  if collectgarbage() ~= 0 then return 1 end\n"
    "  if collectgarbage('collect') ~= 0 then return 2 end\n"
    "  if collectgarbage('step', 1 << 30) ~= false then return 3 end\n"
    "  if collectgarbage('stop') ~= 0 then return 4 end\n"
    "  if collectgarbage('restart') ~= 0 then return 5 end\n"
    "  if collectgarbage('setpause', 1000) ~= 0 then return 6 end\n"
    "  if collectgarbage('setstepmul', 1) ~= 0 then return 7 end\n"
    "  if collectgarbage('generational', 10, 50) ~= MODE then return 8 end\n"
    "  if collectgarbage('incremental', 100, 100, 13) ~= MODE then return 9 end\n"
    "  if collectgarbage('isrunning') ~= true then return 10 end\n"
    "  local b = collectgarbage('count')\n"
    "  if type(a) ~= 'number' or a <= 0 then return 11 end\n"
    "  if b < a then return 12 end -- nothing was collected (the 2000 tables are garbage)\n"
    "  if pcall(collectgarbage, 'bogus') then return 13 end\n"
    "  if pcall(collectgarbage, 'step', 'x') then return 14 end\n"
    "  if MANAGED == 1 then -- 'restart' left the collector stopped in scripts\n"
    "    collectgarbage('restart')\n"
    "    local c = collectgarbage('count')\n"
    "    for i = 1, 20000 do local x = {} end\n"
    "    if collectgarbage('count') - c < 800 then return 15 end\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "local top = probe()\n"
    "return { fields = { top = -1, upd = -1, co = -1, hnd = -1, rel = -1 },\n"
    "  update = function(self)\n"
    "    self.top = top\n"
    "    self.upd = probe()\n"
    "    self.co = coroutine.wrap(probe)()\n"
    "  end,\n"
    "  on_ping = function(self) self.hnd = probe() end,\n"
    "  on_reload = function(self) self.rel = probe() end }\n";

static int64_t field_int(ljs_runtime_t *rt, ljs_entity_t e, const char *name)
{
    int64_t v = -2;
    assert_int_equal(ljs_field_get_integer(rt, e, name, &v), LJS_OK);
    return v;
}

static void probe_contexts(const char *mode, uint32_t workers)
{
    char dir[64], path[128], src[sizeof probe_fmt + 64];
    ljs_test_tmpdir(dir, sizeof dir, "gcprobe");
    snprintf(path, sizeof path, "%s/probe.lua", dir);
    snprintf(src, sizeof src, probe_fmt, strcmp(mode, "generational") ? "incremental" : "generational",
             !strcmp(mode, "managed"));
    ljs_test_write(path, src);
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.watch = 0;
    snprintf(cfg.gc_mode, sizeof cfg.gc_mode, "%s", mode);
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    ljs_entity_t e[8];
    for (int i = 0; i < 8; i++) {
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], s), LJS_OK);
    }
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ljs_send(rt, e[i], "ping", NULL, 0), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    assert_int_equal(ljs_script_reload(rt, s), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    static const char *const ctx[] = {"top", "upd", "co", "hnd", "rel"};
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 5; k++)
            if (field_int(rt, e[i], ctx[k]) != 0)
                fail_msg("%s, %u workers: probe in '%s' returned %lld", mode, workers, ctx[k],
                         (long long)field_int(rt, e[i], ctx[k]));
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
    assert_int_equal(st.script_errors, 0);
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

static void test_gc_collectgarbage_cannot_steer_from_any_context(void **state)
{
    (void)state;
    static const char *const modes[] = {"managed", "incremental", "generational"};
    for (int m = 0; m < 3; m++) {
        probe_contexts(modes[m], 1);
        probe_contexts(modes[m], 2);
    }
}

/* Hostile: every update tries to stop the collector, switch it to
 * generational, set a huge pause and spend a huge step, while making
 * ~1 MB of garbage a frame. Memory stays bounded in every mode (a stopped
 * collector would grow ~1 MB a frame), the managed policy's own steps go
 * on in short steps (no frame-long step paid for a script's 'step'), and
 * no script error. */
static const char hostile_src[] = "collectgarbage('stop')\n"
                                  "collectgarbage('generational')\n"
                                  "return { fields = { v = 0 },\n"
                                  "  update = function(self)\n"
                                  "    collectgarbage('stop')\n"
                                  "    collectgarbage('generational')\n"
                                  "    collectgarbage('setpause', 1000)\n"
                                  "    collectgarbage('setstepmul', 1)\n"
                                  "    collectgarbage('step', 1 << 40)\n"
                                  "    local t = {}\n"
                                  "    for i = 1, 40 do t[i] = { i, tostring(i) } end\n"
                                  "    self.v = self.v + #t\n"
                                  "  end }\n";

static void test_gc_hostile_script_cannot_stall_or_balloon(void **state)
{
    (void)state;
    static const char *const modes[] = {"managed", "incremental", "generational"};
    for (int m = 0; m < 3; m++) {
        char dir[64], path[128];
        ljs_test_tmpdir(dir, sizeof dir, "gchostile");
        snprintf(path, sizeof path, "%s/hostile.lua", dir);
        ljs_test_write(path, hostile_src);
        ljs_config_t cfg = ljs_test_config();
        cfg.workers = 2;
        cfg.watch = 0;
        snprintf(cfg.gc_mode, sizeof cfg.gc_mode, "%s", modes[m]);
        ljs_runtime_t *rt = ljs_test_runtime(&cfg);
        ljs_script_t s;
        assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
        for (int i = 0; i < 400; i++) {
            ljs_entity_t e;
            assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
            assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
        }
        const int frames = 200 / LJS_TEST_SCALE + 20;
        uint64_t peak = 0;
        for (int f = 0; f < frames; f++) {
            assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
            uint64_t sum = state_bytes(rt, 0, 0) + state_bytes(rt, 1, 0);
            peak = sum > peak ? sum : peak;
        }
        print_message("%s: peak %llu KiB over %d frames\n", modes[m], (unsigned long long)(peak >> 10),
                      frames);
        if (peak > (16u << 20))
            fail_msg("%s: %llu bytes at the peak over %d frames", modes[m], (unsigned long long)peak, frames);
        ljs_gc_stats_t st0, st1;
        assert_int_equal(ljs_gc_stats(rt, 0, &st0), LJS_OK);
        assert_int_equal(ljs_gc_stats(rt, 1, &st1), LJS_OK);
        if (!strcmp(modes[m], "managed"))
            assert_true(st0.cycles + st1.cycles > 0);
        else
            assert_int_equal(st0.steps + st1.steps, 0); /* still Lua's own collector */
        ljs_stats_t st;
        assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
        assert_int_equal(st.script_errors, 0);
        ljs_runtime_destroy(rt);
        ljs_test_rmtree(dir);
    }
}

/* ---- determinism: GC never changes a frame's results ---- */

static uint64_t digest_of(const char *mode, uint32_t workers)
{
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.watch = 0;
    cfg.batch = 32;
    snprintf(cfg.gc_mode, sizeof cfg.gc_mode, "%s", mode);
    scene_t sc;
    scene_make(&sc, &cfg, 3000, 6, 300);
    for (int f = 0; f < 30; f++)
        assert_int_equal(ljs_frame(sc.rt, 1.0 / 60), LJS_OK);
    uint64_t d = ljs_world_digest(sc.rt);
    scene_free(&sc);
    return d;
}

static void test_gc_digest_same_for_every_mode_and_worker_count(void **state)
{
    (void)state;
    static const char *const modes[] = {"managed", "incremental", "generational"};
    uint64_t ref = digest_of("managed", 1);
    for (int m = 0; m < 3; m++)
        for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
            uint64_t d = digest_of(modes[m], ljs_test_worker_counts[k]);
            if (d != ref)
                fail_msg("%s, %u workers: digest %016llx, managed 1 worker %016llx", modes[m],
                         ljs_test_worker_counts[k], (unsigned long long)d, (unsigned long long)ref);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_owner_never_waits_for_a_workers_gc),
        cmocka_unit_test(test_gc_managed_memory_bounded_by_debt_under_burners),
        cmocka_unit_test(test_gc_collectgarbage_cannot_steer_from_any_context),
        cmocka_unit_test(test_gc_hostile_script_cannot_stall_or_balloon),
        cmocka_unit_test(test_gc_digest_same_for_every_mode_and_worker_count),
    };
    return cmocka_run_group_tests_name("gc_policy", tests, NULL, NULL);
}
