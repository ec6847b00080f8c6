/* test_snapshot.c - world snapshots: a saved world steps on bit-identically
 * in a fresh runtime with any worker count, and every bad file is refused
 * with nothing changed. */
#include "tests/support.h"

#include "runtime/snapshot.h"

#include <ljs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

/* A scene that uses everything a frame has: rand, reads of others, events
 * with payloads, spawn and destroy (so slots are reused), tags. */
static const char *swarm_src =
    "return { fields = { x = 0.0, y = 0.0, hp = 10, peer = 0, alarmed = false }, tags = { 'swarm' },\n"
    "  update = function(self, dt)\n"
    "    self.x = self.x + (rand(self) - 0.5) * dt\n"
    "    if self.peer ~= 0 then\n"
    "      local px = get(self.peer, 'x')\n"
    "      if px then self.y = self.y + (px - self.x) * 0.01 end\n"
    "      if rand(self) < 0.3 then send(self.peer, 'poke', { d = rand(self, 1, 3), why = 'x' }) end\n"
    "    end\n"
    "    if self.hp <= 0 then destroy(self.id) end\n"
    "    if rand(self) < 0.02 then spawn('swarm', { x = self.x, peer = self.id }) end\n"
    "  end,\n"
    "  on_poke = function(self, p, sender) self.hp = self.hp - p.d; self.peer = sender; self.alarmed = true end }\n";

static ljs_runtime_t *make(unsigned workers, ljs_script_t *s)
{
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = workers;
    cfg.batch = 8;
    ljs_runtime_t *rt = ljs_test_runtime(&cfg);
    char path[128];
    snprintf(path, sizeof path, "%s/swarm.lua", dir);
    if (ljs_script_load(rt, path, s) != LJS_OK)
        fail_msg("%s", ljs_last_error());
    return rt;
}

static ljs_runtime_t *scene(unsigned workers, int frames)
{
    ljs_script_t s;
    ljs_runtime_t *rt = make(workers, &s);
    ljs_entity_t prev = {0};
    for (int i = 0; i < 200; i++) {
        ljs_entity_t e;
        assert_int_equal(ljs_entity_create(rt, &e), LJS_OK);
        assert_int_equal(ljs_script_attach(rt, e, s), LJS_OK);
        assert_int_equal(ljs_field_set_integer(rt, e, "peer", (int64_t)prev.id), LJS_OK);
        prev = e;
    }
    for (int f = 0; f < frames; f++)
        assert_int_equal(ljs_frame(rt, 1.0 / 60), LJS_OK);
    return rt;
}

static int setup(void **state)
{
    (void)state;
    ljs_test_tmpdir(dir, sizeof dir, "snap");
    char path[128];
    snprintf(path, sizeof path, "%s/swarm.lua", dir);
    ljs_test_write(path, swarm_src);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ljs_test_rmtree(dir);
    return 0;
}

static void test_snapshot_steps_on_bit_identically_with_any_worker_count(void **state)
{
    (void)state;
    ljs_runtime_t *a = scene(2, 30);
    void *data;
    size_t len;
    assert_int_equal(ljs_world_save(a, &data, &len), LJS_OK);
    static const unsigned counts[] = {1, 2, 4, 8};
    for (size_t k = 0; k < 4; k++) {
        ljs_script_t s;
        ljs_runtime_t *b = make(counts[k], &s);
        if (ljs_world_load(b, data, len) != LJS_OK)
            fail_msg("%s", ljs_last_error());
        assert_true(ljs_world_digest(b) == ljs_world_digest(a));
        assert_int_equal(ljs_entity_count(b), ljs_entity_count(a));
        ljs_runtime_destroy(b);
    }
    /* Step the original and copies side by side: equal at every frame. */
    ljs_script_t s1, s4;
    ljs_runtime_t *b1 = make(1, &s1), *b4 = make(4, &s4);
    assert_int_equal(ljs_world_load(b1, data, len), LJS_OK);
    assert_int_equal(ljs_world_load(b4, data, len), LJS_OK);
    for (int f = 0; f < 30; f++) {
        assert_int_equal(ljs_frame(a, 1.0 / 60), LJS_OK);
        assert_int_equal(ljs_frame(b1, 1.0 / 60), LJS_OK);
        assert_int_equal(ljs_frame(b4, 1.0 / 60), LJS_OK);
        uint64_t da = ljs_world_digest(a);
        if (ljs_world_digest(b1) != da || ljs_world_digest(b4) != da)
            fail_msg("frame %d after the load: digests differ", f + 1);
        assert_int_equal(ljs_frame_count(b1), ljs_frame_count(a));
    }
    ljs_world_free(data);
    ljs_runtime_destroy(b1);
    ljs_runtime_destroy(b4);
    ljs_runtime_destroy(a);
}

static void test_snapshot_pending_host_events_survive_the_save(void **state)
{
    (void)state;
    ljs_runtime_t *a = scene(2, 5);
    ljs_entity_t e = {0};
    const ljs_entity_t *ids;
    size_t n;
    const char *all[] = {"swarm"};
    ljs_query_t q = {all, 1, NULL, 0};
    assert_int_equal(ljs_query(a, &q, &ids, &n), LJS_OK);
    assert_true(n > 0);
    e = ids[0];
    ljs_kv_t kv[] = {{.key = "d", .type = LJS_TINTEGER, .v.i = 4}};
    assert_int_equal(ljs_send(a, e, "poke", kv, 1), LJS_OK);
    void *data;
    size_t len;
    assert_int_equal(ljs_world_save(a, &data, &len), LJS_OK);
    ljs_script_t s;
    ljs_runtime_t *b = make(3, &s);
    assert_int_equal(ljs_world_load(b, data, len), LJS_OK);
    assert_int_equal(ljs_frame(a, 0.0), LJS_OK);
    assert_int_equal(ljs_frame(b, 0.0), LJS_OK);
    int alarmed = 0;
    assert_int_equal(ljs_field_get_boolean(b, e, "alarmed", &alarmed), LJS_OK);
    assert_true(alarmed);
    assert_true(ljs_world_digest(a) == ljs_world_digest(b));
    ljs_world_free(data);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
}

/* The ids a query gives, sorted (n at most 4096). */
static size_t query_ids(ljs_runtime_t *rt, const char *tag, uint64_t *out)
{
    const char *all[] = {tag};
    ljs_query_t q = {all, 1, NULL, 0};
    const ljs_entity_t *ids;
    size_t n;
    assert_int_equal(ljs_query(rt, &q, &ids, &n), LJS_OK);
    assert_true(n <= 4096);
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        for (; k > 0 && out[k - 1] > ids[i].id; k--)
            out[k] = out[k - 1];
        out[k] = ids[i].id;
    }
    return n;
}

/* A load replaces every entity at once: a runtime's cached queries
 * (filled before the load) rescan and give the loaded world's entities,
 * before and after the next frame. */
static void test_snapshot_cached_queries_see_the_loaded_world(void **state)
{
    (void)state;
    static uint64_t want[4096], got[4096];
    ljs_runtime_t *a = scene(2, 20);
    void *data;
    size_t len;
    assert_int_equal(ljs_world_save(a, &data, &len), LJS_OK);
    ljs_runtime_t *b = scene(1, 7);
    (void)query_ids(b, "swarm", got); /* cached now */
    assert_int_equal(ljs_world_load(b, data, len), LJS_OK);
    size_t n = query_ids(a, "swarm", want);
    assert_true(n > 0);
    assert_int_equal(query_ids(b, "swarm", got), n);
    assert_memory_equal(want, got, n * sizeof *want);
    assert_int_equal(ljs_frame(a, 1.0 / 60), LJS_OK);
    assert_int_equal(ljs_frame(b, 1.0 / 60), LJS_OK);
    n = query_ids(a, "swarm", want);
    assert_int_equal(query_ids(b, "swarm", got), n);
    assert_memory_equal(want, got, n * sizeof *want);
    ljs_world_free(data);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
}

/* A script that gained a field since the save: a loaded entity gets the
 * saved values of the fields it had and the script's default for the new
 * one (attaching fills only what the snapshot lacks). */
static void test_snapshot_a_field_added_since_the_save_gets_its_default(void **state)
{
    (void)state;
    ljs_runtime_t *a = scene(1, 5);
    void *data;
    size_t len;
    assert_int_equal(ljs_world_save(a, &data, &len), LJS_OK);
    char sub[128], path[160];
    snprintf(sub, sizeof sub, "%s/v2", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/swarm.lua", sub);
    ljs_test_write(path,
                   "return { fields = { x = 0.0, y = 0.0, hp = 10, peer = 0, alarmed = false, bonus = 7 },\n"
                   "  tags = { 'swarm' }, update = function(self, dt) end }\n");
    ljs_config_t cfg = ljs_test_config();
    cfg.workers = 2;
    ljs_runtime_t *b = ljs_test_runtime(&cfg);
    ljs_script_t s;
    assert_int_equal(ljs_script_load(b, path, &s), LJS_OK);
    assert_int_equal(ljs_world_load(b, data, len), LJS_OK);
    uint64_t ids[4096], ids_b[4096];
    size_t n = query_ids(a, "swarm", ids);
    assert_int_equal(query_ids(b, "swarm", ids_b), n);
    for (size_t i = 0; i < n; i++) {
        ljs_entity_t e = {ids[i]};
        double xa, xb;
        int64_t bonus;
        assert_int_equal(ljs_field_get_number(a, e, "x", &xa), LJS_OK);
        assert_int_equal(ljs_field_get_number(b, e, "x", &xb), LJS_OK);
        assert_true(xa == xb);
        assert_int_equal(ljs_field_get_integer(b, e, "bonus", &bonus), LJS_OK);
        assert_int_equal(bonus, 7);
        assert_int_equal(ljs_field_get_integer(a, e, "bonus", &bonus), LJS_ENOENT);
    }
    ljs_world_free(data);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
    unlink(path);
    rmdir(sub);
}

/* Every bad input is refused with a clear error and the world unchanged. */
static void test_snapshot_bad_files_change_nothing(void **state)
{
    (void)state;
    ljs_runtime_t *a = scene(2, 10);
    void *data;
    size_t len;
    assert_int_equal(ljs_world_save(a, &data, &len), LJS_OK);
    ljs_runtime_t *b = scene(1, 3);
    uint64_t before = ljs_world_digest(b);
    uint32_t count = ljs_entity_count(b);
    unsigned char *bad = malloc(len);
    assert_non_null(bad);
    /* Every truncation and a flipped bit in each region. */
    for (size_t cut = 0; cut < len; cut += 1 + cut / 8) {
        assert_int_equal(ljs_world_load(b, data, cut), LJS_EINVAL);
        assert_non_null(strstr(ljs_last_error(), "snapshot"));
    }
    for (size_t at = 0; at < len; at += 1 + at / 16) {
        memcpy(bad, data, len);
        bad[at] ^= 0x10;
        assert_int_not_equal(ljs_world_load(b, bad, len), LJS_OK);
    }
    assert_true(ljs_world_digest(b) == before);
    assert_int_equal(ljs_entity_count(b), count);
    /* The same with the checksum made to match: the parser itself must
     * refuse (or accept a still-valid world), never read out of bounds
     * (ASan) or half-apply. */
    size_t refused = 0;
    for (size_t at = 32; at < len; at += 1 + at / (LJS_TEST_SCALE > 1 ? 8 : 64)) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(bad, data, len);
            bad[at] ^= (unsigned char)(1u << bit);
            uint64_t h = ljs__snapshot_hash(bad + 32, len - 32);
            for (int i = 0; i < 8; i++)
                bad[24 + i] = (unsigned char)(h >> (8 * i));
            ljs_runtime_t *c = scene(1, 0);
            uint64_t d0 = ljs_world_digest(c);
            if (ljs_world_load(c, bad, len) != LJS_OK) {
                refused++;
                assert_true(ljs_world_digest(c) == d0);
            }
            ljs_runtime_destroy(c);
        }
    }
    assert_true(refused > 0);
    /* A runtime without the script: ENOENT naming it. */
    ljs_config_t cfg;
    assert_int_equal(ljs_config_init(&cfg), LJS_OK);
    cfg.workers = 1;
    ljs_runtime_t *empty;
    assert_int_equal(ljs_runtime_create(&cfg, &empty), LJS_OK);
    assert_int_equal(ljs_world_load(empty, data, len), LJS_ENOENT);
    assert_non_null(strstr(ljs_last_error(), "'swarm'"));
    assert_int_equal(ljs_entity_count(empty), 0);
    /* A field with another type: ETYPE naming it. */
    char path[128];
    snprintf(path, sizeof path, "%s/other.lua", dir);
    ljs_test_write(path, "return { fields = { hp = 1.5 } }\n");
    ljs_script_t so;
    assert_int_equal(ljs_script_load(empty, path, &so), LJS_OK);
    assert_int_equal(ljs_world_load(empty, data, len), LJS_ETYPE);
    assert_non_null(strstr(ljs_last_error(), "'hp'"));
    assert_int_equal(ljs_entity_count(empty), 0);
    ljs_runtime_destroy(empty);
    free(bad);
    ljs_world_free(data);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
}

static void test_snapshot_files_round_trip(void **state)
{
    (void)state;
    ljs_runtime_t *a = scene(2, 8);
    char path[128];
    snprintf(path, sizeof path, "%s/save.ljsw", dir);
    assert_int_equal(ljs_world_save_file(a, path), LJS_OK);
    ljs_script_t s;
    ljs_runtime_t *b = make(1, &s);
    assert_int_equal(ljs_world_load_file(b, path), LJS_OK);
    assert_true(ljs_world_digest(a) == ljs_world_digest(b));
    snprintf(path, sizeof path, "%s/missing.ljsw", dir);
    assert_int_equal(ljs_world_load_file(b, path), LJS_ENOENT);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_steps_on_bit_identically_with_any_worker_count),
        cmocka_unit_test(test_snapshot_pending_host_events_survive_the_save),
        cmocka_unit_test(test_snapshot_cached_queries_see_the_loaded_world),
        cmocka_unit_test(test_snapshot_a_field_added_since_the_save_gets_its_default),
        cmocka_unit_test(test_snapshot_bad_files_change_nothing),
        cmocka_unit_test(test_snapshot_files_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
