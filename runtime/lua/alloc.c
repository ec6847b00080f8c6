/* alloc.c - per-worker lua_Alloc on a mimalloc heap, with accounting.
 *
 * Lua tells the allocator the old size of every block, so accounting needs no
 * header per block: current += nsize - osize. The limit is checked before
 * growing; refusing returns NULL, which Lua turns into LUA_ERRMEM after an
 * emergency collection, so a memory bomb becomes an ordinary script error
 * and the state stays usable. Shrinks and frees always succeed. */
#include "runtime/lua/alloc.h"

#include <ljs.h>
#include <stdlib.h>

#ifdef LJS_USE_MIMALLOC
#include <mimalloc.h>
#endif

int ljs__alloc_init(ljs__alloc_t *a, size_t limit)
{
    a->heap = NULL;
    a->limit = limit;
    atomic_init(&a->current, 0);
    atomic_init(&a->peak, 0);
    atomic_init(&a->failed, 0);
    atomic_init(&a->allocated, 0);
    a->on_refuse = NULL;
    a->refuse_ctx = NULL;
#ifdef LJS_USE_MIMALLOC
    a->heap = mi_heap_new();
    if (a->heap == NULL)
        return LJS_ENOMEM;
#endif
    return LJS_OK;
}

void ljs__alloc_fini(ljs__alloc_t *a)
{
#ifdef LJS_USE_MIMALLOC
    if (a->heap != NULL)
        mi_heap_destroy(a->heap);
#endif
    a->heap = NULL;
}

static void *raw_realloc(ljs__alloc_t *a, void *ptr, size_t nsize)
{
#ifdef LJS_USE_MIMALLOC
    return mi_heap_realloc(a->heap, ptr, nsize);
#else
    (void)a;
    return realloc(ptr, nsize);
#endif
}

static void raw_free(void *ptr)
{
#ifdef LJS_USE_MIMALLOC
    mi_free(ptr);
#else
    free(ptr);
#endif
}

void *ljs__alloc_lua(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ljs__alloc_t *a = ud;
    /* When ptr is NULL, osize encodes the object type, not a size. */
    size_t old = ptr != NULL ? osize : 0;
    /* Single writer: relaxed load + store is enough and avoids a locked RMW
     * on every allocation; readers only report. */
    size_t cur = atomic_load_explicit(&a->current, memory_order_relaxed);
    if (nsize == 0) {
        raw_free(ptr);
        atomic_store_explicit(&a->current, cur - old, memory_order_relaxed);
        return NULL;
    }
    if (nsize > old && cur + (nsize - old) > a->limit) {
        atomic_store_explicit(&a->failed, atomic_load_explicit(&a->failed, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        if (a->on_refuse != NULL)
            a->on_refuse(a->refuse_ctx);
        return NULL;
    }
    void *p = raw_realloc(a, ptr, nsize);
    if (p == NULL)
        return NULL;
    cur = cur - old + nsize;
    atomic_store_explicit(&a->current, cur, memory_order_relaxed);
    if (nsize > old)
        atomic_store_explicit(&a->allocated,
                              atomic_load_explicit(&a->allocated, memory_order_relaxed) + (nsize - old),
                              memory_order_relaxed);
    if (cur > atomic_load_explicit(&a->peak, memory_order_relaxed))
        atomic_store_explicit(&a->peak, cur, memory_order_relaxed);
    return p;
}
