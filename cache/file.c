/*
 * file.c - a cached file's life: its slot claimed at the first cached
 * open (wc_file_get), its references, its size, the program's
 * consistency points on it (flush, sync, invalidate, truncate), and its
 * slot given back with the last reference (wc_file_put). Its writes are
 * in write.c, its reads in read.c, its write-back in flush.c, its pages
 * in pages.c, its write-back descriptor in wbfd.c.
 *
 * Invariants:
 *   (3) A file slot is live while it has references or dirty pages; a slot
 *       with dirty pages and no references (its last close failed to write
 *       back) is retried by every later flush of the whole cache
 *       (cache.c); so is one that only idle references keep (the shim's
 *       registry keeps such a file known to later opens), never over a
 *       file another process changed since (errors.c (8)). (1), (2) and
 *       (4), of pages and block records, are in pages.c.
 *   The disk notes (wc_note_disk and its kind) keep format.h's (5): a
 *   replay writes a slot back only over the file it left.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "cache_int.h"
#include "wcache/str.h"
#include "wcache/sys.h"

/* A disk note may wait (wc_note_disk_wb, wc_note_disk_due) while the
 * last two fstats took longer than this (a round trip to a server: 0.4-1
 * ms on GlusterFS, 1-2 us on a local disk)... */
#define WC_NOTE_SLOW_NS 100000u
/* ...and less than this many times that has passed since: the notes then
 * cost at most about 1/32 of the time. */
#define WC_NOTE_RATIO 32u

/* The note may wait (the two above): the slot stays busy meanwhile, and
 * a replay checks what it checks during a write-back (format.h (5)). A
 * failed write-back notes at once (wc_flush_end), so errors.c (8) always
 * compares with the file as the engine left it. */
static int note_may_wait(const struct wc_file *f)
{
    return f->note_ns > WC_NOTE_SLOW_NS && f->state == WC_FS_OK &&
           wc_now_ns() - f->noted_at < WC_NOTE_RATIO * f->note_ns;
}

static void note_disk_now(struct wc_file *f)
{
    struct stat st;
    f->seen_stale = 0;
    /* errors.c (8): a file changed behind the engine keeps the note of
     * before, so that no retry or replay takes the change for ours. */
    uint64_t t = wc_now_ns();
    int r = wc_sys.fstat(f->wb_fd, &st);
    f->noted_at = wc_now_ns();
    t = f->noted_at - t;        /* the lesser of the last two: a thread */
    f->note_ns = t < f->note_last ? t : f->note_last;   /* preempted once */
    f->note_last = t;                                   /* is not slow */
    if (r == 0) {
        f->slot->gone = st.st_nlink == 0;           /* format.h (10) */
        if (!f->behind) {
            f->slot->seen_size = (uint64_t)st.st_size;
            f->slot->seen_ctime_ns =
                (uint64_t)st.st_ctim.tv_sec * 1000000000u +
                (uint64_t)st.st_ctim.tv_nsec;
        }   /* else stays as it was: a replay keeps the data aside */
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    f->slot->busy = 0;
}

void wc_note_disk(struct wc_file *f)
{
    f->changed = 0;
    if (wc_file_dirty(f)) {
        note_disk_now(f);
    } else {
        /* Nothing for a replay to write: busy stays set (only dev and ino
         * compare) until the file next becomes dirty. */
        f->slot->busy = 1;
        f->seen_stale = 1;
    }
}

void wc_note_disk_wb(struct wc_file *f)
{
    if (wc_file_dirty(f) && note_may_wait(f)) {
        /* busy stays set, as while the write-back ran (format.h (5)): a
         * replay meanwhile checks what it checks during one; the next
         * write-back's note, or the file's becoming clean, ends it. */
        f->changed = 0;
        return;
    }
    wc_note_disk(f);
}

/* The file became dirty after a note that found it clean. A stream whose
 * write-back leaves it clean each time (whole pages: a batch, then the
 * next write) took a note at every batch: eight fstats of 0.3-0.5 ms in a
 * GlusterFS stream of 3.2 MB in 30-40 ms, each in the writer. */
void wc_note_disk_due(struct wc_file *f)
{
    if (!f->seen_stale)
        return;
    if (note_may_wait(f))
        wc_disk_busy(f);        /* stays busy: seen_* are not the file's */
    else
        note_disk_now(f);
}

void wc_disk_busy(struct wc_file *f)
{
    f->slot->busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void wc_file_fold(struct wc_stats *t, struct wc_file *f)
{
    t->writes += f->n_writes;
    t->bytes += f->n_bytes;
    t->through += f->n_through;
    t->faults += f->n_faults;
    f->n_writes = f->n_bytes = f->n_through = f->n_faults = 0;
}

/* Drop every page of f (no write-back). Caller holds f->lock. */
void wc_file_drop_pages(struct wc_file *f)
{
    wc_async_settle(f);                 /* async.c (1) */
    struct wc_page *p, *tmp;
    HASH_ITER(hh, f->pages, p, tmp) wc_page_drop(f, p);
    f->dirty = NULL;
    f->ndirty = 0;
    __atomic_store_n(&f->dirty_since, 0, __ATOMIC_RELAXED);
}

/* Release slot f: caller holds f->lock and c->lock, f has no pages. */
void wc_file_release(struct wc_cache *c, struct wc_file *f)
{
    wc_file_fold(&c->totals, f);
    wc_file_stash_free(c, f);   /* the file's recycled blocks: back */
    HASH_CLEAR(hh, f->pages);
    if (f->wb_fd >= 0)
        wc_engine_fd_close(c, f->wb_fd);
    f->wb_fd = -1;
    if (f->seek_fd >= 0)
        wc_engine_fd_close(c, f->seek_fd);
    f->seek_fd = -1;
    __atomic_store_n(&f->state, WC_FS_OK, __ATOMIC_RELAXED);
    wc_blk_disown(&f->lock);    /* the slot's next file starts unowned */
    f->slot->state = WC_SLOT_FREE;
    __atomic_store_n(&f->live, 0, __ATOMIC_RELEASE);
    f->hint = NULL;
    wc_fw_close(f);
    f->err = 0;
    f->err_unseen = 0;
    __atomic_store_n(&f->let_go, 0, __ATOMIC_RELAXED);
    f->aside_err = 0;
    f->behind = 0;
}

struct wc_file *wc_file_get(struct wc_cache *c, int fd, int *err)
{
    return wc_file_get_known(c, fd, NULL, -1, err);
}

struct wc_file *wc_file_get_known(struct wc_cache *c, int fd,
                                  const struct stat *known, int fl, int *err)
{
    struct stat st;
    struct wc_file *f = NULL;
    int r;

    if (!wc_engine_enter()) {
        *err = -EDEADLK;
        return NULL;
    }
    if (known) {
        st = *known;
    } else if (wc_sys.fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        goto out;
    }

    wc_lock(&c->lock);
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *g = &c->files[i];
        if (g->live && g->slot->dev == (uint64_t)st.st_dev &&
            g->slot->ino == (uint64_t)st.st_ino) {
            g->refs++;
            wc_unlock(&c->lock);
            /* Bytes the program let go of are not shown to it, nor
             * written after, over a file changed since (errors.c (8)). */
            if (__atomic_load_n(&g->let_go, __ATOMIC_RELAXED) &&
                !(fl >= 0 && (fl & O_TRUNC))) {   /* dropped next */
                wc_file_lock(g);
                wc_err_retry_aside(g, WC_WHY_OTHER);
                wc_blk_unlock(&g->lock);
            }
            wc_engine_leave();
            return g;
        }
    }
    if (fl < 0)
        fl = wc_sys.fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH)) {
        wc_unlock(&c->lock);
        r = -EBADF;         /* nothing to write back through */
        goto out;
    }
    if (__atomic_load_n(&c->names_apart, __ATOMIC_ACQUIRE)) {
        wc_unlock(&c->lock);
        r = -ENOENT;        /* no name a replay could use */
        goto out;
    }
    /* The name a replay opens (replay.c (4)). The process may have none
     * to give (no /proc: a chroot without it) or one too long for the
     * slot: a slot without a usable name would make the whole backing
     * file unreplayable (replay.c (6)), so such a file is not cached. An
     * unlinked file's name ends in " (deleted)": it is cached, gone
     * (format.h (10)). */
    char name[sizeof f->slot->path], link[64];
    wc_str_procfd(link, sizeof link, fd);
    ssize_t nl = wc_sys.readlink(link, name, sizeof name - 1);
    if (nl <= 0 || name[0] != '/' || (size_t)nl >= sizeof name - 1) {
        wc_unlock(&c->lock);
        r = nl > 0 && name[0] == '/' ? -ENAMETOOLONG : -ENOENT;
        goto out;
    }
    name[nl] = 0;
    /* The replay opens that name for writing with the guard's
     * credentials, which are this process's (shim/guard.c (7)): a file
     * these cannot open so would be set aside by a replay, not written
     * (replay.c (4)), so it is not cached: one created read-only by the
     * open that returned fd, one opened under other credentials (a
     * daemon's log opened before it left root, a service's output its
     * manager opened). An unlinked file needs no replay; one whose name
     * went while it keeps another link has a name no replay can find. */
    int nameless = wc_name_gone(name, (size_t)nl);
    if (nameless ? st.st_nlink > 0
                 : wc_sys.faccessat(AT_FDCWD, name, W_OK, AT_EACCESS) != 0) {
        wc_unlock(&c->lock);
        r = nameless ? -ENOENT : -EACCES;
        goto out;
    }
    for (uint32_t i = 0; i < c->nfiles && !f; i++)
        if (!c->files[i].live)
            f = &c->files[i];
    if (f && !f->cache) {               /* first claim of this slot */
        uint32_t i = (uint32_t)(f - c->files);
        f->id = i;
        f->cache = c;
        f->wb_fd = -1;
        f->seek_fd = -1;
        f->batch = &c->batches[3 * i];
        f->append_from = WC_NO_APPEND;
        __atomic_store_n(&c->files_hi, i + 1, __ATOMIC_RELEASE);
    }
    if (!f) {
        wc_unlock(&c->lock);
        r = -EMFILE;
        goto out;
    }
    if ((r = wc_store_reserve_slot(&c->store, f->id)) < 0) {
        wc_unlock(&c->lock);
        f = NULL;
        goto out;
    }
    int share = wc_wb_can_share(c, fd, fl);
    int wb = wc_wb_open(c, fd, fl, share);
    if (wb < 0) {
        wc_unlock(&c->lock);
        r = wb;
        f = NULL;
        goto out;
    }
    f->wb_fd = wb;
    f->wb_src = share ? fd : -1;
    f->end_max = WC_FS_MAX_CHECK;
    f->pages = NULL;
    f->hint = NULL;
    wc_fw_close(f);
    f->dirty = NULL;
    f->ndirty = 0;
    /* Fields the flusher reads without the file's lock: atomic. */
    __atomic_store_n(&f->dirty_since, 0, __ATOMIC_RELAXED);
    f->err = 0;
    f->err_unseen = 0;
    __atomic_store_n(&f->state, c->refused ? WC_FS_THROUGH : WC_FS_OK,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&f->err_at, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->space_left, 0, __ATOMIC_RELAXED);
    f->seek_fd = -1;
    f->append_from = WC_NO_APPEND;
    /* The write pattern is the new file's, not the slot's last one. */
    f->scattered = 0;
    f->size_stale = 0;
    f->last_end = 0;
    f->wr_since = 0;
    f->g_ops = f->g_calls = 0;
    f->futile = 0;
    f->seq_pages = 0;
    f->seq_next = 0;
    f->stream_pages = WC_STREAM_PAGES;
    f->as.slow = 0;             /* measured anew (async.c (6)) */
    f->refs = 1;
    f->idle = 0;
    __atomic_store_n(&f->let_go, 0, __ATOMIC_RELAXED);
    f->aside_err = 0;
    f->app_fails = 0;
    f->behind = 0;

    struct wc_fslot *s = f->slot = wc_store_slot(&c->store, f->id);
    s->state = WC_SLOT_FREE;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    s->gen++;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = s->disk_size = (uint64_t)st.st_size;
    s->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
                  (uint64_t)st.st_mtim.tv_nsec;
    s->busy = 0;
    s->shared = 0;
    s->append_run = s->append_wip = s->append_done = 0; /* format.h (9) */
    s->seen_size = (uint64_t)st.st_size;
    s->seen_ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000u +
                       (uint64_t)st.st_ctim.tv_nsec;
    f->changed = 0;
    f->seen_stale = 0;
    f->noted_at = f->note_ns = 0;
    f->note_last = UINT64_MAX;          /* the first note's time alone */
    memcpy(s->path, name, (size_t)nl + 1);
    s->path_len = (uint32_t)nl;
    s->gone = (uint32_t)nameless;
    s->id_sum = wc_fmt_slot_sum(s);                 /* format.h (5) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    s->state = WC_SLOT_LIVE;
    __atomic_store_n(&f->live, 1, __ATOMIC_RELEASE);
    wc_unlock(&c->lock);
    wc_engine_leave();
    return f;

out:
    wc_engine_leave();
    *err = r;
    return NULL;
}

int wc_file_hold(struct wc_file *f)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_lock(&f->cache->lock);           /* refs is the cache lock's */
    f->refs++;
    wc_unlock(&f->cache->lock);
    wc_engine_leave();
    return 0;
}

int wc_file_hold_idle(struct wc_file *f)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_lock(&f->cache->lock);
    f->refs++;
    f->idle++;
    wc_unlock(&f->cache->lock);
    wc_engine_leave();
    return 0;
}

int wc_file_put_idle(struct wc_file *f)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_lock(&f->cache->lock);
    f->idle--;
    wc_unlock(&f->cache->lock);
    wc_engine_leave();
    return wc_file_put(f);
}

int wc_file_publish(struct wc_file *f)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    int r = 0;
    wc_file_lock(f);
    wc_lock(&f->cache->lock);
    int others = f->refs > 1;
    wc_unlock(&f->cache->lock);
    /* Written back now, whoever else keeps it: another thread may open
     * it between this and the caller's put, whose put would then not be
     * the last one, and the close would return before the bytes reach
     * the file. */
    if (wc_file_dirty(f))
        r = wc_flush_locked(f, WC_WHY_CLOSE);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r < 0 ? r : others;
}

void wc_file_noted(struct wc_file *f)
{
    if (!wc_engine_enter())
        return;
    wc_file_lock(f);
    if (wc_file_dirty(f))
        note_disk_now(f);       /* not over a change behind it (8) */
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
}

int wc_file_unwritten(struct wc_file *f)
{
    if (!wc_engine_enter())
        return 1;                       /* cannot tell: keep it */
    wc_file_lock(f);
    int r = wc_file_dirty(f);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

int wc_file_put(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    int r = 0;

    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    wc_lock(&c->lock);
    int last = --f->refs == 0;
    wc_unlock(&c->lock);
    /* Written back even when the file has no name left (unlinked, a
     * memfd): a descriptor this cache never saw (a dup taken before the
     * file was cached, another process's, `tail -f`'s) may still read it,
     * as the kernel's page cache would let it. */
    if (last)
        wc_flush_locked(f, WC_WHY_CLOSE);
    r = wc_err_take(f, WC_SEEN_CLOSE);
    wc_err_let_go(f);                   /* errors.c (8) */
    if (last && !wc_file_dirty(f)) {
        wc_file_drop_pages(f);
        wc_lock(&c->lock);
        if (f->refs == 0)
            wc_file_release(c, f);
        wc_unlock(&c->lock);
    }
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

void wc_size_fresh_locked(struct wc_file *f)
{
    struct stat st;
    if (wc_sys.fstat(f->wb_fd, &st) == 0)
        f->slot->size = f->slot->disk_size = (uint64_t)st.st_size;
    f->g_calls++;
    __atomic_store_n(&f->size_stale, 0, __ATOMIC_RELEASE);
}

off_t wc_file_size(struct wc_file *f)
{
    if (__atomic_load_n(&f->size_stale, __ATOMIC_ACQUIRE) &&
        wc_engine_enter()) {
        wc_file_lock(f);
        wc_size_fresh(f);
        wc_blk_unlock(&f->lock);
        wc_engine_leave();
    }
    return (off_t)__atomic_load_n(&f->slot->size, __ATOMIC_RELAXED);
}

int wc_file_past_max(struct wc_file *f, uint64_t off)
{
    if (off <= WC_FS_MAX_CHECK)
        return 0;
    uint64_t max = __atomic_load_n(&f->end_max, __ATOMIC_RELAXED);
    if (max == WC_FS_MAX_CHECK && wc_engine_enter()) {
        wc_file_lock(f);
        max = wc_file_end_max(f, off);
        wc_blk_unlock(&f->lock);
        wc_engine_leave();
    }
    return off > max;
}

static void forget_locked(struct wc_file *f);

off_t wc_file_size_seen(struct wc_file *f, off_t kernel_size)
{
    if (!wc_engine_enter())
        return (off_t)__atomic_load_n(&f->slot->size, __ATOMIC_RELAXED);
    wc_file_lock(f);
    wc_size_fresh(f);
    if ((uint64_t)kernel_size != f->slot->disk_size &&
        wc_flush_locked(f, WC_WHY_OTHER) == 0) {
        forget_locked(f);       /* another process changed the file */
        wc_size_fresh(f);
    }
    off_t size = (off_t)f->slot->size;
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return size;
}

int wc_file_flush(struct wc_file *f, enum wc_reason why)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    int r = wc_flush_locked(f, why);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

/* The kernel serves f from now on, or others changed it: what the cache
 * knew of it (clean pages, its size) is asked again when next needed; the
 * disk notes take the file as it is for their new baseline. Caller holds
 * f->lock; f is clean. */
static void forget_locked(struct wc_file *f)
{
    wc_file_drop_pages(f);
    __atomic_store_n(&f->size_stale, 1, __ATOMIC_RELEASE);
    wc_note_disk(f);
}

void wc_file_forget_locked(struct wc_file *f)
{
    forget_locked(f);
}

void wc_file_end_fresh(struct wc_file *f)
{
    struct stat st;
    if (wc_file_dirty(f) || f->state != WC_FS_OK ||
        wc_sys.fstat(f->wb_fd, &st) != 0)
        return;
    f->g_calls++;
    if ((uint64_t)st.st_size != f->slot->size) {
        forget_locked(f);       /* changed by another: its pages too */
        wc_size_fresh(f);
    }
}

int wc_file_settle(struct wc_file *f)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    int r = wc_flush_locked(f, WC_WHY_OTHER);
    if (r == 0 && (wc_file_dirty(f) || f->err_unseen ||
                   __atomic_load_n(&f->state, __ATOMIC_RELAXED) != WC_FS_OK))
        r = -EBUSY;
    if (r == 0) {
        forget_locked(f);
        f->futile = 0;              /* a new verdict when it is back */
        f->g_ops = f->g_calls = 0;
    }
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

int wc_file_sync(struct wc_file *f, int datasync)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    int r = wc_flush_locked(f, WC_WHY_FSYNC);
    if (r == 0 && datasync != WC_SYNC_WAIT) {
        int s = datasync ? wc_sys.fdatasync(f->wb_fd) : wc_sys.fsync(f->wb_fd);
        if (s < 0)
            r = -errno;
    }
    r = wc_err_sync_done(f, r);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

void wc_file_shared(struct wc_file *f)
{
    if (f && !__atomic_load_n(&f->slot->shared, __ATOMIC_RELAXED))
        __atomic_store_n(&f->slot->shared, 1, __ATOMIC_RELEASE);
}

int wc_file_invalidate(struct wc_file *f, enum wc_reason why)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    int r = wc_flush_locked(f, why);
    /* The size others may have changed is asked when next needed, not
     * now: a program that takes and drops several locks before its next
     * read or write (SQLite: five per transaction) asks once. */
    if (r == 0)
        forget_locked(f);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

int wc_file_kernel_begin(struct wc_file *f, enum wc_reason why)
{
    if (!wc_engine_enter())
        return 0;
    wc_file_lock(f);
    wc_flush_locked(f, why);        /* an error is kept for fsync, close */
    return 1;
}

void wc_file_kernel_end(struct wc_file *f, int changed, enum wc_reason why)
{
    if (changed && wc_flush_locked(f, why) == 0)
        forget_locked(f);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
}

/* wc_file_truncate's work. Caller holds f->lock. */
static int truncate_locked(struct wc_file *f, off_t size)
{
    wc_async_settle(f);                 /* async.c (1) */
    wc_size_fresh(f);
    int r = 0;
    /* Growing the file exposes its new bytes: the data written below the
     * old end goes first (data before metadata). Shrinking needs no
     * flush: the dirty bytes below `size` stay cached. The kernel decides
     * errors (EFBIG, EPERM, ETXTBSY...) before anything is dropped. A
     * write-back that fails here is recorded (errors.c) and reported by
     * fsync and close, as the kernel reports one: the truncate is still
     * made, and its answer is the kernel's. */
    if ((uint64_t)size > f->slot->disk_size && f->ndirty)
        (void)wc_flush_below(f, WC_WHY_TRUNCATE, (uint64_t)size);
    /* A shrink is recorded first: a replay never brings back bytes past
     * it (format.h (5)). */
    uint64_t old_size = f->slot->size;
    if ((uint64_t)size < old_size)
        f->slot->size = (uint64_t)size;
    wc_disk_busy(f);
    if (wc_sys.ftruncate(f->wb_fd, size) < 0) {
        r = -errno;
        f->slot->size = old_size;
        wc_note_disk(f);
        return r;
    }
    wc_note_disk(f);
    uint64_t n = (uint64_t)size;
    struct wc_page *p, *tmp;
    HASH_ITER(hh, f->pages, p, tmp) {
        uint64_t start = p->index << WC_PAGE_SHIFT;
        if (start >= n) {
            wc_page_drop(f, p);
        } else if (n - start < WC_PAGE_SIZE) {
            unsigned cut = (unsigned)(n - start);
            struct wc_brec *rec = wc_page_rec(f->cache, p);
            wc_range_cut(rec, cut);
            /* Bytes past the new end read as zeros if the file grows. */
            memset(wc_page_data(f->cache, p) + cut, 0, WC_PAGE_SIZE - cut);
            if (rec->nr == 0 && !(rec->flags & WC_BR_UPTODATE))
                wc_page_drop(f, p);
        }
    }
    f->slot->size = f->slot->disk_size = n;
    wc_file_set_append(f, WC_NO_APPEND);
    WC_CHECK_FILE(f);
    return r;
}

int wc_file_truncate(struct wc_file *f, off_t size)
{
    if (size < 0)
        return -EINVAL;
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    int r = truncate_locked(f, size);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

int wc_file_open_truncated(struct wc_file *f)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    int empty = !f->pages &&
                !__atomic_load_n(&f->size_stale, __ATOMIC_RELAXED) &&
                f->slot->size == 0 && f->slot->disk_size == 0;
    int r = empty ? 0 : truncate_locked(f, 0);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

