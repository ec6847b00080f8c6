/* cache_disk.h - the persistent bytecode cache (LJS_CACHE_DIR).
 *
 * One file per (script path, source hash, strip) holding a versioned,
 * checksummed header and the bytecode. Written atomically (temp file +
 * rename), bounded in size (oldest files evicted). A file that is corrupt,
 * truncated, of another ljs or Lua version, or does not match the source is
 * rejected and rebuilt. Threat model: see README "Bytecode cache". */
#ifndef LJS_RUNTIME_CACHE_DISK_H
#define LJS_RUNTIME_CACHE_DISK_H

#include "runtime/cache/cache.h"

/* Read the bytecode for (path, id, strip). Returns 1 and a malloc'd copy,
 * 0 when there is no file, -1 when a file was rejected (`why` says why).
 * Thread: owner. */
LJS_HIDDEN int ljs__disk_read(const char *dir, const char *path, const ljs__source_id_t *id, int strip,
                              unsigned char **bytes, size_t *len, char *why, size_t whylen);

/* Write the bytecode atomically. *dir_bytes is the directory's running
 * total (UINT64_MAX: unknown): it grows by the file written, and only when
 * it passes max_bytes is the directory scanned, the oldest files evicted
 * and the total recomputed, so writing n files costs O(n), not O(n^2).
 * Returns the number of files evicted, or -1 if the file could not be
 * written (`why` says why). Thread: owner. */
LJS_HIDDEN int ljs__disk_write(const char *dir, const char *path, const ljs__source_id_t *id, int strip,
                               const unsigned char *bytes, size_t len, uint64_t max_bytes,
                               uint64_t *dir_bytes, char *why, size_t whylen);

#endif
