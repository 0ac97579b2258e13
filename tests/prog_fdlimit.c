/*
 * prog_fdlimit.c - the descriptor numbers a program gets, run with and
 * without the shim by test_shim_fds.c (issue 6, point 5): the shim's own
 * descriptors must not take any number below RLIMIT_NOFILE, nor be
 * reachable by close, dup2, dup3, F_DUPFD, close_range or closefrom.
 *
 *   prog_fdlimit count DIR LIMIT [hard] soft limit LIMIT (and the hard
 *                                      one too with "hard"); open (and
 *                                      write to) files until EMFILE
 *   prog_fdlimit high DIR LIMIT [hard] dup2/dup3/F_DUPFD onto high numbers
 *                                      (512, LIMIT-1, LIMIT) of cached files
 *   prog_fdlimit closefrom DIR         the repro: a file opened
 *                                      twice, the first closed, closefrom
 *                                      above the second, another file
 *   prog_fdlimit raise DIR             files cached under a low limit, then
 *                                      the limit raised: every number up to
 *                                      the new limit is the program's
 *   prog_fdlimit sockets DIR LIMIT     files cached, then sockets and pipes
 *                                      made until EMFILE
 *   prog_fdlimit lockdup DIR LIMIT     a lock on a cached file, dup2 onto
 *                                      1024-1031, a child asks for the lock
 *   prog_fdlimit forktable DIR LIMIT   files cached, then a child: "small"
 *                                      when its descriptor table (a copy of
 *                                      the parent's up to the highest open
 *                                      number) has 2048 slots at most
 *   prog_fdlimit forkfds DIR            files cached, then a child lists
 *                                      its descriptors: how many refer to
 *                                      each file, how many to a store
 *   prog_fdlimit reach DIR LIMIT [hard] files cached, then every number the
 *                                      program did not open, up to LIMIT +
 *                                      16, given to the calls that take a
 *                                      descriptor (fstat, read, write,
 *                                      ftruncate, mmap...): EBADF each
 *
 * Prints one line per observation (return values, errno, offsets); the
 * test compares the transcripts and the files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

static const char *dir;
static int hard;                  /* "hard": the hard limit goes down too */

static void path_of(char *buf, size_t n, const char *name, int i)
{
    snprintf(buf, n, "%s/%s%d", dir, name, i);
}

static int open_w(const char *name, int i)
{
    char p[4096];
    path_of(p, sizeof p, name, i);
    return open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
}

static void set_soft(long lim)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)lim;
    if (hard || (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur))
        rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        printf("setrlimit %ld: %s\n", lim, strerror(errno));
        exit(2);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("limit %llu", (unsigned long long)rl.rlim_cur);
    if (hard)
        printf(" hard %llu", (unsigned long long)rl.rlim_max);
    printf("\n");
}

/* Open and write files until the kernel says no. */
static int count(long lim)
{
    set_soft(lim);
    int n = 0, fd;
    int *fds = calloc((size_t)lim + 1, sizeof *fds);
    while (n <= lim && (errno = 0, fd = open_w("c", n)) >= 0) {
        if (errno)
            printf("open %d: errno %s on success\n", n, strerror(errno));
        char b[32];
        int len = snprintf(b, sizeof b, "file %d\n", n);
        if (write(fd, b, (size_t)len) != len)
            printf("write %d: %s\n", n, strerror(errno));
        fds[n++] = fd;
    }
    printf("opened %d, then %s\n", n, strerror(errno));
    printf("last fd %d\n", n ? fds[n - 1] : -1);
    /* One more after a close takes its number. */
    if (n) {
        close(fds[n / 2]);
        fd = open_w("again", 0);
        printf("reopen fd %d (closed %d)\n", fd, fds[n / 2]);
        fds[n / 2] = fd;
    }
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0 && close(fds[i]) != 0)
            bad++;
    printf("close failures %d\n", bad);
    free(fds);
    return 0;
}

/* r: the result of a call made with errno 0 before it (a call that
 * succeeds leaves errno alone). */
static void report(const char *what, int r)
{
    if (r < 0)
        printf("%s = -1 %s\n", what, strerror(errno));
    else if (errno)
        printf("%s = %d, errno %s on success\n", what, r, strerror(errno));
    else
        printf("%s = %d\n", what, r);
}

static void write_through(int fd, const char *tag)
{
    char b[64];
    int len = snprintf(b, sizeof b, "via %s\n", tag);
    ssize_t w = write(fd, b, (size_t)len);
    printf("write %s = %zd\n", tag, w);
}

static int high(long lim)
{
    set_soft(lim);
    /* Several cached files, so that the shim holds several descriptors. */
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = open_w("h", i);
        write_through(fds[i], "first");
    }
    /* A child created while they are open: the shim keeps the count of
     * their holders in a region of shared memory, with a descriptor of
     * its own (shim/shared.c). Every top number is the program's still. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    for (int t = (int)lim - 12; t < (int)lim; t++) {
        char what[64];
        snprintf(what, sizeof what, "dup2 onto top %d", t);
        errno = 0;
        report(what, dup2(fds[t % 8], t));
    }
    /* Kept open across another child's creation: the child closes each
     * (none may be the shim's now), the parent too. */
    child = fork();
    if (child == 0) {
        int bad = 0;
        for (int t = (int)lim - 12; t < (int)lim; t++)
            bad += close(t) != 0;
        _exit(bad);
    }
    int st = -1;
    waitpid(child, &st, 0);
    printf("child closed the top numbers: status %d\n", st);
    for (int t = (int)lim - 12; t < (int)lim; t++) {
        errno = 0;
        report("close top", close(t));
    }
    int targets[] = {512, (int)lim - 1, (int)lim - 2, (int)lim, (int)lim + 1,
                     (int)lim / 2, (int)lim / 2 + 1, 1024, 1025, 2046,
                     2047};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        int t = targets[i];
        char what[64];
        snprintf(what, sizeof what, "dup2 onto %d", t);
        errno = 0;
        int r = dup2(fds[i % 8], t);
        report(what, r);
        if (r >= 0) {
            write_through(r, what);
            errno = 0;
            report("close it", close(r));
        }
        snprintf(what, sizeof what, "dup3 onto %d", t);
        errno = 0;
        r = dup3(fds[(i + 1) % 8], t, O_CLOEXEC);
        report(what, r);
        if (r >= 0) {
            write_through(r, what);
            errno = 0;
            report("close it", close(r));
        }
        snprintf(what, sizeof what, "F_DUPFD from %d", t);
        errno = 0;
        r = fcntl(fds[(i + 2) % 8], F_DUPFD, t);
        report(what, r);
        if (r >= 0) {
            write_through(r, what);
            errno = 0;
            report("close it", close(r));
        }
    }
    /* close() of every number the program does not hold: EBADF. */
    int ebadf = 0, other = 0;
    for (int t = 0; t < (int)lim + 64; t++) {
        int mine = t <= 2;
        for (int i = 0; i < 8; i++)
            mine |= t == fds[i];
        if (mine)
            continue;
        if (close(t) == 0)
            other++;
        else if (errno == EBADF)
            ebadf++;
        else
            other++;
    }
    printf("close of other numbers: %d EBADF, %d other\n", ebadf, other);
    for (int i = 0; i < 8; i++) {
        write_through(fds[i], "last");
        printf("offset %d = %ld\n", i, (long)lseek(fds[i], 0, SEEK_CUR));
        report("close", close(fds[i]));
    }
    return 0;
}

static int closefrom_repro(void)
{
    int a = open_w("same", 0);
    char p[4096];
    path_of(p, sizeof p, "same", 0);
    int b = open(p, O_RDWR);
    report("open a", a);
    report("open b", b);
    printf("write a = %zd\n", pwrite(a, "AAAA", 4, 0));
    printf("write b = %zd\n", pwrite(b, "BBBB", 4, 4));
    report("close a", close(a));
    printf("write b = %zd\n", pwrite(b, "bbbb", 4, 8));
    closefrom(b + 1);
    int c = open_w("other", 0);
    report("open c", c);
    printf("write c = %zd\n", write(c, "CCCC", 4));
    printf("write b = %zd\n", pwrite(b, "ZZZZ", 4, 12));
    /* And a dup2 over every number above b that the kernel allows. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int ok = 0, failed = 0;
    for (int t = b + 2; t < (int)rl.rlim_cur && t < 4096; t++) {
        if (dup2(c, t) == t)
            ok++;
        else
            failed++;
    }
    printf("dup2 over the rest: %d ok, %d failed\n", ok, failed);
    closefrom(b + 2);
    close_range((unsigned)b + 2, ~0u, 0);
    report("close c", close(c));
    report("close b", close(b));
    return 0;
}

static int raise_limit(void)
{
    set_soft(64);
    int fds[20];
    for (int i = 0; i < 20; i++) {
        fds[i] = open_w("r", i);
        write_through(fds[i], "low");
    }
    set_soft(256);
    /* Every number from 64 to 255 is the program's. */
    int ok = 0, failed = 0;
    for (int t = 64; t < 256; t++) {
        int r = dup2(fds[t % 20], t);
        if (r == t) {
            ok++;
            char b[32];
            int len = snprintf(b, sizeof b, "dup %d\n", t);
            if (pwrite(r, b, (size_t)len, 0) != len)
                failed++;
            close(r);
        } else {
            failed++;
        }
    }
    printf("dup2 onto 64..255: %d ok, %d failed\n", ok, failed);
    int n = 0, fd, extra[256];
    while (n < 256 && (fd = open_w("x", n)) >= 0)
        extra[n++] = fd;
    printf("then opened %d more, last %d\n", n, n ? extra[n - 1] : -1);
    for (int i = 0; i < n; i++)
        close(extra[i]);
    for (int i = 0; i < 20; i++) {
        write_through(fds[i], "high");
        report("close", close(fds[i]));
    }
    return 0;
}

/* Every call below on a number nobody opened: -1 EBADF with the kernel,
 * which the shim's own descriptors must give too (ownfd.c invariant
 * (5)). Prints each number and call that answered otherwise. */
static int reach(long lim)
{
    set_soft(lim);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = open_w("r", i);
        for (int k = 0; k < 200; k++) {
            char b[32];
            int len = snprintf(b, sizeof b, "file %d line %03d\n", i, k);
            if (write(fds[i], b, (size_t)len) != len)
                printf("write %d: %s\n", i, strerror(errno));
        }
    }
    int other = 0;
    for (int n = 3; n < lim + 16; n++) {
        if (n == fds[0] || n == fds[1] || n == fds[2])
            continue;
        struct stat st;
        char b[8] = "XXXXXXX";
        struct {
            const char *what;
            long r;
        } c[16];
        int k = 0;
#define CALL(e) (errno = 0, c[k].what = #e, c[k].r = (long)(e), \
                 c[k].r = c[k].r == -1 && errno == EBADF ? 0 : 1, k++)
        CALL(fstat(n, &st));
        CALL(fstatat(n, "", &st, AT_EMPTY_PATH));
        CALL(lseek(n, 0, SEEK_END));
        CALL(read(n, b, sizeof b));
        CALL(pread(n, b, sizeof b, 0));
        CALL(write(n, b, 2));
        CALL(pwrite(n, b, 2, 0));
        CALL(ftruncate(n, 0));
        CALL(fallocate(n, 0, 0, 4096));
        CALL(fsync(n));
        CALL(fchmod(n, 0600));
        CALL(flock(n, LOCK_SH | LOCK_NB));
        CALL(dprintf(n, "x") < 0 ? -1 : 0);
        errno = 0;
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, n, 0);
        c[k].what = "mmap";
        c[k++].r = !(m == MAP_FAILED && errno == EBADF);
        if (m != MAP_FAILED)
            munmap(m, 4096);
#undef CALL
        for (int i = 0; i < k; i++)
            if (c[i].r) {
                printf("descriptor %d: %s did not fail with EBADF\n", n,
                       c[i].what);
                other++;
            }
    }
    printf("numbers tried up to %ld, answered otherwise: %d\n", lim + 16,
           other);
    for (int i = 0; i < 3; i++) {
        write_through(fds[i], "end");
        close(fds[i]);
    }
    return 0;
}

/* n files NAME0.. opened and written in 20 lines each (cached under the
 * shim: the tests run it with WCACHE_MIN_WRITES=0). */
static void cache_files(int *fds, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        fds[i] = open_w(name, i);
        for (int k = 0; k < 20; k++)
            write_through(fds[i], "line");
    }
}

/* Files cached, then sockets, then pipes, made until EMFILE: calls the
 * shim wraps only to give a cached file's number back at EMFILE
 * (ownfd.c; probe AF F1: one number short per cached file). */
static int sockets(long lim)
{
    set_soft(lim);
    int fds[5];
    cache_files(fds, 5, "s");
    int n = 0, s, first = -1;
    while ((s = socket(AF_UNIX, SOCK_DGRAM, 0)) >= 0) {
        if (first < 0)
            first = s;
        n++;
    }
    printf("sockets %d, then %s\n", n, strerror(errno));
    for (int i = 0; i < n; i++)
        close(first + i);
    int p[2], pipes = 0;
    while (pipe(p) == 0)
        pipes++;
    printf("pipes %d, then %s\n", pipes, strerror(errno));
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    return 0;
}

/* A write lock on a cached file, then dup2 onto 1024-1031 (numbers a
 * program picks: bash's `exec 1025>x`): the lock stays (probe AF F2: the
 * shim's write-back descriptor sat there, moved, and its close dropped
 * the process's lock). A child then asks for the same lock. */
static int lockdup(long lim)
{
    set_soft(lim);
    int fd;
    cache_files(&fd, 1, "l");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    report("lock", fcntl(fd, F_SETLK, &fl));
    for (int t = 1024; t < 1032; t++) {
        char what[32];
        snprintf(what, sizeof what, "dup2 onto %d", t);
        errno = 0;
        report(what, dup2(2, t));
    }
    pid_t c = fork();
    if (c == 0) {
        char p[4096];
        path_of(p, sizeof p, "l", 0);
        int f = open(p, O_RDWR);
        struct flock l2 = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        _exit(f >= 0 && fcntl(f, F_SETLK, &l2) == 0 ? 1 : 0);
    }
    int st = -1;
    waitpid(c, &st, 0);
    printf("a child asking for the lock: %s\n",
           WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "refused" : "got it");
    report("close", close(fd));
    return 0;
}

/* The kernel's descriptor table size. */
static long fdsize(void)
{
    return wct_status_field("FDSize");
}

/* Files written, then a child: its table is a copy of the parent's up to
 * the highest open number, which the shim's descriptors set (ownfd.c
 * (1b)). "small" when it has at most 2048 slots. */
static int forktable(long lim)
{
    set_soft(lim);
    int fds[8];
    cache_files(fds, 8, "t");
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 3;
    pid_t c = fork();
    if (c == 0) {
        long n = fdsize();
        _exit(n > 0 && n <= 2048 ? 0 : 1);
    }
    int st = -1;
    waitpid(c, &st, 0);
    printf("the child's table: %s\n",
           WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "small" : "large");
    printf("the parent's table: %s\n", fdsize() <= 2048 ? "small" : "large");
    for (int i = 0; i < 8; i++)
        report("close", close(fds[i]));
    return 0;
}

/* Files cached, then a child: its descriptors are the program's, one of
 * each file (the parent's write-back descriptors and its store are the
 * parent's: cache/store.h (5), fdtab.c wc_forget_cache_in_child). A
 * store held by a child that lives on would keep the parent's cached
 * pages in memory after the parent ends. The cell regions' memfd (shim/
 * shared.c: an exec may hand its cells on) is not counted. */
static int forkfds(void)
{
    int fds[8];
    struct stat of[8];
    cache_files(fds, 8, "k");
    for (int i = 0; i < 8; i++)
        if (fstat(fds[i], &of[i]) != 0)
            return 3;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        /* The kernel's listing, which shows the descriptors the shim
         * hides from the program's calls too. */
        int per[8] = {0}, stores = 0;
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char link[300], to[4096];
            struct stat st;
            snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
            ssize_t n = readlink(link, to, sizeof to - 1);
            if (n < 0 || stat(link, &st) != 0)
                continue;
            to[n] = 0;
            for (int i = 0; i < 8; i++)
                per[i] += st.st_dev == of[i].st_dev &&
                          st.st_ino == of[i].st_ino;
            stores += strstr(to, "/wcache-") != NULL &&
                      strstr(to, "memfd:") == NULL;
        }
        if (!d)
            _exit(1);
        for (int i = 0; i < 8; i++)
            printf("the child: k.%d has %d descriptor(s)\n", i, per[i]);
        printf("the child: %d descriptor(s) of a store\n", stores);
        fflush(stdout);
        _exit(0);
    }
    int st = -1;
    waitpid(c, &st, 0);
    printf("child %s\n", WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "failed");
    for (int i = 0; i < 8; i++)
        report("close", close(fds[i]));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s count|high|closefrom|raise DIR [LIMIT]\n",
                argv[0]);
        return 2;
    }
    dir = argv[2];
    long lim = argc > 3 ? atol(argv[3]) : 0;
    hard = argc > 4 && !strcmp(argv[4], "hard");
    if (!strcmp(argv[1], "count"))
        return count(lim);
    if (!strcmp(argv[1], "high"))
        return high(lim);
    if (!strcmp(argv[1], "closefrom"))
        return closefrom_repro();
    if (!strcmp(argv[1], "raise"))
        return raise_limit();
    if (!strcmp(argv[1], "reach"))
        return reach(lim);
    if (!strcmp(argv[1], "forktable"))
        return forktable(lim);
    if (!strcmp(argv[1], "forkfds"))
        return forkfds();
    if (!strcmp(argv[1], "sockets"))
        return sockets(lim);
    if (!strcmp(argv[1], "lockdup"))
        return lockdup(lim);
    return 2;
}
