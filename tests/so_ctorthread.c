/*
 * so_ctorthread.so - a library whose constructor starts a thread, as
 * OpenBLAS's starts its pool. Linked into a program (DT_NEEDED), its
 * constructor runs before the shim's: a preloaded library's runs after
 * those of the program's libraries (test_shim_threads.c, prog_ctorthread).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *idle(void *arg)
{
    for (;;)
        pause();
    return arg;
}

/* With WCT_CTOR_OPENER set, the thread opens and closes /dev/null until
 * the program's main calls ctor_opener_stop, counting the opens that did
 * not get the lowest free number (the one it got first): what the shim's
 * constructor does meanwhile in the table (its replay of a dead
 * program's store) must take none of it (shim/ownfd.c (7)). */
long ctor_opens, ctor_wrong;
static int g_stop, g_low = -1;

static void *opener(void *arg)
{
    while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ctor_opens++;
        if (fd != g_low)
            ctor_wrong++;
        if (fd >= 0)
            close(fd);
    }
    __atomic_store_n(&g_stop, 2, __ATOMIC_RELEASE);
    return idle(arg);
}

void ctor_opener_stop(void)
{
    if (g_low < 0)
        return;
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE) != 2)
        usleep(1000);
}

__attribute__((constructor)) static void start_pool(void)
{
    pthread_t t;
    int with_opener = getenv("WCT_CTOR_OPENER") != NULL;
    if (with_opener) {
        g_low = open("/dev/null", O_RDONLY | O_CLOEXEC);
        close(g_low);
    }
    if (pthread_create(&t, NULL, with_opener ? opener : idle, NULL) == 0)
        pthread_detach(t);
}
