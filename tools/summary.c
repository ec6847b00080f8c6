/* summary.c - ljs-run's human summary of a run, from the same counters as
 * the JSON report (ljs_stats_get, ljs_worker_stats, ljs_memory_report). */
#include "tools/summary.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOP_SCRIPTS 8

static double mib(uint64_t b)
{
    return (double)b / (1024.0 * 1024.0);
}

static double per_frame(double total, uint64_t frames)
{
    return frames ? total / (double)frames : 0.0;
}

static void print_frames(const ljs_stats_t *st, double seconds, FILE *out)
{
    fprintf(out, "frames   %" PRIu64 " in %.2f s: avg %.3f ms, max %.3f ms\n", st->frames, seconds,
            per_frame(st->total_frame_ms, st->frames), st->max_frame_ms);
    fprintf(out,
            "phases   start %.3f | update %.3f | events %.3f | commit %.3f | end %.3f (gc %.3f) ms/frame\n",
            per_frame(st->total_start_ms, st->frames), per_frame(st->total_update_ms, st->frames),
            per_frame(st->total_event_ms, st->frames), per_frame(st->total_commit_ms, st->frames),
            per_frame(st->total_end_ms, st->frames), per_frame(st->total_gc_ms, st->frames));
    fprintf(out,
            "work     %" PRIu64 " updates, events %" PRIu64 " sent / %" PRIu64 " delivered / %" PRIu64
            " dropped, %" PRIu64 " script errors, %" PRIu64 " console lines dropped\n",
            st->updates, st->events_sent, st->events_delivered, st->events_dropped, st->script_errors,
            st->console_dropped);
}

static void print_workers(ljs_runtime_t *rt, const ljs_memory_report_t *m, double seconds, FILE *out)
{
    for (uint32_t w = 0; w < m->nstates; w++) {
        ljs_worker_stats_t ws;
        if (ljs_worker_stats(rt, w, &ws) != LJS_OK)
            continue;
        const ljs_gc_stats_t *g = &m->gc[w];
        fprintf(out,
                "worker %-2u busy %5.1f%% | jobs %9" PRIu64 " steals %8" PRIu64 " parks %7" PRIu64
                " | Lua %.2f MiB (peak %.2f) | gc %.1f ms, max %.3f ms/frame, %" PRIu64 " idle steps\n",
                w, seconds > 0 ? ws.busy_ms / (seconds * 10.0) : 0.0, ws.jobs, ws.steals, ws.parks,
                mib(m->states[w].current_bytes), mib(m->states[w].peak_bytes), g->total_ms, g->max_frame_ms,
                g->idle_steps);
    }
}

static int by_time_desc(const void *a, const void *b)
{
    double x = ((const ljs_script_memory_t *)a)->time_ms, y = ((const ljs_script_memory_t *)b)->time_ms;
    return (x < y) - (x > y);
}

static void print_scripts(const ljs_memory_report_t *m, FILE *out)
{
    ljs_script_memory_t *s = malloc(m->nscripts * sizeof *s + 1);
    if (s == NULL)
        return;
    memcpy(s, m->scripts, m->nscripts * sizeof *s);
    qsort(s, m->nscripts, sizeof *s, by_time_desc);
    for (uint32_t i = 0; i < m->nscripts && i < TOP_SCRIPTS; i++)
        fprintf(out, "script   %-16s %9.1f ms %10" PRIu64 " calls %9.2f MiB allocated\n", s[i].name,
                s[i].time_ms, s[i].calls, mib(s[i].alloc_bytes));
    if (m->nscripts > TOP_SCRIPTS)
        fprintf(out, "script   ... %u more (--report FILE has them all)\n", m->nscripts - TOP_SCRIPTS);
    free(s);
}

void summary_print(ljs_runtime_t *rt, double seconds, FILE *out)
{
    ljs_stats_t st;
    ljs_memory_report_t m;
    if (ljs_stats_get(rt, &st) != LJS_OK || ljs_memory_report(rt, &m) != LJS_OK)
        return;
    print_frames(&st, seconds, out);
    print_workers(rt, &m, seconds, out);
    print_scripts(&m, out);
    fprintf(out, "memory   Lua %.2f MiB (peak %.2f) | process RSS %.1f MiB (peak %.1f)\n", mib(m.lua_bytes),
            mib(m.lua_peak_bytes), mib(m.rss_bytes), mib(m.rss_peak_bytes));
    /* The report's own names and counters (its "cache" object), so the two
     * never seem to disagree: script loads hit or miss the cache once per
     * script; every worker state then loads the bytecode. */
    ljs_cache_stats_t cs;
    if (ljs_cache_stats(rt, &cs) != LJS_OK)
        memset(&cs, 0, sizeof cs);
    fprintf(out,
            "caches   bytecode: %" PRIu64 " compiles, %" PRIu64 " hits / %" PRIu64 " misses, %" PRIu64
            " loads into worker states | queries %" PRIu64 " hits / %" PRIu64 " misses | reloads %" PRIu64
            " (%" PRIu64 " refused)\n",
            cs.compiles, cs.hits, cs.misses, cs.loads, st.query_hits, st.query_misses, st.reloads,
            st.reload_errors);
}

int summary_check_report(const char *path)
{
    struct stat st;
    errno = 0;
    if (stat(path, &st) != 0 || st.st_size == 0) {
        fprintf(stderr, "ljs-run: --report %s: the report was not written (%s)\n", path,
                errno ? strerror(errno) : "empty file");
        return -1;
    }
    return 0;
}
