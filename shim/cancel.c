/*
 * cancel.c - the calls the cache serves are cancellation points, as
 * libc's are.
 *
 * glibc acts on a deferred pthread_cancel at each cancellation point
 * (write, read and their families among them) before it makes the system
 * call: a thread with a cancellation pending never writes there. A write
 * or read that the cache serves makes no system call, so without this
 * file such a thread would write its bytes into the file and go on to its
 * next call that reaches the kernel.
 *
 * Invariants:
 *   (1) Until the program first calls pthread_cancel (interposed here),
 *       wc_cancel_used is 0 and nothing is checked: one load per write.
 *       A cancellation needs a pthread_cancel, so none is missed.
 *   (2) From then on, a write or read the shim is about to handle on a
 *       description it tracks calls pthread_testcancel first, at depth 0
 *       (never inside a signal handler that interrupted the shim, which
 *       may hold the shim's locks), before the shim changes anything: a
 *       pending cancellation unwinds from the wrapper as it would from
 *       libc's call, and the write is not made. Pass-through calls are
 *       libc's again (shim/kcall.h (K2) makes none bare), which check for
 *       themselves.
 *   (3) From then on too, cancellation is off while a thread is inside
 *       the shim (wc_shim_enter to wc_shim_leave: wc_cancel_hold,
 *       wc_cancel_unhold). The shim and the engine call libc's
 *       cancellation points (pwritev, fsync, fcntl's F_SETLKW, open,
 *       close...) holding a description's, a file's or the cache's lock;
 *       a pending cancellation acted on there unwound the thread with the
 *       lock held, and every other thread then waited for it for ever (a
 *       probe: fsync, fdatasync, lockf, sync, syncfs, system, fopen with a
 *       cancellation pending, 10 of 10 hung; 400 threads cancelled at
 *       random while writing, 5 of 5). A cancellation requested meanwhile
 *       acts at the thread's next cancellation point, the one that (2)
 *       checks at the next call included, as glibc's deferred
 *       cancellation does for one that arrives between two.
 */
#include <dlfcn.h>
#include <pthread.h>

#include "shim.h"

int wc_cancel_used;

WC_EXPORT int pthread_cancel(pthread_t t)
{
    static int (*real_cancel)(pthread_t);
    int (*f)(pthread_t) = __atomic_load_n(&real_cancel, __ATOMIC_ACQUIRE);
    if (unlikely(!f)) {
        /* Looked up at the first call: not in the table of wcache/sys.h,
         * which every process fills at start-up. pthread_cancel is no
         * async-signal-safe function: no handler calls it. */
        f = (int (*)(pthread_t))dlsym(RTLD_NEXT, "pthread_cancel");
        if (!f)
            return ENOSYS;
        __atomic_store_n(&real_cancel, f, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&wc_cancel_used, 1, __ATOMIC_SEQ_CST);
    return f(t);
}

void wc_cancel_hold(void)
{
    int old;
    if (!wc_cancel_held &&
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old) == 0)
        wc_cancel_held = 1 + old;
}

void wc_cancel_unhold(void)
{
    int old = wc_cancel_held - 1;
    wc_cancel_held = 0;
    pthread_setcancelstate(old, NULL);
}

void wc_cancel_test(void)
{
    if (!wc_depth)
        pthread_testcancel();
}
