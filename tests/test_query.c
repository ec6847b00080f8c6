/* test_query.c - cached queries equal a brute-force scan after thousands of
 * random structural changes, from the host and from scripts, for every
 * worker count; eviction; the cache switched off. */
#include "tests/support.h"

#include <ljs.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const tags[] = {"a", "b", "c", "d", "e"};
#define NTAGS 5

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The signatures checked: all-of and none-of combinations. */
typedef struct sig_s {
    const char *all[2];
    size_t nall;
    const char *none[2];
    size_t nnone;
} sig_t;

static const sig_t sigs[] = {
    {{"a"}, 1, {NULL}, 0},         {{"a", "b"}, 2, {NULL}, 0}, {{"c"}, 1, {"d"}, 1},
    {{NULL}, 0, {"e"}, 1},         {{"b"}, 1, {"a", "c"}, 2},  {{"never"}, 1, {NULL}, 0},
    {{"d", "e"}, 2, {"never"}, 1},
};
#define NSIGS (sizeof sigs / sizeof sigs[0])

typedef struct model_s {
    ljs_entity_t e[600];
    uint32_t tagbits[600];
    int alive[600];
    int n;
} model_t;

/* Brute force over the model, sorted by slot like ljs. */
static size_t expected(const model_t *m, const sig_t *s, uint64_t *out)
{
    size_t n = 0;
    uint64_t all = 0, none = 0;
    for (size_t i = 0; i < s->nall; i++) {
        int k = -1;
        for (int t = 0; t < NTAGS; t++)
            if (!strcmp(tags[t], s->all[i]))
                k = t;
        if (k < 0)
            return 0;
        all |= 1u << k;
    }
    for (size_t i = 0; i < s->nnone; i++)
        for (int t = 0; t < NTAGS; t++)
            if (!strcmp(tags[t], s->none[i]))
                none |= 1u << t;
    for (int i = 0; i < m->n; i++)
        if (m->alive[i] && (m->tagbits[i] & all) == all && (m->tagbits[i] & none) == 0)
            out[n++] = m->e[i].id;
    /* sort by slot (low 32 bits) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && (uint32_t)out[j - 1] > (uint32_t)out[j]; j--) {
            uint64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static void check_all(ljs_runtime_t *rt, const model_t *m)
{
    static uint64_t want[600];
    for (size_t k = 0; k < NSIGS; k++) {
        ljs_query_t q = {sigs[k].all, sigs[k].nall, sigs[k].none, sigs[k].nnone};
        const ljs_entity_t *got;
        size_t n;
        assert_int_equal(ljs_query(rt, &q, &got, &n), LJS_OK);
        size_t nw = expected(m, &sigs[k], want);
        if (n != nw)
            fail_msg("signature %zu: %zu results, expected %zu", k, n, nw);
        for (size_t i = 0; i < n; i++)
            assert_true(got[i].id == want[i]);
    }
}

static void random_step(ljs_runtime_t *rt, model_t *m, uint64_t *seed)
{
    uint64_t r = rng(seed);
    int op = (int)(r % 10);
    if (op == 0 && m->n < 600) {
        assert_int_equal(ljs_entity_create(rt, &m->e[m->n]), LJS_OK);
        m->alive[m->n] = 1;
        m->tagbits[m->n] = 0;
        m->n++;
        return;
    }
    if (m->n == 0)
        return;
    int i = (int)((r >> 8) % (uint64_t)m->n);
    if (!m->alive[i])
        return;
    if (op == 1) {
        assert_int_equal(ljs_entity_destroy(rt, m->e[i]), LJS_OK);
        m->alive[i] = 0;
        return;
    }
    int t = (int)((r >> 20) % NTAGS), on = (int)((r >> 30) & 1);
    assert_int_equal(ljs_entity_tag(rt, m->e[i], tags[t], on), LJS_OK);
    m->tagbits[i] = on ? m->tagbits[i] | (1u << t) : m->tagbits[i] & ~(1u << t);
}

static ljs_runtime_t *runtime(unsigned workers, uint32_t cache)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = workers;
    cfg.query_cache = cache;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    return rt;
}

/* Thousands of random creates, destroys and tag changes, with frames in
 * between: every cached query equals the brute-force scan every time. */
static void test_query_cached_results_equal_a_scan_under_random_churn(void **state)
{
    static const uint32_t caches[] = {128, 3, 0}; /* roomy, evicting, off */
    for (size_t c = 0; c < 3; c++) {
        ljs_runtime_t *rt = runtime(2, caches[c]);
        model_t *m = calloc(1, sizeof *m);
        uint64_t seed = 0x5eed0000u + c;
        for (int t = 0; t < NTAGS; t++) { /* register the tag names */
            ljs_entity_t e;
            assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
            assert_int_equal(ljs_entity_tag(rt, e, tags[t], 1), LJS_OK);
            assert_int_equal(ljs_entity_destroy(rt, e), LJS_OK);
        }
        const int steps = 4000 / LJS_TEST_SCALE;
        for (int s = 0; s < steps; s++) {
            random_step(rt, m, &seed);
            if (s % 97 == 0)
                check_all(rt, m);
            if (s % 331 == 0)
                assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
        }
        check_all(rt, m);
        ljs_query_stats_t st;
        assert_int_equal(ljs_query_stats(rt, &st), LJS_OK);
        if (caches[c] == 128) {
            assert_true(st.hits > 0 && st.deltas > 0);
            assert_int_equal(st.evictions, 0);
        } else if (caches[c] == 3) {
            assert_true(st.evictions > 0);
            assert_true(st.entries <= 3);
        } else {
            assert_int_equal(st.entries, 0);
        }
        free(m);
        ljs_runtime_destroy(rt);
    }
}

/* Scripts see the same results through query(), on every worker count,
 * including changes made by scripts themselves (spawn/destroy/tags). */
static void test_query_from_scripts_matches_the_host_view(void **state)
{
    char dir[] = "/tmp/ljs-query-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/counter.lua", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("return { fields = { na = 0, nab = 0, ncd = 0, sum = 0, age = 0 }, tags = { 'a' },\n"
          "  update = function(self)\n"
          "    local q = query('a')\n"
          "    self.na = #q\n"
          "    self.nab = #query('a', 'b')\n"
          "    self.ncd = #query{ all = {'a'}, none = {'b'} }\n"
          "    local s = 0\n"
          "    for i, id in ipairs(q) do s = s + (id % 1000) end\n"
          "    self.sum = s\n"
          "    self.age = self.age + 1\n"
          "    if self.age % 3 == 0 then spawn('counter', {}) end\n"
          "    if self.age % 5 == 0 then destroy(self.id) end\n"
          "  end }\n",
          f);
    fclose(f);
    uint64_t digest = 0;
    for (size_t k = 0; k < LJS_TEST_NWORKER_COUNTS; k++) {
        ljs_runtime_t *rt = runtime(ljs_test_worker_counts[k], 128);
        ljs_script_t s;
        assert_int_equal(ljs_script_load(rt, path, &s), LJS_OK);
        for (int i = 0; i < 20; i++) {
            ljs_entity_t e;
            assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
            assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
            if (i % 2)
                assert_int_equal(ljs_entity_tag(rt, e, "b", 1), LJS_OK);
        }
        for (int fr = 0; fr < 12; fr++) {
            assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
            const char *a[] = {"a"};
            ljs_query_t q = {a, 1, NULL, 0};
            const ljs_entity_t *got;
            size_t n;
            assert_int_equal(ljs_query(rt, &q, &got, &n), LJS_OK);
            assert_true(n == ljs_entity_count(rt));
        }
        if (k == 0)
            digest = ljs_world_digest(rt);
        else
            assert_true(ljs_world_digest(rt) == digest);
        ljs_query_stats_t st;
        assert_int_equal(ljs_query_stats(rt, &st), LJS_OK);
        assert_true(st.hits > st.misses);
        ljs_runtime_destroy(rt);
    }
    unlink(path);
    rmdir(dir);
}

/* Engine threads post tag changes while the host runs frames; a 4-slot
 * ring forces spills. Every post is applied, in each thread's order, and
 * cached queries follow. */
typedef struct poster_s {
    ljs_runtime_t *rt;
    const ljs_entity_t *e;
    int first, count, rounds;
} poster_t;

static void *poster(void *arg)
{
    poster_t *p = arg;
    for (int r = 0; r < p->rounds; r++)
        for (int i = p->first; i < p->first + p->count; i++) {
            /* on, off, on ...: the last post of a round decides. */
            assert_int_equal(ljs_entity_tag_post(p->rt, p->e[i], "hot", (r + i) % 2), LJS_OK);
            assert_int_equal(ljs_entity_tag_post(p->rt, p->e[i], "seen", 1), LJS_OK);
        }
    return NULL;
}

static void test_query_tag_posts_from_threads_are_applied_in_order(void **state)
{
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    enum { THREADS = 4, PER = 50 };
    ljs_entity_t e[THREADS * PER];
    ljs_test_clear_env();
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 2;
    cfg.entity_ring = 4;
    assert_int_equal(ljs_runtime_create(&cfg, &rt), LJS_OK);
    for (int i = 0; i < THREADS * PER; i++)
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
    const char *hot[] = {"hot"};
    ljs_query_t q = {hot, 1, NULL, 0};
    const ljs_entity_t *got;
    size_t n;
    assert_int_equal(ljs_query(rt, &q, &got, &n), LJS_OK); /* cache the signature */
    pthread_t t[THREADS];
    poster_t ps[THREADS];
    const int rounds = 41; /* odd: entity i ends with hot = (40 + i) % 2 */
    for (int k = 0; k < THREADS; k++) {
        ps[k] = (poster_t){rt, e, k * PER, PER, rounds};
        assert_int_equal(pthread_create(&t[k], NULL, poster, &ps[k]), 0);
    }
    for (int f = 0; f < 20; f++)
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK); /* drains while they post */
    for (int k = 0; k < THREADS; k++)
        pthread_join(t[k], NULL);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    for (int i = 0; i < THREADS * PER; i++) {
        assert_int_equal(ljs_entity_has_tag(rt, e[i], "hot"), (40 + i) % 2);
        assert_true(ljs_entity_has_tag(rt, e[i], "seen"));
    }
    assert_int_equal(ljs_query(rt, &q, &got, &n), LJS_OK);
    assert_int_equal(n, THREADS * PER / 2);
    ljs_stats_t st;
    assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
    assert_int_equal(st.tag_posts, (uint64_t)THREADS * PER * rounds * 2);
    assert_true(st.tag_post_spills > 0);
    assert_int_equal(st.tag_posts_dropped, 0);
    /* A post for a dead entity is dropped and counted. */
    assert_int_equal(ljs_entity_destroy(rt, e[0]), LJS_OK);
    assert_int_equal(ljs_entity_tag_post(rt, e[0], "hot", 1), LJS_OK);
    assert_int_equal(ljs_entity_tag_post(rt, e[1], "", 1), LJS_EINVAL);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    assert_int_equal(ljs_stats_get(rt, &st), LJS_OK);
    assert_int_equal(st.tag_posts_dropped, 1);
    ljs_runtime_destroy(rt);
}

/* Random tag posts from several threads while frames run: after every
 * frame, every cached query equals a brute-force check of every entity. */
typedef struct chaos_s {
    ljs_runtime_t *rt;
    const ljs_entity_t *e;
    int n;
    uint64_t seed;
    int posts;
} chaos_t;

static void *chaos_poster(void *arg)
{
    chaos_t *c = arg;
    for (int i = 0; i < c->posts; i++) {
        uint64_t r = rng(&c->seed);
        ljs_entity_tag_post(c->rt, c->e[r % (uint64_t)c->n], tags[(r >> 32) % NTAGS], (int)((r >> 40) & 1));
    }
    return NULL;
}

static void check_against_world(ljs_runtime_t *rt, const ljs_entity_t *e, int n)
{
    for (size_t k = 0; k < NSIGS; k++) {
        ljs_query_t q = {sigs[k].all, sigs[k].nall, sigs[k].none, sigs[k].nnone};
        const ljs_entity_t *got;
        size_t ng, nw = 0;
        assert_int_equal(ljs_query(rt, &q, &got, &ng), LJS_OK);
        for (int i = 0; i < n; i++) {
            int ok = ljs_entity_alive(rt, e[i]);
            for (size_t a = 0; ok && a < sigs[k].nall; a++)
                ok = ljs_entity_has_tag(rt, e[i], sigs[k].all[a]);
            for (size_t b = 0; ok && b < sigs[k].nnone; b++)
                ok = !ljs_entity_has_tag(rt, e[i], sigs[k].none[b]);
            if (ok) {
                /* e[] was created in slot order, so results follow it. */
                if (nw >= ng || got[nw].id != e[i].id)
                    fail_msg("signature %zu: entity %d missing or out of order", k, i);
                nw++;
            }
        }
        assert_int_equal(nw, ng);
    }
}

static void test_query_random_posts_from_threads_keep_every_query_exact(void **state)
{
    enum { THREADS = 3, N = 300 };
    ljs_runtime_t *rt = runtime(2, 128);
    ljs_entity_t e[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(ljs_entity_create(rt, &e[i]), LJS_OK);
    for (int t = 0; t < NTAGS; t++)
        assert_int_equal(ljs_entity_tag(rt, e[0], tags[t], 1), LJS_OK);
    pthread_t th[THREADS];
    chaos_t c[THREADS];
    for (int k = 0; k < THREADS; k++) {
        c[k] = (chaos_t){rt, e, N, 0xc4a05u + (uint64_t)k, 20000 / LJS_TEST_SCALE};
        assert_int_equal(pthread_create(&th[k], NULL, chaos_poster, &c[k]), 0);
    }
    for (int f = 0; f < 60; f++) {
        assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
        check_against_world(rt, e, N);
    }
    for (int k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    assert_int_equal(ljs_frame(rt, 0.0), LJS_OK);
    check_against_world(rt, e, N);
    ljs_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_cached_results_equal_a_scan_under_random_churn),
        cmocka_unit_test(test_query_from_scripts_matches_the_host_view),
        cmocka_unit_test(test_query_tag_posts_from_threads_are_applied_in_order),
        cmocka_unit_test(test_query_random_posts_from_threads_keep_every_query_exact),
    };
    return cmocka_run_group_tests_name("query", tests, NULL, NULL);
}
