/* config.h - what the runtime asks of config.c beyond the public API. */
#ifndef LJS_RUNTIME_CONFIG_H
#define LJS_RUNTIME_CONFIG_H

#include "jobs/sched.h" /* LJS_HIDDEN */

#include <stddef.h>

/* Called once per LJS_* environment variable that is no ljs knob: `name` is
 * the variable (NAME=value as in environ, up to the '='), `closest` the knob
 * name a typo most likely meant, or NULL when none is close. */
typedef void (*ljs__config_unknown_fn)(void *ud, const char *name, size_t len, const char *closest);

/* Scan the environment for LJS_* names that are not knobs (a misspelt
 * LJS_WORKER=4 would otherwise be silently ignored).
 * Thread: any (reads environ; nothing may setenv meanwhile). Blocks: no. */
LJS_HIDDEN void ljs__config_unknown_env(ljs__config_unknown_fn fn, void *ud);

#endif
