/* frame.c - ljs_frame: update phase, event phase, commit, structural
 * changes, in that order (DESIGN.md "A frame").
 *
 * Scripts run one after another, each spread over all workers: an entity
 * with two scripts never has both running at once, so its own writes are
 * race-free and the second script sees the first one's writes, the same on
 * any worker count. Messages from scripts are gathered from every worker's
 * outbox after each phase and sorted, so their order never depends on
 * scheduling. */
#include "runtime/clock.h"

#include "jobs/mem.h"
#include "runtime/error.h"
#include "runtime/host/host.h"
#include "runtime/scripts/exec.h"
#include "runtime/runtime.h"
#include "runtime/world/sort.h"
#include "runtime/scripts/script_host.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Move every worker's outbox into the runtime's queues. Events go to
 * rt->events (delivered next event phase), commands to rt->commands. */
static int gather(ljs_runtime_t *rt)
{
    int rc = LJS_OK;
    size_t nmsgs = 0, nbytes = 0, total = 0, nall = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        total += ljs__msgbuf_size(&rt->workers[i].out);
        nall += rt->workers[i].out.n;
        rt->events_dropped += rt->workers[i].dropped;
        rt->workers[i].dropped = 0;
    }
    /* The phase's total does not depend on the worker count, so dropping
     * all of it keeps frames deterministic (dropping some would not). A
     * handler that sends two events per event dies out here. */
    int drop = total > ((size_t)rt->cfg.event_mem_mb << 20);
    if (drop) {
        rt->events_dropped += nall;
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, 0, "",
                         "frame %llu: scripts queued %zu messages (%zu MiB) in one phase, more than "
                         "LJS_EVENT_MEM_MB=%u: all of them were dropped",
                         (unsigned long long)rt->frame, nall, total >> 20, rt->cfg.event_mem_mb);
    }
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        ljs__msgbuf_t *out = &rt->workers[i].out;
        if (drop) {
            ljs__msgbuf_clear(out);
            continue;
        }
        nmsgs += out->n;
        nbytes += out->nbytes;
        for (size_t k = 0; k < out->n; k++) {
            const ljs__msg_t *m = &out->msgs[k];
            ljs__msgbuf_t *dst = m->kind != LJS__MSG_EVENT      ? &rt->commands
                                 : m->target == LJS_HOST_TARGET ? ljs__host_events(rt)
                                                                : &rt->events;
            if (ljs__msgbuf_append(dst, out, m) != 0)
                rc = LJS_ENOMEM;
            else if (m->kind == LJS__MSG_EVENT)
                rt->events_sent++;
        }
        ljs__msgbuf_clear(out);
    }
    /* Which worker sends how much depends on scheduling: room for the whole
     * phase's messages in every outbox keeps steady-state frames free of
     * heap allocation however the batches fall (test_steady under load).
     * Failing here is harmless: appends grow the buffer as needed. */
    for (uint32_t i = 0; i < rt->nworkers; i++)
        (void)ljs__msgbuf_reserve(&rt->workers[i].out, nmsgs, nbytes);
    return rc;
}

static void update_phase(ljs_runtime_t *rt, double dt)
{
    for (uint32_t id = 0; id < rt->nscripts; id++) {
        ljs__script_t *s = &rt->scripts[id];
        if (!s->used || !s->has_update || s->nents == 0)
            continue;
        if (s->ents_dirty) {
            ljs__sort(s->ents, s->nents, sizeof *s->ents, cmp_u32);
            s->ents_dirty = 0;
        }
        ljs__phase_t ph = {rt, id, dt, NULL, NULL};
        ljs__sched_parallel_for(rt->sched, s->nents, rt->cfg.batch, ljs__exec_updates, &ph);
    }
}

/* 1 if some script bound to the event's target handles it. */
static int deliverable(const ljs_runtime_t *rt, const ljs__msgbuf_t *ev, const ljs__msg_t *m)
{
    int64_t slot = ljs__world_slot(&rt->world, m->target);
    if (slot < 0)
        return 0;
    const ljs__escripts_t *es = &rt->world.escripts[slot];
    for (uint32_t i = 0; i < es->n; i++)
        if (ljs__script_handler(&rt->scripts[es->ids[i]], ljs__msg_name(ev, m)) >= 0)
            return 1;
    return 0;
}

/* Group sorted events by target: groups[g] is the first event of group g,
 * groups[n] the end. Batches cut at group boundaries, so one target's
 * events all run in order on one worker. */
static int group_events(ljs_runtime_t *rt, const ljs__msgbuf_t *ev, uint32_t **groups, uint32_t *ngroups)
{
    /* The array is kept between frames: no allocation in steady state. */
    if (ev->n + 1 > rt->groups_cap) {
        uint32_t *p = ljs__realloc(rt->groups, (ev->n + 1) * sizeof *p);
        if (p == NULL)
            return LJS_ENOMEM;
        rt->groups = p;
        rt->groups_cap = (uint32_t)ev->n + 1;
    }
    uint32_t *g = rt->groups;
    uint32_t n = 0;
    for (size_t i = 0; i < ev->n; i++) {
        if (i == 0 || ev->msgs[i].target != ev->msgs[i - 1].target)
            g[n++] = (uint32_t)i;
        if (!deliverable(rt, ev, &ev->msgs[i]))
            rt->events_dropped++;
    }
    g[n] = (uint32_t)ev->n;
    *groups = g;
    *ngroups = n;
    return LJS_OK;
}

static int event_phase(ljs_runtime_t *rt)
{
    /* Events sent during this phase belong to the next frame: deliver from
     * a private copy while rt->events collects the new ones. */
    if (rt->events.n == 0)
        return LJS_OK;
    ljs__msgbuf_t ev = rt->events;
    memset(&rt->events, 0, sizeof rt->events);
    ljs__msgbuf_sort(&ev, 1);
    uint32_t *groups = NULL, ngroups = 0;
    int rc = group_events(rt, &ev, &groups, &ngroups);
    for (uint32_t id = 0; rc == LJS_OK && ngroups > 0 && id < rt->nscripts; id++) {
        ljs__script_t *s = &rt->scripts[id];
        if (!s->used || s->nhandlers == 0 || s->nents == 0)
            continue;
        ljs__phase_t ph = {rt, id, 0.0, &ev, groups};
        /* Event batches are smaller than update batches: a handler call
         * costs more than an update and targets can be few. */
        uint32_t grain = rt->cfg.batch / 4 ? rt->cfg.batch / 4 : 1;
        ljs__sched_parallel_for(rt->sched, ngroups, grain, ljs__exec_events, &ph);
    }
    /* Keep the larger buffer's capacity for the next frame. */
    ljs__msgbuf_clear(&ev);
    if (rt->events.n == 0 && rt->events.nbytes == 0) {
        ljs__msgbuf_fini(&rt->events);
        rt->events = ev;
    } else {
        ljs__msgbuf_fini(&ev);
    }
    return rc;
}

typedef struct spawn_ctx_s {
    ljs_runtime_t *rt;
    uint32_t slot;
    const char *script;
} spawn_ctx_t;

/* A spawn payload value as field type ft into *v: NULL, or why not. */
static const char *spawn_value(ljs__world_t *w, ljs_type_t ft, const ljs__val_t *x, ljs__value_t *v)
{
    if (ft == LJS_TNUMBER && (x->type == LJS_TNUMBER || x->type == LJS_TINTEGER))
        v->n = x->type == LJS_TNUMBER ? x->n : (double)x->i;
    else if ((ft == x->type && (ft == LJS_TINTEGER || ft == LJS_TBOOLEAN)) ||
             (ft == LJS_TENTITY && x->type == LJS_TINTEGER && (x->i == 0 || (x->i > 0 && (x->i >> 32) != 0))))
        v->i = x->i; /* an entity: a dead target reads nil, like a script's write */
    else if (ft == LJS_TENTITY && x->type == LJS_TINTEGER)
        return "not an entity id";
    else if (ft == LJS_TSTRING && x->type == LJS_TSTRING && x->len > LJS_STRING_MAX)
        return "a string longer than LJS_STRING_MAX";
    else if (ft == LJS_TSTRING && x->type == LJS_TSTRING)
        v->i = ljs__strings_intern(&w->strings, x->s, x->len);
    else
        return "wrong type";
    return ft == LJS_TSTRING && v->i < 0 ? "out of memory" : NULL;
}

/* A list field from a spawn payload's array: every element converted, or
 * nothing stored. NULL, or why not (written to why[]). */
static const char *spawn_list(ljs__world_t *w, uint32_t f, uint32_t slot, const ljs__val_t *x, char *why,
                              size_t cap)
{
    const ljs__field_t *fd = &w->fields[f];
    if (x->type != LJS_TLIST)
        return "a list field takes a table with keys 1..n";
    if ((uint64_t)x->i > fd->maxlen) {
        snprintf(why, cap, "%lld elements, the list holds at most %u", (long long)x->i, (unsigned)fd->maxlen);
        return why;
    }
    ljs__value_t els[LJS_LIST_MAX];
    ljs__val_t e;
    size_t pos = 0;
    uint32_t n = 0;
    for (; ljs__msg_list_next(x, &pos, &e); n++) {
        const char *bad = spawn_value(w, fd->elem, &e, &els[n]);
        if (bad != NULL) {
            snprintf(why, cap, "element %u: %s for a list of %s", n + 1, bad, ljs__type_name(fd->elem));
            return why;
        }
    }
    ljs__world_list_put(w, f, slot, els, n);
    return NULL;
}

static void spawn_field(void *ud, const char *key, size_t key_len, const ljs__val_t *x)
{
    spawn_ctx_t *c = ud;
    ljs__world_t *w = &c->rt->world;
    if (strlen(key) != key_len) { /* field names are C strings: "hp\0x" is not "hp" */
        ljs__console_log(&c->rt->console, LJS_LOG_WARN, c->rt->frame, 0, c->script,
                         "spawn(\"%s\"): a field name holding a NUL byte ignored", c->script);
        return;
    }
    int f = ljs__world_field_find(w, key);
    ljs__value_t v = {0};
    ljs_type_t ft = f >= 0 ? w->fields[f].type : LJS_TNIL;
    char buf[96];
    const char *why = f < 0                  ? "not declared"
                      : ft == LJS_TLIST      ? spawn_list(w, (uint32_t)f, c->slot, x, buf, sizeof buf)
                      : x->type == LJS_TLIST ? "a table for a field that is not a list"
                                             : spawn_value(w, ft, x, &v);
    if (why != NULL) {
        ljs__console_log(&c->rt->console, LJS_LOG_WARN, c->rt->frame, 0, c->script,
                         "spawn(\"%s\"): field '%s' ignored (%s)", c->script, key, why);
        return;
    }
    if (ft != LJS_TLIST)
        ljs__world_field_put(w, (uint32_t)f, c->slot, v);
}

static void apply_spawn(ljs_runtime_t *rt, const ljs__msg_t *m)
{
    const char *name = ljs__msg_name(&rt->commands, m);
    ljs_script_t s;
    uint64_t id;
    if (strlen(name) != ljs__msg_name_len(&rt->commands, m)) { /* script names are C strings */
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, m->sender, "",
                         "spawn: script name '%s...' holds a NUL byte", name);
        return;
    }
    if (ljs_script_find(rt, name, &s) != LJS_OK) {
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, m->sender, "", "spawn: no script named '%s'",
                         name);
        return;
    }
    if (ljs__world_create(&rt->world, &id) != LJS_OK) {
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, m->sender, name, "spawn: out of memory");
        return;
    }
    uint32_t slot = ljs__world_index(id);
    if (ljs__script_attach(rt, slot, s.id) != LJS_OK) {
        ljs__entity_destroy(rt, id);
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, m->sender, name, "spawn: out of memory");
        return;
    }
    spawn_ctx_t c = {rt, slot, name};
    (void)ljs__msg_visit(&rt->commands, m, spawn_field, &c); /* our own encoding: well formed */
}

static void apply_commands(ljs_runtime_t *rt)
{
    ljs__msgbuf_sort(&rt->commands, 0);
    for (size_t i = 0; i < rt->commands.n; i++) {
        const ljs__msg_t *m = &rt->commands.msgs[i];
        if (m->kind == LJS__MSG_SPAWN)
            apply_spawn(rt, m);
        else
            ljs__entity_destroy(rt, m->target); /* destroying a dead entity is a no-op */
    }
    ljs__msgbuf_clear(&rt->commands);
}

/* Free the strings nothing holds any more once enough were made since
 * the last sweep (strings.h): fields and lists, and scripts' defaults.
 * Events and commands carry bytes, not ids. */
static void sweep_strings(ljs_runtime_t *rt)
{
    ljs__strings_t *st = &rt->world.strings;
    if (!ljs__strings_want_sweep(st))
        return;
    ljs__strings_sweep_begin(st);
    ljs__world_mark_strings(&rt->world);
    for (uint32_t s = 0; s < rt->nscripts; s++) {
        const ljs__script_t *sc = &rt->scripts[s];
        for (uint32_t i = 0; sc->used && i < sc->nfields; i++)
            if (rt->world.fields[sc->field_ids[i]].type == LJS_TSTRING)
                ljs__strings_mark(st, (uint32_t)sc->defaults[i].i);
    }
    ljs__strings_sweep_end(st);
}

static double ms_between(uint64_t a, uint64_t b)
{
    return (double)(b - a) / 1e6;
}

/* Phase times (t: frame start, update, events, commit, end, GC, done) into
 * the last-frame and total stats, and onto the owner's trace track. */
static void record_times(ljs_runtime_t *rt, const uint64_t t[7])
{
    ljs_stats_t *st = &rt->last;
    st->last_start_ms = ms_between(t[0], t[1]);
    st->last_update_ms = ms_between(t[1], t[2]);
    st->last_event_ms = ms_between(t[2], t[3]);
    st->last_commit_ms = ms_between(t[3], t[4]);
    st->last_end_ms = ms_between(t[4], t[6]);
    st->last_gc_ms = ms_between(t[5], t[6]);
    st->last_frame_ms = ms_between(t[0], t[6]);
    st->total_start_ms += st->last_start_ms;
    st->total_update_ms += st->last_update_ms;
    st->total_event_ms += st->last_event_ms;
    st->total_commit_ms += st->last_commit_ms;
    st->total_end_ms += st->last_end_ms;
    st->total_gc_ms += st->last_gc_ms;
    st->total_frame_ms += st->last_frame_ms;
    if (st->last_frame_ms > st->max_frame_ms)
        st->max_frame_ms = st->last_frame_ms;
    ljs__trace_t *tr = rt->trace;
    if (tr != NULL) {
        static const ljs__span_kind_t kinds[] = {LJS__SPAN_RELOADS, LJS__SPAN_UPDATE, LJS__SPAN_EVENTS,
                                                 LJS__SPAN_COMMIT};
        /* The frame number (as frame() and console lines count) rides in a/b. */
        ljs__trace_add(tr, 0, LJS__SPAN_FRAME, UINT32_MAX, t[0], t[6], (uint32_t)rt->frame,
                       (uint32_t)(rt->frame >> 32));
        for (int i = 0; i < 4; i++)
            ljs__trace_add(tr, 0, kinds[i], UINT32_MAX, t[i], t[i + 1], 0, 0);
        ljs__trace_add(tr, 0, LJS__SPAN_END, UINT32_MAX, t[4], t[6], 0, 0);
    }
}

/* The all-states peak, for ljs_memory_report: taken before the frame's
 * GC work, while the garbage of its phases is still there. */
static void record_peak(ljs_runtime_t *rt)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        sum += atomic_load_explicit(&rt->workers[i].alloc.current, memory_order_relaxed);
    if (sum > rt->lua_peak)
        rt->lua_peak = sum;
}

int ljs__frame_run(ljs_runtime_t *rt, double dt)
{
    uint64_t t[7];
    t[0] = ljs__now_ns();
    ljs__gc_frame_begin(rt); /* background GC pauses; the owner's own GC debt is queued */
    /* Changed scripts switch here, before any batch: no frame runs two
     * versions of one script. */
    ljs__watch_frame(rt->watch);
    /* Cached queries catch up with every structural change since the last
     * frame; during the frame they are read-only. */
    ljs__posts_apply(rt);
    ljs__query_sync(rt);
    rt->in_frame = 1;
    ljs__host_dispatch(rt); /* deferred calls of on_reload, run between frames */
    rt->frame++;
    ljs__watchdog_frame(&rt->watchdog);
    ljs__gc_idle_open(rt, rt->frame); /* idle workers step their own GC */
    ljs__cache_poll();                /* free snapshots whose grace period has passed */
    t[1] = ljs__now_ns();
    update_phase(rt, dt);
    int rc = gather(rt);
    t[2] = ljs__now_ns();
    if (rc == LJS_OK)
        rc = event_phase(rt);
    if (rc == LJS_OK)
        rc = gather(rt);
    t[3] = ljs__now_ns();
    ljs__world_commit(&rt->world, rt->sched);
    ljs__gc_idle_open(rt, 0);
    /* The frame's deferred host calls, then its events to the host, on
     * this thread, before spawns and destroys apply. */
    ljs__host_dispatch(rt);
    ljs__host_events_frame(rt);
    rt->in_frame = 0;
    rt->view_epoch++; /* query views die with their frame */
    t[4] = ljs__now_ns();
    apply_commands(rt);
    ljs__script_unload_idle(rt);
    sweep_strings(rt);
    record_peak(rt);
    t[5] = ljs__now_ns();
    ljs__gc_frame(rt); /* queue each worker's GC, run in the background: not waited for */
    t[6] = ljs__now_ns();
    record_times(rt, t);
    if (rc != LJS_OK) {
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, 0, "",
                         "frame %llu: out of memory queueing events", (unsigned long long)rt->frame);
        /* ljs_last_error must describe this failure, not an older one. */
        rc = ljs__error(rc, "ljs_frame: frame %llu ran out of memory queueing events (some were dropped)",
                        (unsigned long long)rt->frame);
    }
    return rc;
}
