/*
 * store.c - the backing file and its block allocator (layout in store.h).
 *
 * Allocation order, cheapest first:
 *   1. the most recently freed block (warm: ~5 ns to fill, vs ~4 us for a
 *      page the kernel must first allocate and zero);
 *   2. a never-used block, reserving with fallocate (invariant (1) of
 *      store.h) a chunk that doubles with use: 1, 1, 2, 4... up to
 *      WC_CHUNK_BLOCKS blocks (a small file costs one block);
 *   3. a block whose space was punched back, reserved again a run of
 *      adjacent ones at a time.
 * Holes are punched only into the oldest free blocks, only when free
 * space is well above need, and in runs of adjacent blocks, one fallocate
 * per run (wc_store_trim): each punch unmaps pages from every thread's
 * view (a TLB shoot-down per call), so never one call per page.
 * Reserved blocks are faulted in with one madvise(MADV_POPULATE_WRITE)
 * per reservation instead of one page fault per block (a fault on tmpfs
 * costs microseconds in a VM).
 *
 * Memory is proportional to what is stored, never to the store's size:
 * the file is sparse, its mapping is reserved but untouched, and the
 * arrays sized by nblocks (wc_big_alloc) are untouched anonymous memory
 * until a block is first handed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "seekio.h"
#include "store.h"
#include "wcache/raw.h"
#include "wcache/str.h"
#include "wcache/sys.h"

static uint64_t round_page(uint64_t n)
{
    return (n + WC_PAGE_SIZE - 1) & ~(uint64_t)(WC_PAGE_SIZE - 1);
}

/* Write the zero byte at p (the file is sparse: it is zero already),
 * with pwrite, or lseek+write where a seccomp filter refuses pwrite
 * (seekio.h: the store's descriptor is its own). Returns 1 or -1 with
 * errno set. */
static ssize_t put_zero(struct wc_store *s, uint64_t p)
{
    static const char zero;
    return wc_pwrite_own(s->fd, &zero, 1, (off_t)p, &s->no_pwrite);
}

/* Reserve [off, off + len) of the backing file. Returns 0 or -errno. */
static int reserve(struct wc_store *s, uint64_t off, uint64_t len)
{
    if (!s->no_fallocate) {
        if (wc_sys.fallocate(s->fd, 0, (off_t)off, (off_t)len) == 0)
            return 0;
        /* EPERM: refused by a seccomp filter, not a permission of the
         * file (ours, 0600): allocate by hand as below. */
        if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EPERM)
            return -errno;
        s->no_fallocate = 1;
    }
    /* No fallocate: make the file system allocate by writing a byte in
     * every page (the bytes are zero already: the file is sparse). */
    for (uint64_t p = off; p < off + len; p += WC_PAGE_SIZE)
        if (put_zero(s, p) != 1)
            return errno ? -errno : -ENOSPC;
    return 0;
}

void wc_big_fork(void *p, size_t len, int child)
{
    int saved = errno;
    wc_sys.madvise(p, len ? len : 1,
                   child == WC_BIG_CHILD ? MADV_DOFORK : MADV_DONTFORK);
    errno = saved;
}

void *wc_big_alloc(size_t bytes)
{
    /* MAP_NORESERVE: a large store (WCACHE_SIZE=1T) must not be refused
     * by overcommit accounting for memory it will never touch. */
    void *p = wc_sys.mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    wc_big_fork(p, bytes, 0);
    /* Its first page is written soon in any process that caches (the
     * cache, its first file, block and batch): one call, not a fault. */
    wc_prefault(p, bytes < WC_PAGE_SIZE ? bytes : WC_PAGE_SIZE);
    return p;
}

__attribute__((cold)) void wc_big_free(void *p, size_t bytes)
{
    if (p)
        wc_sys.munmap(p, bytes ? bytes : 1);
}

/* Fault [off, off + len) of the mapping in with one call. Best effort: an
 * older kernel (EINVAL) leaves it to page faults. */
static void populate(struct wc_store *s, uint64_t off, uint64_t len)
{
#ifdef MADV_POPULATE_WRITE
    if (s->map && !s->no_populate) {
        int saved = errno;
        if (wc_sys.madvise(s->map + off, len, MADV_POPULATE_WRITE) < 0 &&
            errno == EINVAL)
            s->no_populate = 1;
        errno = saved;
    }
#else
    (void)s, (void)off, (void)len;
#endif
}

/* <base>/wcache-<uid>: created 0700 (with `create`), or checked to be
 * ours and private. `cold` with pick_dir and wc_store_dir: a program's
 * start-up runs them (replay.c wc_replay_sweep). */
__attribute__((cold))
static int user_dir(const char *base, char *out, size_t outlen, int create)
{
    struct stat st;
    struct wc_str p = wc_str_init(out, outlen);
    wc_str_add(&p, base);
    wc_str_add(&p, "/wcache-");
    uid_t uid = getuid();
    wc_str_num(&p, (unsigned)uid, 0, 0);
    if (p.over)
        return -ENAMETOOLONG;
    if (create && wc_sys.mkdir(out, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (wc_sys.lstat(out, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (st.st_uid != uid || (st.st_mode & 077))
        return -EACCES;
    return 0;
}

__attribute__((cold))
static int pick_dir(const char *want, char *out, size_t outlen, int create)
{
    if (want)
        return user_dir(want, out, outlen, create);
    const char *chain[3];
    size_t n = wc_fmt_bases(chain);
    int r = -ENOENT;
    for (size_t i = 0; i < n; i++) {
        if (access(chain[i], W_OK | X_OK) != 0)
            continue;
        r = user_dir(chain[i], out, outlen, create);
        if (r == 0)
            return 0;
    }
    return r;
}

__attribute__((cold))
int wc_store_dir(const char *dir, char *out, size_t outlen)
{
    return pick_dir(dir, out, outlen, 0);
}

/* A name for the backing file in udir (attempt-th try). */
static void store_name(struct wc_store *s, const char *udir, int attempt)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned nonce = (unsigned)(now.tv_nsec ^ (attempt * 2654435761u) ^
                                ((unsigned)getpid() << 16));
    struct wc_str p = wc_str_init(s->path, sizeof s->path);
    wc_str_add(&p, udir);
    wc_str_add(&p, "/cache.");
    wc_str_num(&p, (unsigned)getpid(), 0, 0);
    wc_str_add(&p, ".");
    wc_str_num(&p, nonce, 1, 8);
}

int wc_store_publish(struct wc_store *s)
{
    char self[64], udir[PATH_MAX];
    if (s->named || s->fd < 0)
        return 0;
    memcpy(udir, s->path, sizeof s->path < sizeof udir ? sizeof s->path
                                                       : sizeof udir);
    udir[sizeof udir - 1] = 0;
    char *slash = strrchr(udir, '/');
    if (slash)
        *slash = 0;
    wc_str_procfd(self, sizeof self, s->fd);
    for (int attempt = 1; attempt < 16; attempt++) {
        if (wc_sys.linkat(AT_FDCWD, self, AT_FDCWD, s->path,
                          AT_SYMLINK_FOLLOW) == 0 ||
            wc_sys.linkat(s->fd, "", AT_FDCWD, s->path, AT_EMPTY_PATH) == 0) {
            s->named = 1;
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
        store_name(s, udir, attempt);
    }
    return -EEXIST;
}

int wc_store_open(struct wc_store *s, const char *dir, uint32_t nblocks,
                  uint32_t nfiles, int unnamed, const struct wc_fd_ops *fds)
{
    char udir[PATH_MAX - 64];
    struct timespec now;
    int r;

    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->fds = fds;
    if ((r = pick_dir(dir, udir, sizeof udir, 1)) < 0)
        return r;

    uint64_t off_files, off_brecs, off_data, size;
    wc_fmt_layout(nfiles, nblocks, &off_files, &off_brecs, &off_data, &size);

    /* A file size limit below the store (plus the probe past its end, see
     * cache.c) would make the kernel send SIGXFSZ to the program: decline
     * before touching anything. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < size + 2 * WC_PAGE_SIZE)
        return -EFBIG;

    clock_gettime(CLOCK_REALTIME, &now);
    s->named = 1;
    if (unnamed) {
        store_name(s, udir, 0);
        s->fd = fds->open(udir, O_TMPFILE | O_RDWR, 0600);
        s->named = s->fd < 0;       /* no O_TMPFILE here: a name at once */
    }
    for (int attempt = 0; s->named; attempt++) {
        store_name(s, udir, attempt);
        s->fd = fds->open(s->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW,
                          0600);
        if (s->fd >= 0)
            break;
        if (s->fd != -EEXIST || attempt > 16)
            return s->fd;
    }

    /* Held until the file is closed (store.h (2)); a new file: free.
     * Refused (a seccomp filter: EPERM, ENOSYS), no guard or recover
     * could tell this process's death, and either could replay the file
     * under it: no cache. */
    if (wc_sys.flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
        r = -errno;
        goto fail;
    }
    r = -ENOMEM;
    s->ring = wc_big_alloc((size_t)nblocks * sizeof *s->ring);
    s->punched = wc_big_alloc((size_t)nblocks * sizeof *s->punched);
    if (!s->ring || !s->punched)
        goto fail;
    if (wc_sys.ftruncate(s->fd, (off_t)size) < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = reserve(s, 0, WC_PAGE_SIZE)) < 0)
        goto fail;
    s->map = wc_sys.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                         s->fd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        r = -errno;
        goto fail;
    }
    s->map_len = size;
    s->nblocks = nblocks;
    s->nfiles = nfiles;
    /* No read-around at a fault: on a disk file system (WCACHE_DIR on
     * ext4) the header's first write read read_ahead_kb of the sparse
     * file into the page cache (2.5 MiB here: 2-3 ms, the cache's whole
     * cost fivefold, probe AD F2), and each later block's fault its own
     * window. Blocks are never read back in order through the mapping. */
    int saved = errno;
    wc_sys.madvise(s->map, size, MADV_RANDOM);
    errno = saved;
    wc_big_fork(s->map, size, 0);

    struct wc_header *h = s->hdr = (struct wc_header *)s->map;
    h->version = WC_STORE_VERSION;
    h->header_size = sizeof *h;
    h->page_size = WC_PAGE_SIZE;
    h->nfiles = nfiles;
    h->fslot_size = WC_FSLOT_SIZE;
    h->brec_size = sizeof(struct wc_brec);
    h->nblocks = nblocks;
    h->off_files = off_files;
    h->off_brecs = off_brecs;
    h->off_data = off_data;
    s->brecs = (struct wc_brec *)(s->map + off_brecs);
    s->data = s->map + off_data;
    h->file_size = size;
    h->pid = getpid();
    h->uid = getuid();
    h->created_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    int e = errno;
    h->mnt_ns = wc_fmt_mnt_ns(wc_sys.stat);             /* format.h (11) */
    errno = e;
    h->state = WC_STORE_LIVE;
    memcpy(h->magic, WC_STORE_MAGIC, sizeof h->magic);
    h->sum = wc_fmt_header_sum(h);                      /* format.h (7) */
    memset(h->magic, 0, sizeof h->magic);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    memcpy(h->magic, WC_STORE_MAGIC, sizeof h->magic);  /* last: valid now */
    return 0;

fail:
    wc_store_close(s, 1);
    return r;
}

void wc_store_close(struct wc_store *s, int unlink_it)
{
    if (s->map) {
        if (unlink_it)
            s->hdr->state = WC_STORE_CLOSED;
        wc_sys.munmap(s->map, s->map_len);
    }
    if (s->fd >= 0) {
        if (unlink_it && s->named)
            wc_sys.unlink(s->path);
        wc_sys.close(s->fd);
        s->fds->closed(s->fd);
    }
    wc_big_free(s->ring, (size_t)s->nblocks * sizeof *s->ring);
    wc_big_free(s->punched, (size_t)s->nblocks * sizeof *s->punched);
    s->map = NULL;
    s->brecs = NULL;
    s->data = NULL;
    s->ring = s->punched = NULL;
    s->fd = -1;
}

/* Reserve blocks [first, first + n) and their block records. */
static int reserve_blocks(struct wc_store *s, uint32_t first, uint32_t n)
{
    uint64_t rec0 = s->hdr->off_brecs + (uint64_t)first * WC_BREC_SIZE;
    uint64_t rec1 = s->hdr->off_brecs + (uint64_t)(first + n) * WC_BREC_SIZE;
    rec0 &= ~(uint64_t)(WC_PAGE_SIZE - 1);
    int r = reserve(s, rec0, round_page(rec1) - rec0);
    uint64_t data = s->hdr->off_data + ((uint64_t)first << WC_PAGE_SHIFT);
    if (r == 0)
        r = reserve(s, data, (uint64_t)n << WC_PAGE_SHIFT);
    if (r == 0)
        populate(s, data, (uint64_t)n << WC_PAGE_SHIFT);
    return r;
}

/* Free block b becomes the newest in the ring (the next one reused). */
static void ring_push(struct wc_store *s, uint32_t b)
{
    s->ring[(s->head + s->nfree++) % s->nblocks] = b;
}

/* Blocks whose memory the store holds: reserved, less those punched. */
static uint32_t held(const struct wc_store *s)
{
    return s->reserved - s->npunched;
}

/* The most blocks the store may hold with `left` bytes of room (3). */
static uint64_t room_cap(const struct wc_store *s, uint64_t left)
{
    uint64_t have = (uint64_t)held(s) << WC_PAGE_SHIFT;
    uint64_t cap = (have + left) / 4;
    if (cap < WC_ROOM_FREE)
        cap = WC_ROOM_FREE;
    return cap >> WC_PAGE_SHIFT;
}

/* How many of n more blocks the store may take into memory (3). */
static uint32_t room_allows(struct wc_store *s, uint32_t n)
{
    uint32_t h = held(s);
    if (!s->room || ((uint64_t)(h + n) << WC_PAGE_SHIFT) <= WC_ROOM_FREE)
        return n;
    uint64_t left = s->room();
    if (left == UINT64_MAX)
        return n;
    uint64_t cap = room_cap(s, left);
    if (cap <= h)
        return 0;
    return cap - h < n ? (uint32_t)(cap - h) : n;
}

uint32_t wc_store_fit(struct wc_store *s, uint32_t *over)
{
    *over = 0;
    if (!s->room)
        return 0;
    uint64_t left = s->room();
    uint32_t h = held(s);
    if (left == UINT64_MAX)
        return 0;
    uint64_t cap = room_cap(s, left);
    if (cap >= h)
        return 0;
    uint32_t want = (uint32_t)(h - cap);
    uint32_t give = want < s->nfree ? want : s->nfree;
    uint32_t before = s->npunched;
    if (give)
        wc_store_trim(s, s->nfree - give);
    uint32_t gave = s->npunched - before;
    *over = want - gave;
    return gave;
}

int64_t wc_store_alloc(struct wc_store *s)
{
    if (s->nfree) {
        s->nfree--;
        s->used++;
        return s->ring[(s->head + s->nfree) % s->nblocks];
    }
    if (s->reserved == s->nblocks && s->npunched == 0)
        return -EAGAIN;
    if (s->enospc_backoff) {
        s->enospc_backoff--;
        return -ENOSPC;
    }
    if (s->reserved < s->nblocks) {
        /* Chunks grow with use: as many blocks as are reserved already
         * (one at first), up to WC_CHUNK_BLOCKS. A file of a few bytes
         * costs one block; a stream still faults in 64 at a time. */
        uint32_t n = s->nblocks - s->reserved;
        uint32_t grow = s->reserved ? s->reserved : 1;
        if (grow > WC_CHUNK_BLOCKS)
            grow = WC_CHUNK_BLOCKS;
        if (n > grow)
            n = grow;
        if ((n = room_allows(s, n)) == 0)
            return -EAGAIN;             /* (3): full at this size */
        /* On ENOSPC try smaller: the last few blocks may still fit. */
        while (n) {
            int r = reserve_blocks(s, s->reserved, n);
            if (r == 0)
                break;
            if (r != -ENOSPC || n == 1) {
                s->enospc_backoff = 256;
                return r;
            }
            n /= 2;
        }
        uint32_t b = s->reserved;
        s->reserved += n;
        for (uint32_t i = b + 1; i < b + n; i++)     /* rest: free, cold */
            ring_push(s, i);
        s->used++;
        return b;
    }
    /* The punched list is sorted in runs (wc_store_trim): reserve the
     * run at its end, up to a chunk, in one call. */
    uint32_t k = 1, top = s->npunched, *v = s->punched;
    while (k < WC_CHUNK_BLOCKS && k < top && v[top - k - 1] + 1 == v[top - k])
        k++;
    if ((k = room_allows(s, k)) == 0)
        return -EAGAIN;                 /* (3) */
    uint32_t b = v[top - k];
    int r = reserve_blocks(s, b, k);
    if (r < 0 && k > 1)
        r = reserve_blocks(s, b = v[top - (k = 1)], 1);
    if (r < 0) {
        s->enospc_backoff = 256;
        return r;
    }
    s->npunched -= k;
    for (uint32_t i = b + 1; i < b + k; i++)         /* rest: free */
        ring_push(s, i);
    s->used++;
    return b;
}

void wc_store_free(struct wc_store *s, uint32_t b)
{
    ring_push(s, b);
    s->used--;
    s->enospc_backoff = 0;
}

int wc_store_reserve_slot(struct wc_store *s, uint32_t i)
{
    if (i < s->files_reserved)
        return 0;
    /* Reserve every page from the first unreserved slot up to slot i. */
    uint64_t from = s->hdr->off_files + (uint64_t)s->files_reserved * WC_FSLOT_SIZE;
    uint64_t off = s->hdr->off_files + (uint64_t)i * WC_FSLOT_SIZE;
    uint64_t start = from & ~(uint64_t)(WC_PAGE_SIZE - 1);
    int r = reserve(s, start, round_page(off + WC_FSLOT_SIZE) - start);
    if (r == 0) {
        uint32_t per_page = WC_PAGE_SIZE / WC_FSLOT_SIZE;
        s->files_reserved = (i / per_page + 1) * per_page;
    }
    return r;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void wc_store_trim(struct wc_store *s, uint32_t keep)
{
    if (s->nfree <= keep)
        return;
    /* The oldest free blocks move to the end of the punched list (the two
     * sets are disjoint: there is room), sorted, then are punched one run
     * of adjacent blocks per call. */
    uint32_t n = s->nfree - keep, *v = s->punched + s->npunched;
    for (uint32_t i = 0; i < n; i++) {
        v[i] = s->ring[s->head];
        s->head = (s->head + 1) % s->nblocks;
    }
    s->nfree -= n;
    qsort(v, n, sizeof *v, cmp_u32);
    uint32_t kept = 0;
    for (uint32_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && v[j] == v[j - 1] + 1; j++)
            ;
        uint64_t off = s->hdr->off_data + ((uint64_t)v[i] << WC_PAGE_SHIFT);
        if (wc_sys.fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                             (off_t)off, (off_t)(j - i) << WC_PAGE_SHIFT) < 0) {
            /* Cannot give them back: keep them as free blocks. */
            for (uint32_t k = i; k < n; k++)
                ring_push(s, v[k]);
            break;
        }
        for (uint32_t k = i; k < j; k++)
            s->punched[s->npunched + kept++] = v[k];
    }
    s->npunched += kept;
}
