/*
 * cache.c - the cache: its creation and end, the flushes of all its files
 * (the deadline's, the dirty limit's), and its statistics. A file's life
 * is in file.c; pages, their blocks and eviction in pages.c; the
 * engine's own descriptors, write-back's among them, in wbfd.c.
 *
 * Invariants:
 *   (3) A file slot is live while it has references or dirty pages; a slot
 *       with dirty pages and no references (its last close failed to write
 *       back) is retried by every later flush of the whole cache.
 *   Invariants (1), (2) and (4), of pages and block records, are in
 *   pages.c.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache_int.h"
#include "format.h"
#include "replay.h"
#include "wcache/raw.h"
#include "wcache/sys.h"
#include "wcache/ucopy.h"

__thread struct wc_engine_thr wc_ethr __attribute__((tls_model("initial-exec")));

const char *const wc_reason_names[WC_WHY_COUNT] = {
    "close", "fsync", "deadline", "pressure", "full", "bypass",
    "truncate", "lock", "fork", "exec", "exit", "signal", "other",
};


/* ---- uthash memory: mmap, never malloc ------------------------------- */

/* Freed blocks are kept for reuse, by power-of-two size class from one
 * page up, instead of an mmap and a munmap per cached file (its table and
 * bucket array): each is a system call, and a munmap is a TLB shoot-down
 * once the flusher thread exists. uthash zeroes what it gets. */
#define HASH_CLASSES 8          /* 4 KiB .. 512 KiB */
#define HASH_KEEP 32            /* blocks kept per class */
static struct wc_lock hash_lock;        /* protects hash_free (a leaf:
                                           nothing is taken under it) */
static struct {
    void *head;                 /* free blocks, linked by their 1st word */
    unsigned n;
} hash_free[HASH_CLASSES];

static int hash_class(size_t size, size_t *rounded)
{
    size_t r = WC_PAGE_SIZE;
    int k = 0;
    while (r < size) {
        r <<= 1;
        k++;
    }
    *rounded = r;
    return k < HASH_CLASSES ? k : -1;
}

void *wc_hash_alloc(size_t size)
{
    size_t len;
    int k = hash_class(size, &len);
    if (k >= 0) {
        wc_lock(&hash_lock);
        void *p = hash_free[k].head;
        if (p) {
            hash_free[k].head = *(void **)p;
            hash_free[k].n--;
        }
        wc_unlock(&hash_lock);
        if (p)
            return p;
    }
    void *p = wc_sys.mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void wc_hash_free(void *p, size_t size)
{
    if (!p)
        return;
    size_t len;
    int k = hash_class(size, &len);
    if (k >= 0) {
        wc_lock(&hash_lock);
        int keep = hash_free[k].n < HASH_KEEP;
        if (keep) {
            *(void **)p = hash_free[k].head;
            hash_free[k].head = p;
            hash_free[k].n++;
        }
        wc_unlock(&hash_lock);
        if (keep)
            return;
    }
    wc_sys.munmap(p, len);
}

/* ---- the cache -------------------------------------------------------- */

/* Does pwritev2 know RWF_NOAPPEND (Linux 6.9)? Write a zero over a zero of
 * the header's reserved bytes with it. */
static int probe_noappend(struct wc_store *s)
{
    static const char zero;
    struct iovec v = {(void *)&zero, 1};
    int saved = errno;
    int r = wc_sys.pwritev2(s->fd, &v, 1,
                            (off_t)offsetof(struct wc_header, reserved),
                            RWF_NOAPPEND) == 1;
    errno = saved;
    return r;
}

ssize_t wc_write_at_fd(struct wc_cache *c, int fd, const struct iovec *v,
                       int n, uint64_t pos)
{
    return __atomic_load_n(&c->noappend, __ATOMIC_RELAXED)
               ? wc_sys.pwritev2(fd, v, n, (off_t)pos, RWF_NOAPPEND)
               : wc_sys.pwritev(fd, v, n, (off_t)pos);
}

ssize_t wc_write_at(struct wc_file *f, const struct iovec *v, int n,
                    uint64_t pos)
{
    struct wc_cache *c = f->cache;
    if (!__atomic_load_n(&c->refused, __ATOMIC_RELAXED)) {
        int saved = errno;
        ssize_t w = wc_write_at_fd(c, f->wb_fd, v, n, pos);
        if (w >= 0 || !wc_refused(errno))
            return w;
        /* A seccomp filter (or an old kernel) refuses the call: the one
         * the program makes itself will do, on a description of ours. */
        __atomic_store_n(&c->noappend, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->refused, 1, __ATOMIC_RELAXED);
        errno = saved;              /* the refusal is not the answer */
    }
    return wc_err_write_refused(f, v, n, pos);
}

/* Ask the kernel what a write past EOF whose copy faults does to i_size:
 * write NULL past the end of the backing file and look. */
static int probe_fault_extends(struct wc_store *s)
{
    struct stat st;
    off_t end = (off_t)s->map_len;
    int saved = errno, r = 0;
    if (wc_sys.pwrite(s->fd, NULL, 16, end + WC_PAGE_SIZE) < 0 &&
        wc_sys.fstat(s->fd, &st) == 0 && st.st_size > end) {
        r = 1;
        wc_sys.ftruncate(s->fd, end);
    }
    errno = saved;
    return r;
}

/* The cache object, its file slots and their write-back scratch. */
static void cache_free(struct wc_cache *c, uint32_t nfiles)
{
    wc_big_free(c->files, nfiles * sizeof *c->files);
    wc_big_free(c->batches, 3 * (size_t)nfiles * sizeof *c->batches);
    wc_big_free(c, sizeof *c);
}

/* The address space the engine maps for nblocks blocks and nfiles file
 * slots: the store, the arrays sized by them, and WC_AS_SLACK for what
 * grows with the files cached (uthash tables: wc_uthash_alloc). */
#define WC_AS_SLACK ((uint64_t)1 << 20)
static uint64_t as_needed(uint64_t nblocks, unsigned nfiles)
{
    uint64_t of, ob, od, size;
    wc_fmt_layout(nfiles, nblocks, &of, &ob, &od, &size);
    return size + sizeof(struct wc_cache) + WC_AS_SLACK +
           nblocks * (sizeof(struct wc_page) + 2 * sizeof(uint32_t)) +
           (uint64_t)nfiles * (sizeof(struct wc_file) +
                               3 * sizeof(struct wc_batch));
}

/* The process's address space now (VmSize, /proc/self/statm), or 0 when
 * it cannot be read. */
static uint64_t vm_size(const struct wc_fd_ops *fds)
{
    char buf[128];
    int fd = fds->open("/proc/self/statm", O_RDONLY, 0);
    if (fd < 0)
        return 0;
    ssize_t n = wc_sys.read(fd, buf, sizeof buf - 1);
    wc_sys.close(fd);
    fds->closed(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    return strtoull(buf, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Blocks the store may have under RLIMIT_AS (store.h (4)): *nblocks,
 * lowered so that the engine maps at most a quarter of what the limit
 * leaves. 0, or -ENOMEM when fewer than WC_AS_MIN_BLOCKS would fit. */
#define WC_AS_MIN_BLOCKS 64             /* 256 KiB: WCACHE_SIZE's least */
static int fit_as(uint64_t *nblocks, unsigned nfiles,
                  const struct wc_fd_ops *fds)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    uint64_t used = vm_size(fds);
    if (used == 0 || used >= rl.rlim_cur)
        return -ENOMEM;                 /* unknown, or nothing left */
    uint64_t budget = (rl.rlim_cur - used) / 4;
    uint64_t fixed = as_needed(0, nfiles) + WC_PAGE_SIZE;  /* rounding */
    uint64_t per = WC_PAGE_SIZE + WC_BREC_SIZE + sizeof(struct wc_page) +
                   2 * sizeof(uint32_t);
    uint64_t fit = budget > fixed ? (budget - fixed) / per : 0;
    while (fit && as_needed(fit, nfiles) > budget)
        fit--;
    if (fit < WC_AS_MIN_BLOCKS && fit < *nblocks)
        return -ENOMEM;
    if (*nblocks > fit)
        *nblocks = fit;
    return 0;
}

int wc_cache_open(struct wc_cache **out, const struct wc_config *cfg)
{
    struct wc_config def = {0};
    if (!cfg)
        cfg = &def;
    size_t size = cfg->size ? cfg->size : (size_t)64 << 20;
    uint64_t nblocks = size >> WC_PAGE_SHIFT;
    if (nblocks < 16)
        nblocks = 16;
    if (nblocks > (1u << 30))
        return -EINVAL;
    unsigned nfiles = cfg->max_files ? cfg->max_files : 256;
    const struct wc_fd_ops *fds = cfg->fds ? cfg->fds : &wc_engine_fds_default;
    /* An address-space limit (store.h (4)): a smaller store, with its
     * dirty half to match, or none. */
    int fitted = fit_as(&nblocks, nfiles, fds);
    if (fitted < 0)
        return fitted;
    if (nblocks < size >> WC_PAGE_SHIFT)
        size = (size_t)nblocks << WC_PAGE_SHIFT;

    /* Anonymous mappings, not malloc: untouched until used (malloc's
     * calloc cleared the file array and set up its heap: 300 us here),
     * and out of the way of the program's allocator. */
    struct wc_cache *c = wc_big_alloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    /* Untouched until a block is first handed out (wc_page_get sets its
     * page's block number then): memory follows the data cached, not
     * the store's size. */
    c->pages = wc_big_alloc(nblocks * sizeof *c->pages);
    c->files = wc_big_alloc(nfiles * sizeof *c->files);
    c->batches = wc_big_alloc(3 * (size_t)nfiles * sizeof *c->batches);
    if (!c->pages || !c->files || !c->batches) {
        wc_big_free(c->pages, nblocks * sizeof *c->pages);
        cache_free(c, nfiles);
        return -ENOMEM;
    }
    c->fds = fds;
    c->warn = cfg->warn ? cfg->warn : wc_warn_stderr;
    c->bg_page_ns = cfg->bg_page_ns ? cfg->bg_page_ns : WC_ASYNC_PAGE_NS;
#ifndef __SANITIZE_THREAD__
    /* The one writer's entry needs the flusher's barrier (cache_int.h),
     * the biased locks a revoker's (wcache/blk.h invariant (3)). */
    if (cfg->solo && wc_raw_syscall(SYS_membarrier,
                                    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                                    0, 0, 0, 0, 0) == 0) {
        c->solo = cfg->solo;
        __atomic_store_n(&wc_blk_on, 1, __ATOMIC_RELAXED);
    }
#endif
    /* The store's descriptor is one of ours (placed, announced). */
    int r = wc_store_open(&c->store, cfg->dir, (uint32_t)nblocks, nfiles,
                          cfg->unnamed, c->fds);
    if (r < 0) {
        wc_big_free(c->pages, nblocks * sizeof *c->pages);
        cache_free(c, nfiles);
        return r;
    }
    /* The file slots are set up as they are first claimed (wc_file_get):
     * touching all of them here would fault in every page of the array
     * (about 12 page faults, 150 us here) for a process that caches one
     * file. An unclaimed slot is all zeroes, live == 0. */
    c->nfiles = nfiles;
    c->store.room = cfg->room;          /* store.h (3) */
    c->sent = cfg->sent;                /* errors.c (4c) */
    size_t dirty = cfg->dirty ? cfg->dirty : size / 2;
    c->dirty_limit = (uint32_t)(dirty >> WC_PAGE_SHIFT);
    if (c->dirty_limit < 1)
        c->dirty_limit = 1;
    if (c->dirty_limit > nblocks)
        c->dirty_limit = (uint32_t)nblocks;
    c->bypass = cfg->bypass ? cfg->bypass : (size_t)256 << 10;
    c->fault_extends = probe_fault_extends(&c->store);
    c->noappend = probe_noappend(&c->store);
    wc_cache_limits_changed(c);
    wc_fault_install();
    *out = c;
    return 0;
}

void wc_cache_fit_dirty(struct wc_cache *c, size_t bytes)
{
    uint32_t pages = (uint32_t)(bytes >> WC_PAGE_SHIFT);
    if (pages < 1)
        pages = 1;
    if (pages < __atomic_load_n(&c->dirty_limit, __ATOMIC_RELAXED))
        __atomic_store_n(&c->dirty_limit, pages, __ATOMIC_RELAXED);
}

void wc_cache_limits_changed(struct wc_cache *c)
{
    struct rlimit rl;
    uint64_t lim = WC_MAX_CACHED_END;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur < lim)
        lim = rl.rlim_cur;
    __atomic_store_n(&c->max_end, lim, __ATOMIC_RELAXED);
}

void wc_cache_unlock_all(struct wc_cache *c)
{
    wc_in_engine = 0;
    c->lock.v = 0;
    hash_lock.v = 0;
    c->aq_lock.v = 0;
    c->aq = NULL;
    c->aq_kick = NULL;                  /* no flusher here */
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        wc_blk_reset(&c->files[i].lock);
        c->files[i].solo_busy = 0;
        wc_async_forget(&c->files[i]);  /* its writer is not here */
    }
    /* A write cut short by the exit: it never returned, and must not
     * appear in part. Bytes past the old size are not written back. One
     * cut between its commit (wc_wip_end set) and the end of its flight
     * stands: the shim moves the offset past it, and a write queued after
     * it must not find the size taken back under it. */
    struct wc_file *f = wc_wip_file;
    if (f && f->cache == c && wc_wip_end < 0 && f->slot->size > wc_wip_size)
        f->slot->size = wc_wip_size;
    wc_wip_file = NULL;
}

int wc_cache_publish(struct wc_cache *c)
{
    return wc_store_publish(&c->store);
}

int wc_cache_store_fd(const struct wc_cache *c)
{
    return c->store.fd;
}

const char *wc_cache_path(const struct wc_cache *c)
{
    return c->store.path;
}

uint64_t wc_cache_mnt_ns(const struct wc_cache *c)
{
    return c->store.hdr->mnt_ns;
}

__attribute__((cold))      /* start-up: replay.c wc_replay_sweep */
int wc_cache_replay_dead(const char *dir)
{
    char d[PATH_MAX];
    if (wc_store_dir(dir, d, sizeof d) != 0)
        return 0;
    return wc_replay_sweep(d, WC_RP_NS_ASK);
}

size_t wc_cache_dirty(const struct wc_cache *c)
{
    return (size_t)__atomic_load_n(&c->dirty_pages, __ATOMIC_RELAXED)
           << WC_PAGE_SHIFT;
}

void wc_cache_stats(const struct wc_cache *cc, struct wc_stats *out)
{
    struct wc_cache *c = (struct wc_cache *)cc;
    int inside = !wc_engine_enter();
    if (!inside)
        wc_lock(&c->lock);
    *out = c->totals;
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *f = &c->files[i];
        out->writes += f->n_writes;     /* racy reads: a snapshot */
        out->bytes += f->n_bytes;
        out->through += f->n_through;
        out->faults += f->n_faults;
    }
    if (!inside) {
        wc_unlock(&c->lock);
        wc_engine_leave();
    }
}

/* f's lock for a pass over every file: `intruding` (inside an intrusion,
 * intrude() below), its mutex without revoking the owner's bias, waiting
 * the one writer or the owner out, which is enough while the intruder
 * count is raised (cache_int.h, wcache/blk.h): one membarrier for the
 * pass, where a revoke would cost one per file and the bias. */
static void file_lock(struct wc_file *f, int intruding)
{
    if (!intruding) {
        wc_file_lock(f);
        return;
    }
    wc_lock(&f->lock.m);
    for (unsigned i = 0; __atomic_load_n(&f->solo_busy, __ATOMIC_ACQUIRE); i++)
        wc_backoff(i);
    wc_blk_wait_out(&f->lock);
    wc_fw_close(f);                     /* write.c invariant W1 */
}

static int flush_file(struct wc_file *f, enum wc_reason why, int intruding)
{
    int r = 0;
    file_lock(f, intruding);
    if (f->live)
        r = wc_flush_locked(f, why);
    wc_blk_unlock(&f->lock);
    return r;
}

static int intrude(struct wc_cache *c);
static void intrude_end(struct wc_cache *c, int intruding);

/* A pass over every file by a program thread: with threads (and the
 * barrier registered), one intrusion for the pass, and the owners keep
 * their files' bias. Returns `intruding` for file_lock and intrude_end. */
static int pass_begin(struct wc_cache *c)
{
    return c->solo && !__atomic_load_n(c->solo, __ATOMIC_RELAXED) &&
           intrude(c) == 0;
}

/* Flush all files; release orphans that became clean. Caller is inside. */
int wc_flush_all_entered(struct wc_cache *c, enum wc_reason why)
{
    int first = 0;
    int intruding = pass_begin(c);
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *f = &c->files[i];
        if (!__atomic_load_n(&f->live, __ATOMIC_RELAXED))
            continue;
        int r = flush_file(f, why, intruding);
        if (r < 0 && !first)
            first = r;
        file_lock(f, intruding);
        if (f->live && f->refs == 0 && !wc_file_dirty(f)) {
            wc_file_drop_pages(f);                /* takes c->lock itself */
            wc_lock(&c->lock);
            if (f->refs == 0)
                wc_file_release(c, f);
            wc_unlock(&c->lock);
        }
        wc_blk_unlock(&f->lock);
    }
    intrude_end(c, intruding);
    /* Give memory back only when free blocks are well above need: twice
     * what is in use (and at least 4 chunks); keep as many as in use.
     * Only from the deadline flusher (and explicit flushes): never when
     * the image ends (exit, exec) or forks, since the backing file is
     * deleted anyway, and never under pressure, whose writer needs the
     * blocks again at once; each punch is a TLB shoot-down. */
    if (why == WC_WHY_EXIT || why == WC_WHY_EXEC || why == WC_WHY_FORK ||
        why == WC_WHY_PRESSURE)
        return first;
    wc_lock(&c->lock);
    uint32_t need = c->store.used > 4 * WC_CHUNK_BLOCKS ? c->store.used
                                                        : 4 * WC_CHUNK_BLOCKS;
    if (c->store.nfree > 2 * need)
        wc_store_trim(&c->store, need);
    wc_unlock(&c->lock);
    return first;
}

int wc_cache_lock_point(struct wc_cache *c, int taken)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    int first = 0, intruding = -1;
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *f = &c->files[i];
        if (!__atomic_load_n(&f->live, __ATOMIC_RELAXED))
            continue;
        if (intruding < 0)
            intruding = pass_begin(c);  /* only if some file is live */
        file_lock(f, intruding);
        if (f->live) {
            int r = wc_flush_locked(f, WC_WHY_LOCK);
            if (r < 0 && !first)
                first = r;
            else if (r == 0 && taken)
                wc_file_forget_locked(f);
        }
        wc_blk_unlock(&f->lock);
    }
    if (intruding > 0)
        intrude_end(c, intruding);
    wc_engine_leave();
    return first;
}

int wc_space_settle_entered(struct wc_cache *c, uint64_t dev)
{
    int first = 0;
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *f = &c->files[i];
        if (!__atomic_load_n(&f->live, __ATOMIC_ACQUIRE))
            continue;
        wc_file_lock(f);
        if (f->live && f->slot->dev == dev) {
            int r = wc_flush_locked(f, WC_WHY_FULL);
            if (r < 0 && !first)
                first = r;
            __atomic_store_n(&f->space_left, 0, __ATOMIC_RELAXED);
        }
        wc_blk_unlock(&f->lock);
    }
    return first;
}

int wc_cache_flush(struct wc_cache *c, enum wc_reason why)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    int r = wc_flush_all_entered(c, why);
    wc_engine_leave();
    return r;
}

/* The flusher enters the one writer's files (cache_int.h, the locks), or
 * a pass over every file the owners' (wc_flush_all_entered): once per
 * pass, before its first file. 0: go on; -1: not this pass. A barrier
 * refused (it cannot be, once registered) leaves c->intruders raised for
 * good: from the next pass on every write takes the file's lock. */
static int intrude(struct wc_cache *c)
{
    if (__atomic_load_n(&c->intrude_stuck, __ATOMIC_RELAXED))
        return 0;
    __atomic_add_fetch(&c->intruders, 1, __ATOMIC_SEQ_CST);
    if (wc_raw_syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0,
                       0, 0, 0, 0) == 0)
        return 0;
    __atomic_store_n(&c->intrude_stuck, 1, __ATOMIC_RELAXED);
    return -1;
}

/* The intrusion is over (unless the barrier was refused: it stays). */
static void intrude_end(struct wc_cache *c, int intruding)
{
    if (intruding && !__atomic_load_n(&c->intrude_stuck, __ATOMIC_RELAXED))
        __atomic_sub_fetch(&c->intruders, 1, __ATOMIC_RELEASE);
}

int wc_cache_flush_expired(struct wc_cache *c, uint64_t max_age_ns)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    uint64_t now = wc_now_ns();
    int first = 0, intruding = 0;
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *f = &c->files[i];
        uint64_t since = __atomic_load_n(&f->dirty_since, __ATOMIC_RELAXED);
        if (!__atomic_load_n(&f->live, __ATOMIC_ACQUIRE) || !since ||
            now - since < max_age_ns)
            continue;
        /* A failed file is retried once per deadline, not per tick. */
        if (__atomic_load_n(&f->state, __ATOMIC_RELAXED) == WC_FS_FAILED &&
            now - __atomic_load_n(&f->err_at, __ATOMIC_RELAXED) < max_age_ns)
            continue;
        if (c->solo && !intruding) {
            if (intrude(c) < 0)
                break;
            intruding = 1;
        }
        int r = flush_file(f, WC_WHY_DEADLINE, intruding);
        if (r < 0 && !first)
            first = r;
    }
    intrude_end(c, intruding);
    if (c->store.room)
        wc_pages_fit_room(c);           /* store.h (3) */
    wc_engine_leave();
    return first;
}

int wc_cache_may_remove(struct wc_cache *c)
{
    int inside = !wc_engine_enter();
    int clean = 1;
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi && clean; i++) {
        struct wc_file *f = &c->files[i];
        if (!__atomic_load_n(&f->live, __ATOMIC_RELAXED))
            continue;
        if (!inside)
            wc_file_lock(f);
        clean = !f->live || !wc_file_dirty(f);
        if (!inside)
            wc_blk_unlock(&f->lock);
    }
    if (!inside)
        wc_engine_leave();
    return clean;
}

int wc_cache_remove_if_clean(struct wc_cache *c)
{
    if (!c->store.path[0] || !wc_cache_may_remove(c))
        return 0;
    if (!c->store.named) {
        c->store.path[0] = 0;
        return 1;               /* never had a name */
    }
    if (c->store.map)
        c->store.hdr->state = WC_STORE_CLOSED;
    int r = wc_sys.unlink(c->store.path) == 0;
    c->store.path[0] = 0;       /* once */
    return r;
}

int wc_cache_close(struct wc_cache *c)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    /* Writers write back themselves from now on: the pass below settles
     * every batch handed over, and no other is (async.c (5)). */
    __atomic_store_n(&c->aq_kick, NULL, __ATOMIC_RELEASE);
    int r = wc_flush_all_entered(c, WC_WHY_EXIT);
    /* Data that could not be written back stays in the backing file for
     * a replay, its records untouched; only a clean cache removes it (one
     * function decides). */
    int keep = !wc_cache_may_remove(c);
    int intruding = !keep && pass_begin(c);
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *f = &c->files[i];
        if (!f->live)
            continue;
        if (keep) {
            if (f->wb_fd >= 0)
                wc_sys.close(f->wb_fd);
            f->wb_fd = -1;
            continue;
        }
        file_lock(f, intruding);
        wc_file_drop_pages(f);                    /* takes c->lock itself */
        wc_lock(&c->lock);
        wc_file_release(c, f);
        wc_unlock(&c->lock);
        wc_blk_unlock(&f->lock);
    }
    intrude_end(c, intruding);
    /* Data that could not be written back stays in the backing file for
     * a replay (wc_cache_may_remove); only a clean cache removes it. */
    size_t pages_len = (size_t)c->store.nblocks * sizeof *c->pages;
    wc_store_close(&c->store, !keep && c->store.path[0] && c->store.named);
    wc_big_free(c->pages, pages_len);
    cache_free(c, c->nfiles);
    wc_engine_leave();
    return r;
}

__attribute__((cold)) void wc_cache_after_fork_child(void)
{
    /* Nothing of the cache is here (store.h (5)). Another thread of the
     * parent may have held the hash allocator's lock at fork; its tables
     * (anonymous private mappings) are leaked, a few pages. */
    if (hash_lock.v)
        hash_lock.v = 0;
}

void wc_cache_inherit(struct wc_cache *c)
{
    size_t nb = c->store.nblocks;
    wc_big_fork(c, sizeof *c, WC_BIG_CHILD);
    wc_big_fork(c->files, c->nfiles * sizeof *c->files, WC_BIG_CHILD);
    wc_big_fork(c->store.map, c->store.map_len, WC_BIG_CHILD);
    wc_big_fork(c->store.ring, nb * sizeof *c->store.ring, WC_BIG_CHILD);
    wc_big_fork(c->store.punched, nb * sizeof *c->store.punched,
                WC_BIG_CHILD);
    wc_big_fork(c->pages, nb * sizeof *c->pages, WC_BIG_CHILD);
    wc_big_fork(c->batches, 3 * (size_t)c->nfiles * sizeof *c->batches,
                WC_BIG_CHILD);
}

/* ---- for tests -------------------------------------------------------- */

void *wc__store_data(struct wc_cache *c, size_t *bytes)
{
    *bytes = (size_t)c->store.nblocks << WC_PAGE_SHIFT;
    return wc_store_block(&c->store, 0);
}

size_t wc__store_used(const struct wc_cache *c)
{
    return c->store.used;
}

int wc__store_poison(struct wc_cache *c, int byte)
{
    uint32_t *got = calloc(c->store.nblocks, sizeof *got);
    uint32_t n = 0;
    int64_t b;
    if (!got)
        return -ENOMEM;
    wc_lock(&c->lock);
    while ((b = wc_store_alloc(&c->store)) >= 0) {
        memset(wc_store_block(&c->store, (uint32_t)b), byte, WC_PAGE_SIZE);
        got[n++] = (uint32_t)b;
    }
    for (uint32_t i = 0; i < n; i++)
        wc_store_free(&c->store, got[i]);
    wc_unlock(&c->lock);
    free(got);
    return b == -EAGAIN ? 0 : (int)b;
}
