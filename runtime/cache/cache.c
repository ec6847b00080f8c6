/* cache.c - process-wide shared bytecode cache (see cache.h).
 *
 * Readers: ck_epoch_begin, load the snapshot pointer, binary search, load
 * the bytes, ck_epoch_end. Writers (owner threads, serialised by
 * cache_lock): copy the snapshot with one entry replaced, swap the pointer,
 * ck_epoch_call the old snapshot, poll. Chunks are shared between
 * consecutive snapshots and reference-counted by the snapshots that hold
 * them, so a reclaimed snapshot frees only the chunks no newer snapshot
 * kept. (McKenney, "RCU usage in the Linux kernel"; ck_epoch is Fraser's
 * epoch-based reclamation.) */
#include "runtime/cache/cache.h"

#include "jobs/mem.h"

#include "runtime/clock.h"

#include "runtime/cache/cache_disk.h"

#include <ck_epoch.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct chunk_s {
    atomic_uint refs; /* snapshots holding this chunk */
    char *path;
    ljs__source_id_t id;
    int strip;
    double compile_ms;
    size_t len;
    unsigned char *bytes;
} chunk_t;

typedef struct snapshot_s {
    ck_epoch_entry_t entry; /* for ck_epoch_call */
    uint32_t n;
    chunk_t **chunks; /* sorted by (path, strip) */
} snapshot_t;

/* Records are never unlinked from a ck_epoch: keep them all to free them
 * with the epoch when the last runtime goes. */
typedef struct record_node_s {
    struct record_node_s *next;
    ck_epoch_record_t *rec;
} record_node_t;

typedef struct cache_s {
    ck_epoch_t epoch;
    ck_epoch_record_t *writer; /* used only under cache_lock */
    /* C11 atomics rather than ck_pr for the pointer itself: ThreadSanitizer
     * sees their ordering (ck_pr's loads are plain volatile reads to it). */
    _Atomic(snapshot_t *) current;
    record_node_t *records;
    unsigned refs;
    atomic_uint pending; /* snapshots waiting for their grace period */
    uint64_t compiles, hits, misses, freed;
    uint64_t disk_hits, disk_writes, disk_rejects, disk_evictions;
    char disk_dir[512];  /* the directory disk_bytes is about */
    uint64_t disk_bytes; /* its running total, UINT64_MAX until scanned */
    atomic_uint_fast64_t loads;
    double compile_ms, saved_ms;
} cache_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_t *cache; /* NULL when no runtime exists */

/* Cap on snapshots awaiting reclaim before a writer waits for a grace
 * period (DEPS.md: unbounded publication piles up tens of thousands). */
#define MAX_PENDING 64

/* FNV-1a's step over 64-bit words plus an xorshift: every step is a
 * bijection of h, so changing any one word always changes the hash, and
 * 8 bytes per step hash a 58 KB script in a few microseconds (byte-wise
 * FNV-1a took ~25 us: 10% of a cached load, bench: cache). */
uint64_t ljs__cache_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 32);
}

static void chunk_unref(chunk_t *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        ljs__free(c->path);
        ljs__free(c->bytes);
        ljs__free(c);
    }
}

static void snapshot_free(snapshot_t *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        chunk_unref(s->chunks[i]);
    ljs__free(s->chunks);
    ljs__free(s);
}

/* ck_epoch callback: runs on the thread that polls, after the grace period. */
static void reclaim(ck_epoch_entry_t *e)
{
    snapshot_t *s = (snapshot_t *)((char *)e - offsetof(snapshot_t, entry));
    snapshot_free(s);
    atomic_fetch_sub_explicit(&cache->pending, 1, memory_order_relaxed);
    cache->freed++; /* callbacks run under cache_lock */
}

static ck_epoch_record_t *new_record(void)
{
    ck_epoch_record_t *rec = ck_epoch_recycle(&cache->epoch, NULL);
    if (rec != NULL)
        return rec;
    record_node_t *node = ljs__malloc(sizeof *node);
    rec = ljs__aligned_alloc(CK_MD_CACHELINE,
                             (sizeof *rec + CK_MD_CACHELINE - 1) / CK_MD_CACHELINE * CK_MD_CACHELINE);
    if (node == NULL || rec == NULL) {
        ljs__free(node);
        ljs__free(rec);
        return NULL;
    }
    ck_epoch_register(&cache->epoch, rec, NULL);
    node->rec = rec;
    node->next = cache->records;
    cache->records = node;
    return rec;
}

int ljs__cache_acquire(void)
{
    int rc = LJS_OK;
    pthread_mutex_lock(&cache_lock);
    if (cache == NULL) {
        cache = ljs__calloc(1, sizeof *cache);
        snapshot_t *empty = ljs__calloc(1, sizeof *empty);
        if (cache == NULL || empty == NULL) {
            ljs__free(cache);
            ljs__free(empty);
            cache = NULL;
            rc = LJS_ENOMEM;
        } else {
            ck_epoch_init(&cache->epoch);
            atomic_init(&cache->current, empty);
            cache->writer = new_record();
            if (cache->writer == NULL) {
                ljs__free(empty);
                ljs__free(cache);
                cache = NULL;
                rc = LJS_ENOMEM;
            }
        }
    }
    if (rc == LJS_OK)
        cache->refs++;
    pthread_mutex_unlock(&cache_lock);
    return rc;
}

void ljs__cache_release(void)
{
    pthread_mutex_lock(&cache_lock);
    if (cache != NULL && --cache->refs == 0) {
        /* No runtime, so no reader: wait out every grace period (runs every
         * pending callback), then free the rest. */
        ck_epoch_barrier(cache->writer);
        snapshot_free(atomic_load_explicit(&cache->current, memory_order_relaxed));
        while (cache->records != NULL) {
            record_node_t *n = cache->records;
            cache->records = n->next;
            ljs__free(n->rec);
            ljs__free(n);
        }
        ljs__free(cache);
        cache = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
}

ck_epoch_record_t *ljs__cache_register(void)
{
    pthread_mutex_lock(&cache_lock);
    ck_epoch_record_t *rec = cache != NULL ? new_record() : NULL;
    pthread_mutex_unlock(&cache_lock);
    return rec;
}

void ljs__cache_unregister(ck_epoch_record_t *rec)
{
    /* Reader records never get callbacks, so nothing pending is dropped. */
    if (rec != NULL) {
        pthread_mutex_lock(&cache_lock);
        ck_epoch_unregister(rec);
        pthread_mutex_unlock(&cache_lock);
    }
}

static int cmp_key(const char *path, int strip, const chunk_t *c)
{
    int r = strcmp(path, c->path);
    return r ? r : strip - c->strip;
}

/* Index of (path, strip) in s, or of where it would go (*found = 0). */
static uint32_t find(const snapshot_t *s, const char *path, int strip, int *found)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int r = cmp_key(path, strip, s->chunks[mid]);
        if (r == 0) {
            *found = 1;
            return mid;
        }
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = 0;
    return lo;
}

/* Swap in `next`, retire the current snapshot. Under cache_lock. */
static void publish_locked(snapshot_t *next)
{
    /* Release: a reader that loads the new pointer (acquire) sees the
     * snapshot and chunks it was built from. */
    snapshot_t *old = atomic_exchange_explicit(&cache->current, next, memory_order_acq_rel);
    atomic_fetch_add_explicit(&cache->pending, 1, memory_order_relaxed);
    ck_epoch_call(cache->writer, &old->entry, reclaim);
    if (!ck_epoch_poll(cache->writer) &&
        atomic_load_explicit(&cache->pending, memory_order_relaxed) > MAX_PENDING)
        ck_epoch_synchronize(cache->writer); /* bounded memory, brief wait */
    ck_epoch_poll(cache->writer);
}

/* A copy of the current snapshot with index `at` replaced by `c` (c == NULL:
 * removed), or `c` inserted at `at` when !replace. Under cache_lock. */
static snapshot_t *derive(uint32_t at, int replace, chunk_t *c)
{
    const snapshot_t *cur = atomic_load_explicit(&cache->current, memory_order_relaxed);
    uint32_t n = cur->n + (replace ? 0 : 1) - (c == NULL ? 1 : 0);
    snapshot_t *s = ljs__calloc(1, sizeof *s);
    chunk_t **v =
        ljs__malloc(sizeof *v * (n ? n : 1)); /* NOLINT(bugprone-sizeof-expression): an array of pointers */
    if (s == NULL || v == NULL) {
        ljs__free(s);
        ljs__free(v);
        return NULL;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < cur->n; i++) {
        if (i == at && c != NULL && !replace)
            v[k++] = c;
        if (i == at && replace)
            continue;
        atomic_fetch_add_explicit(&cur->chunks[i]->refs, 1, memory_order_relaxed);
        v[k++] = cur->chunks[i];
    }
    if (at == cur->n && c != NULL && !replace)
        v[k++] = c;
    if (replace && c != NULL) {
        /* Put the replacement where the old chunk was. */
        memmove(v + at + 1, v + at, sizeof *v * (k - at)); /* NOLINT(bugprone-sizeof-expression) */
        v[at] = c;
        k++;
    }
    s->n = k;
    s->chunks = v;
    return s;
}

static chunk_t *new_chunk(const char *path, const ljs__source_id_t *id, int strip, unsigned char *bytes,
                          size_t len);

typedef struct dump_buf_s {
    unsigned char *p;
    size_t n, cap;
    int failed;
} dump_buf_t;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    dump_buf_t *b = ud;
    if (b->n + sz > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + sz)
            cap *= 2;
        unsigned char *q = ljs__realloc(b->p, cap);
        if (q == NULL) {
            b->failed = 1;
            return 1;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, sz);
    b->n += sz;
    return 0;
}

/* Compile src (text only) and dump it. Returns a chunk with refs = 1, or
 * NULL with the message in err. */
static chunk_t *compile(lua_State *L, const char *path, const ljs__source_id_t *id, const char *src,
                        size_t len, int strip, char *err, size_t errlen, int *rc)
{
    char chunkname[512];
    dump_buf_t b = {NULL, 0, 0, 0};
    double t0 = ljs__now_ms();
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int st = luaL_loadbufferx(L, src, len, chunkname, "t");
    if (st != LUA_OK) {
        snprintf(err, errlen, "%s",
                 st == LUA_ERRMEM ? "out of memory compiling the script" : lua_tostring(L, -1));
        lua_pop(L, 1);
        *rc = st == LUA_ERRMEM ? LJS_ENOMEM : LJS_ESCRIPT;
        return NULL;
    }
    lua_dump(L, dump_writer, &b, strip);
    lua_pop(L, 1);
    chunk_t *c = b.failed ? NULL : new_chunk(path, id, strip, b.p, b.n);
    if (c == NULL) {
        ljs__free(b.p);
        snprintf(err, errlen, "out of memory caching the bytecode of %s", path);
        *rc = LJS_ENOMEM;
        return NULL;
    }
    c->compile_ms = ljs__now_ms() - t0;
    return c;
}

static chunk_t *new_chunk(const char *path, const ljs__source_id_t *id, int strip, unsigned char *bytes,
                          size_t len)
{
    chunk_t *c = ljs__calloc(1, sizeof *c);
    if (c == NULL || (c->path = ljs__strdup(path)) == NULL) {
        ljs__free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->id = *id;
    c->strip = strip;
    c->bytes = bytes;
    c->len = len;
    return c;
}

/* A chunk from LJS_CACHE_DIR, or NULL (no file, or rejected: see warn).
 * The bytes must also load, which checks Lua's own bytecode header. */
static chunk_t *from_disk(lua_State *L, const ljs__cache_req_t *r, char *warn, size_t warnlen)
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    int got = ljs__disk_read(r->dir, r->path, &r->id, r->strip, &bytes, &len, warn, warnlen);
    if (got < 0)
        cache->disk_rejects++;
    if (got <= 0)
        return NULL;
    if (luaL_loadbufferx(L, (const char *)bytes, len, "=(cache check)", "b") != LUA_OK) {
        snprintf(warn, warnlen, "bytecode cache file for %s ignored (%s); rebuilding it", r->path,
                 lua_tostring(L, -1));
        lua_pop(L, 1);
        ljs__free(bytes);
        cache->disk_rejects++;
        return NULL;
    }
    lua_pop(L, 1);
    chunk_t *c = new_chunk(r->path, &r->id, r->strip, bytes, len);
    if (c == NULL)
        ljs__free(bytes);
    else
        cache->disk_hits++;
    return c;
}

static void to_disk(const ljs__cache_req_t *r, const chunk_t *c, char *warn, size_t warnlen)
{
    if (strcmp(cache->disk_dir, r->dir) != 0) {
        snprintf(cache->disk_dir, sizeof cache->disk_dir, "%s", r->dir);
        cache->disk_bytes = UINT64_MAX;
    }
    int evicted = ljs__disk_write(r->dir, r->path, &r->id, r->strip, c->bytes, c->len, r->max_bytes,
                                  &cache->disk_bytes, warn, warnlen);
    if (evicted >= 0) {
        cache->disk_writes++;
        cache->disk_evictions += (uint64_t)evicted;
    }
}

int ljs__cache_prepare(lua_State *L, const ljs__cache_req_t *r, char *err, size_t errlen, char *warn,
                       size_t warnlen)
{
    int rc = LJS_OK, found;
    warn[0] = '\0';
    pthread_mutex_lock(&cache_lock);
    const snapshot_t *cur = atomic_load_explicit(&cache->current, memory_order_relaxed); /* writers: locked */
    uint32_t at = find(cur, r->path, r->strip, &found);
    if (found) {
        const chunk_t *c = cur->chunks[at];
        if (c->id.size == r->id.size && c->id.mtime_ns == r->id.mtime_ns && c->id.hash == r->id.hash) {
            cache->hits += !r->internal;
            cache->saved_ms += r->internal ? 0.0 : c->compile_ms;
            pthread_mutex_unlock(&cache_lock);
            return LJS_OK;
        }
    }
    cache->misses += !r->internal;
    chunk_t *c = r->dir[0] ? from_disk(L, r, warn, warnlen) : NULL;
    if (c == NULL) {
        c = compile(L, r->path, &r->id, r->src, r->len, r->strip, err, errlen, &rc);
        if (c != NULL && !r->internal) {
            cache->compiles++;
            cache->compile_ms += c->compile_ms;
        }
        if (c != NULL && r->dir[0]) {
            to_disk(r, c, warn[0] ? warn + strlen(warn) : warn, warnlen - strlen(warn));
        }
    }
    if (c != NULL) {
        snapshot_t *next = derive(at, found, c);
        if (next == NULL) {
            chunk_unref(c);
            snprintf(err, errlen, "out of memory publishing the bytecode of %s", r->path);
            rc = LJS_ENOMEM;
        } else {
            publish_locked(next);
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return rc;
}

int ljs__cache_load(ck_epoch_record_t *rec, lua_State *L, const char *path, int strip, const char *chunkname,
                    int internal)
{
    ck_epoch_section_t section;
    int found, st = LUA_ERRFILE;
    ck_epoch_begin(rec, &section);
    const snapshot_t *s = atomic_load_explicit(&cache->current, memory_order_acquire);
    uint32_t at = find(s, path, strip, &found);
    if (found) {
        const chunk_t *c = s->chunks[at];
        /* Protected: returns a status, never longjmps out of the section. */
        st = luaL_loadbufferx(L, (const char *)c->bytes, c->len, chunkname, "b");
    }
    ck_epoch_end(rec, &section);
    if (found && !internal)
        atomic_fetch_add_explicit(&cache->loads, 1, memory_order_relaxed);
    return st;
}

void ljs__cache_forget(const char *path)
{
    pthread_mutex_lock(&cache_lock);
    /* Entries are keyed by path, and another runtime may be between
     * preparing this path and loading it on its workers: while several
     * runtimes share the cache, unloading keeps the bytecode (at most one
     * chunk per file and strip mode; freed with the cache). */
    if (cache->refs > 1) {
        pthread_mutex_unlock(&cache_lock);
        return;
    }
    for (int strip = 0; strip <= 1; strip++) {
        int found;
        uint32_t at = find(atomic_load_explicit(&cache->current, memory_order_relaxed), path, strip, &found);
        snapshot_t *next = found ? derive(at, 1, NULL) : NULL;
        if (next != NULL)
            publish_locked(next);
    }
    pthread_mutex_unlock(&cache_lock);
}

void ljs__cache_poll(void)
{
    if (cache == NULL || atomic_load_explicit(&cache->pending, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&cache_lock);
    ck_epoch_poll(cache->writer);
    pthread_mutex_unlock(&cache_lock);
}

void ljs__cache_stats_get(ljs_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&cache_lock);
    if (cache != NULL) {
        out->compiles = cache->compiles;
        out->hits = cache->hits;
        out->misses = cache->misses;
        out->loads = atomic_load_explicit(&cache->loads, memory_order_relaxed);
        out->snapshots_freed = cache->freed;
        out->disk_hits = cache->disk_hits;
        out->disk_writes = cache->disk_writes;
        out->disk_rejects = cache->disk_rejects;
        out->disk_evictions = cache->disk_evictions;
        out->compile_ms = cache->compile_ms;
        out->saved_ms = cache->saved_ms;
        const snapshot_t *cur = atomic_load_explicit(&cache->current, memory_order_relaxed);
        out->entries = cur->n;
        for (uint32_t i = 0; i < cur->n; i++)
            out->bytes += cur->chunks[i]->len;
    }
    pthread_mutex_unlock(&cache_lock);
}
