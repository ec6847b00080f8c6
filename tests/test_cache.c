/* test_cache.c - the shared bytecode cache: hit/miss/invalidate rules,
 * stripping, sharing between runtimes, and RCU publication racing readers. */
#include "tests/support.h"

#include "runtime/cache.h"

#include <lauxlib.h>
#include <ljs.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void write_src(const char *path, const char *src)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
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
    write_src(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 1 end }\n");
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
    write_src(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 1 end }\n");
    assert_int_equal(stat(fx->path, &st), 0);
    ljs_runtime_t *rt = runtime(2, 1, 0);
    assert_true(run_probe(rt, fx->path) == 1.0);
    write_src(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 2 end }\n");
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
    write_src(fx->path, "return {\n  update = function(self)\n    x = = 1\n  end }\n");
    ljs_runtime_t *rt = runtime(2, 1, 0);
    ljs_cache_stats_t a = stats(rt);
    assert_int_equal(ljs_script_load(rt, fx->path, &s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "probe.lua:3:"));
    assert_int_equal(stats(rt).compiles, a.compiles);
    write_src(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 3 end }\n");
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
    write_src(fx->path,
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
    write_src(fx->path, "return { fields = { v = 0.0 }, update = function(self) self.v = 4 end }\n");
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
        int st = ljs__cache_load(rec, L, RACE_PATH, 0, "=race");
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
        atomic_fetch_add(&r->reads, 1);
    }
    lua_close(L);
    ljs__cache_unregister(rec);
    return NULL;
}

static void publish_version(lua_State *L, int v)
{
    char src[128], err[256];
    snprintf(src, sizeof src, "return %d, %d -- padding %d\n", v, v * 7 + 3, v % 13);
    ljs__source_id_t id = {strlen(src), v, ljs__cache_hash(src, strlen(src))};
    assert_int_equal(ljs__cache_prepare(L, RACE_PATH, &id, src, strlen(src), 0, err, sizeof err), LJS_OK);
}

static void test_cache_readers_race_thousands_of_snapshot_swaps(void **state)
{
    enum { READERS = 3 };
    const int versions = 20000 / LJS_TEST_SCALE;
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
    for (int v = 2; v <= versions; v++) {
        atomic_store(&r.published, v); /* before the swap: readers may see v */
        publish_version(L, v);
        if (v % 64 == 0)
            ljs__cache_poll();
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
        cmocka_unit_test(test_cache_readers_race_thousands_of_snapshot_swaps),
#undef T
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
