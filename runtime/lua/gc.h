/* gc.h - the GC policy of each worker's Lua state (LJS_GC_MODE).
 *
 * managed (default): automatic collection is stopped; after each frame's
 * commit every state runs GC steps as an affine job on its own worker,
 * within LJS_GC_BUDGET_US, a budget raised when the state's memory runs
 * ahead of what the last cycle left live (a fixed budget below the garbage
 * rate lets memory run away: NOTES-gc.md), with a full collection past
 * LJS_GC_FULL_MB or every LJS_GC_FULL_S seconds, one state per frame.
 * generational / incremental: Lua's own collector, untouched. */
#ifndef LJS_RUNTIME_GC_H
#define LJS_RUNTIME_GC_H

#include "jobs/sched.h"

#include <ljs.h>
#include <lua.h>

struct ljs_runtime_s;
struct ljs__worker_s;

/* Per-state policy state and counters (owned by the worker). */
typedef struct ljs__gc_s {
    int managed;
    size_t live_after_cycle; /* bytes when the last cycle ended */
    int in_cycle;            /* a cycle is under way (steps continue it) */
    size_t cycle_start;      /* bytes when the current cycle began */
    double last_full_ms;
    ljs_gc_stats_t st;
    int warned;
    uint64_t idle_frame; /* frame whose idle GC time idle_used_ms counts */
    double idle_used_ms;
} ljs__gc_t;

/* Set the state's collector up per cfg.gc_mode. Thread: same-worker. */
LJS_HIDDEN void ljs__gc_setup(struct ljs__worker_s *w);

/* Scheduler idle hook (ud = the runtime): while the owner has opened
 * rt->gc_idle_frame, one short GC step of this worker's own state, within
 * the frame's budget. Returns 1 if it stepped. Thread: worker `worker`. */
LJS_HIDDEN int ljs__gc_idle(void *ud, uint32_t worker);

/* Let workers step their GC when idle during frame `frame` (0 = stop).
 * Thread: owner. */
LJS_HIDDEN void ljs__gc_idle_open(struct ljs_runtime_s *rt, uint64_t frame);

/* After a frame: GC work on every state (managed mode). Thread: owner. */
LJS_HIDDEN void ljs__gc_frame(struct ljs_runtime_s *rt);

#endif
