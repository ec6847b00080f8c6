/* snapshot.c - world snapshots: save games, replays, bug reports.
 *
 * Between frames the world is all C-side (slots, generations, the free list,
 * tags, committed fields, which scripts each entity runs, pending events),
 * so a snapshot is that data in a fixed little-endian layout:
 *
 *   header  "LJSWORLD" | u32 version | u32 flags (0) | u64 body bytes | u64 body hash
 *   body    u64 frame | u32 host sequence
 *           u32 nslots | per slot: u32 generation, u8 alive
 *           u32 nfree  | u32 free slot (LIFO order: reuse stays deterministic)
 *           u32 ntags  | per tag: str name;            per live slot: u64 tag bits
 *           u32 nfields| per field: str name, u8 type [list: u8 element type,
 *                        u16 maxlen], then per live slot: u8 present [+ value]
 *                        (committed values)
 *           u32 nscripts | per script: str name;       per live slot: u32 n, u32 script[n]
 *           u32 nevents  | per event: u64 target, u64 sender, u32 seq, u32 len, bytes[len]
 *   (str = u16 length + bytes, no NUL)
 *   value   number, integer, boolean (0/1), entity (the raw handle: a dead
 *           target reads nil after a load as before): 8 bytes;
 *           string: u32 length + bytes (NULs carried whole, at most
 *           LJS_STRING_MAX); list: u16 n (<= maxlen) + n element values
 *
 * Loading parses and checks everything first (hash, bounds, every free slot
 * dead and unique, tag bits, field types against the runtime's, scripts
 * loaded by name, event payloads well formed) and only then replaces the
 * world, so a corrupt, truncated or mismatched file changes nothing.
 * Script-local Lua state (upvalues, module locals) is not part of a world:
 * state belongs in fields. Scripts are bound by name; a runtime that loads
 * the same scripts in the same order steps on bit-identically. */
#include "runtime/cache/cache.h"

#include "jobs/mem.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/scripts/script_host.h"
#include "runtime/snapshot.h"
#include "runtime/world/sort.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAGIC "LJSWORLD"
#define VERSION 3u /* 2: event bytes carry their name's length (event.c); 3: string, entity, list fields */
#define HEADER_BYTES LJS__SNAPSHOT_HEADER
#define MAX_SLOTS (1u << 28)
#define MAX_NAME 255u
#define MAX_EVENT_BYTES (1u << 30)

/* The body's checksum: FNV-style multiply-xorshift over 8-byte words like
 * the bytecode cache's hash, but in four independent lanes, so a save is
 * not bound by one multiply chain (it was a quarter of a save's time). A
 * checksum against corruption and truncation, not an authenticator. */
/* Fed in pieces by a streamed save: the 32-byte blocks, then the last
 * n % 32 bytes, give the same value whatever the pieces were. */
typedef struct hstate_s {
    uint64_t h[4];
    unsigned char tail[32];
    size_t ntail;
} hstate_t;

static void hash_init(hstate_t *s, size_t n)
{
    s->h[0] = 0xcbf29ce484222325ull ^ n;
    s->h[1] = 0x84222325cbf29ce4ull;
    s->h[2] = 0x9e3779b97f4a7c15ull;
    s->h[3] = 0xbf58476d1ce4e5b9ull;
    s->ntail = 0;
}

static void hash_blocks(uint64_t h[4], const unsigned char *p, size_t nblocks)
{
    /* The lanes in locals: through h, every byte store the compiler cannot
     * rule out aliasing p reloads them (3x slower). */
    uint64_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (size_t i = 0; i < nblocks * 32; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        a = (a ^ w[0]) * 0x100000001b3ull;
        b = (b ^ w[1]) * 0x100000001b3ull;
        c = (c ^ w[2]) * 0x100000001b3ull;
        d = (d ^ w[3]) * 0x100000001b3ull;
        a ^= a >> 29;
        b ^= b >> 29;
        c ^= c >> 29;
        d ^= d >> 29;
    }
    h[0] = a;
    h[1] = b;
    h[2] = c;
    h[3] = d;
}

static void hash_feed(hstate_t *s, const unsigned char *p, size_t n)
{
    if (s->ntail > 0) {
        size_t take = 32 - s->ntail < n ? 32 - s->ntail : n;
        memcpy(s->tail + s->ntail, p, take);
        s->ntail += take;
        p += take;
        n -= take;
        if (s->ntail < 32)
            return;
        hash_blocks(s->h, s->tail, 1);
        s->ntail = 0;
    }
    hash_blocks(s->h, p, n / 32);
    memcpy(s->tail, p + n / 32 * 32, n % 32);
    s->ntail = n % 32;
}

static uint64_t hash_final(hstate_t *s)
{
    for (size_t i = 0; i < s->ntail; i++)
        s->h[0] = (s->h[0] ^ s->tail[i]) * 0x100000001b3ull;
    uint64_t r = s->h[0];
    for (int k = 1; k < 4; k++)
        r = (r ^ s->h[k]) * 0x100000001b3ull ^ (r >> 31);
    return r ^ (r >> 32);
}

uint64_t ljs__snapshot_hash(const unsigned char *p, size_t n)
{
    hstate_t s;
    hash_init(&s, n);
    hash_feed(&s, p, n);
    return hash_final(&s);
}

/* ---- writing ------------------------------------------------------------------ */

/* The exact size is computed first, so the body is written with plain
 * stores into one allocation (bench: snapshot); a save to a file streams
 * through a small buffer instead (`f` set): when it fills, its bytes are
 * hashed and written, so the file is written in one pass over the world
 * without a copy of it in memory. */
typedef struct wbuf_s {
    unsigned char *p, *end, *base;
    FILE *f;     /* streaming: where full buffers go */
    hstate_t *h; /* streaming: the body's running hash */
    size_t out;  /* streaming: bytes written so far */
    int failed;  /* streaming: a write failed */
} wbuf_t;

static void flush(wbuf_t *b)
{
    size_t n = (size_t)(b->p - b->base);
    hash_feed(b->h, b->base, n);
    if (!b->failed && fwrite(b->base, 1, n, b->f) != n)
        b->failed = 1;
    b->out += n;
    b->p = b->base;
}

/* Fixed-width little-endian integers, whatever the host's byte order. On a
 * little-endian host it is one memcpy (a single store); the byte loop with
 * a variable shift was 40% of a save (perf, bench: snapshot). */
static inline void put_le(wbuf_t *b, uint64_t v, int bytes)
{
    if (__builtin_expect(b->end - b->p < bytes, 0)) /* never in memory: sized exactly */
        flush(b);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(b->p, &v, (size_t)bytes);
#else
    for (int i = 0; i < bytes; i++)
        b->p[i] = (unsigned char)(v >> (8 * i));
#endif
    b->p += bytes;
}

static void put(wbuf_t *b, const void *src, size_t n)
{
    const unsigned char *s = src;
    while ((size_t)(b->end - b->p) < n) { /* streaming only */
        size_t room = (size_t)(b->end - b->p);
        memcpy(b->p, s, room);
        b->p += room;
        s += room;
        n -= room;
        flush(b);
    }
    memcpy(b->p, s, n);
    b->p += n;
}

static void put_str(wbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    put_le(b, n, 2);
    put(b, s, n);
}

static size_t scalar_size(const ljs__world_t *w, ljs_type_t t, ljs__value_t v)
{
    size_t n = 8;
    if (t == LJS_TSTRING)
        (void)ljs__strings_bytes(&w->strings, (uint32_t)v.i, &n), n += 4;
    return n;
}

/* Bytes of the value of field fd at slot i. */
static size_t value_size(const ljs__world_t *w, const ljs__field_t *fd, uint32_t i)
{
    if (fd->type != LJS_TLIST)
        return scalar_size(w, fd->type, fd->cur[i]);
    size_t n = 2;
    for (int64_t e = 0; e < fd->cur[i].i; e++)
        n += scalar_size(w, fd->elem, fd->lcur[(size_t)i * fd->maxlen + (size_t)e]);
    return n;
}

static void put_scalar(wbuf_t *b, const ljs__world_t *w, ljs_type_t t, ljs__value_t v)
{
    if (t == LJS_TSTRING) {
        size_t n;
        const char *p = ljs__strings_bytes(&w->strings, (uint32_t)v.i, &n);
        put_le(b, n, 4);
        put(b, p, n);
        return;
    }
    uint64_t bits;
    memcpy(&bits, &v, 8);
    put_le(b, bits, 8);
}

static void put_value(wbuf_t *b, const ljs__world_t *w, const ljs__field_t *fd, uint32_t i)
{
    if (fd->type != LJS_TLIST) {
        put_scalar(b, w, fd->type, fd->cur[i]);
        return;
    }
    put_le(b, (uint64_t)fd->cur[i].i, 2);
    for (int64_t e = 0; e < fd->cur[i].i; e++)
        put_scalar(b, w, fd->elem, fd->lcur[(size_t)i * fd->maxlen + (size_t)e]);
}

static size_t body_size(const ljs_runtime_t *rt)
{
    const ljs__world_t *w = &rt->world;
    size_t n = 8 + 4 + 4 + (size_t)w->nslots * 5 + 4 + (size_t)w->nfree * 4 + 4;
    for (uint32_t t = 0; t < w->ntags; t++)
        n += 2 + strlen(w->tag_names[t]);
    n += (size_t)w->live * 8 + 4;
    for (uint32_t f = 0; f < w->nfields; f++) {
        const ljs__field_t *fd = &w->fields[f];
        n += 2 + strlen(fd->name) + 1 + (fd->type == LJS_TLIST ? 3 : 0) + w->live;
        if (fd->type == LJS_TNUMBER || fd->type == LJS_TINTEGER || fd->type == LJS_TBOOLEAN ||
            fd->type == LJS_TENTITY) {
            for (uint32_t i = 0; i < w->nslots; i++)
                n += w->alive[i] && fd->present[i] ? 8 : 0;
        } else {
            for (uint32_t i = 0; i < w->nslots; i++)
                n += w->alive[i] && fd->present[i] ? value_size(w, fd, i) : 0;
        }
    }
    n += 4;
    for (uint32_t s = 0; s < rt->nscripts; s++)
        n += 2 + (rt->scripts[s].used ? strlen(rt->scripts[s].name) : 0);
    for (uint32_t i = 0; i < w->nslots; i++)
        n += w->alive[i] ? 4 + (size_t)w->escripts[i].n * 4 : 0;
    n += 4;
    for (size_t k = 0; k < rt->events.n; k++)
        n += 24 + rt->events.msgs[k].len;
    return n;
}

/* A fixed-size field's column (u8 present [+ 8 bytes] per live slot): the
 * bulk of a save, so runs of slots that surely fit the buffer (9 bytes
 * each) are written without a room check per value. */
static void put_plain(wbuf_t *b, const ljs__world_t *w, const ljs__field_t *fd)
{
    uint32_t i = 0;
    while (i < w->nslots) {
        size_t fit = (size_t)(b->end - b->p) / 9;
        if (fit == 0) { /* one slot the checked way (flushes when streaming) */
            if (w->alive[i]) {
                put_le(b, fd->present[i], 1);
                if (fd->present[i])
                    put(b, &fd->cur[i], 8);
            }
            i++;
            continue;
        }
        uint32_t stop = w->nslots - i < fit ? w->nslots : i + (uint32_t)fit;
        unsigned char *p = b->p;
        for (; i < stop; i++) {
            if (!w->alive[i])
                continue;
            unsigned char pr = fd->present[i];
            *p++ = pr;
            if (pr) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                memcpy(p, &fd->cur[i], 8);
#else
                uint64_t bits;
                memcpy(&bits, &fd->cur[i], 8);
                for (int k = 0; k < 8; k++)
                    p[k] = (unsigned char)(bits >> (8 * k));
#endif
                p += 8;
            }
        }
        b->p = p;
    }
}

static void write_body(const ljs_runtime_t *rt, wbuf_t *b)
{
    const ljs__world_t *w = &rt->world;
    put_le(b, rt->frame, 8);
    put_le(b, rt->host_seq, 4);
    put_le(b, w->nslots, 4);
    for (uint32_t i = 0; i < w->nslots; i++) {
        put_le(b, w->gen[i], 4);
        put_le(b, w->alive[i], 1);
    }
    put_le(b, w->nfree, 4);
    for (uint32_t i = 0; i < w->nfree; i++)
        put_le(b, w->free_slots[i], 4);
    put_le(b, w->ntags, 4);
    for (uint32_t t = 0; t < w->ntags; t++)
        put_str(b, w->tag_names[t]);
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->alive[i])
            put_le(b, w->tags[i], 8);
    put_le(b, w->nfields, 4);
    for (uint32_t f = 0; f < w->nfields; f++) {
        const ljs__field_t *fd = &w->fields[f];
        put_str(b, fd->name);
        put_le(b, (uint64_t)fd->type, 1);
        if (fd->type == LJS_TLIST) {
            put_le(b, (uint64_t)fd->elem, 1);
            put_le(b, fd->maxlen, 2);
        }
        int plain = fd->type != LJS_TSTRING && fd->type != LJS_TLIST;
        if (plain) {
            put_plain(b, w, fd);
            continue;
        }
        for (uint32_t i = 0; i < w->nslots; i++) {
            if (!w->alive[i])
                continue;
            put_le(b, fd->present[i], 1);
            if (fd->present[i] && plain) {
                uint64_t bits;
                memcpy(&bits, &fd->cur[i], 8);
                put_le(b, bits, 8);
            } else if (fd->present[i]) {
                put_value(b, w, fd, i);
            }
        }
    }
    /* Every loaded script by name, indexed by slot id (unused slots get an
     * empty name and are never referenced). */
    put_le(b, rt->nscripts, 4);
    for (uint32_t s = 0; s < rt->nscripts; s++)
        put_str(b, rt->scripts[s].used ? rt->scripts[s].name : "");
    for (uint32_t i = 0; i < w->nslots; i++) {
        if (!w->alive[i])
            continue;
        put_le(b, w->escripts[i].n, 4);
        for (uint32_t k = 0; k < w->escripts[i].n; k++)
            put_le(b, w->escripts[i].ids[k], 4);
    }
    const ljs__msgbuf_t *ev = &rt->events;
    put_le(b, ev->n, 4);
    for (size_t k = 0; k < ev->n; k++) {
        const ljs__msg_t *m = &ev->msgs[k];
        put_le(b, m->target, 8);
        put_le(b, m->sender, 8);
        put_le(b, m->seq, 4);
        put_le(b, m->len, 4);
        put(b, ev->bytes + m->off, m->len);
    }
}

static void put_header(unsigned char *at, size_t body, uint64_t hash)
{
    wbuf_t h = {at, at + HEADER_BYTES, NULL, NULL, NULL, 0, 0};
    put(&h, MAGIC, 8);
    put_le(&h, VERSION, 4);
    put_le(&h, 0, 4);
    put_le(&h, body, 8);
    put_le(&h, hash, 8);
}

int ljs_world_save(const ljs_runtime_t *rt, void **out, size_t *len)
{
    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    LJS_CHECK_OWNER(rt, "ljs_world_save");
    if (rt == NULL || out == NULL || len == NULL)
        return ljs__error(LJS_EINVAL, "ljs_world_save: NULL argument");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_world_save: not allowed while a frame is running");
    size_t body = body_size(rt);
    unsigned char *data = ljs__malloc(HEADER_BYTES + body);
    if (data == NULL)
        return ljs__error(LJS_ENOMEM, "ljs_world_save: out of memory (%zu bytes)", HEADER_BYTES + body);
    wbuf_t b = {data + HEADER_BYTES, data + HEADER_BYTES + body, NULL, NULL, NULL, 0, 0};
    write_body(rt, &b);
    LJS_ASSERT(b.p == data + HEADER_BYTES + body);
    put_header(data, body, ljs__snapshot_hash(data + HEADER_BYTES, body));
    *out = data;
    *len = HEADER_BYTES + body;
    return LJS_OK;
}

void ljs_world_free(void *data)
{
    ljs__free(data);
}

/* ---- reading ------------------------------------------------------------------ */

typedef struct rbuf_s {
    const unsigned char *p;
    size_t n, at;
    int bad;
} rbuf_t;

static inline uint64_t get_le(rbuf_t *r, int bytes)
{
    if (r->bad || r->n - r->at < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, r->p + r->at, (size_t)bytes); /* one load: the format is little-endian too */
#else
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[r->at + (size_t)i] << (8 * i);
#endif
    r->at += (size_t)bytes;
    return v;
}

static const unsigned char *get_bytes(rbuf_t *r, size_t n)
{
    if (r->bad || r->n - r->at < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p + r->at;
    r->at += n;
    return p;
}

/* A name: 1..MAX_NAME bytes, no NUL; copied into out. */
static int get_name(rbuf_t *r, char out[MAX_NAME + 1], int may_be_empty)
{
    size_t n = (size_t)get_le(r, 2);
    const unsigned char *s = get_bytes(r, n);
    if (s == NULL || n > MAX_NAME || (n == 0 && !may_be_empty) || memchr(s, 0, n) != NULL)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* An event's bytes: one message in event.c's layout, checked by the codec
 * itself (bounds-checked and fuzzed: one definition of "well formed"), with
 * a name ljs_send and send() would accept. */
static int valid_event(const unsigned char *p, size_t len)
{
    ljs__msg_t m = {0, 0, 0, LJS__MSG_EVENT, 0, len};
    ljs__msgbuf_t one = {&m, 1, 1, (unsigned char *)p, len, len};
    if (ljs__msg_check(&one, &m) != 0)
        return 0;
    return ljs__event_name_ok(ljs__msg_name(&one, &m), ljs__msg_name_len(&one, &m));
}

typedef struct parsed_s {
    uint64_t frame;
    uint32_t host_seq;
    uint32_t nslots, nfree, nlive;
    uint32_t *gen, *free_slots;
    uint8_t *alive;
    uint32_t ntags;
    char tag_names[LJS_MAX_TAGS][MAX_NAME + 1];
    size_t tags_at; /* offset of the live slots' tag bits */
    uint32_t nfields;
    size_t fields_at;
    size_t *field_at; /* offset of each field's name: apply does not walk the values twice */
    uint32_t nscripts;
    uint32_t *script_ids; /* snapshot script index -> this runtime's id (UINT32_MAX: unused) */
    size_t bindings_at;
    uint32_t nevents;
    size_t events_at;
} parsed_t;

static void parsed_free(parsed_t *ps)
{
    ljs__free(ps->gen);
    ljs__free(ps->free_slots);
    ljs__free(ps->alive);
    ljs__free(ps->script_ids);
    ljs__free(ps->field_at);
}

static int corrupt(const char *what)
{
    return ljs__error(LJS_EINVAL, "ljs_world_load: corrupt or truncated snapshot (%s)", what);
}

static int parse_slots(rbuf_t *r, parsed_t *ps)
{
    ps->nslots = (uint32_t)get_le(r, 4);
    if (r->bad || ps->nslots > MAX_SLOTS || (size_t)ps->nslots * 5 > r->n - r->at)
        return corrupt("slot count");
    ps->gen = ljs__malloc(sizeof *ps->gen * (ps->nslots + 1u));
    ps->alive = ljs__calloc(ps->nslots + 1u, 1);
    ps->free_slots = ljs__malloc(sizeof *ps->free_slots * (ps->nslots + 1u));
    uint8_t *seen = ljs__calloc(ps->nslots + 1u, 1);
    if (ps->gen == NULL || ps->alive == NULL || ps->free_slots == NULL || seen == NULL) {
        ljs__free(seen);
        return ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
    }
    for (uint32_t i = 0; i < ps->nslots; i++) {
        ps->gen[i] = (uint32_t)get_le(r, 4);
        ps->alive[i] = (uint8_t)get_le(r, 1);
        if (ps->gen[i] == 0 || ps->gen[i] > 0x7fffffffu || ps->alive[i] > 1)
            r->bad = 1;
        ps->nlive += ps->alive[i];
    }
    ps->nfree = (uint32_t)get_le(r, 4);
    int ok = !r->bad && ps->nfree == ps->nslots - ps->nlive;
    for (uint32_t k = 0; ok && k < ps->nfree; k++) {
        uint32_t i = (uint32_t)get_le(r, 4);
        ok = !r->bad && i < ps->nslots && !ps->alive[i] && !seen[i];
        if (ok) {
            seen[i] = 1;
            ps->free_slots[k] = i;
        }
    }
    ljs__free(seen);
    return ok ? LJS_OK : corrupt("slots or free list");
}

static int parse_tags(rbuf_t *r, parsed_t *ps)
{
    ps->ntags = (uint32_t)get_le(r, 4);
    if (r->bad || ps->ntags > LJS_MAX_TAGS)
        return corrupt("tag count");
    for (uint32_t t = 0; t < ps->ntags; t++) {
        if (get_name(r, ps->tag_names[t], 0) != 0)
            return corrupt("tag name");
        for (uint32_t u = 0; u < t; u++)
            if (!strcmp(ps->tag_names[u], ps->tag_names[t]))
                return corrupt("duplicate tag name");
    }
    ps->tags_at = r->at;
    uint64_t allowed = ps->ntags == 64 ? UINT64_MAX : (1ull << ps->ntags) - 1;
    for (uint32_t k = 0; k < ps->nlive; k++)
        if (get_le(r, 8) & ~allowed)
            return corrupt("tag bits");
    return r->bad ? corrupt("tags") : LJS_OK;
}

static int scalar_type(uint32_t t)
{
    return t == LJS_TNUMBER || t == LJS_TINTEGER || t == LJS_TBOOLEAN || t == LJS_TSTRING || t == LJS_TENTITY;
}

static int get_ftype(rbuf_t *r, ljs__ftype_t *t)
{
    uint32_t type = (uint32_t)get_le(r, 1);
    t->type = (ljs_type_t)type;
    t->elem = LJS_TNIL;
    t->maxlen = 0;
    if (type == LJS_TLIST) {
        uint32_t elem = (uint32_t)get_le(r, 1);
        t->elem = (ljs_type_t)elem;
        t->maxlen = (uint32_t)get_le(r, 2);
        return !r->bad && scalar_type(elem) && t->maxlen >= 1 && t->maxlen <= LJS_LIST_MAX ? 0 : -1;
    }
    return !r->bad && scalar_type(type) ? 0 : -1;
}

static int same_ftype(ljs__ftype_t a, ljs__ftype_t b)
{
    return a.type == b.type && (a.type != LJS_TLIST || (a.elem == b.elem && a.maxlen == b.maxlen));
}

/* Check one scalar of type t: booleans 0/1, entities 0 or entity-shaped,
 * strings at most LJS_STRING_MAX bytes, all inside the body. */
static int check_scalar(rbuf_t *r, ljs_type_t t)
{
    if (t == LJS_TSTRING) {
        uint64_t n = get_le(r, 4);
        return n <= LJS_STRING_MAX && get_bytes(r, (size_t)n) != NULL ? 0 : -1;
    }
    uint64_t v = get_le(r, 8);
    if (t == LJS_TBOOLEAN && v > 1)
        return -1;
    if (t == LJS_TENTITY && v != 0 && ((v >> 32) == 0 || (v >> 63) != 0))
        return -1;
    return r->bad ? -1 : 0;
}

static int check_value(rbuf_t *r, ljs__ftype_t t)
{
    if (t.type != LJS_TLIST)
        return check_scalar(r, t.type);
    uint64_t n = get_le(r, 2);
    if (r->bad || n > t.maxlen)
        return -1;
    for (uint64_t e = 0; e < n; e++)
        if (check_scalar(r, t.elem) != 0)
            return -1;
    return 0;
}

/* Read one checked scalar (strings interned). Returns 0 or -1 (memory). */
static int read_scalar(rbuf_t *r, ljs__world_t *w, ljs_type_t t, ljs__value_t *v)
{
    if (t == LJS_TSTRING) {
        size_t n = (size_t)get_le(r, 4);
        const unsigned char *p = get_bytes(r, n);
        v->i = ljs__strings_intern(&w->strings, (const char *)p, n);
        return v->i < 0 ? -1 : 0;
    }
    uint64_t bits = get_le(r, 8);
    memcpy(v, &bits, 8);
    return 0;
}

/* The name (2-byte length, bytes) at body offset `at`, already checked. */
static void name_at(const unsigned char *body, size_t at, const unsigned char **s, size_t *n)
{
    rbuf_t r = {body, SIZE_MAX, at, 0};
    *n = (size_t)get_le(&r, 2);
    *s = get_bytes(&r, *n);
}

typedef struct hashed_s {
    uint64_t h;
    uint32_t f;
} hashed_t;

static int cmp_hashed(const void *x, const void *y)
{
    const hashed_t *a = x, *b = y;
    return (a->h > b->h) - (a->h < b->h);
}

/* 1 if two fields share a name (a snapshot never holds one twice; loading
 * one would declare a name with two types). Sorted by hash: no O(n^2)
 * compare of 4096 names. -1: out of memory. */
static int duplicate_names(const unsigned char *body, const parsed_t *ps)
{
    hashed_t *hs = ljs__malloc(sizeof *hs * (ps->nfields + 1u));
    if (hs == NULL)
        return -1;
    for (uint32_t f = 0; f < ps->nfields; f++) {
        const unsigned char *s;
        size_t n;
        name_at(body, ps->field_at[f], &s, &n);
        hs[f] = (hashed_t){ljs__snapshot_hash(s, n), f};
    }
    ljs__sort(hs, ps->nfields, sizeof *hs, cmp_hashed);
    int dup = 0;
    for (uint32_t k = 1; k < ps->nfields && !dup; k++) {
        const unsigned char *a, *b;
        size_t na, nb;
        name_at(body, ps->field_at[hs[k - 1].f], &a, &na);
        name_at(body, ps->field_at[hs[k].f], &b, &nb);
        dup = hs[k - 1].h == hs[k].h && na == nb && memcmp(a, b, na) == 0;
    }
    ljs__free(hs);
    return dup;
}

/* Fields: names unique, types known and equal to the runtime's where it
 * declares the name too. */
static int parse_fields(rbuf_t *r, parsed_t *ps, const ljs__world_t *w)
{
    ps->nfields = (uint32_t)get_le(r, 4);
    if (r->bad || ps->nfields > LJS_MAX_FIELDS)
        return corrupt("field count");
    ps->fields_at = r->at;
    ps->field_at = ljs__malloc(sizeof *ps->field_at * (ps->nfields + 1u));
    if (ps->field_at == NULL)
        return ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
    for (uint32_t f = 0; f < ps->nfields; f++) {
        char name[MAX_NAME + 1];
        ps->field_at[f] = r->at;
        if (get_name(r, name, 0) != 0)
            return corrupt("field name");
        ljs__ftype_t t;
        if (get_ftype(r, &t) != 0)
            return corrupt("field type");
        int have = ljs__world_field_find(w, name);
        if (have >= 0 && !same_ftype(ljs__field_ftype(&w->fields[have]), t)) {
            char had[64], saved[64];
            return ljs__error(LJS_ETYPE,
                              "ljs_world_load: field '%s' is %s in the snapshot but %s in this runtime", name,
                              ljs__ftype_name(t, saved, sizeof saved),
                              ljs__ftype_name(ljs__field_ftype(&w->fields[have]), had, sizeof had));
        }
        for (uint32_t k = 0; k < ps->nlive && !r->bad; k++) {
            uint64_t present = get_le(r, 1);
            if (present > 1 || (present == 1 && check_value(r, t) != 0))
                return corrupt("field value");
        }
    }
    if (r->bad)
        return corrupt("fields");
    int dup = duplicate_names(r->p, ps);
    if (dup < 0)
        return ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
    return dup ? corrupt("a field name given twice") : LJS_OK;
}

static int parse_scripts(rbuf_t *r, parsed_t *ps, const ljs_runtime_t *rt)
{
    ps->nscripts = (uint32_t)get_le(r, 4);
    if (r->bad || ps->nscripts > (1u << 20))
        return corrupt("script count");
    ps->script_ids = ljs__malloc(sizeof *ps->script_ids * (ps->nscripts + 1u));
    if (ps->script_ids == NULL)
        return ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
    for (uint32_t s = 0; s < ps->nscripts; s++) {
        char name[MAX_NAME + 1];
        if (get_name(r, name, 1) != 0)
            return corrupt("script name");
        ps->script_ids[s] = UINT32_MAX;
        if (name[0] == '\0')
            continue;
        ljs_script_t h;
        if (ljs_script_find(rt, name, &h) != LJS_OK)
            return ljs__error(LJS_ENOENT,
                              "ljs_world_load: the snapshot runs script '%s', which is not loaded", name);
        ps->script_ids[s] = h.id;
    }
    ps->bindings_at = r->at;
    /* stamp[s] = 1 + the live slot that last bound s: a script bound twice
     * to one entity is refused without an O(n^2) scan. */
    uint32_t *stamp = ljs__calloc(ps->nscripts + 1u, sizeof *stamp);
    if (stamp == NULL)
        return ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
    int rc = LJS_OK;
    for (uint32_t k = 0; k < ps->nlive && rc == LJS_OK; k++) {
        uint32_t n = (uint32_t)get_le(r, 4);
        if (r->bad || n > ps->nscripts)
            rc = corrupt("bindings");
        for (uint32_t j = 0; j < n && rc == LJS_OK; j++) {
            uint32_t s = (uint32_t)get_le(r, 4);
            if (r->bad || s >= ps->nscripts || ps->script_ids[s] == UINT32_MAX || stamp[s] == k + 1)
                rc = corrupt("binding");
            else
                stamp[s] = k + 1;
        }
    }
    ljs__free(stamp);
    return rc;
}

static int parse_events(rbuf_t *r, parsed_t *ps)
{
    ps->nevents = (uint32_t)get_le(r, 4);
    ps->events_at = r->at;
    for (uint32_t k = 0; k < ps->nevents && !r->bad; k++) {
        (void)get_le(r, 8);
        (void)get_le(r, 8);
        (void)get_le(r, 4);
        uint32_t len = (uint32_t)get_le(r, 4);
        const unsigned char *p = len <= MAX_EVENT_BYTES ? get_bytes(r, len) : NULL;
        if (p == NULL || !valid_event(p, len))
            return corrupt("event");
    }
    if (r->bad)
        return corrupt("events");
    return r->at == r->n ? LJS_OK : corrupt("bytes after the end");
}

static int parse(const ljs_runtime_t *rt, const unsigned char *data, size_t len, parsed_t *ps)
{
    rbuf_t h = {data, len, 0, 0};
    const unsigned char *magic = get_bytes(&h, 8);
    if (magic == NULL || memcmp(magic, MAGIC, 8) != 0)
        return corrupt("not a world snapshot");
    uint32_t version = (uint32_t)get_le(&h, 4), flags = (uint32_t)get_le(&h, 4);
    uint64_t body = get_le(&h, 8), hash = get_le(&h, 8);
    if (h.bad)
        return corrupt("header");
    if (version != VERSION || flags != 0)
        return ljs__error(LJS_EINVAL, "ljs_world_load: snapshot format %u, this ljs reads format %u", version,
                          VERSION);
    if (body != len - HEADER_BYTES)
        return corrupt("length");
    if (ljs__snapshot_hash(data + HEADER_BYTES, (size_t)body) != hash)
        return corrupt("checksum");
    rbuf_t r = {data + HEADER_BYTES, (size_t)body, 0, 0};
    ps->frame = get_le(&r, 8);
    ps->host_seq = (uint32_t)get_le(&r, 4);
    int rc = parse_slots(&r, ps);
    if (rc == LJS_OK)
        rc = parse_tags(&r, ps);
    if (rc == LJS_OK)
        rc = parse_fields(&r, ps, &rt->world);
    if (rc == LJS_OK)
        rc = parse_scripts(&r, ps, rt);
    if (rc == LJS_OK)
        rc = parse_events(&r, ps);
    return rc;
}

/* ---- applying (everything already checked) ---------------------------------- */

static int apply(ljs_runtime_t *rt, const unsigned char *body, const parsed_t *ps)
{
    ljs__world_t *w = &rt->world;
    /* A refusal before the world is replaced forgets the names declared
     * so far: a refused load leaves nothing behind. */
    uint32_t nfields0 = w->nfields, ntags0 = w->ntags;
    uint32_t tag_bit[LJS_MAX_TAGS];
    for (uint32_t t = 0; t < ps->ntags; t++) {
        int bit = ljs__world_tag_bit(w, ps->tag_names[t], 1);
        if (bit < 0) {
            ljs__world_forget_since(w, nfields0, ntags0);
            return ljs__error(LJS_EFULL, "ljs_world_load: too many tag names (at most %d)", LJS_MAX_TAGS);
        }
        tag_bit[t] = (uint32_t)bit;
    }
    rbuf_t r = {body, SIZE_MAX, 0, 0};
    uint32_t *field_ids = ljs__malloc(sizeof *field_ids * (ps->nfields + 1u));
    uint32_t *live = ljs__malloc(sizeof *live * (ps->nlive + 1u));
    if (field_ids == NULL || live == NULL) {
        ljs__free(field_ids);
        ljs__free(live);
        ljs__world_forget_since(w, nfields0, ntags0);
        return ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
    }
    int rc = LJS_OK;
    for (uint32_t f = 0; f < ps->nfields && rc == LJS_OK; f++) {
        char name[MAX_NAME + 1];
        r.at = ps->field_at[f];
        (void)get_name(&r, name, 0);
        ljs__ftype_t t;
        (void)get_ftype(&r, &t);
        int id = ljs__world_field_declare_t(w, name, t);
        if (id < 0)
            rc = ljs__error(id, "ljs_world_load: cannot declare field '%s'", name);
        field_ids[f] = (uint32_t)id;
    }
    if (rc != LJS_OK) {
        ljs__world_forget_since(w, nfields0, ntags0);
        ljs__free(field_ids);
        ljs__free(live);
        return rc;
    }
    /* From here on the world is replaced: every entity goes (unbinding its
     * scripts), then the saved slots come back. */
    if (rc == LJS_OK)
        ljs__script_unbind_all(rt);
    if (rc == LJS_OK)
        rc = ljs__world_restore_slots(w, ps->nslots, ps->gen, ps->alive, ps->free_slots, ps->nfree);
    uint32_t nl = 0;
    for (uint32_t i = 0; i < ps->nslots && rc == LJS_OK; i++)
        if (ps->alive[i])
            live[nl++] = i;
    /* The saved values first, then the bindings (attaching fills only the
     * fields still absent with the script's defaults: a field this
     * runtime's version of a script added since the save), then the saved
     * tags over the scripts' tag sets. Each value is written once. */
    r.at = ps->fields_at;
    for (uint32_t f = 0; f < ps->nfields && rc == LJS_OK; f++) {
        char name[MAX_NAME + 1];
        (void)get_name(&r, name, 0);
        ljs__ftype_t t;
        (void)get_ftype(&r, &t);
        if (t.type != LJS_TLIST && t.type != LJS_TSTRING) {
            /* 8 bytes each, checked by the parse: stored as
             * ljs__world_field_put does, with the columns in locals (the
             * presence byte store may alias anything, so through the world
             * every pointer is reloaded: 1.7x slower, bench: snapshot). */
            const ljs__field_t *fd = &w->fields[field_ids[f]];
            ljs__value_t *cur = fd->cur, *work = fd->work;
            uint8_t *present = fd->present;
            for (uint32_t k = 0; k < nl; k++) {
                if (!get_le(&r, 1))
                    continue;
                uint64_t bits = get_le(&r, 8);
                memcpy(&cur[live[k]], &bits, 8);
                work[live[k]] = cur[live[k]];
                present[live[k]] = 1;
            }
            continue;
        }
        for (uint32_t k = 0; k < nl && rc == LJS_OK; k++) {
            if (!get_le(&r, 1))
                continue; /* restore_slots cleared every presence */
            ljs__value_t v, els[LJS_LIST_MAX];
            if (t.type != LJS_TLIST) {
                if (read_scalar(&r, w, t.type, &v) != 0)
                    rc = ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
                else
                    ljs__world_field_put(w, field_ids[f], live[k], v);
                continue;
            }
            uint32_t n = (uint32_t)get_le(&r, 2);
            for (uint32_t e = 0; e < n && rc == LJS_OK; e++)
                if (read_scalar(&r, w, t.elem, &els[e]) != 0)
                    rc = ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
            ljs__world_list_put(w, field_ids[f], live[k], els, n);
        }
    }
    r.at = ps->bindings_at;
    for (uint32_t k = 0; k < nl && rc == LJS_OK; k++) {
        uint32_t n = (uint32_t)get_le(&r, 4);
        for (uint32_t j = 0; j < n && rc == LJS_OK; j++)
            rc = ljs__script_attach(rt, live[k], ps->script_ids[get_le(&r, 4)]);
    }
    r.at = ps->tags_at;
    for (uint32_t k = 0; k < nl && rc == LJS_OK; k++) {
        uint64_t saved = get_le(&r, 8), tags = 0;
        for (uint32_t t = 0; t < ps->ntags; t++)
            if (saved & (1ull << t))
                tags |= 1ull << tag_bit[t];
        ljs__world_set_tags(w, live[k], tags);
    }
    ljs__msgbuf_clear(&rt->events);
    r.at = ps->events_at;
    for (uint32_t k = 0; k < ps->nevents && rc == LJS_OK; k++) {
        ljs__msg_t m = {0};
        m.target = get_le(&r, 8);
        m.sender = get_le(&r, 8);
        m.seq = (uint32_t)get_le(&r, 4);
        m.kind = LJS__MSG_EVENT;
        m.len = (size_t)get_le(&r, 4);
        ljs__msgbuf_t one = {&m, 1, 1, (unsigned char *)body + r.at, m.len, m.len};
        m.off = 0;
        r.at += m.len;
        if (ljs__msgbuf_append(&rt->events, &one, &m) != 0)
            rc = ljs__error(LJS_ENOMEM, "ljs_world_load: out of memory");
    }
    rt->frame = ps->frame;
    rt->host_seq = ps->host_seq;
    rt->view_epoch++;
    ljs__free(field_ids);
    ljs__free(live);
    return rc;
}

int ljs_world_load(ljs_runtime_t *rt, const void *data, size_t len)
{
    LJS_CHECK_OWNER(rt, "ljs_world_load");
    if (rt == NULL || (data == NULL && len > 0))
        return ljs__error(LJS_EINVAL, "ljs_world_load: NULL argument");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_world_load: not allowed while a frame is running");
    if (len < HEADER_BYTES)
        return corrupt("shorter than the header");
    parsed_t ps;
    memset(&ps, 0, sizeof ps);
    int rc = parse(rt, data, len, &ps);
    if (rc == LJS_OK)
        rc = apply(rt, (const unsigned char *)data + HEADER_BYTES, &ps);
    parsed_free(&ps);
    return rc;
}

/* ---- files ------------------------------------------------------------------------ */

int ljs_world_save_file(const ljs_runtime_t *rt, const char *path)
{
    LJS_CHECK_OWNER(rt, "ljs_world_save_file");
    if (path == NULL)
        return ljs__error(LJS_EINVAL, "ljs_world_save_file: NULL path");
    if (rt == NULL)
        return ljs__error(LJS_EINVAL, "ljs_world_save_file: NULL runtime");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_world_save_file: not allowed while a frame is running");
    /* Streamed: header placeholder, the body through a 256 KiB buffer
     * (hashed as it goes), then the real header. Temp file + rename: a
     * crash mid-write never leaves half a save. */
    enum { CHUNK = 256 * 1024 };
    size_t body = body_size(rt);
    unsigned char *buf = ljs__malloc(CHUNK);
    if (buf == NULL)
        return ljs__error(LJS_ENOMEM, "ljs_world_save_file: out of memory");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    unsigned char head[HEADER_BYTES] = {0};
    int ok = f != NULL && fwrite(head, 1, HEADER_BYTES, f) == HEADER_BYTES;
    hstate_t hs;
    hash_init(&hs, body);
    wbuf_t b = {buf, buf + CHUNK, buf, f, &hs, 0, 0};
    if (ok) {
        write_body(rt, &b);
        flush(&b);
        LJS_ASSERT(b.out == body);
        put_header(head, body, hash_final(&hs));
        ok = !b.failed && fseek(f, 0, SEEK_SET) == 0 && fwrite(head, 1, HEADER_BYTES, f) == HEADER_BYTES;
    }
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    ljs__free(buf);
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return ljs__error(LJS_EIO, "ljs_world_save_file: cannot write '%s': %s", path, strerror(e));
    }
    return LJS_OK;
}

int ljs_world_load_file(ljs_runtime_t *rt, const char *path)
{
    LJS_CHECK_OWNER(rt, "ljs_world_load_file");
    if (path == NULL)
        return ljs__error(LJS_EINVAL, "ljs_world_load_file: NULL path");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ljs__error(LJS_ENOENT, "ljs_world_load_file: cannot open '%s': %s", path, strerror(errno));
    /* Sized by fstat and read in one go (a file that grows meanwhile is
     * read to its new end, in doubling steps). */
    struct stat st;
    size_t cap = fstat(fileno(f), &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 : (size_t)1 << 16;
    size_t n = 0;
    unsigned char *data = ljs__malloc(cap);
    while (data != NULL) {
        n += fread(data + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *q = ljs__realloc(data, cap * 2);
        if (q == NULL) {
            ljs__free(data);
            data = NULL;
            break;
        }
        data = q;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (data == NULL)
        return ljs__error(LJS_ENOMEM, "ljs_world_load_file: out of memory reading '%s'", path);
    if (err) {
        ljs__free(data);
        return ljs__error(LJS_EIO, "ljs_world_load_file: cannot read '%s'", path);
    }
    int rc = ljs_world_load(rt, data, n);
    ljs__free(data);
    return rc;
}
