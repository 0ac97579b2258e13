/*
 * async.c - write-back in the background: a stream's completed pages are
 * written by the flusher thread while the program copies into the next
 * ones (the kernel's PG_writeback, in user space). flush.c writes back
 * in the caller's thread; this file hands one batch per file to another.
 *
 * A file's batch (f->as, f->batch[2]):
 *
 *          post                claim                 written
 *   IDLE --------> POSTED ----------------> RUNNING ---------> DONE
 *    ^   (file     (the flusher, or a                          |
 *    |    lock)     settler: CAS)                              |
 *    +------------------------ reap (file lock) --------------+
 *
 * Invariants:
 *   (1) A batch is one ascending, contiguous run of dirty ranges of pages
 *       wholly below i_size (never the page a stream goes on writing).
 *       Its pages carry p->wb from post to reap, and nothing changes their
 *       bytes or ranges, frees them, or takes them off the dirty list
 *       meanwhile: whatever would, settles the file first
 *       (wc_async_settle: flush.c's write-back, which every consistency
 *       point, pass and pressure goes through; dropping pages; truncate;
 *       a write into such a page; a write sent to the kernel; a change of
 *       the write-back descriptor). The fast write never meets one: the
 *       post takes f->hint away from it.
 *   (2) The writer of a batch (the flusher, or a settler that claims it
 *       first) holds no lock and takes none: it reads the batch and the
 *       pages' bytes, and writes only f->as.done, err and calls before
 *       DONE (release). A settler may therefore wait for it while holding
 *       any lock, and nobody waits for a lock while writing one.
 *   (3) Settling, under the file lock: a POSTED batch is claimed and
 *       written by the settler itself (the flusher may be this very
 *       thread, or busy in a pass that waits for this file), a RUNNING
 *       one waited for on its state word; then it is reaped: exactly the
 *       bytes written are cleared from the block records (flush.c (4): a
 *       range is clean only once written; a replay meanwhile writes it
 *       again), pages with nothing left leave the dirty list and their
 *       blocks are recycled (flush.c (6)), and the disk notes are taken
 *       (format.h (5): the slot is busy from post to reap).
 *   (4) A failed or short batch leaves what it did not write dirty, and
 *       its error is recorded at the reap as flush.c's own (flush.c (5),
 *       errors.c: reported by the next fsync and close, the file passes
 *       through, the data is retried at consistency points); a refused
 *       call (a seccomp filter) is not an error: the next write-back,
 *       which the stream's writer makes at once, takes flush.c's fallback.
 *   (5) Only a stream's writer posts (write.c), at most one batch per file
 *       at a time, and only while the flusher takes them (c->aq_kick set):
 *       a batch posted as it stops is written by the next settler, as any
 *       posted batch may be. A writer that finds its last batch not yet
 *       started, or still running after a whole new one, writes back
 *       itself: the flusher is slower than it, and a backlog would grow.
 *   (6) Only files whose write-back is slow are posted (f->as.slow: the
 *       last WC_ASYNC_SLOW stream batches each took more than
 *       c->bg_page_ns a page, WC_ASYNC_PAGE_NS by default, or the last
 *       one WC_ASYNC_SLOW_AT_ONCE times that); a stream's first batches
 *       are written by its writer, and measured. A file the caller knows
 *       to be on a server (wc_file_remote: the shim timed its writes
 *       before caching it) is slow from the start, its batches of
 *       WC_REMOTE_STREAM_PAGES.
 *       With bg_page_ns < 0, every stream batch is posted.
 * Locks: c->aq_lock covers c->aq and each file's as.queued and as.qnext;
 * it is a leaf (post takes it under the file lock; the flusher alone).
 */
#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "cache_int.h"
#include "wcache/sys.h"

/* Slow batches in a row before the flusher takes the next: a file's
 * first batch takes 5.6-5.7 us a page on ext4 and 7-8 on tmpfs (the
 * kernel's pages are new), the next ones 0.6-1.5; unless one batch took
 * WC_ASYNC_SLOW_AT_ONCE times the limit (bindfs: 37-40 us a page for the
 * first batch, 20-38 for the next). */
#define WC_ASYNC_SLOW 2
#define WC_ASYNC_SLOW_AT_ONCE 4
/* Batches shorter than this are not measured (their fixed costs). */
#define WC_ASYNC_MEASURE (16u * WC_PAGE_SIZE)

/* Take the batch to write it; 0 when another thread has (or none is). */
static int claim(struct wc_file *f)
{
    int posted = WC_AS_POSTED;
    return __atomic_compare_exchange_n(&f->as.state, &posted, WC_AS_RUNNING,
                                       0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Write the claimed batch (invariant (2)): no lock, errno kept. */
static void write_batch(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    struct wc_batch *bt = &f->batch[2];
    struct iovec v[WC_WB_SEGS];
    int n = bt->n, first = 0, saved = errno, err = 0;
    uint64_t pos = bt->start, done = 0;
    uint32_t calls = 0;
    uint64_t t = wc_now_ns();
    memcpy(v, bt->iov, (size_t)n * sizeof *v);
    while (first < n) {
        ssize_t w = wc_write_at_fd(c, f->as.fd, &v[first], n - first, pos);
        calls++;
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? -errno : -EIO;
            break;
        }
        done += (uint64_t)w;
        pos += (uint64_t)w;
        size_t left = (size_t)w;
        while (first < n && left >= v[first].iov_len)
            left -= v[first++].iov_len;
        if (left) {
            v[first].iov_base = (char *)v[first].iov_base + left;
            v[first].iov_len -= left;
        }
    }
    f->as.done = done;
    f->as.err = err;
    f->as.calls = calls;
    f->as.ns = wc_now_ns() - t;
    errno = saved;
    __atomic_store_n(&f->as.state, WC_AS_DONE, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&f->as.waiters, __ATOMIC_SEQ_CST))
        wc_futex(&f->as.state, FUTEX_WAKE_PRIVATE, 1 << 30);
}

/* The batch is DONE: clear what it wrote, recycle the pages it cleaned
 * (invariant (3)). Returns its error (invariant (4)). Caller holds
 * f->lock. */
static int reap(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    struct wc_batch *bt = &f->batch[2];
    uint64_t left = f->as.done;
    for (int k = 0; k < bt->n; k++) {
        bt->ent[k].page->wb = 0;
        if (!left)
            continue;
        unsigned lo = bt->ent[k].lo, hi = bt->ent[k].hi;
        if (left < hi - lo)
            hi = lo + (unsigned)left;
        wc_range_sub(wc_page_rec(c, bt->ent[k].page), lo, hi);
        left -= hi - lo;
    }
    if (f->as.err)
        f->changed = 1;     /* the times may have moved: flush.c issue() */
    if (f->as.done) {
        uint64_t end = bt->start + f->as.done;
        if (end > f->slot->disk_size)
            f->slot->disk_size = end;
        f->changed = 1;
        __atomic_fetch_add(&c->totals.wb_bytes, f->as.done, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&c->totals.wb_calls, f->as.calls, __ATOMIC_RELAXED);
    f->g_calls += f->as.calls;
    f->wb_bytes += f->as.done;
    wc_async_measure(f, f->as.ns, f->as.done);
    int err = f->as.err;
    bt->n = 0;
    /* Atomic: the batch's writer may still be reading it (its wake). */
    __atomic_store_n(&f->as.waiters, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->as.state, WC_AS_IDLE, __ATOMIC_RELAXED);

    int recycle = f->recycle;           /* inside flush.c's, maybe */
    f->recycle = 1;
    uint32_t cleaned = wc_flush_clean(f);
    f->recycle = recycle;
    /* Invariant (4): a refusal is no error (and wrote nothing: f stays
     * dirty, so nothing is marked clean either). */
    wc_flush_end(f, wc_refused(-err) ? 0 : err, cleaned, WC_WHY_PRESSURE,
                 f->changed);
    return err;
}

void wc_async_settle_slow(struct wc_file *f)
{
    int st = __atomic_load_n(&f->as.state, __ATOMIC_ACQUIRE);
    if (st == WC_AS_IDLE)
        return;
    if (st == WC_AS_POSTED && claim(f))
        write_batch(f);
    while ((st = __atomic_load_n(&f->as.state, __ATOMIC_SEQ_CST)) !=
           WC_AS_DONE) {
        __atomic_store_n(&f->as.waiters, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&f->as.state, __ATOMIC_SEQ_CST) == WC_AS_RUNNING)
            wc_futex(&f->as.state, FUTEX_WAIT_PRIVATE, WC_AS_RUNNING);
    }
    reap(f);
}

/* Post the stream's run (invariant (1)): of f's runs of adjacent dirty
 * ranges below the page holding i_size, the last one (where the stream
 * is; scattered rewrites before it wait for a flush), or its first
 * WC_WB_SEGS ranges. Caller holds f->lock; nothing is in flight. */
static void post(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    struct wc_batch *bt = &f->batch[2];
    uint64_t below = f->slot->size >> WC_PAGE_SHIFT;   /* page index */
    wc_flush_sort(f);
    bt->n = 0;
    for (struct wc_page *p = f->dirty; p && p->index < below; p = p->dnext) {
        struct wc_brec *rec = wc_page_rec(c, p);
        uint64_t base = p->index << WC_PAGE_SHIFT;
        for (unsigned i = 0; i < rec->nr; i++) {
            uint64_t s = base + rec->lo[i], e = base + rec->hi[i];
            if (bt->n && s != bt->end)
                bt->n = 0;              /* a gap: a later run, maybe */
            else if (bt->n == WC_WB_SEGS)
                goto built;
            wc_batch_push(c, bt, p, s, e);
        }
    }
built:
    if (!bt->n)
        return;
    for (int k = 0; k < bt->n; k++)
        bt->ent[k].page->wb = 1;
    if (f->hint && f->hint->wb)
        f->hint = NULL;                 /* invariant (1): not the fast write's */
    wc_disk_busy(f);                    /* format.h (5), invariant (3) */
    f->as.fd = f->wb_fd;
    f->as.done = 0;
    f->as.err = 0;
    f->as.calls = 0;
    __atomic_store_n(&f->as.state, WC_AS_POSTED, __ATOMIC_RELEASE);
    wc_lock(&c->aq_lock);
    if (!f->as.queued) {
        f->as.queued = 1;
        f->as.qnext = c->aq;
        c->aq = f;
    }
    wc_unlock(&c->aq_lock);
    void (*kick)(void) = __atomic_load_n(&c->aq_kick, __ATOMIC_ACQUIRE);
    if (kick)
        kick();
}

void wc_file_remote(struct wc_file *f)
{
    if (!wc_engine_enter())
        return;
    wc_file_lock(f);
    f->as.slow = WC_ASYNC_SLOW;
    f->stream_pages = WC_REMOTE_STREAM_PAGES;
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
}

void wc_async_measure(struct wc_file *f, uint64_t ns, uint64_t bytes)
{
    long limit = f->cache->bg_page_ns;
    if (bytes < WC_ASYNC_MEASURE || limit < 0)
        return;
    uint64_t at_limit = (uint64_t)limit * (bytes >> WC_PAGE_SHIFT);
    if (ns <= at_limit)
        f->as.slow = 0;
    else if (ns > WC_ASYNC_SLOW_AT_ONCE * at_limit)
        f->as.slow = WC_ASYNC_SLOW;     /* no local disk is that slow */
    else if (f->as.slow < WC_ASYNC_SLOW)
        f->as.slow++;
}

int wc_async_stream(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    if ((f->as.slow < WC_ASYNC_SLOW && c->bg_page_ns >= 0) ||
        !__atomic_load_n(&c->aq_kick, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&f->state, __ATOMIC_RELAXED) != WC_FS_OK ||
        __atomic_load_n(&c->refused, __ATOMIC_RELAXED) ||
        f->append_from != WC_NO_APPEND)
        return -1;
    int st = __atomic_load_n(&f->as.state, __ATOMIC_ACQUIRE);
    if (st == WC_AS_DONE) {
        if (reap(f) < 0)
            return -1;                  /* invariant (4) */
        st = WC_AS_IDLE;
    }
    if (st == WC_AS_POSTED || (st == WC_AS_RUNNING && f->as.due)) {
        /* The flusher has not started the last batch, or has not
         * finished it while a whole new one was written: it is slower
         * than this writer (no core free), and a backlog would only
         * grow. The writer writes back itself (flush.c settles first). */
        f->as.due = 0;
        return -1;
    }
    if (st == WC_AS_RUNNING) {
        f->as.due = 1;                  /* posted when this one is done */
        return 0;
    }
    f->as.due = 0;
    post(f);
    return 0;
}

void wc_async_forget(struct wc_file *f)
{
    struct wc_batch *bt = &f->batch[2];
    if (f->as.state != WC_AS_IDLE)
        for (int k = 0; k < bt->n; k++)
            bt->ent[k].page->wb = 0;
    bt->n = 0;
    f->as.state = WC_AS_IDLE;
    f->as.waiters = 0;
    f->as.due = 0;
    f->as.queued = 0;
    f->as.qnext = NULL;
}

void wc_cache_async(struct wc_cache *c, void (*kick)(void))
{
    __atomic_store_n(&c->aq_kick, kick, __ATOMIC_RELEASE);
}

int wc_cache_async_run(struct wc_cache *c)
{
    int n = 0;
    for (;;) {
        wc_lock(&c->aq_lock);
        struct wc_file *f = c->aq;
        if (f) {
            c->aq = f->as.qnext;
            f->as.qnext = NULL;
            f->as.queued = 0;
        }
        wc_unlock(&c->aq_lock);
        if (!f)
            return n;
        if (claim(f)) {                 /* else a settler took it */
            write_batch(f);
            __atomic_fetch_add(&c->totals.wb_background, 1, __ATOMIC_RELAXED);
            n++;
        }
    }
}
