/*
 * sys.h - the one table of real libc functions.
 *
 * Every system call that wcache makes goes through `wc_sys`, never through
 * the libc symbol directly: inside libwcache.so a plain call to pwrite()
 * would bind to the shim's own interposed pwrite and recurse. (The one
 * exception: the calls the shim passes through unchanged are made bare
 * where libc's function would make just that system call, shim/kcall.h;
 * cache/ uses only this table.)
 *
 *   - In libwcache.so the shim fills the table before anything else runs
 *     (shim/real.c): each slot with the next definition of its name, what
 *     dlsym(RTLD_NEXT, ...) answers, found without dlsym, when the cache
 *     is made or at its first call, a trampoline that does so until then.
 *   - Tests of cache/ alone fill it with libc's functions
 *     (tests/lib_sys.c: wct_sys_use_libc()) and may then replace single
 *     entries to fail the Nth call with a chosen errno, as SQLite's
 *     test_syscall.c does with aSyscall[].
 *
 * cache/ never calls dlsym and never calls shim/.
 */
#ifndef WCACHE_SYS_H
#define WCACHE_SYS_H

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/mman.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <utime.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include "wcache/hidden.h"

/*
 * X(return type, name, parameter list). `name` is the libc symbol that the
 * shim resolves with dlsym(RTLD_NEXT). Entries marked "cache" are used by
 * cache/; the others only by shim/, but they live in the same table so that
 * there is exactly one place where real functions are found.
 */
#define WC_SYSCALLS(X)                                                     \
    /* cache */                                                            \
    X(ssize_t, pread, (int, void *, size_t, off_t))                        \
    X(ssize_t, preadv, (int, const struct iovec *, int, off_t))            \
    X(ssize_t, pwrite, (int, const void *, size_t, off_t))                 \
    X(ssize_t, pwritev, (int, const struct iovec *, int, off_t))           \
    X(int, ftruncate, (int, off_t))                                        \
    X(int, fsync, (int))                                                   \
    X(int, fdatasync, (int))                                               \
    X(int, fallocate, (int, int, off_t, off_t))                            \
    X(int, fstat, (int, struct stat *))                                    \
    X(int, fstatfs, (int, struct statfs *))                                \
    X(int, open, (const char *, int, ...))                                 \
    X(int, close, (int))                                                   \
    X(int, fcntl, (int, int, ...))                                         \
    X(int, mkdir, (const char *, mode_t))                                  \
    X(int, lstat, (const char *, struct stat *))                           \
    X(int, unlink, (const char *))                                         \
    X(int, linkat, (int, const char *, int, const char *, int))            \
    X(void *, mmap, (void *, size_t, int, int, int, off_t))                \
    X(int, munmap, (void *, size_t))                                       \
    X(int, madvise, (void *, size_t, int))                                 \
    X(ssize_t, readlink, (const char *, char *, size_t))                   \
    X(int, sigaction, (int, const struct sigaction *, struct sigaction *)) \
    X(ssize_t, process_vm_readv, (pid_t, const struct iovec *,             \
                                  unsigned long, const struct iovec *,     \
                                  unsigned long, unsigned long))           \
    /* shim */                                                             \
    X(ssize_t, write, (int, const void *, size_t))                         \
    X(ssize_t, writev, (int, const struct iovec *, int))                   \
    X(ssize_t, pwritev2, (int, const struct iovec *, int, off_t, int))     \
    X(ssize_t, read, (int, void *, size_t))                                \
    X(ssize_t, readv, (int, const struct iovec *, int))                    \
    X(ssize_t, preadv2, (int, const struct iovec *, int, off_t, int))      \
    X(ssize_t, __read_chk, (int, void *, size_t, size_t))                  \
    X(ssize_t, __pread_chk, (int, void *, size_t, off_t, size_t))          \
    X(int, openat, (int, const char *, int, ...))                          \
    X(int, creat, (const char *, mode_t))                                  \
    X(int, __open_2, (const char *, int))                                  \
    X(int, __openat_2, (int, const char *, int))                           \
    X(int, open_by_handle_at, (int, struct file_handle *, int))            \
    X(FILE *, fopen, (const char *, const char *))                         \
    X(FILE *, freopen, (const char *, const char *, FILE *))               \
    X(FILE *, fdopen, (int, const char *))                                 \
    X(int, close_range, (unsigned, unsigned, int))                         \
    X(int, dup, (int))                                                     \
    X(int, dup2, (int, int))                                               \
    X(int, dup3, (int, int, int))                                          \
    X(int, flock, (int, int))                                              \
    X(int, lockf, (int, int, off_t))                                       \
    X(off_t, lseek, (int, off_t, int))                                     \
    X(int, stat, (const char *, struct stat *))                            \
    X(int, fstatat, (int, const char *, struct stat *, int))               \
    X(int, statx, (int, const char *, int, unsigned, struct statx *))      \
    X(int, __fxstat, (int, int, struct stat *))                            \
    X(int, __xstat, (int, const char *, struct stat *))                    \
    X(int, __lxstat, (int, const char *, struct stat *))                   \
    X(int, __fxstatat, (int, int, const char *, struct stat *, int))       \
    X(int, truncate, (const char *, off_t))                                \
    X(int, posix_fallocate, (int, off_t, off_t))                           \
    X(int, posix_fadvise, (int, off_t, off_t, int))                        \
    X(void, sync, (void))                                                  \
    X(int, syncfs, (int))                                                  \
    X(int, sync_file_range, (int, off_t, off_t, unsigned))                 \
    X(ssize_t, sendfile, (int, int, off_t *, size_t))                      \
    X(ssize_t, sendmsg, (int, const struct msghdr *, int))                 \
    X(int, sendmmsg, (int, struct mmsghdr *, unsigned, int))               \
    X(ssize_t, recvmsg, (int, struct msghdr *, int))                       \
    X(int, recvmmsg, (int, struct mmsghdr *, unsigned, int,                \
                      struct timespec *))                                  \
    X(ssize_t, copy_file_range, (int, off_t *, int, off_t *, size_t,       \
                                 unsigned))                                \
    X(ssize_t, splice, (int, off_t *, int, off_t *, size_t, unsigned))     \
    X(pid_t, fork, (void))                                                 \
    X(pid_t, _Fork, (void))                                                \
    X(int, clone, (int (*)(void *), void *, int, void *, ...))             \
    X(int, execve, (const char *, char *const[], char *const[]))           \
    X(int, execveat, (int, const char *, char *const[], char *const[],     \
                      int))                                                \
    X(int, fexecve, (int, char *const[], char *const[]))                   \
    X(void, _exit, (int))                                                  \
    X(void, _Exit, (int))                                                  \
    X(void, exit, (int))                                                   \
    X(void, quick_exit, (int))                                             \
    /* shim: process creation, exec, helpers (issue 3) */                  \
    X(long, syscall, (long, ...))                                          \
    X(void, abort, (void))                                                 \
    X(int, execv, (const char *, char *const[]))                           \
    X(int, execvp, (const char *, char *const[]))                          \
    X(int, execvpe, (const char *, char *const[], char *const[]))          \
    X(int, posix_spawn, (pid_t *, const char *,                            \
                         const posix_spawn_file_actions_t *,               \
                         const posix_spawnattr_t *, char *const[],         \
                         char *const[]))                                   \
    X(int, posix_spawnp, (pid_t *, const char *,                           \
                          const posix_spawn_file_actions_t *,              \
                          const posix_spawnattr_t *, char *const[],        \
                          char *const[]))                                  \
    X(int, system, (const char *))                                         \
    X(FILE *, popen, (const char *, const char *))                         \
    X(void, closefrom, (int))                                              \
    X(int, faccessat, (int, const char *, int, int))                       \
    X(char *, getcwd, (char *, size_t))                                    \
    X(sighandler_t, signal, (int, sighandler_t))                           \
    X(int, siginterrupt, (int, int))                                       \
    X(int, futimens, (int, const struct timespec[2]))                      \
    X(int, utimensat, (int, const char *, const struct timespec[2], int))  \
    X(int, futimes, (int, const struct timeval[2]))                        \
    X(int, lutimes, (const char *, const struct timeval[2]))               \
    X(int, utimes, (const char *, const struct timeval[2]))                \
    X(int, utime, (const char *, const struct utimbuf *))                  \
    X(int, ioctl, (int, unsigned long, ...))                               \
    X(int, rename, (const char *, const char *))                           \
    X(int, renameat, (int, const char *, int, const char *))               \
    X(int, renameat2, (int, const char *, int, const char *, unsigned))    \
    X(int, link, (const char *, const char *))                             \
    X(int, unlinkat, (int, const char *, int))                             \
    X(int, remove, (const char *))                                         \
    X(int, chroot, (const char *))                                         \
    X(int, chmod, (const char *, mode_t))                                  \
    X(int, fchmod, (int, mode_t))                                          \
    X(int, fchmodat, (int, const char *, mode_t, int))                     \
    X(int, chown, (const char *, uid_t, gid_t))                            \
    X(int, fchown, (int, uid_t, gid_t))                                    \
    X(int, lchown, (const char *, uid_t, gid_t))                           \
    X(int, fchownat, (int, const char *, uid_t, gid_t, int))               \
    X(int, setrlimit, (__rlimit_resource_t, const struct rlimit *))        \
    X(int, prlimit, (pid_t, __rlimit_resource_t, const struct rlimit *,    \
                     struct rlimit *))                                     \
    X(long, ulimit, (int, ...))                                            \
    X(int, clock_nanosleep, (clockid_t, int, const struct timespec *,      \
                             struct timespec *))                           \
    /* shim: glibc calls that write behind the shim (stdio.c) */           \
    X(int, vdprintf, (int, const char *, va_list))                         \
    X(int, __vdprintf_chk, (int, int, const char *, va_list))              \
    X(void, backtrace_symbols_fd, (void *const *, int, int))                \
    /* shim: the crash side (issue 7): threads get an alternate stack */   \
    X(int, pthread_create, (pthread_t *, const pthread_attr_t *,           \
                            void *(*)(void *), void *))

#define WC_SYS_FIELD(ret, name, args) ret (*name) args;
struct wc_sys {
    WC_SYSCALLS(WC_SYS_FIELD)
};
#undef WC_SYS_FIELD

/* The table. Filled by the shim (dlsym) or by a test (libc). */
extern WC_LOCAL struct wc_sys wc_sys;

/* Names of the entries, in table order, for the resolver's messages. */
extern WC_LOCAL const char *const wc_sys_names[];
/* Number of entries. */
#define WC_SYS_COUNT (sizeof(struct wc_sys) / sizeof(void (*)(void)))

#endif /* WCACHE_SYS_H */
