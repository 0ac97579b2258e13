/*
 * read.c - reads: the file's bytes with the cached bytes laid over them.
 *
 * Invariants:
 *   (1) A read never flushes and never changes the cache.
 *   (2) Bytes come from, in increasing priority: zeros (holes, and the
 *       file past its end on disk up to i_size), the file (pread through
 *       the caller's descriptor, so the kernel checks access and faults),
 *       the cache (valid bytes of cached pages: all bytes of an up-to-date
 *       page, the dirty ranges of another).
 *   (3) Nothing at or past i_size is returned.
 *   (4) The user's buffer is written with the non-faulting copy; the first
 *       fault ends the read there (a short count, or EFAULT if nothing).
 *   (5) When the cache holds every byte asked for, no system call is made.
 *   (6) A file with nothing to write back is read by the kernel alone
 *       (one pread through the caller's descriptor, as without the
 *       cache): its clean pages and size may be older than another
 *       process's change (a truncation after the writer's fsync: the
 *       reads returned 96,000 bytes the file no longer had, beside an
 *       fstat of 0), and the kernel's page cache is coherent.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "cache_int.h"
#include "wcache/sys.h"
#include "wcache/ucopy.h"

static const uint8_t zeros[WC_PAGE_SIZE];

/* Is every byte of [pos, pos + n) valid in the cache? Caller holds f->lock. */
static int covered(struct wc_file *f, uint64_t pos, size_t n)
{
    uint64_t end = pos + n;
    while (pos < end) {
        uint64_t idx = pos >> WC_PAGE_SHIFT;
        unsigned a = (unsigned)(pos & (WC_PAGE_SIZE - 1));
        unsigned b = end - pos < WC_PAGE_SIZE - a ? a + (unsigned)(end - pos)
                                                  : WC_PAGE_SIZE;
        struct wc_page *p = f->hint;
        if (!p || p->index != idx)
            HASH_FIND(hh, f->pages, &idx, sizeof idx, p);
        if (!p || !wc_range_covers(wc_page_rec(f->cache, p), a, b))
            return 0;
        pos += b - a;
    }
    return 1;
}

/*
 * Read [pos, pos + n) of the file (n already clamped to i_size) into one
 * user buffer. Returns bytes (short only at a fault in buf) or -errno.
 */
static ssize_t read_buf(struct wc_file *f, int fd, uint8_t *buf, size_t n,
                        uint64_t pos)
{
    struct wc_cache *c = f->cache;
    if (n == 0)
        return 0;
    if (!f->pages || !covered(f, pos, n)) {
        size_t got = 0;
        while (got < n) {
            ssize_t r = wc_sys.pread(fd, buf + got, n - got,
                                     (off_t)(pos + got));
            f->g_calls++;                       /* the gain meter */
            if (r < 0 && errno == EINTR && got)
                continue;
            if (r < 0 && errno != EFAULT)
                return -errno;
            if (r <= 0)
                break;                  /* end of file on disk, or fault */
            got += (size_t)r;
        }
        /* Past the end on disk and up to i_size: zeros. A fault in buf
         * stops the zeros at the same byte the pread stopped at. */
        for (size_t z = got; z < n;) {
            size_t k = n - z < sizeof zeros ? n - z : sizeof zeros;
            size_t w = wc_copy_nofault(buf + z, zeros, k);
            z += w;
            if (w < k) {
                n = z;
                break;
            }
        }
    }
    /* Lay the cached bytes over it, in ascending order. */
    for (uint64_t idx = pos >> WC_PAGE_SHIFT;
         f->pages && (idx << WC_PAGE_SHIFT) < pos + n; idx++) {
        struct wc_page *p;
        HASH_FIND(hh, f->pages, &idx, sizeof idx, p);
        if (!p)
            continue;
        struct wc_brec *rec = wc_page_rec(c, p);
        const uint8_t *data = wc_page_data(c, p);
        uint64_t base = idx << WC_PAGE_SHIFT;
        unsigned a = pos > base ? (unsigned)(pos - base) : 0;
        unsigned b = pos + n - base < WC_PAGE_SIZE ? (unsigned)(pos + n - base)
                                                   : WC_PAGE_SIZE;
        int whole = rec->flags & WC_BR_UPTODATE;
        unsigned nr = whole ? 1 : rec->nr;
        for (unsigned i = 0; i < nr; i++) {
            unsigned lo = whole ? 0 : rec->lo[i];
            unsigned hi = whole ? WC_PAGE_SIZE : rec->hi[i];
            if (lo < a)
                lo = a;
            if (hi > b)
                hi = b;
            if (lo >= hi)
                continue;
            size_t at = (size_t)(base + lo - pos);
            size_t w = wc_copy_nofault(buf + at, data + lo, hi - lo);
            if (w < hi - lo)
                return (ssize_t)(at + w);       /* a fault in buf */
        }
    }
    return (ssize_t)n;
}

/* Segments one after the other, as the kernel fills them (a later
 * overlapping segment wins). Returns bytes, or -errno when none. */
static ssize_t read_locked(struct wc_file *f, int fd, int vec,
                           const struct iovec *uiov, int nr, uint8_t *buf,
                           size_t count, uint64_t pos)
{
    if (pos >= f->slot->size || count == 0)
        return 0;
    f->g_ops++;                                 /* the gain meter */
    size_t n = f->slot->size - pos < count ? (size_t)(f->slot->size - pos) : count;
    if (!vec) {
        ssize_t r = read_buf(f, fd, buf, n, pos);
        return r == 0 ? -EFAULT : r;
    }
    size_t done = 0;
    for (int i = 0; i < nr && done < n; i++) {
        struct iovec v;
        if (wc_copy_nofault(&v, &uiov[i], sizeof v) != sizeof v)
            break;
        size_t want = v.iov_len < n - done ? v.iov_len : n - done;
        ssize_t r = read_buf(f, fd, v.iov_base, want, pos + done);
        if (r < 0)
            return done ? (ssize_t)done : r;
        done += (size_t)r;
        if ((size_t)r < want)
            break;
    }
    return done ? (ssize_t)done : -EFAULT;
}

/* Both entry points: checks, then the read under the file lock. */
static ssize_t wc_preadv_common(struct wc_file *f, int fd, int vec,
                                void *buf, size_t len,
                                const struct iovec *iov, int iovcnt,
                                off_t pos)
{
    struct iovec snap[WC_IOV_SNAP];
    ssize_t n = wc_rw_count(vec, buf, len, &iov, iovcnt, pos, snap);
    if (n < 0)
        return n;
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    if (!wc_file_dirty(f)) {                    /* invariant (6) */
        wc_blk_unlock(&f->lock);
        wc_engine_leave();
        ssize_t k = vec ? wc_sys.preadv(fd, iov, iovcnt, pos)
                        : wc_sys.pread(fd, buf, len, pos);
        return k < 0 ? -errno : k;
    }
    wc_size_fresh(f);
    WC_CHECK_FILE(f);
    ssize_t r = read_locked(f, fd, vec, iov, iovcnt, buf, (size_t)n,
                            (uint64_t)pos);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

ssize_t wc_pread(struct wc_file *f, int fd, void *buf, size_t len, off_t pos)
{
    return wc_preadv_common(f, fd, 0, buf, len, NULL, 0, pos);
}

ssize_t wc_preadv(struct wc_file *f, int fd, const struct iovec *iov,
                  int iovcnt, off_t pos)
{
    return wc_preadv_common(f, fd, 1, NULL, 0, iov, iovcnt, pos);
}
