/*
 * prog_fill.c - a writer for the error tests (test_shim_errors.c): writes
 * records until an error or a total, and prints what every call that did
 * not simply succeed returned, so that a run under the shim can be
 * compared line by line with a run without it.
 *
 *   prog_fill FILE MODE RECSIZE TOTAL [OPTION...]
 *
 * MODE: write (O_TRUNC, write), append (O_APPEND, write), pwrite (pwrite at
 * the record's offset), writev (two segments per record).
 * OPTION:
 *   fsize=N         RLIMIT_FSIZE = N before opening (SIGXFSZ is left at
 *                   its default action unless `xfsz-ignore` is given)
 *   xfsz-ignore     SIGXFSZ ignored: the write gets EFBIG
 *   seccomp         install a filter that refuses pwrite64, pwritev,
 *                   pwritev2 and fallocate with EPERM, then exec this
 *                   program again (with `seccomp-inherited` in its place):
 *                   the filter is there before the shim starts, as one a
 *                   service manager or a sandbox installs (a filter the
 *                   program installs itself stops the shim: proc.c (8))
 *   seccomp=LIST    the same with a filter that refuses the calls named
 *                   in LIST (comma-separated, each NAME or NAME:ENOSYS;
 *                   EPERM by default): pwrite64, pwritev, pwritev2,
 *                   fallocate, flock, clone, clone3, close_range, fsync,
 *                   fdatasync, getdents64, chdir, unlink, rename
 *   seccomp-late    install it after the first half of the records
 *   seccomp-raw-late  the same filter after the first half, installed
 *                   with the program's own `syscall` instruction (the
 *                   shim does not see it: its write-back meets the
 *                   refusal)
 *   notes=N         after the close, write N lines "note K" to
 *                   descriptor 2 (a file the caller shares: see the test)
 *   as=N, as=+N     RLIMIT_AS = N bytes (+N: the process's VmSize now
 *                   plus N) before opening, as a sandboxed worker sets it
 *   as-exec=N       RLIMIT_AS = N, then exec this program again (with
 *                   `as-inherited` in its place): the limit is there
 *                   before the shim starts, as after `ulimit -v`
 *   as-late=+N      RLIMIT_AS = VmSize + N after the first half of the
 *                   records (lowered under a cache already made)
 *   malloc=N        after the records, malloc N bytes and touch them,
 *                   printing the result
 *   sync-at=K       fsync after record K (counting from 1)
 *   ctl=PATH@K      create PATH after record K (a FUSE test server reads it
 *                   as "fail every write from now on")
 *   ask=K           after record K print "ASK k" and wait for one byte on
 *                   stdin (the test changes the world meanwhile)
 *   die=K           after record K (and its sync-at and ask), print "ASK
 *                   die PID" and wait for the test to kill it with SIGKILL
 *                   (the guard then replays what is cached; the shim
 *                   writes back before a SIGKILL the program sends itself)
 *   take=HOW:N@K    after record K, take N bytes of the file system in
 *                   FILE.take with HOW: fallocate, posix_fallocate or
 *                   sendfile (from a memfd of N bytes), and print the
 *                   result
 *   keep-going      do not stop at an error (as a logger that ignores
 *                   them): print the first error and, at the end, the
 *                   number of failed writes
 *   truncs=N,M...   after the records, ftruncate to each size in turn,
 *                   each result printed
 *   syncfs          syncfs before the final fsync, its result printed
 *   tag=X           each record starts with the character X (two
 *                   writers of one file, told apart)
 *   errseq          after the records: fsync, a pwrite of "REWRITTEN" at
 *                   0, two more fsyncs and a close (ASK before each but
 *                   the close), see the test
 *
 * Output: "full N" (records written whole), then each other result as
 * "write K -> R errno" lines, then fsync and close results, then the size.
 * A record is RECSIZE bytes: its number, then a pattern.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    /* stdout is a pipe: unbuffered, so the test sees each line at once */
    if (write(1, buf, (size_t)n) != n)
        _exit(99);
}

static const char *ename(int e)
{
    return e ? strerror(e) : "ok";
}

/* The filter of `seccomp` and `seccomp-late`. */
#define POSITIONAL "pwrite64,pwritev,pwritev2,fallocate"

static const struct {
    const char *name;
    int nr;
} calls[] = {
    {"pwrite64", SYS_pwrite64}, {"pwritev", SYS_pwritev},
    {"pwritev2", SYS_pwritev2}, {"fallocate", SYS_fallocate},
    {"flock", SYS_flock}, {"clone", SYS_clone}, {"clone3", SYS_clone3},
    {"close_range", SYS_close_range}, {"fsync", SYS_fsync},
    {"fdatasync", SYS_fdatasync}, {"getdents64", SYS_getdents64},
    {"chdir", SYS_chdir}, {"unlink", SYS_unlink}, {"rename", SYS_rename},
};

/* Refuse the calls of `list` (seccomp=LIST), each with EPERM or ENOSYS. */
static void install_seccomp(const char *list)
{
    struct sock_filter f[64];
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                          AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    char copy[512];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save, *t = strtok_r(copy, ",", &save); t && n < 60;
         t = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(t, ':');
        int err = colon && !strcmp(colon + 1, "ENOSYS") ? ENOSYS : EPERM;
        if (colon)
            *colon = 0;
        size_t i = 0;
        while (i < sizeof calls / sizeof calls[0] && strcmp(calls[i].name, t))
            i++;
        if (i == sizeof calls / sizeof calls[0]) {
            say("seccomp: unknown call %s", t);
            exit(2);
        }
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              (unsigned)calls[i].nr, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(
            BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA));
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {(unsigned short)n, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        say("seccomp: %s", strerror(errno));
        exit(2);
    }
}

/* install_seccomp(POSITIONAL) through the program's own system call
 * instruction, past any library's wrapper. */
static void install_seccomp_raw(void)
{
    struct sock_filter f[16];
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    static const int nrs[] = {SYS_pwrite64, SYS_pwritev, SYS_pwritev2,
                              SYS_fallocate};
    for (int i = 0; i < 4; i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              (unsigned)nrs[i], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                              SECCOMP_RET_ERRNO | EPERM);
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {(unsigned short)n, f};
    long r;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        exit(2);
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "0"((long)SYS_seccomp),
                       "D"((long)SECCOMP_SET_MODE_FILTER), "S"(0L), "d"(&prog)
                     : "rcx", "r11", "memory");
    if (r != 0) {
        say("seccomp: %s", strerror((int)-r));
        exit(2);
    }
}

/* The process's address space now (VmSize), in bytes. */
static unsigned long long vm_size(void)
{
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * (unsigned long long)sysconf(_SC_PAGESIZE);
}

/* RLIMIT_AS from an option's value: N, or +N above VmSize now. */
static void limit_as(const char *v)
{
    unsigned long long n = strtoull(v + (*v == '+'), NULL, 0);
    if (*v == '+')
        n += vm_size();
    struct rlimit rl = {n, n};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        say("setrlimit: %s", strerror(errno));
        exit(2);
    }
}

static void ask(const char *what)
{
    char c;
    say("ASK %s", what);
    if (read(0, &c, 1) != 1)
        exit(3);
}

static char tag[2];          /* option tag=X: each record starts with X */

static void record(char *buf, size_t n, long k)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + (k + (long)i) % 26);
    char head[24];
    int h = snprintf(head, sizeof head, "%s%ld:", tag, k);
    memcpy(buf, head, (size_t)h < n ? (size_t)h : n);
    if (n)
        buf[n - 1] = '\n';
}

/* take=HOW:N: room taken on FILE's file system by a call of this
 * process, not by a write (the shim must count it as it counts writes
 * it passes to the kernel: shim/meta.c (7)). */
static void take(const char *path, const char *how, size_t n)
{
    char p[4200];
    snprintf(p, sizeof p, "%s.take", path);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        say("take: open %s", ename(errno));
        return;
    }
    long r = -1;
    errno = 0;
    if (!strcmp(how, "fallocate")) {
        r = fallocate(fd, 0, 0, (off_t)n);
    } else if (!strcmp(how, "posix_fallocate")) {
        r = posix_fallocate(fd, 0, (off_t)n);
        errno = (int)r;
    } else {
        int m = memfd_create("take", 0);
        char *b = calloc(1, n);
        if (m < 0 || !b || write(m, b, n) != (ssize_t)n) {
            say("take: source %s", ename(errno));
            return;
        }
        free(b);
        off_t o = 0;
        errno = 0;
        r = sendfile(fd, m, &o, n);
        close(m);
    }
    int e = errno;
    struct stat st;
    fstat(fd, &st);
    say("take %s %zu -> %ld %s, size %lld", how, n, r, ename(r < 0 ||
        !strcmp(how, "posix_fallocate") ? e : 0), (long long)st.st_size);
    close(fd);
    unlink(p);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s FILE MODE RECSIZE TOTAL [OPTION...]\n",
                argv[0]);
        return 2;
    }
    const char *path = argv[1], *mode = argv[2];
    size_t rec = strtoul(argv[3], NULL, 0);
    unsigned long long total = strtoull(argv[4], NULL, 0);
    long sync_at = -1, ctl_at = -1, ask_at = -1, take_at = -1, die_at = -1;
    size_t take_n = 0;
    const char *take_how = NULL;
    const char *ctl = NULL;
    const char *sec = NULL, *as = NULL, *as_exec = NULL, *as_late = NULL;
    unsigned long long alloc = 0;
    int sec_late = 0, sec_raw = 0, errseq = 0, keep = 0, do_syncfs = 0;
    int notes = 0;
    const char *truncs = NULL;
    long nerr = 0;
    for (int i = 5; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "fsize=", 6)) {
            struct rlimit rl;
            rl.rlim_cur = rl.rlim_max = strtoull(a + 6, NULL, 0);
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                return 2;
        } else if (!strcmp(a, "xfsz-ignore")) {
            signal(SIGXFSZ, SIG_IGN);
        } else if (!strcmp(a, "seccomp")) {
            sec = POSITIONAL;
            argv[i] = (char *)"seccomp-inherited";
        } else if (!strncmp(a, "seccomp=", 8)) {
            sec = a + 8;
            argv[i] = (char *)"seccomp-inherited";
        } else if (!strcmp(a, "seccomp-inherited")) {
            ;
        } else if (!strncmp(a, "truncs=", 7)) {
            truncs = a + 7;
        } else if (!strcmp(a, "syncfs")) {
            do_syncfs = 1;
        } else if (!strncmp(a, "tag=", 4)) {
            tag[0] = a[4];
        } else if (!strcmp(a, "seccomp-late")) {
            sec_late = 1;
        } else if (!strcmp(a, "seccomp-raw-late")) {
            sec_raw = 1;
        } else if (!strncmp(a, "notes=", 6)) {
            notes = atoi(a + 6);
        } else if (!strncmp(a, "as=", 3)) {
            as = a + 3;
        } else if (!strncmp(a, "as-exec=", 8)) {
            as_exec = a + 8;
            argv[i] = (char *)"as-inherited";
        } else if (!strcmp(a, "as-inherited")) {
            ;
        } else if (!strncmp(a, "as-late=", 8)) {
            as_late = a + 8;
        } else if (!strncmp(a, "malloc=", 7)) {
            alloc = strtoull(a + 7, NULL, 0);
        } else if (!strncmp(a, "sync-at=", 8)) {
            sync_at = atol(a + 8);
        } else if (!strncmp(a, "ask=", 4)) {
            ask_at = atol(a + 4);
        } else if (!strncmp(a, "die=", 4)) {
            die_at = atol(a + 4);
        } else if (!strncmp(a, "ctl=", 4)) {
            static char p[4096];
            snprintf(p, sizeof p, "%s", a + 4);
            char *at = strrchr(p, '@');
            if (!at)
                return 2;
            *at = 0;
            ctl = p;
            ctl_at = atol(at + 1);
        } else if (!strncmp(a, "take=", 5)) {
            static char h[64];
            if (sscanf(a + 5, "%63[a-z_]:%zu@%ld", h, &take_n, &take_at) != 3)
                return 2;
            take_how = h;
        } else if (!strcmp(a, "keep-going")) {
            keep = 1;
        } else if (!strcmp(a, "errseq")) {
            errseq = 1;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (sec) {
        install_seccomp(sec);
        execv("/proc/self/exe", argv);
        say("exec: %s", strerror(errno));
        return 2;
    }
    if (as_exec) {
        limit_as(as_exec);
        execv("/proc/self/exe", argv);
        say("exec: %s", strerror(errno));
        return 2;
    }
    if (as)
        limit_as(as);

    int flags = O_WRONLY | O_CREAT;
    flags |= !strcmp(mode, "append") ? O_APPEND : O_TRUNC;
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        say("open: %s", strerror(errno));
        return 1;
    }
    char *buf = malloc(rec ? rec : 1);
    if (!buf)
        return 2;
    long nrec = rec ? (long)(total / rec) : 0, full = 0;
    int failed = 0;
    for (long k = 1; k <= nrec; k++) {
        record(buf, rec, k);
        ssize_t r;
        errno = 0;
        if (!strcmp(mode, "pwrite")) {
            r = pwrite(fd, buf, rec, (off_t)((k - 1) * (long)rec));
        } else if (!strcmp(mode, "writev")) {
            struct iovec v[2] = {{buf, rec / 2}, {buf + rec / 2, rec - rec / 2}};
            r = writev(fd, v, 2);
        } else {
            r = write(fd, buf, rec);
        }
        int e = errno;
        if (r == (ssize_t)rec) {
            full++;
            if (e)      /* success leaves errno alone (it was 0) */
                say("write %ld -> %zd, errno %s", k, r, ename(e));
        } else if (keep) {
            if (nerr++ == 0)
                say("write %ld -> %zd %s", k, r, r < 0 ? ename(e) : "short");
        } else {
            say("write %ld -> %zd %s", k, r, r < 0 ? ename(e) : "short");
            if (r < 0 || ++failed > 1)
                break;
            /* After a short write, one more (as dd does): the error. */
            failed = 1;
        }
        if (k == sync_at) {
            errno = 0;
            int sr = fsync(fd);     /* before ename(errno) is evaluated */
            say("fsync at %ld -> %d %s", k, sr, ename(sr ? errno : 0));
        }
        if (k == ctl_at) {
            int c = open(ctl, O_WRONLY | O_CREAT, 0644);
            if (c >= 0)
                close(c);
        }
        if (k == take_at)
            take(path, take_how, take_n);
        if (k == ask_at)
            ask("records");
        if (k == die_at) {
            char w[32];
            snprintf(w, sizeof w, "die %d", (int)getpid());
            ask(w);
            return 4;       /* not killed: the test failed to */
        }
        if (sec_late && k == nrec / 2)
            install_seccomp(POSITIONAL);
        if (sec_raw && k == nrec / 2)
            install_seccomp_raw();
        if (as_late && k == nrec / 2)
            limit_as(as_late);
    }
    if (alloc) {
        char *m = malloc(alloc);
        say("malloc %llu -> %s", alloc, m ? "ok" : ename(errno));
        if (m)
            memset(m, 1, alloc);
        free(m);
    }
    say("full %ld", full);
    if (keep)
        say("failed %ld", nerr);
    for (const char *t = truncs; t && *t;) {
        char *end;
        long long n = strtoll(t, &end, 0);
        if (end == t)
            break;
        errno = 0;
        int r = ftruncate(fd, (off_t)n);
        say("ftruncate %lld -> %d %s", n, r, ename(r ? errno : 0));
        t = *end == ',' ? end + 1 : end;
    }
    if (errseq) {
        /* fsync, fsync, close, with the test changing the world between
         * them (see test_shim_errors.c: errseq). */
        ask("fsync1");
        errno = 0;
        int r = fsync(fd);
        say("fsync1 -> %d %s", r, ename(r ? errno : 0));
        ask("rewrite");
        errno = 0;
        ssize_t w = pwrite(fd, "REWRITTEN", 9, 0);
        say("rewrite -> %zd %s", w, ename(w < 0 ? errno : 0));
        ask("fsync2");
        errno = 0;
        r = fsync(fd);
        say("fsync2 -> %d %s", r, ename(r ? errno : 0));
        ask("fsync3");
        errno = 0;
        r = fsync(fd);
        say("fsync3 -> %d %s", r, ename(r ? errno : 0));
    } else {
        errno = 0;
        int r;
        if (do_syncfs) {
            r = syncfs(fd);
            say("syncfs -> %d %s", r, ename(r ? errno : 0));
            errno = 0;
        }
        r = fsync(fd);
        say("fsync -> %d %s", r, ename(r ? errno : 0));
    }
    errno = 0;
    int r = close(fd);
    say("close -> %d %s", r, ename(r ? errno : 0));
    struct stat st;
    if (stat(path, &st) == 0)
        say("size %lld", (long long)st.st_size);
    for (int i = 1; i <= notes; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "note %d\n", i);
        errno = 0;
        ssize_t w = write(2, line, (size_t)n);
        if (w != n)
            say("note %d -> %zd %s", i, w, ename(w < 0 ? errno : 0));
    }
    free(buf);
    return 0;
}
