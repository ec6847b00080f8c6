/* gc.c - per-state GC policy (see gc.h).
 *
 * 5.4.4 pitfalls from NOTES-gc.md, each handled here:
 * 1. debt piles up while the collector is stopped: RESTART then STOP
 *    before stepping resets it, so the first step is not a whole cycle;
 * 2. step size is not time: stepmul 1 keeps LUA_GCSTEP(32) short;
 * 4. after a cycle ends, further steps are no-ops: stop when one returns 1. */
#include "runtime/lua/gc.h"

#include "runtime/clock.h"

#include "runtime/core.h"

#include <string.h>
#include <time.h>

void ljs__gc_setup(ljs__worker_t *w)
{
    lua_State *L = w->L;
    const char *mode = w->rt->cfg.gc_mode;
    memset(&w->gc, 0, sizeof w->gc);
    w->gc.last_full_ms = ljs__now_ms();
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

static size_t current(const ljs__worker_t *w)
{
    return atomic_load_explicit(&w->alloc.current, memory_order_relaxed);
}

/* Budget for this frame: the configured one, raised in proportion to how
 * far memory has grown past twice what the last cycle left live, so the
 * collector keeps up with allocation. The raise is capped at 8x; a frame
 * that needed more is "behind" (counted, and warned about once). */
static double budget_ms(ljs__worker_t *w)
{
    double b = w->rt->cfg.gc_budget_us / 1000.0;
    size_t live = w->gc.live_after_cycle, cur = current(w);
    if (live > 0 && cur > live * 2) {
        double k = (double)cur / (double)(live * 2);
        if (k > 8.0) {
            k = 8.0;
            w->gc.st.behind++;
        }
        b *= k;
    }
    return b;
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
}

/* 1 if the state has GC work to do. Like Lua's own pause: no new cycle
 * until memory has grown to LJS_GC_PAUSE percent of what the last cycle
 * left live, so an idle heap costs nothing per frame. 175 rather than
 * Lua's 200: a cycle spread over frames lets garbage pile up while it
 * runs, and starting it earlier keeps the peak near Lua's own (bench: gc,
 * 200 gave 1.5-1.6x the incremental collector's peak, 175 gives 1.3x). */
static int needs_work(const ljs__worker_t *w)
{
    size_t live = w->gc.live_after_cycle;
    return w->gc.in_cycle || live == 0 || (double)current(w) * 100.0 >= (double)live * w->rt->cfg.gc_pause;
}

/* One short step with the collector stopped around it. Returns 1 if it
 * finished a cycle. */
static int step(ljs__worker_t *w)
{
    if (!w->gc.in_cycle)
        w->gc.cycle_start = current(w);
    w->gc.in_cycle = 1;
    w->gc.st.steps++;
    if (!lua_gc(w->L, LUA_GCSTEP, 32)) /* pitfall 4: 1 means a cycle ended */
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
 * acquire: pairs with ljs_profiler_set's release. */
static void prof_gc(const ljs_runtime_t *rt, uint32_t worker, int begin)
{
    const ljs_profiler_t *p = atomic_load_explicit(&rt->prof, memory_order_acquire);
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
    return 1;
}

/* Affine job: this state's GC work for the frame, less what it already did
 * while idle during the frame. */
static void gc_job(void *arg, uint32_t worker)
{
    ljs_runtime_t *rt = arg;
    ljs__worker_t *w = &rt->workers[worker];
    const ljs_config_t *cfg = &rt->cfg;
    prof_gc(rt, worker, 1);
    uint64_t t0ns = ljs__now_ns();
    double t0 = (double)t0ns / 1e6;
    size_t before = current(w);
    /* At most one state collects fully per frame: the one whose turn it is. */
    int turn = rt->frame % rt->nworkers == worker;
    int want_full = (cfg->gc_full_mb && before > ((size_t)cfg->gc_full_mb << 20)) ||
                    (cfg->gc_full_s && t0 - w->gc.last_full_ms > cfg->gc_full_s * 1000.0);
    int full = turn && want_full;
    if (full) {
        full_collect(w);
        w->gc.in_cycle = 0;
    } else if (needs_work(w)) {
        double b = budget_ms(w) - idle_used(w, rt->frame);
        reset_debt(w);
        while (b > 0.0 && !step(w) && ljs__now_ms() - t0 < b)
            ;
        lua_gc(w->L, LUA_GCSTOP);
    }
    uint64_t t1 = ljs__now_ns();
    prof_gc(rt, worker, 0);
    double ms = (double)(t1 - t0ns) / 1e6;
    ljs__trace_add(rt->trace, worker, full ? LJS__SPAN_GC_FULL : LJS__SPAN_GC, UINT32_MAX, t0ns, t1,
                   kib(before), kib(current(w)));
    if (ms > w->gc.st.max_frame_ms)
        w->gc.st.max_frame_ms = ms;
    account(w, before, ms);
}

void ljs__gc_frame(ljs_runtime_t *rt)
{
    if (!rt->workers[0].gc.managed)
        return;
    uint64_t behind = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        behind += rt->workers[i].gc.st.behind;
    /* The job also ends this frame's idle steps: each worker runs it after
     * any step it began, and the owner closed the gate before. */
    ljs__sched_run_on_all(rt->sched, gc_job, rt);
    for (uint32_t i = 0; i < rt->nworkers; i++)
        behind -= rt->workers[i].gc.st.behind;
    if (behind != 0 && !rt->workers[0].gc.warned) {
        rt->workers[0].gc.warned = 1;
        ljs__console_log(&rt->console, LJS_LOG_WARN, rt->frame, 0, "",
                         "GC: allocation outran 8x LJS_GC_BUDGET_US=%u, so memory grows past twice the live "
                         "heap (counted in ljs_gc_stats().behind; raise LJS_GC_BUDGET_US)",
                         rt->cfg.gc_budget_us);
    }
}

int ljs_gc_stats(const ljs_runtime_t *rt, uint32_t worker, ljs_gc_stats_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_gc_stats");
    if (rt == NULL || out == NULL || worker >= rt->nworkers)
        return LJS_EINVAL;
    *out = rt->workers[worker].gc.st;
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
}

int ljs_gc_collect(ljs_runtime_t *rt)
{
    LJS_CHECK_OWNER(rt, "ljs_gc_collect");
    if (rt == NULL)
        return LJS_EINVAL;
    if (rt->in_frame)
        return LJS_EBUSY;
    ljs__sched_run_on_all(rt->sched, collect_job, rt);
    return LJS_OK;
}
