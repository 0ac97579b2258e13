/*
 * so_below.c - a library preloaded after the shim that makes its calls the
 * way real interposers do, through functions the shim exports too:
 *   - mmap through syscall(SYS_mmap), as tcmalloc's does: the shim's
 *     syscall() must not hand SYS_mmap back to mmap (the two called each
 *     other until the stack ran out, in every program);
 *   - fsync and fdatasync ask fcntl(F_GETFD) whether the descriptor is
 *     open first, as eatmydata's do: the shim's write-back calls them on
 *     its own descriptors, which its fcntl must not deny to it (EBADF
 *     came back to the program's fsync);
 *   - fstat is __fxstat, as fakeroot's is (a jump), which is the shim's
 *     too: the engine's own fstat of its descriptor (the size another
 *     process gave the file) comes back there and must not be hidden.
 * Each then does the call itself (mmap) or calls the next one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

static int next_sync(const char *name, int fd)
{
    if (fcntl(fd, F_GETFD) == -1)
        return -1;
    int (*f)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    if (!f)
        abort();
    return f(fd);
}

int fsync(int fd) { return next_sync("fsync", fd); }
int fdatasync(int fd) { return next_sync("fdatasync", fd); }

int __fxstat(int ver, int fd, struct stat *st)
{
    int (*f)(int, int, struct stat *) =
        (int (*)(int, int, struct stat *))dlsym(RTLD_NEXT, "__fxstat");
    if (!f)
        abort();
    return f(ver, fd, st);
}

int fstat(int fd, struct stat *st) { return __fxstat(1, fd, st); }
