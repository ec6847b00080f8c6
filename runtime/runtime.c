/* runtime.c - runtime lifecycle: configuration, scheduler, and one Lua state
 * per worker, each created on its own worker's thread.
 *
 * Worker 0 is the owner thread: its heap and state are created inside
 * ljs_runtime_create and closed inside ljs_runtime_destroy, both on the owner
 * thread, so the mimalloc rule "a heap allocates only on its creating
 * thread" holds for every worker. */
#include "runtime/runtime.h"

#include "jobs/mem.h"

#include "runtime/scripts/api.h"
#include "runtime/config.h"
#include "runtime/error.h"
#include "runtime/host/host.h"
#include "runtime/lua/state.h"

#include <lauxlib.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint32_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > LJS_SCHED_MAX_WORKERS ? LJS_SCHED_MAX_WORKERS : (uint32_t)n;
}

static void warn_unknown_env(void *ud, const char *name, size_t len, const char *closest)
{
    ljs_runtime_t *rt = ud;
    if (closest != NULL)
        ljs__console_log(&rt->console, LJS_LOG_WARN, 0, 0, "",
                         "%.*s: not an ljs variable, ignored (did you mean %s?)", (int)len, name, closest);
    else
        ljs__console_log(&rt->console, LJS_LOG_WARN, 0, 0, "",
                         "%.*s: not an ljs variable, ignored (ljs-run --print-config lists them)", (int)len,
                         name);
}

/* on_start hook: runs on worker `w`'s own thread before it runs any job. */
static int worker_start(void *ud, uint32_t w)
{
    ljs_runtime_t *rt = ud;
    ljs__worker_t *wk = &rt->workers[w];
    wk->index = w;
    wk->rt = rt;
    wk->loading = UINT32_MAX;
    wk->epoch_rec = ljs__cache_register();
    if (wk->epoch_rec == NULL)
        return LJS_ENOMEM;
    if (ljs__alloc_init(&wk->alloc, (size_t)rt->cfg.state_mem_mb << 20) != LJS_OK)
        return LJS_ENOMEM;
    wk->L = ljs__state_create(&wk->alloc);
    if (wk->L == NULL) {
        ljs__alloc_fini(&wk->alloc);
        return LJS_ELUA;
    }
    *(ljs__worker_t **)lua_getextraspace(wk->L) = wk;
    ljs__gc_setup(wk);
    lua_pushcfunction(wk->L, ljs__api_open);
    int rc = lua_pcall(wk->L, 0, 0, 0);
    if (rc == LUA_OK) {
        lua_pushcfunction(wk->L, ljs__state_seal); /* after the API: it becomes read-only too */
        rc = lua_pcall(wk->L, 0, 0, 0);
    }
    if (rc == LUA_OK && ljs__host_open(wk) != LJS_OK) /* host functions registered before create */
        rc = LUA_ERRRUN;
    if (rc != LUA_OK) {
        lua_close(wk->L);
        wk->L = NULL;
        ljs__alloc_fini(&wk->alloc);
        return LJS_ELUA;
    }
    if (ljs__watchdog_bind(wk) != LJS_OK) {
        lua_close(wk->L);
        wk->L = NULL;
        ljs__alloc_fini(&wk->alloc);
        return LJS_ENOMEM;
    }
    wk->alloc.refuse_ctx = wk; /* memory errors name the script line */
    wk->alloc.on_refuse = ljs__watchdog_oom;
    return LJS_OK;
}

/* on_stop hook: runs on worker `w`'s own thread just before it ends. */
static void worker_stop(void *ud, uint32_t w)
{
    ljs_runtime_t *rt = ud;
    ljs__worker_t *wk = &rt->workers[w];
    ljs__host_prof_thread_stop(rt, w);
    for (uint32_t i = 0; i < wk->ninst; i++)
        ljs__free(wk->inst[i].handler_refs); /* the refs die with the state */
    ljs__free(wk->inst);
    ljs__free(wk->sstat);
    wk->inst = NULL;
    wk->sstat = NULL;
    wk->ninst = 0;
    ljs__msgbuf_fini(&wk->out);
    ljs__values_fini(&wk->vals);
    ljs__watchdog_unbind(wk); /* before the state goes: no signal may reach it */
    if (wk->L != NULL)
        lua_close(wk->L);
    ljs__cache_unregister(wk->epoch_rec);
    wk->epoch_rec = NULL;
    wk->L = NULL;
    ljs__alloc_fini(&wk->alloc);
}

static int start_scheduler(ljs_runtime_t *rt)
{
    ljs__sched_opts_t opts = {
        .workers = rt->nworkers,
        .spin = rt->cfg.spin,
        .on_start = worker_start,
        .on_stop = worker_stop,
        .on_idle = ljs__gc_idle,
        .on_park = ljs__host_prof_park,
        .ud = rt,
    };
    int rc = ljs__sched_create(&opts, &rt->sched);
    if (rc == 0)
        return LJS_OK;
    if (rc == LJS_ENOMEM || rc == -ENOMEM)
        return ljs__error(LJS_ENOMEM, "out of memory creating %u worker states (LJS_STATE_MEM_MB=%u)",
                          rt->nworkers, rt->cfg.state_mem_mb);
    if (rc == LJS_ELUA)
        return ljs__error(LJS_ELUA, "could not create a worker's Lua state (LJS_STATE_MEM_MB=%u too small?)",
                          rt->cfg.state_mem_mb);
    return ljs__error(LJS_ETHREAD, "could not start %u worker threads (%s)", rt->nworkers - 1, strerror(-rc));
}

int ljs_runtime_create(const ljs_config_t *cfg, ljs_runtime_t **out)
{
    ljs_config_t local;
    int rc;
    if (out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_runtime_create: out is NULL");
    *out = NULL;
    if (cfg == NULL) {
        if ((rc = ljs_config_init(&local)) != LJS_OK)
            return rc;
        cfg = &local;
    }
    if ((rc = ljs_config_validate(cfg)) != LJS_OK)
        return rc;

    ljs_runtime_t *rt = ljs__calloc(1, sizeof *rt);
    if (rt == NULL)
        return ljs__error(LJS_ENOMEM, "out of memory");
    rt->cfg = *cfg;
    rt->given = *cfg;
    if (rt->cfg.workers == 0)
        rt->cfg.workers = online_cpus();
    rt->nworkers = rt->cfg.workers;
    rt->owner = pthread_self();
    rt->workers = ljs__aligned_alloc(64, sizeof(ljs__worker_t) * rt->nworkers);
    if (rt->workers == NULL) {
        rc = ljs__error(LJS_ENOMEM, "out of memory");
        goto fail;
    }
    memset(rt->workers, 0, sizeof(ljs__worker_t) * rt->nworkers);
    if (ljs__world_init(&rt->world) != LJS_OK) {
        rc = ljs__error(LJS_ENOMEM, "out of memory");
        goto fail;
    }
    if (ljs__console_init(&rt->console, rt->cfg.console_lines) != LJS_OK) {
        rc = ljs__error(LJS_ENOMEM, "out of memory");
        goto fail;
    }
    ljs__config_unknown_env(warn_unknown_env, rt);
    if (ljs__query_init(&rt->queries, rt->cfg.query_cache) != LJS_OK ||
        ljs__posts_create(rt->cfg.entity_ring, &rt->posts) != LJS_OK) {
        ljs__query_fini(&rt->queries);
        ljs__console_fini(&rt->console);
        rc = ljs__error(LJS_ENOMEM, "out of memory");
        goto fail;
    }
    if (ljs__trace_create(rt->cfg.trace, rt->nworkers, rt->cfg.trace_spans, &rt->trace) != LJS_OK) {
        rc = ljs__error(LJS_ENOMEM, "out of memory for LJS_TRACE (LJS_TRACE_SPANS=%u per worker)",
                        rt->cfg.trace_spans);
        goto fail_console;
    }
    if (ljs__cache_acquire() != LJS_OK) {
        rc = ljs__error(LJS_ENOMEM, "out of memory");
        goto fail_console;
    }
    if (ljs__host_create(rt) != LJS_OK) {
        rc = ljs__error(LJS_ENOMEM, "out of memory");
        goto fail_cache;
    }
    if ((rc = start_scheduler(rt)) != LJS_OK)
        goto fail_host;
    if (ljs__watch_create(rt, &rt->watch) != LJS_OK) {
        rc = ljs__error(LJS_ENOMEM, "out of memory");
        goto fail_sched;
    }
    rc = ljs__watchdog_start(&rt->watchdog, rt);
    if (rc != LJS_OK) {
        rc = ljs__error(
            rc,
            "LJS_SCRIPT_TIMEOUT_MS: cannot start the watchdog (%s); signal %d is taken by the host: "
            "set LJS_SCRIPT_TIMEOUT_MS=0",
            rc == LJS_ETHREAD ? "thread" : "signal", ljs__watchdog_signal());
        goto fail_sched;
    }
    *out = rt;
    return LJS_OK;

fail_sched:
    ljs__watch_destroy(rt->watch);
    ljs__watchdog_stop(&rt->watchdog);
    ljs__sched_destroy(rt->sched);
fail_host:
    ljs__host_destroy(rt);
fail_cache:
    ljs__cache_release();
fail_console:
    ljs__trace_destroy(rt->trace);
    ljs__posts_destroy(rt->posts);
    ljs__query_fini(&rt->queries);
    ljs__console_fini(&rt->console);
fail:
    ljs__free(rt->workers);
    ljs__free(rt);
    return rc;
}

void ljs_runtime_destroy(ljs_runtime_t *rt)
{
    if (ljs__owner_check(rt, "ljs_runtime_destroy") != LJS_OK)
        return;
    if (rt == NULL)
        return;
    LJS_ASSERT_OWNER(rt);
    ljs__gc_quiesce(rt); /* background GC jobs end before the report and the workers */
    ljs__report_at_exit(rt);
    ljs__watch_destroy(rt->watch);
    ljs__watchdog_stop(&rt->watchdog);
    ljs__sched_destroy(rt->sched);
    ljs__host_destroy(rt);
    ljs__cache_release();
    ljs__trace_destroy(rt->trace);
    ljs__free(rt->rep_states);
    ljs__free(rt->rep_gc);
    ljs__free(rt->rep_scripts);
    for (uint32_t i = 0; i < rt->nscripts; i++)
        ljs__script_free(&rt->scripts[i]);
    ljs__free(rt->scripts);
    ljs__msgbuf_fini(&rt->events);
    ljs__msgbuf_fini(&rt->commands);
    ljs__free(rt->groups);
    ljs__world_fini(&rt->world);
    ljs__query_fini(&rt->queries);
    ljs__posts_destroy(rt->posts);
    ljs__free(rt->query_scratch.ids);
    ljs__free(rt->query_scratch.touched);
    ljs__console_fini(&rt->console);
    ljs__free(rt->workers);
    ljs__free(rt);
}

const ljs_config_t *ljs_runtime_config(const ljs_runtime_t *rt)
{
    return rt != NULL ? &rt->cfg : NULL;
}

int ljs_state_memory(const ljs_runtime_t *rt, uint32_t worker, ljs_state_memory_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_state_memory");
    if (rt == NULL || out == NULL || worker >= rt->nworkers)
        return ljs__error(LJS_EINVAL, "ljs_state_memory: bad runtime, worker %u or out", worker);
    const ljs__alloc_t *a = &rt->workers[worker].alloc;
    out->current_bytes = atomic_load_explicit(&a->current, memory_order_relaxed);
    out->peak_bytes = atomic_load_explicit(&a->peak, memory_order_relaxed);
    out->limit_bytes = a->limit;
    out->failed_allocs = atomic_load_explicit(&a->failed, memory_order_relaxed);
    out->allocated_bytes = atomic_load_explicit(&a->allocated, memory_order_relaxed);
    return LJS_OK;
}

int ljs_frame(ljs_runtime_t *rt, double dt)
{
    LJS_CHECK_OWNER(rt, "ljs_frame");
    if (rt == NULL || !(dt >= 0.0 && dt < 1e9))
        return ljs__error(LJS_EINVAL, "ljs_frame: bad runtime or dt (must be >= 0 and finite)");
    LJS_ASSERT_OWNER(rt);
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_frame: a frame is already running");
    return ljs__frame_run(rt, dt);
}

uint64_t ljs_frame_count(const ljs_runtime_t *rt)
{
    if (ljs__owner_check(rt, "ljs_frame_count") != LJS_OK)
        return 0;
    return rt != NULL ? rt->frame : 0;
}

int ljs_send(ljs_runtime_t *rt, ljs_entity_t target, const char *name, const ljs_kv_t *payload, size_t n)
{
    LJS_CHECK_OWNER(rt, "ljs_send");
    if (rt == NULL || name == NULL || (n > 0 && payload == NULL))
        return ljs__error(LJS_EINVAL, "ljs_send: NULL runtime, name or payload");
    size_t len = strnlen(name, LJS__EVENT_NAME_MAX + 1);
    if (!ljs__event_name_ok(name, len))
        return ljs__error(LJS_EINVAL,
                          "ljs_send('%.*s'): bad event name (1-%d letters, digits or '_', so on_<name> can "
                          "handle it)",
                          (int)len, name, LJS__EVENT_NAME_MAX);
    /* A table has one value per key: a payload naming a key twice would
     * arrive with one of them silently lost. n <= 256, so pairs are cheap. */
    for (size_t i = 0; n > 1 && n <= 256 && i < n; i++)
        for (size_t j = i + 1; payload[i].key != NULL && j < n; j++)
            if (payload[j].key != NULL && !strcmp(payload[i].key, payload[j].key))
                return ljs__error(LJS_EINVAL,
                                  "ljs_send('%s'): payload key '%s' given twice (entries %zu and %zu)", name,
                                  payload[i].key, i, j);
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_send: not allowed while a frame is running");
    ljs__msg_t head = {target.id, 0, rt->host_seq++, LJS__MSG_EVENT, 0, 0};
    int rc = ljs__msg_push_kv(&rt->events, &head, name, payload, n);
    if (rc == LJS_EINVAL)
        return ljs__error(
            rc,
            "ljs_send('%s'): bad payload (keys must be set for tables, strings non-NULL, at most "
            "256 entries)",
            name);
    if (rc != LJS_OK)
        return ljs__error(rc, "ljs_send: out of memory");
    rt->events_sent++;
    return LJS_OK;
}

int ljs_stats_get(const ljs_runtime_t *rt, ljs_stats_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_stats_get");
    if (rt == NULL || out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_stats_get: NULL argument");
    *out = rt->last;
    out->frames = rt->frame;
    out->events_sent = rt->events_sent;
    out->events_dropped = rt->events_dropped;
    out->updates = out->events_delivered = out->script_errors = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        out->updates += rt->workers[i].updates;
        out->events_delivered += rt->workers[i].delivered;
        out->script_errors += rt->workers[i].errors;
    }
    out->console_dropped = ljs__console_dropped((ljs__console_t *)&rt->console);
    out->reloads = rt->reloads;
    out->reload_errors = rt->reload_errors;
    ljs__watch_counts(rt->watch, &out->watch_events, &out->watch_overflows);
    out->watch_mode = ljs__watch_mode(rt->watch);
    ljs__posts_counts(rt->posts, &out->tag_posts, &out->tag_post_spills, &out->tag_posts_dropped);
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        ljs__sched_worker_stats_t ws;
        ljs__sched_worker_stats(rt->sched, i, &ws);
        out->jobs += ws.jobs;
        out->steals += ws.steals;
        out->parks += ws.parks;
    }
    ljs_cache_stats_t cs;
    ljs_query_stats_t qs;
    if (ljs_cache_stats(rt, &cs) == LJS_OK) {
        out->cache_hits = cs.hits;
        out->cache_misses = cs.misses;
    }
    if (ljs_query_stats(rt, &qs) == LJS_OK) {
        out->query_hits = qs.hits;
        out->query_misses = qs.misses;
    }
    return LJS_OK;
}

int ljs_worker_stats(const ljs_runtime_t *rt, uint32_t worker, ljs_worker_stats_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_worker_stats");
    if (rt == NULL || out == NULL || worker >= rt->nworkers)
        return ljs__error(LJS_EINVAL, "ljs_worker_stats: bad runtime, worker %u or out", worker);
    ljs__sched_worker_stats_t ws;
    ljs__sched_worker_stats(rt->sched, worker, &ws);
    out->jobs = ws.jobs;
    out->steals = ws.steals;
    out->parks = ws.parks;
    out->busy_ms = (double)ws.busy_ns / 1e6;
    return LJS_OK;
}

/* Runs under lua_pcall in the trusted state: set `arg`, load, call. */
static int exec_main(lua_State *L)
{
    const char *path = lua_touserdata(L, 1);
    int argc = (int)lua_tointeger(L, 2);
    char **argv = lua_touserdata(L, 3);
    lua_createtable(L, argc, 1);
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
    if (luaL_loadfilex(L, path, "t") != LUA_OK)
        return lua_error(L);
    for (int i = 0; i < argc; i++)
        lua_pushstring(L, argv[i]);
    lua_call(L, argc, 0);
    return 0;
}

int ljs_exec_file(ljs_runtime_t *rt, const char *path, int argc, char **argv)
{
    LJS_CHECK_OWNER(rt, "ljs_exec_file");
    if (rt == NULL || path == NULL || argc < 0 || (argc > 0 && argv == NULL))
        return ljs__error(LJS_EINVAL, "ljs_exec_file: bad argument");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ljs__error(LJS_ENOENT, "cannot open '%s': %s", path, strerror(errno));
    fclose(f);
    /* Worker 0's allocator is this thread's: same heap, limit, accounting. */
    lua_State *L = ljs__state_create_trusted(&rt->workers[0].alloc);
    if (L == NULL)
        return ljs__error(LJS_ENOMEM, "cannot create a Lua state (LJS_STATE_MEM_MB=%u)",
                          rt->cfg.state_mem_mb);
    lua_pushcfunction(L, ljs__state_traceback);
    lua_pushcfunction(L, exec_main);
    lua_pushlightuserdata(L, (void *)path);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int rc = lua_pcall(L, 3, 0, 1);
    int err = LJS_OK;
    if (rc != LUA_OK) {
        const char *msg = rc == LUA_ERRMEM ? "not enough memory (LJS_STATE_MEM_MB)" : lua_tostring(L, -1);
        err = ljs__error(rc == LUA_ERRMEM ? LJS_ENOMEM : LJS_ESCRIPT, "%s", msg ? msg : "(error object)");
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, 0, "", "%s", ljs_last_error());
    }
    lua_close(L);
    return err;
}

int ljs_cache_stats(const ljs_runtime_t *rt, ljs_cache_stats_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_cache_stats");
    if (rt == NULL || out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_cache_stats: NULL argument");
    ljs__cache_stats_get(out);
    return LJS_OK;
}
