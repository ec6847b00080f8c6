/* event.c - message buffers and the payload codec (see event.h).
 *
 * Encoding (host byte order: bytes never leave the process):
 *   message = u32 name_len, name bytes, NUL, value
 *   value   = 'n' | 'd' double | 'i' int64 | 'b' u8 (0 or 1)
 *           | 's' u32 len, bytes, NUL
 *           | 't' u32 count (<= 256), then count (key, entry) pairs, keys
 *             'i' or 's', integer keys ascending first, then string keys in
 *             byte order (only at the top: payload tables are flat)
 *   entry   = scalar | 'a' u32 count (<= LJS_LIST_MAX), then count scalars
 *             but nil: an array, for a list field (spawn commands only;
 *             events stay flat, so the host's decoder never meets one).
 * Names and strings carry their length, so embedded NULs travel whole; the
 * trailing NUL only lets a consumer that wants a C string check
 * strlen(s) == len and refuse the rest.
 *
 * Decoding trusts nothing but the message's (off, len): every read is
 * bounds-checked and a message is validated whole before anything is
 * pushed or visited, so no byte sequence reads out of bounds or leaves a
 * half-built value (fuzz/fuzz_codec.c, tests/test_codec.c). */
#include "runtime/world/event.h"

#include "jobs/mem.h"

#include "runtime/world/sort.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD_KEYS 256

void ljs__msgbuf_fini(ljs__msgbuf_t *b)
{
    ljs__free(b->msgs);
    ljs__free(b->bytes);
    memset(b, 0, sizeof *b);
}

void ljs__msgbuf_clear(ljs__msgbuf_t *b)
{
    b->n = 0;
    b->nbytes = 0;
}

static int reserve_bytes(ljs__msgbuf_t *b, size_t more)
{
    if (more > SIZE_MAX / 4 - b->nbytes) /* the doubling below cannot overflow */
        return -1;
    if (b->nbytes + more <= b->bytes_cap)
        return 0;
    size_t cap = b->bytes_cap ? b->bytes_cap : 4096;
    while (cap < b->nbytes + more)
        cap *= 2;
    unsigned char *p = ljs__realloc(b->bytes, cap);
    if (p == NULL)
        return -1;
    b->bytes = p;
    b->bytes_cap = cap;
    return 0;
}

static int reserve_msgs(ljs__msgbuf_t *b, size_t more)
{
    if (more > SIZE_MAX / 4 / sizeof *b->msgs - b->n)
        return -1;
    if (b->n + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more)
        cap *= 2;
    ljs__msg_t *p = ljs__realloc(b->msgs, cap * sizeof *p);
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

/* Callers check len <= LJS__MSG_STR_MAX first (a longer string would not
 * fit the u32 length). */
static int put_str(ljs__msgbuf_t *b, const char *s, size_t len)
{
    uint32_t n = (uint32_t)len;
    return put_u8(b, 's') || put(b, &n, 4) || put(b, s, len) || put_u8(b, 0);
}

static int put_name(ljs__msgbuf_t *b, const char *name, size_t len)
{
    uint32_t n = (uint32_t)len;
    return put(b, &n, 4) || put(b, name, len) || put_u8(b, 0);
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

static void check_len(lua_State *L, size_t len, const char *what)
{
    if (len > LJS__MSG_STR_MAX)
        luaL_error(L, "bad payload: %s of %zu bytes (at most %zu)", what, len, (size_t)LJS__MSG_STR_MAX);
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
        check_len(L, len, "string");
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

/* The array at idx (keys 1..n, scalar values but nil), for a list
 * field: its length, or an error naming `key`. */
static uint32_t array_len(lua_State *L, int idx, const char *key)
{
    static const char what[] =
        "bad payload: field '%s' must be a list (a table with keys 1..n holding numbers, "
        "booleans or strings; at most %d)";
    idx = lua_absindex(L, idx);
    size_t n = lua_rawlen(L, idx), count = 0;
    if (n > LJS_LIST_MAX)
        luaL_error(L, what, key, LJS_LIST_MAX);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int t = lua_type(L, -1);
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || (size_t)lua_tointeger(L, -2) > n ||
            (t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TSTRING))
            luaL_error(L, what, key, LJS_LIST_MAX);
        count++;
        lua_pop(L, 1);
    }
    if (count != n) /* a hole: rawlen is only one of the borders */
        luaL_error(L, what, key, LJS_LIST_MAX);
    return (uint32_t)n;
}

static void put_array_lua(lua_State *L, ljs__msgbuf_t *b, int idx, uint32_t n)
{
    idx = lua_absindex(L, idx);
    if (put_u8(b, 'a') || put(b, &n, 4))
        oom(L);
    for (uint32_t k = 1; k <= n; k++) {
        lua_rawgeti(L, idx, k);
        put_scalar_lua(L, b, -1, "list element");
        lua_pop(L, 1);
    }
}

static void put_table_lua(lua_State *L, ljs__msgbuf_t *b, int idx, int lists)
{
    key_t_ keys[MAX_PAYLOAD_KEYS];
    uint32_t n = 0;
    if (!lua_checkstack(L, 8))
        oom(L);
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
            check_len(L, keys[n].len, "table key");
        } else {
            return (void)luaL_error(L, "bad payload: table key of type %s (keys must be strings or integers)",
                                    luaL_typename(L, -2));
        }
        if (lua_type(L, -1) == LUA_TTABLE && !lists)
            luaL_error(L, "bad payload: nested table (event payload tables must be flat)");
        if (lua_type(L, -1) == LUA_TTABLE)
            (void)array_len(L, -1, keys[n].is_int ? "(integer key)" : keys[n].s);
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
        if (lua_type(L, -1) == LUA_TTABLE) /* only with lists: checked above */
            put_array_lua(L, b, -1, array_len(L, -1, ""));
        else
            put_scalar_lua(L, b, -1, "value");
        lua_pop(L, 1);
    }
}

void ljs__msg_push_lua(lua_State *L, ljs__msgbuf_t *b, const ljs__msg_t *head, const char *name,
                       size_t name_len, int idx)
{
    idx = lua_absindex(L, idx);
    size_t start = b->nbytes;
    if (name_len > LJS__MSG_STR_MAX)
        luaL_error(L, "message name of %zu bytes (at most %zu)", name_len, (size_t)LJS__MSG_STR_MAX);
    if (reserve_msg(b) || put_name(b, name, name_len))
        oom(L);
    if (lua_type(L, idx) == LUA_TTABLE)
        put_table_lua(L, b, idx, head->kind == LJS__MSG_SPAWN);
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
        if (kv->v.s == NULL || strlen(kv->v.s) > LJS__MSG_STR_MAX)
            return LJS_EINVAL;
        return put_str(b, kv->v.s, strlen(kv->v.s)) ? LJS_ENOMEM : LJS_OK;
    case LJS_TENTITY: /* scripts hold entities as integers */
        return put_u8(b, 'i') || put(b, &kv->v.i, 8) ? LJS_ENOMEM : LJS_OK;
    default:
        return LJS_EINVAL;
    }
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
    if (n > MAX_PAYLOAD_KEYS || (n > 0 && kv == NULL) || strlen(name) > LJS__MSG_STR_MAX)
        return LJS_EINVAL;
    if (reserve_msg(b) || put_name(b, name, strlen(name)))
        return LJS_ENOMEM;
    if (n == 0) {
        rc = put_u8(b, 'n') ? LJS_ENOMEM : LJS_OK;
    } else if (n == 1 && kv[0].key == NULL) {
        rc = put_kv_value(b, &kv[0]);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (kv[i].key == NULL || strlen(kv[i].key) > LJS__MSG_STR_MAX)
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

/* A bounds-checked reader over one message's bytes. */
typedef struct cur_s {
    const unsigned char *p, *end;
} cur_t;

static int take(cur_t *c, void *out, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        return -1;
    memcpy(out, c->p, n);
    c->p += n;
    return 0;
}

/* A length-prefixed byte string followed by its NUL. */
static int take_str(cur_t *c, ljs__val_t *v)
{
    uint32_t len;
    if (take(c, &len, 4) || (size_t)(c->end - c->p) <= len || c->p[len] != 0)
        return -1;
    v->type = LJS_TSTRING;
    v->s = (const char *)c->p;
    v->len = len;
    c->p += (size_t)len + 1;
    return 0;
}

/* One scalar. Returns 0, or -1 if the bytes are not one. */
static int take_scalar(cur_t *c, ljs__val_t *v)
{
    unsigned char tag, byte;
    memset(v, 0, sizeof *v);
    if (take(c, &tag, 1))
        return -1;
    switch (tag) {
    case 'n':
        v->type = LJS_TNIL;
        return 0;
    case 'd':
        v->type = LJS_TNUMBER;
        return take(c, &v->n, 8);
    case 'i':
        v->type = LJS_TINTEGER;
        return take(c, &v->i, 8);
    case 'b':
        v->type = LJS_TBOOLEAN;
        if (take(c, &byte, 1) || byte > 1)
            return -1;
        v->i = byte;
        return 0;
    case 's':
        return take_str(c, v);
    default:
        return -1;
    }
}

/* A table entry's value: a scalar, or with `lists` an array of scalars
 * but nil (v: LJS_TLIST, i = count, s/len = the elements' bytes). */
static int take_entry(cur_t *c, ljs__val_t *v, int lists)
{
    if (!lists || c->p == c->end || *c->p != 'a')
        return take_scalar(c, v);
    uint32_t count;
    ljs__val_t e;
    c->p++;
    if (take(c, &count, 4) || count > LJS_LIST_MAX)
        return -1;
    const unsigned char *start = c->p;
    for (uint32_t k = 0; k < count; k++)
        if (take_scalar(c, &e) || e.type == LJS_TNIL)
            return -1;
    memset(v, 0, sizeof *v);
    v->type = LJS_TLIST;
    v->i = count;
    v->s = (const char *)start;
    v->len = (size_t)(c->p - start);
    return 0;
}

int ljs__msg_list_next(const ljs__val_t *list, size_t *pos, ljs__val_t *out)
{
    if (*pos >= list->len)
        return 0;
    cur_t c = {(const unsigned char *)list->s + *pos, (const unsigned char *)list->s + list->len};
    if (take_scalar(&c, out)) /* validated when the list was taken: never */
        return 0;
    *pos = (size_t)(c.p - (const unsigned char *)list->s);
    return 1;
}

/* Messages that may hold arrays: spawn commands (list fields). */
static int has_lists(const ljs__msg_t *m)
{
    return m->kind == LJS__MSG_SPAWN;
}

/* A table key: 'i' or 's' only (what the encoders write). */
static int take_key(cur_t *c, ljs__val_t *v)
{
    memset(v, 0, sizeof *v);
    if (c->p == c->end || (*c->p != 'i' && *c->p != 's'))
        return -1;
    return take_scalar(c, v);
}

/* The message's name and a cursor over its payload, or -1 if the message's
 * span or name is malformed. */
static int open_msg(const ljs__msgbuf_t *b, const ljs__msg_t *m, ljs__val_t *name, cur_t *c)
{
    if (b->bytes == NULL || m->off > b->nbytes || m->len > b->nbytes - m->off)
        return -1;
    c->p = b->bytes + m->off;
    c->end = c->p + m->len;
    uint32_t len;
    if (take(c, &len, 4) || (size_t)(c->end - c->p) <= len || c->p[len] != 0)
        return -1;
    name->s = (const char *)c->p;
    name->len = len;
    c->p += (size_t)len + 1;
    return 0;
}

/* Validate the payload at c (a scalar, or a flat table of at most
 * MAX_PAYLOAD_KEYS entries) ending exactly at c->end; *cnt gets the entry
 * count (0 for a scalar). */
static int check_payload(cur_t c, int lists, int *is_table, uint32_t *cnt)
{
    ljs__val_t k, v;
    *is_table = 0;
    *cnt = 0;
    if (c.p < c.end && *c.p == 't') {
        c.p++;
        if (take(&c, cnt, 4) || *cnt > MAX_PAYLOAD_KEYS)
            return -1;
        *is_table = 1;
        for (uint32_t e = 0; e < *cnt; e++)
            if (take_key(&c, &k) || take_entry(&c, &v, lists))
                return -1;
    } else if (take_scalar(&c, &v)) {
        return -1;
    }
    return c.p == c.end ? 0 : -1;
}

int ljs__msg_check(const ljs__msgbuf_t *b, const ljs__msg_t *m)
{
    ljs__val_t name;
    cur_t c;
    int is_table;
    uint32_t cnt;
    return open_msg(b, m, &name, &c) || check_payload(c, has_lists(m), &is_table, &cnt) ? -1 : 0;
}

const char *ljs__msg_name(const ljs__msgbuf_t *b, const ljs__msg_t *m)
{
    ljs__val_t name;
    cur_t c;
    return open_msg(b, m, &name, &c) ? "" : name.s;
}

size_t ljs__msg_name_len(const ljs__msgbuf_t *b, const ljs__msg_t *m)
{
    ljs__val_t name;
    cur_t c;
    return open_msg(b, m, &name, &c) ? 0 : name.len;
}

/* Lua: may raise (memory only); needs 3 free stack slots. */
static void push_val(lua_State *L, const ljs__val_t *v)
{
    switch (v->type) {
    case LJS_TNUMBER:
        lua_pushnumber(L, v->n);
        break;
    case LJS_TINTEGER:
        lua_pushinteger(L, (lua_Integer)v->i);
        break;
    case LJS_TBOOLEAN:
        lua_pushboolean(L, (int)v->i);
        break;
    case LJS_TSTRING:
        lua_pushlstring(L, v->s, v->len);
        break;
    case LJS_TLIST: {
        ljs__val_t e;
        size_t pos = 0;
        lua_createtable(L, (int)v->i, 0);
        for (lua_Integer k = 1; ljs__msg_list_next(v, &pos, &e); k++) {
            push_val(L, &e);
            lua_rawseti(L, -2, k);
        }
        break;
    }
    default:
        lua_pushnil(L);
        break;
    }
}

int ljs__msg_decode(lua_State *L, const ljs__msgbuf_t *b, const ljs__msg_t *m, int pooled)
{
    /* One pass, building the value as it reads: a malformed message (never
     * one the encoders wrote) drops what was built and gives nil. */
    ljs__val_t name, k, v;
    cur_t c;
    uint32_t cnt;
    int top = lua_gettop(L);
    luaL_checkstack(L, 6, "decoding a message"); /* table, key, list, element */
    if (open_msg(b, m, &name, &c))
        goto bad;
    if (c.p < c.end && *c.p == 't') {
        c.p++;
        if (take(&c, &cnt, 4) || cnt > MAX_PAYLOAD_KEYS)
            goto bad;
        if (pooled)
            ljs__msg_pool_get(L);
        else
            lua_createtable(L, 0, (int)cnt);
        for (uint32_t e = 0; e < cnt; e++) {
            if (take_key(&c, &k) || take_entry(&c, &v, has_lists(m)))
                goto bad;
            push_val(L, &k);
            push_val(L, &v);
            lua_rawset(L, -3);
        }
    } else {
        if (take_scalar(&c, &v))
            goto bad;
        push_val(L, &v);
    }
    if (c.p == c.end)
        return 0;
bad:
    lua_settop(L, top);
    lua_pushnil(L);
    return -1;
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

int ljs__msg_visit(const ljs__msgbuf_t *b, const ljs__msg_t *m, ljs__kv_visit_fn fn, void *ud)
{
    ljs__val_t name, k, v;
    cur_t c;
    int is_table;
    uint32_t cnt;
    if (open_msg(b, m, &name, &c) || check_payload(c, has_lists(m), &is_table, &cnt))
        return -1;
    if (!is_table)
        return 0;
    c.p += 5;
    for (uint32_t e = 0; e < cnt; e++) {
        (void)take_key(&c, &k);
        (void)take_entry(&c, &v, has_lists(m));
        if (k.type == LJS_TSTRING)
            fn(ud, k.s, k.len, &v);
    }
    return 0;
}
