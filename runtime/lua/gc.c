/* gc.c - per-state GC policy (see gc.h).
 *
 * 5.4.4 pitfalls from NOTES-gc.md, each handled here:
 * 1. debt piles up while the collector is stopped: RESTART then STOP
 *    before stepping resets it, so the first step is not a whole cycle;
 * 2. step size is not time: stepmul 1 keeps LUA_GCSTEP(32) short;
 * 4. after a cycle ends, further steps are no-ops: stop when one returns 1.
 *
 * Pacing. A step (LUA_GCSTEP(32) at stepmul 1) is a fixed amount of
 * collector work, so it is the unit of debt: a cycle that took S steps
 * while the state may allocate H bytes before it must end (H: LJS_GC_PAUSE
 * minus 100 percent of the live heap) means every allocated byte owes
 * S / H steps. Work counted in steps, not time, keeps memory bounded on a
 * machine that hands the worker little CPU (a wall-clock budget did not:
 * NOTES-gc.md, bench gc with burners); the time budget only decides how
 * many steps beyond the debt a state takes to finish its cycle early. */
#include "runtime/lua/gc.h"

#include "runtime/clock.h"

#include "runtime/core.h"

#include <lauxlib.h>

#include <math.h>
#include <string.h>
#include <time.h>

/* Kilobytes of debt per LUA_GCSTEP call (pitfall 2: ~0.1-0.7 ms). */
#define STEP_KB 32
/* Margin on the cycle under way when it is already longer than the last:
 * a heap that grew needs more steps. */
#define PACE_MARGIN 1.25
/* Allocation a cycle may take, at least (a tiny heap's 75% is nothing). */
#define MIN_HEADROOM ((size_t)256 << 10)
/* First guess of a cycle's steps before one has ended: bytes per step. */
#define GUESS_BYTES_PER_STEP ((size_t)16 << 10)
/* Most steps one job takes (a backstop far past any real heap's cycle). */
#define MAX_JOB_STEPS 1000000u
/* The "cannot keep up" warning repeats at most this often. */
#define WARN_EVERY_MS 30000.0

static size_t current(const ljs__worker_t *w)
{
    return atomic_load_explicit(&w->alloc.current, memory_order_relaxed);
}

/* Copy st into the slot after `latest`, then name it latest (release).
 * Thread: same-worker (the one writer). */
static void publish(ljs__worker_t *w)
{
    uint64_t n = atomic_load_explicit(&w->gc.pub_latest, memory_order_relaxed) + 1;
    _Atomic uint64_t *slot = w->gc.pub[n & 1];
    /* The previous latest store before this slot's stores: a reader that
     * sees any of them also sees that latest moved (its fence pairs). */
    atomic_thread_fence(memory_order_release);
    size_t k = 0;
#define PUT(type, name)                                                \
    do {                                                               \
        uint64_t bits;                                                 \
        type v = w->gc.st.name;                                        \
        memcpy(&bits, &v, sizeof bits);                                \
        atomic_store_explicit(&slot[k++], bits, memory_order_relaxed); \
    } while (0);
    LJS_GC_STATS_FIELDS(PUT)
#undef PUT
    atomic_store_explicit(&w->gc.pub_latest, n, memory_order_release);
}

/* The last published counters. Retries only while the worker is busy
 * publishing over the very slot read (two publishes during one copy),
 * never while it is preempted. Thread: any. */
static void read_published(const ljs__worker_t *w, ljs_gc_stats_t *out)
{
    for (;;) {
        uint64_t n = atomic_load_explicit(&w->gc.pub_latest, memory_order_acquire);
        const _Atomic uint64_t *slot = w->gc.pub[n & 1];
        size_t k = 0;
#define GET(type, name)                                                         \
    do {                                                                        \
        uint64_t bits = atomic_load_explicit(&slot[k++], memory_order_relaxed); \
        type v;                                                                 \
        memcpy(&v, &bits, sizeof v);                                            \
        out->name = v;                                                          \
    } while (0);
        LJS_GC_STATS_FIELDS(GET)
#undef GET
        atomic_thread_fence(memory_order_acquire);
        /* The slot is rewritten at n + 2: not started if latest < n + 1. */
        if (atomic_load_explicit(&w->gc.pub_latest, memory_order_relaxed) <= n)
            return;
    }
}

void ljs__gc_setup(ljs__worker_t *w)
{
    lua_State *L = w->L;
    const char *mode = w->rt->cfg.gc_mode;
    memset(&w->gc, 0, sizeof w->gc);
    atomic_init(&w->gc.busy, 0);
    atomic_init(&w->gc.job_frame, 0);
    atomic_init(&w->gc.pub_latest, 0);
    for (size_t k = 0; k < LJS__GC_NSTATS; k++) {
        atomic_init(&w->gc.pub[0][k], 0);
        atomic_init(&w->gc.pub[1][k], 0);
    }
    w->gc.last_full_ms = ljs__now_ms();
    w->gc.alloc_mark = atomic_load_explicit(&w->alloc.allocated, memory_order_relaxed);
    if (!strcmp(mode, "generational")) {
        lua_gc(L, LUA_GCGEN, 0, 0);
    } else if (!strcmp(mode, "incremental")) {
        lua_gc(L, LUA_GCINC, 0, 0, 0);
    } else {
        w->gc.managed = 1;
        lua_gc(L, LUA_GCINC, 0, 1, 0); /* stepmul 1: short steps */
        lua_gc(L, LUA_GCSTOP);
    }
}

/* 1 if the state has GC work to do. Like Lua's own pause: no new cycle
 * until memory has grown to LJS_GC_PAUSE percent of what the last cycle
 * left live, so an idle heap costs nothing per frame. 175 rather than
 * Lua's 200: a cycle spread over frames lets garbage pile up while it
 * runs, and starting it earlier keeps the peak near Lua's own (bench: gc). */
static int needs_work(const ljs__worker_t *w)
{
    size_t live = w->gc.live_after_cycle;
    return w->gc.in_cycle || live == 0 || (double)current(w) * 100.0 >= (double)live * w->rt->cfg.gc_pause;
}

/* Steps owed per allocated byte (see the top comment). */
static double steps_per_byte(const ljs__worker_t *w)
{
    size_t cur = current(w), live = w->gc.live_after_cycle ? w->gc.live_after_cycle : cur;
    double cycle =
        w->gc.pace_steps ? (double)w->gc.pace_steps : (double)cur / (double)GUESS_BYTES_PER_STEP + 1.0;
    if ((double)w->gc.cycle_steps * PACE_MARGIN > cycle) /* this cycle is longer than the last */
        cycle = (double)w->gc.cycle_steps * PACE_MARGIN;
    double headroom = (double)live * (w->rt->cfg.gc_pause - 100) / 100.0;
    if (headroom < (double)MIN_HEADROOM)
        headroom = (double)MIN_HEADROOM;
    return cycle / headroom;
}

/* Count the bytes allocated since the last call as debt (none while the
 * state waits for its next cycle: the pause is free). */
static void add_debt(ljs__worker_t *w)
{
    uint64_t a = atomic_load_explicit(&w->alloc.allocated, memory_order_relaxed);
    uint64_t d = a - w->gc.alloc_mark;
    w->gc.alloc_mark = a;
    if (!needs_work(w)) {
        w->gc.owed = 0.0;
        return;
    }
    w->gc.owed += (double)d * steps_per_byte(w);
}

/* Past this, the pacing was wrong (a heap that changed shape): the job
 * finishes the cycle whatever it costs, so memory stays bounded. */
static int over_ceiling(const ljs__worker_t *w)
{
    size_t live = w->gc.live_after_cycle;
    double pause = w->rt->cfg.gc_pause / 100.0;
    return live > 0 && (double)current(w) > (double)live * (pause + 2.0 * (pause - 1.0));
}

static void full_collect(ljs__worker_t *w)
{
    lua_gc(w->L, LUA_GCRESTART);
    lua_gc(w->L, LUA_GCCOLLECT);
    lua_gc(w->L, LUA_GCSTOP);
    w->gc.st.full++;
    w->gc.st.cycles++;
    w->gc.live_after_cycle = current(w);
    w->gc.last_full_ms = ljs__now_ms();
    w->gc.in_cycle = 0;
    w->gc.cycle_steps = 0;
    w->gc.owed = 0.0;
}

/* One short step with the collector stopped around it. Returns 1 if it
 * finished a cycle. */
static int step(ljs__worker_t *w)
{
    if (!w->gc.in_cycle) {
        w->gc.cycle_start = current(w);
        w->gc.cycle_steps = 0;
    }
    w->gc.in_cycle = 1;
    w->gc.st.steps++;
    w->gc.cycle_steps++;
    w->gc.owed = w->gc.owed > 1.0 ? w->gc.owed - 1.0 : 0.0;
    if (!lua_gc(w->L, LUA_GCSTEP, STEP_KB)) /* pitfall 4: 1 means a cycle ended */
        return 0;
    w->gc.st.cycles++;
    /* What a cycle leaves includes everything allocated while it ran (new
     * objects survive it), so on a slow cycle memory at its end overstates
     * the live heap; at its start it holds the garbage it then freed. Both
     * bound live from above: take the smaller, or the pause threshold
     * ratchets up (bench: gc). */
    size_t end = current(w);
    w->gc.live_after_cycle = end < w->gc.cycle_start ? end : w->gc.cycle_start;
    w->gc.in_cycle = 0;
    w->gc.pace_steps = w->gc.cycle_steps;
    w->gc.cycle_steps = 0;
    w->gc.owed = 0.0;
    return 1;
}

/* Reset the debt allocation piled up while the collector was stopped
 * (pitfall 1), so the next step is short. */
static void reset_debt(ljs__worker_t *w)
{
    lua_gc(w->L, LUA_GCRESTART);
    lua_gc(w->L, LUA_GCSTOP);
}

static void account(ljs__worker_t *w, size_t before, double ms)
{
    size_t after = current(w);
    w->gc.st.total_ms += ms;
    if (after < before)
        w->gc.st.freed_bytes += before - after;
}

/* Profiler hooks around GC work (ljs_profiler_set); unset: one branch.
 * Thread: worker `worker`'s own. */
static void prof_gc(const ljs_runtime_t *rt, uint32_t worker, int begin)
{
    const ljs_profiler_t *p = rt->workers[worker].prof;
    if (p == NULL)
        return;
    if (begin && p->gc_begin)
        p->gc_begin(p->ud, worker);
    else if (!begin && p->gc_end)
        p->gc_end(p->ud, worker);
}

static uint32_t kib(size_t bytes)
{
    return (uint32_t)(bytes >> 10);
}

static double idle_used(const ljs__worker_t *w, uint64_t frame)
{
    return w->gc.idle_frame == frame ? w->gc.idle_used_ms : 0.0;
}

void ljs__gc_idle_open(ljs_runtime_t *rt, uint64_t frame)
{
    if (rt->workers[0].gc.managed)
        atomic_store_explicit(&rt->gc_idle_frame, frame, memory_order_release);
}

int ljs__gc_idle(void *ud, uint32_t worker)
{
    ljs_runtime_t *rt = ud;
    /* acquire: pairs with the owner's open, after which the worker's state
     * is its own until the gc job of the frame. */
    uint64_t frame = atomic_load_explicit(&rt->gc_idle_frame, memory_order_acquire);
    if (frame == 0)
        return 0;
    ljs__worker_t *w = &rt->workers[worker];
    if (!needs_work(w) || idle_used(w, frame) >= rt->cfg.gc_budget_us / 1000.0)
        return 0;
    if (w->gc.idle_frame != frame) {
        w->gc.idle_frame = frame;
        w->gc.idle_used_ms = 0.0;
    }
    prof_gc(rt, worker, 1);
    uint64_t t0 = ljs__now_ns();
    size_t before = current(w);
    reset_debt(w);
    step(w);
    uint64_t t1 = ljs__now_ns();
    prof_gc(rt, worker, 0);
    double ms = (double)(t1 - t0) / 1e6;
    ljs__trace_add(rt->trace, worker, LJS__SPAN_GC_IDLE, UINT32_MAX, t0, t1, kib(before), kib(current(w)));
    w->gc.idle_used_ms += ms;
    w->gc.st.idle_steps++;
    w->gc.st.idle_ms += ms;
    account(w, before, ms);
    publish(w);
    return 1;
}

/* Steps for frame `frame`: at least the debt (the whole cycle when memory
 * is past the ceiling), then more while `extra_ms` lasts and the next
 * frame has not started (with extra_ms 0, only the debt). A cycle's end
 * ends the job. */
static void run_steps(ljs_runtime_t *rt, ljs__worker_t *w, uint64_t frame, double extra_ms, uint64_t t0)
{
    double min = over_ceiling(w) ? (double)MAX_JOB_STEPS : ceil(w->gc.owed);
    double budget_ms = rt->cfg.gc_budget_us / 1000.0;
    uint32_t n = 0;
    double debt_ms = -1.0; /* time when the debt was paid */
    reset_debt(w);
    while (n < MAX_JOB_STEPS) {
        double ms = (double)(ljs__now_ns() - t0) / 1e6;
        if ((double)n >= min) {
            if (debt_ms < 0.0)
                debt_ms = ms;
            if (ms >= extra_ms || atomic_load_explicit(&rt->gc_started, memory_order_relaxed) > frame)
                break;
        }
        n++;
        if (step(w))
            break;
    }
    if (debt_ms < 0.0) /* the loop ended inside the debt (a cycle ended) */
        debt_ms = (double)(ljs__now_ns() - t0) / 1e6;
    lua_gc(w->L, LUA_GCSTOP);
    /* The debt alone took more than the budget: the budget cannot keep up. */
    if (min >= 1.0 && debt_ms > budget_ms && w->gc.behind_frame != frame) {
        w->gc.behind_frame = frame;
        w->gc.st.behind++;
    }
}

/* Full collections are spread so two states never collect fully in the
 * same frame: a turn goes round the workers. The holder collects fully
 * if it wants to and no full ran in this frame yet, then passes the turn
 * on; one that does not want to passes it at once. A turn, not a frame
 * number modulo the workers: a worker starved of CPU gets jobs only every
 * other frame, and must still get its turn. acquire/release: the turn
 * hands gc_full_frame over with it. Thread: worker `worker`'s own. */
static int full_turn(ljs_runtime_t *rt, uint32_t worker, uint64_t frame, int want_full)
{
    if (atomic_load_explicit(&rt->gc_full_turn, memory_order_acquire) != worker)
        return 0;
    int full = want_full && frame != rt->gc_full_frame;
    if (full)
        rt->gc_full_frame = frame;
    else if (want_full)
        return 0; /* a full ran in this frame already: keep the turn */
    atomic_store_explicit(&rt->gc_full_turn, (worker + 1) % rt->nworkers, memory_order_release);
    return full;
}

/* This state's GC work for frame `frame` (budget: what idle steps did not
 * use; own = the owner's debt job, which takes no extra steps). */
static void gc_work(ljs_runtime_t *rt, uint32_t worker, uint64_t frame, int own)
{
    ljs__worker_t *w = &rt->workers[worker];
    const ljs_config_t *cfg = &rt->cfg;
    prof_gc(rt, worker, 1);
    uint64_t t0ns = ljs__now_ns();
    double t0 = (double)t0ns / 1e6;
    size_t before = current(w);
    add_debt(w);
    int want_full = (cfg->gc_full_mb && before > ((size_t)cfg->gc_full_mb << 20)) ||
                    (cfg->gc_full_s && t0 - w->gc.last_full_ms > cfg->gc_full_s * 1000.0);
    int full = full_turn(rt, worker, frame, want_full);
    if (full) {
        full_collect(w);
        w->gc.st.last_full_frame = frame;
    } else if (needs_work(w))
        run_steps(rt, w, frame, own ? 0.0 : cfg->gc_budget_us / 1000.0 - idle_used(w, frame), t0ns);
    uint64_t t1 = ljs__now_ns();
    prof_gc(rt, worker, 0);
    double ms = (double)(t1 - t0ns) / 1e6;
    ljs__trace_add(rt->trace, worker, full ? LJS__SPAN_GC_FULL : LJS__SPAN_GC, UINT32_MAX, t0ns, t1,
                   kib(before), kib(current(w)));
    if (ms > w->gc.st.max_frame_ms)
        w->gc.st.max_frame_ms = ms;
    account(w, before, ms);
    publish(w);
}

/* Affine job on worker 1..n-1, in the background after a frame. */
static void bg_job(void *arg, uint32_t worker)
{
    ljs_runtime_t *rt = arg;
    ljs__worker_t *w = &rt->workers[worker];
    /* relaxed: the job's queueing (release/acquire) orders the owner's store. */
    gc_work(rt, worker, atomic_load_explicit(&w->gc.job_frame, memory_order_relaxed), 0);
    /* release: the owner that sees 0 may queue the next job, whose
     * job_frame store must not race with this job's load. */
    atomic_store_explicit(&w->gc.busy, 0, memory_order_release);
}

/* Affine job on worker 0 (the owner thread), queued when a frame starts:
 * the debt of the previous frame's allocation. */
static void own_job(void *arg, uint32_t worker)
{
    ljs_runtime_t *rt = arg;
    gc_work(rt, worker, atomic_load_explicit(&rt->gc_started, memory_order_relaxed), 1);
}

/* 1 while the owner's own job is queued. relaxed: only this thread runs
 * and counts it. Thread: owner. */
static int own_pending(ljs_runtime_t *rt)
{
    return atomic_load_explicit(&rt->gc_own.pending, memory_order_relaxed) != 0;
}

void ljs__gc_frame_begin(ljs_runtime_t *rt)
{
    if (!rt->workers[0].gc.managed)
        return;
    /* relaxed: a hint to running jobs; nothing is published through it. */
    atomic_store_explicit(&rt->gc_started, rt->frame + 1, memory_order_relaxed);
    if (!own_pending(rt)) /* one still queued counts all allocation since */
        ljs__sched_submit_affine(rt->sched, 0, own_job, rt, &rt->gc_own);
}

/* The owner's job runs at its first wait for other workers' batches. A
 * frame with no such wait (one batch per phase, or the others took every
 * batch) leaves it queued for the next frame's waits; after two frames
 * in a row, or with the state past its ceiling, it runs here: the lag,
 * and so the memory, stays bounded. */
static void own_frame_end(ljs_runtime_t *rt)
{
    if (!own_pending(rt)) {
        rt->gc_own_skips = 0;
        return;
    }
    if (++rt->gc_own_skips < 2 && !over_ceiling(&rt->workers[0]))
        return;
    rt->gc_own_skips = 0;
    ljs__sched_wait(rt->sched, &rt->gc_own);
}

static uint64_t behind_total(ljs_runtime_t *rt)
{
    uint64_t behind = 0;
    ljs_gc_stats_t st;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        read_published(&rt->workers[i], &st);
        behind += st.behind;
    }
    return behind;
}

/* Say so when allocation outruns LJS_GC_BUDGET_US: memory stays bounded
 * (steps follow the debt), but the debt costs more time than asked for.
 * Once, then at most every WARN_EVERY_MS. */
static void warn_behind(ljs_runtime_t *rt)
{
    uint64_t behind = behind_total(rt);
    if (behind == rt->gc_behind_seen)
        return;
    double now = ljs__now_ms();
    if (rt->gc_warned_ms != 0.0 && now - rt->gc_warned_ms < WARN_EVERY_MS)
        return;
    ljs__console_log(&rt->console, LJS_LOG_WARN, rt->frame, 0, "",
                     "GC: %llu state-frames needed more than LJS_GC_BUDGET_US=%u to keep up with allocation "
                     "(memory stays bounded, the steps cost the time; ljs_gc_stats().behind counts them: "
                     "raise LJS_GC_BUDGET_US or make less garbage)",
                     (unsigned long long)(behind - rt->gc_behind_seen), rt->cfg.gc_budget_us);
    rt->gc_behind_seen = behind;
    rt->gc_warned_ms = now;
}

void ljs__gc_frame(ljs_runtime_t *rt)
{
    if (!rt->workers[0].gc.managed)
        return;
    own_frame_end(rt);
    for (uint32_t i = 1; i < rt->nworkers; i++) {
        ljs__worker_t *w = &rt->workers[i];
        /* acquire: pairs with bg_job's release. Still busy: that job has
         * not run yet (the worker got no CPU); it counts this frame's
         * allocation too. */
        if (atomic_load_explicit(&w->gc.busy, memory_order_acquire))
            continue;
        atomic_store_explicit(&w->gc.busy, 1, memory_order_relaxed);
        atomic_store_explicit(&w->gc.job_frame, rt->frame, memory_order_relaxed);
        /* nowait: a worker preempted while parking must not hold the
         * owner here (it finds the job when next woken, before any batch). */
        ljs__sched_submit_affine_nowait(rt->sched, i, bg_job, rt, &rt->gc_bg);
    }
    warn_behind(rt);
}

void ljs__gc_quiesce(ljs_runtime_t *rt)
{
    ljs__sched_wait(rt->sched, &rt->gc_own);
    for (uint32_t i = 1; i < rt->nworkers; i++) /* a job queued without waking its worker */
        ljs__sched_wake(rt->sched, i);
    ljs__sched_wait(rt->sched, &rt->gc_bg);
}

int ljs_gc_stats(const ljs_runtime_t *rt, uint32_t worker, ljs_gc_stats_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_gc_stats");
    if (rt == NULL || out == NULL || worker >= rt->nworkers)
        return LJS_EINVAL;
    read_published(&rt->workers[worker], out);
    return LJS_OK;
}

/* Collect until memory stops shrinking: Lua halves its string table at
 * most once per cycle, so after many strings died one cycle is not enough
 * to give the memory back (measured: 300 KB -> 180 -> 110 -> 80 ...). */
static void collect_job(void *arg, uint32_t worker)
{
    ljs_runtime_t *rt = arg;
    ljs__worker_t *w = &rt->workers[worker];
    for (int i = 0; i < 16; i++) {
        size_t before = current(w);
        lua_gc(w->L, LUA_GCRESTART);
        lua_gc(w->L, LUA_GCCOLLECT);
        if (w->gc.managed)
            lua_gc(w->L, LUA_GCSTOP);
        w->gc.st.full++;
        if (current(w) + before / 64 >= before)
            break;
    }
    w->gc.live_after_cycle = current(w);
    w->gc.in_cycle = 0;
    w->gc.cycle_steps = 0;
    w->gc.owed = 0.0;
    w->gc.alloc_mark = atomic_load_explicit(&w->alloc.allocated, memory_order_relaxed);
    publish(w);
}

int ljs_gc_collect(ljs_runtime_t *rt)
{
    LJS_CHECK_OWNER(rt, "ljs_gc_collect");
    if (rt == NULL)
        return LJS_EINVAL;
    if (rt->in_frame)
        return LJS_EBUSY;
    /* Queued behind any background job of each worker (affine queues run
     * in order), so it collects after that job's steps. */
    ljs__sched_run_on_all(rt->sched, collect_job, rt);
    return LJS_OK;
}

/* ---- the sandbox's collectgarbage ---------------------------------------
 * Scripts share their state with every other script on the worker and the
 * runtime owns its policy, so collectgarbage reads but never steers: each
 * option Lua knows is accepted (ported scripts keep working) and every one
 * that would change or spend the collector's work is a no-op. */

static const char *const gc_opts[] = {"collect",      "stop",        "restart",    "count",
                                      "step",         "setpause",    "setstepmul", "isrunning",
                                      "generational", "incremental", NULL};
enum { O_COLLECT, O_STOP, O_RESTART, O_COUNT, O_STEP, O_SETPAUSE, O_SETSTEPMUL, O_ISRUNNING, O_GEN, O_INC };

/* The mode name Lua would report for the runtime's policy (managed runs
 * Lua's incremental collector in steps). */
static const char *mode_name(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    if (w != NULL && !strcmp(w->rt->cfg.gc_mode, "generational"))
        return "generational";
    return "incremental";
}

static int safe_collectgarbage(lua_State *L)
{
    int o = luaL_checkoption(L, 1, "collect", gc_opts);
    /* The same argument checks as Lua's, so a wrong call still fails. */
    for (int i = 2; i <= 4 && (o == O_STEP || o == O_SETPAUSE || o == O_SETSTEPMUL || o >= O_GEN); i++)
        (void)luaL_optinteger(L, i, 0);
    switch (o) {
    case O_COUNT: {
        int kb = lua_gc(L, LUA_GCCOUNT);
        int b = lua_gc(L, LUA_GCCOUNTB);
        lua_pushnumber(L, (lua_Number)kb + ((lua_Number)b / 1024));
        return 1;
    }
    case O_ISRUNNING: /* the runtime collects this state: garbage goes */
        lua_pushboolean(L, 1);
        return 1;
    case O_STEP: /* "did a cycle end": never, as nothing ran */
        lua_pushboolean(L, 0);
        return 1;
    case O_GEN:
    case O_INC: /* Lua returns the previous mode: it stays the runtime's */
        lua_pushstring(L, mode_name(L));
        return 1;
    default: /* collect, stop, restart, setpause, setstepmul */
        lua_pushinteger(L, 0);
        return 1;
    }
}

void ljs__gc_open_lib(lua_State *L)
{
    lua_pushcfunction(L, safe_collectgarbage);
    lua_setglobal(L, "collectgarbage");
}
