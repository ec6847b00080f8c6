/* soak.c - ljs-soak: a long run of a busy scene with faults, churn and hot
 * reload, failing if memory grows, an event goes missing, a frame hangs or
 * a fault escapes.
 *
 * ljs-soak [--duration 30s|10m|24h|N] [--workers N] [--restart-workers a,b,c] [--segment DUR]
 *          [--seed N] [--csv FILE] [--max-growth PCT] [--warmup PCT%|DUR] [--stuck-ms MS]
 *          [--progress-s S] [--fast]
 *
 * THE SCENE (stress/soak_scripts.h), written into a fresh mkdtemp directory
 * and hot-reloaded from there (LJS_WATCH=1, inotify): about 1,800 entities,
 * each with exactly one script. Movers (fast form, the bulk), prey and
 * predators exchanging "hit"/"fed" events with table payloads, a spawner
 * that tops prey, predators and short-lived blobs up to fixed goals and culls
 * blobs (entities are created and destroyed every few frames, the population
 * stays bounded), storms sending bursts of 100-500 "ping" events to sinks
 * (delivered) and movers (no handler: dropped), and faulty entities raising
 * errors, writing wrong types and other entities' fields, and, on the host's
 * wall clock (every 2 s, every 0.25 s early in the warm-up), runaway loops
 * (stopped by the runtime's watchdog: script_timeout_ms = 50 ms; 100 ms
 * under ASan, 500 ms under TSan, where a bomb's copies alone take longer
 * than 100 ms) and memory bombs (refused by the 64 MiB per-state limit), in
 * updates and in handlers. Between frames the host replaces 4 of its
 * movers, toggles a tag queries use, sends pings (to sinks, a mover, a
 * destroyed entity) and pokes, and a rewriter saves one file every 250-600
 * ms (and >= 6 frames apart, so the watcher sees every version): a new valid
 * version, or a broken one (syntax error, error in the chunk, not a table, or
 * a chunk that fills every state to its limit while the reload loads it)
 * that must be refused while the old version keeps running, and that the
 * next save always fixes; in place or temp + rename (the module
 * lib/arena.lua: rename only, see stress_reload.c TORN MODULES). Frames are
 * paced at 60 Hz (--fast: back to back). The console is drained after every
 * frame and its lines counted by severity and cause.
 *
 * WORKERS: --workers N (default 4) for the whole run, or --restart-workers
 * 1,2,4: the run is cut into segments (--segment DUR, default duration / the
 * number of counts; the list repeats) and at each segment's end the runtime
 * is destroyed and re-created with the next count, with a fresh scene.
 * Everything below is checked per segment; the CSV and the totals add the
 * segments up.
 *
 * INVARIANTS (exit 1 listing every failure, 0 only if all held; 2 = usage or
 * setup error):
 *  1. Memory does not grow. After the warm-up (--warmup: default 20% of the
 *     segment, at least 5 s, at most 10 min, never more than half of it),
 *     the baseline is the median of the first K samples and the end level
 *     the median of the last K samples of the segment (K = 1..5, a quarter
 *     of the measured seconds). Right before each of those samples the host
 *     calls ljs_gc_collect(), so Lua bytes are live bytes, not wherever the
 *     GC cycle happened to be, and the C heap (glibc's bytes in use: the
 *     runtime's own structures, ljs gives Lua its mimalloc heaps) and RSS
 *     are read at that same moment. Growth of any of the three past
 *     --max-growth percent fails; the C heap and RSS also need to grow past
 *     an absolute slack (128 KiB, 1 MiB: allocator caches and page steps,
 *     measured, see grew()), Lua bytes need not. Per segment because a new
 *     runtime starts from scratch; across runtimes, a segment's end levels
 *     are compared with an earlier segment's of the same worker count (see
 *     check_memory_across). RSS is judged only with K >= 3 (12+ s measured)
 *     and the C heap and RSS never under ASan/TSan (shadow memory, the
 *     quarantine, their own allocator); they are still reported. What keeps
 *     RSS comparable: memory bombs are built of 20 MiB strings, past
 *     mimalloc's huge-object size, so freeing them unmaps the pages at once
 *     (small-block bombs left the allocator holding 15-40 MiB for seconds to
 *     minutes: RSS swung between 6 and 47 MiB); the console and file-change
 *     rings are small (a calloc'd ring's pages become resident only as its
 *     head first goes round, which reads as growth for minutes); the storms'
 *     biggest burst is ordered once early (event buffers keep their largest
 *     size); and faults come fast early in the warm-up (the first few leave
 *     the allocator's pages more spread out, 64-128 KiB steps). Every sample
 *     also checks that no state holds more than its limit. --inject-leak
 *     (not in the usage text: a self-test) adds entities that keep every
 *     string they make; the run must then fail here.
 *  2. No event is lost. events_delivered counts handler calls and
 *     events_dropped events nobody handles (dead target, or no handler: see
 *     runtime/frame.c group_events and runtime/scripts/exec.c run_events). With one
 *     script per entity an event has at most one handler, so at any frame
 *     boundary delivered + dropped <= sent (checked every frame), and once
 *     the queues are empty they are equal. At each segment's end the host
 *     sets the control entity's `quiet`, every script and the host stop
 *     sending, and after frames in which `sent` stays put the equality must
 *     hold exactly.
 *  3. No frame hangs. Every ljs_frame taking more than --stuck-ms fails, and
 *     a watchdog thread aborts the process with a message if the main loop
 *     makes no progress for 3 x --stuck-ms (a hang is a failure, not a CI
 *     timeout).
 *  4. No crash (a crash exits non-zero by itself).
 *  5. Sanity: frames ran; reloads happened (when the run is >= 10 s); script
 *     errors were caught; every runaway and memory bomb the host triggered
 *     became a script error (a timeout or a memory error: under TSan a bomb
 *     often outlasts the timeout first, so the two are counted together),
 *     and no other error appeared (an error line the faults do not explain
 *     fails); every saved version was seen: reloads >= valid saves and
 *     refused reloads >= broken saves; a script kept running while its file
 *     was broken, and the sinks run the last valid sink version at the end;
 *     the population stayed bounded; no console line was dropped (the counts
 *     would be off).
 *
 * Under ThreadSanitizer the runaway loops allocate (see faulty.lua) and the
 * known ck false positives are suppressed from inside the program
 * (__tsan_default_suppressions below), so `ljs-soak` needs no TSAN_OPTIONS.
 */
#include <ljs.h>

#include "stress/stress_util.h"

#include "stress/soak_scripts.h"

#include <errno.h>
#include <math.h>
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
#if defined(__GLIBC__)
#include <malloc.h>
#endif

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
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define MAX_WORKERS 256
#define MAX_COUNTS 16   /* entries of --restart-workers */
#define MAX_FAILURES 32 /* failure messages kept for the summary */
#define BUF_CAP 16384   /* one script source */

/* The scene. */
#define FRAME_DT (1.0 / 60.0)
#define STATE_MEM_MB 64   /* per-state limit: what the memory bombs hit */
#define NHOST_MOVERS 1200 /* movers the host creates and churns */
#define NPREY 300         /* the spawner's goals */
#define NPREDATORS 30
#define NBLOBS 200
#define NSTORMS 4
#define NSINKS 48
#define NFAULTY 8
#define NLEAKERS 4
#define MAX_ENTITIES 4000 /* "bounded population": the goals above plus slack */
#define HOST_CHURN 4      /* host movers replaced per frame */
#define NDEAD 64          /* destroyed handles kept as event targets */

/* Faults, saves, samples. */
#define FAULT_PERIOD_S 2.0        /* a runaway or a memory bomb this often */
#define FAULT_PERIOD_WARM_S 0.25  /* ... and this often early in the warm-up, */
#define FAULT_WARM_S 10.0         /* its first this many seconds */
#define REWRITE_MIN_FRAMES 6      /* frames between two saves */
#define REWRITE_SETTLE_S 1.5      /* no new versions this close to a segment's end */
#define SAMPLE_PERIOD_S 1.0       /* CSV rows and memory samples */
#define MEM_K_MAX 5               /* samples per median */
#define RSS_MIN_K 3               /* RSS is judged only from medians of 3+ samples (12+ s measured) */
#define RSS_SLACK_KB 1024         /* ... and only growth past this too: allocator page steps */
#define C_HEAP_SLACK (128 * 1024) /* C heap growth below this is glibc's caches filling (see grew) */

#if UNDER_TSAN
/* ThreadSanitizer reads its default suppressions from this hook: the ck
 * internals of tests/tsan.supp (which says why each is a false positive),
 * so `ljs-soak` runs clean under TSan without TSAN_OPTIONS. Keep the two
 * lists the same. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:libck.so\n"
           "race:_ck_ring_enqueue_sp\n"
           "race:_ck_ring_dequeue_sc\n"
           "race:_ck_ring_enqueue_mp\n";
}
#endif

/* ========================================================================
 * Options, time, randomness
 * ======================================================================== */

typedef struct opts_s {
    double duration_s;
    uint32_t workers;
    uint32_t counts[MAX_COUNTS]; /* --restart-workers */
    uint32_t ncounts;
    double segment_s; /* 0: duration / ncounts */
    uint64_t seed;
    const char *csv;
    double max_growth_pct;
    double warmup; /* seconds, or percent when warmup_pct */
    int warmup_pct, warmup_given;
    double stuck_ms;
    double progress_s;
    int fast;
    int inject_leak;
} opts_t;

/* ========================================================================
 * Failures
 * ======================================================================== */

static int nfailures;
static char failures[MAX_FAILURES][320];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Printed at once (a long run shows it early) and again in the summary. One
 * broken invariant tends to repeat, so only the first MAX_FAILURES are kept. */
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (nfailures < MAX_FAILURES)
        vsnprintf(failures[nfailures], sizeof failures[0], fmt, ap);
    va_end(ap);
    if (nfailures < MAX_FAILURES) {
        fprintf(stderr, "soak: FAIL: %s\n", failures[nfailures]);
        fflush(stderr);
    }
    nfailures++;
}

/* ========================================================================
 * The main-loop watchdog
 * ======================================================================== */

/* The main loop stamps its progress and what it is about to do; a thread
 * aborts the process if the stamp gets older than 3 x --stuck-ms, naming
 * the step that hung. Relaxed: a stale read only delays the verdict by one
 * poll, and the label is a string literal (never freed). */
static atomic_llong wd_stamp_ms;
static _Atomic(const char *) wd_what;
static atomic_int wd_stop;

static void wd_mark(const char *what)
{
    atomic_store_explicit(&wd_stamp_ms, (long long)(now_s() * 1000.0), memory_order_relaxed);
    atomic_store_explicit(&wd_what, what, memory_order_relaxed);
}

static void *watchdog_main(void *arg)
{
    double limit_ms = *(const double *)arg;
    while (!atomic_load_explicit(&wd_stop, memory_order_relaxed)) {
        sleep_s(0.1);
        double idle_ms = now_s() * 1000.0 - (double)atomic_load_explicit(&wd_stamp_ms, memory_order_relaxed);
        if (idle_ms > limit_ms) {
            fprintf(stderr,
                    "soak: FAIL: no progress for %.1f s (3 x --stuck-ms) while in %s: the run hangs; "
                    "aborting\n",
                    idle_ms / 1000.0, atomic_load_explicit(&wd_what, memory_order_relaxed));
            fflush(stderr);
            abort();
        }
    }
    return NULL;
}

/* ========================================================================
 * Script files and the rewriter's versions
 * ======================================================================== */

enum {
    F_MODULE,
    F_MOVER,
    F_PREY,
    F_PREDATOR,
    F_SPAWNER,
    F_BLOB,
    F_STORM,
    F_SINK,
    F_FAULTY,
    F_LEAKER, /* only with --inject-leak; never rewritten */
    NFILES
};
#define NREWRITTEN F_LEAKER

static const struct {
    const char *rel;
    const char *body;
} sources[NFILES] = {
    {"lib/arena.lua", soak_src_module},  {"mover.lua", soak_src_mover},     {"prey.lua", soak_src_prey},
    {"predator.lua", soak_src_predator}, {"spawner.lua", soak_src_spawner}, {"blob.lua", soak_src_blob},
    {"storm.lua", soak_src_storm},       {"sink.lua", soak_src_sink},       {"faulty.lua", soak_src_faulty},
    {"leaker.lua", soak_src_leaker},
};

typedef enum variant_e { V_VALID, V_SYNTAX, V_CHUNK_ERROR, V_NOT_TABLE, V_CHUNK_BOMB } variant_t;

typedef struct files_s {
    char dir[64];
    char path[NFILES][128];
    uint32_t next_version;
    uint32_t last_valid[NFILES];
    int broken;            /* file whose last write was broken (the next write fixes it), or -1 */
    uint64_t broken_calls; /* its script's calls when it broke */
    /* This segment's writes. */
    uint64_t writes, valid, nbroken, inplace, renamed;
    /* The whole run's. */
    uint64_t total_writes, total_valid, total_broken, total_inplace, total_renamed;
    char buf[BUF_CAP];
} files_t;

/* Write a new version of file f: the body after a header naming the
 * version, with a broken line first for the broken variants. */
static int write_version(files_t *fs, int f, variant_t how, int atomic_save)
{
    static const char *const prefix[] = {
        "",
        "local broken = = V -- syntax error\n",
        "error('soak: broken chunk of version ' .. V)\n",
        "do return V end -- not a table\n",
        /* Runs in every state while the reload loads it: each one hits its
         * limit and the reload is refused (out of memory). */
        "do local b, t = string.rep('m', 65536), {}; while true do t[#t + 1] = string.rep(b, 320) end end\n",
    };
    uint32_t v = fs->next_version++;
    int n =
        snprintf(fs->buf, sizeof fs->buf, "-- soak: %s version %u\nlocal V = %u\nlocal PURE_LOOPS = %s\n%s%s",
                 sources[f].rel, v, v, UNDER_TSAN ? "false" : "true", prefix[how], sources[f].body);
    if (n < 0 || (size_t)n >= sizeof fs->buf || write_file(fs->path[f], fs->buf, atomic_save) != 0) {
        fprintf(stderr, "soak: cannot write %s: %s\n", fs->path[f], strerror(errno));
        return -1;
    }
    if (how == V_VALID)
        fs->last_valid[f] = v;
    fs->writes++;
    fs->valid += how == V_VALID;
    fs->nbroken += how != V_VALID;
    fs->inplace += !atomic_save;
    fs->renamed += atomic_save != 0;
    return 0;
}

static int make_dir(files_t *fs)
{
    snprintf(fs->dir, sizeof fs->dir, "/tmp/ljs-soak-XXXXXX");
    if (mkdtemp(fs->dir) == NULL) {
        perror("soak: mkdtemp");
        return -1;
    }
    char lib[96];
    snprintf(lib, sizeof lib, "%s/lib", fs->dir);
    if (mkdir(lib, 0700) != 0) {
        perror("soak: mkdir");
        return -1;
    }
    for (int f = 0; f < NFILES; f++)
        snprintf(fs->path[f], sizeof fs->path[f], "%s/%s", fs->dir, sources[f].rel);
    fs->next_version = 1;
    fs->broken = -1;
    return 0;
}

static void remove_dir(const files_t *fs)
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
 * The console
 * ======================================================================== */

typedef struct console_s {
    uint64_t info, warn, error;
    uint64_t refusals;        /* "reload of ... failed" */
    uint64_t runaways, bombs; /* faulty's timeouts and memory-limit errors */
    uint64_t injected;        /* faulty's boom, poke failed, wrong type, foreign write */
    uint64_t unexpected;      /* error lines no fault explains */
} console_t;

static int has(const char *text, const char *what)
{
    return strstr(text, what) != NULL;
}

/* Every error line must have a cause the soak injected; the first few
 * unexplained ones are printed (and fail the run, invariant 5). */
static void on_log(void *ud, const ljs_log_line_t *line)
{
    console_t *c = ud;
    const char *t = line->text;
    int faulty = !strcmp(line->script, "faulty");
    if (line->severity == LJS_LOG_INFO) {
        c->info++;
        return;
    }
    if (line->severity == LJS_LOG_WARN) {
        if (c->warn++ < 10)
            fprintf(stderr, "soak: console warning (frame %llu) [%s] %s\n", (unsigned long long)line->frame,
                    line->script, t);
        return;
    }
    c->error++;
    if (has(t, "reload of ") && has(t, "failed"))
        c->refusals++;
    else if (faulty && has(t, "LJS_SCRIPT_TIMEOUT_MS"))
        c->runaways++;
    else if (faulty && (has(t, "memory limit reached") || has(t, "not enough memory")))
        c->bombs++;
    else if (faulty && (has(t, "boom from") || has(t, "poke failed") || has(t, "expects") ||
                        has(t, "cannot write field")))
        c->injected++;
    else if (c->unexpected++ < 10)
        fail("unexpected console error (frame %llu, entity %llu) [%s] %.200s",
             (unsigned long long)line->frame, (unsigned long long)line->entity, line->script, t);
}

/* ========================================================================
 * Memory samples
 * ======================================================================== */

typedef struct memwin_s {
    uint64_t rss_kb[MEM_K_MAX], lua[MEM_K_MAX], c_heap[MEM_K_MAX];
    int n, next; /* filled; next slot (the end window is a ring) */
} memwin_t;

static void memwin_add(memwin_t *m, int k, uint64_t rss_kb, uint64_t lua, uint64_t c_heap)
{
    m->rss_kb[m->next] = rss_kb;
    m->lua[m->next] = lua;
    m->c_heap[m->next] = c_heap;
    m->next = (m->next + 1) % k;
    if (m->n < k)
        m->n++;
}

static uint64_t median(const uint64_t *v, int n)
{
    uint64_t s[MEM_K_MAX];
    memcpy(s, v, (size_t)n * sizeof *s);
    for (int i = 1; i < n; i++) /* insertion sort: n <= 5 */
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            uint64_t x = s[j];
            s[j] = s[j - 1];
            s[j - 1] = x;
        }
    return s[n / 2];
}

/* Resident set size from /proc/self/statm (pages), in KiB; 0 if unknown.
 * *anon_kb gets the part not backed by files (code pages are not leaks). */
static uint64_t rss_kb(uint64_t *anon_kb)
{
    char line[256];
    *anon_kb = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    if (ok == NULL)
        return 0;
    char *end = NULL;
    strtoull(line, &end, 10); /* size */
    unsigned long long pages = strtoull(end, &end, 10), shared = strtoull(end, &end, 10);
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return 0;
    *anon_kb = (pages - (shared < pages ? shared : pages)) * (uint64_t)page / 1024;
    return pages * (uint64_t)page / 1024;
}

/* Bytes the C heap (malloc) has handed out and not taken back: the
 * runtime's own structures (ljs only allocates Lua memory from its
 * mimalloc heaps). Exact, unlike RSS; 0 where unknown (not glibc, or a
 * sanitizer's allocator). */
static uint64_t c_heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)) && !UNDER_SANITIZER
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#else
    return 0;
#endif
}

/* ========================================================================
 * The soak
 * ======================================================================== */

typedef struct totals_s {
    uint64_t frames, reloads, reload_errors, script_errors, sent, delivered, dropped, console_dropped;
} totals_t;

/* End levels of earlier segments that ran one worker count. */
typedef struct ref_s {
    int seen;         /* segments that ran it */
    int seg, rss_seg; /* the first (Lua and C heap reference) and the second (RSS reference) */
    double lua, c_heap, rss_kb;
} ref_t;

typedef struct soak_s {
    const opts_t *o;
    uint64_t rng;
    files_t fs;
    console_t con;
    FILE *csv;
    uint32_t csv_workers; /* per-worker CSV columns: the most workers any segment has */
    double t_start;

    /* This segment. */
    int seg, nseg;
    uint32_t workers;
    double seg_len, seg_t0, warm;
    int k;           /* samples per median */
    int rss_checked; /* RSS growth is judged: no sanitizer, k >= RSS_MIN_K */
    ljs_runtime_t *rt;
    ljs_script_t script[NFILES];
    ljs_entity_t control;
    ljs_entity_t movers[NHOST_MOVERS], sinks[NSINKS], faulty[NFAULTY];
    ljs_entity_t dead[NDEAD];
    uint32_t ndead;
    int quiet, fault_armed;
    double next_fault, next_tick, next_sample, rw_next;
    uint32_t frames_since_write, fault_seq;
    int bombed_all; /* the every-state memory bomb of this segment was saved */
    int burst_done; /* the storms' biggest burst was ordered */
    memwin_t base, end;

    /* The whole run. */
    totals_t done; /* finished segments */
    uint64_t host_sends, runaways_triggered, bombs_triggered, slow_frames;
    uint64_t max_entities;
    double frame_ms_max, frame_ms_max_sample, next_progress;
    /* This sample's frame times (the CSV's p50/p99 per second; a game
     * programmer's first plot). Static storage: no allocation per frame. */
    double frame_ms[16384];
    size_t nframe_ms;
    uint64_t seg_frames_min; /* fewest frames a segment ran */
    ref_t ref[MAX_WORKERS];  /* by worker count - 1 */
} soak_t;

static totals_t totals_now(const soak_t *s)
{
    totals_t t = s->done;
    ljs_stats_t st;
    if (s->rt != NULL && ljs_stats_get(s->rt, &st) == LJS_OK) {
        t.frames += st.frames;
        t.reloads += st.reloads;
        t.reload_errors += st.reload_errors;
        t.script_errors += st.script_errors;
        t.sent += st.events_sent;
        t.delivered += st.events_delivered;
        t.dropped += st.events_dropped;
        t.console_dropped += st.console_dropped;
    }
    return t;
}

static uint64_t lua_bytes(const soak_t *s, uint64_t *per_worker)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < s->workers; i++) {
        ljs_state_memory_t sm = {0};
        ljs_state_memory(s->rt, i, &sm);
        if (per_worker != NULL)
            per_worker[i] = sm.current_bytes;
        sum += sm.current_bytes;
        /* The limit is the allocator's to enforce; a state past it means
         * the accounting or the check broke. */
        if (sm.current_bytes > sm.limit_bytes || sm.peak_bytes > sm.limit_bytes)
            fail("worker %u: Lua state holds %llu bytes (peak %llu), over its limit of %llu", i,
                 (unsigned long long)sm.current_bytes, (unsigned long long)sm.peak_bytes,
                 (unsigned long long)sm.limit_bytes);
    }
    return sum;
}

/* ---- scene -------------------------------------------------------------------------- */

static int check(int rc, const char *what)
{
    if (rc != LJS_OK)
        fprintf(stderr, "soak: %s: %s (%s)\n", what, ljs_last_error(), ljs_errname(rc));
    return rc;
}

/* A new entity running script file f, placed at random when it moves. */
static int spawn_host(soak_t *s, int f, ljs_entity_t *out)
{
    ljs_runtime_t *rt = s->rt;
    if (check(ljs_entity_create(rt, out), "ljs_entity_create") != LJS_OK ||
        check(ljs_script_attach(rt, *out, s->script[f]), "ljs_script_attach") != LJS_OK)
        return -1;
    if (f == F_MOVER || f == F_PREY || f == F_PREDATOR) {
        double a = rng_unit(&s->rng) * 6.283185307179586, speed = 20.0 + 40.0 * rng_unit(&s->rng);
        if (ljs_field_set_number(rt, *out, "x", rng_unit(&s->rng) * 1000.0) != LJS_OK ||
            ljs_field_set_number(rt, *out, "y", rng_unit(&s->rng) * 1000.0) != LJS_OK ||
            ljs_field_set_number(rt, *out, "vx", speed * cos(a)) != LJS_OK ||
            ljs_field_set_number(rt, *out, "vy", speed * sin(a)) != LJS_OK)
            return check(LJS_EINVAL, "placing an entity");
    }
    return 0;
}

static int spawn_many(soak_t *s, int f, int n, ljs_entity_t *keep)
{
    for (int i = 0; i < n; i++) {
        ljs_entity_t e;
        if (spawn_host(s, f, &e) != 0)
            return -1;
        if (keep != NULL)
            keep[i] = e;
    }
    return 0;
}

static int set_control(soak_t *s, int quiet, int64_t fault, int64_t who, int burst)
{
    ljs_runtime_t *rt = s->rt;
    if (check(ljs_field_set_boolean(rt, s->control, "quiet", quiet), "control.quiet") != LJS_OK ||
        check(ljs_field_set_boolean(rt, s->control, "burst", burst), "control.burst") != LJS_OK ||
        check(ljs_field_set_integer(rt, s->control, "fault", fault), "control.fault") != LJS_OK ||
        check(ljs_field_set_integer(rt, s->control, "fault_who", who), "control.fault_who") != LJS_OK)
        return -1;
    s->quiet = quiet;
    return 0;
}

/* Fresh valid versions of every file, a new runtime with `workers` workers
 * and the whole scene. */
static int scene_create(soak_t *s)
{
    files_t *fs = &s->fs;
    for (int f = 0; f < NFILES; f++)
        if (write_version(fs, f, V_VALID, 0) != 0)
            return -1;
    fs->broken = -1;
    fs->writes = fs->valid = fs->nbroken = fs->inplace = fs->renamed = 0;

    ljs_config_t cfg;
    if (ljs_config_init(&cfg) != LJS_OK) {
        fprintf(stderr, "soak: %s\n", cfg.error);
        return -1;
    }
    cfg.workers = s->workers;
    cfg.watch = 1;
    cfg.poll_ms = 50; /* if inotify is unavailable, poll faster than the rewriter writes */
    cfg.script_timeout_ms = UNDER_TSAN ? 500 : UNDER_SANITIZER ? 100 : 50;
    cfg.state_mem_mb = STATE_MEM_MB;
    /* Small rings: both are drained every frame, and a ring's pages become
     * resident only as its head first goes round (calloc), which reads as
     * RSS growth until it has wrapped once (65536 console lines took 45
     * minutes at 60 Hz; the default 1024-slot file-change ring ~5). */
    cfg.console_lines = 256;
    cfg.watch_ring = 64;
    wd_mark("ljs_runtime_create");
    if (check(ljs_runtime_create(&cfg, &s->rt), "ljs_runtime_create") != LJS_OK)
        return -1;
    wd_mark("loading scripts");
    ljs_runtime_t *rt = s->rt;
    for (int f = F_MOVER; f < NFILES; f++) {
        if (f == F_LEAKER && !s->o->inject_leak)
            continue;
        if (ljs_script_load(rt, fs->path[f], &s->script[f]) != LJS_OK) {
            fprintf(stderr, "soak: loading %s: %s\n", fs->path[f], ljs_last_error());
            return -1;
        }
    }
    if (check(ljs_field_declare(rt, "quiet", LJS_TBOOLEAN), "declare quiet") != LJS_OK ||
        check(ljs_field_declare(rt, "fault", LJS_TINTEGER), "declare fault") != LJS_OK ||
        check(ljs_field_declare(rt, "fault_who", LJS_TINTEGER), "declare fault_who") != LJS_OK ||
        check(ljs_field_declare(rt, "burst", LJS_TBOOLEAN), "declare burst") != LJS_OK ||
        check(ljs_entity_create(rt, &s->control), "control entity") != LJS_OK ||
        check(ljs_entity_tag(rt, s->control, "control", 1), "control tag") != LJS_OK ||
        set_control(s, 0, 0, 0, 0) != 0)
        return -1;

    wd_mark("creating entities");
    ljs_entity_t spawner;
    if (spawn_many(s, F_MOVER, NHOST_MOVERS, s->movers) != 0 || spawn_many(s, F_PREY, NPREY, NULL) != 0 ||
        spawn_many(s, F_PREDATOR, NPREDATORS, NULL) != 0 || spawn_many(s, F_STORM, NSTORMS, NULL) != 0 ||
        spawn_many(s, F_SINK, NSINKS, s->sinks) != 0 || spawn_many(s, F_FAULTY, NFAULTY, s->faulty) != 0 ||
        spawn_host(s, F_SPAWNER, &spawner) != 0 ||
        (s->o->inject_leak && spawn_many(s, F_LEAKER, NLEAKERS, NULL) != 0))
        return -1;
    if (check(ljs_field_set_integer(rt, spawner, "prey_goal", NPREY), "prey_goal") != LJS_OK ||
        check(ljs_field_set_integer(rt, spawner, "predator_goal", NPREDATORS), "predator_goal") != LJS_OK ||
        check(ljs_field_set_integer(rt, spawner, "blob_goal", NBLOBS), "blob_goal") != LJS_OK)
        return -1;
    s->ndead = 0;

    ljs_stats_t st;
    if (check(ljs_stats_get(rt, &st), "ljs_stats_get") != LJS_OK)
        return -1;
    if (st.watch_mode == 0) {
        fprintf(stderr, "soak: the runtime is not watching the scripts (LJS_WATCH=0?)\n");
        return -1;
    }
    if (st.watch_mode != 1)
        fprintf(stderr, "soak: warning: watching by polling (mode %u), not inotify\n", st.watch_mode);
    return 0;
}

/* ---- between frames: churn, faults, rewrites ------------------------------------------- */

static int host_send(soak_t *s, ljs_entity_t to, const char *name, const ljs_kv_t *kv, size_t n)
{
    int rc = ljs_send(s->rt, to, name, kv, n);
    if (rc != LJS_OK) {
        fail("ljs_send('%s') to entity %llu: %s", name, (unsigned long long)to.id, ljs_last_error());
        return -1;
    }
    s->host_sends++;
    return 0;
}

static int poke(soak_t *s, ljs_entity_t to, int64_t kind)
{
    ljs_kv_t kv = {.key = "kind", .type = LJS_TINTEGER, .v = {.i = kind}};
    return host_send(s, to, "poke", &kv, 1);
}

/* The host's share of the churn: replace HOST_CHURN movers (their handles
 * become dead event targets), toggle a tag queries depend on, send pings
 * to sinks (delivered), to a mover and a dead entity (both dropped), and a
 * poke that fails one time in five. */
static int host_churn(soak_t *s)
{
    ljs_runtime_t *rt = s->rt;
    for (int k = 0; k < HOST_CHURN; k++) {
        uint32_t i = rng_below(&s->rng, NHOST_MOVERS);
        if (check(ljs_entity_destroy(rt, s->movers[i]), "ljs_entity_destroy") != LJS_OK)
            return -1;
        s->dead[s->ndead++ % NDEAD] = s->movers[i];
        if (spawn_host(s, F_MOVER, &s->movers[i]) != 0)
            return -1;
    }
    ljs_entity_t m = s->movers[rng_below(&s->rng, NHOST_MOVERS)];
    if (check(ljs_entity_tag(rt, m, "marked", (int)rng_below(&s->rng, 2)), "ljs_entity_tag") != LJS_OK)
        return -1;
    ljs_entity_t gone = s->dead[rng_below(&s->rng, s->ndead < NDEAD ? s->ndead : NDEAD)];
    if (ljs_entity_alive(rt, gone))
        fail("entity %llu was destroyed by the host but its handle is alive", (unsigned long long)gone.id);
    for (int k = 0; k < 4; k++) {
        ljs_kv_t kv[2] = {{.key = "n", .type = LJS_TINTEGER, .v = {.i = k + 1}},
                          {.key = "from", .type = LJS_TSTRING, .v = {.s = "host"}}};
        if (host_send(s, s->sinks[rng_below(&s->rng, NSINKS)], "ping", kv, 2) != 0)
            return -1;
    }
    ljs_kv_t one = {.key = NULL, .type = LJS_TNUMBER, .v = {.n = 1.5}};
    if (host_send(s, m, "ping", &one, 1) != 0 || host_send(s, gone, "ping", NULL, 0) != 0)
        return -1;
    return poke(s, s->faulty[rng_below(&s->rng, NFAULTY)], rng_below(&s->rng, 5) == 0 ? 1 : 0);
}

/* Every FAULT_PERIOD_S, one of five faults in turn: a runaway loop, a
 * table bomb and a string bomb in a faulty entity's update (through the
 * control entity, for this frame only), then a runaway and a bomb in its
 * "poke" handler. Wall clock, not frames: sanitizer builds get them too. */
static int maybe_fault(soak_t *s, double t)
{
    if (!s->burst_done && t >= 1.0) {
        /* Once, early in the warm-up: every storm's biggest burst in one
         * frame, the most events any frame can carry, so the event
         * buffers (kept at their largest) are at their high-water mark
         * before memory is measured, not whenever chance first gets there. */
        s->burst_done = s->fault_armed = 1;
        return set_control(s, 0, 0, 0, 1);
    }
    if (t < s->next_fault || s->fault_armed)
        return 0;
    /* Faster during the warm-up: each fault leaves the allocator's pages a
     * little more spread out until it has seen a few of each (RSS then
     * steps up by 64-128 KiB, measured), so those steps belong before the
     * baseline. */
    s->next_fault += t < fmin(s->warm - 1.0, FAULT_WARM_S) ? FAULT_PERIOD_WARM_S : FAULT_PERIOD_S;
    ljs_entity_t who = s->faulty[rng_below(&s->rng, NFAULTY)];
    uint32_t kind = s->fault_seq++ % 5;
    if (kind == 0 || kind == 3)
        s->runaways_triggered++;
    else
        s->bombs_triggered++;
    if (kind >= 3)
        return poke(s, who, kind == 3 ? 2 : 3);
    s->fault_armed = 1;
    return set_control(s, 0, (int64_t)kind + 1, (int64_t)who.id, 0);
}

static uint64_t script_calls(const soak_t *s, int f)
{
    ljs_script_stats_t st = {0};
    ljs_script_stats(s->rt, s->script[f == F_MODULE ? F_PREY : f], &st);
    return st.calls;
}

static uint32_t script_entities(const soak_t *s, int f)
{
    ljs_script_stats_t st = {0};
    ljs_script_stats(s->rt, s->script[f == F_MODULE ? F_PREY : f], &st);
    return st.entities;
}

/* One save, if it is time: the fix of the broken file if there is one,
 * else a random file, broken three times in ten. Only one file is ever
 * broken, and the next write fixes it, so every valid write must reload
 * (a module change reloads its dependents, none of them broken) and every
 * broken one must be refused: invariant 5 counts on it. */
static int rewrite(soak_t *s, double t)
{
    files_t *fs = &s->fs;
    if (now_s() < s->rw_next || s->frames_since_write < REWRITE_MIN_FRAMES)
        return 0;
    if (t > s->seg_len - REWRITE_SETTLE_S && fs->broken < 0)
        return 0;
    int f;
    variant_t how = V_VALID;
    if (fs->broken >= 0) {
        f = fs->broken;
        /* The script must have run meanwhile on its last valid version. */
        if (script_calls(s, f) == fs->broken_calls && script_entities(s, f) > 0)
            fail("%s stopped running while a broken version of it was on disk", sources[f].rel);
        fs->broken = -1;
    } else if (!s->bombed_all) {
        /* First thing in a segment, so even short segments have one: a
         * version of faulty.lua whose chunk fills every state to its
         * limit while the reload loads it, which must be refused. */
        f = F_FAULTY;
        how = V_CHUNK_BOMB;
        s->bombed_all = 1;
    } else {
        f = (int)rng_below(&s->rng, NREWRITTEN);
        uint32_t r = rng_below(&s->rng, 20);
        if (r < 6)
            how = r < 2                     ? V_SYNTAX
                  : r < 4                   ? V_CHUNK_ERROR
                  : r == 4 && f != F_MODULE ? V_NOT_TABLE
                                            : V_CHUNK_BOMB;
    }
    /* A module may return anything ("not a table" would be valid for it,
     * hence never V_NOT_TABLE), and is always saved by rename (torn
     * modules). */
    int atomic_save = f == F_MODULE || rng_below(&s->rng, 2);
    if (write_version(fs, f, how, atomic_save) != 0)
        return -1;
    if (how != V_VALID) {
        fs->broken = f;
        fs->broken_calls = script_calls(s, f);
    }
    s->frames_since_write = 0;
    s->rw_next = now_s() + 0.25 + 0.35 * rng_unit(&s->rng);
    return 0;
}

/* ---- frames ---------------------------------------------------------------------------- */

static int timed_frame(soak_t *s)
{
    wd_mark("ljs_frame");
    double t0 = now_s();
    int rc = ljs_frame(s->rt, FRAME_DT);
    double ms = (now_s() - t0) * 1000.0;
    wd_mark("between frames");
    if (rc != LJS_OK) {
        fail("ljs_frame: %s (%s)", ljs_last_error(), ljs_errname(rc));
        return -1;
    }
    if (ms > s->frame_ms_max_sample)
        s->frame_ms_max_sample = ms;
    if (s->nframe_ms < sizeof s->frame_ms / sizeof s->frame_ms[0])
        s->frame_ms[s->nframe_ms++] = ms;
    if (ms > s->frame_ms_max)
        s->frame_ms_max = ms;
    if (ms > s->o->stuck_ms && s->slow_frames++ < 5)
        fail("frame %llu took %.0f ms (--stuck-ms %.0f)", (unsigned long long)ljs_frame_count(s->rt), ms,
             s->o->stuck_ms);
    ljs_console_drain(s->rt, on_log, &s->con);
    s->frames_since_write++;
    return 0;
}

/* After each frame: disarm the one-frame fault, check that no script
 * wrote the control entity (only its own entity is writable), and that no
 * event was counted twice. */
static int after_frame(soak_t *s)
{
    if (s->fault_armed && set_control(s, s->quiet, 0, 0, 0) != 0)
        return -1;
    s->fault_armed = 0;
    int quiet = -1;
    ljs_field_get_boolean(s->rt, s->control, "quiet", &quiet);
    if (quiet != s->quiet)
        fail("the control entity's quiet is %d, the host set %d: a script wrote another entity", quiet,
             s->quiet);
    ljs_stats_t st;
    if (check(ljs_stats_get(s->rt, &st), "ljs_stats_get") != LJS_OK)
        return -1;
    if (st.events_delivered + st.events_dropped > st.events_sent) {
        fail("frame %llu: %llu events delivered + %llu dropped > %llu sent", (unsigned long long)st.frames,
             (unsigned long long)st.events_delivered, (unsigned long long)st.events_dropped,
             (unsigned long long)st.events_sent);
        return -1;
    }
    uint32_t n = ljs_entity_count(s->rt);
    if (n > s->max_entities)
        s->max_entities = n;
    return 0;
}

/* Sleep out the rest of a 60 Hz tick; a late frame starts the next tick
 * now instead of running the missed ones back to back. */
static void pace(soak_t *s)
{
    if (s->o->fast)
        return;
    double now = now_s();
    s->next_tick += FRAME_DT;
    if (s->next_tick > now) {
        wd_mark("sleeping between frames");
        sleep_s(s->next_tick - now);
    } else if (now - s->next_tick > FRAME_DT) {
        s->next_tick = now;
    }
}

/* ---- samples, CSV, progress --------------------------------------------------------------- */

static void csv_header(soak_t *s)
{
    if (s->csv == NULL)
        return;
    fprintf(s->csv, "elapsed_s,frames,rss_kb,lua_bytes_total");
    for (uint32_t i = 0; i < s->csv_workers; i++)
        fprintf(s->csv, ",lua_bytes_w%u", i);
    fprintf(s->csv, ",entities,reloads,script_errors,events_sent,events_delivered,events_dropped,"
                    "frame_ms_max_in_sample,segment,workers,live,c_heap_bytes,rss_anon_kb,frame_ms_p50,"
                    "frame_ms_p99\n");
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of this sample's frame times (sorted in place:
 * the buffer is reset after the sample). */
static double frame_pct(soak_t *s, double pct)
{
    if (s->nframe_ms == 0)
        return 0.0;
    size_t rank = (size_t)ceil(pct / 100.0 * (double)s->nframe_ms);
    return s->frame_ms[(rank < 1 ? 1 : rank) - 1];
}

/* One sample: a CSV row, and in the baseline and end windows of the
 * segment a memory sample of live bytes (after a full collection). */
static void sample(soak_t *s, double t)
{
    int live = t >= s->warm && (s->base.n < s->k || t >= s->seg_len - s->k - 0.5);
    if (live) {
        wd_mark("ljs_gc_collect");
        if (check(ljs_gc_collect(s->rt), "ljs_gc_collect") != LJS_OK)
            live = 0;
        wd_mark("sampling");
    }
    static uint64_t per[MAX_WORKERS];
    uint64_t anon, lua = lua_bytes(s, per), rss = rss_kb(&anon), heap = c_heap_bytes();
    if (live && s->base.n < s->k)
        memwin_add(&s->base, s->k, rss, lua, heap);
    else if (live)
        memwin_add(&s->end, s->k, rss, lua, heap);
    if (s->csv != NULL) {
        totals_t tt = totals_now(s);
        fprintf(s->csv, "%.3f,%llu,%llu,%llu", now_s() - s->t_start, (unsigned long long)tt.frames,
                (unsigned long long)rss, (unsigned long long)lua);
        for (uint32_t i = 0; i < s->csv_workers; i++)
            if (i < s->workers)
                fprintf(s->csv, ",%llu", (unsigned long long)per[i]);
            else
                fputc(',', s->csv);
        qsort(s->frame_ms, s->nframe_ms, sizeof s->frame_ms[0], by_value);
        fprintf(s->csv, ",%u,%llu,%llu,%llu,%llu,%llu,%.3f,%d,%u,%d,%llu,%llu,%.3f,%.3f\n",
                ljs_entity_count(s->rt), (unsigned long long)tt.reloads, (unsigned long long)tt.script_errors,
                (unsigned long long)tt.sent, (unsigned long long)tt.delivered, (unsigned long long)tt.dropped,
                s->frame_ms_max_sample, s->seg + 1, s->workers, live, (unsigned long long)heap,
                (unsigned long long)anon, frame_pct(s, 50.0), frame_pct(s, 99.0));
        fflush(s->csv);
    }
    s->frame_ms_max_sample = 0;
    s->nframe_ms = 0;
}

static void progress(soak_t *s)
{
    totals_t tt = totals_now(s);
    uint64_t anon, lua = lua_bytes(s, NULL);
    printf("soak: %7.1f/%.0fs seg %d/%d w%u frames=%llu ents=%u reloads=%llu refused=%llu errors=%llu "
           "events sent=%llu delivered=%llu dropped=%llu rss=%.1fMiB lua=%.2fMiB frame_max=%.1fms\n",
           now_s() - s->t_start, s->o->duration_s, s->seg + 1, s->nseg, s->workers,
           (unsigned long long)tt.frames, ljs_entity_count(s->rt), (unsigned long long)tt.reloads,
           (unsigned long long)tt.reload_errors, (unsigned long long)tt.script_errors,
           (unsigned long long)tt.sent, (unsigned long long)tt.delivered, (unsigned long long)tt.dropped,
           (double)rss_kb(&anon) / 1024.0, (double)lua / 1048576.0, s->frame_ms_max);
    fflush(stdout);
}

/* ---- end of a segment ------------------------------------------------------------------- */

/* Quiet frames until nothing is in flight: no script or host sends, the
 * watcher has settled (0.3 s without a change record or reload), and
 * `sent` stayed put over the last two frames. */
static int drain(soak_t *s, ljs_stats_t *st)
{
    if (set_control(s, 1, 0, 0, 0) != 0)
        return -1;
    double t0 = now_s(), since = t0, max_s = UNDER_SANITIZER ? 60.0 : 30.0;
    uint64_t last_watch = UINT64_MAX, last_sent = UINT64_MAX;
    int frames = 0, stable = 0;
    while (now_s() - t0 < max_s) {
        if (timed_frame(s) != 0 || after_frame(s) != 0 || check(ljs_stats_get(s->rt, st), "stats") != LJS_OK)
            return -1;
        frames++;
        uint64_t watch = st->watch_events + st->reloads + st->reload_errors + st->watch_overflows;
        if (watch != last_watch) {
            last_watch = watch;
            since = now_s();
        }
        stable = st->events_sent == last_sent ? stable + 1 : 0;
        last_sent = st->events_sent;
        /* stable >= 2: two frames after the last send, everything sent has
         * had its event phase; the watcher's last reload ran a frame too. */
        if (frames >= 4 && stable >= 2 && now_s() - since >= 0.3)
            return 0;
        pace(s);
    }
    fail("segment %d: nothing settled within %.0f s of quiet frames (events still sent: %s)", s->seg + 1,
         max_s, stable >= 2 ? "no" : "yes");
    return -1;
}

static void check_events(const soak_t *s, const ljs_stats_t *st)
{
    uint64_t ended = st->events_delivered + st->events_dropped;
    if (st->events_sent != ended)
        fail("segment %d: events lost or counted twice: %llu sent != %llu delivered + %llu dropped (= %llu)",
             s->seg + 1, (unsigned long long)st->events_sent, (unsigned long long)st->events_delivered,
             (unsigned long long)st->events_dropped, (unsigned long long)ended);
}

static void check_reloads(const soak_t *s, const ljs_stats_t *st)
{
    const files_t *fs = &s->fs;
    if (st->reloads < fs->valid)
        fail("segment %d: %llu valid versions saved but only %llu reloads (a change was lost)", s->seg + 1,
             (unsigned long long)fs->valid, (unsigned long long)st->reloads);
    if (st->reload_errors < fs->nbroken)
        fail("segment %d: %llu broken versions saved but only %llu reloads refused (one ran or was missed)",
             s->seg + 1, (unsigned long long)fs->nbroken, (unsigned long long)st->reload_errors);
    /* Whatever was broken last, the sinks run the last valid sink. */
    for (int i = 0; i < NSINKS; i++) {
        int64_t ver = -1;
        ljs_field_get_integer(s->rt, s->sinks[i], "ver", &ver);
        if (ver != (int64_t)fs->last_valid[F_SINK]) {
            fail("segment %d: sink %d runs version %lld, the last valid sink.lua is version %u", s->seg + 1,
                 i, (long long)ver, fs->last_valid[F_SINK]);
            break;
        }
    }
}

static double growth_pct(double from, double to)
{
    return from > 0 ? (to / from - 1.0) * 100.0 : 0.0;
}

/* Growth past --max-growth percent and past `slack` (in the values' unit).
 * Lua bytes are exact: no slack. The C heap (mallinfo2's bytes in use)
 * counts the chunks glibc parks in its per-thread caches (tcache: up to 7
 * freed chunks per size class) as in use; they fill up over time, bounded
 * (measured: +40 KiB over 12 runtime re-creations, and flat to the byte
 * with GLIBC_TUNABLES=glibc.malloc.tcache_count=0), hence C_HEAP_SLACK.
 * RSS moves in allocator steps: mimalloc commits 64 KiB pages per heap, and
 * a frame whose garbage peaks higher than any before (storms, a reload and
 * a bomb on one worker) leaves a step of 50-160 KiB behind, one every few
 * minutes in 10-minute runs (measured, with Lua bytes and the C heap flat):
 * on a 7 MiB process one step is 2%, hence RSS_SLACK. */
static int grew(const soak_t *s, double from, double to, double slack)
{
    return growth_pct(from, to) > s->o->max_growth_pct && to - from > slack;
}

/* Invariant 1 across runtimes: a segment's end levels against those of an
 * earlier segment with the same worker count (same scene, same states),
 * which catches what destroying a runtime leaves behind. Lua bytes and the
 * C heap against the first such segment (every runtime starts afresh); RSS
 * against the second, from the third on: the first round of counts is when
 * the process reaches its high-water mark (thread stacks, allocator caches
 * of the biggest runtime), which destroying a runtime does not give back. */
static void check_memory_across(soak_t *s, double lua1, double heap1, double rss1)
{
    ref_t *r = &s->ref[s->workers - 1];
    int seen = r->seen++;
    if (seen == 0) {
        r->seg = s->seg;
        r->lua = lua1;
        r->c_heap = heap1;
        return;
    }
    if (seen == 1) {
        r->rss_seg = s->seg;
        r->rss_kb = rss1;
    }
    double glua = growth_pct(r->lua, lua1), gheap = growth_pct(r->c_heap, heap1);
    int rss_judged = seen >= 2 && s->rss_checked;
    printf(
        "soak: memory (segment %d, %u workers, at its end): Lua %+.2f%%, C heap %+.2f%% against segment %d",
        s->seg + 1, s->workers, glua, gheap, r->seg + 1);
    if (seen >= 2)
        printf(", RSS %+.2f%% against segment %d%s", growth_pct(r->rss_kb, rss1), r->rss_seg + 1,
               rss_judged ? "" : " (not checked)");
    printf("\n");
    if (glua > s->o->max_growth_pct)
        fail("segment %d: live Lua memory %.2f%% above segment %d's with the same %u workers (%.0f -> %.0f "
             "bytes; limit %.1f%%): a runtime left something behind",
             s->seg + 1, glua, r->seg + 1, s->workers, r->lua, lua1, s->o->max_growth_pct);
    if (r->c_heap > 0 && grew(s, r->c_heap, heap1, C_HEAP_SLACK))
        fail(
            "segment %d: C heap %.2f%% above segment %d's with the same %u workers (%.0f -> %.0f bytes; limit "
            "%.1f%%): a runtime left something behind",
            s->seg + 1, gheap, r->seg + 1, s->workers, r->c_heap, heap1, s->o->max_growth_pct);
    if (rss_judged && grew(s, r->rss_kb, rss1, RSS_SLACK_KB))
        fail("segment %d: RSS %.2f%% above segment %d's with the same %u workers (%.0f -> %.0f KiB; limit "
             "%.1f%% and %d KiB): a runtime left something behind",
             s->seg + 1, growth_pct(r->rss_kb, rss1), r->rss_seg + 1, s->workers, r->rss_kb, rss1,
             s->o->max_growth_pct, RSS_SLACK_KB);
}

/* Invariant 1 for this segment. */
static void check_memory(soak_t *s)
{
    if (s->base.n == 0 || s->end.n == 0) {
        printf("soak: memory (segment %d): too short after its %.1f s warm-up for a growth check\n",
               s->seg + 1, s->warm);
        return;
    }
    double lua0 = (double)median(s->base.lua, s->base.n), lua1 = (double)median(s->end.lua, s->end.n);
    double rss0 = (double)median(s->base.rss_kb, s->base.n), rss1 = (double)median(s->end.rss_kb, s->end.n);
    double heap0 = (double)median(s->base.c_heap, s->base.n), heap1 = (double)median(s->end.c_heap, s->end.n);
    double glua = growth_pct(lua0, lua1), grss = growth_pct(rss0, rss1), gheap = growth_pct(heap0, heap1);
    char why[64] = "";
    if (UNDER_SANITIZER)
        snprintf(why, sizeof why, ", not checked under a sanitizer");
    else if (!s->rss_checked)
        snprintf(why, sizeof why, ", not checked: fewer than %d samples per median", RSS_MIN_K);
    printf(
        "soak: memory (segment %d, %u workers, warm-up %.1f s, medians of %d/%d live samples): Lua %.3f -> "
        "%.3f MiB (%+.2f%%), C heap %.3f -> %.3f MiB (%+.2f%%%s), RSS %.1f -> %.1f MiB (%+.2f%%%s); limit "
        "%.1f%%\n",
        s->seg + 1, s->workers, s->warm, s->base.n, s->end.n, lua0 / 1048576.0, lua1 / 1048576.0, glua,
        heap0 / 1048576.0, heap1 / 1048576.0, gheap, heap0 > 0 ? "" : ", unknown here", rss0 / 1024.0,
        rss1 / 1024.0, grss, why, s->o->max_growth_pct);
    if (glua > s->o->max_growth_pct)
        fail("segment %d: live Lua memory grew %.2f%% after warm-up (%.0f -> %.0f bytes; limit %.1f%%)",
             s->seg + 1, glua, lua0, lua1, s->o->max_growth_pct);
    if (heap0 > 0 && grew(s, heap0, heap1, C_HEAP_SLACK))
        fail("segment %d: the C heap grew %.2f%% after warm-up (%.0f -> %.0f bytes in use; limit %.1f%% and "
             "%d bytes)",
             s->seg + 1, gheap, heap0, heap1, s->o->max_growth_pct, C_HEAP_SLACK);
    if (s->rss_checked && grew(s, rss0, rss1, RSS_SLACK_KB))
        fail("segment %d: RSS grew %.2f%% after warm-up (%.0f -> %.0f KiB; limit %.1f%% and %d KiB)",
             s->seg + 1, grss, rss0, rss1, s->o->max_growth_pct, RSS_SLACK_KB);
    check_memory_across(s, lua1, heap1, rss1);
}

static int segment_end(soak_t *s)
{
    ljs_stats_t st;
    if (drain(s, &st) != 0)
        return -1;
    check_events(s, &st);
    check_reloads(s, &st);
    check_memory(s);
    if (st.frames < s->seg_frames_min)
        s->seg_frames_min = st.frames;
    s->done.frames += st.frames;
    s->done.reloads += st.reloads;
    s->done.reload_errors += st.reload_errors;
    s->done.script_errors += st.script_errors;
    s->done.sent += st.events_sent;
    s->done.delivered += st.events_delivered;
    s->done.dropped += st.events_dropped;
    s->done.console_dropped += st.console_dropped;
    files_t *fs = &s->fs;
    fs->total_writes += fs->writes;
    fs->total_valid += fs->valid;
    fs->total_broken += fs->nbroken;
    fs->total_inplace += fs->inplace;
    fs->total_renamed += fs->renamed;
    return 0;
}

/* ---- one segment ------------------------------------------------------------------------ */

/* The warm-up of a segment of `len` seconds (see invariant 1). */
static double warmup_of(const opts_t *o, double len)
{
    double w = o->warmup_given ? (o->warmup_pct ? o->warmup * len / 100.0 : o->warmup) : 0.2 * len;
    if (!o->warmup_given)
        w = w < 5.0 ? 5.0 : w > 600.0 ? 600.0 : w;
    return w > len / 2 ? len / 2 : w;
}

static int run_segment(soak_t *s)
{
    const opts_t *o = s->o;
    s->workers = o->ncounts ? o->counts[s->seg % o->ncounts] : o->workers;
    s->seg_len = o->duration_s / s->nseg;
    s->warm = warmup_of(o, s->seg_len);
    int k = (int)((s->seg_len - s->warm) / 4.0);
    s->k = k < 1 ? 1 : k > MEM_K_MAX ? MEM_K_MAX : k;
    s->rss_checked = !UNDER_SANITIZER && s->k >= RSS_MIN_K;
    memset(&s->base, 0, sizeof s->base);
    memset(&s->end, 0, sizeof s->end);
    s->quiet = s->fault_armed = s->bombed_all = s->burst_done = 0;
    if (scene_create(s) != 0)
        return 2;
    printf("soak: segment %d/%d: %u workers, %.1f s (warm-up %.1f s), %u entities, scripts in %s\n",
           s->seg + 1, s->nseg, s->workers, s->seg_len, s->warm, ljs_entity_count(s->rt), s->fs.dir);
    fflush(stdout);
    s->seg_t0 = now_s();
    s->next_tick = s->seg_t0;
    s->next_sample = SAMPLE_PERIOD_S;
    s->next_fault = FAULT_PERIOD_WARM_S;
    s->rw_next = s->seg_t0 + 0.5;
    s->frames_since_write = 0;
    double t;
    while ((t = now_s() - s->seg_t0) < s->seg_len) {
        if (host_churn(s) != 0 || maybe_fault(s, t) != 0 || rewrite(s, t) != 0 || timed_frame(s) != 0 ||
            after_frame(s) != 0)
            return 1;
        t = now_s() - s->seg_t0;
        if (t >= s->next_sample) {
            sample(s, t);
            s->next_sample += SAMPLE_PERIOD_S;
        }
        if (now_s() - s->t_start >= s->next_progress) {
            progress(s);
            s->next_progress += o->progress_s;
        }
        pace(s);
    }
    return segment_end(s) != 0 ? 1 : 0;
}

/* ========================================================================
 * Summary and main
 * ======================================================================== */

static void summary(const soak_t *s, double elapsed)
{
    const console_t *c = &s->con;
    const files_t *fs = &s->fs;
    totals_t t = s->done;
    printf(
        "soak: result: %.1f s, %d segment(s), %llu frames, max %llu entities, %llu saves (%llu valid, %llu "
        "broken; %llu in place, %llu renamed), %llu reloads, %llu refused\n",
        elapsed, s->nseg, (unsigned long long)t.frames, (unsigned long long)s->max_entities,
        (unsigned long long)fs->total_writes, (unsigned long long)fs->total_valid,
        (unsigned long long)fs->total_broken, (unsigned long long)fs->total_inplace,
        (unsigned long long)fs->total_renamed, (unsigned long long)t.reloads,
        (unsigned long long)t.reload_errors);
    printf(
        "soak: result: %llu script errors caught: runaways %llu/%llu triggered, memory bombs %llu/%llu, %llu "
        "other injected; console %llu info, %llu warn, %llu error lines (%llu refused reloads, %llu "
        "unexpected), %llu dropped\n",
        (unsigned long long)t.script_errors, (unsigned long long)c->runaways,
        (unsigned long long)s->runaways_triggered, (unsigned long long)c->bombs,
        (unsigned long long)s->bombs_triggered, (unsigned long long)c->injected, (unsigned long long)c->info,
        (unsigned long long)c->warn, (unsigned long long)c->error, (unsigned long long)c->refusals,
        (unsigned long long)c->unexpected, (unsigned long long)t.console_dropped);
    printf("soak: result: events %llu sent = %llu delivered + %llu dropped (%llu by the host); slowest frame "
           "%.1f ms\n",
           (unsigned long long)t.sent, (unsigned long long)t.delivered, (unsigned long long)t.dropped,
           (unsigned long long)s->host_sends, s->frame_ms_max);
}

/* Invariant 5, over the whole run. */
static void check_sanity(const soak_t *s)
{
    const console_t *c = &s->con;
    const totals_t *t = &s->done;
    if (s->seg_frames_min == 0)
        fail("a segment ran no frames");
    if (s->o->duration_s >= 10.0 && t->reloads == 0)
        fail("no script was reloaded in %.0f s", s->o->duration_s);
    if (t->script_errors == 0)
        fail("no script error was caught: the faults did not run");
    if (c->runaways + c->bombs < s->runaways_triggered + s->bombs_triggered)
        fail("the host triggered %llu runaways and %llu memory bombs, but only %llu timeouts and %llu memory "
             "errors were reported",
             (unsigned long long)s->runaways_triggered, (unsigned long long)s->bombs_triggered,
             (unsigned long long)c->runaways, (unsigned long long)c->bombs);
    if (s->max_entities > MAX_ENTITIES)
        fail("the population reached %llu entities (bound %d): spawns and destroys do not balance",
             (unsigned long long)s->max_entities, MAX_ENTITIES);
    if (t->console_dropped != 0)
        fail("%llu console lines were dropped: the error counts are incomplete",
             (unsigned long long)t->console_dropped);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ljs-soak [--duration 30s|10m|24h|N] [--workers N] [--restart-workers a,b,c]\n"
               "                [--segment DUR] [--seed N] [--csv FILE] [--max-growth PCT]\n"
               "                [--warmup PCT%%|DUR] [--stuck-ms MS] [--progress-s S] [--fast]\n"
               "Runs a busy scene with faults, entity churn and hot reload for --duration (default 30s)\n"
               "and exits 1 if memory grew past --max-growth percent (default 2) after the warm-up,\n"
               "an event was lost, a frame took longer than --stuck-ms (default 5000) or a fault\n"
               "escaped; 0 if every invariant held (see the header of stress/soak.c).\n"
               "  --workers N           workers for the whole run (default 4)\n"
               "  --restart-workers L   re-create the runtime with the next count of L at each segment\n"
               "  --segment DUR         segment length with --restart-workers (default: duration / counts)\n"
               "  --warmup PCT%%|DUR     excluded from growth checks (default 20%%, 5 s..10 min)\n"
               "  --csv FILE            one row per second (stress/plot FILE.csv draws it)\n"
               "  --progress-s S        a progress line every S seconds (default 5)\n"
               "  --fast                no 60 Hz pacing: frames back to back\n");
}

/* "90", "90s", "10m", "24h", "1.5h": seconds; -1 if malformed. */
static double parse_duration(const char *s)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0.0 && v <= 1e7))
        return -1.0;
    double unit = 1.0;
    if (*end == 's' || *end == 'm' || *end == 'h') {
        unit = *end == 's' ? 1.0 : *end == 'm' ? 60.0 : 3600.0;
        end++;
    }
    return *end == '\0' ? v * unit : -1.0;
}

static int parse_counts(const char *s, opts_t *o)
{
    o->ncounts = 0;
    while (*s != '\0') {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || errno != 0 || v < 1 || v > MAX_WORKERS || o->ncounts == MAX_COUNTS ||
            (*end != ',' && *end != '\0'))
            return -1;
        o->counts[o->ncounts++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return o->ncounts > 0 ? 0 : -1;
}

static int parse_warmup(const char *s, opts_t *o)
{
    size_t n = strlen(s);
    o->warmup_given = 1;
    if (n > 1 && s[n - 1] == '%') {
        char num[32];
        if (n - 1 >= sizeof num)
            return -1;
        memcpy(num, s, n - 1);
        num[n - 1] = '\0';
        o->warmup_pct = 1;
        return parse_num(num, 0, 90, &o->warmup);
    }
    o->warmup = parse_duration(s);
    return o->warmup >= 0 ? 0 : -1;
}

/* One option that takes a value; 0 on success. */
static int parse_opt(const char *a, const char *val, opts_t *o)
{
    double v;
    if (!strcmp(a, "--duration")) {
        o->duration_s = parse_duration(val);
        return o->duration_s >= 1.0 ? 0 : -1;
    }
    if (!strcmp(a, "--workers")) {
        if (parse_num(val, 1, MAX_WORKERS, &v) != 0 || v != (uint32_t)v)
            return -1;
        o->workers = (uint32_t)v;
        return 0;
    }
    if (!strcmp(a, "--restart-workers"))
        return parse_counts(val, o);
    if (!strcmp(a, "--segment")) {
        o->segment_s = parse_duration(val);
        return o->segment_s >= 1.0 ? 0 : -1;
    }
    if (!strcmp(a, "--seed")) {
        char *end = NULL;
        errno = 0;
        o->seed = strtoull(val, &end, 10);
        return end == val || *end != '\0' || errno != 0 ? -1 : 0;
    }
    if (!strcmp(a, "--csv")) {
        o->csv = val;
        return 0;
    }
    if (!strcmp(a, "--max-growth"))
        return parse_num(val, 0, 1000, &o->max_growth_pct);
    if (!strcmp(a, "--warmup"))
        return parse_warmup(val, o);
    if (!strcmp(a, "--stuck-ms"))
        return parse_num(val, 10, 3600000, &o->stuck_ms);
    if (!strcmp(a, "--progress-s"))
        return parse_num(val, 0.1, 86400, &o->progress_s);
    return -1;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--fast")) {
            o->fast = 1;
        } else if (!strcmp(a, "--inject-leak")) {
            o->inject_leak = 1;
        } else {
            if (i + 1 >= argc || parse_opt(a, argv[i + 1], o) != 0)
                return -1;
            i++;
        }
    }
    return 0;
}

static void *start_watchdog(pthread_t *th, double *limit_ms)
{
    wd_mark("starting");
    return pthread_create(th, NULL, watchdog_main, limit_ms) == 0 ? th : NULL;
}

int main(int argc, char **argv)
{
    static opts_t o = {.duration_s = 30.0,
                       .workers = 4,
                       .seed = 20240611,
                       .max_growth_pct = 2.0,
                       .stuck_ms = 5000.0,
                       .progress_s = 5.0};
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    static soak_t s;
    s.o = &o;
    s.rng = o.seed;
    s.seg_frames_min = UINT64_MAX;
    s.nseg = 1;
    s.csv_workers = o.workers;
    if (o.ncounts) {
        double seg = o.segment_s > 0 ? o.segment_s : o.duration_s / o.ncounts;
        s.nseg = (int)(o.duration_s / seg + 0.5);
        s.nseg = s.nseg < 1 ? 1 : s.nseg;
        s.csv_workers = 0;
        for (uint32_t i = 0; i < o.ncounts; i++)
            s.csv_workers = o.counts[i] > s.csv_workers ? o.counts[i] : s.csv_workers;
    }
    if (o.csv != NULL && (s.csv = fopen(o.csv, "w")) == NULL) {
        fprintf(stderr, "soak: cannot write %s: %s\n", o.csv, strerror(errno));
        return 2;
    }
    if (make_dir(&s.fs) != 0)
        return 2;
    csv_header(&s);
    printf("soak: %.0f s, %d segment(s), workers %s%u, seed %llu, max growth %.1f%%, stuck %.0f ms%s%s\n",
           o.duration_s, s.nseg, o.ncounts ? "up to " : "", s.csv_workers, (unsigned long long)o.seed,
           o.max_growth_pct, o.stuck_ms, UNDER_SANITIZER ? ", sanitizer build (RSS not checked)" : "",
           o.inject_leak ? ", INJECTED LEAK" : "");
    fflush(stdout);

    pthread_t wd;
    double limit_ms = 3.0 * o.stuck_ms;
    int wd_started = start_watchdog(&wd, &limit_ms) != NULL;
    s.t_start = now_s();
    s.next_progress = o.progress_s;
    int rc = 0;
    for (s.seg = 0; s.seg < s.nseg && rc == 0; s.seg++) {
        rc = run_segment(&s);
        if (rc == 1 && nfailures == 0)
            fail("segment %d stopped early (see the messages above)", s.seg + 1);
        wd_mark("ljs_runtime_destroy");
        ljs_runtime_destroy(s.rt);
        s.rt = NULL;
        if (rc != 0)
            break;
    }
    double elapsed = now_s() - s.t_start;
    atomic_store(&wd_stop, 1);
    if (wd_started)
        pthread_join(wd, NULL);
    if (s.csv != NULL)
        fclose(s.csv);
    remove_dir(&s.fs);
    if (rc == 2) {
        fprintf(stderr, "soak: setup failed\n");
        return 2;
    }
    summary(&s, elapsed);
    if (rc == 0)
        check_sanity(&s);
    if (nfailures) {
        fprintf(stderr, "soak: %d invariant failure(s) (seed %llu):\n", nfailures,
                (unsigned long long)o.seed);
        for (int i = 0; i < nfailures && i < MAX_FAILURES; i++)
            fprintf(stderr, "  %d. %s\n", i + 1, failures[i]);
        return 1;
    }
    printf("soak: OK, every invariant held\n");
    return 0;
}
