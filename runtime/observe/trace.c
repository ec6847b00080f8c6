/* trace.c - Chrome trace-event JSON (see trace.h). Opens in Perfetto
 * (ui.perfetto.dev) and chrome://tracing: one track per worker, complete
 * ("X") events nested by time, times in microseconds. */
#include "runtime/observe/trace.h"

#include "jobs/mem.h"

#include "runtime/error.h"

#include <errno.h>
#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/clock.h"

static const char *const kind_names[LJS__SPAN_KINDS] = {
    "frame",  "frame start", "update",    "events", "commit",    "frame end",
    "update", "event",       "on_reload", "gc",     "gc (idle)", "gc (full)",
};

static const char *const kind_cats[LJS__SPAN_KINDS] = {
    "frame", "phase", "phase", "phase", "phase", "phase", "batch", "batch", "batch", "gc", "gc", "gc",
};

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int ljs__trace_create(const char *path, uint32_t nworkers, uint32_t spans, ljs__trace_t **out)
{
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return LJS_OK;
    ljs__trace_t *tr = ljs__calloc(1, sizeof *tr);
    if (tr == NULL)
        return LJS_ENOMEM;
    snprintf(tr->path, sizeof tr->path, "%s", path);
    tr->origin_ns = ljs__now_ns();
    tr->nworkers = nworkers;
    tr->rings = ljs__aligned_alloc(64, sizeof *tr->rings * nworkers);
    if (tr->rings == NULL) {
        ljs__free(tr);
        return LJS_ENOMEM;
    }
    memset(tr->rings, 0, sizeof *tr->rings * nworkers);
    uint32_t cap = pow2_at_least(spans);
    for (uint32_t i = 0; i < nworkers; i++) {
        tr->rings[i].spans = ljs__calloc(cap, sizeof(ljs__span_t));
        tr->rings[i].mask = cap - 1;
        if (tr->rings[i].spans == NULL) {
            ljs__trace_destroy(tr);
            return LJS_ENOMEM;
        }
    }
    *out = tr;
    return LJS_OK;
}

void ljs__trace_destroy(ljs__trace_t *tr)
{
    if (tr == NULL)
        return;
    for (uint32_t i = 0; i < tr->nworkers; i++)
        ljs__free(tr->rings[i].spans);
    ljs__free(tr->rings);
    for (uint32_t i = 0; i < tr->nnames; i++)
        ljs__free(tr->names[i]);
    ljs__free(tr->names);
    ljs__free(tr);
}

uint32_t ljs__trace_intern(ljs__trace_t *tr, const char *name)
{
    if (tr == NULL)
        return UINT32_MAX;
    for (uint32_t i = 0; i < tr->nnames; i++)
        if (!strcmp(tr->names[i], name))
            return i;
    if (tr->nnames == tr->names_cap) {
        uint32_t cap = tr->names_cap ? tr->names_cap * 2 : 16;
        char **p = ljs__realloc(tr->names, cap * sizeof *p);
        if (p == NULL)
            return UINT32_MAX;
        tr->names = p;
        tr->names_cap = cap;
    }
    char *copy = ljs__strdup(name);
    if (copy == NULL)
        return UINT32_MAX;
    tr->names[tr->nnames] = copy;
    return tr->nnames++;
}

uint64_t ljs__trace_lost(const ljs__trace_t *tr)
{
    uint64_t lost = 0;
    for (uint32_t i = 0; tr != NULL && i < tr->nworkers; i++) {
        const ljs__trace_ring_t *r = &tr->rings[i];
        if (r->head > (uint64_t)r->mask + 1)
            lost += r->head - ((uint64_t)r->mask + 1);
    }
    return lost;
}

/* Script names come from file names, which may hold any byte but NUL. */
void ljs__json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static double us(const ljs__trace_t *tr, uint64_t t)
{
    return t >= tr->origin_ns ? (double)(t - tr->origin_ns) / 1e3 : 0.0;
}

static void put_span(FILE *f, const ljs__trace_t *tr, uint32_t worker, const ljs__span_t *s, int pid)
{
    const char *name = kind_names[s->kind];
    fputs(",\n{\"name\":", f);
    if (s->name != UINT32_MAX && s->name < tr->nnames) {
        char buf[320];
        snprintf(buf, sizeof buf, "%s %s", tr->names[s->name], name);
        ljs__json_string(f, buf);
    } else {
        ljs__json_string(f, name);
    }
    fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f",
            kind_cats[s->kind], pid, worker, us(tr, s->t0),
            s->t1 > s->t0 ? (double)(s->t1 - s->t0) / 1e3 : 0.0);
    if (s->kind == LJS__SPAN_FRAME)
        fprintf(f, ",\"args\":{\"frame\":%llu}", (unsigned long long)(((uint64_t)s->b << 32) | s->a));
    else if (s->kind >= LJS__SPAN_BATCH_UPDATE && s->kind <= LJS__SPAN_BATCH_RELOAD)
        fprintf(f, ",\"args\":{\"first\":%u,\"count\":%u}", s->a, s->b);
    else if (s->kind >= LJS__SPAN_GC)
        fprintf(f, ",\"args\":{\"kib_before\":%u,\"kib_after\":%u}", s->a, s->b);
    fputc('}', f);
}

static void put_ring(FILE *f, const ljs__trace_t *tr, uint32_t worker, int pid)
{
    const ljs__trace_ring_t *r = &tr->rings[worker];
    uint64_t cap = (uint64_t)r->mask + 1;
    uint64_t first = r->head > cap ? r->head - cap : 0;
    for (uint64_t i = first; i < r->head; i++)
        put_span(f, tr, worker, &r->spans[i & r->mask], pid);
}

int ljs__trace_write(const ljs__trace_t *tr)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", tr->path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return ljs__error(LJS_EIO, "LJS_TRACE=%s: cannot write %s: %s", tr->path, tmp, strerror(errno));
    int pid = (int)getpid();
    fprintf(f,
            "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"ljs\":\"%s\",\"spans_lost\":%llu},\n"
            "\"traceEvents\":[\n"
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"ljs\"}}",
            LJS_VERSION_STRING, (unsigned long long)ljs__trace_lost(tr), pid);
    for (uint32_t w = 0; w < tr->nworkers; w++)
        fprintf(
            f,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%u,\"args\":{\"name\":\"worker %u%s\"}}",
            pid, w, w, w == 0 ? " (owner)" : "");
    for (uint32_t w = 0; w < tr->nworkers; w++)
        put_ring(f, tr, w, pid);
    fputs("\n]}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, tr->path) != 0) {
        int e = errno;
        unlink(tmp);
        return ljs__error(LJS_EIO, "LJS_TRACE=%s: cannot write the trace: %s", tr->path, strerror(e));
    }
    return LJS_OK;
}
