/*
 * prog_sigstorm.c - a timer signal at ~10 kHz whose handler writes to the
 * file the main loop is writing, for test_shim_threads.c.
 *
 *   prog_sigstorm PATH MODE SECONDS MAXRECORDS
 *
 * MODE: "plain" (one descriptor, no O_APPEND), "append" (O_APPEND),
 * "dup" (the handler writes through its own dup of the descriptor), or
 * "exit" (like plain, but the 1000th signal's handler calls _exit(0),
 * most likely while the main loop is inside the shim: the file must
 * still hold whole records and markers, in order, and nothing may hang),
 * or "kill" (like exit, but that handler writes its marker, then kills
 * the process with raise(SIGKILL): the marker, queued when the handler
 * interrupted the shim, must be in the file too), "killraw" (the same
 * with syscall(SYS_tgkill, ...)), or "exitw" (the same with _exit(0)).
 *
 * The main loop writes 64-byte records "R<seq>...\n" with write() and
 * writev(), and after each one lseek()s and pread()s (and now and then
 * fstat()s), so that the signal arrives inside every kind of call; the SIGALRM handler writes a
 * 32-byte marker "M<seq>...\n" with write(). write() is async-signal-safe
 * and a write to a regular file is never interrupted by a signal, so the
 * file must end up as a sequence of whole records and markers, each kind
 * in order. Prints "records N markers M errors E".
 *
 * A watchdog thread ends the process with status 99 after 30 s: a hang
 * becomes a failure with a message, not a stalled suite.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib_shim.h"

static int fd, hfd;
static volatile sig_atomic_t markers, handler_errors, stop;

static void num(char *p, int width, unsigned long v)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static volatile sig_atomic_t exit_after;   /* mode "exit": markers left */
static int kill_mode;   /* mode "kill" 1, "killraw" 2, "exitw" 3 */
static volatile long records_done;          /* writes that have returned */

/* "exit records N markers M\n" on stdout, async-signal-safe. */
static void say_exit(void)
{
    char buf[80], *p = buf;
    const char *parts[] = {"exit records ", " markers ", "\n"};
    long vals[] = {records_done, (long)markers};
    for (int i = 0; i < 3; i++) {
        for (const char *q = parts[i]; *q; q++)
            *p++ = *q;
        if (i < 2) {
            char d[24];
            int n = 0;
            long v = vals[i];
            do {
                d[n++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            while (n)
                *p++ = d[--n];
        }
    }
    if (write(1, buf, (size_t)(p - buf)) < 0) {
        /* nothing to do */
    }
}

static void on_alarm(int sig)
{
    (void)sig;
    if (stop)
        return;
    int last = exit_after && --exit_after == 0;
    if (last && !kill_mode) {
        say_exit();
        _exit(0);       /* async-signal-safe, maybe inside the shim */
    }
    int e = errno;
    char m[32];
    memset(m, '-', sizeof m);
    m[0] = 'M';
    num(m + 1, 9, (unsigned long)markers);
    m[31] = '\n';
    if (write(hfd, m, sizeof m) == (ssize_t)sizeof m)
        markers++;
    else
        handler_errors++;
    if (last) {
        say_exit();
        if (kill_mode == 3)
            _exit(0);
        if (kill_mode == 2)
            syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGKILL);
        raise(SIGKILL); /* async-signal-safe, maybe inside the shim */
    }
    errno = e;
}

static void *watchdog(void *arg)
{
    (void)arg;
    sleep(30);
    static const char msg[] = "prog_sigstorm: watchdog: no progress in 30 s,"
                              " giving up (hang?)\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    syscall(SYS_exit_group, 99);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PATH MODE SECONDS MAXRECORDS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[2];
    double seconds = atof(argv[3]);
    long maxrec = atol(argv[4]);
    int flags = O_RDWR | O_CREAT | O_TRUNC;
    if (strcmp(mode, "append") == 0)
        flags |= O_APPEND;
    fd = open(argv[1], flags, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    hfd = strcmp(mode, "dup") == 0 ? dup(fd) : fd;
    kill_mode = strcmp(mode, "kill") == 0      ? 1
                : strcmp(mode, "killraw") == 0 ? 2
                : strcmp(mode, "exitw") == 0   ? 3 : 0;
    if (strcmp(mode, "exit") == 0 || kill_mode)
        exit_after = 1000;

    /* The watchdog never takes SIGALRM. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    wct_alarms(on_alarm, 100);

    long rec = 0, errors = 0;
    char r[64];
    double start = now();
    while (rec < maxrec && (rec % 1024 || now() - start < seconds)) {
        memset(r, '.', sizeof r);
        r[0] = 'R';
        num(r + 1, 9, (unsigned long)rec);
        r[63] = '\n';
        ssize_t n;
        if (rec % 3 == 2) {
            struct iovec iov[3] = {{r, 5}, {r + 5, 0}, {r + 5, 59}};
            n = writev(fd, iov, 3);
        } else {
            n = write(fd, r, sizeof r);
        }
        if (n != (ssize_t)sizeof r) {
            errors++;
            fprintf(stderr, "record %ld: write returned %zd errno %d\n",
                    rec, n, errno);
        }
        rec++;
        records_done = rec;
        /* Other calls into the shim, for the signal to land in. */
        char b[64];
        off_t cur = lseek(fd, 0, SEEK_CUR);
        if (cur < 0 || pread(fd, b, sizeof b, cur / 2) < 0)
            errors++;
        if (rec % 8 == 0) {
            struct stat st;
            if (fstat(fd, &st) < 0)
                errors++;
        }
    }
    wct_alarms(NULL, 0);
    stop = 1;
    if (hfd != fd)
        close(hfd);
    if (close(fd) < 0)
        errors++;
    printf("records %ld markers %ld errors %ld\n", rec, (long)markers,
           errors + handler_errors);
    return errors + handler_errors ? 1 : 0;
}
