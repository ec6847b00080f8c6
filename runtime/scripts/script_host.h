/* script_host.h - the owner's side of scripts: binding entities, reload,
 * unload (internal). */
#ifndef LJS_RUNTIME_SCRIPTS_SCRIPT_HOST_H
#define LJS_RUNTIME_SCRIPTS_SCRIPT_HOST_H

#include "jobs/sched.h" /* LJS_HIDDEN */

#include <stdint.h>

struct ljs_runtime_s;

/* Attach script `id` to `slot`: tags, missing field defaults, binding.
 * Thread: owner, outside phases. Returns LJS_OK or LJS_ENOMEM. */
LJS_HIDDEN int ljs__script_attach(struct ljs_runtime_s *rt, uint32_t slot, uint32_t id);

/* Unbind script `id` from `slot` (the entity keeps fields and tags).
 * Thread: owner, outside phases. */
LJS_HIDDEN void ljs__script_detach_slot(struct ljs_runtime_s *rt, uint32_t slot, uint32_t id);

/* Reload script `id` from its file into every state, all or nothing, and
 * run on_reload; unless `force`, an unchanged file is left alone. On a
 * broken new version the old one keeps running. Thread: owner, between
 * phases. Returns LJS_OK, LJS_ESCRIPT, LJS_ENOENT, LJS_ENOMEM. */
LJS_HIDDEN int ljs__script_reload(struct ljs_runtime_s *rt, uint32_t id, int force, int *reloaded);

/* Drop a module's value from every state (the next require re-runs it).
 * Thread: owner, between phases. */
LJS_HIDDEN void ljs__script_forget_module(struct ljs_runtime_s *rt, const char *path);

/* Unload unpinned scripts no entity used for LJS_UNLOAD_GRACE frames.
 * Thread: owner, after a frame's phases. */
LJS_HIDDEN void ljs__script_unload_idle(struct ljs_runtime_s *rt);

/* Unbind every entity from every script at once (world snapshots replace
 * the whole world: one detach per entity would be O(n^2)). Thread: owner,
 * outside phases. */
LJS_HIDDEN void ljs__script_unbind_all(struct ljs_runtime_s *rt);

#endif
