/* fuzz_scene.c - ljs-run's scene.txt parser (tools/scene.c) on arbitrary
 * file contents.
 *
 * Invariants: the parser returns 0 or -1; on 0 it holds 1..SCENE_MAX_LINES
 * lines, each with a non-empty name of non-space bytes shorter than
 * SCENE_NAME_MAX, a count in 0..SCENE_COUNT_MAX and fixed 0 or 1; on -1 it
 * printed why. */
#include "fuzz/fuzz.h"

#include "tools/scene.h"

#include <ctype.h>
#include <string.h>

int ljs_fuzz_scene(const uint8_t *data, size_t size)
{
    static scene_t sc;
    /* An exact-size heap copy: fmemopen reads it, ASan guards its end. */
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    FILE *f = size ? fmemopen(buf, size, "r") : fopen("/dev/null", "r");
    FUZZ_CHECK(f != NULL);
    char err[512];
    FILE *e = fmemopen(err, sizeof err, "w");
    FUZZ_CHECK(e != NULL);
    int rc = scene_parse(f, "scene.txt", &sc, e);
    fclose(f);
    long errlen = ftell(e);
    fclose(e);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        FUZZ_CHECK(errlen == 0);
        FUZZ_CHECK(sc.n >= 1 && sc.n <= SCENE_MAX_LINES);
        for (size_t i = 0; i < sc.n; i++) {
            const scene_line_t *l = &sc.lines[i];
            size_t len = strnlen(l->name, SCENE_NAME_MAX);
            FUZZ_CHECK(len > 0 && len < SCENE_NAME_MAX);
            for (size_t k = 0; k < len; k++)
                FUZZ_CHECK(!isspace((unsigned char)l->name[k]) && l->name[k] != '#');
            FUZZ_CHECK(l->count >= 0 && l->count <= SCENE_COUNT_MAX);
            FUZZ_CHECK(l->fixed == 0 || l->fixed == 1);
        }
    } else {
        FUZZ_CHECK(errlen > 0 && strncmp(err, "ljs-run: scene.txt", 18) == 0);
    }
    free(buf);
    return 0;
}

LJS_FUZZ_MAIN(ljs_fuzz_scene)
