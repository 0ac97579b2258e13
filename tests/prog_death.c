/*
 * prog_death.c - dies of a signal after writing a file, for test_shim_death.
 *
 *   prog_death FILE SIG MODE
 *
 * Prints the action it sees for SIG (as the program would), writes 2000
 * numbered lines to FILE with one write() each, then:
 *   MODE dfl      kill(getpid(), SIG) with the default action
 *   MODE reset    installs a handler, then SIG_DFL again, then kill
 *   MODE handler  installs a handler that prints and exits 7, then kill
 *   MODE ignore   SIG_IGN, then kill: survives, exits 0
 *   MODE fault    (SIGILL, SIGFPE, SIGTRAP) SIG_IGN, then the fault itself
 *                 (ud2, a division by zero, int3): the kernel forces the
 *                 default action and the process dies of it
 *   MODE exec     SIG_IGN, then exec of itself in MODE shown, which
 *                 prints the action it was given and exits 0
 *   MODE spawn    the same by posix_spawn, waited for
 *   MODE pipe     (SIG is ignored) writes to a pipe with no reader
 *   MODE noframe  a handler for SIG set behind the shim (a raw
 *                 rt_sigaction) without the restorer x86-64 needs, then
 *                 kill: the kernel cannot deliver SIG and kills with
 *                 SIGSEGV (a failed signal frame: no fault repeats)
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void on_sig(int sig)
{
    char m[64];
    int n = snprintf(m, sizeof m, "handler ran for %d\n", sig);
    write(1, m, (size_t)n);
    _exit(7);
}

/* The action as sigaction reports it: handler, flags, and whether the
 * mask holds SIGKILL (the kernel never keeps it there). */
static const char *action(int sig)
{
    static char buf[96];
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) != 0)
        return "error";
    const char *h = sa.sa_flags & SA_SIGINFO ? "siginfo" :
                    sa.sa_handler == SIG_DFL ? "default" :
                    sa.sa_handler == SIG_IGN ? "ignore" : "handler";
    snprintf(buf, sizeof buf, "%s flags %#x kill-in-mask %d", h,
             (unsigned)sa.sa_flags, sigismember(&sa.sa_mask, SIGKILL));
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int sig = atoi(argv[2]);
    const char *mode = argv[3];
    if (!strcmp(mode, "shown")) {
        printf("new image: %s\n", action(sig));
        return 0;
    }
    printf("start: %s\n", action(sig));
    fflush(stdout);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 3;
    char line[64];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(line, sizeof line, "line %04d\n", i);
        if (write(fd, line, (size_t)n) != n)
            return 4;
    }
    if (!strcmp(mode, "reset")) {
        signal(sig, on_sig);
        printf("set: %s\n", action(sig));
        printf("old: %s\n", signal(sig, SIG_DFL) == on_sig ? "ours" : "?");
    } else if (!strcmp(mode, "handler")) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sig;
        sigaction(sig, &sa, &old);
        printf("old: %s\n", old.sa_handler == SIG_DFL ? "default" : "?");
    } else if (!strcmp(mode, "ignore") || !strcmp(mode, "fault") ||
               !strcmp(mode, "exec") || !strcmp(mode, "spawn")) {
        /* With a full mask, which the kernel keeps without SIGKILL and
         * SIGSTOP. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigfillset(&sa.sa_mask);
        sigaction(sig, &sa, NULL);
    }
    if (!strcmp(mode, "noframe")) {
        struct {
            void (*handler)(int);
            unsigned long flags;
            void (*restorer)(void);
            unsigned long mask;
        } k = {on_sig, 0, NULL, 0};
        if (syscall(SYS_rt_sigaction, sig, &k, NULL, 8) != 0)
            return 11;
    } else {
        printf("now: %s\n", action(sig));
    }
    fflush(stdout);
    if (!strcmp(mode, "pipe")) {
        int p[2];
        if (pipe(p) != 0)
            return 5;
        close(p[0]);
        write(p[1], "x", 1);        /* SIGPIPE */
        return 6;
    }
    if (!strcmp(mode, "fault")) {
        if (sig == SIGILL)
            __asm__ volatile("ud2");
        if (sig == SIGTRAP)
            __asm__ volatile("int3");
        if (sig == SIGFPE) {
            volatile int zero = 0, one = 1;
            printf("%d\n", one / zero);
        }
        return 8;
    }
    if (!strcmp(mode, "exec") || !strcmp(mode, "spawn")) {
        char *av[] = {(char *)"prog_death", argv[1], argv[2],
                      (char *)"shown", NULL};
        if (!strcmp(mode, "exec")) {
            execv("/proc/self/exe", av);
            return 9;
        }
        extern char **environ;
        pid_t pid;
        int st;
        if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, av, environ) ||
            waitpid(pid, &st, 0) != pid)
            return 9;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 10;
    }
    kill(getpid(), sig);
    return 0;
}
