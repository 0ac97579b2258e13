/*
 * meta.c - offsets, sizes and whole-file calls: lseek, the stat family,
 * truncate, fallocate, fadvise, the sync family, mmap, and the copy calls
 * (sendfile, copy_file_range, splice).
 *
 * Invariants:
 *   (1) lseek on a CACHED description is pure arithmetic on the logical
 *       offset and the cached size (no system call but SEEK_END's fstat,
 *       which invariant (2) needs); it fails as the
 *       kernel's generic_file_llseek does (EINVAL for a bad whence, a
 *       negative result or overflow). Offsets beyond 1 TiB or beyond the
 *       file's own limit (wc_file_past_max: ext2's 16 GiB, FAT's 4 GiB),
 *       SEEK_DATA and SEEK_HOLE are left to the kernel after a flush,
 *       since the limit depends on the file system.
 *   (2) Every stat-like call and lseek(SEEK_END) report the cached size
 *       of a cached file (found by st_dev/st_ino in the registry, so a
 *       path, a descriptor or a dirfd+path all agree), after comparing the
 *       kernel's size with the size the engine last left on disk: another
 *       size means another process changed the file, and the engine writes
 *       back what it holds and forgets the rest before answering
 *       (wc_file_size_seen): fstat and SEEK_END agree, and a write at
 *       SEEK_END lands after the other process's bytes. A mapped file
 *       passes through: the kernel's size.
 *   (3) A call the shim does not emulate that reads or changes the file's
 *       data or offset (mmap, sendfile, copy_file_range, splice, fallocate,
 *       sync_file_range, SEEK_DATA/SEEK_HOLE) is a consistency point: the
 *       file is flushed and the kernel's offset set first; the offset is
 *       read back after, and a changed file is invalidated in the engine.
 *   (5b) A file mapped shared and writable that the process also locks
 *       (fcntl, flock, lockf) is a shared-memory protocol between
 *       processes, which the shim cannot see: SQLite's WAL index (-shm)
 *       publishes a commit's frames to readers by a store in the mapping,
 *       before any lock is dropped, so a reader took the new header,
 *       then read the frames the writer still cached (SQLITE_IOERR, its
 *       process dying after 1,211 of 1,500 transactions: CI, and a probe
 *       before). The first lock call on such a file stops the process
 *       caching for good (wc_shm_locked in open.c's lock_before), every
 *       cached byte written back first; the file's identity is taken
 *       when it is mapped (shm_note).
 *   (4) Setting a file's times (futimens, utimensat, utimes...) flushes it
 *       first, so that a later write-back cannot move the mtime the
 *       program set (gzip, tar, cp -p set it just before close). These,
 *       mode and owner changes and extended attributes (setxattr and
 *       its kin) are the program's own changes (own_change): its ctime
 *       moves, which cache/errors.c (8) must not take for another's.
 *   (5) A file from the moment it is mmapped, MAP_SHARED or MAP_PRIVATE,
 *       passes through: its cached data is flushed, every description of
 *       it becomes THROUGH, and later opens of it are not cached
 *       (wc_mapped_add). A private mapping too shows later writes to the
 *       pages it has not copied on write yet, and bytes copied out of it
 *       must be the file's current ones.
 *   (6) rename, renameat, renameat2 and link, linkat of a cached file
 *       write it back first: they publish it under a name a reader opens
 *       next (an editor's save, git's lock files, O_TMPFILE), and the
 *       kernel's reader would find the bytes.
 *   (7) A call that may take room on a file system (fallocate but for
 *       the modes that free, posix_fallocate, copy_file_range, sendfile
 *       and splice into a regular file) takes it first from the budget
 *       that keeps room for cached bytes, as a write passed to the kernel
 *       does (cache/errors.c (6), (7)): where fstatfs finds no room for
 *       it beside them, every cached file of that file system is written
 *       back before the call, so the call meets the full disk (ENOSPC, a
 *       short copy) and the cached bytes do not. Without it a fallocate
 *       took the room of bytes whose writes had returned, and their
 *       write-back failed at close.
 */
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <utime.h>
#include <sys/time.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/raw.h"

_Static_assert(sizeof(struct stat) == sizeof(struct stat64),
               "struct stat64 differs from struct stat");

#define BIG_OFFSET ((off_t)1 << 40)

/* ---- lseek ------------------------------------------------------------ */

static off_t lseek_locked(int fd, struct wc_desc *d, off_t off, int whence)
{
    if (d->mode == WC_D_RESERVE) {
        /* The kernel's offset is the offset. Moving it: write back first
         * (stdio.c invariant (1)) and learn what glibc's own writes did
         * to the file's size. */
        int moving = !(whence == SEEK_CUR && off == 0);
        if (moving)
            wc_file_invalidate(d->file, WC_WHY_OTHER);
        off_t r = wc_k_lseek(fd, off, whence);
        if (r < 0)
            return -errno;
        if (moving)
            d->pos = r;
        return r;
    }
    if (d->mode != WC_D_CACHED) {
        if (d->mode == WC_D_THROUGH && d->file)
            wc_file_flush(d->file, WC_WHY_OTHER);
        off_t r = wc_k_lseek(fd, off, whence);
        return r < 0 ? -errno : r;
    }
    off_t base, np;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR:
        if (off == 0)
            return d->pos;
        base = d->pos;
        break;
    case SEEK_END: {
        /* What fstat says (invariant (2)): another process may have
         * changed the file's size. */
        struct stat st;
        base = wc_k_fstat(fd, &st) == 0
                   ? wc_file_size_seen(d->file, st.st_size)
                   : wc_file_size(d->file);
        break;
    }
    case SEEK_DATA:
    case SEEK_HOLE: {
        wc_desc_sync_locked(fd, d, WC_WHY_OTHER);
        off_t r = wc_k_lseek(fd, off, whence);
        if (r < 0)
            return -errno;
        d->pos = r;
        d->kstale = 0;
        return r;
    }
    default:
        return -EINVAL;
    }
    if (__builtin_add_overflow(base, off, &np) || np < 0)
        return -EINVAL;
    if (np >= BIG_OFFSET ||       /* the file system's limit decides */
        wc_file_past_max(d->file, (uint64_t)np)) {
        off_t r = wc_k_lseek(fd, np, SEEK_SET);
        if (r < 0)
            return -errno;
        d->pos = r;
        d->kstale = 0;
        return r;
    }
    d->pos = np;
    d->kstale = 1;
    return np;
}

WC_EXPORT off_t lseek(int fd, off_t off, int whence)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED_READ(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : wc_k_lseek(fd, off, whence);
    struct wc_cell *c = __atomic_load_n(&d->cell, __ATOMIC_ACQUIRE);
    if (unlikely(c != NULL)) {
        /* shared.c invariant (6): the offset is the cell's; asking it
         * (as Python does of its stdout) leaves it there. */
        unsigned long long v = __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE);
        if (whence == SEEK_CUR && off == 0 &&
            !(v & (WC_CELL_KERNEL | WC_CELL_MOVING)))
            return (off_t)v;
        wc_cell_settle(fd, d);
    }
    if (d->mode == WC_D_WATCH) {
        off_t r = wc_k_lseek(fd, off, whence);
        wc_watch_moved(fd, d);
        return r;
    }
    if (wc_depth)
        return d->mode == WC_D_CACHED ? wc_ret(-EINTR)
                                      : wc_k_lseek(fd, off, whence);
    int e = wc_work_begin();
    off_t r;
    if (wc_desc_lock_entry(fd, d)) {
        r = wc_k_lseek(fd, off, whence);
        if (r < 0)
            r = -errno;
    } else {
        r = lseek_locked(fd, d, off, whence);
        wc_blk_unlock(&d->lock);
    }
    wc_shim_leave();
    return wc_ret_keep(r, e);
}

WC_EXPORT off64_t lseek64(int fd, off64_t off, int whence)
{
    return lseek(fd, off, whence);
}

/* ---- sizes: the stat family ------------------------------------------ */

/* arg: in, the kernel's size; out, the file's (wc_file_size_seen). */
static int size_cb(struct wc_file *f, void *arg)
{
    *(off_t *)arg = wc_file_size_seen(f, *(off_t *)arg);
    return 0;
}

/* Replace the size in a successful stat result by the cached one. */
WC_HOT
static void fix_stat(int r, struct stat *st)
{
    if (r != 0 || !st || wc_state != WC_ST_ON || wc_depth || wc_reg_empty()
        || !S_ISREG(st->st_mode))
        return;
    int e = errno;
    off_t size = st->st_size;
    wc_shim_enter();
    if (!wc_mapped_has(st->st_dev, st->st_ino) &&
        wc_reg_apply(st->st_dev, st->st_ino, size_cb, &size) == 0)
        st->st_size = size;
    wc_work_end(e);
}

WC_HOT
WC_EXPORT int fstat(int fd, struct stat *st)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    int r = wc_k_fstat(fd, st);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int fstat64(int fd, struct stat64 *st)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    return fstat(fd, (struct stat *)st);
}

WC_EXPORT int stat(const char *path, struct stat *st)
{
    int r = wc_k_stat(path, st);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int stat64(const char *path, struct stat64 *st)
{
    return stat(path, (struct stat *)st);
}

WC_EXPORT int lstat(const char *path, struct stat *st)
{
    int r = wc_k_lstat(path, st);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int lstat64(const char *path, struct stat64 *st)
{
    return lstat(path, (struct stat *)st);
}

WC_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int fl)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    int r = wc_k_fstatat(dirfd, path, st, fl);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st,
                        int fl)
{
    return fstatat(dirfd, path, (struct stat *)st, fl);
}

WC_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    int r = REAL(__fxstat)(ver, fd, st);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    return __fxstat(ver, fd, (struct stat *)st);
}

WC_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
    int r = REAL(__xstat)(ver, path, st);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
    return __xstat(ver, path, (struct stat *)st);
}

WC_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
    int r = REAL(__lxstat)(ver, path, st);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
    return __lxstat(ver, path, (struct stat *)st);
}

WC_EXPORT int __fxstatat(int ver, int dirfd, const char *path,
                         struct stat *st, int fl)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    int r = REAL(__fxstatat)(ver, dirfd, path, st, fl);
    fix_stat(r, st);
    return r;
}

WC_EXPORT int __fxstatat64(int ver, int dirfd, const char *path,
                           struct stat64 *st, int fl)
{
    return __fxstatat(ver, dirfd, path, (struct stat *)st, fl);
}

WC_EXPORT int statx(int dirfd, const char *path, int fl, unsigned mask,
                    struct statx *stx)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    int r = REAL(statx)(dirfd, path, fl, mask, stx);
    if (r != 0 || wc_state != WC_ST_ON || wc_depth ||
        wc_reg_empty() || !(stx->stx_mask & STATX_SIZE) ||
        !(stx->stx_mask & STATX_INO) || !(stx->stx_mask & STATX_TYPE) ||
        !S_ISREG(stx->stx_mode))
        return r;
    int e = errno;
    off_t size;
    wc_shim_enter();
    dev_t dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
    if (!wc_mapped_has(dev, stx->stx_ino) &&
        wc_reg_apply(dev, stx->stx_ino, size_cb, &size) == 0 &&
        (uint64_t)size > stx->stx_size)
        stx->stx_size = (uint64_t)size;
    wc_work_end(e);
    return r;
}

/* ---- truncate ---------------------------------------------------------- */

WC_EXPORT int ftruncate(int fd, off_t len)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) || d->mode == WC_D_WATCH || wc_depth)
        return REAL(ftruncate)(fd, len);
    if (len < 0)
        return wc_ret(-EINVAL);
    int e = wc_work_begin();
    int r;
    if (wc_desc_lock_entry(fd, d)) {
        r = REAL(ftruncate)(fd, len) < 0 ? -errno : 0;
    } else {
        if (d->mode == WC_D_CACHED) {
            if (d->accmode != O_WRONLY && d->accmode != O_RDWR)
                r = -EINVAL;
            else
                r = wc_file_truncate(d->file, len);
        } else {
            wc_file_flush(d->file, WC_WHY_TRUNCATE);
            r = REAL(ftruncate)(fd, len) < 0 ? -errno : 0;
            wc_file_invalidate(d->file, WC_WHY_TRUNCATE);
        }
        wc_blk_unlock(&d->lock);
    }
    wc_shim_leave();
    return wc_ret_keep(r, e);
}

WC_EXPORT int ftruncate64(int fd, off64_t len)
{
    return ftruncate(fd, len);
}

static int truncate_cb(struct wc_file *f, void *arg)
{
    return wc_file_truncate(f, *(off_t *)arg);
}

WC_EXPORT int truncate(const char *path, off_t len)
{
    if (wc_state != WC_ST_ON || wc_depth || wc_reg_empty() || len < 0)
        return REAL(truncate)(path, len);
    struct stat st;
    int e = errno;
    /* The kernel checks write permission at the call: so do we. */
    if (wc_k_stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
        REAL(faccessat)(AT_FDCWD, path, W_OK, AT_EACCESS) != 0) {
        errno = e;
        return REAL(truncate)(path, len);
    }
    wc_shim_enter();
    int r = wc_reg_apply(st.st_dev, st.st_ino, truncate_cb, &len);
    wc_work_end(e);
    if (r == -ENOENT)
        return REAL(truncate)(path, len);
    return wc_ret(r);
}

WC_EXPORT int truncate64(const char *path, off64_t len)
{
    return truncate(path, len);
}

/* ---- calls the cache does not emulate: flush around them ------------- */

/* Before: flush the file, set the kernel offset; pass-through afterwards
 * until wc_kernel_after(). Returns the description (NULL: not tracked). */
WC_HOT
struct wc_desc *wc_kernel_before(int fd, enum wc_reason why)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (d)
        wc_cell_settle(fd, d);      /* shared.c invariant (6) */
    if (!d || d->mode == WC_D_WATCH || wc_depth)
        return NULL;
    int e = wc_work_begin();
    if (wc_desc_lock_entry(fd, d)) {
        d = NULL;
    } else {
        wc_desc_sync_locked(fd, d, why);
        wc_blk_unlock(&d->lock);
    }
    wc_work_end(e);
    return d;
}

/* After: read the kernel offset back (`moved`), forget what the engine
 * knows about the file's contents (`changed`). */
void wc_kernel_after(int fd, struct wc_desc *d, int moved, int changed)
{
    if (!d)
        return;
    int e = wc_work_begin();
    if (!wc_desc_lock(fd, d)) {
        if (moved && (d->mode == WC_D_CACHED || d->mode == WC_D_RESERVE)) {
            off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
            if (k >= 0) {
                d->pos = k;
                d->kstale = 0;
            }
        }
        if (changed && d->file)
            wc_file_invalidate(d->file, WC_WHY_OTHER);
        wc_blk_unlock(&d->lock);
    }
    wc_work_end(e);
}

/* ---- room for calls that take it (7) ------------------------------------ */

struct room {
    uint64_t dev;
    size_t n;
    int taken;
};

/* Up to n bytes of fd's file system for the call about to be made, as a
 * write passed to the kernel takes them (io.c wc_through_room_slow); hand
 * the result to room_done once the kernel has answered. */
WC_HOT
static struct room room_take(int fd, size_t n)
{
    struct room r = {0, n, 0};
    if (n == 0 || wc_depth || wc_reg_empty())
        return r;               /* nothing cached: nothing to keep room for */
    int e = wc_work_begin();
    struct stat st;
    if (wc_k_fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        r.dev = (uint64_t)st.st_dev;
        r.taken = wc_through_room_slow(fd, r.dev, n);
    }
    wc_work_end(e);
    return r;
}

static void room_done(struct room r)
{
    if (r.taken)
        wc_through_done(r.dev, r.n);
}

/* The bytes a fallocate may allocate: none for the modes that free. */
static size_t falloc_room(int mode, off_t len)
{
    if (len <= 0 || (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE)))
        return 0;
    return (size_t)len;
}

WC_EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct room room = room_take(fd, falloc_room(mode, len));
    struct wc_desc *d = wc_kernel_before(fd, WC_WHY_OTHER);
    int r = REAL(fallocate)(fd, mode, off, len);
    wc_kernel_after(fd, d, 0, r == 0);
    room_done(room);
    return r;
}

WC_EXPORT int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
    return fallocate(fd, mode, off, len);
}

WC_EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
    if (WC_HIDDEN(fd))
        return EBADF;
    struct room room = room_take(fd, falloc_room(0, len));
    struct wc_desc *d = wc_kernel_before(fd, WC_WHY_OTHER);
    int r = REAL(posix_fallocate)(fd, off, len);
    wc_kernel_after(fd, d, 0, r == 0);
    room_done(room);
    return r;
}

WC_EXPORT int posix_fallocate64(int fd, off64_t off, off64_t len)
{
    return posix_fallocate(fd, off, len);
}

WC_HOT
WC_EXPORT int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
    if (WC_HIDDEN(fd))
        return EBADF;
    return REAL(posix_fadvise)(fd, off, len, advice);
}

WC_EXPORT int posix_fadvise64(int fd, off64_t off, off64_t len, int advice)
{
    return posix_fadvise(fd, off, len, advice);
}

WC_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
    if (WC_HIDDEN(in))
        return wc_ret(-EBADF);
    if (WC_HIDDEN(out))
        return wc_ret(-EBADF);
    struct room room = room_take(out, n);
    struct wc_desc *di = wc_kernel_before(in, WC_WHY_OTHER);
    struct wc_desc *dout = wc_kernel_before(out, WC_WHY_OTHER);
    ssize_t r = REAL(sendfile)(out, in, off, n);
    wc_kernel_after(in, di, off == NULL, 0);
    wc_kernel_after(out, dout, 1, r > 0);
    room_done(room);
    return r;
}

WC_EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
    return sendfile(out, in, off, n);
}

WC_HOT
WC_EXPORT ssize_t copy_file_range(int in, off64_t *oin, int out,
                                  off64_t *oout, size_t n, unsigned fl)
{
    if (WC_HIDDEN(out))
        return wc_ret(-EBADF);
    if (WC_HIDDEN(in))
        return wc_ret(-EBADF);
    struct room room = room_take(out, n);
    struct wc_desc *di = wc_kernel_before(in, WC_WHY_OTHER);
    struct wc_desc *dout = wc_kernel_before(out, WC_WHY_OTHER);
    ssize_t r = REAL(copy_file_range)(in, oin, out, oout, n, fl);
    wc_kernel_after(in, di, oin == NULL, 0);
    wc_kernel_after(out, dout, oout == NULL, r > 0);
    room_done(room);
    return r;
}

WC_EXPORT ssize_t splice(int in, off64_t *oin, int out, off64_t *oout,
                         size_t n, unsigned fl)
{
    if (WC_HIDDEN(out))
        return wc_ret(-EBADF);
    if (WC_HIDDEN(in))
        return wc_ret(-EBADF);
    struct room room = room_take(out, n);
    struct wc_desc *di = wc_kernel_before(in, WC_WHY_OTHER);
    struct wc_desc *dout = wc_kernel_before(out, WC_WHY_OTHER);
    ssize_t r = REAL(splice)(in, oin, out, oout, n, fl);
    wc_kernel_after(in, di, oin == NULL, 0);
    wc_kernel_after(out, dout, oout == NULL, r > 0);
    room_done(room);
    return r;
}

/* ---- the sync family ------------------------------------------------- */

/* The real call of sync_common: fsync, fdatasync, or (WC_SYNC_WAIT)
 * sync_file_range with `range`'s arguments. */
struct sync_range {
    off64_t off, n;
    unsigned fl;
};

static int real_sync(int fd, int datasync, const struct sync_range *range)
{
    if (datasync == WC_SYNC_WAIT)
        return REAL(sync_file_range)(fd, range->off, range->n, range->fl);
    return datasync ? REAL(fdatasync)(fd) : REAL(fsync)(fd);
}

static int sync_common(int fd, int datasync, const struct sync_range *range)
{
    if (WC_HIDDEN(fd))
        return (int)wc_ret(-EBADF);
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) || d->mode == WC_D_WATCH || wc_depth)
        return real_sync(fd, datasync, range);
    /* A cancellation point, made inside the shim (cancel.c (2), (3)). */
    wc_cancel_point();
    int e = wc_work_begin();
    int r;
    if (wc_desc_lock_entry(fd, d)) {
        r = real_sync(fd, datasync, range) < 0 ? -errno : 0;
    } else {
        if (d->mode == WC_D_CACHED && d->kstale &&
            wc_k_lseek(fd, d->pos, SEEK_SET) >= 0)
            d->kstale = 0;
        r = wc_file_sync(d->file, datasync);
        wc_blk_unlock(&d->lock);
        if (r == 0 && datasync == WC_SYNC_WAIT &&
            real_sync(fd, datasync, range) < 0)
            r = -errno;
    }
    wc_shim_leave();
    return wc_ret_keep(r, e);
}

WC_EXPORT int fsync(int fd) { return sync_common(fd, 0, NULL); }
WC_EXPORT int fdatasync(int fd) { return sync_common(fd, 1, NULL); }

/* Its waits (SYNC_FILE_RANGE_WAIT_BEFORE, _AFTER) report a write-back
 * error as fdatasync does (the kernel's file_fdatawait_range checks the
 * file's errseq): a failed write-back of the cached bytes, retried first,
 * is reported there. Without a wait, the bytes are written back first
 * and an error is kept for fsync and close. */
WC_EXPORT int sync_file_range(int fd, off64_t off, off64_t n, unsigned fl)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    /* Arguments the kernel refuses (EINVAL) before it looks at the file:
     * its answer, with nothing written back first. */
    uint64_t end = (uint64_t)off + (uint64_t)n;
    if ((fl & ~(unsigned)(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                          SYNC_FILE_RANGE_WAIT_AFTER)) ||
        off < 0 || (int64_t)end < 0 || end < (uint64_t)off)
        return REAL(sync_file_range)(fd, off, n, fl);
    if (fl & (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER)) {
        struct sync_range range = {off, n, fl};
        return sync_common(fd, WC_SYNC_WAIT, &range);
    }
    wc_kernel_before(fd, WC_WHY_FSYNC);
    return REAL(sync_file_range)(fd, off, n, fl);
}

WC_EXPORT void sync(void)
{
    struct wc_cache *c = wc_cachep;
    if (c && wc_state == WC_ST_ON && !wc_depth) {
        int e = wc_work_begin();
        wc_consistency_all(WC_WHY_FSYNC, WC_ALL_SYNC, 0);
        wc_work_end(e);
    }
    REAL(sync)();
}

static int syncfs_cb(struct wc_file *f, void *arg)
{
    (void)arg;
    return wc_file_flush(f, WC_WHY_FSYNC);
}

/* syncfs: everything written back, then the kernel's call; a cached file
 * of that file system whose bytes could not be written makes it fail
 * with that error, as the kernel's syncfs reports a write-back error of
 * its file system (the files' fsync and close still report it too). */
WC_EXPORT int syncfs(int fd)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct wc_cache *c = wc_cachep;
    int err = 0;
    if (c && wc_state == WC_ST_ON && !wc_depth) {
        int e = wc_work_begin();
        wc_consistency_all(WC_WHY_FSYNC, WC_ALL_SYNC, 0);
        struct stat st;
        if (wc_k_fstat(fd, &st) == 0)
            err = wc_reg_each_dev(st.st_dev, syncfs_cb, NULL);
        wc_work_end(e);
    }
    int r = REAL(syncfs)(fd);
    return r == 0 && err < 0 ? (int)wc_ret(err) : r;
}

/* ---- mmap ------------------------------------------------------------- */

static int flush_cb(struct wc_file *f, void *arg)
{
    (void)arg;
    return wc_file_flush(f, WC_WHY_OTHER);
}

/* Files the process maps shared and writable (invariant (5b)): their
 * identities, up to WC_SHM_MAX (more: every lock counts), atomic. */
#define WC_SHM_MAX 16
static struct {
    dev_t dev;
    ino_t ino;
} g_shm[WC_SHM_MAX];
WC_LOCAL int wc_nshm;

static void shm_note(int fd)
{
    struct stat st;
    if (wc_k_fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    int n = __atomic_load_n(&wc_nshm, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n && i < WC_SHM_MAX; i++)
        if (g_shm[i].dev == st.st_dev && g_shm[i].ino == st.st_ino)
            return;
    int i = __atomic_fetch_add(&wc_nshm, 1, __ATOMIC_ACQ_REL);
    if (i < WC_SHM_MAX) {
        g_shm[i].dev = st.st_dev;
        g_shm[i].ino = st.st_ino;
    }
}

int wc_shm_locked(int fd)
{
    int n = __atomic_load_n(&wc_nshm, __ATOMIC_ACQUIRE);
    if (n > WC_SHM_MAX)
        return 1;
    struct stat st;
    if (wc_k_fstat(fd, &st) != 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (g_shm[i].dev == st.st_dev && g_shm[i].ino == st.st_ino)
            return 1;
    return 0;
}

int wc_mmap_before(int prot, int flags, int fd, off_t off)
{
    if (!(flags & MAP_ANONYMOUS) && WC_HIDDEN(fd))
        return -EBADF;
    if (!(flags & MAP_ANONYMOUS) && fd >= 0 && wc_state == WC_ST_ON &&
        !wc_depth) {
        /* The submission entries of an io_uring the process did not make
         * (another's, taken with pidfd_getfd): aio.c invariant (2). */
        if (unlikely(off == IORING_OFF_SQES) && wc_is_io_uring(fd))
            wc_proc_off();
        else if ((flags & MAP_TYPE) != MAP_PRIVATE && (prot & PROT_WRITE))
            shm_note(fd);                               /* (5b) */
        /* Invariant (5): a mapping of any kind shows the kernel's page
         * cache (a private one until a page is first written), so the
         * file's cached data goes there now and every later write goes
         * there too. Recorded even when the file is not cached yet, so a
         * later open does not cache it. */
        else
            wc_fd_for_good(fd);
    }
    return 0;
}

WC_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
                     off_t off)
{
    int r = wc_mmap_before(prot, flags, fd, off);
    if (r < 0) {
        errno = -r;
        return MAP_FAILED;
    }
    return REAL(mmap)(addr, len, prot, flags, fd, off);
}

WC_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
                       off64_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

/* ---- timestamps, mode and owner: flush first, or write-back would move
 * the timestamps, and clear the set-user-ID and set-group-ID bits a later
 * chmod set (the kernel clears them at the write, before that chmod) --- */

/* Flush the cached file at (dirfd, path) or fd (path NULL): the test
 * inline (tar sets the times, mode and owner of every file it makes, and
 * a process that caches nothing pays one load), the rest out of line.
 * Returns the file's identity when it is in the registry ({0, 0} when
 * not), for own_change after the call. */
struct ident {
    dev_t dev;
    ino_t ino;
};
static struct ident flush_for_times_slow(int dirfd, const char *path,
                                         int flags, int dirs);
static inline struct ident flush_for_times(int dirfd, const char *path,
                                           int flags)
{
    if (unlikely(!wc_reg_empty()) && wc_state == WC_ST_ON && !wc_depth)
        return flush_for_times_slow(dirfd, path, flags, 0);
    return (struct ident){0, 0};
}

static __attribute__((noinline)) struct ident
flush_for_times_slow(int dirfd, const char *path, int flags, int dirs)
{
    int e = errno;
    struct ident id = {0, 0};
    wc_shim_enter();
    struct wc_desc *d = path ? NULL : wc_desc_get(dirfd);
    if (d && __atomic_load_n(&d->ino, __ATOMIC_RELAXED) == 0) {
        wc_desc_release(d);     /* its identity is not known yet */
        d = NULL;
    }
    if (d) {
        /* A tracked descriptor: its file's identity is known. */
        if (wc_reg_apply(d->dev, d->ino, flush_cb, NULL) != -ENOENT)
            id = (struct ident){d->dev, d->ino};
        wc_desc_release(d);
    } else {
        struct stat st;
        int r = path ? wc_k_fstatat(dirfd, path, &st, flags)
                     : wc_k_fstat(dirfd, &st);
        if (r == 0 && S_ISREG(st.st_mode) &&
            wc_reg_apply(st.st_dev, st.st_ino, flush_cb, NULL) != -ENOENT)
            id = (struct ident){st.st_dev, st.st_ino};
        else if (r == 0 && dirs && S_ISDIR(st.st_mode) && wc_cachep) {
            int w = wc_work_begin();                    /* rename_name */
            wc_cache_flush(wc_cachep, WC_WHY_OTHER);
            wc_work_end(w);
        }
    }
    wc_shim_leave();
    errno = e;
    return id;
}

static int noted_cb(struct wc_file *f, void *arg)
{
    (void)arg;
    wc_file_noted(f);
    return 0;
}

/* After the program's own change of a cached file's times, mode, owner or
 * names (its ctime moves): a file whose bytes could not be written (a
 * write-back error) takes the disk's note again, or a retry would take
 * the change for another process's and put them aside (cache/errors.c
 * (8)). Returns r, errno kept. */
static int own_change(struct ident id, int r)
{
    if (unlikely(id.ino)) {
        int e = errno;
        wc_reg_apply(id.dev, id.ino, noted_cb, NULL);
        errno = e;
    }
    return r;
}

WC_EXPORT int futimens(int fd, const struct timespec t[2])
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct ident id = flush_for_times(fd, NULL, 0);
    return own_change(id, REAL(futimens)(fd, t));
}

WC_EXPORT int utimensat(int dirfd, const char *path,
                        const struct timespec t[2], int flags)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    const char *p = path;      /* NULL is valid here (Linux) despite   */
    __asm__("" : "+r"(p));     /* glibc's nonnull on the declaration  */
    /* NULL, or "" with AT_EMPTY_PATH: the descriptor's own file (an
     * fstatat of "" without that flag found none, and nothing was
     * flushed). */
    struct ident id = p && (p[0] || !(flags & AT_EMPTY_PATH))
                          ? flush_for_times(dirfd, p,
                                            flags & AT_SYMLINK_NOFOLLOW)
                          : flush_for_times(dirfd, NULL, 0);
    return own_change(id, REAL(utimensat)(dirfd, path, t, flags));
}

/* The system calls themselves, for syscall(): utimensat with a NULL path
 * (the kernel's: the descriptor's file; glibc's function refuses it with
 * EINVAL), and futimesat, which glibc's function turns into the same. */
long wc_sys_utimensat(int dirfd, const char *path, const struct timespec *t,
                      int flags)
{
    struct ident id = path && (path[0] || !(flags & AT_EMPTY_PATH))
                          ? flush_for_times(dirfd, path,
                                            flags & AT_SYMLINK_NOFOLLOW)
                          : flush_for_times(dirfd, NULL, 0);
    return own_change(id, (int)wc_ret(wc_raw_syscall(SYS_utimensat, dirfd,
                                                     (long)path, (long)t,
                                                     flags, 0, 0)));
}

long wc_sys_futimesat(int dirfd, const char *path, const struct timeval *t)
{
    struct ident id = path ? flush_for_times(dirfd, path, 0)
                           : flush_for_times(dirfd, NULL, 0);
    return own_change(id, (int)wc_ret(wc_raw_syscall(SYS_futimesat, dirfd,
                                                     (long)path, (long)t,
                                                     0, 0, 0)));
}

WC_EXPORT int futimesat(int dirfd, const char *path,
                        const struct timeval t[2])
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    return (int)wc_sys_futimesat(dirfd, path, t);
}

WC_EXPORT int futimes(int fd, const struct timeval t[2])
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct ident id = flush_for_times(fd, NULL, 0);
    return own_change(id, REAL(futimes)(fd, t));
}

WC_EXPORT int lutimes(const char *path, const struct timeval t[2])
{
    struct ident id = flush_for_times(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
    return own_change(id, REAL(lutimes)(path, t));
}

WC_EXPORT int utimes(const char *path, const struct timeval t[2])
{
    struct ident id = flush_for_times(AT_FDCWD, path, 0);
    return own_change(id, REAL(utimes)(path, t));
}

WC_EXPORT int utime(const char *path, const struct utimbuf *t)
{
    struct ident id = flush_for_times(AT_FDCWD, path, 0);
    return own_change(id, REAL(utime)(path, t));
}

/* A chmod that sets a set-user-ID or set-group-ID bit: the file passes
 * through for good from now on, as a mapped one (fdtab.c invariant (6):
 * the kernel clears the bit at each later write, which fstat must show at
 * once). Its cached data goes to the file first. */
static void setid_for_good(int dirfd, const char *path, int flags);
static inline struct ident for_meta(int dirfd, const char *path, int flags,
                                    mode_t mode)
{
    if (likely(!wc_mode_setid(mode)))
        return flush_for_times(dirfd, path, flags);
    if (wc_state == WC_ST_ON && !wc_depth)
        setid_for_good(dirfd, path, flags);
    return (struct ident){0, 0};
}

static __attribute__((noinline)) void
setid_for_good(int dirfd, const char *path, int flags)
{
    int e = errno;
    struct stat st;
    int r = path ? wc_k_fstatat(dirfd, path, &st, flags)
                 : wc_k_fstat(dirfd, &st);
    if (r == 0)
        wc_stat_for_good(&st);
    errno = e;
}

/* ---- names: rename and link publish a file: its bytes first ----------
 * (invariant (6)) A program that writes a file and renames it into place
 * (an editor's save, a package manager, git's lock files) or links it
 * (O_TMPFILE) publishes it: a reader that opens the new name next must
 * find the bytes, as with the kernel. */

/* After a rename, link or unlink the program made (of a file, or of a
 * directory above cached files): the slots take the files' new names,
 * and note the files left without one, for a replay after a crash
 * (wc_cache_renamed; cache/format.h (10): an unlinked file's bytes go
 * with it, as the kernel's do). A file whose name went while another
 * link keeps it (`ln a dir/b; rm a`, a maildir's delivery) has a name no
 * replay can find: it passes through for good, written back first (a
 * replay dropped the bytes it cached, or wrote those after the unlink to
 * a recovery file, probe X; past 8 in one call the others stay cached,
 * and a replay sets their bytes aside). Returns r, errno kept. */
WC_HOT
static int renamed(int r)
{
    struct wc_cache *c = wc_cachep;
    if (r == 0 && unlikely(!wc_reg_empty()) && c && wc_state == WC_ST_ON &&
        !wc_depth) {
        int e = errno;
        struct wc_file_id lost[8];
        wc_shim_enter();
        int n = wc_cache_renamed(c, !__atomic_load_n(&wc_names_apart,
                                                     __ATOMIC_ACQUIRE),
                                 lost, 8);
        for (int i = 0; i < n; i++)
            wc_file_for_good((dev_t)lost[i].dev, (ino_t)lost[i].ino,
                             WC_WHY_OTHER);
        wc_shim_leave();
        errno = e;
    }
    return r;
}

/* Either name of a rename, before it: a cached file there goes to its
 * file first (and is noted after: the one at `to` loses its name, its
 * ctime moves); a directory renamed (either name, for RENAME_EXCHANGE)
 * publishes the files under it, as a rename of a file publishes that
 * file (a staging directory renamed into place: a reader of the new
 * names found them empty): everything cached goes to its file first.
 * One fstatat a name, and none while nothing is cached. */
static struct ident rename_name(int fd, const char *name)
{
    if (unlikely(!wc_reg_empty()) && wc_state == WC_ST_ON && !wc_depth)
        return flush_for_times_slow(fd, name, AT_SYMLINK_NOFOLLOW, 1);
    return (struct ident){0, 0};
}

WC_EXPORT int rename(const char *from, const char *to)
{
    struct ident id = rename_name(AT_FDCWD, from);
    struct ident old = rename_name(AT_FDCWD, to);
    return own_change(old, own_change(id, renamed(REAL(rename)(from, to))));
}

WC_EXPORT int renameat(int fd1, const char *from, int fd2, const char *to)
{
    struct ident id = rename_name(fd1, from);
    struct ident old = rename_name(fd2, to);
    return own_change(old, own_change(id, renamed(REAL(renameat)(fd1, from,
                                                                  fd2, to))));
}

WC_EXPORT int renameat2(int fd1, const char *from, int fd2, const char *to,
                        unsigned flags)
{
    if (WC_HIDDEN_AT(fd2, to))
        return wc_ret(-EBADF);
    if (WC_HIDDEN_AT(fd1, from))
        return wc_ret(-EBADF);
    /* RENAME_EXCHANGE: both names get the other file, whose bytes go
     * first too; otherwise the file at `to` is replaced. */
    struct ident id = rename_name(fd1, from);
    struct ident old = rename_name(fd2, to);
    return own_change(old, own_change(id, renamed(REAL(renameat2)(
                                              fd1, from, fd2, to, flags))));
}

WC_EXPORT int link(const char *from, const char *to)
{
    struct ident id = flush_for_times(AT_FDCWD, from, AT_SYMLINK_NOFOLLOW);
    return own_change(id, renamed(REAL(link)(from, to)));
}

WC_HOT
WC_EXPORT int unlink(const char *path)
{
    return renamed(REAL(unlink)(path));
}

WC_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    return renamed(REAL(unlinkat)(dirfd, path, flags));
}

WC_EXPORT int remove(const char *path)
{
    return renamed(REAL(remove)(path));
}

WC_EXPORT int linkat(int fd1, const char *from, int fd2, const char *to,
                     int flags)
{
    if (WC_HIDDEN_AT(fd2, to))
        return wc_ret(-EBADF);
    if (WC_HIDDEN_AT(fd1, from))
        return wc_ret(-EBADF);
    const char *p = from;      /* as utimensat's: glibc says nonnull */
    __asm__("" : "+r"(p));
    struct ident id;
    if ((flags & AT_EMPTY_PATH) && p && !p[0])
        id = flush_for_times(fd1, NULL, 0);     /* the descriptor's file */
    else
        id = flush_for_times(fd1, from,
                             flags & AT_SYMLINK_FOLLOW ? 0
                                                       : AT_SYMLINK_NOFOLLOW);
    return own_change(id, renamed(REAL(linkat)(fd1, from, fd2, to, flags)));
}

WC_EXPORT int chmod(const char *path, mode_t mode)
{
    struct ident id = for_meta(AT_FDCWD, path, 0, mode);
    return own_change(id, REAL(chmod)(path, mode));
}

WC_EXPORT int fchmod(int fd, mode_t mode)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct ident id = for_meta(fd, NULL, 0, mode);
    return own_change(id, REAL(fchmod)(fd, mode));
}

WC_EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    struct ident id = for_meta(dirfd, path, flags & AT_SYMLINK_NOFOLLOW,
                               mode);
    return own_change(id, REAL(fchmodat)(dirfd, path, mode, flags));
}

WC_EXPORT int chown(const char *path, uid_t uid, gid_t gid)
{
    struct ident id = flush_for_times(AT_FDCWD, path, 0);
    return own_change(id, REAL(chown)(path, uid, gid));
}

WC_EXPORT int fchown(int fd, uid_t uid, gid_t gid)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct ident id = flush_for_times(fd, NULL, 0);
    return own_change(id, REAL(fchown)(fd, uid, gid));
}

WC_EXPORT int lchown(const char *path, uid_t uid, gid_t gid)
{
    struct ident id = flush_for_times(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
    return own_change(id, REAL(lchown)(path, uid, gid));
}

WC_EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid,
                       int flags)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    /* AT_EMPTY_PATH with "": the descriptor itself. */
    const char *p = path;      /* as utimensat's: glibc says nonnull */
    __asm__("" : "+r"(p));
    struct ident id = (flags & AT_EMPTY_PATH) && p && !p[0]
                          ? flush_for_times(dirfd, NULL, 0)
                          : flush_for_times(dirfd, path,
                                            flags & AT_SYMLINK_NOFOLLOW);
    return own_change(id, REAL(fchownat)(dirfd, path, uid, gid, flags));
}

/* ---- extended attributes: the program's own change (ctime moves) ------ */

/* As chmod: written back first, then noted as the program's own change,
 * not another process's (cache/errors.c (8): a file whose write-back
 * failed sent its bytes aside after the program's fsetxattr). Looked up
 * at their first call (WC_NEXT): rare, and not for the table. */
typedef int (*set_fn)(const char *, const char *, const void *, size_t, int);
typedef int (*fset_fn)(int, const char *, const void *, size_t, int);
typedef int (*rm_fn)(const char *, const char *);
typedef int (*frm_fn)(int, const char *);

WC_EXPORT int setxattr(const char *path, const char *name, const void *v,
                       size_t n, int flags)
{
    struct ident id = flush_for_times(AT_FDCWD, path, 0);
    return own_change(id, WC_NEXT(set_fn, setxattr)(path, name, v, n, flags));
}

WC_EXPORT int lsetxattr(const char *path, const char *name, const void *v,
                        size_t n, int flags)
{
    struct ident id = flush_for_times(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
    return own_change(id,
                      WC_NEXT(set_fn, lsetxattr)(path, name, v, n, flags));
}

WC_EXPORT int fsetxattr(int fd, const char *name, const void *v, size_t n,
                        int flags)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct ident id = flush_for_times(fd, NULL, 0);
    return own_change(id, WC_NEXT(fset_fn, fsetxattr)(fd, name, v, n, flags));
}

WC_EXPORT int removexattr(const char *path, const char *name)
{
    struct ident id = flush_for_times(AT_FDCWD, path, 0);
    return own_change(id, WC_NEXT(rm_fn, removexattr)(path, name));
}

WC_EXPORT int lremovexattr(const char *path, const char *name)
{
    struct ident id = flush_for_times(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
    return own_change(id, WC_NEXT(rm_fn, lremovexattr)(path, name));
}

WC_EXPORT int fremovexattr(int fd, const char *name)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    struct ident id = flush_for_times(fd, NULL, 0);
    return own_change(id, WC_NEXT(frm_fn, fremovexattr)(fd, name));
}

long wc_own_change_raw(long nr, long a, long b, long c, long d, long e,
                       long f, int flags)
{
    /* fstatat with the call's own AT_EMPTY_PATH finds the descriptor's
     * file for "": the kernel reads the path (a bad pointer: EFAULT,
     * never a fault here). */
    struct ident id = flush_for_times(
        (int)a, (const char *)b, flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH));
    long r = REAL(syscall)(nr, a, b, c, d, e, f);
    own_change(id, 0);
    return r;
}
