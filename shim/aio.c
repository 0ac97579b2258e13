/*
 * aio.c - asynchronous I/O: requests that reach a file without the calls
 * the shim serves.
 *
 * glibc's POSIX aio (aio_read, aio_write, lio_listio, aio_fsync) runs each
 * request in a thread of its own with glibc's internal pread, pwrite and
 * fsync, which no preloaded library sees; Linux AIO (io_submit, libaio's
 * or syscall()'s) and io_uring are carried out by the kernel from a
 * queue. Unseen, such a request on a cached file reads what the disk has
 * (not what the program wrote), its write is overwritten at write-back,
 * and its fsync leaves the cached bytes out.
 *
 * Invariants:
 *   (1) Every file a POSIX aio or Linux AIO request names passes through
 *       for good before the request is made (wc_fd_for_good: its cached
 *       bytes written back, every description of it THROUGH at the
 *       kernel's offset, later opens of it not cached, as a mapped one).
 *       A request block that cannot be read names nothing here: its error
 *       (EFAULT, EINVAL, a crash) is glibc's or the kernel's to give.
 *   (2) io_uring: requests are placed in memory the kernel reads (with
 *       SQPOLL, without a system call at all), so none is seen. A process
 *       that sets up a ring stops caching for good before the ring exists
 *       (wc_proc_off: every cached byte written back, every description
 *       THROUGH, every offset the kernel's, wc_state OFF): through
 *       syscall(SYS_io_uring_setup), or liburing, whose functions make
 *       their system calls themselves, so its exported entry points that
 *       make or map a ring are the place to see it (liburing 2.3's
 *       io_uring_queue_init_params makes the ring by a system call of its
 *       own, then maps it through the exported io_uring_queue_mmap: seen
 *       there, before any request can be queued). A ring the process did
 *       not make (another process's, taken with pidfd_getfd; the kernel
 *       refuses to pass one over SCM_RIGHTS) is seen where it is driven
 *       or mapped: syscall(SYS_io_uring_enter / _register), and mmap of
 *       its submission entries (IORING_OFF_SQES, wc_is_io_uring), without
 *       which no request can be made; liburing's io_uring_queue_mmap of
 *       it is the call above. Before, its reads missed the cached bytes
 *       and its writes were written over at write-back (probe P).
 *   (3) The real functions are looked up when first called (dlsym
 *       RTLD_NEXT, kept), not at start-up: few programs call them, most
 *       load neither liburing nor libaio, and glibc before 2.34 has POSIX
 *       aio in librt. One missing is the caller's ENOSYS (-1 and errno
 *       for POSIX aio, a negative number for liburing and libaio, as they
 *       return errors).
 */
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <string.h>

#include "shim.h"
#include "wcache/str.h"
#include "wcache/ucopy.h"

/* Invariant (3): the next `name`, of type `type` (wc_next_fn); when there
 * is none, the wrapper returns `fail` at once. */
#define NEXT_OR(fail, type, name)                                          \
    ({                                                                     \
        __typeof__((type)0) f_ = WC_NEXT(type, name);                      \
        if (!f_)                                                           \
            return (fail);                                                 \
        f_;                                                                \
    })
/* POSIX aio: -1 and errno; liburing and libaio: a negative number. */
#define ENOSYS_ERRNO wc_ret(-ENOSYS)

/* ---- POSIX aio (invariant (1)) ----------------------------------------- */

/* The descriptor of the request block cb, if it can be read (the copy
 * sets no errno; wc_fd_for_good keeps it). */
static void cb_for_good(const struct aiocb *cb)
{
    /* Its completion may run the program's function in a thread glibc
     * makes (altstack.c invariant (7)). */
    if (cb && wc_sigev_by_thread(&cb->aio_sigevent))
        wc_thread_to_come();
    int fd;
    if (wc_state == WC_ST_ON && !wc_depth && cb &&
        wc_copy_nofault(&fd, &cb->aio_fildes, sizeof fd) == sizeof fd)
        wc_fd_for_good(fd);
}

WC_EXPORT int aio_read(struct aiocb *cb)
{
    int (*next)(struct aiocb *) =
        NEXT_OR(ENOSYS_ERRNO, int (*)(struct aiocb *), aio_read);
    cb_for_good(cb);
    return next(cb);
}

WC_EXPORT int aio_write(struct aiocb *cb)
{
    int (*next)(struct aiocb *) =
        NEXT_OR(ENOSYS_ERRNO, int (*)(struct aiocb *), aio_write);
    cb_for_good(cb);
    return next(cb);
}

WC_EXPORT int aio_fsync(int op, struct aiocb *cb)
{
    int (*next)(int, struct aiocb *) =
        NEXT_OR(ENOSYS_ERRNO, int (*)(int, struct aiocb *), aio_fsync);
    cb_for_good(cb);
    return next(op, cb);
}

WC_EXPORT int lio_listio(int mode, struct aiocb *const list[], int n,
                         struct sigevent *sev)
{
    int (*next)(int, struct aiocb *const[], int, struct sigevent *) =
        NEXT_OR(ENOSYS_ERRNO,
                int (*)(int, struct aiocb *const[], int, struct sigevent *),
                lio_listio);
    for (int i = 0; i < n && wc_state == WC_ST_ON && !wc_depth; i++) {
        struct aiocb *cb;
        if (wc_copy_nofault(&cb, &list[i], sizeof cb) != sizeof cb)
            break;
        cb_for_good(cb);
    }
    if (wc_sigev_by_thread(sev))
        wc_thread_to_come();
    return next(mode, list, n, sev);
}

/* On x86-64 struct aiocb64 is struct aiocb (off_t is 64 bits). */
WC_EXPORT int aio_read64(struct aiocb64 *cb)
{
    return aio_read((struct aiocb *)cb);
}
WC_EXPORT int aio_write64(struct aiocb64 *cb)
{
    return aio_write((struct aiocb *)cb);
}
WC_EXPORT int aio_fsync64(int op, struct aiocb64 *cb)
{
    return aio_fsync(op, (struct aiocb *)cb);
}
WC_EXPORT int lio_listio64(int mode, struct aiocb64 *const list[], int n,
                           struct sigevent *sev)
{
    return lio_listio(mode, (struct aiocb *const *)list, n, sev);
}

/* ---- Linux AIO (invariant (1)) ----------------------------------------- */

void wc_aio_iocbs_for_good(long nr, void *iocbpp)
{
    if (wc_state != WC_ST_ON || wc_depth || !iocbpp)
        return;
    struct iocb **v = iocbpp;
    for (long i = 0; i < nr; i++) {
        struct iocb *p, cb;
        if (wc_copy_nofault(&p, &v[i], sizeof p) != sizeof p ||
            wc_copy_nofault(&cb, p, sizeof cb) != sizeof cb)
            break;
        switch (cb.aio_lio_opcode) {
        case IOCB_CMD_PREAD:
        case IOCB_CMD_PWRITE:
        case IOCB_CMD_FSYNC:
        case IOCB_CMD_FDSYNC:
        case IOCB_CMD_PREADV:
        case IOCB_CMD_PWRITEV:
            wc_fd_for_good((int)cb.aio_fildes);
            break;
        default:
            break;
        }
    }
}

/* libaio's io_submit (its io_context_t is a pointer). */
WC_EXPORT int io_submit(void *ctx, long nr, void **ios)
{
    int (*next)(void *, long, void **) =
        NEXT_OR(-ENOSYS, int (*)(void *, long, void **), io_submit);
    wc_aio_iocbs_for_good(nr, ios);
    return next(ctx, nr, ios);
}

/* ---- io_uring (invariant (2)) ------------------------------------------ */

/* liburing's struct io_uring and struct io_uring_params are only passed
 * on: declared as opaque here. */
WC_EXPORT int io_uring_queue_init(unsigned entries, void *ring,
                                  unsigned flags)
{
    int (*next)(unsigned, void *, unsigned) =
        NEXT_OR(-ENOSYS, int (*)(unsigned, void *, unsigned),
                io_uring_queue_init);
    wc_proc_off();
    return next(entries, ring, flags);
}

WC_EXPORT int io_uring_queue_init_params(unsigned entries, void *ring,
                                         void *params)
{
    int (*next)(unsigned, void *, void *) =
        NEXT_OR(-ENOSYS, int (*)(unsigned, void *, void *),
                io_uring_queue_init_params);
    wc_proc_off();
    return next(entries, ring, params);
}

WC_EXPORT int io_uring_queue_init_mem(unsigned entries, void *ring,
                                      void *params, void *buf, size_t len)
{
    int (*next)(unsigned, void *, void *, void *, size_t) =
        NEXT_OR(-ENOSYS, int (*)(unsigned, void *, void *, void *, size_t),
                io_uring_queue_init_mem);
    wc_proc_off();
    return next(entries, ring, params, buf, len);
}

WC_EXPORT int io_uring_queue_mmap(int fd, void *params, void *ring)
{
    int (*next)(int, void *, void *) =
        NEXT_OR(-ENOSYS, int (*)(int, void *, void *), io_uring_queue_mmap);
    wc_proc_off();
    return next(fd, params, ring);
}

WC_EXPORT int io_uring_setup(unsigned entries, void *params)
{
    int (*next)(unsigned, void *) =
        NEXT_OR(-ENOSYS, int (*)(unsigned, void *), io_uring_setup);
    wc_proc_off();
    return next(entries, params);
}

int wc_is_io_uring(int fd)
{
    char p[64], t[32];
    int e = errno;
    ssize_t n = REAL(readlink)(wc_str_procfd(p, sizeof p, fd), t,
                               sizeof t - 1);
    errno = e;
    if (n <= 0)
        return 0;
    t[n] = 0;
    return !strcmp(t, "anon_inode:[io_uring]");
}
