/* event.c - message buffers and the payload codec (see event.h).
 *
 * Encoding, after the NUL-terminated name: one value, where a value is
 *   'n' | 'd' double | 'i' int64 | 'b' u8 | 's' u32 len, bytes, NUL
 *   | 't' u32 count, then count (key, value) pairs, keys 'i' or 's',
 * integer keys ascending first, then string keys in byte order. */
#include "runtime/world/event.h"

#include "runtime/world/sort.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD_KEYS 256

void ljs__msgbuf_fini(ljs__msgbuf_t *b)
{
    free(b->msgs);
    free(b->bytes);
    memset(b, 0, sizeof *b);
}

void ljs__msgbuf_clear(ljs__msgbuf_t *b)
{
    b->n = 0;
    b->nbytes = 0;
}

static int reserve_bytes(ljs__msgbuf_t *b, size_t more)
{
    if (b->nbytes + more <= b->bytes_cap)
        return 0;
    size_t cap = b->bytes_cap ? b->bytes_cap : 4096;
    while (cap < b->nbytes + more)
        cap *= 2;
    unsigned char *p = realloc(b->bytes, cap);
    if (p == NULL)
        return -1;
    b->bytes = p;
    b->bytes_cap = cap;
    return 0;
}

static int reserve_msgs(ljs__msgbuf_t *b, size_t more)
{
    if (b->n + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more)
        cap *= 2;
    ljs__msg_t *p = realloc(b->msgs, cap * sizeof *p);
    if (p == NULL)
        return -1;
    b->msgs = p;
    b->cap = cap;
    return 0;
}

static int reserve_msg(ljs__msgbuf_t *b)
{
    return reserve_msgs(b, 1);
}

int ljs__msgbuf_reserve(ljs__msgbuf_t *b, size_t msgs, size_t bytes)
{
    return reserve_msgs(b, msgs) || reserve_bytes(b, bytes) ? -1 : 0;
}

static int put(ljs__msgbuf_t *b, const void *p, size_t n)
{
    if (reserve_bytes(b, n))
        return -1;
    memcpy(b->bytes + b->nbytes, p, n);
    b->nbytes += n;
    return 0;
}

static int put_u8(ljs__msgbuf_t *b, unsigned char c)
{
    return put(b, &c, 1);
}

static int put_str(ljs__msgbuf_t *b, const char *s, size_t len)
{
    uint32_t n = (uint32_t)len;
    return put_u8(b, 's') || put(b, &n, 4) || put(b, s, len) || put_u8(b, 0);
}

int ljs__msgbuf_append(ljs__msgbuf_t *dst, const ljs__msgbuf_t *src, const ljs__msg_t *m)
{
    size_t off = dst->nbytes;
    if (reserve_msg(dst) || put(dst, src->bytes + m->off, m->len))
        return -1;
    dst->msgs[dst->n] = *m;
    dst->msgs[dst->n].off = off;
    dst->n++;
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_by_target(const void *x, const void *y)
{
    const ljs__msg_t *a = x, *b = y;
    int c = cmp_u64((uint32_t)a->target, (uint32_t)b->target);
    if (c == 0)
        c = cmp_u64(a->target, b->target);
    if (c == 0)
        c = cmp_u64(a->sender, b->sender);
    return c ? c : cmp_u64(a->seq, b->seq);
}

static int cmp_by_sender(const void *x, const void *y)
{
    const ljs__msg_t *a = x, *b = y;
    int c = cmp_u64((uint32_t)a->sender, (uint32_t)b->sender);
    if (c == 0)
        c = cmp_u64(a->sender, b->sender);
    return c ? c : cmp_u64(a->seq, b->seq);
}

void ljs__msgbuf_sort(ljs__msgbuf_t *b, int by_target)
{
    /* (sender, seq) is unique per message, so the order is total and the sort's
     * instability cannot matter. Entities sort by slot index first, which is
     * the order ljs-run's digest and the update phase use. */
    if (b->n > 1)
        ljs__sort(b->msgs, b->n, sizeof *b->msgs, by_target ? cmp_by_target : cmp_by_sender);
}

/* ---- encoding from Lua ------------------------------------------------ */

static void oom(lua_State *L)
{
    luaL_error(L, "out of memory encoding a message");
}

static void put_scalar_lua(lua_State *L, ljs__msgbuf_t *b, int idx, const char *where)
{
    int r = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        r = put_u8(b, 'n');
        break;
    case LUA_TBOOLEAN:
        r = put_u8(b, 'b') || put_u8(b, (unsigned char)lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            int64_t i = lua_tointeger(L, idx);
            r = put_u8(b, 'i') || put(b, &i, 8);
        } else {
            double d = lua_tonumber(L, idx);
            r = put_u8(b, 'd') || put(b, &d, 8);
        }
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        r = put_str(b, s, len);
        break;
    }
    default:
        luaL_error(
            L,
            "bad payload %s: a %s (payloads hold nil, numbers, booleans, strings or a flat table of those)",
            where, luaL_typename(L, idx));
    }
    if (r)
        oom(L);
}

typedef struct key_s {
    int is_int;
    int64_t i;
    const char *s;
    size_t len;
} key_t_;

static int cmp_key(const void *x, const void *y)
{
    const key_t_ *a = x, *b = y;
    if (a->is_int != b->is_int)
        return a->is_int ? -1 : 1;
    if (a->is_int)
        return (a->i > b->i) - (a->i < b->i);
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void put_table_lua(lua_State *L, ljs__msgbuf_t *b, int idx)
{
    key_t_ keys[MAX_PAYLOAD_KEYS];
    uint32_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (n == MAX_PAYLOAD_KEYS)
            luaL_error(L, "bad payload: table has more than %d entries", MAX_PAYLOAD_KEYS);
        int kt = lua_type(L, -2);
        if (kt == LUA_TNUMBER && lua_isinteger(L, -2)) {
            keys[n] = (key_t_){1, lua_tointeger(L, -2), NULL, 0};
        } else if (kt == LUA_TSTRING) {
            /* The key string stays alive: the table holds it. */
            keys[n] = (key_t_){0, 0, NULL, 0};
            keys[n].s = lua_tolstring(L, -2, &keys[n].len);
        } else {
            luaL_error(L, "bad payload: table key of type %s (keys must be strings or integers)",
                       luaL_typename(L, -2));
        }
        if (lua_type(L, -1) == LUA_TTABLE)
            luaL_error(L, "bad payload: nested table (payload tables must be flat)");
        n++;
        lua_pop(L, 1);
    }
    /* cppcheck-suppress uninitvar ; keys[0..n) are all set by the loop above */
    ljs__sort(keys, n, sizeof *keys, cmp_key);
    if (put_u8(b, 't') || put(b, &n, 4))
        oom(L);
    for (uint32_t k = 0; k < n; k++) {
        if (keys[k].is_int) {
            if (put_u8(b, 'i') || put(b, &keys[k].i, 8))
                oom(L);
            lua_rawgeti(L, idx, keys[k].i);
        } else {
            if (put_str(b, keys[k].s, keys[k].len))
                oom(L);
            lua_pushlstring(L, keys[k].s, keys[k].len);
            lua_rawget(L, idx);
        }
        put_scalar_lua(L, b, -1, "value");
        lua_pop(L, 1);
    }
}

void ljs__msg_push_lua(lua_State *L, ljs__msgbuf_t *b, const ljs__msg_t *head, const char *name,
                       size_t name_len, int idx)
{
    idx = lua_absindex(L, idx);
    size_t start = b->nbytes;
    if (reserve_msg(b) || put(b, name, name_len) || put_u8(b, 0))
        oom(L);
    if (lua_type(L, idx) == LUA_TTABLE)
        put_table_lua(L, b, idx);
    else
        put_scalar_lua(L, b, idx, "value");
    ljs__msg_t *m = &b->msgs[b->n++];
    *m = *head;
    m->off = start;
    m->len = b->nbytes - start;
}

/* ---- encoding from the host ------------------------------------------------ */

static int put_kv_value(ljs__msgbuf_t *b, const ljs_kv_t *kv)
{
    switch (kv->type) {
    case LJS_TNIL:
        return put_u8(b, 'n') ? LJS_ENOMEM : LJS_OK;
    case LJS_TNUMBER:
        return put_u8(b, 'd') || put(b, &kv->v.n, 8) ? LJS_ENOMEM : LJS_OK;
    case LJS_TINTEGER:
        return put_u8(b, 'i') || put(b, &kv->v.i, 8) ? LJS_ENOMEM : LJS_OK;
    case LJS_TBOOLEAN:
        return put_u8(b, 'b') || put_u8(b, kv->v.b != 0) ? LJS_ENOMEM : LJS_OK;
    case LJS_TSTRING:
        if (kv->v.s == NULL)
            return LJS_EINVAL;
        return put_str(b, kv->v.s, strlen(kv->v.s)) ? LJS_ENOMEM : LJS_OK;
    }
    return LJS_EINVAL;
}

static int cmp_kv(const void *x, const void *y)
{
    return strcmp((*(const ljs_kv_t *const *)x)->key, (*(const ljs_kv_t *const *)y)->key);
}

int ljs__msg_push_kv(ljs__msgbuf_t *b, const ljs__msg_t *head, const char *name, const ljs_kv_t *kv, size_t n)
{
    const ljs_kv_t *sorted[MAX_PAYLOAD_KEYS];
    size_t start = b->nbytes;
    int rc = LJS_OK;
    if (n > MAX_PAYLOAD_KEYS || (n > 1 && kv == NULL))
        return LJS_EINVAL;
    if (reserve_msg(b) || put(b, name, strlen(name) + 1))
        return LJS_ENOMEM;
    if (n == 0) {
        rc = put_u8(b, 'n') ? LJS_ENOMEM : LJS_OK;
    } else if (n == 1 && kv[0].key == NULL) {
        rc = put_kv_value(b, &kv[0]);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (kv[i].key == NULL)
                rc = LJS_EINVAL;
            sorted[i] = &kv[i];
        }
        if (rc == LJS_OK) {
            qsort(sorted, n, sizeof *sorted, cmp_kv); /* NOLINT(bugprone-sizeof-expression): sorts pointers */
            uint32_t cnt = (uint32_t)n;
            rc = put_u8(b, 't') || put(b, &cnt, 4) ? LJS_ENOMEM : LJS_OK;
        }
        for (size_t i = 0; i < n && rc == LJS_OK; i++) {
            rc = put_str(b, sorted[i]->key, strlen(sorted[i]->key)) ? LJS_ENOMEM : LJS_OK;
            if (rc == LJS_OK)
                rc = put_kv_value(b, sorted[i]);
        }
    }
    if (rc != LJS_OK) {
        b->nbytes = start; /* drop the partial message */
        return rc;
    }
    ljs__msg_t *m = &b->msgs[b->n++];
    *m = *head;
    m->off = start;
    m->len = b->nbytes - start;
    return LJS_OK;
}

/* ---- decoding ------------------------------------------------------------------ */

const char *ljs__msg_name(const ljs__msgbuf_t *b, const ljs__msg_t *m)
{
    return (const char *)b->bytes + m->off;
}

/* Read one value at *p, advancing it; pushes it when L != NULL. */
static void read_value(lua_State *L, const unsigned char **p, ljs_type_t *type, double *n, int64_t *i,
                       const char **s)
{
    unsigned char tag = *(*p)++;
    uint32_t len;
    *type = LJS_TNIL;
    switch (tag) {
    case 'd':
        memcpy(n, *p, 8);
        *p += 8;
        *type = LJS_TNUMBER;
        if (L)
            lua_pushnumber(L, *n);
        break;
    case 'i':
        memcpy(i, *p, 8);
        *p += 8;
        *type = LJS_TINTEGER;
        if (L)
            lua_pushinteger(L, *i);
        break;
    case 'b':
        *i = *(*p)++;
        *type = LJS_TBOOLEAN;
        if (L)
            lua_pushboolean(L, (int)*i);
        break;
    case 's':
        memcpy(&len, *p, 4);
        *p += 4;
        *s = (const char *)*p;
        *p += len + 1;
        *type = LJS_TSTRING;
        if (L)
            lua_pushlstring(L, *s, len);
        break;
    default:
        if (L)
            lua_pushnil(L);
        break;
    }
}

static const unsigned char *payload_start(const ljs__msgbuf_t *b, const ljs__msg_t *m)
{
    const unsigned char *p = b->bytes + m->off;
    return p + strlen((const char *)p) + 1;
}

void ljs__msg_decode(lua_State *L, const ljs__msgbuf_t *b, const ljs__msg_t *m, int pooled)
{
    const unsigned char *p = payload_start(b, m);
    ljs_type_t t;
    double n = 0;
    int64_t i = 0;
    const char *s = NULL;
    if (*p != 't') {
        read_value(L, &p, &t, &n, &i, &s);
        return;
    }
    uint32_t cnt;
    memcpy(&cnt, p + 1, 4);
    p += 5;
    if (pooled)
        ljs__msg_pool_get(L);
    else
        lua_createtable(L, 0, (int)cnt);
    for (uint32_t k = 0; k < cnt; k++) {
        read_value(L, &p, &t, &n, &i, &s); /* key */
        read_value(L, &p, &t, &n, &i, &s); /* value */
        lua_rawset(L, -3);
    }
}

/* The pool is an array in the registry; a table's hash part keeps its size
 * when cleared, so a reused payload table refills without allocating. */
#define POOL_MAX 64
static const char pool_key; /* registry key of the pool (light userdata) */

void ljs__msg_pool_init(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &pool_key);
}

void ljs__msg_pool_get(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_key);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n > 0) {
        lua_rawgeti(L, -1, n);
        lua_pushnil(L);
        lua_rawseti(L, -3, n);
    } else {
        lua_createtable(L, 0, 4);
    }
    lua_remove(L, -2);
}

void ljs__msg_pool_put(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_getmetatable(L, idx)) { /* a handler may have given it one */
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setmetatable(L, idx);
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, idx); /* clearing an existing key during traversal is allowed */
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_key);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n < POOL_MAX) {
        lua_pushvalue(L, idx);
        lua_rawseti(L, -2, n + 1);
    }
    lua_pop(L, 1);
}

void ljs__msg_visit(const ljs__msgbuf_t *b, const ljs__msg_t *m, ljs__kv_visit_fn fn, void *ud)
{
    const unsigned char *p = payload_start(b, m);
    if (*p != 't')
        return;
    uint32_t cnt;
    memcpy(&cnt, p + 1, 4);
    p += 5;
    for (uint32_t k = 0; k < cnt; k++) {
        ljs_type_t kt, vt;
        double n = 0;
        int64_t i = 0;
        const char *key = NULL, *s;
        read_value(NULL, &p, &kt, &n, &i, &key);
        read_value(NULL, &p, &vt, &n, &i, &s);
        if (kt == LJS_TSTRING)
            fn(ud, key, vt, n, i);
    }
}
