/* test_reload.c - reloading a script in place: entities keep their state,
 * new fields get defaults, on_reload runs once per entity, a broken version
 * leaves the old one running, changed modules run again. */
#include "tests/support.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fixture_s {
    char dir[64];
    char path[128];
    ljs_runtime_t *rt;
    ljs_entity_t e[40];
} fixture_t;

static void write_src(const char *path, const char *src)
{
    /* Write a temp file and rename it over: an editor's atomic save. */
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static const char *v1 = "return { fields = { x = 0.0, n = 0 },\n"
                        "  update = function(self, dt) self.x = self.x + 1; self.n = self.n + 1 end }\n";

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    ljs_script_t s;
    ljs_test_tmpdir(fx->dir, sizeof fx->dir, "reload");
    snprintf(fx->path, sizeof fx->path, "%s/mover.lua", fx->dir);
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 4;
    cfg.batch = 8;
    fx->rt = ljs_test_runtime(&cfg);
    write_src(fx->path, v1);
    assert_int_equal(ljs_script_load(fx->rt, fx->path, &s), LJS_OK);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(ljs_entity_create(fx->rt, &fx->e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(fx->rt, fx->e[i], s), LJS_OK);
    }
    for (int f = 0; f < 3; f++)
        assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ljs_runtime_destroy(fx->rt);
    ljs_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static double num(fixture_t *fx, int i, const char *field)
{
    double v = -1;
    if (ljs_field_get_number(fx->rt, fx->e[i], field, &v) != LJS_OK)
        fail_msg("%s: %s", field, ljs_last_error());
    return v;
}

static ljs_script_t mover(fixture_t *fx)
{
    ljs_script_t s;
    assert_int_equal(ljs_script_find(fx->rt, "mover", &s), LJS_OK);
    return s;
}

static void collect(void *ud, const ljs_log_line_t *l)
{
    strncat(ud, l->text, 8000 - strlen(ud));
    strcat(ud, "\n");
}

static void test_reload_keeps_entity_state_and_adds_new_fields(void **state)
{
    fixture_t *fx = *state;
    write_src(fx->path, "return { fields = { x = 0.0, n = 0, y = 7.0 },\n"
                        "  update = function(self, dt) self.x = self.x + 10; self.y = self.y + 1 end }\n");
    assert_int_equal(ljs_script_reload(fx->rt, mover(fx)), LJS_OK);
    for (int i = 0; i < 40; i++) {
        assert_true(num(fx, i, "x") == 3.0); /* kept */
        assert_true(num(fx, i, "y") == 7.0); /* the new field's default */
    }
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    for (int i = 0; i < 40; i++) {
        assert_true(num(fx, i, "x") == 13.0); /* the new code, on every worker */
        assert_true(num(fx, i, "y") == 8.0);
        assert_true(num(fx, i, "n") == 3.0); /* the old field, no longer written */
    }
    ljs_script_stats_t st;
    assert_int_equal(ljs_script_stats(fx->rt, mover(fx), &st), LJS_OK);
    assert_int_equal(st.entities, 40);
}

static void test_reload_runs_on_reload_once_per_entity(void **state)
{
    fixture_t *fx = *state;
    write_src(fx->path,
              "return { fields = { x = 0.0, n = 0, reloads = 0 },\n"
              "  update = function(self, dt) self.x = self.x + 1 end,\n"
              "  on_reload = function(self) self.reloads = self.reloads + 1; self.x = self.x * 2 end }\n");
    assert_int_equal(ljs_script_reload(fx->rt, mover(fx)), LJS_OK);
    for (int i = 0; i < 40; i++) {
        assert_true(num(fx, i, "reloads") == 1.0);
        assert_true(num(fx, i, "x") == 6.0); /* seen by the host at once */
    }
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    for (int i = 0; i < 40; i++) {
        assert_true(num(fx, i, "reloads") == 1.0);
        assert_true(num(fx, i, "x") == 7.0);
    }
}

static void test_reload_of_a_broken_version_keeps_the_old_one_running(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *src, *expect;
    } broken[] = {
        {"return {\n  update = function(self, dt)\n    self.x = = 1\n  end }\n", "mover.lua:3:"},
        {"local t = nil\nreturn t.x\n", "mover.lua:2:"},
        {"return 'not a table'\n", "must return a table"},
        {"return { fields = { x = 1 } }\n", "declared as integer here but as number elsewhere"},
    };
    for (size_t k = 0; k < sizeof broken / sizeof broken[0]; k++) {
        write_src(fx->path, broken[k].src);
        assert_int_equal(ljs_script_reload(fx->rt, mover(fx)), LJS_ESCRIPT);
        if (strstr(ljs_last_error(), broken[k].expect) == NULL)
            fail_msg("case %zu: '%s' not in '%s'", k, broken[k].expect, ljs_last_error());
        assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
        for (int i = 0; i < 40; i++)
            assert_true(num(fx, i, "x") == 4.0 + (double)k); /* v1 still runs */
    }
    char log[8192] = "";
    ljs_console_drain(fx->rt, collect, log);
    assert_non_null(strstr(log, "previous version keeps running"));
    /* Fixed later: reloads normally. */
    write_src(fx->path, "return { fields = { x = 0.0 }, update = function(self) self.x = -1 end }\n");
    assert_int_equal(ljs_script_reload(fx->rt, mover(fx)), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    assert_true(num(fx, 0, "x") == -1.0);
}

static void test_reload_runs_changed_modules_again(void **state)
{
    fixture_t *fx = *state;
    char lib[160];
    snprintf(lib, sizeof lib, "%s/tuning.lua", fx->dir);
    write_src(lib, "return { step = 5 }\n");
    write_src(fx->path,
              "local T = require('tuning')\n"
              "return { fields = { x = 0.0 }, update = function(self) self.x = self.x + T.step end }\n");
    assert_int_equal(ljs_script_reload(fx->rt, mover(fx)), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    assert_true(num(fx, 0, "x") == 8.0);
    write_src(lib, "return { step = 100 }\n");
    assert_int_equal(ljs_script_reload(fx->rt, mover(fx)), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    for (int i = 0; i < 40; i++)
        assert_true(num(fx, i, "x") == 108.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_reload_keeps_entity_state_and_adds_new_fields),
        T(test_reload_runs_on_reload_once_per_entity),
        T(test_reload_of_a_broken_version_keeps_the_old_one_running),
        T(test_reload_runs_changed_modules_again),
#undef T
    };
    return cmocka_run_group_tests_name("reload", tests, NULL, NULL);
}
