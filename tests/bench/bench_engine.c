/*
 * bench_engine.c - what one 64-byte write costs in the engine alone.
 *
 * `make bench` runs it. Cases, each the median of ROUNDS rounds:
 *   hot     64-byte pwrites cycling over 1 MiB already in the cache: the
 *           engine's own cost (lock, page lookup, copy, range, size);
 *   append  64-byte appends of a 32 MiB stream, write-back included;
 *   kernel  the same append stream with the real pwrite, for the ratio.
 * The file lives in $WCACHE_BENCH_DIR (default /tmp). Times are
 * nanoseconds of CLOCK_MONOTONIC per write; the machine is shared, so read
 * ratios, not absolutes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib_sys.h"
#include "wcache/cache.h"

#define ROUNDS 7
#define REC 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

static void die(const char *what, long r)
{
    fprintf(stderr, "bench_engine: %s failed: %ld\n", what, r);
    exit(1);
}

int main(void)
{
    const char *dir = getenv("WCACHE_BENCH_DIR");
    char path[4096];
    char rec[REC];
    double hot[ROUNDS], app[ROUNDS], ker[ROUNDS];
    const long hot_n = 2000000, app_n = (32 << 20) / REC;

    wct_sys_use_libc();
    snprintf(path, sizeof path, "%s/wcache-bench.%d", dir ? dir : "/tmp",
             (int)getpid());
    memset(rec, 'r', sizeof rec);
    rec[REC - 1] = '\n';

    for (int round = 0; round < ROUNDS; round++) {
        struct wc_cache *c;
        struct wc_config cfg = {.size = 128 << 20};
        int r = wc_cache_open(&c, &cfg);
        if (r < 0)
            die("wc_cache_open", r);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        struct wc_file *f = wc_file_get(c, fd, &r);
        if (!f)
            die("wc_file_get", r);

        /* hot: warm 1 MiB first, then overwrite it again and again */
        for (long i = 0; i < (1 << 20) / REC; i++)
            wc_pwrite(f, rec, REC, i * REC, 0, NULL);
        double t0 = now();
        for (long i = 0; i < hot_n; i++)
            if (wc_pwrite(f, rec, REC, (i & 16383) * REC, 0, NULL) != REC)
                die("wc_pwrite", i);
        hot[round] = (now() - t0) / hot_n;
        wc_file_truncate(f, 0);

        /* append: a stream, write-back included */
        t0 = now();
        for (long i = 0; i < app_n; i++)
            if (wc_pwrite(f, rec, REC, 0, 1, NULL) != REC)
                die("wc_pwrite append", i);
        wc_file_flush(f, WC_WHY_OTHER);
        app[round] = (now() - t0) / app_n;
        wc_file_put(f);
        wc_cache_close(c);
        close(fd);

        /* kernel: the same stream with pwrite */
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        t0 = now();
        for (long i = 0; i < app_n; i++)
            if (pwrite(fd, rec, REC, i * REC) != REC)
                die("pwrite", i);
        ker[round] = (now() - t0) / app_n;
        close(fd);
        unlink(path);
    }
    double h = median(hot, ROUNDS), a = median(app, ROUNDS),
           k = median(ker, ROUNDS);
    printf("engine, 64-byte writes, median of %d rounds (%s)\n", ROUNDS,
           dir ? dir : "/tmp");
    printf("  hot (in cache)        %7.1f ns/write   target < 30 ns\n", h);
    printf("  append + write-back   %7.1f ns/write\n", a);
    printf("  kernel pwrite         %7.1f ns/write\n", k);
    printf("  speed-up, append      %7.1fx\n", k / a);
    return 0;
}
