/*
 * prog_privs.c - a writer whose crash guard cannot work, or cannot write
 * its file, killed by SIGKILL: run by test_shim_kill.c without and with
 * the shim, as root, and the file must hold every line both times
 * (shim/guard.c invariant (7), proc.c (8b), cache/file.c's check of the
 * name a replay opens).
 *
 *   prog_privs MODE DIR
 *
 * MODE says what the process does to itself before it writes LINES lines
 * of 11 bytes to DIR/w/log, waits 300 ms, writes 10 more and kills itself
 * with SIGKILL:
 *
 *   nullexec  a mount namespace of its own where /dev/null is a file only
 *             root may open, then the user nobody and exec of itself:
 *             the guard's exec fails
 *   noclone   a seccomp filter that refuses clone and clone3, then exec of
 *             itself (as a service manager's filter is inherited): neither
 *             the flusher thread nor the guard can be made
 *   privdrop  opens DIR/w/log as root (root's file, mode 0644, in a
 *             directory only root may write), then becomes nobody: a guard
 *             of nobody's could not open it again
 *   readonly  becomes nobody and creates DIR/w/log with mode 0444: its
 *             descriptor writes, a guard's open of the name could not
 *   guardgone opens and writes the log as root (its cache and guard are
 *             root's), becomes nobody, says "dropped" on stdout and waits
 *             for a byte on stdin (the test kills the guard meanwhile):
 *             nobody can start no guard in root's store directory; the
 *             pause before the last lines is 4 s
 *
 * Exit status 2 and a line on stderr when the set-up fails (not root, no
 * namespaces): the test skips then.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LINES 3000
#define NOBODY 65534

static const char *dir;
static long pause_ms = 300;

static void setup_failed(const char *what)
{
    fprintf(stderr, "prog_privs: set-up: %s: %s\n", what, strerror(errno));
    exit(2);
}

static char *path(const char *name)
{
    static char buf[2][4096];
    static int i;
    i ^= 1;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void become_nobody(void)
{
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
        setuid(NOBODY) != 0)
        setup_failed("setuid");
}

static void line(int fd, int i)
{
    char b[16];
    int n = snprintf(b, sizeof b, "line %05d\n", i < 0 ? 99999 : i);
    if (write(fd, b, (size_t)n) != n) {
        fprintf(stderr, "prog_privs: write %d: %s\n", i, strerror(errno));
        exit(1);
    }
}

/* The lines, a pause the flusher and the guard's start fit in, the last
 * lines (the write after which a process that cannot keep its promise
 * stops caching), and death. */
static void write_and_die(int fd)
{
    for (int i = 0; i < LINES; i++)
        line(fd, i);
    struct timespec pause = {pause_ms / 1000, pause_ms % 1000 * 1000000};
    nanosleep(&pause, NULL);
    for (int i = LINES; i < LINES + 10; i++)
        line(fd, i);
    /* SIGKILL by a system call the shim does not see (raise and kill
     * write back first: shim/signals.c), as from another process. */
    long ret = SYS_kill;
    __asm__ volatile("syscall"
                     : "+a"(ret)
                     : "D"((long)getpid()), "S"((long)SIGKILL)
                     : "rcx", "r11", "memory");
    _exit(3);
}

static int open_log(int flags, mode_t mode)
{
    int fd = open(path("w/log"), O_WRONLY | O_CREAT | flags, mode);
    if (fd < 0)
        setup_failed("open the log");
    return fd;
}

/* Go on as MODE "writer" in a new image, which starts with what was set
 * up here (a process that changes its mount namespace while the shim
 * runs stops caching: it is the new image that caches). */
static void exec_writer(char **argv)
{
    char *args[] = {argv[0], (char *)"writer", argv[2], NULL};
    execv("/proc/self/exe", args);
    setup_failed("exec");
}

static void no_clone(char **argv)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        setup_failed("seccomp");
    exec_writer(argv);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: prog_privs MODE DIR\n");
        return 2;
    }
    const char *mode = argv[1];
    dir = argv[2];
    if (!strcmp(mode, "writer")) {
        write_and_die(open_log(O_APPEND, 0644));
    } else if (!strcmp(mode, "noclone")) {
        no_clone(argv);
    } else if (!strcmp(mode, "nullexec")) {
        int fd = open(path("null"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || close(fd) != 0)
            setup_failed("the file for /dev/null");
        if (unshare(CLONE_NEWNS) != 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount(path("null"), "/dev/null", NULL, MS_BIND, NULL) != 0)
            setup_failed("mount namespace");
        become_nobody();
        exec_writer(argv);
    } else if (!strcmp(mode, "privdrop")) {
        int fd = open_log(O_APPEND, 0644);
        become_nobody();
        write_and_die(fd);
    } else if (!strcmp(mode, "guardgone")) {
        int fd = open_log(O_APPEND, 0644);
        line(fd, -1);
        become_nobody();
        printf("dropped\n");
        fflush(stdout);
        char c;
        if (read(0, &c, 1) != 1)
            setup_failed("the test's answer");
        pause_ms = 4000;
        write_and_die(fd);
    } else if (!strcmp(mode, "readonly")) {
        become_nobody();
        write_and_die(open_log(O_EXCL, 0444));
    }
    fprintf(stderr, "prog_privs: unknown mode %s\n", mode);
    return 2;
}
