/* trace.h - Chrome trace-event recording (LJS_TRACE).
 *
 * Each worker appends spans (start, duration, what) to its own ring, so
 * recording takes no lock and no allocation; a full ring overwrites its
 * oldest spans, so memory stays bounded (LJS_TRACE_SPANS per worker) and
 * the file holds the most recent ones. The owner writes the file between
 * frames (ljs_trace_flush, and at ljs_runtime_destroy): every span a worker
 * recorded during a frame is visible then, because the frame's last job
 * on each worker completed before it. */
#ifndef LJS_RUNTIME_TRACE_H
#define LJS_RUNTIME_TRACE_H

#include "jobs/sched.h" /* LJS_HIDDEN */

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

typedef enum ljs__span_kind_e {
    LJS__SPAN_FRAME,
    LJS__SPAN_RELOADS, /* hot reload, query sync and posts at frame start */
    LJS__SPAN_UPDATE,  /* phases, on the owner's track */
    LJS__SPAN_EVENTS,
    LJS__SPAN_COMMIT,
    LJS__SPAN_END, /* structural changes, unloads, GC jobs */
    LJS__SPAN_BATCH_UPDATE,
    LJS__SPAN_BATCH_EVENT,
    LJS__SPAN_BATCH_RELOAD,
    LJS__SPAN_GC,      /* a state's GC work after the phases */
    LJS__SPAN_GC_IDLE, /* a GC step while the worker had no batch */
    LJS__SPAN_GC_FULL,
    LJS__SPAN_KINDS
} ljs__span_kind_t;

typedef struct ljs__span_s {
    uint64_t t0, t1; /* ljs__now_ns */
    uint32_t kind;
    uint32_t name; /* interned name (batches: the script), or UINT32_MAX */
    uint32_t a,
        b; /* batches: first index and count; GC: KiB before, after; frame: its number, low and high half */
} ljs__span_t;

typedef struct ljs__trace_ring_s {
    ljs__span_t *spans;
    uint32_t mask;
    uint64_t head; /* spans ever recorded; the ring holds the last mask+1 */
} __attribute__((aligned(64))) ljs__trace_ring_t;

typedef struct ljs__trace_s {
    char path[512];
    uint64_t origin_ns; /* time 0 of the file */
    uint32_t nworkers;
    ljs__trace_ring_t *rings;
    char **names;
    uint32_t nnames, names_cap;
} ljs__trace_t;

/* NULL in *out when path is empty (tracing off). Thread: owner.
 * Returns LJS_OK or LJS_ENOMEM. */
LJS_HIDDEN int ljs__trace_create(const char *path, uint32_t nworkers, uint32_t spans, ljs__trace_t **out);
LJS_HIDDEN void ljs__trace_destroy(ljs__trace_t *tr);

/* A stable id for `name`, kept for the trace's lifetime (a script may be
 * unloaded before the file is written). Thread: owner, outside phases.
 * Returns UINT32_MAX when out of memory (the spans then go unnamed). */
LJS_HIDDEN uint32_t ljs__trace_intern(ljs__trace_t *tr, const char *name);

/* Record a span on `worker`'s ring. Thread: worker `worker` (the owner is
 * worker 0). No-op when tr is NULL. */
static inline void ljs__trace_add(ljs__trace_t *tr, uint32_t worker, ljs__span_kind_t kind, uint32_t name,
                                  uint64_t t0, uint64_t t1, uint32_t a, uint32_t b)
{
    if (tr == NULL)
        return;
    ljs__trace_ring_t *r = &tr->rings[worker];
    ljs__span_t *s = &r->spans[r->head & r->mask];
    s->t0 = t0;
    s->t1 = t1;
    s->kind = (uint32_t)kind;
    s->name = name;
    s->a = a;
    s->b = b;
    r->head++;
}

/* Write the file (replaced atomically). Thread: owner, between frames.
 * Returns LJS_OK or LJS_EIO (ljs_last_error says why). */
LJS_HIDDEN int ljs__trace_write(const ljs__trace_t *tr);

/* Write `s` as a JSON string literal (quotes, escapes). Shared by the
 * trace and the JSON report. Thread: any. */
LJS_HIDDEN void ljs__json_string(FILE *f, const char *s);

/* Spans overwritten before they could be written. Thread: owner. */
LJS_HIDDEN uint64_t ljs__trace_lost(const ljs__trace_t *tr);

#endif
