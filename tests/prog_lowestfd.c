/*
 * prog_lowestfd.c - open() gives the lowest free descriptor number.
 *
 *   prog_lowestfd FILE SECONDS
 *
 * Writes FILE in small writes (under the shim: cached, so the flusher
 * thread runs), closes descriptor 0, then for SECONDS opens /dev/null and
 * closes it again, again and again: POSIX gives 0 each time (daemons rely
 * on it). Prints "opens N other M": M opens that got another number.
 * Exits 0.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 1;
    for (int i = 0; i < 100; i++)
        if (write(fd, "0123456789", 10) != 10)
            return 1;
    close(0);
    long opens = 0, other = 0;
    double end = now() + atof(argv[2]);
    while (now() < end) {
        int x = open("/dev/null", O_RDONLY);
        if (x < 0)
            return 1;
        other += x != 0;
        close(x);
        opens++;
    }
    if (close(fd))
        return 1;
    printf("opens %ld other %ld\n", opens, other);
    return 0;
}
