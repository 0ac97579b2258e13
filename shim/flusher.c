/*
 * flusher.c - the deadline flusher: a thread that writes back what has
 * been dirty for half of WCACHE_FLUSH_MS (the kernel's flusher threads, in
 * user space), and reaps the crash guard's intermediate child.
 *
 * Invariants:
 *   (1) The flusher thread has every signal blocked and calls only
 *       wc_cache_flush_expired: data is on disk at most about
 *       WCACHE_FLUSH_MS after it was written, even while the program
 *       sleeps. It ends when the program's threads have all ended, so
 *       that glibc's "last thread calls exit(0)" still ends the process.
 *   (2) It is started with the cache, by the write that first caches a
 *       file (fdtab.c invariant (6)) - unless that write may run in a
 *       signal handler, where pthread_create (malloc, glibc's stack cache
 *       lock) may deadlock: once the program has installed a handler of
 *       its own (wc_note_handler) and opened a writable regular file, it
 *       is started then, outside any write, and sleeps until the cache
 *       exists. A process that caches nothing makes no thread, and glibc
 *       keeps its single-thread fast paths (malloc, stdio).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/ucopy.h"

/* The flusher's thread id once it runs (0 before, and in a fork child);
 * g_flusher_starting: 1 from the start (pthread_create may have made it
 * without its id published yet), 2 when pthread_create failed. */
static int g_flusher_tid, g_flusher_starting;
/* Bumped to wake the flusher before its period ends (wc_flusher_kick). */
static int g_kick;

static void *flusher_main(void *arg)
{
    (void)arg;
    uint64_t period_ms = wc_cfg.flush_ms / 4 ? wc_cfg.flush_ms / 4 : 1;
    uint64_t age_ns = wc_cfg.flush_ms * 1000000ull / 2;
    struct timespec ts = {(time_t)(period_ms / 1000),
                          (long)(period_ms % 1000) * 1000000};
    /* Look for the program's end about every 250 ms (it costs a read of
     * /proc/self/stat), whatever the period. */
    uint64_t look_every = period_ms < 250 ? 250 / period_ms : 1, wakes = 0;
    __atomic_store_n(&g_flusher_tid, (int)REAL(syscall)(SYS_gettid),
                     __ATOMIC_RELEASE);
    prctl(PR_SET_NAME, "wcache-flush");
    while (wc_state == WC_ST_ON) {
        wc_guard_reap();
        int kick = __atomic_load_n(&g_kick, __ATOMIC_ACQUIRE);
        wc_raw_syscall(SYS_futex, (long)&g_kick, FUTEX_WAIT_PRIVATE, kick,
                       (long)&ts, 0, 0);
        if (__atomic_load_n(&g_kick, __ATOMIC_ACQUIRE) != kick)
            continue;           /* kicked: a guard's child to reap */
        if (wc_state != WC_ST_ON)
            break;
        /* main called pthread_exit and every other program thread has
         * ended: glibc calls exit(0) when the last thread ends, and that
         * is this one now (the destructor then flushes). */
        if (++wakes % look_every == 0 && wc_program_threads_gone())
            break;
        struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
        if (!c)
            continue;           /* invariant (2): no cache yet */
        wc_depth = 1;
        wc_cache_flush_expired(c, age_ns);
        wc_depth = 0;
    }
    wc_guard_reap();
    return NULL;
}

int wc_flusher_tid(void)
{
    int tid;
    while (!(tid = __atomic_load_n(&g_flusher_tid, __ATOMIC_ACQUIRE)) &&
           __atomic_load_n(&g_flusher_starting, __ATOMIC_ACQUIRE) == 1)
        sched_yield();
    return tid;
}

void wc_flusher_start(void)
{
    if (__atomic_load_n(&g_flusher_tid, __ATOMIC_ACQUIRE))
        return;
    int was = 0;
    if (!__atomic_compare_exchange_n(&g_flusher_starting, &was, 1, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        if (was == 2)
            wc_guard_reap();    /* no flusher to do it */
        return;                 /* started, being started, or failed */
    }
    pthread_t t;
    pthread_attr_t a;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 << 10);
    /* Not through our pthread_create: the flusher is no program thread
     * (wc_solo), and with every signal blocked needs no signal stack. */
    int r = REAL(pthread_create)(&t, &a, flusher_main, NULL);
    if (r)
        __atomic_store_n(&g_flusher_starting, 2, __ATOMIC_RELEASE);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        wc_log(WC_LOG_WARN, "no flusher thread (%s): data reaches files "
               "only at consistency points", strerror(r));
        wc_guard_reap();
    }
}

/* wc_note_handler and the opens: a handler of the program's own, and a
 * writable regular file open (flusher invariant (2)). */
static int g_handlers, g_writable;

static void want(void)
{
    if (__atomic_load_n(&g_handlers, __ATOMIC_ACQUIRE) &&
        __atomic_load_n(&g_writable, __ATOMIC_ACQUIRE))
        wc_flusher_start();
}

void wc_note_handler(void)
{
    if (!__atomic_exchange_n(&g_handlers, 1, __ATOMIC_ACQ_REL))
        want();
}

void wc_note_writable(void)
{
    if (!__atomic_load_n(&g_writable, __ATOMIC_RELAXED)) {
        __atomic_store_n(&g_writable, 1, __ATOMIC_RELEASE);
        want();
    }
}

void wc_flusher_kick(void)
{
    __atomic_add_fetch(&g_kick, 1, __ATOMIC_RELEASE);
    wc_futex(&g_kick, FUTEX_WAKE_PRIVATE, 1);
}

void wc_flusher_after_fork(void)
{
    g_flusher_tid = g_flusher_starting = 0;
}
