/* strings.c - interned strings (see strings.h for the invariants).
 *
 * Lock order: a shard's lock, then id_lock (never the other way round). */
#include "runtime/world/strings.h"

#include "jobs/mem.h"

#include <ljs.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SIZE (1u << LJS__STR_PAGE_BITS)
#define MAX_IDS ((uint32_t)LJS__STR_PAGES * PAGE_SIZE)

int ljs__strings_init(ljs__strings_t *s)
{
    memset(s, 0, sizeof *s);
    for (uint32_t i = 0; i < LJS__STR_PAGES; i++)
        atomic_init(&s->pages[i], NULL);
    atomic_init(&s->count, 0);
    atomic_init(&s->bytes, 0);
    s->next_id = 1;
    if (pthread_mutex_init(&s->id_lock, NULL) != 0)
        return LJS_ENOMEM;
    for (uint32_t i = 0; i < LJS__STR_SHARDS; i++)
        if (pthread_mutex_init(&s->shards[i].lock, NULL) != 0)
            return LJS_ENOMEM;
    return LJS_OK;
}

void ljs__strings_fini(ljs__strings_t *s)
{
    for (uint32_t p = 0; p < LJS__STR_PAGES; p++) {
        ljs__str_t **page = atomic_load_explicit(&s->pages[p], memory_order_relaxed);
        if (page == NULL)
            continue;
        for (uint32_t i = 0; i < PAGE_SIZE; i++)
            ljs__free(page[i]);
        ljs__free(page);
    }
    for (uint32_t i = 0; i < LJS__STR_SHARDS; i++) {
        ljs__free(s->shards[i].slots);
        pthread_mutex_destroy(&s->shards[i].lock);
    }
    ljs__free(s->free_ids);
    pthread_mutex_destroy(&s->id_lock);
    memset(s, 0, sizeof *s);
}

uint64_t ljs__strings_hash(const char *p, size_t len)
{
    /* Multiply-xorshift over 8-byte words (as the bytecode cache's hash):
     * fixed seed, so a string hashes the same in every run. */
    uint64_t h = 0xcbf29ce484222325ull ^ (len * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 29);
}

static ljs__strshard_t *shard_of(ljs__strings_t *s, uint64_t h)
{
    return &s->shards[h >> 58];
}

/* Insert id into a shard's table (its lock held, room checked). */
static void shard_put(ljs__strshard_t *sh, uint64_t h, uint32_t id)
{
    uint32_t mask = sh->cap - 1, i = (uint32_t)h & mask;
    while (sh->slots[i] != 0)
        i = (i + 1) & mask;
    sh->slots[i] = id;
    sh->n++;
}

static int shard_grow(ljs__strings_t *s, ljs__strshard_t *sh)
{
    uint32_t cap = sh->cap ? sh->cap * 2 : 64;
    uint32_t *old = sh->slots, ocap = sh->cap;
    uint32_t *slots = ljs__calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    sh->slots = slots;
    sh->cap = cap;
    sh->n = 0;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i] != 0)
            shard_put(sh, ljs__strings_get(s, old[i])->hash, old[i]);
    ljs__free(old);
    return 0;
}

/* A fresh id with `e` as its entry, or 0. */
static uint32_t new_id(ljs__strings_t *s, ljs__str_t *e)
{
    uint32_t id = 0;
    pthread_mutex_lock(&s->id_lock);
    if (s->nfree > 0) {
        id = s->free_ids[--s->nfree];
    } else if (s->next_id < MAX_IDS) {
        uint32_t p = s->next_id >> LJS__STR_PAGE_BITS;
        if (atomic_load_explicit(&s->pages[p], memory_order_relaxed) == NULL) {
            ljs__str_t **page = ljs__calloc(PAGE_SIZE, sizeof(ljs__str_t *));
            /* release: the zeroed page is visible before its pointer. */
            if (page != NULL)
                atomic_store_explicit(&s->pages[p], page, memory_order_release);
        }
        if (atomic_load_explicit(&s->pages[p], memory_order_relaxed) != NULL)
            id = s->next_id++;
    }
    if (id != 0) {
        ljs__str_t **page = atomic_load_explicit(&s->pages[id >> LJS__STR_PAGE_BITS], memory_order_relaxed);
        page[id & (PAGE_SIZE - 1)] = e;
    }
    pthread_mutex_unlock(&s->id_lock);
    return id;
}

int64_t ljs__strings_intern(ljs__strings_t *s, const char *p, size_t len)
{
    if (len == 0)
        return 0;
    uint64_t h = ljs__strings_hash(p, len);
    ljs__strshard_t *sh = shard_of(s, h);
    int64_t r = -1;
    pthread_mutex_lock(&sh->lock);
    if (sh->cap) {
        uint32_t mask = sh->cap - 1;
        for (uint32_t i = (uint32_t)h & mask; sh->slots[i] != 0; i = (i + 1) & mask) {
            const ljs__str_t *e = ljs__strings_get(s, sh->slots[i]);
            if (e->hash == h && e->len == len && memcmp(e->bytes, p, len) == 0) {
                r = sh->slots[i];
                goto out;
            }
        }
    }
    if ((sh->n + 1) * 2 > sh->cap && shard_grow(s, sh))
        goto out;
    ljs__str_t *e = ljs__malloc(sizeof *e + len + 1);
    if (e == NULL)
        goto out;
    e->hash = h;
    e->len = (uint32_t)len;
    e->mark = 0;
    memcpy(e->bytes, p, len);
    e->bytes[len] = '\0';
    uint32_t id = new_id(s, e);
    if (id == 0) {
        ljs__free(e);
        goto out;
    }
    shard_put(sh, h, id);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, sizeof *e + len + 1, memory_order_relaxed);
    r = id;
out:
    pthread_mutex_unlock(&sh->lock);
    return r;
}

int ljs__strings_want_sweep(const ljs__strings_t *s)
{
    return atomic_load_explicit(&s->count, memory_order_relaxed) > 2 * s->live_after_sweep + 4096;
}

void ljs__strings_sweep_begin(ljs__strings_t *s)
{
    for (uint32_t id = 1; id < s->next_id; id++) {
        ljs__str_t **page = atomic_load_explicit(&s->pages[id >> LJS__STR_PAGE_BITS], memory_order_relaxed);
        if (page[id & (PAGE_SIZE - 1)] != NULL)
            page[id & (PAGE_SIZE - 1)]->mark = 0;
    }
}

void ljs__strings_sweep_end(ljs__strings_t *s)
{
    size_t freed = 0, bytes = 0;
    for (uint32_t id = 1; id < s->next_id; id++) {
        ljs__str_t **page = atomic_load_explicit(&s->pages[id >> LJS__STR_PAGE_BITS], memory_order_relaxed);
        ljs__str_t *e = page[id & (PAGE_SIZE - 1)];
        if (e == NULL || e->mark)
            continue;
        if (s->nfree == s->free_cap) {
            uint32_t cap = s->free_cap ? s->free_cap * 2 : 1024;
            uint32_t *q = ljs__realloc(s->free_ids, cap * sizeof *q);
            if (q == NULL)
                break; /* keep the rest until the next sweep */
            s->free_ids = q;
            s->free_cap = cap;
        }
        bytes += sizeof *e + e->len + 1;
        ljs__free(e);
        page[id & (PAGE_SIZE - 1)] = NULL;
        s->free_ids[s->nfree++] = id;
        freed++;
    }
    /* Rebuild the shard tables from the survivors (no tombstones). Free
     * ids are handed out from the end of the list: push them so the lowest
     * comes out first (keeps pages dense). */
    for (uint32_t i = 0; i < LJS__STR_SHARDS; i++) {
        ljs__strshard_t *sh = &s->shards[i];
        if (sh->cap)
            memset(sh->slots, 0, sizeof *sh->slots * sh->cap);
        sh->n = 0;
    }
    for (uint32_t id = 1; id < s->next_id; id++) {
        const ljs__str_t *e = atomic_load_explicit(&s->pages[id >> LJS__STR_PAGE_BITS],
                                                   memory_order_relaxed)[id & (PAGE_SIZE - 1)];
        if (e != NULL)
            shard_put(shard_of(s, e->hash), e->hash, id);
    }
    for (uint32_t a = 0, b = s->nfree; a + 1 < b; a++, b--) {
        uint32_t t = s->free_ids[a];
        s->free_ids[a] = s->free_ids[b - 1];
        s->free_ids[b - 1] = t;
    }
    atomic_fetch_sub_explicit(&s->count, freed, memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->bytes, bytes, memory_order_relaxed);
    s->live_after_sweep = atomic_load_explicit(&s->count, memory_order_relaxed);
    s->sweeps++;
    s->freed += freed;
    if (freed)
        s->epoch++;
}
