/*
 * real.c - fill the table of real libc functions (wc_sys) with the next
 * definition of each name after this library (what dlsym(RTLD_NEXT,
 * name) answers, read from the loaded objects' symbol tables: next_sym),
 * early and safely, and each entry only when it is first needed.
 *
 * A slot's states (the table is process-wide; each store is atomic):
 *
 *   NULL --wc_real_init--> trampoline i --first call, or wc_real_all-->
 *        the function found (or, missing or inside dlsym: the fallback,
 *        a raw system call or a stub failing with ENOSYS)
 *
 * Invariants:
 *   (1) No entry of wc_sys is ever NULL once wc_real_init() has started:
 *       every slot is first given its trampoline, which resolves the slot
 *       at its first call and jumps to the result, so any entry may be
 *       called through the table at any time, by the shim or by cache/.
 *       A call that arrives while dlsym itself runs (dlsym may call
 *       calloc, a malloc replacement may call write...) takes the
 *       fallback, not kept.
 *   (1b) The entries kcall.h's check needs (AT_START) are resolved in the
 *       constructor; all the others when the cache is made (wc_real_all,
 *       before the engine, its signal handlers and its guard exist), or
 *       at their first call before that: a process that caches nothing
 *       looks up the few names it uses (dlsym of all 140 was half of the
 *       shim's start-up), and the engine never resolves one in a signal
 *       handler or a child.
 *   (1c) The entries a child calls first (FOR_CHILDREN: its exit, its
 *       exec, the moves of its descriptors before that; and stdio's,
 *       stdiofence.c) are resolved in the parent before its first fork
 *       or vfork (wc_real_for_children, from proc.c's
 *       resolve_for_children; not before _Fork or a raw fork, which a
 *       signal handler may call): a fork child resolves in a copy of the
 *       table the parent never sees, so each child of a process that
 *       caches nothing paid a dlsym and about ten page faults of libc's
 *       and ld.so's tables for its _exit or its execve (300 children:
 *       44 faults a fork against 23 without the shim).
 *   (1d) A lookup takes no lock of the loader's and leaves the program's
 *       dlerror() state alone (next_sym: dlsym is asked only for a name
 *       it does not find): a lookup may come at any call of the program,
 *       in fork's prepare, in a signal handler (probe AG: dlsym freed
 *       the message dlerror() had just returned when a program's first
 *       fprintf printed it, and in fork's prepare waited for a thread
 *       inside dlopen that waited for the fork).
 *   (2) A required symbol that libc lacks is reported once on stderr; one
 *       of AT_START makes the shim run pass-through (wc_real_init returns
 *       0), another one is called through its fallback; never a crash.
 *   (3) The table holds the real functions only: the descriptors the
 *       engine keeps are announced by the engine itself (wc_config.fds,
 *       placed and marked by ownfd.c), not recognised here.
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <gnu/libc-version.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "kcall.h"
#include "wcache/raw.h"

static WC_TLS int resolving;   /* this thread is inside wc_real_init */

/* ---- fallbacks: used before dlsym answers, or when a symbol is missing */

/* A system call without libc (syscall() itself is interposed: syscall.c),
 * x86_64 only, as the rest of wcache. -1 and errno on failure. */
static long raw6(long n, long a, long b, long c, long d, long e, long f)
{
    long r = wc_raw_syscall(n, a, b, c, d, e, f);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}
#define SC_(n, a, b, c, d, e, f, ...)                                      \
    raw6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
         (long)(f))
#define SC(...) SC_(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

static long fb_syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    return raw6(n, a, b, c, d, e, f);
}

static int fb_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)SC(SYS_ioctl, fd, req, arg);
}
static ssize_t fb_read(int fd, void *b, size_t n)
{ return SC(SYS_read, fd, b, n); }
static ssize_t fb_write(int fd, const void *b, size_t n)
{ return SC(SYS_write, fd, b, n); }
static ssize_t fb_pread(int fd, void *b, size_t n, off_t o)
{ return SC(SYS_pread64, fd, b, n, o); }
static ssize_t fb_pwrite(int fd, const void *b, size_t n, off_t o)
{ return SC(SYS_pwrite64, fd, b, n, o); }
static ssize_t fb_readv(int fd, const struct iovec *v, int c)
{ return SC(SYS_readv, fd, v, c); }
static ssize_t fb_writev(int fd, const struct iovec *v, int c)
{ return SC(SYS_writev, fd, v, c); }
static ssize_t fb_preadv(int fd, const struct iovec *v, int c, off_t o)
{ return SC(SYS_preadv, fd, v, c, o, 0); }
static ssize_t fb_pwritev(int fd, const struct iovec *v, int c, off_t o)
{ return SC(SYS_pwritev, fd, v, c, o, 0); }
static int fb_open(const char *p, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = (fl & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return SC(SYS_openat, AT_FDCWD, p, fl, m);
}
static int fb_openat(int dfd, const char *p, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = (fl & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return SC(SYS_openat, dfd, p, fl, m);
}
static int fb_close(int fd) { return SC(SYS_close, fd); }
static off_t fb_lseek(int fd, off_t o, int w)
{ return SC(SYS_lseek, fd, o, w); }
static int fb_fstat(int fd, struct stat *st)
{ return SC(SYS_fstat, fd, st); }
static int fb_stat(const char *p, struct stat *st)
{ return SC(SYS_newfstatat, AT_FDCWD, p, st, 0); }
static int fb_lstat(const char *p, struct stat *st)
{ return SC(SYS_newfstatat, AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW); }
static int fb_fstatat(int d, const char *p, struct stat *st, int fl)
{ return SC(SYS_newfstatat, d, p, st, fl); }
static int fb_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return SC(SYS_fcntl, fd, cmd, arg);
}
static int fb_dup(int fd) { return SC(SYS_dup, fd); }
static int fb_dup2(int a, int b)
{
    if (a == b)
        return SC(SYS_fcntl, a, F_GETFD) < 0 ? -1 : b;
    return SC(SYS_dup3, a, b, 0);
}
static int fb_dup3(int a, int b, int f) { return SC(SYS_dup3, a, b, f); }
static int fb_ftruncate(int fd, off_t l) { return SC(SYS_ftruncate, fd, l); }
static int fb_fsync(int fd) { return SC(SYS_fsync, fd); }
static int fb_fdatasync(int fd) { return SC(SYS_fdatasync, fd); }
static int fb_close_range(unsigned a, unsigned b, int f)
{ return SC(SYS_close_range, a, b, f); }
static void *fb_mmap(void *a, size_t n, int p, int f, int fd, off_t o)
{ return (void *)SC(SYS_mmap, a, n, p, f, fd, o); }
static int fb_munmap(void *a, size_t n) { return SC(SYS_munmap, a, n); }
static int fb_statx(int d, const char *p, int f, unsigned m, struct statx *x)
{ return SC(SYS_statx, d, p, f, m, x); }
static ssize_t fb_pwritev2(int fd, const struct iovec *v, int c, off_t o,
                           int f)
{ return SC(SYS_pwritev2, fd, v, c, o, 0, f); }
static ssize_t fb_preadv2(int fd, const struct iovec *v, int c, off_t o,
                          int f)
{ return SC(SYS_preadv2, fd, v, c, o, 0, f); }
static ssize_t fb_copy_file_range(int a, off_t *ao, int b, off_t *bo,
                                  size_t n, unsigned f)
{ return SC(SYS_copy_file_range, a, ao, b, bo, n, f); }
static int fb_syncfs(int fd) { return SC(SYS_syncfs, fd); }
static void fb_exit(int st)
{
    for (;;)
        SC(SYS_exit_group, st);
}
static long fb_enosys(void)
{
    errno = ENOSYS;
    return -1;
}
static void *fb_enosys_ptr(void)
{
    errno = ENOSYS;
    return NULL;
}

/* The fallback of each slot, by its place in the table (no name search
 * at start-up: comparing every name with every fallback's cost 110,000
 * instructions of /bin/true's start under the shim). */
#define SLOT(name) (offsetof(struct wc_sys, name) / sizeof(void (*)(void)))
#define FB(name, fn) [SLOT(name)] = {(void *)(fn), 0}
#define FB_OPT(name, fn) [SLOT(name)] = {(void *)(fn), 1}
static const struct {
    void *fn;          /* NULL: fb_enosys */
    int optional;      /* libc may lack it: no message */
} fallbacks[WC_SYS_COUNT] = {
    FB(read, fb_read),           FB(write, fb_write),
    FB(pread, fb_pread),         FB(pwrite, fb_pwrite),
    FB(readv, fb_readv),         FB(writev, fb_writev),
    FB(preadv, fb_preadv),       FB(pwritev, fb_pwritev),
    FB(open, fb_open),           FB(openat, fb_openat),
    FB(close, fb_close),         FB(lseek, fb_lseek),
    FB(fstat, fb_fstat),         FB(stat, fb_stat),
    FB(lstat, fb_lstat),         FB(fstatat, fb_fstatat),
    FB(fcntl, fb_fcntl),         FB(dup, fb_dup),
    FB(dup2, fb_dup2),           FB(dup3, fb_dup3),
    FB(ftruncate, fb_ftruncate), FB(fsync, fb_fsync),
    FB(fdatasync, fb_fdatasync), FB(mmap, fb_mmap),
    FB(munmap, fb_munmap),       FB(_exit, fb_exit),
    FB(_Exit, fb_exit),          FB(exit, fb_exit),
    FB(quick_exit, fb_exit),
    FB(syscall, fb_syscall),     FB(ioctl, fb_ioctl),
    /* functions returning a pointer fail with NULL */
    FB(fopen, fb_enosys_ptr),    FB(freopen, fb_enosys_ptr),
    FB(fdopen, fb_enosys_ptr),   FB(popen, fb_enosys_ptr),
    FB(getcwd, fb_enosys_ptr),
    /* optional: newer or older than some glibc */
    FB_OPT(close_range, fb_close_range), FB_OPT(statx, fb_statx),
    FB_OPT(pwritev2, fb_pwritev2),       FB_OPT(preadv2, fb_preadv2),
    FB_OPT(copy_file_range, fb_copy_file_range),
    FB_OPT(syncfs, fb_syncfs),   FB_OPT(renameat2, NULL),
    FB_OPT(closefrom, NULL),  FB_OPT(execveat, NULL),
    FB_OPT(execvpe, NULL),    FB_OPT(__fxstat, NULL),
    FB_OPT(__xstat, NULL),    FB_OPT(__lxstat, NULL),
    FB_OPT(__fxstatat, NULL), FB_OPT(_Fork, NULL),
};

/* ---- resolution ------------------------------------------------------ */

/* kcall.h (K4): the shim makes its pass-through calls bare only when
 * the functions RTLD_NEXT found for them all lie in libc, the object that
 * holds gnu_get_libc_version, and none in a library preloaded after the
 * shim (_dl_find_object: a lookup in the loader's sorted table of objects,
 * not dladdr's walk of a symbol table). */
WC_BOOT int wc_kcall_libc;

WC_ONCE
static int kcall_next_is_libc(void)
{
    struct dl_find_object libc, o;
    if (_dl_find_object((void *)gnu_get_libc_version, &libc) != 0)
        return 0;
#define KC(name)                                                           \
    (_dl_find_object((void *)wc_sys.name, &o) == 0 &&                      \
     o.dlfo_link_map == libc.dlfo_link_map)
    return KC(write) && KC(pwrite) && KC(read) && KC(pread) &&
           KC(openat) && KC(close) && KC(fstat) && KC(stat) && KC(lstat) &&
           KC(fstatat) && KC(lseek) && KC(fcntl);
#undef KC
}

/* ---- the next definition, without dlsym ------------------------------ */

/*
 * dlsym(RTLD_NEXT) takes the loader's lock and, since glibc 2.34, frees
 * the thread's pending dlerror() message: called lazily, at a program's
 * first fprintf, it freed the string the program had just asked dlerror
 * for (`fprintf(stderr, "%s", dlerror())` printed freed memory, probe AG
 * F2), and in fork's prepare it waited for a thread inside dlopen, which
 * could be waiting for the forking one (F1). next_sym reads the symbol
 * tables of the objects loaded after this one, in the loader's order (its
 * link maps from ours on, what RTLD_NEXT searches for a library loaded at
 * start), as the loader's lookup does: GNU or SysV hash, a defined global
 * or weak function or object, the default version (versym without its
 * hidden bit), an IFUNC's resolver called. No lock, no allocation, no
 * errno or dlerror state: async-signal-safe. NULL when none defines it:
 * the caller then asks dlsym, as before.
 */
static uintptr_t dyn_addr(const struct link_map *l, ElfW(Addr) a)
{
    /* The loader relocates these entries of the dynamic section in place
     * on x86_64; read either way. */
    return a < l->l_addr ? (uintptr_t)(a + l->l_addr) : (uintptr_t)a;
}

/* The lookups below run at start-up (AT_START) and at an entry's first
 * call: WC_ONCE, with the rest of start-up's code, where they were a page
 * of their own (two page faults in each start-up, with scope_init). */
WC_ONCE
static uint32_t elf_hash(const char *s)
{
    uint32_t h = 0;
    for (; *s; s++) {
        h = (h << 4) + (unsigned char)*s;
        uint32_t g = h & 0xf0000000u;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    return h;
}

WC_ONCE
static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

struct symtab {
    const ElfW(Sym) *sym;
    const char *str;
    const ElfW(Half) *versym;
};

/* Symbol idx of t, if it is `name`'s definition this lookup takes. */
WC_ONCE
static void *sym_match(const struct link_map *l, const struct symtab *t,
                       uint32_t idx, const char *name)
{
    const ElfW(Sym) *s = &t->sym[idx];
    int type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);
    if (s->st_shndx == SHN_UNDEF || s->st_value == 0 ||
        (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_OBJECT &&
         type != STT_NOTYPE) ||
        (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) ||
        (t->versym && (t->versym[idx] & 0x8000)) ||
        strcmp(t->str + s->st_name, name) != 0)
        return NULL;
    uintptr_t a = (uintptr_t)(l->l_addr + s->st_value);
    if (type == STT_GNU_IFUNC)
        a = ((uintptr_t(*)(void))a)();      /* as the loader calls it */
    return (void *)a;
}

WC_ONCE
static void *lookup_in(const struct link_map *l, const char *name)
{
    const ElfW(Dyn) *d = l->l_ld;
    const uint32_t *gh = NULL, *sh = NULL;
    struct symtab t = {0};
    for (; d && d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_GNU_HASH: gh = (const uint32_t *)dyn_addr(l, d->d_un.d_ptr);
                          break;
        case DT_HASH: sh = (const uint32_t *)dyn_addr(l, d->d_un.d_ptr);
                      break;
        case DT_SYMTAB: t.sym = (const ElfW(Sym) *)dyn_addr(l, d->d_un.d_ptr);
                        break;
        case DT_STRTAB: t.str = (const char *)dyn_addr(l, d->d_un.d_ptr);
                        break;
        case DT_VERSYM:
            t.versym = (const ElfW(Half) *)dyn_addr(l, d->d_un.d_ptr);
            break;
        }
    }
    if (!t.sym || !t.str)
        return NULL;
    if (gh) {
        uint32_t nbuckets = gh[0], symoff = gh[1], nbloom = gh[2];
        uint32_t shift = gh[3], h = gnu_hash(name);
        const ElfW(Addr) *bloom = (const ElfW(Addr) *)&gh[4];
        const uint32_t *buckets = (const uint32_t *)&bloom[nbloom];
        const uint32_t *chain = &buckets[nbuckets];
        unsigned bits = 8 * sizeof(ElfW(Addr));
        if (!nbuckets || !nbloom)
            return NULL;
        ElfW(Addr) word = bloom[(h / bits) % nbloom];
        ElfW(Addr) mask = ((ElfW(Addr))1 << (h % bits)) |
                          ((ElfW(Addr))1 << ((h >> shift) % bits));
        if ((word & mask) != mask)
            return NULL;
        uint32_t idx = buckets[h % nbuckets];
        if (idx < symoff)
            return NULL;
        for (;; idx++) {
            uint32_t h2 = chain[idx - symoff];
            void *p;
            if ((h | 1) == (h2 | 1) && (p = sym_match(l, &t, idx, name)))
                return p;
            if (h2 & 1)
                return NULL;
        }
    }
    if (sh) {
        uint32_t nbucket = sh[0], h = elf_hash(name);
        const uint32_t *bucket = &sh[2], *chain = &sh[2 + nbucket];
        if (!nbucket)
            return NULL;
        for (uint32_t idx = bucket[h % nbucket]; idx != STN_UNDEF;
             idx = chain[idx]) {
            void *p = sym_match(l, &t, idx, name);
            if (p)
                return p;
        }
    }
    return NULL;
}


/* The objects RTLD_NEXT searches: those loaded with the program, after
 * this library, up to the last of them (g_scope_end, taken by
 * wc_real_init in the constructor, when every one of them is loaded and
 * none loaded later is). A library dlopen'ed since is not searched (one
 * loaded RTLD_LOCAL is in no one's global scope; a name only such a
 * library defines goes to dlsym), nor the vDSO. */
WC_BOOT static const struct link_map *g_self, *g_scope_end;

WC_ONCE
static void scope_init(void)
{
    struct dl_find_object self;
    if (_dl_find_object((void *)scope_init, &self) != 0 ||
        !self.dlfo_link_map)
        return;
    const struct link_map *l = self.dlfo_link_map;
    while (l->l_next)
        l = l->l_next;
    g_scope_end = l;
    __atomic_store_n(&g_self, self.dlfo_link_map, __ATOMIC_RELEASE);
}

WC_ONCE
static void *next_sym(const char *name)
{
    const struct link_map *self = __atomic_load_n(&g_self, __ATOMIC_ACQUIRE);
    if (!self || self == g_scope_end)
        return NULL;
    for (const struct link_map *l = self->l_next; l; l = l->l_next) {
        void *p = l->l_name && strcmp(l->l_name, "linux-vdso.so.1")
                      ? lookup_in(l, name) : NULL;
        if (p)
            return p;
        if (l == g_scope_end)
            break;
    }
    return NULL;
}

/* The next definition of `name`: next_sym's, else dlsym's (a name only
 * a library loaded since defines), or NULL. WCACHE_LOG=debug names each
 * lookup (the tests count them: which process looks up what, and when). */
WC_ONCE
static void *lookup(const char *name)
{
    void *p = next_sym(name);
    if (!p)
        p = dlsym(RTLD_NEXT, name);
    wc_log(WC_LOG_DEBUG, "real function %s %s", name, p ? "found" : "missing");
    return p;
}

/* ---- the lazy entries ---------------------------------------------- */

/*
 * Until it is resolved, each slot i holds trampoline i: 16 bytes at
 * wc__lazy_tramp + 16 * i that push i and jump to the common part, which
 * saves the argument registers (the six integer ones, %rax, whose %al a
 * variadic callee reads, and %xmm0-7), asks wc__lazy_resolve(i) for the
 * function, restores them and jumps to it: the caller's frame, its stack
 * arguments and its return address are untouched, as in the loader's own
 * lazy binding (_dl_runtime_resolve), whatever the entry's signature.
 * Stack at the call of the resolver: 7 registers + 136 bytes below the
 * pushed index, 16-byte aligned (a call left it 8 off, the index 0 off).
 */
#define WC_LAZY_MAX 192
_Static_assert(WC_SYS_COUNT <= WC_LAZY_MAX, "more entries than trampolines");
void *wc__lazy_resolve(unsigned i);
extern const char wc__lazy_tramp[];
__asm__(".text\n"
        ".p2align 4\n"
        ".globl wc__lazy_tramp\n"
        ".hidden wc__lazy_tramp\n"
        ".type wc__lazy_tramp,@function\n"
        "wc__lazy_tramp:\n"
        ".set wc__lazy_i, 0\n"
        ".rept 192\n"
        "    .p2align 4\n"
        "    endbr64\n"
        "    pushq $wc__lazy_i\n"
        "    jmp wc__lazy_common\n"
        "    .set wc__lazy_i, wc__lazy_i + 1\n"
        ".endr\n"
        "wc__lazy_common:\n"
        "    pushq %rdi\n    pushq %rsi\n    pushq %rdx\n    pushq %rcx\n"
        "    pushq %r8\n     pushq %r9\n     pushq %rax\n"
        "    subq $136, %rsp\n"
        "    movdqu %xmm0, 0(%rsp)\n     movdqu %xmm1, 16(%rsp)\n"
        "    movdqu %xmm2, 32(%rsp)\n    movdqu %xmm3, 48(%rsp)\n"
        "    movdqu %xmm4, 64(%rsp)\n    movdqu %xmm5, 80(%rsp)\n"
        "    movdqu %xmm6, 96(%rsp)\n    movdqu %xmm7, 112(%rsp)\n"
        "    movl 192(%rsp), %edi\n"
        "    call wc__lazy_resolve\n"
        "    movq %rax, %r11\n"
        "    movdqu 0(%rsp), %xmm0\n     movdqu 16(%rsp), %xmm1\n"
        "    movdqu 32(%rsp), %xmm2\n    movdqu 48(%rsp), %xmm3\n"
        "    movdqu 64(%rsp), %xmm4\n    movdqu 80(%rsp), %xmm5\n"
        "    movdqu 96(%rsp), %xmm6\n    movdqu 112(%rsp), %xmm7\n"
        "    addq $136, %rsp\n"
        "    popq %rax\n    popq %r9\n     popq %r8\n     popq %rcx\n"
        "    popq %rdx\n    popq %rsi\n    popq %rdi\n"
        "    addq $8, %rsp\n"
        "    jmp *%r11\n"
        ".size wc__lazy_tramp, . - wc__lazy_tramp\n");

static void *fallback(size_t i)
{
    return fallbacks[i].fn ? fallbacks[i].fn : (void *)fb_enosys;
}

/* The symbols libc lacks, said once per process (invariant (2)). */
static void missing(const char *names)
{
    char msg[640];
    int n = snprintf(msg, sizeof msg,
                     "wcache: libc lacks required function(s):%s; %s\n",
                     names, wc_state == WC_ST_INIT
                                ? "running without the cache"
                                : "their calls go to the kernel or fail "
                                  "with ENOSYS");
    if (n > 0)
        fb_write(2, msg, (size_t)n < sizeof msg ? (size_t)n
                                                : sizeof msg - 1);
}

/* Slot i's function from dlsym, or its fallback (NULL-free, invariant
 * (1)); *lacks set when a required one is not there. Inside dlsym (a
 * malloc replacement that writes, say): the fallback, not kept. */
WC_ONCE
static void *resolve(size_t i, int *lacks)
{
    void **slot = (void **)&wc_sys;
    void *p = __atomic_load_n(&slot[i], __ATOMIC_ACQUIRE);
    if (p && (p < (void *)wc__lazy_tramp ||
              p >= (void *)(wc__lazy_tramp + 16 * WC_LAZY_MAX)))
        return p;                       /* resolved already */
    if (resolving)
        return fallback(i);
    resolving = 1;
    p = lookup(wc_sys_names[i]);
    resolving = 0;
    if (!p) {
        p = fallback(i);
        if (!fallbacks[i].optional)
            *lacks = 1;
    }
    __atomic_store_n(&slot[i], p, __ATOMIC_RELEASE);
    return p;
}

/* Called by trampoline i (its first call; again only by a call that raced
 * with it). errno is the program's: dlsym's is not let through. */
void *wc__lazy_resolve(unsigned i)
{
    int e = errno, lacks = 0;
    void *p = resolve(i, &lacks);
    if (lacks) {
        char one[64];
        snprintf(one, sizeof one, " %s", wc_sys_names[i]);
        missing(one);
    }
    errno = e;
    return p;
}

/* The entries resolved at start-up: those kcall.h's check looks at (K4),
 * made bare once it passes. Every other entry is resolved at its first
 * call (a process that runs /bin/true looked up 140 names, half of its
 * start-up under the shim), or all together when the cache is made
 * (wc_real_all). */
#define AT_START(X)                                                         \
    X(write) X(pwrite) X(read) X(pread) X(openat) X(close) X(fstat)        \
    X(stat) X(lstat) X(fstatat) X(lseek) X(fcntl)

WC_ONCE
int wc_real_init(void)
{
    WC_BOOT static int state;   /* 0 not started, 1 running, 2 done */
    WC_BOOT static int ok = 1;
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 2)
        return ok;
    if (resolving)          /* re-entered from inside dlsym: fallbacks */
        return 0;
    int z = 0;
    if (!__atomic_compare_exchange_n(&state, &z, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2)
            SC(SYS_sched_yield);
        return ok;
    }
    scope_init();
    void **slot = (void **)&wc_sys;
    /* A compare-and-swap writes even where it fails: the table's page
     * faults in once, written, not once read and again written. */
    for (size_t i = 0; i < WC_SYS_COUNT; i++) {
        void *none = NULL;
        __atomic_compare_exchange_n(&slot[i], &none,
                                    (void *)(wc__lazy_tramp + 16 * i), 0,
                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }
    char lacking[512];
    size_t ml = 0;
    lacking[0] = 0;
#define START(name)                                                        \
    {                                                                      \
        int lacks = 0;                                                     \
        resolve(SLOT(name), &lacks);                                       \
        if (lacks) {                                                       \
            ok = 0;                                                        \
            int n = snprintf(lacking + ml, sizeof lacking - ml, " %s",     \
                             #name);                                       \
            if (n > 0 && (size_t)n < sizeof lacking - ml)                  \
                ml += (size_t)n;                                           \
        }                                                                  \
    }
    AT_START(START)
#undef START
    __atomic_store_n(&wc_kcall_libc, ok && kcall_next_is_libc(),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&state, 2, __ATOMIC_RELEASE);
    if (!ok)
        missing(lacking);
    return ok;
}

/* Invariant (1c): what a child calls between fork and its exec or exit. */
#define FOR_CHILDREN(X)                                                     \
    X(_exit) X(_Exit) X(exit) X(execve) X(execveat) X(fexecve) X(execv)    \
    X(execvp) X(execvpe) X(dup) X(dup2) X(dup3) X(close_range)            \
    X(closefrom) X(open) X(creat) X(sigaction) X(signal) X(mmap) X(munmap)

WC_ONCE
void wc_real_for_children(void)
{
    WC_BOOT static int done;    /* written once, by the first fork's parent */
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE))
        return;
#define CHILD(name) wc__lazy_resolve(SLOT(name));
    FOR_CHILDREN(CHILD)
#undef CHILD
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
}

WC_ONCE
void wc_real_all(void)
{
    for (size_t i = 0; i < WC_SYS_COUNT; i++)
        wc__lazy_resolve((unsigned)i);
}

void *wc_next_fn(void **slot, const char *name)
{
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (unlikely(!p)) {
        p = lookup(name);
        __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    }
    return p;
}
