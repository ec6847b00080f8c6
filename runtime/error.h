/* error.h - thread-local "last error" message behind ljs_last_error(). */
#ifndef LJS_RUNTIME_ERROR_H
#define LJS_RUNTIME_ERROR_H

#include "jobs/sched.h" /* LJS_HIDDEN */

/* Record a formatted message for ljs_last_error() and return `err`, so a
 * failing call can `return ljs__error(LJS_EINVAL, "...", ...)`.
 * Thread: any (thread-local). */
LJS_HIDDEN int ljs__error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
