/*
 * proc.c - the process side: start-up and exit, fork and exec, the
 * deadline flusher thread, the statistics, and SIGSEGV/SIGBUS handlers.
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
 *   (3) exec, in every form: flush, kernel offsets, statistics, and the
 *       backing file's name removed when nothing is left unwritten
 *       (wc_cache_may_remove; the mapping stays valid if the exec fails;
 *       the new image creates its own store and adopts the inherited
 *       descriptors as shared ones).
 *   (4) Exit in every form: return from main and exit() reach the
 *       destructor; _exit and _Exit flush first themselves. After that
 *       everything passes through (a later destructor's write still goes
 *       to the file, at the right offset).
 *   (5) The flusher thread has every signal blocked and calls only
 *       wc_cache_flush_expired: data is on disk at most about
 *       WCACHE_FLUSH_MS after it was written, even while the program
 *       sleeps. It ends when the program's threads have all ended, so
 *       that glibc's "last thread calls exit(0)" still ends the process.
 *   (6) setrlimit/prlimit/ulimit of RLIMIT_FSIZE tell the engine
 *       (wc_cache_limits_changed), which reads the limit only then.
 *       RLIMIT_NOFILE is read and set through ownfd.c, which places the
 *       engine's own descriptors above it.
 *   (7) The engine's fault handler for the non-faulting copy stays first:
 *       the program's sigaction/signal for SIGSEGV and SIGBUS are recorded
 *       through wc_fault_sigaction once the handler is installed.
 *   (8) Death by a catchable signal whose action is the default (SIGTERM,
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
 *   (9) Death by a synchronous fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 *       SIGTRAP, SIGSYS) at the default action, in any thread, stack
 *       overflow included (every thread has an alternate signal stack,
 *       altstack.c), writes back first, then dies of the same signal with
 *       the same status and core dump. The program's own handlers run as
 *       before; a fault inside the shim writes back from a raw-forked
 *       child that holds no lock (flush_before_death).
 */
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
#include <ulimit.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/ucopy.h"

extern char **environ;

volatile int wc_fault_ready;
static WC_TLS int exec_only_child;   /* vfork: the child only execs */

/* ---- the deadline flusher --------------------------------------------- */

/* The flusher's thread id once it runs (0 before, and in a fork child);
 * g_flusher_starting while pthread_create may have made it without its
 * id published yet. */
static int g_flusher_tid, g_flusher_starting;

static void *flusher_main(void *arg)
{
    struct wc_cache *c = arg;
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
    wc_guard_reap();
    while (wc_state == WC_ST_ON && wc_cachep == c) {
        REAL(clock_nanosleep)(CLOCK_MONOTONIC, 0, &ts, NULL);
        if (wc_state != WC_ST_ON || wc_cachep != c)
            break;
        /* main called pthread_exit and every other program thread has
         * ended: glibc calls exit(0) when the last thread ends, and that
         * is this one now (the destructor then flushes). */
        if (++wakes % look_every == 0 && wc_program_threads_gone())
            break;
        wc_depth = 1;
        wc_cache_flush_expired(c, age_ns);
        wc_depth = 0;
    }
    return NULL;
}

int wc_flusher_tid(void)
{
    int tid;
    while (!(tid = __atomic_load_n(&g_flusher_tid, __ATOMIC_ACQUIRE)) &&
           __atomic_load_n(&g_flusher_starting, __ATOMIC_ACQUIRE))
        sched_yield();
    return tid;
}

void wc_flusher_start(void)
{
    pthread_t t;
    pthread_attr_t a;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 << 10);
    __atomic_store_n(&g_flusher_starting, 1, __ATOMIC_RELEASE);
    int r = pthread_create(&t, &a, flusher_main, wc_cachep);
    if (r)
        __atomic_store_n(&g_flusher_starting, 0, __ATOMIC_RELEASE);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        wc_log(WC_LOG_WARN, "no flusher thread (%s): data reaches files "
               "only at consistency points", strerror(r));
        wc_guard_reap();
    }
}

/* ---- statistics -------------------------------------------------------- */

/* Append buf[0..n) to `path` (O_APPEND: one write per record, so the
 * records of concurrent processes do not mix). */
static void stats_append(const char *path, const char *buf, size_t n)
{
    int fd = REAL(openat)(AT_FDCWD, path,
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        wc_log(WC_LOG_WARN, "statistics: cannot open %s: %s", path,
               strerror(errno));
        return;
    }
    REAL(write)(fd, buf, n);
    REAL(close)(fd);
}

/* Append formatted text to buf (size sizeof buf), advancing n, cut at the
 * end of buf. */
#define OUT(...)                                                           \
    do {                                                                   \
        int k_ = snprintf(buf + n, sizeof buf - n, __VA_ARGS__);           \
        if (k_ > 0)                                                        \
            n = n + (size_t)k_ < sizeof buf ? n + (size_t)k_               \
                                            : sizeof buf - 1;              \
    } while (0)

/* The wcache command's record of this process image (WCACHE_STATS_RAW):
 * "key=value..." then "|reason=count" for writes not cached. */
static void stats_raw(const struct wc_stats *s)
{
    char buf[2048];
    size_t n = 0;
    OUT("pid=%d processes=1 files=%llu writes=%llu bytes=%llu "
        "wb_calls=%llu through=%llu wb_bytes=%llu faults=%llu errors=%llu "
        "evictions=%llu store_full=%llu", (int)getpid(),
        (unsigned long long)wc_stats_files(),
        (unsigned long long)s->writes, (unsigned long long)s->bytes,
        (unsigned long long)s->wb_calls, (unsigned long long)s->through,
        (unsigned long long)s->wb_bytes, (unsigned long long)s->faults,
        (unsigned long long)s->errors, (unsigned long long)s->evictions,
        (unsigned long long)s->store_full);
    for (int i = 0; i < WC_WHY_COUNT; i++)
        OUT(" flush_%s=%llu", wc_reason_names[i],
            (unsigned long long)s->flushes[i]);
    n += wc_nc_format_raw(buf + n, sizeof buf - n - 1);
    buf[n++] = '\n';
    stats_append(wc_cfg.stats_raw, buf, n);
}

void wc_stats_report(struct wc_cache *c)
{
    if (!wc_cfg.stats && !wc_cfg.stats_raw[0])
        return;
    struct wc_stats s = {0};
    if (c)
        wc_cache_stats(c, &s);
    if (wc_cfg.stats_raw[0])
        stats_raw(&s);
    if (!wc_cfg.stats || (!s.writes && !s.through && !wc_nc_total()))
        return;         /* a process that wrote nothing: no lines */
    char buf[2048];
    size_t n = 0;
    uint64_t issued = s.wb_calls + s.through;
    uint64_t avoided = s.writes > s.wb_calls ? s.writes - s.wb_calls : 0;
    OUT("wcache[%d]: %llu writes absorbed (%llu bytes); system calls: "
        "%llu issued (%llu write-back, %llu written through), %llu "
        "avoided; %llu bytes written back\n", (int)getpid(),
        (unsigned long long)s.writes, (unsigned long long)s.bytes,
        (unsigned long long)issued, (unsigned long long)s.wb_calls,
        (unsigned long long)s.through, (unsigned long long)avoided,
        (unsigned long long)s.wb_bytes);
    OUT("wcache[%d]: flushes:", (int)getpid());
    for (int i = 0; i < WC_WHY_COUNT; i++)
        OUT(" %s %llu", wc_reason_names[i],
            (unsigned long long)s.flushes[i]);
    OUT("; faults retried %llu; write-back errors %llu; evictions %llu; "
        "store full %llu\n", (unsigned long long)s.faults,
        (unsigned long long)s.errors, (unsigned long long)s.evictions,
        (unsigned long long)s.store_full);
    n += wc_nc_format(buf + n, sizeof buf - n);
    if (wc_cfg.stats == 2)
        stats_append(wc_cfg.stats_path, buf, n);
    else
        REAL(write)(2, buf, n);
}
#undef OUT

/* The image ends (exit, _exit, exec): statistics, the store's name. */
static void image_ends(void)
{
    struct wc_cache *c = wc_cachep;
    wc_stats_report(c);
    if (!c)
        return;
    wc_cache_remove_if_clean(c);    /* kept if anything is not written */
}

/* ---- exit ------------------------------------------------------------- */

/*
 * A signal handler exits while this thread is inside the shim: the locks
 * it holds may guard structures caught mid-update, so this process cannot
 * write back. A raw fork (no atfork handlers: async-signal-safe) gives a
 * single-threaded copy in which nobody holds anything: it takes every lock
 * as free, runs what handlers queued, writes back from the shared store,
 * sets the shared kernel offsets, and exits. The parent waits, then exits
 * as asked whatever became of the child (the crash guard, a later issue,
 * covers a child that could not finish). Other threads' writes that return
 * after the fork are not in the copy.
 */
static void flush_in_child(void)
{
    long pid = REAL(syscall)(SYS_fork);
    if (pid == 0) {
        wc_unlock_all_in_child();
        wc_depth = 1;
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

static void final_flush(void)
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
    image_ends();
    wc_work_end(e);
}

__attribute__((destructor)) static void wc_fini(void)
{
    final_flush();
}

WC_EXPORT void exit(int status)
{
    /* The destructor runs after the atexit handlers: it flushes. */
    REAL(exit)(status);
    __builtin_unreachable();
}

WC_EXPORT void _exit(int status)
{
    final_flush();
    REAL(_exit)(status);
    __builtin_unreachable();
}

WC_EXPORT void _Exit(int status)
{
    final_flush();
    REAL(_Exit)(status);
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
            image_ends();
        wc_work_end(e);
    }
    REAL(abort)();
    __builtin_unreachable();
}

/* For the raw syscall() wrapper (syscall.c): exit_group runs no
 * destructor. */
void wc_proc_exit_flush(void)
{
    final_flush();
}

/* ---- fork ------------------------------------------------------------- */

static void atfork_child(void)
{
    exec_only_child = 0;
    g_flusher_tid = g_flusher_starting = 0;    /* threads stay behind */
    wc_death_signals_after_fork();
    wc_stats_after_fork();
    wc_guard_after_fork();
    if (wc_state == WC_ST_ON)
        wc_after_fork_child();
}

/* A child is about to be created (one that only execs: `exec_only`). */
static void before_spawn(int exec_only)
{
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    int e = wc_work_begin();
    wc_consistency_all(WC_WHY_FORK, WC_ALL_SHARE, exec_only);
    wc_work_end(e);
}

static void atfork_prepare(void)
{
    before_spawn(exec_only_child);
}

/* For the raw syscall() wrapper (syscall.c): a raw fork or clone runs no
 * atfork handler, as _Fork. */
void wc_proc_before_fork(int exec_only)
{
    before_spawn(exec_only);
}

void wc_proc_after_fork_child(void)
{
    atfork_child();
}

WC_EXPORT pid_t fork(void)
{
    return REAL(fork)();
}

/* _Fork (glibc 2.34) runs no atfork handlers: do their work here, or the
 * child would write into the parent's store. */
WC_EXPORT pid_t _Fork(void)
{
    atfork_prepare();
    pid_t p = REAL(_Fork)();
    if (p == 0)
        atfork_child();
    return p;
}

/* vfork's child may only exec or _exit; a real fork serves it (the child
 * then has its own memory, so the shim's state cannot be corrupted by it),
 * and the parent keeps caching its O_CLOEXEC descriptions. */
WC_EXPORT pid_t vfork(void)
{
    exec_only_child = 1;
    pid_t p = REAL(fork)();
    exec_only_child = 0;
    return p;
}

WC_EXPORT int posix_spawn(pid_t *pid, const char *path,
                          const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[],
                          char *const envp[])
{
    before_spawn(!(fa && fa->__used > 0));
    return REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
}

WC_EXPORT int posix_spawnp(pid_t *pid, const char *file,
                           const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[],
                           char *const envp[])
{
    before_spawn(!(fa && fa->__used > 0));
    return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
}

WC_EXPORT int system(const char *cmd)
{
    if (cmd)
        before_spawn(1);
    return REAL(system)(cmd);
}

WC_EXPORT FILE *popen(const char *cmd, const char *mode)
{
    before_spawn(1);
    return REAL(popen)(cmd, mode);
}

/* ---- exec ------------------------------------------------------------- */

static void before_exec(void)
{
    if (wc_state != WC_ST_ON || wc_depth)
        return;
    int e = wc_work_begin();
    wc_consistency_all(WC_WHY_EXEC, WC_ALL_SYNC, 0);
    image_ends();
    wc_work_end(e);
}

WC_EXPORT int execve(const char *path, char *const argv[],
                     char *const envp[])
{
    before_exec();
    return REAL(execve)(path, argv, envp);
}

WC_EXPORT int execv(const char *path, char *const argv[])
{
    before_exec();
    return REAL(execv)(path, argv);
}

WC_EXPORT int execvp(const char *file, char *const argv[])
{
    before_exec();
    return REAL(execvp)(file, argv);
}

WC_EXPORT int execvpe(const char *file, char *const argv[],
                      char *const envp[])
{
    before_exec();
    return REAL(execvpe)(file, argv, envp);
}

WC_EXPORT int execveat(int dirfd, const char *path, char *const argv[],
                       char *const envp[], int flags)
{
    before_exec();
    return REAL(execveat)(dirfd, path, argv, envp, flags);
}

WC_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    before_exec();
    return REAL(fexecve)(fd, argv, envp);
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
    if (c && (resource == RLIMIT_FSIZE || resource == RLIMIT_NOFILE) &&
        wc_state == WC_ST_ON && !wc_depth) {
        int e = wc_work_begin();
        wc_cache_limits_changed(c);
        wc_work_end(e);
    }
}

WC_EXPORT int setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
    if (res == RLIMIT_NOFILE && wc_state == WC_ST_ON)
        return wc_nofile_prlimit(0, rl, NULL);
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
    long r = REAL(ulimit)(cmd, arg);
    if (r != -1 && cmd == UL_SETFSIZE)
        limits_changed(RLIMIT_FSIZE);
    return r;
}

/* ---- death by a signal (invariant 8) ---------------------------------- */

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
/* The program's own action for each, while our handler stands in for its
 * SIG_DFL. Written with the signal blocked, by sigaction below. */
static struct sigaction prog_act[NSIG];
static volatile sig_atomic_t standing_in[NSIG];

static int is_death_sig(int sig)
{
    for (size_t i = 0; i < sizeof death_sigs / sizeof *death_sigs; i++)
        if (death_sigs[i] == sig)
            return 1;
    return 0;
}

void wc_die_of(int sig)
{
    struct sigaction dfl;
    sigset_t one;
    if (wc_depth) {                 /* from the queue: entered, no locks */
        int e = errno;
        if (wc_state == WC_ST_ON) {
            wc_shutdown(WC_WHY_EXIT);
            image_ends();
        }
        errno = e;
    } else {
        final_flush();
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
 * Write back before the process dies of a fault (invariant 9). The first
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
        final_flush();
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
    (void)si;
    (void)ctx;
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

static int stand_in(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (is_fault_sig(sig)) {
        sa.sa_sigaction = fault_death_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    } else {
        sa.sa_handler = death_handler;
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
    }
    int r = REAL(sigaction)(sig, &sa, NULL);
    standing_in[sig] = r == 0;
    return r;
}

/* g_sig_lock protects standing_in[] and prog_act[] against a concurrent
 * reader-then-writer (wc_death_signals_init, called when the cache is
 * created, while the program's threads may call sigaction). Taken with
 * every signal blocked, so no handler on the holder's thread re-enters. */
static wc_lock_t g_sig_lock;

static void sig_lock(sigset_t *saved)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, saved);
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
        if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
            prog_act[sig] = cur;
            stand_in(sig);
        }
    }
    sig_unlock(&saved);
}

void wc_death_signals_after_fork(void)
{
    g_sig_lock.v = 0;       /* the child is alone */
}

/* sigaction for a signal we may stand in for. */
static int death_sigaction(int sig, const struct sigaction *act,
                           struct sigaction *old)
{
    sigset_t saved;
    sig_lock(&saved);
    struct sigaction was;
    int r = 0;
    if (standing_in[sig])
        was = prog_act[sig];
    else
        r = REAL(sigaction)(sig, NULL, &was);
    if (r == 0 && act) {
        int dfl = !(act->sa_flags & SA_SIGINFO) && act->sa_handler == SIG_DFL;
        if (dfl && wc_state == WC_ST_ON) {
            prog_act[sig] = *act;
            r = stand_in(sig);
        } else {
            r = REAL(sigaction)(sig, act, NULL);
            if (r == 0)
                standing_in[sig] = 0;
        }
    }
    sig_unlock(&saved);
    if (r == 0 && old)
        *old = was;
    return r;
}

/* ---- sigaction and signal --------------------------------------------- */

WC_EXPORT int sigaction(int sig, const struct sigaction *act,
                        struct sigaction *old)
{
    if ((sig == SIGSEGV || sig == SIGBUS) && wc_fault_ready)
        return wc_ret(wc_fault_sigaction(sig, act, old));
    if (sig > 0 && sig < NSIG && is_death_sig(sig))
        return death_sigaction(sig, act, old);
    return REAL(sigaction)(sig, act, old);
}

WC_EXPORT sighandler_t signal(int sig, sighandler_t h)
{
    int fault = (sig == SIGSEGV || sig == SIGBUS) && wc_fault_ready;
    int death = sig > 0 && sig < NSIG && is_death_sig(sig);
    if (!fault && !death)
        return REAL(signal)(sig, h);
    /* glibc's signal(): BSD semantics. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = SA_RESTART;
    int r = fault ? wc_fault_sigaction(sig, &sa, &old)
                  : (death_sigaction(sig, &sa, &old) < 0 ? -errno : 0);
    if (r < 0) {
        errno = -r;
        return SIG_ERR;
    }
    return old.sa_handler;
}

/* ---- start-up --------------------------------------------------------- */

__attribute__((constructor)) static void wc_init(void)
{
    int e = errno;
    if (!wc_real_init() || !wc_env_load() || wc_fdtab_init() < 0) {
        wc_state = WC_ST_OFF;
        errno = e;
        return;
    }
    pthread_atfork(atfork_prepare, NULL, atfork_child);
    wc_queue_init();
    wc_state = WC_ST_ON;
    wc_fault_death_hook = fault_hook;
    wc_altstack_add();      /* the main thread's; kept until exit */
    wc_guard_init();
    wc_nc_init();       /* descriptors open now: at their first write */
    errno = e;
}
