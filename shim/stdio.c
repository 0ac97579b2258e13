/*
 * stdio.c - writes that glibc makes on a descriptor behind the shim's back.
 *
 * glibc's stdio streams (stdin, stdout, stderr, and so perror, psignal,
 * error, warn, assert and abort messages), dprintf and backtrace_symbols_fd
 * write with glibc's internal write, which LD_PRELOAD cannot see. Such a
 * write lands at the kernel's file offset, so on a tracked descriptor that
 * offset must be right whenever glibc may write, and the cache must never
 * later write back older bytes over what glibc wrote.
 *
 *   - dprintf, vdprintf and their _chk forms are interposed: the text is
 *     formatted here and written through the shim's write(), cached like
 *     any other write.
 *   - backtrace_symbols_fd is interposed: the file is flushed and the
 *     kernel's offset set, glibc writes, the offset is read back.
 *   - Descriptors 0, 1 and 2 are the ones stdio writes through: a tracked
 *     description installed on one of them (open after close(1), dup2 onto
 *     1, an inherited stdout) is shared with stdio (shared.c,
 *     wc_fd_share): RESERVE, or THROUGH when it is O_APPEND; except as
 *     (2) says.
 *
 * Invariants:
 *   (1) glibc writes to descriptor 0 or 2 from inside itself (perror,
 *       error, assert, abort and fatal messages, getopt, syslog's
 *       LOG_PERROR): a description there is always shared with stdio.
 *   (2) Descriptor 1 is written by glibc only through a stream on it
 *       (stdout, normally), and only inside a stdio call or at exit.
 *       So a description installed on 1 while no stream on 1 is
 *       unbuffered, line-buffered or holds output (wc_stdout_quiet) is
 *       *guarded* (d->guard) instead of shared: cached as a description
 *       of the process's own, the kernel's offset left behind. Every
 *       stdio call that can write a stream's bytes out (the printf, puts,
 *       putc, fwrite and fputs families, narrow and wide, __overflow,
 *       fflush, fclose, fseek, setvbuf, argp; stdiofence.c) first calls
 *       wc_stdio_fence for the stream's descriptor: the guard goes for
 *       good and the description becomes shared (RESERVE, its offset
 *       written to the kernel), before glibc writes. At exit the shim
 *       writes the kernel's offset back before glibc flushes its streams
 *       (the shim's destructor runs first). A description is guarded only
 *       on 1 and only if no descriptor 0 or 2 names its file, tracked
 *       there or not (`prog > f 2>&1` from a shell under wcache hands 1
 *       and 2 over untracked; glibc's stderr wrote at the kernel's
 *       offset, inside bytes 1 had cached, and the write-back wrote over
 *       it): the same description there makes it shared; another
 *       description of the file on 0, 1 or 2 (`> f 2> f`) makes the file
 *       pass through for good (shared.c std_holders).
 *   Limits of (2), in the contract's terms: a stdio call made by a signal
 *   handler that interrupted the shim itself does not fence (such a call
 *   is not async-signal-safe anyway); glibc functions outside the list
 *   that take a stream (putpwent, malloc_info...) on stdout only buffer
 *   their output, written out later through a fenced call or at exit,
 *   unless one such call writes more than the stream's buffer.
 */
#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim.h"

/* ---- descriptor 1 and stdout (invariant (2)) --------------------------- */

int wc_guard_seen;

/* glibc's libio flags (libio.h), not in the public header. */
#define WC_IO_UNBUFFERED 0x0002
#define WC_IO_LINE_BUF 0x0200

/* Not on 1, or fully buffered, byte-oriented and holding no output. */
static int stream_quiet(FILE *f)
{
    return !f || f->_fileno != 1 ||
           (!(f->_flags & (WC_IO_UNBUFFERED | WC_IO_LINE_BUF)) &&
            f->_mode <= 0 && f->_IO_write_ptr == f->_IO_write_base);
}

int wc_stdout_quiet(void)
{
    return stream_quiet(stdin) && stream_quiet(stdout) &&
           stream_quiet(stderr);
}

void wc_stdio_fence(int fd)
{
    if (fd < 0)
        fd = 1;             /* every stream: only 1 is ever guarded */
    struct wc_desc *d = wc_fd_get(fd);
    if (!d || !__atomic_load_n(&d->guard, __ATOMIC_RELAXED) || wc_depth)
        return;
    int e = wc_work_begin();
    if (!wc_desc_lock(fd, d)) {
        __atomic_store_n(&d->guard, 0, __ATOMIC_RELAXED);
        wc_blk_unlock(&d->lock);
        wc_fd_share(fd, 0);
        wc_debug_fd(fd, NULL, "stdio writes there: shared with stdio");
    }
    wc_work_end(e);
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
    if (d && d->mode == WC_D_WATCH)
        wc_cell_settle(fd, d);  /* glibc writes it: shared.c invariant (6) */
    return d && d->mode != WC_D_WATCH;
}

WC_EXPORT int vdprintf(int fd, const char *fmt, va_list ap)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
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
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
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
