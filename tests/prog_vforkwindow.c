/*
 * prog_vforkwindow.c - a vfork child killed inside the shim's look at the
 * program it execs leaves the parent's calls as they were.
 *
 *   prog_vforkwindow FILE EXE SLOW
 *
 * Writes FILE through a descriptor the exec hands over (no O_CLOEXEC:
 * under the shim, cached, so the exec's preparation looks at EXE, the
 * ELF header read in a window of its own: shim/ownfd.c (7)). EXE is a
 * program on a file system whose reads wait while SLOW exists
 * (tests/fuse_failfs.c), which this program creates. A vfork child
 * execs EXE and stays inside that read; a helper process, told the
 * child's pid through a pipe, kills it with SIGKILL. The parent, resumed,
 * removes SLOW, then opens, writes and closes a second file and FILE
 * again, and checks FILE. Prints "ok" and exits 0; a parent whose calls
 * wait for the dead child's window hangs (the test's timeout).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

extern char **environ;

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    const char *file = argv[1], *exe = argv[2], *slow = argv[3];
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return wct_fail("open");
    for (int i = 0; i < 100; i++)
        if (write(fd, "before the exec\n", 16) != 16)
            return wct_fail("write");
    int s = open(slow, O_WRONLY | O_CREAT, 0644);
    if (s < 0)
        return wct_fail("slow");
    close(s);

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return wct_fail("pipe");
    pid_t killer = wct_killer(p[0], 500000);    /* in its read by then */
    if (killer < 0)
        return wct_fail("fork");
    pid_t c = vfork();
    if (c == 0) {
        pid_t me = getpid();
        if (write(p[1], &me, sizeof me) != sizeof me)
            _exit(4);
        char *args[] = {(char *)exe, NULL};
        execve(exe, args, environ);
        _exit(5);
    }
    if (c < 0)
        return wct_fail("vfork");
    if (!wct_killed(c, killer))
        return 1;
    unlink(slow);

    char other[4200];
    snprintf(other, sizeof other, "%s.other", file);
    int o = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || write(o, "other\n", 6) != 6 || close(o) != 0)
        return wct_fail("other");
    unlink(other);
    if (write(fd, "after\n", 6) != 6 || close(fd) != 0)
        return wct_fail("after");
    char got[1700];
    int r = open(file, O_RDONLY);
    if (r < 0 || read(r, got, sizeof got) != 1606)
        return wct_fail("read back");
    close(r);
    if (memcmp(got, "before the exec\n", 16) || memcmp(got + 1600, "after\n", 6)) {
        fprintf(stderr, "contents differ\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
