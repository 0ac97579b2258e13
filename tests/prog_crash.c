/*
 * prog_crash.c - dies of a synchronous fault after writing a file, for
 * test_shim_crash.
 *
 *   prog_crash FILE HOW [LINES]
 *
 * Allows a core dump (RLIMIT_CORE 64 MiB: the test runs it in a scratch
 * directory), writes LINES (1000) numbered lines to FILE with one write()
 * each, "line %04d\n" (10 bytes) or, past 1000 lines, "line %07d\n" (13
 * bytes), then dies as HOW says:
 *   null      dereferences NULL (SIGSEGV)
 *   stack     overflows its stack (SIGSEGV on the guard page)
 *   fpe       divides by zero (SIGFPE)
 *   trap      __builtin_trap (SIGILL)
 *   int3      a breakpoint instruction (SIGTRAP)
 *   bus       touches a mapping past the end of its file (SIGBUS)
 *   sys       raise(SIGSYS)
 *   abort     abort()
 *   thread    a second thread dereferences NULL
 *   tstack    a second thread overflows its stack
 *   tsegv     a second thread raises SIGSEGV
 *   handler   a SIGFPE handler of its own prints and exits 9, then fpe
 *   segvstack a SIGSEGV handler of its own (prints, exits 9; set without
 *             SA_ONSTACK and no stack of its own), then overflows its
 *             stack: the kernel cannot run the handler (no room) and the
 *             process dies of SIGSEGV; segvostack: with SA_ONSTACK;
 *             tsegvstack: in a second thread
 *   segvnull  the same handler, then NULL: the handler runs (exit 9);
 *             tsegvnull: in a second thread
 *   ignored   SIGSEGV set to SIG_IGN, then raise(SIGSEGV): survives
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static volatile int zero;
static volatile int *volatile nullp;

static volatile int forever = 1;

static int recurse(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    if (!forever)
        return 0;
    return recurse(n + 1) + pad[0];
}

static void bus(void)
{
    char tmp[] = "prog_crash.XXXXXX";
    int fd = mkstemp(tmp);
    unlink(tmp);
    volatile char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    (void)m[0];
}

static void die(const char *how)
{
    if (!strcmp(how, "null") || !strcmp(how, "thread") ||
        strstr(how, "segvnull"))
        *nullp = 1;
    else if (!strcmp(how, "stack") || !strcmp(how, "tstack") ||
             strstr(how, "segvstack") || strstr(how, "segvostack"))
        recurse(0);
    else if (!strcmp(how, "fpe") || !strcmp(how, "handler"))
        printf("%d\n", 100 / zero);
    else if (!strcmp(how, "trap"))
        __builtin_trap();
    else if (!strcmp(how, "int3"))
        __asm__ volatile("int3");
    else if (!strcmp(how, "bus"))
        bus();
    else if (!strcmp(how, "sys"))
        raise(SIGSYS);
    else if (!strcmp(how, "abort"))
        abort();
    else if (!strcmp(how, "tsegv"))
        raise(SIGSEGV);
}

static void on_segv(int sig)
{
    char m[64];
    int n = snprintf(m, sizeof m, "handler ran for %d\n", sig);
    write(1, m, (size_t)n);
    _exit(9);
}

static void *thread_main(void *how)
{
    die(how);
    return NULL;
}

static void on_fpe(int sig)
{
    char m[64];
    int n = snprintf(m, sizeof m, "handler ran for %d\n", sig);
    write(1, m, (size_t)n);
    _exit(9);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4)
        return 2;
    long lines = argc == 4 ? atol(argv[3]) : 1000;
    const char *how = argv[2];
    struct rlimit core = {64 << 20, 64 << 20};
    setrlimit(RLIMIT_CORE, &core);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 3;
    char line[64];
    for (long i = 0; i < lines; i++) {
        int n = snprintf(line, sizeof line,
                         lines > 1000 ? "line %07ld\n" : "line %04ld\n", i);
        if (write(fd, line, (size_t)n) != n)
            return 4;
    }
    if (!strcmp(how, "handler"))
        signal(SIGFPE, on_fpe);
    if (strstr(how, "segvstack") || strstr(how, "segvostack") ||
        strstr(how, "segvnull")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sa.sa_flags = strstr(how, "segvostack") ? SA_ONSTACK : 0;
        sigaction(SIGSEGV, &sa, NULL);
    }
    if (!strcmp(how, "ignored")) {
        signal(SIGSEGV, SIG_IGN);
        raise(SIGSEGV);
    }
    if (how[0] == 't' && strcmp(how, "trap")) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 << 10);
        pthread_create(&t, &a, thread_main, (void *)how);
        pthread_join(t, NULL);
    } else {
        die(how);
    }
    printf("still alive\n");
    return 0;
}
