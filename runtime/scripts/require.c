/* require.c - shared helper modules for scripts.
 *
 * require("ai.steer") loads <root>/ai/steer.lua, where <root> is the
 * directory of the script being loaded. Names are dot-separated identifiers,
 * so a module can never resolve outside the root (no "..", no "/", no
 * absolute paths) and there are no C modules. A module runs once per
 * state; its value is kept in the registry table "ljs.modules" by path.
 *
 * Modules go through the bytecode cache like scripts: worker 0 (the owner
 * thread, which loads every script first) reads and prepares the file, the
 * other workers load the cached bytecode. Worker 0 also records which
 * scripts depend on which module files (hot reload uses it). */
/* realpath(3) */
#define _XOPEN_SOURCE 700

#include "runtime/scripts/require.h"

#include "jobs/mem.h"

#include "runtime/error.h"
#include "runtime/lua/state.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULES "ljs.modules"
#define MAX_MODULE_NAME 200

void ljs__require_root(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

/* "a.b_c" -> "a/b_c"; 0 if the name is not dot-separated identifiers. */
static int module_rel_path(const char *name, char *out, size_t n)
{
    size_t len = strlen(name), seg = 0;
    if (len == 0 || len > MAX_MODULE_NAME || len + 5 > n)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            if (seg == 0)
                return 0; /* empty segment: "", ".a", "a..b", "a." */
            out[i] = '/';
            seg = 0;
            continue;
        }
        int ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (seg > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
        out[i] = c;
        seg++;
    }
    memcpy(out + len, ".lua", 5);
    return 1;
}

static void record_dependency(ljs__worker_t *w, const char *path)
{
    if (w->index != 0 || w->loading == UINT32_MAX)
        return;
    ljs__script_t *s = &w->rt->scripts[w->loading];
    for (uint32_t i = 0; i < s->ndeps; i++)
        if (!strcmp(s->deps[i], path))
            return;
    char **p = ljs__realloc(s->deps, (s->ndeps + 1) * sizeof *p);
    char *copy = ljs__strdup(path);
    if (p == NULL || copy == NULL) {
        ljs__free(copy);
        if (p != NULL)
            s->deps = p;
        return; /* a missing record only costs a hot reload later */
    }
    s->deps = p;
    s->deps[s->ndeps++] = copy;
}

/* Module names cannot climb out of the root, but a symlink inside it can
 * point anywhere: the resolved file must lie under the resolved root. A
 * missing file is left to the read's own "module not found". */
static int inside_root(const char *path, const char *root)
{
    char real_root[PATH_MAX], real_path[PATH_MAX];
    if (realpath(path, real_path) == NULL)
        return 1;
    if (realpath(root, real_root) == NULL)
        return 0;
    size_t n = strlen(real_root);
    return strncmp(real_path, real_root, n) == 0 && (real_path[n] == '/' || n == 1);
}

/* Push the module file's chunk. Worker 0 prepares it in the cache first. */
static void load_module_chunk(lua_State *L, ljs__worker_t *w, const char *path, const char *name,
                              const char *root)
{
    const ljs_config_t *cfg = &w->rt->cfg;
    char chunkname[1100], err[1024], warn[1024];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    if (cfg->cache && w->index != 0) {
        int st = ljs__cache_load(w->epoch_rec, L, path, (int)cfg->strip_bytecode, chunkname, 0);
        if (st == LUA_ERRFILE)
            luaL_error(L,
                       "require('%s'): not prepared on the host: require modules when the script loads "
                       "(at its top level), not later",
                       name);
        if (st != LUA_OK)
            lua_error(L);
        return;
    }
    char *src = NULL;
    size_t len = 0;
    ljs__source_id_t id;
    if (!inside_root(path, root))
        luaL_error(L, "require('%s'): %s resolves outside the script's directory (a symlink?)", name, path);
    if (ljs__script_read_source(path, &src, &len, &id) != LJS_OK)
        luaL_error(L, "require('%s'): module not found (looked for %s)", name, path);
    int st;
    if (cfg->cache) {
        ljs__cache_req_t req = {
            path, id, src, len, (int)cfg->strip_bytecode, cfg->cache_dir, (uint64_t)cfg->cache_max_mb << 20,
            0};
        int rc = ljs__cache_prepare(L, &req, err, sizeof err, warn, sizeof warn);
        ljs__free(src);
        if (warn[0])
            ljs__console_log(&w->rt->console, LJS_LOG_WARN, w->rt->frame, 0, name, "%s", warn);
        if (rc != LJS_OK)
            luaL_error(L, "%s", err);
        st = ljs__cache_load(w->epoch_rec, L, path, (int)cfg->strip_bytecode, chunkname, 0);
    } else {
        st = luaL_loadbufferx(L, src, len, chunkname, "t");
        ljs__free(src);
    }
    if (st != LUA_OK)
        lua_error(L);
}

/* Protected part of require: load and run the module (args: path, name,
 * root as light strings on the stack). */
static int load_and_run(lua_State *L)
{
    const char *path = lua_tostring(L, 1), *name = lua_tostring(L, 2), *root = lua_tostring(L, 3);
    load_module_chunk(L, ljs__worker_of(L), path, name, root);
    ljs__require_run_chunk(L, root);
    return 1;
}

/* require(name) -> the module's value. Upvalue 1: the root directory. */
static int api_require(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    const char *root = lua_tostring(L, lua_upvalueindex(1));
    if (strlen(name) != len)
        return luaL_error(L, "require: bad module name (it contains a NUL byte)");
    char rel[MAX_MODULE_NAME + 8], path[1024];
    if (!module_rel_path(name, rel, sizeof rel))
        return luaL_error(
            L, "require('%s'): bad module name (use dot-separated identifiers, e.g. 'ai.steer')", name);
    snprintf(path, sizeof path, "%s/%s", root, rel);
    lua_getfield(L, LUA_REGISTRYINDEX, MODULES);
    int modules = lua_gettop(L);
    if (lua_getfield(L, modules, path) != LUA_TNIL) {
        if (lua_islightuserdata(L, -1))
            return luaL_error(L, "require('%s'): circular require", name);
        record_dependency(w, path);
        return 1;
    }
    lua_pop(L, 1);
    lua_pushlightuserdata(L, (void *)&api_require); /* "loading" sentinel */
    lua_setfield(L, modules, path);
    /* A failed module must not stay marked as loading, or every later
     * require of it would report a cycle: run it protected, then clear. */
    lua_pushcfunction(L, load_and_run);
    lua_pushstring(L, path);
    lua_pushstring(L, name);
    lua_pushstring(L, root);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, modules, path);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    } else if (lua_istable(L, -1)) {
        /* Every script of this worker shares the value: read-only, deeply. */
        char what[MAX_MODULE_NAME + 16];
        snprintf(what, sizeof what, "module '%s'", name);
        ljs__state_push_frozen_deep(L, -1, what);
        lua_remove(L, -2);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, modules, path);
    record_dependency(w, path);
    return 1;
}

void ljs__require_run_chunk(lua_State *L, const char *root)
{
    /* The environment: the script's own globals over pristine, read-only
     * libraries (state.c), so scripts and modules never see each other's
     * globals or changes. */
    ljs__state_env_push(L);
    lua_pushstring(L, root);
    lua_pushcclosure(L, api_require, 1);
    lua_setfield(L, -2, "require");
    lua_pushvalue(L, -1);
    lua_insert(L, -3); /* env, chunk, env */
    lua_setupvalue(L, -2, 1);
    lua_call(L, 0, 1);
    /* From now on a global assignment is a mistake: state belongs in fields. */
    ljs__state_env_seal(L, -2);
    lua_remove(L, -2); /* env */
}
