/*
 * test_engine_threads.c - the engine under concurrent writers.
 *
 * Four threads append records to one file, four write disjoint records
 * with pwrite to another, four write files of their own, while a fifth
 * flushes expired data in a loop; the cache is small, so eviction and
 * pressure write-back run throughout. Afterwards every record is there,
 * whole, exactly once. Also: a nested entry from the same thread (what a
 * signal handler's write() would be) is refused with -EDEADLK, never a
 * deadlock. Covers the lock rules of cache/cache_int.h.
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
#include "wcache/cache.h"

#define NREC 4000
#define RECLEN 48
#define NT 4

static struct wc_cache *cache;
static struct wc_file *fa, *fp, *fown[NT];
static int fda, fdp, fdown[NT];
static volatile int stop;

static void record(char *buf, int t, int i)
{
    snprintf(buf, RECLEN + 1, "t%02d r%06d %*s\n", t, i, RECLEN - 13, "x");
}

static int open_file(const char *name, struct wc_file **f)
{
    int err;
    int fd = open(wct_path(name), O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    *f = wc_file_get(cache, fd, &err);
    cr_assert_not_null(*f, "wc_file_get: %d", err);
    return fd;
}

static void *appender(void *arg)
{
    int t = (int)(long)arg;
    char rec[RECLEN + 1];
    for (int i = 0; i < NREC; i++) {
        record(rec, t, i);
        if (wc_pwrite(fa, rec, RECLEN, 0, 1, NULL) != RECLEN)
            return (void *)1;
    }
    return NULL;
}

static void *pwriter(void *arg)
{
    int t = (int)(long)arg;
    char rec[RECLEN + 1];
    for (int i = 0; i < NREC; i++) {
        record(rec, t, i);
        off_t at = ((off_t)i * NT + t) * RECLEN;
        if (wc_pwrite(fp, rec, RECLEN, at, 0, NULL) != RECLEN)
            return (void *)1;
    }
    return NULL;
}

static void *owner(void *arg)
{
    int t = (int)(long)arg;
    char rec[RECLEN + 1];
    for (int i = 0; i < NREC; i++) {
        record(rec, t, i);
        if (wc_pwrite(fown[t], rec, RECLEN, (off_t)i * RECLEN, 0, NULL) !=
            RECLEN)
            return (void *)1;
    }
    return NULL;
}

static void *flusher(void *arg)
{
    (void)arg;
    while (!stop) {
        wc_cache_flush_expired(cache, 0);
        usleep(200);
    }
    return NULL;
}

static char *slurp(int fd, size_t *n)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    char *b = malloc((size_t)st.st_size + 1);
    cr_assert_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    b[st.st_size] = 0;
    *n = (size_t)st.st_size;
    return b;
}

Test(engine_threads, writers, .init = wct_setup, .fini = wct_teardown,
     .timeout = 120)
{
    wct_watchdog(120, "concurrent writers");
    struct wc_config cfg = {.size = 128 * 4096, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&cache, &cfg), 0);
    fda = open_file("append", &fa);
    fdp = open_file("pwrite", &fp);
    for (int t = 0; t < NT; t++) {
        char name[16];
        snprintf(name, sizeof name, "own%d", t);
        fdown[t] = open_file(name, &fown[t]);
    }
    pthread_t th[3 * NT + 1];
    for (int t = 0; t < NT; t++) {
        pthread_create(&th[t], NULL, appender, (void *)(long)t);
        pthread_create(&th[NT + t], NULL, pwriter, (void *)(long)t);
        pthread_create(&th[2 * NT + t], NULL, owner, (void *)(long)t);
    }
    pthread_create(&th[3 * NT], NULL, flusher, NULL);
    for (int t = 0; t < 3 * NT; t++) {
        void *r;
        pthread_join(th[t], &r);
        cr_assert_null(r, "writer %d failed", t);
    }
    stop = 1;
    pthread_join(th[3 * NT], NULL);

    cr_assert_eq(wc_file_put(fa), 0);
    cr_assert_eq(wc_file_put(fp), 0);
    for (int t = 0; t < NT; t++)
        cr_assert_eq(wc_file_put(fown[t]), 0);
    struct wc_stats st;
    wc_cache_stats(cache, &st);
    cr_assert_eq(wc_cache_close(cache), 0);
    cr_assert_gt(st.evictions + st.flushes[WC_WHY_PRESSURE] +
                     st.flushes[WC_WHY_FULL], 0,
                 "the cache was meant to be under pressure");

    /* Appends: every record once, whole, each thread's in its order. */
    size_t n;
    char *b = slurp(fda, &n);
    cr_assert_eq(n, (size_t)NT * NREC * RECLEN);
    int seen[NT] = {0};
    for (size_t off = 0; off < n; off += RECLEN) {
        int t, i;
        cr_assert_eq(sscanf(b + off, "t%d r%d", &t, &i), 2,
                     "torn record at %zu", off);
        cr_assert(t >= 0 && t < NT);
        cr_assert_eq(i, seen[t], "thread %d record %d out of order", t, i);
        seen[t]++;
        cr_assert_eq(b[off + RECLEN - 1], '\n');
    }
    free(b);

    /* pwrite: each record at its place. */
    char rec[RECLEN + 1];
    b = slurp(fdp, &n);
    cr_assert_eq(n, (size_t)NT * NREC * RECLEN);
    for (int i = 0; i < NREC; i++)
        for (int t = 0; t < NT; t++) {
            record(rec, t, i);
            cr_assert_eq(memcmp(b + ((size_t)i * NT + t) * RECLEN, rec,
                                RECLEN), 0, "pwrite record %d/%d", t, i);
        }
    free(b);
    for (int t = 0; t < NT; t++) {
        b = slurp(fdown[t], &n);
        cr_assert_eq(n, (size_t)NREC * RECLEN);
        for (int i = 0; i < NREC; i++) {
            record(rec, t, i);
            cr_assert_eq(memcmp(b + (size_t)i * RECLEN, rec, RECLEN), 0);
        }
        free(b);
        close(fdown[t]);
    }
    close(fda);
    close(fdp);
}

/* A nested entry on the same thread: what a signal handler's write()
 * does when it interrupts the engine. Simulated by entering through a
 * SIGSEGV handler that runs inside the engine's own copy... the handler
 * is not run for those; so use the public guard directly instead
 * (wc_in_engine: wcache/thr.h). */

Test(engine_threads, nested_entry_is_refused, .init = wct_setup, .fini = wct_teardown,
     .timeout = 30)
{
    struct wc_config cfg = {.size = 64 * 4096, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&cache, &cfg), 0);
    fda = open_file("nested", &fa);
    wc_in_engine = 1;       /* as if interrupted inside the engine */
    cr_assert_eq(wc_pwrite(fa, "x", 1, 0, 0, NULL), -EDEADLK);
    cr_assert_eq(wc_file_flush(fa, WC_WHY_OTHER), -EDEADLK);
    wc_in_engine = 0;
    cr_assert_eq(wc_pwrite(fa, "x", 1, 0, 0, NULL), 1);
    cr_assert_eq(wc_file_put(fa), 0);
    cr_assert_eq(wc_cache_close(cache), 0);
    close(fda);
}
