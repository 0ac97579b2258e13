/*
 * stdio.c - writes that glibc makes on a descriptor behind the shim's back.
 *
 * glibc's stdio streams (stdin, stdout, stderr, and so perror, psignal,
 * error, warn, assert and abort messages), dprintf and backtrace_symbols_fd
 * write with glibc's internal write, which LD_PRELOAD cannot see. Such a
 * write lands at the kernel's file offset, so on a tracked descriptor that
 * offset must be right at all times, and the cache must never later write
 * back older bytes over what glibc wrote.
 *
 *   - dprintf, vdprintf and their _chk forms are interposed: the text is
 *     formatted here and written through the shim's write(), cached like
 *     any other write.
 *   - backtrace_symbols_fd is interposed: the file is flushed and the
 *     kernel's offset set, glibc writes, the offset is read back.
 *   - Descriptors 0, 1 and 2 are the ones stdio writes through. A tracked
 *     description installed on one of them (open after close(1), dup2 onto
 *     1, an inherited stdout) is made RESERVE (wc_stdio_exposed), or
 *     THROUGH when it is O_APPEND: glibc's O_APPEND writes land at the
 *     file's real end, before cached appends, and nothing the shim can do
 *     in advance keeps them after.
 *
 * RESERVE: a cached description whose kernel offset is kept exact.
 *
 *   CACHED --(installed on fd 0..2, not O_APPEND)--> RESERVE
 *   CACHED --(installed on fd 0..2, O_APPEND)------> THROUGH
 *   RESERVE --(fork, exec, exit, mmap, O_APPEND set, fopen...)--> THROUGH
 *
 * Invariants of a RESERVE description (d->lock held for each step):
 *   (1) Every dirty byte it wrote lies below the kernel's offset: write()
 *       reserves [start, start + n) with lseek(fd, n, SEEK_CUR) before the
 *       bytes are cached at `start`; lseek to anywhere else, pwrite, reads
 *       and every other call write the file back first. So glibc's own
 *       writes, which land at the kernel's offset, never overlap bytes the
 *       cache will write back later.
 *   (2) d->pos is where the kernel's offset was left by the shim; a
 *       reservation that starts elsewhere means glibc (or another process)
 *       moved it, maybe extending the file: the engine then writes back and
 *       forgets what it knew of the file (size included) before caching.
 *   (3) A short or failed write gives back the unused part of its
 *       reservation when nobody reserved after it (the offset is still at
 *       the reservation's end), so the offset ends where the kernel's would.
 *   (4) Every other description of the file is THROUGH and later opens of
 *       it are too (the registry entry is marked): glibc's writes change the
 *       file behind the engine, and only this description notices.
 */
#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/ucopy.h"

/* ---- RESERVE descriptions -------------------------------------------- */

void wc_stdio_exposed(int fd)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (!d || fd < 0 || fd > 2 || wc_desc_lock(fd, d))
        return;
    int others = 0;
    if (d->mode == WC_D_CACHED) {
        if (d->append) {
            wc_desc_through_locked(fd, d, WC_WHY_OTHER);
        } else {
            wc_desc_sync_locked(fd, d, WC_WHY_OTHER);
            d->mode = WC_D_RESERVE;
            others = 1;
        }
    }
    dev_t dev = d->dev;
    ino_t ino = d->ino;
    wc_unlock(&d->lock);
    if (others)
        wc_file_others_through(dev, ino, d, WC_WHY_OTHER);
}

ssize_t wc_reserve_write(int fd, struct wc_desc *d, const struct iovec *iov,
                         int iovcnt, int vec)
{
    if (d->accmode != O_WRONLY && d->accmode != O_RDWR)
        return -EBADF;
    ssize_t n;
    if (vec) {
        n = wc_iov_count(iov, iovcnt);
    } else {
        n = (ssize_t)(iov->iov_len > WC_MAX_RW_COUNT ? WC_MAX_RW_COUNT
                                                     : iov->iov_len);
        if (!wc_access_ok(iov->iov_base, (size_t)n))
            n = -EFAULT;
    }
    if (n <= 0)
        return n;
    off_t end = REAL(lseek)(fd, n, SEEK_CUR);
    if (end < 0) {
        /* Past the file system's limit: the kernel decides (EFBIG...). */
        ssize_t r = vec ? REAL(writev)(fd, iov, iovcnt)
                        : REAL(write)(fd, iov->iov_base, iov->iov_len);
        r = r < 0 ? -errno : r;
        off_t k = REAL(lseek)(fd, 0, SEEK_CUR);
        wc_file_invalidate(d->file, WC_WHY_OTHER);
        if (k >= 0)
            d->pos = k;
        return r;
    }
    off_t start = end - n;
    if (start != d->pos)                           /* invariant (2) */
        wc_file_invalidate(d->file, WC_WHY_OTHER);
    off_t where = 0;
    ssize_t r = vec ? wc_pwritev(d->file, iov, iovcnt, start, 0, &where)
                    : wc_pwrite(d->file, iov->iov_base, (size_t)n, start, 0,
                                &where);
    off_t done = start + (r > 0 ? r : 0);
    if (done != end && REAL(lseek)(fd, 0, SEEK_CUR) == end)   /* (3) */
        REAL(lseek)(fd, done, SEEK_SET);
    d->pos = done;
    return r;
}

/* ---- dprintf ---------------------------------------------------------- */

extern int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen,
                           const char *fmt, va_list ap);
extern int __vasprintf_chk(char **out, int flag, const char *fmt,
                           va_list ap);

/* Write all of buf[0..n) through the shim's write(). Returns n or -1 with
 * errno set by the write that failed, as vdprintf does. */
static int write_all(int fd, const char *buf, int n)
{
    int done = 0;
    while (done < n) {
        ssize_t w = write(fd, buf + done, (size_t)(n - done));
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (int)w;
    }
    return n;
}

/* vdprintf on a tracked descriptor: format here, write through the cache.
 * flag < 0: plain vdprintf; else the fortify level of __vdprintf_chk. */
static int format_and_write(int fd, int flag, const char *fmt, va_list ap)
{
    char small[1024];
    va_list ap2;
    va_copy(ap2, ap);
    int n = flag < 0 ? vsnprintf(small, sizeof small, fmt, ap)
                     : __vsnprintf_chk(small, sizeof small, flag,
                                       sizeof small, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return -1;
    }
    if ((size_t)n < sizeof small) {
        va_end(ap2);
        return write_all(fd, small, n);
    }
    char *big = NULL;
    n = flag < 0 ? vasprintf(&big, fmt, ap2)
                 : __vasprintf_chk(&big, flag, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    int r = write_all(fd, big, n);
    int e = errno;
    free(big);
    errno = e;
    return r;
}

/* Is fd one whose dprintf output the shim must see? */
static int tracked(int fd)
{
    struct wc_desc *d = wc_fd_get(fd);
    return d && d->mode != WC_D_WATCH;
}

WC_EXPORT int vdprintf(int fd, const char *fmt, va_list ap)
{
    if (likely(!tracked(fd)))
        return REAL(vdprintf)(fd, fmt, ap);
    return format_and_write(fd, -1, fmt, ap);
}

WC_EXPORT int dprintf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vdprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

WC_EXPORT int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
    if (likely(!tracked(fd)))
        return REAL(__vdprintf_chk)(fd, flag, fmt, ap);
    return format_and_write(fd, flag, fmt, ap);
}

WC_EXPORT int __dprintf_chk(int fd, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = __vdprintf_chk(fd, flag, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- backtrace_symbols_fd -------------------------------------------- */

/* Made for crash handlers (no malloc): glibc writes the lines itself, at
 * the kernel's offset, which the shim makes right first. */
WC_EXPORT void backtrace_symbols_fd(void *const *buf, int n, int fd)
{
    int e = errno;
    struct wc_desc *d = wc_kernel_before(fd, WC_WHY_OTHER);
    errno = e;
    REAL(backtrace_symbols_fd)(buf, n, fd);
    e = errno;
    wc_kernel_after(fd, d, 1, 1);
    errno = e;
}
