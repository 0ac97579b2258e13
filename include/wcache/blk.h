/*
 * blk.h - the biased lock: a file's and a description's lock, which the
 * thread that writes through them takes without an atomic instruction.
 *
 * Why: a write through the shim took two mutexes (the description's and
 * the file's, lock.h), four atomic instructions in all, each of which
 * waits for the write's copy to leave the store buffer. With a second
 * thread in the process they cost more than the write: 1M 64-byte writes
 * took 47 ms with one thread and 60 ms with an idle second one, and two
 * threads writing two files ran slower together than one thread doing both
 * in turn (0.93x). A thread that keeps using an object takes it over
 * instead (the bias), and then enters it with plain loads and stores.
 *
 * A wc_blk is the mutex (lock.h) plus an owner: `bias`, the owner's
 * record (struct wc_blk_thr, one per thread that ever claimed something,
 * in a static table, never freed). The owner enters on a fast path by
 * announcing the object in its own record, then checking that the bias is
 * still its own; any other thread that wants the object takes the mutex
 * and then revokes the bias:
 *
 *     owner (wc_blk_enter)                  another thread (wc_blk_lock)
 *     me->in[k] = b                         take b's mutex
 *     (compiler barrier only)               o = b->bias; b->bias = NULL
 *     b->bias == me && no intruder:         membarrier(PRIVATE_EXPEDITED)
 *         inside, without the mutex         wait while o->in[k] == b
 *     else: me->in[k] = NULL, the mutex
 *
 * membarrier makes every running thread of the process pass a full memory
 * barrier: either the owner's load of bias comes after it (it sees NULL and
 * queues on the mutex, which the revoker holds) or its store to in[k] came
 * before it (the revoker sees it and waits). Never both inside. The flag
 * is in the owner's record, which only the owner writes: a former owner
 * that read a stale bias and backs out clears only its own slot, never a
 * new owner's. (A flag in the object, shared by successive owners, would
 * let that late store erase a new owner's: two inside.) The engine's
 * one-writer entry (cache_int.h, the locks) is this protocol with the
 * program's only thread owning every file and the flusher as intruder.
 *
 * States of an object's bias (changed only under its mutex):
 *
 *     NULL --its mutex taken `need` times in a row by thread T on a fast
 *            path (wc_blk_claim; WC_BLK_NEED at first)--> T's record
 *     T's record --another thread takes the mutex (wc_blk_lock,
 *            wc_blk_trylock)--> NULL, and `need` doubles (to
 *            WC_BLK_NEED_MAX): two threads writing one file by turns pay
 *            a membarrier (a few us) at most every `need` writes
 *
 * Invariants:
 *   (1) A thread other than the owner that holds the mutex has revoked the
 *       bias and seen the owner out (wc_blk_lock), or gives the mutex back
 *       at once (wc_blk_trylock, which may not wait: its caller may hold
 *       the cache lock the owner needs), with the bias put back: a bias
 *       cleared while its owner is inside would let the next locker in
 *       beside it (tests/test_engine_blk.c found that). Or it intrudes:
 *       with an intruder count raised and a membarrier made, which every
 *       owner's entry checks (`intruders`), it waits the owner out under
 *       the mutex and leaves the bias (wc_blk_wait_out; the engine's
 *       passes over every file, cache/cache.c file_lock).
 *   (2) Biased sections are the two write fast paths (shim/io.c
 *       fast_write, level WC_BLK_DESC; cache/write.c wc_write_fast, level
 *       WC_BLK_FILE, nested in the first): short, no lock held across
 *       them that a revoker could hold while it waits. Everything else,
 *       the owner's other calls included, takes the mutex (an owner needs
 *       no revoke: it cannot be inside its own biased section meanwhile,
 *       and a signal handler's nested call never takes these locks: the
 *       shim queues it, the engine refuses it with -EDEADLK).
 *   (3) Bias is claimed only while wc_blk_on: membarrier registered by the
 *       cache's creation (cache.c), never in the ThreadSanitizer build,
 *       which cannot see that barrier. Without it every entry is the mutex.
 *   (4) A record is a thread's from its first claim to its end
 *       (wc_blk_thread_end, from the shim's thread start wrapper): a
 *       thread that takes a released record takes over what it owned,
 *       which is safe, since one live thread holds it at a time. Threads
 *       that end without the wrapper (raw clone) keep theirs: when the
 *       table is full, threads take the mutex.
 *   (5) After fork the child has one thread: wc_blk_reset forgets an
 *       object's mutex and bias, wc_blk_after_fork every record but the
 *       caller's (an in[] set by a thread that is not in the child would
 *       make the child wait for ever).
 */
#ifndef WCACHE_BLK_H
#define WCACHE_BLK_H

#include <stdint.h>

#include "wcache/lock.h"
#include "wcache/raw.h"
#include "wcache/hidden.h"

enum { WC_BLK_DESC = 0, WC_BLK_FILE = 1, WC_BLK_LEVELS = 2 };

#ifndef WC_BLK_STRESS
/* Mutex entries in a row that claim. A revoke costs a membarrier (about
 * 20 us in a VM), what the mutex's atomics cost over some 500 writes: an
 * object claimed and then revoked at once (a file opened and closed by
 * one thread and written by another) costs at most about twice what the
 * mutex would have. */
#define WC_BLK_NEED 256u
#define WC_BLK_NEED_MAX (1u << 20)
#else
/* The stress build (Makefile, build/stress) for the thread tests: a claim
 * at every second fast entry through the mutex, never backing off, and an
 * owner that yields inside every eighth section and between its two loads
 * of the bias in another eighth, so that revokers meet owners there (in
 * the normal build a membarrier outlasts a section). */
#define WC_BLK_NEED 2u
#define WC_BLK_NEED_MAX 2u
#endif
#define WC_BLK_THREADS 256       /* records: threads that may own */

/* A thread's record: the objects it is inside of without their mutex, by
 * level (written by the owner only; read by revokers). */
struct wc_blk_thr {
    void *in[WC_BLK_LEVELS];
    int used;                    /* atomic: held by a live thread */
} __attribute__((aligned(64)));

struct wc_blk {
    struct wc_lock m;            /* the mutex */
    uint32_t run;                /* fast-path entries in a row by `last`
                                    (under m) */
    struct wc_blk_thr *bias;     /* atomic: the owner, or NULL (changed
                                    under m) */
    const void *last;            /* the thread that last took m: its tag
                                    (under m) */
    uint32_t need;               /* run that claims; 0: WC_BLK_NEED
                                    (under m) */
};

extern WC_LOCAL int wc_blk_on;                     /* invariant (3) */
extern __thread struct wc_blk_thr *wc_blk_me
    __attribute__((tls_model("initial-exec")));
extern __thread char wc_blk_tag __attribute__((tls_model("initial-exec")));

/* Revoke b's bias, owned by another thread (caller holds b's mutex).
 * `wait`: until the owner is out, then 0; else -1 if it is inside. */
int wc_blk_revoke(struct wc_blk *b, int wait);
/* Claim b for this thread (caller holds b's mutex, took it on a fast path
 * `need` times in a row): a record first, if the thread has none. */
void wc_blk_claim_slow(struct wc_blk *b);
/* The calling thread ends: its record goes back (invariant (4)). */
void wc_blk_thread_end(void);
/* In a child after fork (invariant (5)). */
void wc_blk_after_fork(void);
/* Claims, revokes, and revokes that met the owner inside, so far (for
 * tests). */
void wc_blk_counts(long *claims, long *revokes, long *waits);
/* Wait until the owner of b (if any) is out of it: an intruder (the
 * flusher) that holds b's mutex and raised the intruder count. */
void wc_blk_wait_out(struct wc_blk *b);

static inline const void *wc_blk_self(void)
{
    return &wc_blk_tag;
}

/* b's owner if another thread (caller holds b's mutex), else NULL. */
static inline struct wc_blk_thr *wc_blk_other(const struct wc_blk *b)
{
    struct wc_blk_thr *o = __atomic_load_n(&b->bias, __ATOMIC_RELAXED);
    return __builtin_expect(o != NULL, 0) && o != wc_blk_me ? o : NULL;
}

/* The mutex is this thread's now: a run by another thread is broken. */
static inline void wc_blk_taken(struct wc_blk *b)
{
    if (b->last != wc_blk_self()) {
        b->last = wc_blk_self();
        b->run = 0;
    }
}

/* Take b's mutex; revoke a bias another thread holds (invariant (1)). */
static inline void wc_blk_lock(struct wc_blk *b)
{
    wc_lock(&b->m);
    if (wc_blk_other(b))
        wc_blk_revoke(b, 1);
    wc_blk_taken(b);
}

/* Try b's mutex: 1 taken, 0 busy or owned by a thread inside it (which
 * keeps its bias: the next locker must still wait for it). */
static inline int wc_blk_trylock(struct wc_blk *b)
{
    if (!wc_lock_try(&b->m))
        return 0;
    struct wc_blk_thr *o = wc_blk_other(b);
    if (o && wc_blk_revoke(b, 0) < 0) {
        __atomic_store_n(&b->bias, o, __ATOMIC_RELAXED);
        wc_unlock(&b->m);
        return 0;
    }
    wc_blk_taken(b);
    return 1;
}

static inline void wc_blk_unlock(struct wc_blk *b)
{
    wc_unlock(&b->m);
}

/* The owner's fast entry at `level`: 1 inside (leave with wc_blk_exit),
 * 0 not the owner, or someone revokes or intrudes (`intruders`, may be
 * NULL): take the mutex. */
static inline int wc_blk_enter(struct wc_blk *b, int level,
                               const int *intruders)
{
    struct wc_blk_thr *me = wc_blk_me;
    if (!me || __atomic_load_n(&b->bias, __ATOMIC_RELAXED) != me)
        return 0;
#ifdef WC_BLK_STRESS
    static __thread unsigned entries;
    if ((++entries & 7) == 3)       /* a revoke between the two loads */
        wc_raw_syscall(24 /* SYS_sched_yield */, 0, 0, 0, 0, 0, 0);
#endif
    __atomic_store_n(&me->in[level], b, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);       /* see membarrier */
    if (__builtin_expect(__atomic_load_n(&b->bias, __ATOMIC_RELAXED) == me,
                         1) &&
        !(intruders && __atomic_load_n(intruders, __ATOMIC_RELAXED))) {
#ifdef WC_BLK_STRESS
        if ((entries & 7) == 0 || (entries & 7) == 3)   /* inside */
            wc_raw_syscall(24 /* SYS_sched_yield */, 0, 0, 0, 0, 0, 0);
#endif
        return 1;
    }
    __atomic_store_n(&me->in[level], NULL, __ATOMIC_RELEASE);
    return 0;
}

static inline void wc_blk_exit(int level)
{
    __atomic_store_n(&wc_blk_me->in[level], NULL, __ATOMIC_RELEASE);
}

/* A fast path went through the mutex (caller holds it): count toward the
 * claim (the state diagram). */
static inline void wc_blk_claim(struct wc_blk *b)
{
    if (__builtin_expect(__atomic_load_n(&wc_blk_on, __ATOMIC_RELAXED), 1) &&
        !b->bias &&
        ++b->run >= (b->need ? b->need : WC_BLK_NEED))
        wc_blk_claim_slow(b);
}

/* The object is about to be freed or reused (caller holds its mutex,
 * and no other thread can be inside: wc_blk_lock revoked, or an intrusion
 * waited the owner out and keeps it from entering, cache/cache.c
 * file_lock): a new life starts unowned, with the first threshold. */
static inline void wc_blk_disown(struct wc_blk *b)
{
    __atomic_store_n(&b->bias, NULL, __ATOMIC_RELAXED);
    b->need = 0;
    b->run = 0;
}

/* In the stress build, a yield now and then in the middle of a section
 * (shim/io.c fast_write, cache/write.c wc_write_fast), where a second
 * thread inside would do harm; nothing in other builds. */
#ifdef WC_BLK_STRESS
static inline void wc_blk_stress_point(void)
{
    static __thread unsigned points;
    if (++points % 5 == 0)
        wc_raw_syscall(24 /* SYS_sched_yield */, 0, 0, 0, 0, 0, 0);
}

/* The stress build's signal hooks: the number in environment variable
 * `var` (0 when unset), and a signal sent to the calling thread. */
static inline int wc_blk_stress_env(const char *var)
{
    extern char *getenv(const char *);
    const char *v = getenv(var);
    int sig = 0;
    while (v && *v >= '0' && *v <= '9')
        sig = sig * 10 + *v++ - '0';
    return sig;
}

static inline void wc_blk_stress_send(int sig)
{
    wc_raw_syscall(234 /* SYS_tgkill */,
                   wc_raw_syscall(39 /* SYS_getpid */, 0, 0, 0, 0, 0, 0),
                   wc_raw_syscall(186 /* SYS_gettid */, 0, 0, 0, 0, 0, 0),
                   sig, 0, 0, 0);
}

/* In the stress build, with WCACHE_STRESS_SIGNAL=N in the environment,
 * signal N sent to the calling thread at every 16th write's commit point
 * (cache/write.c: the write counts as done, its flight not yet over), so
 * that a handler that exits there is not left to a timer's luck
 * (test_shim_threads, a handler's _exit inside the shim). */
static inline void wc_blk_stress_commit(void)
{
    static int sig = -1;
    static __thread unsigned n;
    if (sig < 0)
        sig = wc_blk_stress_env("WCACHE_STRESS_SIGNAL");
    if (sig && ++n % 16 == 0)
        wc_blk_stress_send(sig);
}

/* In the stress build, with WCACHE_STRESS_LEAVE_SIGNAL=N, signal N sent
 * once to the calling thread as it leaves the shim with signals held,
 * after its drain's last look at its queue (shim/queue.c
 * wc_shim_leave_slow): a signal that lands there must not wait behind a
 * held one whose handler jumps away (test_shim_threads). */
static inline void wc_blk_stress_leave(void)
{
    static int sig = -1, sent;
    if (sig < 0)
        sig = wc_blk_stress_env("WCACHE_STRESS_LEAVE_SIGNAL");
    if (sig && !sent++)
        wc_blk_stress_send(sig);
}
#else
#define wc_blk_stress_point() ((void)0)
#define wc_blk_stress_commit() ((void)0)
#define wc_blk_stress_leave() ((void)0)
#endif

/* The child's copy of an object after fork: free, owned by nobody. */
static inline void wc_blk_reset(struct wc_blk *b)
{
    b->m.v = 0;
    b->bias = NULL;
    b->last = NULL;
    b->run = 0;
}

#endif /* WCACHE_BLK_H */
