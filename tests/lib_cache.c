/*
 * lib_cache.c - helpers for the cache engine's suites (see lib_cache.h).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib_cache.h"
#include "lib_sys.h"
#include "wcache/sys.h"

char wct_dir[PATH_MAX];

/* ---- removing a tree without malloc (also used by the watchdog child) --- */

struct wct_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void rm_tree_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM))
        return;
    if (depth > 32)
        return;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        /* Deleting while reading may skip entries: rescan until empty. */
        for (int pass = 0; pass < 8; pass++) {
            char buf[4096];
            int seen = 0;
            lseek(fd, 0, SEEK_SET);
            for (;;) {
                long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
                if (n <= 0)
                    break;
                for (long o = 0; o < n;) {
                    struct wct_dirent64 *d = (void *)(buf + o);
                    o += d->d_reclen;
                    if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
                        continue;
                    seen++;
                    rm_tree_at(fd, d->d_name, depth + 1);
                }
            }
            if (!seen)
                break;
        }
        close(fd);
    }
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void rm_tree(const char *path)
{
    if (path[0])
        rm_tree_at(AT_FDCWD, path, 0);
}

/* ---- watchdog ------------------------------------------------------------ */

enum { WD_ARM = 1, WD_MOUNT = 2 };
struct wd_msg {
    int kind;
    unsigned seconds;
    char text[240];
};

static pid_t wd_pid = -1;
static int wd_fd = -1;
static char wd_mounts[4][PATH_MAX];
static int wd_nmounts;

static void put_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(dst);
    while (*s && n + 1 < cap)
        dst[n++] = *s++;
    dst[n] = 0;
}

/* dst = a "/" b (b may be NULL: dst = a), cut to cap. */
static void path_join(char *dst, size_t cap, const char *a, const char *b)
{
    dst[0] = 0;
    put_str(dst, cap, a);
    if (b) {
        put_str(dst, cap, "/");
        put_str(dst, cap, b);
    }
}

static void put_uint(char *dst, size_t cap, unsigned long v)
{
    char tmp[24];
    int i = sizeof tmp - 1;
    tmp[i] = 0;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    put_str(dst, cap, tmp + i);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The watchdog process: re-armed through the pipe; kills the test when a
 * deadline passes; removes the scratch directory once the test is gone. */
static __attribute__((noreturn)) void wd_main(int rfd, pid_t parent,
                                              const char *test)
{
    char what[240] = "test body";
    char mounts[4][PATH_MAX];
    int nmounts = 0;
    unsigned armed = 30;
    long long deadline = now_ms() + 30000;
    int killed = 0;

    prctl(PR_SET_NAME, "wct-watchdog");
    for (;;) {
        long long left = deadline ? deadline - now_ms() : 200;
        int ms = left < 0 ? 0 : left > 200 ? 200 : (int)left;
        struct pollfd pfd = {.fd = rfd, .events = POLLIN};
        int r = poll(&pfd, 1, ms);
        if (r > 0) {
            struct wd_msg m;
            ssize_t n = read(rfd, &m, sizeof m);
            if (n <= 0)
                break;
            if (n != sizeof m)
                continue;
            m.text[sizeof m.text - 1] = 0;
            if (m.kind == WD_ARM) {
                armed = m.seconds;
                deadline = m.seconds ? now_ms() + 1000LL * m.seconds : 0;
                memcpy(what, m.text, sizeof what);
            } else if (m.kind == WD_MOUNT && nmounts < 4) {
                memcpy(mounts[nmounts++], m.text, sizeof m.text);
            }
            continue;
        }
        if (getppid() != parent)
            break;
        if (!killed && deadline && now_ms() >= deadline) {
            char msg[600] = "";
            put_str(msg, sizeof msg, "\nwct watchdog: ");
            put_str(msg, sizeof msg, test);
            put_str(msg, sizeof msg, ": ");
            put_str(msg, sizeof msg, what);
            put_str(msg, sizeof msg, ": no progress after ");
            put_uint(msg, sizeof msg, armed);
            put_str(msg, sizeof msg, " s (hang or deadlock); killing the test\n");
            if (write(2, msg, strlen(msg)) < 0) {
                /* nothing more to do */
            }
            kill(parent, SIGKILL);
            killed = 1;
            deadline = 0;
        }
    }
    for (int i = 0; i < nmounts; i++)
        umount2(mounts[i], MNT_DETACH);
    rm_tree(wct_dir);
    _exit(0);
}

static void wd_send(int kind, unsigned seconds, const char *text)
{
    if (wd_fd < 0)
        return;
    struct wd_msg m = {.kind = kind, .seconds = seconds};
    path_join(m.text, sizeof m.text, text, NULL);
    if (write(wd_fd, &m, sizeof m) != sizeof m) {
        /* The watchdog is gone; the Criterion timeout remains. */
    }
}

void wct_watchdog(unsigned seconds, const char *what)
{
    wd_send(WD_ARM, seconds, what);
}

static void wd_start(void)
{
    static char test[200];
    const struct criterion_test *t = criterion_current_test;
    snprintf(test, sizeof test, "%s::%s", t && t->category ? t->category : "?",
             t && t->name ? t->name : "?");
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Keep only the pipe and stderr: the test's other descriptors
         * (Criterion's sockets, files under test) must close with it. */
        int rfd = p[0];
        if (rfd > 3)
            syscall(SYS_close_range, 3u, (unsigned)rfd - 1, 0u);
        syscall(SYS_close_range, (unsigned)rfd + 1, ~0u, 0u);
        wd_main(rfd, parent, test);
    }
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        return;
    }
    wd_pid = pid;
    wd_fd = p[1];
}

static void wd_stop(void)
{
    if (wd_fd >= 0)
        close(wd_fd);
    wd_fd = -1;
    if (wd_pid > 0)
        waitpid(wd_pid, NULL, 0);
    wd_pid = -1;
}

/* ---- fixture ------------------------------------------------------------- */

void wct_setup(void)
{
    wct_sys_use_libc();
    snprintf(wct_dir, sizeof wct_dir, "/tmp/wct.XXXXXX");
    if (!mkdtemp(wct_dir)) {
        perror("wct_setup: mkdtemp");
        abort();
    }
    wd_start();
}

void wct_teardown(void)
{
    wct_rec_stop();
    for (int i = 0; i < wd_nmounts; i++)
        umount2(wd_mounts[i], MNT_DETACH);
    wd_nmounts = 0;
    rm_tree(wct_dir);
    wd_stop();
}

const char *wct_path(const char *name)
{
    static char bufs[16][PATH_MAX];
    static unsigned next;
    char *b = bufs[__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % 16];
    path_join(b, PATH_MAX, wct_dir, name);
    return b;
}

const char *wct_mount_tmpfs(const char *name, const char *size_opt)
{
    static char path[PATH_MAX];
    path_join(path, sizeof path, wct_dir, name);
    if (mkdir(path, 0755) != 0)
        return NULL;
    /* A private mount namespace: the mount dies with this process even if
     * it is killed. Without one (threads, no permission) the teardown and
     * the watchdog unmount it. */
    if (unshare(CLONE_NEWNS) == 0)
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s,mode=0755", size_opt);
    if (mount("tmpfs", path, "tmpfs", 0, opts) != 0)
        return NULL;
    if (wd_nmounts < 4)
        path_join(wd_mounts[wd_nmounts++], PATH_MAX, path, NULL);
    wd_send(WD_MOUNT, 0, path);
    return path;
}

int wct_long(void)
{
    const char *s = getenv("WCT_LONG");
    return s && *s && strcmp(s, "0") != 0;
}

/* ---- data ---------------------------------------------------------------- */

unsigned char wct_pattern_byte(off_t off, unsigned seed)
{
    uint64_t x = (uint64_t)off * 2654435761u + (uint64_t)seed * 40503u;
    x ^= x >> 13;
    return (unsigned char)(0x21 + (x % 94));
}

void wct_pattern(void *buf, size_t len, off_t off, unsigned seed)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < len; i++)
        b[i] = wct_pattern_byte(off + (off_t)i, seed);
}

int wct_create(const char *name, size_t len, unsigned seed, int flags)
{
    const char *path = wct_path(name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    if (len) {
        unsigned char *b = malloc(len);
        cr_assert(b);
        wct_pattern(b, len, 0, seed);
        cr_assert_eq(pwrite(fd, b, len, 0), (ssize_t)len, "fill %s", path);
        free(b);
    }
    close(fd);
    fd = open(path, flags | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    return fd;
}

void wct_expect_file(const char *path, const void *want, size_t len)
{
    size_t n;
    unsigned char *d = wct_read_path(path, &n);
    cr_assert_eq(n, len, "%s: %zu bytes, expected %zu", path, n, len);
    cr_assert_eq(memcmp(d, want, len), 0, "%s: other bytes", path);
    free(d);
}

unsigned char *wct_read_path(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    size_t n = (size_t)st.st_size;
    cr_assert(n <= (1u << 30), "%s: %zu bytes: too large to compare", path, n);
    unsigned char *b = malloc(n + 1);
    cr_assert(b);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        cr_assert(r > 0, "read %s: %s", path, r < 0 ? strerror(errno) : "EOF");
        got += (size_t)r;
    }
    close(fd);
    *len = n;
    return b;
}

long wct_find_byte(const void *buf, size_t len, int byte)
{
    const unsigned char *p = memchr(buf, byte, len);
    return p ? (long)(p - (const unsigned char *)buf) : -1;
}

long wct_diff(const void *a, const void *b, size_t len)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < len; i++)
        if (x[i] != y[i])
            return (long)i;
    return -1;
}

/* ---- the cache ------------------------------------------------------------ */

struct wc_cache *wct_cache_open_cfg(struct wc_config *cfg)
{
    if (!cfg->dir) {
        const char *d = wct_path("store");
        mkdir(d, 0755);
        cfg->dir = d;
    }
    struct wc_cache *c = NULL;
    int r = wc_cache_open(&c, cfg);
    cr_assert_eq(r, 0, "wc_cache_open(dir %s, size %zu): %d (%s)", cfg->dir,
                 cfg->size, r, strerror(-r));
    cr_assert(c);
    return c;
}

struct wc_cache *wct_cache_open(size_t size)
{
    static char dir[PATH_MAX];
    path_join(dir, sizeof dir, wct_dir, "store");
    mkdir(dir, 0755);
    struct wc_config cfg = {.size = size ? size : 256 * WCT_PG, .dir = dir};
    return wct_cache_open_cfg(&cfg);
}

struct wc_file *wct_get(struct wc_cache *c, int fd)
{
    int err = 0;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert(f, "wc_file_get(fd %d): NULL, err %d (%s)", fd, err, strerror(-err));
    return f;
}

unsigned char *wct_cache_view(struct wc_file *f, int fd, size_t *len)
{
    off_t size = wc_file_size(f);
    cr_assert(size >= 0 && size <= (1 << 30), "wc_file_size %lld", (long long)size);
    unsigned char *b = malloc((size_t)size + 4096);
    cr_assert(b);
    ssize_t r = wc_pread(f, fd, b, (size_t)size + 4096, 0);
    cr_assert_eq(r, (ssize_t)size,
                 "wc_pread of the whole file (asking %lld bytes past the end) "
                 "returned %zd, i_size is %lld",
                 4096LL, r, (long long)size);
    *len = (size_t)size;
    return b;
}

/* ---- memory with holes ---------------------------------------------------- */

void *wct_edge(size_t n, enum wct_hole hole, unsigned seed)
{
    size_t pages = (n + WCT_PG - 1) / WCT_PG;
    /* readable pages, the hole, and a PROT_NONE page after it so that an
     * unmapped hole is less likely to be filled by a later mapping */
    size_t total = (pages + 2) * WCT_PG;
    /* Far below the mmap area: the kernel hands out the highest free gap
     * that fits, so an unmapped hole here is never filled by a later
     * mapping (the engine's own allocations included). */
    static uintptr_t next = (uintptr_t)1 << 34;
    unsigned char *m = MAP_FAILED;
    for (int tries = 0; tries < 64 && m == MAP_FAILED; tries++) {
        m = mmap((void *)next, total, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        next += (total + ((uintptr_t)1 << 24)) & ~(uintptr_t)(WCT_PG - 1);
    }
    if (m == MAP_FAILED)
        m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    unsigned char *bad = m + pages * WCT_PG;
    cr_assert_eq(mprotect(bad + WCT_PG, WCT_PG, PROT_NONE), 0);
    switch (hole) {
    case WCT_NONE:
        cr_assert_eq(mprotect(bad, WCT_PG, PROT_NONE), 0);
        break;
    case WCT_UNMAPPED:
        cr_assert_eq(munmap(bad, WCT_PG), 0);
        break;
    case WCT_RDONLY:
        cr_assert_eq(mprotect(bad, WCT_PG, PROT_READ), 0);
        break;
    }
    unsigned char *p = bad - n;
    wct_pattern(p, n, 0, seed);
    return p;
}

void *wct_page(int prot)
{
    void *m = mmap(NULL, WCT_PG, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    return m;
}

int wct_mapped(const void *p)
{
    unsigned char v;
    void *pg = (void *)((uintptr_t)p & ~(uintptr_t)(WCT_PG - 1));
    return mincore(pg, WCT_PG, &v) == 0 || errno != ENOMEM;
}

/* ---- the kernel against the cache ----------------------------------------- */

static const char *ename(ssize_t r)
{
    if (r >= 0)
        return "ok";
    const char *s = strerrorname_np((int)-r);
    return s ? s : "?";
}

static off_t ksize(struct wct_pair *p)
{
    struct stat st;
    cr_assert_eq(fstat(p->kfd, &st), 0);
    return st.st_size;
}

void wct_pair_open(struct wct_pair *p, struct wc_cache *c, const char *name,
                   size_t disk_len)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    p->poison = -1;
    char n[PATH_MAX];
    snprintf(n, sizeof n, "%s.k", name);
    path_join(p->kpath, sizeof p->kpath, wct_path(n), NULL);
    p->kfd = wct_create(n, disk_len, 1, O_RDWR);
    p->kafd = open(p->kpath, O_RDWR | O_APPEND | O_CLOEXEC);
    cr_assert(p->kafd >= 0);
    snprintf(n, sizeof n, "%s.c", name);
    path_join(p->cpath, sizeof p->cpath, wct_path(n), NULL);
    p->cfd = wct_create(n, disk_len, 1, O_RDWR);
    p->f = wct_get(c, p->cfd);
}

/* A mismatch: fatal, or in soft mode reported (the test fails) and the
 * pair marked so that later operations on it are skipped. */
#define PAIR_FAIL(p, stop, ...)                                             \
    do {                                                                    \
        if (!(p)->soft)                                                     \
            cr_assert_fail(__VA_ARGS__);                                    \
        cr_expect_fail(__VA_ARGS__);                                        \
        if (stop)                                                           \
            (p)->failed = 1;                                                \
    } while (0)

static int pair_after_write(struct wct_pair *p, ssize_t kr, ssize_t cr,
                            off_t where, off_t size0, off_t pos, int append,
                            const char *what)
{
    if (cr != kr) {
        PAIR_FAIL(p, 1, "%s: the cache returned %zd (%s), the kernel %zd (%s)",
                  what, cr, ename(cr), kr, ename(kr));
        return -1;
    }
    if (cr > 0) {
        off_t want = append ? size0 : pos;
        if (where != want) {
            PAIR_FAIL(p, 1, "%s: *where is %lld, the write started at %lld",
                      what, (long long)where, (long long)want);
            return -1;
        }
    }
    off_t ks = ksize(p), cs = wc_file_size(p->f);
    if (cs != ks) {
        PAIR_FAIL(p, 1, "%s: size after: cache %lld, kernel %lld", what,
                  (long long)cs, (long long)ks);
        return -1;
    }
    return 0;
}

static int pair_size_before(struct wct_pair *p, off_t size0, const char *what)
{
    off_t cs = wc_file_size(p->f);
    if (cs != size0) {
        PAIR_FAIL(p, 1, "%s: size before: cache %lld, kernel %lld", what,
                  (long long)cs, (long long)size0);
        return -1;
    }
    return 0;
}

ssize_t wct_pair_pwrite(struct wct_pair *p, const void *kbuf, const void *cbuf,
                        size_t len, off_t pos, int append, const char *what)
{
    if (p->failed)
        return WCT_SKIPPED;
    off_t size0 = ksize(p);
    if (pair_size_before(p, size0, what))
        return WCT_SKIPPED;
    ssize_t kr = pwrite(append ? p->kafd : p->kfd, kbuf, len, pos);
    if (kr < 0)
        kr = -errno;
    off_t where = -77;
    ssize_t cr = wc_pwrite(p->f, cbuf, len, pos, append, &where);
    if (pair_after_write(p, kr, cr, where, size0, pos, append, what))
        return WCT_SKIPPED;
    return cr;
}

ssize_t wct_pair_pwritev(struct wct_pair *p, const struct iovec *kiov,
                         const struct iovec *ciov, int iovcnt, off_t pos,
                         int append, const char *what)
{
    if (p->failed)
        return WCT_SKIPPED;
    off_t size0 = ksize(p);
    if (pair_size_before(p, size0, what))
        return WCT_SKIPPED;
    ssize_t kr = pwritev(append ? p->kafd : p->kfd, kiov, iovcnt, pos);
    if (kr < 0)
        kr = -errno;
    off_t where = -77;
    ssize_t cr = wc_pwritev(p->f, ciov, iovcnt, pos, append, &where);
    if (pair_after_write(p, kr, cr, where, size0, pos, append, what))
        return WCT_SKIPPED;
    return cr;
}

void wct_pair_put_pattern(struct wct_pair *p, off_t pos, size_t len,
                          unsigned seed, const char *what)
{
    unsigned char *b = malloc(len ? len : 1);
    cr_assert(b);
    wct_pattern(b, len, pos, seed);
    ssize_t r = wct_pair_pwrite(p, b, b, len, pos, 0, what);
    free(b);
    if (r != WCT_SKIPPED && r != (ssize_t)len)
        PAIR_FAIL(p, 1, "%s: plain write of %zu bytes at %lld: %zd", what, len,
                  (long long)pos, r);
}

void wct_pair_truncate(struct wct_pair *p, off_t size, const char *what)
{
    if (p->failed)
        return;
    int kr = ftruncate(p->kfd, size) == 0 ? 0 : -errno;
    int cr = wc_file_truncate(p->f, size);
    if (cr != kr) {
        PAIR_FAIL(p, 1, "%s: wc_file_truncate(%lld) = %d (%s), kernel %d (%s)",
                  what, (long long)size, cr, ename(cr), kr, ename(kr));
        return;
    }
    off_t cs = wc_file_size(p->f), ks = ksize(p);
    if (cs != ks)
        PAIR_FAIL(p, 1, "%s: size after truncate: cache %lld, kernel %lld", what,
                  (long long)cs, (long long)ks);
}

ssize_t wct_pair_pread(struct wct_pair *p, void *buf, size_t len, off_t pos,
                       const char *what)
{
    if (p->failed)
        return WCT_SKIPPED;
    ssize_t kr = pread(p->kfd, buf, len, pos);
    if (kr < 0)
        kr = -errno;
    unsigned char *save = malloc(kr > 0 ? (size_t)kr : 1);
    cr_assert(save);
    if (kr > 0) {
        memcpy(save, buf, (size_t)kr);
        memset(buf, 0x11, (size_t)kr);
    }
    ssize_t cr = wc_pread(p->f, p->cfd, buf, len, pos);
    if (cr != kr) {
        PAIR_FAIL(p, 0, "%s: wc_pread returned %zd (%s), the kernel %zd (%s)",
                  what, cr, ename(cr), kr, ename(kr));
    } else if (kr > 0) {
        long d = wct_diff(buf, save, (size_t)kr);
        if (d >= 0)
            PAIR_FAIL(p, 0, "%s: byte %ld read: cache 0x%02x, kernel 0x%02x",
                      what, d, ((unsigned char *)buf)[d], save[d]);
    }
    free(save);
    return cr;
}

/* Copy up to n bytes out of the iovec (out), or fill them with 0x11. */
static void iov_move(const struct iovec *iov, int iovcnt, unsigned char *flat,
                     size_t n, int out)
{
    for (int i = 0; i < iovcnt && n; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        if (out)
            memcpy(flat, iov[i].iov_base, k);
        else
            memset(iov[i].iov_base, 0x11, k);
        if (flat)
            flat += k;
        n -= k;
    }
}

ssize_t wct_pair_preadv(struct wct_pair *p, const struct iovec *iov,
                        int iovcnt, off_t pos, const char *what)
{
    if (p->failed)
        return WCT_SKIPPED;
    ssize_t kr = preadv(p->kfd, iov, iovcnt, pos);
    if (kr < 0)
        kr = -errno;
    unsigned char *save = malloc(kr > 0 ? (size_t)kr : 1);
    unsigned char *got = malloc(kr > 0 ? (size_t)kr : 1);
    cr_assert(save && got);
    if (kr > 0) {
        iov_move(iov, iovcnt, save, (size_t)kr, 1);
        iov_move(iov, iovcnt, NULL, (size_t)kr, 0);
    }
    ssize_t cr = wc_preadv(p->f, p->cfd, iov, iovcnt, pos);
    if (cr != kr) {
        PAIR_FAIL(p, 0, "%s: wc_preadv returned %zd (%s), the kernel %zd (%s)",
                  what, cr, ename(cr), kr, ename(kr));
    } else if (kr > 0) {
        iov_move(iov, iovcnt, got, (size_t)kr, 1);
        long d = wct_diff(got, save, (size_t)kr);
        if (d >= 0)
            PAIR_FAIL(p, 0, "%s: byte %ld read: cache 0x%02x, kernel 0x%02x",
                      what, d, got[d], save[d]);
    }
    free(save);
    free(got);
    return cr;
}

static void compare_bytes(struct wct_pair *p, const unsigned char *got,
                          size_t glen, const unsigned char *want, size_t wlen,
                          const char *what, const char *whose)
{
    if (p->poison >= 0) {
        long at = wct_find_byte(got, glen, p->poison);
        if (at >= 0) {
            PAIR_FAIL(p, 1, "%s: %s: stale byte 0x%02x at offset %ld", what,
                      whose, p->poison, at);
            return;
        }
    }
    if (glen != wlen) {
        PAIR_FAIL(p, 1, "%s: %s: %zu bytes, the kernel's file %zu", what, whose,
                  glen, wlen);
        return;
    }
    long d = wct_diff(got, want, glen);
    if (d >= 0)
        PAIR_FAIL(p, 1, "%s: %s: offset %ld is 0x%02x, the kernel's file has 0x%02x",
                  what, whose, d, got[d], want[d]);
}

void wct_pair_check(struct wct_pair *p, const char *what)
{
    if (p->failed)
        return;
    off_t cs = wc_file_size(p->f), ks = ksize(p);
    if (cs != ks) {
        PAIR_FAIL(p, 1, "%s: size: cache %lld, kernel %lld", what,
                  (long long)cs, (long long)ks);
        return;
    }
    size_t klen, clen;
    unsigned char *k = wct_read_path(p->kpath, &klen);
    unsigned char *v = wct_cache_view(p->f, p->cfd, &clen);
    compare_bytes(p, v, clen, k, klen, what, "the cache's view");
    free(k);
    free(v);
}

void wct_pair_close(struct wct_pair *p, const char *what)
{
    int failed = p->failed;
    int r = wc_file_put(p->f);
    p->f = NULL;
    if (!failed) {
        if (r != 0) {
            PAIR_FAIL(p, 1, "%s: wc_file_put: %d (%s)", what, r, ename(r));
        } else {
            size_t klen, clen;
            unsigned char *k = wct_read_path(p->kpath, &klen);
            unsigned char *d = wct_read_path(p->cpath, &clen);
            compare_bytes(p, d, clen, k, klen, what, "the file after write-back");
            free(k);
            free(d);
        }
    }
    close(p->cfd);
    close(p->kfd);
    close(p->kafd);
}

/* ---- recording and failing the real calls -------------------------------- */

struct wct_call wct_calls[WCT_MAX_CALLS];
int wct_ncalls;

static struct wc_sys real;           /* libc's entries, saved at start */
static int rec_on;
static dev_t t_dev;
static ino_t t_ino;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned inj_ops;
static int inj_nth, inj_seen, inj_fired, inj_err, inj_short;
static size_t inj_keep;

enum { DO_REAL, DO_FAIL, DO_SHORT };

static int is_target(int fd)
{
    struct stat st;
    return real.fstat(fd, &st) == 0 && st.st_dev == t_dev && st.st_ino == t_ino;
}

static int rec_begin(enum wct_op op, int fd, off_t off, size_t len, int iovcnt,
                     int *action)
{
    *action = DO_REAL;
    if (!rec_on || !is_target(fd))
        return -1;
    pthread_mutex_lock(&rec_lock);
    int i = wct_ncalls < WCT_MAX_CALLS ? wct_ncalls++ : -1;
    if (i >= 0)
        wct_calls[i] = (struct wct_call){.op = op, .fd = fd, .off = off,
                                         .len = len, .iovcnt = iovcnt};
    if (inj_nth && (op & inj_ops) && ++inj_seen == inj_nth) {
        *action = inj_short ? DO_SHORT : DO_FAIL;
        inj_fired = 1;
        if (i >= 0)
            wct_calls[i].injected = 1;
    }
    pthread_mutex_unlock(&rec_lock);
    return i;
}

static ssize_t rec_end(int i, ssize_t ret)
{
    int e = errno;
    if (i >= 0) {
        pthread_mutex_lock(&rec_lock);
        wct_calls[i].ret = ret;
        wct_calls[i].err = ret < 0 ? e : 0;
        pthread_mutex_unlock(&rec_lock);
    }
    errno = e;
    return ret;
}

static ssize_t fail_now(int i)
{
    errno = inj_err;
    return rec_end(i, -1);
}

static ssize_t w_pwrite(int fd, const void *b, size_t n, off_t off)
{
    int act;
    int i = rec_begin(WCT_PWRITE, fd, off, n, 1, &act);
    if (act == DO_FAIL)
        return fail_now(i);
    if (act == DO_SHORT && inj_keep < n)
        n = inj_keep;
    return rec_end(i, real.pwrite(fd, b, n, off));
}

/* pwritev and pwritev2 (the engine appends with RWF_APPEND): one recorder,
 * both counted as WCT_PWRITEV. */
static ssize_t real_writev(int fd, const struct iovec *iov, int cnt, off_t off,
                           int flags)
{
    return flags ? real.pwritev2(fd, iov, cnt, off, flags)
                 : real.pwritev(fd, iov, cnt, off);
}

static ssize_t w_writev_flags(int fd, const struct iovec *iov, int cnt,
                              off_t off, int flags)
{
    size_t total = 0;
    for (int k = 0; k < cnt && iov; k++)
        total += iov[k].iov_len;
    int act;
    int i = rec_begin(WCT_PWRITEV, fd, off, total, cnt, &act);
    if (act == DO_FAIL)
        return fail_now(i);
    if (act == DO_SHORT && inj_keep < total && cnt > 0 && cnt <= 1024) {
        struct iovec cut[1024];
        size_t left = inj_keep;
        int m = 0;
        for (; m < cnt && left; m++) {
            cut[m] = iov[m];
            if (cut[m].iov_len > left)
                cut[m].iov_len = left;
            left -= cut[m].iov_len;
        }
        return rec_end(i, m ? real_writev(fd, cut, m, off, flags) : 0);
    }
    return rec_end(i, real_writev(fd, iov, cnt, off, flags));
}

static ssize_t w_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    return w_writev_flags(fd, iov, cnt, off, 0);
}

static ssize_t w_pwritev2(int fd, const struct iovec *iov, int cnt, off_t off,
                          int flags)
{
    return w_writev_flags(fd, iov, cnt, off, flags);
}

static ssize_t w_pread(int fd, void *b, size_t n, off_t off)
{
    int act;
    int i = rec_begin(WCT_PREAD, fd, off, n, 1, &act);
    if (act == DO_FAIL)
        return fail_now(i);
    return rec_end(i, real.pread(fd, b, n, off));
}

static ssize_t w_preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
    size_t total = 0;
    for (int k = 0; k < cnt && iov; k++)
        total += iov[k].iov_len;
    int act;
    int i = rec_begin(WCT_PREADV, fd, off, total, cnt, &act);
    if (act == DO_FAIL)
        return fail_now(i);
    return rec_end(i, real.preadv(fd, iov, cnt, off));
}

static int w_ftruncate(int fd, off_t len)
{
    int act;
    int i = rec_begin(WCT_FTRUNCATE, fd, len, 0, 1, &act);
    if (act != DO_REAL)
        return (int)fail_now(i);
    return (int)rec_end(i, real.ftruncate(fd, len));
}

static int w_fsync(int fd)
{
    int act;
    int i = rec_begin(WCT_FSYNC, fd, 0, 0, 1, &act);
    if (act != DO_REAL)
        return (int)fail_now(i);
    return (int)rec_end(i, real.fsync(fd));
}

static int w_fdatasync(int fd)
{
    int act;
    int i = rec_begin(WCT_FDATASYNC, fd, 0, 0, 1, &act);
    if (act != DO_REAL)
        return (int)fail_now(i);
    return (int)rec_end(i, real.fdatasync(fd));
}

static int w_fallocate(int fd, int mode, off_t off, off_t len)
{
    int act;
    int i = rec_begin(WCT_FALLOCATE, fd, off, (size_t)len, 1, &act);
    if (act != DO_REAL)
        return (int)fail_now(i);
    return (int)rec_end(i, real.fallocate(fd, mode, off, len));
}

void wct_rec_start(int target_fd)
{
    if (!rec_on)
        real = wc_sys;
    struct stat st;
    cr_assert_eq(real.fstat(target_fd, &st), 0, "wct_rec_start: fstat");
    pthread_mutex_lock(&rec_lock);
    t_dev = st.st_dev;
    t_ino = st.st_ino;
    wct_ncalls = 0;
    inj_nth = inj_seen = inj_fired = 0;
    rec_on = 1;
    pthread_mutex_unlock(&rec_lock);
    wc_sys.pwrite = w_pwrite;
    wc_sys.pwritev = w_pwritev;
    wc_sys.pwritev2 = w_pwritev2;
    wc_sys.pread = w_pread;
    wc_sys.preadv = w_preadv;
    wc_sys.ftruncate = w_ftruncate;
    wc_sys.fsync = w_fsync;
    wc_sys.fdatasync = w_fdatasync;
    wc_sys.fallocate = w_fallocate;
}

void wct_rec_stop(void)
{
    if (!rec_on)
        return;
    wc_sys.pwrite = real.pwrite;
    wc_sys.pwritev = real.pwritev;
    wc_sys.pwritev2 = real.pwritev2;
    wc_sys.pread = real.pread;
    wc_sys.preadv = real.preadv;
    wc_sys.ftruncate = real.ftruncate;
    wc_sys.fsync = real.fsync;
    wc_sys.fdatasync = real.fdatasync;
    wc_sys.fallocate = real.fallocate;
    rec_on = 0;
}

void wct_rec_reset(void)
{
    pthread_mutex_lock(&rec_lock);
    wct_ncalls = 0;
    inj_seen = inj_fired = 0;
    pthread_mutex_unlock(&rec_lock);
}

void wct_inject_fail(unsigned ops, int nth, int err)
{
    pthread_mutex_lock(&rec_lock);
    inj_ops = ops;
    inj_nth = nth;
    inj_err = err;
    inj_short = 0;
    inj_seen = inj_fired = 0;
    pthread_mutex_unlock(&rec_lock);
}

void wct_inject_short(unsigned ops, int nth, size_t keep)
{
    pthread_mutex_lock(&rec_lock);
    inj_ops = ops;
    inj_nth = nth;
    inj_keep = keep;
    inj_short = 1;
    inj_seen = inj_fired = 0;
    pthread_mutex_unlock(&rec_lock);
}

int wct_injected(void)
{
    return __atomic_load_n(&inj_fired, __ATOMIC_SEQ_CST);
}

int wct_count(unsigned ops)
{
    int n = 0;
    pthread_mutex_lock(&rec_lock);
    for (int i = 0; i < wct_ncalls; i++)
        n += (wct_calls[i].op & ops) != 0;
    pthread_mutex_unlock(&rec_lock);
    return n;
}

static const char *op_name(enum wct_op op)
{
    switch (op) {
    case WCT_PWRITE: return "pwrite";
    case WCT_PWRITEV: return "pwritev";
    case WCT_FTRUNCATE: return "ftruncate";
    case WCT_FSYNC: return "fsync";
    case WCT_FDATASYNC: return "fdatasync";
    case WCT_FALLOCATE: return "fallocate";
    case WCT_PREAD: return "pread";
    case WCT_PREADV: return "preadv";
    }
    return "?";
}

const char *wct_rec_dump(void)
{
    static char out[8192];
    size_t n = 0;
    out[0] = 0;
    pthread_mutex_lock(&rec_lock);
    for (int i = 0; i < wct_ncalls && n + 200 < sizeof out; i++) {
        struct wct_call *k = &wct_calls[i];
        n += (size_t)snprintf(out + n, sizeof out - n,
                              "\n  #%d %s fd=%d off=%lld len=%zu iov=%d ret=%zd%s%s",
                              i, op_name(k->op), k->fd, (long long)k->off,
                              k->len, k->iovcnt, k->ret,
                              k->ret < 0 ? " " : "",
                              k->ret < 0 ? strerrorname_np(k->err) : "");
        if (k->injected)
            n += (size_t)snprintf(out + n, sizeof out - n, " (injected)");
    }
    if (wct_ncalls && n + 200 >= sizeof out)
        snprintf(out + n, sizeof out - n, "\n  ... %d calls in all", wct_ncalls);
    pthread_mutex_unlock(&rec_lock);
    return out;
}
