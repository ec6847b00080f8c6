/* test_config.c - defaults, LJS_* overrides and their validation. */
#include "tests/support.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int setup(void **state)
{
    ljs_test_clear_env();
    return 0;
}

static void test_config_defaults_are_in_range(void **state)
{
    ljs_config_t cfg;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    assert_int_equal(cfg.workers, 0); /* 0 = online CPUs */
    assert_int_equal(cfg.state_mem_mb, 256);
    assert_int_equal(cfg.batch, 256);
    assert_string_equal(cfg.error, "");
    assert_int_equal(ljs_config_validate(&cfg), LJS_OK);
}

static void test_config_env_overrides_default(void **state)
{
    ljs_config_t cfg;
    setenv("LJS_WORKERS", "3", 1);
    setenv("LJS_STATE_MEM_MB", "64", 1);
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.state_mem_mb, 64);
    ljs_test_clear_env();
}

/* Every variable rejects junk, negatives, zero-when-forbidden and values
 * past its range, naming itself and the range in the message. */
static void check_rejected(const char *var, const char *value, const char *range)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt = NULL;
    ljs_test_clear_env();
    setenv(var, value, 1);
    assert_int_equal(ljs_config_init(&cfg), LJS_EINVAL);
    assert_non_null(strstr(cfg.error, var));
    assert_non_null(strstr(cfg.error, range));
    assert_non_null(strstr(ljs_last_error(), var));
    /* The runtime refuses such a config, and so does the NULL-config path. */
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_EINVAL);
    assert_null(rt);
    assert_non_null(strstr(ljs_last_error(), var));
    assert_int_equal(ljs_runtime_create(NULL, &rt), LJS_EINVAL);
    assert_null(rt);
    unsetenv(var);
}

static void test_config_bad_env_values_are_rejected_with_name_and_range(void **state)
{
    /* Spaces and '+' too: strtoull alone would take " 64", "64 " and "+64". */
    static const char *const junk[] = {"abc", "-1",  "1.5", "",     "12abc", "99999999999999999999999",
                                       " 64", "64 ", "+64", "\t64", "64\n"};
#define LJS__CHECK_VAR(type, field, env, def, lo, hi, help)              \
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)            \
        check_rejected(env, junk[i], #lo ".." #hi);                      \
    if ((lo) > 0)                                                        \
        check_rejected(env, "0", #lo ".." #hi);                          \
    {                                                                    \
        char big[32];                                                    \
        snprintf(big, sizeof big, "%llu", (unsigned long long)(hi) + 1); \
        check_rejected(env, big, #lo ".." #hi);                          \
    }
    LJS_CONFIG_MAP(LJS__CHECK_VAR)
#undef LJS__CHECK_VAR
}

/* LJS_WORKERS=0 is what the header and --help promise: one worker per
 * online CPU (the default spelled out). */
static void test_config_workers_zero_means_online_cpus(void **state)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt = NULL;
    check_rejected("LJS_WORKERS", "257", "0..256");
    setenv("LJS_WORKERS", "0", 1);
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    assert_int_equal(cfg.workers, 0);
    assert_string_equal(ljs_config_source(&cfg, "LJS_WORKERS"), "environment");
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(ljs_runtime_config(rt)->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    ljs_runtime_destroy(rt);
    ljs_test_clear_env();
}

typedef struct warnings_s {
    char text[8][256];
    int n;
} warnings_t;

static void keep_warning(void *ud, const ljs_log_line_t *line)
{
    warnings_t *w = ud;
    if (line->severity == LJS_LOG_WARN && w->n < 8)
        snprintf(w->text[w->n++], sizeof w->text[0], "%s", line->text);
}

/* A misspelt variable would otherwise be silently ignored: the runtime warns
 * about every LJS_* name that is no knob, with the closest knob name when
 * there is one, and says nothing about the knobs themselves. */
static void test_config_unknown_ljs_variables_are_warned_about(void **state)
{
    ljs_runtime_t *rt = NULL;
    ljs_config_t cfg;
    setenv("LJS_WORKER", "4", 1);
    setenv("LJS_GCMODE", "incremental", 1);
    setenv("LJS_QWERTYUIOPASDF", "1", 1);
    setenv("LJS_BATCH", "64", 1);
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 1;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    warnings_t w = {0};
    ljs_console_drain(rt, keep_warning, &w);
    ljs_runtime_destroy(rt);
    unsetenv("LJS_WORKER");
    unsetenv("LJS_GCMODE");
    unsetenv("LJS_QWERTYUIOPASDF");
    ljs_test_clear_env();
    int worker = 0, gcmode = 0, junk = 0;
    for (int i = 0; i < w.n; i++) {
        print_message("warning: %s\n", w.text[i]);
        assert_null(strstr(w.text[i], "LJS_BATCH:"));
        if (strstr(w.text[i], "LJS_WORKER: not an ljs variable") &&
            strstr(w.text[i], "did you mean LJS_WORKERS?"))
            worker++;
        if (strstr(w.text[i], "LJS_GCMODE: not an ljs variable") &&
            strstr(w.text[i], "did you mean LJS_GC_MODE?"))
            gcmode++;
        if (strstr(w.text[i], "LJS_QWERTYUIOPASDF: not an ljs variable") &&
            !strstr(w.text[i], "did you mean"))
            junk++;
    }
    assert_int_equal(worker, 1);
    assert_int_equal(gcmode, 1);
    assert_int_equal(junk, 1);
}

static void test_config_code_overrides_env_and_is_validated(void **state)
{
    ljs_config_t cfg;
    setenv("LJS_BATCH", "64", 1);
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    assert_int_equal(cfg.batch, 64);
    cfg.batch = 0;
    assert_int_equal(ljs_config_validate(&cfg), LJS_EINVAL);
    assert_non_null(strstr(ljs_last_error(), "LJS_BATCH"));
    ljs_test_clear_env();
}

static void test_config_string_knobs_are_checked(void **state)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt = NULL;
    setenv("LJS_GC_MODE", "aggressive", 1);
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_EINVAL);
    assert_null(rt);
    assert_non_null(strstr(ljs_last_error(), "LJS_GC_MODE"));
    assert_non_null(strstr(ljs_last_error(), "managed, generational, incremental"));
    char longdir[700];
    memset(longdir, 'd', sizeof longdir - 1);
    longdir[sizeof longdir - 1] = '\0';
    unsetenv("LJS_GC_MODE");
#define LJS__CHECK_TOO_LONG(field, env, def, maxlen, help)          \
    setenv(env, longdir, 1);                                        \
    assert_int_equal(ljs_config_init(&cfg), LJS_EINVAL);            \
    assert_non_null(strstr(ljs_last_error(), env ": longer than")); \
    unsetenv(env);
    LJS_CONFIG_STR_MAP(LJS__CHECK_TOO_LONG)
#undef LJS__CHECK_TOO_LONG
    /* Output files are checked when the runtime starts, not after a run. */
    static const char *const outputs[] = {"LJS_TRACE", "LJS_REPORT"};
    for (int i = 0; i < 2; i++) {
        setenv(outputs[i], "/nonexistent-ljs-dir/out.json", 1);
        assert_int_equal(ljs_config_init(&cfg), LJS_OK);
        assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_EINVAL);
        assert_null(rt);
        assert_non_null(strstr(ljs_last_error(), outputs[i]));
        assert_non_null(strstr(ljs_last_error(), "/nonexistent-ljs-dir"));
        unsetenv(outputs[i]);
    }
    ljs_test_clear_env();
    unsetenv("LJS_GC_MODE");
}

static void test_config_error_names_and_texts_come_from_one_table(void **state)
{
    assert_string_equal(ljs_errname(LJS_EINVAL), "LJS_EINVAL");
    assert_string_equal(ljs_errname(LJS_OK), "LJS_OK");
    assert_string_equal(ljs_strerror(LJS_OK), "success");
    assert_string_equal(ljs_strerror(12345), "unknown error");
    assert_true(ljs_version() == LJS_VERSION_NUM);
}

static void test_config_source_says_where_each_value_came_from(void **state)
{
    (void)state;
    ljs_test_clear_env();
    setenv("LJS_BATCH", "64", 1);
    setenv("LJS_GC_MODE", "incremental", 1);
    ljs_config_t cfg;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.spin = 7;
    assert_string_equal(ljs_config_source(&cfg, "LJS_WORKERS"), "default");
    assert_string_equal(ljs_config_source(&cfg, "LJS_BATCH"), "environment");
    assert_string_equal(ljs_config_source(&cfg, "LJS_GC_MODE"), "environment");
    assert_string_equal(ljs_config_source(&cfg, "LJS_SPIN"), "host");
    assert_string_equal(ljs_config_source(&cfg, "LJS_TRACE"), "default");
    cfg.batch = 256; /* the host overrides the environment, even back to the default */
    assert_string_equal(ljs_config_source(&cfg, "LJS_BATCH"), "host");
    assert_null(ljs_config_source(&cfg, "LJS_NO_SUCH_KNOB"));
    ljs_test_clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_config_defaults_are_in_range, setup),
        cmocka_unit_test_setup(test_config_env_overrides_default, setup),
        cmocka_unit_test_setup(test_config_bad_env_values_are_rejected_with_name_and_range, setup),
        cmocka_unit_test_setup(test_config_workers_zero_means_online_cpus, setup),
        cmocka_unit_test_setup(test_config_unknown_ljs_variables_are_warned_about, setup),
        cmocka_unit_test_setup(test_config_code_overrides_env_and_is_validated, setup),
        cmocka_unit_test_setup(test_config_string_knobs_are_checked, setup),
        cmocka_unit_test_setup(test_config_error_names_and_texts_come_from_one_table, setup),
        cmocka_unit_test_setup(test_config_source_says_where_each_value_came_from, setup),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
