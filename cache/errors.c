/*
 * errors.c - errors at the right moment (CONTRACT.md section 4): the error
 * state of a cached file, the free-space check that sends a write to the
 * kernel when the disk could not hold it, and write-back without the
 * positional calls a seccomp filter may refuse.
 *
 * The states of a file (f->state; file lock):
 *
 *            write-back error (wc_err_record)
 *     OK  ------------------------------------->  FAILED
 *      ^  <-------------------------------------   |
 *      |   a retry at a consistency point wrote    |
 *      |   everything (wc_err_flushed)             |
 *      |                                           |
 *      |  pwritev/pwritev2 refused (EPERM, ENOSYS: a seccomp filter):
 *      +--------------------+----------------------+
 *                           v   wc_err_write_refused
 *                        THROUGH (for good)
 *
 *   OK       writes are cached while the file system has room for the
 *            dirty data plus the write (wc_space_check: one fstatfs per
 *            16 MiB cached on a file system, shared by its files as a
 *            budget; never per write, never per file); without room the write goes
 *            through after a flush, so a full disk answers ENOSPC or a
 *            short count to the write that fills it, as without the shim.
 *   FAILED   a write-back failed: the data stays cached (and in the backing
 *            file); new writes go straight to the kernel, which answers
 *            them at once, and their bytes are laid over the cached pages
 *            so a later retry cannot undo them. The cached data is retried
 *            only at consistency points (close, fsync, locks, fork, exec,
 *            exit, calls the shim does not emulate; the deadline flusher at
 *            most once per deadline) and by appends behind an appended
 *            run (2), never by pressure or a full store: no loop of
 *            failing write-backs.
 *   THROUGH  the kernel refused a positional write: write-back and new
 *            writes use lseek+write on a description of the engine's own
 *            (the calls the program itself makes, seekio.h, which the
 *            crash replay shares), flushing first.
 *
 * Reporting (f->err, f->err_unseen), as the kernel's errseq: an error
 * recorded at write-back is reported once to fsync and once to close. An
 * fsync whose retry fails reports that failure. An fsync that writes
 * everything and whose real fsync succeeds reports an error not yet seen
 * by fsync once more, and clears the error: a later close returns 0.
 *
 * Invariants:
 *   (1) f->space_left is 0 or less unless the state is OK; the write path
 *       caches a write only when its length is within space_left (one
 *       compare), and subtracts what it cached.
 *   (2) A FAILED file has f->err < 0. Its cached bytes are retried at
 *       their offsets, in order with the writes that passed through after
 *       them, except a run of appended bytes (append_from kept): that run
 *       goes to the end of the file as it is at the retry (RWF_APPEND),
 *       never at offsets another process may have appended at since (a
 *       full disk shared by two appenders: the retry wrote over the
 *       other's acknowledged records). An append the program makes
 *       meanwhile is a retry point: the run goes first, then the append,
 *       both at the end; if the run fails again, the append gets that
 *       error (it cannot land after a run that is not there; at the
 *       disk's end, before the run, the program's size went back to the
 *       disk's and the retry cut the run there); after k such retries
 *       failed in a row the next waits 2^k ms, at most about a second,
 *       and the appends meanwhile get the error (25,375 failing
 *       write-backs for a logger's 25,500 lines before).
 *   (3) Nothing in FAILED state writes back except at a retry point
 *       (wc_err_may_retry).
 *   (4) Room granted is room the disk still has: a budget made from
 *       fstatfs leaves out the dirty data of every file and what each
 *       live file of that file system was granted and has not cached yet
 *       (space_granted). Without the grants, files each holding up to
 *       WC_SPACE_GRANT could together cache more than the disk holds, and
 *       their write-back fail after their writes had returned success.
 *   (4c) A file system whose f_bavail lags (btrfs: it moves at the
 *       transaction commit, every 30 s, not at the write) has the bytes
 *       this process sent to the kernel since it last moved (written
 *       back, written with room taken, or by the caller itself:
 *       wc_config.sent, the shim's watched writes) left out of it: counted from
 *       the reading before the one that saw it move, as the commit came
 *       somewhere between the two. A 200 MiB btrfs kept f_bavail at
 *       121,856 KB while 124 MB were written, and the cache took 120-330
 *       KB past the disk, their write-back failing with ENOSPC at fsync
 *       and close (probe Q). Bytes sent to other file systems count too
 *       (one total): a margin, never room that is not there. And 1 MiB
 *       and a thousandth of the file system (at most 64 MiB) were left
 *       out besides: its free space is an estimate (metadata reserved
 *       as it goes), and a CI run under load still saw the cache take
 *       238 KB past a 200 MiB disk (errors::btrfs_full, 2026-12-06: the
 *       write-back's ENOSPC then reported by fsync and close, where the
 *       kernel had answered the writes); with that margin (1.2 MB there)
 *       a make test under load saw 242 KB past (2026-12-07), so the
 *       estimate was off by more than 1.4 MB: 4 MiB and a 256th now
 *       (4.8 MB there, at most 64 MiB). The last of such a disk is
 *       written by the kernel, which answers ENOSPC itself.
 *   (4d) A cached write past the end takes the room of the gap it leaves
 *       as well as its own (write.c write_iter): vfat and exFAT have no
 *       holes, and the kernel zero-fills the gap, answering ENOSPC where
 *       it cannot; a write far past the end of a file on a nearly full
 *       exFAT was cached, its write-back failing with ENOSPC at fsync and
 *       close (probe AC F5). On file systems with holes the gap takes no
 *       room: the charge only makes the budget's next renewal (one
 *       fstatfs) come sooner, or sends to the kernel a write that leaves
 *       a gap larger than the disk's room, which it then answers itself.
 *   (5) A write the file system has no room to cache (wc_space_check
 *       fails while the file is OK) is the kernel's, and goes to it only
 *       after every file on that file system has written back what it
 *       holds and given up its grant (wc_space_settle_entered, called by
 *       the write path outside the file's lock): bytes whose writes
 *       returned success reach the disk before a later write can take
 *       their room, as in program order without the cache. The file
 *       system is then tight (wc_space.tight): no write is cached on it
 *       until fstatfs finds room for two budgets past what is dirty and
 *       granted, so that a thread cannot be granted room a write of
 *       another thread, on its way to the kernel, is about to take.
 *   (6) A write the engine sends to the kernel itself (a large one, whole
 *       pages to a clean file, scattered writes: write.c) takes its room
 *       from the same budget (wc_space_direct); when the budget cannot
 *       cover it and fstatfs finds no room for it beside what is dirty
 *       and granted, the file system is settled first, as in (5): the
 *       bytes of a file written in large blocks cannot take the room of
 *       another file's cached ones. So do the writes the shim passes to
 *       the kernel for the descriptions it tracks (a file's first writes,
 *       files that pass through: wc_cache_space_through). Writes nobody
 *       here sees (another process's, glibc's stdio, a descriptor the shim
 *       does not track) can still take the room: the cached bytes'
 *       write-back then fails with ENOSPC, reported at fsync and close,
 *       the bytes kept in the backing file (README, limits).
 *   (7) Room taken by a write on its way to the kernel (6) stays taken
 *       until the kernel has answered it (wc_space_done): a budget made
 *       from fstatfs meanwhile leaves it out as well (wc_space.inflight),
 *       since the disk does not show it yet. Without it, another thread's
 *       renewal counted that room as free and cached into it, and the
 *       write then took it: the cached bytes' write-back failed with
 *       ENOSPC after their writes had returned success. A write whose
 *       room a renewal cannot give is the kernel's after a settle, as in
 *       (5), never uncounted.
 *   (8) A FAILED file the program let go of (f->let_go: its last
 *       description closed, or only idle references were left, with its
 *       bytes unwritten, and the program was told at that close;
 *       wc_err_let_go) is retried in place only while the file is as the
 *       engine last left it: the size and ctime noted after each of its
 *       changes, failed write-backs included (format.h (5)), are the
 *       file's, as a crash replay compares them (replay.c (4)). That
 *       holds until the bytes are written, whether or not the program
 *       opens the file again: the check is made when a description joins
 *       the file too (wc_file_get), before it can read the old bytes or
 *       write after them. A file another process changed since
 *       (rewrote, truncated, wrote into, renamed: it owns the file after
 *       the close) is not written over, which a retry at exit did (the
 *       other's 29 bytes, then zeros, then the old records): the bytes go
 *       beside it, to <path>.wcache-recovered.<pid> (replay.c's
 *       wc_aside_open), at their offsets, synced, the user is told
 *       (wc_config.warn), and the engine forgets them and the error.
 *       Where that file cannot be made, the bytes stay cached (and in the
 *       backing file, for the guard's replay, which applies the same
 *       rule), said once, tried again at consistency points only. A run
 *       of appended bytes alone is retried as (2) says: at the end of the
 *       file, it covers nothing of another's; so is a file with no name
 *       left and its size unchanged (an unlink moved its ctime): in place,
 *       for whoever still holds it.
 *       A FAILED file the program still holds is looked at the same way
 *       at each retry and before each write laid over it (write.c
 *       write_through): a change made around the cache since the failure
 *       (a descriptor opened O_SYNC or O_DIRECT, a stdio stream, another
 *       process) makes the bytes stay cached, never written over it
 *       (f->behind: said once), its reads still seeing them and its
 *       fsync and close told, until it lets go of the file, when they go
 *       beside it as above (a retry at close wrote 200,000 old bytes over
 *       a line the program had since appended through a stream, and over
 *       an O_SYNC write). A description of this process that passes
 *       through retries the bytes before each write (wc_file_kernel_begin)
 *       and, if they stay, writes anyway, as the kernel would: its change
 *       is one made around them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache_int.h"
#include "replay.h"
#include "wcache/sys.h"

/* ---- the error state ------------------------------------------------- */

void wc_err_record(struct wc_file *f, int err)
{
    f->err = err;
    f->err_unseen = WC_SEEN_FSYNC | WC_SEEN_CLOSE;
    __atomic_store_n(&f->err_at, wc_now_ns(), __ATOMIC_RELAXED);
    if (f->state == WC_FS_OK)
        __atomic_store_n(&f->state, WC_FS_FAILED, __ATOMIC_RELAXED);
    __atomic_store_n(&f->space_left, 0, __ATOMIC_RELAXED);
    __atomic_fetch_add(&f->cache->totals.errors, 1, __ATOMIC_RELAXED);
}

void wc_err_flushed(struct wc_file *f)
{
    if (f->state == WC_FS_FAILED && !wc_file_dirty(f)) {
        __atomic_store_n(&f->state, WC_FS_OK,  /* space_left stays 0 */
                         __ATOMIC_RELAXED);
        __atomic_store_n(&f->let_go, 0, __ATOMIC_RELAXED);
        f->aside_err = 0;
        f->app_fails = 0;
        f->behind = 0;
    }
}

int wc_err_may_retry(const struct wc_file *f, enum wc_reason why)
{
    if (f->state != WC_FS_FAILED)
        return 1;
    switch (why) {
    case WC_WHY_PRESSURE:
    case WC_WHY_FULL:
    case WC_WHY_BYPASS:
        return 0;                                        /* (3) */
    default:
        return 1;
    }
}

int wc_err_take(struct wc_file *f, unsigned reporter)
{
    if (!f->err || !(f->err_unseen & reporter))
        return 0;
    f->err_unseen &= ~reporter;
    return f->err;
}

int wc_err_sync_done(struct wc_file *f, int r)
{
    if (r < 0) {
        /* This fsync reports the failure it met (a retry that failed is
         * recorded again for close by the flush). */
        f->err_unseen &= ~WC_SEEN_FSYNC;
        return r;
    }
    int e = wc_err_take(f, WC_SEEN_FSYNC);
    if (!wc_file_dirty(f)) {
        f->err = 0;                 /* everything is written: errseq */
        f->err_unseen = 0;
    }
    return e;
}

/* ---- a retry nobody holds the file for (invariant (8)) ---------------- */

void wc_warn_stderr(const char *msg)
{
    struct iovec v[3] = {{"wcache: ", 8}, {(void *)msg, strlen(msg)},
                         {"\n", 1}};
    int saved = errno;
    (void)!wc_sys.writev(2, v, 3);
    errno = saved;
}

void wc_err_let_go(struct wc_file *f)
{
    if (f->state != WC_FS_FAILED || !wc_file_dirty(f))
        return;
    wc_lock(&f->cache->lock);
    if (f->refs == f->idle)
        __atomic_store_n(&f->let_go, 1, __ATOMIC_RELAXED);
    wc_unlock(&f->cache->lock);
}

/* Is every dirty byte of f in its run of appended bytes? */
static int only_appended(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    if (f->append_from == WC_NO_APPEND)
        return 0;
    for (struct wc_page *p = f->dirty; p; p = p->dnext) {
        struct wc_brec *rec = wc_page_rec(c, p);
        if (rec->nr &&
            (p->index << WC_PAGE_SHIFT) + rec->lo[0] < f->append_from)
            return 0;
    }
    return 1;
}

/* Write f's dirty ranges, clipped at its size, into a new file beside it
 * (replay.c's wc_aside_open); fill aside[len] with that file's name.
 * Returns bytes written, or -errno (the new file removed). */
static int64_t write_aside(struct wc_file *f, char *aside, size_t len)
{
    struct wc_cache *c = f->cache;
    struct wc_fslot *s = f->slot;
    if (s->path_len == 0 || s->path[0] != '/')
        return -ENOENT;
    int fd = wc_aside_open(s->path, getpid(), aside, len);
    if (fd < 0)
        return -errno;
    int64_t total = 0;
    int r = 0;
    for (struct wc_page *p = f->dirty; p && r == 0; p = p->dnext) {
        struct wc_brec *rec = wc_page_rec(c, p);
        uint64_t base = p->index << WC_PAGE_SHIFT;
        for (unsigned i = 0; i < rec->nr && r == 0; i++) {
            uint64_t a = base + rec->lo[i], b = base + rec->hi[i];
            if (b > s->size)
                b = s->size;
            while (a < b && r == 0) {
                ssize_t w = wc_sys.pwrite(fd, wc_page_data(c, p) + (a - base),
                                          (size_t)(b - a), (off_t)a);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    r = w < 0 ? -errno : -EIO;
                else {
                    a += (uint64_t)w;
                    total += w;
                }
            }
        }
    }
    if (r == 0 && wc_sys.ftruncate(fd, (off_t)s->size) < 0)
        r = -errno;
    if (r == 0 && wc_sys.fsync(fd) < 0)
        r = -errno;
    wc_sys.close(fd);
    if (r < 0)
        wc_sys.unlink(aside);
    return r < 0 ? r : total;
}

int wc_err_retry_aside(struct wc_file *f, enum wc_reason why)
{
    struct wc_fslot *s = f->slot;
    struct stat st;
    if (f->state != WC_FS_FAILED || s->busy || only_appended(f))
        return 0;
    int held = !__atomic_load_n(&f->let_go, __ATOMIC_RELAXED);
    if (held && f->behind)
        return 1;                       /* (8): kept until let go */
    /* The file a recovery file could not be made beside waits for a
     * consistency point: the deadline's flusher does not make and remove
     * one on the server every second, nor say so each time. */
    if (f->aside_err && why == WC_WHY_DEADLINE)
        return 1;
    if (wc_sys.fstat(f->wb_fd, &st) != 0)
        return f->behind;
    uint64_t ctime = (uint64_t)st.st_ctim.tv_sec * 1000000000u +
                     (uint64_t)st.st_ctim.tv_nsec;
    if (!f->behind && (uint64_t)st.st_size == s->seen_size &&
        ctime == s->seen_ctime_ns)
        return 0;                       /* as we left it: in place */
    /* A file with no name left (the program unlinked it after the close,
     * or another process did): written back in place like any other
     * (CONTRACT section 4), for whoever still holds it; a recovery file
     * would be a name the kernel never had. */
    if (!f->behind && st.st_nlink == 0 && (uint64_t)st.st_size == s->seen_size)
        return 0;
    f->behind = 1;      /* for good: no later note may take it for ours */
    char aside[sizeof s->path + 64], msg[2 * sizeof aside + 256];
    if (held) {
        /* The program still holds the file: the bytes stay cached (its
         * reads see them), its fsync and close are told, and they go
         * beside the file when it lets go (below). */
        snprintf(msg, sizeof msg, "%s changed by a path around the cache "
                 "after its write-back failed (%s): its cached bytes will "
                 "not be written over the change",
                 s->path_len ? s->path : "a file", strerror(-f->err));
        f->cache->warn(msg);
        return 1;
    }
    int64_t n = write_aside(f, aside, sizeof aside);
    if (n < 0) {
        if (f->aside_err != (int)n) {   /* once per kind of failure */
            snprintf(msg, sizeof msg, "%s changed after its write-back "
                     "failed; the bytes it could not take stay cached "
                     "(cannot save them beside it: %s)",
                     s->path_len ? s->path : "a file", strerror((int)-n));
            f->cache->warn(msg);
        }
        f->aside_err = (int)n;
        return 1;                       /* kept: not written over */
    }
    snprintf(msg, sizeof msg, "%s changed after its write-back "
             "failed (%s); the %lld bytes it could not take are in %s",
             s->path, strerror(-f->err), (long long)n, aside);
    f->cache->warn(msg);
    wc_disk_busy(f);
    wc_file_drop_pages(f);
    s->size = s->disk_size = (uint64_t)st.st_size;
    wc_file_set_append(f, WC_NO_APPEND);
    f->err = 0;
    f->err_unseen = 0;
    __atomic_store_n(&f->state, WC_FS_OK, __ATOMIC_RELAXED);
    __atomic_store_n(&f->let_go, 0, __ATOMIC_RELAXED);
    f->aside_err = 0;
    f->behind = 0;
    wc_note_disk(f);
    return 1;
}

/* ---- room on the file system ------------------------------------------ */

/* Bytes a file system's budget gets from one fstatfs, at most; and what a
 * file takes from it at a time beyond the write at hand. */
#define WC_SPACE_CHECK ((int64_t)16 << 20)
/* btrfs's room left out of its f_bavail, beside what it has not shown
 * yet (invariant (4c)): 4 MiB and a 256th of its size, at most 64 MiB. */
#define WC_BTRFS_MARGIN ((uint64_t)4 << 20)
#define WC_BTRFS_MARGIN_MAX ((uint64_t)64 << 20)
#define WC_SPACE_GRANT ((int64_t)256 << 10)

/* The budget entry of file system `dev` (cache lock), taking the next
 * entry round-robin for a new one. */
static struct wc_space *space_of(struct wc_cache *c, uint64_t dev)
{
    for (int i = 0; i < WC_SPACE_DEVS; i++)
        if (c->space[i].dev == dev)
            return &c->space[i];
    struct wc_space *s = &c->space[c->space_next++ % WC_SPACE_DEVS];
    s->dev = dev;
    s->left = 0;
    s->inflight = 0;
    s->tight = 0;
    s->lag_bavail = s->lag_base = s->lag_prev = 0;
    return s;
}

/* Grant f up to `want` bytes from its file system's budget (cache lock):
 * at least `count` or nothing. */
static int space_take(struct wc_file *f, struct wc_space *s, int64_t count)
{
    if (s->tight || s->left < count)
        return 0;
    int64_t g = count + WC_SPACE_GRANT;
    if (g > s->left)
        g = s->left;
    s->left -= g;
    __atomic_store_n(&f->space_left, g, __ATOMIC_RELAXED);
    return 1;
}

/* Bytes granted to the live files of file system `dev` and not cached yet
 * (cache lock): room they may still fill without asking, which a budget
 * made from what the disk says now must leave to them (invariant (4)).
 * Grants are made under the cache lock and only shrink outside it, so a
 * value read here is never less than what is left of it. */
static uint64_t space_granted(struct wc_cache *c, uint64_t dev)
{
    uint64_t sum = 0;
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *g = &c->files[i];
        if (!__atomic_load_n(&g->live, __ATOMIC_ACQUIRE) ||
            g->slot->dev != dev)
            continue;
        int64_t v = __atomic_load_n(&g->space_left, __ATOMIC_RELAXED);
        if (v > 0)
            sum += (uint64_t)v;
    }
    return sum;
}

/* A new budget for file system `dev` from what fstatfs of fd says, for a
 * write of `count` bytes (called without the cache lock): 1 when the file
 * system has room for the write beside the dirty data of every file (in
 * whole pages, plus a block for a partial one) and the room granted on it
 * (invariant (4)), the budget then the write and half of the rest, at most
 * WC_SPACE_CHECK; 0 when not, the file system then tight (invariant (5))
 * until it has room for two budgets beyond that. */
static int space_renew(struct wc_cache *c, uint64_t dev, int fd,
                       size_t count)
{
    struct statfs sf;
    int saved = errno;
    int r = wc_sys.fstatfs(fd, &sf);
    errno = saved;
    /* No answer, or no limit to report: the kernel decides at write-back,
     * as it would have later anyway. */
    int limited = r == 0 && sf.f_blocks != 0;
    uint64_t bs = 0, avail = 0;
    if (limited) {
        bs = sf.f_frsize ? (uint64_t)sf.f_frsize : (uint64_t)sf.f_bsize;
        avail = (uint64_t)sf.f_bavail * bs;
    }
    wc_lock(&c->lock);
    struct wc_space *s = space_of(c, dev);
    if (limited && (unsigned long)sf.f_type == 0x9123683EUL) {
        /* btrfs (invariant (4c)): what this process sent since f_bavail
         * last moved is not in it yet. */
        uint64_t sent = __atomic_load_n(&c->totals.wb_bytes,
                                        __ATOMIC_RELAXED) +
                        __atomic_load_n(&c->sent_direct, __ATOMIC_RELAXED) +
                        (c->sent ? __atomic_load_n(c->sent, __ATOMIC_RELAXED)
                                 : 0);
        if (s->lag_bavail != (uint64_t)sf.f_bavail) {
            s->lag_bavail = (uint64_t)sf.f_bavail;
            s->lag_base = s->lag_prev;
        }
        s->lag_prev = sent;
        uint64_t unseen = sent - s->lag_base;
        /* And a margin: its free space is an estimate (metadata is
         * reserved as it goes; invariant (4c)). */
        uint64_t margin = WC_BTRFS_MARGIN + (uint64_t)sf.f_blocks * bs / 256;
        if (margin > WC_BTRFS_MARGIN_MAX)
            margin = WC_BTRFS_MARGIN_MAX;
        unseen += margin;
        avail = avail > unseen ? avail - unseen : 0;
    }
    int room = 1;
    int64_t budget = WC_SPACE_CHECK + (int64_t)count;
    if (limited) {
        uint64_t need = ((uint64_t)__atomic_load_n(&c->dirty_pages,
                                                   __ATOMIC_RELAXED)
                         << WC_PAGE_SHIFT) +
                        space_granted(c, dev) + (uint64_t)s->inflight +
                        (uint64_t)count + bs + WC_PAGE_SIZE;
        if (need > avail ||
            (s->tight && avail - need < 2 * (uint64_t)WC_SPACE_CHECK)) {
            room = 0;
        } else {
            uint64_t slack = (avail - need) / 2;    /* others share it */
            budget = (int64_t)count + (slack > (uint64_t)WC_SPACE_CHECK
                                           ? WC_SPACE_CHECK
                                           : (int64_t)slack);
        }
    }
    s->tight = !room;
    s->left = room ? budget : 0;    /* what the disk says now replaces it */
    wc_unlock(&c->lock);
    return room;
}

int wc_space_check(struct wc_file *f, size_t count)
{
    struct wc_cache *c = f->cache;
    if (f->state != WC_FS_OK) {
        __atomic_store_n(&f->space_left, 0, __ATOMIC_RELAXED); /* (1) */
        return 0;
    }
    /* From the file system's budget while it lasts: one fstatfs per
     * WC_SPACE_CHECK bytes cached on it, not one per file. */
    wc_lock(&c->lock);
    int ok = space_take(f, space_of(c, f->slot->dev), (int64_t)count);
    wc_unlock(&c->lock);
    if (ok)
        return 1;
    if (space_renew(c, f->slot->dev, f->wb_fd, count)) {
        wc_lock(&c->lock);
        ok = space_take(f, space_of(c, f->slot->dev), (int64_t)count);
        wc_unlock(&c->lock);
    }
    if (!ok)
        __atomic_store_n(&f->space_left, 0, __ATOMIC_RELAXED);
    return ok;
}

/* Take a write of `count` bytes that goes to the kernel without the cache
 * from the budget of `dev` (cache lock), in flight until wc_space_done
 * (invariant (7)), or say that it must be renewed. */
static int space_spend(struct wc_space *s, size_t count)
{
    if (s->tight || s->left < (int64_t)count)
        return 0;
    s->left -= (int64_t)count;
    s->inflight += (int64_t)count;
    return 1;
}

/* space_spend on dev's budget, renewed once if it cannot cover the write
 * (1: taken), or 0: no room for it beside what is cached and granted,
 * the file system to be settled first (invariants (6), (7)). */
static int space_spend_renew(struct wc_cache *c, uint64_t dev, int fd,
                             size_t count)
{
    wc_lock(&c->lock);
    int ok = space_spend(space_of(c, dev), count);
    wc_unlock(&c->lock);
    if (ok || !space_renew(c, dev, fd, count))
        return ok;
    wc_lock(&c->lock);
    ok = space_spend(space_of(c, dev), count);  /* another may have won */
    wc_unlock(&c->lock);
    return ok;
}

int wc_space_direct(struct wc_file *f, size_t count)
{
    if (f->state != WC_FS_OK)
        return 0;
    return space_spend_renew(f->cache, f->slot->dev, f->wb_fd, count) ? 1
                                                                       : -1;
}

void wc_cache_space_done(struct wc_cache *c, uint64_t dev, size_t count)
{
    __atomic_fetch_add(&c->sent_direct, (uint64_t)count, __ATOMIC_RELAXED);
    wc_lock(&c->lock);
    for (int i = 0; i < WC_SPACE_DEVS; i++) {
        struct wc_space *s = &c->space[i];
        if (s->dev == dev) {
            s->inflight -= (int64_t)count;
            if (s->inflight < 0)        /* the entry was taken anew */
                s->inflight = 0;
            break;
        }
    }
    wc_unlock(&c->lock);
}

int wc_cache_space_through(struct wc_cache *c, uint64_t dev, int fd,
                           size_t count)
{
    if (!wc_engine_enter())
        return 0;
    int known = 0;
    wc_lock(&c->lock);
    for (int i = 0; i < WC_SPACE_DEVS; i++)
        known |= c->space[i].dev == dev;    /* no device is number 0 */
    wc_unlock(&c->lock);
    /* No budget for dev: nothing was ever cached there, nothing to keep
     * room for. */
    int taken = 0;
    if (known && !(taken = space_spend_renew(c, dev, fd, count)))
        wc_space_settle_entered(c, dev);
    wc_engine_leave();
    return taken;
}

/* ---- write-back without positional writes ------------------------------ */

/* The descriptor lseek may move: f's own description (reopened once when
 * the write-back descriptor shares the program's), or -1. */
static int seek_fd(struct wc_file *f);

uint64_t wc_file_max_size(struct wc_file *f)
{
    int saved = errno;
    uint64_t lo = 0, hi = WC_MAX_CACHED_END;
    int fd = seek_fd(f);
    /* lseek refuses an offset past the largest size the file may have
     * (generic_file_llseek_size: s_maxbytes, or ext4's limit for a file
     * without extents) with EINVAL; anything else tells nothing. */
    if (fd < 0 || wc_sys.lseek(fd, (off_t)hi, SEEK_SET) >= 0 ||
        errno != EINVAL) {
        errno = saved;
        return UINT64_MAX;
    }
    while (hi - lo > 1) {           /* lo allowed, hi refused */
        uint64_t mid = lo + (hi - lo) / 2;
        if (wc_sys.lseek(fd, (off_t)mid, SEEK_SET) >= 0)
            lo = mid;
        else
            hi = mid;
    }
    errno = saved;
    return lo;
}

static int seek_fd(struct wc_file *f)
{
    if (f->wb_src < 0)
        return f->wb_fd;
    if (f->seek_fd < 0) {
        int h = wc_wb_reopen(f->cache, f->wb_fd);
        if (h < 0)
            return -1;
        f->seek_fd = h;
    }
    return f->seek_fd;
}

ssize_t wc_err_write_refused(struct wc_file *f, const struct iovec *v, int n,
                          uint64_t pos)
{
    __atomic_store_n(&f->state, WC_FS_THROUGH, __ATOMIC_RELAXED);
    __atomic_store_n(&f->space_left, 0, __ATOMIC_RELAXED);
    int fd = seek_fd(f);
    off_t back = -1;
    if (fd < 0) {
        /* No description of our own: the shared one, offset restored. */
        fd = f->wb_fd;
        back = wc_sys.lseek(fd, 0, SEEK_CUR);
    }
    size_t total = 0;
    ssize_t r = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].iov_len == 0)
            continue;
        ssize_t w = wc_seek_write(fd, v[i].iov_base, v[i].iov_len,
                                  (off_t)(pos + total));
        if (w < 0) {
            r = -1;
            break;
        }
        total += (size_t)w;
        if ((size_t)w < v[i].iov_len)
            break;
    }
    if (back >= 0) {
        int e = errno;
        wc_sys.lseek(fd, back, SEEK_SET);
        errno = e;
    }
    return total ? (ssize_t)total : r;
}
