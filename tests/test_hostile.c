/* test_hostile.c - the hostile-script corpus: one case per attack class a
 * modder could try on the host (issue 13). Every case runs with 1, 2 and 4
 * workers and asserts the same things:
 * - the process lives and every ljs_frame returns LJS_OK;
 * - the error is clear and names the attacking file (with :line where
 *   there is one);
 * - bystander entities (another script, loaded after the attacker) keep
 *   every field intact and see pristine libraries and their own globals;
 * - the world digest does not depend on the worker count. */
#include "tests/support.h"

#include <ljs.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The corpus tables leave trailing fields (module, no_file) at zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Fewer frames and entities under sanitizers (5-20x slower): every case
 * still runs with 1, 2 and 4 workers. */
#define FRAMES (LJS_TEST_SCALE > 1 ? 4 : 6)
#define NENT (LJS_TEST_SCALE > 1 ? 4 : 8)

typedef struct attack_s {
    const char *name;   /* test label */
    const char *src;    /* the attacking script, loaded first as attacker.lua */
    const char *expect; /* text the console (or the load error) must hold */
    int load_fails;     /* the attacker itself must be refused at load */
    const char *module; /* optional lib.lua next to it */
    int no_file;        /* the error is the runtime's own (names no file) */
    unsigned mem_mb;    /* LJS_STATE_MEM_MB for the run (0: 64) */
} attack_t;

/* The bystander checks, every frame, that the libraries and its globals
 * are what Lua gives: one wrong answer and `ok` turns false for good. */
static const char *bystander_src =
    "local mine = 42\n"
    "helper_global = 7\n"
    "return {\n"
    "  fields = { n = 0, ok = true, acc = 0.0 },\n"
    "  update = function(self, dt)\n"
    "    local good = string.upper('a') == 'A' and math.floor(1.5) == 1 and ('x'):rep(3) == 'xxx'\n"
    "      and type(print) == 'function' and type(pairs) == 'function' and table.concat({1, 2}, ',') == '1,2'\n"
    "      and helper_global == 7 and rawget(_ENV, 'x') == nil and x == nil and pwned == nil\n"
    "      and getmetatable('') == false and utf8.char(65) == 'A' and mine == 42\n"
    "      and select('#', string.find('abc', 'b')) == 2 and coroutine.wrap(function() return 1 end)() == 1\n"
    "    self.ok = self.ok and good\n"
    "    self.n = self.n + 1\n"
    "    self.acc = self.acc + self.n * 0.5\n"
    "  end,\n"
    "}\n";

typedef struct run_s {
    char console[32768];
    uint64_t digest;
} run_t;

static void on_line(void *ud, const ljs_log_line_t *line)
{
    run_t *r = ud;
    size_t n = strlen(r->console);
    snprintf(r->console + n, sizeof r->console - n, "[%s] %s\n", line->script, line->text);
}

static void put(const char *dir, const char *name, const char *src)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ljs_test_write(path, src);
}

static void run_attack(const attack_t *a, unsigned workers, run_t *r)
{
    char dir[64], path[256];
    ljs_test_tmpdir(dir, sizeof dir, "hostile");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.batch = 2;
    cfg.state_mem_mb = a->mem_mb ? a->mem_mb : 64;
    cfg.event_mem_mb = 8; /* the fork bomb stops early (fast under sanitizers) */
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    memset(r, 0, sizeof *r);
    put(dir, "attacker.lua", a->src);
    if (a->module != NULL)
        put(dir, "lib.lua", a->module);
    put(dir, "bystander.lua", bystander_src);
    ljs_script_t sa = {0}, sb;
    snprintf(path, sizeof path, "%s/attacker.lua", dir);
    int rc = ljs_script_load(rt, path, &sa);
    if (a->load_fails) {
        assert_int_not_equal(rc, LJS_OK);
        snprintf(r->console, sizeof r->console, "%s\n", ljs_last_error());
    } else if (rc != LJS_OK) {
        fail_msg("%s: attacker refused: %s", a->name, ljs_last_error());
    }
    snprintf(path, sizeof path, "%s/bystander.lua", dir);
    if (ljs_script_load(rt, path, &sb) != LJS_OK)
        fail_msg("%s: bystander refused: %s", a->name, ljs_last_error());
    ljs_entity_t by[NENT];
    for (int i = 0; i < NENT; i++) {
        ljs_entity_t e;
        if (rc == LJS_OK) {
            assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
            assert_int_equal(ljs_script_attach(rt, e, sa), LJS_OK);
        }
        assert_int_equal(ljs_entity_create(rt, &by[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, by[i], sb), LJS_OK);
    }
    for (int f = 0; f < FRAMES; f++)
        assert_int_equal(ljs_frame(rt, 1.0 / 60), LJS_OK);
    ljs_console_drain(rt, on_line, r);
    for (int i = 0; i < NENT; i++) {
        int64_t n = -1;
        int ok = 0;
        assert_int_equal(ljs_field_get_integer(rt, by[i], "n", &n), LJS_OK);
        assert_int_equal(ljs_field_get_boolean(rt, by[i], "ok", &ok), LJS_OK);
        if (n != FRAMES || !ok)
            fail_msg("%s (%u workers): bystander %d has n=%lld ok=%d\n%s", a->name, workers, i, (long long)n,
                     ok, r->console);
    }
    if (strstr(r->console, a->expect) == NULL)
        fail_msg("%s (%u workers): '%s' not in:\n%s", a->name, workers, a->expect, r->console);
    if (a->expect[0] != '[' && !a->no_file && strstr(r->console, "attacker.lua") == NULL)
        fail_msg("%s (%u workers): the error does not name the file:\n%s", a->name, workers, r->console);
    r->digest = ljs_world_digest(rt);
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

static void run_corpus(const attack_t *cases, size_t n)
{
    static const unsigned counts[] = {1, 2, 4};
    static run_t r;
    for (size_t i = 0; i < n; i++) {
        uint64_t d1 = 0;
        for (size_t k = 0; k < 3; k++) {
            run_attack(&cases[i], counts[k], &r);
            if (k == 0)
                d1 = r.digest;
            else if (r.digest != d1)
                fail_msg("%s: digest with %u workers differs from 1 worker", cases[i].name, counts[k]);
        }
    }
}

/* Runs every frame in update: the attacker also counts, so a call that
 * raised must have changed nothing. */
#define UPDATE(body) \
    "return { fields = { m = 0 }, update = function(self)\n" body "\n self.m = self.m + 1 end }\n"

/* ---- library and global poisoning ---------------------------------------------- */

static void test_hostile_library_and_global_poisoning_is_refused(void **state)
{
    (void)state;
    static const attack_t cases[] = {
        {"assign string.upper", UPDATE("string.upper = function() return 'pwned' end"),
         "cannot assign 'upper'", 0, NULL},
        {"assign math.floor", UPDATE("math.floor = nil"), "cannot assign 'floor' in math", 0, NULL},
        {"string metatable", UPDATE("getmetatable('').__index.rep = nil"), "attacker.lua:2", 0, NULL},
        {"env metatable", UPDATE("getmetatable(_ENV).__index = {}"), "attacker.lua:2", 0, NULL},
        {"setmetatable env", UPDATE("setmetatable(_ENV, nil)"), "protected metatable", 0, NULL},
        {"rawset env", UPDATE("rawset(_ENV, 'x', 1)"), "rawset: the table is read-only", 0, NULL},
        {"rawset library", UPDATE("rawset(string, 'upper', print)"), "rawset: the table is read-only", 0,
         NULL},
        {"pairs hands out the library",
         UPDATE(
             "local _, t = pairs(table); local it = pairs(table); local k, v = it(t, nil); t.concat = nil"),
         "cannot assign 'concat' in table", 0, NULL},
        {"global via load", UPDATE("load('pwned = 1; string = nil')()"), "the global table", 0, NULL},
        {"runtime global write", "x = 0\n" UPDATE("x = x + 1"),
         "assignment to global 'x' after the script loaded", 0, NULL},
        {"load-time _G writes stay own",
         "_G.string = { upper = function() return 'pwned' end }\n_G.pairs = nil\npwned = true\n"
         "rawset(_G, 'x', 1)\n" UPDATE(""),
         "rawset: the table is read-only", 1, NULL},
        {"load-time _G writes do not leak",
         "_G.string = { upper = function() return 'pwned' end }\n_G.pairs = nil\npwned = true\n"
         "assert(string.upper('a') == 'pwned')\n" UPDATE("log(string.upper('q'))"),
         "[attacker] pwned", 0, NULL},
        {"load-time library write", "math.floor = nil\n" UPDATE(""), "cannot assign 'floor' in math", 1,
         NULL},
        {"module table", "local L = require('lib')\n" UPDATE("L.speed = 99"), "in module 'lib'", 0,
         "return { speed = 1, nested = { k = 1 } }\n"},
        {"nested module table", "local L = require('lib')\n" UPDATE("L.nested.k = 99"), "in module 'lib'", 0,
         "return { speed = 1, nested = { k = 1 } }\n"},
        {"module pairs",
         "local L = require('lib')\n" UPDATE("for k, v in pairs(L) do if type(v) == 'table' then "
                                             "v.k = 2 end end"),
         "in module 'lib'", 0, "return { speed = 1, nested = { k = 1 } }\n"},
    };
    run_corpus(cases, sizeof cases / sizeof cases[0]);
}

/* ---- strings with NUL bytes, script output ----------------------------------- */

static void test_hostile_strings_with_nul_bytes_are_refused_or_carried_whole(void **state)
{
    (void)state;
    static const attack_t cases[] = {
        {"spawn name", UPDATE("spawn('bystander\\0evil', {})"), "spawn: bad name", 0, NULL},
        {"spawn empty name", UPDATE("spawn('', {})"), "spawn: bad name", 0, NULL},
        {"send name", UPDATE("send(self.id, 'hit\\0me')"), "send: bad name", 0, NULL},
        {"get field", UPDATE("local v = get(self.id, 'm\\0x')"), "field: bad name", 0, NULL},
        {"set field", UPDATE("set(self.id, 'm\\0x', 1)"), "set: bad name", 0, NULL},
        {"query tag", UPDATE("local q = query('a\\0b')"), "query: bad name", 0, NULL},
        {"query table tag", UPDATE("local q = query({ all = { 'a\\0b' } })"), "query: bad name", 0, NULL},
        {"require name", "local L = require('lib\\0x')\n" UPDATE(""), "require: bad module name", 1,
         "return {}\n"},
        {"log carries NULs visibly", UPDATE("log('a\\0b')"), "[attacker] a\\0b", 0, NULL},
        {"field name with NUL", "return { fields = { ['a\\0b'] = 1 } }\n", "contains a NUL byte", 1, NULL},
        {"tag with NUL", "return { tags = { 'a\\0b' } }\n", "without NUL bytes", 1, NULL},
        {"handler with NUL", "return { ['on_a\\0b'] = function() end }\n", "without NUL bytes", 1, NULL},
        {"handler not a function", "return { on_hit = 5 }\n", "handler 'on_hit' must be a function", 1, NULL},
        {"keyword field", "return { fields = { ['end'] = 1 } }\n", "Lua's keywords", 1, NULL},
    };
    run_corpus(cases, sizeof cases / sizeof cases[0]);
}

static void test_hostile_print_and_warn_go_to_the_console(void **state)
{
    (void)state;
    static const attack_t cases[] = {
        {"print", UPDATE("print('hello', 1, nil)"), "[attacker] hello\t1\tnil", 0, NULL},
        {"warn", UPDATE("warn('care', 'ful')"), "[attacker] careful", 0, NULL},
    };
    run_corpus(cases, sizeof cases / sizeof cases[0]);
}

/* ---- stale views ------------------------------------------------------------------- */

static void test_hostile_stale_query_views_raise_instead_of_reading_freed_memory(void **state)
{
    (void)state;
    static const attack_t cases[] = {
        {"view kept from load", "local q = query('mover')\n" UPDATE("local x = q[1]"),
         "used after that frame's phases ended", 0, NULL},
        {"view length kept from load", "local q = query({ all = { 'mover' } })\n" UPDATE("local n = #q"),
         "used after that frame's phases ended", 0, NULL},
    };
    run_corpus(cases, sizeof cases / sizeof cases[0]);
}

/* A view kept by a script (an upvalue here) across a host ljs_query (the
 * cache may evict and reallocate) and across a frame: both reads raise. */
static void test_hostile_stale_view_after_host_query_raises(void **state)
{
    (void)state;
    char dir[64], path[256];
    ljs_test_tmpdir(dir, sizeof dir, "view");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 1;
    cfg.query_cache = 1;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    snprintf(path, sizeof path, "%s/keeper.lua", dir);
    ljs_test_write(path, "local kept\nreturn { fields = { n = 0 }, tags = { 't' },\n"
                         "  update = function(self)\n"
                         "    if kept == nil then kept = query('t') else local x = kept[1] end\n"
                         "    self.n = self.n + 1 end }\n");
    ljs_script_t s;
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    for (int i = 0; i < 40; i++) { /* churn the host cache: evictions */
        char tag[8];
        snprintf(tag, sizeof tag, "h%d", i);
        const char *all[] = {tag};
        ljs_query_t q = {all, 1, NULL, 0};
        const ljs_entity_t *ids;
        size_t n;
        (void)ljs_query(rt, &q, &ids, &n);
    }
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
    assert_true(st.script_errors >= 1);
    int64_t n = 0;
    assert_int_equal(ljs_field_get_integer(rt, e, "n", &n), LJS_OK);
    assert_int_equal(n, 1); /* the second call raised and changed nothing */
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

/* ---- set() ------------------------------------------------------------------------ */

/* set() writes a field the call does not return (another script's field on
 * the same entity); it lands when the call returns, and a call that raises
 * drops it. Setting a field the call returns is refused. Both forms and
 * handlers. */
static void check_set(const char *a_src, unsigned workers)
{
    char dir[64], path[256];
    ljs_test_tmpdir(dir, sizeof dir, "set");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    ljs_script_t sa, sb;
    snprintf(path, sizeof path, "%s/a.lua", dir);
    ljs_test_write(path, a_src);
    if (ljs_script_load(rt, path, &sa) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    snprintf(path, sizeof path, "%s/b.lua", dir);
    ljs_test_write(path, "return { fields = { b = 0 } }\n");
    assert_int_equal(ljs_script_load(rt, path, &sb), LJS_OK);
    ljs_entity_t e[6];
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], sa), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], sb), LJS_OK);
    }
    for (int f = 0; f < 4; f++) {
        for (int i = 0; i < 4 && f == 3; i++) /* the last frame's update raises; the handler still runs */
            assert_int_equal(ljs_send(rt, e[i], "poke", NULL, 0), LJS_OK);
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    }
    for (int i = 0; i < 6; i++) {
        int64_t a = -1, b = -1;
        assert_int_equal(ljs_field_get_integer(rt, e[i], "a", &a), LJS_OK);
        assert_int_equal(ljs_field_get_integer(rt, e[i], "b", &b), LJS_OK);
        /* updates: a counts 1, 2, then raises at 3 (changing nothing), so
         * a = 2 and b = 102; a poke handler adds 1000 to b via set(). */
        int64_t want_b = 102 + (i < 4 ? 1000 : 0);
        if (a != 2 || b != want_b)
            fail_msg("workers %u entity %d: a=%lld b=%lld (want 2, %lld)", workers, i, (long long)a,
                     (long long)b, (long long)want_b);
    }
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

static void test_hostile_set_lands_on_return_and_a_raising_call_changes_nothing(void **state)
{
    (void)state;
    static const char *natural =
        "return { fields = { a = 0 },\n"
        "  update = function(self)\n"
        "    local ok, err = pcall(set, self.id, 'a', 5)\n"
        "    assert(not ok and err:find('is one this call returns'), err)\n"
        "    self.a = self.a + 1\n"
        "    set(self.id, 'b', 100 + self.a)\n"
        "    if self.a >= 3 then error('boom') end\n"
        "  end,\n"
        "  on_poke = function(self) set(self.id, 'b', get(self.id, 'b') + 1000) end }\n";
    static const char *fast =
        "return { fields = { a = 0 }, reads = { 'a' }, writes = { 'a' },\n"
        "  update = function(e, dt, a)\n"
        "    local ok, err = pcall(set, e, 'a', 5)\n"
        "    assert(not ok and err:find('is one this call returns'), err)\n"
        "    set(e, 'b', 101 + a)\n"
        "    if a + 1 >= 3 then error('boom') end\n"
        "    return a + 1\n"
        "  end,\n"
        "  on_poke = function(self) set(self.id, 'b', get(self.id, 'b') + 1000) end }\n";
    static const unsigned counts[] = {1, 2, 4};
    for (size_t k = 0; k < 3; k++) {
        check_set(natural, counts[k]);
        check_set(fast, counts[k]);
    }
}

/* ---- memory a script makes the C side hold ------------------------------------- */

static void test_hostile_event_memory_is_bounded(void **state)
{
    (void)state;
    static const attack_t cases[] = {
        {"huge payloads from one call",
         UPDATE("local big = ('x'):rep(1024 * 1024)\nfor i = 1, 400 do send(self.id, 'blob', big) end"),
         "more than LJS_CALL_QUEUE_KB=4096 KiB", 0, NULL},
        {"many spawns from one call",
         UPDATE("local big = ('y'):rep(1024 * 1024)\nfor i = 1, 1000 do "
                "spawn('attacker', { pad = big }) end"),
         "more than LJS_CALL_QUEUE_KB", 0, NULL},
        {"fork bomb",
         "return { fields = { m = 0 }, update = function(self) if frame() == 1 then send(self.id, 'fork', "
         "('z'):rep(1000000)) end end,\n"
         "  on_fork = function(self, p) send(self.id, 'fork', p); send(self.id, 'fork', p); self.m = self.m + 1 end "
         "}\n",
         "more than LJS_EVENT_MEM_MB=8", 0, NULL, 1},
    };
    run_corpus(cases, sizeof cases / sizeof cases[0]);
}

/* ---- memory bombs say where they went off ------------------------------------- */

/* Lua raises a memory error without a position and without calling the
 * message handler; the allocator notes the running Lua line when it
 * refuses (ljs__watchdog_oom), so the console still names file:line. The
 * state limit is 8 MiB here and the bombs go off in the first frame only
 * (every attacker, so the world digest is the same for every worker
 * count), in 1 MiB steps: few fresh pages, so the cases stay well inside
 * the runaway limit and the test's timeout under TSan beside CPU burners. */
#define ONCE(body) UPDATE("if frame() == 1 then " body "\nend")

static void test_hostile_memory_bombs_name_their_line(void **state)
{
    (void)state;
    static const attack_t cases[] = {
        {"string.rep past the limit", ONCE("local s = ('x'):rep(100 * 1024 * 1024)"),
         "attacker.lua:2: memory limit reached (LJS_STATE_MEM_MB=8)", 0, NULL, 0, 8},
        {"concatenation in a loop",
         ONCE("local t, s = {}, ('y'):rep(1024 * 1024)\nfor i = 1, 1e6 do t[i] = s .. i end"),
         "attacker.lua:3: memory limit reached", 0, NULL, 0, 8},
        {"in a coroutine",
         ONCE("local co = coroutine.wrap(function()\n local t, s = {}, ('y'):rep(1024 * 1024)\n"
              " for i = 1, 1e6 do t[i] = s .. i end end)\nco()"),
         "attacker.lua:4: memory limit reached", 0, NULL, 0, 8},
        {"in a coroutine, through coroutine.resume",
         ONCE(
             "local ok, e = coroutine.resume(coroutine.create(function()\n local t, s = {}, ('y'):rep(1024 * 1024)\n"
             " for i = 1, 1e6 do t[i] = s .. i end end))\nlog(tostring(ok) .. ' ' .. e)"),
         "attacker.lua:4: memory limit reached (LJS_STATE_MEM_MB=8)", 0, NULL, 0, 8},
        {"coroutine.resume still returns false when the state stays full",
         ONCE("local ok = coroutine.resume(coroutine.create(function()\n local t = {}\n"
              " while true do t[#t + 1] = { 1, 2, 3, 4 } end end))\nlog('resumed ' .. tostring(ok))"),
         "[attacker] resumed false", 0, NULL, 0, 8},
        {"a coroutine's to-be-closed variable still runs",
         ONCE("local co = coroutine.wrap(function()\n"
              " local c <close> = setmetatable({}, { __close = function() log('closed') end })\n"
              " local t, s = {}, ('y'):rep(1024 * 1024)\n for i = 1, 1e6 do t[i] = s .. i end end)\nco()"),
         "[attacker] closed", 0, NULL, 0, 8},
        {"at load, in the top-level chunk",
         "local t, s = {}, ('y'):rep(1024 * 1024)\nfor i = 1, 1e6 do t[i] = s .. i end\nreturn {}\n",
         "attacker.lua:2: out of memory loading the script", 1, NULL, 0, 8},
    };
    run_corpus(cases, sizeof cases / sizeof cases[0]);
}

/* ---- a full state ---------------------------------------------------------------- */

/* A script fills its state to the memory limit and keeps it full; then a
 * reload drops its module (whose long path must be made into a Lua string)
 * and frames go on: every allocation that fails is an ordinary error,
 * never an "unprotected Lua error" abort. */
static void test_hostile_a_state_full_to_its_limit_never_aborts_the_host(void **state)
{
    (void)state;
    char dir[64], sub[256], path[512];
    ljs_test_tmpdir(dir, sizeof dir, "full");
    snprintf(sub, sizeof sub, "%s/a_directory_name_long_enough_to_make_lua_allocate_its_strings", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    cfg.state_mem_mb = 8;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    snprintf(path, sizeof path, "%s/lib.lua", sub);
    ljs_test_write(path, "return { k = 1 }\n");
    snprintf(path, sizeof path, "%s/hog.lua", sub);
    ljs_test_write(path, "local lib = require('lib')\nlocal hog = {}\n"
                         "return { fields = { n = 0 }, update = function(self)\n"
                         "  pcall(function() while true do hog[#hog + 1] = { 1, 2, 3, 4 } end end)\n"
                         "  self.n = self.n + lib.k end }\n");
    ljs_script_t s;
    if (ljs_script_load(rt, path, &s) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    ljs_entity_t e[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], s), LJS_OK);
    }
    for (int f = 0; f < 3; f++) {
        int rc = ljs_frame(rt, 0.0);
        assert_true(rc == LJS_OK || rc == LJS_ENOMEM);
        (void)ljs_script_reload(rt, s); /* may fail: the state is full */
    }
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

/* ---- a refused script leaves nothing ------------------------------------------- */

static void test_hostile_a_refused_script_leaves_no_residue(void **state)
{
    (void)state;
    char dir[64], path[256];
    ljs_test_tmpdir(dir, sizeof dir, "residue");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    ljs_script_t s;
    /* Declares hp as an integer and a tag, then fails. */
    snprintf(path, sizeof path, "%s/broken.lua", dir);
    ljs_test_write(path, "return { fields = { hp = 1, zz = true }, tags = { 'residue' }, update = 5 }\n");
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_ESCRIPT);
    /* A valid script declaring hp as a number loads. */
    snprintf(path, sizeof path, "%s/good.lua", dir);
    ljs_test_write(path,
                   "return { fields = { hp = 1.5 }, update = function(self) self.hp = self.hp + 1 end }\n");
    if (ljs_script_load(rt, path, &s) != LJS_OK)
        fail_msg("the refused script's declaration stayed: %s", ljs_last_error());
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    /* A reload that changes hp's type and adds a field is refused, naming
     * the field; the corrected file then reloads. */
    ljs_test_write(path, "return { fields = { hp = 1, extra = 2 }, update = function(self) end }\n");
    assert_int_equal(ljs_script_reload(rt, s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "'hp'"));
    ljs_test_write(path,
                   "return { fields = { hp = 1.5, extra = 2.5 }, update = function(self) self.hp = self.hp + "
                   "self.extra end }\n");
    if (ljs_script_reload(rt, s) != LJS_OK)
        fail_msg("the corrected file is refused: %s", ljs_last_error());
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    double hp = 0;
    assert_int_equal(ljs_field_get_number(rt, e, "hp", &hp), LJS_OK);
    assert_true(hp == 1.5 + 1 + 2.5);
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

/* ---- two runtimes in one process ----------------------------------------------- */

typedef struct twin_s {
    const char *dir;
    int failures;
    char err[512];
} twin_t;

/* Loads the shared file, spawns nothing, lets LJS_UNLOAD_GRACE=1 unload it
 * (which drops its bytecode when this runtime is alone), again and again,
 * while the other runtime does the same on its own thread. */
static void *twin_main(void *arg)
{
    twin_t *t = arg;
    ljs_config_t cfg;
    ljs_config_init(&cfg);
    cfg.workers = 2;
    cfg.unload_grace = 1;
    ljs_runtime_t *rt;
    if (ljs_runtime_create(&cfg, &rt) != LJS_OK) {
        t->failures++;
        return NULL;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/shared.lua", t->dir);
    for (int i = 0; i < 200 / LJS_TEST_SCALE + 20; i++) {
        ljs_script_t s;
        if (ljs_script_load(rt, path, &s) != LJS_OK) {
            t->failures++;
            snprintf(t->err, sizeof t->err, "%s", ljs_last_error());
        } else {
            (void)ljs_script_pin(rt, s, 0); /* host loads are pinned: let it unload */
        }
        for (int f = 0; f < 3; f++)
            (void)ljs_frame(rt, 0.0);
    }
    ljs_runtime_destroy(rt);
    return NULL;
}

static void test_hostile_two_runtimes_share_the_bytecode_cache_safely(void **state)
{
    (void)state;
    char dir[64], path[256];
    ljs_test_tmpdir(dir, sizeof dir, "twins");
    snprintf(path, sizeof path, "%s/shared.lua", dir);
    ljs_test_write(
        path, "local lib = require('lib')\nreturn { fields = { q = 0 }, update = function(self) self.q = "
              "lib.k end }\n");
    snprintf(path, sizeof path, "%s/lib.lua", dir);
    ljs_test_write(path, "return { k = 3 }\n");
    ljs_test_clear_env();
    twin_t a = {dir, 0, ""}, b = {dir, 0, ""};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, twin_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, twin_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.failures || b.failures)
        fail_msg("loads failed: %d and %d: %s%s", a.failures, b.failures, a.err, b.err);
    ljs_test_rmtree(dir);
}

/* ---- symlinks ------------------------------------------------------------------------ */

/* A symlink loop in the scripts' directory does not hang loading (the
 * watcher does not follow symlinked directories), and a symlink that
 * leaves the script root does not let require read outside it. */
static void test_hostile_symlinks_neither_hang_loading_nor_escape_the_root(void **state)
{
    (void)state;
    char dir[64], out[64], path[256], target[256];
    ljs_test_tmpdir(dir, sizeof dir, "links");
    ljs_test_tmpdir(out, sizeof out, "outside");
    snprintf(path, sizeof path, "%s/l1", dir);
    assert_int_equal(symlink(".", path), 0);
    snprintf(path, sizeof path, "%s/l2", dir);
    assert_int_equal(symlink(".", path), 0);
    snprintf(path, sizeof path, "%s/l3", dir);
    assert_int_equal(symlink(dir, path), 0);
    snprintf(path, sizeof path, "%s/secret.lua", out);
    ljs_test_write(path, "return { stolen = true }\n");
    snprintf(path, sizeof path, "%s/evil", dir);
    assert_int_equal(symlink(out, path), 0);
    snprintf(path, sizeof path, "%s/ok.lua", dir);
    ljs_test_write(path, "return { fields = { n = 0 }, update = function(self) self.n = self.n + 1 end }\n");
    snprintf(target, sizeof target, "%s/thief.lua", dir);
    ljs_test_write(target, "local s = require('evil.secret')\nreturn {}\n");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    cfg.watch = 1;
    for (int cache = 0; cache <= 1; cache++) {
        cfg.cache = (uint32_t)cache;
        ljs_runtime_t *rt;
        assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
        ljs_script_t s;
        if (ljs_script_load(rt, path, &s) != LJS_OK)
            fail_msg("%s", ljs_last_error());
        assert_int_equal(ljs_script_load(rt, target, &s), LJS_ESCRIPT);
        if (strstr(ljs_last_error(), "resolves outside the script's directory") == NULL)
            fail_msg("unclear: %s", ljs_last_error());
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
        ljs_runtime_destroy(rt);
    }
    ljs_test_rmtree(dir);
    ljs_test_rmtree(out);
}

/* ---- the widest script ---------------------------------------------------------- */

#define MAXF 120 /* LJS__MAX_SCRIPT_FIELDS, documented in the README */

/* A script with `nf` number fields f0..f(nf-1); `fast` picks the form. Each
 * update adds 1 to every field; the handler on_bump adds 100 to each. */
static char *wide_src(int nf, int fast)
{
    size_t cap = (size_t)nf * 160 + 1024, n = 0;
    char *src = malloc(cap);
    assert_non_null(src);
    n += (size_t)snprintf(src + n, cap - n, "return {\n fields = {");
    for (int i = 0; i < nf; i++)
        n += (size_t)snprintf(src + n, cap - n, " f%d = %d.5,", i, i);
    n += (size_t)snprintf(src + n, cap - n, " },\n");
    if (fast) {
        n += (size_t)snprintf(src + n, cap - n, " reads = {");
        for (int i = 0; i < nf; i++)
            n += (size_t)snprintf(src + n, cap - n, " 'f%d',", i);
        n += (size_t)snprintf(src + n, cap - n, " }, writes = {");
        for (int i = 0; i < nf; i++)
            n += (size_t)snprintf(src + n, cap - n, " 'f%d',", i);
        n += (size_t)snprintf(src + n, cap - n,
                              " },\n update = function(e, dt, ...)\n"
                              "  local t = { ... }\n  for i = 1, #t do t[i] = t[i] + 1 end\n"
                              "  return table.unpack(t)\n end,\n");
    } else {
        n += (size_t)snprintf(src + n, cap - n,
                              " update = function(self, dt)\n  for i = 0, %d do local k = 'f' .. i; "
                              "self[k] = self[k] + 1 end\n end,\n",
                              nf - 1);
    }
    n += (size_t)snprintf(src + n, cap - n,
                          " on_bump = function(self, ev)\n  for i = 0, %d do local k = 'f' .. i; "
                          "self[k] = self[k] + 100 end\n end,\n"
                          " on_reload = function(self) self.f0 = self.f0 + 1000 end,\n}\n",
                          nf - 1);
    return src;
}

static void check_wide(int fast, unsigned workers)
{
    char dir[64], path[256];
    ljs_test_tmpdir(dir, sizeof dir, "wide");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    /* One past the limit: a clear load error naming the limit. */
    char *src = wide_src(MAXF + 1, fast);
    snprintf(path, sizeof path, "%s/toowide.lua", dir);
    ljs_test_write(path, src);
    free(src);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_ESCRIPT);
    if (strstr(ljs_last_error(), "121 fields (at most 120 per script)") == NULL)
        fail_msg("unclear error: %s", ljs_last_error());
    /* At the limit: every form runs and keeps every field. */
    src = wide_src(MAXF, fast);
    snprintf(path, sizeof path, "%s/wide.lua", dir);
    ljs_test_write(path, src);
    free(src);
    if (ljs_script_load(rt, path, &s) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    ljs_entity_t e[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], s), LJS_OK);
    }
    for (int f = 0; f < 3; f++)
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    assert_int_equal(ljs_send(rt, e[1], "bump", NULL, 0), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK); /* update + event */
    src = wide_src(MAXF, fast);
    ljs_test_write(path, src);
    free(src);
    assert_int_equal(ljs_script_reload(rt, s), LJS_OK);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < MAXF; k++) {
            char name[16];
            double v = -1;
            snprintf(name, sizeof name, "f%d", k);
            assert_int_equal(ljs_field_get_number(rt, e[i], name, &v), LJS_OK);
            double want = k + 0.5 + 4 + (i == 1 ? 100 : 0) + (k == 0 ? 1000 : 0);
            if (v != want)
                fail_msg("fast=%d workers=%u entity %d field %s = %g, want %g", fast, workers, i, name, v,
                         want);
        }
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

static void test_hostile_widest_script_runs_in_both_forms_and_one_more_field_is_refused(void **state)
{
    (void)state;
    static const unsigned counts[] = {1, 2, 4};
    for (int fast = 0; fast <= 1; fast++)
        for (size_t k = 0; k < 3; k++)
            check_wide(fast, counts[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_library_and_global_poisoning_is_refused),
        cmocka_unit_test(test_hostile_widest_script_runs_in_both_forms_and_one_more_field_is_refused),
        cmocka_unit_test(test_hostile_strings_with_nul_bytes_are_refused_or_carried_whole),
        cmocka_unit_test(test_hostile_print_and_warn_go_to_the_console),
        cmocka_unit_test(test_hostile_stale_query_views_raise_instead_of_reading_freed_memory),
        cmocka_unit_test(test_hostile_stale_view_after_host_query_raises),
        cmocka_unit_test(test_hostile_set_lands_on_return_and_a_raising_call_changes_nothing),
        cmocka_unit_test(test_hostile_a_state_full_to_its_limit_never_aborts_the_host),
        cmocka_unit_test(test_hostile_event_memory_is_bounded),
        cmocka_unit_test(test_hostile_memory_bombs_name_their_line),
        cmocka_unit_test(test_hostile_a_refused_script_leaves_no_residue),
        cmocka_unit_test(test_hostile_two_runtimes_share_the_bytecode_cache_safely),
        cmocka_unit_test(test_hostile_symlinks_neither_hang_loading_nor_escape_the_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
