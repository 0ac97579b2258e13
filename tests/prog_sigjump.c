/*
 * prog_sigjump.c - a signal handler that leaves by siglongjmp while the
 * main loop writes, for test_shim_threads.c.
 *
 *   prog_sigjump PATH RECORDS
 *
 * A timer sends SIGALRM every 37 us; its handler, armed around each
 * write(), jumps out of it with siglongjmp. The main loop writes RECORDS
 * 11-byte records "<seq, 10 digits>\n" to PATH, a record again after a
 * jump until one write returns (a write to a regular file is never cut by
 * a signal: after a jump the record is in the file whole or not at all),
 * then stops the timer, closes the file and checks it: each record whose
 * write returned is there, in order, once; a jumped record at most once
 * (before its retry); the offset was the file's size. Prints "records N
 * jumps J errors E" and exits 0 when E is 0.
 *
 *   prog_sigjump PATH late
 *
 * For the stress build with WCACHE_STRESS_SIGNAL=10 (SIGUSR1 at a cached
 * write's commit, inside the shim: held) and WCACHE_STRESS_LEAVE_SIGNAL=12
 * (SIGUSR2 as the thread leaves, after its last look at what it holds):
 * SIGUSR1's handler jumps out of the write loop, then the thread waits up
 * to a second, calling nothing, for SIGUSR2's. Prints "late jumped J
 * missed M" and exits 0 when J is 1 and M is 0.
 *
 *   prog_sigjump PATH held
 *
 * 20 rounds: another thread sends the main thread SIGUSR1, whose handler
 * jumps, then SIGUSR2, whose handler sets a flag, while the main thread
 * is in fsync() of PATH with 16 MB written in 1000-byte writes; after the
 * jump the main thread calls nothing for up to a second while it waits
 * for the flag. Prints "held rounds 20 missed M" and exits 0 when M is 0
 * (a signal the shim held must not wait for the thread's next call).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf jump;
static volatile sig_atomic_t armed;
static volatile long jumps, errors;    /* kept across the jumps */

static void on_alarm(int sig)
{
    (void)sig;
    if (armed) {
        armed = 0;
        siglongjmp(jump, 1);
    }
}

static volatile sig_atomic_t second_ran;
static pthread_t main_thread;

static void on_first(int sig)
{
    (void)sig;
    siglongjmp(jump, 1);
}

static void on_second(int sig)
{
    (void)sig;
    second_ran = 1;
}

static void *send_both(void *arg)
{
    (void)arg;
    usleep(1000);
    pthread_kill(main_thread, SIGUSR1);
    usleep(200);
    pthread_kill(main_thread, SIGUSR2);
    return NULL;
}

static int held(const char *path)
{
    signal(SIGUSR1, on_first);
    signal(SIGUSR2, on_second);
    main_thread = pthread_self();
    static char block[1000];
    memset(block, 'h', sizeof block);
    static volatile int missed, round, fd;     /* kept across the jump */
    for (round = 0; round < 20; round++) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return 1;
        for (int i = 0; i < 16000; i++)
            if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
                return 1;
        second_ran = 0;
        /* The jump's target is set before the sender exists: its first
         * signal, 1 ms after it starts, came before the sigsetjmp when
         * this thread was that long in pthread_create (a busy machine,
         * and the shim's first thread: a SIGSEGV in __longjmp on a
         * buffer never set, in round 0). */
        static pthread_t t;     /* kept across the jump */
        if (!sigsetjmp(jump, 1)) {
            pthread_create(&t, NULL, send_both, NULL);
            fsync(fd);
            usleep(100000);     /* the first handler jumps from here */
        }
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        do
            clock_gettime(CLOCK_MONOTONIC, &b);
        while (!second_ran && b.tv_sec - a.tv_sec < 1);
        missed += !second_ran;
        pthread_join(t, NULL);
        close(fd);
    }
    unlink(path);
    printf("held rounds 20 missed %d\n", missed);
    return missed ? 1 : 0;
}

static int late(const char *path)
{
    signal(SIGUSR1, on_first);
    signal(SIGUSR2, on_second);
    static char rec[100];
    memset(rec, 'l', sizeof rec);
    static volatile int fd, jumped;     /* kept across the jump */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 1;
    second_ran = 0;
    if (!sigsetjmp(jump, 1)) {
        for (int i = 0; i < 1000; i++)
            if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
                return 1;
    } else {
        jumped = 1;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while (!second_ran && b.tv_sec - a.tv_sec < 1);
    printf("late jumped %d missed %d\n", jumped, !second_ran);
    close(fd);
    unlink(path);
    return jumped && second_ran ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    if (!strcmp(argv[2], "held"))
        return held(argv[1]);
    if (!strcmp(argv[2], "late"))
        return late(argv[1]);
    const char *path = argv[1];
    long n = atol(argv[2]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 37}, {0, 37}};
    setitimer(ITIMER_REAL, &it, NULL);
    char rec[32];
    for (long k = 0; k < n; k++) {
        snprintf(rec, sizeof rec, "%010ld\n", k % 10000000000L);
        for (;;) {
            if (sigsetjmp(jump, 1)) {
                jumps++;
                continue;       /* jumped out: the record again */
            }
            armed = 1;
            ssize_t r = write(fd, rec, 11);
            armed = 0;
            if (r != 11) {
                errors++;
                fprintf(stderr, "record %ld: write returned %zd (%s)\n", k,
                        r, strerror(errno));
            }
            break;
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (close(fd) != 0)
        errors++;
    /* Each record in order; one whose write was jumped out of may be
     * there twice (once before its retry). */
    FILE *f = fopen(path, "r");
    char line[64];
    long want = 0, lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        long v = atol(line);
        lines++;
        if (strlen(line) != 11 || (v != want && v != want - 1)) {
            if (errors++ < 5)
                fprintf(stderr, "line %ld: \"%.11s\" where %ld was due\n",
                        lines, line, want);
            continue;
        }
        if (v == want)
            want++;
    }
    if (f)
        fclose(f);
    struct stat st;
    if (want != n || stat(path, &st) != 0 || st.st_size != at ||
        st.st_size != lines * 11) {
        errors++;
        fprintf(stderr, "%ld of %ld records in the file, %ld lines, offset "
                "%lld\n", want, n, lines, (long long)at);
    }
    printf("records %ld jumps %s errors %ld\n", n, jumps ? "some" : "none",
           errors);
    return errors ? 1 : 0;
}
