/* test_watch.c - hot reload driven by the file watcher, with real files:
 * in-place writes, atomic saves, delete and re-create, modules in new
 * subdirectories, broken then fixed versions, a tiny ring that overflows,
 * and the polling fallback. */
#include "tests/support.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture_s {
    char dir[64];
    ljs_runtime_t *rt;
} fixture_t;

static fixture_t *make(uint32_t watch, uint32_t ring)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    ljs_test_tmpdir(fx->dir, sizeof fx->dir, "watch");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    cfg.watch = watch;
    cfg.watch_ring = ring;
    cfg.poll_ms = 20;
    cfg.reload_debounce_ms = 10;
    fx->rt = ljs_test_runtime(&cfg);
    return fx;
}

static void destroy(fixture_t *fx)
{
    ljs_runtime_destroy(fx->rt);
    ljs_test_rmtree(fx->dir);
    free(fx);
}

static const char *path_of(fixture_t *fx, const char *rel)
{
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", fx->dir, rel);
    return path[k];
}

static void write_atomic(const char *path, const char *src)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.swp", path); /* not .lua: ignored itself */
    ljs_test_write(tmp, src);
    assert_int_equal(rename(tmp, path), 0);
}

static const char *version(int v)
{
    static char src[256];
    snprintf(src, sizeof src, "return { fields = { v = 0.0 }, update = function(self) self.v = %d end }\n",
             v);
    return src;
}

static ljs_entity_t spawn(fixture_t *fx, const char *name)
{
    ljs_script_t s;
    ljs_entity_t e;
    if (ljs_script_load(fx->rt, path_of(fx, name), &s) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    assert_int_equal(ljs_entity_create(fx->rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(fx->rt, e, s), LJS_OK);
    return e;
}

/* Run frames until entity e's v is `want` (2 s at most). */
static int frames_until(fixture_t *fx, ljs_entity_t e, double want)
{
    for (int i = 0; i < 400; i++) {
        double v = -1;
        assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
        assert_int_equal(ljs_field_get_number(fx->rt, e, "v", &v), LJS_OK);
        if (v == want)
            return 1;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_watch_follows_every_editor_pattern(void **state)
{
    fixture_t *fx = make(1, 1024);
    ljs_test_write(path_of(fx, "a.lua"), version(1));
    ljs_entity_t e = spawn(fx, "a.lua");
    assert_true(frames_until(fx, e, 1));
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(fx->rt, &st), LJS_OK);
    assert_int_equal(st.watch_mode, 1);
    ljs_test_write(path_of(fx, "a.lua"), version(2)); /* in-place write */
    assert_true(frames_until(fx, e, 2));
    write_atomic(path_of(fx, "a.lua"), version(3)); /* temp + rename over */
    assert_true(frames_until(fx, e, 3));
    assert_int_equal(unlink(path_of(fx, "a.lua")), 0); /* delete: keeps running */
    assert_true(frames_until(fx, e, 3));
    ljs_test_write(path_of(fx, "a.lua"), version(4)); /* re-create */
    assert_true(frames_until(fx, e, 4));
    assert_int_equal(ljs_stats_get(fx->rt, &st), LJS_OK);
    assert_true(st.reloads >= 3);
    assert_int_equal(st.reload_errors, 0);
    destroy(fx);
}

static void test_watch_broken_then_fixed_and_modules_in_new_subdirectories(void **state)
{
    fixture_t *fx = make(1, 1024);
    ljs_test_write(path_of(fx, "b.lua"), version(1));
    ljs_entity_t e = spawn(fx, "b.lua");
    assert_true(frames_until(fx, e, 1));
    write_atomic(path_of(fx, "b.lua"), "return { update = function(self) self.v = = 2 end }\n");
    assert_true(frames_until(fx, e, 1)); /* the old version keeps running */
    ljs_stats_t st;
    for (int i = 0; i < 200 && (ljs_stats_get(fx->rt, &st), st.reload_errors == 0); i++) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
        assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    }
    assert_int_equal(st.reload_errors, 1);
    /* Fixed, and now requiring a module in a subdirectory made after the
     * watch started: the watcher must follow it there. */
    assert_int_equal(mkdir(path_of(fx, "lib"), 0700), 0);
    ljs_test_write(path_of(fx, "lib/k.lua"), "return 5\n");
    write_atomic(path_of(fx, "b.lua"),
                 "local K = require('lib.k')\n"
                 "return { fields = { v = 0.0 }, update = function(self) self.v = K end }\n");
    assert_true(frames_until(fx, e, 5));
    write_atomic(path_of(fx, "lib/k.lua"), "return 6\n"); /* a module change reloads its dependents */
    assert_true(frames_until(fx, e, 6));
    destroy(fx);
}

/* A 4-slot ring and 12 scripts changed at once: the overflow makes the next
 * frame rescan, and no change is lost. */
static void test_watch_ring_overflow_loses_no_change(void **state)
{
    fixture_t *fx = make(1, 4);
    ljs_entity_t e[12];
    char name[32];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "s%d.lua", i);
        ljs_test_write(path_of(fx, name), version(1));
        e[i] = spawn(fx, name);
    }
    assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "s%d.lua", i);
        write_atomic(path_of(fx, name), version(100 + i));
    }
    for (int i = 0; i < 12; i++)
        assert_true(frames_until(fx, e[i], 100 + i));
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(fx->rt, &st), LJS_OK);
    assert_true(st.watch_overflows >= 1);
    destroy(fx);
}

static void test_watch_can_be_paused_and_resumed(void **state)
{
    fixture_t *fx = make(1, 1024);
    ljs_test_write(path_of(fx, "q.lua"), version(1));
    ljs_entity_t e = spawn(fx, "q.lua");
    assert_true(frames_until(fx, e, 1));
    assert_int_equal(ljs_watch_set(fx->rt, 0), LJS_OK);
    write_atomic(path_of(fx, "q.lua"), version(2));
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
        assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    }
    double v;
    assert_int_equal(ljs_field_get_number(fx->rt, e, "v", &v), LJS_OK);
    assert_true(v == 1.0); /* paused: the change waits */
    assert_int_equal(ljs_watch_set(fx->rt, 1), LJS_OK);
    assert_true(frames_until(fx, e, 2)); /* resumed: rescanned and reloaded */
    destroy(fx);
    fx = make(0, 1024);
    assert_int_equal(ljs_watch_set(fx->rt, 1), LJS_EINVAL);
    destroy(fx);
}

static void test_watch_polling_fallback_and_off(void **state)
{
    fixture_t *fx = make(2, 1024);
    ljs_test_write(path_of(fx, "p.lua"), version(1));
    ljs_entity_t e = spawn(fx, "p.lua");
    assert_true(frames_until(fx, e, 1));
    sleep(1); /* a new mtime second, whatever the file system's granularity */
    ljs_test_write(path_of(fx, "p.lua"), version(2));
    assert_true(frames_until(fx, e, 2));
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(fx->rt, &st), LJS_OK);
    assert_int_equal(st.watch_mode, 2);
    destroy(fx);

    fx = make(0, 1024);
    ljs_test_write(path_of(fx, "o.lua"), version(1));
    e = spawn(fx, "o.lua");
    assert_true(frames_until(fx, e, 1));
    ljs_test_write(path_of(fx, "o.lua"), version(2));
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
        assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    }
    double v;
    assert_int_equal(ljs_field_get_number(fx->rt, e, "v", &v), LJS_OK);
    assert_true(v == 1.0); /* watching is off: nothing reloads */
    destroy(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_follows_every_editor_pattern),
        cmocka_unit_test(test_watch_broken_then_fixed_and_modules_in_new_subdirectories),
        cmocka_unit_test(test_watch_ring_overflow_loses_no_change),
        cmocka_unit_test(test_watch_can_be_paused_and_resumed),
        cmocka_unit_test(test_watch_polling_fallback_and_off),
    };
    return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}
