/*
 * prog_execlock.c - a POSIX record lock held across exec (test_shim_locks.c).
 *
 *   prog_execlock FILE
 *
 * Writes 20 lines to FILE (so that the shim caches it), takes a write lock
 * on its first byte, and execs itself. The new image asks, from a child,
 * whether the lock is still held by it (the kernel keeps a process's
 * record locks across exec when no descriptor of the file is
 * close-on-exec), writes one more line through the inherited descriptor,
 * and prints what it found.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc == 2) {
        int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return 2;
        for (int i = 0; i < 20; i++) {
            char line[32];
            int n = snprintf(line, sizeof line, "line %d\n", i);
            if (write(fd, line, (size_t)n) != n)
                return 3;
        }
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                          .l_len = 1};
        if (fcntl(fd, F_SETLK, &l) != 0)
            return 4;
        char num[16];
        snprintf(num, sizeof num, "%d", fd);
        execl(argv[0], argv[0], argv[1], num, (char *)NULL);
        return 5;
    }
    if (argc != 3)
        return 2;
    int fd = atoi(argv[2]);
    pid_t child = fork();
    if (child == 0) {
        int rd = open(argv[1], O_RDONLY);
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                          .l_len = 1};
        _exit(rd >= 0 && fcntl(rd, F_GETLK, &q) == 0 &&
                      q.l_type == F_WRLCK && q.l_pid == getppid() ? 0 : 1);
    }
    int st;
    int held = child > 0 && waitpid(child, &st, 0) == child &&
               WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("after exec: %s\n", held ? "locked by this process"
                                     : "the lock is gone");
    if (write(fd, "after exec\n", 11) != 11)
        return 6;
    return close(fd) == 0 ? 0 : 7;
}
