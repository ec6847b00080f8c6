/* fuzz_scene.c - ljs-run's scene.txt parser (tools/scene.c) on arbitrary
 * file contents, checked against a reference parser written here from the
 * grammar in tools/scene.h (lines split at '\n', a NUL byte refused, '#'
 * to the end of the line dropped, whitespace-separated tokens): both must
 * accept the same files with the same lines, and refuse the same files at
 * the same line. */
#include "fuzz/fuzz.h"

#include "tools/scene.h"

#include <ctype.h>
#include <string.h>

static int is_count(const uint8_t *t, size_t n, long *out)
{
    size_t i = 0;
    long v = 0;
    int neg = 0;
    if (n >= 32)
        return 0;
    if (i < n && (t[i] == '+' || t[i] == '-'))
        neg = t[i++] == '-';
    if (i == n)
        return 0;
    for (; i < n; i++) {
        if (!isdigit(t[i]))
            return 0;
        if (v <= SCENE_COUNT_MAX)
            v = v * 10 + (t[i] - '0');
    }
    if (v > SCENE_COUNT_MAX || (neg && v != 0))
        return 0;
    *out = v;
    return 1;
}

/* The reference: returns 0 and fills ref, or -1 and the failing line
 * (0 when the file names no scripts). */
static int reference(const uint8_t *p, size_t size, scene_t *ref, int *bad_line)
{
    size_t at = 0;
    int lineno = 0;
    ref->n = 0;
    while (at < size) {
        const uint8_t *nl = memchr(p + at, '\n', size - at);
        size_t end = nl ? (size_t)(nl - p) : size, n = end - at;
        const uint8_t *l = p + at;
        at = nl ? end + 1 : size;
        lineno++;
        *bad_line = lineno;
        if (memchr(l, '\0', n) != NULL)
            return -1;
        const uint8_t *hash = memchr(l, '#', n);
        if (hash != NULL)
            n = (size_t)(hash - l);
        const uint8_t *tok[4];
        size_t len[4];
        int k = 0;
        for (size_t i = 0; i < n;) {
            if (isspace(l[i])) {
                i++;
                continue;
            }
            size_t s = i;
            while (i < n && !isspace(l[i]))
                i++;
            if (k < 4) {
                tok[k] = l + s;
                len[k] = i - s;
            }
            k++;
        }
        if (k == 0)
            continue;
        long c;
        if (k > 3 || k < 2 || !is_count(tok[1], len[1], &c) ||
            (k == 3 && (len[2] != 5 || memcmp(tok[2], "fixed", 5))))
            return -1;
        if (len[0] >= SCENE_NAME_MAX || ref->n == SCENE_MAX_LINES)
            return -1;
        scene_line_t *sl = &ref->lines[ref->n++];
        memcpy(sl->name, tok[0], len[0]);
        sl->name[len[0]] = '\0';
        sl->count = c;
        sl->fixed = k == 3;
    }
    *bad_line = 0;
    return ref->n ? 0 : -1;
}

int ljs_fuzz_scene(const uint8_t *data, size_t size)
{
    static scene_t sc, ref;
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
    int bad_line = 0;
    int want = reference(data, size, &ref, &bad_line);
    FUZZ_CHECK(rc == want);
    if (rc == 0) {
        FUZZ_CHECK(errlen == 0);
        FUZZ_CHECK(sc.n == ref.n);
        for (size_t i = 0; i < sc.n; i++) {
            FUZZ_CHECK(strcmp(sc.lines[i].name, ref.lines[i].name) == 0);
            FUZZ_CHECK(sc.lines[i].count == ref.lines[i].count);
            FUZZ_CHECK(sc.lines[i].fixed == ref.lines[i].fixed);
        }
    } else {
        char where[64];
        if (bad_line > 0)
            snprintf(where, sizeof where, "ljs-run: scene.txt:%d: ", bad_line);
        else
            snprintf(where, sizeof where, "ljs-run: scene.txt names no scripts");
        FUZZ_CHECK(errlen > 0 && strncmp(err, where, strlen(where)) == 0);
    }
    free(buf);
    return 0;
}

LJS_FUZZ_MAIN(ljs_fuzz_scene)
