/* world.c - entity slots, tags and field columns (see world.h for the
 * invariants). Everything here runs on the owner thread between script
 * phases, except the read-only inline lookups in world.h. */
#include "runtime/world/world.h"

#include "jobs/mem.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

int ljs__world_init(ljs__world_t *w)
{
    memset(w, 0, sizeof *w);
    return ljs__strings_init(&w->strings);
}

const char *ljs__type_name(ljs_type_t t)
{
    switch (t) {
    case LJS_TNUMBER:
        return "number";
    case LJS_TINTEGER:
        return "integer";
    case LJS_TBOOLEAN:
        return "boolean";
    case LJS_TSTRING:
        return "string";
    case LJS_TENTITY:
        return "entity";
    case LJS_TLIST:
        return "list";
    default:
        return "nil";
    }
}

const char *ljs__ftype_name(ljs__ftype_t t, char *buf, size_t size)
{
    if (t.type == LJS_TLIST)
        snprintf(buf, size, "list of %s (max %u)", ljs__type_name(t.elem), (unsigned)t.maxlen);
    else
        snprintf(buf, size, "%s", ljs__type_name(t.type));
    return buf;
}

static void free_field(ljs__field_t *f)
{
    ljs__free(f->name);
    ljs__free(f->cur);
    ljs__free(f->work);
    ljs__free(f->lcur);
    ljs__free(f->lwork);
    ljs__free(f->present);
}

void ljs__world_fini(ljs__world_t *w)
{
    for (uint32_t i = 0; i < w->nfields; i++)
        free_field(&w->fields[i]);
    for (uint32_t i = 0; i < w->cap; i++)
        ljs__free(w->escripts[i].ids);
    for (uint32_t i = 0; i < w->ntags; i++)
        ljs__free(w->tag_names[i]);
    ljs__free(w->fields);
    ljs__free(w->gen);
    ljs__free(w->alive);
    ljs__free(w->tags);
    ljs__free(w->escripts);
    ljs__free(w->ectr);
    ljs__free(w->free_slots);
    ljs__free(w->changes);
    ljs__strings_fini(&w->strings);
    memset(w, 0, sizeof *w);
}

/* Grow `*p` (n elements of `size`) to `cap` elements, zeroing the tail. */
static int grow(void *p, size_t size, uint32_t n, uint32_t cap)
{
    void **pp = p;
    void *q = ljs__realloc(*pp, size * cap);
    if (q == NULL)
        return -1;
    memset((char *)q + size * n, 0, size * (cap - n));
    *pp = q;
    return 0;
}

static int grow_field(ljs__field_t *f, uint32_t n, uint32_t cap)
{
    if (grow(&f->cur, sizeof *f->cur, n, cap) || grow(&f->work, sizeof *f->work, n, cap) ||
        grow(&f->present, 1, n, cap))
        return -1;
    if (f->type == LJS_TLIST) {
        size_t el = sizeof *f->lcur * f->maxlen;
        if (grow(&f->lcur, el, n, cap) || grow(&f->lwork, el, n, cap))
            return -1;
    }
    return 0;
}

static int grow_slots(ljs__world_t *w)
{
    uint32_t cap = w->cap ? w->cap * 2 : 1024;
    if (cap <= w->cap)
        return LJS_EFULL;
    if (grow(&w->gen, sizeof *w->gen, w->cap, cap) || grow(&w->alive, 1, w->cap, cap) ||
        grow(&w->tags, sizeof *w->tags, w->cap, cap) ||
        grow(&w->escripts, sizeof *w->escripts, w->cap, cap) ||
        grow(&w->ectr, sizeof *w->ectr, w->cap, cap) ||
        grow(&w->free_slots, sizeof *w->free_slots, w->cap, cap))
        return LJS_ENOMEM;
    for (uint32_t i = 0; i < w->nfields; i++)
        if (grow_field(&w->fields[i], w->cap, cap))
            return LJS_ENOMEM;
    w->cap = cap;
    return LJS_OK;
}

static void log_change(ljs__world_t *w, uint32_t slot, int old_alive, uint64_t old_tags, int new_alive,
                       uint64_t new_tags)
{
    if (w->changes_lost) /* every cached query rescans anyway */
        return;
    if (w->nchanges == w->changes_cap) {
        uint32_t cap = w->changes_cap ? w->changes_cap * 2 : 256;
        ljs__tagchange_t *p = ljs__realloc(w->changes, cap * sizeof *p);
        if (p == NULL) {
            w->changes_lost = 1; /* never stale: every cached query rescans */
            return;
        }
        w->changes = p;
        w->changes_cap = cap;
    }
    w->changes[w->nchanges++] =
        (ljs__tagchange_t){slot, (uint8_t)old_alive, (uint8_t)new_alive, old_tags, new_tags};
}

void ljs__world_set_tags(ljs__world_t *w, uint32_t slot, uint64_t tags)
{
    if (w->tags[slot] != tags) {
        log_change(w, slot, 1, w->tags[slot], 1, tags);
        w->tags[slot] = tags;
    }
}

int ljs__world_create(ljs__world_t *w, uint64_t *out)
{
    uint32_t i;
    if (w->nfree > 0) {
        i = w->free_slots[--w->nfree];
    } else {
        if (w->nslots == UINT32_MAX)
            return LJS_EFULL;
        if (w->nslots == w->cap) {
            int rc = grow_slots(w);
            if (rc != LJS_OK)
                return rc;
        }
        i = w->nslots++;
        w->gen[i] = 1;
    }
    w->alive[i] = 1;
    w->tags[i] = 0;
    w->ectr[i].frame = UINT64_MAX;
    log_change(w, i, 0, 0, 1, 0);
    w->live++;
    *out = ljs__world_handle(w, i);
    return LJS_OK;
}

int ljs__world_destroy(ljs__world_t *w, uint64_t id)
{
    int64_t s = ljs__world_slot(w, id);
    if (s < 0)
        return LJS_ENOENT;
    uint32_t i = (uint32_t)s;
    log_change(w, i, 1, w->tags[i], 0, 0);
    w->alive[i] = 0;
    w->tags[i] = 0;
    /* Generations stay below 2^31 so a handle is a positive Lua integer. */
    w->gen[i] = w->gen[i] >= 0x7fffffffu ? 1 : w->gen[i] + 1;
    w->escripts[i].n = 0;
    for (uint32_t f = 0; f < w->nfields; f++)
        w->fields[f].present[i] = 0;
    w->free_slots[w->nfree++] = i;
    w->live--;
    return LJS_OK;
}

int ljs__world_tag_bit(ljs__world_t *w, const char *name, int add)
{
    for (uint32_t i = 0; i < w->ntags; i++)
        if (!strcmp(w->tag_names[i], name))
            return (int)i;
    if (!add || w->ntags == LJS_MAX_TAGS)
        return -1;
    char *copy = ljs__strdup(name);
    if (copy == NULL)
        return -1;
    w->tag_names[w->ntags] = copy;
    return (int)w->ntags++;
}

int ljs__world_field_find(const ljs__world_t *w, const char *name)
{
    for (uint32_t i = 0; i < w->nfields; i++)
        if (!strcmp(w->fields[i].name, name))
            return (int)i;
    return -1;
}

int ljs__world_field_declare(ljs__world_t *w, const char *name, ljs_type_t type)
{
    ljs__ftype_t t = {type, LJS_TNIL, 0};
    return ljs__world_field_declare_t(w, name, t);
}

int ljs__world_field_declare_t(ljs__world_t *w, const char *name, ljs__ftype_t type)
{
    int f = ljs__world_field_find(w, name);
    if (f >= 0) {
        const ljs__field_t *fd = &w->fields[f];
        int same = fd->type == type.type &&
                   (type.type != LJS_TLIST || (fd->elem == type.elem && fd->maxlen == type.maxlen));
        return same ? f : LJS_ETYPE;
    }
    if (w->nfields == LJS_MAX_FIELDS)
        return LJS_EFULL;
    if (w->nfields == w->fields_cap) {
        uint32_t cap = w->fields_cap ? w->fields_cap * 2 : 16;
        if (grow(&w->fields, sizeof *w->fields, w->fields_cap, cap))
            return LJS_ENOMEM;
        w->fields_cap = cap;
    }
    ljs__field_t *fd = &w->fields[w->nfields];
    memset(fd, 0, sizeof *fd);
    fd->name = ljs__strdup(name);
    fd->type = type.type;
    if (type.type == LJS_TLIST) {
        fd->elem = type.elem;
        fd->maxlen = type.maxlen;
    }
    atomic_init(&fd->dirty, 0);
    if (fd->name == NULL || (w->cap && grow_field(fd, 0, w->cap))) {
        free_field(fd);
        memset(fd, 0, sizeof *fd);
        return LJS_ENOMEM;
    }
    return (int)w->nfields++;
}

int ljs__world_restore_slots(ljs__world_t *w, uint32_t nslots, const uint32_t *gen, const uint8_t *alive,
                             const uint32_t *free_slots, uint32_t nfree)
{
    while (w->cap < nslots) {
        int rc = grow_slots(w);
        if (rc != LJS_OK)
            return rc;
    }
    /* Every entity changes: cached queries rescan rather than replay a
     * log of twice the world's size. */
    w->nchanges = 0;
    w->changes_lost = 1;
    for (uint32_t f = 0; f < w->nfields; f++)
        memset(w->fields[f].present, 0, w->cap);
    w->live = 0;
    for (uint32_t i = 0; i < w->cap; i++) {
        w->alive[i] = i < nslots ? alive[i] : 0;
        w->gen[i] = i < nslots ? gen[i] : 0;
        w->tags[i] = 0;
        w->escripts[i].n = 0;
        w->ectr[i].frame = UINT64_MAX;
        w->live += w->alive[i];
    }
    w->nslots = nslots;
    memcpy(w->free_slots, free_slots, sizeof *free_slots * nfree);
    w->nfree = nfree;
    return LJS_OK;
}

void ljs__world_forget_since(ljs__world_t *w, uint32_t nfields, uint32_t ntags)
{
    while (w->nfields > nfields) {
        ljs__field_t *fd = &w->fields[--w->nfields];
        free_field(fd);
        memset(fd, 0, sizeof *fd);
    }
    while (w->ntags > ntags) {
        ljs__free(w->tag_names[--w->ntags]);
        w->tag_names[w->ntags] = NULL;
    }
}

void ljs__world_field_put(ljs__world_t *w, uint32_t f, uint32_t slot, ljs__value_t v)
{
    ljs__field_t *fd = &w->fields[f];
    fd->cur[slot] = v;
    fd->work[slot] = v;
    fd->present[slot] = 1;
}

void ljs__world_list_put(ljs__world_t *w, uint32_t f, uint32_t slot, const ljs__value_t *v, uint32_t n)
{
    ljs__field_t *fd = &w->fields[f];
    size_t at = (size_t)slot * fd->maxlen;
    if (n > 0) {
        memcpy(fd->lcur + at, v, sizeof *v * n);
        memcpy(fd->lwork + at, v, sizeof *v * n);
    }
    fd->cur[slot].i = n;
    fd->work[slot].i = n;
    fd->present[slot] = 1;
}

void ljs__world_commit_range(ljs__world_t *w, uint32_t begin, uint32_t end)
{
    for (uint32_t f = 0; f < w->nfields; f++) {
        ljs__field_t *fd = &w->fields[f];
        /* Workers set `dirty` during the phase; the phase's join (the
         * scheduler's completion counter) orders it before this read. */
        if (!atomic_load_explicit(&fd->dirty, memory_order_relaxed))
            continue;
        memcpy(fd->cur + begin, fd->work + begin, sizeof *fd->cur * (end - begin));
        if (fd->type == LJS_TLIST) /* only each slot's used elements */
            for (uint32_t i = begin; i < end; i++)
                if (fd->present[i] && fd->work[i].i > 0)
                    memcpy(fd->lcur + (size_t)i * fd->maxlen, fd->lwork + (size_t)i * fd->maxlen,
                           sizeof *fd->lcur * (size_t)fd->work[i].i);
    }
}

void ljs__world_mark_strings(ljs__world_t *w)
{
    for (uint32_t f = 0; f < w->nfields; f++) {
        const ljs__field_t *fd = &w->fields[f];
        if (fd->type == LJS_TSTRING) {
            for (uint32_t i = 0; i < w->nslots; i++)
                if (w->alive[i] && fd->present[i]) {
                    ljs__strings_mark(&w->strings, (uint32_t)fd->cur[i].i);
                    ljs__strings_mark(&w->strings, (uint32_t)fd->work[i].i);
                }
        } else if (fd->type == LJS_TLIST && fd->elem == LJS_TSTRING) {
            for (uint32_t i = 0; i < w->nslots; i++) {
                if (!w->alive[i] || !fd->present[i])
                    continue;
                const ljs__value_t *c = fd->lcur + (size_t)i * fd->maxlen;
                const ljs__value_t *k = fd->lwork + (size_t)i * fd->maxlen;
                for (int64_t e = 0; e < fd->cur[i].i; e++)
                    ljs__strings_mark(&w->strings, (uint32_t)c[e].i);
                for (int64_t e = 0; e < fd->work[i].i; e++)
                    ljs__strings_mark(&w->strings, (uint32_t)k[e].i);
            }
        }
    }
}

void ljs__world_commit_done(ljs__world_t *w)
{
    for (uint32_t f = 0; f < w->nfields; f++)
        atomic_store_explicit(&w->fields[f].dirty, 0, memory_order_relaxed);
}

/* splitmix64 finaliser: a cheap, well-mixed 64-bit step. */
static uint64_t mix(uint64_t h, uint64_t v)
{
    uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A value's bits for the digest: strings by content (ids depend on which
 * worker interned first), entities as scripts see them. */
static uint64_t value_bits(const ljs__world_t *w, ljs_type_t t, ljs__value_t v)
{
    uint64_t bits;
    if (t == LJS_TSTRING)
        return ljs__strings_id_hash(&w->strings, (uint32_t)v.i);
    if (t == LJS_TENTITY)
        return ljs__world_live_ref(w, v.i);
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

uint64_t ljs__world_digest(const ljs__world_t *w)
{
    uint64_t h = 0x6a09e667f3bcc908ull;
    for (uint32_t i = 0; i < w->nslots; i++) {
        if (!w->alive[i])
            continue;
        h = mix(h, ljs__world_handle(w, i));
        h = mix(h, w->tags[i]);
        for (uint32_t f = 0; f < w->nfields; f++) {
            const ljs__field_t *fd = &w->fields[f];
            if (!fd->present[i])
                continue;
            h = mix(h, ((uint64_t)f << 32) | fd->type);
            h = mix(h, value_bits(w, fd->type, fd->cur[i]));
            if (fd->type == LJS_TLIST)
                for (int64_t e = 0; e < fd->cur[i].i; e++)
                    h = mix(h, value_bits(w, fd->elem, fd->lcur[(size_t)i * fd->maxlen + (size_t)e]));
        }
    }
    return h;
}

static void commit_range(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    (void)worker;
    ljs__world_commit_range(arg, begin, end);
}

/* Commit in slices over the workers: at 100k entities the copy is a few
 * hundred KB per field, worth splitting (bench: frame). */
void ljs__world_commit(ljs__world_t *w, ljs__sched_t *sched)
{
    ljs__sched_parallel_for(sched, w->nslots, 16384, commit_range, w);
    ljs__world_commit_done(w);
}
