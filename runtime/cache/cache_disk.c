/* cache_disk.c - persistent bytecode cache files (see cache_disk.h).
 *
 * Layout: a fixed header (host byte order: the cache is per machine), then
 * the bytecode. Every field is checked before a byte of bytecode is used,
 * and the bytecode's checksum last. The checksum catches corruption, not a
 * deliberate forgery: whoever can write the directory can run code in the
 * engine, exactly like whoever can write the scripts (README). */
#include "runtime/cache/cache_disk.h"

#include "jobs/mem.h"

#include <dirent.h>
#include <errno.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "LJSBC01\n"

typedef struct header_s {
    char magic[8];
    uint32_t header_size;
    uint32_t ljs_version;
    uint32_t lua_version;
    uint32_t strip;
    uint64_t path_hash;
    uint64_t source_hash;
    uint64_t source_len;
    uint64_t bytecode_len;
    uint64_t bytecode_sum;
    uint64_t header_sum; /* of every byte above */
} header_t;

static void file_name(char *out, size_t n, const char *dir, const char *path, const ljs__source_id_t *id,
                      int strip)
{
    snprintf(out, n, "%s/%016llx-%016llx-%c.ljsc", dir,
             (unsigned long long)ljs__cache_hash(path, strlen(path)), (unsigned long long)id->hash,
             strip ? 's' : 'd');
}

static void fill_header(header_t *h, const char *path, const ljs__source_id_t *id, int strip,
                        const unsigned char *bytes, size_t len)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, MAGIC, 8);
    h->header_size = sizeof *h;
    h->ljs_version = (uint32_t)LJS_VERSION_NUM;
    h->lua_version = (uint32_t)LUA_VERSION_RELEASE_NUM;
    h->strip = (uint32_t)strip;
    h->path_hash = ljs__cache_hash(path, strlen(path));
    h->source_hash = id->hash;
    h->source_len = id->size;
    h->bytecode_len = len;
    h->bytecode_sum = ljs__cache_hash(bytes, len);
    h->header_sum = ljs__cache_hash(h, offsetof(header_t, header_sum));
}

static int reject(char *why, size_t whylen, const char *file, const char *what)
{
    snprintf(why, whylen, "bytecode cache file %s ignored (%s); rebuilding it", file, what);
    return -1;
}

/* Check everything but the bytecode checksum. */
static const char *check_header(const header_t *h, const char *path, const ljs__source_id_t *id, int strip,
                                long file_size)
{
    if (memcmp(h->magic, MAGIC, 8) != 0 || h->header_size != sizeof *h)
        return "not an ljs bytecode cache file";
    if (h->header_sum != ljs__cache_hash(h, offsetof(header_t, header_sum)))
        return "header checksum mismatch";
    if (h->ljs_version != LJS_VERSION_NUM || h->lua_version != LUA_VERSION_RELEASE_NUM)
        return "written by another ljs or Lua version";
    if (h->strip != (uint32_t)strip || h->path_hash != ljs__cache_hash(path, strlen(path)) ||
        h->source_hash != id->hash || h->source_len != id->size)
        return "does not match the script source";
    if (file_size < 0 || (uint64_t)file_size != sizeof *h + h->bytecode_len)
        return "truncated or padded";
    return NULL;
}

int ljs__disk_read(const char *dir, const char *path, const ljs__source_id_t *id, int strip,
                   unsigned char **bytes, size_t *len, char *why, size_t whylen)
{
    char file[1024];
    header_t h;
    file_name(file, sizeof file, dir, path, id, strip);
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return 0;
    struct stat st;
    const char *bad = NULL;
    unsigned char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || fread(&h, 1, sizeof h, f) != sizeof h)
        bad = "truncated header";
    if (bad == NULL)
        bad = check_header(&h, path, id, strip, (long)st.st_size);
    if (bad == NULL && (buf = ljs__malloc(h.bytecode_len ? h.bytecode_len : 1)) == NULL)
        bad = "out of memory";
    if (bad == NULL && fread(buf, 1, h.bytecode_len, f) != h.bytecode_len)
        bad = "truncated bytecode";
    if (bad == NULL && ljs__cache_hash(buf, h.bytecode_len) != h.bytecode_sum)
        bad = "bytecode checksum mismatch";
    fclose(f);
    if (bad != NULL) {
        ljs__free(buf);
        return reject(why, whylen, file, bad);
    }
    *bytes = buf;
    *len = h.bytecode_len;
    return 1;
}

typedef struct entry_s {
    char name[300];
    time_t mtime;
    off_t size;
} entry_t;

static int cmp_age(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    return (x->mtime > y->mtime) - (x->mtime < y->mtime);
}

/* Remove the oldest .ljsc files while the directory holds > max_bytes;
 * *total_out gets what is left. */
static int evict(const char *dir, uint64_t max_bytes, uint64_t *total_out)
{
    DIR *d = opendir(dir);
    entry_t *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    struct dirent *de;
    char file[1024];
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        struct stat st;
        if (l < 5 || l >= sizeof v->name || strcmp(de->d_name + l - 5, ".ljsc") != 0 || de->d_name[0] == '.')
            continue;
        snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
        if (stat(file, &st) != 0)
            continue;
        if (n == cap) {
            entry_t *p = ljs__realloc(v, sizeof *v * (cap = cap ? cap * 2 : 64));
            if (p == NULL)
                break;
            v = p;
        }
        memcpy(v[n].name, de->d_name, l + 1);
        v[n].mtime = st.st_mtime;
        v[n].size = st.st_size;
        total += (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    int evicted = 0;
    if (total > max_bytes)
        qsort(v, n, sizeof *v, cmp_age);
    for (size_t i = 0; i < n && total > max_bytes; i++) {
        snprintf(file, sizeof file, "%s/%s", dir, v[i].name);
        if (unlink(file) == 0) {
            total -= (uint64_t)v[i].size;
            evicted++;
        }
    }
    ljs__free(v);
    *total_out = total;
    return evicted;
}

int ljs__disk_write(const char *dir, const char *path, const ljs__source_id_t *id, int strip,
                    const unsigned char *bytes, size_t len, uint64_t max_bytes, uint64_t *dir_bytes,
                    char *why, size_t whylen)
{
    char file[1024], tmp[1100];
    static unsigned counter; /* owner threads serialise on cache_lock */
    header_t h;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, whylen, "LJS_CACHE_DIR=%s: cannot create it: %s", dir, strerror(errno));
        return -1;
    }
    file_name(file, sizeof file, dir, path, id, strip);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%ld-%u.ljsc", dir, (long)getpid(), counter++);
    fill_header(&h, path, id, strip, bytes, len);
    FILE *f = fopen(tmp, "wb");
    int ok = f != NULL && fwrite(&h, 1, sizeof h, f) == sizeof h && fwrite(bytes, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    /* rename is atomic: readers see the old file or the whole new one. */
    if (!ok || rename(tmp, file) != 0) {
        snprintf(why, whylen, "LJS_CACHE_DIR=%s: cannot write %s: %s", dir, file, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (*dir_bytes != UINT64_MAX)
        *dir_bytes += sizeof h + len;
    if (*dir_bytes != UINT64_MAX && *dir_bytes <= max_bytes)
        return 0;
    return evict(dir, max_bytes, dir_bytes);
}
