/*
 * cache_int.h - the engine's structures, shared by the files of cache/.
 *
 * Locks (what each protects) and their order:
 *
 *   wc_file.lock   the file's pages (hash, dirty list, hint), i_size,
 *                  disk_size, the page contents and block records of its
 *                  pages, its error state and counters. The kernel's
 *                  i_rwsem and page lock in one: held across a whole write,
 *                  dropped only to probe user memory after a fault.
 *   wc_cache.lock  the block allocator (wc_store), the clean-page LRU, the
 *                  file-slot table (claiming, releasing, refs), the totals,
 *                  the free-space budgets of the file systems (space[]).
 *   wc_cache.aq_lock  the queue of write-back batches handed to the
 *                  flusher (async.c); a leaf, taken under a file lock or
 *                  alone. A batch's pages are the file lock's, but from
 *                  its post to its reap only the batch's writer reads them,
 *                  without any lock (async.c (1), (2)).
 *
 *   Order: file lock, then cache lock. A thread that holds the cache lock
 *   (or another file's lock) only ever *tries* a file lock (eviction).
 *   No lock is held across a call that can run user code.
 *
 *   One writer (wc_config.solo): while the program has one thread, a
 *   write enters its file without the lock's atomic instructions
 *   (wc_file_enter): it sets the file's solo_busy, then checks that no
 *   other thread is intruding (c->intruders). The only other thread, the
 *   flusher, intrudes for its deadline passes (wc_cache_flush_expired;
 *   the batches it writes for streams take no file lock: async.c (2)):
 *   it raises c->intruders, makes every thread of the process pass a full
 *   memory barrier (membarrier), then takes a file's lock and waits for
 *   its solo_busy to clear. Either the writer's solo_busy was visible after the barrier
 *   and the flusher waits for it, or the writer sees c->intruders and
 *   takes the lock itself: never both inside. The flusher waits holding
 *   only that file's lock, the outermost engine lock, so the writer can
 *   finish whatever it takes meanwhile. Off without membarrier, and in
 *   the ThreadSanitizer build (which cannot see that barrier).
 *
 *   Many writers: with threads, wc_file.lock is a biased lock
 *   (wcache/blk.h): the thread that keeps writing a file enters its fast
 *   write (wc_write_fast) without the mutex's atomic instructions; every
 *   other entry takes the mutex, which first revokes a bias another
 *   thread holds (a try-lock gives up instead if that owner is inside).
 *   The flusher intrudes on owners as on the one writer, by c->intruders,
 *   without revoking (cache.c file_lock), and so does a pass over every
 *   file while the program has threads (wc_flush_all_entered: pressure,
 *   sync, fork, exec, exit; wc_cache_close): one membarrier for the pass,
 *   and the owners keep their bias.
 *
 * Names (both layers, README "Names"): a function used in one file is
 * static, without prefix, named for what it does; one used across files is
 * wc_<concept>_<verb> (wc_store_*, wc_page_*, wc_err_*, wc_wb_*,
 * wc_engine_*; in the shim wc_reg_*, wc_fd_*, wc_shim_*...), declared in
 * the layer's header (this one, shim/shim.h, or include/wcache/ for what
 * crosses layers); the suffix says what the
 * caller holds: _locked (the object's lock), _entered (inside
 * wc_engine_enter); wc__ marks entry points for tests only and the
 * assembly labels of the non-faulting copy (ucopy.c).
 */
#ifndef WCACHE_CACHE_INT_H
#define WCACHE_CACHE_INT_H

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

#include "enter.h"
#include "wcache/blk.h"
#include "seekio.h"
#include "store.h"
#include "wcache/cache.h"
#include "wcache/clock.h"
#include "wcache/ucopy.h"

/* uthash without malloc (the write path may run in a signal handler) and
 * without exit() on allocation failure. */
void *wc_hash_alloc(size_t size);
void wc_hash_free(void *p, size_t size);
#define uthash_malloc(sz) wc_hash_alloc(sz)
#define uthash_free(p, sz) wc_hash_free(p, sz)
#define HASH_NONFATAL_OOM 1
#define HASH_FUNCTION(key, len, hv)                                        \
    ((hv) = (unsigned)((*(const uint64_t *)(key) * 0x9E3779B97F4A7C15ull) >> 32))
#define HASH_KEYCMP(a, b, len)                                             \
    (*(const uint64_t *)(a) != *(const uint64_t *)(b))
#include <uthash.h>

struct wc_file;

/* One per block of the store: page i lives in block i. */
struct wc_page {
    uint64_t index;             /* page index in the file (hash key) */
    UT_hash_handle hh;          /* in file->pages (file lock) */
    struct wc_file *file;       /* owner; NULL when the block is free */
    struct wc_page *lru_prev;   /* clean-page LRU (cache lock) */
    struct wc_page *lru_next;
    struct wc_page *dnext;      /* file->dirty list (file lock) */
    uint32_t block;             /* == this page's number */
    uint8_t on_lru;             /* on the clean LRU (cache lock) */
    uint8_t dirty;              /* on file->dirty (file lock) */
    uint8_t wb;                 /* in the file's write-back in flight
                                   (async.c; file lock) */
};

/* Blocks a file keeps for reuse, given back when the store runs out
 * (pages.c steal_stashes) and when the file is released: a stream's whole
 * batch (WC_STREAM_PAGES, written back at once), so that none of its
 * blocks goes through the shared list to another thread's stream, whose
 * core then takes the block's cache lines over from this one. 64 let
 * half of each batch go: two threads on two files 0.91-0.93x the time
 * with 128 (paired medians of 25 alternating runs, twice; an earlier
 * 1.4% from unpaired medians of 15 was this VM's noise), for 256 KiB
 * more that an idle stream holds until the store needs it. */
#define WC_STASH 128

/* A file's write-back in the background (async.c, where the states are
 * drawn): one batch at a time, f->batch[2], written by whichever thread
 * claims it first, the flusher or a thread that needs the file settled. */
enum { WC_AS_IDLE = 0, WC_AS_POSTED, WC_AS_RUNNING, WC_AS_DONE };
struct wc_async {
    int state;                  /* atomic: WC_AS_*; IDLE -> POSTED and
                                   DONE -> IDLE under the file lock */
    int waiters;                /* atomic: a settler sleeps on `state` */
    int fd;                     /* f->wb_fd when posted */
    int err;                    /* the writer's -errno, or 0 */
    uint64_t done;              /* bytes it wrote, from the batch's start */
    uint32_t calls;             /* system calls it made */
    uint8_t due;                /* a stream's next batch waits for this
                                   one (file lock) */
    uint8_t slow;               /* the file's last stream batches in a
                                   row that took more than
                                   WC_ASYNC_PAGE_NS a page: its write-back
                                   waits on something other than this CPU
                                   (file lock; async.c (6)) */
    uint64_t ns;                /* how long the batch took its writer */
    uint8_t queued;             /* on c->aq (c->aq_lock) */
    struct wc_file *qnext;      /* c->aq (c->aq_lock) */
};

struct wc_file {
    struct wc_blk lock;         /* see the table above; biased to the
                                   thread that writes it (wcache/blk.h) */
    struct wc_cache *cache;
    uint32_t id;                /* slot number */
    int live;                   /* slot in use (cache lock to change;
                                   atomic: the flusher reads it unlocked) */
    int solo_busy;              /* atomic: the one writer is inside the
                                   file without its lock (the locks) */
    int refs;                   /* references from wc_file_get (cache lock) */
    int idle;                   /* of them, those that stand for no
                                   description (wc_file_hold_idle; cache
                                   lock) */
    int wb_fd;                  /* our write-back descriptor */
    int wb_src;                 /* the program's fd it was duplicated from
                                   (-1: a description of our own) */
    uint64_t end_max;           /* writes ending past this go to the
                                   kernel: the largest size the file may
                                   have (wc_file_max_size), asked once a
                                   write reaches past WC_FS_MAX_CHECK
                                   (UINT64_MAX: no limit below
                                   WC_MAX_CACHED_END) */
    struct wc_fslot *slot;      /* mapped slot: the file's identity,
                                   i_size and size on disk live there only
                                   (a replay reads them) */
    struct wc_page *pages;      /* uthash head: every page of the file */
    struct wc_page *hint;       /* the page written last */
    /* The fast write's window (write.c invariant W1): a write starting
     * at last_end, an append (fw_end[1]) or not ([0]), that ends below
     * fw_end[append] is the fast write's, into fw_data at the page's
     * offset, extending the range whose end fw_hi points at. 0: closed.
     * Opened by write_iter as it leaves f; closed by every other entry
     * into f (wc_file_enter, wc_file_lock, wc_file_trylock, cache.c
     * file_lock): what it was made from stays as it was while only the
     * fast write enters. */
    uint64_t fw_end[2];
    uint8_t *fw_data;
    uint16_t *fw_hi;
    struct wc_page *dirty;      /* pages with dirty ranges, unordered */
    uint32_t ndirty;            /* pages on that list */
    uint64_t dirty_since;       /* CLOCK_MONOTONIC ns of the oldest dirty
                                   byte; 0 when clean */
    uint64_t append_from;       /* start of the run of bytes appended
                                   since the last flush, written back at
                                   the real end of file; WC_NO_APPEND */
    struct wc_batch *batch;     /* write-back scratch: [0], [1] flush.c's
                                   (file lock), [2] the batch in flight
                                   (async.c) */
    int changed;                /* the engine changed the file on disk
                                   since wc_note_disk last looked */
    uint64_t noted_at;          /* CLOCK_MONOTONIC ns of the last disk
                                   note's fstat, and what it took: */
    uint64_t note_ns, note_last;/* the lesser of the last two, and the
                                   last: the notes' rate (file.c) */
    int seen_stale;             /* the slot's seen_* were not taken after
                                   the last change (the file was clean
                                   then; busy stays set): taken when it
                                   next becomes dirty (wc_note_disk_due),
                                   or where fstat is slow, by the first
                                   note the rate allows after that */
    int let_go;                 /* the program let go of the file with
                                   its bytes unwritten (errors.c (8)) */
    int aside_err;              /* the last recovery file errors.c (8)
                                   could not make (-errno), or 0 */
    int behind;                 /* errors.c (8): the file changed behind
                                   the engine while it held bytes the
                                   program let go of; they go aside, and
                                   the disk note keeps the state before
                                   (file lock) */
    unsigned app_fails;         /* appends' retries of a failed appended
                                   run that failed in a row (write.c
                                   write_through; file lock) */
    uint64_t app_next_ns;       /* none before this (CLOCK_MONOTONIC) */
    uint64_t seq_next;          /* page after the last one a write
                                   completed (file lock) */
    uint32_t stream_pages;      /* a stream's batch: WC_STREAM_PAGES, or
                                   WC_REMOTE_STREAM_PAGES for a file whose
                                   writes are round trips to a server
                                   (wc_file_remote) (file lock) */
    uint32_t seq_pages;         /* pages completed in ascending order up
                                   to seq_next: a stream (write.c) */
    uint64_t last_end;          /* where the last write ended, 0 for
                                   none: a write starting there at EOF
                                   continues a stream (write.c) */
    uint8_t size_stale;         /* atomic: i_size is to be asked of the
                                   kernel before it is next used
                                   (wc_size_fresh): set by
                                   wc_file_invalidate, whose file has no
                                   page and size == disk_size, so a replay
                                   finds nothing to write meanwhile */
    uint8_t scattered;          /* the last write-back was for scattered
                                   writes (write.c): until a write
                                   continues the last one, writes to the
                                   file while it is clean go straight to
                                   the kernel (file lock) */
    uint32_t wr_since;          /* cached writes since the last flush
                                   (write.c: scattered writes) */
    uint32_t g_ops;             /* the gain meter (write.c): writes and
                                   reads the engine took for the file in
                                   the current window, */
    uint64_t wb_bytes;          /* bytes written back (file lock) */
    uint32_t g_calls;           /* and the system calls it made for them
                                   (write-back, writes sent through, size
                                   and read-fill calls) (file lock) */
    uint8_t futile;             /* a window ended with about one system
                                   call per operation: caching the file
                                   gains nothing (write.c; file lock) */
    uint32_t stash[WC_STASH];   /* blocks a recycling flush freed, kept
                                   for this file's next new pages (file
                                   lock): streams to two files on two
                                   threads do not trade blocks, and their
                                   cache lines, through the shared list */
    uint32_t nstash;
    int recycle;                /* the flush running frees the blocks of
                                   the pages it cleans (flush.c (6)) */
    struct wc_async as;         /* the write-back in flight (async.c) */
    int err;                    /* last write-back error, -errno, or 0 */
    unsigned err_unseen;        /* WC_SEEN_* bits still to report it to */
    int state;                  /* enum wc_fstate (errors.c: the diagram);
                                   atomic, as dirty_since and err_at: the
                                   flusher reads them without the lock */
    uint64_t err_at;            /* CLOCK_MONOTONIC ns of the last failed
                                   write-back */
    int64_t space_left;         /* bytes the write path may still cache
                                   before the next fstatfs (errors.c) */
    int seek_fd;                /* our own description for lseek+write when
                                   positional writes are refused; -1 */
    /* counters, folded into the cache totals on release */
    uint64_t n_writes, n_bytes, n_through, n_faults;
} __attribute__((aligned(64)));  /* adjacent slots share no cache line:
                                        two threads on two files do not
                                        slow each other (false sharing) */

enum { WC_SEEN_FSYNC = 1, WC_SEEN_CLOSE = 2 };

/* A file's error state (errors.c). */
enum wc_fstate {
    WC_FS_OK = 0,     /* caching */
    WC_FS_FAILED,     /* a write-back failed: pass through, retry the
                         cached data at consistency points */
    WC_FS_THROUGH,    /* positional writes refused: pass through for good,
                         write back with lseek+write */
};

#define WC_NO_APPEND UINT64_MAX
/* No file system's limit is below this; past it the kernel decides. */
#define WC_MAX_CACHED_END ((uint64_t)1 << 40)
/* A file reaching past this size has its file system's limit asked
 * (wc_file_max_size): the kernel refuses writes past a FAT file's 4 GiB,
 * an ext2 or ext3 file's 16 GiB with 1 KiB blocks (a short count, then
 * EFBIG), which the cache must not take first (probe P). File systems
 * whose limit is lower still (minix) are not asked. */
#define WC_FS_MAX_CHECK ((uint64_t)64 << 20)
/* Segments per write-back call. Well under IOV_MAX: a batch lives in the
 * file (three per file: flush.c's two, async.c's), and an append run must
 * fit one call, so that it
 * lands at the end of file atomically, as one kernel write would. */
#define WC_WB_SEGS 128
/* A stream of this many pages completed in ascending order at the end of
 * the file (rewrites of cached data are not a stream: they stay cached) is
 * written back at once (one pwritev), by the writer or, where that
 * write-back is slow, by the flusher while the writer goes on (async.c):
 * its blocks are then recycled warm instead of the stream taking new ones
 * until close or the dirty limit. */
#define WC_STREAM_PAGES ((uint32_t)WC_WB_SEGS - 2)
/* The same for a file on a server (FUSE, a network file system: the shim
 * found its writes to be round trips, wc_file_remote): batches of 128 KiB
 * go to the flusher from the first, so that the write-back overlaps the
 * program's own work early (a file of 440 KiB wrote no batch before its
 * close with 126 pages a batch). */
#define WC_REMOTE_STREAM_PAGES 32u
_Static_assert(WC_STASH >= WC_STREAM_PAGES, "a stream's batch fits the stash");
/* Clean pages kept for reads before their blocks are recycled for new
 * data instead of reserving fresh ones (pages.c, wc_page_get): 2 MiB. */
#define WC_CLEAN_KEEP 512u
/* A file with this many dirty pages, written fewer than 1.5 times each on
 * average since its last flush (most pages once: scattered writes, which
 * gain nothing from being held), is written back at once and its blocks
 * recycled (write.c): every fresh block costs a first touch (13-40 us in
 * this VM, measured) where a recycled one costs nothing. */
#define WC_SCATTER_PAGES 256u
/* The longest append run kept before it is written back. */
#define WC_APPEND_MAX ((uint64_t)(WC_WB_SEGS - 2) << WC_PAGE_SHIFT)
/* The gain meter's window (write.c): after this many operations on a
 * file, the system calls the engine made for them are counted; three for
 * four operations or more is no gain. */
#define WC_GAIN_OPS 64u

struct wc_batch {
    struct iovec iov[WC_WB_SEGS];
    struct {
        struct wc_page *page;
        uint16_t lo, hi;
    } ent[WC_WB_SEGS];
    int n;
    uint64_t start;             /* file offset of iov[0] */
    uint64_t end;               /* file offset after the last segment */
};

#define WC_SPACE_DEVS 8         /* file systems with a free-space budget */

struct wc_cache {
    struct wc_lock lock;        /* see the table above */
    struct wc_store store;
    /* Read by every write and written rarely: kept off the cache lines
     * of the fields below, which change with every page dirtied or
     * cleaned (two threads writing two files took that line from each
     * other's next write: 16% of wc_write_fast's samples on one load). */
    struct wc_page *pages;      /* nblocks entries */
    struct wc_file *files;      /* nfiles entries */
    struct wc_batch *batches;   /* 3 per file */
    void (*aq_kick)(void);      /* atomic: wakes the flusher; NULL: no
                                   background write-back */
    long bg_page_ns;            /* wc_config.bg_page_ns, 0 replaced */
    uint32_t nfiles;
    uint32_t files_hi;          /* atomic, only grows: files[i] for i at
                                   or past it was never claimed, so scans
                                   stop there (each entry is a page or
                                   more: a scan of all would fault them
                                   all in) */
    const int *solo;            /* wc_config.solo when membarrier works,
                                   else NULL (the locks, above) */
    int intruders;              /* atomic: flusher passes, and passes
                                   over every file with threads, under
                                   way (cache.c intrude) */
    int intrude_stuck;          /* atomic: membarrier refused, intruders
                                   stays raised */
    size_t bypass;              /* bytes from which writes go through */
    uint64_t max_end;           /* writes reaching past this go to the
                                   kernel, which decides: RLIMIT_FSIZE
                                   (EFBIG, SIGXFSZ) and s_maxbytes (ext4:
                                   16 TiB), capped at WC_MAX_CACHED_END
                                   (wc_cache_limits_changed) */
    int noappend;               /* pwritev2 knows RWF_NOAPPEND: write back
                                   through a dup of the program's own
                                   descriptor, O_APPEND or not (probed) */
    void (*warn)(const char *msg); /* wc_config.warn, NULL replaced */
    const struct wc_fd_ops *fds;/* where our descriptors go, and who is
                                   told when they close (wc_config.fds;
                                   never NULL: a default) */
    int names_apart;            /* atomic: no new file is cached
                                   (wc_cache_names_apart) */
    int refused;                /* pwritev/pwritev2 were refused (EPERM,
                                   ENOSYS: a seccomp filter): write-back
                                   uses lseek+write (errors.c) */
    int fault_extends;          /* this kernel moves i_size to pos when a
                                   write past EOF copies nothing (it faults
                                   the source in only after a failed copy,
                                   and write_end sets pos + 0); probed once
                                   on the backing file */
    /* Written as pages are dirtied, cleaned, posted and recycled. */
    _Alignas(64)
    struct wc_lock aq_lock;     /* the queue below; a leaf: nothing is
                                   taken or waited for under it */
    struct wc_file *aq;         /* files with a write-back posted, for
                                   the flusher (async.c) */
    struct wc_page *lru_head;   /* oldest clean page (cache lock) */
    struct wc_page *lru_tail;
    uint32_t nlru;              /* pages on the LRU (cache lock) */
    uint32_t dirty_pages;       /* atomic: pages with dirty ranges */
    uint32_t dirty_limit;       /* pages that start write-back (atomic:
                                   wc_cache_fit_dirty lowers it) */
    struct wc_stats totals;     /* cache lock; released files folded in */
    struct wc_space {           /* cache lock: bytes that may still be
                                   cached on a file system (st_dev) before
                                   the next fstatfs (errors.c) */
        uint64_t dev;
        int64_t left;
        int64_t inflight;       /* room taken by writes on their way to
                                   the kernel, which fstatfs does not
                                   show yet (errors.c (7)) */
        int tight;              /* no room to cache: every write to the
                                   kernel until fstatfs shows plenty */
        uint64_t lag_bavail;    /* a late file system's f_bavail as last
                                   read, and the bytes sent (wc_space.
                                   sent) when it last moved and at the
                                   last reading (errors.c (4c)) */
        uint64_t lag_base, lag_prev;
    } space[WC_SPACE_DEVS];
    uint64_t sent_direct;       /* atomic: bytes written to files with
                                   room taken (wc_cache_space_done) */
    const uint64_t *sent;       /* wc_config.sent, or NULL */
    uint32_t space_next;        /* the entry a new file system takes */
};

/* The bound of a scan of c->files (entries never claimed are not live). */
static inline uint32_t wc_files_hi(struct wc_cache *c)
{
    return __atomic_load_n(&c->files_hi, __ATOMIC_ACQUIRE);
}


/* An iovec array of at most this many entries is copied from the
 * program once and read from the copy (the kernel's UIO_FASTIOV is 8);
 * a longer one is read in place, entry by entry. */
#define WC_IOV_SNAP 16

/* The kernel's checks before a read or write, in its order: EINVAL for a
 * negative position; one buffer (!vec): EFAULT outside user space; an
 * iovec array (vec; *iov itself may be NULL or unreadable): its
 * import_iovec checks and clamp (write.c), *iov pointed at snap when
 * the array was copied there; EINVAL when pos plus the count overflows.
 * Returns the count clamped to MAX_RW_COUNT, or -errno. */
ssize_t wc_iovec_check(const struct iovec **iov, int iovcnt,
                       struct iovec *snap);
static inline ssize_t wc_rw_count(int vec, const void *buf, size_t len,
                                  const struct iovec **iov, int iovcnt,
                                  off_t pos, struct iovec *snap)
{
    if (pos < 0)
        return -EINVAL;
    if (vec) {
        ssize_t n = wc_iovec_check(iov, iovcnt, snap);
        if (n < 0)
            return n;
        len = (size_t)n;
    } else if (!wc_access_ok(buf, len)) {
        return -EFAULT;
    }
    if ((off_t)((uint64_t)pos + len) < 0)
        return -EINVAL;
    return (ssize_t)(len > WC_MAX_RW_COUNT ? WC_MAX_RW_COUNT : len);
}

/* ---- the cache (cache.c) -------------------------------------------- */


/* Flush every file; release files whose last close could not write back
 * and that are now clean. Caller is inside the engine, holds no lock. */
int wc_flush_all_entered(struct wc_cache *c, enum wc_reason why);
/* forget_locked (file.c) for a caller that holds f->lock and wrote f
 * back: its clean pages dropped, its size asked again when needed. */
void wc_file_forget_locked(struct wc_file *f);
/* File system `dev` is too full to cache a write (errors.c (5)): every
 * live file on it writes back what it holds and gives up its grant of
 * room. Caller is inside and holds no file lock. Returns 0 or the first
 * -errno. */
int wc_space_settle_entered(struct wc_cache *c, uint64_t dev);

/* Positional write of v[0..n) at pos on descriptor fd, never appending
 * (RWF_NOAPPEND where the kernel has it: fd may share an O_APPEND
 * description); -1 with errno as the call left it. No lock: the writer of
 * a background batch (async.c) calls it too. */
ssize_t wc_write_at_fd(struct wc_cache *c, int fd, const struct iovec *v,
                       int n, uint64_t pos);
/* The same on f's write-back descriptor, with the fallback when the
 * positional calls are refused (errors.c). Caller holds f->lock. */
ssize_t wc_write_at(struct wc_file *f, const struct iovec *v, int n,
                    uint64_t pos);

/* ---- pages (pages.c) ------------------------------------------------ */

/* A page for index `idx` of f, existing or new (*isnew set). Caller holds
 * f->lock. NULL with *err = -ENOSPC when no block can be had even after
 * eviction and write-back. errno is left as it was. */
struct wc_page *wc_page_get(struct wc_file *f, uint64_t idx, int *isnew,
                            int *err);

/* Drop page p from f and free its block. Caller holds f->lock. */
void wc_page_drop(struct wc_file *f, struct wc_page *p);
/* A page of f became clean after write-back: keep it on the LRU if all its
 * bytes are valid, else free it. Caller holds f->lock. */
void wc_page_cleaned(struct wc_file *f, struct wc_page *p);
/* A clean page is about to be written: take it off the LRU. */
void wc_page_dirtied(struct wc_file *f, struct wc_page *p);

static inline struct wc_brec *wc_page_rec(struct wc_cache *c,
                                          const struct wc_page *p)
{
    return wc_store_brec(&c->store, p->block);
}

static inline uint8_t *wc_page_data(struct wc_cache *c,
                                    const struct wc_page *p)
{
    return wc_store_block(&c->store, p->block);
}

/* Append [s, e) of page p, a range of its record, to batch bt, which it
 * starts or continues (the caller checks that it does, and the room). */
static inline void wc_batch_push(struct wc_cache *c, struct wc_batch *bt,
                                 struct wc_page *p, uint64_t s, uint64_t e)
{
    uint64_t base = p->index << WC_PAGE_SHIFT;
    if (bt->n == 0)
        bt->start = s;
    bt->iov[bt->n].iov_base = wc_page_data(c, p) + (s - base);
    bt->iov[bt->n].iov_len = (size_t)(e - s);
    bt->ent[bt->n].page = p;
    bt->ent[bt->n].lo = (uint16_t)(s - base);
    bt->ent[bt->n].hi = (uint16_t)(e - base);
    bt->n++;
    bt->end = e;
}

/* ---- a file's life (file.c) ----------------------------------------- */

/* Give the blocks f keeps for its next pages (f->stash) back to the
 * store; returns how many. Caller holds f->lock and c->lock. */
static inline int wc_file_stash_free(struct wc_cache *c, struct wc_file *f)
{
    int n = (int)f->nstash;
    while (f->nstash)
        wc_store_free(&c->store, f->stash[--f->nstash]);
    return n;
}

/* Start (at `from`) or end (WC_NO_APPEND) f's run of appended bytes, in
 * memory and in its slot for a replay (format.h (9)): stored before the
 * run's first byte is claimed, cleared before a positional write enters
 * it. Caller holds f->lock. */
static inline void wc_file_set_append(struct wc_file *f, uint64_t from)
{
    f->append_from = from;
    if (f->slot) {
        f->slot->append_wip = 0;
        f->slot->append_done = 0;
        __atomic_store_n(&f->slot->append_run,
                         from == WC_NO_APPEND ? 0 : from + 1,
                         __ATOMIC_RELAXED);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);    /* before the bytes */
}

/* The largest size the kernel lets f have, from lseek on a description
 * of the engine's own (UINT64_MAX: at least WC_MAX_CACHED_END, or it
 * cannot tell). Caller holds f->lock. */
uint64_t wc_file_max_size(struct wc_file *f);

/* f->end_max for an end of `end` bytes: asked of the kernel once, the
 * first time an end reaches past WC_FS_MAX_CHECK. Caller holds f->lock;
 * stored atomically (wc_file_past_max reads it without the lock). */
static inline uint64_t wc_file_end_max(struct wc_file *f, uint64_t end)
{
    if (end > f->end_max && f->end_max == WC_FS_MAX_CHECK)
        __atomic_store_n(&f->end_max, wc_file_max_size(f), __ATOMIC_RELAXED);
    return f->end_max;
}

/* Drop every page of f without writing anything. Caller holds f->lock. */
void wc_file_drop_pages(struct wc_file *f);

/* Give memory back until the store holds what the room left allows
 * (store.h (3)): free blocks, then the oldest clean pages of files whose
 * lock is free. Takes c->lock; the caller holds no file lock. */
void wc_pages_fit_room(struct wc_cache *c);

/* i_size from the kernel, which wc_file_invalidate left to be asked
 * (size_stale): wc_size_fresh calls it then. Caller holds f->lock. */
void wc_size_fresh_locked(struct wc_file *f);
static inline void wc_size_fresh(struct wc_file *f)
{
    if (__builtin_expect(__atomic_load_n(&f->size_stale, __ATOMIC_RELAXED),
                         0))
        wc_size_fresh_locked(f);
}

/* Before a run of appends begins on a file with nothing to write back:
 * its end of file is asked of the kernel, since another process may have
 * appended to it or truncated it since the engine last wrote it (write.c
 * invariant A1). Caller holds f->lock. */
void wc_file_end_fresh(struct wc_file *f);

/* Enter f for a write: with the one writer (the locks, above) by its
 * solo_busy when nobody intrudes, else by f->lock. Returns what
 * wc_file_leave needs. Either way the caller "holds f->lock" for every
 * function that asks it to. */
enum { WC_IN_SOLO = 0, WC_IN_LOCK = 1, WC_IN_BIAS = 2 };
/* Close f's fast window (write.c invariant W1). Caller has just entered f
 * by another way than the fast write's. */
static inline void wc_fw_close(struct wc_file *f)
{
    f->fw_end[0] = f->fw_end[1] = 0;
}

static inline int wc_file_enter_as(struct wc_file *f, int fast)
{
    const int *solo = f->cache->solo;
    if (solo && __atomic_load_n(solo, __ATOMIC_RELAXED)) {
        __atomic_store_n(&f->solo_busy, 1, __ATOMIC_RELAXED);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);   /* see membarrier */
        if (!__atomic_load_n(&f->cache->intruders, __ATOMIC_RELAXED)) {
            if (!fast)
                wc_fw_close(f);
            return WC_IN_SOLO;
        }
        __atomic_store_n(&f->solo_busy, 0, __ATOMIC_RELEASE);
    } else if (fast &&
               wc_blk_enter(&f->lock, WC_BLK_FILE, &f->cache->intruders)) {
        return WC_IN_BIAS;
    }
    wc_blk_lock(&f->lock);
    if (fast)
        wc_blk_claim(&f->lock);         /* wcache/blk.h, the diagram */
    else
        wc_fw_close(f);
    return WC_IN_LOCK;
}

/* f's lock, for a caller that does not write through wc_file_enter (a
 * pass over files, eviction, reads, truncation): the window closes. */
static inline void wc_file_lock(struct wc_file *f)
{
    wc_blk_lock(&f->lock);
    wc_fw_close(f);
}

static inline int wc_file_trylock(struct wc_file *f)
{
    if (!wc_blk_trylock(&f->lock))
        return 0;
    wc_fw_close(f);
    return 1;
}

static inline int wc_file_enter(struct wc_file *f)
{
    return wc_file_enter_as(f, 0);
}

/* The same for the fast write (wc_write_fast), which may also enter as
 * the file's owner without its mutex (wcache/blk.h invariant (2)). */
static inline int wc_file_enter_fast(struct wc_file *f)
{
    return wc_file_enter_as(f, 1);
}

static inline void wc_file_leave(struct wc_file *f, int locked)
{
    if (locked == WC_IN_SOLO)
        __atomic_store_n(&f->solo_busy, 0, __ATOMIC_RELEASE);
    else if (locked == WC_IN_LOCK)
        wc_blk_unlock(&f->lock);
    else
        wc_blk_exit(WC_BLK_FILE);
}

/* Record in f's slot what the file on disk looks like now (size, ctime),
 * after the engine changed it (format.h (5)): a replay overwrites only a
 * file that still looks so. One fstat, put off while f is clean (a replay
 * has nothing to write for it) until it next becomes dirty, which calls
 * wc_note_disk_due: a file written once and closed costs none. Caller
 * holds f->lock. */
void wc_note_disk(struct wc_file *f);
void wc_note_disk_due(struct wc_file *f);
/* wc_note_disk after a write-back: on a file system whose fstat is a
 * round trip (the last two took over 100 us each), the note of a file still
 * dirty waits until 32 times that has passed since the last, busy kept
 * set meanwhile: a stream's write-back on GlusterFS took an fstat of
 * 0.4-1 ms after each batch of 0.5 MB. Caller holds f->lock. */
void wc_note_disk_wb(struct wc_file *f);
/* The engine is about to change f's file on disk: until wc_note_disk, a
 * replay compares only its identity. Caller holds f->lock. */
void wc_disk_busy(struct wc_file *f);

/* Has f anything to write back: dirty pages, or a size the file on disk
 * does not have yet? Caller holds f->lock. */
static inline int wc_file_dirty(const struct wc_file *f)
{
    return f->ndirty || f->slot->size > f->slot->disk_size;
}

/* Give slot f back: caller holds f->lock and c->lock, f has no pages.
 * Its counters go into the cache's totals first. */
void wc_file_release(struct wc_cache *c, struct wc_file *f);
/* Add f's counters to t. */
void wc_file_fold(struct wc_stats *t, struct wc_file *f);

/* ---- flush.c -------------------------------------------------------- */

/* Write back f's dirty data. Caller holds f->lock. Returns 0 or -errno
 * (recorded in f->err); errno itself is left as it was. */
int wc_flush_locked(struct wc_file *f, enum wc_reason why);
/* The same, writing only bytes below `limit` (<= i_size); the size is not
 * extended unless limit is i_size. */
int wc_flush_below(struct wc_file *f, enum wc_reason why, uint64_t limit);

/* ---- async.c: write-back in the background ------------------------- */

/* async.c invariant (6): the flusher takes a file's stream batches only while
 * writing them back costs more than this a page (the default of
 * wc_config.bg_page_ns, WCACHE_BACKGROUND_NS). Then the write-back
 * waits on something other than this CPU (a FUSE daemon, a server), and
 * the writer gains all of it. Below, the write-back is this CPU copying
 * into the kernel's page cache, which the writer does faster than
 * another core: measured on ext4 (this AMD EPYC VM's two vCPUs, medians
 * of 7, every batch to the flusher against this default): 0.9 us a page
 * written back by the writer; by the flusher, a million 64-byte appends
 * take 38 -> 50 ms of CPU in all (the batch's lines cross to the other
 * core and back) and run 4% faster, 512-byte appends 11% slower, 4 KiB
 * ones 20%, two threads on two files 12%. On bindfs a page costs about
 * 30 us, and a program that computes its 64-byte writes ran 1.75x
 * faster with the flusher writing. */
#define WC_ASYNC_PAGE_NS 4000


/* A stream's completed pages (below the page holding i_size) go to the
 * flusher: 0 when posted, or when they wait for the batch in flight;
 * -1 when the caller writes them back itself (no flusher, f not OK, the
 * last batch failed). Caller holds f->lock, has no write in flight. */
int wc_async_stream(struct wc_file *f);
/* A stream batch of f wrote `bytes` in `ns`: is its write-back slow
 * enough for the flusher to take the next ones (async.c (6))? Caller
 * holds f->lock. */
void wc_async_measure(struct wc_file *f, uint64_t ns, uint64_t bytes);
/* Is a batch of f done and waiting to be reaped? (No lock needed.) */
static inline int wc_async_done(const struct wc_file *f)
{
    return __atomic_load_n(&f->as.state, __ATOMIC_ACQUIRE) == WC_AS_DONE;
}
/* Finish f's batch in flight, if any: write it if nobody has started,
 * else wait for its writer, then clear what it wrote (async.c (3)).
 * After it, no page of f is under write-back. Caller holds f->lock. */
void wc_async_settle_slow(struct wc_file *f);
static inline void wc_async_settle(struct wc_file *f)
{
    if (__builtin_expect(
            __atomic_load_n(&f->as.state, __ATOMIC_RELAXED) != WC_AS_IDLE, 0))
        wc_async_settle_slow(f);
}
/* In a child that inherited the parent's memory mid-write-back (its
 * writer does not exist here): the batch is forgotten, its ranges stay
 * dirty. */
void wc_async_forget(struct wc_file *f);
/* flush.c's end of a write-back, shared with async.c: pages with nothing
 * left to write leave the dirty list (a recycling flush frees their
 * blocks); returns how many. Caller holds f->lock. */
uint32_t wc_flush_clean(struct wc_file *f);
/* The end of a write-back of f (flush.c's, or a batch's reap): the disk
 * notes (format.h (5); `changed`: the engine changed the file on disk),
 * the error r (-errno: recorded, flush.c (5)) or, with everything
 * written, the clean state, and the count of flushes for `why` when it
 * cleaned pages. Caller holds f->lock. */
void wc_flush_end(struct wc_file *f, int r, uint32_t cleaned,
                  enum wc_reason why, int changed);
/* Sort f's dirty list by page index (and count it). Caller holds f->lock. */
void wc_flush_sort(struct wc_file *f);

/* ---- errors.c ------------------------------------------------------- */

/* A write-back of f failed with err (-errno): record it for fsync and
 * close; the file passes through (FAILED). Caller holds f->lock. */
void wc_err_record(struct wc_file *f, int err);
/* A flush of f ended without error: a FAILED file with nothing left to
 * write caches again. Caller holds f->lock. */
void wc_err_flushed(struct wc_file *f);
/* May a flush for `why` write f back now? (0: FAILED, and `why` is not a
 * consistency point; the cached data waits for one.) */
int wc_err_may_retry(const struct wc_file *f, enum wc_reason why);
/* Invariant (8) of errors.c: a FAILED f the program let go of, whose file
 * another process changed since: its bytes go beside the file (or stay
 * cached), never over it. 1 when so (nothing to retry in place), 0 when
 * the retry may go on. Caller holds f->lock. */
int wc_err_retry_aside(struct wc_file *f, enum wc_reason why);
/* A reference to f went: if only idle ones are left and f holds bytes its
 * write-back failed to write, the program has let go of them (errors.c
 * (8)). Caller holds f->lock. */
void wc_err_let_go(struct wc_file *f);
/* wc_config.warn's default. */
void wc_warn_stderr(const char *msg);
/* The recorded error, once per reporter (WC_SEEN_*), or 0. Caller holds
 * f->lock. */
int wc_err_take(struct wc_file *f, unsigned reporter);
/* fsync's answer: r is the result of its flush and real fsync. Reports a
 * recorded error once; clears it when everything is written. Caller holds
 * f->lock. */
int wc_err_sync_done(struct wc_file *f, int r);
/* The write path's slow check, when a write of `count` bytes exceeds
 * f->space_left: 1 when it may be cached (space_left renewed), 0 when it
 * must go to the kernel (not OK, or the file system could not hold the
 * dirty data plus this write). Caller holds f->lock. */
int wc_space_check(struct wc_file *f, size_t count);
/* A write of `count` bytes f sends straight to the kernel takes its room
 * from the file system's budget (errors.c (6)): -1 when the file system
 * must be settled first (wc_space_settle_entered), 1 when room was taken
 * (wc_space_done(f->cache, dev, count) once the kernel has answered:
 * errors.c (7)), 0 when none was (f not OK). Caller holds f->lock. */
int wc_space_direct(struct wc_file *f, size_t count);
/* pwritev semantics with lseek+write, on a description of f's own; f
 * becomes THROUGH. Returns bytes written or -1 with errno. Caller holds
 * f->lock. */
ssize_t wc_err_write_refused(struct wc_file *f, const struct iovec *v, int n,
                          uint64_t pos);

/* ---- ranges (ranges.c) ---------------------------------------------- */

/* Add [a, b) to the record's dirty ranges; -1 (nothing changed) when it
 * would need more than WC_RANGES ranges. */
int wc_range_add(struct wc_brec *r, unsigned a, unsigned b);
/* Remove [a, b) from the dirty ranges (a prefix or a whole range). */
void wc_range_sub(struct wc_brec *r, unsigned a, unsigned b);
/* Remove everything at and past `a`. */
void wc_range_cut(struct wc_brec *r, unsigned a);
/* Are the bytes [a, b) of the page valid (uptodate, or dirty)? */
int wc_range_covers(const struct wc_brec *r, unsigned a, unsigned b);

/* ---- debug builds (-DWC_DEBUG): the invariants, asserted ------------- */

#ifdef WC_DEBUG
/* Check f's structures against the invariants of file.c, pages.c,
 * flush.c, write.c and store.h; abort with a message naming the broken one.
 * Caller holds f->lock. */
void wc_check_file(struct wc_file *f);
#define WC_CHECK_FILE(f) wc_check_file(f)
#else
#define WC_CHECK_FILE(f) ((void)0)
#endif

/* ---- the engine's own descriptors (wbfd.c) ---------------------------- */

/* Placement without a shim: anywhere, close-on-exec. */
extern WC_LOCAL const struct wc_fd_ops wc_engine_fds_default;
/* Close a descriptor the engine kept, and say so (c->fds->closed). */
void wc_engine_fd_close(struct wc_cache *c, int fd);
/* May the write-back descriptor of the program's `fd` (status flags `fl`)
 * be a dup of it? */
int wc_wb_can_share(struct wc_cache *c, int fd, int fl);
/* The write-back descriptor for `fd`: a dup when `share`, else a reopen of
 * its own. Returns it or -errno. */
int wc_wb_open(struct wc_cache *c, int fd, int fl, int share);
/* A write-only description of fd's file of the engine's own (wbfd.c):
 * the descriptor or -errno. */
int wc_wb_reopen(struct wc_cache *c, int fd);

#endif /* WCACHE_CACHE_INT_H */
