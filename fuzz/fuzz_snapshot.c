/* fuzz_snapshot.c - ljs_world_load (runtime/snapshot.c) on arbitrary bytes.
 *
 * One runtime for the whole run (1 worker), with two scripts loaded, a few
 * entities, tags, fields and a pending host event: its saved world is the
 * golden snapshot. The first input byte picks how the rest is used:
 *   even  as the snapshot, whole;
 *   odd   as the snapshot with its header made valid (magic, version 3,
 *         flags 0, body length and body hash recomputed), so the checks past
 *         the hash are reached.
 * Invariants: ljs_world_load returns a documented code; a refused load
 * leaves the world exactly as it was (its save is byte-identical); after an
 * accepted one, save and load reach a fixed point, and a frame runs.
 * LJS_FUZZ_SEED=FILE writes the golden snapshot (odd mode) as a seed. */
#include "fuzz/fuzz.h"

#include "runtime/core.h"
#include "runtime/snapshot.h"

#include <ljs.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADER_BYTES 32 /* "LJSWORLD", u32 version, u32 flags, u64 body bytes, u64 body hash */

static ljs_runtime_t *rt;
static void *golden;
static size_t golden_len;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0);
}

static void setup(void)
{
    char dir[64], a[128], b[128];
    fuzz_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/mover.lua", dir);
    snprintf(b, sizeof b, "%s/target.lua", dir);
    write_file(a,
               "return { fields = { x = 0.0, n = 0, on = false, mood = 'calm', peer = ljs.entity,\n"
               "  path = ljs.list('string', 3), ids = ljs.list('entity', 2) }, tags = { 'm' },\n"
               "  update = function(self, dt) self.x = self.x + dt; self.n = self.n + 1\n"
               "    self.mood = 'n' .. self.n .. '\\0'; self.path = { self.mood, 'a' }; self.peer = self.id\n"
               "    self.ids = { self.id } end }\n");
    write_file(b, "return { fields = { hp = 10 }, tags = { 't' },\n"
                  "  on_hit = function(self, p) self.hp = self.hp - (p and p.damage or 1) end }\n");
    ljs_config_t cfg;
    FUZZ_CHECK(ljs_config_init(&cfg) == LJS_OK);
    cfg.workers = 1;
    cfg.watch = 0;
    FUZZ_CHECK(ljs_runtime_create(&cfg, &rt) == LJS_OK);
    ljs_script_t sa, sb;
    FUZZ_CHECK(ljs_script_load(rt, a, &sa) == LJS_OK && ljs_script_load(rt, b, &sb) == LJS_OK);
    unlink(a);
    unlink(b);
    rmdir(dir);
    ljs_entity_t e[4];
    for (int i = 0; i < 4; i++) {
        FUZZ_CHECK(ljs_entity_create(rt, &e[i]) == LJS_OK);
        FUZZ_CHECK(ljs_script_attach(rt, e[i], i % 2 ? sb : sa) == LJS_OK);
    }
    FUZZ_CHECK(ljs_entity_destroy(rt, e[2]) == LJS_OK); /* a free slot */
    FUZZ_CHECK(ljs_frame(rt, 0.5) == LJS_OK);
    ljs_kv_t kv = {"damage", LJS_TINTEGER, {.i = 3}};
    FUZZ_CHECK(ljs_send(rt, e[1], "hit", &kv, 1) == LJS_OK); /* pending in the snapshot */
    FUZZ_CHECK(ljs_world_save(rt, &golden, &golden_len) == LJS_OK);
    const char *seed = getenv("LJS_FUZZ_SEED");
    if (seed != NULL) {
        FILE *f = fopen(seed, "wb");
        FUZZ_CHECK(f != NULL && fputc(1, f) == 1 && fwrite(golden, 1, golden_len, f) == golden_len &&
                   fclose(f) == 0);
    }
}

static void teardown(void)
{
    ljs_runtime_destroy(rt);
    rt = NULL;
    ljs_world_free(golden);
    golden = NULL;
}

static void teardown_at_exit(void)
{
    if (rt != NULL)
        teardown();
}

/* The current world's snapshot (malloc'd). */
static unsigned char *save(size_t *len)
{
    void *p;
    FUZZ_CHECK(ljs_world_save(rt, &p, len) == LJS_OK);
    unsigned char *copy = malloc(*len);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, p, *len);
    ljs_world_free(p);
    return copy;
}

int ljs_fuzz_snapshot(const uint8_t *data, size_t size)
{
    static int registered;
    if (!registered) {
        atexit(teardown_at_exit); /* a clean exit frees everything: LSan checks it */
        registered = 1;
    }
    if (rt == NULL)
        setup();
    if (size == 0)
        return 0;
    size_t len = size - 1;
    unsigned char *in = malloc(len ? len : 1); /* exact size: ASan guards the end */
    FUZZ_CHECK(in != NULL);
    memcpy(in, data + 1, len);
    if ((data[0] & 1) && len >= HEADER_BYTES) {
        uint32_t version = 3, flags = 0;
        uint64_t body = len - HEADER_BYTES, hash = ljs__snapshot_hash(in + HEADER_BYTES, len - HEADER_BYTES);
        memcpy(in, "LJSWORLD", 8);
        memcpy(in + 8, &version, 4); /* the format is little-endian, as is this machine */
        memcpy(in + 12, &flags, 4);
        memcpy(in + 16, &body, 8);
        memcpy(in + 24, &hash, 8);
    }
    size_t before_len;
    unsigned char *before = save(&before_len);
    int rc = ljs_world_load(rt, in, len);
    FUZZ_CHECK(rc == LJS_OK || rc == LJS_EINVAL || rc == LJS_ENOENT || rc == LJS_ETYPE || rc == LJS_EFULL ||
               rc == LJS_ENOMEM);
    size_t after_len;
    unsigned char *after = save(&after_len);
    if (rc != LJS_OK) {
        /* Refused: nothing changed. */
        FUZZ_CHECK(ljs_last_error() != NULL && ljs_last_error()[0] != '\0');
        FUZZ_CHECK(after_len == before_len && memcmp(after, before, before_len) == 0);
    } else {
        /* Accepted: its save loads back and saves to the same bytes (a
         * save is canonical; the input need not be: fields it lacks come
         * from the bound scripts' defaults), and frames run on it. */
        FUZZ_CHECK(ljs_world_load(rt, after, after_len) == LJS_OK);
        size_t again_len;
        unsigned char *again = save(&again_len);
        FUZZ_CHECK(again_len == after_len && memcmp(again, after, after_len) == 0);
        free(again);
        FUZZ_CHECK(ljs_frame(rt, 0.016) == LJS_OK);
        FUZZ_CHECK(ljs_world_load(rt, golden, golden_len) == LJS_OK);
    }
    free(before);
    free(after);
    free(in);
    /* Accepted snapshots declare their fields in this runtime for good: a
     * list field's columns take maxlen x 16 bytes per slot, so after many
     * inputs the runtime is made afresh, keeping a long run's memory
     * bounded (a 150 s run reached libFuzzer's 2 GiB limit). */
    if (rt->world.nfields > 32)
        teardown();
    return 0;
}

LJS_FUZZ_MAIN(ljs_fuzz_snapshot)
