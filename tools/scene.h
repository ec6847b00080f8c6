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
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#define SCENE_MAX_LINES 64
#define SCENE_NAME_MAX 64
#define SCENE_COUNT_MAX 100000000L

#define SCENE_MAX_BROKEN 64

typedef struct scene_line_s {
    char name[SCENE_NAME_MAX];
    long count;
    int fixed;
    /* The rest is ljs-run's (zero after parsing). */
    ljs_script_t script;
    /* The line's script failed to load: its entities wait, with the point of
     * the position stream they would have started at, so they get the same
     * starting fields once the script loads. */
    int pending;
    long pending_count;
    uint64_t rng_at;
} scene_line_t;

/* A script file that failed to load, retried whenever it changes
 * (ljs-run's; the parser leaves it alone). */
typedef struct broken_s {
    char path[PATH_MAX];
    char name[SCENE_NAME_MAX];
    struct stat st; /* as last tried */
    int loaded;
} broken_t;

typedef struct scene_s {
    scene_line_t lines[SCENE_MAX_LINES];
    size_t n;
    broken_t broken[SCENE_MAX_BROKEN];
    size_t nbroken;
} scene_t;

/* Parse the scene file open as f into sc's lines (its name `path` is only
 * for messages, written to `err` as "ljs-run: path:line: ..."); sc->broken
 * is not touched. Returns 0, or -1 after
 * printing why (a bad line, too many lines, no line at all).
 * Thread: any. Blocks: reads f. */
int scene_parse(FILE *f, const char *path, scene_t *sc, FILE *err);

#endif
