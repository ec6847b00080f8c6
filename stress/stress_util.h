/* stress_util.h - helpers the stress programs (soak.c, stress_reload.c)
 * share: clocks, a seeded RNG, writing script files the way editors do, and
 * option parsing. Header-only (each program is one translation unit), all
 * static inline. Thread: any, unless a function says otherwise. */
#ifndef LJS_STRESS_UTIL_H
#define LJS_STRESS_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic seconds. */
static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* splitmix64 (Steele, Lea, Flood 2014): tiny, and fixed by --seed. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (modulo bias is irrelevant at these n). */
static inline uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rng_next(s) % n);
}

/* Uniform in [0, 1). */
static inline double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* Write `len` bytes to `path` (created or truncated). 0 or -1. */
static inline int write_bytes(const char *path, const char *src, size_t len)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    size_t put = fwrite(src, 1, len, f);
    return fclose(f) != 0 || put != len ? -1 : 0;
}

/* In place (the watcher sees the truncation and the write, and may read a
 * half-written file: a syntax error the next event repairs), or an editor's
 * atomic save (temp + rename: IN_MOVED_TO). The temp name does not end in
 * .lua, so the watcher ignores it. 0 or -1. */
static inline int write_file(const char *path, const char *src, int atomic_save)
{
    size_t len = strlen(src);
    if (!atomic_save)
        return write_bytes(path, src, len);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (write_bytes(tmp, src, len) != 0)
        return -1;
    return rename(tmp, path);
}

/* A whole decimal number in [lo, hi]; 0 on success. */
static inline int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

#endif
