/*
 * test_engine_speed.c - the data path's costs, counted rather than timed.
 *
 * - A write of whole pages that goes straight to the kernel costs that one
 *   call: no fstat after it; the slot's record of the file on disk
 *   (format.h (5)) is brought up to date before the file next holds
 *   cached data, so a replay still compares it.
 * - Page-sized appends continuing a stream are cached and written back in
 *   batches; the stream reuses a few warm blocks (flush.c (6)) instead of
 *   reserving fresh ones until close.
 * - A small file reserves one block of the store, not a whole chunk.
 * - Scattered small writes are written back once many pages hold them, and
 *   the store stays small; the file ends with exactly the bytes written.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cache/cache_int.h"
#include "lib_cache.h"
#include "wcache/cache.h"

static long allocated_kib(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return (long)st.st_blocks / 2;
}

static int (*real_fstat)(int, struct stat *);
static int fstats;
static int count_fstat(int fd, struct stat *st)
{
    fstats++;
    return real_fstat(fd, st);
}

static int (*real_fallocate)(int, int, off_t, off_t);
static off_t reserved_bytes;
static int count_fallocate(int fd, int mode, off_t off, off_t len)
{
    if (mode == 0)
        reserved_bytes += len;
    return real_fallocate(fd, mode, off, len);
}

Test(engine_speed, direct_writes_pay_no_fstat_and_the_slot_is_noted_first,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("direct", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    static unsigned char b[2 * WCT_PG];
    wct_pattern(b, sizeof b, 0, 3);

    /* Two pages each: straight through, one call each (the recorder
     * makes fstat calls of its own: counted apart below). */
    wct_rec_start(fd);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(wc_pwrite(f, b, sizeof b, (off_t)i * (off_t)sizeof b,
                               0, NULL), (ssize_t)sizeof b);
    cr_assert_eq(wct_count(WCT_PWRITE | WCT_PWRITEV), 32, "%s",
                 wct_rec_dump());
    wct_rec_stop();
    real_fstat = wc_sys.fstat;
    wc_sys.fstat = count_fstat;
    for (int i = 32; i < 64; i++)
        cr_assert_eq(wc_pwrite(f, b, sizeof b, (off_t)i * (off_t)sizeof b,
                               0, NULL), (ssize_t)sizeof b);
    wc_sys.fstat = real_fstat;
    cr_assert_eq(fstats, 0, "%d fstat calls for 32 direct writes", fstats);

    /* Cached data now: the slot says what the file looks like first. */
    cr_assert_eq(wc_pwrite(f, "small", 5, 10, 0, NULL), 5);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(f->slot->busy, 0, "slot still busy with data cached");
    cr_assert_eq(f->slot->seen_size, (uint64_t)st.st_size);
    cr_assert_eq(f->slot->seen_ctime_ns,
                 (uint64_t)st.st_ctim.tv_sec * 1000000000u +
                     (uint64_t)st.st_ctim.tv_nsec);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);

    size_t n;
    unsigned char *d = wct_read_path(wct_path("direct"), &n);
    cr_assert_eq(n, 64 * sizeof b);
    cr_assert_eq(memcmp(d + 10, "small", 5), 0);
    memcpy(d + 10, b + 10, 5);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(wct_diff(d + (size_t)i * sizeof b, b, sizeof b), -1);
    free(d);
    close(fd);
}

Test(engine_speed, a_page_stream_is_cached_on_a_few_warm_blocks,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    struct wc_cache *c = wct_cache_open(16384 * WCT_PG);    /* 64 MiB */
    int fd = wct_create("stream", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    enum { PAGES = 2048 };                                  /* 8 MiB */
    static unsigned char b[WCT_PG];

    wct_rec_start(fd);
    for (int i = 0; i < PAGES; i++) {
        wct_pattern(b, sizeof b, (off_t)i * WCT_PG, 5);
        off_t where = -1;
        cr_assert_eq(wc_pwrite(f, b, sizeof b, 0, 1, &where),
                     (ssize_t)sizeof b);
        cr_assert_eq(where, (off_t)i * WCT_PG);
        cr_assert_leq(wc__store_used(c), WC_WB_SEGS + 1,
                      "%zu blocks in use after %d pages",
                      wc__store_used(c), i + 1);
    }
    /* The first page went straight through; the rest in batches. */
    int calls = wct_count(WCT_PWRITE | WCT_PWRITEV);
    cr_assert_leq(calls, 1 + PAGES / (WC_WB_SEGS - 2) + 1, "%d calls", calls);
    wct_rec_stop();
    /* Recycled: a few chunks reserved, not the stream plus the clean LRU
     * (WC_CLEAN_KEEP pages, 2 MiB). */
    long kib = allocated_kib(wc_cache_path(c));
    cr_assert_lt(kib, 1024, "%ld KiB of store for an 8 MiB stream", kib);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);

    size_t n;
    unsigned char *d = wct_read_path(wct_path("stream"), &n);
    cr_assert_eq(n, (size_t)PAGES * WCT_PG);
    for (int i = 0; i < PAGES; i++) {
        wct_pattern(b, sizeof b, (off_t)i * WCT_PG, 5);
        cr_assert_eq(wct_diff(d + (size_t)i * WCT_PG, b, WCT_PG), -1,
                     "page %d", i);
    }
    free(d);
    close(fd);
}

Test(engine_speed, a_small_file_reserves_one_block,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    struct wc_cache *c = wct_cache_open(16384 * WCT_PG);
    int fd = wct_create("small", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    real_fallocate = wc_sys.fallocate;
    wc_sys.fallocate = count_fallocate;
    reserved_bytes = 0;
    cr_assert_eq(wc_pwrite(f, "hello\n", 6, 0, 0, NULL), 6);
    wc_sys.fallocate = real_fallocate;
    /* One data block and the page of block records that claims it. */
    cr_assert_leq(reserved_bytes, 2 * WCT_PG, "%lld bytes reserved",
                  (long long)reserved_bytes);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    wct_expect_file(wct_path("small"), "hello\n", 6);
    close(fd);
}

Test(engine_speed, scattered_writes_are_written_back_on_a_small_store,
     .init = wct_setup, .fini = wct_teardown, .timeout = 120)
{
    enum { SPAN = 16 << 20, SZ = 512, N = 8000 };
    struct wc_cache *c = wct_cache_open(16384 * WCT_PG);    /* 64 MiB */
    int fd = wct_create("scatter", SPAN, 7, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    unsigned char *ref = malloc(SPAN);
    cr_assert_not_null(ref);
    wct_pattern(ref, SPAN, 0, 7);
    unsigned char b[SZ];
    unsigned long x = 99;
    size_t most = 0;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        off_t off = (off_t)((x >> 33) % (SPAN / SZ)) * SZ;
        wct_pattern(b, sizeof b, off, 11 + (unsigned)i % 3);
        cr_assert_eq(wc_pwrite(f, b, sizeof b, off, 0, NULL), (ssize_t)SZ);
        memcpy(ref + off, b, SZ);
        if (wc__store_used(c) > most)
            most = wc__store_used(c);
    }
    /* Without early write-back about 3,900 of the 4,096 pages would be
     * held; this is WC_SCATTER_PAGES and what is dirtied meanwhile. */
    cr_assert_leq(most, 2 * WC_SCATTER_PAGES, "%zu blocks held", most);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    size_t n;
    unsigned char *d = wct_read_path(wct_path("scatter"), &n);
    cr_assert_eq(n, (size_t)SPAN);
    long at = wct_diff(d, ref, SPAN);
    cr_assert_eq(at, -1, "differs at %ld", at);
    free(d);
    free(ref);
    close(fd);
}
