/* test_scene.c - ljs-run's scene.txt parser (tools/scene.c): every file
 * the old fgets/sscanf parser misread silently, found by fuzz_scene's
 * reference parser, is now refused at its line; well-formed scenes parse
 * as before. The inputs are also in fuzz/corpus/scene/. */
#include "tests/support.h"

#include "tools/scene.h"

#include <string.h>

static scene_t sc;
static char err[1024];

/* Parse n bytes of text; returns scene_parse's result, message in err. */
static int parse(const char *text, size_t n)
{
    FILE *f = fmemopen((void *)text, n, "r");
    assert_non_null(f);
    FILE *e = fmemopen(err, sizeof err, "w");
    assert_non_null(e);
    int rc = scene_parse(f, "scene.txt", &sc, e);
    fclose(f);
    fclose(e);
    return rc;
}

static void assert_refused_at(const char *text, size_t n, const char *where)
{
    assert_int_equal(parse(text, n), -1);
    if (strstr(err, where) == NULL)
        fail_msg("expected '%s' in: %s", where, err);
}

static void test_scene_parses_names_counts_and_fixed(void **state)
{
    (void)state;
    static const char text[] = "# comment\n\nprey 10   # trailing\n\tpredator\t2 fixed\r\nlast 0";
    assert_int_equal(parse(text, sizeof text - 1), 0);
    assert_int_equal(sc.n, 3);
    assert_string_equal(sc.lines[0].name, "prey");
    assert_int_equal(sc.lines[0].count, 10);
    assert_int_equal(sc.lines[0].fixed, 0);
    assert_string_equal(sc.lines[1].name, "predator");
    assert_int_equal(sc.lines[1].count, 2);
    assert_int_equal(sc.lines[1].fixed, 1);
    assert_string_equal(sc.lines[2].name, "last");
}

static void test_scene_refuses_a_nul_byte_it_used_to_skip(void **state)
{
    (void)state;
    static const char text[] = "ok 1\nprey 10\0 junk fixed\n";
    assert_refused_at(text, sizeof text - 1, "scene.txt:2: NUL byte");
}

static void test_scene_refuses_a_long_name_it_used_to_cut(void **state)
{
    (void)state;
    /* 63 a's then "5": the old %63s took the a's as the name, 5 as count. */
    char text[128];
    memset(text, 'a', 63);
    strcpy(text + 63, "5 fixed\n");
    assert_refused_at(text, strlen(text), "scene.txt:1: expected 'NAME COUNT [fixed]'");
    text[63] = 'a';
    strcpy(text + 64, " 5 fixed\n");
    assert_refused_at(text, strlen(text), "scene.txt:1: script name longer than 63 bytes");
    /* 63 bytes is the longest name. */
    strcpy(text + 63, " 5 fixed\n");
    assert_int_equal(parse(text, strlen(text)), 0);
    assert_int_equal(strlen(sc.lines[0].name), 63);
}

static void test_scene_keeps_a_long_line_one_line(void **state)
{
    (void)state;
    /* The old 512-byte fgets split this into "prey 10" and "predator 3". */
    char text[1024];
    snprintf(text, sizeof text, "prey 10%*spredator 3\n", 600, "");
    assert_refused_at(text, strlen(text), "scene.txt:1: expected 'NAME COUNT [fixed]'");
    snprintf(text, sizeof text, "prey 10%*s\npredator 3 fixed\n", 700, "");
    assert_int_equal(parse(text, strlen(text)), 0);
    assert_int_equal(sc.n, 2);
}

static void test_scene_refuses_a_count_it_used_to_split(void **state)
{
    (void)state;
    /* The old %31s took 31 digits as the count and "fixed" as the flag. */
    static const char text[] = "a 0000000000000000000000000000001fixed\n";
    assert_refused_at(text, sizeof text - 1, "scene.txt:1: expected");
    static const char big[] = "a 100000001\n";
    assert_refused_at(big, sizeof big - 1, "scene.txt:1: expected");
}

static void test_scene_refuses_empty_and_too_many_lines(void **state)
{
    (void)state;
    static const char empty[] = "# nothing\n\n";
    assert_refused_at(empty, sizeof empty - 1, "scene.txt names no scripts");
    char text[2048] = "";
    for (int i = 0; i <= SCENE_MAX_LINES; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "s%d 1\n", i);
    assert_refused_at(text, strlen(text), "scene.txt:65: more than 64 lines");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scene_parses_names_counts_and_fixed),
        cmocka_unit_test(test_scene_refuses_a_nul_byte_it_used_to_skip),
        cmocka_unit_test(test_scene_refuses_a_long_name_it_used_to_cut),
        cmocka_unit_test(test_scene_keeps_a_long_line_one_line),
        cmocka_unit_test(test_scene_refuses_a_count_it_used_to_split),
        cmocka_unit_test(test_scene_refuses_empty_and_too_many_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
