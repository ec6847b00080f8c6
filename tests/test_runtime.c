/* test_runtime.c - runtime lifecycle: a Lua state per worker, on its thread. */
#include "tests/support.h"

#include "runtime/runtime.h"

#include <ljs.h>
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

int main(void)
{
    ljs_test_clear_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_creates_one_state_per_worker),
        cmocka_unit_test(test_runtime_default_workers_is_online_cpus),
        cmocka_unit_test(test_runtime_too_small_memory_limit_fails_cleanly),
    };
    return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
