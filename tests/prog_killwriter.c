/*
 * prog_killwriter.c - the writer of the kill loops (test_shim_kill.c).
 *
 *   prog_killwriter DIR SEED HOW N
 *
 * Appends the records of stream SEED (lib_records.h) to DIR/a with write()
 * or writev() (in 1 to 3 pieces), and the records of stream SEED+1 to DIR/b
 * with pwrite() at their offsets; after both calls returned, prints the
 * record number on stdout (a pipe): that record is acknowledged. Before the
 * first record it reads one byte from stdin (the test may move it into a
 * cgroup first). After record N (HOW other than "run") it dies by HOW:
 *   run    keeps writing (up to 200000 records, then sleeps): the test
 *          kills it
 *   pause  stops and sleeps: the test kills it while no write, and so no
 *          write-back, is in progress
 *   segv   dereferences NULL        abort  abort()
 *   fpe    divides by zero          stack  overflows its stack
 *   oom    allocates memory until the kernel kills it
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib_records.h"

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

static void die(const char *how)
{
    if (!strcmp(how, "segv"))
        *nullp = 1;
    else if (!strcmp(how, "abort"))
        abort();
    else if (!strcmp(how, "fpe"))
        printf("%d\n", 100 / zero);
    else if (!strcmp(how, "stack"))
        recurse(0);
    else if (!strcmp(how, "pause"))
        for (;;)
            pause();
    else if (!strcmp(how, "oom"))
        for (int i = 0; i < 2048; i++) {   /* 2 GiB at most: a safety net */
            char *p = malloc(1 << 20);
            if (p)
                memset(p, 1, 1 << 20);
        }
    exit(99);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    uint64_t seed = strtoull(argv[2], NULL, 10);
    const char *how = argv[3];
    long n = atol(argv[4]);
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/a", argv[1]);
    snprintf(pb, sizeof pb, "%s/b", argv[1]);
    char go;
    if (read(0, &go, 1) != 1)
        return 3;
    int a = open(pa, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int b = open(pb, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (a < 0 || b < 0)
        return 4;
    setvbuf(stdout, NULL, _IONBF, 0);
    static unsigned char ra[4096], rb[4096];
    off_t ob = 0;
    for (long k = 0; k < 200000; k++) {
        size_t la = wct_rec_len(seed, (uint64_t)k);
        size_t lb = wct_rec_len(seed + 1, (uint64_t)k);
        wct_rec_fill(seed, (uint64_t)k, ra);
        wct_rec_fill(seed + 1, (uint64_t)k, rb);
        if (k % 2 == 0) {
            if (write(a, ra, la) != (ssize_t)la)
                return 5;
        } else {
            size_t c1 = la / 3, c2 = la / 2;
            struct iovec v[3] = {{ra, c1}, {ra + c1, c2 - c1},
                                 {ra + c2, la - c2}};
            if (writev(a, v, 3) != (ssize_t)la)
                return 6;
        }
        if (pwrite(b, rb, lb, ob) != (ssize_t)lb)
            return 7;
        ob += (off_t)lb;
        char m[32];
        int len = snprintf(m, sizeof m, "%ld\n", k);
        if (write(1, m, (size_t)len) != len)
            return 8;
        if (strcmp(how, "run") && k == n)
            die(how);
    }
    for (;;)
        pause();
}
