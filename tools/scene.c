/* scene.c - ljs-run's scene.txt parser (see scene.h). */
#include "tools/scene.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Whole-string count in [0, SCENE_COUNT_MAX]. */
static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > SCENE_COUNT_MAX)
        return -1;
    *out = v;
    return 0;
}

/* Split line[0..n) into at most max whitespace-separated tokens; returns
 * how many there are (possibly more than max). */
static int tokens(const char *line, size_t n, const char **tok, size_t *len, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && isspace((unsigned char)line[i]))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && !isspace((unsigned char)line[i]))
            i++;
        if (k < max) {
            tok[k] = line + start;
            len[k] = i - start;
        }
        k++;
    }
    return k;
}

int scene_parse(FILE *f, const char *path, scene_t *sc, FILE *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = 0;
    sc->n = 0;
    /* getline, not fgets into a fixed buffer: a long line stays one line,
     * and its length counts the NUL bytes a C-string parser would stop at. */
    while (rc == 0 && (got = getline(&line, &cap, f)) > 0) {
        lineno++;
        size_t n = (size_t)got;
        if (memchr(line, '\0', n) != NULL) {
            fprintf(err, "ljs-run: %s:%d: NUL byte in the line\n", path, lineno);
            rc = -1;
            break;
        }
        const char *hash = memchr(line, '#', n);
        if (hash != NULL)
            n = (size_t)(hash - line);
        const char *tok[3];
        size_t len[3];
        int k = tokens(line, n, tok, len, 3);
        if (k == 0)
            continue;
        char count[32];
        long c = -1;
        if (k >= 2 && k <= 3 && len[1] < sizeof count) {
            memcpy(count, tok[1], len[1]);
            count[len[1]] = '\0';
            if (parse_count(count, &c) != 0)
                c = -1;
        }
        if (k < 2 || k > 3 || c < 0 || (k == 3 && (len[2] != 5 || memcmp(tok[2], "fixed", 5) != 0))) {
            fprintf(err, "ljs-run: %s:%d: expected 'NAME COUNT [fixed]'\n", path, lineno);
            rc = -1;
        } else if (len[0] >= SCENE_NAME_MAX) {
            fprintf(err, "ljs-run: %s:%d: script name longer than %d bytes\n", path, lineno,
                    SCENE_NAME_MAX - 1);
            rc = -1;
        } else if (sc->n == SCENE_MAX_LINES) {
            fprintf(err, "ljs-run: %s:%d: more than %d lines\n", path, lineno, SCENE_MAX_LINES);
            rc = -1;
        } else {
            scene_line_t *l = &sc->lines[sc->n++];
            memset(l, 0, sizeof *l);
            memcpy(l->name, tok[0], len[0]);
            l->name[len[0]] = '\0';
            l->count = c;
            l->fixed = k == 3;
        }
    }
    free(line);
    if (rc == 0 && ferror(f)) {
        fprintf(err, "ljs-run: %s: read error\n", path);
        rc = -1;
    }
    if (rc == 0 && sc->n == 0) {
        fprintf(err, "ljs-run: %s names no scripts\n", path);
        rc = -1;
    }
    return rc;
}
