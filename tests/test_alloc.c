/* test_alloc.c - per-state allocator accounting and the memory limit. */
#include "tests/support.h"

#include "runtime/lua/alloc.h"
#include "runtime/lua/state.h"

#include <lauxlib.h>
#include <ljs.h>
#include <string.h>

static lua_State *new_state(ljs__alloc_t *a, size_t limit)
{
    assert_int_equal(ljs__alloc_init(a, limit), LJS_OK);
    lua_State *L = ljs__state_create(a);
    assert_non_null(L);
    return L;
}

static void close_state(lua_State *L, ljs__alloc_t *a)
{
    lua_close(L);
    assert_int_equal(atomic_load(&a->current), 0); /* every byte came back */
    ljs__alloc_fini(a);
}

static int run(lua_State *L, const char *code)
{
    lua_pushcfunction(L, ljs__state_traceback);
    int rc = luaL_loadbufferx(L, code, strlen(code), "=test", "t");
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, -2);
    lua_settop(L, 0);
    return rc;
}

static void test_alloc_counts_current_and_peak_bytes(void **state)
{
    ljs__alloc_t a;
    lua_State *L = new_state(&a, 64u << 20);
    size_t base = atomic_load(&a.current);
    assert_true(base > 1000); /* the libraries live in the state */
    assert_int_equal(run(L, "big = {} for i = 1, 100000 do big[i] = i end"), LUA_OK);
    size_t grown = atomic_load(&a.current);
    assert_true(grown > base + 100000 * 8); /* 16 B per array slot in 5.4 */
    assert_int_equal(run(L, "big = nil collectgarbage() collectgarbage()"), LUA_OK);
    assert_true(atomic_load(&a.current) < grown);
    assert_true(atomic_load(&a.peak) >= grown);
    close_state(L, &a);
}

static void test_alloc_limit_turns_memory_bomb_into_lua_error(void **state)
{
    ljs__alloc_t a;
    lua_State *L = new_state(&a, 4u << 20);
    assert_int_equal(run(L, "local s = string.rep('x', 64 * 1024 * 1024)"), LUA_ERRMEM);
    assert_true(atomic_load(&a.failed) >= 1);
    assert_true(atomic_load(&a.current) <= a.limit);
    /* A table bomb fails too, in the middle of the VM. */
    assert_int_equal(run(L, "local t = {} for i = 1, 1e8 do t[i] = i end"), LUA_ERRMEM);
    /* The state stays usable afterwards. */
    assert_int_equal(run(L, "x = 0 for i = 1, 1000 do x = x + i end assert(x == 500500)"), LUA_OK);
    close_state(L, &a);
}

static void test_alloc_sandbox_has_no_io_os_debug_package_or_binary_load(void **state)
{
    ljs__alloc_t a;
    lua_State *L = new_state(&a, 64u << 20);
    assert_int_equal(run(L, "assert(io == nil and os == nil and debug == nil and package == nil)"), LUA_OK);
    assert_int_equal(run(L, "assert(dofile == nil and loadfile == nil and require == nil)"), LUA_OK);
    assert_int_equal(run(L, "assert(string and table and math and utf8 and coroutine)"), LUA_OK);
    /* load still works on text, never on bytecode. */
    assert_int_equal(run(L, "assert(load('return 1 + 1')() == 2)"), LUA_OK);
    assert_int_equal(
        run(L, "local f, e = load(string.dump(function() end)) assert(f == nil and e:find('binary'))"),
        LUA_OK); /* string.dump exists; loading its output must fail */
    assert_int_equal(run(L, "local f, e = load('\\27Lua', 'x', 'b') assert(f == nil and e:find('binary'))"),
                     LUA_OK);
    assert_int_equal(run(L, "local env = {y = 5} assert(load('return y', 'c', 'bt', env)() == 5)"), LUA_OK);
    close_state(L, &a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_counts_current_and_peak_bytes),
        cmocka_unit_test(test_alloc_limit_turns_memory_bomb_into_lua_error),
        cmocka_unit_test(test_alloc_sandbox_has_no_io_os_debug_package_or_binary_load),
    };
    return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
