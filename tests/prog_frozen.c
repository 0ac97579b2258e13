/*
 * prog_frozen.c - a signal handler that exits while the program is inside
 * the shim, for test_shim_errors.c:
 *
 *   prog_frozen FILE_A MOUNT
 *
 * Writes 2,000 lines to FILE_A (elsewhere) and 100 to MOUNT/b, both
 * cached under the shim, then installs a SIGUSR1 handler behind the shim
 * (a raw rt_sigaction: the shim cannot hold it back) that calls _exit(0),
 * and fsyncs MOUNT/b. Meanwhile a child freezes MOUNT's file system
 * (FIFREEZE) before the fsync, sends SIGUSR1 while the fsync's write waits
 * for the file system, and thaws it: the signal is delivered as that write
 * returns, inside the shim, whose exit path must then write FILE_A's lines
 * back all the same (shim/proc.c flush_in_child: a copy of the process
 * made by a raw fork does it). The test reads FILE_A after the exit.
 * Exits 0 from the handler; 2 on a setup failure.
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The kernel's struct sigaction. x86-64 delivers a signal only with a
 * restorer (else a SIGSEGV): this handler never returns to it. */
struct k_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

static void on_usr1(int sig)
{
    (void)sig;
    _exit(0);
}

static void never(void)
{
    abort();
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void lines(int fd, const char *tag, int n)
{
    char buf[64];
    for (int i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "%s line %d\n", tag, i);
        if (write(fd, buf, (size_t)len) != len)
            die("write");
    }
}

static void nap(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: prog_frozen FILE_A MOUNT\n");
        return 2;
    }
    char b_path[4200];
    snprintf(b_path, sizeof b_path, "%s/b", argv[2]);
    int a = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int b = open(b_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int go[2], frozen[2];
    if (a < 0 || b < 0 || pipe(go) || pipe(frozen))
        die("setup");
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        char c;
        int m = open(argv[2], O_RDONLY | O_DIRECTORY);
        if (m < 0 || read(go[0], &c, 1) != 1)
            _exit(3);
        if (ioctl(m, FIFREEZE, 0) != 0)
            _exit(4);
        (void)!write(frozen[1], "f", 1);
        nap(300);               /* the fsync's write now waits */
        kill(parent, SIGUSR1);
        nap(100);
        ioctl(m, FITHAW, 0);
        _exit(0);
    }
    lines(a, "a", 2000);
    lines(b, "b", 100);
    struct k_sigaction ka = {.handler = on_usr1,
                             .flags = 0x04000000 /* SA_RESTORER */,
                             .restorer = never};
    if (syscall(SYS_rt_sigaction, SIGUSR1, &ka, NULL, 8) != 0)
        die("rt_sigaction");
    char c;
    if (write(go[1], "g", 1) != 1 || read(frozen[0], &c, 1) != 1)
        die("child");
    fsync(b);
    /* Not reached: the handler exits as the fsync's write returns. */
    printf("the signal did not come\n");
    return 1;
}
