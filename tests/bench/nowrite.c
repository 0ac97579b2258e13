/*
 * nowrite.c - a preloaded write() that does nothing, for `make bench`:
 * write() on any descriptor above 2 returns its count at once, without
 * a system call or a copy. A program run with it does all its own work
 * (starting, opening, formatting what it writes, its stdio or PerlIO
 * layers) but none of writing: the floor of any cache inside the
 * process, which must at least copy the bytes and write them back. The
 * perl rows on FUSE measure their ceiling with it (the kernel's time
 * over this one).
 */
#include <dlfcn.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (fd > 2)
        return (ssize_t)n;
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT,
                                                              "write");
    return real ? real(fd, buf, n) : -1;
}
