/* script_host.c - the host's script API: load into every worker, unload,
 * attach, detach (owner thread, between frames). */
/* realpath(3) */
#define _XOPEN_SOURCE 700

#include "runtime/error.h"

#include "jobs/mem.h"
#include "runtime/scripts/exec.h"
#include "runtime/core.h"
#include "runtime/host/host.h"
#include "runtime/scripts/script_host.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ljs__script_read_source(const char *path, char **out, size_t *len, ljs__source_id_t *id)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL)
        return ljs__error(LJS_ENOENT, "cannot open script '%s': %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ljs__error(LJS_ENOENT, "script '%s' is not a regular file", path);
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *p = ljs__realloc(buf, cap);
            if (p == NULL) {
                ljs__free(buf);
                fclose(f);
                return ljs__error(LJS_ENOMEM, "out of memory reading '%s'", path);
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        ljs__free(buf);
        return ljs__error(LJS_ENOENT, "cannot read script '%s'", path);
    }
    *out = buf;
    *len = n;
    id->size = n;
    id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    id->hash = ljs__cache_hash(buf, n);
    return LJS_OK;
}

/* With LJS_SCRIPT_ROOT: "<root>/ai/idle.lua" -> "ai.idle" (both resolved
 * with realpath, so "./x/../ai/idle.lua" names the same script). Returns
 * NULL with ljs_last_error set when the file is outside the root. */
static int rooted_name(const char *root, const char *path, char **out)
{
    char rroot[PATH_MAX], rpath[PATH_MAX];
    if (realpath(root, rroot) == NULL)
        return ljs__error(LJS_EINVAL, "LJS_SCRIPT_ROOT '%s': %s", root, strerror(errno));
    if (realpath(path, rpath) == NULL)
        return ljs__error(LJS_ENOENT, "cannot open '%s': %s", path, strerror(errno));
    size_t n = strlen(rroot);
    if (n == 1) /* the root is "/" */
        n = 0;
    if (strncmp(rpath, rroot, n) != 0 || rpath[n] != '/')
        return ljs__error(LJS_EINVAL,
                          "'%s' is not under LJS_SCRIPT_ROOT '%s' (scripts are named by their path under it)",
                          path, root);
    char *name = ljs__strdup(rpath + n + 1);
    if (name == NULL)
        return ljs__error(LJS_ENOMEM, "out of memory");
    size_t len = strlen(name);
    if (len > 4 && !strcmp(name + len - 4, ".lua"))
        name[len - 4] = '\0';
    for (char *c = name; *c; c++)
        if (*c == '/')
            *c = '.';
    *out = name;
    return LJS_OK;
}

/* "dir/mover.lua" -> "mover", or the rooted name (above). */
static int script_name(const ljs_runtime_t *rt, const char *path, char **out)
{
    if (rt->cfg.script_root[0] != '\0')
        return rooted_name(rt->cfg.script_root, path, out);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".lua"))
        n -= 4;
    char *name = ljs__malloc(n + 1);
    if (name == NULL)
        return ljs__error(LJS_ENOMEM, "out of memory");
    memcpy(name, base, n);
    name[n] = '\0';
    *out = name;
    return LJS_OK;
}

/* Make sure every worker has room for instance `id`. */
static int reserve_instances(ljs_runtime_t *rt, uint32_t id)
{
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        ljs__worker_t *w = &rt->workers[i];
        if (id < w->ninst)
            continue;
        uint32_t cap = w->ninst ? w->ninst * 2 : 16;
        while (cap <= id)
            cap *= 2;
        ljs__inst_t *inst = ljs__realloc(w->inst, cap * sizeof *inst);
        if (inst == NULL)
            return LJS_ENOMEM;
        w->inst = inst;
        ljs__sstat_t *st = ljs__realloc(w->sstat, cap * sizeof *st);
        if (st == NULL)
            return LJS_ENOMEM;
        w->sstat = st;
        memset(w->inst + w->ninst, 0, (cap - w->ninst) * sizeof *inst);
        memset(w->sstat + w->ninst, 0, (cap - w->ninst) * sizeof *st);
        w->ninst = cap;
    }
    return LJS_OK;
}

static int new_slot(ljs_runtime_t *rt, uint32_t *id)
{
    for (uint32_t i = 0; i < rt->nscripts; i++)
        if (!rt->scripts[i].used) {
            *id = i;
            return LJS_OK;
        }
    ljs__script_t *p = ljs__realloc(rt->scripts, (rt->nscripts + 1) * sizeof *p);
    if (p == NULL)
        return LJS_ENOMEM;
    rt->scripts = p;
    memset(&rt->scripts[rt->nscripts], 0, sizeof *p);
    *id = rt->nscripts++;
    return LJS_OK;
}

typedef struct load_job_s {
    ljs_runtime_t *rt;
    uint32_t id;
    int rc[LJS_SCHED_MAX_WORKERS];
} load_job_t;

/* Affine job: instantiate on workers 1..n-1 (worker 0 did it first). */
static void load_on_worker(void *arg, uint32_t worker)
{
    load_job_t *j = arg;
    if (worker != 0)
        j->rc[worker] = ljs__script_instantiate(&j->rt->workers[worker], j->id, 0);
}

typedef struct release_job_s {
    ljs_runtime_t *rt;
    uint32_t id;
    const int *loaded; /* rc array: release only where it loaded */
} release_job_t;

static void release_on_worker(void *arg, uint32_t worker)
{
    release_job_t *j = arg;
    if (j->loaded == NULL || j->loaded[worker] == LJS_OK)
        ljs__script_release(&j->rt->workers[worker], j->id);
}

static int check_loadable(ljs_runtime_t *rt, const char *path)
{
    if (rt == NULL || path == NULL)
        return ljs__error(LJS_EINVAL, "ljs_script_load: NULL argument");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_script_load: not allowed while a frame is running");
    return LJS_OK;
}

static ljs__script_t *live_script(const ljs_runtime_t *rt, ljs_script_t s)
{
    if (rt == NULL || s.id >= rt->nscripts || !rt->scripts[s.id].used)
        return NULL;
    return &rt->scripts[s.id];
}

/* Fill slot `id` with the script at `path`: read it, prepare it in the
 * bytecode cache, and instantiate it on every worker (worker 0 first, which
 * reads the metadata), all or nothing. `name` is taken. On failure the
 * slot is freed and ljs_last_error says why. Thread: owner. */
static int load_version_body(ljs_runtime_t *rt, uint32_t id, const char *path, char *name)
{
    int rc;
    ljs__script_t *s = &rt->scripts[id];
    uint32_t nfields0 = rt->world.nfields, ntags0 = rt->world.ntags;
    memset(s, 0, sizeof *s);
    s->name = name;
    s->trace_name = ljs__trace_intern(rt->trace, name);
    s->path = ljs__strdup(path);
    if (s->path == NULL) {
        ljs__script_free(s);
        return ljs__error(LJS_ENOMEM, "out of memory");
    }
    if ((rc = ljs__script_read_source(path, &s->source, &s->source_len, &s->version)) != LJS_OK) {
        ljs__script_free(s);
        return rc;
    }
    if (rt->cfg.cache) {
        char err[1024], warn[1024];
        ljs__cache_req_t req = {s->path,
                                s->version,
                                s->source,
                                s->source_len,
                                (int)rt->cfg.strip_bytecode,
                                rt->cfg.cache_dir,
                                (uint64_t)rt->cfg.cache_max_mb << 20,
                                0};
        rc = ljs__cache_prepare(rt->workers[0].L, &req, err, sizeof err, warn, sizeof warn);
        if (warn[0])
            ljs__console_log(&rt->console, LJS_LOG_WARN, rt->frame, 0, s->name, "%s", warn);
        if (rc != LJS_OK) {
            rc = ljs__error(rc, "%s", err);
            ljs__script_free(s);
            return rc;
        }
    }
    /* Worker 0 is this thread: load there first, reading the metadata. */
    rc = ljs__script_instantiate(&rt->workers[0], id, 1);
    if (rc != LJS_OK) {
        rc = ljs__error(rc, "%s", rt->workers[0].errmsg);
        ljs__script_free(s);
        ljs__world_forget_since(&rt->world, nfields0, ntags0); /* a refused script leaves nothing */
        return rc;
    }
    load_job_t *job = ljs__calloc(1, sizeof *job);
    if (job == NULL) {
        ljs__script_release(&rt->workers[0], id);
        ljs__script_free(s);
        return ljs__error(LJS_ENOMEM, "out of memory");
    }
    job->rt = rt;
    job->id = id;
    ljs__sched_run_on_all(rt->sched, load_on_worker, job);
    for (uint32_t w = 1; w < rt->nworkers && rc == LJS_OK; w++)
        if (job->rc[w] != LJS_OK)
            rc = ljs__error(job->rc[w], "worker %u: %s", w, rt->workers[w].errmsg);
    if (rc != LJS_OK) {
        /* All or nothing: no state keeps a script another could not load. */
        release_job_t rel = {rt, id, job->rc};
        ljs__sched_run_on_all(rt->sched, release_on_worker, &rel);
        ljs__script_free(s);
        ljs__world_forget_since(&rt->world, nfields0, ntags0);
    }
    ljs__free(job);
    return rc;
}

/* Deferred host calls made by the module's top level run only if the load
 * (or reload) succeeds. */
static int load_version(ljs_runtime_t *rt, uint32_t id, const char *path, char *name)
{
    ljs__host_load_begin(rt);
    int rc = load_version_body(rt, id, path, name);
    ljs__host_load_end(rt, rc == LJS_OK);
    return rc;
}

int ljs_script_load(ljs_runtime_t *rt, const char *path, ljs_script_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_script_load");
    uint32_t id;
    int rc = check_loadable(rt, path);
    if (rc != LJS_OK)
        return rc;
    char *name = NULL;
    if ((rc = script_name(rt, path, &name)) != LJS_OK)
        return rc;
    ljs_script_t dup;
    if (ljs_script_find(rt, name, &dup) == LJS_OK) {
        rc = ljs__error(LJS_EEXIST, "a script named '%s' is already loaded", name);
        ljs__free(name);
        return rc;
    }
    if ((rc = new_slot(rt, &id)) != LJS_OK || (rc = reserve_instances(rt, id)) != LJS_OK) {
        ljs__free(name);
        return ljs__error(rc, "out of memory");
    }
    rc = load_version(rt, id, path, name);
    if (rc == LJS_OK) {
        rt->scripts[id].used = 1;
        rt->scripts[id].pinned = 1;
        ljs__watch_script(rt->watch, id);
        if (out != NULL)
            out->id = id;
    }
    return rc;
}

/* Swap slot a and b everywhere: host records and every worker's instance.
 * Used to move a new version into the id the host holds. Thread: owner,
 * between frames (workers are idle, so their arrays can be touched; the
 * next job gives them happens-before). */
static void swap_slots(ljs_runtime_t *rt, uint32_t a, uint32_t b)
{
    ljs__script_t t = rt->scripts[a];
    rt->scripts[a] = rt->scripts[b];
    rt->scripts[b] = t;
    for (uint32_t w = 0; w < rt->nworkers; w++) {
        ljs__inst_t i = rt->workers[w].inst[a];
        rt->workers[w].inst[a] = rt->workers[w].inst[b];
        rt->workers[w].inst[b] = i;
    }
}

/* The new version at `id` takes over the old one's entities: bindings move
 * over, entities gain the new tags and the defaults of new fields. */
static void adopt_bindings(ljs_runtime_t *rt, ljs__script_t *now, ljs__script_t *old)
{
    ljs__world_t *w = &rt->world;
    now->ents = old->ents;
    now->nents = old->nents;
    now->ents_cap = old->ents_cap;
    now->ents_dirty = 1;
    old->ents = NULL;
    old->nents = old->ents_cap = 0;
    for (uint32_t e = 0; e < now->nents; e++) {
        uint32_t slot = now->ents[e];
        ljs__world_set_tags(w, slot, w->tags[slot] | now->tag_mask);
        for (uint32_t i = 0; i < now->nfields; i++)
            if (!w->fields[now->field_ids[i]].present[slot])
                ljs__world_field_put(w, now->field_ids[i], slot, now->defaults[i]);
    }
}

/* on_reload(self) once per entity of the new version, then commit, so the
 * host and every entity see the result. */
static void run_on_reload(ljs_runtime_t *rt, uint32_t id)
{
    ljs__script_t *s = &rt->scripts[id];
    if (rt->workers[0].inst[id].reload_ref == LUA_NOREF || s->nents == 0)
        return;
    ljs__phase_t ph = {rt, id, 0.0, NULL, NULL};
    rt->view_epoch++; /* views kept from the last frame must not be read here */
    ljs__sched_parallel_for(rt->sched, s->nents, rt->cfg.batch, ljs__exec_reloads, &ph);
    ljs__world_commit(&rt->world, rt->sched);
}

int ljs__script_reload(ljs_runtime_t *rt, uint32_t id, int force, int *reloaded)
{
    *reloaded = 0;
    ljs__script_t *s = &rt->scripts[id];
    ljs__source_id_t v;
    char *src = NULL;
    size_t len;
    uint32_t tmp;
    int rc = ljs__script_read_source(s->path, &src, &len, &v);
    ljs__free(src);
    if (rc != LJS_OK)
        return rc; /* deleted or unreadable: keep running the old version */
    if (!force && v.size == s->version.size && v.mtime_ns == s->version.mtime_ns && v.hash == s->version.hash)
        return LJS_OK; /* unchanged */
    char *name = ljs__strdup(s->name);
    if (name == NULL || new_slot(rt, &tmp) != LJS_OK || reserve_instances(rt, tmp) != LJS_OK) {
        ljs__free(name);
        return ljs__error(LJS_ENOMEM, "out of memory reloading '%s'", rt->scripts[id].path);
    }
    s = &rt->scripts[id]; /* new_slot may have moved the array */
    rc = load_version(rt, tmp, s->path, name);
    if (rc != LJS_OK)
        return rc; /* broken new version: the old one keeps running */
    swap_slots(rt, id, tmp);
    rt->scripts[id].used = 1;
    rt->scripts[id].pinned = rt->scripts[tmp].pinned;
    rt->scripts[tmp].used = 0;
    adopt_bindings(rt, &rt->scripts[id], &rt->scripts[tmp]);
    release_job_t rel = {rt, tmp, NULL};
    ljs__sched_run_on_all(rt->sched, release_on_worker, &rel);
    ljs__script_free(&rt->scripts[tmp]);
    run_on_reload(rt, id);
    *reloaded = 1;
    return LJS_OK;
}

/* Protected: making the key string allocates, and a state filled to its
 * limit must get an error here, not an abort. */
static int clear_module(lua_State *L)
{
    const char *path = lua_touserdata(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "ljs.modules");
    lua_pushnil(L);
    lua_setfield(L, -2, path);
    return 0;
}

typedef struct forget_job_s {
    ljs_runtime_t *rt;
    const char *path;
} forget_job_t;

/* Affine job: drop a module's value from one state, so the next require
 * runs the module's new version. */
static void forget_module_on_worker(void *arg, uint32_t worker)
{
    forget_job_t *j = arg;
    lua_State *L = j->rt->workers[worker].L;
    lua_pushcfunction(L, clear_module);
    lua_pushlightuserdata(L, (void *)j->path);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        lua_pop(L, 1);
}

void ljs__script_forget_module(ljs_runtime_t *rt, const char *path)
{
    forget_job_t j = {rt, path};
    ljs__sched_run_on_all(rt->sched, forget_module_on_worker, &j);
}

int ljs_script_reload(ljs_runtime_t *rt, ljs_script_t s)
{
    LJS_CHECK_OWNER(rt, "ljs_script_reload");
    ljs__script_t *sc = live_script(rt, s);
    if (sc == NULL)
        return ljs__error(LJS_ENOENT, "ljs_script_reload: no such script");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_script_reload: not allowed while a frame is running");
    /* Its modules run again too: they may be what changed. */
    for (uint32_t i = 0; i < sc->ndeps; i++)
        ljs__script_forget_module(rt, sc->deps[i]);
    int reloaded;
    int rc = ljs__script_reload(rt, s.id, 1, &reloaded);
    ljs__script_t *now = &rt->scripts[s.id];
    rt->reloads += rc == LJS_OK;
    rt->reload_errors += rc != LJS_OK;
    ljs__watch_script(rt->watch, s.id);
    if (rc == LJS_OK)
        ljs__console_log(&rt->console, LJS_LOG_INFO, rt->frame, 0, now->name, "reloaded %s", now->path);
    else
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, 0, now->name,
                         "reload of %s failed, the previous version keeps running: %s", now->path,
                         ljs_last_error());
    return rc;
}

int ljs_script_find(const ljs_runtime_t *rt, const char *name, ljs_script_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_script_find");
    if (rt == NULL || name == NULL)
        return ljs__error(LJS_EINVAL, "ljs_script_find: NULL argument");
    for (uint32_t i = 0; i < rt->nscripts; i++)
        if (rt->scripts[i].used && !strcmp(rt->scripts[i].name, name)) {
            if (out != NULL)
                out->id = i;
            return LJS_OK;
        }
    return ljs__error(LJS_ENOENT, "no script named '%s' is loaded", name);
}

void ljs__script_unbind_all(ljs_runtime_t *rt)
{
    for (uint32_t id = 0; id < rt->nscripts; id++) {
        rt->scripts[id].nents = 0;
        rt->scripts[id].ents_dirty = 1;
    }
    for (uint32_t i = 0; i < rt->world.nslots; i++)
        rt->world.escripts[i].n = 0;
}

void ljs__script_detach_slot(ljs_runtime_t *rt, uint32_t slot, uint32_t id)
{
    ljs__escripts_t *es = &rt->world.escripts[slot];
    for (uint32_t i = 0; i < es->n; i++)
        if (es->ids[i] == id) {
            memmove(es->ids + i, es->ids + i + 1, (es->n - i - 1) * sizeof *es->ids);
            es->n--;
            break;
        }
    ljs__script_t *s = &rt->scripts[id];
    for (uint32_t i = 0; i < s->nents; i++)
        if (s->ents[i] == slot) {
            s->ents[i] = s->ents[--s->nents];
            s->ents_dirty = 1;
            break;
        }
}

int ljs_script_unload(ljs_runtime_t *rt, ljs_script_t s)
{
    LJS_CHECK_OWNER(rt, "ljs_script_unload");
    ljs__script_t *sc = live_script(rt, s);
    if (sc == NULL)
        return ljs__error(LJS_ENOENT, "ljs_script_unload: no such script");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_script_unload: not allowed while a frame is running");
    while (sc->nents > 0)
        ljs__script_detach_slot(rt, sc->ents[sc->nents - 1], s.id);
    release_job_t rel = {rt, s.id, NULL};
    ljs__sched_run_on_all(rt->sched, release_on_worker, &rel);
    ljs__script_free(sc);
    return LJS_OK;
}

int ljs__script_attach(ljs_runtime_t *rt, uint32_t slot, uint32_t id)
{
    ljs__world_t *w = &rt->world;
    ljs__script_t *s = &rt->scripts[id];
    if (ljs__script_bound(w, slot, id))
        return LJS_OK;
    ljs__escripts_t *es = &w->escripts[slot];
    if (es->n == es->cap) {
        uint32_t cap = es->cap ? es->cap * 2 : 2;
        uint32_t *p = ljs__realloc(es->ids, cap * sizeof *p);
        if (p == NULL)
            return LJS_ENOMEM;
        es->ids = p;
        es->cap = cap;
    }
    if (s->nents == s->ents_cap) {
        uint32_t cap = s->ents_cap ? s->ents_cap * 2 : 64;
        uint32_t *p = ljs__realloc(s->ents, cap * sizeof *p);
        if (p == NULL)
            return LJS_ENOMEM;
        s->ents = p;
        s->ents_cap = cap;
    }
    es->ids[es->n++] = id;
    s->ents[s->nents++] = slot;
    s->ents_dirty = 1;
    ljs__world_set_tags(w, slot, w->tags[slot] | s->tag_mask);
    for (uint32_t i = 0; i < s->nfields; i++)
        if (!w->fields[s->field_ids[i]].present[slot])
            ljs__world_field_put(w, s->field_ids[i], slot, s->defaults[i]);
    return LJS_OK;
}

static int resolve(ljs_runtime_t *rt, ljs_entity_t e, ljs_script_t s, const char *fn, int64_t *slot)
{
    if (rt == NULL)
        return ljs__error(LJS_EINVAL, "%s: rt is NULL", fn);
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "%s: not allowed while a frame is running", fn);
    if (live_script(rt, s) == NULL)
        return ljs__error(LJS_ENOENT, "%s: no such script", fn);
    *slot = ljs__world_slot(&rt->world, e.id);
    if (*slot < 0)
        return ljs__error(LJS_ENOENT, "%s: entity " LJS_ENTITY_FMT " is not alive", fn,
                          LJS_ENTITY_ARGS(e.id));
    return LJS_OK;
}

int ljs_script_attach(ljs_runtime_t *rt, ljs_entity_t e, ljs_script_t s)
{
    LJS_CHECK_OWNER(rt, "ljs_script_attach");
    int64_t slot = -1;
    int rc = resolve(rt, e, s, "ljs_script_attach", &slot);
    if (rc == LJS_OK && (rc = ljs__script_attach(rt, (uint32_t)slot, s.id)) != LJS_OK)
        rc = ljs__error(rc, "ljs_script_attach: out of memory");
    return rc;
}

int ljs_script_detach(ljs_runtime_t *rt, ljs_entity_t e, ljs_script_t s)
{
    LJS_CHECK_OWNER(rt, "ljs_script_detach");
    int64_t slot = -1;
    int rc = resolve(rt, e, s, "ljs_script_detach", &slot);
    if (rc == LJS_OK)
        ljs__script_detach_slot(rt, (uint32_t)slot, s.id);
    return rc;
}

int ljs_script_stats(const ljs_runtime_t *rt, ljs_script_t s, ljs_script_stats_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_script_stats");
    const ljs__script_t *sc = live_script(rt, s);
    if (sc == NULL || out == NULL)
        return ljs__error(LJS_ENOENT, "ljs_script_stats: no such script");
    memset(out, 0, sizeof *out);
    for (uint32_t w = 0; w < rt->nworkers; w++) {
        out->calls += rt->workers[w].sstat[s.id].calls;
        out->errors += rt->workers[w].sstat[s.id].errors;
        out->time_ms += (double)rt->workers[w].sstat[s.id].time_ns / 1e6;
        out->alloc_bytes += rt->workers[w].sstat[s.id].alloc_bytes;
    }
    out->entities = sc->nents;
    char buf[8];
    ljs__script_natural_summary(sc, buf, sizeof buf, &out->scalarized, &out->table_fallback);
    return LJS_OK;
}

int ljs_script_pin(ljs_runtime_t *rt, ljs_script_t s, int pinned)
{
    LJS_CHECK_OWNER(rt, "ljs_script_pin");
    ljs__script_t *sc = live_script(rt, s);
    if (sc == NULL)
        return ljs__error(LJS_ENOENT, "ljs_script_pin: no such script");
    sc->pinned = pinned != 0;
    sc->idle_frames = 0;
    return LJS_OK;
}

void ljs__script_unload_idle(ljs_runtime_t *rt)
{
    if (rt->cfg.unload_grace == 0)
        return;
    for (uint32_t id = 0; id < rt->nscripts; id++) {
        ljs__script_t *s = &rt->scripts[id];
        if (!s->used || s->pinned || s->nents > 0) {
            s->idle_frames = 0;
            continue;
        }
        if (++s->idle_frames < rt->cfg.unload_grace)
            continue;
        char path[1024], name[256];
        snprintf(path, sizeof path, "%s", s->path);
        snprintf(name, sizeof name, "%s", s->name);
        ljs_script_t h = {id};
        if (ljs_script_unload(rt, h) == LJS_OK) {
            if (rt->cfg.cache)
                ljs__cache_forget(path);
            ljs__console_log(&rt->console, LJS_LOG_INFO, rt->frame, 0, name,
                             "unloaded %s: no entity used it for %u frames (LJS_UNLOAD_GRACE)", path,
                             rt->cfg.unload_grace);
        }
    }
}
