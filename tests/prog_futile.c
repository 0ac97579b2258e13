/*
 * prog_futile.c - write patterns the cache gains nothing from (shim/fdtab.c
 * invariant (8)), checked as they run against what the kernel shows.
 *
 *   prog_futile locked FILE N   N records, each written under its own
 *                               record lock (lock, write, unlock: every
 *                               unlock is a consistency point), as
 *                               SQLite's transactions are
 *   prog_futile scatter FILE N  N writes of 512 bytes at scattered
 *                               offsets of a 16 MiB file
 *   prog_futile stream FILE N   N pwrites of 6000 bytes, each where the
 *                               one before ended (a stream of large
 *                               records: worth caching)
 *   prog_futile hot FILE N      N pwrites of 100 bytes going round the
 *                               first 32 records (rewrites near each
 *                               other: worth caching)
 *   prog_futile locked_once FILE N  N records under the one lock taken
 *                               at the start (every 500th record also
 *                               locks and unlocks a byte far away)
 *
 * After every write a second description of the file, opened read-only,
 * reads the record back, and the writer's offset is checked: whether the
 * file is cached, leaves the cache or comes back, both must see it. A
 * record lock taken before the first write must still be held at the end
 * (a child asks with F_GETLK): leaving the cache must not close a
 * descriptor of the file, which would drop it. Prints the checks made;
 * exits 1 at the first wrong answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, long i)
{
    printf("FAIL: %s at record %ld (errno %d)\n", what, i, errno);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: prog_futile locked|locked_once|scatter|hot|"
                "stream "
                "FILE N\n");
        return 2;
    }
    int scatter = !strcmp(argv[1], "scatter");
    int once = !strcmp(argv[1], "locked_once");
    int hot = !strcmp(argv[1], "hot");
    int stream = !strcmp(argv[1], "stream");
    long n = atol(argv[3]);
    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
    int rd = open(argv[2], O_RDONLY);
    if (fd < 0 || rd < 0)
        return fail("open", -1);
    if (scatter && ftruncate(fd, 16 << 20) != 0)
        return fail("ftruncate", -1);
    struct flock held = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                         .l_start = (off_t)1 << 40, .l_len = 1};
    if (fcntl(fd, F_SETLK, &held) != 0)
        return fail("lock held", -1);
    char rec[6000], back[6000];
    unsigned long x = 12345;
    long checks = 0;
    for (long i = 0; i < n; i++) {
        size_t len = stream ? sizeof rec : scatter ? 512 : 100;
        memset(rec, 'a' + (int)(i % 26), len);
        snprintf(rec, len, "record %ld", i);
        off_t at;
        if (scatter) {
            x = x * 6364136223846793005ul + 1442695040888963407ul;
            at = (off_t)((x >> 33) % 32768) * 512;
            if (pwrite(fd, rec, len, at) != (ssize_t)len)
                return fail("pwrite", i);
        } else if (stream) {
            at = i * (off_t)len;
            if (pwrite(fd, rec, len, at) != (ssize_t)len)
                return fail("pwrite", i);
        } else if (hot) {
            at = (i % 32) * (off_t)len;
            if (pwrite(fd, rec, len, at) != (ssize_t)len)
                return fail("pwrite", i);
        } else if (once) {
            at = i * (off_t)len;
            if (write(fd, rec, len) != (ssize_t)len)
                return fail("write", i);
            struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                              .l_start = ((off_t)1 << 40) + 8, .l_len = 1};
            if (i % 500 == 499 && (fcntl(fd, F_SETLK, &l) != 0 ||
                                   (l.l_type = F_UNLCK,
                                    fcntl(fd, F_SETLK, &l) != 0)))
                return fail("far lock", i);
        } else {
            struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                              .l_len = (off_t)1 << 30};
            if (fcntl(fd, F_SETLKW, &l) != 0)
                return fail("lock", i);
            at = i * (off_t)len;
            if (write(fd, rec, len) != (ssize_t)len)
                return fail("write", i);
            l.l_type = F_UNLCK;
            if (fcntl(fd, F_SETLK, &l) != 0)
                return fail("unlock", i);
            if (lseek(fd, 0, SEEK_CUR) != at + (off_t)len)
                return fail("offset", i);
        }
        if (pread(rd, back, len, at) != (ssize_t)len ||
            memcmp(back, rec, len) != 0)
            return fail("read back", i);
        checks++;
    }
    pid_t child = fork();
    if (child == 0) {
        struct flock q = held;
        _exit(fcntl(rd, F_GETLK, &q) == 0 && q.l_type == F_WRLCK &&
                      q.l_pid == getppid() ? 0 : 1);
    }
    int st;
    if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0)
        return fail("the lock taken at the start is no longer held", n);
    if (close(rd) != 0 || close(fd) != 0)
        return fail("close", n);
    printf("%s: %ld records, %ld checks\n", argv[1], n, checks);
    return 0;
}
