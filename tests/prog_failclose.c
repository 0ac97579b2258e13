/*
 * prog_failclose.c - a program whose close reports a write-back error
 * (test_shim_errors.c, fuse_failfs failing every write while CTL exists),
 * and what it and another process do with the file afterwards.
 *
 *   prog_failclose FILE CTL MODE
 *
 * Both modes write 40 records of 100 bytes ('a'.. 'z', then again; each
 * ends in a newline) through an O_RDWR | O_CREAT | O_TRUNC descriptor,
 * create CTL after the first 30 (the server fails every write from then
 * on), close the descriptor and remove CTL (the server works again).
 * MODE:
 *   reopen  open FILE again with O_WRONLY | O_APPEND, write "appended\n",
 *           print the size fstat gives, close
 *   other   another process (`/bin/sh -c 'printf ... > FILE'` without
 *           LD_PRELOAD, started first, told through a pipe) rewrites the
 *           file after the close; then sync() (a consistency point: the
 *           shim retries what it could not write)
 *   other-mv the same, the other process renaming the file to
 *           FILE.renamed and making it mode 0600 (its ctime changes, not
 *           its content)
 * Each result that is not a plain success is printed ("write K -> -1
 * Input/output error", "close -> ..."), then "size N" for reopen, "done".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: prog_failclose FILE CTL reopen|other\n");
        return 2;
    }
    const char *path = argv[1], *ctl = argv[2], *mode = argv[3];
    char rec[100];
    unlink(ctl);
    /* The other process is started first (a fork later would be a
     * consistency point of its own, the retry made before the rewrite),
     * and rewrites the file when told through a pipe. */
    int go[2], done[2];
    pid_t other = -1;
    int other_mv = !strcmp(mode, "other-mv");
    if (!strcmp(mode, "other") || other_mv) {
        char cmd[8192];
        if (other_mv)
            snprintf(cmd, sizeof cmd, "read x && mv '%s' '%s.renamed' && "
                     "chmod 600 '%s.renamed' && echo ok", path, path, path);
        else
            snprintf(cmd, sizeof cmd, "read x && printf 'rewritten by "
                     "another process\\n' > '%s' && echo ok", path);
        if (pipe(go) != 0 || pipe(done) != 0 || (other = fork()) < 0) {
            perror("pipe, fork");
            return 1;
        }
        if (other == 0) {
            dup2(go[0], 0);
            dup2(done[1], 1);
            close(go[1]);
            close(done[0]);
            unsetenv("LD_PRELOAD");
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        close(go[0]);
        close(done[1]);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    for (int i = 0; i < 40; i++) {
        if (i == 30) {
            int c = open(ctl, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (c < 0 || close(c) != 0) {
                perror(ctl);
                return 1;
            }
        }
        memset(rec, 'a' + i % 26, sizeof rec);
        rec[sizeof rec - 1] = '\n';
        errno = 0;
        ssize_t w = write(fd, rec, sizeof rec);
        if (w != (ssize_t)sizeof rec || errno)
            printf("write %d -> %zd %s\n", i + 1, w, strerror(errno));
    }
    errno = 0;
    int r = close(fd);
    printf("close -> %d%s%s\n", r, r ? " " : "", r ? strerror(errno) : "");
    if (unlink(ctl) != 0) {
        perror(ctl);
        return 1;
    }
    if (!strcmp(mode, "reopen")) {
        fd = open(path, O_WRONLY | O_APPEND);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        errno = 0;
        ssize_t w = write(fd, "appended\n", 9);
        if (w != 9 || errno)
            printf("append -> %zd %s\n", w, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) != 0) {
            perror("fstat");
            return 1;
        }
        printf("size %lld\n", (long long)st.st_size);
        errno = 0;
        r = close(fd);
        if (r || errno)
            printf("close -> %d %s\n", r, strerror(errno));
    } else if (!strcmp(mode, "other") || other_mv) {
        char ok[3] = "";
        int status = 0;
        if (write(go[1], "\n", 1) != 1 || read(done[0], ok, 3) != 3 ||
            memcmp(ok, "ok\n", 3) != 0 || waitpid(other, &status, 0) != other ||
            status != 0) {
            fprintf(stderr, "the other process failed\n");
            return 1;
        }
        sync();
    } else {
        fprintf(stderr, "prog_failclose: unknown mode %s\n", mode);
        return 2;
    }
    printf("done\n");
    return 0;
}
