/* test_fuzz.c - replays every committed fuzz input (fuzz/corpus/<target>/:
 * the seeds and every input that once crashed a fuzzer) through the fuzz
 * targets' own entry points (fuzz/fuzz_*.c, built here without libFuzzer),
 * so `make test`, `make test-asan` and `make test-tsan` keep each crash
 * fixed. A broken invariant aborts inside the entry point; a memory error
 * is the sanitizer build's to report. */
#include "tests/support.h"

#include "fuzz/fuzz.h"

#include <dirent.h>
#include <string.h>

typedef int (*entry_fn)(const uint8_t *data, size_t size);

/* Run every file of fuzz/corpus/<target>/ through fn; returns how many. */
static size_t replay(const char *target, entry_fn fn)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/fuzz/corpus/%s", LJS_SOURCE_DIR, target);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    assert_true(n >= 0);
    size_t files = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char file[1400];
            snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
            FILE *f = fopen(file, "rb");
            assert_non_null(f);
            static uint8_t buf[1 << 20];
            size_t len = fread(buf, 1, sizeof buf, f);
            assert_int_equal(ferror(f), 0);
            fclose(f);
            /* An exact-size copy: an overread past the input is an ASan error. */
            uint8_t *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            memcpy(copy, buf, len);
            assert_int_equal(fn(copy, len), 0);
            free(copy);
            files++;
        }
        free(names[i]);
    }
    free(names);
    return files;
}

static void test_fuzz_codec_corpus_replays_clean(void **state)
{
    (void)state;
    assert_true(replay("codec", ljs_fuzz_codec) > 0);
}

static void test_fuzz_cache_corpus_replays_clean(void **state)
{
    (void)state;
    assert_true(replay("cache", ljs_fuzz_cache) > 0);
}

static void test_fuzz_scene_corpus_replays_clean(void **state)
{
    (void)state;
    assert_true(replay("scene", ljs_fuzz_scene) > 0);
}

static void test_fuzz_script_corpus_replays_clean(void **state)
{
    (void)state;
    assert_true(replay("script", ljs_fuzz_script) > 0);
}

static void test_fuzz_snapshot_corpus_replays_clean(void **state)
{
    (void)state;
    assert_true(replay("snapshot", ljs_fuzz_snapshot) > 0);
}

int main(void)
{
    ljs_test_clear_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_codec_corpus_replays_clean),
        cmocka_unit_test(test_fuzz_cache_corpus_replays_clean),
        cmocka_unit_test(test_fuzz_scene_corpus_replays_clean),
        cmocka_unit_test(test_fuzz_script_corpus_replays_clean),
        cmocka_unit_test(test_fuzz_snapshot_corpus_replays_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
