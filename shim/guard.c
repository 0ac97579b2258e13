/*
 * guard.c - the crash guard: a process, started when this process creates
 * its cache, that waits for it to die and replays what its backing file
 * still holds (CONTRACT.md section 4). The guard is the `wcache` binary
 * beside libwcache.so, run as `wcache __guard STORE` (shim/cli_recover.c).
 *
 * Invariants:
 *   (1) The program never sees the guard: an intermediate child made by
 *       clone() with termination signal 0 (no SIGCHLD; wait(-1) without
 *       __WALL never returns it; reaped at once with __WCLONE) calls
 *       setsid() and starts the guard, then exits, so the guard is
 *       reparented (to init, or the nearest PR_SET_CHILD_SUBREAPER) and
 *       is no child of the program (no process group or terminal of
 *       the program, so no job-control signal reaches it), and it holds no
 *       descriptor of the program: everything is closed before exec but a
 *       terminal on stderr, which it may speak to; stdin and stdout are
 *       /dev/null. It runs without LD_PRELOAD or any WCACHE_* variable.
 *   (2) The guard opens its own description of the backing file before
 *       the program goes on (CLONE_VFORK), while the file may still have
 *       no name (O_TMPFILE, named by wc_cache_publish after this): a death
 *       at any moment leaves either nothing or a file the guard holds.
 *   (2b) The guard learns of the death through the backing file's flock
 *       (store.h (2)), released by the kernel when the last descriptor of
 *       the program's open file description goes: at death by any signal,
 *       at exit, at exec (O_CLOEXEC). Then: a removed file (clean exit) is
 *       left alone; a kept one is replayed and removed, or kept and
 *       logged (wcache ls finds it).
 *   (3) Spawning: CLONE_VM | CLONE_VFORK (no copy of the program's
 *       memory; the parent waits only until exec), all signals blocked
 *       across it, the child making raw system calls only.
 *   (4) A child after fork creates its own cache and so its own guard;
 *       it never shares the parent's (fdtab.c abandons the inherited
 *       cache, closing its copy of the store's descriptor).
 *   (5) WCACHE_GUARD=0 disables it; without the wcache binary there is no
 *       guard (one message at WCACHE_LOG=info): `wcache recover` remains.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

static char guard_exe[PATH_MAX];   /* the wcache binary; "" when none */
static int guard_found = -1;       /* -1 not looked yet, 0 no, 1 yes */

/* The wcache binary beside libwcache.so (the build tree), or where `make
 * install` puts it, PREFIX/bin beside PREFIX/lib/wcache (found once,
 * before any cache). */
static int find_guard(void)
{
    if (guard_found >= 0)
        return guard_found;
    static const char *const rel[] = {"/wcache", "/../../bin/wcache"};
    Dl_info di;
    guard_found = 0;
    if (dladdr((void *)find_guard, &di) && di.dli_fname) {
        const char *slash = strrchr(di.dli_fname, '/');
        size_t n = slash ? (size_t)(slash - di.dli_fname) : 0;
        for (size_t i = 0; slash && !guard_found && i < 2; i++)
            if (n + strlen(rel[i]) < sizeof guard_exe) {
                memcpy(guard_exe, di.dli_fname, n);
                strcpy(guard_exe + n, rel[i]);
                guard_found = access(guard_exe, X_OK) == 0;
            }
    }
    if (!guard_found)
        wc_log(WC_LOG_INFO, "no crash guard: the wcache binary is not "
               "beside libwcache.so; `wcache recover` replays by hand");
    return guard_found;
}

struct spawn {
    const char *exe;
    char *argv[5];
    char self[64];              /* /proc/self/fd/<store> */
    char *envp[1];
    int keep_err;               /* stderr is a terminal: keep it */
};

static char stack[2][16 << 10] __attribute__((aligned(16)));

/* The guard itself: raw system calls only (it shares the parent's
 * memory until exec). */
static int guard_exec(void *arg)
{
    struct spawn *s = arg;
    long nul = REAL(syscall)(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
    if (nul >= 0) {
        REAL(syscall)(SYS_dup3, nul, 0, 0);
        REAL(syscall)(SYS_dup3, nul, 1, 0);
        if (!s->keep_err)
            REAL(syscall)(SYS_dup3, nul, 2, 0);
    }
    /* Its own description of the store (so its own flock), as fd 3: the
     * store may have no name yet (store.h). */
    long st = REAL(syscall)(SYS_openat, AT_FDCWD, s->self,
                            O_RDONLY);
    if (st < 0)
        REAL(syscall)(SYS_exit, 127);
    if (st != 3)
        REAL(syscall)(SYS_dup3, st, 3, 0);
    REAL(syscall)(SYS_close_range, 4, ~0u, 0);
    sigset_t none;
    sigemptyset(&none);
    REAL(syscall)(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    REAL(syscall)(SYS_execve, s->exe, s->argv, s->envp);
    REAL(syscall)(SYS_exit, 127);
    return 127;
}

/* The intermediate child (exit signal 0): a new session, the guard, and
 * gone, so that the guard is nobody's child in the program (exec gives a
 * process the exit signal SIGCHLD again, which would make it visible). */
static int guard_child(void *arg)
{
    REAL(syscall)(SYS_setsid);
    clone(guard_exec, stack[1] + sizeof stack[1],
          CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
    REAL(syscall)(SYS_exit, 0);
    return 0;
}

void wc_guard_start(struct wc_cache *c)
{
    if (!wc_cfg.guard || !c || !find_guard())
        return;
    int e = errno;
    struct spawn s = {
        .exe = guard_exe,
        .argv = {(char *)"wcache", (char *)"__guard",
                 (char *)wc_cache_path(c), (char *)"3", NULL},
        .envp = {NULL},
        .keep_err = isatty(2),
    };
    snprintf(s.self, sizeof s.self, "/proc/self/fd/%d", wc_cache_store_fd(c));
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* The stacks are static: the cache lock of fdtab.c serialises
     * callers, and CLONE_VFORK holds us until the intermediate child has
     * gone, which the guard's exec let it do. It is reaped here, at once
     * (__WCLONE: the program's wait(-1) never sees it). */
    int pid = clone(guard_child, stack[0] + sizeof stack[0],
                    CLONE_VM | CLONE_VFORK, &s);
    if (pid > 0)
        while (REAL(syscall)(SYS_wait4, pid, NULL, __WCLONE, NULL) < 0 &&
               errno == EINTR)
            ;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        wc_log(WC_LOG_WARN, "no crash guard (%s): `wcache recover` replays "
               "what a crash leaves", strerror(errno));
    else
        wc_log(WC_LOG_DEBUG, "crash guard %d for %s", pid, wc_cache_path(c));
    errno = e;
}

void wc_guard_init(void)
{
    if (wc_cfg.guard)
        find_guard();
}
