/*
 * lock.h - the one mutex of wcache, used by the engine and the shim.
 *
 * A futex mutex (0 free, 1 held, 2 held with waiters): one atomic
 * instruction to take it and one to release it when uncontended, which is
 * what the hot path can afford. Not recursive. The futex calls are raw
 * system calls: no libc, no table of real functions (the shim may take a
 * lock before that table is filled), nothing a test or the shim
 * interposes.
 *
 * The re-entry guards are per layer: wc_engine_enter/leave in
 * cache/lock.h, wc_shim_enter/leave in shim/shim.h.
 */
#ifndef WCACHE_LOCK_PUBLIC_H
#define WCACHE_LOCK_PUBLIC_H

#include <linux/futex.h>
#include <sys/syscall.h>

#include "wcache/raw.h"

struct wc_lock {
    int v;
};

static inline long wc_futex(int *addr, int op, int val)
{
    return wc_raw_syscall(SYS_futex, (long)addr, op, val, 0, 0, 0);
}

static inline int wc_lock_try(struct wc_lock *l)
{
    int zero = 0;
    return __atomic_compare_exchange_n(&l->v, &zero, 1, 0, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static inline void wc_lock_slow(struct wc_lock *l)
{
    for (int i = 0; i < 100; i++) {
        if (__atomic_load_n(&l->v, __ATOMIC_RELAXED) == 0 && wc_lock_try(l))
            return;
        __builtin_ia32_pause();
    }
    while (__atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE) != 0)
        wc_futex(&l->v, FUTEX_WAIT_PRIVATE, 2);
}

static inline void wc_lock(struct wc_lock *l)
{
    if (__builtin_expect(!wc_lock_try(l), 0))
        wc_lock_slow(l);
}

static inline void wc_unlock(struct wc_lock *l)
{
    if (__builtin_expect(__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2,
                         0))
        wc_futex(&l->v, FUTEX_WAKE_PRIVATE, 1);
}

#endif /* WCACHE_LOCK_PUBLIC_H */
