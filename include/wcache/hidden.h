/*
 * hidden.h - the visibility of the library's own data.
 *
 * The objects are built with -fvisibility=hidden, which hides what they
 * define but not what they declare: an `extern` variable the compiler must
 * take for one some other shared object may define, reached through the
 * GOT (a load the linker relaxes to a `lea`, one instruction more at every
 * access; a cached 1-byte write reads nine such words: write()'s three,
 * the shim's fast path's five, the engine's one). Declared WC_LOCAL, it is
 * addressed directly. Only for data this library defines (a hidden
 * declaration of libc's would not link).
 */
#ifndef WCACHE_HIDDEN_H
#define WCACHE_HIDDEN_H

#define WC_LOCAL __attribute__((visibility("hidden")))

#endif /* WCACHE_HIDDEN_H */
