/*
 * shared.c - descriptions whose file offset someone else sees and moves:
 * glibc's stdio on descriptors 0, 1 and 2 (stdio.c), and other processes
 * (the parent shell of an inherited descriptor, the other side of a fork).
 * Both write at the kernel's offset behind the engine. Such a description
 * stays cached, in mode RESERVE, with the kernel's offset kept exact.
 *
 *   CACHED --wc_desc_share_locked--> RESERVE   (not O_APPEND)
 *   CACHED --wc_desc_share_locked--> THROUGH   (O_APPEND: a sharer's own
 *                                     appends, glibc's or another
 *                                     process's, land at the real end of
 *                                     file at once, before cached ones;
 *                                     and the shared offset they move is
 *                                     the one lseek must report. The file
 *                                     then passes through for good, as a
 *                                     mapped one does: every description
 *                                     of it, and later opens, go straight
 *                                     to the kernel with no engine work)
 *   RESERVE --(exit, mmap, O_APPEND set, fopen, O_DIRECT...)--> THROUGH
 *   RESERVE --its other holders let it go, invariant (5)--> CACHED
 *
 * Inherited O_APPEND descriptors (`prog >> log`) are left untracked at
 * start-up rather than THROUGH: they cost nothing per call that way.
 *
 * A description is shared when it is installed on 0 or 2, or on 1 unless
 * guarded (open, dup2, start-up: stdio.c invariant (2)), when it is
 * inherited at start-up (unless the image before exec handed it over:
 * proc.c invariant (6)), when a child is created that gets it (fork,
 * posix_spawn, system, popen; until the holders counted by (5) let go),
 * and in that child at its first write through it (fdtab.c,
 * wc_desc_adopt_locked).
 *
 * Invariants of a RESERVE description (d->lock held for each step):
 *   (1) Every dirty byte it wrote lies below the kernel's offset: write()
 *       reserves [start, start + n) with lseek(fd, n, SEEK_CUR) before the
 *       bytes are cached at `start` (the kernel's f_pos lock makes the
 *       reservation atomic against every other user of the offset); lseek
 *       anywhere else, pwrite, reads and every other call write the file
 *       back first. So writes at the kernel's offset by glibc or by another
 *       process never overlap bytes that the cache writes back later, and
 *       each sharer's bytes stay where the kernel would have put them.
 *   (2) d->pos is where this process left the kernel's offset; a
 *       reservation that starts elsewhere means someone else wrote (maybe
 *       extending the file): the engine writes back and forgets what it
 *       knew of the file, size included, before caching.
 *   (3) A short or failed write gives back the unused part of its
 *       reservation when nobody reserved after it (the offset is still at
 *       the reservation's end), so the offset ends where the kernel's would.
 *   (4) Every other description of the file in this process is THROUGH,
 *       and later opens of it are too (the registry entry is marked): the
 *       file changes behind the engine, and only this description notices.
 *   (5) Holders are counted where the shim sees them all: a description
 *       this process holds alone (opened here, or alone again by (5))
 *       gets, when a child is created that gets it, a counter in memory
 *       shared with that child (MAP_SHARED, inherited by fork), set to 2;
 *       each later child creation by any holder adds one; a holder whose
 *       last descriptor of it goes (close, dup2 over it: the child of
 *       `$(...)` in a shell, the shell's side of `cmd &`) first writes the
 *       file back, then subtracts one. Exit and exec subtract nothing (the
 *       kernel may still write a stream's buffer after the shim's exit
 *       work; an exec'd image keeps the descriptor without the counter),
 *       nor does anything the shim does not see (a descriptor sent over a
 *       socket, posix_spawn's file actions): the count only errs high. A
 *       shared RESERVE description that reads 1 is held by this process
 *       alone: at its next write it is no longer shared and, unless stdio
 *       keeps it RESERVE (descriptor 0 or 2, or 1 without its guard:
 *       stdio.c), becomes CACHED at the kernel's offset, the engine
 *       forgetting what the others may have changed. Inherited
 *       descriptions have no counter (their other holders are unknown).
 *
 * What another process sees: each sharer's bytes at the offsets the kernel
 * gave them, on disk at the consistency points (CONTRACT.md section 3);
 * until then a reader may see a sharer's later bytes before its earlier
 * ones, or zeros where a sharer's bytes are still cached.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"
#include "wcache/ucopy.h"

int wc_desc_share_locked(int fd, struct wc_desc *d, enum wc_reason why)
{
    if (d->mode != WC_D_CACHED)
        return WC_SHARE_DONE;
    if (d->append) {
        wc_desc_through_locked(fd, d, why);
        wc_mapped_add(d->dev, d->ino);
        return WC_SHARE_ALL_THROUGH;
    }
    wc_desc_sync_locked(fd, d, why);
    d->mode = WC_D_RESERVE;
    return WC_SHARE_OTHERS_THROUGH;
}

void wc_share_finish(int how, dev_t dev, ino_t ino, const struct wc_desc *d,
                     enum wc_reason why)
{
    if (how == WC_SHARE_OTHERS_THROUGH)
        wc_file_others_through(dev, ino, d, why);
    else if (how == WC_SHARE_ALL_THROUGH)
        wc_file_all_through(dev, ino, why);
}

void wc_fd_std(int fd, int with_process)
{
    if (fd == 1 && !with_process && wc_stdout_quiet()) {
        /* stdio.c invariant (2): guarded, unless it is shared already
         * (RESERVE or THROUGH: on 0 or 2 too, or with another process). */
        struct wc_desc *d = wc_fd_get(fd);
        if (d && !wc_desc_lock(fd, d)) {
            int ok = !d->shared && !d->stdio &&
                     (d->mode == WC_D_WATCH || d->mode == WC_D_CACHED);
            if (ok) {
                __atomic_store_n(&wc_guard_seen, 1, __ATOMIC_SEQ_CST);
                __atomic_store_n(&d->guard, 1, __ATOMIC_RELAXED);
            }
            wc_unlock(&d->lock);
            if (ok)
                return;
        }
    }
    wc_fd_share(fd, with_process);
}

void wc_fd_share(int fd, int with_process)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (!d || wc_desc_lock(fd, d))
        return;
    int how = wc_desc_share_locked(fd, d, WC_WHY_OTHER);
    if (with_process)
        d->shared = 1;
    if (d->mode == WC_D_WATCH)
        d->stdio = 1;           /* shared when adopted (fdtab.c) */
    dev_t dev = d->dev;
    ino_t ino = d->ino;
    wc_unlock(&d->lock);
    wc_share_finish(how, dev, ino, d, WC_WHY_OTHER);
}

/* ---- holders (invariant (5)) ------------------------------------------ */

#define CELLS_SIZE 4096u

static struct wc_lock g_cells_lock; /* protects g_cells, g_ncells; a leaf */
static int *g_cells;                /* counters made here (MAP_SHARED) */
static unsigned g_ncells;

static int *cell_new(void)
{
    int *c = NULL;
    wc_lock(&g_cells_lock);
    if (!g_cells) {
        void *m = REAL(mmap)(NULL, CELLS_SIZE, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        g_cells = m == MAP_FAILED ? NULL : m;
        g_ncells = 0;
    }
    if (g_cells && g_ncells < CELLS_SIZE / sizeof *g_cells)
        c = &g_cells[g_ncells++];
    wc_unlock(&g_cells_lock);
    return c;                       /* NULL: not counted, stays shared */
}

void wc_holders_fork(struct wc_desc *d, unsigned gen)
{
    if (d->hgen == gen)             /* on several descriptors: once */
        return;
    d->hgen = gen;
    if (d->holders) {
        __atomic_add_fetch(d->holders, 1, __ATOMIC_ACQ_REL);
        return;
    }
    if (d->shared)                  /* holders unknown */
        return;
    int *c = cell_new();
    if (c) {
        __atomic_store_n(c, 2, __ATOMIC_RELEASE);
        d->holders = c;
    }
}

void wc_holders_after_fork_child(void)
{
    /* The parent's region stays mapped for the counters the child got;
     * new ones go to a region of the child's own. */
    g_cells_lock.v = 0;
    g_cells = NULL;
    g_ncells = 0;
}

/* May d, held by this process alone, keep its offset to itself? Not on
 * descriptor 0 or 2 (glibc writes there behind the engine), and on 1 only
 * while guarded (stdio.c invariant (2)). */
static int private_ok(const struct wc_desc *d)
{
    for (unsigned k = 0; k < 3 && k < wc_nfds; k++)
        if (__atomic_load_n(&wc_fds[k], __ATOMIC_ACQUIRE) == d &&
            (k != 1 || !__atomic_load_n(&d->guard, __ATOMIC_RELAXED)))
            return 0;
    return 1;
}

/* Invariant (5): the other holders let d go. Caller holds d->lock. */
static void now_alone(int fd, struct wc_desc *d)
{
    d->shared = 0;
    if (!private_ok(d))
        return;
    int e = errno;
    off_t k = REAL(lseek)(fd, 0, SEEK_CUR);
    errno = e;
    if (k < 0)
        return;
    wc_file_invalidate(d->file, WC_WHY_OTHER);
    d->pos = k;
    d->kstale = 0;
    d->mode = WC_D_CACHED;
    wc_debug_fd(fd, NULL, "its other holders let it go");
}

ssize_t wc_reserve_write(int fd, struct wc_desc *d, const struct iovec *iov,
                         int iovcnt, int vec)
{
    if (d->accmode != O_WRONLY && d->accmode != O_RDWR)
        return -EBADF;
    ssize_t n;
    if (vec) {
        n = wc_iov_count(iov, iovcnt);
    } else {
        n = (ssize_t)(iov->iov_len > WC_MAX_RW_COUNT ? WC_MAX_RW_COUNT
                                                     : iov->iov_len);
        if (!wc_access_ok(iov->iov_base, (size_t)n))
            n = -EFAULT;
    }
    if (n <= 0)
        return n;
    off_t end = REAL(lseek)(fd, n, SEEK_CUR);
    if (end < 0) {
        /* Past the file system's limit: the kernel decides (EFBIG...). */
        ssize_t r = vec ? REAL(writev)(fd, iov, iovcnt)
                        : REAL(write)(fd, iov->iov_base, iov->iov_len);
        r = r < 0 ? -errno : r;
        off_t k = REAL(lseek)(fd, 0, SEEK_CUR);
        wc_file_invalidate(d->file, WC_WHY_OTHER);
        if (k >= 0)
            d->pos = k;
        return r;
    }
    off_t start = end - n;
    if (start != d->pos)                           /* invariant (2) */
        wc_file_invalidate(d->file, WC_WHY_OTHER);
    off_t where = 0;
    /* The engine's short path first: a reservation that follows this
     * process's last one continues its last write. */
    ssize_t r = vec ? WC_FAST_NO
                    : wc_write_fast(d->file, iov->iov_base, (size_t)n, start,
                                    0, &where);
    if (r == WC_FAST_NO)
        r = vec ? wc_pwritev(d->file, iov, iovcnt, start, 0, &where)
                : wc_pwrite(d->file, iov->iov_base, (size_t)n, start, 0,
                            &where);
    off_t done = start + (r > 0 ? r : 0);
    if (done != end && REAL(lseek)(fd, 0, SEEK_CUR) == end)   /* (3) */
        REAL(lseek)(fd, done, SEEK_SET);
    d->pos = done;
    if (unlikely(d->holders) && d->shared &&
        __atomic_load_n(d->holders, __ATOMIC_ACQUIRE) == 1)
        now_alone(fd, d);
    return r;
}

/* A descriptor open since start-up (WC_NC_START), at its first write
 * (stats.c): a writable regular file is cached as a description shared
 * with the parent (a shell, a job), its offsets reserved; `prog >> log`,
 * a shared O_APPEND description, could only pass through, and is left
 * untracked (nothing per call). One the image before exec held alone
 * (`own`, proc.c invariant (6)) is cached as one this process opened.
 * Returns 1 when fd is tracked now. */
int wc_fd_adopt(int fd, int own)
{
    struct stat st;
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fl < 0 || wc_fd_is_internal(fd) || REAL(fstat)(fd, &st) != 0 ||
        !S_ISREG(st.st_mode) || (fl & O_ACCMODE) == O_RDONLY) {
        wc_nc_mark(fd, WC_NC_UNKNOWN);
        return 0;
    }
    if ((fl & O_APPEND) && !own) {
        wc_nc_mark(fd, WC_NC_INHERITED);
        return 0;
    }
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = REAL(readlink)(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    off_t k = REAL(lseek)(fd, 0, SEEK_CUR);
    int e = wc_work_begin();
    wc_fd_opened_known(fd, AT_FDCWD, n > 0 ? path : NULL, fl & ~O_TRUNC,
                       &st);
    struct wc_desc *d = wc_fd_get(fd);
    if (d && !wc_desc_lock(fd, d)) {
        d->pos = k < 0 ? 0 : k;
        d->kstale = 0;
        wc_unlock(&d->lock);
    }
    /* Shared with the parent: offsets reserved. */
    wc_fd_std(fd, !own);
    wc_debug_fd(fd, n > 0 ? path : NULL,
                own ? "inherited, this process's alone" : "inherited");
    wc_work_end(e);
    return wc_fd_get(fd) != NULL;
}
