/* values.c - strings, entities and lists between the columns and Lua (see
 * values.h for the per-worker caches and their invariants).
 *
 * A list view is a light userdata whose bits name (stamp, own, field,
 * slot): pushing one allocates nothing, and it points at nothing. The
 * stamp is the worker's call serial for a view of the calling entity's own
 * list, or the view epoch for a committed list read with get(); every use
 * re-checks the stamp, the slot and that the field is still a list the
 * entity holds, so a view kept in a global, past its call or frame, or
 * across a reload raises instead of reading other memory. (All light
 * userdata of a state share one metatable: scripts never see any other.) */
#include "runtime/scripts/values.h"

#include "jobs/mem.h"
#include "runtime/core.h"
#include "runtime/lua/state.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define DECL_MT "ljs.decl"
#define VIEW_MT "ljs.list"
#define KEEP ((int64_t)-1) /* a list value: the call kept its own list */

typedef struct decl_s {
    ljs__ftype_t t;
} decl_t;

/* A view's bits: stamp (19) | own (1) | field (12) | slot (32). */
#define STAMP_MASK 0x7ffffu

typedef struct lview_s {
    uint32_t stamp, own, field, slot;
} lview_t;

static inline void *view_bits(lview_t v)
{
    uint64_t b = ((uint64_t)(v.stamp & STAMP_MASK) << 45) | ((uint64_t)v.own << 44) |
                 ((uint64_t)(v.field & 0xfffu) << 32) | v.slot;
    return (void *)(uintptr_t)b;
}

static inline lview_t view_of(const void *p)
{
    uint64_t b = (uint64_t)(uintptr_t)p;
    lview_t v = {(uint32_t)(b >> 45) & STAMP_MASK, (uint32_t)(b >> 44) & 1u, (uint32_t)(b >> 32) & 0xfffu,
                 (uint32_t)b};
    return v;
}

/* ---- declarations ---------------------------------------------------------- */

static void push_decl(lua_State *L, ljs__ftype_t t)
{
    decl_t *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->t = t;
    luaL_setmetatable(L, DECL_MT);
}

static ljs_type_t elem_type(const char *s)
{
    static const ljs_type_t types[] = {LJS_TNUMBER, LJS_TINTEGER, LJS_TBOOLEAN, LJS_TSTRING, LJS_TENTITY};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, ljs__type_name(types[i])))
            return types[i];
    return LJS_TNIL;
}

/* ljs.list(elem, maxlen) -> a list declaration for `fields`. */
static int decl_list(lua_State *L)
{
    const char *e = luaL_checkstring(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    ljs_type_t t = elem_type(e);
    if (t == LJS_TNIL)
        return luaL_error(L, "ljs.list: element type '%s' (one of number, integer, boolean, string, entity)",
                          e);
    if (n < 1 || n > LJS_LIST_MAX)
        return luaL_error(L, "ljs.list: maxlen %I (1 to %d)", n, LJS_LIST_MAX);
    push_decl(L, (ljs__ftype_t){LJS_TLIST, t, (uint32_t)n});
    return 1;
}

static int decl_tostring(lua_State *L)
{
    const decl_t *d = luaL_checkudata(L, 1, DECL_MT);
    char buf[64];
    lua_pushfstring(L, "ljs field type: %s", ljs__ftype_name(d->t, buf, sizeof buf));
    return 1;
}

static void check_len(lua_State *L, size_t len, const char *what, const char *name)
{
    if (len > LJS_STRING_MAX)
        luaL_error(L, "%s '%s': a string of %d bytes (at most LJS_STRING_MAX = %d)", what, name, (int)len,
                   LJS_STRING_MAX);
}

int ljs__values_decl(lua_State *L, int idx, ljs__strings_t *strings, const char *name, ljs__ftype_t *t,
                     ljs__value_t *def)
{
    def->i = 0;
    t->elem = LJS_TNIL;
    t->maxlen = 0;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        t->type = LJS_TBOOLEAN;
        def->i = lua_toboolean(L, idx);
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            t->type = LJS_TINTEGER;
            def->i = lua_tointeger(L, idx);
        } else {
            t->type = LJS_TNUMBER;
            def->n = lua_tonumber(L, idx);
        }
        return 0;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        check_len(L, len, "the default of field", name);
        int64_t id = ljs__strings_intern(strings, s, len);
        if (id < 0)
            luaL_error(L, "out of memory interning a string default");
        t->type = LJS_TSTRING;
        def->i = id;
        return 0;
    }
    case LUA_TUSERDATA: {
        const decl_t *d = luaL_testudata(L, idx, DECL_MT);
        if (d == NULL)
            return -1;
        *t = d->t;
        return 0;
    }
    default:
        return -1;
    }
}

/* ---- strings -------------------------------------------------------------------- */

static void drop_caches(ljs__vcache_t *vc, uint64_t epoch)
{
    for (uint32_t k = 0; k < LJS__SCACHE; k++) {
        vc->push[k].id = UINT32_MAX; /* never an id (ids stay below 2^26) */
        vc->push[k].p = NULL;
        vc->conv[k].p = NULL;
    }
    vc->epoch = epoch;
}

/* Fixed registry slots for the string caches, made on a state's first
 * string field value (a state that never sees one pays nothing): filling a
 * slot later is a plain rawseti into an existing key, which never
 * allocates. Lua: may raise (memory). */
static void make_slots(lua_State *L, ljs__vcache_t *vc)
{
    luaL_checkstack(L, 2, "string cache");
    for (uint32_t k = 0; k < LJS__SCACHE; k++) {
        if (vc->push[k].ref == 0) {
            lua_pushboolean(L, 0);
            vc->push[k].ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        if (vc->conv[k].ref == 0) {
            lua_pushboolean(L, 0);
            vc->conv[k].ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
    }
    vc->ready = 1;
}

static inline ljs__vcache_t *caches(lua_State *L, ljs__worker_t *w)
{
    ljs__vcache_t *vc = &w->vals;
    if (__builtin_expect(!vc->ready, 0))
        make_slots(L, vc);
    if (__builtin_expect(vc->epoch != w->rt->world.strings.epoch, 0))
        drop_caches(vc, w->rt->world.strings.epoch);
    return vc;
}

/* Push interned string `id`: a registry read when cached, so an unchanged
 * string field allocates nothing in the state. Lua: may raise (memory). */
static void push_string(lua_State *L, ljs__worker_t *w, uint32_t id)
{
    ljs__vcache_t *vc = caches(L, w);
    uint32_t k = id & (LJS__SCACHE - 1);
    if (vc->push[k].id == id) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, vc->push[k].ref);
        return;
    }
    size_t len;
    const char *p = ljs__strings_bytes(&w->rt->world.strings, id, &len);
    lua_pushlstring(L, p, len);
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, vc->push[k].ref);
    vc->push[k].id = id;
    vc->push[k].p = lua_tostring(L, -1);
}

static uint32_t ptr_slot(const char *p)
{
    uintptr_t x = (uintptr_t)p;
    return (uint32_t)((x >> 4) ^ (x >> 12)) & (LJS__SCACHE - 1);
}

/* The id of the Lua string at idx (a string of at most LJS_STRING_MAX
 * bytes): the string this entity's field holds (`cur`), a cached one, or a
 * fresh interning. Lua: may raise (memory). */
static uint32_t string_id(lua_State *L, ljs__worker_t *w, int idx, uint32_t cur)
{
    ljs__vcache_t *vc = caches(L, w);
    size_t len;
    const char *p = lua_tolstring(L, idx, &len);
    uint32_t k = cur & (LJS__SCACHE - 1);
    if (vc->push[k].id == cur && vc->push[k].p == p)
        return cur; /* the very Lua string it read: unchanged */
    uint32_t c = ptr_slot(p);
    if (vc->conv[c].p == p)
        return vc->conv[c].id;
    int64_t id = ljs__strings_intern(&w->rt->world.strings, p, len);
    if (id < 0)
        luaL_error(L, "out of memory interning a string (or more than 2^26 distinct strings)");
    lua_pushvalue(L, idx);
    lua_rawseti(L, LUA_REGISTRYINDEX, vc->conv[c].ref);
    vc->conv[c].p = p;
    vc->conv[c].id = (uint32_t)id;
    return (uint32_t)id;
}

/* ---- lists ------------------------------------------------------------------------ */

static const char *script_path(const ljs__worker_t *w)
{
    return w->cur_id ? w->rt->scripts[w->cur_script].path : "ljs";
}

/* Raise (never returns: tells the analyzers too). */
__attribute__((noreturn)) static void raise_str(lua_State *L, const char *msg, int frame)
{
    luaL_error(L, msg, frame);
    __builtin_unreachable();
}

/* The list a view shows, checked: raises if the view outlived its frame
 * or call, or its field is no longer a list the entity holds. */
static const ljs__field_t *view_open(lua_State *L, lview_t v, const ljs__value_t **els, int64_t *n)
{
    ljs__worker_t *w = ljs__worker_of(L);
    ljs_runtime_t *rt = w->rt;
    const ljs__world_t *world = &rt->world;
    int live = w->cur_id != 0 && (v.own ? v.stamp == (w->vals.serial & STAMP_MASK) && v.slot == w->cur_slot
                                        : v.stamp == (rt->view_epoch & STAMP_MASK));
    if (!live)
        raise_str(L,
                  "a list view used after the call that read it ended (frame %d): read the field again "
                  "in each call, or copy its elements",
                  (int)rt->frame);
    const ljs__field_t *fd = v.field < world->nfields ? &world->fields[v.field] : NULL;
    if (v.slot >= world->nslots || !world->alive[v.slot] || fd == NULL || fd->type != LJS_TLIST ||
        !fd->present[v.slot])
        raise_str(L, "a list view whose entity or field is gone (frame %d)", (int)rt->frame);
    size_t at = (size_t)v.slot * fd->maxlen;
    *els = v.own ? fd->lwork + at : fd->lcur + at;
    *n = v.own ? fd->work[v.slot].i : fd->cur[v.slot].i;
    return fd;
}

/* The view at idx, or raises (a light userdata is always a view). */
static lview_t check_view(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TLIGHTUSERDATA);
    return view_of(lua_touserdata(L, idx));
}

static void push_elem(lua_State *L, ljs__worker_t *w, ljs_type_t t, ljs__value_t e)
{
    switch (t) {
    case LJS_TNUMBER:
        lua_pushnumber(L, e.n);
        break;
    case LJS_TINTEGER:
        lua_pushinteger(L, e.i);
        break;
    case LJS_TBOOLEAN:
        lua_pushboolean(L, (int)e.i);
        break;
    case LJS_TSTRING:
        push_string(L, w, (uint32_t)e.i);
        break;
    default: { /* entity: false once dead, so # and ipairs stay whole */
        uint64_t h = ljs__world_live_ref(&w->rt->world, e.i);
        if (h)
            lua_pushinteger(L, (lua_Integer)h);
        else
            lua_pushboolean(L, 0);
        break;
    }
    }
}

static int view_index(lua_State *L)
{
    lview_t v = check_view(L, 1);
    const ljs__value_t *els;
    int64_t n;
    const ljs__field_t *fd = view_open(L, v, &els, &n);
    lua_Integer i = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
    if (i >= 1 && i <= n)
        push_elem(L, ljs__worker_of(L), fd->elem, els[i - 1]);
    else
        lua_pushnil(L);
    return 1;
}

static int view_len(lua_State *L)
{
    const ljs__value_t *els;
    int64_t n;
    view_open(L, check_view(L, 1), &els, &n);
    lua_pushinteger(L, n);
    return 1;
}

static int view_newindex(lua_State *L)
{
    lview_t v = check_view(L, 1);
    const ljs__world_t *world = &ljs__worker_of(L)->rt->world;
    const char *name = v.field < world->nfields ? world->fields[v.field].name : "?";
    return luaL_error(L, "list field '%s' is read-only: assign a whole table instead (self.%s = {...})", name,
                      name);
}

static int view_tostring(lua_State *L)
{
    const ljs__value_t *els;
    int64_t n;
    const ljs__field_t *fd = view_open(L, check_view(L, 1), &els, &n);
    lua_pushfstring(L, "list %s (%d of %d)", fd->name, (int)n, (int)fd->maxlen);
    return 1;
}

/* Push a view of field f of `slot`: the calling entity's own list, or the
 * committed one. Nothing is allocated. */
static void push_view(lua_State *L, ljs__worker_t *w, uint32_t f, uint32_t slot, int own)
{
    lview_t v = {own ? (uint32_t)w->vals.serial : (uint32_t)w->rt->view_epoch, (uint32_t)own, f, slot};
    lua_pushlightuserdata(L, view_bits(v));
}

static ljs__value_t *scratch_take(lua_State *L, ljs__vcache_t *vc, size_t n)
{
    if (vc->nscratch + n > vc->scratch_cap) {
        size_t cap = vc->scratch_cap ? vc->scratch_cap : 256;
        while (cap < vc->nscratch + n)
            cap *= 2;
        ljs__value_t *p = ljs__realloc(vc->scratch, sizeof *p * cap);
        if (p == NULL)
            luaL_error(L, "out of memory");
        vc->scratch = p;
        vc->scratch_cap = cap;
    }
    ljs__value_t *r = vc->scratch + vc->nscratch;
    vc->nscratch += n;
    return r;
}

/* Element `i` (on top of the stack) of a list value for field fd, into *e.
 * Raises naming the field and the element. */
static void convert_elem(lua_State *L, ljs__worker_t *w, const ljs__field_t *fd, lua_Integer i,
                         ljs__value_t *e)
{
    int t = lua_type(L, -1), ok = 1;
    switch (fd->elem) {
    case LJS_TNUMBER:
        ok = t == LUA_TNUMBER;
        e->n = lua_tonumber(L, -1);
        break;
    case LJS_TINTEGER:
        e->i = lua_tointegerx(L, -1, &ok);
        ok = ok && t == LUA_TNUMBER;
        break;
    case LJS_TBOOLEAN:
        ok = t == LUA_TBOOLEAN;
        e->i = lua_toboolean(L, -1);
        break;
    case LJS_TSTRING:
        ok = t == LUA_TSTRING;
        if (ok) {
            size_t len;
            lua_tolstring(L, -1, &len);
            check_len(L, len, "an element of list field", fd->name);
            e->i = string_id(L, w, -1, UINT32_MAX);
        }
        break;
    default: /* entity: an id, or 0 / false for none */
        if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            e->i = 0;
        } else {
            ok = lua_isinteger(L, -1);
            e->i = lua_tointeger(L, -1);
            if (ok && e->i != 0 && (e->i < 0 || (e->i >> 32) == 0))
                luaL_error(L, "%s: list field '%s': element %I is %I, not an entity id", script_path(w),
                           fd->name, i, (lua_Integer)e->i);
        }
        break;
    }
    if (!ok)
        luaL_error(L, "%s: list field '%s' holds %s elements; element %I is %s", script_path(w), fd->name,
                   ljs__type_name(fd->elem), i,
                   t == LUA_TNUMBER && fd->elem == LJS_TINTEGER ? "a non-integral number"
                                                                : luaL_typename(L, -1));
}

static int convert_list(lua_State *L, ljs__worker_t *w, const ljs__field_t *fd, uint32_t slot, int idx,
                        int nil_keeps, ljs__value_t *v)
{
    ljs__vcache_t *vc = &w->vals;
    int t = lua_type(L, idx);
    if (t == LUA_TNIL && nil_keeps) {
        v->i = KEEP;
        return 1;
    }
    int is_view = t == LUA_TLIGHTUSERDATA;
    if (is_view) {
        lview_t view = view_of(lua_touserdata(L, idx));
        uint32_t f = (uint32_t)(fd - w->rt->world.fields);
        if (view.own && view.field == f && view.slot == slot) {
            (void)view_open(L, view, &(const ljs__value_t *){NULL}, &(int64_t){0}); /* still valid? */
            v->i = KEEP; /* its own list, unchanged */
            return 1;
        }
    }
    if (t != LUA_TTABLE && !is_view)
        return 0;
    lua_Integer n;
    if (is_view) {
        lua_len(L, idx);
        n = lua_tointeger(L, -1);
        lua_pop(L, 1);
    } else {
        n = (lua_Integer)lua_rawlen(L, idx);
    }
    if (n > (lua_Integer)fd->maxlen)
        luaL_error(L, "%s: list field '%s' holds at most %d elements (got %I)", script_path(w), fd->name,
                   (int)fd->maxlen, n);
    luaL_checkstack(L, 4, "list element");
    size_t off = vc->nscratch;
    (void)scratch_take(L, vc, (size_t)n);
    for (lua_Integer i = 1; i <= n; i++) {
        if (is_view)
            lua_geti(L, idx, i);
        else
            lua_rawgeti(L, idx, i);
        convert_elem(L, w, fd, i, &vc->scratch[off + (size_t)i - 1]);
        lua_pop(L, 1);
    }
    v->i = ((int64_t)off << 16) | n;
    return 1;
}

/* ---- the per-type entry points --------------------------------------------- */

void ljs__values_push(lua_State *L, const ljs__field_t *fd, uint32_t slot, int own)
{
    ljs__worker_t *w = ljs__worker_of(L);
    ljs__value_t v = own ? fd->work[slot] : fd->cur[slot];
    switch (fd->type) {
    case LJS_TSTRING:
        push_string(L, w, (uint32_t)v.i);
        break;
    case LJS_TENTITY: {
        uint64_t h = ljs__world_live_ref(&w->rt->world, v.i);
        if (h)
            lua_pushinteger(L, (lua_Integer)h);
        else
            lua_pushnil(L);
        break;
    }
    case LJS_TLIST:
        push_view(L, w, (uint32_t)(fd - w->rt->world.fields), slot, own);
        break;
    default:
        lua_pushnil(L);
        break;
    }
}

int ljs__values_convert(lua_State *L, const ljs__field_t *fd, uint32_t slot, int idx, int nil_keeps,
                        ljs__value_t *v)
{
    ljs__worker_t *w = ljs__worker_of(L);
    int t = lua_type(L, idx);
    switch (fd->type) {
    case LJS_TSTRING:
        if (t == LUA_TNIL && nil_keeps) {
            *v = fd->work[slot];
            return 1;
        }
        if (t != LUA_TSTRING)
            return 0;
        size_t len;
        lua_tolstring(L, idx, &len);
        check_len(L, len, "string field", fd->name);
        v->i = string_id(L, w, idx, (uint32_t)fd->work[slot].i);
        return 1;
    case LJS_TENTITY:
        if (t == LUA_TNIL) {
            v->i = nil_keeps ? fd->work[slot].i : 0;
            return 1;
        }
        if (!lua_isinteger(L, idx))
            return 0;
        v->i = lua_tointeger(L, idx);
        /* 0 is "no entity"; anything else must have an entity's shape
         * (generation >= 1 in the high half). A dead id is kept and
         * reads as nil. */
        if (v->i != 0 && (v->i < 0 || (v->i >> 32) == 0))
            luaL_error(L, "%s: field '%s' expects an entity id or nil, got %I (not an entity id)",
                       script_path(w), fd->name, (lua_Integer)v->i);
        return 1;
    case LJS_TLIST:
        return convert_list(L, w, fd, slot, idx, nil_keeps, v);
    default:
        return 0;
    }
}

void ljs__values_store(ljs__field_t *fd, uint32_t slot, ljs__value_t v, const ljs__vcache_t *vc)
{
    if (fd->type != LJS_TLIST) {
        fd->work[slot] = v;
        return;
    }
    if (v.i == KEEP)
        return;
    uint32_t n = (uint32_t)(v.i & 0xffff);
    size_t off = (size_t)(v.i >> 16);
    if (n > 0)
        memcpy(fd->lwork + (size_t)slot * fd->maxlen, vc->scratch + off, sizeof *vc->scratch * n);
    fd->work[slot].i = n;
}

void ljs__values_view_to_table(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TLIGHTUSERDATA)
        return;
    const ljs__value_t *els;
    int64_t n;
    view_open(L, view_of(lua_touserdata(L, idx)), &els, &n);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        lua_rawseti(L, -2, i);
    }
    lua_replace(L, idx);
}

/* ---- setup ------------------------------------------------------------------ */

void ljs__values_open(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    luaL_newmetatable(L, DECL_MT);
    lua_pushcfunction(L, decl_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, DECL_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    luaL_newmetatable(L, VIEW_MT);
    lua_pushcfunction(L, view_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, view_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, view_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, view_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, VIEW_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pushlightuserdata(L, NULL); /* the metatable of every light userdata */
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
    /* ljs.entity and ljs.list(...), read-only like the libraries. */
    lua_newtable(L);
    push_decl(L, (ljs__ftype_t){LJS_TENTITY, LJS_TNIL, 0});
    lua_setfield(L, -2, "entity");
    lua_pushcfunction(L, decl_list);
    lua_setfield(L, -2, "list");
    lua_pushinteger(L, LJS_STRING_MAX);
    lua_setfield(L, -2, "STRING_MAX");
    ljs__state_push_frozen(L, -1, "ljs");
    lua_setglobal(L, "ljs");
    lua_pop(L, 1);
    if (w != NULL)
        drop_caches(&w->vals, w->rt->world.strings.epoch);
}

void ljs__values_fini(ljs__vcache_t *vc)
{
    ljs__free(vc->scratch);
    vc->scratch = NULL;
    vc->nscratch = vc->scratch_cap = 0;
}
