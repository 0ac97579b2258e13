/*
 * stats.c - why writes were not cached, for WCACHE_STATS: a run that
 * gained nothing says why.
 *
 * Counted only when WCACHE_STATS is set (one load and a branch otherwise,
 * on the pass-through path only; the cached hot path never comes here).
 * The per-descriptor states also carry the descriptors open since
 * start-up that nothing has looked at yet (WC_NC_START, zero, as mmap
 * gives them): with WCACHE_INHERITED=1 such a descriptor is adopted at its
 * first write (shared.c), not at start-up, so a process that never writes
 * to its inherited files sets nothing up for them.
 *
 * Invariants:
 *   (1) wc_fd_bytes[fd] is the reason recorded for an untracked descriptor,
 *       NC_UNKNOWN, or NC_START for a number no interposed call has opened,
 *       closed or duplicated onto since start-up; opened(), close and dup
 *       reset or copy it, so a reason never outlives its descriptor
 *       number. An unknown descriptor is classified once, at its first
 *       write, from what the kernel says of it (fstat, F_GETFL, fstatfs,
 *       its path).
 *   (1b) NC_START leaves that state once, by a compare-and-swap: one
 *       thread adopts the descriptor; a write that meets it in a nested
 *       call (a signal handler inside the shim) passes through and leaves
 *       it for the next write.
 *   (1c) With WCACHE_INHERITED=0 the same first write makes the file of
 *       a writable regular one pass through for good instead
 *       (wc_fd_refuse): its writes reach the kernel at once, so no other
 *       description of the file may cache.
 *   (1d) While some file is cached, the first read (or lseek) through a
 *       descriptor still NC_START takes it in as its first write would
 *       (wc_fd_take_in; a read-only one is tracked as if opened here), so
 *       that its reads see the bytes cached through another descriptor of
 *       the file (`prog 3<>f 4>&3 5<f`). One not taken in (not a regular
 *       file: a pipe, a terminal) is NC_UNKNOWN from then on (looked at
 *       once).
 *   (2) wc_fd_bytes's bytes are read and written with relaxed atomics (threads
 *       close and write different and the same numbers at once).
 *   (3) Counters are process-wide relaxed atomics: exact once every
 *       thread has left the shim (exit), approximate before.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"

WC_BOOT int wc_nc_on;               /* the reasons are kept, in wc_fd_bytes */
WC_BOOT int wc_nc_counting;                          /* WCACHE_STATS is set */
WC_BOOT static unsigned g_own_hi;    /* every WC_NC_START_OWN fd is below it */
static uint64_t g_count[WC_NC_COUNT];          /* writes, by reason */
WC_BOOT static uint64_t g_files;               /* files brought into the
                                                  cache (atomic) */

static const char *const nc_names[WC_NC_COUNT] = {
    [WC_NC_START] = "open since start-up",
    [WC_NC_START_OWN] = "open since start-up, this process's alone",
    [WC_NC_UNKNOWN] = "unknown",
    [WC_NC_NOT_REGULAR] = "not a regular file",
    [WC_NC_PSEUDO] = "/proc, /sys and the like",
    [WC_NC_DIRECT] = "O_DIRECT or O_SYNC (or a sync mount, chattr +S)",
    [WC_NC_EXCLUDED] = "excluded by WCACHE_INCLUDE/EXCLUDE",
    [WC_NC_MAPPED] = "file mapped",
    [WC_NC_STDIO] = "stdio stream (fopen, fdopen)",
    [WC_NC_INHERITED] = "inherited and refused (O_APPEND, WCACHE_INHERITED=0)",
    [WC_NC_SHARED] = "O_APPEND shared with stdio or another process",
    [WC_NC_THROUGH] = "file passes through (mmap, fopen, O_DIRECT of it)",
    [WC_NC_READONLY] = "not open for writing",
    [WC_NC_NOCACHE] = "no cache (could not be created)",
    [WC_NC_FEW] = "a file's first writes (WCACHE_MIN_WRITES)",
    [WC_NC_SETUP] = "the process's first writes, cheaper than making a "
                    "cache (WCACHE_SETUP_US)",
    [WC_NC_FUTILE] = "caching the file gains nothing (its writes cost "
                     "a system call each all the same: at least "
                     "WCACHE_BYPASS, written back at every lock, or "
                     "scattered)",
    [WC_NC_SETID] = "set-user-ID or set-group-ID file (a write clears "
                    "the bit)",
    [WC_NC_LARGE] = "writes of 8 KiB or more (one system call either "
                    "way)",
};

void wc_stats_file_cached(void)
{
    __atomic_add_fetch(&g_files, 1, __ATOMIC_RELAXED);
}

WC_ONCE
void wc_stats_after_fork(void)
{
    for (unsigned i = 0; i < WC_NC_COUNT; i++)
        WC_RESET(g_count[i], 0);
    WC_RESET(g_files, 0);
}

uint64_t wc_stats_files(void)
{
    return __atomic_load_n(&g_files, __ATOMIC_RELAXED);
}

WC_ONCE
void wc_nc_init(void)
{
    wc_nc_counting = wc_cfg.stats || wc_cfg.stats_raw[0];
    if (wc_nc_on || !wc_fd_bytes) {
        wc_exec_own_take(NULL, 0);      /* forget it all the same */
        return;
    }
    wc_nc_on = 1;
    g_own_hi = wc_exec_own_take(wc_fd_bytes, WC_NC_START_OWN);
}

WC_ONCE
void wc_nc_shared_all(void)
{
    if (!__atomic_load_n(&g_own_hi, __ATOMIC_RELAXED))
        return;     /* not written: a fault in the parent after each fork */
    unsigned hi = __atomic_exchange_n(&g_own_hi, 0, __ATOMIC_RELAXED);
    for (unsigned fd = 0; fd < hi; fd++)
        if (__atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED) == WC_NC_START_OWN)
            __atomic_store_n(&wc_fd_bytes[fd], WC_NC_START, __ATOMIC_RELAXED);
}

unsigned wc_nc_own_hi(void)
{
    return __atomic_load_n(&g_own_hi, __ATOMIC_RELAXED);
}

int wc_nc_own(int fd)
{
    return wc_nc_on && fd >= 0 && (unsigned)fd < wc_nfds &&
           __atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED) == WC_NC_START_OWN;
}

WC_HOT
void wc_nc_mark(int fd, int why)
{
    /* Stored only where it changes (a page written in every fork cycle
     * of a shell is a copy-on-write fault after each fork). */
    if (wc_nc_on && fd >= 0 && (unsigned)fd < wc_nfds &&
        __atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED) != (unsigned char)why)
        __atomic_store_n(&wc_fd_bytes[fd], (unsigned char)why, __ATOMIC_RELAXED);
}

void wc_nc_dup(int oldfd, int newfd)
{
    if (wc_nc_on && oldfd >= 0 && newfd >= 0 && (unsigned)oldfd < wc_nfds &&
        (unsigned)newfd < wc_nfds) {
        unsigned char why = __atomic_load_n(&wc_fd_bytes[oldfd], __ATOMIC_RELAXED);
        /* Two numbers for one description the shim does not track yet:
         * each would be adopted on its own, and two descriptions with
         * offsets of their own would write over each other's bytes (a
         * shell's `echo x >&3`, dup2(3, 1) and back, after an exec). Both
         * are adopted as shared ones (shared.c: the kernel's offset kept
         * exact), as descriptions another process holds are. */
        if (why == WC_NC_START_OWN) {
            why = WC_NC_START;
            unsigned char own = WC_NC_START_OWN;
            __atomic_compare_exchange_n(&wc_fd_bytes[oldfd], &own, why, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&wc_fd_bytes[newfd], why, __ATOMIC_RELAXED);
    }
}

/* Why is `fd`, which the shim does not track, not cached? */
static int classify(int fd)
{
    int e = errno;
    struct stat st;
    int why = WC_NC_NOT_REGULAR;
    int fl = wc_k_fcntl(fd, F_GETFL, 0);
    if (fl < 0 || wc_k_fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    char path[4096];
    ssize_t n = wc_fd_path(fd, path, sizeof path);
    if ((fl & O_ACCMODE) == O_RDONLY)
        why = WC_NC_READONLY;
    else if ((fl & (O_DIRECT | O_SYNC | O_DSYNC)) ||
             wc_fd_sync_writes(fd))
        why = WC_NC_DIRECT;
    else if (!strncmp(path, "/proc/", 6) || !strncmp(path, "/sys/", 5))
        why = WC_NC_PSEUDO;
    else if (wc_mapped_has(st.st_dev, st.st_ino))
        why = WC_NC_MAPPED;
    else if (n > 0 && !wc_env_path_ok(AT_FDCWD, path))
        why = WC_NC_EXCLUDED;
    else if (!wc_cachep)
        why = WC_NC_NOCACHE;
    else
        why = WC_NC_STDIO;       /* a regular file the program did not
                                    open through an interposed call */
out:
    errno = e;
    return why;
}

struct wc_desc *wc_nc_untracked(int fd)
{
    int why = WC_NC_NOT_REGULAR;
    if (fd >= 0 && (unsigned)fd < wc_nfds) {
        why = __atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED);
        unsigned char start = (unsigned char)why;
        if ((why == WC_NC_START || why == WC_NC_START_OWN) &&
            wc_state == WC_ST_ON && !wc_depth &&
            __atomic_compare_exchange_n(&wc_fd_bytes[fd], &start, WC_NC_UNKNOWN,
                                        0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            if (!wc_cfg.inherited) {
                wc_fd_refuse(fd);                              /* (1c) */
            } else if (wc_fd_adopt(fd, why == WC_NC_START_OWN, NULL)) {
                /* (1b) */
                struct wc_desc *d = wc_fd_get(fd);
                if (d)
                    return d;
            }
            why = __atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED);
        }
        if (!wc_nc_counting)
            return NULL;
        if (why == WC_NC_START_OWN)
            why = WC_NC_START;
        if (why == WC_NC_START || why == WC_NC_UNKNOWN) {
            int k = classify(fd);
            /* A regular file open since start-up, left uncached. */
            if (why == WC_NC_START && (k == WC_NC_STDIO || k == WC_NC_NOCACHE))
                k = WC_NC_INHERITED;
            if (why == WC_NC_UNKNOWN)
                __atomic_store_n(&wc_fd_bytes[fd], (unsigned char)k,
                                 __ATOMIC_RELAXED);
            why = k;
        }
    }
    if (wc_nc_counting)
        __atomic_add_fetch(&g_count[why], 1, __ATOMIC_RELAXED);
    return NULL;
}

struct wc_desc *wc_nc_untracked_read(int fd)
{
    if (fd < 0 || (unsigned)fd >= wc_nfds || wc_state != WC_ST_ON ||
        wc_depth)
        return NULL;
    unsigned char start = __atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED);
    if ((start != WC_NC_START && start != WC_NC_START_OWN) ||
        !__atomic_compare_exchange_n(&wc_fd_bytes[fd], &start, WC_NC_UNKNOWN, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return NULL;
    wc_fd_take_in(fd, start == WC_NC_START_OWN);               /* (1d) */
    return wc_fd_get(fd);
}

/* Why a tracked description's write went to the kernel. */
static int through_reason(const struct wc_desc *d)
{
    if (d->mode != WC_D_WATCH)          /* THROUGH */
        return d->shared || d->append ? WC_NC_SHARED : WC_NC_THROUGH;
    if (d->accmode == O_RDONLY)
        return WC_NC_READONLY;
    if (d->writes == WC_WRITES_NOT_REGULAR)
        return WC_NC_NOT_REGULAR;
    if (d->writes == WC_WRITES_SETID)
        return WC_NC_SETID;
    if (d->writes == WC_WRITES_SYNC)
        return WC_NC_DIRECT;
    if (d->writes < 0)
        return WC_NC_PSEUDO;
    if ((d->shared || d->stdio) && d->append)
        return WC_NC_SHARED;            /* would pass through when adopted */
    if (wc_mapped_has(d->dev, d->ino))
        return WC_NC_MAPPED;
    if (d->backoff)
        return WC_NC_FUTILE;
    /* Past its first writes, a file that would be cached but for the
     * cache (probe AA F10: all of them were "a file's first writes"). */
    if (!__atomic_load_n(&wc_cachep, __ATOMIC_RELAXED) && wc_cache_failed())
        return WC_NC_NOCACHE;
    if (d->rent && !__atomic_load_n(&wc_cachep, __ATOMIC_RELAXED))
        return WC_NC_SETUP;             /* fdtab.c invariant (6b) */
    return WC_NC_FEW;
}

void wc_nc_count_through(int fd, struct wc_desc *d, size_t n)
{
    if (d->ino == 0)
        wc_ident_locked(fd, d);     /* a FIFO's reason: not regular */
    int why = through_reason(d);
    /* Not a file's first writes: no number of them would cache these
     * (probe AD F7: --stats sent users to WCACHE_MIN_WRITES). */
    if (why == WC_NC_FEW && n >= WC_LARGE_WRITE)
        why = WC_NC_LARGE;
    __atomic_add_fetch(&g_count[why], 1, __ATOMIC_RELAXED);
}

void wc_nc_published(void)
{
    for (int i = 0; i < WC_NC_COUNT; i++)
        __atomic_store_n(&g_count[i], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&wc_reserve_calls, 0, __ATOMIC_RELAXED);
}

uint64_t wc_nc_total(void)
{
    uint64_t total = 0;
    for (int i = 0; i < WC_NC_COUNT; i++)
        total += __atomic_load_n(&g_count[i], __ATOMIC_RELAXED);
    return total;
}

size_t wc_nc_format(char *buf, size_t cap)
{
    size_t n = 0;
    uint64_t total = wc_nc_total();
    int k = snprintf(buf, cap, "wcache[%d]: %llu writes passed through "
                     "uncached", (int)getpid(), (unsigned long long)total);
    if (k > 0)
        n = (size_t)k < cap ? (size_t)k : cap - 1;
    const char *sep = ": ";
    for (int i = 0; i < WC_NC_COUNT && n < cap; i++) {
        uint64_t c = __atomic_load_n(&g_count[i], __ATOMIC_RELAXED);
        if (!c)
            continue;
        k = snprintf(buf + n, cap - n, "%s%s %llu", sep, nc_names[i],
                     (unsigned long long)c);
        sep = ", ";
        if (k > 0)
            n = n + (size_t)k < cap ? n + (size_t)k : cap - 1;
    }
    if (n + 1 < cap) {
        buf[n++] = '\n';
        buf[n] = 0;
    }
    return n;
}

size_t wc_nc_format_raw(char *buf, size_t cap)
{
    size_t n = 0;
    for (int i = WC_NC_UNKNOWN + 1; i < WC_NC_COUNT && n < cap; i++) {
        uint64_t c = __atomic_load_n(&g_count[i], __ATOMIC_RELAXED);
        if (!c)
            continue;
        int k = snprintf(buf + n, cap - n, "|%s=%llu", nc_names[i],
                         (unsigned long long)c);
        if (k > 0)
            n = n + (size_t)k < cap ? n + (size_t)k : cap - 1;
    }
    return n;
}

WC_HOT
void wc_debug_fd(int fd, const char *path, const char *how)
{
    if (wc_cfg.log_level < WC_LOG_DEBUG || fd < 0)
        return;
    static const char *const modes[] = {
        [WC_D_FREE] = "free", [WC_D_WATCH] = "watched, not cached yet",
        [WC_D_CACHED] = "cached", [WC_D_THROUGH] = "passes through",
        [WC_D_RESERVE] = "cached, offset reserved in the kernel",
    };
    struct wc_desc *d = wc_fd_get(fd);
    if (d) {
        int ro = d->mode == WC_D_WATCH && d->accmode == O_RDONLY;
        int guard = __atomic_load_n(&d->guard, __ATOMIC_RELAXED) &&
                    (d->mode == WC_D_WATCH || d->mode == WC_D_CACHED);
        wc_log(WC_LOG_DEBUG, "fd %d (%s, %s): %s%s%s", fd, path ? path : "?",
               how, ro ? "read-only, watched" : modes[d->mode],
               d->shared ? ", shared with another process" : "",
               guard ? ", its offset its own until stdio writes there" : "");
        return;
    }
    int why = (unsigned)fd < wc_nfds && wc_nc_on
                  ? __atomic_load_n(&wc_fd_bytes[fd], __ATOMIC_RELAXED)
                  : WC_NC_UNKNOWN;
    if (why == WC_NC_UNKNOWN || why == WC_NC_START)
        why = classify(fd);
    wc_log(WC_LOG_DEBUG, "fd %d (%s, %s): not cached: %s", fd,
           path ? path : "?", how, nc_names[why]);
}
