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

struct wc_engine_thr {
    int in_engine;              /* enter.h: inside a public entry point */
    int64_t wip_end;            /* write.c: the write in flight, */
    uint64_t wip_size;          /* the size before it, */
    struct wc_file *wip_file;   /* its file */
    struct wc_file *futile;     /* cache.h: a file caching gains nothing */
};
extern __thread struct wc_engine_thr wc_ethr
    __attribute__((tls_model("initial-exec")));

#define wc_in_engine (wc_ethr.in_engine)
#define wc_wip_end (wc_ethr.wip_end)
#define wc_wip_size (wc_ethr.wip_size)
#define wc_wip_file (wc_ethr.wip_file)
#define wc_futile (wc_ethr.futile)

#endif /* WCACHE_THR_H */
