/* bench_gc.c - frame-time cost of garbage collection: Lua's incremental and
 * generational collectors against ljs' managed policy (runtime/lua/gc.c).
 *
 * The scene (NOTES-gc.md's method): every worker state holds a large live
 * heap (a module-level cache table built when the script loads, so each
 * state gets its own copy) and the update script makes short-lived tables
 * and strings per entity, a few MB per frame over all states, plus a slow
 * churn of cache entries (old objects replaced by new ones, which is what
 * makes generational mode's major collections happen). Each mode runs in
 * its own runtime (ctx->workers workers) with the same script, entities
 * and frame count; every ljs_frame call is timed.
 *
 * GC time: the managed policy runs its steps after the commit, so the
 * growth of ljs_gc_stats().total_ms over one frame is exactly that frame's
 * GC time on that state. Lua's own modes collect inside script time and
 * cannot be isolated, so their worst GC pause is estimated as the worst
 * frame minus the median frame (the figure names say "excess").
 *
 * Peak memory: the sum over states of ljs_state_memory current_bytes after
 * each frame, the maximum over frames; the sums of the states' own peaks
 * (which also see the garbage a frame makes before managed GC runs) are
 * reported beside it.
 *
 * Contention: incremental and managed run again beside 2 CPU-burning
 * processes (same run, reported separately: *_burn2): the managed
 * policy paces its steps by allocation, so its peak must not grow when
 * its workers get less CPU (peak_mem_vs_default_burn2).
 *
 * Correctness: every entity accumulates an integer derived from the
 * garbage it made and from the cache; every mode must end with the same
 * sum over all entities, no script errors and every update run.
 */
#include "bench/bench.h"

#include <ljs.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Script parameters: N cache entries per state, G garbage records per
 * entity per frame, CHURN: one entity in CHURN replaces a cache entry with
 * an equal new one each frame (same contents, so the states stay alike). */
static const char gc_src_fmt[] =
    "local N, G, CHURN = %u, %u, %u\n"
    "local cache = {}\n"
    "for i = 1, N do cache[i] = { i, tostring(i), { x = i } } end\n"
    "return {\n"
    "  fields = { acc = 0, tick = 0 },\n"
    "  update = function(self, dt)\n"
    "    local tick = self.tick + 1\n"
    "    self.tick = tick\n"
    "    local id = self.id\n"
    "    local parts = {}\n"
    "    for k = 1, G do\n"
    "      local e = cache[(id * 31 + tick * 7 + k * 1009) %% N + 1]\n"
    "      parts[k] = { k, e[2] .. \":\" .. tick, pos = { x = e[3].x, y = k } }\n"
    "    end\n"
    "    local sum = 0\n"
    "    for k = 1, G do\n"
    "      local p = parts[k]\n"
    "      sum = sum + #p[2] + p.pos.x %% 13 + p.pos.y\n"
    "    end\n"
    "    if (id + tick) %% CHURN == 0 then\n"
    "      local j = (id * 7919 + tick) %% N + 1\n"
    "      cache[j] = { j, tostring(j), { x = j } }\n"
    "    end\n"
    "    self.acc = self.acc + sum\n"
    "  end,\n"
    "}\n";

#define NMODES 3
#define MAX_REPS 64
#define MAX_WORKERS 256
#define DT (1.0 / 60.0)

static const char *const mode_names[NMODES] = {"incremental", "generational", "managed"};
enum { M_INC, M_GEN, M_MANAGED };

typedef struct scene_s {
    uint32_t cache_n;  /* cache entries per state */
    uint32_t garbage;  /* G */
    uint32_t churn;    /* CHURN */
    uint32_t entities; /* entities */
    uint32_t warm;     /* frames before measuring: the heap reaches steady state */
    uint32_t frames;   /* measured frames */
} scene_t;

/* One run of one mode. */
typedef struct run_s {
    double p50, p99, max;   /* frame time, ms */
    double worst_gc;        /* managed: measured; Lua modes: max - p50 */
    double peak_mb;         /* max over frames of the summed current bytes */
    double state_peak_mb;   /* sum over states of their peak_bytes */
    double live_mb;         /* summed current bytes right after loading */
    double gc_ms_per_frame; /* managed: mean GC time per frame, summed over states */
    uint64_t behind;        /* managed: frames even 8x the budget could not keep up */
    uint64_t cycles;        /* managed: cycles completed while measuring */
    uint64_t refused;       /* allocations the state limit refused while measuring */
    double excess;          /* max - p50, for every mode */
    int64_t acc_sum;
} run_t;

static void print_console(void *ud, const ljs_log_line_t *line)
{
    const char *mode = ud;
    if (line->severity == LJS_LOG_ERROR)
        fprintf(stderr, "bench gc: %s: script error: %s\n", mode, line->text);
}

static double summed_mb(const ljs_runtime_t *rt, unsigned workers, int peak)
{
    uint64_t sum = 0;
    ljs_state_memory_t m;
    for (uint32_t w = 0; w < workers; w++)
        if (ljs_state_memory(rt, w, &m) == LJS_OK)
            sum += peak ? m.peak_bytes : m.current_bytes;
    return (double)sum / (1024.0 * 1024.0);
}

/* Allocations refused by LJS_STATE_MEM_MB: each makes Lua run an emergency
 * full collection inside script time, a GC pause no policy counter sees. */
static uint64_t refused_allocs(const ljs_runtime_t *rt, unsigned workers)
{
    uint64_t sum = 0;
    ljs_state_memory_t m;
    for (uint32_t w = 0; w < workers; w++)
        if (ljs_state_memory(rt, w, &m) == LJS_OK)
            sum += m.failed_allocs;
    return sum;
}

/* Per state GC totals, for the per-frame difference. */
static void gc_totals(const ljs_runtime_t *rt, unsigned workers, double *ms, uint64_t *behind,
                      uint64_t *cycles)
{
    *behind = 0;
    *cycles = 0;
    ljs_gc_stats_t st;
    for (uint32_t w = 0; w < workers; w++) {
        memset(&st, 0, sizeof st);
        ljs_gc_stats(rt, w, &st);
        ms[w] = st.total_ms;
        *behind += st.behind;
        *cycles += st.cycles;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    return v[(k > n ? n : k) - 1];
}

static int create_runtime(const char *mode, unsigned workers, const char *path, uint32_t n,
                          ljs_runtime_t **rt, ljs_entity_t *ids)
{
    ljs_config_t cfg;
    ljs_script_t s;
    int rc = ljs_config_init(&cfg);
    if (rc == LJS_OK) {
        cfg.workers = workers;
        cfg.watch = 0; /* no watcher thread competing with the frames */
        snprintf(cfg.gc_mode, sizeof cfg.gc_mode, "%s", mode);
        rc = ljs_runtime_create(&cfg, rt);
    }
    if (rc == LJS_OK)
        rc = ljs_script_load(*rt, path, &s);
    for (uint32_t i = 0; i < n && rc == LJS_OK; i++)
        if ((rc = ljs_entity_create(*rt, &ids[i])) == LJS_OK)
            rc = ljs_script_attach(*rt, ids[i], s);
    if (rc != LJS_OK) {
        fprintf(stderr, "bench gc: %s: %s: %s\n", mode, ljs_errname(rc), ljs_last_error());
        return -1;
    }
    return 0;
}

/* Scratch buffers of one run, allocated once for every run. */
typedef struct scratch_s {
    ljs_entity_t *ids;
    double *frame_ms;
    double *gc_prev, *gc_now;
} scratch_t;

static int run_frames(ljs_runtime_t *rt, const char *mode, unsigned workers, const scene_t *sc, scratch_t *b,
                      run_t *out)
{
    for (uint32_t f = 0; f < sc->warm; f++) {
        if (ljs_frame(rt, DT) != LJS_OK) {
            fprintf(stderr, "bench gc: %s: ljs_frame: %s\n", mode, ljs_last_error());
            return -1;
        }
    }
    ljs_console_drain(rt, print_console, (void *)mode);
    uint64_t behind0 = 0, cycles0 = 0, behind1 = 0, cycles1 = 0;
    gc_totals(rt, workers, b->gc_prev, &behind0, &cycles0);
    uint64_t refused0 = refused_allocs(rt, workers);
    double gc_sum = 0.0, worst_gc = 0.0, peak = 0.0;
    for (uint32_t f = 0; f < sc->frames; f++) {
        uint64_t t0 = bench_now_ns();
        int rc = ljs_frame(rt, DT);
        b->frame_ms[f] = (double)(bench_now_ns() - t0) * 1e-6;
        if (rc != LJS_OK) {
            fprintf(stderr, "bench gc: %s: ljs_frame: %s\n", mode, ljs_last_error());
            return -1;
        }
        double mb = summed_mb(rt, workers, 0);
        peak = mb > peak ? mb : peak;
        /* The states collect in parallel, so a frame's GC pause is its
         * slowest state's GC time, not the sum. */
        gc_totals(rt, workers, b->gc_now, &behind1, &cycles1);
        for (uint32_t w = 0; w < workers; w++) {
            double d = b->gc_now[w] - b->gc_prev[w];
            worst_gc = d > worst_gc ? d : worst_gc;
            gc_sum += d;
            b->gc_prev[w] = b->gc_now[w];
        }
    }
    ljs_console_drain(rt, print_console, (void *)mode);
    qsort(b->frame_ms, sc->frames, sizeof *b->frame_ms, cmp_double);
    out->p50 = percentile(b->frame_ms, sc->frames, 0.50);
    out->p99 = percentile(b->frame_ms, sc->frames, 0.99);
    out->max = b->frame_ms[sc->frames - 1];
    out->excess = out->max - out->p50;
    out->worst_gc = strcmp(mode, "managed") ? out->excess : worst_gc;
    out->peak_mb = peak;
    out->state_peak_mb = summed_mb(rt, workers, 1);
    out->gc_ms_per_frame = gc_sum / (double)sc->frames;
    out->behind = behind1 - behind0;
    out->cycles = cycles1 - cycles0;
    out->refused = refused_allocs(rt, workers) - refused0;
    return 0;
}

/* Sum of acc over all entities, and a check that every update ran. */
static int check_end(ljs_runtime_t *rt, const char *mode, const scene_t *sc, const ljs_entity_t *ids,
                     int64_t *sum)
{
    ljs_stats_t st;
    uint64_t want = (uint64_t)sc->entities * (sc->warm + sc->frames);
    if (ljs_stats_get(rt, &st) != LJS_OK || st.script_errors != 0 || st.updates != want) {
        fprintf(stderr, "bench gc: %s: %llu script errors, %llu updates (expected %llu)\n", mode,
                (unsigned long long)st.script_errors, (unsigned long long)st.updates,
                (unsigned long long)want);
        return -1;
    }
    *sum = 0;
    for (uint32_t i = 0; i < sc->entities; i++) {
        int64_t v;
        if (ljs_field_get_integer(rt, ids[i], "acc", &v) != LJS_OK) {
            fprintf(stderr, "bench gc: %s: cannot read acc: %s\n", mode, ljs_last_error());
            return -1;
        }
        *sum += v;
    }
    return 0;
}

/* One mode, one repetition, in a fresh runtime: runtimes are measured one
 * after another, never two alive at once (only the newest runtime of a
 * thread gets its workers: bench_frame.c). */
static int run_mode(const bench_ctx_t *ctx, int mode, const char *path, const scene_t *sc, scratch_t *b,
                    run_t *out)
{
    const char *name = mode_names[mode];
    ljs_runtime_t *rt = NULL;
    int rc = create_runtime(name, ctx->workers, path, sc->entities, &rt, b->ids);
    if (rc == 0) {
        out->live_mb = summed_mb(rt, ctx->workers, 0);
        rc = run_frames(rt, name, ctx->workers, sc, b, out);
    }
    if (rc == 0)
        rc = check_end(rt, name, sc, b->ids, &out->acc_sum);
    if (rt != NULL)
        ljs_runtime_destroy(rt);
    return rc;
}

static double ratio(double a, double b)
{
    return b > 0.0 ? a / b : 0.0;
}

/* Names handed to bench_figure must outlive bench_report. */
static char name_pool[40][64];
static size_t name_used;

static const char *name_of(const char *what, const char *mode)
{
    if (name_used == sizeof name_pool / sizeof name_pool[0])
        return "overflow";
    char *s = name_pool[name_used++];
    snprintf(s, sizeof name_pool[0], "%s_%s", what, mode);
    return s;
}

/* Median over reps of one member of run_t. */
static double med(const run_t (*runs)[NMODES], int reps, int mode, size_t offset)
{
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        double d;
        memcpy(&d, (const char *)&runs[r][mode] + offset, sizeof d);
        v[r] = d;
    }
    return bench_median(v, (size_t)reps);
}

static int run_all(const bench_ctx_t *ctx, const char *path, const scene_t *sc, run_t (*runs)[NMODES],
                   run_t (*burn)[NMODES], int reps)
{
    scratch_t b;
    b.ids = malloc(sizeof *b.ids * sc->entities);
    b.frame_ms = malloc(sizeof *b.frame_ms * sc->frames);
    b.gc_prev = malloc(sizeof *b.gc_prev * ctx->workers);
    b.gc_now = malloc(sizeof *b.gc_now * ctx->workers);
    int rc = b.ids && b.frame_ms && b.gc_prev && b.gc_now ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "bench gc: out of memory\n");
    /* Modes alternate within each repetition, so a slow spell of the
     * machine does not land on one mode only. */
    for (int r = 0; r < reps && rc == 0; r++) {
        for (int m = 0; m < NMODES && rc == 0; m++) {
            rc = run_mode(ctx, m, path, sc, &b, &runs[r][m]);
            if (rc == 0 && runs[r][m].acc_sum != runs[0][0].acc_sum) {
                fprintf(stderr, "bench gc: %s rep %d: sum of acc %lld, incremental rep 0 %lld\n",
                        mode_names[m], r, (long long)runs[r][m].acc_sum, (long long)runs[0][0].acc_sum);
                rc = -1;
            }
        }
        /* The same with 2 CPU-burning processes beside it (incremental and
         * managed): the managed policy's memory must not depend on how
         * much CPU its workers get. */
        bench_burners_t bb = {.n = 0};
        if (rc == 0 && bench_burners_start(&bb, 2) != 0)
            rc = -1;
        for (int m = M_INC; m <= M_MANAGED && rc == 0; m += M_MANAGED - M_INC)
            rc = run_mode(ctx, m, path, sc, &b, &burn[r][m]);
        bench_burners_stop(&bb);
    }
    free(b.ids);
    free(b.frame_ms);
    free(b.gc_prev);
    free(b.gc_now);
    return rc;
}

static void report(const bench_ctx_t *ctx, const scene_t *sc, const run_t (*runs)[NMODES],
                   const run_t (*burn)[NMODES], int reps)
{
    bench_result_t res = {.name = "gc"};
    name_used = 0;
    double p99[NMODES], worst[NMODES], peak[NMODES];
    for (int m = 0; m < NMODES; m++) {
        const char *mn = mode_names[m];
        p99[m] = med(runs, reps, m, offsetof(run_t, p99));
        worst[m] = med(runs, reps, m, offsetof(run_t, worst_gc));
        peak[m] = med(runs, reps, m, offsetof(run_t, peak_mb));
        bench_figure(&res, name_of("frame_p50_ms", mn), med(runs, reps, m, offsetof(run_t, p50)));
        bench_figure(&res, name_of("frame_p99_ms", mn), p99[m]);
        bench_figure(&res, name_of("frame_max_ms", mn), med(runs, reps, m, offsetof(run_t, max)));
        bench_figure(&res,
                     m == M_MANAGED ? "worst_gc_frame_ms_managed" : name_of("worst_frame_excess_ms", mn),
                     worst[m]);
        bench_figure(&res, name_of("peak_mb", mn), peak[m]);
        bench_figure(&res, name_of("state_peaks_mb", mn), med(runs, reps, m, offsetof(run_t, state_peak_mb)));
    }
    double behind[MAX_REPS], cycles[MAX_REPS], refused[NMODES][MAX_REPS];
    for (int r = 0; r < reps; r++) {
        behind[r] = (double)runs[r][M_MANAGED].behind;
        cycles[r] = (double)runs[r][M_MANAGED].cycles;
        for (int m = 0; m < NMODES; m++)
            refused[m][r] = (double)runs[r][m].refused;
    }
    /* Same estimate as the Lua modes': shows GC pauses outside the policy's
     * own steps (emergency collections at the state limit). */
    bench_figure(&res, "worst_frame_excess_ms_managed", med(runs, reps, M_MANAGED, offsetof(run_t, excess)));
    for (int m = 0; m < NMODES; m++)
        bench_figure(&res, name_of("refused_allocs", mode_names[m]), bench_median(refused[m], (size_t)reps));
    bench_figure(&res, "gc_ms_per_frame_managed",
                 med(runs, reps, M_MANAGED, offsetof(run_t, gc_ms_per_frame)));
    bench_figure(&res, "behind_state_frames_managed", bench_median(behind, (size_t)reps));
    bench_figure(&res, "cycles_managed", bench_median(cycles, (size_t)reps));
    bench_figure(&res, "live_mb_after_load", med(runs, reps, M_INC, offsetof(run_t, live_mb)));
    bench_figure(&res, "entities", (double)sc->entities);
    bench_figure(&res, "frames", (double)sc->frames);
    bench_figure(&res, "workers", (double)ctx->workers);
    double best_default = p99[M_INC] < p99[M_GEN] ? p99[M_INC] : p99[M_GEN];
    bench_ratio(&res, "p99_vs_best_default", ratio(best_default, p99[M_MANAGED]));
    bench_ratio(&res, "worst_gc_vs_incremental", ratio(worst[M_INC], worst[M_MANAGED]));
    bench_ratio(&res, "worst_gc_vs_generational", ratio(worst[M_GEN], worst[M_MANAGED]));
    /* Lower is better here (target <= 1.5): the managed policy may hold
     * some more garbage between its steps. */
    bench_ratio(&res, "peak_mem_vs_default", ratio(peak[M_MANAGED], peak[M_INC]));
    double peak_inc_burn = med(burn, reps, M_INC, offsetof(run_t, peak_mb));
    double peak_man_burn = med(burn, reps, M_MANAGED, offsetof(run_t, peak_mb));
    bench_figure(&res, "peak_mb_incremental_burn2", peak_inc_burn);
    bench_figure(&res, "peak_mb_managed_burn2", peak_man_burn);
    bench_figure(&res, "frame_p99_ms_managed_burn2", med(burn, reps, M_MANAGED, offsetof(run_t, p99)));
    bench_figure(&res, "frame_p99_ms_incremental_burn2", med(burn, reps, M_INC, offsetof(run_t, p99)));
    bench_ratio(&res, "peak_mem_vs_default_burn2", ratio(peak_man_burn, peak_inc_burn));
    bench_report(ctx, &res);
}

int bench_gc(const bench_ctx_t *ctx)
{
    /* Full: ~tens of MB live per state, a few MB of garbage per frame. */
    static const scene_t full = {150000, 3, 64, 4000, 40, 300};
    static const scene_t quick = {30000, 3, 64, 1000, 20, 60};
    const scene_t *sc = ctx->quick ? &quick : &full;
    if (ctx->workers > MAX_WORKERS)
        return 1;
    int reps = ctx->reps < MAX_REPS ? ctx->reps : MAX_REPS;

    char dir[64];
    if (bench_tmpdir(dir, sizeof dir, "gc") != 0)
        return 1;
    char path[512], src[sizeof gc_src_fmt + 64];
    snprintf(path, sizeof path, "%s/garbage.lua", dir);
    snprintf(src, sizeof src, gc_src_fmt, sc->cache_n, sc->garbage, sc->churn);
    int rc = bench_write(path, src, strlen(src)) == 0 ? 0 : 1;
    if (rc != 0)
        fprintf(stderr, "bench gc: cannot write %s\n", path);

    run_t(*runs)[NMODES] = rc == 0 ? calloc((size_t)reps, sizeof *runs) : NULL;
    run_t(*burn)[NMODES] = rc == 0 ? calloc((size_t)reps, sizeof *burn) : NULL;
    if (rc == 0 && (runs == NULL || burn == NULL))
        rc = 1;
    if (rc == 0 && run_all(ctx, path, sc, runs, burn, reps) != 0)
        rc = 1;
    if (rc == 0)
        report(ctx, sc, (const run_t(*)[NMODES])runs, (const run_t(*)[NMODES])burn, reps);
    free(runs);
    free(burn);
    unlink(path);
    rmdir(dir);
    return rc;
}
