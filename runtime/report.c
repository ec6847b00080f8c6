/* report.c - ljs_memory_report, the JSON report (ljs_report_json,
 * LJS_REPORT) and trace flushing (ljs_trace_flush, LJS_TRACE).
 *
 * Everything here reads counters the workers wrote during frames; the
 * owner calls it between frames, after the frame's last job on every
 * worker completed, so plain reads see final values. */
#include "runtime/error.h"

#include "jobs/mem.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VmRSS / VmHWM of this process in bytes (0 when /proc is unavailable). */
static void read_rss(uint64_t *rss, uint64_t *hwm)
{
    char line[256];
    *rss = *hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        if (!strncmp(line, "VmRSS:", 6))
            *rss = (uint64_t)strtoull(line + 6, NULL, 10) << 10; /* "VmRSS:   1234 kB" */
        else if (!strncmp(line, "VmHWM:", 6))
            *hwm = (uint64_t)strtoull(line + 6, NULL, 10) << 10;
    }
    fclose(f);
}

static uint32_t live_scripts(const ljs_runtime_t *rt)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < rt->nscripts; i++)
        n += rt->scripts[i].used != 0;
    return n;
}

static int reserve_report(ljs_runtime_t *rt, uint32_t nscripts)
{
    if (rt->rep_states == NULL) {
        rt->rep_states = ljs__calloc(rt->nworkers, sizeof *rt->rep_states);
        rt->rep_gc = ljs__calloc(rt->nworkers, sizeof *rt->rep_gc);
        if (rt->rep_states == NULL || rt->rep_gc == NULL)
            return LJS_ENOMEM;
    }
    if (nscripts > rt->rep_scripts_cap) {
        ljs_script_memory_t *p = ljs__realloc(rt->rep_scripts, nscripts * sizeof *p);
        if (p == NULL)
            return LJS_ENOMEM;
        rt->rep_scripts = p;
        rt->rep_scripts_cap = nscripts;
    }
    return LJS_OK;
}

int ljs_memory_report(ljs_runtime_t *rt, ljs_memory_report_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_memory_report");
    if (rt == NULL || out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_memory_report: NULL argument");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_memory_report: a frame is running");
    memset(out, 0, sizeof *out);
    uint32_t nscripts = live_scripts(rt);
    if (reserve_report(rt, nscripts) != LJS_OK)
        return ljs__error(LJS_ENOMEM, "ljs_memory_report: out of memory");
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        ljs_state_memory(rt, i, &rt->rep_states[i]);
        ljs_gc_stats(rt, i, &rt->rep_gc[i]);
        out->lua_bytes += rt->rep_states[i].current_bytes;
    }
    out->lua_peak_bytes = rt->lua_peak > out->lua_bytes ? rt->lua_peak : out->lua_bytes;
    read_rss(&out->rss_bytes, &out->rss_peak_bytes);
    uint32_t k = 0;
    for (uint32_t i = 0; i < rt->nscripts; i++) {
        const ljs__script_t *s = &rt->scripts[i];
        ljs_script_stats_t st;
        if (!s->used || ljs_script_stats(rt, (ljs_script_t){i}, &st) != LJS_OK)
            continue;
        rt->rep_scripts[k++] = (ljs_script_memory_t){s->name, s->path, st.alloc_bytes, st.calls, st.time_ms};
    }
    out->nstates = rt->nworkers;
    out->states = rt->rep_states;
    out->gc = rt->rep_gc;
    out->nscripts = k;
    out->scripts = rt->rep_scripts;
    return LJS_OK;
}

/* ==== JSON ================================================================ */

/* `sep` is written before the key: "" for an object's first member. */
static void kv_u64(FILE *f, const char *sep, const char *k, uint64_t v)
{
    fprintf(f, "%s\"%s\":%llu", sep, k, (unsigned long long)v);
}

static void kv_dbl(FILE *f, const char *sep, const char *k, double v)
{
    fprintf(f, "%s\"%s\":%.3f", sep, k, isfinite(v) ? v : 0.0); /* JSON has no NaN */
}

static void kv_str(FILE *f, const char *sep, const char *k, const char *v)
{
    fprintf(f, "%s\"%s\":", sep, k);
    ljs__json_string(f, v);
}

/* One member per field of a stats struct, generated from the same X-macro
 * list as the struct (ljs.h's LJS_*_FIELDS): a counter added to a struct is
 * in the report without anyone remembering it. Expects `f`, `p` (the
 * struct) and `fsep` (written before the member) in scope. */
#define LJS__KV(type, name)                                                            \
    _Generic((p)->name, double : kv_dbl, default : kv_u64)(f, fsep, #name, (p)->name); \
    fsep = ",";

/* {"a":1,"b":2,...} for every field of `fields` (an LJS_*_FIELDS) of `p`. */
#define LJS__KV_OBJECT(fields)         \
    do {                               \
        const char *fsep = "";         \
        fputc('{', f);                 \
        fields(LJS__KV) fputc('}', f); \
    } while (0)

static void put_config(FILE *f, const ljs_runtime_t *rt)
{
    const char *sep = "";
    fputs("\"config\":{", f);
#define LJS__REPORT_KNOB(type, field, env, def, lo, hi, help)                       \
    fprintf(f, "%s\n  \"%s\":{\"value\":%llu,\"source\":\"%s\"}", sep, env,         \
            (unsigned long long)rt->cfg.field, ljs_config_source(&rt->given, env)); \
    sep = ",";
    LJS_CONFIG_MAP(LJS__REPORT_KNOB)
#undef LJS__REPORT_KNOB
#define LJS__REPORT_STR_KNOB(field, env, def, maxlen, help) \
    fprintf(f, ",\n  \"%s\":{\"value\":", env);             \
    ljs__json_string(f, rt->cfg.field);                     \
    fprintf(f, ",\"source\":\"%s\"}", ljs_config_source(&rt->given, env));
    LJS_CONFIG_STR_MAP(LJS__REPORT_STR_KNOB)
#undef LJS__REPORT_STR_KNOB
    fputs("}", f);
}

static void put_stats(FILE *f, const ljs_stats_t *p)
{
    fputs(",\n\"stats\":", f);
    LJS__KV_OBJECT(LJS_STATS_FIELDS);
}

static void put_gc(FILE *f, const ljs_gc_stats_t *p)
{
    fputs(",\"gc\":", f);
    LJS__KV_OBJECT(LJS_GC_STATS_FIELDS);
}

static void put_workers(FILE *f, const ljs_runtime_t *rt, const ljs_memory_report_t *m)
{
    fputs(",\n\"workers\":[", f);
    for (uint32_t i = 0; i < m->nstates; i++) {
        ljs_worker_stats_t ws;
        ljs_worker_stats(rt, i, &ws);
        const ljs_state_memory_t *sm = &m->states[i];
        fprintf(f, "%s\n  {", i ? "," : "");
        kv_u64(f, "", "worker", i);
        {
            const ljs_worker_stats_t *p = &ws;
            const char *fsep = ",";
            LJS_WORKER_STATS_FIELDS(LJS__KV)
            (void)fsep;
        }
        fputs(",\"memory\":", f);
        {
            const ljs_state_memory_t *p = sm;
            LJS__KV_OBJECT(LJS_STATE_MEMORY_FIELDS);
        }
        put_gc(f, &m->gc[i]);
        fputs("}", f);
    }
    fputs("]", f);
}

static void put_memory(FILE *f, const ljs_memory_report_t *m)
{
    fputs(",\n\"memory\":{", f);
    kv_u64(f, "", "lua_bytes", m->lua_bytes);
    kv_u64(f, ",", "lua_peak_bytes", m->lua_peak_bytes);
    kv_u64(f, ",", "rss_bytes", m->rss_bytes);
    kv_u64(f, ",", "rss_peak_bytes", m->rss_peak_bytes);
    fputs("}", f);
}

static void put_scripts(FILE *f, const ljs_runtime_t *rt)
{
    const char *sep = "";
    fputs(",\n\"scripts\":[", f);
    for (uint32_t i = 0; i < rt->nscripts; i++) {
        const ljs__script_t *s = &rt->scripts[i];
        ljs_script_stats_t st;
        if (!s->used || ljs_script_stats(rt, (ljs_script_t){i}, &st) != LJS_OK)
            continue;
        fprintf(f, "%s\n  {", sep);
        kv_str(f, "", "name", s->name);
        kv_str(f, ",", "path", s->path);
        char nat[2048];
        uint32_t ns, nt;
        ljs__script_natural_summary(s, nat, sizeof nat, &ns, &nt);
        kv_str(f, ",", "natural", nat);
        {
            const ljs_script_stats_t *p = &st;
            const char *fsep = ",";
            LJS_SCRIPT_STATS_FIELDS(LJS__KV)
            (void)fsep;
        }
        fputs("}", f);
        sep = ",";
    }
    fputs("]", f);
}

/* Every field with its type ("list of string (max 8)"), and the interned
 * strings string fields and lists hold. */
static void put_fields(FILE *f, const ljs_runtime_t *rt)
{
    const ljs__world_t *w = &rt->world;
    char type[64];
    fputs(",\n\"fields\":[", f);
    for (uint32_t i = 0; i < w->nfields; i++) {
        fprintf(f, "%s{", i ? "," : "");
        kv_str(f, "", "name", w->fields[i].name);
        kv_str(f, ",", "type", ljs__ftype_name(ljs__field_ftype(&w->fields[i]), type, sizeof type));
        fputs("}", f);
    }
    fputs("],\n\"strings\":{", f);
    kv_u64(f, "", "count", atomic_load_explicit(&w->strings.count, memory_order_relaxed));
    kv_u64(f, ",", "bytes", atomic_load_explicit(&w->strings.bytes, memory_order_relaxed));
    kv_u64(f, ",", "sweeps", w->strings.sweeps);
    kv_u64(f, ",", "freed", w->strings.freed);
    fputs("}", f);
}

static void put_cache_queries(FILE *f, const ljs_runtime_t *rt)
{
    ljs_cache_stats_t c;
    ljs_query_stats_t q;
    ljs_cache_stats(rt, &c);
    ljs_query_stats(rt, &q);
    {
        const ljs_cache_stats_t *p = &c;
        fputs(",\n\"cache\":", f);
        LJS__KV_OBJECT(LJS_CACHE_STATS_FIELDS);
    }
    {
        const ljs_query_stats_t *p = &q;
        fputs(",\n\"queries\":", f);
        LJS__KV_OBJECT(LJS_QUERY_STATS_FIELDS);
    }
}

int ljs_report_json(ljs_runtime_t *rt, FILE *out)
{
    LJS_CHECK_OWNER(rt, "ljs_report_json");
    ljs_memory_report_t m = {0};
    ljs_stats_t st;
    if (rt == NULL || out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_report_json: NULL argument");
    int rc = ljs_memory_report(rt, &m);
    if (rc == LJS_OK)
        ljs__gc_quiesce(rt); /* the trace rings' counts below: no GC job may append now */
    if (rc != LJS_OK)
        return rc;
    ljs_stats_get(rt, &st);
    fputs("{\"ljs\":{", out);
    kv_str(out, "", "version", LJS_VERSION_STRING);
    kv_u64(out, ",", "workers", rt->nworkers);
    kv_str(out, ",", "trace", rt->cfg.trace);
    kv_u64(out, ",", "trace_spans_lost", ljs__trace_lost(rt->trace));
    fputs("},\n", out);
    put_config(out, rt);
    put_stats(out, &st);
    put_workers(out, rt, &m);
    put_memory(out, &m);
    put_scripts(out, rt);
    put_fields(out, rt);
    put_cache_queries(out, rt);
    fputs("}\n", out);
    if (ferror(out))
        return ljs__error(LJS_EIO, "ljs_report_json: write failed");
    return LJS_OK;
}

int ljs_trace_flush(ljs_runtime_t *rt)
{
    LJS_CHECK_OWNER(rt, "ljs_trace_flush");
    if (rt == NULL)
        return ljs__error(LJS_EINVAL, "ljs_trace_flush: NULL runtime");
    if (rt->trace == NULL)
        return ljs__error(LJS_EINVAL, "ljs_trace_flush: tracing is off (set LJS_TRACE=file.json)");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_trace_flush: a frame is running");
    ljs__gc_quiesce(rt); /* background GC jobs append to the rings written here */
    return ljs__trace_write(rt->trace);
}

static int write_report_file(ljs_runtime_t *rt, const char *path)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return ljs__error(LJS_EIO, "LJS_REPORT=%s: %s", path, strerror(errno));
    int rc = ljs_report_json(rt, f);
    if (fclose(f) != 0 && rc == LJS_OK)
        rc = ljs__error(LJS_EIO, "LJS_REPORT=%s: %s", path, strerror(errno));
    if (rc == LJS_OK && rename(tmp, path) != 0)
        rc = ljs__error(LJS_EIO, "LJS_REPORT=%s: %s", path, strerror(errno));
    if (rc != LJS_OK)
        remove(tmp);
    return rc;
}

void ljs__report_at_exit(ljs_runtime_t *rt)
{
    /* The host's log callback gets them if it set one; stderr otherwise. */
    if (rt->cfg.report[0] != '\0' && write_report_file(rt, rt->cfg.report) != LJS_OK &&
        !ljs__console_to_host(&rt->console, LJS_LOG_ERROR, ljs_last_error()))
        fprintf(stderr, "ljs: %s\n", ljs_last_error());
    if (rt->trace != NULL && ljs__trace_write(rt->trace) != LJS_OK &&
        !ljs__console_to_host(&rt->console, LJS_LOG_ERROR, ljs_last_error()))
        fprintf(stderr, "ljs: %s\n", ljs_last_error());
}
