/*
 * write.c - the write path, after the kernel's generic_perform_write.
 *
 * Invariants (CONTRACT.md section 5; the numbers are the contract's):
 *   5.1 User memory is read only with wc_copy_nofault while a lock is held:
 *       a fault becomes a short count, never a call into the program.
 *   5.2 After a copy that made no progress the file lock is dropped, the
 *       source is probed (wc_probe_readable), and the copy retried. EFAULT
 *       only when not one byte could be read and nothing was written.
 *   5.3 Each retry shrinks the chunk to what the probe found readable, and
 *       a few consecutive stalls end the write: no spinning. Zero-length
 *       segments are skipped by the iterator, never seen as "copied 0".
 *   5.4 Only bytes really copied are committed: the block record's ranges
 *       track valid bytes exactly, so a short copy commits its prefix.
 *   5.5 A block allocated for this write has every byte outside the copied
 *       range zeroed before the file lock is released; only then may it
 *       be marked up to date. Reused blocks hold garbage (0xCD in tests).
 *   5.6 Zero-fill bytes are valid for reads but never dirty (flush.c (1)).
 *   5.7 i_size moves to pos + committed; a page wholly past the file's
 *       data on disk is up to date (zeros), so holes read as zeros.
 *   5.8 The return value is the bytes committed; nothing outside
 *       [pos, pos + ret) changes in the cache.
 *   5.9 The source may map the target itself: the target's mapping is the
 *       kernel's page cache, never our blocks, so the copy cannot wait on
 *       us; faults on it are the kernel's business.
 *   5.10 MAX_RW_COUNT clamping and the kernel's iovec checks, in its order.
 *
 * And for O_APPEND (CONTRACT.md section 2):
 *   A1 A run of appended bytes (f->append_from) is written back at the
 *      real end of file, in one call (flush.c). A run begins at the end
 *      the kernel reports when the file has nothing left to write back
 *      (wc_file_end_fresh): another process may have appended to it or
 *      truncated it since the engine last looked (a pipe between them is
 *      no consistency point), and the offset an O_APPEND write leaves is
 *      the end of file after it. Begun at the old end, the run's bytes
 *      landed right but the description's offset and the cached size
 *      stayed behind, through fsync and locks (a probe: 250 where the
 *      kernel says 257, a read then returning the program's own bytes).
 *   A2 A write that is not an append and reaches into or past the run
 *      lands the run first (at the real end, which then becomes the
 *      cached size): the run's offsets may be stale, and turning it into
 *      positional writes there wrote it over what another process had
 *      appended (7 bytes lost in a probe). A truncation needs nothing more:
 *      one past the end the engine knows on disk writes the run back
 *      first (file.c wc_file_truncate: it lands at the real end), one
 *      below it cuts the whole run away, as the kernel's would (A1: the
 *      run began at the end of file).
 *
 * And for the fast write (wc_write_fast):
 *   W1 f's window (f->fw_end, fw_data, fw_hi) is open only while every
 *      check write_iter's route makes for a small write that continues
 *      the last one inside its page would pass: write_iter opens it as it
 *      leaves f (window_open), from the hint page, the range it ends,
 *      the file's limits and budget, after a write that itself continued
 *      the one before (27 instructions a write otherwise spent for
 *      writes at scattered offsets; a stream's first continuing write
 *      opens it); the fast write keeps it so (it only
 *      extends that range, moves last_end, the size and the budget by
 *      the same bytes); every other entry into f closes it
 *      (wc_fw_close), so that nothing it was made from can change while
 *      it is open. The fast write then checks its start and its end
 *      against it, and the process's size limit (c->max_end, which
 *      setrlimit changes without entering f), nothing else.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "cache_int.h"
#include "wcache/sys.h"
#include "wcache/ucopy.h"



/* A write of at least this many bytes to a file with nothing to write
 * back goes straight to the kernel (write_through: its cached pages in the
 * range are dropped, program order is kept since nothing is pending): one
 * system call costs less than copying the bytes into the cache and out
 * again, as stdio writes past its buffer. Measured (make bench, ext4):
 * appends of 4 KiB and 64 KiB went from 0.29x and 0.11x the kernel when
 * cached to about 1x. Smaller writes, or any write to a file with dirty
 * data, are cached. */
#define WC_DIRECT_MIN WC_PAGE_SIZE
/* Except a write below this size that continues a stream (it starts at
 * the end of file, where the last write ended): a stream of them is
 * cached and written back WC_STREAM_PAGES at a time on recycled blocks.
 * Measured (40 MiB appended, ext4, this VM): 4 KiB appends took 30 ms
 * cached against 37-42 ms for the kernel alone and 45-54 ms direct; 8 KiB
 * ones broke even and 16 KiB ones lost (the second copy costs more than
 * the system calls saved). */
#define WC_STREAM_DIRECT WC_LARGE_WRITE
/* Scattered writes (below, WC_SCATTER_PAGES) are written back at once, a
 * system call per range that no later write joined: holding them gained
 * nothing. The writes that follow, while the file is clean, go straight
 * to the kernel (f->scattered): one system call each, as without the
 * cache, instead of a copy in and a system call out. A write that
 * continues the last one (a sequence) is cached again. Measured (make
 * bench: 512 B at random offsets of a 64 MiB file): 0.74x the kernel
 * when cached and written back, about 1x straight. */

/* A cursor over the user's buffers. The iovec array is our copy of the
 * program's (wc_iovec_check), or, when longer than WC_IOV_SNAP, the
 * program's own, read with the non-faulting copy one entry at a time. */
struct uiter {
    const struct iovec *uiov;   /* the array; NULL: one buffer */
    int snap;                   /* uiov is our copy of it */
    int nr;                     /* entries in uiov */
    int i;                      /* next entry to load */
    const char *base;           /* position in the current segment */
    size_t seg_left;            /* bytes left in it */
    size_t count;               /* bytes left in all (clamped) */
    int bad;                    /* the array became unreadable */
};

/* Load the next non-empty segment; 0 at the end or on an unreadable
 * array entry (it->bad). */
static int next_seg(struct uiter *it)
{
    while (it->i < it->nr) {
        struct iovec v;
        if (it->snap) {
            v = it->uiov[it->i];
        } else if (wc_copy_nofault(&v, &it->uiov[it->i], sizeof v) !=
                   sizeof v) {
            it->bad = 1;
            return 0;
        }
        it->i++;
        if (v.iov_len == 0)
            continue;
        it->base = v.iov_base;
        it->seg_left = v.iov_len < it->count ? v.iov_len : it->count;
        return 1;
    }
    return 0;
}

/* Copy up to n bytes from the iterator to dst; returns bytes copied. */
static size_t iter_copy(struct uiter *it, uint8_t *dst, size_t n)
{
    size_t done = 0;
    while (done < n && it->count) {
        if (it->seg_left == 0 && !next_seg(it))
            break;
        size_t want = n - done < it->seg_left ? n - done : it->seg_left;
        size_t got = wc_copy_nofault(dst + done, it->base, want);
        it->base += got;
        it->seg_left -= got;
        it->count -= got;
        done += got;
        if (got < want)
            break;
    }
    return done;
}

/* Drop cached pages overlapping [a, b): the file now holds newer bytes.
 * Caller holds f->lock; f has no dirty data there (it was flushed). */
static void drop_range(struct wc_file *f, uint64_t a, uint64_t b)
{
    for (uint64_t idx = a >> WC_PAGE_SHIFT; idx << WC_PAGE_SHIFT < b; idx++) {
        struct wc_page *p;
        HASH_FIND(hh, f->pages, &idx, sizeof idx, p);
        if (p)
            wc_page_drop(f, p);
        if (!f->pages)
            break;
    }
}

/* One buffer straight to the file: at pos, or at its real end. */
static ssize_t put(struct wc_file *f, const void *buf, size_t n, uint64_t pos,
                   int append)
{
    if (append) {
        struct iovec v = {(void *)buf, n};
        int saved = errno;
        ssize_t w = wc_sys.pwritev2(f->wb_fd, &v, 1, (off_t)pos, RWF_APPEND);
        if (w >= 0 || (errno != EOPNOTSUPP && errno != EINVAL &&
                       !wc_refused(errno)))
            return w;
        errno = saved;      /* an old kernel, or a filter: at pos */
    }
    struct iovec v = {(void *)buf, n};
    return wc_write_at(f, &v, 1, pos);
}

/* Bytes [pos, pos + n) of the file were just written from `src` past the
 * cache of a FAILED file: lay them over the cached pages, so that a retry
 * of the older cached bytes cannot undo them and reads see them. Caller
 * holds f->lock. */
static void overlay(struct wc_file *f, const char *src, size_t n, uint64_t pos)
{
    uint64_t end = pos + n;
    for (uint64_t idx = pos >> WC_PAGE_SHIFT; idx << WC_PAGE_SHIFT < end;
         idx++) {
        struct wc_page *p;
        HASH_FIND(hh, f->pages, &idx, sizeof idx, p);
        if (!p)
            continue;
        uint64_t base = idx << WC_PAGE_SHIFT;
        uint64_t a = pos > base ? pos : base;
        uint64_t b = end < base + WC_PAGE_SIZE ? end : base + WC_PAGE_SIZE;
        size_t len = (size_t)(b - a);
        if (wc_copy_nofault(wc_page_data(f->cache, p) + (a - base),
                            src + (a - pos), len) != len &&
            !p->dirty)
            wc_page_drop(f, p); /* the source vanished: forget the page */
    }
}

/* The gain meter, at the end of a window of operations on f: is caching
 * f worth its system calls? Caller holds f->lock. A file written
 * back at every lock or fsync, written at scattered offsets, or written
 * past the cache costs about a system call per operation, as the kernel
 * alone would, plus the copy and the engine's own calls (the size after a
 * lock, a descriptor, a store): its verdict goes to the caller once
 * (wc_futile), which may take the file out of the cache. Called when
 * f->g_ops reaches WC_GAIN_OPS (the count is kept inline). */
static __attribute__((noinline)) void gain_verdict(struct wc_file *f)
{
    if (4 * f->g_calls >= 3 * f->g_ops && !f->futile &&
        f->state == WC_FS_OK) {
        f->futile = 1;
        wc_futile = f;
    }
    f->g_ops = f->g_calls = 0;
}

/* Write the rest of the iterator straight to the file, after its cached
 * data (so the file's writes stay in program order); appends go to the
 * file's real end, *where says where. A FAILED file is not flushed first
 * (errors.c): the new bytes are laid over its cached pages instead.
 * Caller holds f->lock. Returns bytes written or -errno. */
static ssize_t write_through(struct wc_file *f, struct uiter *it, uint64_t pos,
                             int append, off_t *where)
{
    wc_async_settle(f);     /* async.c (1): the pages change under it */
    int failed = f->state == WC_FS_FAILED;
    /* Bytes that could not be written back: aside first (the program
     * let go of them) or never written over (it holds them) if the file
     * changed behind them, looked at before this write's own change
     * (errors.c (8)). */
    if (failed && wc_err_retry_aside(f, WC_WHY_OTHER))
        failed = f->state == WC_FS_FAILED;
    if (!failed) {
        int r = wc_flush_locked(f, WC_WHY_BYPASS);
        if (r < 0)
            return r;
    } else if (append && wc_file_dirty(f) &&
               f->append_from == WC_NO_APPEND) {
        append = 0;         /* at the end the program sees, after the
                               cached bytes still to be retried */
    } else if (append && wc_file_dirty(f)) {
        /* The cached appended run lands first, at the real end (errors.c
         * (2)), or this append gets its error: at the end the disk has
         * it would come before the run, and the size the program sees
         * (the run's end) would be taken back to the disk's (the retry
         * then cut the run there: 2,995 acknowledged bytes lost). After
         * k such retries failed in a row, the next waits 2^k ms (at most
         * about a second): a logger appending on while its file system
         * fails is not a write-back per line. */
        uint64_t now = wc_now_ns();
        if (f->app_fails && now < f->app_next_ns)
            return f->err;
        int r = wc_flush_locked(f, WC_WHY_OTHER);
        if (r < 0) {
            unsigned k = f->app_fails < 10 ? f->app_fails : 10;
            f->app_fails++;
            f->app_next_ns = now + (1000000ull << k);
            return r;
        }
        f->app_fails = 0;
        failed = f->state == WC_FS_FAILED;
    }
    /* (So an append that passes through lands after every byte the
     * program appended before it.) */
    int lay = failed && !append;
    wc_disk_busy(f);                    /* format.h (5) */
    size_t total = 0;
    int err = 0;
    while (it->count) {
        if (it->seg_left == 0 && !next_seg(it)) {
            if (it->bad)
                err = -EFAULT;
            break;
        }
        ssize_t w = put(f, it->base, it->seg_left, pos + total, append);
        f->g_calls++;
        if (w < 0) {
            err = -errno;
            break;
        }
        if (lay)
            overlay(f, it->base, (size_t)w, pos + total);
        total += (size_t)w;
        it->count -= (size_t)w;
        if ((size_t)w < it->seg_left)
            break;
        it->seg_left = 0;
    }
    f->n_through++;
    if (++f->g_ops >= WC_GAIN_OPS)
        gain_verdict(f);
    if (total == 0 || it->count || append) {
        /* Failed or short: the kernel may have moved the size anyway. An
         * append landed at the end, wherever others had taken it. */
        struct stat st;
        f->g_calls++;
        if (wc_sys.fstat(f->wb_fd, &st) == 0) {
            uint64_t n = (uint64_t)st.st_size;
            if (append && total && n >= total && n - total != pos) {
                if (!f->ndirty)
                    wc_file_drop_pages(f);
                pos = n - total;
                f->slot->size = n;
                if (where)
                    *where = (off_t)pos;
            }
            if (n > f->slot->size)
                f->slot->size = n;
            f->slot->disk_size = n;
        }
    }
    wc_note_disk(f);                    /* format.h (5) */
    if (total) {
        f->last_end = pos + total;
        if (!failed)
            drop_range(f, pos, pos + total);
        if (pos + total > f->slot->size)
            f->slot->size = pos + total;
        if (pos + total > f->slot->disk_size)
            f->slot->disk_size = pos + total;
    }
    return total ? (ssize_t)total : err;
}

/* The page became dirty: onto the file's dirty list. */
static void mark_dirty(struct wc_file *f, struct wc_page *p)
{
    struct wc_cache *c = f->cache;
    if (p->on_lru)
        wc_page_dirtied(f, p);
    p->dirty = 1;
    wc_page_rec(c, p)->seq = __atomic_add_fetch(&c->store.hdr->seq, 1,
                                                __ATOMIC_RELAXED);
    p->dnext = f->dirty;
    f->dirty = p;
    if (f->ndirty++ == 0) {
        __atomic_store_n(&f->dirty_since, wc_now_ns(), __ATOMIC_RELAXED);
        wc_note_disk_due(f);            /* format.h (5) */
    }
    __atomic_fetch_add(&c->dirty_pages, 1, __ATOMIC_RELAXED);
}

/* Write f back now, for a stream or scattered writes, and free the
 * blocks of the pages cleaned (flush.c (6)). Caller holds f->lock. */
static int recycle_flush(struct wc_file *f)
{
    f->recycle = 1;
    wc_async_settle(f);         /* not timed: the flusher's batch */
    uint64_t t = wc_now_ns(), b = f->wb_bytes;
    int r = wc_flush_locked(f, WC_WHY_PRESSURE);
    wc_async_measure(f, wc_now_ns() - t, f->wb_bytes - b);
    f->recycle = 0;
    return r;
}

/* A write of n bytes ending at `end` was cached: the file's counters and
 * the gain meter. Caller holds f->lock. */
static inline void count_written(struct wc_file *f, uint64_t end, size_t n)
{
    f->last_end = end;
    f->n_writes++;
    if (__builtin_expect(++f->g_ops >= WC_GAIN_OPS, 0))
        gain_verdict(f);
    f->n_bytes += n;
    /* Read without f's lock by space_granted (errors.c): atomic. */
    __atomic_store_n(&f->space_left, f->space_left - (int64_t)n,
                     __ATOMIC_RELAXED);
}

/* The end of a write that entered the engine and f: over the dirty limit,
 * everything is written back (pressure). Only a write that may have made
 * a page dirty (`dirtied`) looks: the count is a line the writers of
 * other files change (that look was a sixth of wc_write_fast's samples
 * with two threads on two files). */
static inline void write_leave(struct wc_file *f, int locked, int dirtied)
{
    struct wc_cache *c = f->cache;
    WC_CHECK_FILE(f);
    wc_file_leave(f, locked);
    if (dirtied &&
        __builtin_expect(__atomic_load_n(&c->dirty_pages, __ATOMIC_RELAXED) >
                             __atomic_load_n(&c->dirty_limit,
                                             __ATOMIC_RELAXED), 0))
        wc_flush_all_entered(c, WC_WHY_PRESSURE);
    wc_engine_leave();
}

/* The write this thread has in flight, and the size before it: a child
 * writing back after a signal handler's _exit (wc_cache_unlock_all) takes
 * the size back, so an interrupted write that grew the file does not
 * appear in part (the kernel's writes are never cut by a signal). The
 * write commits when wc_wip_end is set (-1 from its start), before it
 * stops being in flight: from then on it stands, size included, as the
 * shim then counts it done too (moves the offset past it). Per thread:
 * wc_wip_file, wc_wip_size and wc_wip_end, in wcache/thr.h's object. */

/* Invariant W1: open f's window for the next write if it continues this
 * one inside the hint page, exactly where wc_write_fast's route is
 * write_iter's: the page is dirty, not in a batch in flight, and its last
 * range ends at last_end; no early write-back is due (a stream's,
 * scattered writes'); the file's size is known and it is OK (a budget
 * left); appends keep their run. The end is the least of the page's end,
 * the file system's limit, the budget and the append run's limit. Caller
 * holds f->lock, entered by wc_file_enter, which closed the window. */
static void window_open(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    struct wc_page *p = f->hint;
    uint64_t pos = f->last_end;
    if (!p || !p->dirty || p->wb || p->index != pos >> WC_PAGE_SHIFT ||
        c->bypass < WC_PAGE_SIZE || f->space_left <= 0 ||
        __atomic_load_n(&f->size_stale, __ATOMIC_RELAXED) ||
        (f->ndirty >= WC_SCATTER_PAGES &&
         2 * ((uint64_t)f->wr_since + 1) < 3 * (uint64_t)f->ndirty) ||
        (f->seq_pages >= f->stream_pages && f->append_from == WC_NO_APPEND))
        return;
    struct wc_brec *rec = wc_page_rec(c, p);
    unsigned off = (unsigned)(pos & (WC_PAGE_SIZE - 1));
    if (rec->nr == 0 || rec->hi[rec->nr - 1] != off)
        return;
    uint64_t end = (p->index + 1) << WC_PAGE_SHIFT;     /* below it */
    if (f->end_max < end)
        end = f->end_max + 1;
    if ((uint64_t)f->space_left < end - pos)
        end = pos + (uint64_t)f->space_left + 1;
    int append = f->append_from != WC_NO_APPEND;
    if (append && f->append_from + WC_APPEND_MAX + 1 < end)
        end = f->append_from + WC_APPEND_MAX + 1;
    f->fw_data = wc_page_data(c, p);
    f->fw_hi = &rec->hi[rec->nr - 1];
    f->fw_end[append] = end;
}

static ssize_t write_iter(struct wc_file *f, struct uiter *it, off_t pos_in,
                          int append, off_t *where)
{
    struct wc_cache *c = f->cache;
    size_t written = 0, chunk = WC_PAGE_SIZE;
    int stalls = 0, faulted = 0, early = 0, stream = 0;
    ssize_t ret;

    if (!wc_engine_enter())
        return -EDEADLK;
    int locked = wc_file_enter(f);
    wc_size_fresh(f);
    if (append && f->append_from == WC_NO_APPEND)
        wc_file_end_fresh(f);                   /* invariant A1 */
    wc_wip_size = f->slot->size;
    wc_wip_end = -1;
    wc_wip_file = f;
    uint64_t pos = append ? f->slot->size : (uint64_t)pos_in;
    int continues = pos == f->last_end;         /* invariant W1 */
    if (where)
        *where = (off_t)pos;

    /* To the kernel: large writes, writes it may refuse (RLIMIT_FSIZE,
     * the file system's limit), writes the disk could not hold, and every
     * write of a file that is not OK (errors.c (1)). */
    int big = it->count >= c->bypass || pos + it->count > c->max_end ||
              pos + it->count > wc_file_end_max(f, pos + it->count);
    int noroom = 0, full = 0, spent = 0;
    /* A write past the end leaves a gap the file system may have to fill
     * (vfat and exFAT have no holes: the kernel zero-fills it, and
     * answers ENOSPC where it cannot): its room is taken too (errors.c
     * (4d)). */
    uint64_t gap = pos > f->slot->size ? pos - f->slot->size : 0;
    size_t need = it->count + (size_t)gap;
    if (it->count && !big && (int64_t)need > f->space_left &&
        !wc_space_check(f, need)) {
        noroom = 1;
        full = f->state == WC_FS_OK;    /* not an error state: no room */
    }
    if (it->count && (big || noroom ||
                      (it->count >= WC_DIRECT_MIN && !wc_file_dirty(f) &&
                       (it->count >= WC_STREAM_DIRECT || pos == 0 ||
                        pos != f->slot->size || pos != f->last_end)) ||
                      (f->scattered && pos != f->last_end &&
                       !wc_file_dirty(f)))) {
        if (!noroom && f->state == WC_FS_OK) {
            spent = wc_space_direct(f, it->count);  /* errors.c (6), (7) */
            full = spent < 0;
        }
        if (full) {
            /* No room: what every file of this file system holds goes to
             * the disk before the kernel answers this write (errors.c
             * (5)). Nothing of the write is done yet: the file is left
             * and entered again as after a fault (5.2). */
            uint64_t dev = f->slot->dev;
            wc_file_leave(f, locked);
            wc_space_settle_entered(c, dev);
            locked = wc_file_enter(f);
            wc_size_fresh(f);
            wc_wip_size = f->slot->size;
            pos = append ? f->slot->size : (uint64_t)pos_in;
            if (where)
                *where = (off_t)pos;
        }
        ret = f->state == WC_FS_THROUGH ? -WC_EPASS
                                        : write_through(f, it, pos, append,
                                                        where);
        if (spent > 0)
            wc_cache_space_done(c, f->slot->dev, it->count);
        goto out;
    }
    if (pos == f->last_end)
        f->scattered = 0;       /* a sequence: cached again */
    if (append) {
        /* A run of appends is written back at the real end of file, in
         * one call: keep it short enough for one. */
        if (f->append_from != WC_NO_APPEND &&
            pos + it->count - f->append_from > WC_APPEND_MAX &&
            recycle_flush(f) == 0) {
            pos = f->slot->size;
            if (where)
                *where = (off_t)pos;
        }
        if (f->append_from == WC_NO_APPEND)
            wc_file_set_append(f, pos);         /* format.h (9) */
    } else if (f->append_from != WC_NO_APPEND &&
               pos + it->count > f->append_from) {
        /* Invariant A2: the run lands first; what a write-back error
         * leaves of it is taken for writes at the offsets it was cached
         * at. */
        (void)recycle_flush(f);
        wc_file_set_append(f, WC_NO_APPEND);    /* no longer appends */
        wc_wip_size = f->slot->size;
    }

    while (it->count) {
        uint64_t idx = pos >> WC_PAGE_SHIFT;
        unsigned off = (unsigned)(pos & (WC_PAGE_SIZE - 1));
        size_t bytes = WC_PAGE_SIZE - off;
        if (bytes > it->count)
            bytes = it->count;
        if (bytes > chunk)
            bytes = chunk;

        int isnew, err;
        struct wc_page *p = wc_page_get(f, idx, &isnew, &err);
        if (!p) {
            /* The store cannot hold it: the rest goes to the file. */
            ssize_t t = write_through(f, it, pos, append && !written, where);
            if (t > 0)
                written += (size_t)t;
            else if (written == 0)
                faulted = (int)t;
            break;
        }
        if (__builtin_expect(p->wb, 0)) {
            wc_async_settle(f);         /* async.c (1): written first */
            continue;                   /* the page may be gone now */
        }
        struct wc_brec *rec = wc_page_rec(c, p);
        if (rec->nr == WC_RANGES) {
            /* No room for another range: write this file back first. */
            int r = wc_flush_locked(f, WC_WHY_OTHER);
            if (r < 0) {
                if (written == 0)
                    faulted = r;
                break;
            }
            continue;       /* the page may be gone now */
        }

        uint8_t *data = wc_page_data(c, p);
        size_t copied = iter_copy(it, data + off, bytes);
        if (isnew) {                                    /* 5.5 */
            memset(data, 0, off);
            memset(data + off + copied, 0, WC_PAGE_SIZE - off - copied);
            if ((idx << WC_PAGE_SHIFT) >= f->slot->disk_size)
                rec->flags |= WC_BR_UPTODATE;           /* 5.7 */
        }
        if (copied) {                                   /* 5.4 */
            __atomic_signal_fence(__ATOMIC_SEQ_CST);    /* data first */
            if (!p->dirty)
                mark_dirty(f, p);
            wc_range_add(rec, off, off + (unsigned)copied);
            if (off + copied == WC_PAGE_SIZE &&         /* page complete, */
                ((idx + 1) << WC_PAGE_SHIFT) >= f->slot->size) { /* at EOF */
                f->seq_pages = idx == f->seq_next ? f->seq_pages + 1 : 1;
                f->seq_next = idx + 1;
            }
            pos += copied;
            written += copied;
            if (pos > f->slot->size)
                f->slot->size = pos;          /* 5.7 */
            stalls = 0;
            chunk = WC_PAGE_SIZE;
        } else {
            if (isnew)
                wc_page_drop(f, p); /* nothing of ours in it */
            if (c->fault_extends && !it->bad && pos > f->slot->size) {
                f->slot->size = pos;          /* pos + 0 */
                if (!f->dirty_since)
                    __atomic_store_n(&f->dirty_since, wc_now_ns(),
                                     __ATOMIC_RELAXED);
            }
        }
        if (copied == bytes)
            continue;

        /* A short copy: a fault in the source, or an unreadable array. */
        if (it->bad)
            break;
        f->n_faults++;
        if (copied)
            continue;           /* the next round starts at the fault */
        wc_file_leave(f, locked);                       /* 5.2 */
        size_t probe = bytes < it->seg_left ? bytes : it->seg_left;
        size_t avail = wc_probe_readable(it->base, probe);
        locked = wc_file_enter(f);
        if (avail == 0 || ++stalls > 3)                 /* 5.3 */
            break;
        chunk = avail;
        if (append) {
            /* Others may have appended while the lock was dropped. */
            if (written == 0) {
                pos = f->slot->size;
                if (where)
                    *where = (off_t)pos;
            } else if (pos != f->slot->size) {
                break;
            }
        }
    }
    if (written) {
        count_written(f, pos, written);
        if (gap)        /* its room too (errors.c (4d)) */
            __atomic_store_n(&f->space_left, f->space_left - (int64_t)gap,
                             __ATOMIC_RELAXED);
        ret = (ssize_t)written;
    } else if (faulted) {
        ret = faulted;
    } else {
        ret = it->count ? -EFAULT : 0;
    }
    if (f->seq_pages >= f->stream_pages && f->append_from == WC_NO_APPEND) {
        /* A stream: its completed pages go to the flusher, or are
         * written back now (an error is kept for fsync and close, as
         * with the dirty limit's flush below). Appends have their own
         * run limit above. */
        f->seq_pages = 0;
        early = stream = 1;
    } else if (f->as.due && wc_async_done(f)) {
        early = stream = 1;     /* the batch in flight is written: next */
    } else if (written && 2 * (uint64_t)++f->wr_since < 3 * (uint64_t)f->ndirty &&
               f->ndirty >= WC_SCATTER_PAGES && !f->as.due &&
               __atomic_load_n(&f->as.state, __ATOMIC_RELAXED) == WC_AS_IDLE) {
        /* Scattered writes, rarely to the same page again: write them
         * back now, on recycled blocks, rather than fault in fresh ones;
         * the next ones go to the kernel (f->scattered, above). */
        early = 1;
        f->scattered = 1;
    }
out:
    if (ret > 0) {              /* before the in-flight mark goes */
        wc_wip_end = (int64_t)(where ? *where : (off_t)pos_in) + ret;
        wc_blk_stress_commit();
    }
    wc_wip_file = NULL;
    /* Only now, with the write whole (no longer in flight): a child that
     * writes back after a signal handler's _exit either undoes an
     * unfinished write (wc_cache_unlock_all) or counts a finished one,
     * never finds a part of it already on disk. */
    if (early && (!stream || wc_async_stream(f) < 0))
        recycle_flush(f);
    if (continues)
        window_open(f);                 /* invariant W1 */
    write_leave(f, locked, 1);
    return ret;
}

/*
 * The write that continues the last one inside its page: a sequence of
 * small writes, lines of a log, records, bytes (write_iter's common case,
 * which costs it about 370 instructions of general work). It takes
 * exactly the route write_iter would, and only when nothing but the copy
 * and the extension of the page's last range is to be done: inside f's
 * window (invariant W1), which write_iter opened for it with every other
 * check made. Anything else, a fault in the copy included (nothing is
 * committed then), returns WC_FAST_NO before any change, and the caller
 * takes wc_pwrite. The one entry that may skip f's mutex when f is biased
 * to this thread (wcache/blk.h invariant (2)); an entry through the mutex
 * counts toward claiming it.
 */
ssize_t wc_write_fast(struct wc_file *f, const void *buf, size_t n,
                      off_t pos_in, int append, off_t *where)
{
    struct wc_cache *c = f->cache;
    /* The kernel's checks first (the position even when appending). */
    if (n == 0 || !wc_access_ok(buf, n) ||
        (uint64_t)pos_in > (uint64_t)INT64_MAX - n || !wc_engine_enter())
        return WC_FAST_NO;
    int locked = wc_file_enter_fast(f);
    uint64_t size = f->slot->size;
    uint64_t pos = append ? size : (uint64_t)pos_in;
    if (pos != f->last_end || pos + n >= f->fw_end[append != 0] ||
        pos + n > __atomic_load_n(&c->max_end, __ATOMIC_RELAXED))
        goto no;
    unsigned off = (unsigned)(pos & (WC_PAGE_SIZE - 1));
    wc_wip_size = size;
    wc_wip_end = -1;
    wc_wip_file = f;
    if (wc_copy_nofault(f->fw_data + off, buf, n) != n) {
        wc_wip_file = NULL;             /* write_iter copies it again */
        goto no;
    }
    wc_blk_stress_point();
    __atomic_signal_fence(__ATOMIC_SEQ_CST);    /* data first (5.4) */
    *f->fw_hi = (uint16_t)(off + n);            /* ranges.c (2) */
    pos += n;
    if (pos > size)
        f->slot->size = pos;                    /* 5.7 */
    f->scattered = 0;
    count_written(f, pos, n);
    f->wr_since++;
    if (where)
        *where = (off_t)(pos - n);
    wc_wip_end = (int64_t)pos;
    wc_blk_stress_commit();
    wc_wip_file = NULL;
    write_leave(f, locked, 0);          /* no page became dirty */
    return (ssize_t)n;
no:
    wc_file_leave(f, locked);
    wc_engine_leave();
    return WC_FAST_NO;
}

ssize_t wc_pwrite(struct wc_file *f, const void *buf, size_t len, off_t pos,
                  int append, off_t *where)
{
    /* The position is checked even when appending, as the kernel does. */
    ssize_t n = wc_rw_count(0, buf, len, NULL, 0, pos, NULL);
    if (n < 0)
        return n;
    struct uiter it = {.base = buf, .seg_left = (size_t)n, .count = (size_t)n};
    return write_iter(f, &it, pos, append, where);
}

/* The kernel's import_iovec: EINVAL for a bad count or a negative length
 * (checked while the array is read), EFAULT for an unreadable array or a
 * segment outside user space; the total is clamped to MAX_RW_COUNT.
 * With `snap` (room for WC_IOV_SNAP entries) and iovcnt <= WC_IOV_SNAP,
 * the array is read once, as the kernel copies it (iovec_from_user),
 * into snap, and *iovp points there after: one copy instead of one per
 * entry per pass (a writev of 8 small segments took 24 copies of 16
 * bytes). Returns the clamped total or -errno. */
ssize_t wc_iovec_check(const struct iovec **iovp, int iovcnt,
                       struct iovec *snap)
{
    const struct iovec *iov = *iovp;
    size_t total = 0;
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    if (iovcnt == 1) {
        /* One segment takes the single-buffer path: clamp, then check
         * the clamped range (import_ubuf). */
        struct iovec v;
        if (wc_copy_nofault(&v, iov, sizeof v) != sizeof v)
            return -EFAULT;
        if ((ssize_t)v.iov_len < 0)
            return -EINVAL;
        if (snap) {
            snap[0] = v;
            *iovp = snap;
        }
        if (v.iov_len > WC_MAX_RW_COUNT)
            v.iov_len = WC_MAX_RW_COUNT;
        return wc_access_ok(v.iov_base, v.iov_len) ? (ssize_t)v.iov_len
                                                   : -EFAULT;
    }
    int copy = snap && iovcnt <= WC_IOV_SNAP;
    if (copy) {
        size_t want = (size_t)iovcnt * sizeof *iov;
        size_t got = wc_copy_nofault(snap, iov, want);
        /* The kernel reads entry by entry: a negative length before the
         * first unreadable entry is EINVAL, then the fault is EFAULT. */
        for (size_t i = 0; i < got / sizeof *iov; i++)
            if ((ssize_t)snap[i].iov_len < 0)
                return -EINVAL;
        if (got != want)
            return -EFAULT;
        iov = *iovp = snap;
    } else {
        for (int i = 0; i < iovcnt; i++) {
            struct iovec v;
            if (wc_copy_nofault(&v, &iov[i], sizeof v) != sizeof v)
                return -EFAULT;
            if ((ssize_t)v.iov_len < 0)
                return -EINVAL;
        }
    }
    for (int i = 0; i < iovcnt; i++) {
        struct iovec v;
        if (copy)
            v = iov[i];
        else if (wc_copy_nofault(&v, &iov[i], sizeof v) != sizeof v)
            return -EFAULT;
        if (!wc_access_ok(v.iov_base, v.iov_len))
            return -EFAULT;
        size_t len = v.iov_len;
        if (len > WC_MAX_RW_COUNT - total)
            len = WC_MAX_RW_COUNT - total;
        total += len;
    }
    return (ssize_t)total;
}

ssize_t wc_iov_count(const struct iovec *iov, int iovcnt)
{
    return wc_iovec_check(&iov, iovcnt, NULL);
}

ssize_t wc_pwritev(struct wc_file *f, const struct iovec *iov, int iovcnt,
                   off_t pos, int append, off_t *where)
{
    struct iovec snap[WC_IOV_SNAP];
    ssize_t n = wc_rw_count(1, NULL, 0, &iov, iovcnt, pos, snap);
    if (n < 0)
        return n;
    struct uiter it = {.uiov = iov, .snap = iov == snap, .nr = iovcnt,
                       .count = (size_t)n};
    return write_iter(f, &it, pos, append, where);
}
