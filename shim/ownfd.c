/*
 * ownfd.c - the shim's own descriptors (the engine's backing store and its
 * write-back descriptors): where they are placed, and how the program is
 * kept from seeing, closing or replacing them.
 *
 * The kernel refuses every descriptor number at or above the soft
 * RLIMIT_NOFILE (open: EMFILE, dup2/dup3: EBADF, F_DUPFD: EINVAL), but
 * keeps numbers already open when the limit goes down. So a descriptor
 * made at or above the program's limit costs the program nothing.
 *
 * Invariants:
 *   (1) Above the limit, where the program's soft limit L is at most
 *       WC_FD_LOW (1024, select's FD_SETSIZE: most systems' default):
 *       every descriptor the engine keeps comes from wc_own_fd_place(), a
 *       duplicate made at or above L, with the soft limit raised for the
 *       length of that one F_DUPFD_CLOEXEC (to the hard limit; when the
 *       hard limit equals L, both, if the process may: CAP_SYS_RESOURCE)
 *       and put back at once. The kernel then enforces the program's own
 *       limit for every call, even those the shim never sees (socket,
 *       pipe, raw system calls): the program can open L descriptors,
 *       whatever the number of cached files, and every number below L is
 *       free for its open, dup2, dup3 and F_DUPFD.
 *   (1b) Where L is higher (20,000 on this machine; 1,048,576 in many
 *       containers), at the highest free numbers below WC_FD_TOP (2048,
 *       or L when lower), from 2047 down, not below WC_FD_LOW, given back
 *       as (4) gives its own. A descriptor at L would make the kernel's
 *       table L long: growing it to 1,048,576 is 8 MiB of the kernel's
 *       memory, and every fork copies the table up to the highest open
 *       number (one open at 19,999: fork and wait 110 -> 164 us here);
 *       below 2048 it is 16 KiB. A program meets these numbers only with
 *       about 2040 descriptors open at once (past what select can use):
 *       its open, socket or accept then gets the next free number, and an
 *       F_DUPFD, dup2 or dup3 onto one gets the kernel's (the engine's
 *       moves away, (4); a moved write-back descriptor's close drops the
 *       process's POSIX locks on its file, README: probe AF F2 found that
 *       at 1024, where the first version put them, a number programs
 *       pick); at L the interposed calls that make descriptors give a
 *       cached file's number back (open.c RETRY_EMFILE), one fewer in
 *       all (the store's).
 *   (2) g_limit_lock serialises that raise with the program's own changes
 *       of RLIMIT_NOFILE (setrlimit, prlimit: wc_nofile_prlimit), so that
 *       neither undoes the other; while the limit is raised, getrlimit and
 *       prlimit report the program's limit (g_window, g_prog_rl).
 *   (3) When the program raises its soft limit over numbers the engine
 *       holds, those below WC_FD_LOW move above the new limit, or from
 *       WC_FD_LOW up (1b) (wc_cache_fd_move, under the engine lock that
 *       covers their use), before setrlimit returns.
 *   (4) Fallback, when the limit cannot be raised (hard limit == soft
 *       limit without CAP_SYS_RESOURCE, or above what the fd table
 *       tracks) and L is at most WC_FD_LOW, or no number is free in
 *       (1b)'s: the highest free numbers below L (logged once at info);
 *       the program then has fewer numbers (README, limits), and a dup2,
 *       dup3 or F_DUPFD onto one of them moves it out of the way first
 *       (wc_own_fd_evict).
 *   (5) A descriptor is marked WC_DESC_INTERNAL in the fd table from the
 *       moment wc_own_fd_place() made it until after the engine closed it
 *       (wc_own_fd_closed): close, dup2, dup3, fcntl, close_range and
 *       closefrom of the program never reach it (open.c), and every other
 *       wrapper of a call that takes a descriptor (read, write, lseek,
 *       the stat, sync, truncate, allocate, lock, mode, owner and xattr
 *       calls, mmap, sendfile, copy_file_range, splice, ioctl, dprintf,
 *       fdopen, fexecve, and the *at calls with a relative path) answers
 *       EBADF for it (WC_HIDDEN, shim.h), as the kernel does for a number
 *       that is not open. The same holds for the memfds of shared.c's
 *       cell regions (wc_cells_fd_move). Calls the shim does not wrap
 *       (getdents64, fchdir, accept...) still reach them.
 *   (6) The kernel grows a descriptor table that threads share only after
 *       an RCU grace period (expand_fdtable's synchronize_rcu: 14-24 ms
 *       here), and a placement grows it for most programs (the table
 *       starts at 64): the first cached file of a program that had
 *       threads paid that once (two threads writing 6 MB took 47 ms
 *       where two processes took 13). So the first pthread_create, while
 *       the process has one thread, grows it as a placement would (a
 *       duplicate placed as (1), (1b) or (4) place, of an eventfd of its
 *       own, both closed at once: wc_own_fd_table_ready, 18 us; never a
 *       descriptor of the program's, whose close would drop the
 *       process's POSIX locks on its file): a table of 2048 at most
 *       (16 KiB). So does a thread made before the shim's constructor
 *       ran (by the constructor of a library the program is linked
 *       with, as OpenBLAS starts its pool: those run before a preloaded
 *       library's), with the table's size still to come (table_top).
 *
 *   (7) Windows. A descriptor the shim makes for an instant in the
 *       program's table (an open placed at once: the engine's store,
 *       its reopens of a cached file, wc_own_fd_open; a look at a file:
 *       /proc/self/maps, /proc/locks (at an exec, and as caching stops),
 *       the crash guard's lock, the program's threads, the statistics
 *       file at an image's end, the dead stores replayed at start-up;
 *       the memfd of a cell region, table_ready's eventfd) takes the
 *       lowest free number, one the program may name
 *       the next instant: another thread's dup2 or dup3 onto it (a
 *       number it knows free) replaces it, the engine's F_DUPFD then
 *       copies the program's file and its close closes the program's
 *       descriptor; a close of it (a loop over free numbers) closes the
 *       engine's; a fork copies it; an open meanwhile gets another
 *       number. (prog_freenumber: a thread's dup2 of a pipe onto 3, a
 *       write there and its close, while another closed cached files
 *       that had two descriptions (a reopen each): 21,799 of 209,865
 *       uses of 3 went wrong in 2 s, "EBUSY" from dup2 among them, and
 *       files lost their lines to the pipe.) So each such descriptor
 *       lives inside a window (wc_fd_window_open, shim.h): no namer
 *       inside, none entering (they step back), no maker inside but one
 *       that seems blocked, and signals blocked on a program thread (its
 *       handler's close would wait for its own window), cancellation
 *       off once the program has cancelled a thread (a window left shut
 *       stops every maker and namer for good). Makers are
 *       open, openat, creat, open_by_handle_at, dup, F_DUPFD, socket,
 *       socketpair, accept, accept4, pipe, pipe2, eventfd, epoll_create,
 *       and fork (from the shim's prepare handler to the system call's
 *       return: a copy of the table); namers are close, close_range,
 *       closefrom, dup2 and dup3. A vfork child counts nothing and opens
 *       no shared window (its table is a copy; a count or a window it
 *       raised before being killed would stay in the parent's memory),
 *       and a thread that ends inside a call (cancelled in a close, an
 *       open or an accept) ends its counts as it goes (calls_gone, a
 *       thread-specific key's destructor; tests: prog_deadnamer,
 *       prog_vforkwindow).
 *       Limits: calls the shim does not see (a raw syscall instruction,
 *       glibc's internal closes, posix_spawn's child); makers inside for
 *       20 us while none enters or ends, namers inside for 100 ms while
 *       none ends, are taken for blocked past their numbers' choice or
 *       release (WC_WINDOW_STUCK_NS, WC_WINDOW_NAMER_NS): one that took
 *       that long to reach it (preempted; a maker faulting in its path)
 *       may meet the window's descriptor; a handler the program sets
 *       runs with the counts of the calls it interrupted ended
 *       (signals.c holding_handler_run: it may leave them by a jump),
 *       but one set behind the shim (a raw rt_sigaction) that jumps, or
 *       a thread that ends inside a call without ending as a thread does
 *       (a raw SYS_exit), leaves its count raised, which costs every
 *       later window those 20 us or 100 ms.
 *
 * Known window: during the one F_DUPFD of (1) (about a microsecond, once
 * per cached file), another thread of a program that holds every number
 * below L gets number L from the kernel instead of EMFILE.
 *
 * Locks: g_limit_lock protects g_prog_rl, g_window, g_refused and the
 * process's RLIMIT_NOFILE while raised. Order: taken inside the engine's locks
 * (place() runs under a file's or the cache's lock); never held while
 * calling the engine. wc_fd_window (invariant (7), a word taken with a
 * compare-and-swap) is held while a window's short-lived descriptors are
 * in the program's table; taken inside the engine's locks and outside
 * g_limit_lock (wc_own_fd_open places inside its window); never held
 * while taking an engine lock or calling a wrapper of the program's
 * calls.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/raw.h"

/* In .data (WC_BOOT's page): every fork child reads both first thing
 * (wc_own_fd_after_fork), and a .bss page no one had touched was a page
 * fault in each child. */
WC_BOOT static struct wc_lock g_limit_lock;
WC_BOOT static int g_window;         /* limit raised now (atomic) */
static struct rlimit g_prog_rl;      /* the program's limit meanwhile */
static int g_fallback_logged;
/* Invariant (1b): where L is above WC_FD_LOW, the engine's numbers are
 * the highest free ones below WC_FD_TOP (or L), not below WC_FD_LOW. */
#define WC_FD_LOW 1024
#define WC_FD_TOP 2048
static struct rlimit g_refused;      /* a limit the raise failed from:
                                        not tried again while it stays */
int wc_own_fd_fallback;              /* some descriptor sits below L */

static int nofile(struct rlimit *rl)
{
    return REAL(prlimit)(0, RLIMIT_NOFILE, NULL, rl);
}


/* The numbers the fd table tracks: wc_nfds, or before the constructor
 * made the table (a thread started by another library's constructor:
 * invariant (6)), what it will be. */
static unsigned table_top(void)
{
    return wc_nfds ? wc_nfds : wc_fdtab_slots();
}

static int place(int fd, const struct rlimit *rl);

/* The highest free number in [floor, top), not one of ours, trying at
 * most `tries` numbers: invariant (4) (below L) and (1b) (below
 * WC_FD_TOP, from WC_FD_LOW up). fd or -errno (-EMFILE: none found). */
static int place_highest(int fd, long top, long floor, int tries)
{
    for (long a = top - 1; a >= floor && tries > 0; a--) {
        if (wc_fd_is_internal((int)a))
            continue;
        tries--;
        /* The lowest free number from a up: a, or one above when a is
         * taken (given back when at or above the top: the next a). */
        int n = wc_k_fcntl(fd, F_DUPFD_CLOEXEC, (int)a);
        if (n < 0) {
            if (errno == EMFILE)
                continue;       /* nothing free from a up to L */
            return -errno;
        }
        if (n < top)
            return n;
        wc_k_close(n);
    }
    return -EMFILE;
}

/* Invariant 1: fd duplicated just above the program's soft limit (rl,
 * its limit now), with the limit raised for that one F_DUPFD. The new
 * number, or -errno (-EMFILE: no room there, or the raise refused).
 * Caller holds g_limit_lock. */
static int place_above(int fd, const struct rlimit *rl)
{
    rlim_t lim = rl->rlim_cur, top = table_top();
    int n = -EMFILE;
    if (lim >= top)
        return n;
    struct rlimit up = *rl;
    if (rl->rlim_max > lim) {
        up.rlim_cur = rl->rlim_max < top ? rl->rlim_max : top;
    } else {
        up.rlim_cur = up.rlim_max = lim + 65536 < top ? lim + 65536 : top;
    }
    /* A limit the raise already failed from fails the same way (no
     * CAP_SYS_RESOURCE) until it changes: invariant 4 at once. */
    int refused = g_refused.rlim_max && g_refused.rlim_cur == lim &&
                  g_refused.rlim_max == rl->rlim_max;
    if (!refused) {
        g_prog_rl = *rl;
        __atomic_store_n(&g_window, 1, __ATOMIC_RELEASE);
        if (REAL(prlimit)(0, RLIMIT_NOFILE, &up, NULL) == 0) {
            n = wc_k_fcntl(fd, F_DUPFD_CLOEXEC, (int)lim);
            if (n < 0)
                n = -errno;
            REAL(prlimit)(0, RLIMIT_NOFILE, rl, NULL);     /* lowering */
        } else if (errno == EPERM) {
            g_refused = *rl;
        }
        __atomic_store_n(&g_window, 0, __ATOMIC_RELEASE);
    }
    if (n >= 0 && (unsigned)n >= top) {
        wc_k_close(n);
        n = -EMFILE;
    }
    return n;
}

WC_ONCE
void wc_own_fd_table_ready(void)
{
    int e = errno;
    struct rlimit rl;
    /* No handler runs meanwhile: this is no call of the shim's (wc_depth
     * is 0), and a handler's write that placed a descriptor would take
     * g_limit_lock again on this thread (threads::handler_writes_while_
     * threads_end hung one run in three). */
    wc_fd_window_open(0);               /* invariant (7); and the mask */
    wc_lock(&g_limit_lock);
    /* The descriptor duplicated is one of ours, of an object nobody
     * else holds (an eventfd): closing a descriptor of the program's
     * file drops every POSIX lock the process holds on it (probe AC F3:
     * a lock on the file on descriptor 0 was gone after the first
     * pthread_create). Where the limit cannot be raised, as invariant 4
     * places (just below L). */
    long src = -1;
    if (nofile(&rl) == 0)
        src = wc_raw_syscall(SYS_eventfd2, 0, EFD_CLOEXEC, 0, 0, 0, 0);
    if (src >= 0) {
        int n = place((int)src, &rl);
        if (n >= 0)
            wc_k_close(n);
        wc_k_close((int)src);
    }
    wc_unlock(&g_limit_lock);
    wc_fd_window_close();
    errno = e;
}

/* A duplicate of fd where invariants (1), (1b) and (4) put it, under the
 * program's limit rl: the new number or -errno. Caller holds
 * g_limit_lock. */
static int place(int fd, const struct rlimit *rl)
{
    rlim_t top = table_top(), lim = rl->rlim_cur < top ? rl->rlim_cur : top;
    int n = lim > WC_FD_LOW                                    /* (1b) */
                ? place_highest(fd, lim < WC_FD_TOP ? (long)lim : WC_FD_TOP,
                                WC_FD_LOW, 64)
                : -EMFILE;
    if (n >= 0 || n == -EBADF)
        return n;
    n = place_above(fd, rl);                                   /* (1) */
    if (n < 0 && n != -EBADF)
        n = place_highest(fd, (long)lim, 0, 4096);             /* (4) */
    return n;
}

int wc_own_fd_place(int fd)
{
    int e = errno;
    int n;
    struct rlimit rl;
    wc_lock(&g_limit_lock);
    n = nofile(&rl) == 0 ? place(fd, &rl) : -errno;
    if (n >= 0) {
        wc_fd_mark_internal(n, 1);
        /* Below the limit: given back as the program needs it. */
        if ((rlim_t)n < rl.rlim_cur)
            __atomic_store_n(&wc_own_fd_fallback, 1, __ATOMIC_RELAXED);
        if ((rlim_t)n < rl.rlim_cur && n < WC_FD_LOW && !g_fallback_logged) {
            g_fallback_logged = 1;
            wc_log(WC_LOG_INFO, "RLIMIT_NOFILE cannot be raised: the "
                   "cache's descriptors take numbers below the limit");
        }
    }
    wc_unlock(&g_limit_lock);
    errno = e;
    return n;
}

WC_ONCE
void wc_own_fd_after_fork(void)
{
    WC_RESET(g_limit_lock.v, 0);    /* the child is alone: its holder is gone */
    if (__atomic_load_n(&g_window, __ATOMIC_RELAXED)) {
        /* Forked while another thread had the limit raised: the child
         * gets the program's limit back. */
        REAL(prlimit)(0, RLIMIT_NOFILE, &g_prog_rl, NULL);
        g_window = 0;
    }
}

WC_ONCE
void wc_own_fd_closed(int fd)
{
    wc_fd_mark_internal(fd, 0);
}

/* ---- invariant (7): windows ------------------------------------------ */

/* In .data (WC_BOOT): a fork child writes the makers' count, beside the
 * flusher's state it resets as well (one page fault, not two). */
WC_BOOT unsigned wc_fd_makers;
WC_BOOT unsigned wc_fd_namers;
WC_BOOT uintptr_t wc_fd_window;
/* Looks put off in a row with no maker ended, and the count of ended
 * makers at the last one (the flusher's only). */
static int g_put_off;
static unsigned g_put_off_made;
#define WC_OWN_OPEN_WAITS 8
/* How long a window that cannot be put off waits while no maker enters
 * or ends before it opens anyway. A maker takes its number as it enters
 * the kernel (get_unused_fd_flags comes first, in open and accept alike),
 * so one inside that long while the window's thread watched blocks past
 * that (accept, the open of a FIFO or on a slow server) and no longer
 * meets the window: waiting longer would cost the window's thread as
 * long as the maker blocks (a server's accept thread: for good). Makers
 * that entered while the window was held wait for it in
 * wc_fd_make_begin. */
#define WC_WINDOW_STUCK_NS 20000
/* And while no namer ends: a namer's number is named in its first
 * microseconds (a close takes it out of the table before it waits, a
 * close_range frees every number below the one it waits on), but one
 * preempted before that may wait a scheduler's slice: 20 us let a window
 * in beside a dup2 still to come (prog_freenumber: 8 wrong in 2 s). */
#define WC_WINDOW_NAMER_NS 100000000

/* A word a window watches, and since when it has held that value. */
struct steady {
    unsigned seen;
    uint64_t since;             /* 0: not looked at yet */
};

/* Has `word` held the same value for more than `ns`? */
static int steady_for(struct steady *s, unsigned word, uint64_t ns)
{
    uint64_t now = wc_now_ns();
    if (word != s->seen || !s->since) {
        s->seen = word;
        s->since = now;
        return 0;
    }
    return now - s->since > ns;
}

int wc_fd_window_open(int may_put_off)
{
    struct wc_shim_thr *t = &wc_thr;
    if (t->fd_window++)
        return 1;
    /* A vfork child's descriptors are in a table of its own, which no
     * window of the parent's meets; and a window word it set and was
     * killed before clearing would stop the parent's calls for good.
     * (A real vfork is made only while the program has one thread: the
     * flusher, in the parent's table, skips its windows meanwhile too,
     * with no program thread there to meet.) */
    t->fd_vforked = wc_state == WC_ST_VFORK;
    if (unlikely(t->fd_vforked))
        return 1;
    uint64_t all = ~0ull;
    t->fd_masked = !wc_on_flusher();    /* the flusher's are blocked */
    if (t->fd_masked)
        wc_raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all,
                       (long)&t->fd_mask, 8, 0, 0);
    /* Nor may a cancellation act inside one (libc's open and close are
     * cancellation points, and the window would stay shut): off, once
     * the program has cancelled a thread (cancel.c (1)). */
    int old;
    t->fd_cancel = __atomic_load_n(&wc_cancel_used, __ATOMIC_RELAXED) &&
                   pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old) == 0
                       ? 1 + old
                       : 0;
    uintptr_t me = (uintptr_t)t;
    struct steady makers = {0, 0}, namers = {0, 0};
    for (unsigned i = 0;; i++) {
        uintptr_t none = 0;
        if (!__atomic_compare_exchange_n(&wc_fd_window, &none, me, 0,
                                         __ATOMIC_SEQ_CST,
                                         __ATOMIC_RELAXED)) {
            wc_backoff(i);              /* another thread's window */
            continue;
        }
        unsigned w = __atomic_load_n(&wc_fd_makers, __ATOMIC_SEQ_CST);
        unsigned made = w / WC_FD_MADE;
        if ((int)(w % WC_FD_MADE) - t->fd_makes <= 0)
            break;
        if (may_put_off) {
            if (made == g_put_off_made && ++g_put_off > WC_OWN_OPEN_WAITS)
                break;                  /* a maker is blocked: go on */
            if (made != g_put_off_made) {
                g_put_off_made = made;  /* makers go on: none is stuck */
                g_put_off = 0;
            }
            __atomic_store_n(&wc_fd_window, 0, __ATOMIC_RELEASE);
            t->fd_window = 1;
            wc_fd_window_close();
            return 0;
        }
        if (steady_for(&makers, w, WC_WINDOW_STUCK_NS)) {
            /* Those inside block: go on. */
            wc_log(WC_LOG_DEBUG, "window: %d call(s) making a descriptor "
                   "taken for blocked", (int)(w % WC_FD_MADE) - t->fd_makes);
            break;
        }
        __atomic_store_n(&wc_fd_window, 0, __ATOMIC_RELEASE);
        wc_backoff(i);
    }
    if (may_put_off)
        g_put_off = 0;
    /* Namers that entered before the window step back no more: their
     * calls end (a close, a dup2, a close_range), or block past their
     * naming, as makers do (WC_WINDOW_NAMER_NS). A count left raised by
     * a namer that never ended would cost each window that wait: a
     * thread cancelled in its close ends its count as it ends
     * (calls_gone). */
    for (unsigned i = 0;; i++) {
        unsigned n = __atomic_load_n(&wc_fd_namers, __ATOMIC_SEQ_CST);
        if ((int)n - t->fd_names <= 0 ||
            steady_for(&namers, n, WC_WINDOW_NAMER_NS))
            break;
        wc_backoff(i);
    }
    return 1;
}

void wc_fd_window_close(void)
{
    struct wc_shim_thr *t = &wc_thr;
    if (--t->fd_window || unlikely(t->fd_vforked))
        return;
    if (__atomic_load_n(&wc_fd_window, __ATOMIC_RELAXED) == (uintptr_t)t)
        __atomic_store_n(&wc_fd_window, 0, __ATOMIC_RELEASE);
    if (t->fd_cancel)
        pthread_setcancelstate(t->fd_cancel - 1, NULL);
    if (t->fd_masked)
        wc_raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&t->fd_mask,
                       0, 8, 0, 0);
}

int wc_own_fd_open(const char *path, int flags, mode_t mode)
{
    int e = errno;
    wc_fd_window_open(0);
    int n = wc_k_openat(AT_FDCWD, path, flags | O_CLOEXEC, mode);
    if (n < 0) {
        n = -errno;
    } else {
        int t = n;
        n = wc_own_fd_place(t);
        wc_k_close(t);
    }
    wc_fd_window_close();
    errno = e;
    return n;
}

/* A thread's end with its counts raised (shim.h wc_fd_calls_hook): a
 * close, open or accept it was cancelled in (cancellation points all),
 * or left by pthread_exit from a handler, would leave them raised for
 * good, and every later window would wait for that call: 100 ms for a
 * namer's, 20 us for a maker's (a server stopping its accept thread).
 * The key's destructor runs as the thread ends, after its cleanup
 * handlers, on its own TLS: it ends them, and a window it held. One
 * mechanism for every such call, and nothing per call (close's cleanup
 * handler before: a sigsetjmp at each close with threads). */
WC_BOOT static pthread_key_t g_calls_key;
WC_BOOT static int g_calls_key_ok;

void wc_fd_calls_end(int *makes, int *names)
{
    *makes = wc_thr.fd_makes;
    *names = wc_thr.fd_names;
    for (int i = 0; i < *names; i++)
        wc_fd_name_end();
    for (int i = 0; i < *makes; i++)
        wc_fd_make_end();
}

void wc_fd_calls_again(int makes, int names)
{
    for (int i = 0; i < makes; i++)
        wc_fd_make_begin();
    for (int i = 0; i < names; i++)
        wc_fd_name_begin();
}

static void calls_gone(void *unused)
{
    (void)unused;
    struct wc_shim_thr *t = &wc_thr;
    int makes, names;
    t->fd_forking = 0;
    wc_fd_calls_end(&makes, &names);
    if (t->fd_window > 0) {
        t->fd_window = 1;
        wc_fd_window_close();
    }
}

WC_ONCE
void wc_fd_calls_init(void)
{
    g_calls_key_ok = pthread_key_create(&g_calls_key, calls_gone) == 0;
}

WC_HOT
void wc_fd_calls_hook(void)
{
    /* A key created early has its slot in the thread's descriptor: no
     * allocation, as a signal handler may be the caller. Before the
     * constructor (another library's), left for the next call; with no
     * key after it (the shim off: no window ever opens), none asked. */
    if (__atomic_load_n(&g_calls_key_ok, __ATOMIC_ACQUIRE))
        pthread_setspecific(g_calls_key, (void *)1);
    else if (wc_state == WC_ST_INIT)
        return;
    wc_thr.fd_hooked = 1;
}

WC_ONCE
void wc_fd_window_after_fork(void)
{
    /* The other threads' calls and windows stayed behind, and the fork
     * (a maker: proc.c) has ended. The count of ended makers stays, with
     * the last look's copy of it. */
    if (wc_thr.fd_forking) {
        wc_thr.fd_forking = 0;
        wc_thr.fd_makes--;
    }
    unsigned in = wc_fd_makers % WC_FD_MADE;
    if (in != (unsigned)wc_thr.fd_makes)
        wc_fd_makers += (unsigned)wc_thr.fd_makes - in;
    WC_RESET(wc_fd_namers, (unsigned)wc_thr.fd_names);
    WC_RESET(wc_fd_window, 0);
    WC_RESET(g_put_off, 0);
}

const struct wc_fd_ops wc_own_fd_ops = {wc_own_fd_place, wc_own_fd_closed,
                                        wc_own_fd_open};

/* Give up the file whose write-back descriptor is `fd` (it leaves the
 * cache; its descriptor is closed). Caller at depth 1. 0 or -errno. */
static int give_up(struct wc_cache *c, int fd)
{
    dev_t dev;
    ino_t ino;
    int r = wc_cache_fd_owner(c, fd, &dev, &ino);
    if (r < 0)
        return r;
    wc_log(WC_LOG_INFO, "descriptor %d is needed: file %lu:%lu leaves the "
           "cache", fd, (unsigned long)dev, (unsigned long)ino);
    wc_file_detach(dev, ino);
    return wc_fd_is_internal(fd) ? -EBUSY : 0;
}

int wc_own_fd_evict(int fd)
{
    struct wc_cache *c = wc_cachep;
    /* In a vfork child the table is its own: ours there is simply
     * replaced (O_CLOEXEC: gone at its exec), the parent's untouched
     * (proc.c invariant (7)). */
    if (!wc_fd_is_internal(fd) || wc_state == WC_ST_VFORK)
        return 0;
    if (wc_depth)
        return -EBUSY;
    int m = wc_cells_fd_move(fd);       /* a region's memfd (shared.c) */
    if (m != -ENOENT)
        return m;
    if (!c)
        return -EBUSY;
    struct rlimit rl;
    if (wc_nofile_prlimit(0, NULL, &rl) == 0 && (rlim_t)fd >= rl.rlim_cur)
        return 0;       /* the kernel refuses that number to the program */
    int e = wc_work_begin();
    int r = wc_cache_fd_move(c, fd);
    if (r < 0 && r != -ENOENT)
        r = give_up(c, fd);       /* no room to move it: the file goes */
    wc_work_end(e);
    return r == -ENOENT ? 0 : r;
}

int wc_own_fd_yield(void)
{
    struct wc_cache *c = wc_cachep;
    if (!__atomic_load_n(&wc_own_fd_fallback, __ATOMIC_RELAXED) || !c ||
        wc_depth || wc_state != WC_ST_ON)
        return 0;
    struct rlimit rl;
    if (wc_nofile_prlimit(0, NULL, &rl) != 0)
        return 0;
    unsigned lo, hi;
    wc_own_fd_range(&lo, &hi);
    rlim_t lim = rl.rlim_cur < hi ? rl.rlim_cur : hi;
    int freed = 0;
    int e = wc_work_begin();
    /* The lowest first: the number the kernel would have given. */
    for (unsigned fd = lo; fd < lim && !freed; fd++)
        if (wc_fd_is_internal((int)fd))
            freed = give_up(c, (int)fd) == 0;
    wc_work_end(e);
    return freed;
}

/* ---- calls that make a descriptor, not otherwise interposed ---------- */

/* Invariants (1b) and (4) put the engine's descriptors below the
 * program's limit: at EMFILE a cached file gives its number back
 * (wc_own_fd_yield) and the call is made again, as open.c does for open,
 * dup and F_DUPFD (probe AF F1: sockets, pipes, eventfds, epoll
 * instances and accepted connections failed one number per cached file
 * early). Nothing else per call. MAKES_FD(name, parameters, their
 * types, the arguments) defines one such wrapper. */
#define MAKES_FD(name, params, types, args)                                \
    WC_EXPORT int name params                                              \
    {                                                                      \
        int(*next) types = WC_NEXT(int(*) types, name);                    \
        int r;                                                             \
        if (!next)                                                         \
            return (int)wc_ret(-ENOSYS);                                   \
        RETRY_EMFILE(r, next args);                                        \
        return r;                                                          \
    }

MAKES_FD(socket, (int domain, int type, int proto), (int, int, int),
         (domain, type, proto))
MAKES_FD(socketpair, (int domain, int type, int proto, int sv[2]),
         (int, int, int, int *), (domain, type, proto, sv))
MAKES_FD(accept, (int s, struct sockaddr *a, socklen_t *n),
         (int, struct sockaddr *, socklen_t *), (s, a, n))
MAKES_FD(accept4, (int s, struct sockaddr *a, socklen_t *n, int fl),
         (int, struct sockaddr *, socklen_t *, int), (s, a, n, fl))
MAKES_FD(pipe, (int p[2]), (int *), (p))
MAKES_FD(pipe2, (int p[2], int fl), (int *, int), (p, fl))
MAKES_FD(eventfd, (unsigned v, int fl), (unsigned, int), (v, fl))
MAKES_FD(epoll_create, (int size), (int), (size))
MAKES_FD(epoll_create1, (int fl), (int), (fl))

/* getrlimit: RLIMIT_NOFILE as the program set it, even while place() has
 * it raised (invariant 2). Sanitizer runtimes call getrlimit while they
 * start, before anything of ours may run instrumented or resolve symbols:
 * a raw system call, no instrumentation. */
__attribute__((no_sanitize_thread, no_sanitize_address))
WC_EXPORT int getrlimit(__rlimit_resource_t res, struct rlimit *rl)
{
    if (res == RLIMIT_NOFILE &&
        __atomic_load_n(&g_window, __ATOMIC_ACQUIRE)) {
        *rl = g_prog_rl;
        return 0;
    }
    long r = wc_raw_syscall(SYS_prlimit64, 0, (long)res, 0, (long)rl, 0, 0);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}
int getrlimit64(__rlimit_resource_t res, struct rlimit64 *rl)
    WC_ALIAS(getrlimit);

int wc_nofile_prlimit(pid_t pid, const struct rlimit *nl, struct rlimit *ol)
{
    struct rlimit now;
    int locked = !wc_depth;     /* a handler that interrupted place()
                                   must not wait for it */
    if (locked)
        wc_lock(&g_limit_lock);
    if (!nl && ol && !locked && __atomic_load_n(&g_window, __ATOMIC_ACQUIRE)) {
        *ol = g_prog_rl;
        return 0;
    }
    int r = REAL(prlimit)(pid, RLIMIT_NOFILE, nl, ol);
    int e = errno;
    int ok = r == 0 && nl && nofile(&now) == 0;
    if (locked)
        wc_unlock(&g_limit_lock);
    /* Invariant 3: numbers of ours now below the limit and below
     * WC_FD_LOW move away. */
    if (ok && wc_state == WC_ST_ON && wc_cachep && !wc_depth) {
        unsigned lo, hi;
        wc_own_fd_range(&lo, &hi);
        rlim_t lim = now.rlim_cur < hi ? now.rlim_cur : hi;
        if (lim > WC_FD_LOW)
            lim = WC_FD_LOW;
        for (unsigned fd = lo; fd < lim; fd++)
            if (wc_fd_is_internal((int)fd))
                wc_own_fd_evict((int)fd);
    }
    errno = e;
    return r;
}
