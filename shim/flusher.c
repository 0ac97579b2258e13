/*
 * flusher.c - the flusher: a thread that writes back the batches of
 * completed pages streams hand over (cache/async.c) while the program
 * goes on writing, and what has been dirty for half of WCACHE_FLUSH_MS
 * (the kernel's flusher threads, in user space), reaps the crash
 * guard's intermediate child, and starts a guard again when the one
 * watching the store went (guard.c invariant (6)).
 *
 * Invariants:
 *   (1) The flusher thread has every signal blocked and calls only
 *       wc_cache_async_run, wc_cache_flush_expired and wc_guard_check:
 *       data is on disk at most about WCACHE_FLUSH_MS after it was
 *       written, even while the program sleeps. It ends when the
 *       program's threads have all ended, so that glibc's "last thread
 *       calls exit(0)" still ends the process.
 *   (2) It is started with the cache, by the write that first caches a
 *       file (fdtab.c invariant (6)), and never inside one of the
 *       program's signal handlers, where pthread_create (malloc, glibc's
 *       stack cache lock) may deadlock on a lock the interrupted code
 *       holds. So the start waits (wc_flusher_deferred) while the shim's
 *       stand-in (signals.c invariant (5): every handler set with
 *       sigaction, signal and glibc's other names for them) runs one of
 *       the program's handlers on this thread (wc_in_held_handler), what-
 *       ever the mask (a handler may unblock its own signal, or have
 *       SA_NODEFER); and, for a signal the program handles without the
 *       stand-in (a raw rt_sigaction, a fault's handler) that this thread
 *       has blocked (a handler blocks its own), while the kernel's signal
 *       frame (its return address, the sa_restorer, then the interrupted
 *       context) is found on the stack above the caller (frame_above:
 *       1 MiB at most, read with process_vm_readv, else with the copy
 *       whose faults the shim catches). The start is tried again at each of
 *       the next WC_FLUSHER_EAGER writes, then every WC_FLUSHER_RETRY
 *       writes, and at each writable open. A program that keeps a handled
 *       signal blocked outside any handler (to take it with sigwait,
 *       sigtimedwait or a signalfd, as daemons and their worker threads
 *       do) gets its flusher at once: the mask alone had kept it waiting
 *       for good, the data reaching disk at the consistency points only
 *       (probe Z). A process that caches nothing makes no thread, and
 *       glibc keeps its single-thread fast paths (malloc, stdio).
 *       Limits: a raw handler (no stand-in) with SA_NODEFER, or that runs
 *       deeper than 1 MiB below its frame or on a stack it switched to
 *       (swapcontext), or one set through a function the shim does not
 *       see (sigaction found with dlsym in libc's own handle), shows
 *       nothing, so a cache made there still starts the thread there; a
 *       handler left with a jump still counts as running for the writes
 *       made deeper than it ran, which wait for one made higher up
 *       (probe AB); and a program whose writes
 *       all run inside its handlers (a timer's) and that then makes no
 *       call the shim sees outside one gets no flusher until such a call,
 *       its data reaching disk at the consistency points only (probe Z,
 *       README).
 *   (3) When the shim stops for good while the program runs (proc.c
 *       invariant (8)), the flusher is woken and waited for until it has
 *       left its loop (wc_flusher_stop), so that it makes no call of its
 *       own after the program's next one (a seccomp filter on every
 *       thread).
 *   (4) Batches are taken from the cache only while this thread runs its
 *       loop (wc_cache_async with the kick, then NULL as it leaves, after
 *       which it writes what was handed over): with no flusher, a
 *       stream's writer writes its pages back itself, as before.
 *   (5) The flusher uses the descriptor table of the thread that made
 *       it. When the program's only thread is about to take a table of
 *       its own (proc.c invariant (10)), the flusher leaves its loop as in
 *       (3) (wc_flusher_leave), and a new one is started, in the new
 *       table, by invariant (2)'s retry at the next write.
 *
 *       States of the flusher:
 *
 *           none --first cached write (2)--> running --wc_flusher_stop
 *             (3) / program gone (1)--> left for good
 *           running --wc_flusher_leave (5)--> none
 *
 *   (6) The flusher runs as the kernel's flusher threads do: SCHED_OTHER,
 *       on any CPU the process's cpuset allows. A real-time program
 *       (SCHED_FIFO, SCHED_RR: the policy and the CPUs of the thread that
 *       starts this one are inherited) pinned to one CPU that computes
 *       without a system call would otherwise never let its flusher run,
 *       and its data would stay off the disk past WCACHE_FLUSH_MS, where
 *       the kernel's writeback runs elsewhere (probe Z). No wait between
 *       the flusher and the program's threads only yields: each ends in
 *       sleeps (wcache/raw.h wc_backoff), or a futex, so that neither
 *       priority keeps the other from running.
 *   (7) Its own short-lived descriptors (the crash guard's lock file,
 *       wc_guard_check; /proc/self/stat, wc_program_threads_gone) would
 *       take the lowest free number for a few microseconds, and a program
 *       thread's open, dup, socket... at that moment would get another
 *       (probe AI F1: 12-25 of 450,000 reopens of /dev/null in 1.5 s).
 *       Where (8) cannot make them apart, they are made in a window
 *       (ownfd.c invariant (7)) that the flusher puts off to its next
 *       tick while a program thread is inside a call that makes a
 *       descriptor, unless no such call ended over WC_OWN_OPEN_WAITS
 *       looks in a row (a thread blocked in accept, in the open of a
 *       FIFO).
 *   (8) Its looks at files (the memory cgroup's room under a limit:
 *       memcg.c; the crash guard's lock file: guard.c; the program's
 *       threads: syscall.c) are made apart (wc_look, wc_apart_on): in a
 *       child that shares its memory but has a descriptor table of its
 *       own, empty
 *       (clone with CLONE_VM | CLONE_VFORK, then close_range with
 *       CLOSE_RANGE_UNSHARE over every number), the flusher waiting. A
 *       descriptor of its own in the program's table, even for a few
 *       microseconds, met the program's dup2 onto its number, its close
 *       of it, a fork that copies it: under a memory limit, the cgroup's
 *       files read there at each tick cost a dash script its
 *       redirections' output ("Bad file descriptor", "I/O error", lines
 *       lost; 4 of 4 runs with a tick each millisecond: test_shim_kill),
 *       and read as each cache was made, 2 of 20 runs of
 *       test_shim_shared. A window (7) now keeps the calls the shim sees
 *       off it, by making them wait; apart, nothing of the program's
 *       waits at each tick, and the calls the shim does not see (a raw
 *       syscall instruction, glibc's internal closes) cannot meet it. A
 *       look costs a clone (tens of us, every 250 ms). Where no child can be
 *       made (a seccomp filter), or none may be tried (WCACHE_GUARD=0:
 *       no probe of clone was made, and a filter may kill on it), the
 *       guard's and the threads' looks fall back to (7), the cgroup's
 *       keeps its last answer on the flusher.
 */
#include <errno.h>
#include <linux/close_range.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/clock.h"
#include "wcache/ucopy.h"

/* The flusher's thread id once it runs (0 before, and in a fork child);
 * g_flusher_starting: 1 from the start (pthread_create may have made it
 * without its id published yet), 2 when pthread_create failed. */
WC_BOOT static int g_flusher_tid, g_flusher_starting;
#define WC_GUARD_CHECK_NS 250000000ull  /* the guard's own sweep */
/* Set by the flusher as it leaves its loop for good (atomic). */
WC_BOOT static int g_flusher_left;
/* Set to make the flusher leave while the shim stays on (atomic):
 * wc_flusher_leave. */
WC_BOOT static int g_leave;
/* What the flusher sleeps on between its ticks: 1 when there is work
 * before the next tick (a batch handed over, or the stop), atomic. */
static int g_kick;

static WC_TLS int g_is_flusher;         /* this thread is the flusher */

/* Invariant (8). The child's stack (untouched until a look), used by the
 * flusher alone. */
WC_LARGE static char g_apart_stack[64u << 10];

struct apart {
    int (*fn)(void *);
    void *arg;
    int r;
};

static int apart_child(void *p)
{
    struct apart *a = p;
    if (wc_raw_syscall(SYS_close_range, 0, ~0u, CLOSE_RANGE_UNSHARE, 0, 0,
                       0) != 0)
        return 1;
    a->r = a->fn(a->arg);
    return 0;
}

int wc_apart_on(char *stack_top, int (*fn)(void *), void *arg)
{
    /* A clone: only where guard.c's probe (its invariant (8)) found the
     * call allowed, as the cache was made. With WCACHE_GUARD=0 nothing
     * asked, and a seccomp filter that kills on clone would kill the
     * program: the looks stay in its table then, as before. */
    if (!wc_cfg.guard)
        return -1;
    struct apart a = {fn, arg, -1};
    int e = errno;
    /* The child starts with every signal blocked (a program thread's
     * mask may let the terminal's SIGINT run the program's handler in
     * it, in the program's memory); the flusher's are blocked already. */
    uint64_t all = ~0ull, old = 0;
    int masked = !g_is_flusher;
    if (masked)
        wc_raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all,
                       (long)&old, 8, 0, 0);
    long pid = wc_guard_clone(CLONE_VM | CLONE_VFORK | CLONE_FILES,
                              stack_top, apart_child, &a);
    if (pid > 0)        /* exit signal 0: only __WCLONE waits for it */
        wc_raw_syscall(SYS_wait4, pid, 0, __WCLONE, 0, 0, 0);
    if (masked)
        wc_raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8,
                       0, 0);
    errno = e;
    return pid > 0 ? a.r : -1;
}

int wc_look(int (*fn)(void *), void *arg, int may_put_off)
{
    int r;
    if (g_is_flusher &&
        (r = wc_apart_on(g_apart_stack + sizeof g_apart_stack, fn, arg)) >= 0)
        return r;
    if (!wc_fd_window_open(may_put_off))
        return -1;
    r = fn(arg);
    wc_fd_window_close();
    return r;
}

int wc_on_flusher(void)
{
    return g_is_flusher;
}

/* The engine has handed over a batch (cache/async.c): wake the flusher
 * unless it is already awake. One system call per batch of up to 128
 * pages, none while the flusher is busy. */
static void flusher_kick(void)
{
    if (!__atomic_exchange_n(&g_kick, 1, __ATOMIC_ACQ_REL))
        wc_raw_syscall(SYS_futex, (long)&g_kick, FUTEX_WAKE_PRIVATE, 1, 0,
                       0, 0);
}

/* Write the batches the program's threads handed over (invariant (4)). */
static void run_batches(struct wc_cache *c)
{
    wc_depth = 1;
    wc_cache_async_run(c);
    wc_depth = 0;
}

static void *flusher_main(void *arg)
{
    (void)arg;
    uint64_t period_ns = (wc_cfg.flush_ms / 4 ? wc_cfg.flush_ms / 4 : 1) *
                         1000000ull;
    uint64_t age_ns = wc_cfg.flush_ms * 1000000ull / 2;
    /* Look for the program's end about every 250 ms (it costs a read of
     * /proc/self/stat), whatever the period. */
    uint64_t look_ns = period_ns < 250000000u ? 250000000u : period_ns;
    uint64_t next_tick = wc_now_ns() + period_ns, next_look = next_tick;
    /* Whether the crash guard still watches, every 250 ms whatever the
     * period (guard.c invariant (6)). */
    uint64_t next_guard = wc_now_ns() + WC_GUARD_CHECK_NS;
    struct wc_cache *c = NULL;          /* the one batches are taken from */
    __atomic_store_n(&g_flusher_tid, (int)REAL(syscall)(SYS_gettid),
                     __ATOMIC_RELEASE);
    g_is_flusher = 1;
    prctl(PR_SET_NAME, "wcache-flush");
    /* WC_ST_VFORK: a vfork child runs in this memory a while (proc.c
     * invariant (7)); the engine is the parent's, and stays its. */
    while ((wc_state == WC_ST_ON || wc_state == WC_ST_VFORK) &&
           !__atomic_load_n(&g_leave, __ATOMIC_ACQUIRE)) {
        wc_guard_reap();        /* at once: nobody else may see that child */
        if (!c && (c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE)))
            wc_cache_async(c, flusher_kick);
        uint64_t now = wc_now_ns();
        uint64_t wake = next_tick < next_guard ? next_tick : next_guard;
        if (now < wake && !__atomic_load_n(&g_kick, __ATOMIC_ACQUIRE)) {
            uint64_t d = wake - now;
            struct timespec ts = {(time_t)(d / 1000000000u),
                                  (long)(d % 1000000000u)};
            wc_raw_syscall(SYS_futex, (long)&g_kick, FUTEX_WAIT_PRIVATE, 0,
                           (long)&ts, 0, 0);
        }
        __atomic_store_n(&g_kick, 0, __ATOMIC_RELEASE);
        if ((wc_state != WC_ST_ON && wc_state != WC_ST_VFORK) ||
            __atomic_load_n(&g_leave, __ATOMIC_ACQUIRE))
            break;
        if (c)
            run_batches(c);
        now = wc_now_ns();
        if (c && now >= next_guard) {
            next_guard = now + WC_GUARD_CHECK_NS;
            wc_depth = 1;
            wc_guard_check(c);          /* guard.c invariant (6) */
            wc_depth = 0;
        }
        if (now < next_tick)
            continue;
        next_tick = now + period_ns;
        /* main called pthread_exit and every other program thread has
         * ended: glibc calls exit(0) when the last thread ends, and that
         * is this one now (the destructor then flushes). */
        if (now >= next_look) {
            next_look = now + look_ns;
            if (wc_program_threads_gone())
                break;
        }
        if (!c)
            continue;           /* none: it starts with the cache (2) */
        wc_depth = 1;
        wc_cache_flush_expired(c, age_ns);
        wc_depth = 0;
    }
    if (c) {
        /* Writers write back themselves from now on; what they handed
         * over is written before the program's next call (3). */
        wc_cache_async(c, NULL);
        run_batches(c);
    }
    wc_guard_reap();
    __atomic_store_n(&g_flusher_left, 1, __ATOMIC_RELEASE);
    return NULL;
}

void wc_flusher_stop(void)
{
    if (!wc_flusher_tid())
        return;
    __atomic_store_n(&g_kick, 1, __ATOMIC_RELEASE);
    wc_raw_syscall(SYS_futex, (long)&g_kick, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 1000 && !__atomic_load_n(&g_flusher_left,
                                                 __ATOMIC_ACQUIRE); i++)
        REAL(clock_nanosleep)(CLOCK_MONOTONIC, 0, &ms, NULL);
}

int wc_flusher_tid(void)
{
    int tid;
    for (unsigned i = 0;
         !(tid = __atomic_load_n(&g_flusher_tid, __ATOMIC_ACQUIRE)) &&
         __atomic_load_n(&g_flusher_starting, __ATOMIC_ACQUIRE) == 1;
         i++)
        wc_backoff(i);
    return tid;
}

/* Make the flusher thread (detached): with a 64 KiB stack if `small`,
 * rt & 1: SCHED_OTHER, rt & 2: on every CPU the cpuset allows. Not
 * through our pthread_create: the flusher is no program thread
 * (wc_solo), and with every signal blocked needs no signal stack.
 * Returns 0 or an errno. */
static int flusher_create(int small, int rt)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (small)
        pthread_attr_setstacksize(&a, 64 << 10);
    if (rt & 1) {
        struct sched_param sp = {0};
        pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&a, SCHED_OTHER);
        pthread_attr_setschedparam(&a, &sp);
    }
    if (rt & 2) {
        cpu_set_t cpus;
        memset(&cpus, 0xff, sizeof cpus);   /* the kernel keeps the
                                               cpuset's own */
        pthread_attr_setaffinity_np(&a, sizeof cpus, &cpus);
    }
    int r = REAL(pthread_create)(&t, &a, flusher_main, NULL);
    pthread_attr_destroy(&a);
    return r;
}

int wc_sched_realtime(void)
{
    int pol = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
    return pol == SCHED_FIFO || pol == SCHED_RR;
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
    sigset_t old;
    wc_signals_block(&old);
    /* glibc puts the program's static TLS on every thread's stack: a
     * large one does not fit in 64 KiB (EINVAL), glibc's default size
     * (only touched pages cost memory) does. A real-time program's
     * flusher is made SCHED_OTHER on every CPU (invariant (6)) by
     * pthread_create itself, before it runs: from inside, it might
     * never get to. */
    int rt = wc_sched_realtime() ? 3 : 0;
    int r = flusher_create(1, rt);
    if (r == EINVAL)
        r = flusher_create(0, rt);
    /* A filter may refuse one of the two calls (probe AB): either one
     * alone still lets the flusher run beside a program computing on its
     * CPU; then as the program's threads. */
    for (int k = 1; r && rt && k >= 0; k--)
        r = flusher_create(0, k ? 1 : 2);
    if (r && rt)
        r = flusher_create(0, 0);
    if (r)
        __atomic_store_n(&g_flusher_starting, 2, __ATOMIC_RELEASE);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        /* proc.c (8b): without it no deadline is kept, nor the guard
         * replaced, nor its start's failure seen. */
        wc_off_want("no flusher thread (%s)", strerror(r));
        wc_guard_reap();
    }
}

/* ---- where it may start (invariant 2) --------------------------------- */

/* g_handled: bit sig - 1 for each signal the program has set a handler of
 * its own for, without SA_NODEFER (never cleared: a handler may still be
 * running after it is reset). An atomic, set by sigaction, signal and raw
 * rt_sigaction. */
static uint64_t g_handled;
/* The cache exists and the flusher's start waits (atomic); g_retry_in:
 * writes until the next try; g_tries: tries so far. */
int wc_flusher_deferred;
static int g_retry_in, g_tries;

void wc_note_handler(int sig, int nodefer)
{
    uint64_t bit = sig >= 1 && sig <= 64 ? 1ull << (sig - 1) : 0;
    /* Set once: a program that sets its handlers again before each fork
     * (bash) would otherwise write this page in every cycle, a
     * copy-on-write fault after each fork. */
    if (bit && !nodefer &&
        !(__atomic_load_n(&g_handled, __ATOMIC_ACQUIRE) & bit))
        __atomic_or_fetch(&g_handled, bit, __ATOMIC_ACQ_REL);
}

/* The x86_64 kernel's signal frame (struct rt_sigframe), as far as
 * frame_at looks at it: the handler's return address, then the kernel's
 * struct ucontext (uc_flags, uc_link, uc_stack, then the sigcontext:
 * sixteen registers, rip, eflags, the segments, err, trapno, oldmask,
 * cr2, then the pointer to the saved FPU state), then the siginfo. */
enum {
    FR_FLAGS = 8,                       /* uc_flags */
    FR_LINK = 16,                       /* uc_link */
    FR_FPSTATE = 8 + 8 + 8 + 24 + 184,  /* uc_mcontext.fpstate */
    FR_LEN = FR_FPSTATE + 8
};

/* Is the word at `slot` (just read as `restorer`, some signal's
 * sa_restorer) the start of a signal frame? Its flags are the kernel's
 * (UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS: the last two
 * always on x86_64), its uc_link none, and its FPU state, which the
 * kernel puts just above the frame, there (or none). Not the siginfo:
 * the kernel fills it for SA_SIGINFO handlers only. */
static int frame_at(uintptr_t slot)
{
    unsigned char f[FR_LEN];
    if (wc_read_readable(f, (const void *)slot, sizeof f) != sizeof f)
        return 0;
    uint64_t flags, link, fp;
    memcpy(&flags, f + FR_FLAGS, sizeof flags);
    memcpy(&link, f + FR_LINK, sizeof link);
    memcpy(&fp, f + FR_FPSTATE, sizeof fp);
    return (flags & ~7ull) == 0 && (flags & 2) && link == 0 &&
           (fp == 0 || (fp > slot + FR_LEN && fp < slot + (64u << 10)));
}

/* Invariant (2): is a signal frame above this function's, on this
 * thread's stack (1 MiB at most), whose return address is one of
 * `restorers`? Read with wc_read_readable (ucopy.h: process_vm_readv, or
 * the copy whose faults the shim catches where a filter refuses it).
 * noinline: its own buffer lies below where the search starts. */
static __attribute__((noinline)) int frame_above(const uint64_t *restorers,
                                                 int n)
{
    uint64_t w[512];
    uintptr_t at = (uintptr_t)__builtin_frame_address(0) & ~7ul;
    for (size_t done = 0; done < (1u << 20); done += sizeof w) {
        size_t got = wc_read_readable(w, (const void *)(at + done), sizeof w);
        for (size_t i = 0; i < got / 8; i++)
            for (int k = 0; k < n; k++)
                if (w[i] == restorers[k] && frame_at(at + done + 8 * i))
                    return 1;
        if (got < sizeof w)
            return 0;           /* the end of the stack's mapping */
    }
    return 0;
}

/* Might this thread be running one of the program's handlers? A handled
 * signal blocked, and the shim's stand-in running one (signals.c
 * invariant (5)), or, for a blocked signal whose handler runs without the
 * stand-in (set behind the shim's back, or one for a fault), a signal
 * frame above returning to its restorer (invariant (2)). */
static int maybe_in_handler(void)
{
    /* The stand-in first, whatever the mask: a handler that unblocked
     * its own signal, or one with SA_NODEFER, blocks nothing (probe AB:
     * the flusher started inside one, its pthread_create then deadlocked
     * or aborted in malloc). */
    if (wc_in_held_handler())
        return 1;
    uint64_t h = __atomic_load_n(&g_handled, __ATOMIC_ACQUIRE);
    if (!h)
        return 0;
    sigset_t cur;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
        return 1;
    uint64_t restorers[4];
    int n = 0;
    for (int sig = 1; sig <= 64; sig++) {
        if (!((h >> (sig - 1)) & 1) || sigismember(&cur, sig) != 1)
            continue;
        /* The kernel's action, raw: its sa_restorer (glibc's, or the
         * program's own through a raw rt_sigaction). */
        struct {
            uint64_t handler, flags, restorer, mask;
        } k;
        if (wc_raw_syscall(SYS_rt_sigaction, sig, 0, (long)&k, 8, 0, 0) != 0)
            continue;           /* refused (a filter): the stand-in's word */
        /* Run through the stand-in: wc_in_held_handler knows. A frame
         * the stack still holds from an earlier delivery (in a buffer
         * nobody cleared since) would say "inside" for good (probe AB:
         * SIGALRM blocked around writes made from a deep function). */
        if (wc_is_stand_in((const void *)(uintptr_t)k.handler))
            continue;
        int known = 0;
        for (int i = 0; i < n; i++)
            known |= restorers[i] == k.restorer;
        if (!known && n < 4)
            restorers[n++] = k.restorer;
        else if (!known)
            return 1;           /* more than four: do not look */
    }
    return n ? frame_above(restorers, n) : 0;
}

void wc_flusher_want(void)
{
    if (!__atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&g_flusher_starting, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&wc_flusher_deferred, 0, __ATOMIC_RELAXED);
        return;
    }
    if (maybe_in_handler()) {
        /* Tried again at each of the next writes (a handler that made
         * the cache returns after its own few), then every
         * WC_FLUSHER_RETRY (signals blocked for long: a system call per
         * write would cost more than the cache saves). */
        __atomic_store_n(&g_retry_in,
                         __atomic_add_fetch(&g_tries, 1, __ATOMIC_RELAXED) <
                                 WC_FLUSHER_EAGER
                                          ? 1 : WC_FLUSHER_RETRY,
                         __ATOMIC_RELAXED);
        if (!__atomic_exchange_n(&wc_flusher_deferred, 1, __ATOMIC_ACQ_REL))
            wc_log(WC_LOG_DEBUG, "flusher: waits (a handled signal is "
                   "blocked: maybe inside a handler)");
        return;
    }
    __atomic_store_n(&wc_flusher_deferred, 0, __ATOMIC_RELAXED);
    wc_flusher_start();
}

int wc_off_wanted;

void wc_off_want(const char *fmt, ...)
{
    if (__atomic_exchange_n(&wc_off_wanted, 1, __ATOMIC_ACQ_REL))
        return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    wc_log(WC_LOG_INFO, "%s: running without the cache from the next "
           "write, everything written back first", why);
}

static void flusher_retry(void);

void wc_pending_slow(void)
{
    int e = errno;      /* io.c's solo fast path neither saves nor sets it */
    if (!__atomic_load_n(&wc_off_wanted, __ATOMIC_ACQUIRE)) {
        flusher_retry();
    } else {
        if (wc_state == WC_ST_ON)
            wc_proc_off();
        if (wc_state == WC_ST_OFF)     /* done: no more slow calls */
            __atomic_store_n(&wc_off_wanted, 0, __ATOMIC_RELAXED);
    }
    errno = e;
}

static void flusher_retry(void)
{
    if (__atomic_sub_fetch(&g_retry_in, 1, __ATOMIC_RELAXED) <= 0)
        wc_flusher_want();
}

WC_ONCE
void wc_flusher_after_fork(void)
{
    WC_RESET(g_flusher_tid, 0);
    WC_RESET(g_flusher_starting, 0);
    WC_RESET(g_flusher_left, 0);
    WC_RESET(g_kick, 0);
    WC_RESET(g_leave, 0);
    WC_RESET(wc_flusher_deferred, 0);
    WC_RESET(wc_off_wanted, 0);
    WC_RESET(g_tries, 0);
}

/* The program's only thread is about to take a descriptor table of its
 * own (proc.c invariant (10)): the flusher, which would keep the old one
 * (a file cached later would have its engine descriptor in the new table
 * only), leaves; a new one starts at the next write, in the new table.
 * 1 when none runs now; 0 when it did not leave. */
void wc_flusher_gone(void)
{
    int tid = wc_flusher_tid();
    if (!tid || !wc_flusher_leave())
        return;
    /* It left its loop; glibc ends the thread just after. A tgkill of
     * signal 0 finds it until the kernel has it gone (a second at most:
     * the caller's call then fails as it would have). */
    struct timespec t = {0, 50000};
    int pid = (int)wc_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
    for (int i = 0; i < 20000 && wc_raw_syscall(SYS_tgkill, pid, tid, 0, 0,
                                                 0, 0) == 0; i++)
        REAL(clock_nanosleep)(CLOCK_MONOTONIC, 0, &t, NULL);
}

int wc_flusher_leave(void)
{
    if (!wc_flusher_tid())
        return 1;               /* none runs */
    __atomic_store_n(&g_leave, 1, __ATOMIC_RELEASE);
    wc_flusher_stop();
    if (!__atomic_load_n(&g_flusher_left, __ATOMIC_ACQUIRE))
        return 0;               /* it did not leave within a second */
    /* A new one starts at the next write (invariant (2)'s retry). */
    __atomic_store_n(&g_flusher_tid, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_flusher_left, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_kick, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_leave, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_tries, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g_retry_in, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&g_flusher_starting, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&wc_flusher_deferred, 1, __ATOMIC_RELEASE);
    return 1;
}
