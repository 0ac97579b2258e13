/*
 * queue.c - writes, closes and deaths that a signal handler asks for while
 * its thread is inside shim code (wc_depth > 0), and the signals the shim
 * holds there (signals.c invariant (5)), kept per thread and run in order
 * by the outermost shim call of that thread.
 *
 * Invariants:
 *   (1) Nested calls take no lock: their writes are copied into the
 *       thread's queue (async-signal-safe: mmap'd memory, a CAS on the
 *       tail), and the outermost shim call on that thread runs them, in
 *       order, before it returns (wc_shim_leave) or before it starts
 *       (wc_shim_enter). A handler that runs while wc_depth == 0 is an ordinary
 *       caller, and first runs what is queued.
 *   (2) A queued write has returned to the handler: it is never dropped
 *       silently (a failure when it runs is logged with the bytes lost).
 *   (3) A record runs once. When a handler's _exit interrupts the drain,
 *       the child that writes back (proc.c, flush_in_child) drains what
 *       is left, and skips the record being run if its write had returned
 *       or completed in the engine (wc_queue_child_resume); one cut short
 *       was undone by the engine (wc_cache_unlock_all) and runs again.
 *       Between a call's return and the drain's note of it (r->done,
 *       g_running_done), the description's offset tells: a write at the
 *       offset that moved it from where it was before the call is done
 *       (g_call_start: an exit there wrote the marker twice, about once
 *       in 3,000 runs of threads::signal_handler_exits_at_a_writes_commit
 *       with the stress build, which now signals there too). The record
 *       is known by its number, not its address: an exit just after the
 *       drain consumed the last record, when the queue starts again at
 *       its first byte, had the exit's own queued write taken for the
 *       one that ran, and dropped (the last marker lost, once in about
 *       2,000 runs).
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/ucopy.h"

/* The record this thread's drain is running (NULL between records), and
 * whether it has returned: invariant (3). */
static WC_TLS struct wc_qrec *g_running;
static WC_TLS uint64_t g_running_seq;   /* its number: a record queued
                                           later at the same address (the
                                           queue emptied and restarted)
                                           is another */
static WC_TLS uint64_t g_qseq;          /* the last number given */
static WC_TLS int g_running_done;
/* The running record's call at the description's offset: the offset
 * before it (-1: none, or a positional call, which may run twice), and
 * the record's bytes done before it. Invariant (3). */
static WC_TLS off_t g_call_start = -1;
static WC_TLS size_t g_call_done0;


/*
 * One per thread, mmap'd on first use (from the handler itself: mmap is a
 * plain system call). Records are appended at `tail` with a CAS (atomic
 * against a further nested handler on the same thread) and consumed at
 * `head` by the outermost shim call of the thread only.
 */
struct wc_qrec {
    uint32_t size;            /* whole record, 16-byte aligned */
    uint32_t kind;            /* Q_WRITE, Q_CLOSE, Q_DEATH or Q_SIGNAL */
    int fd;
    int rwf_append;
    off_t pos;                /* < 0: at the description's offset */
    size_t len;               /* data bytes following */
    size_t done;              /* of them written (the drain's note) */
    uint64_t seq;             /* this thread's count of records queued */
    char data[];
};
enum { Q_WRITE = 1, Q_CLOSE, Q_DEATH, Q_SIGNAL };

struct wc_queue {
    size_t head;              /* first unconsumed byte of buf */
    size_t tail;              /* end of the last record (CAS) */
    size_t cap;               /* bytes in buf */
    int nheld;                /* signals taken off the queue by the drain,
                                 to send at depth 0 (counted in
                                 wc_qpending until sent) */
    struct wc_held held[WC_HELD_MAX];
    char buf[];
};
#define QUEUE_BYTES (4u << 20)

/* Unmaps a thread's queue when the thread exits (queues are drained
 * before any shim call returns, so it is empty by then). The thread's
 * pointer to it goes first: a signal still comes while the thread ends
 * (glibc unmaps its TSD after the destructors), and a handler that
 * writes from inside the shim then took the unmapped queue (probe AB: a
 * SIGSEGV, one run in four of a timer handler opening files while
 * threads ended); it makes a new one now, set in the key again. */
WC_BOOT static pthread_key_t g_queue_key;
WC_BOOT static int g_queue_key_ok;

static void queue_free(void *q)
{
    if (!q)
        return;
    if (wc_tq == q)
        wc_tq = NULL;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    REAL(munmap)(q, QUEUE_BYTES);
}

WC_ONCE
void wc_queue_init(void)
{
    g_queue_key_ok = pthread_key_create(&g_queue_key, queue_free) == 0;
}

static struct wc_queue *queue_get(void)
{
    struct wc_queue *q = wc_tq;
    if (q)
        return q;
    void *p = REAL(mmap)(NULL, QUEUE_BYTES, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    q = p;
    q->cap = QUEUE_BYTES - sizeof *q;
    wc_tq = q;
    /* A key created early has a slot inside the thread descriptor: no
     * allocation here, which may run in a signal handler. */
    if (g_queue_key_ok)
        pthread_setspecific(g_queue_key, q);
    return q;
}

/* Reserve `size` bytes at the tail; NULL when full. */
static struct wc_qrec *queue_reserve(struct wc_queue *q, size_t size)
{
    size_t t = __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
    do {
        if (t + size > q->cap)
            return NULL;
    } while (!__atomic_compare_exchange_n(&q->tail, &t, t + size, 0,
                                          __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    return (struct wc_qrec *)(q->buf + t);
}

ssize_t wc_queue_write(int fd, const struct iovec *iov, int iovcnt,
                       off_t pos, int rwf_append)
{
    if (iovcnt < 0 || iovcnt > 1024)
        return -EINVAL;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++) {
        if ((ssize_t)iov[i].iov_len < 0)
            return -EINVAL;
        if (iov[i].iov_len && !wc_access_ok(iov[i].iov_base, iov[i].iov_len))
            return -EFAULT;
        len += iov[i].iov_len;
    }
    struct wc_queue *q = queue_get();
    if (!q)
        return -ENOMEM;
    size_t room = q->cap - __atomic_load_n(&q->tail, __ATOMIC_RELAXED);
    if (room <= sizeof(struct wc_qrec) + 16)
        return -EINTR;    /* nothing accepted: as if interrupted */
    if (len > room - sizeof(struct wc_qrec) - 16)
        len = room - sizeof(struct wc_qrec) - 16;  /* a short write */
    size_t size = (sizeof(struct wc_qrec) + len + 15) & ~(size_t)15;
    struct wc_qrec *r = queue_reserve(q, size);
    if (!r)
        return -EINTR;
    r->size = (uint32_t)size;
    r->kind = Q_WRITE;
    r->fd = fd;
    r->rwf_append = rwf_append;
    r->pos = pos;
    r->len = len;
    r->done = 0;
    r->seq = __atomic_add_fetch(&g_qseq, 1, __ATOMIC_RELAXED);
    size_t off = 0;
    for (int i = 0; i < iovcnt && off < len; i++) {
        size_t n = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;
        memcpy(r->data + off, iov[i].iov_base, n);
        off += n;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    __atomic_add_fetch(&wc_qpending, 1, __ATOMIC_RELAXED);
    return (ssize_t)len;
}

/* Queue a record of `len` bytes of data (none for a close or a death;
 * a siginfo for a held signal). 0 or -errno. */
static int queue_mark(uint32_t kind, int fd, const void *data, size_t len)
{
    struct wc_queue *q = queue_get();
    if (!q)
        return -ENOMEM;
    size_t size = (sizeof(struct wc_qrec) + len + 15) & ~(size_t)15;
    struct wc_qrec *r = queue_reserve(q, size);
    if (!r)
        return -EINTR;
    r->size = (uint32_t)size;
    r->kind = kind;
    r->fd = fd;
    r->len = len;
    r->done = 0;
    if (len)
        memcpy(r->data, data, len);
    r->seq = __atomic_add_fetch(&g_qseq, 1, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    __atomic_add_fetch(&wc_qpending, 1, __ATOMIC_RELAXED);
    return 0;
}

int wc_queue_close(int fd)
{
    return queue_mark(Q_CLOSE, fd, NULL, 0);
}

/* A signal whose handler the program set arrived while this thread was
 * inside the shim (signals.c invariant (5)): it is sent again, with its
 * siginfo, once the thread has left (wc_shim_leave_slow, at depth 0),
 * after the records queued before it. 0 or -errno (then the handler runs
 * at once). */
int wc_queue_signal(int sig, const siginfo_t *si)
{
    return queue_mark(Q_SIGNAL, sig, si, sizeof *si);
}

/* A fatal signal arrived while this thread was inside the shim: the
 * process dies when the thread leaves it (after the writes queued before
 * it), with the data flushed. Returns 0 or -errno (then die at once). */
int wc_queue_death(int sig)
{
    return queue_mark(Q_DEATH, sig, NULL, 0);
}

/* Where a write at fd's offset goes now, as lseek(fd, 0, SEEK_CUR) would
 * say; -1 when that cannot be told. */
static off_t offset_now(int fd, struct wc_desc *d)
{
    struct wc_cell *c = d ? __atomic_load_n(&d->cell, __ATOMIC_ACQUIRE)
                          : NULL;
    if (c) {
        unsigned long long v = __atomic_load_n(&c->pos, __ATOMIC_ACQUIRE);
        if (v & WC_CELL_MOVING)
            return -1;
        if (!(v & WC_CELL_KERNEL))
            return (off_t)v;
    } else if (d && d->mode == WC_D_CACHED) {
        return d->pos;
    }
    return wc_k_lseek(fd, 0, SEEK_CUR);
}

/* Run one queued record. Caller is at depth 1 and holds no lock. */
static void queue_run(struct wc_qrec *r)
{
    if (r->kind == Q_DEATH) {
        wc_die_of(r->fd);           /* does not return */
        return;
    }
    if (r->kind == Q_CLOSE) {
        wc_fd_forget(r->fd);
        wc_k_close(r->fd);
        return;
    }
    struct iovec v = {r->data, r->len};
    size_t done = r->done;
    while (done < r->len) {
        struct wc_desc *d = wc_fd_get(r->fd);
        ssize_t n;
        v.iov_base = r->data + done;
        v.iov_len = r->len - done;
        off_t pos = r->pos < 0 ? -1 : r->pos + (off_t)done;
        g_call_done0 = done;
        g_call_start = pos < 0 && d ? offset_now(r->fd, d) : -1;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (d)
            n = wc_do_writev(r->fd, d, &v, 1, pos, r->rwf_append, 0);
        else if (pos < 0)
            n = wc_k_write(r->fd, v.iov_base, v.iov_len);
        else
            n = wc_k_pwrite(r->fd, v.iov_base, v.iov_len, pos);
        wc_blk_stress_commit();         /* an exit here: invariant (3) */
        if (n > 0) {
            r->done = done + (size_t)n;
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
        }
        g_call_start = -1;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (n <= 0) {
            wc_log(WC_LOG_ERROR, "a write queued by a signal handler on "
                   "fd %d failed after it returned (%ld): %zu bytes lost",
                   r->fd, (long)n, r->len - done);
            break;
        }
        done += (size_t)n;
    }
}

/* Drop record r, at the head, from the queue. */
static void consume(struct wc_queue *q, struct wc_qrec *r)
{
    __atomic_sub_fetch(&wc_qpending, 1, __ATOMIC_RELAXED);
    q->head += r->size;
    size_t t = q->head;
    if (__atomic_compare_exchange_n(&q->tail, &t, 0, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED))
        q->head = 0;
}

void wc_queue_drain(void)
{
    struct wc_queue *q = wc_tq;
    int e = errno;
    while (q && __atomic_load_n(&wc_qpending, __ATOMIC_RELAXED) > q->nheld) {
        struct wc_qrec *r = (struct wc_qrec *)(q->buf + q->head);
        if (r->kind == Q_SIGNAL) {
            /* Sent at depth 0 with the others held (wc_shim_leave_slow),
             * in order; still pending until then. */
            if (q->nheld == WC_HELD_MAX)
                break;
            q->held[q->nheld].sig = r->fd;
            memcpy(&q->held[q->nheld].si, r->data, sizeof(siginfo_t));
            q->nheld++;
            consume(q, r);
            __atomic_add_fetch(&wc_qpending, 1, __ATOMIC_RELAXED);
            continue;
        }
        g_running = r;
        g_running_seq = r->seq;
        g_running_done = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        queue_run(r);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        g_running_done = 1;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        consume(q, r);
        wc_blk_stress_commit();         /* an exit here: invariant (3) */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        g_running = NULL;
    }
    errno = e;
}

void wc_queue_child_resume(int finished)
{
    struct wc_queue *q = wc_tq;
    struct wc_qrec *r = g_running;
    if (q && r && __atomic_load_n(&wc_qpending, __ATOMIC_RELAXED) > 0 &&
        r == (struct wc_qrec *)(q->buf + q->head) &&
        r->seq == g_running_seq) {
        off_t now;
        struct wc_desc *d;
        if (g_running_done || finished) {
            consume(q, r);      /* it ran: not again */
        } else if (r->kind == Q_WRITE && g_call_start >= 0 &&
                   (now = offset_now(r->fd, d = wc_fd_get(r->fd))) >= 0 &&
                   now != g_call_start) {
            /* The call returned, or completed in the engine (the offset
             * was moved by wc_unlock_all_in_child's fixup): its bytes are
             * there, all of them for an append. */
            size_t k = r->rwf_append || (d && d->append)
                           ? r->len - g_call_done0
                           : (size_t)(now - g_call_start);
            if (g_call_done0 + k >= r->len)
                consume(q, r);
            else
                r->done = g_call_done0 + k;
        }
    }
    g_running = NULL;
    g_call_start = -1;
}

void wc_shim_leave_slow(void)
{
    for (;;) {
        wc_queue_drain();
        /* The signals held while this thread was inside (signals.c (5)),
         * taken off the queue by the drain, are taken from it here, still
         * at depth 1 (only the outermost call consumes: invariant (1); a
         * handler that runs once depth is 0 drains the queue itself), and
         * all sent again at depth 0, where their handlers may even leave
         * by a jump: the ones after a jumping handler are pending in the
         * kernel already. */
        struct wc_queue *q = wc_tq;
        struct wc_held h[WC_HELD_MAX];
        sigset_t old;
        int n = q ? q->nheld : 0;
        if (n) {
            wc_blk_stress_leave();      /* a signal in the window below */
            /* Every signal blocked from here until the held ones are
             * pending in the kernel again (signals.c (5)): one that came
             * after the drain's last look would be queued at depth 1, and
             * wait behind a handler that jumps away at depth 0 for this
             * thread's next call. One that came before this block is
             * drained first, while the list has room: past WC_HELD_MAX
             * held (a storm), the rest stay queued for this loop's next
             * pass, or, when a handler jumps away, for the thread's next
             * call (re-draining there looped for ever in a storm:
             * tsan::sigstorm_cache_made_in_a_handler hung). */
            wc_signals_block(&old);
            if (__atomic_load_n(&wc_qpending, __ATOMIC_RELAXED) > q->nheld &&
                q->nheld < WC_HELD_MAX) {
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                continue;
            }
        }
        for (int i = 0; i < n; i++)
            h[i] = q->held[i];      /* no libc call: none intercepted */
        if (n) {
            q->nheld = 0;
            __atomic_sub_fetch(&wc_qpending, n, __ATOMIC_RELAXED);
        }
        if (unlikely(wc_cancel_held))
            wc_cancel_unhold();     /* cancel.c (3): before depth 0 */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        wc_depth = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (n)
            wc_signals_again(h, n, &old);
        if (!__atomic_load_n(&wc_qpending, __ATOMIC_RELAXED))
            return;
        wc_depth = 1;
        if (unlikely(__atomic_load_n(&wc_cancel_used, __ATOMIC_RELAXED)))
            wc_cancel_hold();   /* cancel.c (3), given back to send */
    }
}
