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
      "managed GC time per state per frame, us")                                                          \
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

typedef enum ljs_type_e {
    LJS_TNIL = 0,
    LJS_TNUMBER = 1,  /* double */
    LJS_TINTEGER = 2, /* int64_t */
    LJS_TBOOLEAN = 3,
    LJS_TSTRING = 4 /* event payloads only */
} ljs_type_t;

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
 * the first declaration. Thread: owner. Returns LJS_OK, LJS_ETYPE (declared
 * before with another type), LJS_EINVAL, LJS_EFULL. */
LJS_API int ljs_field_declare(ljs_runtime_t *rt, const char *name, ljs_type_t type);

/* Read a field's committed value. Integers and booleans read as numbers
 * too. Thread: owner, between frames. Returns LJS_OK, LJS_ENOENT (dead
 * entity, unknown field, or entity without that field). */
LJS_API int ljs_field_get_number(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, double *out);
LJS_API int ljs_field_get_integer(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, int64_t *out);
LJS_API int ljs_field_get_boolean(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, int *out);

/* Write a field (the entity gains the field if it had none). Integer fields
 * accept a number only if it is integral. The value is committed at once:
 * scripts read it from the next frame on. Thread: owner, between frames.
 * Blocks: no. Returns LJS_OK, LJS_ENOENT, LJS_ETYPE, LJS_EINVAL, LJS_EBUSY
 * (during ljs_frame), LJS_EBADTHREAD. */
LJS_API int ljs_field_set_number(ljs_runtime_t *rt, ljs_entity_t e, const char *name, double v);
LJS_API int ljs_field_set_integer(ljs_runtime_t *rt, ljs_entity_t e, const char *name, int64_t v);
LJS_API int ljs_field_set_boolean(ljs_runtime_t *rt, ljs_entity_t e, const char *name, int v);

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

/* Replace this runtime's world with a snapshot (`data` borrowed). The
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
 * returning a table: optional `fields` (name = default; the default's Lua
 * type fixes the field's type), `tags`, `update(self, dt)` or the fast form
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
    /* end: spawns/destroys, unloads and the managed GC. */                                             \
    X(double, last_start_ms)                                                                            \
    X(double, last_update_ms)                                                                           \
    X(double, last_event_ms)                                                                            \
    X(double, last_commit_ms)                                                                           \
    X(double, last_end_ms)                                                                              \
    X(double, last_gc_ms) /* part of last_end_ms */                                                     \
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
#define LJS_SCRIPT_STATS_FIELDS(X)                                                             \
    X(uint64_t, calls)  /* update and handler calls */                                         \
    X(uint64_t, errors) /* calls that raised */                                                \
    X(uint32_t, entities)                                                                      \
    X(double, time_ms)       /* time in its batches, all workers (LJS_STATS=1; 0 otherwise) */ \
    X(uint64_t, alloc_bytes) /* Lua bytes allocated while its code ran (loads included), all workers */

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
#define LJS_GC_STATS_FIELDS(X)                                                                           \
    X(uint64_t, steps)       /* LUA_GCSTEP calls made by the managed policy (idle ones included) */      \
    X(uint64_t, cycles)      /* collection cycles completed */                                           \
    X(uint64_t, full)        /* full collections (LJS_GC_FULL_MB / LJS_GC_FULL_S) */                     \
    X(uint64_t, behind)      /* frames where even 8x LJS_GC_BUDGET_US could not keep up (warned once) */ \
    X(double, total_ms)      /* time spent in GC work, after frames and while idle in them */            \
    X(double, max_frame_ms)  /* the most GC time one frame spent on this state after its phases */       \
    X(uint64_t, freed_bytes) /* bytes the GC work released */                                            \
    X(uint64_t, idle_steps)  /* steps run while this worker had no batch to run during a frame */        \
    X(double, idle_ms)       /* time those took (counted against the same per-frame budget) */

typedef struct ljs_gc_stats_s {
#define LJS__STRUCT_FIELD(type, name) type name;
    LJS_GC_STATS_FIELDS(LJS__STRUCT_FIELD)
#undef LJS__STRUCT_FIELD
} ljs_gc_stats_t;

/* A full collection of every worker's state, now (each on its own worker).
 * Thread: owner, not during ljs_frame. Blocks: yes. Returns LJS_OK,
 * LJS_EINVAL, LJS_EBUSY. */
LJS_API int ljs_gc_collect(ljs_runtime_t *rt);

/* GC counters of worker `worker`'s state. Thread: owner, between frames.
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

#ifdef __cplusplus
}
#endif
#endif
