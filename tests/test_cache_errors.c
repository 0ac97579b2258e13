/*
 * test_cache_errors.c - the error states of a file in the engine
 * (cache/errors.c), with the real calls recorded and failed on purpose:
 *
 *   failed_passes_through   after a write-back error a new write goes to
 *                           the kernel at once; pressure does not retry
 *                           the cached data, fsync does; the new bytes
 *                           survive the retry; errseq reporting.
 *   refused_seek_write      pwritev/pwritev2 refused (EPERM): the flush
 *                           writes with lseek+write, nothing is lost, and
 *                           the file passes through for good (WC_EPASS).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib_cache.h"

TestSuite(errors, .init = wct_setup, .fini = wct_teardown, .timeout = 60);

#define NPAGES 10

/* NPAGES pages of pattern at 0, cached; the model gets them too. */
static void fill(struct wc_file *f, unsigned char *model)
{
    unsigned char b[4096];
    for (off_t pos = 0; pos < NPAGES * 4096; pos += 4096) {
        wct_pattern(b, sizeof b, pos, 3);
        cr_assert_eq(wc_pwrite(f, b, sizeof b, pos, 0, NULL),
                     (ssize_t)sizeof b);
        memcpy(model + pos, b, sizeof b);
    }
}

Test(errors, failed_passes_through)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("f", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    unsigned char *model = calloc(1, NPAGES * 4096);
    fill(f, model);

    wct_rec_start(fd);
    wct_inject_fail(WCT_WRITEBACK, 1, EIO);
    cr_assert_eq(wc_file_flush(f, WC_WHY_DEADLINE), -EIO);
    wct_inject_fail(0, 0, 0);
    int before = wct_count(WCT_WRITEBACK);

    /* The next write goes to the kernel at once, over cached bytes. */
    cr_assert_eq(wc_pwrite(f, "NEW", 3, 5000, 0, NULL), 3);
    memcpy(model + 5000, "NEW", 3);
    cr_assert_eq(wct_count(WCT_WRITEBACK), before + 1,
                 "the write did not pass through:%s", wct_rec_dump());
    /* Pressure and a full store do not retry the cached data. */
    cr_assert_eq(wc_cache_flush(c, WC_WHY_PRESSURE), -EIO);
    cr_assert_eq(wc_file_flush(f, WC_WHY_FULL), -EIO);
    cr_assert_eq(wct_count(WCT_WRITEBACK), before + 1,
                 "a failed file was retried under pressure:%s",
                 wct_rec_dump());
    /* The cached bytes are still there for reads, the new ones over them. */
    unsigned char view[NPAGES * 4096];
    cr_assert_eq(wc_pread(f, fd, view, sizeof view, 0), (ssize_t)sizeof view);
    cr_assert_eq(wct_diff(view, model, sizeof view), -1);

    /* fsync retries, writes everything, reports the error once; then 0,
     * and close returns 0. */
    cr_assert_eq(wc_file_sync(f, 0), -EIO);
    cr_assert_eq(wc_file_sync(f, 0), 0);
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    size_t len;
    unsigned char *disk = wct_read_path(wct_path("f"), &len);
    cr_assert_eq(len, (size_t)NPAGES * 4096);
    cr_assert_eq(wct_diff(disk, model, len), -1,
                 "the retry undid a write that passed through");
    free(disk);
    free(model);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(errors, failed_retry_fails_again)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("g", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    unsigned char *model = calloc(1, NPAGES * 4096);
    fill(f, model);
    wct_rec_start(fd);
    /* fsync meets the error itself: it reports it, close reports it. */
    wct_inject_fail(WCT_WRITEBACK, 1, ENOSPC);
    cr_assert_eq(wc_file_sync(f, 0), -ENOSPC);
    /* A retry that fails again is reported again. */
    wct_inject_fail(WCT_WRITEBACK, 1, ENOSPC);
    cr_assert_eq(wc_file_sync(f, 0), -ENOSPC);
    wct_inject_fail(0, 0, 0);
    /* The retry at close succeeds; the error was seen by fsync, and the
     * last failure is reported to close once. */
    cr_assert_eq(wc_file_put(f), -ENOSPC);
    wct_rec_stop();
    size_t len;
    unsigned char *disk = wct_read_path(wct_path("g"), &len);
    cr_assert_eq(len, (size_t)NPAGES * 4096);
    cr_assert_eq(wct_diff(disk, model, len), -1);
    free(disk);
    free(model);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(errors, refused_seek_write)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("r", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    unsigned char *model = calloc(1, NPAGES * 4096);
    fill(f, model);
    wct_rec_start(fd);
    wct_inject_fail(WCT_PWRITE | WCT_PWRITEV, 1, EPERM);
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0,
                 "a refused pwritev was not replaced:%s", wct_rec_dump());
    cr_assert(wct_injected());
    wct_inject_fail(0, 0, 0);
    /* From now on the file passes through: the caller makes the call. */
    cr_assert_eq(wc_pwrite(f, "x", 1, 0, 0, NULL), -WC_EPASS);
    cr_assert_eq(wc_file_sync(f, 0), 0);
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    size_t len;
    unsigned char *disk = wct_read_path(wct_path("r"), &len);
    cr_assert_eq(len, (size_t)NPAGES * 4096);
    cr_assert_eq(wct_diff(disk, model, len), -1);
    free(disk);
    free(model);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}
