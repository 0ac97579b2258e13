/*
 * test_engine_random.c - the engine against the kernel, op by op.
 *
 * A seeded random sequence of pwrite, append, pwritev, pread, preadv,
 * truncate, flush, fsync and invalidate runs twice at once: through the
 * engine on one file, and with the real system calls on a reference file.
 * Sources and destinations sometimes run into a PROT_NONE page. Every
 * return value and every byte read must match the kernel's; after the
 * engine closes, the two files must be identical. Caches of 16 to 64
 * blocks force eviction, write-back under pressure, the range limit and
 * write-through. Covers CONTRACT 2 (reads, sizes, truncation), 5.4, 5.7,
 * 5.8 and 6 (final content: program order, later writes win).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib_cache.h"
#include "wcache/cache.h"

#define AREA (64 * 1024)
#define MAXLEN 9000

static uint64_t rng;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A buffer of 3 pages whose last page is PROT_NONE. */
static uint8_t *guarded(void)
{
    uint8_t *m = mmap(NULL, 4 * 4096 + MAXLEN, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    return m;
}

/* Pick a user pointer for `len` bytes: usually fine, sometimes running
 * into the guard page at a random point, sometimes NULL. */
static uint8_t *pick(uint8_t *ok, uint8_t *guard_end, size_t len)
{
    uint64_t k = next() % 16;
    if (k == 0)
        return NULL;
    if (k == 1 && len)
        return guard_end - 1 - next() % len;    /* faults part-way */
    return ok + next() % 2048;
}

/* Where the last write ended (-1: none yet), and the engine's write: one
 * in two tries the shim's fast path first (wc_write_fast), which must
 * either do exactly what wc_pwrite would or nothing at all. */
static off_t last_end;

static ssize_t eng_write(struct wc_file *f, const void *s, size_t len,
                         off_t pos, int append, off_t *where)
{
    if (next() % 2) {
        ssize_t r = wc_write_fast(f, s, len, pos, append, where);
        if (r != WC_FAST_NO)
            return r;
    }
    return wc_pwrite(f, s, len, pos, append, where);
}

static void run(unsigned seed, size_t cache_bytes, int nops)
{
    int fa = open(wct_path("engine"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    int fb = open(wct_path("kernel"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fa >= 0 && fb >= 0);

    struct wc_cache *c;
    struct wc_config cfg = {.size = cache_bytes, .dir = wct_dir,
                            .bypass = 6000};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    int err;
    struct wc_file *f = wc_file_get(c, fa, &err);
    cr_assert_not_null(f, "wc_file_get: %d", err);

    /* Sources: pattern bytes, never 0xCD; last page of each unreadable. */
    uint8_t *src = guarded(), *dst1 = guarded(), *dst2 = guarded();
    for (int i = 0; i < 3 * 4096 + MAXLEN; i++)
        src[i] = (uint8_t)(i * 7 + seed) | 1;
    uint8_t *gs = (uint8_t *)(((uintptr_t)src + 3 * 4096) & ~4095UL);
    uint8_t *gd1 = (uint8_t *)(((uintptr_t)dst1 + 3 * 4096) & ~4095UL);
    uint8_t *gd2 = (uint8_t *)(((uintptr_t)dst2 + 3 * 4096) & ~4095UL);
    mprotect(gs, 4096, PROT_NONE);
    mprotect(gd1, 4096, PROT_NONE);
    mprotect(gd2, 4096, PROT_NONE);

    rng = seed * 0x9E3779B97F4A7C15ull + 1;
    last_end = -1;
    for (int op = 0; op < nops; op++) {
        uint64_t kind = next() % 100;
        off_t pos = (off_t)(next() % AREA);
        size_t len = next() % 8 == 0 ? next() % MAXLEN : next() % 200;
        if (getenv("WCT_TRACE"))
            fprintf(stderr, "op %d kind %lu pos %ld len %zu size %ld\n", op,
                    (unsigned long)kind, (long)pos, len,
                    (long)wc_file_size(f));

        if (kind < 40) {                                /* pwrite */
            const uint8_t *s = pick(src, gs, len);
            if (last_end >= 0 && next() % 2)
                pos = last_end;         /* a sequence: the fast path's */
            ssize_t want = pwrite(fb, s, len, pos);
            off_t where = -1;
            ssize_t got = eng_write(f, s, len, pos, 0, &where);
            if (got > 0)
                last_end = where + got;
            int e = want < 0 ? errno : 0;
            cr_assert_eq(got, want < 0 ? -e : want,
                         "seed %u op %d pwrite(%p,%zu,%ld): %zd vs kernel %zd/%d",
                         seed, op, (void *)s, len, (long)pos, got, want, e);
        } else if (kind < 55) {                         /* append */
            const uint8_t *s = pick(src, gs, len);
            off_t end = lseek(fb, 0, SEEK_END);
            ssize_t want = pwrite(fb, s, len, end);
            off_t where = -1;
            ssize_t got = eng_write(f, s, len, 0, 1, &where);
            if (got > 0)
                last_end = where + got;
            int e = want < 0 ? errno : 0;
            cr_assert_eq(got, want < 0 ? -e : want,
                         "seed %u op %d append %zu: %zd vs %zd", seed, op,
                         len, got, want);
            cr_assert_eq(where, end, "seed %u op %d append at %ld vs %ld",
                         seed, op, (long)where, (long)end);
        } else if (kind < 62) {                         /* pwritev */
            struct iovec v[4];
            int n = 1 + (int)(next() % 4);
            for (int i = 0; i < n; i++) {
                size_t l = next() % 3 == 0 ? 0 : next() % 300;
                v[i].iov_base = l == 0 && next() % 2 ? NULL
                                                     : pick(src, gs, l);
                v[i].iov_len = l;
            }
            ssize_t want = pwritev(fb, v, n, pos);
            int e = want < 0 ? errno : 0;
            ssize_t got = wc_pwritev(f, v, n, pos, 0, NULL);
            cr_assert_eq(got, want < 0 ? -e : want,
                         "seed %u op %d pwritev: %zd vs %zd/%d", seed, op,
                         got, want, e);
        } else if (kind < 80) {                         /* pread */
            uint8_t *d1 = pick(dst1, gd1, len), *d2;
            d2 = d1 ? dst2 + (d1 - dst1) : NULL;
            if (d1 && d1 >= gd1 - MAXLEN && d1 < gd1)
                d2 = gd2 - (gd1 - d1);
            ssize_t want = pread(fb, d2, len, pos);
            int e = want < 0 ? errno : 0;
            ssize_t got = wc_pread(f, fa, d1, len, pos);
            cr_assert_eq(got, want < 0 ? -e : want,
                         "seed %u op %d pread(%zu at %ld): %zd vs %zd/%d",
                         seed, op, len, (long)pos, got, want, e);
            if (got > 0)
                cr_assert_eq(memcmp(d1, d2, (size_t)got), 0,
                             "seed %u op %d pread bytes differ", seed, op);
        } else if (kind < 85) {                         /* preadv */
            struct iovec v1[2] = {{dst1, len / 2}, {dst1 + 4096, len - len / 2}};
            struct iovec v2[2] = {{dst2, len / 2}, {dst2 + 4096, len - len / 2}};
            ssize_t want = preadv(fb, v2, 2, pos);
            ssize_t got = wc_preadv(f, fa, v1, 2, pos);
            cr_assert_eq(got, want, "seed %u op %d preadv %zd vs %zd", seed,
                         op, got, want);
            cr_assert_eq(memcmp(dst1, dst2, len / 2), 0);
            cr_assert_eq(memcmp(dst1 + 4096, dst2 + 4096, len - len / 2), 0);
        } else if (kind < 90) {                         /* truncate */
            off_t n = (off_t)(next() % AREA);
            cr_assert_eq(ftruncate(fb, n), 0);
            cr_assert_eq(wc_file_truncate(f, n), 0);
        } else if (kind < 95) {
            cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
        } else if (kind < 98) {
            cr_assert_eq(wc_file_sync(f, (int)(next() % 2)), 0);
        } else {
            cr_assert_eq(wc_file_invalidate(f, WC_WHY_LOCK), 0);
        }
        cr_assert_eq(wc_file_size(f), lseek(fb, 0, SEEK_END),
                     "seed %u op %d size %ld, kernel %ld", seed, op,
                     (long)wc_file_size(f), (long)lseek(fb, 0, SEEK_END));
    }
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);

    off_t n = lseek(fb, 0, SEEK_END);
    cr_assert_eq(lseek(fa, 0, SEEK_END), n, "seed %u final size", seed);
    uint8_t *x = malloc((size_t)n + 1), *y = malloc((size_t)n + 1);
    cr_assert_eq(pread(fa, x, (size_t)n, 0), n);
    cr_assert_eq(pread(fb, y, (size_t)n, 0), n);
    for (off_t i = 0; i < n; i++)
        cr_assert_eq(x[i], y[i], "seed %u: byte %ld is %#x, kernel %#x",
                     seed, (long)i, x[i], y[i]);
    free(x);
    free(y);
    close(fa);
    close(fb);
}

Test(engine_random, small_cache, .init = wct_setup, .fini = wct_teardown,
     .timeout = 120)
{
    wct_watchdog(600, "small-cache seeds");
    int seeds = wct_long() ? 200 : 12;
    for (int s = 1; s <= seeds; s++)
        run((unsigned)s, 16 * 4096, 1500);
}

Test(engine_random, medium_cache, .init = wct_setup, .fini = wct_teardown,
     .timeout = 120)
{
    wct_watchdog(600, "medium-cache seeds");
    int seeds = wct_long() ? 100 : 6;
    for (int s = 1000; s < 1000 + seeds; s++)
        run((unsigned)s, 64 * 4096, 3000);
}
