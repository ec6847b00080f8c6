/* test_console.c - the console ring stays bounded under a log storm from
 * every worker, counts what it dropped, and keeps the newest lines with
 * their severity, script and entity. */
#include "tests/support.h"

#include <ljs.h>
#include <string.h>
#include <unistd.h>

typedef struct seen_s {
    size_t lines, info, errors;
    uint64_t last_frame;
    int had_script_and_entity;
} seen_t;

static void count(void *ud, const ljs_log_line_t *l)
{
    seen_t *s = ud;
    s->lines++;
    s->info += l->severity == LJS_LOG_INFO;
    s->errors += l->severity == LJS_LOG_ERROR;
    s->last_frame = l->frame;
    s->had_script_and_entity |= !strcmp(l->script, "storm") && l->entity != 0;
}

static void test_console_stays_bounded_under_a_log_storm(void **state)
{
    char dir[] = "/tmp/ljs-console-XXXXXX", path[128];
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    ljs_script_t s;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/storm.lua", dir);
    ljs_test_write(path, "return { fields = { n = 0 }, update = function(self)\n"
                         "  for i = 1, 20 do log('line', i, 'of entity', self.id) end\n"
                         "  self.n = self.n + 1\n"
                         "  if self.n % 7 == 0 then error('storm error') end\n"
                         "end }\n");
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 4;
    cfg.console_lines = 64;
    cfg.watch = 0;
    ljs_test_no_gc_warning(&cfg); /* the count is of the script's lines only */
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    for (int i = 0; i < 200; i++) {
        ljs_entity_t e;
        assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    }
    for (int f = 1; f <= 14; f++)
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK); /* 56,000 lines + errors, never drained */
    seen_t seen = {0};
    assert_int_equal(ljs_console_drain(rt, count, &seen), 64); /* exactly the ring's size */
    assert_int_equal(seen.lines, 64);
    assert_true(seen.had_script_and_entity);
    assert_int_equal(seen.last_frame, 14); /* the newest lines are the ones kept */
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
    /* Every line not kept was counted: 20 logs per call, plus one line per
     * failed call (a failing call's writes are discarded, so an entity that
     * reached n % 7 == 0 keeps failing). */
    assert_true(st.script_errors >= 2 * 200);
    assert_int_equal(st.console_dropped, 14 * 200 * 20 + st.script_errors - 64);
    assert_int_equal(ljs_console_drain(rt, count, &seen), 0);
    ljs_runtime_destroy(rt);
    unlink(path);
    rmdir(dir);
}

typedef struct reentrant_s {
    ljs_runtime_t *rt;
    size_t lines;
    int frame_rc;
    int load_rc;
} reentrant_t;

/* Calls back into ljs from the drain callback: a frame whose script logs
 * (the console lock again) and a failing script load. */
static void call_ljs(void *ud, const ljs_log_line_t *l)
{
    reentrant_t *r = ud;
    (void)l;
    if (r->lines++ == 0) {
        ljs_script_t s;
        r->frame_rc = ljs_frame(r->rt, 0.0);
        r->load_rc = ljs_script_load(r->rt, "/nonexistent/ghost.lua", &s);
    }
}

/* ljs.h promises the drain callback may call ljs: it runs outside the
 * console's lock (it used to run inside it, and a frame that logged from
 * the callback deadlocked). Lines logged meanwhile come with the next drain. */
static void test_console_drain_callback_may_call_ljs(void **state)
{
    char dir[] = "/tmp/ljs-console-XXXXXX", path[128];
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    ljs_script_t s;
    ljs_entity_t e;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/talk.lua", dir);
    ljs_test_write(path,
                   "return { fields = { n = 0 }, update = function(self) log('frame', frame()) end }\n");
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.watch = 0;
    ljs_test_no_gc_warning(&cfg); /* this test counts lines */
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    ljs_console_drain(rt, NULL, NULL);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK); /* one line: "frame 2" */
    reentrant_t r = {rt, 0, -1, 0};
    assert_int_equal(ljs_console_drain(rt, call_ljs, &r), 1);
    assert_int_equal(r.frame_rc, LJS_OK);
    assert_int_equal(r.load_rc, LJS_ENOENT);
    assert_int_equal(ljs_frame_count(rt), 3);
    seen_t seen = {0};
    assert_true(ljs_console_drain(rt, count, &seen) >= 1); /* frame 3's line, logged during the drain */
    assert_int_equal(seen.last_frame, 3);
    ljs_runtime_destroy(rt);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_stays_bounded_under_a_log_storm),
        cmocka_unit_test(test_console_drain_callback_may_call_ljs),
    };
    return cmocka_run_group_tests_name("console", tests, NULL, NULL);
}
