/*
 * test_engine_async.c - write-back in the background (cache/async.c).
 *
 * - Streams against the kernel while a flusher thread writes the batches
 *   they hand over: a seeded random sequence, mostly writes that continue
 *   the last one (streams), with rewrites of earlier pages (which may be
 *   in flight), appends, reads, truncates, flushes, fsync and invalidate.
 *   Every answer and the final file equal the kernel's, and the flusher
 *   wrote batches (wc_stats.wb_background).
 * - With no thread taking the batches, the threads that need a file
 *   settled write them (a write into a page in flight, a read, truncate,
 *   fsync, close): the same sequence, the same answers.
 * - A batch that fails keeps its bytes: the error reaches fsync once, the
 *   retry writes everything, and the file ends as the kernel's.
 * - Where fstat is slow (a server), a stream's disk notes come at their
 *   rate, not at every write-back.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib_cache.h"
#include "wcache/cache.h"
#include "wcache/clock.h"
#include "wcache/sys.h"

#define AREA (32 << 20)
#define MAXLEN 9000

/* ---- a flusher: a thread that writes what streams hand over ------------ */

static sem_t kicks;
static int stop;
static struct wc_cache *flusher_cache;

static void kick(void)
{
    sem_post(&kicks);
}

static void no_kick(void)
{
}

static void *flusher(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 2000000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000;
        }
        sem_timedwait(&kicks, &t);
        wc_cache_async_run(flusher_cache);
    }
    return NULL;
}

static pthread_t flusher_start(struct wc_cache *c)
{
    pthread_t t;
    flusher_cache = c;
    stop = 0;
    cr_assert_eq(sem_init(&kicks, 0, 0), 0);
    cr_assert_eq(pthread_create(&t, NULL, flusher, NULL), 0);
    wc_cache_async(c, kick);
    return t;
}

static void flusher_stop(struct wc_cache *c, pthread_t t)
{
    wc_cache_async(c, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    sem_post(&kicks);
    pthread_join(t, NULL);
    wc_cache_async_run(c);      /* what was handed over as it stopped */
}

/* ---- the sequence ------------------------------------------------------ */

static uint64_t rng;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Same answer from the kernel (want, errno) and the engine (got). */
#define SAME(got, want, ...)                                               \
    do {                                                                   \
        ssize_t w_ = (want);                                               \
        int e_ = w_ < 0 ? errno : 0;                                       \
        cr_assert_eq((got), w_ < 0 ? -e_ : w_, __VA_ARGS__);               \
    } while (0)

/* `nops` operations on one file against the kernel; `with_flusher`: a
 * thread takes the batches, else nobody does. Returns the batches the
 * flusher wrote. */
static uint64_t run(unsigned seed, size_t cache_bytes, int nops,
                    int with_flusher)
{
    int fa = open(wct_path("engine"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    int fb = open(wct_path("kernel"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fa >= 0 && fb >= 0);
    struct wc_cache *c;
    struct wc_config cfg = {.size = cache_bytes, .dir = wct_dir,
                            .bg_page_ns = -1};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    pthread_t t = 0;
    if (with_flusher)
        t = flusher_start(c);
    else
        wc_cache_async(c, no_kick);
    int err;
    struct wc_file *f = wc_file_get(c, fa, &err);
    cr_assert_not_null(f, "wc_file_get: %d", err);

    uint8_t *src = malloc(MAXLEN + 4096), *d1 = malloc(MAXLEN),
            *d2 = malloc(MAXLEN);
    for (int i = 0; i < MAXLEN + 4096; i++)
        src[i] = (uint8_t)(i * 7 + seed) | 1;
    rng = seed * 0x9E3779B97F4A7C15ull + 1;
    off_t last = 0;
    for (int op = 0; op < nops; op++) {
        uint64_t kind = next() % 1000;
        off_t size = lseek(fb, 0, SEEK_END);
        size_t len = next() % 16 == 0 ? next() % MAXLEN : 1 + next() % 2000;
        const uint8_t *s = src + next() % 4096;
        off_t where = -1;
        if (kind < 800) {                   /* a stream: where the last ended */
            off_t pos = last;
            if (pos + (off_t)len > AREA)
                pos = last = 0;
            ssize_t got = next() % 2
                              ? wc_write_fast(f, s, len, pos, 0, &where)
                              : WC_FAST_NO;
            if (got == WC_FAST_NO)
                got = wc_pwrite(f, s, len, pos, 0, &where);
            SAME(got, pwrite(fb, s, len, pos), "seed %u op %d stream", seed,
                 op);
            last = pos + (off_t)len;
        } else if (kind < 850) {            /* append */
            ssize_t got = wc_pwrite(f, s, len, 0, 1, &where);
            SAME(got, pwrite(fb, s, len, size), "seed %u op %d append", seed,
                 op);
            cr_assert_eq(where, size, "seed %u op %d append at", seed, op);
            last = size + (off_t)len;
        } else if (kind < 930) {            /* rewrite, maybe in flight */
            off_t pos = size ? (off_t)(next() % (uint64_t)size) : 0;
            SAME(wc_pwrite(f, s, len, pos, 0, NULL), pwrite(fb, s, len, pos),
                 "seed %u op %d rewrite at %ld", seed, op, (long)pos);
        } else if (kind < 990) {            /* read */
            off_t pos = (off_t)(next() % (uint64_t)(size + 1));
            ssize_t got = wc_pread(f, fa, d1, len, pos);
            SAME(got, pread(fb, d2, len, pos), "seed %u op %d pread", seed,
                 op);
            if (got > 0)
                cr_assert_eq(memcmp(d1, d2, (size_t)got), 0,
                             "seed %u op %d pread bytes", seed, op);
        } else if (kind < 993) {            /* truncate */
            off_t n = (off_t)(next() % (uint64_t)(size + 4096));
            cr_assert_eq(ftruncate(fb, n), 0);
            cr_assert_eq(wc_file_truncate(f, n), 0, "seed %u op %d", seed,
                         op);
        } else if (kind < 996) {
            cr_assert_eq(wc_file_flush(f, WC_WHY_OTHER), 0);
        } else if (kind < 998) {
            cr_assert_eq(wc_file_sync(f, (int)(next() % 2)), 0);
        } else {
            cr_assert_eq(wc_file_invalidate(f, WC_WHY_LOCK), 0);
        }
        cr_assert_eq(wc_file_size(f), lseek(fb, 0, SEEK_END),
                     "seed %u op %d size", seed, op);
    }
    cr_assert_eq(wc_file_put(f), 0);
    if (with_flusher)
        flusher_stop(c, t);
    struct wc_stats st;
    wc_cache_stats(c, &st);
    cr_assert_eq(wc_cache_close(c), 0);

    size_t n;
    unsigned char *kernel = wct_read_path(wct_path("kernel"), &n);
    wct_expect_file(wct_path("engine"), kernel, n);
    free(kernel);
    free(src);
    free(d1);
    free(d2);
    close(fa);
    close(fb);
    return st.wb_background;
}

Test(engine_async, streams_against_the_kernel_with_a_flusher,
     .init = wct_setup, .fini = wct_teardown, .timeout = 300)
{
    wct_watchdog(300, "seeds with a flusher");
    int seeds = wct_long() ? 60 : 6;
    uint64_t bg = 0;
    for (int s = 1; s <= seeds; s++) {
        uint64_t b = run((unsigned)s, s % 2 ? 4 << 20 : 1 << 20, 6000, 1);
        if (getenv("WCT_TRACE")) fprintf(stderr, "seed %d bg %lu\n", s, (unsigned long)b);
        bg += b;
    }
    cr_assert_gt(bg, 0, "no batch was written in the background");
}

Test(engine_async, batches_nobody_takes_are_written_by_settlers,
     .init = wct_setup, .fini = wct_teardown, .timeout = 300)
{
    wct_watchdog(300, "seeds without a flusher");
    int seeds = wct_long() ? 30 : 3;
    for (int s = 100; s < 100 + seeds; s++)
        cr_assert_eq(run((unsigned)s, 4 << 20, 6000, 0), 0);
}

/* Batches written at chosen points: nobody takes them until the test
 * calls wc_cache_async_run itself (as the flusher would), so that a
 * batch is DONE and not yet reaped when the next call comes. The cache
 * and the file "data" in it, whose descriptor is *fd. */
static struct wc_file *manual_file(struct wc_cache **c, int *fd)
{
    *fd = open(wct_path("data"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(*fd >= 0);
    struct wc_config cfg = {.size = 8 << 20, .dir = wct_dir,
                            .bg_page_ns = -1};
    cr_assert_eq(wc_cache_open(c, &cfg), 0);
    wc_cache_async(*c, no_kick);
    return wct_get(*c, *fd);
}

/* Append [from, to) of want in 1000-byte writes. */
static void stream(struct wc_file *f, const uint8_t *want, size_t from,
                   size_t to)
{
    for (size_t off = from; off < to; off += 1000) {
        size_t n = to - off < 1000 ? to - off : 1000;
        cr_assert_eq(wc_pwrite(f, want + off, n, (off_t)off, 0, NULL),
                     (ssize_t)n);
    }
}

Test(engine_async, writes_reads_and_truncates_meet_pages_in_flight,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    struct wc_cache *c;
    int fd;
    struct wc_file *f = manual_file(&c, &fd);
    size_t total = 1200 * 1000;
    uint8_t *want = malloc(total), *got = malloc(8192);
    wct_pattern(want, total, 0, 3);

    /* A batch in flight, written, not reaped: a rewrite inside it. */
    stream(f, want, 0, 600 * 1000);
    cr_assert_eq(wc_cache_async_run(c), 1, "no batch was handed over");
    wct_pattern(want + 5 * 4096 + 10, 3000, 5 * 4096 + 10, 9);
    cr_assert_eq(wc_pwrite(f, want + 5 * 4096 + 10, 3000, 5 * 4096 + 10, 0,
                           NULL), 3000);
    cr_assert_eq(wc_pread(f, fd, got, 8192, 5 * 4096), 8192);
    cr_assert_eq(wct_diff(got, want + 5 * 4096, 8192), -1);

    /* Another, then a truncate that cuts into it. */
    stream(f, want, 600 * 1000, total);
    cr_assert_eq(wc_cache_async_run(c), 1, "no second batch");
    size_t cut = 700 * 1000 + 123;
    cr_assert_eq(wc_file_truncate(f, (off_t)cut), 0);
    cr_assert_eq(wc_file_size(f), (off_t)cut);

    cr_assert_eq(wc_file_put(f), 0);
    struct wc_stats st;
    wc_cache_stats(c, &st);
    cr_assert_eq(st.wb_background, 2);
    cr_assert_eq(wc_cache_close(c), 0);
    wct_expect_file(wct_path("data"), want, cut);
    free(want);
    free(got);
    close(fd);
}

/* A batch that fails with EIO: the next trigger reaps it, the file passes
 * through, fsync reports the error once and the retry writes it all. */
Test(engine_async, a_failed_batch_reaches_fsync_and_is_retried,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    struct wc_cache *c;
    int fd;
    struct wc_file *f = manual_file(&c, &fd);
    size_t total = 1500 * 1000;
    uint8_t *want = malloc(total);
    wct_pattern(want, total, 0, 7);
    wct_rec_start(fd);
    stream(f, want, 0, 600 * 1000);
    wct_inject_fail(WCT_PWRITEV, 1, EIO);
    cr_assert_eq(wc_cache_async_run(c), 1, "no batch was handed over");
    cr_assert(wct_injected(), "the batch did not fail:\n%s", wct_rec_dump());
    stream(f, want, 600 * 1000, total);
    cr_assert_eq(wc_file_sync(f, 0), -EIO);
    cr_assert_eq(wc_file_sync(f, 0), 0);
    wct_rec_stop();
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    wct_expect_file(wct_path("data"), want, total);
    free(want);
    close(fd);
}

/* ---- the disk notes of a stream on a slow file system ------------------ */

/* fstat of the test file takes 300 us here, as a round trip to a server
 * does (GlusterFS: 0.3-0.5 ms), and is counted. */
static ino_t slow_ino;
static unsigned slow_calls;
static int (*plain_fstat)(int, struct stat *);

static int slow_fstat(int fd, struct stat *st)
{
    int r = plain_fstat(fd, st);
    if (r == 0 && st->st_ino == slow_ino) {
        __atomic_add_fetch(&slow_calls, 1, __ATOMIC_RELAXED);
        struct timespec t = {0, 300000};
        nanosleep(&t, NULL);
    }
    return r;
}

/* cache/file.c: where fstat is slow, a stream's disk notes (the fstat a
 * crash replay's check needs after the engine changes the file) come at
 * most once per 32 such fstats' time, the slot busy meanwhile. The
 * stream of whole pages here leaves the file clean at each write-back (a
 * batch of 32 pages, the writer's own: no flusher), and its next write
 * took a note each time: 63 notes in 8 MiB before 2026-12-07. */
Test(engine_async, a_stream_on_a_slow_file_system_notes_at_its_rate,
     .init = wct_setup, .fini = wct_teardown, .timeout = 120)
{
    int fd = open(wct_path("slow"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    slow_ino = st.st_ino;
    struct wc_cache *c = wct_cache_open(8 << 20);
    struct wc_file *f = wct_get(c, fd);
    wc_file_remote(f);                  /* batches of 32 pages */
    size_t total = 8 << 20;
    uint8_t *want = malloc(total);
    cr_assert_not_null(want);
    wct_pattern(want, total, 0, 11);
    plain_fstat = wc_sys.fstat;
    wc_sys.fstat = slow_fstat;
    uint64_t t0 = wc_now_ns();     /* the notes' own clock */
    for (size_t off = 0; off < total; off += 64)
        cr_assert_eq(wc_pwrite(f, want + off, 64, (off_t)off, 0, NULL), 64);
    uint64_t took = wc_now_ns() - t0;
    unsigned notes = __atomic_load_n(&slow_calls, __ATOMIC_RELAXED);
    wc_sys.fstat = plain_fstat;
    /* The first two notes measure fstat; then one per 32 times 300 us. */
    uint64_t allowed = 4 + took / (32 * 300000u);
    cr_assert_leq(notes, allowed, "%u fstats of the file in a stream of "
                  "%.1f ms (at most %lu)", notes, took / 1e6,
                  (unsigned long)allowed);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    wct_expect_file(wct_path("slow"), want, total);
    free(want);
    close(fd);
}
