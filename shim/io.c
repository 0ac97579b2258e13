/*
 * io.c - the write and read families: the hot path.
 *
 *   write(fd, buf, 64) -> wc_fd_get (one load) -> wc_shim_enter (TLS store)
 *   -> desc->lock (none while the program has one thread: wc_solo; with
 *   threads, none for the thread that owns d, else one CAS: the biased
 *   lock, wcache/blk.h) -> wc_write_fast or wc_pwrite -> offset update ->
 *   unlock -> wc_shim_leave. No system call, no allocation, no clock read,
 *   no global lock.
 *
 * Invariants:
 *   (1) Validation happens in the kernel's order: pwrite/pread family:
 *       EINVAL for a negative offset before anything else; then EBADF for
 *       a descriptor not open for writing (reading); then the engine's
 *       checks (EINVAL for iovecs, EFAULT, EFBIG...).
 *   (2) write/read/writev/readv advance the description's offset by exactly
 *       the bytes returned, under desc->lock (the kernel's f_pos_lock:
 *       its mutex, or its owner's biased section), or with the program's
 *       only thread (wc_solo);
 *       a zero-byte transfer does not move it (not even with O_APPEND).
 *       pwrite on an O_APPEND description appends and leaves the offset.
 *   (3) Success leaves errno alone, whatever the engine's calls did to it
 *       (wc_ret_keep); failure sets errno and returns -1.
 *   (4) THROUGH descriptions, and the calls of RESERVE ones other than
 *       write/writev (shared.c): the file's cached data is written first,
 *       then the kernel does the call, then the engine forgets what it
 *       knew of the file's contents and size (wc_file_invalidate).
 *   (5) Requests the cache cannot serve (RWF_DSYNC, RWF_NOWAIT, unknown
 *       flags) are done by the kernel after the file is flushed and the
 *       kernel's offset is brought up to date; the offset is read back.
 *   (6) Nested calls (a signal handler interrupted shim code on this
 *       thread): writes are queued (fdtab.c); reads of a CACHED
 *       description fail with EINTR rather than block on a lock held by
 *       the interrupted code.
 *   (7) A positional call (pwrite64, pwritev, pwritev2, pread64, preadv,
 *       preadv2) that a seccomp filter the program inherited refuses is
 *       the kernel's, done as (5), so that the program gets the filter's
 *       EPERM or ENOSYS where the cache would have answered it; the
 *       shim's own write-back does without it (cache/errors.c THROUGH).
 *       The calls are asked once, when the cache is made
 *       (wc_refused_io_probe). Refused write, writev, read or readv are
 *       not asked: a program under such a filter writes no file.
 */
#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/ucopy.h"

#ifndef RWF_HIPRI
#define RWF_HIPRI 0x1
#define RWF_DSYNC 0x2
#define RWF_SYNC 0x4
#define RWF_NOWAIT 0x8
#define RWF_APPEND 0x10
#endif

extern void __chk_fail(void) __attribute__((noreturn));

static int writable(const struct wc_desc *d)
{
    return d->accmode == O_WRONLY || d->accmode == O_RDWR;
}

/* The kernel does a read or write on a tracked description: flush first,
 * offset synced, offset read back after. `vec`: the program's call took
 * an iovec array (else `iov` is one buffer, described by the shim, and
 * the kernel gets the program's own call: write, pwrite, read, pread);
 * with WC_VEC_V2, that call was pwritev2 or preadv2, made as such with the
 * program's flags as they were. Caller holds d->lock. */
WC_HOT
ssize_t wc_kernel_rw_locked(int fd, struct wc_desc *d, int write,
                            const struct iovec *iov, int iovcnt, off_t pos,
                            int flags, int vec)
{
    if (pos < 0)
        wc_cell_settle(fd, d);      /* shared.c invariant (6) */
    /* A file that passes through for good (mapped, appended to behind
     * the engine) has nothing cached and nobody reading the engine's view
     * of it: no engine work around the call. */
    int engine = d->mode != WC_D_FREE && d->mode != WC_D_WATCH &&
                 !(d->mode == WC_D_THROUGH && wc_mapped_has(d->dev, d->ino));
    if (engine)
        wc_desc_sync_locked(fd, d, WC_WHY_OTHER);
    ssize_t room = 0;
    if (write && unlikely(!wc_reg_empty()) && d->ino) {
        /* wc_through_room, the length counted only then */
        ssize_t n = vec ? wc_iov_count(iov, iovcnt) : (ssize_t)iov->iov_len;
        if (n > 0 && wc_through_room_slow(fd, (uint64_t)d->dev, (size_t)n))
            room = n;
    }
    /* A write: no cached write of the file runs until the engine has
     * forgotten the size and pages this call changes (another
     * description of it may still cache: wc_consistency_all makes them
     * THROUGH one at a time, threads go on writing meanwhile). Taken
     * after the room's check, which may write back every file. */
    int held = write && engine && d->file &&
               wc_file_kernel_begin(d->file, WC_WHY_OTHER);
    ssize_t r;
    /* The v2 call with the program's flags as they were (its pwritev2 or
     * preadv2, or a flag of the shim's: RWF_APPEND). */
    int v2 = flags || (vec & WC_VEC_V2);
    off_t at = pos < 0 ? -1 : pos;
    if (!vec && !flags) {
        /* The program's own call: one buffer (iov is ours). pwritev costs
         * about 0.1 us more than pwrite in the kernel. */
        if (write)
            r = pos < 0 ? wc_k_write(fd, iov->iov_base, iov->iov_len)
                        : wc_k_pwrite(fd, iov->iov_base, iov->iov_len, pos);
        else
            r = pos < 0 ? wc_k_read(fd, iov->iov_base, iov->iov_len)
                        : wc_k_pread(fd, iov->iov_base, iov->iov_len, pos);
    } else if (write)
        r = v2 ? REAL(pwritev2)(fd, iov, iovcnt, at, flags)
            : pos < 0 ? REAL(writev)(fd, iov, iovcnt)
                      : REAL(pwritev)(fd, iov, iovcnt, pos);
    else
        r = v2 ? REAL(preadv2)(fd, iov, iovcnt, at, flags)
            : pos < 0 ? REAL(readv)(fd, iov, iovcnt)
                      : REAL(preadv)(fd, iov, iovcnt, pos);
    if (r < 0)
        r = -errno;
    else if (write)                     /* cache/errors.c (4c) */
        __atomic_fetch_add(&wc_sent_through, (uint64_t)r, __ATOMIC_RELAXED);
    if (room)
        wc_through_done((uint64_t)d->dev, (size_t)room);
    if ((d->mode == WC_D_CACHED || d->mode == WC_D_RESERVE) && pos < 0 &&
        r > 0) {
        off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
        if (k >= 0)
            d->pos = k;
    }
    if (held)
        wc_file_kernel_end(d->file, r > 0, WC_WHY_OTHER);
    else if (write && r > 0 && engine && d->file)
        wc_file_invalidate(d->file, WC_WHY_OTHER);
    if (write && d->mode != WC_D_FREE && unlikely(wc_nc_counting))
        wc_nc_count_through(fd, d, r > 0 ? (size_t)r : 0);
    return r;
}

ssize_t wc_desc_pass_for_good(int fd, struct wc_desc *d,
                              const struct iovec *iov, int iovcnt, off_t pos,
                              int rwf_append, int vec)
{
    wc_desc_through_locked(fd, d, WC_WHY_OTHER);
    return wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, pos,
                            rwf_append ? RWF_APPEND : 0, vec);
}

/* The cached write at the description's offset this thread is inside:
 * if a signal handler's _exit ends the process between the engine's
 * return and the offset's update, the child that writes back
 * (wc_unlock_all_in_child) moves the offset past it, as the kernel, which
 * completes a write before any handler runs, would have. Without this, a
 * write the handler queued landed on top of the one it interrupted.
 * wc_inflight is shim.h's wc_thr.inflight. */

void wc_inflight_fixup(void)
{
    struct wc_desc *d = wc_inflight.d;
    if (d && d->pos == wc_inflight.start && wc_wip_end >= 0) {
        d->pos = wc_wip_end;
        d->kstale = 1;
    }
    wc_inflight.d = NULL;
}

int wc_through_room_slow(int fd, uint64_t dev, size_t n)
{
    struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    if (!c)
        return 0;
    int e = errno;
    int taken = wc_cache_space_through(c, dev, fd, n);
    errno = e;
    return taken;
}

void wc_through_done(uint64_t dev, size_t n)
{
    struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    if (c)
        wc_cache_space_done(c, dev, n);
}

/* d->lock for a call through descriptor fd, unless the program has one
 * thread (wc_solo: nobody else can change or close d, and a signal
 * handler never locks). 0 when d is still fd's description, with *held
 * telling how to leave (DESC_*); -1 when the slot changed (nothing
 * held). */
enum { DESC_SOLO, DESC_LOCK, DESC_BIAS };
static inline int desc_enter(int fd, struct wc_desc *d, int *held)
{
    if (likely(__atomic_load_n(&wc_solo, __ATOMIC_RELAXED))) {
        *held = DESC_SOLO;
        return 0;
    }
    *held = DESC_LOCK;
    return wc_desc_lock_entry(fd, d);
}

/* fast_write's entry with threads as d's owner without its mutex
 * (wcache/blk.h invariant (2)), checked against the slot as wc_desc_lock
 * does (d may be stale: it is then no longer ours, or a new life's): 1
 * entered (leave as DESC_BIAS), 0 not (nothing held). Only a cached write
 * is short enough for a biased section (wcache/blk.h (2)): the others
 * take the mutex. */
static inline __attribute__((always_inline)) int
desc_enter_bias(int fd, struct wc_desc *d)
{
    if (!wc_blk_enter(&d->lock, WC_BLK_DESC, NULL))
        return 0;
    if (likely(__atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE) == d &&
               d->mode == WC_D_CACHED))
        return 1;
    wc_blk_exit(WC_BLK_DESC);
    return 0;
}

static inline void desc_leave(struct wc_desc *d, int held)
{
    if (held == DESC_SOLO)
        return;
    if (held == DESC_LOCK)
        wc_blk_unlock(&d->lock);
    else
        wc_blk_exit(WC_BLK_DESC);
}

/* Around the engine's write of a CACHED description at p: at its offset
 * (pos < 0), the in-flight mark (wc_inflight) before, the offset moved
 * after. Caller holds d->lock. */
static inline void cached_begin(struct wc_desc *d, off_t pos, off_t p)
{
    if (pos < 0) {
        wc_wip_end = -1;                /* wc_inflight_fixup */
        wc_inflight.d = d;
        wc_inflight.start = p;
    }
}

static inline void cached_end(struct wc_desc *d, off_t pos, off_t where,
                              ssize_t r)
{
    if (pos < 0 && r > 0) {
        d->pos = where + r;
        d->kstale = 1;
    }
    wc_inflight.d = NULL;
}

/* Leave d after a write; if the engine found meanwhile that caching d's
 * file gains nothing (wc_futile), the file leaves the cache, outside
 * d->lock (fdtab.c invariant (8)). */
static inline void write_leave(struct wc_desc *d, int held)
{
    if (likely(wc_futile == NULL)) {
        desc_leave(d, held);
        return;
    }
    struct wc_file *f = wc_futile;
    wc_futile = NULL;
    int mine = f == d->file;
    dev_t dev = d->dev;
    ino_t ino = d->ino;
    desc_leave(d, held);
    if (mine) {
        int e = errno;          /* fast_write's solo path keeps errno */
        wc_file_demote(f, dev, ino);
        errno = e;
    }
}

/* CONTRACT 5.2, before any lock is taken: the first byte of each page of
 * the source is read with the non-faulting copy, as the kernel's
 * fault_in_iov_iter_readable reads the source before it locks a page, so
 * that a fault that waits waits with nothing held: a userfaultfd region
 * whose handler thread first syncs, forks, reads or fstats the file (a
 * probe: each hung under the shim, with the description's and the file's
 * locks held across the copy), or one never resolved while the program
 * exits or takes SIGTERM (the exit's write-back waited for those locks
 * for ever). A page that cannot be read is left to the copy (a short
 * count, EFAULT); one taken away again before the copy is the race the
 * kernel has too. Up to WC_FAULT_IN_MAX bytes: larger writes go to the
 * kernel (WCACHE_BYPASS) or are copied a page at a time. */
#define WC_FAULT_IN_MAX (256u << 10)
static void fault_in_pages(const void *buf, size_t n)
{
    uintptr_t a = (uintptr_t)buf;
    uintptr_t end = a + (n < WC_FAULT_IN_MAX ? n : WC_FAULT_IN_MAX);
    for (; a < end; a = (a | (WC_PAGE_SIZE - 1)) + 1)
        if (wc_probe_byte((const void *)a))
            return;
}

/* The common case inline: a source within one page, one byte read. */
static inline __attribute__((always_inline)) void fault_in(const void *buf,
                                                           size_t n)
{
    if (likely(((uintptr_t)buf & (WC_PAGE_SIZE - 1)) + n <= WC_PAGE_SIZE))
        wc_probe_byte(buf);
    else
        fault_in_pages(buf, n);
}

/* The same for a writev's segments (the first WC_FAULT_IN_IOV, read as the
 * copy will read them: without faulting). */
#define WC_FAULT_IN_IOV 16
static void fault_in_iov(const struct iovec *iov, int iovcnt)
{
    struct iovec v;
    size_t left = WC_FAULT_IN_MAX;
    for (int i = 0; i < iovcnt && i < WC_FAULT_IN_IOV && left; i++) {
        if (wc_copy_nofault(&v, &iov[i], sizeof v) != sizeof v)
            return;
        size_t n = v.iov_len < left ? v.iov_len : left;
        fault_in(v.iov_base, n);
        left -= n;
    }
}

WC_HOT
ssize_t wc_do_writev(int fd, struct wc_desc *d, const struct iovec *iov,
                     int iovcnt, off_t pos, int rwf_append, int vec)
{
    ssize_t r;
    int adopt, made = 0, held;
    /* The handler that catches a probe's fault is there. (A WATCH
     * description's write, the kernel's, is probed too: d->mode is read
     * under d's lock only.) */
    if (__atomic_load_n(&wc_fault_ready, __ATOMIC_ACQUIRE)) {
        if (vec)
            fault_in_iov(iov, iovcnt);
        else
            fault_in(iov->iov_base, iov->iov_len);
    }
again:
    while (desc_enter(fd, d, &held)) {
        /* The descriptor was closed or replaced meanwhile: the kernel. */
        if (!(d = wc_fd_get(fd)))
            return wc_kernel_rw_locked(fd, &(struct wc_desc){0}, 1, iov, iovcnt,
                                    pos, rwf_append ? RWF_APPEND : 0, vec);
    }
    if (likely(d->mode == WC_D_CACHED)) {
        if (unlikely(!writable(d))) {
            r = -EBADF;
        } else {
            off_t where = 0;
            off_t p = pos < 0 ? d->pos : pos;
            int app = d->append | rwf_append;
            cached_begin(d, pos, p);
            r = vec ? wc_pwritev(d->file, iov, iovcnt, p, app, &where)
                    : wc_pwrite(d->file, iov->iov_base, iov->iov_len, p, app,
                                &where);
            cached_end(d, pos, where, r);
            if (unlikely(r == -WC_EPASS))
                r = wc_desc_pass_for_good(fd, d, iov, iovcnt, pos, rwf_append,
                                          vec);
        }
    } else if (d->mode == WC_D_RESERVE && pos < 0 && !rwf_append) {
        r = wc_reserve_write(fd, d, iov, iovcnt, vec);
    } else if (d->mode == WC_D_WATCH &&
               (adopt = wc_desc_adopt_locked(fd, d,
                                             vec ? 0 : iov->iov_len)) &&
               !(adopt == WC_ADOPT_NEED_CACHE && made)) {
        if (adopt == WC_ADOPT_RENT || adopt == WC_ADOPT_COUNTED ||
            adopt == WC_ADOPT_RENT_CELL) {
            /* Cheaper through the kernel until the writes the cache
             * would have taken paid for making it (fdtab.c (6b)), or
             * among a file's first writes (6); at the offset of a cell
             * reserved there. */
            int timed = adopt != WC_ADOPT_COUNTED || wc_watch_timed(d);
            uint64_t t0 = timed ? wc_now_ns() : 0;
            if (adopt == WC_ADOPT_RENT_CELL && pos < 0 && !rwf_append)
                r = wc_cell_write_kernel(fd, d, iov, iovcnt, vec);
            else
                r = wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, pos,
                                        rwf_append ? RWF_APPEND : 0, vec);
            if (timed) {
                uint64_t ns = wc_now_ns() - t0;
                if (adopt != WC_ADOPT_COUNTED)
                    wc_rent_pay(ns);
                else
                    wc_watch_took(fd, d, ns);
            }
            write_leave(d, held);
            return r;
        }
        /* A file's 9th write, or a child's first through a description
         * its parent shares: cached from now on; this write takes the new
         * mode's path (once the cache exists: it is made with no
         * desc->lock held, lock order in shim.h; if it cannot be, the
         * write goes to the kernel below on the second round). */
        dev_t dev = d->dev;
        ino_t ino = d->ino;
        desc_leave(d, held);
        if (adopt == WC_ADOPT_WAIT) {
            wc_reg_wait(dev, ino);      /* registry.c invariant (5) */
            goto again;
        }
        if (adopt == WC_ADOPT_NEED_CACHE) {
            wc_cache_get();
            made = 1;
            goto again;
        }
        if (adopt == WC_ADOPT_ATTACH)
            wc_desc_adopted(dev, ino);
        return wc_do_writev(fd, d, iov, iovcnt, pos, rwf_append, vec);
    } else {
        r = wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, pos,
                             rwf_append ? RWF_APPEND : 0, vec);
    }
    write_leave(d, held);
    return r;
}

static ssize_t do_readv(int fd, struct wc_desc *d, const struct iovec *iov,
                        int iovcnt, off_t pos, int vec)
{
    ssize_t r;
    int held;
    while (desc_enter(fd, d, &held)) {
        if (!(d = wc_fd_get(fd)))
            return wc_kernel_rw_locked(fd, &(struct wc_desc){0}, 0, iov, iovcnt,
                                    pos, 0, vec);
    }
    if (likely(d->mode == WC_D_CACHED)) {
        if (unlikely(d->accmode == O_WRONLY)) {
            r = -EBADF;
        } else {
            off_t p = pos < 0 ? d->pos : pos;
            r = vec ? wc_preadv(d->file, fd, iov, iovcnt, p)
                    : wc_pread(d->file, fd, iov->iov_base, iov->iov_len, p);
            if (pos < 0 && r > 0) {
                d->pos += r;
                d->kstale = 1;
            }
        }
    } else {
        r = wc_kernel_rw_locked(fd, d, 0, iov, iovcnt, pos, 0, vec);
    }
    desc_leave(d, held);
    return r;
}

/* ---- common entry points ---------------------------------------------- */

WC_HOT
static ssize_t write_common(int fd, struct wc_desc *d, const struct iovec *iov,
                            int iovcnt, off_t pos, int rwf_append, int vec)
{
    ssize_t r;
    int e = errno;
    if (unlikely(wc_depth)) {
        /* A writable WATCH description may be becoming CACHED in the
         * code this handler interrupted: its write waits in the queue. A
         * read-only one, in any mode, cannot write: the kernel answers
         * (EBADF), never the queue (which would accept and lose it). */
        if (d->accmode == O_RDONLY) {
            if (pos < 0)
                wc_cell_settle(fd, d);
            r = wc_kernel_rw_locked(fd, &(struct wc_desc){0}, 1, iov, iovcnt,
                                 pos, rwf_append ? RWF_APPEND : 0, vec);
        } else
            r = wc_queue_write(fd, iov, iovcnt, pos, rwf_append);
        return wc_ret_keep(r, e);
    }
    wc_cancel_point();                  /* cancel.c invariant (2) */
    wc_shim_enter();
    r = wc_do_writev(fd, d, iov, iovcnt, pos, rwf_append, vec);
    wc_shim_leave();
    wc_pending();           /* flusher.c invariant (2), proc.c (8b) */
    return wc_ret_keep(r, e);
}

static ssize_t read_common(int fd, struct wc_desc *d, const struct iovec *iov,
                           int iovcnt, off_t pos, int vec)
{
    ssize_t r;
    int e = errno;
    if (unlikely(wc_depth)) {
        if (pos < 0)
            wc_cell_settle(fd, d);  /* shared.c invariant (6) */
        if (d->mode != WC_D_CACHED)
            r = wc_kernel_rw_locked(fd, &(struct wc_desc){0}, 0, iov, iovcnt,
                                 pos, 0, vec);
        else
            r = -EINTR;
        return wc_ret_keep(r, e);
    }
    wc_cancel_point();                  /* cancel.c invariant (2) */
    wc_shim_enter();
    r = do_readv(fd, d, iov, iovcnt, pos, vec);
    wc_shim_leave();
    return wc_ret_keep(r, e);
}

/* Invariant (7): the positional calls a seccomp filter the program
 * inherited refuses (EPERM, ENOSYS), asked once when the cache is made,
 * each with a descriptor the kernel rejects (EBADF: nothing read or
 * written). The program's own such call then goes to the kernel, which
 * refuses it, as without the shim, where the cache would have answered
 * it (its data written back first, as for any call the shim does not
 * emulate). */
int wc_refused_io;

void wc_refused_io_probe(void)
{
    static const long nr[] = {
        [WC_RF_PWRITE] = SYS_pwrite64, [WC_RF_PWRITEV] = SYS_pwritev,
        [WC_RF_PWRITEV2] = SYS_pwritev2, [WC_RF_PREAD] = SYS_pread64,
        [WC_RF_PREADV] = SYS_preadv, [WC_RF_PREADV2] = SYS_preadv2,
    };
    int bits = 0;
    for (int i = 0; i < (int)(sizeof nr / sizeof nr[0]); i++)
        if (wc_call_refused(nr[i], -1, 0))
            bits |= 1 << i;
    __atomic_store_n(&wc_refused_io, bits, __ATOMIC_RELAXED);
}

/* Is the program's positional call `which` (WC_RF_*) refused? */
static inline int refused(int which)
{
    return unlikely(__atomic_load_n(&wc_refused_io, __ATOMIC_RELAXED) &
                    (1 << which));
}

/* The kernel-only path: for v2 flags the cache does not serve, and for a
 * positional call the filter refuses (invariant (7)). `vec`: the program's
 * call took an iovec array (wc_kernel_rw_locked). */
static ssize_t to_kernel(int fd, struct wc_desc *d, int write,
                         const struct iovec *iov, int iovcnt, off_t pos,
                         int flags, int vec)
{
    if (wc_depth)
        return wc_ret(-EINTR);
    int e = wc_work_begin();
    ssize_t r;
    if (pos < 0)
        wc_cell_settle(fd, d);      /* shared.c invariant (6) */
    if (wc_desc_lock_entry(fd, d)) {
        r = wc_kernel_rw_locked(fd, &(struct wc_desc){0}, write, iov, iovcnt,
                             pos, flags, vec);
    } else {
        if (write && d->mode == WC_D_CACHED && !writable(d))
            r = -EBADF;
        else if (!write && d->mode == WC_D_CACHED && d->accmode == O_WRONLY)
            r = -EBADF;
        else
            r = wc_kernel_rw_locked(fd, d, write, iov, iovcnt, pos, flags,
                                    vec);
        wc_blk_unlock(&d->lock);
    }
    wc_shim_leave();
    return wc_ret_keep(r, e);
}

/* ---- writes ------------------------------------------------------------ */

/* The two common cases of write and pwrite, each on a short path, under
 * the description's lock as the full path takes it (none while the
 * program has one thread: desc_enter; a CACHED one's owner enters as such,
 * without the mutex: desc_enter_bias), at depth 1 (a handler's write
 * meets d as it is):
 *   - WATCH, a write that stays WATCH (a file's first writes, or one
 *     written a few times: fdtab.c invariant (6)): the kernel's call,
 *     counted, and nothing else (about 160 instructions of the shim's
 *     for a 1-byte write, 190 for a pwrite, its entry and exit checks
 *     included: callgrind, 2026-12-07);
 *   - RESERVE, a write at the shared offset: wc_reserve_write, as
 *     wc_do_writev calls it;
 *   - CACHED, a small write that continues the last one within its page
 *     (wc_write_fast), with wc_do_writev's in-flight mark (wc_inflight)
 *     and the gain meter's verdict, inside the file's window (cache/
 *     write.c W1): 250 instructions per 1-byte write in all, where the
 *     full path takes 571.
 * The source is faulted in first, before any lock (fault_in). The
 * program's errno is kept on success: a CACHED write with one thread or
 * by the description's owner (taken first) neither reads nor sets it,
 * since no call on its way changes it (the rare ones keep it
 * themselves); the others save it. Inline in write_tracked and
 * pwrite_tracked, which write() and pwrite() reach by a tail call (their
 * own frames save no register: an untracked descriptor's call pays
 * nothing for it). WC_UNHANDLED, having changed nothing: the full path
 * decides. */
#define WC_UNHANDLED ((ssize_t)INT64_MIN)
/* fast_write's CACHED case, d entered as `held`: the engine's fast write
 * and, when it took the write, the way out; WC_FAST_NO having changed
 * nothing, d still entered. Leaves errno as it was. */
static inline __attribute__((always_inline)) ssize_t
cached_fast(struct wc_desc *d, const void *buf, size_t n, off_t pos,
            int held)
{
    off_t where = 0, p = pos < 0 ? d->pos : pos;
    wc_blk_stress_point();
    cached_begin(d, pos, p);
    ssize_t r = wc_write_fast(d->file, buf, n, p, d->append, &where);
    if (unlikely(r == WC_FAST_NO)) {
        wc_inflight.d = NULL;
        return r;
    }
    cached_end(d, pos, where, r);
    write_leave(d, held);
    wc_shim_leave();
    wc_pending();           /* flusher.c invariant (2), proc.c (8b) */
    return r;
}

static inline __attribute__((always_inline)) ssize_t
fast_write(int fd, struct wc_desc *d, const void *buf, size_t n, off_t pos)
{
    wc_cancel_point();                  /* cancel.c invariant (2) */
    int e, held;
    ssize_t r;
    if (likely(__atomic_load_n(&wc_fault_ready, __ATOMIC_ACQUIRE)))
        fault_in(buf, n);
    wc_shim_enter();
    /* The common case first: a CACHED description's write with one
     * thread, or by its owner without the mutex (the biased entry: atomics
     * alone). Nothing on its way changes errno (the rare calls keep it
     * themselves: queue.c's drain, flusher.c's wc_pending_slow,
     * write_leave's demotion; the engine's waits are raw futex calls), so
     * the program's errno is neither read nor set there. Every other
     * entry saves it first. */
    if (likely(__atomic_load_n(&wc_solo, __ATOMIC_RELAXED))) {
        held = DESC_SOLO;
        if (likely(d->mode == WC_D_CACHED) && likely(writable(d))) {
            r = cached_fast(d, buf, n, pos, DESC_SOLO);
            if (likely(r != WC_FAST_NO))
                return r;
        }
        e = errno;
    } else if (desc_enter_bias(fd, d)) {
        held = DESC_BIAS;
        if (likely(writable(d))) {
            r = cached_fast(d, buf, n, pos, DESC_BIAS);
            if (likely(r != WC_FAST_NO))
                return r;
        }
        e = errno;
    } else {
        e = errno;
        held = DESC_LOCK;
        if (wc_desc_lock_entry(fd, d)) {
            wc_shim_leave();
            errno = e;
            return WC_UNHANDLED;
        }
        if (d->mode == WC_D_CACHED) {   /* the only mode entered biased */
            wc_blk_claim(&d->lock);     /* wcache/blk.h, the diagram */
            if (writable(d)) {
                r = cached_fast(d, buf, n, pos, DESC_LOCK);
                if (r == WC_FAST_NO)
                    goto no;
                errno = e;  /* what a wait for the lock may have changed */
                return r;
            }
        }
    }
    if (d->mode == WC_D_WATCH) {
        if (pos >= 0)
            wc_watch_pwrite(d, pos, n);
        int pass = wc_watch_passes(d, n);
        if (!pass)
            goto no;
        if (pos < 0)
            wc_cell_settle(fd, d);  /* shared.c invariant (6) */
        int room = wc_through_room(fd, d, n);
        uint64_t t0 = pass == WC_WATCH_COUNTED && wc_watch_timed(d)
                          ? wc_now_ns() : 0;
        r = pos < 0 ? wc_k_write(fd, buf, n) : wc_k_pwrite(fd, buf, n, pos);
        if (r < 0)
            e = errno;
        else                            /* cache/errors.c (4c) */
            __atomic_fetch_add(&wc_sent_through, (uint64_t)r,
                               __ATOMIC_RELAXED);
        if (t0)
            wc_watch_took(fd, d, wc_now_ns() - t0);
        if (unlikely(room))
            wc_through_done((uint64_t)d->dev, n);
        if (unlikely(wc_nc_counting))
            wc_nc_count_through(fd, d, n);
        desc_leave(d, held);
        wc_shim_leave();
        errno = e;
        return r;
    }
    if (d->mode == WC_D_RESERVE && pos < 0) {
        struct iovec v = {(void *)buf, n};
        r = wc_reserve_write(fd, d, &v, 1, 0);
        write_leave(d, held);
        wc_shim_leave();
        wc_pending();       /* flusher.c invariant (2), proc.c (8b) */
        return wc_ret_keep(r, e);
    }
no:
    desc_leave(d, held);
    wc_shim_leave();
    errno = e;
    return WC_UNHANDLED;
}

static inline int fast_may(void)
{
    return likely(!wc_depth);
}

WC_HOT
static __attribute__((noinline)) ssize_t
write_tracked(int fd, struct wc_desc *d, const void *buf, size_t n)
{
    if (fast_may()) {
        ssize_t r = fast_write(fd, d, buf, n, -1);
        if (r != WC_UNHANDLED)
            return r;
    }
    struct iovec v = {(void *)buf, n};
    return write_common(fd, d, &v, 1, -1, 0, 0);
}

/* write() of a descriptor the quick look below leaves: the full lookup. */
WC_HOT
static __attribute__((noinline)) ssize_t write_other(int fd, const void *buf,
                                                     size_t n)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : wc_k_write(fd, buf, n);
    return write_tracked(fd, d, buf, n);
}

static __attribute__((noinline)) ssize_t write_kernel(int fd, const void *buf,
                                                      size_t n)
{
    return wc_k_write(fd, buf, n);
}

/* The quick look of write(), pwrite() and read(), on loads alone: QUICK_
 * TRACKED with *dp a tracked description; QUICK_KERNEL for an untracked
 * descriptor WC_UNTRACKED (`read`: WC_UNTRACKED_READ) would find nothing
 * to do for (wc_nc_quiet); QUICK_OTHER: the full lookup (wc_fd_get) must
 * decide (the shim not on, a vfork child, a closing or internal
 * descriptor, a number past the table). Each caller then jumps to its
 * route (a tail call), so that the wrapper itself saves no register: an
 * untracked descriptor's call pays nothing for the tracked one's path. */
enum { QUICK_OTHER, QUICK_TRACKED, QUICK_KERNEL };
static inline __attribute__((always_inline)) int
quick_look(int fd, int read, struct wc_desc **dp)
{
    if (likely(wc_state == WC_ST_ON) && likely((unsigned)fd < wc_nfds)) {
        struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
        *dp = d;
        if (likely(wc_desc_is(d)))
            return QUICK_TRACKED;
        if (d == NULL && wc_nc_quiet(fd, read))
            return QUICK_KERNEL;
    }
    return QUICK_OTHER;
}

WC_HOT
WC_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    struct wc_desc *d;
    switch (quick_look(fd, 0, &d)) {
    case QUICK_TRACKED:
        return write_tracked(fd, d, buf, n);
    case QUICK_KERNEL:
        return write_kernel(fd, buf, n);
    }
    return write_other(fd, buf, n);
}

static __attribute__((noinline)) ssize_t
pwrite_tracked(int fd, struct wc_desc *d, const void *buf, size_t n,
               off_t pos)
{
    if (pos < 0)
        return wc_ret(-EINVAL);
    struct iovec v = {(void *)buf, n};
    if (refused(WC_RF_PWRITE))                  /* invariant (7) */
        return to_kernel(fd, d, 1, &v, 1, pos, 0, 0);
    if (fast_may()) {
        ssize_t r = fast_write(fd, d, buf, n, pos);
        if (r != WC_UNHANDLED)
            return r;
    }
    return write_common(fd, d, &v, 1, pos, 0, 0);
}

static __attribute__((noinline)) ssize_t
pwrite_other(int fd, const void *buf, size_t n, off_t pos)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : wc_k_pwrite(fd, buf, n, pos);
    return pwrite_tracked(fd, d, buf, n, pos);
}

static __attribute__((noinline)) ssize_t
pwrite_kernel(int fd, const void *buf, size_t n, off_t pos)
{
    return wc_k_pwrite(fd, buf, n, pos);
}

WC_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t pos)
{
    struct wc_desc *d;
    switch (quick_look(fd, 0, &d)) {
    case QUICK_TRACKED:
        return pwrite_tracked(fd, d, buf, n, pos);
    case QUICK_KERNEL:
        return pwrite_kernel(fd, buf, n, pos);
    }
    return pwrite_other(fd, buf, n, pos);
}

WC_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t pos)
{
    return pwrite(fd, buf, n, pos);
}

WC_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : REAL(writev)(fd, iov, iovcnt);
    return write_common(fd, d, iov, iovcnt, -1, 0, 1);
}

WC_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt,
                          off_t pos)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : REAL(pwritev)(fd, iov, iovcnt, pos);
    if (pos < 0)
        return wc_ret(-EINVAL);
    if (refused(WC_RF_PWRITEV))                 /* invariant (7) */
        return to_kernel(fd, d, 1, iov, iovcnt, pos, 0, 1);
    return write_common(fd, d, iov, iovcnt, pos, 0, 1);
}

WC_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt,
                            off64_t pos)
{
    return pwritev(fd, iov, iovcnt, pos);
}

WC_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt,
                           off_t pos, int flags)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : REAL(pwritev2)(fd, iov, iovcnt, pos, flags);
    if (pos < -1)
        return wc_ret(-EINVAL);
    if ((flags & ~(RWF_HIPRI | RWF_APPEND)) || refused(WC_RF_PWRITEV2))
        return to_kernel(fd, d, 1, iov, iovcnt, pos, flags, 1 | WC_VEC_V2);
    return write_common(fd, d, iov, iovcnt, pos, !!(flags & RWF_APPEND), 1);
}

WC_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt,
                              off64_t pos, int flags)
{
    return pwritev2(fd, iov, iovcnt, pos, flags);
}

/* ---- reads ------------------------------------------------------------- */

static __attribute__((noinline)) ssize_t
read_tracked(int fd, struct wc_desc *d, void *buf, size_t n)
{
    if (d->mode == WC_D_WATCH) {
        wc_cell_settle(fd, d);      /* shared.c invariant (6) */
        ssize_t r = wc_k_read(fd, buf, n);
        wc_watch_moved(fd, d);
        return r;
    }
    struct iovec v = {buf, n};
    return read_common(fd, d, &v, 1, -1, 0);
}

static __attribute__((noinline)) ssize_t read_other(int fd, void *buf,
                                                    size_t n)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED_READ(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : wc_k_read(fd, buf, n);
    return read_tracked(fd, d, buf, n);
}

static __attribute__((noinline)) ssize_t read_kernel(int fd, void *buf,
                                                     size_t n)
{
    return wc_k_read(fd, buf, n);
}

WC_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    struct wc_desc *d;
    switch (quick_look(fd, 1, &d)) {
    case QUICK_TRACKED:
        return read_tracked(fd, d, buf, n);
    case QUICK_KERNEL:
        return read_kernel(fd, buf, n);
    }
    return read_other(fd, buf, n);
}

WC_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return read(fd, buf, n);
}

WC_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t pos)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED_READ(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : wc_k_pread(fd, buf, n, pos);
    if (d->mode == WC_D_WATCH)
        return wc_k_pread(fd, buf, n, pos);
    if (pos < 0)
        return wc_ret(-EINVAL);
    struct iovec v = {buf, n};
    if (refused(WC_RF_PREAD))                   /* invariant (7) */
        return to_kernel(fd, d, 0, &v, 1, pos, 0, 0);
    return read_common(fd, d, &v, 1, pos, 0);
}

WC_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t pos)
{
    return pread(fd, buf, n, pos);
}

WC_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t pos,
                              size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return pread(fd, buf, n, pos);
}

WC_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t pos,
                                size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return pread(fd, buf, n, pos);
}

WC_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED_READ(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : REAL(readv)(fd, iov, iovcnt);
    if (d->mode == WC_D_WATCH) {
        wc_cell_settle(fd, d);      /* shared.c invariant (6) */
        ssize_t r = REAL(readv)(fd, iov, iovcnt);
        wc_watch_moved(fd, d);
        return r;
    }
    return read_common(fd, d, iov, iovcnt, -1, 1);
}

WC_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int iovcnt,
                         off_t pos)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED_READ(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : REAL(preadv)(fd, iov, iovcnt, pos);
    if (d->mode == WC_D_WATCH)
        return REAL(preadv)(fd, iov, iovcnt, pos);
    if (pos < 0)
        return wc_ret(-EINVAL);
    if (refused(WC_RF_PREADV))                  /* invariant (7) */
        return to_kernel(fd, d, 0, iov, iovcnt, pos, 0, 1);
    return read_common(fd, d, iov, iovcnt, pos, 1);
}

WC_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int iovcnt,
                           off64_t pos)
{
    return preadv(fd, iov, iovcnt, pos);
}

WC_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt,
                          off_t pos, int flags)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL) && !(d = WC_UNTRACKED_READ(fd)))
        return WC_HIDDEN(fd) ? wc_ret(-EBADF) : REAL(preadv2)(fd, iov, iovcnt, pos, flags);
    if (d->mode == WC_D_WATCH) {
        if (pos == -1)
            wc_cell_settle(fd, d);  /* shared.c invariant (6) */
        ssize_t r = REAL(preadv2)(fd, iov, iovcnt, pos, flags);
        if (pos == -1)
            wc_watch_moved(fd, d);
        return r;
    }
    if (pos < -1)
        return wc_ret(-EINVAL);
    if ((flags & ~RWF_HIPRI) || refused(WC_RF_PREADV2))
        return to_kernel(fd, d, 0, iov, iovcnt, pos, flags, 1 | WC_VEC_V2);
    return read_common(fd, d, iov, iovcnt, pos, 1);
}

WC_EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int iovcnt,
                             off64_t pos, int flags)
{
    return preadv2(fd, iov, iovcnt, pos, flags);
}
