/* watch.c - hot reload watcher and reload queue (see watch.h).
 *
 * Threads: the watcher thread only reads inotify and pushes paths into the
 * ring (it never touches Lua or the scripts); everything else runs on the
 * owner at frame start. `lock` guards the watch-descriptor table, which both
 * sides extend (the owner for loaded scripts, the watcher for new
 * subdirectories); it is a leaf lock. */
#include "runtime/scripts/watch.h"

#include "jobs/mem.h"

#include "runtime/clock.h"

#include "runtime/error.h"
#include "runtime/scripts/require.h"
#include "runtime/core.h"
#include "runtime/scripts/script_host.h"

#include <ck_ring.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_MAX_REC 256

struct ljs__wrec {
    char path[PATH_MAX_REC];
};
/* cppcheck-suppress unknownMacro ; ck_ring.h generates the typed ring functions */
CK_RING_PROTOTYPE(wrec, ljs__wrec)

typedef struct wdir_s {
    int wd;
    char *path;
} wdir_t;

typedef struct pending_s {
    char *path;
    double last_ms; /* last change seen: reload once it is quiet */
} pending_t;

/* Last seen size/mtime of a watched file, for polling. */
typedef struct known_s {
    char *path;
    int64_t size, mtime_ns;
} known_t;

struct ljs__watch_s {
    ljs_runtime_t *rt;
    atomic_uint mode;     /* 0 off, 1 inotify, 2 polling */
    const char *poll_why; /* under lock: why inotify failed, logged after unlock */
    int fd, stop_fd;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    wdir_t *dirs;
    size_t ndirs, dirs_cap;
    ck_ring_t ring;
    struct ljs__wrec *buf;
    atomic_int overflow;
    /* owner side */
    pending_t *pending;
    size_t npending, pending_cap;
    known_t *known;
    size_t nknown, known_cap;
    double last_poll_ms;
    int paused; /* ljs_watch_set(rt, 0): changes wait until resumed */
    uint64_t events, overflows;
};

static int is_lua(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && !strcmp(name + n - 4, ".lua") && name[0] != '.';
}

static void join_path(char *out, size_t n, const char *dir, const char *name)
{
    /* Scripts loaded as "x.lua" have root "."; keep their paths bare so
     * they compare equal to the loaded path. */
    if (!strcmp(dir, "."))
        snprintf(out, n, "%s", name);
    else
        snprintf(out, n, "%s/%s", dir, name);
}

/* ---- watcher thread (producer) ---------------------------------------------------- */

static void push(ljs__watch_t *w, const char *path)
{
    struct ljs__wrec rec;
    if (strlen(path) >= sizeof rec.path) {
        atomic_store_explicit(&w->overflow, 1, memory_order_release);
        return;
    }
    snprintf(rec.path, sizeof rec.path, "%s", path);
    /* A full ring must not lose the change: flag it, the owner rescans. */
    if (!ck_ring_enqueue_spsc_wrec(&w->ring, w->buf, &rec))
        atomic_store_explicit(&w->overflow, 1, memory_order_release);
}

static int add_watch_locked(ljs__watch_t *w, const char *dir);

/* Watch `dir` and every subdirectory; with `report`, push the .lua files
 * found (they may have appeared before the watch existed). Under lock. */
static void add_tree_locked(ljs__watch_t *w, const char *dir, int report, int depth)
{
    if (depth > 32 || add_watch_locked(w, dir) != 0)
        return;
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[1024];
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        join_path(path, sizeof path, dir, de->d_name);
        struct stat st;
        /* lstat: a symlinked directory is not followed, so a loop
         * (l1 -> ., l2 -> .) or a link to / cannot make the walk explode. */
        if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode))
            continue;
        if (S_ISDIR(st.st_mode))
            add_tree_locked(w, path, report, depth + 1);
        else if (report && is_lua(de->d_name))
            push(w, path);
    }
    closedir(d);
}

static const char *dir_of_locked(ljs__watch_t *w, int wd)
{
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd)
            return w->dirs[i].path;
    return NULL;
}

static void fall_back_to_polling(ljs__watch_t *w, const char *why);

static void handle_event(ljs__watch_t *w, const struct inotify_event *ev)
{
    char path[1024];
    if (ev->mask & IN_Q_OVERFLOW) {
        atomic_store_explicit(&w->overflow, 1, memory_order_release);
        return;
    }
    if (ev->len == 0)
        return;
    pthread_mutex_lock(&w->lock);
    const char *dir = dir_of_locked(w, ev->wd);
    if (dir != NULL) {
        join_path(path, sizeof path, dir, ev->name);
        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
            add_tree_locked(w, path, 1, 0); /* a new subdirectory */
        else if (!(ev->mask & IN_ISDIR) && is_lua(ev->name))
            push(w, path);
    }
    const char *why = w->poll_why;
    w->poll_why = NULL;
    pthread_mutex_unlock(&w->lock);
    if (why != NULL)
        fall_back_to_polling(w, why);
}

static void *watcher_main(void *arg)
{
    ljs__watch_t *w = arg;
    _Alignas(struct inotify_event) char buf[16384];
    struct pollfd fds[2] = {{w->fd, POLLIN, 0}, {w->stop_fd, POLLIN, 0}};
    for (;;) {
        /* Blocks: an idle runtime's watcher costs no CPU. */
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents & POLLIN)
            break;
        if (!(fds[0].revents & POLLIN))
            continue;
        ssize_t n = read(w->fd, buf, sizeof buf);
        for (ssize_t off = 0; n > 0 && off < n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            handle_event(w, ev);
            off += (ssize_t)(sizeof *ev + ev->len);
        }
    }
    return NULL;
}

/* ---- watches --------------------------------------------------------------------- */

static void fall_back_to_polling(ljs__watch_t *w, const char *why)
{
    if (atomic_exchange(&w->mode, 2) != 2)
        ljs__console_log(&w->rt->console, LJS_LOG_WARN, w->rt->frame, 0, "",
                         "hot reload: %s; watching by polling every %u ms (LJS_POLL_MS) instead", why,
                         w->rt->cfg.poll_ms);
}

static int add_watch_locked(ljs__watch_t *w, const char *dir)
{
    /* IN_MODIFY too: every write of an in-place save restarts the debounce,
     * so a half-written file is rarely the one reloaded. */
    const uint32_t mask =
        IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR;
    int wd = inotify_add_watch(w->fd, dir, mask);
    if (wd < 0) {
        /* ENOSPC: the user's watch limit (fs.inotify.max_user_watches). */
        if (errno == ENOSPC)
            w->poll_why = "the inotify watch limit is reached (fs.inotify.max_user_watches)";
        return -1;
    }
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd)
            return 0; /* already watched */
    if (w->ndirs == w->dirs_cap) {
        size_t cap = w->dirs_cap ? w->dirs_cap * 2 : 16;
        wdir_t *p = ljs__realloc(w->dirs, cap * sizeof *p);
        if (p == NULL) {
            w->poll_why = "out of memory for inotify watches";
            return -1;
        }
        w->dirs = p;
        w->dirs_cap = cap;
    }
    char *copy = ljs__strdup(dir);
    if (copy == NULL) {
        w->poll_why = "out of memory for inotify watches";
        return -1;
    }
    w->dirs[w->ndirs].wd = wd;
    w->dirs[w->ndirs].path = copy;
    w->ndirs++;
    return 0;
}

static void watch_tree(ljs__watch_t *w, const char *file)
{
    char root[512];
    int known = 0;
    ljs__require_root(file, root, sizeof root);
    pthread_mutex_lock(&w->lock);
    /* A watched root is already covered, subdirectories included (new ones
     * arrive as events): rescanning the tree on every script load made
     * loading N scripts O(N^2) stat() calls (bench: watch). */
    for (size_t i = 0; i < w->ndirs && !known; i++)
        known = !strcmp(w->dirs[i].path, root);
    if (!known)
        add_tree_locked(w, root, 0, 0);
    const char *why = w->poll_why;
    w->poll_why = NULL;
    pthread_mutex_unlock(&w->lock);
    /* A directory inotify cannot watch would never report a change:
     * polling sees every file, so nothing is silently missed. */
    if (why != NULL)
        fall_back_to_polling(w, why);
}

/* Remember a file's size and mtime (polling compares against them). */
static void remember(ljs__watch_t *w, const char *path)
{
    struct stat st;
    size_t i;
    for (i = 0; i < w->nknown && strcmp(w->known[i].path, path) != 0; i++) {
    }
    if (i == w->nknown) {
        if (w->nknown == w->known_cap) {
            size_t cap = w->known_cap ? w->known_cap * 2 : 16;
            known_t *p = ljs__realloc(w->known, cap * sizeof *p);
            if (p == NULL)
                return;
            w->known = p;
            w->known_cap = cap;
        }
        w->known[i].path = ljs__strdup(path);
        if (w->known[i].path == NULL)
            return;
        w->nknown++;
    }
    if (stat(path, &st) == 0) {
        w->known[i].size = st.st_size;
        w->known[i].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    } else {
        w->known[i].size = -1;
        w->known[i].mtime_ns = -1;
    }
}

void ljs__watch_script(ljs__watch_t *w, uint32_t id)
{
    if (w == NULL || atomic_load(&w->mode) == 0)
        return;
    const ljs__script_t *s = &w->rt->scripts[id];
    remember(w, s->path);
    for (uint32_t i = 0; i < s->ndeps; i++)
        remember(w, s->deps[i]);
    if (atomic_load(&w->mode) != 1)
        return;
    watch_tree(w, s->path);
    for (uint32_t i = 0; i < s->ndeps; i++)
        watch_tree(w, s->deps[i]);
}

/* ---- owner side: drain, debounce, reload ------------------------------------------------ */

static void mark(ljs__watch_t *w, const char *path, double now)
{
    for (size_t i = 0; i < w->npending; i++)
        if (!strcmp(w->pending[i].path, path)) {
            w->pending[i].last_ms = now; /* coalesce, restart the quiet time */
            return;
        }
    if (w->npending == w->pending_cap) {
        size_t cap = w->pending_cap ? w->pending_cap * 2 : 16;
        pending_t *p = ljs__realloc(w->pending, cap * sizeof *p);
        if (p == NULL)
            return;
        w->pending = p;
        w->pending_cap = cap;
    }
    char *copy = ljs__strdup(path);
    if (copy == NULL)
        return;
    w->pending[w->npending].path = copy;
    w->pending[w->npending].last_ms = now;
    w->npending++;
}

/* Every watched file is suspect: rescan (the reload path checks
 * size/mtime/hash, so unchanged files cost one read). */
static void mark_all(ljs__watch_t *w, double now)
{
    for (size_t i = 0; i < w->nknown; i++)
        mark(w, w->known[i].path, now);
}

static void poll_files(ljs__watch_t *w, double now)
{
    if (now - w->last_poll_ms < w->rt->cfg.poll_ms)
        return;
    w->last_poll_ms = now;
    for (size_t i = 0; i < w->nknown; i++) {
        struct stat st;
        int64_t size = -1, mtime = -1;
        if (stat(w->known[i].path, &st) == 0) {
            size = st.st_size;
            mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        }
        if (size != w->known[i].size || mtime != w->known[i].mtime_ns) {
            w->known[i].size = size;
            w->known[i].mtime_ns = mtime;
            mark(w, w->known[i].path, now);
        }
    }
}

static void report(ljs__watch_t *w, uint32_t id, int rc)
{
    ljs_runtime_t *rt = w->rt;
    const ljs__script_t *s = &rt->scripts[id];
    if (rc == LJS_OK) {
        rt->reloads++;
        ljs__console_log(&rt->console, LJS_LOG_INFO, rt->frame, 0, s->name, "reloaded %s", s->path);
    } else {
        rt->reload_errors++;
        ljs__console_log(&rt->console, LJS_LOG_ERROR, rt->frame, 0, s->name,
                         "reload of %s failed, the previous version keeps running: %s", s->path,
                         ljs_last_error());
    }
}

/* A changed file: reload the script it is, and every script requiring it
 * (its module value is dropped from every state first). */
static void apply(ljs__watch_t *w, const char *path)
{
    ljs_runtime_t *rt = w->rt;
    int is_module = 0;
    for (uint32_t id = 0; id < rt->nscripts; id++)
        for (uint32_t k = 0; rt->scripts[id].used && k < rt->scripts[id].ndeps; k++)
            is_module |= !strcmp(rt->scripts[id].deps[k], path);
    if (is_module)
        ljs__script_forget_module(rt, path);
    for (uint32_t id = 0; id < rt->nscripts; id++) {
        const ljs__script_t *s = &rt->scripts[id];
        if (!s->used)
            continue;
        int dep = 0;
        for (uint32_t k = 0; k < s->ndeps; k++)
            dep |= !strcmp(s->deps[k], path);
        if (!dep && strcmp(s->path, path) != 0)
            continue;
        /* A file being deleted or half-written reads as an error: keep the
         * old version quietly; the next event will bring it back. */
        struct stat st;
        int reloaded = 0;
        if (stat(path, &st) != 0)
            continue;
        int rc = ljs__script_reload(rt, id, dep, &reloaded);
        if (rc == LJS_OK && !reloaded)
            continue; /* touched, not changed */
        report(w, id, rc);
        ljs__watch_script(w, id); /* new modules may have appeared */
    }
}

void ljs__watch_frame(ljs__watch_t *w)
{
    uint32_t mode = w != NULL ? atomic_load(&w->mode) : 0;
    if (mode == 0)
        return;
    double now = ljs__now_ms();
    struct ljs__wrec rec;
    if (w->paused) {
        /* Keep the ring from overflowing; resuming rescans everything. */
        while (ck_ring_dequeue_spsc_wrec(&w->ring, w->buf, &rec))
            w->events++;
        return;
    }
    while (ck_ring_dequeue_spsc_wrec(&w->ring, w->buf, &rec)) {
        w->events++;
        mark(w, rec.path, now);
    }
    /* acq_rel: the flag was raised after the records it could not push. */
    if (atomic_exchange_explicit(&w->overflow, 0, memory_order_acq_rel)) {
        w->overflows++;
        mark_all(w, now);
    }
    if (mode == 2)
        poll_files(w, now);
    for (size_t i = 0; i < w->npending;) {
        if (now - w->pending[i].last_ms < w->rt->cfg.reload_debounce_ms) {
            i++;
            continue;
        }
        char *path = w->pending[i].path;
        w->pending[i] = w->pending[--w->npending];
        apply(w, path);
        remember(w, path);
        ljs__free(path);
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

static int start_inotify(ljs__watch_t *w)
{
    w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (w->fd < 0)
        return -1;
    w->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (w->stop_fd < 0 || pthread_create(&w->thread, NULL, watcher_main, w) != 0)
        return -1;
    w->started = 1;
    return 0;
}

int ljs__watch_create(ljs_runtime_t *rt, ljs__watch_t **out)
{
    ljs__watch_t *w = ljs__calloc(1, sizeof *w);
    if (w == NULL)
        return LJS_ENOMEM;
    w->rt = rt;
    w->fd = w->stop_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    atomic_init(&w->mode, rt->cfg.watch);
    atomic_init(&w->overflow, 0);
    unsigned size = 4;
    while (size < rt->cfg.watch_ring)
        size *= 2;
    w->buf = ljs__calloc(size, sizeof *w->buf);
    if (w->buf == NULL) {
        ljs__free(w);
        return LJS_ENOMEM;
    }
    ck_ring_init(&w->ring, size);
    if (rt->cfg.watch == 1 && start_inotify(w) != 0)
        fall_back_to_polling(w, "inotify is unavailable");
    *out = w;
    return LJS_OK;
}

void ljs__watch_destroy(ljs__watch_t *w)
{
    if (w == NULL)
        return;
    if (w->started) {
        uint64_t one = 1;
        if (write(w->stop_fd, &one, sizeof one) != sizeof one)
            perror("ljs: stopping the watcher");
        pthread_join(w->thread, NULL);
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    for (size_t i = 0; i < w->ndirs; i++)
        ljs__free(w->dirs[i].path);
    for (size_t i = 0; i < w->npending; i++)
        ljs__free(w->pending[i].path);
    for (size_t i = 0; i < w->nknown; i++)
        ljs__free(w->known[i].path);
    ljs__free(w->dirs);
    ljs__free(w->pending);
    ljs__free(w->known);
    ljs__free(w->buf);
    pthread_mutex_destroy(&w->lock);
    ljs__free(w);
}

int ljs_watch_set(ljs_runtime_t *rt, int on)
{
    LJS_CHECK_OWNER(rt, "ljs_watch_set");
    ljs__watch_t *w = rt != NULL ? rt->watch : NULL;
    if (w == NULL || atomic_load(&w->mode) == 0)
        return ljs__error(LJS_EINVAL,
                          "ljs_watch_set: watching is off (LJS_WATCH=0 when the runtime was created)");
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "ljs_watch_set: not allowed while a frame is running");
    if (w->paused && on) {
        /* Whatever changed meanwhile: rescan (hashes decide what reloads). */
        mark_all(w, ljs__now_ms());
        w->last_poll_ms = 0;
    }
    w->paused = !on;
    return LJS_OK;
}

uint32_t ljs__watch_mode(const ljs__watch_t *w)
{
    return w != NULL ? atomic_load(&((ljs__watch_t *)w)->mode) : 0;
}

void ljs__watch_counts(const ljs__watch_t *w, uint64_t *events, uint64_t *overflows)
{
    *events = w != NULL ? w->events : 0;
    *overflows = w != NULL ? w->overflows : 0;
}
