/*
 * ucopy.c - non-faulting copies to and from user memory (see ucopy.h).
 *
 * Invariants:
 *   (1) The only instructions that may fault inside a copy are the `rep
 *       movsb` at wc__copy_insn (copies of WC_COPY_REP_MIN bytes or more)
 *       and, for shorter ones, the labelled loads and stores of 16, 8, 4,
 *       2 and 1 bytes (copy_faults; a `rep movsb` of one byte takes 5 ns
 *       on this machine, one move 1.5 ns: a 1-byte write()'s copy). The
 *       count register (RCX) is exact at each, and so are RSI and RDI: on
 *       a fault in a move of 2 to 16 bytes the copy goes on byte by byte
 *       from there (wc__copy_bytes); on a fault of a single byte or of
 *       `rep movsb`, RCX holds the bytes left, so the fix-up returns them
 *       as they are. The count is exact to the byte. And the load at
 *       wc__probe_load (wc_probe_byte: one byte read and dropped, a
 *       source's page faulted in before any lock: shim/io.c fault_in),
 *       whose fix-up returns 1.
 *   (2) The handler recognises our fault by the faulting instruction pointer
 *       alone: no flag, no TLS, nothing the compiler could reorder.
 *   (3) Any other SIGSEGV/SIGBUS goes to the action that was installed
 *       before ours (or that the program asked for later through
 *       wc_fault_sigaction), exactly as if we were not there.
 *   (4) The action of (3) runs with the signal mask its handler would have
 *       had (chain_mask). Not the stack: ours runs on the shim's alternate
 *       stack (SA_ONSTACK) where the thread has one (shim/altstack.c
 *       (3)), and so does the program's handler it calls, even when the
 *       program asked for none; what the handler sees of that stack
 *       (sigaltstack, its ucontext's uc_stack) is what the kernel alone
 *       would show (wc_fault_uc_stack_hook: none).
 *   (5) Where the kernel alone could not have run the program's handler
 *       (the fault came on the shim's stack, and the interrupted stack
 *       has no room for a signal frame: a stack overflow), the action is
 *       the default one, as the kernel forces it: the process dies of the
 *       signal (wc_fault_undeliverable_hook; probe AE F1: the program's
 *       handler ran and chose the exit status).
 *   (6) At the default action the handler writes back (wc_fault_death_hook)
 *       and returns to the faulting access, which faults again and kills
 *       or, where the write-back made it valid, goes on (an access to a
 *       mapping of a file past the size the disk had, which cached data
 *       extends: the kernel alone had no fault there); a signal that came
 *       from no access (sent by a process, or a SIGSEGV the kernel sends
 *       when it cannot build another signal's frame) kills as the handler
 *       returns.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "wcache/raw.h"
#include "wcache/sys.h"
#include "wcache/ucopy.h"

unsigned long wc_user_addr_max = 0x7ffffffff000UL;

/*
 * size_t wc__copy_rep(void *dst, const void *src, size_t n)
 * returns the number of bytes NOT copied.
 *
 * Under WC_COPY_REP_MIN bytes, moves of 16, then 8, 4, 2 and 1 bytes; from
 * there `rep movsb`, whose start-up cost only a long copy repays (in a
 * write() of 8 to 256 bytes through the shim, the moves take 1.5-5 ns
 * less; a byte loop took 1 ns a byte). A fault in a move of 2 to 16 bytes
 * sends the copy on byte by byte from that move's first byte (RCX, RSI
 * and RDI are exact there), which stops at the byte that faults: the count
 * is exact to the byte, as `rep movsb`'s is (invariant (1)).
 */
#define WC_COPY_REP_MIN 512
#define WC_STR2(x) #x
#define WC_STR(x) WC_STR2(x)
/* A global, hidden label: an instruction the fault handler knows, or
 * where it sends one (invariant (1)). */
#define WC_FAULT_LABEL(name) \
        ".globl " name "\n.hidden " name "\n" name ":\n"
__asm__(".pushsection .text.hot.wc, \"ax\", @progbits\n"
        ".globl wc__copy_rep\n"
        ".hidden wc__copy_rep\n"
        ".type wc__copy_rep,@function\n"
        "wc__copy_rep:\n"
        "    movq %rdx, %rcx\n"
        "    cmpq $8, %rcx\n"
        "    jae 1f\n"
        /* 0 to 7 bytes (a byte first: a 1-byte write()'s copy). */
        "2:  testb $1, %cl\n"
        "    jz 3f\n"
        WC_FAULT_LABEL("wc__copy_byte_load")
        "    movb (%rsi), %al\n"
        WC_FAULT_LABEL("wc__copy_byte_store")
        "    movb %al, (%rdi)\n"
        "    incq %rsi\n"
        "    incq %rdi\n"
        "    decq %rcx\n"
        "    jz wc__copy_fixup\n"
        "3:  testb $2, %cl\n"
        "    jz 4f\n"
        WC_FAULT_LABEL("wc__copy_w_load")
        "    movzwl (%rsi), %eax\n"
        WC_FAULT_LABEL("wc__copy_w_store")
        "    movw %ax, (%rdi)\n"
        "    addq $2, %rsi\n"
        "    addq $2, %rdi\n"
        "    subq $2, %rcx\n"
        "4:  testb $4, %cl\n"
        "    jz wc__copy_fixup\n"
        WC_FAULT_LABEL("wc__copy_d_load")
        "    movl (%rsi), %eax\n"
        WC_FAULT_LABEL("wc__copy_d_store")
        "    movl %eax, (%rdi)\n"
        "    xorl %ecx, %ecx\n"
        "    jmp wc__copy_fixup\n"
        /* 8 bytes or more: 16 at a time, then 8, then the rest as above;
         * `rep movsb` from WC_COPY_REP_MIN. */
        "1:  cmpq $" WC_STR(WC_COPY_REP_MIN) ", %rcx\n"
        "    jae 5f\n"
        "    cmpq $16, %rcx\n"
        "    jb 7f\n"
        "6:\n"
        WC_FAULT_LABEL("wc__copy_x_load")
        "    movdqu (%rsi), %xmm0\n"
        WC_FAULT_LABEL("wc__copy_x_store")
        "    movdqu %xmm0, (%rdi)\n"
        "    addq $16, %rsi\n"
        "    addq $16, %rdi\n"
        "    subq $16, %rcx\n"
        "    cmpq $16, %rcx\n"
        "    jae 6b\n"
        "    cmpq $8, %rcx\n"
        "    jb 2b\n"
        "7:\n"
        WC_FAULT_LABEL("wc__copy_q_load")
        "    movq (%rsi), %rax\n"
        WC_FAULT_LABEL("wc__copy_q_store")
        "    movq %rax, (%rdi)\n"
        "    addq $8, %rsi\n"
        "    addq $8, %rdi\n"
        "    subq $8, %rcx\n"
        "    jmp 2b\n"
        /* After a fault in a move of 2 to 16 bytes: byte by byte. */
        WC_FAULT_LABEL("wc__copy_bytes")
        "    testq %rcx, %rcx\n"
        "    jz wc__copy_fixup\n"
        WC_FAULT_LABEL("wc__copy_loop_load")
        "    movb (%rsi), %al\n"
        WC_FAULT_LABEL("wc__copy_loop_store")
        "    movb %al, (%rdi)\n"
        "    incq %rsi\n"
        "    incq %rdi\n"
        "    decq %rcx\n"
        "    jmp wc__copy_bytes\n"
        "5:\n"
        WC_FAULT_LABEL("wc__copy_insn")
        "    rep movsb\n"
        WC_FAULT_LABEL("wc__copy_fixup")
        "    movq %rcx, %rax\n"
        "    ret\n"
        ".size wc__copy_rep, .-wc__copy_rep\n"
        ".popsection\n");

/*
 * int wc_probe_byte(const void *p): 0 when the byte at p could be read, 1
 * when reading it faulted.
 */
__asm__(".pushsection .text.hot.wc, \"ax\", @progbits\n"
        ".globl wc_probe_byte\n"
        ".hidden wc_probe_byte\n"
        ".type wc_probe_byte,@function\n"
        "wc_probe_byte:\n"
        "    xorl %eax, %eax\n"
        WC_FAULT_LABEL("wc__probe_load")
        "    movb (%rdi), %cl\n"
        "    ret\n"
        WC_FAULT_LABEL("wc__probe_fixup")
        "    movl $1, %eax\n"
        "    ret\n"
        ".size wc_probe_byte, .-wc_probe_byte\n"
        ".popsection\n");

extern const char wc__copy_insn[], wc__copy_fixup[], wc__copy_bytes[],
    wc__copy_x_load[], wc__copy_x_store[], wc__copy_q_load[],
    wc__copy_q_store[], wc__copy_d_load[], wc__copy_d_store[],
    wc__copy_w_load[], wc__copy_w_store[], wc__copy_byte_load[],
    wc__copy_byte_store[], wc__copy_loop_load[], wc__copy_loop_store[],
    wc__probe_load[], wc__probe_fixup[];

/* Invariant (1): the copy's instructions that may fault, and where each
 * goes on: the moves of 2 to 16 bytes to the byte loop, the others (RCX
 * exact to the byte) to the return. */
static const struct {
    const char *insn, *next;
} copy_faults[] = {
    {wc__copy_x_load, wc__copy_bytes},     {wc__copy_x_store, wc__copy_bytes},
    {wc__copy_q_load, wc__copy_bytes},     {wc__copy_q_store, wc__copy_bytes},
    {wc__copy_d_load, wc__copy_bytes},     {wc__copy_d_store, wc__copy_bytes},
    {wc__copy_w_load, wc__copy_bytes},     {wc__copy_w_store, wc__copy_bytes},
    {wc__copy_byte_load, wc__copy_fixup},  {wc__copy_byte_store, wc__copy_fixup},
    {wc__copy_loop_load, wc__copy_fixup},  {wc__copy_loop_store, wc__copy_fixup},
    {wc__copy_insn, wc__copy_fixup},
};

size_t wc_read_readable(void *dst, const void *src, size_t n)
{
    int saved = errno;          /* a probe is not a failure of the call */
    struct iovec local = {dst, n}, remote = {(void *)src, n};
    ssize_t r = wc_sys.process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (r < 0 && (errno == ENOSYS || errno == EPERM)) {
        /* No process_vm_readv (a seccomp filter): the non-faulting copy
         * reads as far too. */
        r = (ssize_t)wc_copy_nofault(dst, src, n);
    }
    errno = saved;
    return r < 0 ? 0 : (size_t)r;
}

size_t wc_probe_readable(const void *src, size_t n)
{
    char scratch[4096];
    size_t done = 0;

    while (done < n) {
        size_t chunk = n - done < sizeof scratch ? n - done : sizeof scratch;
        size_t r = wc_read_readable(scratch, (const char *)src + done, chunk);
        done += r;
        if (r < chunk)
            break;
    }
    return done;
}

/* ---- the fault handler ---------------------------------------------- */

/*
 * The actions to chain to, for SIGSEGV and SIGBUS. Written only by
 * wc_fault_install and wc_fault_sigaction with both signals blocked, read
 * by the handler; an action is copied as a whole before use.
 */
static struct sigaction chain_segv, chain_bus;
static volatile sig_atomic_t installed;

void (*volatile wc_fault_death_hook)(int sig);
int (*volatile wc_fault_undeliverable_hook)(const siginfo_t *si,
                                            const ucontext_t *uc);
void (*volatile wc_fault_uc_stack_hook)(ucontext_t *uc, stack_t *saved,
                                        int show);

static struct sigaction *chain_for(int sig)
{
    return sig == SIGBUS ? &chain_bus : &chain_segv;
}

/* Invariant (4): the program's handler runs with the mask the kernel
 * would have given it: the interrupted code's, its sa_mask, and the
 * signal itself unless SA_NODEFER (ours runs with SA_NODEFER and no mask,
 * for the faults of its own copies). A handler that leaves with
 * siglongjmp and no saved mask keeps them blocked, as without the shim:
 * a second fault then kills, where it was handled again. The kernel
 * restores the interrupted mask when the handler returns. */
static void chain_mask(int sig, const struct sigaction *act,
                       const ucontext_t *uc)
{
    uint64_t m, extra;
    memcpy(&m, &uc->uc_sigmask, sizeof m);
    memcpy(&extra, &act->sa_mask, sizeof extra);
    m |= extra;
    if (!(act->sa_flags & SA_NODEFER))
        m |= 1ull << (sig - 1);
    wc_raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&m, 0, sizeof m, 0,
                   0);
}

static void fault_handler(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    greg_t *ip = &uc->uc_mcontext.gregs[REG_RIP];

    for (size_t i = 0; i < sizeof copy_faults / sizeof *copy_faults; i++)
        if (*ip == (greg_t)(uintptr_t)copy_faults[i].insn) {
            *ip = (greg_t)(uintptr_t)copy_faults[i].next;  /* invariant (1) */
            return;
        }
    if (*ip == (greg_t)(uintptr_t)wc__probe_load) {
        *ip = (greg_t)(uintptr_t)wc__probe_fixup;
        return;
    }

    /* Not ours: behave as the previous action would have. */
    struct sigaction act = *chain_for(sig);
    int handler = (act.sa_flags & SA_SIGINFO) ||
                  (act.sa_handler != SIG_DFL && act.sa_handler != SIG_IGN);
    int (*cannot)(const siginfo_t *, const ucontext_t *) =
        wc_fault_undeliverable_hook;
    if (handler && si->si_code > 0 && cannot && cannot(si, uc)) {
        /* The kernel alone would have had no room to run it: it forces
         * the default action (a stack overflow kills). */
        handler = 0;
        act.sa_flags = 0;
        act.sa_handler = SIG_DFL;
    }
    if (handler) {
        void (*uc_stack)(ucontext_t *, stack_t *, int) =
            wc_fault_uc_stack_hook;
        stack_t saved;
        if (act.sa_flags & SA_RESETHAND)
            chain_for(sig)->sa_handler = SIG_DFL;
        chain_mask(sig, &act, uc);
        if (uc_stack)
            uc_stack(uc, &saved, 0);
        if (act.sa_flags & SA_SIGINFO)
            act.sa_sigaction(sig, si, ctx);
        else
            act.sa_handler(sig);
        if (uc_stack)
            uc_stack(uc, &saved, 1);
        return;
    }
    if (act.sa_handler == SIG_IGN && si->si_code <= 0)
        return;         /* sent by kill() and ignored: the kernel drops it */
    /* A synchronous fault cannot be ignored: the kernel would apply the
     * default action. Write back first (the process dies now); then
     * restore it: returning re-executes the faulting access, which then
     * takes the default action, or goes on where the write-back made it
     * valid (a mapping of the file past the size on disk, invariant (6)).
     * A signal sent by kill(), or a SIGSEGV the kernel forces when it
     * cannot build a signal's frame (SI_KERNEL, as a general protection
     * fault, which would only repeat), comes from no access: it is sent
     * again to this thread, blocked until this handler returns, so that
     * the process dies of it then, before anything runs again (returning
     * alone, the program ran on where the kernel's died). */
    void (*hook)(int) = wc_fault_death_hook;
    if (hook)
        hook(sig);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    wc_sys.sigaction(sig, &dfl, NULL);
    installed = 0;
    if (si->si_code > 0 && si->si_code != SI_KERNEL)
        return;
    uint64_t one = 1ull << (sig - 1);
    wc_raw_syscall(SYS_rt_sigprocmask, SIG_BLOCK, (long)&one, 0, sizeof one,
                   0, 0);
    wc_raw_syscall(SYS_tgkill, wc_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0),
                   wc_raw_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0), sig, 0, 0, 0);
    sigdelset(&uc->uc_sigmask, sig);    /* unblocked at the return */
}

static int install_one(int sig)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (wc_sys.sigaction(sig, &sa, &old) < 0)
        return -errno;
    if (old.sa_sigaction != fault_handler)
        *chain_for(sig) = old;
    return 0;
}

int wc_fault_install(void)
{
    int r = install_one(SIGSEGV);
    if (r == 0)
        r = install_one(SIGBUS);
    if (r == 0)
        installed = 1;
    return r;
}

int wc_fault_sigaction(int sig, const struct sigaction *act,
                       struct sigaction *old)
{
    if (sig != SIGSEGV && sig != SIGBUS)
        return -EINVAL;
    if (!installed)
        return wc_sys.sigaction(sig, act, old) < 0 ? -errno : 0;

    sigset_t all, saved;
    sigemptyset(&all);
    sigaddset(&all, SIGSEGV);
    sigaddset(&all, SIGBUS);
    /* Kept as the kernel keeps it, for the program's later questions,
     * with glibc's restorer (the one glibc gave the handler installed
     * here; probe AG F5: the flags came back without SA_RESTORER). */
    struct sigaction k, cur;
    if (act) {
        k = wc_sigaction_kept(act);
        if (wc_sys.sigaction(sig, NULL, &cur) == 0)
            k.sa_restorer = cur.sa_restorer;
    }
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    if (old)
        *old = *chain_for(sig);
    if (act)
        *chain_for(sig) = k;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return 0;
}
