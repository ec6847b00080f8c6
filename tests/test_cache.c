/* test_cache.c - the shared bytecode cache: hit/miss/invalidate rules,
 * stripping, sharing between runtimes, and RCU publication racing readers. */
#include "tests/support.h"

#include "runtime/cache/cache.h"

#include <lauxlib.h>
#include <ljs.h>
#include <lualib.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture_s {
    char dir[64];
    char path[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    strcpy(fx->dir, "/tmp/ljs-cache-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/probe.lua", fx->dir);
    ljs_test_clear_env();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ljs_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static ljs_runtime_t *runtime(unsigned workers, int cache, int strip)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = workers;
    cfg.cache = (uint32_t)cache;
    cfg.strip_bytecode = (uint32_t)strip;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    return rt;
}

/* Load the probe script, run one frame on one entity, return field v. */
static double run_probe(ljs_runtime_t *rt, const char *path)
{
    ljs_script_t s;
    ljs_entity_t e;
    double v = -1;
    if (ljs_script_load(rt, path, &s) != LJS_OK)
        fail_msg("load: %s", ljs_last_error());
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    assert_int_equal(ljs_field_get_number(rt, e, "v", &v), LJS_OK);
    assert_int_equal(ljs_entity_destroy(rt, e), LJS_OK);
    assert_int_equal(ljs_script_unload(rt, s), LJS_OK);
    return v;
}

static ljs_cache_stats_t stats(ljs_runtime_t *rt)
{
    ljs_cache_stats_t st;
    assert_int_equal(ljs_cache_stats(rt, &st), LJS_OK);
    return st;
}

static void test_cache_compiles_once_and_hits_after(void **state)
{
    fixture_t *fx = *state;
    ljs_test_write(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 1 end }\n");
    ljs_runtime_t *rt = runtime(4, 1, 0);
    ljs_cache_stats_t a = stats(rt);
    for (int i = 0; i < 5; i++)
        assert_true(run_probe(rt, fx->path) == 1.0);
    ljs_cache_stats_t b = stats(rt);
    assert_int_equal(b.compiles - a.compiles, 1);
    assert_int_equal(b.misses - a.misses, 1);
    assert_int_equal(b.hits - a.hits, 4);
    assert_int_equal(b.loads - a.loads, 5 * 4); /* every worker, every load */
    assert_true(b.bytes > 0 && b.entries >= 1);
    assert_true(b.saved_ms >= 0.0);
    ljs_runtime_destroy(rt);
}

/* Same size, same mtime, different bytes: only the hash tells them apart. */
static void test_cache_same_size_same_mtime_edit_is_recompiled(void **state)
{
    fixture_t *fx = *state;
    struct stat st;
    ljs_test_write(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 1 end }\n");
    assert_int_equal(stat(fx->path, &st), 0);
    ljs_runtime_t *rt = runtime(2, 1, 0);
    assert_true(run_probe(rt, fx->path) == 1.0);
    ljs_test_write(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 2 end }\n");
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, fx->path, times, 0), 0);
    struct stat st2;
    assert_int_equal(stat(fx->path, &st2), 0);
    assert_int_equal(st2.st_size, st.st_size);
    assert_true(st2.st_mtim.tv_sec == st.st_mtim.tv_sec && st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec);
    ljs_cache_stats_t a = stats(rt);
    assert_true(run_probe(rt, fx->path) == 2.0); /* never the stale bytecode */
    assert_int_equal(stats(rt).compiles - a.compiles, 1);
    /* A touch alone (new mtime, same bytes) is a new version too. */
    times[1].tv_sec += 10;
    assert_int_equal(utimensat(AT_FDCWD, fx->path, times, 0), 0);
    assert_true(run_probe(rt, fx->path) == 2.0);
    ljs_runtime_destroy(rt);
}

static void test_cache_syntax_error_is_not_cached_and_keeps_file_line(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s;
    ljs_test_write(fx->path, "return {\n  update = function(self)\n    x = = 1\n  end }\n");
    ljs_runtime_t *rt = runtime(2, 1, 0);
    ljs_cache_stats_t a = stats(rt);
    assert_int_equal(ljs_script_load(rt, fx->path, &s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "probe.lua:3:"));
    assert_int_equal(stats(rt).compiles, a.compiles);
    ljs_test_write(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 3 end }\n");
    assert_true(run_probe(rt, fx->path) == 3.0);
    ljs_runtime_destroy(rt);
}

/* Runtime errors keep file:line with debug info (the default); a stripped
 * chunk has none. Both forms are cached side by side. */
static void collect(void *ud, const ljs_log_line_t *l)
{
    char *buf = ud;
    strncat(buf, l->text, 4000 - strlen(buf));
}

static void test_cache_debug_info_kept_by_default_and_stripped_on_request(void **state)
{
    fixture_t *fx = *state;
    ljs_test_write(fx->path,
                   "return { fields = { v = 0.0 },\n  update = function(self)\n    error('boom')\n  end }\n");
    for (int strip = 0; strip <= 1; strip++) {
        ljs_runtime_t *rt = runtime(2, 1, strip);
        char buf[4096] = "";
        run_probe(rt, fx->path);
        ljs_console_drain(rt, collect, buf);
        if (strip)
            assert_null(strstr(buf, "probe.lua:3:"));
        else
            assert_non_null(strstr(buf, "probe.lua:3: boom"));
        ljs_runtime_destroy(rt);
    }
}

static void test_cache_is_shared_by_runtimes_and_can_be_switched_off(void **state)
{
    fixture_t *fx = *state;
    ljs_test_write(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 4 end }\n");
    ljs_runtime_t *a = runtime(2, 1, 0), *b = runtime(2, 1, 0), *off = runtime(2, 0, 0);
    ljs_cache_stats_t s0 = stats(a);
    assert_true(run_probe(a, fx->path) == 4.0);
    assert_true(run_probe(b, fx->path) == 4.0);
    ljs_cache_stats_t s1 = stats(a);
    assert_int_equal(s1.compiles - s0.compiles, 1); /* b hit a's bytecode */
    assert_int_equal(s1.hits - s0.hits, 1);
    assert_true(run_probe(off, fx->path) == 4.0);
    ljs_cache_stats_t s2 = stats(a);
    assert_int_equal(s2.compiles, s1.compiles); /* off: compiled per worker, not cached */
    assert_int_equal(s2.loads, s1.loads);
    ljs_runtime_destroy(off);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
}

/* ---- persistent cache (LJS_CACHE_DIR) ----------------------------------------- */

static ljs_runtime_t *disk_runtime(const char *dir, uint32_t max_mb)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.cache_max_mb = max_mb;
    snprintf(cfg.cache_dir, sizeof cfg.cache_dir, "%s", dir);
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    return rt;
}

/* Path of the only .ljsc file in dir. */
static void cache_file(const char *dir, char *out, size_t n)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s/*.ljsc", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, (int)n, p));
    out[strcspn(out, "\n")] = '\0';
    pclose(p);
}

static void test_cache_dir_gives_a_warm_start_in_a_new_cache(void **state)
{
    fixture_t *fx = *state;
    char dir[160];
    snprintf(dir, sizeof dir, "%s/bc", fx->dir);
    ljs_test_write(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 5 end }\n");
    ljs_runtime_t *rt = disk_runtime(dir, 64);
    assert_true(run_probe(rt, fx->path) == 5.0);
    ljs_cache_stats_t a = stats(rt);
    assert_int_equal(a.disk_writes, 1);
    ljs_runtime_destroy(rt); /* the last runtime: the in-memory cache goes */
    rt = disk_runtime(dir, 64);
    assert_true(run_probe(rt, fx->path) == 5.0);
    ljs_cache_stats_t b = stats(rt);
    assert_int_equal(b.compiles, 0);
    assert_int_equal(b.disk_hits, 1);
    ljs_runtime_destroy(rt);
}

/* Mutated cache files (bit flips, truncation, random bytes, another
 * version) are all rejected, logged, rebuilt, and never crash anything. */
static void mutate(const char *file, unsigned seed)
{
    FILE *f = fopen(file, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned kind = seed % 4;
    if (kind == 0) { /* flip a few bytes anywhere */
        for (unsigned k = 0; k < 1 + seed % 3; k++) {
            long at = (long)((seed * 2654435761u + k * 40503u) % (unsigned)size);
            fseek(f, at, SEEK_SET);
            int c = fgetc(f);
            fseek(f, at, SEEK_SET);
            fputc(c ^ (1 << (seed % 8)), f);
        }
    } else if (kind == 1) { /* truncate */
        fclose(f);
        assert_int_equal(truncate(file, (long)(seed % (unsigned)size)), 0);
        return;
    } else if (kind == 2) { /* random bytes, same size */
        fseek(f, 0, SEEK_SET);
        for (long i = 0; i < size; i++)
            fputc((int)((seed + (unsigned)i * 2246822519u) >> 13) & 0xff, f);
    } else { /* a foreign ljs version in a well-formed header */
        fseek(f, 12, SEEK_SET);
        uint32_t v = 999999;
        fwrite(&v, 4, 1, f);
    }
    fclose(f);
}

static void test_cache_dir_rejects_every_mutated_file_and_rebuilds(void **state)
{
    fixture_t *fx = *state;
    char dir[160], file[512];
    snprintf(dir, sizeof dir, "%s/bc", fx->dir);
    ljs_test_write(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 6 end }\n");
    ljs_runtime_t *rt = disk_runtime(dir, 64);
    assert_true(run_probe(rt, fx->path) == 6.0);
    ljs_runtime_destroy(rt);
    cache_file(dir, file, sizeof file);
    const unsigned rounds = 200 / LJS_TEST_SCALE;
    for (unsigned seed = 1; seed <= rounds; seed++) {
        mutate(file, seed);
        rt = disk_runtime(dir, 64);
        assert_true(run_probe(rt, fx->path) == 6.0);
        ljs_cache_stats_t st = stats(rt);
        if (st.disk_rejects != 1 || st.compiles != 1 || st.disk_writes != 1)
            fail_msg("seed %u: rejects %llu compiles %llu writes %llu", seed,
                     (unsigned long long)st.disk_rejects, (unsigned long long)st.compiles,
                     (unsigned long long)st.disk_writes);
        char log[4096] = "";
        ljs_console_drain(rt, collect, log);
        assert_non_null(strstr(log, "ignored"));
        ljs_runtime_destroy(rt);
        rt = disk_runtime(dir, 64); /* the rebuilt file is good again */
        assert_true(run_probe(rt, fx->path) == 6.0);
        assert_int_equal(stats(rt).disk_hits, 1);
        ljs_runtime_destroy(rt);
    }
}

static void test_cache_dir_stays_under_its_size_bound(void **state)
{
    fixture_t *fx = *state;
    char dir[160], path[256], cmd[256];
    snprintf(dir, sizeof dir, "%s/bc", fx->dir);
    ljs_runtime_t *rt = disk_runtime(dir, 1);
    for (int i = 0; i < 12; i++) {
        /* ~150 KB of bytecode each (a long table of strings). */
        snprintf(path, sizeof path, "%s/big%d.lua", fx->dir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "local t = {\n");
        for (int k = 0; k < 6000; k++)
            fprintf(f, "  'entry %d of script %d',\n", k, i);
        fprintf(f, "}\nreturn { fields = { v = 0.0 }, update = function(self) self.v = #t end }\n");
        fclose(f);
        assert_true(run_probe(rt, path) == 6000.0);
    }
    ljs_cache_stats_t st = stats(rt);
    assert_true(st.disk_evictions > 0);
    snprintf(cmd, sizeof cmd, "test $(cat %s/*.ljsc | wc -c) -le 1048576", dir);
    assert_int_equal(system(cmd), 0);
    ljs_runtime_destroy(rt);
}

/* ---- RCU: readers racing a writer ------------------------------------------ */

#define RACE_PATH "race.lua"

typedef struct race_s {
    atomic_int stop;
    atomic_uint_fast64_t reads;
    atomic_int bad;
    atomic_int published; /* highest version published */
} race_t;

static void *reader(void *arg)
{
    race_t *r = arg;
    struct ck_epoch_record *rec = ljs__cache_register();
    lua_State *L = luaL_newstate();
    int last = 0;
    while (!atomic_load(&r->stop)) {
        int st = ljs__cache_load(rec, L, RACE_PATH, 0, "=race", 0);
        if (st != LUA_OK || lua_pcall(L, 0, 2, 0) != LUA_OK) {
            atomic_store(&r->bad, 1);
            break;
        }
        int v = (int)lua_tointeger(L, -2), check = (int)lua_tointeger(L, -1);
        lua_settop(L, 0);
        /* A torn or freed chunk would not load, or give a broken pair; a
         * version never goes backwards for one reader. */
        if (check != v * 7 + 3 || v < last || v > atomic_load(&r->published))
            atomic_store(&r->bad, 1);
        last = v;
        /* Three spinning readers on a 2-core machine starve the writer
         * (the test once ran past its timeout under a loaded ctest). */
        if (atomic_fetch_add(&r->reads, 1) % 8 == 7)
            sched_yield();
    }
    lua_close(L);
    ljs__cache_unregister(rec);
    return NULL;
}

static void publish_version(lua_State *L, int v)
{
    char src[128], err[256], warn[256];
    snprintf(src, sizeof src, "return %d, %d -- padding %d\n", v, v * 7 + 3, v % 13);
    ljs__cache_req_t req = {
        RACE_PATH, {strlen(src), v, ljs__cache_hash(src, strlen(src))}, src, strlen(src), 0, "", 0, 0};
    assert_int_equal(ljs__cache_prepare(L, &req, err, sizeof err, warn, sizeof warn), LJS_OK);
}

static void test_cache_readers_race_thousands_of_snapshot_swaps(void **state)
{
    enum { READERS = 3 };
    const int versions = 8000 / LJS_TEST_SCALE;
    race_t r;
    pthread_t t[READERS];
    lua_State *L = luaL_newstate();
    memset(&r, 0, sizeof r);
    assert_int_equal(ljs__cache_acquire(), LJS_OK);
    ljs_cache_stats_t a;
    ljs__cache_stats_get(&a);
    publish_version(L, 1);
    atomic_store(&r.published, 1);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
    /* Make sure the readers really race the writer, even on a loaded
     * machine (CI runs tests in parallel): wait for their first reads, and
     * let them run between batches of swaps. */
    for (int spins = 0; atomic_load(&r.reads) < READERS && spins < 10000; spins++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    for (int v = 2; v <= versions; v++) {
        atomic_store(&r.published, v); /* before the swap: readers may see v */
        publish_version(L, v);
        if (v % 64 == 0) {
            ljs__cache_poll();
            sched_yield();
        }
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_true(atomic_load(&r.reads) > 0);
    ljs__cache_poll();
    ljs_cache_stats_t b;
    ljs__cache_stats_get(&b);
    /* Every replaced snapshot but a few still in their grace period has
     * been freed, and the cache holds one chunk for the path. */
    assert_true(b.snapshots_freed - a.snapshots_freed >= (uint64_t)versions - 70);
    assert_int_equal(b.compiles - a.compiles, versions);
    lua_close(L);
    ljs__cache_release(); /* frees the rest: ASan/LSan/valgrind see no leak */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_cache_compiles_once_and_hits_after),
        T(test_cache_same_size_same_mtime_edit_is_recompiled),
        T(test_cache_syntax_error_is_not_cached_and_keeps_file_line),
        T(test_cache_debug_info_kept_by_default_and_stripped_on_request),
        T(test_cache_is_shared_by_runtimes_and_can_be_switched_off),
        T(test_cache_dir_gives_a_warm_start_in_a_new_cache),
        T(test_cache_dir_rejects_every_mutated_file_and_rebuilds),
        T(test_cache_dir_stays_under_its_size_bound),
        cmocka_unit_test(test_cache_readers_race_thousands_of_snapshot_swaps),
#undef T
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
