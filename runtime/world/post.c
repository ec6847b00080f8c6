/* post.c - tag changes posted by any thread (see post.h).
 *
 * Ordering: a producer tries the ring only while no spill is pending; once
 * it has spilled, it keeps spilling until the owner has drained the spill
 * list. The owner drains the ring, then takes the spill lock, drains the
 * ring again (a producer's ring entries older than its spilled ones are
 * visible once it has released the lock), then the spill list, and clears
 * the spill flag. So every producer's posts are applied in the order it
 * made them, and a full ring loses nothing. */
#include "runtime/world/post.h"

#include "jobs/mem.h"

#include "runtime/error.h"
#include "runtime/core.h"

#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TAG_MAX 40

struct ljs__post {
    uint64_t entity;
    uint32_t on;
    char tag[TAG_MAX];
};
/* cppcheck-suppress unknownMacro ; ck_ring.h generates the typed ring functions */
CK_RING_PROTOTYPE(post, ljs__post)

struct ljs__posts_s {
    ck_ring_t ring;
    struct ljs__post *buf;
    pthread_mutex_t lock; /* leaf lock: guards the spill list */
    struct ljs__post *spill;
    size_t nspill, spill_cap;
    atomic_int spilling;
    atomic_uint_fast64_t posted, spilled;
    uint64_t dropped; /* posts for dead entities or a 65th tag name (owner) */
};

int ljs__posts_create(uint32_t ring_slots, ljs__posts_t **out)
{
    ljs__posts_t *p = ljs__calloc(1, sizeof *p);
    unsigned size = 4;
    while (size < ring_slots)
        size *= 2;
    if (p == NULL || (p->buf = ljs__calloc(size, sizeof *p->buf)) == NULL) {
        ljs__free(p);
        return LJS_ENOMEM;
    }
    ck_ring_init(&p->ring, size);
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return LJS_OK;
}

void ljs__posts_destroy(ljs__posts_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->lock);
    ljs__free(p->spill);
    ljs__free(p->buf);
    ljs__free(p);
}

static int spill(ljs__posts_t *p, const struct ljs__post *rec)
{
    int rc = LJS_OK;
    pthread_mutex_lock(&p->lock);
    if (p->nspill == p->spill_cap) {
        size_t cap = p->spill_cap ? p->spill_cap * 2 : 64;
        struct ljs__post *q = ljs__realloc(p->spill, cap * sizeof *q);
        if (q == NULL)
            rc = LJS_ENOMEM;
        else {
            p->spill = q;
            p->spill_cap = cap;
        }
    }
    if (rc == LJS_OK) {
        p->spill[p->nspill++] = *rec;
        atomic_store_explicit(&p->spilling, 1, memory_order_relaxed); /* under the lock */
        atomic_fetch_add_explicit(&p->spilled, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int ljs_entity_tag_post(ljs_runtime_t *rt, ljs_entity_t e, const char *tag, int on)
{
    struct ljs__post rec;
    if (rt == NULL || tag == NULL || tag[0] == '\0' || strlen(tag) >= TAG_MAX)
        return ljs__error(LJS_EINVAL, "ljs_entity_tag_post: bad runtime or tag (1..%d characters)",
                          TAG_MAX - 1);
    ljs__posts_t *p = rt->posts;
    memset(&rec, 0, sizeof rec);
    rec.entity = e.id;
    rec.on = on != 0;
    memcpy(rec.tag, tag, strlen(tag));
    atomic_fetch_add_explicit(&p->posted, 1, memory_order_relaxed);
    /* Acquire: pairs with the owner's release when it empties the spill
     * list, so a producer that sees 0 goes back to the ring only after its
     * spilled posts were taken. */
    if (!atomic_load_explicit(&p->spilling, memory_order_acquire) &&
        ck_ring_enqueue_mpsc_post(&p->ring, p->buf, &rec))
        return LJS_OK;
    int rc = spill(p, &rec);
    return rc == LJS_OK ? LJS_OK : ljs__error(rc, "ljs_entity_tag_post: out of memory");
}

static void apply_one(ljs_runtime_t *rt, const struct ljs__post *rec)
{
    ljs__world_t *w = &rt->world;
    int64_t slot = ljs__world_slot(w, rec->entity);
    int bit = slot >= 0 ? ljs__world_tag_bit(w, rec->tag, rec->on) : -1;
    if (slot < 0 || (bit < 0 && rec->on)) {
        rt->posts->dropped++;
        return;
    }
    if (bit < 0)
        return; /* removing a tag no entity ever had */
    uint64_t tags = w->tags[slot];
    ljs__world_set_tags(w, (uint32_t)slot, rec->on ? tags | (1ull << bit) : tags & ~(1ull << bit));
}

static void drain_ring(ljs_runtime_t *rt)
{
    struct ljs__post rec;
    while (ck_ring_dequeue_mpsc_post(&rt->posts->ring, rt->posts->buf, &rec))
        apply_one(rt, &rec);
}

void ljs__posts_apply(ljs_runtime_t *rt)
{
    ljs__posts_t *p = rt->posts;
    drain_ring(rt);
    if (!atomic_load_explicit(&p->spilling, memory_order_relaxed))
        return;
    pthread_mutex_lock(&p->lock);
    drain_ring(rt);
    for (size_t i = 0; i < p->nspill; i++)
        apply_one(rt, &p->spill[i]);
    p->nspill = 0;
    atomic_store_explicit(&p->spilling, 0, memory_order_release);
    pthread_mutex_unlock(&p->lock);
}

void ljs__posts_counts(const ljs__posts_t *p, uint64_t *posted, uint64_t *spilled, uint64_t *dropped)
{
    *posted = atomic_load_explicit(&((ljs__posts_t *)p)->posted, memory_order_relaxed);
    *spilled = atomic_load_explicit(&((ljs__posts_t *)p)->spilled, memory_order_relaxed);
    *dropped = p->dropped;
}
