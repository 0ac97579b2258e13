/*
 * proc.c - the process's events: start-up, exit, fork and exec, and the
 * resource limits the write path obeys (the flusher thread is in
 * flusher.c, deaths by a signal in signals.c, the statistics report in
 * stats_report.c).
 *
 * Invariants:
 *   (1) Start-up (wc_init, a constructor): the real functions first, then
 *       the environment, then the fd table; only then wc_state = ON. Any
 *       failure leaves the shim pass-through, with at most one message.
 *   (2) fork (and every libc path that runs the atfork handlers): before,
 *       every file is flushed, every kernel offset set, and every
 *       description the child gets is shared (shared.c: RESERVE, or
 *       THROUGH when O_APPEND); the child abandons the inherited cache
 *       (its store is the parent's), caches a shared description from its
 *       first write through it, in its own cache, and caches files it
 *       opens itself. vfork, posix_spawn (without file actions), system
 *       and popen create a child that only execs: the parent's O_CLOEXEC
 *       descriptions stay as they are.
 *   (3) exec, in every form: flush, kernel offsets, statistics, the
 *       engine's descriptors of files this process holds POSIX locks on
 *       kept open (execlocks.c), and the
 *       backing file's name removed when nothing is left unwritten
 *       (wc_cache_may_remove; the mapping stays valid if the exec fails,
 *       but no guard could find the file again, so the process then stops
 *       caching for good, (8); with threads it stops right before the
 *       kernel's exec, since the others may write meanwhile;
 *       the new image creates its own store and adopts the inherited
 *       descriptors as shared ones, each at its first write, except those
 *       (6) hands over).
 *   (4) Exit in every form: return from main and exit() reach the
 *       destructor; _exit, _Exit and quick_exit (which ends in glibc's
 *       own _exit, after the at_quick_exit handlers) flush first
 *       themselves. After that everything passes through (a later
 *       destructor's or handler's write still goes to the file, at the
 *       right offset).
 *   (5) setrlimit/prlimit/ulimit of RLIMIT_FSIZE (syscall() included)
 *       write every cached file back first (what was written under the
 *       old limit reaches the file under it), then tell the engine
 *       (wc_cache_limits_changed), which reads the limit only then.
 *       RLIMIT_NOFILE is read and set through ownfd.c, which places the
 *       engine's own descriptors above it.
 *   (6) exec hands over what it knows of who holds each description:
 *       those the process holds alone (opened here and never shared, or
 *       shared only with children that let go: shared.c invariant (5);
 *       or handed over to this image the same way and not yet written),
 *       writable, regular and without FD_CLOEXEC, are named in
 *       WCACHE_OWN_FDS (fd:dev:ino each, after this process's pid and
 *       the identity of the program exec runs). The new image takes the
 *       variable out of its environment at start-up, before main, and
 *       believes it only if the pid is its own, /proc/self/exe is that
 *       program (an image between them that did not run the shim would
 *       make it differ, unless it ran exactly that program) and each
 *       descriptor still names its file; then such a descriptor is
 *       cached as one it opened (`sh -c 'prog > f'`, and a shell under
 *       wcache that forks, opens `> f` in the child and execs, as bash
 *       does), not as one shared with the parent. Creating a child takes
 *       that knowledge back (wc_nc_shared_all). Descriptions whose
 *       offset is in a cell (shared.c invariant (6): `cmd > f` run by
 *       dash, which keeps f while it waits) go too, named with the
 *       cell's region's own descriptor (its memfd, at the number ownfd.c
 *       placed it, FD_CLOEXEC cleared for the exec and set again if the
 *       exec fails; with its identity, which the new image checks before
 *       it maps or closes that number) and the kernel's offset set to the
 *       cell's; no descriptor is made for it, so none takes a low number
 *       another thread may be about to get or name (ownfd.c (7)); the
 *       new image caches them as shared
 *       with the cell's other holders, the offset in the cell, or, when it
 *       does not believe the variable or does not cache inherited
 *       descriptors (the shim disabled, WCACHE_INHERITED=0), settles each
 *       cell before main. Nothing is handed over to an image that will
 *       not run this library (an environment without it in LD_PRELOAD, a
 *       static program, a script, whose interpreter /proc/self/exe would
 *       name, a set-user-ID, set-group-ID or file-capability program,
 *       whose loader ignores LD_PRELOAD paths), so the variable never
 *       reaches a program, and every cell is settled first; nor by
 *       execvp and execlp of a name without a slash (the program is not
 *       known before the search).
 *   (7) vfork is the kernel's vfork (dash runs every command so, gcc its
 *       compilers; a fork in its place cost about 0.9 ms a command here:
 *       the page tables copied) when the program has one thread, the
 *       shim is not inside a call and the table is below VF_FDS: first
 *       everything fork's prepare does (invariant (2), exec-only), then
 *       wc_state = VFORK until the parent runs again. The child shares
 *       this memory: with wc_state not ON every call passes through to
 *       the kernel and nothing the parent relies on is written (its fd
 *       table, the reasons (wc_nc_on off), the program's signal actions,
 *       our descriptors' places). The child records which numbers it
 *       opened, closed or duplicated onto, and the writable files it
 *       opened (vf_touched, vf_own), and the parent's descriptions it
 *       made inheritable or used (vf_share: a duplicate without
 *       O_CLOEXEC, F_SETFD or ioctl(FIONCLEX) clearing it, also on a copy
 *       of its own, vf_alias, e.g. `dup2(log_fd, 1)` before exec, where
 *       log_fd is O_CLOEXEC and so left private at vfork_begin; or any
 *       call on it, wc_fd_get, such as a write after a failed exec): the
 *       parent shares them (wc_fd_share, at the kernel's offset) when it
 *       runs again, before its next write (the parent wrote over the
 *       exec'd echo's line); its exec hands over as (6) does,
 *       from the parent's table for the numbers it did not touch (a cell
 *       goes with its description) and its own files as held alone, in
 *       a mapping the parent unmaps. A description of the parent's that
 *       the child uses through a call of its own (a write, a read, lseek:
 *       any call that looks up its number, wc_fd_get) or duplicates has
 *       its cell settled first, through the number that still names it,
 *       since the child passes through at the kernel's offset (shared.c
 *       invariant (6)). The shim's flusher thread goes on
 *       with the parent's cache meanwhile. Otherwise (threads, a
 *       sanitizer build, another architecture, syscall(SYS_vfork), a
 *       vfork child's own vfork) a fork serves it, as before: the child
 *       then has its own memory.
 *
 *       States of wc_state around a vfork:
 *
 *           ON --wc_vfork_begin--> VFORK --child execs or exits-->
 *              wc_vfork_end (parent) --> ON
 *
 *   (8) A process that stops caching for good (wc_proc_off) does so
 *       before the call that makes it need to (or, after an exec that
 *       failed, right after it: (3)): an io_uring set up (aio.c
 *       invariant (2)), or a seccomp filter or strict mode entered (prctl
 *       PR_SET_SECCOMP, seccomp through syscall(), which libseccomp's
 *       seccomp_load uses): from then on the system calls the shim would
 *       make of its own (the write-back's pwritev2, fstatfs, its guard's)
 *       may be refused or kill the process, where the program's own are
 *       what it allowed. Every cached byte is written back first, every
 *       offset becomes the kernel's, and after it every call passes
 *       through as the kernel's alone (wc_state OFF), threads made later
 *       get no signal stack of ours (altstack.c).
 *   (8b) So does a process whose own machinery cannot run: its flusher
 *       thread could not be made (flusher.c) or no crash guard can watch
 *       its store (guard.c invariant (7)). Those are found by the
 *       flusher, by a clone's failure or by the guard's start, where
 *       stopping (which waits for the flusher, takes every file's lock)
 *       cannot be done: they ask (wc_off_want, one line at
 *       WCACHE_LOG=info), and the next write does it, once the shim has
 *       left (wc_pending, depth 0). Until then the process caches as
 *       before.
 *   (9) A task made by clone (glibc's clone(), or a raw clone or clone3
 *       through syscall()) is sorted by what it shares (wc_clone_kind):
 *         - memory and the descriptor table, without CLONE_VFORK: a
 *           thread; wc_solo ends, the call is the kernel's;
 *         - neither, and no CLONE_SETTLS: a new process, served as fork
 *           ((2): before, every description shared); glibc's clone runs
 *           the program's fn behind clone_child, which does the child's
 *           part of (2) first and, when fn returns (glibc then makes a
 *           bare exit system call, no destructor), what exit does;
 *         - memory with CLONE_VFORK, not the table: glibc's clone is
 *           served as vfork (7) (the child runs on a stack of its own, so
 *           this frame survives), with every description shared first
 *           (the child may write instead of exec);
 *         - any other mix (the table without the memory: the child's
 *           opens and closes change this process's numbers behind the
 *           shim; the memory without the table: the child's calls would
 *           update this process's records of another table; a new TLS
 *           without the memory; a raw vfork-like clone, whose child
 *           returns through the shim's frames; a vfork-like one where (7)
 *           cannot be kept): the process stops caching for good first
 *           (8), and the call is the kernel's.
 *   (10) The shim's records hold one descriptor table for the whole
 *       process, shared by its flusher thread (flusher.c). Before a thread
 *       takes a table of its own (unshare with CLONE_FILES, close_range
 *       with CLOSE_RANGE_UNSHARE, in every form): with other program
 *       threads the process stops caching for good (8) (their tables
 *       would differ from the caller's); the program's only thread makes
 *       the flusher leave (flusher.c invariant (5)), and a new one starts
 *       in the new table.
 *   (11) The kernel lets only a process with one thread enter a user
 *       namespace (unshare with CLONE_NEWUSER, setns) and only one that
 *       shares its fs_struct with no thread enter a mount namespace with
 *       setns: the flusher, a thread of the shim's, must not make such a
 *       call fail (EINVAL where the kernel gives 0). Before one, from the
 *       program's only thread, the flusher leaves and is waited for until
 *       the kernel has it gone (wc_flusher_gone); a new one starts at the
 *       next write, in the new namespaces.
 *   (12) Names are the crash guard's: a replay opens each cached file
 *       by the name /proc/self/fd gave when it was cached, in the guard's
 *       root and mount namespace, which the program had when it started
 *       the guard. Once the program resolves names otherwise (chroot,
 *       pivot_root, a mount namespace of its own by unshare or setns),
 *       no file is cached from then on (wc_names_apart: they pass
 *       through), and the files cached before keep the names they had
 *       (wc_cache_renamed only notes which have none): a file cached in a
 *       chroot was replayed at its path in the real root, and one cached
 *       in a chroot without /proc had no name at all, which made the
 *       whole backing file unreplayable (cache/file.c refuses a file
 *       without a name now too).
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <ulimit.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/ucopy.h"

extern char **environ;
extern void *__dso_handle;
extern int __register_atfork(void (*prepare)(void), void (*parent)(void),
                             void (*child)(void), void *dso);

volatile int wc_fault_ready;
static WC_TLS int exec_only_child;   /* vfork: the child only execs */

/* The image ends (exit, _exit, exec): statistics, the store's name.
 * 1: the store has no name now. */
WC_ONCE
int wc_proc_image_ends(void)
{
    struct wc_cache *c = wc_cachep;
    wc_stats_report(c);
    if (!c)
        return 0;
    return wc_cache_remove_if_clean(c); /* kept if anything is not written */
}

/* ---- exit ------------------------------------------------------------- */

/*
 * A signal handler exits while this thread is inside the shim: the locks
 * it holds may guard structures caught mid-update, so this process cannot
 * write back. A raw fork (no atfork handlers: async-signal-safe) gives a
 * single-threaded copy, with the whole cache (wc_cache_inherit: a fork
 * child gets none of the store otherwise), in which nobody holds anything:
 * it takes every lock as free, runs what handlers queued, writes back from
 * the shared store, sets the shared kernel offsets, and exits. The parent
 * waits, then exits as asked whatever became of the child (the crash
 * guard, a later issue, covers a child that could not finish). Other threads' writes that return
 * after the fork are not in the copy.
 */
static void flush_in_child(void)
{
    if (wc_cachep)
        wc_cache_inherit(wc_cachep);    /* the copy writes back from it */
    long pid = REAL(syscall)(SYS_fork);
    if (pid == 0) {
        /* Did the write in flight (maybe a queued one being run) complete
         * in the engine? Asked before wc_unlock_all_in_child forgets it. */
        int finished = wc_inflight.d && wc_wip_end >= 0;
        wc_unlock_all_in_child();
        wc_depth = 1;
        wc_queue_child_resume(finished);
        wc_queue_drain();
        wc_consistency_all(WC_WHY_EXIT, WC_ALL_SYNC, 0);
        if (wc_cachep)
            wc_cache_remove_if_clean(wc_cachep);
        REAL(syscall)(SYS_exit_group, 0);
    }
    if (pid < 0) {
        wc_log(WC_LOG_WARN, "exit from a signal handler inside the shim: "
               "cannot fork to write back; cached data is left to the "
               "crash guard");
        return;
    }
    int st;
    while (REAL(syscall)(SYS_wait4, pid, &st, __WALL, NULL) < 0 &&
           errno == EINTR)
        ;
}

WC_ONCE
void wc_proc_final_flush(void)
{
    if (wc_state != WC_ST_ON)
        return;
    if (wc_depth) {
        int e = errno;
        flush_in_child();
        wc_state = WC_ST_OFF;
        errno = e;
        return;
    }
    int e = wc_work_begin();
    wc_shutdown(WC_WHY_EXIT);
    wc_proc_image_ends();
    wc_work_end(e);
}

/* The library's DT_FINI (Makefile: -fini): the C runtime's _fini does
 * nothing on x86-64, and lies at the end of the code, a page fault at
 * every exit; this one lies with the start-up code (shim.h, WC_ONCE). */
WC_ONCE __attribute__((used)) void wc_dt_fini(void);
void wc_dt_fini(void)
{
}

__attribute__((destructor)) static void wc_fini(void)
{
    wc_proc_final_flush();
}

WC_EXPORT void exit(int status)
{
    /* The destructor runs after the atexit handlers: it flushes. */
    REAL(exit)(status);
    __builtin_unreachable();
}

WC_EXPORT void _exit(int status)
{
    wc_proc_final_flush();
    REAL(_exit)(status);
    __builtin_unreachable();
}

WC_EXPORT void _Exit(int status)
{
    wc_proc_final_flush();
    REAL(_Exit)(status);
    __builtin_unreachable();
}

WC_EXPORT void quick_exit(int status)
{
    wc_proc_final_flush();      /* the handlers' writes then pass through */
    REAL(quick_exit)(status);
    __builtin_unreachable();
}

/* abort() may be caught (a SIGABRT handler can longjmp away): flush and
 * fix offsets, as the kernel would have the data, but keep caching. */
WC_EXPORT void abort(void)
{
    if (wc_state == WC_ST_ON && !wc_depth) {
        int e = wc_work_begin();
        wc_consistency_all(WC_WHY_EXIT, WC_ALL_SYNC, 0);
        /* With SIGABRT at its default action the process dies now: the
         * store's name goes, as at exec (the mapping stays valid). */
        struct sigaction sa;
        struct wc_cache *c = wc_cachep;
        if (c && wc_cache_may_remove(c) &&
            REAL(sigaction)(SIGABRT, NULL, &sa) == 0 &&
            !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL)
            wc_proc_image_ends();
        wc_work_end(e);
    }
    REAL(abort)();
    __builtin_unreachable();
}

/* The process stops caching for good (invariant (8)): what is cached goes
 * to the files, every offset becomes the kernel's (cells settled), every
 * later call passes through; the statistics are reported now and the
 * store's name goes if nothing is left unwritten, as at exit. Threads
 * that looked a description up before find it THROUGH under its lock. */
/* Does this process hold a POSIX record lock on a file with inode
 * number ino? /proc/locks lists every lock in the system, one a line:
 * "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF". The device is not
 * compared (a btrfs subvolume's st_dev is not the one printed there): a
 * lock on another file of that number counts, which only keeps a
 * descriptor. When the list cannot be read: yes. */
static int lock_list_has(void *arg)
{
    ino_t ino = *(const ino_t *)arg;
    int fd = wc_k_openat(AT_FDCWD, "/proc/locks", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    char buf[8192];
    size_t have = 0;
    int held = 0, pid = (int)wc_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
    for (;;) {
        ssize_t n = wc_k_read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0) {
            held = 1;
            break;
        }
        have += (size_t)n;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) || (n == 0 && *line)) {
            if (nl)
                *nl = 0;
            char type[16];
            int lpid;
            unsigned long lino;
            if (sscanf(line, "%*d: %15s %*s %*s %d %*x:%*x:%lu", type, &lpid,
                       &lino) == 3 && strcmp(type, "POSIX") == 0 &&
                lpid == pid && lino == (unsigned long)ino)
                held = 1;
            line = nl ? nl + 1 : line + strlen(line);
        }
        if (held || n == 0)
            break;
        have = strlen(line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;           /* a line that long is no lock's */
    }
    wc_k_close(fd);
    return held;
}

/* The list is read as a look (shim.h wc_look: in a window on a program
 * thread, apart on the flusher): other threads may be running (an exec
 * with threads stops caching here), and the list's descriptor takes the
 * lowest free number for that time (ownfd.c invariant (7)). */
static int holds_posix_lock(dev_t dev, ino_t ino, void *arg)
{
    (void)dev;
    (void)arg;
    return wc_look(lock_list_has, &ino, 0) != 0;
}

static void proc_off(int image_ends)
{
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    int e = wc_work_begin();
    wc_consistency_all(WC_WHY_OTHER, WC_ALL_THROUGH, 0);
    wc_state = WC_ST_OFF;
    wc_work_end(e);
    wc_flusher_stop();          /* flusher.c invariant (3) */
    struct wc_cache *c = wc_cachep;
    if (c) {
        /* Every later close passes through: what the engine holds open
         * of a clean file goes now (cache/wbfd.c (2)). */
        e = wc_work_begin();
        wc_cache_fds_let_go(c, holds_posix_lock, NULL);
        wc_work_end(e);
    }
    if (!image_ends)
        return;
    e = wc_work_begin();
    wc_proc_image_ends();
    wc_work_end(e);
}

void wc_proc_off(void)
{
    proc_off(1);
}

/* Invariant (8): seccomp through prctl (glibc's prctl is the bare system
 * call, made here the same way: no table entry, no start-up cost). */
WC_EXPORT int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a = va_arg(ap, unsigned long), b = va_arg(ap, unsigned long);
    unsigned long c = va_arg(ap, unsigned long), d = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_SECCOMP)
        wc_proc_off();
    return (int)wc_ret(wc_raw_syscall(SYS_prctl, option, (long)a, (long)b,
                                      (long)c, (long)d, 0));
}

/* For the raw syscall() wrapper (syscall.c): exit_group runs no
 * destructor. */
void wc_proc_exit_flush(void)
{
    wc_proc_final_flush();
}

/* ---- fork ------------------------------------------------------------- */

/* A fork's copy of the descriptor table takes no short-lived descriptor
 * of the shim's (ownfd.c invariant (7)): from the last of the shim's
 * prepare work to the system call's return, the fork is a maker (not a
 * namer, for which windows wait: a prepare handler that runs after the
 * shim's may wait for a lock a thread in a window holds). The child's
 * end is wc_fd_window_after_fork's. */
static void fork_makes_begin(void)
{
    if (wc_state == WC_ST_VFORK)
        return;                 /* counts nothing (shim.h) */
    wc_fd_make_begin();
    wc_thr.fd_forking = 1;
}

static void fork_makes_end(void)
{
    if (wc_thr.fd_forking) {
        wc_thr.fd_forking = 0;
        wc_fd_make_end();
    }
}

WC_ONCE
static void atfork_child(void)
{
    wc_fd_window_after_fork();          /* ownfd.c invariant (7) */
    WC_RESET(exec_only_child, 0);   /* a TLS page the parent shares */
    wc_blk_after_fork();                /* wcache/blk.h invariant (5) */
    wc_flusher_after_fork();            /* threads stay behind */
    wc_death_signals_after_fork();
    wc_stats_after_fork();
    wc_guard_after_fork();
    wc_forget_cache_in_child();         /* in every state: the parent's */
    if (wc_state == WC_ST_ON)
        wc_after_fork_child();
}

/* A child is about to be created (one that only execs: `exec_only`). */
WC_ONCE
static void before_spawn(int exec_only)
{
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    wc_nc_shared_all();                 /* invariant (6) */
    /* Nothing cached, nothing tracked: nothing to make consistent, and
     * nothing written (each page written here is a copy-on-write fault
     * in the parent after every fork: its children share it). */
    if (!wc_cachep && !wc_fd_tracked_hi())
        return;
    int e = wc_work_begin();
    wc_consistency_all(WC_WHY_FORK, WC_ALL_SHARE, exec_only);
    wc_work_end(e);
}

/* The real functions a child calls first, looked up in the parent
 * (real.c (1c)): by fork's and vfork's prepare only. Not by _Fork nor a
 * raw fork, which a signal handler may call (they are async-signal-safe,
 * dlsym is not); nor for posix_spawn, system and popen, whose children
 * exec inside glibc. */
static void resolve_for_children(int exec_only)
{
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    wc_real_for_children();
    if (!exec_only)
        wc_stdio_for_children();        /* only an exec follows: no stdio */
}

WC_ONCE
static void atfork_prepare(void)
{
    resolve_for_children(exec_only_child);
    before_spawn(exec_only_child);
    fork_makes_begin();
}

static void atfork_parent(void)
{
    fork_makes_end();
}

/* For the raw syscall() wrapper (syscall.c): a raw fork or clone runs no
 * atfork handler, as _Fork. */
void wc_proc_before_fork(int exec_only)
{
    before_spawn(exec_only);
    fork_makes_begin();
}

void wc_proc_after_fork_parent(void)
{
    fork_makes_end();
}

void wc_proc_after_fork_child(void)
{
    atfork_child();
}

WC_HOT
WC_EXPORT pid_t fork(void)
{
    return REAL(fork)();
}

/* _Fork (glibc 2.34) runs no atfork handlers: do their work here, or the
 * child would write into the parent's store. */
WC_EXPORT pid_t _Fork(void)
{
    before_spawn(exec_only_child);
    fork_makes_begin();
    pid_t p = REAL(_Fork)();
    int e = errno;
    if (p == 0)
        atfork_child();
    else
        fork_makes_end();
    errno = e;
    return p;
}

/* ---- vfork (invariant (7)) -------------------------------------------- */

/* A real fork serves vfork where a real vfork cannot be used: the parent
 * keeps caching its O_CLOEXEC descriptions, the child has its own memory. */
pid_t wc_vfork_by_fork(void)
{
    exec_only_child = 1;
    pid_t p = REAL(fork)();
    exec_only_child = 0;
    return p;
}

/* What the vfork child did to its descriptors, for its exec (own_env):
 * the numbers it opened, closed or duplicated onto (vf_touched: the
 * parent's table says nothing of them any more; numbers from VF_FDS up
 * all count as touched), and the writable files it opened itself and the
 * numbers it duplicated them to (vf_own: nobody else holds them). Written
 * by the child only, emptied by the parent when it runs again. */
#define VF_FDS 4096
#define VF_OWN 32
static unsigned char vf_touched[VF_FDS / 8] WC_LARGE;
static int vf_high;                 /* a number >= VF_FDS was touched */
static int vf_own[VF_OWN];
static unsigned vf_nown;
/* Numbers of the parent's descriptions the child made inheritable by its
 * exec (a duplicate without O_CLOEXEC, F_SETFD clearing it): shared with
 * the exec'd image when the parent runs again (vf_nshare > VF_OWN: too
 * many to list, every description is). */
static int vf_share[VF_OWN];
static unsigned vf_nshare;
/* Numbers the child duplicated a description of the parent's onto, and
 * the parent's number of it (F_DUPFD_CLOEXEC, then F_SETFD on the copy). */
static struct {
    int fd, parent;
} vf_alias[VF_OWN];
static unsigned vf_nalias;
static int vf_nc_on;                /* wc_nc_on before the child ran */
static void *vf_env;                /* the child's exec environment */
static size_t vf_env_len;

int wc_vfork_begin(void);
long wc_vfork_end(long r);

static int vf_is_touched(unsigned fd)
{
    return fd >= VF_FDS ? vf_high : (vf_touched[fd / 8] >> (fd % 8)) & 1;
}

static void vf_touch(unsigned fd)
{
    for (unsigned i = 0; i < vf_nalias; i++)
        if ((unsigned)vf_alias[i].fd == fd) {
            vf_alias[i] = vf_alias[--vf_nalias];
            break;
        }
    if (fd >= VF_FDS)
        vf_high = 1;
    else
        vf_touched[fd / 8] |= (unsigned char)(1u << (fd % 8));
    for (unsigned i = 0; i < vf_nown; i++)
        if ((unsigned)vf_own[i] == fd) {
            vf_own[i] = vf_own[--vf_nown];
            break;
        }
}

int wc_vfork_touched(int fd)
{
    return fd < 0 || vf_is_touched((unsigned)fd);
}

static int vf_owns(int fd)
{
    for (unsigned i = 0; i < vf_nown; i++)
        if (vf_own[i] == fd)
            return 1;
    return 0;
}

void wc_vfork_closed(int fd)
{
    if (fd >= 0)
        vf_touch((unsigned)fd);
}

void wc_vfork_closed_range(unsigned lo, unsigned hi)
{
    for (unsigned fd = lo; fd <= hi && fd < VF_FDS; fd++)
        vf_touch(fd);
    if (hi >= VF_FDS)
        vf_high = 1;
    for (unsigned i = 0; i < vf_nown;)
        if ((unsigned)vf_own[i] >= lo && (unsigned)vf_own[i] <= hi)
            vf_own[i] = vf_own[--vf_nown];
        else
            i++;
}

void wc_vfork_opened(int fd, int flags)
{
    if (fd < 0)
        return;
    vf_touch((unsigned)fd);
    if ((flags & O_ACCMODE) != O_RDONLY && vf_nown < VF_OWN)
        vf_own[vf_nown++] = fd;
}

/* The parent's number of the description at the child's fd, or -1 (the
 * child's own, or closed). */
static int vf_parent_of(int fd)
{
    if (fd < 0)
        return -1;
    if (!vf_is_touched((unsigned)fd))
        return fd;
    for (unsigned i = 0; i < vf_nalias; i++)
        if (vf_alias[i].fd == fd)
            return vf_alias[i].parent;
    return -1;
}

void wc_vfork_inherits(int fd)
{
    fd = vf_parent_of(fd);
    if (fd < 0)
        return;
    for (unsigned i = 0; i < vf_nshare && i < VF_OWN; i++)
        if (vf_share[i] == fd)
            return;
    if (vf_nshare < VF_OWN)
        vf_share[vf_nshare] = fd;
    vf_nshare++;
}

void wc_vfork_duped(int oldfd, int newfd)
{
    if (newfd < 0 || newfd == oldfd || oldfd < 0)
        return;
    /* A description of the parent's seen at a second number: its offset
     * goes back to the kernel now, through oldfd (which still names it),
     * as the exec could hand the cell over at one number only. */
    wc_cell_settle_fd(oldfd);
    int own = vf_owns(oldfd), parent = vf_parent_of(oldfd);
    vf_touch((unsigned)newfd);
    if (own && vf_nown < VF_OWN)
        vf_own[vf_nown++] = newfd;
    if (parent >= 0) {
        if (vf_nalias < VF_OWN)
            vf_alias[vf_nalias++] = (typeof(vf_alias[0])){newfd, parent};
        else
            vf_nshare = VF_OWN + 1;     /* cannot follow: share them all */
    }
    /* Without O_CLOEXEC there, the exec'd image holds it too, though the
     * parent's number had it (vfork_begin left such a one private). */
    int fl = wc_k_fcntl(newfd, F_GETFD, 0);
    if (fl >= 0 && !(fl & FD_CLOEXEC))
        wc_vfork_inherits(newfd);
}

/* 1 to make a real vfork (or a clone of the vfork kind: invariant (9)),
 * 0 where it cannot be kept apart. exec_only: as before_spawn's. */
static int vfork_begin(int exec_only)
{
    if (wc_state == WC_ST_VFORK)
        return 0;       /* the child vforks: a fork keeps its records apart */
    if (wc_state != WC_ST_ON)
        return 1;               /* nothing to keep apart: the kernel's */
    if (wc_depth || !__atomic_load_n(&wc_solo, __ATOMIC_RELAXED) ||
        wc_fd_tracked_hi() > VF_FDS)
        return 0;
    resolve_for_children(exec_only);
    before_spawn(exec_only);
    memset(vf_touched, 0, sizeof vf_touched);
    vf_high = 0;
    vf_nown = 0;
    vf_nshare = 0;
    vf_nalias = 0;
    vf_nc_on = wc_nc_on;
    wc_nc_on = 0;
    wc_state = WC_ST_VFORK;
    return 1;
}

/* Called by vfork (below) before the system call: 1 to make a real vfork,
 * 0 to have a fork serve it. */
__attribute__((used)) int wc_vfork_begin(void)
{
    return vfork_begin(1);
}

/* Called by vfork in the parent, the child gone (exec'd or exited): the
 * value of the system call, returned as vfork returns it. */
__attribute__((used)) long wc_vfork_end(long r)
{
    if (wc_state == WC_ST_VFORK) {     /* wc_vfork_begin set it */
        wc_nc_on = vf_nc_on;
        wc_state = WC_ST_ON;
        if (vf_env) {
            REAL(munmap)(vf_env, vf_env_len);
            vf_env = NULL;
        }
        if (vf_nshare) {
            /* The exec'd image may already write through them, at the
             * kernel's offset (wc_fd_share settles a cell first: a fork's
             * share would move the offset into one the image never
             * sees, and write over its lines). */
            int e = wc_work_begin();
            if (vf_nshare > VF_OWN) {
                unsigned hi = wc_fd_tracked_hi();
                for (unsigned fd = 0; fd < hi; fd++)
                    wc_fd_share((int)fd, 1);
            } else {
                for (unsigned i = 0; i < vf_nshare; i++)
                    wc_fd_share(vf_share[i], 1);
            }
            wc_work_end(e);
            vf_nshare = 0;
        }
    }
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && \
    !defined(__SANITIZE_ADDRESS__)
/* vfork itself: the return address is kept in a register across the
 * system call, as the child returns first and reuses the stack below
 * (what the caller's frame held is the caller's business, as with the
 * kernel's vfork). */
__asm__(".pushsection .text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        "vfork:\n"
        "    sub $8, %rsp\n"
        "    call wc_vfork_begin\n"
        "    add $8, %rsp\n"
        "    test %eax, %eax\n"
        "    jz wc_vfork_by_fork\n"
        "    pop %rdi\n"
        "    mov $58, %eax\n"          /* SYS_vfork */
        "    syscall\n"
        "    push %rdi\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    mov %rax, %rdi\n"
        "    sub $8, %rsp\n"
        "    call wc_vfork_end\n"
        "    add $8, %rsp\n"
        "1:  ret\n"
        ".size vfork, .-vfork\n"
        ".popsection\n");
#else
WC_EXPORT pid_t vfork(void)
{
    return wc_vfork_by_fork();
}
#endif

/* ---- clone and unshare (invariants (9), (10)) ------------------------- */

enum wc_clone_kind wc_clone_kind(unsigned long flags)
{
    int vm = !!(flags & CLONE_VM), files = !!(flags & CLONE_FILES);
    if (vm && files && !(flags & CLONE_VFORK))
        return WC_CLONE_THREAD;
    if (flags & CLONE_SETTLS)
        return WC_CLONE_APART;  /* the shim's thread-locals would move */
    if (!vm && !files)
        return WC_CLONE_FORK;
    return vm && !files && (flags & CLONE_VFORK) ? WC_CLONE_VFORK
                                                 : WC_CLONE_APART;
}

/* A task that shares this process's memory or descriptor table without
 * the other is about to be made: caching stops for good first (8). */
static void clone_apart(void)
{
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    int e = errno;
    wc_log(WC_LOG_DEBUG, "clone: a task that shares the memory or the "
           "descriptor table without the other; caching stops for good");
    wc_proc_off();
    errno = e;
}

void wc_proc_before_raw_clone(enum wc_clone_kind k)
{
    if (k == WC_CLONE_THREAD)
        wc_solo_end();          /* a thread, made behind glibc */
    else if (k != WC_CLONE_FORK)
        clone_apart();          /* a vfork too: the child returns here */
}

/* glibc's clone of a new process: its fn and arg, in the caller's frame,
 * which the child has a copy of. */
struct clone_call {
    int (*fn)(void *);
    void *arg;
};

/* The child's first function: fork's child work, the program's fn, and,
 * as glibc's child then ends by a bare exit system call, exit's work. */
static int clone_child(void *p)
{
    const struct clone_call *cc = p;
    int e = errno;
    atfork_child();
    errno = e;
    int r = cc->fn(cc->arg);
    wc_proc_final_flush();
    return r;
}

WC_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg,
                    ...)
{
    /* glibc reads the three optional arguments whatever the flags say */
    va_list ap;
    va_start(ap, arg);
    pid_t *ptid = va_arg(ap, pid_t *);
    void *tls = va_arg(ap, void *);
    pid_t *ctid = va_arg(ap, pid_t *);
    va_end(ap);
    switch (wc_clone_kind((unsigned)flags)) {
    case WC_CLONE_THREAD:
        wc_solo_end();
        break;
    case WC_CLONE_FORK:
        if (wc_state == WC_ST_ON && !wc_depth && fn) {
            struct clone_call cc = {fn, arg};
            before_spawn(0);
            return REAL(clone)(clone_child, stack, flags, &cc, ptid, tls,
                               ctid);
        }
        break;
    case WC_CLONE_VFORK:
        if (wc_state == WC_ST_VFORK)
            break;              /* a vfork child's: it passes through */
        if (vfork_begin(0)) {
            int r = REAL(clone)(fn, stack, flags, arg, ptid, tls, ctid);
            return (int)wc_vfork_end(r < 0 ? -errno : r);
        }
        clone_apart();
        break;
    case WC_CLONE_APART:
        clone_apart();
        break;
    }
    return REAL(clone)(fn, stack, flags, arg, ptid, tls, ctid);
}

void wc_proc_before_unshare(void)
{
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    int e = errno;
    if (!__atomic_load_n(&wc_solo, __ATOMIC_ACQUIRE) || !wc_flusher_leave()) {
        wc_log(WC_LOG_DEBUG, "a thread takes a descriptor table of its "
               "own; caching stops for good");
        wc_proc_off();
    }
    errno = e;
}

/* Invariant (11): before a call that the kernel refuses to a process
 * with a second thread. With program threads the kernel's answer stands. */
static void alone_for_namespace(void)
{
    if (wc_state != WC_ST_ON || wc_depth ||
        !__atomic_load_n(&wc_solo, __ATOMIC_ACQUIRE))
        return;
    int e = errno;
    wc_flusher_gone();
    errno = e;
}

int wc_names_apart;

/* Invariant (12): names are the process's own from now on. */
static long names_apart(long r)
{
    if (r >= 0 && !__atomic_load_n(&wc_names_apart, __ATOMIC_RELAXED)) {
        __atomic_store_n(&wc_names_apart, 1, __ATOMIC_RELEASE);
        struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
        if (c)
            wc_cache_names_apart(c);
        wc_log(WC_LOG_DEBUG, "names resolve apart from the crash guard's: "
               "no file is cached from now on");
    }
    return r;
}

WC_EXPORT int unshare(int flags)
{
    if (flags & CLONE_FILES)
        wc_proc_before_unshare();
    if (flags & (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM))
        alone_for_namespace();
    long r = wc_raw_syscall(SYS_unshare, flags, 0, 0, 0, 0, 0);
    if (flags & CLONE_NEWNS)
        names_apart(r);
    return (int)wc_ret(r);
}

WC_EXPORT int setns(int fd, int nstype)
{
    /* nstype 0: any kind, a user or mount namespace among them. */
    if (!nstype || (nstype & (CLONE_NEWUSER | CLONE_NEWNS)))
        alone_for_namespace();
    long r = wc_raw_syscall(SYS_setns, fd, nstype, 0, 0, 0, 0);
    if (!nstype || (nstype & CLONE_NEWNS))
        names_apart(r);
    return (int)wc_ret(r);
}

WC_EXPORT int chroot(const char *path)
{
    int r = REAL(chroot)(path);     /* fakechroot's, if it wraps it */
    names_apart(r);
    return r;
}

long wc_sys_pivot_root(const char *new_root, const char *put_old)
{
    return wc_ret(names_apart(wc_raw_syscall(SYS_pivot_root, (long)new_root,
                                             (long)put_old, 0, 0, 0, 0)));
}

WC_EXPORT int posix_spawn(pid_t *pid, const char *path,
                          const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[],
                          char *const envp[])
{
    before_spawn(!(fa && fa->__used > 0));
    wc_cells_settle_all();      /* glibc execs: nothing hands cells over */
    wc_signals_exec(1);         /* its child keeps SIG_IGN, not ours */
    int r = REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
    wc_signals_exec(0);
    return r;
}

WC_EXPORT int posix_spawnp(pid_t *pid, const char *file,
                           const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[],
                           char *const envp[])
{
    before_spawn(!(fa && fa->__used > 0));
    wc_cells_settle_all();
    wc_signals_exec(1);         /* its child keeps SIG_IGN, not ours */
    int r = REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
    wc_signals_exec(0);
    return r;
}

WC_EXPORT int system(const char *cmd)
{
    if (cmd) {
        before_spawn(1);
        wc_cells_settle_all();
    }
    wc_signals_exec(1);
    int r = REAL(system)(cmd);
    wc_signals_exec(0);
    return r;
}

WC_EXPORT FILE *popen(const char *cmd, const char *mode)
{
    before_spawn(1);
    wc_cells_settle_all();
    wc_signals_exec(1);
    FILE *f = REAL(popen)(cmd, mode);
    wc_signals_exec(0);
    return f;
}

/* ---- exec ------------------------------------------------------------- */

#define OWN_VAR "WCACHE_OWN_FDS"
#define OWN_MAX 32                      /* descriptors handed over */
#define OWN_FD_MAX (1u << 20)           /* even with no fd table (off) */

/* Will the new image load this library? envp preloads a file of this
 * library's name. (An environment cleaned of LD_PRELOAD, as sudo or env -i
 * make, must not receive the variable: the program would see it.) */
WC_ONCE
static int env_preloads_us(char *const envp[])
{
    static char name[256];
    if (!name[0]) {
        const char *f = wc_lib_path();
        if (!f)
            f = "libwcache.so";
        const char *slash = strrchr(f, '/');
        snprintf(name, sizeof name, "%s", slash ? slash + 1 : f);
    }
    for (size_t i = 0; envp && envp[i]; i++)
        if (!strncmp(envp[i], "LD_PRELOAD=", 11) && strstr(envp[i], name))
            return 1;
    return 0;
}

/* Is the program at (dirfd, path) a dynamically linked ELF (one that will
 * load the preloaded library)? A static one ignores LD_PRELOAD, and a
 * script runs an interpreter that exe_of's identity does not name. */
WC_ONCE
static int dynamic_elf(int dirfd, const char *path, int flags)
{
    int fd = wc_k_openat(dirfd, path, O_RDONLY | O_CLOEXEC |
                         ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
    if (fd < 0 && (flags & AT_EMPTY_PATH) && !*path)
        fd = wc_k_fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    Elf64_Ehdr eh;
    int dyn = 0;
    if (wc_k_pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh &&
        !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
        eh.e_ident[EI_CLASS] == ELFCLASS64 &&
        eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum < 256) {
        Elf64_Phdr ph[256];
        size_t sz = (size_t)eh.e_phnum * sizeof ph[0];
        if (wc_k_pread(fd, ph, sz, (off_t)eh.e_phoff) == (ssize_t)sz)
            for (unsigned i = 0; i < eh.e_phnum; i++)
                dyn |= ph[i].p_type == PT_INTERP;
    }
    wc_k_close(fd);
    return dyn;
}

/* Does the program carry file capabilities (it runs in secure mode, as a
 * set-user-ID one does, and its loader ignores our LD_PRELOAD)? */
WC_ONCE
static int privileged(int dirfd, const char *path)
{
    char p[64];
    const char *at = path;
    if (dirfd != AT_FDCWD && (!*path || path[0] != '/')) {
        if (*path)
            return 1;       /* relative to a directory descriptor: unsure */
        snprintf(p, sizeof p, "/proc/self/fd/%d", dirfd);
        at = p;
    }
    int e = errno;
    ssize_t n = getxattr(at, "security.capability", NULL, 0);
    errno = e;
    return n > 0;
}

/* The program a path names, as /proc/self/exe will show it, if it is a
 * dynamically linked ELF that will load this library. */
WC_ONCE
static const struct stat *exe_of(int dirfd, const char *path, int flags,
                                 struct stat *st)
{
    int r = wc_k_fstatat(dirfd, path, st,
                          flags & (AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
    if (r != 0 || !S_ISREG(st->st_mode) ||
        (st->st_mode & (S_ISUID | S_ISGID)) || privileged(dirfd, path))
        return NULL;
    wc_fd_window_open(0);               /* ownfd.c invariant (7) */
    int dyn = dynamic_elf(dirfd, path, flags);
    wc_fd_window_close();
    return dyn ? st : NULL;
}

/* envp with WCACHE_OWN_FDS=pid:exe/list in place of any it had, in one
 * anonymous mapping of *len bytes; NULL if it cannot be made. */
WC_ONCE
static char **env_with(char *const envp[], const struct stat *exe,
                       const char *list, size_t *len)
{
    char var[64 + OWN_MAX * 100];
    int vn = snprintf(var, sizeof var, OWN_VAR "=%lld:%llu:%llu/%s",
                      (long long)getpid(), (unsigned long long)exe->st_dev,
                      (unsigned long long)exe->st_ino, list);
    if (vn < 0 || vn >= (int)sizeof var)
        return NULL;
    size_t kk = 0, bytes = (size_t)vn + 1;
    for (; envp && envp[kk]; kk++)
        ;
    *len = (kk + 2) * sizeof(char *) + bytes;
    char **out = REAL(mmap)(NULL, *len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (out == MAP_FAILED)
        return NULL;
    char *str = (char *)(out + kk + 2);
    memcpy(str, var, bytes);
    size_t j = 0;
    for (size_t i = 0; i < kk; i++)
        if (strncmp(envp[i], OWN_VAR "=", sizeof OWN_VAR))
            out[j++] = envp[i];
    out[j++] = str;
    out[j] = NULL;
    return out;
}

/* Invariant (6): envp with WCACHE_OWN_FDS naming the descriptors held
 * alone, and those whose offset is in a cell (shared.c invariant (6)),
 * for the program at (dirfd, path) (NULL: not known); NULL when there is
 * none to name, no room, or the new image will not run this library: the
 * caller execs with envp, every cell settled. The program is looked at
 * only when there is something to hand over. The array and strings are
 * one anonymous mapping of *len bytes; rfds[*nrfd] the regions' memfds
 * passed with the cells (own_env_free after a failed exec). */
WC_ONCE
static char **own_env(char *const envp[], int dirfd, const char *path,
                      int flags, size_t *len, int *rfds, int *nrfd)
{
    *nrfd = 0;
    /* A vfork child (invariant (7)) reads its parent's table, for the
     * numbers it did not touch, and names the files it opened. */
    int vf = wc_state == WC_ST_VFORK;
    if ((!vf && (wc_state != WC_ST_ON || wc_depth)) || !path) {
        wc_cells_settle_all();
        return NULL;
    }
    int e = errno;
    char list[OWN_MAX * 80];
    int n = 0, count = 0;
    struct wc_cell *cells[OWN_MAX];
    unsigned cfd[OWN_MAX], ncell = 0;
    unsigned tracked = wc_fd_tracked_hi(), own = wc_nc_own_hi();
    unsigned hi = tracked > own ? tracked : own;
    for (unsigned i = 0; vf && i < vf_nown; i++)
        hi = (unsigned)vf_own[i] + 1 > hi ? (unsigned)vf_own[i] + 1 : hi;
    for (unsigned fd = 0; fd < hi; fd++) {
        dev_t dev;
        ino_t ino;
        struct stat st;
        struct wc_cell *c = NULL;
        struct wc_desc *d = fd < tracked && !(vf && vf_is_touched(fd))
                                ? wc_fd_peek((int)fd) : NULL;
        int how = count < OWN_MAX && d
                      ? wc_fd_handover((int)fd, &dev, &ino, &c) : 0;
        /* In a vfork child, one the parent holds alone is not the child's
         * to give (an O_CLOEXEC one the child let through). */
        int named = how && !(vf && how == WC_HAND_OWN);
        if (!named && count < OWN_MAX &&
            (vf ? vf_owns((int)fd) : wc_nc_own((int)fd)) &&
            wc_k_fstat((int)fd, &st) == 0 && S_ISREG(st.st_mode)) {
            dev = st.st_dev;
            ino = st.st_ino;
            named = 1;
        }
        if (!named) {
            /* Not handed over: any cell of its settled (the new image
             * would take the kernel's offset). */
            if (d)
                wc_cell_settle((int)fd, d);
            continue;
        }
        int fl = wc_k_fcntl((int)fd, F_GETFD, 0);
        if (fl < 0 || (fl & FD_CLOEXEC))
            continue;
        if (c) {
            cells[ncell] = c;
            cfd[ncell++] = fd;
        }
        n += snprintf(list + n, sizeof list - (size_t)n, "%s%u:%llu:%llu",
                      count ? "," : "", fd, (unsigned long long)dev,
                      (unsigned long long)ino);
        if (c)
            n += snprintf(list + n, sizeof list - (size_t)n, "@");
        count++;
    }
    struct stat xst;
    const struct stat *exe = count && n < (int)sizeof list &&
                                     env_preloads_us(envp)
                                 ? exe_of(dirfd, path, flags, &xst)
                                 : NULL;
    /* Each cell's region goes with it, as its descriptor without
     * FD_CLOEXEC ("fd:dev:ino@rfd.idx.rdev.rino"); a cell that cannot go is
     * settled, and its entry left as "@": the new image then takes the
     * descriptor as inherited, at the kernel's offset. */
    char full[OWN_MAX * 100];
    int fn = 0;
    unsigned k = 0;
    for (const char *q = list; exe && *q; q++) {
        if (*q != '@') {
            if (fn < (int)sizeof full - 1)
                full[fn++] = *q;
            continue;
        }
        struct wc_cell_ref ref;
        int rfd = wc_cell_export(cells[k], &ref);
        if (rfd >= 0) {
            /* The kernel's offset where the cell's is, for code of the
             * new image that writes before the shim starts there. */
            wc_cell_sync_kernel((int)cfd[k], cells[k]);
            rfds[(*nrfd)++] = rfd;
            fn += snprintf(full + fn, sizeof full - (size_t)fn,
                           "@%d.%u.%llu.%llu", rfd, ref.idx, ref.dev,
                           ref.ino);
        } else {
            struct wc_desc *d = wc_fd_peek((int)cfd[k]);
            if (d)
                wc_cell_settle((int)cfd[k], d);
            fn += snprintf(full + fn, sizeof full - (size_t)fn, "@");
        }
        k++;
    }
    full[fn < (int)sizeof full ? fn : (int)sizeof full - 1] = 0;
    errno = e;
    if (!exe || fn >= (int)sizeof full - 1)
        goto none;
    char **out = env_with(envp, exe, full, len);
    if (!out)
        goto none;
    if (vf) {
        vf_env = out;           /* the parent's to unmap */
        vf_env_len = *len;
    }
    return out;
none:
    wc_cells_settle_all();
    for (int i = 0; i < *nrfd; i++)
        wc_cell_unexport(rfds[i]);
    *nrfd = 0;
    errno = e;
    return NULL;
}

static void own_env_free(char **env, size_t len, const int *rfds, int nrfd)
{
    int e = errno;
    if (env && (void *)env == vf_env)
        vf_env = NULL;              /* a vfork child's, unmapped here */
    if (env)
        REAL(munmap)(env, len);
    for (int i = 0; i < nrfd; i++)
        wc_cell_unexport(rfds[i]);
    errno = e;
}

/* The cells named in the variable (the text after the identity), taken
 * into this image: each descriptor whose identity matches is adopted with
 * its cell (`adopt`), or its cell settled (the shim is off here, or the
 * variable was not meant for this image). The regions' descriptors are
 * closed. */
static void own_cells(const char *p, int adopt)
{
    int rfds[OWN_MAX], nrfd = 0;
    while (*p) {
        unsigned fd, idx;
        unsigned long long dev, ino;
        int used = 0, rfd;
        struct stat st;
        struct wc_cell *c;
        if (sscanf(p, "%u:%llu:%llu%n", &fd, &dev, &ino, &used) < 3 || !used)
            break;
        p += used;
        unsigned long long rdev, rino;
        if (*p == '@' &&
            sscanf(p, "@%d.%u.%llu.%llu%n", &rfd, &idx, &rdev, &rino,
                   &used) == 4 && used) {
            p += used;
            /* The region's memfd as the old image named it: a number
             * another thread replaced in the instant before the exec is
             * the program's, neither used nor closed here. */
            int seen = 0, ok = rfd >= 0 && (unsigned)rfd < OWN_FD_MAX &&
                              !wc_fd_is_internal(rfd) &&
                              wc_k_fstat(rfd, &st) == 0 &&
                              (unsigned long long)st.st_dev == rdev &&
                              (unsigned long long)st.st_ino == rino;
            for (int i = 0; i < nrfd; i++)
                seen |= rfds[i] == rfd;
            if (ok && !seen && nrfd < OWN_MAX)
                rfds[nrfd++] = rfd;
            if (!ok || fd >= OWN_FD_MAX || wc_k_fstat((int)fd, &st) != 0 ||
                !S_ISREG(st.st_mode) || (unsigned long long)st.st_dev != dev ||
                (unsigned long long)st.st_ino != ino)
                ;                       /* not that description */
            else if (!adopt || !(c = wc_cell_import(rfd, idx)) ||
                     !wc_fd_adopt((int)fd, 0, c))
                wc_cell_settle_at((int)fd, rfd, idx);
        } else if (*p == '@') {
            p++;
        }
        if (*p == ',')
            p++;
    }
    for (int i = 0; i < nrfd; i++)
        wc_k_close(rfds[i]);
}

WC_ONCE
unsigned wc_exec_own_take(unsigned char *why, unsigned char mark)
{
    const char *v = getenv(OWN_VAR);
    if (!v)
        return 0;
    char buf[64 + OWN_MAX * 100];
    snprintf(buf, sizeof buf, "%s", v);
    unsetenv(OWN_VAR);
    long long pid;
    unsigned long long xdev, xino;
    int at = 0;
    struct stat st;
    unsigned hi = 0;
    if (sscanf(buf, "%lld:%llu:%llu/%n", &pid, &xdev, &xino, &at) < 3 || !at)
        return 0;
    if (!why || pid != (long long)getpid() ||
        wc_k_stat("/proc/self/exe", &st) != 0 ||
        (unsigned long long)st.st_dev != xdev ||
        (unsigned long long)st.st_ino != xino) {
        /* Not this image's to use; but cells it names must not stay
         * where nobody will settle them. */
        if (pid == (long long)getpid())
            own_cells(buf + at, 0);
        return 0;
    }
    own_cells(buf + at, 1);
    for (char *p = buf + at; *p;) {
        unsigned fd;
        unsigned long long dev, ino;
        int used = 0;
        if (sscanf(p, "%u:%llu:%llu%n", &fd, &dev, &ino, &used) < 3 || !used)
            return hi;
        p += used;
        int cell = *p == '@';
        while (*p && *p != ',')
            p++;
        if (*p == ',')
            p++;
        if (!cell && fd < wc_nfds && wc_k_fstat((int)fd, &st) == 0 &&
            S_ISREG(st.st_mode) && (unsigned long long)st.st_dev == dev &&
            (unsigned long long)st.st_ino == ino) {
            __atomic_store_n(&why[fd], mark, __ATOMIC_RELAXED);
            hi = fd + 1 > hi ? fd + 1 : hi;
        }
    }
    return hi;
}

/* before_exec removed the backing file's name (it cannot be given back:
 * a file without links cannot be linked again); or left it, the program
 * having threads, for exec_now. */
static int exec_unnamed, exec_threads;

WC_ONCE
static void before_exec(void)
{
    if (wc_state == WC_ST_OFF && wc_cachep && !wc_depth) {
        /* Stopped for good (invariant (8)), the engine's descriptors still
         * open: one closed by the exec would drop the program's POSIX
         * locks on its file (execlocks.c). */
        int e = wc_work_begin();
        wc_exec_keep_locks();
        wc_work_end(e);
        return;
    }
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    exec_threads = !__atomic_load_n(&wc_solo, __ATOMIC_ACQUIRE);
    int e = wc_work_begin();
    wc_consistency_all(WC_WHY_EXEC, WC_ALL_SYNC, 0);
    wc_guard_settle();          /* guard.c (3b) */
    wc_exec_keep_locks();       /* execlocks.c */
    /* With threads, the others may cache until exec_now: the name stays
     * for the guard until then. */
    exec_unnamed = exec_threads ? 0 : wc_proc_image_ends();
    wc_work_end(e);
}

/* Right before the kernel's exec (invariant (3)): the program's other
 * threads may have cached writes since before_exec wrote everything back,
 * and the exec ends them with the image: with threads, the process stops
 * caching here, what they cached meanwhile goes to the files, their
 * writes from now on to the kernel, and only then does the backing
 * file's name go (a death before it: the guard replays what they cached).
 * (After own_env, which needs the table as it was.) */
static void exec_now(void)
{
    wc_signals_exec(1);         /* signals.c: SIG_IGN survives exec */
    if (exec_threads) {
        exec_threads = 0;
        proc_off(1);            /* the statistics, the name if clean */
    }
}

/* The exec failed and this image goes on (invariant (3)): a store without
 * a name is one the guard can never find, so bytes cached in it from now
 * on would die with the process: it stops caching for good, as (8). */
static void exec_failed(void)
{
    wc_signals_exec(0);
    wc_exec_failed();
    if (!exec_threads)
        wc_nc_published();      /* before_exec published them (probe AA) */
    if (exec_unnamed) {
        exec_unnamed = 0;
        proc_off(0);
    }
}

WC_EXPORT int execve(const char *path, char *const argv[],
                     char *const envp[])
{
    before_exec();
    size_t len = 0;
    int rfds[OWN_MAX], nrfd;
    char **own = own_env(envp, AT_FDCWD, path, 0, &len, rfds, &nrfd);
    exec_now();
    int r = REAL(execve)(path, argv, own ? own : envp);
    own_env_free(own, len, rfds, nrfd);
    exec_failed();
    return r;
}

WC_EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

/* A name without a slash is searched in PATH: not known before. */
static const char *named(const char *file)
{
    return file && strchr(file, '/') ? file : NULL;
}

WC_EXPORT int execvp(const char *file, char *const argv[])
{
    before_exec();
    size_t len = 0;
    int rfds[OWN_MAX], nrfd;
    char **own = own_env(environ, AT_FDCWD, named(file), 0, &len, rfds, &nrfd);
    exec_now();
    int r = own ? REAL(execvpe)(file, argv, own) : REAL(execvp)(file, argv);
    own_env_free(own, len, rfds, nrfd);
    exec_failed();
    return r;
}

WC_EXPORT int execvpe(const char *file, char *const argv[],
                      char *const envp[])
{
    before_exec();
    size_t len = 0;
    int rfds[OWN_MAX], nrfd;
    char **own = own_env(envp, AT_FDCWD, named(file), 0, &len, rfds, &nrfd);
    exec_now();
    int r = REAL(execvpe)(file, argv, own ? own : envp);
    own_env_free(own, len, rfds, nrfd);
    exec_failed();
    return r;
}

WC_EXPORT int execveat(int dirfd, const char *path, char *const argv[],
                       char *const envp[], int flags)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    before_exec();
    size_t len = 0;
    int rfds[OWN_MAX], nrfd;
    char **own = own_env(envp, dirfd, path, flags, &len, rfds, &nrfd);
    exec_now();
    int r = REAL(execveat)(dirfd, path, argv, own ? own : envp, flags);
    own_env_free(own, len, rfds, nrfd);
    exec_failed();
    return r;
}

WC_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    before_exec();
    size_t len = 0;
    int rfds[OWN_MAX], nrfd;
    char **own = own_env(envp, fd, "", AT_EMPTY_PATH, &len, rfds, &nrfd);
    exec_now();
    int r = REAL(fexecve)(fd, argv, own ? own : envp);
    own_env_free(own, len, rfds, nrfd);
    exec_failed();
    return r;
}

/* execl, execle, execlp: collect the list into an argv on the stack. */
#define COLLECT_ARGS(arg0, ap, argv)                             \
    size_t n_ = 1;                                                         \
    va_list cp_;                                                           \
    va_copy(cp_, ap);                                                      \
    while (va_arg(cp_, char *))                                            \
        n_++;                                                              \
    va_end(cp_);                                                           \
    char *argv[n_ + 1];                                                    \
    argv[0] = (char *)(arg0);                                              \
    for (size_t i_ = 1; i_ <= n_; i_++)                                    \
        argv[i_] = va_arg(ap, char *);

WC_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv)
    va_end(ap);
    return execve(path, argv, environ);
}

WC_EXPORT int execle(const char *path, const char *arg, ...)
{
    char **envp = NULL;
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv)
    envp = va_arg(ap, char **);
    va_end(ap);
    return execve(path, argv, envp);
}

WC_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv)
    va_end(ap);
    return execvp(file, argv);
}

/* ---- resource limits: the write path obeys RLIMIT_FSIZE ------------- */

static void limits_changed(int resource)
{
    struct wc_cache *c = wc_cachep;
    if (resource == RLIMIT_STACK || resource == RLIMIT_AS)
        wc_altstack_limits_changed();   /* altstack.c (6) */
    if (c && (resource == RLIMIT_FSIZE || resource == RLIMIT_NOFILE) &&
        wc_state == WC_ST_ON && !wc_depth) {
        int e = wc_work_begin();
        wc_cache_limits_changed(c);
        wc_work_end(e);
    }
}

/* Before RLIMIT_FSIZE changes: the bytes written under the old limit go
 * to their files first (invariant (5)). Written back after a lowered
 * limit, they met it: SIGXFSZ killed a program whose kernel run had
 * written them before the limit came down. */
static void limits_before(int resource)
{
    struct wc_cache *c = wc_cachep;
    if (c && resource == RLIMIT_FSIZE && wc_state == WC_ST_ON && !wc_depth) {
        int e = wc_work_begin();
        wc_cache_flush(c, WC_WHY_OTHER);
        wc_work_end(e);
    }
}

WC_EXPORT int setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
    if (res == RLIMIT_NOFILE && wc_state == WC_ST_ON)
        return wc_nofile_prlimit(0, rl, NULL);
    limits_before((int)res);
    int r = REAL(setrlimit)(res, rl);
    if (r == 0)
        limits_changed((int)res);
    return r;
}

WC_EXPORT int setrlimit64(__rlimit_resource_t res, const struct rlimit64 *rl)
{
    return setrlimit(res, (const struct rlimit *)rl);
}

WC_EXPORT int prlimit(pid_t pid, __rlimit_resource_t res,
                      const struct rlimit *nl, struct rlimit *ol)
{
    if (res == RLIMIT_NOFILE && wc_state == WC_ST_ON &&
        (pid == 0 || pid == getpid()))
        return wc_nofile_prlimit(pid, nl, ol);
    if (nl && (pid == 0 || pid == getpid()))
        limits_before((int)res);
    int r = REAL(prlimit)(pid, res, nl, ol);
    if (r == 0 && nl && (pid == 0 || pid == getpid()))
        limits_changed((int)res);
    return r;
}

WC_EXPORT int prlimit64(pid_t pid, __rlimit_resource_t res,
                        const struct rlimit64 *nl, struct rlimit64 *ol)
{
    return prlimit(pid, res, (const struct rlimit *)nl, (struct rlimit *)ol);
}

WC_EXPORT long ulimit(int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    if (cmd == UL_SETFSIZE)
        limits_before(RLIMIT_FSIZE);
    long r = REAL(ulimit)(cmd, arg);
    if (r != -1 && cmd == UL_SETFSIZE)
        limits_changed(RLIMIT_FSIZE);
    return r;
}

/* ---- start-up --------------------------------------------------------- */

__attribute__((constructor)) static void wc_init(void)
{
    int e = errno;
    if (!wc_real_init() || !wc_env_load() || wc_fdtab_init() < 0) {
        wc_state = WC_ST_OFF;
        wc_exec_own_take(NULL, 0);      /* never left for a later image */
        errno = e;
        return;
    }
    /* pthread_atfork's body (libc_nonshared.a, linked at the end of the
     * code): called directly, it is one page fewer at start-up. */
    __register_atfork(atfork_prepare, atfork_parent, atfork_child,
                      __dso_handle);
    wc_queue_init();
    wc_fd_calls_init();         /* ownfd.c: a thread's end */
    wc_state = WC_ST_ON;
    wc_signals_init();
    wc_guard_replay_dead();
    wc_nc_init();       /* descriptors open now: at their first write */
    errno = e;
}
