/*
 * test_cache_rw.c - basic write, read, size and truncate semantics.
 *
 * CONTRACT.md points covered:
 *   2      sizes, O_APPEND (append flag: at the end, cached size included),
 *          reads merge cached bytes with the file's bytes, holes read as
 *          zeros, truncation drops cached bytes beyond the new size
 *   3      two writers of disjoint parts of one page never overwrite each
 *          other (two caches stand for two processes)
 *   5.6    bytes read from the file or fill zeros are never written back
 *   5.7    i_size follows committed data; bytes between the old i_size and
 *          pos read as zeros
 *   5.8    nothing outside [pos, pos + ret) changes
 *   6      byte-granular write-back, never past i_size, later writes win;
 *          write-back goes through a descriptor without O_APPEND
 *   (and a randomised differential run against the kernel)
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib_cache.h"

TestSuite(rw, .init = wct_setup, .fini = wct_teardown, .timeout = 90);

static off_t disk_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

Test(rw, write_read_size)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "a", 0);
    cr_assert_eq(wc_file_size(p.f), 0);
    off_t where = -1;
    ssize_t r = wc_pwrite(p.f, "hello", 5, 0, 0, &where);
    cr_assert_eq(r, 5);
    cr_assert_eq(where, 0);
    cr_assert_eq(wc_file_size(p.f), 5);
    char b[16] = {0};
    cr_assert_eq(wc_pread(p.f, p.cfd, b, sizeof b, 0), 5);
    cr_assert_str_eq(b, "hello");
    cr_assert_eq(wc_pread(p.f, p.cfd, b, sizeof b, 5), 0, "read at EOF");
    cr_assert_eq(wc_pread(p.f, p.cfd, b, sizeof b, 100), 0, "read past EOF");
    cr_assert_eq(pwrite(p.kfd, "hello", 5, 0), 5);
    wct_pair_put_pattern(&p, 3, 10000, 4, "overlapping write across pages");
    wct_pair_put_pattern(&p, 4090, 12, 5, "write across a page boundary");
    wct_pair_put_pattern(&p, 0, 1, 6, "one byte at 0");
    wct_pair_check(&p, "write_read_size");
    wct_pair_close(&p, "write_read_size");
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(rw, holes_read_as_zeros)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "h", 3000);
    wct_pair_put_pattern(&p, 10000, 10, 2, "write past EOF, same-page gap");
    wct_pair_put_pattern(&p, 50001, 100, 3, "write far past EOF");
    wct_pair_put_pattern(&p, 12286, 4, 4, "write straddling pages in the gap");
    unsigned char b[60000];
    ssize_t r = wc_pread(p.f, p.cfd, b, sizeof b, 0);
    cr_assert_eq(r, 50101);
    for (size_t i = 3000; i < 10000; i++)
        cr_assert_eq(b[i], 0, "hole byte %zu is 0x%02x", i, b[i]);
    for (size_t i = 12290; i < 50001; i++)
        cr_assert_eq(b[i], 0, "hole byte %zu is 0x%02x", i, b[i]);
    wct_pair_check(&p, "holes");
    wct_pair_close(&p, "holes");
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(rw, size_follows_data)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "s", 5000);
    wct_pair_put_pattern(&p, 100, 10, 2, "write inside");
    cr_assert_eq(wc_file_size(p.f), 5000);
    wct_pair_put_pattern(&p, 4990, 20, 3, "write across EOF");
    cr_assert_eq(wc_file_size(p.f), 5010);
    wct_pair_put_pattern(&p, 9000, 0, 3, "empty write past EOF");
    cr_assert_eq(wc_file_size(p.f), 5010);
    wct_pair_put_pattern(&p, 8191, 1, 4, "one byte past EOF");
    cr_assert_eq(wc_file_size(p.f), 8192);
    wct_pair_put_pattern(&p, 0, 8192, 5, "rewrite everything");
    wct_pair_check(&p, "sizes");
    wct_pair_close(&p, "sizes");
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(rw, append_flag)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "ap", 1000);
    unsigned char b[5000];
    wct_pattern(b, sizeof b, 0, 7);
    wct_pair_pwrite(&p, b, b, 10, 0, 1, "append, pos 0");
    wct_pair_pwrite(&p, b, b, 5000, 123456, 1, "append, pos far away");
    wct_pair_put_pattern(&p, 20000, 5, 8, "positioned write past EOF");
    wct_pair_pwrite(&p, b, b, 1, 0, 1, "append after the positioned write");
    wct_pair_truncate(&p, 3000, "truncate");
    wct_pair_pwrite(&p, b, b, 4097, 7, 1, "append after truncate");
    wct_pair_pwrite(&p, b, b, 0, 7, 1, "empty append");
    wct_pair_check(&p, "appends");
    wct_pair_close(&p, "appends");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* The program's descriptor has O_APPEND; write-back must not use it (a
 * positioned write-back through an O_APPEND descriptor would append). */
Test(rw, writeback_not_through_append_descriptor)
{
    struct wc_cache *c = wct_cache_open(0);
    int afd = wct_create("apd", 6000, 1, O_RDWR | O_APPEND);
    int fd = open(wct_path("apd"), O_RDWR);
    struct wc_file *f = wct_get(c, afd);
    struct wc_file *g = wct_get(c, fd);
    cr_assert_eq(f, g, "two descriptors of one file give one wc_file");
    cr_assert_eq(wc_pwrite(g, "XYZ", 3, 10, 0, NULL), 3);
    off_t where = -1;
    cr_assert_eq(wc_pwrite(f, "tail", 4, 0, 1, &where), 4);
    cr_assert_eq(where, 6000);
    cr_assert_eq(wc_pwrite(g, "Q", 1, 4096, 0, NULL), 1);
    cr_assert_eq(wc_file_put(g), 0);
    cr_assert_eq(wc_file_put(f), 0);
    size_t n;
    unsigned char *d = wct_read_path(wct_path("apd"), &n);
    cr_assert_eq(n, 6004, "size after write-back: %zu", n);
    cr_assert_eq(memcmp(d + 10, "XYZ", 3), 0);
    cr_assert_eq(d[4096], 'Q');
    cr_assert_eq(memcmp(d + 6000, "tail", 4), 0);
    cr_assert_eq(d[9], wct_pattern_byte(9, 1));
    cr_assert_eq(d[13], wct_pattern_byte(13, 1));
    close(afd);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Reads lay the cached bytes over the file's bytes, through the descriptor
 * passed, and never write anything back. */
Test(rw, read_merges_without_flush)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "m", 9000);
    wct_pair_put_pattern(&p, 100, 100, 2, "small cached write");
    wct_pair_put_pattern(&p, 5000, 2000, 3, "cached write across a page");
    wct_pair_put_pattern(&p, 8990, 30, 4, "cached write across EOF");
    wct_pair_put_pattern(&p, 14000, 10, 5, "cached write past a hole");
    int rfd = open(p.cpath, O_RDONLY);
    cr_assert(rfd >= 0);
    wct_rec_start(p.cfd);
    unsigned char b[20000];
    for (off_t pos = 0; pos < 15000; pos += 997) {
        size_t len = (size_t)(pos % 5000) + 1;
        ssize_t kr = pread(p.kfd, b, len, pos);
        unsigned char want[5001];
        memcpy(want, b, (size_t)(kr > 0 ? kr : 0));
        ssize_t r = wc_pread(p.f, rfd, b, len, pos);
        cr_assert_eq(r, kr, "pread %zu at %lld: %zd, kernel %zd", len, (long long)pos, r, kr);
        cr_assert_eq(wct_diff(b, want, (size_t)r), -1, "pread %zu at %lld", len, (long long)pos);
    }
    cr_assert_eq(wct_count(WCT_WRITEBACK | WCT_FSYNC | WCT_FDATASYNC), 0,
                 "reads wrote back:%s", wct_rec_dump());
    for (int i = 0; i < wct_ncalls; i++)
        if (wct_calls[i].op & (WCT_PREAD | WCT_PREADV))
            cr_assert_eq(wct_calls[i].fd, rfd, "read through fd %d, not the one passed (%d)",
                         wct_calls[i].fd, rfd);
    wct_rec_stop();
    /* the file itself is untouched until write-back */
    size_t n;
    unsigned char *d = wct_read_path(p.cpath, &n);
    cr_assert_eq(n, 9000);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(d[i], wct_pattern_byte((off_t)i, 1), "disk byte %zu changed before write-back", i);
    free(d);
    wct_pair_check(&p, "merged reads");
    wct_pair_close(&p, "merged reads");
    close(rfd);
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(rw, truncate_semantics)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "t", 6000);
    wct_pair_put_pattern(&p, 0, 8192, 2, "fill two pages");
    wct_pair_truncate(&p, 100, "truncate into the first cached page");
    cr_assert_eq(disk_size(p.cpath), 100, "ftruncate is issued at once");
    wct_pair_check(&p, "after shrinking");
    wct_pair_truncate(&p, 8192, "extend again");
    wct_pair_check(&p, "dropped bytes must read as zeros");
    wct_pair_put_pattern(&p, 5000, 10, 3, "write in the extended area");
    wct_pair_truncate(&p, 4096, "truncate at a page boundary");
    wct_pair_put_pattern(&p, 7000, 10, 4, "write past the new EOF");
    wct_pair_check(&p, "truncate then write past EOF");
    wct_pair_truncate(&p, 0, "truncate to 0");
    wct_pair_truncate(&p, 0, "truncate to 0 again");
    wct_pair_put_pattern(&p, 3, 3, 5, "write after truncate to 0");
    wct_pair_truncate(&p, 100000, "extend far");
    wct_pair_truncate(&p, -1, "negative size");
    wct_pair_check(&p, "truncates");
    wct_pair_close(&p, "truncates");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Section 6: write-back writes exactly the bytes written. Another writer
 * changes every byte of the file behind the cache's back; after the flush
 * only the bytes the program wrote through the cache may differ from it. */
static void behind_back(int read_first)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("g", 3 * 4096, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    unsigned char b[3 * 4096];
    if (read_first)
        cr_assert_eq(wc_pread(f, fd, b, sizeof b, 0), (ssize_t)sizeof b);
    cr_assert_eq(wc_pwrite(f, "0123456789", 5, 10, 0, NULL), 5);
    cr_assert_eq(wc_pwrite(f, "abcdefg", 7, 3000, 0, NULL), 7);
    cr_assert_eq(wc_pwrite(f, "Z", 1, 4096 + 4095, 0, NULL), 1);
    cr_assert_eq(wc_pwrite(f, "yy", 2, 2 * 4096 + 1, 0, NULL), 2);
    if (!read_first) /* read now: pages become fully known to the cache */
        cr_assert_eq(wc_pread(f, fd, b, sizeof b, 0), (ssize_t)sizeof b);
    int other = open(wct_path("g"), O_RDWR);
    wct_pattern(b, sizeof b, 0, 9);
    cr_assert_eq(pwrite(other, b, sizeof b, 0), (ssize_t)sizeof b);
    close(other);
    cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
    memcpy(b + 10, "01234", 5);
    memcpy(b + 3000, "abcdefg", 7);
    b[4096 + 4095] = 'Z';
    memcpy(b + 2 * 4096 + 1, "yy", 2);
    size_t n;
    unsigned char *d = wct_read_path(wct_path("g"), &n);
    cr_assert_eq(n, sizeof b);
    long at = wct_diff(d, b, n);
    cr_assert_eq(at, -1,
                 "byte %ld was written back (0x%02x; the other writer wrote 0x%02x, "
                 "the old file had 0x%02x)",
                 at, at >= 0 ? d[at] : 0, at >= 0 ? b[at] : 0,
                 at >= 0 ? wct_pattern_byte(at, 1) : 0);
    free(d);
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(rw, writeback_byte_granular)
{
    behind_back(0);
}

Test(rw, writeback_byte_granular_after_read)
{
    behind_back(1);
}

/* Two processes (two caches here) write disjoint parts of one page. */
Test(rw, two_caches_disjoint_halves)
{
    struct wc_cache *c1 = wct_cache_open(0);
    struct wc_config cfg2 = {.size = 64 * WCT_PG};
    struct wc_cache *c2 = wct_cache_open_cfg(&cfg2);
    int fd1 = wct_create("two", 4096, 1, O_RDWR);
    int fd2 = open(wct_path("two"), O_RDWR);
    struct wc_file *f1 = wct_get(c1, fd1), *f2 = wct_get(c2, fd2);
    unsigned char b[4096];
    cr_assert_eq(wc_pread(f1, fd1, b, sizeof b, 0), 4096);
    cr_assert_eq(wc_pread(f2, fd2, b, sizeof b, 0), 4096);
    unsigned char h1[2048], h2[2048];
    memset(h1, 'B', sizeof h1);
    memset(h2, 'C', sizeof h2);
    cr_assert_eq(wc_pwrite(f1, h1, 2048, 0, 0, NULL), 2048);
    cr_assert_eq(wc_pwrite(f2, h2, 2048, 2048, 0, NULL), 2048);
    /* interleaved 64-byte pieces of a second page, past EOF */
    for (int i = 0; i < 64; i++) {
        unsigned char piece[64];
        memset(piece, i % 2 ? 'e' : 'o', sizeof piece);
        struct wc_file *f = i % 2 ? f2 : f1;
        cr_assert_eq(wc_pwrite(f, piece, 64, 4096 + 64 * i, 0, NULL), 64);
    }
    cr_assert_eq(wc_file_flush(f2, WC_WHY_OTHER), 0);
    cr_assert_eq(wc_file_flush(f1, WC_WHY_OTHER), 0);
    cr_assert_eq(wc_file_put(f1), 0);
    cr_assert_eq(wc_file_put(f2), 0);
    size_t n;
    unsigned char *d = wct_read_path(wct_path("two"), &n);
    cr_assert_eq(n, 8192);
    for (size_t i = 0; i < 2048; i++)
        cr_assert_eq(d[i], 'B', "byte %zu: 0x%02x", i, d[i]);
    for (size_t i = 2048; i < 4096; i++)
        cr_assert_eq(d[i], 'C', "byte %zu: 0x%02x", i, d[i]);
    for (size_t i = 4096; i < 8192; i++)
        cr_assert_eq(d[i], ((i - 4096) / 64) % 2 ? 'e' : 'o', "byte %zu: 0x%02x", i, d[i]);
    free(d);
    close(fd1);
    close(fd2);
    cr_assert_eq(wc_cache_close(c1), 0);
    cr_assert_eq(wc_cache_close(c2), 0);
}

/* A writer that knows a smaller i_size must not shrink the file that
 * another writer extended (write-back never truncates on its own). */
Test(rw, two_caches_writeback_never_shrinks)
{
    struct wc_cache *c1 = wct_cache_open(0);
    struct wc_config cfg2 = {.size = 64 * WCT_PG};
    struct wc_cache *c2 = wct_cache_open_cfg(&cfg2);
    int fd1 = wct_create("grow", 0, 1, O_RDWR);
    int fd2 = open(wct_path("grow"), O_RDWR);
    struct wc_file *f1 = wct_get(c1, fd1), *f2 = wct_get(c2, fd2);
    cr_assert_eq(wc_pwrite(f1, "first", 5, 0, 0, NULL), 5);
    cr_assert_eq(wc_pwrite(f2, "second", 6, 10000, 0, NULL), 6);
    cr_assert_eq(wc_file_flush(f2, WC_WHY_OTHER), 0);
    cr_assert_eq(wc_file_flush(f1, WC_WHY_OTHER), 0);
    cr_assert_eq(wc_file_put(f1), 0);
    cr_assert_eq(wc_file_put(f2), 0);
    size_t n;
    unsigned char *d = wct_read_path(wct_path("grow"), &n);
    cr_assert_eq(n, 10006, "size %zu", n);
    cr_assert_eq(memcmp(d, "first", 5), 0);
    cr_assert_eq(memcmp(d + 10000, "second", 6), 0);
    for (size_t i = 5; i < 10000; i++)
        cr_assert_eq(d[i], 0, "byte %zu: 0x%02x", i, d[i]);
    free(d);
    close(fd1);
    close(fd2);
    cr_assert_eq(wc_cache_close(c1), 0);
    cr_assert_eq(wc_cache_close(c2), 0);
}

Test(rw, file_get_rules)
{
    struct wc_cache *c = wct_cache_open(0);
    int err = 0;
    int ro = wct_create("ro", 10, 1, O_RDONLY);
    cr_assert_null(wc_file_get(c, ro, &err), "read-only descriptor cached");
    cr_assert(err < 0, "err %d", err);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    err = 0;
    cr_assert_null(wc_file_get(c, p[1], &err), "pipe cached");
    cr_assert(err < 0);
    int dfd = open(wct_dir, O_RDONLY | O_DIRECTORY);
    err = 0;
    cr_assert_null(wc_file_get(c, dfd, &err), "directory cached");
    cr_assert(err < 0);
    err = 0;
    cr_assert_null(wc_file_get(c, 987, &err), "closed descriptor");
    cr_assert_eq(err, -EBADF, "err %d", err);
    int a = wct_create("same", 10, 1, O_RDWR);
    int b = open(wct_path("same"), O_WRONLY);
    int d = dup(a);
    struct wc_file *fa = wct_get(c, a), *fb = wct_get(c, b), *fd = wct_get(c, d);
    cr_assert_eq(fa, fb);
    cr_assert_eq(fa, fd);
    cr_assert_eq(wc_pwrite(fb, "x", 1, 20, 0, NULL), 1);
    cr_assert_eq(wc_file_size(fa), 21);
    cr_assert_eq(wc_file_put(fa), 0);
    cr_assert_eq(wc_file_put(fb), 0);
    cr_assert_eq(wc_file_put(fd), 0);
    cr_assert_eq(disk_size(wct_path("same")), 21, "not written back at the last put");
    close(a);
    close(b);
    close(d);
    close(ro);
    close(dfd);
    close(p[0]);
    close(p[1]);
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(rw, dirty_and_expiry)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("e", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    cr_assert_eq(wc_cache_dirty(c), 0);
    cr_assert_eq(wc_pwrite(f, "abc", 3, 5000, 0, NULL), 3);
    cr_assert_geq(wc_cache_dirty(c), 3);
    cr_assert_eq(wc_cache_flush_expired(c, 3600ull * 1000000000ull), 0);
    cr_assert_eq(disk_size(wct_path("e")), 0, "young data written back");
    usleep(2000);
    cr_assert_eq(wc_cache_flush_expired(c, 1000000), 0);
    cr_assert_eq(disk_size(wct_path("e")), 5003, "old data not written back");
    cr_assert_eq(wc_cache_dirty(c), 0);
    struct wc_stats st;
    wc_cache_stats(c, &st);
    cr_assert_eq(st.writes, 1);
    cr_assert_eq(st.bytes, 3);
    cr_assert_geq(st.flushes[WC_WHY_DEADLINE], 1);
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* After a lock is taken: clean pages are dropped, so bytes another process
 * wrote since show through; dirty bytes are written first. */
Test(rw, invalidate_sees_other_writers)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("inv", 8192, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    unsigned char b[8192];
    cr_assert_eq(wc_pwrite(f, "mine", 4, 100, 0, NULL), 4);
    cr_assert_eq(wc_pread(f, fd, b, sizeof b, 0), 8192);
    int other = open(wct_path("inv"), O_RDWR);
    cr_assert_eq(pwrite(other, "THEIRS", 6, 5000), 6);
    cr_assert_eq(wc_file_invalidate(f, WC_WHY_LOCK), 0);
    cr_assert_eq(wc_pread(f, fd, b, sizeof b, 0), 8192);
    cr_assert_eq(memcmp(b + 100, "mine", 4), 0);
    cr_assert_eq(memcmp(b + 5000, "THEIRS", 6), 0, "a clean page survived invalidation");
    /* another process extends the file: the cache must see the new size */
    cr_assert_eq(pwrite(other, "MORE", 4, 9000), 4);
    cr_assert_eq(wc_file_invalidate(f, WC_WHY_LOCK), 0);
    cr_assert_eq(wc_file_size(f), 9004, "size after invalidation: %lld",
                 (long long)wc_file_size(f));
    close(other);
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* ---- a random sequence, step by step against the kernel ------------------ */

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_run(size_t cache_size, uint64_t seed, int steps)
{
    struct wc_cache *c = wct_cache_open(cache_size);
    struct wct_pair p;
    wct_pair_open(&p, c, "rand", 20000);
    rng = seed;
    unsigned char *src = malloc(64 * 1024);
    unsigned char *rbuf = malloc(64 * 1024);
    char what[128];
    int trace = getenv("WCT_TRACE") != NULL;
    for (int i = 0; i < steps; i++) {
        unsigned op = (unsigned)(rnd() % 100);
        off_t pos = (off_t)(rnd() % (200 * 1024));
        size_t len = (size_t)(rnd() % 3 ? rnd() % 300 : rnd() % (20 * 1024));
        snprintf(what, sizeof what, "seed %llu step %d op %u pos %lld len %zu",
                 (unsigned long long)seed, i, op, (long long)pos, len);
        if (trace)
            fprintf(stderr, "%s\n", what);
        if (op < 55) {
            wct_pattern(src, len, pos, (unsigned)i);
            wct_pair_pwrite(&p, src, src, len, pos, 0, what);
        } else if (op < 65) {
            wct_pattern(src, len, pos, (unsigned)i);
            wct_pair_pwrite(&p, src, src, len, pos, 1, what);
        } else if (op < 70) {
            wct_pair_truncate(&p, pos / 2, what);
        } else if (op < 90) {
            wct_pair_pread(&p, rbuf, len, pos / 2, what);
        } else if (op < 94) {
            cr_assert_eq(wc_file_flush(p.f, WC_WHY_OTHER), 0, "%s", what);
        } else if (op < 96) {
            cr_assert_eq(wc_file_invalidate(p.f, WC_WHY_LOCK), 0, "%s", what);
        } else if (op < 98) {
            cr_assert_eq(wc_cache_flush(c, WC_WHY_PRESSURE), 0, "%s", what);
        } else {
            wct_pair_check(&p, what);
        }
    }
    wct_pair_check(&p, "random run, end");
    wct_pair_close(&p, "random run, end");
    cr_assert_eq(wc_cache_close(c), 0);
    free(src);
    free(rbuf);
}

Test(rw, random_against_kernel)
{
    int steps = wct_long() ? 50000 : 4000;
    wct_watchdog(80, "random run");
    random_run(0, 0x9e3779b97f4a7c15ull, steps);
}

Test(rw, random_against_kernel_small_cache)
{
    int steps = wct_long() ? 50000 : 4000;
    wct_watchdog(80, "random run, 16-block cache");
    random_run(16 * WCT_PG, 0x2545f4914f6cdd1dull, steps);
}

/* ---- threads writing one file -------------------------------------------- */

struct tw {
    struct wc_file *f;
    int id, n;
    ssize_t bad;
};

static void *thread_writer(void *arg)
{
    struct tw *t = arg;
    unsigned char b[64];
    for (int i = 0; i < t->n; i++) {
        off_t pos = (off_t)(i * 4 + t->id) * 64;
        wct_pattern(b, sizeof b, pos, 30);
        ssize_t r = wc_pwrite(t->f, b, sizeof b, pos, 0, NULL);
        if (r != 64 && !t->bad)
            t->bad = r ? r : -99999;
    }
    return NULL;
}

Test(rw, threads_interleaved_in_one_file)
{
    struct wc_cache *c = wct_cache_open(32 * WCT_PG);
    int fd = wct_create("thr", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    int n = 4000;
    struct tw t[4];
    pthread_t th[4];
    wct_watchdog(40, "four threads writing one file");
    for (int i = 0; i < 4; i++) {
        t[i] = (struct tw){f, i, n, 0};
        pthread_create(&th[i], NULL, thread_writer, &t[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(t[i].bad, 0, "thread %d got %zd", i, t[i].bad);
    size_t total = (size_t)n * 4 * 64;
    cr_assert_eq(wc_file_size(f), (off_t)total);
    unsigned char *want = malloc(total);
    wct_pattern(want, total, 0, 30);
    size_t len;
    unsigned char *v = wct_cache_view(f, fd, &len);
    cr_assert_eq(wct_diff(v, want, total), -1, "cache view");
    cr_assert_eq(wc_file_put(f), 0);
    unsigned char *d = wct_read_path(wct_path("thr"), &len);
    cr_assert_eq(len, total);
    cr_assert_eq(wct_diff(d, want, total), -1, "on disk");
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}
