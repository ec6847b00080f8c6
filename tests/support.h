/* support.h - helpers shared by the cmocka tests. */
#ifndef LJS_TESTS_SUPPORT_H
#define LJS_TESTS_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>

/* Sanitizers slow everything down 5-20x: scale loop counts with this. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LJS_TEST_SCALE 10
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LJS_TEST_SCALE 10
#endif
#endif
#ifndef LJS_TEST_SCALE
#define LJS_TEST_SCALE 1
#endif

/* Worker counts every multi-threaded test runs with. */
static const unsigned ljs_test_worker_counts[] = {1, 2, 4, 8};
#define LJS_TEST_NWORKER_COUNTS (sizeof ljs_test_worker_counts / sizeof ljs_test_worker_counts[0])

/* Clear every LJS_* variable a test might inherit from the environment
 * (generated from the config tables, so a new knob is never missed). */
static inline void ljs_test_clear_env(void)
{
#define LJS__TEST_UNSET(type, field, env, def, lo, hi, help) unsetenv(env);
    LJS_CONFIG_MAP(LJS__TEST_UNSET)
#undef LJS__TEST_UNSET
#define LJS__TEST_UNSET_STR(field, env, def, maxlen, help) unsetenv(env);
    LJS_CONFIG_STR_MAP(LJS__TEST_UNSET_STR)
#undef LJS__TEST_UNSET_STR
}

/* Remove a test's temporary directory and everything in it. */
static inline void ljs_test_rmtree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The setup most fixtures share: a private temporary directory
 * (/tmp/ljs-<tag>-XXXXXX, `dir` holds at least 64 bytes; removed with
 * ljs_test_rmtree) and a config with the defaults and no inherited LJS_*
 * variable, which the fixture adjusts before ljs_test_runtime. */
static inline void ljs_test_tmpdir(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/ljs-%s-XXXXXX", tag);
    assert_non_null(mkdtemp(dir));
}

static inline ljs_config_t ljs_test_config(void)
{
    ljs_config_t cfg;
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    return cfg;
}

/* For tests that read the console exactly. The managed GC logs a line when
 * a state-frame's GC takes longer than LJS_GC_BUDGET_US (gc.c warn_behind),
 * which depends on the machine's speed: under a sanitizer on a loaded
 * machine it appears. A budget no wall clock reaches keeps it out; the GC
 * is still paced by allocation debt, so memory stays bounded. */
static inline void ljs_test_no_gc_warning(ljs_config_t *cfg)
{
    cfg->gc_budget_us = 1000000;
}

static inline ljs_runtime_t *ljs_test_runtime(const ljs_config_t *cfg)
{
    ljs_runtime_t *rt = NULL;
    int rc = ljs_runtime_create(cfg, &rt);
    if (rc != LJS_OK)
        fail_msg("ljs_runtime_create: %s: %s", ljs_errname(rc), ljs_last_error());
    return rt;
}

/* Write `src` to `path`, replacing it (an in-place write). */
static inline void ljs_test_write(const char *path, const char *src)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    assert_int_equal(fclose(f), 0);
}

#endif
