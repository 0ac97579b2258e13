/*
 * bench_write.c - what a 64-byte write() costs an unmodified program, for
 * `make bench` (tests/bench_shim.sh runs it with and without the shim).
 *
 *   bench_write FILE N
 *
 * Prints two lines: "hot NS" (pwrite of 64-byte records cycling over
 * 1 MiB that stays in the cache) and "append NS" (write() of 64-byte
 * lines to a growing file, write-back included at close), in nanoseconds
 * per call.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long n = atol(argv[2]);
    char rec[64];
    memset(rec, 'r', sizeof rec);
    rec[63] = '\n';

    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 1;
    for (long i = 0; i < 16384; i++)
        pwrite(fd, rec, 64, i * 64);
    double t = now();
    for (long i = 0; i < n; i++)
        if (pwrite(fd, rec, 64, (i & 16383) * 64) != 64)
            return 1;
    printf("hot %.1f\n", (now() - t) / n);
    close(fd);

    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    t = now();
    for (long i = 0; i < n; i++)
        if (write(fd, rec, 64) != 64)
            return 1;
    close(fd);
    printf("append %.1f\n", (now() - t) / n);
    unlink(argv[1]);
    return 0;
}
