/* test_allocator.c - ljs_allocator_set: every C-side block goes through the
 * host's hooks and comes back to them, and a hook that fails at any point
 * gives errors, never a crash or a leak. */
#include "tests/support.h"

#include <ljs.h>
#include <stdatomic.h>
#include <string.h>

static char dir[64];
static char path[128];

/* A thread-safe counting allocator that can fail its Nth call. */
static atomic_long allocs, frees, reallocs, nth, failed;
static atomic_int fail_all; /* every allocation fails while set */

static void *hook_alloc(void *ud, size_t size, size_t align)
{
    (void)ud;
    if (atomic_load(&fail_all))
        return NULL;
    if (atomic_fetch_add(&nth, 1) + 1 == atomic_load(&failed)) {
        atomic_store(&failed, -1); /* fail once */
        return NULL;
    }
    void *p = align <= _Alignof(max_align_t) ? malloc(size) : aligned_alloc(align, size);
    if (p != NULL)
        atomic_fetch_add(&allocs, 1);
    return p;
}

static void *hook_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (atomic_load(&fail_all))
        return NULL;
    atomic_fetch_add(&reallocs, 1);
    return realloc(ptr, size);
}

static void hook_free(void *ud, void *ptr)
{
    (void)ud;
    atomic_fetch_add(&frees, 1);
    free(ptr);
}

static const ljs_allocator_t hooks = {hook_alloc, hook_realloc, hook_free, NULL};

static void reset(long fail_at)
{
    atomic_store(&allocs, 0);
    atomic_store(&frees, 0);
    atomic_store(&reallocs, 0);
    atomic_store(&nth, 0);
    atomic_store(&failed, fail_at);
}

static const char *src = "return { fields = { x = 0.0, n = 0 }, tags = { 'crowd' },\n"
                         "  update = function(self, dt)\n"
                         "    self.x = self.x + dt\n"
                         "    if self.n % 3 == 0 then send(self.id, 'poke', { d = 1, why = 'tick' }) end\n"
                         "    if self.n == 2 then spawn('crowd', { x = 1.0 }) end\n"
                         "    if self.n % 4 == 1 then log('n=' .. self.n) end\n"
                         "  end,\n"
                         "  on_poke = function(self, p) self.n = self.n + p.d end }\n";

static void count_line(void *ud, const ljs_log_line_t *line)
{
    (void)ud;
    (void)line;
}

/* Everything a frame loop does that allocates C-side: create, load, spawn,
 * frames with events, queries, console, a snapshot, destroy. Any step may
 * fail (with a fault injected); none may crash, and destroy frees all.
 * Returns 1 if every step succeeded. */
static int scene(unsigned workers)
{
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.batch = 4;
    ljs_runtime_t *rt = NULL;
    if (ljs_runtime_create(&cfg, &rt) != LJS_OK)
        return 0;
    int ok = 1;
    ljs_script_t s;
    if (ljs_script_load(rt, path, &s) != LJS_OK) {
        ljs_runtime_destroy(rt);
        return 0;
    }
    for (int i = 0; i < 40; i++) {
        ljs_entity_t e;
        if (ljs_entity_create(rt, &e) != LJS_OK || ljs_script_attach(rt, e, s) != LJS_OK)
            ok = 0;
    }
    for (int f = 0; f < 4; f++)
        if (ljs_frame(rt, 1.0 / 60) != LJS_OK)
            ok = 0;
    const char *tags[] = {"crowd"};
    const ljs_query_t q = {tags, 1, NULL, 0};
    const ljs_entity_t *ents;
    size_t n;
    if (ljs_query(rt, &q, &ents, &n) != LJS_OK || n == 0)
        ok = 0;
    void *snap = NULL;
    size_t len = 0;
    if (ljs_world_save(rt, &snap, &len) != LJS_OK)
        ok = 0;
    ljs_world_free(snap);
    ljs_console_drain(rt, count_line, NULL);
    ljs_runtime_destroy(rt);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    ljs_test_tmpdir(dir, sizeof dir, "allocator");
    snprintf(path, sizeof path, "%s/crowd.lua", dir);
    ljs_test_write(path, src);
    assert_int_equal(ljs_allocator_live(), 0);
    assert_int_equal(ljs_allocator_set(&hooks), LJS_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(ljs_allocator_set(NULL), LJS_OK);
    ljs_test_rmtree(dir);
    return 0;
}

static void test_allocator_every_block_goes_through_the_hooks_and_comes_back(void **state)
{
    (void)state;
    for (size_t i = 0; i < LJS_TEST_NWORKER_COUNTS; i++) {
        reset(0);
        assert_true(scene(ljs_test_worker_counts[i]));
        /* World columns, scheduler, queues, cache, console, snapshot. */
        assert_true(atomic_load(&allocs) > 50);
        assert_int_equal(atomic_load(&frees), atomic_load(&allocs));
        assert_int_equal(ljs_allocator_live(), 0);
    }
}

static void test_allocator_cannot_change_while_blocks_are_live(void **state)
{
    (void)state;
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    assert_true(ljs_allocator_live() > 0);
    assert_int_equal(ljs_allocator_set(NULL), LJS_EBUSY);
    assert_non_null(strstr(ljs_last_error(), "C-side blocks"));
    ljs_runtime_destroy(rt);
    ljs_allocator_t half = {hook_alloc, NULL, hook_free, NULL};
    assert_int_equal(ljs_allocator_set(&half), LJS_EINVAL);
    assert_int_equal(ljs_allocator_set(&hooks), LJS_OK);
}

/* Fail the Kth allocation for K spread over a whole scene: each run must
 * end without a crash (ASan build: without a bad access) and give every
 * block back. */
static void test_allocator_a_failing_hook_never_crashes_or_leaks(void **state)
{
    (void)state;
    reset(0);
    assert_true(scene(2));
    long total = atomic_load(&nth);
    long step = total / (200 / LJS_TEST_SCALE) + 1;
    int failures_seen = 0;
    for (long k = 1; k <= total; k += step) {
        reset(k);
        failures_seen += !scene(2);
        assert_int_equal(atomic_load(&frees), atomic_load(&allocs));
        assert_int_equal(ljs_allocator_live(), 0);
    }
    print_message("allocations in a scene: %ld, runs: %ld, runs with a failed step: %d\n", total,
                  (total + step - 1) / step, failures_seen);
    assert_true(failures_seen > 0);
}

/* Frames that run out of C-side memory (every allocation refused while
 * they run, with a world that grows every frame) say why in
 * ljs_last_error, lose no entity, and the runtime keeps going: the next
 * frame, with memory back, succeeds. */
static const char *grow_src = "return { fields = { n = 0 }, update = function(self)\n"
                              "  self.n = self.n + 1\n"
                              "  if self.n == 1 then spawn('grow', {}) end\n"
                              "  send(self.id, 'poke', { n = self.n })\n"
                              "end, on_poke = function(self, p) end }\n";

static void test_allocator_a_failed_frame_explains_itself_and_the_next_one_runs(void **state)
{
    (void)state;
    reset(0);
    char gpath[160];
    snprintf(gpath, sizeof gpath, "%s/grow.lua", dir);
    ljs_test_write(gpath, grow_src);
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    cfg.batch = 4;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(rt, gpath, &s), LJS_OK);
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    int failed_frames = 0;
    for (int f = 0; f < 12; f++) {
        uint32_t before = ljs_entity_count(rt);
        atomic_store(&fail_all, 1);
        int rc = ljs_frame(rt, 1.0 / 60);
        atomic_store(&fail_all, 0);
        if (rc != LJS_OK) {
            failed_frames++;
            if (ljs_last_error()[0] == '\0')
                fail_msg("ljs_frame returned %s with no ljs_last_error()", ljs_errname(rc));
            print_message("frame %d: %s: %s\n", f, ljs_errname(rc), ljs_last_error());
        }
        assert_true(ljs_entity_count(rt) >= before);
        assert_int_equal(ljs_frame(rt, 1.0 / 60), LJS_OK);
    }
    assert_true(failed_frames > 0);
    ljs_runtime_destroy(rt);
    assert_int_equal(ljs_allocator_live(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocator_every_block_goes_through_the_hooks_and_comes_back),
        cmocka_unit_test(test_allocator_cannot_change_while_blocks_are_live),
        cmocka_unit_test(test_allocator_a_failing_hook_never_crashes_or_leaks),
        cmocka_unit_test(test_allocator_a_failed_frame_explains_itself_and_the_next_one_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
