/* support.h - helpers shared by the cmocka tests. */
#ifndef LJS_TESTS_SUPPORT_H
#define LJS_TESTS_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

/* Clear every LJS_* variable a test might inherit from the environment. */
static inline void ljs_test_clear_env(void)
{
    static const char *const vars[] = {
        "LJS_WORKERS",       "LJS_STATE_MEM_MB",      "LJS_SPIN",  "LJS_BATCH",          "LJS_CONSOLE_LINES",
        "LJS_SCRIPT_BUDGET", "LJS_SCRIPT_TIMEOUT_MS", "LJS_CACHE", "LJS_STRIP_BYTECODE", "LJS_CACHE_MAX_MB",
        "LJS_CACHE_DIR"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

#endif
