/* post.h - tag changes posted by engine threads (the entity-version ring).
 *
 * Any thread may post "entity e gains / loses tag t"; the owner applies the
 * posts at the start of the next frame (so a frame never sees tags change
 * under it), logging them for the query cache. Posts travel on a
 * multi-producer single-consumer ck_ring; when it is full, producers spill
 * to a mutex-protected list instead, so nothing is ever lost and each
 * producer's posts stay in order (see post.c). */
#ifndef LJS_RUNTIME_POST_H
#define LJS_RUNTIME_POST_H

#include "jobs/sched.h"

#include <stdint.h>

struct ljs_runtime_s;
typedef struct ljs__posts_s ljs__posts_t;

LJS_HIDDEN int ljs__posts_create(uint32_t ring_slots, ljs__posts_t **out);
LJS_HIDDEN void ljs__posts_destroy(ljs__posts_t *p);

/* Apply every pending post to the world. Thread: owner, outside phases. */
LJS_HIDDEN void ljs__posts_apply(struct ljs_runtime_s *rt);

LJS_HIDDEN void ljs__posts_counts(const ljs__posts_t *p, uint64_t *posted, uint64_t *spilled,
                                  uint64_t *dropped);

#endif
