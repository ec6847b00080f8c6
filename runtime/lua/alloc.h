/* alloc.h - the per-worker lua_Alloc: a mimalloc heap (or the system
 * allocator in sanitizer builds) with byte accounting and a hard limit.
 *
 * Invariants: the heap is created, allocated from and destroyed only on its
 * worker's thread (a mimalloc heap allocates only on the thread that created
 * it, and dies with that thread). `current`/`peak`/`failed` have a single
 * writer, the owning worker; other threads read them with relaxed loads for
 * reporting only. */
#ifndef LJS_RUNTIME_ALLOC_H
#define LJS_RUNTIME_ALLOC_H

#include "jobs/sched.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ljs__alloc_s {
    void *heap;                     /* mi_heap_t *, NULL with the system allocator */
    size_t limit;                   /* bytes; an allocation past it fails */
    atomic_size_t current;          /* live bytes */
    atomic_size_t peak;             /* max of current */
    atomic_uint_fast64_t failed;    /* allocations refused by the limit */
    atomic_uint_fast64_t allocated; /* bytes ever requested (growth only) */
    /* Called on the worker's thread each time the limit refuses a block,
     * before Lua raises LUA_ERRMEM (NULL: nobody asks). Lua raises that
     * error without calling the message handler, so this is the last
     * moment the failing code's position can be read. */
    void (*on_refuse)(void *ctx);
    void *refuse_ctx;
} ljs__alloc_t;

/* Create the heap. Thread: same-worker. Returns LJS_OK or LJS_ENOMEM. */
LJS_HIDDEN int ljs__alloc_init(ljs__alloc_t *a, size_t limit);

/* Destroy the heap (frees every block at once). Call after lua_close.
 * Thread: same-worker. */
LJS_HIDDEN void ljs__alloc_fini(ljs__alloc_t *a);

/* The lua_Alloc; `ud` is the ljs__alloc_t. Thread: same-worker. */
LJS_HIDDEN void *ljs__alloc_lua(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
