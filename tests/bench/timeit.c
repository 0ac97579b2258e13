/*
 * timeit.c - time whole processes for `make bench`.
 *
 *   timeit [-p LIB] [-e NAME=VALUE]... N CMD [ARG...]
 *
 * Runs CMD N times one after the other (fork, exec, wait4) and prints one
 * line: the wall-clock seconds of all N runs together, and the largest
 * peak resident set (KiB) of any of them. -p LIB preloads LIB into CMD
 * only (LD_PRELOAD, set in the child), so that the timer itself never
 * runs under the shim; -e adds variables to CMD's environment. CMD's
 * standard output goes to /dev/null (its errors stay). Exits 1 if
 * a run fails (a nonzero status or a signal), naming it on stderr.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *lib = NULL;
    char *envs[16];
    int nenv = 0, opt;
    while ((opt = getopt(argc, argv, "+p:e:")) != -1) {
        if (opt == 'p')
            lib = optarg;
        else if (opt == 'e' && nenv < 16)
            envs[nenv++] = optarg;
        else
            return 2;
    }
    if (argc - optind < 2) {
        fprintf(stderr, "usage: timeit [-p LIB] [-e N=V]... N CMD [ARG...]\n");
        return 2;
    }
    long n = atol(argv[optind]);
    char **cmd = argv + optind + 1;
    long maxrss = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("timeit: fork");
            return 1;
        }
        if (pid == 0) {
            for (int k = 0; k < nenv; k++)
                putenv(envs[k]);
            if (lib)
                setenv("LD_PRELOAD", lib, 1);
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0 && null != 1) {
                dup2(null, 1);
                close(null);
            }
            execvp(cmd[0], cmd);
            perror(cmd[0]);
            _exit(127);
        }
        int st;
        struct rusage ru;
        if (wait4(pid, &st, 0, &ru) != pid) {
            perror("timeit: wait4");
            return 1;
        }
        if (ru.ru_maxrss > maxrss)
            maxrss = ru.ru_maxrss;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "timeit: %s failed (status %#x)\n", cmd[0], st);
            return 1;
        }
    }
    printf("%.6f %ld\n", now() - t0, maxrss);
    return 0;
}
