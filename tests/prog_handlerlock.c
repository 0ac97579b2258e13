/*
 * prog_handlerlock.c - a lock taken in a signal handler is a consistency
 * point, whatever call installed the handler, for test_shim_locks.
 *
 *   prog_handlerlock DIR HOW RECORDS
 *
 * HOW: sigaction, signal, sigset, sysv_signal or bsd_signal installs a
 * SIGALRM handler (a 300 us timer) that takes flock on DIR/L, sends the
 * number of the last record whose write() had returned to a child, and
 * drops the lock. The main loop writes RECORDS 32-byte records to DIR/F.
 * The child takes the same lock for each number and checks with stat()
 * that the file holds that record; it prints how many checks it made and
 * how many found the file short. Exits 0 when none did.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* glibc has it; its header declares it only without _GNU_SOURCE. */
extern sighandler_t bsd_signal(int sig, sighandler_t h);

static volatile long acked = -1;
static int lock_fd, to_child, sysv;

static void on_alarm(int sig)
{
    int e = errno;
    if (sysv) {
        /* Reset at delivery: installed again, as SysV wants, and the
         * timer is one-shot, armed again only then (no signal can come
         * between the reset and the new handler). */
        sysv_signal(sig, on_alarm);
        struct itimerval again = {{0, 0}, {0, 300}};
        setitimer(ITIMER_REAL, &again, NULL);
    }
    flock(lock_fd, LOCK_EX);
    long n = acked;
    if (write(to_child, &n, sizeof n) < 0) {
        /* the pipe is full: this check is skipped */
    }
    flock(lock_fd, LOCK_UN);
    errno = e;
}

static int checker(int from, const char *lpath, const char *fpath)
{
    int fd = open(lpath, O_RDWR);
    long n;
    int checks = 0, short_ = 0;
    while (read(from, &n, sizeof n) == (ssize_t)sizeof n) {
        if (n < 0)
            continue;
        flock(fd, LOCK_EX);
        struct stat st;
        if (stat(fpath, &st) == 0 && st.st_size < (n + 1) * 32 &&
            short_++ < 3)
            printf("record %ld acknowledged, file %lld bytes\n", n,
                   (long long)st.st_size);
        checks++;
        flock(fd, LOCK_UN);
    }
    printf("checks %s, short %d\n", checks > 0 ? "made" : "none", short_);
    return short_ ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    const char *how = argv[2];
    long records = atol(argv[3]);
    char lpath[4096], fpath[4096];
    snprintf(lpath, sizeof lpath, "%s/L", argv[1]);
    snprintf(fpath, sizeof fpath, "%s/F", argv[1]);
    lock_fd = open(lpath, O_RDWR | O_CREAT, 0644);
    int fd = open(fpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int p[2];
    if (lock_fd < 0 || fd < 0 || pipe(p) != 0)
        return 3;
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        _exit(checker(p[0], lpath, fpath));
    }
    close(p[0]);
    to_child = p[1];
    if (!strcmp(how, "sigaction")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
    } else if (!strcmp(how, "signal")) {
        signal(SIGALRM, on_alarm);
    } else if (!strcmp(how, "sigset")) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        sigset(SIGALRM, on_alarm);
#pragma GCC diagnostic pop
    } else if (!strcmp(how, "sysv_signal")) {
        sysv = 1;
        sysv_signal(SIGALRM, on_alarm);
    } else if (!strcmp(how, "bsd_signal")) {
        bsd_signal(SIGALRM, on_alarm);
    } else {
        return 2;
    }
    struct itimerval it = {{0, sysv ? 0 : 300}, {0, 300}};
    setitimer(ITIMER_REAL, &it, NULL);
    char rec[33];
    for (long i = 0; i < records; i++) {
        snprintf(rec, sizeof rec, "%031ld\n", i);
        if (write(fd, rec, 32) != 32)
            return 4;
        acked = i;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    close(to_child);
    int st;
    waitpid(child, &st, 0);
    close(fd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}
