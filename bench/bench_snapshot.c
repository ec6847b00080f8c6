/* bench_snapshot.c - case `snapshot`: ljs_world_save_file / load_file of
 * 100k entities x 10 fields against writing / reading the same field bytes
 * with one plain fwrite / fread per column (the least a save can cost), in
 * the same process, same directory. MB/s of the snapshot's own size. */
#include "bench/bench.h"

#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NFIELDS 10

static int make_world(const bench_ctx_t *ctx, const char *dir, uint32_t n, ljs_runtime_t **out)
{
    char path[256], src[1024];
    size_t len = 0;
    len += (size_t)snprintf(src + len, sizeof src - len, "return { fields = {");
    for (int f = 0; f < NFIELDS; f++)
        len += (size_t)snprintf(src + len, sizeof src - len, " f%d = %s,", f, f % 3 == 0 ? "0" : "0.5");
    len += (size_t)snprintf(src + len, sizeof src - len, " }, tags = { 'thing' } }\n");
    snprintf(path, sizeof path, "%s/thing.lua", dir);
    ljs_runtime_t *rt;
    ljs_script_t s;
    if (bench_runtime(path, src, len, ctx->workers, &rt, &s) != 0)
        return -1;
    int rc = 0;
    uint64_t rng = 42;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        ljs_entity_t e;
        rc = ljs_entity_create(rt, &e) == LJS_OK && ljs_script_attach(rt, e, s) == LJS_OK ? 0 : -1;
        for (int f = 0; f < NFIELDS && rc == 0; f++) {
            char name[8];
            snprintf(name, sizeof name, "f%d", f);
            uint64_t r = bench_rng(&rng);
            rc = (f % 3 == 0 ? ljs_field_set_integer(rt, e, name, (int64_t)(r >> 40))
                             : ljs_field_set_number(rt, e, name, (double)(r >> 11) * 1e-9)) == LJS_OK
                     ? 0
                     : -1;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "bench snapshot: %s\n", ljs_last_error());
        ljs_runtime_destroy(rt);
        return -1;
    }
    *out = rt;
    return 0;
}

/* The baseline: the same columns (8-byte values plus a presence byte per
 * entity and field) with one fwrite each, then read back with fread. */
static double plain_columns(const char *path, int write, unsigned char *cols, size_t col)
{
    uint64_t t0 = bench_now_ns();
    FILE *f = fopen(path, write ? "wb" : "rb");
    if (f == NULL)
        return -1;
    int ok = 1;
    for (int k = 0; k < NFIELDS && ok; k++) {
        unsigned char *c = cols + (size_t)k * col;
        if (write)
            ok = fwrite(c, 1, col, f) == col;
        else
            ok = fread(c, 1, col, f) == col;
    }
    fclose(f);
    return ok ? (double)(bench_now_ns() - t0) * 1e-9 : -1;
}

/* ljs_world_save into memory, then one fwrite: seconds, or -1. */
static double save_buffered(ljs_runtime_t *rt, const char *path)
{
    uint64_t t0 = bench_now_ns();
    void *data;
    size_t len;
    if (ljs_world_save(rt, &data, &len) != LJS_OK)
        return -1;
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(data, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    ljs_world_free(data);
    return ok ? (double)(bench_now_ns() - t0) * 1e-9 : -1;
}

int bench_snapshot(const bench_ctx_t *ctx)
{
    char dir[64], path[256], base[256];
    uint32_t n = ctx->quick ? 10000 : 100000;
    if (bench_tmpdir(dir, sizeof dir, "snapshot") != 0)
        return -1;
    ljs_runtime_t *a, *b;
    if (make_world(ctx, dir, n, &a) != 0 || make_world(ctx, dir, 0, &b) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/world.ljsw", dir);
    snprintf(base, sizeof base, "%s/columns.bin", dir);
    size_t col = (size_t)n * 9;
    unsigned char *cols = malloc(col * NFIELDS);
    if (cols == NULL)
        return -1;
    memset(cols, 0x5a, col * NFIELDS);
    double save[64], load[64], fw[64], fr[64], buffered[64];
    int reps = ctx->reps < 64 ? ctx->reps : 64, rc = 0;
    for (int r = 0; r < reps && rc == 0; r++) {
        uint64_t t0 = bench_now_ns();
        rc |= ljs_world_save_file(a, path) != LJS_OK;
        uint64_t t1 = bench_now_ns();
        rc |= ljs_world_load_file(b, path) != LJS_OK;
        uint64_t t2 = bench_now_ns();
        save[r] = (double)(t1 - t0) * 1e-9;
        load[r] = (double)(t2 - t1) * 1e-9;
        buffered[r] = save_buffered(a, path);
        rc |= buffered[r] < 0;
        fw[r] = plain_columns(base, 1, cols, col);
        fr[r] = plain_columns(base, 0, cols, col);
        rc |= fw[r] < 0 || fr[r] < 0;
    }
    if (rc == 0 && ljs_world_digest(a) != ljs_world_digest(b)) {
        fprintf(stderr, "bench snapshot: the loaded world differs\n");
        rc = -1;
    }
    FILE *f = fopen(path, "rb");
    double mb = 0;
    if (f != NULL) {
        fseek(f, 0, SEEK_END);
        mb = (double)ftell(f) / 1e6;
        fclose(f);
    }
    if (rc == 0) {
        double ms = bench_median(save, (size_t)reps), ml = bench_median(load, (size_t)reps);
        double mfw = bench_median(fw, (size_t)reps), mfr = bench_median(fr, (size_t)reps);
        bench_result_t res = {.name = "snapshot"};
        bench_figure(&res, "entities", n);
        bench_figure(&res, "snapshot_mb", mb);
        bench_figure(&res, "save_mb_per_s", mb / ms);
        bench_figure(&res, "load_mb_per_s", mb / ml);
        bench_figure(&res, "columns_fwrite_mb_per_s", (double)col * NFIELDS / 1e6 / mfw);
        bench_figure(&res, "columns_fread_mb_per_s", (double)col * NFIELDS / 1e6 / mfr);
        /* Same bytes per second (the snapshot's size vs the columns'): > 1
         * would mean faster than the plain column write. */
        bench_ratio(&res, "save_vs_fwrite", (mb / ms) / ((double)col * NFIELDS / 1e6 / mfw));
        /* ljs_world_save_file streams; the way it used to save (the whole
         * snapshot in memory, then one fwrite) for comparison. */
        bench_ratio(&res, "streamed_vs_buffered", bench_median(buffered, (size_t)reps) / ms);
        /* The measure for both directions: the same bytes per
         * second as writing the columns with fwrite. */
        bench_ratio(&res, "load_vs_fwrite", (mb / ml) / ((double)col * NFIELDS / 1e6 / mfw));
        /* fread from the page cache is a memcpy; a load checks every byte,
         * hashes it and rebuilds every entity, so this is reported, not a
         * target. */
        bench_ratio(&res, "load_vs_fread", (mb / ml) / ((double)col * NFIELDS / 1e6 / mfr));
        bench_report(ctx, &res);
    }
    free(cols);
    ljs_runtime_destroy(a);
    ljs_runtime_destroy(b);
    unlink(path);
    unlink(base);
    rmdir(dir);
    return rc;
}
