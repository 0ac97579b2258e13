/*
 * ucopy.h - copies to and from user memory that never fault into user code.
 *
 * The kernel copies from user memory under the page lock with page faults
 * disabled (copy_folio_from_iter_atomic) and relies on its exception tables
 * to turn a fault into a short count. wc_copy_nofault() is the same thing in
 * user space: moves (a `rep movsb` for long copies) whose SIGSEGV/SIGBUS is
 * caught by our handler, which moves the instruction pointer past the copy;
 * the count left is in RCX, so the caller learns exactly how many bytes
 * were copied. The
 * program's own SIGSEGV/SIGBUS handlers never run for such a fault; every
 * other fault is handed to them (or to the default action) unchanged.
 */
#ifndef WCACHE_UCOPY_H
#define WCACHE_UCOPY_H

#include <signal.h>
#include <ucontext.h>
#include <stddef.h>
#include "wcache/hidden.h"

/* The copy itself (ucopy.c): returns the bytes NOT copied. */
size_t wc__copy_rep(void *dst, const void *src, size_t n);

/* Copy n bytes; returns how many were copied (n unless a fault stopped it).
 * Bytes of dst past the returned count may have been written. */
static inline size_t wc_copy_nofault(void *dst, const void *src, size_t n)
{
    return n - wc__copy_rep(dst, src, n);
}

/* Read the byte at p and drop it: 0, or 1 when the read faulted (caught
 * as a copy's fault is). Faults the page in: a page that must wait for
 * it (userfaultfd, a slow file mapping) waits here, where the caller
 * holds no lock. */
int wc_probe_byte(const void *p);

/* How many bytes from src, up to n, can be read (page granularity), found
 * with process_vm_readv on our own pid, which faults pages in without a
 * signal (the kernel's fault_in_iov_iter_readable). 0: none. Slow (~1 us):
 * only for the retry path after a fault. Leaves errno as it was. */
size_t wc_probe_readable(const void *src, size_t n);

/* Copy into dst what of [src, src + n) can be read, up to the first page
 * that cannot, the same way (the non-faulting copy where a filter
 * refuses process_vm_readv): the bytes copied. Leaves errno as it was. */
size_t wc_read_readable(void *dst, const void *src, size_t n);

/* The highest user address + 1 on this machine (x86_64: 47 or 56 bits). */
extern WC_LOCAL unsigned long wc_user_addr_max;

/* The kernel's access_ok(): is [p, p + n) inside user space? */
static inline int wc_access_ok(const void *p, size_t n)
{
    unsigned long a = (unsigned long)p;
    return n <= wc_user_addr_max && a <= wc_user_addr_max - n;
}

/* Install the SIGSEGV/SIGBUS handler (idempotent; keeps the handlers
 * installed before as the ones faults outside our copies are passed to).
 * Returns 0 or -errno. */
int wc_fault_install(void);

/* For the shim's sigaction()/signal(): record the program's action for
 * SIGSEGV or SIGBUS without displacing ours. Same contract as sigaction(2).
 * Returns 0 or -errno. */
int wc_fault_sigaction(int sig, const struct sigaction *act,
                       struct sigaction *old /* OUT, may be NULL */);

/* Called by the fault handler when a SIGSEGV or SIGBUS that is not ours is
 * about to take the default action (the process dies of it): the shim
 * writes back there. Runs inside the handler (on the thread's alternate
 * stack when it has one); must return. NULL: nothing to do. */
extern WC_LOCAL void (*volatile wc_fault_death_hook)(int sig);

/* Called by the fault handler before it runs the program's handler for a
 * SIGSEGV or SIGBUS the kernel raised: 1 when the kernel alone could not
 * have run that handler (the signal came on the shim's alternate stack,
 * and the interrupted stack has no room for the kernel's frame: a stack
 * overflow), and the process dies of the signal instead, as it would
 * have. NULL or 0: the handler runs. */
extern WC_LOCAL int (*volatile wc_fault_undeliverable_hook)(const siginfo_t *si,
                                                   const ucontext_t *uc);

/* Called around the program's handler: with show 0, what uc->uc_stack
 * says of the shim's own alternate stack is replaced by what the kernel
 * alone would say (no stack) and kept in *saved; with show 1, put back
 * (the kernel restores the stack from it at the handler's return). */
extern WC_LOCAL void (*volatile wc_fault_uc_stack_hook)(ucontext_t *uc,
                                               stack_t *saved, int show);

/* The program's action `act` as the kernel keeps it: glibc's sigaction
 * adds SA_RESTORER (and its restorer, the caller's to fill in); the
 * kernel drops SIGKILL and SIGSTOP from the mask (kernel/signal.c
 * do_sigaction). For sigaction to report what the kernel would, where
 * the engine (wc_fault_sigaction) or the shim (signals.c) keeps the
 * program's action in the kernel's place. */
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif
static inline struct sigaction wc_sigaction_kept(const struct sigaction *act)
{
    struct sigaction k = *act;
    k.sa_flags |= SA_RESTORER;
    sigdelset(&k.sa_mask, SIGKILL);
    sigdelset(&k.sa_mask, SIGSTOP);
    return k;
}

#endif /* WCACHE_UCOPY_H */
