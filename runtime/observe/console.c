/* console.c - bounded console ring (see console.h). */
#include "runtime/observe/console.h"

#include "jobs/mem.h"

#include "runtime/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ljs__console_init(ljs__console_t *c, uint32_t cap)
{
    memset(c, 0, sizeof *c);
    c->lines = ljs__calloc(cap, sizeof *c->lines);
    if (c->lines == NULL)
        return LJS_ENOMEM;
    c->cap = cap;
    pthread_mutex_init(&c->lock, NULL);
    return LJS_OK;
}

static void free_line(ljs__console_line_t *l)
{
    ljs__free(l->script);
    ljs__free(l->text);
    l->script = l->text = NULL;
}

void ljs__console_fini(ljs__console_t *c)
{
    if (c->lines == NULL)
        return;
    for (uint32_t i = 0; i < c->cap; i++)
        free_line(&c->lines[i]);
    ljs__free(c->lines);
    pthread_mutex_destroy(&c->lock);
    c->lines = NULL;
}

void ljs__console_log(ljs__console_t *c, ljs_severity_t sev, uint64_t frame, uint64_t entity,
                      const char *script, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* With a log callback the line goes there, from this thread, and is
     * not kept: fn and ud are read together under the lock. */
    pthread_mutex_lock(&c->lock);
    ljs_log_fn fn = c->fn;
    void *ud = c->ud;
    pthread_mutex_unlock(&c->lock);
    if (fn != NULL) {
        ljs_log_line_t line = {sev, frame, entity, script ? script : "", buf};
        fn(ud, &line);
        return;
    }
    /* Copy outside the lock; a failed copy degrades to an empty string. */
    char *text = ljs__strdup(buf);
    char *sc = ljs__strdup(script ? script : "");
    pthread_mutex_lock(&c->lock);
    uint32_t slot = (c->head + c->count) % c->cap;
    if (c->count == c->cap) {
        free_line(&c->lines[c->head]);
        c->head = (c->head + 1) % c->cap;
        c->dropped++;
    } else {
        c->count++;
    }
    ljs__console_line_t *l = &c->lines[slot];
    l->severity = sev;
    l->frame = frame;
    l->entity = entity;
    l->script = sc;
    l->text = text;
    pthread_mutex_unlock(&c->lock);
}

uint64_t ljs__console_dropped(ljs__console_t *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t d = c->dropped;
    pthread_mutex_unlock(&c->lock);
    return d;
}

int ljs__console_to_host(ljs__console_t *c, ljs_severity_t sev, const char *text)
{
    pthread_mutex_lock(&c->lock);
    ljs_log_fn fn = c->fn;
    void *ud = c->ud;
    pthread_mutex_unlock(&c->lock);
    if (fn == NULL)
        return 0;
    ljs_log_line_t line = {sev, 0, 0, "", text};
    fn(ud, &line);
    return 1;
}

int ljs_log_set(ljs_runtime_t *rt, ljs_log_fn fn, void *ud)
{
    if (rt == NULL)
        return LJS_EINVAL;
    LJS_CHECK_OWNER(rt, "ljs_log_set");
    ljs__console_t *c = &rt->console;
    pthread_mutex_lock(&c->lock);
    c->fn = fn;
    c->ud = ud;
    pthread_mutex_unlock(&c->lock);
    return LJS_OK;
}

/* The callback runs without the console lock: each line is taken out of
 * the ring under the lock and handed over after it is released, so the
 * callback may call ljs (a call that logs takes the lock again). Lines
 * logged meanwhile wait for the next drain: a callback that logs on every
 * line cannot make one drain endless. */
size_t ljs_console_drain(ljs_runtime_t *rt, ljs_log_fn fn, void *ud)
{
    if (ljs__owner_check(rt, "ljs_console_drain") != LJS_OK)
        return 0;
    if (rt == NULL)
        return 0;
    ljs__console_t *c = &rt->console;
    pthread_mutex_lock(&c->lock);
    size_t limit = c->count, n = 0;
    pthread_mutex_unlock(&c->lock);
    while (n < limit) {
        pthread_mutex_lock(&c->lock);
        if (c->count == 0) { /* cannot happen with one drainer; cheap to be sure */
            pthread_mutex_unlock(&c->lock);
            break;
        }
        ljs__console_line_t l = c->lines[c->head];
        c->lines[c->head].script = c->lines[c->head].text = NULL;
        c->head = (c->head + 1) % c->cap;
        c->count--;
        pthread_mutex_unlock(&c->lock);
        if (fn != NULL) {
            ljs_log_line_t out = {l.severity, l.frame, l.entity, l.script ? l.script : "",
                                  l.text ? l.text : ""};
            fn(ud, &out);
        }
        free_line(&l);
        n++;
    }
    return n;
}
