/*
 * syscall.c - the exported syscall(): raw system calls that reach a file.
 *
 * Programs and language runtimes call syscall(SYS_pwrite64, ...),
 * syscall(SYS_copy_file_range, ...), syscall(SYS_ftruncate, ...) directly.
 * Passed straight to the kernel, such a call would bypass the cache: a raw
 * write lands behind cached data and is overwritten at write-back, a raw
 * ftruncate is undone, a raw copy reads stale bytes. So every system call
 * number that takes a descriptor or a path and reads or changes a file's
 * data, offset or size, opens, duplicates, receives or closes a
 * descriptor, or is a consistency point (fork, exec, exit, sending a
 * descriptor over a socket), or changes the names a replay after a crash
 * uses or the threads a namespace call allows (unlink, chroot,
 * pivot_root, unshare, setns: proc.c invariants (11), (12)) is routed
 * here to the wrapper that serves the libc call of the same name; every
 * other number goes straight to the real syscall().
 *
 * Invariants:
 *   (1) One switch (route) maps each number to its wrapper. A routed call
 *       behaves as the wrapper does, with syscall()'s conventions: -1 and
 *       errno on failure, errno untouched on success (the wrappers keep
 *       that too).
 *   (2) Arguments are read as six longs, whatever the number (the kernel
 *       reads six registers), and narrowed as the kernel narrows them: a
 *       descriptor is an unsigned int, so (int) of the long is the same
 *       descriptor; x86-64 passes off_t and loff_t in one register, so
 *       the libc wrappers' arguments map one to one, except:
 *         - preadv/pwritev/preadv2/pwritev2 take the offset as (pos_l,
 *           pos_h); on 64 bits the kernel uses pos_l alone;
 *         - the iovec count is an unsigned long that the kernel narrows
 *           to an unsigned int (import_iovec); anything above IOV_MAX is
 *           then passed as IOV_MAX + 1, which fails as the kernel fails;
 *         - fadvise64 returns -1/errno where posix_fadvise returns the
 *           error number.
 *   (3) Opens the libc has no wrapper for (openat2), and the raw form of
 *       open_by_handle_at (open.c interposes glibc's), are made raw and
 *       the new descriptor is then tracked as an open through the
 *       wrappers would be (wc_fd_opened).
 *   (4) Process-level points: exit_group flushes everything first (it runs
 *       no destructor); exit of the last program thread does the same and
 *       ends the group (the shim's own flusher thread does not count as
 *       one, and must not keep the process alive: see also
 *       wc_program_threads_gone); fork and clone
 *       without CLONE_VM are forks (before: every description shared,
 *       THROUGH; after, in the child: the inherited cache abandoned), as
 *       _Fork is; vfork by a real fork (wc_vfork_by_fork: this C frame
 *       would not survive a real vfork, which the libc call gets: proc.c
 *       invariant (7)). Other clone and clone3 calls are sorted by what
 *       the child shares (proc.c invariant (9)): a thread passes through;
 *       a vfork-like one (whose child would return into this frame) and
 *       any other mix stop the process caching first. unshare of the
 *       descriptor table does what the libc call does (proc.c (10)).
 *   (5) io_submit and io_uring_setup go to the kernel as they are, after
 *       what aio.c does for libaio's and liburing's calls of the same
 *       name (aio.c invariants (1), (2)), and so do io_uring_enter and
 *       io_uring_register (a ring the process did not make); seccomp and prctl's
 *       PR_SET_SECCOMP after what prctl does (proc.c invariant (8)).
 *   (6) fcntl commands are routed except F_GETOWN, whose libc wrapper
 *       translates the answer (F_GETOWN_EX); the raw one is the kernel's.
 */
#include <dirent.h>
#include <linux/seccomp.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/ucopy.h"

/* Calls newer than this system's headers (x86_64 numbers). */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif

#ifndef CLONE_VM
#define CLONE_VM 0x00000100
#endif

/* An iovec count as the wrappers take it (see invariant 2). */
static int vcount(long v)
{
    unsigned n = (unsigned)v;       /* import_iovec takes an unsigned */
    return n > IOV_MAX ? IOV_MAX + 1 : (int)n;
}

/* A descriptor opened by a raw call: tracked as an open's is (open.c
 * wc_opened), 0..2 shared with stdio too (glibc writes there itself). */
static long opened_raw(long fd, int dirfd, const char *path, int flags)
{
    return fd < 0 ? fd : wc_opened((int)fd, dirfd, path, flags);
}

/* ---- process-level points --------------------------------------------- */

/* Is the calling thread the last live one of the program? (Threads that
 * have exited but wait to be reaped, as a leader that left first, do not
 * count; nor does the shim's flusher, by its thread id, which would keep
 * a process whose program threads are all gone alive for ever.)
 * Slow: only for SYS_exit. */
static int last_program_thread(const char *task_dir, long self)
{
    int dfd = REAL(open)(task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    char buf[4096];
    int others = 0;
    long flusher = wc_flusher_tid();
    long n;
    while ((n = REAL(syscall)(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct dirent64 *de = (struct dirent64 *)(buf + off);
            off += de->d_reclen;
            long tid = strtol(de->d_name, NULL, 10);
            if (de->d_name[0] < '0' || de->d_name[0] > '9' || tid == self ||
                tid == flusher)
                continue;
            /* "tid (comm) S ...": comm may hold spaces and parentheses */
            char path[300], st[512] = {0};
            snprintf(path, sizeof path, "%s/stat", de->d_name);
            int sfd = wc_k_openat(dfd, path, O_RDONLY | O_CLOEXEC, 0);
            if (sfd < 0)
                continue;               /* gone meanwhile */
            ssize_t k = wc_k_read(sfd, st, sizeof st - 1);
            wc_k_close(sfd);
            char *open_p = strchr(st, '('), *close_p = strrchr(st, ')');
            if (k <= 0 || !open_p || !close_p || close_p[1] != ' ') {
                others++;               /* unreadable: assume alive */
                continue;
            }
            char state = close_p[2];
            if (state == 'Z' || state == 'X')
                continue;
            others++;
        }
    }
    wc_k_close(dfd);
    return others == 0;
}

/* The look of wc_program_threads_gone at process `pid`, whose thread
 * `self` asks. */
static int threads_gone(int pid, long self)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    int gone = 0, fd = REAL(open)(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char st[512] = {0};
        ssize_t k = wc_k_read(fd, st, sizeof st - 1);
        wc_k_close(fd);
        char *close_p = strrchr(st, ')');
        snprintf(p, sizeof p, "/proc/%d/task", pid);
        gone = k > 0 && close_p && close_p[1] == ' ' && close_p[2] == 'Z' &&
               last_program_thread(p, self);    /* a directory's too */
    }
    return gone;
}

struct gone_look {
    int pid;
    long self;
};

static int gone_look(void *arg)
{
    const struct gone_look *g = arg;
    return threads_gone(g->pid, g->self);
}

/* For the flusher (flusher.c): have all the program's threads ended, the
 * leader included (pthread_exit from main, then the others)? Then nothing
 * but the shim keeps the process alive. One small read while the leader
 * lives, a look (shim.h wc_look: apart, else in a window put off while a
 * program thread makes a descriptor: flusher.c (7), (8)). */
int wc_program_threads_gone(void)
{
    struct gone_look g = {getpid(), REAL(syscall)(SYS_gettid)};
    return wc_look(gone_look, &g, 1) > 0;
}

/* SYS_exit: the thread ends; if it is the program's last, the process
 * ends too, with this thread's code (the kernel's view): flush as exit
 * does, then end the group, or the shim's flusher would keep it alive. */
static long thread_exit(long code)
{
    if (wc_state == WC_ST_ON && !wc_depth) {
        int e = errno;
        wc_fd_window_open(0);           /* ownfd.c invariant (7) */
        int last = last_program_thread("/proc/self/task",
                                       REAL(syscall)(SYS_gettid));
        wc_fd_window_close();
        errno = e;
        if (last) {
            wc_proc_exit_flush();
            return REAL(syscall)(SYS_exit_group, code);
        }
    }
    return REAL(syscall)(SYS_exit, code);
}

/* fork, and clone without CLONE_VM: a new process that shares every
 * description, as _Fork. */
static long fork_like(long nr, long a, long b, long c, long d, long e,
                      long f)
{
    wc_proc_before_fork(0);
    long r = REAL(syscall)(nr, a, b, c, d, e, f);
    int err = errno;
    if (r == 0)
        wc_proc_after_fork_child();
    else
        wc_proc_after_fork_parent();
    errno = err;
    return r;
}

/* clone3(args, size): a fork unless args->flags has CLONE_VM (read only
 * if readable: the kernel answers EFAULT otherwise). */
static long clone3_call(long a, long b)
{
    uint64_t flags = CLONE_VM;
    if ((size_t)b >= sizeof flags) {
        int e = errno;
        if (wc_probe_readable((const void *)a, sizeof flags) == sizeof flags)
            memcpy(&flags, (const void *)a, sizeof flags);
        errno = e;
    }
    enum wc_clone_kind k = wc_clone_kind(flags);
    if (k == WC_CLONE_FORK)
        return fork_like(SYS_clone3, a, b, 0, 0, 0, 0);
    wc_proc_before_raw_clone(k);
    return REAL(syscall)(SYS_clone3, a, b, 0, 0, 0, 0);
}

/* ---- the table --------------------------------------------------------- */

#define I(x) ((int)(x))
#define P(x) ((void *)(x))
#define CP(x) ((const char *)(x))

/* Route one call. *routed = 0: not a number we serve (pass it through). */
static long route(long nr, long a, long b, long c, long d, long e, long f,
                  int *routed)
{
    switch (nr) {
    /* data and offsets */
    case SYS_read:       return read(I(a), P(b), (size_t)c);
    case SYS_write:      return write(I(a), P(b), (size_t)c);
    case SYS_pread64:    return pread64(I(a), P(b), (size_t)c, (off_t)d);
    case SYS_pwrite64:   return pwrite64(I(a), P(b), (size_t)c, (off_t)d);
    case SYS_readv:      return readv(I(a), P(b), vcount(c));
    case SYS_writev:     return writev(I(a), P(b), vcount(c));
    case SYS_preadv:     return preadv(I(a), P(b), vcount(c), (off_t)d);
    case SYS_pwritev:    return pwritev(I(a), P(b), vcount(c), (off_t)d);
    case SYS_preadv2:    return preadv2(I(a), P(b), vcount(c), (off_t)d, I(f));
    case SYS_pwritev2:   return pwritev2(I(a), P(b), vcount(c), (off_t)d,
                                         I(f));
    case SYS_lseek:      return lseek(I(a), (off_t)b, (int)(unsigned)c);
    /* sizes and space */
    case SYS_ftruncate:  return ftruncate(I(a), (off_t)b);
    case SYS_truncate:   return truncate(CP(a), (off_t)b);
    case SYS_fallocate:  return fallocate(I(a), I(b), (off_t)c, (off_t)d);
    case SYS_fadvise64: {
        int r = posix_fadvise(I(a), (off_t)b, (off_t)c, I(d));
        if (r) {
            errno = r;
            return -1;
        }
        return 0;
    }
    /* the sync family */
    case SYS_fsync:      return fsync(I(a));
    case SYS_fdatasync:  return fdatasync(I(a));
    case SYS_sync_file_range:
        return sync_file_range(I(a), (off_t)b, (off_t)c, (unsigned)d);
    case SYS_syncfs:     return syncfs(I(a));
    case SYS_sync:       sync(); return 0;
    /* copies between descriptors (tee and vmsplice take pipes only) */
    case SYS_sendfile:   return sendfile(I(a), I(b), P(c), (size_t)d);
    /* descriptors sent to and from another process (shared.c (7), (8)) */
    case SYS_sendmsg:    return sendmsg(I(a), P(b), I(c));
    case SYS_sendmmsg:   return sendmmsg(I(a), P(b), (unsigned)c, I(d));
    case SYS_recvmsg:    return recvmsg(I(a), P(b), I(c));
    case SYS_recvmmsg:   return recvmmsg(I(a), P(b), (unsigned)c, I(d), P(e));
    case SYS_copy_file_range:
        return copy_file_range(I(a), P(b), I(c), P(d), (size_t)e,
                               (unsigned)f);
    case SYS_splice:
        return splice(I(a), P(b), I(c), P(d), (size_t)e, (unsigned)f);
    case SYS_mmap: {
        /* The shim's look, then the kernel's call, not the mmap of a
         * library preloaded after the shim: tcmalloc's calls
         * syscall(SYS_mmap), and the two called each other until the
         * stack ran out, in every program. */
        int r = wc_mmap_before(I(c), I(d), I(e), (off_t)f);
        if (r < 0) {
            errno = -r;
            return -1;
        }
        return REAL(syscall)(SYS_mmap, a, b, c, d, e, f);
    }
    /* sizes seen */
    case SYS_fstat:      return fstat(I(a), P(b));
    case SYS_stat:       return stat(CP(a), P(b));
    case SYS_lstat:      return lstat(CP(a), P(b));
    case SYS_newfstatat: return fstatat(I(a), CP(b), P(c), I(d));
    case SYS_statx:
        return statx(I(a), CP(b), I(c), (unsigned)d, P(e));
    /* descriptors come and go */
    case SYS_open:       return open(CP(a), I(b), (mode_t)c);
    case SYS_openat:     return openat(I(a), CP(b), I(c), (mode_t)d);
    case SYS_creat:      return creat(CP(a), (mode_t)b);
    case SYS_openat2: {
        long fd = REAL(syscall)(nr, a, b, c, d, 0, 0);
        uint64_t fl = fd >= 0 ? *(const uint64_t *)c : 0;  /* open_how */
        return opened_raw(fd, I(a), CP(b), (int)fl);
    }
    case SYS_open_by_handle_at:
        return opened_raw(REAL(syscall)(nr, a, b, c, 0, 0, 0), AT_FDCWD,
                          NULL, I(c));
    case SYS_close:      return close(I(a));
    case SYS_close_range:
        return close_range((unsigned)a, (unsigned)b, I(c));
    case SYS_dup:        return dup(I(a));
    case SYS_dup2:       return dup2(I(a), I(b));
    case SYS_dup3:       return dup3(I(a), I(b), I(c));
    case SYS_fcntl:
        if (I(b) == F_GETOWN) {
            if (wc_fd_is_internal(I(a))) {
                errno = EBADF;
                return -1;
            }
            break;
        }
        return fcntl(I(a), I(b), P(c));
    case SYS_flock:      return flock(I(a), I(b));
    /* timestamps (flushed first, so write-back cannot move them) */
    case SYS_utimensat:  return wc_sys_utimensat(I(a), CP(b), P(c), I(d));
    case SYS_futimesat:  return wc_sys_futimesat(I(a), CP(b), P(c));
    case SYS_utimes:     return utimes(CP(a), P(b));
    case SYS_utime:      return utime(CP(a), P(b));
    case SYS_ioctl:      return ioctl(I(a), (unsigned long)b, P(c));
    case SYS_rename:     return rename(CP(a), CP(b));
    case SYS_renameat:   return renameat(I(a), CP(b), I(c), CP(d));
    case SYS_renameat2:
        return renameat2(I(a), CP(b), I(c), CP(d), (unsigned)e);
    case SYS_link:       return link(CP(a), CP(b));
    case SYS_linkat:     return linkat(I(a), CP(b), I(c), CP(d), I(e));
    case SYS_unlink:     return unlink(CP(a));
    case SYS_unlinkat:   return unlinkat(I(a), CP(b), I(c));
    case SYS_chmod:      return chmod(CP(a), (mode_t)b);
    case SYS_fchmod:     return fchmod(I(a), (mode_t)b);
    case SYS_fchmodat:   return fchmodat(I(a), CP(b), (mode_t)c, 0);
    case SYS_chown:      return chown(CP(a), (uid_t)b, (gid_t)c);
    case SYS_fchown:     return fchown(I(a), (uid_t)b, (gid_t)c);
    case SYS_lchown:     return lchown(CP(a), (uid_t)b, (gid_t)c);
    case SYS_fchownat:
        return fchownat(I(a), CP(b), (uid_t)c, (gid_t)d, I(e));
    case SYS_setxattr:   return setxattr(CP(a), CP(b), P(c), (size_t)d, I(e));
    case SYS_lsetxattr:  return lsetxattr(CP(a), CP(b), P(c), (size_t)d, I(e));
    case SYS_fsetxattr:  return fsetxattr(I(a), CP(b), P(c), (size_t)d, I(e));
    case SYS_removexattr:  return removexattr(CP(a), CP(b));
    case SYS_lremovexattr: return lremovexattr(CP(a), CP(b));
    case SYS_fremovexattr: return fremovexattr(I(a), CP(b));
    /* the same kind, with *at flags (AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW):
     * fchmodat2's in its fourth argument, the xattr ones' in the third */
    case SYS_fchmodat2:
        return wc_own_change_raw(nr, a, b, c, d, e, f, I(d));
    case SYS_setxattrat:
    case SYS_removexattrat:
        return wc_own_change_raw(nr, a, b, c, d, e, f, I(c));
    /* process-level consistency points */
    case SYS_execve:     return execve(CP(a), P(b), P(c));
    case SYS_execveat:   return execveat(I(a), CP(b), P(c), P(d), I(e));
    case SYS_fork:       return fork_like(nr, a, b, c, d, e, f);
    case SYS_vfork:      return wc_vfork_by_fork();  /* proc.c (7) */
    case SYS_clone:
        if (wc_clone_kind((unsigned long)a) == WC_CLONE_FORK)
            return fork_like(nr, a, b, c, d, e, f);
        wc_proc_before_raw_clone(wc_clone_kind((unsigned long)a));
        break;
    case SYS_unshare:    return unshare(I(a));
    case SYS_setns:      return setns(I(a), I(b));
    case SYS_chroot:     return chroot(CP(a));
    case SYS_pivot_root: return wc_sys_pivot_root(CP(a), CP(b));
    case SYS_clone3:     return clone3_call(a, b);
    case SYS_rt_sigaction:
        if (b) {                /* a handler may be set: flusher.c (2) */
            /* The kernel's struct: handler, flags, restorer, mask. */
            const unsigned long *k = P(b);
            if (wc_probe_readable(k, 2 * sizeof *k) < 2 * sizeof *k)
                break;          /* the kernel says EFAULT */
            if (k[0] != (unsigned long)SIG_DFL &&
                k[0] != (unsigned long)SIG_IGN)
                wc_note_handler(I(a), !!(k[1] & SA_NODEFER));
        }
        break;
    case SYS_exit_group:
        wc_proc_exit_flush();
        break;
    case SYS_exit:       return thread_exit(a);
    /* SIGKILL to itself, a signal to another (signals.c (4), (6)) */
    case SYS_kill:
    case SYS_rt_sigqueueinfo:
        wc_before_kill(WC_KILL_PID, a, 0, I(b));
        break;
    case SYS_tgkill:
    case SYS_rt_tgsigqueueinfo:
        wc_before_kill(WC_KILL_TGID, a, b, I(c));
        break;
    case SYS_tkill:
        wc_before_kill(WC_KILL_TID, 0, a, I(b));
        break;
    case SYS_pidfd_send_signal:
        wc_before_kill(WC_KILL_PIDFD, a, 0, I(b));
        break;
    /* limits the write path obeys (proc.c (5)) or the shim's own
     * descriptors live with (ownfd.c (2)) */
    case SYS_setrlimit:  return setrlimit(I(a), P(b));
    case SYS_getrlimit:  return getrlimit(I(a), P(b));
    case SYS_prlimit64:  return prlimit64((pid_t)a, I(b), P(c), P(d));
    /* asynchronous I/O, which the kernel does from a queue (aio.c) */
    case SYS_io_submit:
        wc_aio_iocbs_for_good(b, P(c));
        break;
    case SYS_io_uring_setup:
    case SYS_io_uring_enter:    /* a ring made elsewhere (pidfd_getfd) */
    case SYS_io_uring_register:
        wc_proc_off();
        break;
    case SYS_seccomp:    /* proc.c invariant (8) */
        /* Not for the calls that only probe (libseccomp asks for strict
         * mode with flags, which fails with EINVAL, to learn whether the
         * call exists). */
        if ((a == SECCOMP_SET_MODE_STRICT && b == 0 && c == 0) ||
            (a == SECCOMP_SET_MODE_FILTER && c != 0))
            wc_proc_off();
        break;
    case SYS_prctl:
        if (a == PR_SET_SECCOMP)
            wc_proc_off();
        break;
    default:
        break;
    }
    *routed = 0;
    return 0;
}

WC_EXPORT long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    int routed = 1;
    long r = route(nr, a, b, c, d, e, f, &routed);
    return routed ? r : REAL(syscall)(nr, a, b, c, d, e, f);
}
