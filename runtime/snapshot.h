/* snapshot.h - world snapshots (internal; the API is in ljs.h). */
#ifndef LJS_RUNTIME_SNAPSHOT_H
#define LJS_RUNTIME_SNAPSHOT_H

#include "jobs/sched.h" /* LJS_HIDDEN */

#include <stddef.h>
#include <stdint.h>

/* Bytes of the header before the body; the body's checksum sits at byte 24. */
#define LJS__SNAPSHOT_HEADER 32u

/* The body checksum a snapshot's header carries, so tests and fuzzers can
 * make a damaged body pass it and reach the parser. Thread: any. */
LJS_HIDDEN uint64_t ljs__snapshot_hash(const unsigned char *p, size_t n);

#endif
