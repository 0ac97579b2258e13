/*
 * prog_deadnamer.c - a close that never returns (its caller killed or
 * cancelled inside it) leaves the parent's calls as they were.
 *
 *   prog_deadnamer vfork|cancel|accept|jump FILE
 *
 * Caches FILE through two descriptions (two opens). Then a close blocks:
 * of a TCP connection to a listener nobody accepts from, its data not
 * sent, with SO_LINGER (the kernel waits to send). With "vfork", a vfork
 * child makes the connection and closes it, and a helper process, told
 * the child's pid through a pipe, kills the child with SIGKILL in its
 * close; with "cancel", a thread makes it and closes it, and main
 * cancels that thread (close is a cancellation point) and joins it;
 * with "accept", a thread waits in accept on the listener (a maker, also
 * a cancellation point: a server's way to stop its accept thread), and
 * main cancels and joins it; with "jump", main waits in accept itself
 * and leaves it by a siglongjmp out of its SIGALRM handler (a timeout).
 * Then main closes the first description of FILE (under the shim the
 * engine then reopens the file for itself, its descriptor opened for an
 * instant in the program's table: shim/ownfd.c (7)), writes through the
 * second, closes it, and checks the file; then a new thread does that
 * 500 times more. Prints "ok" and exits 0; a program whose windows wait for the
 * dead call takes 100 ms each (past the test's timeout) or hangs.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

static struct sockaddr_in g_sa;
static int g_tell = -1;         /* where the closer tells its pid */
static int g_closing;           /* the closer is about to close */

/* Connect to the listener, fill what the kernel would send, and close
 * with SO_LINGER: the close blocks until the caller is killed or
 * cancelled. */
static void *closer(void *arg)
{
    (void)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&g_sa, sizeof g_sa) != 0)
        _exit(3);
    int small = 4096;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    fcntl(s, F_SETFL, O_NONBLOCK);
    static char junk[65536];
    for (int idle = 0; idle < 3;) {     /* the peer's window full */
        if (write(s, junk, sizeof junk) > 0) {
            idle = 0;
        } else {
            idle++;
            usleep(10000);
        }
    }
    fcntl(s, F_SETFL, 0);
    struct linger lg = {1, 30};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    pid_t me = getpid();
    if (g_tell >= 0 && write(g_tell, &me, sizeof me) != sizeof me)
        _exit(4);
    __atomic_store_n(&g_closing, 1, __ATOMIC_RELEASE);
    close(s);                   /* blocks until killed or cancelled */
    _exit(5);
}

/* Waits for a connection nobody makes, until cancelled. */
static int g_listener = -1;
static void *acceptor(void *arg)
{
    (void)arg;
    __atomic_store_n(&g_closing, 1, __ATOMIC_RELEASE);
    accept(g_listener, NULL, NULL);
    _exit(6);
}

static sigjmp_buf g_jump;
static void jump_out(int sig)
{
    (void)sig;
    siglongjmp(g_jump, 1);
}

/* 500 times: the file cached through two descriptions, the first
 * closed (a window each). NULL, or the file's name on a failure. */
static void *again(void *arg)
{
    const char *path = arg;
    for (int i = 0; i < 500; i++) {
        int a = open(path, O_WRONLY), b = open(path, O_WRONLY);
        if (a < 0 || b < 0 || write(a, "again\n", 6) != 6 ||
            pwrite(b, "b", 1, 4000) != 1 || close(a) != 0 || close(b) != 0)
            return arg;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *path = argv[2];
    int a = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int b = open(path, O_WRONLY);
    if (a < 0 || b < 0)
        return wct_fail("open");
    for (int i = 0; i < 100; i++)
        if (write(a, "first line\n", 11) != 11)
            return wct_fail("write");
    if (pwrite(b, "second", 6, 2000) != 6)
        return wct_fail("pwrite");

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int rcv = 4096;
    if (l >= 0)
        setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&sa, &sl))
        return wct_fail("listen");
    g_sa = sa;

    g_listener = l;
    if (!strcmp(argv[1], "cancel") || !strcmp(argv[1], "accept")) {
        pthread_t t;
        if (pthread_create(&t, NULL,
                           !strcmp(argv[1], "accept") ? acceptor : closer,
                           NULL) != 0)
            return wct_fail("pthread_create");
        while (!__atomic_load_n(&g_closing, __ATOMIC_ACQUIRE))
            usleep(1000);
        usleep(200000);         /* in its close or accept by now */
        void *res;
        if (pthread_cancel(t) != 0 || pthread_join(t, &res) != 0 ||
            res != PTHREAD_CANCELED) {
            fprintf(stderr, "thread not cancelled\n");
            return 1;
        }
    } else if (!strcmp(argv[1], "jump")) {
        struct sigaction sa = {.sa_handler = jump_out};
        struct itimerval it = {.it_value = {0, 200000}};
        if (sigaction(SIGALRM, &sa, NULL) != 0)
            return wct_fail("sigaction");
        if (!sigsetjmp(g_jump, 1)) {
            if (setitimer(ITIMER_REAL, &it, NULL) != 0)
                return wct_fail("setitimer");
            accept(l, NULL, NULL);
            fprintf(stderr, "accept returned\n");
            return 1;
        }
    } else {
        int p[2];
        if (pipe(p) != 0)
            return wct_fail("pipe");
        pid_t killer = wct_killer(p[0], 300000);    /* in its close by then */
        if (killer < 0)
            return wct_fail("fork");
        g_tell = p[1];
        pid_t c = vfork();
        if (c == 0) {
            closer(NULL);
            _exit(5);
        }
        if (c < 0)
            return wct_fail("vfork");
        if (!wct_killed(c, killer))
            return 1;
    }

    if (close(a) != 0)
        return wct_fail("close a");
    if (pwrite(b, "third", 5, 3000) != 5 || close(b) != 0)
        return wct_fail("b");
    char got[3005];
    int r = open(path, O_RDONLY);
    if (r < 0 || pread(r, got, sizeof got, 0) != (ssize_t)sizeof got)
        return wct_fail("read back");
    close(r);
    if (memcmp(got, "first line\n", 11) || memcmp(got + 2000, "second", 6) ||
        memcmp(got + 3000, "third", 5)) {
        fprintf(stderr, "contents differ\n");
        return 1;
    }
    /* And as many more windows, from a thread of their own (one that
     * never counted the dead call as its own): a count the dead call
     * left raised would cost each a wait (100 ms: 50 s in all). */
    pthread_t t;
    void *res;
    if (pthread_create(&t, NULL, again, (void *)path) != 0 ||
        pthread_join(t, &res) != 0 || res != NULL)
        return wct_fail("again");
    close(l);
    printf("ok\n");
    return 0;
}
