/*
 * registry.c - the registry of cached files: one entry per file (dev, ino)
 * the engine caches for this process, with the number of descriptions
 * that hold a reference to it; and the set of files that were ever mapped
 * (they pass through for good).
 *
 * Invariants:
 *   (1) An entry exists while at least one description holds the file
 *       (wc_reg_add / wc_reg_drop pair with the engine's references), or
 *       while it holds an engine reference of its own (`held`): its last
 *       description let go of the file (wc_reg_release) and the engine
 *       still keeps bytes whose write-back failed, for a retry (errors.c
 *       (2)). A later open of the file then attaches to it and sees them
 *       (fstat, reads, the end its appends go to); without the entry it
 *       was watched, its writes went to the kernel at the disk's end, and
 *       the retry wrote the old bytes over them. The reference goes when
 *       the engine has nothing unwritten left (wc_reg_sweep, at every
 *       release and every whole-cache consistency point), so a held file
 *       costs an entry and its write-back descriptor, as a cached one.
 *   (2) `through`, once set, stays for the entry's life: the file can
 *       change behind the engine (shared with a child, stdio, a mapping),
 *       so every later description of it passes through.
 *   (3) The mapped set only grows (to MAPPED_MAX; past it, no new file is
 *       cached at all).
 *   (4) The streams set counts, per file, the stdio streams the program
 *       opened on it (fopen, freopen, fdopen) and has not closed (fclose):
 *       while a file is in it, no description of it leaves WATCH for the
 *       cache (fdtab.c wc_desc_adopt_locked), since stdio reads and writes
 *       it behind the engine (open.c invariant (3)).
 *   (5) An entry is claimed (`attaching`, the claiming thread) from its
 *       making by a description's adoption or open (WC_REG_FRESH) until
 *       that thread has attached the file's WATCH descriptions
 *       (fdtab.c attach_watchers, wc_reg_attached), or by that scan when
 *       an open brings one late (wc_reg_claim). Meanwhile no other
 *       description takes a reference (wc_reg_add answers WC_REG_BUSY and
 *       the caller waits, wc_reg_wait): a description that cached before
 *       every WATCH one of its file was attached placed its appends by a
 *       size the WATCH ones' kernel writes were still moving (a probe: 121
 *       of 200 rounds of 8 threads each opening the file had a record
 *       elsewhere than lseek said).
 *
 * Lock: g_reg_lock protects g_reg, wc_nreg (written under it, read
 * lock-free as a hint), every entry, g_nheld (a hint likewise), the parked
 * files (g_nparked a hint), the mapped set and the streams set (g_nstreams
 * a hint). It is taken inside a description's lock, never the other way;
 * wc_reg_apply, wc_reg_release and wc_reg_sweep call into the engine under
 * it (the engine's locks come after it); the puts that may write back are
 * made outside it.
 */
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include "shim.h"
#include "wcache/raw.h"

static struct wc_lock g_reg_lock;

struct reg_entry {
    dev_t dev;
    ino_t ino;
    struct wc_file *file;    /* the engine object (one per file) */
    int ndesc;               /* descriptions holding a reference */
    int through;             /* a description of it is THROUGH (shared
                                with a child, stdio, a mapping): the file
                                can change outside the engine, so every
                                later description is THROUGH too */
    int held;                /* the entry holds an engine reference of
                                its own (invariant (1)) */
    uintptr_t attaching;     /* the thread that claimed it, or 0
                                (invariant (5)) */
};
#define REG_MAX 4096
static struct reg_entry *g_reg;      /* mmap'd, REG_MAX entries */
WC_BOOT int wc_nreg;                 /* entries in use (atomic reads:
                                        wc_reg_empty, shim.h) */
static int g_nheld;                  /* entries with `held` (atomic reads:
                                        wc_reg_sweep's hint) */

/* Files that left the cache for gaining nothing (fdtab.c invariant (8)),
 * each with one engine reference of its own: the file stays live (clean,
 * no page) and its write-back descriptor open until the program closes a
 * descriptor of the file (wbfd.c invariant (2): closing it earlier would
 * drop the program's POSIX locks on the file).
 *
 *   CACHED --wc_file_demote--> PARKED --a close of one of the file's
 *   (entry here,               (no entry,   descriptors--> gone (the
 *    descriptions CACHED)       parked ref,  engine's last reference:
 *      ^                        descriptions write-back descriptor
 *      |                        WATCH)       closed with the program's)
 *      +-- 16, 32, 64... writes later: adopted again, through the same
 *          engine file (the parked reference stays until that close) */
#define PARKED_MAX 64
static struct { dev_t dev; ino_t ino; struct wc_file *file; } g_parked[PARKED_MAX] WC_LARGE;
static int g_nparked;                /* entries in use (atomic reads) */

#define MAPPED_MAX 1024
static struct { dev_t dev; ino_t ino; } g_mapped[MAPPED_MAX] WC_LARGE;
WC_BOOT static int g_nmapped;  /* read by every child's write: WC_BOOT */
static int g_mapped_overflow;        /* too many: cache no new file */

/* Files a stdio stream the program opened holds (open.c invariant (3)),
 * each with the number of such streams: none of their descriptions caches
 * meanwhile. Past STREAMS_MAX files, the streams not counted make every
 * file count until they close. */
#define STREAMS_MAX 256
static struct { dev_t dev; ino_t ino; int n; } g_streams[STREAMS_MAX] WC_LARGE;
static int g_nstreams;               /* entries in use (atomic reads) */
static int g_streams_uncounted;

static struct reg_entry *reg_find_locked(dev_t dev, ino_t ino)
{
    for (int i = 0; i < wc_nreg; i++)
        if (g_reg[i].ino == ino && g_reg[i].dev == dev)
            return &g_reg[i];
    return NULL;
}

/* The calling thread, as an entry's claimant (invariant (5)). */
static uintptr_t self(void)
{
    return (uintptr_t)pthread_self();
}

int wc_reg_add(dev_t dev, ino_t ino, struct wc_file *f)
{
    int fresh = 0;
    wc_lock(&g_reg_lock);
    struct reg_entry *e = reg_find_locked(dev, ino);
    if (!e && g_reg && wc_nreg < REG_MAX) {
        e = &g_reg[wc_nreg];
        e->dev = dev;
        e->ino = ino;
        e->file = f;
        e->ndesc = 0;
        e->through = 0;
        e->held = 0;
        e->attaching = self();
        __atomic_store_n(&wc_nreg, wc_nreg + 1, __ATOMIC_RELEASE);
        fresh = WC_REG_FRESH;
        wc_stats_file_cached();
    } else if (e && e->attaching && e->attaching != self()) {
        wc_unlock(&g_reg_lock);
        return WC_REG_BUSY;
    }
    if (e) {
        e->ndesc++;
        if (e->through)
            fresh |= WC_REG_THROUGH;
    }
    wc_unlock(&g_reg_lock);
    return fresh;
}

/* Wait until no other thread's claim holds (dev, ino)'s entry; with
 * `claim`, then claim it. 1 when it was claimed, 0 otherwise (no entry,
 * or not asked to). */
static int reg_settle(dev_t dev, ino_t ino, int claim)
{
    for (unsigned i = 0;; i++) {
        wc_lock(&g_reg_lock);
        struct reg_entry *e = reg_find_locked(dev, ino);
        int busy = e && e->attaching && e->attaching != self();
        if (e && !busy && claim)
            e->attaching = self();
        wc_unlock(&g_reg_lock);
        if (!busy)
            return e && claim;
        wc_backoff(i);
    }
}

int wc_reg_claim(dev_t dev, ino_t ino)
{
    return reg_settle(dev, ino, 1);
}

void wc_reg_wait(dev_t dev, ino_t ino)
{
    (void)reg_settle(dev, ino, 0);
}

void wc_reg_attached(dev_t dev, ino_t ino)
{
    wc_lock(&g_reg_lock);
    struct reg_entry *e = reg_find_locked(dev, ino);
    if (e && e->attaching == self())
        e->attaching = 0;
    wc_unlock(&g_reg_lock);
}

void wc_reg_mark_through(dev_t dev, ino_t ino)
{
    wc_lock(&g_reg_lock);
    struct reg_entry *e = reg_find_locked(dev, ino);
    if (e)
        e->through = 1;
    wc_unlock(&g_reg_lock);
}

static void reg_remove_locked(struct reg_entry *e)
{
    if (e->held)
        __atomic_store_n(&g_nheld, g_nheld - 1, __ATOMIC_RELAXED);
    *e = g_reg[wc_nreg - 1];
    __atomic_store_n(&wc_nreg, wc_nreg - 1, __ATOMIC_RELEASE);
}

void wc_reg_drop(dev_t dev, ino_t ino)
{
    wc_lock(&g_reg_lock);
    struct reg_entry *e = reg_find_locked(dev, ino);
    if (e && --e->ndesc <= 0 && !e->held)
        reg_remove_locked(e);
    wc_unlock(&g_reg_lock);
}

int wc_reg_release(dev_t dev, ino_t ino, struct wc_file *f, int fd)
{
    /* Invariant (1): the entry takes a reference of its own before the
     * last description's goes (after it, a slot the engine released could
     * be another file's already), when the file holds bytes its put may
     * fail to write (a writer's close wrote them already: wc_file_publish;
     * with no other description, nothing can dirty it meanwhile);
     * wc_reg_sweep gives it back at once when the put writes them. */
    wc_lock(&g_reg_lock);
    struct reg_entry *e = reg_find_locked(dev, ino);
    if (e && e->ndesc == 1 && !e->held && e->file == f &&
        wc_file_unwritten(f) && wc_file_hold_idle(f) == 0) {
        e->held = 1;
        __atomic_store_n(&g_nheld, g_nheld + 1, __ATOMIC_RELAXED);
    }
    if (e && --e->ndesc <= 0 && !e->held)
        reg_remove_locked(e);
    wc_unlock(&g_reg_lock);
    int r = fd >= 0 ? wc_file_put_fd(f, fd) : wc_file_put(f);
    wc_reg_sweep();
    return r;
}

void wc_reg_sweep(void)
{
    while (__atomic_load_n(&g_nheld, __ATOMIC_RELAXED)) {
        struct wc_file *f = NULL;
        wc_lock(&g_reg_lock);
        for (int i = 0; i < wc_nreg && !f; i++) {
            struct reg_entry *e = &g_reg[i];
            if (e->held && e->ndesc <= 0 && !wc_file_unwritten(e->file)) {
                f = e->file;
                reg_remove_locked(e);
            }
        }
        wc_unlock(&g_reg_lock);
        if (!f)
            return;
        /* Nothing unwritten: the last reference frees the slot. An open
         * that found the slot meanwhile holds a reference of its own (the
         * engine's lookup by dev and ino) and makes a new entry. */
        wc_file_put_idle(f);
    }
}

int wc_reg_apply(dev_t dev, ino_t ino,
                 int (*fn)(struct wc_file *, void *), void *arg)
{
    if (wc_reg_empty())
        return -ENOENT;
    int r = -ENOENT;
    wc_lock(&g_reg_lock);
    struct reg_entry *e = reg_find_locked(dev, ino);
    if (e)
        r = fn(e->file, arg);
    wc_unlock(&g_reg_lock);
    return r;
}

int wc_reg_each_dev(dev_t dev, int (*fn)(struct wc_file *, void *),
                    void *arg)
{
    if (wc_reg_empty())
        return 0;
    int r = 0;
    wc_lock(&g_reg_lock);
    for (int i = 0; i < wc_nreg; i++) {
        if (g_reg[i].dev != dev)
            continue;
        int x = fn(g_reg[i].file, arg);
        if (x < 0 && r == 0)
            r = x;
    }
    wc_unlock(&g_reg_lock);
    return r;
}

WC_HOT
int wc_reg_has(dev_t dev, ino_t ino)
{
    if (wc_reg_empty())
        return 0;
    wc_lock(&g_reg_lock);
    int r = reg_find_locked(dev, ino) != NULL;
    wc_unlock(&g_reg_lock);
    return r;
}

void wc_mapped_add(dev_t dev, ino_t ino)
{
    wc_lock(&g_reg_lock);
    int found = 0;
    for (int i = 0; i < g_nmapped; i++)
        if (g_mapped[i].dev == dev && g_mapped[i].ino == ino)
            found = 1;
    if (!found) {
        if (g_nmapped < MAPPED_MAX) {
            g_mapped[g_nmapped].dev = dev;
            g_mapped[g_nmapped].ino = ino;
            g_nmapped++;
        } else {
            g_mapped_overflow = 1;
        }
    }
    wc_unlock(&g_reg_lock);
}

int wc_reg_is_through(dev_t dev, ino_t ino)
{
    wc_lock(&g_reg_lock);
    struct reg_entry *e = reg_find_locked(dev, ino);
    int r = e && e->through;
    wc_unlock(&g_reg_lock);
    return r;
}

/* The index of (dev, ino) in the streams set, or g_nstreams. Caller holds
 * g_reg_lock. */
static int stream_find_locked(dev_t dev, ino_t ino)
{
    int i = 0;
    while (i < g_nstreams &&
           !(g_streams[i].dev == dev && g_streams[i].ino == ino))
        i++;
    return i;
}

void wc_stream_add(dev_t dev, ino_t ino)
{
    wc_lock(&g_reg_lock);
    int i = stream_find_locked(dev, ino);
    if (i < g_nstreams) {
        g_streams[i].n++;
    } else if (i < STREAMS_MAX) {
        g_streams[i].dev = dev;
        g_streams[i].ino = ino;
        g_streams[i].n = 1;
        __atomic_store_n(&g_nstreams, i + 1, __ATOMIC_RELAXED);
    } else {
        g_streams_uncounted++;
        __atomic_store_n(&g_nstreams, STREAMS_MAX, __ATOMIC_RELAXED);
    }
    wc_unlock(&g_reg_lock);
}

void wc_stream_drop(dev_t dev, ino_t ino)
{
    wc_lock(&g_reg_lock);
    int i = stream_find_locked(dev, ino);
    if (i < g_nstreams) {
        if (--g_streams[i].n == 0) {
            g_streams[i] = g_streams[g_nstreams - 1];
            __atomic_store_n(&g_nstreams, g_nstreams - 1, __ATOMIC_RELAXED);
        }
    } else if (g_streams_uncounted > 0) {
        g_streams_uncounted--;
    }
    wc_unlock(&g_reg_lock);
}

WC_HOT
int wc_streams_any(void)
{
    return __atomic_load_n(&g_nstreams, __ATOMIC_RELAXED) > 0;
}

WC_HOT
int wc_stream_has(dev_t dev, ino_t ino)
{
    if (!wc_streams_any())
        return 0;
    wc_lock(&g_reg_lock);
    int r = g_streams_uncounted > 0 || stream_find_locked(dev, ino) < g_nstreams;
    wc_unlock(&g_reg_lock);
    return r;
}

WC_HOT
int wc_mapped_has(dev_t dev, ino_t ino)
{
    if (!__atomic_load_n(&g_nmapped, __ATOMIC_RELAXED))
        return 0;
    wc_lock(&g_reg_lock);
    int r = g_mapped_overflow;
    for (int i = 0; i < g_nmapped && !r; i++)
        if (g_mapped[i].dev == dev && g_mapped[i].ino == ino)
            r = 1;
    wc_unlock(&g_reg_lock);
    return r;
}

int wc_reg_init(void)
{
    if (g_reg)
        return 0;
    void *p = REAL(mmap)(NULL, REG_MAX * sizeof *g_reg,
                         PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    wc_prefault(p, 4096);       /* written next: one call, not a fault */
    g_reg = p;
    return 0;
}

WC_ONCE
void wc_reg_after_fork(void)
{
    WC_RESET(g_reg_lock.v, 0);      /* the child is alone */
    WC_RESET(wc_nreg, 0);    /* the parent's files are not the child's */
    WC_RESET(g_nheld, 0);
    WC_RESET(g_nparked, 0); /* nor its parked ones (the cache abandoned) */
}

int wc_reg_park(dev_t dev, ino_t ino, struct wc_file *f)
{
    int r = -ENOSPC;
    wc_lock(&g_reg_lock);
    if (g_nparked < PARKED_MAX) {
        g_parked[g_nparked].dev = dev;
        g_parked[g_nparked].ino = ino;
        g_parked[g_nparked].file = f;
        __atomic_store_n(&g_nparked, g_nparked + 1, __ATOMIC_RELEASE);
        r = 0;
    }
    wc_unlock(&g_reg_lock);
    return r;
}

struct wc_file *wc_reg_parked(dev_t dev, ino_t ino, int take)
{
    if (!__atomic_load_n(&g_nparked, __ATOMIC_ACQUIRE))
        return NULL;
    struct wc_file *f = NULL;
    wc_lock(&g_reg_lock);
    for (int i = 0; i < g_nparked && !f; i++) {
        if (g_parked[i].dev != dev || g_parked[i].ino != ino)
            continue;
        f = g_parked[i].file;
        if (take) {
            g_parked[i] = g_parked[g_nparked - 1];
            __atomic_store_n(&g_nparked, g_nparked - 1, __ATOMIC_RELEASE);
        }
    }
    wc_unlock(&g_reg_lock);
    return f;
}

void wc_reg_unlock_in_child(void)
{
    g_reg_lock.v = 0;
}
