/*
 * test_cache_errors.c - the error states of a file in the engine
 * (cache/errors.c), with the real calls recorded and failed on purpose:
 *
 *   failed_passes_through   after a write-back error a new write goes to
 *                           the kernel at once; pressure does not retry
 *                           the cached data, fsync does; the new bytes
 *                           survive the retry; errseq reporting.
 *   failed_file_skips_the_fast_path  the same for wc_write_fast.
 *   failed_retry_fails_again a retry that fails is reported again; close
 *                           reports the last failure once.
 *   full_disk_at_write_time a 1 MiB tmpfs: the write that fills it gets
 *                           the kernel's short count and ENOSPC.
 *   full_disk_shared_by_three_files  three files fill one 1 MiB tmpfs:
 *                           each write answered as the kernel does,
 *                           no byte of a successful write lost.
 *   room_of_a_write_in_flight  a write on its way to the kernel keeps
 *                           its room while another file caches.
 *   refused_seek_write      pwritev/pwritev2 refused (EPERM): the flush
 *                           writes with lseek+write, nothing is lost, and
 *                           the file passes through for good (WC_EPASS).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib_cache.h"
#include "wcache/sys.h"

TestSuite(errors, .init = wct_setup, .fini = wct_teardown, .timeout = 60);

#define NPAGES 10

/* NPAGES pages of pattern at 0, cached; the model gets them too. */
static void fill(struct wc_file *f, unsigned char *model)
{
    unsigned char b[4096];
    /* A small write first: a whole page to a file with nothing cached
     * goes straight to the kernel (write.c, WC_DIRECT_MIN). */
    wct_pattern(b, sizeof b, 0, 3);
    cr_assert_eq(wc_pwrite(f, b, 1, 0, 0, NULL), 1);
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

/* The shim's first try, wc_write_fast, takes a write that continues the
 * last one in its page; after a write-back error it must not (errors.c
 * (1)): wc_pwrite then sends the write to the kernel, and fsync's retry
 * keeps it. */
Test(errors, failed_file_skips_the_fast_path)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("h", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    cr_assert_eq(wc_pwrite(f, "0123456789", 10, 0, 0, NULL), 10);
    cr_assert_eq(wc_write_fast(f, "abcdefghij", 10, 10, 0, NULL), 10,
                 "the fast path did not take a continuation");
    wct_rec_start(fd);
    wct_inject_fail(WCT_WRITEBACK, 1, EIO);
    cr_assert_eq(wc_file_flush(f, WC_WHY_DEADLINE), -EIO);
    wct_inject_fail(0, 0, 0);
    int before = wct_count(WCT_WRITEBACK);
    cr_assert_eq(wc_write_fast(f, "KLMNOPQRST", 10, 20, 0, NULL), WC_FAST_NO,
                 "the fast path cached a write of a failed file");
    cr_assert_eq(wc_pwrite(f, "KLMNOPQRST", 10, 20, 0, NULL), 10);
    cr_assert_eq(wct_count(WCT_WRITEBACK), before + 1,
                 "the write did not pass through:%s", wct_rec_dump());
    cr_assert_eq(wc_file_sync(f, 0), -EIO);
    cr_assert_eq(wc_file_sync(f, 0), 0);
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    wct_expect_file(wct_path("h"), "0123456789abcdefghijKLMNOPQRST", 30);
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

/* A full disk answers the write that fills it, as the kernel does: the
 * same records with pwrite and with the engine (wc_write_fast, then
 * wc_pwrite, as the shim calls them) onto a 1 MiB tmpfs end at
 * the same record with the same short count and the same error, and the
 * files hold the same bytes; no write-back error. */
static void fill_until_error(struct wc_file *f, int fd, size_t rec,
                             long *full, ssize_t *last, int *err)
{
    unsigned char *b = malloc(rec);
    *full = 0;
    for (long k = 0; k < (4 << 20) / (long)rec; k++) {
        wct_pattern(b, rec, (off_t)k * (off_t)rec, 9);
        errno = 0;
        ssize_t r = f ? wc_write_fast(f, b, rec, (off_t)k * (off_t)rec, 0,
                                      NULL)
                      : pwrite(fd, b, rec, (off_t)k * (off_t)rec);
        if (f && r == WC_FAST_NO)   /* the shim's order: fast path first */
            r = wc_pwrite(f, b, rec, (off_t)k * (off_t)rec, 0, NULL);
        if (f && r < 0) {
            errno = (int)-r;
            r = -1;
        }
        if (r != (ssize_t)rec) {
            *last = r;
            *err = r < 0 ? errno : 0;
            if (r < 0)
                break;
            continue;       /* a short count: the next one says why */
        }
        ++*full;
    }
    free(b);
}

/* A 1 MiB tmpfs of the test's (skipped where mounting is not allowed). */
static const char *mount_1m(const char *name)
{
    const char *mnt = wct_mount_tmpfs(name, "1m");
    if (!mnt) {
        if (errno == EPERM)
            cr_skip_test("mount -t tmpfs not permitted here (EPERM)");
        cr_assert_fail("mount tmpfs: %s", strerror(errno));
    }
    return mnt;
}

Test(errors, full_disk_at_write_time)
{
    const char *mnt = mount_1m("full");
    char kpath[4200], cpath[4200];
    snprintf(kpath, sizeof kpath, "%s/k", mnt);
    snprintf(cpath, sizeof cpath, "%s/c", mnt);
    static const size_t recs[] = {4096, 1000, 333, 64};
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        long kfull, cfull;
        ssize_t klast = 0, clast = 0;
        int kerr = 0, cerr = 0;
        int fd = open(kpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
        cr_assert(fd >= 0);
        fill_until_error(NULL, fd, recs[i], &kfull, &klast, &kerr);
        close(fd);
        size_t klen;
        unsigned char *kdisk = wct_read_path(kpath, &klen);
        unlink(kpath);

        struct wc_cache *c = wct_cache_open(0);
        fd = open(cpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
        cr_assert(fd >= 0);
        struct wc_file *f = wct_get(c, fd);
        fill_until_error(f, fd, recs[i], &cfull, &clast, &cerr);
        cr_assert_eq(wc_file_sync(f, 0), 0, "records of %zu", recs[i]);
        cr_assert_eq(wc_file_put(f), 0);
        struct wc_stats st;
        wc_cache_stats(c, &st);
        cr_assert_eq(wc_cache_close(c), 0);
        close(fd);
        size_t clen;
        unsigned char *cdisk = wct_read_path(cpath, &clen);
        unlink(cpath);
        cr_assert(cfull == kfull && clast == klast && cerr == kerr,
                  "records of %zu: the cache wrote %ld, then %zd (%s); the "
                  "kernel %ld, then %zd (%s)", recs[i], cfull, clast,
                  strerror(cerr), kfull, klast, strerror(kerr));
        cr_assert_eq(clen, klen);
        cr_assert_eq(wct_diff(cdisk, kdisk, klen), -1);
        cr_assert_eq(st.errors, 0, "records of %zu: %llu write-back errors",
                     recs[i], (unsigned long long)st.errors);
        /* Whole pages to a file with nothing cached go straight to the
         * kernel (write.c, WC_DIRECT_MIN): smaller records are cached. */
        cr_assert(st.writes > 0 || recs[i] >= 4096, "nothing was cached");
        free(kdisk);
        free(cdisk);
    }
}

/* Three files fill one 1 MiB tmpfs in turn: the engine must answer each
 * write as the kernel does, and every byte of a write that returned
 * success must be in the files after close. Each file holds a grant of
 * room (errors.c (4)), the write that finds no room goes to the kernel
 * only after the others wrote back (errors.c (5)), and a file written in
 * blocks the engine sends straight to the kernel takes its room from the
 * same budget (errors.c (6)). Without (4) and (5), the cache took about
 * 1.5 MB of 1000-byte writes on the 1 MiB file system and a file's close
 * failed with ENOSPC, its bytes lost; without (6), a file written in
 * 64 KiB blocks took the room of the other two's cached bytes. */
#define NFULL 3
static void fill_three(struct wc_file **f, int *fd, const size_t *rec,
                       ssize_t *res, int *err, int nres)
{
    unsigned char *b = malloc(1 << 16);
    off_t pos[NFULL] = {0};
    int fails = 0;
    for (int k = 0; k < nres; k++) {
        res[k] = 0;
        err[k] = 0;
    }
    for (int k = 0; k < nres && fails < 6; k++) {
        int i = k % NFULL;
        wct_pattern(b, rec[i], pos[i], 11 + i);
        errno = 0;
        ssize_t r = f ? wc_write_fast(f[i], b, rec[i], pos[i], 0, NULL)
                      : pwrite(fd[i], b, rec[i], pos[i]);
        if (f && r == WC_FAST_NO)
            r = wc_pwrite(f[i], b, rec[i], pos[i], 0, NULL);
        if (f && r < 0) {
            errno = (int)-r;
            r = -1;
        }
        res[k] = r;
        err[k] = r < 0 ? errno : 0;
        if (r > 0)
            pos[i] += r;
        if (r != (ssize_t)rec[i])
            fails++;
    }
    free(b);
}

Test(errors, full_disk_shared_by_three_files)
{
    const char *mnt = mount_1m("full3");
    enum { NRES = 4000 };
    static ssize_t kres[NRES], cres[NRES];
    static int kerr[NRES], cerr[NRES];
    static const size_t recs[][NFULL] = {
        {1000, 1000, 1000}, {333, 333, 333}, {1000, 65536, 1000}};
    for (size_t t = 0; t < sizeof recs / sizeof recs[0]; t++) {
        char path[NFULL][4200];
        int fd[NFULL];
        unsigned char *kdisk[NFULL];
        size_t klen[NFULL];
        for (int i = 0; i < NFULL; i++) {
            snprintf(path[i], sizeof path[i], "%s/f%d", mnt, i);
            fd[i] = open(path[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
            cr_assert(fd[i] >= 0);
        }
        fill_three(NULL, fd, recs[t], kres, kerr, NRES);
        for (int i = 0; i < NFULL; i++) {
            cr_assert_eq(close(fd[i]), 0);
            kdisk[i] = wct_read_path(path[i], &klen[i]);
            unlink(path[i]);
        }

        struct wc_cache *c = wct_cache_open(0);
        struct wc_file *f[NFULL];
        for (int i = 0; i < NFULL; i++) {
            fd[i] = open(path[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
            cr_assert(fd[i] >= 0);
            f[i] = wct_get(c, fd[i]);
        }
        fill_three(f, fd, recs[t], cres, cerr, NRES);
        for (int i = 0; i < NFULL; i++)
            cr_assert_eq(wc_file_put(f[i]), 0, "records of %zu/%zu: file %d",
                         recs[t][0], recs[t][1], i);
        struct wc_stats st;
        wc_cache_stats(c, &st);
        cr_assert_eq(wc_cache_close(c), 0);
        for (int k = 0; k < NRES; k++)
            cr_assert(cres[k] == kres[k] && cerr[k] == kerr[k],
                      "records of %zu/%zu, write %d: the cache %zd (%s), "
                      "the kernel %zd (%s)", recs[t][0], recs[t][1], k,
                      cres[k], strerror(cerr[k]), kres[k],
                      strerror(kerr[k]));
        for (int i = 0; i < NFULL; i++) {
            cr_assert_eq(close(fd[i]), 0);
            size_t clen;
            unsigned char *cdisk = wct_read_path(path[i], &clen);
            unlink(path[i]);
            cr_assert_eq(clen, klen[i], "records of %zu/%zu: file %d holds "
                         "%zu bytes, the kernel's %zu", recs[t][0],
                         recs[t][1], i, clen, klen[i]);
            cr_assert_eq(wct_diff(cdisk, kdisk[i], klen[i]), -1);
            free(cdisk);
            free(kdisk[i]);
        }
        cr_assert_eq(st.errors, 0, "records of %zu/%zu: %llu write-back "
                     "errors", recs[t][0], recs[t][1],
                     (unsigned long long)st.errors);
        cr_assert(st.writes > 0, "nothing was cached");
    }
}

/* A write the engine sends to the kernel itself (64 KiB to a clean file)
 * has taken its room from the budget and is on its way, held in its
 * system call by the test, while another thread caches 1000-byte writes
 * of a second file, renewing the budget from fstatfs, which does not show
 * the 64 KiB yet. The renewals must leave that room out (errors.c (7)):
 * when the held write lands, every byte of the second file's successful
 * writes must still reach the disk. Without (7) the second file cached
 * into the held write's room and its write-back failed with ENOSPC. */
static volatile int g_hold;                 /* 1 armed, 2 held, 3 go */
static ssize_t (*g_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*g_pwritev)(int, const struct iovec *, int, off_t);

static void hold_big(const struct iovec *v, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += v[i].iov_len;
    if (len == 65536 && __sync_bool_compare_and_swap(&g_hold, 1, 2))
        while (__atomic_load_n(&g_hold, __ATOMIC_ACQUIRE) != 3)
            usleep(1000);
}

static ssize_t held_pwritev2(int fd, const struct iovec *v, int n, off_t p,
                             int fl)
{
    hold_big(v, n);
    return g_pwritev2(fd, v, n, p, fl);
}

static ssize_t held_pwritev(int fd, const struct iovec *v, int n, off_t p)
{
    hold_big(v, n);
    return g_pwritev(fd, v, n, p);
}

/* The small file's writer: 1000-byte records until the first error or
 * short write; g_small_pos is what was acknowledged. */
static long g_small_pos;

static void *small_writer(void *arg)
{
    struct wc_file *f = arg;
    unsigned char b[1000];
    for (;;) {
        long pos = __atomic_load_n(&g_small_pos, __ATOMIC_RELAXED);
        wct_pattern(b, sizeof b, pos, 22);
        ssize_t r = wc_pwrite(f, b, sizeof b, pos, 0, NULL);
        if (r <= 0)
            break;
        __atomic_store_n(&g_small_pos, pos + r, __ATOMIC_RELEASE);
        if (r < (ssize_t)sizeof b)
            break;
    }
    return NULL;
}

static void *big_writer(void *arg)
{
    struct wc_file *f = arg;
    unsigned char *b = malloc(65536);
    wct_pattern(b, 65536, 0, 21);
    ssize_t r = wc_pwrite(f, b, 65536, 0, 0, NULL);
    free(b);
    return (void *)(intptr_t)r;
}

Test(errors, room_of_a_write_in_flight)
{
    const char *mnt = mount_1m("inflight");
    char fill[4200], big[4200], small[4200];
    snprintf(fill, sizeof fill, "%s/fill", mnt);
    snprintf(big, sizeof big, "%s/big", mnt);
    snprintf(small, sizeof small, "%s/small", mnt);
    /* Leave about 160 KiB free. */
    int ff = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(ff >= 0);
    static unsigned char z[4096];
    while (write(ff, z, sizeof z) == (ssize_t)sizeof z)
        ;
    cr_assert_eq(ftruncate(ff, lseek(ff, 0, SEEK_CUR) - (160 << 10)), 0);
    close(ff);

    g_pwritev2 = wc_sys.pwritev2;
    g_pwritev = wc_sys.pwritev;
    wc_sys.pwritev2 = held_pwritev2;
    wc_sys.pwritev = held_pwritev;
    /* 64 KiB writes go straight to the kernel (bypass): their room comes
     * from the budget (errors.c (6)). */
    struct wc_config cfg = {.size = 256 * WCT_PG, .bypass = 65536};
    struct wc_cache *c = wct_cache_open_cfg(&cfg);
    int bfd = open(big, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int sfd = open(small, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert(bfd >= 0 && sfd >= 0);
    struct wc_file *bf = wct_get(c, bfd), *sf = wct_get(c, sfd);
    g_hold = 1;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, big_writer, bf), 0);
    for (int i = 0; i < 5000 && __atomic_load_n(&g_hold, __ATOMIC_ACQUIRE)
                                    != 2; i++)
        usleep(1000);
    cr_assert_eq(g_hold, 2, "the 64 KiB write never reached the kernel");
    /* The held write's room is taken: the small file caches what the
     * disk will hold beside it, and then waits for the held write (a
     * settle writes the big file back, errors.c (5)): released once the
     * small writer has made no progress for 300 ms. */
    pthread_t s;
    cr_assert_eq(pthread_create(&s, NULL, small_writer, sf), 0);
    long last = -1;
    for (int still = 0; still < 30;) {
        usleep(10000);
        long now = __atomic_load_n(&g_small_pos, __ATOMIC_ACQUIRE);
        still = now == last ? still + 1 : 0;
        last = now;
    }
    __atomic_store_n(&g_hold, 3, __ATOMIC_RELEASE);
    void *res;
    pthread_join(t, &res);
    pthread_join(s, NULL);
    long pos = g_small_pos;
    /* Whatever the order, the kernel would have given the big write its
     * room or ENOSPC; the small file's acknowledged bytes are all kept. */
    int put = wc_file_put(sf);
    cr_assert_eq(put, 0, "the small file's write-back: %s (%ld bytes "
                 "acknowledged)", strerror(-put), (long)pos);
    cr_assert(wc_file_put(bf) == 0 || (intptr_t)res < 0);
    cr_assert_eq(wc_cache_close(c), 0);
    wc_sys.pwritev2 = g_pwritev2;
    wc_sys.pwritev = g_pwritev;
    close(bfd);
    close(sfd);
    size_t len;
    unsigned char *d = wct_read_path(small, &len);
    cr_assert_eq(len, (size_t)pos, "the small file holds %zu bytes, %ld "
                 "were acknowledged", len, (long)pos);
    unsigned char *want = malloc(len ? len : 1);
    wct_pattern(want, len, 0, 22);
    cr_assert_eq(wct_diff(d, want, len), -1);
    cr_assert(pos > 0, "nothing was written to the small file");
    free(d);
    free(want);
    unlink(fill);
    unlink(big);
    unlink(small);
}
