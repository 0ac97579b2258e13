/*
 * test_engine_blk.c - the biased lock alone (include/wcache/blk.h).
 *
 * Threads add to counters that only the lock protects, each increment a
 * load, a yield now and then, and a store: a second thread inside at the
 * same time loses increments. They take the lock the three ways the
 * engine and the shim do: as owner on the fast path (wc_blk_enter), else
 * through the mutex counting toward a claim (wc_blk_lock, wc_blk_claim),
 * and now and then with wc_blk_trylock (eviction's way). This file
 * includes blk.h with WC_BLK_STRESS, so its inline fast path yields
 * between the owner's two loads of the bias and inside its sections (the
 * slow paths are the library's own); the claim threshold is put back
 * under the mutex so that objects keep changing hands. Every run must
 * have revoked owners that were inside (counted in the records' flags
 * seen busy). Also: a thread's record goes back at its end and the next
 * thread takes it over with what it owned.
 */
#define WC_BLK_STRESS 1

#include <criterion/criterion.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wcache/blk.h"

#define NT 4
#define ITERS 20000
#define NOBJ 3

static struct wc_blk objs[NOBJ];
static long counters[NOBJ];
static long done[NT][NOBJ];

static void setup(void)
{
    cr_assert(syscall(SYS_membarrier,
                      MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0,
              "membarrier: the biased lock needs it");
    __atomic_store_n(&wc_blk_on, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NOBJ; i++) {
        wc_blk_reset(&objs[i]);
        objs[i].need = 0;
        counters[i] = 0;
    }
}

TestSuite(blk, .init = setup, .timeout = 120);

static void add(int i)
{
    long v = __atomic_load_n(&counters[i], __ATOMIC_RELAXED);
    if ((v & 15) == 0)
        sched_yield();
    __atomic_store_n(&counters[i], v + 1, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    unsigned x = 7u * (unsigned)t + 1;
    for (int k = 0; k < ITERS; k++) {
        x = x * 1103515245u + 12345u;
        /* Mostly one object per thread, often another's: hand-overs. */
        int i = (x >> 16) % 4 == 0 ? (int)((x >> 20) % NOBJ) : t % NOBJ;
        struct wc_blk *b = &objs[i];
        if ((x >> 8) % 16 == 0) {
            if (!wc_blk_trylock(b))
                continue;
            add(i);
            wc_blk_unlock(b);
        } else if (wc_blk_enter(b, WC_BLK_FILE, NULL)) {
            add(i);
            wc_blk_exit(WC_BLK_FILE);
        } else {
            wc_blk_lock(b);
            b->need = 0;        /* keep claiming: see the header */
            wc_blk_claim(b);
            add(i);
            wc_blk_unlock(b);
        }
        done[t][i]++;
    }
    wc_blk_thread_end();
    return NULL;
}

Test(blk, counters_hold_across_hand_overs)
{
    long revoked_inside = 0;
    for (int round = 0; round < 5; round++) {
        pthread_t th[NT];
        for (int i = 0; i < NOBJ; i++)
            counters[i] = 0;
        for (int t = 0; t < NT; t++) {
            for (int i = 0; i < NOBJ; i++)
                done[t][i] = 0;
            cr_assert(pthread_create(&th[t], NULL, worker, (void *)(long)t)
                      == 0);
        }
        for (int t = 0; t < NT; t++)
            pthread_join(th[t], NULL);
        for (int i = 0; i < NOBJ; i++) {
            long want = 0;
            for (int t = 0; t < NT; t++)
                want += done[t][i];
            cr_expect_eq(counters[i], want,
                         "round %d, object %d: %ld increments of %ld "
                         "(two threads inside at once)",
                         round, i, counters[i], want);
        }
        long claims, revokes, waits;
        wc_blk_counts(&claims, &revokes, &waits);
        revoked_inside = waits;
    }
    cr_expect(revoked_inside > 0,
              "no revoke met its owner inside: the test did not test");
}

/* A record released at thread end is taken by the next thread that
 * claims, with the objects its old owner had: that thread enters them
 * on the fast path at once (blk.h invariant (4)). */
static void claim(struct wc_blk *b)
{
    for (int k = 0; k < 4 && !b->bias; k++) {
        wc_blk_lock(b);
        wc_blk_claim(b);
        wc_blk_unlock(b);
    }
}

static void *claim_one(void *arg)
{
    struct wc_blk *b = arg;
    claim(b);
    long owned = b->bias == wc_blk_me;
    wc_blk_thread_end();
    return (void *)owned;
}

static void *enter_one(void *arg)
{
    long fast = 0;
    claim(arg);                 /* a claim elsewhere takes a record first */
    if (wc_blk_enter(&objs[1], WC_BLK_FILE, NULL)) {
        fast = 1;
        wc_blk_exit(WC_BLK_FILE);
    }
    wc_blk_thread_end();
    return (void *)fast;
}

Test(blk, record_taken_over_after_thread_end)
{
    pthread_t th;
    void *ret;
    cr_assert(pthread_create(&th, NULL, claim_one, &objs[1]) == 0);
    pthread_join(th, &ret);
    cr_assert(ret == (void *)1, "the first thread did not claim");
    /* The next claim (objs[0], two entries) takes the first free record:
     * the one released, which objs[1] is still biased to. */
    cr_assert(pthread_create(&th, NULL, enter_one, &objs[0]) == 0);
    pthread_join(th, &ret);
    cr_expect(objs[0].bias != NULL, "the second thread did not claim");
    cr_expect(objs[0].bias == objs[1].bias,
              "the second thread did not take the released record");
    cr_expect(ret == (void *)1,
              "the record's next thread could not enter what it owned");
}
