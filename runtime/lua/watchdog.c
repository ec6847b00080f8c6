/* watchdog.c - runaway-call watchdog (see watchdog.h).
 *
 * Each worker publishes `call_seq` (bumped at every call start, relaxed:
 * the watchdog only needs to see that it changes) and `in_batch`. A call is
 * runaway when the same worker shows the same call_seq, inside a batch, for
 * LJS_SCRIPT_TIMEOUT_MS of that worker thread's CPU time. CPU time, not
 * wall time: on an oversubscribed machine a preempted worker makes no
 * progress for long stretches without being a runaway (the 1-hour soak
 * caught a wall-clock watchdog killing an innocent call that way); a loop
 * that never returns burns CPU. The handler only arms a hook on the
 * worker's own state; the hook checks that the flagged call is still the
 * running one before raising, so a late signal never hits the next call. */
#include "runtime/lua/watchdog.h"

#include "runtime/core.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static _Thread_local ljs__worker_t *tls_worker;

/* Installed once per process, shared by every runtime. */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int installed;

int ljs__watchdog_signal(void)
{
    return SIGRTMAX - 3;
}

static void timeout_hook(lua_State *L, lua_Debug *ar)
{
    ljs__worker_t *w = ljs__worker_of(L);
    lua_sethook(L, NULL, 0, 0);
    uint64_t flagged = atomic_load_explicit(&w->wd_flagged, memory_order_relaxed);
    if (flagged == 0 || flagged != atomic_load_explicit(&w->call_seq, memory_order_relaxed))
        return; /* that call already ended */
    atomic_store_explicit(&w->wd_flagged, 0, memory_order_relaxed);
    lua_getinfo(L, "Sl", ar);
    lua_pushfstring(L, "%s:%d: call ran longer than LJS_SCRIPT_TIMEOUT_MS=%d (runaway loop?)", ar->short_src,
                    ar->currentline, (int)w->rt->cfg.script_timeout_ms);
    lua_error(L);
}

static void on_signal(int sig)
{
    (void)sig;
    ljs__worker_t *w = tls_worker;
    int saved = errno;
    if (w != NULL && w->L != NULL && atomic_load_explicit(&w->in_batch, memory_order_relaxed))
        lua_sethook(w->L, timeout_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    errno = saved;
}

static int install_handler(void)
{
    int rc = 0;
    pthread_mutex_lock(&install_lock);
    if (!installed) {
        struct sigaction old, sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(ljs__watchdog_signal(), NULL, &old) != 0 ||
            (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) ||
            sigaction(ljs__watchdog_signal(), &sa, NULL) != 0)
            rc = -1;
        else
            installed = 1;
    }
    pthread_mutex_unlock(&install_lock);
    return rc;
}

void ljs__watchdog_bind(ljs__worker_t *w)
{
    tls_worker = w;
    w->thread = pthread_self();
}

/* CPU time the worker's thread has used, ns (0 if unreadable: then the
 * call is never flagged, rather than wrongly). */
static uint64_t thread_cpu_ns(const ljs__worker_t *w)
{
    clockid_t id;
    struct timespec ts;
    if (pthread_getcpuclockid(w->thread, &id) != 0 || clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One check of every worker: `since[i]` is the thread's CPU time when
 * call `last[i]` was first seen. */
static void check(ljs__watchdog_t *wd, uint64_t *last, uint64_t *since)
{
    ljs_runtime_t *rt = wd->rt;
    uint64_t limit = (uint64_t)rt->cfg.script_timeout_ms * 1000000u;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        ljs__worker_t *w = &rt->workers[i];
        uint64_t seq = atomic_load_explicit(&w->call_seq, memory_order_relaxed);
        if (!atomic_load_explicit(&w->in_batch, memory_order_relaxed) || seq != last[i]) {
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
            atomic_store_explicit(&w->wd_flagged, seq, memory_order_relaxed);
            pthread_kill(w->thread, ljs__watchdog_signal());
            since[i] = cpu;
        }
    }
}

/* Polls every quarter timeout while frames come; parks after a second
 * without one. `in_batch` in check() keeps idle gaps from counting. */
static void *watchdog_main(void *arg)
{
    ljs__watchdog_t *wd = arg;
    ljs_runtime_t *rt = wd->rt;
    uint32_t step_ms = rt->cfg.script_timeout_ms / 4 ? rt->cfg.script_timeout_ms / 4 : 1;
    uint32_t idle_steps = 0, park_after = 1000 / step_ms + 1;
    uint64_t last[LJS_SCHED_MAX_WORKERS] = {0}, seen = 0;
    uint64_t since[LJS_SCHED_MAX_WORKERS] = {0};
    pthread_mutex_lock(&wd->lock);
    while (!wd->stop) {
        if (atomic_load_explicit(&wd->parked, memory_order_relaxed)) {
            pthread_cond_wait(&wd->cond, &wd->lock);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)step_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&wd->cond, &wd->lock, &ts);
        if (wd->stop)
            break;
        check(wd, last, since);
        uint64_t frames = atomic_load_explicit(&wd->frames, memory_order_relaxed);
        idle_steps = frames == seen ? idle_steps + 1 : 0;
        seen = frames;
        /* seq_cst with the owner's frame bump + parked load: either it sees
         * parked and wakes us, or we see its new frame count here. */
        if (idle_steps >= park_after) {
            atomic_store_explicit(&wd->parked, 1, memory_order_seq_cst);
            if (atomic_load_explicit(&wd->frames, memory_order_seq_cst) != seen)
                atomic_store_explicit(&wd->parked, 0, memory_order_relaxed);
            idle_steps = 0;
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
    atomic_init(&wd->frames, 0);
    atomic_init(&wd->parked, 1);
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
    if (!wd->started)
        return;
    atomic_fetch_add_explicit(&wd->frames, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&wd->parked, memory_order_seq_cst)) {
        pthread_mutex_lock(&wd->lock);
        atomic_store_explicit(&wd->parked, 0, memory_order_relaxed);
        pthread_cond_signal(&wd->cond);
        pthread_mutex_unlock(&wd->lock);
    }
}
