/* test_require.c - sandboxed require(): modules inside the script root,
 * once per state, through the bytecode cache, with dependencies recorded. */
#include "tests/support.h"

#include "runtime/runtime.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fixture_s {
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    char sub[128];
    strcpy(fx->dir, "/tmp/ljs-require-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(sub, sizeof sub, "%s/lib", fx->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    ljs_test_clear_env();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ljs_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static const char *put(fixture_t *fx, const char *rel, const char *src)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fx->dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    return path;
}

static ljs_runtime_t *runtime(unsigned workers, int cache)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = workers;
    cfg.cache = (uint32_t)cache;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    return rt;
}

static double field_after_frame(ljs_runtime_t *rt, ljs_script_t s, int n)
{
    ljs_entity_t e[16];
    double v = 0, first = -1;
    for (int i = 0; i < n; i++) {
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], s), LJS_OK);
    }
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ljs_field_get_number(rt, e[i], "v", &v), LJS_OK);
        if (i == 0)
            first = v;
        assert_true(v == first); /* the same on whichever worker ran it */
    }
    return first;
}

static void test_require_loads_modules_once_per_state_on_every_worker(void **state)
{
    fixture_t *fx = *state;
    put(fx, "lib/vec.lua",
        "local V = {}\nfunction V.len(x, y) return math.sqrt(x * x + y * y) end\nreturn V\n");
    /* Module tables are read-only (frozen); a module keeps state in its own
     * locals, shared by every script of the state. */
    put(fx, "shared.lua",
        "local n = 0\nreturn { bump = function() n = n + 1 end, count = function() return n end }\n");
    const char *a = put(
        fx, "a.lua",
        "local S = require('shared')\nS.bump()\n"
        "local V = require('lib.vec')\n"
        "return { fields = { v = 0.0 }, update = function(self) self.v = V.len(3, 4) * S.count() end }\n");
    char apath[256];
    strcpy(apath, a);
    const char *b = put(fx, "b.lua",
                        "local S = require('shared')\nS.bump()\n"
                        "return { fields = { w = 0.0 } }\n");
    char bpath[256];
    strcpy(bpath, b);
    for (int cache = 0; cache <= 1; cache++) {
        for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
            ljs_runtime_t *rt = runtime(ljs_test_worker_counts[k], cache);
            ljs_script_t sa, sb;
            if (ljs_script_load(rt, apath, &sa) != LJS_OK)
                fail_msg("%s", ljs_last_error());
            assert_int_equal(ljs_script_load(rt, bpath, &sb), LJS_OK);
            /* shared ran once per state: both scripts saw the same table. */
            assert_true(field_after_frame(rt, sa, 16) == 10.0);
            /* Dependencies: a needs shared and lib/vec, b needs shared. */
            const ljs__script_t *ra = &rt->scripts[sa.id];
            assert_int_equal(ra->ndeps, 2);
            assert_non_null(strstr(ra->deps[0], "shared.lua"));
            assert_non_null(strstr(ra->deps[1], "lib/vec.lua"));
            assert_int_equal(rt->scripts[sb.id].ndeps, 1);
            ljs_runtime_destroy(rt);
        }
    }
}

static void test_require_refuses_names_outside_the_root(void **state)
{
    fixture_t *fx = *state;
    static const char *const bad[] = {"../etc/passwd", "/etc/passwd",    "a/b", "a..b", ".a", "a.", "",
                                      "1abc",          "lib.vec.lua.x y"};
    ljs_runtime_t *rt = runtime(2, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char src[256];
        ljs_script_t s;
        snprintf(src, sizeof src, "local M = require('%s')\nreturn {}\n", bad[i]);
        const char *p = put(fx, "bad.lua", src);
        assert_int_equal(ljs_script_load(rt, p, &s), LJS_ESCRIPT);
        if (strstr(ljs_last_error(), "bad module name") == NULL)
            fail_msg("'%s': %s", bad[i], ljs_last_error());
        assert_non_null(strstr(ljs_last_error(), "bad.lua:1:"));
    }
    ljs_runtime_destroy(rt);
}

static void test_require_reports_missing_broken_and_circular_modules(void **state)
{
    fixture_t *fx = *state;
    ljs_runtime_t *rt = runtime(2, 1);
    ljs_script_t s;
    const char *p = put(fx, "m1.lua", "local M = require('nope')\nreturn {}\n");
    assert_int_equal(ljs_script_load(rt, p, &s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "module not found"));
    put(fx, "lib/broken.lua", "local x = = 1\nreturn x\n");
    p = put(fx, "m2.lua", "local M = require('lib.broken')\nreturn {}\n");
    assert_int_equal(ljs_script_load(rt, p, &s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "lib/broken.lua:1:"));
    put(fx, "lib/c1.lua", "return require('lib.c2')\n");
    put(fx, "lib/c2.lua", "return require('lib.c1')\n");
    p = put(fx, "m3.lua", "local M = require('lib.c1')\nreturn {}\n");
    assert_int_equal(ljs_script_load(rt, p, &s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "circular require"));
    /* A failed module is not stuck as "loading": fixed, it loads. */
    put(fx, "lib/c2.lua", "return 2\n");
    p = put(fx, "m5.lua",
            "local M = require('lib.c1')\nreturn { fields = { v = 0.0 }, update = function(self) "
            "self.v = M end }\n");
    assert_int_equal(ljs_script_load(rt, p, &s), LJS_OK);
    assert_true(field_after_frame(rt, s, 2) == 2.0);
    /* The runtime goes on. */
    put(fx, "lib/ok.lua", "return 7\n");
    p = put(fx, "m4.lua",
            "local K = require('lib.ok')\n"
            "return { fields = { v = 0.0 }, update = function(self) self.v = K end }\n");
    assert_int_equal(ljs_script_load(rt, p, &s), LJS_OK);
    assert_true(field_after_frame(rt, s, 4) == 7.0);
    ljs_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_require_loads_modules_once_per_state_on_every_worker),
        T(test_require_refuses_names_outside_the_root),
        T(test_require_reports_missing_broken_and_circular_modules),
#undef T
    };
    return cmocka_run_group_tests_name("require", tests, NULL, NULL);
}
