/*
 * prog_locks.c - POSIX record locks survive what the shim does, for
 * test_shim_locks. Closing any descriptor of a file drops the process's
 * POSIX locks on it, so the shim must never close one of its own while the
 * program has the file open.
 *
 *   prog_locks FILE
 *
 * Takes a read lock through a read-only descriptor, opens the file again
 * for writing (the shim starts caching it), writes, fsyncs (write-back),
 * then asks from a child process whether the lock is still held, and
 * prints what it saw at each step. Then the same for flock(2), whose lock
 * belongs to the open file description: it must go when the program
 * closes the descriptor that took it, even while a second descriptor of
 * the file stays open and cached.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static void probe(const char *path, const char *when)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0)
            _exit(2);
        printf("%s: %s\n", when,
               fl.l_type == F_UNLCK ? "unlocked" : "locked by the parent");
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
}

static void probe_flock(const char *path, const char *when)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            _exit(2);
        int r = flock(fd, LOCK_EX | LOCK_NB);
        printf("%s: flock %s\n", when, r == 0 ? "free" : "held");
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int w0 = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w0 < 0 || write(w0, "seed\n", 5) != 5 || close(w0) != 0)
        return 3;
    int rd = open(argv[1], O_RDONLY);
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    if (rd < 0 || fcntl(rd, F_SETLK, &fl) != 0)
        return 4;
    probe(argv[1], "after the lock");
    int wr = open(argv[1], O_WRONLY | O_APPEND);
    if (wr < 0)
        return 5;
    probe(argv[1], "after a writable open");
    for (int i = 0; i < 100; i++)
        if (write(wr, "a line of text\n", 15) != 15)
            return 6;
    probe(argv[1], "after writes");
    if (fsync(wr) != 0)
        return 7;
    probe(argv[1], "after fsync");
    close(wr);
    probe(argv[1], "after closing the writable descriptor");
    close(rd);

    int a = open(argv[1], O_RDWR);
    if (a < 0 || flock(a, LOCK_EX) != 0)
        return 8;
    int b = open(argv[1], O_RDWR | O_APPEND);
    if (b < 0 || write(a, "A", 1) != 1 || write(b, "b line\n", 7) != 7)
        return 9;
    probe_flock(argv[1], "while held");
    close(a);
    probe_flock(argv[1], "after closing the locking descriptor");
    if (write(b, "more\n", 5) != 5 || fsync(b) != 0)
        return 10;
    close(b);
    return 0;
}
