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
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
