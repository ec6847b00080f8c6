/* ljs_run.c - ljs-run, the demo host: loads a scene directory (its *.lua
 * scripts and scene.txt), creates the entities the scene asks for and runs
 * fixed-dt frames, printing one progress line per second and, with --frames,
 * a final `digest: <16 hex>` line so runs with different worker counts can be
 * compared. Also runs plain Lua tool files (--exec) and prints the
 * configuration (--print-config).
 *
 * Determinism: scripts are loaded in sorted file-name order, entities are
 * created in scene order, and their starting positions come from a fixed-seed
 * splitmix64 stream, so the digest depends only on the scene, --entities,
 * --frames, --dt and --seed, never on --workers.
 *
 * A script that fails to load (syntax error, error in its chunk) does not
 * stop the scene: it is reported, the scene runs without its entities, and
 * ljs-run retries it whenever the file changes, creating its entities once
 * it loads (the library's hot reload covers scripts that did load).
 * --strict exits instead.
 *
 * Exit codes: 0 ok, 1 runtime failure (or, with --strict, a script that
 * failed to load), 2 usage (bad arguments or a bad LJS_* environment
 * variable).
 */
#include "tools/scene.h"
#include "tools/summary.h"

#include <ljs.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Console lines printed per wall-clock second; the rest are counted and
 * summarised, so a script that logs every frame cannot flood the terminal. */
#define CONSOLE_LINES_PER_S 20

/* Arena bounds and speed range the host uses for starting positions; the
 * example scripts wrap at the same size (see examples/arena/scene.txt). */
#define ARENA_SIZE 1000.0
#define ARENA_SPEED 60.0

/* ========================================================================
 * Options
 * ======================================================================== */

typedef struct options_s {
    const char *scene_dir;
    long workers; /* 0: config (LJS_WORKERS or CPUs) */
    long entities;
    long frames;    /* 0: no frame limit */
    double seconds; /* 0: no time limit */
    double dt;
    uint64_t seed;
    int quiet;
    int strict;         /* --strict: a script that fails to load ends the run */
    const char *report; /* --report FILE, or NULL */
    const char *save;   /* --save FILE: the world at the end, or NULL */
    const char *load;   /* --load FILE: start from a saved world, or NULL */
} options_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: ljs-run SCENE_DIR [--workers N] [--entities N] [--frames N] [--seconds S]\n"
               "               [--dt X] [--seed N] [--quiet] [--strict] [--report FILE]\n"
               "               [--save FILE] [--load FILE]\n"
               "       ljs-run --exec FILE [ARGS...]\n"
               "       ljs-run [--workers N] --print-config\n"
               "       ljs-run --help\n"
               "\n"
               "Runs the scene in SCENE_DIR (every *.lua script, plus scene.txt: lines\n"
               "'NAME COUNT [fixed]') with a fixed time step, printing one line per second.\n"
               "  --workers N    worker threads including this one (default: LJS_WORKERS or CPUs)\n"
               "  --entities N   total entities to create, scene counts scaled (default 5000)\n"
               "  --frames N     stop after N frames and print 'digest: <16 hex digits>'\n"
               "  --seconds S    stop after S seconds of wall-clock time\n"
               "  --dt X         fixed time step in seconds (default 1/60)\n"
               "  --seed N       seed of the starting positions (default 1)\n"
               "  --quiet        no progress lines, no info console lines, no summary\n"
               "  --strict       exit (status 1) if a script fails to load; by default the\n"
               "                 scene runs without it and it loads once the file is fixed\n"
               "  --report FILE  write the JSON report (stats, memory, GC, scripts) at the end\n"
               "                 (sets LJS_REPORT, so the report names its own file)\n"
               "  --save FILE    save the world (ljs_world_save_file) when the run ends\n"
               "  --load FILE    start from a saved world instead of creating the scene's\n"
               "                 entities (the scene's scripts must match the save's)\n"
               "  --exec FILE    run a plain Lua file (full standard library, arg = ARGS)\n"
               "  --print-config print every LJS_* setting, its value and where it came from\n"
               "                 (default, environment, or host: set by ljs-run's options)\n"
               "With neither --frames nor --seconds it runs until interrupted (Ctrl-C).\n"
               "Exit status: 0 ok, 1 runtime failure, 2 usage.\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "ljs-run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n");
    usage(stderr);
    return EXIT_USAGE;
}

/* Whole-string integer in [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Whole-string finite number in (lo, hi]. */
static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* ========================================================================
 * Config printing
 * ======================================================================== */

static int print_config(const options_t *o)
{
    ljs_config_t cfg;
    if (ljs_config_init(&cfg) != LJS_OK) {
        fprintf(stderr, "ljs-run: %s\n", cfg.error[0] ? cfg.error : ljs_last_error());
        return EXIT_USAGE;
    }
    if (o->workers > 0)
        cfg.workers = (uint32_t)o->workers; /* what run_scene would do */
    /* Values ljs_config_init takes as text (LJS_GC_MODE, output paths) are
     * checked by ljs_config_validate: print nothing a run would refuse. */
    if (ljs_config_validate(&cfg) != LJS_OK) {
        fprintf(stderr, "ljs-run: %s\n", ljs_last_error());
        return EXIT_USAGE;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("%-22s %-12s %-11s %s\n", "variable", "value", "source", "meaning (range, default)");
#define PRINT_KNOB(type, field, env, def, lo, hi, help)                                                 \
    do {                                                                                                \
        printf("%-22s %-12" PRIu64 " %-11s %s (%" PRIu64 "..%" PRIu64 ", default %" PRIu64 ")", env,    \
               (uint64_t)cfg.field, ljs_config_source(&cfg, env), help, (uint64_t)(lo), (uint64_t)(hi), \
               (uint64_t)(def));                                                                        \
        if (!strcmp(env, "LJS_WORKERS") && cfg.field == 0)                                              \
            printf(" = %ld CPUs", ncpu);                                                                \
        printf("\n");                                                                                   \
    } while (0);
    LJS_CONFIG_MAP(PRINT_KNOB)
#undef PRINT_KNOB
#define PRINT_STR_KNOB(field, env, def, maxlen, help)                                                      \
    printf("%-22s %-12s %-11s %s\n", env, cfg.field[0] ? cfg.field : "\"\"", ljs_config_source(&cfg, env), \
           help);
    LJS_CONFIG_STR_MAP(PRINT_STR_KNOB)
#undef PRINT_STR_KNOB
    return 0;
}

/* ========================================================================
 * Console
 * ======================================================================== */

typedef struct console_s {
    int quiet;
    int skip_errors;     /* --exec failure: the error is printed from ljs_last_error() */
    time_t window;       /* wall-clock second the budget below belongs to */
    unsigned printed;    /* lines printed in `window` */
    uint64_t suppressed; /* lines dropped by the rate limit, not yet reported */
} console_t;

static const char *severity_name(ljs_severity_t s)
{
    switch (s) {
    case LJS_LOG_WARN:
        return "warn";
    case LJS_LOG_ERROR:
        return "error";
    default:
        return "info";
    }
}

static void console_line(void *ud, const ljs_log_line_t *line)
{
    console_t *c = ud;
    if ((c->quiet && line->severity == LJS_LOG_INFO) || (c->skip_errors && line->severity == LJS_LOG_ERROR))
        return;
    time_t now = time(NULL);
    if (now != c->window) {
        c->window = now;
        c->printed = 0;
    }
    if (c->printed >= CONSOLE_LINES_PER_S) {
        c->suppressed++;
        return;
    }
    c->printed++;
    const char *script = line->script != NULL && line->script[0] ? line->script : "ljs";
    if (line->entity != 0)
        fprintf(stderr, "[%s] frame %" PRIu64 " %s entity " LJS_ENTITY_FMT ": %s\n",
                severity_name(line->severity), line->frame, script, LJS_ENTITY_ARGS(line->entity),
                line->text);
    else
        fprintf(stderr, "[%s] frame %" PRIu64 " %s: %s\n", severity_name(line->severity), line->frame, script,
                line->text);
}

static void console_drain(ljs_runtime_t *rt, console_t *c)
{
    ljs_console_drain(rt, console_line, c);
}

/* Report the lines the rate limit held back (called once per second). */
static void console_flush_suppressed(console_t *c)
{
    if (c->suppressed > 0) {
        fprintf(stderr, "[warn] %" PRIu64 " console lines not shown (more than %d per second)\n",
                c->suppressed, CONSOLE_LINES_PER_S);
        c->suppressed = 0;
    }
}

/* ========================================================================
 * --exec
 * ======================================================================== */

static int exec_file(int argc, char **argv)
{
    ljs_runtime_t *rt = NULL;
    ljs_config_t cfg;
    if (ljs_config_init(&cfg) != LJS_OK) {
        fprintf(stderr, "ljs-run: %s\n", cfg.error[0] ? cfg.error : ljs_last_error());
        return EXIT_USAGE;
    }
    int rc = ljs_runtime_create(&cfg, &rt);
    if (rc != LJS_OK) {
        fprintf(stderr, "ljs-run: cannot create the runtime: %s: %s\n", ljs_errname(rc), ljs_last_error());
        return EXIT_RUNTIME;
    }
    console_t con = {0};
    /* argv[0] is FILE (Lua's arg[0]); ARGS become arg[1..]. */
    rc = ljs_exec_file(rt, argv[0], argc - 1, argv + 1);
    int status = 0;
    if (rc != LJS_OK) {
        /* Copy first: draining the console may be another failing call. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ljs_last_error());
        con.skip_errors = 1; /* the console's copy of the error would print it twice */
        console_drain(rt, &con);
        fprintf(stderr, "ljs-run: %s: %s: %s\n", argv[0], ljs_errname(rc), msg);
        status = EXIT_RUNTIME;
    } else {
        console_drain(rt, &con);
    }
    console_flush_suppressed(&con);
    ljs_runtime_destroy(rt);
    return status;
}

/* ========================================================================
 * Scene
 * ======================================================================== */

static int parse_scene(const char *dir, scene_t *sc)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/scene.txt", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ljs-run: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = scene_parse(f, path, sc, stderr);
    fclose(f);
    return rc;
}

static int lua_file_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && d->d_name[0] != '.' && !strcmp(d->d_name + n - 4, ".lua");
}

/* Remember a script that failed to load, so it can be retried when its file
 * changes. */
static void note_broken(scene_t *sc, const char *path, const char *file)
{
    if (sc->nbroken == SCENE_MAX_BROKEN)
        return;
    broken_t *b = &sc->broken[sc->nbroken++];
    memset(b, 0, sizeof *b);
    snprintf(b->path, sizeof b->path, "%s", path);
    snprintf(b->name, sizeof b->name, "%.*s", (int)(strlen(file) - 4), file);
    if (stat(path, &b->st) != 0)
        memset(&b->st, 0, sizeof b->st);
}

/* Load every *.lua of `dir`, in sorted order so script ids do not depend on
 * the directory's on-disk order. A script that fails to load is reported and
 * noted in `sc` (the scene runs without it), or ends the run with --strict. */
static int load_scripts(ljs_runtime_t *rt, const char *dir, scene_t *sc, const options_t *o)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, lua_file_filter, alphasort);
    if (n < 0) {
        fprintf(stderr, "ljs-run: cannot read %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    sc->nbroken = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        ljs_script_t s;
        int err = rc == 0 ? ljs_script_load(rt, path, &s) : LJS_OK;
        if (err != LJS_OK) {
            fprintf(stderr, "ljs-run: cannot load %s: %s: %s\n", path, ljs_errname(err), ljs_last_error());
            if (o->strict) {
                fprintf(stderr, "ljs-run: --strict: exiting\n");
                rc = -1;
            } else {
                fprintf(stderr, "ljs-run: the scene runs without %s; it loads once the file is fixed\n",
                        names[i]->d_name);
                note_broken(sc, path, names[i]->d_name);
            }
        } else if (rc == 0 && !o->quiet) {
            printf("loaded %s\n", path);
        }
        free(names[i]);
    }
    free(names);
    if (rc == 0 && n == 0) {
        fprintf(stderr, "ljs-run: no *.lua scripts in %s\n", dir);
        rc = -1;
    }
    return rc;
}

/* splitmix64 (Steele, Lea, Flood 2014): a fixed, portable stream, so the
 * starting world is the same on every machine. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rand_unit(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Set `name` to `v` only if the entity holds the field (a script declared
 * it), so the host never adds fields a scene's scripts do not use. */
static int init_field(ljs_runtime_t *rt, ljs_entity_t e, const char *name, double v)
{
    double old;
    if (ljs_field_get_number(rt, e, name, &old) != LJS_OK)
        return LJS_OK;
    return ljs_field_set_number(rt, e, name, v);
}

/* Create `count` entities of line `l`, drawing their starting fields from
 * `rng`. */
static int create_line(ljs_runtime_t *rt, const scene_line_t *l, long count, uint64_t *rng)
{
    for (long k = 0; k < count; k++) {
        ljs_entity_t e;
        int rc = ljs_entity_create(rt, &e);
        if (rc == LJS_OK)
            rc = ljs_script_attach(rt, e, l->script);
        /* Draw all four values for every entity, used or not, so one
         * line's fields never shift another line's positions. */
        double x = rand_unit(rng) * ARENA_SIZE, y = rand_unit(rng) * ARENA_SIZE;
        double vx = (rand_unit(rng) * 2.0 - 1.0) * ARENA_SPEED;
        double vy = (rand_unit(rng) * 2.0 - 1.0) * ARENA_SPEED;
        if (rc == LJS_OK)
            rc = init_field(rt, e, "x", x);
        if (rc == LJS_OK)
            rc = init_field(rt, e, "y", y);
        if (rc == LJS_OK)
            rc = init_field(rt, e, "vx", vx);
        if (rc == LJS_OK)
            rc = init_field(rt, e, "vy", vy);
        if (rc != LJS_OK) {
            fprintf(stderr, "ljs-run: cannot create a '%s' entity: %s: %s\n", l->name, ljs_errname(rc),
                    ljs_last_error());
            return -1;
        }
    }
    return 0;
}

static const broken_t *find_broken(const scene_t *sc, const char *name)
{
    for (size_t i = 0; i < sc->nbroken; i++)
        if (!strcmp(sc->broken[i].name, name))
            return &sc->broken[i];
    return NULL;
}

/* Create the scene's entities: counts scaled so the total is about
 * `entities`, "fixed" lines as written. A line whose script failed to load
 * waits (see retry_broken). */
static int create_entities(ljs_runtime_t *rt, scene_t *sc, long entities, uint64_t seed)
{
    long fixed = 0, scaled = 0;
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->lines[i].fixed)
            fixed += sc->lines[i].count;
        else
            scaled += sc->lines[i].count;
    }
    double scale = scaled > 0 && entities > fixed ? (double)(entities - fixed) / (double)scaled : 0.0;
    uint64_t rng = seed;
    for (size_t i = 0; i < sc->n; i++) {
        scene_line_t *l = &sc->lines[i];
        long count = l->fixed ? l->count : lround((double)l->count * scale);
        l->pending = 0;
        if (ljs_script_find(rt, l->name, &l->script) != LJS_OK) {
            if (find_broken(sc, l->name) == NULL) {
                fprintf(stderr, "ljs-run: scene.txt names script '%s', but there is no %s.lua\n", l->name,
                        l->name);
                return -1;
            }
            l->pending = 1;
            l->pending_count = count;
            l->rng_at = rng;
            for (long k = 0; k < count * 4; k++) /* the draws its entities will make */
                (void)splitmix64(&rng);
            fprintf(stderr, "ljs-run: %ld '%s' entities wait for %s.lua to load\n", count, l->name, l->name);
            continue;
        }
        if (create_line(rt, l, count, &rng) != 0)
            return -1;
    }
    return 0;
}

/* Retry every script that failed to load and whose file changed since:
 * once one loads, create the entities its scene lines were waiting for.
 * Returns the number of scripts still not loaded, or -1 on a failure to
 * create entities. */
static int retry_broken(ljs_runtime_t *rt, scene_t *sc, int quiet)
{
    int left = 0;
    for (size_t i = 0; i < sc->nbroken; i++) {
        broken_t *b = &sc->broken[i];
        struct stat st;
        if (b->loaded)
            continue;
        left++;
        if (stat(b->path, &st) != 0 ||
            (st.st_ino == b->st.st_ino && st.st_size == b->st.st_size &&
             st.st_mtim.tv_sec == b->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == b->st.st_mtim.tv_nsec))
            continue;
        b->st = st;
        ljs_script_t s;
        int rc = ljs_script_load(rt, b->path, &s);
        if (rc != LJS_OK) {
            fprintf(stderr, "ljs-run: still cannot load %s: %s: %s\n", b->path, ljs_errname(rc),
                    ljs_last_error());
            continue;
        }
        b->loaded = 1;
        left--;
        long created = 0;
        for (size_t k = 0; k < sc->n; k++) {
            scene_line_t *l = &sc->lines[k];
            if (!l->pending || strcmp(l->name, b->name))
                continue;
            l->script = s;
            uint64_t rng = l->rng_at;
            if (create_line(rt, l, l->pending_count, &rng) != 0)
                return -1;
            created += l->pending_count;
            l->pending = 0;
        }
        if (!quiet)
            printf("loaded %s (fixed): %ld entities created\n", b->path, created);
    }
    return left;
}

/* ========================================================================
 * Main loop
 * ======================================================================== */

static volatile sig_atomic_t interrupted;
/* The runtime to interrupt. Lock-free atomic: safe to read in a handler. */
static _Atomic(ljs_runtime_t *) running_rt;

/* Ctrl-C / SIGTERM: interrupt the script code (a runaway call or load
 * stops within ~0.1 s, see ljs_runtime_interrupt), so the current frame
 * returns, the summary still prints and the runtime is torn down cleanly.
 * SA_RESETHAND: a second Ctrl-C kills the process the usual way. */
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    ljs_runtime_interrupt(atomic_load(&running_rt), 1);
}

/* Install the handler, and block the two signals in the runtime's threads
 * (they inherit this thread's mask while it is blocked), so the handler
 * runs on this thread, never beside ljs_runtime_destroy. */
static void catch_interrupts(sigset_t *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One progress line for the window [w_start, now): rates from the counters'
 * growth, phase times averaged over the window's frames. */
static void progress_line(ljs_runtime_t *rt, const ljs_stats_t *prev, const ljs_stats_t *cur, double span,
                          double update_ms, double event_ms)
{
    uint64_t frames = cur->frames - prev->frames;
    uint32_t nworkers = ljs_runtime_config(rt)->workers;
    /* Memory per state: each one for a few workers, else average and max. */
    char mem[160];
    size_t off = 0;
    uint64_t sum = 0, max = 0;
    mem[0] = '\0';
    for (uint32_t w = 0; w < nworkers; w++) {
        ljs_state_memory_t m;
        if (ljs_state_memory(rt, w, &m) != LJS_OK)
            continue;
        sum += m.current_bytes;
        max = m.current_bytes > max ? m.current_bytes : max;
        if (nworkers <= 8)
            off += (size_t)snprintf(mem + off, sizeof mem - off, "%sw%u %.0f", w ? ", " : "", w,
                                    (double)m.current_bytes / 1024.0);
    }
    if (nworkers > 8)
        snprintf(mem, sizeof mem, "avg %.0f max %.0f", (double)sum / 1024.0 / nworkers, (double)max / 1024.0);
    /* Every figure carries its label: this line is what a user watches. */
    printf("progress: frame %" PRIu64 " | %.1f frames/s | updates %.0f/s | events %.0f/s"
           " | ms per frame: update %.2f, events %.2f | Lua KiB per worker %s | script errors %" PRIu64
           " | entities %" PRIu32 "\n",
           cur->frames, (double)frames / span, (double)(cur->updates - prev->updates) / span,
           (double)(cur->events_delivered - prev->events_delivered) / span,
           frames ? update_ms / (double)frames : 0.0, frames ? event_ms / (double)frames : 0.0, mem,
           cur->script_errors, ljs_entity_count(rt));
    fflush(stdout);
}

static int run_scene(const options_t *o)
{
    ljs_config_t cfg;
    if (ljs_config_init(&cfg) != LJS_OK) {
        fprintf(stderr, "ljs-run: %s\n", cfg.error[0] ? cfg.error : ljs_last_error());
        return EXIT_USAGE;
    }
    if (o->workers > 0)
        cfg.workers = (uint32_t)o->workers;
    /* --report goes through LJS_REPORT (the runtime writes it when it is
     * destroyed), so the report's config shows the file it was written to. */
    if (o->report != NULL) {
        if (strlen(o->report) >= sizeof cfg.report) {
            fprintf(stderr, "ljs-run: --report: path longer than %zu characters\n", sizeof cfg.report - 1);
            return EXIT_USAGE;
        }
        snprintf(cfg.report, sizeof cfg.report, "%s", o->report);
    }
    /* Scripts are named by their path under the scene directory (ai/idle.lua
     * is ai.idle), unless LJS_SCRIPT_ROOT says otherwise. */
    if (cfg.script_root[0] == '\0' && strlen(o->scene_dir) < sizeof cfg.script_root)
        snprintf(cfg.script_root, sizeof cfg.script_root, "%s", o->scene_dir);
    scene_t *scene = calloc(1, sizeof *scene);
    if (scene == NULL || parse_scene(o->scene_dir, scene) != 0) {
        free(scene);
        return EXIT_RUNTIME;
    }

    ljs_runtime_t *rt = NULL;
    sigset_t old_mask;
    catch_interrupts(&old_mask);
    int rc = ljs_runtime_create(&cfg, &rt);
    if (rc == LJS_OK)
        atomic_store(&running_rt, rt);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (interrupted && rt != NULL) /* a signal while the mask was up */
        ljs_runtime_interrupt(rt, 1);
    if (rc != LJS_OK) {
        fprintf(stderr, "ljs-run: cannot create the runtime: %s: %s\n", ljs_errname(rc), ljs_last_error());
        free(scene);
        return rc == LJS_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    int status = EXIT_RUNTIME;
    console_t con = {.quiet = o->quiet};
    if (load_scripts(rt, o->scene_dir, scene, o) != 0 ||
        (o->load == NULL && create_entities(rt, scene, o->entities, o->seed) != 0)) {
        console_drain(rt, &con);
        goto done;
    }
    if (o->load != NULL && (rc = ljs_world_load_file(rt, o->load)) != LJS_OK) {
        fprintf(stderr, "ljs-run: --load %s: %s: %s\n", o->load, ljs_errname(rc), ljs_last_error());
        goto done;
    }
    console_drain(rt, &con);
    if (!o->quiet) {
        printf("scene %s: %" PRIu32 " entities, %" PRIu32 " workers, dt %.6g s\n", o->scene_dir,
               ljs_entity_count(rt), ljs_runtime_config(rt)->workers, o->dt);
        fflush(stdout);
    }

    ljs_stats_t prev, cur;
    if (ljs_stats_get(rt, &prev) != LJS_OK)
        memset(&prev, 0, sizeof prev);
    double start = now_s(), w_start = start, retried = start, update_ms = 0.0, event_ms = 0.0;
    long frames = 0;
    while (!interrupted && (o->frames == 0 || frames < o->frames)) {
        rc = ljs_frame(rt, o->dt);
        if (rc != LJS_OK) {
            console_drain(rt, &con);
            fprintf(stderr, "ljs-run: frame %ld failed: %s: %s\n", frames, ljs_errname(rc), ljs_last_error());
            goto done;
        }
        frames++;
        console_drain(rt, &con);
        if (ljs_stats_get(rt, &cur) == LJS_OK) {
            update_ms += cur.last_update_ms;
            event_ms += cur.last_event_ms;
        }
        double t = now_s();
        /* A few stat() calls four times a second: cheap, and a fixed file
         * comes in well within a second. */
        if (scene->nbroken > 0 && t - retried >= 0.25) {
            retried = t;
            if (retry_broken(rt, scene, o->quiet) < 0)
                goto done;
            console_drain(rt, &con);
        }
        if (t - w_start >= 1.0) {
            console_flush_suppressed(&con);
            if (!o->quiet)
                progress_line(rt, &prev, &cur, t - w_start, update_ms, event_ms);
            prev = cur;
            w_start = t;
            update_ms = event_ms = 0.0;
        }
        if (o->seconds > 0.0 && t - start >= o->seconds)
            break;
    }
    console_flush_suppressed(&con);
    if (!o->quiet && ljs_stats_get(rt, &cur) == LJS_OK) {
        double t = now_s();
        printf("done: %ld frames in %.2f s, %" PRIu64 " updates, %" PRIu64 " events delivered, %" PRIu64
               " dropped, %" PRIu64 " script errors, %" PRIu32 " entities\n",
               frames, t - start, cur.updates, cur.events_delivered, cur.events_dropped, cur.script_errors,
               ljs_entity_count(rt));
        summary_print(rt, t - start, stdout);
    }
    for (size_t i = 0; i < scene->nbroken; i++)
        if (!scene->broken[i].loaded)
            fprintf(stderr, "ljs-run: %s never loaded: its entities were not created\n",
                    scene->broken[i].path);
    status = 0;
    if (o->save != NULL && (rc = ljs_world_save_file(rt, o->save)) != LJS_OK) {
        fprintf(stderr, "ljs-run: --save %s: %s: %s\n", o->save, ljs_errname(rc), ljs_last_error());
        status = EXIT_RUNTIME;
    }
    if (status == 0 && o->frames > 0 && frames < o->frames) {
        /* A digest of a partial run would look like a result. */
        fprintf(stderr, "ljs-run: %s after %ld of %ld frames, no digest\n",
                interrupted ? "interrupted" : "--seconds limit reached", frames, o->frames);
        status = interrupted ? EXIT_RUNTIME : 0;
    } else if (status == 0 && o->frames > 0) {
        printf("digest: %016" PRIx64 "\n", ljs_world_digest(rt));
    }
    fflush(stdout);

done:
    atomic_store(&running_rt, NULL);
    ljs_runtime_destroy(rt);
    free(scene);
    /* The runtime wrote the report as it was destroyed (LJS_REPORT). */
    if (status == 0 && o->report != NULL && summary_check_report(o->report) != 0)
        status = EXIT_RUNTIME;
    return status;
}

int main(int argc, char **argv)
{
    options_t o = {.scene_dir = NULL,
                   .workers = 0,
                   .entities = 5000,
                   .frames = 0,
                   .seconds = 0.0,
                   .dt = 1.0 / 60.0,
                   .seed = 1,
                   .quiet = 0,
                   .strict = 0,
                   .report = NULL,
                   .save = NULL,
                   .load = NULL};
    int want_config = 0;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--print-config")) {
            want_config = 1;
        } else if (!strcmp(a, "--report")) {
            if (v == NULL)
                return bad_usage("%s needs a FILE", a);
            o.report = argv[++i];
        } else if (!strcmp(a, "--save") || !strcmp(a, "--load")) {
            if (v == NULL)
                return bad_usage("%s needs a FILE", a);
            if (!strcmp(a, "--save"))
                o.save = argv[++i];
            else
                o.load = argv[++i];
        } else if (!strcmp(a, "--exec")) {
            if (i != 1)
                return bad_usage("%s must be the first argument", a);
            if (v == NULL)
                return bad_usage("%s needs a FILE", a);
            return exec_file(argc - 2, argv + 2);
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--strict")) {
            o.strict = 1;
        } else if (!strcmp(a, "--workers") || !strcmp(a, "--entities") || !strcmp(a, "--frames") ||
                   !strcmp(a, "--seconds") || !strcmp(a, "--dt") || !strcmp(a, "--seed")) {
            if (v == NULL)
                return bad_usage("%s needs a value", a);
            i++;
            if (!strcmp(a, "--workers")) {
                if (parse_long(v, 1, 256, &n) != 0)
                    return bad_usage("--workers must be an integer in 1..256, not '%s'", v);
                o.workers = n;
            } else if (!strcmp(a, "--entities")) {
                if (parse_long(v, 0, 100000000, &n) != 0)
                    return bad_usage("--entities must be an integer in 0..100000000, not '%s'", v);
                o.entities = n;
            } else if (!strcmp(a, "--frames")) {
                if (parse_long(v, 1, LONG_MAX, &n) != 0)
                    return bad_usage("--frames must be a positive integer, not '%s'", v);
                o.frames = n;
            } else if (!strcmp(a, "--seconds")) {
                if (parse_double(v, 0.0, 1e9, &o.seconds) != 0)
                    return bad_usage("--seconds must be a positive number, not '%s'", v);
            } else if (!strcmp(a, "--dt")) {
                if (parse_double(v, 0.0, 10.0, &o.dt) != 0)
                    return bad_usage("--dt must be a number in (0, 10], not '%s'", v);
            } else {
                if (parse_long(v, 0, LONG_MAX, &n) != 0)
                    return bad_usage("--seed must be a non-negative integer, not '%s'", v);
                o.seed = (uint64_t)n;
            }
        } else if (a[0] == '-') {
            return bad_usage("unknown option '%s'", a);
        } else if (o.scene_dir != NULL) {
            return bad_usage("more than one SCENE_DIR ('%s')", a);
        } else {
            o.scene_dir = a;
        }
    }
    if (want_config)
        return print_config(&o);
    if (o.scene_dir == NULL)
        return bad_usage("%s", "no SCENE_DIR given");
    struct stat st;
    if (stat(o.scene_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return bad_usage("SCENE_DIR '%s' is not a directory", o.scene_dir);
    return run_scene(&o);
}
