/*
 * execlocks.c - POSIX record locks across exec.
 *
 * The kernel keeps a process's fcntl record locks across execve, and drops
 * those on a file when the process closes any descriptor of it. Exec
 * closes the close-on-exec ones: so a lock survives exec exactly when no
 * descriptor of its file is close-on-exec. The engine's own descriptors
 * of a cached file are close-on-exec (the new image must not inherit
 * them), and would drop such a lock at every exec.
 *
 * Invariant:
 *   (1) Before an exec (proc.c), every engine descriptor of a file on
 *       which this process holds a POSIX lock (/proc/locks), and none of
 *       whose tracked descriptors is close-on-exec, loses FD_CLOEXEC: the
 *       new image inherits it, and the lock stays as the kernel would keep
 *       it. The new image holds one more descriptor of the file than it
 *       would without the shim, for as long as it lives. If the exec
 *       fails, the flags come back (wc_exec_failed).
 * Runs in the thread that execs, at depth 1, after the consistency point
 * that wrote every file back.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"

#define KEEP_MAX 64

struct found {                     /* descriptors, or locked files */
    int n;
    int fd[KEEP_MAX];
    dev_t dev[KEEP_MAX];
    ino_t ino[KEEP_MAX];
};

static int g_kept[KEEP_MAX];       /* FD_CLOEXEC cleared for this exec */
static int g_nkept;

static void collect(int fd, dev_t dev, ino_t ino, void *arg)
{
    struct found *fo = arg;
    if (fo->n < KEEP_MAX) {
        fo->fd[fo->n] = fd;
        fo->dev[fo->n] = dev;
        fo->ino[fo->n] = ino;
        fo->n++;
    }
}

/* One line of /proc/locks: is it a POSIX lock held (not waited for) by
 * `pid` on a file, and which? "1: POSIX  ADVISORY  WRITE 123 08:02:4567
 * 0 EOF"; a waiter's line has "->" after the number. */
static int posix_held(const char *line, long pid, dev_t *dev, ino_t *ino)
{
    char type[16], adv[16], rw[16];
    long who;
    unsigned maj, min;
    unsigned long long i;
    const char *p = line;
    while (*p && *p != ':')
        p++;
    if (*p != ':')
        return 0;
    p++;
    while (*p == ' ')
        p++;
    if (p[0] == '-' && p[1] == '>')
        return 0;
    if (sscanf(p, "%15s %15s %15s %ld %x:%x:%llu", type, adv, rw, &who, &maj,
               &min, &i) != 7 ||
        strcmp(type, "POSIX") || who != pid)
        return 0;
    *dev = makedev(maj, min);
    *ino = (ino_t)i;
    return 1;
}

/* The files this process holds POSIX locks on, from /proc/locks (which
 * lists every lock of the system), read once, in pieces. */
static void our_locks(struct found *lk, long pid)
{
    lk->n = 0;
    int fd = REAL(open)("/proc/locks", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t r = wc_k_read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = 0;
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = 0;
            if (lk->n < KEEP_MAX &&
                posix_held(start, pid, &lk->dev[lk->n], &lk->ino[lk->n]))
                lk->n++;
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
        if (have == sizeof buf - 1)
            have = 0;               /* a line that long is not a lock's */
    }
    wc_k_close(fd);
}

WC_ONCE
void wc_exec_keep_locks(void)
{
    struct wc_cache *c = wc_cachep;
    g_nkept = 0;
    if (!c)
        return;
    struct found fo = {0}, lk;
    wc_cache_each_file_fd(c, collect, &fo);
    if (!fo.n)
        return;
    wc_fd_window_open(0);               /* ownfd.c invariant (7) */
    our_locks(&lk, (long)getpid());
    wc_fd_window_close();
    for (int k = 0; k < fo.n; k++) {
        int locked = 0;
        for (int i = 0; i < lk.n && !locked; i++)
            locked = lk.dev[i] == fo.dev[k] && lk.ino[i] == fo.ino[k];
        if (!locked || wc_file_fd_cloexec(fo.dev[k], fo.ino[k]))
            continue;
        int fl = wc_k_fcntl(fo.fd[k], F_GETFD, 0);
        if (fl >= 0 && (fl & FD_CLOEXEC) &&
            wc_k_fcntl(fo.fd[k], F_SETFD, fl & ~FD_CLOEXEC) == 0)
            g_kept[g_nkept++] = fo.fd[k];
    }
}

WC_ONCE
void wc_exec_failed(void)
{
    int e = errno;
    for (int k = 0; k < g_nkept; k++)
        if (wc_fd_is_internal(g_kept[k]))   /* still the engine's */
            wc_k_fcntl(g_kept[k], F_SETFD, FD_CLOEXEC);
    g_nkept = 0;
    errno = e;
}
