/*
 * so_next.c - a library preloaded after the shim that wraps the calls
 * shim/kcall.h may make bare (as fakeroot wraps the stat family): each
 * wrapper counts its calls and calls libc's function. At exit the counts
 * go to the file named by SO_NEXT_OUT, one "name count" line each, for
 * test_shim_points.c: the shim must still reach every one of them
 * (kcall.h (K4)).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { N_WRITE, N_PWRITE, N_READ, N_PREAD, N_OPENAT, N_CLOSE, N_FSTAT,
       N_STAT, N_LSTAT, N_FSTATAT, N_LSEEK, N_FCNTL, N_COUNT };
static const char *const names[N_COUNT] = {
    "write", "pwrite", "read", "pread", "openat", "close", "fstat",
    "stat", "lstat", "fstatat", "lseek", "fcntl"};
static long counts[N_COUNT];
static void *next[N_COUNT];

static void *real(int i)
{
    __atomic_add_fetch(&counts[i], 1, __ATOMIC_RELAXED);
    void *p = __atomic_load_n(&next[i], __ATOMIC_ACQUIRE);
    if (!p) {
        p = dlsym(RTLD_NEXT, names[i]);
        if (!p)
            abort();
        __atomic_store_n(&next[i], p, __ATOMIC_RELEASE);
    }
    return p;
}

ssize_t write(int fd, const void *b, size_t n)
{
    return ((ssize_t(*)(int, const void *, size_t))real(N_WRITE))(fd, b, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t o)
{
    return ((ssize_t(*)(int, const void *, size_t, off_t))real(N_PWRITE))(
        fd, b, n, o);
}

ssize_t read(int fd, void *b, size_t n)
{
    return ((ssize_t(*)(int, void *, size_t))real(N_READ))(fd, b, n);
}

ssize_t pread(int fd, void *b, size_t n, off_t o)
{
    return ((ssize_t(*)(int, void *, size_t, off_t))real(N_PREAD))(fd, b, n,
                                                                    o);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = va_arg(ap, mode_t);
    va_end(ap);
    return ((int (*)(int, const char *, int, ...))real(N_OPENAT))(
        dirfd, path, flags, m);
}

int close(int fd)
{
    return ((int (*)(int))real(N_CLOSE))(fd);
}

int fstat(int fd, struct stat *st)
{
    return ((int (*)(int, struct stat *))real(N_FSTAT))(fd, st);
}

int stat(const char *path, struct stat *st)
{
    return ((int (*)(const char *, struct stat *))real(N_STAT))(path, st);
}

int lstat(const char *path, struct stat *st)
{
    return ((int (*)(const char *, struct stat *))real(N_LSTAT))(path, st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return ((int (*)(int, const char *, struct stat *, int))real(
        N_FSTATAT))(dirfd, path, st, flags);
}

off_t lseek(int fd, off_t off, int whence)
{
    return ((off_t(*)(int, off_t, int))real(N_LSEEK))(fd, off, whence);
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return ((int (*)(int, int, ...))real(N_FCNTL))(fd, cmd, arg);
}

__attribute__((destructor)) static void so_next_report(void)
{
    const char *out = getenv("SO_NEXT_OUT");
    if (!out)
        return;
    FILE *f = fopen(out, "w");
    if (!f)
        return;
    for (int i = 0; i < N_COUNT; i++)
        fprintf(f, "%s %ld\n", names[i],
                __atomic_load_n(&counts[i], __ATOMIC_RELAXED));
    fclose(f);
}
