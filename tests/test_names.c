/* test_names.c - scripts named by their path under LJS_SCRIPT_ROOT: two
 * files with one basename in different folders both load, spawn() and
 * ljs_script_find use the dotted name, a file outside the root is refused,
 * and without a root names stay file names. */
#include "tests/support.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void put(const char *rel, const char *src)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    ljs_test_write(path, src);
}

static int setup(void **state)
{
    (void)state;
    char path[256];
    ljs_test_tmpdir(dir, sizeof dir, "names");
    snprintf(path, sizeof path, "%s/ai", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/anim", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    put("ai/idle.lua",
        "return { fields = { thinking = 0 }, update = function(self) self.thinking = self.thinking + 1\n"
        "  if frame() == 1 then spawn('anim.idle', { pose = 7 }) end end }\n");
    put("anim/idle.lua", "return { fields = { pose = 0 } }\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ljs_test_rmtree(dir);
    return 0;
}

static ljs_runtime_t *runtime(const char *root)
{
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    snprintf(cfg.script_root, sizeof cfg.script_root, "%s", root);
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    return rt;
}

static void test_names_same_basename_in_two_folders_both_load(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(dir);
    char path[256];
    ljs_script_t ai, anim, found;
    snprintf(path, sizeof path, "%s/ai/idle.lua", dir);
    if (ljs_script_load(rt, path, &ai) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    snprintf(path, sizeof path, "%s/anim/../anim/idle.lua", dir);
    if (ljs_script_load(rt, path, &anim) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    assert_int_equal(ljs_script_find(rt, "ai.idle", &found), LJS_OK);
    assert_int_equal(found.id, ai.id);
    assert_int_equal(ljs_script_find(rt, "anim.idle", &found), LJS_OK);
    assert_int_equal(found.id, anim.id);
    /* The same file again is still refused. */
    snprintf(path, sizeof path, "%s/ai/idle.lua", dir);
    assert_int_equal(ljs_script_load(rt, path, &found), LJS_EEXIST);
    assert_non_null(strstr(ljs_last_error(), "'ai.idle'"));
    /* spawn() by dotted name. */
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, ai), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    assert_int_equal(ljs_entity_count(rt), 2);
    ljs_runtime_destroy(rt);
}

static void test_names_a_script_outside_the_root_is_refused(void **state)
{
    (void)state;
    char root[256], path[256];
    snprintf(root, sizeof root, "%s/anim", dir);
    ljs_runtime_t *rt = runtime(root);
    ljs_script_t s;
    snprintf(path, sizeof path, "%s/ai/idle.lua", dir);
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_EINVAL);
    assert_non_null(strstr(ljs_last_error(), "is not under LJS_SCRIPT_ROOT"));
    ljs_runtime_destroy(rt);
}

static void test_names_without_a_root_are_file_names(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime("");
    char path[256];
    ljs_script_t s, found;
    snprintf(path, sizeof path, "%s/anim/idle.lua", dir);
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    assert_int_equal(ljs_script_find(rt, "idle", &found), LJS_OK);
    snprintf(path, sizeof path, "%s/ai/idle.lua", dir);
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_EEXIST); /* the reason to set a root */
    ljs_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_same_basename_in_two_folders_both_load),
        cmocka_unit_test(test_names_a_script_outside_the_root_is_refused),
        cmocka_unit_test(test_names_without_a_root_are_file_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
