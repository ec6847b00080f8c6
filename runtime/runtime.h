/* runtime.h - the runtime's lifecycle and frame, as the rest of the top
 * level sees them (internal). Files under runtime/<part>/ include core.h,
 * never this header. */
#ifndef LJS_RUNTIME_RUNTIME_H
#define LJS_RUNTIME_RUNTIME_H

#include "runtime/core.h"

/* LJS_REPORT and LJS_TRACE files, at ljs_runtime_destroy (failures go to
 * stderr: the host is tearing down). Thread: owner. */
LJS_HIDDEN void ljs__report_at_exit(struct ljs_runtime_s *rt);

/* Destroy an entity and unbind it from its scripts. Thread: owner, outside
 * phases. Returns LJS_OK or LJS_ENOENT. */
LJS_HIDDEN int ljs__entity_destroy(struct ljs_runtime_s *rt, uint64_t id);

/* Run ljs_frame's phases. Thread: owner. */
LJS_HIDDEN int ljs__frame_run(struct ljs_runtime_s *rt, double dt);

#endif
