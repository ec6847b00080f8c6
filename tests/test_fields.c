/* test_fields.c - entity, string and list fields: declaration, both update
 * forms, get/set, spawn fields, payloads, the host API, reload, snapshots,
 * determinism for any worker count, and the costs they promise (an
 * unchanged string read allocates nothing; string churn stays bounded). */
#include "tests/support.h"

#include "runtime/core.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    ljs_test_tmpdir(dir, sizeof dir, "fields");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ljs_test_rmtree(dir);
    return 0;
}

/* LJS_NATURAL for the runtimes a test makes: 1 (scalarized natural form
 * where provable) or 0 (the table tier everywhere). */
static uint32_t natural = 1;

static ljs_runtime_t *runtime(unsigned workers)
{
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.natural = natural;
    cfg.batch = 8;
    return ljs_test_runtime(&cfg);
}

static ljs_script_t load(ljs_runtime_t *rt, const char *name, const char *src)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    ljs_test_write(path, src);
    ljs_script_t s;
    if (ljs_script_load(rt, path, &s) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    return s;
}

static ljs_entity_t spawn(ljs_runtime_t *rt, ljs_script_t s)
{
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
    return e;
}

typedef struct find_s {
    const char *needle;
    int found;
    int print;
} find_t;

static void on_line(void *ud, const ljs_log_line_t *line)
{
    find_t *f = ud;
    f->found |= strstr(line->text, f->needle) != NULL;
    if (f->print)
        fprintf(stderr, "console: %s\n", line->text);
}

/* 1 if a console line since the last call contains `needle`. */
static int logged(ljs_runtime_t *rt, const char *needle)
{
    find_t f = {needle, 0, 0};
    ljs_console_drain(rt, on_line, &f);
    return f.found;
}

/* ---- entity fields ---------------------------------------------------------- */

static const char *hunter_src =
    "return { fields = { target = ljs.entity, seen = 0, lost = false },\n"
    "  update = function(self, dt)\n"
    "    if self.target then self.seen = self.seen + 1 else self.lost = true end\n"
    "  end }\n";

static void test_fields_entity_reads_nil_once_its_target_dies(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t h = load(rt, "hunter", hunter_src);
    ljs_entity_t a = spawn(rt, h), prey;
    assert_int_equal(ljs_entity_create(rt, &prey), LJS_OK);
    ljs_entity_t got = {1};
    assert_int_equal(ljs_field_get_entity(rt, a, "target", &got), LJS_OK);
    assert_true(got.id == 0); /* the default: no entity */
    assert_int_equal(ljs_field_set_entity(rt, a, "target", prey), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    int64_t seen = 0;
    assert_int_equal(ljs_field_get_integer(rt, a, "seen", &seen), LJS_OK);
    assert_int_equal(seen, 1);
    assert_int_equal(ljs_field_get_entity(rt, a, "target", &got), LJS_OK);
    assert_true(got.id == prey.id);
    /* Destroyed, and its slot reused by a new entity: the reference must
     * not follow the slot. */
    assert_int_equal(ljs_entity_destroy(rt, prey), LJS_OK);
    ljs_entity_t reuse;
    assert_int_equal(ljs_entity_create(rt, &reuse), LJS_OK);
    assert_int_equal(LJS_ENTITY_INDEX(reuse.id), LJS_ENTITY_INDEX(prey.id));
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    int lost = 0;
    assert_int_equal(ljs_field_get_boolean(rt, a, "lost", &lost), LJS_OK);
    assert_true(lost);
    assert_int_equal(ljs_field_get_entity(rt, a, "target", &got), LJS_OK);
    assert_true(got.id == 0);
    /* Host writes: a dead target is refused, {0} clears, types checked. */
    assert_int_equal(ljs_field_set_entity(rt, a, "target", prey), LJS_ENOENT);
    assert_int_equal(ljs_field_set_entity(rt, a, "target", (ljs_entity_t){0}), LJS_OK);
    assert_int_equal(ljs_field_set_integer(rt, a, "target", 5), LJS_ETYPE);
    assert_int_equal(ljs_field_get_number(rt, a, "target", &(double){0}), LJS_ETYPE);
    assert_int_equal(ljs_field_set_entity(rt, a, "seen", reuse), LJS_ETYPE);
    ljs_runtime_destroy(rt);
}

static void test_fields_entity_writes_are_type_checked(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(1);
    ljs_script_t s = load(rt, "aim",
                          "return { fields = { target = ljs.entity, mode = 0 },\n"
                          "  update = function(self, dt)\n"
                          "    if self.mode == 0 then self.target = self.id\n"
                          "    elseif self.mode == 1 then self.target = 42\n"
                          "    elseif self.mode == 2 then self.target = 'x'\n"
                          "    elseif self.mode == 3 then self.target = -5\n"
                          "    elseif self.mode == 4 then self.target = nil end\n"
                          "  end }\n");
    ljs_entity_t e = spawn(rt, s);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    ljs_entity_t got;
    assert_int_equal(ljs_field_get_entity(rt, e, "target", &got), LJS_OK);
    assert_true(got.id == e.id);
    static const char *const expect[] = {"42 (not an entity id)", "expects an entity id or nil, got string",
                                         "-5 (not an entity id)"};
    for (int mode = 1; mode <= 3; mode++) {
        assert_int_equal(ljs_field_set_integer(rt, e, "mode", mode), LJS_OK);
        (void)logged(rt, "");
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        if (!logged(rt, expect[mode - 1]))
            fail_msg("mode %d: no '%s' error", mode, expect[mode - 1]);
        assert_int_equal(ljs_field_get_entity(rt, e, "target", &got), LJS_OK);
        assert_true(got.id == e.id); /* a failing call changes nothing */
    }
    assert_int_equal(ljs_field_set_integer(rt, e, "mode", 4), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_field_get_entity(rt, e, "target", &got), LJS_OK);
    assert_true(got.id == 0); /* natural form: nil clears */
    ljs_runtime_destroy(rt);
}

/* ---- string fields -------------------------------------------------------------- */

static void test_fields_string_state_machine_and_nul_bytes(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t s = load(rt, "fsm",
                          "return { fields = { state = 'idle', t = 0 },\n"
                          "  update = function(self, dt)\n"
                          "    self.t = self.t + 1\n"
                          "    if self.state == 'idle' then self.state = 'chase'\n"
                          "    elseif self.state == 'chase' then self.state = 'a\\0b' end\n"
                          "  end }\n");
    ljs_entity_t e = spawn(rt, s);
    const char *p;
    size_t len;
    assert_int_equal(ljs_field_get_string(rt, e, "state", &p, &len), LJS_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(p, "idle", 4);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_field_get_string(rt, e, "state", &p, &len), LJS_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "chase", 5);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_field_get_string(rt, e, "state", &p, &len), LJS_OK);
    assert_int_equal(len, 3); /* carried whole, NUL included */
    assert_memory_equal(p, "a\0b", 3);
    /* Host writes with NULs; too long is refused with nothing changed. */
    assert_int_equal(ljs_field_set_string(rt, e, "state", "x\0y\0", 4), LJS_OK);
    assert_int_equal(ljs_field_get_string(rt, e, "state", &p, &len), LJS_OK);
    assert_int_equal(len, 4);
    static char big[LJS_STRING_MAX + 1];
    memset(big, 'z', sizeof big);
    assert_int_equal(ljs_field_set_string(rt, e, "state", big, sizeof big), LJS_EINVAL);
    assert_non_null(strstr(ljs_last_error(), "LJS_STRING_MAX"));
    assert_int_equal(ljs_field_set_string(rt, e, "state", big, LJS_STRING_MAX), LJS_OK);
    assert_int_equal(ljs_field_set_string(rt, e, "t", "1", 1), LJS_ETYPE);
    ljs_runtime_destroy(rt);
}

static void test_fields_string_too_long_from_a_script_is_a_clear_error(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(1);
    ljs_script_t s =
        load(rt, "long",
             "return { fields = { name = 'a' },\n"
             "  update = function(self, dt) self.name = string.rep('y', ljs.STRING_MAX + 1) end }\n");
    ljs_entity_t e = spawn(rt, s);
    (void)logged(rt, "");
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_true(logged(rt, "at most LJS_STRING_MAX = 4096"));
    const char *p;
    size_t len;
    assert_int_equal(ljs_field_get_string(rt, e, "name", &p, &len), LJS_OK);
    assert_int_equal(len, 1);
    ljs_runtime_destroy(rt);
}

static void test_fields_equal_strings_are_stored_once(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(4);
    ljs_script_t s = load(rt, "same",
                          "return { fields = { state = 'idle' },\n"
                          "  update = function(self, dt) self.state = 'state-' .. (self.id % 3) end }\n");
    ljs_entity_t e[64];
    for (int i = 0; i < 64; i++)
        e[i] = spawn(rt, s);
    for (int f = 0; f < 3; f++)
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    /* 'idle' (a default) and three distinct strings, whatever the
     * interleaving of four workers interning them. */
    assert_true(atomic_load(&rt->world.strings.count) <= 4);
    const char *p0, *p1;
    size_t n0, n1;
    for (int i = 3; i < 64; i++) {
        assert_int_equal(ljs_field_get_string(rt, e[i], "state", &p0, &n0), LJS_OK);
        assert_int_equal(ljs_field_get_string(rt, e[i - 3], "state", &p1, &n1), LJS_OK);
        if (LJS_ENTITY_INDEX(e[i].id) % 3 == LJS_ENTITY_INDEX(e[i - 3].id) % 3)
            assert_ptr_equal(p0, p1); /* one copy */
    }
    ljs_runtime_destroy(rt);
}

/* Reading (and writing back) an unchanged string field allocates nothing
 * in the worker's Lua state, in both update forms. */
static void test_fields_unchanged_string_reads_do_not_allocate(void **state)
{
    (void)state;
    static const char *const srcs[] = {
        "return { fields = { state = 'patrol', n = 0 },\n"
        "  update = function(self, dt) if self.state == 'patrol' then self.n = self.n + 1 end end }\n",
        "return { fields = { state = 'patrol', n = 0 }, reads = { 'state', 'n' }, writes = { 'state', 'n' },\n"
        "  update = function(e, dt, state, n) if state == 'patrol' then n = n + 1 end return state, n end }\n",
    };
    for (int k = 0; k < 2; k++) {
        ljs_config_t cfg = ljs_test_config();
        cfg.workers = 1;
        ljs_runtime_t *rt = ljs_test_runtime(&cfg);
        ljs_script_t s = load(rt, k ? "fastread" : "natread", srcs[k]);
        for (int i = 0; i < 300; i++)
            (void)spawn(rt, s);
        for (int f = 0; f < 5; f++)
            assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        uint64_t a0 = atomic_load(&rt->workers[0].alloc.allocated);
        for (int f = 0; f < 20; f++)
            assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        uint64_t a1 = atomic_load(&rt->workers[0].alloc.allocated);
        if (a1 != a0)
            fail_msg("form %d: %llu bytes allocated in 20 frames of unchanged string reads", k,
                     (unsigned long long)(a1 - a0));
        ljs_runtime_destroy(rt);
    }
}

/* A million distinct strings over the frames: the store is swept and its
 * size stays bounded by what is live. */
static void test_fields_string_churn_stays_bounded(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t s = load(
        rt, "churn",
        "return { fields = { name = '', k = 0 },\n"
        "  update = function(self, dt) self.k = self.k + 1; self.name = self.id .. ':' .. self.k end }\n");
    for (int i = 0; i < 1000; i++)
        (void)spawn(rt, s);
    int frames = 1000 / LJS_TEST_SCALE;
    size_t most = 0;
    for (int f = 0; f < frames; f++) {
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        size_t n = atomic_load(&rt->world.strings.count);
        most = n > most ? n : most;
    }
    /* 1000 live, at most ~2x plus the sweep slack plus one frame's worth. */
    if (most > 2 * 1000 + 4096 + 1000 + 16)
        fail_msg("string store grew to %zu strings", most);
    assert_true(rt->world.strings.sweeps > 0 || frames < 10);
    ljs_runtime_destroy(rt);
}

/* ---- list fields ------------------------------------------------------------------ */

static const char *path_src =
    "return { fields = { pts = ljs.list('number', 4), names = ljs.list('string', 3), sum = 0.0, n = 0,\n"
    "                    mode = 0, err = '' },\n"
    "  update = function(self, dt)\n"
    "    local s = 0\n"
    "    for i, v in ipairs(self.pts) do s = s + v end\n"
    "    self.sum = s; self.n = #self.pts\n"
    "    if self.mode == 1 then self.pts = { 1.5, 2.5, 3 }\n"
    "    elseif self.mode == 2 then self.pts = { 1, 2, 3, 4, 5 }\n"
    "    elseif self.mode == 3 then self.pts = { 1, 'two' }\n"
    "    elseif self.mode == 4 then self.pts[1] = 9\n"
    "    elseif self.mode == 5 then self.names = { 'a', 'b\\0c' }\n"
    "    elseif self.mode == 6 then kept = self.pts end\n"
    "  end }\n";

static void test_fields_list_views_and_assignment(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t s = load(rt, "path", path_src);
    ljs_entity_t e = spawn(rt, s);
    size_t len = 9;
    assert_int_equal(ljs_field_get_list(rt, e, "pts", NULL, 0, &len), LJS_OK);
    assert_int_equal(len, 0);
    assert_int_equal(ljs_field_set_integer(rt, e, "mode", 1), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    double sum;
    int64_t n;
    assert_int_equal(ljs_field_get_number(rt, e, "sum", &sum), LJS_OK);
    assert_int_equal(ljs_field_get_integer(rt, e, "n", &n), LJS_OK);
    assert_true(sum == 7.0);
    assert_int_equal(n, 3);
    ljs_value_t v[4];
    assert_int_equal(ljs_field_get_list(rt, e, "pts", v, 4, &len), LJS_OK);
    assert_int_equal(len, 3);
    assert_int_equal(v[0].type, LJS_TNUMBER);
    assert_true(v[0].v.n == 1.5 && v[2].v.n == 3.0);
    static const struct {
        int mode;
        const char *expect;
    } bad[] = {
        {2, "holds at most 4 elements (got 5)"},
        {3, "element 2 is string"},
        {4, "is read-only"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(ljs_field_set_integer(rt, e, "mode", bad[k].mode), LJS_OK);
        (void)logged(rt, "");
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        if (!logged(rt, bad[k].expect))
            fail_msg("mode %d: no '%s' error", bad[k].mode, bad[k].expect);
        assert_int_equal(ljs_field_get_list(rt, e, "pts", v, 4, &len), LJS_OK);
        assert_int_equal(len, 3); /* unchanged */
    }
    assert_int_equal(ljs_field_set_integer(rt, e, "mode", 5), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_field_get_list(rt, e, "names", v, 3, &len), LJS_OK);
    assert_int_equal(len, 2);
    assert_int_equal(v[1].type, LJS_TSTRING);
    assert_int_equal(v[1].v.s.len, 3);
    assert_memory_equal(v[1].v.s.p, "b\0c", 3);
    /* Host writes: checked like a script's. */
    ljs_value_t in[5] = {{LJS_TINTEGER, {.i = 2}}, {LJS_TNUMBER, {.n = 0.5}}};
    assert_int_equal(ljs_field_set_list(rt, e, "pts", in, 2), LJS_OK);
    assert_int_equal(ljs_field_set_list(rt, e, "pts", in, 5), LJS_EINVAL);
    assert_int_equal(ljs_field_set_list(rt, e, "names", in, 1), LJS_ETYPE);
    assert_int_equal(ljs_field_get_list(rt, e, "pts", v, 4, &len), LJS_OK);
    assert_int_equal(len, 2);
    assert_true(v[0].v.n == 2.0);
    ljs_runtime_destroy(rt);
}

/* A view kept in a global and used later (another frame, another entity)
 * raises; it never reads the memory of whatever is there now. */
static void test_fields_list_view_kept_past_its_call_raises(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(1);
    ljs_script_t s = load(rt, "keep",
                          "local kept\n"
                          "return { fields = { pts = ljs.list('integer', 4), first = true, out = 0 },\n"
                          "  update = function(self, dt)\n"
                          "    if self.first then self.pts = { 7, 8 }; self.first = false\n"
                          "    elseif kept == nil then kept = self.pts\n"
                          "    else self.out = #kept end\n"
                          "  end,\n"
                          "  on_peek = function(self) self.out = kept[1] end }\n");
    ljs_entity_t a = spawn(rt, s);
    for (int f = 0; f < 2; f++)
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    (void)logged(rt, "");
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK); /* next frame: kept is stale */
    assert_true(logged(rt, "used after the call that read it ended"));
    ljs_entity_t b = spawn(rt, s);
    (void)b;
    ljs_kv_t none = {NULL, LJS_TNIL, {0}};
    assert_int_equal(ljs_send(rt, a, "peek", &none, 1), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    int64_t out = -1;
    assert_int_equal(ljs_field_get_integer(rt, a, "out", &out), LJS_OK);
    assert_int_equal(out, 0); /* every use raised */
    ljs_runtime_destroy(rt);
}

/* ---- everything together: get, events, spawn, fast form, reload, snapshots,
 * determinism ---------------------------------------------------------------------- */

static const char *mix_src =
    "return { fields = { state = 'idle', target = ljs.entity, trail = ljs.list('entity', 4),\n"
    "                    tags = ljs.list('string', 3), x = 0.0, hits = 0 }, tags = { 'mix' },\n"
    "  update = function(self, dt)\n"
    "    local r = rand(self)\n"
    "    if self.state == 'idle' then\n"
    "      local q = query('mix')\n"
    "      local t = q[rand(self, 1, #q)]\n"
    "      if t ~= self.id then self.target = t; self.state = 'chase' end\n"
    "    elseif self.state == 'chase' then\n"
    "      if not self.target then self.state = 'idle'\n"
    "      else\n"
    "        local tx = get(self.target, 'x') or 0\n"
    "        self.x = self.x + (tx - self.x) * 0.1 + r\n"
    "        local st = get(self.target, 'state')\n"
    "        local tr = get(self.target, 'trail')\n"
    "        local t = { self.target }\n"
    "        for i = 1, math.min(#tr, 3) do t[#t + 1] = tr[i] end\n"
    "        self.trail = t\n"
    "        self.tags = { st, 'seen' .. #tr }\n"
    "        if r < 0.2 then send(self.target, 'hit', self.tags) end\n"
    "        if r < 0.05 then destroy(self.target) end\n"
    "        if r > 0.97 then spawn('mix', { state = 'chase', target = self.id, x = self.x,\n"
    "                                        trail = { self.id, self.target }, tags = { 'born', st } }) end\n"
    "      end\n"
    "    end\n"
    "  end,\n"
    "  on_hit = function(self, p, sender) self.hits = self.hits + #p; self.state = p[1] or 'idle' end }\n";

static ljs_runtime_t *mix_world(unsigned workers, int frames, ljs_script_t *s)
{
    ljs_runtime_t *rt = runtime(workers);
    *s = load(rt, "mix", mix_src);
    for (int i = 0; i < 150; i++)
        (void)spawn(rt, *s);
    for (int f = 0; f < frames; f++)
        assert_int_equal(ljs_frame(rt, 1.0 / 60), LJS_OK);
    return rt;
}

static void test_fields_new_types_are_deterministic_for_any_worker_count(void **state)
{
    (void)state;
    uint64_t want = 0;
    for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
        ljs_script_t s;
        ljs_runtime_t *rt = mix_world(ljs_test_worker_counts[k], 40, &s);
        uint64_t d = ljs_world_digest(rt);
        if (k == 0)
            want = d;
        else if (d != want)
            fail_msg("%u workers: digest %016llx, 1 worker %016llx", ljs_test_worker_counts[k],
                     (unsigned long long)d, (unsigned long long)want);
        ljs_stats_t st;
        assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
        if (st.script_errors != 0) {
            find_t f = {"", 0, 1};
            ljs_console_drain(rt, on_line, &f);
            fail_msg("script errors");
        }
        ljs_runtime_destroy(rt);
    }
}

static void test_fields_new_types_snapshot_and_step_on_identically(void **state)
{
    (void)state;
    ljs_script_t s;
    ljs_runtime_t *a = mix_world(2, 25, &s);
    void *data;
    size_t len;
    assert_int_equal(ljs_world_save(a, &data, &len), LJS_OK);
    ljs_runtime_t *b = runtime(4);
    (void)load(b, "mix", mix_src);
    if (ljs_world_load(b, data, len) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    assert_true(ljs_world_digest(a) == ljs_world_digest(b));
    for (int f = 0; f < 20; f++) {
        assert_int_equal(ljs_frame(a, 1.0 / 60), LJS_OK);
        assert_int_equal(ljs_frame(b, 1.0 / 60), LJS_OK);
        if (ljs_world_digest(a) != ljs_world_digest(b))
            fail_msg("frame %d after the load: digests differ", f + 1);
    }
    /* The JSON report names every field's type and counts the strings. */
    char path[128];
    snprintf(path, sizeof path, "%s/report.json", dir);
    FILE *rf = fopen(path, "w+");
    assert_non_null(rf);
    assert_int_equal(ljs_report_json(b, rf), LJS_OK);
    rewind(rf);
    static char text[1 << 16];
    size_t nr = fread(text, 1, sizeof text - 1, rf);
    text[nr] = '\0';
    fclose(rf);
    assert_non_null(strstr(text, "{\"name\":\"trail\",\"type\":\"list of entity (max 4)\"}"));
    assert_non_null(strstr(text, "{\"name\":\"target\",\"type\":\"entity\"}"));
    assert_non_null(strstr(text, "\"strings\":{\"count\":"));
    /* A runtime whose field has another type refuses it, naming both. */
    ljs_runtime_t *c = runtime(1);
    (void)load(c, "other", "return { fields = { trail = ljs.list('entity', 8) } }\n");
    (void)load(c, "mix", "return { fields = { state = 'idle' } }\n");
    assert_int_equal(ljs_world_load(c, data, len), LJS_ETYPE);
    assert_non_null(
        strstr(ljs_last_error(), "list of entity (max 4) in the snapshot but list of entity (max 8)"));
    ljs_world_free(data);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
    ljs_runtime_destroy(c);
}

static void test_fields_reload_refuses_a_type_change_naming_both_types(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(1);
    ljs_script_t s = load(rt, "re", "return { fields = { mood = 'calm', who = ljs.entity } }\n");
    ljs_entity_t e = spawn(rt, s);
    char path[128];
    snprintf(path, sizeof path, "%s/re.lua", dir);
    ljs_test_write(path, "return { fields = { mood = 3, who = ljs.entity } }\n");
    assert_int_equal(ljs_script_reload(rt, s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "'mood' is declared as integer here but as string elsewhere"));
    /* on_reload sees the new types' defaults for new fields. */
    ljs_test_write(path,
                   "return { fields = { mood = 'calm', who = ljs.entity, path = ljs.list('number', 2),\n"
                   "  note = 'n' },\n"
                   "  on_reload = function(self) self.note = self.mood .. #self.path end }\n");
    if (ljs_script_reload(rt, s) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    const char *p;
    size_t len;
    assert_int_equal(ljs_field_get_string(rt, e, "note", &p, &len), LJS_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "calm0", 5);
    ljs_runtime_destroy(rt);
}

static void test_fields_fast_form_and_host_declared_new_types(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    assert_int_equal(ljs_field_declare(rt, "label", LJS_TSTRING), LJS_OK);
    assert_int_equal(ljs_field_declare(rt, "label", LJS_TENTITY), LJS_ETYPE);
    assert_non_null(strstr(ljs_last_error(), "declared as string; it cannot become entity"));
    assert_int_equal(ljs_field_declare_list(rt, "hist", LJS_TINTEGER, 3), LJS_OK);
    assert_int_equal(ljs_field_declare_list(rt, "hist", LJS_TINTEGER, 4), LJS_ETYPE);
    assert_int_equal(ljs_field_declare_list(rt, "bad", LJS_TLIST, 4), LJS_EINVAL);
    assert_int_equal(ljs_field_declare_list(rt, "bad", LJS_TNUMBER, LJS_LIST_MAX + 1), LJS_EINVAL);
    ljs_script_t s =
        load(rt, "fast",
             "return { fields = { label = 'a', hist = ljs.list('integer', 3), boss = ljs.entity },\n"
             "  reads = { 'label', 'hist', 'boss' }, writes = { 'label', 'hist' },\n"
             "  update = function(e, dt, label, hist, boss)\n"
             "    local h = { #hist + 1 }\n"
             "    for i = 1, math.min(#hist, 2) do h[#h + 1] = hist[i] end\n"
             "    return label .. (boss and 'B' or '-'), h\n"
             "  end }\n");
    ljs_entity_t e = spawn(rt, s), boss;
    assert_int_equal(ljs_entity_create(rt, &boss), LJS_OK);
    assert_int_equal(ljs_field_set_entity(rt, e, "boss", boss), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_entity_destroy(rt, boss), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    const char *p;
    size_t len;
    assert_int_equal(ljs_field_get_string(rt, e, "label", &p, &len), LJS_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(p, "aB--", 4);
    ljs_value_t v[3];
    assert_int_equal(ljs_field_get_list(rt, e, "hist", v, 3, &len), LJS_OK);
    assert_int_equal(len, 3);
    assert_int_equal(v[0].v.i, 3);
    assert_int_equal(v[1].v.i, 2);
    assert_int_equal(v[2].v.i, 1);
    ljs_runtime_destroy(rt);
}

/* ljs_world_save_file streams the body through a small buffer: the file
 * must be byte for byte the in-memory save, for a world several buffers
 * long with strings crossing buffer boundaries. */
static void test_fields_streamed_save_file_equals_the_in_memory_save(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t s =
        load(rt, "big", "return { fields = { name = 'n', x = 0.5, l = ljs.list('string', 3) } }\n");
    char name[200];
    for (int i = 0; i < 30000; i++) { /* x alone is 270 KB: crosses a buffer too */
        ljs_entity_t e = spawn(rt, s);
        if (i % 10 != 0)
            continue;
        int n = snprintf(name, sizeof name, "%0*d", 37 + i % 150, i);
        assert_int_equal(ljs_field_set_string(rt, e, "name", name, (size_t)n), LJS_OK);
        ljs_value_t v[2] = {{LJS_TSTRING, {.s = {name, (size_t)n}}}, {LJS_TSTRING, {.s = {"", 0}}}};
        assert_int_equal(ljs_field_set_list(rt, e, "l", v, 2), LJS_OK);
    }
    void *data;
    size_t len;
    assert_int_equal(ljs_world_save(rt, &data, &len), LJS_OK);
    assert_true(len > 2 * 256 * 1024);
    char path[128];
    snprintf(path, sizeof path, "%s/world.bin", dir);
    assert_int_equal(ljs_world_save_file(rt, path), LJS_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *file = malloc(len + 1);
    assert_non_null(file);
    assert_int_equal(fread(file, 1, len + 1, f), len);
    fclose(f);
    assert_memory_equal(file, data, len);
    free(file);
    assert_int_equal(ljs_world_load_file(rt, path), LJS_OK);
    ljs_world_free(data);
    ljs_runtime_destroy(rt);
}

/* set() writes another script's string, entity and list fields of the
 * calling entity, landed when the call returns. */
static void test_fields_set_writes_new_types_of_another_script(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t owner = load(rt, "owner",
                              "return { fields = { label = '', pal = ljs.entity, "
                              "hist = ljs.list('string', 2) } }\n");
    ljs_script_t writer = load(rt, "writer",
                               "return { fields = { n = 0 },\n"
                               "  update = function(self, dt) self.n = self.n + 1\n"
                               "    set(self.id, 'label', 'L' .. self.n); set(self.id, 'pal', self.id)\n"
                               "    set(self.id, 'hist', { 'a', get(self.id, 'label') }) end }\n");
    ljs_entity_t e = spawn(rt, owner);
    assert_int_equal(ljs_script_attach(rt, e, writer), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    const char *p;
    size_t len;
    assert_int_equal(ljs_field_get_string(rt, e, "label", &p, &len), LJS_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "L2", 2);
    ljs_entity_t pal;
    assert_int_equal(ljs_field_get_entity(rt, e, "pal", &pal), LJS_OK);
    assert_true(pal.id == e.id);
    ljs_value_t v[2];
    assert_int_equal(ljs_field_get_list(rt, e, "hist", v, 2, &len), LJS_OK);
    assert_int_equal(len, 2);
    assert_int_equal(v[1].v.s.len, 2); /* the label as the call saw it: "L1" */
    assert_memory_equal(v[1].v.s.p, "L1", 2);
    ljs_runtime_destroy(rt);
}

/* An entity list keeps its length when an element's target dies: that
 * element reads false (so # and ipairs stay whole), the host reads 0. */
static void test_fields_entity_list_elements_read_false_once_dead(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t s =
        load(rt, "crew",
             "return { fields = { crew = ljs.list('entity', 3), n = 0, live = 0, dead = 0 },\n"
             "  update = function(self, dt)\n"
             "    local live, dead = 0, 0\n"
             "    for _, m in ipairs(self.crew) do if m then live = live + 1 else dead = dead + 1 end end\n"
             "    self.n, self.live, self.dead = #self.crew, live, dead\n"
             "  end }\n");
    ljs_entity_t e = spawn(rt, s), a, b;
    assert_int_equal(ljs_entity_create(rt, &a), LJS_OK);
    assert_int_equal(ljs_entity_create(rt, &b), LJS_OK);
    ljs_value_t in[3] = {{LJS_TENTITY, {.e = a.id}}, {LJS_TENTITY, {.e = b.id}}, {LJS_TENTITY, {.e = 0}}};
    assert_int_equal(ljs_field_set_list(rt, e, "crew", in, 3), LJS_OK);
    assert_int_equal(ljs_entity_destroy(rt, b), LJS_OK);
    in[0].v.e = b.id; /* the host may not store a dead target */
    assert_int_equal(ljs_field_set_list(rt, e, "crew", in, 1), LJS_ENOENT);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    int64_t n = 0, live = 0, dead = 0;
    assert_int_equal(ljs_field_get_integer(rt, e, "n", &n), LJS_OK);
    assert_int_equal(ljs_field_get_integer(rt, e, "live", &live), LJS_OK);
    assert_int_equal(ljs_field_get_integer(rt, e, "dead", &dead), LJS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(live, 1);
    assert_int_equal(dead, 2);
    ljs_value_t v[3];
    size_t len;
    assert_int_equal(ljs_field_get_list(rt, e, "crew", v, 3, &len), LJS_OK);
    assert_int_equal(len, 3);
    assert_true(v[0].type == LJS_TENTITY && v[0].v.e == a.id && v[1].v.e == 0 && v[2].v.e == 0);
    ljs_runtime_destroy(rt);
}

/* ---- spawn sets list fields ----------------------------------------------------- */

static const char *nest_src =
    "return { fields = { nums = ljs.list('number', 4), ids = ljs.list('integer', 3),\n"
    "                    flags = ljs.list('boolean', 2), names = ljs.list('string', 3),\n"
    "                    kin = ljs.list('entity', 2), hp = 0, role = '' },\n"
    "  update = function(self, dt)\n"
    "    if self.role ~= 'parent' then return end\n"
    "    self.role = 'done'\n"
    "    spawn('nest', { role = 'a', nums = { 1.5, 2, -3 }, ids = { 7, 8 }, flags = { true, false },\n"
    "                    names = { 'x\\0y', '' }, kin = { self.id, 0 }, hp = 9 })\n"
    "    spawn('nest', { role = 'b', nums = {}, names = { 'only' } })\n"
    "    local mine = { role = 'e', ids = self.ids }  -- a list view (set by the host) travels as its elements\n"
    "    spawn('nest', mine)\n"
    "    assert(type(mine.ids) == 'userdata', 'spawn changed the script table')\n"
    "    -- refused field by field, each named; the other fields still apply\n"
    "    spawn('nest', { role = 'c', hp = 3, nums = { 1, 2, 3, 4, 5 }, ids = { 1, 2.5 }, kin = { 5 },\n"
    "                    flags = { 1 }, names = { 42 } })\n"
    "    spawn('nest', { role = 'd', hp = { 1 } })\n"
    "  end }\n";

/* Append a console line to the buffer (64 KiB) ud. */
static void on_line_append(void *ud, const ljs_log_line_t *line)
{
    char *all = ud;
    size_t used = strlen(all);
    snprintf(all + used, (1 << 16) - used, "%s\n", line->text);
}

/* The spawned entity whose role field is `role`. */
static ljs_entity_t find_role(ljs_runtime_t *rt, const char *role)
{
    for (uint64_t slot = 0; slot < 64; slot++) {
        for (uint64_t gen = 0; gen < 4; gen++) {
            ljs_entity_t e = {gen << 32 | slot};
            const char *p;
            size_t n;
            if (ljs_entity_alive(rt, e) && ljs_field_get_string(rt, e, "role", &p, &n) == LJS_OK &&
                n == strlen(role) && memcmp(p, role, n) == 0)
                return e;
        }
    }
    fail_msg("no entity with role '%s'", role);
    return (ljs_entity_t){0};
}

static void test_fields_spawn_sets_list_fields(void **state)
{
    (void)state;
    for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
        ljs_runtime_t *rt = runtime(ljs_test_worker_counts[k]);
        ljs_script_t s = load(rt, "nest", nest_src);
        ljs_entity_t parent = spawn(rt, s);
        assert_int_equal(ljs_field_set_string(rt, parent, "role", "parent", 6), LJS_OK);
        ljs_value_t ids[3] = {{LJS_TINTEGER, {.i = 4}}, {LJS_TINTEGER, {.i = 5}}, {LJS_TINTEGER, {.i = 6}}};
        assert_int_equal(ljs_field_set_list(rt, parent, "ids", ids, 3), LJS_OK);
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        if (ljs_entity_count(rt) != 6) {
            find_t f = {"", 0, 1};
            ljs_console_drain(rt, on_line, &f);
        }
        assert_int_equal(ljs_entity_count(rt), 6);
        ljs_value_t v[4];
        size_t n;
        ljs_entity_t a = find_role(rt, "a");
        assert_int_equal(ljs_field_get_list(rt, a, "nums", v, 4, &n), LJS_OK);
        assert_true(n == 3 && v[0].v.n == 1.5 && v[1].v.n == 2.0 && v[2].v.n == -3.0);
        assert_int_equal(ljs_field_get_list(rt, a, "ids", v, 4, &n), LJS_OK);
        assert_true(n == 2 && v[0].v.i == 7 && v[1].v.i == 8);
        assert_int_equal(ljs_field_get_list(rt, a, "flags", v, 4, &n), LJS_OK);
        assert_true(n == 2 && v[0].v.b && !v[1].v.b);
        assert_int_equal(ljs_field_get_list(rt, a, "names", v, 4, &n), LJS_OK);
        assert_true(n == 2 && v[0].v.s.len == 3 && memcmp(v[0].v.s.p, "x\0y", 3) == 0 && v[1].v.s.len == 0);
        assert_int_equal(ljs_field_get_list(rt, a, "kin", v, 4, &n), LJS_OK);
        assert_true(n == 2 && v[0].v.e == parent.id && v[1].v.e == 0);
        int64_t hp;
        assert_int_equal(ljs_field_get_integer(rt, a, "hp", &hp), LJS_OK);
        assert_int_equal(hp, 9);
        ljs_entity_t b = find_role(rt, "b");
        assert_int_equal(ljs_field_get_list(rt, b, "nums", v, 4, &n), LJS_OK);
        assert_int_equal(n, 0);
        assert_int_equal(ljs_field_get_list(rt, b, "names", v, 4, &n), LJS_OK);
        assert_true(n == 1 && v[0].v.s.len == 4);
        /* c: every list refused and named, its defaults kept; hp applied. */
        ljs_entity_t c = find_role(rt, "c");
        assert_int_equal(ljs_field_get_integer(rt, c, "hp", &hp), LJS_OK);
        assert_int_equal(hp, 3);
        static const char *const names[] = {"nums", "ids", "kin", "flags", "names"};
        for (size_t i = 0; i < 5; i++) {
            assert_int_equal(ljs_field_get_list(rt, c, names[i], v, 4, &n), LJS_OK);
            assert_int_equal(n, 0);
        }
        ljs_entity_t e5 = find_role(rt, "e");
        assert_int_equal(ljs_field_get_list(rt, e5, "ids", v, 4, &n), LJS_OK);
        assert_true(n == 3 && v[0].v.i == 4 && v[2].v.i == 6);
        ljs_entity_t d = find_role(rt, "d");
        assert_int_equal(ljs_field_get_integer(rt, d, "hp", &hp), LJS_OK);
        assert_int_equal(hp, 0);
        static const char *const said[] = {
            "field 'nums' ignored (5 elements, the list holds at most 4)",
            "field 'ids' ignored (element 2: wrong type for a list of integer)",
            "field 'kin' ignored (element 1: not an entity id for a list of entity)",
            "field 'flags' ignored (element 1: wrong type for a list of boolean)",
            "field 'names' ignored (element 1: wrong type for a list of string)",
            "field 'hp' ignored (a table for a field that is not a list)",
        };
        char *all = calloc(1, 1 << 16);
        assert_non_null(all);
        ljs_console_drain(rt, on_line_append, all);
        for (size_t i = 0; i < sizeof said / sizeof said[0]; i++)
            if (strstr(all, said[i]) == NULL)
                fail_msg("no console line says \"%s\"; it has:\n%s", said[i], all);
        free(all);
        ljs_runtime_destroy(rt);
    }
}

/* ---- hostile scripts ------------------------------------------------------------ */

/* Each case runs once in a call of its own; the error names what is wrong
 * and the entity's fields are unchanged. */
static void test_fields_hostile_values_are_refused_clearly(void **state)
{
    (void)state;
    static const struct {
        const char *code, *expect;
    } cases[] = {
        {"self.name = string.rep('x', 4 * 1024 * 1024)", "at most LJS_STRING_MAX"},
        {"self.name = ljs.entity", "expects string, got userdata"},
        {"self.who = ljs.list('number', 2)", "expects an entity id or nil, got userdata"},
        {"self.who = 2^40", "got a float (entity ids are integers)"},
        {"self.who = math.mininteger", "not an entity id"},
        {"ljs.entity = 5", "read-only"},
        {"self.ids = { self.id, 'x' }", "element 2 is string"},
        {"self.ids = { 7 }", "element 1 is 7, not an entity id"},
        {"self.nums = self.ids", "element 2 is boolean"},
        {"self.nums = { 1, nil, 3 }", "element 2 is nil"},
        {"self.nums = setmetatable({}, { __len = function() return 1e9 end })", ""},
        {"send(self.id, 'x', { self.nums })", "bad payload"},
        {"send(self.id, 'x', { a = { 1 } })", "event payload tables must be flat"},
        {"spawn('hostile', { nums = { 1, nil, 3 } })", "field 'nums' must be a list"},
        {"spawn('hostile', { nums = { n = 1 } })", "field 'nums' must be a list"},
        {"local t = {} for i = 1, 1025 do t[i] = i end spawn('hostile', { nums = t })", "at most 1024"},
        {"spawn('hostile', { nums = { {} } })", "field 'nums' must be a list"},
        {"local t = { ids = self.ids } for i = 1, 300 do t['k' .. i] = i end spawn('hostile', t)",
         "more than 256 entries"},
        {"spawn('hostile', { nums = setmetatable({}, { __len = function() return 3 end }) })", ""},
        {"ljs.list('table', 2)", "element type 'table'"},
        {"ljs.list('number', 5000)", "maxlen 5000"},
        {"self.nums[1] = 1", "is read-only"},
        {"rawset(self.nums, 1, 2)", "table expected"},
    };
    ljs_runtime_t *rt = runtime(1);
    char src[8192];
    int len = snprintf(src, sizeof src,
                       "return { fields = { name = 'n', who = ljs.entity, ids = ljs.list('entity', 2),\n"
                       "  nums = ljs.list('number', 3), case = 0 },\n"
                       "  update = function(self, dt)\n"
                       "    local c = self.case\n"
                       "    if c == 0 then self.ids = { self.id, 0 }; return end\n");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        len += snprintf(src + len, sizeof src - (size_t)len, "    if c == %d then %s end\n", (int)k + 1,
                        cases[k].code);
    snprintf(src + len, sizeof src - (size_t)len, "  end }\n");
    ljs_script_t s = load(rt, "hostile", src);
    ljs_entity_t e = spawn(rt, s);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(ljs_field_set_integer(rt, e, "case", (int64_t)k + 1), LJS_OK);
        (void)logged(rt, "");
        ljs_stats_t before, after;
        assert_int_equal(ljs_stats_get(rt, &before), LJS_OK);
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
        assert_int_equal(ljs_stats_get(rt, &after), LJS_OK);
        if (cases[k].expect[0] != '\0' && !logged(rt, cases[k].expect))
            fail_msg("case %zu (%s): no error containing '%s'", k + 1, cases[k].code, cases[k].expect);
        if (cases[k].expect[0] != '\0')
            assert_int_equal(after.script_errors, before.script_errors + 1);
        const char *p;
        size_t n;
        assert_int_equal(ljs_field_get_string(rt, e, "name", &p, &n), LJS_OK);
        assert_int_equal(n, 1);
        ljs_value_t v[2];
        assert_int_equal(ljs_field_get_list(rt, e, "ids", v, 2, &n), LJS_OK);
        assert_int_equal(n, 2);
        assert_true(v[0].v.e == e.id && v[1].v.e == 0);
        assert_int_equal(ljs_field_get_list(rt, e, "nums", NULL, 0, &n), LJS_OK);
        assert_int_equal(n, 0);
    }
    ljs_runtime_destroy(rt);
}

/* A view of another entity's list (from get) kept past its frame raises,
 * even after the entity is gone and its slot reused. */
static void test_fields_hostile_get_view_kept_past_its_frame_raises(void **state)
{
    (void)state;
    ljs_runtime_t *rt = runtime(2);
    ljs_script_t s =
        load(rt, "peek",
             "local kept\n"
             "return { fields = { pts = ljs.list('integer', 2), peer = ljs.entity, out = -1 },\n"
             "  update = function(self, dt)\n"
             "    if self.peer and not kept then kept = get(self.peer, 'pts'); self.out = #kept\n"
             "    elseif kept then self.out = kept[1] end\n"
             "  end }\n");
    ljs_entity_t a = spawn(rt, s), b = spawn(rt, s);
    ljs_value_t two[2] = {{LJS_TINTEGER, {.i = 5}}, {LJS_TINTEGER, {.i = 6}}};
    assert_int_equal(ljs_field_set_list(rt, b, "pts", two, 2), LJS_OK);
    assert_int_equal(ljs_field_set_entity(rt, a, "peer", b), LJS_OK);
    assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    int64_t out = 0;
    assert_int_equal(ljs_field_get_integer(rt, a, "out", &out), LJS_OK);
    assert_int_equal(out, 2);
    assert_int_equal(ljs_entity_destroy(rt, b), LJS_OK);
    ljs_entity_t c = spawn(rt, s); /* b's slot, new generation */
    assert_int_equal(ljs_field_set_list(rt, c, "pts", two, 1), LJS_OK);
    (void)logged(rt, "");
    for (int f = 0; f < 3; f++)
        assert_int_equal(ljs_frame(rt, 0.1), LJS_OK);
    assert_true(logged(rt, "used after the call that read it ended"));
    assert_int_equal(ljs_field_get_integer(rt, a, "out", &out), LJS_OK);
    assert_int_equal(out, 2); /* never read through the stale view */
    ljs_runtime_destroy(rt);
}

/* Every case above again with the natural form's table tier only. */
static int table_tier(void **state)
{
    (void)state;
    natural = 0;
    return setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_entity_reads_nil_once_its_target_dies),
        cmocka_unit_test(test_fields_entity_writes_are_type_checked),
        cmocka_unit_test(test_fields_string_state_machine_and_nul_bytes),
        cmocka_unit_test(test_fields_string_too_long_from_a_script_is_a_clear_error),
        cmocka_unit_test(test_fields_equal_strings_are_stored_once),
        cmocka_unit_test(test_fields_unchanged_string_reads_do_not_allocate),
        cmocka_unit_test(test_fields_string_churn_stays_bounded),
        cmocka_unit_test(test_fields_list_views_and_assignment),
        cmocka_unit_test(test_fields_list_view_kept_past_its_call_raises),
        cmocka_unit_test(test_fields_entity_list_elements_read_false_once_dead),
        cmocka_unit_test(test_fields_new_types_are_deterministic_for_any_worker_count),
        cmocka_unit_test(test_fields_new_types_snapshot_and_step_on_identically),
        cmocka_unit_test(test_fields_reload_refuses_a_type_change_naming_both_types),
        cmocka_unit_test(test_fields_fast_form_and_host_declared_new_types),
        cmocka_unit_test(test_fields_streamed_save_file_equals_the_in_memory_save),
        cmocka_unit_test(test_fields_set_writes_new_types_of_another_script),
        cmocka_unit_test(test_fields_spawn_sets_list_fields),
        cmocka_unit_test(test_fields_hostile_values_are_refused_clearly),
        cmocka_unit_test(test_fields_hostile_get_view_kept_past_its_frame_raises),
    };
    int failed = cmocka_run_group_tests_name("fields, scalarized natural form", tests, setup, teardown);
    return failed + cmocka_run_group_tests_name("fields, LJS_NATURAL=0", tests, table_tier, teardown);
}
