/* test_demo.c - the arena example scene, run in-process through the public
 * API: same digest for 1, 2, 4 and 8 workers (determinism), and a scene that
 * is alive (entities, events delivered, no script errors).
 *
 * The scene loader is a small copy of ljs-run's (tools/ files all go into the
 * ljs-run program): every *.lua of the directory in sorted order, then
 * scene.txt lines 'NAME COUNT [fixed]', counts scaled to a total.
 */
#include "tests/support.h"

#include <ljs.h>

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define ARENA_DIR LJS_SOURCE_DIR "/examples/arena"
/* Long enough for predators to find, bite and kill prey and for the
 * spawner to refill (it checks every 30 frames; the first kills come after
 * about 120 frames). Sanitizer builds run a smaller arena, not fewer frames. */
#if LJS_TEST_SCALE > 1
#define DEMO_ENTITIES 500
#define DEMO_FRAMES 400
#else
#define DEMO_ENTITIES 2000
#define DEMO_FRAMES 600
#endif

typedef struct demo_result_s {
    uint64_t digest;
    uint32_t live;
    ljs_stats_t stats;
    int64_t spawned; /* the spawner's counter of refilled entities */
    size_t console_errors;
} demo_result_t;

static int lua_file_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && d->d_name[0] != '.' && !strcmp(d->d_name + n - 4, ".lua");
}

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

static void set_if_held(ljs_runtime_t *rt, ljs_entity_t e, const char *name, double v)
{
    double old;
    if (ljs_field_get_number(rt, e, name, &old) == LJS_OK)
        assert_int_equal(ljs_field_set_number(rt, e, name, v), LJS_OK);
}

/* Returns the first entity of the line named `keep` (0 if none). */
static ljs_entity_t load_scene(ljs_runtime_t *rt, long total, const char *keep)
{
    ljs_entity_t kept = {0};
    struct dirent **names = NULL;
    int n = scandir(ARENA_DIR, &names, lua_file_filter, alphasort);
    assert_true(n >= 4);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        ljs_script_t s;
        snprintf(path, sizeof path, "%s/%s", ARENA_DIR, names[i]->d_name);
        int rc = ljs_script_load(rt, path, &s);
        if (rc != LJS_OK)
            fail_msg("ljs_script_load(%s): %s: %s", path, ljs_errname(rc), ljs_last_error());
        free(names[i]);
    }
    free(names);

    struct {
        char name[64];
        long count;
        int fixed;
    } lines[32];
    size_t nlines = 0;
    long fixed = 0, scaled = 0;
    FILE *f = fopen(ARENA_DIR "/scene.txt", "r");
    assert_non_null(f);
    char buf[256];
    while (fgets(buf, sizeof buf, f) != NULL) {
        char *hash = strchr(buf, '#');
        if (hash != NULL)
            *hash = '\0';
        char flag[16] = "";
        int k = sscanf(buf, "%63s %ld %15s", lines[nlines].name, &lines[nlines].count, flag);
        if (k <= 0)
            continue;
        assert_true(k >= 2 && nlines < 31);
        lines[nlines].fixed = k == 3 && !strcmp(flag, "fixed");
        if (lines[nlines].fixed)
            fixed += lines[nlines].count;
        else
            scaled += lines[nlines].count;
        nlines++;
    }
    fclose(f);
    assert_true(nlines > 0 && scaled > 0);

    double scale = (double)(total - fixed) / (double)scaled;
    uint64_t rng = 1;
    for (size_t i = 0; i < nlines; i++) {
        ljs_script_t s;
        assert_int_equal(ljs_script_find(rt, lines[i].name, &s), LJS_OK);
        long count = lines[i].fixed ? lines[i].count : lround((double)lines[i].count * scale);
        for (long k = 0; k < count; k++) {
            ljs_entity_t e;
            assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
            assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
            double x = rand_unit(&rng) * 1000.0, y = rand_unit(&rng) * 1000.0;
            double vx = (rand_unit(&rng) * 2.0 - 1.0) * 60.0, vy = (rand_unit(&rng) * 2.0 - 1.0) * 60.0;
            set_if_held(rt, e, "x", x);
            set_if_held(rt, e, "y", y);
            set_if_held(rt, e, "vx", vx);
            set_if_held(rt, e, "vy", vy);
            if (kept.id == 0 && !strcmp(lines[i].name, keep))
                kept = e;
        }
    }
    return kept;
}

static void count_errors(void *ud, const ljs_log_line_t *line)
{
    size_t *n = ud;
    if (line->severity == LJS_LOG_ERROR) {
        if (*n < 5)
            print_message("script error: frame %" PRIu64 " %s: %s\n", line->frame, line->script, line->text);
        (*n)++;
    }
}

static void run_arena(unsigned workers, demo_result_t *out)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt = NULL;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = workers;
    /* Small batches so even 2000 entities spread over 8 workers and the
     * interleaving really varies with the worker count. */
    cfg.batch = 32;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    ljs_entity_t spawner = load_scene(rt, DEMO_ENTITIES, "spawner");
    assert_true(spawner.id != 0);
    memset(out, 0, sizeof *out);
    for (int f = 0; f < DEMO_FRAMES; f++) {
        assert_int_equal(ljs_frame(rt, 1.0 / 60.0), LJS_OK);
        ljs_console_drain(rt, count_errors, &out->console_errors);
    }
    out->digest = ljs_world_digest(rt);
    out->live = ljs_entity_count(rt);
    assert_int_equal(ljs_stats_get(rt, &out->stats), LJS_OK);

    assert_int_equal(ljs_field_get_integer(rt, spawner, "spawned", &out->spawned), LJS_OK);
    ljs_script_t sp;
    assert_int_equal(ljs_script_find(rt, "spawner", &sp), LJS_OK);
    ljs_script_stats_t ss;
    assert_int_equal(ljs_script_stats(rt, sp, &ss), LJS_OK);
    assert_int_equal(ss.entities, 1);
    ljs_runtime_destroy(rt);
}

static void test_demo_arena_digest_same_for_every_worker_count(void **state)
{
    demo_result_t first;
    for (size_t i = 0; i < LJS_TEST_NWORKER_COUNTS; i++) {
        demo_result_t r;
        run_arena(ljs_test_worker_counts[i], &r);
        print_message("arena, %u workers: digest %016" PRIx64 ", %" PRIu32 " live, %" PRIu64
                      " updates, %" PRIu64 " events delivered, %" PRIu64 " dropped, %" PRIu64
                      " errors, %" PRId64 " spawned\n",
                      ljs_test_worker_counts[i], r.digest, r.live, r.stats.updates, r.stats.events_delivered,
                      r.stats.events_dropped, r.stats.script_errors, r.spawned);
        assert_int_equal(r.stats.frames, DEMO_FRAMES);
        assert_int_equal(r.stats.script_errors, 0);
        assert_int_equal(r.console_errors, 0);
        assert_true(r.live > DEMO_ENTITIES / 2);
        assert_true(r.stats.updates > (uint64_t)DEMO_ENTITIES * (DEMO_FRAMES - 1));
        assert_true(r.stats.events_delivered > 0);
        /* Predators killed prey and the spawner refilled the population. */
        assert_true(r.spawned > 0);
        if (i == 0) {
            first = r;
        } else {
            assert_int_equal(r.digest, first.digest);
            assert_int_equal(r.live, first.live);
            assert_int_equal(r.stats.updates, first.stats.updates);
            assert_int_equal(r.stats.events_delivered, first.stats.events_delivered);
            assert_int_equal(r.spawned, first.spawned);
        }
    }
}

/* Same worker count twice: the digest depends on nothing but the inputs
 * (no time, addresses or hash-seed order leak into the world). */
static void test_demo_arena_digest_same_across_runs(void **state)
{
    demo_result_t a, b;
    run_arena(2, &a);
    run_arena(2, &b);
    assert_int_equal(a.digest, b.digest);
}

int main(void)
{
    ljs_test_clear_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_arena_digest_same_for_every_worker_count),
        cmocka_unit_test(test_demo_arena_digest_same_across_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
