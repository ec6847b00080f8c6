/* api.c - the script API (see README "Script API").
 *
 * Every function finds its worker through the state's extra space and the
 * call in progress through the worker's context (cur_id / cur_slot /
 * cur_script), set by the batch runner before each entity call. Reads of
 * other entities see the last committed frame; writes go to the calling
 * entity only; sends, spawns and destroys are appended to the worker's
 * outbox and take effect after the phase, in a deterministic order. */
#include "runtime/scripts/api.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

/* A name argument (field, tag, script, event): a non-empty string without
 * NUL bytes, since C looks it up by its bytes up to the first NUL and
 * "a\0b" would silently mean "a". Lua: may raise. */
static const char *check_name(lua_State *L, int arg, const char *fn, size_t *len)
{
    size_t n;
    const char *s = luaL_checklstring(L, arg, &n);
    if (n == 0 || memchr(s, 0, n) != NULL)
        luaL_error(L, "%s: bad name (argument %d must be a non-empty string without NUL bytes)", fn, arg);
    if (len != NULL)
        *len = n;
    return s;
}

static ljs__worker_t *in_call(lua_State *L, const char *fn)
{
    ljs__worker_t *w = ljs__worker_of(L);
    if (w == NULL || w->cur_id == 0)
        luaL_error(L, "%s() can only be called from an entity's update or handler", fn);
    return w;
}

/* Slot of entity argument `arg` (an id, or a table with `id`), or -1. */
static int64_t entity_arg(lua_State *L, ljs__world_t *world, int arg)
{
    lua_Integer id;
    if (lua_type(L, arg) == LUA_TTABLE) {
        lua_getfield(L, arg, "id");
        id = luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    } else {
        id = luaL_checkinteger(L, arg);
    }
    return ljs__world_slot(world, (uint64_t)id);
}

static int field_arg(lua_State *L, ljs__world_t *world, int arg)
{
    const char *name = check_name(L, arg, "field", NULL);
    /* A per-state name -> id table turns the lookup into one interned-string
     * hash probe instead of strcmp over every field. */
    lua_pushvalue(L, arg);
    int cached = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : -1;
    lua_pop(L, 1);
    /* A refused script's fields are forgotten and their ids reused: trust
     * the cached id only while it still names this field. */
    if (cached >= 0 && (uint32_t)cached < world->nfields && !strcmp(world->fields[cached].name, name))
        return cached;
    int f = ljs__world_field_find(world, name);
    if (f >= 0) {
        lua_pushvalue(L, arg);
        lua_pushinteger(L, f);
        lua_rawset(L, lua_upvalueindex(1));
    }
    return f;
}

void ljs__api_push_field(lua_State *L, const ljs__field_t *fd, uint32_t slot, int own)
{
    if (!fd->present[slot]) {
        lua_pushnil(L);
        return;
    }
    const ljs__value_t *v = own ? &fd->work[slot] : &fd->cur[slot];
    switch (fd->type) {
    case LJS_TNUMBER:
        lua_pushnumber(L, v->n);
        break;
    case LJS_TINTEGER:
        lua_pushinteger(L, v->i);
        break;
    case LJS_TBOOLEAN:
        lua_pushboolean(L, (int)v->i);
        break;
    default:
        ljs__values_push(L, fd, slot, own); /* string, entity, list */
        break;
    }
}

static const char *type_name(const ljs__field_t *fd, char *buf, size_t size)
{
    if (fd->type == LJS_TENTITY)
        return "an entity id or nil";
    if (fd->type == LJS_TLIST) {
        char t[48];
        snprintf(buf, size, "a table for a %s", ljs__ftype_name(ljs__field_ftype(fd), t, sizeof t));
        return buf;
    }
    return ljs__type_name(fd->type);
}

/* The value at idx as field fd's type; raises naming the field. */
static ljs__value_t to_value(lua_State *L, const ljs__field_t *fd, uint32_t slot, int idx, const char *script)
{
    ljs__value_t v;
    int ok = 1;
    switch (fd->type) {
    case LJS_TSTRING:
    case LJS_TENTITY:
    case LJS_TLIST:
        ok = ljs__values_convert(L, fd, slot, idx, 0, &v);
        break;
    case LJS_TNUMBER:
        v.n = lua_tonumberx(L, idx, &ok);
        ok = ok && lua_type(L, idx) == LUA_TNUMBER;
        break;
    case LJS_TINTEGER:
        v.i = lua_tointegerx(L, idx, &ok);
        ok = ok && lua_type(L, idx) == LUA_TNUMBER;
        break;
    default:
        ok = lua_isboolean(L, idx);
        v.i = lua_toboolean(L, idx);
        break;
    }
    char buf[80];
    if (!ok)
        luaL_error(L, "%s: field '%s' expects %s, got %s%s", script, fd->name, type_name(fd, buf, sizeof buf),
                   lua_type(L, idx) != LUA_TNUMBER ? luaL_typename(L, idx)
                   : fd->type == LJS_TENTITY       ? "a float (entity ids are integers)"
                                                   : "a non-integral number",
                   "");
    return v;
}

void ljs__api_store_field(lua_State *L, ljs__world_t *w, uint32_t f, uint32_t slot, int idx, int nil_keeps,
                          const char *script)
{
    if (nil_keeps && lua_isnil(L, idx))
        return;
    /* Presence never changes during a frame (other workers read it without
     * locks): callers only store fields the entity holds. */
    ljs__value_t v = to_value(L, &w->fields[f], slot, idx, script);
    ljs__values_store(&w->fields[f], slot, v, &ljs__worker_of(L)->vals);
}

/* get(e, field) -> value or nil */
static int api_get(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    ljs__world_t *world = &w->rt->world;
    int64_t slot = entity_arg(L, world, 1);
    int f = field_arg(L, world, 2);
    if (slot < 0 || f < 0) {
        lua_pushnil(L);
        return 1;
    }
    ljs__api_push_field(L, &world->fields[f], (uint32_t)slot,
                        (uint32_t)slot == w->cur_slot && w->cur_id != 0);
    return 1;
}

/* set(e, field, value): own entity only, a field the call does not return
 * itself (another script's field). The write is held until the call
 * returns without error (ljs__api_apply_sets), so a call that raises
 * changes nothing and a returned `self` never overwrites it. */
static int api_set(lua_State *L)
{
    ljs__worker_t *w = in_call(L, "set");
    ljs__world_t *world = &w->rt->world;
    int64_t slot = entity_arg(L, world, 1);
    const char *name = check_name(L, 2, "set", NULL);
    int f = field_arg(L, world, 2);
    luaL_checkany(L, 3);
    if (slot != (int64_t)w->cur_slot)
        return luaL_error(L,
                          "cannot write field '%s' of another entity: a script writes only its own "
                          "entity (send it an event instead)",
                          name);
    if (f < 0)
        return luaL_error(L, "unknown field '%s' (declare it in a script's fields)", name);
    if (!world->fields[f].present[slot])
        return luaL_error(L, "entity has no field '%s' (attach a script that declares it)", name);
    const ljs__script_t *sc = &w->rt->scripts[w->cur_script];
    if (ljs__script_returns_field(sc, (uint32_t)f))
        return luaL_error(
            L,
            "set: field '%s' is one this call returns (assign self.%s, or return it in the fast "
            "form): set() is for the entity's other fields",
            name, name);
    ljs__value_t v = to_value(L, &world->fields[f], (uint32_t)slot, 3, sc->name);
    if (w->nsets == sizeof w->sets / sizeof w->sets[0])
        return luaL_error(L, "set: more than %d set() calls in one call",
                          (int)(sizeof w->sets / sizeof w->sets[0]));
    w->sets[w->nsets].field = (uint32_t)f;
    w->sets[w->nsets].v = v;
    w->nsets++;
    return 0;
}

void ljs__api_apply_sets(ljs__worker_t *w)
{
    ljs__world_t *world = &w->rt->world;
    for (uint32_t i = 0; i < w->nsets; i++) {
        ljs__field_t *fd = &world->fields[w->sets[i].field];
        ljs__values_store(fd, w->cur_slot, w->sets[i].v, &w->vals);
        atomic_store_explicit(&fd->dirty, 1, memory_order_relaxed);
    }
    w->nsets = 0;
}

/* The calling entity's per-frame counters, reset on its first use in a
 * frame. */
static ljs__ectr_t *counters(ljs__worker_t *w)
{
    ljs__ectr_t *c = &w->rt->world.ectr[w->cur_slot];
    if (c->frame != w->rt->frame) {
        c->frame = w->rt->frame;
        c->seq = 0;
        c->rng = 0;
    }
    return c;
}

static uint32_t next_seq(ljs__worker_t *w)
{
    return counters(w)->seq++;
}

static void push_msg(lua_State *L, ljs__worker_t *w, uint32_t kind, uint64_t target, const char *name,
                     size_t len, int payload)
{
    ljs__msg_t head = {target, w->cur_id, next_seq(w), kind, 0, 0};
    size_t n0 = w->out.n, bytes0 = w->out.nbytes;
    ljs__msg_push_lua(L, &w->out, &head, name, len, payload);
    /* Bounded per call, so what one call may queue never depends on the
     * worker count (LJS_EVENT_MEM_MB bounds the phase in frame.c). */
    size_t cap = (size_t)w->rt->cfg.call_queue_kb << 10;
    if (ljs__msgbuf_size(&w->out) - w->call_out0 > cap) {
        w->out.n = n0;
        w->out.nbytes = bytes0;
        w->dropped++;
        luaL_error(L,
                   "%s: this call queued more than LJS_CALL_QUEUE_KB=%d KiB of events, spawns and destroys; "
                   "the message was dropped",
                   kind == LJS__MSG_EVENT   ? "send"
                   : kind == LJS__MSG_SPAWN ? "spawn"
                                            : "destroy",
                   (int)w->rt->cfg.call_queue_kb);
    }
}

/* send(target, name [, payload]) */
static int api_send(lua_State *L)
{
    ljs__worker_t *w = in_call(L, "send");
    lua_Integer target = luaL_checkinteger(L, 1);
    size_t len;
    const char *name = check_name(L, 2, "send", &len);
    if (!ljs__event_name_ok(name, len))
        return luaL_error(L, "send: bad event name (1-%d letters, digits or '_', so on_<name> can handle it)",
                          LJS__EVENT_NAME_MAX);
    lua_settop(L, 3);
    ljs__values_view_to_table(L, 3); /* a list field's value travels as its elements */
    push_msg(L, w, LJS__MSG_EVENT, (uint64_t)target, name, len, 3);
    return 0;
}

/* Spawn fields may hold list views (`{ path = self.path }`): they travel
 * as their elements, in a copy of the table (the script's own table is
 * left alone). Tables past the payload limit are left for the encoder to
 * refuse, uncopied. */
static void spawn_views_to_tables(lua_State *L, int idx)
{
    int views = 0, n = 0;
    luaL_checkstack(L, 6, "spawn");
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (++n > 256) {
            lua_pop(L, 2); /* the key and value lua_next left */
            return;
        }
        views |= lua_type(L, -1) == LUA_TLIGHTUSERDATA;
        lua_pop(L, 1);
    }
    if (!views)
        return;
    lua_createtable(L, 0, n);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        ljs__values_view_to_table(L, -1);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_replace(L, idx);
}

/* spawn(script_name [, fields]) - deferred to the end of the frame. */
static int api_spawn(lua_State *L)
{
    ljs__worker_t *w = in_call(L, "spawn");
    size_t len;
    const char *name = check_name(L, 1, "spawn", &len);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_istable(L, 2))
        spawn_views_to_tables(L, 2);
    push_msg(L, w, LJS__MSG_SPAWN, 0, name, len, 2);
    return 0;
}

/* destroy(e) - deferred to the end of the frame. */
static int api_destroy(lua_State *L)
{
    ljs__worker_t *w = in_call(L, "destroy");
    lua_Integer id = luaL_checkinteger(L, 1);
    lua_pushnil(L);
    push_msg(L, w, LJS__MSG_DESTROY, (uint64_t)id, "destroy", 7, lua_gettop(L));
    return 0;
}

/* A query result as Lua sees it: a read-only array proxy over the cached
 * result (no copy per call), valid for the frame it was made in. A miss
 * carries its own copy in `data`. */
typedef struct qview_s {
    const uint64_t *ids;
    uint32_t n;
    uint64_t frame;
    uint64_t epoch; /* rt->view_epoch when made: `ids` is valid while it holds */
    uint64_t data[];
} qview_t;

/* A view kept past its frame (in a global, a module, a library table...)
 * would read cache memory that has moved: refuse it, every time. */
static const qview_t *check_view(lua_State *L)
{
    const qview_t *v = luaL_checkudata(L, 1, "ljs.query");
    const ljs_runtime_t *rt = ljs__worker_of(L)->rt;
    if (v->epoch != rt->view_epoch)
        luaL_error(L,
                   "a query result from frame %d used after that frame's phases ended (now frame %d): query "
                   "again in each call",
                   (int)v->frame, (int)rt->frame);
    return v;
}

static int qview_index(lua_State *L)
{
    const qview_t *v = check_view(L);
    lua_Integer i = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
    if (i >= 1 && i <= (lua_Integer)v->n)
        lua_pushinteger(L, (lua_Integer)v->ids[i - 1]);
    else
        lua_pushnil(L);
    return 1;
}

static int qview_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_view(L)->n);
    return 1;
}

/* Masks from tag names: an unknown name in `all` matches nothing. */
static int add_tags(lua_State *L, ljs__world_t *world, int idx, uint64_t *mask, int must_exist)
{
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        int bit = ljs__world_tag_bit(world, check_name(L, -1, "query", NULL), 0);
        lua_pop(L, 1);
        if (bit >= 0)
            *mask |= 1ull << bit;
        else if (must_exist)
            return 0;
    }
    return 1;
}

/* query(tag, ...) or query{all = {...}, none = {...}} -> array proxy of the
 * ids of matching entities, in entity order. */
static int api_query(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    ljs_runtime_t *rt = w->rt;
    ljs__world_t *world = &rt->world;
    uint64_t all = 0, none = 0;
    int possible = 1;
    if (lua_istable(L, 1)) {
        if (lua_getfield(L, 1, "all") == LUA_TTABLE)
            possible = add_tags(L, world, lua_gettop(L), &all, 1);
        if (lua_getfield(L, 1, "none") == LUA_TTABLE)
            add_tags(L, world, lua_gettop(L), &none, 0);
        lua_settop(L, 1);
    } else {
        int n = lua_gettop(L);
        check_name(L, 1, "query", NULL);
        for (int i = 1; i <= n && possible; i++) {
            int bit = ljs__world_tag_bit(world, check_name(L, i, "query", NULL), 0);
            if (bit < 0)
                possible = 0; /* an unknown tag matches nothing */
            else
                all |= 1ull << bit;
        }
    }
    const ljs__qentry_t *e = possible ? ljs__query_find(&rt->queries, all, none, rt->frame) : NULL;
    qview_t *v;
    if (e != NULL || !possible) {
        v = lua_newuserdatauv(L, sizeof *v, 0);
        v->ids = e != NULL ? e->ids : NULL;
        v->n = e != NULL ? e->n : 0;
        w->qhits += e != NULL;
    } else {
        /* A miss: scan into the proxy itself, and ask for the signature to
         * be cached from the next frame on. */
        uint32_t n = 0;
        for (uint32_t s = 0; s < world->nslots; s++)
            n += (uint32_t)ljs__query_match(all, none, world->alive[s], world->tags[s]);
        v = lua_newuserdatauv(L, sizeof *v + sizeof(uint64_t) * n, 0);
        n = 0;
        for (uint32_t s = 0; s < world->nslots; s++)
            if (ljs__query_match(all, none, world->alive[s], world->tags[s]))
                v->data[n++] = ljs__world_handle(world, s);
        v->ids = v->data;
        v->n = n;
        w->qmisses++;
        uint32_t k = 0;
        while (k < w->nwanted && (w->wanted[k].all != all || w->wanted[k].none != none))
            k++;
        if (k == w->nwanted && w->nwanted < sizeof w->wanted / sizeof w->wanted[0]) {
            w->wanted[k].all = all;
            w->wanted[k].none = none;
            w->nwanted++;
        }
    }
    v->frame = rt->frame;
    v->epoch = rt->view_epoch;
    luaL_setmetatable(L, "ljs.query");
    return 1;
}

/* The string at idx with NUL bytes shown as "\\0" (the console holds C
 * strings: a NUL would cut the line short). Lua: may raise. */
static const char *visible(lua_State *L, int idx)
{
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (memchr(s, 0, n) == NULL)
        return s;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0')
            luaL_addstring(&b, "\\0");
        else
            luaL_addchar(&b, s[i]);
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* The call's arguments as one console line, separated by `sep`, tagged
 * with the calling script and entity. Lua: may raise (memory). */
static void log_args(lua_State *L, ljs_severity_t severity, char sep)
{
    ljs__worker_t *w = ljs__worker_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
        if (i < n && sep)
            luaL_addchar(&b, sep);
    }
    luaL_pushresult(&b);
    const char *script = w->cur_id ? w->rt->scripts[w->cur_script].name : "";
    ljs__console_log(&w->rt->console, severity, w->rt->frame, w->cur_id, script, "%s", visible(L, -1));
}

/* log(...) -> console, tagged with script and entity. */
static int api_log(lua_State *L)
{
    log_args(L, LJS_LOG_INFO, ' ');
    return 0;
}

/* print(...) and warn(...) go to the console like log(), never to the
 * process's stdout or stderr: the host decides where script output goes.
 * print separates its values with tabs, as Lua's does; warn concatenates
 * strings and drops Lua's "@on"/"@off" control messages. */
static int api_print(lua_State *L)
{
    log_args(L, LJS_LOG_INFO, '\t');
    return 0;
}

static int api_warn(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checkstring(L, 1);
    for (int i = 2; i <= n; i++)
        luaL_checkstring(L, i);
    if (n == 1 && lua_tostring(L, 1)[0] == '@')
        return 0; /* control message */
    log_args(L, LJS_LOG_WARN, '\0');
    return 0;
}

/* A counter-based generator: splitmix64 over (entity, frame, draw). The
 * same entity gets the same numbers in the same frame on any worker. */
static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* rand(e [, m [, n]]) like math.random, deterministic per entity and frame. */
static int api_rand(lua_State *L)
{
    ljs__worker_t *w = in_call(L, "rand");
    int64_t slot = entity_arg(L, &w->rt->world, 1);
    if (slot != (int64_t)w->cur_slot)
        return luaL_error(L, "rand: pass the calling entity (self or self.id)");
    uint32_t draw = counters(w)->rng++;
    uint64_t r = splitmix(splitmix(w->cur_id ^ (w->rt->frame * 0x100000001b3ull)) + draw);
    int nargs = lua_gettop(L);
    if (nargs == 1) {
        lua_pushnumber(L, (double)(r >> 11) * (1.0 / 9007199254740992.0));
        return 1;
    }
    lua_Integer lo = 1, hi;
    if (nargs == 2) {
        hi = luaL_checkinteger(L, 2);
    } else {
        lo = luaL_checkinteger(L, 2);
        hi = luaL_checkinteger(L, 3);
    }
    luaL_argcheck(L, lo <= hi, nargs, "interval is empty");
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    uint64_t v = (uint64_t)lo + (span ? r % span : r); /* wraps like Lua's math.random */
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

static int api_frame(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ljs__worker_of(L)->rt->frame);
    return 1;
}

int ljs__api_open(lua_State *L)
{
    static const luaL_Reg plain[] = {
        {"send", api_send}, {"spawn", api_spawn}, {"destroy", api_destroy}, {"query", api_query},
        {"log", api_log},   {"rand", api_rand},   {"frame", api_frame},     {"print", api_print},
        {"warn", api_warn}, {NULL, NULL},
    };
    lua_pushglobaltable(L);
    luaL_setfuncs(L, plain, 0);
    /* get and set share the field-name cache as upvalue 1. */
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, api_get, 1);
    lua_setfield(L, -3, "get");
    lua_pushcclosure(L, api_set, 1);
    lua_setfield(L, -2, "set");
    lua_pop(L, 1);
    /* Query result proxies. */
    luaL_newmetatable(L, "ljs.query");
    lua_pushcfunction(L, qview_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, qview_len);
    lua_setfield(L, -2, "__len");
    lua_pushliteral(L, "ljs.query");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    ljs__msg_pool_init(L); /* reused event payload tables (event.c) */
    ljs__values_open(L);   /* ljs.entity, ljs.list, string caches (values.c) */
    /* Modules loaded in this state, by path (require.c). */
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ljs.modules");
    return 0;
}
