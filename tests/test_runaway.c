/* test_runaway.c - runaway scripts are always stopped: whatever a script
 * does, ljs_frame, ljs_script_load and ljs_script_reload return.
 *
 * Limits here are small (the watchdog's own tests, with the default limit and
 * CPU-burning threads beside them, are in test_watchdog.c). Nothing asserts
 * on wall time: a limit is CPU time; a hang is caught by the CTest TIMEOUT. */
#include "tests/support.h"

#include <ljs.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int usleep(unsigned usec); /* POSIX.1-2001, hidden by _POSIX_C_SOURCE=200809L */
#include "tests/runaway_fixture.h"

/* ---- the stop cannot be caught --------------------------------------------------- */

static const char *const uncatchable[] = {
    /* pcall in a loop */
    "while true do pcall(function() while true do " SPIN " end end) end",
    /* an xpcall whose message handler loops */
    "while true do xpcall(function() while true do " SPIN " end end, function(m) while true do " SPIN
    " end end) end",
    /* error() from a loop, caught and retried */
    "local n = 0 while true do n = n + 1 pcall(error, n) " SPIN " end",
    /* nested pcalls, each retrying */
    "while true do pcall(pcall, pcall, function() while true do " SPIN " end end) end",
};

static void test_runaway_pcall_and_xpcall_cannot_catch_the_watchdog(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 0, 50);
    for (size_t i = 0; i < sizeof uncatchable / sizeof uncatchable[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "catch%zu", i);
        ljs_script_t s = runaway_script(fx, name, uncatchable[i]);
        char expect[128];
        snprintf(expect, sizeof expect, "%s.lua:4: call ran longer than LJS_SCRIPT_TIMEOUT_MS=50", name);
        check_stopped(fx, s, expect);
    }
    destroy(fx);
}

static void test_runaway_pcall_and_xpcall_cannot_catch_the_budget(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 1000000, 0);
    for (size_t i = 0; i < sizeof uncatchable / sizeof uncatchable[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "budget%zu", i);
        ljs_script_t s = runaway_script(fx, name, uncatchable[i]);
        char expect[128];
        snprintf(expect, sizeof expect, "%s.lua:4: instruction budget exceeded (LJS_SCRIPT_BUDGET=1000000)",
                 name);
        check_stopped(fx, s, expect);
    }
    destroy(fx);
}

/* ---- coroutines at any depth, metamethods, finalizers ---------------------------- */

static const char *const in_coroutines[] = {
    "coroutine.wrap(function() while true do " SPIN " end end)()",
    "coroutine.resume(coroutine.create(function() while true do " SPIN " end end))",
    /* three deep */
    "coroutine.wrap(function() coroutine.wrap(function() coroutine.wrap(function() while true do " SPIN
    " end end)() end)() end)()",
    /* every new coroutine swallows the stop: resumed in a loop */
    "while true do coroutine.resume(coroutine.create(function() while true do " SPIN " end end)) end",
    /* a coroutine created (and suspended) before the call went over */
    "local co = coroutine.create(function() coroutine.yield() while true do " SPIN
    " end end) coroutine.resume(co) coroutine.resume(co)",
    /* pcall inside a coroutine inside a loop */
    "while true do coroutine.wrap(function() while true do pcall(function() while true do " SPIN
    " end end) end end)() end",
    /* a to-be-closed variable whose __close loops, closed by coroutine.close */
    "local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() "
    "while true do " SPIN " end end}) coroutine.yield() end) coroutine.resume(co) coroutine.close(co)",
    /* metamethods */
    "local t = setmetatable({}, {__index = function(t, k) while true do " SPIN " end end}) local v = t.x",
    "local a = setmetatable({}, {__lt = function() while true do " SPIN " end end}) "
    "table.sort({a, a, a})",
};

static void test_runaway_coroutines_and_metamethods_are_stopped(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 0, 50);
    for (size_t i = 0; i < sizeof in_coroutines / sizeof in_coroutines[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "co%zu", i);
        ljs_script_t s = runaway_script(fx, name, in_coroutines[i]);
        char expect[128];
        snprintf(expect, sizeof expect, "%s.lua:4: call ran longer than LJS_SCRIPT_TIMEOUT_MS=50", name);
        check_stopped(fx, s, expect);
    }
    destroy(fx);
}

/* A coroutine kept from an earlier call (so it has no hook of its own) and
 * resumed in a later one, under the budget. */
static void test_runaway_old_coroutine_is_stopped_by_the_budget(void **state)
{
    (void)state;
    fixture_t *fx = make_with(1, 1000000, 0);
    ljs_script_t s = load(fx, "keep",
                          "local co = coroutine.create(function()\n"
                          "  coroutine.yield()\n"
                          "  while true do end\n"
                          "end)\n"
                          "return { fields = { n = 0 }, update = function(self)\n"
                          "  self.n = self.n + 1\n"
                          "  coroutine.resume(co)\n"
                          "end }\n");
    spawn_with(fx, s);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK); /* first resume: yields */
    drain(fx);
    assert_int_equal(fx->console_errors, 0);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK); /* second: loops */
    drain(fx);
    assert_int_equal(fx->console_errors, 1);
    expect_console(fx, "keep.lua:3: instruction budget exceeded");
    destroy(fx);
}

static void test_runaway_gc_finalizers_are_refused(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 0, 100);
    ljs_script_t s = runaway_script(fx, "fin", "setmetatable({}, {__gc = function() while true do end end})");
    check_stopped(fx, s, "fin.lua:4: setmetatable: __gc is not allowed in scripts");
    /* A placeholder filled in later would still be a finalizer. */
    s = runaway_script(fx, "fin2", "local mt = {__gc = true} setmetatable({}, mt)");
    check_stopped(fx, s, "fin2.lua:4: setmetatable: __gc is not allowed");
    /* Metatables without __gc work as before. */
    ljs_script_t ok = load(fx, "mt",
                           "return { fields = { n = 0 }, update = function(self)\n"
                           "  local v = setmetatable({}, {__index = function() return 2 end})\n"
                           "  self.n = self.n + v.x\n"
                           "end }\n");
    ljs_entity_t e = spawn_with(fx, ok);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    assert_true(num(fx, e, "n") == 2.0);
    destroy(fx);
}

/* ---- top-level chunks: load, require, reload, on_reload ------------------------------- */

static void test_runaway_top_level_chunks_are_stopped(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 0, 100);
    ljs_script_t s;
    /* A script's own chunk. */
    ljs_test_write(script_path(fx, "top"), "local n = 0\nwhile true do n = n + 1 " SPIN " end\n");
    assert_int_equal(ljs_script_load(fx->rt, script_path(fx, "top"), &s), LJS_ESCRIPT);
    if (strstr(ljs_last_error(), "top.lua:2: call ran longer than LJS_SCRIPT_TIMEOUT_MS=100") == NULL ||
        strstr(ljs_last_error(), "loading script 'top'") == NULL)
        fail_msg("%s", ljs_last_error());
    /* A module's chunk, through require, even with a pcall around it. */
    char path[256];
    snprintf(path, sizeof path, "%s/slowmod.lua", fx->dir);
    ljs_test_write(path, "while true do " SPIN " end\nreturn {}\n");
    ljs_test_write(script_path(fx, "req"), "while not pcall(require, 'slowmod') do end\nreturn {}\n");
    assert_int_equal(ljs_script_load(fx->rt, script_path(fx, "req"), &s), LJS_ESCRIPT);
    if (strstr(ljs_last_error(), "slowmod.lua:1: call ran longer than") == NULL)
        fail_msg("%s", ljs_last_error());
    /* A reload whose new chunk loops: refused, the old version runs on. */
    s = load(fx, "live",
             "return { fields = { x = 0.0 }, update = function(self) self.x = self.x + 1 end }\n");
    ljs_entity_t e = spawn_with(fx, s);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    ljs_test_write(script_path(fx, "live"), "while true do " SPIN " end\n");
    assert_int_equal(ljs_script_reload(fx->rt, s), LJS_ESCRIPT);
    if (strstr(ljs_last_error(), "live.lua:1: call ran longer than") == NULL)
        fail_msg("%s", ljs_last_error());
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    assert_true(num(fx, e, "x") == 2.0);
    /* A reload whose on_reload loops: the call fails, the frame returns. */
    ljs_test_write(script_path(fx, "live"),
                   "return { fields = { x = 0.0 },\n"
                   "  update = function(self) self.x = self.x + 10 end,\n"
                   "  on_reload = function(self) while true do " SPIN " end end }\n");
    drain(fx);
    ljs_script_reload(fx->rt, s);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    drain(fx);
    expect_console(fx, "live.lua:3: call ran longer than LJS_SCRIPT_TIMEOUT_MS=100");
    assert_true(num(fx, e, "x") == 12.0);
    destroy(fx);
}

/* ---- long C calls ----------------------------------------------------------------------- */

/* With an instruction budget, work inside library calls counts too: each of
 * these is one Lua instruction, and the stop comes from inside the call. */
static void test_runaway_long_library_calls_count_against_the_budget(void **state)
{
    (void)state;
    static const char *const calls[] = {
        "for k = 1, 100 do local s = string.rep('x', 1 << 20) end",
        "for k = 1, 100 do local s = string.rep('x', 1 << 18, ',') end",
        "local t = {} for i = 1, 1000 do t[i] = 'ab' end for k = 1, 1000 do local s = table.concat(t) end",
        "local t = {} for i = 1, 5000 do t[i] = (i * 7919) % 5003 end "
        "for k = 1, 100 do table.sort(t) end",
        "table.move({}, 1, 1 << 40, 2)",
    };
    fixture_t *fx = make_with(1, 500000, 0);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "lib%zu", i);
        ljs_script_t s = runaway_script(fx, name, calls[i]);
        char expect[128];
        snprintf(expect, sizeof expect, "%s.lua:4: instruction budget exceeded", name);
        check_stopped(fx, s, expect);
    }
    destroy(fx);
}

/* And the watchdog stops them from inside too (table.move over 2^50 nils
 * would take days). */
static void test_runaway_long_library_calls_are_stopped_by_the_watchdog(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 0, 50);
    ljs_script_t s = runaway_script(fx, "move", "table.move({}, 1, 1 << 50, 2)");
    check_stopped(fx, s, "move.lua:4: call ran longer than LJS_SCRIPT_TIMEOUT_MS=50");
    s = runaway_script(fx, "rep", "while true do local s = string.rep('ab', 1 << 20) end");
    check_stopped(fx, s, "rep.lua:4: call ran longer than LJS_SCRIPT_TIMEOUT_MS=50");
    destroy(fx);
}

/* Pattern backtracking runs inside one C call: exponential with many
 * quantifiers, quadratic with '.-' over a few MiB. Lua's matcher ran for
 * hours; ljs's polls the limits. */
static void test_runaway_pattern_backtracking_is_stopped(void **state)
{
    (void)state;
    static const char *const calls[] = {
        "string.find(string.rep('a', 40), string.rep('a*', 40) .. 'b')",
        "string.match(string.rep('a', 40), string.rep('a*', 40) .. 'b')",
        "for m in string.gmatch(string.rep('a', 40), string.rep('a*', 40) .. 'b') do end",
        "string.gsub(string.rep('a', 40), string.rep('a*', 40) .. 'b', '')",
        "string.find(string.rep('a', 4 << 20), '.-b')",
        "string.gsub(string.rep('(', 1 << 20), '%b()', '')",
    };
    fixture_t *fx = make_with(2, 0, 50);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "pat%zu", i);
        ljs_script_t s = runaway_script(fx, name, calls[i]);
        char expect[128];
        snprintf(expect, sizeof expect, "%s.lua:4: call ran longer than LJS_SCRIPT_TIMEOUT_MS=50", name);
        check_stopped(fx, s, expect);
    }
    destroy(fx);
    /* The same under the instruction budget alone (matcher steps count). */
    fx = make_with(1, 500000, 0);
    ljs_script_t s = runaway_script(fx, "patb", calls[0]);
    check_stopped(fx, s, "patb.lua:4: instruction budget exceeded");
    destroy(fx);
}

static void test_runaway_huge_string_rep_fails_before_it_starts(void **state)
{
    (void)state;
    fixture_t *fx = make_with(1, 0, 100);
    ljs_script_t s = runaway_script(fx, "huge", "local s = string.rep('x', 1 << 40)");
    check_stopped(fx, s, "memory limit reached");
    s = runaway_script(fx, "huge2", "local s = string.rep('abc', math.maxinteger)");
    check_stopped(fx, s, "resulting string too large");
    destroy(fx);
}

/* A comparator that lies cannot make table.sort run long or read out of
 * bounds; sorting stays right for honest comparators. */
static void test_runaway_sort_with_a_bad_comparator_ends(void **state)
{
    (void)state;
    fixture_t *fx = make_with(1, 0, 1000);
    ljs_script_t s = load(fx, "sorts",
                          "return { fields = { ok = false }, update = function(self)\n"
                          "  local t = {}\n"
                          "  for i = 1, 3000 do t[i] = (i * 7919) % 3001 end\n"
                          "  table.sort(t, function(a, b) return true end)\n"
                          "  table.sort(t, function(a, b) return math.random() < 0.5 end)\n"
                          "  table.sort(t, function(a, b) return a > b end)\n"
                          "  for i = 2, #t do assert(t[i - 1] >= t[i]) end\n"
                          "  table.sort(t)\n"
                          "  for i = 2, #t do assert(t[i - 1] <= t[i]) end\n"
                          "  local w = { 'pear', 'apple', 'fig' } table.sort(w)\n"
                          "  assert(table.concat(w, ',') == 'apple,fig,pear')\n"
                          "  local m = table.move({1, 2, 3, 4, 5}, 1, 4, 2)\n"
                          "  assert(table.concat(m, ',') == '1,1,2,3,4')\n"
                          "  assert(string.rep('ab', 3, '-') == 'ab-ab-ab')\n"
                          "  self.ok = true\n"
                          "end }\n");
    ljs_entity_t e = spawn_with(fx, s);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    drain(fx);
    if (fx->console_errors != 0)
        fail_msg("%s", fx->console);
    int ok = 0;
    assert_int_equal(ljs_field_get_boolean(fx->rt, e, "ok", &ok), LJS_OK);
    assert_true(ok);
    destroy(fx);
}

/* ---- two runtimes, interrupts ---------------------------------------------------------------- */

/* Runtime B created and destroyed on A's thread must not take A's watchdog
 * with it (the old thread-local worker pointer was overwritten by B, then
 * dangled: A's runaways were never stopped). */
static void test_runaway_two_runtimes_on_one_thread_are_independent(void **state)
{
    (void)state;
    fixture_t *a = make_with(1, 0, 50);
    fixture_t *b = make_with(1, 0, 50);
    ljs_script_t sb = runaway_script(b, "spinb", "while true do " SPIN " end");
    check_stopped(b, sb, "spinb.lua:4: call ran longer than");
    ljs_script_t sa = runaway_script(a, "spina", "while true do " SPIN " end");
    check_stopped(a, sa, "spina.lua:4: call ran longer than");
    destroy(b);
    check_stopped(a, sa, "spina.lua:4: call ran longer than");
    destroy(a);
}

typedef struct interrupter_s {
    ljs_runtime_t *rt;
    atomic_int go;
} interrupter_t;

static void *interrupter(void *arg)
{
    interrupter_t *it = arg;
    while (!atomic_load(&it->go))
        usleep(1000);
    usleep(50 * 1000);
    ljs_runtime_interrupt(it->rt, 1);
    return NULL;
}

/* A host's interrupt stops a running call long before its (10 min) limit,
 * and every later call of the frame at once. */
static void test_runaway_host_interrupt_stops_the_frame(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 0, 600000);
    ljs_script_t s = runaway_script(fx, "forever", "while true do " SPIN " end");
    ljs_entity_t e[8];
    for (int i = 0; i < 8; i++) {
        e[i] = spawn_with(fx, s);
        assert_int_equal(ljs_field_set_integer(fx->rt, e[i], "mode", 1), LJS_OK);
    }
    interrupter_t it = {fx->rt, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, interrupter, &it), 0);
    atomic_store(&it.go, 1);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    pthread_join(t, NULL);
    drain(fx);
    assert_int_equal(fx->console_errors, 8);
    expect_console(fx, "interrupted by the host");
    ljs_runtime_interrupt(fx->rt, 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ljs_field_set_integer(fx->rt, e[i], "mode", 0), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    drain(fx);
    assert_int_equal(fx->console_errors, 0);
    for (int i = 0; i < 8; i++)
        assert_true(num(fx, e[i], "x") == 1.0);
    destroy(fx);
}

/* ljs-run exits cleanly on SIGINT and SIGTERM while a script runs away
 * (with a 10-minute limit, so only the interrupt can end the frame). */
static void run_ljs_run_and_signal(int sig)
{
#ifdef LJS_RUN_PATH
    char dir[64] = "/tmp/ljs-test-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/scene.txt", dir);
    ljs_test_write(path, "forever 4 fixed\n");
    snprintf(path, sizeof path, "%s/forever.lua", dir);
    ljs_test_write(path, "return { fields = { x = 0.0 }, update = function(self)\n"
                         "  while true do " SPIN " end\n"
                         "end }\n");
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        setenv("LJS_SCRIPT_TIMEOUT_MS", "600000", 1);
        setenv("LJS_WORKERS", "2", 1);
        execl(LJS_RUN_PATH, "ljs-run", dir, "--frames", "5", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    /* Wait for the frames to start ("scene ..." line), then signal. */
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(out[0], buf + n, sizeof buf - 1 - n)) > 0) {
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "scene ") != NULL)
            break;
    }
    assert_non_null(strstr(buf, "scene "));
    usleep(100 * 1000);
    assert_int_equal(kill(pid, sig), 0);
    while (read(out[0], buf, sizeof buf) > 0)
        ;
    close(out[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* A clean exit (interrupted runs have no digest: status 1), not death by
     * the signal. */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    ljs_test_rmtree(dir);
#else
    (void)sig;
    skip();
#endif
}

static void test_runaway_ljs_run_stops_cleanly_on_sigint_and_sigterm(void **state)
{
    (void)state;
    run_ljs_run_and_signal(SIGINT);
    run_ljs_run_and_signal(SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runaway_pcall_and_xpcall_cannot_catch_the_watchdog),
        cmocka_unit_test(test_runaway_pcall_and_xpcall_cannot_catch_the_budget),
        cmocka_unit_test(test_runaway_coroutines_and_metamethods_are_stopped),
        cmocka_unit_test(test_runaway_old_coroutine_is_stopped_by_the_budget),
        cmocka_unit_test(test_runaway_gc_finalizers_are_refused),
        cmocka_unit_test(test_runaway_top_level_chunks_are_stopped),
        cmocka_unit_test(test_runaway_long_library_calls_count_against_the_budget),
        cmocka_unit_test(test_runaway_long_library_calls_are_stopped_by_the_watchdog),
        cmocka_unit_test(test_runaway_pattern_backtracking_is_stopped),
        cmocka_unit_test(test_runaway_huge_string_rep_fails_before_it_starts),
        cmocka_unit_test(test_runaway_sort_with_a_bad_comparator_ends),
        cmocka_unit_test(test_runaway_two_runtimes_on_one_thread_are_independent),
        cmocka_unit_test(test_runaway_host_interrupt_stops_the_frame),
        cmocka_unit_test(test_runaway_ljs_run_stops_cleanly_on_sigint_and_sigterm),
    };
    if (getenv("LJS_TEST_FILTER") != NULL) /* run one test: LJS_TEST_FILTER=*name* */
        cmocka_set_test_filter(getenv("LJS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
