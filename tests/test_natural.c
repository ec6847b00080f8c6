/* test_natural.c - the natural form's two tiers (README "Natural form: two
 * tiers"): which scripts are scalarized and which keep the `self` table,
 * that both tiers give bit-identical worlds for 1, 2, 4 and 8 workers, and
 * that the scalarized tier keeps every documented semantics (own writes
 * visible, a raising call changes nothing, type errors naming the field,
 * file:line in errors, set() rules, untouched fields left alone). */
#include "tests/support.h"

#include <ljs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NENT 24
#define NFRAMES 5

typedef struct result_s {
    uint64_t digest;
    uint32_t scalarized, table;
    uint64_t errors;
    char console[8192];
} result_t;

static void on_line(void *ud, const ljs_log_line_t *line)
{
    result_t *r = ud;
    size_t n = strlen(r->console);
    snprintf(r->console + n, sizeof r->console - n, "%s\n", line->text);
}

/* Load `src` as one script on NENT entities, run NFRAMES frames with a
 * "hit" event (payload 2) to every entity each frame, and return the world
 * digest, the tier counts and the console. */
/* Config variations for test_natural_strip_and_no_cache: stripped
 * bytecode (no debug info to rewrite) and every worker compiling. */
static int opt_strip, opt_no_cache;

static void run(const char *src, unsigned workers, int natural, result_t *r)
{
    char dir[64], path[128];
    memset(r, 0, sizeof *r);
    ljs_test_tmpdir(dir, sizeof dir, "natural");
    snprintf(path, sizeof path, "%s/s.lua", dir);
    ljs_test_write(path, src);
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.batch = 3;
    cfg.natural = (uint32_t)natural;
    cfg.state_mem_mb = 64;
    cfg.watch = 0;
    cfg.strip_bytecode = (uint32_t)opt_strip;
    cfg.cache = opt_no_cache ? 0 : 1;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    ljs_script_t s;
    if (ljs_script_load(rt, path, &s) != LJS_OK)
        fail_msg("load: %s", ljs_last_error());
    ljs_entity_t e[NENT];
    for (int i = 0; i < NENT; i++) {
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e[i], s), LJS_OK);
    }
    ljs_kv_t hit = {NULL, LJS_TINTEGER, {.i = 2}};
    for (int f = 0; f < NFRAMES; f++) {
        for (int i = 0; i < NENT; i += 2)
            assert_int_equal(ljs_send(rt, e[i], "hit", &hit, 1), LJS_OK);
        assert_int_equal(ljs_frame(rt, 0.25), LJS_OK);
    }
    ljs_script_stats_t st;
    assert_int_equal(ljs_script_stats(rt, s, &st), LJS_OK);
    r->scalarized = st.scalarized;
    r->table = st.table_fallback;
    r->errors = st.errors;
    r->digest = ljs_world_digest(rt);
    ljs_console_drain(rt, on_line, r);
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

/* Fields every case declares. */
#define FIELDS "fields = { x = 1.5, y = -2.0, n = 3, ok = true, w1 = 0.0, w2 = 0.5 },\n"

typedef struct case_s {
    const char *name;
    const char *src;
    uint32_t scalar; /* functions expected scalarized (update + on_hit) */
    const char *why; /* expected in the fallback's console line, or NULL */
} case_t;

static const case_t cases[] = {
    /* --- scalarized ---------------------------------------------------- */
    {"light",
     "return {" FIELDS "update = function(self, dt)\n"
     "  self.x = self.x + self.y * dt\n"
     "  if self.x > 4 then self.y = -math.abs(self.y) elseif self.x < 0 then self.y = math.abs(self.y) end\n"
     "end,\n"
     "on_hit = function(self, dmg) self.n = self.n - dmg; self.ok = self.n > 0 end }\n",
     2, NULL},
    {"own writes visible, constants and id",
     "return {" FIELDS "update = function(self, dt)\n"
     "  self.x = 5; self.y = self.x + 1; self.ok = false; self.n = 7\n"
     "  self.w1 = self.id % 7 + self.y\n"
     "end,\n"
     "on_hit = function(self, dmg, sender) self.w2 = (sender or -1) + dmg + self.w2 end }\n",
     2, NULL},
    {"early returns, tail call, reads only",
     "local function half(v) return v / 2 end\n"
     "return {" FIELDS "update = function(self, dt)\n"
     "  if self.n > 100 then return end\n"
     "  self.n = self.n + 1\n"
     "  if self.x > 2 then self.x = half(self.x) return half(self.x) end\n"
     "  self.x = self.x + 1\n"
     "  return half(self.y)\n"
     "end,\n"
     "on_hit = function(self, dmg) local t = self.x + self.y + dmg; if t > 1e9 then error('x') end end }\n",
     2, NULL},
    {"closures over locals and params, loops, goto, to-be-closed",
     "local speed = 3\n"
     "return {" FIELDS "update = function(self, dt)\n"
     "  local acc = 0\n"
     "  local function add(v) acc = acc + v * speed * dt end\n"
     "  for i = 1, 4 do add(i) end\n"
     "  for _, v in ipairs({1, 2, 3}) do add(v) end\n"
     "  local k = 0\n"
     "  ::again:: k = k + 1 if k < 3 then goto again end\n"
     "  do local c <close> = setmetatable({}, {__close = function() acc = acc + 1 end}) end\n"
     "  local g = function() return dt * k end\n"
     "  self.x = self.x + acc + g()\n"
     "  self.w1 = #tostring(self.n) + select('#', 1, 2)\n"
     "end,\n"
     "on_hit = function(self, dmg) local t = {self.n, dmg, n = self.n}; self.n = t[1] + t[2] + t.n end }\n",
     2, NULL},
    {"many constants (indexes past 255)", NULL /* generated: see many_constants() */, 2, NULL},
    {"a parameter reassigned, extra parameters",
     "return {" FIELDS "update = function(self, dt, sender, extra, more)\n"
     "  dt = dt * 2; if extra == nil and more == nil and sender == nil then self.x = self.x + dt end\n"
     "end,\n"
     "on_hit = function(self) self.n = self.n + 1 end }\n",
     2, NULL},
    /* --- table fallback -------------------------------------------------- */
    {"self passed to a helper",
     "local function bump(s) s.x = s.x + 1 end\n"
     "return {" FIELDS "update = function(self, dt) bump(self) end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self passed to a function or copied into a variable (MOVE) at line 3"},
    {"self[k]",
     "local k = 'x'\n"
     "return {" FIELDS "update = function(self, dt) self[k] = self[k] + dt end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "non-constant key"},
    {"self copied",
     "return {" FIELDS "update = function(self, dt) local t = self; t.x = t.x + dt end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "copied into a variable"},
    {"self:method()",
     "return {" FIELDS "update = function(self, dt) if self.n < 0 then self:nothing() end end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self:method()"},
    {"self captured by a closure",
     "return {" FIELDS
     "update = function(self, dt) local f = function() return self.x end; self.y = f() end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "captured by a nested function"},
    {"self reassigned",
     "return {" FIELDS "update = function(self, dt) self.x = self.x + 1; self = {x = 0} end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self reassigned"},
    {"pairs(self)",
     "return {" FIELDS
     "update = function(self, dt) local s = 0 for k, v in pairs(self) do if math.type(v) == 'integer' and k ~= 'id' "
     "then s = s + v end end self.n = s end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self passed to a function"},
    {"undeclared key",
     "return {" FIELDS "update = function(self, dt) self.tmp = 2; self.x = self.x + self.tmp end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self.tmp is not a declared field"},
    {"self.id written",
     "return {" FIELDS "update = function(self, dt) self.id = 3; self.x = self.x + 1 end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self.id assigned"},
    {"vararg",
     "return {" FIELDS "update = function(self, ...) self.x = self.x + select(1, ...) end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "vararg"},
    {"tail call with self",
     "local function f(s) return s.x end\n"
     "return {" FIELDS "update = function(self, dt) return f(self) end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self passed to a function"},
    {"self returned",
     "return {" FIELDS "update = function(self, dt) return self end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "self returned"},
    {"self in a nested function's upvalue chain",
     "return {" FIELDS
     "update = function(self, dt) local function a() local function b() self.x = 1 end b() end a() end,\n"
     "on_hit = function(self, dmg) self.n = self.n + dmg end }\n",
     1, "captured by a nested function"},
    {"too many registers", NULL /* generated: see many_registers() */, 1, "too many registers"},
};

/* 300 distinct constants before the field writes: the writes' constants
 * then live past index 255 and are loaded into registers first. */
static char *many_constants(void)
{
    size_t cap = 64 * 1024, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    /* The field names are the first constants (the compiler numbers them
     * by first use), the numbers written to them come after the 300. */
    n += (size_t)snprintf(
        s + n, cap - n,
        "return {" FIELDS
        "update = function(self, dt)\n local x0, n0, ok0 = self.x, self.n, self.ok\n local t = {");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(s + n, cap - n, "%d.5,", i + 1000);
    n += (size_t)snprintf(s + n, cap - n,
                          "}\n self.x = x0 + t[3] * 1e-3 + 12345.25; self.ok = not ok0; self.n = n0 + 99999\n"
                          "end,\non_hit = function(self, dmg) self.y = 77777.5 + dmg end }\n");
    return s;
}

/* 190 locals and a call with 60 arguments: the frame plus the 6 fields
 * would need more than 255 registers. */
static char *many_registers(void)
{
    size_t cap = 64 * 1024, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    n += (size_t)snprintf(s + n, cap - n, "return {" FIELDS "update = function(self, dt)\n");
    for (int i = 0; i < 190; i++)
        n += (size_t)snprintf(s + n, cap - n, " local a%d = %d\n", i, i);
    n += (size_t)snprintf(s + n, cap - n, " self.w1 = self.x + self.y + self.n + self.w2 + math.max(a0");
    for (int i = 1; i < 60; i++)
        n += (size_t)snprintf(s + n, cap - n, ", a%d", i);
    n += (size_t)snprintf(s + n, cap - n,
                          "); self.ok = not self.ok\nend,\n"
                          "on_hit = function(self, dmg) self.n = self.n + dmg end }\n");
    return s;
}

static void test_natural_tiers_agree_for_1_2_4_8_workers(void **state)
{
    (void)state;
    static result_t r, base;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *gen = NULL;
        const char *src = cases[c].src;
        if (src == NULL)
            src = gen = strstr(cases[c].name, "constants") ? many_constants() : many_registers();
        run(src, 1, 0, &base); /* the table tier, 1 worker: what every other run must match */
        assert_int_equal(base.scalarized, 0);
        assert_int_equal(base.table, 2);
        for (size_t wi = 0; wi < LJS_TEST_NWORKER_COUNTS; wi++)
            for (int nat = wi == 0 ? 1 : 0; nat <= 1; nat++) {
                run(src, ljs_test_worker_counts[wi], nat, &r);
                if (r.digest != base.digest || r.errors != base.errors)
                    fail_msg("case '%s', %u workers, LJS_NATURAL=%d: digest %016llx errors %llu, table tier "
                             "%016llx errors %llu\n%s",
                             cases[c].name, ljs_test_worker_counts[wi], nat, (unsigned long long)r.digest,
                             (unsigned long long)r.errors, (unsigned long long)base.digest,
                             (unsigned long long)base.errors, r.console);
                if (nat && r.scalarized != cases[c].scalar)
                    fail_msg("case '%s': %u scalarized, expected %u\n%s", cases[c].name, r.scalarized,
                             cases[c].scalar, r.console);
                if (nat && cases[c].why != NULL && strstr(r.console, cases[c].why) == NULL)
                    fail_msg("case '%s': console does not say '%s':\n%s", cases[c].name, cases[c].why,
                             r.console);
            }
        free(gen);
    }
}

/* The scalarized tier's errors: same outcome as the table tier, file:line
 * in the message, the field named. */
static void expect_error(const char *src, const char *needle1, const char *needle2)
{
    static result_t t, s;
    run(src, 2, 0, &t);
    run(src, 2, 1, &s);
    if (s.scalarized != 2)
        fail_msg("not scalarized:\n%s", s.console);
    assert_true(s.errors > 0);
    assert_int_equal(s.errors, t.errors);
    assert_true(s.digest == t.digest);
    if (strstr(s.console, needle1) == NULL || (needle2 != NULL && strstr(s.console, needle2) == NULL))
        fail_msg("expected '%s' and '%s' in:\n%s", needle1, needle2 ? needle2 : "", s.console);
}

static void test_natural_scalarized_errors_name_file_line_and_field(void **state)
{
    (void)state;
    /* nil arithmetic */
    expect_error("return {" FIELDS "update = function(self, dt)\n  self.x = self.x + nothing\nend,\n"
                 "on_hit = function(self, dmg) end }\n",
                 "s.lua:3: attempt to perform arithmetic on a nil value (global 'nothing')", NULL);
    /* arithmetic on a boolean field: the field is named */
    expect_error("return {" FIELDS "update = function(self, dt)\n  self.x = self.ok + 1\nend,\n"
                 "on_hit = function(self, dmg) end }\n",
                 "s.lua:3: attempt to perform arithmetic on a boolean value", "self.ok");
    /* a wrong type, nil or a non-integral number stored: the table tier's message */
    expect_error("return {" FIELDS "update = function(self, dt) self.x = 'str' end,\n"
                 "on_hit = function(self, dmg) end }\n",
                 "field 'x' expects number, got string", NULL);
    expect_error("return {" FIELDS "update = function(self, dt) self.y = nil end,\n"
                 "on_hit = function(self, dmg) end }\n",
                 "field 'y' expects number, got nil", NULL);
    expect_error("return {" FIELDS "update = function(self, dt) self.n = 1.5 end,\n"
                 "on_hit = function(self, dmg) end }\n",
                 "field 'n' expects integer, got a non-integral number", NULL);
    expect_error("return {" FIELDS "update = function(self, dt) end,\n"
                 "on_hit = function(self, dmg) self.ok = 1 end }\n",
                 "field 'ok' expects boolean", NULL);
    /* set() may not write the script's own fields, in either tier */
    expect_error("return {" FIELDS "update = function(self, dt) set(self.id, 'w1', 3) end,\n"
                 "on_hit = function(self, dmg) end }\n",
                 "set: field 'w1' is one this call returns", NULL);
}

/* A call that raises changes nothing, even after writing fields; the
 * fields it does not touch keep the host's values. */
static void test_natural_raising_call_changes_nothing(void **state)
{
    (void)state;
    char dir[64], path[128];
    ljs_test_tmpdir(dir, sizeof dir, "natural");
    snprintf(path, sizeof path, "%s/s.lua", dir);
    ljs_test_write(path, "return { fields = { x = 1.0, y = 2.0, n = 0, other = 5.0 },\n"
                         "update = function(self, dt)\n"
                         "  self.n = self.n + 1\n"
                         "  self.x = self.x + 10\n"
                         "  if self.n % 2 == 0 then error('boom') end\n"
                         "  self.y = self.x\n"
                         "end }\n");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    ljs_script_stats_t st;
    assert_int_equal(ljs_script_stats(rt, s, &st), LJS_OK);
    assert_int_equal(st.scalarized, 1);
    double x, y, other;
    int64_t n;
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK); /* n = 1, x = 11, y = 11 */
    assert_int_equal(ljs_field_set_number(rt, e, "other", 42.0), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK); /* n would be 2: raises, nothing lands */
    assert_int_equal(ljs_field_get_integer(rt, e, "n", &n), LJS_OK);
    assert_int_equal(ljs_field_get_number(rt, e, "x", &x), LJS_OK);
    assert_int_equal(ljs_field_get_number(rt, e, "y", &y), LJS_OK);
    assert_int_equal(ljs_field_get_number(rt, e, "other", &other), LJS_OK);
    assert_int_equal(n, 1);
    assert_true(x == 11.0 && y == 11.0 && other == 42.0);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK); /* raises again: n stays 1 */
    assert_int_equal(ljs_field_get_integer(rt, e, "n", &n), LJS_OK);
    assert_int_equal(n, 1);
    ljs_runtime_destroy(rt);
    ljs_test_rmtree(dir);
}

/* set() of another script's field from a scalarized call lands (and is
 * committed) when the call returns; the scalarized script's own untouched
 * fields keep what the host wrote between frames. */
static void test_natural_set_and_untouched_fields(void **state)
{
    (void)state;
    char dir[64], a[128], bpath[128];
    ljs_test_tmpdir(dir, sizeof dir, "natural");
    snprintf(a, sizeof a, "%s/a.lua", dir);
    snprintf(bpath, sizeof bpath, "%s/b.lua", dir);
    ljs_test_write(a,
                   "return { fields = { x = 0, keep = 1.0 },\n"
                   "update = function(self, dt) self.x = self.x + 1; set(self.id, 'z', self.x * 10) end }\n");
    ljs_test_write(bpath, "return { fields = { z = 0, seen = 0 },\n"
                          "update = function(self, dt) self.seen = self.z end }\n");
    for (int nat = 0; nat <= 1; nat++) {
        ljs_config_t cfg = ljs_test_config();
        cfg.workers = 2;
        cfg.natural = (uint32_t)nat;
        cfg.watch = 0;
        ljs_runtime_t *rt = ljs_test_runtime(&cfg);
        ljs_script_t sa, sb;
        assert_int_equal(ljs_script_load(rt, a, &sa), LJS_OK);
        assert_int_equal(ljs_script_load(rt, bpath, &sb), LJS_OK);
        ljs_entity_t e;
        assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e, sa), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e, sb), LJS_OK);
        for (int f = 1; f <= 3; f++) {
            assert_int_equal(ljs_field_set_number(rt, e, "keep", 100.0 + f), LJS_OK);
            assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
            int64_t x, z, seen;
            double keep;
            assert_int_equal(ljs_field_get_integer(rt, e, "x", &x), LJS_OK);
            assert_int_equal(ljs_field_get_integer(rt, e, "z", &z), LJS_OK);
            assert_int_equal(ljs_field_get_integer(rt, e, "seen", &seen), LJS_OK);
            assert_int_equal(ljs_field_get_number(rt, e, "keep", &keep), LJS_OK);
            assert_int_equal(x, f);
            assert_int_equal(z, f * 10);
            assert_int_equal(seen, f * 10); /* b runs after a in the frame: sees a's set() */
            assert_true(keep == 100.0 + f);
        }
        ljs_script_stats_t st;
        assert_int_equal(ljs_script_stats(rt, sa, &st), LJS_OK);
        assert_int_equal(st.scalarized, (uint32_t)nat);
        ljs_runtime_destroy(rt);
    }
    ljs_test_rmtree(dir);
}

/* Hot reload re-analyses: a scalarized update reloaded as one that passes
 * self on falls back, and back again; fields survive. */
static void test_natural_hot_reload_reanalyses(void **state)
{
    (void)state;
    char dir[64], path[128];
    ljs_test_tmpdir(dir, sizeof dir, "natural");
    snprintf(path, sizeof path, "%s/s.lua", dir);
    const char *v1 = "return { fields = { x = 0 }, update = function(self, dt) self.x = self.x + 1 end }\n";
    const char *v2 = "local function f(s) s.x = s.x + 100 end\n"
                     "return { fields = { x = 0 }, update = function(self, dt) f(self) end }\n";
    ljs_test_write(path, v1);
    char report[160];
    snprintf(report, sizeof report, "%s/report.json", dir);
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    cfg.watch = 0;
    snprintf(cfg.report, sizeof cfg.report, "%s", report);
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    const char *srcs[] = {v1, v2, v1};
    const int64_t want[] = {1, 101, 102};
    const uint32_t scalar[] = {1, 0, 1};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            ljs_test_write(path, srcs[i]);
            assert_int_equal(ljs_script_reload(rt, s), LJS_OK);
        }
        ljs_script_stats_t st;
        assert_int_equal(ljs_script_stats(rt, s, &st), LJS_OK);
        assert_int_equal(st.scalarized, scalar[i]);
        assert_int_equal(st.table_fallback, 1 - scalar[i]);
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        int64_t x;
        assert_int_equal(ljs_field_get_integer(rt, e, "x", &x), LJS_OK);
        assert_int_equal(x, want[i]);
    }
    ljs_runtime_destroy(rt);
    /* The JSON report says how each natural-form function runs. */
    FILE *f = fopen(report, "r");
    assert_non_null(f);
    static char json[65536];
    size_t n = fread(json, 1, sizeof json - 1, f);
    json[n] = '\0';
    fclose(f);
    if (strstr(json, "\"natural\":\"update: scalarized (touches 1 of 1 fields, writes 1)\"") == NULL)
        fail_msg("report has no natural-form summary:\n%.2000s", json);
    ljs_test_rmtree(dir);
}

/* ---- generated scripts: hostile shapes and a random property test ------- */

typedef struct sbuf_s {
    char *p;
    size_t n, cap;
} sbuf_t;

static void put(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        assert_true(k >= 0);
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)k;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
}

/* Both tiers, 1 and 4 workers, must agree; `scalar` functions expected
 * scalarized. */
static void agree_tiers(const char *what, const char *src, uint32_t scalar)
{
    static result_t base, r;
    run(src, 1, 0, &base);
    const unsigned counts[] = {1, 4};
    for (int k = 0; k < 2; k++) {
        run(src, counts[k], 1, &r);
        if (r.digest != base.digest || r.errors != base.errors || r.scalarized != scalar)
            fail_msg(
                "%s (%u workers): digest %016llx vs %016llx, errors %llu vs %llu, %u scalarized (want %u)\n"
                "%s\n--- source:\n%.2000s",
                what, counts[k], (unsigned long long)r.digest, (unsigned long long)base.digest,
                (unsigned long long)r.errors, (unsigned long long)base.errors, r.scalarized, scalar,
                r.console, src);
    }
}

/* Shapes meant to break a rewriter: a huge function with gotos and loops,
 * closures nested 30 deep over locals at every level, the highest
 * registers captured, to-be-closed variables, integer and generic loops,
 * and every field written through every kind of value. */
static void test_natural_hostile_shapes_agree_with_the_table_tier(void **state)
{
    (void)state;
    sbuf_t b = {malloc(4096), 0, 4096};
    assert_non_null(b.p);
    /* 1. huge: 3,000 statements, gotos, nested loops */
    put(&b, "return {" FIELDS "update = function(self, dt)\n local acc = self.y * 0\n");
    for (int i = 0; i < 600; i++) {
        put(&b, " do local k = 0 ::l%d:: k = k + 1 if k < %d then goto l%d end acc = acc + k end\n", i,
            i % 4 + 1, i);
        put(&b, " for j = %d, %d, %d do acc = acc + j * dt end\n", i % 5, i % 5 + 3, i % 2 + 1);
        put(&b, " if acc %% %d == 0 then self.n = self.n + 1 else self.w1 = self.w1 + %d.25 end\n", i % 7 + 2,
            i);
        put(&b, " self.x = self.x + (self.ok and %d or -%d) * 1e-3\n", i, i);
        put(&b, " if self.x > 5 then self.ok = not self.ok end\n");
    }
    put(&b, " self.y = acc\nend,\non_hit = function(self, dmg) self.w2 = self.w2 + dmg end }\n");
    agree_tiers("huge function", b.p, 2);
    /* 2. closures nested 30 deep, each capturing a local of every level and dt */
    b.n = 0;
    put(&b, "return {" FIELDS "update = function(self, dt)\n local v0 = self.x\n");
    for (int i = 1; i <= 30; i++)
        put(&b, " local v%d = v%d + %d\n local function f%d()\n", i, i - 1, i, i);
    put(&b, "  v0 = v0 + dt\n  return v30 + v15 + v1\n");
    for (int i = 30; i >= 1; i--)
        put(&b, " end\n v%d = v%d + f%d()\n", i - 1, i - 1, i);
    put(&b, " self.x = v0 * 1e-6; self.y = self.y + self.x\nend,\n"
            "on_hit = function(self, dmg) local g = function() return dmg end self.n = self.n + g() end }\n");
    agree_tiers("nested closures", b.p, 2);
    /* 3. 150 locals, closures over the highest registers, to-be-closed */
    b.n = 0;
    put(&b, "return {" FIELDS "update = function(self, dt, extra)\n");
    for (int i = 0; i < 150; i++)
        put(&b, " local a%d = %d\n", i, i);
    put(&b, " local c <close> = setmetatable({}, {__close = function() a149 = a149 + 1 end})\n"
            " local h = function() a148 = a148 + a149; return a148 + a0 end\n"
            " for i = 1, 3 do self.w1 = self.w1 + h() end\n"
            " for k, v in ipairs({a1, a2, a3}) do self.n = self.n + v * k end\n"
            " self.ok = a149 > 1000 or self.ok\nend,\n"
            "on_hit = function(self, dmg, sender, extra) self.n = self.n - dmg end }\n");
    agree_tiers("many locals and captures", b.p, 2);
    free(b.p);
}

/* Random natural-form scripts (fixed seed): expressions over fields,
 * locals, dt and constants; ifs, loops, local closures, early returns.
 * Each must scalarize and match the table tier bit for bit. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void expr(sbuf_t *b, int depth)
{
    static const char *const atoms[] = {"self.x", "self.y", "self.w2", "dt",     "l1",
                                        "l2",     "1.5",    "-0.25",   "self.w1"};
    if (depth == 0 || rnd(3) == 0) {
        put(b, "%s", atoms[rnd(9)]);
        return;
    }
    static const char *const ops[] = {"+", "-", "*"};
    put(b, "(");
    expr(b, depth - 1);
    put(b, " %s ", ops[rnd(3)]);
    expr(b, depth - 1);
    put(b, ")");
}

static void stmt(sbuf_t *b, int depth)
{
    static const char *const num_fields[] = {"self.x", "self.y", "self.w2", "l1", "l2"};
    switch (depth > 0 ? rnd(7) : rnd(3)) {
    case 0:
    case 1:
        put(b, " %s = ", num_fields[rnd(5)]);
        expr(b, 3);
        put(b, "\n");
        break;
    case 2:
        put(b, " self.n = self.n + %u; self.ok = self.n %% %u == 0\n", rnd(5), rnd(3) + 2);
        break;
    case 3:
        put(b, " if %s > %s then\n", num_fields[rnd(5)], num_fields[rnd(5)]);
        stmt(b, depth - 1);
        put(b, " else\n");
        stmt(b, depth - 1);
        put(b, " end\n");
        break;
    case 4:
        put(b, " for i = 1, %u do\n", rnd(3) + 1);
        stmt(b, depth - 1);
        put(b, " end\n");
        break;
    case 5:
        put(b, " do local function f(a) l1 = l1 + a return a * 0.5 end self.w1 = self.w1 + f(");
        expr(b, 2);
        put(b, ") end\n");
        break;
    default:
        put(b, " if self.n > %u then return end\n", rnd(40));
        break;
    }
}

static void test_natural_random_scripts_match_the_table_tier(void **state)
{
    (void)state;
    sbuf_t b = {malloc(4096), 0, 4096};
    assert_non_null(b.p);
    for (int k = 0; k < 24 / LJS_TEST_SCALE; k++) {
        b.n = 0;
        put(&b, "return {" FIELDS "update = function(self, dt)\n local l1, l2 = self.x * 0.5, 2.0\n");
        for (unsigned i = 0, n = rnd(8) + 2; i < n; i++)
            stmt(&b, 3);
        put(&b, " if self.x ~= self.x or math.abs(self.x) > 1e12 then self.x = 0.0 end\n"
                " if self.y ~= self.y or math.abs(self.y) > 1e12 then self.y = 0.0 end\n"
                " if self.w2 ~= self.w2 or math.abs(self.w2) > 1e12 then self.w2 = 0.0 end\n"
                "end,\non_hit = function(self, dmg)\n local l1, l2 = dmg, self.y\n");
        stmt(&b, 2);
        put(&b, "end }\n");
        char what[32];
        snprintf(what, sizeof what, "random script %d", k);
        agree_tiers(what, b.p, 2);
    }
    free(b.p);
}

/* The rewrite works on stripped bytecode (no line info, no local names)
 * and with the cache off (every worker compiles: same layout). */
static void test_natural_strip_and_no_cache(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        opt_strip = mode == 0;
        opt_no_cache = mode == 1;
        for (size_t c = 0; c < 4; c++)
            agree_tiers(cases[c].name, cases[c].src, cases[c].scalar);
    }
    opt_strip = opt_no_cache = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_natural_tiers_agree_for_1_2_4_8_workers),
        cmocka_unit_test(test_natural_scalarized_errors_name_file_line_and_field),
        cmocka_unit_test(test_natural_raising_call_changes_nothing),
        cmocka_unit_test(test_natural_set_and_untouched_fields),
        cmocka_unit_test(test_natural_hot_reload_reanalyses),
        cmocka_unit_test(test_natural_hostile_shapes_agree_with_the_table_tier),
        cmocka_unit_test(test_natural_random_scripts_match_the_table_tier),
        cmocka_unit_test(test_natural_strip_and_no_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
