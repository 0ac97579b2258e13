/*
 * fdtab.c - the fd table and the open file descriptions (the registry of
 * cached files is in registry.c, the per-thread queue of writes made by
 * signal handlers in queue.c).
 *
 * A description's life (struct wc_desc; `refs` counts the fd-table slots
 * pointing to it plus the references lookups hold):
 *
 *            desc_alloc                  install / wc_fd_duped_ref
 *   FREE  ---------------->  NEW  ------------------------------->  LIVE
 *   refs 0   (fields set,    refs 1    (slot[fd] = d; more slots  refs >= 1
 *    ^        lock kept)     no slot    and wc_desc_get refs add)    |
 *    |                                                               |
 *    |  desc_free            wc_desc_release: refs 1 -> 0            |
 *    +---------------------  RELEASING  <----------------------------+
 *                            (under d->lock: file taken out, mode FREE;
 *                             then the engine file is put outside it)
 *
 *   - A reference is taken only from a count that is not zero
 *     (wc_desc_get: compare-and-swap from n >= 1 to n + 1, like the
 *     kernel's get_file_rcu), then the slot is checked again: a stale
 *     pointer to an object that was freed, or freed and reused, either
 *     fails the increment or fails the check and drops what it took.
 *   - d->lock is never re-initialised (desc_alloc sets every other field):
 *     a thread that locked a stale pointer holds a real lock on a real
 *     object, sees that its slot no longer points there, and unlocks; its
 *     bias goes at RELEASING (wc_blk_disown: a new life starts unowned),
 *     so a former owner's fast entry through a stale pointer finds it not
 *     its own, or the new life's owner is itself (wcache/blk.h).
 *     (A fork child, alone, takes every lock as free: wc_after_fork_child.)
 *   - Under d->lock with slot[fd] == d (wc_desc_lock) the description is
 *     LIVE and stays so until unlock: RELEASING takes d->lock first.
 *     Outside it, a description's `file` is used only by the holder of a
 *     reference (wc_desc_get) or of the registry lock (wc_reg_apply).
 *
 * Invariants:
 *   (1) wc_fds[fd] is NULL (pass-through), WC_DESC_INTERNAL (an engine
 *       descriptor, hidden from the program), WC_DESC_CLOSING (1b), or a
 *       LIVE description. Readers load it without a lock; writers replace
 *       it with an atomic exchange, then release the reference they took
 *       out.
 *   (1b) A close of a tracked descriptor (close, close_range, closefrom)
 *       puts WC_DESC_CLOSING in its slot in place of the description,
 *       releases the description (its cached bytes are written back),
 *       closes the kernel's descriptor, and only then empties the slot
 *       (wc_fd_close_begin, wc_fd_close_end). Another thread's call on
 *       that number meanwhile waits for the empty slot (wc_fd_get,
 *       wc_fd_closing_wait) and then finds the kernel's answer, as a call
 *       made after the close: EBADF, or the file that took the number
 *       since. An empty slot at once (as before) sent such a call to the
 *       kernel's descriptor, at the kernel's offset, which a cached
 *       description leaves behind: a write there was written over by the
 *       write-back (a probe: 1-2 KB of acknowledged 1-byte writes lost in
 *       30 of 50 closes racing a writer thread). A call inside the shim
 *       (wc_depth: a handler that interrupted the very close, or the
 *       shim's own lookups, which may hold what the closer needs) does not
 *       wait. The mark is set and cleared inside the shim, where
 *       cancellation is off (cancel.c (3): a cancelled close would leave
 *       it for ever); a fork child empties the marks it inherits.
 *   (2) Descriptions live in mmap'd slabs and are never unmapped, so a
 *       stale pointer always points to a description (type-stable
 *       memory), in whatever state.
 *   (3) Which descriptors are cached (CONTRACT.md section 1), decided at
 *       open in wc_fd_opened(): regular files opened by the process
 *       through an interposed call are CACHED (attached) if the file is
 *       already in the cache, else WATCH, and become CACHED when the file
 *       comes into the cache through another description (so their reads
 *       see the cached bytes) or by their own writes (6), all of them
 *       before any description of the file caches a byte (attach_watchers'
 *       passes, registry.c invariant (5): a WATCH description's kernel
 *       write must not move the end a cached append was placed by); they
 *       become WATCH again when the file leaves the cache (8). O_DIRECT,
 *       O_SYNC, O_DSYNC, O_PATH, mmapped files, excluded paths pass
 *       through (after a flush when the file is cached).
 *   (3b) So do writable descriptions of a file the kernel writes
 *       synchronously whatever the open asked: on a file system mounted
 *       `sync`, or marked `chattr +S` (sync_writes, asked when the
 *       description would be cached: an open that caches at once, or the
 *       adoption after its first writes). The kernel makes each of their
 *       writes durable before it returns, which a cached write is not (a
 *       power failure loses it). A remount or a chattr of another process
 *       later is not seen; the program's own chattr (FS_IOC_SETFLAGS)
 *       makes the file pass through (ioctl.c).
 *   (4) Every CACHED or THROUGH description holds one reference to its
 *       file's entry in the registry (registry.c), taken when it gets its
 *       engine file and dropped when it releases it.
 *   (5) Nested calls (a signal handler that interrupted shim code on the
 *       same thread: wc_depth > 0) take no lock: see queue.c.
 *   (6) A writable WATCH description's first WCACHE_MIN_WRITES writes
 *       (8; with 0, a writable open of a regular file caches it at once)
 *       go to the kernel; the next brings the file into the cache
 *       (wc_desc_adopt_locked). Caching a file costs about eight system
 *       calls (its identity, flags and offset, a descriptor of the
 *       engine's own and its path, the write-back and that descriptor's
 *       close), so a file written a few times (tar, cp and compilers write
 *       small files in one to a few calls; lock and pid files) is cheaper
 *       through the kernel, and costs no cache, no store and no crash
 *       guard; a stream pays its first few writes. Where writes are
 *       round trips to a server (FUSE, a network file system: two of
 *       the counted writes in a row, the first of them among the file's
 *       first two, took WC_WATCH_SLOW_NS or more, wc_watch_timed and
 *       wc_watch_took; never on a local file system, where a write is
 *       slow only when its thread was preempted: on a loaded machine
 *       that made the tests' counts flaky), the file is adopted at once,
 *       and the engine told so (wc_file_remote: its stream goes back in
 *       batches of 128 KiB handed to the flusher from the first):
 *       its adoption's round trips cost about two writes there, and each
 *       write passed costs 50-200 us (GlusterFS: 8 writes were 1.2-1.6 ms
 *       of a 25 ms stream); the tests below then see the writes there
 *       were. Writes of
 *       WC_LARGE_WRITE or more do not count (the engine would send them
 *       straight to the kernel anyway): a file written in large blocks
 *       is never cached. Nor is one whose writes saw a lock call (F_SETLK
 *       and the like, flock, lockf: consistency points) for every fewer
 *       than WC_WRITES_PER_LOCK (4) writes: it would be written back at
 *       nearly every lock and gain nothing, as (8) finds of a cached one
 *       (SQLite's database), only later and after paying for the cache.
 *       Nor one written mostly by pwrites (more than half of its writes),
 *       most of them starting more than a page away from the pages of the
 *       pwrite before (the next record of a stream is near): each
 *       would be written back by a call of its own (a random update of a
 *       large file), while rewrites of the same pages and nearly ordered
 *       records count as near. Either is asked again after
 *       WC_BACKOFF_BASE << backoff writes, the wait doubling each time,
 *       as for (8). A WATCH description holds no cached byte, so the
 *       kernel serves it exactly. Nor, ever, a set-user-ID or
 *       set-group-ID file (wc_mode_setid, as its open or its adoption's
 *       fstat finds it; meta.c's chmod makes one that becomes so pass
 *       through for good): the kernel clears the bit at a write of a user
 *       without CAP_FSETID, and fstat must show that before a write-back.
 *   (6b) A process makes its cache (a backing file, the flusher thread,
 *       death-signal stand-ins, a guard's probe: about a millisecond on
 *       this 2-core VM, most of it first-touch page faults) only once its
 *       writes that the cache would have taken cost more than
 *       WCACHE_SETUP_US (500 us): until then a write that (6) would have
 *       cached goes to the kernel, timed, its time added to wc_rent_ns
 *       (the ski rental: paying at most about twice the better choice,
 *       whatever comes next), each write counting at most a quarter of
 *       the price (WC_RENT_PART, wc_rent_pay): a write the scheduler
 *       preempted, or one slowed by page faults, tells nothing of the
 *       writes to come, so at least 4 writes make a cache (on a busy CI
 *       machine one of 30 forked children writing 3 lines made one, for
 *       a single write that took over 500 us). A process that writes a
 *       small file (20 lines: 30 us of writes on ext4) makes no cache; a
 *       stream on ext4 (1.4 us a write) pays about 350 writes more; on
 *       FUSE or a network file system (50-130 us a write) 4 or 5; a
 *       shell command writing a line or two to an inherited `> log` none.
 *       Files cached at their open (WCACHE_MIN_WRITES=0) make it at
 *       once: asked for. A description whose offset is in a cell
 *       (shared.c (6): `prog > file` run by a shell under the shim, a log
 *       a forked child writes) pays its rent too, each write's range
 *       reserved in the cell and written by the kernel there
 *       (wc_cell_write_kernel): a write the kernel made at its own offset
 *       would end the cell, and the description would then be cached in
 *       reserve mode, an lseek per write (perl's 100k lines: 0.036 s with
 *       the cell, 0.235 s without); such descriptions made the cache at
 *       once before, 0.5 ms in each forked child writing a line to its
 *       parent's log (300 such children: 0.28x of the kernel's time).
 *   (7) A WATCH description may not know its file's identity yet (ino
 *       0 until ident_locked asks fstat, which attaching and adopting do
 *       first): one made by a successful O_CREAT | O_EXCL open (a new,
 *       empty, regular file: nothing can have it cached), a read-only
 *       one opened while the process has no cache, and a writable one
 *       opened while no file is in the cache (the registry is empty;
 *       parked files have no entry, and their descriptions are WATCH
 *       too): nothing is cached that it could need to see, and it needs
 *       its identity only when a file comes into the cache
 *       (attach_watchers asks then) or at its own adoption. Such a file
 *       (an SQLite journal, a lock file, a small output) costs the
 *       program's open, reads or writes and close, and nothing else. It
 *       may turn out not to be a regular file (a FIFO, a device):
 *       ident_locked then marks it never to be adopted
 *       (WC_WRITES_NOT_REGULAR), it stays WATCH, and the kernel serves
 *       it.
 *   (8) A file whose caching gains nothing (the engine's gain meter:
 *       about one system call per operation over its last window, as
 *       for a file written back at every lock, as SQLite's is, or written
 *       at scattered offsets) leaves the cache when the program has one
 *       thread and the file is written back with no error pending
 *       (wc_file_demote), and no description of it is shared with another
 *       process or with stdio (its registry entry is not THROUGH): its
 *       descriptions become WATCH again and are
 *       adopted after WC_BACKOFF_BASE << backoff more writes, the wait
 *       doubling with each demotion, so a file that changes its pattern
 *       is tried again and one that does not costs a few adoptions. The
 *       engine file stays live, clean and without pages, parked with one
 *       reference (registry.c) until the program closes a descriptor of
 *       the file: its write-back descriptor stays open until then
 *       (closing it would drop the program's POSIX locks: wbfd.c (2)),
 *       and the file comes back through it.
 *
 * Locks (order in shim.h):
 *   g_cache_lock  protects creation of the cache (wc_cachep, g_cache_failed)
 *   g_slab_lock   protects the description slabs (g_free, g_slab,
 *                 g_slab_used); a leaf
 *   g_reg_lock    (registry.c) the registry of cached files, the mapped set
 *   desc->lock    protects one description (see struct wc_desc)
 * g_fd_hi and g_nwatch are atomics: g_fd_hi only grows; g_nwatch may
 * over-count (it only decides whether a scan is worth doing).
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/raw.h"
#include "wcache/str.h"
#include "wcache/ucopy.h"

/* Read by every call, written at every start: WC_BOOT (shim.h). */
WC_BOOT volatile int wc_state = WC_ST_INIT;
WC_BOOT int wc_cells_late;  /* shared.c; beside wc_state: both set at exit */
WC_BOOT int wc_solo = 1;
WC_BOOT struct wc_cache *volatile wc_cachep;
WC_BOOT struct wc_desc **wc_fds;
WC_BOOT unsigned char *wc_fd_bytes;
WC_BOOT unsigned wc_nfds;
WC_TLS struct wc_shim_thr wc_thr;

static struct wc_lock g_cache_lock;
static int g_cache_failed;               /* wc_cache_open failed: stop */
static struct wc_lock g_slab_lock;

/* ---- the table ------------------------------------------------------- */

WC_BOOT static unsigned g_fd_hi;  /* every tracked fd is < g_fd_hi (atomic);
                                       read at every exit */
WC_BOOT static unsigned g_own_lo = ~0u, g_own_hi; /* every WC_DESC_INTERNAL slot is
                                  in [g_own_lo, g_own_hi) (atomics): kept
                                  apart from g_fd_hi, so that the scans of
                                  the program's descriptions do not walk
                                  (and fault in) the table up to numbers of
                                  ours placed at the top */
/* Descriptions in mode WATCH (atomic). WC_BOOT: a fork child resets it
 * (wc_after_fork_child) on the page of the rest it resets. */
WC_BOOT static int g_nwatch;

WC_HOT
unsigned wc_fdtab_slots(void)
{
    struct rlimit rl;
    unsigned n = 65536;
    /* The kernel's limit (ownfd.c's getrlimit would give the same now,
     * through a page of its own). */
    if (wc_raw_syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl, 0,
                       0) == 0 && rl.rlim_max != RLIM_INFINITY
        && rl.rlim_max > n)
        n = rl.rlim_max > (1u << 20) ? (1u << 20) : (unsigned)rl.rlim_max;
    return n;
}

WC_ONCE
int wc_fdtab_init(void)
{
    unsigned n = wc_fdtab_slots();
    /* One mapping for the table and stats.c's byte per descriptor (one
     * mmap fewer at each start; pages are only touched where used), made
     * with the system call itself: libc's mmap is not looked up (real.c
     * (1b)) for a process that caches nothing. */
    long r = wc_raw_syscall(SYS_mmap, 0,
                            (long)n * (long)(sizeof(void *) + 1),
                            PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                            0);
    if (r < 0 && r > -4096)
        return (int)r;
    void *p = (void *)r;
    wc_fds = p;
    wc_fd_bytes = (unsigned char *)p + (size_t)n * sizeof(void *);
    wc_nfds = n;
    /* Threads made before this library's constructor (another library's,
     * through glibc): glibc knows of them. */
    if (!__libc_single_threaded)
        wc_solo_end();
    return 0;
}

static void note_fd(int fd)
{
    unsigned hi = __atomic_load_n(&g_fd_hi, __ATOMIC_RELAXED);
    while ((unsigned)fd + 1 > hi &&
           !__atomic_compare_exchange_n(&g_fd_hi, &hi, (unsigned)fd + 1, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

WC_ONCE
void wc_fd_mark_internal(int fd, int on)
{
    if (!wc_fds || fd < 0 || (unsigned)fd >= wc_nfds)
        return;
    if (on) {
        /* A description still here was closed behind the shim's back (a
         * raw close): it is left to its remaining references (this runs
         * inside the engine, which cannot be re-entered to release it). */
        __atomic_store_n(&wc_fds[fd], WC_DESC_INTERNAL, __ATOMIC_RELEASE);
        unsigned lo = __atomic_load_n(&g_own_lo, __ATOMIC_RELAXED);
        while ((unsigned)fd < lo &&
               !__atomic_compare_exchange_n(&g_own_lo, &lo, (unsigned)fd, 0,
                                            __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
            ;
        unsigned hi = __atomic_load_n(&g_own_hi, __ATOMIC_RELAXED);
        while ((unsigned)fd + 1 > hi &&
               !__atomic_compare_exchange_n(&g_own_hi, &hi, (unsigned)fd + 1,
                                            0, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
            ;
    } else {
        struct wc_desc *x = WC_DESC_INTERNAL;
        __atomic_compare_exchange_n(&wc_fds[fd], &x, NULL, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    }
}

void wc_own_fd_range(unsigned *lo, unsigned *hi)
{
    *lo = __atomic_load_n(&g_own_lo, __ATOMIC_RELAXED);
    *hi = __atomic_load_n(&g_own_hi, __ATOMIC_RELAXED);
}

/* ---- description slab (g_slab_lock) ----------------------------------- */

#define SLAB_DESCS 1024
static struct wc_desc *g_free;       /* free list */
static struct wc_desc *g_slab;       /* current slab */
static unsigned g_slab_used;         /* descs handed out from g_slab */

WC_HOT
static struct wc_desc *desc_alloc(void)
{
    struct wc_desc *d;
    wc_lock(&g_slab_lock);
    if (g_free) {
        d = g_free;
        g_free = d->next_free;
    } else {
        if (!g_slab || g_slab_used == SLAB_DESCS) {
            void *p = REAL(mmap)(NULL, SLAB_DESCS * sizeof *d,
                                 PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                wc_unlock(&g_slab_lock);
                return NULL;
            }
            wc_prefault(p, 4096);       /* its first desc, next */
            g_slab = p;
            g_slab_used = 0;
        }
        d = &g_slab[g_slab_used++];
    }
    wc_unlock(&g_slab_lock);
    /* Every field but the lock, which a thread holding a stale pointer
     * may hold right now (see the diagram). */
    d->mode = WC_D_FREE;
    d->accmode = 0;
    d->append = 0;
    d->kstale = 0;
    d->shared = 0;
    d->stdio = 0;
    wc_watch_restart(d);
    d->wlo = d->whi = 0;
    d->backoff = 0;
    d->rent = 0;
    __atomic_store_n(&d->pending, 0, __ATOMIC_RELAXED);
    d->fstype = 0;
    d->fsflags = 0;
    __atomic_store_n(&d->guard, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->cell, NULL, __ATOMIC_RELAXED);
    d->hgen = 0;
    d->file = NULL;
    d->pos = 0;
    d->dev = 0;
    d->ino = 0;
    d->next_free = NULL;
    __atomic_store_n(&d->refs, 1, __ATOMIC_RELEASE);
    return d;
}

static void desc_free(struct wc_desc *d)
{
    wc_lock(&g_slab_lock);
    d->mode = WC_D_FREE;
    d->next_free = g_free;
    g_free = d;
    wc_unlock(&g_slab_lock);
}

/* ---- the cache -------------------------------------------------------- */

int wc_fault_ensure(void)
{
    if (likely(__atomic_load_n(&wc_fault_ready, __ATOMIC_ACQUIRE)))
        return 1;
    wc_lock(&g_cache_lock);
    wc_signals_fault_hooks();
    if (!wc_fault_ready && wc_fault_install() == 0)
        __atomic_store_n(&wc_fault_ready, 1, __ATOMIC_RELEASE);
    wc_unlock(&g_cache_lock);
    return wc_fault_ready;
}

/* The engine's lines for the user (wc_config.warn). */
static void warn_user(const char *msg)
{
    wc_log(WC_LOG_WARN, "%s", msg);
}

int wc_cache_failed(void)
{
    return __atomic_load_n(&g_cache_failed, __ATOMIC_RELAXED);
}

struct wc_cache *wc_cache_get(void)
{
    struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    if (likely(c != NULL) || __atomic_load_n(&g_cache_failed, __ATOMIC_RELAXED))
        return c;
    /* No file could be cached (proc.c invariant (12)): no cache. */
    if (__atomic_load_n(&wc_names_apart, __ATOMIC_ACQUIRE))
        return NULL;
    wc_lock(&g_cache_lock);
    if (!wc_cachep && !g_cache_failed) {
        wc_cfg.cache.fds = &wc_own_fd_ops;
        wc_cfg.cache.warn = warn_user;
        wc_cfg.cache.solo = &wc_solo;   /* the one-writer entry: shim.h */
        wc_cfg.cache.sent = &wc_sent_through;
        wc_cfg.cache.unnamed = wc_cfg.guard;    /* named by publish */
        /* The store keeps to the room the memory cgroup has left, asked
         * first as it grows past 64 KiB (memcg.c invariants (1), (4)). */
        wc_cfg.cache.room = wc_memcg_room;
        wc_real_all();          /* real.c (1b) */
        wc_signals_fault_hooks();       /* before the fault handler */
        wc_refused_io_probe();          /* io.c (7) */
        int r = wc_guard_refused();     /* guard.c (8) */
        if (r == 0)
            r = wc_reg_init() == 0 ? wc_cache_open(&c, &wc_cfg.cache)
                                       : -ENOMEM;
        if (r < 0) {
            __atomic_store_n(&g_cache_failed, 1, __ATOMIC_RELAXED);
            /* The program runs as without the shim, which it must not
             * see on its stderr (a full or read-only store, a file size
             * limit, an address-space limit leaving it too little room:
             * cache/store.h (4), a seccomp filter refusing a call the
             * store or the guard needs: guard.c (8)): said when asked
             * (info). */
            wc_log(WC_LOG_INFO,
                   "cannot create the cache (%s): running without it",
                   strerror(-r));
            c = NULL;
        } else {
            __atomic_store_n(&wc_fault_ready, 1, __ATOMIC_RELEASE);
            wc_log(WC_LOG_INFO, "cache %s", wc_cache_path(c));
            __atomic_store_n(&wc_cachep, c, __ATOMIC_RELEASE);
            wc_death_signals_init();    /* deaths write back from now */
            wc_altstack_add(0);         /* altstack.c invariant (3) */
            if ((r = wc_cache_publish(c)) < 0)
                wc_log(WC_LOG_WARN, "the backing file has no name (%s): "
                       "`wcache recover` cannot find it, no crash guard",
                       strerror(-r));
            else
                wc_guard_start(c);      /* guard.c: opens it by name */
            /* The flusher reaps the guard's child: flusher.c (2). */
            wc_flusher_want();
        }
    }
    c = wc_cachep;
    wc_unlock(&g_cache_lock);
    return c;
}

/* ---- descriptors opened, duplicated, closed ------------------------- */

WC_HOT
static void install(int fd, struct wc_desc *d)
{
    struct wc_desc *old =
        __atomic_exchange_n(&wc_fds[fd], d, __ATOMIC_ACQ_REL);
    note_fd(fd);
    if (wc_desc_is(old))     /* closed behind our back */
        wc_desc_release(old);
}

/* The engine's file for fd; `st` and `fl` as wc_file_get_known takes
 * them (NULL and -1: unknown). */
static struct wc_file *file_get(struct wc_cache *c, int fd,
                                const struct stat *st, int fl)
{
    int err = 0;
    struct wc_file *f = wc_file_get_known(c, fd, st, fl, &err);
    if (!f)
        wc_log(WC_LOG_DEBUG, "fd %d not cached: %s", fd, strerror(-err));
    return f;
}

/* The scans over every tracked description: the next one from slot *fd
 * on (skipping `skip`), locked, with *fd at its slot; NULL at the end.
 * The caller unlocks it and goes on from *fd + 1. A description that
 * several slots point to is visited once per slot. */
WC_HOT
static struct wc_desc *next_locked(unsigned *fd, const struct wc_desc *skip)
{
    unsigned hi = __atomic_load_n(&g_fd_hi, __ATOMIC_RELAXED);
    for (; *fd < hi && hi <= wc_nfds; (*fd)++) {
        struct wc_desc *d = __atomic_load_n(&wc_fds[*fd], __ATOMIC_ACQUIRE);
        if (wc_desc_is(d) && d != skip &&
            !wc_desc_lock((int)*fd, d))
            return d;
    }
    return NULL;
}

/* Invariant (7): d's identity, asked of the kernel if not known yet;
 * 1 when it was asked now, *st then holding the answer. Caller holds
 * d->lock. */
WC_HOT
static int ident_stat_locked(int fd, struct wc_desc *d, struct stat *st)
{
    if (d->ino != 0 || wc_k_fstat(fd, st) != 0)
        return 0;
    d->dev = st->st_dev;
    __atomic_store_n(&d->ino, st->st_ino, __ATOMIC_RELAXED);
    if (!S_ISREG(st->st_mode))        /* a FIFO, a device: never adopted */
        __atomic_store_n(&d->writes, WC_WRITES_NOT_REGULAR,
                         __ATOMIC_RELAXED);
    else if (wc_mode_setid(st->st_mode))        /* invariant (6) */
        __atomic_store_n(&d->writes, WC_WRITES_SETID, __ATOMIC_RELAXED);
    return 1;
}

void wc_ident_locked(int fd, struct wc_desc *d)
{
    struct stat st;
    ident_stat_locked(fd, d, &st);
}

/* The meeting point of a WATCH description installed while its file
 * comes into the cache: each side stores (the slot; the registry entry),
 * then does this read-modify-write of one variable, then loads what the
 * other stored. Whichever comes second in g_nwatch's order sees the
 * other's store, so a description is attached by one side or the other. */
static int watch_sync(void)
{
    return __atomic_fetch_add(&g_nwatch, 0, __ATOMIC_SEQ_CST);
}

static int invalidate_cb(struct wc_file *f, void *arg)
{
    (void)arg;
    return wc_file_invalidate(f, WC_WHY_OTHER);
}

/* The mode of a description attached to a file now (`rf`: wc_reg_add's
 * answer): THROUGH when the file may change behind the engine (d shared
 * with another process; the entry marked), and once the exit work has
 * begun (wc_shutdown: wc_cells_late, then its pass makes every
 * description THROUGH): one attached CACHED behind that pass cached
 * appends nothing wrote back, and one left untracked wrote to the
 * kernel behind descriptions still cached, whose runs then landed
 * elsewhere than their lseeks said. A THROUGH one's kernel writes hold
 * the engine's file (io.c wc_kernel_rw_locked). Caller holds d->lock, or
 * has not installed d yet (then it looks again after: opened_known). */
static int attached_mode(const struct wc_desc *d, int rf)
{
    return d->shared || (rf & WC_REG_THROUGH) ||
                   __atomic_load_n(&wc_cells_late, __ATOMIC_SEQ_CST)
               ? WC_D_THROUGH
               : WC_D_CACHED;
}

/* Pass 2's step: WATCH description d at fd, locked, attached at its
 * kernel offset; 0 when the engine could not take it (it stays WATCH). */
static int attach_one(struct wc_cache *c, int fd, struct wc_desc *d)
{
    struct wc_file *f = file_get(c, fd, NULL, -1);
    if (!f)
        return 0;
    d->file = f;
    /* The mode first, then the kernel's offset: see wc_watch_moved. */
    __atomic_store_n(&d->mode, attached_mode(d, wc_reg_add(d->dev, d->ino, f)),
                     __ATOMIC_SEQ_CST);
    off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
    d->pos = k < 0 ? 0 : k;
    d->kstale = 0;
    __atomic_sub_fetch(&g_nwatch, 1, __ATOMIC_RELAXED);
    return 1;
}

/* (dev, ino) came into the cache (its entry claimed by this thread:
 * registry.c invariant (5)): attach its WATCH descriptions, at their
 * kernel offsets. In three passes, so that no description of the file
 * caches before every WATCH one has stopped writing to the kernel:
 *
 *   pass 1: each WATCH description of the file, locked (a call of the
 *           program's on it in progress ends first), is marked pending;
 *           the program's later calls on it wait (wc_desc_lock_entry);
 *           then the engine forgets the size it asked when it made the
 *           file (their writes may have moved it since)
 *   pass 2: each pending one is attached (CACHED, or THROUGH when shared),
 *           still marked
 *   pass 3: each is unmarked, and so is the description whose adoption or
 *           open made the entry, marked there
 *
 * Until pass 3 no description of the file caches a byte (every one that
 * could is marked), so the calls on a WATCH one not reached yet, which
 * go to the kernel without its lock (reads, lseek, ftruncate, fsync),
 * see everything written. Attached one by one in a single pass, one
 * attached early cached an append at the end the kernel gave while one
 * not reached yet wrote its first records there through the kernel: the
 * append was written back after them, elsewhere than the lseek it had
 * answered; unmarked one by one, one reached early cached a pwrite that
 * a pread through one not reached yet did not see (probe W). A WATCH
 * one the engine cannot take (no descriptor left for its write-back)
 * would write and read behind the others: the file passes through for
 * good instead. */
static void attach_watchers(struct wc_cache *c, dev_t dev, ino_t ino)
{
    struct wc_desc *d;
    int marked = 0;
    /* (g_nwatch counts every WATCH description: none, no pass 1.) */
    int any = watch_sync();
    for (unsigned fd = 0; any && (d = next_locked(&fd, NULL)); fd++) {
        if (d->mode == WC_D_WATCH)
            wc_ident_locked((int)fd, d);
        if (d->mode == WC_D_WATCH && d->dev == dev && d->ino == ino) {
            __atomic_store_n(&d->pending, 1, __ATOMIC_RELAXED);
            marked = 1;
        }
        wc_blk_unlock(&d->lock);
    }
    if (marked)
        (void)wc_reg_apply(dev, ino, invalidate_cb, NULL);
    unsigned hi = wc_fd_tracked_hi();
    int failed = 0;
    for (int pass = 2; pass <= 3; pass++) {
        if (pass == 3 && failed)    /* one could not attach: none caches */
            wc_file_for_good(dev, ino, WC_WHY_OTHER);
        for (unsigned fd = 0; fd < hi; fd++) {
            d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
            if (!wc_desc_is(d) ||
                !__atomic_load_n(&d->pending, __ATOMIC_RELAXED) ||
                wc_desc_lock((int)fd, d))
                continue;
            if (d->pending && d->dev == dev && d->ino == ino) {
                if (pass == 3)
                    __atomic_store_n(&d->pending, 0, __ATOMIC_RELEASE);
                else if (d->mode == WC_D_WATCH && !attach_one(c, (int)fd, d))
                    failed = 1;
            }
            wc_blk_unlock(&d->lock);
        }
    }
}

void wc_watch_moved_slow(int fd, struct wc_desc *d)
{
    if (wc_depth)
        return;     /* a handler's call: no lock (invariant (5)) */
    int e = wc_work_begin();
    if (!wc_desc_lock_entry(fd, d)) {
        /* Not if a cached call moved the offset since (kstale): that one
         * came after. */
        if (d->mode == WC_D_CACHED && !d->kstale) {
            off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
            if (k >= 0)
                d->pos = k;
        }
        wc_blk_unlock(&d->lock);
    }
    wc_work_end(e);
}

void wc_desc_pending_wait(int fd, struct wc_desc *d)
{
    for (unsigned i = 0; __atomic_load_n(&d->pending, __ATOMIC_ACQUIRE) &&
                         __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE) == d;
         i++)
        wc_backoff(i);
}

static unsigned long fs_type(int fd, struct wc_desc *d);
static int pseudo_fs(int fd, unsigned long type);
static int sync_writes(int fd, struct wc_desc *d);
static int remote_type(unsigned long type);

WC_BOOT uint64_t wc_rent_ns;
/* WC_BOOT: a fork child's first write that passes through adds to it, on
 * the page its fork handlers write anyway (in .bss, a page more to copy
 * in each child). */
WC_BOOT uint64_t wc_sent_through;
uint64_t wc_reserve_calls;

WC_HOT
int wc_desc_adopt_locked(int fd, struct wc_desc *d, size_t len)
{
    if (d->mode != WC_D_WATCH)
        return 0;
    int pass = wc_watch_passes(d, len);
    if (pass)
        return pass == WC_WATCH_COUNTED ? WC_ADOPT_COUNTED : 0;
    struct stat st;
    int fresh = ident_stat_locked(fd, d, &st);
    if (d->ino == 0 || wc_mapped_has(d->dev, d->ino))
        return 0;                           /* passes through for good */
    if (wc_stream_has(d->dev, d->ino))
        return 0;       /* a stdio stream holds it: registry.c (4) */
    struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    if (!c &&
        __atomic_load_n(&wc_rent_ns, __ATOMIC_RELAXED) < wc_cfg.setup_ns) {
        d->rent = 1;                    /* invariant (6b) */
        return __atomic_load_n(&d->cell, __ATOMIC_RELAXED)
                   ? WC_ADOPT_RENT_CELL : WC_ADOPT_RENT;
    }
    /* Pseudo file systems have no device (major 0, as tmpfs and FUSE):
     * a file on a block device needs no fstatfs to tell. */
    if (major(d->dev) == 0 && pseudo_fs(fd, fs_type(fd, d))) {
        __atomic_store_n(&d->writes, WC_WRITES_PSEUDO, __ATOMIC_RELAXED);
        return 0;
    }
    if (sync_writes(fd, d)) {                           /* invariant (3b) */
        __atomic_store_n(&d->writes, WC_WRITES_SYNC, __ATOMIC_RELAXED);
        return 0;
    }
    if (!c)
        return WC_ADOPT_NEED_CACHE;     /* made without d->lock */
    /* The engine is given what was just asked of the kernel (the stat
     * only when asked by this call: an identity known from the open may
     * come with an old size), not to ask again. */
    int fl = wc_k_fcntl(fd, F_GETFL, 0);
    struct wc_file *f = file_get(c, fd, fresh ? &st : NULL, fl);
    if (!f)
        return 0;
    if (d->wslow >= WC_WATCH_SLOW_WRITES)
        wc_file_remote(f);      /* its write-back overlaps the program */
    int rf = wc_reg_add(d->dev, d->ino, f);
    if (rf & WC_REG_BUSY) {
        wc_file_put(f);         /* another thread's adoption attaches it */
        return WC_ADOPT_WAIT;
    }
    d->append = fl >= 0 && (fl & O_APPEND);
    d->file = f;
    if (rf & WC_REG_FRESH)      /* until attach_watchers is done */
        __atomic_store_n(&d->pending, 1, __ATOMIC_RELAXED);
    /* The mode first, then the kernel's offset: see wc_watch_moved. A
     * description of its own, as a writable open of a file in the cache
     * would be; a shared one CACHED until wc_desc_share_locked below. */
    int own = !d->shared && !d->stdio;
    __atomic_store_n(&d->mode, own ? attached_mode(d, rf) : WC_D_CACHED,
                     __ATOMIC_SEQ_CST);
    off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
    d->pos = k < 0 ? 0 : k;
    d->kstale = 0;
    __atomic_sub_fetch(&g_nwatch, 1, __ATOMIC_RELAXED);
    if (own)
        return rf & WC_REG_FRESH ? WC_ADOPT_ATTACH : WC_ADOPT_DONE;
    if (!(rf & WC_REG_FRESH)) {
        /* The child caches the file through descriptions of its own: this
         * one, which the parent (or stdio) moves too, passes through. */
        wc_desc_through_locked(fd, d, WC_WHY_OTHER);
        return WC_ADOPT_DONE;
    }
    /* A fresh entry: no other description of the file is cached here,
     * so nothing is left for wc_share_finish; later opens of it pass
     * through (shared.c invariant (4)), and so do its WATCH descriptions,
     * attached after the unlock (THROUGH: the entry is marked). */
    wc_desc_share_locked(fd, d, WC_WHY_OTHER);
    wc_reg_mark_through(d->dev, d->ino);
    return WC_ADOPT_ATTACH;
}

int wc_fd_handover(int fd, dev_t *dev, ino_t *ino, struct wc_cell **cp)
{
    struct wc_desc *d = wc_fd_peek(fd);     /* the state: own_env's */
    if (!d || wc_desc_lock(fd, d))
        return 0;
    struct wc_cell *c = d->cell;
    int mode_ok = d->mode == WC_D_WATCH || d->mode == WC_D_RESERVE;
    int how = d->accmode == O_RDONLY ? 0
        : !d->shared && (mode_ok || d->mode == WC_D_CACHED) &&
                  (!c || __atomic_load_n(&c->holders, __ATOMIC_ACQUIRE) == 1)
              ? WC_HAND_OWN
        : c && !d->append && mode_ok &&
                  !(__atomic_load_n(&c->pos, __ATOMIC_ACQUIRE) &
                    WC_CELL_KERNEL)
              ? WC_HAND_CELL
              : 0;
    if (how == WC_HAND_OWN)
        wc_cell_settle(fd, d);      /* handed over at the kernel's offset */
    if (how) {
        wc_ident_locked(fd, d);
        if (d->ino == 0 || d->writes == WC_WRITES_NOT_REGULAR)
            how = 0;
        *dev = d->dev;
        *ino = d->ino;
        *cp = how == WC_HAND_CELL ? c : NULL;
    }
    wc_blk_unlock(&d->lock);
    return how;
}

WC_HOT
unsigned wc_fd_tracked_hi(void)
{
    unsigned hi = __atomic_load_n(&g_fd_hi, __ATOMIC_RELAXED);
    return hi < wc_nfds ? hi : wc_nfds;
}

void wc_desc_adopted(dev_t dev, ino_t ino)
{
    struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    if (c)
        attach_watchers(c, dev, ino);
    wc_reg_attached(dev, ino);
}

static int truncate_cb(struct wc_file *f, void *arg)
{
    (void)arg;
    return wc_file_truncate(f, 0);
}

static int flush_cb(struct wc_file *f, void *arg)
{
    return wc_file_flush(f, *(enum wc_reason *)arg);
}

/* fd's file system (statfs f_type; 1 when fstatfs fails), asked once per
 * description d (NULL: every time); its f_flags in *flags if not NULL. */
WC_HOT
static unsigned long fs_type_flags(int fd, struct wc_desc *d,
                                   unsigned long *flags)
{
    if (d && d->fstype) {
        if (flags)
            *flags = d->fsflags;
        return d->fstype;
    }
    struct statfs sf;
    int ok = REAL(fstatfs)(fd, &sf) == 0;
    unsigned long type = ok && sf.f_type ? (unsigned long)sf.f_type : 1;
    unsigned long fl = ok ? (unsigned long)sf.f_flags : 0;
    if (d) {
        d->fstype = type;
        d->fsflags = fl;
    }
    if (flags)
        *flags = fl;
    return type;
}

static unsigned long fs_type(int fd, struct wc_desc *d)
{
    return fs_type_flags(fd, d, NULL);
}

/* Invariant (3b): does the kernel make each write to fd's file durable
 * before the write returns? A file system mounted `sync` (MS_SYNCHRONOUS,
 * which statfs reports) or a file marked `chattr +S` (FS_SYNC_FL, asked
 * of every file system but FUSE and the network ones, where it would be a
 * round trip to the server: ext4, XFS, btrfs, f2fs keep it; btrfs's files
 * have a device of major 0, as an overlay's, which answers with its upper
 * file's). */
static int sync_by(int fd, unsigned long type, unsigned long fl)
{
    if (fl & ST_SYNCHRONOUS)
        return 1;
    int attr = 0;
    return !remote_type(type) &&
           REAL(ioctl)(fd, FS_IOC_GETFLAGS, &attr) == 0 &&
           (attr & FS_SYNC_FL);
}

static int sync_writes(int fd, struct wc_desc *d)
{
    unsigned long fl = 0;
    unsigned long type = fs_type_flags(fd, d, &fl);
    return sync_by(fd, type, fl);
}

int wc_fd_sync_writes(int fd)
{
    return sync_writes(fd, NULL);
}

/* A file system whose calls are round trips to a server, FUSE's
 * included (by statfs f_type). */
WC_HOT
static int remote_type(unsigned long type)
{
    switch (type) {
    case 0x65735546:    /* FUSE (bindfs, GlusterFS, sshfs...) */
    case 0x6969:        /* NFS */
    case 0xFF534D42:    /* CIFS */
    case 0xFE534D42:    /* SMB2 */
    case 0x517B:        /* SMB */
    case 0x01021997:    /* 9p */
    case 0x00c36400:    /* Ceph */
    case 0x5346414F:    /* AFS */
    case 0x0BD00BD0:    /* Lustre */
    case 0x01161970:    /* GFS2 */
    case 0x7461636f:    /* OCFS2 */
        return 1;
    default:
        return 0;
    }
}

/* The file system types wc_fs_remote found, by device: asked once per
 * device, not once per description (sqlite3 makes and removes a journal
 * at every transaction, whose first write, allocating, takes more than
 * WC_WATCH_SLOW_NS on ext4: an fstatfs per transaction, 2,000 in the
 * bench's row). Only the slow-write count reads it, a matter of speed: a
 * device number used again by another mount can only make a file's
 * early caching come later or sooner. */
#define FS_MEMO 8
static struct {
    dev_t dev;
    unsigned long type;
} g_fs_memo[FS_MEMO];
static unsigned g_fs_memo_next;
static struct wc_lock g_fs_memo_lock;   /* protects g_fs_memo, _next */

WC_HOT
int wc_fs_remote(int fd, struct wc_desc *d)
{
    if (!d || d->fstype)
        return remote_type(fs_type(fd, d));
    unsigned long type = 0;
    wc_lock(&g_fs_memo_lock);
    for (unsigned i = 0; i < FS_MEMO && !type; i++)
        if (g_fs_memo[i].type && g_fs_memo[i].dev == d->dev)
            type = g_fs_memo[i].type;
    wc_unlock(&g_fs_memo_lock);
    if (type)
        return remote_type(type);
    type = fs_type(fd, d);
    if (type != 1) {                    /* 1: fstatfs failed */
        wc_lock(&g_fs_memo_lock);
        unsigned i = g_fs_memo_next++ % FS_MEMO;
        g_fs_memo[i].dev = d->dev;
        g_fs_memo[i].type = type;
        wc_unlock(&g_fs_memo_lock);
    }
    return remote_type(type);
}

/* /proc, /sys and their kind: "regular" files whose writes are commands
 * to the kernel, which must see each one at once. And a memfd that is
 * sealed or may be sealed (F_SEAL_WRITE, F_SEAL_GROW... by any process
 * that holds it, at any time): the kernel refuses the writes a seal
 * forbids, at the write; a tmpfs file that is not such a memfd answers
 * F_GET_SEALS with F_SEAL_SEAL alone (sealing closed for good), asked
 * each time: seals come at any time. `type`: fs_type's. */
static int pseudo_fs(int fd, unsigned long type)
{
    switch (type) {
    case 1:             /* fstatfs failed: cannot tell */
        return 1;
    case 0x01021994: {  /* tmpfs, and shmem's memfds */
        int seals = wc_k_fcntl(fd, F_GET_SEALS, 0);
        return seals >= 0 && seals != F_SEAL_SEAL;
    }
    case 0x9fa0:        /* proc */
    case 0x62656572:    /* sysfs */
    case 0x64626720:    /* debugfs */
    case 0x74726163:    /* tracefs */
    case 0x27e0eb:      /* cgroup */
    case 0x63677270:    /* cgroup2 */
    case 0x73636673:    /* securityfs */
    case 0xf97cff8c:    /* selinuxfs */
    case 0xcafe4a11:    /* bpf */
    case 0x62656570:    /* configfs */
    case 0xde5e81e4:    /* efivarfs */
    case 0x6165676c:    /* pstore */
    case 0x958458f6:    /* hugetlbfs (no write(2) at all) */
    case 0x42494e4d:    /* binfmt_misc */
    case 0x1cd1:        /* devpts */
    case 0x6e736673:    /* nsfs */
        return 1;
    default:
        return 0;
    }
}

ssize_t wc_fd_path(int fd, char *path, size_t cap)
{
    char link[64];
    wc_str_procfd(link, sizeof link, fd);
    ssize_t n = REAL(readlink)(link, path, cap - 1);
    path[n > 0 ? n : 0] = 0;
    return n;
}

WC_HOT
void wc_fd_opened(int fd, int dirfd, const char *path, int flags)
{
    if (fd < 0 || (unsigned)fd >= wc_nfds || (flags & (O_PATH | O_DIRECTORY)))
        return;
    /* Invariant (7): no identity asked yet of a file this open made, of
     * a reader's while nothing is cached, nor of a writer's while no file
     * is (a file is cached from its 9th write on, and a writer that stops
     * before, as a journal or a lock file, costs nothing more). */
    struct stat st = {.st_mode = S_IFREG};
    /* (O_DIRECT and O_SYNC ones are looked at: their file passes through
     * for good, by its identity, wc_fd_opened_known.) */
    int bypass = flags & (O_DIRECT | O_DSYNC | O_SYNC);
    int made = (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL) &&
               wc_cfg.min_writes && !bypass;
    int early_reader = (flags & (O_ACCMODE | O_TRUNC)) == O_RDONLY &&
                       !bypass &&
                       !__atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    int early_writer = (flags & O_ACCMODE) != O_RDONLY && wc_cfg.min_writes &&
                       !bypass && wc_reg_empty();
    if (!made && !early_reader && !early_writer && wc_k_fstat(fd, &st) != 0)
        return;
    wc_fd_opened_known(fd, dirfd, path, flags, &st);
}

WC_HOT
void wc_fd_opened_known(int fd, int dirfd, const char *path, int flags,
                        const struct stat *stp)
{
    if (fd < 0 || (unsigned)fd >= wc_nfds || (flags & (O_PATH | O_DIRECTORY)))
        return;
    struct stat st = *stp;
    if (!S_ISREG(st.st_mode))
        return;
    int acc = flags & O_ACCMODE;
    enum wc_reason why = WC_WHY_OTHER;
    if ((flags & (O_DIRECT | O_DSYNC | O_SYNC)) ||
        !wc_env_path_ok(dirfd, path) || wc_mapped_has(st.st_dev, st.st_ino) ||
        wc_stream_has(st.st_dev, st.st_ino)) {
        /* Not cached; but other descriptors may hold cached data of the
         * file: it must be on disk before this one reads or writes (or be
         * dropped: this open truncated the file); and since this one can
         * change the file behind the engine, the others pass through from
         * now on. */
        int r = wc_reg_apply(st.st_dev, st.st_ino,
                             (flags & O_TRUNC) ? truncate_cb : flush_cb,
                             &why);
        if (flags & (O_DIRECT | O_DSYNC | O_SYNC))
            /* For good: a description of the file still watched (its
             * first writes) would otherwise cache it later, behind this
             * one's kernel writes and reads. */
            wc_file_for_good(st.st_dev, st.st_ino, why);
        else if (r != -ENOENT && (flags & O_ACCMODE) != O_RDONLY)
            wc_file_all_through(st.st_dev, st.st_ino, why);
        return;
    }
    struct wc_desc *d;
    if (!wc_reg_has(st.st_dev, st.st_ino) &&
        (acc == O_RDONLY || wc_cfg.min_writes)) {
        /* Invariant (6): watched until it has written enough. */
        if (!(d = desc_alloc()))
            return;
        d->mode = WC_D_WATCH;
        d->accmode = acc;
        d->append = !!(flags & O_APPEND);
        d->dev = st.st_dev;
        d->ino = st.st_ino;
        if (wc_mode_setid(st.st_mode))          /* invariant (6) */
            d->writes = WC_WRITES_SETID;
        __atomic_add_fetch(&g_nwatch, 1, __ATOMIC_RELAXED);
        install(fd, d);
        if (acc != O_RDONLY &&
            unlikely(__atomic_load_n(&wc_flusher_deferred, __ATOMIC_RELAXED)))
            wc_flusher_want();          /* flusher.c invariant (2) */
        /* The file may have come into the cache since wc_reg_has, its
         * watchers attached before d was installed: attach d now
         * (watch_sync). */
        watch_sync();
        struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
        if (c && !wc_reg_empty() && !wc_desc_lock(fd, d)) {
            wc_ident_locked(fd, d);
            st.st_dev = d->dev;
            st.st_ino = d->ino;
            wc_blk_unlock(&d->lock);
            if (wc_reg_claim(st.st_dev, st.st_ino)) {
                attach_watchers(c, st.st_dev, st.st_ino);
                wc_reg_attached(st.st_dev, st.st_ino);
            }
        }
        return;
    }
    /* Pseudo file systems have no device (major 0, as tmpfs and FUSE);
     * the one fstatfs serves invariant (3b) too (on FUSE, a round trip). */
    if (acc != O_RDONLY) {
        unsigned long fl = 0, type = fs_type_flags(fd, NULL, &fl);
        if ((major(st.st_dev) == 0 && pseudo_fs(fd, type)) ||
            sync_by(fd, type, fl))
            return;
    }
    if (wc_mode_setid(st.st_mode))              /* invariant (6) */
        return;
    struct wc_cache *c = wc_cache_get();
    if (!c)
        return;
    /* What open was asked is what F_GETFL would say of these bits. */
    struct wc_file *f;
    int rf;
    for (;;) {
        f = file_get(c, fd, &st,
                     flags & (O_ACCMODE | O_APPEND | O_PATH | O_TRUNC));
        if (!f)
            return;
        if (!((rf = wc_reg_add(st.st_dev, st.st_ino, f)) & WC_REG_BUSY))
            break;
        wc_file_put(f);         /* registry.c invariant (5) */
        wc_reg_wait(st.st_dev, st.st_ino);
    }
    if (!(d = desc_alloc())) {
        wc_reg_drop(st.st_dev, st.st_ino);
        wc_file_put(f);
        return;
    }
    d->mode = WC_D_CACHED;
    d->accmode = acc;
    d->append = !!(flags & O_APPEND);
    d->file = f;
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->mode = attached_mode(d, rf);
    if (rf & WC_REG_FRESH)      /* until attach_watchers is done */
        __atomic_store_n(&d->pending, 1, __ATOMIC_RELAXED);
    if (flags & O_TRUNC) {
        /* The kernel truncated the file at open; drop what the cache still
         * holds for it (a flush that raced with the open is undone by the
         * engine's ftruncate too; a file the engine knows empty is left
         * as it is). */
        wc_file_open_truncated(f);
    }
    install(fd, d);
    /* With threads, another one's write on this number between the
     * kernel's open and the install went to the kernel's descriptor (the
     * table knew nothing of it yet) and moved its offset: the description
     * starts there, not at 0 (a probe: that write written over in 274 of
     * 2,000 races). */
    if (d->mode == WC_D_CACHED &&
        !__atomic_load_n(&wc_solo, __ATOMIC_ACQUIRE) && !wc_desc_lock(fd, d)) {
        off_t k = wc_k_lseek(fd, 0, SEEK_CUR);
        if (k > 0 && d->pos == 0 && !d->append)
            d->pos = k;
        /* The exit work began after attached_mode looked, and its pass
         * may have gone by this slot before the install: d passes
         * through (the pass sets wc_cells_late, then reads the slots; d
         * was installed, then the flag read: one sees the other). */
        if (__atomic_load_n(&wc_cells_late, __ATOMIC_SEQ_CST))
            wc_desc_through_locked(fd, d, WC_WHY_EXIT);
        wc_blk_unlock(&d->lock);
    }   /* (with one thread, nobody began the exit work since it looked) */
    if (rf & WC_REG_FRESH)
        wc_desc_adopted(st.st_dev, st.st_ino);
}

/* Drop one fd-table reference. The last one releases the engine file (the
 * engine writes back when it was the file's last reference). Returns 0 or
 * the write-back error close must report. */
int wc_desc_release(struct wc_desc *d)
{
    return wc_desc_release_fd(d, -1);
}

/* Is (dev, ino) still open for writing through a tracked description? */
static int writer_left(dev_t dev, ino_t ino)
{
    struct wc_desc *d;
    int found = 0;
    for (unsigned fd = 0; !found && (d = next_locked(&fd, NULL)); fd++) {
        found = d->dev == dev && d->ino == ino && d->accmode != O_RDONLY;
        wc_blk_unlock(&d->lock);
    }
    return found;
}

WC_HOT
int wc_desc_release_fd(struct wc_desc *d, int fd)
{
    if (__atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return 0;
    wc_blk_lock(&d->lock);              /* wait for calls in flight */
    wc_blk_disown(&d->lock);            /* its next life starts unowned */
    struct wc_file *f = d->file;
    int writer = d->accmode != O_RDONLY;
    if (d->mode == WC_D_WATCH)
        __atomic_sub_fetch(&g_nwatch, 1, __ATOMIC_RELAXED);
    dev_t dev = d->dev;
    ino_t ino = d->ino;
    struct wc_cell *cell = d->cell;
    d->file = NULL;
    d->mode = WC_D_FREE;
    wc_blk_unlock(&d->lock);
    desc_free(d);
    /* This process holds it no more (shared.c invariant (5)): its bytes
     * reach the file before the others may stop reserving. And the close
     * of a description that could write is a consistency point even while
     * other descriptions of the file stay open (CONTRACT section 3, as
     * NFS's close-to-open): a process that opens the file next finds the
     * bytes. An error stays recorded for fsync and the file's last close,
     * as before (errors.c). */
    if (f && cell)
        wc_file_flush(f, WC_WHY_CLOSE);
    else if (f && writer && wc_file_publish(f) > 0 && fd >= 0 &&
             !writer_left(dev, ino))
        /* Readers alone keep the file: it leaves the cache, and the
         * engine's write-back descriptor, a writer in the kernel's eyes
         * (an exec of the file: ETXTBSY; F_SETLEASE: EAGAIN), closes with
         * the parked reference taken below. Closing it drops no POSIX
         * lock the program's close of fd does not drop anyway. */
        wc_file_demote(f, dev, ino);
    /* A file parked when it left the cache: the program closes one of its
     * descriptors, and with it the kernel drops its POSIX locks on the
     * file; the parked reference goes too (invariant (8)). */
    struct wc_file *p = ino ? wc_reg_parked(dev, ino, 1) : NULL;
    int r = 0;
    if (f)
        r = wc_reg_release(dev, ino, f, fd);
    if (p)
        fd >= 0 ? wc_file_put_fd(p, fd) : wc_file_put(p);
    if (cell)
        __atomic_sub_fetch(&cell->holders, 1, __ATOMIC_RELEASE);
    return r;
}

struct wc_desc *wc_desc_get(int fd)
{
    if (!wc_fds || fd < 0 || (unsigned)fd >= wc_nfds)
        return NULL;
    for (;;) {
        struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
        if (!wc_desc_is(d))
            return NULL;
        WC_RACE_WINDOW();
        int n = __atomic_load_n(&d->refs, __ATOMIC_RELAXED);
        do {
            if (n == 0)
                break;          /* being released: look again */
        } while (!__atomic_compare_exchange_n(&d->refs, &n, n + 1, 1,
                                              __ATOMIC_ACQUIRE,
                                              __ATOMIC_RELAXED));
        if (n == 0)
            continue;
        if (__atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE) == d)
            return d;
        wc_desc_release(d);     /* freed and reused meanwhile */
    }
}

void wc_fd_duped_ref(struct wc_desc *ref, int oldfd, int newfd)
{
    if (newfd < 0 || (unsigned)newfd >= wc_nfds || oldfd == newfd) {
        if (ref)
            wc_desc_release(ref);
        return;
    }
    /* The reference was taken before the real dup: if oldfd still points
     * to it, the kernel duplicated that description (it cannot have been
     * freed and reused meanwhile: we held it). If oldfd was closed or
     * replaced meanwhile, which description the kernel duplicated is not
     * known: newfd then passes through. */
    struct wc_desc *d = ref;
    if (d && __atomic_load_n(&wc_fds[oldfd], __ATOMIC_ACQUIRE) != d) {
        wc_log(WC_LOG_DEBUG, "fd %d changed during dup to %d: pass-through",
               oldfd, newfd);
        wc_desc_release(d);
        d = NULL;
    }
    struct wc_desc *old =
        __atomic_exchange_n(&wc_fds[newfd], d, __ATOMIC_ACQ_REL);
    if (d)
        note_fd(newfd);
    if (wc_desc_is(old))
        wc_desc_release(old);
}

/* Threads waiting in wc_fd_closing_wait (atomic): a close wakes them
 * only when there are some. */
static int g_closing_waiters;

struct wc_desc *wc_fd_closing_wait(int fd)
{
    if (wc_depth)
        return NULL;            /* invariant (1b): the kernel's, at once */
    wc_fd_close_wait(fd);
    return wc_fd_get(fd);
}

void wc_fd_close_wait(int fd)
{
    if ((unsigned)fd >= wc_nfds || !wc_fds)
        return;
    __atomic_add_fetch(&g_closing_waiters, 1, __ATOMIC_SEQ_CST);
    /* The futex word is the slot's low half (little-endian), which is 2
     * for the mark only: descriptions are 128-byte aligned. A wake that
     * a replacement other than wc_fd_close_end's makes no costs the
     * timeout. */
    while (__atomic_load_n(&wc_fds[fd], __ATOMIC_SEQ_CST) ==
           WC_DESC_CLOSING) {
        struct timespec ts = {0, 1000000};
        wc_raw_syscall(SYS_futex, (long)&wc_fds[fd], FUTEX_WAIT_PRIVATE,
                       (long)(uintptr_t)WC_DESC_CLOSING, (long)&ts, 0, 0);
    }
    __atomic_sub_fetch(&g_closing_waiters, 1, __ATOMIC_RELAXED);
}

WC_HOT
int wc_fd_close_begin(int fd, int *marked)
{
    *marked = 0;
    if (fd < 0 || (unsigned)fd >= wc_nfds || !wc_fds)
        return 0;
    struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
    do {
        if (!wc_desc_is(d))
            return 0;           /* untracked, ours, or closing already */
    } while (!__atomic_compare_exchange_n(&wc_fds[fd], &d, WC_DESC_CLOSING,
                                          0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_ACQUIRE));
    *marked = 1;
    return wc_desc_release_fd(d, fd);       /* fd is still open here */
}

WC_HOT
void wc_fd_close_end(int fd)
{
    struct wc_desc *x = WC_DESC_CLOSING;
    if (!__atomic_compare_exchange_n(&wc_fds[fd], &x, NULL, 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_RELAXED) &&
        wc_desc_is(x) && wc_k_fcntl(fd, F_GETFD, 0) < 0 &&
        __atomic_compare_exchange_n(&wc_fds[fd], &x, NULL, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        /* Another thread put a description there meanwhile (a dup2 onto
         * the number) whose descriptor this close then closed: gone. */
        wc_desc_release(x);
    if (__atomic_load_n(&g_closing_waiters, __ATOMIC_SEQ_CST))
        wc_raw_syscall(SYS_futex, (long)&wc_fds[fd], FUTEX_WAKE_PRIVATE,
                       INT_MAX, 0, 0, 0);
}

int wc_fd_forget(int fd)
{
    if (fd < 0 || (unsigned)fd >= wc_nfds || !wc_fds)
        return 0;
    struct wc_desc *x = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
    if (!wc_desc_is(x))
        return 0;
    struct wc_desc *old = __atomic_exchange_n(&wc_fds[fd], NULL,
                                              __ATOMIC_ACQ_REL);
    if (!wc_desc_is(old))
        return 0;
    return wc_desc_release_fd(old, fd);     /* fd is still open here */
}

/* ---- consistency points ---------------------------------------------- */

int wc_desc_sync_locked(int fd, struct wc_desc *d, enum wc_reason why)
{
    int r = 0;
    if (d->file && d->mode != WC_D_WATCH)
        r = wc_file_flush(d->file, why);
    if (d->mode == WC_D_CACHED && d->kstale) {
        if (wc_k_lseek(fd, d->pos, SEEK_SET) >= 0)
            d->kstale = 0;
    }
    return r;
}

WC_HOT
void wc_desc_through_locked(int fd, struct wc_desc *d, enum wc_reason why)
{
    /* The kernel's offset from now on; at exit, only for a call that
     * comes after the shim's work (wc_cells_exit). */
    if (!__atomic_load_n(&wc_cells_late, __ATOMIC_ACQUIRE))
        wc_cell_settle(fd, d);
    if (d->mode != WC_D_CACHED && d->mode != WC_D_RESERVE)
        return;
    wc_desc_sync_locked(fd, d, why);
    d->mode = WC_D_THROUGH;
    wc_reg_mark_through(d->dev, d->ino);
}

int wc_fd_watched_any(void)
{
    return __atomic_load_n(&g_nwatch, __ATOMIC_RELAXED) > 0;
}

int wc_fd_watched(dev_t dev, ino_t ino)
{
    if (!__atomic_load_n(&g_nwatch, __ATOMIC_RELAXED))
        return 0;
    unsigned hi = __atomic_load_n(&g_fd_hi, __ATOMIC_RELAXED);
    for (unsigned fd = 0; fd < hi && hi <= wc_nfds; fd++) {
        struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
        if (!wc_desc_is(d) ||
            __atomic_load_n(&d->mode, __ATOMIC_RELAXED) != WC_D_WATCH)
            continue;
        struct stat st;         /* identity not asked yet (invariant (7)) */
        if (d->ino ? d->dev == dev && d->ino == ino
                   : wc_k_fstat((int)fd, &st) == 0 && st.st_dev == dev &&
                         st.st_ino == ino)
            return 1;
    }
    return 0;
}

void wc_file_all_through(dev_t dev, ino_t ino, enum wc_reason why)
{
    wc_file_others_through(dev, ino, NULL, why);
}

void wc_file_for_good(dev_t dev, ino_t ino, enum wc_reason why)
{
    wc_file_all_through(dev, ino, why);
    /* Only now: a description of a file that passes through for good
     * writes without engine work, so none of its descriptions may still
     * cache; until then a THROUGH one's kernel writes hold the engine's
     * file (io.c kernel_rw_locked). Later opens pass through meanwhile:
     * the registry entry is marked. */
    wc_mapped_add(dev, ino);
}

void wc_stat_for_good(const struct stat *st)
{
    if (!S_ISREG(st->st_mode) || wc_state != WC_ST_ON || wc_depth)
        return;
    wc_shim_enter();
    wc_file_for_good(st->st_dev, st->st_ino, WC_WHY_OTHER);
    wc_shim_leave();
}

void wc_fd_for_good(int fd)
{
    struct stat st;
    int e = errno;
    if (fd >= 0 && wc_state == WC_ST_ON && !wc_depth &&
        wc_k_fstat(fd, &st) == 0)
        wc_stat_for_good(&st);
    errno = e;
}

void wc_file_others_through(dev_t dev, ino_t ino, const struct wc_desc *keep,
                            enum wc_reason why)
{
    if (keep)
        wc_reg_mark_through(dev, ino);
    struct wc_desc *d;
    for (unsigned fd = 0; (d = next_locked(&fd, keep)); fd++) {
        if (d->dev == dev && d->ino == ino)
            wc_desc_through_locked((int)fd, d, why);
        wc_blk_unlock(&d->lock);
    }
}

/* Take (dev, ino) out of the cache: every description of it becomes
 * WATCH, at the kernel's offset, and the engine file goes with the last
 * reference. `mapped`: for good (later opens pass through); else a
 * description comes back after twice as many writes as the last time
 * (invariant (8)). */
static void detach(dev_t dev, ino_t ino, int mapped)
{
    if (mapped)
        wc_mapped_add(dev, ino);
    struct wc_desc *d;
    for (unsigned fd = 0; (d = next_locked(&fd, NULL)); fd++) {
        struct wc_file *f = NULL;
        if (d->dev == dev && d->ino == ino && d->file &&
            d->mode != WC_D_WATCH) {
            wc_desc_sync_locked((int)fd, d, WC_WHY_OTHER);
            f = d->file;
            d->file = NULL;
            d->mode = WC_D_WATCH;
            if (mapped) {
                d->shared = 1;
            } else {
                if (d->backoff < WC_BACKOFF_MAX)
                    d->backoff++;
                wc_watch_restart(d);
            }
            __atomic_add_fetch(&g_nwatch, 1, __ATOMIC_RELAXED);
        }
        wc_blk_unlock(&d->lock);
        if (f) {
            wc_reg_drop(dev, ino);
            wc_file_put(f);         /* the last one closes write-back */
        }
    }
}

void wc_file_detach(dev_t dev, ino_t ino)
{
    detach(dev, ino, 1);
}

void wc_file_demote(struct wc_file *f, dev_t dev, ino_t ino)
{
    /* Invariant (8): with one program thread nothing can write the file
     * between the settling and the detach, so no write-back error is
     * left for a close that no longer reaches the engine. A file marked
     * THROUGH (registry.c invariant (2): shared with another process or
     * with stdio, so it changes behind the engine) keeps its mark, and
     * its descriptions their modes, for the entry's life: it stays. */
    if (!__atomic_load_n(&wc_solo, __ATOMIC_RELAXED) ||
        wc_reg_is_through(dev, ino) || wc_file_settle(f))
        return;
    if (!wc_reg_parked(dev, ino, 0)) {
        /* A reference of its own keeps the file, and its write-back
         * descriptor, until the program closes one of the file's: closing
         * that descriptor now would drop the program's POSIX locks on the
         * file (wbfd.c invariant (2)). */
        if (wc_file_hold(f))
            return;
        if (wc_reg_park(dev, ino, f)) {
            wc_file_put(f);         /* clean, no error left: nothing lost */
            return;
        }
    }
    wc_log(WC_LOG_DEBUG, "file %lu:%lu leaves the cache: about one system "
           "call per operation", (unsigned long)dev, (unsigned long)ino);
    detach(dev, ino, 0);
}

int wc_file_fd_cloexec(dev_t dev, ino_t ino)
{
    unsigned hi = __atomic_load_n(&g_fd_hi, __ATOMIC_RELAXED);
    for (unsigned fd = 0; fd < hi && hi <= wc_nfds; fd++) {
        struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
        if (!wc_desc_is(d) || d->dev != dev || d->ino != ino)
            continue;
        int fl = wc_k_fcntl((int)fd, F_GETFD, 0);
        if (fl >= 0 && (fl & FD_CLOEXEC))
            return 1;
    }
    return 0;
}

WC_ONCE
void wc_consistency_all(enum wc_reason why, int how, int exec_only)
{
    /* Child creations that share a description (atomic): in WC_BOOT,
     * the page the parent's fork handlers write anyway (ownfd.c's
     * window counters), where in .bss it was a page more to copy after
     * each fork. */
    WC_BOOT static unsigned g_child_gen;
    unsigned gen = 0;               /* taken at the first one shared: a
                                       fork that shares none writes no
                                       page the child shares */
    struct wc_cache *c = wc_cachep;
    if (c) {
        wc_cache_flush(c, why);
        wc_reg_sweep();     /* files whose retry wrote everything */
    }
    struct wc_desc *d;
    for (unsigned fd = 0; (d = next_locked(&fd, NULL)); fd++) {
        /* Shared with the new process? An exec-only child (posix_spawn,
         * system, popen, vfork) gets only the non-O_CLOEXEC descriptors. */
        int shared = how;
        if (shared && exec_only) {
            int fl = wc_k_fcntl((int)fd, F_GETFD, 0);
            shared = fl >= 0 && !(fl & FD_CLOEXEC);
        }
        int finish = WC_SHARE_DONE;
        if (shared == WC_ALL_THROUGH) {
            wc_desc_through_locked((int)fd, d, why);
        } else if (shared) {
            /* The child moves the shared offset too (shared.c). */
            finish = wc_desc_share_locked((int)fd, d, why);
            while (!gen)
                gen = __atomic_add_fetch(&g_child_gen, 1, __ATOMIC_RELAXED);
            wc_holders_fork((int)fd, d, gen);
            d->shared = 1;
        } else if (d->mode == WC_D_CACHED) {
            wc_desc_sync_locked((int)fd, d, why);
        }
        dev_t dev = d->dev;
        ino_t ino = d->ino;
        wc_blk_unlock(&d->lock);
        wc_share_finish(finish, dev, ino, d, why);
    }
}

/* A fork child owns none of its parent's cache, whether the parent caches
 * or stopped for good (proc.c (8)) and keeps it (the engine's descriptors
 * of locked files), and was given none of its memory (cache/store.h (5)):
 * it closes its copies of the engine's descriptors (the parent's POSIX
 * locks are the parent's), which are the internal ones (ownfd.c (5))
 * that are not the memfds of cell regions (kept: wc_holders_after_fork_
 * child), with the bare system call (libc's close is a page of code each
 * child would fault in). Before wc_after_fork_child, whose pass over the
 * internal numbers then finds only the regions'. */
WC_ONCE
void wc_forget_cache_in_child(void)
{
    if (!wc_cachep)
        return;
    wc_cachep = NULL;
    wc_cache_after_fork_child();
    for (unsigned fd = g_own_lo; fd < g_own_hi && g_own_hi <= wc_nfds; fd++)
        if (wc_fds[fd] == WC_DESC_INTERNAL && !wc_cells_region_fd((int)fd)) {
            wc_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
            wc_fds[fd] = NULL;
        }
}

WC_ONCE
void wc_after_fork_child(void)
{
    /* The child has one thread, whatever the parent had (shim.h): its
     * first thread prepares its table and membarrier early again
     * (altstack.c (5); probe AD F5: a threaded parent's child paid a
     * grace period at its cache's first descriptor). */
    WC_RESET(wc_solo, 1);
    WC_RESET(wc_rent_ns, 0);        /* its own cache, its own rent (6b) */
    WC_RESET(g_cache_lock.v, 0);
    WC_RESET(g_slab_lock.v, 0);
    WC_RESET(g_fs_memo_lock.v, 0);
    wc_reg_after_fork();
    wc_own_fd_after_fork();
    WC_RESET(g_cache_failed, 0);
    wc_memcg_after_fork_child();
    int nwatch = 0;
    for (unsigned fd = g_own_lo; fd < g_own_hi && g_own_hi <= wc_nfds; fd++)
        if (wc_fds[fd] == WC_DESC_INTERNAL)
            wc_fds[fd] = NULL;      /* the parent's: not ours to hide */
    WC_RESET(g_own_lo, ~0u);
    WC_RESET(g_own_hi, 0);
    wc_holders_after_fork_child();
    unsigned hi = g_fd_hi;
    for (unsigned fd = 0; fd < hi && hi <= wc_nfds; fd++) {
        struct wc_desc *d = wc_fds[fd];
        if (d == WC_DESC_CLOSING)
            wc_fds[fd] = NULL;  /* another thread's close (1b) */
        if (!wc_desc_is(d))
            continue;
        /* Shared with the parent: the kernel's offset rules from now on;
         * the file was flushed by the parent before fork. A description
         * that appears in several slots is visited several times. */
        wc_blk_reset(&d->lock);
        d->pending = 0;         /* its scan's thread is not here */
        if (d->mode != WC_D_WATCH) {
            d->mode = WC_D_WATCH;
            d->file = NULL;
        }
        d->shared = 1;
    }
    for (unsigned fd = 0; fd < hi && hi <= wc_nfds; fd++)
        if (wc_desc_is(wc_fds[fd]))
            nwatch++;     /* over-counts dups: only gates a scan */
    WC_RESET(g_nwatch, nwatch);
    /* This thread's queue is empty (fork is called at depth 0). */
    wc_qpending = 0;
    wc_depth = 0;
}

void wc_unlock_all_in_child(void)
{
    g_cache_lock.v = 0;
    g_slab_lock.v = 0;
    g_fs_memo_lock.v = 0;
    wc_memcg_after_fork_child();
    wc_blk_after_fork();                /* wcache/blk.h invariant (5) */
    wc_reg_unlock_in_child();
    wc_own_fd_after_fork();
    unsigned hi = __atomic_load_n(&g_fd_hi, __ATOMIC_RELAXED);
    for (unsigned fd = 0; fd < hi && hi <= wc_nfds; fd++) {
        struct wc_desc *d = wc_fds[fd];
        if (wc_desc_is(d)) {
            wc_blk_reset(&d->lock);
            d->pending = 0;
        }
    }
    if (wc_cachep)
        wc_cache_unlock_all(wc_cachep);     /* an unfinished write undone */
    wc_inflight_fixup();                    /* a finished one counted */
}

WC_ONCE
void wc_shutdown(enum wc_reason why)
{
    if (wc_state != WC_ST_ON)
        return;
    wc_cells_exit();                /* shared.c invariant (6) */
    wc_consistency_all(why, WC_ALL_THROUGH, 0);
    wc_state = WC_ST_OFF;
}
