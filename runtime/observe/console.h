/* console.h - the bounded console ring that scripts and the runtime log to.
 *
 * Any worker may append (rare path: logs and errors), so a mutex guards the
 * ring; the owner drains it between frames. When full, the oldest line is
 * overwritten and counted as dropped: the ring never grows. */
#ifndef LJS_RUNTIME_CONSOLE_H
#define LJS_RUNTIME_CONSOLE_H

#include "jobs/sched.h"

#include <ljs.h>
#include <pthread.h>
#include <stdint.h>

typedef struct ljs__console_line_s {
    ljs_severity_t severity;
    uint64_t frame;
    uint64_t entity;
    char *script;
    char *text;
} ljs__console_line_t;

typedef struct ljs__console_s {
    pthread_mutex_t lock; /* leaf lock: nothing else is taken while held */
    ljs__console_line_t *lines;
    uint32_t cap, head, count;
    uint64_t dropped;
    ljs_log_fn fn; /* ljs_log_set: lines go there as made (guarded by lock) */
    void *ud;
} ljs__console_t;

LJS_HIDDEN int ljs__console_init(ljs__console_t *c, uint32_t cap);
LJS_HIDDEN void ljs__console_fini(ljs__console_t *c);

/* Append a line (copied). Thread: any. Blocks: briefly (mutex). */
LJS_HIDDEN void ljs__console_log(ljs__console_t *c, ljs_severity_t sev, uint64_t frame, uint64_t entity,
                                 const char *script, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

LJS_HIDDEN uint64_t ljs__console_dropped(ljs__console_t *c);

/* Hand a message to the log callback if one is set (for messages that
 * would go to stderr). Thread: any. Returns 1 if delivered. */
LJS_HIDDEN int ljs__console_to_host(ljs__console_t *c, ljs_severity_t sev, const char *text);

#endif
