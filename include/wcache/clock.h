/*
 * clock.h - the one monotonic clock of the engine, the shim and the
 * guard, in nanoseconds (vDSO: no system call).
 */
#ifndef WCACHE_CLOCK_H
#define WCACHE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t wc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* WCACHE_CLOCK_H */
