/*
 * test_cache_alias.c - sources that alias the target, and the program's
 * own fault handlers.
 *
 * CONTRACT.md points covered:
 *   5.1    a SIGSEGV/SIGBUS during the cache's copy becomes a short count or
 *          EFAULT; the program's handlers (installed before wc_cache_open)
 *          are not run for it; faults outside the copy still reach them,
 *          with the right siginfo, and they may call the cache themselves
 *   5.2    locks are dropped before probing: a handler that writes to the
 *          same file cannot deadlock
 *   5.9    a write whose source is a MAP_SHARED mapping of the target file,
 *          even of the very page being written, finishes and writes the
 *          right bytes; a source mapping past EOF (SIGBUS) is a short count
 *
 * Each case runs under the watchdog (lib_cache.c), so a deadlock fails the
 * test with a message instead of stalling the suite.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib_cache.h"

TestSuite(alias, .init = wct_setup, .fini = wct_teardown, .timeout = 60);

/* Map `len` bytes of a file shared, read-only. */
static unsigned char *map_file(int fd, size_t len)
{
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert(m != MAP_FAILED, "mmap: %s", strerror(errno));
    return m;
}

Test(alias, source_is_other_page_of_target)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "o", 4 * 4096);
    unsigned char *km = map_file(p.kfd, 4 * 4096), *cm = map_file(p.cfd, 4 * 4096);
    wct_watchdog(10, "write from a mapping of page 1 into page 0");
    wct_pair_pwrite(&p, km + 4096, cm + 4096, 4096, 0, 0, "page 1 -> page 0");
    wct_pair_check(&p, "page 1 -> page 0");
    wct_pair_close(&p, "page 1 -> page 0");
    munmap(km, 4 * 4096);
    munmap(cm, 4 * 4096);

    /* many pages: the source faults in page by page while we copy */
    wct_pair_open(&p, c, "o2", 64 * 4096);
    km = map_file(p.kfd, 64 * 4096);
    cm = map_file(p.cfd, 64 * 4096);
    wct_watchdog(10, "write 32 mapped pages over the other 32");
    wct_pair_pwrite(&p, km + 32 * 4096, cm + 32 * 4096, 32 * 4096 - 5, 7, 0,
                    "pages 32..63 -> 7");
    wct_pair_check(&p, "pages 32..63 -> 7");
    wct_pair_close(&p, "pages 32..63 -> 7");
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(alias, source_is_the_very_page_written)
{
    struct wc_cache *c = wct_cache_open(0);
    struct {
        off_t src, pos;
        size_t len;
        const char *name;
    } cases[] = {
        {0, 0, 4096, "page 0 onto itself"},
        {2048, 0, 1024, "second half of page 0 onto its first quarter"},
        {0, 3000, 1000, "head of page 0 onto its tail"},
        {100, 100, 3000, "a range onto itself, mid-page"},
        {4096, 4096, 4096 + 100, "page 1 and a bit onto itself, growing the file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%zu", i);
        struct wct_pair p;
        wct_pair_open(&p, c, name, 2 * 4096 + 50);
        unsigned char *km = map_file(p.kfd, 3 * 4096), *cm = map_file(p.cfd, 3 * 4096);
        wct_watchdog(10, cases[i].name);
        wct_pair_pwrite(&p, km + cases[i].src, cm + cases[i].src, cases[i].len,
                        cases[i].pos, 0, cases[i].name);
        wct_pair_check(&p, cases[i].name);
        wct_pair_close(&p, cases[i].name);
        munmap(km, 3 * 4096);
        munmap(cm, 3 * 4096);
    }
    cr_assert_eq(wc_cache_close(c), 0);
}

/* The source runs off the end of the mapped file: SIGBUS part-way. */
Test(alias, source_mapping_past_eof_sigbus)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "bus", 4096 + 100);
    unsigned char *km = map_file(p.kfd, 4 * 4096), *cm = map_file(p.cfd, 4 * 4096);
    wct_watchdog(10, "source crossing into SIGBUS territory");
    wct_pair_pwrite(&p, km + 2 * 4096 - 50, cm + 2 * 4096 - 50, 500, 10, 0,
                    "50 bytes then SIGBUS");
    wct_pair_pwrite(&p, km + 2 * 4096, cm + 2 * 4096, 500, 10, 0,
                    "SIGBUS from the first byte");
    wct_pair_pwrite(&p, km + 2 * 4096 - 50, cm + 2 * 4096 - 50, 500, 6000, 0,
                    "50 bytes then SIGBUS, past EOF");
    wct_pair_check(&p, "SIGBUS sources");
    wct_pair_close(&p, "SIGBUS sources");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* ---- the program's own SIGSEGV/SIGBUS handlers --------------------------- */

static struct wc_file *h_file;
static void *h_page;
static volatile sig_atomic_t h_calls;
static void *volatile h_addr;
static volatile ssize_t h_ret = -12345;
static sigjmp_buf h_jmp;
static volatile int h_jump;

/* Make the page readable and write to the same file, from the handler. */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    h_calls++;
    h_addr = si->si_addr;
    if (h_jump)
        siglongjmp(h_jmp, 1);
    uintptr_t pg = (uintptr_t)si->si_addr & ~(uintptr_t)(WCT_PG - 1);
    if ((void *)pg != h_page) {
        /* not ours: restore the default and let the fault kill us */
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    mprotect(h_page, WCT_PG, PROT_READ | PROT_WRITE);
    h_ret = wc_pwrite(h_file, "HANDLER", 7, 20000, 0, NULL);
}

Test(alias, program_handler_not_run_for_cache_faults)
{
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "h", 6000);
    h_file = p.f;
    h_page = wct_page(PROT_NONE);

    /* (1) PROT_NONE source: the kernel's answer, handler not run */
    wct_watchdog(10, "wc_pwrite from PROT_NONE with a handler that writes the same file");
    wct_pair_pwrite(&p, h_page, h_page, 100, 0, 0, "PROT_NONE source");
    cr_assert_eq(h_calls, 0, "the program's SIGSEGV handler ran for the cache's own fault");
    /* (2) crossing into PROT_NONE: short count, handler not run */
    const unsigned char *edge = wct_edge(100, WCT_NONE, 3);
    wct_watchdog(10, "wc_pwrite crossing into PROT_NONE, handler installed");
    wct_pair_pwrite(&p, edge, edge, 300, 10, 0, "100 readable then PROT_NONE");
    wct_pair_pwrite(&p, h_page, h_page, 300, 0, 1, "append from PROT_NONE");
    struct iovec v[] = {{(void *)edge, 100}, {h_page, 10}};
    wct_pair_pwritev(&p, v, v, 2, 50, 0, "iov into PROT_NONE");
    cr_assert_eq(h_calls, 0, "the program's handler ran for the cache's own fault");
    /* (3) a fault outside the cache reaches the handler, which may write */
    wct_watchdog(10, "program fault outside the cache; handler calls wc_pwrite");
    volatile unsigned char *q = h_page;
    unsigned char x = q[5];
    cr_assert_eq(x, 0);
    cr_assert_eq(h_calls, 1, "handler calls: %d", (int)h_calls);
    cr_assert_eq(h_addr, (unsigned char *)h_page + 5, "si_addr %p, fault at %p",
                 h_addr, (unsigned char *)h_page + 5);
    cr_assert_eq(h_ret, 7, "wc_pwrite from the handler returned %zd", h_ret);
    cr_assert_eq(pwrite(p.kfd, "HANDLER", 7, 20000), 7);
    /* (4) now readable: the same write completes */
    wct_pair_pwrite(&p, h_page, h_page, 100, 0, 0, "source made readable");
    wct_pair_check(&p, "handler");
    wct_pair_close(&p, "handler");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* A SIGBUS handler installed before the cache: not run for the cache's own
 * SIGBUS, run (with the right si_addr) for the program's. */
Test(alias, program_sigbus_handler)
{
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "b", 100);
    unsigned char *km = map_file(p.kfd, 3 * 4096), *cm = map_file(p.cfd, 3 * 4096);
    wct_watchdog(10, "SIGBUS source with a program SIGBUS handler");
    wct_pair_pwrite(&p, km + 4096 - 10, cm + 4096 - 10, 100, 0, 0, "10 bytes then SIGBUS");
    cr_assert_eq(h_calls, 0, "the program's SIGBUS handler ran for the cache's fault");
    h_jump = 1;
    if (sigsetjmp(h_jmp, 1) == 0) {
        volatile unsigned char *q = cm + 4096 + 3;
        (void)*q;
        cr_assert_fail("no SIGBUS past EOF of a mapping");
    }
    h_jump = 0;
    cr_assert_eq(h_calls, 1);
    cr_assert_eq(h_addr, cm + 4096 + 3);
    wct_pair_close(&p, "SIGBUS handler");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* With no program handler, a fault outside the cache keeps the default
 * action: the process dies of SIGSEGV (not a hang, not an exit). */
Test(alias, default_action_kept, .signal = SIGSEGV)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("d", 10, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    void *none = wct_page(PROT_NONE);
    cr_assert_eq(wc_pwrite(f, none, 10, 0, 0, NULL), -EFAULT);
    wct_watchdog(10, "a NULL dereference after wc_cache_open");
    volatile int *z = NULL;
    *z = 1;
}

/* A handler installed with SA_RESETHAND still sees its fault
 * once; the cache's own faults do not consume the one-shot handler. */
Test(alias, one_shot_handler_not_consumed)
{
    struct sigaction sa = {.sa_sigaction = on_segv,
                           .sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("r", 10, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    h_file = f;
    h_page = wct_page(PROT_NONE);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(wc_pwrite(f, h_page, 10, 0, 0, NULL), -EFAULT);
    cr_assert_eq(h_calls, 0);
    volatile unsigned char *q = h_page;
    (void)q[1];
    cr_assert_eq(h_calls, 1, "the one-shot handler did not run for the program's fault");
    cr_assert_eq(h_ret, 7);
    cr_assert_eq(wc_file_put(f), 0);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}
