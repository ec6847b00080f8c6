/* ljs-bench: runs every benchmark case, or the ones named on the command line. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <ljs.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A whole decimal integer in [lo, hi], or -1. */
static long parse_count(const char *s, long lo, long hi)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && v >= lo && v <= hi ? v : -1;
}

typedef struct bench_case_s {
    const char *name;
    int (*fn)(const bench_ctx_t *);
    const char *what;
} bench_case_t;

static const bench_case_t cases[] = {
    {"sched", bench_sched, "scheduler: empty and 1us jobs vs a mutex queue; stealing vs static split"},
    {"frame", bench_frame, "frames: ljs (1 and all workers) vs one lua_State with a table per entity"},
    {"cache", bench_cache, "bytecode cache: loads from cached bytecode vs compiling; cold/warm start"},
    {"watch", bench_watch,
     "hot reload: idle CPU of stat() polling vs the inotify watcher; save-to-run latency"},
    {"query", bench_query,
     "entity queries: 50 per frame, uncached scans vs the delta-maintained cache, with churn"},
    {"pool", bench_pool, "event payloads: tables from a per-state pool vs a new table per event"},
    {"gc", bench_gc, "GC: Lua's incremental and generational vs the managed per-frame policy, frame times"},
    {"gc_end", bench_gc_end,
     "GC off the critical path: the frame's end phase and p99, quiet, beside 4 CPU burners, 8 ms host work"},
    {"stats", bench_stats, "observability: frame time with LJS_STATS=1 and LJS_TRACE vs counters only"},
    {"runaway", bench_runaway, "runaway protection: frame time with the watchdog on (default) vs off"},
    {"snapshot", bench_snapshot,
     "world snapshots: save and load of 100k entities vs fwrite/fread of the columns"},
    {"fields", bench_fields,
     "field reads in the fast form: string, entity and list fields vs a number field"},
    {"host", bench_host,
     "host functions: a parallel call vs a raw lua_CFunction and a Lua call; a deferred call"},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* What the figures were measured on: BENCHMARKS.md quotes this line. */
static void print_header(const bench_ctx_t *ctx)
{
    char line[256], model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon != NULL) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    printf("# ljs-bench %s\n\n%s, %ld online CPUs, %u workers, medians of %d%s\n", date, model,
           sysconf(_SC_NPROCESSORS_ONLN), ctx->workers, ctx->reps, ctx->quick ? " (--quick sizes)" : "");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ljs-bench [CASE...] [--json] [--reps N] [--quick] [--workers N]\ncases:\n");
    for (size_t i = 0; i < NCASES; i++)
        fprintf(f, "  %-8s %s\n", cases[i].name, cases[i].what);
}

int main(int argc, char **argv)
{
    bench_ctx_t ctx = {.json = 0, .reps = 5, .quick = 0, .workers = 0};
    const char *want[NCASES + 1];
    size_t nwant = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ctx.workers = ncpu > 0 ? (unsigned)ncpu : 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            ctx.json = 1;
        } else if (!strcmp(argv[i], "--quick")) {
            ctx.quick = 1;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            ctx.reps = (int)parse_count(argv[++i], 1, 1000);
            if (ctx.reps < 1) {
                fprintf(stderr, "ljs-bench: --reps must be in 1..1000\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            long w = parse_count(argv[++i], 1, 256);
            if (w < 1) {
                fprintf(stderr, "ljs-bench: --workers must be in 1..256\n");
                return 2;
            }
            ctx.workers = (unsigned)w;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && nwant < NCASES) {
            size_t k;
            for (k = 0; k < NCASES && strcmp(cases[k].name, argv[i]); k++) {
            }
            if (k == NCASES) {
                fprintf(stderr, "ljs-bench: unknown case '%s'\n", argv[i]);
                usage(stderr);
                return 2;
            }
            want[nwant++] = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    /* A bad LJS_* variable would make every case fail or, worse, measure
     * something else: refuse to run at all, saying which. */
    ljs_config_t cfg;
    if (ljs_config_init(&cfg) != LJS_OK) {
        fprintf(stderr, "ljs-bench: %s\n", ljs_last_error());
        return 2;
    }
    int rc = 0;
    if (!ctx.json)
        print_header(&ctx);
    for (size_t i = 0; i < NCASES; i++) {
        int run = nwant == 0;
        for (size_t k = 0; k < nwant; k++)
            run |= !strcmp(want[k], cases[i].name);
        if (run && cases[i].fn(&ctx) != 0) {
            fprintf(stderr, "ljs-bench: case %s failed\n", cases[i].name);
            rc = 1;
        }
    }
    /* Missed targets are reported, not failures: the machine is shared
     * and noisy, and a closing note explains each miss. */
    if (!ctx.json)
        bench_targets_print();
    return rc;
}
