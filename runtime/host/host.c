/* host.c - engine bindings: host functions, deferred calls, events to the
 * host, profiler hooks.
 *
 * Host functions. The runtime keeps a table of registered functions
 * (slots, each with a generation bumped when it is unregistered). Every
 * worker state holds, per namespace, a plain backing table of C closures
 * (upvalues: slot, generation, name) in the registry, and a frozen proxy of
 * it (state.c) stored in the sealed base table "ljs.base" as the global
 * `audio`. Scripts copy the base when they load, and read globals they lack
 * through the base (state.c), so a function or namespace added after they
 * loaded is visible to them; writes to a namespace are refused, so no
 * script can replace audio.play for another. A registration change
 * rebuilds every state's backing tables on that state's own worker
 * (affine jobs, between frames).
 *
 * A call converts its Lua arguments into ljs_value_t (strings borrowed from
 * the Lua stack, table pairs into a per-worker scratch array, keys sorted so
 * nothing depends on the state's string hashing), checks the declared
 * argument letters, then:
 * - parallel / read-only: calls the host function right there, on the
 *   worker; its results are copied into the call and pushed after it
 *   returns, and an error it returns is raised in the script (file:line of
 *   the caller), so host code never sees a lua_State nor a longjmp;
 * - deferred: copies the call (values, pairs, string bytes) into the
 *   worker's queue with (entity, per-entity sequence); after the frame's
 *   event phase and commit the owner sorts every worker's records by
 *   (entity, sequence) and runs them, so the host sees the same calls in
 *   the same order for any worker count. Sequences come from the same
 *   per-entity frame counters as events (world.h): unique per entity and
 *   frame, and an entity's calls never run concurrently.
 * A module's top level runs once per state, so a deferred call made there
 * is queued from worker 0's run only (the one that reads the metadata) and
 * runs when the load succeeds.
 *
 * Events sent to target 0 are moved by the frame's gather into this file's
 * buffer (frame number in the target field), sorted, and delivered at the
 * end of the frame or held for ljs_host_events_drain. */
#include "runtime/host/host.h"

#include "jobs/mem.h"

#include "runtime/error.h"
#include "runtime/lua/state.h"
#include "runtime/lua/watchdog.h"
#include "runtime/world/sort.h"

#include <lauxlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FNS 1024
#define MAX_ARGS 16
#define MAX_RETS 8
#define MAX_TABLE 256
#define NAME_MAX_PART 63

typedef struct hostfn_s {
    char name[2 * NAME_MAX_PART + 2];
    uint32_t nslen; /* length of the namespace part */
    ljs_safety_t safety;
    ljs_host_fn fn;
    void *ud;
    char args[2 * MAX_ARGS + 1]; /* "" = no check */
    uint32_t gen;
    int used;
} hostfn_t;

/* One queued deferred call; its values live in the queue's bytes at off:
 * ljs_value_t[nargs], ljs_pair_t[npairs], then string bytes, with pointers
 * stored as offsets from the record's start until dispatch. */
typedef struct drec_s {
    uint64_t entity;
    uint64_t call; /* the worker's call_seq: records of one script call are one run */
    uint32_t seq;
    uint32_t fn, gen;
    uint32_t script;
    uint32_t nargs, npairs;
    size_t off, len;
} drec_t;

typedef struct queue_s {
    drec_t *recs;
    size_t n, cap;
    unsigned char *bytes;
    size_t nbytes, bytes_cap;
} queue_t;

/* A worker's side: its queue and the scratch of the call in progress. */
typedef struct hostw_s {
    queue_t q;
    ljs_pair_t *pairs; /* table arguments of the call in progress */
    size_t pairs_cap;
    char *rbuf; /* string results of the call in progress */
    size_t rlen, rcap;
    uint64_t call_seq;  /* the script call the bound below is for */
    size_t call_bytes0; /* queue size when it began */
    uint64_t dropped;
    int depth; /* > 0 while this worker runs a host function (worker 0: the owner thread) */
} __attribute__((aligned(64))) hostw_t; /* one cache line apart: workers write their own */

/* A run: the consecutive records one script call queued on one worker,
 * in the order it made them. An entity's calls never overlap and take
 * their sequences from one counter, so sorting runs by (entity, first
 * sequence) orders every record by (entity, sequence), at the cost of
 * sorting calls instead of records (keys inline: no pointer chasing). */
typedef struct order_s {
    uint64_t entity;
    uint32_t seq;
    uint32_t worker;
    uint32_t first, count;
} order_t;

typedef struct prof_node_s {
    ljs_profiler_t p;
    struct prof_node_s *next;
} prof_node_t;

struct ljs__host_s {
    hostfn_t *fns;
    uint32_t nfns, cap; /* slots used or free */
    hostw_t *w;
    uint32_t nworkers;
    queue_t load; /* worker 0's calls from a module's top level */
    int loading;
    order_t *order;
    size_t order_cap;
    ljs__msgbuf_t events;
    ljs_host_event_fn ev_fn;
    void *ev_ud;
    ljs_pair_t *evpairs; /* decoded payload of the event being delivered */
    size_t evpairs_cap;
    prof_node_t *profs; /* every profiler ever set, freed at destroy */
    ljs_host_stats_t st;
};

struct ljs_call_s {
    const hostfn_t *f;
    ljs_value_t *args;
    int nargs;
    ljs_value_t rets[MAX_RETS];
    size_t roff[MAX_RETS]; /* string results: offset into rbuf */
    int nrets;
    hostw_t *hw;
    uint64_t entity;
    uint32_t worker;
    int deferred;
    char err[512];
};

/* ==== names ==================================================================== */

/* Globals a namespace must not shadow: the script API, the sandbox's
 * libraries and base functions, and the libraries it leaves out (a host
 * `os` or `debug` would read as the real thing). */
static const char *const reserved[] = {
    "send",         "spawn",        "destroy",        "query",  "log",       "rand",
    "frame",        "print",        "warn",           "get",    "set",       "require",
    "string",       "table",        "math",           "utf8",   "coroutine", "io",
    "os",           "debug",        "package",        "dofile", "loadfile",  "load",
    "_G",           "_ENV",         "_VERSION",       "assert", "error",     "ipairs",
    "pairs",        "next",         "pcall",          "xpcall", "select",    "tonumber",
    "tostring",     "type",         "rawget",         "rawset", "rawequal",  "rawlen",
    "setmetatable", "getmetatable", "collectgarbage", "self",   "ljs",       "bit32",
};

static int is_keyword(const char *s, size_t n)
{
    static const char *const kw[] = {"and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
                                     "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
                                     "repeat",   "return", "then", "true", "until",  "while"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strlen(kw[i]) == n && !memcmp(s, kw[i], n))
            return 1;
    return 0;
}

static int is_ident(const char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_PART || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return !is_keyword(s, n);
}

static int check_args_spec(const char *a)
{
    size_t n = 0;
    for (; *a; a++) {
        if (!strchr("nibseta", *a))
            return 0;
        if (a[1] == '?')
            a++;
        n++;
    }
    return n <= MAX_ARGS;
}

/* Validate a definition; fills the slot. Sets ljs_last_error. */
static int fill(hostfn_t *f, const ljs_host_def_t *def)
{
    if (def == NULL || def->name == NULL || def->fn == NULL)
        return ljs__error(LJS_EINVAL, "ljs_host_register: def, name and fn must be set");
    const char *name = def->name, *dot = strchr(name, '.');
    size_t len = strlen(name);
    if (dot == NULL || strchr(dot + 1, '.') != NULL || !is_ident(name, (size_t)(dot - name)) ||
        !is_ident(dot + 1, len - (size_t)(dot - name) - 1))
        return ljs__error(
            LJS_EINVAL,
            "ljs_host_register: bad name '%s' (expected namespace.function, each a Lua identifier "
            "of at most %d characters and not a keyword)",
            name, NAME_MAX_PART);
    size_t nslen = (size_t)(dot - name);
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == nslen && !memcmp(reserved[i], name, nslen))
            return ljs__error(
                LJS_EINVAL, "ljs_host_register: '%s': namespace '%s' is taken by the script API or a library",
                name, reserved[i]);
    if ((unsigned)def->safety > LJS_DEFERRED)
        return ljs__error(LJS_EINVAL, "ljs_host_register: '%s': bad safety class %d", name, (int)def->safety);
    if (def->args != NULL && !check_args_spec(def->args))
        return ljs__error(LJS_EINVAL,
                          "ljs_host_register: '%s': bad argument check '%s' (letters n i b s e t a, each "
                          "optionally followed by '?', at most %d)",
                          name, def->args, MAX_ARGS);
    memset(f, 0, sizeof *f);
    memcpy(f->name, name, len + 1);
    f->nslen = (uint32_t)nslen;
    f->safety = def->safety;
    f->fn = def->fn;
    f->ud = def->ud;
    if (def->args != NULL)
        snprintf(f->args, sizeof f->args, "%s", def->args);
    f->used = 1;
    return LJS_OK;
}

/* ==== process-wide registrations ================================================= */

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static hostfn_t *global_fns; /* guarded by global_lock */
static uint32_t global_n, global_cap;

static int find_in(const hostfn_t *fns, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (fns[i].used && !strcmp(fns[i].name, name))
            return (int)i;
    return -1;
}

static int global_register(const ljs_host_def_t *def)
{
    hostfn_t f;
    int rc = fill(&f, def);
    if (rc != LJS_OK)
        return rc;
    pthread_mutex_lock(&global_lock);
    if (find_in(global_fns, global_n, f.name) >= 0) {
        rc = ljs__error(LJS_EEXIST, "ljs_host_register: '%s' is already registered", f.name);
    } else if (global_n == MAX_FNS) {
        rc = ljs__error(LJS_EFULL, "ljs_host_register: more than %d host functions", MAX_FNS);
    } else {
        if (global_n == global_cap) {
            uint32_t cap = global_cap ? global_cap * 2 : 16;
            hostfn_t *p = ljs__realloc(global_fns, cap * sizeof *p);
            if (p == NULL)
                rc = ljs__error(LJS_ENOMEM, "out of memory");
            else
                global_fns = p, global_cap = cap;
        }
        if (rc == LJS_OK)
            global_fns[global_n++] = f;
    }
    pthread_mutex_unlock(&global_lock);
    return rc;
}

static int global_unregister(const char *name)
{
    pthread_mutex_lock(&global_lock);
    int i = find_in(global_fns, global_n, name);
    if (i >= 0) {
        memmove(&global_fns[i], &global_fns[i + 1], (global_n - (uint32_t)i - 1) * sizeof *global_fns);
        global_n--;
    }
    pthread_mutex_unlock(&global_lock);
    return i >= 0 ? LJS_OK : ljs__error(LJS_ENOENT, "ljs_host_unregister: '%s' is not registered", name);
}

/* ==== lifecycle ================================================================== */

int ljs__host_create(ljs_runtime_t *rt)
{
    ljs__host_t *h = ljs__calloc(1, sizeof *h);
    if (h == NULL)
        return LJS_ENOMEM;
    h->w = ljs__aligned_alloc(64, sizeof(hostw_t) * rt->nworkers);
    if (h->w == NULL) {
        ljs__free(h);
        return LJS_ENOMEM;
    }
    memset(h->w, 0, sizeof(hostw_t) * rt->nworkers);
    h->nworkers = rt->nworkers;
    pthread_mutex_lock(&global_lock);
    if (global_n > 0) {
        h->fns = ljs__malloc(global_n * sizeof *h->fns);
        if (h->fns != NULL) {
            memcpy(h->fns, global_fns, global_n * sizeof *h->fns);
            h->nfns = h->cap = global_n;
        }
    }
    int ok = global_n == 0 || h->fns != NULL;
    pthread_mutex_unlock(&global_lock);
    if (!ok) {
        ljs__free(h->w);
        ljs__free(h);
        return LJS_ENOMEM;
    }
    rt->host = h;
    return LJS_OK;
}

static void queue_fini(queue_t *q)
{
    ljs__free(q->recs);
    ljs__free(q->bytes);
    memset(q, 0, sizeof *q);
}

void ljs__host_destroy(ljs_runtime_t *rt)
{
    ljs__host_t *h = rt->host;
    if (h == NULL)
        return;
    for (uint32_t i = 0; i < h->nworkers; i++) {
        queue_fini(&h->w[i].q);
        ljs__free(h->w[i].pairs);
        ljs__free(h->w[i].rbuf);
    }
    queue_fini(&h->load);
    ljs__free(h->w);
    ljs__free(h->fns);
    ljs__free(h->order);
    ljs__free(h->evpairs);
    ljs__msgbuf_fini(&h->events);
    while (h->profs != NULL) {
        prof_node_t *n = h->profs;
        h->profs = n->next;
        ljs__free(n);
    }
    ljs__free(h);
    rt->host = NULL;
}

/* ==== calls from scripts ========================================================= */

static const char *type_word(ljs_type_t t)
{
    switch ((int)t) {
    case LJS_TNIL:
        return "nil";
    case LJS_TNUMBER:
    case LJS_TINTEGER:
        return "number";
    case LJS_TBOOLEAN:
        return "boolean";
    case LJS_TSTRING:
        return "string";
    case LJS_TTABLE:
        return "table";
    default:
        return "entity";
    }
}

static int grow_pairs(hostw_t *hw, size_t need)
{
    if (need <= hw->pairs_cap)
        return 0;
    size_t cap = hw->pairs_cap ? hw->pairs_cap * 2 : 64;
    while (cap < need)
        cap *= 2;
    ljs_pair_t *p = ljs__realloc(hw->pairs, cap * sizeof *p);
    if (p == NULL)
        return -1;
    hw->pairs = p;
    hw->pairs_cap = cap;
    return 0;
}

/* A scalar Lua value into *v; 0 if it is not a scalar. Never raises. */
static int scalar(lua_State *L, int idx, ljs_value_t *v)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TNONE:
        v->type = LJS_TNIL;
        return 1;
    case LUA_TBOOLEAN:
        v->type = LJS_TBOOLEAN;
        v->v.b = lua_toboolean(L, idx);
        return 1;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            v->type = LJS_TINTEGER;
            v->v.i = lua_tointeger(L, idx);
        } else {
            v->type = LJS_TNUMBER;
            v->v.n = lua_tonumber(L, idx);
        }
        return 1;
    case LUA_TSTRING:
        v->type = LJS_TSTRING;
        v->v.s.p = lua_tolstring(L, idx, &v->v.s.len); /* a string: no conversion, no allocation */
        return 1;
    default:
        return 0;
    }
}

static int cmp_pair(const void *x, const void *y)
{
    const ljs_value_t *a = &((const ljs_pair_t *)x)->key, *b = &((const ljs_pair_t *)y)->key;
    if (a->type != b->type)
        return a->type == LJS_TINTEGER ? -1 : 1;
    if (a->type == LJS_TINTEGER)
        return (a->v.i > b->v.i) - (a->v.i < b->v.i);
    size_t n = a->v.s.len < b->v.s.len ? a->v.s.len : b->v.s.len;
    int c = memcmp(a->v.s.p, b->v.s.p, n);
    return c ? c : (a->v.s.len > b->v.s.len) - (a->v.s.len < b->v.s.len);
}

/* Convert the table argument `arg` into pairs hw->pairs[*np ..]; the
 * value's pairs pointer holds the start index until fix_tables. Lua: may
 * raise (bad key or value, too big, memory). */
static void table_arg(lua_State *L, const hostfn_t *f, int arg, ljs_value_t *v, hostw_t *hw, size_t *np)
{
    size_t start = *np;
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        if (*np - start == MAX_TABLE)
            luaL_error(L, "%s: argument %d: a table with more than %d entries", f->name, arg, MAX_TABLE);
        if (grow_pairs(hw, *np + 1))
            luaL_error(L, "%s: out of memory", f->name);
        ljs_pair_t *p = &hw->pairs[*np];
        int kt = lua_type(L, -2);
        if (!(kt == LUA_TSTRING || (kt == LUA_TNUMBER && lua_isinteger(L, -2))) || !scalar(L, -2, &p->key))
            luaL_error(L, "%s: argument %d: table keys must be strings or integers (got %s)", f->name, arg,
                       luaL_typename(L, -2));
        if (lua_type(L, -1) == LUA_TTABLE || !scalar(L, -1, &p->value))
            luaL_error(L, "%s: argument %d: table values must be nil, booleans, numbers or strings (got %s)",
                       f->name, arg, luaL_typename(L, -1));
        (*np)++;
        lua_pop(L, 1); /* the key stays: the table holds its string */
    }
    size_t n = *np - start;
    ljs__sort(hw->pairs + start, n, sizeof *hw->pairs, cmp_pair);
    v->type = LJS_TTABLE;
    v->v.t.pairs = (const ljs_pair_t *)(uintptr_t)start;
    v->v.t.n = n;
}

static void fix_tables(ljs_value_t *args, int n, const ljs_pair_t *pairs)
{
    for (int i = 0; i < n; i++)
        if (args[i].type == LJS_TTABLE)
            args[i].v.t.pairs = pairs + (uintptr_t)args[i].v.t.pairs;
}

/* The entity a value names: an integer id, or a table with an integer
 * `id`. 0 if none. */
static uint64_t entity_of(const ljs_value_t *v)
{
    if (v->type == LJS_TINTEGER && v->v.i > 0)
        return (uint64_t)v->v.i;
    if (v->type == LJS_TENTITY)
        return v->v.e;
    if (v->type == LJS_TTABLE)
        for (size_t k = 0; k < v->v.t.n; k++) {
            const ljs_pair_t *p = &v->v.t.pairs[k];
            if (p->key.type == LJS_TSTRING && p->key.v.s.len == 2 && !memcmp(p->key.v.s.p, "id", 2))
                return p->value.type == LJS_TINTEGER && p->value.v.i > 0 ? (uint64_t)p->value.v.i : 0;
        }
    return 0;
}

/* Does `v` fit letter `c`? */
static int fits(char c, const ljs_value_t *v)
{
    switch (c) {
    case 'n':
        return v->type == LJS_TNUMBER || v->type == LJS_TINTEGER;
    case 'i':
        return v->type == LJS_TINTEGER || (v->type == LJS_TNUMBER && v->v.n == (double)(int64_t)v->v.n);
    case 'b':
        return v->type == LJS_TBOOLEAN;
    case 's':
        return v->type == LJS_TSTRING;
    case 'e':
        return entity_of(v) != 0;
    case 't':
        return v->type == LJS_TTABLE;
    default:
        return v->type != LJS_TNIL;
    }
}

static const char *letter_word(char c)
{
    switch (c) {
    case 'n':
        return "a number";
    case 'i':
        return "an integer";
    case 'b':
        return "a boolean";
    case 's':
        return "a string";
    case 'e':
        return "an entity";
    case 't':
        return "a table";
    default:
        return "a value";
    }
}

static void arg_error(char *buf, size_t n, const char *fn, int i, char c, const ljs_value_t *v)
{
    snprintf(buf, n, "%s: argument %d must be %s (got %s)", fn, i, letter_word(c),
             v == NULL ? "no value" : type_word(v->type));
}

/* Check the declared letters; 0 with the message in buf on a mismatch. */
static int check_sig(const hostfn_t *f, const ljs_value_t *args, int n, char *buf, size_t bn)
{
    const char *a = f->args;
    int i = 0;
    for (; *a; a++, i++) {
        int opt = a[1] == '?';
        const ljs_value_t *v = i < n ? &args[i] : NULL;
        if ((v == NULL || v->type == LJS_TNIL) ? !opt : !fits(*a, v)) {
            arg_error(buf, bn, f->name, i + 1, *a, v);
            return 0;
        }
        a += opt;
    }
    if (n > i) {
        snprintf(buf, bn, "%s: takes at most %d argument%s (got %d)", f->name, i, i == 1 ? "" : "s", n);
        return 0;
    }
    return 1;
}

static int queue_reserve(queue_t *q, size_t bytes)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        drec_t *p = ljs__realloc(q->recs, cap * sizeof *p);
        if (p == NULL)
            return -1;
        q->recs = p;
        q->cap = cap;
    }
    if (q->nbytes + bytes > q->bytes_cap) {
        size_t cap = q->bytes_cap ? q->bytes_cap : 4096;
        while (cap < q->nbytes + bytes)
            cap *= 2;
        unsigned char *p = ljs__realloc(q->bytes, cap);
        if (p == NULL)
            return -1;
        q->bytes = p;
        q->bytes_cap = cap;
    }
    return 0;
}

static size_t queue_size(const queue_t *q)
{
    return q->nbytes + q->n * sizeof(drec_t);
}

/* Copy a string into the record area at *pos; returns its offset. */
static const char *put_string(unsigned char *base, size_t *pos, const char *s, size_t len)
{
    size_t at = *pos;
    if (len)
        memcpy(base + at, s, len);
    base[at + len] = 0;
    *pos += len + 1;
    return (const char *)(uintptr_t)at;
}

static size_t strings_of(const ljs_value_t *v)
{
    return v->type == LJS_TSTRING ? v->v.s.len + 1 : 0;
}

/* The per-entity sequence shared with events (api.c's counters): unique
 * per entity and frame. */
static uint32_t next_seq(ljs__worker_t *w)
{
    ljs__ectr_t *c = &w->rt->world.ectr[w->cur_slot];
    if (c->frame != w->rt->frame) {
        c->frame = w->rt->frame;
        c->seq = 0;
        c->rng = 0;
    }
    return c->seq++;
}

/* Queue a deferred call. Lua: may raise (bound, memory). */
static void defer(lua_State *L, ljs__worker_t *w, hostw_t *hw, const hostfn_t *f, uint32_t idx,
                  const ljs_value_t *args, int n, size_t npairs)
{
    ljs_runtime_t *rt = w->rt;
    ljs__host_t *h = rt->host;
    queue_t *q = &hw->q;
    if (w->cur_id == 0) {
        /* A module's top level runs once per state: keep worker 0's copy
         * (the load's metadata run); elsewhere it is not a load and the
         * call has nowhere to go. */
        if (w->index != 0 || w->loading == UINT32_MAX || !h->loading) {
            if (w->index == 0 && w->loading == UINT32_MAX)
                luaL_error(L,
                           "%s: a deferred host function can be called only from an entity's call or a "
                           "module's top level",
                           f->name);
            return;
        }
        q = &h->load;
    }
    size_t strings = 0;
    for (int i = 0; i < n; i++)
        strings += strings_of(&args[i]);
    for (size_t k = 0; k < npairs; k++)
        strings += strings_of(&hw->pairs[k].key) + strings_of(&hw->pairs[k].value);
    size_t head = (size_t)n * sizeof(ljs_value_t) + npairs * sizeof(ljs_pair_t);
    size_t len = (head + strings + 7) & ~(size_t)7;
    /* Bounded per script call like the events it queues (LJS_CALL_QUEUE_KB):
     * the call's deferred bytes plus its outbox bytes. */
    uint64_t seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
    if (q == &hw->q && hw->call_seq != seq) {
        hw->call_seq = seq;
        hw->call_bytes0 = queue_size(q);
    }
    size_t cap = (size_t)rt->cfg.call_queue_kb << 10;
    size_t used = q == &hw->q ? queue_size(q) - hw->call_bytes0 + (ljs__msgbuf_size(&w->out) - w->call_out0)
                              : queue_size(q);
    if (used + len + sizeof(drec_t) > cap) {
        hw->dropped++;
        luaL_error(
            L,
            "%s: this call queued more than LJS_CALL_QUEUE_KB=%d KiB of deferred calls and events; the "
            "call was dropped",
            f->name, (int)rt->cfg.call_queue_kb);
    }
    if (queue_reserve(q, len))
        luaL_error(L, "%s: out of memory queueing a deferred call", f->name);
    drec_t *r = &q->recs[q->n];
    r->entity = w->cur_id;
    r->call = seq;
    r->seq = w->cur_id ? next_seq(w) : (uint32_t)q->n;
    r->fn = idx;
    r->gen = f->gen;
    r->script = w->cur_id ? w->cur_script : UINT32_MAX;
    r->nargs = (uint32_t)n;
    r->npairs = (uint32_t)npairs;
    r->off = q->nbytes;
    r->len = len;
    unsigned char *base = q->bytes + q->nbytes;
    ljs_value_t *vals = (ljs_value_t *)(void *)base;
    ljs_pair_t *pairs = (ljs_pair_t *)(void *)(base + (size_t)n * sizeof(ljs_value_t));
    size_t pos = head;
    const ljs_pair_t *table0 = hw->pairs;
    for (int i = 0; i < n; i++) {
        vals[i] = args[i];
        if (args[i].type == LJS_TSTRING)
            vals[i].v.s.p = put_string(base, &pos, args[i].v.s.p, args[i].v.s.len);
        else if (args[i].type == LJS_TTABLE)
            vals[i].v.t.pairs = (const ljs_pair_t *)(uintptr_t)(args[i].v.t.pairs - table0);
    }
    for (size_t k = 0; k < npairs; k++) {
        pairs[k] = hw->pairs[k];
        if (pairs[k].key.type == LJS_TSTRING)
            pairs[k].key.v.s.p = put_string(base, &pos, pairs[k].key.v.s.p, pairs[k].key.v.s.len);
        if (pairs[k].value.type == LJS_TSTRING)
            pairs[k].value.v.s.p = put_string(base, &pos, pairs[k].value.v.s.p, pairs[k].value.v.s.len);
    }
    q->nbytes += len;
    q->n++;
}

static void push_value(lua_State *L, const ljs_value_t *v, const char *rbuf, size_t roff)
{
    switch ((int)v->type) {
    case LJS_TNUMBER:
        lua_pushnumber(L, v->v.n);
        break;
    case LJS_TINTEGER:
        lua_pushinteger(L, v->v.i);
        break;
    case LJS_TBOOLEAN:
        lua_pushboolean(L, v->v.b);
        break;
    case LJS_TSTRING:
        lua_pushlstring(L, rbuf + roff, v->v.s.len);
        break;
    case LJS_TENTITY:
        if (v->v.e)
            lua_pushinteger(L, (lua_Integer)v->v.e);
        else
            lua_pushnil(L);
        break;
    default:
        lua_pushnil(L);
        break;
    }
}

/* Every host function's closure. Upvalues: (generation, slot), name. */
static int trampoline(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    ljs__host_t *h = w->rt->host;
    /* Upvalue 1 packs (generation << 32 | slot): one API call, not two. */
    uint64_t key = (uint64_t)lua_tointeger(L, lua_upvalueindex(1));
    uint32_t idx = (uint32_t)key;
    const hostfn_t *f = idx < h->nfns ? &h->fns[idx] : NULL;
    if (f == NULL || !f->used || f->gen != (uint32_t)(key >> 32))
        return luaL_error(L, "%s: the host function was unregistered", lua_tostring(L, lua_upvalueindex(2)));
    /* A loop that only calls host functions must stop like any runaway,
     * even while the watchdog's signal is still pending (a sanitizer delays
     * signals until the thread enters libc): check the limits here (two
     * relaxed loads; raises the stop error when over). */
    ljs__watchdog_check(L, 1);
    int n = lua_gettop(L);
    if (n > MAX_ARGS)
        return luaL_error(L, "%s: more than %d arguments", f->name, MAX_ARGS);
    hostw_t *hw = &h->w[w->index];
    ljs_value_t args[MAX_ARGS];
    size_t npairs = 0;
    for (int i = 0; i < n; i++) {
        if (scalar(L, i + 1, &args[i]))
            continue;
        if (lua_type(L, i + 1) != LUA_TTABLE)
            return luaL_error(L,
                              "%s: argument %d is a %s (host functions take nil, booleans, numbers, strings, "
                              "entities and flat tables)",
                              f->name, i + 1, luaL_typename(L, i + 1));
        table_arg(L, f, i + 1, &args[i], hw, &npairs);
    }
    if (npairs > 0)
        fix_tables(args, n, hw->pairs);
    ljs_call_t c;
    c.err[0] = '\0';
    if (f->args[0] && !check_sig(f, args, n, c.err, sizeof c.err))
        return luaL_error(L, "%s", c.err);
    if (f->safety == LJS_DEFERRED) {
        defer(L, w, hw, f, idx, args, n, npairs);
        return 0;
    }
    c.f = f;
    c.args = args;
    c.nargs = n;
    c.nrets = 0;
    c.hw = hw;
    c.entity = w->cur_id;
    c.worker = w->index;
    c.deferred = 0;
    hw->rlen = 0;
    hw->depth++;
    int rc = f->fn(&c, f->ud);
    hw->depth--;
    if (rc != LJS_OK) {
        if (c.err[0] == '\0')
            snprintf(c.err, sizeof c.err, "%s: failed (%s)", f->name, ljs_errname(rc));
        return luaL_error(L, "%s", c.err);
    }
    /* MAX_RETS is below LUA_MINSTACK, the room Lua gives every C call. */
    for (int i = 0; i < c.nrets; i++)
        push_value(L, &c.rets[i], hw->rbuf, c.roff[i]);
    return c.nrets;
}

/* ==== installing in states ====================================================== */

static const char ns_key = 0; /* registry: namespace name -> backing table */

/* Runs under lua_pcall on the worker: rebuild every namespace's backing
 * table from the runtime's table, and publish new namespaces in the base.
 * Lua: may raise (memory, a collision). */
static int install(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    const ljs__host_t *h = w->rt->host;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ns_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &ns_key);
    }
    int nstab = lua_gettop(L);
    /* Empty every backing table: unregistered functions disappear. */
    lua_pushnil(L);
    while (lua_next(L, nstab) != 0) {
        int back = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, back) != 0) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, back);
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "ljs.base"); /* state.c's sealed base */
    int base = lua_gettop(L);
    if (!lua_istable(L, base))
        return luaL_error(L, "host functions: the state is not sealed");
    for (uint32_t i = 0; i < h->nfns; i++) {
        const hostfn_t *f = &h->fns[i];
        if (!f->used)
            continue;
        lua_pushlstring(L, f->name, f->nslen);
        int ns = lua_gettop(L);
        lua_pushvalue(L, ns);
        if (lua_rawget(L, nstab) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_pushvalue(L, ns);
            if (lua_rawget(L, base) != LUA_TNIL)
                return luaL_error(L, "host function '%s': the global '%s' exists", f->name,
                                  lua_tostring(L, ns));
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, ns);
            lua_pushvalue(L, -2);
            lua_rawset(L, nstab);
            lua_pushvalue(L, ns);
            ljs__state_push_frozen(L, -2, lua_tostring(L, ns)); /* what scripts see: read-only */
            lua_rawset(L, base);
        }
        lua_pushstring(L, f->name + f->nslen + 1);
        lua_pushinteger(L, (lua_Integer)((uint64_t)f->gen << 32 | i));
        lua_pushstring(L, f->name);
        lua_pushcclosure(L, trampoline, 2);
        lua_rawset(L, -3);
        lua_settop(L, base);
    }
    lua_settop(L, 0);
    return 0;
}

int ljs__host_open(ljs__worker_t *w)
{
    if (w->rt->host->nfns == 0)
        return LJS_OK;
    lua_pushcfunction(w->L, install);
    int rc = lua_pcall(w->L, 0, 0, 0);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(w->L, -1);
        snprintf(w->errmsg, sizeof w->errmsg, "%s", msg ? msg : "out of memory");
        lua_pop(w->L, 1);
        return rc == LUA_ERRMEM ? LJS_ENOMEM : LJS_ELUA;
    }
    return LJS_OK;
}

typedef struct install_job_s {
    ljs_runtime_t *rt;
    int rc[LJS_SCHED_MAX_WORKERS];
} install_job_t;

static void install_on_worker(void *arg, uint32_t worker)
{
    install_job_t *j = arg;
    j->rc[worker] = ljs__host_open(&j->rt->workers[worker]);
}

/* Rebuild every state's tables. Returns LJS_OK or the first failure. */
static int install_all(ljs_runtime_t *rt)
{
    install_job_t *j = ljs__calloc(1, sizeof *j);
    if (j == NULL)
        return LJS_ENOMEM;
    j->rt = rt;
    ljs__sched_run_on_all(rt->sched, install_on_worker, j);
    int rc = LJS_OK;
    for (uint32_t i = 0; i < rt->nworkers && rc == LJS_OK; i++)
        if (j->rc[i] != LJS_OK)
            rc = ljs__error(j->rc[i], "ljs_host_register: worker %u: %s", i, rt->workers[i].errmsg);
    ljs__free(j);
    return rc;
}

/* Changes that rebuild every state wait for a quiet runtime: not in a
 * frame, not inside a host function on the owner, and not on a worker
 * thread (a host function called by a module's top level while it loads on
 * worker k runs there, outside any frame). */
static int refuse_now(const ljs_runtime_t *rt, const char *what)
{
    if (ljs__sched_self() > 0 || rt->in_frame || rt->host->w[0].depth > 0)
        return ljs__error(LJS_EBUSY, "%s: not allowed during ljs_frame or inside a host function", what);
    return LJS_OK;
}

int ljs_host_register(ljs_runtime_t *rt, const ljs_host_def_t *def)
{
    if (rt == NULL)
        return global_register(def);
    LJS_CHECK_OWNER(rt, "ljs_host_register");
    ljs__host_t *h = rt->host;
    hostfn_t f;
    int rc = refuse_now(rt, "ljs_host_register");
    if (rc != LJS_OK || (rc = fill(&f, def)) != LJS_OK)
        return rc;
    if (find_in(h->fns, h->nfns, f.name) >= 0)
        return ljs__error(LJS_EEXIST, "ljs_host_register: '%s' is already registered", f.name);
    uint32_t slot = 0;
    while (slot < h->nfns && h->fns[slot].used)
        slot++;
    if (slot == MAX_FNS)
        return ljs__error(LJS_EFULL, "ljs_host_register: more than %d host functions", MAX_FNS);
    if (slot == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        hostfn_t *p = ljs__realloc(h->fns, cap * sizeof *p);
        if (p == NULL)
            return ljs__error(LJS_ENOMEM, "out of memory");
        h->fns = p;
        h->cap = cap;
    }
    f.gen = slot < h->nfns ? h->fns[slot].gen + 1 : 0;
    h->fns[slot] = f;
    if (slot == h->nfns)
        h->nfns++;
    rc = install_all(rt);
    if (rc != LJS_OK) {
        int err = rc;
        h->fns[slot].used = 0;
        (void)install_all(rt); /* back to the previous tables where it got in */
        return err;
    }
    return LJS_OK;
}

int ljs_host_unregister(ljs_runtime_t *rt, const char *name)
{
    if (name == NULL)
        return ljs__error(LJS_EINVAL, "ljs_host_unregister: name is NULL");
    if (rt == NULL)
        return global_unregister(name);
    LJS_CHECK_OWNER(rt, "ljs_host_unregister");
    int rc = refuse_now(rt, "ljs_host_unregister");
    if (rc != LJS_OK)
        return rc;
    int i = find_in(rt->host->fns, rt->host->nfns, name);
    if (i < 0)
        return ljs__error(LJS_ENOENT, "ljs_host_unregister: '%s' is not registered", name);
    rt->host->fns[i].used = 0;
    rt->host->fns[i].gen++; /* closures scripts kept now refuse to run */
    /* Emptying tables only frees: a failure leaves the closure, which
     * refuses by generation anyway. */
    (void)install_all(rt);
    return LJS_OK;
}

/* ==== accessors ================================================================= */

int ljs_arg_count(const ljs_call_t *c)
{
    return c != NULL ? c->nargs : 0;
}

ljs_type_t ljs_arg_type(const ljs_call_t *c, int i)
{
    return c != NULL && i >= 1 && i <= c->nargs ? c->args[i - 1].type : LJS_TNIL;
}

/* Argument i if it fits letter `l`, else NULL with the error set. */
static const ljs_value_t *arg(ljs_call_t *c, int i, char l)
{
    if (c == NULL)
        return NULL;
    const ljs_value_t *v = i >= 1 && i <= c->nargs ? &c->args[i - 1] : NULL;
    if (v == NULL || !fits(l, v)) {
        arg_error(c->err, sizeof c->err, c->f->name, i, l, v);
        return NULL;
    }
    return v;
}

static int arg_rc(const ljs_call_t *c, int i)
{
    return c == NULL || i < 1 || i > c->nargs ? LJS_EINVAL : LJS_ETYPE;
}

int ljs_arg_value(ljs_call_t *c, int i, ljs_value_t *out)
{
    if (c == NULL || out == NULL || i < 1 || i > c->nargs) {
        if (c != NULL)
            snprintf(c->err, sizeof c->err, "%s: argument %d is missing", c->f->name, i);
        return LJS_EINVAL;
    }
    *out = c->args[i - 1];
    return LJS_OK;
}

int ljs_arg_number(ljs_call_t *c, int i, double *out)
{
    const ljs_value_t *v = arg(c, i, 'n');
    if (v == NULL || out == NULL)
        return arg_rc(c, i);
    *out = v->type == LJS_TINTEGER ? (double)v->v.i : v->v.n;
    return LJS_OK;
}

int ljs_arg_integer(ljs_call_t *c, int i, int64_t *out)
{
    const ljs_value_t *v = arg(c, i, 'i');
    if (v == NULL || out == NULL)
        return arg_rc(c, i);
    *out = v->type == LJS_TINTEGER ? v->v.i : (int64_t)v->v.n;
    return LJS_OK;
}

int ljs_arg_boolean(ljs_call_t *c, int i, int *out)
{
    const ljs_value_t *v = arg(c, i, 'b');
    if (v == NULL || out == NULL)
        return arg_rc(c, i);
    *out = v->v.b;
    return LJS_OK;
}

int ljs_arg_string(ljs_call_t *c, int i, const char **s, size_t *len)
{
    const ljs_value_t *v = arg(c, i, 's');
    if (v == NULL || s == NULL)
        return arg_rc(c, i);
    *s = v->v.s.p;
    if (len != NULL)
        *len = v->v.s.len;
    return LJS_OK;
}

int ljs_arg_entity(ljs_call_t *c, int i, ljs_entity_t *out)
{
    const ljs_value_t *v = arg(c, i, 'e');
    if (v == NULL || out == NULL)
        return arg_rc(c, i);
    out->id = entity_of(v);
    return LJS_OK;
}

int ljs_arg_table(ljs_call_t *c, int i, const ljs_pair_t **pairs, size_t *n)
{
    const ljs_value_t *v = arg(c, i, 't');
    if (v == NULL || pairs == NULL || n == NULL)
        return arg_rc(c, i);
    *pairs = v->v.t.pairs;
    *n = v->v.t.n;
    return LJS_OK;
}

static ljs_value_t *ret(ljs_call_t *c)
{
    if (c == NULL || c->deferred || c->nrets == MAX_RETS)
        return NULL;
    ljs_value_t *v = &c->rets[c->nrets++];
    return v;
}

static int ret_rc(const ljs_call_t *c)
{
    return c == NULL || c->deferred ? LJS_EINVAL : LJS_EFULL;
}

int ljs_ret_nil(ljs_call_t *c)
{
    ljs_value_t *v = ret(c);
    if (v == NULL)
        return ret_rc(c);
    v->type = LJS_TNIL;
    return LJS_OK;
}

int ljs_ret_number(ljs_call_t *c, double x)
{
    ljs_value_t *v = ret(c);
    if (v == NULL)
        return ret_rc(c);
    v->type = LJS_TNUMBER;
    v->v.n = x;
    return LJS_OK;
}

int ljs_ret_integer(ljs_call_t *c, int64_t x)
{
    ljs_value_t *v = ret(c);
    if (v == NULL)
        return ret_rc(c);
    v->type = LJS_TINTEGER;
    v->v.i = x;
    return LJS_OK;
}

int ljs_ret_boolean(ljs_call_t *c, int x)
{
    ljs_value_t *v = ret(c);
    if (v == NULL)
        return ret_rc(c);
    v->type = LJS_TBOOLEAN;
    v->v.b = x != 0;
    return LJS_OK;
}

int ljs_ret_entity(ljs_call_t *c, ljs_entity_t e)
{
    ljs_value_t *v = ret(c);
    if (v == NULL)
        return ret_rc(c);
    v->type = LJS_TENTITY;
    v->v.e = e.id;
    return LJS_OK;
}

int ljs_ret_string(ljs_call_t *c, const char *s, size_t len)
{
    if (c == NULL || (s == NULL && len > 0) || c->deferred)
        return LJS_EINVAL;
    if (c->nrets == MAX_RETS)
        return LJS_EFULL;
    hostw_t *hw = c->hw;
    if (hw->rlen + len > hw->rcap) {
        size_t cap = hw->rcap ? hw->rcap : 256;
        while (cap < hw->rlen + len)
            cap *= 2;
        char *p = ljs__realloc(hw->rbuf, cap);
        if (p == NULL)
            return LJS_ENOMEM;
        hw->rbuf = p;
        hw->rcap = cap;
    }
    if (len)
        memcpy(hw->rbuf + hw->rlen, s, len);
    c->roff[c->nrets] = hw->rlen;
    hw->rlen += len;
    ljs_value_t *v = &c->rets[c->nrets++];
    v->type = LJS_TSTRING;
    v->v.s.p = NULL; /* in rbuf at roff: it may move while results are added */
    v->v.s.len = len;
    return LJS_OK;
}

int ljs_call_error(ljs_call_t *c, const char *fmt, ...)
{
    if (c == NULL)
        return LJS_EINVAL;
    char msg[sizeof c->err / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt != NULL ? fmt : "error", ap);
    va_end(ap);
    snprintf(c->err, sizeof c->err, "%s: %s", c->f->name, msg);
    return LJS_ESCRIPT;
}

ljs_entity_t ljs_call_entity(const ljs_call_t *c)
{
    ljs_entity_t e = {c != NULL ? c->entity : 0};
    return e;
}

uint32_t ljs_call_worker(const ljs_call_t *c)
{
    return c != NULL ? c->worker : 0;
}

const char *ljs_call_name(const ljs_call_t *c)
{
    return c != NULL ? c->f->name : "";
}

/* ==== deferred dispatch ========================================================== */

static void fix_string(ljs_value_t *v, unsigned char *base, ljs_pair_t *pairs)
{
    if (v->type == LJS_TSTRING)
        v->v.s.p = (const char *)base + (uintptr_t)v->v.s.p;
    else if (v->type == LJS_TTABLE)
        v->v.t.pairs = pairs + (uintptr_t)v->v.t.pairs;
}

/* Run one queued call on the owner thread. */
static void run_one(ljs_runtime_t *rt, const drec_t *r, unsigned char *base)
{
    ljs__host_t *h = rt->host;
    const hostfn_t *f = r->fn < h->nfns ? &h->fns[r->fn] : NULL;
    if (f == NULL || !f->used || f->gen != r->gen) {
        h->st.deferred_dropped++; /* unregistered since: its queue went with it */
        return;
    }
    ljs_value_t *args = (ljs_value_t *)(void *)base;
    ljs_pair_t *pairs = (ljs_pair_t *)(void *)(base + r->nargs * sizeof(ljs_value_t));
    for (uint32_t i = 0; i < r->nargs; i++)
        fix_string(&args[i], base, pairs);
    for (uint32_t k = 0; k < r->npairs; k++) {
        fix_string(&pairs[k].key, base, pairs);
        fix_string(&pairs[k].value, base, pairs);
    }
    ljs_call_t c;
    c.f = f;
    c.args = args;
    c.nargs = (int)r->nargs;
    c.nrets = 0;
    c.hw = &h->w[0];
    c.entity = r->entity;
    c.worker = 0;
    c.deferred = 1;
    c.err[0] = '\0';
    h->w[0].depth++;
    int rc = f->fn(&c, f->ud);
    h->w[0].depth--;
    h->st.deferred_calls++;
    if (rc != LJS_OK) {
        h->st.deferred_errors++;
        const char *script =
            r->script < rt->nscripts && rt->scripts[r->script].used ? rt->scripts[r->script].name : "";
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, r->entity, script,
                         "deferred call of entity %llu: %s", (unsigned long long)r->entity,
                         c.err[0] ? c.err : ljs_errname(rc));
    }
}

static int cmp_order(const void *x, const void *y)
{
    const order_t *a = x, *b = y;
    /* Entities by slot, then the full handle, as events sort (event.c). */
    uint32_t sa = (uint32_t)a->entity, sb = (uint32_t)b->entity;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (a->entity != b->entity)
        return a->entity < b->entity ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

void ljs__host_dispatch(ljs_runtime_t *rt)
{
    ljs__host_t *h = rt->host;
    size_t n = 0, total = 0;
    for (uint32_t i = 0; i < h->nworkers; i++) {
        n += h->w[i].q.n;
        total += queue_size(&h->w[i].q);
        h->st.deferred_dropped += h->w[i].dropped;
        h->w[i].dropped = 0;
    }
    if (n == 0)
        return;
    /* Like a phase's events: all or nothing, so what runs never depends on
     * the worker count. */
    int drop = total > ((size_t)rt->cfg.event_mem_mb << 20);
    size_t nruns = 0;
    for (uint32_t i = 0; i < h->nworkers; i++)
        for (size_t j = 0; j < h->w[i].q.n; j++)
            nruns += j == 0 || h->w[i].q.recs[j].call != h->w[i].q.recs[j - 1].call;
    if (!drop && nruns > h->order_cap) {
        order_t *p = ljs__realloc(h->order, nruns * sizeof *p);
        if (p != NULL) {
            h->order = p;
            h->order_cap = nruns;
        }
        drop = p == NULL;
    }
    if (drop) {
        h->st.deferred_dropped += n;
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, 0, "",
                         "frame %llu: scripts queued %zu deferred host calls (%zu KiB): more than "
                         "LJS_EVENT_MEM_MB=%u or out of memory, all of them were dropped",
                         (unsigned long long)rt->frame, n, total >> 10, rt->cfg.event_mem_mb);
    } else {
        size_t k = 0;
        for (uint32_t i = 0; i < h->nworkers; i++) {
            const drec_t *r = h->w[i].q.recs;
            for (size_t j = 0; j < h->w[i].q.n; j++) {
                if (j == 0 || r[j].call != r[j - 1].call)
                    h->order[k++] = (order_t){r[j].entity, r[j].seq, i, (uint32_t)j, 0};
                h->order[k - 1].count++;
            }
        }
        ljs__sort(h->order, nruns, sizeof *h->order, cmp_order);
        for (size_t i = 0; i < nruns; i++) {
            queue_t *q = &h->w[h->order[i].worker].q;
            for (uint32_t j = h->order[i].first; j < h->order[i].first + h->order[i].count; j++)
                run_one(rt, &q->recs[j], q->bytes + q->recs[j].off);
        }
    }
    for (uint32_t i = 0; i < h->nworkers; i++) {
        h->w[i].q.n = 0;
        h->w[i].q.nbytes = 0;
    }
}

void ljs__host_load_begin(ljs_runtime_t *rt)
{
    rt->host->load.n = 0;
    rt->host->load.nbytes = 0;
    rt->host->loading = 1;
}

void ljs__host_load_end(ljs_runtime_t *rt, int ok)
{
    ljs__host_t *h = rt->host;
    h->loading = 0;
    for (size_t i = 0; ok && i < h->load.n; i++)
        run_one(rt, &h->load.recs[i], h->load.bytes + h->load.recs[i].off);
    h->load.n = 0;
    h->load.nbytes = 0;
}

/* ==== events to the host ======================================================== */

ljs__msgbuf_t *ljs__host_events(ljs_runtime_t *rt)
{
    return &rt->host->events;
}

/* Decode one encoded value (event.c's format) at *p. */
static void read_value(const unsigned char **p, ljs_value_t *v)
{
    unsigned char tag = *(*p)++;
    uint32_t len;
    v->type = LJS_TNIL;
    switch (tag) {
    case 'd':
        v->type = LJS_TNUMBER;
        memcpy(&v->v.n, *p, 8);
        *p += 8;
        break;
    case 'i':
        v->type = LJS_TINTEGER;
        memcpy(&v->v.i, *p, 8);
        *p += 8;
        break;
    case 'b':
        v->type = LJS_TBOOLEAN;
        v->v.b = *(*p)++;
        break;
    case 's':
        memcpy(&len, *p, 4);
        *p += 4;
        v->type = LJS_TSTRING;
        v->v.s.p = (const char *)*p;
        v->v.s.len = len;
        *p += len + 1;
        break;
    default:
        break;
    }
}

/* Deliver every held event to fn (NULL: forget them). */
static size_t deliver(ljs_runtime_t *rt, ljs_host_event_fn fn, void *ud)
{
    ljs__host_t *h = rt->host;
    ljs__msgbuf_t *b = &h->events;
    size_t n = b->n;
    ljs__msgbuf_sort(b, 1); /* (frame, sender, sequence): target holds the frame */
    for (size_t i = 0; fn != NULL && i < n; i++) {
        const ljs__msg_t *m = &b->msgs[i];
        const char *name = ljs__msg_name(b, m);
        const unsigned char *p = (const unsigned char *)name + strlen(name) + 1;
        ljs_host_event_t ev = {{m->sender}, m->target, name, {LJS_TNIL, {0}}};
        if (*p == 't') {
            uint32_t cnt;
            memcpy(&cnt, p + 1, 4);
            p += 5;
            /* Grown, never shrunk: no allocation per event in steady state. */
            ljs_pair_t *pairs =
                cnt <= h->evpairs_cap ? h->evpairs : ljs__realloc(h->evpairs, cnt * sizeof *pairs);
            if (pairs == NULL) {
                h->st.events_dropped++;
                ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, m->sender, "",
                                 "event '%s' to the host: out of memory decoding it (dropped)", name);
                continue;
            }
            if (pairs != h->evpairs) {
                h->evpairs = pairs;
                h->evpairs_cap = cnt;
            }
            for (uint32_t k = 0; k < cnt; k++) {
                read_value(&p, &pairs[k].key);
                read_value(&p, &pairs[k].value);
            }
            ev.payload.type = LJS_TTABLE;
            ev.payload.v.t.pairs = pairs;
            ev.payload.v.t.n = cnt;
        } else {
            read_value(&p, &ev.payload);
        }
        h->w[0].depth++;
        fn(ud, &ev);
        h->w[0].depth--;
        h->st.events_delivered++;
    }
    ljs__msgbuf_clear(b);
    return fn != NULL ? n : 0;
}

void ljs__host_events_frame(ljs_runtime_t *rt)
{
    ljs__host_t *h = rt->host;
    ljs__msgbuf_t *b = &h->events;
    /* Newly gathered events carry target 0: stamp them with this frame. */
    size_t fresh = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->msgs[i].target == 0) {
            b->msgs[i].target = rt->frame;
            fresh++;
        }
    h->st.events += fresh;
    if (h->ev_fn != NULL) {
        deliver(rt, h->ev_fn, h->ev_ud);
        return;
    }
    if (ljs__msgbuf_size(b) > ((size_t)rt->cfg.event_mem_mb << 20)) {
        h->st.events_dropped += b->n;
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, 0, "",
                         "%zu events to the host were held past LJS_EVENT_MEM_MB=%u without "
                         "ljs_host_events_drain: dropped",
                         b->n, rt->cfg.event_mem_mb);
        ljs__msgbuf_clear(b);
    }
}

int ljs_host_events_set(ljs_runtime_t *rt, ljs_host_event_fn fn, void *ud)
{
    if (rt == NULL)
        return ljs__error(LJS_EINVAL, "ljs_host_events_set: rt is NULL");
    LJS_CHECK_OWNER(rt, "ljs_host_events_set");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_host_events_set: not allowed during ljs_frame");
    rt->host->ev_fn = fn;
    rt->host->ev_ud = ud;
    return LJS_OK;
}

size_t ljs_host_events_drain(ljs_runtime_t *rt, ljs_host_event_fn fn, void *ud)
{
    if (rt == NULL || ljs__owner_check(rt, "ljs_host_events_drain") != LJS_OK || rt->in_frame)
        return 0;
    return deliver(rt, fn, ud);
}

int ljs_host_stats(const ljs_runtime_t *rt, ljs_host_stats_t *out)
{
    if (rt == NULL || out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_host_stats: NULL argument");
    const ljs__host_t *h = rt->host;
    *out = h->st;
    out->functions = 0;
    for (uint32_t i = 0; i < h->nfns; i++)
        out->functions += (uint64_t)h->fns[i].used;
    for (uint32_t i = 0; i < h->nworkers; i++)
        out->deferred_dropped += h->w[i].dropped;
    return LJS_OK;
}

/* ==== profiler =================================================================== */

void ljs__host_prof_park(void *ud, uint32_t worker, int begin)
{
    const ljs_runtime_t *rt = ud;
    /* Parking happens between jobs, so the swap job cannot run between a
     * park_begin and its park_end: they always use the same hooks. */
    const ljs_profiler_t *p = rt->workers[worker].prof;
    if (p == NULL)
        return;
    if (begin && p->park_begin)
        p->park_begin(p->ud, worker);
    else if (!begin && p->park_end)
        p->park_end(p->ud, worker);
}

/* Swap worker `worker`'s hooks for `next` on its own thread. */
static void prof_swap(ljs_runtime_t *rt, uint32_t worker, const ljs_profiler_t *next)
{
    ljs__worker_t *w = &rt->workers[worker];
    const ljs_profiler_t *old = w->prof;
    if (old != NULL && old->thread_stop)
        old->thread_stop(old->ud, worker);
    w->prof = next;
    if (next != NULL && next->thread_start)
        next->thread_start(next->ud, worker);
}

void ljs__host_prof_thread_stop(ljs_runtime_t *rt, uint32_t worker)
{
    prof_swap(rt, worker, NULL);
}

static void prof_swap_job(void *arg, uint32_t worker)
{
    ljs_runtime_t *rt = arg;
    /* The owner's store of rt->prof happens before the job's queueing
     * (release/acquire in the scheduler). */
    prof_swap(rt, worker, rt->prof);
}

int ljs_profiler_set(ljs_runtime_t *rt, const ljs_profiler_t *p)
{
    if (rt == NULL)
        return ljs__error(LJS_EINVAL, "ljs_profiler_set: rt is NULL");
    LJS_CHECK_OWNER(rt, "ljs_profiler_set");
    int rc = refuse_now(rt, "ljs_profiler_set");
    if (rc != LJS_OK)
        return rc;
    prof_node_t *n = NULL;
    if (p != NULL) {
        n = ljs__malloc(sizeof *n);
        if (n == NULL)
            return ljs__error(LJS_ENOMEM, "out of memory");
        n->p = *p;
        n->next = rt->host->profs;
        rt->host->profs = n; /* kept until destroy: simpler than proving no worker still reads it */
    }
    rt->prof = n != NULL ? &n->p : NULL;
    /* Each worker swaps on its own thread, after whatever GC step it was
     * running: when this returns, no hook of the old set runs any more. */
    ljs__sched_run_on_all(rt->sched, prof_swap_job, rt);
    return LJS_OK;
}
