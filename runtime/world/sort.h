/* sort.h - an in-place sort for the frame's hot paths.
 *
 * glibc's qsort is a merge sort that mallocs a scratch buffer for arrays
 * over a small size; the frame must not allocate in steady state
 * (test_steady), so event, command, binding and query-delta sorts use this
 * heapsort instead: in place, O(n log n), no allocation. Not stable; every
 * caller sorts on unique keys. */
#ifndef LJS_RUNTIME_SORT_H
#define LJS_RUNTIME_SORT_H

#include "jobs/sched.h"

#include <stddef.h>

/* Elements of at most 64 bytes. Thread: any. */
LJS_HIDDEN void ljs__sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif
