/* test_runtime.c - runtime lifecycle: a Lua state per worker, on its thread. */
#include "tests/support.h"

#include "runtime/runtime.h"

#include <ljs.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void test_runtime_creates_one_state_per_worker(void **state)
{
    static const unsigned counts[] = {1, 2, 4, 8, 64};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        ljs_config_t cfg;
        ljs_runtime_t *rt = NULL;
        assert_int_equal(ljs_config_init(&cfg), LJS_OK);
        cfg.workers = counts[i];
        assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
        assert_non_null(rt);
        assert_int_equal(ljs_runtime_config(rt)->workers, counts[i]);
        for (unsigned w = 0; w < counts[i]; w++) {
            ljs_state_memory_t m;
            assert_int_equal(ljs_state_memory(rt, w, &m), LJS_OK);
            assert_true(m.current_bytes > 0);
            assert_true(m.peak_bytes >= m.current_bytes);
            assert_int_equal(m.limit_bytes, (uint64_t)cfg.state_mem_mb << 20);
            assert_non_null(rt->workers[w].L);
        }
        ljs_state_memory_t m;
        assert_int_equal(ljs_state_memory(rt, counts[i], &m), LJS_EINVAL);
        ljs_runtime_destroy(rt);
    }
}

static void test_runtime_default_workers_is_online_cpus(void **state)
{
    ljs_runtime_t *rt = NULL;
    assert_int_equal(ljs_runtime_create(NULL, &rt), LJS_OK);
    assert_true(ljs_runtime_config(rt)->workers >= 1);
    ljs_runtime_destroy(rt);
    ljs_runtime_destroy(NULL);
}

static void test_runtime_too_small_memory_limit_fails_cleanly(void **state)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt = NULL;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 4;
    cfg.state_mem_mb = 0; /* out of range */
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_EINVAL);
    assert_non_null(strstr(ljs_last_error(), "LJS_STATE_MEM_MB"));
    assert_null(rt);
    assert_int_equal(ljs_runtime_create(&cfg, NULL), LJS_EINVAL);
}

typedef struct foreign_s {
    ljs_runtime_t *rt;
    ljs_entity_t e;
    int create, frame, get, set, destroy, stats, alive, save;
    uint32_t count;
    size_t drained;
    char msg[512];
} foreign_t;

static void never_called(void *ud, const ljs_log_line_t *line)
{
    (void)line;
    ++*(int *)ud;
}

/* Every call here is owner-only; the thread did not create the runtime. */
static void *foreign_calls(void *arg)
{
    foreign_t *f = arg;
    ljs_entity_t e;
    ljs_stats_t st;
    double v;
    int calls = 0;
    f->create = ljs_entity_create(f->rt, &e);
    snprintf(f->msg, sizeof f->msg, "%s", ljs_last_error()); /* thread-local: read it here */
    f->frame = ljs_frame(f->rt, 1.0 / 60);
    f->get = ljs_field_get_number(f->rt, f->e, "x", &v);
    f->set = ljs_field_set_number(f->rt, f->e, "x", 2.0);
    f->destroy = ljs_entity_destroy(f->rt, f->e);
    f->stats = ljs_stats_get(f->rt, &st);
    f->alive = ljs_entity_alive(f->rt, f->e);
    void *snap = NULL;
    size_t len = 0;
    f->save = ljs_world_save(f->rt, &snap, &len);
    f->count = ljs_entity_count(f->rt);
    f->drained = ljs_console_drain(f->rt, never_called, &calls) + (size_t)calls;
    ljs_runtime_destroy(f->rt); /* refused: the owner destroys it below */
    return NULL;
}

/* An owner-only function called from another thread is an error
 * (LJS_EBADTHREAD, a message naming the function), in every build, and
 * changes nothing: the owner then finds the world as it left it. */
static void test_runtime_owner_only_calls_from_another_thread_fail(void **state)
{
    ljs_config_t cfg;
    foreign_t f;
    memset(&f, 0, sizeof f);
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    assert_int_equal(ljs_runtime_create(&cfg, &f.rt), LJS_OK);
    assert_int_equal(ljs_field_declare(f.rt, "x", LJS_TNUMBER), LJS_OK);
    assert_int_equal(ljs_entity_create(f.rt, &f.e), LJS_OK);
    assert_int_equal(ljs_field_set_number(f.rt, f.e, "x", 1.0), LJS_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, foreign_calls, &f), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(f.create, LJS_EBADTHREAD);
    assert_non_null(strstr(f.msg, "ljs_entity_create: called from a thread that is not the runtime's owner"));
    assert_int_equal(f.frame, LJS_EBADTHREAD);
    assert_int_equal(f.get, LJS_EBADTHREAD);
    assert_int_equal(f.set, LJS_EBADTHREAD);
    assert_int_equal(f.destroy, LJS_EBADTHREAD);
    assert_int_equal(f.stats, LJS_EBADTHREAD);
    assert_int_equal(f.alive, 0);
    assert_int_equal(f.save, LJS_EBADTHREAD);
    assert_int_equal(f.count, 0);
    assert_int_equal(f.drained, 0);
    assert_string_equal(ljs_errname(LJS_EBADTHREAD), "LJS_EBADTHREAD");
    /* Nothing changed; the owner still runs everything. */
    double x = 0;
    assert_int_equal(ljs_entity_alive(f.rt, f.e), 1);
    assert_int_equal(ljs_entity_count(f.rt), 1);
    assert_int_equal(ljs_frame_count(f.rt), 0);
    assert_int_equal(ljs_field_get_number(f.rt, f.e, "x", &x), LJS_OK);
    assert_true(x == 1.0);
    assert_int_equal(ljs_frame(f.rt, 1.0 / 60), LJS_OK);
    ljs_runtime_destroy(f.rt);
}

/* Messages name entities as index:generation (ljs.h's LJS_ENTITY_FMT), not
 * as the raw 64-bit handle: slot 0 reused once is "0:2". */
static void test_runtime_messages_print_entities_as_index_generation(void **state)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt = NULL;
    ljs_entity_t a, b;
    char buf[64];
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 1;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    assert_int_equal(ljs_entity_create(rt, &a), LJS_OK);
    assert_int_equal(ljs_entity_destroy(rt, a), LJS_OK);
    assert_int_equal(ljs_entity_create(rt, &b), LJS_OK);
    assert_int_equal(LJS_ENTITY_INDEX(b.id), LJS_ENTITY_INDEX(a.id));
    assert_int_equal(LJS_ENTITY_GENERATION(b.id), LJS_ENTITY_GENERATION(a.id) + 1);
    snprintf(buf, sizeof buf, "entity " LJS_ENTITY_FMT, LJS_ENTITY_ARGS(b.id));
    assert_string_equal(buf, "entity 0:2");
    assert_int_equal(ljs_entity_destroy(rt, a), LJS_ENOENT);
    assert_string_equal(ljs_last_error(), "entity 0:1 is not alive");
    double v;
    assert_int_equal(ljs_field_get_number(rt, b, "nope", &v), LJS_ENOENT);
    ljs_runtime_destroy(rt);
}

int main(void)
{
    ljs_test_clear_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_creates_one_state_per_worker),
        cmocka_unit_test(test_runtime_default_workers_is_online_cpus),
        cmocka_unit_test(test_runtime_too_small_memory_limit_fails_cleanly),
        cmocka_unit_test(test_runtime_owner_only_calls_from_another_thread_fail),
        cmocka_unit_test(test_runtime_messages_print_entities_as_index_generation),
    };
    return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
