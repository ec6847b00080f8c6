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

/* ThreadSanitizer delays a signal until the thread enters instrumented
 * code, which the (uninstrumented) Lua VM spinning on `while true do end`
 * never does: under TSan the loops allocate, so the signal lands in the
 * allocator. */
#if defined(__SANITIZE_THREAD__)
#define SPIN "local t = {}"
#else
#define SPIN ""
#endif

/* A script where entity mode 1 loops forever in `body`, line 4. */
static ljs_script_t runaway_script(fixture_t *fx, const char *name, const char *body)
{
    char src[4096];
    snprintf(src, sizeof src,
             "return {\n"
             "  fields = { x = 0.0, mode = 0 },\n"
             "  update = function(self, dt)\n"
             "    if self.mode == 1 then %s end\n"
             "    self.x = self.x + 1\n"
             "  end,\n"
             "}\n",
             body);
    return load(fx, name, src);
}

/* One frame of 8 entities, the 4th running away: the frame returns, the
 * call fails with `expect`, the others move on. */
static void check_stopped(fixture_t *fx, ljs_script_t s, const char *expect)
{
    ljs_entity_t e[8];
    for (int i = 0; i < 8; i++)
        e[i] = spawn_with(fx, s);
    assert_int_equal(ljs_field_set_integer(fx->rt, e[3], "mode", 1), LJS_OK);
    drain(fx);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    drain(fx);
    if (fx->console_errors != 1)
        fail_msg("expected one error '%s', got %zu:\n%s", expect, fx->console_errors, fx->console);
    expect_console(fx, expect);
    for (int i = 0; i < 8; i++)
        assert_true(num(fx, e[i], "x") == (i == 3 ? 0.0 : 1.0));
    for (int i = 0; i < 8; i++)
        assert_int_equal(ljs_entity_destroy(fx->rt, e[i]), LJS_OK);
}

#endif
