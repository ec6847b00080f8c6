/* watch.h - hot reload: the file watcher and the reload queue.
 *
 * A watcher thread blocks on inotify over every directory that holds loaded
 * scripts or their modules (recursively; new subdirectories are watched as
 * they appear) and pushes changed .lua paths into a single-producer
 * single-consumer ck_ring. The owner drains it at the start of each frame,
 * debounces per path, and reloads the scripts (and dependents of modules)
 * whose files changed, before any batch of the frame runs. A full ring loses
 * nothing: the producer raises an overflow flag and the owner rescans every
 * watched file. Without inotify (or past the watch limit) the owner polls
 * with stat() every LJS_POLL_MS instead, after one warning. */
#ifndef LJS_RUNTIME_WATCH_H
#define LJS_RUNTIME_WATCH_H

#include "jobs/sched.h"

#include <stdint.h>

struct ljs_runtime_s;
typedef struct ljs__watch_s ljs__watch_t;

/* Start watching per cfg.watch. Thread: owner. Returns LJS_OK or
 * LJS_ENOMEM (an unavailable inotify only switches to polling). */
LJS_HIDDEN int ljs__watch_create(struct ljs_runtime_s *rt, ljs__watch_t **out);
LJS_HIDDEN void ljs__watch_destroy(ljs__watch_t *w);

/* Watch the directory tree of a loaded script's path and of its modules.
 * Thread: owner. */
LJS_HIDDEN void ljs__watch_script(ljs__watch_t *w, uint32_t script);

/* Frame start: drain, debounce, reload. Thread: owner, before the phases. */
LJS_HIDDEN void ljs__watch_frame(ljs__watch_t *w);

LJS_HIDDEN uint32_t ljs__watch_mode(const ljs__watch_t *w);
LJS_HIDDEN void ljs__watch_counts(const ljs__watch_t *w, uint64_t *events, uint64_t *overflows);

#endif
