/*
 * prog_points.c - scenarios for the consistency points and pass-through
 * rules of CONTRACT.md sections 1-3, run by test_shim_points.c without and
 * with the shim.
 *
 *   prog_points SCENARIO DIR [ARGS...]
 *
 * The program talks to the test over a control channel (stdout, or the
 * descriptor named by WCT_CTL_FD) and stdin, one line per message:
 *
 *   OUT text             something to compare between the runs
 *   CHECK label path     at a consistency point: the test reads `path`
 *                        itself (not under the shim) and records its size
 *                        and hash; the kernel run's record is the expected
 *                        one. The program waits for the test's answer.
 *   SORTED label path    the same, for files whose lines may be in any
 *                        order (concurrent writers): the lines are sorted
 *                        first.
 *   WAIT label path ms   the same, but the test may poll up to `ms`
 *                        milliseconds for the contents to become right
 *                        (the flush deadline), while this process waits.
 *   POKE path off text   another process writes `text` at `off` in `path`
 *                        (the test does it, not under the shim).
 *
 * After the program exits, the test also compares every file left in DIR.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <ucontext.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <ulimit.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aio.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <libaio.h>
#include <liburing.h>

#include "lib_shim.h"

extern __sighandler_t bsd_signal(int, __sighandler_t);

extern char **environ;

static const char *dir;
static int ctl = 1;

#ifdef WCT_BIG_TLS
/* prog_points_tls: 128 KiB of static TLS, which every thread's stack
 * must hold (glibc's pthread_create fails with EINVAL for a smaller
 * stack size). */
__thread char wct_big_tls[128 << 10];
#endif

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
    if (write(ctl, line, (size_t)n) != n)
        _exit(111);
}

/* Send a request and wait for the test's answer. */
static void ask(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say("%s", line);
    char c;
    if (read(0, &c, 1) != 1)
        _exit(112);
}

static char *path(const char *name)
{
    static char buf[8][4096];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void check(const char *label, const char *name)
{
    ask("CHECK %s %s", label, path(name));
}

static void die(const char *what)
{
    say("OUT fatal %s errno=%d", what, errno);
    _exit(100);
}

static int xopen(const char *name, int flags)
{
    int fd = open(path(name), flags, 0644);
    if (fd < 0)
        die(name);
    return fd;
}

/* write() and report anything but a full write. */
static void put(int fd, const void *buf, size_t n)
{
    ssize_t r = write(fd, buf, n);
    if (r != (ssize_t)n)
        say("OUT write fd-of-%zu returned %zd errno=%d", n, r, errno);
}

static void putf(int fd, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    put(fd, line, (size_t)n);
}

/* `n` lines "<tag> <i> ....\n" of 36 bytes each (tags of up to 6). */
static void lines(int fd, const char *tag, int n)
{
    for (int i = 0; i < n; i++)
        putf(fd, "%-6s %05d ......................\n", tag, i);
}

static uint64_t hash_fd_pread(int fd, long long *size)
{
    static unsigned char buf[1 << 20];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    *size = n;
    return n > 0 ? wct_hash(buf, (size_t)n) : 0;
}

static void show_file(const char *label, const char *name)
{
    int fd = open(path(name), O_RDONLY);
    if (fd < 0) {
        say("OUT %s: open errno=%d", label, errno);
        return;
    }
    long long size;
    uint64_t h = hash_fd_pread(fd, &size);
    say("OUT %s: size=%lld hash=%016" PRIx64, label, size, h);
    close(fd);
}

static void show_offset(const char *label, int fd)
{
    say("OUT %s offset=%lld", label, (long long)lseek(fd, 0, SEEK_CUR));
}

/* Read all of `fd` (a pipe) and report length and hash. */
static void show_pipe(const char *label, int fd)
{
    static unsigned char buf[1 << 20];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) > 0)
        len += (size_t)n;
    say("OUT %s: %zu bytes hash=%016" PRIx64, label, len,
        wct_hash(buf, len));
}

/* ---- scenarios -------------------------------------------------------- */

static void s_append_pwrite(void)
{
    int fd = xopen("a", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    put(fd, "hello\n", 6);
    ssize_t r = pwrite(fd, "XYZ", 3, 0);     /* appends on Linux */
    say("OUT pwrite on O_APPEND returned %zd", r);
    show_offset("after pwrite", fd);
    lseek(fd, 0, SEEK_SET);
    put(fd, "world\n", 6);                   /* still at the end */
    show_offset("after write", fd);
    struct stat st;
    fstat(fd, &st);
    say("OUT fstat size=%lld", (long long)st.st_size);
    show_file("read back", "a");
    close(fd);
    check("closed", "a");
}

static void s_dup_offset(void)
{
    int fd = xopen("d", O_RDWR | O_CREAT | O_TRUNC);
    put(fd, "aaaa", 4);
    int d = dup(fd);
    put(d, "bbbb", 4);
    show_offset("fd", fd);
    show_offset("dup", d);
    int d2 = fcntl(fd, F_DUPFD, 50);
    lseek(d2, 2, SEEK_SET);
    put(fd, "CC", 2);
    show_offset("dupfd", d2);
    int d3 = dup2(fd, 60);
    put(d3, "dddd", 4);
    show_offset("fd after dup2 write", fd);
    int d4 = dup3(fd, 61, O_CLOEXEC);
    lseek(d4, 0, SEEK_END);
    put(fd, "eeee", 4);
    /* A second open file description has its own offset. */
    int other = xopen("d", O_RDWR);
    put(other, "O", 1);
    show_offset("other", other);
    show_offset("fd", fd);
    close(fd);
    close(d);
    close(d2);
    close(d3);
    close(other);
    show_file("before last close", "d");
    close(d4);
    check("last close", "d");
}

static void s_fork_shared(void)
{
    int fd = xopen("f", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "parent", 100);
    pid_t pid = fork();
    if (pid == 0) {
        lines(fd, "child", 200);
        _exit(0);
    }
    lines(fd, "par2", 200);
    int st;
    waitpid(pid, &st, 0);
    say("OUT child status %#x", st);
    show_offset("parent", fd);
    close(fd);
    ask("SORTED both %s", path("f"));
    unlink(path("f"));         /* its line order differs from run to run */
}

/* Does this process (a fork child, made with one thread) have another
 * thread now? A cache brings its flusher thread. */
static int has_a_second_thread(void)
{
    return wct_status_field("Threads") > 1;
}

/* A process writes a log (its cache made once its writes paid for it),
 * then 30 children, one at a time, each write 3 lines through the
 * descriptor they share with it and exit, then the parent writes more.
 * Under the defaults a child's few writes go to the kernel at the
 * offset reserved in the shared cell (shim/fdtab.c (6b)); before, each
 * child made a cache of its own (0.5 ms) to write them. */
static void s_fork_children_log(void)
{
    int fd = xopen("cl", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "parent", 3000);
    int stores = 0;
    for (int c = 0; c < 30; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            char tag[16];
            snprintf(tag, sizeof tag, "c%d", c);
            lines(fd, tag, 3);
            _exit(has_a_second_thread() ? 3 : 0);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3))
            say("OUT child %d status %#x", c, st);
        stores += WIFEXITED(st) && WEXITSTATUS(st) == 3;
    }
    say("OUT children that made a cache: %d", stores);
    lines(fd, "after", 100);
    show_offset("parent", fd);
    close(fd);
    check("closed", "cl");
}

static void s_fork_sequence(void)
{
    int fd = xopen("g", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "before", 50);
    pid_t pid = fork();
    if (pid == 0) {
        show_file("child sees", "g");
        long long size;
        uint64_t h = hash_fd_pread(fd, &size);
        say("OUT child pread size=%lld hash=%016" PRIx64, size, h);
        show_offset("child", fd);
        lines(fd, "child", 50);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    show_offset("parent after child", fd);
    check("after child exit", "g");
    lines(fd, "after", 50);
    close(fd);
    check("closed", "g");
}

static void s_spawn(void)
{
    int fd = xopen("s", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    lines(fd, "spawn", 300);
    /* posix_spawn of cat, reading the file just written. */
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    char *argv[] = {"cat", path("s"), NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "cat", &fa, NULL, argv, environ);
    say("OUT posix_spawnp returned %d", rc);
    close(p[1]);
    show_pipe("cat printed", p[0]);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    say("OUT cat status %#x", st);
    /* The parent keeps writing: its O_CLOEXEC descriptor may stay cached. */
    lines(fd, "more", 100);
    /* system() */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cat '%s' > '%s'", path("s"), path("s.copy"));
    say("OUT system returned %#x", system(cmd));
    check("system copy", "s.copy");
    lines(fd, "popen", 100);
    /* popen() */
    snprintf(cmd, sizeof cmd, "cat '%s'", path("s"));
    FILE *f = popen(cmd, "r");
    show_pipe("popen read", fileno(f));
    say("OUT pclose %#x", pclose(f));
    lines(fd, "vfork", 100);
    /* vfork + exec */
    if (pipe(p) < 0)
        die("pipe");
    pid = vfork();
    if (pid == 0) {
        dup2(p[1], 1);
        execlp("cat", "cat", path("s"), (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    show_pipe("vfork cat", p[0]);
    close(p[0]);
    waitpid(pid, &st, 0);
    close(fd);
    check("closed", "s");
}

/* exec: the program after exec sees the data and continues at the
 * offset the program before it left. */
static void s_exec(int argc, char **argv)
{
    if (argc > 3) {                       /* after exec */
        int fd = atoi(argv[3]);
        show_offset("after exec", fd);
        show_file("after exec sees", "e");
        show_file("after exec, the O_CLOEXEC file", "e2");
        lines(fd, "exec", 20);
        close(fd);
        check("after exec closed", "e");
        return;
    }
    int fd = xopen("e", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "before", 100);
    /* A shell started by fork+exec writes through the same description. */
    int fd7 = dup2(fd, 7);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "echo shell-wrote-this >&7", (char *)0);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    close(fd7);
    show_offset("after shell", fd);
    lines(fd, "middle", 100);
    /* Closed by the exec itself: its data must be written before. */
    int cl = xopen("e2", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    lines(cl, "cloexec", 100);
    char fdstr[16];
    snprintf(fdstr, sizeof fdstr, "%d", fd);
    execl("/proc/self/exe", "prog_points", "exec", dir, fdstr, (char *)0);
    die("exec");
}

/* Every way a process ends keeps the data it wrote. */
static int quick_fd = -1;
static void quick_handler(void)
{
    lines(quick_fd, "at_quick_exit", 30);
}

static void *exit_thread(void *arg)
{
    const char *how = arg;
    if (strcmp(how, "thread_exit") == 0)
        _exit(0);
    syscall(SYS_exit_group, 0);
    return NULL;
}

static void s_exit(const char *how)
{
    int fds[3];
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        fds[i] = xopen(name, O_WRONLY | O_CREAT | O_TRUNC);
        lines(fds[i], how, 100 + 50 * i);
    }
    pwrite(fds[1], "HOLE", 4, 100000);
    if (strcmp(how, "return") == 0) {
        return;
    } else if (strcmp(how, "exit") == 0) {
        exit(0);
    } else if (strcmp(how, "_exit") == 0) {
        _exit(0);
    } else if (strcmp(how, "_Exit") == 0) {
        _Exit(0);
    } else if (strcmp(how, "quick_exit") == 0) {
        /* glibc's quick_exit ends in its own _exit, not the one the shim
         * exports; a handler it runs first writes too. */
        quick_fd = fds[2];
        at_quick_exit(quick_handler);
        quick_exit(0);
    } else if (strcmp(how, "sigterm") == 0) {
        raise(SIGTERM);
    } else if (strcmp(how, "sigkill") == 0) {
        kill(getpid(), SIGKILL);
    } else if (strcmp(how, "exec_failed_sigkill") == 0) {
        /* An exec that fails (the image goes on), more writes, then a
         * death the shim cannot see. */
        char *av[] = {(char *)"/nonexistent/program", NULL};
        int r = execv(av[0], av);
        say("OUT execv %d errno=%d", r, errno);
        for (int i = 0; i < 3; i++)
            lines(fds[i], "after", 60);
        kill(getpid(), SIGKILL);
    } else if (strcmp(how, "abort") == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        abort();
    } else {                          /* thread_exit, exit_group */
        pthread_t t;
        pthread_create(&t, NULL, exit_thread, (void *)how);
        pthread_join(t, NULL);
    }
    say("OUT still alive");
}

static void s_close_range(int use_closefrom)
{
    int base = 100;
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", i);
        int fd = xopen(name, O_WRONLY | O_CREAT | O_TRUNC);
        dup2(fd, base + i);
        close(fd);
        lines(base + i, "range", 100 * (i + 1));
    }
    int rc = use_closefrom ? (closefrom(base), 0) : close_range(base, ~0U, 0);
    say("OUT close_range %d", rc);
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", i);
        check("after close_range", name);
    }
}

static void s_mmap_after(void)
{
    int fd = xopen("m", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "mmap", 300);                /* 9600 bytes */
    void *p = mmap(NULL, 9600, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    say("OUT map: %016" PRIx64, wct_hash(p, 9600));
    check("after mmap", "m");
    pwrite(fd, "ZZZZ", 4, 10);
    say("OUT map after pwrite: %016" PRIx64, wct_hash(p, 9600));
    check("after pwrite", "m");
    munmap(p, 9600);
    lines(fd, "after", 10);
    close(fd);
    check("closed", "m");
}

static void s_lock(const char *kind)
{
    int fd = xopen("l", O_RDWR | O_CREAT | O_TRUNC);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc = -1;
    if (strcmp(kind, "fcntl") == 0)
        rc = fcntl(fd, F_SETLKW, &fl);
    else if (strcmp(kind, "ofd") == 0)
        rc = fcntl(fd, F_OFD_SETLKW, &fl);
    else if (strcmp(kind, "flock") == 0)
        rc = flock(fd, LOCK_EX);
    else
        rc = lockf(fd, F_LOCK, 0);
    say("OUT lock %d", rc);
    lines(fd, kind, 200);
    fl.l_type = F_UNLCK;
    if (strcmp(kind, "fcntl") == 0)
        rc = fcntl(fd, F_SETLK, &fl);
    else if (strcmp(kind, "ofd") == 0)
        rc = fcntl(fd, F_OFD_SETLK, &fl);
    else if (strcmp(kind, "flock") == 0)
        rc = flock(fd, LOCK_UN);
    else {
        lseek(fd, 0, SEEK_SET);
        rc = lockf(fd, F_ULOCK, 0);
        lseek(fd, 0, SEEK_END);
    }
    say("OUT unlock %d", rc);
    check("after unlock", "l");
    /* Taking a lock drops cached clean pages: another process changes
     * the file; after the lock this process reads the new bytes. */
    long long size;
    say("OUT read before poke %016" PRIx64, hash_fd_pread(fd, &size));
    ask("POKE %s 40 poked-by-another-process", path("l"));
    fl.l_type = F_WRLCK;
    if (strcmp(kind, "fcntl") == 0)
        rc = fcntl(fd, F_SETLKW, &fl);
    else if (strcmp(kind, "ofd") == 0)
        rc = fcntl(fd, F_OFD_SETLKW, &fl);
    else if (strcmp(kind, "flock") == 0)
        rc = flock(fd, LOCK_EX);
    else
        rc = lockf(fd, F_LOCK, 0);
    uint64_t h = hash_fd_pread(fd, &size);
    say("OUT read under lock size=%lld %016" PRIx64, size, h);
    lines(fd, "locked2", 10);
    close(fd);
    check("closed", "l");
}

/* Two writers of disjoint halves of one page, no locks: both survive. */
static void s_halves_poke(void)
{
    char page[8192];
    memset(page, 'x', sizeof page);
    int fd = xopen("h", O_RDWR | O_CREAT | O_TRUNC);
    put(fd, page, sizeof page);
    close(fd);
    check("initial", "h");
    fd = xopen("h", O_RDWR);
    long long size;
    hash_fd_pread(fd, &size);              /* tempt the cache to keep it */
    for (int off = 0; off < 2048; off += 64)
        pwrite(fd, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 64, off);
    ask("POKE %s 2048 %s", path("h"), "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
    pwrite(fd, "after-poke\n", 11, 4096 + 100);
    close(fd);
    check("closed", "h");
}

static void s_halves_fork(void)
{
    char page[4096];
    memset(page, 'x', sizeof page);
    int fd = xopen("h2", O_RDWR | O_CREAT | O_TRUNC);
    put(fd, page, sizeof page);
    close(fd);
    int go[2], done[2];
    if (pipe(go) < 0 || pipe(done) < 0)
        die("pipe");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            int f = xopen("h2", O_RDWR);
            char buf[4096];
            if (pread(f, buf, sizeof buf, 0) != 4096)
                _exit(3);
            char rec[64];
            memset(rec, k ? 'R' : 'L', sizeof rec);
            for (int off = 0; off < 2048; off += 64)
                pwrite(f, rec, 64, k * 2048 + off);
            /* Both have written before either closes. */
            if (write(done[1], "d", 1) != 1 || read(go[0], buf, 1) != 1)
                _exit(4);
            close(f);
            _exit(0);
        }
    }
    char c[2];
    for (int k = 0; k < 2; k++)
        if (read(done[0], c, 1) != 1)
            die("read");
    if (write(go[1], "gg", 2) != 2)
        die("write");
    for (int k = 0; k < 2; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        say("OUT child %d status %#x", k, st);
    }
    check("both exited", "h2");
}

static void s_fopen(void)
{
    int fd = xopen("o", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "cached", 100);
    FILE *f = fopen(path("o"), "r");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    say("OUT fopen read %zu bytes %016" PRIx64, n, wct_hash(buf, n));
    fclose(f);
    lines(fd, "more", 50);
    f = fopen(path("o"), "a");
    fprintf(f, "appended by stdio\n");
    fclose(f);
    check("after fclose", "o");
    lines(fd, "fd-again", 10);
    f = freopen(path("o"), "r", stdin);
    n = fread(buf, 1, sizeof buf, f);
    say("OUT freopen read %zu bytes %016" PRIx64, n, wct_hash(buf, n));
    close(fd);
    check("closed", "o");
}

static void s_unlinked(void)
{
    int fd = xopen("u", O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 200; i++)
        putf(fd, "UNLINKED-MARKER-%05d-written-after-unlink\n", i);
    unlink(path("u"));
    for (int i = 0; i < 200; i++)
        putf(fd, "UNLINKED-MARKER-%05d-written-after-unlink\n", i);
    long long size;
    uint64_t h = hash_fd_pread(fd, &size);
    say("OUT unlinked file reads size=%lld %016" PRIx64, size, h);
    struct stat st;
    fstat(fd, &st);
    say("OUT fstat size=%lld nlink=%ld", (long long)st.st_size,
        (long)st.st_nlink);
    close(fd);
    /* A file of the same name made afterwards must not get the data. */
    fd = xopen("u", O_RDWR | O_CREAT);
    put(fd, "new file\n", 9);
    close(fd);
    check("recreated", "u");
}

/* stdout inherited from a shell redirect passes straight through. */
static void s_inherited(void)
{
    for (int i = 0; i < 50; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "stdout line %d\n", i);
        put(1, line, (size_t)n);
    }
    check("while running", "out");
    printf("via stdio\n");
    fflush(stdout);
    check("after fflush", "out");
}

static void s_inherited_quiet(void)
{
    for (int i = 0; i < 500; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "stdout line %d\n", i);
        put(1, line, (size_t)n);
    }
    pwrite(1, "PWRITE", 6, 10);
    printf("via stdio\n");
}

static void s_deadline(void)
{
    int fd = xopen("t", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "deadline", 100);
    ask("WAIT idle %s 1000", path("t"));
    lines(fd, "second", 10);
    ask("WAIT idle-again %s 1000", path("t"));
    close(fd);
}

/* The write that makes the cache runs in a signal handler, where the
 * flusher thread may not be started (shim/flusher.c invariant (2)): it
 * starts at the program's next write, and the deadline still holds. */
static int g_handler_fd;

static void on_usr1_write(int sig)
{
    (void)sig;
    lines(g_handler_fd, "signal", 10);  /* raise(): not asynchronous */
}

static void s_deadline_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1_write;
    sigaction(SIGUSR1, &sa, NULL);
    g_handler_fd = xopen("th", O_WRONLY | O_CREAT | O_TRUNC);
    raise(SIGUSR1);
    lines(g_handler_fd, "after", 10);
    ask("WAIT idle %s 1000", path("th"));
    close(g_handler_fd);
}

/* "Threads:" of /proc/self/status. */
static int thread_count(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *t = strstr(buf, "\nThreads:");
    return t ? atoi(t + 9) : -1;
}

static void on_usr1_quiet(int sig)
{
    (void)sig;
}

/* A program that handles SIGTERM but keeps it blocked, to take it with
 * sigtimedwait or a signalfd, as daemons do: its flusher starts all the
 * same, and the deadline holds while it waits (flusher.c (2): the blocked
 * signal alone had kept the flusher from starting, for good). */
static void s_deadline_blocked(void)
{
    wct_handle_blocked(SIGTERM, on_usr1_quiet);
    int fd = xopen("tb", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "blocked", 100);
    ask("WAIT idle %s 1000", path("tb"));
    close(fd);
}

/* A handler left by longjmp (glibc's setjmp saves no signal mask: the
 * signal stays blocked), then writes made deeper in the stack than the
 * handler ran, then idle: the deadline must still write them back. The
 * stand-in's record of where the handler ran was left behind, and every
 * such write took itself for one inside the handler: no flusher was made
 * (probe AB F1). */
static jmp_buf jumped_env;

static void on_alrm_jump(int sig)
{
    (void)sig;
    longjmp(jumped_env, 1);
}

/* The file opened and written from 64 KiB of frame, all of it written,
 * below where the handler ran (the cache and its flusher are made from
 * there). */
__attribute__((noinline)) static int jumped_writes(void)
{
    volatile char pad[64 * 1024];
    memset((char *)pad, 'p', sizeof pad);
    int fd = xopen("tj", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "deep", 100);
    (void)pad[sizeof pad - 1];
    return fd;
}

static void s_deadline_jumped(void)
{
    signal(SIGALRM, on_alrm_jump);
    if (setjmp(jumped_env) == 0)
        raise(SIGALRM);
    int fd = jumped_writes();
    ask("WAIT idle %s 1000", path("tj"));
    close(fd);
}

/* The write that makes the cache runs in a handler (the default
 * WCACHE_MIN_WRITES: its 9th write): no thread is made there (flusher.c
 * (2): the kernel's signal frame above it says where it runs); the next
 * write, outside, makes the flusher. With "onstack", the handler runs on
 * an alternate stack of the program's (SA_ONSTACK), the frame on it; with
 * "raw", it is set with a raw rt_sigaction, behind the shim, which then
 * has no stand-in running it (signals.c invariant (5)) and finds the
 * kernel's signal frame alone. */
static int g_threads_in;

static void on_usr1_count(int sig)
{
    (void)sig;
    lines(g_handler_fd, "signal", 20);
    g_threads_in = thread_count();
}

/* The same, having unblocked its own signal first (nothing handled is
 * blocked then: probe AB, the flusher was made inside, its
 * pthread_create deadlocking or aborting in malloc). */
static void on_usr1_unblock(int sig)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    on_usr1_count(sig);
}

/* glibc's own name for signal() under -std=c99: not through the shim's
 * signal before (probe AB). */
extern sighandler_t __sysv_signal(int, sighandler_t);

/* A handler set behind the shim, as a program's own rt_sigaction system
 * call sets it (the kernel's struct; a restorer of our own). */
struct raw_ksa {
    void *h;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};
void wct_raw_restorer(void);
__asm__(".text\n.align 16\n.globl wct_raw_restorer\nwct_raw_restorer:\n"
        "    mov $15, %rax\n    syscall\n");

static void raw_sigaction(int sig, void (*h)(int), unsigned long flags)
{
    struct raw_ksa k = {(void *)h, 0x04000000 /* SA_RESTORER */ | flags,
                        (void *)wct_raw_restorer, 0};
    if (syscall(SYS_rt_sigaction, sig, &k, NULL, 8) != 0)
        die("rt_sigaction");
}

static void s_handler_thread(const char *arg)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1_count;
    if (arg && !strcmp(arg, "onstack")) {
        static char alt[256 << 10];
        stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
        if (sigaltstack(&ss, NULL) != 0)
            die("sigaltstack");
        sa.sa_flags = SA_ONSTACK;
    }
    if (arg && !strcmp(arg, "unblock"))
        sa.sa_handler = on_usr1_unblock;
    sigaction(SIGUSR1, &sa, NULL);
    if (arg && !strcmp(arg, "sysv"))
        __sysv_signal(SIGUSR1, on_usr1_count);
    if (arg && !strcmp(arg, "raw"))
        raw_sigaction(SIGUSR1, on_usr1_count, 0);
    g_handler_fd = xopen("tt", O_WRONLY | O_CREAT | O_TRUNC);
    int before = thread_count();
    raise(SIGUSR1);
    say("OUT no thread made in the handler: %s",
        g_threads_in == before ? "yes" : "no");
    lines(g_handler_fd, "after", 10);
    ask("WAIT idle %s 1000", path("tt"));
    close(g_handler_fd);
}

/* A program with a handler of its own that writes a file a few times
 * (under WCACHE_MIN_WRITES) caches nothing and has no thread of the
 * shim's (flusher.c (2)); descriptors opened read-only before any cache,
 * a device's among them, are the kernel's (fdtab.c (7)), and a file
 * cached later is read through them. */
/* sigaction's answers, call after call, with the file cached (so that the
 * shim stands in for the death signals' default actions) or not: each
 * call's old action as the program sees it (which handler, the flags the
 * program chose, two signals of its mask), and what a raise then runs.
 * shim/signals.c stood_sigaction makes the program's old action from the
 * kernel's, read by the same call that sets the new one. */
static volatile sig_atomic_t sa_hits[3];
static void sa_h0(int sig) { (void)sig; sa_hits[0]++; }
static void sa_h1(int sig) { (void)sig; sa_hits[1]++; }
static void sa_h2(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si; (void)uc;
    sa_hits[2]++;
}

static const char *sa_name(const struct sigaction *a)
{
    if (a->sa_flags & SA_SIGINFO)
        return a->sa_sigaction == sa_h2 ? "h2" : "info?";
    return a->sa_handler == SIG_DFL ? "DFL" : a->sa_handler == SIG_IGN ? "IGN"
           : a->sa_handler == sa_h0 ? "h0" : a->sa_handler == sa_h1 ? "h1"
           : "other";
}

static void s_sigactions(const char *how)
{
    int fd = -1;
    if (!strcmp(how, "cached")) {
        fd = xopen("sa", O_WRONLY | O_CREAT | O_TRUNC);
        lines(fd, "line", 40);
    }
    static const int sigs[] = {SIGINT, SIGTERM, SIGUSR1, SIGPIPE, SIGALRM};
    for (int round = 0; round < 12; round++) {
        for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++) {
            int sig = sigs[k];
            struct sigaction a, old;
            memset(&a, 0, sizeof a);
            sigemptyset(&a.sa_mask);
            switch ((round + (int)k) % 6) {
            case 0: a.sa_handler = sa_h0; sigaddset(&a.sa_mask, SIGUSR2);
                    break;
            case 1: a.sa_handler = SIG_DFL; break;
            case 2: a.sa_sigaction = sa_h2; a.sa_flags = SA_SIGINFO;
                    break;
            case 3: a.sa_handler = sa_h1; a.sa_flags = SA_RESETHAND |
                    SA_NODEFER; break;
            case 4: a.sa_handler = SIG_IGN; break;
            default: a.sa_handler = sa_h1; a.sa_flags = SA_RESTART;
                    sigaddset(&a.sa_mask, SIGHUP); break;
            }
            memset(&old, 0x5a, sizeof old);
            errno = 0;
            int r = sigaction(sig, &a, &old);
            say("OUT %d/%d set %s: %d errno=%d old %s flags=%#x usr2=%d "
                "hup=%d", round, sig, sa_name(&a), r, errno, sa_name(&old),
                old.sa_flags & (SA_SIGINFO | SA_RESETHAND | SA_NODEFER |
                                SA_RESTART | SA_ONSTACK),
                sigismember(&old.sa_mask, SIGUSR2),
                sigismember(&old.sa_mask, SIGHUP));
            if (round % 3 == 2 && a.sa_handler != SIG_DFL) {
                raise(sig);
                struct sigaction now;
                sigaction(sig, NULL, &now);
                say("OUT %d/%d raised: h0 %d h1 %d h2 %d now %s", round,
                    sig, (int)sa_hits[0], (int)sa_hits[1], (int)sa_hits[2],
                    sa_name(&now));
            }
        }
        if (fd >= 0)
            lines(fd, "more", 3);
    }
    errno = 0;
    int r = sigaction(SIGINT, NULL, NULL);
    say("OUT query nothing: %d errno=%d", r, errno);
    /* SIGSEGV, whose handler is the engine's once a file is cached: the
     * program's action comes back as the kernel keeps it. */
    struct sigaction sv, sold;
    memset(&sv, 0, sizeof sv);
    sv.sa_handler = sa_h0;
    sigemptyset(&sv.sa_mask);
    sigaddset(&sv.sa_mask, SIGKILL);
    sigaction(SIGSEGV, &sv, NULL);
    sigaction(SIGSEGV, NULL, &sold);
    say("OUT SIGSEGV %s flags=%#x restorer=%d kill=%d", sa_name(&sold),
        (unsigned)sold.sa_flags, sold.sa_restorer != NULL,
        sigismember(&sold.sa_mask, SIGKILL));
    if (fd >= 0)
        close(fd);      /* the file is compared after the run */
}

/* The loader's lock and its dlerror() state are the program's (shim/
 * real.c next_sym): a pending dlerror() message survives the shim's
 * first stdio call (its real function found then) and a fork; and a
 * library whose constructor forks from another thread loads (the shim
 * looked up the real functions with dlsym in fork's prepare: it waited
 * for the loader's lock, held by the dlopen waiting for the fork, for
 * good). `how`: "cached" writes a cached file first. */
static void s_dlopen_fork(const char *how)
{
    if (!strcmp(how, "cached")) {
        int fd = xopen("dl", O_WRONLY | O_CREAT | O_TRUNC);
        lines(fd, "line", 40);
        close(fd);
    }
    void *h = dlopen("libdoes-not-exist-wcache.so", RTLD_NOW);
    FILE *f = fopen(path("msg"), "w");
    if (!f)
        die("fopen");
    fprintf(f, "dlopen failed: %s\n", h ? "no" : dlerror());
    fclose(f);
    char buf[512] = {0};
    int in = open(path("msg"), O_RDONLY);
    ssize_t n = in >= 0 ? read(in, buf, sizeof buf - 1) : -1;
    if (in >= 0)
        close(in);
    buf[strcspn(buf, "\n")] = 0;       /* one line to the harness */
    say("OUT message %zd: %s", n, buf);
    h = dlopen("libdoes-not-exist-wcache.so", RTLD_NOW);
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    const char *e = dlerror();
    say("OUT after a fork: %s", e ? e : "(none)");
    h = dlopen(WCT_BUILD_DIR "/tests/so_forkctor.so", RTLD_NOW);
    int *st = h ? (int *)dlsym(h, "so_forkctor_status") : NULL;
    say("OUT loaded %d, its constructor's child exited %d", h != NULL,
        st ? *st : -2);
}

/* A handler set behind the shim (a raw rt_sigaction, which the shim does
 * not see) that runs while the program is inside sigaction: one that asks
 * sigaction for actions there must get the program's, and one that leaves
 * by a jump must leave the shim in order (probe AH, against a sigaction
 * that did not block signals around its records: the shim's handlers
 * reported, then the thread inside the shim for good, a handler set
 * afterwards never run, SIGTERM at its default no longer killing). */
static volatile int raw_ticks, raw_bad, raw_usr2;
static sigjmp_buf raw_jb;
static void raw_u2(int sig) { (void)sig; raw_usr2++; }
static void raw_ask(int sig)
{
    (void)sig;
    raw_ticks++;
    struct sigaction o;
    sigaction(SIGTERM, NULL, &o);
    raw_bad += o.sa_handler != SIG_DFL || (o.sa_flags & SA_SIGINFO);
    sigaction(SIGUSR2, NULL, &o);
    raw_bad += o.sa_handler != raw_u2 || (o.sa_flags & SA_SIGINFO);
}
static void raw_jump(int sig)
{
    (void)sig;
    raw_ticks++;
    siglongjmp(raw_jb, 1);
}

static void raw_alarm(void (*h)(int), unsigned long flags)
{
    raw_sigaction(SIGALRM, h, flags);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void s_raw_handler(void)
{
    int fd = xopen("raw", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "line", 40);                      /* the cache is made */
    struct sigaction s2, sa;
    memset(&s2, 0, sizeof s2);
    s2.sa_handler = raw_u2;
    sigaction(SIGUSR2, &s2, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    raw_alarm(raw_ask, SA_RESTART);
    while (raw_ticks < 1500)
        sigaction(SIGUSR1, &sa, NULL);
    struct itimerval z = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &z, NULL);
    say("OUT asked from a raw handler: %s", raw_bad ? "wrong" : "right");
    raw_ticks = 0;
    raw_alarm(raw_jump, SA_NODEFER);
    sigsetjmp(raw_jb, 1);
    while (raw_ticks < 1500)
        sigaction(SIGUSR1, &sa, NULL);
    setitimer(ITIMER_REAL, &z, NULL);
    struct sigaction t;
    sigaction(SIGTERM, NULL, &t);
    say("OUT after the jumps: SIGTERM %s", t.sa_handler == SIG_DFL
                                              ? "SIG_DFL" : "another");
    raise(SIGUSR2);
    say("OUT SIGUSR2 ran %d", (int)raw_usr2);
    lines(fd, "more", 20);
    kill(getpid(), SIGTERM);                    /* the default: death */
    say("OUT alive after SIGTERM");
}

static void s_no_thread(void)
{
    signal(SIGUSR1, on_usr1_quiet);
    int z = open("/dev/zero", O_RDONLY);
    int fd = xopen("nt", O_WRONLY | O_CREAT | O_TRUNC);
    int rd = xopen("nt", O_RDONLY);
    lines(fd, "few", 3);
    say("OUT threads %d", thread_count());
    lines(fd, "many", 40);
    char buf[64] = {0};
    ssize_t n = pread(rd, buf, 35, 36 * 41);    /* a line, not its \n */
    say("OUT read %zd %s", n, n > 0 ? buf : "");
    struct stat st;
    int r = fstat(rd, &st);
    say("OUT fstat %d %lld", r, (long long)st.st_size);
    memset(buf, 'x', sizeof buf);
    n = read(z, buf, 8);
    say("OUT zero %zd %d", n, buf[0]);
    r = fstat(z, &st);
    say("OUT zero fstat %d %d", r, S_ISCHR(st.st_mode));
    close(z);
    close(rd);
    close(fd);
    check("closed", "nt");
}

static void s_fsync(void)
{
    int fd = xopen("y", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "fsync", 100);
    say("OUT fsync %d", fsync(fd));
    check("fsync", "y");
    lines(fd, "fdatasync", 100);
    say("OUT fdatasync %d", fdatasync(fd));
    check("fdatasync", "y");
    lines(fd, "sfr", 100);
    say("OUT sync_file_range %d", sync_file_range(fd, 0, 0,
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
        SYNC_FILE_RANGE_WAIT_AFTER));
    check("sync_file_range", "y");
    lines(fd, "syncfs", 100);
    say("OUT syncfs %d", syncfs(fd));
    check("syncfs", "y");
    lines(fd, "sync", 100);
    sync();
    check("sync", "y");
    close(fd);
}

/* Times set through the descriptor by routes the shim missed: the raw
 * utimensat with a NULL path (glibc's function refuses it; the shim's
 * syscall() sent it there: EINVAL), utimensat with "" and AT_EMPTY_PATH
 * (nothing flushed: the write-back at close moved the time set), and
 * futimesat, with glibc's function and the raw call. The mtime after the
 * close is the one set. */
static void s_times(void)
{
    struct timespec ts[2] = {{1000000000, 0}, {1100000000, 0}};
    struct timeval tv[2] = {{1000000000, 0}, {1200000000, 0}};
    for (int k = 0; k < 4; k++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", k);
        int fd = xopen(name, O_WRONLY | O_CREAT | O_TRUNC);
        lines(fd, name, 50);
        errno = 0;
        long r = k == 0 ? syscall(SYS_utimensat, fd, NULL, ts, 0)
               : k == 1 ? utimensat(fd, "", ts, AT_EMPTY_PATH)
               : k == 2 ? futimesat(fd, NULL, tv)
                        : syscall(SYS_futimesat, fd, NULL, tv);
        say("OUT %s %ld %d", name, r, errno);
        close(fd);
        struct stat st;
        say("OUT %s mtime %d %lld", name, stat(name, &st),
            (long long)st.st_mtime);
    }
}

/* A directory of files still open and written, renamed into place (a
 * staging directory published): a reader of the new names finds the
 * bytes, as for a rename of the file itself (it found 0 bytes). The files
 * are compared again after more writes and the close. */
static void s_dir_rename(void)
{
    if (mkdir(path("stage"), 0755) != 0)
        die("mkdir");
    int a = xopen("stage/a", O_WRONLY | O_CREAT | O_TRUNC);
    int b = xopen("stage/b", O_WRONLY | O_CREAT | O_TRUNC);
    lines(a, "a", 200);
    lines(b, "b", 30);
    say("OUT rename %d", rename(path("stage"), path("final")));
    check("renamed-a", "final/a");
    check("renamed-b", "final/b");
    lines(a, "a2", 20);
    close(a);
    close(b);
    check("closed-a", "final/a");
}

/* Section 1: descriptors that are not cached see every byte at once. */
static void s_passthrough(const char *kind)
{
    int fd = xopen("p", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "cached", 100);
    if (strcmp(kind, "osync") == 0) {
        int s = xopen("p", O_WRONLY | O_SYNC);
        check("after O_SYNC open", "p");
        lseek(s, 0, SEEK_END);
        lines(s, "osync", 10);
        check("after O_SYNC write", "p");
        close(s);
    } else if (strcmp(kind, "odirect") == 0) {
        int d = open(path("p"), O_RDWR | O_DIRECT);
        if (d < 0) {
            say("OUT O_DIRECT unsupported here: %d", errno);
        } else {
            check("after O_DIRECT open", "p");
            void *buf;
            if (posix_memalign(&buf, 4096, 4096) != 0)
                die("memalign");
            memset(buf, 'D', 4096);
            say("OUT direct pwrite %zd", pwrite(d, buf, 4096, 8192));
            check("after O_DIRECT write", "p");
            long long size;
            say("OUT read via other fd %016" PRIx64,
                hash_fd_pread(fd, &size));
            free(buf);
            close(d);
        }
    } else if (strcmp(kind, "fdopen") == 0) {
        FILE *f = fdopen(fd, "w");
        check("after fdopen", "p");
        fprintf(f, "via fdopen\n");
        fflush(f);
        check("after fflush", "p");
        fclose(f);
        check("after fclose", "p");
        return;
    } else if (strcmp(kind, "bypass") == 0) {
        static char big[300 * 1024];
        memset(big, 'B', sizeof big);
        put(fd, big, sizeof big);
        check("after a write past WCACHE_BYPASS", "p");
        lines(fd, "small-again", 10);
    } else if (strcmp(kind, "env") == 0) {
        /* WCACHE_DISABLE=1 or an include/exclude pattern set by the test */
        check("uncached", "p");
        lines(fd, "more", 10);
        check("uncached-2", "p");
    } else if (strcmp(kind, "proc") == 0) {
        int c = open("/proc/self/comm", O_WRONLY);
        say("OUT comm write %zd", write(c, "wct-renamed", 11));
        close(c);
        char name[32] = "";
        prctl(PR_GET_NAME, name);
        say("OUT comm now %s", name);
    } else if (strcmp(kind, "fifo") == 0) {
        /* FIFOs and devices opened by path pass straight through. */
        if (mkfifo(path("fifo"), 0600) < 0)
            die("mkfifo");
        int ff = xopen("fifo", O_RDWR);
        say("OUT fifo write %zd", write(ff, "through-the-fifo", 16));
        char buf[64] = "";
        say("OUT fifo read %zd", read(ff, buf, sizeof buf));
        say("OUT fifo got %.16s", buf);
        close(ff);
        unlink(path("fifo"));
        int dn = open("/dev/null", O_WRONLY);
        say("OUT /dev/null write %zd", write(dn, buf, 10));
        close(dn);
        int dz = open("/dev/zero", O_RDONLY);
        memset(buf, 1, sizeof buf);
        say("OUT /dev/zero read %zd first %d", read(dz, buf, 10), buf[0]);
        close(dz);
    } else if (strcmp(kind, "sendfile") == 0) {
        int out = xopen("p.sent", O_WRONLY | O_CREAT | O_TRUNC);
        off_t off = 0;
        long r = (long)copy_file_range(fd, &off, out, NULL, 1 << 20, 0);
        say("OUT copy_file_range %ld", r);
        close(out);
        check("copied", "p.sent");
    }
    close(fd);
    check("closed", "p");
}

static void s_truncate(void)
{
    int fd = xopen("tr", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "trunc", 300);
    say("OUT truncate %d", truncate(path("tr"), 1000));
    struct stat st;
    stat(path("tr"), &st);
    say("OUT stat size %lld", (long long)st.st_size);
    show_offset("fd", fd);
    lines(fd, "past", 10);                 /* leaves a hole */
    show_file("reads", "tr");
    /* O_TRUNC open while the first descriptor has cached data. */
    int t = xopen("tr", O_WRONLY | O_TRUNC);
    fstat(fd, &st);
    say("OUT after O_TRUNC fstat size %lld", (long long)st.st_size);
    lines(t, "new", 5);
    close(t);
    lines(fd, "old-fd", 5);
    close(fd);
    check("closed", "tr");
}

static void s_second_open(void)
{
    int fd = xopen("so", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "first", 100);
    int r = xopen("so", O_RDONLY);
    long long size;
    uint64_t h = hash_fd_pread(r, &size);
    say("OUT second open reads size=%lld %016" PRIx64, size, h);
    struct stat st;
    fstat(r, &st);
    say("OUT fstat second %lld", (long long)st.st_size);
    fstatat(AT_FDCWD, path("so"), &st, 0);
    say("OUT fstatat %lld", (long long)st.st_size);
    struct statx sx;
    statx(AT_FDCWD, path("so"), 0, STATX_SIZE, &sx);
    say("OUT statx %lld", (long long)sx.stx_size);
    say("OUT SEEK_END %lld", (long long)lseek(r, 0, SEEK_END));
    close(r);
    close(fd);
    check("closed", "so");
}

/* Descriptions of one file in every state at once (test_shim_policy.c
 * runs it with the default WCACHE_MIN_WRITES): a new file made with
 * O_CREAT|O_EXCL, a reader and a second writer opened before it is
 * cached. The second writer's 9th write caches the file; the reader must
 * read the lines that only the cache holds, and the first writer's next
 * line, at its own offset inside the cached range, must land after them
 * in program order. No fork, exec or other consistency point between. */
static void s_watch_states(void)
{
    int w1 = xopen("ws", O_WRONLY | O_CREAT | O_EXCL);
    int rd = xopen("ws", O_RDONLY);
    int w2 = xopen("ws", O_RDWR);
    const char *head = "012345678901234567890123456789\n";
    if (write(w1, head, strlen(head)) != (ssize_t)strlen(head))
        say("OUT short write");
    for (int i = 1; i <= 11; i++) {
        char line[16];
        int n = snprintf(line, sizeof line, "w%02d\n", i);
        say("OUT w2 %d -> %zd", i, write(w2, line, (size_t)n));
    }
    say("OUT w1 after -> %zd", write(w1, "after\n", 6));
    char buf[256] = {0};
    ssize_t n = read(rd, buf, sizeof buf - 1);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = '|';
    say("OUT read %zd %s", n, n > 0 ? buf : "");
    struct stat st;
    fstat(rd, &st);
    say("OUT fstat %lld", (long long)st.st_size);
    say("OUT w2 end -> %zd", write(w2, "end\n", 4));
    close(w1);
    close(rd);
    close(w2);
    check("closed", "ws");
}

/* Scattered writes over 4096 pages (the engine writes them back early,
 * then sends the next ones straight to the kernel while the file is
 * clean), reads of earlier records among them, then a sequence at the
 * end of the file (cached again) and a read of everything. */
static void s_scatter(void)
{
    int fd = xopen("sc", O_RDWR | O_CREAT | O_TRUNC);
    char rec[512], got[512];
    for (int i = 0; i < 3000; i++) {
        off_t at = (off_t)((i * 7919L) % 4096) * 4096 + (i % 8) * 512;
        memset(rec, 'a' + i % 26, sizeof rec);
        snprintf(rec, sizeof rec, "record %d", i);
        if (pwrite(fd, rec, sizeof rec, at) != (ssize_t)sizeof rec)
            say("OUT short pwrite %d", i);
        if (i % 97 == 0 && i) {
            int j = i - 13;
            off_t back = (off_t)((j * 7919L) % 4096) * 4096 + (j % 8) * 512;
            ssize_t n = pread(fd, got, sizeof got, back);
            say("OUT pread %d -> %zd %.12s", j, n, n > 0 ? got : "");
        }
    }
    lseek(fd, 0, SEEK_END);
    for (int i = 0; i < 300; i++) {
        int n = snprintf(rec, sizeof rec, "tail line %d\n", i);
        if (write(fd, rec, (size_t)n) != n)
            say("OUT short write %d", i);
    }
    long long size;
    uint64_t h = hash_fd_pread(fd, &size);
    say("OUT all %lld %016" PRIx64, size, h);
    close(fd);
    check("closed", "sc");
}

/* Writes with no consistency point before the PEEK: under the shim
 * another process is expected to see less (test: writes_are_cached...). */
static void s_peek(void)
{
    int fd = xopen("k", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "peek", 100);
    ask("PEEK before-close %s", path("k"));
    close(fd);
    check("closed", "k");
}

/* Daemons close every descriptor above 2 at start-up; the shim's own
 * descriptors must survive (or be re-made) and caching must still work. */
static void s_close_all(int midway)
{
    int a = -1;
    if (midway) {
        a = xopen("ca", O_WRONLY | O_CREAT | O_TRUNC);
        lines(a, "before-closefrom", 100);
        closefrom(3);                       /* closes `a` too */
        check("after closefrom", "ca");
    } else {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    }
    int fd = xopen("cb", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "after", 300);
    long long size;
    uint64_t h = hash_fd_pread(fd, &size);
    say("OUT reads size=%lld %016" PRIx64, size, h);
    say("OUT fsync %d", fsync(fd));
    check("fsync", "cb");
    lines(fd, "more", 100);
    close(fd);
    check("closed", "cb");
}

static void s_rename(void)
{
    int fd = xopen("rn", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "renamed", 100);
    say("OUT rename %d", rename(path("rn"), path("rn.new")));
    lines(fd, "after-rename", 100);
    show_file("new name reads", "rn.new");
    close(fd);
    check("closed", "rn.new");
}

/* Two processes append to one log through their own O_APPEND descriptors,
 * as two instances of a service do: no line may be lost. */
static void s_two_appenders(void)
{
    int fd = xopen("log", O_WRONLY | O_CREAT | O_TRUNC);
    close(fd);
    int go[2];
    if (pipe(go) < 0)
        die("pipe");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            close(go[1]);
            char c;
            int f = xopen("log", O_WRONLY | O_APPEND);
            if (read(go[0], &c, 1) < 0)   /* start together */
                _exit(3);
            for (int i = 0; i < 2000; i++) {
                putf(f, "appender-%d line %05d\n", k, i);
                if (i % 500 == 499)
                    usleep(2000);
            }
            close(f);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]);                           /* EOF starts both */
    for (int k = 0; k < 2; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        say("OUT appender %d status %#x", k, st);
    }
    ask("SORTED both-exited %s", path("log"));
    unlink(path("log"));                    /* order differs run to run */
}

/* A vfork child that fails to exec and _exits must not disturb the
 * parent's cache (it runs on the parent's memory). */
static void s_vfork_fail(void)
{
    int fd = xopen("vf", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "before", 100);
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/nonexistent/program", "x", (char *)0);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    say("OUT child status %#x", st);
    lines(fd, "after", 100);
    show_file("reads", "vf");
    close(fd);
    check("closed", "vf");
}

/* Descriptor 2 opened by a raw openat2 (syscall()), then glibc's own
 * writes there (perror, a stream): they land after the program's, as
 * without the shim. The raw open was tracked without stdio's sharing,
 * and perror's line was written over by the cached ones. */
static void s_raw_open_std(void)
{
    int saved = dup(2);
    close(2);
    struct open_how how = {.flags = O_RDWR | O_CREAT | O_TRUNC,
                           .mode = 0644};
    long fd = syscall(SYS_openat2, AT_FDCWD, path("rawstd"), &how,
                      sizeof how);
    if (fd != 2) {
        dup2(saved, 2);
        die("openat2");
    }
    lines(2, "raw", 300);
    errno = ENOENT;
    perror("perror after the lines");
    fprintf(stderr, "and a stream's line\n");
    lines(2, "raw2", 20);
    dup2(saved, 2);
    close(saved);
    check("closed", "rawstd");
}

/* vfork children that make an O_CLOEXEC description of the parent's
 * inheritable before they exec: one puts it on its stdout (dup2), others
 * clear the flag (F_SETFD, ioctl FIONCLEX, F_SETFD on a copy made with
 * F_DUPFD_CLOEXEC). The exec'd image writes through it at the
 * kernel's offset; the parent kept it private at the vfork and wrote its
 * next lines over the child's (a shell's `cmd >&3` with a logger's fd). */
/* A vfork child that clears O_CLOEXEC of fd's description by ioctl
 * (way 0) or on a copy made with F_DUPFD_CLOEXEC (way 1), then execs a
 * shell writing a line there. Returns its wait status. */
static int vfork_clear_cloexec(int fd, int way)
{
    int at = way ? 57 : fd;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "echo from child %d, at %d >&%d", way, at, at);
    pid_t pid = vfork();
    if (pid == 0) {
        if (way == 0) {
            ioctl(fd, FIONCLEX);
        } else {
            int c = fcntl(fd, F_DUPFD_CLOEXEC, at);
            fcntl(c, F_SETFD, 0);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    return st;
}

static void s_vfork_inherit(void)
{
    int l = xopen("vl", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    int m = xopen("vm", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    lines(l, "l", 300);
    lines(m, "m", 300);
    pid_t pid = vfork();
    if (pid == 0) {
        dup2(l, 1);
        execl("/bin/echo", "echo", "from the child, on its stdout",
              (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    say("OUT first child status %#x", st);
    lines(l, "l2", 20);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "echo from the child, at %d >&%d", m, m);
    pid = vfork();
    if (pid == 0) {
        fcntl(m, F_SETFD, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    say("OUT second child status %#x", st);
    lines(m, "m2", 20);
    /* The same by ioctl(FIONCLEX), and through a copy the child made
     * with F_DUPFD_CLOEXEC, then F_SETFD. */
    int n = xopen("vn", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    lines(n, "n", 300);
    for (int way = 0; way < 2; way++) {
        say("OUT child %d status %#x", way, vfork_clear_cloexec(n, way));
        lines(n, way ? "n3" : "n2", 20);
    }
    say("OUT offsets %lld %lld %lld", (long long)lseek(l, 0, SEEK_CUR),
        (long long)lseek(m, 0, SEEK_CUR), (long long)lseek(n, 0, SEEK_CUR));
    /* A child whose exec fails writes through a description of the
     * parent's (O_CLOEXEC, private) itself, then _exits: the kernel's
     * offset moved. */
    int q = xopen("vq", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    lines(q, "q", 300);
    pid = vfork();
    if (pid == 0) {
        execl("/nonexistent/program", "x", (char *)NULL);
        if (write(q, "from the child, its exec failed\n", 32) != 32)
            _exit(126);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    say("OUT failed child status %#x", st);
    lines(q, "q2", 20);
    say("OUT offset %lld", (long long)lseek(q, 0, SEEK_CUR));
    close(q);
    check("closed", "vq");
    close(l);
    close(m);
    close(n);
    check("closed", "vl");
    check("closed", "vm");
    check("closed", "vn");
    /* More descriptions made inheritable than the child's list holds
     * (32): the parent shares every one. */
    enum { MANY = 36 };
    int fds[MANY];
    char name[16], many[MANY * 24 + 1] = "";
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "vmany%d", i);
        fds[i] = xopen(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
        lines(fds[i], "many", 10);
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "echo child >&%d; ", fds[i]);
    }
    pid = vfork();
    if (pid == 0) {
        for (int i = 0; i < MANY; i++)
            ioctl(fds[i], FIONCLEX);
        execl("/bin/sh", "sh", "-c", many, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    say("OUT many child status %#x", st);
    for (int i = 0; i < MANY; i++) {
        lines(fds[i], "many2", 5);
        close(fds[i]);
        snprintf(name, sizeof name, "vmany%d", i);
        check("closed", name);
    }
}

/* vfork children that write through a description of the parent's (its
 * offset in a cell), change their own descriptors and signal actions, and
 * exec with a file of their own on stdout: they run in the parent's memory
 * (the shim's too), yet none of it reaches the parent's cache, descriptor
 * table or signal actions. */
static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen = 1;
}

static void s_vfork_child(void)
{
    signal(SIGUSR1, on_usr1);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGTERM, &dfl, NULL);     /* the shim stands in for it */
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    int src = xopen("vsrc", O_WRONLY | O_CREAT | O_TRUNC);
    lines(src, "src", 50);
    close(src);
    int a = xopen("va", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    int b = xopen("vb", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    int e = xopen("ve", O_WRONLY | O_CREAT | O_TRUNC);  /* a cell's */
    int g = xopen("vg", O_WRONLY | O_CREAT | O_TRUNC);  /* another */
    lines(a, "a", 200);
    lines(b, "b", 200);
    lines(e, "e", 200);
    lines(g, "g", 200);
    char cpath[4096], cmd[4200];
    snprintf(cpath, sizeof cpath, "%s", path("vc"));
    /* The child execs a shell that writes through the parent's e, at the
     * offset the cell keeps. */
    snprintf(cmd, sizeof cmd, "echo from the first child >&%d", e);
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    say("OUT first child status %#x", st);
    lines(e, "e2", 100);
    lines(g, "g2", 100);
    /* This one changes its own descriptors and signal actions, e at a
     * second number among them. */
    snprintf(cmd, sizeof cmd, "cat '%s'; echo from the second child >&9; "
             "echo and through e >&%d", path("vsrc"), e);
    pid = vfork();
    if (pid == 0) {
        close(a);                           /* its own table only */
        int c = open(cpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int c2 = fcntl(c, F_DUPFD, 20);
        dup2(c2, 1);
        dup2(c2, p[1]);                     /* the parent writes its own */
        close(c);
        close(c2);
        dup2(2, b);                         /* over the parent's number */
        /* A write of its own through g (whose offset the parent moved in
         * its cell since the first child: the kernel's is behind). */
        if (write(g, "the second child, directly\n", 27) != 27)
            _exit(126);
        dup2(e, 9);                         /* e at two numbers */
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigaction(SIGTERM, &ign, NULL);
        signal(SIGUSR1, SIG_DFL);
        signal(SIGINT, SIG_IGN);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    say("OUT second child status %#x", st);
    lines(a, "a2", 200);
    lines(b, "b2", 200);
    lines(e, "e3", 100);
    lines(g, "g3", 100);
    lines(p[1], "pipe", 20);
    close(p[1]);
    show_pipe("pipe", p[0]);
    close(p[0]);
    show_offset("a", a);
    show_offset("e", e);
    show_offset("g", g);
    struct sigaction now;
    sigaction(SIGTERM, NULL, &now);
    say("OUT SIGTERM default %d", now.sa_handler == SIG_DFL);
    sigaction(SIGINT, NULL, &now);
    say("OUT SIGINT default %d", now.sa_handler == SIG_DFL);
    raise(SIGUSR1);
    say("OUT SIGUSR1 handled %d", (int)usr1_seen);
    show_file("a reads", "va");
    show_file("b reads", "vb");
    show_file("e reads", "ve");
    show_file("g reads", "vg");
    check("child's file", "vc");
    close(a);
    close(b);
    close(e);
    close(g);
    check("a closed", "va");
    check("b closed", "vb");
    check("e closed", "ve");
    check("g closed", "vg");
}

/* O_TMPFILE: no name while written (nlink 0), then given one. */
static void s_tmpfile(void)
{
    int fd = open(dir, O_TMPFILE | O_RDWR, 0644);
    if (fd < 0) {
        say("OUT O_TMPFILE unsupported: %d", errno);
        return;
    }
    lines(fd, "tmpfile", 300);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    say("OUT linkat %d", linkat(AT_FDCWD, proc, AT_FDCWD, path("tf"),
                                AT_SYMLINK_FOLLOW));
    lines(fd, "linked", 100);
    close(fd);
    check("closed", "tf");
}

/* Offsets past 4 GiB (sparse). */
static void s_big_offset(void)
{
    int fd = xopen("big", O_RDWR | O_CREAT | O_TRUNC);
    off_t offs[] = {(off_t)5 << 30, ((off_t)1 << 40) + 4095, 100};
    for (int i = 0; i < 3; i++) {
        char rec[64];
        int n = snprintf(rec, sizeof rec, "record at %lld\n",
                         (long long)offs[i]);
        say("OUT pwrite %zd", pwrite(fd, rec, (size_t)n, offs[i]));
    }
    struct stat st;
    fstat(fd, &st);
    say("OUT size %lld", (long long)st.st_size);
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof buf, (off_t)5 << 30);
    say("OUT pread %zd %016" PRIx64, n, n > 0 ? wct_hash(buf, (size_t)n) : 0);
    close(fd);
    int r = xopen("big", O_RDONLY);
    n = pread(r, buf, sizeof buf, ((off_t)1 << 40) + 4095);
    say("OUT after close: pread %zd %016" PRIx64, n,
        n > 0 ? wct_hash(buf, (size_t)n) : 0);
    close(r);
    unlink(path("big"));
}

/* The program points its own stdout at a cached file; a child started by
 * system() writes through the inherited descriptor in between. */
static void s_dup2_stdout(void)
{
    int fd = xopen("so1", O_WRONLY | O_CREAT | O_TRUNC);
    int saved = dup(1);
    dup2(fd, 1);
    close(fd);
    for (int i = 0; i < 50; i++)
        printf("printf line %d\n", i);
    fflush(stdout);
    int rc = system("echo written-by-a-child-shell");
    for (int i = 0; i < 50; i++)
        printf("printf after %d\n", i);
    fflush(stdout);
    dup2(saved, 1);                        /* closes the file */
    close(saved);
    say("OUT system %#x", rc);
    check("restored", "so1");
}

/* A bad WCACHE_* value: one line on stderr, then pass-through. */
static void s_bad_env(void)
{
    int fd = xopen("be", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "pass-through", 10);
    check("not cached", "be");
    close(fd);
}

/* Print a call's result and errno, read after the call. */
#define RESULT(label, call)                                              \
    do {                                                                 \
        errno = 0;                                                       \
        ssize_t r_ = (call);                                             \
        int e_ = errno;                                                  \
        say("OUT %s: %zd errno=%d", label, r_, r_ < 0 ? e_ : 0);         \
    } while (0)

/* RLIMIT_FSIZE: the write that crosses the limit is short, the next one
 * fails with EFBIG and raises SIGXFSZ, as without the shim. */
static volatile sig_atomic_t xfsz;
static void on_xfsz(int sig)
{
    (void)sig;
    xfsz++;
}

static void s_fsize(void)
{
    signal(SIGXFSZ, on_xfsz);
    struct rlimit rl = {10000, 10000};
    setrlimit(RLIMIT_FSIZE, &rl);
    int fd = xopen("fs", O_WRONLY | O_CREAT | O_TRUNC);
    char line[33];
    memset(line, 'l', 32);
    line[32] = 0;
    for (int i = 0; i < 320; i++) {
        errno = 0;
        ssize_t r = write(fd, line, 32);
        int e = errno;
        if (r != 32)
            say("OUT write %d returned %zd errno=%d sigxfsz=%d", i, r, e,
                (int)xfsz);
    }
    RESULT("pwrite past the limit", pwrite(fd, "x", 1, 20000));
    say("OUT sigxfsz=%d", (int)xfsz);
    close(fd);
    check("closed", "fs");
}

/* Another process (a child that opens the file itself, writes or
 * truncates it and exits) changes a file this process caches: fstat and
 * lseek(SEEK_END) agree and give the kernel's size, a read sees the other
 * process's bytes, and a write at SEEK_END lands after them (SEEK_END gave
 * the cached size while fstat gave the kernel's: a probe's "END" landed at
 * offset 1 of an 8004-byte file; logrotate's copytruncate, a truncate to
 * 0, kept SEEK_END at the old end). */
struct other {
    pid_t pid;
    int go;             /* write a byte here: the child acts */
};

/* A child made before this process caches the file (a fork is a
 * consistency point), waiting for its cue. */
static struct other other_child(const char *name, int truncate_it)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        if (read(p[0], &c, 1) != 1)
            _exit(2);
        if (truncate_it)
            _exit(truncate(path(name), 0) == 0 ? 0 : 1);
        int fd = open(path(name), O_WRONLY);
        _exit(fd >= 0 && pwrite(fd, "XYZ", 3, 8000) == 3 && close(fd) == 0
                  ? 0 : 1);
    }
    close(p[0]);
    return (struct other){pid, p[1]};
}

static void other_act(struct other o)
{
    int st = -1;
    if (write(o.go, "g", 1) != 1)
        die("cue");
    close(o.go);
    waitpid(o.pid, &st, 0);
    say("OUT child %d", st);
}

/* A SIGSEGV handler of the program's, with SIGUSR1 in its sa_mask and
 * without SA_NODEFER, left with siglongjmp and no saved mask: inside it,
 * and after, SIGSEGV and SIGUSR1 are blocked, as the kernel set them.
 * Under the shim the handler is called by the shim's own (cache/ucopy.c
 * invariant (4)), which ran it with nothing blocked. */
static sigjmp_buf segv_env;
static volatile sig_atomic_t segv_in_self, segv_in_usr1;

static void on_segv_masked(int sig)
{
    (void)sig;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    segv_in_self = sigismember(&cur, SIGSEGV);
    segv_in_usr1 = sigismember(&cur, SIGUSR1);
    siglongjmp(segv_env, 1);
}

static void s_segv_mask(void)
{
    int fd = xopen("sm", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "segv", 100);             /* the shim's handler is in place */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv_masked;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR1);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        die("sigaction");
    static int *volatile unmapped = (int *)8;   /* not seen through */
    if (sigsetjmp(segv_env, 0) == 0)
        *unmapped = 1;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    say("OUT in the handler: SIGSEGV blocked %d, SIGUSR1 blocked %d",
        segv_in_self, segv_in_usr1);
    say("OUT after it: SIGSEGV blocked %d, SIGUSR1 blocked %d",
        sigismember(&cur, SIGSEGV), sigismember(&cur, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &cur, NULL);
    lines(fd, "after", 10);
    RESULT("close", close(fd));
    check("closed", "sm");
}

/* File `name` made empty, 40 one-byte writes of ours, then a pwrite of
 * another process at 8000: our descriptor of it. */
static int changed_by_another(const char *name)
{
    close(xopen(name, O_RDWR | O_CREAT | O_TRUNC));
    struct other o = other_child(name, 0);
    int fd = xopen(name, O_RDWR);
    for (int i = 0; i < 40; i++)
        RESULT("write", write(fd, "a", 1));
    other_act(o);
    return fd;
}

/* The same change by another process, then the stat family first: each
 * call gives the kernel's size (a library below the shim that makes its
 * fstat through __fxstat, tests/so_below.c, reached the shim twice). */
static void s_other_stat(void)
{
    int fd = changed_by_another("os");
    struct stat st;
    RESULT("fstat", fstat(fd, &st));
    say("OUT fstat size %lld", (long long)st.st_size);
    RESULT("stat", stat(path("os"), &st));
    say("OUT stat size %lld", (long long)st.st_size);
    RESULT("lstat", lstat(path("os"), &st));
    say("OUT lstat size %lld", (long long)st.st_size);
    RESULT("fstatat", fstatat(AT_FDCWD, path("os"), &st, 0));
    say("OUT fstatat size %lld", (long long)st.st_size);
    RESULT("close", close(fd));
    check("closed", "os");
}

static void s_other_process(void)
{
    int fd = changed_by_another("op");
    struct stat st;
    RESULT("SEEK_END", lseek(fd, 0, SEEK_END));
    RESULT("fstat", fstat(fd, &st));
    say("OUT size %lld", (long long)st.st_size);
    char b[4] = {0};
    RESULT("pread", pread(fd, b, 3, 8000));
    say("OUT read %s", b);
    RESULT("write at the end", write(fd, "END", 3));
    RESULT("close", close(fd));
    check("closed", "op");

    close(xopen("ct", O_RDWR | O_CREAT | O_TRUNC));
    struct other o = other_child("ct", 1);
    fd = xopen("ct", O_RDWR);
    for (int i = 0; i < 20; i++)
        RESULT("line", write(fd, "0123456789", 10));
    RESULT("fsync", fsync(fd));
    other_act(o);
    RESULT("fstat", fstat(fd, &st));
    say("OUT size %lld", (long long)st.st_size);
    RESULT("SEEK_END", lseek(fd, 0, SEEK_END));
    for (int i = 0; i < 3; i++)
        RESULT("line after", write(fd, "abcdefghij", 10));
    RESULT("SEEK_CUR", lseek(fd, 0, SEEK_CUR));
    RESULT("close", close(fd));
    check("closed", "ct");
}

/* A shared-memory protocol (meta.c invariant (5b)), as SQLite's WAL
 * index: the writer locks a file it maps shared and writable, appends a
 * record to another file, and publishes it with a store in the mapping,
 * holding its lock; a reader that sees the store reads the file and must
 * find the record, as the kernel's write put it there before the store.
 * The reader is a child forked before any write (a fork is a consistency
 * point, nothing is pending then). */
static void s_shm_channel(void)
{
    int s = xopen("shm", O_RDWR | O_CREAT | O_TRUNC);
    if (ftruncate(s, 4096) != 0)
        die("ftruncate");
    volatile int *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
                           s, 0);
    if (m == MAP_FAILED)
        die("mmap");
    int w = xopen("log", O_RDWR | O_CREAT | O_TRUNC);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        for (int k = 1; k <= 3; k++) {
            for (int t = 0; t < 10000 && __atomic_load_n(&m[0],
                                                         __ATOMIC_ACQUIRE) < k;
                 t++)
                usleep(1000);
            struct stat st;
            if (stat(path("log"), &st) != 0)
                _exit(2);
            say("OUT reader, round %d: %lld bytes", k, (long long)st.st_size);
            __atomic_store_n(&m[1], k, __ATOMIC_RELEASE);
        }
        _exit(0);
    }
    lines(w, "before", 40);             /* cached (past the first writes) */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
    RESULT("lock", fcntl(s, F_SETLK, &fl));
    for (int k = 1; k <= 3; k++) {
        lines(w, "record", 1);
        __atomic_store_n(&m[0], k, __ATOMIC_RELEASE);   /* published */
        for (int t = 0; t < 10000 && __atomic_load_n(&m[1], __ATOMIC_ACQUIRE) < k;
             t++)
            usleep(1000);
    }
    int st;
    waitpid(pid, &st, 0);
    fl.l_type = F_UNLCK;
    RESULT("unlock", fcntl(s, F_SETLK, &fl));
    RESULT("close", close(w));
    munmap((void *)m, 4096);
    RESULT("close shm", close(s));
    check("closed", "log");
}

/* rename and link publish a file (meta.c invariant (6)), and so does the
 * close of a writer while another description stays open: a process made
 * before the writes (a fork is a consistency point) opens the name as soon
 * as the call returned, and must find the bytes. */
struct reader {
    pid_t pid;
    int cue, answer;
};

static struct reader reader_child(void)
{
    int c[2], a[2];
    if (pipe(c) != 0 || pipe(a) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(c[1]);
        close(a[0]);
        char name[64];
        ssize_t n;
        while ((n = read(c[0], name, sizeof name - 1)) > 0) {
            name[n] = 0;
            char buf[4096];
            int fd = open(path(name), O_RDONLY);
            long got = fd < 0 ? -1 : (long)read(fd, buf, sizeof buf);
            if (fd >= 0)
                close(fd);
            unsigned sum = 0;
            for (long i = 0; i < got; i++)
                sum = sum * 31 + (unsigned char)buf[i];
            char line[64];
            int k = snprintf(line, sizeof line, "%ld %08x", got, sum);
            if (write(a[1], line, (size_t)k) != k)
                _exit(3);
        }
        _exit(0);
    }
    close(c[0]);
    close(a[1]);
    return (struct reader){pid, c[1], a[0]};
}

static void reader_read(struct reader r, const char *name)
{
    char line[64] = {0};
    if (write(r.cue, name, strlen(name)) != (ssize_t)strlen(name) ||
        read(r.answer, line, sizeof line - 1) <= 0)
        die("reader");
    say("OUT another process reads %s: %s", name, line);
}

static void s_publish(void)
{
    struct reader r = reader_child();
    int fd = xopen("pub.tmp", O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 40; i++)
        RESULT("write", write(fd, "published line\n", 15));
    RESULT("rename", rename(path("pub.tmp"), path("pub")));
    reader_read(r, "pub");
    for (int i = 0; i < 10; i++)
        RESULT("write", write(fd, "more\n", 5));
    RESULT("link", link(path("pub"), path("pub.link")));
    reader_read(r, "pub.link");
    int g = xopen("other", O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 30; i++)
        RESULT("write other", write(g, "other\n", 6));
    for (int i = 0; i < 10; i++)
        RESULT("write", write(fd, "again\n", 6));
    RESULT("exchange", syscall(SYS_renameat2, AT_FDCWD, path("other"),
                               AT_FDCWD, path("pub"), 2 /* EXCHANGE */));
    reader_read(r, "pub");
    reader_read(r, "other");
    for (int i = 0; i < 10; i++)
        RESULT("write other", write(g, "late\n", 5));
    RESULT("renameat", renameat(AT_FDCWD, path("pub"), AT_FDCWD,
                                path("pub.final")));
    reader_read(r, "pub.final");
    /* The close of a writer publishes too, while another description of
     * the file stays open (close-to-open, as NFS). */
    int w = xopen("two", O_WRONLY | O_CREAT | O_TRUNC);
    int ro = xopen("two", O_RDONLY);
    for (int i = 0; i < 40; i++)
        RESULT("write two", write(w, "0123456789", 10));
    RESULT("close the writer", close(w));
    reader_read(r, "two");
    RESULT("close the reader", close(ro));
    close(r.cue);
    int st;
    waitpid(r.pid, &st, 0);
    RESULT("close", close(fd));
    RESULT("close other", close(g));
    check("closed", "pub.final");
}

/* A program writes an executable in small writes while it holds a
 * read-only description of it too, closes the writer, then runs it and
 * takes a read lease: the kernel sees no writer left. The shim's
 * write-back descriptor stayed open while the reader was (exec: ETXTBSY,
 * F_SETLEASE: EAGAIN); the file now leaves the cache at the writer's
 * close (fdtab.c wc_desc_release_fd). */
static void s_exec_written(void)
{
    int in = open("/bin/true", O_RDONLY);
    if (in < 0)
        die("/bin/true");
    int out = open(path("exe"), O_WRONLY | O_CREAT | O_TRUNC, 0755);
    int ro = xopen("exe", O_RDONLY);
    if (out < 0)
        die("exe");
    char b[512];
    ssize_t n;
    long total = 0;
    while ((n = read(in, b, sizeof b)) > 0)
        if (write(out, b, (size_t)n) == n)
            total += n;
    close(in);
    say("OUT copied %ld", total > 0);
    RESULT("close the writer", close(out));
    pid_t c = fork();
    if (c == 0) {
        execl(path("exe"), "exe", (char *)NULL);
        _exit(100 + errno);
    }
    int st = -1;
    waitpid(c, &st, 0);
    say("OUT exec of the written file: status %d",
        WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    RESULT("read lease", fcntl(ro, F_SETLEASE, F_RDLCK));
    RESULT("lease off", fcntl(ro, F_SETLEASE, F_UNLCK));
    RESULT("close the reader", close(ro));
}

/* RLIMIT_FSIZE lowered below the size a cached file already has: what
 * was written before is legal and reaches the file (the shim writes it
 * back before the limit changes: proc.c invariant (5)); the write that
 * straddles the new limit is short, the next fails with EFBIG (SIGXFSZ
 * ignored with the argument "ignore", else its default action ends the
 * process at that write, as the kernel's; a write-back after the change
 * killed it at the fsync). */
static void s_fsize_lower(const char *how)
{
    int ignore = how && !strcmp(how, "ignore");
    if (ignore)
        signal(SIGXFSZ, SIG_IGN);
    int fd = xopen("fl", O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 300; i++)
        if (write(fd, "0123456789", 10) != 10)
            say("OUT write %d failed errno=%d", i, errno);
    struct rlimit rl = {1000, 1000};
    RESULT("lowered", setrlimit(RLIMIT_FSIZE, &rl));
    RESULT("fsync", fsync(fd));
    RESULT("ftruncate below the old size", ftruncate(fd, 2000));
    if (ignore) {
        RESULT("pwrite across the limit", pwrite(fd, "xyz", 3, 999));
        RESULT("pwrite past it", pwrite(fd, "xyz", 3, 1500));
        RESULT("write at the offset", write(fd, "abc", 3));
    }
    RESULT("close", close(fd));
    check("closed", "fl");
}

/* The same limit lowered through syscall() once the file is cached
 * (prlimit64, or setrlimit with the argument "setrlimit"): the cache
 * must learn it as from libc's setrlimit (a probe found the writes past
 * it accepted, and the bytes written back after exit). */
static void s_fsize_raw(const char *how)
{
    signal(SIGXFSZ, on_xfsz);
    int fd = xopen("fsr", O_WRONLY | O_CREAT | O_TRUNC);
    char line[33];
    memset(line, 'r', 32);
    line[32] = 0;
    for (int i = 0; i < 320; i++) {
        if (i == 100) {
            struct rlimit rl = {5000, 5000};
            RESULT("lowered", how && !strcmp(how, "setrlimit")
                                  ? syscall(SYS_setrlimit, RLIMIT_FSIZE, &rl)
                                  : syscall(SYS_prlimit64, 0, RLIMIT_FSIZE,
                                            &rl, NULL));
        }
        errno = 0;
        ssize_t r = write(fd, line, 32);
        int e = errno;
        if (r != 32)
            say("OUT write %d returned %zd errno=%d sigxfsz=%d", i, r, e,
                (int)xfsz);
    }
    say("OUT sigxfsz=%d", (int)xfsz);
    RESULT("close", close(fd));
    check("closed", "fsr");
}

/* ioctl on a cached file (shim/ioctl.c): the queries answer from the
 * written-back file (FIONREAD is size minus offset: it answered 0), a
 * terminal request leaves it alone, and the immutable flag, set by
 * FS_IOC_SETFLAGS (root), makes the kernel refuse the writes that follow
 * (they were cached, and refused only at close). Where the file system
 * or the user may not set the flag, both runs fail alike. */
/* The signal stack a program finds: none before it writes, as without
 * the shim (altstack.c invariant (3): the shim gives one to the thread
 * that makes the cache, and to threads started after it, only then). A
 * program that asks sigaltstack before its first write, to decide whether
 * to set its own, saw the shim's. The lines after it are cached (the
 * stack the thread then has is the shim's business, as before). */
static void say_sigstack(const char *when)
{
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0)
        die("sigaltstack");
    say("OUT %s: %s", when,
        (cur.ss_flags & SS_DISABLE) ? "no signal stack" : "a signal stack");
}

static void s_sigstack(void)
{
    say_sigstack("at start");
    int fd = xopen("log", O_WRONLY | O_CREAT | O_TRUNC);
    for (int i = 0; i < 50; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        if (write(fd, line, (size_t)n) != n)
            die("write");
    }
    close(fd);
    check("written", "log");
}

/* A handler installed with SA_ONSTACK by a program that set no stack of
 * its own runs on the thread's stack under the kernel: it may use as
 * much of it as any function. The program's file is cached first (the
 * shim's thread then has its signal stack: shim/altstack.c (6)). */
static volatile int onstack_sink;
static __thread unsigned char onstack_mark;   /* this thread's byte */
static int onstack_torn;                      /* atomic */

static void onstack_handler(int sig)
{
    char big[512 * 1024];
    unsigned char mark = onstack_mark ? onstack_mark : (unsigned char)sig;
    memset(big, mark, sizeof big);
    /* Another thread's handler on the same stack would write its own
     * byte over this one's meanwhile. */
    for (int pass = 0; pass < 4; pass++)
        for (size_t i = 0; i < sizeof big; i += 512)
            if ((unsigned char)((volatile char *)big)[i] != mark)
                __atomic_add_fetch(&onstack_torn, 1, __ATOMIC_RELAXED);
    onstack_sink = big[12345];
}

/* What a handler's ucontext says of the thread's alternate stack (the
 * kernel restores it from there at the handler's return): none, as the
 * program set none (probe AE F3: the shim's showed through). */
static volatile int onstack_uc_none = -1;

static volatile int onstack_uc_flags;
static volatile size_t onstack_uc_size;

static void onstack_info_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)sig, (void)si;
    const ucontext_t *uc = ctx;
    onstack_uc_none = uc->uc_stack.ss_sp == NULL;
    onstack_uc_flags = uc->uc_stack.ss_flags;
    onstack_uc_size = uc->uc_stack.ss_size;
}

/* A handler using 16 MiB of stack, on a thread made with a 64 MiB one
 * (probe AE F2: the shim's stack was RLIMIT_STACK's 8 MiB whatever the
 * thread's: SIGSEGV). */
static int onstack_deep(int n)
{
    volatile char frame[1024];      /* touched from the top down, as a
                                       stack grows: the guard page first */
    frame[0] = (char)n;
    frame[1023] = (char)n;
    return n ? onstack_deep(n - 1) + frame[0] : frame[1023];
}

static void onstack_big_handler(int sig)
{
    onstack_sink = onstack_deep(16 * 1024) + sig;
}

static void *onstack_big_thread(void *arg)
{
    raise(SIGVTALRM);
    return arg;
}

/* Threads made and ended two at a time, each taking the signal on its
 * stack 20 times: under the shim each has a signal stack of its own,
 * some kept from threads that ended before (shim/altstack.c (4)). */
static void *onstack_thread(void *arg)
{
    onstack_mark = (unsigned char)(uintptr_t)arg;
    for (int i = 0; i < 20; i++)
        raise(SIGUSR1);
    return NULL;
}

static void s_onstack(void)
{
    int fd = xopen("os", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "before-handler", 2000);
    say_sigstack("after the writes");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = onstack_handler;
    sa.sa_flags = SA_ONSTACK;
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        die("sigaction");
    raise(SIGUSR1);
    say("OUT the handler ran (%d)", onstack_sink);
    sa.sa_sigaction = onstack_info_handler;
    sa.sa_flags = SA_ONSTACK | SA_SIGINFO;
    if (sigaction(SIGUSR2, &sa, NULL) != 0)
        die("sigaction");
    raise(SIGUSR2);
    say("OUT its ucontext's stack: %s, flags %d, size %zu",
        onstack_uc_none == 1 ? "none" : onstack_uc_none == 0 ? "a stack"
                                                              : "no call",
        onstack_uc_flags, (size_t)onstack_uc_size);
    say_sigstack("after the handlers");
    for (int round = 0; round < 8; round++) {
        pthread_t t[2];
        for (int k = 0; k < 2; k++)
            if (pthread_create(&t[k], NULL, onstack_thread,
                               (void *)(uintptr_t)(2 * round + k + 1)))
                die("pthread_create");
        for (int k = 0; k < 2; k++)
            pthread_join(t[k], NULL);
    }
    say("OUT the threads' handlers ran, torn %d",
        __atomic_load_n(&onstack_torn, __ATOMIC_RELAXED));
    sa.sa_handler = onstack_big_handler;
    sa.sa_flags = SA_ONSTACK;
    if (sigaction(SIGVTALRM, &sa, NULL) != 0)
        die("sigaction");
    pthread_attr_t big;
    pthread_t bt;
    pthread_attr_init(&big);
    pthread_attr_setstacksize(&big, 64u << 20);
    onstack_sink = 0;
    if (pthread_create(&bt, &big, onstack_big_thread, NULL))
        die("pthread_create");
    pthread_join(bt, NULL);
    pthread_attr_destroy(&big);
    say("OUT a 16 MiB handler on a 64 MiB thread ran (%d)", onstack_sink);
    close(fd);
    check("closed", "os");
}

/* Each call of s_first_calls is the process's first of its function:
 * under the shim it goes through the slot's trampoline (shim/real.c
 * (1)), which must pass every argument (in registers, variadic, on the
 * stack) and errno through unchanged. errno is set before each call and
 * printed after it, success or not. Descriptor numbers are not printed. */
#define FIRST(label, call)                                               \
    do {                                                                 \
        errno = 4242;                                                    \
        long r_ = (long)(call);                                          \
        say("OUT %s: %ld errno=%d", label, r_, errno);                   \
    } while (0)
#define FIRST_FD(label, var, call)                                       \
    do {                                                                 \
        errno = 4242;                                                    \
        var = (call);                                                    \
        say("OUT %s: %s errno=%d", label, var >= 0 ? "a descriptor"      \
                                                   : "-1", errno);       \
    } while (0)

/* A file's mode and size; its mtime too when `mtime` (set by the
 * program, not the clock's). */
static void say_stat(const char *name, int mtime)
{
    struct stat st;
    if (stat(path(name), &st) != 0)
        die(name);
    say("OUT %s: mode %o size %lld mtime %lld.%09ld", name,
        (unsigned)st.st_mode & 07777, (long long)st.st_size,
        mtime ? (long long)st.st_mtim.tv_sec : 0LL,
        mtime ? st.st_mtim.tv_nsec : 0L);
}

static void s_first_calls(void)
{
    umask(022);
    int fd, fd2;
    FIRST_FD("open O_CREAT 0640", fd,
             open(path("a"), O_RDWR | O_CREAT | O_EXCL, 0640));
    FIRST_FD("creat 0604", fd2, creat(path("b"), 0604));
    if (fd < 0 || fd2 < 0)
        die("open");
    FIRST("syscall pwrite64", syscall(SYS_pwrite64, fd, "abcdef", 6, 10));
    FIRST("ftruncate", ftruncate(fd, 24));
    FIRST("dup -1", dup(-1));
    FIRST("dup2", dup2(fd, 100));
    FIRST("dup3", dup3(fd, 101, O_CLOEXEC));
    FIRST("F_GETFD", fcntl(101, F_GETFD));
    struct iovec v[2] = {{"0123", 4}, {"456789", 6}};
    FIRST("pwritev2", pwritev2(100, v, 2, 2, RWF_DSYNC));
    loff_t in = 1, out = 3;
    FIRST("copy_file_range", copy_file_range(fd, &in, fd2, &out, 7, 0));
    say("OUT copied from %lld to %lld", (long long)in, (long long)out);
    struct timespec ts[2] = {{1000000, 5}, {2000000, 7}};
    FIRST("utimensat", utimensat(AT_FDCWD, path("a"), ts, 0));
    say_stat("a", 1);
    FIRST("posix_fallocate", posix_fallocate(fd, 100, 50));
    FIRST("sync_file_range",
          sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
    FIRST("posix_fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL));
    FIRST("lockf F_TEST", lockf(fd, F_TEST, 0));
    int p[2];
    if (pipe(p) != 0 || write(p[1], "xyz", 3) != 3)
        die("pipe");
    int n = -1;
    FIRST("ioctl FIONREAD", ioctl(p[0], FIONREAD, &n));
    say("OUT FIONREAD says %d", n);
    loff_t at = 40;
    FIRST("splice", splice(p[0], NULL, fd, &at, 3, 0));
    say("OUT spliced to %lld", (long long)at);
    FIRST("ulimit", ulimit(UL_GETFSIZE));
    FIRST("truncate", truncate(path("b"), 9));
    FIRST("fchmodat", fchmodat(AT_FDCWD, path("b"), 0611, 0));
    FIRST("renameat2", renameat2(AT_FDCWD, path("b"), AT_FDCWD, path("c"),
                                 RENAME_NOREPLACE));
    FIRST("renameat2 again", renameat2(AT_FDCWD, path("a"), AT_FDCWD,
                                       path("c"), RENAME_NOREPLACE));
    struct timespec nap = {0, 1000};
    FIRST("clock_nanosleep", clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL));
    say_stat("a", 0);
    say_stat("c", 0);
    close(p[0]);
    close(p[1]);
    close(100);
    close(101);
    close(fd2);
    FIRST("close", close(fd));
    check("closed", "a");
}

static void s_ioctl(void)
{
    int fd = xopen("io", O_RDWR | O_CREAT | O_TRUNC);
    char line[33];
    memset(line, 'i', 32);
    line[32] = 0;
    for (int i = 0; i < 200; i++)
        if (write(fd, line, 32) != 32)
            say("OUT write %d failed errno=%d", i, errno);
    lseek(fd, 30, SEEK_SET);
    int n = -1;
    RESULT("FIONREAD", ioctl(fd, FIONREAD, &n));
    say("OUT FIONREAD says %d", n);
    n = -1;
    RESULT("syscall FIONREAD", syscall(SYS_ioctl, fd, FIONREAD, &n));
    say("OUT syscall FIONREAD says %d", n);
    long long q = -1;
    RESULT("FIOQSIZE", ioctl(fd, FIOQSIZE, &q));
    say("OUT FIOQSIZE says %lld", q);
    struct termios t;
    errno = 4242;
    RESULT("TCGETS", ioctl(fd, TCGETS, &t));
    RESULT("isatty", isatty(fd));
    for (int i = 0; i < 50; i++)
        if (write(fd, line, 32) != 32)
            say("OUT write %d failed errno=%d", i, errno);
    int fl = 0;
    RESULT("GETFLAGS", ioctl(fd, FS_IOC_GETFLAGS, &fl));
    int ap = fl | FS_IMMUTABLE_FL;
    RESULT("SETFLAGS immutable", ioctl(fd, FS_IOC_SETFLAGS, &ap));
    RESULT("write after", write(fd, line, 32));
    RESULT("pwrite after", pwrite(fd, line, 32, 0));
    int ap2 = -1;
    RESULT("GETFLAGS again", ioctl(fd, FS_IOC_GETFLAGS, &ap2));
    say("OUT immutable %d", (ap2 & FS_IMMUTABLE_FL) != 0);
    RESULT("SETFLAGS back", ioctl(fd, FS_IOC_SETFLAGS, &fl));
    RESULT("write at the end", write(fd, line, 32));
    RESULT("close", close(fd));
    check("closed", "io");
}

/* A memfd that may be sealed, opened again through /proc and written in
 * small writes, then sealed through its first descriptor: the kernel
 * refuses the writes a seal forbids, at the write (fdtab.c pseudo_fs: such
 * a file is never cached; the writes were, and the memfd ended empty). */
static void s_memfd(void)
{
    int m = memfd_create("points", MFD_ALLOW_SEALING);
    if (m < 0) {
        say("OUT memfd_create failed errno=%d", errno);
        return;
    }
    char pp[64];
    snprintf(pp, sizeof pp, "/proc/self/fd/%d", m);
    int f = open(pp, O_RDWR);
    if (f < 0) {
        say("OUT reopen failed errno=%d", errno);
        return;
    }
    for (int i = 0; i < 40; i++)
        RESULT("write", write(f, "memfd line\n", 11));
    RESULT("seal grow", fcntl(m, F_ADD_SEALS, F_SEAL_GROW));
    RESULT("write past the end", write(f, "grow", 4));
    RESULT("pwrite inside", pwrite(f, "in", 2, 0));
    RESULT("seal write", fcntl(m, F_ADD_SEALS, F_SEAL_WRITE));
    RESULT("pwrite sealed", pwrite(f, "no", 2, 4));
    RESULT("ftruncate", ftruncate(f, 5));
    char buf[512];
    ssize_t n = pread(m, buf, sizeof buf - 1, 0);
    say("OUT read back %zd", n);
    if (n > 0) {
        buf[n] = 0;
        for (char *c = buf; *c; c++)
            if (*c == '\n')
                *c = '|';
        say("OUT bytes %s", buf);
    }
    RESULT("close", close(f));
    close(m);
}

/* The calls the shim passes through as bare system calls (shim/kcall.h):
 * their edges (negative and closed descriptors, AT_FDCWD, pipes, bad
 * arguments, symlinks) and errno, which success must leave as it was
 * (4242 here), answered as libc answers them; once with the process's
 * one thread, and once with a second thread alive (libc's functions),
 * unless the argument is "one-thread". */
#define KCALL(label, call)                                               \
    do {                                                                 \
        errno = 4242;                                                    \
        long r_ = (long)(call);                                          \
        say("OUT %s %s: %ld errno=%d", round, label, r_, errno);        \
    } while (0)

static void kcalls_round(const char *round)
{
    int fd = xopen("kc", O_RDWR | O_CREAT | O_TRUNC);
    int ro = xopen("kc", O_RDONLY);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    int p[2];
    if (dfd < 0 || pipe(p) != 0)
        die("kcalls setup");
    unlink(path("kl"));
    if (symlink("kc", path("kl")) != 0)
        die("symlink");
    char buf[64] = "abcdefgh";
    struct stat st;
    KCALL("write", write(fd, buf, 8));
    KCALL("pwrite", pwrite(fd, buf, 4, 20));
    KCALL("pwrite negative offset", pwrite(fd, buf, 4, -1));
    KCALL("pwrite to a pipe", pwrite(p[1], buf, 4, 0));
    KCALL("write to a read-only descriptor", write(ro, buf, 4));
    KCALL("write to a closed descriptor", write(900, buf, 4));
    KCALL("read", read(ro, buf, 4));
    KCALL("pread", pread(ro, buf, 8, 18));
    KCALL("pread negative offset", pread(ro, buf, 4, -1));
    KCALL("pread of a pipe", pread(p[0], buf, 4, 0));
    KCALL("read of a directory", read(dfd, buf, 4));
    KCALL("read of descriptor -1", read(-1, buf, 4));
    KCALL("fstat", fstat(fd, &st) == 0 ? (long)st.st_size : -1);
    KCALL("fstat of descriptor -1", fstat(-1, &st));
    KCALL("fstat of AT_FDCWD", fstat(AT_FDCWD, &st));
    KCALL("fstat of a closed descriptor", fstat(900, &st));
    KCALL("stat", stat(path("kc"), &st) == 0 ? (long)st.st_size : -1);
    KCALL("stat of a missing path", stat(path("missing"), &st));
    KCALL("stat through the symlink",
          stat(path("kl"), &st) == 0 ? (long)st.st_size : -1);
    KCALL("lstat of the symlink",
          lstat(path("kl"), &st) == 0 ? (long)S_ISLNK(st.st_mode) * 1000 +
                                            (long)st.st_size : -1);
    KCALL("fstatat nofollow",
          fstatat(dfd, "kl", &st, AT_SYMLINK_NOFOLLOW) == 0
              ? (long)S_ISLNK(st.st_mode) : -1);
    KCALL("fstatat empty path",
          fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 ? (long)st.st_size : -1);
    KCALL("fstatat bad flags", fstatat(dfd, "kc", &st, 0x40000000));
    KCALL("lseek", lseek(fd, 3, SEEK_SET));
    KCALL("lseek end", lseek(fd, 0, SEEK_END));
    KCALL("lseek bad whence", lseek(fd, 0, 99));
    KCALL("lseek before 0", lseek(fd, -5, SEEK_SET));
    KCALL("lseek of a pipe", lseek(p[0], 0, SEEK_CUR));
    KCALL("lseek SEEK_DATA past the end", lseek(fd, 1000, SEEK_DATA));
    KCALL("fcntl F_GETFL", fcntl(fd, F_GETFL) & O_ACCMODE);
    KCALL("fcntl F_GETFD", fcntl(fd, F_GETFD));
    KCALL("fcntl bad command", fcntl(fd, 99999));
    KCALL("fcntl of descriptor -1", fcntl(-1, F_GETFD));
    KCALL("fcntl F_SETOWN to a process group",
          fcntl(p[0], F_SETOWN, -getpgrp()));
    KCALL("fcntl F_GETOWN is that group", fcntl(p[0], F_GETOWN) == -getpgrp());
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 4};
    KCALL("fcntl F_SETLK", fcntl(fd, F_SETLK, &fl));
    KCALL("fcntl F_SETLKW", fcntl(fd, F_SETLKW, &fl));
    KCALL("fcntl F_GETLK", fcntl(fd, F_GETLK, &fl) == 0 ? fl.l_type : -1);
    KCALL("fcntl F_SETLK on a read-only descriptor", fcntl(ro, F_SETLK, &fl));
    fl.l_type = F_UNLCK;
    KCALL("fcntl unlock", fcntl(fd, F_SETLK, &fl));
    int o = open(path("ko"), O_WRONLY | O_CREAT | O_EXCL, 0640);
    KCALL("open O_CREAT mode",
          o >= 0 && fstat(o, &st) == 0 ? (long)(st.st_mode & 07777) : -1);
    KCALL("close", close(o));
    KCALL("close again", close(o));
    KCALL("close of descriptor -1", close(-1));
    KCALL("open O_EXCL of an existing file",
          open(path("ko"), O_WRONLY | O_CREAT | O_EXCL, 0640));
    KCALL("open of a missing file", open(path("kmissing"), O_RDONLY));
    KCALL("openat relative to descriptor -1", openat(-1, "ko", O_RDONLY));
    o = openat(dfd, "ko", O_RDONLY | O_NOFOLLOW);
    KCALL("openat relative to a directory", o >= 0);
    close(o);
    KCALL("openat O_NOFOLLOW of a symlink",
          openat(dfd, "kl", O_RDONLY | O_NOFOLLOW));
    o = openat(dfd, ".", O_TMPFILE | O_RDWR, 0600);
    KCALL("openat O_TMPFILE mode",
          o >= 0 && fstat(o, &st) == 0 ? (long)(st.st_mode & 07777) : -1);
    close(o);
    unlink(path("ko"));
    close(p[0]);
    close(p[1]);
    close(dfd);
    close(ro);
    close(fd);
    check(round, "kc");
}

static void *kcalls_idle(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void s_kcalls(const char *how)
{
    kcalls_round("one-thread");
    if (!strcmp(how, "one-thread")) {
        unlink(path("kl"));
        return;
    }
    int q[2];
    pthread_t t;
    if (pipe(q) != 0 || pthread_create(&t, NULL, kcalls_idle, &q[0]) != 0)
        die("thread");
    kcalls_round("two-threads");
    close(q[1]);
    pthread_join(t, NULL);
    close(q[0]);
    unlink(path("kl"));
}

/* Deferred cancellation (shim/cancel.c): a thread whose cancellation is
 * pending when it writes, or reads, a file it has been writing is
 * cancelled there, before the call does anything, as libc's call would:
 * the bytes of that write never reach the file, and nothing after the
 * read runs. The thread writes with cancellation disabled (the file is
 * cached by then), waits without any cancellation point until it has
 * been cancelled, enables it again, then reads ("read") or writes. */
static int cancel_fd;
static int cancel_ready, cancel_go, cancel_after;

static void *cancel_thread(void *arg)
{
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    for (int i = 0; i < 40; i++)
        if (write(cancel_fd, "a record of the thread\n", 23) != 23)
            return NULL;
    __atomic_store_n(&cancel_ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&cancel_go, __ATOMIC_SEQ_CST))
        ;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    /* The first call with the cancellation pending: a read, a write, or
     * one that writes back (fsync, fdatasync, lockf's wait, a lock, sync,
     * syncfs: the last two no cancellation points) */
    const char *how = arg;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
    char b[8];
    int r = !strcmp(how, "read")        ? (int)pread(cancel_fd, b, sizeof b, 0)
            : !strcmp(how, "fsync")     ? fsync(cancel_fd)
            : !strcmp(how, "fdatasync") ? fdatasync(cancel_fd)
            : !strcmp(how, "lockf")     ? lockf(cancel_fd, F_LOCK, 0)
            : !strcmp(how, "setlkw")    ? fcntl(cancel_fd, F_SETLKW, &fl)
            : !strcmp(how, "sync")      ? (sync(), 0)
            : !strcmp(how, "syncfs")    ? syncfs(cancel_fd)
                                        : 0;
    if (r < 0)
        return NULL;
    if (strcmp(how, "write"))
        __atomic_store_n(&cancel_after, 1, __ATOMIC_SEQ_CST);
    if (write(cancel_fd, "written after the cancel\n", 25) == 25)
        __atomic_store_n(&cancel_after, 2, __ATOMIC_SEQ_CST);
    return NULL;
}

static void s_cancel(const char *how)
{
    cancel_fd = xopen("cn", O_RDWR | O_CREAT | O_TRUNC);
    pthread_t t;
    if (pthread_create(&t, NULL, cancel_thread, (void *)how) != 0)
        die("pthread_create");
    while (!__atomic_load_n(&cancel_ready, __ATOMIC_SEQ_CST))
        ;
    pthread_cancel(t);
    __atomic_store_n(&cancel_go, 1, __ATOMIC_SEQ_CST);
    void *ret = NULL;
    pthread_join(t, &ret);
    say("OUT cancelled=%d after=%d", ret == PTHREAD_CANCELED,
        __atomic_load_n(&cancel_after, __ATOMIC_SEQ_CST));
    /* Nothing the cancelled thread held is left held. */
    RESULT("write after the join", write(cancel_fd, "main\n", 5));
    RESULT("fsync after the join", fsync(cancel_fd));
    close(cancel_fd);
    check("joined", "cn");
}

/* ---- what sigaction reports (shim/signals.c invariant (5)) ------------ */

static void sr_one(int sig) { (void)sig; }
static void sr_two(int sig) { (void)sig; }

static void sr_show(const char *what, int sig)
{
    struct sigaction o;
    sigaction(sig, NULL, &o);
    void *h = (void *)o.sa_handler;
    say("OUT %s: handler %s flags %#x mask has KILL %d USR2 %d", what,
        h == (void *)sr_one ? "one" : h == (void *)sr_two ? "two"
        : h == (void *)SIG_DFL ? "default" : h == (void *)SIG_IGN ? "ignore"
                                           : "another",
        (unsigned)o.sa_flags, sigismember(&o.sa_mask, SIGKILL),
        sigismember(&o.sa_mask, SIGUSR2));
}

/* The action the program set, as the kernel reports it (its own flags,
 * SA_RESTORER among them; SIGKILL never in a mask), through a delivery
 * with SA_RESETHAND (only the handler goes back to the default) and
 * glibc's other ways to set one (siginterrupt, bsd_signal, sigset,
 * sysv_signal call its internal sigaction, behind the shim). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void s_sigreport(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sr_one;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGUSR1, &sa, NULL);
    sr_show("sigaction with SA_RESETHAND", SIGUSR1);
    raise(SIGUSR1);
    sr_show("after its delivery", SIGUSR1);
    signal(SIGUSR2, sr_one);
    sr_show("signal", SIGUSR2);
    siginterrupt(SIGUSR2, 1);
    sr_show("siginterrupt", SIGUSR2);
    bsd_signal(SIGUSR2, sr_two);
    sr_show("bsd_signal", SIGUSR2);
    sigset(SIGUSR2, SIG_DFL);
    sr_show("sigset to the default", SIGUSR2);
    sighandler_t was = signal(SIGUSR2, sr_one);
    say("OUT signal returned %s", was == SIG_DFL ? "default" : "another");
    sysv_signal(SIGHUP, sr_two);
    sr_show("sysv_signal", SIGHUP);
}
#pragma GCC diagnostic pop

/* ---- a source that faults slowly: userfaultfd (CONTRACT 5.2) --------- */

static int uf_fd, uf_target;
static const char *uf_what;

/* Serves the region's faults; before each, the call named by uf_what,
 * which the kernel does not hold up while a write of the file waits for
 * its source ("never": leaves the fault waiting for ever). */
static void *uf_handler(void *arg)
{
    (void)arg;
    long psz = sysconf(_SC_PAGESIZE);
    char *pg = aligned_alloc((size_t)psz, (size_t)psz);
    memset(pg, 'u', (size_t)psz);
    for (;;) {
        struct pollfd p = {uf_fd, POLLIN, 0};
        struct uffd_msg m;
        if (poll(&p, 1, -1) < 0)
            return NULL;
        if (read(uf_fd, &m, sizeof m) != sizeof m ||
            m.event != UFFD_EVENT_PAGEFAULT || !strcmp(uf_what, "never"))
            continue;
        struct stat st;
        char b[16];
        if (!strcmp(uf_what, "slow"))
            usleep(3000);
        else if (!strcmp(uf_what, "sync"))
            sync();
        else if (!strcmp(uf_what, "fstat"))
            (void)!fstat(uf_target, &st);
        else if (!strcmp(uf_what, "pread"))
            (void)!pread(uf_target, b, sizeof b, 0);
        else if (!strcmp(uf_what, "fork")) {
            pid_t c = fork();
            if (c == 0)
                _exit(0);
            waitpid(c, NULL, 0);
        }
        struct uffdio_copy c = {.dst = m.arg.pagefault.address &
                                       ~(unsigned long)(psz - 1),
                                .src = (unsigned long)pg,
                                .len = (unsigned long)psz};
        ioctl(uf_fd, UFFDIO_COPY, &c);
    }
}

static void *uf_stuck_writer(void *region)
{
    (void)!write(uf_target, region, 100);
    return NULL;
}

/* Four pages whose first touch waits for uf_handler, which serves them
 * doing `what` first; NULL (said so) where userfaultfd is refused. */
static char *uf_region(const char *what)
{
    long psz = sysconf(_SC_PAGESIZE);
    uf_what = what;
    uf_fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api api = {.api = UFFD_API};
    char *region = mmap(NULL, (size_t)(4 * psz), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_register reg = {.range = {(unsigned long)region,
                                            (unsigned long)(4 * psz)},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (uf_fd < 0 || ioctl(uf_fd, UFFDIO_API, &api) != 0 ||
        ioctl(uf_fd, UFFDIO_REGISTER, &reg) != 0) {
        say("OUT no userfaultfd here");
        return NULL;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, uf_handler, NULL) != 0)
        die("pthread_create");
    pthread_detach(t);
    return region;
}

static void s_uffd(const char *what)
{
    long psz = sysconf(_SC_PAGESIZE);
    uf_target = xopen("uf", O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 100; i++)
        (void)!write(uf_target, "a record before the fault\n", 26);
    pthread_t t;
    char *region = uf_region(what);
    if (!region)
        return;
    if (!strcmp(what, "never")) {
        /* A writer waits for ever for its source; the process exits. */
        if (pthread_create(&t, NULL, uf_stuck_writer, region) != 0)
            die("pthread_create");
        usleep(100000);
        say("OUT exit with a writer stuck");    /* the files: the harness */
        exit(0);
    }
    RESULT("write from a missing page",
           write(uf_target, region + 100, 200));
    RESULT("pwrite across two missing pages",
           pwrite(uf_target, region + psz + psz - 100, 300, 50));
    struct iovec v[2] = {{"xx", 2}, {region + 3 * psz + 10, 100}};
    RESULT("writev from a missing page", writev(uf_target, v, 2));
    for (int i = 0; i < 100; i++)
        (void)!write(uf_target, "a record after the fault\n", 25);
    close(uf_target);
    check("after", "uf");
}

/* A process without a cache, past a file's first writes (fdtab.c (6)),
 * makes one write that takes 3 ms (its source page is served late:
 * userfaultfd), then 3 quick ones: under the defaults it makes no cache
 * (fdtab.c (6b): a write pays at most a quarter of the cache's price,
 * WC_RENT_PART; a preempted write once made a forked child's cache). The
 * cache would bring its flusher thread. */
static void s_slow_rent(void)
{
    int fd = xopen("sr", O_WRONLY | O_CREAT | O_TRUNC);
    lines(fd, "first", 10);
    char *region = uf_region("slow");
    if (!region)
        return;
    long threads = wct_status_field("Threads");
    RESULT("a write whose source comes late", write(fd, region, 40));
    lines(fd, "then", 3);
    say("OUT threads the writes brought: %ld",
        wct_status_field("Threads") - threads);
    close(fd);
    check("closed", "sr");
}

/* Faulting user memory through the interposed calls (section 5). */
static void s_faults(void)
{
    int fd = xopen("ft", O_RDWR | O_CREAT | O_TRUNC);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 'p', 8192);
    mprotect(p + 4096, 4096, PROT_NONE);
    static const size_t split[] = {1, 100, 4095};
    for (int i = 0; i < 3; i++) {
        char label[64];
        snprintf(label, sizeof label, "write crossing into PROT_NONE after %zu",
                 split[i]);
        RESULT(label, write(fd, p + 4096 - split[i], 200));
    }
    RESULT("write from PROT_NONE", write(fd, p + 4096, 10));
    struct iovec iov[3] = {{p, 10}, {p + 4096, 10}, {p + 20, 10}};
    RESULT("writev bad middle segment", writev(fd, iov, 3));
    RESULT("pwritev bad middle segment", pwritev(fd, iov, 3, 50));
    struct iovec iov2[2] = {{NULL, 0}, {p, 5}};
    RESULT("writev NULL empty segment", writev(fd, iov2, 2));
    volatile int bad_count = -1;           /* hidden from the compiler */
    RESULT("writev iovcnt -1", writev(fd, iov2, bad_count));
    RESULT("writev iovcnt 1025", writev(fd, iov2, bad_count + 1026));
    RESULT("read into PROT_NONE", pread(fd, p + 4096, 10, 0));
    RESULT("read crossing into PROT_NONE", pread(fd, p + 4090, 100, 0));
    show_offset("fd", fd);
    munmap(p, 8192);
    close(fd);
    check("closed", "ft");
}

/* sendfile and splice read the file in the kernel: they must see the
 * cached data. */
static void s_sendfile_pipe(void)
{
    int fd = xopen("sf", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "sendfile", 100);
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    off_t off = 0;
    say("OUT sendfile %zd", sendfile(p[1], fd, &off, 1600));
    lines(fd, "splice", 50);
    loff_t so = 1600;
    say("OUT splice %zd", splice(fd, &so, p[1], NULL, 3200, 0));
    close(p[1]);
    show_pipe("pipe got", p[0]);
    close(p[0]);
    show_offset("fd", fd);
    close(fd);
    check("closed", "sf");
}

/* A writable shared mapping, and a second descriptor opened before it. */
static void s_mmap_write(void)
{
    int fd = xopen("mw", O_RDWR | O_CREAT | O_TRUNC);
    int other = xopen("mw", O_RDWR);
    lines(fd, "mapped", 200);                  /* 6400 bytes */
    lines(other, "other", 10);                 /* overwrites the start */
    char *m = mmap(NULL, 6400, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        die("mmap");
    say("OUT map %016" PRIx64, wct_hash(m, 6400));
    memcpy(m + 1000, "WRITTEN-THROUGH-THE-MAP", 23);
    long long size;
    say("OUT pread other %016" PRIx64, hash_fd_pread(other, &size));
    pwrite(other, "VIA-OTHER", 9, 2000);
    say("OUT map after pwrite %016" PRIx64, wct_hash(m, 6400));
    msync(m, 6400, MS_SYNC);
    munmap(m, 6400);
    lines(fd, "end", 10);
    close(other);
    close(fd);
    check("closed", "mw");
}

/* ---- asynchronous I/O (shim/aio.c) -------------------------------------
 * A file written in small writes, then read and written by requests that
 * glibc's threads (POSIX aio) or the kernel (Linux AIO, io_uring) carry
 * out: they must find the bytes written before them, and theirs must not
 * be overwritten by a later write-back, nor their fsync leave bytes out.
 * Then more small writes through the same descriptor. */

static void show_buf(const char *label, const void *buf, ssize_t n)
{
    say("OUT %s: %zd hash=%016" PRIx64, label, n,
        n > 0 ? wct_hash(buf, (size_t)n) : 0);
}

/* A call's result and the errno it leaves, from 4242: a call that
 * succeeds leaves errno as it was, under the shim too. */
#define KEEP(label, call)                                                \
    do {                                                                 \
        errno = 4242;                                                    \
        long r_ = (long)(call);                                          \
        say("OUT %s: %ld errno=%d", label, r_, errno);                   \
    } while (0)

/* Close fd and g (the files `a` and `b`), then another process reads
 * both. */
static void close_two(int fd, const char *a, int g, const char *b)
{
    RESULT("close", close(fd));
    RESULT("close 2", close(g));
    check("closed", a);
    check("closed 2", b);
}

static void aio_wait_one(const char *label, struct aiocb *cb)
{
    const struct aiocb *l[1] = {cb};
    while (aio_error(cb) == EINPROGRESS)
        aio_suspend(l, 1, NULL);
    say("OUT %s: error=%d return=%zd", label, aio_error(cb), aio_return(cb));
}

static void s_posix_aio(void)
{
    static char buf[8192], buf2[256];
    int fd = xopen("pa", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "posix", 100);                    /* 3600 bytes */
    struct aiocb r = {.aio_fildes = fd, .aio_buf = buf,
                      .aio_nbytes = sizeof buf, .aio_offset = 0};
    KEEP("aio_read", aio_read(&r));
    aio_wait_one("aio_read done", &r);
    show_buf("read", buf, aio_return(&r));
    struct aiocb w = {.aio_fildes = fd, .aio_buf = "WXYZ", .aio_nbytes = 4,
                      .aio_offset = 40};
    KEEP("aio_write", aio_write(&w));
    aio_wait_one("aio_write done", &w);
    lines(fd, "after", 20);
    show_offset("after the writes", fd);
    /* lio_listio, waiting: a write and a read of what it overlaps */
    struct aiocb lw = {.aio_fildes = fd, .aio_buf = "LIO!", .aio_nbytes = 4,
                       .aio_offset = 80, .aio_lio_opcode = LIO_WRITE};
    struct aiocb lr = {.aio_fildes = fd, .aio_buf = buf2,
                       .aio_nbytes = sizeof buf2, .aio_offset = 3500,
                       .aio_lio_opcode = LIO_READ};
    struct aiocb *list[2] = {&lw, &lr};
    KEEP("lio_listio", lio_listio(LIO_WAIT, list, 2, NULL));
    show_buf("lio read", buf2, aio_return(&lr));
    /* A second file: its cached bytes reach the disk by aio_fsync. */
    int g = xopen("pa2", O_RDWR | O_CREAT | O_TRUNC);
    lines(g, "synced", 50);
    struct aiocb f = {.aio_fildes = g};
    KEEP("aio_fsync", aio_fsync(O_SYNC, &f));
    aio_wait_one("aio_fsync done", &f);
    check("after aio_fsync", "pa2");
    lines(g, "more", 5);
    check("after aio", "pa");
    close_two(fd, "pa", g, "pa2");
}

/* Linux AIO: libaio's io_submit ("lib") or syscall(SYS_io_submit). */
static long kaio_submit(const char *how, io_context_t ctx, struct iocb *cb)
{
    struct iocb *cbs[1] = {cb};
    if (!strcmp(how, "raw"))
        return syscall(SYS_io_submit, ctx, 1L, cbs);
    return io_submit(ctx, 1, cbs);
}

static void kaio_run(const char *label, const char *how, io_context_t ctx,
                     struct iocb *cb)
{
    KEEP(label, kaio_submit(how, ctx, cb));
    struct io_event ev;
    int n = io_getevents(ctx, 1, 1, &ev, NULL);
    say("OUT %s: events %d res %ld", label, n, n == 1 ? (long)ev.res : 0L);
}

static void s_linux_aio(const char *how)
{
    static char buf[8192];
    io_context_t ctx = 0;
    int r = io_setup(8, &ctx);
    if (r < 0) {
        say("OUT io_setup failed %d", r);
        return;
    }
    int fd = xopen("la", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "kaio", 100);
    struct iocb cb;
    io_prep_pread(&cb, fd, buf, sizeof buf, 0);
    kaio_run("pread", how, ctx, &cb);
    show_buf("read", buf, 3600);
    io_prep_pwrite(&cb, fd, "KAIO", 4, 44);
    kaio_run("pwrite", how, ctx, &cb);
    lines(fd, "after", 20);
    show_offset("after the writes", fd);
    int g = xopen("la2", O_RDWR | O_CREAT | O_TRUNC);
    lines(g, "synced", 50);
    io_prep_fsync(&cb, g);
    kaio_run("fsync", how, ctx, &cb);     /* EINVAL on ext4 and tmpfs */
    check("after fsync", "la2");
    check("after aio", "la");
    close_two(fd, "la", g, "la2");
    io_destroy(ctx);
}

/* io_uring through liburing ("lib") or syscall(SYS_io_uring_setup) and
 * rings of our own ("raw"). A second file is written before the ring is
 * made, and a third after. */
struct raw_ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

/* A ring made by a child process and taken with pidfd_getfd ("foreign":
 * the kernel refuses to pass one over SCM_RIGHTS). The child waits until
 * foreign_ring_end. Its parameters in *p. (With SQPOLL such a ring would
 * be no use here: its thread resolves descriptors in the child's table.) */
static pid_t foreign_child;
static int foreign_hold = -1;

static void foreign_ring_end(void)
{
    if (foreign_hold < 0)
        return;
    close(foreign_hold);
    waitpid(foreign_child, NULL, 0);
    foreign_hold = -1;
}

static int foreign_ring(struct io_uring_params *p)
{
    int pp[2], back[2];
    if (pipe(pp) != 0 || pipe(back) != 0)
        return -errno;
    pid_t c = fork();
    if (c < 0)
        return -errno;
    if (c == 0) {
        memset(p, 0, sizeof *p);
        int rf = (int)syscall(SYS_io_uring_setup, 4, p);
        char x;
        close(back[1]);
        if (write(pp[1], p, sizeof *p) != (ssize_t)sizeof *p ||
            write(pp[1], &rf, sizeof rf) != (ssize_t)sizeof rf ||
            read(back[0], &x, 1) < 0)       /* until the parent is done */
            _exit(1);
        _exit(0);
    }
    int rf = -1, got = -1;
    if (read(pp[0], p, sizeof *p) == (ssize_t)sizeof *p &&
        read(pp[0], &rf, sizeof rf) == (ssize_t)sizeof rf && rf >= 0) {
        int pf = (int)syscall(SYS_pidfd_open, c, 0);
        got = pf < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pf, rf, 0);
        if (pf >= 0)
            close(pf);
    }
    foreign_child = c;
    foreign_hold = back[1];
    close(pp[0]);
    close(pp[1]);
    close(back[0]);
    if (got < 0)
        foreign_ring_end();
    return got < 0 ? -ENOSYS : got;
}

static int raw_ring_init(struct raw_ring *q, int foreign)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    q->fd = foreign ? foreign_ring(&p)
                    : (int)syscall(SYS_io_uring_setup, 4, &p);
    if (q->fd < 0)
        return foreign ? q->fd : -errno;
    size_t sl = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cl = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(NULL, sl, PROT_READ | PROT_WRITE, MAP_SHARED |
                    MAP_POPULATE, q->fd, IORING_OFF_SQ_RING);
    char *cq = mmap(NULL, cl, PROT_READ | PROT_WRITE, MAP_SHARED |
                    MAP_POPULATE, q->fd, IORING_OFF_CQ_RING);
    q->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, q->fd,
                   IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || q->sqes == MAP_FAILED)
        return -ENOMEM;
    q->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    q->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    q->sq_array = (unsigned *)(sq + p.sq_off.array);
    q->cq_head = (unsigned *)(cq + p.cq_off.head);
    q->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    q->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    q->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

static int raw_ring_do(struct raw_ring *q, int op, int fd, void *buf,
                       unsigned n, off_t off)
{
    unsigned t = *q->sq_tail, i = t & *q->sq_mask;
    struct io_uring_sqe *e = &q->sqes[i];
    memset(e, 0, sizeof *e);
    e->opcode = (unsigned char)op;
    e->fd = fd;
    e->addr = (uintptr_t)buf;
    e->len = n;
    e->off = (uint64_t)off;
    q->sq_array[i] = i;
    __atomic_store_n(q->sq_tail, t + 1, __ATOMIC_RELEASE);
    if (syscall(SYS_io_uring_enter, q->fd, 1, 1, IORING_ENTER_GETEVENTS,
                NULL, 0) < 0)
        return -errno;
    unsigned h = *q->cq_head;
    if (h == __atomic_load_n(q->cq_tail, __ATOMIC_ACQUIRE))
        return -EAGAIN;
    int res = q->cqes[h & *q->cq_mask].res;
    __atomic_store_n(q->cq_head, h + 1, __ATOMIC_RELEASE);
    return res;
}

static int lib_ring_do(struct io_uring *ring, int op, int fd, void *buf,
                       unsigned n, off_t off)
{
    struct io_uring_sqe *e = io_uring_get_sqe(ring);
    if (op == IORING_OP_READ)
        io_uring_prep_read(e, fd, buf, n, (uint64_t)off);
    else
        io_uring_prep_write(e, fd, buf, n, (uint64_t)off);
    struct io_uring_cqe *c;
    int r = io_uring_submit(ring);
    if (r < 0)
        return r;
    r = io_uring_wait_cqe(ring, &c);
    if (r < 0)
        return r;
    r = c->res;
    io_uring_cqe_seen(ring, c);
    return r;
}

static void s_io_uring(const char *how)
{
    static char buf[8192];
    int foreign = !strcmp(how, "foreign");
    int raw = foreign || !strcmp(how, "raw");
    int fd = xopen("ur", O_RDWR | O_CREAT | O_TRUNC);
    int g = xopen("ur2", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "uring", 100);
    lines(g, "second", 60);
    show_offset("before the ring", fd);
    struct raw_ring q;
    struct io_uring ring;
    errno = 4242;
    int r = raw ? raw_ring_init(&q, foreign)
                : io_uring_queue_init(4, &ring, 0);
    say("OUT ring made: errno=%d", errno);
    if (r < 0) {
        say("OUT io_uring unavailable %d", r);
        close(fd);
        close(g);
        return;
    }
#define RING(op, f, b, n, o)                                               \
    (raw ? raw_ring_do(&q, op, f, b, n, o)                                 \
         : lib_ring_do(&ring, op, f, b, n, o))
    say("OUT read %d", RING(IORING_OP_READ, fd, buf, sizeof buf, 0));
    show_buf("read", buf, 3600);
    say("OUT write %d", RING(IORING_OP_WRITE, fd, "RING", 4, 48));
    say("OUT write 2 %d", RING(IORING_OP_WRITE, g, "SECOND", 6, 0));
    /* offset -1: the descriptor's offset, used and moved */
    say("OUT write at the offset %d", RING(IORING_OP_WRITE, g, "@OFF", 4,
                                          -1));
    show_offset("second's offset", g);
    lines(fd, "after", 20);
    lines(g, "after", 5);
    int h = xopen("ur3", O_RDWR | O_CREAT | O_TRUNC);
    lines(h, "third", 40);
    say("OUT read third %d", RING(IORING_OP_READ, h, buf, sizeof buf, 0));
    show_buf("read third", buf, 1440);
    check("with the ring", "ur");
    check("with the ring 2", "ur2");
    check("with the ring 3", "ur3");
    RESULT("close", close(fd));
    RESULT("close 2", close(g));
    RESULT("close 3", close(h));
    if (!raw)
        io_uring_queue_exit(&ring);
    foreign_ring_end();
#undef RING
    check("closed", "ur");
}

/* ---- seccomp (shim/proc.c invariant (8)) -------------------------------
 * A program that writes a file, then confines itself to a few system calls
 * with a filter that kills the process on any other, and writes on: the
 * kernel run exits 0 with every byte in the file. The shim must not make a
 * call of its own after the filter (its write-back would kill the
 * process): prctl ("prctl"), seccomp() through syscall() ("syscall"), the
 * same for every thread, the shim's flusher included ("tsync"). */
#define SC_ALLOW(nr)                                                     \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                     \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static void s_seccomp(const char *how)
{
    int fd = xopen("sc", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "before", 100);
    int g = xopen("sc2", O_WRONLY | O_CREAT | O_TRUNC);
    lines(g, "other", 40);
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        SC_ALLOW(SYS_read), SC_ALLOW(SYS_write), SC_ALLOW(SYS_close),
        SC_ALLOW(SYS_lseek), SC_ALLOW(SYS_fstat), SC_ALLOW(SYS_exit),
        SC_ALLOW(SYS_exit_group), SC_ALLOW(SYS_rt_sigreturn),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        say("OUT no_new_privs errno=%d", errno);
        return;
    }
    errno = 4242;
    long r;
    if (!strcmp(how, "syscall"))
        r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    else if (!strcmp(how, "tsync"))
        r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_TSYNC, &prog);
    else
        r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
    say("OUT filter %ld errno=%d", r, errno);
    lines(fd, "inside", 100);
    say("OUT offset %lld", (long long)lseek(fd, 0, SEEK_CUR));
    lines(g, "inside", 10);
    check("inside the filter", "sc");
    close_two(fd, "sc", g, "sc2");
}

/* More files open at once than the cache's file table holds (256 by
 * default): the rest must pass through, and every file be right. */
static void s_many_files(void)
{
    enum { N = 600 };
    static int fds[N];
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < N + 64) {
        rl.rlim_cur = rl.rlim_max < N + 64 ? rl.rlim_max : N + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int opened = 0;
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%03d", i);
        fds[i] = open(path(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fds[i] >= 0)
            opened++;
    }
    say("OUT opened %d", opened);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i++)
            if (fds[i] >= 0)
                putf(fds[i], "file %03d round %d ..............\n", i, round);
    long long total = 0;
    for (int i = 0; i < N; i += 37) {
        long long size;
        if (fds[i] >= 0) {
            hash_fd_pread(fds[i], &size);
            total += size;
        }
    }
    say("OUT sampled sizes %lld", total);
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SCENARIO DIR [ARG]\n", argv[0]);
        return 2;
    }
    const char *sc = argv[1];
    const char *arg = argc > 3 ? argv[3] : "";
#ifdef WCT_BIG_TLS
    ((volatile char *)wct_big_tls)[argc] = 1;
#endif
    dir = argv[2];
    if (getenv("WCT_CTL_FD"))
        ctl = atoi(getenv("WCT_CTL_FD"));
    if (!strcmp(sc, "append_pwrite")) s_append_pwrite();
    else if (!strcmp(sc, "dup_offset")) s_dup_offset();
    else if (!strcmp(sc, "fork_shared")) s_fork_shared();
    else if (!strcmp(sc, "fork_children_log")) s_fork_children_log();
    else if (!strcmp(sc, "fork_sequence")) s_fork_sequence();
    else if (!strcmp(sc, "spawn")) s_spawn();
    else if (!strcmp(sc, "exec")) s_exec(argc, argv);
    else if (!strcmp(sc, "exit")) s_exit(arg);
    else if (!strcmp(sc, "close_range")) s_close_range(0);
    else if (!strcmp(sc, "closefrom")) s_close_range(1);
    else if (!strcmp(sc, "mmap_after")) s_mmap_after();
    else if (!strcmp(sc, "lock")) s_lock(arg);
    else if (!strcmp(sc, "halves_poke")) s_halves_poke();
    else if (!strcmp(sc, "halves_fork")) s_halves_fork();
    else if (!strcmp(sc, "fopen")) s_fopen();
    else if (!strcmp(sc, "unlinked")) s_unlinked();
    else if (!strcmp(sc, "inherited")) s_inherited();
    else if (!strcmp(sc, "inherited_quiet")) s_inherited_quiet();
    else if (!strcmp(sc, "deadline")) s_deadline();
    else if (!strcmp(sc, "deadline_handler")) s_deadline_handler();
    else if (!strcmp(sc, "deadline_jumped")) s_deadline_jumped();
    else if (!strcmp(sc, "deadline_blocked")) s_deadline_blocked();
    else if (!strcmp(sc, "handler_thread")) s_handler_thread(arg);
    else if (!strcmp(sc, "no_thread")) s_no_thread();
    else if (!strcmp(sc, "sigactions")) s_sigactions(arg);
    else if (!strcmp(sc, "dlopen_fork")) s_dlopen_fork(arg);
    else if (!strcmp(sc, "raw_handler")) s_raw_handler();
    else if (!strcmp(sc, "fsync")) s_fsync();
    else if (!strcmp(sc, "times")) s_times();
    else if (!strcmp(sc, "dir_rename")) s_dir_rename();
    else if (!strcmp(sc, "passthrough")) s_passthrough(arg);
    else if (!strcmp(sc, "truncate")) s_truncate();
    else if (!strcmp(sc, "second_open")) s_second_open();
    else if (!strcmp(sc, "watch_states")) s_watch_states();
    else if (!strcmp(sc, "scatter")) s_scatter();
    else if (!strcmp(sc, "peek")) s_peek();
    else if (!strcmp(sc, "close_all")) s_close_all(0);
    else if (!strcmp(sc, "closefrom_midway")) s_close_all(1);
    else if (!strcmp(sc, "rename")) s_rename();
    else if (!strcmp(sc, "two_appenders")) s_two_appenders();
    else if (!strcmp(sc, "vfork_fail")) s_vfork_fail();
    else if (!strcmp(sc, "vfork_child")) s_vfork_child();
    else if (!strcmp(sc, "vfork_inherit")) s_vfork_inherit();
    else if (!strcmp(sc, "raw_open_std")) s_raw_open_std();
    else if (!strcmp(sc, "tmpfile")) s_tmpfile();
    else if (!strcmp(sc, "big_offset")) s_big_offset();
    else if (!strcmp(sc, "dup2_stdout")) s_dup2_stdout();
    else if (!strcmp(sc, "bad_env")) s_bad_env();
    else if (!strcmp(sc, "fsize")) s_fsize();
    else if (!strcmp(sc, "fsize_raw")) s_fsize_raw(arg);
    else if (!strcmp(sc, "fsize_lower")) s_fsize_lower(arg);
    else if (!strcmp(sc, "other_process")) s_other_process();
    else if (!strcmp(sc, "other_stat")) s_other_stat();
    else if (!strcmp(sc, "segv_mask")) s_segv_mask();
    else if (!strcmp(sc, "publish")) s_publish();
    else if (!strcmp(sc, "exec_written")) s_exec_written();
    else if (!strcmp(sc, "ioctl")) s_ioctl();
    else if (!strcmp(sc, "first_calls")) s_first_calls();
    else if (!strcmp(sc, "sigstack")) s_sigstack();
    else if (!strcmp(sc, "onstack")) s_onstack();
    else if (!strcmp(sc, "memfd")) s_memfd();
    else if (!strcmp(sc, "many_files")) s_many_files();
    else if (!strcmp(sc, "faults")) s_faults();
    else if (!strcmp(sc, "kcalls")) s_kcalls(arg);
    else if (!strcmp(sc, "cancel")) s_cancel(arg);
    else if (!strcmp(sc, "uffd")) s_uffd(arg ? arg : "sync");
    else if (!strcmp(sc, "slow_rent")) s_slow_rent();
    else if (!strcmp(sc, "sigreport")) s_sigreport();
    else if (!strcmp(sc, "sendfile_pipe")) s_sendfile_pipe();
    else if (!strcmp(sc, "mmap_write")) s_mmap_write();
    else if (!strcmp(sc, "posix_aio")) s_posix_aio();
    else if (!strcmp(sc, "linux_aio")) s_linux_aio(arg ? arg : "lib");
    else if (!strcmp(sc, "io_uring")) s_io_uring(arg ? arg : "lib");
    else if (!strcmp(sc, "shm_channel")) s_shm_channel();
    else if (!strcmp(sc, "seccomp")) s_seccomp(arg);
    else {
        fprintf(stderr, "unknown scenario %s\n", sc);
        return 2;
    }
    return 0;
}
