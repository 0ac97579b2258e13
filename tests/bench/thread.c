/*
 * thread.c - a preloaded library that starts one thread and nothing else,
 * for `make bench`: the thread waits with every signal blocked, as the
 * shim's flusher does between batches (shim/flusher.c (1)). A program
 * that has made a thread stays multi-threaded in glibc's eyes for good,
 * and each of its forks takes glibc's multi-threaded path (its locks
 * taken and reset around the system call, more pages touched in the
 * child). A process that caches has the flusher, which the WCACHE_FLUSH_MS
 * deadline needs while the program sleeps, so this is the floor of the
 * fork row: what the thread costs whatever the thread does.
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static void *idle(void *arg)
{
    for (;;)
        pause();
    return arg;
}

__attribute__((constructor)) static void start(void)
{
    sigset_t all, old;
    pthread_t t;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&t, NULL, idle, NULL) == 0)
        pthread_detach(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
