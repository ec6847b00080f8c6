/* cache.h - the process-wide shared bytecode cache (RCU-published).
 *
 * Each script source version is compiled once, in text mode, by the owner
 * thread that first loads it, and dumped to bytecode. The cache is an
 * immutable snapshot (a sorted array of chunks) published by a pointer swap;
 * workers look chunks up and load them (binary mode) inside ck_epoch read
 * sections, without locks. A replaced snapshot is freed by ck_epoch_call
 * once every reader has left the sections that could see it.
 *
 * Invariants: a published chunk never changes; the bytes a worker loads
 * always come from a chunk this process compiled itself (binary chunks are
 * never read from users). A read section contains no call that can raise
 * (luaL_loadbufferx returns a status), so no longjmp leaves a record active.
 *
 * Lock ordering: cache_lock (writers, refcount, stats) is a leaf lock. */
#ifndef LJS_RUNTIME_CACHE_H
#define LJS_RUNTIME_CACHE_H

#include "jobs/sched.h"

#include <ljs.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

struct ck_epoch_record;

/* A source version: what decides whether cached bytecode is still valid. */
typedef struct ljs__source_id_s {
    uint64_t size;
    int64_t mtime_ns;
    uint64_t hash; /* ljs__cache_hash of the bytes: catches same-size
                    * edits within the same mtime tick */
} ljs__source_id_t;

LJS_HIDDEN uint64_t ljs__cache_hash(const void *p, size_t n);

/* Take / drop a reference on the process-wide cache (one per runtime).
 * Thread: owner. Returns LJS_OK or LJS_ENOMEM. */
LJS_HIDDEN int ljs__cache_acquire(void);
LJS_HIDDEN void ljs__cache_release(void);

/* A worker's epoch record: register on the worker's thread at start,
 * unregister at stop. Thread: same-worker. */
LJS_HIDDEN struct ck_epoch_record *ljs__cache_register(void);
LJS_HIDDEN void ljs__cache_unregister(struct ck_epoch_record *rec);

/* What ljs__cache_prepare needs to know about one script source. */
typedef struct ljs__cache_req_s {
    const char *path;
    ljs__source_id_t id;
    const char *src;
    size_t len;
    int strip;
    const char *dir;    /* LJS_CACHE_DIR, "" = no persistent cache */
    uint64_t max_bytes; /* LJS_CACHE_MAX_MB in bytes */
    int internal;       /* code ljs generates: not counted in the stats */
} ljs__cache_req_t;

/* Make sure the request's path at its version (stripped or not) is in the
 * cache: a hit if so; else take a valid LJS_CACHE_DIR file, or compile the
 * source on L (the owner's worker-0 state, text mode) and write the file;
 * then publish. On a syntax error returns LJS_ESCRIPT with the message
 * (file:line) in `err`. A rejected or unwritable cache file is not an
 * error: `warn` says what happened (else it is ""). Thread: owner.
 * Blocks: on cache_lock (and file I/O with LJS_CACHE_DIR). */
LJS_HIDDEN int ljs__cache_prepare(lua_State *L, const ljs__cache_req_t *req, char *err, size_t errlen,
                                  char *warn, size_t warnlen);

/* Load the cached chunk of `path` into L (pushes the function), inside an
 * epoch read section on `rec`; `internal` loads are not counted in the
 * stats. Returns a lua status, or LUA_ERRFILE when the path is not cached.
 * Never raises. Thread: same-worker. */
LJS_HIDDEN int ljs__cache_load(struct ck_epoch_record *rec, lua_State *L, const char *path, int strip,
                               const char *chunkname, int internal);

/* Drop the entry of `path` (both forms) from the cache when the script is
 * unloaded; a no-op while more than one runtime shares the cache (another
 * may be loading the same path). Thread: owner. */
LJS_HIDDEN void ljs__cache_forget(const char *path);

/* Run reclaim callbacks whose grace period has passed. Cheap when nothing
 * is pending. Thread: owner. */
LJS_HIDDEN void ljs__cache_poll(void);

LJS_HIDDEN void ljs__cache_stats_get(ljs_cache_stats_t *out);

#endif
