/* mem.c - ljs's C-side allocations, through the host's hooks or libc.
 *
 * The hooks are process-wide (the bytecode cache outlives runtimes) and
 * may only change while ljs holds no C-side block: a block must be freed
 * by the allocator that made it. A live-block counter enforces that; it is
 * one relaxed atomic per allocation, and none of these run per entity. */
#include "jobs/mem.h"

#include <ljs.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"

static void *libc_alloc(void *ud, size_t size, size_t align)
{
    (void)ud;
    if (align <= _Alignof(max_align_t))
        return malloc(size);
    return aligned_alloc(align, size);
}

static void *libc_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    return realloc(ptr, size);
}

static void libc_free(void *ud, void *ptr)
{
    (void)ud;
    free(ptr);
}

static const ljs_allocator_t libc_hooks = {libc_alloc, libc_realloc, libc_free, NULL};
static ljs_allocator_t hooks = {libc_alloc, libc_realloc, libc_free, NULL};
static atomic_size_t live;

int ljs_allocator_set(const ljs_allocator_t *a)
{
    if (a != NULL && (a->alloc == NULL || a->realloc == NULL || a->free == NULL))
        return ljs__error(LJS_EINVAL, "ljs_allocator_set: alloc, realloc and free must all be set");
    size_t n = atomic_load(&live);
    if (n != 0)
        return ljs__error(LJS_EBUSY,
                          "ljs_allocator_set: ljs still holds %zu C-side blocks (set it before the first "
                          "ljs_runtime_create or after the last ljs_runtime_destroy)",
                          n);
    hooks = a ? *a : libc_hooks;
    return LJS_OK;
}

size_t ljs_allocator_live(void)
{
    return atomic_load_explicit(&live, memory_order_relaxed);
}

static void *counted(void *p)
{
    if (p != NULL)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *ljs__malloc(size_t size)
{
    return counted(hooks.alloc(hooks.ud, size ? size : 1, _Alignof(max_align_t)));
}

void *ljs__calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = ljs__malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *ljs__realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return ljs__malloc(size);
    return hooks.realloc(hooks.ud, ptr, size ? size : 1);
}

void *ljs__aligned_alloc(size_t align, size_t size)
{
    size = (size + align - 1) / align * align;
    return counted(hooks.alloc(hooks.ud, size ? size : align, align));
}

void ljs__free(void *ptr)
{
    if (ptr == NULL)
        return;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    hooks.free(hooks.ud, ptr);
}

char *ljs__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = ljs__malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}
