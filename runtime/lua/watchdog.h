/* watchdog.h - runaway limits: every script call is stopped once it uses
 * LJS_SCRIPT_TIMEOUT_MS of CPU time (or LJS_SCRIPT_BUDGET instructions), and
 * the stop cannot be caught. The design is in watchdog.c's opening comment. */
#ifndef LJS_RUNTIME_WATCHDOG_H
#define LJS_RUNTIME_WATCHDOG_H

#include "jobs/sched.h"

#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct ljs_runtime_s;
struct ljs__worker_s;

/* Per-worker watchdog state, embedded in the worker. The atomics are
 * shared with the watchdog thread; the rest belongs to the worker's thread
 * (and its signal handler, which runs on that same thread). */
typedef struct ljs__wd_worker_s {
    atomic_uint_fast64_t call_seq; /* changes at every call start and batch end */
    atomic_int in_batch;           /* a call context (batch or load) is open */
    atomic_uint_fast64_t flagged;  /* the call_seq the watchdog found over its limit */
    _Atomic(lua_State *) running;  /* the coroutine being resumed, NULL: the main state */
    pthread_t thread;
    int slot;            /* index in the process-wide registry (signal payload) */
    uint64_t stop_seq;   /* the call that is being stopped (0: none) */
    uint64_t budget_seq; /* the call the instruction count belongs to */
    uint64_t budget_used;
    char msg[400]; /* the stop error, raised again at every catch */
    /* Where the running call was when the memory limit refused a block
     * ("file:line"), and which call that was (ljs__watchdog_oom). */
    uint64_t oom_seq;
    char oom_where[160];
} ljs__wd_worker_t;

typedef struct ljs__watchdog_s {
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* leaf lock: guards `stop` and the parked sleep */
    pthread_cond_t cond;
    atomic_int parked; /* the thread sleeps until a call context opens */
    atomic_int interrupt;
    int stop;
    struct ljs_runtime_s *rt;
} ljs__watchdog_t;

/* Start the thread if cfg.script_timeout_ms > 0. Thread: owner.
 * Returns LJS_OK, LJS_ETHREAD or LJS_EINVAL (signal taken by the host). */
LJS_HIDDEN int ljs__watchdog_start(ljs__watchdog_t *wd, struct ljs_runtime_s *rt);
LJS_HIDDEN void ljs__watchdog_stop(ljs__watchdog_t *wd);

/* Frame start: wakes a parked watchdog early. Thread: owner. Blocks: only
 * to wake it. */
LJS_HIDDEN void ljs__watchdog_frame(ljs__watchdog_t *wd);

/* Register the calling thread as worker `w` / forget it. Both on the
 * worker's own thread, so its signal handler never runs concurrently with
 * them. Thread: same-worker. Returns LJS_OK or LJS_ENOMEM (registry full). */
LJS_HIDDEN int ljs__watchdog_bind(struct ljs__worker_s *w);
LJS_HIDDEN void ljs__watchdog_unbind(struct ljs__worker_s *w);

/* A call context opens (a batch, a script load) / closes. Calls happen
 * only between the two. Thread: same-worker. Blocks: enter wakes a parked
 * watchdog (rare: it parks after a second without calls). */
LJS_HIDDEN void ljs__watchdog_enter(struct ljs__worker_s *w);
LJS_HIDDEN void ljs__watchdog_leave(struct ljs__worker_s *w);

/* The allocator's on_refuse hook (ctx: the worker): note the position of
 * the innermost Lua function of the running call, or of the coroutine it
 * resumed. Thread: same-worker, from inside the allocator: it only reads
 * the call stack (lua_getinfo "Sl" allocates nothing). */
LJS_HIDDEN void ljs__watchdog_oom(void *ctx);

/* "file:line" the memory limit was hit at during the current call, or
 * NULL. Thread: same-worker. */
LJS_HIDDEN const char *ljs__watchdog_oom_where(const struct ljs__worker_s *w);

/* A new call starts: fresh CPU time and instruction budget.
 * Thread: same-worker. */
LJS_HIDDEN void ljs__watchdog_call(struct ljs__worker_s *w);

/* For C library functions whose running time a script controls: charge
 * `work` units (counted like instructions against LJS_SCRIPT_BUDGET) and
 * raise the stop error if the running call is over a limit.
 * Thread: same-worker. Lua: may raise. */
LJS_HIDDEN void ljs__watchdog_check(lua_State *L, uint64_t work);

/* Ask every running call to stop, and every later call to stop at once,
 * until ljs__watchdog_interrupt(wd, 0). Thread: any; async-signal-safe. */
LJS_HIDDEN void ljs__watchdog_interrupt(ljs__watchdog_t *wd, int on);

/* Replace coroutine.resume, wrap and close in the sandbox so coroutines
 * run under their resumer's limits, and xpcall so that a stopped call skips
 * its message handler. Runs under lua_pcall. Lua: may raise. */
LJS_HIDDEN void ljs__watchdog_open(lua_State *L);

/* The signal the watchdog uses (SIGRTMAX - 3). */
LJS_HIDDEN int ljs__watchdog_signal(void);

#endif
