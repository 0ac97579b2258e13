/*
 * prog_tsanrace.c - one deliberate data race, for ThreadSanitizer to
 * report from a program thread outside the shim (test_shim_fds.c, tsan
 * suite, built in build/tsan; the plain build has no use for it).
 *
 *   prog_tsanrace FILE
 *
 * Opens FILE for writing (the shim is on, and tracks it); a second thread
 * and then the main thread store to `racy` with nothing ordering them for
 * the sanitizer (a relaxed flag says when, and synchronises nothing); then
 * "done" goes to FILE. The sanitizer reports the race in racy_store, a
 * name its symbolizer finds: with halt_on_error=0 exitcode=66 the program
 * exits 66.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

static volatile int racy;
static int flag;

__attribute__((noinline)) static void racy_store(int v)
{
    racy = v;
}

static void *other(void *arg)
{
    (void)arg;
    racy_store(1);
    __atomic_store_n(&flag, 1, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, other, NULL) != 0)
        return 1;
    while (!__atomic_load_n(&flag, __ATOMIC_RELAXED))
        sched_yield();
    racy_store(2);
    pthread_join(t, NULL);
    if (write(fd, "done\n", 5) != 5 || close(fd) != 0) {
        perror("write");
        return 1;
    }
    return 0;
}
