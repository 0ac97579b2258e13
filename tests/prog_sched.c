/*
 * prog_sched.c - a real-time program and its own flusher, for
 * test_shim_threads.c (shim/flusher.c invariant (6), shim/guard.c (10)).
 *
 *   prog_sched MODE DIR
 *
 * spin and lower first pin the process to the CPU it runs on and make it
 * SCHED_FIFO (as `taskset -c N chrt -f P prog` would); a process that may
 * not prints "skip: ..." and exits 77. No clock decides how long the
 * watcher watches or the idle program sleeps: the program's clock may be
 * a fake one.
 *   spin   writes 200 lines of 64 bytes to DIR/spin.out, then computes for
 *          3 s without a system call. A child made before the process
 *          became real-time (SCHED_OTHER, any CPU) watches the file's size
 *          meanwhile, for 2.5 s. Prints "visible" when the 200 lines were
 *          in the file by then, "not visible" otherwise: the
 *          kernel's writeback has them at once; a flusher or a guard that
 *          inherits the program's priority and its one CPU never runs.
 *   blocked as idle, with SIGTERM handled and kept blocked (a daemon that
 *          takes it with sigtimedwait): the flusher starts all the same
 *          (shim/flusher.c invariant (2)).
 *   critsec as idle, but its 200 lines written 10 at a time with SIGALRM
 *          blocked, from a function whose large buffer reaches below where
 *          a timer's handler ran meanwhile (the kernel's frames of it stay
 *          in that memory): each write has a handled signal blocked.
 *   nopvr  a seccomp filter refusing process_vm_readv, then exec of this
 *          program in mode blocked: the shim reads its stack otherwise.
 *   idle   as spin, but neither pinned nor real-time, and sleeping
 *          instead of computing: run with a library that fakes the
 *          program's clock (libfaketime, FAKETIME frozen), the shim's
 *          deadline must still come (include/wcache/clock.h).
 *   lower  at priority 50, writes 20 records of 100 bytes (the cache and
 *          its flusher are made now, at that priority), lowers itself to
 *          priority 10 and rewrites a 64 KiB region with small pwrites
 *          for 1 s, then prints "done" and the file's hash. A flusher
 *          that waited for the program's write at a higher priority by
 *          yielding alone would never let it finish (the test's timeout
 *          ends it).
 *   exitsig a 100 us timer's handler that unblocks its own signal, then
 *          writes a new file, while the main thread makes and joins
 *          threads for 1.5 s: prints "done". A handler that wrote from
 *          inside the shim (the timer came again) in a thread ending met
 *          the thread's signal queue unmapped (shim/queue.c, probe AB).
 *   claims two threads on the process's one CPU, SCHED_FIFO at priority
 *          10 and 50, open the same file (O_APPEND), append to it (20
 *          and 2 records of 64 bytes) and close it, over and over for 2 s,
 *          the high one sleeping up to 200 us between rounds so that it
 *          wakes anywhere in the low one's. Prints "done same" when the
 *          file holds every record. A thread that waited for the other's
 *          claim on the file (shim/registry.c) by yielding alone never let
 *          the low one run (probe Z: hung, 3 of 3).
  *   fdsize a thread writes 100 lines to DIR/fdsize.out after the main
 *          thread read its descriptor table's size (FDSize); prints
 *          "fdsize kept" when the table did not grow meanwhile, as
 *          without the shim (shim/ownfd.c invariant (6): the shim grew it
 *          at the thread's creation, while the process had one thread,
 *          not at the cache's, which in a process with threads waits for
 *          an RCU grace period), "fdsize grew" otherwise.
  *   forkfdsize  the same in the fork child of a process that made a
 *          thread (probe AD F5: the child's one-thread state was not
 *          given back, its first thread did not grow the table early).
  *   lockfd0 a write lock taken through descriptor 0, then a thread made:
 *          prints "lock held" when another process still finds it.
  *   timerthread  the main thread writes 100,000 records to DIR/
 *          timerthread.out while a SIGEV_THREAD timer's thread (made by
 *          glibc, not through pthread_create) writes bursts of 50 to the
 *          same descriptor; prints "records whole" when every record of
 *          both is there, whole. c11thread: the same with a C11 thread;
 *          aiothread: with the SIGEV_THREAD completions of 50 POSIX aio
 *          writes to another file.
 */
#include <errno.h>
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <threads.h>
#include <time.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib_shim.h"

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

/* Write 200 lines of 64 bytes to `path`, then leave the CPU to nothing
 * but this process for 3 s (`compute`: without a system call) or sleep as
 * long, while a watcher child made first looks at the file's size every
 * 5 ms, 500 times (2.5 s or a little more, so within the 3 s: after them,
 * the program's flusher would run). Prints "visible" when the whole file
 * was seen, "not visible" otherwise. */
static void on_term(int sig)
{
    (void)sig;
}

static volatile sig_atomic_t g_ticks;

static void on_tick(int sig)
{
    (void)sig;
    g_ticks++;
}

/* Ten 64-byte lines from a function with a large buffer, which reaches
 * below where the timer's handler ran during the sleeps. */
static __attribute__((noinline)) void save(int fd, int gen)
{
    char buf[16384];
    for (int i = 0; i < 10; i++) {
        snprintf(buf, 65, "%-63d\n", gen * 10 + i);
        if (write(fd, buf, 64) != 64)
            die("write");
    }
}

/* A timer's handler counts ticks while the program sleeps; every write is
 * made with SIGALRM blocked (so that the handler never sees half a
 * record), from save(); then the timer stops and the program idles. */
static void critsec_writes(int fd)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    for (int gen = 0, last = 0; gen < 20;) {
        struct timespec t = {1, 0};
        nanosleep(&t, NULL);            /* a tick ends it */
        if (g_ticks - last >= 2) {
            last = g_ticks;
            sigprocmask(SIG_BLOCK, &alrm, NULL);
            save(fd, gen++);
            sigprocmask(SIG_UNBLOCK, &alrm, NULL);
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
}

static void watched(int compute)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe");
    off_t want = 200 * 64;
    pid_t w = fork();
    if (w < 0)
        die("fork");
    if (w == 0) {
        close(pfd[0]);
        char seen = 'n';
        for (int i = 0; i < 500 && seen == 'n'; i++) {
            struct stat st;
            if (stat(path, &st) == 0 && st.st_size == want)
                seen = 'y';
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        if (write(pfd[1], &seen, 1) != 1)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    if (compute == 1)
        realtime(10);
    if (compute == 2)
        wct_handle_blocked(SIGTERM, on_term);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open");
    if (compute == 3) {
        critsec_writes(fd);
    } else {
        char line[65];
        for (int i = 0; i < 200; i++) {
            snprintf(line, sizeof line, "%-63d\n", i);
            if (write(fd, line, 64) != 64)
                die("write");
        }
    }
    if (compute == 1) {
        volatile uint64_t x = 0;
        for (double end = now() + 3; now() < end;)
            x++;
        struct sched_param sp = {0};
        sched_setscheduler(0, SCHED_OTHER, &sp);    /* let the watcher end */
    } else {
        struct timespec ts = {3, 0};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
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

/* exitsig: a timer's handler (100 us) that unblocks its own signal, then
 * opens a new file and writes it, while the main thread makes and joins
 * threads; the handler often runs in a thread that is ending. */
static volatile sig_atomic_t g_in, g_files;
static char g_dir[4096];

static void on_exit_tick(int sig)
{
    if (g_in)
        return;
    g_in = 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    char p[4200], line[64];
    snprintf(p, sizeof p, "%s/x%d", g_dir, (int)g_files++ % 50);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; fd >= 0 && i < 20; i++) {
        int n = snprintf(line, sizeof line, "line %d\n", i);
        if (write(fd, line, (size_t)n) != n)
            _exit(3);
    }
    if (fd >= 0)
        close(fd);
    g_in = 0;
}

static void *short_thread(void *arg)
{
    return arg;
}

static void exitsig(const char *dir)
{
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_exit_tick;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (double end = now() + 1.5; now() < end;) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_thread, NULL) == 0)
            pthread_join(t, NULL);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 50; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/x%d", dir, i);
        unlink(p);
    }
    printf("done\n");
}

static long g_rounds[2];
static double g_end;

static void *claimer(void *arg)
{
    long id = (long)arg;
    char b[64];
    memset(b, '0' + (int)id, sizeof b);
    unsigned seed = (unsigned)id + 1;
    while (now() < g_end) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0)
            die("open");
        for (int i = 0; i < (id ? 2 : 20); i++)
            if (write(fd, b, sizeof b) != (ssize_t)sizeof b)
                die("write");
        if (close(fd) != 0)
            die("close");
        g_rounds[id]++;
        if (id) {
            struct timespec t = {0, (long)(rand_r(&seed) % 200) * 1000};
            nanosleep(&t, NULL);
        }
    }
    return NULL;
}

static void claims(void)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        die("sched_setaffinity");
    unlink(path);               /* a killed run's, appended to */
    g_end = now() + 2;
    pthread_t t[2];
    for (long i = 0; i < 2; i++) {
        pthread_attr_t a;
        struct sched_param sp = {.sched_priority = i ? 50 : 10};
        pthread_attr_init(&a);
        pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&a, SCHED_FIFO);
        pthread_attr_setschedparam(&a, &sp);
        int r = pthread_create(&t[i], &a, claimer, (void *)i);
        pthread_attr_destroy(&a);
        if (r == EPERM) {
            printf("skip: SCHED_FIFO: %s\n", strerror(r));
            exit(77);
        }
        if (r != 0) {
            errno = r;
            die("pthread_create");
        }
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    struct stat st;
    if (stat(path, &st) != 0)
        die("stat");
    off_t want = (g_rounds[0] * 20 + g_rounds[1] * 2) * 64;
    if (st.st_size != want)
        fprintf(stderr, "prog_sched: %lld bytes, %lld expected (%ld and %ld "
                "rounds)\n", (long long)st.st_size, (long long)want,
                g_rounds[0], g_rounds[1]);
    printf("done %s\n", st.st_size == want ? "same" : "differs");
}

/* The kernel's descriptor table size. */
static long fdsize(void)
{
    return wct_status_field("FDSize");
}

static int g_go[2];

static void *fdsize_writer(void *arg)
{
    (void)arg;
    char c;
    if (read(g_go[0], &c, 1) != 1)
        die("read");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open");
    char line[64];
    memset(line, 'f', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 100; i++)
        if (write(fd, line, sizeof line) != (ssize_t)sizeof line)
            die("write");
    close(fd);
    return NULL;
}

/* fdsize: a thread writes a file (the cache is made then, and its
 * descriptors placed) after the main thread read the table's size; the
 * size after: "fdsize kept", as without the shim, or "fdsize grew". */
static void fdsize_mode(void)
{
    pthread_t t;
    if (pipe(g_go) != 0 || pthread_create(&t, NULL, fdsize_writer, NULL))
        die("thread");
    long before = fdsize();
    if (write(g_go[1], "g", 1) != 1)
        die("write");
    pthread_join(t, NULL);
    long after = fdsize();
    printf("fdsize %s\n", after > before ? "grew" : "kept");
}

static void *nothing(void *arg)
{
    return arg;
}

/* forkfdsize: fdsize_mode in the child of a process that made a thread. */
static void forkfdsize_mode(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL))
        die("thread");
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0) {
        fdsize_mode();
        return;
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
        die("child");
}

/* Does another process find a write lock on path (F_GETLK)? */
static int lock_seen(void)
{
    pid_t c = fork();
    if (c == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        _exit(fd < 0 || fcntl(fd, F_GETLK, &fl) != 0 ? 2
                                                     : fl.l_type != F_UNLCK);
    }
    int st;
    return c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) &&
           WEXITSTATUS(st) == 1;
}

/* lockfd0: a POSIX write lock taken through descriptor 0 (the file
 * dup2'd there), then a thread made: "lock held" when another process
 * still finds it, as without the shim (probe AC F3: the shim's first
 * pthread_create closed a duplicate of descriptor 0, which drops the
 * process's locks on its file). */
static void lockfd0_mode(void)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 0) != 0)
        die("open");
    close(fd);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(0, F_SETLK, &fl) != 0)
        die("lock");
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0)
        die("thread");
    pthread_join(t, NULL);
    printf("lock %s\n", lock_seen() ? "held" : "lost");
}

/* timerthread and c11thread: the main thread and a thread glibc makes
 * itself (a SIGEV_THREAD timer's, or C11's thrd_create) write whole
 * records to one file through one descriptor; "records whole" when the
 * file then holds every record of both, whole. */
static int g_recfd;
static volatile int g_recs_stop;
static int g_side_recs;

static void put_rec(const char *who, int i)
{
    char b[96];
    int n = snprintf(b, sizeof b, "%s %08d %.*s\n", who, i, i % 40,
                     "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr");
    if (write(g_recfd, b, (size_t)n) != n)
        die("write");
}

static void side_burst(void)
{
    for (int k = 0; k < 50 && !g_recs_stop; k++)
        put_rec("side", __atomic_fetch_add(&g_side_recs, 1,
                                           __ATOMIC_RELAXED));
}

static int g_in_tick;

static void on_rec_tick(union sigval sv)
{
    (void)sv;
    if (__atomic_exchange_n(&g_in_tick, 1, __ATOMIC_ACQUIRE))
        return;                 /* one burst at a time */
    side_burst();
    __atomic_store_n(&g_in_tick, 0, __ATOMIC_RELEASE);
}

static int c11_side(void *arg)
{
    (void)arg;
    while (!g_recs_stop)
        side_burst();
    return 0;
}

/* how: 0 a SIGEV_THREAD timer, 1 C11's thrd_create, 2 POSIX aio
 * requests whose completions are SIGEV_THREAD notifications. */
static void records_mode(int how)
{
    int c11 = how == 1;
    g_recfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (g_recfd < 0)
        die("open");
    timer_t tm;
    thrd_t th;
    static struct aiocb cbs[50];
    int ncb = 0, aux = -1;
    if (how == 2) {
        char aux_path[4200];
        snprintf(aux_path, sizeof aux_path, "%s.aux", path);
        aux = open(aux_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        unlink(aux_path);
        if (aux < 0)
            die("aux");
    } else if (c11) {
        if (thrd_create(&th, c11_side, NULL) != thrd_success)
            die("thrd_create");
    } else {
        struct sigevent se = {.sigev_notify = SIGEV_THREAD,
                              .sigev_notify_function = on_rec_tick};
        struct itimerspec its = {{0, 200000}, {0, 200000}};
        if (timer_create(CLOCK_MONOTONIC, &se, &tm) != 0 ||
            timer_settime(tm, 0, &its, NULL) != 0)
            die("timer");
    }
    int n = 100000;
    for (int i = 0; i < n; i++) {
        put_rec("main", i);
        if (how == 2 && i % 2000 == 0 && ncb < 50) {
            struct aiocb *cb = &cbs[ncb++];
            cb->aio_fildes = aux;
            cb->aio_buf = "a";
            cb->aio_nbytes = 1;
            cb->aio_offset = ncb;
            cb->aio_sigevent.sigev_notify = SIGEV_THREAD;
            cb->aio_sigevent.sigev_notify_function = on_rec_tick;
            if (aio_write(cb) != 0)
                die("aio_write");
        }
    }
    g_recs_stop = 1;
    if (how == 2) {
        for (int k = 0; k < ncb; k++)
            while (aio_error(&cbs[k]) == EINPROGRESS)
                usleep(1000);
        close(aux);
    } else if (c11) {
        thrd_join(th, NULL);
    } else {
        timer_delete(tm);
    }
    while (__atomic_load_n(&g_in_tick, __ATOMIC_ACQUIRE))
        usleep(1000);
    usleep(20000);
    close(g_recfd);
    FILE *f = fopen(path, "r");
    char line[160];
    int m = 0, side = 0, bad = 0;
    while (f && fgets(line, sizeof line, f)) {
        int i = atoi(line + 5);
        char want[96];
        int is_main = !strncmp(line, "main ", 5);
        snprintf(want, sizeof want, "%s %08d %.*s\n", is_main ? "main" : "side",
                 i, i % 40, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr");
        if (strcmp(want, line) || (is_main && i != m++))
            bad++;
        side += !is_main;
    }
    if (f)
        fclose(f);
    printf("records %s\n", m == n && side == g_side_recs && !bad
                               ? "whole" : "broken");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: prog_sched spin|idle|blocked|critsec|nopvr|"
                "lower|claims|exitsig|fdsize|forkfdsize|lockfd0|timerthread|"
                "c11thread|aiothread DIR\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/%s.out", argv[2], argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(argv[1], "spin"))
        watched(1);
    else if (!strcmp(argv[1], "idle"))
        watched(0);
    else if (!strcmp(argv[1], "blocked"))
        watched(2);
    else if (!strcmp(argv[1], "critsec"))
        watched(3);
    else if (!strcmp(argv[1], "nopvr")) {
        /* A filter that refuses process_vm_readv (EPERM), inherited by
         * the image exec runs, as a service manager's would be. */
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                     offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            die("seccomp");
        execl("/proc/self/exe", argv[0], "blocked", argv[2], (char *)NULL);
        die("exec");
    }
    else if (!strcmp(argv[1], "lower"))
        lower();
    else if (!strcmp(argv[1], "claims"))
        claims();
    else if (!strcmp(argv[1], "exitsig"))
        exitsig(argv[2]);
    else if (!strcmp(argv[1], "fdsize"))
        fdsize_mode();
    else if (!strcmp(argv[1], "forkfdsize"))
        forkfdsize_mode();
    else if (!strcmp(argv[1], "lockfd0"))
        lockfd0_mode();
    else if (!strcmp(argv[1], "timerthread"))
        records_mode(0);
    else if (!strcmp(argv[1], "c11thread"))
        records_mode(1);
    else if (!strcmp(argv[1], "aiothread"))
        records_mode(2);
    else
        return 2;
    unlink(path);
    return 0;
}
