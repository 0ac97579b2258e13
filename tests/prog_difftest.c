/*
 * prog_difftest.c - a seeded random sequence of file operations whose
 * transcript must be the same with and without the shim.
 *
 *   prog_difftest DIR SEED NOPS
 *
 * Works on three files f0, f1, f2 in DIR (and a directory DIR/d for
 * EISDIR) through six descriptor slots. Every call's return value and
 * errno, every offset after a read or write, and a hash of every byte read
 * is printed, one line per operation; at the end each file's size and
 * content hash as this process sees them. Descriptor numbers are never
 * printed: the shim may hold descriptors of its own, so the numbers the
 * kernel hands out can differ. The test (test_shim_difftest.c) runs this
 * without and with LD_PRELOAD and compares the transcripts and the files.
 *
 * How the process ends depends on the seed (return from main with the
 * descriptors closed, exit() or _exit() with them open) so that every exit
 * path is a consistency point under test.
 *
 * errno is set to a sentinel before every call and printed after it when
 * the call succeeded but changed it (success must leave errno alone). About
 * one data call in four is made through syscall(SYS_...) instead of its
 * libc wrapper (raw=1 in the transcript), and MAP_PRIVATE mappings are
 * read after later writes and copied back into the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

#define NFILES 3
#define NSLOTS 6
#define MAXIO (1u << 20)
#define SENTINEL 4242      /* errno before every call */

static const char *dir;
static const void *volatile null_buf;   /* NULL the compiler cannot see */
static uint64_t rng;

static struct slot {
    int fd;        /* -1: free */
    int file;      /* which of f0..f2 */
    int flags;     /* open flags, for choosing sensible operations */
} slots[NSLOTS];

static unsigned char wbuf[MAXIO + 4096];
static unsigned char rbuf[MAXIO + 4096];

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Uniform in [0, n). */
static uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

static void path_of(int file, char *out, size_t n)
{
    snprintf(out, n, "%s/f%d", dir, file);
}

/* A write size: mostly small, sometimes a few pages, rarely past the
 * default bypass threshold (256 KiB). */
static size_t wsize(void)
{
    uint64_t r = below(100);
    if (r < 70)
        return 1 + below(200);
    if (r < 95)
        return 1 + below(3 * 4096 + 100);
    if (r < 99)
        return 4096 * (1 + below(16));
    return 300 * 1024 + below(1000);
}

/* An offset: mostly near the start, sometimes far out (holes). */
static off_t woff(void)
{
    uint64_t r = below(100);
    if (r < 75)
        return (off_t)below(64 * 1024);
    if (r < 97)
        return (off_t)below(1024 * 1024);
    if (r < 99)
        return -1 - (off_t)below(10);
    /* The largest offset: offset + length overflows, EINVAL on every
     * file system. (Offsets just below it succeed on tmpfs, whose size
     * limit is 2^63 - 1, and the final read of such a file never ends.) */
    return INT64_MAX;
}

/* Fill `n` bytes of wbuf with fresh data; return wbuf. */
static unsigned char *gen(size_t n)
{
    uint64_t x = next() | 1;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        wbuf[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
    return wbuf;
}

static int any_open(void)
{
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].fd >= 0)
            return i;
    return -1;
}

/* A random open slot, or -1. */
static int pick_open(void)
{
    int n = 0, idx[NSLOTS];
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].fd >= 0)
            idx[n++] = i;
    return n ? idx[below((uint64_t)n)] : -1;
}

/* An open slot whose access mode allows `acc` (O_WRONLY: writing,
 * O_RDONLY: reading), nine times in ten; otherwise `s`, so that EBADF
 * cases still come up. */
static int prefer(int s, int acc)
{
    if (below(10) == 0)
        return s;
    int n = 0, idx[NSLOTS];
    for (int i = 0; i < NSLOTS; i++) {
        if (slots[i].fd < 0)
            continue;
        int m = slots[i].flags & O_ACCMODE;
        if (m == O_RDWR || m == acc)
            idx[n++] = i;
    }
    return n ? idx[below((uint64_t)n)] : s;
}

/* A free slot if there is one, else any. */
static int pick_free(void)
{
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].fd < 0 && below(2))
            return i;
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].fd < 0)
            return i;
    return (int)below(NSLOTS);
}

/* errno after a call (set to SENTINEL before it): printed for failures,
 * and for successes that changed it. */
static void report(long long ret, int err)
{
    if (ret < 0)
        printf(" -> %lld errno=%d\n", ret, err);
    else if (err != SENTINEL)
        printf(" -> %lld errno-on-success=%d\n", ret, err);
    else
        printf(" -> %lld\n", ret);
}

/* Make this data call through syscall()? (one in four) */
static int raw(void)
{
    return below(4) == 0;
}

static void show_offset(int s)
{
    errno = SENTINEL;
    off_t o = lseek(slots[s].fd, 0, SEEK_CUR);
    printf("   offset %lld errno=%d\n", (long long)o, o < 0 || errno !=
           SENTINEL ? errno : 0);
}

static void op_open(int s)
{
    static const int flagset[] = {
        O_RDWR | O_CREAT, O_WRONLY | O_CREAT, O_RDONLY,
        O_RDWR | O_APPEND | O_CREAT, O_WRONLY | O_APPEND | O_CREAT,
        O_RDWR | O_CREAT, O_RDWR, O_RDWR | O_TRUNC | O_CREAT,
        O_RDWR | O_CREAT | O_EXCL, O_RDWR | O_CREAT | O_CLOEXEC,
    };
    if (slots[s].fd >= 0) {
        printf("close slot=%d", s);
        errno = SENTINEL;
        int r = close(slots[s].fd);
        report(r, errno);
        slots[s].fd = -1;
    }
    int file = (int)below(NFILES);
    int flags = flagset[below(sizeof flagset / sizeof *flagset)];
    if ((flags & O_TRUNC) && below(3))   /* truncation is rare */
        flags &= ~O_TRUNC;
    char path[4096];
    path_of(file, path, sizeof path);
    int how = (int)below(4), fd;
    errno = SENTINEL;
    if (how == 0) {
        fd = open(path, flags, 0644);
    } else if (how == 1) {
        char name[16];
        snprintf(name, sizeof name, "f%d", file);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        fd = openat(dfd, name, flags, 0644);
        int e = errno;
        close(dfd);
        errno = e;
    } else if (how == 2 && (flags & O_ACCMODE) == O_WRONLY &&
               !(flags & O_APPEND)) {
        flags = O_WRONLY | O_CREAT | O_TRUNC;
        fd = creat(path, 0644);
    } else {
        /* how 3, and 2 when creat does not fit: a raw openat */
        fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0644);
    }
    int e = errno;
    printf("open slot=%d file=%d flags=%#x how=%d", s, file, flags, how);
    report(fd < 0 ? -1 : 0, e);
    if (fd >= 0) {
        slots[s].fd = fd;
        slots[s].file = file;
        slots[s].flags = flags;
    }
}

static void op_write(int s)
{
    size_t n = wsize();
    unsigned char *p = gen(n);
    int rw = raw();
    errno = SENTINEL;
    ssize_t r = rw ? syscall(SYS_write, slots[s].fd, p, n)
                   : write(slots[s].fd, p, n);
    printf("write slot=%d len=%zu raw=%d", s, n, rw);
    report(r, errno);
    show_offset(s);
}

static void op_pwrite(int s)
{
    size_t n = wsize();
    off_t o = woff();
    unsigned char *p = gen(n);
    int rw = raw();
    errno = SENTINEL;
    ssize_t r = rw ? syscall(SYS_pwrite64, slots[s].fd, p, n, o)
                   : pwrite(slots[s].fd, p, n, o);
    printf("pwrite slot=%d len=%zu off=%lld raw=%d", s, n, (long long)o,
           rw);
    report(r, errno);
    show_offset(s);
}

/* 1..5 segments over wbuf, some of them empty with a NULL base. */
static int make_iov(struct iovec *iov, unsigned char *base, size_t cap,
                    size_t *total)
{
    int cnt = 1 + (int)below(5);
    size_t used = 0;
    for (int i = 0; i < cnt; i++) {
        size_t n = below(4) == 0 ? 0 : 1 + below(below(5) ? 300 : 6000);
        if (used + n > cap)
            n = 0;
        iov[i].iov_base = n ? base + used : NULL;
        iov[i].iov_len = n;
        used += n;
    }
    *total = used;
    return cnt;
}

static void op_writev(int s, int positional)
{
    struct iovec iov[8];
    size_t total;
    gen(64 * 1024);
    int cnt = make_iov(iov, wbuf, 64 * 1024, &total);
    off_t o = positional ? woff() : 0;
    int rw = raw();
    errno = SENTINEL;
    ssize_t r;
    if (rw)
        r = positional ? syscall(SYS_pwritev, slots[s].fd, iov, cnt, o, 0)
                       : syscall(SYS_writev, slots[s].fd, iov, cnt);
    else
        r = positional ? pwritev(slots[s].fd, iov, cnt, o)
                       : writev(slots[s].fd, iov, cnt);
    printf("%s slot=%d cnt=%d total=%zu off=%lld raw=%d", positional ?
           "pwritev" : "writev", s, cnt, total, (long long)o, rw);
    report(r, errno);
    show_offset(s);
}

static void op_read(int s, int kind)
{
    size_t n = below(3) ? 1 + below(300) : 1 + below(3 * 4096 + 100);
    off_t o = kind == 1 ? woff() : 0;
    ssize_t r;
    struct iovec iov[8];
    int cnt = 0;
    size_t total = n;
    memset(rbuf, 0xa5, sizeof rbuf);
    errno = SENTINEL;
    /* A length the compiler cannot bound, so that a fortified build
     * (prog_difftest_fortify.c) calls __read_chk and __pread_chk. */
    volatile size_t vn = n;
    int rw = raw();
    if (kind == 2)
        cnt = make_iov(iov, rbuf, 64 * 1024, &total);
    errno = SENTINEL;
    if (kind == 0) {
        r = rw ? syscall(SYS_read, slots[s].fd, rbuf, vn)
               : read(slots[s].fd, rbuf, vn);
    } else if (kind == 1) {
        r = rw ? syscall(SYS_pread64, slots[s].fd, rbuf, vn, o)
               : pread(slots[s].fd, rbuf, vn, o);
    } else {
        r = rw ? syscall(SYS_readv, slots[s].fd, iov, cnt)
               : readv(slots[s].fd, iov, cnt);
    }
    int e = errno;
    static const char *names[] = {"read", "pread", "readv"};
    printf("%s slot=%d len=%zu off=%lld cnt=%d raw=%d", names[kind], s,
           total, (long long)o, cnt, rw);
    if (r >= 0)
        printf(" hash=%016" PRIx64, wct_hash(rbuf, (size_t)r));
    report(r, e);
    show_offset(s);
}

static void op_lseek(int s)
{
    static const int whence[] = {SEEK_SET, SEEK_CUR, SEEK_END, SEEK_SET,
                                 SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE};
    int w = whence[below(below(20) ? 6 : 8)];
    off_t o;
    if (w == SEEK_SET)
        o = below(20) ? (off_t)below(70000) : -(off_t)below(100) - 1;
    else if (w == SEEK_DATA || w == SEEK_HOLE)
        o = (off_t)below(1 << 20);
    else
        o = (off_t)below(20000) - 10000;
    int rw = raw();
    errno = SENTINEL;
    off_t r = rw ? syscall(SYS_lseek, slots[s].fd, o, w)
                 : lseek(slots[s].fd, o, w);
    printf("lseek slot=%d off=%lld whence=%d raw=%d", s, (long long)o, w,
           rw);
    report(r, errno);
}

static void op_ftruncate(int s)
{
    off_t len = below(10) ? (off_t)below(100 * 1024) : -1;
    int rw = raw();
    errno = SENTINEL;
    int r = rw ? (int)syscall(SYS_ftruncate, slots[s].fd, len)
               : ftruncate(slots[s].fd, len);
    printf("ftruncate slot=%d len=%lld raw=%d", s, (long long)len, rw);
    report(r, errno);
    show_offset(s);
}

static void op_fstat(int s)
{
    struct stat st;
    int rw = raw();
    errno = SENTINEL;
    int r = rw ? (int)syscall(SYS_fstat, slots[s].fd, &st)
               : fstat(slots[s].fd, &st);
    int e = errno;
    int fl = fcntl(slots[s].fd, F_GETFL);
    printf("fstat slot=%d raw=%d size=%lld mode=%o getfl=%#x", s, rw,
           r == 0 ? (long long)st.st_size : -1LL, r == 0 ? st.st_mode : 0,
           fl & (O_ACCMODE | O_APPEND));
    report(r, e);
}

static void op_stat(void)
{
    int file = (int)below(NFILES);
    char path[4096];
    path_of(file, path, sizeof path);
    struct stat st;
    int l = (int)below(2), rw = raw();
    errno = SENTINEL;
    int r = rw ? (int)syscall(l ? SYS_lstat : SYS_stat, path, &st)
               : l ? lstat(path, &st) : stat(path, &st);
    printf("stat file=%d raw=%d size=%lld", file, rw,
           r == 0 ? (long long)st.st_size : -1LL);
    report(r, errno);
}

static void op_dup(int s)
{
    int d = -1;
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].fd < 0)
            d = i;
    if (d < 0)
        d = (s + 1) % NSLOTS;
    int two = (int)below(2), rw = raw();
    if (!two && slots[d].fd >= 0)
        close(slots[d].fd);
    errno = SENTINEL;
    int fd;
    if (!two) {
        fd = rw ? (int)syscall(SYS_dup, slots[s].fd) : dup(slots[s].fd);
    } else if (slots[d].fd >= 0) {
        /* replaces d's descriptor */
        fd = rw ? (int)syscall(SYS_dup2, slots[s].fd, slots[d].fd)
                : dup2(slots[s].fd, slots[d].fd);
    } else {
        fd = rw ? (int)syscall(SYS_dup2, slots[s].fd, 40 + d)
                : dup2(slots[s].fd, 40 + d);
    }
    printf("%s slot=%d to=%d raw=%d", two ? "dup2" : "dup", s, d, rw);
    report(fd < 0 ? -1 : 0, errno);
    if (fd >= 0) {
        slots[d] = slots[s];
        slots[d].fd = fd;
        slots[d].flags &= ~O_CLOEXEC;
    } else {
        slots[d].fd = -1;
    }
}

static void op_mmap_read(int s)
{
    struct stat st;
    if (fstat(slots[s].fd, &st) < 0)
        return;
    errno = SENTINEL;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
                   slots[s].fd, 0);
    int e = errno;
    printf("mmap-read slot=%d size=%lld", s, (long long)st.st_size);
    if (p == MAP_FAILED) {
        report(-1, e);
        return;
    }
    printf(" hash=%016" PRIx64, wct_hash(p, (size_t)st.st_size));
    report(0, SENTINEL);
    munmap(p, (size_t)st.st_size);
}

/* A MAP_PRIVATE mapping of the slot's file: one page is copied on write,
 * then a later pwrite to the file (the pages not copied show it, as the
 * kernel's page cache), then bytes copied from the mapping back into the
 * file. */
static void op_mmap_private(int s)
{
    struct stat st;
    if (fstat(slots[s].fd, &st) < 0 || st.st_size <= 0 ||
        st.st_size > (4 << 20)) {
        printf("mmap-private slot=%d skipped", s);
        report(0, SENTINEL);
        return;
    }
    size_t size = (size_t)st.st_size;
    int rw = raw(), prot = PROT_READ | PROT_WRITE;
    errno = SENTINEL;
    unsigned char *p = rw ? (void *)syscall(SYS_mmap, NULL, size, prot,
                                            MAP_PRIVATE, slots[s].fd, 0)
                          : mmap(NULL, size, prot, MAP_PRIVATE, slots[s].fd,
                                 0);
    int e = errno;
    printf("mmap-private slot=%d size=%zu raw=%d", s, size, rw);
    if (p == MAP_FAILED) {
        report(-1, e);
        return;
    }
    report(0, e);
    p[below(size)] ^= 0x5a;          /* that page is copied on write */
    int n = 0, idx[NSLOTS];
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].fd >= 0 && slots[i].file == slots[s].file &&
            (slots[i].flags & O_ACCMODE) != O_RDONLY)
            idx[n++] = i;
    int w = n ? idx[below((uint64_t)n)] : -1;
    if (w >= 0) {
        size_t len = 1 + below(300);
        off_t o = (off_t)below(size);
        unsigned char *g = gen(len);
        errno = SENTINEL;
        ssize_t r = pwrite(slots[w].fd, g, len, o);
        printf("   pwrite under the mapping slot=%d len=%zu off=%lld", w,
               len, (long long)o);
        report(r, errno);
    }
    printf("   mapping hash=%016" PRIx64 "\n", wct_hash(p, size));
    if (w >= 0) {
        size_t from = below(size), len = 1 + below(size - from);
        off_t o = (off_t)below(size + 100);
        errno = SENTINEL;
        ssize_t r = pwrite(slots[w].fd, p + from, len, o);
        printf("   copy back slot=%d from=%zu len=%zu off=%lld", w, from, len,
               (long long)o);
        report(r, errno);
    }
    munmap(p, size);
}

/* Fork; the child writes through the shared descriptor and _exits; the
 * parent reports what the child's call returned. */
static void op_fork_write(int s)
{
    int p[2];
    if (pipe(p) < 0)
        return;
    size_t n = 1 + below(300);
    int positional = (int)below(2);
    off_t o = woff();
    unsigned char *data = gen(n);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        errno = SENTINEL;
        long long res[2];
        res[0] = positional ? pwrite(slots[s].fd, data, n, o)
                            : write(slots[s].fd, data, n);
        res[1] = errno;
        if (write(p[1], res, sizeof res) != sizeof res)
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    long long res[2] = {-2, 0};
    int st = -1;
    if (pid > 0) {
        if (read(p[0], res, sizeof res) != sizeof res)
            res[0] = -3;
        waitpid(pid, &st, 0);
    }
    close(p[0]);
    printf("fork-%s slot=%d len=%zu off=%lld child=%#x", positional ?
           "pwrite" : "write", s, n, positional ? (long long)o : 0LL, st);
    report(res[0], (int)res[1]);
    show_offset(s);
}

/* A readable page followed by a PROT_NONE one (main sets it up): buffers
 * that end in it make short reads and writes, which succeed. */
static unsigned char *guard;
#define GUARD_PAGE 4096

static void op_bad(void)
{
    int which = (int)below(10);
    size_t k = 1 + below(200);
    unsigned char *edge = guard + GUARD_PAGE - k;
    struct iovec iov[3] = {{wbuf, 1 + below(100)}, {edge, k + 50},
                           {wbuf, 7}};
    int rw = raw();
    errno = SENTINEL;
    long long r = 0;
    int s = pick_open();
    switch (which) {
    case 0:
        r = write(-1, "x", 1);
        break;
    case 1:
        r = s >= 0 ? write(slots[s].fd, null_buf, 10) : 0;
        break;
    case 2: {
        char path[4096];
        snprintf(path, sizeof path, "%s/d", dir);
        int fd = open(path, O_RDONLY);
        r = read(fd, rbuf, 10);
        int e = errno;
        close(fd);
        errno = e;
        break;
    }
    case 3:
        r = s >= 0 ? pwrite(slots[s].fd, "x", 1, -5) : 0;
        break;
    case 4:
        r = s >= 0 ? lseek(slots[s].fd, -1, SEEK_SET) : 0;
        break;
    case 6:     /* a write whose buffer ends in PROT_NONE: short count */
        if (s >= 0)
            r = rw ? syscall(SYS_write, slots[s].fd, edge, k + 100)
                   : write(slots[s].fd, edge, k + 100);
        break;
    case 7: {
        off_t o = woff();
        if (s >= 0)
            r = rw ? syscall(SYS_pwrite64, slots[s].fd, edge, k + 100, o)
                   : pwrite(slots[s].fd, edge, k + 100, o);
        break;
    }
    case 8:     /* a segment ending in PROT_NONE after a good one */
        if (s >= 0)
            r = rw ? syscall(SYS_writev, slots[s].fd, iov, 3)
                   : writev(slots[s].fd, iov, 3);
        break;
    case 9:     /* a read into a buffer that ends in PROT_NONE */
        if (s >= 0)
            r = rw ? syscall(SYS_read, slots[s].fd, edge, k + 100)
                   : read(slots[s].fd, edge, k + 100);
        break;
    default:
        r = fsync(-1);
        break;
    }
    int e = errno;
    printf("bad case=%d slot=%d raw=%d", which, s, rw);
    report(r, e);
    if (which >= 6 && s >= 0)
        show_offset(s);
}

static void op_unlink(void)
{
    int file = (int)below(NFILES);
    char path[4096];
    path_of(file, path, sizeof path);
    errno = SENTINEL;
    int r = unlink(path);
    printf("unlink file=%d", file);
    report(r, errno);
}

/* fcntl(F_SETFL) turning O_APPEND on or off for the open file
 * description (all its duplicates). */
static void op_setfl(int s)
{
    int fl = fcntl(slots[s].fd, F_GETFL);
    int want = below(2) ? (fl | O_APPEND) : (fl & ~O_APPEND);
    /* WCT_DIFF_NO_SETFL=1 (the FUSE test): a FUSE server keeps the
     * O_APPEND its handle was opened with whatever F_SETFL says, so the
     * kernel run itself is not POSIX there. Same random draws, no call. */
    const char *no = getenv("WCT_DIFF_NO_SETFL");
    if (no && *no == '1') {
        printf("setfl slot=%d skipped", s);
        report(0, SENTINEL);
        return;
    }
    int rw = raw();
    errno = SENTINEL;
    int r = rw ? (int)syscall(SYS_fcntl, slots[s].fd, F_SETFL, want)
               : fcntl(slots[s].fd, F_SETFL, want);
    printf("setfl slot=%d append=%d raw=%d", s, !!(want & O_APPEND), rw);
    report(r, errno);
    int file = slots[s].file;
    for (int i = 0; i < NSLOTS; i++)     /* shared by duplicates: best effort */
        if (slots[i].fd >= 0 && slots[i].file == file && r == 0 && i == s)
            slots[i].flags = (slots[i].flags & ~O_APPEND) | (want & O_APPEND);
}

static void op_truncate_path(void)
{
    int file = (int)below(NFILES);
    char path[4096];
    path_of(file, path, sizeof path);
    off_t len = (off_t)below(100 * 1024);
    int rw = raw();
    errno = SENTINEL;
    int r = rw ? (int)syscall(SYS_truncate, path, len) : truncate(path, len);
    printf("truncate file=%d len=%lld raw=%d", file, (long long)len, rw);
    report(r, errno);
}

static void op_preadv(int s)
{
    struct iovec iov[8];
    size_t total;
    memset(rbuf, 0xa5, 64 * 1024);
    int cnt = make_iov(iov, rbuf, 64 * 1024, &total);
    off_t o = woff();
    int rw = raw();
    errno = SENTINEL;
    ssize_t r = rw ? syscall(SYS_preadv, slots[s].fd, iov, cnt, o, 0)
                   : preadv(slots[s].fd, iov, cnt, o);
    int e = errno;
    printf("preadv slot=%d cnt=%d total=%zu off=%lld raw=%d", s, cnt, total,
           (long long)o, rw);
    if (r >= 0) {
        /* hash the bytes in segment order */
        uint64_t h = 0xcbf29ce484222325ull;
        size_t left = (size_t)r;
        for (int i = 0; i < cnt && left; i++) {
            size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
            for (size_t k = 0; k < n; k++) {
                h ^= ((unsigned char *)iov[i].iov_base)[k];
                h *= 0x100000001b3ull;
            }
            left -= n;
        }
        printf(" hash=%016" PRIx64, h);
    }
    report(r, e);
    show_offset(s);
}

static void op_pwritev2(int s)
{
    struct iovec iov[8];
    size_t total;
    gen(64 * 1024);
    int cnt = make_iov(iov, wbuf, 64 * 1024, &total);
    off_t o = below(5) ? woff() : -1;     /* -1: at the file offset */
    int flags = below(3) ? 0 : RWF_APPEND;
    int rw = raw();
    errno = SENTINEL;
    ssize_t r = rw ? syscall(SYS_pwritev2, slots[s].fd, iov, cnt, o, 0,
                             flags)
                   : pwritev2(slots[s].fd, iov, cnt, o, flags);
    printf("pwritev2 slot=%d cnt=%d total=%zu off=%lld flags=%d raw=%d", s,
           cnt, total, (long long)o, flags, rw);
    report(r, errno);
    show_offset(s);
}

static void op_copy_range(int s)
{
    int d = pick_open();
    off_t in = (off_t)below(70000), out = woff();
    if (out < 0)
        out = 0;
    size_t len = (size_t)below(20000);
    int rw = raw(), at_offset = (int)below(3);
    /* sometimes at the descriptors' offsets (NULL), which must move */
    loff_t *pin = at_offset == 1 ? NULL : &in;
    loff_t *pout = at_offset == 2 ? NULL : &out;
    errno = SENTINEL;
    ssize_t r = rw ? syscall(SYS_copy_file_range, slots[s].fd, pin,
                             slots[d].fd, pout, len, 0)
                   : copy_file_range(slots[s].fd, pin, slots[d].fd, pout,
                                     len, 0);
    printf("copy_file_range from=%d to=%d len=%zu raw=%d at=%d", s, d, len,
           rw, at_offset);
    report(r, errno);
    printf("   in=%lld out=%lld\n", (long long)in, (long long)out);
    show_offset(s);
    show_offset(d);
}

static void op_fallocate(int s)
{
    static const int modes[] = {0, FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE};
    int mode = modes[below(3)];
    off_t off = (off_t)below(100000), len = 1 + (off_t)below(20000);
    int rw = raw();
    errno = SENTINEL;
    int r = rw ? (int)syscall(SYS_fallocate, slots[s].fd, mode, off, len)
               : fallocate(slots[s].fd, mode, off, len);
    printf("fallocate slot=%d mode=%d off=%lld len=%lld raw=%d", s, mode,
           (long long)off, (long long)len, rw);
    report(r, errno);
}

static void final_report(void)
{
    for (int f = 0; f < NFILES; f++) {
        char path[4096];
        path_of(f, path, sizeof path);
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            printf("final file=%d absent errno=%d\n", f, errno);
            continue;
        }
        uint64_t h = 0xcbf29ce484222325ull;
        long long size = 0;
        ssize_t n;
        while ((n = read(fd, rbuf, MAXIO)) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                h ^= rbuf[i];
                h *= 0x100000001b3ull;
            }
            size += n;
        }
        printf("final file=%d size=%lld hash=%016" PRIx64 "\n", f, size, h);
        close(fd);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR SEED NOPS\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);   /* a crash keeps the transcript */
    uint64_t seed = strtoull(argv[2], NULL, 0);
    long nops = strtol(argv[3], NULL, 0);
    rng = seed * 0x9e3779b97f4a7c15ull + 0x1234567;
    for (int i = 0; i < NSLOTS; i++)
        slots[i].fd = -1;
    guard = mmap(NULL, 2 * GUARD_PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard == MAP_FAILED || mprotect(guard + GUARD_PAGE, GUARD_PAGE,
                                        PROT_NONE) != 0)
        return 3;
    memset(guard, 'g', GUARD_PAGE);
    char d[4096];
    snprintf(d, sizeof d, "%s/d", dir);
    mkdir(d, 0755);
    printf("seed %llu ops %ld\n", (unsigned long long)seed, nops);

    for (long i = 0; i < nops; i++) {
        printf("%ld ", i);
        int s = pick_open();
        uint64_t r = below(1103);
        if (s < 0 || r < 130) {
            op_open(pick_free());
        } else if (r < 170) {
            int rw = raw();
            printf("close slot=%d raw=%d", s, rw);
            errno = SENTINEL;
            int rc = rw ? (int)syscall(SYS_close, slots[s].fd)
                        : close(slots[s].fd);
            report(rc, errno);
            slots[s].fd = -1;
        } else if (r < 300) {
            op_write(prefer(s, O_WRONLY));
        } else if (r < 420) {
            op_pwrite(prefer(s, O_WRONLY));
        } else if (r < 480) {
            op_writev(prefer(s, O_WRONLY), 0);
        } else if (r < 530) {
            op_writev(prefer(s, O_WRONLY), 1);
        } else if (r < 610) {
            op_read(prefer(s, O_RDONLY), 0);
        } else if (r < 670) {
            op_read(prefer(s, O_RDONLY), 1);
        } else if (r < 710) {
            op_read(prefer(s, O_RDONLY), 2);
        } else if (r < 770) {
            op_lseek(s);
        } else if (r < 800) {
            op_ftruncate(prefer(s, O_WRONLY));
        } else if (r < 840) {
            op_fstat(s);
        } else if (r < 870) {
            op_stat();
        } else if (r < 920) {
            op_dup(s);
        } else if (r < 940) {
            int data = (int)below(2), rw = raw();
            errno = SENTINEL;
            int rc = rw ? (int)syscall(data ? SYS_fdatasync : SYS_fsync,
                                       slots[s].fd)
                 : data ? fdatasync(slots[s].fd) : fsync(slots[s].fd);
            printf("fsync slot=%d raw=%d", s, rw);
            report(rc, errno);
        } else if (r < 970) {
            op_bad();
        } else if (r < 973) {
            /* mmap and fork are rare: from then on the shim may pass the
             * file or the shared descriptors through, which tests less */
            op_mmap_read(prefer(s, O_RDONLY));
        } else if (r < 976) {
            op_fork_write(prefer(s, O_WRONLY));
        } else if (r < 980) {
            op_unlink();
        } else if (r < 1000) {
            op_write(prefer(s, O_WRONLY));
        } else if (r < 1020) {
            op_setfl(s);
        } else if (r < 1035) {
            op_truncate_path();
        } else if (r < 1050) {
            op_preadv(prefer(s, O_RDONLY));
        } else if (r < 1065) {
            op_pwritev2(prefer(s, O_WRONLY));
        } else if (r < 1080) {
            op_copy_range(prefer(s, O_RDONLY));
        } else if (r < 1100) {
            op_fallocate(prefer(s, O_WRONLY));
        } else {
            op_mmap_private(prefer(s, O_RDONLY));
        }
    }

    int how = (int)(seed % 3);
    if (how == 0) {
        for (int i = 0; i < NSLOTS; i++)
            if (slots[i].fd >= 0)
                close(slots[i].fd);
    }
    final_report();
    printf("end how=%d\n", how);
    fflush(stdout);
    (void)any_open;
    if (how == 1)
        exit(0);
    if (how == 2)
        _exit(0);
    return 0;
}
