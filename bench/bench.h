/* bench.h - shared harness for ljs-bench cases.
 *
 * Every case runs its baseline and the optimized path in the same process,
 * repeats each measurement ctx->reps times and reports medians. A case
 * reports named figures (absolute numbers, units in the name) and named
 * ratios (optimized vs baseline, > 1 means ljs is better) through
 * bench_report(), which prints a human table or, with --json, one JSON
 * object per case on its own line.
 */
#ifndef LJS_BENCH_H
#define LJS_BENCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_ctx_s {
    int json;         /* --json: one JSON line per case instead of tables */
    int reps;         /* repetitions per measurement (--reps N, default 5) */
    int quick;        /* --quick: smaller sizes, for smoke tests in CI */
    unsigned workers; /* all-workers count (default: online CPUs) */
} bench_ctx_t;

typedef struct bench_kv_s {
    const char *name;
    double value;
} bench_kv_t;

#define BENCH_MAX_KV 48

typedef struct bench_result_s {
    const char *name;
    bench_kv_t figures[BENCH_MAX_KV];
    size_t nfigures;
    bench_kv_t ratios[BENCH_MAX_KV];
    size_t nratios;
} bench_result_t;

uint64_t bench_now_ns(void);
/* Median of v[0..n) (sorts v in place). */
double bench_median(double *v, size_t n);
void bench_figure(bench_result_t *r, const char *name, double value);
void bench_ratio(bench_result_t *r, const char *name, double value);
/* Print the result as a table (or a JSON line with ctx->json). */
void bench_report(const bench_ctx_t *ctx, const bench_result_t *r);
/* Keep a case's result for the targets table (bench_report does). */
void bench_keep(const bench_result_t *r);
/* Print every target whose measure was reported, met or not, as a
 * Markdown table. Returns how many were missed. */
int bench_targets_print(void);
/* Make a fresh directory /tmp/ljs-bench-<what>-<random> into `out` (which
 * holds at least 64 bytes). Returns 0, or -1 with the reason on stderr. */
int bench_tmpdir(char *out, size_t n, const char *what);

/* Write len bytes of text to path. Returns 0 or -1. */
int bench_write(const char *path, const char *text, size_t len);

/* Write `len` bytes of script source to `path`, then make a runtime with
 * `workers` workers and no watcher and load the script into it. Returns 0,
 * or -1 with ljs_last_error() on stderr (nothing left to destroy). */
struct ljs_runtime_s;
struct ljs_script_s;
int bench_runtime(const char *path, const char *src, size_t len, uint32_t workers, struct ljs_runtime_s **rt,
                  struct ljs_script_s *s);

/* splitmix64: a fixed-seed generator, so every run sees the same data. */
uint64_t bench_rng(uint64_t *state);

/* Keep the compiler from optimising a value away. */
void bench_sink(uint64_t v);

/* CPU-burning child processes beside a measurement (bench_burn.c). */
#define BENCH_MAX_BURNERS 8
typedef struct bench_burners_s {
    int pid[BENCH_MAX_BURNERS];
    int n;
} bench_burners_t;
/* Start n burners (at most BENCH_MAX_BURNERS). Returns 0 or -1 (none left running). */
int bench_burners_start(bench_burners_t *b, int n);
/* Kill and reap them. */
void bench_burners_stop(bench_burners_t *b);

/* The cases. Each returns 0 on success. */
int bench_sched(const bench_ctx_t *ctx);
int bench_frame(const bench_ctx_t *ctx);
int bench_cache(const bench_ctx_t *ctx);
int bench_watch(const bench_ctx_t *ctx);
int bench_query(const bench_ctx_t *ctx);
int bench_pool(const bench_ctx_t *ctx);
int bench_gc(const bench_ctx_t *ctx);
int bench_gc_end(const bench_ctx_t *ctx);
int bench_stats(const bench_ctx_t *ctx);
int bench_runaway(const bench_ctx_t *ctx);
int bench_snapshot(const bench_ctx_t *ctx);
int bench_host(const bench_ctx_t *ctx);
int bench_fields(const bench_ctx_t *ctx);

#endif
