/*
 * enter.h - the engine's re-entry guard (the mutex itself, shared with the
 * shim, is include/wcache/lock.h).
 *
 * Re-entry: a signal handler may call write() while its thread is inside
 * the engine holding a lock. Every public entry point therefore marks the
 * thread as inside (wc_engine_enter) and refuses a nested entry with -EDEADLK
 * (the shim then queues the nested write); nothing in the engine ever waits
 * for a lock its own thread might hold.
 */
#ifndef WCACHE_ENTER_H
#define WCACHE_ENTER_H

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wcache/lock.h"
#include "wcache/sys.h"
#include "wcache/thr.h"

/* wc_in_engine (wcache/thr.h), per thread: non-zero while the thread is
 * inside a public entry point. */

/* Enter the engine; false when this thread is already inside (a signal
 * handler interrupted it): the caller returns -EDEADLK. */
static inline int wc_engine_enter(void)
{
    if (wc_in_engine)
        return 0;
    wc_in_engine = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return 1;
}

static inline void wc_engine_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    wc_in_engine = 0;
}

#endif /* WCACHE_ENTER_H */
