/*
 * store.h - the backing file: its on-disk layout and the block allocator.
 *
 * One sparse file per process, <dir>/wcache-<uid>/cache.<pid>.<nonce>,
 * created 0600 with O_EXCL|O_NOFOLLOW in a 0700 directory we own, mapped
 * MAP_SHARED in one piece. Because the mapping is shared, whatever the
 * process stored survives its death (even SIGKILL). The layout, and the
 * invariants a replay relies on, are in format.h; the allocator's own:
 *   (1) Every page of the file that is stored into was reserved with
 *       fallocate first, so a full file system gives ENOSPC at reservation
 *       time, never SIGBUS at store time.
 *   (2) The owner holds an exclusive flock on the backing file for as long
 *       as it may store into it: whoever gets the lock (the guard, `wcache
 *       recover`) knows the owner is gone. A store whose lock is refused
 *       (a seccomp filter the program inherited, which the guard, its
 *       descendant, inherits too: it could not watch the lock) is not
 *       made (wc_store_open fails with that errno: the process runs
 *       without a cache); so is one whose ftruncate is refused.
 *   (3) With a room function (wc_config.room: a memory cgroup's limit),
 *       the blocks the store holds in memory (reserved, less those
 *       punched) stay at most a quarter of what it holds plus the room
 *       left (the shim lowers the dirty limit to match at its first
 *       answer, wc_cache_fit_dirty): a growth past that is refused
 *       (-EAGAIN: the store is full, pages.c recycles clean blocks or
 *       writes back), and wc_store_fit gives
 *       free blocks back when others took the room since. The first
 *       WC_ROOM_FREE bytes are always granted. The room is asked at
 *       every growth past them (a few cgroup files read, tens of us, at
 *       most once per chunk of up to WC_CHUNK_BLOCKS blocks): processes
 *       growing together each see what the others took (with one answer
 *       kept for half of what it allowed, 16 writers in a 16 MiB cgroup
 *       each took 768 KiB and 1 or 2 were OOM-killed in 3 of 5 runs).
 *       Shared memory is charged to the cgroup as the kernel's page
 *       cache is, but nothing reclaims it without swap: several
 *       processes each sized to a quarter of one room, made at once,
 *       were OOM-killed where the kernel alone finished (probe O).
 *   (4) The store's mapping, MAP_SHARED and as large as the store, counts
 *       against RLIMIT_AS like any mapping: with a finite limit when the
 *       cache is made (wc_cache_open, fit_as), the store has at most as
 *       many blocks as keep everything the engine maps (the store, the
 *       arrays sized by its blocks and files, 1 MiB for what grows with
 *       the files cached) within a quarter of the headroom, the limit
 *       less the process's VmSize (/proc/self/statm: the kernel's own
 *       count, which the limit is checked against), so that three
 *       quarters stay the program's; its dirty share is half of that size
 *       unless WCACHE_DIRTY says otherwise. Where fewer than 64 blocks
 *       (256 KiB) would fit, or VmSize cannot be read, no cache is made
 *       (-ENOMEM; the shim says so at info level only). Before, a program
 *       under a 128 MiB limit that wrote 2000 lines then asked malloc for
 *       80 MiB got ENOMEM, where the kernel alone gave it (probe R, 3 of
 *       3). The limit is read once: nothing the engine maps later
 *       depends on it, and a limit the program lowers afterwards (below
 *       the store, even) fails none of its calls.
 *   (5) A fork child receives none of the engine's memory: the store's
 *       mapping, the arrays sized by its blocks, the cache object and its
 *       file slots are all MADV_DONTFORK (wc_big_alloc), so fork copies
 *       none of their page tables, the parent's next store into them
 *       (its locks, its counters, the flusher's work) is no copy-on-write
 *       fault, and the child unmaps nothing (300 children of a process
 *       with a cache: 7 munmaps each were 11% of the time; the last two,
 *       of the object and the slots, 70 us a child on a VM where an
 *       munmap costs 17-35 us). The child's copies of the engine's
 *       descriptors are known to the owner of the fd ops, which made
 *       them (wc_fd_ops): it closes them (the shim: fdtab.c
 *       wc_forget_cache_in_child); the engine's own part of a child's
 *       start is wc_cache_after_fork_child. Only a child that writes back
 *       for its parent gets it all (wc_cache_inherit).
 */
#ifndef WCACHE_STORE_H
#define WCACHE_STORE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"
#include "wcache/cache.h"

#define WC_CHUNK_BLOCKS 64      /* most blocks reserved per fallocate
                                   (chunks grow to it: store.c) */

/*
 * The allocator. All fields are protected by the cache lock (c->lock,
 * cache_int.h); the mapped tables are written under the locks of their users.
 */
struct wc_store {
    int fd;                     /* the backing file, O_CLOEXEC */
    const struct wc_fd_ops *fds; /* where fd came from, and goes back */
    char path[PATH_MAX];        /* its name */
    uint8_t *map;               /* the whole file, MAP_SHARED */
    size_t map_len;
    struct wc_header *hdr;
    struct wc_brec *brecs;      /* map + hdr->off_brecs, and */
    uint8_t *data;              /* map + hdr->off_data: kept here, so that
                                   the write path does not read the header
                                   (one dependent load less per write) */
    uint32_t nblocks;
    uint32_t nfiles;
    uint32_t reserved;          /* blocks [0, reserved) were fallocated */
    uint32_t files_reserved;    /* file slots [0, files_reserved) too */
    uint32_t *ring;             /* free reserved blocks: a ring, newest at
                                   tail (reused first), oldest at head
                                   (given back first) */
    uint32_t head, nfree;       /* ring start and length */
    uint32_t *punched;          /* blocks whose space was given back */
    uint32_t npunched;
    uint32_t used;              /* blocks handed out */
    uint32_t enospc_backoff;    /* allocations to skip before trying
                                   fallocate again after ENOSPC */
    int no_fallocate;           /* fallocate unsupported: touch instead */
    int no_pwrite;              /* pwrite refused (EPERM, ENOSYS: a seccomp
                                   filter): reserve with lseek+write */
    int named;                  /* path is linked (0: O_TMPFILE, until
                                   wc_store_publish) */
    int no_populate;            /* MADV_POPULATE_WRITE unsupported */
    uint64_t (*room)(void);     /* wc_config.room, or NULL (3) */
};

/* What the store may always hold, a room function or not (3). */
#define WC_ROOM_FREE ((uint64_t)64 << 10)

/* Give free blocks back until the store holds what (3) allows with the
 * room left now (caller holds the cache lock). Returns blocks given back;
 * *over is set to the blocks still held past it (in use: the caller may
 * evict clean ones and call again). */
uint32_t wc_store_fit(struct wc_store *s, uint32_t *over);

static inline struct wc_fslot *wc_store_slot(struct wc_store *s, uint32_t i)
{
    return (struct wc_fslot *)(s->map + s->hdr->off_files +
                               (uint64_t)i * WC_FSLOT_SIZE);
}

static inline struct wc_brec *wc_store_brec(struct wc_store *s, uint32_t b)
{
    return s->brecs + b;
}

static inline uint8_t *wc_store_block(struct wc_store *s, uint32_t b)
{
    return s->data + ((uint64_t)b << WC_PAGE_SHIFT);
}

/* The per-user directory wc_store_open would create its file in (dir
 * NULL: the default chain), in out[outlen] when it exists; nothing is
 * created. Returns 0 or -errno. */
int wc_store_dir(const char *dir, char *out, size_t outlen);

/* Create the backing file for `nblocks` blocks and `nfiles` slots under
 * `dir` (NULL: the default chain); with `unnamed`, without a name (an
 * O_TMPFILE, where the file system has them) until wc_store_publish, so
 * that a death before then leaves nothing. Its descriptor comes from
 * fds->open (placed, announced) and goes back through fds->closed.
 * Returns 0 or -errno. */
int wc_store_open(struct wc_store *s, const char *dir, uint32_t nblocks,
                  uint32_t nfiles, int unnamed, const struct wc_fd_ops *fds);
/* Give an unnamed backing file its name (path). Returns 0 or -errno. */
int wc_store_publish(struct wc_store *s);
/* Unmap and close; unlink the file when `unlink_it`. */
void wc_store_close(struct wc_store *s, int unlink_it);

/* A free block, reserved on disk: its number (>= 0), -EAGAIN when every
 * block is in use (evict and retry), -ENOSPC when the file system cannot
 * hold another one. The block holds garbage. */
int64_t wc_store_alloc(struct wc_store *s);
/* Give a block back (it becomes the next one handed out). */
void wc_store_free(struct wc_store *s, uint32_t b);
/* Reserve the file-table slot i on disk. Returns 0 or -errno. */
int wc_store_reserve_slot(struct wc_store *s, uint32_t i);
/* Punch holes into the oldest free blocks while more than `keep` are
 * free, giving their memory back, one fallocate per run of adjacent
 * blocks. */
void wc_store_trim(struct wc_store *s, uint32_t keep);

/* Zeroed memory for the engine's objects and the arrays sized by the
 * store (untouched until used: never counted against memory the program
 * does not use), and its release. Not inherited by a fork child
 * (invariant (5)). */
#define WC_BIG_CHILD 1
void *wc_big_alloc(size_t bytes);
/* Whether a fork child gets [p, p + bytes) from now on (WC_BIG_CHILD, or
 * 0: invariant (5)). Best effort, errno kept: where it fails a child
 * gets a copy it never reads. */
void wc_big_fork(void *p, size_t bytes, int child);
void wc_big_free(void *p, size_t bytes);

#endif /* WCACHE_STORE_H */
