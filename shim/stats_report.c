/*
 * stats_report.c - WCACHE_STATS: what the process's cache did, printed or
 * written at the end of each process image (exit, exec), and the wcache
 * command's raw per-process records (WCACHE_STATS_RAW). The reasons why
 * writes were not cached are counted in stats.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/ucopy.h"

/* Append buf[0..n) to `path` (O_APPEND: one write per record, so the
 * records of concurrent processes do not mix), made if `create`. In a
 * window (ownfd.c invariant (7)): the image's end (exit, an exec) may
 * find other threads running, and the descriptor takes the lowest free
 * number for that time. */
static void stats_append(const char *path, const char *buf, size_t n,
                         int create)
{
    wc_fd_window_open(0);
    int fd = wc_k_openat(AT_FDCWD, path,
                         O_WRONLY | O_APPEND | O_CLOEXEC |
                             (create ? O_CREAT : 0), 0600);
    int e = errno;
    if (fd >= 0) {
        wc_k_write(fd, buf, n);
        wc_k_close(fd);
    }
    wc_fd_window_close();
    if (fd < 0 && (create || e != ENOENT))
        wc_log(WC_LOG_WARN, "statistics: cannot open %s: %s", path,
               strerror(e));
}

/* Append formatted text to buf (size sizeof buf), advancing n, cut at the
 * end of buf. */
#define OUT(...)                                                           \
    do {                                                                   \
        int k_ = snprintf(buf + n, sizeof buf - n, __VA_ARGS__);           \
        if (k_ > 0)                                                        \
            n = n + (size_t)k_ < sizeof buf ? n + (size_t)k_               \
                                            : sizeof buf - 1;              \
    } while (0)

/* The wcache command's record of this process image (WCACHE_STATS_RAW):
 * "key=value..." then "|reason=count" for writes not cached. */
static void stats_raw(const struct wc_stats *s)
{
    char buf[2048];
    size_t n = 0;
    OUT("pid=%d processes=1 files=%llu writes=%llu bytes=%llu "
        "wb_calls=%llu through=%llu wb_bytes=%llu faults=%llu errors=%llu "
        "evictions=%llu store_full=%llu wb_background=%llu reserve=%llu",
        (int)getpid(),
        (unsigned long long)wc_stats_files(),
        (unsigned long long)s->writes, (unsigned long long)s->bytes,
        (unsigned long long)s->wb_calls, (unsigned long long)s->through,
        (unsigned long long)s->wb_bytes, (unsigned long long)s->faults,
        (unsigned long long)s->errors, (unsigned long long)s->evictions,
        (unsigned long long)s->store_full,
        (unsigned long long)s->wb_background,
        (unsigned long long)__atomic_load_n(&wc_reserve_calls,
                                            __ATOMIC_RELAXED));
    for (int i = 0; i < WC_WHY_COUNT; i++)
        OUT(" flush_%s=%llu", wc_reason_names[i],
            (unsigned long long)s->flushes[i]);
    n += wc_nc_format_raw(buf + n, sizeof buf - n - 1);
    buf[n++] = '\n';
    /* The command made the file and removes it once its summary is out:
     * a descendant that outlives it has no summary to join, and must not
     * make the file again (probe AA F13: one left in /tmp per such run). */
    stats_append(wc_cfg.stats_raw, buf, n, 0);
}

WC_ONCE
void wc_stats_report(struct wc_cache *c)
{
    if (!wc_cfg.stats && !wc_cfg.stats_raw[0])
        return;
    struct wc_stats s = {0};
    if (c)
        wc_cache_stats(c, &s);
    if (wc_cfg.stats_raw[0])
        stats_raw(&s);
    if (!wc_cfg.stats || (!s.writes && !s.through && !wc_nc_total()))
        return;         /* a process that wrote nothing: no lines */
    char buf[2048];
    size_t n = 0;
    uint64_t rsv = __atomic_load_n(&wc_reserve_calls, __ATOMIC_RELAXED);
    uint64_t issued = s.wb_calls + s.through + rsv;
    uint64_t avoided = s.writes > s.wb_calls + rsv
                           ? s.writes - s.wb_calls - rsv : 0;
    OUT("wcache[%d]: %llu writes absorbed (%llu bytes); system calls: "
        "%llu issued (%llu write-back, %llu written through, %llu offset "
        "reservations), %llu avoided; %llu bytes written back (%llu "
        "batches by the flusher thread)\n", (int)getpid(),
        (unsigned long long)s.writes, (unsigned long long)s.bytes,
        (unsigned long long)issued, (unsigned long long)s.wb_calls,
        (unsigned long long)s.through, (unsigned long long)rsv,
        (unsigned long long)avoided,
        (unsigned long long)s.wb_bytes, (unsigned long long)s.wb_background);
    OUT("wcache[%d]: flushes:", (int)getpid());
    for (int i = 0; i < WC_WHY_COUNT; i++)
        OUT(" %s %llu", wc_reason_names[i],
            (unsigned long long)s.flushes[i]);
    OUT("; faults retried %llu; write-back errors %llu; evictions %llu; "
        "store full %llu\n", (unsigned long long)s.faults,
        (unsigned long long)s.errors, (unsigned long long)s.evictions,
        (unsigned long long)s.store_full);
    n += wc_nc_format(buf + n, sizeof buf - n);
    if (wc_cfg.stats == 2)
        stats_append(wc_cfg.stats_path, buf, n, 1);
    else
        wc_k_write(2, buf, n);
}
#undef OUT

