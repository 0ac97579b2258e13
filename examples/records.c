/*
 * records.c - fixed-size records written with pwrite() at computed
 * offsets, then read back and verified.
 *
 *   records PATH COUNT [SIZE]
 *
 * Writes COUNT records of SIZE bytes (default 100) in a scattered order
 * (record i goes to slot (i * 7919) mod COUNT, which visits every slot
 * once when COUNT is not a multiple of 7919), each with one pwrite();
 * then reads every record back with pread() and checks it. Exit status 1
 * and a message on the first bad record. Prints the times of both phases.
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
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The bytes of record `slot`: its number, then a pattern from it. */
static void fill(char *buf, size_t size, long slot)
{
    int n = snprintf(buf, size, "record %08ld:", slot);
    for (size_t i = (size_t)n; i < size - 1; i++)
        buf[i] = (char)('A' + (slot * 31 + (long)i) % 26);
    buf[size - 1] = '\n';
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s PATH COUNT [SIZE]\n", argv[0]);
        return 2;
    }
    long count = atol(argv[2]);
    size_t size = argc == 4 ? (size_t)atol(argv[3]) : 100;
    if (count <= 0 || count % 7919 == 0 || size < 16 || size > 65536) {
        fprintf(stderr, "records: COUNT must be positive and not a multiple"
                " of 7919; SIZE between 16 and 65536\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    char *buf = malloc(size), *got = malloc(size);
    double t0 = now();
    for (long i = 0; i < count; i++) {
        long slot = (long)(((long long)i * 7919) % count);
        fill(buf, size, slot);
        if (pwrite(fd, buf, size, (off_t)slot * (off_t)size) != (ssize_t)size) {
            perror("pwrite");
            return 1;
        }
    }
    double t1 = now();
    for (long slot = 0; slot < count; slot++) {
        fill(buf, size, slot);
        ssize_t n = pread(fd, got, size, (off_t)slot * (off_t)size);
        if (n != (ssize_t)size || memcmp(buf, got, size) != 0) {
            fprintf(stderr, "records: record %ld is wrong (read %zd bytes)\n",
                    slot, n);
            return 1;
        }
    }
    double t2 = now();
    if (close(fd) < 0) {
        perror("close");
        return 1;
    }
    printf("records: %ld records of %zu bytes: written in %.3f s, "
           "verified in %.3f s\n", count, size, t1 - t0, t2 - t1);
    free(buf);
    free(got);
    return 0;
}
