/*
 * so_ctorthread.so - a library whose constructor starts a thread, as
 * OpenBLAS's starts its pool. Linked into a program (DT_NEEDED), its
 * constructor runs before the shim's: a preloaded library's runs after
 * those of the program's libraries (test_shim_threads.c, prog_ctorthread).
 */
#include <pthread.h>
#include <unistd.h>

static void *idle(void *arg)
{
    for (;;)
        pause();
    return arg;
}

__attribute__((constructor)) static void start_pool(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle, NULL) == 0)
        pthread_detach(t);
}
