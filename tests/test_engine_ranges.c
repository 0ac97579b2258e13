/*
 * test_engine_ranges.c - the block record's ranges are crash-ordered
 * (format.h (1), (2)): a process may die between any two instructions, and
 * a replay then reads whatever the record holds. A child edits a record in
 * shared memory with wc_range_add / wc_range_sub while the test
 * single-steps it with ptrace and, after every instruction, checks that the
 * record covers every acknowledged byte (what the previous operations left
 * dirty) and nothing that was not copied (the old set plus the range being
 * added).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cache/cache_int.h"

struct shared {
    struct wc_brec rec;
    volatile int op;            /* 0 idle, 1 add, 2 sub, 3 done */
    volatile unsigned a, b;
    uint8_t before[WC_PAGE_SIZE];   /* the set before the op */
};

static void set_of(const struct wc_brec *r, uint8_t *out)
{
    memset(out, 0, WC_PAGE_SIZE);
    unsigned n = r->nr <= WC_RANGES ? r->nr : WC_RANGES;
    for (unsigned i = 0; i < n; i++)
        for (unsigned x = r->lo[i]; x < r->hi[i] && x < WC_PAGE_SIZE; x++)
            out[x] = 1;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void child(struct shared *sh)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 300; k++) {
        unsigned a = (unsigned)(rnd(&s) % WC_PAGE_SIZE);
        unsigned len = 1 + (unsigned)(rnd(&s) % 200);
        unsigned b = a + len > WC_PAGE_SIZE ? WC_PAGE_SIZE : a + len;
        int sub = sh->rec.nr && rnd(&s) % 3 == 0;
        if (sub) {                  /* a range written back: a prefix or
                                       the whole of one */
            unsigned i = (unsigned)(rnd(&s) % sh->rec.nr);
            a = sh->rec.lo[i];
            b = rnd(&s) % 2 ? sh->rec.hi[i]
                            : a + (sh->rec.hi[i] - a + 1) / 2;
        }
        set_of(&sh->rec, sh->before);
        sh->a = a;
        sh->b = b;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        sh->op = sub ? 2 : 1;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        raise(SIGUSR1);             /* the test single-steps from here */
        if (sub)
            wc_range_sub(&sh->rec, a, b);
        else if (wc_range_add(&sh->rec, a, b) < 0)
            sh->rec.nr = 0;         /* full: as after a write-back */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        sh->op = 0;
    }
    sh->op = 3;
    _exit(0);
}

Test(engine_ranges, every_intermediate_state_is_safe, .timeout = 300)
{
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        child(sh);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSTOPPED(st));
    static uint8_t now[WC_PAGE_SIZE];
    long steps = 0, checked = 0;
    int stepping = 0;
    for (;;) {
        /* Run freely between operations; one instruction at a time
         * inside one (the child stops itself with SIGUSR1 first). */
        if (ptrace(stepping ? PTRACE_SINGLESTEP : PTRACE_CONT, pid, NULL,
                   NULL) != 0)
            break;
        if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
            break;
        steps++;
        int op = sh->op;
        stepping = op == 1 || op == 2;
        if (!stepping)
            continue;
        /* The child is stopped: the record is what a replay would read. */
        set_of(&sh->rec, now);
        unsigned a = sh->a, b = sh->b;
        checked++;
        for (unsigned x = 0; x < WC_PAGE_SIZE; x++) {
            int in_new = x >= a && x < b;
            int must = op == 1 ? sh->before[x] : sh->before[x] && !in_new;
            int may = op == 1 ? sh->before[x] || in_new : sh->before[x];
            if (must && !now[x]) {
                kill(pid, SIGKILL);
                cr_assert_fail("step %ld (%s [%u, %u)): acknowledged byte "
                               "%u not claimed", steps,
                               op == 1 ? "add" : "sub", a, b, x);
            }
            if (now[x] && !may) {
                kill(pid, SIGKILL);
                cr_assert_fail("step %ld (%s [%u, %u)): byte %u claimed "
                               "but never copied", steps,
                               op == 1 ? "add" : "sub", a, b, x);
            }
        }
    }
    waitpid(pid, &st, WNOHANG);
    cr_assert_eq(sh->op, 3, "the child did not finish (%ld steps)", steps);
    cr_assert_gt(checked, 3000);
    munmap(sh, sizeof *sh);
}
