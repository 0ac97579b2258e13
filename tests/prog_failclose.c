/*
 * prog_failclose.c - a program whose close (or fsync) reports a write-back
 * error (test_shim_errors.c), and what it and another process do with the
 * file afterwards.
 *
 *   prog_failclose FILE CTL MODE
 *
 * Every mode writes 40 records of 100 bytes ('a'.. 'z', then again; each
 * ends in a newline; 400 in mode enospc, more than the page tmpfs gave
 * the first ones) through an O_RDWR | O_CREAT | O_TRUNC descriptor.
 * On fuse_failfs (every mode but enospc), CTL is created after the first
 * 30 records (the server fails every write from then on), and removed
 * after the close (the server works again).
 *
 * Another process (/bin/sh without LD_PRELOAD) is started first, since a
 * fork later is a consistency point of its own, and runs the commands it
 * is sent, one per line, answering "ok" to each.
 *
 * MODE:
 *   reopen        open FILE again with O_WRONLY | O_APPEND, write
 *                 "appended\n", print "size N" (fstat), close
 *   other         the other process rewrites FILE after the close
 *                 ("rewritten by another process\n"); then sync() (a
 *                 consistency point: the shim retries what it kept)
 *   other-failing the same while the server still fails (its truncation
 *                 works, its write does not), then 3 s without a call
 *                 (the shim's deadline flusher retries meanwhile); then
 *                 CTL goes and sync()
 *   self-chmod    while the server still fails, the program chmods FILE
 *                 itself (its ctime moves); then CTL goes and sync()
 *   self-trunc    the same, the program opening FILE with O_TRUNC
 *   self-unlink   the same, the program unlinking FILE
 *   late-clobber  the server works again, the other process rewrites
 *                 FILE, the server fails again (CTL), sync(); then the
 *                 program appends "appended\n" through a new O_APPEND
 *                 descriptor (it fails), CTL goes, sync()
 *   other-mv      the other process renames FILE to FILE.renamed and
 *                 makes it mode 0600; then sync()
 *   other-reopen  the other process rewrites FILE; then the program opens
 *                 it O_RDWR | O_APPEND, prints "read N: TEXT" (what pread
 *                 at 0 returns), writes "appended\n", prints "size N"
 *   append-fsync  the descriptor is O_APPEND too, and fsync takes the
 *                 close's place; after CTL goes, "appended\n" is written
 *                 through it: "size N" (fstat), "offset N" (lseek), close
 *   osync         fsync takes the close's place; with the server still
 *                 failing the program opens FILE again O_WRONLY | O_SYNC
 *                 (a description the shim passes through), CTL goes, it
 *                 writes "written through O_SYNC\n" there at offset 1000
 *                 (in record 11, which the shim caches) and
 *                 closes it, then closes the first descriptor; sync()
 *   sfr           sync_file_range at offset -1 (EINVAL), then
 *                 sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER) takes
 *                 the close's place; CTL goes, fsync, close
 *   xattr         as enospc, with fsync in the close's place; then the
 *                 program sets an extended attribute of FILE (fsetxattr),
 *                 CTL goes, fsync, close
 *   xattr-raw     the same through syscall(SYS_fsetxattr)
 *   enospc        FILE on a small tmpfs, CTL a file beside it: after the
 *                 40 records the other process fills the disk with CTL,
 *                 the close fails (under the shim: ENOSPC), CTL goes,
 *                 then sync()
 * Each result that is not a plain success is printed ("write K -> -1
 * Input/output error", "close -> ..."), then "done"; "records 400" first
 * in mode enospc.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static int to_other = -1, from_other = -1;
static pid_t other_pid = -1;

static void other_start(void)
{
    int go[2], back[2];
    if (pipe(go) != 0 || pipe(back) != 0 || (other_pid = fork()) < 0) {
        perror("pipe, fork");
        exit(1);
    }
    if (other_pid == 0) {
        dup2(go[0], 0);
        dup2(back[1], 1);
        close(go[1]);
        close(back[0]);
        unsetenv("LD_PRELOAD");
        execl("/bin/sh", "sh", "-c",
              "while read -r c; do eval \"$c\" && echo ok || echo failed; "
              "done", (char *)NULL);
        _exit(127);
    }
    close(go[0]);
    close(back[1]);
    to_other = go[1];
    from_other = back[0];
}

/* Have the other process run one shell command, and wait for it. */
static void other(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 1, fmt, ap);
    va_end(ap);
    cmd[n++] = '\n';
    char ok[3];
    if (write(to_other, cmd, (size_t)n) != n || read(from_other, ok, 3) != 3 ||
        memcmp(ok, "ok\n", 3) != 0) {
        fprintf(stderr, "the other process failed: %s", cmd);
        exit(1);
    }
}

static void other_stop(void)
{
    int status;
    close(to_other);
    if (waitpid(other_pid, &status, 0) != other_pid || status != 0) {
        fprintf(stderr, "the other process ended badly\n");
        exit(1);
    }
}

static void touch(const char *path)
{
    int c = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (c < 0 || close(c) != 0) {
        perror(path);
        exit(1);
    }
}

static void show(const char *what, long r)
{
    if (r < 0 || errno)
        printf("%s -> %ld%s%s\n", what, r, errno ? " " : "",
               errno ? strerror(errno) : "");
}

/* Append "appended\n" through fd, print "size N" (fstat; and "offset N"
 * with `offset`), close fd. */
static void append_line(int fd, int offset)
{
    struct stat st;
    errno = 0;
    show("append", write(fd, "appended\n", 9));
    if (fstat(fd, &st) != 0) {
        perror("fstat");
        exit(1);
    }
    printf("size %lld\n", (long long)st.st_size);
    if (offset)
        printf("offset %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    errno = 0;
    show("close", close(fd));
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: prog_failclose FILE CTL MODE\n");
        return 2;
    }
    const char *path = argv[1], *ctl = argv[2], *mode = argv[3];
    int xattr_raw = !strcmp(mode, "xattr-raw");
    int xattr = !strcmp(mode, "xattr") || xattr_raw;
    int enospc = !strcmp(mode, "enospc") || xattr;
    int appfs = !strcmp(mode, "append-fsync");
    int osync = !strcmp(mode, "osync");
    int sfr = !strcmp(mode, "sfr");
    char rec[100];
    unlink(ctl);
    other_start();
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | (appfs ? O_APPEND : 0),
                  0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    int nrec = enospc ? 400 : 40;
    if (nrec != 40)
        printf("records %d\n", nrec);
    for (int i = 0; i < nrec; i++) {
        if (i == 30 && !enospc)
            touch(ctl);
        memset(rec, 'a' + i % 26, sizeof rec);
        rec[sizeof rec - 1] = '\n';
        errno = 0;
        ssize_t w = write(fd, rec, sizeof rec);
        if (w != (ssize_t)sizeof rec || errno)
            printf("write %d -> %zd %s\n", i + 1, w, strerror(errno));
    }
    if (enospc)
        other("dd if=/dev/zero of='%s' bs=4k 2>/dev/null; true", ctl);
    errno = 0;
    if (xattr) {
        show("fsync", fsync(fd));
        errno = 0;
        show("fsetxattr", xattr_raw ? syscall(SYS_fsetxattr, fd, "user.wct",
                                              "1", 1, 0)
                                    : fsetxattr(fd, "user.wct", "1", 1, 0));
    } else if (sfr) {
        show("sync_file_range -1",      /* EINVAL, before anything */
             sync_file_range(fd, -1, 0, SYNC_FILE_RANGE_WAIT_BEFORE |
                                            SYNC_FILE_RANGE_WAIT_AFTER));
        errno = 0;
        show("sync_file_range",
             sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE |
                                           SYNC_FILE_RANGE_WRITE |
                                           SYNC_FILE_RANGE_WAIT_AFTER));
    } else if (appfs || osync) {
        show("fsync", fsync(fd));
    } else {
        int r = close(fd);
        printf("close -> %d%s%s\n", r, r ? " " : "", r ? strerror(errno) : "");
    }
    int failing = !strcmp(mode, "other-failing") ||
                  !strncmp(mode, "self-", 5) || osync || sfr;
    if (!failing && unlink(ctl) != 0) {
        perror(ctl);
        return 1;
    }
    if (!strcmp(mode, "reopen") || appfs) {
        if (!appfs && (fd = open(path, O_WRONLY | O_APPEND)) < 0) {
            perror(path);
            return 1;
        }
        append_line(fd, appfs);
    } else if (!strcmp(mode, "other")) {
        other("printf 'rewritten by another process\\n' > '%s'", path);
        sync();
    } else if (!strcmp(mode, "other-failing")) {
        other("printf 'rewritten by another process\\n' > '%s'; true", path);
        sleep(3);
        if (unlink(ctl) != 0) {
            perror(ctl);
            return 1;
        }
        sync();
    } else if (!strcmp(mode, "self-chmod") || !strcmp(mode, "self-trunc") ||
               !strcmp(mode, "self-unlink")) {
        int fd2 = -1;
        if (mode[5] == 'c'   ? chmod(path, 0600) != 0
            : mode[5] == 'u' ? unlink(path) != 0
                             : (fd2 = open(path, O_WRONLY | O_TRUNC)) < 0 ||
                                   close(fd2) != 0) {
            perror(path);
            return 1;
        }
        if (unlink(ctl) != 0) {
            perror(ctl);
            return 1;
        }
        sync();
    } else if (!strcmp(mode, "late-clobber")) {
        other("printf 'rewritten by another process\\n' > '%s'", path);
        touch(ctl);
        sync();
        if ((fd = open(path, O_WRONLY | O_APPEND)) < 0) {
            perror(path);
            return 1;
        }
        errno = 0;
        show("append", write(fd, "appended\n", 9));
        errno = 0;
        show("close", close(fd));
        if (unlink(ctl) != 0) {
            perror(ctl);
            return 1;
        }
        sync();
    } else if (!strcmp(mode, "other-mv")) {
        other("mv '%s' '%s.renamed' && chmod 600 '%s.renamed'", path, path,
              path);
        sync();
    } else if (!strcmp(mode, "other-reopen")) {
        other("printf 'rewritten by another process\\n' > '%s'", path);
        if ((fd = open(path, O_RDWR | O_APPEND)) < 0) {
            perror(path);
            return 1;
        }
        char buf[64];
        ssize_t n = pread(fd, buf, sizeof buf, 0);
        printf("read %zd: %.*s", n, n > 0 ? (int)n : 0, buf);
        append_line(fd, 0);
    } else if (osync) {
        int o = open(path, O_WRONLY | O_SYNC);
        if (o < 0 || unlink(ctl) != 0) {
            perror(path);
            return 1;
        }
        errno = 0;
        show("O_SYNC pwrite",
             pwrite(o, "written through O_SYNC\n", 23, 1000));
        errno = 0;
        show("O_SYNC close", close(o));
        errno = 0;
        show("close", close(fd));
        sync();
    } else if (sfr) {
        if (unlink(ctl) != 0) {
            perror(ctl);
            return 1;
        }
        errno = 0;
        show("fsync", fsync(fd));
        errno = 0;
        show("close", close(fd));
    } else if (xattr) {
        errno = 0;
        show("fsync", fsync(fd));
        errno = 0;
        show("close", close(fd));
    } else if (enospc) {
        sync();
    } else {
        fprintf(stderr, "prog_failclose: unknown mode %s\n", mode);
        return 2;
    }
    other_stop();
    printf("done\n");
    return 0;
}
