/* exec.c - batch runners: one lua_pcall per batch, one lua_call per entity.
 *
 * A protected C function loops over the batch; when an entity's call
 * raises, the error is reported with file:line and traceback, counted, and
 * the loop resumes at the next entity under a new pcall. So one error costs
 * one extra pcall and no other entity is affected, while the common case
 * pays one pcall per batch (NOTES-field-access.md: 5-11 ns per entity
 * saved). A call's field writes are stored only after it returns, and only
 * if every value has the right type, so a failing call changes nothing. */
#include "runtime/scripts/exec.h"

#include "runtime/scripts/api.h"
#include "runtime/clock.h"
#include "runtime/lua/state.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

typedef struct batch_s {
    const ljs__phase_t *ph;
    ljs__worker_t *w;
    const ljs__script_t *s;
    const ljs__inst_t *inst;
    uint32_t pos, end;
    const char *what; /* "update" or the event name of the failing call */
} batch_t;

static void begin_call(ljs__worker_t *w, uint64_t id, uint32_t slot)
{
    w->cur_id = id;
    w->cur_slot = slot;
    w->nsets = 0; /* a raised call's set() writes are dropped here */
    ljs__values_begin_call(&w->vals);
    w->call_out0 = ljs__msgbuf_size(&w->out);
    ljs__watchdog_call(w); /* fresh time and instruction limits */
}

/* A field of the call, resolved once per protected run: columns do not
 * move while a phase runs (declarations and growth wait for the owner), so
 * the per-entity loops index them directly instead of going through
 * world->fields[id] every time: 5% fewer instructions per update on the
 * light bench script (fast form, 4 fields; callgrind 1444 -> 1372). */
typedef struct col_s {
    ljs__value_t *work;
    const uint8_t *present;
    ljs__field_t *fd;
    uint32_t id;
    ljs_type_t type;
} col_t;

/* The fields a batch pushes (in) and stores (out). */
typedef struct plan_s {
    col_t in[LJS__MAX_SCRIPT_FIELDS];
    col_t out[LJS__MAX_SCRIPT_FIELDS];
    uint32_t nin, nout;
} plan_t;

static void resolve(ljs__world_t *world, const uint32_t *ids, uint32_t n, col_t *c)
{
    for (uint32_t i = 0; i < n; i++) {
        ljs__field_t *fd = &world->fields[ids[i]];
        c[i] = (col_t){fd->work, fd->present, fd, ids[i], fd->type};
    }
}

static void plan(plan_t *p, ljs__world_t *world, const uint32_t *in, uint32_t nin, const uint32_t *out,
                 uint32_t nout)
{
    resolve(world, in, nin, p->in);
    resolve(world, out, nout, p->out);
    p->nin = nin;
    p->nout = nout;
}

/* Push the values of the plan's in-fields of `slot` (own entity view).
 * This and store_results are most of the per-entity cost outside the VM. */
static inline void push_fields(lua_State *L, const plan_t *p, uint32_t slot)
{
    for (uint32_t i = 0; i < p->nin; i++) {
        const col_t *c = &p->in[i];
        if (!c->present[slot])
            lua_pushnil(L);
        else if (c->type == LJS_TNUMBER)
            lua_pushnumber(L, c->work[slot].n);
        else if (c->type == LJS_TINTEGER)
            lua_pushinteger(L, c->work[slot].i);
        else if (c->type == LJS_TBOOLEAN)
            lua_pushboolean(L, (int)c->work[slot].i);
        else
            ljs__values_push(L, c->fd, slot, 1); /* string, entity, list (values.c) */
    }
}

/* Convert result `idx` for column `c` into *v. Returns 0 on a type error.
 * nil keeps the current value when `nil_keeps`. */
static inline int convert(lua_State *L, const col_t *c, uint32_t slot, int idx, int nil_keeps,
                          ljs__value_t *v)
{
    int t = lua_type(L, idx), ok = 1;
    if (t == LUA_TNUMBER && c->type == LJS_TNUMBER)
        v->n = lua_tonumber(L, idx);
    else if (c->type > LJS_TBOOLEAN)
        return ljs__values_convert(L, c->fd, slot, idx, nil_keeps, v);
    else if (t == LUA_TNUMBER && c->type == LJS_TINTEGER)
        v->i = lua_tointegerx(L, idx, &ok);
    else if (t == LUA_TBOOLEAN && c->type == LJS_TBOOLEAN)
        v->i = lua_toboolean(L, idx);
    else if (t == LUA_TNIL && nil_keeps)
        *v = c->work[slot];
    else
        ok = 0;
    return ok;
}

/* Store the first n out-fields of the plan from the n results, which sit
 * from stack index `base` on (where the called function was). All are converted
 * first, so a type error (raised naming the field) leaves every field of
 * the entity untouched. */
static void store_results(lua_State *L, const batch_t *b, const plan_t *p, uint32_t n, uint32_t slot,
                          int base, int nil_keeps)
{
    ljs__value_t v[LJS__MAX_SCRIPT_FIELDS];
    for (uint32_t i = 0; i < n; i++)
        if (!convert(L, &p->out[i], slot, base + (int)i, nil_keeps, &v[i]))
            ljs__api_store_field(L, &b->ph->rt->world, p->out[i].id, slot, base + (int)i, nil_keeps,
                                 b->s->path); /* raises */
    for (uint32_t i = 0; i < n; i++) {
        const col_t *c = &p->out[i];
        if (c->type == LJS_TLIST)
            ljs__values_store(c->fd, slot, v[i], &b->w->vals);
        else
            c->work[slot] = v[i];
    }
    if (b->w->nsets)
        ljs__api_apply_sets(b->w);
    lua_settop(L, base - 1);
}

/* A C function is only promised LUA_MINSTACK free slots; a batch pushes
 * the function, up to four fixed arguments and one value per field, and
 * takes one result per written field. Checked once per protected run (the
 * stack is back at its base after every entity). Lua: may raise. */
static void reserve_stack(lua_State *L, const ljs__script_t *s)
{
    uint32_t n = s->nfields;
    if (s->nreads > n)
        n = s->nreads;
    if (s->nwrites > n)
        n = s->nwrites;
    luaL_checkstack(L, (int)(n + s->nat_np) + 16, "too many fields for one call");
}

/* Natural form, scalarized (natural.h): the function, the id and `have`
 * values after it (update: dt; event: payload, sender) are on the stack;
 * fit them to the function's own parameters, add the touched fields,
 * call, and store the written ones exactly as the table wrapper's results
 * are stored (nil or a wrong type is an error naming the field). `p` is
 * planned from nat->ids (in: all n, out: the first nwrites). */
static inline void call_scalar(lua_State *L, const batch_t *b, const ljs__natural_t *nat, const plan_t *p,
                               uint32_t slot, uint32_t have)
{
    if (nat->np - 1 < have)
        lua_pop(L, (int)(have - (nat->np - 1)));
    for (uint32_t i = have + 1; i < nat->np; i++)
        lua_pushnil(L);
    int base = lua_gettop(L) - (int)nat->np; /* the function's slot */
    push_fields(L, p, slot);
    lua_call(L, (int)(nat->np + nat->n), (int)nat->nwrites);
    if (nat->nwrites > 0 || b->w->nsets > 0) /* else there is nothing to store */
        store_results(L, b, p, nat->nwrites, slot, base, 0);
}

static void plan_scalar(plan_t *p, ljs__world_t *world, const ljs__natural_t *nat)
{
    plan(p, world, nat->ids, nat->n, nat->ids, nat->nwrites);
}

/* The update function sits at stack index 1 for the whole batch (cheaper
 * than a registry lookup per entity), so each call's results start at 2. */
static void update_one(lua_State *L, batch_t *b, const plan_t *p, uint32_t slot)
{
    const ljs__script_t *s = b->s;
    begin_call(b->w, ljs__world_handle(&b->ph->rt->world, slot), slot);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, (lua_Integer)b->w->cur_id);
    lua_pushnumber(L, b->ph->dt);
    if (s->fast) {
        push_fields(L, p, slot);
        lua_call(L, 2 + (int)p->nin, (int)p->nout);
        store_results(L, b, p, p->nout, slot, 2, 1);
    } else if (s->nat_update.scalar) {
        call_scalar(L, b, &s->nat_update, p, slot, 1);
    } else {
        lua_pushnil(L); /* sender */
        push_fields(L, p, slot);
        lua_call(L, 3 + (int)p->nin, (int)p->nout);
        store_results(L, b, p, p->nout, slot, 2, 0);
    }
}

static int run_updates(lua_State *L)
{
    batch_t *b = lua_touserdata(L, 1);
    const ljs__script_t *s = b->s;
    ljs__world_t *world = &b->ph->rt->world;
    plan_t p;
    if (s->fast)
        plan(&p, world, s->reads, s->nreads, s->writes, s->nwrites);
    else if (s->nat_update.scalar)
        plan_scalar(&p, world, &s->nat_update);
    else
        plan(&p, world, s->field_ids, s->nfields, s->field_ids, s->nfields);
    lua_settop(L, 0);
    reserve_stack(L, s);
    ljs__script_push_ref(L, b->inst->update_ref);
    for (; b->pos < b->end; b->pos++)
        update_one(L, b, &p, s->ents[b->pos]);
    return 0;
}

/* on_reload(self) once per entity, natural form (like a handler). */
static int run_reloads(lua_State *L)
{
    batch_t *b = lua_touserdata(L, 1);
    const ljs__script_t *s = b->s;
    ljs__world_t *world = &b->ph->rt->world;
    plan_t p;
    plan(&p, world, s->field_ids, s->nfields, s->field_ids, s->nfields);
    lua_settop(L, 0);
    reserve_stack(L, s);
    ljs__script_push_ref(L, b->inst->reload_ref);
    for (; b->pos < b->end; b->pos++) {
        uint32_t slot = s->ents[b->pos];
        begin_call(b->w, ljs__world_handle(world, slot), slot);
        lua_pushvalue(L, 1);
        lua_pushinteger(L, (lua_Integer)b->w->cur_id);
        lua_pushnil(L); /* arg */
        lua_pushnil(L); /* sender */
        push_fields(L, &p, slot);
        lua_call(L, 3 + (int)p.nin, (int)p.nout);
        store_results(L, b, &p, p.nout, slot, 2, 0);
    }
    return 0;
}

/* Event phase: b->pos/end index events; only calls for targets bound to
 * this script with a handler for the event's name. The table form's plan
 * serves every handler; a scalarized handler's is made per call (events
 * are far fewer than updates). */
static int run_events(lua_State *L)
{
    batch_t *b = lua_touserdata(L, 1);
    ljs__world_t *world = &b->ph->rt->world;
    const ljs__msgbuf_t *ev = b->ph->events;
    const ljs__script_t *s = b->s;
    plan_t all, one;
    plan(&all, world, s->field_ids, s->nfields, s->field_ids, s->nfields);
    lua_settop(L, 0);
    reserve_stack(L, s);
    for (; b->pos < b->end; b->pos++) {
        const ljs__msg_t *m = &ev->msgs[b->pos];
        int64_t slot = ljs__world_slot(world, m->target);
        if (slot < 0 || !ljs__script_bound(world, (uint32_t)slot, b->ph->script))
            continue;
        b->what = ljs__msg_name(ev, m);
        int h = ljs__script_handler(s, b->what);
        if (h < 0)
            continue;
        b->w->delivered++;
        b->w->sstat[b->ph->script].calls++;
        int pooled = (int)b->ph->rt->cfg.pool;
        begin_call(b->w, m->target, (uint32_t)slot);
        /* The payload sits below the call so a pooled table can be given
         * back after the handler returns: it is valid during the call only. */
        ljs__msg_decode(L, ev, m, pooled);
        int payload = lua_gettop(L);
        ljs__script_push_ref(L, b->inst->handler_refs[h]);
        lua_pushinteger(L, (lua_Integer)m->target);
        lua_pushvalue(L, payload);
        lua_pushinteger(L, (lua_Integer)m->sender);
        if (s->nat_handlers[h].scalar) {
            plan_scalar(&one, world, &s->nat_handlers[h]);
            call_scalar(L, b, &s->nat_handlers[h], &one, (uint32_t)slot, 2);
        } else {
            push_fields(L, &all, (uint32_t)slot);
            lua_call(L, 3 + (int)all.nin, (int)all.nout);
            store_results(L, b, &all, all.nout, (uint32_t)slot, payload + 1, 0);
        }
        if (pooled && lua_istable(L, payload))
            ljs__msg_pool_put(L, payload);
        lua_settop(L, payload - 1);
    }
    return 0;
}

static void report(batch_t *b, int rc)
{
    ljs__worker_t *w = b->w;
    lua_State *L = w->L;
    ljs_runtime_t *rt = b->ph->rt;
    const char *msg = lua_tostring(L, -1);
    w->errors++;
    w->sstat[b->ph->script].errors++;
    /* Lua raises LUA_ERRMEM without a position; the allocator noted it
     * (ljs__watchdog_oom). Without one, the script's path stands in. */
    const char *where = rc == LUA_ERRMEM ? ljs__watchdog_oom_where(w) : NULL;
    if (rc == LUA_ERRMEM)
        ljs__console_log(
            &rt->console, LJS_LOG_ERROR, rt->frame, w->cur_id, b->s->name,
            "%s of entity " LJS_ENTITY_FMT ": %s: memory limit reached (LJS_STATE_MEM_MB=%u); the call was "
            "abandoned",
            b->what, LJS_ENTITY_ARGS(w->cur_id), where ? where : b->s->path, rt->cfg.state_mem_mb);
    else
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, w->cur_id, b->s->name,
                         "%s of entity " LJS_ENTITY_FMT ": %s", b->what, LJS_ENTITY_ARGS(w->cur_id),
                         msg ? msg : "(error object is not a string)");
}

static void run_batch(batch_t *b, lua_CFunction fn)
{
    lua_State *L = b->w->L;
    int top = lua_gettop(L);
    ljs__watchdog_enter(b->w);
    while (b->pos < b->end) {
        lua_pushcfunction(L, ljs__state_traceback);
        lua_pushcfunction(L, fn);
        lua_pushlightuserdata(L, b);
        int rc = lua_pcall(L, 1, 0, top + 1);
        if (rc != LUA_OK) {
            report(b, rc);
            b->pos++; /* skip the entity whose call failed */
        }
        lua_settop(L, top);
    }
    ljs__watchdog_leave(b->w);
    b->w->cur_id = 0;
}

/* Per-script accounting around a batch: the worker's allocator counts
 * bytes ever allocated, and one script's code runs between these two
 * points, so the difference is that script's allocation (attribution
 * costs nothing per allocation). Time is two clock reads per batch,
 * skipped with LJS_STATS=0 unless tracing. */
typedef struct meter_s {
    uint64_t t0;
    uint64_t alloc0;
} meter_t;

static int timed(const ljs_runtime_t *rt)
{
    return rt->cfg.stats || rt->trace != NULL;
}

static meter_t meter_start(const ljs__worker_t *w)
{
    meter_t m = {timed(w->rt) ? ljs__now_ns() : 0,
                 atomic_load_explicit(&w->alloc.allocated, memory_order_relaxed)};
    return m;
}

static void meter_stop(ljs__worker_t *w, const meter_t *m, uint32_t script, ljs__span_kind_t kind,
                       uint32_t first, uint32_t count)
{
    ljs__sstat_t *st = &w->sstat[script];
    st->alloc_bytes += atomic_load_explicit(&w->alloc.allocated, memory_order_relaxed) - m->alloc0;
    if (m->t0 == 0)
        return;
    uint64_t t1 = ljs__now_ns();
    st->time_ns += t1 - m->t0;
    ljs__trace_add(w->rt->trace, w->index, kind, w->rt->scripts[script].trace_name, m->t0, t1, first, count);
}

/* Profiler hooks around a batch (ljs_profiler_set). Unset: one load and a
 * predictable branch. */
static inline void prof_batch(const ljs__worker_t *w, int begin, ljs_batch_kind_t kind, uint32_t script,
                              uint32_t count)
{
    const ljs_profiler_t *p = w->prof;
    if (__builtin_expect(p == NULL, 1))
        return;
    if (begin && p->batch_begin)
        p->batch_begin(p->ud, w->index, kind, w->rt->scripts[script].name, count);
    else if (!begin && p->batch_end)
        p->batch_end(p->ud, w->index);
}

static void mark_dirty(ljs__world_t *world, const uint32_t *ids, uint32_t n)
{
    /* Many batches may set the same flag: a relaxed store of 1 is enough,
     * the phase's join orders it before the commit reads it. */
    for (uint32_t i = 0; i < n; i++)
        atomic_store_explicit(&world->fields[ids[i]].dirty, 1, memory_order_relaxed);
}

void ljs__exec_updates(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    const ljs__phase_t *ph = arg;
    ljs__worker_t *w = &ph->rt->workers[worker];
    const ljs__script_t *s = &ph->rt->scripts[ph->script];
    batch_t b = {ph, w, s, &w->inst[ph->script], begin, end, "update"};
    meter_t m = meter_start(w);
    w->cur_script = ph->script;
    w->dt = ph->dt;
    prof_batch(w, 1, LJS_BATCH_UPDATE, ph->script, end - begin);
    run_batch(&b, run_updates);
    prof_batch(w, 0, LJS_BATCH_UPDATE, ph->script, 0);
    meter_stop(w, &m, ph->script, LJS__SPAN_BATCH_UPDATE, begin, end - begin);
    /* Counted per batch, not per call: failed calls count too. */
    w->updates += end - begin;
    w->sstat[ph->script].calls += end - begin;
    if (s->fast)
        mark_dirty(&ph->rt->world, s->writes, s->nwrites);
    else if (s->nat_update.scalar)
        mark_dirty(&ph->rt->world, s->nat_update.ids, s->nat_update.nwrites);
    else
        mark_dirty(&ph->rt->world, s->field_ids, s->nfields);
}

void ljs__exec_events(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    const ljs__phase_t *ph = arg;
    ljs__worker_t *w = &ph->rt->workers[worker];
    const ljs__script_t *s = &ph->rt->scripts[ph->script];
    batch_t b = {ph, w, s, &w->inst[ph->script], ph->groups[begin], ph->groups[end], "event"};
    meter_t m = meter_start(w);
    w->cur_script = ph->script;
    prof_batch(w, 1, LJS_BATCH_EVENT, ph->script, ph->groups[end] - ph->groups[begin]);
    run_batch(&b, run_events);
    prof_batch(w, 0, LJS_BATCH_EVENT, ph->script, 0);
    meter_stop(w, &m, ph->script, LJS__SPAN_BATCH_EVENT, ph->groups[begin],
               ph->groups[end] - ph->groups[begin]);
    mark_dirty(&ph->rt->world, s->ev_dirty, s->nev_dirty);
}

void ljs__exec_reloads(void *arg, uint32_t begin, uint32_t end, uint32_t worker)
{
    const ljs__phase_t *ph = arg;
    ljs__worker_t *w = &ph->rt->workers[worker];
    const ljs__script_t *s = &ph->rt->scripts[ph->script];
    batch_t b = {ph, w, s, &w->inst[ph->script], begin, end, "on_reload"};
    meter_t m = meter_start(w);
    w->cur_script = ph->script;
    prof_batch(w, 1, LJS_BATCH_RELOAD, ph->script, end - begin);
    run_batch(&b, run_reloads);
    prof_batch(w, 0, LJS_BATCH_RELOAD, ph->script, 0);
    meter_stop(w, &m, ph->script, LJS__SPAN_BATCH_RELOAD, begin, end - begin);
    w->sstat[ph->script].calls += end - begin;
    mark_dirty(&ph->rt->world, s->field_ids, s->nfields);
}
