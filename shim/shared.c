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
 * start-up rather than THROUGH: they cost nothing per call that way; at
 * the first write through one, its file passes through for good (every
 * other description of it THROUGH, after a write-back: wc_fd_adopt).
 *
 * A description is shared when it is installed on 0 or 2, or on 1 unless
 * guarded (open, dup2, start-up: stdio.c invariant (2)), when it is
 * inherited at start-up (unless the image before exec handed it over:
 * proc.c invariant (6)), when a child is created that gets it (fork,
 * posix_spawn, system, popen; until the holders counted by (5) let go),
 * and in that child at its first write through it (fdtab.c,
 * wc_desc_adopt_locked), and when the program sends it over a socket (7).
 *
 * Invariants of a RESERVE description (d->lock held for each step):
 *   (1) Every dirty byte it wrote lies below the offset: write() reserves
 *       [start, start + n) before the bytes are cached at `start`, with
 *       lseek(fd, n, SEEK_CUR) (the kernel's f_pos lock makes the
 *       reservation atomic against every other user of the offset), or
 *       in the offset's cell (6); lseek anywhere else, pwrite, reads and
 *       every other call write the file back first. So writes at the
 *       offset by glibc or by another process never overlap bytes that
 *       the cache writes back later, and each sharer's bytes stay where
 *       the kernel would have put them.
 *   (2) d->pos is where this process left the offset; a reservation that
 *       starts elsewhere means someone else wrote (maybe extending the
 *       file) or moved it: the engine writes back and forgets what it
 *       knew of the file, size included, right after caching the write
 *       (never between the reservation and the copy: a death there left
 *       the reserved range a gap of zeros in the file, and the write-back
 *       made that window as long as a round trip to a FUSE server: a
 *       probe killing one of `{ a & b & wait; } > log` found one 7 times
 *       in 10 on bindfs, 1 in 10 after). Caching first with what the
 *       engine knew is safe: its dirty bytes all lie below d->pos (1), so
 *       the others' bytes in [d->pos, start) are never written over
 *       (write-back writes only the program's ranges), and the write
 *       reaches the size it sets, which no write-back then shortens.
 *       Such a write also asks the description's flags, which another
 *       holder may have changed with the offset (F_SETFL O_APPEND, then
 *       lseek): with O_APPEND, O_DIRECT or O_SYNC the description
 *       passes through from then on, its bytes written back first, as
 *       shared descriptions of that kind do (README); the write went
 *       over the file's first bytes (a probe, 3 of 3).
 *   (3) A short or failed write gives back the unused part of its
 *       reservation when nobody reserved after it (the offset is still at
 *       the reservation's end), so the offset ends where the kernel's would.
 *   (4) Every other description of the file in this process is THROUGH,
 *       and later opens of it are too (the registry entry is marked): the
 *       file changes behind the engine, and only this description notices.
 *   (5) Holders are counted where the shim sees them all: a description
 *       this process holds alone (opened here, or alone again by (5))
 *       gets, when a child is created that gets it, a cell in memory
 *       shared with that child (a memfd mapped MAP_SHARED, inherited by
 *       fork, passed on by exec: proc.c invariant (6)), its count set to
 *       2; each later child creation by any holder adds one; a holder
 *       whose last descriptor of it goes (close, dup2 over it: the child
 *       of `$(...)` in a shell, the shell's side of `cmd &`) first writes
 *       the file back, then subtracts one. Exit subtracts nothing (the
 *       kernel may still write a stream's buffer after the shim's exit
 *       work), nor does an exec (the new image holds it on), nor anything
 *       the shim does not see (a descriptor sent over a socket,
 *       posix_spawn's file actions): the count only errs high. A shared
 *       RESERVE description that reads 1 is held by this process alone:
 *       at its next write it is no longer shared and, unless stdio keeps
 *       it RESERVE (descriptor 0 or 2, or 1 without its guard: stdio.c),
 *       becomes CACHED at the offset, the engine forgetting what the
 *       others may have changed. Inherited descriptions have no cell
 *       (their other holders are unknown), unless exec handed one over.
 *   (6) The offset in the cell. Every holder of a description with a
 *       cell runs the shim and maps the cell: it was held alone by the
 *       process that made the cell, and every other holder came from a
 *       holder by fork or by an exec that handed the cell over. So while
 *       none of them lets the kernel's offset be used, the offset can
 *       live in the cell, where a reservation is one compare-and-swap
 *       instead of an lseek (1.1 us on ext4, a round trip on some FUSE
 *       file systems). The cell's word `pos`:
 *
 *         CELL (pos = the offset; the kernel's is stale, nobody reads it)
 *           |  cell_take: CAS to pos | MOVING, mover = pid
 *           v
 *         MOVING --lseek(fd, pos, SEEK_SET)--> KERNEL (pos | KERNEL: the
 *           |                                  kernel's offset is the
 *           |                                  offset, for good: (1)'s
 *           |                                  lseek reservations)
 *           +--(an exec's wc_cell_sync_kernel: the same lseek)--> CELL
 *
 *       A cell is made CELL at fork for a writable, non-O_APPEND
 *       description on a regular file not installed on 0 or 2 nor on 1
 *       unguarded (stdio writes there at the kernel's offset), from the
 *       kernel's offset, exact then; else KERNEL at once. A holder
 *       settles it (MOVING then KERNEL, wc_cell_settle, no lock: the word
 *       is atomic) before anything uses the kernel's offset: lseek (but
 *       SEEK_CUR 0, answered from the cell), read, a write the kernel
 *       makes (WATCH, THROUGH, RWF flags, sendfile, splice...), stdio
 *       (installed on 0 or 2, the guard on 1 fenced), O_APPEND, an exec
 *       that does not hand the cell over (an image without the shim, a
 *       static program, a script) and children glibc execs itself
 *       (posix_spawn, system, popen), and when it finds itself alone
 *       ((5): the offset becomes its own again). Its exit settles only
 *       descriptor 1's cell while glibc's stdout holds output (glibc
 *       writes it after the shim's exit work); so a holder that exits
 *       (`{ a; b; } > f`, a child of `(...)`) leaves the cell to the
 *       others, and a call made after that work all the same (a library
 *       finalised after this one) settles its descriptor's cell first
 *       (wc_cells_late, in wc_fd_get). Waiters on MOVING yield; a
 *       mover that died between its two steps is replaced by one of
 *       them. Not seen: a descriptor taken with pidfd_getfd (as for a
 *       file cached as the process's own); one sent over a socket is (7).
 *   (7) A descriptor the program sends over a socket (SCM_RIGHTS in
 *       sendmsg, sendmmsg, or their system calls through syscall()) is
 *       shared from that call with a process the shim may not run in,
 *       which writes and reads at the kernel's offset as soon as it has
 *       it. So before the call each such description is a consistency
 *       point (its file written back, its offset the kernel's: its cell
 *       settled for good) and becomes shared with unknown holders, as an
 *       inherited one is: RESERVE, or THROUGH for good when O_APPEND; a
 *       WATCH one is adopted so later. The message is the program's
 *       memory, read without faulting (the kernel answers a bad one); a
 *       call from a signal handler that interrupted the shim (nested)
 *       cannot take the locks and passes as it is.
 *   (8) A descriptor that arrives over a socket (SCM_RIGHTS in recvmsg,
 *       recvmmsg or their system calls) comes from another process, which
 *       may write through it behind the engine: it is taken in as an
 *       inherited one is at its first write (wc_fd_adopt: RESERVE at the
 *       kernel's offset, its file's other descriptions here THROUGH; an
 *       O_APPEND one left untracked), at once, before the program can
 *       use it; a read-only one is tracked as opened here (its reads see
 *       what this process caches of the file). Untracked, its writes went
 *       to the kernel while this process cached the same file through a
 *       description of its own, whose write-back then wrote older bytes
 *       over them, and its reads missed the cached bytes.
 *
 * What another process sees: each sharer's bytes at the offsets the kernel
 * (or the cell) gave them, on disk at the consistency points (CONTRACT.md
 * section 3); until then a reader may see a sharer's later bytes before
 * its earlier ones, or zeros where a sharer's bytes are still cached. A
 * process outside the holders that reads the kernel's offset of a
 * description in CELL state (/proc/PID/fdinfo) sees it behind, as for a
 * file a process caches as its own.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/raw.h"
#include "wcache/ucopy.h"

int wc_desc_share_locked(int fd, struct wc_desc *d, enum wc_reason why)
{
    if (d->mode != WC_D_CACHED)
        return WC_SHARE_DONE;
    if (d->append) {
        /* THROUGH, and for good in wc_share_finish (until then its
         * kernel appends go with engine work, while another description
         * of the file may still cache). */
        wc_desc_through_locked(fd, d, why);
        return WC_SHARE_ALL_THROUGH;
    }
    wc_desc_sync_locked(fd, d, why);
    wc_file_shared(d->file);        /* a replay allows the others' bytes */
    d->mode = WC_D_RESERVE;
    return WC_SHARE_OTHERS_THROUGH;
}

WC_HOT
void wc_share_finish(int how, dev_t dev, ino_t ino, const struct wc_desc *d,
                     enum wc_reason why)
{
    if (how == WC_SHARE_OTHERS_THROUGH)
        wc_file_others_through(dev, ino, d, why);
    else if (how == WC_SHARE_ALL_THROUGH)
        wc_file_for_good(dev, ino, why);
}

/* How descriptors 0-2 other than fd hold d's file, which glibc writes
 * behind the shim (stdio.c invariants (1), (2)), whether the shim tracks
 * them or not (inherited and never written through it: glibc's stderr
 * messages): STD_NONE; STD_SAME, only through d's own description
 * (kcmp: `prog > f 2>&1`); STD_OTHER, through another one (`prog > f 2>
 * f`, `2>> f`, `< f`), or one kcmp cannot tell. Raw calls: errno stays
 * the program's. */
enum { STD_NONE, STD_SAME, STD_OTHER };
static int std_holders(int fd, const struct wc_desc *d)
{
    int how = STD_NONE;
    long me = wc_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
    for (int k = 0; k <= 2; k++) {
        struct stat st;
        if (k == fd || wc_k_fstat(k, &st) != 0 || st.st_dev != d->dev ||
            st.st_ino != d->ino)
            continue;
        if (wc_raw_syscall(SYS_kcmp, me, me, KCMP_FILE, fd, k, 0) != 0)
            return STD_OTHER;
        how = STD_SAME;
    }
    return how;
}

void wc_fd_std(int fd, int with_process)
{
    struct wc_desc *d = wc_fd_get(fd);
    int holders = d ? std_holders(fd, d) : STD_NONE;
    if (holders == STD_OTHER) {
        /* glibc's bytes through the other description and the cached
         * ones would land in the order write-back makes, not the
         * program's (`prog > f 2> f`: stdout's cached lines were written
         * back over the stderr message the kernel keeps over them): the
         * file passes through for good. */
        wc_file_for_good(d->dev, d->ino, WC_WHY_OTHER);
        return;
    }
    if (fd == 1 && !with_process && wc_stdout_quiet() &&
        holders == STD_NONE) {
        /* stdio.c invariant (2): guarded, unless it is shared already
         * (RESERVE or THROUGH: on 0 or 2 too, tracked or not, or with
         * another process). */
        if (d && !wc_desc_lock(fd, d)) {
            /* A description with its offset in a cell (invariant (6))
             * is guarded as one held alone is. */
            struct wc_cell *c = d->cell;
            int in_cell = c && !(__atomic_load_n(&c->pos, __ATOMIC_ACQUIRE) &
                                 WC_CELL_KERNEL);
            int ok = !d->stdio &&
                     (in_cell || (!d->shared && (d->mode == WC_D_WATCH ||
                                                 d->mode == WC_D_CACHED)));
            if (ok) {
                __atomic_store_n(&wc_guard_seen, 1, __ATOMIC_SEQ_CST);
                __atomic_store_n(&d->guard, 1, __ATOMIC_RELAXED);
            }
            wc_blk_unlock(&d->lock);
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
    wc_cell_settle(fd, d);      /* stdio writes at the kernel's offset */
    int how = wc_desc_share_locked(fd, d, WC_WHY_OTHER);
    if (with_process)
        d->shared = 1;
    if (d->mode == WC_D_WATCH)
        d->stdio = 1;           /* shared when adopted (fdtab.c) */
    dev_t dev = d->dev;
    ino_t ino = d->ino;
    wc_blk_unlock(&d->lock);
    wc_share_finish(how, dev, ino, d, WC_WHY_OTHER);
}

static int private_ok(const struct wc_desc *d);

/* ---- holders and offsets in shared memory (invariants (5), (6)) ------- */

/* A region: one page of a memfd, mapped MAP_SHARED by every process that
 * got one of its cells (fork copies the mapping; exec passes the memfd,
 * proc.c invariant (6)). Cells are taken by any of them (`next`, atomic)
 * and never given back. */
#define REGION_SIZE 65536u             /* 4095 cells; pages touched as used */
#define REGION_MAGIC 0x77636c6cu            /* "wcll" */
#define REGION_CELLS ((REGION_SIZE - 16) / sizeof(struct wc_cell))
#define REGIONS_MAX 16
#define CELL_FAR (1ULL << 40)   /* offsets left to the file system's limits */

struct region_head {
    unsigned magic;
    unsigned next;                          /* cells taken (atomic) */
    unsigned pad[2];
    struct wc_cell cells[];
};

struct region {
    struct region_head *h;
    int fd;                             /* ours, placed as ownfd.c places */
    dev_t dev;                              /* the memfd's identity */
    ino_t ino;
};

static struct wc_lock g_cells_lock; /* protects g_regions, g_nregions (not
                                       the cells: atomics); taken inside
                                       desc->lock, before g_limit_lock
                                       (ownfd.c: the memfd's placement) */
static struct region g_regions[REGIONS_MAX];
static unsigned g_nregions;

/* Record a mapped region whose memfd is `fd` (ours: placed, internal).
 * Caller holds g_cells_lock. */
static struct region *region_add(struct region_head *h, int fd)
{
    struct stat st;
    if (g_nregions == REGIONS_MAX || wc_k_fstat(fd, &st) != 0)
        return NULL;
    struct region *r = &g_regions[g_nregions++];
    r->h = h;
    r->fd = fd;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    return r;
}

/* The region whose memfd is fd, or NULL. Caller holds g_cells_lock, or
 * is a fork child (alone). */
static struct region *region_by_fd(int fd)
{
    for (unsigned i = 0; fd >= 0 && i < g_nregions; i++)
        if (g_regions[i].fd == fd)
            return &g_regions[i];
    return NULL;
}

/* Is r's number still its memfd? The program cannot close or replace it
 * through the shim; a raised limit and a raw call could. */
static int region_fd_ok(const struct region *r)
{
    struct stat st;
    return r->fd >= 0 && wc_k_fstat(r->fd, &st) == 0 &&
           st.st_dev == r->dev && st.st_ino == r->ino;
}

/* A memfd placed above the program's limit, marked internal. */
static int region_fd(int fd)
{
    int placed = wc_own_fd_ops.place(fd);
    wc_k_close(fd);
    return placed;
}

/* The region in memfd fd, mapped: made here (`fresh`), or one another
 * process made (its size and magic checked); NULL if it cannot be. */
static struct region_head *region_map(int fd, int fresh)
{
    struct stat st;
    if (fresh ? REAL(ftruncate)(fd, REGION_SIZE) != 0
              : wc_k_fstat(fd, &st) != 0 || st.st_size != REGION_SIZE)
        return NULL;
    struct region_head *h = REAL(mmap)(NULL, REGION_SIZE,
                                       PROT_READ | PROT_WRITE, MAP_SHARED,
                                       fd, 0);
    if (h == MAP_FAILED)
        return NULL;
    if (fresh)
        h->magic = REGION_MAGIC;
    if (h->magic != REGION_MAGIC) {
        REAL(munmap)(h, REGION_SIZE);
        return NULL;
    }
    return h;
}

/* Record region h, whose memfd fd (placed: ours) is kept with it; on
 * failure both go. Caller holds g_cells_lock. */
static struct region *region_keep(struct region_head *h, int fd)
{
    struct region *r = h && fd >= 0 ? region_add(h, fd) : NULL;
    if (!r && h)
        REAL(munmap)(h, REGION_SIZE);
    if (!r && fd >= 0) {
        wc_k_close(fd);
        wc_own_fd_ops.closed(fd);
    }
    return r;
}

static struct region *region_new(void)
{
    int e = errno;
    wc_fd_window_open(0);               /* ownfd.c invariant (7) */
    long m = wc_raw_syscall(SYS_memfd_create, (long)"wcache-cells",
                            MFD_CLOEXEC, 0, 0, 0, 0);
    int fd = m < 0 ? -1 : region_fd((int)m);
    wc_fd_window_close();
    struct region *r = region_keep(fd >= 0 ? region_map(fd, 1) : NULL, fd);
    errno = e;
    return r;
}

static struct wc_cell *cell_new(void)
{
    struct wc_cell *c = NULL;
    wc_lock(&g_cells_lock);
    for (int tries = 0; !c && tries < 2; tries++) {
        struct region *r = g_nregions ? &g_regions[g_nregions - 1] : NULL;
        if (r) {
            unsigned i = __atomic_fetch_add(&r->h->next, 1, __ATOMIC_RELAXED);
            if (i < REGION_CELLS)
                c = &r->h->cells[i];
        }
        if (!c && !region_new())
            break;
    }
    wc_unlock(&g_cells_lock);
    return c;                       /* NULL: not counted, stays shared */
}

void wc_holders_fork(int fd, struct wc_desc *d, unsigned gen)
{
    if (d->hgen == gen)             /* on several descriptors: once */
        return;
    d->hgen = gen;
    if (d->cell) {
        __atomic_add_fetch(&d->cell->holders, 1, __ATOMIC_ACQ_REL);
    } else if (!d->shared) {        /* else its holders are unknown */
        struct wc_cell *c = cell_new();
        if (!c)
            return;
        /* Invariant (6): the offset moves into the cell, from the
         * kernel's, exact now (a fork is a consistency point), for a
         * description written at its offset: writable, not O_APPEND. */
        int e = errno;
        off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
        errno = e;
        if (d->accmode != O_RDONLY)
            wc_ident_locked(fd, d);     /* a device seeks too */
        int cell = k >= 0 && d->accmode != O_RDONLY && !d->append &&
                   d->ino != 0 &&
                   d->writes != WC_WRITES_NOT_REGULAR &&
                   (d->mode == WC_D_WATCH || d->mode == WC_D_RESERVE) &&
                   private_ok(d);
        c->holders = 2;
        c->mover = 0;
        __atomic_store_n(&c->pos,
                         cell ? (unsigned long long)k
                              : (unsigned long long)(k < 0 ? 0 : k) |
                                    WC_CELL_KERNEL,
                         __ATOMIC_RELEASE);
        __atomic_store_n(&d->cell, c, __ATOMIC_RELEASE);
        if (cell)
            d->pos = k;
    }
}

/* Whether fd is a region's memfd (a fork child's pass over its internal
 * descriptors: the others are the engine's). The child is alone: no lock. */
WC_ONCE
int wc_cells_region_fd(int fd)
{
    return region_by_fd(fd) != NULL;
}

WC_ONCE
void wc_holders_after_fork_child(void)
{
    /* The regions stay mapped, and their descriptors (the parent's,
     * inherited) stay ours: an exec here may hand their cells on. */
    WC_RESET(g_cells_lock.v, 0);
    for (unsigned i = 0; i < g_nregions; i++)
        wc_fd_mark_internal(g_regions[i].fd, 1);
}

/* Take c for a move: from a value without WC_CELL_MOVING to one with it
 * (returned: the offset at that moment), waiting while another process
 * moves it; a mover that died between its steps (SIGKILL) is replaced.
 * Returns with WC_CELL_KERNEL set if the cell was (or got) settled. */
static unsigned long long cell_take(struct wc_cell *c)
{
    unsigned long long v = __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE);
    for (unsigned spins = 0; !(v & WC_CELL_KERNEL);
         v = __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE)) {
        if (!(v & WC_CELL_MOVING)) {
            if (__atomic_compare_exchange_n(&c->pos, &v, v | WC_CELL_MOVING,
                                            0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&c->mover, (int)getpid(), __ATOMIC_RELEASE);
                return v;
            }
            continue;
        }
        if ((++spins & 127) == 0) {     /* every 7 ms or so, once asleep */
            int m = __atomic_load_n(&c->mover, __ATOMIC_ACQUIRE);
            if (m > 0 && kill(m, 0) != 0 && errno == ESRCH &&
                __atomic_compare_exchange_n(&c->mover, &m, (int)getpid(), 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                return v & ~WC_CELL_MOVING;
        }
        wc_backoff(spins);
    }
    return v;
}

void wc_cell_settle_slow(int fd, struct wc_cell *c)
{
    int e = errno;
    unsigned long long v = cell_take(c);
    if (!(v & WC_CELL_KERNEL)) {
        off_t at = (off_t)(v & WC_CELL_POS);
        wc_k_lseek(fd, at, SEEK_SET);
        __atomic_store_n(&c->pos, (unsigned long long)at | WC_CELL_KERNEL,
                         __ATOMIC_RELEASE);
        wc_log(WC_LOG_DEBUG, "fd %d: its offset is the kernel's again, at "
               "%lld", fd, (long long)at);
    }
    errno = e;
}

void wc_cell_sync_kernel(int fd, struct wc_cell *c)
{
    int e = errno;
    unsigned long long v = cell_take(c);
    if (!(v & WC_CELL_KERNEL)) {
        wc_k_lseek(fd, (off_t)(v & WC_CELL_POS), SEEK_SET);
        __atomic_store_n(&c->mover, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&c->pos, v & WC_CELL_POS, __ATOMIC_RELEASE);
    }
    errno = e;
}

/* Invariant (6): [end - n, end) reserved in the cell (end returned), or
 * -1: the kernel's offset is the offset (settled, or settled here for an
 * offset near the file system's limits, which the kernel enforces). */
WC_HOT
static off_t cell_reserve(int fd, struct wc_cell *c, ssize_t n)
{
    unsigned long long v = __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE);
    for (unsigned spins = 0;;) {
        if (v & WC_CELL_KERNEL)
            return -1;
        if (v & WC_CELL_MOVING) {       /* an exec's sync, or a settle */
            if (++spins == 1024) {
                /* Long (50 ms): its mover may be dead (cell_take
                 * replaces it). */
                wc_cell_settle_slow(fd, c);
                return -1;
            }
            wc_backoff(spins);
            v = __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE);
            continue;
        }
        if (v + (unsigned long long)n >= CELL_FAR) {
            wc_cell_settle_slow(fd, c);
            return -1;
        }
        if (__atomic_compare_exchange_n(&c->pos, &v,
                                        v + (unsigned long long)n, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (off_t)v + n;
    }
}


WC_ONCE
void wc_cells_exit(void)
{
    /* (The table's page is not touched when nothing was ever tracked
     * there: a page fault less at every exit.) */
    struct wc_desc *d = wc_fd_tracked_hi() > 1 ? wc_fd_get(1) : NULL;
    if (d && !wc_stdout_quiet())
        wc_cell_settle(1, d);
    /* Sequentially consistent: an open that installs its description
     * and then reads this, against the exit pass that follows and reads
     * the slots (fdtab.c wc_fd_opened_known). */
    __atomic_store_n(&wc_cells_late, 1, __ATOMIC_SEQ_CST);
}

void wc_cell_settle_fd(int fd)
{
    if (wc_state == WC_ST_VFORK && wc_vfork_touched(fd))
        return;         /* not the parent's description any more */
    struct wc_desc *d = wc_fd_peek(fd);
    if (d)
        wc_cell_settle(fd, d);
}

void wc_cells_settle_all(void)
{
    unsigned hi = wc_fd_tracked_hi();
    for (unsigned fd = 0; fd < hi; fd++)
        wc_cell_settle_fd((int)fd);
}

int wc_cells_fd_move(int fd)
{
    int r = -ENOENT;
    wc_lock(&g_cells_lock);
    struct region *g = region_by_fd(fd);
    if (g) {
        /* Elsewhere if there is room; else the memfd goes (the mapping
         * stays: only an exec could not hand its cells over, and settles
         * them instead). Either way the number is the program's. */
        int n = wc_own_fd_ops.place(fd);
        wc_k_close(fd);
        wc_own_fd_ops.closed(fd);
        g->fd = n >= 0 ? n : -1;
        r = 0;
    }
    wc_unlock(&g_cells_lock);
    return r;
}

int wc_cell_export(struct wc_cell *c, struct wc_cell_ref *ref)
{
    int e = errno, fd = -1;
    wc_lock(&g_cells_lock);
    for (unsigned i = 0; i < g_nregions; i++) {
        struct region *r = &g_regions[i];
        if (c < r->h->cells || c >= r->h->cells + REGION_CELLS)
            continue;
        /* Still our memfd? It goes to the new image as it is, at its
         * number (placed where the program does not reach: ownfd.c (1),
         * (1b)), FD_CLOEXEC cleared: no descriptor is made, so none takes
         * a number the program may be naming or about to get (ownfd.c
         * (7)). */
        if (region_fd_ok(r) && wc_k_fcntl(r->fd, F_SETFD, 0) == 0) {
            fd = r->fd;
            ref->rfd = fd;
            ref->idx = (unsigned)(c - r->h->cells);
            ref->dev = (unsigned long long)r->dev;
            ref->ino = (unsigned long long)r->ino;
        }
        break;
    }
    wc_unlock(&g_cells_lock);
    errno = e;
    return fd;
}

void wc_cell_unexport(int rfd)
{
    int e = errno;
    wc_lock(&g_cells_lock);
    /* Still the region's (not moved meanwhile for the program: then the
     * number is the program's, and so are its flags)? */
    struct region *r = region_by_fd(rfd);
    if (r && region_fd_ok(r))
        wc_k_fcntl(rfd, F_SETFD, FD_CLOEXEC);
    wc_unlock(&g_cells_lock);
    errno = e;
}

struct wc_cell *wc_cell_import(int rfd, unsigned idx)
{
    struct wc_cell *c = NULL;
    struct stat st;
    int e = errno;
    if (idx >= REGION_CELLS || wc_k_fstat(rfd, &st) != 0)
        goto out;
    wc_lock(&g_cells_lock);
    struct region *r = NULL;
    for (unsigned i = 0; i < g_nregions && !r; i++)
        if (g_regions[i].dev == st.st_dev && g_regions[i].ino == st.st_ino)
            r = &g_regions[i];
    if (!r && g_nregions < REGIONS_MAX) {
        struct region_head *h = region_map(rfd, 0);
        r = region_keep(h, h ? wc_own_fd_ops.place(rfd) : -1);
    }
    if (r)
        c = &r->h->cells[idx];
    wc_unlock(&g_cells_lock);
out:
    errno = e;
    return c;
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
    wc_cell_settle(fd, d);          /* the kernel's offset, exact */
    if (!private_ok(d))
        return;
    int e = errno;
    off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
    errno = e;
    if (k < 0)
        return;
    wc_file_invalidate(d->file, WC_WHY_OTHER);
    d->pos = k;
    d->kstale = 0;
    d->mode = WC_D_CACHED;
    wc_debug_fd(fd, NULL, "its other holders let it go");
}

/* The count a write of iov makes, as the kernel's write counts it: the
 * whole count checked before it clamps (write(fd, buf, SIZE_MAX) is
 * EFAULT, never a copy of the memory after buf), or -errno. */
static ssize_t write_count(const struct iovec *iov, int iovcnt, int vec)
{
    if (vec)
        return wc_iov_count(iov, iovcnt);
    if (!wc_access_ok(iov->iov_base, iov->iov_len))
        return -EFAULT;
    return (ssize_t)(iov->iov_len > WC_MAX_RW_COUNT ? WC_MAX_RW_COUNT
                                                    : iov->iov_len);
}

/* The flags another holder may have set on the description they share,
 * which every holder's writes obey (invariant (2)): O_APPEND, O_DIRECT,
 * O_SYNC, O_DSYNC, or 0. */
static int shared_write_flags(int fd)
{
    int fl = wc_k_fcntl(fd, F_GETFL, 0);
    return fl >= 0 ? fl & (O_APPEND | O_DIRECT | O_SYNC | O_DSYNC) : 0;
}

/* Give back the end of a reservation [.., end) not written (invariant
 * (3)): the cell's offset goes back to `to` if it still is `end`. 1 if
 * it did; else 0 and the value it had in *seen (if not NULL). */
static int cell_give_back(struct wc_cell *c, off_t end, off_t to,
                          unsigned long long *seen)
{
    unsigned long long v = (unsigned long long)end;
    int r = __atomic_compare_exchange_n(&c->pos, &v, (unsigned long long)to,
                                        0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE);
    if (seen)
        *seen = v;
    return r;
}

ssize_t wc_reserve_write(int fd, struct wc_desc *d, const struct iovec *iov,
                         int iovcnt, int vec)
{
    if (d->accmode != O_WRONLY && d->accmode != O_RDWR)
        return -EBADF;
    ssize_t n = write_count(iov, iovcnt, vec);
    if (n <= 0)
        return n;
    struct wc_cell *c = d->cell;
    off_t end = c ? cell_reserve(fd, c, n) : -1;
    if (end < 0) {
        end = wc_k_lseek(fd, n, SEEK_CUR);
        __atomic_fetch_add(&wc_reserve_calls, 1, __ATOMIC_RELAXED);
    }
    if (end < 0) {
        /* No reservation past the largest offset lseek allows (the file
         * system's: EINVAL): the kernel's own write answers there, as it
         * would (a short count up to the limit, EFBIG), at the offset,
         * after the cached bytes. */
        return wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, -1, 0, vec);
    }
    off_t start = end - n;
    int moved = start != d->pos;                   /* invariant (2) */
    if (moved) {
        /* Another holder moved the offset: it may have set O_APPEND (or
         * O_DIRECT, O_SYNC) on the description they share. */
        int fl = shared_write_flags(fd);
        if (fl) {
            wc_desc_through_locked(fd, d, WC_WHY_OTHER);
            if (!(fl & O_APPEND))
                wc_k_lseek(fd, start, SEEK_SET);
            return wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, -1, 0, vec);
        }
    }
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
    if (moved)
        wc_file_invalidate(d->file, WC_WHY_OTHER);
    off_t done = start + (r > 0 ? r : 0);
    unsigned long long v = 0;
    if (done != end &&                                      /* (3) */
        !(c && cell_give_back(c, end, done, &v)) &&
        (!c || (v & WC_CELL_KERNEL)) && wc_k_lseek(fd, 0, SEEK_CUR) == end)
        wc_k_lseek(fd, done, SEEK_SET);
    d->pos = done;
    if (unlikely(r == -WC_EPASS))
        /* The reservation is given back above; the kernel writes at the
         * offset, as for a CACHED description (before, the error went to
         * the program as its write's answer, the bytes nowhere: probe X,
         * a seccomp filter refusing pwritev2). */
        return wc_desc_pass_for_good(fd, d, iov, iovcnt, -1, 0, vec);
    if (unlikely(c != NULL) && d->shared &&
        __atomic_load_n(&c->holders, __ATOMIC_ACQUIRE) == 1)
        now_alone(fd, d);
    return r;
}

WC_HOT
ssize_t wc_cell_write_kernel(int fd, struct wc_desc *d,
                             const struct iovec *iov, int iovcnt, int vec)
{
    struct wc_cell *c = d->cell;
    if (!c || (d->accmode != O_WRONLY && d->accmode != O_RDWR))
        return wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, -1, 0, vec);
    ssize_t n = write_count(iov, iovcnt, vec);
    if (n <= 0)
        return n;
    off_t end = cell_reserve(fd, c, n);
    if (end < 0)        /* the kernel's offset is the offset now */
        return wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, -1, 0, vec);
    off_t start = end - n;
    if (start != d->pos && shared_write_flags(fd)) {    /* as there */
        cell_give_back(c, end, start, NULL);
        return wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, -1, 0, vec);
    }
    ssize_t r = wc_kernel_rw_locked(fd, d, 1, iov, iovcnt, start, 0, vec);
    off_t done = start + (r > 0 ? r : 0);
    if (done != end)                                        /* (3) */
        cell_give_back(c, end, done, NULL);
    d->pos = done;
    return r;
}

static int adopt(int fd, int own, struct wc_cell *c, int refuse);

/* A descriptor open since start-up (WC_NC_START), at its first write
 * (stats.c): a writable regular file is cached as a description shared
 * with the parent (a shell, a job), its offsets reserved; `prog >> log`,
 * a shared O_APPEND description, could only pass through, and is left
 * untracked (nothing per call). One the image before exec held alone
 * (`own`, proc.c invariant (6)) is cached as one this process opened;
 * one it handed over with a cell (`c`, at start-up), as shared with the
 * cell's other holders, its offset in the cell. Returns 1 when fd is
 * tracked now. */
int wc_fd_adopt(int fd, int own, struct wc_cell *c)
{
    if (c && !wc_cfg.inherited)
        return 0;       /* left as inherited and refused (stats.c) */
    return adopt(fd, own, c, 0);
}

/* With WCACHE_INHERITED=0, a descriptor open since start-up at its first
 * write (stats.c): never cached, and a writable regular file it names
 * passes through for good from here (wc_fd_adopt's O_APPEND case). */
void wc_fd_refuse(int fd)
{
    adopt(fd, 0, NULL, 1);
}

static int adopt(int fd, int own, struct wc_cell *c, int refuse)
{
    struct stat st;
    int fl = wc_k_fcntl(fd, F_GETFL, 0);
    if (fl < 0 || wc_fd_is_internal(fd) || wc_k_fstat(fd, &st) != 0 ||
        !S_ISREG(st.st_mode) || (fl & O_ACCMODE) == O_RDONLY) {
        wc_nc_mark(fd, WC_NC_UNKNOWN);
        return 0;
    }
    if (((fl & O_APPEND) && (!own || c)) || refuse) {
        /* Left untracked (nothing per call), so its appends reach the
         * kernel at once, at the real end of the file: nothing of the
         * file may be cached, now or later. It passes through for good
         * from here, as a mapped one: what another description cached is
         * written back first, those descriptions go THROUGH, later opens
         * are not cached. (`prog 3>f 5>>f`: fd 5's line landed inside
         * fd 3's cached bytes, whose write-back then wrote over it.) The
         * same for any writable one when inherited descriptors are not
         * cached (WCACHE_INHERITED=0: `refuse`): its writes reach the
         * kernel at once too. */
        wc_stat_for_good(&st);
        wc_nc_mark(fd, WC_NC_INHERITED);
        return 0;
    }
    char path[4096];
    int named = wc_fd_path(fd, path, sizeof path) > 0;
    off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
    int e = wc_work_begin();
    wc_fd_opened_known(fd, AT_FDCWD, named ? path : NULL, fl & ~O_TRUNC,
                       &st);
    struct wc_desc *d = wc_fd_get(fd);
    int how = WC_SHARE_DONE;
    if (d && !wc_desc_lock(fd, d)) {
        d->pos = k < 0 ? 0 : k;
        d->kstale = 0;
        if (c) {
            how = wc_desc_share_locked(fd, d, WC_WHY_OTHER);
            d->shared = 1;
            /* The old image left the kernel's offset at the cell's; bytes
             * written before this constructor ran went there and moved
             * it: they take their range in the cell, unless another
             * holder reserved meanwhile. */
            unsigned long long v = __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE);
            if (!(v & (WC_CELL_KERNEL | WC_CELL_MOVING)) && k > (off_t)v)
                __atomic_compare_exchange_n(&c->pos, &v,
                                            (unsigned long long)k, 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE);
            d->pos = (off_t)(__atomic_load_n(&c->pos, __ATOMIC_ACQUIRE) &
                             WC_CELL_POS);
            __atomic_store_n(&d->cell, c, __ATOMIC_RELEASE);
        }
        dev_t dev = d->dev;
        ino_t ino = d->ino;
        wc_blk_unlock(&d->lock);
        wc_share_finish(how, dev, ino, d, WC_WHY_OTHER);
    } else {
        d = NULL;
    }
    /* Shared with the parent: offsets reserved. With a cell: on
     * descriptor 1 guarded while stdout is quiet, on 0 and 2 never in the
     * cell (stdio.c invariant (2); wc_fd_std settles it). */
    if (!c)
        wc_fd_std(fd, !own);
    else if (d && fd <= 2)
        wc_fd_std(fd, fd != 1);
    wc_debug_fd(fd, named ? path : NULL,
                c ? "inherited, its offset in a cell"
                  : own ? "inherited, this process's alone" : "inherited");
    wc_work_end(e);
    return c ? d != NULL : wc_fd_get(fd) != NULL;
}

void wc_cell_settle_at(int fd, int rfd, unsigned idx)
{
    int e = errno;
    struct region_head *h = idx < REGION_CELLS ? region_map(rfd, 0) : NULL;
    if (h) {
        wc_cell_settle_slow(fd, &h->cells[idx]);
        REAL(munmap)(h, REGION_SIZE);
    }
    errno = e;
}

/* ---- descriptors sent and received over a socket (7), (8) --------------- */

/* `fn` on every descriptor in the SCM_RIGHTS of a message, walked as the
 * kernel's __scm_send walks it (CMSG_FIRSTHDR, CMSG_NXTHDR): a header it
 * would refuse (EINVAL) ends the walk. The message is the program's
 * memory, read without faulting. */
static void each_fd(const struct msghdr *um, void (*fn)(int fd))
{
    struct msghdr m;
    if (wc_copy_nofault(&m, um, sizeof m) != sizeof m || !m.msg_control ||
        m.msg_controllen < sizeof(struct cmsghdr))
        return;
    const char *ctl = m.msg_control;
    size_t len = m.msg_controllen;
    for (size_t off = 0; len - off >= sizeof(struct cmsghdr);) {
        struct cmsghdr h;
        if (wc_copy_nofault(&h, ctl + off, sizeof h) != sizeof h ||
            h.cmsg_len < sizeof h || h.cmsg_len > len - off)
            return;
        if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS) {
            size_t n = (h.cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n; i++) {
                int fd;
                if (wc_copy_nofault(&fd, ctl + off + CMSG_LEN(0) +
                                             i * sizeof fd,
                                    sizeof fd) != sizeof fd)
                    return;
                fn(fd);
            }
        }
        size_t step = CMSG_ALIGN(h.cmsg_len);
        if (step > len - off)
            break;
        off += step;
    }
}

/* One descriptor the program is sending: a consistency point, then shared
 * with unknown holders. Caller at depth 0, holding no lock. */
static void hand_over(int fd)
{
    if (!wc_fd_get(fd))
        return;
    (void)wc_kernel_before(fd, WC_WHY_OTHER);   /* written back, offset */
    int e = wc_work_begin();
    wc_fd_share(fd, 1);
    wc_debug_fd(fd, NULL, "sent over a socket: shared");
    wc_work_end(e);
}

/* One descriptor that arrived from another process (8), or one open
 * since start-up read through before any write (stats.c (1d)). Caller at
 * depth 0, holding no lock. */
void wc_fd_take_in(int fd, int own)
{
    if ((unsigned)fd >= wc_nfds || wc_fd_get(fd))
        return;
    int fl = wc_k_fcntl(fd, F_GETFL, 0);
    if (fl >= 0 && (fl & O_ACCMODE) == O_RDONLY) {
        int e = wc_work_begin();
        wc_fd_opened(fd, AT_FDCWD, NULL, fl);   /* its reads see the cache */
        wc_work_end(e);
    } else if (!wc_cfg.inherited) {
        wc_fd_refuse(fd);
    } else {
        wc_fd_adopt(fd, own, NULL);
    }
}

static void take_in(int fd)
{
    wc_fd_take_in(fd, 0);
}

/* May this call look at the message? The shim on, not nested, and the
 * fault handler there to read it with (installed now if no cache made it
 * yet: fdtab.c wc_fault_ensure). */
static int may_look(const void *msg)
{
    return msg && wc_state == WC_ST_ON && !wc_depth && wc_fault_ensure();
}

WC_EXPORT ssize_t sendmsg(int s, const struct msghdr *m, int flags)
{
    if (may_look(m))
        each_fd(m, hand_over);
    return REAL(sendmsg)(s, m, flags);
}

WC_EXPORT int sendmmsg(int s, struct mmsghdr *v, unsigned n, int flags)
{
    if (may_look(v))
        for (unsigned i = 0; i < n && i < IOV_MAX; i++)
            each_fd(&v[i].msg_hdr, hand_over);
    return REAL(sendmmsg)(s, v, n, flags);
}

WC_EXPORT ssize_t recvmsg(int s, struct msghdr *m, int flags)
{
    ssize_t r = REAL(recvmsg)(s, m, flags);
    if (r >= 0 && may_look(m)) {
        int e = errno;
        each_fd(m, take_in);
        errno = e;
    }
    return r;
}

WC_EXPORT int recvmmsg(int s, struct mmsghdr *v, unsigned n, int flags,
                       struct timespec *timeout)
{
    int r = REAL(recvmmsg)(s, v, n, flags, timeout);
    if (r > 0 && may_look(v)) {
        int e = errno;
        for (int i = 0; i < r; i++)
            each_fd(&v[i].msg_hdr, take_in);
        errno = e;
    }
    return r;
}
