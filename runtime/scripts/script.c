/* script.c - loading a script module into a worker's state.
 *
 * A script file is compiled in text mode only, with its own environment (a
 * copy of the sandbox globals, so scripts cannot see each other's globals),
 * run once to produce the module table, and then:
 * - on worker 0 (first), its metadata is read: fields and defaults (sorted by
 *   name: pairs() order depends on the state's string hashing and would make
 *   field order differ between workers), tags, the update form, handlers;
 * - on every worker, the update function and handlers are wrapped for the
 *   natural form and kept as references: scalarized when natural.c proves
 *   `self` is only used as `self.<field>` (the function then takes the
 *   touched fields as arguments and returns the written ones, like the fast
 *   form), else a generated Lua function that fills a reused `self` table
 *   from arguments and returns the fields (the table fallback).
 * All raising Lua calls run inside lua_pcall. */
#include "runtime/scripts/script.h"

#include "jobs/mem.h"

#include "runtime/scripts/exec.h"
#include "runtime/scripts/require.h"
#include "runtime/core.h"
#include "runtime/lua/state.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCRIPT_FIELDS LJS__MAX_SCRIPT_FIELDS

typedef struct load_ctx_s {
    ljs__worker_t *w;
    ljs__script_t *s;
    uint32_t id;
    int meta;
} load_ctx_t;

/* Lua's reserved words: a field named `end` could not be written
 * `self.end`, and would break the generated wrapper. */
static int is_keyword(const char *s)
{
    static const char *const kw[] = {"and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
                                     "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
                                     "repeat",   "return", "then", "true", "until",  "while"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (!strcmp(s, kw[i]))
            return 1;
    return 0;
}

static int is_ident(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- metadata (worker 0 only, on the owner thread) ---------------------------- */

/* Sorted array of the string keys of the table at `idx` (userdata-owned,
 * left on the stack so an error cannot leak it). */
static const char **sorted_keys(lua_State *L, int idx, uint32_t *n, const char *what, const char *path)
{
    uint32_t cnt = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t len;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: %s keys must be strings", path, what);
        if (strlen(lua_tolstring(L, -2, &len)) != len)
            luaL_error(L, "%s: a %s key contains a NUL byte", path, what);
        cnt++;
        lua_pop(L, 1);
    }
    const char **keys = lua_newuserdatauv(L, sizeof(char *) * (cnt ? cnt : 1), 0);
    cnt = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        keys[cnt++] = lua_tostring(L, -2); /* anchored by the table */
        lua_pop(L, 1);
    }
    qsort(keys, cnt, sizeof *keys, cmp_str);
    *n = cnt;
    return keys;
}

static void *xcalloc(lua_State *L, size_t n, size_t size)
{
    void *p = ljs__calloc(n ? n : 1, size);
    if (p == NULL)
        luaL_error(L, "out of memory");
    return p;
}

static void read_fields(lua_State *L, int mod, ljs__script_t *s, ljs__world_t *world)
{
    if (lua_getfield(L, mod, "fields") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: 'fields' must be a table of name = default", s->path);
    int t = lua_gettop(L);
    uint32_t n;
    const char **keys = sorted_keys(L, t, &n, "fields", s->path);
    if (n > MAX_SCRIPT_FIELDS)
        luaL_error(L, "%s: %d fields (at most %d per script)", s->path, (int)n, MAX_SCRIPT_FIELDS);
    s->field_ids = xcalloc(L, n, sizeof *s->field_ids);
    s->defaults = xcalloc(L, n, sizeof *s->defaults);
    for (uint32_t i = 0; i < n; i++) {
        if (!is_ident(keys[i]) || is_keyword(keys[i]) || !strcmp(keys[i], "id"))
            luaL_error(L, "%s: field name '%s' must be an identifier other than 'id' and Lua's keywords",
                       s->path, keys[i]);
        lua_getfield(L, t, keys[i]);
        ljs__ftype_t ty;
        ljs__value_t def;
        if (ljs__values_decl(L, -1, &world->strings, keys[i], &ty, &def) != 0)
            luaL_error(L,
                       "%s: field '%s' default must be a number, integer, boolean, string, ljs.entity or "
                       "ljs.list(type, maxlen) (got %s)",
                       s->path, keys[i], luaL_typename(L, -1));
        int f = ljs__world_field_declare_t(world, keys[i], ty);
        if (f == LJS_ETYPE) {
            char had[64], now[64];
            int old = ljs__world_field_find(world, keys[i]);
            luaL_error(L,
                       "%s: field '%s' is declared as %s here but as %s elsewhere (a field keeps its type)",
                       s->path, keys[i], ljs__ftype_name(ty, now, sizeof now),
                       ljs__ftype_name(ljs__field_ftype(&world->fields[old]), had, sizeof had));
        }
        if (f < 0)
            luaL_error(L, "%s: cannot declare field '%s' (%s)", s->path, keys[i], ljs_strerror(f));
        s->field_ids[i] = (uint32_t)f;
        s->defaults[i] = def;
        s->nfields = i + 1;
        lua_pop(L, 1);
    }
    lua_settop(L, t - 1);
}

static void read_tags(lua_State *L, int mod, ljs__script_t *s, ljs__world_t *world)
{
    if (lua_getfield(L, mod, "tags") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: 'tags' must be an array of strings", s->path);
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
            luaL_error(L, "%s: tags[%d] must be a string", s->path, (int)i);
        if (len = 0, strlen(lua_tolstring(L, -1, &len)) != len || len == 0)
            luaL_error(L, "%s: tags[%d] must be a non-empty string without NUL bytes", s->path, (int)i);
        int bit = ljs__world_tag_bit(world, lua_tostring(L, -1), 1);
        if (bit < 0)
            luaL_error(L, "%s: too many tag names (at most %d)", s->path, LJS_MAX_TAGS);
        s->tag_mask |= 1ull << bit;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* reads/writes: arrays of declared field names, resolved to field ids. */
static uint32_t *read_names(lua_State *L, int mod, const char *key, uint32_t *n, ljs__script_t *s,
                            ljs__world_t *world)
{
    *n = 0;
    if (lua_getfield(L, mod, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: '%s' must be an array of field names", s->path, key);
    lua_Integer cnt = luaL_len(L, -1);
    if (cnt > MAX_SCRIPT_FIELDS)
        luaL_error(L, "%s: '%s' lists too many fields", s->path, key);
    uint32_t tmp[MAX_SCRIPT_FIELDS] = {0};
    for (lua_Integer i = 1; i <= cnt; i++) {
        int f = -1;
        size_t len = 0;
        if (lua_rawgeti(L, -1, i) == LUA_TSTRING && strlen(lua_tolstring(L, -1, &len)) == len)
            f = ljs__world_field_find(world, lua_tostring(L, -1));
        if (f < 0)
            luaL_error(L, "%s: %s[%d] is not a declared field", s->path, key, (int)i);
        tmp[i - 1] = (uint32_t)f;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    /* Allocated last: luaL_error above longjmps, and would leak it. */
    uint32_t *ids = xcalloc(L, (size_t)cnt, sizeof *ids);
    memcpy(ids, tmp, sizeof *ids * (size_t)cnt);
    *n = (uint32_t)cnt;
    return ids;
}

/* 1 if the key/value pair on top is an event handler (on_<name> = function).
 * An on_ key with anything but a function, or with a NUL byte, is refused:
 * it would silently never run. */
static int is_handler(lua_State *L, const ljs__script_t *s)
{
    size_t len;
    if (lua_type(L, -2) != LUA_TSTRING)
        return 0;
    const char *k = lua_tolstring(L, -2, &len);
    if (len < 3 || strncmp(k, "on_", 3) != 0 || !strcmp(k, "on_reload"))
        return 0;
    if (len == 3 || strlen(k) != len)
        luaL_error(L, "%s: handler name '%s' must be on_ followed by an event name without NUL bytes",
                   s->path, k);
    if (!lua_isfunction(L, -1))
        luaL_error(L, "%s: handler '%s' must be a function (got %s)", s->path, k, luaL_typename(L, -1));
    return 1;
}

static void read_handlers(lua_State *L, int mod, ljs__script_t *s)
{
    uint32_t cnt = 0;
    lua_pushnil(L);
    while (lua_next(L, mod) != 0) {
        cnt += (uint32_t)is_handler(L, s);
        lua_pop(L, 1);
    }
    s->handlers = xcalloc(L, cnt, sizeof *s->handlers);
    lua_pushnil(L);
    while (lua_next(L, mod) != 0) {
        if (is_handler(L, s)) {
            s->handlers[s->nhandlers] = ljs__strdup(lua_tostring(L, -2) + 3);
            if (s->handlers[s->nhandlers] == NULL)
                luaL_error(L, "out of memory");
            s->nhandlers++;
        }
        lua_pop(L, 1);
    }
    qsort(s->handlers, s->nhandlers, sizeof *s->handlers, cmp_str);
}

static void read_meta(lua_State *L, int mod, ljs__script_t *s, ljs__world_t *world)
{
    read_fields(L, mod, s, world);
    read_tags(L, mod, s, world);
    int ut = lua_getfield(L, mod, "update");
    if (ut != LUA_TNIL && ut != LUA_TFUNCTION)
        luaL_error(L, "%s: 'update' must be a function", s->path);
    s->has_update = ut == LUA_TFUNCTION;
    lua_pop(L, 1);
    int rl = lua_getfield(L, mod, "on_reload");
    if (rl != LUA_TNIL && rl != LUA_TFUNCTION)
        luaL_error(L, "%s: 'on_reload' must be a function", s->path);
    lua_pop(L, 1);
    s->reads = read_names(L, mod, "reads", &s->nreads, s, world);
    s->writes = read_names(L, mod, "writes", &s->nwrites, s, world);
    /* Attaching guarantees the entity holds the script's own fields, and
     * presence cannot change mid-frame: so only those may be written. */
    for (uint32_t i = 0; i < s->nwrites; i++) {
        uint32_t k = 0;
        while (k < s->nfields && s->field_ids[k] != s->writes[i])
            k++;
        if (k == s->nfields)
            luaL_error(L, "%s: writes[%d] ('%s') must be one of this script's fields", s->path, (int)i + 1,
                       world->fields[s->writes[i]].name);
    }
    lua_getfield(L, mod, "reads");
    lua_getfield(L, mod, "writes");
    s->fast = !lua_isnil(L, -1) || !lua_isnil(L, -2);
    lua_pop(L, 2);
    if (s->fast && !s->has_update)
        luaL_error(L, "%s: 'reads'/'writes' need an 'update' function", s->path);
    read_handlers(L, mod, s);
}

/* ---- instances (every worker) ------------------------------------------------ */

/* Load generated Lua source: through the bytecode cache when it is on (the
 * owner compiles it once, as worker 0; other workers load the bytecode), so
 * a cached script load compiles nothing at all. Lua: may raise. */
static void load_generated(lua_State *L, const char *src, size_t len, const char *what)
{
    ljs__worker_t *w = ljs__worker_of(L);
    char path[128], err[512], warn[8];
    if (!w->rt->cfg.cache) {
        if (luaL_loadbufferx(L, src, len, what, "t") != LUA_OK)
            lua_error(L);
        return;
    }
    ljs__cache_req_t req = {path, {len, 0, ljs__cache_hash(src, len)}, src, len, 0, "", 0, 1};
    snprintf(path, sizeof path, "%s#%016llx", what, (unsigned long long)req.id.hash);
    if (w->index == 0 && ljs__cache_prepare(L, &req, err, sizeof err, warn, sizeof warn) != LJS_OK)
        luaL_error(L, "%s", err);
    int st = ljs__cache_load(w->epoch_rec, L, path, 0, path, 1);
    if (st == LUA_ERRFILE)
        luaL_error(L, "%s: not in the bytecode cache (bug: prepared by worker 0 first)", path);
    if (st != LUA_OK)
        lua_error(L);
}

/* Build the natural-form wrapper factory for script s and leave it on the
 * stack: factory(fn) -> function(id, arg, sender, <fields...>). */
static void push_factory(lua_State *L, const ljs__script_t *s, ljs__world_t *world)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "local self = {id = 0");
    for (uint32_t i = 0; i < s->nfields; i++) {
        luaL_addstring(&b, ", ");
        luaL_addstring(&b, world->fields[s->field_ids[i]].name);
        luaL_addstring(&b, " = false");
    }
    luaL_addstring(&b, "}\nreturn function(fn) return function(id, arg, sender");
    char v[32];
    for (uint32_t i = 0; i < s->nfields; i++) {
        snprintf(v, sizeof v, ", v%u", i);
        luaL_addstring(&b, v);
    }
    luaL_addstring(&b, ")\nself.id = id\n");
    for (uint32_t i = 0; i < s->nfields; i++) {
        luaL_addstring(&b, "self.");
        luaL_addstring(&b, world->fields[s->field_ids[i]].name);
        snprintf(v, sizeof v, " = v%u\n", i);
        luaL_addstring(&b, v);
    }
    luaL_addstring(&b, "fn(self, arg, sender)\nreturn ");
    for (uint32_t i = 0; i < s->nfields; i++) {
        luaL_addstring(&b, i ? ", self." : "self.");
        luaL_addstring(&b, world->fields[s->field_ids[i]].name);
    }
    luaL_addstring(&b, "\nend end\n");
    luaL_pushresult(&b);
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    load_generated(L, src, len, "(ljs self wrapper)");
    lua_call(L, 0, 1);
    lua_remove(L, -2); /* the source */
}

/* Instance functions are referenced from one table per state rather than
 * from the registry: Lua never shrinks a table's array, so 1,000 scripts
 * loaded and unloaded would leave their ref slots behind in the registry
 * for the state's lifetime (about 16 bytes each, measured). This table is
 * dropped with its last ref. */
static char refs_key;

/* Pop the function on top and return a ref to it. */
static int ref_pop(lua_State *L, ljs__worker_t *w)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &refs_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &refs_key);
    }
    lua_insert(L, -2);
    int ref = luaL_ref(L, -2);
    lua_pop(L, 1);
    w->nrefs++;
    return ref;
}

static void unref(ljs__worker_t *w, int ref)
{
    lua_State *L = w->L;
    if (ref == LUA_NOREF || ref == 0)
        return;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &refs_key);
    luaL_unref(L, -1, ref);
    lua_pop(L, 1);
    if (--w->nrefs == 0) {
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &refs_key);
    }
}

void ljs__script_push_ref(lua_State *L, int ref)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &refs_key);
    lua_rawgeti(L, -1, ref);
    lua_remove(L, -2);
}

/* Wrap the function on top (natural form) and return a ref. */
static int wrap_ref(lua_State *L, ljs__worker_t *w, int factory)
{
    lua_pushvalue(L, factory);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    return ref_pop(L, w);
}

/* Compile and run the module chunk in its own environment; leaves the
 * module table on the stack. */
static void push_module(lua_State *L, const ljs__worker_t *w, const ljs__script_t *s)
{
    char chunkname[512];
    snprintf(chunkname, sizeof chunkname, "@%s", s->path);
    const ljs_config_t *cfg = &w->rt->cfg;
    /* With the cache, only bytecode this process compiled itself is loaded
     * (mode "b"); without it, every worker compiles the text (mode "t"). */
    int st = cfg->cache ? ljs__cache_load(w->epoch_rec, L, s->path, (int)cfg->strip_bytecode, chunkname, 0)
                        : luaL_loadbufferx(L, s->source, s->source_len, chunkname, "t");
    if (st == LUA_ERRFILE)
        luaL_error(L, "%s: not in the bytecode cache (bug: load before prepare)", s->path);
    if (st != LUA_OK)
        lua_error(L);
    char root[512];
    ljs__require_root(s->path, root, sizeof root);
    ljs__require_run_chunk(L, root);
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: a script must return a table (it returned %s)", s->path, luaL_typename(L, -1));
}

/* The table wrapper of the function on top, as a ref; the factory is
 * built on first use (*factory: its stack index, 0 until then). */
static int wrap_lazy(lua_State *L, ljs__worker_t *w, const ljs__script_t *s, int *factory)
{
    if (*factory == 0) {
        push_factory(L, s, &w->rt->world);
        lua_insert(L, -2);
        *factory = lua_gettop(L) - 1;
    }
    return wrap_ref(L, w, *factory);
}

/* A natural-form function left on the table tier gets one console line
 * (info) saying why, at the line that keeps `self` a table, so a script
 * author can tell; the scalarized ones are counted in ljs_script_stats
 * and described in the JSON report (ljs__script_natural_summary). */
static void log_fallback(const ljs__worker_t *w, const ljs__script_t *s, const char *what,
                         const ljs__natural_t *nat)
{
    ljs_runtime_t *rt = w->rt;
    if (!nat->scalar && rt->cfg.natural)
        ljs__console_log(&rt->console, LJS_LOG_INFO, rt->frame, 0, s->name,
                         "%s: natural form %s: table fallback (%s)", s->path, what, nat->why);
}

/* Scalarize the natural-form function on top (natural.c) if the config
 * allows; the meta worker records the layout in `rec`, every other worker
 * checks it gets the same one (same bytecode, same analysis). Returns 1
 * when the function on top is now the scalarized one. Lua: may raise. */
static int scalarize(lua_State *L, const load_ctx_t *c, ljs__natural_t *rec, const char *what)
{
    ljs__world_t *world = &c->w->rt->world;
    const ljs__script_t *s = c->s;
    ljs__natural_t nat;
    if (!c->w->rt->cfg.natural) {
        memset(&nat, 0, sizeof nat);
        snprintf(nat.why, sizeof nat.why, "LJS_NATURAL=0");
    } else {
        ljs__natural_scalarize(L, world, s->field_ids, s->nfields, &nat);
    }
    if (c->meta) {
        *rec = nat; /* the record owns nat.ids from here (ljs__script_free) */
        log_fallback(c->w, s, what, rec);
        return nat.scalar;
    }
    int same = ljs__natural_same(&nat, rec);
    ljs__free(nat.ids);
    if (!same)
        luaL_error(L, "%s: %s: worker %u derived another natural-form layout than worker 0 (a bug)", s->path,
                   what, c->w->index);
    return nat.scalar;
}

/* Meta worker: the largest scalarized parameter count, and the fields the
 * event handlers may write (only those are marked dirty after an event
 * batch; a table-fallback handler may write any). */
static void natural_summary(lua_State *L, ljs__script_t *s)
{
    uint8_t w[LJS__MAX_SCRIPT_FIELDS] = {0};
    s->nat_np = s->nat_update.scalar ? s->nat_update.np : 0;
    for (uint32_t h = 0; h < s->nhandlers; h++) {
        const ljs__natural_t *n = &s->nat_handlers[h];
        if (n->scalar && n->np > s->nat_np)
            s->nat_np = n->np;
        for (uint32_t i = 0; i < s->nfields; i++)
            for (uint32_t j = 0; j < (n->scalar ? n->nwrites : 1); j++)
                if (!n->scalar || n->ids[j] == s->field_ids[i])
                    w[i] = 1;
    }
    s->ev_dirty = xcalloc(L, s->nfields, sizeof *s->ev_dirty);
    for (uint32_t i = 0; i < s->nfields; i++)
        if (w[i])
            s->ev_dirty[s->nev_dirty++] = s->field_ids[i];
}

static int instantiate(lua_State *L)
{
    load_ctx_t *c = lua_touserdata(L, 1);
    ljs__script_t *s = c->s;
    ljs__inst_t *inst = &c->w->inst[c->id];
    push_module(L, c->w, s);
    int mod = lua_gettop(L);
    if (c->meta) {
        read_meta(L, mod, s, &c->w->rt->world);
        s->nat_handlers = xcalloc(L, s->nhandlers, sizeof *s->nat_handlers);
    }
    int factory = 0;
    inst->handler_refs = xcalloc(L, s->nhandlers, sizeof *inst->handler_refs);
    for (uint32_t i = 0; i < s->nhandlers; i++)
        inst->handler_refs[i] = LUA_NOREF;
    inst->nhandlers = s->nhandlers;
    if (s->has_update) {
        lua_getfield(L, mod, "update");
        if (s->fast)
            inst->update_ref = ref_pop(L, c->w);
        else
            inst->update_ref = scalarize(L, c, &s->nat_update, "update") ? ref_pop(L, c->w)
                                                                         : wrap_lazy(L, c->w, s, &factory);
    }
    /* on_reload runs once per entity per reload: the table wrapper is
     * fine there and keeps `self` whole for code that inspects it. */
    if (lua_getfield(L, mod, "on_reload") == LUA_TFUNCTION)
        inst->reload_ref = wrap_lazy(L, c->w, s, &factory);
    else
        lua_pop(L, 1);
    for (uint32_t i = 0; i < s->nhandlers; i++) {
        lua_pushfstring(L, "on_%s", s->handlers[i]);
        lua_gettable(L, mod);
        if (!lua_isfunction(L, -1))
            luaL_error(L, "%s: on_%s is not a function in every state", s->path, s->handlers[i]);
        char what[80];
        snprintf(what, sizeof what, "on_%s", s->handlers[i]);
        inst->handler_refs[i] =
            scalarize(L, c, &s->nat_handlers[i], what) ? ref_pop(L, c->w) : wrap_lazy(L, c->w, s, &factory);
    }
    if (c->meta)
        natural_summary(L, s);
    return 0;
}

int ljs__script_instantiate(ljs__worker_t *w, uint32_t id, int meta)
{
    lua_State *L = w->L;
    ljs__inst_t *inst = &w->inst[id];
    memset(inst, 0, sizeof *inst);
    inst->update_ref = LUA_NOREF;
    inst->reload_ref = LUA_NOREF;
    memset(&w->sstat[id], 0, sizeof w->sstat[id]);
    /* The module chunk is the script's code too: its allocation counts. */
    uint64_t alloc0 = atomic_load_explicit(&w->alloc.allocated, memory_order_relaxed);
    load_ctx_t c = {w, &w->rt->scripts[id], id, meta};
    lua_pushcfunction(L, ljs__state_traceback);
    lua_pushcfunction(L, instantiate);
    lua_pushlightuserdata(L, &c);
    /* The top-level chunk (and every module it requires) is one call
     * under the runaway limits: a chunk that never returns must not hang
     * the load, a hot reload or the frame that applies it. */
    w->cur_script = id;
    w->cur_id = 0;
    ljs__watchdog_enter(w);
    ljs__watchdog_call(w);
    w->loading = meta ? id : UINT32_MAX; /* require() records dependencies */
    int rc = lua_pcall(L, 1, 0, -3);
    /* Before leave, which ends the call the position belongs to. */
    const char *where = rc == LUA_ERRMEM ? ljs__watchdog_oom_where(w) : NULL;
    w->loading = UINT32_MAX;
    ljs__watchdog_leave(w);
    w->sstat[id].alloc_bytes += atomic_load_explicit(&w->alloc.allocated, memory_order_relaxed) - alloc0;
    if (rc == LUA_OK) {
        lua_pop(L, 1);
        return LJS_OK;
    }
    const char *msg = lua_tostring(L, -1);
    snprintf(w->errmsg, sizeof w->errmsg, "%s", msg ? msg : "error object is not a string");
    if (rc == LUA_ERRMEM)
        snprintf(w->errmsg, sizeof w->errmsg,
                 "%s: out of memory loading the script in worker %u (LJS_STATE_MEM_MB=%u)",
                 where ? where : w->rt->scripts[id].path, w->index, w->rt->cfg.state_mem_mb);
    lua_pop(L, 2);
    ljs__script_release(w, id);
    return rc == LUA_ERRMEM ? LJS_ENOMEM : LJS_ESCRIPT;
}

void ljs__script_release(ljs__worker_t *w, uint32_t id)
{
    ljs__inst_t *inst = &w->inst[id];
    unref(w, inst->update_ref);
    unref(w, inst->reload_ref);
    for (uint32_t i = 0; i < inst->nhandlers; i++)
        unref(w, inst->handler_refs[i]);
    ljs__free(inst->handler_refs);
    memset(inst, 0, sizeof *inst);
    inst->update_ref = LUA_NOREF;
    inst->reload_ref = LUA_NOREF;
}

void ljs__script_free(ljs__script_t *s)
{
    ljs__free(s->path);
    ljs__free(s->name);
    ljs__free(s->source);
    ljs__free(s->field_ids);
    ljs__free(s->defaults);
    ljs__free(s->reads);
    ljs__free(s->writes);
    for (uint32_t i = 0; i < s->nhandlers; i++)
        ljs__free(s->handlers[i]);
    ljs__free(s->handlers);
    ljs__free(s->nat_update.ids);
    for (uint32_t i = 0; s->nat_handlers != NULL && i < s->nhandlers; i++)
        ljs__free(s->nat_handlers[i].ids);
    ljs__free(s->nat_handlers);
    ljs__free(s->ev_dirty);
    ljs__free(s->ents);
    for (uint32_t i = 0; i < s->ndeps; i++)
        ljs__free(s->deps[i]);
    ljs__free(s->deps);
    memset(s, 0, sizeof *s);
}

int ljs__script_handler(const ljs__script_t *s, const char *name)
{
    /* Handlers are few and sorted; a binary search keeps the event phase
     * cheap for scripts with many. */
    uint32_t lo = 0, hi = s->nhandlers;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(s->handlers[mid], name);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int ljs__script_bound(const ljs__world_t *w, uint32_t slot, uint32_t id)
{
    const ljs__escripts_t *es = &w->escripts[slot];
    for (uint32_t i = 0; i < es->n; i++)
        if (es->ids[i] == id)
            return 1;
    return 0;
}

static size_t describe(char *buf, size_t size, const char *what, const ljs__natural_t *n, uint32_t nfields)
{
    int k = n->scalar ? snprintf(buf, size, "%s: scalarized (touches %u of %u fields, writes %u)", what, n->n,
                                 nfields, n->nwrites)
                      : snprintf(buf, size, "%s: table (%s)", what, n->why);
    return k < 0 ? 0 : (size_t)k >= size ? size - 1 : (size_t)k;
}

void ljs__script_natural_summary(const ljs__script_t *s, char *buf, size_t size, uint32_t *scalar,
                                 uint32_t *table)
{
    size_t o = 0;
    *scalar = *table = 0;
    buf[0] = '\0';
    for (uint32_t h = 0; h <= s->nhandlers; h++) {
        const ljs__natural_t *n = h == 0 ? &s->nat_update : &s->nat_handlers[h - 1];
        char what[80];
        if (h == 0 && (!s->has_update || s->fast)) /* the fast form's update takes no self */
            continue;
        if (h > 0)
            snprintf(what, sizeof what, "on_%s", s->handlers[h - 1]);
        *(n->scalar ? scalar : table) += 1;
        if (o + 3 < size) {
            if (o > 0)
                o += (size_t)snprintf(buf + o, size - o, "; ");
            o += describe(buf + o, size - o, h == 0 ? "update" : what, n, s->nfields);
        }
    }
}

int ljs__script_returns_field(const ljs__script_t *s, uint32_t f)
{
    const uint32_t *ids = s->fast ? s->writes : s->field_ids;
    uint32_t n = s->fast ? s->nwrites : s->nfields;
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == f)
            return 1;
    return 0;
}
