/* test_codec.c - the event/command payload codec (runtime/world/event.c):
 * names and strings travel whole with their length (embedded NULs
 * included), and no byte sequence makes a decoder read outside the
 * message (issue 13 item 2: spawn("a\0...", {}) made the owner read out of
 * bounds in ljs__msg_visit). Run under ASan+UBSan (make test-asan), an
 * overread here is an error even when it does not crash. */
#include "tests/support.h"

#include "runtime/world/event.h"

#include <lauxlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

typedef struct enc_s {
    ljs__msgbuf_t *b;
    const char *name;
    size_t name_len;
    uint32_t kind;
} enc_t;

static int do_encode(lua_State *L)
{
    enc_t *e = lua_touserdata(L, 1);
    ljs__msg_t head = {5, 6, 0, e->kind, 0, 0};
    ljs__msg_push_lua(L, e->b, &head, e->name, e->name_len, 2);
    return 0;
}

/* Encode the value on top of L (popped) as one message of kind `kind` in
 * b. Returns the pcall status; an error message is left on top. */
static int encode_kind(lua_State *L, ljs__msgbuf_t *b, uint32_t kind, const char *name, size_t name_len)
{
    enc_t e = {b, name, name_len, kind};
    lua_pushcfunction(L, do_encode);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &e);
    lua_insert(L, -2);
    return lua_pcall(L, 2, 0, 0);
}

/* As encode_kind, an event. */
static int encode(lua_State *L, ljs__msgbuf_t *b, const char *name, size_t name_len)
{
    return encode_kind(L, b, LJS__MSG_EVENT, name, name_len);
}

typedef struct dec_s {
    const ljs__msgbuf_t *b;
    const ljs__msg_t *m;
    int rc;
} dec_t;

static int do_decode(lua_State *L)
{
    dec_t *d = lua_touserdata(L, 1);
    d->rc = ljs__msg_decode(L, d->b, d->m, 0);
    return 1;
}

/* Decode m of b onto L (one value); returns ljs__msg_decode's result. */
static int decode(lua_State *L, const ljs__msgbuf_t *b, const ljs__msg_t *m)
{
    dec_t d = {b, m, 99};
    lua_pushcfunction(L, do_decode);
    lua_pushlightuserdata(L, &d);
    assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_OK);
    return d.rc;
}

typedef struct seen_s {
    int calls, lists, elements;
    char keys[8][16];
    size_t lens[8];
    int64_t ints[8];
} seen_t;

static void on_kv(void *ud, const char *key, size_t key_len, const ljs__val_t *v)
{
    seen_t *s = ud;
    if (s->calls < 8 && key_len < 16) {
        memcpy(s->keys[s->calls], key, key_len);
        s->lens[s->calls] = key_len;
        s->ints[s->calls] = v->i;
    }
    ljs__val_t e;
    size_t pos = 0;
    s->lists += v->type == LJS_TLIST;
    while (v->type == LJS_TLIST && ljs__msg_list_next(v, &pos, &e))
        s->elements++;
    s->calls++;
}

/* A heap copy of exactly n bytes as the only message of *b (so a read one
 * byte past it is an ASan error). */
static void raw_message(ljs__msgbuf_t *b, ljs__msg_t *m, const void *bytes, size_t n)
{
    memset(b, 0, sizeof *b);
    b->bytes = malloc(n ? n : 1);
    assert_non_null(b->bytes);
    memcpy(b->bytes, bytes, n);
    b->nbytes = b->bytes_cap = n;
    *m = (ljs__msg_t){1, 2, 3, LJS__MSG_EVENT, 0, n};
}

/* Every decoder refuses message m of b: check, decode (pushes nil), visit
 * (never calls back). */
static void assert_refused(lua_State *L, const ljs__msgbuf_t *b, const ljs__msg_t *m)
{
    seen_t seen = {0};
    assert_int_equal(ljs__msg_check(b, m), -1);
    assert_int_equal(decode(L, b, m), -1);
    assert_true(lua_isnil(L, -1));
    lua_pop(L, 1);
    assert_int_equal(ljs__msg_visit(b, m, on_kv, &seen), -1);
    assert_int_equal(seen.calls, 0);
}

/* A sample message: name "hit", payload {damage = 10, [1] = "x\0y"}. */
static size_t sample(unsigned char *out, size_t cap)
{
    static const unsigned char bytes[] = {
        3,   0,  0, 0, 'h', 'i', 't', 0,                     /* name */
        't', 2,  0, 0, 0,                                    /* table, 2 entries */
        'i', 1,  0, 0, 0,   0,   0,   0,   0,                /* [1] = */
        's', 3,  0, 0, 0,   'x', 0,   'y', 0,                /*   "x\0y" */
        's', 6,  0, 0, 0,   'd', 'a', 'm', 'a', 'g', 'e', 0, /* damage = */
        'i', 10, 0, 0, 0,   0,   0,   0,   0,                /*   10 */
    };
    assert_true(sizeof bytes <= cap);
    memcpy(out, bytes, sizeof bytes);
    return sizeof bytes;
}

static int setup(void **state)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    *state = L;
    return 0;
}

static int teardown(void **state)
{
    lua_close(*state);
    return 0;
}

/* ---- round trips ------------------------------------------------------- */

static void test_codec_carries_nul_in_names_keys_and_strings_whole(void **state)
{
    lua_State *L = *state;
    ljs__msgbuf_t b = {0};
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, "he\0llo", 6);
    lua_setfield(L, -2, "s");
    lua_pushlstring(L, "k\0ey", 4);
    lua_pushinteger(L, 7);
    lua_rawset(L, -3);
    lua_pushvalue(L, -1);
    assert_int_equal(encode(L, &b, "a\0b", 3), LUA_OK);
    assert_int_equal(b.n, 1);
    const ljs__msg_t *m = &b.msgs[0];
    assert_int_equal(ljs__msg_check(&b, m), 0);
    assert_int_equal(ljs__msg_name_len(&b, m), 3);
    assert_memory_equal(ljs__msg_name(&b, m), "a\0b", 4); /* and NUL-terminated */
    assert_int_equal(decode(L, &b, m), 0);
    lua_getfield(L, -1, "s");
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "he\0llo", 6);
    lua_pop(L, 1);
    lua_pushlstring(L, "k\0ey", 4);
    lua_rawget(L, -2);
    assert_int_equal(lua_tointeger(L, -1), 7);
    lua_pushliteral(L, "k");
    lua_rawget(L, -3);
    assert_true(lua_isnil(L, -1)); /* "k\0ey" did not become "k" */
    lua_settop(L, 0);
    /* visit hands over the key with its length. */
    seen_t seen = {0};
    assert_int_equal(ljs__msg_visit(&b, m, on_kv, &seen), 0);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.lens[0], 4); /* "k\0ey" < "s" in byte order */
    assert_memory_equal(seen.keys[0], "k\0ey", 4);
    ljs__msgbuf_fini(&b);
}

static void test_codec_host_payloads_round_trip(void **state)
{
    lua_State *L = *state;
    ljs__msgbuf_t b = {0};
    ljs_kv_t kv[3] = {
        {"b", LJS_TSTRING, {.s = "str"}}, {"a", LJS_TINTEGER, {.i = -4}}, {"c", LJS_TBOOLEAN, {.b = 9}}};
    ljs__msg_t head = {1, 0, 0, LJS__MSG_EVENT, 0, 0};
    assert_int_equal(ljs__msg_push_kv(&b, &head, "ev", kv, 3), LJS_OK);
    assert_int_equal(ljs__msg_check(&b, &b.msgs[0]), 0);
    assert_string_equal(ljs__msg_name(&b, &b.msgs[0]), "ev");
    assert_int_equal(decode(L, &b, &b.msgs[0]), 0);
    lua_getfield(L, -1, "a");
    lua_getfield(L, -2, "b");
    lua_getfield(L, -3, "c");
    assert_int_equal(lua_tointeger(L, -3), -4);
    assert_string_equal(lua_tostring(L, -2), "str");
    assert_true(lua_toboolean(L, -1));
    lua_settop(L, 0);
    /* Refused: a table entry without a key, a NULL string. */
    kv[1].key = NULL;
    assert_int_equal(ljs__msg_push_kv(&b, &head, "ev", kv, 3), LJS_EINVAL);
    kv[1].key = "a";
    kv[0].v.s = NULL;
    assert_int_equal(ljs__msg_push_kv(&b, &head, "ev", kv, 3), LJS_EINVAL);
    assert_int_equal(b.n, 1);
    ljs__msgbuf_fini(&b);
}

/* A spawn command's table may hold arrays (list fields): they travel
 * whole, are visited as lists and decode to arrays; the same bytes in an
 * event are malformed, since events stay flat. */
static void test_codec_spawn_payloads_carry_arrays(void **state)
{
    lua_State *L = *state;
    ljs__msgbuf_t b = {0};
    assert_int_equal(luaL_dostring(L, "return { hp = 3, path = { 1, 2.5, 'x\\0y', true }, none = {} }"),
                     LUA_OK);
    assert_int_equal(encode_kind(L, &b, LJS__MSG_SPAWN, "sp", 2), LUA_OK);
    ljs__msg_t *m = &b.msgs[0];
    assert_int_equal(ljs__msg_check(&b, m), 0);
    assert_int_equal(decode(L, &b, m), 0);
    assert_int_equal(lua_gettop(L), 1);
    lua_getfield(L, 1, "path");
    assert_int_equal(lua_rawlen(L, -1), 4);
    lua_rawgeti(L, -1, 2);
    assert_true(lua_tonumber(L, -1) == 2.5);
    lua_rawgeti(L, -2, 3);
    size_t len;
    const char *str = lua_tolstring(L, -1, &len);
    assert_true(len == 3 && memcmp(str, "x\0y", 3) == 0);
    lua_getfield(L, 1, "none");
    assert_int_equal(lua_rawlen(L, -1), 0);
    lua_settop(L, 0);
    /* Visited: the arrays as lists, element by element. */
    seen_t seen = {0};
    assert_int_equal(ljs__msg_visit(&b, m, on_kv, &seen), 0);
    assert_int_equal(seen.calls, 3);
    assert_int_equal(seen.lists, 2);
    assert_int_equal(seen.elements, 4);
    /* An event holding the same bytes is malformed: nothing is visited. */
    m->kind = LJS__MSG_EVENT;
    assert_int_equal(ljs__msg_check(&b, m), -1);
    seen = (seen_t){0};
    assert_int_equal(ljs__msg_visit(&b, m, on_kv, &seen), -1);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(decode(L, &b, m), -1);
    lua_settop(L, 0);
    ljs__msgbuf_fini(&b);
}

static void test_codec_refuses_nested_tables_and_functions_clearly(void **state)
{
    lua_State *L = *state;
    ljs__msgbuf_t b = {0};
    lua_createtable(L, 0, 1);
    lua_newtable(L);
    lua_setfield(L, -2, "inner");
    assert_int_equal(encode(L, &b, "x", 1), LUA_ERRRUN);
    assert_non_null(strstr(lua_tostring(L, -1), "nested table"));
    lua_pop(L, 1);
    /* A spawn command takes arrays only: keys 1..n, scalars, no holes. */
    static const char *const not_lists[] = {"return { inner = { a = 1 } }",
                                            "return { inner = { 1, nil, 3 } }", "return { inner = { {} } }",
                                            "return { inner = { function() end } }"};
    for (size_t i = 0; i < sizeof not_lists / sizeof not_lists[0]; i++) {
        assert_int_equal(luaL_dostring(L, not_lists[i]), LUA_OK);
        assert_int_equal(encode_kind(L, &b, LJS__MSG_SPAWN, "x", 1), LUA_ERRRUN);
        assert_non_null(strstr(lua_tostring(L, -1), "field 'inner' must be a list"));
        lua_pop(L, 1);
    }
    lua_pushcfunction(L, do_encode);
    assert_int_equal(encode(L, &b, "x", 1), LUA_ERRRUN);
    assert_non_null(strstr(lua_tostring(L, -1), "bad payload"));
    lua_settop(L, 0);
    assert_int_equal(b.n, 0);
    ljs__msgbuf_fini(&b);
}

/* ---- malformed bytes ------------------------------------------------------ */

static void test_codec_refuses_every_truncation(void **state)
{
    lua_State *L = *state;
    unsigned char bytes[128];
    size_t n = sample(bytes, sizeof bytes);
    ljs__msgbuf_t b;
    ljs__msg_t m;
    raw_message(&b, &m, bytes, n);
    assert_int_equal(ljs__msg_check(&b, &m), 0);
    seen_t seen = {0};
    assert_int_equal(ljs__msg_visit(&b, &m, on_kv, &seen), 0);
    assert_int_equal(seen.calls, 1); /* damage; [1] is not a string key */
    assert_int_equal(seen.ints[0], 10);
    ljs__msgbuf_fini(&b);
    for (size_t len = 0; len < n; len++) {
        raw_message(&b, &m, bytes, len);
        assert_refused(L, &b, &m);
        ljs__msgbuf_fini(&b);
    }
}

static void test_codec_refuses_malformed_messages(void **state)
{
    lua_State *L = *state;
    unsigned char bytes[128];
    size_t n = sample(bytes, sizeof bytes);
    ljs__msgbuf_t b;
    ljs__msg_t m;
    struct {
        size_t at;
        unsigned char v;
        const char *what;
    } cases[] = {
        {0, 200, "name longer than the message"}, {7, 'x', "name without its NUL"},
        {9, 0xff, "entry count past the bytes"},  {10, 1, "entry count past the 256 limit"},
        {13, 'd', "table key that is a float"},   {22, 't', "nested table value"},
        {23, 0xff, "string length past the end"}, {30, 'z', "string without its NUL"},
        {42, 'z', "key without its NUL"},         {43, 'q', "unknown value tag"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned char bad[128];
        memcpy(bad, bytes, n);
        bad[cases[c].at] = cases[c].v;
        raw_message(&b, &m, bad, n);
        print_message("refused: %s\n", cases[c].what);
        assert_refused(L, &b, &m);
        ljs__msgbuf_fini(&b);
    }
    /* A trailing byte, a boolean other than 0/1, a span past the buffer. */
    unsigned char more[128];
    memcpy(more, bytes, n);
    more[n] = 'n';
    raw_message(&b, &m, more, n + 1);
    assert_refused(L, &b, &m);
    ljs__msgbuf_fini(&b);
    static const unsigned char boolean[] = {1, 0, 0, 0, 'e', 0, 'b', 2};
    raw_message(&b, &m, boolean, sizeof boolean);
    assert_refused(L, &b, &m);
    ljs__msgbuf_fini(&b);
    raw_message(&b, &m, bytes, n);
    m.len = n + 1;
    assert_refused(L, &b, &m);
    m.off = n + 1;
    m.len = 0;
    assert_refused(L, &b, &m);
    assert_string_equal(ljs__msg_name(&b, &m), "");
    ljs__msgbuf_fini(&b);
}

/* Every byte of a valid message set to every value: each result is either
 * refused by every decoder or accepted by every decoder, and no decoder
 * reads outside the message (ASan). */
static void test_codec_every_single_byte_change_is_decoded_safely(void **state)
{
    lua_State *L = *state;
    unsigned char bytes[128];
    size_t n = sample(bytes, sizeof bytes);
    for (size_t at = 0; at < n; at++) {
        for (int v = 0; v < 256; v++) {
            ljs__msgbuf_t b;
            ljs__msg_t m;
            unsigned char bad[128];
            memcpy(bad, bytes, n);
            bad[at] = (unsigned char)v;
            raw_message(&b, &m, bad, n);
            int ok = ljs__msg_check(&b, &m) == 0;
            seen_t seen = {0};
            assert_int_equal(ljs__msg_visit(&b, &m, on_kv, &seen) == 0, ok);
            assert_int_equal(decode(L, &b, &m) == 0, ok);
            lua_settop(L, 0);
            ljs__msgbuf_fini(&b);
        }
    }
}

/* Issue 13 item 2: spawn("a\0t\255\255\255\255", {}). The old codec found
 * the payload with strlen, so the bytes after the NUL were read as a table
 * of 4 billion entries. */
static void test_codec_spawn_name_with_nul_is_not_read_as_payload(void **state)
{
    lua_State *L = *state;
    ljs__msgbuf_t b = {0};
    static const char name[] = "a\0t\xff\xff\xff\xff";
    lua_newtable(L);
    assert_int_equal(encode(L, &b, name, sizeof name - 1), LUA_OK);
    const ljs__msg_t *m = &b.msgs[0];
    assert_int_equal(ljs__msg_name_len(&b, m), sizeof name - 1);
    assert_int_equal(strlen(ljs__msg_name(&b, m)), 1);
    seen_t seen = {0};
    assert_int_equal(ljs__msg_visit(&b, m, on_kv, &seen), 0);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(decode(L, &b, m), 0);
    assert_true(lua_istable(L, -1));
    lua_pushnil(L);
    assert_int_equal(lua_next(L, -2), 0); /* empty */
    lua_settop(L, 0);
    ljs__msgbuf_fini(&b);
}

/* ---- through the runtime ------------------------------------------------- */

static void on_line(void *ud, const ljs_log_line_t *line)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 4096 - n, "%s\n", line->text);
}

/* The same through a script: the owner applies the spawn commands without
 * reading out of bounds, refuses the NUL-holding names (or the script is
 * refused first, once the API checks them), and spawns only what is
 * well named: a field name with a NUL does not set the field it prefixes. */
static void test_codec_spawn_with_nul_names_through_a_frame(void **state)
{
    (void)state;
    char dir[64], path[96];
    ljs_test_tmpdir(dir, sizeof dir, "codec");
    snprintf(path, sizeof path, "%s/fz.lua", dir);
    ljs_test_write(path, "return {\n"
                         "  fields = { hp = 10, gen = 0 },\n"
                         "  tags = { 'fz' },\n"
                         "  update = function(self, dt)\n"
                         "    if self.gen > 0 then return end\n"
                         "    self.gen = 1\n"
                         "    pcall(spawn, 'fz\\0t\\255\\255\\255\\255', {})\n"
                         "    pcall(spawn, 'a\\0t\\255\\255\\255\\255', {})\n"
                         "    pcall(spawn, 'fz', { gen = 1, ['hp\\0x'] = 99 })\n"
                         "  end,\n"
                         "}\n");
    for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
        ljs_config_t cfg;
        ljs_runtime_t *rt;
        ljs_script_t s;
        ljs_entity_t e;
        ljs_test_clear_env();
        assert_int_equal(ljs_config_init(&cfg), LJS_OK);
        cfg.workers = ljs_test_worker_counts[k];
        assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
        assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
        assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
        assert_int_equal(ljs_frame(rt, 0.016), LJS_OK);
        assert_int_equal(ljs_frame(rt, 0.016), LJS_OK);
        /* The host's entity and at most the one well-named spawn (the
         * script API may refuse its NUL-holding key outright). */
        assert_in_range(ljs_entity_count(rt), 1, 2);
        const char *all[] = {"fz"};
        ljs_query_t q = {all, 1, NULL, 0};
        const ljs_entity_t *out;
        size_t n;
        assert_int_equal(ljs_query(rt, &q, &out, &n), LJS_OK);
        assert_int_equal(n, ljs_entity_count(rt));
        for (size_t i = 0; i < n; i++) {
            int64_t hp;
            assert_int_equal(ljs_field_get_integer(rt, out[i], "hp", &hp), LJS_OK);
            assert_int_equal(hp, 10); /* "hp\0x" = 99 did not land in hp */
        }
        static char console[4096];
        console[0] = '\0';
        ljs_console_drain(rt, on_line, console);
        ljs_runtime_destroy(rt);
    }
    ljs_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_carries_nul_in_names_keys_and_strings_whole),
        cmocka_unit_test(test_codec_host_payloads_round_trip),
        cmocka_unit_test(test_codec_spawn_payloads_carry_arrays),
        cmocka_unit_test(test_codec_refuses_nested_tables_and_functions_clearly),
        cmocka_unit_test(test_codec_refuses_every_truncation),
        cmocka_unit_test(test_codec_refuses_malformed_messages),
        cmocka_unit_test(test_codec_every_single_byte_change_is_decoded_safely),
        cmocka_unit_test(test_codec_spawn_name_with_nul_is_not_read_as_payload),
        cmocka_unit_test(test_codec_spawn_with_nul_names_through_a_frame),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
