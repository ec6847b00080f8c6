/* test_watchdog.c - the watchdog at the default LJS_SCRIPT_TIMEOUT_MS and
 * other settings, with 4 CPU-burning threads per core beside the tests, so
 * neither a quiet nor a loaded machine can make them pass or fail.
 *
 * Nothing asserts on wall time: the limit is CPU time, checked with the
 * thread's CPU clock (1 worker: the runaway runs on this thread). A hang is
 * caught by the test's CTest TIMEOUT; CTest runs this test alone. */
#include "tests/support.h"

#include <ljs.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int usleep(unsigned usec); /* POSIX.1-2001, hidden by _POSIX_C_SOURCE=200809L */
#include "tests/runaway_fixture.h"

/* ---- CPU contention: 4 busy threads per core -------------------------------- */

#define MAX_SPINNERS 64
static atomic_int spinners_stop;
static pthread_t spinners[MAX_SPINNERS];
static int nspinners;

static void *spinner(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&spinners_stop, memory_order_relaxed))
        ;
    return NULL;
}

static void load_start(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    nspinners = (int)(cpus < 1 ? 4 : cpus * 4 > MAX_SPINNERS ? MAX_SPINNERS : cpus * 4);
    atomic_store(&spinners_stop, 0);
    for (int i = 0; i < nspinners; i++)
        assert_int_equal(pthread_create(&spinners[i], NULL, spinner, NULL), 0);
}

static void load_stop(void)
{
    atomic_store(&spinners_stop, 1);
    for (int i = 0; i < nspinners; i++)
        pthread_join(spinners[i], NULL);
    nspinners = 0;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
/* ---- the watchdog under load, at every setting ----------------------------------- */

/* The default limit (1000 ms), 1 worker, the machine oversubscribed 4x: the
 * frame returns, and the call was stopped after using between 1x and 2x
 * the limit of CPU time. The old watchdog parked after a second without a
 * new frame, before the preempted call had used its second: it hung. */
static void test_watchdog_default_limit_stops_a_loop_under_cpu_load(void **state)
{
    (void)state;
    fixture_t *fx = make_with(1, 0, UINT32_MAX);
    assert_int_equal(ljs_runtime_config(fx->rt)->script_timeout_ms, 1000);
    ljs_script_t s = runaway_script(fx, "spin", "while true do " SPIN " end");
    ljs_entity_t e = spawn_with(fx, s);
    assert_int_equal(ljs_field_set_integer(fx->rt, e, "mode", 1), LJS_OK);
    load_start();
    double c0 = thread_cpu_s(), w0 = wall_s();
    assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    double cpu = thread_cpu_s() - c0, wall = wall_s() - w0;
    print_message("stopped after %.3f s of CPU, %.3f s of wall time (%d busy threads)\n", cpu, wall,
                  nspinners);
    load_stop();
    assert_true(cpu >= 1.0);
    assert_true(cpu <= 2.0);
    drain(fx);
    expect_console(fx, "spin.lua:4: call ran longer than LJS_SCRIPT_TIMEOUT_MS=1000 ms of CPU time");
    expect_console(fx, "entity");
    expect_console(fx, "of script 'spin'");
    destroy(fx);
}

/* Small and odd limits, with 2 workers under load (the default is the test
 * above; the old watchdog hung with any limit over about a second even on a
 * quiet machine, and with the default under load). */
static void test_watchdog_every_timeout_setting_fires_under_cpu_load(void **state)
{
    (void)state;
    static const uint32_t limits[] = {1, 7, 250};
    load_start();
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        fixture_t *fx = make_with(2, 0, limits[i]);
        ljs_script_t s = runaway_script(fx, "spin", "while true do " SPIN " end");
        char expect[128];
        snprintf(expect, sizeof expect, "spin.lua:4: call ran longer than LJS_SCRIPT_TIMEOUT_MS=%u ms",
                 limits[i]);
        check_stopped(fx, s, expect);
        destroy(fx);
    }
    load_stop();
}

/* Calls of ~15 ms of CPU each take far longer than the 50 ms limit in wall
 * time with the cores oversubscribed 4x; none may be stopped. */
static void test_watchdog_preempted_calls_are_not_runaways(void **state)
{
    (void)state;
    fixture_t *fx = make_with(2, 0, 50);
    ljs_script_t s = load(fx, "slowish",
                          "return { fields = { n = 0 }, update = function(self)\n"
                          "  local x = 0\n"
                          "  for i = 1, 6000000 do x = x + i end\n"
                          "  self.n = self.n + 1\n"
                          "end }\n");
    for (int i = 0; i < 4; i++)
        spawn_with(fx, s);
    load_start();
    for (int f = 0; f < 5; f++)
        assert_int_equal(ljs_frame(fx->rt, 1.0 / 60), LJS_OK);
    load_stop();
    drain(fx);
    if (fx->console_errors != 0)
        fail_msg("a preempted call was stopped as a runaway:\n%s", fx->console);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(fx->rt, &st), LJS_OK);
    assert_int_equal(st.script_errors, 0);
    assert_int_equal(st.updates, 20);
    destroy(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watchdog_default_limit_stops_a_loop_under_cpu_load),
        cmocka_unit_test(test_watchdog_every_timeout_setting_fires_under_cpu_load),
        cmocka_unit_test(test_watchdog_preempted_calls_are_not_runaways),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
