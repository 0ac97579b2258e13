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
 *   (4) Cost: one sigaltstack at a thread's start (set, asking what was
 *       set before), one at its end (off, asking the same);
 *       nothing per write. The stacks of ended threads are kept for the
 *       next ones (ALT_KEPT at most: address space only, NORESERVE), so
 *       that a program starting a thread per task does not pay an mmap,
 *       an mprotect (the guard page) and an munmap (a TLB shoot-down on
 *       every CPU the process runs on) per thread (probe AD F3: 4,000
 *       short threads 0.77x of the kernel's time). Pages of a stack are
 *       only touched when a handler runs on it.
 *   (5) pthread_create registers the process for the engine's membarrier
 *       (cache/cache_int.h, wcache/blk.h (3)) before its first thread,
 *       while it has one: registering a process that has threads waits
 *       for an RCU grace period (the kernel's synchronize_rcu: 20 ms and
 *       more in a VM), which the cache's creation by a worker thread paid
 *       (a program writing from two threads took 47 ms where two
 *       processes took 13). The engine's own registration at the cache's
 *       creation then returns at once. A process that never caches pays
 *       one cheap system call at its first thread. It grows the
 *       descriptor table then too, for the same reason (ownfd.c (6)).
 *       Before the shim's constructor has run too (WC_ST_INIT): the
 *       constructors of the program's libraries run before a preloaded
 *       library's, and one may start threads (OpenBLAS's pool; probe AD
 *       F5: the first cached write of such a program then paid both
 *       grace periods, 2,000 small writes 0.07x).
 *   (6) Without it, the kernel runs a handler the program installed with
 *       SA_ONSTACK, having set no stack of its own, on the thread's stack;
 *       with it, on ours: so ours is as large as the thread's own stack
 *       (a thread made through pthread_create: its attribute's size or
 *       glibc's default; the first thread: RLIMIT_STACK, 8 MiB by
 *       default, as the program last set it through the shim; between
 *       256 KiB and 1 GiB: address space only, NORESERVE; 256 KiB under a
 *       finite RLIMIT_AS, which it would count against; probe AE F2: a
 *       handler using 20 MB on a thread of 128 MiB died on the 64 MiB
 *       stack then), and what a handler is told of it is what the kernel
 *       would tell without it: sigaltstack, no stack, while ours is the
 *       one set (probe AC F6: a handler using 512 KiB died of SIGSEGV on
 *       the 256 KiB one, and the program saw a stack it never set); its
 *       ucontext's uc_stack, no stack either (wc_altstack_uc_stack,
 *       around the program's handlers: the kernel restores the stack
 *       from there at their return; probe AE F3). Where the kernel would
 *       have had no room on the interrupted stack to run a fault's
 *       handler at all (a stack overflow), the process dies of the
 *       fault as it would have (wc_altstack_undeliverable, cache/ucopy.c
 *       (5); probe AE F1: the program's SIGSEGV handler ran on ours and
 *       chose the exit status). One difference stays: a handler running
 *       on ours gets EPERM from a sigaltstack that would set one.
 *   (7) So do the threads glibc makes itself to run a function of the
 *       program's, which do not go through this file's pthread_create:
 *       a timer's or a message queue's SIGEV_THREAD notification
 *       (timer_create, mq_notify), getaddrinfo_a's, and C11's
 *       thrd_create. Their wrappers end the one-thread fast paths first
 *       (probe AD F1: a SIGEV_THREAD timer's writes and the main thread's
 *       to one cached file ran both without locks: lost and torn lines,
 *       SIGSEGV, a hang). Such a thread gets no signal stack of ours.
 *       POSIX aio's workers run none of the program's code; a request's
 *       SIGEV_THREAD completion does (aio.c asks).
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <mqueue.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/raw.h"
#include "wcache/ucopy.h"

#define ALT_MIN (256ul << 10)     /* room for a write-back from a handler */
#define ALT_MAX (1ul << 30)       /* address space only (NORESERVE) */
#define ALT_GUARD 4096u           /* PROT_NONE below it */
#ifndef SS_AUTODISARM
#define SS_AUTODISARM ((int)(1u << 31))     /* the kernel's (4.7) */
#endif

/* The mapping wc_altstack_add gave this thread (NULL: none), its
 * stack's size, and the ss_flags a handler's ucontext would show of the
 * thread's alternate stack without it (the kernel's: 0 in a process's
 * first thread that never set one, SS_DISABLE in a thread made later). */
static WC_TLS void *t_alt;
static WC_TLS size_t t_alt_size;
static WC_TLS int t_uc_flags;

/* A finite RLIMIT_AS (atomic; with g_alt_size). */
static int g_as_finite;

/* Invariant (6): as large as the process's first thread's stack,
 * RLIMIT_STACK (8 MiB unless set), between ALT_MIN and ALT_MAX; ALT_MIN
 * under a finite RLIMIT_AS, where the address space it takes is the
 * program's. */
static size_t alt_size_now(void)
{
    struct rlimit rl;
    int finite = wc_raw_syscall(SYS_prlimit64, 0, RLIMIT_AS, 0, (long)&rl,
                                0, 0) == 0 && rl.rlim_cur != RLIM_INFINITY;
    __atomic_store_n(&g_as_finite, finite, __ATOMIC_RELAXED);
    if (finite)
        return ALT_MIN;
    if (wc_raw_syscall(SYS_prlimit64, 0, RLIMIT_STACK, 0, (long)&rl, 0,
                       0) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 8ul << 20;
    size_t n = (size_t)rl.rlim_cur & ~(size_t)4095;
    return n < ALT_MIN ? ALT_MIN : n > ALT_MAX ? ALT_MAX : n;
}

/* alt_size_now's answer, asked again after the program changes either
 * limit through the shim (wc_altstack_limits_changed); 0: to ask. */
static size_t g_alt_size;

static size_t alt_size(void)
{
    size_t n = __atomic_load_n(&g_alt_size, __ATOMIC_RELAXED);
    if (!n) {
        n = alt_size_now();
        __atomic_store_n(&g_alt_size, n, __ATOMIC_RELAXED);
    }
    return n;
}

void wc_altstack_limits_changed(void)
{
    __atomic_store_n(&g_alt_size, 0, __ATOMIC_RELAXED);
}

/* Sanitizer runtimes call sigaltstack while they start, before anything
 * of ours may run instrumented (as getrlimit: ownfd.c): these three are
 * not instrumented. */
#define NO_SANITIZE __attribute__((no_sanitize_thread, no_sanitize_address))

/* The kernel's sigaltstack. */
NO_SANITIZE
static int k_sigaltstack(const stack_t *ss, stack_t *old)
{
    long r = wc_raw_syscall(SYS_sigaltstack, (long)ss, (long)old, 0, 0, 0,
                            0);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

/* Is the stack `cur` describes the one wc_altstack_add set? */
NO_SANITIZE
static int is_ours(const stack_t *cur)
{
    return t_alt && !(cur->ss_flags & SS_DISABLE) &&
           cur->ss_sp == (char *)t_alt + ALT_GUARD;
}

/* Invariant (6): the program is told of no stack of ours. */
NO_SANITIZE
WC_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
    if (k_sigaltstack(ss, old) != 0)
        return -1;
    if (old && is_ours(old)) {
        old->ss_sp = NULL;
        old->ss_size = 0;
        old->ss_flags = SS_DISABLE;
    }
    return 0;
}

/* ---- stacks kept for the next threads (invariant (4)) ------------------ */

/* Stacks of ended threads, turned off by their owner before they came
 * here (invariant (2)), for threads started later: a slot holds one
 * mapping or NULL, taken and given with compare-and-swap (no lock: a
 * thread that makes the cache may be in a handler, wc_cache_get), its
 * size in g_kept_size, written before the mapping is published. */
#define ALT_KEPT 16
static void *g_kept[ALT_KEPT];
static size_t g_kept_size[ALT_KEPT];
#define KEPT_FILLING ((void *)1)    /* a slot being given: its size next */

static void *kept_take(size_t size)
{
    for (int i = 0; i < ALT_KEPT; i++) {
        void *m = __atomic_load_n(&g_kept[i], __ATOMIC_ACQUIRE);
        if (!m || m == KEPT_FILLING)
            continue;
        /* Read while the slot holds m: once taken, another thread's
         * give may fill it again. A mapping's size is its own. */
        size_t had = __atomic_load_n(&g_kept_size[i], __ATOMIC_RELAXED);
        if (!__atomic_compare_exchange_n(&g_kept[i], &m, NULL, 0,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        if (had == size)
            return m;
        REAL(munmap)(m, had + ALT_GUARD);   /* a limit changed since */
    }
    return NULL;
}

/* 1 when kept, 0 when every slot is taken (the caller unmaps it). */
static int kept_give(void *m, size_t size)
{
    for (int i = 0; i < ALT_KEPT; i++) {
        void *none = NULL;
        if (__atomic_load_n(&g_kept[i], __ATOMIC_RELAXED))
            continue;
        /* The slot is ours once the exchange succeeds; its size is read
         * by a taker only after it saw the mapping (release). */
        if (__atomic_compare_exchange_n(&g_kept[i], &none, KEPT_FILLING, 0,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            __atomic_store_n(&g_kept_size[i], size, __ATOMIC_RELAXED);
            __atomic_store_n(&g_kept[i], m, __ATOMIC_RELEASE);
            return 1;
        }
    }
    return 0;
}

/* Give the calling thread an alternate stack if it has none (nor one of
 * ours already), as large as its own stack `own` (0: the process's
 * first thread, or unknown). Returns the mapping (to release with
 * wc_altstack_drop) or NULL. Set and asked in one call: a stack found set
 * already (a sanitizer's, set before the thread's function ran) is put
 * back. */
WC_ONCE
void *wc_altstack_add(size_t own)
{
    if (t_alt)
        return NULL;
    size_t size = alt_size();
    if (own && !__atomic_load_n(&g_as_finite, __ATOMIC_RELAXED)) {
        size = (own + 4095) & ~(size_t)4095;
        size = size < ALT_MIN ? ALT_MIN : size > ALT_MAX ? ALT_MAX : size;
    }
    void *m = kept_take(size);
    if (!m) {
        m = REAL(mmap)(NULL, size + ALT_GUARD, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                           MAP_STACK, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        mprotect(m, ALT_GUARD, PROT_NONE);
    }
    stack_t ss = {.ss_sp = (char *)m + ALT_GUARD, .ss_size = size}, old;
    if (k_sigaltstack(&ss, &old) != 0) {
        m = NULL;       /* running on one already (EPERM): it stays */
    } else if (!(old.ss_flags & SS_DISABLE)) {
        /* Invariant (1): theirs again. */
        old.ss_flags &= SS_AUTODISARM;
        k_sigaltstack(&old, NULL);
        m = NULL;
    }
    if (!m) {
        void *had = (char *)ss.ss_sp - ALT_GUARD;
        if (!kept_give(had, size))
            REAL(munmap)(had, size + ALT_GUARD);
        return NULL;
    }
    t_alt = m;
    t_alt_size = size;
    t_uc_flags = own || wc_raw_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0) !=
                            wc_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0)
                     ? SS_DISABLE : 0;
    return m;
}

/* Release what wc_altstack_add gave this thread (nothing if none): off
 * and asked in one call; a stack the program set since is put back. */
void wc_altstack_drop(void)
{
    void *m = t_alt;
    if (!m)
        return;
    stack_t off = {.ss_flags = SS_DISABLE}, old;
    if (k_sigaltstack(&off, &old) != 0) {
        /* EPERM: running on the one set (a handler ends the thread). If
         * that is ours, it stays (invariant (2)); if the program's, ours
         * is set no more. */
        stack_t cur;
        if (k_sigaltstack(NULL, &cur) != 0 || is_ours(&cur))
            return;
    } else if (!(old.ss_flags & SS_DISABLE) && !is_ours(&old)) {
        old.ss_flags &= SS_AUTODISARM;
        k_sigaltstack(&old, NULL);      /* the program's, set since */
    }
    t_alt = NULL;
    if (!kept_give(m, t_alt_size))
        REAL(munmap)(m, t_alt_size + ALT_GUARD);
}

/* ---- what a handler on our stack sees (invariant (6)) ----------------- */

/* Is the frame of ucontext uc (a signal delivered now) on this thread's
 * stack of ours? Its [lo, hi). */
static int frame_on_ours(const void *uc, const char **lo, const char **hi)
{
    if (!t_alt)
        return 0;
    *lo = (const char *)t_alt + ALT_GUARD;
    *hi = *lo + t_alt_size;
    return (const char *)uc >= *lo && (const char *)uc < *hi;
}

/* The kernel alone, the thread having no alternate stack, puts the frame
 * of a handler on the interrupted stack: below the stack pointer's red
 * zone, as large as the one it put on ours (the handler's return
 * address, the ucontext, the siginfo, the FPU state: a few KiB). When
 * that room is not there (not readable: a guard page, a stack that may
 * not grow further) and the fault itself was on the stack there, the
 * kernel could not run the handler and the process died of the signal.
 * A fault elsewhere (a NULL pointer) with the stack pointer near the
 * main thread's growable end is delivered: the kernel grows the stack,
 * which the test here cannot see, so it says "deliverable" there. */
int wc_altstack_undeliverable(const siginfo_t *si, const ucontext_t *uc)
{
    const char *lo, *hi;
    if (!frame_on_ours(uc, &lo, &hi))
        return 0;               /* delivered where the kernel would */
    uintptr_t frame = (uintptr_t)(hi - (const char *)uc) + 8;
    if (frame > (64u << 10))
        return 0;               /* not the first frame on ours: unknown */
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    uintptr_t at = (uintptr_t)si->si_addr;
    if (sp < frame + 128 + (64u << 10))
        return 0;
    uintptr_t flo = sp - 128 - frame;
    if (at < flo - (64u << 10) || at >= sp + 4096)
        return 0;               /* the fault was not on the stack there */
    char buf[1024];
    for (uintptr_t p = flo; p < sp - 128; p += sizeof buf) {
        size_t n = sp - 128 - p < sizeof buf ? sp - 128 - p : sizeof buf;
        if (wc_read_readable(buf, (const void *)p, n) != n)
            return 1;
    }
    return 0;
}

void wc_altstack_uc_stack(ucontext_t *uc, stack_t *saved, int show)
{
    if (!show) {
        saved->ss_flags = -1;           /* nothing hidden */
        if (!uc || !t_alt || uc->uc_stack.ss_sp != (void *)((char *)t_alt +
                                                             ALT_GUARD))
            return;
        *saved = uc->uc_stack;
        uc->uc_stack.ss_sp = NULL;
        uc->uc_stack.ss_size = 0;
        uc->uc_stack.ss_flags = t_uc_flags;
        return;
    }
    /* Put back unless the handler set one of its own there (the kernel
     * takes it at the handler's return). */
    if (saved->ss_flags != -1 && uc && uc->uc_stack.ss_sp == NULL &&
        uc->uc_stack.ss_size == 0 && uc->uc_stack.ss_flags == t_uc_flags)
        uc->uc_stack = *saved;
}

void wc_membarrier_register(void)
{
#ifndef __SANITIZE_THREAD__     /* as the engine (cache/cache.c) */
    wc_raw_syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                   0, 0, 0, 0, 0);
#endif
}

/* A thread of the program's is about to be made: invariant (5) while
 * this is still its one thread, and the one-thread fast paths end
 * (shim.h wc_solo) before the thread can run. */
void wc_thread_to_come(void)
{
    if (__atomic_load_n(&wc_solo, __ATOMIC_RELAXED) &&
        (wc_state == WC_ST_ON || wc_state == WC_ST_INIT)) {
        wc_membarrier_register();
        wc_own_fd_table_ready();        /* ownfd.c invariant (6) */
    }
    wc_solo_end();
}

struct start {
    void *(*fn)(void *);
    void *arg;
    size_t stack;               /* the thread's stack size, 0: unknown */
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
        wc_altstack_add(s.stack);
    void *ret;
    pthread_cleanup_push(drop_cleanup, NULL);
    ret = s.fn(s.arg);
    pthread_cleanup_pop(1);
    return ret;
}

WC_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
                             void *(*fn)(void *), void *arg)
{
    wc_thread_to_come();
    struct start *s = malloc(sizeof *s);
    if (!s)
        return REAL(pthread_create)(t, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    /* Its stack's size (invariant (6)): the attribute's, or glibc's
     * default for new threads (fixed at start-up from RLIMIT_STACK, or
     * set with pthread_setattr_default_np). */
    s->stack = 0;
    pthread_attr_t def;
    if (attr)
        pthread_attr_getstacksize(attr, &s->stack);
    else if (pthread_getattr_default_np(&def) == 0) {
        pthread_attr_getstacksize(&def, &s->stack);
        pthread_attr_destroy(&def);
    }
    int r = REAL(pthread_create)(t, attr, thread_start, s);
    if (r != 0)
        free(s);
    return r;
}

/* ---- threads glibc makes itself (invariant (7)) ------------------------ */

int wc_sigev_by_thread(const struct sigevent *sev)
{
    struct sigevent e;
    return sev && wc_read_readable(&e, sev, sizeof e) == sizeof e &&
           e.sigev_notify == SIGEV_THREAD;
}

WC_EXPORT int timer_create(clockid_t clk, struct sigevent *sev, timer_t *t)
{
    int (*next)(clockid_t, struct sigevent *, timer_t *) =
        WC_NEXT(int (*)(clockid_t, struct sigevent *, timer_t *),
                timer_create);
    if (!next)
        return (int)wc_ret(-ENOSYS);
    if (wc_sigev_by_thread(sev))
        wc_thread_to_come();
    return next(clk, sev, t);
}

WC_EXPORT int mq_notify(mqd_t mq, const struct sigevent *sev)
{
    int (*next)(mqd_t, const struct sigevent *) =
        WC_NEXT(int (*)(mqd_t, const struct sigevent *), mq_notify);
    if (!next)
        return (int)wc_ret(-ENOSYS);
    if (wc_sigev_by_thread(sev))
        wc_thread_to_come();
    return next(mq, sev);
}

WC_EXPORT int getaddrinfo_a(int mode, struct gaicb *list[], int n,
                            struct sigevent *sev)
{
    int (*next)(int, struct gaicb *[], int, struct sigevent *) =
        WC_NEXT(int (*)(int, struct gaicb *[], int, struct sigevent *),
                getaddrinfo_a);
    if (!next)
        return EAI_SYSTEM;
    if (wc_sigev_by_thread(sev))
        wc_thread_to_come();
    return next(mode, list, n, sev);
}

/* C11's thrd_create makes its thread with glibc's own pthread_create,
 * not through this file's. */
WC_EXPORT int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    int (*next)(thrd_t *, thrd_start_t, void *) =
        WC_NEXT(int (*)(thrd_t *, thrd_start_t, void *), thrd_create);
    if (!next)
        return thrd_error;
    wc_thread_to_come();
    return next(thr, fn, arg);
}
