/*
 * real.c - fill the table of real libc functions (wc_sys) with
 * dlsym(RTLD_NEXT, name), early and safely.
 *
 * Invariants:
 *   (1) No entry of wc_sys is ever NULL once wc_real_init() has started:
 *       every slot is first given a fallback (a raw system call, or a stub
 *       failing with ENOSYS), then replaced by the dlsym result. So a call
 *       that arrives while dlsym itself runs (dlsym may call calloc, a
 *       malloc replacement may call write...) passes straight through.
 *   (2) A required symbol that libc lacks is reported once on stderr and
 *       the shim runs pass-through (wc_real_init returns 0); never a crash.
 *   (3) The table holds the real functions only: the descriptors the
 *       engine keeps are announced by the engine itself (wc_config.fds,
 *       placed and marked by ownfd.c), not recognised here.
 */
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/raw.h"

static WC_TLS int resolving;   /* this thread is inside wc_real_init */

/* ---- fallbacks: used before dlsym answers, or when a symbol is missing */

/* A system call without libc (syscall() itself is interposed: syscall.c),
 * x86_64 only, as the rest of wcache. -1 and errno on failure. */
static long raw6(long n, long a, long b, long c, long d, long e, long f)
{
    long r = wc_raw_syscall(n, a, b, c, d, e, f);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}
#define SC_(n, a, b, c, d, e, f, ...)                                      \
    raw6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
         (long)(f))
#define SC(...) SC_(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

static long fb_syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    return raw6(n, a, b, c, d, e, f);
}

static int fb_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)SC(SYS_ioctl, fd, req, arg);
}
static ssize_t fb_read(int fd, void *b, size_t n)
{ return SC(SYS_read, fd, b, n); }
static ssize_t fb_write(int fd, const void *b, size_t n)
{ return SC(SYS_write, fd, b, n); }
static ssize_t fb_pread(int fd, void *b, size_t n, off_t o)
{ return SC(SYS_pread64, fd, b, n, o); }
static ssize_t fb_pwrite(int fd, const void *b, size_t n, off_t o)
{ return SC(SYS_pwrite64, fd, b, n, o); }
static ssize_t fb_readv(int fd, const struct iovec *v, int c)
{ return SC(SYS_readv, fd, v, c); }
static ssize_t fb_writev(int fd, const struct iovec *v, int c)
{ return SC(SYS_writev, fd, v, c); }
static ssize_t fb_preadv(int fd, const struct iovec *v, int c, off_t o)
{ return SC(SYS_preadv, fd, v, c, o, 0); }
static ssize_t fb_pwritev(int fd, const struct iovec *v, int c, off_t o)
{ return SC(SYS_pwritev, fd, v, c, o, 0); }
static int fb_open(const char *p, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = (fl & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return SC(SYS_openat, AT_FDCWD, p, fl, m);
}
static int fb_openat(int dfd, const char *p, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = (fl & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return SC(SYS_openat, dfd, p, fl, m);
}
static int fb_close(int fd) { return SC(SYS_close, fd); }
static off_t fb_lseek(int fd, off_t o, int w)
{ return SC(SYS_lseek, fd, o, w); }
static int fb_fstat(int fd, struct stat *st)
{ return SC(SYS_fstat, fd, st); }
static int fb_stat(const char *p, struct stat *st)
{ return SC(SYS_newfstatat, AT_FDCWD, p, st, 0); }
static int fb_lstat(const char *p, struct stat *st)
{ return SC(SYS_newfstatat, AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW); }
static int fb_fstatat(int d, const char *p, struct stat *st, int fl)
{ return SC(SYS_newfstatat, d, p, st, fl); }
static int fb_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return SC(SYS_fcntl, fd, cmd, arg);
}
static int fb_dup(int fd) { return SC(SYS_dup, fd); }
static int fb_dup2(int a, int b)
{
    if (a == b)
        return SC(SYS_fcntl, a, F_GETFD) < 0 ? -1 : b;
    return SC(SYS_dup3, a, b, 0);
}
static int fb_dup3(int a, int b, int f) { return SC(SYS_dup3, a, b, f); }
static int fb_ftruncate(int fd, off_t l) { return SC(SYS_ftruncate, fd, l); }
static int fb_fsync(int fd) { return SC(SYS_fsync, fd); }
static int fb_fdatasync(int fd) { return SC(SYS_fdatasync, fd); }
static int fb_close_range(unsigned a, unsigned b, int f)
{ return SC(SYS_close_range, a, b, f); }
static void *fb_mmap(void *a, size_t n, int p, int f, int fd, off_t o)
{ return (void *)SC(SYS_mmap, a, n, p, f, fd, o); }
static int fb_munmap(void *a, size_t n) { return SC(SYS_munmap, a, n); }
static int fb_statx(int d, const char *p, int f, unsigned m, struct statx *x)
{ return SC(SYS_statx, d, p, f, m, x); }
static ssize_t fb_pwritev2(int fd, const struct iovec *v, int c, off_t o,
                           int f)
{ return SC(SYS_pwritev2, fd, v, c, o, 0, f); }
static ssize_t fb_preadv2(int fd, const struct iovec *v, int c, off_t o,
                          int f)
{ return SC(SYS_preadv2, fd, v, c, o, 0, f); }
static ssize_t fb_copy_file_range(int a, off_t *ao, int b, off_t *bo,
                                  size_t n, unsigned f)
{ return SC(SYS_copy_file_range, a, ao, b, bo, n, f); }
static int fb_syncfs(int fd) { return SC(SYS_syncfs, fd); }
static void fb_exit(int st)
{
    for (;;)
        SC(SYS_exit_group, st);
}
static long fb_enosys(void)
{
    errno = ENOSYS;
    return -1;
}
static void *fb_enosys_ptr(void)
{
    errno = ENOSYS;
    return NULL;
}

/* The fallback of each slot, by its place in the table (no name search
 * at start-up: comparing every name with every fallback's cost 110,000
 * instructions of /bin/true's start under the shim). */
#define SLOT(name) (offsetof(struct wc_sys, name) / sizeof(void (*)(void)))
#define FB(name, fn) [SLOT(name)] = {(void *)(fn), 0}
#define FB_OPT(name, fn) [SLOT(name)] = {(void *)(fn), 1}
static const struct {
    void *fn;          /* NULL: fb_enosys */
    int optional;      /* libc may lack it: no message */
} fallbacks[WC_SYS_COUNT] = {
    FB(read, fb_read),           FB(write, fb_write),
    FB(pread, fb_pread),         FB(pwrite, fb_pwrite),
    FB(readv, fb_readv),         FB(writev, fb_writev),
    FB(preadv, fb_preadv),       FB(pwritev, fb_pwritev),
    FB(open, fb_open),           FB(openat, fb_openat),
    FB(close, fb_close),         FB(lseek, fb_lseek),
    FB(fstat, fb_fstat),         FB(stat, fb_stat),
    FB(lstat, fb_lstat),         FB(fstatat, fb_fstatat),
    FB(fcntl, fb_fcntl),         FB(dup, fb_dup),
    FB(dup2, fb_dup2),           FB(dup3, fb_dup3),
    FB(ftruncate, fb_ftruncate), FB(fsync, fb_fsync),
    FB(fdatasync, fb_fdatasync), FB(mmap, fb_mmap),
    FB(munmap, fb_munmap),       FB(_exit, fb_exit),
    FB(_Exit, fb_exit),          FB(exit, fb_exit),
    FB(quick_exit, fb_exit),
    FB(syscall, fb_syscall),     FB(ioctl, fb_ioctl),
    /* functions returning a pointer fail with NULL */
    FB(fopen, fb_enosys_ptr),    FB(freopen, fb_enosys_ptr),
    FB(fdopen, fb_enosys_ptr),   FB(popen, fb_enosys_ptr),
    FB(getcwd, fb_enosys_ptr),
    /* optional: newer or older than some glibc */
    FB_OPT(close_range, fb_close_range), FB_OPT(statx, fb_statx),
    FB_OPT(pwritev2, fb_pwritev2),       FB_OPT(preadv2, fb_preadv2),
    FB_OPT(copy_file_range, fb_copy_file_range),
    FB_OPT(syncfs, fb_syncfs),   FB_OPT(renameat2, NULL),
    FB_OPT(closefrom, NULL),  FB_OPT(execveat, NULL),
    FB_OPT(execvpe, NULL),    FB_OPT(__fxstat, NULL),
    FB_OPT(__xstat, NULL),    FB_OPT(__lxstat, NULL),
    FB_OPT(__fxstatat, NULL), FB_OPT(_Fork, NULL),
};

/* ---- resolution ------------------------------------------------------ */

/* kcall.h (K4): the shim makes its pass-through calls bare only when
 * the functions RTLD_NEXT found for them all lie in libc, the object that
 * holds gnu_get_libc_version, and none in a library preloaded after the
 * shim (_dl_find_object: a lookup in the loader's sorted table of objects,
 * not dladdr's walk of a symbol table). */
int wc_kcall_libc;

WC_ONCE
static int kcall_next_is_libc(void)
{
    struct dl_find_object libc, o;
    if (_dl_find_object((void *)gnu_get_libc_version, &libc) != 0)
        return 0;
#define KC(name)                                                           \
    (_dl_find_object((void *)wc_sys.name, &o) == 0 &&                      \
     o.dlfo_link_map == libc.dlfo_link_map)
    return KC(write) && KC(pwrite) && KC(read) && KC(pread) &&
           KC(openat) && KC(close) && KC(fstat) && KC(stat) && KC(lstat) &&
           KC(fstatat) && KC(lseek) && KC(fcntl);
#undef KC
}

WC_ONCE
int wc_real_init(void)
{
    static int state;       /* 0 not started, 1 running, 2 done */
    static int ok = 1;
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 2)
        return ok;
    if (resolving)          /* re-entered from inside dlsym: fallbacks */
        return 0;
    int z = 0;
    if (!__atomic_compare_exchange_n(&state, &z, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2)
            SC(SYS_sched_yield);
        return ok;
    }
    resolving = 1;
    void **slot = (void **)&wc_sys;
    for (size_t i = 0; i < WC_SYS_COUNT; i++) {
        void *fb = fallbacks[i].fn ? fallbacks[i].fn : (void *)fb_enosys;
        if (!slot[i])
            __atomic_store_n(&slot[i], fb, __ATOMIC_RELEASE);
    }
    char missing[512];
    size_t ml = 0;
    missing[0] = 0;
    for (size_t i = 0; i < WC_SYS_COUNT; i++) {
        void *p = dlsym(RTLD_NEXT, wc_sys_names[i]);
        if (p) {
            __atomic_store_n(&slot[i], p, __ATOMIC_RELEASE);
        } else if (!fallbacks[i].optional) {
            ok = 0;
            int n = snprintf(missing + ml, sizeof missing - ml, " %s",
                             wc_sys_names[i]);
            if (n > 0 && (size_t)n < sizeof missing - ml)
                ml += (size_t)n;
        }
    }
    resolving = 0;
    __atomic_store_n(&wc_kcall_libc, ok && kcall_next_is_libc(),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&state, 2, __ATOMIC_RELEASE);
    if (!ok) {
        char msg[640];
        int n = snprintf(msg, sizeof msg,
                         "wcache: libc lacks required function(s):%s; "
                         "running without the cache\n", missing);
        if (n > 0)
            fb_write(2, msg, (size_t)n < sizeof msg ? (size_t)n
                                                    : sizeof msg - 1);
    }
    return ok;
}

void *wc_next_fn(void **slot, const char *name)
{
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (unlikely(!p)) {
        p = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    }
    return p;
}
