/* ljs.h - the whole public API of ljs, a multithreaded Lua 5.4 script runtime
 * for game engines: one Lua state per worker thread, a work-stealing job
 * scheduler, C-side entity fields.
 *
 * Threads: every call is made on the thread that created the runtime (the
 * "owner", normally the engine's main thread) unless its comment says
 * `Thread: any`. During ljs_frame() the owner thread works as worker 0.
 * Every build checks this: an owner-only call from another thread changes
 * nothing and fails with LJS_EBADTHREAD (functions that return a count or a
 * predicate return 0; ljs_runtime_destroy returns without destroying), the
 * message in that thread's ljs_last_error(). "Between frames" means not
 * inside ljs_frame: such calls made while a frame runs fail with LJS_EBUSY.
 *
 * Errors: fallible calls return an int, LJS_OK (0) or a negative LJS_E*
 * code; ljs_strerror() names it and ljs_last_error() gives the detailed
 * message of the calling thread's last failed call.
 *
 * ljs is released under the MIT License (LICENSE, installed as
 * share/doc/ljs/LICENSE):
 *
 * MIT License
 *
 * Copyright (c) 2026 the ljs authors
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy
 * of this software and associated documentation files (the "Software"), to deal
 * in the Software without restriction, including without limitation the rights
 * to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 * copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in all
 * copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 * OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 * SOFTWARE.
 */
#ifndef LJS_H
#define LJS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LJS_BUILDING)
#define LJS_API __attribute__((visibility("default")))
#else
#define LJS_API
#endif

/* ========================================================================
 * Version
 * ======================================================================== */

#define LJS_VERSION_MAJOR 0
#define LJS_VERSION_MINOR 1
#define LJS_VERSION_PATCH 0
#define LJS_VERSION_STRING "0.1.0"
#define LJS_VERSION_NUM ((LJS_VERSION_MAJOR * 10000UL) + (LJS_VERSION_MINOR * 100UL) + LJS_VERSION_PATCH)

/* The library's LJS_VERSION_NUM, to detect a header/library mismatch.
 * Thread: any. Blocks: no. */
LJS_API unsigned long ljs_version(void);

/* ========================================================================
 * Errors
 * ======================================================================== */

/* X(name, value, message) */
#define LJS_ERR_MAP(X)                                                  \
    X(OK, 0, "success")                                                 \
    X(EINVAL, -1, "invalid argument or configuration value")            \
    X(ENOMEM, -2, "out of memory")                                      \
    X(ENOENT, -3, "no such entity, script, field or file")              \
    X(ETHREAD, -4, "could not start a worker thread")                   \
    X(ELUA, -5, "Lua state could not be created or failed to run code") \
    X(ESCRIPT, -6, "script failed to load or run")                      \
    X(ETYPE, -7, "value has the wrong type for this field")             \
    X(EEXIST, -8, "already exists")                                     \
    X(EFULL, -9, "capacity exceeded")                                   \
    X(EBUSY, -10, "not allowed while a frame is running")               \
    X(EIO, -11, "a file could not be read or written")                  \
    X(EBADTHREAD, -12, "called from a thread that is not the runtime's owner")

typedef enum ljs_err_e {
#define LJS__ERR_ENUM(name, value, msg) LJS_##name = (value),
    LJS_ERR_MAP(LJS__ERR_ENUM)
#undef LJS__ERR_ENUM
} ljs_err_t;

/* Human-readable text of an error code ("unknown error" for others).
 * Thread: any. Blocks: no. Returns a static string. */
LJS_API const char *ljs_strerror(int err);

/* The code's name, e.g. "LJS_EINVAL". Thread: any. Returns a static string. */
LJS_API const char *ljs_errname(int err);

/* Detailed message of the calling thread's last failed ljs call (for example
 * "LJS_WORKERS='abc': not an integer (accepted: 1..256)"), or "" if none.
 * Thread: any (thread-local). Borrowed until the next failing call on this
 * thread. */
LJS_API const char *ljs_last_error(void);

/* ========================================================================
 * Configuration
 * ======================================================================== */

/* Every knob, with its environment variable, default and accepted range.
 * X(type, field, ENV_NAME, default, min, max, help)
 * LJS_WORKERS=0 (the default) means one worker per online CPU, resolved by
 * ljs_runtime_create (ljs_runtime_config shows the number).
 * A numeric variable is digits only: leading or trailing spaces and a sign
 * ('+', '-') are refused with LJS_EINVAL. An LJS_* variable that is none of
 * these names is ignored with a console warning (LJS_LOG_WARN, at
 * ljs_runtime_create) naming the closest knob, e.g. LJS_WORKER -> LJS_WORKERS.
 *
 * ABI: this map grows with new knobs, so sizeof(ljs_config_t) changes
 * between 0.x releases; always fill it with ljs_config_init from the header
 * the library was built with (ljs_version() == LJS_VERSION_NUM). */
#define LJS_CONFIG_MAP(X)                                                                                 \
    X(uint32_t, workers, "LJS_WORKERS", 0, 0, 256, "worker threads including the host (0 = online CPUs)") \
    X(uint32_t, state_mem_mb, "LJS_STATE_MEM_MB", 256, 1, 65536, "memory limit per Lua state, MiB")       \
    X(uint32_t, spin, "LJS_SPIN", 2000, 0, 1000000, "idle polls before a worker parks")                   \
    X(uint32_t, batch, "LJS_BATCH", 256, 1, 1048576, "entities per update/event batch job")               \
    X(uint32_t, console_lines, "LJS_CONSOLE_LINES", 1024, 16, 1048576, "console ring capacity, lines")    \
    X(uint32_t, script_budget, "LJS_SCRIPT_BUDGET", 0, 0, 2000000000,                                     \
      "instructions per script call (0 = off)")                                                           \
    X(uint32_t, script_timeout_ms, "LJS_SCRIPT_TIMEOUT_MS", 1000, 0, 600000,                              \
      "CPU time per script call (0 = off)")                                                               \
    X(uint32_t, cache, "LJS_CACHE", 1, 0, 1, "shared bytecode cache: 1 = on, 0 = every worker compiles")  \
    X(uint32_t, strip_bytecode, "LJS_STRIP_BYTECODE", 0, 0, 1, "strip debug info from cached bytecode")   \
    X(uint32_t, cache_max_mb, "LJS_CACHE_MAX_MB", 64, 1, 65536,                                           \
      "size bound of LJS_CACHE_DIR, MiB (oldest evicted)")                                                \
    X(uint32_t, watch, "LJS_WATCH", 1, 0, 2,                                                              \
      "hot reload: 0 off, 1 inotify (polling if unavailable), 2 polling")                                 \
    X(uint32_t, poll_ms, "LJS_POLL_MS", 500, 10, 60000, "polling period when watching by polling, ms")    \
    X(uint32_t, reload_debounce_ms, "LJS_RELOAD_DEBOUNCE_MS", 30, 0, 10000,                               \
      "quiet time before a changed file reloads, ms")                                                     \
    X(uint32_t, watch_ring, "LJS_WATCH_RING", 1024, 4, 1048576,                                           \
      "file-change ring slots (rounded up to a power of 2)")                                              \
    X(uint32_t, query_cache, "LJS_QUERY_CACHE", 128, 0, 65536,                                            \
      "cached query signatures (0 = every query scans)")                                                  \
    X(uint32_t, entity_ring, "LJS_ENTITY_RING", 4096, 4, 1048576,                                         \
      "tag-post ring slots (power of 2 rounded up)")                                                      \
    X(uint32_t, gc_budget_us, "LJS_GC_BUDGET_US", 4000, 10, 1000000,                                      \
      "managed GC: target time per state per frame, us (steps follow allocation past it)")                \
    X(uint32_t, gc_pause, "LJS_GC_PAUSE", 175, 110, 1000,                                                 \
      "managed GC: a cycle starts when memory reaches this % of the last live heap")                      \
    X(uint32_t, gc_full_mb, "LJS_GC_FULL_MB", 0, 0, 65536,                                                \
      "managed GC: full collection past this many MiB (0 = off)")                                         \
    X(uint32_t, gc_full_s, "LJS_GC_FULL_S", 30, 0, 86400,                                                 \
      "managed GC: full collection every this many seconds (0 = off)")                                    \
    X(uint32_t, unload_grace, "LJS_UNLOAD_GRACE", 600, 0, 1000000,                                        \
      "frames an unpinned script may sit unused before it unloads (0 = never)")                           \
    X(uint32_t, pool, "LJS_POOL", 1, 0, 1,                                                                \
      "reuse event payload tables from a per-state pool (0 = a new table per event)")                     \
    X(uint32_t, stats, "LJS_STATS", 1, 0, 1, "time every batch per script (0 = counters only)")           \
    X(uint32_t, natural, "LJS_NATURAL", 1, 0, 1,                                                          \
      "natural form: 1 = scalarize self when provably safe, 0 = always the self table")                   \
    X(uint32_t, trace_spans, "LJS_TRACE_SPANS", 65536, 64, 16777216,                                      \
      "LJS_TRACE: spans kept per worker (the most recent; 32 bytes each)")                                \
    X(uint32_t, call_queue_kb, "LJS_CALL_QUEUE_KB", 4096, 1, 4194304,                                     \
      "bytes one script call may queue as events, spawns and destroys, KiB (past it: a script error)")    \
    X(uint32_t, event_mem_mb, "LJS_EVENT_MEM_MB", 256, 1, 65536,                                          \
      "bytes scripts may queue in one phase, MiB (past it the phase's messages are dropped)")

/* String knobs: X(field, ENV_NAME, default, max length, help). */
#define LJS_CONFIG_STR_MAP(X)                                                                      \
    X(cache_dir, "LJS_CACHE_DIR", "", 512, "persistent bytecode cache directory (empty = off)")    \
    X(gc_mode, "LJS_GC_MODE", "managed", 16, "GC per state: managed, generational or incremental") \
    X(trace, "LJS_TRACE", "", 512, "Chrome trace-event file written at exit (empty = off)")        \
    X(report, "LJS_REPORT", "", 512, "JSON report file written at exit (empty = off)")             \
    X(script_root, "LJS_SCRIPT_ROOT", "", 512,                                                     \
      "scripts are named by their path under this directory, ai/idle.lua -> ai.idle (empty = by file name)")

typedef struct ljs_config_s {
#define LJS__CONFIG_FIELD(type, field, env, def, lo, hi, help) type field;
    LJS_CONFIG_MAP(LJS__CONFIG_FIELD)
#undef LJS__CONFIG_FIELD
#define LJS__CONFIG_STR_FIELD(field, env, def, maxlen, help) char field[maxlen];
    LJS_CONFIG_STR_MAP(LJS__CONFIG_STR_FIELD)
#undef LJS__CONFIG_STR_FIELD
    /* Set by ljs_config_init when an LJS_* variable is invalid: the message
     * names the variable and its accepted range. ljs_runtime_create refuses a
     * config whose error is set. */
    char error[256];
} ljs_config_t;

/* Fill `cfg` with the built-in defaults, then apply the LJS_* environment
 * variables. Fields the caller sets afterwards win (precedence: built-in,
 * environment, code). Thread: any. Blocks: no. Returns LJS_OK, or LJS_EINVAL
 * when a variable is not a number or out of range (cfg->error and
 * ljs_last_error() say which); nothing is silently clamped. */
LJS_API int ljs_config_init(ljs_config_t *cfg);

/* Check every field against its range. Thread: any. Returns LJS_OK or
 * LJS_EINVAL (message in ljs_last_error()). */
LJS_API int ljs_config_validate(const ljs_config_t *cfg);

/* Where field `env` (an LJS_* name) of `cfg` got its value: "default",
 * "environment" (the variable is set and cfg holds its value) or "host"
 * (the code changed it after ljs_config_init). NULL for an unknown name.
 * Thread: any. */
LJS_API const char *ljs_config_source(const ljs_config_t *cfg, const char *env);

/* ========================================================================
 * Runtime lifecycle
 * ======================================================================== */

typedef struct ljs_runtime_s ljs_runtime_t;

/* Create a runtime: start cfg->workers - 1 worker threads, and on each
 * worker's own thread (the calling thread for worker 0) a mimalloc heap and a
 * sandboxed Lua state allocating from it. `cfg` is copied; NULL means
 * defaults plus environment. The calling thread becomes the owner.
 * Thread: any (becomes owner). Blocks: yes (until every worker is up).
 * Returns LJS_OK, LJS_EINVAL, LJS_ENOMEM, LJS_ETHREAD, LJS_ELUA. */
LJS_API int ljs_runtime_create(const ljs_config_t *cfg, ljs_runtime_t **out);

/* Stop the workers, close every Lua state and free everything.
 * Thread: owner. Blocks: yes. NULL is a no-op. */
LJS_API void ljs_runtime_destroy(ljs_runtime_t *rt);

/* Interrupt script code (on = 1) until cleared (on = 0): every running call
 * stops within a quarter of LJS_SCRIPT_TIMEOUT_MS (a running call is only
 * reached while LJS_SCRIPT_TIMEOUT_MS > 0), every later call stops at its
 * first instruction with "interrupted by the host", so a frame or a load in
 * progress returns soon. For Ctrl-C handlers: it only stores a flag.
 * Thread: any; async-signal-safe. Blocks: no. NULL is a no-op. */
LJS_API void ljs_runtime_interrupt(ljs_runtime_t *rt, int on);

/* The configuration in effect (defaults resolved, e.g. workers = CPUs).
 * Thread: any. Borrowed for the runtime's lifetime. */
LJS_API const ljs_config_t *ljs_runtime_config(const ljs_runtime_t *rt);

/* ========================================================================
 * Memory
 * ======================================================================== */

/* Fields of ljs_state_memory_t, X(type, name): the struct and the JSON
 * report are both generated from this list. */
#define LJS_STATE_MEMORY_FIELDS(X)                                           \
    X(uint64_t, current_bytes)   /* live bytes of this worker's Lua state */ \
    X(uint64_t, peak_bytes)      /* highest current_bytes seen */            \
    X(uint64_t, limit_bytes)     /* LJS_STATE_MEM_MB in bytes */             \
    X(uint64_t, failed_allocs)   /* allocations refused by the limit */      \
    X(uint64_t, allocated_bytes) /* bytes ever allocated (growth only), for rates */

typedef struct ljs_state_memory_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_STATE_MEMORY_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_state_memory_t;

/* Memory counters of worker `worker`'s Lua state (0 .. workers-1).
 * Thread: owner. Blocks: no (relaxed snapshot). Returns LJS_OK, LJS_EINVAL. */
LJS_API int ljs_state_memory(const ljs_runtime_t *rt, uint32_t worker, ljs_state_memory_t *out);

/* ========================================================================
 * Entities, tags and fields
 * ======================================================================== */

/* A generation-checked entity handle: a destroyed entity's handle (and any
 * copy of it) is refused with LJS_ENOENT, never confused with a new one.
 * In Lua an entity is the integer `id`. 0 is never a valid entity. */
typedef struct ljs_entity_s {
    uint64_t id;
} ljs_entity_t;

/* An id is (generation << 32) | index: the entity's slot, and how many times
 * that slot has held an entity (from 1). Messages from ljs (errors, ljs-run)
 * print ids as index:generation, e.g. "entity 4998:1":
 *   printf("entity " LJS_ENTITY_FMT "\n", LJS_ENTITY_ARGS(e.id)); */
#define LJS_ENTITY_INDEX(id) ((uint32_t)((uint64_t)(id)&0xffffffffu))
#define LJS_ENTITY_GENERATION(id) ((uint32_t)((uint64_t)(id) >> 32))
#define LJS_ENTITY_FMT "%u:%u"
#define LJS_ENTITY_ARGS(id) (unsigned)LJS_ENTITY_INDEX(id), (unsigned)LJS_ENTITY_GENERATION(id)

/* Value types. Fields may be LJS_TNUMBER, LJS_TINTEGER, LJS_TBOOLEAN,
 * LJS_TSTRING (immutable, interned per runtime, at most LJS_STRING_MAX
 * bytes, NULs carried whole), LJS_TENTITY (a generation-checked reference:
 * reads give 0 / nil once the target is destroyed) or LJS_TLIST (a bounded
 * flat array of one of the others, ljs_field_declare_list). */
typedef enum ljs_type_e {
    LJS_TNIL = 0,
    LJS_TNUMBER = 1,  /* double */
    LJS_TINTEGER = 2, /* int64_t */
    LJS_TBOOLEAN = 3,
    LJS_TSTRING = 4,
    LJS_TENTITY = 5, /* an entity id (ljs_entity_t.id) */
    LJS_TLIST = 7    /* fields only */
} ljs_type_t;

/* Longest string a string field (or list element) holds, in bytes. */
#define LJS_STRING_MAX 4096
/* Most elements a list field may declare (its `maxlen`). */
#define LJS_LIST_MAX 1024

/* Create an entity (no tags, no fields, no scripts). Structural changes made
 * between frames apply at once. Thread: owner, not during ljs_frame.
 * Returns LJS_OK, LJS_ENOMEM, LJS_EBUSY. */
LJS_API int ljs_entity_create(ljs_runtime_t *rt, ljs_entity_t *out);

/* Destroy an entity: its fields, tags and script bindings go; its slot is
 * reused with a new generation. Applies at once (scripts destroy through
 * destroy(), applied at the end of the frame). Thread: owner, between
 * frames. Blocks: no. Returns LJS_OK, LJS_ENOENT, LJS_EBUSY (during
 * ljs_frame), LJS_EBADTHREAD. */
LJS_API int ljs_entity_destroy(ljs_runtime_t *rt, ljs_entity_t e);

/* 1 if `e` is a live entity, else 0. Thread: owner. */
LJS_API int ljs_entity_alive(const ljs_runtime_t *rt, ljs_entity_t e);

/* Number of live entities. Thread: owner. */
LJS_API uint32_t ljs_entity_count(const ljs_runtime_t *rt);

/* Add (on != 0) or remove a tag. Tags are names; at most 64 distinct tag
 * names per runtime. Applies at once; queries see it from the next call.
 * Other threads (and the host during a frame) use ljs_entity_tag_post.
 * Thread: owner, between frames. Blocks: no. Returns LJS_OK, LJS_ENOENT,
 * LJS_EFULL, LJS_EINVAL, LJS_EBUSY (during ljs_frame), LJS_EBADTHREAD. */
LJS_API int ljs_entity_tag(ljs_runtime_t *rt, ljs_entity_t e, const char *tag, int on);

/* Post a tag change from any thread (a physics or AI thread, say): applied
 * at the start of the next ljs_frame, in the order each thread posted, and
 * seen by cached queries from then on. Posts travel on a lock-free ring;
 * when it is full they spill to a locked list, so none is lost. A post for
 * an entity dead by then is dropped and counted. `tag` is copied (at most
 * 39 characters). Thread: any. Blocks: only while the ring is full.
 * Returns LJS_OK, LJS_EINVAL, LJS_ENOMEM. */
LJS_API int ljs_entity_tag_post(ljs_runtime_t *rt, ljs_entity_t e, const char *tag, int on);

/* 1 if `e` has `tag`, else 0 (also for dead entities). Thread: owner. */
LJS_API int ljs_entity_has_tag(const ljs_runtime_t *rt, ljs_entity_t e, const char *tag);

/* Declare a field (a typed C-side column every entity may hold). Scripts
 * declare theirs through `fields = {...}`; the type of a name is fixed by
 * the first declaration. `type` is LJS_TNUMBER, LJS_TINTEGER, LJS_TBOOLEAN,
 * LJS_TSTRING or LJS_TENTITY (lists: ljs_field_declare_list). Thread:
 * owner, not during ljs_frame. Returns LJS_OK, LJS_ETYPE (declared before
 * with another type), LJS_EINVAL, LJS_EFULL, LJS_EBUSY. */
LJS_API int ljs_field_declare(ljs_runtime_t *rt, const char *name, ljs_type_t type);

/* Declare a list field: at most `maxlen` (1..LJS_LIST_MAX) elements of
 * type `elem` (any field type but a list). The same name with another
 * element type or maxlen is LJS_ETYPE. Thread: owner, not during
 * ljs_frame. Returns as ljs_field_declare. */
LJS_API int ljs_field_declare_list(ljs_runtime_t *rt, const char *name, ljs_type_t elem, uint32_t maxlen);

/* Read a field's committed value. Integers and booleans read as numbers
 * too. Thread: owner, between frames. Returns LJS_OK, LJS_ENOENT (dead
 * entity, unknown field, or entity without that field), LJS_ETYPE (the
 * field has another type). */
LJS_API int ljs_field_get_number(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, double *out);
LJS_API int ljs_field_get_integer(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, int64_t *out);
LJS_API int ljs_field_get_boolean(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, int *out);

/* An entity field's target: out->id is 0 when the field holds no entity or
 * its target has been destroyed since (generation-checked on every read).
 * Thread: owner, between frames. Returns as ljs_field_get_number. */
LJS_API int ljs_field_get_entity(const ljs_runtime_t *rt, ljs_entity_t e, const char *name,
                                 ljs_entity_t *out);

/* A string field's bytes: *out points at *len bytes followed by a NUL (the
 * bytes may hold NULs: use *len). Borrowed: valid until the next
 * ljs_frame, ljs_world_load or write of that field, whichever comes first
 * (copy it to keep it). Thread: owner, between frames. Returns as
 * ljs_field_get_number. */
LJS_API int ljs_field_get_string(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, const char **out,
                                 size_t *len);

/* A list field: *len gets its length, and up to `cap` elements are copied
 * into `out` (may be NULL when cap is 0) as ljs_value_t of the list's
 * element type. String elements point into the runtime with the lifetime
 * of ljs_field_get_string; entity elements read 0 once their target is
 * destroyed. Thread: owner, between frames. Returns as
 * ljs_field_get_number. */
struct ljs_value_s;
LJS_API int ljs_field_get_list(const ljs_runtime_t *rt, ljs_entity_t e, const char *name,
                               struct ljs_value_s *out, size_t cap, size_t *len);

/* Write a field (the entity gains the field if it had none). Integer fields
 * accept a number only if it is integral. The value is committed at once:
 * scripts read it from the next frame on. Thread: owner, between frames.
 * Blocks: no. Returns LJS_OK, LJS_ENOENT, LJS_ETYPE, LJS_EINVAL, LJS_EBUSY
 * (during ljs_frame), LJS_EBADTHREAD. */
LJS_API int ljs_field_set_number(ljs_runtime_t *rt, ljs_entity_t e, const char *name, double v);
LJS_API int ljs_field_set_integer(ljs_runtime_t *rt, ljs_entity_t e, const char *name, int64_t v);
LJS_API int ljs_field_set_boolean(ljs_runtime_t *rt, ljs_entity_t e, const char *name, int v);

/* Write an entity field: `target` must be alive (LJS_ENOENT otherwise), or
 * {0} for no entity. Thread, blocking and returns as ljs_field_set_number. */
LJS_API int ljs_field_set_entity(ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs_entity_t target);

/* Write a string field: `len` bytes at `s` are copied (interned), NULs
 * included. Longer than LJS_STRING_MAX is LJS_EINVAL. Thread, blocking
 * and returns as ljs_field_set_number. */
LJS_API int ljs_field_set_string(ljs_runtime_t *rt, ljs_entity_t e, const char *name, const char *s,
                                 size_t len);

/* Write a list field from `n` values (copied; n at most the declared
 * maxlen, each of the element type: LJS_TINTEGER values fit a number list,
 * integral numbers an integer list, entity elements must be alive or 0).
 * Returns LJS_EINVAL past maxlen or a string too long, LJS_ETYPE for a
 * wrong element type; thread and blocking as ljs_field_set_number. */
LJS_API int ljs_field_set_list(ljs_runtime_t *rt, ljs_entity_t e, const char *name,
                               const struct ljs_value_s *v, size_t n);

/* A 64-bit hash of every live entity's fields, in entity order: equal
 * digests mean equal worlds (ljs-run prints it). Thread: owner. */
LJS_API uint64_t ljs_world_digest(const ljs_runtime_t *rt);

/* ========================================================================
 * World snapshots (save games, replays, bug reports)
 * ===================================================================== */

/* Save the whole world between frames: every entity (slot, generation),
 * tag, committed field value, script binding (by script name) and pending
 * event, in a versioned, checksummed byte format (runtime/snapshot.c has
 * the layout). `*out` is allocated by ljs: free it with ljs_world_free.
 * Script-local Lua state (upvalues, module locals) is not saved: state
 * belongs in fields. Thread: owner, not during ljs_frame. Blocks: no.
 * Returns LJS_OK, LJS_EINVAL, LJS_EBUSY, LJS_ENOMEM. */
LJS_API int ljs_world_save(const ljs_runtime_t *rt, void **out, size_t *len);

/* Free a buffer from ljs_world_save. Thread: any. */
LJS_API void ljs_world_free(void *data);

/* Replace this runtime's world with a snapshot (`data` borrowed; Blocks: no). The
 * runtime must have every script the snapshot binds loaded (by name);
 * fields it declares must have the snapshot's types. Everything is checked
 * before anything changes: a corrupt, truncated or foreign file
 * (LJS_EINVAL), a missing script (LJS_ENOENT) or a field type mismatch
 * (LJS_ETYPE) leaves the world as it was, with ljs_last_error saying why.
 * Stepping on is bit-identical to the saved runtime when both loaded the
 * same scripts in the same order, for any worker counts. Thread: owner, not
 * during ljs_frame. Returns LJS_OK, LJS_EINVAL, LJS_ENOENT, LJS_ETYPE,
 * LJS_EBUSY, LJS_EFULL, LJS_ENOMEM. */
LJS_API int ljs_world_load(ljs_runtime_t *rt, const void *data, size_t len);

/* The same through a file (`path` borrowed). Saving writes a temp file
 * and renames it, so a crash never leaves half a save. Thread: owner.
 * Blocks: yes (file I/O). Returns as above, plus LJS_EIO / LJS_ENOENT. */
LJS_API int ljs_world_save_file(const ljs_runtime_t *rt, const char *path);
LJS_API int ljs_world_load_file(ljs_runtime_t *rt, const char *path);

/* ========================================================================
 * Scripts
 * ======================================================================== */

/* A loaded script. In Lua, scripts are named by `name` (the file name
 * without directory and ".lua"), e.g. spawn("prey", {...}). */
typedef struct ljs_script_s {
    uint32_t id;
} ljs_script_t;

/* Load a script file into every worker's state. The file is a Lua module
 * returning a table: optional `fields` (name = default; the default fixes
 * the field's type: a number, integer, boolean or string, `ljs.entity`, or
 * `ljs.list(type, maxlen)`), `tags`, `update(self, dt)` or the fast form
 * `reads`/`writes` + `update(id, dt, <reads...>) -> <writes...>`, and event
 * handlers `on_<event>(self, payload, sender)`. `path` is copied as given:
 * a relative path is relative to the process's current working directory,
 * now and at every later hot reload (the file is reopened by that path), so
 * a host that changes directory should pass an absolute path. The script's
 * name is the file name without directory and ".lua".
 * Thread: owner, not during ljs_frame. Blocks: yes (every worker loads it).
 * Returns LJS_OK, LJS_ENOENT (no such file), LJS_ESCRIPT (syntax error, error
 * while running the chunk, bad module shape: ljs_last_error() gives
 * file:line), LJS_ETYPE (a field's type clashes with an earlier
 * declaration), LJS_EEXIST (a script with that name is loaded),
 * LJS_ENOMEM. */
LJS_API int ljs_script_load(ljs_runtime_t *rt, const char *path, ljs_script_t *out);

/* Unload a script: detach it from every entity and drop it from every
 * state. Fields it declared stay (other scripts or the host may use them).
 * Thread: owner, not during ljs_frame. Returns LJS_OK, LJS_ENOENT. */
LJS_API int ljs_script_unload(ljs_runtime_t *rt, ljs_script_t s);

/* Pin (the default for scripts the host loads) or unpin a script. An
 * unpinned script that no entity uses for LJS_UNLOAD_GRACE frames is
 * unloaded from every state and from the bytecode cache, and its handle
 * goes stale (LJS_ENOENT). Thread: owner. Returns LJS_OK, LJS_ENOENT. */
LJS_API int ljs_script_pin(ljs_runtime_t *rt, ljs_script_t s, int pinned);

/* Find a loaded script by name. Thread: owner. Returns LJS_OK, LJS_ENOENT. */
LJS_API int ljs_script_find(const ljs_runtime_t *rt, const char *name, ljs_script_t *out);

/* Reload a script from its file into every worker's state, all or nothing:
 * entities keep their fields (new fields get their defaults), its modules
 * run again, and the new version's optional on_reload(self) runs once per
 * entity. A broken new version (syntax error, error in its chunk, bad
 * shape, a state out of memory) is reported and the old version keeps
 * running. Thread: owner, not during ljs_frame. Returns LJS_OK,
 * LJS_ESCRIPT, LJS_ENOENT, LJS_ENOMEM. */
LJS_API int ljs_script_reload(ljs_runtime_t *rt, ljs_script_t s);

/* Attach a script to an entity: the entity gains the script's tags and the
 * defaults of the fields it does not hold yet, and takes part in the
 * script's update and events from the next frame. Attaching twice is a
 * no-op. Thread: owner, not during ljs_frame. Returns LJS_OK, LJS_ENOENT. */
LJS_API int ljs_script_attach(ljs_runtime_t *rt, ljs_entity_t e, ljs_script_t s);

/* Detach a script from an entity, which keeps its fields and tags.
 * Thread: owner, not during ljs_frame. Blocks: no. Returns LJS_OK,
 * LJS_ENOENT, LJS_EBUSY. */
LJS_API int ljs_script_detach(ljs_runtime_t *rt, ljs_entity_t e, ljs_script_t s);

/* ========================================================================
 * Queries
 * ======================================================================== */

/* Entities having every tag of `all` and none of `none` (tag names). */
typedef struct ljs_query_s {
    const char *const *all;
    size_t nall;
    const char *const *none;
    size_t nnone;
} ljs_query_t;

/* Run a query: *out gets the matching live entities sorted by entity slot
 * (the order scripts see), *n their count. Results are cached per
 * signature and kept current from structural changes (create, destroy,
 * tag) as deltas, so a repeated query costs a lookup. A tag name never
 * used matches nothing in `all` and is ignored in `none`. The array is
 * borrowed until the next structural change, ljs_query or ljs_frame.
 * Thread: owner, between frames. Returns LJS_OK, LJS_EINVAL, LJS_ENOMEM. */
LJS_API int ljs_query(ljs_runtime_t *rt, const ljs_query_t *q, const ljs_entity_t **out, size_t *n);

/* Fields of ljs_query_stats_t, X(type, name) (struct and report). */
#define LJS_QUERY_STATS_FIELDS(X)                                                          \
    X(uint64_t, hits)       /* lookups answered from the cache */                          \
    X(uint64_t, misses)     /* lookups that scanned (first use of a signature) */          \
    X(uint64_t, recomputes) /* cached results rebuilt by a full scan */                    \
    X(uint64_t, deltas)     /* cached results patched from structural changes */           \
    X(uint64_t, evictions)  /* least recently used signatures dropped (LJS_QUERY_CACHE) */ \
    X(uint32_t, entries)    /* signatures cached now */

typedef struct ljs_query_stats_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_QUERY_STATS_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_query_stats_t;

/* Thread: owner, between frames. Returns LJS_OK, LJS_EINVAL. */
LJS_API int ljs_query_stats(const ljs_runtime_t *rt, ljs_query_stats_t *out);

/* ========================================================================
 * Events
 * ======================================================================== */

/* One key/value of an event payload. */
typedef struct ljs_kv_s {
    const char *key; /* NULL: the payload is this single value, not a table */
    ljs_type_t type;
    union {
        double n;
        int64_t i;
        int b;
        const char *s;
    } v;
} ljs_kv_t;

/* Send event `name` to `target`, delivered in the next event phase to every
 * script of the target with an `on_<name>` handler, in (target, sender,
 * sequence) order; the host is sender 0. A valid name is 1 to 64
 * characters, each a letter, digit or '_' (so on_<name> is a Lua
 * identifier); scripts' send() follows the same rule. Payload: n == 0 gives
 * nil; one entry with key NULL gives that value; otherwise a flat table of
 * the entries, each key given once (at most 256). Everything is copied.
 * Thread: owner, not during ljs_frame. Blocks: no. Returns LJS_OK,
 * LJS_EINVAL (a bad name; a payload with a NULL string, a NULL key in a
 * table, a key given twice, more than 256 entries), LJS_ENOMEM, LJS_EBUSY,
 * LJS_EBADTHREAD. An event to an entity that is dead at delivery is dropped
 * and counted. */
LJS_API int ljs_send(ljs_runtime_t *rt, ljs_entity_t target, const char *name, const ljs_kv_t *payload,
                     size_t n);

/* ========================================================================
 * Frames
 * ======================================================================== */

/* Run one frame: the update phase (every script's update over its entities,
 * in batches of LJS_BATCH spread over the workers), the event phase, the
 * field commit, then the structural changes scripts asked for (spawn,
 * destroy) in a deterministic order. `dt` is the time step in seconds
 * (scripts get it as update's `dt`); 0 is allowed. Script errors do not
 * fail the frame: they are logged to the console and counted. The owner
 * thread works as worker 0 meanwhile. Thread: owner. Blocks: yes.
 * Returns LJS_OK; LJS_EINVAL when rt is NULL or dt is negative, NaN,
 * infinite or 1e9 s or more; LJS_EBUSY when called from inside a frame;
 * LJS_ENOMEM; LJS_EBADTHREAD. */
LJS_API int ljs_frame(ljs_runtime_t *rt, double dt);

/* Frames run so far. Thread: owner. */
LJS_API uint64_t ljs_frame_count(const ljs_runtime_t *rt);

/* ========================================================================
 * Console
 * ======================================================================== */

typedef enum ljs_severity_e { LJS_LOG_INFO = 0, LJS_LOG_WARN = 1, LJS_LOG_ERROR = 2 } ljs_severity_t;

typedef struct ljs_log_line_s {
    ljs_severity_t severity;
    uint64_t frame;
    uint64_t entity;    /* 0 when not from an entity's call */
    const char *script; /* script name, "" for the runtime itself */
    const char *text;   /* the message (script errors: file:line, traceback) */
} ljs_log_line_t;

typedef void (*ljs_log_fn)(void *ud, const ljs_log_line_t *line);

/* Hand every buffered console line to `fn`, oldest first, then empty the
 * ring. The ring keeps at most LJS_CONSOLE_LINES lines; older ones are
 * dropped and counted. Strings are borrowed for the call only. `fn` runs on
 * the calling thread without any ljs lock held, so it may call ljs (even
 * ljs_frame); lines logged meanwhile wait for the next drain. `fn` may be
 * NULL (the lines are discarded). Thread: owner, between frames. Blocks: no.
 * Returns the number of lines delivered (0 from another thread). */
LJS_API size_t ljs_console_drain(ljs_runtime_t *rt, ljs_log_fn fn, void *ud);

/* ========================================================================
 * Statistics
 * ======================================================================== */

/* Fields of ljs_stats_t, X(type, name): the struct and the JSON report's
 * "stats" object are both generated from this list, so neither can miss a
 * counter. */
#define LJS_STATS_FIELDS(X)                                                                             \
    X(uint64_t, frames)                                                                                 \
    X(uint64_t, updates)          /* entity update calls, cumulative */                                 \
    X(uint64_t, events_sent)      /* by scripts and the host */                                         \
    X(uint64_t, events_delivered) /* handler calls */                                                   \
    X(uint64_t, events_dropped)   /* target dead, or no handler */                                      \
    X(uint64_t, script_errors)                                                                          \
    X(uint64_t, console_dropped)                                                                        \
    X(uint64_t, reloads)           /* scripts reloaded by the watcher or ljs_script_reload */           \
    X(uint64_t, reload_errors)     /* reloads refused (broken new version): the old one kept running */ \
    X(uint64_t, watch_events)      /* file-change records drained from the watcher's ring */            \
    X(uint64_t, watch_overflows)   /* full ring: every watched file was rescanned */                    \
    X(uint32_t, watch_mode)        /* 0 off, 1 inotify, 2 polling (also after a fallback) */            \
    X(uint64_t, tag_posts)         /* ljs_entity_tag_post calls */                                      \
    X(uint64_t, tag_post_spills)   /* posts that found the ring full and took the locked list */        \
    X(uint64_t, tag_posts_dropped) /* posts for entities dead when applied */                           \
    /* Scheduler, summed over workers (ljs_worker_stats has each). */                                   \
    X(uint64_t, jobs)   /* batch, commit and GC jobs run */                                             \
    X(uint64_t, steals) /* jobs taken from another worker's deque */                                    \
    X(uint64_t, parks)  /* times a worker went to sleep */                                              \
    /* Hit counts: the bytecode cache (process-wide) and cached queries. */                             \
    X(uint64_t, cache_hits)                                                                             \
    X(uint64_t, cache_misses)                                                                           \
    X(uint64_t, query_hits)                                                                             \
    X(uint64_t, query_misses)                                                                           \
    /* Phase times of the last frame, ms. */                                                            \
    /* start: reloads, posted tags and query sync. */                                                   \
    /* end: spawns/destroys, unloads, queueing the managed GC (it runs in the background). */           \
    X(double, last_start_ms)                                                                            \
    X(double, last_update_ms)                                                                           \
    X(double, last_event_ms)                                                                            \
    X(double, last_commit_ms)                                                                           \
    X(double, last_end_ms)                                                                              \
    X(double, last_gc_ms) /* part of last_end_ms: the owner's share (queueing, rarely its own debt) */  \
    X(double, last_frame_ms)                                                                            \
    /* The same, summed over every frame, and the longest frame. */                                     \
    X(double, total_start_ms)                                                                           \
    X(double, total_update_ms)                                                                          \
    X(double, total_event_ms)                                                                           \
    X(double, total_commit_ms)                                                                          \
    X(double, total_end_ms)                                                                             \
    X(double, total_gc_ms)                                                                              \
    X(double, total_frame_ms)                                                                           \
    X(double, max_frame_ms)

typedef struct ljs_stats_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_STATS_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_stats_t;

/* Thread: owner, between frames. Returns LJS_OK, LJS_EINVAL. */
LJS_API int ljs_stats_get(const ljs_runtime_t *rt, ljs_stats_t *out);

/* Fields of ljs_script_stats_t, X(type, name) (struct and report). */
#define LJS_SCRIPT_STATS_FIELDS(X)                                                                         \
    X(uint64_t, calls)  /* update and handler calls */                                                     \
    X(uint64_t, errors) /* calls that raised */                                                            \
    X(uint32_t, entities)                                                                                  \
    X(double, time_ms)       /* time in its batches, all workers (LJS_STATS=1; 0 otherwise) */             \
    X(uint64_t, alloc_bytes) /* Lua bytes allocated while its code ran (loads included), all workers */    \
    X(uint32_t, scalarized)  /* natural-form update/handlers running scalarized (README "Natural form") */ \
    X(uint32_t, table_fallback) /* natural-form update/handlers running with a self table */

typedef struct ljs_script_stats_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_SCRIPT_STATS_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_script_stats_t;

/* Per-script counters. Thread: owner, between frames. Blocks: no.
 * Returns LJS_OK, LJS_ENOENT. */
LJS_API int ljs_script_stats(const ljs_runtime_t *rt, ljs_script_t s, ljs_script_stats_t *out);

/* Fields of ljs_worker_stats_t, X(type, name) (struct and report). */
#define LJS_WORKER_STATS_FIELDS(X)                                       \
    X(uint64_t, jobs)   /* jobs this worker ran */                       \
    X(uint64_t, steals) /* of which taken from another worker's deque */ \
    X(uint64_t, parks)  /* times it went to sleep */                     \
    X(double, busy_ms)  /* time inside jobs */

typedef struct ljs_worker_stats_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_WORKER_STATS_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_worker_stats_t;

/* Scheduler counters of worker `worker`, cumulative. Thread: owner,
 * between frames. Returns LJS_OK, LJS_EINVAL. */
LJS_API int ljs_worker_stats(const ljs_runtime_t *rt, uint32_t worker, ljs_worker_stats_t *out);

/* ========================================================================
 * Hot reload
 * ======================================================================== */

/* Pause (on = 0) or resume hot reload. While paused, changed files wait;
 * resuming rescans every watched file and reloads what changed. Reloads and
 * reload errors are counted in ljs_stats_t and logged to the console.
 * Thread: owner, not during ljs_frame. Returns LJS_OK, LJS_EINVAL (the
 * runtime was created with LJS_WATCH=0), LJS_EBUSY. */
LJS_API int ljs_watch_set(ljs_runtime_t *rt, int on);

/* ========================================================================
 * Bytecode cache
 * ======================================================================== */

/* The shared bytecode cache's counters (process-wide: every runtime of the
 * process shares one cache). */
/* Fields of ljs_cache_stats_t, X(type, name) (struct and report). */
#define LJS_CACHE_STATS_FIELDS(X)                                                            \
    X(uint64_t, compiles)        /* sources compiled (once per source version) */            \
    X(uint64_t, hits)            /* loads served without compiling */                        \
    X(uint64_t, misses)          /* loads that had to compile */                             \
    X(uint64_t, loads)           /* bytecode loads into worker states */                     \
    X(uint64_t, bytes)           /* bytecode bytes currently cached */                       \
    X(uint64_t, entries)         /* scripts currently cached */                              \
    X(uint64_t, snapshots_freed) /* old snapshots reclaimed after a grace period */          \
    X(uint64_t, disk_hits)       /* compiles avoided by a valid LJS_CACHE_DIR file */        \
    X(uint64_t, disk_writes)     /* files written to LJS_CACHE_DIR */                        \
    X(uint64_t, disk_rejects)    /* corrupt, truncated, foreign or tampered files ignored */ \
    X(uint64_t, disk_evictions)  /* files removed to stay under LJS_CACHE_MAX_MB */          \
    X(double, compile_ms)        /* time spent compiling */                                  \
    X(double, saved_ms)          /* compile time the hits avoided (each hit: that source's compile time) */

typedef struct ljs_cache_stats_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_CACHE_STATS_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_cache_stats_t;

/* Thread: owner. Returns LJS_OK, LJS_EINVAL. */
LJS_API int ljs_cache_stats(const ljs_runtime_t *rt, ljs_cache_stats_t *out);

/* ========================================================================
 * Garbage collection
 * ======================================================================== */

/* Fields of ljs_gc_stats_t, X(type, name) (struct and report). */
#define LJS_GC_STATS_FIELDS(X)                                                                               \
    X(uint64_t, steps)           /* LUA_GCSTEP calls made by the managed policy (idle ones included) */      \
    X(uint64_t, cycles)          /* collection cycles completed */                                           \
    X(uint64_t, full)            /* full collections (LJS_GC_FULL_MB / LJS_GC_FULL_S) */                     \
    X(uint64_t, behind)          /* frames whose allocation debt took more than LJS_GC_BUDGET_US (warned) */ \
    X(double, total_ms)          /* time spent in GC work, in the background and while idle in frames */     \
    X(double, max_frame_ms)      /* the longest GC job one frame queued for this state */                    \
    X(uint64_t, freed_bytes)     /* bytes the GC work released */                                            \
    X(uint64_t, idle_steps)      /* steps run while this worker had no batch to run during a frame */        \
    X(double, idle_ms)           /* time those took (counted against the same per-frame budget) */           \
    X(uint64_t, last_full_frame) /* frame of the last LJS_GC_FULL_* collection (0: none), unique */

typedef struct ljs_gc_stats_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_GC_STATS_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_gc_stats_t;

/* A full collection of every worker's state, now (each on its own worker).
 * Thread: owner, not during ljs_frame. Blocks: yes. Returns LJS_OK,
 * LJS_EINVAL, LJS_EBUSY. */
LJS_API int ljs_gc_collect(ljs_runtime_t *rt);

/* GC counters of worker `worker`'s state, as of its last GC step (a
 * worker's background GC may still be running: the counters lag it, and
 * reading them never waits for it). Thread: owner. Blocks: no.
 * Returns LJS_OK, LJS_EINVAL. */
LJS_API int ljs_gc_stats(const ljs_runtime_t *rt, uint32_t worker, ljs_gc_stats_t *out);

/* ========================================================================
 * Reports and traces
 * ======================================================================== */

typedef struct ljs_script_memory_s {
    const char *name;
    const char *path;
    uint64_t alloc_bytes; /* Lua bytes allocated while its code ran, all workers */
    uint64_t calls;
    double time_ms;
} ljs_script_memory_t;

typedef struct ljs_memory_report_s {
    uint64_t lua_bytes;      /* all states now */
    uint64_t lua_peak_bytes; /* highest all-states total seen after a frame */
    uint64_t rss_bytes;      /* the process (VmRSS; 0 if unavailable) */
    uint64_t rss_peak_bytes; /* the process (VmHWM) */
    uint32_t nstates;
    const ljs_state_memory_t *states; /* [nstates], per worker */
    const ljs_gc_stats_t *gc;         /* [nstates] */
    uint32_t nscripts;
    const ljs_script_memory_t *scripts; /* [nscripts], loaded scripts */
} ljs_memory_report_t;

/* Fill `out`. The arrays and strings belong to the runtime and stay valid
 * until the next ljs_memory_report call or ljs_frame. Thread: owner,
 * between frames. Returns LJS_OK, LJS_EINVAL, LJS_ENOMEM. */
LJS_API int ljs_memory_report(ljs_runtime_t *rt, ljs_memory_report_t *out);

/* Write everything (config with sources, stats, workers, memory, GC,
 * scripts, cache, queries) as one JSON object to `out`. LJS_REPORT=path
 * writes the same at ljs_runtime_destroy. Thread: owner, between frames.
 * Returns LJS_OK, LJS_EINVAL, LJS_ENOMEM, LJS_EIO. */
LJS_API int ljs_report_json(ljs_runtime_t *rt, FILE *out);

/* Write the LJS_TRACE file now (it is also written at ljs_runtime_destroy):
 * the most recent LJS_TRACE_SPANS spans of each worker. Thread: owner,
 * between frames. Returns LJS_OK, LJS_EINVAL (tracing is off), LJS_EIO. */
LJS_API int ljs_trace_flush(ljs_runtime_t *rt);

/* ========================================================================
 * Tools
 * ======================================================================== */

/* Run a plain Lua file once in a trusted state (full standard library, `arg`
 * set from argv) on worker 0's allocator with its limit and accounting.
 * Errors (file:line + traceback) go to the console and ljs_last_error().
 * Thread: owner. Returns LJS_OK, LJS_ENOENT, LJS_ESCRIPT, LJS_ENOMEM. */
LJS_API int ljs_exec_file(ljs_runtime_t *rt, const char *path, int argc, char **argv);

/* ========================================================================
 * Engine bindings: host functions, events to the host, log and profiler
 * callbacks
 * ======================================================================== */

/* A value kind beyond ljs_type_t's that crosses the host-function
 * boundary: a flat table (keys integers or strings, values scalars). An
 * entity (LJS_TENTITY) is a generation-checked id (scripts hold it as an
 * integer). */
#define LJS_TTABLE ((ljs_type_t)6)

struct ljs_pair_s;

/* One value crossing between a script and the host. Strings are pointer +
 * length (they may hold NUL bytes) and borrowed for the call (or event)
 * only; so are a table's pairs. */
typedef struct ljs_value_s {
    ljs_type_t type;
    union {
        double n;  /* LJS_TNUMBER */
        int64_t i; /* LJS_TINTEGER */
        int b;     /* LJS_TBOOLEAN */
        struct {
            const char *p;
            size_t len;
        } s;        /* LJS_TSTRING */
        uint64_t e; /* LJS_TENTITY */
        struct {
            const struct ljs_pair_s *pairs;
            size_t n;
        } t; /* LJS_TTABLE: integer keys ascending, then string keys in byte order */
    } v;
} ljs_value_t;

typedef struct ljs_pair_s {
    ljs_value_t key; /* LJS_TINTEGER or LJS_TSTRING */
    ljs_value_t value;
} ljs_pair_t;

/* How a host function may be called (Roblox Parallel Luau's classes):
 * - LJS_PARALLEL: thread-safe; called directly on the worker running the
 *   script, concurrently with other calls of it; may return values.
 * - LJS_READONLY: reads engine data that does not change during ljs_frame;
 *   called like LJS_PARALLEL (the host promises not to write that data
 *   while a frame runs).
 * - LJS_DEFERRED: not thread-safe; the call is copied into a queue and run
 *   later on the owner thread: calls made during a frame run after its
 *   event phase and field commit, before spawns and destroys apply, in
 *   (calling entity, sequence) order, so the order is the same for any
 *   worker count; calls made by a module's top level run when its load or
 *   reload succeeds (dropped if it is refused), calls made by on_reload at
 *   the start of the next frame. Returns nothing to the
 *   script. Its arguments count against LJS_CALL_QUEUE_KB (per call) and
 *   LJS_EVENT_MEM_MB (per frame) like queued events. */
typedef enum ljs_safety_e { LJS_PARALLEL = 0, LJS_READONLY = 1, LJS_DEFERRED = 2 } ljs_safety_t;

/* One call of a host function (opaque; valid during the callback only). */
typedef struct ljs_call_s ljs_call_t;

/* A host function. Read the arguments with ljs_arg_*, push results with
 * ljs_ret_*, and return LJS_OK, or an error: the message set by a failed
 * accessor or by ljs_call_error (else the code's name) becomes an ordinary
 * script error with the caller's file:line. A parallel or read-only one runs
 * on any worker thread, concurrently; a deferred one on the owner thread.
 * It must not call back into ljs except the ljs_arg_* / ljs_ret_* /
 * ljs_call_* functions and calls documented `Thread: any`. */
typedef int (*ljs_host_fn)(ljs_call_t *call, void *ud);

typedef struct ljs_host_def_s {
    /* "namespace.function", each part a Lua identifier (not a keyword) of
     * at most 63 characters, e.g. "audio.play". The namespace must not be
     * a global of the script API or a library (string, math, send, log,
     * io, os, ...). Scripts call it as audio.play(...). Copied. */
    const char *name;
    ljs_safety_t safety;
    ljs_host_fn fn;
    void *ud; /* handed to fn */
    /* Optional argument check done in the script before the call (so a
     * deferred call's bad arguments also fail at the call site, with
     * file:line): one letter per argument, n number, i integer, b boolean,
     * s string, e entity, t table, a any; a letter followed by '?' also
     * accepts nil or absence; more arguments than letters are refused.
     * NULL: no check (the accessors still check). Copied. */
    const char *args;
} ljs_host_def_t;

/* Register a host function. With rt == NULL it is registered process-wide
 * for every runtime created afterwards (ljs_runtime_create copies the
 * list); otherwise in `rt` at once: every worker's state gets it, scripts
 * already loaded and loaded later see it, and it survives hot reloads.
 * Functions of one namespace live in one read-only table per state: a
 * script cannot replace or add one. Thread: owner of rt, not during
 * ljs_frame (rt == NULL: any). Blocks: yes (each worker installs it).
 * Returns LJS_OK, LJS_EINVAL (bad name, class, fn or argument check; the
 * namespace collides with the script API or a library), LJS_EEXIST (the
 * name is registered), LJS_EFULL (more than 1024 functions), LJS_EBUSY,
 * LJS_ENOMEM, LJS_EBADTHREAD. */
LJS_API int ljs_host_register(ljs_runtime_t *rt, const ljs_host_def_t *def);

/* Remove a host function: it is gone from every state; a script still
 * holding it (local f = audio.play) gets a script error when it calls it.
 * Deferred calls already queued are dropped. rt == NULL: from the
 * process-wide list (runtimes already created keep theirs). Thread: as
 * ljs_host_register. Returns LJS_OK, LJS_ENOENT, LJS_EBUSY, LJS_EBADTHREAD. */
LJS_API int ljs_host_unregister(ljs_runtime_t *rt, const char *name);

/* Arguments, 1-based as in Lua. A failed accessor returns LJS_ETYPE (or
 * LJS_EINVAL for a missing argument) and sets the call's error message,
 * e.g. "physics.raycast: argument 2 must be a number (got string)": return
 * that code from the host function to raise it in the script. Numbers
 * read as integers only when integral; integers read as numbers. An entity
 * is an integer id or a table with an integer `id` (an entity's `self`).
 * Thread: the host function's. */
LJS_API int ljs_arg_count(const ljs_call_t *c);
LJS_API ljs_type_t ljs_arg_type(const ljs_call_t *c, int i); /* LJS_TNIL when absent */
LJS_API int ljs_arg_value(ljs_call_t *c, int i, ljs_value_t *out);
LJS_API int ljs_arg_number(ljs_call_t *c, int i, double *out);
LJS_API int ljs_arg_integer(ljs_call_t *c, int i, int64_t *out);
LJS_API int ljs_arg_boolean(ljs_call_t *c, int i, int *out);
LJS_API int ljs_arg_string(ljs_call_t *c, int i, const char **s, size_t *len);
LJS_API int ljs_arg_entity(ljs_call_t *c, int i, ljs_entity_t *out);
LJS_API int ljs_arg_table(ljs_call_t *c, int i, const ljs_pair_t **pairs, size_t *n);

/* Results (parallel and read-only functions; at most 8), copied. A
 * deferred function's results are refused (LJS_EINVAL). `s` is copied.
 * Thread: the host function's, during the call. Blocks: no. Returns LJS_OK,
 * LJS_EINVAL, LJS_EFULL, LJS_ENOMEM. */
LJS_API int ljs_ret_nil(ljs_call_t *c);
LJS_API int ljs_ret_number(ljs_call_t *c, double v);
LJS_API int ljs_ret_integer(ljs_call_t *c, int64_t v);
LJS_API int ljs_ret_boolean(ljs_call_t *c, int v);
LJS_API int ljs_ret_string(ljs_call_t *c, const char *s, size_t len);
LJS_API int ljs_ret_entity(ljs_call_t *c, ljs_entity_t e);

/* Set the call's error message (printf-style, prefixed with the function's
 * name) and return LJS_ESCRIPT, for `return ljs_call_error(c, ...)`.
 * Thread: the host function's, during the call. Blocks: no. */
LJS_API int ljs_call_error(ljs_call_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The entity whose call made this call (0 from a module's top level), the
 * worker running it (0..workers-1; deferred: 0), and the function's name
 * (borrowed until the call returns). Thread: the host function's, during
 * the call. Blocks: no. */
LJS_API ljs_entity_t ljs_call_entity(const ljs_call_t *c);
LJS_API uint32_t ljs_call_worker(const ljs_call_t *c);
LJS_API const char *ljs_call_name(const ljs_call_t *c);

/* Events to the host: send(LJS_HOST_TARGET, name, payload) from a script
 * (target 0) goes to the host, never to an entity. */
#define LJS_HOST_TARGET 0

typedef struct ljs_host_event_s {
    ljs_entity_t sender; /* the entity that sent it */
    uint64_t frame;      /* the frame it was sent in */
    const char *name;
    ljs_value_t payload; /* borrowed for the callback */
} ljs_host_event_t;

typedef void (*ljs_host_event_fn)(void *ud, const ljs_host_event_t *ev);

/* Deliver events sent to the host to `fn` on the owner thread at the end of
 * each ljs_frame (after the deferred calls), in (sender, sequence) order:
 * the same for any worker count. fn == NULL: keep them for
 * ljs_host_events_drain (the default). The callback runs inside ljs_frame:
 * calls refused during a frame are refused there. Held events count
 * against LJS_EVENT_MEM_MB; past it every held event is dropped, logged and
 * counted (ljs_host_stats), never silently. Thread: owner, not during
 * ljs_frame. Returns LJS_OK, LJS_EINVAL, LJS_EBUSY, LJS_EBADTHREAD. */
LJS_API int ljs_host_events_set(ljs_runtime_t *rt, ljs_host_event_fn fn, void *ud);

/* Hand every held host event to `fn`, oldest frame first, in the order
 * above, then forget them. Thread: owner, between frames. Returns the
 * number delivered. */
LJS_API size_t ljs_host_events_drain(ljs_runtime_t *rt, ljs_host_event_fn fn, void *ud);

typedef struct ljs_host_stats_s {
    uint64_t functions;        /* registered in this runtime now */
    uint64_t deferred_calls;   /* deferred calls run */
    uint64_t deferred_errors;  /* deferred calls that returned an error (logged) */
    uint64_t deferred_dropped; /* refused by LJS_CALL_QUEUE_KB / LJS_EVENT_MEM_MB or unregistered */
    uint64_t events;           /* events sent to the host */
    uint64_t events_delivered;
    uint64_t events_dropped; /* past LJS_EVENT_MEM_MB while held (logged) */
} ljs_host_stats_t;

/* Thread: owner, between frames. Returns LJS_OK, LJS_EINVAL. */
LJS_API int ljs_host_stats(const ljs_runtime_t *rt, ljs_host_stats_t *out);

/* Deliver console lines to `fn` as they are made, from the thread that
 * makes them (any worker, concurrently: fn must be thread-safe), instead
 * of keeping them for ljs_console_drain; strings are borrowed for the
 * call. The runtime's own messages (errors writing LJS_REPORT or LJS_TRACE
 * at exit, say) come through it too. fn == NULL restores the ring.
 * Thread: owner. Blocks: briefly. Returns LJS_OK, LJS_EINVAL, LJS_EBADTHREAD. */
LJS_API int ljs_log_set(ljs_runtime_t *rt, ljs_log_fn fn, void *ud);

typedef enum ljs_batch_kind_e {
    LJS_BATCH_UPDATE = 0,
    LJS_BATCH_EVENT = 1,
    LJS_BATCH_RELOAD = 2
} ljs_batch_kind_t;

/* Profiler hooks (Tracy, Superluminal, an engine's own): each may be NULL,
 * each is called on the thread it describes, concurrently across workers.
 * thread_start runs on every worker's thread when the profiler is set (and
 * thread_stop when it is replaced or the runtime is destroyed), so threads
 * can be named. Unset, they cost one predictable branch per batch. */
typedef struct ljs_profiler_s {
    void (*thread_start)(void *ud, uint32_t worker);
    void (*thread_stop)(void *ud, uint32_t worker);
    /* A batch of `count` calls of `script`'s update, handlers or on_reload. */
    void (*batch_begin)(void *ud, uint32_t worker, ljs_batch_kind_t kind, const char *script, uint32_t count);
    void (*batch_end)(void *ud, uint32_t worker);
    /* A worker with nothing to do goes to sleep / wakes up. */
    void (*park_begin)(void *ud, uint32_t worker);
    void (*park_end)(void *ud, uint32_t worker);
    /* Managed GC work on one worker's state. */
    void (*gc_begin)(void *ud, uint32_t worker);
    void (*gc_end)(void *ud, uint32_t worker);
    void *ud;
} ljs_profiler_t;

/* Set (copied) or clear (NULL) the profiler hooks. Each worker swaps on
 * its own thread between jobs, so every begin hook gets its end hook from
 * the same set, thread_stop is the last call of a set on its thread, and
 * when this returns no hook of the old set runs any more (GC steps and
 * parking go on between frames: count ends only after that). Thread:
 * owner, not during ljs_frame. Blocks: yes (thread_start/stop run on each worker).
 * Returns LJS_OK, LJS_EINVAL, LJS_EBUSY, LJS_ENOMEM, LJS_EBADTHREAD. */
LJS_API int ljs_profiler_set(ljs_runtime_t *rt, const ljs_profiler_t *p);

/* Allocator hooks for ljs's own C-side memory (world columns, event
 * buffers, the bytecode cache, queries, the console, ...), for engines
 * that track memory by subsystem. Lua states are not covered: each
 * worker's state allocates from its own mimalloc heap, bounded by
 * LJS_STATE_MEM_MB and reported by ljs_memory_report.
 * alloc: `size` > 0 bytes aligned to `align` (a power of two, at least
 * alignof(max_align_t); `size` is a multiple of it). realloc: only for
 * blocks from alloc with the default alignment. All three are called from
 * any ljs thread, concurrently: they must be thread-safe. */
typedef struct ljs_allocator_s {
    void *(*alloc)(void *ud, size_t size, size_t align);
    void *(*realloc)(void *ud, void *ptr, size_t size);
    void (*free)(void *ud, void *ptr);
    void *ud;
} ljs_allocator_t;

/* Set (copied; NULL restores libc's malloc) the hooks, process-wide. Only
 * while ljs holds no C-side block: before the first ljs_runtime_create or
 * after the last ljs_runtime_destroy (a block must be freed by the
 * allocator that made it). Thread: any, but not concurrently with any
 * other ljs call. Returns LJS_OK, LJS_EINVAL (a NULL function), LJS_EBUSY
 * (blocks are live; ljs_last_error() says how many). */
LJS_API int ljs_allocator_set(const ljs_allocator_t *a);

/* C-side blocks ljs holds now (0 once every runtime is destroyed).
 * Thread: any. Blocks: no. */
LJS_API size_t ljs_allocator_live(void);

#ifdef __cplusplus
}
#endif
#endif
