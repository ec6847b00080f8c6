/* scene.c - ljs-run's scene.txt parser (see scene.h). */
#include "tools/scene.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int scene_parse(FILE *f, const char *path, scene_t *sc, FILE *err)
{
    char buf[512];
    int lineno = 0, rc = 0;
    sc->n = 0;
    while (rc == 0 && fgets(buf, sizeof buf, f) != NULL) {
        lineno++;
        char *hash = strchr(buf, '#');
        if (hash != NULL)
            *hash = '\0';
        char name[SCENE_NAME_MAX], count[32], flag[32], extra[2];
        int k = sscanf(buf, "%63s %31s %31s %1s", name, count, flag, extra);
        if (k <= 0)
            continue;
        long c;
        if (k < 2 || k > 3 || parse_count(count, &c) != 0 || (k == 3 && strcmp(flag, "fixed"))) {
            fprintf(err, "ljs-run: %s:%d: expected 'NAME COUNT [fixed]'\n", path, lineno);
            rc = -1;
        } else if (sc->n == SCENE_MAX_LINES) {
            fprintf(err, "ljs-run: %s:%d: more than %d lines\n", path, lineno, SCENE_MAX_LINES);
            rc = -1;
        } else {
            scene_line_t *l = &sc->lines[sc->n++];
            snprintf(l->name, sizeof l->name, "%s", name);
            l->count = c;
            l->fixed = k == 3;
        }
    }
    if (rc == 0 && sc->n == 0) {
        fprintf(err, "ljs-run: %s names no scripts\n", path);
        rc = -1;
    }
    return rc;
}
