/* watchdog.h - stops runaway script calls without slowing the VM.
 *
 * A count hook (LJS_SCRIPT_BUDGET) costs ~2x VM speed on every call, so the
 * default protection is a watchdog thread instead: while a frame runs it
 * checks, every quarter of LJS_SCRIPT_TIMEOUT_MS, whether a worker has been
 * inside the same script call since the last checks; once a call has run
 * for the timeout, it signals that worker's thread, whose handler arms a
 * Lua hook on its own state (lua_sethook is async-signal-safe: lua.c uses
 * it the same way for Ctrl-C). The hook raises an ordinary script error.
 * Frames do not wake it (no syscall per frame): it polls while frames keep
 * coming and parks on a condition variable once they stop, so an idle
 * runtime costs 0% CPU; the next frame start wakes it. */
#ifndef LJS_RUNTIME_WATCHDOG_H
#define LJS_RUNTIME_WATCHDOG_H

#include "jobs/sched.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct ljs_runtime_s;
struct ljs__worker_s;

typedef struct ljs__watchdog_s {
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* leaf lock: guards `stop` and the parked sleep */
    pthread_cond_t cond;
    atomic_uint_fast64_t frames; /* bumped at every frame start */
    atomic_int parked;           /* the thread sleeps until the next frame */
    int stop;
    struct ljs_runtime_s *rt;
} ljs__watchdog_t;

/* Start the thread if cfg.script_timeout_ms > 0. Thread: owner.
 * Returns LJS_OK, LJS_ETHREAD or LJS_EINVAL (signal taken by the host). */
LJS_HIDDEN int ljs__watchdog_start(ljs__watchdog_t *wd, struct ljs_runtime_s *rt);
LJS_HIDDEN void ljs__watchdog_stop(ljs__watchdog_t *wd);

/* Frame start. Thread: owner. Blocks: only to wake a parked watchdog. */
LJS_HIDDEN void ljs__watchdog_frame(ljs__watchdog_t *wd);

/* Register the calling thread as worker `w` (for the signal handler).
 * Thread: same-worker. */
LJS_HIDDEN void ljs__watchdog_bind(struct ljs__worker_s *w);

/* The signal the watchdog uses (SIGRTMAX - 3). */
LJS_HIDDEN int ljs__watchdog_signal(void);

#endif
