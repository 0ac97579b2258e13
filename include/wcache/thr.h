/*
 * thr.h - the engine's per-thread words, in one object.
 *
 * The write path reads and writes five of them at every call; separate
 * initial-exec variables each took their own offset from the GOT (two
 * instructions an access), one object takes one. The names stay those of
 * the variables they were (macros).
 */
#ifndef WCACHE_THR_H
#define WCACHE_THR_H

#include <stdint.h>

struct wc_file;

/*   in_engine  wc_in_engine: inside a public entry point (enter.h)
 *   wip_end    wc_wip_end: where the thread's last completed write ended
 *              (its start plus its count), set by the engine before it
 *              stops marking the write as in flight (-1 from the write's
 *              start: the write commits when it is set). A caller that
 *              keeps its own offset sets it to -1 before a write: a child
 *              made after a signal handler's _exit interrupted the caller
 *              between the engine's return and its own bookkeeping can
 *              then tell that the write did happen, and where it ended
 *              (shim/io.c)
 *   wip_size, wip_file   the write in flight's file and its size before
 *              it (write.c: a child writing back takes the size back)
 *   futile     wc_futile: set by a write (never cleared by the engine)
 *              when the file it wrote has cost about one system call per
 *              operation over the engine's last window of them
 *              (cache_int.h, WC_GAIN_OPS): caching it gains nothing.
 *              Reported once per file; the caller clears it, and may take
 *              the file out of the cache (wc_file_settle, then put every
 *              reference) */
struct wc_engine_thr {
    int in_engine;
    int64_t wip_end;
    uint64_t wip_size;
    struct wc_file *wip_file;
    struct wc_file *futile;
};
extern __thread struct wc_engine_thr wc_ethr
    __attribute__((tls_model("initial-exec")));

#define wc_in_engine (wc_ethr.in_engine)
#define wc_wip_end (wc_ethr.wip_end)
#define wc_wip_size (wc_ethr.wip_size)
#define wc_wip_file (wc_ethr.wip_file)
#define wc_futile (wc_ethr.futile)

#endif /* WCACHE_THR_H */
