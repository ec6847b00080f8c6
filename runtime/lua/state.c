/* state.c - per-worker Lua states and their sandbox.
 *
 * Scripts are untrusted gameplay code: they get base (without dofile,
 * loadfile, and with a `load` that accepts only text chunks, since binary
 * chunks are not verified by Lua and can crash the VM), string, table, math,
 * utf8 and coroutine. No io, os, debug or package. Some functions are ljs's
 * own so the runaway limits reach them (watchdog.c, limits.c, pattern.c).
 *
 * One state runs every script a worker runs, and entities spread over
 * workers, so anything a script can change that another script (or the
 * same script on another worker) can see breaks isolation and determinism.
 * After the API is opened the state is sealed:
 * - the libraries become frozen proxies (an empty table whose protected
 *   metatable indexes the pristine library and refuses writes; `rawset` on
 *   a frozen table is refused; `pairs` iterates the library without
 *   handing it out); the string metatable is protected;
 * - the state's global table becomes a frozen proxy too (what `load`
 *   without an env sees), and the pristine globals are kept as a base
 *   that every script environment copies;
 * - each script or module gets an environment: an empty frozen table over
 *   its own globals. While its chunk runs, new globals go to its own
 *   globals; afterwards every global assignment is an error (see
 *   ljs__state_env_seal). `_G` is the environment itself.
 * Reads cost one metatable hop (a miss in the empty proxy); writes that
 * would leak are errors that say why. */
#include "runtime/lua/state.h"

#include "runtime/lua/gc.h"
#include "runtime/lua/limits.h"
#include "runtime/lua/watchdog.h"

#include <lauxlib.h>
#include <ljs.h>
#include <lualib.h>
#include <stdio.h>

static int panic(lua_State *L)
{
    /* Reached only if a Lua error escapes every pcall: a bug in ljs, since
     * all raising calls run under lua_pcall. Say what happened before Lua
     * aborts. */
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "ljs: unprotected Lua error (bug): %s\n", msg ? msg : "?");
    return 0;
}

/* load(chunk [, chunkname [, mode [, env]]]) with mode forced to "t". Lua
 * tells an absent env from a nil one, so env is passed only if given. */
static int safe_load(lua_State *L)
{
    int has_env = lua_gettop(L) >= 4;
    if (lua_gettop(L) < 2)
        lua_settop(L, 2);
    int base = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original load */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (has_env)
        lua_pushvalue(L, 4);
    lua_call(L, has_env ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L) - base;
}

/* ---- frozen tables ------------------------------------------------------------ */

/* Marks the metatables of frozen proxies (the key is this address). */
static char frozen_key;

static int frozen_newindex(lua_State *L)
{
    const char *what = lua_tostring(L, lua_upvalueindex(1));
    return luaL_error(L,
                      "cannot assign '%s' in %s: it is shared by every script this worker runs and is "
                      "read-only (copy what you need into a local table)",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2), what);
}

/* Iterator over the pristine table (upvalue 1), so pairs() never hands
 * the table itself to a script. */
static int frozen_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)) != 0)
        return 2;
    lua_pushnil(L);
    return 1;
}

static int frozen_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, frozen_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

int ljs__state_is_frozen(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    int frozen = lua_rawgetp(L, -1, &frozen_key) != LUA_TNIL;
    lua_pop(L, 2);
    return frozen;
}

/* Push a frozen metatable over the table at `idx` (not yet set on
 * anything). `what` names the table in errors. Lua: may raise. */
static void push_frozen_mt(lua_State *L, int idx, const char *what)
{
    idx = lua_absindex(L, idx);
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, what);
    lua_pushcclosure(L, frozen_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, frozen_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &frozen_key);
}

void ljs__state_push_frozen(lua_State *L, int idx, const char *what)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    push_frozen_mt(L, idx, what);
    lua_setmetatable(L, -2);
}

/* Deep proxies (module values): nested tables come out frozen too, each
 * real table with one proxy, cached in a weak-keyed registry table. */
static char deep_cache_key;

static void push_deep(lua_State *L, int idx, const char *what);

/* Replace the value on top with its deep proxy when it is a plain table. */
static void wrap_top(lua_State *L, const char *what)
{
    if (lua_type(L, -1) == LUA_TTABLE && !ljs__state_is_frozen(L, -1)) {
        push_deep(L, -1, what);
        lua_remove(L, -2);
    }
}

static int deep_index(lua_State *L)
{
    lua_settop(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    wrap_top(L, lua_tostring(L, lua_upvalueindex(2)));
    return 1;
}

static int deep_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)) == 0) {
        lua_pushnil(L);
        return 1;
    }
    wrap_top(L, lua_tostring(L, lua_upvalueindex(2)));
    return 2;
}

static int deep_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushcclosure(L, deep_next, 2);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static void push_deep(lua_State *L, int idx, const char *what)
{
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &deep_cache_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &deep_cache_key);
    }
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    int cache = lua_gettop(L);
    lua_newtable(L);
    push_frozen_mt(L, idx, what);
    lua_pushvalue(L, idx);
    lua_pushstring(L, what);
    lua_pushcclosure(L, deep_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, idx);
    lua_pushstring(L, what);
    lua_pushcclosure(L, deep_pairs, 2);
    lua_setfield(L, -2, "__pairs");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, cache);
    lua_remove(L, cache);
}

void ljs__state_push_frozen_deep(lua_State *L, int idx, const char *what)
{
    push_deep(L, idx, what);
}

/* rawset(t, k, v), refused on frozen tables: a raw write into a proxy
 * would shadow the pristine value for this worker only. */
static int safe_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (ljs__state_is_frozen(L, 1))
        return luaL_error(L, "rawset: the table is read-only (a library or a script environment)");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static const char *const frozen_libs[] = {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME,
                                          LUA_COLIBNAME};

#define BASE_KEY "ljs.base"

int ljs__state_seal(lua_State *L)
{
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    for (size_t i = 0; i < sizeof frozen_libs / sizeof frozen_libs[0]; i++) {
        lua_getfield(L, g, frozen_libs[i]);
        ljs__state_push_frozen(L, -1, frozen_libs[i]);
        lua_setfield(L, g, frozen_libs[i]);
        lua_pop(L, 1);
    }
    lua_pushcfunction(L, safe_rawset);
    lua_setfield(L, g, "rawset");
    /* ("").rep stays fast (the metatable indexes the real library), but
     * getmetatable("") no longer hands it out. */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    /* The base every environment copies: the globals without _G. */
    lua_newtable(L);
    int base = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, g) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, base);
    }
    lua_pushnil(L);
    lua_setfield(L, base, "_G");
    lua_pushvalue(L, base);
    lua_setfield(L, LUA_REGISTRYINDEX, BASE_KEY);
    /* What `load` without an env (and any C code using the globals) sees. */
    ljs__state_push_frozen(L, base, "the global table");
    lua_pushvalue(L, -1);
    lua_setfield(L, base, "_G"); /* environments replace it with themselves */
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_settop(L, 0);
    return 0;
}

/* While a chunk runs, a new global goes to the script's own globals
 * (upvalue 1). */
static int env_define(lua_State *L)
{
    lua_settop(L, 3);
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
}

static int env_guard(lua_State *L)
{
    return luaL_error(L,
                      "assignment to global '%s' after the script loaded: script state belongs in fields "
                      "(self.x); globals are shared by every entity this worker runs",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2));
}

void ljs__state_env_push(lua_State *L)
{
    lua_newtable(L); /* the environment: always empty */
    lua_getfield(L, LUA_REGISTRYINDEX, BASE_KEY);
    int base = lua_gettop(L);
    lua_newtable(L); /* the script's globals: a copy of the base */
    int own = lua_gettop(L);
    /* Globals it lacks are read from the base, so host namespaces added
     * after the script loaded (host/host.c) reach it too. */
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, base);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, own);
    lua_pushnil(L);
    while (lua_next(L, base) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, own);
    }
    lua_pushvalue(L, base - 1);
    lua_setfield(L, own, "_G");
    push_frozen_mt(L, own, "the script's globals");
    lua_pushvalue(L, own);
    lua_pushcclosure(L, env_define, 1);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, base - 1);
    lua_pop(L, 2);
}

void ljs__state_env_seal(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return;
    lua_pushcfunction(L, env_guard);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
}

static const luaL_Reg safe_libs[] = {
    {LUA_GNAME, luaopen_base},
    {LUA_STRLIBNAME, luaopen_string},
    {LUA_TABLIBNAME, luaopen_table},
    {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},
    {LUA_COLIBNAME, luaopen_coroutine},
    {NULL, NULL},
};

/* Runs under lua_pcall: opening libraries can raise on out-of-memory. */
static int open_sandbox(lua_State *L)
{
    for (const luaL_Reg *lib = safe_libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_getglobal(L, "load");
    lua_pushcclosure(L, safe_load, 1);
    lua_setglobal(L, "load");
    /* Runaway limits reach coroutines and long library calls; no __gc. */
    ljs__watchdog_open(L);
    ljs__limits_open(L);
    ljs__gc_open_lib(L); /* reads the collector, never steers it */
    return 0;
}

static int open_trusted(lua_State *L)
{
    luaL_openlibs(L);
    return 0;
}

static lua_State *create(ljs__alloc_t *a, lua_CFunction opener)
{
    lua_State *L = lua_newstate(ljs__alloc_lua, a);
    if (L == NULL)
        return NULL;
    /* No worker yet (the runtime stores it after creation; test states
     * have none): library functions check for NULL. */
    *(void **)lua_getextraspace(L) = NULL;
    lua_atpanic(L, panic);
    lua_pushcfunction(L, opener);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_close(L);
        return NULL;
    }
    return L;
}

lua_State *ljs__state_create(ljs__alloc_t *a)
{
    return create(a, open_sandbox);
}

lua_State *ljs__state_create_trusted(ljs__alloc_t *a)
{
    return create(a, open_trusted);
}

int ljs__state_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}
