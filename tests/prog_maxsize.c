/*
 * prog_maxsize.c - writes across the largest size a file may have on its
 * file system (s_maxbytes), for test_shim_errors.c: every call that did
 * not simply succeed is printed, so that a run under the shim can be
 * compared line by line with a run without it.
 *
 *   prog_maxsize FILE
 *
 * Finds the limit with lseek (EINVAL past it), then writes 2000 records
 * of 10 bytes ending past it, a pwrite past it and one across it, an
 * O_APPEND write at it, and prints the size, the offset, a hash of the
 * last 20,000 bytes and what fsync and close return.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void said(const char *what, long i, ssize_t r)
{
    printf("%s %ld: %zd%s%s\n", what, i, r, r < 0 ? " " : "",
           r < 0 ? strerror(errno) : "");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 2;
    uint64_t lo = 0, hi = (uint64_t)1 << 62;    /* lo allowed, hi not */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (lseek(fd, (off_t)mid, SEEK_SET) >= 0)
            lo = mid;
        else
            hi = mid;
    }
    printf("max %llu\n", (unsigned long long)lo);
    off_t start = (off_t)lo - 20000 + 25;
    if (lseek(fd, start, SEEK_SET) != start)
        return 2;
    char b[10];
    for (long i = 0; i < 2000; i++) {
        memset(b, 'a' + (int)(i % 26), sizeof b);
        ssize_t r = write(fd, b, sizeof b);
        if (r != (ssize_t)sizeof b)
            said("write", i, r);
    }
    said("pwrite past", 0, pwrite(fd, b, sizeof b, (off_t)lo + 100000));
    said("pwrite across", 0, pwrite(fd, "0123456789", 10, (off_t)lo - 4));
    int fa = open(argv[1], O_WRONLY | O_APPEND);
    said("append", 0, fa < 0 ? -1 : write(fa, b, sizeof b));
    said("close append", 0, close(fa));
    struct stat st;
    said("fstat", 0, fstat(fd, &st));
    printf("size %lld offset %lld\n", (long long)st.st_size,
           (long long)lseek(fd, 0, SEEK_CUR));
    static char tail[20000];
    ssize_t n = pread(fd, tail, sizeof tail, (off_t)lo - 20000);
    uint64_t h = 1469598103934665603ull;
    for (ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)tail[i]) * 1099511628211ull;
    printf("tail %zd bytes, hash %016llx\n", n, (unsigned long long)h);
    said("fsync", 0, fsync(fd));
    said("close", 0, close(fd));
    return 0;
}
