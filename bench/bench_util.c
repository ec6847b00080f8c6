/* bench_util.c - timing, medians and reporting shared by the cases. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <ljs.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void add_kv(bench_kv_t *kv, size_t *n, const char *name, double value)
{
    if (*n < BENCH_MAX_KV) {
        kv[*n].name = name;
        kv[*n].value = value;
        (*n)++;
    }
}

void bench_figure(bench_result_t *r, const char *name, double value)
{
    add_kv(r->figures, &r->nfigures, name, value);
}

void bench_ratio(bench_result_t *r, const char *name, double value)
{
    add_kv(r->ratios, &r->nratios, name, value);
}

static void print_json_kv(const bench_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%s\"%s\":%.6g", i ? "," : "", kv[i].name, kv[i].value);
}

void bench_report(const bench_ctx_t *ctx, const bench_result_t *r)
{
    bench_keep(r);
    if (ctx->json) {
        printf("{\"case\":\"%s\",\"figures\":{", r->name);
        print_json_kv(r->figures, r->nfigures);
        printf("},\"ratios\":{");
        print_json_kv(r->ratios, r->nratios);
        printf("}}\n");
    } else {
        printf("\n## %s (medians of %d)\n\n| figure | value |\n| --- | --- |\n", r->name, ctx->reps);
        for (size_t i = 0; i < r->nfigures; i++)
            printf("| %s | %.4g |\n", r->figures[i].name, r->figures[i].value);
        printf("\n| ratio | value |\n| --- | --- |\n");
        for (size_t i = 0; i < r->nratios; i++)
            printf("| %s | %.3f |\n", r->ratios[i].name, r->ratios[i].value);
    }
    fflush(stdout);
}

int bench_tmpdir(char *out, size_t n, const char *what)
{
    /* mkdtemp replaces the six trailing X's of the template. */
    snprintf(out, n, "/tmp/ljs-bench-%s-%.6s", what, "XXXXXXXX");
    if (mkdtemp(out) == NULL) {
        fprintf(stderr, "ljs-bench %s: cannot make a temporary directory: %s\n", what, strerror(errno));
        return -1;
    }
    return 0;
}

int bench_write(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fwrite(text, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int bench_runtime(const char *path, const char *src, size_t len, uint32_t workers, ljs_runtime_t **rt,
                  ljs_script_t *s)
{
    ljs_config_t cfg;
    if (bench_write(path, src, len) != 0 || ljs_config_init(&cfg) != LJS_OK)
        return -1;
    cfg.workers = workers;
    cfg.watch = 0;
    if (ljs_runtime_create(&cfg, rt) != LJS_OK) {
        fprintf(stderr, "bench: %s\n", ljs_last_error());
        return -1;
    }
    if (ljs_script_load(*rt, path, s) != LJS_OK) {
        fprintf(stderr, "bench: %s\n", ljs_last_error());
        ljs_runtime_destroy(*rt);
        return -1;
    }
    return 0;
}

uint64_t bench_rng(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static volatile uint64_t sink;

void bench_sink(uint64_t v)
{
    sink += v;
}
