/*
 * clock.h - the one monotonic clock of the engine, the shim and the
 * guard, in nanoseconds.
 *
 * It is the kernel's CLOCK_MONOTONIC read through the vDSO's own
 * __vdso_clock_gettime, found in the vDSO's symbol table at the first call
 * (cache/clock.c), never through the dynamic linker: a library preloaded
 * with the shim that fakes the program's time (libfaketime, before or
 * after it in LD_PRELOAD) froze or slowed the shim's deadlines with it,
 * and written data then stayed off the disk past WCACHE_FLUSH_MS (probe
 * Z). Without a vDSO, the system call. No system call otherwise, no errno
 * written; safe in a signal handler.
 */
#ifndef WCACHE_CLOCK_H
#define WCACHE_CLOCK_H

#include <stdint.h>
#include <time.h>
#include "wcache/hidden.h"

/* The vDSO's clock_gettime once found (cache/clock.c); before that, the
 * function that finds it. Atomic (relaxed): any thread may find it. */
extern WC_LOCAL int (*wc_clock_gettime)(clockid_t, struct timespec *);

static inline uint64_t wc_now_ns(void)
{
    struct timespec ts;
    __atomic_load_n(&wc_clock_gettime, __ATOMIC_RELAXED)(CLOCK_MONOTONIC,
                                                          &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* WCACHE_CLOCK_H */
