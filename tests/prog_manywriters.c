/*
 * prog_manywriters.c - N processes writing at once, for a memory cgroup.
 *
 *   prog_manywriters DIR N MIB
 *
 * Forks N children that wait on a pipe, then each writes MIB MiB to
 * DIR/m<k> in 4 KiB writes (each block numbered) and closes it. The
 * parent writes nothing: every child makes a cache of its own, all at
 * about the same time. Prints "killed K failed F" (children that died of
 * a signal, and that exited non-zero); exits 1 if any did.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(const char *dir, int k, long blocks, int go)
{
    char c, path[4200], b[4096];
    if (read(go, &c, 1) < 0)
        _exit(2);
    snprintf(path, sizeof path, "%s/m%d", dir, k);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        _exit(3);
    for (long i = 0; i < blocks; i++) {
        memset(b, 'a' + (int)(i % 26), sizeof b);
        snprintf(b, 32, "%d-%ld", k, i);
        if (write(fd, b, sizeof b) != (ssize_t)sizeof b)
            _exit(4);
    }
    _exit(close(fd) == 0 ? 0 : 5);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int n = atoi(argv[2]);
    long blocks = atol(argv[3]) * 256;
    int go[2];
    if (pipe(go) != 0)
        return 2;
    for (int k = 0; k < n; k++) {
        pid_t p = fork();
        if (p < 0)
            return 2;
        if (p == 0) {
            close(go[1]);
            child(argv[1], k, blocks, go[0]);
        }
    }
    close(go[0]);
    usleep(100000);             /* all waiting: they start together */
    close(go[1]);
    int st, killed = 0, failed = 0;
    while (wait(&st) > 0) {
        if (WIFSIGNALED(st))
            killed++;
        else if (WEXITSTATUS(st) != 0)
            failed++;
    }
    printf("killed %d failed %d\n", killed, failed);
    return killed || failed;
}
