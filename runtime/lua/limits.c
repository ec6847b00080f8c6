/* limits.c - library functions whose running time a script controls, kept
 * under the runaway limits (watchdog.c).
 *
 * A hook only fires between Lua instructions, so a single C call that runs
 * for seconds is out of its reach. Each function here either refuses the
 * work before it starts or polls the watchdog (ljs__watchdog_check: two
 * relaxed loads) every few thousand steps and once at the end (so work
 * counts against LJS_SCRIPT_BUDGET however it is split), so it stops
 * within the limit:
 * - string.rep: a result larger than the state's memory limit fails (out
 *   of memory) before anything is written; the copy polls every 64 KiB.
 * - table.concat, table.move: poll every 4096 elements (a range of 2^60
 *   nils costs no memory, only time).
 * - table.sort: a heapsort (O(n log n) comparisons whatever the comparator
 *   answers, never out of bounds, no randomized pivot, so the same order on
 *   every worker) that polls every 1024 comparisons. An inconsistent
 *   comparator gives some permutation instead of Lua's "invalid order
 *   function" error.
 * - setmetatable refuses a metatable with a __gc field: Lua runs finalizers
 *   with hooks disabled, outside any call (GC steps, idle workers, state
 *   close), so no limit could stop one; Luau refuses __gc the same way.
 * Pattern matching (string.find/match/gmatch/gsub) is in pattern.c.
 * Elements are read and written with lua_geti/lua_seti, so metamethods run
 * as in Lua's own functions (and, being Lua code, under the hook). */
#include "runtime/lua/limits.h"

#include "runtime/core.h"
#include "runtime/lua/watchdog.h"

#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#define POLL_ELEMS 4096
#define POLL_BYTES ((size_t)64 * 1024)
#define POLL_CMPS 1024

/* A table, or a value whose metatable has the metamethods `need` lists. */
static void check_tab(lua_State *L, int arg, const char *const *need)
{
    if (lua_type(L, arg) == LUA_TTABLE)
        return;
    int ok = lua_getmetatable(L, arg);
    for (; ok && *need != NULL; need++) {
        ok = lua_getfield(L, -1, *need) != LUA_TNIL;
        lua_pop(L, 1);
    }
    if (!ok)
        luaL_checktype(L, arg, LUA_TTABLE); /* raises the usual message */
    lua_pop(L, 1);
}

static const char *const tab_r[] = {"__index", "__len", NULL};
static const char *const tab_rw[] = {"__index", "__newindex", "__len", NULL};
static const char *const tab_w[] = {"__newindex", NULL};

/* ---- string.rep ----------------------------------------------------------- */

static int l_rep(lua_State *L)
{
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || (l == 0 && lsep == 0)) {
        lua_pushliteral(L, "");
        return 1;
    }
    /* n * l + (n - 1) * lsep must fit; past the state's memory limit the
     * buffer's allocation fails before anything is written. */
    if (l + lsep < l || (uint64_t)n > (SIZE_MAX / 2) / (l + lsep))
        return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * l + ((size_t)n - 1) * lsep, since = 0;
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, total);
    for (lua_Integer i = 0; i < n; i++) {
        memcpy(p, s, l);
        p += l;
        if (i + 1 < n) {
            memcpy(p, sep, lsep);
            p += lsep;
        }
        if ((since += l + lsep) >= POLL_BYTES) {
            ljs__watchdog_check(L, since / 64); /* balanced: the buffer allows it */
            since = 0;
        }
    }
    ljs__watchdog_check(L, since / 64);
    luaL_pushresultsize(&b, total);
    return 1;
}

/* ---- table.concat ------------------------------------------------------------ */

static void add_field(lua_State *L, luaL_Buffer *b, lua_Integer i)
{
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (at index %I) in table for 'concat'", (LUAI_UACINT)i);
    luaL_addvalue(b);
}

static int l_concat(lua_State *L)
{
    check_tab(L, 1, tab_r);
    lua_Integer last = luaL_len(L, 1);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    uint32_t since = 0;
    for (; i < last; i++) {
        add_field(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
        if (++since == POLL_ELEMS) {
            ljs__watchdog_check(L, since);
            since = 0;
        }
    }
    if (i == last)
        add_field(L, &b, i);
    ljs__watchdog_check(L, since);
    luaL_pushresult(&b);
    return 1;
}

/* ---- table.move ----------------------------------------------------------------- */

static int l_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3), t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
    check_tab(L, 1, tab_r);
    check_tab(L, tt, tab_w);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        /* Forward unless the ranges overlap with the destination after the
         * source in the same table. */
        int forward = t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ));
        uint32_t since = 0;
        for (lua_Integer k = 0; k < n; k++) {
            lua_Integer i = forward ? k : n - 1 - k;
            lua_geti(L, 1, f + i);
            lua_seti(L, tt, t + i);
            if (++since == POLL_ELEMS) {
                ljs__watchdog_check(L, since);
                since = 0;
            }
        }
        ljs__watchdog_check(L, since);
    }
    lua_pushvalue(L, tt);
    return 1;
}

/* ---- table.sort -------------------------------------------------------------------- */

typedef struct sort_s {
    int has_cmp;
    uint32_t since;
} sort_t;

/* Is the value at `a` less than the one at `b` (absolute indices)? */
static int less(lua_State *L, sort_t *s, int a, int b)
{
    int r;
    if (s->has_cmp) {
        lua_pushvalue(L, 2);
        lua_pushvalue(L, a);
        lua_pushvalue(L, b);
        lua_call(L, 2, 1);
        r = lua_toboolean(L, -1);
        lua_pop(L, 1);
    } else {
        r = lua_compare(L, a, b, LUA_OPLT);
    }
    if (++s->since == POLL_CMPS) {
        ljs__watchdog_check(L, s->since);
        s->since = 0;
    }
    return r;
}

/* Move a[root] down the max-heap a[1..n] (Williams 1964, with a hole:
 * one write per level instead of a swap). */
static void sift(lua_State *L, sort_t *s, lua_Integer root, lua_Integer n)
{
    lua_geti(L, 1, root);
    int v = lua_gettop(L);
    for (;;) {
        lua_Integer child = 2 * root;
        if (child > n)
            break;
        lua_geti(L, 1, child);
        if (child + 1 <= n) {
            lua_geti(L, 1, child + 1);
            if (less(L, s, v + 1, v + 2)) {
                child++;
                lua_remove(L, v + 1);
            } else {
                lua_pop(L, 1);
            }
        }
        if (!less(L, s, v, v + 1)) {
            lua_pop(L, 1);
            break;
        }
        lua_seti(L, 1, root); /* the larger child moves up */
        root = child;
    }
    lua_seti(L, 1, root);
}

static int l_sort(lua_State *L)
{
    check_tab(L, 1, tab_rw);
    lua_Integer n = luaL_len(L, 1);
    if (n <= 1)
        return 0;
    luaL_argcheck(L, n < INT32_MAX, 1, "array too big");
    sort_t s = {!lua_isnoneornil(L, 2), 0};
    if (s.has_cmp)
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    luaL_checkstack(L, 8, "table.sort");
    for (lua_Integer i = n / 2; i >= 1; i--)
        sift(L, &s, i, n);
    for (lua_Integer end = n; end > 1; end--) {
        lua_geti(L, 1, 1);
        lua_geti(L, 1, end);
        lua_seti(L, 1, 1);
        lua_seti(L, 1, end);
        sift(L, &s, 1, end - 1);
    }
    ljs__watchdog_check(L, s.since);
    return 0;
}

/* ---- setmetatable ------------------------------------------------------------------- */

/* Upvalue 1: Lua's setmetatable. */
static int l_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc is not allowed in scripts (a finalizer would run "
                                 "outside any call, where no time limit can stop it)");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static void set_fn(lua_State *L, const char *lib, const char *name, lua_CFunction fn)
{
    lua_getglobal(L, lib);
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

void ljs__limits_open(lua_State *L)
{
    set_fn(L, LUA_STRLIBNAME, "rep", l_rep);
    ljs__pattern_open(L);
    set_fn(L, LUA_TABLIBNAME, "concat", l_concat);
    set_fn(L, LUA_TABLIBNAME, "move", l_move);
    set_fn(L, LUA_TABLIBNAME, "sort", l_sort);
    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setglobal(L, "setmetatable");
}
