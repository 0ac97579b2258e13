/*
 * fuse_failfs.c - a small FUSE file system for the error tests: the files
 * of a flat backing directory, passed through, with writes that fail with
 * EIO on demand.
 *
 *   fuse_failfs BACKING MOUNTPOINT LIMIT CTLFILE
 *
 * LIMIT (bytes, 0: none): the file system holds at most LIMIT bytes of
 *   file data (sizes rounded up to 4 KiB); a write that would need more
 *   fails with EIO (a full disk that says EIO instead of ENOSPC), and
 *   statfs reports the room that is left, truthfully.
 * CTLFILE ("-": none): while this path exists, every write fails with EIO
 *   (a server whose storage went away: only write-back can meet it when a
 *   cache sits in front, since statfs still reports room); while
 *   CTLFILE.slow exists, every read waits, 3 s at most (a server that
 *   stops answering: a reader stays inside its read; requests queue
 *   behind it, the server being single-threaded).
 *
 * Runs in the foreground, single-threaded; SIGTERM unmounts and exits.
 * Not a general file system: one directory level, no links, no xattrs.
 */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static char backing[4096];
static unsigned long long limit;
static const char *ctlfile;
static char slowfile[4200];

#define BS 4096ull

static void real_path(char *out, size_t n, const char *path)
{
    snprintf(out, n, "%s%s", backing, path);
}

static unsigned long long round_up(unsigned long long n)
{
    return (n + BS - 1) / BS * BS;
}

/* Bytes of file data in the backing directory, rounded to blocks. */
static unsigned long long used_bytes(void)
{
    unsigned long long used = 0;
    DIR *d = opendir(backing);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
            used += round_up((unsigned long long)st.st_size);
    }
    closedir(d);
    return used;
}

static int fs_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi)
{
    int r = fi ? fstat((int)fi->fh, st) : ({
        char p[4200];
        real_path(p, sizeof p, path);
        lstat(p, st);
    });
    return r < 0 ? -errno : 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    (void)off;
    (void)fi;
    (void)flags;
    char p[4200];
    real_path(p, sizeof p, path);
    DIR *d = opendir(p);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)))
        if (fill(buf, e->d_name, NULL, 0, 0))
            break;
    closedir(d);
    return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    char p[4200];
    real_path(p, sizeof p, path);
    /* The kernel computes append offsets itself and sends them; O_TRUNC
     * comes here (libfuse asks for atomic O_TRUNC) and is the open's. */
    int fd = open(p, fi->flags & ~(O_APPEND | O_CREAT | O_EXCL));
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    char p[4200];
    real_path(p, sizeof p, path);
    int fd = open(p, (fi->flags & ~O_APPEND) | O_CREAT, mode);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    return 0;
}

static int fs_read(const char *path, char *buf, size_t n, off_t off,
                   struct fuse_file_info *fi)
{
    (void)path;
    for (int i = 0; ctlfile && i < 30 && access(slowfile, F_OK) == 0; i++)
        usleep(100000);
    ssize_t r = pread((int)fi->fh, buf, n, off);
    return r < 0 ? -errno : (int)r;
}

static int fs_write(const char *path, const char *buf, size_t n, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    if (ctlfile && access(ctlfile, F_OK) == 0)
        return -EIO;
    if (limit) {
        struct stat st;
        if (fstat((int)fi->fh, &st) < 0)
            return -errno;
        unsigned long long old = round_up((unsigned long long)st.st_size);
        unsigned long long end = round_up((unsigned long long)off + n);
        if (end > old && used_bytes() + (end - old) > limit)
            return -EIO;
    }
    ssize_t r = pwrite((int)fi->fh, buf, n, off);
    return r < 0 ? -errno : (int)r;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    int r;
    if (fi) {
        r = ftruncate((int)fi->fh, size);
    } else {
        char p[4200];
        real_path(p, sizeof p, path);
        r = truncate(p, size);
    }
    return r < 0 ? -errno : 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close((int)fi->fh);
    return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    int r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
    return r < 0 ? -errno : 0;
}

static int fs_unlink(const char *path)
{
    char p[4200];
    real_path(p, sizeof p, path);
    return unlink(p) < 0 ? -errno : 0;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
    char p[4200], q[4200];
    if (flags)
        return -EINVAL;
    real_path(p, sizeof p, from);
    real_path(q, sizeof q, to);
    return rename(p, q) < 0 ? -errno : 0;
}

static int fs_utimens(const char *path, const struct timespec ts[2],
                      struct fuse_file_info *fi)
{
    int r;
    if (fi) {
        r = futimens((int)fi->fh, ts);
    } else {
        char p[4200];
        real_path(p, sizeof p, path);
        r = utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
    }
    return r < 0 ? -errno : 0;
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int r;
    if (fi) {
        r = fchmod((int)fi->fh, mode);
    } else {
        char p[4200];
        real_path(p, sizeof p, path);
        r = chmod(p, mode);
    }
    return r < 0 ? -errno : 0;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
    (void)path;
    if (statvfs(backing, sv) < 0)
        return -errno;
    if (limit) {
        unsigned long long used = used_bytes();
        unsigned long long left = used < limit ? limit - used : 0;
        sv->f_bsize = sv->f_frsize = BS;
        sv->f_blocks = limit / BS;
        sv->f_bfree = sv->f_bavail = left / BS;
    }
    return 0;
}

static const struct fuse_operations ops = {
    .getattr = fs_getattr,
    .readdir = fs_readdir,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .truncate = fs_truncate,
    .release = fs_release,
    .fsync = fs_fsync,
    .unlink = fs_unlink,
    .rename = fs_rename,
    .utimens = fs_utimens,
    .chmod = fs_chmod,
    .statfs = fs_statfs,
};

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s BACKING MOUNTPOINT LIMIT CTLFILE\n",
                argv[0]);
        return 2;
    }
    if (!realpath(argv[1], backing))
        return 2;
    limit = strtoull(argv[3], NULL, 0);
    ctlfile = strcmp(argv[4], "-") ? argv[4] : NULL;
    if (ctlfile)
        snprintf(slowfile, sizeof slowfile, "%s.slow", ctlfile);
    char *fargv[] = {argv[0], argv[2], "-f", "-s", "-o", "fsname=failfs",
                     NULL};
    return fuse_main(6, fargv, &ops, NULL);
}
