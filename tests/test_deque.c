/* test_deque.c - Chase-Lev deque: order, capacity, and owner-vs-thieves races
 * in which every item must be taken exactly once. */
#include "support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "jobs/deque.h"

#define ITEM(i) ((void *)(uintptr_t)((i) + 1))
#define INDEX(p) ((size_t)(uintptr_t)(p)-1)

static void test_deque_owner_pops_in_lifo_order(void **state)
{
    (void)state;
    ljs__deque_t d;
    assert_int_equal(ljs__deque_init(&d, 64), 0);
    for (size_t i = 0; i < 50; i++)
        assert_int_equal(ljs__deque_push(&d, ITEM(i)), 1);
    for (size_t i = 50; i-- > 0;)
        assert_ptr_equal(ljs__deque_pop(&d), ITEM(i));
    assert_null(ljs__deque_pop(&d));
    assert_null(ljs__deque_pop(&d)); /* popping empty twice keeps it consistent */
    assert_int_equal(ljs__deque_push(&d, ITEM(7)), 1);
    assert_ptr_equal(ljs__deque_pop(&d), ITEM(7));
    ljs__deque_fini(&d);
}

static void test_deque_thieves_steal_in_fifo_order(void **state)
{
    (void)state;
    ljs__deque_t d;
    void *item = NULL;
    assert_int_equal(ljs__deque_init(&d, 64), 0);
    assert_int_equal(ljs__deque_steal(&d, &item), LJS__DEQUE_EMPTY);
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(ljs__deque_push(&d, ITEM(i)), 1);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(ljs__deque_steal(&d, &item), LJS__DEQUE_OK);
        assert_ptr_equal(item, ITEM(i));
    }
    /* The owner still sees its newest items at the bottom. */
    assert_ptr_equal(ljs__deque_pop(&d), ITEM(39));
    for (size_t i = 20; i < 39; i++) {
        assert_int_equal(ljs__deque_steal(&d, &item), LJS__DEQUE_OK);
        assert_ptr_equal(item, ITEM(i));
    }
    assert_int_equal(ljs__deque_steal(&d, &item), LJS__DEQUE_EMPTY);
    assert_null(ljs__deque_pop(&d));
    ljs__deque_fini(&d);
}

static void test_deque_refuses_push_when_full_and_wraps_around(void **state)
{
    (void)state;
    ljs__deque_t d;
    void *item;
    assert_int_equal(ljs__deque_init(&d, 10), 0); /* rounded up to 16 */
    for (size_t round = 0; round < 5; round++) {  /* indices wrap the ring */
        for (size_t i = 0; i < 16; i++)
            assert_int_equal(ljs__deque_push(&d, ITEM(i)), 1);
        assert_int_equal(ljs__deque_push(&d, ITEM(99)), 0);
        assert_int_equal(ljs__deque_steal(&d, &item), LJS__DEQUE_OK);
        assert_ptr_equal(item, ITEM(0));
        assert_int_equal(ljs__deque_push(&d, ITEM(16)), 1); /* room again */
        assert_int_equal(ljs__deque_push(&d, ITEM(99)), 0);
        for (size_t i = 16; i >= 1; i--)
            assert_ptr_equal(ljs__deque_pop(&d), ITEM(i));
        assert_null(ljs__deque_pop(&d));
    }
    ljs__deque_fini(&d);
}

/* ---- owner vs thieves --------------------------------------------------- */

#define NTHIEVES 4
#define RACE_ITEMS ((size_t)4000000 / LJS_TEST_SCALE)

typedef struct race_s {
    ljs__deque_t d;
    atomic_uchar *seen;
    atomic_int done;
    atomic_size_t stolen;
    atomic_int fifo_broken;
} race_t;

static void take(race_t *r, void *item)
{
    size_t i = INDEX(item);
    if (i >= RACE_ITEMS) { /* cmocka asserts only on the main thread */
        atomic_store(&r->fifo_broken, 2);
        return;
    }
    /* relaxed: only counts; the joins order these before the final check. */
    atomic_fetch_add_explicit(&r->seen[i], 1, memory_order_relaxed);
}

static void *thief_main(void *p)
{
    race_t *r = p;
    size_t last = 0, n = 0;
    for (;;) {
        void *item;
        int rc = ljs__deque_steal(&r->d, &item);
        if (rc == LJS__DEQUE_OK) {
            /* FIFO: one thief's successive steals see increasing indices,
             * since the owner pushes increasing indices and top only grows. */
            if (n && INDEX(item) <= last)
                atomic_store(&r->fifo_broken, 1);
            last = INDEX(item);
            n++;
            take(r, item);
        } else if (rc == LJS__DEQUE_EMPTY && atomic_load(&r->done)) {
            break;
        }
    }
    atomic_fetch_add(&r->stolen, n);
    return NULL;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The owner pushes bursts and pops some of each burst back (including many
 * single push/pop pairs, the owner-vs-thief race on the last item). */
static size_t owner_run(race_t *r)
{
    uint64_t rng = 0x1234567u;
    size_t next = 0, popped = 0;
    while (next < RACE_ITEMS) {
        uint64_t x = xorshift(&rng);
        size_t burst = x % 4 == 0 ? 1 : 1 + (size_t)(x >> 8) % 48;
        size_t pops = (size_t)(x >> 20) % (burst + 1);
        for (size_t k = 0; k < burst && next < RACE_ITEMS; k++) {
            if (ljs__deque_push(&r->d, ITEM(next)))
                next++;
            else
                break; /* full: drain some below */
        }
        for (size_t k = 0; k < pops; k++) {
            void *item = ljs__deque_pop(&r->d);
            if (!item)
                break;
            take(r, item);
            popped++;
        }
    }
    for (void *item; (item = ljs__deque_pop(&r->d)) != NULL; popped++)
        take(r, item);
    return popped;
}

static void race(uint32_t capacity)
{
    race_t r;
    pthread_t th[NTHIEVES];
    assert_int_equal(ljs__deque_init(&r.d, capacity), 0);
    r.seen = calloc(RACE_ITEMS, sizeof *r.seen);
    assert_non_null(r.seen);
    atomic_init(&r.done, 0);
    atomic_init(&r.stolen, 0);
    atomic_init(&r.fifo_broken, 0);
    for (int i = 0; i < NTHIEVES; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thief_main, &r), 0);
    size_t popped = owner_run(&r);
    atomic_store(&r.done, 1);
    for (int i = 0; i < NTHIEVES; i++)
        pthread_join(th[i], NULL);
    print_message("capacity %u: %zu popped by the owner, %zu stolen\n", capacity, popped,
                  (size_t)atomic_load(&r.stolen));
    size_t bad = 0;
    for (size_t i = 0; i < RACE_ITEMS; i++)
        bad += atomic_load_explicit(&r.seen[i], memory_order_relaxed) != 1;
    assert_int_equal(bad, 0);
    assert_int_equal(popped + atomic_load(&r.stolen), RACE_ITEMS);
    assert_int_equal(atomic_load(&r.fifo_broken), 0);
    free(r.seen);
    ljs__deque_fini(&r.d);
}

static void test_deque_race_takes_every_item_exactly_once(void **state)
{
    (void)state;
    race(1024);
}

static void test_deque_race_on_a_tiny_deque_takes_every_item_exactly_once(void **state)
{
    (void)state;
    race(4); /* constantly full and wrapping around */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deque_owner_pops_in_lifo_order),
        cmocka_unit_test(test_deque_thieves_steal_in_fifo_order),
        cmocka_unit_test(test_deque_refuses_push_when_full_and_wraps_around),
        cmocka_unit_test(test_deque_race_takes_every_item_exactly_once),
        cmocka_unit_test(test_deque_race_on_a_tiny_deque_takes_every_item_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
