/* test_host.c - engine bindings (issue 15): host functions in the three
 * safety classes, events to the host, the log callback and profiler hooks. */
#include "tests/support.h"

#include <ljs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NENT 40
#define FRAMES 5

/* ---- a small world ------------------------------------------------------------- */

typedef struct world_s {
    char dir[64];
    ljs_runtime_t *rt;
    ljs_script_t s;
    ljs_entity_t e[NENT];
    char console[262144];
} world_t;

static void on_line(void *ud, const ljs_log_line_t *line)
{
    world_t *w = ud;
    size_t n = strlen(w->console);
    snprintf(w->console + n, sizeof w->console - n, "[%s] %s\n", line->script, line->text);
}

static void put(const world_t *w, const char *name, const char *src)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", w->dir, name);
    ljs_test_write(path, src);
}

static void start(world_t *w, unsigned workers, uint32_t call_queue_kb)
{
    memset(w, 0, sizeof *w);
    ljs_test_tmpdir(w->dir, sizeof w->dir, "host");
    ljs_test_clear_env();
    ljs_config_t cfg;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = workers;
    cfg.batch = 4;
    cfg.watch = 0;
    cfg.script_timeout_ms = 200;
    ljs_test_no_gc_warning(&cfg); /* several tests want an empty console */
    if (call_queue_kb != 0)
        cfg.call_queue_kb = call_queue_kb;
    assert_int_equal(ljs_runtime_create(&cfg, &w->rt), LJS_OK);
}

/* Load `src` as main.lua and attach it to NENT entities. */
static int load_main(world_t *w, const char *src)
{
    char path[256];
    put(w, "main.lua", src);
    snprintf(path, sizeof path, "%s/main.lua", w->dir);
    int rc = ljs_script_load(w->rt, path, &w->s);
    if (rc != LJS_OK)
        return rc;
    for (int i = 0; i < NENT; i++) {
        assert_int_equal(ljs_entity_create(w->rt, &w->e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(w->rt, w->e[i], w->s), LJS_OK);
    }
    return LJS_OK;
}

static void frames(world_t *w, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(ljs_frame(w->rt, 1.0 / 60), LJS_OK);
        ljs_console_drain(w->rt, on_line, w);
    }
}

static void stop(world_t *w)
{
    ljs_runtime_destroy(w->rt);
    ljs_test_rmtree(w->dir);
}

/* ---- host functions used by the tests ------------------------------------------- */

static atomic_long parallel_calls;

/* phys.add(a, b) -> a + b (parallel) */
static int h_add(ljs_call_t *c, void *ud)
{
    (void)ud;
    double a, b;
    int rc;
    if ((rc = ljs_arg_number(c, 1, &a)) != LJS_OK || (rc = ljs_arg_number(c, 2, &b)) != LJS_OK)
        return rc;
    atomic_fetch_add(&parallel_calls, 1);
    return ljs_ret_number(c, a + b);
}

/* grid.at(i) -> grid[i] (read-only: the grid never changes during a frame) */
static const double grid[8] = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5};
static int h_at(ljs_call_t *c, void *ud)
{
    (void)ud;
    int64_t i;
    if (ljs_arg_integer(c, 1, &i) != LJS_OK)
        return LJS_ETYPE;
    if (i < 0 || i >= 8)
        return ljs_call_error(c, "cell %lld is off the grid", (long long)i);
    return ljs_ret_number(c, grid[i]);
}

/* A deliberately unsynchronised log: a deferred function needs no lock. */
typedef struct dlog_s {
    long calls;
    int inside;
    int overlapped;
    uint64_t digest;
    uint64_t last_entity;
    int64_t last_arg;
    int out_of_order;
    char names[64][32];
} dlog_t;
static dlog_t dlog;

static void mix(uint64_t *h, uint64_t v)
{
    *h = (*h ^ v) * 0x100000001b3ull;
}

/* audio.play(name, volume) (deferred) */
static int h_play(ljs_call_t *c, void *ud)
{
    (void)ud;
    const char *s;
    size_t len;
    double vol;
    int rc;
    if ((rc = ljs_arg_string(c, 1, &s, &len)) != LJS_OK || (rc = ljs_arg_number(c, 2, &vol)) != LJS_OK)
        return rc;
    if (dlog.inside) /* not atomic on purpose: TSan sees any overlap */
        dlog.overlapped = 1;
    dlog.inside = 1;
    uint64_t e = ljs_call_entity(c).id;
    int64_t seq = (int64_t)vol;
    /* (entity, sequence) order: entities ascending by slot, each one's
     * calls in the order it made them (volume counts up per entity). */
    if (e == dlog.last_entity && seq <= dlog.last_arg)
        dlog.out_of_order = 1;
    dlog.last_entity = e;
    dlog.last_arg = seq;
    if (dlog.calls < 64)
        snprintf(dlog.names[dlog.calls], sizeof dlog.names[0], "%.*s", (int)len, s);
    mix(&dlog.digest, e);
    mix(&dlog.digest, (uint64_t)seq);
    for (size_t i = 0; i < len; i++)
        mix(&dlog.digest, (unsigned char)s[i]);
    dlog.calls++;
    dlog.inside = 0;
    return LJS_OK;
}

static void reg(ljs_runtime_t *rt, const char *name, ljs_safety_t safety, ljs_host_fn fn, const char *args)
{
    ljs_host_def_t d = {name, safety, fn, NULL, args};
    assert_int_equal(ljs_host_register(rt, &d), LJS_OK);
}

static const char *classes_src = "return {\n"
                                 "  fields = { sum = 0.0, cell = 0.0, n = 0 },\n"
                                 "  update = function(self, dt)\n"
                                 "    self.n = self.n + 1\n"
                                 "    self.sum = phys.add(self.sum, 1)\n"
                                 "    self.cell = grid.at(self.id % 8)\n"
                                 "    audio.play('step', self.n * 2)\n"
                                 "    audio.play('tick', self.n * 2 + 1)\n"
                                 "  end,\n"
                                 "}\n";

static void test_host_every_class_is_called_from_1_2_4_8_workers(void **state)
{
    (void)state;
    uint64_t digest0 = 0;
    for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
        world_t w;
        start(&w, ljs_test_worker_counts[k], 0);
        reg(w.rt, "phys.add", LJS_PARALLEL, h_add, NULL);
        reg(w.rt, "grid.at", LJS_READONLY, h_at, "i");
        reg(w.rt, "audio.play", LJS_DEFERRED, h_play, "sn");
        atomic_store(&parallel_calls, 0);
        memset(&dlog, 0, sizeof dlog);
        assert_int_equal(load_main(&w, classes_src), LJS_OK);
        frames(&w, FRAMES);
        assert_string_equal(w.console, "");
        assert_int_equal(atomic_load(&parallel_calls), NENT * FRAMES);
        assert_int_equal(dlog.calls, 2 * NENT * FRAMES);
        assert_false(dlog.overlapped);
        assert_false(dlog.out_of_order);
        assert_string_equal(dlog.names[0], "step");
        assert_string_equal(dlog.names[1], "tick");
        for (int i = 0; i < NENT; i++) {
            double sum, cell;
            assert_int_equal(ljs_field_get_number(w.rt, w.e[i], "sum", &sum), LJS_OK);
            assert_int_equal(ljs_field_get_number(w.rt, w.e[i], "cell", &cell), LJS_OK);
            assert_true(sum == FRAMES);
            assert_true(cell == grid[w.e[i].id % 8]);
        }
        ljs_host_stats_t st;
        assert_int_equal(ljs_host_stats(w.rt, &st), LJS_OK);
        assert_int_equal(st.functions, 3);
        assert_int_equal(st.deferred_calls, 2 * NENT * FRAMES);
        assert_int_equal(st.deferred_dropped, 0);
        /* The same calls in the same order for any worker count. */
        if (k == 0)
            digest0 = dlog.digest;
        assert_true(dlog.digest == digest0);
        stop(&w);
    }
}

/* Deferred calls from update and handlers, a burning thread beside: the
 * unsynchronised log never sees overlap and its digest never changes. */
static atomic_int burn_stop;
static void *burn(void *arg)
{
    (void)arg;
    volatile uint64_t x = 0;
    while (!atomic_load(&burn_stop))
        x = x + 1;
    return NULL;
}

static const char *order_src = "return {\n"
                               "  fields = { n = 0 },\n"
                               "  update = function(self, dt)\n"
                               "    self.n = self.n + 1\n"
                               "    for i = 1, (self.id % 5) do audio.play('u' .. i, self.n * 100 + i) end\n"
                               "    send(self.id, 'poke', self.n)\n"
                               "  end,\n"
                               "  on_poke = function(self, n) audio.play('p', self.n * 100 + 50) end,\n"
                               "}\n";

static void test_host_deferred_order_is_identical_across_worker_counts_and_never_concurrent(void **state)
{
    (void)state;
    pthread_t t;
    atomic_store(&burn_stop, 0);
    assert_int_equal(pthread_create(&t, NULL, burn, NULL), 0);
    uint64_t digest0 = 0;
    long calls0 = 0;
    for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
        world_t w;
        start(&w, ljs_test_worker_counts[k], 0);
        reg(w.rt, "audio.play", LJS_DEFERRED, h_play, NULL);
        memset(&dlog, 0, sizeof dlog);
        assert_int_equal(load_main(&w, order_src), LJS_OK);
        frames(&w, FRAMES);
        assert_string_equal(w.console, "");
        assert_false(dlog.overlapped);
        assert_false(dlog.out_of_order);
        if (k == 0) {
            digest0 = dlog.digest;
            calls0 = dlog.calls;
        }
        assert_true(dlog.digest == digest0);
        assert_int_equal(dlog.calls, calls0);
        stop(&w);
    }
    assert_true(calls0 > NENT * FRAMES);
    atomic_store(&burn_stop, 1);
    pthread_join(t, NULL);
}

/* ---- errors ---------------------------------------------------------------- */

static const char *errors_src =
    "return {\n"
    "  fields = { n = 0, first = false },\n"
    "  update = function(self, dt)\n"
    "    self.n = self.n + 1\n"
    "    if not self.first then return end\n"
    "    local k = frame()\n"
    "    if k == 1 then phys.add(1, 'two') end\n"  /* line 7: accessor error */
    "    if k == 2 then grid.at('x') end\n"        /* line 8: declared check */
    "    if k == 3 then grid.at(99) end\n"         /* line 9: ljs_call_error */
    "    if k == 4 then phys.add(print, 1) end\n"  /* line 10: not a value */
    "    if k == 5 then audio.play('x') end\n"     /* line 11: deferred, checked at the call */
    "    if k == 6 then grid.at(1, 2) end\n"       /* line 12: too many */
    "    if k == 7 then phys.add({ {} }, 1) end\n" /* line 13: nested table */
    "  end,\n"
    "}\n";

static void test_host_bad_arguments_give_the_documented_errors_with_file_and_line(void **state)
{
    (void)state;
    world_t w;
    start(&w, 2, 0);
    reg(w.rt, "phys.add", LJS_PARALLEL, h_add, NULL);
    reg(w.rt, "grid.at", LJS_READONLY, h_at, "i");
    reg(w.rt, "audio.play", LJS_DEFERRED, h_play, "sn");
    memset(&dlog, 0, sizeof dlog);
    assert_int_equal(load_main(&w, errors_src), LJS_OK);
    assert_int_equal(ljs_field_set_boolean(w.rt, w.e[0], "first", 1), LJS_OK);
    frames(&w, 7);
    const char *want[] = {
        "main.lua:7: phys.add: argument 2 must be a number (got string)",
        "main.lua:8: grid.at: argument 1 must be an integer (got string)",
        "main.lua:9: grid.at: cell 99 is off the grid",
        "main.lua:10: phys.add: argument 1 is a function",
        "main.lua:11: audio.play: argument 2 must be a number (got no value)",
        "main.lua:12: grid.at: takes at most 1 argument (got 2)",
        "main.lua:13: phys.add: argument 1: table values must be",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(w.console, want[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", want[i], w.console);
    }
    assert_int_equal(dlog.calls, 0);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(w.rt, &st), LJS_OK);
    assert_int_equal(st.script_errors, 7);
    stop(&w);
}

/* ---- registration ---------------------------------------------------------- */

static int h_version(ljs_call_t *c, void *ud)
{
    return ljs_ret_integer(c, (int64_t)(intptr_t)ud);
}

static int register_rc = 1;
static int h_try_register(ljs_call_t *c, void *ud)
{
    ljs_runtime_t *rt = ud;
    ljs_host_def_t d = {"late.fn", LJS_PARALLEL, h_version, NULL, NULL};
    if (ljs_call_worker(c) == 0)
        register_rc = ljs_host_register(rt, &d);
    return LJS_OK;
}

/* Called by a module's top level in every state: worker threads and the
 * owner inside a host function are refused alike. */
static atomic_int register_accepted, register_tries;
static int h_try_register_any(ljs_call_t *c, void *ud)
{
    (void)c;
    ljs_host_def_t d = {"late.any", LJS_PARALLEL, h_version, NULL, NULL};
    atomic_fetch_add(&register_tries, 1);
    if (ljs_host_register(ud, &d) == LJS_OK) /* LJS_EBADTHREAD on workers, LJS_EBUSY on the owner */
        atomic_fetch_add(&register_accepted, 1);
    return LJS_OK;
}

static const char *reg_src = "return {\n"
                             "  fields = { v = 0, w = 0, late = 0 },\n"
                             "  update = function(self, dt)\n"
                             "    self.v = env.version()\n"
                             "    if env2 then self.w = env2.version() end\n"
                             "    if env.extra then self.late = env.extra() end\n"
                             "  end,\n"
                             "}\n";

static void test_host_registering_before_and_after_create_during_a_frame_and_after_a_reload(void **state)
{
    (void)state;
    /* Process-wide, before create. */
    ljs_host_def_t d = {"env.version", LJS_PARALLEL, h_version, (void *)(intptr_t)1, NULL};
    assert_int_equal(ljs_host_register(NULL, &d), LJS_OK);
    assert_int_equal(ljs_host_register(NULL, &d), LJS_EEXIST);
    world_t w;
    start(&w, 4, 0);
    assert_int_equal(ljs_host_unregister(NULL, "env.version"), LJS_OK); /* this runtime keeps it */
    assert_int_equal(load_main(&w, reg_src), LJS_OK);
    frames(&w, 1);
    int64_t v;
    assert_string_equal(w.console, "");
    assert_int_equal(ljs_field_get_integer(w.rt, w.e[NENT - 1], "v", &v), LJS_OK);
    assert_int_equal(v, 1);
    /* After create: a new namespace and a function in an existing one reach
     * every state and the script loaded before them. */
    ljs_host_def_t d2 = {"env2.version", LJS_PARALLEL, h_version, (void *)(intptr_t)2, NULL};
    ljs_host_def_t d3 = {"env.extra", LJS_READONLY, h_version, (void *)(intptr_t)3, NULL};
    assert_int_equal(ljs_host_register(w.rt, &d2), LJS_OK);
    assert_int_equal(ljs_host_register(w.rt, &d3), LJS_OK);
    frames(&w, 1);
    assert_string_equal(w.console, "");
    for (int i = 0; i < NENT; i++) {
        assert_int_equal(ljs_field_get_integer(w.rt, w.e[i], "w", &v), LJS_OK);
        assert_int_equal(v, 2);
        assert_int_equal(ljs_field_get_integer(w.rt, w.e[i], "late", &v), LJS_OK);
        assert_int_equal(v, 3);
    }
    /* During a frame: refused. */
    ljs_host_def_t d4 = {"try.reg", LJS_PARALLEL, h_try_register, w.rt, NULL};
    assert_int_equal(ljs_host_register(w.rt, &d4), LJS_OK);
    ljs_host_def_t d5 = {"try.any", LJS_PARALLEL, h_try_register_any, w.rt, NULL};
    assert_int_equal(ljs_host_register(w.rt, &d5), LJS_OK);
    put(&w, "other.lua", "try.any()\nreturn { fields = { o = 0 } }\n");
    char other[256];
    ljs_script_t os;
    snprintf(other, sizeof other, "%s/other.lua", w.dir);
    assert_int_equal(ljs_script_load(w.rt, other, &os), LJS_OK);
    assert_int_equal(atomic_load(&register_tries), 4);
    assert_int_equal(atomic_load(&register_accepted), 0);
    put(&w, "main.lua",
        "return { fields = { v = 0, w = 0, late = 0 }, update = function(self) try.reg(); self.v = env.version() * 10 "
        "end }\n");
    assert_int_equal(ljs_script_reload(w.rt, w.s), LJS_OK);
    ljs_console_drain(w.rt, NULL, NULL); /* "reloaded ..." */
    frames(&w, 1);
    assert_int_equal(register_rc, LJS_EBUSY);
    /* After the reload the functions are still there. */
    assert_string_equal(w.console, "");
    assert_int_equal(ljs_field_get_integer(w.rt, w.e[0], "v", &v), LJS_OK);
    assert_int_equal(v, 10);
    /* Unregistered: gone from every state, and a kept reference refuses. */
    put(&w, "main.lua",
        "local keep = env.version\n"
        "return { fields = { v = 0, w = 0, late = 0 }, update = function(self)\n"
        "  if frame() % 2 == 0 then self.v = keep() else self.w = env.version == nil and 1 or 0 end end }\n");
    assert_int_equal(ljs_script_reload(w.rt, w.s), LJS_OK);
    ljs_console_drain(w.rt, NULL, NULL); /* "reloaded ..." */
    assert_int_equal(ljs_host_unregister(w.rt, "env.version"), LJS_OK);
    assert_int_equal(ljs_host_unregister(w.rt, "env.version"), LJS_ENOENT);
    frames(&w, 2);
    assert_non_null(strstr(w.console, "main.lua:3: env.version: the host function was unregistered"));
    assert_int_equal(ljs_field_get_integer(w.rt, w.e[0], "w", &v), LJS_OK);
    assert_int_equal(v, 1);
    stop(&w);
}

static void test_host_names_are_validated_and_namespaces_are_read_only(void **state)
{
    (void)state;
    world_t w;
    start(&w, 2, 0);
    static const char *const bad[] = {"play",    "a.b.c", "1a.b",     "end.x",       "x.end", "math.foo",
                                      "send.x",  "os.x",  "string.x", "a.",          ".b",    "a b.c",
                                      "debug.x", "_G.x",  "print.x",  "coroutine.x", "get.x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ljs_host_def_t d = {bad[i], LJS_PARALLEL, h_add, NULL, NULL};
        if (ljs_host_register(w.rt, &d) != LJS_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ljs_host_register(NULL, &d), LJS_EINVAL);
    }
    ljs_host_def_t bad_class = {"a.b", (ljs_safety_t)7, h_add, NULL, NULL};
    assert_int_equal(ljs_host_register(w.rt, &bad_class), LJS_EINVAL);
    ljs_host_def_t bad_args = {"a.b", LJS_PARALLEL, h_add, NULL, "nx"};
    assert_int_equal(ljs_host_register(w.rt, &bad_args), LJS_EINVAL);
    ljs_host_def_t no_fn = {"a.b", LJS_PARALLEL, NULL, NULL, NULL};
    assert_int_equal(ljs_host_register(w.rt, &no_fn), LJS_EINVAL);
    assert_non_null(strstr(ljs_last_error(), "fn"));
    reg(w.rt, "phys.add", LJS_PARALLEL, h_add, NULL);
    ljs_host_def_t dup = {"phys.add", LJS_DEFERRED, h_play, NULL, NULL};
    assert_int_equal(ljs_host_register(w.rt, &dup), LJS_EEXIST);
    /* A script cannot replace or add a host function for others. */
    assert_int_equal(load_main(&w, "return { fields = { n = 0 }, update = function(self)\n"
                                   "  if self.id % 2 == 0 then phys.add = function() return 0 end\n"
                                   "  else rawset(phys, 'sub', print) end\n"
                                   "  self.n = phys.add(self.n, 1) end }\n"),
                     LJS_OK);
    frames(&w, 2);
    assert_non_null(strstr(w.console, "main.lua:2: cannot assign 'add' in phys"));
    assert_non_null(strstr(w.console, "main.lua:3: rawset: the table is read-only"));
    stop(&w);
}

/* ---- module top level --------------------------------------------------------- */

static void test_host_module_top_level_calls_follow_the_class_rules(void **state)
{
    (void)state;
    world_t w;
    start(&w, 4, 0);
    reg(w.rt, "phys.add", LJS_PARALLEL, h_add, NULL);
    reg(w.rt, "audio.play", LJS_DEFERRED, h_play, "sn");
    atomic_store(&parallel_calls, 0);
    memset(&dlog, 0, sizeof dlog);
    /* Parallel: runs in every state's copy of the module; deferred: once,
     * when the load succeeds. */
    assert_int_equal(load_main(&w, "local three = phys.add(1, 2)\naudio.play('loaded', 1)\n"
                                   "return { fields = { t = three } }\n"),
                     LJS_OK);
    assert_int_equal(atomic_load(&parallel_calls), 4);
    assert_int_equal(dlog.calls, 1);
    assert_string_equal(dlog.names[0], "loaded");
    assert_int_equal(ljs_call_entity(NULL).id, 0);
    /* A refused load drops its deferred calls. */
    char path[256];
    put(&w, "broken.lua", "audio.play('broken', 1)\nerror('no')\n");
    snprintf(path, sizeof path, "%s/broken.lua", w.dir);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(w.rt, path, &s), LJS_ESCRIPT);
    frames(&w, 1);
    assert_int_equal(dlog.calls, 1);
    /* A reload runs the top level again (once), and on_reload's calls run
     * at the start of the next frame, in entity order. */
    put(&w, "main.lua",
        "audio.play('loaded', 2)\n"
        "return { fields = { t = 0.0 }, on_reload = function(self) audio.play('on_reload', 1) end }\n");
    if (ljs_script_reload(w.rt, w.s) != LJS_OK)
        fail_msg("reload: %s", ljs_last_error());
    assert_int_equal(dlog.calls, 2);
    frames(&w, 1);
    assert_int_equal(dlog.calls, 2 + NENT);
    assert_string_equal(dlog.names[2], "on_reload");
    assert_false(dlog.out_of_order);
    stop(&w);
}

/* ---- bounds and runaways ------------------------------------------------------- */

static int h_nop(ljs_call_t *c, void *ud)
{
    (void)c;
    (void)ud;
    return LJS_OK;
}

static void test_host_deferred_calls_are_bounded_like_events_and_runaways_still_stop(void **state)
{
    (void)state;
    world_t w;
    start(&w, 2, 4);
    /* A short limit: main's watchdog stops polling after a second without a
     * new frame, so the runaway must use its CPU time within that second
     * even on a loaded machine (10 ms of CPU needs a 1% share). */
    ljs_runtime_destroy(w.rt);
    ljs_config_t cfg;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.batch = 4;
    cfg.watch = 0;
    cfg.call_queue_kb = 4;
    cfg.script_timeout_ms = 10;
    assert_int_equal(ljs_runtime_create(&cfg, &w.rt), LJS_OK);
    reg(w.rt, "audio.play", LJS_DEFERRED, h_nop, NULL);
    reg(w.rt, "phys.nop", LJS_PARALLEL, h_nop, NULL);
    assert_int_equal(load_main(&w, "local big = ('x'):rep(1000)\n"
                                   "return { fields = { n = 0, first = false }, update = function(self)\n"
                                   "  if not self.first then for i = 1, 100 do audio.play(big) end\n"
                                   "  elseif frame() == 2 then while true do phys.nop() end end\n"
                                   "end }\n"),
                     LJS_OK);
    assert_int_equal(ljs_field_set_boolean(w.rt, w.e[0], "first", 1), LJS_OK);
    frames(&w, 2);
    assert_non_null(
        strstr(w.console, "main.lua:3: audio.play: this call queued more than LJS_CALL_QUEUE_KB=4"));
    assert_non_null(strstr(w.console, "call ran longer than LJS_SCRIPT_TIMEOUT_MS=10"));
    ljs_host_stats_t st;
    assert_int_equal(ljs_host_stats(w.rt, &st), LJS_OK);
    assert_int_equal(st.deferred_dropped, 2 * (NENT - 1));
    stop(&w);
}

/* ---- events to the host ------------------------------------------------------- */

typedef struct evlog_s {
    long n;
    uint64_t digest;
    int bad;
} evlog_t;

static void on_event(void *ud, const ljs_host_event_t *ev)
{
    evlog_t *l = ud;
    l->n++;
    mix(&l->digest, ev->sender.id);
    mix(&l->digest, ev->frame);
    for (const char *p = ev->name; *p; p++)
        mix(&l->digest, (unsigned char)*p);
    if (ev->payload.type == LJS_TTABLE) {
        for (size_t k = 0; k < ev->payload.v.t.n; k++) {
            const ljs_pair_t *pr = &ev->payload.v.t.pairs[k];
            mix(&l->digest, (uint64_t)pr->key.type);
            if (pr->value.type == LJS_TINTEGER)
                mix(&l->digest, (uint64_t)pr->value.v.i);
            else if (pr->value.type == LJS_TSTRING)
                mix(&l->digest, pr->value.v.s.len);
        }
    } else if (ev->payload.type != LJS_TINTEGER) {
        l->bad = 1;
    }
}

static const char *events_src = "return {\n"
                                "  fields = { n = 0 },\n"
                                "  update = function(self, dt)\n"
                                "    self.n = self.n + 1\n"
                                "    send(0, 'explode', { at = self.id, n = self.n, tag = 'boom' })\n"
                                "    send(self.id, 'echo', self.n)\n"
                                "  end,\n"
                                "  on_echo = function(self, n) send(0, 'echoed', n) end,\n"
                                "}\n";

static void test_host_events_reach_the_host_in_a_deterministic_order_and_none_is_dropped(void **state)
{
    (void)state;
    uint64_t digest0 = 0;
    for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
        for (int drain = 0; drain <= 1; drain++) {
            world_t w;
            evlog_t l = {0, 0, 0};
            start(&w, ljs_test_worker_counts[k], 0);
            if (!drain)
                assert_int_equal(ljs_host_events_set(w.rt, on_event, &l), LJS_OK);
            assert_int_equal(load_main(&w, events_src), LJS_OK);
            for (int f = 0; f < FRAMES; f++) {
                assert_int_equal(ljs_frame(w.rt, 1.0 / 60), LJS_OK);
                if (drain)
                    assert_int_equal(ljs_host_events_drain(w.rt, on_event, &l), 2 * NENT);
            }
            ljs_console_drain(w.rt, on_line, &w);
            assert_string_equal(w.console, "");
            assert_int_equal(l.n, 2 * NENT * FRAMES);
            assert_false(l.bad);
            ljs_host_stats_t st;
            ljs_stats_t s;
            assert_int_equal(ljs_host_stats(w.rt, &st), LJS_OK);
            assert_int_equal(ljs_stats_get(w.rt, &s), LJS_OK);
            assert_int_equal(st.events, 2 * NENT * FRAMES);
            assert_int_equal(st.events_delivered, 2 * NENT * FRAMES);
            assert_int_equal(st.events_dropped, 0);
            assert_int_equal(s.events_dropped, 0);
            if (k == 0 && drain == 0)
                digest0 = l.digest;
            assert_true(l.digest == digest0);
            stop(&w);
        }
    }
}

/* ---- log callback and profiler -------------------------------------------------- */

typedef struct loglog_s {
    pthread_mutex_t lock;
    int lines;
    int in_frame_lines;
    int *frame_running;
} loglog_t;

static int frame_running;

static void on_log(void *ud, const ljs_log_line_t *line)
{
    loglog_t *l = ud;
    pthread_mutex_lock(&l->lock);
    if (strstr(line->text, "hello") != NULL) {
        l->lines++;
        l->in_frame_lines += *l->frame_running;
    }
    pthread_mutex_unlock(&l->lock);
}

static void test_host_log_callback_gets_console_lines_as_they_are_made(void **state)
{
    (void)state;
    world_t w;
    start(&w, 4, 0);
    loglog_t l = {PTHREAD_MUTEX_INITIALIZER, 0, 0, &frame_running};
    assert_int_equal(ljs_log_set(w.rt, on_log, &l), LJS_OK);
    assert_int_equal(
        load_main(&w, "return { fields = { n = 0 }, update = function(self) log('hello', self.id) end }\n"),
        LJS_OK);
    frame_running = 1;
    assert_int_equal(ljs_frame(w.rt, 0.0), LJS_OK);
    frame_running = 0;
    assert_int_equal(l.lines, NENT);
    assert_int_equal(l.in_frame_lines, NENT); /* delivered during the frame, not after */
    assert_int_equal(ljs_console_drain(w.rt, NULL, NULL), 0);
    assert_int_equal(ljs_log_set(w.rt, NULL, NULL), LJS_OK);
    assert_int_equal(ljs_frame(w.rt, 0.0), LJS_OK);
    assert_int_equal(l.lines, NENT);
    assert_int_equal(ljs_console_drain(w.rt, NULL, NULL), NENT);
    stop(&w);
}

static void on_exit_line(void *ud, const ljs_log_line_t *line)
{
    if (strstr(line->text, "LJS_REPORT=") != NULL && strstr(line->text, "/r.json") != NULL)
        (*(int *)ud)++;
}

/* What went to stderr at exit (an LJS_REPORT that cannot be written) goes
 * to the log callback when one is set. */
static void test_host_log_callback_gets_the_messages_that_went_to_stderr(void **state)
{
    (void)state;
    ljs_test_clear_env();
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    int got = 0;
    char dir[64];
    ljs_test_tmpdir(dir, sizeof dir, "host-report");
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.watch = 0;
    snprintf(cfg.report, sizeof cfg.report, "%s/r.json", dir);
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    assert_int_equal(ljs_log_set(rt, on_exit_line, &got), LJS_OK);
    assert_int_equal(rmdir(dir), 0); /* the report cannot be written at exit */
    ljs_runtime_destroy(rt);
    assert_int_equal(got, 1);
}

typedef struct prof_s {
    atomic_int starts, stops, batch_begin, batch_end, gc_begin, gc_end, park_begin, park_end;
    atomic_int updates;
} prof_t;

static void p_start(void *ud, uint32_t w)
{
    (void)w;
    atomic_fetch_add(&((prof_t *)ud)->starts, 1);
}
static void p_stop(void *ud, uint32_t w)
{
    (void)w;
    atomic_fetch_add(&((prof_t *)ud)->stops, 1);
}
static void p_bb(void *ud, uint32_t w, ljs_batch_kind_t kind, const char *script, uint32_t n)
{
    (void)w;
    prof_t *p = ud;
    atomic_fetch_add(&p->batch_begin, 1);
    if (kind == LJS_BATCH_UPDATE && !strcmp(script, "main"))
        atomic_fetch_add(&p->updates, (int)n);
}
static void p_be(void *ud, uint32_t w)
{
    (void)w;
    atomic_fetch_add(&((prof_t *)ud)->batch_end, 1);
}
static void p_gb(void *ud, uint32_t w)
{
    (void)w;
    atomic_fetch_add(&((prof_t *)ud)->gc_begin, 1);
}
static void p_ge(void *ud, uint32_t w)
{
    (void)w;
    atomic_fetch_add(&((prof_t *)ud)->gc_end, 1);
}
static void p_pb(void *ud, uint32_t w)
{
    (void)w;
    atomic_fetch_add(&((prof_t *)ud)->park_begin, 1);
}
static void p_pe(void *ud, uint32_t w)
{
    (void)w;
    atomic_fetch_add(&((prof_t *)ud)->park_end, 1);
}

static void test_host_profiler_hooks_see_threads_batches_gc_and_parking(void **state)
{
    (void)state;
    world_t w;
    start(&w, 4, 0);
    prof_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    ljs_profiler_t hooks = {p_start, p_stop, p_bb, p_be, p_pb, p_pe, p_gb, p_ge, p};
    assert_int_equal(ljs_profiler_set(w.rt, &hooks), LJS_OK);
    assert_int_equal(atomic_load(&p->starts), 4); /* on each worker's thread, at once */
    assert_int_equal(
        load_main(&w, "return { fields = { n = 0 }, update = function(self)\n"
                      "  local t = {} for i = 1, 50 do t[i] = { i } end self.n = self.n + #t end }\n"),
        LJS_OK);
    frames(&w, FRAMES);
    /* Idle workers park between frames: wait for one to do so. */
    for (int i = 0; i < 2000 && atomic_load(&p->park_begin) == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(atomic_load(&p->updates), NENT * FRAMES);
    assert_true(atomic_load(&p->batch_begin) >= NENT / 4 * FRAMES);
    assert_int_equal(atomic_load(&p->batch_begin), atomic_load(&p->batch_end));
    assert_true(atomic_load(&p->gc_begin) > 0);
    assert_true(atomic_load(&p->park_begin) > 0);
    /* GC steps and parking go on in the background between frames: only
     * once the hooks are unset is every begin promised its end. */
    assert_int_equal(ljs_profiler_set(w.rt, NULL), LJS_OK);
    assert_int_equal(atomic_load(&p->stops), 4);
    assert_int_equal(atomic_load(&p->gc_begin), atomic_load(&p->gc_end));
    assert_int_equal(atomic_load(&p->park_begin), atomic_load(&p->park_end));
    int before = atomic_load(&p->batch_begin), gc_before = atomic_load(&p->gc_begin),
        park_before = atomic_load(&p->park_begin);
    frames(&w, 2);
    nanosleep(&(struct timespec){0, 20000000}, NULL); /* background GC and parking go on */
    /* Unset: nothing is called, not even by work that runs between frames. */
    assert_int_equal(atomic_load(&p->batch_begin), before);
    assert_int_equal(atomic_load(&p->gc_begin), gc_before);
    assert_int_equal(atomic_load(&p->park_begin), park_before);
    stop(&w);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_every_class_is_called_from_1_2_4_8_workers),
        cmocka_unit_test(test_host_deferred_order_is_identical_across_worker_counts_and_never_concurrent),
        cmocka_unit_test(test_host_bad_arguments_give_the_documented_errors_with_file_and_line),
        cmocka_unit_test(test_host_registering_before_and_after_create_during_a_frame_and_after_a_reload),
        cmocka_unit_test(test_host_names_are_validated_and_namespaces_are_read_only),
        cmocka_unit_test(test_host_module_top_level_calls_follow_the_class_rules),
        cmocka_unit_test(test_host_deferred_calls_are_bounded_like_events_and_runaways_still_stop),
        cmocka_unit_test(test_host_events_reach_the_host_in_a_deterministic_order_and_none_is_dropped),
        cmocka_unit_test(test_host_log_callback_gets_console_lines_as_they_are_made),
        cmocka_unit_test(test_host_log_callback_gets_the_messages_that_went_to_stderr),
        cmocka_unit_test(test_host_profiler_hooks_see_threads_batches_gc_and_parking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
