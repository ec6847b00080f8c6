/* query.c - cached entity queries (see query.h). */
#include "runtime/world/query.h"

#include "jobs/mem.h"

#include "runtime/core.h"
#include "runtime/world/sort.h"

#include <stdlib.h>
#include <string.h>

int ljs__query_init(ljs__qcache_t *q, uint32_t cap)
{
    memset(q, 0, sizeof *q);
    q->cap = cap;
    if (cap == 0)
        return LJS_OK;
    q->e = ljs__calloc(cap, sizeof *q->e);
    return q->e != NULL ? LJS_OK : LJS_ENOMEM;
}

static void entry_free(ljs__qentry_t *e)
{
    ljs__free(e->ids);
    ljs__free(e->spare);
    ljs__free(e->touched);
    memset(e, 0, sizeof *e);
}

void ljs__query_fini(ljs__qcache_t *q)
{
    for (uint32_t i = 0; i < q->cap; i++)
        entry_free(&q->e[i]);
    ljs__free(q->e);
    memset(q, 0, sizeof *q);
}

const ljs__qentry_t *ljs__query_find(const ljs__qcache_t *q, uint64_t all, uint64_t none, uint64_t frame)
{
    /* A linear scan of a few hundred (all, none) pairs is cheaper than the
     * hashing it would replace at these sizes, and needs no lock. */
    for (uint32_t i = 0; i < q->cap; i++) {
        ljs__qentry_t *e = (ljs__qentry_t *)&q->e[i];
        if (e->used && e->all == all && e->none == none) {
            /* Relaxed: many workers may store the same frame number; only
             * the owner's eviction reads it, after the frame. */
            atomic_store_explicit(&e->last_used, frame, memory_order_relaxed);
            return e;
        }
    }
    return NULL;
}

static int reserve_ids(ljs__qentry_t *e, uint32_t n)
{
    if (n <= e->cap)
        return 0;
    uint32_t cap = e->cap ? e->cap : 64;
    while (cap < n)
        cap *= 2;
    uint64_t *p = ljs__realloc(e->ids, cap * sizeof *p);
    if (p == NULL)
        return -1;
    e->ids = p;
    e->cap = cap;
    return 0;
}

/* Full scan of the world into e. */
static int recompute(ljs__qcache_t *q, const ljs__world_t *w, ljs__qentry_t *e)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < w->nslots; s++)
        n += (uint32_t)ljs__query_match(e->all, e->none, w->alive[s], w->tags[s]);
    if (reserve_ids(e, n ? n : 1) != 0)
        return -1;
    n = 0;
    for (uint32_t s = 0; s < w->nslots; s++)
        if (ljs__query_match(e->all, e->none, w->alive[s], w->tags[s]))
            e->ids[n++] = ljs__world_handle(w, s);
    e->n = n;
    e->ntouched = 0;
    q->recomputes++;
    return 0;
}

static int touch(ljs__qentry_t *e, uint32_t slot)
{
    if (e->ntouched == e->tcap) {
        uint32_t cap = e->tcap ? e->tcap * 2 : 64;
        uint32_t *p = ljs__realloc(e->touched, cap * sizeof *p);
        if (p == NULL)
            return -1;
        e->touched = p;
        e->tcap = cap;
    }
    e->touched[e->ntouched++] = slot;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* First index in ids[lo, n) whose slot is >= slot (binary search). */
static uint32_t lower_bound(const uint64_t *ids, uint32_t lo, uint32_t n, uint32_t slot)
{
    uint32_t hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((uint32_t)ids[mid] < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Patch e with its touched slots in one merge pass: every touched slot's
 * old entry is dropped and, if it matches now, its current handle goes in,
 * so several changes of one slot in a window collapse to its final state.
 * The untouched runs between touched slots are copied with memcpy (found by
 * binary search), so a small delta on a large result costs little more
 * than a copy of it; the two buffers are swapped, never reallocated per
 * sync in steady state. */
static int apply_delta(ljs__qcache_t *q, const ljs__world_t *w, ljs__qentry_t *e)
{
    ljs__sort(e->touched, e->ntouched, sizeof *e->touched, cmp_u32);
    uint32_t nt = 0;
    for (uint32_t i = 0; i < e->ntouched; i++) /* dedupe */
        if (nt == 0 || e->touched[nt - 1] != e->touched[i])
            e->touched[nt++] = e->touched[i];
    uint32_t need = e->n + nt + 1;
    if (need > e->spare_cap) {
        uint64_t *p = ljs__realloc(e->spare, sizeof *p * need);
        if (p == NULL)
            return -1;
        e->spare = p;
        e->spare_cap = need;
    }
    uint64_t *out = e->spare;
    uint32_t i = 0, n = 0;
    for (uint32_t k = 0; k < nt; k++) {
        uint32_t slot = e->touched[k];
        uint32_t at = lower_bound(e->ids, i, e->n, slot);
        memcpy(out + n, e->ids + i, sizeof *out * (at - i));
        n += at - i;
        i = at;
        if (i < e->n && (uint32_t)e->ids[i] == slot)
            i++; /* the old entry of a touched slot */
        if (ljs__query_match(e->all, e->none, w->alive[slot], w->tags[slot]))
            out[n++] = ljs__world_handle(w, slot);
    }
    memcpy(out + n, e->ids + i, sizeof *out * (e->n - i));
    n += e->n - i;
    uint32_t out_cap = e->spare_cap;
    e->spare = e->ids;
    e->spare_cap = e->cap;
    e->ids = out;
    e->cap = out_cap;
    e->n = n;
    e->ntouched = 0;
    q->deltas++;
    return 0;
}

/* Route the world's change log to the entries it can affect. A change that
 * keeps the entity alive and flips no tag an entry mentions cannot affect
 * it: one AND over a packed array rules most pairs out (bench: query). */
static void route_changes(ljs__qcache_t *q, ljs__world_t *w)
{
    uint64_t mention[256];
    uint32_t idx[256];
    for (uint32_t base = 0; base < q->cap; base += 256) {
        uint32_t m = 0;
        for (uint32_t i = base; i < q->cap && i < base + 256; i++)
            if (q->e[i].used) {
                mention[m] = q->e[i].all | q->e[i].none;
                idx[m++] = i;
            }
        for (uint32_t c = 0; c < w->nchanges; c++) {
            const ljs__tagchange_t *ch = &w->changes[c];
            uint64_t diff = ch->old_tags ^ ch->new_tags;
            int same_life = ch->old_alive == ch->new_alive;
            for (uint32_t j = 0; j < m; j++) {
                if (same_life && !(diff & mention[j]))
                    continue;
                ljs__qentry_t *e = &q->e[idx[j]];
                if (!ljs__query_match(e->all, e->none, ch->old_alive, ch->old_tags) &&
                    !ljs__query_match(e->all, e->none, ch->new_alive, ch->new_tags))
                    continue;
                if (touch(e, ch->slot) != 0)
                    e->ntouched = UINT32_MAX; /* out of memory: rescan it */
            }
        }
    }
}

static ljs__qentry_t *slot_for_insert(ljs__qcache_t *q)
{
    ljs__qentry_t *victim = NULL;
    for (uint32_t i = 0; i < q->cap; i++) {
        if (!q->e[i].used)
            return &q->e[i];
        if (victim == NULL || atomic_load_explicit(&q->e[i].last_used, memory_order_relaxed) <
                                  atomic_load_explicit(&victim->last_used, memory_order_relaxed))
            victim = &q->e[i];
    }
    if (victim == NULL)
        return NULL;    /* no slots at all (LJS_QUERY_CACHE=0) */
    entry_free(victim); /* least recently used */
    q->evictions++;
    return victim;
}

/* Cache a signature (owner). Returns the entry or NULL (cache off / OOM). */
static ljs__qentry_t *insert(ljs_runtime_t *rt, uint64_t all, uint64_t none)
{
    ljs__qcache_t *q = &rt->queries;
    if (q->cap == 0)
        return NULL;
    ljs__qentry_t *e = (ljs__qentry_t *)ljs__query_find(q, all, none, rt->frame);
    if (e != NULL)
        return e;
    e = slot_for_insert(q);
    if (e == NULL)
        return NULL;
    e->all = all;
    e->none = none;
    atomic_init(&e->last_used, rt->frame);
    if (recompute(q, &rt->world, e) != 0) {
        entry_free(e);
        return NULL;
    }
    e->used = 1;
    return e;
}

void ljs__query_sync(ljs_runtime_t *rt)
{
    rt->view_epoch++; /* entries move: every view of them is stale */
    ljs__qcache_t *q = &rt->queries;
    ljs__world_t *w = &rt->world;
    if (!w->changes_lost)
        route_changes(q, w);
    for (uint32_t i = 0; i < q->cap; i++) {
        ljs__qentry_t *e = &q->e[i];
        if (!e->used || (e->ntouched == 0 && !w->changes_lost))
            continue;
        /* A delta larger than the result costs more than a scan. */
        int rc = w->changes_lost || e->ntouched == UINT32_MAX || e->ntouched > e->n + 1024
                     ? recompute(q, w, e)
                     : apply_delta(q, w, e);
        if (rc != 0)
            entry_free(e); /* out of memory: forget it, the next miss scans */
    }
    w->nchanges = 0;
    w->changes_lost = 0;
    /* Signatures workers missed in the last frame. */
    for (uint32_t k = 0; k < rt->nworkers; k++) {
        ljs__worker_t *wk = &rt->workers[k];
        for (uint32_t j = 0; j < wk->nwanted; j++)
            insert(rt, wk->wanted[j].all, wk->wanted[j].none);
        wk->nwanted = 0;
    }
}

/* ---- host API ------------------------------------------------------------------ */

#include "runtime/error.h"

static int masks(ljs_runtime_t *rt, const ljs_query_t *qq, uint64_t *all, uint64_t *none, int *empty)
{
    *all = *none = 0;
    *empty = 0;
    for (size_t i = 0; i < qq->nall; i++) {
        if (qq->all[i] == NULL)
            return LJS_EINVAL;
        int b = ljs__world_tag_bit(&rt->world, qq->all[i], 0);
        if (b < 0)
            *empty = 1;
        else
            *all |= 1ull << b;
    }
    for (size_t i = 0; i < qq->nnone; i++) {
        if (qq->none[i] == NULL)
            return LJS_EINVAL;
        int b = ljs__world_tag_bit(&rt->world, qq->none[i], 0);
        if (b >= 0)
            *none |= 1ull << b;
    }
    return LJS_OK;
}

int ljs_query(ljs_runtime_t *rt, const ljs_query_t *qq, const ljs_entity_t **out, size_t *n)
{
    LJS_CHECK_OWNER(rt, "ljs_query");
    if (rt != NULL)
        rt->view_epoch++; /* the cache may evict or grow entries */
    uint64_t all, none;
    int empty;
    if (rt == NULL || qq == NULL || out == NULL || n == NULL || (qq->nall && qq->all == NULL) ||
        (qq->nnone && qq->none == NULL) || masks(rt, qq, &all, &none, &empty) != LJS_OK)
        return ljs__error(LJS_EINVAL, "ljs_query: bad arguments");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_query: not allowed while a frame is running");
    *out = NULL;
    *n = 0;
    if (empty)
        return LJS_OK;
    ljs__query_sync(rt);
    const ljs__qentry_t *e = ljs__query_find(&rt->queries, all, none, rt->frame);
    if (e != NULL) {
        rt->queries.hits_host++;
    } else {
        rt->queries.misses_host++;
        e = insert(rt, all, none);
    }
    if (e == NULL) {
        /* Cache off (LJS_QUERY_CACHE=0): a private scan result. */
        ljs__qentry_t *tmp = &rt->query_scratch;
        tmp->all = all;
        tmp->none = none;
        if (recompute(&rt->queries, &rt->world, tmp) != 0)
            return ljs__error(LJS_ENOMEM, "ljs_query: out of memory");
        rt->queries.recomputes--; /* not a cache recompute */
        e = tmp;
    }
    /* ljs_entity_t is a struct holding just the uint64_t handle. */
    *out = (const ljs_entity_t *)(const void *)e->ids;
    *n = e->n;
    return LJS_OK;
}

int ljs_query_stats(const ljs_runtime_t *rt, ljs_query_stats_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_query_stats");
    if (rt == NULL || out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_query_stats: NULL argument");
    const ljs__qcache_t *q = &rt->queries;
    memset(out, 0, sizeof *out);
    out->hits = q->hits_host;
    out->misses = q->misses_host;
    for (uint32_t k = 0; k < rt->nworkers; k++) {
        out->hits += rt->workers[k].qhits;
        out->misses += rt->workers[k].qmisses;
    }
    out->recomputes = q->recomputes;
    out->deltas = q->deltas;
    out->evictions = q->evictions;
    for (uint32_t i = 0; i < q->cap; i++)
        out->entries += (uint32_t)q->e[i].used;
    return LJS_OK;
}
