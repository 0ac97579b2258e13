/*
 * flush.c - ordered write-back (the dirty-range sets it consumes are in
 * ranges.c).
 *
 * Invariants (CONTRACT.md section 6):
 *   (1) Write-back writes exactly the bytes the program wrote: the dirty
 *       ranges of each block record, never the rest of a page (bytes from
 *       zero-fill, or valid clean bytes that another process may since have
 *       changed).
 *   (2) A file's ranges go out in ascending offset order; adjacent ranges
 *       are coalesced into one pwritev of up to WC_WB_SEGS segments.
 *   (3) Nothing is written at or past i_size.
 *   (4) Data before metadata: the file is extended with ftruncate only
 *       after its data, and only when the data did not reach i_size; a
 *       range is cleared from its block record only after pwritev returned
 *       it written (a replay may write it twice, never lose it).
 *   (5) An error stops the flush with the unwritten ranges still dirty; it
 *       is recorded (f->err) for the next fsync and close, once each, and
 *       the file passes through until a retry at a consistency point
 *       writes everything (errors.c: the states).
 *   (6) A flush with f->recycle set (a stream's, or scattered writes')
 *       frees the block of each page it cleans, except the page holding
 *       i_size, which the next append continues: the blocks go back to
 *       the allocator's ring and are reused at once, warm, instead of
 *       lingering on the clean LRU while the writer takes cold ones.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "cache_int.h"
#include "wcache/sys.h"

/* Sort a dirty list by page index (merge sort on the list). */
static struct wc_page *sort_pages(struct wc_page *list, uint32_t n)
{
    if (n < 2)
        return list;
    struct wc_page *b = list, **pp = &list;
    for (uint32_t i = 0; i < n / 2; i++) {
        pp = &b->dnext;
        b = b->dnext;
    }
    *pp = NULL;
    struct wc_page *a = sort_pages(list, n / 2);
    b = sort_pages(b, n - n / 2);
    struct wc_page *head = NULL, **tail = &head;
    while (a && b) {
        struct wc_page **s = a->index <= b->index ? &a : &b;
        *tail = *s;
        tail = &(*s)->dnext;
        *s = (*s)->dnext;
    }
    *tail = a ? a : b;
    return head;
}


void wc_flush_sort(struct wc_file *f)
{
    uint32_t n = 0;         /* the list itself is the truth */
    for (struct wc_page *p = f->dirty; p; p = p->dnext)
        n++;
    f->ndirty = n;
    f->dirty = sort_pages(f->dirty, n);
}

/* Write the batch, resuming after short writes and EINTR; clear what was
 * written from the block records. `append`: at the end of file, whatever
 * its size now (RWF_APPEND), for a run of appended bytes. Returns 0 or
 * -errno. */
static int issue(struct wc_file *f, struct wc_batch *bt, int append)
{
    struct wc_cache *c = f->cache;
    int first = 0, k = 0;
    uint64_t pos = bt->start;
    size_t skip = 0;        /* bytes of ent[first] already written */
    int r = 0;
    uint64_t eof = f->slot->disk_size;  /* where an append lands, alone */

    while (first < bt->n) {
        struct iovec *v = &bt->iov[first];
        struct iovec saved = *v;
        v->iov_base = (char *)v->iov_base + skip;
        v->iov_len -= skip;
        ssize_t w;
        int saved_errno = errno;
        if (append) {
            /* format.h (9): where this call lands if nobody else
             * appends, for a replay to look, since a SIGKILL during it
             * leaves no chance to say whether it did. */
            f->slot->append_wip_len = bt->end - pos;
            __atomic_store_n(&f->slot->append_wip, eof + 1,
                             __ATOMIC_RELAXED);
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            w = wc_sys.pwritev2(f->wb_fd, v, bt->n - first, (off_t)pos,
                                RWF_APPEND);
            if (w < 0 && (errno == EOPNOTSUPP || errno == EINVAL ||
                          wc_refused(errno))) {
                /* An old kernel, or a filter: at our offsets. */
                append = 0;
                errno = saved_errno;
                *v = saved;
                continue;
            }
        } else {
            w = wc_write_at(f, v, bt->n - first, pos);
        }
        *v = saved;
        f->g_calls++;
        __atomic_fetch_add(&c->totals.wb_calls, 1, __ATOMIC_RELAXED);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = w < 0 ? -errno : -EIO;
            /* The kernel may have moved the file's times before it failed
             * (ext4 and tmpfs do, at ENOSPC): the disk note is taken again
             * (wc_flush_end), or the file would look changed by another
             * process (errors.c (8), replay.c (4)) and its bytes go aside
             * where they belong in it. */
            f->changed = 1;
            break;
        }
        __atomic_fetch_add(&c->totals.wb_bytes, (uint64_t)w, __ATOMIC_RELAXED);
        f->wb_bytes += (uint64_t)w;
        f->changed = 1;
        pos += (uint64_t)w;
        eof += (uint64_t)w;
        if (!append && pos > f->slot->disk_size)
            f->slot->disk_size = pos;
        /* Clear whole segments written; remember a partial one. */
        size_t left = (size_t)w;
        for (k = first; k < bt->n && left; k++) {
            size_t seg = bt->iov[k].iov_len - skip;
            struct wc_brec *rec = wc_page_rec(c, bt->ent[k].page);
            if (left < seg) {
                wc_range_sub(rec, bt->ent[k].lo + skip,
                             (unsigned)(bt->ent[k].lo + skip + left));
                /* The range now starts later: keep the entry in step. */
                skip += left;
                left = 0;
                break;
            }
            wc_range_sub(rec, (unsigned)(bt->ent[k].lo + skip),
                         bt->ent[k].hi);
            left -= seg;
            skip = 0;
        }
        first = k;
    }
    if (f->slot->append_wip) {
        __atomic_signal_fence(__ATOMIC_SEQ_CST);    /* after the ranges */
        f->slot->append_wip = 0;
    }
    bt->n = 0;
    return r;
}

int wc_flush_locked(struct wc_file *f, enum wc_reason why)
{
    return wc_flush_below(f, why, f->slot->size);
}

/* Add [s, e) of page p to batch bt, issuing the batch first when the
 * range does not continue it or it is full. */
static int add(struct wc_file *f, struct wc_batch *bt, struct wc_page *p,
               uint64_t s, uint64_t e, int append)
{
    int r = 0;
    if (bt->n && (s != bt->end || bt->n == WC_WB_SEGS))
        r = issue(f, bt, append);
    if (r == 0)
        wc_batch_push(f->cache, bt, p, s, e);
    return r;
}

uint32_t wc_flush_clean(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    /* Pages with nothing left to write leave the dirty list. Ranges past
     * i_size (none should exist) are dropped with them. */
    uint32_t cleaned = 0;
    struct wc_page **pp = &f->dirty;
    while (*pp) {
        struct wc_page *p = *pp;
        struct wc_brec *rec = wc_page_rec(c, p);
        if (rec->nr && (p->index << WC_PAGE_SHIFT) + rec->lo[0] >= f->slot->size)
            rec->nr = 0;
        if (rec->nr) {
            pp = &p->dnext;
            continue;
        }
        *pp = p->dnext;
        p->dirty = 0;
        p->dnext = NULL;
        cleaned++;
        if (f->recycle &&                               /* invariant (6) */
            (p->index + 1) << WC_PAGE_SHIFT <= f->slot->size)
            wc_page_drop(f, p);
        else
            wc_page_cleaned(f, p);
    }
    f->ndirty -= cleaned;
    f->wr_since = 0;
    __atomic_fetch_sub(&c->dirty_pages, cleaned, __ATOMIC_RELAXED);
    return cleaned;
}

int wc_flush_below(struct wc_file *f, enum wc_reason why, uint64_t limit)
{
    struct wc_cache *c = f->cache;
    struct wc_batch *bt = &f->batch[0], *ab = &f->batch[1];
    int r = 0;

    wc_async_settle(f);                 /* async.c (3): nothing in flight */
    if (limit > f->slot->size)
        limit = f->slot->size;
    if (!wc_file_dirty(f)) {
        wc_err_flushed(f);
        return 0;
    }
    if (!wc_err_may_retry(f, why))
        return f->err;                  /* errors.c (3): not here */
    if (f->state == WC_FS_FAILED && wc_err_retry_aside(f, why))
        return f->err;                  /* errors.c (8): not over it */
    int saved_errno = errno;            /* the answer is r, not errno */
    /* The appended run goes to the real end of file, in one call. */
    uint64_t abase = limit == f->slot->size ? f->append_from : WC_NO_APPEND;
    wc_flush_sort(f);
    bt->n = ab->n = 0;
    bt->start = bt->end = ab->start = ab->end = 0;
    wc_disk_busy(f);                            /* format.h (5) */

    for (struct wc_page *p = f->dirty; p && r == 0; p = p->dnext) {
        struct wc_brec *rec = wc_page_rec(c, p);
        uint64_t base = p->index << WC_PAGE_SHIFT;
        /* The ranges are copied: issue() edits the record as it goes. */
        unsigned nr = rec->nr;
        uint16_t lo[WC_RANGES], hi[WC_RANGES];
        memcpy(lo, rec->lo, sizeof lo);
        memcpy(hi, rec->hi, sizeof hi);
        for (unsigned i = 0; i < nr && r == 0; i++) {
            uint64_t s = base + lo[i], e = base + hi[i];
            if (e > limit)
                e = limit;                      /* invariant (3) */
            if (s >= e)
                continue;
            if (e <= abase) {
                r = add(f, bt, p, s, e, 0);
                continue;
            }
            if (s < abase)
                r = add(f, bt, p, s, abase, 0);
            uint64_t as = s > abase ? s : abase;
            if (r == 0 && ab->n && (as != ab->end || ab->n == WC_WB_SEGS))
                abase = WC_NO_APPEND;   /* not one run after all */
            if (r == 0)
                r = abase == WC_NO_APPEND ? add(f, bt, p, as, e, 0)
                                          : add(f, ab, p, as, e, 1);
        }
    }
    if (r == 0 && bt->n)
        r = issue(f, bt, 0);
    int appended = 0;
    if (r == 0 && ab->n) {
        /* The run lands at the end of file: make that where it began (a
         * size change without data, e.g. a faulting write past EOF, leaves
         * a hole the program saw as zeros). */
        struct stat st;     /* never below what is there: others may
                               have appended since disk_size was known;
                               and only before the run's first byte
                               landed (then it made the hole, if any: a
                               retry after a partial write, with the file
                               truncated by another since, made zeros) */
        if (ab->start == f->append_from &&
            f->slot->disk_size < ab->start &&
            wc_sys.fstat(f->wb_fd, &st) == 0 &&
            (uint64_t)st.st_size < ab->start) {
            if (wc_sys.ftruncate(f->wb_fd, (off_t)ab->start) < 0)
                r = -errno;
            else {
                f->slot->disk_size = ab->start;
                f->changed = 1;
            }
        }
        if (r == 0)
            r = issue(f, ab, 1);
        appended = r == 0;
    }

    uint32_t cleaned = wc_flush_clean(f);

    if (appended) {
        /* Where did the run land? If others appended to (or truncated) the
         * file meanwhile, our offsets are stale: take the file's size and
         * forget the (now clean) pages. */
        struct stat st;
        if (wc_sys.fstat(f->wb_fd, &st) == 0) {
            if ((uint64_t)st.st_size != f->slot->size && !f->ndirty) {
                wc_file_drop_pages(f);
                f->slot->size = (uint64_t)st.st_size;
            }
            f->slot->disk_size = (uint64_t)st.st_size;
        }
    }
    if (r == 0 && !f->ndirty)
        wc_file_set_append(f, WC_NO_APPEND);

    if (r == 0 && limit == f->slot->size && f->slot->size > f->slot->disk_size) { /* (4) */
        if (wc_sys.ftruncate(f->wb_fd, (off_t)f->slot->size) < 0)
            r = -errno;
        else {
            f->slot->disk_size = f->slot->size;
            f->changed = 1;
        }
    }
    wc_flush_end(f, r, cleaned, why, f->changed || appended);
    errno = saved_errno;
    return r;
}

void wc_flush_end(struct wc_file *f, int r, uint32_t cleaned,
                  enum wc_reason why, int changed)
{
    if (changed && r < 0)
        wc_note_disk(f);        /* format.h (5); errors.c (8) compares */
    else if (changed)
        wc_note_disk_wb(f);
    else
        f->slot->busy = 0;
    if (r < 0) {                                        /* invariant (5) */
        wc_err_record(f, r);
    } else if (!wc_file_dirty(f)) {
        __atomic_store_n(&f->dirty_since, 0, __ATOMIC_RELAXED);
        wc_err_flushed(f);
    }
    if (cleaned)
        __atomic_fetch_add(&f->cache->totals.flushes[why], 1,
                           __ATOMIC_RELAXED);
    WC_CHECK_FILE(f);
}
