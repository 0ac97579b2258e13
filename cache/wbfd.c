/*
 * wbfd.c - the engine's own descriptors: where they are placed (the
 * shim's fd table hides them, wc_config.fds), and the one per cached file
 * that write-back goes through (f->wb_fd).
 *
 * Invariants:
 *   (1) Every descriptor the engine keeps was placed by c->fds->place and
 *       is closed by wc_engine_fd_close, which tells c->fds->closed: the shim's
 *       table never holds a number the engine no longer owns.
 *   (2) f->wb_fd is never closed while the program has the file open
 *       through a description it shares (closing any descriptor of a file
 *       drops the process's POSIX locks on it), except where the program
 *       itself closes or changes that description (wc_file_put_fd,
 *       wc_file_unshare), when the kernel would drop them anyway, and
 *       when the process stops caching for good (wc_cache_fds_let_go): a
 *       clean file whose POSIX locks the program holds none of loses the
 *       engine's descriptors then, since no later close of the program's
 *       would (its calls pass through): the write-back descriptor, a
 *       writer in the kernel's eyes, made an exec of a script the
 *       program wrote and closed fail with ETXTBSY.
 *   (3) f->wb_fd writes at chosen offsets: a dup of the program's
 *       description when RWF_NOAPPEND overrides O_APPEND per write
 *       (f->wb_src >= 0), else a description of its own without O_APPEND.
 * Locks: f->lock covers every use and change of f->wb_fd (a batch written
 * in the background uses the number it was posted with, and is settled
 * before any change: async.c (1)); c->lock covers the store's descriptor.
 */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cache_int.h"
#include "wcache/str.h"
#include "wcache/sys.h"

/* Without a shim: anywhere, close-on-exec; nobody to tell. */
static int default_place(int fd)
{
    int d = wc_sys.fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return d < 0 ? -errno : d;
}

static void default_closed(int fd)
{
    (void)fd;
}

static int default_open(const char *path, int flags, mode_t mode)
{
    int e = errno;
    int fd = wc_sys.open(path, flags | O_CLOEXEC, mode);
    if (fd < 0)
        fd = -errno;
    errno = e;
    return fd;
}

const struct wc_fd_ops wc_engine_fds_default = {default_place, default_closed,
                                                default_open};

/* Close a descriptor the engine kept, and say so. */
__attribute__((cold)) void wc_engine_fd_close(struct wc_cache *c, int fd)
{
    wc_sys.close(fd);
    c->fds->closed(fd);
}

/* Is fd on a file system whose server keeps an open handle with the
 * program's O_APPEND (and appends every write it gets)? */
static int server_appends(int fd)
{
    struct statfs sf;
    if (wc_sys.fstatfs(fd, &sf) != 0)
        return 1;                       /* cannot tell: the safe answer */
    switch ((unsigned long)sf.f_type) {
    case 0x65735546:                    /* FUSE */
    case 0x01021997:                    /* 9p */
    case 0xFF534D42:                    /* CIFS */
    case 0xFE534D42:                    /* SMB2 */
    case 0x517B:                        /* SMB */
        return 1;
    default:
        return 0;
    }
}

/* Can the write-back descriptor be a dup of the program's `fd`, whose
 * status flags are `fl`? */
int wc_wb_can_share(struct wc_cache *c, int fd, int fl)
{
    return c->noappend && (!(fl & O_APPEND) || !server_appends(fd));
}

/* A duplicate of fd kept as one of ours (c->fds->place: out of the
 * program's way). Returns it or -errno. */
static int dup_high(struct wc_cache *c, int fd)
{
    return c->fds->place(fd);
}

/* A description of our own for fd's file, write-only, without O_APPEND,
 * kept as one of ours (c->fds->open: its first, short-lived number meets
 * none of the program's calls). Its temporary descriptor is closed, which
 * drops the process's POSIX locks on the file: callers choose when.
 * Returns it or -errno. */
int wc_wb_reopen(struct wc_cache *c, int fd)
{
    char path[64];
    wc_str_procfd(path, sizeof path, fd);
    return c->fds->open(path, O_WRONLY | O_NOCTTY, 0);
}

/* Our own descriptor for write-back: out of the program's way (high
 * numbers), close-on-exec, and never closed while the program has the file
 * open: closing any descriptor of a file drops the process's POSIX locks
 * on it. With RWF_NOAPPEND (`share`) it is a dup of the program's
 * descriptor (one call; O_APPEND is overridden per write). Not for a
 * descriptor opened O_APPEND on FUSE, 9p or SMB: their server opened its
 * own handle with O_APPEND and appends every write it gets, whatever the
 * offset. Then, as without RWF_NOAPPEND, a reopen through /proc without
 * O_APPEND, moved high (the one close it needs happens as the file is
 * first cached; see README, limits).
 *
 * The write-back descriptor for the program's `fd` (status flags `fl`):
 * shared when `share`, else a reopen, else (no /proc) a dup when the
 * description allows writing at chosen offsets. Returns it or -errno. */
int wc_wb_open(struct wc_cache *c, int fd, int fl, int share)
{
    if (share)
        return dup_high(c, fd);
    int wb = wc_wb_reopen(c, fd);
    if (wb >= 0)
        return wb;
    if (fl & O_APPEND)
        return -EACCES;         /* cannot write back at chosen offsets */
    return dup_high(c, fd);
}

/* Is fd's open file description the one f->wb_fd shares? */
static int shares_description(struct wc_file *f, int fd)
{
    if (f->wb_src < 0)
        return 0;
    long r = wc_sys.syscall(SYS_kcmp, (long)getpid(), (long)getpid(),
                            (long)KCMP_FILE, (long)fd, (long)f->wb_fd);
    if (r >= 0)
        return r == 0;
    return fd == f->wb_src;         /* no kcmp: the best guess we have */
}

/* Move f's write-back to a description of its own (a reopen through
 * /proc). Only at a moment when the program itself closes a descriptor of
 * the file, or changes one, so that the closes here, which drop the
 * process's POSIX locks on the file, change nothing the program sees.
 * Caller holds f->lock. */
static void own_description(struct wc_file *f)
{
    wc_async_settle(f);     /* async.c (1): a batch may be writing on it */
    int t = wc_wb_reopen(f->cache, f->wb_fd);
    if (t < 0)
        return;
    wc_engine_fd_close(f->cache, f->wb_fd);
    f->wb_fd = t;
    f->wb_src = -1;
}

/* The next live file from slot *i on, returned with its lock held
 * (f->lock covers every use of its descriptors), *i past it; NULL at the
 * end. */
static struct wc_file *next_live_locked(struct wc_cache *c, uint32_t *i)
{
    for (uint32_t hi = wc_files_hi(c); *i < hi; (*i)++) {
        struct wc_file *f = &c->files[*i];
        if (!__atomic_load_n(&f->live, __ATOMIC_RELAXED))
            continue;
        wc_file_lock(f);
        if (f->live) {
            (*i)++;
            return f;
        }
        wc_blk_unlock(&f->lock);
    }
    return NULL;
}

/* The live file whose write-back descriptor is fd, returned with its lock
 * held, or NULL. */
static struct wc_file *file_by_wb_fd(struct wc_cache *c, int fd)
{
    struct wc_file *f;
    for (uint32_t i = 0; (f = next_live_locked(c, &i));) {
        if (f->wb_fd == fd)
            return f;
        wc_blk_unlock(&f->lock);
    }
    return NULL;
}

int wc_cache_fd_move(struct wc_cache *c, int fd)
{
    if (fd < 0)
        return -ENOENT;
    if (!wc_engine_enter())
        return -EDEADLK;
    int r = -ENOENT;
    wc_lock(&c->lock);              /* covers every use of the store's fd */
    if (c->store.fd == fd) {
        int n = c->fds->place(fd);
        if (n >= 0) {
            c->store.fd = n;
            wc_engine_fd_close(c, fd);
        }
        r = n < 0 ? n : 0;
    }
    wc_unlock(&c->lock);
    struct wc_file *f = r == -ENOENT ? file_by_wb_fd(c, fd) : NULL;
    if (f) {
        wc_async_settle(f); /* async.c (1): a batch may be writing on fd */
        int n = c->fds->place(fd);
        if (n >= 0) {
            f->wb_fd = n;           /* same description: wb_src stays */
            wc_engine_fd_close(c, fd);
        }
        r = n < 0 ? n : 0;
        wc_blk_unlock(&f->lock);
    }
    wc_engine_leave();
    return r;
}

int wc_cache_fd_owner(struct wc_cache *c, int fd, dev_t *dev, ino_t *ino)
{
    if (fd < 0)
        return -ENOENT;
    if (!wc_engine_enter())
        return -EDEADLK;
    int r = -ENOENT;
    wc_lock(&c->lock);
    if (c->store.fd == fd)
        r = -EBUSY;
    wc_unlock(&c->lock);
    struct wc_file *f = r == -ENOENT ? file_by_wb_fd(c, fd) : NULL;
    if (f) {
        *dev = (dev_t)f->slot->dev;
        *ino = (ino_t)f->slot->ino;
        r = 0;
        wc_blk_unlock(&f->lock);
    }
    wc_engine_leave();
    return r;
}

void wc_cache_fds_let_go(struct wc_cache *c,
                         int (*locked)(dev_t dev, ino_t ino, void *arg),
                         void *arg)
{
    if (!wc_engine_enter())
        return;
    struct wc_file *f;
    for (uint32_t i = 0; (f = next_live_locked(c, &i));) {
        if (!wc_file_dirty(f) &&
            !locked((dev_t)f->slot->dev, (ino_t)f->slot->ino, arg)) {
            wc_async_settle(f);             /* async.c (1) */
            if (f->wb_fd >= 0)
                wc_engine_fd_close(c, f->wb_fd);
            if (f->seek_fd >= 0)
                wc_engine_fd_close(c, f->seek_fd);
            f->wb_fd = f->seek_fd = -1;
        }
        wc_blk_unlock(&f->lock);
    }
    wc_engine_leave();
}

void wc_cache_names_apart(struct wc_cache *c)
{
    __atomic_store_n(&c->names_apart, 1, __ATOMIC_RELEASE);
}

int wc_cache_renamed(struct wc_cache *c, int names, struct wc_file_id *lost,
                     int max)
{
    if (!wc_engine_enter())
        return 0;
    struct wc_file *f;
    char buf[sizeof f->slot->path], link[64];
    int nlost = 0;
    for (uint32_t i = 0; (f = next_live_locked(c, &i));) {
        struct wc_fslot *s = f->slot;
        ssize_t n = f->wb_fd < 0 ? -1
                    : wc_sys.readlink(wc_str_procfd(link, sizeof link,
                                                    f->wb_fd),
                                      buf, sizeof buf - 1);
        /* No name (unlinked: "... (deleted)"): noted, the recorded one
         * stays (format.h (10)); one too long for the slot, or the
         * process's own view of names: the recorded one stays. The
         * suffix says only that the name the descriptor was opened by
         * went: a file with a link left is not gone (a replay dropped
         * its bytes, probe X), but no replay can find it either. */
        int gone = n > 0 && wc_name_gone(buf, (size_t)n);
        struct stat st;
        if (gone && wc_sys.fstat(f->wb_fd, &st) == 0 && st.st_nlink > 0) {
            gone = 0;
            if (nlost < max) {
                lost[nlost].dev = s->dev;
                lost[nlost].ino = s->ino;
            }
            nlost++;
        }
        if (n > 0)
            s->gone = (uint32_t)gone;
        if (names && !gone && n > 0 && (size_t)n < sizeof buf - 1 &&
            buf[0] == '/' &&
            ((uint32_t)n != s->path_len || memcmp(buf, s->path, (size_t)n))) {
            uint32_t was = s->busy;
            s->busy = 2;                        /* format.h (5) */
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            memcpy(s->path, buf, (size_t)n);
            s->path[n] = 0;
            s->path_len = (uint32_t)n;
            s->id_sum = wc_fmt_slot_sum(s);
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            s->busy = was;
        }
        wc_blk_unlock(&f->lock);
    }
    wc_engine_leave();
    return nlost < max ? nlost : max;
}

void wc_cache_each_file_fd(struct wc_cache *c,
                           void (*fn)(int fd, dev_t dev, ino_t ino,
                                      void *arg),
                           void *arg)
{
    if (!wc_engine_enter())
        return;
    struct wc_file *f;
    for (uint32_t i = 0; (f = next_live_locked(c, &i));) {
        if (f->wb_fd >= 0)
            fn(f->wb_fd, (dev_t)f->slot->dev, (ino_t)f->slot->ino, arg);
        if (f->seek_fd >= 0)
            fn(f->seek_fd, (dev_t)f->slot->dev, (ino_t)f->slot->ino, arg);
        wc_blk_unlock(&f->lock);
    }
    wc_engine_leave();
}

int wc_file_put_fd(struct wc_file *f, int fd)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    wc_lock(&f->cache->lock);           /* refs is the cache lock's */
    int others = f->refs > 1;
    wc_unlock(&f->cache->lock);
    /* The program closes that description now (and with it its POSIX
     * locks on the file). */
    if (others && fd >= 0 && shares_description(f, fd))
        own_description(f);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return wc_file_put(f);
}

int wc_file_unshare(struct wc_file *f, int fd)
{
    if (!wc_engine_enter())
        return -EDEADLK;
    wc_file_lock(f);
    int r = wc_flush_locked(f, WC_WHY_OTHER);
    if (fd >= 0 && shares_description(f, fd))
        own_description(f);
    wc_blk_unlock(&f->lock);
    wc_engine_leave();
    return r;
}

