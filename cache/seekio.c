/*
 * seekio.c - positional reads and writes with an lseek fallback where a
 * seccomp filter refuses the positional calls (invariants in seekio.h).
 * Shared by the engine (store.c, errors.c) and the replay (replay.c, in
 * the guard and `wcache recover` as well as in the library).
 */
#include <errno.h>
#include <unistd.h>

#include "seekio.h"
#include "wcache/sys.h"

int wc_refused(int err)
{
    return err == EPERM || err == ENOSYS;
}

ssize_t wc_seek_write(int fd, const void *buf, size_t n, off_t off)
{
    if (wc_sys.lseek(fd, off, SEEK_SET) < 0)
        return -1;
    return wc_sys.write(fd, buf, n);
}

ssize_t wc_pwrite_own(int fd, const void *buf, size_t n, off_t off,
                      int *refused)
{
    if (!refused || !__atomic_load_n(refused, __ATOMIC_RELAXED)) {
        int saved = errno;
        ssize_t w = wc_sys.pwrite(fd, buf, n, off);
        if (w >= 0 || !wc_refused(errno))
            return w;
        if (refused)
            __atomic_store_n(refused, 1, __ATOMIC_RELAXED);
        errno = saved;              /* the refusal is not the answer */
    }
    return wc_seek_write(fd, buf, n, off);
}

ssize_t wc_pread_own(int fd, void *buf, size_t n, off_t off, int *refused)
{
    if (!refused || !__atomic_load_n(refused, __ATOMIC_RELAXED)) {
        int saved = errno;
        ssize_t r = wc_sys.pread(fd, buf, n, off);
        if (r >= 0 || !wc_refused(errno))
            return r;
        if (refused)
            __atomic_store_n(refused, 1, __ATOMIC_RELAXED);
        errno = saved;
    }
    if (wc_sys.lseek(fd, off, SEEK_SET) < 0)
        return -1;
    return wc_sys.read(fd, buf, n);
}
