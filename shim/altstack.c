/*
 * altstack.c - an alternate signal stack for the threads of a process
 * that caches, so that a thread that overflows its stack can still write
 * back before it dies.
 *
 * A stack overflow raises SIGSEGV on a stack with no room left: without an
 * alternate stack the kernel cannot run any handler and kills the process
 * at once, and whatever the cache holds is left to the crash guard. With
 * one, the fault handler (cache/ucopy.c, installed SA_ONSTACK) runs, the
 * shim writes back, and the process dies of the same SIGSEGV.
 *
 * Invariants:
 *   (1) A thread gets our stack only when it has none: a program that set
 *       its own (sigaltstack) keeps it, and one it sets later replaces ours.
 *   (2) Our stack is released only by the thread that owns it, after
 *       turning it off if it is still the active one: a signal never runs
 *       on freed memory. A thread that ends by returning, pthread_exit or
 *       cancellation releases it (cleanup handler); the main thread keeps
 *       its own until the exit.
 *   (3) Only once there is something to save: the thread that makes the
 *       cache gets one then (fdtab.c wc_cache_get), and every thread
 *       started after it at its start. A thread started before the cache
 *       that overflows its stack dies at once, as without one, and its
 *       process's cached bytes are the crash guard's to replay, as after a
 *       SIGKILL. A process that never caches makes none: one mmap, one
 *       mprotect and two sigaltstack fewer at each start (8 us of a
 *       /bin/true's 0.7 ms here) and at each thread's start and end.
 *   (4) Cost: one mmap, one mprotect (the guard page) and one sigaltstack
 *       per such thread, the same to release; nothing per write. Pages of
 *       the stack are only touched when a handler runs on it.
 *   (5) pthread_create registers the process for the engine's membarrier
 *       (cache/cache_int.h, wcache/blk.h (3)) before its first thread,
 *       while it has one: registering a process that has threads waits
 *       for an RCU grace period (the kernel's synchronize_rcu: 20 ms and
 *       more in a VM), which the cache's creation by a worker thread paid
 *       (a program writing from two threads took 47 ms where two
 *       processes took 13). The engine's own registration at the cache's
 *       creation then returns at once. A process that never caches pays
 *       one cheap system call at its first thread.
 */
#include <linux/membarrier.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/raw.h"

#define ALT_SIZE (256u << 10)     /* room for a write-back from a handler */
#define ALT_GUARD 4096u           /* PROT_NONE below it */

/* The mapping wc_altstack_add gave this thread, or NULL. */
static WC_TLS void *t_alt;

/* Give the calling thread an alternate stack if it has none (nor one of
 * ours already). Returns the mapping (to release with wc_altstack_drop)
 * or NULL. */
WC_ONCE
void *wc_altstack_add(void)
{
    stack_t cur;
    if (t_alt || sigaltstack(NULL, &cur) != 0 ||
        !(cur.ss_flags & SS_DISABLE))
        return NULL;                                     /* invariant (1) */
    void *m = REAL(mmap)(NULL, ALT_SIZE + ALT_GUARD, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                             MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    mprotect(m, ALT_GUARD, PROT_NONE);
    stack_t ss = {.ss_sp = (char *)m + ALT_GUARD, .ss_size = ALT_SIZE};
    if (sigaltstack(&ss, NULL) != 0) {
        REAL(munmap)(m, ALT_SIZE + ALT_GUARD);
        return NULL;
    }
    t_alt = m;
    return m;
}

/* Release what wc_altstack_add gave this thread (nothing if none). */
void wc_altstack_drop(void)
{
    void *m = t_alt;
    if (!m)
        return;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
        cur.ss_sp == (char *)m + ALT_GUARD) {
        if (cur.ss_flags & SS_ONSTACK)
            return;     /* running on it (a handler ends the thread) */
        stack_t off = {.ss_flags = SS_DISABLE};
        if (sigaltstack(&off, NULL) != 0)
            return;                                      /* invariant (2) */
    }
    t_alt = NULL;
    REAL(munmap)(m, ALT_SIZE + ALT_GUARD);
}

void wc_membarrier_register(void)
{
#ifndef __SANITIZE_THREAD__     /* as the engine (cache/cache.c) */
    wc_raw_syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                   0, 0, 0, 0, 0);
#endif
}

struct start {
    void *(*fn)(void *);
    void *arg;
};

static void drop_cleanup(void *unused)
{
    (void)unused;
    wc_altstack_drop();
    wc_blk_thread_end();        /* wcache/blk.h invariant (4) */
}

static void *thread_start(void *p)
{
    struct start s = *(struct start *)p;
    free(p);
    /* Invariant (3); none once the shim has stopped for good (proc.c
     * invariant (8)). */
    if (__atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE) &&
        wc_state != WC_ST_OFF)
        wc_altstack_add();
    void *ret;
    pthread_cleanup_push(drop_cleanup, NULL);
    ret = s.fn(s.arg);
    pthread_cleanup_pop(1);
    return ret;
}

WC_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
                             void *(*fn)(void *), void *arg)
{
    /* Invariant (5): the engine's membarrier registered while this is
     * still the process's one thread. */
    if (__atomic_load_n(&wc_solo, __ATOMIC_RELAXED) &&
        wc_state == WC_ST_ON) {
        wc_membarrier_register();
        wc_own_fd_table_ready();        /* ownfd.c invariant (6) */
    }
    wc_solo_end();              /* before the thread can run */
    struct start *s = malloc(sizeof *s);
    if (!s)
        return REAL(pthread_create)(t, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    int r = REAL(pthread_create)(t, attr, thread_start, s);
    if (r != 0)
        free(s);
    return r;
}
