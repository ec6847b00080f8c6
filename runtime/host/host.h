/* host.h - the engine's bindings (internal): host functions installed in
 * every worker state, the deferred-call queues, events sent to the host,
 * and the profiler and log hooks' plumbing. See host.c. */
#ifndef LJS_RUNTIME_HOST_H
#define LJS_RUNTIME_HOST_H

#include "runtime/core.h"

typedef struct ljs__host_s ljs__host_t;

/* Create the runtime's host-function table (a copy of the process-wide
 * registrations) and per-worker queues. Before the workers start.
 * Thread: owner. Returns LJS_OK, LJS_ENOMEM. */
LJS_HIDDEN int ljs__host_create(ljs_runtime_t *rt);
/* After the workers stopped. Thread: owner. */
LJS_HIDDEN void ljs__host_destroy(ljs_runtime_t *rt);

/* Install every registered function in worker `w`'s sealed state. Runs on
 * the worker's thread (worker_start). Returns LJS_OK or LJS_ELUA. */
LJS_HIDDEN int ljs__host_open(ljs__worker_t *w);

/* Run the deferred calls the workers queued, in (entity, sequence) order,
 * on the owner thread; drop them all if they took more than
 * LJS_EVENT_MEM_MB. Thread: owner, no phase running. */
LJS_HIDDEN void ljs__host_dispatch(ljs_runtime_t *rt);

/* A script load or reload begins / ends: deferred calls made by its
 * module's top level run at the end if it succeeded, else are dropped.
 * Thread: owner. */
LJS_HIDDEN void ljs__host_load_begin(ljs_runtime_t *rt);
LJS_HIDDEN void ljs__host_load_end(ljs_runtime_t *rt, int ok);

/* Where events sent to the host go when gathered (target 0). */
LJS_HIDDEN ljs__msgbuf_t *ljs__host_events(ljs_runtime_t *rt);

/* End of a frame: sort this frame's host events and hand them to the
 * callback, or hold them for ljs_host_events_drain (bounded). Thread: owner. */
LJS_HIDDEN void ljs__host_events_frame(ljs_runtime_t *rt);

/* Profiler hooks, for the scheduler's park hook and worker start/stop.
 * Thread: the worker's own. */
LJS_HIDDEN void ljs__host_prof_park(void *ud, uint32_t worker, int begin);
LJS_HIDDEN void ljs__host_prof_thread_stop(ljs_runtime_t *rt, uint32_t worker);

#endif
