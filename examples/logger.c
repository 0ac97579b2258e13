/*
 * logger.c - a chatty service's log: one write() per line.
 *
 *   logger PATH COUNT
 *
 * Appends COUNT lines of about 80 bytes to PATH (created or truncated),
 * each with its own write() call, as many services log; then prints how
 * long that took. The lines depend only on their number, so two runs
 * produce identical files.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PATH COUNT\n", argv[0]);
        return 2;
    }
    long count = atol(argv[2]);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    static const char *const level[] = {"INFO", "INFO", "DEBUG", "WARN"};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long bytes = 0;
    for (long i = 0; i < count; i++) {
        char line[160];
        int n = snprintf(line, sizeof line,
                         "2024-01-01T00:%02ld:%02ld.%06ld %-5s worker-%ld "
                         "request %ld handled status=%d bytes=%ld\n",
                         i / 60000000 % 60, i / 1000000 % 60, i % 1000000,
                         level[i % 4], i % 8, i, i % 17 ? 200 : 404,
                         (i * 7919) % 65536);
        if (write(fd, line, (size_t)n) != n) {
            perror("write");
            return 1;
        }
        bytes += n;
    }
    if (close(fd) < 0) {
        perror("close");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("logger: %ld lines, %lld bytes in %.3f s (%.2f us per line)\n",
           count, bytes, s, count ? s * 1e6 / (double)count : 0.0);
    return 0;
}
