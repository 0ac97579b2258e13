/*
 * so_forkctor.c - a library whose constructor forks from a thread of its
 * own and joins it: the loader's lock is held by the dlopen that runs the
 * constructor while the other thread forks (prog_points dlopen_fork).
 * The shim's fork must not wait for that lock (shim/real.c next_sym:
 * dlsym in fork's prepare did, and the two threads waited for each other
 * for good, probe AG F1).
 */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

int so_forkctor_status = -1;    /* the child's exit status, or -1 */

static void *forker(void *arg)
{
    (void)arg;
    pid_t p = fork();
    if (p == 0)
        _exit(7);
    int st;
    if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st))
        so_forkctor_status = WEXITSTATUS(st);
    return NULL;
}

__attribute__((constructor)) static void so_forkctor_init(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, forker, NULL) == 0)
        pthread_join(t, NULL);
}
