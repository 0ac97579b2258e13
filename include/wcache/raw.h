/*
 * raw.h - a system call without libc: no errno written, no function of
 * libc or of the shim's table called, no instrumentation. For the places
 * that cannot use either: the futex of the one mutex (wcache/lock.h), the crash
 * guard's children, which share the program's memory and thread pointer
 * (shim/guard.c), getrlimit while a sanitizer's runtime starts
 * (shim/ownfd.c), and the fallbacks used before dlsym answers
 * (shim/real.c). x86_64, as the rest of wcache.
 *
 * Returns what the kernel returns: a value, or -errno.
 */
#ifndef WCACHE_RAW_H
#define WCACHE_RAW_H

static inline __attribute__((always_inline)) long
wc_raw_syscall(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
                       "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}

/* Fault in the anonymous pages [p, p + len) that are about to be written,
 * with one call: a first-touch page fault costs 10-11 us in a VM (the
 * machine this was measured on), one madvise(MADV_POPULATE_WRITE) about
 * 2.5 us for a page and 0.7 us a page for many. Best effort, errno left
 * alone: a kernel without it (before 5.14) leaves them to faults. */
static inline void wc_prefault(void *p, unsigned long len)
{
    wc_raw_syscall(28 /* SYS_madvise */, (long)p, (long)len,
                   23 /* MADV_POPULATE_WRITE */, 0, 0, 0);
}

/* One round of a wait for another thread or process that holds something
 * for a moment (a fast write's section, a claim, a cell being moved):
 * spin, then yield, then sleep, `round` counting from 0. Never only
 * yield: under SCHED_FIFO or SCHED_RR a thread that yields runs again at
 * once when the one it waits for has a lower priority (a program that
 * lowered its own priority below its flusher's, probe Z), so a wait that
 * only yields may never end. The sleep lets every thread run. */
static inline void wc_backoff(unsigned round)
{
    if (round < 64) {
        __builtin_ia32_pause();
    } else if (round < 128) {
        wc_raw_syscall(24 /* SYS_sched_yield */, 0, 0, 0, 0, 0, 0);
    } else {
        struct {
            long sec, nsec;
        } ts = {0, 50000};
        wc_raw_syscall(35 /* SYS_nanosleep */, (long)&ts, 0, 0, 0, 0, 0);
    }
}

#endif /* WCACHE_RAW_H */
