/* runaway_fixture.h - the fixture test_runaway.c and test_watchdog.c share:
 * a runtime with its own temp directory, script loading by name, and the
 * console drained into a buffer (errors counted). Included by those two
 * files only (static functions). */
#ifndef LJS_TESTS_RUNAWAY_FIXTURE_H
#define LJS_TESTS_RUNAWAY_FIXTURE_H

#include "tests/support.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>

typedef struct fixture_s {
    char dir[64];
    ljs_runtime_t *rt;
    char console[16384];
    size_t console_errors;
} fixture_t;

static const char *script_path(fixture_t *fx, const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s.lua", fx->dir, name);
    return path;
}

static ljs_script_t load(fixture_t *fx, const char *name, const char *src)
{
    ljs_script_t s;
    ljs_test_write(script_path(fx, name), src);
    int rc = ljs_script_load(fx->rt, script_path(fx, name), &s);
    if (rc != LJS_OK)
        fail_msg("load %s: %s", name, ljs_last_error());
    return s;
}

static void on_line(void *ud, const ljs_log_line_t *line)
{
    fixture_t *fx = ud;
    size_t n = strlen(fx->console);
    snprintf(fx->console + n, sizeof fx->console - n, "[%s #%llu] %s\n", line->script,
             (unsigned long long)line->entity, line->text);
    if (line->severity == LJS_LOG_ERROR)
        fx->console_errors++;
}

static void drain(fixture_t *fx)
{
    fx->console[0] = '\0';
    fx->console_errors = 0;
    ljs_console_drain(fx->rt, on_line, fx);
}

/* timeout_ms UINT32_MAX: the default from ljs_config_init. */
static fixture_t *make_with(unsigned workers, uint32_t budget, uint32_t timeout_ms)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    ljs_config_t cfg;
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/ljs-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = workers;
    cfg.batch = 4;
    cfg.state_mem_mb = 32;
    cfg.script_budget = budget;
    if (timeout_ms != UINT32_MAX)
        cfg.script_timeout_ms = timeout_ms;
    assert_int_equal(ljs_runtime_create(&cfg, &fx->rt), LJS_OK);
    return fx;
}

static void destroy(fixture_t *fx)
{
    ljs_runtime_destroy(fx->rt);
    ljs_test_rmtree(fx->dir);
    free(fx);
}

static ljs_entity_t spawn_with(fixture_t *fx, ljs_script_t s)
{
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(fx->rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(fx->rt, e, s), LJS_OK);
    return e;
}

static double num(fixture_t *fx, ljs_entity_t e, const char *field)
{
    double v = -12345;
    if (ljs_field_get_number(fx->rt, e, field, &v) != LJS_OK)
        fail_msg("get %s: %s", field, ljs_last_error());
    return v;
}

static void expect_console(fixture_t *fx, const char *what)
{
    if (strstr(fx->console, what) == NULL)
        fail_msg("'%s' not in console:\n%s", what, fx->console);
}

#endif
