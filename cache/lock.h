/*
 * lock.h - the engine's mutex and its re-entry guard.
 *
 * wc_lock is a futex mutex (0 free, 1 held, 2 held with waiters): one
 * atomic instruction to take it and one to release it when uncontended,
 * which is what the hot path can afford. It is not recursive.
 *
 * Re-entry: a signal handler may call write() while its thread is inside
 * the engine holding a lock. Every public entry point therefore marks the
 * thread as inside (wc_enter) and refuses a nested entry with -EDEADLK
 * (the shim then queues the nested write); nothing in the engine ever waits
 * for a lock its own thread might hold.
 */
#ifndef WCACHE_LOCK_H
#define WCACHE_LOCK_H

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wcache/sys.h"

struct wc_lock {
    int v;
};

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
        wc_sys.syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
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
        wc_sys.syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Per thread: non-zero while the thread is inside a public entry point. */
extern __thread int wc_in_engine __attribute__((tls_model("initial-exec")));

/* Enter the engine; false when this thread is already inside (a signal
 * handler interrupted it): the caller returns -EDEADLK. */
static inline int wc_enter(void)
{
    if (wc_in_engine)
        return 0;
    wc_in_engine = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return 1;
}

static inline void wc_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    wc_in_engine = 0;
}

#endif /* WCACHE_LOCK_H */
