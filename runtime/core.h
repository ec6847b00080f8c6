/* core.h - the runtime object and its per-worker slots (internal).
 *
 * The one hub header: it sees the types of every part (lua/, cache/,
 * scripts/, world/, observe/) because the runtime embeds them, and every part
 * may include it to reach the runtime and its workers. It declares no
 * functions of the lifecycle (runtime.h) or of the frame, so no lower file
 * depends on runtime.c or frame.c. */
#ifndef LJS_RUNTIME_CORE_H
#define LJS_RUNTIME_CORE_H

#include "jobs/sched.h"
#include "runtime/error.h"
#include "runtime/lua/alloc.h"
#include "runtime/observe/console.h"
#include "runtime/world/event.h"
#include "runtime/lua/gc.h"
#include "runtime/world/post.h"
#include "runtime/world/query.h"
#include "runtime/scripts/script.h"
#include "runtime/scripts/values.h"
#include "runtime/observe/trace.h"
#include "runtime/scripts/watch.h"
#include "runtime/lua/watchdog.h"
#include "runtime/world/world.h"

#include <ljs.h>
#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>

/* Everything a worker owns. Aligned to a cache line so workers' counters do
 * not false-share. Only its own thread touches `L`, `alloc`'s heap and the
 * call context; the owner reads the counters between frames. */
typedef struct ljs__worker_s {
    ljs__alloc_t alloc;
    lua_State *L;
    uint32_t index;
    struct ljs_runtime_s *rt;
    /* Profiler hooks as this worker sees them (NULL: unset, one branch).
     * Written only by a job on this worker's own thread, which calls the
     * old hooks' thread_stop and the new ones' thread_start around the
     * swap: every begin hook is paired with the end hook of the same set,
     * and thread_stop is the last call of a set on its thread, even for
     * background GC steps and parking between frames. Thread: this
     * worker's. */
    const ljs_profiler_t *prof;
    /* Instances of scripts, indexed by script id. The owner grows the
     * arrays before it dispatches load jobs (happens-before via the job). */
    ljs__inst_t *inst;
    ljs__sstat_t *sstat;
    uint32_t ninst;
    uint32_t nrefs; /* live entries of the instance-function table (script.c) */
    /* The call in progress. */
    uint64_t cur_id;
    uint32_t cur_slot;
    uint32_t cur_script;
    double dt;
    /* set() writes of the call in progress, landed when it returns (api.c). */
    struct {
        uint32_t field;
        ljs__value_t v;
    } sets[32];
    uint32_t nsets;
    size_t call_out0; /* outbox bytes when the call began (LJS_CALL_QUEUE_KB) */
    uint32_t loading; /* worker 0: id of the script being loaded, else UINT32_MAX */
    /* Messages emitted during the current phase. */
    ljs__msgbuf_t out;
    int out_failed;                    /* an append ran out of memory (reported after phase) */
    struct ck_epoch_record *epoch_rec; /* bytecode cache reads (cache.h) */
    ljs__wd_worker_t wd;               /* runaway limits (lua/watchdog.h) */
    /* Query signatures this worker missed this frame (cached at the next
     * sync), and lookup counters. */
    struct {
        uint64_t all, none;
    } wanted[16];
    uint32_t nwanted;
    uint64_t qhits, qmisses;
    ljs__gc_t gc;
    uint64_t updates;
    uint64_t delivered;
    uint64_t dropped; /* messages refused by LJS_CALL_QUEUE_KB (owner sums them) */
    uint64_t errors;
    ljs__vcache_t vals; /* string caches, list views (scripts/values.h) */
    char errmsg[1024];  /* last load error of this worker */
} __attribute__((aligned(64))) ljs__worker_t;

struct ljs_runtime_s {
    ljs_config_t cfg;
    ljs_config_t given; /* as the host passed it (workers 0 unresolved): for ljs_config_source */
    ljs__sched_t *sched;
    ljs__worker_t *workers; /* cfg.workers slots */
    uint32_t nworkers;
    pthread_t owner;
    int in_frame;
    uint64_t frame;
    ljs__world_t world;
    ljs__console_t console;
    ljs__watchdog_t watchdog;
    ljs__watch_t *watch; /* hot reload */
    ljs__qcache_t queries;
    ljs__posts_t *posts;         /* tag changes posted by any thread */
    ljs__qentry_t query_scratch; /* ljs_query's result with the cache off */
    /* Query views (api.c) point into the query cache: they are valid only
     * until this changes. The owner bumps it, outside phases, whenever the
     * cache may change or a frame ends. */
    uint64_t view_epoch;
    uint64_t reloads, reload_errors;
    ljs__script_t *scripts;
    uint32_t nscripts; /* slots, used or free */
    /* Events waiting for the next event phase, and host sequence. */
    ljs__msgbuf_t events;
    ljs__msgbuf_t commands;
    uint32_t *groups; /* event phase: start of each target's events */
    uint32_t groups_cap;
    uint32_t host_seq;
    uint64_t events_sent;
    uint64_t events_dropped;
    ljs_stats_t last;    /* phase times: last frame and totals */
    ljs__trace_t *trace; /* LJS_TRACE, NULL when off */
    uint64_t lua_peak;   /* highest all-states total after a frame */
    /* ljs_memory_report's arrays, reused between calls. */
    ljs_state_memory_t *rep_states;
    ljs_gc_stats_t *rep_gc;
    ljs_script_memory_t *rep_scripts;
    uint32_t rep_scripts_cap;
    /* The frame number while workers may spend idle time on GC steps of
     * their own state (script phases and commit), 0 otherwise. Workers read
     * it from their idle loop, so it is the only frame datum they may see
     * outside a job. */
    _Atomic uint64_t gc_idle_frame;
    /* Background GC (lua/gc.c): the newest frame started, read by GC jobs
     * still running so they pause; the counters of the jobs queued on
     * workers 1..n-1 (never waited for during a frame) and of the owner's
     * own debt job; the owner's rate limit for the "cannot keep up"
     * warning. */
    _Atomic uint64_t gc_started;
    /* The worker whose turn it is to collect fully, and the frame of the
     * last full collection (read and written only by the turn's holder). */
    _Atomic uint32_t gc_full_turn;
    uint64_t gc_full_frame;
    ljs__counter_t gc_bg;
    ljs__counter_t gc_own;
    uint32_t gc_own_skips; /* frame ends the owner's job was left queued */
    uint64_t gc_behind_seen;
    double gc_warned_ms;
    /* Engine bindings (host/host.c): host functions, deferred calls,
     * events to the host. */
    struct ljs__host_s *host;
    /* The profiler hooks the owner last set (each worker keeps its own
     * copy of the pointer, see ljs__worker_t.prof). Thread: owner. */
    const ljs_profiler_t *prof;
};

/* The worker of a state (stored in its extra space). Thread: same-worker. */
static inline ljs__worker_t *ljs__worker_of(lua_State *L)
{
    return *(ljs__worker_t **)lua_getextraspace(L);
}

/* LJS_OK when the calling thread is `rt`'s owner (or rt is NULL: the entry
 * point's own argument check reports that); otherwise LJS_EBADTHREAD, with
 * a message naming `fn`, for ljs_last_error. Every owner-only public entry
 * point starts with it, in every build: one pthread_self() comparison turns
 * a data race (another thread calling in, maybe during a frame) into an
 * error the host can see. Thread: any. Blocks: no. */
static inline int ljs__owner_check(const ljs_runtime_t *rt, const char *fn)
{
    if (rt == NULL || pthread_equal(pthread_self(), rt->owner))
        return LJS_OK;
    return ljs__error(LJS_EBADTHREAD,
                      "%s: called from a thread that is not the runtime's owner (the thread that called "
                      "ljs_runtime_create); only functions marked 'Thread: any' in ljs.h may be",
                      fn);
}

#define LJS_CHECK_OWNER(rt, fn)                            \
    do {                                                   \
        int ljs__owner_rc_ = ljs__owner_check((rt), (fn)); \
        if (ljs__owner_rc_ != LJS_OK)                      \
            return ljs__owner_rc_;                         \
    } while (0)

#ifdef LJS_DEBUG
#include <assert.h>
#define LJS_ASSERT(x) assert(x)
#define LJS_ASSERT_OWNER(rt) assert(pthread_equal(pthread_self(), (rt)->owner))
#else
#define LJS_ASSERT(x) ((void)0)
#define LJS_ASSERT_OWNER(rt) ((void)0)
#endif

#endif
