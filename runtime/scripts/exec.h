/* exec.h - running script calls in batches on a worker. */
#ifndef LJS_RUNTIME_EXEC_H
#define LJS_RUNTIME_EXEC_H

#include "runtime/core.h"

/* What one phase's batches share. Read-only during the phase. */
typedef struct ljs__phase_s {
    ljs_runtime_t *rt;
    uint32_t script;
    double dt;
    const ljs__msgbuf_t *events; /* event phase: sorted events */
    const uint32_t *groups;      /* start of each target's run of events, plus a sentinel */
} ljs__phase_t;

/* parallel-for bodies: entities [b, e) of script->ents, and target groups
 * [b, e) of the event list. Thread: worker. */
LJS_HIDDEN void ljs__exec_updates(void *arg, uint32_t b, uint32_t e, uint32_t worker);
LJS_HIDDEN void ljs__exec_events(void *arg, uint32_t b, uint32_t e, uint32_t worker);
LJS_HIDDEN void ljs__exec_reloads(void *arg, uint32_t b, uint32_t e, uint32_t worker);

#endif
