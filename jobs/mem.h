/* mem.h - every C-side allocation of ljs goes through these, so a host can
 * route them to its own allocator with ljs_allocator_set (engines that
 * track memory by subsystem). Lua states do not: they allocate from their
 * worker's mimalloc heap (runtime/lua/alloc.c), counted per worker.
 * `.ci/layers` refuses a bare malloc/calloc/realloc/free/strdup/aligned_alloc
 * anywhere else in jobs/ and runtime/. All: thread any. */
#ifndef LJS_JOBS_MEM_H
#define LJS_JOBS_MEM_H

#include <stddef.h>

#include "jobs/sched.h" /* LJS_HIDDEN */

LJS_HIDDEN void *ljs__malloc(size_t size);
/* Zeroed; NULL when n * size overflows. */
LJS_HIDDEN void *ljs__calloc(size_t n, size_t size);
/* Only for blocks from ljs__malloc/ljs__calloc/ljs__realloc. */
LJS_HIDDEN void *ljs__realloc(void *ptr, size_t size);
/* align: a power of two; size is rounded up to a multiple of it. */
LJS_HIDDEN void *ljs__aligned_alloc(size_t align, size_t size);
LJS_HIDDEN void ljs__free(void *ptr);
LJS_HIDDEN char *ljs__strdup(const char *s);

#endif
