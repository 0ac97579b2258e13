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
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "cache_int.h"
#include "wcache/sys.h"
#include "wcache/ucopy.h"

ssize_t wc__check_iovec(const struct iovec *iov, int iovcnt);

static const uint8_t zeros[WC_PAGE_SIZE];

/* The user's destination: a buffer or an iovec array (user memory). */
struct dest {
    const struct iovec *uiov;   /* NULL: one buffer */
    int nr;
    uint8_t *buf;
    size_t len;
};

/* Copy n bytes from src to logical offset `at` of the destination.
 * Returns bytes copied (short on a fault). */
static size_t dest_copy(const struct dest *d, size_t at, const void *src,
                        size_t n)
{
    if (!d->uiov)
        return wc_copy_nofault(d->buf + at, src, n);
    size_t done = 0, skip = at;
    for (int i = 0; i < d->nr && done < n; i++) {
        struct iovec v;
        if (wc_copy_nofault(&v, &d->uiov[i], sizeof v) != sizeof v)
            return done;
        if (skip >= v.iov_len) {
            skip -= v.iov_len;
            continue;
        }
        size_t want = v.iov_len - skip;
        if (want > n - done)
            want = n - done;
        size_t got = wc_copy_nofault((uint8_t *)v.iov_base + skip,
                                     (const uint8_t *)src + done, want);
        done += got;
        if (got < want)
            return done;
        skip = 0;
    }
    return done;
}

/* pread the file into the destination's first n bytes. Returns the bytes
 * read, or -errno (EFAULT counts as 0 bytes: the caller finds the fault). */
static ssize_t dest_pread(const struct dest *d, int fd, size_t n, off_t pos)
{
    size_t done = 0;
    if (!d->uiov) {
        while (done < n) {
            ssize_t r = wc_sys.pread(fd, d->buf + done, n - done,
                                     pos + (off_t)done);
            if (r < 0 && errno == EINTR && done)
                continue;
            if (r < 0)
                return errno == EFAULT ? (ssize_t)done : -errno;
            if (r == 0)
                break;
            done += (size_t)r;
        }
        return (ssize_t)done;
    }
    for (int i = 0; i < d->nr && done < n; i++) {
        struct iovec v;
        if (wc_copy_nofault(&v, &d->uiov[i], sizeof v) != sizeof v)
            break;
        size_t want = v.iov_len < n - done ? v.iov_len : n - done;
        size_t got = 0;
        while (got < want) {
            ssize_t r = wc_sys.pread(fd, (uint8_t *)v.iov_base + got,
                                     want - got, pos + (off_t)(done + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                if (errno != EFAULT && done + got == 0)
                    return -errno;
                return (ssize_t)(done + got);
            }
            if (r == 0)
                return (ssize_t)(done + got);
            got += (size_t)r;
        }
        done += got;
    }
    return (ssize_t)done;
}

/* Does the cache hold every byte of [pos, pos + n)? Caller holds f->lock. */
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

static ssize_t read_locked(struct wc_file *f, int fd, const struct dest *d,
                           size_t count, uint64_t pos)
{
    struct wc_cache *c = f->cache;
    if (pos >= f->size || count == 0)
        return 0;
    size_t n = f->size - pos < count ? (size_t)(f->size - pos) : count;

    if (!f->pages || !covered(f, pos, n)) {
        ssize_t got = dest_pread(d, fd, n, (off_t)pos);
        if (got < 0)
            return got;
        /* Past the end on disk and up to i_size: zeros. */
        for (size_t z = (size_t)got; z < n;) {
            size_t k = n - z < sizeof zeros ? n - z : sizeof zeros;
            size_t w = dest_copy(d, z, zeros, k);
            z += w;
            if (w < k) {
                n = z;          /* the buffer faults here */
                break;
            }
        }
    }
    /* Lay the cached bytes over it, in ascending order. */
    if (f->pages) {
        for (uint64_t idx = pos >> WC_PAGE_SHIFT;
             (idx << WC_PAGE_SHIFT) < pos + n; idx++) {
            struct wc_page *p;
            HASH_FIND(hh, f->pages, &idx, sizeof idx, p);
            if (!p)
                continue;
            struct wc_brec *rec = wc_page_rec(c, p);
            const uint8_t *data = wc_page_data(c, p);
            uint64_t base = idx << WC_PAGE_SHIFT;
            unsigned a = pos > base ? (unsigned)(pos - base) : 0;
            unsigned b = pos + n - base < WC_PAGE_SIZE
                             ? (unsigned)(pos + n - base) : WC_PAGE_SIZE;
            unsigned nr = rec->flags & WC_BR_UPTODATE ? 1 : rec->nr;
            for (unsigned i = 0; i < nr; i++) {
                unsigned lo = rec->flags & WC_BR_UPTODATE ? 0 : rec->lo[i];
                unsigned hi = rec->flags & WC_BR_UPTODATE ? WC_PAGE_SIZE
                                                          : rec->hi[i];
                if (lo < a)
                    lo = a;
                if (hi > b)
                    hi = b;
                if (lo >= hi)
                    continue;
                size_t at = (size_t)(base + lo - pos);
                size_t w = dest_copy(d, at, data + lo, hi - lo);
                if (w < hi - lo) {
                    n = at + w;
                    goto done;
                }
            }
        }
    }
done:
    if (n == 0)
        return -EFAULT;
    return (ssize_t)n;
}

ssize_t wc_pread(struct wc_file *f, int fd, void *buf, size_t len, off_t pos)
{
    if (pos < 0)
        return -EINVAL;
    if (!wc_access_ok(buf, len))
        return -EFAULT;
    if ((off_t)((uint64_t)pos + len) < 0)
        return -EINVAL;
    if (len > WC_MAX_RW_COUNT)
        len = WC_MAX_RW_COUNT;
    if (!wc_enter())
        return -EDEADLK;
    struct dest d = {.buf = buf, .len = len};
    wc_lock(&f->lock);
    ssize_t r = read_locked(f, fd, &d, len, (uint64_t)pos);
    wc_unlock(&f->lock);
    wc_leave();
    return r;
}

ssize_t wc_preadv(struct wc_file *f, int fd, const struct iovec *iov,
                  int iovcnt, off_t pos)
{
    if (pos < 0)
        return -EINVAL;
    ssize_t total = wc__check_iovec(iov, iovcnt);
    if (total < 0)
        return total;
    if ((off_t)((uint64_t)pos + (size_t)total) < 0)
        return -EINVAL;
    if (!wc_enter())
        return -EDEADLK;
    struct dest d = {.uiov = iov, .nr = iovcnt};
    wc_lock(&f->lock);
    ssize_t r = read_locked(f, fd, &d, (size_t)total, (uint64_t)pos);
    wc_unlock(&f->lock);
    wc_leave();
    return r;
}
