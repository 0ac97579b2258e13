/*
 * signals.c - deaths by a signal: the stand-in handlers that write back
 * before the process dies of a signal it would die of anyway, the fault
 * handler's hook, and the program's sigaction and signal for those
 * signals.
 *
 * Invariants:
 *   (1) The engine's fault handler for the non-faulting copy stays first:
 *       the program's sigaction/signal for SIGSEGV and SIGBUS are recorded
 *       through wc_fault_sigaction once the handler is installed.
 *   (2) Death by a catchable signal whose action is the default (SIGTERM,
 *       SIGINT, SIGHUP, SIGPIPE...) flushes first: while the program's
 *       action is SIG_DFL our handler stands in for it, and sigaction and
 *       signal report the program's own action, never ours. The handler
 *       flushes, restores SIG_DFL and re-raises, so the process ends as it
 *       would have, with the same status. Inside the shim (locks may be
 *       held) the death is queued and happens when the thread leaves.
 *       SIGKILL cannot be caught: the crash guard replays that. The
 *       stand-ins are installed when the cache is created (nothing to
 *       write back before), under g_sig_lock against the program's own
 *       sigaction calls in other threads.
 *   (3) Death by a synchronous fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 *       SIGTRAP, SIGSYS) at the default action or ignored (the kernel
 *       forces the default on a fault whose signal is ignored: the
 *       stand-in drops only the ones a process sends, si_code <= 0, and
 *       SIG_IGN goes back into the kernel's table for an exec or a
 *       spawn, whose image keeps it: wc_signals_exec), in any thread, stack
 *       overflow included where the thread has the shim's alternate
 *       signal stack (the one that made the cache and those started after
 *       it, altstack.c (3); another dies at once, its bytes the guard's),
 *       writes back first, then dies of the same signal with
 *       the same status and core dump. The program's own handlers run as
 *       before; a fault inside the shim writes back from a raw-forked
 *       child that holds no lock (flush_before_death).
 *   (5) A handler the program sets (sigaction, signal) for a signal that
 *       may come at any point of its run (every catchable one but the
 *       faults of its own instructions and glibc's two internal ones)
 *       never runs while its thread is inside the shim: our handler
 *       stands in, with the program's mask and flags (SA_RESETHAND
 *       emulated, since a re-sent signal must still find a handler), and
 *       when it finds the thread inside (wc_depth) it queues the signal
 *       with its siginfo (queue.c Q_SIGNAL); the thread sends it to
 *       itself again as it leaves the shim, at depth 0
 *       (rt_tgsigqueueinfo: the same siginfo), and the program's handler
 *       runs then, a few microseconds late, as if the signal had come
 *       then, with no lock of the shim held. It may leave by a jump
 *       (siglongjmp out of a SIGALRM handler: the thread stayed "inside"
 *       for good before, every later write queued, then refused, its
 *       locks held; the probe: 670 KB of acknowledged writes lost), exit,
 *       or write. Every held signal is sent again at once, every signal
 *       blocked meanwhile (wc_signals_again), so the ones after a jumping
 *       handler are pending in the kernel; blocked from the thread's last
 *       look at its queue (queue.c wc_shim_leave_slow), so that none
 *       arrives in between to be queued behind one whose handler jumps
 *       (it waited for the thread's next call: a second held signal
 *       missed, 6 runs in 300 of threads::signals_held_past_a_jump on a
 *       busy machine); one the kernel has no room for
 *       runs here (deliver_here). sigaction and signal report the
 *       kernel's action with the program's handler put back (reported).
 *       A handler set behind the shim (a raw rt_sigaction; glibc's
 *       sigset, sysv_signal and bsd_signal are made here with the shim's
 *       sigaction) still runs inside it, where the queue and invariant
 *       (2) serve it; a lock it takes there writes nothing back
 *       (open.c lock_before, lock_after: the thread may hold the engine's
 *       locks).
 *   (4) SIGKILL the process sends itself (raise, kill of its own pid,
 *       group or 0, sigqueue, tgkill or tkill of one of its threads,
 *       pthread_kill, pthread_sigqueue, and their raw system calls) is
 *       an exit: what _exit does first (wc_proc_final_flush), then the
 *       call. So a write a handler queued while its thread was inside the
 *       shim (queue.c) reaches the file when the handler then kills the
 *       process: the crash guard, which serves SIGKILL from elsewhere,
 *       replays the store, and a queued write is not in it yet.
 *   (6) A signal to another process (kill, sigqueue, tgkill, tkill,
 *       pidfd_send_signal and their raw system calls; a process group or
 *       every process included; not signal 0, which only asks) is a
 *       consistency point: every cached byte is written back first
 *       (wc_before_kill), so the receiver, woken by it, reads what the
 *       sender wrote, as the kernel's shared page cache has it. Processes
 *       that share memory tell each other that data is ready that way
 *       (PostgreSQL's latches: a standby's WAL receiver writes WAL, then
 *       sets the startup process's latch, kill(SIGURG), and the startup
 *       process reads the WAL; with the receiver's writes cached it read
 *       zeros, killed the receiver and stalled replication for 5 s, every
 *       run of probe T). A handler that runs inside the shim (set behind
 *       it) sends without it (its thread may hold the engine's locks).
 *       A wake-up the shim cannot see (a futex in shared memory, a flag
 *       polled) is no consistency point (README).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/ucopy.h"

/* ---- death by a signal (invariant 2) ---------------------------------- */

/* Signals whose default action ends the process: asynchronous ones, and
 * those of synchronous faults other than SIGSEGV and SIGBUS (whose handler
 * is the engine's, cache/ucopy.c, which calls fault_hook). */
static const int death_sigs[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM,
    SIGXCPU, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, SIGABRT,
    SIGFPE, SIGILL, SIGTRAP, SIGSYS,
};

static int is_fault_sig(int sig)
{
    return sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS;
}

/* Invariant (5): a signal whose handler may be held until the thread
 * leaves the shim. */
static int is_async_sig(int sig)
{
    return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP &&
           sig != SIGSEGV && sig != SIGBUS && !is_fault_sig(sig) &&
           (sig < 32 || sig >= SIGRTMIN);
}
/* The program's own action for each, while our handler stands in for its
 * SIG_DFL. Written with the signal blocked, by sigaction below. */
static struct sigaction prog_act[NSIG] WC_LARGE;
static volatile sig_atomic_t standing_in[NSIG];
/* Our handler holds the program's handler out of the shim (invariant (5)):
 * prog_act[sig] is the program's action. Written with the signal blocked
 * under g_sig_lock. */
static volatile sig_atomic_t holding[NSIG];

static int is_death_sig(int sig)
{
    for (size_t i = 0; i < sizeof death_sigs / sizeof *death_sigs; i++)
        if (death_sigs[i] == sig)
            return 1;
    return 0;
}

/* What sigaction reports for sig while we stand in: the program's action
 * p, with the restorer of the kernel's action k (ours is glibc's too). */
static struct sigaction stood_as(const struct sigaction *p,
                                 const struct sigaction *k)
{
    struct sigaction r = *p;
    r.sa_restorer = k->sa_restorer;
    return r;
}

static struct sigaction stood_report(int sig)
{
    struct sigaction k;
    if (REAL(sigaction)(sig, NULL, &k) != 0)
        return prog_act[sig];
    return stood_as(&prog_act[sig], &k);
}

void wc_die_of(int sig)
{
    struct sigaction dfl;
    sigset_t one;
    if (wc_depth) {                 /* from the queue: entered, no locks */
        int e = errno;
        if (wc_state == WC_ST_ON) {
            wc_shutdown(WC_WHY_EXIT);
            wc_proc_image_ends();
        }
        errno = e;
    } else {
        wc_proc_final_flush();
    }
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    REAL(sigaction)(sig, &dfl, NULL);
    standing_in[sig] = 0;
    sigemptyset(&one);
    sigaddset(&one, sig);
    raise(sig);
    /* In the handler the signal is blocked: it is delivered (and kills)
     * as the handler returns. From the queue it kills here. */
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

/*
 * Write back before the process dies of a fault (invariant 3). The first
 * thread to get here writes back; another one that faults meanwhile waits
 * for it (at most a few seconds: it may hold a lock the first one needs).
 * A fault while writing back (this thread is already here) dies as is.
 * Inside the shim (locks may be held, structures mid-update) the write-back
 * happens in a raw-forked child that holds no lock (flush_in_child).
 */
static WC_TLS int dying_here;
static int dying;                   /* 0; 1 writing back; 2 done */

static void flush_before_death(void)
{
    if (dying_here)
        return;
    dying_here = 1;
    int e = errno, expect = 0;
    if (__atomic_compare_exchange_n(&dying, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        wc_proc_final_flush();
        __atomic_store_n(&dying, 2, __ATOMIC_RELEASE);
    } else {
        struct timespec ms = {0, 1000000};
        for (int i = 0; i < 3000 && __atomic_load_n(&dying, __ATOMIC_ACQUIRE)
                                        == 1; i++)
            REAL(clock_nanosleep)(CLOCK_MONOTONIC, 0, &ms, NULL);
    }
    errno = e;
}

/* The engine's SIGSEGV/SIGBUS handler found a fault that kills. */
static void fault_hook(int sig)
{
    (void)sig;
    flush_before_death();
}

/* SIGFPE, SIGILL, SIGTRAP, SIGSYS at the program's default action: write
 * back, restore the default, and send the signal again to this thread. It
 * is blocked while the handler runs, so it is delivered as the handler
 * returns, before the faulting instruction runs again: the process dies
 * of it, with the same status and core dump, the registers those of the
 * fault. */
static void fault_death_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    /* Standing in for SIG_IGN: one the kernel made of a fault (si_code
     * above 0: ILL_*, FPE_*, TRAP_*, SI_KERNEL, SYS_SECCOMP) kills, since
     * the kernel forces SIG_DFL there (force_sig_info_to_task); one a
     * process sent (SI_USER, SI_QUEUE, SI_TKILL...) is dropped. */
    if (prog_act[sig].sa_handler == SIG_IGN && si->si_code <= 0)
        return;
    int e = errno;
    flush_before_death();
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    REAL(sigaction)(sig, &dfl, NULL);
    standing_in[sig] = 0;
    raise(sig);
    errno = e;
}

static void death_handler(int sig)
{
    int e = errno;
    if (wc_state == WC_ST_ON && wc_depth && wc_queue_death(sig) == 0) {
        errno = e;          /* dies when this thread leaves the shim */
        return;
    }
    wc_die_of(sig);
    errno = e;
}

static int stand_in_was(int sig, struct sigaction *kold)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (is_fault_sig(sig)) {
        /* SA_RESTART: a signal the program ignores, which the handler
         * drops, interrupts no call. */
        sa.sa_sigaction = fault_death_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    } else {
        sa.sa_handler = death_handler;
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
    }
    int r = REAL(sigaction)(sig, &sa, kold);
    WC_RESET(standing_in[sig], r == 0);
    return r;
}

static int stand_in(int sig)
{
    return stand_in_was(sig, NULL);
}

/* Invariant (5): the program's handler for a delivery of sig. The
 * calls it interrupted that make or name a descriptor (ownfd.c (7): this
 * thread's counts) are out of the kernel while it runs, and it may leave
 * by a jump and never come back to them (siglongjmp out of a SIGALRM
 * handler, a timeout around a blocking open or accept): their counts end
 * before it runs and start again after it returns, so a jump leaves none
 * raised (every later window waited for it: 20 us, 100 ms after a
 * close). */
static void holding_handler_run_prog(int sig, siginfo_t *si, void *uc);
static void holding_handler_run(int sig, siginfo_t *si, void *uc)
{
    int makes, names;
    wc_fd_calls_end(&makes, &names);
    holding_handler_run_prog(sig, si, uc);
    wc_fd_calls_again(makes, names);
}

static void holding_handler_run_prog(int sig, siginfo_t *si, void *uc)
{
    unsigned long fl = (unsigned long)__atomic_load_n(&prog_act[sig].sa_flags,
                                                      __ATOMIC_RELAXED);
    void *h = __atomic_load_n((void **)&prog_act[sig].sa_sigaction,
                              __ATOMIC_RELAXED);
    if (fl & SA_RESETHAND) {
        /* The kernel's SA_RESETHAND, at this delivery: the default
         * handler from now on, flags and mask kept (or our stand-in for
         * it, invariant (2)). */
        struct sigaction r = prog_act[sig];
        r.sa_handler = SIG_DFL;
        prog_act[sig] = r;
        holding[sig] = 0;
        if (is_death_sig(sig) && wc_cachep)
            stand_in(sig);
        else
            REAL(sigaction)(sig, &r, NULL);
    }
    if (fl & SA_SIGINFO) {
        /* What the kernel alone shows of the thread's alternate stack
         * (altstack.c (6)). */
        stack_t saved;
        wc_altstack_uc_stack(uc, &saved, 0);
        ((void (*)(int, siginfo_t *, void *))h)(sig, si, uc);
        wc_altstack_uc_stack(uc, &saved, 1);
    } else if (h != (void *)SIG_DFL && h != (void *)SIG_IGN) {
        ((void (*)(int))h)(sig);
    }
}

/* Where the program's innermost handler run through holding_handler
 * began on this thread (the address of a mark in holding_handler's
 * frame); 0: none. A handler left by a jump (longjmp from it, the signal
 * left blocked) leaves it behind: wc_in_held_handler looks at where it is
 * and whether the mark is still there. Below it, the frames of whatever
 * the program called after the jump wrote over it (probe AB F1: every
 * write made deeper than the handler had run took itself for one inside
 * it, and no flusher was made). A frame that leaves that word unwritten
 * keeps the mark: such a write still waits, as before. */
static WC_TLS uintptr_t held_sp;
WC_BOOT static uintptr_t g_mark_key;    /* AT_RANDOM's, set at start-up */

static uintptr_t mark_of(uintptr_t at)
{
    return at ^ g_mark_key ^ 0x5a5a5a5a5a5a5a5aul;
}

int wc_in_held_handler(void)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t at = held_sp, word = 0;
    if (!at || here >= at)
        return 0;
    /* Read without a fault: a mark on an alternate stack the program
     * has unmapped since is no mark. */
    return wc_read_readable(&word, (const void *)at, sizeof word) ==
               sizeof word &&
           word == mark_of(at);
}

/* Invariant (5): the handler that stands in for the program's. */
static void holding_handler(int sig, siginfo_t *si, void *uc)
{
    if (wc_depth && wc_state == WC_ST_ON) {
        int e = errno;
        int r = wc_queue_signal(sig, si);
        errno = e;
        if (r == 0)
            return;             /* sent again when the thread leaves */
    }
    volatile uintptr_t mark = mark_of((uintptr_t)&mark);
    uintptr_t was = held_sp;
    held_sp = (uintptr_t)&mark;
    holding_handler_run(sig, si, uc);
    held_sp = was;
    mark = 0;
}

int wc_is_stand_in(const void *handler)
{
    return handler == (const void *)holding_handler;
}

/* Our handler in place of the program's handler `act` (invariant (5));
 * the kernel's action before in *kold (if not NULL). */
static int hold(int sig, const struct sigaction *act, struct sigaction *kold)
{
    struct sigaction sa = *act;
    sa.sa_sigaction = holding_handler;
    sa.sa_flags = (act->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    /* Stored only where they change: a program that sets the same
     * handler again before each fork (bash) wrote these pages in every
     * cycle, a copy-on-write fault after each fork. */
    struct sigaction k = wc_sigaction_kept(act);
    if (memcmp(&prog_act[sig], &k, sizeof k))
        prog_act[sig] = k;
    int r = REAL(sigaction)(sig, &sa, kold);
    WC_RESET(holding[sig], r == 0);
    if (r == 0)
        WC_RESET(standing_in[sig], 0);
    return r;
}

/* Run the program's handler for sig here, as the kernel would deliver
 * it: with its mask added (and sig, unless SA_NODEFER) for the call. For
 * a held signal the kernel had no room to queue again. */
static void deliver_here(int sig, siginfo_t *si)
{
    struct sigaction a = prog_act[sig];
    if (!holding[sig])
        return;                 /* the program changed it since */
    sigset_t m = a.sa_mask, old;
    if (!(a.sa_flags & SA_NODEFER))
        sigaddset(&m, sig);
    pthread_sigmask(SIG_BLOCK, &m, &old);
    ucontext_t uc;
    getcontext(&uc);
    holding_handler_run(sig, si, &uc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void wc_signals_block(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

void wc_signals_again(const struct wc_held *h, int n, const sigset_t *old)
{
    int e = errno;
    long pid = wc_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
    long tid = wc_raw_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
    int failed[WC_HELD_MAX], nf = 0;
    for (int i = 0; i < n; i++) {
        siginfo_t copy = h[i].si;
        if (wc_raw_syscall(SYS_rt_tgsigqueueinfo, pid, tid, h[i].sig,
                           (long)&copy, 0, 0) < 0)
            failed[nf++] = i;
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);   /* delivered now, in order */
    for (int i = 0; i < nf; i++) {
        siginfo_t copy = h[failed[i]].si;
        deliver_here(h[failed[i]].sig, &copy);
    }
    errno = e;
}

/* g_sig_lock protects standing_in[] and prog_act[] against a concurrent
 * reader-then-writer (wc_death_signals_init, called when the cache is
 * created, while the program's threads may call sigaction). Taken with
 * every signal blocked, so no handler on the holder's thread re-enters. */
static struct wc_lock g_sig_lock;

static void sig_lock(sigset_t *saved)
{
    wc_signals_block(saved);
    wc_lock(&g_sig_lock);
}

static void sig_unlock(const sigset_t *saved)
{
    wc_unlock(&g_sig_lock);
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* Stand in for every death signal whose action is the default. Called
 * once the cache exists: before, a death has nothing to write back. */
void wc_death_signals_init(void)
{
    sigset_t saved;
    sig_lock(&saved);
    for (size_t i = 0; i < sizeof death_sigs / sizeof *death_sigs; i++) {
        int sig = death_sigs[i];
        struct sigaction cur;
        if (standing_in[sig] || REAL(sigaction)(sig, NULL, &cur) != 0)
            continue;
        if (!(cur.sa_flags & SA_SIGINFO) &&
            (cur.sa_handler == SIG_DFL ||
             (cur.sa_handler == SIG_IGN && is_fault_sig(sig)))) {
            prog_act[sig] = cur;
            stand_in(sig);
        }
    }
    sig_unlock(&saved);
}

/* An image is about to replace this one (going: 1), or the exec failed
 * (0): a signal the program ignores, which the shim stands in for, is
 * ignored again in the kernel's table for the exec, which keeps SIG_IGN
 * but resets a handler to SIG_DFL (and so does posix_spawn's child).
 * Only the kernel's table is changed, nothing in memory: a vfork child
 * calls it too. */
void wc_signals_exec(int going)
{
    for (size_t i = 0; i < sizeof death_sigs / sizeof *death_sigs; i++) {
        int sig = death_sigs[i];
        if (!is_fault_sig(sig) || !standing_in[sig] ||
            prog_act[sig].sa_handler != SIG_IGN)
            continue;
        if (going) {
            struct sigaction ign;
            memset(&ign, 0, sizeof ign);
            ign.sa_handler = SIG_IGN;
            REAL(sigaction)(sig, &ign, NULL);
        } else {
            stand_in(sig);
        }
    }
}

WC_ONCE
void wc_death_signals_after_fork(void)
{
    WC_RESET(g_sig_lock.v, 0);      /* the child is alone */
}

/* The action the program sees for a signal whose handler we hold
 * (invariant (5)), from the kernel's (k: as it reports it, with its
 * flags and mask as the kernel keeps them): the program's handler, with
 * SA_SIGINFO and SA_RESETHAND as the program asked. A handler set behind
 * the shim since (glibc's siginterrupt calls its own sigaction; a raw
 * rt_sigaction) is reported as it is, and no longer held. */
static int held_as(const struct sigaction *p, struct sigaction *k)
{
    if (k->sa_sigaction != holding_handler)
        return 0;
    k->sa_sigaction = p->sa_sigaction;          /* or sa_handler: a union */
    k->sa_flags = (k->sa_flags & ~(SA_SIGINFO | SA_RESETHAND)) |
                  (p->sa_flags & (SA_SIGINFO | SA_RESETHAND));
    return 1;
}

static int held_as_program(int sig, struct sigaction *k)
{
    return held_as(&prog_act[sig], k);
}

/* sigaction for a signal we may stand in for (invariant (2)) or hold the
 * program's handler of (invariant (5)). Two system calls for the records,
 * one for the action: the new action is set and the old one read by the
 * same call (a query first made two), and what the program sees as its
 * old action is made from that and the records as they were. Every
 * signal stays blocked while the records change (sig_lock): probe AH,
 * against a version without, found a handler set behind the shim that
 * ran there and left by a jump (the thread inside the shim for good, its
 * deaths queued and never sent), one that called sigaction there (the
 * shim's own handlers reported), and real-time signals held meanwhile and
 * sent again out of their order. */
static int stood_sigaction(int sig, const struct sigaction *act,
                           struct sigaction *old)
{
    struct sigaction a, was, pa;
    if (act)
        a = *act;       /* read in the program's context, as glibc's does */
    sigset_t saved;
    sig_lock(&saved);
    int st = standing_in[sig], ho = holding[sig], err = 0;
    if (st || ho)
        pa = prog_act[sig];
    int r;
    if (!act) {
        r = REAL(sigaction)(sig, NULL, &was);
    } else {
        int info = !!(a.sa_flags & SA_SIGINFO);
        int dfl = !info && a.sa_handler == SIG_DFL;
        int ign = !info && a.sa_handler == SIG_IGN;
        if ((dfl || (ign && is_fault_sig(sig))) && is_death_sig(sig) &&
            wc_state == WC_ST_ON) {
            struct sigaction k = wc_sigaction_kept(&a);
            if (memcmp(&prog_act[sig], &k, sizeof k))   /* as in hold() */
                prog_act[sig] = k;
            r = stand_in_was(sig, &was);
            if (r == 0)
                WC_RESET(holding[sig], 0);
        } else if (!dfl && !ign && is_async_sig(sig) &&
                   wc_state == WC_ST_ON) {
            r = hold(sig, &a, &was);
        } else {
            r = REAL(sigaction)(sig, &a, &was);
            if (r == 0) {
                WC_RESET(standing_in[sig], 0);  /* as in hold() */
                WC_RESET(holding[sig], 0);
            }
        }
    }
    if (r != 0) {
        err = errno;
    } else if (st) {
        was = stood_as(&pa, &was);
    } else if (ho && !held_as(&pa, &was) && !act) {
        holding[sig] = 0;       /* set behind the shim since */
    }
    sig_unlock(&saved);
    if (r != 0) {
        errno = err;
        return r;
    }
    if (old)
        *old = was;
    return 0;
}

/* ---- sigaction and signal --------------------------------------------- */

/* A handler of the program's own (not SIG_DFL or SIG_IGN). */
static void note(int sig, const struct sigaction *act)
{
    if (act && ((act->sa_flags & SA_SIGINFO) ||
                (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN)))
        wc_note_handler(sig, !!(act->sa_flags & SA_NODEFER));
}

/* In a vfork child (proc.c invariant (7)): the kernel's call, for the
 * child's own table; nothing recorded in the memory it shares with its
 * parent. An action the shim stands in for reads as the program's. */
static int vfork_sigaction(int sig, const struct sigaction *act,
                           struct sigaction *old)
{
    struct sigaction was;
    int r = REAL(sigaction)(sig, act, &was);
    if (r == 0 && old) {
        *old = was;
        if (sig > 0 && sig < NSIG && standing_in[sig])
            *old = stood_report(sig);
        else if (sig > 0 && sig < NSIG && holding[sig])
            held_as_program(sig, old);  /* nothing changed: shared memory */
    }
    return r;
}

WC_EXPORT int sigaction(int sig, const struct sigaction *act,
                        struct sigaction *old)
{
    if (unlikely(wc_state == WC_ST_VFORK))
        return vfork_sigaction(sig, act, old);
    note(sig, act);
    if ((sig == SIGSEGV || sig == SIGBUS) && wc_fault_ready)
        return wc_ret(wc_fault_sigaction(sig, act, old));
    if (sig > 0 && sig < NSIG && (is_death_sig(sig) || is_async_sig(sig)))
        return stood_sigaction(sig, act, old);
    return REAL(sigaction)(sig, act, old);
}

/* The signals siginterrupt made interrupting, as glibc's own _sigintr
 * (which its signal and bsd_signal read): for the signal() made here. */
static sigset_t g_sigintr;

WC_EXPORT int siginterrupt(int sig, int flag)
{
    int r = REAL(siginterrupt)(sig, flag);
    if (r == 0 && flag)
        sigaddset(&g_sigintr, sig);
    else if (r == 0)
        sigdelset(&g_sigintr, sig);
    return r;
}

WC_EXPORT sighandler_t signal(int sig, sighandler_t h)
{
    int vf = wc_state == WC_ST_VFORK;
    if (h != SIG_DFL && h != SIG_IGN && h != SIG_ERR && !vf)
        wc_note_handler(sig, 0);        /* BSD semantics: deferred */
    int fault = (sig == SIGSEGV || sig == SIGBUS) && wc_fault_ready;
    int death = sig > 0 && sig < NSIG &&
                (is_death_sig(sig) || is_async_sig(sig));
    if (!fault && !death)
        return REAL(signal)(sig, h);
    /* glibc's signal(): BSD semantics, calls restarted unless
     * siginterrupt said otherwise for sig. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = sigismember(&g_sigintr, sig) == 1 ? 0 : SA_RESTART;
    int r = vf      ? (vfork_sigaction(sig, &sa, &old) < 0 ? -errno : 0)
            : fault ? wc_fault_sigaction(sig, &sa, &old)
                    : (stood_sigaction(sig, &sa, &old) < 0 ? -errno : 0);
    if (r < 0) {
        errno = -r;
        return SIG_ERR;
    }
    return old.sa_handler;
}

/* glibc's sigset, sysv_signal and bsd_signal call its own sigaction,
 * behind the shim: a handler they set would run inside the shim, where a
 * lock it takes cannot write anything back (probe O: a SIGALRM handler
 * set with sigset took a lock and told another process, which found tens
 * of thousands of acknowledged records missing). Made here with the
 * shim's sigaction, as glibc makes them, so that the handler is held
 * (invariant (5)). */
WC_EXPORT sighandler_t sigset(int sig, sighandler_t disp)
{
    sigset_t one, old;
    sigemptyset(&one);
    if (sigaddset(&one, sig) < 0)
        return SIG_ERR;
    struct sigaction sa, oa;
    if (disp == SIG_HOLD) {
        if (pthread_sigmask(SIG_BLOCK, &one, &old) != 0)
            return SIG_ERR;
        if (sigismember(&old, sig))
            return SIG_HOLD;
        if (sigaction(sig, NULL, &oa) < 0)
            return SIG_ERR;
        return oa.sa_handler;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = disp;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &oa) < 0 ||
        pthread_sigmask(SIG_UNBLOCK, &one, &old) != 0)
        return SIG_ERR;
    return sigismember(&old, sig) ? SIG_HOLD : oa.sa_handler;
}

/* System V semantics: reset to the default at delivery, not deferred,
 * calls interrupted. */
WC_EXPORT sighandler_t sysv_signal(int sig, sighandler_t h)
{
    if (h == SIG_ERR || sig <= 0 || sig >= NSIG) {
        errno = EINVAL;
        return SIG_ERR;
    }
    struct sigaction sa, oa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    if (sigaction(sig, &sa, &oa) < 0)
        return SIG_ERR;
    return oa.sa_handler;
}

WC_EXPORT sighandler_t bsd_signal(int sig, sighandler_t h)
{
    return signal(sig, h);
}

/* glibc's other names for these, which a program reaches without the
 * shim's (probe AB: the handlers they set ran without the stand-in, and
 * the flusher could start inside one): signal() under -std=c99 or c11 is
 * __sysv_signal; ssignal is SVID's; __sigaction is exported. */
WC_EXPORT sighandler_t __sysv_signal(int sig, sighandler_t h)
{
    return sysv_signal(sig, h);
}

WC_EXPORT sighandler_t ssignal(int sig, sighandler_t h)
{
    return signal(sig, h);
}

WC_EXPORT int __sigaction(int sig, const struct sigaction *act,
                          struct sigaction *old)
{
    return sigaction(sig, act, old);
}

/* The engine's fault handler calls back into the shim (cache/ucopy.c):
 * set before it is installed, not at start-up (three stores in a page of
 * .bss no start writes otherwise). */
WC_ONCE
void wc_signals_fault_hooks(void)
{
    WC_RESET(wc_fault_death_hook, fault_hook);
    WC_RESET(wc_fault_undeliverable_hook, wc_altstack_undeliverable);
    WC_RESET(wc_fault_uc_stack_hook, wc_altstack_uc_stack);
}

WC_ONCE
void wc_signals_init(void)
{
    const uintptr_t *r = (const uintptr_t *)getauxval(AT_RANDOM);
    if (r)
        g_mark_key = r[0];
}

/* ---- SIGKILL to itself (invariant 4) ---------------------------------- */

/* Invariant (6): what the receiver of a signal reads is what was written. */
static void before_signal_others(void)
{
    struct wc_cache *c = wc_cachep;
    if (!c || wc_depth)
        return;
    int e = wc_work_begin();
    wc_cache_flush(c, WC_WHY_SIGNAL);
    wc_work_end(e);
}

void wc_before_kill(int how, long pid, long tid, int sig)
{
    if (sig == 0 || wc_state != WC_ST_ON ||
        (sig != SIGKILL && !wc_cachep))
        return;                 /* only asks; or nothing to write back */
    long self = wc_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
    int me, others;
    switch (how) {
    case WC_KILL_PID:           /* kill, sigqueue: a pid, 0, -1 or -group */
        me = pid == self || pid == 0 ||
             (pid < -1 && -pid == wc_raw_syscall(SYS_getpgid, 0, 0, 0, 0,
                                                 0, 0));
        others = pid != self;   /* a group may hold others */
        break;
    case WC_KILL_TGID:          /* tgkill */
        me = pid == self;
        others = !me;
        break;
    case WC_KILL_TID:           /* tkill: is tid one of this process's? */
        me = wc_raw_syscall(SYS_tgkill, self, tid, 0, 0, 0, 0) == 0;
        others = !me;
        break;
    case WC_KILL_PIDFD:         /* any process, this one included */
        me = 0;
        others = 1;
        break;
    default:                    /* raise, pthread_kill */
        me = 1;
        others = 0;
    }
    if (me && sig == SIGKILL)
        wc_proc_final_flush();  /* (4) */
    else if (others)
        before_signal_others();
}

WC_EXPORT int raise(int sig)
{
    wc_before_kill(WC_KILL_SELF, 0, 0, sig);
    return WC_NEXT(int (*)(int), raise)(sig);
}

WC_EXPORT int kill(pid_t pid, int sig)
{
    wc_before_kill(WC_KILL_PID, pid, 0, sig);
    return (int)wc_ret(wc_raw_syscall(SYS_kill, pid, sig, 0, 0, 0, 0));
}

WC_EXPORT int tgkill(pid_t tgid, pid_t tid, int sig)
{
    wc_before_kill(WC_KILL_TGID, tgid, tid, sig);
    return (int)wc_ret(wc_raw_syscall(SYS_tgkill, tgid, tid, sig, 0, 0, 0));
}

WC_EXPORT int pidfd_send_signal(int pidfd, int sig, siginfo_t *info,
                                unsigned int flags)
{
    wc_before_kill(WC_KILL_PIDFD, pidfd, 0, sig);
    return (int)wc_ret(wc_raw_syscall(SYS_pidfd_send_signal, pidfd, sig,
                                      (long)info, flags, 0, 0));
}

WC_EXPORT int sigqueue(pid_t pid, int sig, const union sigval val)
{
    wc_before_kill(WC_KILL_PID, pid, 0, sig);
    return WC_NEXT(int (*)(pid_t, int, const union sigval), sigqueue)(pid, sig,
                                                                   val);
}

WC_EXPORT int pthread_kill(pthread_t t, int sig)
{
    wc_before_kill(WC_KILL_SELF, 0, 0, sig);
    return WC_NEXT(int (*)(pthread_t, int), pthread_kill)(t, sig);
}

WC_EXPORT int pthread_sigqueue(pthread_t t, int sig, const union sigval val)
{
    wc_before_kill(WC_KILL_SELF, 0, 0, sig);
    return WC_NEXT(int (*)(pthread_t, int, const union sigval),
                pthread_sigqueue)(t, sig, val);
}
