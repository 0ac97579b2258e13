/*
 * kcall.h - the system calls the shim passes through, made as libc makes
 * them (shim/ only).
 *
 * A call the shim hands to the kernel unchanged (a descriptor it does not
 * track, a WATCH description's first writes, every stat, an fcntl lock)
 * went through the table: an indirect call into libc's function, and
 * libc's frames on top of the shim's. On the machine this was measured on
 * (a VM whose every system call flushes the TLB: PTI without PCID) that
 * cost 30-60 ns a call, about what the rest of the shim's pass-through
 * path costs, and 2-4% of programs that make little else: SQLite's
 * autocommit inserts (18,000 pwrites, 18,000 fcntl locks, 12,000 fstats
 * for 2,000 rows). wc_k_NAME(...) makes the system call itself where that
 * is exactly what libc's NAME would do, and calls the table's NAME where
 * it is not:
 *
 *   (K1) Calls that are no cancellation point (the stat family, lseek,
 *        fcntl but for F_SETLKW, F_OFD_SETLKW and F_GETOWN): the bare
 *        call. Each repeats what libc does with its arguments first
 *        (glibc 2.36, sysdeps/unix/sysv/linux): fstat of a negative
 *        descriptor fails with EBADF (never newfstatat(AT_FDCWD, "")), stat
 *        and lstat are newfstatat at AT_FDCWD, fcntl's F_GETOWN (a process
 *        group's negative number, done with F_GETOWN_EX) and the blocking
 *        locks stay libc's.
 *   (K2) Cancellation points (read, write, pread, pwrite, openat, close):
 *        the bare call only while the program has one thread (wc_solo),
 *        when no thread can ask this one to be cancelled: the shim's own
 *        flusher never does, and libc's SYSCALL_CANCEL, which sees it
 *        (__libc_single_threaded is 0 from its start), would only switch
 *        the thread to asynchronous cancellation and back around the
 *        call (two atomic operations on the thread's cancel word: 45
 *        instructions a read of dd bs=1, callgrind, whose 200,000 reads
 *        of /dev/zero took 5-17 ms more with them, perf stat -r 25).
 *        With threads, libc's function, which acts on a pending
 *        cancellation; and libc's function too once the process has
 *        called pthread_cancel (cancel.c: a single-threaded process may
 *        cancel itself, and glibc then checks at every cancellation
 *        point).
 *   (K3) Under a sanitizer (the test builds: compiled with one, or, for
 *        the files of the ThreadSanitizer build left uninstrumented,
 *        WC_KCALL_TABLE), always the table's function: the sanitizers'
 *        interceptors check the buffers and order threads by the
 *        descriptors they pass.
 *   (K4) Only while the table's function is libc's own (wc_kcall_libc,
 *        real.c): a library preloaded after the shim that wraps one of
 *        these calls (fakeroot's stat family, a tracer's write) is what
 *        RTLD_NEXT found, and the shim calls it, as before, for all of
 *        them.
 *
 * errno is set on failure only, as libc's functions do (a result in
 * [-4095, -1] is an error: INTERNAL_SYSCALL_ERROR_P).
 */
#ifndef WCACHE_KCALL_H
#define WCACHE_KCALL_H

#include <fcntl.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "shim.h"
#include "wcache/raw.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
    defined(WC_KCALL_TABLE)
#define WC_KCALL_BARE 0                 /* (K3) */
#else
#define WC_KCALL_BARE 1
#endif

/* A bare call's result as libc returns it. */
static inline long wc_k_ret(long r)
{
    if (unlikely((unsigned long)r > -4096UL)) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* 1 once real.c found that every function this file may bypass is
 * libc's own ((K4); 0 until the table is filled). */
extern WC_LOCAL int wc_kcall_libc;

/* (K1), (K3), (K4): may a call that is no cancellation point be bare? */
static inline int wc_k_bare(void)
{
    return WC_KCALL_BARE && __atomic_load_n(&wc_kcall_libc, __ATOMIC_RELAXED);
}

/* (K2): may a cancellation point be the bare call on this thread? */
static inline int wc_k_solo(void)
{
    return wc_k_bare() && __atomic_load_n(&wc_solo, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&wc_cancel_used, __ATOMIC_RELAXED);
}

static inline ssize_t wc_k_write(int fd, const void *buf, size_t n)
{
    if (wc_k_solo())
        return wc_k_ret(wc_raw_syscall(SYS_write, fd, (long)buf, (long)n,
                                       0, 0, 0));
    return REAL(write)(fd, buf, n);
}

static inline ssize_t wc_k_pwrite(int fd, const void *buf, size_t n,
                                  off_t pos)
{
    if (wc_k_solo())
        return wc_k_ret(wc_raw_syscall(SYS_pwrite64, fd, (long)buf, (long)n,
                                       pos, 0, 0));
    return REAL(pwrite)(fd, buf, n, pos);
}

static inline ssize_t wc_k_read(int fd, void *buf, size_t n)
{
    if (wc_k_solo())
        return wc_k_ret(wc_raw_syscall(SYS_read, fd, (long)buf, (long)n,
                                       0, 0, 0));
    return REAL(read)(fd, buf, n);
}

static inline ssize_t wc_k_pread(int fd, void *buf, size_t n, off_t pos)
{
    if (wc_k_solo())
        return wc_k_ret(wc_raw_syscall(SYS_pread64, fd, (long)buf, (long)n,
                                       pos, 0, 0));
    return REAL(pread)(fd, buf, n, pos);
}

/* openat with its mode already taken (0 unless O_CREAT or O_TMPFILE, as
 * glibc passes it); on x86_64 glibc adds no flag (O_LARGEFILE is the
 * kernel's default for 64-bit callers). */
static inline int wc_k_openat(int dirfd, const char *path, int flags,
                              mode_t mode)
{
    if (wc_k_solo())
        return (int)wc_k_ret(wc_raw_syscall(SYS_openat, dirfd, (long)path,
                                            flags, mode, 0, 0));
    return REAL(openat)(dirfd, path, flags, mode);
}

static inline int wc_k_close(int fd)
{
    if (wc_k_solo())
        return (int)wc_k_ret(wc_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0));
    return REAL(close)(fd);
}

static inline int wc_k_fstatat(int dirfd, const char *path, struct stat *st,
                               int flags)
{
    if (wc_k_bare())
        return (int)wc_k_ret(wc_raw_syscall(SYS_newfstatat, dirfd,
                                            (long)path, (long)st, flags,
                                            0, 0));
    return REAL(fstatat)(dirfd, path, st, flags);
}

static inline int wc_k_fstat(int fd, struct stat *st)
{
    if (!wc_k_bare())
        return REAL(fstat)(fd, st);
    if (fd < 0)
        return (int)wc_k_ret(-EBADF);
    return wc_k_fstatat(fd, "", st, AT_EMPTY_PATH);
}

static inline int wc_k_stat(const char *path, struct stat *st)
{
    if (!wc_k_bare())
        return REAL(stat)(path, st);
    return wc_k_fstatat(AT_FDCWD, path, st, 0);
}

static inline int wc_k_lstat(const char *path, struct stat *st)
{
    if (!wc_k_bare())
        return REAL(lstat)(path, st);
    return wc_k_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

static inline off_t wc_k_lseek(int fd, off_t off, int whence)
{
    if (wc_k_bare())
        return wc_k_ret(wc_raw_syscall(SYS_lseek, fd, off, whence, 0, 0, 0));
    return REAL(lseek)(fd, off, whence);
}

/* fcntl with its argument already taken (an int, or a pointer as long:
 * the register is the same). */
static inline int wc_k_fcntl(int fd, int cmd, long arg)
{
    if (wc_k_bare() && cmd != F_SETLKW && cmd != F_OFD_SETLKW &&
        cmd != F_GETOWN)
        return (int)wc_k_ret(wc_raw_syscall(SYS_fcntl, fd, cmd, arg,
                                            0, 0, 0));
    return REAL(fcntl)(fd, cmd, arg);
}

#endif /* WCACHE_KCALL_H */
