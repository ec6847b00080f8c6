/* test_steady.c - a running scene in steady state allocates no C heap
 * memory per frame: updates, events with payloads, spawn and destroy,
 * cached queries, commit and managed GC all reuse their buffers. Lua's own
 * allocations go to the per-state heaps and are not counted here: they are
 * bounded by the GC (test_gc). A counting malloc proves it: this program
 * defines malloc & co. itself (wrapping glibc's), which the dynamic linker
 * prefers for every caller in the process. */
#include "tests/support.h"

#include <ljs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNTING 0 /* the sanitizers own malloc; nothing to count with */
#else
#define COUNTING 1
#endif

static atomic_int counting;
static atomic_long allocs;

#if COUNTING
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

void *malloc(size_t n)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

static const char *const scripts[][2] = {
    {"walker", "return { fields = { x = 0.0, vx = 1.0, hp = 10 }, tags = { 'walker' },\n"
               "  reads = { 'x', 'vx' }, writes = { 'x' },\n"
               "  update = function(id, dt, x, vx) return x + vx * dt end,\n"
               "  on_hit = function(self, p, sender) self.hp = self.hp - p.damage end }\n"},
    {"biter", "return { fields = { target = 0, bites = 0 }, tags = { 'biter' },\n"
              "  update = function(self, dt)\n"
              "    local q = query('walker')\n"
              "    if #q > 0 then\n"
              "      local t = q[rand(self, 1, #q)]\n"
              "      send(t, 'hit', { damage = 1, kind = 'bite' })\n"
              "      self.bites = self.bites + 1\n"
              "    end\n"
              "  end }\n"},
    {"churn", "return { fields = { age = 0 }, tags = { 'churn' },\n"
              "  update = function(self, dt)\n"
              "    self.age = self.age + 1\n"
              "    if self.age == 5 then destroy(self.id); spawn('churn', { age = 0 }) end\n"
              "  end }\n"},
};

static void test_steady_state_frames_allocate_no_c_heap_memory(void **state)
{
    char dir[] = "/tmp/ljs-steady-XXXXXX", path[128];
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    assert_non_null(mkdtemp(dir));
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.watch = 0;
    ljs_test_no_gc_warning(&cfg); /* a console line allocates: none during the check */
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    for (size_t k = 0; k < 3; k++) {
        ljs_script_t s;
        snprintf(path, sizeof path, "%s/%s.lua", dir, scripts[k][0]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(scripts[k][1], f);
        fclose(f);
        assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
        for (int i = 0; i < 300; i++) {
            ljs_entity_t e;
            assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
            assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
        }
        unlink(path);
    }
    rmdir(dir);
    for (int f = 0; f < 300; f++) /* warm-up: buffers reach their sizes */
        assert_int_equal(ljs_frame(rt, 1.0 / 60), LJS_OK);
    atomic_store(&allocs, 0);
    atomic_store(&counting, 1);
    for (int f = 0; f < 200; f++)
        assert_int_equal(ljs_frame(rt, 1.0 / 60), LJS_OK);
    atomic_store(&counting, 0);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
    assert_true(st.events_delivered > 10000); /* the scene really ran */
    assert_int_equal(st.script_errors, 0);
    if (COUNTING && atomic_load(&allocs) != 0)
        fail_msg("%ld C heap allocations in 200 steady-state frames", atomic_load(&allocs));
    ljs_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_state_frames_allocate_no_c_heap_memory),
    };
    return cmocka_run_group_tests_name("steady", tests, NULL, NULL);
}
