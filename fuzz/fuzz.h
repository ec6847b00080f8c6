/* fuzz.h - the libFuzzer targets' entry points (README "Fuzzing").
 *
 * Each fuzz/fuzz_<target>.c defines ljs_fuzz_<target>, which runs one input
 * and aborts (FUZZ_CHECK) on a broken invariant; memory errors are the
 * sanitizers' to catch. Built with -fsanitize=fuzzer (LJS_FUZZ=ON) each file
 * also defines LLVMFuzzerTestOneInput; the test build defines
 * LJS_FUZZ_NO_MAIN and tests/test_fuzz.c replays fuzz/corpus/<target>/
 * (every seed and every input that once crashed) through the same entry
 * points under the plain, ASan+UBSan and TSan builds. */
#ifndef LJS_FUZZ_FUZZ_H
#define LJS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Thread: owner of everything the input creates (one input at a time).
 * Blocks: no (bounded by the input size and the targets' limits).
 * Returns 0 (libFuzzer's convention); aborts on a broken invariant. */
int ljs_fuzz_codec(const uint8_t *data, size_t size);
int ljs_fuzz_cache(const uint8_t *data, size_t size);
int ljs_fuzz_scene(const uint8_t *data, size_t size);
int ljs_fuzz_script(const uint8_t *data, size_t size);
int ljs_fuzz_snapshot(const uint8_t *data, size_t size);

#ifndef LJS_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#define LJS_FUZZ_MAIN(fn)                                        \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) \
    {                                                            \
        return fn(data, size);                                   \
    }
#else
#define LJS_FUZZ_MAIN(fn)
#endif

/* A broken invariant: say which and abort, so libFuzzer (or the test) keeps
 * the input. */
#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* A fresh private directory <$TMPDIR or /tmp>/ljs-fuzz-<random> in `dir`
 * (at least 64 bytes), for a target's files. */
static inline void fuzz_tmpdir(char *dir, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/ljs-fuzz-XXXXXX", tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
}

#endif
