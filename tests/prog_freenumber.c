/*
 * prog_freenumber.c - a number nobody holds stays free while the shim
 * works.
 *
 *   prog_freenumber DIR SECONDS
 *
 * Two threads. The writer keeps FILES files open twice each (two open
 * file descriptions, at high numbers), writes a line on each, then closes
 * the first descriptor of every file, one after the other: under the
 * shim, the write-back descriptor shared the description closed, and the
 * engine reopens the file for itself (a short-lived descriptor of its
 * own, cache/wbfd.c) at each close. The other thread meanwhile uses
 * descriptor 3, which nobody else holds: a close of it must fail with
 * EBADF; a dup2 of a pipe's write end onto it must give 3; a byte written
 * there must reach the pipe; its close must succeed. That is what the
 * kernel promises whatever the other threads do with their own numbers.
 * Rounds go on for SECONDS; between rounds the user of 3 waits while the
 * writer opens the next files (their opens take the lowest free number,
 * 3, for an instant, as the program's own). A third thread stays blocked
 * in the open of a FIFO all along (a call that makes a descriptor and
 * does not end: the engine's reopens must not wait for it).
 *
 * Checks, at the end: every file holds its two lines (a write-back
 * descriptor that became the pipe loses them), the pipe holds exactly the
 * bytes written through 3, and no call on 3 failed or succeeded against
 * the kernel's word. Prints "rounds R uses U wrong W lost L" and exits 0;
 * W and L must be 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILES 200
#define NUM 3                   /* the number the second thread uses */
#define HIGH 1000               /* where the writer keeps its own */

static const char *g_dir;
static int g_pipe[2];
/* The phase, with the round it belongs to: round * 4 + phase, where the
 * phase is 0 (files being opened), 1 (closing) or 2 (the end). */
static long g_phase;
/* The last phase-0 word the user has seen (it waits then). A flag for
 * "idle" was racy: the user could read phase 0 of the round before, be
 * preempted while main started and ended the next round's phase 1, then
 * set the flag; main took it as the user's word for the new phase 0 and
 * opened files while the user still ran its own calls on 3 (a dup2 of
 * the pipe over main's open: "lost 1"; its close of main's number: an
 * exit with 1), about once in 30 runs of the sanitizer build on a busy
 * machine. */
static long g_ack = -1;
static long g_uses, g_wrong;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An open of path moved to `at` (the number `at` free): the writer's
 * descriptors stay clear of NUM. */
static int open_high(const char *path, int flags, int at)
{
    int t = open(path, flags, 0644);
    if (t < 0)
        return -1;
    int h = dup2(t, at);
    close(t);
    return h;
}

/* Blocked in the open of the FIFO until main opens its other end. */
static void *blocked(void *arg)
{
    int fd = open(arg, O_RDONLY);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void *user(void *arg)
{
    (void)arg;
    for (;;) {
        long w = __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE);
        int ph = (int)(w & 3);
        if (ph == 2)
            break;
        if (ph == 0) {
            __atomic_store_n(&g_ack, w, __ATOMIC_RELEASE);
            sched_yield();
            continue;
        }
        errno = 0;
        if (close(NUM) != -1 || errno != EBADF)
            g_wrong++;          /* the number was someone's */
        if (dup2(g_pipe[1], NUM) != NUM)
            g_wrong++;
        else if (write(NUM, "u", 1) != 1)
            g_wrong++;
        else
            g_uses++;
        if (close(NUM) != 0)
            g_wrong++;
    }
    return NULL;
}

/* The bytes waiting in the pipe, read. */
static long drain(void)
{
    char buf[65536];
    long n = 0;
    ssize_t r;
    while ((r = read(g_pipe[0], buf, sizeof buf)) > 0)
        n += r;
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    g_dir = argv[1];
    double end = now() + atof(argv[2]);
    if (pipe2(g_pipe, O_NONBLOCK) != 0 ||
        dup2(g_pipe[0], HIGH - 2) < 0 || dup2(g_pipe[1], HIGH - 1) < 0)
        return 1;
    close(g_pipe[0]);
    close(g_pipe[1]);
    g_pipe[0] = HIGH - 2;
    g_pipe[1] = HIGH - 1;
    fcntl(g_pipe[0], F_SETPIPE_SZ, 1 << 20);
    char path[4200], line[64], fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo", g_dir);
    pthread_t t, b;
    /* 3 held meanwhile: the blocked open has its number before it
     * blocks (the kernel's choice comes first), and that is not 3. */
    int hold = dup(0);
    if (hold != NUM || mkfifo(fifo, 0600) != 0 ||
        pthread_create(&b, NULL, blocked, fifo) != 0)
        return 1;
    usleep(20000);
    close(hold);
    if (pthread_create(&t, NULL, user, NULL) != 0)
        return 1;
    long rounds = 0, lost = 0, inpipe = 0;
    while (now() < end) {
        int a[FILES], b[FILES];
        for (int i = 0; i < FILES; i++) {
            snprintf(path, sizeof path, "%s/f%d", g_dir, i);
            a[i] = open_high(path, O_WRONLY | O_CREAT | O_TRUNC,
                             HIGH + 2 * i);
            b[i] = open_high(path, O_WRONLY, HIGH + 2 * i + 1);
            if (a[i] < 0 || b[i] < 0)
                return 1;
            int n = snprintf(line, sizeof line, "first %ld %d\n", rounds, i);
            if (write(a[i], line, (size_t)n) != n)
                return 1;
            n = snprintf(line, sizeof line, "second %ld %d\n", rounds, i);
            if (pwrite(b[i], line, (size_t)n, 64) != n)
                return 1;
        }
        __atomic_store_n(&g_phase, rounds * 4 + 1, __ATOMIC_RELEASE);
        for (int i = 0; i < FILES; i++)
            if (close(a[i]) != 0)
                return 1;
        for (int i = 0; i < FILES; i++)
            if (close(b[i]) != 0)
                return 1;
        long idle = (rounds + 1) * 4;
        __atomic_store_n(&g_phase, idle, __ATOMIC_RELEASE);
        /* The user leaves 3 before the next opens; the pipe drained. */
        while (__atomic_load_n(&g_ack, __ATOMIC_ACQUIRE) != idle)
            sched_yield();
        inpipe += drain();
        for (int i = 0; i < FILES; i++) {
            snprintf(path, sizeof path, "%s/f%d", g_dir, i);
            char want[200] = {0}, got[200] = {0};
            snprintf(want, sizeof want, "first %ld %d\n", rounds, i);
            snprintf(want + 64, sizeof want - 64, "second %ld %d\n", rounds,
                     i);
            size_t len = 64 + strlen(want + 64);
            int fd = open(path, O_RDONLY);
            ssize_t k = fd < 0 ? -1 : pread(fd, got, sizeof got, 0);
            if (fd >= 0)
                close(fd);
            if (k != (ssize_t)len || memcmp(got, want, len) != 0)
                lost++;
        }
        rounds++;
    }
    __atomic_store_n(&g_phase, 2, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    inpipe += drain();
    int w = open(fifo, O_WRONLY);       /* the blocked open ends */
    if (w < 0)
        return 1;
    close(w);
    pthread_join(b, NULL);
    unlink(fifo);
    for (int i = 0; i < FILES; i++) {
        snprintf(path, sizeof path, "%s/f%d", g_dir, i);
        unlink(path);
    }
    if (inpipe != g_uses)
        g_wrong += labs(inpipe - g_uses);
    printf("rounds %ld uses %ld wrong %ld lost %ld\n", rounds, g_uses,
           g_wrong, lost);
    return 0;
}
