/* fuzz_cache.c - the persistent bytecode cache's file reader
 * (runtime/cache/cache_disk.c) on arbitrary file contents.
 *
 * The first byte picks how the cache file is made:
 *   even  the rest of the input is the whole file;
 *   odd   a valid file is written (ljs__disk_write) with the rest of the
 *         input as its bytecode, after a patch list: byte 1 gives the count
 *         (0..7) of (u16 offset, u8 value) patches applied to the file and
 *         a truncation/extension length, and flag bits of byte 0 recompute
 *         the bytecode and header checksums after patching, so the checks
 *         past the checksums are reached too.
 * The header's layout is learnt from the file itself (an empty bytecode
 * gives the header's size; its last three u64 are bytecode_len,
 * bytecode_sum and header_sum, the hash of every byte before it), so this
 * file does not copy cache_disk.c's struct.
 *
 * Invariants: ljs__disk_read returns 0 (no file), -1 with a message naming
 * the file, or 1 with exactly the file's bytes after the header; an
 * unpatched valid file reads back exactly. */
#include "fuzz/fuzz.h"

#include "runtime/cache/cache_disk.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH "/scripts/fz.lua"

static char dir[64];
static size_t header_size;

static const ljs__source_id_t source_id = {123, 456, 0x5eed5eedull};

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_cache: could not remove %s\n", dir);
}

/* The one file name the reader looks at for (PATH, source_id, strip). */
static void cache_file(char *out, size_t n, int strip)
{
    char why[256];
    uint64_t total = UINT64_MAX;
    FUZZ_CHECK(ljs__disk_write(dir, PATH, &source_id, strip, (const unsigned char *)"", 0, UINT64_MAX, &total,
                               why, sizeof why) == 0);
    /* Find it: the only .ljsc for this strip flag ("-s." or "-d."). */
    FILE *p;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "ls '%s'/*-%c.ljsc", dir, strip ? 's' : 'd');
    p = popen(cmd, "r");
    FUZZ_CHECK(p != NULL && fgets(out, (int)n, p) != NULL);
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

static char file_s[256], file_d[256];

static void setup(void)
{
    fuzz_tmpdir(dir, sizeof dir);
    atexit(cleanup);
    cache_file(file_s, sizeof file_s, 1);
    cache_file(file_d, sizeof file_d, 0);
    struct stat st;
    FUZZ_CHECK(stat(file_d, &st) == 0 && st.st_size >= 24);
    header_size = (size_t)st.st_size;
}

static void put_file(const char *file, const uint8_t *p, size_t n)
{
    FILE *f = fopen(file, "wb");
    FUZZ_CHECK(f != NULL && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static uint8_t *get_file(const char *file, size_t *n)
{
    FILE *f = fopen(file, "rb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fseek(f, 0, SEEK_END) == 0);
    long sz = ftell(f);
    FUZZ_CHECK(sz >= 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *b = malloc((size_t)sz + 1);
    FUZZ_CHECK(b != NULL && fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

int ljs_fuzz_cache(const uint8_t *data, size_t size)
{
    if (header_size == 0)
        setup();
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    int strip = (mode >> 1) & 1;
    const char *file = strip ? file_s : file_d;
    int exact = 0; /* 1: the file is valid and must read back */
    const uint8_t *code = NULL;
    size_t code_len = 0;
    if ((mode & 1) == 0) {
        put_file(file, data + 1, size - 1);
    } else {
        size_t npatch = size > 1 ? data[1] % 8 : 0;
        size_t skip = 2 + npatch * 3 + 1;
        if (skip > size)
            skip = size;
        code = data + skip;
        code_len = size - skip;
        char why[256];
        uint64_t total = UINT64_MAX;
        FUZZ_CHECK(ljs__disk_write(dir, PATH, &source_id, strip, code, code_len, UINT64_MAX, &total, why,
                                   sizeof why) == 0);
        size_t n;
        uint8_t *f = get_file(file, &n);
        FUZZ_CHECK(n == header_size + code_len && memcmp(f + header_size, code, code_len) == 0);
        for (size_t k = 0; k < npatch && 2 + k * 3 + 3 <= size; k++) {
            const uint8_t *pt = data + 2 + k * 3;
            size_t off = (size_t)(pt[0] | pt[1] << 8) % n;
            f[off] = pt[2];
        }
        uint8_t resize = 2 + npatch * 3 < size ? data[2 + npatch * 3] : 0;
        if ((mode & 0x10) && resize <= n)
            n -= resize;
        else if (mode & 0x20) {
            uint8_t *g = realloc(f, n + resize + 1);
            FUZZ_CHECK(g != NULL);
            f = g;
            memset(f + n, resize, resize);
            n += resize;
        }
        /* Recompute the checksums past the patches (when the header is
         * still whole), so the reader's later checks are exercised. */
        if (n >= header_size) {
            uint64_t sum;
            if (mode & 0x04) {
                sum = ljs__cache_hash(f + header_size, n - header_size);
                memcpy(f + header_size - 16, &sum, 8);
            }
            if (mode & 0x08) {
                sum = ljs__cache_hash(f, header_size - 8);
                memcpy(f + header_size - 8, &sum, 8);
            }
        }
        exact = npatch == 0 && !(mode & 0x30);
        put_file(file, f, n);
        free(f);
    }

    unsigned char *bytes = NULL;
    size_t len = 0;
    char why[512];
    why[0] = '\0';
    int rc = ljs__disk_read(dir, PATH, &source_id, strip, &bytes, &len, why, sizeof why);
    FUZZ_CHECK(rc == -1 || rc == 1);
    if (rc == -1) {
        FUZZ_CHECK(!exact);
        FUZZ_CHECK(strstr(why, file) != NULL && strstr(why, "ignored") != NULL);
        FUZZ_CHECK(bytes == NULL);
    } else {
        size_t n;
        uint8_t *f = get_file(file, &n);
        FUZZ_CHECK(n >= header_size && len == n - header_size && memcmp(bytes, f + header_size, len) == 0);
        if (exact)
            FUZZ_CHECK(len == code_len && memcmp(bytes, code, len) == 0);
        free(f);
        free(bytes);
    }
    return 0;
}

LJS_FUZZ_MAIN(ljs_fuzz_cache)
