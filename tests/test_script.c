/* test_script.c - scripts, entities, fields, events and isolation: every
 * promise of the script model, and every kind of bad input, each showing a
 * clear error and that every other entity's fields are intact. */
#include "tests/support.h"

#include <ljs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture_s {
    char dir[64];
    ljs_runtime_t *rt;
    char console[16384]; /* drained console text */
    size_t console_errors;
} fixture_t;

static const char *script_path(fixture_t *fx, const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s.lua", fx->dir, name);
    return path;
}

static void write_script(fixture_t *fx, const char *name, const char *src)
{
    ljs_test_write(script_path(fx, name), src);
}

static ljs_script_t load(fixture_t *fx, const char *name, const char *src)
{
    ljs_script_t s;
    write_script(fx, name, src);
    int rc = ljs_script_load(fx->rt, script_path(fx, name), &s);
    if (rc != LJS_OK)
        fail_msg("load %s: %s", name, ljs_last_error());
    return s;
}

static void on_line(void *ud, const ljs_log_line_t *line)
{
    fixture_t *fx = ud;
    size_t n = strlen(fx->console);
    snprintf(fx->console + n, sizeof fx->console - n, "[%s] %s\n", line->script, line->text);
    if (line->severity == LJS_LOG_ERROR)
        fx->console_errors++;
}

static void drain(fixture_t *fx)
{
    fx->console[0] = '\0';
    fx->console_errors = 0;
    ljs_console_drain(fx->rt, on_line, fx);
}

static fixture_t *make_with(unsigned workers, uint32_t budget, uint32_t timeout_ms)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    ljs_test_tmpdir(fx->dir, sizeof fx->dir, "test");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.batch = 4; /* many batches even for few entities */
    cfg.state_mem_mb = 32;
    cfg.script_budget = budget;
    cfg.script_timeout_ms = timeout_ms;
    fx->rt = ljs_test_runtime(&cfg);
    return fx;
}

static fixture_t *make(unsigned workers)
{
    return make_with(workers, 1000000, 1000);
}

static int setup(void **state)
{
    *state = make(2);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ljs_runtime_destroy(fx->rt);
    ljs_test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static ljs_entity_t spawn_with(fixture_t *fx, ljs_script_t s)
{
    ljs_entity_t e;
    assert_int_equal(ljs_entity_create(fx->rt, &e), LJS_OK);
    assert_int_equal(ljs_script_attach(fx->rt, e, s), LJS_OK);
    return e;
}

static double num(fixture_t *fx, ljs_entity_t e, const char *field)
{
    double v = -12345;
    int rc = ljs_field_get_number(fx->rt, e, field, &v);
    if (rc != LJS_OK)
        fail_msg("get %s: %s", field, ljs_last_error());
    return v;
}

static const char *mover_src = "return {\n"
                               "  fields = { x = 0.0, speed = 2.0, n = 0 },\n"
                               "  tags = { 'mover' },\n"
                               "  update = function(self, dt)\n"
                               "    self.x = self.x + self.speed * dt\n"
                               "    self.n = self.n + 1\n"
                               "  end,\n"
                               "}\n";

static void test_script_natural_form_updates_fields_on_every_frame(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "mover", mover_src);
    ljs_entity_t e[50];
    for (int i = 0; i < 50; i++) {
        e[i] = spawn_with(fx, s);
        assert_int_equal(ljs_field_set_number(fx->rt, e[i], "speed", i), LJS_OK);
    }
    for (int f = 0; f < 10; f++)
        assert_int_equal(ljs_frame(fx->rt, 0.5), LJS_OK);
    for (int i = 0; i < 50; i++) {
        assert_true(num(fx, e[i], "x") == i * 0.5 * 10);
        int64_t n;
        assert_int_equal(ljs_field_get_integer(fx->rt, e[i], "n", &n), LJS_OK);
        assert_int_equal(n, 10);
        assert_true(ljs_entity_has_tag(fx->rt, e[i], "mover"));
    }
    ljs_script_stats_t st;
    assert_int_equal(ljs_script_stats(fx->rt, s, &st), LJS_OK);
    assert_int_equal(st.calls, 500);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.entities, 50);
}

static void test_script_fast_form_passes_reads_and_takes_writes(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "fastmover",
                          "return { fields = { x = 0.0, vx = 3.0, hits = 0 },\n"
                          "  reads = { 'x', 'vx' }, writes = { 'x', 'hits' },\n"
                          "  update = function(id, dt, x, vx) return x + vx * dt end }\n");
    ljs_entity_t a = spawn_with(fx, s), b = spawn_with(fx, s);
    assert_int_equal(ljs_field_set_number(fx->rt, b, "vx", -1.0), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 2.0), LJS_OK);
    assert_true(num(fx, a, "x") == 6.0);
    assert_true(num(fx, b, "x") == -2.0);
    assert_true(num(fx, a, "hits") == 0); /* a nil return keeps the value */
}

static void test_script_syntax_error_is_reported_with_file_and_line(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s;
    write_script(fx, "broken", "return {\n  update = function(self, dt)\n    self.x = = 1\n  end }\n");
    assert_int_equal(ljs_script_load(fx->rt, script_path(fx, "broken"), &s), LJS_ESCRIPT);
    assert_non_null(strstr(ljs_last_error(), "broken.lua:3:"));
    /* The runtime goes on, and the name is free again. */
    write_script(fx, "broken", mover_src);
    assert_int_equal(ljs_script_load(fx->rt, script_path(fx, "broken"), &s), LJS_OK);
}

static void test_script_bad_module_shapes_are_refused_clearly(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s;
    static const struct {
        const char *src, *expect;
    } cases[] = {
        {"return 42", "must return a table"},
        {"error('boom at load')", "boom at load"},
        {"return { fields = { x = {} } }", "field 'x' default must be a number"},
        {"return { fields = { ['not ok'] = 1 } }", "must be an identifier"},
        {"return { update = 5 }", "'update' must be a function"},
        {"return { reads = { 'nope' }, update = function() end }", "not a declared field"},
        {"return { fields = { speed = true } }", "but as number elsewhere"},
        {"while true do end", "instruction budget exceeded"},
    };
    load(fx, "mover", mover_src); /* declares speed as a number */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_script(fx, "shape", cases[i].src);
        int rc = ljs_script_load(fx->rt, script_path(fx, "shape"), &s);
        assert_true(rc == LJS_ESCRIPT || rc == LJS_ETYPE);
        if (strstr(ljs_last_error(), cases[i].expect) == NULL)
            fail_msg("case %zu: '%s' not in '%s'", i, cases[i].expect, ljs_last_error());
    }
}

static void test_script_missing_file_is_enoent(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s;
    assert_int_equal(ljs_script_load(fx->rt, "/nonexistent/dir/ghost.lua", &s), LJS_ENOENT);
    assert_non_null(strstr(ljs_last_error(), "ghost.lua"));
}

/* A script whose update fails for one entity (chosen by a field). */
static const char *fragile_src =
    "return {\n"
    "  fields = { x = 0.0, mode = 0 },\n"
    "  update = function(self, dt)\n"
    "    self.x = self.x + 1\n"
    "    if self.mode == 1 then error('deliberate failure') end\n"
    "    if self.mode == 2 then while true do end end\n"
    "    if self.mode == 3 then local s = string.rep('x', 64 * 1024 * 1024) end\n"
    "    if self.mode == 4 then set(self.id - 1, 'x', 5) end\n"
    "    if self.mode == 5 then send(self.id, 'ping', { f = print }) end\n"
    "    if self.mode == 6 then self.x = 'not a number' end\n"
    "    if self.mode == 7 then undeclared_global = 1 end\n"
    "    if self.mode == 8 then local t, s = {}, string.rep('y', 1e5) for i = 1, 1e6 do t[i] = s .. i end end\n"
    "    if self.mode == 9 then while true do local t = {} end end\n"
    "    if self.mode == 10 then send(self.id, 'hit me', 1) end\n"
    "  end,\n"
    "}\n";

static void check_isolated_failure(fixture_t *fx, int mode, const char *expect)
{
    ljs_script_t s;
    if (ljs_script_find(fx->rt, "fragile", &s) != LJS_OK)
        s = load(fx, "fragile", fragile_src);
    ljs_entity_t e[20];
    for (int i = 0; i < 20; i++)
        e[i] = spawn_with(fx, s);
    assert_int_equal(ljs_field_set_integer(fx->rt, e[7], "mode", mode), LJS_OK);
    drain(fx);
    for (int f = 0; f < 3; f++)
        assert_int_equal(ljs_frame(fx->rt, 0.1), LJS_OK);
    drain(fx);
    /* Every other entity ran every frame; the failing one kept its state. */
    for (int i = 0; i < 20; i++)
        assert_true(num(fx, e[i], "x") == (i == 7 ? 0.0 : 3.0));
    assert_int_equal(fx->console_errors, 3);
    if (strstr(fx->console, expect) == NULL)
        fail_msg("mode %d: '%s' not in console:\n%s", mode, expect, fx->console);
    for (int i = 0; i < 20; i++)
        assert_int_equal(ljs_entity_destroy(fx->rt, e[i]), LJS_OK);
}

static void test_script_runtime_error_is_isolated_with_file_line_and_traceback(void **state)
{
    fixture_t *fx = *state;
    check_isolated_failure(fx, 1, "fragile.lua:5: deliberate failure");
    assert_non_null(strstr(fx->console, "stack traceback"));
    ljs_script_t s;
    ljs_script_stats_t st;
    assert_int_equal(ljs_script_find(fx->rt, "fragile", &s), LJS_OK);
    assert_int_equal(ljs_script_stats(fx->rt, s, &st), LJS_OK);
    assert_int_equal(st.errors, 3);
}

static void test_script_infinite_loop_hits_the_instruction_budget(void **state)
{
    check_isolated_failure(*state, 2, "fragile.lua:6: instruction budget exceeded");
}

/* The watchdog's tests (default limit, CPU contention, uncatchable stops)
 * are in test_runaway.c. */

static void test_script_memory_bomb_hits_the_state_limit(void **state)
{
    fixture_t *fx = *state;
    /* Lua raises memory errors without a position: the allocator notes it
     * (string.rep's caller for mode 3, the concatenation for mode 8). */
    check_isolated_failure(fx, 3, "fragile.lua:7: memory limit reached (LJS_STATE_MEM_MB=32)");
    check_isolated_failure(fx, 8, "fragile.lua:12: memory limit reached (LJS_STATE_MEM_MB=32)");
}

static void test_script_write_to_another_entity_is_an_error_naming_the_field(void **state)
{
    check_isolated_failure(*state, 4, "cannot write field 'x' of another entity");
}

static void test_script_bad_payload_type_is_an_error(void **state)
{
    check_isolated_failure(*state, 5, "bad payload value: a function");
}

static void test_script_wrong_field_type_is_an_error_naming_the_field(void **state)
{
    check_isolated_failure(*state, 6, "field 'x' expects number, got string");
}

static void test_script_new_global_is_an_error(void **state)
{
    check_isolated_failure(*state, 7, "assignment to global 'undeclared_global' after the script loaded");
}

static void test_script_stale_handle_is_enoent(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "mover", mover_src);
    ljs_entity_t e = spawn_with(fx, s), e2;
    assert_int_equal(ljs_entity_destroy(fx->rt, e), LJS_OK);
    assert_false(ljs_entity_alive(fx->rt, e));
    assert_int_equal(ljs_entity_destroy(fx->rt, e), LJS_ENOENT);
    assert_int_equal(ljs_script_attach(fx->rt, e, s), LJS_ENOENT);
    double v;
    assert_int_equal(ljs_field_get_number(fx->rt, e, "x", &v), LJS_ENOENT);
    assert_int_equal(ljs_field_set_number(fx->rt, e, "x", 1), LJS_ENOENT);
    /* The slot is reused with a new generation: the old handle stays dead. */
    assert_int_equal(ljs_entity_create(fx->rt, &e2), LJS_OK);
    assert_true((uint32_t)e2.id == (uint32_t)e.id && e2.id != e.id);
    assert_false(ljs_entity_alive(fx->rt, e));
    assert_int_equal(ljs_field_get_number(fx->rt, e2, "x", &v), LJS_ENOENT); /* no field yet */
    ljs_entity_t zero = {0};
    assert_int_equal(ljs_entity_destroy(fx->rt, zero), LJS_ENOENT);
}

static const char *counter_src = "return {\n"
                                 "  fields = { acc = 0, got = 0 },\n"
                                 "  on_ping = function(self, p, sender)\n"
                                 "    self.acc = self.acc * 10 + p.n\n"
                                 "    self.got = self.got + 1\n"
                                 "  end,\n"
                                 "}\n";

static void test_script_events_arrive_in_target_sender_sequence_order(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "counter", counter_src);
    ljs_entity_t e = spawn_with(fx, s);
    for (int n = 1; n <= 4; n++) {
        ljs_kv_t kv = {"n", LJS_TINTEGER, {.i = n}};
        assert_int_equal(ljs_send(fx->rt, e, "ping", &kv, 1), LJS_OK);
    }
    assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    int64_t acc;
    assert_int_equal(ljs_field_get_integer(fx->rt, e, "acc", &acc), LJS_OK);
    assert_int_equal(acc, 1234);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(fx->rt, &st), LJS_OK);
    assert_int_equal(st.events_sent, 4);
    assert_int_equal(st.events_delivered, 4);
}

static void test_script_event_to_destroyed_entity_is_dropped_and_counted(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "counter", counter_src);
    ljs_entity_t a = spawn_with(fx, s), b = spawn_with(fx, s);
    ljs_kv_t kv = {"n", LJS_TINTEGER, {.i = 1}};
    assert_int_equal(ljs_send(fx->rt, a, "ping", &kv, 1), LJS_OK);
    assert_int_equal(ljs_send(fx->rt, b, "ping", &kv, 1), LJS_OK);
    assert_int_equal(ljs_send(fx->rt, b, "unhandled", NULL, 0), LJS_OK);
    assert_int_equal(ljs_entity_destroy(fx->rt, a), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(fx->rt, &st), LJS_OK);
    assert_int_equal(st.events_delivered, 1);
    assert_int_equal(st.events_dropped, 2);
    assert_true(num(fx, b, "got") == 1);
    /* Bad host payloads are refused up front. */
    ljs_kv_t bad = {NULL, LJS_TSTRING, {.s = NULL}};
    assert_int_equal(ljs_send(fx->rt, b, "ping", &bad, 1), LJS_EINVAL);
    assert_int_equal(ljs_send(fx->rt, b, "", NULL, 0), LJS_EINVAL);
}

/* The header's "LJS_EINVAL (bad name or payload)" made precise: a name is
 * 1-64 letters, digits or '_' (so on_<name> can handle it), and a table
 * payload names each key once. Scripts' send() follows the same rule. */
static void test_script_event_names_and_payload_keys_are_validated(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "counter", counter_src);
    ljs_entity_t b = spawn_with(fx, s);
    static const char *const bad_names[] = {
        "hit me", "a.b", "on-hit",
        "é",      "x\n", "12345678901234567890123456789012345678901234567890123456789012345"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        assert_int_equal(ljs_send(fx->rt, b, bad_names[i], NULL, 0), LJS_EINVAL);
        assert_non_null(strstr(ljs_last_error(), "bad event name"));
    }
    assert_int_equal(ljs_send(fx->rt, b, "Hit_2", NULL, 0), LJS_OK);
    assert_int_equal(
        ljs_send(fx->rt, b, "1234567890123456789012345678901234567890123456789012345678901234", NULL, 0),
        LJS_OK);
    ljs_kv_t dup[3] = {
        {"n", LJS_TINTEGER, {.i = 1}}, {"m", LJS_TINTEGER, {.i = 2}}, {"n", LJS_TINTEGER, {.i = 3}}};
    assert_int_equal(ljs_send(fx->rt, b, "ping", dup, 3), LJS_EINVAL);
    assert_non_null(strstr(ljs_last_error(), "payload key 'n' given twice"));
    assert_int_equal(ljs_send(fx->rt, b, "ping", dup, 2), LJS_OK);
}

static void test_script_send_with_a_bad_event_name_is_a_script_error(void **state)
{
    check_isolated_failure(*state, 10, "send: bad event name");
}

/* Scripts send to each other; events sent in the update phase arrive in the
 * same frame's event phase, those sent by handlers in the next frame. */
static void test_script_events_from_scripts_follow_the_phase_rules(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s =
        load(fx, "relay",
             "return { fields = { target = 0, got = 0, echoed = 0 },\n"
             "  update = function(self, dt)\n"
             "    if self.target ~= 0 then send(self.target, 'hit', { dmg = 2, kind = 'fire' }) end\n"
             "  end,\n"
             "  on_hit = function(self, p, sender)\n"
             "    assert(p.kind == 'fire' and p.dmg == 2 and sender ~= 0)\n"
             "    self.got = self.got + 1\n"
             "    send(sender, 'echo', 7)\n"
             "  end,\n"
             "  on_echo = function(self, v) self.echoed = self.echoed + v end,\n"
             "}\n");
    ljs_entity_t a = spawn_with(fx, s), b = spawn_with(fx, s);
    assert_int_equal(ljs_field_set_integer(fx->rt, a, "target", (int64_t)b.id), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    assert_true(num(fx, b, "got") == 1);
    assert_true(num(fx, a, "echoed") == 0); /* echo is queued for frame 2 */
    assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    assert_true(num(fx, b, "got") == 2);
    assert_true(num(fx, a, "echoed") == 7);
    drain(fx);
    assert_int_equal(fx->console_errors, 0);
}

/* Payload tables come from a pool: each handler call sees exactly its own
 * event's keys, even after an earlier handler added keys or a metatable. */
static void test_script_pooled_payloads_never_leak_between_events(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s =
        load(fx, "pooled",
             "return { fields = { bad = 0, got = 0 },\n"
             "  on_e = function(self, p)\n"
             "    local n = 0\n"
             "    for k in pairs(p) do n = n + 1 end\n"
             "    if n ~= 1 or getmetatable(p) ~= nil or p.extra ~= nil then self.bad = self.bad + 1 end\n"
             "    p.extra = true\n"
             "    setmetatable(p, { __index = function() return 1 end })\n"
             "    self.got = self.got + 1\n"
             "  end }\n");
    ljs_entity_t e = spawn_with(fx, s);
    for (int i = 0; i < 50; i++) {
        ljs_kv_t kv = {i % 2 ? "a" : "b", LJS_TINTEGER, {.i = i}};
        assert_int_equal(ljs_send(fx->rt, e, "e", &kv, 1), LJS_OK);
    }
    assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    assert_true(num(fx, e, "got") == 50);
    assert_true(num(fx, e, "bad") == 0);
}

/* Reads of other entities see the last committed frame, own reads see own
 * writes at once. */
static void test_script_reads_of_others_are_double_buffered(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "buf",
                          "return { fields = { v = 0, seen = -1, own = -1, other = 0 },\n"
                          "  update = function(self, dt)\n"
                          "    self.v = self.v + 1\n"
                          "    self.own = get(self.id, 'v')\n"
                          "    if self.other ~= 0 then self.seen = get(self.other, 'v') end\n"
                          "  end }\n");
    ljs_entity_t a = spawn_with(fx, s), b = spawn_with(fx, s);
    assert_int_equal(ljs_field_set_integer(fx->rt, a, "other", (int64_t)b.id), LJS_OK);
    assert_int_equal(ljs_field_set_integer(fx->rt, b, "other", (int64_t)a.id), LJS_OK);
    for (int f = 1; f <= 5; f++) {
        assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
        assert_true(num(fx, a, "seen") == f - 1);
        assert_true(num(fx, b, "seen") == f - 1);
    }
    /* get(self) goes through the C API, not the self table: natural-form
     * writes land at the end of the call, so it sees the frame's start. */
    assert_true(num(fx, a, "own") == 4);
}

static void test_script_spawn_and_destroy_apply_at_frame_end(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "cell",
                          "return { fields = { age = 0, gen = 0 }, tags = { 'cell' },\n"
                          "  update = function(self, dt)\n"
                          "    self.age = self.age + 1\n"
                          "    if self.age == 2 and self.gen < 3 then\n"
                          "      spawn('cell', { gen = self.gen + 1, bogus = 1 })\n"
                          "      spawn('cell', { gen = self.gen + 1 })\n"
                          "    end\n"
                          "    if self.age == 3 then destroy(self.id) end\n"
                          "  end }\n");
    spawn_with(fx, s);
    uint32_t counts[12];
    for (int f = 0; f < 12; f++) {
        assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
        counts[f] = ljs_entity_count(fx->rt);
    }
    /* gen0 lives frames 1-2, spawns 2; each gen doubles, 3 generations. */
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 2);
    assert_int_equal(counts[11], 0);
    drain(fx);
    assert_non_null(strstr(fx->console, "field 'bogus' ignored"));
}

static void test_script_query_rand_and_frame_are_available(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "probe",
                          "return { fields = { n = 0, r = 0.0, ok = false, f = 0 }, tags = { 'probe' },\n"
                          "  update = function(self, dt)\n"
                          "    self.n = #query('probe')\n"
                          "    assert(#query('probe', 'nosuchtag') == 0)\n"
                          "    self.r = rand(self)\n"
                          "    local k = rand(self, 3, 5)\n"
                          "    self.ok = k >= 3 and k <= 5 and io == nil and os == nil and debug == nil\n"
                          "    self.f = frame()\n"
                          "  end }\n");
    ljs_entity_t e[3];
    for (int i = 0; i < 3; i++)
        e[i] = spawn_with(fx, s);
    assert_int_equal(ljs_frame(fx->rt, 0.0), LJS_OK);
    for (int i = 0; i < 3; i++) {
        assert_true(num(fx, e[i], "n") == 3);
        assert_true(num(fx, e[i], "f") == 1);
        int ok = 0;
        assert_int_equal(ljs_field_get_boolean(fx->rt, e[i], "ok", &ok), LJS_OK);
        assert_true(ok);
    }
    assert_true(num(fx, e[0], "r") != num(fx, e[1], "r"));
    drain(fx);
    assert_int_equal(fx->console_errors, 0);
}

/* The same scene gives bit-identical fields for any worker count. */
static uint64_t run_scene(unsigned workers)
{
    fixture_t *fx = make(workers);
    ljs_script_t s =
        load(fx, "swarm",
             "return { fields = { x = 0.0, y = 0.0, hp = 10, peer = 0 }, tags = { 'swarm' },\n"
             "  update = function(self, dt)\n"
             "    self.x = self.x + (rand(self) - 0.5) * dt\n"
             "    if self.peer ~= 0 then\n"
             "      local px = get(self.peer, 'x')\n"
             "      if px then self.y = self.y + (px - self.x) * 0.01 end\n"
             "      if rand(self) < 0.3 then send(self.peer, 'poke', rand(self, 1, 3)) end\n"
             "    end\n"
             "    if self.hp <= 0 then destroy(self.id) end\n"
             "    if rand(self) < 0.01 then spawn('swarm', { x = self.x, peer = self.id }) end\n"
             "  end,\n"
             "  on_poke = function(self, d, sender) self.hp = self.hp - d; self.peer = sender end }\n");
    ljs_entity_t prev = {0};
    for (int i = 0; i < 300; i++) {
        ljs_entity_t e = spawn_with(fx, s);
        assert_int_equal(ljs_field_set_integer(fx->rt, e, "peer", (int64_t)prev.id), LJS_OK);
        prev = e;
    }
    for (int f = 0; f < 60; f++)
        assert_int_equal(ljs_frame(fx->rt, 1.0 / 60), LJS_OK);
    drain(fx);
    assert_int_equal(fx->console_errors, 0);
    uint64_t d = ljs_world_digest(fx->rt);
    void *p = fx;
    teardown(&p);
    return d;
}

static void test_script_frames_are_deterministic_for_any_worker_count(void **state)
{
    uint64_t d1 = run_scene(1);
    for (size_t i = 1; i < LJS_TEST_NWORKER_COUNTS; i++)
        assert_true(run_scene(ljs_test_worker_counts[i]) == d1);
}

static void test_script_unload_and_detach(void **state)
{
    fixture_t *fx = *state;
    ljs_script_t s = load(fx, "mover", mover_src);
    ljs_entity_t a = spawn_with(fx, s), b = spawn_with(fx, s);
    assert_int_equal(ljs_script_detach(fx->rt, a, s), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 1.0), LJS_OK);
    assert_true(num(fx, a, "x") == 0.0);
    assert_true(num(fx, b, "x") == 2.0);
    assert_int_equal(ljs_script_unload(fx->rt, s), LJS_OK);
    assert_int_equal(ljs_script_unload(fx->rt, s), LJS_ENOENT);
    assert_int_equal(ljs_frame(fx->rt, 1.0), LJS_OK);
    assert_true(num(fx, b, "x") == 2.0); /* fields stay, nothing runs */
    ljs_script_t again = load(fx, "mover", mover_src);
    assert_int_equal(ljs_script_attach(fx->rt, b, again), LJS_OK);
    assert_int_equal(ljs_frame(fx->rt, 1.0), LJS_OK);
    assert_true(num(fx, b, "x") == 4.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_script_natural_form_updates_fields_on_every_frame),
        T(test_script_fast_form_passes_reads_and_takes_writes),
        T(test_script_syntax_error_is_reported_with_file_and_line),
        T(test_script_bad_module_shapes_are_refused_clearly),
        T(test_script_missing_file_is_enoent),
        T(test_script_runtime_error_is_isolated_with_file_line_and_traceback),
        T(test_script_infinite_loop_hits_the_instruction_budget),
        T(test_script_memory_bomb_hits_the_state_limit),
        T(test_script_write_to_another_entity_is_an_error_naming_the_field),
        T(test_script_bad_payload_type_is_an_error),
        T(test_script_wrong_field_type_is_an_error_naming_the_field),
        T(test_script_new_global_is_an_error),
        T(test_script_stale_handle_is_enoent),
        T(test_script_events_arrive_in_target_sender_sequence_order),
        T(test_script_event_names_and_payload_keys_are_validated),
        T(test_script_send_with_a_bad_event_name_is_a_script_error),
        T(test_script_event_to_destroyed_entity_is_dropped_and_counted),
        T(test_script_events_from_scripts_follow_the_phase_rules),
        T(test_script_reads_of_others_are_double_buffered),
        T(test_script_pooled_payloads_never_leak_between_events),
        T(test_script_spawn_and_destroy_apply_at_frame_end),
        T(test_script_query_rand_and_frame_are_available),
        T(test_script_unload_and_detach),
        cmocka_unit_test(test_script_frames_are_deterministic_for_any_worker_count),
#undef T
    };
    return cmocka_run_group_tests_name("script", tests, NULL, NULL);
}
