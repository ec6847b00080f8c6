/* bench_targets.c - the target each issue set for its benchmark, checked
 * against the medians the cases report, printed as one Markdown table at
 * the end of a run (BENCHMARKS.md holds the latest from this machine). */
#include "bench/bench.h"

#include <stdio.h>
#include <string.h>

typedef struct target_s {
    const char *bench; /* case */
    const char *name;  /* a figure or ratio of that case */
    int at_most;       /* 1: value <= limit, 0: value >= limit */
    double limit;
    const char *why; /* what the target means */
} target_t;

static const target_t targets[] = {
    {"sched", "empty_ns_per_job_1w", 1, 20.0, "scheduling overhead per job, ns"},
    {"sched", "us_2w_vs_1w", 0, 1.8, "1 us jobs: 2 workers vs 1"},
    {"sched", "steal_vs_static", 0, 1.5, "imbalanced parallel-for: stealing vs static split"},
    {"sched", "empty_vs_mutex_1w", 0, 1.0, "never slower than a mutex queue"},
    {"sched", "empty_vs_mutex_2w", 0, 1.0, "never slower than a mutex queue"},
    {"sched", "us_vs_mutex_1w", 0, 1.0, "never slower than a mutex queue"},
    {"sched", "us_vs_mutex_2w", 0, 1.0, "never slower than a mutex queue"},
    {"frame", "light_fast_all_vs_baseline", 0, 1.8, "light script, fast form vs one lua_State (worst size)"},
    {"frame", "light_natural_all_vs_baseline", 0, 1.2,
     "light script, natural form vs one lua_State (issue 17)"},
    {"frame", "light_natural_1w_vs_baseline", 0, 0.65,
     "light script, natural form, 1 worker vs one lua_State"},
    {"frame", "wide_natural_1w_slowdown", 1, 1.3, "24 fields declared, 2 touched vs 2 declared: time ratio"},
    {"frame", "wide_natural_1w_vs_baseline", 0, 1.5,
     "24 fields declared, 2 touched vs one lua_State, 24-field tables"},
    {"frame", "heavy_natural_all_vs_baseline", 0, 1.7, "heavy script vs one lua_State"},
    {"frame", "light_fast_all_vs_1w", 0, 1.8, "all workers vs 1"},
    {"frame", "light_natural_all_vs_1w", 0, 1.8, "all workers vs 1"},
    {"frame", "heavy_natural_all_vs_1w", 0, 1.8, "all workers vs 1"},
    {"frame", "empty_update_ns", 1, 40.0, "per-entity overhead of an empty update, ns (issue 17)"},
    {"cache", "raw_load_vs_compile_large", 0, 8.0, "cached bytecode load vs compile, debug info kept"},
    {"cache", "raw_stripped_vs_compile_large", 0, 15.0, "cached bytecode load vs compile, stripped"},
    {"cache", "disk_warm_vs_cold", 0, 5.0, "1,000 scripts: warm start from LJS_CACHE_DIR vs cold"},
    {"watch", "idle_cpu_ms_per_s_inotify_net_100", 1, 1.0, "idle CPU of the watcher, ms/s"},
    {"watch", "idle_cpu_ms_per_s_inotify_net_1000", 1, 1.0, "idle CPU of the watcher, ms/s"},
    {"watch", "idle_cpu_ms_per_s_inotify_net_10000", 1, 1.0, "idle CPU of the watcher, ms/s"},
    {"watch", "reload_latency_p99_ms", 1, 16.7, "save to first frame running it, p99, ms"},
    {"query", "cached_vs_scan_100k_1pct", 0, 20.0, "100k entities, 1% churn: cached vs scan"},
    {"pool", "bytes_new_vs_pooled", 0, 1.5, "Lua bytes per event: new table vs pooled"},
    {"gc", "p99_vs_best_default", 0, 1.0, "frame p99: better of Lua's modes vs managed"},
    {"gc", "worst_gc_vs_incremental", 0, 5.0, "worst GC pause: incremental vs managed"},
    {"gc", "worst_gc_vs_generational", 0, 5.0, "worst GC pause: generational vs managed"},
    {"gc", "peak_mem_vs_default", 1, 1.5, "peak memory: managed vs incremental"},
    {"gc", "peak_mem_vs_default_burn2", 1, 1.5, "peak memory: managed vs incremental, 2 CPU burners beside"},
    {"gc_end", "end_p99_ms_burn4", 1, 0.2,
     "frame end phase (commit to return) p99, 4 CPU burners beside, ms"},
    {"stats", "frame_time_stats_off_vs_on", 0, 0.98, "stats on cost < 2% of frame time"},
    {"runaway", "frame_time_protection_off_vs_on", 0, 0.98, "runaway protection costs < 2% of frame time"},
    {"snapshot", "save_vs_fwrite", 0, 0.5, "100k x 10 fields: world save vs fwrite of the columns"},
    {"snapshot", "load_vs_fwrite", 0, 0.5,
     "100k x 10 fields: world load (checked, rebuilt) vs fwrite of the columns"},
    {"fields", "string_read_vs_number", 1, 1.5, "fast-form update reading a string field vs a number field"},
    {"fields", "entity_read_vs_number", 1, 1.5, "fast-form update reading an entity field vs a number field"},
    {"host", "parallel_over_raw", 1, 2.0, "parallel host call vs a raw lua_CFunction in one state"},
    {"host", "deferred_call_ns", 1, 150.0, "deferred host call, amortised with the owner's dispatch, ns"},
};
#define NTARGETS (sizeof targets / sizeof targets[0])

#define MAX_RESULTS 16
static bench_result_t results[MAX_RESULTS];
static size_t nresults;

void bench_keep(const bench_result_t *r)
{
    if (nresults < MAX_RESULTS)
        results[nresults++] = *r;
}

static int find(const char *bench, const char *name, double *out)
{
    for (size_t i = 0; i < nresults; i++) {
        if (strcmp(results[i].name, bench) != 0)
            continue;
        const bench_result_t *r = &results[i];
        for (size_t k = 0; k < r->nfigures; k++)
            if (!strcmp(r->figures[k].name, name))
                return *out = r->figures[k].value, 1;
        for (size_t k = 0; k < r->nratios; k++)
            if (!strcmp(r->ratios[k].name, name))
                return *out = r->ratios[k].value, 1;
    }
    return 0;
}

int bench_targets_print(void)
{
    int missed = 0, shown = 0;
    for (size_t i = 0; i < NTARGETS; i++) {
        const target_t *t = &targets[i];
        double v;
        if (!find(t->bench, t->name, &v))
            continue; /* case not run (or --quick sizes) */
        if (!shown++)
            printf("\n## targets\n\n| case | measure | median | target | met | meaning |\n"
                   "| --- | --- | --- | --- | --- | --- |\n");
        int met = t->at_most ? v <= t->limit : v >= t->limit;
        missed += !met;
        printf("| %s | %s | %.3g | %s %.3g | %s | %s |\n", t->bench, t->name, v,
               t->at_most ? "<=" : ">=", t->limit, met ? "yes" : "**no**", t->why);
    }
    if (shown)
        printf("\n%d of %d targets met.\n", shown - missed, shown);
    return missed;
}
