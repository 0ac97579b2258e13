/*
 * cache.h - the page cache engine (cache/), as the shim and the tests see it.
 *
 * A `wc_cache` is one process's cache: a sparse backing file mapped
 * MAP_SHARED, cut into 4 KiB blocks, plus the tables that say which block
 * holds which page of which file (laid out so that a later crash-replay can
 * read them; see cache/store.h). A `wc_file` is one cached file, shared by
 * every descriptor of the process that refers to it (same st_dev/st_ino).
 *
 * Conventions:
 *   - Functions return 0 or a byte count on success and -errno on failure;
 *     they never touch errno except through the real calls they make, and
 *     the caller restores errno on success (the shim does).
 *   - Nothing here allocates with malloc after wc_cache_open(): the write and
 *     read paths may run from a signal handler's write().
 *   - Thread safety: every function may be called from any thread. A file's
 *     pages are protected by the file's own lock, so writers to different
 *     files do not serialise (lock order in cache/cache_int.h).
 */
#ifndef WCACHE_CACHE_H
#define WCACHE_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "wcache/hidden.h"
#include "wcache/thr.h"

#define WC_PAGE_SHIFT 12
#define WC_PAGE_SIZE (1u << WC_PAGE_SHIFT)
/* A write of at least this many bytes to a file with nothing to write back
 * goes straight to the kernel (cache/write.c, where it is measured): the
 * shim does not count such writes toward caching a file. */
#define WC_LARGE_WRITE (2 * WC_PAGE_SIZE)

/* Linux's limit on one read or write: INT_MAX rounded down to a page. */
#define WC_MAX_RW_COUNT ((size_t)0x7ffff000)
/* Not an errno: wc_pwrite/wc_pwritev did nothing because the file passes
 * through for good (the kernel refused a call write-back needs: a seccomp
 * filter). The caller makes the program's own call in the kernel, after
 * wc_file_flush (which still works, with the calls that remain). */
#define WC_EPASS 4095

struct wc_cache;
struct wc_file;

/* How the engine keeps descriptors of its own (the backing store, one
 * write-back descriptor per file). Every descriptor the engine keeps comes
 * from place() and is announced gone with closed(); descriptors it opens
 * only for the length of one call (a reopen through /proc) are closed
 * before that call returns. */
struct wc_fd_ops {
    /* A new close-on-exec descriptor for the open file description behind
     * `fd` (fd itself is untouched), placed and marked so that the program
     * cannot see, close or replace it. Returns it or -errno. */
    int (*place)(int fd);
    /* The engine has just closed a descriptor place() or open()
     * returned. */
    void (*closed)(int fd);
    /* open(path, flags | O_CLOEXEC, mode), the descriptor placed as
     * place() places it; its first number (the lowest free one) meets
     * none of the program's calls. Returns it or -errno; errno kept. */
    int (*open)(const char *path, int flags, mode_t mode);
};

struct wc_config {
    size_t size;         /* capacity in bytes; 0: 64 MiB */
    size_t dirty;        /* dirty bytes that start write-back; 0: size / 2 */
    size_t bypass;       /* writes of at least this many bytes go straight
                            to the file; 0: 256 KiB */
    const char *dir;     /* parent of the per-user store directory; NULL:
                            /dev/shm, else $TMPDIR, else /tmp */
    unsigned max_files;  /* file-table slots; 0: 256 */
    const struct wc_fd_ops *fds; /* NULL: F_DUPFD_CLOEXEC anywhere, close */
    int unnamed;         /* create the backing file without a name until
                            wc_cache_publish (a guard opens it first) */
    long bg_page_ns;     /* a stream's write-back goes to the thread
                            that calls wc_cache_async_run once writing it
                            back has cost more than this a page (its
                            writer then never waits for it); 0: 4 us
                            (cache/async.c); -1: every stream's */
    void (*warn)(const char *msg); /* a line for the user (no prefix, no
                            newline); NULL: to standard error */
    uint64_t (*room)(void); /* NULL, or the bytes of memory left where
                            the store's memory is charged (a memory
                            cgroup's room; UINT64_MAX: no limit): the
                            store then holds at most a quarter of that
                            room and its own, asked as it grows and at
                            wc_cache_flush_expired (store.h (3)) */
    const uint64_t *sent; /* NULL, or bytes the caller wrote to files
                            itself (atomic): left out of a lagging file
                            system's free space too (errors.c (4c)) */
    const int *solo;     /* NULL, or the caller's promise: while *solo is
                            nonzero, one thread makes every call but
                            wc_cache_flush_expired and
                            wc_cache_async_run, and a write then
                            enters its file without the file's lock
                            (cache_int.h, the locks) */
};

/* Why a flush happened; counted in wc_stats.flushes[]. */
enum wc_reason {
    WC_WHY_CLOSE,
    WC_WHY_FSYNC,
    WC_WHY_DEADLINE,
    WC_WHY_PRESSURE,     /* dirty data above WCACHE_DIRTY */
    WC_WHY_FULL,         /* no free block */
    WC_WHY_BYPASS,       /* a large write goes to the file */
    WC_WHY_TRUNCATE,
    WC_WHY_LOCK,
    WC_WHY_FORK,
    WC_WHY_EXEC,
    WC_WHY_EXIT,
    WC_WHY_SIGNAL,       /* a signal to another process */
    WC_WHY_OTHER,        /* mmap, sendfile, fopen, ... */
    WC_WHY_COUNT
};
extern WC_LOCAL const char *const wc_reason_names[WC_WHY_COUNT];

struct wc_stats {
    uint64_t writes;        /* writes absorbed by the cache */
    uint64_t bytes;         /* bytes absorbed by the cache */
    uint64_t through;       /* writes sent straight to the file */
    uint64_t wb_calls;      /* write-back system calls issued */
    uint64_t wb_bytes;      /* bytes written back */
    uint64_t wb_background; /* batches written back by the flusher while
                               their writer went on (cache/async.c) */
    uint64_t flushes[WC_WHY_COUNT]; /* file flushes that wrote something */
    uint64_t faults;        /* copies retried after a user-memory fault */
    uint64_t errors;        /* write-back errors recorded */
    uint64_t evictions;     /* clean pages evicted for space */
    uint64_t store_full;    /* writes sent through: backing store full */
};

/* ---- the cache ------------------------------------------------------- */

/* Create the backing file and its mapping. *out is set on success.
 * Returns 0, or -errno (-ENOSPC, -EACCES, -ENOTDIR when the per-user
 * directory is not ours...). Installs the user-copy fault handler. */
int wc_cache_open(struct wc_cache **out, const struct wc_config *cfg);

/* Write back everything, release every file, unmap and unlink the backing
 * file. Returns 0 or the first write-back error (-errno). */
int wc_cache_close(struct wc_cache *c);

/* In a child after fork: the parent's cache is not here (store.h (5):
 * none of the engine's memory is inherited), and nothing is written back
 * nor unlinked. The child's copies of the engine's descriptors are those
 * the fd ops made (place, open) and were not told closed: their owner
 * closes them (the shim: fdtab.c wc_forget_cache_in_child). Resets the
 * engine's own state (its allocator's lock). Makes no system call. */
void wc_cache_after_fork_child(void);

/* The next fork child gets the whole cache, object, store and arrays, as a
 * process that will write back from it (wc_cache_unlock_all's) needs:
 * undoes store.h (5) for good. A system call per mapping; safe in a
 * signal handler. */
void wc_cache_inherit(struct wc_cache *c);

/* In a single-threaded child forked (raw fork, no atfork handlers) from a
 * process whose threads may have held engine locks, even mid-update (a
 * signal handler called _exit inside the shim): take every lock as free,
 * so that the child can write back what the shared store holds. Best
 * effort by nature; the parent's exit never depends on it. */
void wc_cache_unlock_all(struct wc_cache *c);

/* The program needs the number `fd`, which is one of the engine's own
 * descriptors: the engine takes a new one from fds->place() and closes
 * `fd`, under the lock that covers every use of it (no write-back is in
 * flight on it). Returns 0, -ENOENT when fd is not the engine's, or -errno
 * (then fd is still the engine's). The close drops the process's POSIX
 * record locks on that file, as any close of one of its descriptors. */
int wc_cache_fd_move(struct wc_cache *c, int fd);

/* Which file is `fd` the write-back descriptor of? Sets *dev, *ino and
 * returns 0; -EBUSY for the backing store's descriptor; -ENOENT when fd is
 * none of the engine's. */
int wc_cache_fd_owner(struct wc_cache *c, int fd, dev_t *dev /* OUT */,
                      ino_t *ino /* OUT */);
/* May the backing file go? 1 when no cached file holds data that is not
 * in the file yet (dirty pages, or a size the file does not have); 0
 * otherwise: the file then stays for the guard or `wcache recover`. The
 * one place that decides it (exit, exec, abort, close). */
int wc_cache_may_remove(struct wc_cache *c);

/* Remove the backing file's name if wc_cache_may_remove says so (once;
 * the mapping stays valid). Returns 1 when it was removed. */
int wc_cache_remove_if_clean(struct wc_cache *c);

/* Give the backing file its name, if it was created unnamed. Returns 0
 * or -errno (the cache works on; only `wcache recover` cannot find it). */
int wc_cache_publish(struct wc_cache *c);

/* The backing file's descriptor (the guard opens its own description of
 * it through /proc/self/fd). */
int wc_cache_store_fd(const struct wc_cache *c);

/* Path of the backing file (for messages and tests). */
const char *wc_cache_path(const struct wc_cache *c);
/* The mount namespace the backing file was made in (cache/format.h (11);
 * 0: unknown). */
uint64_t wc_cache_mnt_ns(const struct wc_cache *c);

/* Before a program touches its files (the shim's start-up): replay what
 * dead processes left in the store directory a cache made with `dir`
 * (NULL: the default chain) would be in, as `wcache -- prog` does before
 * prog starts (shim/cli_recover.c (G5)). Nothing is created; a directory
 * that does not exist holds nothing. Returns the number of backing files
 * replayed or kept. */
int wc_cache_replay_dead(const char *dir);

/* Write back every file's dirty data. Returns 0 or the first -errno. */
int wc_cache_flush(struct wc_cache *c, enum wc_reason why);

/* A write of `count` bytes to file system `dev` that reaches the kernel
 * without the engine (the shim's pass-through writes, through descriptor
 * fd): its room comes out of the budget that keeps room for cached bytes
 * (cache/errors.c (6)); when fstatfs of fd finds no room for it beside
 * them, every cached file of `dev` is written back first. Nothing when
 * nothing was ever cached on `dev`. 1 when room was taken: call
 * wc_cache_space_done once the kernel has answered the write (until then
 * the room counts as taken, whatever fstatfs says: cache/errors.c (7));
 * 0 when not. */
int wc_cache_space_through(struct wc_cache *c, uint64_t dev, int fd,
                           size_t count);
void wc_cache_space_done(struct wc_cache *c, uint64_t dev, size_t count);

/* Write-back in the background (cache/async.c): a stream's completed
 * pages are handed to the thread that calls wc_cache_async_run, woken by
 * `kick` (which must not block); NULL: the writers write them back
 * themselves again (a batch already handed over is then written by the
 * next flush of its file, or by a last wc_cache_async_run). */
void wc_cache_async(struct wc_cache *c, void (*kick)(void));
/* Write every batch handed over so far; returns how many. Takes no file
 * lock: any thread may call it, the one writer's included (wc_config.solo). */
int wc_cache_async_run(struct wc_cache *c);

/* Write back files whose oldest dirty byte is older than `max_age_ns`
 * (CLOCK_MONOTONIC). Returns 0 or the first -errno. */
int wc_cache_flush_expired(struct wc_cache *c, uint64_t max_age_ns);

/* Lower the dirty limit (wc_config.dirty) to `bytes` (one page at
 * least), if it is above: the room a memory cgroup has, known only after
 * the cache was made (shim/memcg.c (4)). Any thread, any lock held. */
void wc_cache_fit_dirty(struct wc_cache *c, size_t bytes);

/* Re-read the process limits the write path obeys (RLIMIT_FSIZE). The
 * shim calls it after setrlimit/prlimit; reading the limit on every write
 * would cost a system call. */
void wc_cache_limits_changed(struct wc_cache *c);

/* Dirty bytes (approximate: counted in whole pages). */
size_t wc_cache_dirty(const struct wc_cache *c);

void wc_cache_stats(const struct wc_cache *c, struct wc_stats *out);

/* ---- files ----------------------------------------------------------- */

/* The cached file for descriptor `fd` (a regular file the caller decided to
 * cache). Files are shared by (st_dev, st_ino): a second call for the same
 * file returns the same object with one more reference. A descriptor open
 * only for reading may join a file already cached (so its reads see the
 * cached bytes) but cannot start one (-EBADF). The cache keeps its
 * own descriptor for write-back (a reopen of /proc/self/fd/N without
 * O_APPEND, or a dup when that is impossible). Returns NULL and sets *err
 * (-errno) when the file cannot be cached; the caller then passes the
 * descriptor through. */
struct wc_file *wc_file_get(struct wc_cache *c, int fd, int *err);

/* The same, for a caller that already knows what the kernel says of fd:
 * `st` its fstat (NULL: asked here) and `fl` its status flags (F_GETFL;
 * -1: asked here). Saves those system calls per newly cached file. `fl`
 * may carry O_TRUNC: the caller truncates the file next (the open did),
 * so bytes the program let go of are not set aside first (errors.c
 * (8)). */
struct wc_file *wc_file_get_known(struct wc_cache *c, int fd,
                                  const struct stat *st, int fl, int *err);

/* f's writes are round trips to a server (the caller timed them: FUSE, a
 * network file system): its stream's write-back goes to the flusher from
 * the first batch, and in smaller batches (cache/async.c (6)). */
void wc_file_remote(struct wc_file *f);

/* The per-thread words a caller reads (wc_wip_end, wc_futile) are
 * wcache/thr.h's. */

/* Write f back and say whether it may leave the cache now: 0 when it holds
 * no dirty byte, is in its normal state and has no write-back error still
 * to report, and then its pages and its size are forgotten (the kernel
 * serves the file until it is cached again, through the same object if
 * it is still live); else -errno or -EBUSY. */
int wc_file_settle(struct wc_file *f);

/* One more reference to f, a file the caller holds a reference to.
 * Returns 0 or -EDEADLK (re-entered from a signal handler). */
int wc_file_hold(struct wc_file *f);
/* The same for a reference that stands for no description of the
 * program (the shim keeps a file its program closed, whose write-back
 * failed): while only such references are left, a retry does not write
 * over a file another process changed since (errors.c (8)). Given back
 * with wc_file_put_idle. */
int wc_file_hold_idle(struct wc_file *f);
int wc_file_put_idle(struct wc_file *f);

/* A description that could write lets go of f: its bytes go to the file
 * now (close-to-open), whoever else keeps f open (one may open it before
 * the caller's put), a file with no name left too (another holder may
 * read it). Returns 1 when others keep f,
 * 0 when not, or the write-back's -errno (also kept for fsync and
 * close). */
int wc_file_publish(struct wc_file *f);

/* The program itself changed f's file outside the engine (its times,
 * mode, owner, names): when f holds bytes not yet written, the disk note
 * is taken again, so that the change is not taken for another process's
 * (errors.c (8), a crash replay). */
void wc_file_noted(struct wc_file *f);

/* Does f hold bytes not yet written to its file (a write-back that failed
 * keeps them for a retry: CONTRACT section 4)? */
int wc_file_unwritten(struct wc_file *f);

/* Drop one reference. The last one writes the data back (a file with no
 * name left too: a descriptor the cache never saw may read it) and frees
 * the slot. Returns 0 or the
 * pending write-back error, reported once to close (-errno). */
int wc_file_put(struct wc_file *f);

/* The same, told that the reference belongs to the open file description
 * behind `fd` (still open; the caller is about to close it). When the
 * write-back descriptor shares that description and the file stays open
 * through others, the engine moves to a description of its own first, so
 * that the program's flock and OFD locks on it go when the kernel would
 * release them. */
int wc_file_put_fd(struct wc_file *f, int fd);

/* The program renamed, linked or unlinked a file or renamed a
 * directory: every cached file's slot takes the name its write-back
 * descriptor has now (/proc/self/fd), so that a replay after a crash
 * finds the file where the program put it (it took the renamed file for
 * another's change, or found no file at all under a renamed directory),
 * and notes whether it has one at all (format.h (10): an unlinked file's
 * bytes go with it). `names` 0: the process resolves names apart from
 * its crash guard (a chroot, a mount namespace of its own): only the
 * notes change. A file whose name went while it keeps another (a hard
 * link: the program's link and unlink, another process's) has a name
 * no replay can find: up to `max` of them are put in `lost` (dev, ino),
 * their number returned, for the caller to pass them through for good
 * (the write-back it makes then leaves nothing to replay). */
struct wc_file_id {
    uint64_t dev, ino;
};
int wc_cache_renamed(struct wc_cache *c, int names, struct wc_file_id *lost,
                     int max);

/* The process stops caching for good and every file is written back: a
 * clean file's engine descriptors close, unless locked(dev, ino, arg)
 * says the program holds POSIX record locks on it, which a close of any
 * descriptor of the file would drop (wbfd.c (2)). The files stay, without
 * descriptors; nothing may be cached or written back through them again. */
void wc_cache_fds_let_go(struct wc_cache *c,
                         int (*locked)(dev_t dev, ino_t ino, void *arg),
                         void *arg);

/* The process no longer resolves names as the replay will (a chroot, a
 * mount namespace of its own): from now on no file that is not cached
 * already is taken in (wc_file_get: -ENOENT), since the name a slot would
 * record could not be replayed. */
void wc_cache_names_apart(struct wc_cache *c);

/* Call fn(fd, dev, ino, arg) for every descriptor the engine keeps of a
 * cached file (write-back's, and the lseek+write one of a file written
 * back that way), with the file's lock held: fn must not call the
 * engine. */
void wc_cache_each_file_fd(struct wc_cache *c,
                           void (*fn)(int fd, dev_t dev, ino_t ino,
                                      void *arg),
                           void *arg);

/* The description behind `fd` (a descriptor of f) is about to change in a
 * way write-back must not inherit (O_DIRECT set with F_SETFL): write back,
 * then stop sharing it. Returns 0 or -errno. */
int wc_file_unshare(struct wc_file *f, int fd);

/* Size as the program sees it (i_size). */
off_t wc_file_size(struct wc_file *f);
/* Is `off` past the largest size f may have on its file system (asked of
 * the kernel the first time an offset past 64 MiB is: cache_int.h
 * WC_FS_MAX_CHECK)? A seek there is the kernel's to refuse (EINVAL). */
int wc_file_past_max(struct wc_file *f, uint64_t off);
/* The same, for a program that has just read `kernel_size` from the kernel
 * (fstat): when that is not the size the engine last left on disk,
 * another process changed the file, and the engine writes back what it
 * holds and forgets the rest (as after a lock), then asks the size again.
 * So fstat and lseek(SEEK_END) agree, and agree with the kernel once the
 * other process is done. */
off_t wc_file_size_seen(struct wc_file *f, off_t kernel_size);

/*
 * pwrite(2) semantics for one buffer: writes `len` bytes from user memory
 * `buf` at `pos`, or at the end of file when `append` is set. Returns the
 * bytes written (possibly short after a fault or at a limit) or -errno
 * (-EFAULT, -EINVAL, -EFBIG, -ENOSPC...), or -WC_EPASS when the file
 * passes through for good (the caller makes the call). A write the kernel
 * would refuse (RLIMIT_FSIZE, no room on the file system), and every write
 * of a file whose write-back failed, goes to the kernel, which answers it.
 * *where (may be NULL) receives the offset the write started at. The user memory may be anything: NULL,
 * PROT_NONE, a mapping of the file itself, changing under us.
 */
ssize_t wc_pwrite(struct wc_file *f, const void *buf, size_t len, off_t pos,
                  int append, off_t *where /* OUT */);

/* wc_pwrite for the common case of a small write that continues the last
 * one within its page (cache/write.c): the same result, in about a third
 * of the work; or WC_FAST_NO, having changed nothing, when any other
 * case applies: call wc_pwrite then. */
#define WC_FAST_NO ((ssize_t)INT64_MIN)
ssize_t wc_write_fast(struct wc_file *f, const void *buf, size_t len,
                      off_t pos, int append, off_t *where /* OUT */);

/* pwritev(2) semantics: also validates the iovec array as the kernel does
 * (EINVAL for iovcnt outside 0..IOV_MAX or a negative segment length,
 * EFAULT for an unreadable array or a segment outside user space). */
ssize_t wc_pwritev(struct wc_file *f, const struct iovec *iov, int iovcnt,
                   off_t pos, int append, off_t *where /* OUT */);

/* The kernel's checks of an iovec array (import_iovec: EINVAL for a bad
 * count or a negative length, EFAULT for an unreadable array or a segment
 * outside user space), nothing copied. Returns the total clamped to
 * WC_MAX_RW_COUNT, or -errno. */
ssize_t wc_iov_count(const struct iovec *iov, int iovcnt);

/* pread(2)/preadv(2) semantics: the file's bytes read through `fd`, with
 * the cached bytes laid over them, holes as zeros, nothing past i_size.
 * Never flushes. */
ssize_t wc_pread(struct wc_file *f, int fd, void *buf, size_t len, off_t pos);
ssize_t wc_preadv(struct wc_file *f, int fd, const struct iovec *iov,
                  int iovcnt, off_t pos);

/* ftruncate(2): drops cached bytes at and beyond `size`, then truncates the
 * file (the kernel decides EFBIG, EPERM...). Returns 0 or -errno. */
int wc_file_truncate(struct wc_file *f, off_t size);
/* The kernel truncated f's file at an open (O_TRUNC): wc_file_truncate(f,
 * 0), unless the engine holds nothing of it and knows it empty (no page,
 * size and size on disk 0): then no write-back can have put bytes there
 * since that open, and the truncation is not made again (on ext4 it
 * would mark the file to be written to disk at its close, auto_da_alloc,
 * and a program's unlink of it then waited for that write). */
int wc_file_open_truncated(struct wc_file *f);

/* Write back this file's dirty data in ascending offset order. Returns 0 or
 * -errno (the data then stays cached and the error is recorded). */
int wc_file_flush(struct wc_file *f, enum wc_reason why);

/* fsync/fdatasync: flush (a retry of a file whose write-back failed), then
 * the real call on the write-back descriptor (`datasync`: 0 fsync, 1
 * fdatasync, WC_SYNC_WAIT none: sync_file_range's waits, which the
 * caller makes). Returns 0 or -errno; a recorded write-back error is
 * reported here once, and cleared when everything is written (a later
 * close returns 0), as the kernel's errseq does (cache/errors.c). */
#define WC_SYNC_WAIT (-1)
int wc_file_sync(struct wc_file *f, int datasync);

/* Flush, then forget clean pages (a lock was taken: other processes may
 * have changed the file). Returns 0 or -errno. */
int wc_file_invalidate(struct wc_file *f, enum wc_reason why);

/* A lock was taken or dropped on some file, which processes use to agree
 * about any file (SQLite's WAL file behind a lock on its -shm file, a log
 * behind a lock file): every file's dirty data is written back and, after
 * a lock was taken (`taken`), what the cache knew of every file is
 * forgotten, as wc_file_invalidate does for one. Returns 0 or the first
 * -errno (that file's data stays cached and the error recorded). */
int wc_cache_lock_point(struct wc_cache *c, int taken);

/* A call the kernel makes on f for a description that passes through
 * (a write, a truncate) while other descriptions of f may still cache
 * (they all pass through soon: one at a time). wc_file_kernel_begin
 * writes f back and keeps f locked, so that no cached write of f is
 * placed by a size or pages the call is about to change; after the call,
 * wc_file_kernel_end (`changed`: the call may have changed the file)
 * makes the engine forget what it knew, as wc_file_invalidate, and
 * unlocks. begin returns 1 when f is held (end must follow), 0 when
 * re-entered from a signal handler (nothing held, no end); a write-back
 * error is kept for fsync and close, as wc_file_flush keeps it (the
 * bytes left cached are then never written over what the call changes:
 * cache/errors.c (8)). */
int wc_file_kernel_begin(struct wc_file *f, enum wc_reason why);
void wc_file_kernel_end(struct wc_file *f, int changed, enum wc_reason why);

/* Other processes write f too, at offsets reserved apart from this
 * process's (the shim's shared descriptions): recorded in the backing
 * file before anything of theirs is cached, so that a replay after this
 * process's death writes in place even though they made the file grow
 * (format.h (5)). For good, until the file leaves the cache. */
void wc_file_shared(struct wc_file *f);

/* ---- for tests only -------------------------------------------------- */

/* Fill every block of the backing store with `byte`, then free them all,
 * so that later allocations reuse dirty blocks. The cache must be empty. */
int wc__store_poison(struct wc_cache *c, int byte);
/* The data area of the store and its size in bytes. */
void *wc__store_data(struct wc_cache *c, size_t *bytes /* OUT */);
/* Blocks in use / reserved (fallocated) in the store. */
size_t wc__store_used(const struct wc_cache *c);

#endif /* WCACHE_CACHE_H */
