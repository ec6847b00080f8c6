/* clock.h - the monotonic clock every runtime timing uses (stats, GC
 * budgets, debounce, traces), so their times are comparable. */
#ifndef LJS_RUNTIME_CLOCK_H
#define LJS_RUNTIME_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Thread: any. A vDSO call, ~20 ns. */
static inline uint64_t ljs__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double ljs__now_ms(void)
{
    return (double)ljs__now_ns() / 1e6;
}

#endif
