/* test_observe.c - observability: per-script memory attribution, the
 * JSON report (parsed by a strict checker, every section present), the
 * Chrome trace (valid JSON, spans from every worker), per-frame and
 * cumulative stats, LJS_STATS=0, LJS_REPORT at exit, config sources. */
#include "tests/support.h"

#include "tests/json_check.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 10,240 strings of 1,000 characters: long strings are not interned and
 * string.rep builds them in a stack buffer (up to LUAL_BUFFERSIZE, 1 KiB),
 * so each is one allocation of ~1,025 bytes: ~10.0 MiB in all. */
static const char *hog_src = "return { fields = { done = false },\n"
                             "  update = function(self)\n"
                             "    if self.done then return end\n"
                             "    for i = 1, 10240 do local s = string.rep('x', 1000) end\n"
                             "    self.done = true\n"
                             "  end }\n";
static const char *idle_src =
    "return { fields = { n = 0 }, update = function(self) self.n = self.n + 1 end }\n";

/* LJS_TRACE_SPANS for the next fixture_make (0: the default). */
static uint32_t fixture_trace_spans;

typedef struct fixture_s {
    char dir[64];
    ljs_runtime_t *rt;
    ljs_script_t hog, idle;
} fixture_t;

/* One hog entity and 400 idle ones; trace/report: file names in the
 * fixture's directory, or NULL. */
static void fixture_make(fixture_t *fx, uint32_t workers, const char *trace, const char *report, int stats)
{
    char path[160];
    ljs_test_tmpdir(fx->dir, sizeof fx->dir, "observe");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.watch = 0;
    cfg.batch = 16; /* many batches: every worker gets some */
    cfg.stats = (uint32_t)stats;
    if (fixture_trace_spans)
        cfg.trace_spans = fixture_trace_spans;
    if (trace)
        snprintf(cfg.trace, sizeof cfg.trace, "%s/%s", fx->dir, trace);
    if (report)
        snprintf(cfg.report, sizeof cfg.report, "%s/%s", fx->dir, report);
    fx->rt = ljs_test_runtime(&cfg);
    snprintf(path, sizeof path, "%s/hog.lua", fx->dir);
    ljs_test_write(path, hog_src);
    assert_int_equal(ljs_script_load(fx->rt, path, &fx->hog), LJS_OK);
    snprintf(path, sizeof path, "%s/idle.lua", fx->dir);
    ljs_test_write(path, idle_src);
    assert_int_equal(ljs_script_load(fx->rt, path, &fx->idle), LJS_OK);
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(fx->rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(fx->rt, e, fx->hog), LJS_OK);
    for (int i = 0; i < 400; i++) {
        assert_int_equal(ljs_entity_create(fx->rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(fx->rt, e, fx->idle), LJS_OK);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void assert_json(const char *text, const char *what)
{
    size_t where = 0;
    if (!json_valid(text, &where))
        fail_msg("%s is not valid JSON at byte %zu: ...%.40s", what, where, text + where);
}

static void test_observe_script_allocation_is_attributed(void **state)
{
    (void)state;
    fixture_t fx;
    fixture_make(&fx, 2, NULL, NULL, 1);
    ljs_script_stats_t idle0, hog, idle;
    assert_int_equal(ljs_script_stats(fx.rt, fx.idle, &idle0), LJS_OK);
    for (int f = 0; f < 10; f++)
        assert_int_equal(ljs_frame(fx.rt, 1.0 / 60), LJS_OK);
    assert_int_equal(ljs_script_stats(fx.rt, fx.hog, &hog), LJS_OK);
    assert_int_equal(ljs_script_stats(fx.rt, fx.idle, &idle), LJS_OK);
    const uint64_t mib10 = 10u << 20;
    if (hog.alloc_bytes < mib10 - mib10 / 20 || hog.alloc_bytes > mib10 + mib10 / 5)
        fail_msg("the hog allocated ~10 MiB but was charged %llu bytes", (unsigned long long)hog.alloc_bytes);
    /* The idle script's 4,000 updates allocate next to nothing (first calls
     * may grow a stack or the reused self): its load is most of its charge. */
    if (idle.alloc_bytes - idle0.alloc_bytes > 1024 || idle.alloc_bytes > (256u << 10))
        fail_msg("the idle script was charged %llu bytes (%llu at load)",
                 (unsigned long long)idle.alloc_bytes, (unsigned long long)idle0.alloc_bytes);
    assert_int_equal(idle.calls, 400 * 10);
    assert_true(hog.time_ms > 0.0 && idle.time_ms > 0.0);
    ljs_memory_report_t m;
    assert_int_equal(ljs_memory_report(fx.rt, &m), LJS_OK);
    assert_int_equal(m.nstates, 2);
    assert_int_equal(m.nscripts, 2);
    assert_true(m.lua_peak_bytes >= m.lua_bytes);
    /* The hog's garbage shows in its state's peak (idle GC steps may have
     * freed some before the frame's end, where the all-states peak is taken). */
    assert_true(m.states[0].peak_bytes >= 10u << 20 || m.states[1].peak_bytes >= 10u << 20);
    assert_true(m.rss_bytes > 0 && m.rss_peak_bytes >= m.rss_bytes);
    int found = 0;
    for (uint32_t i = 0; i < m.nscripts; i++)
        if (!strcmp(m.scripts[i].name, "hog")) {
            found = 1;
            assert_int_equal(m.scripts[i].alloc_bytes, hog.alloc_bytes);
        }
    assert_true(found);
    ljs_runtime_destroy(fx.rt);
    ljs_test_rmtree(fx.dir);
}

static void test_observe_stats_per_frame_and_cumulative(void **state)
{
    (void)state;
    fixture_t fx;
    fixture_make(&fx, 2, NULL, NULL, 1);
    double sum = 0.0;
    for (int f = 0; f < 20; f++) {
        ljs_stats_t st;
        assert_int_equal(ljs_frame(fx.rt, 1.0 / 60), LJS_OK);
        assert_int_equal(ljs_stats_get(fx.rt, &st), LJS_OK);
        sum += st.last_frame_ms;
        assert_true(st.last_frame_ms >= st.last_update_ms + st.last_event_ms + st.last_commit_ms - 1e-6);
        assert_true(st.last_end_ms >= st.last_gc_ms);
    }
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(fx.rt, &st), LJS_OK);
    assert_true(st.total_frame_ms > 0.0 && st.total_frame_ms - sum < 1e-6 && sum - st.total_frame_ms < 1e-6);
    assert_true(st.max_frame_ms >= st.last_frame_ms);
    assert_true(st.total_update_ms > 0.0 && st.total_update_ms <= st.total_frame_ms);
    assert_true(st.jobs > 0);
    uint64_t jobs = 0;
    for (uint32_t w = 0; w < 2; w++) {
        ljs_worker_stats_t ws;
        assert_int_equal(ljs_worker_stats(fx.rt, w, &ws), LJS_OK);
        assert_true(ws.jobs > 0 && ws.busy_ms > 0.0);
        jobs += ws.jobs;
    }
    assert_true(jobs == st.jobs);
    ljs_worker_stats_t ws;
    assert_int_equal(ljs_worker_stats(fx.rt, 2, &ws), LJS_EINVAL);
    ljs_runtime_destroy(fx.rt);
    ljs_test_rmtree(fx.dir);
}

static void test_observe_stats_off_keeps_counters(void **state)
{
    (void)state;
    fixture_t fx;
    fixture_make(&fx, 2, NULL, NULL, 0);
    for (int f = 0; f < 5; f++)
        assert_int_equal(ljs_frame(fx.rt, 1.0 / 60), LJS_OK);
    ljs_script_stats_t idle;
    assert_int_equal(ljs_script_stats(fx.rt, fx.idle, &idle), LJS_OK);
    assert_int_equal(idle.calls, 400 * 5);
    assert_true(idle.time_ms == 0.0); /* LJS_STATS=0: no clock reads per batch */
    ljs_script_stats_t hog;
    assert_int_equal(ljs_script_stats(fx.rt, fx.hog, &hog), LJS_OK);
    assert_true(hog.alloc_bytes > 10u << 19); /* attribution costs no clock: still on */
    ljs_runtime_destroy(fx.rt);
    ljs_test_rmtree(fx.dir);
}

static void test_observe_report_json_has_every_section(void **state)
{
    (void)state;
    fixture_t fx;
    fixture_make(&fx, 2, NULL, "exit.json", 1);
    for (int f = 0; f < 5; f++)
        assert_int_equal(ljs_frame(fx.rt, 1.0 / 60), LJS_OK);
    char path[160];
    snprintf(path, sizeof path, "%s/now.json", fx.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(ljs_report_json(fx.rt, f), LJS_OK);
    fclose(f);
    char *text = slurp(path);
    assert_json(text, "ljs_report_json output");
    static const char *const sections[] = {
        "\"ljs\":",   "\"config\":",  "\"stats\":", "\"workers\":",     "\"memory\":",  "\"scripts\":",
        "\"cache\":", "\"queries\":", "\"gc\":",    "\"alloc_bytes\":", "\"busy_ms\":", "\"hog\""};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if (strstr(text, sections[i]) == NULL)
            fail_msg("report has no %s", sections[i]);
#define LJS__HAS_VAR(type, field, env, def, lo, hi, help) assert_non_null(strstr(text, "\"" env "\":"));
    LJS_CONFIG_MAP(LJS__HAS_VAR)
#undef LJS__HAS_VAR
    assert_non_null(strstr(text, "\"LJS_WORKERS\":{\"value\":2,\"source\":\"host\"}"));
    /* Every field of every stats struct, from the X-macro lists the structs
     * are generated from. */
#define LJS__HAS_FIELD(type, name)              \
    if (strstr(text, "\"" #name "\":") == NULL) \
        fail_msg("report has no field %s", #name);
    LJS_STATS_FIELDS(LJS__HAS_FIELD)
    LJS_GC_STATS_FIELDS(LJS__HAS_FIELD)
    LJS_WORKER_STATS_FIELDS(LJS__HAS_FIELD)
    LJS_STATE_MEMORY_FIELDS(LJS__HAS_FIELD)
    LJS_SCRIPT_STATS_FIELDS(LJS__HAS_FIELD)
    LJS_CACHE_STATS_FIELDS(LJS__HAS_FIELD)
    LJS_QUERY_STATS_FIELDS(LJS__HAS_FIELD)
#undef LJS__HAS_FIELD
    free(text);
    assert_int_equal(ljs_report_json(fx.rt, NULL), LJS_EINVAL);
    /* LJS_REPORT: written by ljs_runtime_destroy. */
    ljs_runtime_destroy(fx.rt);
    snprintf(path, sizeof path, "%s/exit.json", fx.dir);
    text = slurp(path);
    assert_json(text, "the LJS_REPORT file");
    assert_non_null(strstr(text, "\"frames\":5"));
    free(text);
    ljs_test_rmtree(fx.dir);
}

/* Every worker's track must hold spans: each runs GC work every frame and,
 * with batches of 16 over 400 entities, most run batches too. */
static void test_observe_trace_is_valid_with_every_worker(void **state)
{
    (void)state;
    for (uint32_t workers = 1; workers <= 4; workers *= 2) {
        fixture_t fx;
        fixture_make(&fx, workers, "trace.json", NULL, 1);
        for (int f = 0; f < 10; f++)
            assert_int_equal(ljs_frame(fx.rt, 1.0 / 60), LJS_OK);
        assert_int_equal(ljs_trace_flush(fx.rt), LJS_OK);
        char path[160];
        snprintf(path, sizeof path, "%s/trace.json", fx.dir);
        char *text = slurp(path);
        assert_json(text, "the trace");
        assert_non_null(strstr(text, "\"traceEvents\":["));
        assert_non_null(strstr(text, "\"name\":\"frame\""));
        /* Every frame span names its frame: 1 to 10, each once. */
        for (int f = 1; f <= 10; f++) {
            char arg[48];
            snprintf(arg, sizeof arg, "\"args\":{\"frame\":%d}", f);
            const char *at = strstr(text, arg);
            if (at == NULL || strstr(at + 1, arg) != NULL)
                fail_msg("%u workers: frame %d is not on exactly one frame span", workers, f);
        }
        assert_non_null(strstr(text, "\"name\":\"idle update\",\"cat\":\"batch\""));
        for (uint32_t w = 0; w < workers; w++) {
            char tid[64];
            snprintf(tid, sizeof tid, "\"ph\":\"X\",\"pid\":%d,\"tid\":%u,", (int)getpid(), w);
            if (strstr(text, tid) == NULL)
                fail_msg("%u workers: no span from worker %u", workers, w);
        }
        free(text);
        ljs_runtime_destroy(fx.rt); /* writes it again, at exit */
        text = slurp(path);
        assert_json(text, "the trace at exit");
        free(text);
        ljs_test_rmtree(fx.dir);
    }
}

/* A ring of 64 spans per worker: old spans are overwritten, the file stays
 * small and valid, and the loss is reported in it. */
static void test_observe_trace_memory_is_bounded(void **state)
{
    (void)state;
    fixture_t fx;
    fixture_trace_spans = 64;
    fixture_make(&fx, 2, "small.json", NULL, 1);
    fixture_trace_spans = 0;
    for (int f = 0; f < 50; f++)
        assert_int_equal(ljs_frame(fx.rt, 1.0 / 60), LJS_OK);
    assert_int_equal(ljs_trace_flush(fx.rt), LJS_OK);
    char path[160];
    snprintf(path, sizeof path, "%s/small.json", fx.dir);
    char *text = slurp(path);
    assert_json(text, "the bounded trace");
    size_t spans = 0;
    for (const char *p = text; (p = strstr(p, "\"ph\":\"X\"")) != NULL; p++)
        spans++;
    assert_true(spans > 0 && spans <= 2 * 64);
    assert_null(strstr(text, "\"spans_lost\":0}"));
    free(text);
    ljs_runtime_destroy(fx.rt);
    ljs_test_rmtree(fx.dir);
}

static void test_observe_trace_flush_needs_tracing(void **state)
{
    (void)state;
    fixture_t fx;
    fixture_make(&fx, 1, NULL, NULL, 1);
    assert_int_equal(ljs_trace_flush(fx.rt), LJS_EINVAL);
    assert_non_null(strstr(ljs_last_error(), "LJS_TRACE"));
    ljs_runtime_destroy(fx.rt);
    ljs_test_rmtree(fx.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observe_script_allocation_is_attributed),
        cmocka_unit_test(test_observe_stats_per_frame_and_cumulative),
        cmocka_unit_test(test_observe_stats_off_keeps_counters),
        cmocka_unit_test(test_observe_report_json_has_every_section),
        cmocka_unit_test(test_observe_trace_is_valid_with_every_worker),
        cmocka_unit_test(test_observe_trace_memory_is_bounded),
        cmocka_unit_test(test_observe_trace_flush_needs_tracing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
