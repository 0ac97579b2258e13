/*
 * prog_sched.c - a real-time program and its own flusher, for
 * test_shim_threads.c (shim/flusher.c invariant (6), shim/guard.c (10)).
 *
 *   prog_sched MODE DIR
 *
 * Both modes first pin the process to the CPU it runs on and make it
 * SCHED_FIFO (as `taskset -c N chrt -f P prog` would); a process that may
 * not prints "skip: ..." and exits 77.
 *   spin   writes 200 lines of 64 bytes to DIR/spin.out, then computes for
 *          3 s without a system call. A child made before the process
 *          became real-time (SCHED_OTHER, any CPU) watches the file's size
 *          meanwhile, for 2.5 s. Prints "visible" when the 200 lines were
 *          in the file by then, "not visible" otherwise: the
 *          kernel's writeback has them at once; a flusher or a guard that
 *          inherits the program's priority and its one CPU never runs.
 *   lower  at priority 50, writes 20 records of 100 bytes (the cache and
 *          its flusher are made now, at that priority), lowers itself to
 *          priority 10 and rewrites a 64 KiB region with small pwrites
 *          for 1 s, then prints "done" and the file's hash. A flusher
 *          that waited for the program's write at a higher priority by
 *          yielding alone would never let it finish (the test's timeout
 *          ends it).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path[4096];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);    /* the vDSO: no system call */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "prog_sched: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Pin to the current CPU and become SCHED_FIFO at `prio`; exit 77 when
 * not allowed (no privilege, a cgroup without a real-time budget). */
static void realtime(int prio)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        die("sched_setaffinity");
    struct sched_param sp = {.sched_priority = prio};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
        printf("skip: SCHED_FIFO: %s\n", strerror(errno));
        exit(77);
    }
}

static void spin(void)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe");
    off_t want = 200 * 64;
    pid_t w = fork();
    if (w < 0)
        die("fork");
    if (w == 0) {
        /* The watcher: the file's size every 5 ms for 2.5 s, which ends
         * before the parent's computing does (its writes take
         * milliseconds, then 3 s): after, its flusher would run. */
        close(pfd[0]);
        char seen = 'n';
        for (double end = now() + 2.5; now() < end;) {
            struct stat st;
            if (stat(path, &st) == 0 && st.st_size == want) {
                seen = 'y';
                break;
            }
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        if (write(pfd[1], &seen, 1) != 1)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    realtime(10);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open");
    char line[65];
    for (int i = 0; i < 200; i++) {
        snprintf(line, sizeof line, "%-63d\n", i);
        if (write(fd, line, 64) != 64)
            die("write");
    }
    volatile uint64_t x = 0;
    for (double end = now() + 3; now() < end;)
        x++;
    struct sched_param sp = {0};
    sched_setscheduler(0, SCHED_OTHER, &sp);    /* let the watcher end */
    char seen = 0;
    if (read(pfd[0], &seen, 1) != 1)
        die("read");
    waitpid(w, NULL, 0);
    close(fd);
    printf("%s\n", seen == 'y' ? "visible" : "not visible");
}

static void lower(void)
{
    realtime(50);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open");
    char b[100];
    memset(b, 'a', sizeof b);
    for (int i = 0; i < 20; i++)
        if (write(fd, b, sizeof b) != (ssize_t)sizeof b)
            die("write");
    struct sched_param sp = {.sched_priority = 10};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
        die("sched_setscheduler");
    long n = 0;
    for (double end = now() + 1; now() < end;)
        for (int k = 0; k < 1000; k++, n++) {
            b[0] = (char)('a' + n % 26);
            if (pwrite(fd, b, sizeof b, (off_t)(n % 655) * 100) !=
                (ssize_t)sizeof b)
                die("pwrite");
        }
    sp.sched_priority = 0;
    sched_setscheduler(0, SCHED_OTHER, &sp);
    if (close(fd) != 0)
        die("close");
    /* What the file holds depends on how many rewrites the second
     * allowed: the hash is compared with what the program wrote, here. */
    static char want[65500];
    memset(want, 'a', sizeof want);
    for (long i = n > 655 ? n - 655 : 0; i < n; i++)
        want[(i % 655) * 100] = (char)('a' + i % 26);
    int rfd = open(path, O_RDONLY);
    static char got[65500];
    if (rfd < 0 || read(rfd, got, sizeof got) != (ssize_t)sizeof got)
        die("read back");
    close(rfd);
    printf("done %s\n", memcmp(got, want, sizeof got) ? "differs" : "same");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: prog_sched spin|lower DIR\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/%s.out", argv[2], argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(argv[1], "spin"))
        spin();
    else if (!strcmp(argv[1], "lower"))
        lower();
    else
        return 2;
    unlink(path);
    return 0;
}
