/*
 * prog_coherence.c - scenarios for routes to a file that bypass the libc
 * write family (issue 6, items 2-4), run by test_shim_coherence.c without
 * and with the shim:
 *
 *   prog_coherence SCENARIO DIR
 *
 *   raw_data    raw syscall() forms of every data, offset and size call on
 *               cached descriptors, between ordinary (cached) calls
 *   raw_fd      raw opens, dups, fcntl, flock, close, close_range
 *   raw_fork    raw fork and clone(SIGCHLD): the child writes through the
 *               shared description
 *   raw_exit_group, raw_exit, raw_exit_thread
 *               the process ends by a raw exit_group, a raw exit of its
 *               only thread, or raw exits of its two threads
 *   pthread_exit  main leaves by pthread_exit, the other thread returns
 *   private     MAP_PRIVATE mappings of a file that is being written
 *   rwf         pwritev2 and preadv2 with each of the 32 flag bits alone
 *               on a cached file: each call's answer, the offset, the bytes
 *   errno       errno on success: set to a sentinel before every call,
 *               printed after it, including writes from partly faulting
 *               memory that return a short count
 *   reserve     a description shared with stdio (installed on 2: its
 *               offset reserved with lseek): counts past what user space
 *               holds (EFAULT, never a copy of the memory after the
 *               buffer), writes at and across the file system's largest
 *               offset (a short count, EFBIG)
 *   handle      open_by_handle_at with O_TRUNC of a file with cached bytes
 *   signal      writes, then a signal to another process, by every call
 *               that sends one: the receiver looks at the file's size
 *   sigro       a signal handler that interrupts the shim writes through a
 *               read-only description of a cached file (EBADF)
 *   inhapp      descriptors inherited from a shell without the shim, one
 *               plain and one O_APPEND on the same file (`prog 3>f 5>>f`):
 *               thousands of lines through 3, then one through 5, one
 *               more through 3
 *   clone       glibc's clone() as fork and as vfork: the child writes
 *               through the parent's cached description and a file of
 *               its own, and returns, _exits or execs a shell
 *   clone_files, clone_files_raw, clone_vm
 *               a child sharing the table and not the memory (glibc's
 *               clone, the raw call) or the memory and not the table:
 *               it closes the parent's cached descriptor and opens
 *               another file
 *   unshare_thread, unshare_range, unshare_raw
 *               a thread takes a table of its own (unshare, close_range
 *               with CLOSE_RANGE_UNSHARE, the raw call), closes the main
 *               thread's cached descriptor in it and opens another file
 *   unshare_solo  the only thread takes a table of its own while the
 *               flusher runs, then caches more files
 *   namespaces, namespaces_raw
 *               after caching, a mount namespace of its own (a new file
 *               written there), setns back to the first, then a user
 *               namespace of its own (unshare, or the raw call), writing
 *               on: the kernel refuses the last two to a process with a
 *               second thread, such as the shim's flusher
 *   execoff, execoff_seccomp
 *               a script written and a file locked with fcntl, then
 *               caching stops for good (a failed exec; a seccomp filter
 *               that allows everything); the script's last descriptor is
 *               closed and a child execs it (ETXTBSY while any writer is
 *               open), another child asks whether the lock is still held
 *   raw_attr    raw fchmodat2, setxattrat, removexattrat (AT_EMPTY_PATH:
 *               "" and an unreadable path) and fsetxattr on a cached file
 *   changed_after_fsync
 *               another process truncates and extends a file the program
 *               wrote and synced; the program reads it, writes on
 *   appended_by_another
 *               another process appends to or truncates a file the
 *               program appends to (O_APPEND) between its runs of
 *               appends, and during one; the program's offsets, reads,
 *               a pwrite into the run and a truncation after it
 *   setfl_by_child
 *               a child sets O_APPEND on the description it shares with
 *               the program and moves the offset back; the program writes
 *   inhown      the same two inherited descriptors (3 plain, 5 O_APPEND)
 *               while the program caches the file through a descriptor
 *               of its own
 *   unlinked    files with no name left (unlinked, a memfd) written
 *               through one descriptor and read through another the shim
 *               may not know of
 *   bypassopen  a description the shim passes through (O_SYNC, O_DIRECT,
 *               a stdio stream; F_SETFL O_DIRECT) made during another's
 *               first writes, before the file is cached; streams opened
 *               before the file is opened and written
 *   dlopen      dlopen and dlmopen of a library just written, not closed
 *   untracked   descriptors libc opens (mkstemp, memfd_create) and
 *               inherited ones, read through another number of the
 *               description or another description of the file
 *   passfd      descriptors sent to another process over a socket
 *               (SCM_RIGHTS: sendmsg, syscall(SYS_sendmsg), sendmmsg),
 *               cached, O_APPEND, and sent before their first write; the
 *               receiver writes and reads through them, and through one
 *               of a file it caches itself too; bad messages
 *
 * Protocol (stdout, one line each; stdin carries the test's answers):
 *   OUT text          compared between the runs
 *   CHECK label path  at a consistency point: the test reads `path` itself
 *                     (not under the shim) and records size and hash; the
 *                     program waits for the answer.
 * Every call prints its return value and errno, errno being set to a
 * sentinel before it, so a success that changes errno shows. Descriptor
 * numbers are never printed (the shim may hold descriptors of its own).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/openat2.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

#define SENTINEL 4242          /* errno before every call */

static const char *dir;

static void say(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(1, line, (size_t)n) != n)
        _exit(111);
}

static char *path(const char *name)
{
    static char buf[8][4096];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

/* Ask the test to read `name` (another process's view). */
static void check(const char *label, const char *name)
{
    say("CHECK %s %s", label, path(name));
    char c;
    if (read(0, &c, 1) != 1)
        _exit(112);
}

/* Run `expr` with errno set to the sentinel; print result and errno. */
#define CALL(label, expr)                                                  \
    do {                                                                   \
        errno = SENTINEL;                                                  \
        long r_ = (long)(expr);                                            \
        int e_ = errno;                                                    \
        say("OUT %s -> %ld errno=%d", (label), r_, e_);                    \
    } while (0)

/* The same, for a call that returns a value this program keeps. */
#define KEEP(var, label, expr)                                             \
    do {                                                                   \
        errno = SENTINEL;                                                  \
        var = (expr);                                                      \
        int e_ = errno;                                                    \
        say("OUT %s -> %ld errno=%d", (label), (long)(var), e_);           \
    } while (0)

static char buf[1 << 20];

/* What this process sees of `fd`: offset, size, end, and every byte. */
static void state(const char *label, int fd)
{
    struct stat st;
    off_t cur = lseek(fd, 0, SEEK_CUR);
    off_t end = lseek(fd, 0, SEEK_END);
    lseek(fd, cur, SEEK_SET);
    long size = fstat(fd, &st) == 0 ? (long)st.st_size : -1;
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    say("OUT state %s: offset=%lld end=%lld size=%ld read=%zd hash=%016"
        PRIx64, label, (long long)cur, (long long)end, size, n,
        wct_hash(buf, n > 0 ? (size_t)n : 0));
}

static void fill(char *p, int c, size_t n)
{
    memset(p, c, n);
}

static int xopen(const char *name, int flags)
{
    int fd = open(path(name), flags, 0644);
    if (fd < 0) {
        say("OUT fatal open %s errno=%d", name, errno);
        _exit(100);
    }
    return fd;
}

/* ---- raw syscall() forms of the data calls ------------------------------ */

static void scen_raw_data(void)
{
    char a[4096], rd[4096];
    int fd = xopen("a", O_RDWR | O_CREAT | O_TRUNC);
    int fg = xopen("g", O_RDWR | O_CREAT | O_TRUNC);
    fill(a, 'A', 1000);
    CALL("write 1000", write(fd, a, 1000));
    fill(a, 'B', 100);
    CALL("raw pwrite64 100@200", syscall(SYS_pwrite64, fd, a, 100, 200));
    fill(a, 'C', 50);
    CALL("raw write 50", syscall(SYS_write, fd, a, 50));
    state("after raw writes", fd);
    CALL("raw lseek 10 SET", syscall(SYS_lseek, fd, 10, SEEK_SET));
    CALL("write 5", write(fd, "DDDDD", 5));
    CALL("raw lseek 0 CUR", syscall(SYS_lseek, fd, 0, SEEK_CUR));
    CALL("raw lseek 0 END", syscall(SYS_lseek, fd, 0, SEEK_END));
    CALL("raw lseek bad whence", syscall(SYS_lseek, fd, 0, 77));
    CALL("raw lseek 300 SET", syscall(SYS_lseek, fd, 300, SEEK_SET));
    memset(rd, 0, sizeof rd);
    CALL("raw read 100", syscall(SYS_read, fd, rd, 100));
    say("OUT read hash %016" PRIx64, wct_hash(rd, 100));
    CALL("raw pread64 60@190", syscall(SYS_pread64, fd, rd, 60, 190));
    say("OUT pread hash %016" PRIx64, wct_hash(rd, 60));
    struct iovec v[3] = {{rd, 10}, {rd + 10, 0}, {rd + 20, 30}};
    CALL("raw readv", syscall(SYS_readv, fd, v, 3));
    CALL("raw preadv @195", syscall(SYS_preadv, fd, v, 3, 195, 0));
    CALL("raw preadv2 @-1", syscall(SYS_preadv2, fd, v, 3, -1, 0, 0));
    CALL("raw preadv2 @5", syscall(SYS_preadv2, fd, v, 3, 5, 0, 0));
    CALL("raw readv huge count", syscall(SYS_readv, fd, v, 1L << 32 | 1));
    say("OUT reads hash %016" PRIx64, wct_hash(rd, 50));
    state("after raw reads", fd);
    fill(a, 'E', 64);
    struct iovec w[3] = {{a, 7}, {NULL, 0}, {a + 7, 9}};
    CALL("raw writev", syscall(SYS_writev, fd, w, 3));
    CALL("raw pwritev @500", syscall(SYS_pwritev, fd, w, 3, 500, 0));
    CALL("raw pwritev2 @-1", syscall(SYS_pwritev2, fd, w, 3, -1, 0, 0));
    CALL("raw pwritev2 @20", syscall(SYS_pwritev2, fd, w, 3, 20, 0, 0));
    CALL("raw pwritev2 append", syscall(SYS_pwritev2, fd, w, 3, 0, 0,
                                        RWF_APPEND));
    CALL("raw pwritev negative", syscall(SYS_pwritev, fd, w, 3, -2L, 0));
    state("after raw writev", fd);
    CALL("raw ftruncate 500", syscall(SYS_ftruncate, fd, 500));
    state("after raw ftruncate", fd);
    CALL("write 10 past end", write(fd, "FFFFFFFFFF", 10));
    CALL("raw ftruncate 3000", syscall(SYS_ftruncate, fd, 3000));
    CALL("raw ftruncate -1", syscall(SYS_ftruncate, fd, -1L));
    state("after raw ftruncate extend", fd);
    fill(a, 'G', 400);
    CALL("pwrite 400@100", pwrite(fd, a, 400, 100));
    CALL("raw fallocate punch 150+200",
         syscall(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE |
                 FALLOC_FL_KEEP_SIZE, 150, 200));
    state("after raw punch", fd);
    CALL("raw fallocate 0 to 5000", syscall(SYS_fallocate, fd, 0, 0, 5000));
    state("after raw fallocate", fd);
    fill(a, 'H', 4000);
    CALL("write g 4000", write(fg, a, 4000));
    CALL("lseek g 0", lseek(fg, 0, SEEK_SET));
    CALL("raw copy_file_range g->a 2000",
         syscall(SYS_copy_file_range, fg, NULL, fd, NULL, 2000, 0));
    state("after raw copy (a)", fd);
    state("after raw copy (g)", fg);
    fill(a, 'I', 100);
    CALL("pwrite g 100@50", pwrite(fg, a, 100, 50));
    loff_t oi = 40, oo = 4990;
    CALL("raw copy_file_range offsets",
         syscall(SYS_copy_file_range, fg, &oi, fd, &oo, 300, 0));
    say("OUT offsets in=%lld out=%lld", (long long)oi, (long long)oo);
    state("after raw copy offsets", fd);
    CALL("lseek a end", lseek(fd, 0, SEEK_END));
    fill(a, 'J', 30);
    CALL("pwrite g 30@0", pwrite(fg, a, 30, 0));
    off_t so = 0;
    CALL("raw sendfile g->a", syscall(SYS_sendfile, fd, fg, &so, 500));
    say("OUT sendfile off=%lld", (long long)so);
    state("after raw sendfile", fd);
    int p[2];
    if (pipe(p) == 0) {
        CALL("pipe write", write(p[1], "splice-me", 9));
        CALL("raw splice pipe->a", syscall(SYS_splice, p[0], NULL, fd, NULL,
                                           9, 0));
        loff_t so2 = 100;
        fill(a, 'K', 20);
        CALL("pwrite g 20@100", pwrite(fg, a, 20, 100));
        CALL("raw splice g->pipe", syscall(SYS_splice, fg, &so2, p[1], NULL,
                                           20, 0));
        memset(rd, 0, 20);
        CALL("pipe read", read(p[0], rd, 20));
        say("OUT spliced %.20s off=%lld", rd, (long long)so2);
        close(p[0]);
        close(p[1]);
    }
    state("after raw splice", fd);
    fill(a, 'L', 100);
    CALL("pwrite 100@0", pwrite(fd, a, 100, 0));
    CALL("raw fsync", syscall(SYS_fsync, fd));
    check("after raw fsync", "a");
    CALL("pwrite 100@100", pwrite(fd, a, 100, 100));
    CALL("raw fdatasync", syscall(SYS_fdatasync, fd));
    check("after raw fdatasync", "a");
    CALL("pwrite 100@200", pwrite(fd, a, 100, 200));
    CALL("raw sync_file_range", syscall(SYS_sync_file_range, fd, 0, 0,
                                        SYNC_FILE_RANGE_WAIT_BEFORE |
                                        SYNC_FILE_RANGE_WRITE |
                                        SYNC_FILE_RANGE_WAIT_AFTER));
    check("after raw sync_file_range", "a");
    CALL("pwrite 100@300", pwrite(fd, a, 100, 300));
    CALL("raw syncfs", syscall(SYS_syncfs, fd));
    check("after raw syncfs", "a");
    CALL("pwrite 100@400", pwrite(fd, a, 100, 400));
    CALL("raw sync", syscall(SYS_sync));
    check("after raw sync", "a");
    fill(a, 'M', 3000);
    CALL("pwrite 3000@6000", pwrite(fd, a, 3000, 6000));
    struct stat st;
    struct statx sx;
    CALL("raw fstat", syscall(SYS_fstat, fd, &st));
    say("OUT raw fstat size=%lld", (long long)st.st_size);
    CALL("raw newfstatat", syscall(SYS_newfstatat, AT_FDCWD, path("a"), &st,
                                   0));
    say("OUT raw newfstatat size=%lld", (long long)st.st_size);
    CALL("raw stat", syscall(SYS_stat, path("a"), &st));
    say("OUT raw stat size=%lld", (long long)st.st_size);
    CALL("raw lstat", syscall(SYS_lstat, path("a"), &st));
    say("OUT raw lstat size=%lld", (long long)st.st_size);
    CALL("raw statx", syscall(SYS_statx, AT_FDCWD, path("a"), 0,
                              STATX_BASIC_STATS, &sx));
    say("OUT raw statx size=%llu", (unsigned long long)sx.stx_size);
    CALL("raw fadvise64", syscall(SYS_fadvise64, fd, 0, 0,
                                  POSIX_FADV_DONTNEED));
    CALL("raw fadvise64 bad", syscall(SYS_fadvise64, fd, 0, 0, 99));
    CALL("raw truncate path 7000", syscall(SYS_truncate, path("a"), 7000));
    state("after raw truncate", fd);
    /* a raw private mapping: later writes show through untouched pages */
    errno = SENTINEL;
    char *m = (char *)syscall(SYS_mmap, NULL, 8192, PROT_READ, MAP_PRIVATE,
                              fd, 0);
    say("OUT raw mmap private %s errno=%d", m == MAP_FAILED ? "failed"
        : "ok", errno);
    if (m != MAP_FAILED) {
        CALL("pwrite N 10@4100", pwrite(fd, "NNNNNNNNNN", 10, 4100));
        say("OUT mapping sees %.10s", m + 4100);
        munmap(m, 8192);
    }
    CALL("raw read bad fd", syscall(SYS_read, -1, rd, 1));
    CALL("raw write bad buffer", syscall(SYS_write, fd, (void *)8, 10));
    state("before close", fd);
    CALL("raw close a", syscall(SYS_close, fd));
    check("after raw close", "a");
    CALL("raw close g", syscall(SYS_close, fg));
    CALL("raw close again", syscall(SYS_close, fg));
    check("g after raw close", "g");
}

/* ---- raw opens, dups, fcntl, locks, closes --------------------------- */

static void scen_raw_fd(void)
{
    int fd, fd2, fd3, fd4, fd5, ro;
    /* cached descriptors, duplicated and closed raw */
    fd = xopen("b", O_RDWR | O_CREAT | O_TRUNC);
    ro = xopen("b", O_RDONLY);
    CALL("write 6", write(fd, "hello\n", 6));
    char rd[64] = {0};
    CALL("read rdonly", read(ro, rd, 64));
    say("OUT read %s", rd);
    KEEP(fd2, "raw dup", (int)syscall(SYS_dup, fd));
    CALL("write dup", write(fd2, "dup\n", 4));
    KEEP(fd3, "raw dup2 ->50", (int)syscall(SYS_dup2, fd, 50));
    CALL("write dup2", write(fd3, "dup2\n", 5));
    KEEP(fd4, "raw dup3 ->51", (int)syscall(SYS_dup3, fd, 51, O_CLOEXEC));
    CALL("write dup3", write(fd4, "dup3\n", 5));
    KEEP(fd5, "raw F_DUPFD 60", (int)syscall(SYS_fcntl, fd, F_DUPFD, 60));
    CALL("write dupfd", write(fd5, "dupfd\n", 6));
    CALL("lseek", lseek(fd, 0, SEEK_CUR));
    CALL("raw F_GETFL", syscall(SYS_fcntl, fd, F_GETFL) & (O_ACCMODE |
                                                            O_APPEND));
    CALL("pwrite 3@0", pwrite(fd, "HEL", 3, 0));
    CALL("raw F_SETFL append", syscall(SYS_fcntl, fd2, F_SETFL, O_APPEND));
    CALL("lseek 0", lseek(fd, 0, SEEK_SET));
    CALL("write appends", write(fd, "appended\n", 9));
    CALL("lseek after append", lseek(fd, 0, SEEK_CUR));
    CALL("raw F_GETOWN", syscall(SYS_fcntl, fd, F_GETOWN));
    state("b", fd);
    CALL("raw flock ex", syscall(SYS_flock, fd, LOCK_EX));
    check("after raw flock", "b");
    CALL("write locked", write(fd, "locked\n", 7));
    CALL("raw flock un", syscall(SYS_flock, fd, LOCK_UN));
    check("after raw unlock", "b");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    CALL("write 2", write(fd, "fcntl\n", 6));
    CALL("raw F_SETLK", syscall(SYS_fcntl, fd, F_SETLK, &fl));
    check("after raw F_SETLK", "b");
    CALL("raw close fd", syscall(SYS_close, fd));
    CALL("raw close dup", syscall(SYS_close, fd2));
    CALL("raw close dup2", syscall(SYS_close, fd3));
    CALL("write dup3 after", write(fd4, "last\n", 5));
    memset(rd, 0, sizeof rd);
    CALL("pread rdonly", pread(ro, rd, 63, 0));
    say("OUT pread %s", rd);
    CALL("raw close rdonly", syscall(SYS_close, ro));
    CALL("raw close_range", syscall(SYS_close_range, fd4 < fd5 ? fd4 : fd5,
                                    fd4 < fd5 ? fd5 : fd4, 0));
    CALL("write closed", write(fd4, "x", 1));
    check("after raw close_range", "b");

    /* raw opens of files that cached descriptors hold data of: the new
     * descriptor must see that data, and its writes must not be undone */
    int c0 = xopen("c", O_RDWR | O_CREAT | O_TRUNC);
    CALL("write c0", write(c0, "zero\n", 5));
    KEEP(fd, "raw openat", (int)syscall(SYS_openat, AT_FDCWD, path("c"),
                                        O_WRONLY | O_CREAT | O_APPEND, 0644));
    CALL("write c", write(fd, "one\n", 4));
    CALL("pwrite c0 Z@0", pwrite(c0, "Z", 1, 0));
    int d0 = xopen("d", O_RDWR | O_CREAT | O_TRUNC);
    CALL("write d0", write(d0, "old data\n", 9));
    KEEP(fd2, "raw creat", (int)syscall(SYS_creat, path("d"), 0644));
    CALL("write d", write(fd2, "dee\n", 4));
    state("d via d0", d0);
    CALL("close d0", close(d0));
    CALL("raw ftruncate d", syscall(SYS_ftruncate, fd2, 2));
    CALL("write d2", write(fd2, "x\n", 2));
    state("d", fd2);
    struct open_how how = {.flags = O_RDWR | O_CREAT, .mode = 0644};
    KEEP(fd3, "raw openat2", (int)syscall(SYS_openat2, AT_FDCWD, path("c"),
                                          &how, sizeof how));
    memset(rd, 0, sizeof rd);
    CALL("read openat2", read(fd3, rd, 63));
    say("OUT read %s", rd);
    CALL("write openat2", write(fd3, "TWO", 3));
    CALL("write c appends", write(fd, "three\n", 6));
    state("c", fd3);
    struct open_how bad = {.flags = O_RDWR, .resolve = 1ull << 40};
    CALL("raw openat2 bad", syscall(SYS_openat2, AT_FDCWD, path("c"), &bad,
                                    sizeof bad));
    int o3;
    KEEP(o3, "raw open c", (int)syscall(SYS_open, path("c"), O_RDWR, 0));
    CALL("raw pwrite64 c 2@1", syscall(SYS_pwrite64, o3, "##", 2, 1));
    CALL("pwrite c0 2@3", pwrite(c0, "%%", 2, 3));
    state("c via c0", c0);
    state("c via raw open", o3);
    CALL("close raw open c", close(o3));
    CALL("close c0", close(c0));
    CALL("raw close c", syscall(SYS_close, fd));
    CALL("raw close d", syscall(SYS_close, fd2));
    check("d after raw close", "d");
    CALL("raw close c2", syscall(SYS_close, fd3));
    check("c after raw close", "c");
    CALL("raw open missing", syscall(SYS_open, path("nope"), O_RDONLY, 0));
    CALL("raw close bad", syscall(SYS_close, 12345));
}

/* ---- raw fork and clone ------------------------------------------------ */

static void child_writes(int fd, const char *text)
{
    long r = syscall(SYS_write, fd, text, strlen(text));
    _exit(r == (long)strlen(text) ? 0 : 3);
}

/* A raw fork-like call (fork, clone(SIGCHLD), clone3) with a cached
 * description of a fresh file `name`: the child writes through it. */
static void fork_one(const char *name, const char *kind)
{
    int fd = xopen(name, O_RDWR | O_CREAT | O_TRUNC);
    CALL("write parent 1", write(fd, "parent one\n", 11));
    fflush(stdout);
    long pid;
    struct clone_args ca = {.exit_signal = SIGCHLD};
    if (strcmp(kind, "fork") == 0)
        pid = syscall(SYS_fork);
    else if (strcmp(kind, "clone") == 0)
        pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    else
        pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0)
        child_writes(fd, "the child\n");
    int st = -1;
    waitpid((pid_t)pid, &st, 0);
    say("OUT %s child status %#x", kind, st);
    check("after the child", name);
    CALL("write parent 2", write(fd, "parent two\n", 11));
    state(name, fd);
    CALL("close", close(fd));
    check("after close", name);
}

static void scen_raw_fork(void)
{
    fork_one("e1", "fork");
    fork_one("e2", "clone");
    fork_one("e3", "clone3");
}

/* ---- raw exits ------------------------------------------------------- */

static void scen_raw_exit_group(void)
{
    int fd = xopen("x", O_RDWR | O_CREAT | O_TRUNC);
    CALL("write", write(fd, "before exit_group\n", 18));
    CALL("pwrite", pwrite(fd, "B", 1, 0));
    syscall(SYS_exit_group, 3);
}

static void scen_raw_exit(void)
{
    int fd = xopen("x", O_RDWR | O_CREAT | O_APPEND);
    CALL("write", write(fd, "before exit\n", 12));
    syscall(SYS_exit, 4);
}

static int g_fd;

static void *second_thread(void *arg)
{
    (void)arg;
    usleep(100 * 1000);       /* the main thread has gone by then */
    CALL("thread write", write(g_fd, "from the thread\n", 16));
    syscall(SYS_exit, 7);
    return NULL;
}

static void scen_raw_exit_thread(void)
{
    g_fd = xopen("x", O_RDWR | O_CREAT | O_TRUNC);
    CALL("write", write(g_fd, "main thread\n", 12));
    pthread_t t;
    if (pthread_create(&t, NULL, second_thread, NULL) != 0)
        _exit(101);
    syscall(SYS_exit, 5);
}

static void *worker_returns(void *arg)
{
    (void)arg;
    usleep(100 * 1000);       /* the main thread has gone by then */
    CALL("worker write", write(g_fd, "from the worker\n", 16));
    return NULL;
}

/* Not a raw call, the same trap: main leaves by pthread_exit, the last
 * thread by returning; glibc then calls exit(0). */
static void scen_pthread_exit(void)
{
    g_fd = xopen("x", O_RDWR | O_CREAT | O_TRUNC);
    CALL("write", write(g_fd, "main thread\n", 12));
    pthread_t t;
    if (pthread_create(&t, NULL, worker_returns, NULL) != 0)
        _exit(101);
    pthread_exit(NULL);
}

/* ---- MAP_PRIVATE ------------------------------------------------------ */

static void scen_private(void)
{
    char a[16384];
    int fd = xopen("p", O_RDWR | O_CREAT | O_TRUNC);
    fill(a, 'A', 12288);
    CALL("write 3 pages", write(fd, a, 12288));
    char *m;
    m = mmap(NULL, 12288, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    say("OUT mmap private rw %s", m == MAP_FAILED ? "failed" : "ok");
    if (m == MAP_FAILED)
        _exit(102);
    say("OUT mapping hash %016" PRIx64, wct_hash(m, 12288));
    CALL("pwrite B 10@100", pwrite(fd, "BBBBBBBBBB", 10, 100));
    say("OUT page 0 sees %.12s", m + 98);
    m[5000] = 'x';                        /* page 1 copied on write */
    CALL("pwrite C 10@4996", pwrite(fd, "CCCCCCCCCC", 10, 4996));
    say("OUT page 1 sees %.12s", m + 4994);
    CALL("lseek 8190", lseek(fd, 8190, SEEK_SET));
    CALL("write D 4", write(fd, "DDDD", 4));
    say("OUT page 1/2 sees %.6s", m + 8189);
    /* copy from the mapping back into the file */
    CALL("pwrite from mapping 12288@0", pwrite(fd, m, 12288, 0));
    state("p after copy back", fd);
    CALL("write from mapping 100", write(fd, m + 4990, 100));
    state("p after write from mapping", fd);
    CALL("munmap", munmap(m, 12288));
    CALL("pwrite E after munmap", pwrite(fd, "EEEE", 4, 20));
    state("p after munmap", fd);

    /* a file mapped through a read-only descriptor before it is cached */
    int w0 = xopen("q", O_WRONLY | O_CREAT | O_TRUNC);
    fill(a, 'Q', 8192);
    CALL("write q", write(w0, a, 8192));
    CALL("close q", close(w0));
    int ro = xopen("q", O_RDONLY);
    m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, ro, 0);
    say("OUT mmap private ro %s", m == MAP_FAILED ? "failed" : "ok");
    if (m == MAP_FAILED)
        _exit(103);
    int w = xopen("q", O_RDWR);
    CALL("pwrite R 8@4", pwrite(w, "RRRRRRRR", 8, 4));
    say("OUT q mapping sees %.12s", m);
    CALL("ftruncate 6000", ftruncate(w, 6000));
    say("OUT q mapping after truncate %.4s|%d", m + 5998, m[6001]);
    CALL("write S 3", write(w, "SSS", 3));
    say("OUT q mapping sees %.6s", m);
    fill(a, 'T', 100);
    CALL("pwrite from buffer 100@5950", pwrite(w, a, 100, 5950));
    CALL("copy mapping 0..50 to 7000", pwrite(w, m, 50, 7000));
    state("q", w);
    munmap(m, 8192);
    CALL("close ro", close(ro));
    CALL("close w", close(w));
    check("q after close", "q");
    /* a file mapped through a descriptor the shim does not track (stdio's),
     * before any cached descriptor of it exists */
    FILE *fp = fopen(path("u"), "w+");
    if (!fp)
        _exit(107);
    fill(a, 'U', 8192);
    CALL("fwrite u", fwrite(a, 1, 8192, fp));
    CALL("fflush u", fflush(fp));
    m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fileno(fp), 0);
    say("OUT mmap private untracked %s", m == MAP_FAILED ? "failed" : "ok");
    if (m == MAP_FAILED)
        _exit(108);
    int wu = xopen("u", O_RDWR);
    CALL("pwrite V 4@10", pwrite(wu, "VVVV", 4, 10));
    say("OUT u mapping sees %.8s", m + 8);
    CALL("write W 2", write(wu, "WW", 2));
    say("OUT u mapping sees %.4s", m);
    munmap(m, 8192);
    state("u", wu);
    CALL("close wu", close(wu));
    CALL("fclose u", fclose(fp));
    check("u after close", "u");
    CALL("close p", close(fd));
    check("p after close", "p");
}

/* ---- errno on success ------------------------------------------------- */

/* A second thread that only waits: until the pipe's write end closes. */
static void *wait_on_pipe(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* pwritev2 and preadv2 with each flag bit alone on a file the shim
 * caches: the kernel's answer to each (one it does not know:
 * EOPNOTSUPP, nothing written), the offset after it, the file's bytes.
 * Probe: bit 30, which the shim used as a mark of its own and cleared
 * before the kernel's call, was written where the kernel refuses it. */
static void scen_rwf(void)
{
    int fd = xopen("rwf", O_RDWR | O_CREAT | O_TRUNC);
    char line[32], lab[64], data[16], rd[16];
    for (int i = 0; i < 64; i++) {
        int n = snprintf(line, sizeof line, "line %02d\n", i);
        CALL("write", write(fd, line, (size_t)n));
    }
    for (int b = 0; b < 32; b++) {
        int fl = (int)(1u << b), n = snprintf(data, sizeof data, "[%02d]", b);
        struct iovec v = {data, (size_t)n}, r = {rd, sizeof rd};
        ssize_t got;
        snprintf(lab, sizeof lab, "pwritev2 @-1 bit %d", b);
        CALL(lab, pwritev2(fd, &v, 1, -1, fl));
        snprintf(lab, sizeof lab, "pwritev2 @%d bit %d", 7 * b, b);
        CALL(lab, pwritev2(fd, &v, 1, 7 * b, fl));
        snprintf(lab, sizeof lab, "raw pwritev2 @%d bit %d", 11 * b, b);
        CALL(lab, syscall(SYS_pwritev2, fd, &v, 1, 11 * b, 0, fl));
        snprintf(lab, sizeof lab, "preadv2 @%d bit %d", 5 * b, b);
        KEEP(got, lab, preadv2(fd, &r, 1, 5 * b, fl));
        say("OUT read %016" PRIx64, wct_hash(rd, got > 0 ? (size_t)got : 0));
        state(lab, fd);
    }
    close(fd);
}

static void scen_errno(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    /* [rw page][PROT_NONE page] */
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        _exit(104);
    fill(m, 'a', (size_t)pg);
    mprotect(m + pg, pg, PROT_NONE);
    /* [rw page][unmapped], far from where mmap(NULL...) places things,
     * so that the shim's own mappings cannot fill the hole */
    char *u = mmap((void *)0x200000000000ul, 2 * pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (u == MAP_FAILED)
        _exit(106);
    fill(u, 'u', (size_t)pg);
    munmap(u + pg, pg);
    char *hole = (char *)0x1000;   /* below mmap_min_addr: never mapped */
    /* a large buffer (past WCACHE_BYPASS) that ends in PROT_NONE */
    size_t big = 300 * 1024;
    char *bm = mmap(NULL, big + pg, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bm == MAP_FAILED)
        _exit(105);
    fill(bm, 'b', big);
    mprotect(bm + big, pg, PROT_NONE);

    for (int app = 0; app < 2; app++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", app);
        int fd = xopen(name, O_RDWR | O_CREAT | O_TRUNC |
                       (app ? O_APPEND : 0));
        say("OUT --- O_APPEND=%d", app);
        CALL("write into PROT_NONE", write(fd, m + pg - 100, 200));
        CALL("write into unmapped", write(fd, u + pg - 50, 100));
        CALL("pwrite into unmapped", pwrite(fd, u + pg - 70, 100, 20));
        CALL("pwrite into PROT_NONE", pwrite(fd, m + pg - 30, 200, 7));
        struct iovec v[3] = {{m, 10}, {m + pg - 20, 100}, {m, 5}};
        CALL("writev into PROT_NONE", writev(fd, v, 3));
        CALL("pwritev into PROT_NONE", pwritev(fd, v, 3, 3));
        struct iovec b[3] = {{m, 10}, {hole, 10}, {m, 5}};
        CALL("writev bad iovec after good", writev(fd, b, 3));
        CALL("pwritev bad iovec after good", pwritev(fd, b, 3, 1));
        CALL("pwritev2 bad iovec after good", pwritev2(fd, b, 3, -1, 0));
        CALL("write big into PROT_NONE", write(fd, bm + 4096, big));
        CALL("pwrite big into PROT_NONE", pwrite(fd, bm + 2048, big, 11));
        CALL("raw write into PROT_NONE",
             syscall(SYS_write, fd, m + pg - 100, 200));
        CALL("raw pwrite64 into PROT_NONE",
             syscall(SYS_pwrite64, fd, m + pg - 40, 200, 50));
        CALL("raw writev bad after good", syscall(SYS_writev, fd, b, 3));
        CALL("write all bad", write(fd, m + pg, 10));
        CALL("write zero", write(fd, m, 0));
        CALL("lseek 0", lseek(fd, 0, SEEK_SET));
        CALL("read into PROT_NONE", read(fd, m + pg - 10, 100));
        CALL("pread into PROT_NONE", pread(fd, m + pg - 10, 100, 0));
        struct iovec r[2] = {{m, 10}, {m + pg - 5, 50}};
        CALL("readv into PROT_NONE", readv(fd, r, 2));
        CALL("preadv into PROT_NONE", preadv(fd, r, 2, 0));
        CALL("read at end", read(fd, m, 0));
        CALL("lseek end", lseek(fd, 0, SEEK_END));
        CALL("lseek cur", lseek(fd, 0, SEEK_CUR));
        struct stat st;
        CALL("fstat", fstat(fd, &st));
        CALL("stat", stat(path(name), &st));
        say("OUT size %lld", (long long)st.st_size);
        CALL("ftruncate", ftruncate(fd, 1000));
        CALL("fallocate", fallocate(fd, 0, 0, 2000));
        int d;
        KEEP(d, "dup", dup(fd));
        CALL("dup2", dup2(fd, d));
        CALL("fcntl getfl", fcntl(fd, F_GETFL) & O_APPEND);
        CALL("write dup", write(d, "x", 1));
        CALL("close dup", close(d));
        CALL("fsync", fsync(fd));
        CALL("fdatasync", fdatasync(fd));
        int mapped;
        KEEP(mapped, "mmap", mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd,
                                  0) == MAP_FAILED ? -1 : 0);
        CALL("write after mmap", write(fd, m + pg - 100, 200));
        state(name, fd);
        CALL("close", close(fd));
        check("after close", name);
    }
    /* A stream the shim caches (past its first writes, WCACHE_MIN_WRITES):
     * its fast path, by write and by pwrite, keeps errno too; the third
     * and fourth with a second thread alive (the description's owner
     * enters without its mutex). */
    int hold[2] = {-1, -1};
    pthread_t waiter;
    for (int app = 0; app < 4; app++) {
        char name[8];
        if (app == 2) {
            if (pipe(hold) || pthread_create(&waiter, NULL, wait_on_pipe,
                                             &hold[0]))
                _exit(107);
        }
        snprintf(name, sizeof name, "s%d", app);
        int fd = xopen(name, O_RDWR | O_CREAT | O_TRUNC |
                       (app % 2 ? O_APPEND : 0));
        /* With threads, enough for the owner's claim (wcache/blk.h: 256
         * entries in a row by one thread). */
        int kept = 0, done = 0, count = app < 2 ? 200 : 1000;
        for (int i = 0; i < count; i++) {
            errno = SENTINEL;
            ssize_t r = i % 4 == 3 ? pwrite(fd, m, 16, 16 * i)
                                   : write(fd, m, 16);
            kept += errno == SENTINEL;
            done += r == 16;
        }
        say("OUT stream O_APPEND=%d threads %d: %d of %d written, errno "
            "kept %d", app % 2, 1 + app / 2, done, count, kept);
        state(name, fd);
        CALL("close", close(fd));
        check("stream after close", name);
    }
    close(hold[1]);                     /* the waiter returns */
    pthread_join(waiter, NULL);
    close(hold[0]);
    int o;
    KEEP(o, "open", open(path("r0"), O_RDONLY) >= 0);
    CALL("open missing", open(path("missing"), O_RDONLY));
}

/* ---- a reserved offset, a handle, a handler ---------------------------- */

/* The largest offset lseek accepts on fd (the file system's s_maxbytes). */
static off_t max_offset(int fd)
{
    off_t lo = 0, hi = INT64_MAX;
    while (lo < hi) {
        off_t mid = lo + (hi - lo) / 2 + 1;
        if (lseek(fd, mid, SEEK_SET) == mid)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static void scen_reserve(void)
{
    int save = dup(2);
    int fd = xopen("r", O_RDWR | O_CREAT | O_TRUNC);
    if (save < 0 || dup2(fd, 2) != 2)
        _exit(104);
    close(fd);
    char b[64];
    fill(b, 'r', sizeof b);
    for (int i = 0; i < 20; i++)
        CALL("write 20", write(2, b, 20));
    /* (volatile: the compiler would refuse the sizes it can see) */
    volatile size_t huge[3] = {SIZE_MAX, SSIZE_MAX, (size_t)SSIZE_MAX + 1};
    CALL("write SIZE_MAX", write(2, b, huge[0]));
    CALL("write SSIZE_MAX", write(2, b, huge[1]));
    CALL("write SSIZE_MAX + 1", write(2, b, huge[2]));
    CALL("ftruncate 400", ftruncate(2, 400));
    CALL("lseek 400", lseek(2, 400, SEEK_SET));
    state("r", 2);
    off_t max = max_offset(2);
    say("OUT largest offset found");
    CALL("lseek max - 2", lseek(2, max - 2, SEEK_SET) == max - 2);
    CALL("write 3 at max - 2", write(2, "abc", 3));
    CALL("write 3 at max", write(2, "abc", 3));
    CALL("offset at max", lseek(2, 0, SEEK_CUR) == max);
    CALL("lseek max - 10", lseek(2, max - 10, SEEK_SET) == max - 10);
    struct iovec v[2] = {{b, 6}, {b + 6, 6}};
    CALL("writev 12 at max - 10", writev(2, v, 2));
    CALL("ftruncate 500", ftruncate(2, 500));
    CALL("lseek 500", lseek(2, 500, SEEK_SET));
    CALL("write after", write(2, "end\n", 4));
    state("r after", 2);
    if (dup2(save, 2) != 2)
        _exit(105);
    close(save);
}

static void scen_handle(void)
{
    int fd = xopen("h", O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 10; i++)
        CALL("write 10", write(fd, "0123456789", 10));
    struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
    fh->handle_bytes = MAX_HANDLE_SZ;
    int mount_id, dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (!fh || dfd < 0 || name_to_handle_at(AT_FDCWD, path("h"), fh,
                                            &mount_id, 0) != 0) {
        say("OUT no handles here");
        return;
    }
    int t = open_by_handle_at(dfd, fh, O_WRONLY | O_TRUNC);
    if (t < 0 && errno == EPERM) {
        say("OUT open_by_handle_at not permitted");
        return;
    }
    say("OUT open_by_handle_at O_TRUNC %s", t >= 0 ? "ok" : "failed");
    state("h after the truncating open", fd);
    CALL("write through the handle's", write(t, "T", 1));
    state("h", fd);
    CALL("close the handle's", close(t));
    CALL("close", close(fd));
    check("h after close", "h");
    close(dfd);
    free(fh);
}

static int g_ro;
static volatile long g_ro_signals, g_ro_wrong;

static void ro_handler(int sig)
{
    (void)sig;
    int e = errno;
    errno = 0;
    long r = write(g_ro, "x", 1);
    if (r != -1 || errno != EBADF)
        g_ro_wrong++;
    g_ro_signals++;
    errno = e;
}

static void scen_sigro(void)
{
    int fd = xopen("s", O_RDWR | O_CREAT | O_TRUNC);
    g_ro = xopen("s", O_RDONLY);
    wct_alarms(ro_handler, 100);
    char b[16];
    fill(b, 's', sizeof b);
    for (int i = 0; i < 200000; i++)
        if (write(fd, b, sizeof b) != (ssize_t)sizeof b)
            say("OUT short write %d", i);
    wct_alarms(NULL, 0);
    say("OUT handler writes through a read-only descriptor: %ld not "
        "EBADF (%s)", g_ro_wrong, g_ro_signals > 0 ? "signals came" :
        "no signal");
    CALL("close", close(fd));
    CALL("close read-only", close(g_ro));
}

/* ---- a signal to another process --------------------------------------- */

static volatile sig_atomic_t g_usr1;

static void usr1_note(int sig)
{
    (void)sig;
    g_usr1 = 1;
}

/* Each way of sending a signal to another process, after writes the
 * shim caches: the receiver (a child made before anything was written)
 * looks at the file's size when the signal comes, as a process woken by
 * another's signal reads what it wrote (PostgreSQL's latches). */
static void scen_signal(void)
{
    static const char *const how[] = {
        "kill", "sigqueue", "tgkill", "tkill", "raw kill",
        "pidfd_send_signal", "kill of the process group"};
    enum { ROUNDS = sizeof how / sizeof *how };
    int ack[2];
    if (pipe(ack) != 0)
        _exit(101);
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    signal(SIGUSR1, usr1_note);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        _exit(102);
    if (child == 0) {
        sigset_t wait_mask = old;
        sigdelset(&wait_mask, SIGUSR1);
        for (int r = 0; r < ROUNDS; r++) {
            while (!g_usr1)
                sigsuspend(&wait_mask);
            g_usr1 = 0;
            struct stat st;
            long size = stat(path("sig"), &st) == 0 ? (long)st.st_size : -1;
            say("OUT %s: the receiver sees %ld bytes", how[r], size);
            if (write(ack[1], "k", 1) != 1)
                _exit(103);
        }
        _exit(0);
    }
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    int fd = xopen("sig", O_WRONLY | O_CREAT | O_TRUNC);
    char rec[32];
    fill(rec, 'q', sizeof rec);
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < 1000; i++)
            if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
                say("OUT short write %d", i);
        union sigval v = {.sival_int = r};
        switch (r) {
        case 0: kill(child, SIGUSR1); break;
        case 1: sigqueue(child, SIGUSR1, v); break;
        case 2: syscall(SYS_tgkill, child, child, SIGUSR1); break;
        case 3: syscall(SYS_tkill, child, SIGUSR1); break;
        case 4: syscall(SYS_kill, child, SIGUSR1); break;
        case 5: syscall(SYS_pidfd_send_signal, pidfd, SIGUSR1, NULL, 0);
                break;
        default: kill(0, SIGUSR1);  /* this one's blocked here */
        }
        char c;
        if (read(ack[0], &c, 1) != 1)
            say("OUT the receiver did not answer after %s", how[r]);
    }
    int st;
    CALL("wait for the receiver", waitpid(child, &st, 0) == child &&
                                      WIFEXITED(st) && !WEXITSTATUS(st));
    CALL("close", close(fd));
    close(pidfd);
    close(ack[0]);
    close(ack[1]);
    sigset_t pend;
    sigpending(&pend);
    if (sigismember(&pend, SIGUSR1)) {      /* the group's: taken here */
        int got;
        sigwait(&usr1, &got);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR1, SIG_DFL);
}

/* ---- inherited descriptors of one file, one O_APPEND ------------------- */

static void lines(int fd, const char *who, int from, int to);

static void scen_inhapp_child(void)
{
    char text[64];
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(text, sizeof text, "fd 3 line %d\n", i);
        if (write(3, text, (size_t)n) != n)
            say("OUT short write %d", i);
    }
    CALL("write through 5 (O_APPEND)", write(5, "fd 5 appended\n", 14));
    CALL("write through 3 after it", write(3, "fd 3 after\n", 11));
    CALL("offset of 3", lseek(3, 0, SEEK_CUR));
    CALL("offset of 5", lseek(5, 0, SEEK_CUR));
}

/* Run this program's scenario `child` from a shell without the shim that
 * opens `redirs` first, so that they reach it as inherited descriptors
 * held by another process (not handed over as its own: proc.c invariant
 * (6)); then look at file f. */
static void from_a_shell(const char *redirs, const char *child)
{
    const char *pre = getenv("LD_PRELOAD");
    char self[4096], cmd[16384];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        _exit(106);
    self[n] = 0;
    snprintf(cmd, sizeof cmd, "exec %s; %s%s exec '%s' %s '%s'", redirs,
             pre ? "LD_PRELOAD=" : "", pre ? pre : "", self, child, dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        unsetenv("LD_PRELOAD");
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    CALL("waitpid", waitpid(pid, &st, 0) == pid ? st : -1);
    check("f", "f");
}

static void scen_inhapp(void)
{
    char redirs[10000];
    snprintf(redirs, sizeof redirs, "3>'%s' 5>>'%s'", path("f"), path("f"));
    from_a_shell(redirs, "inhapp_child");
}

/* The program opens f itself and caches it, then writes through the
 * inherited 3 (plain) and 5 (O_APPEND) of the same file. */
static void scen_inhown_child(void)
{
    int fd = xopen("f", O_WRONLY);
    lines(fd, "own", 0, 3000);
    CALL("write through 3", write(3, "fd 3 here\n", 10));
    lines(fd, "own more", 0, 10);
    CALL("write through 5 (O_APPEND)", write(5, "fd 5 appended\n", 14));
    lines(fd, "own last", 0, 10);
    CALL("offset of 3", lseek(3, 0, SEEK_CUR));
    CALL("offset of 5", lseek(5, 0, SEEK_CUR));
    CALL("offset of own", lseek(fd, 0, SEEK_CUR));
    CALL("close own", close(fd));
}

static void scen_inhown(void)
{
    char redirs[10000];
    snprintf(redirs, sizeof redirs, "3<>'%s' 5>>'%s'", path("f"), path("f"));
    from_a_shell(redirs, "inhown_child");
}

/* ---- descriptors sent over a socket ----------------------------------- */

/* The receiver: a child forked before any file is open, so that only the
 * socket gives it the parent's descriptions. Each message is one command
 * byte, maybe with a descriptor:
 *   'w' + fd   take fd as the current one, write 5 lines, show its state
 *   'l'        write one line through the current fd
 *   'o' + fd   take fd, open its file ("e") itself, write 20 lines through
 *              its own descriptor, then one through fd, show its state
 *   'r' + fd   take fd (read-only, of "e"), write 5 more lines through a
 *              descriptor of its own, show what fd reads
 *   'n'        nothing (a message of a batch that carries no descriptor)
 *   'q'        close and leave
 * It waits for a byte after each command but 'n' and 'q' (the sender
 * prints its call first) and answers with one, so that the parent's and
 * its lines and writes interleave the same way in every run. */

static void receiver(int s)
{
    int cur = -1, line = 0;
    for (;;) {
        char cmd;
        struct iovec io = {&cmd, 1};
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cb;
        struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1,
                           .msg_control = cb.b,
                           .msg_controllen = sizeof cb.b};
        if (recvmsg(s, &m, 0) != 1)
            _exit(120);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        if (c && c->cmsg_type == SCM_RIGHTS) {
            if (cur >= 0)
                close(cur);
            memcpy(&cur, CMSG_DATA(c), sizeof cur);
        }
        if (cmd == 'n')
            continue;
        if (cmd == 'q') {
            close(cur);
            _exit(0);
        }
        char go;                /* after the sender has printed its call */
        if (read(s, &go, 1) != 1)
            _exit(123);
        char text[64];
        if (cmd == 'o') {
            int own = open(path("e"), O_RDWR);
            lines(own, "receiver's own", 0, 20);
            CALL("receiver write through the received one",
                 write(cur, "RECEIVED\n", 9));
            state("receiver's own e", own);
            CALL("receiver fsync", fsync(cur));
            close(own);
            if (write(s, "k", 1) != 1)
                _exit(121);
            continue;
        }
        if (cmd == 'r') {
            int own = open(path("e"), O_RDWR | O_APPEND);
            lines(own, "receiver's own", 20, 25);
            state("e read through the received one", cur);
            close(own);
            if (write(s, "k", 1) != 1)
                _exit(121);
            continue;
        }
        for (int i = 0; i < (cmd == 'w' ? 5 : 1); i++) {
            int n = snprintf(text, sizeof text, "receiver line %d\n", line++);
            CALL("receiver write", write(cur, text, (size_t)n));
        }
        if (cmd == 'w')
            state("receiver's view", cur);
        /* a consistency point: the sender looks at the file next */
        CALL("receiver fsync", fsync(cur));
        if (write(s, "k", 1) != 1)
            _exit(121);
    }
}

/* One command for the receiver, with `fd` attached unless it is < 0, by
 * sendmsg, or by the raw system call when `raw`. */
static void command(int s, char cmd, int fd, int raw)
{
    struct iovec io = {&cmd, 1};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cb;
    memset(&cb, 0, sizeof cb);
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = cb.b;
        m.msg_controllen = sizeof cb.b;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    CALL(raw ? "syscall sendmsg" : "sendmsg",
         raw ? syscall(SYS_sendmsg, s, &m, 0) : sendmsg(s, &m, 0));
}

/* Let the receiver go on with its command, then wait for its answer. */
static void answer(int s)
{
    if (write(s, "g", 1) != 1)
        _exit(124);
    char k;
    if (read(s, &k, 1) != 1)
        _exit(122);
}

static void lines(int fd, const char *who, int from, int to)
{
    char text[64];
    for (int i = from; i < to; i++) {
        int n = snprintf(text, sizeof text, "%s line %d\n", who, i);
        if (write(fd, text, (size_t)n) != n)
            say("OUT short write of %s line %d", who, i);
    }
}

static void scen_passfd(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        _exit(103);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        receiver(sv[1]);
    }
    close(sv[1]);
    int s = sv[0];

    /* cached, then sent by sendmsg: the receiver writes at the offset
     * the parent's 20 lines left, and reads them */
    int a = xopen("a", O_RDWR | O_CREAT | O_TRUNC);
    lines(a, "parent a", 0, 20);
    command(s, 'w', a, 0);
    answer(s);
    lines(a, "parent a", 20, 25);
    state("a", a);

    /* O_APPEND, sent by the raw system call */
    int b = xopen("b", O_RDWR | O_CREAT | O_TRUNC | O_APPEND);
    lines(b, "parent b", 0, 20);
    command(s, 'w', b, 1);
    answer(s);
    lines(b, "parent b", 20, 25);
    state("b", b);

    /* sendmmsg: a message without a descriptor, then one with */
    int c = xopen("c", O_RDWR | O_CREAT | O_TRUNC);
    lines(c, "parent c", 0, 20);
    {
        char n = 'n', w = 'w';
        struct iovec io[2] = {{&n, 1}, {&w, 1}};
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cb;
        memset(&cb, 0, sizeof cb);
        struct mmsghdr v[2];
        memset(v, 0, sizeof v);
        v[0].msg_hdr.msg_iov = &io[0];
        v[0].msg_hdr.msg_iovlen = 1;
        v[1].msg_hdr.msg_iov = &io[1];
        v[1].msg_hdr.msg_iovlen = 1;
        v[1].msg_hdr.msg_control = cb.b;
        v[1].msg_hdr.msg_controllen = sizeof cb.b;
        struct cmsghdr *h = CMSG_FIRSTHDR(&v[1].msg_hdr);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &c, sizeof c);
        CALL("sendmmsg", sendmmsg(s, v, 2, 0));
    }
    answer(s);
    lines(c, "parent c", 20, 25);
    state("c", c);

    /* sent before its first write, then written in turns with the
     * receiver (a file that comes into the cache after the send) */
    int d = xopen("d", O_RDWR | O_CREAT | O_TRUNC);
    command(s, 'w', d, 0);
    answer(s);
    char text[64];
    for (int i = 0; i < 40; i++) {
        int n = snprintf(text, sizeof text, "parent d line %d\n", i);
        CALL("parent write d", write(d, text, (size_t)n));
        command(s, 'l', -1, 0);
        answer(s);
    }
    state("d", d);

    /* received by a process that caches the same file through a
     * description of its own: the received one's write comes after */
    int e = xopen("e", O_RDWR | O_CREAT | O_TRUNC);
    command(s, 'o', e, 0);
    answer(s);
    CALL("parent write e", write(e, "parent after\n", 13));
    state("e", e);
    int er = xopen("e", O_RDONLY);
    command(s, 'r', er, 0);
    answer(s);
    CALL("close e read-only", close(er));

    /* bad messages: the kernel's answer, nothing sent */
    CALL("sendmsg unreadable header", sendmsg(s, (void *)16, 0));
    CALL("syscall sendmsg unreadable header",
         syscall(SYS_sendmsg, s, (void *)16, 0));
    {
        char q = 'n';
        struct iovec io = {&q, 1};
        struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1,
                           .msg_control = (void *)16,
                           .msg_controllen = 64};
        CALL("sendmsg unreadable control", sendmsg(s, &m, 0));
        char small[8] = {0};
        m.msg_control = small;
        m.msg_controllen = sizeof small;
        CALL("sendmsg short control", sendmsg(s, &m, 0));
    }
    CALL("sendmmsg unreadable vector", sendmmsg(s, (void *)16, 2, 0));

    command(s, 'q', -1, 0);
    int st;
    CALL("waitpid", waitpid(pid, &st, 0) == pid ? st : -1);
    CALL("close a", close(a));
    CALL("close b", close(b));
    CALL("close c", close(c));
    CALL("close d", close(d));
    CALL("close e", close(e));
    check("a after close", "a");
    check("d after close", "d");
}

/* ---- clone and unshare (shim/proc.c invariants (9), (10)) ------------- */

static char clone_stack[256 << 10] __attribute__((aligned(64)));
#define CLONE_TOP (clone_stack + sizeof clone_stack)
static int c_fd;
static const char *c_scenario;

/* A clone child of `clone`: lines through the parent's description and a
 * file of its own, then it returns ('r': glibc's bare exit), calls _exit
 * ('x') or execs a shell that writes to both ('e'). */
static int clone_child(void *arg)
{
    long how = (long)arg;
    lines(c_fd, "child", 0, 2000);
    int g = open(path("b"), O_WRONLY | O_CREAT | O_APPEND, 0644);
    lines(g, "child b", 0, 2000);
    if (how == 'e') {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "echo from the shell >&%d; "
                 "echo shell b >&%d", c_fd, g);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (how == 'x')
        _exit(0);
    return 0;
}

static void clone_one(const char *label, int flags, long how)
{
    say("OUT clone %s %c", label, (int)how);
    lines(c_fd, "parent before", 0, 2000);
    fflush(stdout);
    pid_t pid = clone(clone_child, CLONE_TOP, flags, (void *)how);
    int st = -1;
    CALL("waitpid", waitpid(pid, &st, 0) == pid ? st : -1);
    check("a after the child", "a");
    check("b after the child", "b");
    lines(c_fd, "parent after", 0, 100);
    state("a", c_fd);
}

/* glibc's clone() as fork (plain, CLONE_VFORK) and as vfork (CLONE_VM |
 * CLONE_VFORK): the child writes through the parent's cached description
 * and a file it opens, and leaves in each way. */
static void scen_clone(void)
{
    c_fd = xopen("a", O_RDWR | O_CREAT | O_TRUNC);
    clone_one("fork", SIGCHLD, 'r');
    clone_one("fork", SIGCHLD, 'x');
    clone_one("fork+vfork", CLONE_VFORK | SIGCHLD, 'r');
    clone_one("vm+vfork", CLONE_VM | CLONE_VFORK | SIGCHLD, 'e');
    clone_one("vm+vfork", CLONE_VM | CLONE_VFORK | SIGCHLD, 'x');
    clone_one("vm+vfork", CLONE_VM | CLONE_VFORK | SIGCHLD, 'r');
    CALL("close", close(c_fd));
    check("a after close", "a");
    check("b after close", "b");
}

/* A child that shares the table (not the memory) or the memory (not the
 * table): lines through the parent's description, then it closes it and
 * opens "b", which takes the same number where the table is shared. */
static int apart_child(void *arg)
{
    lines(c_fd, "child", 0, 2000);
    CALL("child close", close(c_fd));
    int g = open(path("b"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    lines(g, "child b", 0, 20);
    if ((long)arg == 'x')
        _exit(0);
    return 0;
}

/* clone_files: glibc's clone(CLONE_FILES); clone_files_raw: the raw
 * system call, whose child _exits; clone_vm: clone(CLONE_VM) without the
 * table. Thousands of lines are cached before. */
static void scen_clone_apart(void)
{
    c_fd = xopen("a", O_RDWR | O_CREAT | O_TRUNC);
    lines(c_fd, "parent before", 0, 100000);
    fflush(stdout);
    long pid;
    if (strcmp(c_scenario, "clone_files_raw") == 0) {
        pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, NULL, NULL, 0);
        if (pid == 0)
            apart_child((void *)'x');
    } else {
        int flags = strcmp(c_scenario, "clone_vm") == 0 ? CLONE_VM
                                                        : CLONE_FILES;
        pid = clone(apart_child, CLONE_TOP, flags | SIGCHLD, (void *)'r');
    }
    int st = -1;
    CALL("waitpid", waitpid((pid_t)pid, &st, 0) == pid ? st : -1);
    check("a after the child", "a");
    check("b after the child", "b");
    CALL("write to the number", write(c_fd, "parent after\n", 13));
    lines(c_fd, "parent after", 0, 1000);
    state("the number", c_fd);
    CALL("close", close(c_fd));
    check("a after close", "a");
    check("b after close", "b");
}

/* A thread takes a table of its own (unshare_thread: unshare;
 * unshare_range: close_range with CLOSE_RANGE_UNSHARE; unshare_raw: the
 * raw system call) and closes the main thread's cached descriptor there,
 * then opens "b" at that number; the main thread's descriptor stays. */
static void *unshare_thread(void *arg)
{
    (void)arg;
    if (strcmp(c_scenario, "unshare_range") == 0) {
        CALL("close_range unshare",
             close_range((unsigned)c_fd, (unsigned)c_fd,
                         CLOSE_RANGE_UNSHARE));
    } else {
        if (strcmp(c_scenario, "unshare_raw") == 0)
            CALL("raw unshare", syscall(SYS_unshare, CLONE_FILES));
        else
            CALL("unshare", unshare(CLONE_FILES));
        CALL("close in the thread", close(c_fd));
    }
    int g = open(path("b"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    lines(g, "thread b", 0, 2000);
    CALL("close b", close(g));
    return NULL;
}

static void scen_unshare_thread(void)
{
    c_fd = xopen("a", O_RDWR | O_CREAT | O_TRUNC);
    lines(c_fd, "main before", 0, 5000);
    pthread_t t;
    if (pthread_create(&t, NULL, unshare_thread, NULL) != 0)
        _exit(101);
    pthread_join(t, NULL);
    check("a after the thread", "a");
    check("b after the thread", "b");
    lines(c_fd, "main after", 0, 100);
    state("a", c_fd);
    CALL("close", close(c_fd));
    check("a after close", "a");
}

/* shim/proc.c invariants (11), (12). */
static void scen_namespaces(void)
{
    c_fd = xopen("a", O_RDWR | O_CREAT | O_TRUNC);
    lines(c_fd, "before", 0, 20000);
    int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    CALL("unshare newns", unshare(CLONE_NEWNS));
    int b = xopen("b", O_RDWR | O_CREAT | O_TRUNC);
    lines(b, "b", 0, 20000);
    lines(c_fd, "in ns", 0, 20000);
    CALL("setns back", setns(mnt, CLONE_NEWNS));
    close(mnt);
    lines(c_fd, "back", 0, 20000);
    state("b", b);
    close(b);
    if (strcmp(c_scenario, "namespaces_raw") == 0)
        CALL("raw unshare newuser", syscall(SYS_unshare, CLONE_NEWUSER));
    else
        CALL("unshare newuser", unshare(CLONE_NEWUSER));
    lines(c_fd, "user", 0, 20000);
    state("a", c_fd);
}

/* shim/proc.c invariant (8), cache/wbfd.c (2). */
static void scen_execoff(void)
{
    int s = xopen("s.sh", O_RDWR | O_CREAT | O_TRUNC);
    CALL("chmod", fchmod(s, 0755));
    const char *head = "#!/bin/sh\necho ran > \"$1\"\n";
    CALL("write head", write(s, head, strlen(head)));
    lines(s, "# pad", 0, 2000);
    int l = xopen("l", O_RDWR | O_CREAT | O_TRUNC);
    lines(l, "l", 0, 2000);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10};
    CALL("lock", fcntl(l, F_SETLK, &fl));
    if (strcmp(c_scenario, "execoff_seccomp") == 0) {
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K,
                                            SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {1, &allow};
        CALL("no new privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
        CALL("seccomp", prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog));
    } else {
        char *const av[] = {"nothing", NULL};
        CALL("exec of nothing", execve(path("nothing"), av, environ));
    }
    lines(s, "# more", 0, 10);
    CALL("close script", close(s));
    pid_t p = fork();
    if (p == 0) {
        char *const av[] = {"s.sh", path("ran"), NULL};
        execve(path("s.sh"), av, environ);
        _exit(errno == ETXTBSY ? 3 : 4);
    }
    int st = 0;
    CALL("wait", waitpid(p, &st, 0) == p);
    say("OUT script child: %s %d", WIFEXITED(st) ? "exit" : "signal",
        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    pid_t parent = getpid();
    p = fork();
    if (p == 0) {
        int fd = open(path("l"), O_RDWR);
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                          .l_len = 10};
        _exit(fd >= 0 && fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_WRLCK &&
                      q.l_pid == parent ? 0 : 5);
    }
    CALL("wait", waitpid(p, &st, 0) == p);
    say("OUT lock still held: %s", WIFEXITED(st) && !WEXITSTATUS(st) ? "yes"
                                                                    : "no");
    state("l", l);
}

/* The only thread takes a table of its own while the shim's flusher runs
 * (it has batches of "a" to write), then caches three new files and more
 * of "a", megabytes each. */
static void scen_unshare_solo(void)
{
    c_fd = xopen("a", O_RDWR | O_CREAT | O_TRUNC);
    lines(c_fd, "before", 0, 100000);
    CALL("unshare", unshare(CLONE_FILES));
    int n[3];
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "n%d", i);
        n[i] = xopen(name, O_RDWR | O_CREAT | O_TRUNC);
        lines(n[i], name, 0, 100000);
    }
    lines(c_fd, "after", 0, 100000);
    state("a", c_fd);
    for (int i = 0; i < 3; i++) {
        state("n", n[i]);
        CALL("close n", close(n[i]));
    }
    CALL("close", close(c_fd));
    check("a after close", "a");
    check("n0 after close", "n0");
    check("n2 after close", "n2");
}

/* ---- files with no name left --------------------------------------- */

/* What a descriptor shows of its file: size and a hash of every byte. */
static void shows(const char *label, int fd)
{
    struct stat st;
    long size = fstat(fd, &st) == 0 ? (long)st.st_size : -1;
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    say("OUT %s: size=%ld read=%zd hash=%016" PRIx64, label, size, n,
        wct_hash(buf, n > 0 ? (size_t)n : 0));
}

/* Cached bytes of a file that has no name left reach the holders the
 * shim does not know of: a reader opened before the unlink, a memfd's
 * duplicate taken before its writes, a parent reading what its child
 * wrote to an unlinked temporary file (the shell's `$(...)` into a file). */
static void scen_unlinked(void)
{
    /* First, on numbers nothing has used yet (the shim takes such a
     * descriptor in at its first write, as an inherited one). */
    int m = memfd_create("wcache-test", 0);
    int dup_before = dup(m);
    lines(m, "memfd", 0, 3000);
    CALL("close memfd writer", close(m));
    shows("memfd duplicate", dup_before);
    CALL("close duplicate", close(dup_before));

    int w = xopen("u", O_WRONLY | O_CREAT | O_TRUNC);
    int reader = xopen("u", O_RDONLY);
    lines(w, "unlinked", 0, 3000);
    CALL("unlink", unlink(path("u")));
    lines(w, "after unlink", 0, 100);
    CALL("close writer", close(w));
    shows("reader", reader);
    CALL("close reader", close(reader));

    int t = xopen("t", O_RDWR | O_CREAT | O_TRUNC);
    CALL("unlink t", unlink(path("t")));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int own = dup(t);
        lines(own, "child", 0, 3000);
        close(own);
        _exit(0);
    }
    int st;
    CALL("waitpid", waitpid(pid, &st, 0) == pid ? st : -1);
    shows("the child's temporary file", t);
    CALL("close t", close(t));
}

/* Another process, made before the program opens the file (a fork is a
 * consistency point, after which the program's description would be
 * shared with it), that changes the file when told, through a pipe (no
 * consistency point): appends n bytes of 'b' (n > 0) or truncates it to
 * -n, and answers 'k' (done) or 'e'. */
struct other {
    pid_t pid;
    int go, back;
};

static struct other other_start(const char *name)
{
    int go[2], back[2];
    if (pipe(go) || pipe(back)) {
        say("OUT fatal pipe errno=%d", errno);
        _exit(100);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(go[1]);
        close(back[0]);
        const char *file = path(name);
        long n;
        while (read(go[0], &n, sizeof n) == sizeof n) {
            char r = 'k';
            if (n > 0) {
                int fd = open(file, O_WRONLY | O_APPEND);
                memset(buf, 'b', (size_t)n);
                if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd))
                    r = 'e';
            } else if (truncate(file, -n)) {
                r = 'e';
            }
            if (write(back[1], &r, 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    close(go[0]);
    close(back[1]);
    return (struct other){pid, go[1], back[0]};
}

/* Tell the other process; its answer. */
static char other(struct other *o, long n)
{
    char r = 0;
    if (write(o->go, &n, sizeof n) != sizeof n || read(o->back, &r, 1) != 1) {
        say("OUT fatal: the other process is gone");
        _exit(100);
    }
    return r;
}

static void other_end(struct other *o)
{
    close(o->go);
    int st;
    CALL("waitpid", waitpid(o->pid, &st, 0) == o->pid ? st : -1);
    close(o->back);
}

/* Another process changes the size of a file the program wrote and
 * synced (nothing left to write back): truncates it, then makes it
 * longer. The program's reads returned the bytes of the size before
 * (96,000 after a truncation to 100), beside an fstat of the new one
 * (cache/read.c invariant (6)). */
static void scen_changed_after_fsync(void)
{
    struct other o = other_start("s");
    int w = xopen("s", O_RDWR | O_CREAT | O_TRUNC);
    lines(w, "before", 0, 3000);
    CALL("fsync", fsync(w));
    static const long sizes[] = {100, 0, 150000};
    for (int i = 0; i < 3; i++) {
        say("OUT another's truncate to %ld: %c", sizes[i],
            other(&o, -sizes[i]));
        /* A read first: an fstat before it would find the new size. */
        ssize_t n = pread(w, buf, sizeof buf, 0);
        say("OUT read after it: %zd hash=%016" PRIx64, n,
            wct_hash(buf, n > 0 ? (size_t)n : 0));
        shows("after it", w);
    }
    lines(w, "after", 0, 10);
    CALL("close", close(w));
    other_end(&o);
}

/* How many bytes of each kind the file holds, through a new descriptor
 * (no offset of the program's moves), and its size. */
static void kinds(const char *label, const char *name)
{
    int fd = xopen(name, O_RDONLY);
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    long k[256] = {0};
    for (ssize_t i = 0; i < n; i++)
        k[(unsigned char)buf[i]]++;
    say("OUT %s: read=%zd a=%ld b=%ld c=%ld q=%ld z=%ld zeros=%ld", label, n,
        k['a'], k['b'], k['c'], k['q'], k['z'], k[0]);
    close(fd);
}

/* A file the program appends to (O_APPEND) that another process appends
 * to or truncates between two of its runs of appends (after an fsync; a
 * pipe between them is no consistency point). The run began at the old
 * end (cache/write.c invariant A1): its bytes landed right, but the
 * offset stayed 250 where the kernel says 257 through fsync and locks (a
 * read then returned 7 of the program's own bytes), a pwrite into the run
 * through another descriptor wrote it over the other's 7 bytes, and a
 * truncation after it left 30 zeros for the program's 50 acknowledged
 * bytes. Last, the other appends during a run: a write into the run lands
 * the run first (A2), at the real end, where turning it into positional
 * writes at its old offsets wrote over the other's bytes; so does a
 * truncation. */
static void scen_appended_by_another(void)
{
    struct other o = other_start("ap");
    int fd = xopen("ap", O_RDWR | O_APPEND | O_CREAT | O_TRUNC);
    memset(buf, 'a', 10);
    for (int i = 0; i < 20; i++)
        CALL("append a", write(fd, buf, 10));
    CALL("fsync", fsync(fd));
    say("OUT another appends 7: %c", other(&o, 7));
    memset(buf, 'c', 10);
    for (int i = 0; i < 5; i++)
        CALL("append c", write(fd, buf, 10));
    CALL("fsync", fsync(fd));
    CALL("flock", flock(fd, LOCK_EX));
    CALL("unlock", flock(fd, LOCK_UN));
    CALL("offset", lseek(fd, 0, SEEK_CUR));
    CALL("read at it", read(fd, buf, 64));
    state("after the second run", fd);

    /* A pwrite into the run, through another description. */
    int rw = xopen("ap", O_RDWR);
    say("OUT another appends 7: %c", other(&o, 7));
    memset(buf, 'z', 50);
    CALL("append z", write(fd, buf, 50));
    CALL("pwrite q into it", pwrite(rw, "qqqqq", 5, 297));
    kinds("after the pwrite", "ap");
    state("after the pwrite", fd);

    /* A truncation after a run begun on a file another truncated (the
     * program's bytes synced first: cached ones would be written back
     * after the truncation, as a close-to-open client's are). */
    CALL("fsync", fsync(fd));
    say("OUT another truncates to 0: %c", other(&o, -0));
    memset(buf, 'z', 50);
    CALL("append z", write(fd, buf, 50));
    CALL("ftruncate", ftruncate(fd, 30));
    kinds("after the truncation", "ap");
    state("after the truncation", fd);

    /* The other appends during a run; then a pwrite into the run. */
    CALL("fsync", fsync(fd));
    memset(buf, 'z', 100);
    CALL("append z", write(fd, buf, 100));
    say("OUT another appends 7: %c", other(&o, 7));
    CALL("pwrite q into it", pwrite(rw, "qqqqq", 5, 80));
    kinds("after the pwrite", "ap");
    /* And a truncation within the other's bytes, which lands the run
     * first too: at its old offsets it went over them, leaving zeros
     * past its end. Which bytes are kept depends on the order, which
     * differs; that every byte is one of a writer's does not. */
    CALL("fsync", fsync(fd));
    CALL("append z", write(fd, buf, 100));
    say("OUT another appends 7: %c", other(&o, 7));
    CALL("ftruncate", ftruncate(fd, 240));
    CALL("close", close(rw));
    int rd = xopen("ap", O_RDONLY);
    ssize_t got = pread(rd, buf, sizeof buf, 0);
    long zeros = 0;
    for (ssize_t i = 0; i < got; i++)
        zeros += buf[i] == 0;
    say("OUT after the truncation: read=%zd zeros=%ld", got, zeros);
    close(rd);
    CALL("close", close(fd));
    /* Its order differs (the other's bytes first, README: two processes
     * appending): the tree compared afterwards leaves it out. */
    CALL("unlink", unlink(path("ap")));
    other_end(&o);
}

/* A child sets O_APPEND on the description it shares with the program
 * (the flag is the description's, every holder's) and moves the offset
 * back to 0, then exits: the program's next write appends, as every
 * holder's does. Under the shim it went over the file's first bytes,
 * reserved at the offset (shim/shared.c invariant (2)). */
static void scen_setfl_by_child(void)
{
    int fd = xopen("sf", O_RDWR | O_CREAT | O_TRUNC);
    lines(fd, "before", 0, 100);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fcntl(fd, F_SETFL, fl | O_APPEND) || lseek(fd, 0, SEEK_SET))
            _exit(1);
        _exit(0);
    }
    int st;
    CALL("waitpid", waitpid(pid, &st, 0) == pid ? st : -1);
    CALL("write", write(fd, "APPENDED\n", 9));
    CALL("offset", lseek(fd, 0, SEEK_CUR));
    lines(fd, "after", 0, 10);
    state("in the end", fd);
    CALL("close", close(fd));
}

/* Raw attribute calls on a cached file (shim/syscall.c routes them as
 * their wrappers): fchmodat2, setxattrat and removexattrat with
 * AT_EMPTY_PATH, by "" and by a pointer that is not readable (the shim
 * read it itself and died of SIGSEGV where the kernel answers EFAULT),
 * and fsetxattr. */
static void scen_raw_attr(void)
{
    int w = xopen("x", O_RDWR | O_CREAT | O_TRUNC);
    lines(w, "attr", 0, 300);
    CALL("fchmodat2 \"\"", syscall(452, w, "", 0600, AT_EMPTY_PATH));
    CALL("fchmodat2 bad path", syscall(452, AT_FDCWD, (char *)1, 0644,
                                       AT_EMPTY_PATH));
    CALL("fsetxattr", syscall(SYS_fsetxattr, w, "user.wct", "1", 1, 0));
    struct { uint64_t value; uint32_t size, flags; } args = {
        (uintptr_t)"22", 2, 0};
    CALL("setxattrat \"\"", syscall(463, w, "", AT_EMPTY_PATH, "user.wct2",
                                      &args, sizeof args));
    CALL("setxattrat bad path", syscall(463, w, (char *)1, AT_EMPTY_PATH,
                                        "user.wct2", &args, sizeof args));
    CALL("removexattrat bad path", syscall(466, w, (char *)1, AT_EMPTY_PATH,
                                           "user.wct2"));
    CALL("removexattrat \"\"", syscall(466, w, "", AT_EMPTY_PATH,
                                         "user.wct2"));
    lines(w, "after", 0, 10);
    CALL("close", close(w));
}

/* ---- descriptors that pass through, made during a file's first writes */

/* A description of file `name` in its first (watched) writes, then another
 * one the shim passes through (`how`: O_SYNC, O_DIRECT, or an fopen'd
 * stream), then enough writes through the first to cache the file; the
 * second writes inside the cached part and reads it back. */
static void bypass_one(const char *name, const char *how)
{
    static char x[8192] __attribute__((aligned(4096)));
    say("OUT bypass %s", how);
    int fd = xopen(name, O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 8; i++)
        CALL("first write", write(fd, "aaaaaaaaaaaaaaa\n", 16));
    int d = -1;
    FILE *s = NULL;
    if (strcmp(how, "sync") == 0)
        KEEP(d, "open O_SYNC", open(path(name), O_RDWR | O_SYNC));
    else if (strcmp(how, "direct") == 0)
        KEEP(d, "open O_DIRECT", open(path(name), O_RDWR | O_DIRECT));
    else
        s = fopen(path(name), "r+");
    lines(fd, "cached", 0, 3000);
    off_t t = 16384;
    memset(x, 'X', 4096);
    if (s) {
        CALL("fseek", fseek(s, t + 200, SEEK_SET));
        CALL("fwrite", fwrite(x, 1, 100, s));
        CALL("fflush", fflush(s));
        CALL("fseek back", fseek(s, t, SEEK_SET));
        ssize_t n = (ssize_t)fread(x + 4096, 1, 4096, s);
        say("OUT fread %zd hash=%016" PRIx64, n,
            wct_hash(x + 4096, n > 0 ? (size_t)n : 0));
        CALL("fclose", fclose(s));
    } else if (d >= 0) {
        CALL("pwrite", pwrite(d, x, strcmp(how, "direct") ? 100 : 4096,
                              t + (strcmp(how, "direct") ? 200 : 0)));
        ssize_t n = pread(d, x + 4096, 4096, t);
        say("OUT pread %zd hash=%016" PRIx64, n,
            wct_hash(x + 4096, n > 0 ? (size_t)n : 0));
        CALL("close d", close(d));
    }
    lines(fd, "after", 0, 10);
    state(name, fd);
    CALL("close", close(fd));
    check("after close", name);
}

/* O_DIRECT set with F_SETFL during the first writes: an unaligned write
 * is then the kernel's EINVAL (the shim cached and answered it). */
static void setfl_direct(const char *name)
{
    int fd = xopen(name, O_RDWR | O_CREAT | O_TRUNC);
    for (int i = 0; i < 8; i++)
        CALL("first write", write(fd, "0123456789\n", 11));
    CALL("F_SETFL O_DIRECT", fcntl(fd, F_SETFL, O_DIRECT));
    for (int i = 0; i < 20; i++)
        CALL("unaligned write", write(fd, "x", 1));
    CALL("unaligned pwrite", pwrite(fd, "y", 1, 3));
    state(name, fd);
    CALL("close", close(fd));
    check("after close", name);
}

/* A stream opened first, then the file opened and written through a
 * descriptor of the program's own: a reader's fgets, a writer's appends
 * between the descriptor's lines; after fclose, the file may cache. */
static void stream_first(const char *name)
{
    int w0 = xopen(name, O_WRONLY | O_CREAT | O_TRUNC);
    CALL("close", close(w0));
    FILE *r = fopen(path(name), "r");
    FILE *a = fopen(path(name), "a");
    int w = xopen(name, O_WRONLY | O_APPEND);
    char line[256];
    for (int round = 0; round < 3; round++) {
        lines(w, "descriptor", round * 1000, round * 1000 + 1000);
        fprintf(a, "stream line %d\n", round);
        CALL("fflush", fflush(a));
        int n = 0;
        while (fgets(line, sizeof line, r))
            n++;
        clearerr(r);
        say("OUT round %d: the reader got %d lines", round, n);
    }
    CALL("fclose reader", fclose(r));
    CALL("fclose appender", fclose(a));
    lines(w, "after the streams", 0, 3000);
    state(name, w);
    CALL("close", close(w));
    check("after close", name);
}

static void scen_bypassopen(void)
{
    bypass_one("a", "sync");
    bypass_one("b", "direct");
    bypass_one("c", "stdio");
    setfl_direct("d");
    stream_first("e");
}

/* ---- descriptors libc opens, and inherited ones, read before written ---- */

/* fd cached through `w`; what `other` (another number of its description,
 * or another description) shows. */
static void sibling_shows(const char *label, int w, int other)
{
    lines(w, label, 0, 3000);
    shows(label, other);
    CALL("lseek SEEK_END -10", lseek(other, -10, SEEK_END));
}

/* mkstemp's and memfd_create's descriptors (opened by libc's own calls)
 * and a duplicate of each made before the first write. */
static void scen_untracked(void)
{
    char t[4200];
    snprintf(t, sizeof t, "%s/tmpXXXXXX", dir);
    int m = mkstemp(t);
    int md = dup(m);
    sibling_shows("mkstemp", m, md);
    CALL("unlink", unlink(t));
    CALL("close", close(m));
    CALL("close dup", close(md));
    int f = memfd_create("wcache-test", 0);
    int fd2 = dup(f);
    sibling_shows("memfd", f, fd2);
    CALL("close", close(f));
    CALL("close dup", close(fd2));
    char redirs[10000];
    snprintf(redirs, sizeof redirs, "3<>'%s' 4>&3 5<'%s'", path("g"),
             path("g"));
    from_a_shell(redirs, "untracked_child");
}

/* Inherited: 3 and 4 one description, 5 a reader of the same file. */
static void scen_untracked_child(void)
{
    lines(3, "inherited", 0, 3000);
    shows("4, the same description", 4);
    shows("5, a reader", 5);
    CALL("lseek 5 SEEK_END -10", lseek(5, -10, SEEK_END));
}

/* ---- the loader reads a file just written ------------------------------ */

/* Copy the test library to DIR/name in 64-byte writes, left open. */
static int copy_library(const char *name)
{
    int in = open(WCT_PROG("so_answer.so"), O_RDONLY);
    if (in < 0) {
        say("OUT fatal open so_answer.so errno=%d", errno);
        _exit(100);
    }
    int out = xopen(name, O_WRONLY | O_CREAT | O_TRUNC);
    char b[64];
    ssize_t n;
    while ((n = read(in, b, sizeof b)) > 0)
        if (write(out, b, (size_t)n) != n)
            say("OUT short write of the copy");
    close(in);
    return out;
}

static void answer_of(const char *label, void *h)
{
    int (*f)(void) = h ? (int (*)(void))dlsym(h, "wct_answer") : NULL;
    say("OUT %s: %s, answer %d", label, h ? "loaded" : "not loaded",
        f ? f() : -1);
}

/* dlopen and dlmopen of a library the program has just written (and not
 * closed), and dlopen by name (the search from the program's call site). */
static void scen_dlopen(void)
{
    int a = copy_library("a.so");
    answer_of("dlopen", dlopen(path("a.so"), RTLD_NOW));
    int b = copy_library("b.so");
    answer_of("dlmopen", dlmopen(LM_ID_NEWLM, path("b.so"), RTLD_NOW));
    say("OUT dlopen by name: %s",
        dlopen("libm.so.6", RTLD_NOW) ? "loaded" : "not loaded");
    CALL("close a", close(a));
    CALL("close b", close(b));
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SCENARIO DIR\n", argv[0]);
        return 2;
    }
    dir = argv[2];
    static const struct {
        const char *name;
        void (*fn)(void);
    } scen[] = {
        {"raw_data", scen_raw_data},
        {"raw_fd", scen_raw_fd},
        {"raw_fork", scen_raw_fork},
        {"raw_exit_group", scen_raw_exit_group},
        {"raw_exit", scen_raw_exit},
        {"raw_exit_thread", scen_raw_exit_thread},
        {"pthread_exit", scen_pthread_exit},
        {"private", scen_private},
        {"errno", scen_errno},
        {"rwf", scen_rwf},
        {"passfd", scen_passfd},
        {"inhapp", scen_inhapp},
        {"inhapp_child", scen_inhapp_child},
        {"inhown", scen_inhown},
        {"unlinked", scen_unlinked},
        {"changed_after_fsync", scen_changed_after_fsync},
        {"appended_by_another", scen_appended_by_another},
        {"setfl_by_child", scen_setfl_by_child},
        {"raw_attr", scen_raw_attr},
        {"bypassopen", scen_bypassopen},
        {"dlopen", scen_dlopen},
        {"untracked", scen_untracked},
        {"untracked_child", scen_untracked_child},
        {"inhown_child", scen_inhown_child},
        {"reserve", scen_reserve},
        {"handle", scen_handle},
        {"sigro", scen_sigro},
        {"signal", scen_signal},
        {"clone", scen_clone},
        {"clone_files", scen_clone_apart},
        {"clone_files_raw", scen_clone_apart},
        {"clone_vm", scen_clone_apart},
        {"unshare_thread", scen_unshare_thread},
        {"unshare_range", scen_unshare_thread},
        {"unshare_raw", scen_unshare_thread},
        {"unshare_solo", scen_unshare_solo},
        {"namespaces", scen_namespaces},
        {"namespaces_raw", scen_namespaces},
        {"execoff", scen_execoff},
        {"execoff_seccomp", scen_execoff},
    };
    c_scenario = argv[1];
    for (size_t i = 0; i < sizeof scen / sizeof *scen; i++) {
        if (strcmp(scen[i].name, argv[1]) == 0) {
            scen[i].fn();
            say("OUT end");
            return 0;
        }
    }
    fprintf(stderr, "unknown scenario %s\n", argv[1]);
    return 2;
}
