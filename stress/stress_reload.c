/* stress_reload.c - hot reload under fire.
 *
 * ljs-stress-reload [--short] [--seconds S] [--workers N] [--seed N] [--cache 0|1] [--debounce MS]
 *
 * Frames run on every worker over a few hundred entities spread across
 * NSCRIPTS scripts (s0 also requires a module, lib/m.lua), while a writer
 * thread rewrites the scripts and the module on disk thousands of times:
 * valid versions (each sets the field `ver` to its version number) mixed with
 * broken ones (syntax error, error while running the chunk, not a table, a
 * field changing type), written in place or as temp + rename. Version
 * numbers come from one counter, so they only grow, per file and overall.
 *
 * Invariants, checked after every frame:
 *  - no frame ran two versions of one script: every entity of a script holds
 *    the same `ver` (and, for s0, the same module version `mver`);
 *  - only valid versions of the right file ever run, and a script's running
 *    version never goes back;
 *  - entity state survives reloads: every entity's `n` counts every frame;
 *  - no update ever raised (stats.script_errors stays 0).
 * After the writer stops (frames keep running until the watcher is quiet):
 *  - every file whose last write was valid runs exactly that version (s0 and
 *    the module are judged together: a module change reloads s0 from disk, so
 *    a broken s0 holds the module back, and the other way round);
 *  - then every file gets a new valid version, which must all run (no reload
 *    lost); then some get broken versions, which must each be reported while
 *    the last valid version keeps running; then fixed, which must run again;
 *  - per-state memory does not grow without bound (see check_memory).
 * TORN MODULES: an in-place save truncates the file, then writes it, and a
 * reload triggered meanwhile (by an earlier event of the same file, with a
 * small debounce) can read it half-written. For a script that is harmless
 * (any strict prefix is a syntax error or returns no table: refused), but a
 * prefix of a module that is empty or only a comment is a valid chunk
 * returning nothing, so require() gives `true` and s0 runs with it until the
 * write's own IN_CLOSE_WRITE reloads it again. s0 tolerates that (mver = 0)
 * and such frames are counted and printed, not failed; the final rounds
 * still require the last valid module to run.
 * The process exits 0 only if every invariant held; otherwise 1 with the
 * failures listed. Run it under -DLJS_SANITIZE=thread/address too: the
 * short mode is a CTest test (label stress-short).
 */
#include <ljs.h>

#include "stress/stress_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#define NSCRIPTS 5
#define MODULE NSCRIPTS /* file index of lib/m.lua */
#define NFILES (NSCRIPTS + 1)
#define ENTS_PER_SCRIPT 60
/* Version numbers are indexes into valid_of[]; the writer stops there. */
#define MAX_VERSIONS (1u << 22)
#define MAX_FAILURES 16

/* ========================================================================
 * Options, time, randomness
 * ======================================================================== */

typedef struct opts_s {
    int short_mode;
    double seconds;
    uint32_t workers;
    uint64_t seed;
    uint32_t cache;
    uint32_t debounce_ms;
} opts_t;

/* ========================================================================
 * Failures
 * ======================================================================== */

static int nfailures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    /* Only the first few are printed: one broken invariant tends to repeat
     * every frame. */
    if (nfailures++ < MAX_FAILURES) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "stress-reload: FAIL: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

/* ========================================================================
 * Files and versions
 * ======================================================================== */

typedef enum broken_e {
    BROKEN_SYNTAX,
    BROKEN_CHUNK_ERROR,
    BROKEN_NOT_TABLE,
    BROKEN_FIELD_TYPE,
    NBROKEN
} broken_t;

/* Writer-side bookkeeping. During the run only the writer thread writes it;
 * the owner reads the atomics for progress and valid_of[] for the checks,
 * and everything else after joining the writer. */
typedef struct files_s {
    char dir[64];
    char path[NFILES][128];
    atomic_uchar *valid_of; /* version -> 1 + file index if written valid, else 0 */
    atomic_uint next_version;
    atomic_uint last_valid[NFILES]; /* last valid version written */
    uint32_t last_written[NFILES];
    int last_was_valid[NFILES];
    atomic_ulong writes, valid_writes, broken_writes, inplace_writes, rename_writes;
    char *src; /* scratch buffer for sources */
    size_t src_cap;
} files_t;

/* The source of version v of file f: valid, or broken in the given way. A
 * truncated valid source is never a different valid version: the version
 * sits in `local V = ...` before the returned table, so any prefix is a
 * syntax error or returns nothing. `pad` varies the size. */
static void make_source(files_t *fs, int f, uint32_t v, int valid, broken_t how, unsigned pad)
{
    char padding[2048];
    size_t np = pad < sizeof padding - 1 ? pad : sizeof padding - 1;
    memset(padding, 'x', np);
    padding[np] = '\0';
    char *s = fs->src;
    size_t n = fs->src_cap;
    if (f == MODULE) {
        if (valid)
            snprintf(s, n, "-- module version %u %s\nlocal V = %u\nreturn { ver = V }\n", v, padding, v);
        else if (how == BROKEN_SYNTAX || how == BROKEN_NOT_TABLE)
            /* A module may return anything: "not a table" is no error for
             * one, so it gets a syntax error instead. */
            snprintf(s, n, "-- module broken %u\nreturn { ver = = %u }\n", v, v);
        else
            snprintf(s, n, "-- module broken %u\nerror('stress: broken module %u')\n", v, v);
        return;
    }
    if (!valid) {
        static const char *const fmt[NBROKEN] = {
            "-- s%d broken %u\nreturn { update = function(self) self.ver = = %u end }\n",
            "-- s%d broken %u\nlocal V = %u\nerror('stress: broken chunk ' .. V)\nreturn {}\n",
            "-- s%d broken %u\nreturn %u\n",
            "-- s%d broken %u\nreturn { fields = { ver = %u.5 }, update = function(self) end }\n",
        };
        snprintf(s, n, fmt[how], f, v, v);
        return;
    }
    /* The junk table is garbage once the chunk has run: every reload feeds
     * every state's GC, which check_memory watches. */
    snprintf(s, n,
             "-- s%d version %u %s\n"
             "local V = %u\n"
             "%s"
             "local junk = {}\n"
             "for i = 1, 64 do junk[i] = 's%d-' .. i .. '-' .. V end\n"
             "return {\n"
             "  fields = { ver = 0, n = 0%s },\n"
             "  update = function(self, dt)\n"
             "    self.ver = V\n"
             "    self.n = self.n + 1\n"
             "%s"
             "  end,\n"
             "}\n",
             f, v, padding, v, f == 0 ? "local M = require('lib.m')\n" : "", f, f == 0 ? ", mver = 0" : "",
             f == 0 ? "    self.mver = type(M) == 'table' and M.ver or 0\n" : "");
}

/* Write a new version of file f. Returns its version number, 0 when the
 * version space is exhausted, or -1 on an I/O error. */
static long write_version(files_t *fs, int f, int valid, broken_t how, int atomic_save, unsigned pad)
{
    uint32_t v = atomic_fetch_add(&fs->next_version, 1);
    if (v >= MAX_VERSIONS)
        return 0;
    make_source(fs, f, v, valid, how, pad);
    /* Published before the file exists: whoever reads this version from
     * disk finds it flagged. */
    atomic_store_explicit(&fs->valid_of[v], (unsigned char)(valid ? f + 1 : 0), memory_order_release);
    if (write_file(fs->path[f], fs->src, atomic_save) != 0) {
        fprintf(stderr, "stress-reload: cannot write %s: %s\n", fs->path[f], strerror(errno));
        return -1;
    }
    fs->last_written[f] = v;
    fs->last_was_valid[f] = valid;
    if (valid)
        atomic_store_explicit(&fs->last_valid[f], v, memory_order_relaxed);
    atomic_fetch_add_explicit(&fs->writes, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(valid ? &fs->valid_writes : &fs->broken_writes, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(atomic_save ? &fs->rename_writes : &fs->inplace_writes, 1,
                              memory_order_relaxed);
    return (long)v;
}

/* ========================================================================
 * The writer thread
 * ======================================================================== */

typedef struct writer_s {
    files_t *fs;
    uint64_t rng;
    long max_sleep_us;
    atomic_int stop;
    int io_error;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        /* The module one write in eight: each of its changes reloads s0. */
        int f = rng_below(&w->rng, 8) == 0 ? MODULE : (int)rng_below(&w->rng, NSCRIPTS);
        int valid = rng_below(&w->rng, 10) < 7;
        broken_t how = (broken_t)rng_below(&w->rng, NBROKEN);
        int atomic_save = (int)rng_below(&w->rng, 2);
        long v = write_version(w->fs, f, valid, how, atomic_save, rng_below(&w->rng, 1500));
        if (v <= 0) {
            w->io_error = v < 0;
            break;
        }
        sleep_us((long)rng_below(&w->rng, (unsigned)w->max_sleep_us + 1));
    }
    return NULL;
}

/* ========================================================================
 * The runtime side
 * ======================================================================== */

typedef struct world_s {
    ljs_runtime_t *rt;
    files_t *fs;
    ljs_script_t script[NSCRIPTS];
    ljs_entity_t ent[NSCRIPTS][ENTS_PER_SCRIPT];
    int64_t running[NSCRIPTS]; /* version seen in the last frame */
    int64_t running_module;    /* module version seen by s0 */
    uint64_t frames;           /* frames run since the entities were created */
    uint64_t console_errors, console_other;
    uint64_t torn_module_frames; /* frames s0 ran with a half-written module */
    int module_now_torn;
    int reported_console;
} world_t;

static void on_log(void *ud, const ljs_log_line_t *line)
{
    world_t *w = ud;
    if (line->severity != LJS_LOG_ERROR) {
        w->console_other++;
        return;
    }
    w->console_errors++;
    /* Reload refusals are expected (broken versions); anything else is not. */
    if (strstr(line->text, "reload of ") == NULL && w->reported_console++ < 3)
        fail("unexpected console error [%s] %s", line->script, line->text);
}

static int get_int(const world_t *w, ljs_entity_t e, const char *field, int64_t *out)
{
    int rc = ljs_field_get_integer(w->rt, e, field, out);
    if (rc != LJS_OK)
        fail("reading field %s of entity %llu: %s", field, (unsigned long long)e.id, ljs_last_error());
    return rc;
}

/* A version read from an entity must be a valid version of file f. */
static void check_valid(const world_t *w, int64_t v, int f, const char *what)
{
    if (v <= 0 || v >= (int64_t)MAX_VERSIONS ||
        atomic_load_explicit(&w->fs->valid_of[v], memory_order_acquire) != (unsigned char)(f + 1))
        fail("frame %llu: %s runs version %lld, which was never written as a valid version of %s",
             (unsigned long long)w->frames, what, (long long)v, w->fs->path[f]);
}

/* One frame, then every per-frame invariant. */
static int frame(world_t *w)
{
    int rc = ljs_frame(w->rt, 1.0 / 60.0);
    if (rc != LJS_OK) {
        fail("ljs_frame: %s", ljs_last_error());
        return rc;
    }
    w->frames++;
    ljs_console_drain(w->rt, on_log, w);
    for (int s = 0; s < NSCRIPTS; s++) {
        int64_t first = -1, first_m = -1;
        char what[32];
        snprintf(what, sizeof what, "script s%d", s);
        for (int k = 0; k < ENTS_PER_SCRIPT; k++) {
            int64_t ver, n, mver = 0;
            if (get_int(w, w->ent[s][k], "ver", &ver) != LJS_OK ||
                get_int(w, w->ent[s][k], "n", &n) != LJS_OK ||
                (s == 0 && get_int(w, w->ent[s][k], "mver", &mver) != LJS_OK))
                return -1;
            if (k == 0) {
                first = ver;
                first_m = mver;
            } else if (ver != first || mver != first_m) {
                fail("frame %llu ran two versions of s%d: entity 0 has ver %lld mver %lld, entity %d has ver "
                     "%lld mver %lld",
                     (unsigned long long)w->frames, s, (long long)first, (long long)first_m, k,
                     (long long)ver, (long long)mver);
                return -1;
            }
            if ((uint64_t)n != w->frames) {
                fail("frame %llu: entity %d of s%d counted %lld updates (state lost in a reload?)",
                     (unsigned long long)w->frames, k, s, (long long)n);
                return -1;
            }
        }
        check_valid(w, first, s, what);
        if (first < w->running[s])
            fail("frame %llu: s%d went back from version %lld to %lld", (unsigned long long)w->frames, s,
                 (long long)w->running[s], (long long)first);
        w->running[s] = first;
        if (s == 0 && first_m == 0) {
            w->torn_module_frames++; /* see TORN MODULES in the header */
        } else if (s == 0) {
            check_valid(w, first_m, MODULE, "module lib/m.lua (seen by s0)");
            if (first_m < w->running_module)
                fail("frame %llu: the module went back from version %lld to %lld",
                     (unsigned long long)w->frames, (long long)w->running_module, (long long)first_m);
            w->running_module = first_m;
        }
        if (s == 0)
            w->module_now_torn = first_m == 0;
    }
    ljs_stats_t st;
    if (ljs_stats_get(w->rt, &st) == LJS_OK && st.script_errors != 0) {
        fail("frame %llu: %llu update calls raised", (unsigned long long)w->frames,
             (unsigned long long)st.script_errors);
        return -1;
    }
    return nfailures ? -1 : 0;
}

/* Frames (a few ms apart) until the watcher has been quiet for `quiet_s`:
 * no new file-change record, reload or refused reload. */
static int frames_until_quiet(world_t *w, double quiet_s, double max_s)
{
    ljs_stats_t st;
    uint64_t last_sum = UINT64_MAX;
    double t0 = now_s(), since = t0;
    while (now_s() - t0 < max_s) {
        if (frame(w) != 0)
            return -1;
        if (ljs_stats_get(w->rt, &st) != LJS_OK)
            return -1;
        uint64_t sum = st.watch_events + st.reloads + st.reload_errors + st.watch_overflows;
        if (sum != last_sum) {
            last_sum = sum;
            since = now_s();
        } else if (now_s() - since >= quiet_s) {
            return 0;
        }
        sleep_us(2000);
    }
    fail("the watcher did not settle within %.0f s", max_s);
    return -1;
}

/* ========================================================================
 * Memory
 * ======================================================================== */

typedef struct memwin_s {
    uint64_t min[256];
    int seen;
} memwin_t;

/* Lowest current_bytes of every state over a window of frames: the lowest
 * point is the one closest to a finished GC cycle, which is as near to
 * "after a full GC" as the public API gets (there is no GC call yet). */
static void mem_sample(const world_t *w, memwin_t *m, uint32_t nworkers)
{
    for (uint32_t i = 0; i < nworkers && i < 256; i++) {
        ljs_state_memory_t sm;
        if (ljs_state_memory(w->rt, i, &sm) != LJS_OK)
            continue;
        if (!m->seen || sm.current_bytes < m->min[i])
            m->min[i] = sm.current_bytes;
    }
    m->seen = 1;
}

/* Bounded growth: the level late in the run within 25% of the level after
 * the first cycles. The target is 5% after a full GC; without a GC
 * call, Lua's incremental collector leaves up to a cycle's worth of garbage
 * (LUAI_GCPAUSE: up to 2x the live size) at any sample, so 5% would be
 * noise. The states here are small (~30 KiB), so one version not yet
 * collected is already 10-20% of one: growth counts only past 32 KiB too.
 * Tighten this when managed GC lands. */
static void check_memory(const world_t *w, const memwin_t *early, const memwin_t *late, uint32_t nworkers)
{
    for (uint32_t i = 0; i < nworkers && i < 256; i++) {
        ljs_state_memory_t sm;
        if (ljs_state_memory(w->rt, i, &sm) != LJS_OK)
            continue;
        double growth = early->min[i] ? (double)late->min[i] / (double)early->min[i] - 1.0 : 0.0;
        printf("memory: worker %u: early %.1f KiB, late %.1f KiB (%+.1f%%), now %.1f KiB, peak %.1f KiB\n", i,
               (double)early->min[i] / 1024.0, (double)late->min[i] / 1024.0, growth * 100.0,
               (double)sm.current_bytes / 1024.0, (double)sm.peak_bytes / 1024.0);
        if (growth > 0.25 && late->min[i] > early->min[i] + (uint64_t)32 * 1024)
            fail("worker %u: state memory grew %.1f%% (early %llu B, late %llu B; bound: 25%% and 32 KiB)", i,
                 growth * 100.0, (unsigned long long)early->min[i], (unsigned long long)late->min[i]);
        if (sm.failed_allocs != 0)
            fail("worker %u: %llu allocations refused by the state limit", i,
                 (unsigned long long)sm.failed_allocs);
    }
}

/* ========================================================================
 * Phases
 * ======================================================================== */

static int setup(world_t *w, const opts_t *o)
{
    files_t *fs = w->fs;
    snprintf(fs->dir, sizeof fs->dir, "/tmp/ljs-stress-reload-XXXXXX");
    if (mkdtemp(fs->dir) == NULL) {
        perror("stress-reload: mkdtemp");
        return -1;
    }
    char lib[96];
    snprintf(lib, sizeof lib, "%s/lib", fs->dir);
    if (mkdir(lib, 0700) != 0) {
        perror("stress-reload: mkdir");
        return -1;
    }
    for (int f = 0; f < NSCRIPTS; f++)
        snprintf(fs->path[f], sizeof fs->path[f], "%s/s%d.lua", fs->dir, f);
    snprintf(fs->path[MODULE], sizeof fs->path[MODULE], "%s/lib/m.lua", fs->dir);
    /* The module first: s0 requires it while loading. */
    if (write_version(fs, MODULE, 1, BROKEN_SYNTAX, 0, 0) <= 0)
        return -1;
    for (int f = 0; f < NSCRIPTS; f++)
        if (write_version(fs, f, 1, BROKEN_SYNTAX, 0, 0) <= 0)
            return -1;

    ljs_config_t cfg;
    if (ljs_config_init(&cfg) != LJS_OK) {
        fprintf(stderr, "stress-reload: %s\n", cfg.error);
        return -1;
    }
    cfg.workers = o->workers;
    cfg.watch = 1;
    cfg.cache = o->cache;
    cfg.reload_debounce_ms = o->debounce_ms;
    cfg.console_lines = 65536;
    int rc = ljs_runtime_create(&cfg, &w->rt);
    if (rc != LJS_OK) {
        fprintf(stderr, "stress-reload: ljs_runtime_create: %s\n", ljs_last_error());
        return -1;
    }
    for (int s = 0; s < NSCRIPTS; s++) {
        if (ljs_script_load(w->rt, fs->path[s], &w->script[s]) != LJS_OK) {
            fprintf(stderr, "stress-reload: loading %s: %s\n", fs->path[s], ljs_last_error());
            return -1;
        }
        for (int k = 0; k < ENTS_PER_SCRIPT; k++)
            if (ljs_entity_create(w->rt, &w->ent[s][k]) != LJS_OK ||
                ljs_script_attach(w->rt, w->ent[s][k], w->script[s]) != LJS_OK) {
                fprintf(stderr, "stress-reload: entities: %s\n", ljs_last_error());
                return -1;
            }
    }
    ljs_stats_t st;
    if (ljs_stats_get(w->rt, &st) != LJS_OK || st.watch_mode != 1) {
        fprintf(stderr, "stress-reload: the runtime is not watching with inotify (mode %u)\n", st.watch_mode);
        return -1;
    }
    return 0;
}

static void progress(const world_t *w, double t)
{
    ljs_stats_t st;
    ljs_state_memory_t sm = {0};
    const files_t *fs = w->fs;
    if (ljs_stats_get(w->rt, &st) != LJS_OK)
        return;
    ljs_state_memory(w->rt, 0, &sm);
    printf("t=%4.1fs frames=%llu writes=%lu (valid %lu, broken %lu; in place %lu, renamed %lu) reloads=%llu "
           "refused=%llu events=%llu overflows=%llu s0=v%lld module=v%lld mem0=%.0fKiB\n",
           t, (unsigned long long)w->frames, atomic_load(&fs->writes), atomic_load(&fs->valid_writes),
           atomic_load(&fs->broken_writes), atomic_load(&fs->inplace_writes), atomic_load(&fs->rename_writes),
           (unsigned long long)st.reloads, (unsigned long long)st.reload_errors,
           (unsigned long long)st.watch_events, (unsigned long long)st.watch_overflows,
           (long long)w->running[0], (long long)w->running_module, (double)sm.current_bytes / 1024.0);
    fflush(stdout);
}

/* After the writer stopped: whatever was written last and valid runs. s0 and
 * the module depend on each other (see the header), so they are exact only
 * when both ended valid; otherwise no newer than the last valid write. */
static void check_after_writer(const world_t *w)
{
    const files_t *fs = w->fs;
    int pair_exact = fs->last_was_valid[0] && fs->last_was_valid[MODULE];
    for (int f = 0; f < NFILES; f++) {
        int64_t running = f != MODULE ? w->running[f] : w->module_now_torn ? 0 : w->running_module;
        int64_t want = (int64_t)atomic_load(&fs->last_valid[f]);
        int exact = (f == 0 || f == MODULE) ? pair_exact : fs->last_was_valid[f];
        if (exact && running != want)
            fail("after the writer stopped, %s runs version %lld, but its last write was valid version %lld "
                 "(a reload was lost)",
                 fs->path[f], (long long)running, (long long)want);
        else if (!exact && running > want)
            fail("after the writer stopped, %s runs version %lld, newer than its last valid version %lld",
                 fs->path[f], (long long)running, (long long)want);
    }
}

static void check_all_run_last_valid(const world_t *w, const char *when)
{
    for (int f = 0; f < NFILES; f++) {
        int64_t running = f != MODULE ? w->running[f] : w->module_now_torn ? 0 : w->running_module;
        int64_t want = (int64_t)atomic_load(&w->fs->last_valid[f]);
        if (running != want)
            fail("%s: %s runs version %lld, expected its last valid version %lld", when, w->fs->path[f],
                 (long long)running, (long long)want);
    }
}

/* The deterministic end: (1) a new valid version of every file must run (no
 * reload lost); (2) broken versions of some files must be refused, each
 * reported, while the last valid version keeps running; (3) fixing them
 * reloads normally. */
static int final_rounds(world_t *w, double max_s)
{
    files_t *fs = w->fs;
    ljs_stats_t before, after;
    for (int f = 0; f < NFILES; f++)
        if (write_version(fs, f, 1, BROKEN_SYNTAX, f % 2, 100) <= 0)
            return -1;
    if (frames_until_quiet(w, 0.3, max_s) != 0)
        return -1;
    check_all_run_last_valid(w, "after a final valid version of every file");

    /* s1, s3 and the module: each kind of breakage, both ways of saving. */
    static const int broken_files[] = {1, 3, 4, MODULE};
    static const broken_t broken_how[] = {BROKEN_SYNTAX, BROKEN_CHUNK_ERROR, BROKEN_NOT_TABLE,
                                          BROKEN_CHUNK_ERROR};
    const int nbroken = (int)(sizeof broken_files / sizeof broken_files[0]);
    if (ljs_stats_get(w->rt, &before) != LJS_OK)
        return -1;
    for (int i = 0; i < nbroken; i++)
        if (write_version(fs, broken_files[i], 0, broken_how[i], i % 2, 0) <= 0)
            return -1;
    if (frames_until_quiet(w, 0.3, max_s) != 0 || ljs_stats_get(w->rt, &after) != LJS_OK)
        return -1;
    check_all_run_last_valid(w, "after broken versions of s1, s3, s4 and the module");
    /* Each broken file is refused at least once (the module through s0). */
    if (after.reload_errors - before.reload_errors < (uint64_t)nbroken)
        fail("%d broken versions written, but only %llu reloads refused (a change was lost)", nbroken,
             (unsigned long long)(after.reload_errors - before.reload_errors));

    for (int i = 0; i < nbroken; i++)
        if (write_version(fs, broken_files[i], 1, BROKEN_SYNTAX, (i + 1) % 2, 7) <= 0)
            return -1;
    if (frames_until_quiet(w, 0.3, max_s) != 0)
        return -1;
    check_all_run_last_valid(w, "after fixing them");
    return 0;
}

static void remove_tree(const files_t *fs)
{
    char tmp[160];
    for (int f = 0; f < NFILES; f++) {
        unlink(fs->path[f]);
        snprintf(tmp, sizeof tmp, "%s.tmp", fs->path[f]);
        unlink(tmp);
    }
    snprintf(tmp, sizeof tmp, "%s/lib", fs->dir);
    rmdir(tmp);
    rmdir(fs->dir);
}

/* ========================================================================
 * main
 * ======================================================================== */

static int parse_args(int argc, char **argv, opts_t *o)
{
    double v;
    int seconds_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--short")) {
            o->short_mode = 1;
        } else if (!strcmp(a, "--seconds") && val && parse_num(val, 0.5, 86400, &v) == 0) {
            o->seconds = v;
            seconds_given = 1;
            i++;
        } else if (!strcmp(a, "--workers") && val && parse_num(val, 1, 256, &v) == 0 && v == (uint32_t)v) {
            o->workers = (uint32_t)v;
            i++;
        } else if (!strcmp(a, "--seed") && val) {
            char *end = NULL;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (end == val || *end != '\0' || errno != 0)
                return -1;
            o->seed = s;
            i++;
        } else if (!strcmp(a, "--cache") && val && parse_num(val, 0, 1, &v) == 0 && v == (uint32_t)v) {
            o->cache = (uint32_t)v;
            i++;
        } else if (!strcmp(a, "--debounce") && val && parse_num(val, 0, 10000, &v) == 0 && v == (uint32_t)v) {
            o->debounce_ms = (uint32_t)v;
            i++;
        } else {
            return -1;
        }
    }
    if (!seconds_given)
        o->seconds = o->short_mode ? (UNDER_SANITIZER ? 5.0 : 3.0) : 30.0;
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o = {
        .short_mode = 0, .seconds = 30.0, .workers = 4, .seed = 20240605, .cache = 1, .debounce_ms = 0};
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr,
                "usage: ljs-stress-reload [--short] [--seconds S] [--workers N] [--seed N] [--cache 0|1] "
                "[--debounce MS]\n");
        return 2;
    }
    static files_t fs;
    static world_t w;
    fs.valid_of = calloc(MAX_VERSIONS, sizeof *fs.valid_of);
    fs.src_cap = 8192;
    fs.src = malloc(fs.src_cap);
    if (fs.valid_of == NULL || fs.src == NULL) {
        fprintf(stderr, "stress-reload: out of memory\n");
        return 2;
    }
    atomic_init(&fs.next_version, 1);
    w.fs = &fs;
    /* Sanitizers slow every reload 5-20x: write less often so frames keep
     * up and the short mode stays well inside its CTest timeout. */
    writer_t wr = {.fs = &fs, .rng = o.seed, .max_sleep_us = UNDER_SANITIZER ? 4000 : 1000, .io_error = 0};
    atomic_init(&wr.stop, 0);
    printf("stress-reload: seed %llu, %.1f s, %u workers, %d scripts x %d entities + 1 module, cache %u, "
           "debounce %u ms%s\n",
           (unsigned long long)o.seed, o.seconds, o.workers, NSCRIPTS, ENTS_PER_SCRIPT, o.cache,
           o.debounce_ms, UNDER_SANITIZER ? ", sanitizer build" : "");
    int rc = setup(&w, &o);
    if (rc == 0 && frame(&w) != 0)
        rc = -1;
    pthread_t writer;
    if (rc == 0 && pthread_create(&writer, NULL, writer_main, &wr) != 0) {
        fprintf(stderr, "stress-reload: cannot start the writer thread\n");
        rc = -1;
    }
    static memwin_t early, late;
    uint32_t nworkers = ljs_runtime_config(w.rt)->workers;
    if (rc == 0) {
        double t0 = now_s(), next_progress = 1.0;
        for (;;) {
            double t = now_s() - t0;
            if (t >= o.seconds || frame(&w) != 0)
                break;
            if (t >= 0.1 * o.seconds && t < 0.2 * o.seconds)
                mem_sample(&w, &early, nworkers);
            if (t >= 0.9 * o.seconds)
                mem_sample(&w, &late, nworkers);
            if (t >= next_progress) {
                progress(&w, t);
                next_progress += 1.0;
            }
            sleep_us(500); /* let the writer run on small machines */
        }
        atomic_store(&wr.stop, 1);
        pthread_join(writer, NULL);
        if (wr.io_error)
            fail("the writer could not write a file");
        progress(&w, now_s() - t0);
        double max_s = UNDER_SANITIZER ? 30.0 : 10.0;
        if (nfailures == 0 && frames_until_quiet(&w, 0.3, max_s) == 0) {
            check_after_writer(&w);
            if (nfailures == 0)
                final_rounds(&w, max_s);
        }
        if (nfailures == 0 && early.seen && late.seen)
            check_memory(&w, &early, &late, nworkers);
        ljs_stats_t st = {0};
        ljs_cache_stats_t cs = {0};
        ljs_cache_stats(w.rt, &cs);
        if (ljs_stats_get(w.rt, &st) == LJS_OK)
            printf("result: %llu frames, %lu writes (%lu valid, %lu broken; %lu in place, %lu renamed), %llu "
                   "reloads, %llu refused, %llu watch events, %llu overflows, %llu compiles, %llu console "
                   "errors, %llu frames with a torn module\n",
                   (unsigned long long)w.frames, atomic_load(&fs.writes), atomic_load(&fs.valid_writes),
                   atomic_load(&fs.broken_writes), atomic_load(&fs.inplace_writes),
                   atomic_load(&fs.rename_writes), (unsigned long long)st.reloads,
                   (unsigned long long)st.reload_errors, (unsigned long long)st.watch_events,
                   (unsigned long long)st.watch_overflows, (unsigned long long)cs.compiles,
                   (unsigned long long)w.console_errors, (unsigned long long)w.torn_module_frames);
        if (st.reloads == 0 || atomic_load(&fs.writes) < 100)
            fail("too little happened (%llu reloads, %lu writes): the test proves nothing",
                 (unsigned long long)st.reloads, atomic_load(&fs.writes));
    }
    ljs_runtime_destroy(w.rt);
    remove_tree(&fs);
    free(fs.valid_of);
    free(fs.src);
    if (rc != 0) {
        fprintf(stderr, "stress-reload: setup failed\n");
        return 2;
    }
    if (nfailures) {
        fprintf(stderr, "stress-reload: %d invariant failure(s) (seed %llu)\n", nfailures,
                (unsigned long long)o.seed);
        return 1;
    }
    printf("stress-reload: OK, every invariant held\n");
    return 0;
}
