/*
 * ioctl.c - ioctl on a file the cache may hold: the kernel answers from
 * the file as it is on disk, so what the cache holds goes there first.
 *
 * Invariants:
 *   (1) Terminal requests (type 'T': TCGETS, which isatty makes on a
 *       cached stdout, FIONBIO, FIOCLEX...) pass untouched: a regular
 *       file answers them with ENOTTY or changes only the descriptor's
 *       flags. FIONREAD and FIOQSIZE, of the same type, are queries (2).
 *   (2) Queries of the file's size, offset, extents or attributes
 *       (FIONREAD, FIOQSIZE, FS_IOC_FIEMAP, FIBMAP, FIGETBSZ, FS_IOC_GETFLAGS,
 *       FS_IOC_FSGETXATTR) are a consistency point of the descriptor (meta.c
 *       invariant (3)): its file is written back and the kernel's offset
 *       set before the call.
 *   (3) Any other request may change the file behind the engine (its
 *       data: FICLONE, FICLONERANGE; what writes it takes: FS_IOC_SETFLAGS
 *       with the immutable or append-only flag), or read data the cache
 *       holds (FIDEDUPERANGE compares): every regular file it names (the
 *       descriptor, a clone's source, a dedupe's destinations) passes
 *       through for good from then on, as a mapped one (meta.c invariant
 *       (5)): written back, every description THROUGH, later opens not
 *       cached. Only for descriptors the shim tracks, or when some file
 *       is cached: a process that caches nothing pays nothing.
 *   (4) Requests on a whole file system, through any descriptor of it (a
 *       directory's, most often): a btrfs snapshot (BTRFS_IOC_SNAP_CREATE,
 *       _V2) copies every file of the subvolume as the disk has it, a
 *       freeze (FIFREEZE) stops the write-back that would follow, and
 *       btrfs's sync requests are a sync: every cached file is written
 *       back first, as sync() does (meta.c). A snapshot the program took
 *       of its own subvolume held none of its cached bytes, for good
 *       (probe Q).
 */
#include <errno.h>
#include <linux/btrfs.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/ucopy.h"

/* Invariant (2). */
static int query(unsigned long req)
{
    switch (req) {
    case FIONREAD:
    case FIOQSIZE:
    case FS_IOC_FIEMAP:
    case FIBMAP:
    case FIGETBSZ:
    case FS_IOC_GETFLAGS:
    case FS_IOC_FSGETXATTR:
        return 1;
    default:
        return 0;
    }
}

/* Invariant (4). */
static int whole_fs(unsigned long req)
{
    switch (req) {
    case BTRFS_IOC_SNAP_CREATE:
    case BTRFS_IOC_SNAP_CREATE_V2:
    case BTRFS_IOC_SYNC:
    case BTRFS_IOC_START_SYNC:
    case FIFREEZE:
        return 1;
    default:
        return 0;
    }
}

/* The other descriptors a request names (invariant (3)), read from the
 * program's memory without faulting: an unreadable argument is the
 * kernel's EFAULT to give, and names nothing here. */
static void others_for_good(unsigned long req, void *arg)
{
    if (req == FICLONE) {
        wc_fd_for_good((int)(intptr_t)arg);
    } else if (req == FICLONERANGE) {
        struct file_clone_range r;
        if (wc_copy_nofault(&r, arg, sizeof r) == sizeof r)
            wc_fd_for_good((int)r.src_fd);
    } else if (req == FIDEDUPERANGE) {
        struct file_dedupe_range h;
        if (wc_copy_nofault(&h, arg, sizeof h) != sizeof h)
            return;
        struct file_dedupe_range_info *v =
            ((struct file_dedupe_range *)arg)->info;
        for (unsigned i = 0; i < h.dest_count; i++) {
            struct file_dedupe_range_info one;
            if (wc_copy_nofault(&one, &v[i], sizeof one) != sizeof one)
                return;
            wc_fd_for_good((int)one.dest_fd);
        }
    }
}

WC_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);     /* as glibc's own ioctl reads it */
    va_end(ap);
    if (unlikely(wc_state == WC_ST_VFORK)) {
        (void)wc_fd_get(fd);    /* the child's use: proc.c invariant (7) */
        return REAL(ioctl)(fd, req, arg);
    }
    if (_IOC_TYPE(req) == 'T' && req != FIONREAD && req != FIOQSIZE)
        return REAL(ioctl)(fd, req, arg);                   /* (1) */
    if (wc_state != WC_ST_ON || wc_depth ||
        (!wc_fd_get(fd) && wc_reg_empty()))
        return REAL(ioctl)(fd, req, arg);
    if (whole_fs(req) && wc_cachep) {                       /* (4) */
        int e = wc_work_begin();
        wc_consistency_all(WC_WHY_FSYNC, WC_ALL_SYNC, 0);
        wc_work_end(e);
    }
    if (query(req)) {                                       /* (2) */
        struct wc_desc *d = wc_kernel_before(fd, WC_WHY_OTHER);
        int r = REAL(ioctl)(fd, req, arg);
        int e = errno;
        wc_kernel_after(fd, d, 0, 0);
        errno = e;
        return r;
    }
    wc_fd_for_good(fd);                                     /* (3) */
    others_for_good(req, arg);
    return REAL(ioctl)(fd, req, arg);
}
