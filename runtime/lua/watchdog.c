/* watchdog.c - runaway limits: stop any script call that uses more than
 * LJS_SCRIPT_TIMEOUT_MS of CPU time (or LJS_SCRIPT_BUDGET instructions),
 * wherever its code runs, so that a frame or a load always returns.
 *
 * Detection (time). One watchdog thread per runtime polls, every quarter of
 * the limit, each worker's `call_seq` (bumped at every call start, a relaxed
 * store: the only per-call cost) and, for a call it saw before, that worker
 * thread's CPU clock (pthread_getcpuclockid: the kernel's per-thread
 * account, read from this thread without disturbing the worker). A call is
 * over its limit once its thread used LJS_SCRIPT_TIMEOUT_MS of CPU since the
 * watchdog first saw it; as the call may have started up to one poll before,
 * and is noticed up to one poll late, it is stopped after using between
 * 1x and 1.5x the limit of CPU time. CPU time, not wall time: a worker
 * preempted on an oversubscribed machine makes no progress without being a
 * runaway (the soak caught a wall-clock watchdog killing innocent calls), and
 * a loop that never returns burns CPU, so a slow machine only delays the
 * stop in wall time by what the scheduler withholds from the worker.
 *   The thread never parks while a call context (batch or load) is open:
 * ljs__watchdog_enter publishes `in_batch` and wakes it if it parked
 * (a Dekker pair with seq_cst on both sides, see park()). It parks after a
 * second without any open context, so an idle runtime costs 0% CPU. The
 * earlier design parked after a second without a new *frame*, so a call that
 * had not used its CPU limit by then (any limit over ~1 s, or a loaded
 * machine) was never stopped.
 *
 * Delivery. The watchdog sends the worker's thread a real-time signal with
 * pthread_sigqueue, whose payload is the worker's slot in a process-wide
 * registry (no thread-local pointer: two runtimes on one thread each have
 * their own slots). The handler checks that the slot belongs to its own
 * thread and arms a count hook (lua_sethook is async-signal-safe; lua.c uses
 * it the same way for Ctrl-C) on the worker's main state and on the
 * coroutine being resumed, if any. Slots are bound and unbound on the
 * worker's own thread, so the handler never races with its slot's reuse.
 *
 * The stop cannot be caught. The hook writes the error once (file:line of
 * the running code, the entity, the script and the limit) and raises it; it
 * stays armed with a count of 1 while `stop_seq` names the running call, so
 * after a pcall or a coroutine swallows the error, the next Lua instruction
 * raises it again, until the error reaches ljs. An xpcall's message handler
 * would run inside the hook (Lua calls it from lua_error), where hooks are
 * off: the sandbox's xpcall skips it while the call is stopped. The
 * sandbox's coroutine.resume/wrap/close are ljs's own: they copy the
 * resumer's hook into the coroutine (hooks are per Lua thread; a new
 * coroutine inherits its creator's, an old one would have none), track the
 * running coroutine for the signal handler, refuse to resume while stopped
 * and raise the stop again in the resumer when a coroutine dies of it.
 * Finalizers never run script code: the sandbox's setmetatable refuses
 * __gc (limits.c), since Lua runs __gc with hooks off, outside any call.
 * C library functions whose time a script controls poll the same state
 * through ljs__watchdog_check (limits.c).
 *
 * The instruction budget uses the same hook with a count of up to
 * BUDGET_CHUNK, adding each tick to the call's total, so the budget is per
 * call across all its coroutines. */
/* pthread_sigqueue (a signal with a payload, to one thread) is a GNU
 * extension of glibc. */
#define _GNU_SOURCE 1
#include "runtime/lua/watchdog.h"

#include "runtime/core.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BUDGET_CHUNK 1000
#define MAX_SLOTS 4096

/* ---- the registry of workers (signal payloads) ------------------------------ */

/* Workers by slot. Written on the worker's own thread only (bind/unbind),
 * read by its signal handler on that thread; the lock serializes slot
 * allocation between threads. Never freed. */
static _Atomic(ljs__worker_t *) slots[MAX_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int installed;

int ljs__watchdog_signal(void)
{
    return SIGRTMAX - 3;
}

/* ---- the hook ---------------------------------------------------------------- */

static void arm(lua_State *L, int count);

static const char *script_name(const ljs__worker_t *w)
{
    if (w->cur_script < w->rt->nscripts && w->rt->scripts[w->cur_script].name != NULL)
        return w->rt->scripts[w->cur_script].name;
    return "?";
}

/* Write the stop error for the running call; `where` is "file:line:". */
static void set_stop(ljs__worker_t *w, const char *where, const char *why)
{
    char who[128];
    if (w->cur_id != 0)
        snprintf(who, sizeof who, "entity " LJS_ENTITY_FMT " of script '%s'", LJS_ENTITY_ARGS(w->cur_id),
                 script_name(w));
    else
        snprintf(who, sizeof who, "loading script '%s'", script_name(w));
    snprintf(w->wd.msg, sizeof w->wd.msg,
             "%s %s (%s): the call was stopped, and stays stopped until it returns", where, why, who);
    w->wd.stop_seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
}

static const char *timeout_why(const ljs__worker_t *w, char *buf, size_t n)
{
    if (atomic_load_explicit(&w->rt->watchdog.interrupt, memory_order_relaxed))
        return "interrupted by the host";
    snprintf(buf, n, "call ran longer than LJS_SCRIPT_TIMEOUT_MS=%u ms of CPU time (runaway loop?)",
             w->rt->cfg.script_timeout_ms);
    return buf;
}

static void budget_why(const ljs__worker_t *w, char *buf, size_t n)
{
    snprintf(buf, n, "instruction budget exceeded (LJS_SCRIPT_BUDGET=%u)", w->rt->cfg.script_budget);
}

/* Raise the stop error, with the hook armed on this thread and on the main
 * state so that whoever catches it meets it again at its next instruction. */
static int raise_stop(lua_State *L, ljs__worker_t *w)
{
    arm(L, 1);
    if (L != w->L)
        arm(w->L, 1);
    lua_pushstring(L, w->wd.msg);
    return lua_error(L);
}

static int stopping(const ljs__worker_t *w)
{
    return w != NULL && w->wd.stop_seq != 0 &&
           w->wd.stop_seq == atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
}

/* Charge `work` to the budget; returns why the running call is over a
 * limit (written into `buf`), or NULL. */
static const char *over_limit(ljs__worker_t *w, uint64_t work, char *buf, size_t n)
{
    uint64_t seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
    uint64_t fl = atomic_load_explicit(&w->wd.flagged, memory_order_relaxed);
    if (fl != 0 && fl == seq)
        return timeout_why(w, buf, n);
    uint32_t budget = w->rt->cfg.script_budget;
    if (budget && w->wd.budget_seq == seq) {
        w->wd.budget_used += work;
        if (w->wd.budget_used >= budget) {
            budget_why(w, buf, n);
            return buf;
        }
    }
    return NULL;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    ljs__worker_t *w = ljs__worker_of(L);
    if (stopping(w))
        raise_stop(L, w);
    char why[160];
    const char *over = over_limit(w, (uint64_t)lua_gethookcount(L), why, sizeof why);
    if (over != NULL) {
        /* In a hook the running function is level 0 (luaL_where would name
         * its caller), so take file:line from the hook's own record. */
        char where[300];
        lua_getinfo(L, "Sl", ar);
        snprintf(where, sizeof where, "%s:%d:", ar->short_src, ar->currentline);
        set_stop(w, where, over);
        raise_stop(L, w);
    }
    /* Not (or no longer) over: back to the budget's pace, or no hook. */
    uint64_t seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
    int chunk = 0;
    if (w->rt->cfg.script_budget && w->wd.budget_seq == seq)
        chunk = w->rt->cfg.script_budget < BUDGET_CHUNK ? (int)w->rt->cfg.script_budget : BUDGET_CHUNK;
    if (lua_gethookcount(L) != chunk)
        arm(L, chunk);
}

static void arm(lua_State *L, int count)
{
    if (count > 0)
        lua_sethook(L, hook, LUA_MASKCOUNT, count);
    else
        lua_sethook(L, NULL, 0, 0);
}

void ljs__watchdog_check(lua_State *L, uint64_t work)
{
    ljs__worker_t *w = ljs__worker_of(L);
    if (w == NULL) /* a state outside any runtime (tests) */
        return;
    if (stopping(w))
        raise_stop(L, w);
    char why[160];
    const char *over = over_limit(w, work, why, sizeof why);
    if (over == NULL)
        return;
    luaL_where(L, 1); /* the Lua code that called the library function */
    char where[300];
    snprintf(where, sizeof where, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    size_t n = strlen(where);
    if (n > 0 && where[n - 1] == ' ')
        where[n - 1] = '\0'; /* luaL_where ends with a space */
    set_stop(w, where[0] ? where : "?:", over);
    raise_stop(L, w);
}

/* ---- call contexts (worker side) ---------------------------------------------- */

void ljs__watchdog_oom(void *ctx)
{
    ljs__worker_t *w = ctx;
    /* Outside a call (state setup, the owner's own work) there is no
     * script position worth naming. */
    if (w->L == NULL || !atomic_load_explicit(&w->wd.in_batch, memory_order_relaxed))
        return;
    lua_State *co = atomic_load_explicit(&w->wd.running, memory_order_relaxed);
    lua_State *L = co != NULL ? co : w->L;
    lua_Debug ar;
    /* Level 0 may be a C function (string.rep, table.concat): name the Lua
     * line that called it. A few levels are enough; a deep C chain is not
     * a script position anyway. */
    for (int level = 0; level < 4 && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(w->wd.oom_where, sizeof w->wd.oom_where, "%s:%d", ar.short_src, ar.currentline);
            w->wd.oom_seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
            return;
        }
    }
}

const char *ljs__watchdog_oom_where(const ljs__worker_t *w)
{
    uint64_t seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
    return w->wd.oom_seq == seq && seq != 0 && w->wd.oom_where[0] ? w->wd.oom_where : NULL;
}

void ljs__watchdog_call(ljs__worker_t *w)
{
    /* Relaxed: the watchdog only needs to see the value change. */
    uint64_t seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->wd.call_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&w->wd.running, NULL, memory_order_relaxed);
    if (w->rt->cfg.script_budget) {
        /* Re-arming resets the hook's counter: each call gets the whole
         * budget. Off by default: a count hook makes the VM ~2x slower. */
        w->wd.budget_seq = seq;
        w->wd.budget_used = 0;
        arm(w->L, w->rt->cfg.script_budget < BUDGET_CHUNK ? (int)w->rt->cfg.script_budget : BUDGET_CHUNK);
    }
    if (atomic_load_explicit(&w->rt->watchdog.interrupt, memory_order_relaxed)) {
        /* The call's first instruction raises (naming its file:line). */
        atomic_store_explicit(&w->wd.flagged, seq, memory_order_relaxed);
        arm(w->L, 1);
    }
}

void ljs__watchdog_enter(ljs__worker_t *w)
{
    ljs__watchdog_t *wd = &w->rt->watchdog;
    /* seq_cst store then seq_cst load, against the watchdog's seq_cst store
     * of `parked` then loads of `in_batch`: either it sees this context
     * open and stays awake, or this thread sees it parked and wakes it. */
    atomic_store_explicit(&w->wd.in_batch, 1, memory_order_seq_cst);
    if (wd->started && atomic_load_explicit(&wd->parked, memory_order_seq_cst)) {
        pthread_mutex_lock(&wd->lock);
        atomic_store_explicit(&wd->parked, 0, memory_order_relaxed);
        pthread_cond_signal(&wd->cond);
        pthread_mutex_unlock(&wd->lock);
    }
}

void ljs__watchdog_leave(ljs__worker_t *w)
{
    /* A new sequence number ends the last call: a flag raised for it can no
     * longer match whatever this worker runs next. */
    atomic_store_explicit(&w->wd.call_seq, atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&w->wd.in_batch, 0, memory_order_relaxed);
    atomic_store_explicit(&w->wd.running, NULL, memory_order_relaxed);
    w->wd.stop_seq = 0;
    if (lua_gethook(w->L) != NULL)
        arm(w->L, 0);
}

/* ---- the signal ----------------------------------------------------------------- */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int saved = errno;
    int slot = si->si_code == SI_QUEUE ? si->si_value.sival_int : -1;
    ljs__worker_t *w =
        slot >= 0 && slot < MAX_SLOTS ? atomic_load_explicit(&slots[slot], memory_order_relaxed) : NULL;
    /* A late signal for a slot since given to another thread is ignored;
     * one for a call that already ended finds a hook that checks first. */
    if (w != NULL && pthread_equal(w->wd.thread, pthread_self()) && w->L != NULL &&
        atomic_load_explicit(&w->wd.in_batch, memory_order_relaxed)) {
        lua_State *co = atomic_load_explicit(&w->wd.running, memory_order_relaxed);
        lua_sethook(w->L, hook, LUA_MASKCOUNT, 1);
        if (co != NULL)
            lua_sethook(co, hook, LUA_MASKCOUNT, 1);
    }
    errno = saved;
}

static int install_handler(void)
{
    int rc = 0;
    pthread_mutex_lock(&install_lock);
    if (!installed) {
        struct sigaction old, sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_RESTART | SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(ljs__watchdog_signal(), NULL, &old) != 0 ||
            ((old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) ||
            ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction != on_signal) ||
            sigaction(ljs__watchdog_signal(), &sa, NULL) != 0)
            rc = -1;
        else
            installed = 1;
    }
    pthread_mutex_unlock(&install_lock);
    return rc;
}

int ljs__watchdog_bind(ljs__worker_t *w)
{
    w->wd.thread = pthread_self();
    w->wd.slot = -1;
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < MAX_SLOTS; i++)
        if (atomic_load_explicit(&slots[i], memory_order_relaxed) == NULL) {
            w->wd.slot = i;
            atomic_store_explicit(&slots[i], w, memory_order_relaxed);
            break;
        }
    pthread_mutex_unlock(&slots_lock);
    if (w->wd.slot < 0)
        return LJS_ENOMEM;
    /* The host may have blocked real-time signals on its thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, ljs__watchdog_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return LJS_OK;
}

void ljs__watchdog_unbind(ljs__worker_t *w)
{
    if (w->wd.slot < 0 || w->wd.slot >= MAX_SLOTS)
        return;
    pthread_mutex_lock(&slots_lock);
    if (atomic_load_explicit(&slots[w->wd.slot], memory_order_relaxed) == w)
        atomic_store_explicit(&slots[w->wd.slot], NULL, memory_order_relaxed);
    pthread_mutex_unlock(&slots_lock);
    w->wd.slot = -1;
}

/* ---- the watchdog thread -------------------------------------------------------- */

/* CPU time the worker's thread has used, ns (0 if unreadable: then the
 * call is never flagged, rather than wrongly). */
static uint64_t thread_cpu_ns(const ljs__worker_t *w)
{
    clockid_t id;
    struct timespec ts;
    if (pthread_getcpuclockid(w->wd.thread, &id) != 0 || clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void flag(ljs__worker_t *w, uint64_t seq)
{
    atomic_store_explicit(&w->wd.flagged, seq, memory_order_relaxed);
    union sigval v;
    v.sival_int = w->wd.slot;
    pthread_sigqueue(w->wd.thread, ljs__watchdog_signal(), v);
}

/* One check of every worker: `since[i]` is the thread's CPU time when
 * call `last[i]` was first seen. Returns the number of open contexts. */
static int check(ljs__watchdog_t *wd, uint64_t *last, uint64_t *since)
{
    ljs_runtime_t *rt = wd->rt;
    uint64_t limit = (uint64_t)rt->cfg.script_timeout_ms * 1000000u;
    int open = 0, interrupt = atomic_load_explicit(&wd->interrupt, memory_order_relaxed);
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        ljs__worker_t *w = &rt->workers[i];
        uint64_t seq = atomic_load_explicit(&w->wd.call_seq, memory_order_relaxed);
        if (!atomic_load_explicit(&w->wd.in_batch, memory_order_relaxed)) {
            last[i] = seq;
            since[i] = 0;
            continue;
        }
        open++;
        if (interrupt && atomic_load_explicit(&w->wd.flagged, memory_order_relaxed) != seq) {
            flag(w, seq);
            continue;
        }
        if (seq != last[i]) {
            last[i] = seq;
            since[i] = 0; /* read lazily: most polls see progress */
            continue;
        }
        uint64_t cpu = thread_cpu_ns(w);
        if (since[i] == 0) {
            since[i] = cpu;
            continue;
        }
        if (cpu != 0 && cpu - since[i] >= limit) {
            /* Signal again every limit while the call goes on (a signal
             * can land while the thread runs C code and its hook is
             * reset by a later call start). */
            flag(w, seq);
            since[i] = cpu;
        }
    }
    return open;
}

/* Park only when no call context is open (see ljs__watchdog_enter). */
static void park(ljs__watchdog_t *wd)
{
    ljs_runtime_t *rt = wd->rt;
    atomic_store_explicit(&wd->parked, 1, memory_order_seq_cst);
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (atomic_load_explicit(&rt->workers[i].wd.in_batch, memory_order_seq_cst)) {
            atomic_store_explicit(&wd->parked, 0, memory_order_relaxed);
            return;
        }
}

static void *watchdog_main(void *arg)
{
    ljs__watchdog_t *wd = arg;
    ljs_runtime_t *rt = wd->rt;
    /* A quarter of the limit: stopped after 1x..1.5x the limit of CPU. At
     * most 100 ms, so a host's interrupt is seen soon. */
    uint64_t step_ns = (uint64_t)rt->cfg.script_timeout_ms * 250000u;
    if (step_ns > 100000000u)
        step_ns = 100000000u;
    uint64_t idle_ns = 0;
    uint64_t last[LJS_SCHED_MAX_WORKERS] = {0};
    uint64_t since[LJS_SCHED_MAX_WORKERS] = {0};
    pthread_mutex_lock(&wd->lock);
    while (!wd->stop) {
        if (atomic_load_explicit(&wd->parked, memory_order_relaxed)) {
            pthread_cond_wait(&wd->cond, &wd->lock);
            idle_ns = 0;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(step_ns % 1000000000u);
        ts.tv_sec += (time_t)(step_ns / 1000000000u) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&wd->cond, &wd->lock, &ts);
        if (wd->stop)
            break;
        if (check(wd, last, since) > 0) {
            idle_ns = 0;
        } else if ((idle_ns += step_ns) >= 1000000000u) {
            park(wd);
            idle_ns = 0;
        }
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

int ljs__watchdog_start(ljs__watchdog_t *wd, ljs_runtime_t *rt)
{
    memset(wd, 0, sizeof *wd);
    wd->rt = rt;
    pthread_mutex_init(&wd->lock, NULL);
    pthread_cond_init(&wd->cond, NULL);
    atomic_init(&wd->parked, 1);
    atomic_init(&wd->interrupt, 0);
    if (rt->cfg.script_timeout_ms == 0)
        return LJS_OK;
    if (install_handler() != 0)
        return LJS_EINVAL;
    if (pthread_create(&wd->thread, NULL, watchdog_main, wd) != 0)
        return LJS_ETHREAD;
    wd->started = 1;
    return LJS_OK;
}

void ljs__watchdog_stop(ljs__watchdog_t *wd)
{
    if (wd->started) {
        pthread_mutex_lock(&wd->lock);
        wd->stop = 1;
        pthread_cond_signal(&wd->cond);
        pthread_mutex_unlock(&wd->lock);
        pthread_join(wd->thread, NULL);
        wd->started = 0;
    }
    pthread_mutex_destroy(&wd->lock);
    pthread_cond_destroy(&wd->cond);
}

void ljs__watchdog_frame(ljs__watchdog_t *wd)
{
    if (wd->started && atomic_load_explicit(&wd->parked, memory_order_seq_cst)) {
        pthread_mutex_lock(&wd->lock);
        atomic_store_explicit(&wd->parked, 0, memory_order_relaxed);
        pthread_cond_signal(&wd->cond);
        pthread_mutex_unlock(&wd->lock);
    }
}

void ljs__watchdog_interrupt(ljs__watchdog_t *wd, int on)
{
    /* Relaxed: calls read it at their start and the watchdog at its next
     * poll; no other data is published with it. */
    atomic_store_explicit(&wd->interrupt, on ? 1 : 0, memory_order_relaxed);
}

void ljs_runtime_interrupt(ljs_runtime_t *rt, int on)
{
    if (rt != NULL)
        ljs__watchdog_interrupt(&rt->watchdog, on);
}

/* ---- coroutines under their resumer's limits -------------------------------------- */

static lua_State *get_co(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co != NULL, 1, "coroutine");
    return co;
}

/* The coroutine runs with the resumer's hook (budget or stop), whatever it
 * had from an earlier call. */
static void inherit_hook(lua_State *L, lua_State *co)
{
    if (co != L)
        lua_sethook(co, lua_gethook(L), lua_gethookmask(L), lua_gethookcount(L));
}

/* Tell the signal handler which coroutine runs; returns the previous one.
 * Relaxed: the handler runs on this same thread. */
static lua_State *set_running(ljs__worker_t *w, lua_State *co)
{
    if (w == NULL)
        return NULL;
    lua_State *prev = atomic_load_explicit(&w->wd.running, memory_order_relaxed);
    atomic_store_explicit(&w->wd.running, co, memory_order_relaxed);
    return prev;
}

/* Resume `co` with the `narg` values on top of L. Returns the number of
 * results moved to L, or -1 with the error on top. Never raises, so the
 * `running` pointer is always restored. */
static int resume(lua_State *L, ljs__worker_t *w, lua_State *co, int narg)
{
    int nres;
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    inherit_hook(L, co);
    lua_xmove(L, co, narg);
    lua_State *prev = set_running(w, co);
    int st = lua_resume(co, L, narg, &nres);
    set_running(w, prev);
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1); /* the error object */
    return -1;
}

static int format_oom(lua_State *L)
{
    lua_pushfstring(L, "%s: memory limit reached (LJS_STATE_MEM_MB=%d)", (const char *)lua_touserdata(L, 1),
                    (int)lua_tointeger(L, 2));
    return 1;
}

/* A coroutine that died of the memory limit hands its resumer Lua's bare
 * "not enough memory": say where it went off and which limit instead, as
 * the batch runner does for a call. The state may still be full (the dead
 * coroutine holds what it made), so the message is made under a pcall and
 * Lua's own is kept if that fails: coroutine.resume must still return
 * false and the error, never raise. Returns 1 if it named the error. */
static int name_oom(lua_State *L, ljs__worker_t *w, int status)
{
    const char *where = w != NULL && status == LUA_ERRMEM ? ljs__watchdog_oom_where(w) : NULL;
    if (where == NULL)
        return 0;
    lua_pushcfunction(L, format_oom);
    lua_pushlightuserdata(L, (void *)where);
    lua_pushinteger(L, (lua_Integer)w->rt->cfg.state_mem_mb);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        return 0;
    }
    lua_replace(L, -2);
    return 1;
}

static int co_resume(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    lua_State *co = get_co(L);
    if (stopping(w))
        return raise_stop(L, w);
    int r = resume(L, w, co, lua_gettop(L) - 1);
    if (stopping(w))
        return raise_stop(L, w);
    if (r < 0) {
        name_oom(L, w, lua_status(co));
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

static int co_wrapped(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    if (stopping(w))
        return raise_stop(L, w);
    int r = resume(L, w, co, lua_gettop(L));
    if (stopping(w))
        return raise_stop(L, w);
    if (r >= 0)
        return r;
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD) {
        /* A dead coroutine: run its pending to-be-closed variables (with
         * the error object on its stack, where Lua expects it). */
        lua_xmove(L, co, 1);
        lua_State *prev = set_running(w, co);
        lua_resetthread(co);
        set_running(w, prev);
        lua_xmove(co, L, 1);
        if (stopping(w))
            return raise_stop(L, w);
    }
    /* After the reset, so the to-be-closed variables ran whatever this
     * costs. A named memory error has its own position: no wrapper's. */
    if (!name_oom(L, w, st) && lua_type(L, -1) == LUA_TSTRING) { /* add where the wrapper was called */
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, co_wrapped, 1);
    return 1;
}

/* coroutine.close runs the coroutine's to-be-closed handlers: in that
 * coroutine, so under the closer's hook too. Upvalue 1: Lua's close. */
static int co_close(lua_State *L)
{
    ljs__worker_t *w = ljs__worker_of(L);
    lua_State *co = get_co(L);
    if (stopping(w))
        return raise_stop(L, w);
    inherit_hook(L, co);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_State *prev = set_running(w, co);
    int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
    set_running(w, prev);
    if (stopping(w))
        return raise_stop(L, w);
    if (rc != LUA_OK)
        return lua_error(L);
    return lua_gettop(L) - 1;
}

/* ---- xpcall ----------------------------------------------------------------------- */

/* Lua calls an xpcall's message handler from inside lua_error, so for an
 * error raised by the hook it runs inside the hook, where Lua disables
 * hooks: a handler that loops could never be stopped. While the call is
 * stopped, the handler is skipped and the error passes through as is.
 * Upvalue 1: the script's handler. */
static int guarded_handler(lua_State *L)
{
    if (stopping(ljs__worker_of(L)))
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int finish_call(lua_State *L, int status, lua_KContext base)
{
    (void)status;
    return lua_gettop(L) - (int)base;
}

/* xpcall(f, handler, ...). Upvalue 1: Lua's xpcall. lua_callk, so that
 * f may still yield. */
static int safe_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_handler, 1);
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, finish_call);
    return finish_call(L, LUA_OK, 0);
}

void ljs__watchdog_open(lua_State *L)
{
    lua_getglobal(L, "xpcall");
    lua_pushcclosure(L, safe_xpcall, 1);
    lua_setglobal(L, "xpcall");
    lua_getglobal(L, LUA_COLIBNAME);
    lua_pushcfunction(L, co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, co_wrap);
    lua_setfield(L, -2, "wrap");
    lua_getfield(L, -1, "close");
    lua_pushcclosure(L, co_close, 1);
    lua_setfield(L, -2, "close");
    lua_pop(L, 1);
}
