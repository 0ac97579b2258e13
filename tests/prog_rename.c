/*
 * prog_rename.c - a writer that renames what it writes, then waits to be
 * killed (test_shim_kill.c: a replay after a crash must find the file
 * under its new name).
 *
 *   prog_rename DIR SEED HOW N
 *
 * (The arguments of prog_killwriter, so that the kill tests start it the
 * same way; SEED is unused.) Reads one byte from stdin, writes N records
 * of 100 bytes ('a' + k % 26, then a newline) to a file, renames, writes
 * N more, prints "0" (one acknowledgement: everything returned), and
 * sleeps until killed. HOW:
 *   file  DIR/A, renamed to DIR/B
 *   dir   DIR/stage/f, the directory renamed to DIR/final
 *   unlink  DIR/A, unlinked after N records (the kernel frees the file
 *         and its bytes with the process)
 *   chroot  DIR/A; after N records the process chroots into DIR (no /proc
 *         there: no file can be named from inside) and writes N records to
 *         a new /B (DIR/B) beside the N more of A
 *   chrootproc  the same, in a mount namespace of its own with a /proc
 *         mounted in DIR (names from inside look absolute: "/B")
 *   longname  DIR/L, L five directories of 200 bytes' names deep: a name
 *         longer than a backing file's slot holds
 *   linked  DIR/A, linked as DIR/sub/L before its first write; DIR/A
 *         unlinked after N records (the file lives on as DIR/sub/L)
 *   relink  DIR/A, linked as DIR/sub/L after N records, then DIR/A
 *         unlinked (a move done by link and unlink, as a maildir's)
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Record k of 100 bytes to fd. */
static int put(int fd, long k)
{
    char rec[100];
    memset(rec, 'a' + (int)(k % 26), sizeof rec);
    rec[sizeof rec - 1] = '\n';
    return write(fd, rec, sizeof rec) == (ssize_t)sizeof rec ? 0 : -1;
}

/* Modes unlink, chroot and chrootproc. */
static int away(const char *dir, const char *how, long n)
{
    char file[4300];
    snprintf(file, sizeof file, "%s", dir);
    if (!strcmp(how, "longname"))
        for (int i = 0; i < 5; i++) {
            size_t l = strlen(file);
            file[l++] = '/';
            memset(file + l, 'a' + i, 200);
            file[l + 200] = 0;
            if (mkdir(file, 0755) != 0)
                return 1;
        }
    strcat(file, "/A");
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644), fb = -1;
    int linked = !strcmp(how, "linked"), relink = !strcmp(how, "relink");
    char other[4300];
    snprintf(other, sizeof other, "%s/sub", dir);
    if (fd < 0 || ((linked || relink) && mkdir(other, 0755) != 0))
        return 1;
    strcat(other, "/L");
    if (linked && link(file, other) != 0)
        return 1;
    for (long k = 0; k < n; k++)
        if (put(fd, k))
            return 1;
    if (linked || relink || !strcmp(how, "unlink")) {
        if ((relink && link(file, other) != 0) || unlink(file) != 0)
            return 1;
    } else if (strcmp(how, "longname")) {
        if (!strcmp(how, "chrootproc")) {
            char proc[4300];
            snprintf(proc, sizeof proc, "%s/proc", dir);
            if (unshare(CLONE_NEWNS) != 0 ||
                mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
                mkdir(proc, 0755) != 0 ||
                mount("proc", proc, "proc", 0, NULL) != 0)
                return 1;
        }
        if (chroot(dir) != 0 || chdir("/") != 0 ||
            (fb = open("/B", O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
            return 1;
    }
    for (long k = n; k < 2 * n; k++)
        if (put(fd, k) || (fb >= 0 && put(fb, k - n)))
            return 1;
    printf("0\n");
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    const char *dir = argv[1], *how = argv[3];
    long n = atol(argv[4]);
    int dirmode = !strcmp(how, "dir");
    char from[4200], to[4200], file[4300], rec[100], go;
    if (read(0, &go, 1) != 1)
        return 1;
    if (strcmp(how, "file") && strcmp(how, "dir"))
        return away(dir, how, n);
    snprintf(from, sizeof from, "%s/%s", dir, dirmode ? "stage" : "A");
    snprintf(to, sizeof to, "%s/%s", dir, dirmode ? "final" : "B");
    if (dirmode && mkdir(from, 0755) != 0)
        return 1;
    snprintf(file, sizeof file, "%s%s", from, dirmode ? "/f" : "");
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 1;
    for (long k = 0; k < 2 * n; k++) {
        if (k == n && rename(from, to) != 0)
            return 1;
        memset(rec, 'a' + (int)(k % 26), sizeof rec);
        rec[sizeof rec - 1] = '\n';
        if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
            return 1;
    }
    printf("0\n");
    fflush(stdout);
    for (;;)
        pause();
}
