/*
 * stdiofence.c - the stdio calls that can write a stream's bytes out,
 * each fencing the stream's descriptor first (stdio.c invariant (2)).
 *
 * glibc writes a stream's buffer with its internal write, which the shim
 * cannot see; a description guarded on descriptor 1 keeps its offset to
 * itself, so before glibc may write there it must become shared with
 * stdio (RESERVE: the kernel's offset set, and kept, exact). Each wrapper
 * below is the one test `wc_guard_seen` until some description has been
 * guarded in this process, then a look at the stream's descriptor; then
 * the real function, found with dlsym at its first call (these are not in
 * the table of wcache/sys.h: the engine never calls them, and the start-up
 * of every process would pay for their lookup).
 *
 * The list: every function of glibc that writes to a stream, or flushes,
 * closes, repositions or re-buffers one (all of which may write its
 * buffer out), narrow and wide, their _unlocked and fortified (_chk)
 * forms, __overflow and __woverflow (where the inline putc macros write
 * a full buffer), and argp, which prints help to a stream it is given.
 * Variadic functions call their va_list form, as glibc's own do.
 */
#include <argp.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <wchar.h>

#include "shim.h"

/* Every wrapper's slot and name, gathered by the linker in one section
 * (wc_stdio_for_children). */
struct lazy {
    void **slot;
    const char *name;
};
extern struct lazy __start_wc_stdio_lazy[], __stop_wc_stdio_lazy[];

/* The real function `name`, looked up once (wc_next_fn). */
#define REAL_S(type, name)                                                 \
    ((type)wc_next_fn(&lz_##name, #name))

static inline void fence(FILE *fp)
{
    if (unlikely(__atomic_load_n(&wc_guard_seen, __ATOMIC_RELAXED))) {
        int fd = fp ? fp->_fileno : -1;
        if (!fp || fd >= 0)
            wc_stdio_fence(fd);
    }
}

/* WRAP(return type, name, (parameters), (arguments), stream expression).
 * Defined under an assembler name (wcf_NAME is the C name): <stdio.h> may
 * have its own inline or fortified definitions of the same names. The
 * common case (no description guarded yet, the real function known) is a
 * load, a test and a jump into libc, with no frame of its own (putc,
 * fwrite: awk makes four such calls a line); the rest is a call of its
 * own (wcs_NAME), also reached by a jump. */
#define WRAP(ret, name, params, args, stream)                              \
    static void *lz_##name;                                                \
    static struct lazy lzent_##name                                        \
        __attribute__((used, section("wc_stdio_lazy"))) = {&lz_##name,     \
                                                          #name};          \
    static __attribute__((noinline, cold)) ret wcs_##name params           \
    {                                                                      \
        fence(stream);                                                     \
        return REAL_S(ret(*) params, name) args;                           \
    }                                                                      \
    WC_EXPORT ret wcf_##name params __asm__(#name);                        \
    WC_EXPORT ret wcf_##name params                                        \
    {                                                                      \
        void *real_ = __atomic_load_n(&lz_##name, __ATOMIC_ACQUIRE);       \
        if (likely(real_ != NULL) &&                                       \
            likely(!__atomic_load_n(&wc_guard_seen, __ATOMIC_RELAXED)))    \
            return ((ret(*) params)real_) args;                            \
        return wcs_##name args;                                            \
    }

/* ---- variadic: through their va_list forms --------------------------- */

/* VARIADIC(name, its va_list form, (parameters), last named parameter,
 * (arguments of the va_list form), stream expression) */
#define VARIADIC(name, vname, params, last, args, stream)                  \
    WC_EXPORT int wcf_##name params __asm__(#name);                        \
    WC_EXPORT int wcf_##name params                                        \
    {                                                                      \
        va_list ap;                                                        \
        va_start(ap, last);                                                \
        fence(stream);                                                     \
        int r = REAL_S(__typeof__(&wcf_##vname), vname) args;             \
        va_end(ap);                                                        \
        return r;                                                          \
    }

WRAP(int, vprintf, (const char *f, va_list ap), (f, ap), stdout)
WRAP(int, vfprintf, (FILE *fp, const char *f, va_list ap), (fp, f, ap), fp)
WRAP(int, __vprintf_chk, (int fl, const char *f, va_list ap), (fl, f, ap),
     stdout)
WRAP(int, __vfprintf_chk, (FILE *fp, int fl, const char *f, va_list ap),
     (fp, fl, f, ap), fp)
WRAP(int, vwprintf, (const wchar_t *f, va_list ap), (f, ap), stdout)
WRAP(int, vfwprintf, (FILE *fp, const wchar_t *f, va_list ap), (fp, f, ap),
     fp)
WRAP(int, __vwprintf_chk, (int fl, const wchar_t *f, va_list ap),
     (fl, f, ap), stdout)
WRAP(int, __vfwprintf_chk, (FILE *fp, int fl, const wchar_t *f, va_list ap),
     (fp, fl, f, ap), fp)

VARIADIC(printf, vprintf, (const char *f, ...), f, (f, ap), stdout)
VARIADIC(fprintf, vfprintf, (FILE *fp, const char *f, ...), f, (fp, f, ap),
         fp)
VARIADIC(__printf_chk, __vprintf_chk, (int fl, const char *f, ...), f,
         (fl, f, ap), stdout)
VARIADIC(__fprintf_chk, __vfprintf_chk, (FILE *fp, int fl, const char *f,
         ...), f, (fp, fl, f, ap), fp)
VARIADIC(wprintf, vwprintf, (const wchar_t *f, ...), f, (f, ap), stdout)
VARIADIC(fwprintf, vfwprintf, (FILE *fp, const wchar_t *f, ...), f,
         (fp, f, ap), fp)
VARIADIC(__wprintf_chk, __vwprintf_chk, (int fl, const wchar_t *f, ...), f,
         (fl, f, ap), stdout)
VARIADIC(__fwprintf_chk, __vfwprintf_chk, (FILE *fp, int fl,
         const wchar_t *f, ...), f, (fp, fl, f, ap), fp)

/* ---- fixed arguments -------------------------------------------------- */

WRAP(int, puts, (const char *s), (s), stdout)
WRAP(int, fputs, (const char *s, FILE *fp), (s, fp), fp)
WRAP(int, fputs_unlocked, (const char *s, FILE *fp), (s, fp), fp)
WRAP(int, putchar, (int c), (c), stdout)
WRAP(int, putchar_unlocked, (int c), (c), stdout)
WRAP(int, fputc, (int c, FILE *fp), (c, fp), fp)
WRAP(int, fputc_unlocked, (int c, FILE *fp), (c, fp), fp)
WRAP(int, putc, (int c, FILE *fp), (c, fp), fp)
WRAP(int, putc_unlocked, (int c, FILE *fp), (c, fp), fp)
WRAP(int, _IO_putc, (int c, FILE *fp), (c, fp), fp)
WRAP(int, putw, (int w, FILE *fp), (w, fp), fp)
WRAP(size_t, fwrite, (const void *p, size_t s, size_t n, FILE *fp),
     (p, s, n, fp), fp)
WRAP(size_t, fwrite_unlocked, (const void *p, size_t s, size_t n, FILE *fp),
     (p, s, n, fp), fp)
WRAP(int, __overflow, (FILE *fp, int c), (fp, c), fp)
WRAP(int, fflush, (FILE *fp), (fp), fp)
WRAP(int, fflush_unlocked, (FILE *fp), (fp), fp)
/* fclose: also, the stream's file is no longer held by it (registry.c
 * invariant (4)), once the stream's buffer is out. */
static void *lz_fclose;
WC_EXPORT int wcf_fclose(FILE *fp) __asm__("fclose");
WC_EXPORT int wcf_fclose(FILE *fp)
{
    fence(fp);
    if (fp && wc_streams_any()) {
        if (__fwritable(fp))
            REAL_S(int (*)(FILE *), fflush)(fp);
        wc_stdio_hold(fp, 0);
    }
    return REAL_S(int (*)(FILE *), fclose)(fp);
}
WRAP(int, fcloseall, (void), (), NULL)
WRAP(void, _flushlbf, (void), (), NULL)
WRAP(int, fseek, (FILE *fp, long off, int whence), (fp, off, whence), fp)
WRAP(int, fseeko, (FILE *fp, off_t off, int whence), (fp, off, whence), fp)
WRAP(int, fseeko64, (FILE *fp, off64_t off, int whence), (fp, off, whence),
     fp)
WRAP(int, fsetpos, (FILE *fp, const fpos_t *p), (fp, p), fp)
WRAP(int, fsetpos64, (FILE *fp, const fpos64_t *p), (fp, p), fp)
WRAP(void, rewind, (FILE *fp), (fp), fp)
WRAP(int, setvbuf, (FILE *fp, char *b, int mode, size_t n),
     (fp, b, mode, n), fp)
WRAP(void, setbuf, (FILE *fp, char *b), (fp, b), fp)
WRAP(void, setbuffer, (FILE *fp, char *b, size_t n), (fp, b, n), fp)
WRAP(void, setlinebuf, (FILE *fp), (fp), fp)
WRAP(wint_t, putwchar, (wchar_t c), (c), stdout)
WRAP(wint_t, putwchar_unlocked, (wchar_t c), (c), stdout)
WRAP(wint_t, fputwc, (wchar_t c, FILE *fp), (c, fp), fp)
WRAP(wint_t, fputwc_unlocked, (wchar_t c, FILE *fp), (c, fp), fp)
WRAP(wint_t, putwc, (wchar_t c, FILE *fp), (c, fp), fp)
WRAP(wint_t, putwc_unlocked, (wchar_t c, FILE *fp), (c, fp), fp)
WRAP(int, fputws, (const wchar_t *s, FILE *fp), (s, fp), fp)
WRAP(int, fputws_unlocked, (const wchar_t *s, FILE *fp), (s, fp), fp)
WRAP(wint_t, __woverflow, (FILE *fp, wint_t c), (fp, c), fp)
/* argp prints help (to stdout, or a stream it is given) and may exit. */
WRAP(error_t, argp_parse,
     (const struct argp *a, int argc, char **argv, unsigned fl, int *ai,
      void *in),
     (a, argc, argv, fl, ai, in), NULL)
WRAP(void, argp_help, (const struct argp *a, FILE *fp, unsigned fl, char *n),
     (a, fp, fl, n), fp)
WRAP(void, argp_state_help,
     (const struct argp_state *s, FILE *fp, unsigned fl), (s, fp, fl), fp)

/* Look up every real function above, before a fork (proc.c's
 * resolve_for_children, real.c (1c)): a child's first printf or fflush would
 * otherwise call dlsym in the child, its result lost with it (a shell's
 * `$(echo ...)`: about ten page faults in each child). */
WC_ONCE
void wc_stdio_for_children(void)
{
    WC_BOOT static int done;    /* written once, by the first fork's parent */
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE))
        return;
    for (struct lazy *l = __start_wc_stdio_lazy; l < __stop_wc_stdio_lazy;
         l++)
        wc_next_fn(l->slot, l->name);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
}
