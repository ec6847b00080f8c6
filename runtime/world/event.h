/* event.h - messages scripts and the host emit during a frame: events
 * (delivered in the next event phase) and structural commands (spawn,
 * destroy: applied after the commit), with their serialized payloads.
 *
 * Each worker appends to its own outbox during a phase (no locks); after
 * the phase the owner moves every outbox into the runtime's queues and
 * sorts them, so delivery order depends only on (target, sender, sequence),
 * never on which worker ran what. */
#ifndef LJS_RUNTIME_EVENT_H
#define LJS_RUNTIME_EVENT_H

#include "jobs/sched.h"

#include <lua.h>
#include <ljs.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ljs__msg_kind_e { LJS__MSG_EVENT = 0, LJS__MSG_SPAWN = 1, LJS__MSG_DESTROY = 2 } ljs__msg_kind_t;

/* Longest name or string a message carries (lengths are u32 on the wire). */
#define LJS__MSG_STR_MAX ((size_t)UINT32_MAX - 1)

typedef struct ljs__msg_s {
    uint64_t target; /* event target / destroyed entity; 0 for spawn */
    uint64_t sender; /* entity id, 0 for the host */
    uint32_t seq;    /* per-sender sequence within the frame */
    uint32_t kind;
    size_t off, len; /* name + payload bytes in the owning buffer */
} ljs__msg_t;

typedef struct ljs__msgbuf_s {
    ljs__msg_t *msgs;
    size_t n, cap;
    unsigned char *bytes;
    size_t nbytes, bytes_cap;
} ljs__msgbuf_t;

/* Bytes the buffer's messages take (headers and payloads): what the
 * LJS_CALL_QUEUE_KB and LJS_EVENT_MEM_MB bounds count. */
static inline size_t ljs__msgbuf_size(const ljs__msgbuf_t *b)
{
    return b->nbytes + b->n * sizeof(ljs__msg_t);
}

LJS_HIDDEN void ljs__msgbuf_fini(ljs__msgbuf_t *b);
LJS_HIDDEN void ljs__msgbuf_clear(ljs__msgbuf_t *b);
/* Make room for `msgs` more messages and `bytes` more payload bytes.
 * Returns 0 or -1 (out of memory; the buffer is unchanged). */
LJS_HIDDEN int ljs__msgbuf_reserve(ljs__msgbuf_t *b, size_t msgs, size_t bytes);

/* Copy message `m` of `src` (and its bytes) to the end of `dst`. Returns 0
 * or -1 (out of memory). */
LJS_HIDDEN int ljs__msgbuf_append(ljs__msgbuf_t *dst, const ljs__msgbuf_t *src, const ljs__msg_t *m);

/* Sort by (target, sender, seq) for events, (sender, seq) for commands. */
LJS_HIDDEN void ljs__msgbuf_sort(ljs__msgbuf_t *b, int by_target);

/* Encode from Lua: a message whose name is the `name_len` bytes at `name`
 * (copied whole, NULs included) and payload the value at stack index `idx`
 * (nil, number, boolean, string or a flat table of those; table keys are
 * encoded in sorted order so the encoding never depends on the state's
 * string hashing). A spawn command's table may also hold arrays of
 * scalars (list fields: keys 1..n, at most LJS_LIST_MAX). Lua: may raise
 * (bad payload type, a string longer than LJS__MSG_STR_MAX, memory). */
LJS_HIDDEN void ljs__msg_push_lua(lua_State *L, ljs__msgbuf_t *b, const ljs__msg_t *head, const char *name,
                                  size_t name_len, int idx);

/* Encode from the host's key/value array (C strings: name, keys and string
 * values end at their first NUL). Returns LJS_OK, LJS_EINVAL, LJS_ENOMEM. */
LJS_HIDDEN int ljs__msg_push_kv(ljs__msgbuf_t *b, const ljs__msg_t *head, const char *name,
                                const ljs_kv_t *kv, size_t n);

/* A valid event name: 1..LJS__EVENT_NAME_MAX characters, each a letter,
 * digit or '_', so that on_<name> is the Lua identifier of the handler it
 * reaches ("hit me", "a.b" or "" could never reach one). ljs_send and the
 * scripts' send() both check it. Thread: any. */
#define LJS__EVENT_NAME_MAX 64
static inline int ljs__event_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > LJS__EVENT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* 0 if message m of b is well formed (its span lies in b's bytes and they
 * hold exactly a name and one payload as event.c describes), else -1. The
 * decoders below check the same and never read outside m's span, whatever
 * its bytes. Thread: any (b is not modified). */
LJS_HIDDEN int ljs__msg_check(const ljs__msgbuf_t *b, const ljs__msg_t *m);

/* The message's name, NUL-terminated inside the buffer, and its length in
 * bytes: a name holding a NUL has strlen(name) < ljs__msg_name_len, and a
 * consumer that needs a C string must refuse it. A message whose span or
 * name is malformed has the name "" (length 0); only the name is checked
 * (O(1)), the payload is the decoders' to check. */
LJS_HIDDEN const char *ljs__msg_name(const ljs__msgbuf_t *b, const ljs__msg_t *m);
LJS_HIDDEN size_t ljs__msg_name_len(const ljs__msgbuf_t *b, const ljs__msg_t *m);

/* Push the decoded payload onto L (exactly one value); with `pooled`, a
 * table payload reuses a table from the state's pool (ljs__msg_pool_put
 * gives it back). Returns 0, or -1 for a malformed message (pushes nil).
 * Lua: may raise (memory only). */
LJS_HIDDEN int ljs__msg_decode(lua_State *L, const ljs__msgbuf_t *b, const ljs__msg_t *m, int pooled);

/* Take an empty table from the state's payload pool (or a new one) / clear
 * the table at idx and return it to the pool (bounded). Lua: may raise
 * (memory only). */
LJS_HIDDEN void ljs__msg_pool_init(lua_State *L);
LJS_HIDDEN void ljs__msg_pool_get(lua_State *L);
LJS_HIDDEN void ljs__msg_pool_put(lua_State *L, int idx);

/* A decoded value, pointing into the message's bytes: n for LJS_TNUMBER,
 * i for LJS_TINTEGER and LJS_TBOOLEAN, s and len for LJS_TSTRING; for
 * LJS_TLIST (spawn commands only) i is the element count and s/len the
 * elements' bytes (ljs__msg_list_next); zeros otherwise. */
typedef struct ljs__val_s {
    ljs_type_t type;
    double n;
    int64_t i;
    const char *s;
    size_t len;
} ljs__val_t;

/* Walk a payload table's entries without Lua (for spawn fields): calls fn
 * for each key that is a string, with its length (the key may hold NULs; it
 * is NUL-terminated after key_len bytes) and its value. Returns 0, or -1
 * for a malformed message (fn is then never called). */
typedef void (*ljs__kv_visit_fn)(void *ud, const char *key, size_t key_len, const ljs__val_t *v);
LJS_HIDDEN int ljs__msg_visit(const ljs__msgbuf_t *b, const ljs__msg_t *m, ljs__kv_visit_fn fn, void *ud);

/* The next element of a list value from ljs__msg_visit (start with *pos
 * 0): 1 and *out, or 0 at the end. Thread: any. */
LJS_HIDDEN int ljs__msg_list_next(const ljs__val_t *list, size_t *pos, ljs__val_t *out);

#endif
