/*
 * prog_odirect.c - O_DIRECT set with F_SETFL on one descriptor of a cached
 * file while another descriptor of it goes on writing, for
 * test_shim_locks. Write-back must not inherit O_DIRECT (unaligned writes
 * would fail with EINVAL). Prints every result; the test compares them,
 * and the file, with the run without the shim.
 *
 *   prog_odirect FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SAY(what, r) printf("%s: %ld %s\n", what, (long)(r), \
                            (r) < 0 ? strerror(errno) : "")

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char a[100], b[50], c[30];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    memset(c, 'c', sizeof c);
    int fd1 = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    SAY("write fd1", write(fd1, a, sizeof a));
    int fd2 = open(argv[1], O_RDWR);
    SAY("pwrite fd2", pwrite(fd2, b, sizeof b, 200));
    SAY("F_SETFL O_DIRECT fd1", fcntl(fd1, F_SETFL, O_DIRECT));
    SAY("pwrite fd2", pwrite(fd2, c, sizeof c, 300));
    SAY("fsync fd2", fsync(fd2));
    SAY("pwrite fd2 again", pwrite(fd2, c, sizeof c, 400));
    SAY("close fd2", close(fd2));
    SAY("close fd1", close(fd1));
    return 0;
}
