/*
 * test_cache_order.c - the order, shape and failure handling of write-back,
 * observed by recording the real calls through the wc_sys table.
 *
 * CONTRACT.md points covered:
 *   6      data before metadata (an extending ftruncate comes after the data
 *          below it); ascending offsets within a flush; coalescing into
 *          pwritev calls of at most IOV_MAX segments; never past i_size;
 *          exactly the bytes written (holes stay holes); write-back through
 *          the cache's own descriptor
 *   4      a write-back error keeps the data cached, is returned by the
 *          flush, reported by the next fsync once; short write-backs are
 *          resumed (SQLite's do_ioerr_test loop: fail call N for N = 1, 2,
 *          ... until a flush succeeds without an injected failure)
 *   3      fsync: data written, then the real fsync
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib_cache.h"

TestSuite(order, .init = wct_setup, .fini = wct_teardown, .timeout = 90);

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Write-back calls on the target, in order, must be ascending within the
 * span [from, to) of the log. */
static void assert_ascending(int from, int to, const char *what)
{
    off_t end = -1;
    for (int i = from; i < to; i++) {
        struct wct_call *k = &wct_calls[i];
        if (!(k->op & (WCT_PWRITE | WCT_PWRITEV)))
            continue;
        cr_assert_geq(k->off, end, "%s: call #%d at %lld goes back below %lld:%s",
                      what, i, (long long)k->off, (long long)end, wct_rec_dump());
        end = k->off + (off_t)k->len;
    }
}

Test(order, coalesced_ascending_writeback)
{
    struct wc_cache *c = wct_cache_open(2048 * WCT_PG);
    int fd = wct_create("co", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    wct_rec_start(fd);
    /* 1 MiB in 100-byte writes, the pages in a shuffled order (the
     * dirty list is unordered: neither ascending nor descending input may
     * pass by luck), so the cache must sort */
    unsigned char b[100];
    size_t total = 1 << 20;
    long npg = (long)(total / 4096);
    for (long k = 0; k < npg; k++)
        for (size_t o = 0, pg = (size_t)((k * 37 + 11) % npg); o < 4096;
             o += 100) {
            size_t n = o + 100 <= 4096 ? 100 : 4096 - o;
            off_t pos = pg * 4096 + (off_t)o;
            wct_pattern(b, n, pos, 1);
            cr_assert_eq(wc_pwrite(f, b, n, pos, 0, NULL), (ssize_t)n);
        }
    cr_assert_eq(wct_count(WCT_WRITEBACK), 0, "write-back before the flush:%s",
                 wct_rec_dump());
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
    int calls = wct_count(WCT_PWRITE | WCT_PWRITEV);
    size_t bytes = 0;
    for (int i = 0; i < wct_ncalls; i++) {
        struct wct_call *k = &wct_calls[i];
        if (!(k->op & (WCT_PWRITE | WCT_PWRITEV)))
            continue;
        cr_assert_leq(k->iovcnt, IOV_MAX);
        cr_assert_neq(k->fd, fd, "write-back through the program's descriptor");
        bytes += k->len;
    }
    cr_assert_eq(bytes, total, "bytes written back: %zu of %zu", bytes, total);
    cr_assert_leq(calls, 4, "1 MiB of adjacent data took %d calls:%s", calls,
                  wct_rec_dump());
    assert_ascending(0, wct_ncalls, "1 MiB flush");
    cr_assert_eq(wct_count(WCT_FTRUNCATE), 0, "an ftruncate that was not needed:%s",
                 wct_rec_dump());
    wct_rec_stop();
    size_t n;
    unsigned char *d = wct_read_path(wct_path("co"), &n), *want = malloc(total);
    wct_pattern(want, total, 0, 1);
    cr_assert_eq(n, total);
    cr_assert_eq(wct_diff(d, want, n), -1);
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Many separate ranges: more than IOV_MAX of them, all in one file. */
Test(order, more_ranges_than_iov_max)
{
    /* dirty threshold above the data: one flush, the explicit one */
    struct wc_config cfg = {.size = 4096 * WCT_PG, .dirty = 4096 * WCT_PG};
    struct wc_cache *c = wct_cache_open_cfg(&cfg);
    int fd = wct_create("many", 3000 * 4096, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    wct_rec_start(fd);
    for (int i = 2999; i >= 0; i--) {
        cr_assert_eq(wc_pwrite(f, "ab", 2, (off_t)i * 4096 + 7, 0, NULL), 2);
        cr_assert_eq(wc_pwrite(f, "cd", 2, (off_t)i * 4096 + 3000, 0, NULL), 2);
    }
    cr_assert_eq(wct_count(WCT_WRITEBACK), 0, "write-back before the flush "
                 "(dirty threshold = cache size)");
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
    size_t bytes = 0;
    for (int i = 0; i < wct_ncalls; i++)
        if (wct_calls[i].op & (WCT_PWRITE | WCT_PWRITEV)) {
            cr_assert_leq(wct_calls[i].iovcnt, IOV_MAX);
            bytes += wct_calls[i].len;
        }
    cr_assert_eq(bytes, 4 * 3000, "written back %zu bytes; the program wrote %d:%s",
                 bytes, 4 * 3000, wct_rec_dump());
    assert_ascending(0, wct_ncalls, "6000 ranges");
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Data before size: the data below a size change reaches the file before
 * the ftruncate that exposes it; no ftruncate when the data itself sets the
 * size. */
Test(order, data_before_size)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("ds", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    wct_rec_start(fd);
    unsigned char b[8192];
    wct_pattern(b, sizeof b, 0, 2);
    cr_assert_eq(wc_pwrite(f, b, sizeof b, 0, 0, NULL), (ssize_t)sizeof b);
    cr_assert_eq(wc_file_truncate(f, 100000), 0);
    cr_assert_eq(wc_pwrite(f, "end", 3, 50000, 0, NULL), 3);
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
    int first_extend = -1, last_data_below = -1;
    for (int i = 0; i < wct_ncalls; i++) {
        struct wct_call *k = &wct_calls[i];
        if (k->op == WCT_FTRUNCATE && k->off > 8192 && first_extend < 0)
            first_extend = i;
        if ((k->op & (WCT_PWRITE | WCT_PWRITEV)) && k->off < 8192)
            last_data_below = i;
    }
    cr_assert_geq(last_data_below, 0, "the data at 0 was never written:%s", wct_rec_dump());
    cr_assert(first_extend < 0 || first_extend > last_data_below,
              "ftruncate extending the file came before the data it exposes:%s",
              wct_rec_dump());
    size_t n;
    unsigned char *d = wct_read_path(wct_path("ds"), &n);
    cr_assert_eq(n, 100000);
    cr_assert_eq(wct_diff(d, b, sizeof b), -1);
    cr_assert_eq(memcmp(d + 50000, "end", 3), 0);
    free(d);
    /* plain writes past EOF: the data sets the size, no ftruncate at all */
    wct_rec_reset();
    cr_assert_eq(wc_pwrite(f, "x", 1, 300000, 0, NULL), 1);
    cr_assert_eq(wc_pwrite(f, "y", 1, 200000, 0, NULL), 1);
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
    cr_assert_eq(wct_count(WCT_FTRUNCATE), 0, "ftruncate not needed:%s", wct_rec_dump());
    assert_ascending(0, wct_ncalls, "two writes past EOF");
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 300001);
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Never past i_size, and zeros are never written: holes stay holes. */
Test(order, never_past_isize_holes_stay_holes)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("ps", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    wct_rec_start(fd);
    unsigned char b[8192];
    wct_pattern(b, sizeof b, 0, 3);
    /* A small write first: a page or more to a clean file would go
     * straight to the kernel (write.c, WC_DIRECT_MIN), not into the cache. */
    cr_assert_eq(wc_pwrite(f, b, 100, 0, 0, NULL), 100);
    cr_assert_eq(wc_pwrite(f, b + 100, sizeof b - 100, 100, 0, NULL),
                 (ssize_t)sizeof b - 100);
    cr_assert_eq(wc_file_truncate(f, 5000), 0);
    cr_assert_eq(wc_file_truncate(f, 8192), 0);
    cr_assert_eq(wc_pwrite(f, "z", 1, 20000, 0, NULL), 1);
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
    for (int i = 0; i < wct_ncalls; i++) {
        struct wct_call *k = &wct_calls[i];
        if (!(k->op & (WCT_PWRITE | WCT_PWRITEV)))
            continue;
        off_t lo = k->off, hi = k->off + (off_t)k->len;
        int below = hi <= 5000;
        int the_z = lo == 20000 && hi == 20001;
        cr_assert(below || the_z || (lo < 5000 && hi <= 5000),
                  "wrote [%lld, %lld): dropped bytes or fill zeros written back:%s",
                  (long long)lo, (long long)hi, wct_rec_dump());
    }
    wct_rec_stop();
    size_t n;
    unsigned char *d = wct_read_path(wct_path("ps"), &n);
    cr_assert_eq(n, 20001);
    cr_assert_eq(wct_diff(d, b, 5000), -1);
    for (size_t i = 5000; i < 20000; i++)
        cr_assert_eq(d[i], 0, "byte %zu", i);
    free(d);
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* ---- failing the Nth write-back call -------------------------------------- */

/* Dirty data that a flush writes in several calls: 1100 adjacent pages
 * (more segments than IOV_MAX: two pwritev calls at least), then a few
 * ranges apart from each other and from it. */
static void dirty_up(struct wc_file *f, unsigned char *model, size_t *msize)
{
    unsigned char b[4096];
    for (off_t pos = 4096; pos < 1101 * 4096; pos += 4096) {
        wct_pattern(b, sizeof b, pos, 5);
        cr_assert_eq(wc_pwrite(f, b, sizeof b, pos, 0, NULL), (ssize_t)sizeof b);
        memcpy(model + pos, b, sizeof b);
    }
    for (int i = 0; i < 5; i++) {
        off_t pos = (off_t)(1200 + 50 * i) * 4096 + 100 * i;
        wct_pattern(b, 300, pos, 6);
        cr_assert_eq(wc_pwrite(f, b, 300, pos, 0, NULL), 300);
        memcpy(model + pos, b, 300);
        *msize = (size_t)pos + 300;
    }
}

static void fail_nth(int err, int sync_reports)
{
    size_t cap = 1600 * 4096;
    unsigned char *model = calloc(1, cap), *view = malloc(cap + 4096);
    int n;
    for (n = 1; n < 64; n++) {
        char what[96];
        snprintf(what, sizeof what, "write-back call %d fails with %s", n,
                 strerrorname_np(err));
        wct_watchdog(20, what);
        struct wc_cache *c = wct_cache_open(4096 * WCT_PG);
        char name[32];
        snprintf(name, sizeof name, "n%d", n);
        int fd = wct_create(name, 0, 1, O_RDWR);
        struct wc_file *f = wct_get(c, fd);
        size_t msize = 0;
        memset(model, 0, cap);
        dirty_up(f, model, &msize);
        wct_rec_start(fd);
        wct_inject_fail(WCT_WRITEBACK, n, err);
        int r = wc_file_flush(f, WC_WHY_OTHER);
        int fired = wct_injected();
        if (!fired) {
            cr_assert_eq(r, 0, "%s: no failure injected, yet flush returned %d", what, r);
            wct_rec_stop();
            cr_assert_eq(wc_file_put(f), 0);
            close(fd);
            cr_assert_eq(wc_cache_close(c), 0);
            break;
        }
        cr_assert_eq(r, -err, "%s: wc_file_flush returned %d:%s", what, r, wct_rec_dump());
        wct_inject_fail(0, 0, 0);
        /* the data is still there for the program */
        ssize_t got = wc_pread(f, fd, view, cap + 4096, 0);
        cr_assert_eq(got, (ssize_t)msize, "%s: read %zd of %zu", what, got, msize);
        long d = wct_diff(view, model, msize);
        cr_assert_eq(d, -1, "%s: byte %ld lost after the failed write-back", what, d);
        cr_assert_eq(wc_file_size(f), (off_t)msize, "%s: size", what);
        if (sync_reports) {
            /* reported once by fsync, then clean; a close after a
             * successful fsync returns 0 (CONTRACT 4: "an fsync that then
             * writes everything successfully clears it (errseq), so a
             * close after it returns 0") */
            int s1 = wc_file_sync(f, 0);
            cr_assert_eq(s1, -err, "%s: first wc_file_sync returned %d", what, s1);
            int s2 = wc_file_sync(f, 0);
            cr_assert_eq(s2, 0, "%s: second wc_file_sync returned %d", what, s2);
            wct_rec_stop();
            int p = wc_file_put(f);
            cr_assert_eq(p, 0, "%s: wc_file_put after a successful fsync: %d", what, p);
        } else {
            /* not reported by fsync: close reports it */
            wct_rec_stop();
            int p = wc_file_put(f);
            cr_assert_eq(p, -err, "%s: wc_file_put returned %d", what, p);
        }
        size_t len;
        unsigned char *disk = wct_read_path(wct_path(name), &len);
        cr_assert_eq(len, msize, "%s: file size %zu, expected %zu", what, len, msize);
        d = wct_diff(disk, model, msize);
        cr_assert_eq(d, -1, "%s: byte %ld wrong on disk after recovery", what, d);
        free(disk);
        close(fd);
        cr_assert_eq(wc_cache_close(c), 0, "%s: wc_cache_close", what);
        unlink(wct_path(name));
    }
    cr_assert_gt(n, 3, "a flush of 1100 pages and 5 ranges took only %d call(s)", n - 1);
    free(model);
    free(view);
}

Test(order, fail_nth_writeback_eio_fsync_reports)
{
    fail_nth(EIO, 1);
}

Test(order, fail_nth_writeback_enospc_close_reports)
{
    fail_nth(ENOSPC, 0);
}

/* A short pwritev is resumed, not taken as done or as an error. */
Test(order, short_writeback_resumed)
{
    for (int n = 1; n <= 3; n++) {
        struct wc_cache *c = wct_cache_open(4096 * WCT_PG);
        char name[16];
        snprintf(name, sizeof name, "sh%d", n);
        int fd = wct_create(name, 0, 1, O_RDWR);
        struct wc_file *f = wct_get(c, fd);
        size_t cap = 1600 * 4096, msize = 0;
        unsigned char *model = calloc(1, cap);
        dirty_up(f, model, &msize);
        wct_rec_start(fd);
        wct_inject_short(WCT_PWRITE | WCT_PWRITEV, n, 1001);
        int r = wc_file_flush(f, WC_WHY_OTHER);
        cr_assert_eq(r, 0, "short write-back %d: flush returned %d:%s", n, r, wct_rec_dump());
        wct_rec_stop();
        size_t len;
        unsigned char *disk = wct_read_path(wct_path(name), &len);
        cr_assert_eq(len, msize);
        cr_assert_eq(wct_diff(disk, model, msize), -1, "short write-back %d: bytes", n);
        free(disk);
        free(model);
        cr_assert_eq(wc_file_put(f), 0);
        close(fd);
        cr_assert_eq(wc_cache_close(c), 0);
    }
}

/* fsync: the data first, then the real fsync; an fsync failure is
 * returned. */
Test(order, sync_writes_then_fsyncs)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("sy", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    cr_assert_eq(wc_pwrite(f, "abc", 3, 10, 0, NULL), 3);
    wct_rec_start(fd);
    cr_assert_eq(wc_file_sync(f, 0), 0);
    int w = -1, s = -1;
    for (int i = 0; i < wct_ncalls; i++) {
        if ((wct_calls[i].op & (WCT_PWRITE | WCT_PWRITEV)) && w < 0)
            w = i;
        if ((wct_calls[i].op & (WCT_FSYNC | WCT_FDATASYNC)) && s < 0)
            s = i;
    }
    cr_assert(w >= 0 && s > w, "expected data then fsync:%s", wct_rec_dump());
    cr_assert_eq(wc_pwrite(f, "d", 1, 0, 0, NULL), 1);
    wct_inject_fail(WCT_FSYNC | WCT_FDATASYNC, 1, EIO);
    cr_assert_eq(wc_file_sync(f, 1), -EIO);
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* A page or more to a file with nothing to write back goes straight to the
 * kernel, at once, in one call (no copy into the cache and out again); a
 * write of the same size to a file with dirty data is cached behind it, so
 * the file's writes stay in program order; cached clean pages in the
 * direct write's range are dropped, so reads see the new bytes. */
Test(order, whole_pages_to_a_clean_file_go_straight_to_the_kernel)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("direct", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    static unsigned char b[3 * WCT_PG], got[3 * WCT_PG];
    wct_pattern(b, sizeof b, 0, 7);
    wct_rec_start(fd);

    cr_assert_eq(wc_pwrite(f, b, WCT_PG, 0, 0, NULL), (ssize_t)WCT_PG);
    cr_assert_eq(wct_count(WCT_PWRITE | WCT_PWRITEV), 1,
                 "a page to a clean file not written at once:%s",
                 wct_rec_dump());
    cr_assert_eq(wc_pwrite(f, b + WCT_PG, 2 * WCT_PG, WCT_PG, 0, NULL),
                 (ssize_t)(2 * WCT_PG));
    cr_assert_eq(wct_count(WCT_PWRITE | WCT_PWRITEV), 2, "%s", wct_rec_dump());

    /* Dirty data first: the next big write is cached behind it. */
    cr_assert_eq(wc_pwrite(f, "small", 5, 10, 0, NULL), 5);
    cr_assert_eq(wc_pwrite(f, b + WCT_PG, WCT_PG, 0, 0, NULL), (ssize_t)WCT_PG);
    cr_assert_eq(wct_count(WCT_PWRITE | WCT_PWRITEV), 2,
                 "a write to a dirty file went around the cache:%s",
                 wct_rec_dump());
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
    memcpy(b, b + WCT_PG, WCT_PG);

    /* Clean again, and page 0 is cached: a direct write over it drops it. */
    cr_assert_eq(wc_pread(f, fd, got, WCT_PG, 0), (ssize_t)WCT_PG);
    memset(b, 'd', WCT_PG);
    cr_assert_eq(wc_pwrite(f, b, WCT_PG, 0, 0, NULL), (ssize_t)WCT_PG);
    cr_assert_eq(wc_pread(f, fd, got, sizeof got, 0), (ssize_t)sizeof got);
    cr_assert_eq(wct_diff(got, b, sizeof b), -1);
    wct_rec_stop();
    size_t n;
    unsigned char *d = wct_read_path(wct_path("direct"), &n);
    cr_assert_eq(n, sizeof b);
    cr_assert_eq(wct_diff(d, b, sizeof b), -1);
    free(d);
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* A stream (pages completed in ascending order at the end of the file) is
 * written back as it goes; rewriting cached data is not a stream and
 * stays in the cache until a flush. */
Test(order, a_stream_is_written_back_early_rewrites_stay_cached)
{
    struct wc_config cfg = {.size = 16 << 20};
    struct wc_cache *c = wct_cache_open_cfg(&cfg);
    int fd = wct_create("stream", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    char rec[64];
    const int span = 768 << 10;             /* 192 pages: > WC_STREAM_PAGES */
    memset(rec, 's', sizeof rec);
    wct_rec_start(fd);
    for (int off = 0; off < span; off += 64)
        cr_assert_eq(wc_pwrite(f, rec, 64, off, 0, NULL), 64);
    cr_assert_gt(wct_count(WCT_PWRITE | WCT_PWRITEV), 0,
                 "a stream of 192 pages stayed in the cache");
    assert_ascending(0, wct_ncalls, "the stream");
    wct_rec_reset();
    for (int pass = 0; pass < 2; pass++) {
        memset(rec, 'a' + pass, sizeof rec);
        for (int off = 0; off < span; off += 64)
            cr_assert_eq(wc_pwrite(f, rec, 64, off, 0, NULL), 64);
    }
    cr_assert_eq(wct_count(WCT_WRITEBACK), 0,
                 "rewrites of cached data were written back early:%s",
                 wct_rec_dump());
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    size_t n;
    unsigned char *d = wct_read_path(wct_path("stream"), &n);
    cr_assert_eq(n, (size_t)span);
    for (size_t i = 0; i < n; i += 4093)
        cr_assert_eq(d[i], 'b', "byte %zu", i);
    free(d);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}
