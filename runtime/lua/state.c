/* state.c - per-worker Lua states and their sandbox.
 *
 * Scripts are untrusted gameplay code: they get base (without dofile,
 * loadfile, and with a `load` that accepts only text chunks, since binary
 * chunks are not verified by Lua and can crash the VM), string, table, math,
 * utf8 and coroutine. No io, os, debug or package. Some functions are ljs's
 * own so the runaway limits reach them (watchdog.c, limits.c). */
#include "runtime/lua/state.h"

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
