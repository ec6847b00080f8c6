/* scene.h - ljs-run's scene.txt: which scripts to instantiate, how many.
 *
 * One line per script: `NAME COUNT [fixed]` (tokens separated by
 * whitespace), `#` starts a comment, blank lines are skipped; at most
 * SCENE_MAX_LINES lines, names of at most SCENE_NAME_MAX - 1 bytes, counts
 * 0..SCENE_COUNT_MAX (decimal, at most 31 characters). Anything else (a NUL byte included) is an
 * error naming the line; nothing is truncated or split silently. Fuzzed by
 * fuzz/fuzz_scene.c against a reference parser. */
#ifndef LJS_TOOLS_SCENE_H
#define LJS_TOOLS_SCENE_H

#include <ljs.h>
#include <stddef.h>
#include <stdio.h>

#define SCENE_MAX_LINES 64
#define SCENE_NAME_MAX 64
#define SCENE_COUNT_MAX 100000000L

typedef struct scene_line_s {
    char name[SCENE_NAME_MAX];
    long count;
    int fixed;
    ljs_script_t script; /* set by ljs-run once the scripts are loaded */
} scene_line_t;

typedef struct scene_s {
    scene_line_t lines[SCENE_MAX_LINES];
    size_t n;
} scene_t;

/* Parse the scene file open as f (its name `path` is only for messages,
 * written to `err` as "ljs-run: path:line: ..."). Returns 0, or -1 after
 * printing why (a bad line, too many lines, no line at all).
 * Thread: any. Blocks: reads f. */
int scene_parse(FILE *f, const char *path, scene_t *sc, FILE *err);

#endif
