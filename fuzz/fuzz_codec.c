/* fuzz_codec.c - the event/command payload codec (runtime/world/event.c).
 *
 * The first byte picks a mode (its top bit: the message is a spawn
 * command, whose tables may hold arrays for list fields, or an event):
 *   0  the rest is one message's bytes, as if an outbox held them: check,
 *      name, visit and decode must agree on whether it is well formed, never
 *      read outside it (ASan), and a decoded value re-encodes to a fixed
 *      point (encode(decode(encode(decode(x)))) == encode(decode(x)));
 *   1  the rest describes a host key/value payload: ljs__msg_push_kv, then
 *      decode must give back every entry;
 *   2  the rest describes a Lua value (a flat or nested table, NULs in
 *      names, keys and strings, numbers, booleans, functions): either
 *      ljs__msg_push_lua refuses it with an error, or decode gives it back
 *      exactly, embedded NULs included. */
#include "fuzz/fuzz.h"

#include "runtime/world/event.h"

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <string.h>

/* ---- input reader ------------------------------------------------------- */

typedef struct in_s {
    const uint8_t *p;
    size_t n;
} in_t;

static uint8_t in_u8(in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static void in_bytes(in_t *in, void *out, size_t n)
{
    size_t k = n < in->n ? n : in->n;
    memset(out, 0, n);
    memcpy(out, in->p, k);
    in->p += k;
    in->n -= k;
}

/* A short byte string (NULs allowed) borrowed from the input. */
static const char *in_str(in_t *in, size_t *len)
{
    size_t want = in_u8(in) % 24;
    *len = want < in->n ? want : in->n;
    const char *s = (const char *)in->p;
    in->p += *len;
    in->n -= *len;
    return s;
}

/* ---- Lua helpers (everything that can raise runs under lua_pcall) ------- */

typedef struct lua_job_s {
    ljs__msgbuf_t *b;
    const ljs__msg_t *m;
    const ljs__msg_t *head;
    const char *name;
    size_t name_len;
    int pooled;
    int rc;
} lua_job_t;

static int do_decode(lua_State *L)
{
    lua_job_t *j = lua_touserdata(L, 1);
    j->rc = ljs__msg_decode(L, j->b, j->m, j->pooled);
    return 1;
}

/* Encode the value at index 2 as a message named j->name. */
static int do_encode(lua_State *L)
{
    lua_job_t *j = lua_touserdata(L, 1);
    ljs__msg_push_lua(L, j->b, j->head, j->name, j->name_len, 2);
    return 0;
}

/* Decode message m of b; leaves the value (or an error) on top. Returns the
 * pcall status. */
static int decode(lua_State *L, const ljs__msgbuf_t *b, const ljs__msg_t *m, int pooled, int *rc)
{
    lua_job_t j = {(ljs__msgbuf_t *)b, m, NULL, NULL, 0, pooled, 0};
    lua_pushcfunction(L, do_decode);
    lua_pushlightuserdata(L, &j);
    int st = lua_pcall(L, 1, 1, 0);
    *rc = j.rc;
    return st;
}

/* Encode the value on top (popped) into a fresh message of b. */
static int encode(lua_State *L, ljs__msgbuf_t *b, uint32_t kind, const char *name, size_t name_len)
{
    ljs__msg_t head = {7, 9, 1, kind, 0, 0};
    lua_job_t j = {b, NULL, &head, name, name_len, 0, 0};
    lua_pushcfunction(L, do_encode);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &j);
    lua_insert(L, -2);
    return lua_pcall(L, 2, 0, 0);
}

static int same_value(lua_State *L, int a, int b)
{
    if (lua_type(L, a) == LUA_TNUMBER && lua_type(L, b) == LUA_TNUMBER) {
        if (lua_isinteger(L, a) != lua_isinteger(L, b))
            return 0;
        if (!lua_isinteger(L, a)) {
            double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
            return (isnan(x) && isnan(y)) || memcmp(&x, &y, sizeof x) == 0;
        }
    }
    return lua_rawequal(L, a, b);
}

/* 1 if the values at a and b are equal: scalars by same_value, tables
 * (`depth` levels) entry by entry. Raises only on memory. */
static int same_nested(lua_State *L, int a, int b, int depth)
{
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE || depth == 0)
        return same_value(L, a, b);
    size_t na = 0, nb = 0;
    int ok = 1;
    lua_pushnil(L);
    while (lua_next(L, a) != 0) {
        na++;
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        ok = ok && same_nested(L, -1, -2, depth - 1);
        lua_pop(L, 2);
    }
    lua_pushnil(L);
    while (lua_next(L, b) != 0) {
        nb++;
        lua_pop(L, 1);
    }
    return ok && na == nb;
}

/* A payload: a table whose values may be arrays (spawn commands). */
static int same_payload(lua_State *L, int a, int b)
{
    return same_nested(L, a, b, 2);
}

/* ---- visit -------------------------------------------------------------- */

typedef struct visit_s {
    size_t calls;
    uint64_t sum;
} visit_t;

static void on_kv(void *ud, const char *key, size_t key_len, const ljs__val_t *x)
{
    visit_t *v = ud;
    /* Touch every key byte and the terminator: ASan sees any overread. */
    for (size_t k = 0; k < key_len; k++)
        v->sum += (unsigned char)key[k];
    FUZZ_CHECK(key[key_len] == '\0');
    FUZZ_CHECK(strlen(key) <= key_len);
    v->calls++;
    v->sum += (uint64_t)x->type + (uint64_t)x->i + (x->n != x->n);
    if (x->type == LJS_TSTRING)
        FUZZ_CHECK(x->s[x->len] == '\0');
    /* A list's elements: exactly its count, each a scalar but nil. */
    ljs__val_t e;
    size_t pos = 0;
    int64_t k = 0;
    while (x->type == LJS_TLIST && ljs__msg_list_next(x, &pos, &e)) {
        FUZZ_CHECK(e.type != LJS_TNIL && e.type != LJS_TLIST);
        k++;
    }
    FUZZ_CHECK(x->type != LJS_TLIST || (k == x->i && pos == x->len));
}

/* ---- mode 0: arbitrary message bytes ------------------------------------- */

static void one_message(lua_State *L, in_t *in, uint32_t kind)
{
    /* An exact-size heap copy, so reading one byte past it is an ASan error. */
    ljs__msgbuf_t b = {0};
    b.bytes = malloc(in->n ? in->n : 1);
    FUZZ_CHECK(b.bytes != NULL);
    memcpy(b.bytes, in->p, in->n);
    b.nbytes = b.bytes_cap = in->n;
    ljs__msg_t m = {1, 2, 3, kind, 0, in->n};
    int ok = ljs__msg_check(&b, &m) == 0;
    const char *name = ljs__msg_name(&b, &m);
    size_t name_len = ljs__msg_name_len(&b, &m);
    FUZZ_CHECK(name[name_len] == '\0' && strlen(name) <= name_len);
    visit_t v = {0, 0};
    FUZZ_CHECK((ljs__msg_visit(&b, &m, on_kv, &v) == 0) == ok);
    FUZZ_CHECK(ok || v.calls == 0);
    /* A span that does not fit the buffer is refused, not read. */
    ljs__msg_t past = m;
    past.len = m.len + 1;
    FUZZ_CHECK(ljs__msg_check(&b, &past) != 0);
    int top = lua_gettop(L), rc;
    for (int pooled = 0; pooled <= 1; pooled++) {
        FUZZ_CHECK(decode(L, &b, &m, pooled, &rc) == LUA_OK);
        FUZZ_CHECK((rc == 0) == ok);
        FUZZ_CHECK(ok || lua_isnil(L, -1));
        if (pooled && lua_istable(L, -1))
            ljs__msg_pool_put(L, -1);
        lua_settop(L, top);
    }
    if (ok) {
        /* Re-encode the decoded value twice: the second encoding must be
         * byte-identical to the first (the encoding is canonical). */
        ljs__msgbuf_t e1 = {0}, e2 = {0};
        FUZZ_CHECK(decode(L, &b, &m, 0, &rc) == LUA_OK && rc == 0);
        FUZZ_CHECK(encode(L, &e1, kind, name, name_len) == LUA_OK && e1.n == 1);
        FUZZ_CHECK(ljs__msg_check(&e1, &e1.msgs[0]) == 0);
        FUZZ_CHECK(decode(L, &e1, &e1.msgs[0], 0, &rc) == LUA_OK && rc == 0);
        FUZZ_CHECK(encode(L, &e2, kind, name, name_len) == LUA_OK && e2.n == 1);
        FUZZ_CHECK(e1.msgs[0].len == e2.msgs[0].len &&
                   memcmp(e1.bytes + e1.msgs[0].off, e2.bytes + e2.msgs[0].off, e1.msgs[0].len) == 0);
        FUZZ_CHECK(ljs__msg_name_len(&e2, &e2.msgs[0]) == name_len &&
                   memcmp(ljs__msg_name(&e2, &e2.msgs[0]), name, name_len) == 0);
        ljs__msgbuf_fini(&e1);
        ljs__msgbuf_fini(&e2);
        lua_settop(L, top);
    }
    ljs__msgbuf_fini(&b);
}

/* ---- mode 1: host key/value payloads ------------------------------------ */

#define KV_MAX 320 /* past the codec's 256, to reach its refusal */

static void push_kv_value(lua_State *L, const ljs_kv_t *kv)
{
    switch (kv->type) {
    case LJS_TNIL:
        lua_pushnil(L);
        break;
    case LJS_TNUMBER:
        lua_pushnumber(L, kv->v.n);
        break;
    case LJS_TINTEGER:
        lua_pushinteger(L, (lua_Integer)kv->v.i);
        break;
    case LJS_TBOOLEAN:
        lua_pushboolean(L, kv->v.b);
        break;
    default:
        lua_pushstring(L, kv->v.s);
    }
}

static void host_payload(lua_State *L, in_t *in)
{
    static ljs_kv_t kv[KV_MAX];
    static char keys[KV_MAX][8], strs[KV_MAX][8];
    char name[8];
    in_bytes(in, name, sizeof name - 1);
    name[sizeof name - 1] = '\0';
    size_t n = in_u8(in);
    if (n > 240)
        n = 240 + (n - 240) * 5;
    for (size_t i = 0; i < n; i++) {
        uint8_t t = in_u8(in);
        in_bytes(in, keys[i], sizeof keys[i] - 1);
        keys[i][sizeof keys[i] - 1] = '\0';
        kv[i].key = (t & 0x80) ? NULL : keys[i];
        switch (t % 5) {
        case 0:
            kv[i].type = LJS_TNIL;
            break;
        case 1:
            kv[i].type = LJS_TNUMBER;
            in_bytes(in, &kv[i].v.n, 8);
            break;
        case 2:
            kv[i].type = LJS_TINTEGER;
            in_bytes(in, &kv[i].v.i, 8);
            break;
        case 3:
            kv[i].type = LJS_TBOOLEAN;
            kv[i].v.b = in_u8(in);
            break;
        default:
            kv[i].type = LJS_TSTRING;
            in_bytes(in, strs[i], sizeof strs[i] - 1);
            strs[i][sizeof strs[i] - 1] = '\0';
            kv[i].v.s = (t & 0x40) ? NULL : strs[i];
        }
    }
    /* One entry without a key is a scalar payload; otherwise a table whose
     * every entry needs a key. */
    int scalar = n == 1 && kv[0].key == NULL;
    int bad = n > 256;
    for (size_t i = 0; i < n; i++)
        bad |= (!scalar && kv[i].key == NULL) || (kv[i].type == LJS_TSTRING && kv[i].v.s == NULL);
    ljs__msgbuf_t b = {0};
    ljs__msg_t head = {1, 0, 0, LJS__MSG_EVENT, 0, 0};
    int rc = ljs__msg_push_kv(&b, &head, name, kv, n);
    FUZZ_CHECK(rc == (bad ? LJS_EINVAL : LJS_OK));
    FUZZ_CHECK(b.n == (bad ? 0u : 1u));
    if (!bad) {
        const ljs__msg_t *m = &b.msgs[0];
        FUZZ_CHECK(ljs__msg_check(&b, m) == 0 && strcmp(ljs__msg_name(&b, m), name) == 0 &&
                   ljs__msg_name_len(&b, m) == strlen(name));
        int top = lua_gettop(L), drc;
        FUZZ_CHECK(decode(L, &b, m, 0, &drc) == LUA_OK && drc == 0);
        /* What the payload should be. With a key given twice either value
         * may win, so such payloads only need to decode. */
        int dup = 0;
        for (size_t i = 0; i < n && !scalar; i++)
            for (size_t k = i + 1; k < n; k++)
                dup |= strcmp(kv[i].key, kv[k].key) == 0;
        if (!dup) {
            if (n == 0) {
                lua_pushnil(L);
            } else if (scalar) {
                push_kv_value(L, &kv[0]);
            } else {
                lua_createtable(L, 0, (int)n);
                for (size_t i = 0; i < n; i++) {
                    lua_pushstring(L, kv[i].key);
                    push_kv_value(L, &kv[i]);
                    lua_rawset(L, -3);
                }
            }
            FUZZ_CHECK(same_payload(L, -1, -2));
        }
        lua_settop(L, top);
    }
    ljs__msgbuf_fini(&b);
}

/* ---- mode 2: Lua values ------------------------------------------------- */

/* Push one value described by the input; `depth` > 0 may nest a table. */
static void push_lua_value(lua_State *L, in_t *in, int depth)
{
    uint8_t t = in_u8(in);
    size_t len;
    const char *s;
    double d;
    int64_t i;
    switch (t % 9) {
    case 0:
        lua_pushnil(L);
        break;
    case 1:
        in_bytes(in, &d, 8);
        lua_pushnumber(L, d);
        break;
    case 2:
        in_bytes(in, &i, 8);
        lua_pushinteger(L, (lua_Integer)i);
        break;
    case 3:
        lua_pushinteger(L, (lua_Integer)(int8_t)in_u8(in)); /* small keys collide */
        break;
    case 4:
        lua_pushboolean(L, in_u8(in) & 1);
        break;
    case 5:
    case 6:
        s = in_str(in, &len);
        lua_pushlstring(L, s, len);
        break;
    case 7:
        if (depth > 0 && (in->n > 0 && (*in->p & 1))) {
            /* An array, as for a list field: usually scalars (depth 0), so
             * a spawn command accepts it; nil or a function makes a hole. */
            size_t n = in_u8(in) * 5u; /* up to 1275: past LJS_LIST_MAX */
            lua_createtable(L, (int)n, 0);
            for (size_t k = 1; k <= n && in->n > 0; k++) {
                push_lua_value(L, in, 0);
                lua_rawseti(L, -2, (lua_Integer)k);
            }
            break;
        }
        if (depth > 0) {
            size_t n = in_u8(in);
            if (n & 1)
                n *= 2; /* up to 508 entries: past the codec's 256 */
            lua_createtable(L, 0, 0);
            for (size_t k = 0; k < n && in->n > 0; k++) {
                push_lua_value(L, in, depth - 1); /* key: nil or NaN are skipped */
                push_lua_value(L, in, depth - 1);
                if (lua_isnil(L, -2) ||
                    (lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2)))
                    lua_pop(L, 2);
                else
                    lua_rawset(L, -3);
            }
            break;
        }
        lua_pushnil(L);
        break;
    default:
        lua_pushcfunction(L, do_decode); /* not a payload type */
    }
}

static void lua_payload(lua_State *L, in_t *in, uint32_t kind)
{
    int top = lua_gettop(L);
    size_t name_len;
    const char *name = in_str(in, &name_len);
    push_lua_value(L, in, 2);
    lua_pushvalue(L, -1); /* the original, kept for the comparison */
    ljs__msgbuf_t b = {0};
    int st = encode(L, &b, kind, name, name_len);
    if (st != LUA_OK) {
        /* Refused: a clear message, and nothing was queued. */
        FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING && b.n == 0);
        FUZZ_CHECK(strstr(lua_tostring(L, -1), "payload") != NULL ||
                   strstr(lua_tostring(L, -1), "memory") != NULL);
    } else {
        FUZZ_CHECK(b.n == 1);
        const ljs__msg_t *m = &b.msgs[0];
        FUZZ_CHECK(ljs__msg_check(&b, m) == 0);
        FUZZ_CHECK(ljs__msg_name_len(&b, m) == name_len && memcmp(ljs__msg_name(&b, m), name, name_len) == 0);
        int rc;
        FUZZ_CHECK(decode(L, &b, m, 1, &rc) == LUA_OK && rc == 0);
        FUZZ_CHECK(same_payload(L, -1, -2));
        visit_t v = {0, 0};
        FUZZ_CHECK(ljs__msg_visit(&b, m, on_kv, &v) == 0);
        if (lua_istable(L, -1))
            ljs__msg_pool_put(L, -1);
    }
    ljs__msgbuf_fini(&b);
    lua_settop(L, top);
}

/* ---- entry -------------------------------------------------------------- */

static int run_input(lua_State *L)
{
    in_t *in = lua_touserdata(L, 1);
    lua_settop(L, 0);
    uint8_t mode = in_u8(in);
    uint32_t kind = (mode & 0x80) ? LJS__MSG_SPAWN : LJS__MSG_EVENT;
    switch (mode % 3) {
    case 0:
        one_message(L, in, kind);
        break;
    case 1:
        host_payload(L, in);
        break;
    default:
        lua_payload(L, in, kind);
    }
    FUZZ_CHECK(lua_gettop(L) == 0);
    return 0;
}

static int init_state(lua_State *L)
{
    ljs__msg_pool_init(L);
    return 0;
}

int ljs_fuzz_codec(const uint8_t *data, size_t size)
{
    static lua_State *L; /* one state for the whole run: inputs are independent */
    if (L == NULL) {
        L = luaL_newstate();
        FUZZ_CHECK(L != NULL);
        lua_pushcfunction(L, init_state);
        FUZZ_CHECK(lua_pcall(L, 0, 0, 0) == LUA_OK);
    }
    in_t in = {data, size};
    /* Everything that can raise runs inside this pcall (memory errors only:
     * the state has no limit). */
    lua_pushcfunction(L, run_input);
    lua_pushlightuserdata(L, &in);
    FUZZ_CHECK(lua_pcall(L, 1, 0, 0) == LUA_OK);
    return 0;
}

LJS_FUZZ_MAIN(ljs_fuzz_codec)
