/*
 * open.c - descriptors come and go: the open family, the stdio opens,
 * the opens libc and the loader make with their own calls (mkstemp,
 * memfd_create, dlopen), close/close_range/closefrom, dup/dup2/dup3,
 * fcntl, and file locks.
 *
 * Invariants:
 *   (1) The real call always happens first for opens and dups (the kernel
 *       decides success and the descriptor number); the fd table follows.
 *       For close, the table entry is removed first (so a racing open that
 *       reuses the number is never mistaken for the old file), then the
 *       description is released (the engine writes back when it was the
 *       file's last descriptor), then the real close.
 *   (2) The engine's own descriptors are invisible (ownfd.c): they sit at
 *       or above the program's RLIMIT_NOFILE, where the kernel itself
 *       refuses the program; close() of one fails with EBADF as if it were
 *       not open, close_range and closefrom skip them. In the fallback
 *       where some sit below the limit, a dup2/dup3/F_DUPFD onto one moves
 *       it out of the way first (EBUSY only if it cannot move).
 *   (3) fopen/freopen/fdopen hand a file to stdio, whose reads and writes
 *       do not come through the shim: the file's cached data is written
 *       first ("w" modes drop it instead: the open truncates), and an
 *       fdopen'd description passes through from then on. A file that
 *       this process caches or watches (a description in its first
 *       writes) when a stream of it is opened passes through for good; so
 *       does one opened or set (F_SETFL) with O_DIRECT or O_SYNC. A file
 *       a stream the program opened holds is cached by no description
 *       until the stream's fclose (registry.c invariant (4)).
 *   (4) Locks (fcntl F_SETLK*, F_OFD_SETLK*, flock, lockf) on any
 *       descriptor, tracked or not, are consistency points for every
 *       file (processes agree about one file through a lock on another):
 *       every cached file is written back before the lock call; after a
 *       lock is taken the engine forgets every file's clean pages and
 *       size (others may have changed them under their lock:
 *       wc_cache_lock_point). A WATCH description's own locks are counted
 *       (fdtab.c invariant (6)). Blocking lock calls run at depth 0, so
 *       signal handlers' writes are not held up behind them.
 *   (5) dlopen and dlmopen read and map the file with the loader's own
 *       calls: everything cached is written back first (a library the
 *       program just wrote loads whole). The real function is reached by
 *       a jump, so that it sees the program's call site (the caller's
 *       RUNPATH and $ORIGIN decide where a name is searched).
 *   (6) mkstemp's kin and memfd_create open with libc's own calls: their
 *       descriptor is tracked as an open's is.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "shim.h"
#include "kcall.h"

#ifndef __O_TMPFILE
#define __O_TMPFILE 0
#endif

WC_HOT
int wc_opened(int fd, int dirfd, const char *path, int flags)
{
    if (unlikely(wc_state == WC_ST_VFORK))
        wc_vfork_opened(fd, flags);     /* proc.c invariant (7) */
    else if (fd >= 0 && wc_state == WC_ST_ON && !wc_depth) {
        int e = wc_work_begin();
        wc_nc_mark(fd, WC_NC_UNKNOWN);
        wc_fd_opened(fd, dirfd, path, flags);
        if (fd <= 2)
            wc_fd_std(fd, 0);
        wc_debug_fd(fd, path, "opened");
        wc_work_end(e);
    }
    return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
               ? va_arg(ap, mode_t) : 0;
}

/* EMFILE while descriptors of ours sit below the limit: RETRY_EMFILE
 * (shim.h). */

WC_HOT
static int open_va(int dirfd, const char *path, int flags, va_list ap)
{
    mode_t m = mode_arg(flags, ap);
    int fd;
    RETRY_EMFILE(fd, wc_k_openat(dirfd, path, flags, m));
    return wc_opened(fd, dirfd, path, flags);
}

WC_HOT
WC_EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int r = open_va(AT_FDCWD, path, flags, ap);
    va_end(ap);
    return r;
}
int open64(const char *path, int flags, ...) WC_ALIAS(open);

WC_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    va_list ap;
    va_start(ap, flags);
    int r = open_va(dirfd, path, flags, ap);
    va_end(ap);
    return r;
}
int openat64(int dirfd, const char *path, int flags, ...) WC_ALIAS(openat);

WC_EXPORT int creat(const char *path, mode_t mode)
{
    int flags = O_CREAT | O_WRONLY | O_TRUNC;
    int fd;
    RETRY_EMFILE(fd, wc_k_openat(AT_FDCWD, path, flags, mode));
    return wc_opened(fd, AT_FDCWD, path, flags);
}

/* glibc's wrapper of the system call (syscall.c routes the raw one): an
 * open like the others, O_TRUNC included, only without a path. */
WC_EXPORT int open_by_handle_at(int mount_fd, struct file_handle *h,
                                int flags)
{
    int fd;
    RETRY_EMFILE(fd, REAL(open_by_handle_at)(mount_fd, h, flags));
    return wc_opened(fd, AT_FDCWD, NULL, flags);
}

WC_EXPORT int creat64(const char *path, mode_t mode)
{
    return creat(path, mode);
}

/* Fortify variants: the real one checks "O_CREAT without mode" and
 * aborts as glibc does; then the descriptor is tracked. */
WC_EXPORT int __open_2(const char *path, int flags)
{
    int fd;
    RETRY_EMFILE(fd, REAL(__open_2)(path, flags));
    return wc_opened(fd, AT_FDCWD, path, flags);
}

WC_EXPORT int __open64_2(const char *path, int flags)
{
    int fd;
    RETRY_EMFILE(fd, REAL(__open_2)(path, flags));
    return wc_opened(fd, AT_FDCWD, path, flags);
}

WC_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    if (WC_HIDDEN_AT(dirfd, path))
        return wc_ret(-EBADF);
    int fd;
    RETRY_EMFILE(fd, REAL(__openat_2)(dirfd, path, flags));
    return wc_opened(fd, dirfd, path, flags);
}

WC_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    int fd;
    RETRY_EMFILE(fd, REAL(__openat_2)(dirfd, path, flags));
    return wc_opened(fd, dirfd, path, flags);
}

/* ---- stdio opens ------------------------------------------------------ */

static int flush_file_cb(struct wc_file *f, void *arg)
{
    (void)arg;
    return wc_file_flush(f, WC_WHY_OTHER);
}

static int trunc_file_cb(struct wc_file *f, void *arg)
{
    (void)arg;
    return wc_file_truncate(f, 0);
}

/* stdio is about to open `path` with `mode`: make the file's bytes on disk
 * what the program wrote. */
static void before_stdio_open(const char *path, const char *mode)
{
    if (wc_state != WC_ST_ON || wc_depth || !path ||
        (wc_reg_empty() && !wc_fd_watched_any()))
        return;
    int e = errno;
    struct stat st;
    if (wc_k_stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        wc_shim_enter();
        int r = wc_reg_apply(st.st_dev, st.st_ino,
                             mode && mode[0] == 'w' ? trunc_file_cb
                                                    : flush_file_cb,
                             NULL);
        /* stdio writes behind the engine's back, and reads behind it: a
         * file this process caches, or watches (a description in its
         * first writes), passes through for good from now on; one
         * opened and written later is kept from the cache while the
         * stream is open (stdio_opened: registry.c invariant (4)). */
        if (r != -ENOENT || wc_fd_watched(st.st_dev, st.st_ino))
            wc_file_for_good(st.st_dev, st.st_ino, WC_WHY_OTHER);
        wc_shim_leave();
    }
    errno = e;
}

/* The descriptor of a stream stdio opened: not ours (statistics); its
 * file is held by a stream until fclose (registry.c invariant (4)). */
static FILE *stdio_opened(FILE *f)
{
    if (f) {
        wc_nc_mark(fileno(f), WC_NC_STDIO);
        wc_stdio_hold(f, 1);
    }
    return f;
}

void wc_stdio_hold(FILE *f, int hold)
{
    if (wc_state != WC_ST_ON || wc_depth || (!hold && !wc_streams_any()))
        return;
    int e = errno;
    struct stat st;
    if (wc_k_fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        if (hold)
            wc_stream_add(st.st_dev, st.st_ino);
        else
            wc_stream_drop(st.st_dev, st.st_ino);
    }
    errno = e;
}

WC_EXPORT FILE *fopen(const char *path, const char *mode)
{
    before_stdio_open(path, mode);
    return stdio_opened(REAL(fopen)(path, mode));
}

WC_EXPORT FILE *fopen64(const char *path, const char *mode)
{
    before_stdio_open(path, mode);
    return stdio_opened(REAL(fopen)(path, mode));
}

/* The stream's descriptor (closed or reused by freopen internally, not
 * through the shim) stops being tracked. */
static void stdio_takes(int fd)
{
    struct wc_desc *d = wc_fd_get(fd);
    if (!d || wc_depth)
        return;
    int e = wc_work_begin();
    if (!wc_desc_lock(fd, d)) {
        wc_desc_through_locked(fd, d, WC_WHY_OTHER);
        wc_blk_unlock(&d->lock);
    }
    wc_fd_forget(fd);
    wc_work_end(e);
}

WC_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
    if (stream) {
        wc_stdio_hold(stream, 0);
        stdio_takes(fileno(stream));
    }
    before_stdio_open(path, mode);
    return stdio_opened(REAL(freopen)(path, mode, stream));
}

WC_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
    return freopen(path, mode, stream);
}

WC_EXPORT FILE *fdopen(int fd, const char *mode)
{
    if (WC_HIDDEN(fd)) {
        errno = EBADF;
        return NULL;
    }
    stdio_takes(fd);
    return stdio_opened(REAL(fdopen)(fd, mode));
}

/* ---- opens libc makes with calls of its own ---------------------------- */

/* mkstemp and its kin, and memfd_create, open with libc's inner calls: the
 * descriptor is tracked as any open's (a dup of it, or a read through it,
 * then sees what another descriptor of the file cached). */
#define MKSTEMP(name, params, args, flags)                                 \
    WC_EXPORT int name params                                              \
    {                                                                      \
        int fd = WC_NEXT(int(*) params, name) args;                        \
        return wc_opened(fd, AT_FDCWD, t,                                  \
                         O_RDWR | O_CREAT | O_EXCL | (flags));             \
    }
MKSTEMP(mkstemp, (char *t), (t), 0)
MKSTEMP(mkstemp64, (char *t), (t), 0)
MKSTEMP(mkostemp, (char *t, int fl), (t, fl), fl)
MKSTEMP(mkostemp64, (char *t, int fl), (t, fl), fl)
MKSTEMP(mkstemps, (char *t, int n), (t, n), 0)
MKSTEMP(mkstemps64, (char *t, int n), (t, n), 0)
MKSTEMP(mkostemps, (char *t, int n, int fl), (t, n, fl), fl)
MKSTEMP(mkostemps64, (char *t, int n, int fl), (t, n, fl), fl)

WC_EXPORT int memfd_create(const char *name, unsigned flags)
{
    int fd = WC_NEXT(int (*)(const char *, unsigned), memfd_create)(name,
                                                                  flags);
    return wc_opened(fd, AT_FDCWD, NULL, O_RDWR);
}

/* ---- the loader's opens (invariant (5)) --------------------------------- */

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && \
    !defined(__SANITIZE_ADDRESS__)
/* Before the loader opens `file`: write back everything. Returns the real
 * function (`dlm`: dlmopen's), which the caller jumps to. */
__attribute__((used)) void *wc_before_dlopen(const char *file, int dlm)
{
    static void *real[2];
    void *f = wc_next_fn(&real[dlm], dlm ? "dlmopen" : "dlopen");
    if (file && wc_state == WC_ST_ON && !wc_depth && !wc_reg_empty()) {
        int e = wc_work_begin();
        wc_consistency_all(WC_WHY_OTHER, WC_ALL_SYNC, 0);
        wc_work_end(e);
    }
    return f;
}

/* dlopen(file, mode) and dlmopen(lmid, file, mode): the arguments kept in
 * their registers (and the stack aligned) across the call above, then a
 * jump to the real function with the program's return address. */
__asm__(".pushsection .text\n"
        ".globl dlopen\n"
        ".type dlopen, @function\n"
        "dlopen:\n"
        "    push %rdi\n"
        "    push %rsi\n"
        "    sub $8, %rsp\n"
        "    xor %esi, %esi\n"
        "    call wc_before_dlopen\n"
        "    add $8, %rsp\n"
        "    pop %rsi\n"
        "    pop %rdi\n"
        "    jmp *%rax\n"
        ".size dlopen, .-dlopen\n"
        ".globl dlmopen\n"
        ".type dlmopen, @function\n"
        "dlmopen:\n"
        "    push %rdi\n"
        "    push %rsi\n"
        "    push %rdx\n"
        "    mov %rsi, %rdi\n"
        "    mov $1, %esi\n"
        "    call wc_before_dlopen\n"
        "    pop %rdx\n"
        "    pop %rsi\n"
        "    pop %rdi\n"
        "    jmp *%rax\n"
        ".size dlmopen, .-dlmopen\n"
        ".popsection\n");
#endif

/* ---- close ------------------------------------------------------------ */

/* The kernel's close of fd, a namer (ownfd.c invariant (7)). One that
 * never returns (its thread cancelled inside: close is a cancellation
 * point) ends its count as the thread ends (shim.h wc_fd_calls_hook). */
static int close_named(int fd)
{
    wc_fd_name_begin();
    int r = wc_k_close(fd);
    int e = errno;
    wc_fd_name_end();
    errno = e;
    return r;
}

WC_HOT
WC_EXPORT int close(int fd)
{
    if (unlikely(wc_fd_is_internal(fd)))
        return wc_ret(-EBADF);
    struct wc_desc *d = wc_fd_get(fd);
    wc_nc_mark(fd, WC_NC_UNKNOWN);
    if (likely(d == NULL)) {
        if (unlikely(wc_state == WC_ST_VFORK))
            wc_vfork_closed(fd);        /* proc.c invariant (7) */
        return close_named(fd);
    }
    if (wc_depth)
        return wc_ret(wc_queue_close(fd));
    wc_cancel_point();                  /* cancel.c invariant (2) */
    int e = wc_work_begin();
    int marked;                 /* cancellation off: cancel.c (3) */
    int r = wc_fd_close_begin(fd, &marked);     /* fdtab.c (1b) */
    int rc = close_named(fd);
    int ce = errno;
    if (marked)
        wc_fd_close_end(fd);
    wc_shim_leave();
    if (rc < 0) {
        errno = ce;
        return -1;
    }
    errno = e;
    return wc_ret(r);
}

/* The first half of a close of [lo, hi] (close_range, closefrom), entered
 * from depth 0: every tracked descriptor there is marked closing and its
 * description released (fdtab.c invariant (1b)). Returns the highest
 * descriptor marked, -1 for none; close_range_end after the kernel's
 * close takes the marks away. */
static int close_range_begin(unsigned lo, unsigned hi)
{
    if (unlikely(wc_state == WC_ST_VFORK))
        wc_vfork_closed_range(lo, hi);  /* proc.c invariant (7) */
    if (wc_state != WC_ST_ON)
        return -1;
    if (hi >= wc_nfds)
        hi = wc_nfds - 1;
    int top = -1;
    for (unsigned fd = lo; fd <= hi && fd < wc_nfds; fd++) {
        struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
        int marked;
        if (wc_desc_is(d)) {
            wc_fd_close_begin((int)fd, &marked);
            if (marked)
                top = (int)fd;
        }
    }
    return top;
}

static void close_range_end(unsigned lo, int top)
{
    for (int fd = (int)lo; fd <= top; fd++)
        if (__atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE) ==
            WC_DESC_CLOSING)
            wc_fd_close_end(fd);
}

/* close_range over [lo, hi] skipping the engine's descriptors. */
static int close_range_skipping_(unsigned lo, unsigned hi, int flags)
{
    unsigned start = lo;
    unsigned top = hi < wc_nfds ? hi : wc_nfds - 1;
    for (unsigned fd = lo; wc_fds && fd <= top && fd < wc_nfds; fd++) {
        if (__atomic_load_n(&wc_fds[fd], __ATOMIC_RELAXED) !=
            WC_DESC_INTERNAL)
            continue;
        if (fd > start && REAL(close_range)(start, fd - 1, flags) < 0)
            return -1;
        start = fd + 1;
        flags &= ~CLOSE_RANGE_UNSHARE;
    }
    if (start > hi || start < lo)      /* also: wrapped past UINT_MAX */
        return 0;
    return REAL(close_range)(start, hi, flags);
}

/* The same, a namer (ownfd.c invariant (7)). */
static int close_range_skipping(unsigned lo, unsigned hi, int flags)
{
    int r;
    WC_NAMES(r, close_range_skipping_(lo, hi, flags));
    return r;
}

WC_EXPORT int close_range(unsigned lo, unsigned hi, int flags)
{
    if ((flags & CLOSE_RANGE_UNSHARE) && lo <= hi &&
        !(flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)))
        wc_proc_before_unshare();       /* proc.c invariant (10) */
    int r;
    if (lo > hi || (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) ||
        wc_state != WC_ST_ON || (flags & CLOSE_RANGE_CLOEXEC)) {
        /* (Ours are close-on-exec already.) */
        WC_NAMES(r, REAL(close_range)(lo, hi, flags));
        return r;
    }
    if (wc_depth)                     /* a handler inside the shim */
        return close_range_skipping(lo, hi, flags);
    int e = wc_work_begin();
    int top = close_range_begin(lo, hi);
    r = close_range_skipping(lo, hi, flags);
    int ce = errno;
    close_range_end(lo, top);
    wc_work_end(r < 0 ? ce : e);
    return r;
}

WC_EXPORT void closefrom(int lo)
{
    if (lo < 0)
        lo = 0;
    if (wc_state != WC_ST_ON) {
        wc_fd_name_begin();             /* ownfd.c invariant (7) */
        REAL(closefrom)(lo);
        wc_fd_name_end();
        return;
    }
    /* Inside the shim (a handler): nothing is marked or released, as
     * close_range does then. */
    int depth = wc_depth, e = 0, top = -1;
    if (!depth) {
        e = wc_work_begin();
        top = close_range_begin((unsigned)lo, ~0u);
    }
    if (close_range_skipping((unsigned)lo, ~0u, 0) < 0) {
        /* Old kernel: close one by one, as glibc does. */
        wc_fd_name_begin();
        for (unsigned fd = (unsigned)lo; fd < wc_nfds; fd++)
            if (!wc_fd_is_internal((int)fd))
                wc_k_close((int)fd);
        wc_fd_name_end();
    }
    if (!depth) {
        close_range_end((unsigned)lo, top);
            wc_work_end(e);
    }
}

/* ---- dup ------------------------------------------------------------- */

/* Before a real dup of `oldfd` that may concern the fd table (oldfd or
 * newfd tracked): a reference to oldfd's description (NULL: untracked),
 * taken before the kernel call so that a racing close cannot free it
 * (fdtab.c). *track is set when the table must follow. */
static struct wc_desc *dup_ref(int oldfd, int newfd, int *track)
{
    *track = 0;
    /* A dup onto a number another thread is closing comes after that
     * close (fdtab.c invariant (1b)): the closer's kernel close would
     * otherwise close the new descriptor behind the table. */
    if (newfd >= 0 && (unsigned)newfd < wc_nfds && wc_fds && !wc_depth &&
        __atomic_load_n(&wc_fds[newfd], __ATOMIC_ACQUIRE) == WC_DESC_CLOSING)
        wc_fd_close_wait(newfd);
    if (wc_state != WC_ST_ON || wc_depth ||
        (!wc_fd_get(oldfd) && (newfd < 0 || !wc_fd_get(newfd))))
        return NULL;
    *track = 1;
    int e = wc_work_begin();
    struct wc_desc *ref = wc_desc_get(oldfd);
    wc_work_end(e);
    return ref;
}

/* After the real call returned newfd (< 0: failed): the table follows;
 * consumes ref. */
static int duped(struct wc_desc *ref, int track, int oldfd, int newfd)
{
    if (unlikely(wc_state == WC_ST_VFORK))
        wc_vfork_duped(oldfd, newfd);   /* proc.c invariant (7) */
    if (newfd >= 0)
        wc_nc_dup(oldfd, newfd);
    if (track) {
        int e = wc_work_begin();
        wc_fd_duped_ref(ref, oldfd, newfd);
        if (newfd >= 0 && newfd <= 2)
            wc_fd_std(newfd, 0);
        wc_debug_fd(newfd, NULL, "duplicated");
        wc_work_end(e);
    }
    return newfd;
}

WC_EXPORT int dup(int fd)
{
    if (unlikely(wc_fd_is_internal(fd)))
        return wc_ret(-EBADF);
    int track;
    struct wc_desc *ref = dup_ref(fd, -1, &track);
    int r;
    RETRY_EMFILE(r, REAL(dup)(fd));
    return duped(ref, track, fd, r);
}

WC_EXPORT int dup2(int oldfd, int newfd)
{
    if (unlikely(wc_fd_is_internal(oldfd)))
        return wc_ret(-EBADF);
    if (unlikely(wc_fd_is_internal(newfd)) && wc_own_fd_evict(newfd) < 0)
        return wc_ret(-EBUSY);
    int r;
    if (oldfd == newfd)
        return REAL(dup2)(oldfd, newfd);
    int track;
    struct wc_desc *ref = dup_ref(oldfd, newfd, &track);
    WC_NAMES(r, REAL(dup2)(oldfd, newfd));      /* ownfd.c invariant (7) */
    return duped(ref, track, oldfd, r);
}

WC_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    if (unlikely(wc_fd_is_internal(oldfd)))
        return wc_ret(-EBADF);
    if (unlikely(wc_fd_is_internal(newfd)) && oldfd != newfd &&
        wc_own_fd_evict(newfd) < 0)
        return wc_ret(-EBUSY);
    int track, r;
    struct wc_desc *ref = dup_ref(oldfd, newfd, &track);
    WC_NAMES(r, REAL(dup3)(oldfd, newfd, flags));
    return duped(ref, track, oldfd, r);
}

/* ---- locks ----------------------------------------------------------- */

/* The engine's part of a lock call's consistency point (CONTRACT.md
 * section 3), with the cache c: before the call every cached file is
 * written back; after taking the lock, clean pages and sizes are
 * forgotten. */
static void lock_point_cache(struct wc_cache *c, int after_taking)
{
    int e = wc_work_begin();
    wc_cache_lock_point(c, after_taking);   /* an error: kept for fsync */
    wc_work_end(e);
}

/* Before a lock call on fd, whose description is d (NULL: untracked). A
 * call with no cache, no shared mapping, nothing watched, costs a few
 * loads: SQLite makes ten lock calls an insert. */
static inline __attribute__((always_inline)) void
lock_before(int fd, struct wc_desc *d)
{
    if (wc_depth)
        return;
    /* A WATCH description's locks are counted, once a call (fdtab.c
     * invariant (6)): read without the lock, as a write that made it
     * CACHED before this call is seen. */
    if (d && __atomic_load_n(&d->mode, __ATOMIC_RELAXED) == WC_D_WATCH)
        __atomic_add_fetch(&d->wlocks, 1, __ATOMIC_RELAXED);
    /* A lock on any file is a consistency point for every file
     * (CONTRACT.md section 3): processes agree about one file through a
     * lock on another (SQLite's WAL behind its -shm file's locks, a log
     * behind a lock file; probe N: lost commits, a corrupt database). */
    if (wc_state != WC_ST_ON)
        return;
    /* A lock on a file mapped shared and writable: a shared-memory
     * protocol the shim cannot follow (meta.c invariant (5b)). */
    if (unlikely(wc_shm_any()) && wc_shm_locked(fd)) {
        wc_proc_off();
        return;
    }
    struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    if (c)
        lock_point_cache(c, 0);
}

/* After a lock call that took a lock (not one that dropped it). */
static inline __attribute__((always_inline)) void lock_after(void)
{
    struct wc_cache *c = __atomic_load_n(&wc_cachep, __ATOMIC_ACQUIRE);
    if (c && !wc_depth && wc_state == WC_ST_ON)
        lock_point_cache(c, 1);
}

/* F_DUPFD when some of our descriptors sit below the limit (ownfd.c,
 * invariant 4): the kernel skipped them, but the program would have got
 * the lowest of them at or above `lo`: move it away and take its number. */
static int dupfd_fallback(int fd, int cmd, int lo)
{
    int r = wc_k_fcntl(fd, cmd, lo);
    if (r <= lo || wc_state != WC_ST_ON)
        return r;
    for (int m = lo < 0 ? 0 : lo; m < r; m++) {
        if (!wc_fd_is_internal(m))
            continue;
        if (wc_own_fd_evict(m) < 0)
            break;
        int e = errno;
        int n = REAL(dup3)(fd, m, cmd == F_DUPFD_CLOEXEC ? O_CLOEXEC : 0);
        if (n < 0)
            break;
        wc_k_close(r);
        errno = e;
        return n;
    }
    return r;
}

/* A record lock set or dropped (F_SETLK, F_SETLKW, F_OFD_SETLK,
 * F_OFD_SETLKW) on fd, whose description is d (NULL: untracked): a
 * consistency point (lock_before, lock_after). */
static inline __attribute__((always_inline)) int
lock_call(int fd, struct wc_desc *d, int cmd, void *arg)
{
    const struct flock *fl = arg;
    lock_before(fd, d);
    int r = wc_k_fcntl(fd, cmd, (long)arg);
    if (r == 0 && fl && fl->l_type != F_UNLCK)
        lock_after();
    return r;
}

static int is_lock_cmd(int cmd)
{
    return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_SETLK ||
           cmd == F_OFD_SETLKW;
}

static int fcntl_common(int fd, int cmd, void *arg)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    if (unlikely(wc_own_fd_fallback) &&
        (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
        int track;
        struct wc_desc *ref = dup_ref(fd, -1, &track);
        int r;
        RETRY_EMFILE(r, dupfd_fallback(fd, cmd, (int)(long)arg));
        return duped(ref, track, fd, r);
    }
    struct wc_desc *d = wc_fd_get(fd);
    if (likely(d == NULL)) {
        if (unlikely(wc_state == WC_ST_VFORK) &&
            (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
            return duped(NULL, 0, fd, wc_k_fcntl(fd, cmd, (long)arg));
        /* (A vfork child's F_SETFD on the parent's description: the
         * wc_fd_get above recorded it, proc.c invariant (7).) */
        if (unlikely(is_lock_cmd(cmd)))
            return lock_call(fd, d, cmd, arg);
        if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
            int n;              /* a maker: ownfd.c invariant (7) */
            RETRY_EMFILE(n, wc_k_fcntl(fd, cmd, (long)arg));
            return n;
        }
        return wc_k_fcntl(fd, cmd, (long)arg);
    }
    int r;
    switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int track;
        struct wc_desc *ref = dup_ref(fd, -1, &track);
        int r;
        RETRY_EMFILE(r, wc_k_fcntl(fd, cmd, (long)arg));
        return duped(ref, track, fd, r);
    }
    case F_SETFL:
        /* O_DIRECT on a cached description: write back first and take
         * the engine off that description (it may share it). The file is
         * used under d->lock (fdtab.c: never outside it unreferenced). */
        if (((int)(long)arg & O_DIRECT) && !wc_depth) {
            int e = wc_work_begin();
            if (!wc_desc_lock(fd, d)) {
                if (d->file)
                    wc_file_unshare(d->file, fd);
                wc_blk_unlock(&d->lock);
            }
            wc_work_end(e);
        }
        r = wc_k_fcntl(fd, cmd, (long)arg);
        if (r == 0 && !wc_depth) {
            int fl = (int)(long)arg;
            int e = wc_work_begin();
            dev_t dev = 0;
            ino_t ino = 0;
            if (!wc_desc_lock(fd, d)) {
                d->append = !!(fl & O_APPEND);
                if ((fl & O_DIRECT) ||
                    (d->append && d->mode == WC_D_RESERVE))  /* stdio.c */
                    wc_desc_through_locked(fd, d, WC_WHY_OTHER);
                if (fl & O_DIRECT) {
                    dev = d->dev;
                    ino = d->ino;
                }
                wc_blk_unlock(&d->lock);
            }
            /* O_DIRECT on a description still watched (its first writes)
             * too: the file passes through for good, as an O_DIRECT open
             * makes it (fdtab.c), or its later writes would be cached and
             * answered where the kernel refuses them (EINVAL). */
            struct stat st;     /* identity not asked yet: fdtab.c (7) */
            if (!ino && (fl & O_DIRECT) && wc_k_fstat(fd, &st) == 0 &&
                S_ISREG(st.st_mode)) {
                dev = st.st_dev;
                ino = st.st_ino;
            }
            if (ino)
                wc_file_for_good(dev, ino, WC_WHY_OTHER);
            wc_work_end(e);
        }
        return r;
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
        return lock_call(fd, d, cmd, arg);
    default:
        return wc_k_fcntl(fd, cmd, (long)arg);
    }
}

WC_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) WC_ALIAS(fcntl);

WC_EXPORT int flock(int fd, int op)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    lock_before(fd, wc_depth ? NULL : wc_fd_get(fd));
    int r = REAL(flock)(fd, op);
    if (r == 0 && !(op & LOCK_UN))
        lock_after();
    return r;
}

WC_EXPORT int lockf(int fd, int cmd, off_t len)
{
    if (WC_HIDDEN(fd))
        return wc_ret(-EBADF);
    if (cmd == F_TEST)
        return REAL(lockf)(fd, cmd, len);
    lock_before(fd, wc_depth ? NULL : wc_fd_get(fd));
    int r = REAL(lockf)(fd, cmd, len);
    if (r == 0 && cmd != F_ULOCK)
        lock_after();
    return r;
}

WC_EXPORT int lockf64(int fd, int cmd, off64_t len)
{
    return lockf(fd, cmd, len);
}
