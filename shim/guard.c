/*
 * guard.c - starting the crash guard: a process that waits for programs
 * to die and replays what their backing files still hold (CONTRACT.md
 * section 4). One guard watches a store directory for every program
 * whose backing file is there (shim/cli_recover.c (G1)-(G4)): the
 * `wcache` binary beside libwcache.so, run as `wcache __guard DIR`.
 *
 * Invariants:
 *   (1) The program never sees the guard: an intermediate child made by
 *       clone() with termination signal 0 (no SIGCHLD; wait(-1) without
 *       __WALL never returns it; reaped at once with __WCLONE) calls
 *       setsid() and starts the guard, then exits, so the guard is
 *       reparented (to init, or the nearest PR_SET_CHILD_SUBREAPER) and
 *       is no child of the program (no process group or terminal of
 *       the program, so no job-control signal reaches it), and it holds no
 *       descriptor of the program, not even for a moment (its table starts
 *       empty: guard_exec): stdin, stdout and stderr are /dev/null (it
 *       finds each program's terminal itself). It runs without LD_PRELOAD
 *       or any WCACHE_* variable.
 *   (2) A guard is started only when none watches the directory: after
 *       wc_cache_publish named the backing file (its lock held since its
 *       creation, store.h (2)), the program asks for the guard's lock
 *       (cli_recover.c (G1)) shared and without waiting, and starts a
 *       guard only if it is granted: three system calls when a guard
 *       runs, as it does for every program after the first. A death
 *       before the probe leaves a named file that holds no data yet (the
 *       first write comes after), which a guard or `recover` removes.
 *   (2b) The guard learns of a death through the backing file's flock,
 *       released by the kernel when the last descriptor of the program's
 *       open file description goes: at death by any signal, at exit, at
 *       exec (O_CLOEXEC). A removed file (clean exit) is never seen; a
 *       kept one is replayed and removed, or kept and logged.
 *   (2c) One guard per mount namespace: the lock is named after the
 *       program's (guard.<ns>.lock, cache/format.h (11)), and the guard,
 *       started from the program, runs in it; it replays only the
 *       backing files made there. A program in a private namespace (a
 *       service's PrivateTmp=, `unshare -m`) starts a guard of its own
 *       even while the host's watches the directory.
 *   (3) Spawning costs the program one clone(CLONE_VM) with every signal
 *       blocked: no copy of its memory, no wait for the guard's exec. The
 *       intermediate child starts the guard with CLONE_VM | CLONE_VFORK (each
 *       on a static stack of its own; the guard copies the descriptor table
 *       and execs) and exits; the flusher thread reaps it (wc_guard_reap,
 *       __WCLONE: the program's wait(-1) never sees it). Neither keeps the
 *       program's working directory: the intermediate goes to / first when
 *       the path to the guard is absolute (a relative one is found from
 *       there), and the guard copies its, so that a mount the program ran in
 *       unmounts as soon as the program ends, whether or not the guard's exec
 *       came yet. Both children run with the program's memory and thread
 *       pointer until exec: raw system calls only (errno never written),
 *       nothing written but their stacks (and (7)'s flag); this file is built
 *       without sanitizers. Once the clone has returned, the guard comes
 *       whatever the program does (killed at once, it is a dead owner when
 *       the guard looks); a process that ends before the flusher reaped the
 *       intermediate leaves that zombie to init (or its subreaper).
 *   (3b) The intermediate shares the program's descriptor table until it
 *       exits. An exec in the program meanwhile would give the program a
 *       copy (exec unshares a shared table) and leave the original, the
 *       owner of the program's POSIX record locks, to the intermediate,
 *       whose exit then closes it and drops those locks. So an exec first
 *       waits for the intermediate to be gone (wc_guard_settle).
 *   (4) A child after fork creates its own cache (fdtab.c abandons the
 *       inherited one, closing its copy of the store's descriptor) and
 *       probes for the guard as any program does.
 *   (5) WCACHE_GUARD=0 disables it; without the wcache binary there is no
 *       guard (one message at WCACHE_LOG=info): `wcache recover` remains.
 *   (6) A guard that goes while the program caches (killed by itself,
 *       SIGTERM to it alone) is replaced: the flusher asks again every
 *       250 ms, whatever WCACHE_FLUSH_MS (wc_guard_check, the three
 *       system calls of (2)), and starts
 *       one as (2) does, so a later SIGKILL of the program is replayed
 *       (before, the data waited for the next program caching in the
 *       directory, or `wcache recover`). One spawn at a time (g_spawning:
 *       g_spawn and the stacks are single), and none while the last
 *       intermediate is not reaped (it may still run on the stacks). A
 *       guard killed together with the program (a cgroup's kill, an OOM
 *       kill of the group) cannot be replaced by it: the backing file
 *       waits for the next guard or `wcache recover` (README).
 *   (7) A process caches only while a guard can watch it (proc.c
 *       invariant (8b)): when no guard can be started for its store (the
 *       clone refused: RLIMIT_NPROC, a seccomp filter; the guard's exec
 *       failed: a /dev/null or a binary the user cannot open, which
 *       guard_exec says in g_spawn.failed, the one thing the children
 *       write besides their stacks, and the intermediate in its exit
 *       status; or none watches at WC_GUARD_MISSES checks in a row: a
 *       guard that cannot use the directory, as after the process left
 *       root for another user), it asks to stop caching (wc_off_want),
 *       which the program's next write does, writing everything back.
 *       A SIGKILL before then is replayed by no guard: the bytes wait in
 *       the backing file for `wcache recover`.
 *   (8) A seccomp filter the program inherited (a service manager's
 *       SystemCallFilter=, a sandbox) binds the guard too, its
 *       descendant. Before a cache is made, wc_guard_refused asks the
 *       calls a guard makes that the program may never make itself
 *       (clone and close_range to start it, getdents64 to sweep, unlink
 *       to remove a replayed file) with arguments the kernel refuses
 *       (EINVAL, EBADF, ENOENT: nothing is made or removed): a filter
 *       answers first, and EPERM or ENOSYS there means no guard could
 *       do its work (before, a refused clone printed two lines on the
 *       program's stderr, a refused close_range or getdents64 ended
 *       every guard silently, and a SIGKILL lost the cached bytes). No
 *       cache is made then (fdtab.c, at info level): the program runs on
 *       the kernel alone. Other calls: flock and ftruncate are asked by
 *       the store (cache/store.h (2)); pread, pwrite and fsync have
 *       fallbacks in the replay (cache/replay.c (10)), chdir, rename,
 *       pidfd_open and poll in the guard (cli_recover.c). A filter that
 *       kills on one of these kills the program, as on any call of the
 *       shim's (README).
 *   (9) A program replays what dead processes left in its store
 *       directory before it runs (wc_guard_replay_dead, from the
 *       constructor), as `wcache -- prog` does before prog starts
 *       (cli_recover.c (G5)): a service started with LD_PRELOAD and
 *       killed together with its guard (a cgroup's kill, an OOM kill of
 *       the group), then restarted at once, read its files without its
 *       last acknowledged writes, which its new guard appended later,
 *       after the new instance's records (probe T: Redis lost 2,000-9,200
 *       keys after restart, 3 of 3). Cost at start-up: a listing of the
 *       directory when it exists, and an open, a flock and a close per
 *       backing file in it (4 us here; a kill(pid, 0) first saved 2 us
 *       but took a pid namespace's pid 1 for a living process); a dead
 *       one is replayed in the program's process, logged to guard.log
 *       only. A backing
 *       file a guard is replaying at that moment (its lock held) is
 *       passed by, not waited for. Not with WCACHE_GUARD=0 or the cache
 *       disabled (recovery is then left to `wcache recover`, as asked),
 *       nor in a set-user-ID program (AT_SECURE: the directory is its
 *       real user's, whose files its effective user's replay refuses).
 *   (10) A real-time program's guard (SCHED_FIFO or SCHED_RR, as the
 *       thread that starts it) is made SCHED_OTHER on every CPU the
 *       cpuset allows, by the program right after the clone and by the
 *       intermediate itself (sched_plain): pinned to the program's one
 *       CPU at its priority, the intermediate never ran while the
 *       program computed, and the flusher, which reaps it, waited with it
 *       (probe Z: nothing reached the disk). So the guard runs as the
 *       flusher does (flusher.c invariant (6)), as the kernel's own
 *       helpers would.
 */
#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdint.h>
#include <unistd.h>

#include "shim.h"
#include "../cache/format.h"
#include "wcache/raw.h"
#include "wcache/str.h"

static char guard_exe[PATH_MAX] WC_LARGE;  /* the wcache binary, once found */
static int guard_found = -1;       /* -1 not looked yet, 0 no, 1 yes */

/* This library's path as the loader opened it (its link map's name),
 * from _dl_find_object: no lock and async-signal-safe, so asked when
 * needed (a guard's start, an exec's environment), not at every start-up
 * as dladdr was (its walk of the symbol table: 9,000 of the 240,000
 * instructions of a /bin/true start under the shim). NULL when unknown. */
const char *wc_lib_path(void)
{
    struct dl_find_object o;
    if (_dl_find_object((void *)wc_lib_path, &o) == 0 && o.dlfo_link_map &&
        o.dlfo_link_map->l_name && o.dlfo_link_map->l_name[0])
        return o.dlfo_link_map->l_name;
    return NULL;
}

/* Is the wcache binary beside `lib` (an absolute path: the build tree),
 * or where `make install` puts it, PREFIX/bin beside PREFIX/lib/wcache?
 * Then its path is in guard_exe. */
static int beside(const char *lib)
{
    static const char *const rel[] = {"/wcache", "/../../bin/wcache"};
    const char *slash = strrchr(lib, '/');
    size_t n = slash ? (size_t)(slash - lib) : 0;
    for (size_t i = 0; slash && i < 2; i++)
        if (n + strlen(rel[i]) < sizeof guard_exe) {
            memcpy(guard_exe, lib, n);
            strcpy(guard_exe + n, rel[i]);
            if (access(guard_exe, X_OK) == 0)
                return 1;
        }
    return 0;
}

/* The file this library's code is mapped from, as the kernel names it
 * in /proc/self/maps (absolute, links resolved): where the loader's name
 * is relative (a program's chdir since makes it point elsewhere) or a
 * link from a directory without the binary (probe AG F4: a SIGKILLed
 * writer's bytes then had no guard to replay them). 1 and the path in
 * out, or 0. */
static int mapped_path(char *out, size_t cap)
{
    wc_fd_window_open(0);               /* ownfd.c invariant (7) */
    long fd = wc_raw_syscall(SYS_openat, AT_FDCWD, (long)"/proc/self/maps",
                             O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0) {
        wc_fd_window_close();
        return 0;
    }
    uintptr_t me = (uintptr_t)mapped_path;
    char buf[4096];
    size_t have = 0;
    int found = 0;
    for (;;) {
        long r = wc_raw_syscall(SYS_read, fd, (long)(buf + have),
                                (long)(sizeof buf - 1 - have), 0, 0, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = 0;
        char *line = buf, *nl;
        while (!found && (nl = strchr(line, '\n'))) {
            *nl = 0;
            unsigned long lo, hi;
            char *slash = strchr(line, '/');
            if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && me >= lo &&
                me < hi && slash) {
                char *del = strstr(slash, " (deleted)");
                if (del)
                    *del = 0;
                found = strlen(slash) < cap;
                if (found)
                    strcpy(out, slash);
            }
            line = nl + 1;
        }
        if (found)
            break;
        have = strlen(line);            /* a partial line: kept */
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;                   /* a line too long: dropped */
    }
    wc_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
    wc_fd_window_close();
    return found;
}

/* The wcache binary beside libwcache.so: beside the path the loader was
 * given when it is absolute, else (or not found there) beside the file
 * the library's code is mapped from (looked for once, when the first
 * guard is wanted: a process that caches nothing pays neither the look
 * nor the page it is written in). */
WC_ONCE
static int find_guard(void)
{
    if (guard_found >= 0)
        return guard_found;
    const char *lib = wc_lib_path();
    char real[PATH_MAX];
    guard_found = (lib && lib[0] == '/' && beside(lib)) ||
                  (mapped_path(real, sizeof real) && beside(real));
    if (!guard_found)
        wc_log(WC_LOG_INFO, "no crash guard: the wcache binary is not "
               "beside libwcache.so; `wcache recover` replays by hand");
    return guard_found;
}

struct spawn {
    const char *exe;
    char *argv[4];
    char dir[PATH_MAX];         /* the store's directory */
    char *envp[1];
    int failed;                 /* the guard's exec did not happen
                                   (written by guard_exec, invariant (7)) */
    int rt;                     /* the program runs SCHED_FIFO or
                                   SCHED_RR (invariant (10)) */
};

/* Written before the clone, read only by the children after it: the
 * program goes on meanwhile (invariant 3), so nothing of this may live on
 * its stack. The cache lock of fdtab.c serialises callers (one guard per
 * cache, one cache per process image). */
static struct spawn g_spawn WC_LARGE;
static char g_stack[2][16 << 10] __attribute__((aligned(16))) WC_LARGE;
WC_BOOT static int g_child;     /* the intermediate child, until reaped */
WC_BOOT static int g_wanted;    /* the cache has a name a guard watches
                                   (atomic; invariant (6)) */
static int g_spawning;          /* a spawn in progress (atomic, (6)) */

/* A system call that leaves errno alone: the children share the
 * program's memory and thread pointer, so they must not write the
 * program's errno (nor anything else). -errno on failure. */
static inline __attribute__((always_inline)) long
raw(long n, long a, long b, long c, long d)
{
    return wc_raw_syscall(n, a, b, c, d, 0, 0);
}

/*
 * wc_guard_clone (shim.h): clone(flags, stack) that runs fn(arg) on
 * `stack` in the child and then exits with its return value; the parent
 * gets the child's pid or -errno. glibc's clone() would write errno on
 * failure, which the intermediate child must not do (it shares the
 * program's thread pointer).
 */
__asm__(".text\n"
        ".globl wc_guard_clone\n"         /* flusher.c uses it too */
        ".hidden wc_guard_clone\n"
        ".type wc_guard_clone, @function\n"
        "wc_guard_clone:\n"
        "    and $-16, %rsi\n"          /* the child's stack: fn, arg */
        "    sub $16, %rsi\n"
        "    mov %rdx, 0(%rsi)\n"
        "    mov %rcx, 8(%rsi)\n"
        "    mov $56, %eax\n"           /* SYS_clone(flags, sp, 0, 0, 0) */
        "    xor %edx, %edx\n"
        "    xor %r10d, %r10d\n"
        "    xor %r8d, %r8d\n"
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jnz 1f\n"
        "    xor %ebp, %ebp\n"          /* the child */
        "    pop %rax\n"
        "    pop %rdi\n"
        "    call *%rax\n"
        "    mov %eax, %edi\n"
        "    mov $60, %eax\n"           /* SYS_exit */
        "    syscall\n"
        "    hlt\n"
        "1:  ret\n"
        ".size wc_guard_clone, . - wc_guard_clone\n");

/* The guard (CLONE_VM | CLONE_VFORK | CLONE_FILES from the intermediate,
 * on its own static stack): a descriptor table of its own that never
 * held one of the program's (close_range with CLOSE_RANGE_UNSHARE over
 * every number copies none), /dev/null as 0-2, then exec. A copy of the
 * program's table would keep its pipes and sockets open behind it (a
 * reader would miss EOF, a writer EPIPE) for as long as the exec takes. */
static int guard_exec(void *arg)
{
    struct spawn *s = arg;
    if (raw(SYS_close_range, 0, ~0u, CLOSE_RANGE_UNSHARE, 0) != 0)
        goto fail;
    long nul = raw(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDWR, 0);
    if (nul != 0)
        goto fail;
    raw(SYS_dup3, 0, 1, 0, 0);
    raw(SYS_dup3, 0, 2, 0, 0);
    uint64_t none = 0;
    raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
    /* In / already: the intermediate went there (guard_child), and this
     * child has a copy of its working directory. */
    raw(SYS_execve, (long)s->exe, (long)s->argv, (long)s->envp, 0);
fail:
    s->failed = 1;
    return 127;
}

/* Invariant (10): thread or process `pid` (0: the caller) SCHED_OTHER,
 * on every CPU the cpuset allows. Raw calls (the children share the
 * program's memory), best effort. */
static void sched_plain(long pid)
{
    int prio = 0;
    unsigned long cpus[16];
    for (unsigned i = 0; i < sizeof cpus / sizeof cpus[0]; i++)
        cpus[i] = ~0ul;
    raw(SYS_sched_setscheduler, pid, SCHED_OTHER, (long)&prio, 0);
    raw(SYS_sched_setaffinity, pid, sizeof cpus, (long)cpus, 0);
}

/* The intermediate child (exit signal 0, sharing the program's memory and
 * descriptor table, on g_stack[0], while the program goes on): a new
 * session, the guard, and gone, so that the guard is nobody's child in
 * the program (exec gives a process the exit signal SIGCHLD again, which
 * would make it visible). CLONE_VFORK holds it, not the program, until
 * the guard's exec. */
static int guard_child(void *arg)
{
    struct spawn *s = arg;
    /* Nothing of the program's kept busy from the start: its working
     * directory goes first, for this child and the guard it starts (a
     * copy of this one's). Kept until the guard's exec, a mount the
     * program ran in could not be unmounted right after the program
     * (errors::exfat_... in CI, then errors::a_mount_the_program_ran_
     * in_unmounts_at_once, 1 of 3 rounds in a make check-long). A
     * relative path to the guard (a relative LD_PRELOAD) is found from
     * there; the guard goes to / itself then (cli_recover.c (G4)). */
    if (s->exe[0] == '/')
        raw(SYS_chdir, (long)"/", 0, 0, 0);
    if (s->rt)
        sched_plain(0);         /* in case it ran before spawn's call */
    raw(SYS_setsid, 0, 0, 0, 0);
    long pid = wc_guard_clone(CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD,
                              g_stack[1] + sizeof g_stack[1], guard_exec, arg);
    /* CLONE_VFORK: back here once the guard has exec'd, or failed to. */
    return pid < 0 || __atomic_load_n(&s->failed, __ATOMIC_ACQUIRE);
}

/* Does a guard of the program's mount namespace `ns` watch dir
 * (invariant (2), (2c))? Its lock, asked shared and without waiting:
 * refused while a guard holds it. Raw calls: errno stays the program's. */
static int guard_watches(const char *dir, uint64_t ns)
{
    char lock[PATH_MAX];
    if (wc_fmt_guard_lock(lock, sizeof lock, dir, ns) != 0)
        return 0;
    long fd = raw(SYS_openat, AT_FDCWD, (long)lock,
                  O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;
    long r = raw(SYS_flock, fd, LOCK_SH | LOCK_NB, 0, 0);
    raw(SYS_close, fd, 0, 0, 0);
    return r == -EWOULDBLOCK;
}

/* guard_watches as a look (shim.h wc_look): its lock file's descriptor
 * takes no number in the program's table on the flusher, and only in a
 * window elsewhere. */
struct watch_look {
    const char *dir;
    uint64_t ns;
};

static int watches_look(void *p)
{
    const struct watch_look *w = p;
    return guard_watches(w->dir, w->ns);
}

static int watched(const char *dir, uint64_t ns)
{
    struct watch_look w = {dir, ns};
    return wc_look(watches_look, &w, 0) > 0;
}

/* Checks (every 250 ms, by the flusher) that may find no guard before
 * the process stops caching (invariant (7)): 2 s for a guard's exec and
 * its first look at the directory, however loaded the machine. */
#define WC_GUARD_MISSES 8
enum { SPAWN_WATCHED, SPAWN_STARTED, SPAWN_NONE };
static int spawn(struct wc_cache *c);
static int g_misses;            /* checks in a row that found no guard
                                   (flusher only, invariant (7)) */

/* Start a guard unless one watches: SPAWN_* (SPAWN_STARTED also while
 * another thread or an unreaped intermediate is at it). */
static int guard_start(struct wc_cache *c)
{
    __atomic_store_n(&g_wanted, 1, __ATOMIC_RELEASE);
    int was = 0, r = SPAWN_STARTED;
    if (!__atomic_compare_exchange_n(&g_spawning, &was, 1, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return r;               /* (6): another thread spawns */
    if (!__atomic_load_n(&g_child, __ATOMIC_ACQUIRE))
        r = spawn(c);
    __atomic_store_n(&g_spawning, 0, __ATOMIC_RELEASE);
    return r;
}

void wc_guard_start(struct wc_cache *c)
{
    if (wc_cfg.guard && c)
        guard_start(c);
}

void wc_guard_check(struct wc_cache *c)
{
    if (!__atomic_load_n(&g_wanted, __ATOMIC_ACQUIRE) || guard_found == 0)
        return;
    /* flusher.c invariant (7): the lock file's descriptor, and the
     * spawn's reads, in a window (ownfd.c (7)), put off while a program
     * thread makes a descriptor. */
    if (!wc_fd_window_open(1))
        return;
    if (guard_start(c) == SPAWN_WATCHED)
        g_misses = 0;
    else if (++g_misses >= WC_GUARD_MISSES)     /* invariant (7) */
        wc_off_want("no crash guard watches %s after %d tries",
                    g_spawn.dir, g_misses);
    wc_fd_window_close();
}

/* A guard for c's directory unless one watches it (invariant (2)).
 * Caller holds g_spawning, with no intermediate unreaped. */
static int spawn(struct wc_cache *c)
{
    struct spawn *s = &g_spawn;
    const char *path = wc_cache_path(c), *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= sizeof s->dir)
        return SPAWN_NONE;
    memcpy(s->dir, path, (size_t)(slash - path));
    s->dir[slash - path] = 0;
    if (watched(s->dir, wc_cache_mnt_ns(c)))
        return SPAWN_WATCHED;
    if (!find_guard())
        return SPAWN_NONE;
    int e = errno;
    s->failed = 0;
    s->exe = guard_exe;
    s->argv[0] = (char *)"wcache";
    s->argv[1] = (char *)"__guard";
    s->argv[2] = s->dir;
    s->argv[3] = NULL;
    s->envp[0] = NULL;
    s->rt = wc_sched_realtime();
    sigset_t old;
    wc_signals_block(&old);
    /* The program does not wait for the guard's exec (about a
     * millisecond here, several under load): the flusher thread reaps
     * the intermediate (wc_guard_reap). */
    long pid = wc_guard_clone(CLONE_VM | CLONE_FILES,
                              g_stack[0] + sizeof g_stack[0], guard_child, s);
    if (pid > 0 && s->rt)
        sched_plain(pid);       /* so that it runs at all (invariant (10)) */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        wc_off_want("no crash guard (%s)", strerror((int)-pid));
    } else {
        __atomic_store_n(&g_child, (int)pid, __ATOMIC_RELEASE);
        wc_log(WC_LOG_DEBUG, "crash guard started for %s", s->dir);
    }
    errno = e;
    return pid < 0 ? SPAWN_NONE : SPAWN_STARTED;
}

static int g_reaping;           /* threads inside wc_guard_reap (atomic) */

void wc_guard_reap(void)
{
    __atomic_add_fetch(&g_reaping, 1, __ATOMIC_ACQ_REL);
    int pid = __atomic_exchange_n(&g_child, 0, __ATOMIC_ACQ_REL);
    int st = 0;
    if (pid > 0) {
        while (raw(SYS_wait4, pid, (long)&st, __WCLONE, 0) == -EINTR)
            ;
        /* Invariant (7): the intermediate says whether the guard's exec
         * happened (a /dev/null the user cannot open, an exec refused). */
        if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
            wc_off_want("the crash guard %s could not be started",
                        guard_exe);
    }
    __atomic_sub_fetch(&g_reaping, 1, __ATOMIC_RELEASE);
}

void wc_guard_settle(void)
{
    wc_guard_reap();
    for (unsigned i = 0; __atomic_load_n(&g_reaping, __ATOMIC_ACQUIRE); i++)
        wc_backoff(i);          /* the flusher is reaping it */
}

WC_ONCE
void wc_guard_after_fork(void)
{
    WC_RESET(g_child, 0);       /* the parent's child, not ours */
    WC_RESET(g_wanted, 0);      /* the parent's cache, not ours */
    WC_RESET(g_spawning, 0);
    WC_RESET(g_reaping, 0);     /* its reaper, the flusher, is not here */
    WC_RESET(g_misses, 0);
}

WC_ONCE
void wc_guard_replay_dead(void)
{
    /* Not in a set-user-ID program: its real user's directory holds
     * files its effective user would only refuse. */
    if (wc_cfg.guard && !getauxval(AT_SECURE)) {
        /* In a window (ownfd.c invariant (7)) where a library's
         * constructor started threads already (wc_fdtab_init saw them):
         * the listing, the locks and a replay take the lowest free
         * numbers. Alone, none is needed (nor its page of code, at every
         * start). */
        int threads = !__atomic_load_n(&wc_solo, __ATOMIC_RELAXED);
        if (threads)
            wc_fd_window_open(0);
        wc_cache_replay_dead(wc_cfg.cache.dir);
        if (threads)
            wc_fd_window_close();
    }
}

int wc_guard_refused(void)
{
    if (!wc_cfg.guard)
        return 0;
    /* CLONE_SIGHAND without CLONE_VM: EINVAL from copy_process before a
     * task is made. A child all the same (never seen) exits at once. */
    long r = raw(SYS_clone, CLONE_FILES | CLONE_SIGHAND, 0, 0, 0);
    if (r == 0)
        raw(SYS_exit, 0, 0, 0, 0);
    if (r > 0)
        raw(SYS_wait4, r, 0, __WALL, 0);
    if (r == -EPERM || r == -ENOSYS)      /* as wc_call_refused */
        return (int)r;
    /* The guard's start (first > last: EINVAL), its sweeps of the
     * directory (no descriptor: EBADF) and its removal of a replayed
     * backing file, which the program's own removal at exit makes too
     * (no name: ENOENT). */
    static const long nr[] = {SYS_close_range, SYS_getdents64, SYS_unlink};
    static const long arg[][2] = {{1, 0}, {-1, 0}, {(long)"", 0}};
    for (size_t i = 0; i < sizeof nr / sizeof nr[0]; i++)
        if ((r = wc_call_refused(nr[i], arg[i][0], arg[i][1])) < 0)
            return (int)r;
    return 0;
}

long wc_call_refused(long nr, long a, long b)
{
    long r = raw(nr, a, b, 0, 0);
    return r == -EPERM || r == -ENOSYS ? r : 0;
}
