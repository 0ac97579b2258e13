/*
 * blk.c - the biased lock's slow paths: revoking, claiming, the threads'
 * records (the protocol and its invariants: include/wcache/blk.h).
 */
#include <linux/membarrier.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <time.h>

#include "wcache/blk.h"
#include "wcache/raw.h"

/* Read by every entry, written when a cache is made and in a fork child:
 * beside the shim's start-up state (its .data.wc_boot), whose page a
 * child writes anyway, not in a page of .bss a child writes only for it. */
int wc_blk_on __attribute__((section(".data.wc_boot")));
__thread struct wc_blk_thr *wc_blk_me __attribute__((tls_model("initial-exec")));
__thread char wc_blk_tag __attribute__((tls_model("initial-exec")));

/* The records (invariant (4)): static, so that a revoker may read one
 * whatever became of its thread. */
static struct wc_blk_thr threads[WC_BLK_THREADS];
/* Every record ever taken is below it (atomic, only grows): a fork child
 * looks at those alone (wc_blk_after_fork). */
static int threads_hi;

/* Counted (slow paths only), so that tests can tell that owners were
 * revoked while inside: the stress build says them at exit
 * (tests/test_shim_threads.c), the engine's tests ask (wc_blk_counts). */
static long n_claims, n_revokes, n_waits;
#define COUNT(n) __atomic_add_fetch(&(n), 1, __ATOMIC_RELAXED)

void wc_blk_counts(long *claims, long *revokes, long *waits)
{
    *claims = __atomic_load_n(&n_claims, __ATOMIC_RELAXED);
    *revokes = __atomic_load_n(&n_revokes, __ATOMIC_RELAXED);
    *waits = __atomic_load_n(&n_waits, __ATOMIC_RELAXED);
}

#ifdef WC_BLK_STRESS
#include <stdio.h>
__attribute__((destructor)) static void stress_report(void)
{
    char line[128];
    int len = snprintf(line, sizeof line,
                       "wcache-blk-stress: claims %ld revokes %ld waits %ld\n",
                       n_claims, n_revokes, n_waits);
    wc_raw_syscall(SYS_write, 2, (long)line, len, 0, 0, 0);
}
#endif

static int inside(const struct wc_blk_thr *o, const struct wc_blk *b)
{
    for (int k = 0; k < WC_BLK_LEVELS; k++)
        if (__atomic_load_n(&o->in[k], __ATOMIC_ACQUIRE) == b)
            return 1;
    return 0;
}

/* Wait for the owner o to leave b: a section is a copy and a few stores
 * (invariant (2): the fast write makes no system call, not even the
 * dirty limit's write-back), but its thread may be preempted in it. */
static void wait_out(const struct wc_blk_thr *o, const struct wc_blk *b)
{
    for (unsigned i = 0; inside(o, b); i++)
        wc_backoff(i);
}

int wc_blk_revoke(struct wc_blk *b, int wait)
{
    struct wc_blk_thr *o = __atomic_load_n(&b->bias, __ATOMIC_RELAXED);
    if (!o)
        return 0;
    __atomic_store_n(&b->bias, NULL, __ATOMIC_SEQ_CST);
    if (wc_raw_syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0,
                       0, 0, 0, 0) != 0) {
        /* It cannot fail once registered (cache.c); if it did, nothing
         * orders the owner's flag: stop biasing, and give the owner's
         * store time to drain before the look below. */
        __atomic_store_n(&wc_blk_on, 0, __ATOMIC_RELAXED);
        struct timespec ts = {0, 1000000};
        wc_raw_syscall(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
    }
    b->need = b->need >= WC_BLK_NEED_MAX / 2 ? WC_BLK_NEED_MAX
              : b->need                      ? 2 * b->need
                                             : 2 * WC_BLK_NEED;
    b->run = 0;
    COUNT(n_revokes);
    if (!inside(o, b))
        return 0;
    COUNT(n_waits);
    if (!wait)
        return -1;
    wait_out(o, b);
    return 0;
}

void wc_blk_wait_out(struct wc_blk *b)
{
    struct wc_blk_thr *o = __atomic_load_n(&b->bias, __ATOMIC_RELAXED);
    if (o)
        wait_out(o, b);
}

void wc_blk_claim_slow(struct wc_blk *b)
{
    struct wc_blk_thr *me = wc_blk_me;
    if (!me) {
        for (int i = 0; i < WC_BLK_THREADS && !me; i++) {
            int free_ = 0;
            if (__atomic_load_n(&threads[i].used, __ATOMIC_RELAXED) == 0 &&
                __atomic_compare_exchange_n(&threads[i].used, &free_, 1, 0,
                                            __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                me = &threads[i];
                int hi = __atomic_load_n(&threads_hi, __ATOMIC_RELAXED);
                while (hi < i + 1 &&
                       !__atomic_compare_exchange_n(&threads_hi, &hi, i + 1,
                                                    0, __ATOMIC_RELAXED,
                                                    __ATOMIC_RELAXED))
                    ;
            }
        }
        if (!me) {
            b->run = 0;         /* the table is full: the mutex */
            return;
        }
        wc_blk_me = me;
    }
    /* Nobody is inside b without its mutex: the bias was NULL, and a
     * revoke waited out the last owner (invariant (1)). */
    COUNT(n_claims);
    __atomic_store_n(&b->bias, me, __ATOMIC_RELAXED);
}

void wc_blk_thread_end(void)
{
    struct wc_blk_thr *me = wc_blk_me;
    if (!me)
        return;
    wc_blk_me = NULL;
    for (int k = 0; k < WC_BLK_LEVELS; k++)
        __atomic_store_n(&me->in[k], NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&me->used, 0, __ATOMIC_RELEASE);
}

__attribute__((cold)) void wc_blk_after_fork(void)
{
    /* The child registers membarrier again if it makes a cache. */
    if (wc_blk_on)
        wc_blk_on = 0;
    /* Written only where they differ: each page of the table written is
     * a page fault in the child (copy-on-write, or a zero page of .bss
     * made real: 16 KiB, 4 faults a fork before). */
    int hi = __atomic_load_n(&threads_hi, __ATOMIC_RELAXED);
    for (int i = 0; i < hi && i < WC_BLK_THREADS; i++) {
        for (int k = 0; k < WC_BLK_LEVELS; k++)
            if (threads[i].in[k])
                threads[i].in[k] = NULL;
        int used = &threads[i] == wc_blk_me;
        if (threads[i].used != used)
            threads[i].used = used;
    }
}
