/*
 * shim.h - the interposition layer's internal interface (shim/ only).
 *
 * Layers: the exported wrappers (io.c, open.c, meta.c, proc.c, signals.c,
 * syscall.c) call the fd table (fdtab.c, registry.c) and the cache engine
 * (include/wcache/cache.h); every real libc function is called through
 * wc_sys (real.c fills it), but for the pass-through system calls that
 * kcall.h makes itself where libc's function would make just that call.
 * cache/ never calls back into shim/.
 *
 * Lock order (the only place it is written down; each lock's comment says
 * what it protects):
 *
 *     desc->lock (struct wc_desc)  ->  g_reg_lock (registry.c)  ->
 *     the engine's locks (inside wc_*)  ->  g_limit_lock (ownfd.c: the
 *     engine places its descriptors under its own locks)
 *
 *     desc->lock  ->  g_cells_lock (shared.c: the cells' regions)  ->
 *     g_limit_lock (a region's memfd is placed as the engine's are)
 *
 *     g_cache_lock (fdtab.c) is taken with no other shim lock held, and
 *     holds only the engine's (wc_cache_open) and g_sig_lock.
 *     g_slab_lock (fdtab.c) and g_sig_lock (signals.c, taken with every
 *     signal blocked) are leaves.
 *
 *   - the hot path takes only desc->lock, then the engine;
 *   - g_reg_lock is held across engine calls only on slow paths (stat
 *     sizes, and the flush before fopen, truncate(path), an uncached open
 *     or a timestamp change of a cached file); never while waiting for
 *     anything but the engine;
 *   - no desc->lock is taken while g_reg_lock is held, and no two
 *     desc->locks are ever held together;
 *   - nothing is locked while this thread is nested (depth > 0, i.e. a
 *     signal handler interrupted shim code on this thread): nested calls
 *     queue their writes instead (wc_shim_enter/wc_shim_leave below, queue.c).
 */
#ifndef WCACHE_SHIM_H
#define WCACHE_SHIM_H

#undef _FORTIFY_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "wcache/cache.h"
#include "wcache/clock.h"
#include "wcache/blk.h"
#include "wcache/lock.h"
#include "wcache/sys.h"

/* The one way a symbol is exported from libwcache.so (-fvisibility=hidden
 * hides everything else). */
#define WC_EXPORT __attribute__((visibility("default")))
/* An exported second name for an interposed function (the LFS "64"
 * twins, identical on x86-64). */
#define WC_ALIAS(target) __attribute__((visibility("default"), alias(#target)))

#define WC_TLS __thread __attribute__((tls_model("initial-exec")))

/* The shim's per-thread words, in one object: the write path reads and
 * writes five of them at every call, and separate initial-exec variables
 * each took their own offset from the GOT (two instructions an access).
 * Each keeps the name it had as a variable (the macros below).
 *   depth        wc_depth: depth of shim code on this thread (0: not
 *                inside; fdtab.c)
 *   qpending     wc_qpending: records of this thread's queue of nested
 *                writes not yet run (queue.c)
 *   cancel_held  wc_cancel_held: 1 + the cancel state to give back when
 *                the shim leaves; 0: not held (cancel.c invariant (3))
 *   tq           wc_tq: that queue (NULL until first needed)
 *   inflight     wc_inflight: a cached write at a description's offset,
 *                in flight on this thread (io.c); in a child writing
 *                back after a handler's _exit, the offset is moved past
 *                it if the engine had finished it (wc_inflight_fixup) */
struct wc_inflight {
    struct wc_desc *d;
    off_t start;
};
struct wc_shim_thr {
    int depth;
    int qpending;
    int cancel_held;
    int fd_makes, fd_names;     /* ownfd.c (7): this thread's calls */
    int fd_hooked;              /* its end gives them back (ownfd.c) */
    int fd_window;              /* its windows open (nested) */
    int fd_vforked;             /* the outermost one opened in a vfork
                                   child (or beside one): not shared */
    int fd_forking;             /* its fork is a maker now (proc.c) */
    int fd_masked;              /* it blocked signals for them ... */
    uint64_t fd_mask;           /* ... and its mask before */
    int fd_cancel;              /* 1 + the cancel state it set aside */
    struct wc_queue *tq;
    struct wc_inflight inflight;
};
extern WC_TLS struct wc_shim_thr wc_thr;    /* defined in fdtab.c */
#define wc_depth (wc_thr.depth)
#define wc_qpending (wc_thr.qpending)
#define wc_cancel_held (wc_thr.cancel_held)
#define wc_tq (wc_thr.tq)
#define wc_inflight (wc_thr.inflight)

/* Every process that loads the library pays a page fault for each page it
 * touches (10 us and more here, for a /bin/true of 2.4 ms), so what a
 * process that only starts and exits runs and touches is kept together:
 *   WC_LARGE  a large zeroed array, placed after the small state (.lbss,
 *             which the linker puts after .bss), so that the variables
 *             start-up touches share one or two pages;
 *   WC_ONCE   a function run once or rarely (start-up, exit, set-up),
 *             placed with the others at the start of the code (.text.
 *             unlikely: `cold`, which also lays its callers out for the
 *             common case; WC_HOT's code of short processes' paths
 *             follows it: wcache/hidden.h). */
#define WC_LARGE __attribute__((section(".lbss")))
#define WC_ONCE __attribute__((cold))
/*   WC_BOOT   a variable every start writes (the constructor's), or one
 *             every fork child reads first or resets: kept in .data, whose
 *             one page the dynamic loader has written already (it clears
 *             the end of it), where in .bss each page first read, then
 *             written costs two faults (and a page the parent never
 *             touched, one in each child); a child's resets share that
 *             page, where each page of .bss it wrote was a copy-on-write
 *             fault of its own (7 us here). Not for what threads write
 *             often: the page's first lines are read by every call. */
#define WC_BOOT __attribute__((section(".data.wc_boot")))
/* A fork child's reset of what it inherited, stored only where it differs:
 * a page the process never changed stays shared with the parent (a store
 * would be a copy-on-write fault). */
#define WC_RESET(x, v)                                                     \
    do {                                                                   \
        if ((x) != (v))                                                    \
            (x) = (v);                                                     \
    } while (0)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- configuration (env.c) ------------------------------------------- */

#include "config.h"

extern WC_LOCAL struct wc_shim_config wc_cfg;

/* Parse the environment into wc_cfg. Returns 1 when the shim should run,
 * 0 for pass-through (WCACHE_DISABLE=1, or a bad value, already reported
 * in one line on stderr). */
int wc_env_load(void);

/* Does `path` pass WCACHE_INCLUDE/WCACHE_EXCLUDE? (1: cache it) */
int wc_env_path_ok(int dirfd, const char *path);

/* Log one line to stderr if `level` <= WCACHE_LOG. Async-signal-safe as
 * far as vsnprintf is. */
void wc_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the real functions (real.c) ------------------------------------- */

/* Fill wc_sys (idempotent, thread-safe; re-entrant calls during dlsym see
 * raw-syscall fallbacks): kcall.h's entries resolved, every other one at
 * its first call (real.c (1b)). Returns 1 when the first were found. */
int wc_real_init(void);
/* Resolve every entry of wc_sys now (before the cache is made). */
void wc_real_all(void);
/* Resolve the entries a child calls first (real.c (1c)); before a fork. */
void wc_real_for_children(void);
/* The same for the stdio wrappers (stdiofence.c): before a fork. */
void wc_stdio_for_children(void);

/* Mark (on) or unmark `fd` as one of the engine's own (fdtab.c). */
void wc_fd_mark_internal(int fd, int on);
/* Every descriptor of the engine's own is in [*lo, *hi) (fdtab.c). */
void wc_own_fd_range(unsigned *lo, unsigned *hi);

/* ---- the shim's own descriptors (ownfd.c) ----------------------------- */

/* The engine's descriptor placement (wc_config.fds): above the program's
 * RLIMIT_NOFILE, marked internal. */
extern WC_LOCAL const struct wc_fd_ops wc_own_fd_ops;
/* In a child after fork (alone): the placement lock is free, and a limit
 * raised by another thread of the parent is the program's again. */
void wc_own_fd_after_fork(void);
/* Set once a descriptor of ours had to go below the program's limit. */
extern WC_LOCAL int wc_own_fd_fallback;
/* The program needs number `fd`: if it is one of ours, move it out of the
 * way, or give its file up when there is no room (fallback only). Returns
 * 0 (fd is free of ours) or -errno (it is still ours). */
int wc_own_fd_evict(int fd);
/* An interposed call of the program failed with EMFILE: if some of our
 * descriptors sit below its limit (fallback), give up the file of the
 * lowest one and return 1 (retry the call); else 0. */
int wc_own_fd_yield(void);
/* r = call, made again while it fails with EMFILE and wc_own_fd_yield
 * makes room (the kernel fails a call that makes a descriptor for EMFILE
 * before anything else), with the errno the program had: a call that
 * then succeeds leaves it as it was. */
#define RETRY_EMFILE(r, call)                                              \
    do {                                                                   \
        int retry_errno_ = errno;                                          \
        wc_fd_make_begin();                                                \
        while (((r) = (call)) < 0 && unlikely(errno == EMFILE) &&          \
               wc_own_fd_yield())                                          \
            errno = retry_errno_;                                          \
        wc_fd_make_end();                                                  \
    } while (0)
/* The shim's state (fdtab.c; process-wide state below). */
enum wc_state {
    WC_ST_INIT = 0,   /* constructor not finished: pass through */
    WC_ST_ON,         /* caching */
    WC_ST_OFF,        /* pass-through for good (disabled, bad env, exit) */
    WC_ST_VFORK,      /* a vfork child runs in this memory: pass through
                         (proc.c invariant (7)); ON again when it leaves */
};
extern WC_LOCAL volatile int wc_state;

/* ownfd.c invariant (7): the shim's short-lived descriptors in the
 * program's table (windows) and the program's calls that make a
 * descriptor or copy the table (makers: RETRY_EMFILE, fork), that name a
 * number (namers: close, close_range, closefrom, dup2, dup3) exclude
 * each other, so that each of the program's calls meets only its own
 * numbers, as without the shim. Each side raises its own word, then
 * looks at the other's (both atomic): one of the two always sees the
 * other. A maker waits out a window; a namer steps back from one; a
 * window waits for the namers inside and steps back from the makers
 * inside (one may block for ever: accept, the open of a FIFO).
 *   wc_fd_makers: the makers inside (low 16 bits), and those ended
 *   (above), one word: the end of a call moves both with one operation;
 *   wc_fd_namers: the namers inside; wc_fd_window: 0, or the thread whose
 *   window is open (its wc_thr's address). wc_thr.fd_makes and .fd_names
 *   count the calling thread's own, raised first and lowered last: a
 *   window opened by a handler that interrupted one of them waits for the
 *   others' only. A vfork child (WC_ST_VFORK: the program's one thread
 *   is in it) counts nothing: its table is a copy, which no window of
 *   the parent's meets, and a count it raised and was killed before
 *   lowering would stay in the parent's memory for good (a window would
 *   wait for ever on a namer's). */
#define WC_FD_MADE (1u << 16)
extern WC_LOCAL unsigned wc_fd_makers;
extern WC_LOCAL unsigned wc_fd_namers;
extern WC_LOCAL uintptr_t wc_fd_window;
/* A thread that ends inside a maker or a namer (cancelled in open,
 * accept or close, all cancellation points; pthread_exit from a handler)
 * ends its counts as it goes: once it has made one such call, its end
 * runs ownfd.c's calls_gone (a thread-specific key's destructor). */
void wc_fd_calls_hook(void);
/* The start of a maker's or a namer's count: the thread's own first
 * (*own: wc_thr.fd_makes or .fd_names), then the shared word by the
 * caller; 0 in a vfork child, which counts nothing. */
static inline int wc_fd_count_own(int *own)
{
    if (unlikely(wc_state == WC_ST_VFORK))
        return 0;
    if (unlikely(!wc_thr.fd_hooked))
        wc_fd_calls_hook();
    (*own)++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return 1;
}
static inline void wc_fd_make_begin(void)
{
    if (!wc_fd_count_own(&wc_thr.fd_makes))
        return;
    __atomic_add_fetch(&wc_fd_makers, 1, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; unlikely(__atomic_load_n(&wc_fd_window,
                                                  __ATOMIC_SEQ_CST)); i++)
        wc_backoff(i);
}
static inline void wc_fd_make_end(void)
{
    if (unlikely(wc_state == WC_ST_VFORK))
        return;
    __atomic_add_fetch(&wc_fd_makers, WC_FD_MADE - 1, __ATOMIC_RELEASE);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    wc_thr.fd_makes--;
}
static inline void wc_fd_name_begin(void)
{
    if (!wc_fd_count_own(&wc_thr.fd_names))
        return;
    for (unsigned i = 0;;) {
        __atomic_add_fetch(&wc_fd_namers, 1, __ATOMIC_SEQ_CST);
        if (likely(!__atomic_load_n(&wc_fd_window, __ATOMIC_SEQ_CST)))
            return;
        __atomic_sub_fetch(&wc_fd_namers, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&wc_fd_window, __ATOMIC_ACQUIRE))
            wc_backoff(i++);
    }
}
static inline void wc_fd_name_end(void)
{
    if (unlikely(wc_state == WC_ST_VFORK))
        return;
    __atomic_sub_fetch(&wc_fd_namers, 1, __ATOMIC_RELEASE);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    wc_thr.fd_names--;
}
/* The key behind wc_fd_calls_hook, made once by the constructor. */
void wc_fd_calls_init(void);
/* End this thread's counts, *makes and *names of them (its calls are out
 * of the kernel: the thread ends, or a program's handler runs and may
 * leave them by a jump); wc_fd_calls_again starts them again. */
void wc_fd_calls_end(int *makes, int *names);
void wc_fd_calls_again(int makes, int names);
/* r = call, a namer (above). */
#define WC_NAMES(r, call)                                                  \
    do {                                                                   \
        wc_fd_name_begin();                                                \
        (r) = (call);                                                      \
        int name_errno_ = errno;                                           \
        wc_fd_name_end();                                                  \
        errno = name_errno_;                                               \
    } while (0)
/* Open a window (ownfd.c invariant (7)): 1 once no program thread is
 * inside a namer, nor inside a maker (unless one seems blocked: no maker
 * entered or ended for 20 us), signals blocked on a program thread;
 * windows nest on a thread. With `may_put_off` (the flusher's looks,
 * which come again at the next tick), 0 at once while a maker is inside,
 * unless none ended over WC_OWN_OPEN_WAITS looks in a row. After 1,
 * wc_fd_window_close when the descriptors are closed or placed. (Namers
 * inside are waited for 100 ms at most while none ends.) */
int wc_fd_window_open(int may_put_off);
void wc_fd_window_close(void);
/* An open of (AT_FDCWD, path) in a window, placed as the engine's
 * descriptors are (wc_own_fd_ops.open): the descriptor or -errno; errno
 * kept. */
int wc_own_fd_open(const char *path, int flags, mode_t mode);
/* In a child after fork, alone: the counts hold this thread's only. */
void wc_fd_window_after_fork(void);
/* Is this thread the flusher? */
int wc_on_flusher(void);
/* fn(arg) in a child sharing this memory with a descriptor table of its
 * own (flusher.c invariant (8)), every signal blocked, on the stack
 * below stack_top (the caller's alone while it runs); its result (fn's
 * are >= 0), or -1 when no child could be made. */
int wc_apart_on(char *stack_top, int (*fn)(void *), void *arg);
/* A look at files, fn(arg) (>= 0): apart on the flusher (flusher.c
 * invariant (8)), else (another thread, or no child could be made) in a
 * window (ownfd.c invariant (7)); -1 when the window was put off
 * (`may_put_off`, the flusher's looks that come again at its next tick). */
int wc_look(int (*fn)(void *), void *arg, int may_put_off);
/* clone(flags, stack) running fn(arg) on `stack`, with no errno written
 * (guard.c); the child's pid or -errno. */
long wc_guard_clone(long flags, void *stack_top, int (*fn)(void *),
                    void *arg);
/* prlimit of RLIMIT_NOFILE as the program must see it, and its changes
 * (serialised with the placement; ours move above a raised limit). Same
 * returns as prlimit(2). getrlimit is interposed in ownfd.c. */
int wc_nofile_prlimit(pid_t pid, const struct rlimit *nl, struct rlimit *ol);

/* A real function, setting the table up first if the constructor has not
 * run yet. Never NULL (a slot not resolved yet holds its trampoline). */
#define REAL(name)                                                         \
    (likely(wc_sys.name != NULL) ? wc_sys.name                             \
                                 : (wc_real_init(), wc_sys.name))

/* ---- process-wide state (fdtab.c) ------------------------------------ */


/* The cache, created by the write that first caches a file, or by an
 * open when WCACHE_MIN_WRITES=0 (fdtab.c invariant (6)); again in a child
 * after fork. NULL before. */
extern WC_LOCAL struct wc_cache *volatile wc_cachep;

/* Get (creating on first use) the cache; NULL if it cannot be created (the
 * reason was logged; the shim then stops caching new files). */
struct wc_cache *wc_cache_get(void);
/* 1 once wc_cache_get could not create it (for good). */
int wc_cache_failed(void);
/* Does the kernel write fd's file synchronously: a sync mount, chattr +S
 * (fdtab.c invariant (3b))? */
int wc_fd_sync_writes(int fd);

/* 1 while the program has one thread (the flusher is not the program's):
 * no other thread can lock, change or close a description, so the hot
 * path takes no desc->lock (io.c); a signal handler that interrupts it
 * never locks either (wc_depth, queue.c). 0 for good once a thread is
 * made: pthread_create (altstack.c), glibc's clone() or a raw clone or
 * clone3 that makes a thread (proc.c invariant (9)), or glibc says so at
 * start-up; 1 again in a fork child, which has one thread
 * (wc_after_fork_child). A thread made by the program with an inline
 * system call is not seen; glibc's own single-thread fast paths (stdio,
 * malloc) make the same assumption. */
extern WC_LOCAL int wc_solo;
static inline void wc_solo_end(void)
{
    __atomic_store_n(&wc_solo, 0, __ATOMIC_SEQ_CST);
}

/* ---- open file descriptions and the fd table (fdtab.c) --------------- */

enum wc_mode {
    WC_D_FREE = 0,    /* on the free list */
    WC_D_WATCH,       /* regular file not in the cache: pass through,
                         but attach if the file becomes cached; a
                         writable one is adopted after WCACHE_MIN_WRITES
                         writes (`writes`, fdtab.c invariant (6)) */
    WC_D_CACHED,      /* served by the cache: `pos` is the offset */
    WC_D_THROUGH,     /* shared with another process or with stdio/mmap:
                         the kernel's offset rules; each call flushes the
                         file first (program order with other descriptions
                         of the file) and invalidates after a change */
    WC_D_RESERVE,     /* cached, with the kernel's offset kept equal to the
                         program's: each write reserves its range with
                         lseek(fd, n, SEEK_CUR) (the kernel's f_pos lock
                         makes it atomic), so glibc's own writes on the
                         descriptor (stdio, perror...) land after the
                         cached bytes. Rules in stdio.c. */
};

/*
 * One open file description (the kernel's struct file), shared by every
 * descriptor dup'd from it. Invariants:
 *   (1) refs == fd-table slots pointing here + references held by
 *       lookups (wc_desc_get, taken only from a non-zero count); the object
 *       returns to the free list when it drops to 0 (never unmapped, so a
 *       racing lock-free reader only ever sees a valid object; it re-checks
 *       its slot under `lock`, which is never re-initialised). States and
 *       transitions: the diagram at the top of fdtab.c.
 *   (2) mode CACHED: `file` != NULL, `pos` is the offset; the kernel's
 *       offset equals `pos` whenever `kstale` is 0.
 *   (3) mode THROUGH: the kernel's offset is the offset; `file` is held
 *       only to flush/invalidate around calls.
 *   (4) `file` holds exactly one engine reference (wc_file_get).
 * Each takes 128 bytes of its own (two cache lines, the pair the hardware
 * fetches together): two threads writing through two descriptions never
 * share a line. Packed at 80 bytes, two threads' short writes (io.c,
 * fast_write) took 0.133 s for 2 x 1M 64-byte writes instead of 0.089.
 */
struct wc_desc {
    struct wc_blk lock;       /* protects pos, kstale, mode, flags, file
                                 (the kernel's f_pos_lock); biased to the
                                 thread that writes through it
                                 (wcache/blk.h, io.c fast_write) */
    int refs;                 /* slots + lookup references (atomic) */
    int mode;                 /* enum wc_mode */
    int pending;              /* its file is coming into the cache: the
                                 program's calls on it wait until the
                                 scan that set it has attached every
                                 WATCH description of the file (fdtab.c
                                 attach_watchers; set and cleared under
                                 `lock`, read without it by waiters) */
    int accmode;              /* O_RDONLY / O_WRONLY / O_RDWR */
    int append;               /* O_APPEND is set (F_SETFL may change it) */
    int kstale;               /* kernel offset may differ from pos */
    int shared;               /* also open in another process (fork,
                                 inherited): its offset moves behind us,
                                 so it caches only as shared.c says */
    int stdio;                /* WATCH: shared with stdio (installed on 0
                                 or 2, or on 1 unguarded: stdio.c (2)):
                                 adopted as shared */
    int writes;               /* WATCH: writes it passed to the kernel
                                 (read without the lock as a hint);
                                 < 0: never adopted (WC_WRITES_PSEUDO,
                                 WC_WRITES_NOT_REGULAR) */
    int backoff;              /* times its file left the cache for gaining
                                 nothing (fdtab.c invariant (8)) */
    int rent;                 /* WATCH: refused for want of a cache worth
                                 making (fdtab.c (6b)): its statistics */
    int wslow;                /* WATCH: its last counted writes in a row
                                 (fdtab.c (6)) that took a server's round
                                 trip */
    unsigned long fstype;     /* its file system's statfs f_type, asked
                                 once (fdtab.c fs_type: a round trip on a
                                 network file system), 0 not yet */
    unsigned long fsflags;    /* and its f_flags, asked with it */
    int wlocks;               /* WATCH: lock calls on it since `writes`
                                 was last 0 (atomic; fdtab.c (6)) */
    int wpw, wnear;           /* WATCH: pwrites since then, and those near
                                 the one before (fdtab.c (6)) */
    unsigned wlo, whi;        /* WATCH: the last pwrite's first and last
                                 pages (modulo 2^32: a hint) */
    struct wc_cell *cell;     /* its holders, counted, and its offset, in
                                 memory shared with them (shared.c
                                 invariants (5), (6)); NULL: not counted;
                                 set under `lock`, read without it */
    unsigned hgen;            /* the child creation that last counted it */
    int guard;                /* on descriptor 1, with glibc's stdout not
                                 writing there yet: cached as a private
                                 description until a stdio call fences
                                 it (stdio.c invariant (2)) */
    struct wc_file *file;     /* engine file (CACHED, THROUGH) */
    off_t pos;                /* logical offset (CACHED) */
    dev_t dev;                /* the file's identity (all modes) */
    ino_t ino;
    struct wc_desc *next_free;/* free list link (mode FREE) */
} __attribute__((aligned(128)));

/* Marks an fd-table slot that holds one of the engine's own descriptors. */
#define WC_DESC_INTERNAL ((struct wc_desc *)1)
/* Marks the slot of a descriptor being closed (close, close_range,
 * closefrom): its description is out of the table and written back, the
 * kernel's descriptor not closed yet (fdtab.c invariant (1b)). */
#define WC_DESC_CLOSING ((struct wc_desc *)2)
/* Does a slot's value name a description (not NULL or one of the marks)? */
static inline int wc_desc_is(const struct wc_desc *d)
{
    return (uintptr_t)d > (uintptr_t)WC_DESC_CLOSING;
}

/* The fd table: slot[fd] -> description, lock-free readers. */
extern WC_LOCAL struct wc_desc **wc_fds;
extern WC_LOCAL unsigned wc_nfds;

/* Is `fd` one of the engine's own descriptors? (closing or replacing it
 * would corrupt write-back; the wrappers hide it from the program). Inline:
 * every fcntl, close and dup asks it. */
static inline int wc_fd_is_internal(int fd)
{
    return (unsigned)fd < wc_nfds && wc_fds &&
           __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE) == WC_DESC_INTERNAL;
}

/* The engine's re-entry mark, wc_in_engine (wcache/thr.h): this thread
 * is inside it. */

/* A call of the program names one of the engine's own descriptors, a
 * number it never opened (ownfd.c invariant (5)): the wrapper answers as
 * the kernel answers for a descriptor that is not open, EBADF. A call on
 * one while this thread is inside the engine is the engine's own, come
 * back through a library preloaded after the shim that calls an exported
 * function (eatmydata's fsync asks fcntl whether its descriptor is open):
 * it goes on as any call does. */
#define WC_HIDDEN(fd) unlikely(wc_fd_is_internal(fd) && !wc_in_engine)
/* The same for a directory descriptor, which the kernel looks at only for
 * a relative path (or none: the descriptor's own file). */
static inline int wc_hidden_at(int dirfd, const char *path)
{
    return WC_HIDDEN(dirfd) && (!path || path[0] != '/');
}
#define WC_HIDDEN_AT(dirfd, path) unlikely(wc_hidden_at(dirfd, path))

/* Lock-free lookup: the description of `fd`, or NULL (pass-through, the
 * shim off, or an internal descriptor). */
extern WC_LOCAL int wc_cells_late;
/* Settle the cell (shared.c invariant (6)) of the description at fd in
 * the table, whatever wc_state is; in a vfork child only at a number it
 * did not touch (one that still names the parent's description). */
void wc_cell_settle_fd(int fd);
/* A call on a descriptor that another thread is closing waits until the
 * kernel's close is done, then looks again (fdtab.c invariant (1b)). */
struct wc_desc *wc_fd_closing_wait(int fd);
/* A vfork child made the parent's description at fd inheritable by its
 * exec (a duplicate without O_CLOEXEC, found by wc_vfork_duped) or used
 * it (any call that looks fd up, wc_fd_get): the parent shares it when it
 * runs again (proc.c invariant (7)). */
void wc_vfork_inherits(int fd);
static inline struct wc_desc *wc_fd_get(int fd)
{
    if (unlikely(wc_state != WC_ST_ON) || (unsigned)fd >= wc_nfds) {
        /* shared.c invariant (6): a call after the exit work, or from a
         * vfork child (proc.c invariant (7)), uses the kernel's offset. */
        if (unlikely(wc_state == WC_ST_VFORK)) {
            /* The child uses a description of the parent's (a write
             * after a failed exec moves the kernel's offset): the parent
             * takes it as shared when it runs again. */
            wc_cell_settle_fd(fd);
            wc_vfork_inherits(fd);
        } else if (unlikely(__atomic_load_n(&wc_cells_late,
                                            __ATOMIC_RELAXED))) {
            wc_cell_settle_fd(fd);
        }
        return NULL;
    }
    struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
    if (unlikely((uintptr_t)d - 1 < (uintptr_t)WC_DESC_CLOSING))
        return d == WC_DESC_CLOSING ? wc_fd_closing_wait(fd) : NULL;
    return d;
}

/* The table's description at fd whatever wc_state is: for code that has
 * checked the state itself (a vfork child reading its parent's table:
 * proc.c invariant (7)). */
__attribute__((always_inline))
static inline struct wc_desc *wc_fd_peek(int fd)
{
    if ((unsigned)fd >= wc_nfds || !wc_fds)
        return NULL;
    struct wc_desc *d = __atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE);
    return wc_desc_is(d) ? d : NULL;
}

/* The sanitizer build (Makefile, build/tsan) widens the windows between a
 * lock-free load of a slot and the use of what it pointed to, so that the
 * thread tests meet stale pointers often. Nothing in other builds. */
#ifdef WC_TEST_WIDEN_RACES
#include <sched.h>
#define WC_RACE_WINDOW() sched_yield()
#else
#define WC_RACE_WINDOW() ((void)0)
#endif

/* Lock `d` for descriptor `fd`; returns 0 if the slot still points to d
 * (caller then owns d->lock, and d stays LIVE until it unlocks), -1 if it
 * changed (nothing held: retry). d may be a stale pointer: its lock is
 * never re-initialised (fdtab.c, the diagram). */
static inline int wc_desc_lock(int fd, struct wc_desc *d)
{
    WC_RACE_WINDOW();
    wc_blk_lock(&d->lock);
    if (likely(__atomic_load_n(&wc_fds[fd], __ATOMIC_ACQUIRE) == d))
        return 0;
    wc_blk_unlock(&d->lock);
    return -1;
}

/* wc_desc_lock for a call on its own descriptor, from the program's call
 * (not a signal handler's, not a scan holding other locks): when the slot
 * holds the closing mark, -1 comes once the kernel's close is done
 * (fdtab.c invariant (1b)), so that the caller's fallback to the kernel
 * comes after it, as a call made after the close. */
void wc_fd_close_wait(int fd);
/* After a call on WATCH description d that may have moved the kernel's
 * offset without d's lock (read, readv, preadv2 at -1, lseek: the
 * kernel's calls on a description not cached): if d was attached
 * meanwhile, the offset the attach read (after setting the mode: fdtab.c
 * attach_one, wc_desc_adopt_locked) may come before this call's move,
 * and is taken again (probe Y: a read returned the previous bytes
 * again, a write after an lseek landed at the old offset). One load. */
void wc_watch_moved_slow(int fd, struct wc_desc *d);
static inline void wc_watch_moved(int fd, struct wc_desc *d)
{
    if (unlikely(__atomic_load_n(&d->mode, __ATOMIC_SEQ_CST) != WC_D_WATCH))
        wc_watch_moved_slow(fd, d);
}
/* ...and when d is `pending`, the call waits, unlocked, until it is not
 * (fdtab.c attach_watchers). */
void wc_desc_pending_wait(int fd, struct wc_desc *d);
static inline int wc_desc_lock_entry(int fd, struct wc_desc *d)
{
    for (;;) {
        if (unlikely(wc_desc_lock(fd, d))) {
            wc_fd_close_wait(fd);
            return -1;
        }
        if (likely(!d->pending))
            return 0;
        wc_blk_unlock(&d->lock);
        wc_desc_pending_wait(fd, d);
    }
}

/* Allocate the table (constructor). Returns 0 or -errno. */
int wc_fdtab_init(void);
/* The descriptor numbers the table tracks (wc_nfds once made): the hard
 * RLIMIT_NOFILE, between 65536 and 1 << 20. */
unsigned wc_fdtab_slots(void);
/* wc_nfds bytes, one per descriptor, zero at start, mapped with the
 * table: stats.c's reasons (wc_nc_init). */
extern WC_LOCAL unsigned char *wc_fd_bytes;

/* A newly opened descriptor `fd` (from open/openat/creat..., already
 * opened for real): decide whether it is cached, per CONTRACT section 1,
 * and install it. `path` (may be NULL) and `dirfd` are for the include/
 * exclude patterns. Never fails: when in doubt the fd passes through. */
void wc_fd_opened(int fd, int dirfd, const char *path, int flags);
/* The same when its fstat is known (`st`). */
void wc_fd_opened_known(int fd, int dirfd, const char *path, int flags,
                        const struct stat *st);
/* A descriptor open since start-up, at its first write (shared.c); `own`:
 * held by this process alone (WC_NC_START_OWN: proc.c invariant (6));
 * `c`: handed over by exec with its offset's cell (shared.c (6)), at
 * start-up; 0 then if it cannot be (not a writable regular file, not
 * O_APPEND, WCACHE_INHERITED=0): the caller settles the cell. */
int wc_fd_adopt(int fd, int own, struct wc_cell *c);
/* WCACHE_INHERITED=0: fd, open since start-up, is written through for the
 * first time; it stays uncached, and a writable regular file it names
 * passes through for good (another description of it cached here would
 * write its older bytes back over this one's). */
void wc_fd_refuse(int fd);
/* Take in fd, a descriptor this process has not tracked (one received
 * over a socket, or open since start-up and read through first): a
 * read-only one is tracked as if opened here, so that its reads see the
 * cache; a writable one adopted (`own`: this image's alone, proc.c (6)),
 * or refused with WCACHE_INHERITED=0. Depth 0, no lock held. */
void wc_fd_take_in(int fd, int own);

/* The path /proc/self/fd/FD names, NUL-terminated in path[cap]; its
 * length, or <= 0 (path then ""). */
ssize_t wc_fd_path(int fd, char *path, size_t cap);

/* A counted reference to the description behind `fd`, or NULL (not
 * tracked). Taken only from a non-zero count, then checked against the
 * slot again (fdtab.c, the diagram). Drop it with wc_desc_release. */
struct wc_desc *wc_desc_get(int fd);

/* After the real dup, dup2, dup3 or F_DUPFD of `oldfd` returned `newfd`
 * (< 0: it failed): install at newfd the description `ref` (taken with
 * wc_desc_get(oldfd) before the real call; may be NULL), releasing what
 * newfd was before. Consumes ref. */
void wc_fd_duped_ref(struct wc_desc *ref, int oldfd, int newfd);

/* Forget `fd` (closed, or replaced): releases its description. Returns 0
 * or the write-back error that close must report (-errno). */
int wc_fd_forget(int fd);
/* A close of `fd` (fdtab.c invariant (1b)): begin puts the closing mark
 * in its slot and releases its description (*marked: it did; returns 0
 * or the write-back error that close must report); end, after the
 * kernel's close, empties the slot and wakes the calls that wait. */
int wc_fd_close_begin(int fd, int *marked);
void wc_fd_close_end(int fd);

/* Drop one fd-table reference to d (the last one releases the engine
 * file, which writes back). Returns 0 or the error close must report. */
int wc_desc_release(struct wc_desc *d);
/* The same, for the description behind fd, which is still open (about to
 * be closed): lets the engine stop sharing that description. */
int wc_desc_release_fd(struct wc_desc *d, int fd);

/* Call fn(file, arg) on the cached file (dev, ino) under the registry lock
 * (so it stays alive). Returns fn's result or -ENOENT if not cached. */
int wc_reg_apply(dev_t dev, ino_t ino,
                 int (*fn)(struct wc_file *, void *), void *arg);
/* Is no file cached at all? (cheap test before fstat-ing a path) */
extern WC_LOCAL int wc_nreg;
static inline int wc_reg_empty(void)
{
    return __atomic_load_n(&wc_nreg, __ATOMIC_RELAXED) == 0;
}

/* A write of n bytes that descriptor fd passes to the kernel on file
 * system `dev` (or a call that takes room there: meta.c (7)) takes its
 * room from the budget that keeps room for cached bytes
 * (cache/errors.c (6)), once some file is cached: a file's first writes
 * cannot fill the disk under another file's cached bytes. Caller holds
 * the description's lock, if any (or is the program's one thread). */
int wc_through_room_slow(int fd, uint64_t dev, size_t n);
static inline int wc_through_room(int fd, const struct wc_desc *d, size_t n)
{
    if (unlikely(!wc_reg_empty()) && d->ino)
        return wc_through_room_slow(fd, (uint64_t)d->dev, n);
    return 0;
}
/* The kernel answered a call whose room wc_through_room_slow took (it
 * returned 1): the room is the disk's to show now. */
void wc_through_done(uint64_t dev, size_t n);
/* The kernel does the program's call on d (write or read; pos < 0: at the
 * offset; flags: RWF_* for the v2 calls), in program order with what the
 * engine caches of the file: written back first, its room taken, the
 * engine's view forgotten after a write, d->pos read back. Returns bytes
 * or -errno. Caller holds d->lock. (io.c) */
ssize_t wc_kernel_rw_locked(int fd, struct wc_desc *d, int write,
                            const struct iovec *iov, int iovcnt, off_t pos,
                            int flags, int vec);
/* The engine passes d's file through for good (-WC_EPASS: a call its
 * write-back needs was refused): d becomes THROUGH, and the kernel makes
 * the very call the program made (write, pwrite, writev...), which may be
 * refused as well. Caller holds d->lock. (io.c) */
ssize_t wc_desc_pass_for_good(int fd, struct wc_desc *d,
                              const struct iovec *iov, int iovcnt, off_t pos,
                              int rwf_append, int vec);
/* The rest of the registry (registry.c): its memory (0 or -ENOMEM); a
 * description's reference to the file added (WC_REG_FRESH if the file was
 * not in it before: the entry is then claimed by the calling thread until
 * wc_reg_attached; | WC_REG_THROUGH if it is marked through; WC_REG_BUSY,
 * no reference taken, when another thread's claim holds it: wc_reg_wait,
 * then try again) or dropped; is the file in it; mark it through for
 * good; after fork. */
enum { WC_REG_FRESH = 1, WC_REG_THROUGH = 2, WC_REG_BUSY = 4 };
int wc_reg_init(void);
int wc_reg_add(dev_t dev, ino_t ino, struct wc_file *f);
/* registry.c invariant (5): claim (dev, ino)'s entry once no other thread
 * holds it (1; 0 when there is no entry); give the caller's claim back;
 * wait until no other thread's claim holds it. */
int wc_reg_claim(dev_t dev, ino_t ino);
void wc_reg_attached(dev_t dev, ino_t ino);
void wc_reg_wait(dev_t dev, ino_t ino);
void wc_reg_drop(dev_t dev, ino_t ino);
/* A description lets go of f, its file (dev, ino): its registry reference,
 * then its engine reference (wc_file_put_fd with fd >= 0, else
 * wc_file_put). The entry outlives its last description while the engine
 * keeps bytes of the file unwritten (registry.c invariant (1)). Returns
 * the put's answer (0 or the write-back error close reports). */
/* syscall()'s utimensat and futimesat (meta.c): flushed first, then the
 * kernel's call itself (a NULL path is the descriptor's file). Return -1
 * with errno, or 0. */
struct timespec;
struct timeval;
long wc_sys_utimensat(int dirfd, const char *path, const struct timespec *t,
                      int flags);
long wc_sys_futimesat(int dirfd, const char *path, const struct timeval *t);
/* syscall()'s pivot_root (proc.c invariant (12)). */
long wc_sys_pivot_root(const char *new_root, const char *put_old);
/* The process resolves names apart from its crash guard (a chroot, a
 * mount namespace of its own): no file is cached from then on (proc.c
 * invariant (12)). Atomic. */
extern WC_LOCAL int wc_names_apart;
int wc_reg_release(dev_t dev, ino_t ino, struct wc_file *f, int fd);
/* Let go of the files whose entries outlived their descriptions and that
 * have nothing unwritten any more (registry.c invariant (1)). */
void wc_reg_sweep(void);
int wc_reg_has(dev_t dev, ino_t ino);
/* Is (dev, ino)'s entry marked THROUGH (registry.c invariant (2))? */
int wc_reg_is_through(dev_t dev, ino_t ino);
void wc_reg_mark_through(dev_t dev, ino_t ino);
void wc_reg_after_fork(void);
/* Keep one engine reference to f, the file (dev, ino) that left the cache
 * (fdtab.c invariant (8)), until wc_reg_parked(dev, ino, 1) takes it back
 * at the program's next close of a descriptor of the file. 0, or -ENOSPC
 * when too many are parked. */
int wc_reg_park(dev_t dev, ino_t ino, struct wc_file *f);
/* The file parked for (dev, ino), or NULL; `take`: and forget it (the
 * caller owns the reference). */
struct wc_file *wc_reg_parked(dev_t dev, ino_t ino, int take);
void wc_reg_unlock_in_child(void);

/* Flush a description's file and bring the kernel offset up to date.
 * Caller holds d->lock. Returns 0 or -errno (flush error). */
int wc_desc_sync_locked(int fd, struct wc_desc *d, enum wc_reason why);

/* Turn `d` (slot `fd`) into THROUGH: flush, fix the kernel offset. Caller
 * holds d->lock. */
void wc_desc_through_locked(int fd, struct wc_desc *d, enum wc_reason why);

/* The file (dev, ino) leaves the cache for good (its write-back
 * descriptor's number is needed by the program: ownfd.c): every
 * description of it is flushed, gets the kernel offset and passes through
 * from now on; later opens of it pass through. Caller at depth 1, holding
 * no lock. */
void wc_file_detach(dev_t dev, ino_t ino);
/* f, the file (dev, ino), gains nothing from the cache (the engine's
 * wc_futile): take it out, if it can be now (fdtab.c invariant (8)). */
void wc_file_demote(struct wc_file *f, dev_t dev, ino_t ino);
/* Writes a demoted description passes to the kernel before it is adopted
 * again: WC_BACKOFF_BASE << backoff, backoff at most WC_BACKOFF_MAX. */
#define WC_BACKOFF_BASE 8
#define WC_BACKOFF_MAX 16
/* A WATCH description whose writes saw a lock call for every fewer than
 * this many is not adopted (fdtab.c invariant (6)). */
#define WC_WRITES_PER_LOCK 4

/* Every description of the file (dev, ino) becomes THROUGH (mmap). */
void wc_file_all_through(dev_t dev, ino_t ino, enum wc_reason why);
/* The same for every description but `keep`, and later opens of the file
 * are THROUGH too (the registry entry is marked). Caller holds no
 * desc->lock. */
void wc_file_others_through(dev_t dev, ino_t ino, const struct wc_desc *keep,
                            enum wc_reason why);

/* The regular file `st` describes, or that fd is open on, passes through
 * for good, as a mapped one: recorded (wc_mapped_add; later opens pass
 * through), written back, every description of it THROUGH at the
 * kernel's offset. Nothing at depth 1 or with the shim not ON; errno
 * kept. (mmap, ioctls that change a file behind the engine, set-ID bits,
 * asynchronous I/O.) */
void wc_stat_for_good(const struct stat *st);
void wc_fd_for_good(int fd);
/* What the shim does before a mapping of fd is made (meta.c invariants
 * (5), (5b), aio.c (2)), for mmap and syscall(SYS_mmap): 0, or -EBADF for
 * one of the engine's own descriptors. */
int wc_mmap_before(int prot, int flags, int fd, off_t off);
/* The same for (dev, ino), which the caller knows is a regular file. */
void wc_file_for_good(dev_t dev, ino_t ino, enum wc_reason why);
/* Is a description of the file in mode WATCH (its first writes) now? A
 * scan of the table, only while some description is watched. */
int wc_fd_watched(dev_t dev, ino_t ino);
int wc_fd_watched_any(void);

/* Remember that (dev, ino) passes through for good (it is mapped, or
 * appended to behind the engine: shared.c): later opens pass through, and
 * its THROUGH descriptions need no engine work around kernel calls. */
void wc_mapped_add(dev_t dev, ino_t ino);
int wc_mapped_has(dev_t dev, ino_t ino);
/* fn on every cached file of file system `dev`, under the registry's
 * lock; the first -errno it returned, or 0. */
int wc_reg_each_dev(dev_t dev, int (*fn)(struct wc_file *, void *),
                    void *arg);
/* The files stdio streams hold (registry.c invariant (4)): a stream of
 * (dev, ino) opened, closed; is one open? any at all? */
void wc_stream_add(dev_t dev, ino_t ino);
/* A stream of the program's opens (hold 1) or is about to close (0) its
 * file (open.c; fclose in stdiofence.c). */
void wc_stdio_hold(FILE *f, int hold);
void wc_stream_drop(dev_t dev, ino_t ino);
int wc_stream_has(dev_t dev, ino_t ino);
int wc_streams_any(void);

/* Flush everything and fix every kernel offset (fork, exec, exit...).
 * `how`: WC_ALL_SYNC only that; WC_ALL_SHARE: a child is being created,
 * and the descriptions it will share (all of them; with exec_only, those
 * with a descriptor without O_CLOEXEC) become `shared` and cache as
 * shared.c says; WC_ALL_THROUGH: every description passes through (the
 * process is leaving). Caller at depth 1. */
enum { WC_ALL_SYNC = 0, WC_ALL_SHARE = 1, WC_ALL_THROUGH = 2 };
void wc_consistency_all(enum wc_reason why, int how, int exec_only);

/* A writable WATCH description at a write of `len` bytes (0: unknown, a
 * writev) (fdtab.c invariant (6)): after WCACHE_MIN_WRITES writes (at its
 * first in a child after fork, or for a descriptor inherited at start-up:
 * d->shared), cache it in this process, as an open of a cached file, or
 * shared.c, says. Caller holds d->lock, at depth 1. Returns 0 when d
 * stays WATCH (this write goes to the kernel); WC_ADOPT_NEED_CACHE when it
 * would be cached but there is no cache yet: the caller unlocks d, makes
 * it (lock order, shim.h) and calls again; else WC_ADOPT_DONE, or
 * WC_ADOPT_ATTACH: after unlocking d, call wc_desc_adopted (the file is
 * new in the cache: other WATCH descriptions of it attach);
 * WC_ADOPT_RENT: d stays WATCH and this write goes to the kernel, timed
 * into wc_rent_ns (fdtab.c invariant (6b)); WC_ADOPT_RENT_CELL: the same
 * for a description whose offset is in a cell, through
 * wc_cell_write_kernel when the write uses the offset; WC_ADOPT_COUNTED:
 * d stays WATCH and this write, counted among the file's first (6), goes
 * to the kernel, timed for wc_watch_took if wc_watch_timed; WC_ADOPT_WAIT:
 * another thread is bringing the file into the cache (registry.c
 * invariant (5)): the caller unlocks d, waits (wc_reg_wait) and starts
 * the call again; 0: d stays WATCH, the write goes to the kernel. */
enum { WC_ADOPT_DONE = 1, WC_ADOPT_ATTACH = 2, WC_ADOPT_NEED_CACHE = 3,
       WC_ADOPT_RENT = 4, WC_ADOPT_COUNTED = 5, WC_ADOPT_WAIT = 6,
       WC_ADOPT_RENT_CELL = 7 };
/* Nanoseconds this process's writes refused by WC_ADOPT_RENT took in the
 * kernel, each at most 1/WC_RENT_PART of the setup's price (atomic;
 * fdtab.c invariant (6b)). */
extern WC_LOCAL uint64_t wc_rent_ns;
#define WC_RENT_PART 4
/* Adds one rented write's time, ns, to wc_rent_ns. */
static inline void wc_rent_pay(uint64_t ns)
{
    uint64_t most = wc_cfg.setup_ns / WC_RENT_PART + 1;
    __atomic_add_fetch(&wc_rent_ns, ns < most ? ns : most, __ATOMIC_RELAXED);
}

int wc_desc_adopt_locked(int fd, struct wc_desc *d, size_t len);

/* wc_desc.writes of a WATCH description never to be adopted. */
enum { WC_WRITES_PSEUDO = -1, WC_WRITES_NOT_REGULAR = -2,
       WC_WRITES_SETID = -3, WC_WRITES_SYNC = -4 };

/* A mode whose set-user-ID or set-group-ID bit the kernel clears at each
 * write of a user without CAP_FSETID: a file so marked is never cached, or
 * fstat would show the bit until the write-back (fdtab.c invariant (6)). */
static inline int wc_mode_setid(mode_t m)
{
    return (m & S_ISUID) || (m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP);
}

/* d's file identity (dev, ino), asked of the kernel if not known yet
 * (fdtab.c invariant (7)). Caller holds d->lock. */
void wc_ident_locked(int fd, struct wc_desc *d);

/* d's WATCH counts start again (fdtab.c invariant (6)). */
static inline void wc_watch_restart(struct wc_desc *d)
{
    __atomic_store_n(&d->writes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->wlocks, 0, __ATOMIC_RELAXED);
    d->wpw = d->wnear = d->wslow = 0;
}

/* A write counted among a file's first (fdtab.c (6)) that took at least
 * this long in the kernel was a round trip to a server (FUSE: 20-23 us a
 * write on bindfs on a quiet day here, 47 us on others, GlusterFS
 * 50-200 us; a local disk 0.7-2 us, and only FUSE, network and similar
 * file systems are asked: wc_fs_remote)... At 20 us bindfs's writes
 * fell on both sides of it (fuse::slow_writes_cache_a_file_early failed
 * once). */
#define WC_WATCH_SLOW_NS 10000u
/* ...and this many such writes in a row bring the file into the cache at
 * once: its adoption's own round trips (fstat, fstatfs) cost about as
 * much. */
#define WC_WATCH_SLOW_WRITES 2

/* A write that wc_watch_passes counted (it returned WC_WATCH_COUNTED) took
 * ns in the kernel: a slow one counts on a file system that is a server's
 * (wc_fs_remote: FUSE, NFS, SMB, 9p..., asked at the first slow write),
 * never on a local one, whose writes are slow only when the thread was
 * preempted. Caller holds d->lock, or is the program's one thread. */
int wc_fs_remote(int fd, struct wc_desc *d);
/* Is the counted write wc_watch_passes just let through to be timed for
 * wc_watch_took? The file's first WC_WATCH_SLOW_WRITES, and any after a
 * slow one: a streak of slow writes starts among the first or not at all
 * (a file whose first two writes were quick is on a local file system,
 * or its server answered quicker than a round trip). Reading the clock
 * twice costs 55 ns here (the vDSO's kvm-clock): each of SQLite's 7
 * journal writes an insert paid it. */
static inline int wc_watch_timed(const struct wc_desc *d)
{
    return d->writes <= WC_WATCH_SLOW_WRITES || d->wslow;
}
static inline void wc_watch_took(int fd, struct wc_desc *d, uint64_t ns)
{
    if (ns < WC_WATCH_SLOW_NS)
        d->wslow = 0;
    else if (wc_fs_remote(fd, d))
        d->wslow++;
}

/* The first test of wc_desc_adopt_locked: does this write of `len` bytes
 * on WATCH description d go to the kernel with d staying WATCH (counted
 * among its first writes, or refused as gaining nothing: fdtab.c
 * invariants (6), (8)), no adoption to try? 0: no; WC_WATCH_COUNTED:
 * yes, counted among the file's first writes (time it for wc_watch_took
 * when wc_watch_timed);
 * 1: yes. Caller holds d->lock, or is the program's one thread. */
#define WC_WATCH_COUNTED 2
static inline int wc_watch_passes(struct wc_desc *d, size_t len)
{
    if (d->writes < 0 || (d->accmode != O_WRONLY && d->accmode != O_RDWR) ||
        len >= WC_LARGE_WRITE)  /* straight to the kernel, cached or not */
        return 1;
    int need = d->backoff ? WC_BACKOFF_BASE << d->backoff
                          : d->shared ? 0 : wc_cfg.min_writes;
    /* Enough of the counted ones were round trips: the count ends, and
     * the tests below see the writes there were. */
    if (d->writes < need && !(d->wslow >= WC_WATCH_SLOW_WRITES &&
                              !d->backoff)) {
        __atomic_store_n(&d->writes, d->writes + 1, __ATOMIC_RELAXED);
        return d->backoff ? 1 : WC_WATCH_COUNTED;
    }
    int locks = __atomic_load_n(&d->wlocks, __ATOMIC_RELAXED);
    if ((unlikely(locks) && locks * WC_WRITES_PER_LOCK > d->writes) ||
        (unlikely(d->wpw) && d->wpw * 2 > d->writes &&
         d->wnear * 2 < d->wpw)) {
        /* Written back at nearly every lock, or written mostly by pwrites
         * far from each other (each would be written back by a call of its
         * own): caching it would gain nothing (fdtab.c invariant (6));
         * asked again later, as a file that left the cache is. */
        wc_watch_restart(d);
        if (d->backoff < WC_BACKOFF_MAX)
            d->backoff++;
        return 1;
    }
    return 0;
}

/* A pwrite of n bytes at pos through WATCH description d (under its lock,
 * before wc_watch_passes): near the last one if it starts within a page
 * of that one's pages (the next record of a stream, a rewrite). */
static inline void wc_watch_pwrite(struct wc_desc *d, off_t pos, size_t n)
{
    unsigned lo = (unsigned)(pos >> 12);
    if (lo + 1 >= d->wlo && lo <= d->whi + 1)
        d->wnear++;
    d->wpw++;
    d->wlo = lo;
    d->whi = (unsigned)((pos + (off_t)(n ? n - 1 : 0)) >> 12);
}
void wc_desc_adopted(dev_t dev, ino_t ino);

/* In a child after fork: forget the parent's cache, in any state (its
 * copies of the engine's descriptors closed; the store is the parent's). */
void wc_forget_cache_in_child(void);
/* Then, with the shim on: every inherited description becomes WATCH +
 * shared (pass through; THROUGH if the child caches the file later).
 * Locks are reset: other threads of the parent do not exist here. */
void wc_after_fork_child(void);

/* Leaving for good (exit): flush, fix offsets, pass-through from now on. */
void wc_shutdown(enum wc_reason why);
/* In a single-threaded child forked raw from a process whose threads may
 * have held shim or engine locks: take every lock as free (proc.c,
 * flush_in_child). */
void wc_unlock_all_in_child(void);

/* ---- re-entry and signal-nested writes (fdtab.c) --------------------- */

/* wc_depth, wc_tq and wc_qpending: wc_thr, at the top of this file. */
void wc_queue_drain(void);
/* In the child that writes back after a handler's _exit, before it
 * drains: the record the interrupted drain was running is not run again
 * if it returned, or if its write completed in the engine (`finished`)
 * (queue.c invariant (3)). */
void wc_queue_child_resume(int finished);
/* Create the key that frees a thread's queue at thread exit (start-up). */
void wc_queue_init(void);

/* 1 once the program has called pthread_cancel (cancel.c invariant (1)). */
extern WC_LOCAL int wc_cancel_used;
/* wc_cancel_held (wc_thr) set and given back. */
void wc_cancel_hold(void);
void wc_cancel_unhold(void);

/* Enter shim code that may take locks or call the engine. Caller has
 * checked wc_depth == 0. */
__attribute__((always_inline)) static inline void wc_shim_enter(void)
{
    wc_depth = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (unlikely(__atomic_load_n(&wc_cancel_used, __ATOMIC_RELAXED)))
        wc_cancel_hold();
    if (unlikely(wc_qpending != 0))
        wc_queue_drain();
}

/* Leave: run the writes queued by signal handlers meanwhile, then
 * depth 0 (re-checking after, so none is stranded). */
/* Shim work inside a libc wrapper: enter, keeping the errno the program
 * will see (the wrapped call's answer), and give it back on the way out. */
static inline int wc_work_begin(void);
static inline void wc_work_end(int saved_errno);

void wc_shim_leave_slow(void);
__attribute__((always_inline)) static inline void wc_shim_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (unlikely(wc_qpending != 0)) {
        wc_shim_leave_slow();
    } else {
        /* Cancellation back before depth 0: a handler that runs at depth
         * 0 (and may jump away) runs with the program's state. */
        if (unlikely(wc_cancel_held))
            wc_cancel_unhold();
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        wc_depth = 0;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

__attribute__((always_inline)) static inline int wc_work_begin(void)
{
    int e = errno;
    wc_shim_enter();
    return e;
}

__attribute__((always_inline)) static inline void wc_work_end(int saved_errno)
{
    wc_shim_leave();
    errno = saved_errno;
}

/* A write made by a signal handler while this thread is inside the shim:
 * copy it to the thread's queue (async-signal-safe; mmap'd). `pos` < 0:
 * at the description's offset. Returns bytes accepted or -errno. */
ssize_t wc_queue_write(int fd, const struct iovec *iov, int iovcnt,
                       off_t pos, int rwf_append);
/* A close made by such a handler: queued as well. */
int wc_queue_close(int fd);
/* A fatal signal caught by such a handler: queued as well (signals.c). */
int wc_queue_death(int sig);
/* signals.c invariant (5): a signal that arrived inside the shim, queued
 * (0, or -errno: run its handler now), and sent again to this thread at
 * depth 0 (wc_signals_again). */
int wc_queue_signal(int sig, const siginfo_t *si);
struct wc_held {
    int sig;
    siginfo_t si;
};
#define WC_HELD_MAX 32
/* Block every signal of the calling thread, the mask before in *old
 * (put back with pthread_sigmask): around the shim's signal lock, a
 * thread's or the guard's start, and from wc_shim_leave_slow's last look
 * at its queue until the held signals are pending again. */
void wc_signals_block(sigset_t *old);
/* Send held signals again to this thread, at depth 0, in order, every
 * signal blocked (wc_signals_block) so that all are pending before the
 * first handler runs, then put *old back, where the kernel delivers them;
 * one the kernel has no room for (RLIMIT_SIGPENDING) has its handler run
 * here. The caller has given the program its cancellation state back
 * (cancel.c (3)). */
void wc_signals_again(const struct wc_held *h, int n, const sigset_t *old);
/* Flush everything, then die of `sig` by its default action. Called at
 * depth 0 from the handler, or at depth 1 holding no lock from the queue.
 * Does not return. */
void wc_die_of(int sig);
/* Stand in for SIG_DFL of the catchable signals that end the process
 * (once the cache exists: before it, a death has nothing to write back);
 * in a fork child, forget who held the lock. */
void wc_death_signals_init(void);
/* Around an exec or a spawn (going 1), and after it failed or the spawn
 * returned (0): signals the program ignores are ignored in the kernel's
 * table meanwhile (signals.c invariant (3)). */
void wc_signals_exec(int going);
void wc_death_signals_after_fork(void);

/* ---- write/read paths (io.c) ----------------------------------------- */

/* wc_inflight (wc_thr): in a child writing back after a handler's _exit,
 * the offset moved past the write in flight if the engine had finished
 * it. */
void wc_inflight_fixup(void);

/* The one write path: write/pwrite (vec 0: one buffer, iov[0]) or
 * writev/pwritev (vec 1) semantics on a tracked descriptor. `pos` < 0: at
 * (and advancing) the description's offset. Returns bytes or -errno.
 * Caller is at depth 1. */
ssize_t wc_do_writev(int fd, struct wc_desc *d, const struct iovec *iov,
                     int iovcnt, off_t pos, int rwf_append, int vec);

/* ---- descriptions whose offset others see (shared.c) ----------------- */

/* Make d, which stdio (fd 0..2) or another process may write through
 * behind the engine, cache safely: RESERVE, or THROUGH (and the file
 * passing through for good) when it is O_APPEND. Caller holds d->lock.
 * Returns what the caller must finish with wc_share_finish once it has
 * unlocked d. */
enum { WC_SHARE_DONE, WC_SHARE_OTHERS_THROUGH, WC_SHARE_ALL_THROUGH };
int wc_desc_share_locked(int fd, struct wc_desc *d, enum wc_reason why);
void wc_share_finish(int how, dev_t dev, ino_t ino, const struct wc_desc *d,
                     enum wc_reason why);

/* The same for the description of `fd`, found and locked here (open or
 * dup onto 0..2; start-up, with_process: inherited). Caller at depth 1,
 * holding no lock. */
void wc_fd_share(int fd, int with_process);

/* A write(2)-style call on a RESERVE description (pos < 0, no
 * RWF_APPEND). Caller holds d->lock. Returns bytes or -errno. */
ssize_t wc_reserve_write(int fd, struct wc_desc *d, const struct iovec *iov,
                         int iovcnt, int vec);
/* The same for a WATCH description with a cell while the process has no
 * cache (fdtab.c (6b)): its range reserved in the cell, written by the
 * kernel at that offset (pwrite), the cell kept. The count or -errno. */
ssize_t wc_cell_write_kernel(int fd, struct wc_desc *d,
                             const struct iovec *iov, int iovcnt, int vec);

/* A description installed on descriptor fd (0, 1 or 2) by open, dup or
 * start-up (with_process: inherited): shared with stdio (wc_fd_share),
 * or, on 1 while glibc's stdout has written nothing there, guarded
 * (stdio.c invariant (2)). Caller at depth 1, holding no lock. */
void wc_fd_std(int fd, int with_process);

/* The holders of a description and its offset, in memory every holder
 * maps (shared.c invariants (5), (6)). */
struct wc_cell {
    int holders;                /* processes holding it (atomic) */
    int mover;                  /* the pid settling it (atomic) */
    unsigned long long pos;     /* WC_CELL_KERNEL | WC_CELL_MOVING | offset
                                   (atomic) */
};
#define WC_CELL_KERNEL (1ULL << 63) /* the kernel's offset is the offset */
#define WC_CELL_MOVING (1ULL << 62) /* being made so (shared.c (6)) */
#define WC_CELL_POS (WC_CELL_MOVING - 1)

/* A child is being created that gets d (fd's description, locked by the
 * caller), in child creation number `gen`: count it as a holder (shared.c
 * invariant (5)), its offset moved into the cell if it may (6). A child
 * that glibc execs itself (posix_spawn, system, popen) gets no cell: the
 * caller settles them all (wc_cells_settle_all). */
void wc_holders_fork(int fd, struct wc_desc *d, unsigned gen);
void wc_holders_after_fork_child(void);
/* Whether fd is the memfd of a cell region (in a fork child, alone). */
int wc_cells_region_fd(int fd);

/* Invariant (6) of shared.c: make the kernel's offset d's offset again,
 * for good, before anything uses it (a read, lseek, a write the kernel
 * makes, stdio, an image that will not know the cell). No lock needed:
 * the cell's state is one atomic word. errno kept. */
void wc_cell_settle_slow(int fd, struct wc_cell *c);
__attribute__((always_inline))
static inline void wc_cell_settle(int fd, const struct wc_desc *d)
{
    struct wc_cell *c = __atomic_load_n(&d->cell, __ATOMIC_ACQUIRE);
    if (unlikely(c != NULL) &&
        !(__atomic_load_n(&c->pos, __ATOMIC_ACQUIRE) & WC_CELL_KERNEL))
        wc_cell_settle_slow(fd, c);
}
/* Set the kernel's offset to the cell's, which stays the offset (exec,
 * proc.c invariant (6): a library of the new image may write before the
 * shim starts there). errno kept. */
void wc_cell_sync_kernel(int fd, struct wc_cell *c);
/* The process's exit (wc_shutdown): cells stay as they are, since no
 * holder here uses the kernel's offset any more, except descriptor 1's
 * while glibc's stdout holds output (written after the shim's exit
 * work); a call that comes later all the same (a library finalised after
 * this one) settles its descriptor's first: wc_cells_late, read by
 * wc_fd_get, and wc_cell_settle_fd. */
void wc_cells_exit(void);
/* Every description in the fd table (wc_cell_settle_fd), as the process
 * is about to leave its descriptors to code that does not know the cells
 * (exit, an exec that hands nothing over). */
void wc_cells_settle_all(void);
/* fd is one of ours that the program needs (ownfd.c, wc_own_fd_evict):
 * if it is a region's memfd, moved to another number or closed; 0 then,
 * -ENOENT if fd is no region's. */
int wc_cells_fd_move(int fd);
/* What an exec hands the new image for a cell: the region's memfd (its
 * number and identity) and the cell's index there. */
struct wc_cell_ref {
    int rfd;
    unsigned idx;
    unsigned long long dev, ino;
};
/* For an exec: the memfd of the region holding c, FD_CLOEXEC cleared (no
 * new descriptor: the region's own, at its placed number), described in
 * *ref; wc_cell_unexport(rfd) if the exec fails. -1 if none. */
int wc_cell_export(struct wc_cell *c, struct wc_cell_ref *ref);
/* The exec failed: rfd, if still the region's, is close-on-exec again. */
void wc_cell_unexport(int rfd);
/* The new image's side: the cell at index idx of the region the old image
 * passed as descriptor rfd (mapped once per region, its memfd kept as one
 * of ours; the caller closes rfd, having checked it is the memfd the old
 * image named); NULL if it cannot be. */
struct wc_cell *wc_cell_import(int rfd, unsigned idx);
/* Settle cell idx of the region whose memfd is rfd, through fd (the
 * region mapped only for that). */
void wc_cell_settle_at(int fd, int rfd, unsigned idx);

/* A stdio call may make glibc write through descriptor fd (or through
 * every stream's, fd < 0): a guarded description there becomes shared
 * with stdio first (stdio.c invariant (2)). wc_guard_seen says whether
 * any description was ever guarded (the stdio wrappers' one test). */
extern WC_LOCAL int wc_guard_seen;

/* ---- deferred cancellation (cancel.c) -------------------------------- */

/* pthread_testcancel at depth 0 (cancel.c invariant (2)). */
void wc_cancel_test(void);
/* A write or read on a tracked description is a cancellation point. */
static inline void wc_cancel_point(void)
{
    if (unlikely(__atomic_load_n(&wc_cancel_used, __ATOMIC_RELAXED)))
        wc_cancel_test();
}
void wc_stdio_fence(int fd);
/* No stream on descriptor 1 unbuffered, line-buffered or holding output. */
int wc_stdout_quiet(void);

/* ---- glibc's own writes (stdio.c) and calls made by the kernel -------- */

/* The kernel does a call on a tracked descriptor behind the engine:
 * before: flush the file and set the kernel's offset (returns the
 * description, NULL if not tracked); after: read the offset back
 * (`moved`) and forget what the engine knew of the file (`changed`). */
struct wc_desc *wc_kernel_before(int fd, enum wc_reason why);
void wc_kernel_after(int fd, struct wc_desc *d, int moved, int changed);

/* ---- why writes were not cached (stats.c) ---------------------------- */

enum wc_nc {
    WC_NC_START = 0,    /* open since start-up (inherited), or made behind
                           the shim's back: not looked at yet */
    WC_NC_UNKNOWN,      /* not classified yet */
    WC_NC_NOT_REGULAR,  /* pipe, socket, tty, device */
    WC_NC_PSEUDO,       /* /proc, /sys... */
    WC_NC_DIRECT,       /* O_DIRECT, O_SYNC, O_DSYNC */
    WC_NC_EXCLUDED,     /* WCACHE_INCLUDE/WCACHE_EXCLUDE */
    WC_NC_MAPPED,       /* the file is mapped */
    WC_NC_STDIO,        /* fopen'd or fdopen'd: stdio writes it */
    WC_NC_INHERITED,    /* inherited and not cached */
    WC_NC_SHARED,       /* THROUGH: O_APPEND shared with a process */
    WC_NC_THROUGH,      /* THROUGH: the file is written behind the cache */
    WC_NC_READONLY,     /* not open for writing (the write fails) */
    WC_NC_NOCACHE,      /* the cache could not be created */
    WC_NC_FEW,          /* a file's first writes (WCACHE_MIN_WRITES) */
    WC_NC_SETUP,        /* cheaper than making the cache (WCACHE_SETUP_US:
                           fdtab.c invariant (6b)) */
    WC_NC_FUTILE,       /* caching the file gained nothing (demoted) */
    WC_NC_START_OWN,    /* as WC_NC_START, and held by this process alone
                           (the image before exec said so: proc.c) */
    WC_NC_SETID,        /* a set-user-ID or set-group-ID file */
    WC_NC_LARGE,        /* a write of WC_LARGE_WRITE bytes or more: never
                           cached, one system call either way */
    WC_NC_COUNT
};

/* The per-descriptor states exist (WCACHE_STATS set, or inherited
 * descriptors cached: the default). */
extern WC_LOCAL int wc_nc_on;
/* WCACHE_STATS is set: writes passed through are counted (the write
 * paths test it before calling wc_nc_count_through). */
extern WC_LOCAL int wc_nc_counting;
/* What an exec may hand over of fd's description (proc.c invariant (6)),
 * if it is writable and regular: WC_HAND_OWN, held by this process alone
 * (not shared with a child, its holder count 1 if it has one; its cell
 * settled); WC_HAND_CELL, its offset in a cell (shared.c (6)), *c; else
 * 0. Then its identity too. */
enum { WC_HAND_OWN = 1, WC_HAND_CELL };
int wc_fd_handover(int fd, dev_t *dev, ino_t *ino, struct wc_cell **c);
/* Every tracked descriptor is below this. */
unsigned wc_fd_tracked_hi(void);
/* The descriptors the image before exec held alone (proc.c invariant (6)):
 * marked `mark` in why[] (NULL: only forgotten); the variable that says so
 * leaves the environment either way. Returns 1 + the highest descriptor
 * marked (0: none). */
unsigned wc_exec_own_take(unsigned char *why, unsigned char mark);

/* Allocate the per-descriptor states when either needs them; mark the
 * descriptors the image before exec held alone (proc.c invariant (6)). */
void wc_nc_init(void);
/* A child is being created: no descriptor open since start-up is this
 * process's alone any more. */
void wc_nc_shared_all(void);
/* Is `fd` open since start-up and this process's alone? */
int wc_nc_own(int fd);
/* Every such descriptor is below this (0: there is none). */
unsigned wc_nc_own_hi(void);
/* Record why `fd` is not cached (WC_NC_UNKNOWN: forget). */
void wc_nc_mark(int fd, int why);
/* newfd is a duplicate of oldfd: the same reason. */
void wc_nc_dup(int oldfd, int newfd);
/* A write on an untracked descriptor: a descriptor open since start-up is
 * adopted now, at its first write (shared.c), and its description
 * returned; else the write is counted under its reason and NULL returned
 * (pass through). */
struct wc_desc *wc_nc_untracked(int fd);
/* A write on a THROUGH or WATCH description (when wc_nc_counting). */
void wc_nc_count_through(int fd, struct wc_desc *d, size_t n);
/* Writes passed through (the sum of the reasons). */
uint64_t wc_nc_total(void);
/* An exec that failed published this image's counts of writes not cached
 * and of offset reservations (wc_proc_image_ends): they start again from
 * zero, so that the image's end does not count them twice. */
void wc_nc_published(void);
/* The reasons as one line for WCACHE_STATS ("N writes passed through
 * uncached: reason n, ..."), and as "|reason=n" fields for the wcache
 * command's per-process record. Return the length written. */
size_t wc_nc_format(char *buf, size_t cap);
size_t wc_nc_format_raw(char *buf, size_t cap);
/* WCACHE_LOG=debug: say whether fd is cached, and why not. */
void wc_debug_fd(int fd, const char *path, const char *how);
/* A file was brought into the cache (counted for the statistics). */
void wc_stats_file_cached(void);
uint64_t wc_stats_files(void);
/* In a fork child: its own counts start at zero. */
void wc_stats_after_fork(void);

/* Would WC_UNTRACKED (write: `read` 0) or WC_UNTRACKED_READ (1) find
 * nothing to do for fd, a number below wc_nfds the table has no
 * description at: no descriptor open since start-up to take in, no
 * write to count? The write and read wrappers' quick look (io.c). */
static inline int wc_nc_quiet(int fd, int read)
{
    if (likely(!wc_nc_on))
        return 1;
    if (read ? wc_reg_empty() : wc_nc_counting)
        return read;
    unsigned char why = __atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED);
    return why != WC_NC_START && why != WC_NC_START_OWN;
}

/* The pass-through path of the write calls: the description a descriptor
 * open since start-up gets at its first write, or NULL. One load and a
 * branch when nothing needs looking at. */
#define WC_UNTRACKED(fd) (unlikely(wc_nc_on) ? wc_nc_untracked(fd) : NULL)
/* The same for the read calls and lseek, while some file is cached (only
 * then can the kernel's file lack bytes): a descriptor open since
 * start-up is taken in at its first read (stats.c (1d)). */
struct wc_desc *wc_nc_untracked_read(int fd);
#define WC_UNTRACKED_READ(fd)                                              \
    (unlikely(wc_nc_on) && unlikely(!wc_reg_empty())                      \
         ? wc_nc_untracked_read(fd) : NULL)

/* The least room (limit - usage, bytes) the process's memory cgroup and
 * its ancestors have left; UINT64_MAX: no limit (memcg.c): the engine's
 * room function (wc_config.room). */
uint64_t wc_memcg_room(void);
/* A fork child starts over (its own cache, its own question). */
void wc_memcg_after_fork_child(void);

/* ---- the process side (proc.c) --------------------------------------- */

/* Before an exec: keep open the engine's descriptors whose close would
 * drop POSIX locks the kernel keeps across it (execlocks.c); after an exec
 * that failed, make them close-on-exec again. */
void wc_exec_keep_locks(void);
/* Before an exec: wait until the guard's intermediate child, which shares
 * the descriptor table, is gone (guard.c invariant (3b)). */
void wc_guard_settle(void);
void wc_exec_failed(void);
/* Has a tracked descriptor of (dev, ino) FD_CLOEXEC set (fdtab.c)? */
int wc_file_fd_cloexec(dev_t dev, ino_t ino);

/* Start the deadline flusher (once per process image / per child). */
void wc_flusher_start(void);
/* Does the calling thread run SCHED_FIFO or SCHED_RR? Its flusher and
 * guard are then made SCHED_OTHER on every CPU (flusher.c (6), guard.c
 * (10)). */
int wc_sched_realtime(void);
/* The program set a handler of its own for `sig` (signals.c, syscall.c);
 * `nodefer`: with SA_NODEFER (flusher.c invariant (2)). */
void wc_note_handler(int sig, int nodefer);
/* Is this thread running a program's handler through the shim's stand-in
 * (signals.c invariant (5))? However the handler was called: by the
 * kernel, or later by a runtime that delivers signals itself (the
 * ThreadSanitizer's, with no signal frame on the stack). */
int wc_in_held_handler(void);
/* Is `handler` the shim's stand-in (a kernel action's sa_handler)? Then
 * wc_in_held_handler alone tells whether one of the program's handlers
 * runs: the stack need not be searched for the kernel's frame. */
int wc_is_stand_in(const void *handler);
/* Start the flusher if the cache exists and this cannot be inside one of
 * the program's handlers, else try again later: at cache creation and at
 * writable opens (flusher.c invariant (2)). */
void wc_flusher_want(void);
/* Set while the start waits; the write path then tries again (wc_pending)
 * at each write for the first WC_FLUSHER_EAGER tries, then every
 * WC_FLUSHER_RETRY writes. */
extern WC_LOCAL int wc_flusher_deferred;
#define WC_FLUSHER_EAGER 64
#define WC_FLUSHER_RETRY 1024
/* io.c invariant (7): the program's positional calls an inherited
 * seccomp filter refuses, bit (1 << WC_RF_*) each, asked when the cache
 * is made (wc_refused_io_probe); such a call goes to the kernel. */
enum { WC_RF_PWRITE, WC_RF_PWRITEV, WC_RF_PWRITEV2, WC_RF_PREAD,
       WC_RF_PREADV, WC_RF_PREADV2 };
extern WC_LOCAL int wc_refused_io;
void wc_refused_io_probe(void);
/* wc_kernel_rw_locked's `vec` beside 1 (the program's call took an iovec
 * array): the program's call was the v2 one (pwritev2, preadv2), made so
 * even when no flag is set, as the program did. Not a bit of the
 * program's flags word: each of its 32 bits is the kernel's to answer
 * (an unknown one: EOPNOTSUPP), and bit 30, which this was, reached the
 * kernel cleared (probe: pwritev2 with 0x40000000 wrote where the kernel
 * refuses). */
#define WC_VEC_V2 2
/* Set (atomic) when the shim's own machinery cannot run: its flusher
 * thread or its crash guard could not be made (proc.c invariant (8b)):
 * the write path then stops caching for good, at depth 0. */
extern WC_LOCAL int wc_off_wanted;
/* Ask for that, saying why at WCACHE_LOG=info. */
void wc_off_want(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wc_pending_slow(void);
/* After a write, the shim left: the flusher's deferred start or the stop
 * for good, when either waits (two loads of one cache line). */
__attribute__((always_inline)) static inline void wc_pending(void)
{
    if (unlikely(__atomic_load_n(&wc_flusher_deferred, __ATOMIC_RELAXED) |
                 __atomic_load_n(&wc_off_wanted, __ATOMIC_RELAXED)))
        wc_pending_slow();
}
/* Its thread id (0: none), waiting while it is being started; in a fork
 * child, none. */
int wc_flusher_tid(void);
/* With wc_state no longer ON: wake the flusher and wait (at most 1 s)
 * until it has left its loop (flusher.c invariant (3)). */
void wc_flusher_stop(void);
/* The flusher leaves while the shim stays on, and a new one starts at the
 * next write (flusher.c invariant (5)); 0 if it would not leave. */
int wc_flusher_leave(void);
/* wc_flusher_leave, then wait until the kernel has the thread gone from
 * the process (proc.c invariant (11)). */
void wc_flusher_gone(void);
void wc_flusher_after_fork(void);
/* The process image ends (proc.c): statistics, the store's name; and the
 * flush at exit (from a signal handler inside the shim: in a raw-forked
 * child). */
int wc_proc_image_ends(void);
/* Bytes the shim's own calls wrote to files the engine does not hold
 * (watched descriptions, passed-through writes): atomic, read by the
 * engine where a file system's free space lags (cache/errors.c (4c)). */
extern WC_LOCAL uint64_t wc_sent_through;
/* lseek calls that reserved a shared description's offset for a cached
 * write (shared.c wc_reserve_write): issued, not avoided (atomic). */
extern WC_LOCAL uint64_t wc_reserve_calls;

/* Is fd's file one the process maps shared and writable (meta.c
 * invariant (5b))? An fstat: ask only when wc_shm_any. */
int wc_shm_locked(int fd);
/* Files mapped shared and writable that wc_shm_locked looks for (meta.c;
 * atomic). */
extern WC_LOCAL int wc_nshm;
static inline int wc_shm_any(void)
{
    return __atomic_load_n(&wc_nshm, __ATOMIC_ACQUIRE) != 0;
}

/* Is fd an io_uring's descriptor (readlink of /proc/self/fd: the kernel's
 * anon inode name)? aio.c invariant (2). errno kept. */
int wc_is_io_uring(int fd);

/* Stop caching for good (io_uring: aio.c invariant (2)). */
void wc_proc_off(void);
/* Every file the Linux AIO request blocks iocbpp[0..nr) name passes
 * through for good (aio.c invariant (1)). */
void wc_aio_iocbs_for_good(long nr, void *iocbpp);
void wc_proc_final_flush(void);
/* Before a signal is sent: SIGKILL to this process is an exit
 * (signals.c invariant (4)); a signal to another process a consistency
 * point (6). how: what pid and tid name. */
enum { WC_KILL_SELF, WC_KILL_PID, WC_KILL_TGID, WC_KILL_TID, WC_KILL_PIDFD };
void wc_before_kill(int how, long pid, long tid, int sig);
/* Point cache/ucopy.c's fault hooks (its death hook among them) at the
 * shim, before wc_fault_install (signals.c). */
void wc_signals_fault_hooks(void);
/* Start-up: the key of the shim's marks on signal frames (signals.c). */
void wc_signals_init(void);
/* Print WCACHE_STATS for cache c (exit, exec). */
void wc_stats_report(struct wc_cache *c);

/* For the raw syscall() wrapper (syscall.c): what exit (no destructor
 * will run), and fork's prepare, parent and child handlers do. */
void wc_proc_exit_flush(void);
void wc_proc_before_fork(int exec_only);
void wc_proc_after_fork_parent(void);
void wc_proc_after_fork_child(void);
/* vfork as a real fork serves it (syscall(SYS_vfork): the caller's frame
 * would not survive a real one); proc.c invariant (7). */
pid_t wc_vfork_by_fork(void);
/* What a task made by clone or clone3 shares with its maker (proc.c
 * invariant (9)), from the call's flags. */
enum wc_clone_kind {
    WC_CLONE_THREAD,    /* memory and descriptor table, no CLONE_VFORK */
    WC_CLONE_FORK,      /* neither (and no CLONE_SETTLS): a fork */
    WC_CLONE_VFORK,     /* memory, CLONE_VFORK, not the table */
    WC_CLONE_APART,     /* any other mix: the process stops caching */
};
enum wc_clone_kind wc_clone_kind(unsigned long flags);
/* Before a raw clone or clone3 of kind `k` (syscall.c): a thread ends
 * wc_solo; WC_CLONE_VFORK (the child would return into this frame) and
 * WC_CLONE_APART stop the process caching for good (proc.c (9)). */
void wc_proc_before_raw_clone(enum wc_clone_kind k);
/* Before a call that gives the calling thread a descriptor table of its
 * own (unshare(CLONE_FILES), close_range's CLOSE_RANGE_UNSHARE): proc.c
 * invariant (10). */
void wc_proc_before_unshare(void);
/* A raw call (syscall.c) that changes a file's attributes with *at
 * flags (fchmodat2, setxattrat, removexattrat): made as meta.c makes
 * chmod, the file written back first and the change noted as the
 * program's own. */
long wc_own_change_raw(long nr, long a, long b, long c, long d, long e,
                       long f, int flags);

/* Track a descriptor the program just opened (open.c: every open, and
 * the raw calls of syscall.c): in a vfork child its records; else the
 * table (wc_fd_opened) and, on 0..2, stdio's sharing (wc_fd_std).
 * Returns fd. */
int wc_opened(int fd, int dirfd, const char *path, int flags);
/* A vfork child's descriptors (proc.c invariant (7)): fd was opened
 * (flags as given to open), newfd made a duplicate of oldfd (< 0: none),
 * fd closed. Only while wc_state is WC_ST_VFORK. */
void wc_vfork_opened(int fd, int flags);
void wc_vfork_duped(int oldfd, int newfd);
void wc_vfork_closed(int fd);
void wc_vfork_closed_range(unsigned lo, unsigned hi);
/* Did the vfork child open, close or duplicate onto fd? */
int wc_vfork_touched(int fd);
/* Have all the program's threads ended (only the shim's own are left)?
 * (syscall.c; for the flusher, which then ends so the process can.) */
int wc_program_threads_gone(void);

/* The calling thread's alternate signal stack, unless it has one, as
 * large as its own stack `own` (0: the process's first thread, or
 * unknown): the mapping, or NULL. wc_altstack_drop() releases the
 * calling thread's (altstack.c). */
void *wc_altstack_add(size_t own);
void wc_altstack_drop(void);
/* RLIMIT_STACK or RLIMIT_AS changed: the next stack is sized anew. */
void wc_altstack_limits_changed(void);
/* wcache/ucopy.h's two hooks (altstack.c invariant (6)). */
int wc_altstack_undeliverable(const siginfo_t *si, const ucontext_t *uc);
void wc_altstack_uc_stack(ucontext_t *uc, stack_t *saved, int show);
/* Register the process for membarrier's private expedited barrier, as
 * the engine does when it makes the cache (cache/cache.c); cheap while
 * the process has one thread (altstack.c invariant (5)). */
void wc_membarrier_register(void);
/* A thread of the program's is about to be made, by pthread_create or
 * by glibc itself: the one-thread fast paths end (altstack.c (5), (7)). */
void wc_thread_to_come(void);
/* Does sev ask glibc for a thread to run the program's function (a
 * SIGEV_THREAD notification)? Read without a fault. */
struct sigevent;
int wc_sigev_by_thread(const struct sigevent *sev);
/* Grow the descriptor table to where the engine places its descriptors
 * (ownfd.c invariant (6)); while the process has one thread. */
void wc_own_fd_table_ready(void);

/* The crash guard for cache c, just created (guard.c); and the start-up
 * part (asks this library's path while dladdr is safe to call). */
void wc_guard_start(struct wc_cache *c);
/* The flusher, every 250 ms: a guard again if the one started went
 * (guard.c invariant (6)). */
void wc_guard_check(struct wc_cache *c);
/* Wait for the guard's intermediate child to go, and reap it (the
 * flusher thread, first thing); forget it in a fork child. */
void wc_guard_reap(void);
void wc_guard_after_fork(void);
/* This library's path as loaded, or NULL (guard.c; async-signal-safe). */
const char *wc_lib_path(void);
/* Replay dead processes' backing files before the program runs (guard.c
 * invariant (9)). */
void wc_guard_replay_dead(void);
/* Before a cache is made: 0, or -errno (EPERM, ENOSYS) when a seccomp
 * filter refuses a call the guard's start needs, so that no guard could
 * replay the cache: then no cache is made (guard.c invariant (8)). */
int wc_guard_refused(void);
/* System call nr asked with arguments the kernel rejects (nothing made,
 * read or written): -EPERM or -ENOSYS when a seccomp filter refused it
 * first, else 0 (guard.c (8), io.c (7)). */
long wc_call_refused(long nr, long a, long b);

/* Is the fault handler installed (a cache was opened in this image, or
 * wc_fault_ensure asked for it)? */
extern WC_LOCAL volatile int wc_fault_ready;
/* Install it without a cache, to read the program's memory without
 * faulting (shared.c invariant (7)); under the lock wc_cache_get makes
 * the cache with. Returns 1 when it is there. Caller holds no lock. */
int wc_fault_ensure(void);

/* Restore errno to `e` and return -1 when r < 0 (r = -errno). */
static inline long wc_ret(long r)
{
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* The same for a wrapper that did shim work: success gives the program
 * back the errno it had at the call (`saved`), whatever the shim's and
 * the engine's own calls left in it (a probe that faulted, a fallback
 * after EOPNOTSUPP, a flush). CONTRACT section 2: success leaves errno
 * alone. */
static inline long wc_ret_keep(long r, int saved)
{
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    errno = saved;
    return r;
}

/* The next definition of `name` (dlsym RTLD_NEXT), looked up at its first
 * use and kept in *slot (real.c): for the rare calls that have no place
 * in the table of wcache/sys.h, whose every entry start-up pays for. */
void *wc_next_fn(void **slot, const char *name);
#define WC_NEXT(type, name)                                                \
    ({                                                                     \
        static void *slot_;                                                \
        (type)wc_next_fn(&slot_, #name);                                   \
    })

#endif /* WCACHE_SHIM_H */
