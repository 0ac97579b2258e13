/*
 * prog_leave.c - leaves its image in ways that make the backing file's
 * name unreachable or unremovable, for test_shim_kill (leftovers).
 *
 *   prog_leave DIR HOW
 *
 * Writes 100 lines to DIR/out, then:
 *   chroot  chroot(DIR/jail), 100 more lines, exit(0)
 *   setuid  setgid/setuid(65534), 100 more lines, exit(0)
 *   exec    execs /bin/true
 *   wait    prints what wait(-1) and SIGCHLD show (the guard must not
 *           appear), then is killed by SIGKILL
 * Prints "skip" and exits 0 when it lacks the privilege.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t chld;

static void on_chld(int sig)
{
    (void)sig;
    chld++;
}

static void lines(int fd, int from)
{
    char line[64];
    for (int i = from; i < from + 100; i++) {
        int n = snprintf(line, sizeof line, "line %04d\n", i);
        if (write(fd, line, (size_t)n) != n)
            exit(4);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    char p[4200];
    snprintf(p, sizeof p, "%s/out", argv[1]);
    if (!strcmp(argv[2], "wait"))
        signal(SIGCHLD, on_chld);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 3;
    lines(fd, 0);
    if (!strcmp(argv[2], "wait")) {
        usleep(100000);
        errno = 0;
        pid_t w = waitpid(-1, NULL, WNOHANG);
        printf("wait: %d %s; SIGCHLD %d; pgrp alone %d\n", (int)w,
               strerror(errno), (int)chld, kill(-getpgrp(), 0) == 0);
        fflush(stdout);
        kill(getpid(), SIGKILL);
    }
    if (!strcmp(argv[2], "chroot")) {
        snprintf(p, sizeof p, "%s/jail", argv[1]);
        mkdir(p, 0755);
        if (chroot(p) != 0 || chdir("/") != 0) {
            printf("skip\n");
            return 0;
        }
        lines(fd, 100);
    } else if (!strcmp(argv[2], "setuid")) {
        if (setgid(65534) != 0 || setuid(65534) != 0) {
            printf("skip\n");
            return 0;
        }
        lines(fd, 100);
    } else if (!strcmp(argv[2], "exec")) {
        execl("/bin/true", "true", (char *)NULL);
        return 5;
    }
    return 0;
}
