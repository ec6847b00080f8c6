/* gc.h - the GC policy of each worker's Lua state (LJS_GC_MODE).
 *
 * managed (default): automatic collection is stopped; GC work is paced by
 * allocation (each state owes steps in proportion to the bytes it
 * allocated, so a cycle ends before memory runs far past what the last one
 * left live, however little CPU the worker gets: NOTES-gc.md), and
 * LJS_GC_BUDGET_US is the time target for extra steps that finish cycles
 * early when there is time to spare. Where the work runs:
 *  - workers 1..n-1: an affine job queued after the frame's commit, run in
 *    the background while the host does other work; it pays the state's
 *    debt, then steps within the budget until the cycle ends or the next
 *    frame starts. The job is ahead of any batch in that worker's queue,
 *    so the state is never stepped while it runs scripts; the owner never
 *    waits for it.
 *  - worker 0 (the owner's state): its debt is an affine job queued when
 *    the next frame starts, run by the owner thread while it waits for
 *    stolen batches (other workers take its share of the batches
 *    meanwhile); a frame with no such wait leaves it queued, and it runs
 *    at the frame's end only after two such frames in a row or past the
 *    ceiling; the rest of its budget only in idle time during frames.
 *  - any worker, idle during a frame: short steps, within the budget.
 * A full collection past LJS_GC_FULL_MB or every LJS_GC_FULL_S seconds,
 * one state per frame.
 * generational / incremental: Lua's own collector, untouched.
 * In every mode the sandbox's collectgarbage cannot change the policy
 * (ljs__gc_open_lib). */
#ifndef LJS_RUNTIME_GC_H
#define LJS_RUNTIME_GC_H

#include "jobs/sched.h"

#include <ljs.h>
#include <lua.h>
#include <stdatomic.h>

struct ljs_runtime_s;
struct ljs__worker_s;

#define LJS__GC_COUNT_FIELD(type, name) +1
#define LJS__GC_NSTATS (0 LJS_GC_STATS_FIELDS(LJS__GC_COUNT_FIELD))

/* Per-state policy state and counters. Everything but `pub*`, `busy` and
 * `job_frame` is touched only on the worker's own thread. */
typedef struct ljs__gc_s {
    int managed;
    size_t live_after_cycle; /* bytes when the last cycle ended */
    int in_cycle;            /* a cycle is under way (steps continue it) */
    size_t cycle_start;      /* bytes when the current cycle began */
    double last_full_ms;
    ljs_gc_stats_t st;   /* this thread's counters, published into pub */
    uint64_t idle_frame; /* frame whose idle GC time idle_used_ms counts */
    double idle_used_ms;
    /* Allocation pacing. */
    uint64_t alloc_mark;   /* alloc.allocated when debt was last counted */
    double owed;           /* steps owed to allocation */
    double owed_old;       /* worker 0: the part owed since before this frame */
    uint32_t cycle_steps;  /* steps taken by the cycle under way */
    uint32_t pace_steps;   /* steps the last finished cycle took */
    uint64_t behind_frame; /* last frame counted in st.behind */
    /* Background job handoff: the owner sets busy and job_frame, then
     * queues the job; the job clears busy when done (release). */
    atomic_int busy;
    _Atomic uint64_t job_frame;
    /* Counters for the owner, copied at the end of each job and step into
     * two slots in turn (field bits in atomics): `latest` names the last
     * complete one, so a reader never waits for a preempted worker. */
    _Atomic uint64_t pub_latest;
    _Atomic uint64_t pub[2][LJS__GC_NSTATS];
} ljs__gc_t;

/* Set the state's collector up per cfg.gc_mode. Thread: same-worker. */
LJS_HIDDEN void ljs__gc_setup(struct ljs__worker_s *w);

/* Replace the sandbox's collectgarbage by one that reads but never steers
 * (README "Garbage collection"). Runs under lua_pcall. Thread: same-worker. */
LJS_HIDDEN void ljs__gc_open_lib(lua_State *L);

/* Scheduler idle hook (ud = the runtime): while the owner has opened
 * rt->gc_idle_frame, one short GC step of this worker's own state, within
 * the frame's budget. Returns 1 if it stepped. Thread: worker `worker`. */
LJS_HIDDEN int ljs__gc_idle(void *ud, uint32_t worker);

/* Let workers step their GC when idle during frame `frame` (0 = stop).
 * Thread: owner. */
LJS_HIDDEN void ljs__gc_idle_open(struct ljs_runtime_s *rt, uint64_t frame);

/* A frame begins (rt->frame counts the previous one): background GC jobs
 * still running pause once their debt is paid, so the frame's script
 * loads and batches on those workers wait for no more than the debt; the
 * owner's state's debt is queued to run while the owner waits for
 * batches. Thread: owner. */
LJS_HIDDEN void ljs__gc_frame_begin(struct ljs_runtime_s *rt);

/* After a frame's commit: queue every other worker's GC job (not waited
 * for) and finish the owner state's own debt job. Thread: owner. */
LJS_HIDDEN void ljs__gc_frame(struct ljs_runtime_s *rt);

/* Wait until no background GC job is queued or running (destroy, trace
 * flush). Thread: owner, not during a frame. Blocks: yes (helping). */
LJS_HIDDEN void ljs__gc_quiesce(struct ljs_runtime_s *rt);

#endif
