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

#endif /* WCACHE_RAW_H */
