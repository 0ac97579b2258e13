/*
 * prog_execlock.c - a POSIX record lock held across exec (test_shim_locks.c).
 *
 *   prog_execlock FILE
 *
 * Writes 20 lines to FILE (so that the shim caches it), takes a write lock
 * on its first byte, tries an exec that fails (after which every other
 * descriptor of FILE must be close-on-exec again, as none was before),
 * and execs itself. The new image asks, from a child,
 * whether the lock is still held by it (the kernel keeps a process's
 * record locks across exec when no descriptor of the file is
 * close-on-exec), writes one more line through the inherited descriptor,
 * and prints what it found.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Does every descriptor of path other than `mine` have O_CLOEXEC? The
 * kernel's view (/proc/self/fdinfo), which includes descriptors the
 * program did not open itself. */
static int others_cloexec(const char *path, int mine)
{
    DIR *dir = opendir("/proc/self/fdinfo");
    if (!dir)
        return 0;
    char want[4096];
    if (!realpath(path, want))
        return 0;
    int ok = 1;
    struct dirent *e;
    while ((e = readdir(dir))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == mine || fd == dirfd(dir))
            continue;
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (strcmp(target, want))
            continue;
        char info[64];
        snprintf(info, sizeof info, "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(info, "r");
        unsigned long flags = 0;
        char line[256];
        while (f && fgets(line, sizeof line, f))
            sscanf(line, "flags: %lo", &flags);
        if (f)
            fclose(f);
        if (!(flags & O_CLOEXEC))
            ok = 0;
    }
    closedir(dir);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc == 2) {
        int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return 2;
        for (int i = 0; i < 20; i++) {
            char line[32];
            int n = snprintf(line, sizeof line, "line %d\n", i);
            if (write(fd, line, (size_t)n) != n)
                return 3;
        }
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                          .l_len = 1};
        if (fcntl(fd, F_SETLK, &l) != 0)
            return 4;
        execl("/nonexistent/prog_execlock", "x", (char *)NULL);
        printf("after a failed exec, other descriptors close-on-exec: %s\n",
               others_cloexec(argv[1], fd) ? "yes" : "no");
        fflush(stdout);
        char num[16];
        snprintf(num, sizeof num, "%d", fd);
        execl(argv[0], argv[0], argv[1], num, (char *)NULL);
        return 5;
    }
    if (argc != 3)
        return 2;
    int fd = atoi(argv[2]);
    pid_t child = fork();
    if (child == 0) {
        int rd = open(argv[1], O_RDONLY);
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                          .l_len = 1};
        _exit(rd >= 0 && fcntl(rd, F_GETLK, &q) == 0 &&
                      q.l_type == F_WRLCK && q.l_pid == getppid() ? 0 : 1);
    }
    int st;
    int held = child > 0 && waitpid(child, &st, 0) == child &&
               WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("after exec: %s\n", held ? "locked by this process"
                                     : "the lock is gone");
    if (write(fd, "after exec\n", 11) != 11)
        return 6;
    return close(fd) == 0 ? 0 : 7;
}
