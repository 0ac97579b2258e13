/*
 * prog_stdio.c - glibc's own writes (stdio, dprintf, perror,
 * backtrace_symbols_fd) mixed with write() on the same descriptors, run by
 * test_shim_stdio.c without and with the shim.
 *
 *   prog_stdio SCENARIO DIR
 *
 * The transcript (return values, errno after each call, offsets, sizes,
 * what another open of the file reads) goes to the descriptor that was
 * stdout at start, moved to a high number first, since the scenarios
 * redirect 0, 1 and 2. The test compares transcripts and the files left in
 * DIR. errno is set to a sentinel before each call so that a call that
 * succeeds and still changes errno shows up.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

#include "lib_shim.h"

#define SENTINEL 4242

static int ctl = -1;
static const char *dir;

static void say(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    int e = errno;
    if (write(ctl, line, (size_t)n) != n)
        _exit(111);
    errno = e;
}

static char *path_of(const char *name)
{
    static char p[4][4096];
    static int k;
    char *s = p[k++ & 3];
    snprintf(s, 4096, "%s/%s", dir, name);
    return s;
}

/* Record a call's result and errno (set to SENTINEL before the call). */
#define CALL(label, expr)                                                  \
    do {                                                                   \
        errno = SENTINEL;                                                  \
        long r_ = (long)(expr);                                            \
        say("%s = %ld errno=%d", label, r_, errno);                        \
    } while (0)

static void offset(const char *label, int fd)
{
    CALL(label, lseek(fd, 0, SEEK_CUR));
}

static void size(const char *label, int fd)
{
    struct stat st;
    errno = SENTINEL;
    int r = fstat(fd, &st);
    say("%s fstat=%d size=%lld errno=%d", label, r, (long long)st.st_size,
        errno);
}

/* What a fresh descriptor (another open of the file) reads now. */
static void peek(const char *label, const char *path)
{
    char buf[8192];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    say("%s read=%zd hash=%016llx", label, n,
        (unsigned long long)(n > 0 ? wct_hash(buf, (size_t)n) : 0));
    if (fd >= 0)
        close(fd);
}

static int open_on(int target, const char *name, int flags)
{
    int fd = open(path_of(name), flags | O_CREAT, 0644);
    if (fd < 0 || dup2(fd, target) != target)
        _exit(112);
    close(fd);
    return target;
}

/* open, dup2 onto 1, mix printf (with fflush) and write(1). */
static void sc_dup2_stdout(int append)
{
    open_on(1, "out", O_WRONLY | O_TRUNC | (append ? O_APPEND : 0));
    CALL("write1", write(1, "one\n", 4));
    CALL("printf", printf("two %d\n", 2));
    CALL("fflush", fflush(stdout));
    CALL("write2", write(1, "three\n", 6));
    CALL("puts", puts("four"));
    CALL("fflush", fflush(stdout));
    offset("off", 1);
    size("size", 1);
    CALL("write3", write(1, "five\n", 5));
    CALL("fputs", fputs("six\n", stdout));
    /* left in the stdio buffer: written at exit, after the shim's flush */
    CALL("write4", write(1, "seven\n", 6));
    /* A second description of the file, in turn with stdout. */
    int fd = open(path_of("out"), O_RDWR);
    CALL("pwrite", pwrite(fd, "ONE", 3, 0));
    CALL("write5", write(1, "eight\n", 6));
    CALL("write", write(fd, "1234", 4));
    size("size", fd);
    char buf[128] = {0};
    CALL("pread", pread(fd, buf, sizeof buf, 0));
    say("pread hash=%016llx", (unsigned long long)wct_hash(buf, sizeof buf));
    CALL("close", close(fd));
}

/* printf overwriting after a seek back on a cached stdout. */
static void sc_seek_back(void)
{
    open_on(1, "out", O_RDWR | O_TRUNC);
    CALL("write", write(1, "aaaaaaaaaa\n", 11));
    CALL("write", write(1, "bbbbbbbbbb\n", 11));
    CALL("lseek", lseek(1, 4, SEEK_SET));
    CALL("printf", printf("XY"));
    CALL("fflush", fflush(stdout));
    offset("off", 1);
    CALL("write", write(1, "Z", 1));
    CALL("pwrite", pwrite(1, "P", 1, 30));
    CALL("printf", printf("QQ"));
    CALL("fflush", fflush(stdout));
    size("size", 1);
    char buf[64] = {0};
    CALL("pread", pread(1, buf, sizeof buf, 0));
    say("pread bytes hash=%016llx", (unsigned long long)wct_hash(buf, 40));
    CALL("lseek_end", lseek(1, 0, SEEK_END));
    CALL("write", write(1, "end\n", 4));
    CALL("printf", printf("tail\n"));
    CALL("fflush", fflush(stdout));
    peek("peek", path_of("out"));
}

/* dprintf between cached writes on an ordinary descriptor. */
static void sc_dprintf(void)
{
    int fd = open(path_of("d"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CALL("write", write(fd, "first line\n", 11));
    CALL("dprintf", dprintf(fd, "dprintf %d %s\n", 42, "words"));
    offset("off", fd);
    CALL("write", write(fd, "third line\n", 11));
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CALL("dprintf_big", dprintf(fd, "%s\n", big));
    offset("off", fd);
    size("size", fd);
    CALL("dprintf_empty", dprintf(fd, "%s", ""));
    CALL("lseek", lseek(fd, 6, SEEK_SET));
    CALL("dprintf_over", dprintf(fd, "LINE"));
    offset("off", fd);
    peek("peek", path_of("d"));
    CALL("close", close(fd));
    CALL("dprintf_closed", dprintf(fd, "x"));
    peek("peek", path_of("d"));
}

/* backtrace_symbols_fd between two writes. */
static void sc_backtrace(void)
{
    int fd = open(path_of("bt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CALL("write", write(fd, "before\n", 7));
    void *frames[1] = {(void *)&sc_backtrace};
    errno = SENTINEL;
    backtrace_symbols_fd(frames, 1, fd);
    say("backtrace errno=%d", errno);
    offset("off", fd);
    CALL("write", write(fd, "after\n", 6));
    size("size", fd);
    CALL("close", close(fd));
}

/* stderr: perror, psignal, fprintf(stderr) between write(2). */
static void sc_stderr(void)
{
    open_on(2, "err", O_WRONLY | O_TRUNC);
    CALL("write", write(2, "start\n", 6));
    errno = ENOENT;
    perror("perror");
    say("perror errno=%d", errno);
    CALL("write", write(2, "middle\n", 7));
    psignal(SIGTERM, "psignal");
    CALL("fprintf", fprintf(stderr, "fprintf %d\n", 7));
    CALL("write", write(2, "end\n", 4));
    offset("off", 2);
}

/* freopen stdout onto a file, then write(1) and printf. */
static void sc_freopen(void)
{
    int fd = open(path_of("f"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CALL("write", write(fd, "cached\n", 7));
    CALL("freopen", freopen(path_of("f"), "a", stdout) != NULL);
    CALL("printf", printf("printf\n"));
    CALL("fflush", fflush(stdout));
    CALL("write1", write(1, "write1\n", 7));
    CALL("write", write(fd, "again\n", 6));
    CALL("close", close(fd));
    peek("peek", path_of("f"));
}

/* A fork on a stdout whose file is cached: both write, in turn. */
static void sc_fork(void)
{
    open_on(1, "out", O_WRONLY | O_TRUNC);
    CALL("write", write(1, "parent 1\n", 9));
    CALL("printf", printf("parent printf\n"));
    CALL("fflush", fflush(stdout));
    pid_t p = fork();
    if (p == 0) {
        if (write(1, "child\n", 6) != 6)
            _exit(1);
        printf("child printf\n");
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    CALL("write", write(1, "parent 2\n", 9));
    offset("off", 1);
}

/* stdin opened on a cached file: scanf reads what write() put there. */
static void sc_stdin(void)
{
    open_on(0, "in", O_RDWR | O_TRUNC);
    CALL("write", write(0, "12 34\n", 6));
    CALL("lseek", lseek(0, 0, SEEK_SET));
    int a = 0, b = 0;
    CALL("scanf", scanf("%d %d", &a, &b));
    say("scanned %d %d", a, b);
    offset("off", 0);
}

/* On the stdout the program was started with (`prog > f`, `prog >> f`):
 * write(1), printf, puts, dprintf(1) in turn. The transcript goes to
 * stderr. */
static void sc_inherited(void)
{
    for (int i = 0; i < 3; i++) {
        CALL("write", write(1, "write\n", 6));
        CALL("printf", printf("printf %d\n", i));
        CALL("fflush", fflush(stdout));
        CALL("dprintf", dprintf(1, "dprintf %d\n", i));
        CALL("puts", puts("puts"));
        CALL("fflush", fflush(stdout));
    }
    CALL("write", write(1, "last\n", 5));
    offset("off", 1);
    size("size", 1);
}

/* On an inherited descriptor 3 shared with other writers (the shell's
 * `{ ...; } 3> f`): a line, then a child that closes its copy at once,
 * then 599 more lines, "A 1" to "A 600". The transcript goes to stderr. */
static void sc_inherited3(void)
{
    char line[32];
    CALL("write", write(3, "A 1\n", 4));
    pid_t p = fork();
    if (p == 0) {
        close(3);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    for (int i = 2; i <= 600; i++) {
        int n = snprintf(line, sizeof line, "A %d\n", i);
        if (write(3, line, (size_t)n) != n)
            say("short write");
    }
}

/* fork with a cached file open: the child goes on writing through the
 * shared description, then the parent; both in several rounds. */
static void sc_fork_loop(void)
{
    int fd = open(path_of("shared"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char line[64];
    CALL("write", write(fd, "parent first\n", 13));
    for (int round = 0; round < 3; round++) {
        pid_t p = fork();
        if (p == 0) {
            for (int i = 0; i < 200; i++) {
                int n = snprintf(line, sizeof line, "child %d line %d\n",
                                 round, i);
                if (write(fd, line, (size_t)n) != n)
                    _exit(1);
            }
            _exit(0);
        }
        int st;
        waitpid(p, &st, 0);
        say("child status %d", st);
        offset("off", fd);
        for (int i = 0; i < 100; i++) {
            int n = snprintf(line, sizeof line, "parent %d line %d\n",
                             round, i);
            if (write(fd, line, (size_t)n) != n)
                say("short write");
        }
        offset("off", fd);
        size("size", fd);
    }
    CALL("close", close(fd));
}

/* ---- descriptor 1 guarded (the shim's stdio.c invariant (2)) --------- */

static char big[9000];     /* more than a stream's buffer: written inside */
static wchar_t wbig[12000];

static int vp(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vprintf(fmt, ap);
    va_end(ap);
    return r;
}

/* A fresh file on descriptor 1 (stdout's buffer empty: the shim guards
 * it), written by write(1) often enough to be cached. */
static void fresh_stdout(int i)
{
    char name[32];
    snprintf(name, sizeof name, "g%02d", i);
    /* The last case's rest goes to its file; a byte more leaves stdout's
     * put area open, so that inline putc_unlocked fills it with no call. */
    if (i > 0)
        fputc('\n', stdout);
    fflush(stdout);
    open_on(1, name, O_WRONLY | O_TRUNC);
    for (int k = 0; k < 20; k++) {
        char line[32];
        int n = snprintf(line, sizeof line, "case %d line %d\n", i, k);
        if (write(1, line, (size_t)n) != n)
            say("short write");
    }
}

/* The kernel's own offset of descriptor 1 (fdinfo) against lseek's, on
 * stderr: it differs under the shim by design (test_shim_stdio.c reads
 * it; the transcript stays the kernel's). */
static void kernel_pos(const char *label)
{
    char buf[256];
    int fd = open("/proc/self/fdinfo/1", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    long long k = -1;
    if (n > 0) {
        buf[n] = 0;
        sscanf(buf, "pos: %lld", &k);
    }
    dprintf(2, "%s kernel_behind=%d\n", label,
            k != (long long)lseek(1, 0, SEEK_CUR));
}

/* On an inherited stdout: "A 1" to "A 600", pausing now and then, then
 * whether the kernel's offset is behind (the shim caches it as this
 * process's own: its shell handed it over at exec) and whether the
 * variable that says so reached the program. On stderr. */
static void sc_inherited1(void)
{
    char line[32];
    for (int i = 1; i <= 600; i++) {
        int n = snprintf(line, sizeof line, "A %d\n", i);
        if (write(1, line, (size_t)n) != n)
            say("short write");
        if (i % 100 == 0)
            usleep(2000);
    }
    kernel_pos("inherited");
    dprintf(2, "own var %s\n", getenv("WCACHE_OWN_FDS") ? "seen" : "gone");
}

/* "W 1" to "W n" on descriptor 1, a write each. */
static void lines(char w, int n)
{
    char line[32];
    for (int i = 1; i <= n; i++) {
        int k = snprintf(line, sizeof line, "%c %d\n", w, i);
        if (write(1, line, (size_t)k) != k)
            say("short write");
    }
}

/* On an inherited stdout that is also stderr (`> f 2>&1`): lines by
 * write(1) between messages glibc writes to stderr itself (fprintf,
 * perror, fputs: its internal write, at the kernel's offset). */
static void sc_inherited_err(void)
{
    lines('A', 300);
    fprintf(stderr, "E 1\n");
    lines('B', 300);
    errno = ENOENT;
    perror("E 2");
    lines('C', 300);
    fputs("E 3\n", stderr);
    lines('D', 300);
}

extern char **environ;

/* fn(arg) in a child, which then exits (fn may exec, or _exit(127) when
 * that fails); the child's wait status. No stdio call before the fork:
 * one would fence descriptor 1 (and settle its cell) itself. */
static int in_child(void (*fn)(int), int arg)
{
    pid_t p = fork();
    if (p == 0) {
        fn(arg);
        exit(0);
    }
    int st = -1;
    if (p > 0)
        waitpid(p, &st, 0);
    return st;
}

static void child_lines(int w) { lines((char)w, 40); }

static void child_noshim(int unused)
{
    (void)unused;
    /* An image without the library: nothing may be handed to it. */
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    char *av[] = {"sh", "-c", "echo from an image without the shim", NULL};
    execve("/bin/sh", av, env);
    _exit(127);
}

static void child_execlp(int unused)
{
    (void)unused;
    /* A name without a slash: the program is not known before the
     * search, so nothing is handed over. */
    execlp("sh", "sh", "-c", "echo from execlp", (char *)NULL);
    _exit(127);
}

static void child_writes(int fd)
{
    for (int i = 0; i < 40; i++)
        if (write(fd, "child line\n", 11) != 11)
            say("short write");
}

/* On an inherited stdout that the shell holds too while it waits (under
 * dash the offset is in a cell: shared.c invariant (6)): "A" lines, then
 * one call `op` that uses the kernel's offset, or lets code that knows no
 * cell use it, then "B" lines (`first`: the call before any write, then
 * "B" and "A" lines). The file and the transcript must be the kernel's:
 * the cell settles before. */
static void at_exit_write(void)
{
    if (write(1, "from atexit\n", 12) != 12)
        say("short write");
}

/* execrace's other thread: opens and closes all along, each open getting
 * the lowest free number (race_low), as the kernel gives it, even while
 * the main thread execs (the shim hands the cell over then). */
static int race_low = -1;

static void *race_opener(void *unused)
{
    (void)unused;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd != race_low)
            say("open gave %d, not %d", fd, race_low);
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

/* "execrace:N": N images in a row, each exec'd with race_opener running
 * (1 if N is not given). */
static void exec_race(const char *op)
{
    int left = op[8] == ':' ? atoi(op + 9) : 1;
    if (left <= 0)
        return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    race_low = fd;
    close(fd);
    pthread_t t;
    if (pthread_create(&t, NULL, race_opener, NULL) != 0)
        say("pthread_create failed");
    usleep(2000);
    char next[32];
    snprintf(next, sizeof next, "execrace:%d", left - 1);
    char *av[] = {"prog_stdio", "inherited_cell", (char *)dir, next, NULL};
    execv("/proc/self/exe", av);
    say("execv: %s", strerror(errno));
}

static void sc_inherited_cell(const char *op, int first)
{
    if (!first)
        lines('A', 40);
    char buf[4096];
    if (!strcmp(op, "tell")) {
        say("tell %lld", (long long)lseek(1, 0, SEEK_CUR));
    } else if (!strcmp(op, "seek")) {
        CALL("lseek", lseek(1, 4, SEEK_SET));
        CALL("write", write(1, "X", 1));
        CALL("lseek", lseek(1, 0, SEEK_END));
    } else if (!strcmp(op, "end")) {
        say("end %lld", (long long)lseek(1, 0, SEEK_END));
    } else if (!strcmp(op, "read")) {       /* 1<> f */
        ssize_t r = read(1, buf, sizeof buf);
        say("read %zd", r);
    } else if (!strcmp(op, "childread")) {  /* 1<> f */
        /* A child moves the offset, then this process reads at it. */
        in_child(child_lines, 'C');
        ssize_t r = read(1, buf, sizeof buf);
        struct iovec v = {buf, sizeof buf};
        ssize_t rv = readv(1, &v, 1);
        say("read %zd readv %zd", r, rv);
    } else if (!strcmp(op, "system")) {
        CALL("system", system("echo from system"));
    } else if (!strcmp(op, "spawn")) {
        pid_t pid;
        char *av[] = {"echo", "from posix_spawn", NULL};
        int st = -1;
        if (posix_spawnp(&pid, "echo", NULL, NULL, av, environ) == 0)
            waitpid(pid, &st, 0);
        say("spawn %d", st);
    } else if (!strcmp(op, "printf")) {
        printf("from printf\n");
        CALL("fflush", fflush(stdout));
    } else if (!strcmp(op, "append")) {
        CALL("F_SETFL", fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_APPEND));
    } else if (!strcmp(op, "sendfile")) {
        int src = open(path_of("src"), O_RDWR | O_CREAT | O_TRUNC, 0644);
        CALL("write src", write(src, "from sendfile\n", 14));
        CALL("sendfile", sendfile(1, src, &(off_t){0}, 14));
        close(src);
        unlink(path_of("src"));
    } else if (!strcmp(op, "noshim")) {
        say("noshim %d", in_child(child_noshim, 0));
    } else if (!strcmp(op, "execlp")) {
        say("execlp %d", in_child(child_execlp, 0));
    } else if (!strcmp(op, "cells")) {
        /* More cells than a region holds: 5,000 descriptions of the
         * file, each held alone until a child is created that gets it. */
        int n = 0;
        for (int i = 0; i < 5000; i++) {
            int fd = open(path_of("many"), O_WRONLY | O_CREAT, 0644);
            pid_t p = fork();
            if (p == 0)
                _exit(0);
            if (fd >= 0 && p > 0 && waitpid(p, NULL, 0) == p)
                n++;
            if (fd >= 0)
                close(fd);
        }
        unlink(path_of("many"));
        say("cells %d", n);
        /* One more, from a region made since: a child and then this
         * process write through it. */
        int fd = open(path_of("last"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        in_child(child_writes, fd);
        for (int i = 0; i < 40; i++)
            if (write(fd, "parent line\n", 12) != 12)
                say("short write");
        CALL("close", close(fd));
    } else if (!strcmp(op, "fork")) {
        say("fork %d", in_child(child_lines, 'C'));
    } else if (!strcmp(op, "stderr")) {
        dup2(1, 2);
        fprintf(stderr, "from stderr\n");
        errno = ENOENT;
        perror("perror");
    } else if (!strcmp(op, "kill")) {
        /* Dies with its lines still cached: the crash guard writes them
         * back where the cell put them, the shell writes after them. */
        raise(SIGKILL);
    } else if (!strcmp(op, "putpwent")) {
        /* Buffered by a stdio call the shim does not fence, written by
         * glibc at exit after the shim's exit work: through the kernel,
         * at its offset. */
        struct passwd pw = {"cell", "x", 1, 2, "gecos", "/home", "/bin/sh"};
        CALL("putpwent", putpwent(&pw, stdout));
    } else if (!strcmp(op, "atexit")) {
        /* Runs after the shim's exit work (exit called, not main's
         * return): through the kernel. */
        atexit(at_exit_write);
    } else if (!strncmp(op, "execrace", 8)) {
        /* Each exec made while another thread opens (ownfd.c (7): the
         * shim makes no descriptor for the cell's region at the exec,
         * and its looks are in windows). */
        exec_race(op);
    } else if (!strcmp(op, "dsync")) {
        struct iovec v = {"from pwritev2\n", 14};
        CALL("pwritev2", pwritev2(1, &v, 1, -1, RWF_DSYNC));
    } else {
        say("unknown op %s", op);
    }
    lines('B', 40);
    if (first)
        lines('A', 40);
    if (!strcmp(op, "atexit"))
        exit(0);
}

/* Each stdio call that can write stdout's bytes out, on a guarded
 * stdout holding cached bytes: glibc's write must land after them, as
 * with the kernel. The calls write more than the buffer (glibc writes
 * inside the call), or flush bytes that inline putc_unlocked buffered
 * without any call. */
static void sc_fences(void)
{
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = 0;
    int i = 0;
#define ONE(label, expr)                                                   \
    do {                                                                   \
        fresh_stdout(i++);                                                 \
        CALL(label, expr);                                                 \
        CALL("after", write(1, "after\n", 6));                             \
        offset("off", 1);                                                  \
    } while (0)
    ONE("printf", printf("%s\n", big));
    ONE("fprintf", fprintf(stdout, "%s\n", big));
    ONE("vprintf", vp("%s\n", big));
    ONE("puts", puts(big));
    ONE("fputs", fputs(big, stdout));
    ONE("fputs_unlocked", fputs_unlocked(big, stdout));
    ONE("fwrite", fwrite(big, 1, sizeof big, stdout));
    ONE("fwrite_unlocked", fwrite_unlocked(big, 1, sizeof big, stdout));
    fresh_stdout(i++);
    for (int k = 0; k < 9000; k++)
        putchar('p');
    CALL("putchar after", write(1, "after\n", 6));
    fresh_stdout(i++);
    for (int k = 0; k < 9000; k++)
        fputc('f', stdout);
    CALL("fputc after", write(1, "after\n", 6));
    fresh_stdout(i++);
    for (int k = 0; k < 9000; k++)
        putc('c', stdout);
    CALL("putc after", write(1, "after\n", 6));
    fresh_stdout(i++);
    for (int k = 0; k < 9000; k++)
        putc_unlocked('u', stdout);        /* __overflow when full */
    CALL("putc_unlocked after", write(1, "after\n", 6));
    /* Bytes put in the (already allocated) buffer by inline putc, then
     * written by a call that only flushes. */
#define BUFFERED(label, expr)                                              \
    do {                                                                   \
        fresh_stdout(i++);                                                 \
        for (int k = 0; k < 100; k++)                                      \
            putc_unlocked('i', stdout);                                    \
        CALL("mid", write(1, "mid\n", 4));                                 \
        CALL(label, expr);                                                 \
        CALL("after", write(1, "after\n", 6));                             \
        CALL("fflush", fflush(stdout));                                    \
    } while (0)
    BUFFERED("fflush", fflush(stdout));
    BUFFERED("fflush_unlocked", fflush_unlocked(stdout));
    BUFFERED("fflush_all", fflush(NULL));
    BUFFERED("fseek", fseek(stdout, 0, SEEK_END));
    BUFFERED("setvbuf", setvbuf(stdout, NULL, _IONBF, 0));
    static char sbuf[4096];                 /* fully buffered again */
    CALL("setvbuf", setvbuf(stdout, sbuf, _IOFBF, sizeof sbuf));
    fresh_stdout(i++);
    kernel_pos("guarded");
    CALL("printf", printf("x\n"));
    kernel_pos("fenced");
    CALL("write", write(1, "y\n", 2));
    kernel_pos("reserved");
    CALL("fflush", fflush(stdout));
    /* An unbuffered stdout is never guarded: glibc functions that write
     * to a stream they are given (putpwent here) are not fenced, and on
     * an unbuffered stream they write at once. */
    CALL("setvbuf", setvbuf(stdout, NULL, _IONBF, 0));
    fresh_stdout(i++);
    struct passwd pw = {.pw_name = "name", .pw_passwd = "x", .pw_uid = 7,
                        .pw_gid = 8, .pw_gecos = "", .pw_dir = "/",
                        .pw_shell = "/bin/sh"};
    CALL("putpwent", putpwent(&pw, stdout));
    CALL("after", write(1, "after\n", 6));
    CALL("setvbuf", setvbuf(stdout, sbuf, _IOFBF, sizeof sbuf));
    /* Last: bytes in the buffer, then exit (the shim's flush first). */
    fresh_stdout(i++);
    for (int k = 0; k < 100; k++)
        putc_unlocked('e', stdout);
    CALL("write", write(1, "before exit\n", 12));
#undef ONE
#undef BUFFERED
}

/* The same through a wide-oriented stdout. */
static void sc_fence_wide(void)
{
    for (size_t k = 0; k < sizeof wbig / sizeof wbig[0] - 1; k++)
        wbig[k] = L'w';
    fresh_stdout(0);
    CALL("fwprintf", fwprintf(stdout, L"%ls\n", wbig));
    CALL("after", write(1, "after\n", 6));
    for (int k = 0; k < 12000; k++)
        putwchar(L'p');
    CALL("putwchar after", write(1, "after\n", 6));
    CALL("fputws", fputws(wbig, stdout));
    CALL("after", write(1, "after\n", 6));
    CALL("fflush", fflush(stdout));
}

/* dd's way: close(1), open the output (it lands on 1), write. */
static void sc_open_on_1(void)
{
    CALL("close", close(1));
    CALL("open", open(path_of("dd"), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    for (int k = 0; k < 2000; k++)
        if (write(1, "x", 1) != 1)
            say("short write");
    offset("off", 1);
    size("size", 1);
    peek("peek", path_of("dd"));
    CALL("close", close(1));
    peek("peek", path_of("dd"));
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: prog_stdio SCENARIO DIR\n");
        return 2;
    }
    /* The same addresses in both runs, for backtrace_symbols_fd. */
    int pers = personality(0xffffffff);
    if (pers != -1 && !(pers & ADDR_NO_RANDOMIZE) &&
        personality((unsigned long)pers | ADDR_NO_RANDOMIZE) != -1) {
        execv("/proc/self/exe", argv);
        _exit(113);
    }
    const char *s = argv[1];
    ctl = fcntl(strncmp(s, "inherited", 9) ? 1 : 2, F_DUPFD_CLOEXEC, 100);
    dir = argv[2];
    if (!strcmp(s, "dup2_stdout"))
        sc_dup2_stdout(0);
    else if (!strcmp(s, "dup2_stdout_append"))
        sc_dup2_stdout(1);
    else if (!strcmp(s, "seek_back"))
        sc_seek_back();
    else if (!strcmp(s, "dprintf"))
        sc_dprintf();
    else if (!strcmp(s, "backtrace"))
        sc_backtrace();
    else if (!strcmp(s, "stderr"))
        sc_stderr();
    else if (!strcmp(s, "freopen"))
        sc_freopen();
    else if (!strcmp(s, "fork"))
        sc_fork();
    else if (!strcmp(s, "stdin"))
        sc_stdin();
    else if (!strcmp(s, "inherited"))
        sc_inherited();
    else if (!strcmp(s, "fork_loop"))
        sc_fork_loop();
    else if (!strcmp(s, "inherited1"))
        sc_inherited1();
    else if (!strcmp(s, "inherited_cell") && argc > 3)
        sc_inherited_cell(argv[3], argc > 4);
    else if (!strcmp(s, "inherited_err"))
        sc_inherited_err();
    else if (!strcmp(s, "inherited3"))
        sc_inherited3();
    else if (!strcmp(s, "fences"))
        sc_fences();
    else if (!strcmp(s, "fence_wide"))
        sc_fence_wide();
    else if (!strcmp(s, "open_on_1"))
        sc_open_on_1();
    else {
        fprintf(stderr, "unknown scenario %s\n", s);
        return 2;
    }
    say("done");
    return 0;
}
